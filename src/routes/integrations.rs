//! `/api/config/integrations…`

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ADMIN, IntegrationPath, READERS, etag, if_match};
use crate::domain::Role;
use crate::domain::audit::{Resource, attempt};
use crate::domain::integrations::{self, ConfigInput, ConfigPatch, ConfigView, RevealedSecrets};
use crate::domain::validation::{self, ValidationReport};
use crate::http::auth::Caller;
use crate::http::error::{ApiError, Problem};
use crate::http::json::JsonBody;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(read, replace, patch, remove))
        .routes(routes!(reveal))
        .routes(routes!(validate))
}

fn with_etag(status: StatusCode, view: ConfigView) -> Response {
    let tag = etag(view.version);
    (status, [(header::ETAG, tag)], Json(view)).into_response()
}

/// List every configuration, secrets masked.
#[utoipa::path(get, path = "/api/config/integrations", tag = "integrations",
    security(("bearer" = [])),
    responses((status = 200, body = [ConfigView]), (status = 401, body = Problem)))]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<ConfigView>>, ApiError> {
    let resource = Resource::of_kind("integration_config");
    attempt(
        &state,
        &caller,
        READERS,
        "config_listed",
        &resource,
        async { Ok(Json(integrations::list(&state).await?)) },
    )
    .await
}

/// One configuration, secrets masked, with its version as `ETag`.
#[utoipa::path(get, path = "/api/config/integrations/{provider}/{environment}", tag = "integrations",
    params(IntegrationPath),
    security(("bearer" = [])),
    responses((status = 200, body = ConfigView), (status = 404, body = Problem)))]
async fn read(
    State(state): State<AppState>,
    caller: Caller,
    path: IntegrationPath,
) -> Result<Response, ApiError> {
    let resource = path.resource();
    attempt(&state, &caller, READERS, "config_read", &resource, async {
        let (provider, environment) = path.parse()?;
        let view = integrations::get(&state, provider, environment).await?;
        Ok(with_etag(StatusCode::OK, view))
    })
    .await
}

/// Create (201) or replace (200) a configuration. Honours `If-Match`.
#[utoipa::path(put, path = "/api/config/integrations/{provider}/{environment}", tag = "integrations",
    params(IntegrationPath,
           ("If-Match" = Option<String>, Header, description = "the ETag last read")),
    request_body = ConfigInput,
    security(("bearer" = [])),
    responses((status = 201, body = ConfigView), (status = 200, body = ConfigView),
               (status = 412, body = Problem), (status = 422, body = Problem)))]
async fn replace(
    State(state): State<AppState>,
    caller: Caller,
    path: IntegrationPath,
    headers: HeaderMap,
    body: JsonBody,
) -> Result<Response, ApiError> {
    let resource = path.resource();
    attempt(
        &state,
        &caller,
        ADMIN,
        "config_replaced",
        &resource,
        async {
            let (provider, environment) = path.parse()?;
            let precondition = if_match(&headers)?;
            let input: ConfigInput = body.parse()?;
            let (view, created) =
                integrations::put(&state, &caller, provider, environment, input, precondition)
                    .await?;
            let status = if created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            Ok(with_etag(status, view))
        },
    )
    .await
}

/// Change part of a configuration with a JSON merge patch (`null` removes a field).
#[utoipa::path(patch, path = "/api/config/integrations/{provider}/{environment}", tag = "integrations",
    params(IntegrationPath,
           ("If-Match" = Option<String>, Header)),
    request_body(content = ConfigPatch, content_type = "application/merge-patch+json"),
    security(("bearer" = [])),
    responses((status = 200, body = ConfigView), (status = 404, body = Problem),
               (status = 412, body = Problem), (status = 422, body = Problem)))]
async fn patch(
    State(state): State<AppState>,
    caller: Caller,
    path: IntegrationPath,
    headers: HeaderMap,
    body: JsonBody,
) -> Result<Response, ApiError> {
    let resource = path.resource();
    attempt(&state, &caller, ADMIN, "config_patched", &resource, async {
        let (provider, environment) = path.parse()?;
        let precondition = if_match(&headers)?;
        let patch = body.value()?;
        let view = integrations::patch(&state, &caller, provider, environment, patch, precondition)
            .await?;
        Ok(with_etag(StatusCode::OK, view))
    })
    .await
}

/// Delete a configuration and its OAuth tokens.
#[utoipa::path(delete, path = "/api/config/integrations/{provider}/{environment}", tag = "integrations",
    params(IntegrationPath,
           ("If-Match" = Option<String>, Header)),
    security(("bearer" = [])),
    responses((status = 204), (status = 404, body = Problem), (status = 412, body = Problem)))]
async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    path: IntegrationPath,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let resource = path.resource();
    attempt(&state, &caller, ADMIN, "config_deleted", &resource, async {
        let (provider, environment) = path.parse()?;
        integrations::delete(&state, &caller, provider, environment, if_match(&headers)?).await?;
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}

/// The decrypted secrets (admin, service). Audited as `secret_revealed`.
#[utoipa::path(post, path = "/api/config/integrations/{provider}/{environment}/reveal", tag = "integrations",
    params(IntegrationPath),
    security(("bearer" = [])),
    responses((status = 200, body = RevealedSecrets), (status = 403, body = Problem),
               (status = 404, body = Problem)))]
async fn reveal(
    State(state): State<AppState>,
    caller: Caller,
    path: IntegrationPath,
) -> Result<Json<RevealedSecrets>, ApiError> {
    let resource = path.resource();
    attempt(
        &state,
        &caller,
        &[Role::Admin, Role::Service],
        "secret_revealed",
        &resource,
        async {
            let (provider, environment) = path.parse()?;
            Ok(Json(
                integrations::reveal(&state, &caller, provider, environment).await?,
            ))
        },
    )
    .await
}

/// Check the stored credentials against the provider (timeout and circuit breaker apply).
/// The result is stored on the configuration and audited as `config_validated`.
#[utoipa::path(post, path = "/api/config/integrations/{provider}/{environment}/validate", tag = "integrations",
    params(IntegrationPath),
    security(("bearer" = [])),
    responses((status = 200, body = ValidationReport), (status = 404, body = Problem),
               (status = 409, body = Problem, description = "nothing to validate (no credentials or connection)")))]
async fn validate(
    State(state): State<AppState>,
    caller: Caller,
    path: IntegrationPath,
) -> Result<Json<ValidationReport>, ApiError> {
    let resource = path.resource();
    attempt(
        &state,
        &caller,
        ADMIN,
        "config_validated",
        &resource,
        async {
            let (provider, environment) = path.parse()?;
            Ok(Json(
                validation::validate(&state, &caller, provider, environment).await?,
            ))
        },
    )
    .await
}
