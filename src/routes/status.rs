//! `GET /api/config/status`: every provider × environment at a glance.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::READERS;
use crate::domain::audit::{Resource, attempt};
use crate::domain::{Environment, Provider};
use crate::http::auth::Caller;
use crate::http::error::ApiError;
use crate::state::AppState;
use crate::store;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/config/status", get(status))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct IntegrationStatus {
    pub provider: Provider,
    pub environment: Environment,
    pub configured: bool,
    pub enabled: bool,
    pub version: Option<i64>,
    pub updated_at: Option<DateTime<Utc>>,
    pub last_validation: Option<crate::domain::integrations::LastValidation>,
    pub breaker: crate::infra::breaker::BreakerView,
    pub connection: Option<ConnectionSummary>,
}

/// The OAuth connection of an integration, without tokens.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectionSummary {
    /// `connected`, `needs_reauth` or `revoked`.
    pub status: String,
    pub expires_at: Option<DateTime<Utc>>,
    pub refresh_expires_at: Option<DateTime<Utc>>,
    pub last_refreshed_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StatusReport {
    pub integrations: Vec<IntegrationStatus>,
}

/// Configured and enabled state of every provider × environment.
#[utoipa::path(get, path = "/api/config/status", tag = "health", security(("bearer" = [])),
    responses((status = 200, body = StatusReport)))]
async fn status(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<StatusReport>, ApiError> {
    let resource = Resource {
        kind: "status",
        id: None,
        provider: None,
        environment: None,
    };
    attempt(
        &state.db,
        &caller,
        READERS,
        "status_read",
        &resource,
        async {
            let rows = store::integrations::list(&state.db).await?;
            let tokens = store::oauth_tokens::list(&state.db).await?;
            let mut integrations = Vec::new();
            for provider in Provider::ALL {
                for environment in Environment::ALL {
                    let row = rows.iter().find(|r| {
                        r.provider == provider.as_str() && r.environment == environment.as_str()
                    });
                    integrations.push(IntegrationStatus {
                        provider,
                        environment,
                        configured: row.is_some(),
                        enabled: row.is_some_and(|r| r.enabled),
                        version: row.map(|r| r.version),
                        updated_at: row.map(|r| r.updated_at),
                        last_validation: row.and_then(|r| {
                            r.last_validated_at.map(|at| {
                                crate::domain::integrations::LastValidation {
                                    at,
                                    status: r.last_validation_status.clone(),
                                    detail: r.last_validation_detail.clone(),
                                }
                            })
                        }),
                        breaker: state.breakers.view(provider, environment).await,
                        connection: tokens
                            .iter()
                            .find(|t| {
                                t.provider == provider.as_str()
                                    && t.environment == environment.as_str()
                            })
                            .map(|t| ConnectionSummary {
                                status: t.status.clone(),
                                expires_at: t.expires_at,
                                refresh_expires_at: t.refresh_expires_at,
                                last_refreshed_at: t.last_refreshed_at,
                            }),
                    });
                }
            }
            Ok(Json(StatusReport { integrations }))
        },
    )
    .await
}
