//! The health monitor: every `HEALTH_CHECK_INTERVAL` it validates each enabled integration and
//! flags OAuth connections that need attention. Rounds are numbered by wall-clock interval and
//! each round is claimed with a Redis lease, so one replica runs it however many are up.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use utoipa::ToSchema;

use crate::domain::validation::{self, ValidationReport};
use crate::domain::{Environment, Provider, Role};
use crate::http::auth::{Caller, RequestMeta};
use crate::http::error::ApiError;
use crate::infra::lock::{Lock, Renewal};
use crate::state::AppState;
use crate::store::oauth_tokens;

/// Refresh tokens closer than this to their hard expiry are flagged.
const REFRESH_EXPIRY_WARNING_DAYS: i64 = 7;

/// An OAuth connection that needs a person: re-authorization, or soon.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TokenFlag {
    pub provider: String,
    pub environment: String,
    pub status: String,
    pub refresh_expires_at: Option<DateTime<Utc>>,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MonitorRound {
    pub round: u64,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub validations: Vec<ValidationReport>,
    /// Enabled integrations with nothing to validate (e.g. not yet connected), and why.
    pub skipped: Vec<String>,
    pub flagged_tokens: Vec<TokenFlag>,
    /// False when Redis was unreachable and the round ran without a lease.
    pub leased: bool,
}

/// The round number for a moment: rounds are consecutive intervals of wall-clock time.
pub fn round_at(now: DateTime<Utc>, interval: Duration) -> u64 {
    (now.timestamp().max(0) as u64) / interval.as_secs().max(1)
}

fn monitor_caller() -> Caller {
    Caller {
        token_id: None,
        name: "health-monitor".into(),
        role: Role::Admin,
        meta: RequestMeta::default(),
    }
}

/// Runs round `round` unless another replica has claimed it; returns the round when this
/// process ran it.
pub async fn run_round(state: &AppState, round: u64) -> Result<Option<MonitorRound>, ApiError> {
    let lease_ttl = state.settings.health_check_interval * 2;
    let name = format!("lease:health-monitor:{round}");
    let leased = match Lock::try_acquire(&state.redis, &name, lease_ttl, Renewal::None).await {
        // Kept until it expires: the round is done for every replica.
        Ok(Some(lease)) => {
            lease.keep_until_expiry();
            true
        }
        Ok(None) => return Ok(None),
        Err(e) => {
            tracing::warn!(error = %e, round, "no Redis lease for the health monitor; running this round locally");
            false
        }
    };
    let started_at = Utc::now();
    let caller = monitor_caller();
    let mut validations = Vec::new();
    let mut skipped = Vec::new();
    for row in crate::store::integrations::list(&state.db)
        .await?
        .into_iter()
        .filter(|r| r.enabled)
    {
        let (Ok(provider), Ok(environment)) = (
            row.provider.parse::<Provider>(),
            row.environment.parse::<Environment>(),
        ) else {
            continue;
        };
        match validation::validate(state, &caller, provider, environment).await {
            Ok(report) => validations.push(report),
            Err(ApiError::Conflict(why)) => {
                skipped.push(format!("{provider}/{environment}: {why}"))
            }
            Err(e) => {
                tracing::warn!(error = %e, %provider, %environment, "health monitor could not validate");
                skipped.push(format!("{provider}/{environment}: {}", e.code()));
            }
        }
    }
    let flagged_tokens = flagged_tokens(state).await?;
    let report = MonitorRound {
        round,
        started_at,
        finished_at: Utc::now(),
        validations,
        skipped,
        flagged_tokens,
        leased,
    };
    remember(state, &report).await;
    crate::infra::metrics::MONITOR_LAST_SUCCESS.set(report.finished_at.timestamp());
    Ok(Some(report))
}

async fn flagged_tokens(state: &AppState) -> Result<Vec<TokenFlag>, ApiError> {
    let soon = Utc::now() + chrono::Duration::days(REFRESH_EXPIRY_WARNING_DAYS);
    Ok(oauth_tokens::needing_attention(&state.db, soon)
        .await?
        .into_iter()
        .map(|row| {
            let reason = if row.status == "connected" {
                format!("the refresh token expires within {REFRESH_EXPIRY_WARNING_DAYS} days; re-authorize")
            } else {
                format!("the connection is {}; re-authorize", row.status)
            };
            TokenFlag {
                provider: row.provider,
                environment: row.environment,
                status: row.status,
                refresh_expires_at: row.refresh_expires_at,
                reason,
            }
        })
        .collect())
}

/// Keeps the last round where every replica can read it (Redis) and in this process.
async fn remember(state: &AppState, round: &MonitorRound) {
    let Ok(json) = serde_json::to_string(round) else {
        return;
    };
    *state
        .monitor_last
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(json.clone());
    let result: redis::RedisResult<()> = state
        .redis
        .query(
            redis::cmd("SET")
                .arg(state.redis.key("monitor:last"))
                .arg(json)
                .arg("EX")
                .arg(7 * 24 * 3600),
        )
        .await;
    if let Err(e) = result {
        tracing::warn!(error = %e, "could not store the monitor round in Redis");
    }
}

/// The last completed round by any replica, or by this process when Redis is away.
pub async fn last_round(state: &AppState) -> Option<MonitorRound> {
    let shared: redis::RedisResult<Option<String>> = state
        .redis
        .query(redis::cmd("GET").arg(state.redis.key("monitor:last")))
        .await;
    let json = match shared {
        Ok(Some(json)) => json,
        _ => state
            .monitor_last
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()?,
    };
    serde_json::from_str(&json).ok()
}

/// The background loop; stops when `cancel` fires.
pub fn spawn(state: AppState, cancel: CancellationToken) {
    tokio::spawn(async move {
        let interval = state.settings.health_check_interval;
        // The first round comes one interval after start, so restarts don't burst provider calls.
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tick.tick() => {
                    let round = round_at(Utc::now(), interval);
                    if let Err(e) = run_round(&state, round).await {
                        tracing::warn!(error = %e, round, "health monitor round failed");
                    }
                }
            }
        }
    });
}
