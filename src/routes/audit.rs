//! `GET /api/config/audit`: filtered, newest first, with an opaque cursor.

use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::domain::audit::{Resource, attempt};
use crate::domain::{Environment, Provider, Role};
use crate::http::auth::Caller;
use crate::http::error::{ApiError, Problem};
use crate::state::AppState;
use crate::store::audit::{self as rows, AuditFilter, AuditRow};

pub fn router() -> Router<AppState> {
    Router::new().route("/api/config/audit", get(list))
}

const MAX_LIMIT: i64 = 500;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    provider: Option<String>,
    environment: Option<String>,
    action: Option<String>,
    /// Actor name (the API token's name).
    actor: Option<String>,
    resource_id: Option<String>,
    success: Option<String>,
    /// RFC 3339 time, inclusive.
    since: Option<String>,
    /// RFC 3339 time, exclusive.
    until: Option<String>,
    /// 1 to 500, default 50.
    limit: Option<String>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEntry {
    pub id: i64,
    pub occurred_at: DateTime<Utc>,
    pub actor_token_id: Option<Uuid>,
    pub actor: String,
    pub actor_ip: Option<String>,
    pub request_id: Option<String>,
    pub user_agent: Option<String>,
    pub action: String,
    pub resource_type: String,
    pub resource_id: Option<String>,
    pub provider: Option<String>,
    pub environment: Option<String>,
    pub success: bool,
    #[schema(value_type = Object)]
    pub details: Value,
}

impl From<AuditRow> for AuditEntry {
    fn from(r: AuditRow) -> Self {
        Self {
            id: r.id,
            occurred_at: r.occurred_at,
            actor_token_id: r.actor_token_id,
            actor: r.actor_name,
            actor_ip: r.actor_ip,
            request_id: r.request_id,
            user_agent: r.user_agent,
            action: r.action,
            resource_type: r.resource_type,
            resource_id: r.resource_id,
            provider: r.provider,
            environment: r.environment,
            success: r.success,
            details: r.details.0,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    pub items: Vec<AuditEntry>,
    /// Pass as `cursor` for the next (older) page; null on the last page.
    pub next_cursor: Option<String>,
}

fn encode_cursor(at: DateTime<Utc>, id: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}:{id}", at.timestamp_micros()))
}

fn decode_cursor(cursor: &str) -> Option<(DateTime<Utc>, i64)> {
    let text = String::from_utf8(URL_SAFE_NO_PAD.decode(cursor).ok()?).ok()?;
    let (micros, id) = text.split_once(':')?;
    Some((
        DateTime::from_timestamp_micros(micros.parse().ok()?)?,
        id.parse().ok()?,
    ))
}

fn parse_filter(q: AuditQuery) -> Result<(AuditFilter, i64), ApiError> {
    let mut errors = Vec::new();
    let mut err =
        |field: &str, msg: &str| errors.push(crate::http::error::FieldError::new(field, msg));
    if let Some(p) = &q.provider {
        if p.parse::<Provider>().is_err() {
            err("provider", "expected hubspot, stripe or quickbooks");
        }
    }
    if let Some(e) = &q.environment {
        if e.parse::<Environment>().is_err() {
            err("environment", "expected sandbox or production");
        }
    }
    let success = match q.success.as_deref() {
        None => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(_) => {
            err("success", "expected true or false");
            None
        }
    };
    let mut time = |field: &str, v: &Option<String>| {
        v.as_ref()
            .and_then(|s| match DateTime::parse_from_rfc3339(s) {
                Ok(t) => Some(t.with_timezone(&Utc)),
                Err(_) => {
                    err(field, "expected an RFC 3339 time like 2026-01-31T12:00:00Z");
                    None
                }
            })
    };
    let since = time("since", &q.since);
    let until = time("until", &q.until);
    let limit = match q.limit.as_deref().map(str::parse::<i64>) {
        None => 50,
        Some(Ok(n)) if (1..=MAX_LIMIT).contains(&n) => n,
        Some(_) => {
            errors.push(crate::http::error::FieldError::new(
                "limit",
                "expected a whole number from 1 to 500",
            ));
            50
        }
    };
    let before = match q.cursor.as_deref() {
        None => None,
        Some(c) => match decode_cursor(c) {
            Some(pos) => Some(pos),
            None => {
                errors.push(crate::http::error::FieldError::new(
                    "cursor",
                    "not a cursor this service issued",
                ));
                None
            }
        },
    };
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    Ok((
        AuditFilter {
            provider: q.provider,
            environment: q.environment,
            action: q.action,
            actor: q.actor,
            resource_id: q.resource_id,
            success,
            since,
            until,
            before,
        },
        limit,
    ))
}

/// Audit records, newest first.
#[utoipa::path(get, path = "/api/config/audit", tag = "audit", security(("bearer" = [])),
    params(AuditQuery),
    responses((status = 200, body = AuditPage), (status = 422, body = Problem)))]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<AuditPage>, ApiError> {
    let resource = Resource {
        kind: "audit_log",
        id: None,
        provider: None,
        environment: None,
    };
    attempt(
        &state.db,
        &caller,
        &[Role::Admin, Role::Viewer],
        "audit_listed",
        &resource,
        async {
            let Query(q) = query.map_err(|e| {
                let text = e.body_text();
                let field = text
                    .split("unknown field `")
                    .nth(1)
                    .and_then(|r| r.split('`').next())
                    .unwrap_or("query")
                    .to_owned();
                ApiError::field(field, "unknown or malformed query parameter")
            })?;
            let (filter, limit) = parse_filter(q)?;
            let mut items = rows::list(&state.db, &filter, limit + 1).await?;
            let next_cursor = if items.len() as i64 > limit {
                items.truncate(limit as usize);
                items.last().map(|r| encode_cursor(r.occurred_at, r.id))
            } else {
                None
            };
            Ok(Json(AuditPage {
                items: items.into_iter().map(Into::into).collect(),
                next_cursor,
            }))
        },
    )
    .await
}
