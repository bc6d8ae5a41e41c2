//! Audit records: who did what to which resource, written in the change's own transaction.

use serde_json::{Value, json};
use sqlx::PgConnection;

use crate::domain::{Environment, Provider, Role};
use crate::http::auth::Caller;
use crate::http::error::ApiError;
use crate::state::AppState;
use crate::store::audit::{self as rows, NewAuditRow};

/// What an audit row is about.
#[derive(Debug, Clone)]
pub struct Resource {
    pub kind: &'static str,
    pub id: Option<String>,
    pub provider: Option<Provider>,
    pub environment: Option<Environment>,
}

impl Resource {
    /// A resource of `kind` that is not one row (a listing, the status page, the keyring).
    pub fn of_kind(kind: &'static str) -> Self {
        Self {
            kind,
            id: None,
            provider: None,
            environment: None,
        }
    }

    pub fn integration(provider: Provider, environment: Environment) -> Self {
        Self {
            kind: "integration_config",
            id: Some(format!("{provider}/{environment}")),
            provider: Some(provider),
            environment: Some(environment),
        }
    }

    pub fn webhook(id: Option<String>) -> Self {
        Self {
            kind: "webhook_configuration",
            id,
            provider: None,
            environment: None,
        }
    }

    pub fn api_token(id: Option<String>) -> Self {
        Self {
            kind: "api_token",
            id,
            provider: None,
            environment: None,
        }
    }
}

/// The most entries an audit row's details keep of any one list or map, and the longest text.
const MAX_DETAIL_ENTRIES: usize = 50;
const MAX_TEXT_CHARS: usize = 512;

/// Text as an audit row can always store it: no NUL (PostgreSQL refuses it; U+FFFD stands in)
/// and at most [`MAX_TEXT_CHARS`] characters.
fn storable(text: &str) -> String {
    text.chars()
        .take(MAX_TEXT_CHARS)
        .map(|c| if c == '\0' { '\u{FFFD}' } else { c })
        .collect()
}

/// Details as an audit row can always store them, of bounded size: every string and key
/// storable, and lists and maps cut to their first entries with a count of the rest.
fn bounded(details: Value) -> Value {
    match details {
        Value::String(s) => Value::String(storable(&s)),
        Value::Array(items) => {
            let total = items.len();
            let mut out: Vec<Value> = items
                .into_iter()
                .take(MAX_DETAIL_ENTRIES)
                .map(bounded)
                .collect();
            if total > MAX_DETAIL_ENTRIES {
                out.push(Value::String(format!(
                    "… {} more",
                    total - MAX_DETAIL_ENTRIES
                )));
            }
            Value::Array(out)
        }
        Value::Object(map) => {
            let total = map.len();
            let mut out: serde_json::Map<String, Value> = map
                .into_iter()
                .take(MAX_DETAIL_ENTRIES)
                .map(|(k, v)| (storable(&k), bounded(v)))
                .collect();
            if total > MAX_DETAIL_ENTRIES {
                out.insert("omitted_entries".into(), json!(total - MAX_DETAIL_ENTRIES));
            }
            Value::Object(out)
        }
        other => other,
    }
}

/// Builds the row for an action by this caller; every text in it can be stored.
pub fn row(
    caller: &Caller,
    action: &str,
    resource: &Resource,
    success: bool,
    details: Value,
) -> NewAuditRow {
    let text = |t: &Option<String>| t.as_deref().map(storable);
    NewAuditRow {
        actor_token_id: caller.token_id,
        actor_name: storable(&caller.name),
        actor_ip: text(&caller.meta.client_ip),
        request_id: text(&caller.meta.request_id),
        user_agent: text(&caller.meta.user_agent),
        action: action.to_owned(),
        resource_type: resource.kind.to_owned(),
        resource_id: text(&resource.id),
        provider: resource.provider.map(|p| p.to_string()),
        environment: resource.environment.map(|e| e.to_string()),
        success,
        details: bounded(details),
    }
}

/// Writes an audit row inside the caller's transaction. If it fails, the change must not
/// happen: the error is a 503 and the transaction is rolled back when dropped.
pub async fn write(conn: &mut PgConnection, row: &NewAuditRow) -> Result<(), ApiError> {
    written(rows::insert(conn, row).await)
}

/// Counts an audit write; a failed one is the 503 that keeps the change from happening.
pub(crate) fn written<T>(result: Result<T, sqlx::Error>) -> Result<T, ApiError> {
    crate::infra::metrics::AUDIT_WRITES
        .with_label_values(&[if result.is_ok() { "ok" } else { "failed" }])
        .inc();
    result.map_err(|e| ApiError::AuditUnavailable(e.into()))
}

/// Writes an audit row that belongs to no change (a secret or token read, a refusal) and
/// returns once it is committed, sharing the commit with rows other requests wait on at the
/// same moment. Fails closed: on an error nothing that needed the row may proceed.
pub async fn write_alone(state: &AppState, row: NewAuditRow) -> Result<(), ApiError> {
    let result = state.audit_batch.insert(row).await;
    crate::infra::metrics::AUDIT_WRITES
        .with_label_values(&[if result.is_ok() { "ok" } else { "failed" }])
        .inc();
    result.map_err(|e| ApiError::AuditUnavailable(anyhow::anyhow!(e)))
}

/// Records a refused attempt (403, 412, 409, 422) on its own; a failure here is logged,
/// not returned, so the client still learns why it was refused.
pub async fn record_refusal(
    state: &AppState,
    caller: &Caller,
    action: &str,
    resource: &Resource,
    error: &ApiError,
) {
    let refused = matches!(
        error,
        ApiError::Forbidden
            | ApiError::Validation(_)
            | ApiError::PreconditionFailed
            | ApiError::Conflict(_)
            | ApiError::BadRequest(_)
            | ApiError::UnsupportedMediaType(_)
    );
    if !refused {
        return;
    }
    let fields: Vec<&str> = match error {
        ApiError::Validation(errors) => errors.iter().map(|e| e.field.as_str()).collect(),
        _ => Vec::new(),
    };
    let details = json!({ "error": error.code(), "fields": fields });
    let record = row(caller, action, resource, false, details);
    if let Err(e) = write_alone(state, record).await {
        tracing::error!(error = %e, action, "could not write the audit row of a refused request");
    }
}

/// Runs `f` as `action` on `resource`; refusals (including a wrong role) are audited.
pub async fn attempt<T, F>(
    state: &AppState,
    caller: &Caller,
    allowed: &[Role],
    action: &str,
    resource: &Resource,
    f: F,
) -> Result<T, ApiError>
where
    F: Future<Output = Result<T, ApiError>>,
{
    let result = if caller.has_role(allowed) {
        f.await
    } else {
        Err(ApiError::Forbidden)
    };
    if let Err(error) = &result {
        record_refusal(state, caller, action, resource, error).await;
    }
    result
}
