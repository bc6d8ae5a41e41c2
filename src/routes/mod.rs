//! Thin handlers: parse, authorize, call one domain function, map the result.

pub mod api_tokens;
pub mod audit;
pub mod backup;
pub mod docs;
pub mod health;
pub mod integrations;
pub mod metrics;
pub mod oauth;
pub mod status;
pub mod webhooks;

use axum::extract::{FromRequestParts, Path};
use axum::http::HeaderMap;
use axum::http::request::Parts;

use crate::domain::integrations::Precondition;
use crate::domain::{Environment, Provider, Role};
use crate::http::error::ApiError;

/// Roles that may read masked data.
pub const READERS: &[Role] = &[Role::Admin, Role::Viewer, Role::Service];
pub const ADMIN: &[Role] = &[Role::Admin];

/// `{provider}/{environment}` from the path, parsed; unknown values are 404.
pub struct IntegrationPath(pub Provider, pub Environment);

impl<S: Send + Sync> FromRequestParts<S> for IntegrationPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path((provider, environment)) =
            Path::<(String, String)>::from_request_parts(parts, state)
                .await
                .map_err(|_| ApiError::not_found("no such route"))?;
        let provider: Provider = provider.parse().map_err(ApiError::NotFound)?;
        let environment: Environment = environment.parse().map_err(ApiError::NotFound)?;
        Ok(Self(provider, environment))
    }
}

/// Parses `If-Match`: `*`, `"N"` or `W/"N"`. Anything else is a 412 (it can never match).
pub fn if_match(headers: &HeaderMap) -> Result<Option<Precondition>, ApiError> {
    let Some(value) = headers.get(axum::http::header::IF_MATCH) else {
        return Ok(None);
    };
    let text = value
        .to_str()
        .map_err(|_| ApiError::PreconditionFailed)?
        .trim();
    if text == "*" {
        return Ok(Some(Precondition::Exists));
    }
    let tag = text.strip_prefix("W/").unwrap_or(text);
    let version = tag
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .and_then(|t| t.parse::<i64>().ok());
    Ok(Some(Precondition::Version(version.unwrap_or(-1))))
}

/// The `ETag` of a resource version.
pub fn etag(version: i64) -> String {
    format!("\"{version}\"")
}
