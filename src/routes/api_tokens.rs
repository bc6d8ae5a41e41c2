//! `/api/config/api-tokens…`: tokens are returned once, at creation.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::ADMIN;
use crate::domain::api_tokens::{self, ApiTokenView, CreatedApiToken, NewApiToken, resource};
use crate::domain::audit::attempt;
use crate::http::auth::Caller;
use crate::http::error::{ApiError, Problem};
use crate::http::json::JsonBody;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(revoke))
}

/// Every API token (without the token itself).
#[utoipa::path(get, path = "/api/config/api-tokens", tag = "api-tokens", security(("bearer" = [])),
    responses((status = 200, body = [ApiTokenView]), (status = 403, body = Problem)))]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<ApiTokenView>>, ApiError> {
    attempt(
        &state,
        &caller,
        ADMIN,
        "api_token_listed",
        &resource(None),
        async { Ok(Json(api_tokens::list(&state).await?)) },
    )
    .await
}

/// Create a token with a role; the response holds the token once.
#[utoipa::path(post, path = "/api/config/api-tokens", tag = "api-tokens", security(("bearer" = [])),
    request_body = NewApiToken,
    responses((status = 201, body = CreatedApiToken), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    body: JsonBody,
) -> Result<(StatusCode, Json<CreatedApiToken>), ApiError> {
    attempt(
        &state,
        &caller,
        ADMIN,
        "api_token_created",
        &resource(None),
        async {
            let input: NewApiToken = body.parse()?;
            let created = api_tokens::create(&state, &caller, input).await?;
            Ok((StatusCode::CREATED, Json(created)))
        },
    )
    .await
}

/// Revoke a token; it stops working at once.
#[utoipa::path(delete, path = "/api/config/api-tokens/{id}", tag = "api-tokens", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 204), (status = 404, body = Problem)))]
async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let parsed: Option<Uuid> = id.parse().ok();
    let resource = crate::domain::audit::Resource::api_token(Some(id));
    attempt(
        &state,
        &caller,
        ADMIN,
        "api_token_revoked",
        &resource,
        async {
            let id =
                parsed.ok_or_else(|| ApiError::not_found("no active API token has this id"))?;
            api_tokens::revoke(&state, &caller, id).await?;
            Ok(StatusCode::NO_CONTENT)
        },
    )
    .await
}
