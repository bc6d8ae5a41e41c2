//! `configuration_audit_logs`: append-only rows, written in the caller's transaction.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{PgConnection, PgPool, Postgres, QueryBuilder};
use uuid::Uuid;

/// One audit row as written. `details` holds field names and plain values, never a secret.
#[derive(Debug, Clone)]
pub struct NewAuditRow {
    pub actor_token_id: Option<Uuid>,
    pub actor_name: String,
    pub actor_ip: Option<String>,
    pub request_id: Option<String>,
    pub user_agent: Option<String>,
    pub action: String,
    pub resource_type: String,
    pub resource_id: Option<String>,
    pub provider: Option<String>,
    pub environment: Option<String>,
    pub success: bool,
    pub details: Value,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AuditRow {
    pub id: i64,
    pub occurred_at: DateTime<Utc>,
    pub actor_token_id: Option<Uuid>,
    pub actor_name: String,
    pub actor_ip: Option<String>,
    pub request_id: Option<String>,
    pub user_agent: Option<String>,
    pub action: String,
    pub resource_type: String,
    pub resource_id: Option<String>,
    pub provider: Option<String>,
    pub environment: Option<String>,
    pub success: bool,
    pub details: sqlx::types::Json<Value>,
    /// The previous row's hash and this row's (see `audit_chain`); None until chained, and
    /// on rows written before the chain existed.
    pub prev_hash: Option<Vec<u8>>,
    pub hash: Option<Vec<u8>>,
    /// The row's position in the chain, once chained.
    pub chain_seq: Option<i64>,
}

/// Pushes `INSERT INTO configuration_audit_logs (…) VALUES (…), …` for `rows`: the column list
/// every audit write uses. A plain INSERT: no lock is taken; the sequencer chains the rows
/// shortly after they commit (`domain::audit_chain`).
pub fn push_insert<'a>(
    q: &mut QueryBuilder<'a, Postgres>,
    rows: impl IntoIterator<Item = &'a NewAuditRow>,
) {
    q.push(
        "INSERT INTO configuration_audit_logs
           (actor_token_id, actor_name, actor_ip, request_id, user_agent, action, resource_type,
            resource_id, provider, environment, success, details) ",
    );
    q.push_values(rows, |mut b, row| {
        b.push_bind(row.actor_token_id)
            .push_bind(&row.actor_name)
            .push_bind(&row.actor_ip)
            .push_bind(&row.request_id)
            .push_bind(&row.user_agent)
            .push_bind(&row.action)
            .push_bind(&row.resource_type)
            .push_bind(&row.resource_id)
            .push_bind(&row.provider)
            .push_bind(&row.environment)
            .push_bind(row.success)
            .push_bind(sqlx::types::Json(&row.details));
    });
}

/// One audit row in the caller's transaction (or on its own, committed when it returns).
pub async fn insert(conn: &mut PgConnection, row: &NewAuditRow) -> Result<(), sqlx::Error> {
    let mut q = QueryBuilder::new("");
    push_insert(&mut q, [row]);
    q.build().execute(conn).await.map(|_| ())
}

/// An audit row as the listing reads it: its details left as the JSON text PostgreSQL sent,
/// never parsed, and no chain columns.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ListedRow {
    pub id: i64,
    pub occurred_at: DateTime<Utc>,
    pub actor_token_id: Option<Uuid>,
    pub actor_name: String,
    pub actor_ip: Option<String>,
    pub request_id: Option<String>,
    pub user_agent: Option<String>,
    pub action: String,
    pub resource_type: String,
    pub resource_id: Option<String>,
    pub provider: Option<String>,
    pub environment: Option<String>,
    pub success: bool,
    pub details: sqlx::types::Json<Box<serde_json::value::RawValue>>,
}

/// A listed row and its JSON as the API sends it, rendered once (`domain::audit_log`).
#[derive(Debug)]
pub struct RenderedRow {
    pub row: ListedRow,
    pub json: Box<serde_json::value::RawValue>,
}

/// Filters of `GET /api/config/audit`; `None` means "any".
#[derive(Debug, Default, Clone)]
pub struct AuditFilter {
    pub provider: Option<String>,
    pub environment: Option<String>,
    pub action: Option<String>,
    pub actor: Option<String>,
    pub resource_id: Option<String>,
    pub success: Option<bool>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    /// Keyset position: rows strictly older than (occurred_at, id).
    pub before: Option<(DateTime<Utc>, i64)>,
}

/// Where a listed row sits: all a page's order and cursor need.
#[derive(Debug, Clone, Copy, sqlx::FromRow)]
pub struct Position {
    pub id: i64,
    pub occurred_at: DateTime<Utc>,
}

/// The positions of the rows matching `filter`, newest first, at most `limit`: the rows
/// themselves are read by [`listed`], or not at all when the listing already holds them.
pub async fn positions(
    db: &PgPool,
    filter: &AuditFilter,
    limit: i64,
) -> Result<Vec<Position>, sqlx::Error> {
    let mut q: QueryBuilder<Postgres> =
        QueryBuilder::new("SELECT id, occurred_at FROM configuration_audit_logs WHERE true");
    if let Some(v) = &filter.provider {
        q.push(" AND provider = ").push_bind(v);
    }
    if let Some(v) = &filter.environment {
        q.push(" AND environment = ").push_bind(v);
    }
    if let Some(v) = &filter.action {
        q.push(" AND action = ").push_bind(v);
    }
    if let Some(v) = &filter.actor {
        q.push(" AND actor_name = ").push_bind(v);
    }
    if let Some(v) = &filter.resource_id {
        q.push(" AND resource_id = ").push_bind(v);
    }
    if let Some(v) = filter.success {
        q.push(" AND success = ").push_bind(v);
    }
    if let Some(v) = filter.since {
        q.push(" AND occurred_at >= ").push_bind(v);
    }
    if let Some(v) = filter.until {
        q.push(" AND occurred_at < ").push_bind(v);
    }
    if let Some((at, id)) = filter.before {
        q.push(" AND (occurred_at, id) < (")
            .push_bind(at)
            .push(", ")
            .push_bind(id)
            .push(")");
    }
    // The limit is written into the text, not bound: with `LIMIT $n` PostgreSQL judges the
    // generic plan too costly and plans the statement again on every execution (a third of
    // its time on the newest page); a literal lets it keep one plan per page size.
    q.push(" ORDER BY occurred_at DESC, id DESC LIMIT ")
        .push(limit);
    q.build_query_as().fetch_all(db).await
}

/// The listed rows of these ids, in no order; an id no longer there (retention deleted it)
/// is left out.
pub async fn listed(db: &PgPool, ids: &[i64]) -> Result<Vec<ListedRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, occurred_at, actor_token_id, actor_name, actor_ip, request_id, user_agent,
                action, resource_type, resource_id, provider, environment, success, details
           FROM configuration_audit_logs WHERE id = ANY($1)",
    )
    .bind(ids)
    .fetch_all(db)
    .await
}
