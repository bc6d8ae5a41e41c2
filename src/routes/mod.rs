//! Thin handlers: parse, authorize, call one domain function, map the result.
//!
//! Each handler's path, method and documentation are written once, in its `#[utoipa::path]`;
//! each file's `router()` registers them with `routes!`, and the OpenAPI document is built from
//! the merged router (see `docs`).

pub mod api_tokens;
pub mod audit;
pub mod backup;
pub mod docs;
pub mod events;
pub mod health;
pub mod integrations;
pub mod metrics;
pub mod oauth;
pub mod status;
pub mod webhook_deliveries;
pub mod webhooks;

use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequestParts, Path, Query};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;

use crate::domain::audit::Resource;
use crate::domain::integrations::Precondition;
use crate::domain::{Environment, Provider, Role, one_of};
use crate::http::error::ApiError;
use crate::state::AppState;

/// Roles that may read masked data.
pub const READERS: &[Role] = &[Role::Admin, Role::Viewer, Role::Service];
pub const ADMIN: &[Role] = &[Role::Admin];

/// Every documented route, merged; `app` adds the layers and `docs` serves the spec.
pub fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(integrations::router())
        .merge(webhooks::router())
        .merge(webhook_deliveries::router())
        .merge(events::router())
        .merge(api_tokens::router())
        .merge(audit::router())
        .merge(status::router())
        .merge(backup::router())
        .merge(oauth::router())
}

/// `{provider}/{environment}` from the path, as sent. Parsed after the caller is authorized,
/// so an unknown provider is a 404 only to a caller allowed to ask.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct IntegrationPath {
    #[param(value_type = Provider)]
    provider: String,
    #[param(value_type = Environment)]
    environment: String,
}

impl IntegrationPath {
    /// The provider and environment; unknown values are 404.
    pub fn parse(&self) -> Result<(Provider, Environment), ApiError> {
        Ok((
            self.provider.parse().map_err(ApiError::NotFound)?,
            self.environment.parse().map_err(ApiError::NotFound)?,
        ))
    }

    /// What a refusal's audit row is about, even for names that do not parse.
    pub fn resource(&self) -> Resource {
        Resource {
            id: Some(format!("{}/{}", self.provider, self.environment)),
            provider: self.provider.parse().ok(),
            environment: self.environment.parse().ok(),
            ..Resource::of_kind("integration_config")
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for IntegrationPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path((provider, environment)) =
            Path::<(String, String)>::from_request_parts(parts, state)
                .await
                .map_err(|_| ApiError::not_found("no such route"))?;
        Ok(Self {
            provider,
            environment,
        })
    }
}

/// `{provider}` from the path, as sent; parsed after the caller is authorized.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ProviderPath {
    #[param(value_type = Provider)]
    provider: String,
}

impl ProviderPath {
    /// The provider; an unknown one is 404.
    pub fn parse(&self) -> Result<Provider, ApiError> {
        self.provider.parse().map_err(ApiError::NotFound)
    }

    /// What a refusal's audit row is about, even for a name that does not parse.
    pub fn resource(&self, environment: Option<Environment>) -> Resource {
        let provider: Option<Provider> = self.provider.parse().ok();
        Resource {
            id: Some(match environment {
                Some(e) => format!("{}/{e}", self.provider),
                None => self.provider.clone(),
            }),
            provider,
            environment,
            ..Resource::of_kind("oauth_connection")
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ProviderPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(provider) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::not_found("no such route"))?;
        Ok(Self { provider })
    }
}

/// `?environment=` of the OAuth routes: required, and refused with the field named.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EnvironmentQuery {
    #[param(value_type = Environment, required = true)]
    environment: Option<String>,
}

impl EnvironmentQuery {
    /// The environment of a query string that may not have parsed at all.
    pub fn parse(query: Result<Query<Self>, QueryRejection>) -> Result<Environment, ApiError> {
        let Query(q) =
            query.map_err(|_| ApiError::BadRequest("the query string could not be read".into()))?;
        let value = q.environment.as_deref().ok_or_else(|| {
            ApiError::field(
                "environment",
                format!("is required: {}", one_of(&Environment::ALL)),
            )
        })?;
        value
            .parse()
            .map_err(|m: String| ApiError::field("environment", m))
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
