//! `webhook_events` and `webhook_deliveries`: the outbox and the per-endpoint attempts the
//! delivery worker claims (see `domain::webhook_delivery`).

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{PgConnection, PgExecutor, PgPool, Postgres, QueryBuilder};
use uuid::Uuid;

use super::audit::NewAuditRow;

/// An enabled endpoint that may receive an event: what subscription matching needs.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Subscriber {
    pub id: Uuid,
    /// Only this provider's events; None for every provider's.
    pub provider: Option<String>,
    pub events: Vec<String>,
}

/// An event as written.
#[derive(Debug)]
pub struct NewEventRow<'a> {
    pub id: Uuid,
    pub event_type: &'a str,
    pub provider: Option<&'a str>,
    pub environment: Option<&'a str>,
    pub payload: &'a Value,
}

fn push_event<'a>(q: &mut QueryBuilder<'a, Postgres>, e: &NewEventRow<'a>) {
    q.push("INSERT INTO webhook_events (id, event_type, provider, environment, payload) VALUES (")
        .push_bind(e.id)
        .push(", ")
        .push_bind(e.event_type)
        .push(", ")
        .push_bind(e.provider)
        .push(", ")
        .push_bind(e.environment)
        .push(", ")
        .push_bind(e.payload)
        .push(")");
}

fn push_deliveries<'a>(q: &mut QueryBuilder<'a, Postgres>, event_id: Uuid, targets: &'a [Uuid]) {
    q.push(
        "INSERT INTO webhook_deliveries (id, webhook_id, event_id, next_attempt_at)
         SELECT gen_random_uuid(), w, ",
    )
    .push_bind(event_id)
    .push(", clock_timestamp() FROM unnest(")
    .push_bind(targets)
    .push("::uuid[]) AS w RETURNING id");
}

pub async fn insert_event(conn: &mut PgConnection, e: &NewEventRow<'_>) -> Result<(), sqlx::Error> {
    let mut q = QueryBuilder::new("");
    push_event(&mut q, e);
    q.build().execute(conn).await.map(|_| ())
}

/// What a change leaves beside itself: its audit row, its event, and one pending delivery of
/// the event per target.
#[derive(Debug, Default)]
pub struct Records<'a> {
    pub audit: Option<&'a NewAuditRow>,
    pub event: Option<NewEventRow<'a>>,
    pub targets: &'a [Uuid],
}

impl<'a> Records<'a> {
    /// Pushes the records as data-modifying `WITH` clauses of the statement pushed next, so a
    /// change and all it leaves reach PostgreSQL in one round trip (which counts while the
    /// change holds its row lock). PostgreSQL runs each clause once, to completion, whether or
    /// not the statement reads it.
    pub fn push_with(&self, q: &mut QueryBuilder<'a, Postgres>) {
        let mut clauses = 0;
        let mut open = |q: &mut QueryBuilder<'a, Postgres>| {
            q.push(if clauses == 0 { "WITH " } else { ", " })
                .push(format_args!("r{clauses} AS ("));
            clauses += 1;
        };
        if let Some(row) = self.audit {
            open(q);
            super::audit::push_insert(q, [row]);
            q.push(") ");
        }
        if let Some(e) = &self.event {
            open(q);
            push_event(q, e);
            q.push(") ");
            if !self.targets.is_empty() {
                open(q);
                push_deliveries(q, e.id, self.targets);
                q.push(") ");
            }
        }
    }
}

/// Writes `records` in one statement; nothing when there are none.
pub async fn insert_records(
    conn: &mut PgConnection,
    records: Records<'_>,
) -> Result<(), sqlx::Error> {
    if records.audit.is_none() && records.event.is_none() {
        return Ok(());
    }
    let mut q = QueryBuilder::new("");
    records.push_with(&mut q);
    q.push("SELECT 1");
    q.build().execute(conn).await.map(|_| ())
}

