//! Liveness, readiness and the detailed component health.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::domain::health::{self, HealthReport};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(live))
        .routes(routes!(ready))
        .routes(routes!(detailed))
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/health", tag = "health",
    responses((status = 200, description = "alive", example = json!({"status": "ok"}))))]
async fn live() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// Readiness: 200 when PostgreSQL and Redis answer, else 503.
#[utoipa::path(get, path = "/health/ready", tag = "health",
    responses((status = 200, description = "ready"), (status = 503, description = "not ready")))]
async fn ready(State(state): State<AppState>) -> Response {
    let r = health::readiness(&state).await;
    let up = |ok: bool| if ok { "up" } else { "down" };
    let body = Json(json!({
        "status": if r.ready() { "ready" } else { "not_ready" },
        "database": up(r.database),
        "redis": up(r.redis),
    }));
    if r.ready() {
        (StatusCode::OK, body).into_response()
    } else {
        // Load balancers and probes back off instead of hammering a replica that waits on a
        // dependency.
        (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "5")],
            body,
        )
            .into_response()
    }
}

/// Component health. Database, schema or keyring broken is `unhealthy` (503). Redis down, a
/// breaker open or an integration failing validation is `degraded` (200): the service works.
#[utoipa::path(get, path = "/api/config/health", tag = "health",
    responses((status = 200, body = HealthReport), (status = 503, body = HealthReport)))]
async fn detailed(State(state): State<AppState>) -> (StatusCode, Json<HealthReport>) {
    let report = health::report(&state).await;
    let code = if report.serving() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(report))
}
