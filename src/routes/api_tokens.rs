//! `/api/config/api-tokens…`: tokens are returned once, at creation.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use uuid::Uuid;

use super::ADMIN;
use crate::domain::Role;
use crate::domain::audit::{self, Resource, attempt};
use crate::http::auth::{Caller, new_token};
use crate::http::error::{ApiError, Problem};
use crate::http::json::JsonBody;
use crate::state::AppState;
use crate::store::api_tokens::{self as rows, ApiTokenRow};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/config/api-tokens", get(list).post(create))
        .route("/api/config/api-tokens/{id}", delete(revoke))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewApiToken {
    pub name: String,
    pub role: Role,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ApiTokenView {
    pub id: Uuid,
    pub name: String,
    pub role: String,
    pub created_at: DateTime<Utc>,
    pub created_by: Option<String>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl From<ApiTokenRow> for ApiTokenView {
    fn from(r: ApiTokenRow) -> Self {
        Self {
            id: r.id,
            name: r.name,
            role: r.role,
            created_at: r.created_at,
            created_by: r.created_by,
            last_used_at: r.last_used_at,
            revoked_at: r.revoked_at,
        }
    }
}

/// A new token: `token` is shown here once and never again.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedApiToken {
    #[serde(flatten)]
    pub info: ApiTokenView,
    pub token: String,
}

/// Every API token (without the token itself).
#[utoipa::path(get, path = "/api/config/api-tokens", tag = "api-tokens", security(("bearer" = [])),
    responses((status = 200, body = [ApiTokenView]), (status = 403, body = Problem)))]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<ApiTokenView>>, ApiError> {
    attempt(
        &state.db,
        &caller,
        ADMIN,
        "api_token_listed",
        &Resource::api_token(None),
        async {
            Ok(Json(
                rows::list(&state.db)
                    .await?
                    .into_iter()
                    .map(Into::into)
                    .collect(),
            ))
        },
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
        &state.db,
        &caller,
        ADMIN,
        "api_token_created",
        &Resource::api_token(None),
        async {
            let input: NewApiToken = body.parse()?;
            let name = input.name.trim();
            if name.is_empty() || name.len() > 100 || name.chars().any(char::is_control) {
                return Err(ApiError::field(
                    "name",
                    "must be 1 to 100 printable characters",
                ));
            }
            let (token, hash) = new_token();
            let id = Uuid::new_v4();
            let mut tx = state.db.begin().await?;
            let row =
                rows::insert(&mut tx, id, name, input.role.as_str(), &hash, &caller.name).await?;
            audit::write(
                &mut tx,
                &audit::row(
                    &caller,
                    "api_token_created",
                    &Resource::api_token(Some(id.to_string())),
                    true,
                    json!({ "name": name, "role": input.role }),
                ),
            )
            .await?;
            tx.commit().await?;
            Ok((
                StatusCode::CREATED,
                Json(CreatedApiToken {
                    info: row.into(),
                    token: token.expose_secret().to_owned(),
                }),
            ))
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
    attempt(
        &state.db,
        &caller,
        ADMIN,
        "api_token_revoked",
        &Resource::api_token(Some(id.clone())),
        async {
            let not_found = || ApiError::not_found("no active API token has this id");
            let id: Uuid = id.parse().map_err(|_| not_found())?;
            let mut tx = state.db.begin().await?;
            let row = rows::revoke(&mut tx, id).await?.ok_or_else(not_found)?;
            audit::write(
                &mut tx,
                &audit::row(
                    &caller,
                    "api_token_revoked",
                    &Resource::api_token(Some(id.to_string())),
                    true,
                    json!({ "name": row.name, "role": row.role }),
                ),
            )
            .await?;
            tx.commit().await?;
            Ok(StatusCode::NO_CONTENT)
        },
    )
    .await
}
