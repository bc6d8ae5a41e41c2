//! The audit chain's bookkeeping: the chain head, rows waiting to be chained, retention
//! checkpoints and reads in chain order. Positions (`chain_seq`) are a row's place in the
//! chain; ids are only the order rows were written in.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use super::audit::AuditRow;

/// The chain head as the sequencer holds it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Head {
    /// Id of the last chained row (None before any).
    pub last_id: Option<i64>,
    /// Position of the last chained row (None before any).
    pub last_seq: Option<i64>,
    pub last_hash: Vec<u8>,
    /// Rows up to this id were written before the chain existed and stay unchained.
    pub legacy_through_id: i64,
}

/// Takes the chain head for this transaction. With `skip_if_held`, None when another
/// sequencer holds it; otherwise waits for it.
pub async fn claim_head(
    conn: &mut PgConnection,
    skip_if_held: bool,
) -> Result<Option<Head>, sqlx::Error> {
    if skip_if_held {
        return sqlx::query_as(
            "SELECT last_id, last_seq, last_hash, legacy_through_id FROM audit_chain_head
              WHERE singleton FOR UPDATE SKIP LOCKED",
        )
        .fetch_optional(conn)
        .await;
    }
    // A sequencer holds the head for one batch; waiting longer means it is stuck, and the
    // caller is better told "not now" than kept waiting.
    sqlx::query("SET LOCAL lock_timeout = '5s'")
        .execute(&mut *conn)
        .await?;
    match sqlx::query_as(
        "SELECT last_id, last_seq, last_hash, legacy_through_id FROM audit_chain_head
          WHERE singleton FOR UPDATE",
    )
    .fetch_optional(conn)
    .await
    {
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("55P03") => Ok(None),
        other => other,
    }
}

/// The head as last committed.
pub async fn head(conn: &mut PgConnection) -> Result<Head, sqlx::Error> {
    sqlx::query_as(
        "SELECT last_id, last_seq, last_hash, legacy_through_id FROM audit_chain_head
          WHERE singleton",
    )
    .fetch_one(conn)
    .await
}

/// Committed rows not chained yet, oldest write first.
pub async fn pending(
    conn: &mut PgConnection,
    legacy_through_id: i64,
    limit: i64,
) -> Result<Vec<AuditRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT * FROM configuration_audit_logs WHERE hash IS NULL AND id > $1
          ORDER BY id LIMIT $2",
    )
    .bind(legacy_through_id)
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// How many committed rows wait to be chained.
pub async fn pending_count(
    conn: &mut PgConnection,
    legacy_through_id: i64,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT count(*) FROM configuration_audit_logs WHERE hash IS NULL AND id > $1",
    )
    .bind(legacy_through_id)
    .fetch_one(conn)
    .await
}

/// One row's place in the chain, as the sequencer computed it.
pub struct Link {
    pub id: i64,
    pub chain_seq: i64,
    pub prev_hash: Vec<u8>,
    pub hash: Vec<u8>,
}

/// Writes the links of a batch and moves the head past them, in the caller's transaction.
pub async fn append(conn: &mut PgConnection, links: &[Link]) -> Result<(), sqlx::Error> {
    let Some(last) = links.last() else {
        return Ok(());
    };
    let ids: Vec<i64> = links.iter().map(|l| l.id).collect();
    let seqs: Vec<i64> = links.iter().map(|l| l.chain_seq).collect();
    let prevs: Vec<Vec<u8>> = links.iter().map(|l| l.prev_hash.clone()).collect();
    let hashes: Vec<Vec<u8>> = links.iter().map(|l| l.hash.clone()).collect();
    sqlx::query(
        "UPDATE configuration_audit_logs AS a
            SET chain_seq = l.seq, prev_hash = l.prev, hash = l.hash
           FROM UNNEST($1::bigint[], $2::bigint[], $3::bytea[], $4::bytea[]) AS l(id, seq, prev, hash)
          WHERE a.id = l.id",
    )
    .bind(&ids)
    .bind(&seqs)
    .bind(&prevs)
    .bind(&hashes)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "UPDATE audit_chain_head SET last_id = $1, last_seq = $2, last_hash = $3 WHERE singleton",
    )
    .bind(last.id)
    .bind(last.chain_seq)
    .bind(&last.hash)
    .execute(conn)
    .await
    .map(|_| ())
}

/// The newest retention checkpoint: `(deleted_through_seq, last_deleted_hash)`.
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

/// Records that the chain was deleted through position `deleted_through_seq` (the column
/// keeps its first name: positions equal ids for rows chained before the sequencer).
pub async fn insert_checkpoint(
    conn: &mut PgConnection,
    deleted_through_seq: i64,
    last_deleted_hash: &[u8],
    deleted_rows: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO audit_chain_checkpoints (deleted_through_id, last_deleted_hash, deleted_rows)
         VALUES ($1, $2, $3)",
    )
    .bind(deleted_through_seq)
    .bind(last_deleted_hash)
    .bind(deleted_rows)
    .execute(conn)
    .await
    .map(|_| ())
}

/// Chained rows in chain order, after position `after_seq`.
pub async fn chained_page(
    conn: &mut PgConnection,
    after_seq: i64,
    limit: i64,
) -> Result<Vec<AuditRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT * FROM configuration_audit_logs WHERE chain_seq > $1
          ORDER BY chain_seq LIMIT $2",
    )
    .bind(after_seq)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await
}

/// Rows written before the chain existed.
pub async fn legacy_count(
    conn: &mut PgConnection,
    legacy_through_id: i64,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT count(*) FROM configuration_audit_logs WHERE hash IS NULL AND id <= $1",
    )
    .bind(legacy_through_id)
    .fetch_one(&mut *conn)
    .await
}

/// The oldest chained rows in chain order, locked, for retention: `(seq, occurred_at, hash)`.
pub async fn oldest_for_delete(
    conn: &mut PgConnection,
    limit: i64,
) -> Result<Vec<(i64, DateTime<Utc>, Vec<u8>)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT chain_seq, occurred_at, hash FROM configuration_audit_logs
          WHERE chain_seq IS NOT NULL ORDER BY chain_seq LIMIT $1 FOR UPDATE",
    )
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// Deletes the chain through position `through_seq`; retention's only delete of chained rows.
pub async fn delete_through(conn: &mut PgConnection, through_seq: i64) -> Result<u64, sqlx::Error> {
    sqlx::query("DELETE FROM configuration_audit_logs WHERE chain_seq <= $1")
        .bind(through_seq)
        .execute(conn)
        .await
        .map(|r| r.rows_affected())
}

/// Deletes rows written before the chain existed that are older than `cutoff`.
pub async fn delete_legacy_before(
    conn: &mut PgConnection,
    legacy_through_id: i64,
    cutoff: DateTime<Utc>,
) -> Result<u64, sqlx::Error> {
    sqlx::query(
        "DELETE FROM configuration_audit_logs WHERE hash IS NULL AND id <= $1 AND occurred_at < $2",
    )
    .bind(legacy_through_id)
    .bind(cutoff)
    .execute(conn)
    .await
    .map(|r| r.rows_affected())
}