/// Every enabled endpoint with what it subscribes to: for the in-process cache of who
/// subscribes to what, and read in a change's transaction to pick its event's targets.
pub async fn all_subscribers(db: impl PgExecutor<'_>) -> Result<Vec<Subscriber>, sqlx::Error> {
    sqlx::query_as("SELECT id, provider, events FROM webhook_configurations WHERE enabled")
        .fetch_all(db)
        .await
}

/// One pending delivery of `event_id` to each endpoint, due now; returns their ids.
pub async fn insert_deliveries(
    conn: &mut PgConnection,
    event_id: Uuid,
    webhook_ids: &[Uuid],
) -> Result<Vec<Uuid>, sqlx::Error> {
    let mut q = QueryBuilder::new("");
    push_deliveries(&mut q, event_id, webhook_ids);
    q.build_query_scalar().fetch_all(conn).await
}

/// A delivery claimed for one attempt, with what the attempt needs.
#[derive(Debug, sqlx::FromRow)]
pub struct Claimed {
    pub id: Uuid,
    pub webhook_id: Uuid,
    pub event_id: Uuid,
    /// Attempts including this one.
    pub attempts: i32,
    pub payload: Value,
    pub url: String,
    pub enabled: bool,
    pub secret: Option<Vec<u8>>,
    pub previous_secret: Option<Vec<u8>>,
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
}

const CLAIMED_COLUMNS: &str = "c.id, c.webhook_id, c.event_id, c.attempts, e.payload, w.url,
    w.enabled, w.secret, w.previous_secret, w.previous_secret_expires_at";

/// Claims up to `limit` due deliveries: each gets its attempt counted and its due time moved
/// `lease_secs` ahead, so no other replica takes it while this one sends; if this process dies
/// mid-attempt, the claim lapses and another replica retries (at least once).
pub async fn claim_due(
    db: &PgPool,
    limit: i64,
    lease_secs: f64,
) -> Result<Vec<Claimed>, sqlx::Error> {
    sqlx::query_as(&format!(
        "WITH due AS (
             SELECT id FROM webhook_deliveries
              WHERE status = 'pending' AND next_attempt_at <= clock_timestamp()
              ORDER BY next_attempt_at, created_at
              LIMIT $1
                FOR UPDATE SKIP LOCKED),
         c AS (
             UPDATE webhook_deliveries d
                SET attempts = d.attempts + 1, last_attempt_at = clock_timestamp(),
                    next_attempt_at = clock_timestamp() + make_interval(secs => $2)
               FROM due WHERE d.id = due.id
             RETURNING d.id, d.webhook_id, d.event_id, d.attempts)
         SELECT {CLAIMED_COLUMNS}
           FROM c JOIN webhook_events e ON e.id = c.event_id
                  JOIN webhook_configurations w ON w.id = c.webhook_id"
    ))
    .bind(limit)
    .bind(lease_secs)
    .fetch_all(db)
    .await
}

/// Claims one delivery of one endpoint now, due or not (a test send).
pub async fn claim_one(
    conn: &mut PgConnection,
    webhook_id: Uuid,
    id: Uuid,
    lease_secs: f64,
) -> Result<Option<Claimed>, sqlx::Error> {
    sqlx::query_as(&format!(
        "WITH c AS (
             UPDATE webhook_deliveries d
                SET attempts = d.attempts + 1, last_attempt_at = clock_timestamp(),
                    next_attempt_at = clock_timestamp() + make_interval(secs => $3)
              WHERE d.id = $2 AND d.webhook_id = $1
             RETURNING d.id, d.webhook_id, d.event_id, d.attempts)
         SELECT {CLAIMED_COLUMNS}
           FROM c JOIN webhook_events e ON e.id = c.event_id
                  JOIN webhook_configurations w ON w.id = c.webhook_id"
    ))
    .bind(webhook_id)
    .bind(id)
    .bind(lease_secs)
    .fetch_optional(conn)
    .await
}

/// The outcome of one attempt, as stored.
#[derive(Debug)]
pub struct AttemptRecord<'a> {
    pub status: &'a str,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub status_code: Option<i32>,
    pub error: Option<&'a str>,
    pub response_body: Option<&'a str>,
}

