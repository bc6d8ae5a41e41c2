//! Health for probes and operators, and the status of every integration.
//!
//! Liveness needs nothing; readiness asks PostgreSQL and Redis; the detailed report adds the
//! keyring, migrations, breakers, the monitor's last round and scheduled backups. Each check
//! is bounded by its own timeout, so the report answers whatever a dependency does.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use crate::domain::{Environment, Provider};
use crate::http::error::ApiError;
use crate::state::AppState;
use crate::store;

const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

async fn database_ok(state: &AppState) -> Result<Duration, String> {
    let start = Instant::now();
    match tokio::time::timeout(CHECK_TIMEOUT, store::ping(&state.db)).await {
        Ok(Ok(_)) => Ok(start.elapsed()),
        Ok(Err(_)) => Err("unreachable".into()),
        Err(_) => Err("timed out".into()),
    }
}

async fn redis_ok(state: &AppState) -> Result<Duration, String> {
    match tokio::time::timeout(CHECK_TIMEOUT, state.redis.ping()).await {
        Ok(Ok(latency)) => Ok(latency),
        Ok(Err(_)) => Err("unreachable".into()),
        Err(_) => Err("timed out".into()),
    }
}

/// Readiness: whether PostgreSQL and Redis answer, each `up` or `down`.
pub async fn readiness(state: &AppState) -> Readiness {
    let (db, redis) = tokio::join!(database_ok(state), redis_ok(state));
    Readiness {
        database: db.is_ok(),
        redis: redis.is_ok(),
    }
}

/// What `/health/ready` reports.
pub struct Readiness {
    pub database: bool,
    pub redis: bool,
}

