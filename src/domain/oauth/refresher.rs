//! The background refresher: one task per application instance, renewing tokens that expire
//! within `OAUTH_REFRESH_WINDOW`, through the same locked path as on-demand refreshes.

use chrono::Utc;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::refresh::{self, Trigger};
use crate::domain::events::{EventType, NewEvent};
use crate::domain::outbox;
use crate::domain::{Environment, Provider, Role};
use crate::http::auth::{Caller, RequestMeta};
use crate::http::error::ApiError;
use crate::state::AppState;
use crate::store::oauth_tokens;

/// Runs until `stop` is cancelled.
pub fn spawn(state: AppState, stop: CancellationToken) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(state.settings.oauth.refresh_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tick.tick() => run_once(&state).await,
            }
        }
        tracing::debug!("OAuth refresher stopped");
    });
}

/// Announces (`oauth.expiring`) each connection whose refresh token expires within
/// `OAUTH_EXPIRY_WARNING_DAYS`, once per expiry across replicas: the claim and its events
/// commit together. Returns how many were announced.
pub async fn warn_expiring(state: &AppState) -> Result<usize, ApiError> {
    let days = i64::from(state.settings.oauth.expiry_warning_days);
    let mut tx = state.db.begin().await?;
    let expiring =
        oauth_tokens::claim_expiring(&mut tx, Utc::now() + chrono::Duration::days(days)).await?;
    for e in &expiring {
        let (Ok(provider), Ok(environment)) = (
            e.provider.parse::<Provider>(),
            e.environment.parse::<Environment>(),
        ) else {
            continue;
        };
        let event = NewEvent::about(EventType::OAuthExpiring, provider, environment)
            .with("refresh_expires_at", json!(e.refresh_expires_at))
            .with("refresh_hard_expires_at", json!(e.refresh_hard_expires_at));
        outbox::record(&mut tx, &event).await?;
    }
    tx.commit().await?;
    Ok(expiring.len())
}

/// One pass: every connected token expiring within the window. Failures are logged and
/// audited by the refresh itself; transient ones back off there.
pub async fn run_once(state: &AppState) {
    if let Err(e) = warn_expiring(state).await {
        tracing::warn!(
            error.code = e.code(),
            "could not announce expiring OAuth connections"
        );
    }
    let window = state.settings.oauth.refresh_window;
    let before = Utc::now() + chrono::Duration::from_std(window).unwrap_or(chrono::Duration::MAX);
    let due = match oauth_tokens::due(&state.db, before).await {
        Ok(rows) => rows,
        Err(e) => {
            tracing::warn!(error = %e, "OAuth refresher could not list tokens");
            return;
        }
    };
    let caller = Caller {
        token_id: None,
        name: "oauth-refresher".into(),
        role: Role::Service,
        meta: RequestMeta::default(),
    };
    for row in due {
        let (provider, environment) = (row.provider.clone(), row.environment.clone());
        if let Err(e) = refresh::refresh(state, &caller, row, window, Trigger::Background).await {
            tracing::warn!(%provider, %environment, error.code = e.code(), "background token refresh failed");
        }
    }
}
