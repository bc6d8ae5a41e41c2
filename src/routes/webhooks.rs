//! `/api/config/webhooks…`

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::{ADMIN, READERS, etag, if_match};
use crate::domain::audit::{Resource, attempt};
use crate::domain::integrations::Precondition;
use crate::domain::webhooks::{self, WebhookCreated, WebhookInput, WebhookView};
use crate::http::auth::Caller;
use crate::http::error::{ApiError, Problem};
use crate::http::json::JsonBody;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(read, patch, remove))
}

fn parse_id(id: &str) -> Result<Uuid, ApiError> {
    id.parse()
        .map_err(|_| ApiError::not_found("no webhook configuration has this id"))
}

fn with_etag(status: StatusCode, view: WebhookView) -> Response {
    (status, [(header::ETAG, etag(view.version))], Json(view)).into_response()
}

/// Every webhook configuration, secrets masked.
#[utoipa::path(get, path = "/api/config/webhooks", tag = "webhooks", security(("bearer" = [])),
    responses((status = 200, body = [WebhookView])))]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<WebhookView>>, ApiError> {
    attempt(
        &state,
        &caller,
        READERS,
        "webhook_listed",
        &Resource::webhook(None),
        async { Ok(Json(webhooks::list(&state).await?)) },
    )
    .await
}

/// Create a webhook configuration.
#[utoipa::path(post, path = "/api/config/webhooks", tag = "webhooks", security(("bearer" = [])),
    request_body = WebhookInput,
    responses((status = 201, body = WebhookCreated), (status = 422, body = Problem)))]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    body: JsonBody,
) -> Result<Response, ApiError> {
    attempt(
        &state,
        &caller,
        ADMIN,
        "webhook_created",
        &Resource::webhook(None),
        async {
            let input: WebhookInput = body.parse()?;
            let created = webhooks::create(&state, &caller, input).await?;
            let etag_value = etag(created.webhook.version);
            Ok((
                StatusCode::CREATED,
                [(header::ETAG, etag_value)],
                Json(created),
            )
                .into_response())
        },
    )
    .await
}

/// One webhook configuration.
#[utoipa::path(get, path = "/api/config/webhooks/{id}", tag = "webhooks", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = WebhookView), (status = 404, body = Problem)))]
async fn read(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    attempt(
        &state,
        &caller,
        READERS,
        "webhook_read",
        &Resource::webhook(Some(id.clone())),
        async {
            Ok(with_etag(
                StatusCode::OK,
                webhooks::get(&state, parse_id(&id)?).await?,
            ))
        },
    )
    .await
}

/// Change a webhook configuration with a JSON merge patch.
#[utoipa::path(patch, path = "/api/config/webhooks/{id}", tag = "webhooks", security(("bearer" = [])),
    params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header)),
    request_body(content = Object, content_type = "application/merge-patch+json"),
    responses((status = 200, body = WebhookView), (status = 404, body = Problem),
               (status = 412, body = Problem), (status = 422, body = Problem)))]
async fn patch(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: JsonBody,
) -> Result<Response, ApiError> {
    attempt(
        &state,
        &caller,
        ADMIN,
        "webhook_updated",
        &Resource::webhook(Some(id.clone())),
        async {
            let expected = match if_match(&headers)? {
                Some(Precondition::Version(v)) => Some(v),
                _ => None,
            };
            let view =
                webhooks::patch(&state, &caller, parse_id(&id)?, body.value()?, expected).await?;
            Ok(with_etag(StatusCode::OK, view))
        },
    )
    .await
}

/// Delete a webhook configuration.
#[utoipa::path(delete, path = "/api/config/webhooks/{id}", tag = "webhooks", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 204), (status = 404, body = Problem)))]
async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    attempt(
        &state,
        &caller,
        ADMIN,
        "webhook_deleted",
        &Resource::webhook(Some(id.clone())),
        async {
            webhooks::delete(&state, &caller, parse_id(&id)?).await?;
            Ok(StatusCode::NO_CONTENT)
        },
    )
    .await
}
