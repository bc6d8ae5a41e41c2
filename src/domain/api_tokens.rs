//! API tokens: random bearer tokens with a role, stored only as their SHA-256 and shown once.

use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::domain::Role;
use crate::domain::audit::{self, Resource};
use crate::http::auth::{Caller, new_token};
use crate::http::error::ApiError;
use crate::state::AppState;
use crate::store::api_tokens::{self as rows, ApiTokenRow};

/// Body of `POST /api/config/api-tokens`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewApiToken {
    /// 1 to 100 characters, not only spaces, no control characters.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$"
    )]
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

pub fn resource(id: Option<Uuid>) -> Resource {
    Resource::api_token(id.map(|id| id.to_string()))
}

pub async fn list(state: &AppState) -> Result<Vec<ApiTokenView>, ApiError> {
    Ok(rows::list(&state.db)
        .await?
        .into_iter()
        .map(Into::into)
        .collect())
}

/// Creates a token and audits `api_token_created` in one transaction.
pub async fn create(
    state: &AppState,
    caller: &Caller,
    input: NewApiToken,
) -> Result<CreatedApiToken, ApiError> {
    let name = input.name.trim();
    let control = input.name.chars().any(char::is_control);
    if name.is_empty() || input.name.chars().count() > 100 || control {
        return Err(ApiError::field(
            "name",
            "must be 1 to 100 printable characters",
        ));
    }
    let (token, hash) = new_token();
    let id = Uuid::new_v4();
    let mut tx = state.db.begin().await?;
    let row = rows::insert(&mut tx, id, name, input.role.as_str(), &hash, &caller.name).await?;
    audit::write(
        &mut tx,
        &audit::row(
            caller,
            "api_token_created",
            &resource(Some(id)),
            true,
            json!({ "name": name, "role": input.role }),
        ),
    )
    .await?;
    tx.commit().await?;
    Ok(CreatedApiToken {
        info: row.into(),
        token: token.expose_secret().to_owned(),
    })
}

/// Revokes a token (it stops working at once) and audits `api_token_revoked`.
pub async fn revoke(state: &AppState, caller: &Caller, id: Uuid) -> Result<(), ApiError> {
    let mut tx = state.db.begin().await?;
    let row = rows::revoke(&mut tx, id)
        .await?
        .ok_or_else(|| ApiError::not_found("no active API token has this id"))?;
    audit::write(
        &mut tx,
        &audit::row(
            caller,
            "api_token_revoked",
            &resource(Some(id)),
            true,
            json!({ "name": row.name, "role": row.role }),
        ),
    )
    .await?;
    tx.commit().await?;
    state.caches.tokens_changed();
    Ok(())
}
