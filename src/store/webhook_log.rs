//! Reading and pruning the outbox: an endpoint's deliveries, the event log, manual retries
//! and the retention purge.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// A delivery as the API lists it.
#[derive(Debug, sqlx::FromRow)]
pub struct DeliveryRow {
    pub id: Uuid,
    pub event_id: Uuid,
    pub event_type: String,
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub last_status_code: Option<i32>,
    pub last_error: Option<String>,
    pub last_response_body: Option<String>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

const DELIVERY_COLUMNS: &str = "d.id, d.event_id, e.event_type, d.status, d.attempts,
    d.next_attempt_at, d.last_attempt_at, d.last_status_code, d.last_error, d.last_response_body,
    d.created_at, d.delivered_at";

/// Up to `limit` deliveries of an endpoint, newest first, after the keyset `before`.
pub async fn deliveries(
    db: &PgPool,
    webhook_id: Uuid,
    before: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<DeliveryRow>, sqlx::Error> {
    let (at, id) = before.unzip();
    sqlx::query_as(&format!(
        "SELECT {DELIVERY_COLUMNS}
           FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id
          WHERE d.webhook_id = $1
            AND ($2::timestamptz IS NULL OR (d.created_at, d.id) < ($2, $3))
          ORDER BY d.created_at DESC, d.id DESC
          LIMIT $4"
    ))
    .bind(webhook_id)
    .bind(at)
    .bind(id)
    .bind(limit)
    .fetch_all(db)
    .await
}

pub async fn delivery(
    conn: &mut PgConnection,
    webhook_id: Uuid,
    id: Uuid,
) -> Result<Option<DeliveryRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {DELIVERY_COLUMNS}
           FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id
          WHERE d.webhook_id = $1 AND d.id = $2"
    ))
    .bind(webhook_id)
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// Makes a delivery due now again (one more attempt). False when it is not this endpoint's.
pub async fn make_due(
    conn: &mut PgConnection,
    webhook_id: Uuid,
    id: Uuid,
) -> Result<bool, sqlx::Error> {
    sqlx::query(
        "UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = clock_timestamp()
          WHERE webhook_id = $1 AND id = $2",
    )
    .bind(webhook_id)
    .bind(id)
    .execute(conn)
    .await
    .map(|r| r.rows_affected() > 0)
}

/// An event as the event log lists it, with its deliveries counted by status.
#[derive(Debug, sqlx::FromRow)]
pub struct EventRow {
    pub id: Uuid,
    pub event_type: String,
    pub payload: Value,
    pub created_at: DateTime<Utc>,
    pub pending: i64,
    pub delivered: i64,
    pub failed: i64,
}

/// Up to `limit` events, newest first, of one type and provider when given, after `before`.
pub async fn events(
    db: &PgPool,
    event_type: Option<&str>,
    provider: Option<&str>,
    before: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<EventRow>, sqlx::Error> {
    let (at, id) = before.unzip();
    sqlx::query_as(
        "SELECT e.id, e.event_type, e.payload, e.created_at,
                count(d.id) FILTER (WHERE d.status = 'pending') AS pending,
                count(d.id) FILTER (WHERE d.status = 'delivered') AS delivered,
                count(d.id) FILTER (WHERE d.status = 'failed') AS failed
           FROM webhook_events e LEFT JOIN webhook_deliveries d ON d.event_id = e.id
          WHERE ($1::text IS NULL OR e.event_type = $1)
            AND ($2::text IS NULL OR e.provider = $2)
            AND ($3::timestamptz IS NULL OR (e.created_at, e.id) < ($3, $4))
          GROUP BY e.id
          ORDER BY e.created_at DESC, e.id DESC
          LIMIT $5",
    )
    .bind(event_type)
    .bind(provider)
    .bind(at)
    .bind(id)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// Deletes up to `batch` settled deliveries older than `cutoff`, then events older than it
/// that have no delivery left; returns how many rows went.
pub async fn purge_batch(
    db: &PgPool,
    cutoff: DateTime<Utc>,
    batch: i64,
) -> Result<u64, sqlx::Error> {
    let deliveries = sqlx::query(
        "DELETE FROM webhook_deliveries WHERE id IN (
             SELECT id FROM webhook_deliveries
              WHERE status <> 'pending' AND created_at < $1
              LIMIT $2)",
    )
    .bind(cutoff)
    .bind(batch)
    .execute(db)
    .await?
    .rows_affected();
    let events = sqlx::query(
        "DELETE FROM webhook_events WHERE id IN (
             SELECT e.id FROM webhook_events e
              WHERE e.created_at < $1
                AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = e.id)
              LIMIT $2)",
    )
    .bind(cutoff)
    .bind(batch)
    .execute(db)
    .await?
    .rows_affected();
    Ok(deliveries + events)
}
