//! The one place errors become HTTP: RFC 9457 problem+json with a stable `code`.
//!
//! 4xx details are safe to show. 5xx bodies say nothing about the cause; the cause chain is
//! logged once, here.

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::infra::crypto::OpenError;

tokio::task_local! {
    /// The current request's id, set by the request-id middleware for everything it runs.
    pub static REQUEST_ID: String;
}

/// The current request's id, when called inside a request.
pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// One invalid field of a request, named by its path (`secrets.secret_key`).
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// An RFC 9457 problem document.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    pub code: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// How many more invalid fields there were beyond the first [`MAX_LISTED_ERRORS`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors_omitted: Option<usize>,
}

/// The most field errors one problem lists: a request with thousands of bad fields gets an
/// answer of bounded size.
pub const MAX_LISTED_ERRORS: usize = 50;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("a valid bearer token is required")]
    Unauthorized,
    #[error("this token's role may not do this")]
    Forbidden,
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("the request has invalid fields")]
    Validation(Vec<FieldError>),
    #[error("{0}")]
    Conflict(String),
    /// An OAuth connection the provider no longer honours; only a new authorization helps.
    #[error("{0}")]
    NeedsReauth(String),
    #[error("the resource changed since it was read (If-Match does not match the current version)")]
    PreconditionFailed,
    #[error("the request body is larger than the limit of {0} bytes")]
    PayloadTooLarge(usize),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("too many requests; retry after {0:?}")]
    RateLimited(Duration),
    #[error("{what} is unavailable")]
    Unavailable {
        what: &'static str,
        #[source]
        source: Option<anyhow::Error>,
    },
    #[error("the audit log could not be written, so the change was not made")]
    AuditUnavailable(#[source] anyhow::Error),
    #[error("a stored secret could not be opened: {0}")]
    SealedValueUnreadable(#[from] OpenError),
    #[error("the request took longer than {0:?}")]
    Timeout(Duration),
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    pub fn not_found(what: impl Into<String>) -> Self {
        Self::NotFound(what.into())
    }

    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Validation(vec![FieldError::new(field, message)])
    }

    pub fn unavailable(what: &'static str, source: impl Into<anyhow::Error>) -> Self {
        Self::Unavailable {
            what,
            source: Some(source.into()),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Conflict(_) | Self::NeedsReauth(_) => StatusCode::CONFLICT,
            Self::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable { .. } | Self::AuditUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Timeout(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::SealedValueUnreadable(_) | Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable machine-readable code clients match on.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::NotFound(_) => "not_found",
            Self::BadRequest(_) => "bad_request",
            Self::Validation(_) => "validation_failed",
            Self::Conflict(_) => "conflict",
            Self::NeedsReauth(_) => "needs_reauth",
            Self::PreconditionFailed => "precondition_failed",
            Self::PayloadTooLarge(_) => "payload_too_large",
            Self::UnsupportedMediaType(_) => "unsupported_media_type",
            Self::RateLimited(_) => "rate_limited",
            Self::Unavailable { .. } => "service_unavailable",
            Self::AuditUnavailable(_) => "audit_unavailable",
            Self::SealedValueUnreadable(_) => "sealed_value_unreadable",
            Self::Timeout(_) => "timeout",
            Self::Internal(_) => "internal_error",
        }
    }

    fn detail(&self) -> String {
        match self {
            Self::Unavailable { what, .. } => {
                format!("{what} is unavailable right now; retry shortly")
            }
            // Says what happened and what to check, never the cause's internals.
            Self::SealedValueUnreadable(e) => format!(
                "a stored secret could not be decrypted ({e}); check ENCRYPTION_KEY and ENCRYPTION_KEYS_PREVIOUS, or restore the value"
            ),
            Self::Internal(_) => "an internal error occurred; see the service log".to_owned(),
            other => other.to_string(),
        }
    }

    fn retry_after(&self) -> Option<u64> {
        match self {
            Self::RateLimited(wait) => Some(wait.as_secs().max(1)),
            Self::Unavailable { .. } | Self::AuditUnavailable(_) | Self::Timeout(_) => Some(5),
            _ => None,
        }
    }

    pub fn to_problem(&self) -> Problem {
        let status = self.status();
        Problem {
            kind: format!("urn:hsq-config:problem:{}", self.code()),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail: self.detail(),
            code: self.code().to_owned(),
            request_id: current_request_id(),
            errors: match self {
                Self::Validation(errors) => {
                    errors.iter().take(MAX_LISTED_ERRORS).cloned().collect()
                }
                _ => Vec::new(),
            },
            errors_omitted: match self {
                Self::Validation(errors) if errors.len() > MAX_LISTED_ERRORS => {
                    Some(errors.len() - MAX_LISTED_ERRORS)
                }
                _ => None,
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status().is_server_error() {
            tracing::error!(error.code = self.code(), error.cause_chain = ?anyhow_chain(&self), "request failed");
        }
        let mut response = problem_response(self.status(), &self.to_problem());
        if let Some(secs) = self.retry_after() {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if matches!(self, Self::Unauthorized) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// Renders a problem document with the right content type.
pub fn problem_response(status: StatusCode, problem: &Problem) -> Response {
    let body = serde_json::to_vec(problem).unwrap_or_default();
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        )],
        body,
    )
        .into_response()
}

fn anyhow_chain(e: &(dyn std::error::Error + 'static)) -> Vec<String> {
    let mut chain = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        chain.push(s.to_string());
        source = s.source();
    }
    chain
}

/// PostgreSQL error codes that mean "not now" rather than "never".
fn is_transient(db: &dyn sqlx::error::DatabaseError) -> bool {
    db.code().is_some_and(|c| {
        c.starts_with("08") || c.starts_with("57P") || c == "53300" || c == "40001" || c == "40P01"
    })
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::RowNotFound => Self::NotFound("not found".into()),
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_) => Self::unavailable("the database", e),
            sqlx::Error::Database(db) if is_transient(db.as_ref()) => {
                Self::unavailable("the database", e)
            }
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                Self::Conflict(conflict_message(db.constraint()))
            }
            _ => Self::Internal(e.into()),
        }
    }
}

/// Maps a unique constraint to what the client did wrong.
fn conflict_message(constraint: Option<&str>) -> String {
    match constraint {
        Some("integration_configs_provider_environment_key") => {
            "this provider and environment were configured by another request at the same time; read it and retry".into()
        }
        Some("api_tokens_name_active_key") => "an active API token with this name exists".into(),
        _ => "the request conflicts with existing data".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_errors_hide_their_cause() {
        let e = ApiError::Internal(anyhow::anyhow!(
            "connection to db.internal:5432 password=hunter2"
        ));
        let p = e.to_problem();
        assert_eq!(p.status, 500);
        assert!(!p.detail.contains("hunter2"));
        assert!(!p.detail.contains("db.internal"));
    }

    #[test]
    fn validation_errors_list_their_fields() {
        let p = ApiError::field("secrets.secret_key", "must start with sk_").to_problem();
        assert_eq!(p.status, 422);
        assert_eq!(p.code, "validation_failed");
        assert_eq!(p.errors[0].field, "secrets.secret_key");
    }
}
