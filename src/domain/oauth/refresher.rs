//! The background refresher: one task per application instance, renewing tokens that expire
//! within `OAUTH_REFRESH_WINDOW`, through the same locked path as on-demand refreshes.

use chrono::Utc;
use tokio_util::sync::CancellationToken;

use super::refresh::{self, Trigger};
use crate::domain::Role;
use crate::http::auth::{Caller, RequestMeta};
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

/// One pass: every connected token expiring within the window. Failures are logged and
/// audited by the refresh itself; transient ones back off there.
pub async fn run_once(state: &AppState) {
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
