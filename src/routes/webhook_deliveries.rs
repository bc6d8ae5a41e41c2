//! `/api/config/webhooks/{id}/…`: test sends, the delivery log, retries and secret rotation.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::{ADMIN, READERS};
use crate::domain::audit::{Resource, attempt};
use crate::domain::webhook_delivery::{self, AttemptOutcome};
use crate::domain::webhook_log::{self, DeliveryPage, DeliveryView, decode_cursor};
use crate::domain::webhooks::{self, RotatedSecret};
use crate::http::auth::Caller;
use crate::http::error::{ApiError, FieldError, Problem};
use crate::state::AppState;

/// The most deliveries one page holds.
const MAX_LIMIT: i64 = 200;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(test))
        .routes(routes!(list))
        .routes(routes!(retry))
        .routes(routes!(rotate_secret))
}

fn parse_id(id: &str) -> Result<Uuid, ApiError> {
    id.parse()
        .map_err(|_| ApiError::not_found("no webhook configuration has this id"))
}

/// Send a `webhook.test` event to the endpoint now and report the attempt.
#[utoipa::path(post, path = "/api/config/webhooks/{id}/test", tag = "webhooks", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = AttemptOutcome), (status = 404, body = Problem)))]
async fn test(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<AttemptOutcome>, ApiError> {
    attempt(
        &state,
        &caller,
        ADMIN,
        "webhook_tested",
        &Resource::webhook(Some(id.clone())),
        async {
            Ok(Json(
                webhook_delivery::send_test(&state, parse_id(&id)?).await?,
            ))
        },
    )
    .await
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeliveriesQuery {
    /// 1 to 200, default 50.
    #[param(value_type = Option<i64>, minimum = 1, maximum = 200)]
    limit: Option<String>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// The endpoint's deliveries, newest first.
#[utoipa::path(get, path = "/api/config/webhooks/{id}/deliveries", tag = "webhooks", security(("bearer" = [])),
    params(("id" = Uuid, Path), DeliveriesQuery),
    responses((status = 200, body = DeliveryPage), (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    query: Result<Query<DeliveriesQuery>, QueryRejection>,
) -> Result<Json<DeliveryPage>, ApiError> {
    attempt(
        &state,
        &caller,
        READERS,
        "webhook_deliveries_listed",
        &Resource::webhook(Some(id.clone())),
        async {
            let Query(q) = query
                .map_err(|_| ApiError::field("query", "unknown or malformed query parameter"))?;
            let mut errors = Vec::new();
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
            let cursor = match q.cursor.as_deref() {
                None => None,
                Some(c) => {
                    let pos = decode_cursor(c);
                    if pos.is_none() {
                        errors.push(FieldError::new(
                            "cursor",
                            "not a cursor this service issued",
                        ));
                    }
                    pos
                }
            };
            if !errors.is_empty() {
                return Err(ApiError::Validation(errors));
            }
            Ok(Json(
                webhook_log::deliveries(&state, parse_id(&id)?, cursor, limit).await?,
            ))
        },
    )
    .await
}

/// Attempt a delivery once more, now.
#[utoipa::path(post, path = "/api/config/webhooks/{id}/deliveries/{delivery}/retry", tag = "webhooks",
    security(("bearer" = [])),
    params(("id" = Uuid, Path), ("delivery" = Uuid, Path)),
    responses((status = 202, body = DeliveryView), (status = 404, body = Problem)))]
async fn retry(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, delivery)): Path<(String, String)>,
) -> Result<(axum::http::StatusCode, Json<DeliveryView>), ApiError> {
    attempt(
        &state,
        &caller,
        ADMIN,
        "webhook_delivery_retried",
        &Resource::webhook(Some(id.clone())),
        async {
            let delivery: Uuid = delivery
                .parse()
                .map_err(|_| ApiError::not_found("this webhook has no delivery with this id"))?;
            let view = webhook_log::retry(&state, &caller, parse_id(&id)?, delivery).await?;
            Ok((axum::http::StatusCode::ACCEPTED, Json(view)))
        },
    )
    .await
}

/// Replace the signing secret; the old one keeps signing for `WEBHOOK_SECRET_OVERLAP`.
#[utoipa::path(post, path = "/api/config/webhooks/{id}/rotate-secret", tag = "webhooks",
    security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = RotatedSecret), (status = 404, body = Problem)))]
async fn rotate_secret(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<RotatedSecret>, ApiError> {
    attempt(
        &state,
        &caller,
        ADMIN,
        "webhook_secret_rotated",
        &Resource::webhook(Some(id.clone())),
        async {
            Ok(Json(
                webhooks::rotate_secret(&state, &caller, parse_id(&id)?).await?,
            ))
        },
    )
    .await
}
