//! Reads and writes for backup and restore: a consistent snapshot of every sealed table, and
//! whole-row writes that keep ids, versions and timestamps from a backup file.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::integrations::ConfigRow;
use super::webhooks::WebhookRow;

/// An `oauth_tokens` row as stored; the tokens are sealed (AAD `oauth_tokens/<id>/<field>`).
pub use super::oauth_tokens::TokenRow;

/// Every row a backup holds.
pub struct Snapshot {
    pub configs: Vec<ConfigRow>,
    pub webhooks: Vec<WebhookRow>,
    pub tokens: Vec<TokenRow>,
}

/// Reads all three tables in one REPEATABLE READ, read-only transaction: one point in time.
pub async fn snapshot(db: &PgPool) -> Result<Snapshot, sqlx::Error> {
    let mut tx = db.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await?;
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

/// Inserts a config row exactly as given (id, version and timestamps included).
pub async fn insert_config(conn: &mut PgConnection, r: &ConfigRow) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO integration_configs
           (id, provider, environment, enabled, settings, secrets, secrets_masked, key_id, version,
            created_at, updated_at, created_by, updated_by, last_validated_at,
            last_validation_status, last_validation_detail)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
    )
    .bind(r.id)
    .bind(&r.provider)
    .bind(&r.environment)
    .bind(r.enabled)
    .bind(&r.settings)
    .bind(&r.secrets)
    .bind(&r.secrets_masked)
    .bind(&r.key_id)
    .bind(r.version)
    .bind(r.created_at)
    .bind(r.updated_at)
    .bind(&r.created_by)
    .bind(&r.updated_by)
    .bind(r.last_validated_at)
    .bind(&r.last_validation_status)
    .bind(&r.last_validation_detail)
    .execute(conn)
    .await
    .map(|_| ())
}

/// Replaces a config's content in place, keeping its id; the version moves on so stale
/// `If-Match` headers fail.
pub async fn replace_config(
    conn: &mut PgConnection,
    r: &ConfigRow,
    actor: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE integration_configs
            SET enabled = $2, settings = $3, secrets = $4, secrets_masked = $5, key_id = $6,
                last_validated_at = $7, last_validation_status = $8, last_validation_detail = $9,
                updated_by = $10, updated_at = now(), version = version + 1
          WHERE id = $1",
    )
    .bind(r.id)
    .bind(r.enabled)
    .bind(&r.settings)
    .bind(&r.secrets)
    .bind(&r.secrets_masked)
    .bind(&r.key_id)
    .bind(r.last_validated_at)
    .bind(&r.last_validation_status)
    .bind(&r.last_validation_detail)
    .bind(actor)
    .execute(conn)
    .await
    .map(|_| ())
}

pub async fn delete_config(conn: &mut PgConnection, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM integration_configs WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await
        .map(|_| ())
}

pub async fn insert_webhook(conn: &mut PgConnection, r: &WebhookRow) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO webhook_configurations
           (id, provider, url, events, secret, secret_masked, key_id, enabled, description, version,
            created_at, updated_at, created_by, updated_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
    )
    .bind(r.id)
    .bind(&r.provider)
    .bind(&r.url)
    .bind(&r.events)
    .bind(&r.secret)
    .bind(&r.secret_masked)
    .bind(&r.key_id)
    .bind(r.enabled)
    .bind(&r.description)
    .bind(r.version)
    .bind(r.created_at)
    .bind(r.updated_at)
    .bind(&r.created_by)
    .bind(&r.updated_by)
    .execute(conn)
    .await
    .map(|_| ())
}

pub async fn replace_webhook(
    conn: &mut PgConnection,
    r: &WebhookRow,
    actor: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE webhook_configurations
            SET provider = $2, url = $3, events = $4, secret = $5, secret_masked = $6, key_id = $7,
                enabled = $8, description = $9, updated_by = $10, updated_at = now(),
                version = version + 1
          WHERE id = $1",
    )
    .bind(r.id)
    .bind(&r.provider)
    .bind(&r.url)
    .bind(&r.events)
    .bind(&r.secret)
    .bind(&r.secret_masked)
    .bind(&r.key_id)
    .bind(r.enabled)
    .bind(&r.description)
    .bind(actor)
    .execute(conn)
    .await
    .map(|_| ())
}

pub async fn delete_webhook(conn: &mut PgConnection, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM webhook_configurations WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await
        .map(|_| ())
}

pub async fn insert_token(conn: &mut PgConnection, r: &TokenRow) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO oauth_tokens
           (id, integration_id, provider, environment, access_token, refresh_token, key_id,
            token_type, expires_at, refresh_expires_at, scope, realm_id, hub_id, stripe_user_id,
            status, version, last_refreshed_at, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)",
    )
    .bind(r.id)
    .bind(r.integration_id)
    .bind(&r.provider)
    .bind(&r.environment)
    .bind(&r.access_token)
    .bind(&r.refresh_token)
    .bind(&r.key_id)
    .bind(&r.token_type)
    .bind(r.expires_at)
    .bind(r.refresh_expires_at)
    .bind(&r.scope)
    .bind(&r.realm_id)
    .bind(&r.hub_id)
    .bind(&r.stripe_user_id)
    .bind(&r.status)
    .bind(r.version)
    .bind(r.last_refreshed_at)
    .bind(r.created_at)
    .bind(r.updated_at)
    .execute(conn)
    .await
    .map(|_| ())
}

pub async fn replace_token(conn: &mut PgConnection, r: &TokenRow) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE oauth_tokens
            SET integration_id = $2, access_token = $3, refresh_token = $4, key_id = $5,
                token_type = $6, expires_at = $7, refresh_expires_at = $8, scope = $9,
                realm_id = $10, hub_id = $11, stripe_user_id = $12, status = $13,
                last_refreshed_at = $14, updated_at = now(), version = version + 1
          WHERE id = $1",
    )
    .bind(r.id)
    .bind(r.integration_id)
    .bind(&r.access_token)
    .bind(&r.refresh_token)
    .bind(&r.key_id)
    .bind(&r.token_type)
    .bind(r.expires_at)
    .bind(r.refresh_expires_at)
    .bind(&r.scope)
    .bind(&r.realm_id)
    .bind(&r.hub_id)
    .bind(&r.stripe_user_id)
    .bind(&r.status)
    .bind(r.last_refreshed_at)
    .execute(conn)
    .await
    .map(|_| ())
}

pub async fn delete_token(conn: &mut PgConnection, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM oauth_tokens WHERE id = $1")
        .bind(id)
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