impl Readiness {
    pub fn ready(&self) -> bool {
        self.database && self.redis
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Component {
    /// `up`, `down`, `ok`, `degraded` or `error`.
    pub status: String,
    pub latency_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub info: Option<Value>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HealthReport {
    /// `healthy`, `degraded` (200) or `unhealthy` (503).
    pub status: String,
    pub database: Component,
    pub redis: Component,
    pub keyring: Component,
    pub migrations: Component,
    /// Every provider × environment; `backend: local` means Redis was unreachable and this
    /// process is using its own breaker.
    pub breakers: Vec<crate::infra::breaker::BreakerView>,
    /// The health monitor's last completed round (any replica), if one has run.
    pub monitor: Option<crate::domain::monitor::MonitorRound>,
    /// Enabled integrations whose last validation did not succeed, or whose breaker is open.
    pub failing_integrations: Vec<String>,
    /// Scheduled backups: `disabled`, `ok`, `stale` (none within two intervals) or `never`.
    /// Informational: it does not change the overall status.
    pub backup: Component,
    /// Webhook deliveries: `ok`, or `backlogged` (degraded) when due deliveries wait for a
    /// worker for more than five minutes; `info` has the pending count and ages.
    pub outbox: Component,
}

/// The last scheduled backup (any replica), from the audit log.
async fn backup_component(state: &AppState) -> Component {
    let settings = &state.settings.backup;
    let start = Instant::now();
    match crate::domain::backup::schedule::last_success(state).await {
        Ok(last) => {
            let status = match (&last, settings.enabled) {
                (_, false) => "disabled",
                (None, true) => "never",
                (Some((at, _)), true) => {
                    let age = chrono::Utc::now()
                        .signed_duration_since(*at)
                        .to_std()
                        .unwrap_or_default();
                    if age > settings.interval * 2 {
                        "stale"
                    } else {
                        "ok"
                    }
                }
            };
            Component {
                status: status.into(),
                latency_ms: Some(start.elapsed().as_secs_f64() * 1000.0),
                detail: None,
                info: Some(json!({
                    "enabled": settings.enabled,
                    "interval_seconds": settings.interval.as_secs(),
                    "retain": settings.retain,
                    "last_success_at": last.as_ref().map(|(at, _)| at),
                    "last_file": last.as_ref().and_then(|(_, file)| file.clone()),
                })),
            }
        }
        Err(_) => Component {
            status: "down".into(),
            latency_ms: None,
            detail: Some("database unreachable".into()),
            info: None,
        },
    }
}

fn component(result: Result<Duration, String>) -> Component {
    match result {
        Ok(d) => Component {
            status: "up".into(),
            latency_ms: Some(d.as_secs_f64() * 1000.0),
            detail: None,
            info: None,
        },
        Err(e) => Component {
            status: "down".into(),
            latency_ms: None,
            detail: Some(e),
            info: None,
        },
    }
}

/// Component health. Database, schema or keyring broken is `unhealthy`; Redis down, a breaker
/// open or an integration failing validation is `degraded`: the service works.
pub async fn report(state: &AppState) -> HealthReport {
    let (db, redis) = tokio::join!(database_ok(state), redis_ok(state));
    let db_up = db.is_ok();
    let redis_up = redis.is_ok();

    let start = Instant::now();
    let keyring = match store::keyring::values_per_key_id(&state.db).await {
        Ok(in_use) => {
            let unknown: Vec<&String> = in_use
                .iter()
                .map(|(id, _)| id)
                .filter(|id| {
                    !crate::infra::crypto::KeyId::parse(id)
                        .is_some_and(|k| state.keyring().knows(k))
                })
                .collect();
            Component {
                status: if unknown.is_empty() { "ok" } else { "error" }.into(),
                latency_ms: Some(start.elapsed().as_secs_f64() * 1000.0),
                detail: (!unknown.is_empty())
                    .then(|| format!("values sealed under unknown key ids: {unknown:?}")),
                info: Some(json!({
                    "current_key_id": state.keyring().current_id().to_string(),
                    "configured_key_ids": state.keyring().ids().iter().map(ToString::to_string).collect::<Vec<_>>(),
                    "values_per_key_id": in_use.iter().map(|(id, n)| (id.clone(), json!(n))).collect::<serde_json::Map<_, _>>(),
                })),
            }
        }
        Err(_) => Component {
            status: "down".into(),
            latency_ms: None,
            detail: Some("database unreachable".into()),
            info: None,
        },
    };

    let start = Instant::now();
    let migrations = match store::migration_state(&state.db).await {
        Ok((latest, applied)) => Component {
            status: if applied == Some(latest) {
                "ok"
            } else {
                "pending"
            }
            .into(),
            latency_ms: Some(start.elapsed().as_secs_f64() * 1000.0),
            detail: (applied != Some(latest)).then(|| "run `hsq-config migrate`".to_owned()),
            info: Some(json!({ "latest": latest, "applied": applied })),
        },
        Err(_) => Component {
            status: "down".into(),
            latency_ms: None,
            detail: Some("database unreachable".into()),
            info: None,
        },
    };

    let breakers = state.breakers.views().await;
    let monitor = crate::domain::monitor::last_round(state).await;
    let mut failing_integrations: Vec<String> = store::integrations::list(&state.db)
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.enabled)
        .filter(|r| {
            r.last_validation_status
                .as_deref()
                .is_some_and(|s| s != "ok")
        })
        .map(|r| format!("{}/{}", r.provider, r.environment))
        .collect();
    for b in &breakers {
        let name = format!("{}/{}", b.provider, b.environment);
        if b.state != crate::infra::breaker::BreakerState::Closed
            && !failing_integrations.contains(&name)
        {
            failing_integrations.push(name);
        }
    }
    let local_breakers = breakers
        .iter()
        .any(|b| b.backend == crate::infra::breaker::Backend::Local);
    let backup = backup_component(state).await;
    let start = Instant::now();
    let outbox = match crate::domain::webhook_log::health(state).await {
        Ok((ok, info)) => Component {
            status: if ok { "ok" } else { "backlogged" }.into(),
            latency_ms: Some(start.elapsed().as_secs_f64() * 1000.0),
            detail: None,
            info: Some(info),
        },
        Err(_) => Component {
            status: "down".into(),
            latency_ms: None,
            detail: Some("database unreachable".into()),
            info: None,
        },
    };

    let unhealthy = !db_up || migrations.status != "ok" || keyring.status != "ok";
    let status = if unhealthy {
        "unhealthy"
    } else if !redis_up
        || local_breakers
        || !failing_integrations.is_empty()
        || outbox.status == "backlogged"
    {
        "degraded"
    } else {
        "healthy"
    };
    HealthReport {
        status: status.into(),
        database: component(db),
        redis: component(redis),
        keyring,
        migrations,
        breakers,
        monitor,
        failing_integrations,
        backup,
        outbox,
    }
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
    /// The refresh token's hard maximum lifetime, when the provider reports it.
    pub refresh_hard_expires_at: Option<DateTime<Utc>>,
    pub last_refreshed_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StatusReport {
    pub integrations: Vec<IntegrationStatus>,
}

/// Every provider × environment at a glance: configured, enabled, validation, breaker and
/// OAuth connection.
pub async fn status(state: &AppState) -> Result<StatusReport, ApiError> {
    // The rows from the in-process cache (dropped by every config or connection change, on
    // any replica), else one query beside the one Redis round trip for the breakers.
    let cached = state.caches.status.get(&());
    let generation = state.caches.status.generation();
    let (rows, breakers) = tokio::join!(
        async {
            match cached {
                Some(rows) => Ok(rows),
                None => store::integrations::status_rows(&state.db)
                    .await
                    .inspect(|rows| {
                        state
                            .caches
                            .status
                            .insert_since(generation, (), rows.clone());
                    }),
            }
        },
        state.breakers.views()
    );
    let rows = rows?;
    let mut integrations = Vec::new();
    for breaker in breakers {
        let (provider, environment) = (breaker.provider, breaker.environment);
        let row = rows
            .iter()
            .find(|r| r.provider == provider.as_str() && r.environment == environment.as_str());
        integrations.push(IntegrationStatus {
            provider,
            environment,
            configured: row.is_some(),
            enabled: row.is_some_and(|r| r.enabled),
            version: row.map(|r| r.version),
            updated_at: row.map(|r| r.updated_at),
            last_validation: row.and_then(|r| {
                r.last_validated_at
                    .map(|at| crate::domain::integrations::LastValidation {
                        at,
                        status: r.last_validation_status.clone(),
                        detail: r.last_validation_detail.clone(),
                    })
            }),
            breaker,
            connection: row.and_then(|r| {
                r.token_status.clone().map(|status| ConnectionSummary {
                    status,
                    expires_at: r.expires_at,
                    refresh_expires_at: r.refresh_expires_at,
                    refresh_hard_expires_at: r.refresh_hard_expires_at,
                    last_refreshed_at: r.last_refreshed_at,
                })
            }),
        });
    }
    Ok(StatusReport { integrations })
}

impl HealthReport {
    /// False when the service cannot do its work (database, schema or keyring broken).
    pub fn serving(&self) -> bool {
        self.status != "unhealthy"
    }
}
