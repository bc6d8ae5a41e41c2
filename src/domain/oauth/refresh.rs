//! Handing out valid access tokens, refreshing under a lock that spans replicas.
//!
//! At most one refresh per connection at a time: a Redis lock keeps other callers off the
//! database while a refresh runs, and `SELECT … FOR UPDATE` on the token row is the guarantee
//! (it alone still serializes refreshes when Redis is away). Callers that lose the race poll
//! the row and reuse the winner's result. The rotated refresh token is committed before the
//! new access token leaves this module.

use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::json;
use tracing::Instrument;

use super::provider::{self, ProviderError};
use super::vault::{self, TokenGrant};
use crate::domain::audit;
use crate::domain::events::{EventType, NewEvent};
use crate::domain::integrations;
use crate::domain::outbox;
use crate::domain::{Environment, Provider};
use crate::http::auth::Caller;
use crate::http::error::ApiError;
use crate::infra::lock::{Lock, Renewal};
use crate::state::AppState;
use crate::store::oauth_tokens::{self as rows, Refreshed, TokenRow};

/// Why a refresh runs; recorded in the audit row.
#[derive(Debug, Clone, Copy)]
pub enum Trigger {
    OnDemand,
    Background,
}

impl Trigger {
    fn as_str(self) -> &'static str {
        match self {
            Trigger::OnDemand => "on_demand",
            Trigger::Background => "background",
        }
    }
}

/// A valid access token, refreshed first when it expires within `OAUTH_REFRESH_MARGIN`;
/// audited `token_retrieved` (the token itself never is).
pub async fn valid_token(
    state: &AppState,
    caller: &Caller,
    provider: Provider,
    environment: Environment,
) -> Result<TokenGrant, ApiError> {
    let seen = vault::find(state, provider, environment).await?;
    ensure_connected(&seen, provider, environment)?;
    let margin = state.settings.oauth.refresh_margin;
    let (row, refreshed) = if expires_within(&seen, margin) {
        let row = refresh(state, caller, seen.clone(), margin, Trigger::OnDemand).await?;
        let refreshed = row.version != seen.version;
        (row, refreshed)
    } else {
        (seen, false)
    };
    let grant = TokenGrant::open(state.keyring(), &row)?;
    let details =
        json!({ "refreshed": refreshed, "expires_at": row.expires_at, "version": row.version });
    // The token leaves only after its audit row is committed.
    audit::write_alone(
        state,
        audit::row(
            caller,
            "token_retrieved",
            &vault::resource(provider, environment),
            true,
            details,
        ),
    )
    .await?;
    let event = NewEvent::about(EventType::OAuthTokenRetrieved, provider, environment)
        .with("actor", json!(caller.name))
        .with("refreshed", json!(refreshed));
    outbox::record_alone(state, &event).await;
    Ok(grant)
}

fn ensure_connected(
    row: &TokenRow,
    provider: Provider,
    environment: Environment,
) -> Result<(), ApiError> {
    if row.status == "connected" {
        return Ok(());
    }
    Err(ApiError::NeedsReauth(format!(
        "{provider} {environment} is {}: the provider no longer accepts its tokens; connect it again",
        row.status
    )))
}

fn expires_within(row: &TokenRow, margin: Duration) -> bool {
    let margin = chrono::Duration::from_std(margin).unwrap_or(chrono::Duration::MAX);
    row.expires_at.is_some_and(|at| at - Utc::now() <= margin)
}

fn still_valid(row: &TokenRow) -> bool {
    row.expires_at.is_none_or(|at| at > Utc::now())
}

/// Refreshes `seen` unless someone else already did; returns the row to hand out.
///
/// Runs detached: once a provider call starts, its outcome is committed even if the caller
/// goes away (client disconnect, request timeout), so a rotated refresh token is never dropped
/// between the provider and the database.
pub async fn refresh(
    state: &AppState,
    caller: &Caller,
    seen: TokenRow,
    margin: Duration,
    trigger: Trigger,
) -> Result<TokenRow, ApiError> {
    let (state, caller) = (state.clone(), caller.clone());
    let task = async move { refresh_guarded(&state, &caller, seen, margin, trigger).await };
    tokio::spawn(task.instrument(tracing::Span::current()))
        .await
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("the token refresh task failed: {e}")))?
}

