//! Cross-cutting HTTP behaviour: request ids, request logs, timeouts, panics, security
//! headers and the per-client rate limit. `app.rs` applies them in one commented order.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ipnet::IpNet;
use tower_governor::GovernorError;
use tower_governor::key_extractor::KeyExtractor;
use tracing::Instrument;

use crate::http::client_ip::{client_ip, peer_of};
use crate::http::error::{ApiError, REQUEST_ID, problem_response};

pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The outermost layer, one per request: takes the client's `x-request-id` when it is sane,
/// else makes one, echoes it on the response and makes it available to error bodies and logs;
/// then writes the request's one log line (method, route template, status, latency, request
/// id — never headers or bodies, so no token or secret reaches the log) and its metrics.
/// One layer, not two: each `from_fn` layer costs a service clone and a boxed future per
/// request.
pub async fn request_context(mut req: Request, next: Next) -> Response {
    let start = Instant::now();
    let id = req
        .headers()
        .get(&X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.chars().all(|c| c.is_ascii_graphic()))
        .map(str::to_owned)
        // A v4 id from the thread's userspace generator: no system call per request.
        .unwrap_or_else(|| {
            uuid::Builder::from_random_bytes(rand::random())
                .into_uuid()
                .to_string()
        });
    let value = HeaderValue::from_str(&id).unwrap_or_else(|_| HeaderValue::from_static("invalid"));
    req.headers_mut()
        .insert(X_REQUEST_ID.clone(), value.clone());
    let method = req.method().clone();
    let route: Arc<str> = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".into(), |p| p.as_str().into());
    let span = tracing::info_span!("http.request", http.method = %method, http.route = %route, request_id = %id);
    let mut response = REQUEST_ID
        .scope(id, next.run(req).instrument(span.clone()))
        .await;
    response.headers_mut().insert(X_REQUEST_ID.clone(), value);
    let status_code = response.status();
    let status = status_code.as_u16();
    let elapsed = start.elapsed().as_secs_f64();
    let latency_ms = elapsed * 1000.0;
    crate::infra::metrics::HTTP_REQUESTS
        .with_label_values(&[&*route, method.as_str(), status_code.as_str()])
        .inc();
    crate::infra::metrics::HTTP_DURATION
        .with_label_values(&[&*route, method.as_str()])
        .observe(elapsed);
    span.in_scope(|| {
        if status >= 500 {
            tracing::warn!(http.status = status, latency_ms, "request finished");
        } else {
            tracing::info!(http.status = status, latency_ms, "request finished");
        }
    });
    response
}

/// Ends a request that runs longer than the configured limit with a 503 problem.
pub async fn timeout(limit: Duration, req: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(response) => response,
        Err(_) => ApiError::Timeout(limit).into_response(),
    }
}

/// Turns a panic into a problem+json 500; the panic message is not sent.
pub fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("a request handler panicked");
    ApiError::Internal(anyhow::anyhow!("handler panicked")).into_response()
}

/// Problem+json for routes and methods that do not exist.
pub async fn not_found() -> ApiError {
    ApiError::not_found("no such route")
}

pub async fn method_not_allowed() -> Response {
    let mut problem = ApiError::BadRequest(String::new()).to_problem();
    problem.status = 405;
    problem.code = "method_not_allowed".into();
    problem.title = "Method Not Allowed".into();
    problem.kind = "urn:hsq-config:problem:method_not_allowed".into();
    problem.detail = "this route does not accept that method".into();
    problem_response(StatusCode::METHOD_NOT_ALLOWED, &problem)
}

/// Security headers for API responses; a route that sets its own keeps it.
const SECURITY_HEADERS: [(HeaderName, HeaderValue); 5] = [
    (
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    ),
    (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
    (
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    ),
    (
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
    ),
    // Anything under the API can carry a secret; nothing is cached.
    (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
];

/// Adds each security header the response has not set itself (one layer for all five).
pub async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in SECURITY_HEADERS {
        headers.entry(name).or_insert(value);
    }
    response
}

/// The rate-limit key: the client address, from `X-Forwarded-For` only via a trusted proxy.
#[derive(Clone)]
pub struct ClientKey {
    pub trusted: Arc<Vec<IpNet>>,
}

impl KeyExtractor for ClientKey {
    type Key = IpAddr;

    fn extract<T>(&self, req: &Request<T>) -> Result<Self::Key, GovernorError> {
        client_ip(peer_of(req), req.headers(), &self.trusted)
            .ok_or(GovernorError::UnableToExtractKey)
    }
}

/// The 429 (or key failure) as problem+json with `Retry-After`.
pub fn rate_limit_response(error: GovernorError) -> Response {
    match error {
        GovernorError::TooManyRequests { wait_time, .. } => {
            ApiError::RateLimited(Duration::from_secs(wait_time)).into_response()
        }
        _ => ApiError::Internal(anyhow::anyhow!("no client address for rate limiting"))
            .into_response(),
    }
}