pub async fn record_attempt(
    conn: &mut PgConnection,
    id: Uuid,
    r: &AttemptRecord<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE webhook_deliveries
            SET status = $2, next_attempt_at = $3, last_status_code = $4, last_error = $5,
                last_response_body = $6,
                delivered_at = CASE WHEN $2 = 'delivered' THEN clock_timestamp() END
          WHERE id = $1",
    )
    .bind(id)
    .bind(r.status)
    .bind(r.next_attempt_at)
    .bind(r.status_code)
    .bind(r.error)
    .bind(r.response_body)
    .execute(conn)
    .await
    .map(|_| ())
}

/// Notes a successful delivery to an endpoint: it is not failing any more.
pub async fn endpoint_succeeded(conn: &mut PgConnection, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM webhook_endpoint_state WHERE webhook_id = $1")
        .bind(id)
        .execute(conn)
        .await
        .map(|_| ())
}

/// Notes a failed attempt to an enabled endpoint; returns since when it has only failed.
pub async fn endpoint_failed(
    conn: &mut PgConnection,
    id: Uuid,
) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO webhook_endpoint_state (webhook_id, failing_since)
         SELECT id, clock_timestamp() FROM webhook_configurations WHERE id = $1 AND enabled
         ON CONFLICT (webhook_id) DO UPDATE SET failing_since = webhook_endpoint_state.failing_since
         RETURNING failing_since",
    )
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// Disables an endpoint that has only failed; its pending deliveries fail with it.
pub async fn disable_endpoint(
    conn: &mut PgConnection,
    id: Uuid,
    reason: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE webhook_configurations
            SET enabled = false, disabled_at = clock_timestamp(), disabled_reason = $2,
                version = version + 1, updated_at = clock_timestamp()
          WHERE id = $1 AND enabled",
    )
    .bind(id)
    .bind(reason)
    .execute(&mut *conn)
    .await?
    .rows_affected()
        > 0;
    if done {
        sqlx::query("DELETE FROM webhook_endpoint_state WHERE webhook_id = $1")
            .bind(id)
            .execute(&mut *conn)
            .await?;
        sqlx::query(
            "UPDATE webhook_deliveries
                SET status = 'failed', next_attempt_at = NULL, last_error = 'endpoint disabled'
              WHERE webhook_id = $1 AND status = 'pending'",
        )
        .bind(id)
        .execute(conn)
        .await?;
    }
    Ok(done)
}

/// Stores the secret that keeps signing next to the new one until `expires_at`.
pub async fn set_previous_secret(
    conn: &mut PgConnection,
    id: Uuid,
    sealed: Option<&[u8]>,
    key_id: Option<&str>,
    expires_at: Option<DateTime<Utc>>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE webhook_configurations
            SET previous_secret = $2, previous_secret_key_id = $3, previous_secret_expires_at = $4
          WHERE id = $1",
    )
    .bind(id)
    .bind(sealed)
    .bind(key_id)
    .bind(expires_at)
    .execute(conn)
    .await
    .map(|_| ())
}

/// The delivery queue: pending deliveries, the age of the oldest, and how late the most
/// overdue one is (due but not attempted yet: the workers are behind).
#[derive(Debug, Clone, Copy, sqlx::FromRow)]
pub struct QueueState {
    pub pending: i64,
    pub oldest_pending_secs: Option<f64>,
    pub most_overdue_secs: Option<f64>,
}

pub async fn queue_state(db: &PgPool) -> Result<QueueState, sqlx::Error> {
    sqlx::query_as(
        "SELECT count(*) AS pending,
                EXTRACT(EPOCH FROM clock_timestamp() - min(created_at))::float8
                    AS oldest_pending_secs,
                EXTRACT(EPOCH FROM clock_timestamp()
                    - min(next_attempt_at) FILTER (WHERE next_attempt_at <= clock_timestamp()))::float8
                    AS most_overdue_secs
           FROM webhook_deliveries WHERE status = 'pending'",
    )
    .fetch_one(db)
    .await
}
