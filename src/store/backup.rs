//! Backup's reads: a consistent snapshot of every sealed table, the restore's table lock and
//! when the scheduler last succeeded. Restores write through each table's own whole-row
//! `insert`/`update`/`delete`.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};

use super::integrations::ConfigRow;
use super::webhooks::WebhookRow;

use super::oauth_tokens::TokenRow;

/// Every row a backup holds.
pub struct Snapshot {
    pub configs: Vec<ConfigRow>,
    pub webhooks: Vec<WebhookRow>,
    pub tokens: Vec<TokenRow>,
}

/// Reads all three tables in one REPEATABLE READ, read-only transaction: one point in time.
pub async fn snapshot(db: &PgPool) -> Result<Snapshot, sqlx::Error> {
    let mut tx = super::point_in_time(db).await?;
    let snapshot = read_all(&mut tx).await?;
    tx.commit().await?;
    Ok(snapshot)
}

/// The current rows, read inside the caller's transaction.
pub async fn read_all(conn: &mut PgConnection) -> Result<Snapshot, sqlx::Error> {
    let configs =
        sqlx::query_as("SELECT * FROM integration_configs ORDER BY provider, environment")
            .fetch_all(&mut *conn)
            .await?;
    let webhooks = sqlx::query_as("SELECT * FROM webhook_configurations ORDER BY id")
        .fetch_all(&mut *conn)
        .await?;
    let tokens = sqlx::query_as("SELECT * FROM oauth_tokens ORDER BY provider, environment")
        .fetch_all(&mut *conn)
        .await?;
    Ok(Snapshot {
        configs,
        webhooks,
        tokens,
    })
}

/// Blocks other writers of the restored tables until the restore's transaction ends.
pub async fn lock_for_restore(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query(
        "LOCK TABLE integration_configs, oauth_tokens, webhook_configurations IN SHARE ROW EXCLUSIVE MODE",
    )
    .execute(conn)
    .await
    .map(|_| ())
}

/// When the backup scheduler last succeeded, and the file it wrote (from the audit log, so
/// every replica sees the same answer).
pub async fn last_scheduled_backup(
    db: &PgPool,
    actor: &str,
) -> Result<Option<(DateTime<Utc>, Option<String>)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT occurred_at, details->>'file' FROM configuration_audit_logs
          WHERE action = 'config_backup_created' AND success AND actor_name = $1
          ORDER BY id DESC LIMIT 1",
    )
    .bind(actor)
    .fetch_optional(db)
    .await
}
