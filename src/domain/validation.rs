//! Live credential validation: one cheap read-only call per provider, behind the breaker,
//! with the configured deadline; the result is stored on the config row and audited.

use std::time::Instant;

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use crate::domain::audit::{self, Resource};
use crate::domain::events::{EventType, NewEvent};
use crate::domain::integrations;
use crate::domain::outbox;
use crate::domain::{Environment, Provider};
use crate::http::auth::Caller;
use crate::http::error::ApiError;
use crate::providers::{self, ValidationInput};
use crate::state::AppState;
use crate::store;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ValidationStatus {
    Ok,
    InvalidCredentials,
    Unreachable,
    RateLimited,
    CircuitOpen,
}

impl ValidationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::InvalidCredentials => "invalid_credentials",
            Self::Unreachable => "unreachable",
            Self::RateLimited => "rate_limited",
            Self::CircuitOpen => "circuit_open",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ValidationReport {
    pub provider: Provider,
    pub environment: Environment,
    pub status: ValidationStatus,
    /// Time the provider took to answer; null when no call was made.
    pub latency_ms: Option<u64>,
    pub checked_at: DateTime<Utc>,
    /// What happened, in words; never a credential or a provider response body.
    pub detail: String,
}

/// Validates the stored credentials of one integration and records the result.
pub async fn validate(
    state: &AppState,
    caller: &Caller,
    provider: Provider,
    environment: Environment,
) -> Result<ValidationReport, ApiError> {
    let (row, secrets) = integrations::open_secrets(state, provider, environment)
        .await?
        .ok_or_else(|| {
            ApiError::not_found(format!("{provider} has no {environment} configuration"))
        })?;
    let oauth = match connection_token(state, caller, provider, environment).await {
        Ok(token) => token,
        // The provider already refused the refresh token: the credentials do not work.
        Err(ApiError::NeedsReauth(why)) => {
            let report = (ValidationStatus::InvalidCredentials, None, why);
            return record(state, caller, provider, environment, row.id, report).await;
        }
        Err(e) => return Err(e),
    };
    let input = ValidationInput {
        environment,
        settings: &row.settings.0,
        secrets: &secrets,
        oauth: oauth
            .as_ref()
            .map(|(token, external)| (token, external.as_deref())),
        urls: state.settings.api_urls(provider),
    };
    let call = providers::spec(provider)
        .validation_call(&input)
        .map_err(|why| ApiError::Conflict(format!("nothing to validate: {why}")))?;

    let report = match state.breakers.admit(provider, environment).await {
        Err(_) => (
            ValidationStatus::CircuitOpen,
            None,
            format!(
                "the circuit breaker for {provider}/{environment} is open after repeated provider failures; no call was made"
            ),
        ),
        Ok(permit) => {
            let started = Instant::now();
            let timeout = state.settings.validation_timeout;
            let result = state
                .http
                .get(call.url)
                .bearer_auth(call.bearer.expose_secret())
                .header(reqwest::header::ACCEPT, "application/json")
                .timeout(timeout)
                .send()
                .await;
            let latency = started.elapsed().as_millis() as u64;
            let (status, detail, provider_up) = classify(result, timeout.as_secs());
            state.breakers.record(permit, provider_up).await;
            (status, Some(latency), detail)
        }
    };
    record(state, caller, provider, environment, row.id, report).await
}

/// Stores the result on the config row and audits it, in one transaction.
async fn record(
    state: &AppState,
    caller: &Caller,
    provider: Provider,
    environment: Environment,
    config_id: uuid::Uuid,
    (status, latency_ms, detail): (ValidationStatus, Option<u64>, String),
) -> Result<ValidationReport, ApiError> {
    let checked_at = Utc::now();
    let mut tx = state.db.begin().await?;
    let previous = store::integrations::record_validation(
        &mut tx,
        config_id,
        checked_at,
        status.as_str(),
        &detail,
    )
    .await?;
    // Subscribers hear of a change of outcome, not of every monitor round.
    if previous.as_deref() != Some(status.as_str()) {
        let event = NewEvent::about(EventType::ConfigValidated, provider, environment)
            .with("status", json!(status))
            .with("previous_status", json!(previous));
        outbox::record(&mut tx, &event).await?;
    }
    audit::write(
        &mut tx,
        &audit::row(
            caller,
            "config_validated",
            &Resource::integration(provider, environment),
            status == ValidationStatus::Ok,
            json!({ "status": status, "latency_ms": latency_ms, "detail": detail }),
        ),
    )
    .await?;
    tx.commit().await?;
    state
        .caches
        .config_changed(provider.as_str(), environment.as_str());
    crate::infra::metrics::VALIDATIONS
        .with_label_values(&[provider.as_str(), environment.as_str(), status.as_str()])
        .inc();
    Ok(ValidationReport {
        provider,
        environment,
        status,
        latency_ms,
        checked_at,
        detail,
    })
}

/// Maps the provider's answer to a status, a detail, and whether the provider is up (for the
/// breaker: any answer below 500 means it is).
fn classify(
    result: reqwest::Result<reqwest::Response>,
    timeout_secs: u64,
) -> (ValidationStatus, String, bool) {
    match result {
        Ok(r) => {
            let code = r.status();
            match code.as_u16() {
                200..=299 => (
                    ValidationStatus::Ok,
                    "the provider accepted the credentials".into(),
                    true,
                ),
                401 | 403 => (
                    ValidationStatus::InvalidCredentials,
                    format!(
                        "HTTP {}: the provider rejected the credentials",
                        code.as_u16()
                    ),
                    true,
                ),
                429 => {
                    let retry = r
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .map(|v| format!("; retry after {v} s"))
                        .unwrap_or_default();
                    (
                        ValidationStatus::RateLimited,
                        format!("HTTP 429: the provider is rate limiting these credentials{retry}"),
                        true,
                    )
                }
                500..=599 => (
                    ValidationStatus::Unreachable,
                    format!("HTTP {}: the provider failed", code.as_u16()),
                    false,
                ),
                other => (
                    ValidationStatus::InvalidCredentials,
                    format!("HTTP {other}: the provider refused the request"),
                    true,
                ),
            }
        }
        Err(e) if e.is_timeout() => (
            ValidationStatus::Unreachable,
            format!("no answer within {timeout_secs} s"),
            false,
        ),
        Err(e) if e.is_connect() => (
            ValidationStatus::Unreachable,
            "could not connect to the provider".into(),
            false,
        ),
        Err(_) => (
            ValidationStatus::Unreachable,
            "the request to the provider failed".into(),
            false,
        ),
    }
}

/// The OAuth connection's access token (refreshed first when it expires soon, like any
/// worker's) and its external account id; None when not connected.
async fn connection_token(
    state: &AppState,
    caller: &Caller,
    provider: Provider,
    environment: Environment,
) -> Result<Option<(SecretString, Option<String>)>, ApiError> {
    match crate::domain::oauth::refresh::valid_token(state, caller, provider, environment).await {
        Ok(grant) => Ok(Some((grant.access_token, grant.external_account_id))),
        Err(ApiError::NotFound(_)) => Ok(None),
        Err(e) => Err(e),
    }
}