async fn refresh_guarded(
    state: &AppState,
    caller: &Caller,
    seen: TokenRow,
    margin: Duration,
    trigger: Trigger,
) -> Result<TokenRow, ApiError> {
    let name = format!("lock:oauth:refresh:{}:{}", seen.provider, seen.environment);
    let ttl = state.settings.oauth.lock_ttl();
    let deadline = Instant::now() + ttl + Duration::from_secs(5);
    let mut pause = Duration::from_millis(10);
    let lock = loop {
        match Lock::try_acquire(&state.redis, &name, ttl, Renewal::WhileHeld).await {
            Ok(Some(lock)) => break Some(lock),
            Ok(None) => {
                // Another caller is refreshing: reuse its result as soon as it is committed.
                let mut conn = state.db.acquire().await?;
                let current = rows::find(&mut conn, &seen.provider, &seen.environment)
                    .await?
                    .ok_or_else(|| ApiError::not_found("the connection was removed"))?;
                drop(conn);
                if current.status != "connected" {
                    let (p, e) = parse_names(&current)?;
                    ensure_connected(&current, p, e)?;
                }
                if current.version != seen.version && still_valid(&current) {
                    return Ok(current);
                }
                if Instant::now() >= deadline {
                    return if still_valid(&seen) {
                        Ok(seen)
                    } else {
                        Err(ApiError::Unavailable {
                            what: "the token (a refresh elsewhere is taking too long)",
                            source: None,
                        })
                    };
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(200));
            }
            Err(e) => {
                tracing::warn!(error = %e, "Redis is unavailable; the token row lock alone guards this refresh");
                break None;
            }
        }
    };
    let result = refresh_locked(state, caller, &seen, margin, trigger).await;
    if let Some(lock) = lock {
        lock.release().await;
    }
    let row = result?;
    if row.status != "connected" {
        let (p, e) = parse_names(&row)?;
        ensure_connected(&row, p, e)?;
    }
    Ok(row)
}

fn parse_names(row: &TokenRow) -> Result<(Provider, Environment), ApiError> {
    let corrupt = |e: String| ApiError::Internal(anyhow::anyhow!("bad token row: {e}"));
    Ok((
        row.provider.parse().map_err(corrupt)?,
        row.environment.parse().map_err(corrupt)?,
    ))
}

