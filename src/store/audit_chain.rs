//! The audit chain's bookkeeping: the chain head, retention checkpoints and ordered reads.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use super::audit::AuditRow;

/// The chain head, locked until the caller's transaction ends: audit writers serialize here.
pub async fn lock_head(conn: &mut PgConnection) -> Result<Vec<u8>, sqlx::Error> {
    sqlx::query_scalar("SELECT last_hash FROM audit_chain_head WHERE singleton FOR UPDATE")
        .fetch_one(conn)
        .await
}

pub async fn set_head(
    conn: &mut PgConnection,
    last_id: i64,
    last_hash: &[u8],
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE audit_chain_head SET last_id = $1, last_hash = $2 WHERE singleton")
        .bind(last_id)
        .bind(last_hash)
        .execute(conn)
        .await
        .map(|_| ())
}

/// The head as last committed: `(last_id, last_hash)`.
pub async fn head(conn: &mut PgConnection) -> Result<(Option<i64>, Vec<u8>), sqlx::Error> {
    sqlx::query_as("SELECT last_id, last_hash FROM audit_chain_head WHERE singleton")
        .fetch_one(&mut *conn)
        .await
}

/// The newest retention checkpoint: `(deleted_through_id, last_deleted_hash)`.
pub async fn latest_checkpoint(
    conn: &mut PgConnection,
) -> Result<Option<(i64, Vec<u8>)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT deleted_through_id, last_deleted_hash FROM audit_chain_checkpoints
          ORDER BY deleted_through_id DESC LIMIT 1",
    )
    .fetch_optional(&mut *conn)
    .await
}

pub async fn insert_checkpoint(
    conn: &mut PgConnection,
    deleted_through_id: i64,
    last_deleted_hash: &[u8],
    deleted_rows: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO audit_chain_checkpoints (deleted_through_id, last_deleted_hash, deleted_rows)
         VALUES ($1, $2, $3)",
    )
    .bind(deleted_through_id)
    .bind(last_deleted_hash)
    .bind(deleted_rows)
    .execute(conn)
    .await
    .map(|_| ())
}

/// Rows with a hash, in chain (id) order, after `after_id`.
pub async fn chained_page(
    conn: &mut PgConnection,
    after_id: i64,
    limit: i64,
) -> Result<Vec<AuditRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT * FROM configuration_audit_logs WHERE hash IS NOT NULL AND id > $1
          ORDER BY id LIMIT $2",
    )
    .bind(after_id)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await
}

/// Rows written before the chain existed.
pub async fn unchained_count(conn: &mut PgConnection) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM configuration_audit_logs WHERE hash IS NULL")
        .fetch_one(&mut *conn)
        .await
}

/// The oldest rows in chain order, locked, for retention: `(id, occurred_at, hash)`.
pub async fn oldest_for_delete(
    conn: &mut PgConnection,
    limit: i64,
) -> Result<Vec<(i64, DateTime<Utc>, Option<Vec<u8>>)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, occurred_at, hash FROM configuration_audit_logs ORDER BY id LIMIT $1 FOR UPDATE",
    )
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// Deletes every row up to and including `through_id`; retention's only delete.
pub async fn delete_through(conn: &mut PgConnection, through_id: i64) -> Result<u64, sqlx::Error> {
    sqlx::query("DELETE FROM configuration_audit_logs WHERE id <= $1")
        .bind(through_id)
        .execute(conn)
        .await
        .map(|r| r.rows_affected())
}
