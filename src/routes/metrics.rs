//! `GET /metrics`: Prometheus text format, behind `METRICS_TOKEN` when set.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use secrecy::ExposeSecret;

use crate::http::error::ApiError;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/metrics", get(metrics))
}

async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    if let Some(expected) = &state.settings.metrics_token {
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(|t| crate::infra::crypto::token_hash(t.trim()));
        if presented.as_deref()
            != Some(crate::infra::crypto::token_hash(expected.expose_secret()).as_slice())
        {
            return Err(ApiError::Unauthorized);
        }
    }
    // Breaker gauges reflect the shared state at scrape time, not this replica's last call.
    state.breakers.views().await;
    let mut response = crate::infra::metrics::render().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    Ok(response)
}