async fn refresh_locked(
    state: &AppState,
    caller: &Caller,
    seen: &TokenRow,
    margin: Duration,
    trigger: Trigger,
) -> Result<TokenRow, ApiError> {
    let (provider, environment) = parse_names(seen)?;
    let resource = vault::resource(provider, environment);
    // Read before the row lock: a waiter holding a pooled connection on the lock must never
    // starve the holder of the second connection it would need.
    let (config, secrets) = integrations::open_secrets(state, provider, environment)
        .await?
        .ok_or_else(|| {
            ApiError::Conflict(format!("{provider} {environment} is no longer configured"))
        })?;
    let client = provider::app_client(
        provider,
        state.settings.oauth.endpoints(provider),
        &config.settings.0,
        &secrets,
    )
    .ok_or_else(|| {
        ApiError::Conflict(format!(
            "{provider} {environment} has no OAuth app configured"
        ))
    })?;
    let mut tx = state.db.begin().await?;
    let row = rows::find_for_update(&mut tx, provider.as_str(), environment.as_str())
        .await?
        .ok_or_else(|| ApiError::not_found(format!("{provider} {environment} is not connected")))?;
    let reused = row.version != seen.version && still_valid(&row);
    if row.status != "connected" || reused || !expires_within(&row, margin) {
        return Ok(row);
    }
    if still_valid(&row) && backing_off(state, &row).await {
        return Ok(row);
    }
    let Some(refresh_token) = vault::open_refresh(state.keyring(), &row)? else {
        return if still_valid(&row) {
            Ok(row)
        } else {
            Err(ApiError::NeedsReauth(format!(
                "{provider} {environment} has no refresh token; connect it again"
            )))
        };
    };

    let outcome = state
        .breakers
        .call(
            provider,
            environment,
            client.refresh(
                &state.http,
                state.settings.oauth.provider_timeout,
                &refresh_token,
            ),
            ProviderError::provider_up,
        )
        .await
        .unwrap_or_else(|| Err(ProviderError::circuit_open()));
    crate::infra::metrics::TOKEN_REFRESHES
        .with_label_values(&[
            provider.as_str(),
            match &outcome {
                Ok(_) => "ok",
                Err(e) => e.reason(),
            },
        ])
        .inc();
    match outcome {
        Ok(tokens) => {
            let sealed = vault::seal(state.keyring(), row.id, &tokens);
            let now = Utc::now();
            let secs = |s: u64| {
                chrono::Duration::seconds(i64::try_from(s).unwrap_or(0).min(10 * 365 * 86_400))
            };
            let write = Refreshed {
                access_token: &sealed.access,
                refresh_token: sealed.refresh.as_deref(),
                key_id: &sealed.key_id,
                // A token response without `expires_in` is a token that does not expire.
                expires_at: tokens.expires_in.map(|s| now + secs(s)),
                refresh_expires_at: tokens.refresh_expires_in.map(|s| now + secs(s)),
                scope: tokens.scope.as_deref(),
            };
            let mut updated = rows::refreshed(&mut tx, row.id, &write).await?;
            if let Some(s) = tokens.refresh_hard_expires_in {
                updated = rows::set_hard_expiry(&mut tx, row.id, Some(now + secs(s))).await?;
            }
            let details = json!({
                "trigger": trigger.as_str(),
                "refresh_token_rotated": tokens.refresh_token.is_some(),
                "expires_at": updated.expires_at,
                "version": updated.version,
            });
            audit::write(
                &mut tx,
                &audit::row(caller, "token_refreshed", &resource, true, details),
            )
            .await?;
            // Durable first: the rotated refresh token must survive before anyone uses the
            // new access token.
            tx.commit().await?;
            state
                .caches
                .connection_changed(provider.as_str(), environment.as_str());
            clear_backoff(state, &row).await;
            tracing::info!(%provider, %environment, trigger = trigger.as_str(), "OAuth token refreshed");
            Ok(updated)
        }
        Err(ProviderError::InvalidGrant) => {
            // Re-read: if the row moved on (another replica refreshed), its result stands.
            let current = rows::find(&mut tx, provider.as_str(), environment.as_str()).await?;
            if let Some(current) = current.filter(|c| c.version != row.version) {
                return Ok(current);
            }
            rows::set_status(&mut tx, row.id, "needs_reauth").await?;
            let details = json!({ "trigger": trigger.as_str(), "error": "invalid_grant", "status": "needs_reauth" });
            let event = NewEvent::about(EventType::OAuthNeedsReauth, provider, environment)
                .with("reason", json!("invalid_grant"))
                .with("trigger", json!(trigger.as_str()));
            outbox::record(&mut tx, &event).await?;
            audit::write(
                &mut tx,
                &audit::row(caller, "token_refreshed", &resource, false, details),
            )
            .await?;
            tx.commit().await?;
            state
                .caches
                .connection_changed(provider.as_str(), environment.as_str());
            tracing::warn!(%provider, %environment, "refresh token rejected (invalid_grant); the connection needs reauthorization");
            Err(ApiError::NeedsReauth(format!(
                "{provider} {environment} is needs_reauth: the provider no longer accepts its refresh token; connect it again"
            )))
        }
        Err(e) => {
            // Nothing is written but the audit row; the stored tokens stay as they were.
            drop(tx);
            tracing::warn!(%provider, %environment, error = %e, "token refresh failed; will back off");
            let details = json!({ "trigger": trigger.as_str(), "error": e.reason() });
            let record = audit::row(caller, "token_refreshed", &resource, false, details);
            let mut conn = state.db.acquire().await?;
            audit::write(&mut conn, &record).await?;
            drop(conn);
            let event = NewEvent::about(EventType::OAuthRefreshFailed, provider, environment)
                .with("reason", json!(e.reason()))
                .with("trigger", json!(trigger.as_str()));
            outbox::record_alone(state, &event).await;
            back_off(state, &row).await;
            if still_valid(&row) {
                Ok(row)
            } else {
                Err(ApiError::unavailable("the provider's token endpoint", e))
            }
        }
    }
}

fn backoff_key(state: &AppState, row: &TokenRow) -> String {
    state.redis.key(&format!(
        "oauth:backoff:{}:{}",
        row.provider, row.environment
    ))
}

/// True while a recent transient failure asks refreshes of a still-valid token to wait.
async fn backing_off(state: &AppState, row: &TokenRow) -> bool {
    let until = format!("{}:until", backoff_key(state, row));
    state
        .redis
        .query(redis::cmd("EXISTS").arg(until))
        .await
        .unwrap_or(false)
}

/// Exponential: 5 s, 10 s, 20 s … at most 5 minutes after consecutive failures.
async fn back_off(state: &AppState, row: &TokenRow) {
    let key = backoff_key(state, row);
    let Ok(attempts) = state.redis.query::<i64>(redis::cmd("INCR").arg(&key)).await else {
        return;
    };
    let wait_ms = (5_000u64 << attempts.clamp(1, 7).saturating_sub(1) as u32).min(300_000);
    let mut pipe = redis::pipe();
    pipe.cmd("PEXPIRE").arg(&key).arg(wait_ms * 4).ignore();
    pipe.cmd("SET")
        .arg(format!("{key}:until"))
        .arg(1)
        .arg("PX")
        .arg(wait_ms)
        .ignore();
    let _: redis::RedisResult<()> = state.redis.pipeline(&pipe).await;
}

async fn clear_backoff(state: &AppState, row: &TokenRow) {
    let key = backoff_key(state, row);
    let _: redis::RedisResult<i64> = state
        .redis
        .query(redis::cmd("DEL").arg(&key).arg(format!("{key}:until")))
        .await;
}
