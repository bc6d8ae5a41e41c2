//! `GET /api/config/events`: the recent event log, filterable by type and provider.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::READERS;
use crate::domain::audit::{Resource, attempt};
use crate::domain::events::{self, EventType};
use crate::domain::webhook_log::{self, EventPage, decode_cursor};
use crate::domain::{Provider, one_of};
use crate::http::auth::Caller;
use crate::http::error::{ApiError, FieldError, Problem};
use crate::state::AppState;

/// The most events one page holds.
const MAX_LIMIT: i64 = 200;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventQuery {
    /// One event type of the catalogue, e.g. `config.updated`.
    #[serde(rename = "type")]
    #[param(rename = "type", value_type = Option<EventType>)]
    event_type: Option<String>,
    #[param(value_type = Option<Provider>)]
    provider: Option<String>,
    /// 1 to 200, default 50.
    #[param(value_type = Option<i64>, minimum = 1, maximum = 200)]
    limit: Option<String>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// Recent events, newest first, with their deliveries counted by status.
#[utoipa::path(get, path = "/api/config/events", tag = "webhooks", security(("bearer" = [])),
    params(EventQuery),
    responses((status = 200, body = EventPage), (status = 422, body = Problem)))]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<EventQuery>, QueryRejection>,
) -> Result<Json<EventPage>, ApiError> {
    let resource = Resource::of_kind("webhook_event");
    attempt(
        &state,
        &caller,
        READERS,
        "events_listed",
        &resource,
        async {
            let Query(q) = query
                .map_err(|_| ApiError::field("query", "unknown or malformed query parameter"))?;
            let mut errors = Vec::new();
            let kind = match q.event_type.as_deref().map(str::parse::<EventType>) {
                None => None,
                Some(Ok(kind)) => Some(kind),
                Some(Err(())) => {
                    let message = format!("expected one event type: {}", events::accepted());
                    errors.push(FieldError::new("type", message));
                    None
                }
            };
            let provider = match q.provider.as_deref().map(str::parse::<Provider>) {
                None => None,
                Some(Ok(p)) => Some(p),
                Some(Err(_)) => {
                    let message = format!("expected {}", one_of(&Provider::ALL));
                    errors.push(FieldError::new("provider", message));
                    None
                }
            };
            let limit = match q.limit.as_deref().map(str::parse::<i64>) {
                None => 50,
                Some(Ok(n)) if (1..=MAX_LIMIT).contains(&n) => n,
                Some(_) => {
                    let message = format!("expected a whole number from 1 to {MAX_LIMIT}");
                    errors.push(FieldError::new("limit", message));
                    50
                }
            };
            let cursor = q.cursor.as_deref().and_then(|c| {
                let pos = decode_cursor(c);
                if pos.is_none() {
                    errors.push(FieldError::new(
                        "cursor",
                        "not a cursor this service issued",
                    ));
                }
                pos
            });
            if !errors.is_empty() {
                return Err(ApiError::Validation(errors));
            }
            Ok(Json(
                webhook_log::events(&state, kind, provider, cursor, limit).await?,
            ))
        },
    )
    .await
}
