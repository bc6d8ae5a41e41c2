//! The health monitor: every `HEALTH_CHECK_INTERVAL` it validates each enabled integration and
//! flags OAuth connections that need attention. Rounds are numbered by wall-clock interval and
//! each round is claimed with a Redis lease, so one replica runs it however many are up.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use utoipa::ToSchema;

use crate::app::AppState;
use crate::auth::{Caller, RequestMeta};
use crate::domain::{Environment, Provider, Role};
use crate::error::ApiError;
use crate::validation::{self, ValidationReport};

/// Refresh tokens closer than this to their hard expiry are flagged.
const REFRESH_EXPIRY_WARNING_DAYS: i32 = 7;

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
    let leased = match claim(state, round, lease_ttl).await {
        Ok(true) => true,
        Ok(false) => return Ok(None),
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
    crate::metrics::MONITOR_LAST_SUCCESS.set(report.finished_at.timestamp());
    Ok(Some(report))
}

async fn claim(state: &AppState, round: u64, ttl: Duration) -> redis::RedisResult<bool> {
    let mut conn = state.redis.conn().await?;
    let set: Option<String> = redis::cmd("SET")
        .arg(state.redis.key(&format!("lease:health-monitor:{round}")))
        .arg(uuid::Uuid::new_v4().to_string())
        .arg("NX")
        .arg("PX")
        .arg(ttl.as_millis() as u64)
        .query_async(&mut conn)
        .await?;
    Ok(set.is_some())
}

async fn flagged_tokens(state: &AppState) -> Result<Vec<TokenFlag>, ApiError> {
    let rows: Vec<(String, String, String, Option<DateTime<Utc>>)> = sqlx::query_as(
        "SELECT provider, environment, status, refresh_expires_at FROM oauth_tokens
          WHERE status <> 'connected'
             OR refresh_expires_at < now() + make_interval(days => $1)
          ORDER BY provider, environment",
    )
    .bind(REFRESH_EXPIRY_WARNING_DAYS)
    .fetch_all(&state.db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(provider, environment, status, refresh_expires_at)| {
            let reason = if status == "connected" {
                format!("the refresh token expires within {REFRESH_EXPIRY_WARNING_DAYS} days; re-authorize")
            } else {
                format!("the connection is {status}; re-authorize")
            };
            TokenFlag { provider, environment, status, refresh_expires_at, reason }
        })
        .collect())
}

/// Keeps the last round where every replica can read it (Redis) and in this process.
async fn remember(state: &AppState, round: &MonitorRound) {
    *state.monitor_last.lock().await = Some(round.clone());
    let Ok(json) = serde_json::to_string(round) else {
        return;
    };
    let result: redis::RedisResult<()> = async {
        let mut conn = state.redis.conn().await?;
        redis::cmd("SET")
            .arg(state.redis.key("monitor:last"))
            .arg(json)
            .arg("EX")
            .arg(7 * 24 * 3600)
            .query_async(&mut conn)
            .await
    }
    .await;
    if let Err(e) = result {
        tracing::warn!(error = %e, "could not store the monitor round in Redis");
    }
}

/// The last completed round by any replica, or by this process when Redis is away.
pub async fn last_round(state: &AppState) -> Option<MonitorRound> {
    let shared: redis::RedisResult<Option<String>> = async {
        let mut conn = state.redis.conn().await?;
        redis::cmd("GET")
            .arg(state.redis.key("monitor:last"))
            .query_async(&mut conn)
            .await
    }
    .await;
    match shared {
        Ok(Some(json)) => serde_json::from_str(&json).ok(),
        _ => state.monitor_last.lock().await.clone(),
    }
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
