//! `GET /api/config/audit`: filtered, newest first, with an opaque cursor.

use axum::Json;
use axum::extract::{Query, State};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::domain::audit::{Resource, attempt};
use crate::domain::audit_log::{self, AuditPage, MAX_LIMIT, decode_cursor};
use crate::domain::{Environment, Provider, Role, one_of};
use crate::http::auth::Caller;
use crate::http::error::{ApiError, FieldError, Problem};
use crate::state::AppState;
use crate::store::audit::AuditFilter;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    #[param(value_type = Option<Provider>)]
    pub(crate) provider: Option<String>,
    #[param(value_type = Option<Environment>)]
    pub(crate) environment: Option<String>,
    pub(crate) action: Option<String>,
    /// Actor name (the API token's name).
    pub(crate) actor: Option<String>,
    pub(crate) resource_id: Option<String>,
    #[param(value_type = Option<bool>)]
    pub(crate) success: Option<String>,
    /// RFC 3339 time, inclusive.
    #[param(value_type = Option<chrono::DateTime<chrono::Utc>>)]
    pub(crate) since: Option<String>,
    /// RFC 3339 time, exclusive.
    #[param(value_type = Option<chrono::DateTime<chrono::Utc>>)]
    pub(crate) until: Option<String>,
    /// 1 to 500, default 50.
    #[param(value_type = Option<i64>, minimum = 1, maximum = 500)]
    pub(crate) limit: Option<String>,
    /// `next_cursor` of the previous page.
    pub(crate) cursor: Option<String>,
}

/// The filter and page size of a query, each bad parameter named; the console reads its
/// filters through here too.
pub(crate) fn parse_filter(q: AuditQuery) -> Result<(AuditFilter, i64), ApiError> {
    let texts = [
        ("provider", &q.provider),
        ("environment", &q.environment),
        ("action", &q.action),
        ("actor", &q.actor),
        ("resource_id", &q.resource_id),
        ("success", &q.success),
        ("since", &q.since),
        ("until", &q.until),
        ("limit", &q.limit),
        ("cursor", &q.cursor),
    ];
    // Text PostgreSQL cannot hold is not a filter anything could match: bad input.
    if let Some((name, _)) = texts
        .iter()
        .find(|(_, v)| v.as_deref().is_some_and(|v| v.contains('\0')))
    {
        return Err(ApiError::BadRequest(format!(
            "query parameter {name} must not contain a NUL character"
        )));
    }
    let mut errors = Vec::new();
    let mut err = |field: &str, msg: &str| errors.push(FieldError::new(field, msg));
    if let Some(p) = &q.provider {
        if p.parse::<Provider>().is_err() {
            err("provider", &format!("expected {}", one_of(&Provider::ALL)));
        }
    }
    if let Some(e) = &q.environment {
        if e.parse::<Environment>().is_err() {
            err(
                "environment",
                &format!("expected {}", one_of(&Environment::ALL)),
            );
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
            errors.push(FieldError::new(
                "limit",
                format!("expected a whole number from 1 to {MAX_LIMIT}"),
            ));
            50
        }
    };
    let before = match q.cursor.as_deref() {
        None => None,
        Some(c) => match decode_cursor(c) {
            Some(pos) => Some(pos),
            None => {
                errors.push(FieldError::new(
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
    let resource = Resource::of_kind("audit_log");
    let readers = &[Role::Admin, Role::Viewer];
    attempt(&state, &caller, readers, "audit_listed", &resource, async {
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
        Ok(Json(audit_log::page(&state, &filter, limit).await?))
    })
    .await
}
