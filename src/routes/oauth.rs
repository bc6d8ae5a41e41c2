//! `/api/config/{provider}/…`: OAuth authorize, callback, connection and token.

use std::collections::HashMap;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ADMIN, EnvironmentQuery, ProviderPath, READERS};
use crate::domain::Role;
use crate::domain::audit::attempt;
use crate::domain::oauth::flow::{self, AuthorizeInput, AuthorizeOutput, CallbackOutcome};
use crate::domain::oauth::refresh;
use crate::domain::oauth::vault::{self, ConnectionView, Disconnected, TokenGrant};
use crate::http::auth::{Caller, RequestMeta};
use crate::http::error::{ApiError, Problem};
use crate::http::json::JsonBody;
use crate::state::AppState;

/// Sync workers and admins may fetch tokens.
const TOKEN_ROLES: &[Role] = &[Role::Service, Role::Admin];

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(authorize))
        .routes(routes!(callback))
        .routes(routes!(connection, disconnect))
        .routes(routes!(token))
}

/// A query string that does not parse is a 400 problem like every other error.
fn query_of<T>(query: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    query
        .map(|Query(q)| q)
        .map_err(|_| ApiError::BadRequest("the query string could not be read".into()))
}

/// Start an OAuth flow: returns the provider's consent URL for the user's browser.
#[utoipa::path(post, path = "/api/config/{provider}/oauth/authorize", tag = "oauth",
    params(ProviderPath),
    request_body = AuthorizeInput, security(("bearer" = [])),
    responses((status = 200, body = AuthorizeOutput), (status = 409, body = Problem),
               (status = 422, body = Problem), (status = 503, body = Problem)))]
async fn authorize(
    State(state): State<AppState>,
    caller: Caller,
    path: ProviderPath,
    body: JsonBody,
) -> Result<Json<AuthorizeOutput>, ApiError> {
    attempt(
        &state,
        &caller,
        ADMIN,
        "oauth_authorize_started",
        &path.resource(None),
        async {
            let provider = path.parse()?;
            let input: AuthorizeInput = body.parse()?;
            Ok(Json(
                flow::authorize(&state, &caller, provider, input).await?,
            ))
        },
    )
    .await
}

/// The provider's redirect target. Needs no token: the one-time state authenticates it.
/// Ends in a 303 to `return_to` with `oauth=success` or `oauth=error&reason=…`.
#[utoipa::path(get, path = "/api/config/{provider}/callback", tag = "oauth",
    params(ProviderPath, ("state" = Option<String>, Query, description = "required; a missing or unknown state ends the flow with oauth=error&reason=invalid_state"), ("code" = Option<String>, Query),
           ("error" = Option<String>, Query), ("realmId" = Option<String>, Query)),
    responses((status = 303, description = "back to return_to"),
               (status = 400, description = "an HTML page when there is nowhere to return to")))]
async fn callback(
    State(state): State<AppState>,
    meta: RequestMeta,
    path: ProviderPath,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Result<Response, ApiError> {
    let provider = path.parse()?;
    let query = query_of(query)?;
    let mut response = match flow::callback(&state, meta, provider, &query).await {
        CallbackOutcome::Redirect(url) => {
            let location = HeaderValue::from_str(url.as_str()).map_err(|_| {
                ApiError::Internal(anyhow::anyhow!("return_to is not a valid header value"))
            })?;
            (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response()
        }
        CallbackOutcome::Page { success, reason } => {
            let (status, text) = if success {
                (
                    StatusCode::OK,
                    format!("{provider} is connected. You can close this window."),
                )
            } else {
                (
                    StatusCode::BAD_REQUEST,
                    format!(
                        "Connecting {provider} did not finish ({reason}). Start again from the dashboard."
                    ),
                )
            };
            let html = format!(
                "<!doctype html><html><head><meta charset=\"utf-8\"><title>hsq-config</title></head><body><p>{text}</p></body></html>"
            );
            (status, Html(html)).into_response()
        }
    };
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    Ok(response)
}

/// Connection state, scopes, expiry and external ids — never a token.
#[utoipa::path(get, path = "/api/config/{provider}/connection", tag = "oauth",
    params(ProviderPath, EnvironmentQuery),
    security(("bearer" = [])),
    responses((status = 200, body = ConnectionView), (status = 404, body = Problem)))]
async fn connection(
    State(state): State<AppState>,
    caller: Caller,
    path: ProviderPath,
    query: Result<Query<EnvironmentQuery>, QueryRejection>,
) -> Result<Json<ConnectionView>, ApiError> {
    let environment = EnvironmentQuery::parse(query);
    attempt(
        &state,
        &caller,
        READERS,
        "oauth_connection_read",
        &path.resource(environment.as_ref().ok().copied()),
        async {
            let provider = path.parse()?;
            let environment = environment?;
            Ok(Json(
                vault::connection(&state, provider, environment).await?,
            ))
        },
    )
    .await
}

/// Revoke at the provider (best effort; a failure is reported) and delete the tokens.
#[utoipa::path(delete, path = "/api/config/{provider}/connection", tag = "oauth",
    params(ProviderPath, EnvironmentQuery),
    security(("bearer" = [])),
    responses((status = 200, body = Disconnected), (status = 404, body = Problem)))]
async fn disconnect(
    State(state): State<AppState>,
    caller: Caller,
    path: ProviderPath,
    query: Result<Query<EnvironmentQuery>, QueryRejection>,
) -> Result<Json<Disconnected>, ApiError> {
    let environment = EnvironmentQuery::parse(query);
    attempt(
        &state,
        &caller,
        ADMIN,
        "oauth_disconnected",
        &path.resource(environment.as_ref().ok().copied()),
        async {
            let provider = path.parse()?;
            let environment = environment?;
            Ok(Json(
                vault::disconnect(&state, &caller, provider, environment).await?,
            ))
        },
    )
    .await
}

/// A valid access token, refreshed first when it expires soon. Audited `token_retrieved`.
#[utoipa::path(post, path = "/api/config/{provider}/token", tag = "oauth",
    params(ProviderPath, EnvironmentQuery),
    security(("bearer" = [])),
    responses((status = 200, body = TokenGrant), (status = 404, body = Problem),
               (status = 409, body = Problem, description = "needs reauthorization"),
               (status = 503, body = Problem)))]
async fn token(
    State(state): State<AppState>,
    caller: Caller,
    path: ProviderPath,
    query: Result<Query<EnvironmentQuery>, QueryRejection>,
) -> Result<Json<TokenGrant>, ApiError> {
    let environment = EnvironmentQuery::parse(query);
    attempt(
        &state,
        &caller,
        TOKEN_ROLES,
        "token_retrieved",
        &path.resource(environment.as_ref().ok().copied()),
        async {
            let provider = path.parse()?;
            let environment = environment?;
            Ok(Json(
                refresh::valid_token(&state, &caller, provider, environment).await?,
            ))
        },
    )
    .await
}
