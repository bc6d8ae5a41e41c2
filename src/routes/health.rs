//! Liveness, readiness and the detailed component health.

use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use crate::state::AppState;
use crate::store;

const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/health", get(live))
        .route("/health/ready", get(ready))
        .route("/api/config/health", get(detailed))
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/health", tag = "health",
    responses((status = 200, description = "alive", example = json!({"status": "ok"}))))]
async fn live() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

async fn database_ok(state: &AppState) -> Result<Duration, String> {
    let start = Instant::now();
    match tokio::time::timeout(CHECK_TIMEOUT, sqlx::query("SELECT 1").execute(&state.db)).await {
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

/// Readiness: 200 when PostgreSQL and Redis answer, else 503.
#[utoipa::path(get, path = "/health/ready", tag = "health",
    responses((status = 200, description = "ready"), (status = 503, description = "not ready")))]
async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let (db, redis) = tokio::join!(database_ok(&state), redis_ok(&state));
    let up = |r: &Result<Duration, String>| if r.is_ok() { "up" } else { "down" };
    let ok = db.is_ok() && redis.is_ok();
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(json!({
            "status": if ok { "ready" } else { "not_ready" },
            "database": up(&db),
            "redis": up(&redis),
        })),
    )
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

/// Component health. Database, schema or keyring broken is `unhealthy` (503). Redis down, a
/// breaker open or an integration failing validation is `degraded` (200): the service works.
#[utoipa::path(get, path = "/api/config/health", tag = "health",
    responses((status = 200, body = HealthReport), (status = 503, body = HealthReport)))]
async fn detailed(State(state): State<AppState>) -> (StatusCode, Json<HealthReport>) {
    let (db, redis) = tokio::join!(database_ok(&state), redis_ok(&state));
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
    let monitor = crate::domain::monitor::last_round(&state).await;
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
    let backup = backup_component(&state).await;

    let unhealthy = !db_up || migrations.status != "ok" || keyring.status != "ok";
    let status = if unhealthy {
        "unhealthy"
    } else if !redis_up || local_breakers || !failing_integrations.is_empty() {
        "degraded"
    } else {
        "healthy"
    };
    let code = if unhealthy {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (
        code,
        Json(HealthReport {
            status: status.into(),
            database: component(db),
            redis: component(redis),
            keyring,
            migrations,
            breakers,
            monitor,
            failing_integrations,
            backup,
        }),
    )
}
