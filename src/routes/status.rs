//! `GET /api/config/status`: every provider × environment at a glance.

use axum::Json;
use axum::extract::State;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::READERS;
use crate::domain::audit::{Resource, attempt};
use crate::domain::health::{self, StatusReport};
use crate::http::auth::Caller;
use crate::http::error::ApiError;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(status))
}

/// Configured and enabled state of every provider × environment.
#[utoipa::path(get, path = "/api/config/status", tag = "health", security(("bearer" = [])),
    responses((status = 200, body = StatusReport)))]
async fn status(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<StatusReport>, ApiError> {
    let resource = Resource::of_kind("status");
    attempt(&state, &caller, READERS, "status_read", &resource, async {
        Ok(Json(health::status(&state).await?))
    })
    .await
}
