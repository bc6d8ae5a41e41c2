//! Reading the audit log: filtered pages, newest first, with an opaque keyset cursor.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::value::RawValue;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::http::error::ApiError;
use crate::state::AppState;
use crate::store::audit::{self as rows, AuditFilter, ListedRow};

/// The most rows one page may hold.
pub const MAX_LIMIT: i64 = 500;

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEntry {
    pub id: i64,
    pub occurred_at: DateTime<Utc>,
    pub actor_token_id: Option<Uuid>,
    pub actor: String,
    pub actor_ip: Option<String>,
    pub request_id: Option<String>,
    pub user_agent: Option<String>,
    pub action: String,
    pub resource_type: String,
    pub resource_id: Option<String>,
    pub provider: Option<String>,
    pub environment: Option<String>,
    pub success: bool,
    /// Field names and plain values; never a secret.
    #[schema(value_type = Object)]
    pub details: Box<RawValue>,
}

impl From<ListedRow> for AuditEntry {
    fn from(r: ListedRow) -> Self {
        Self {
            id: r.id,
            occurred_at: r.occurred_at,
            actor_token_id: r.actor_token_id,
            actor: r.actor_name,
            actor_ip: r.actor_ip,
            request_id: r.request_id,
            user_agent: r.user_agent,
            action: r.action,
            resource_type: r.resource_type,
            resource_id: r.resource_id,
            provider: r.provider,
            environment: r.environment,
            success: r.success,
            details: r.details.0,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    pub items: Vec<AuditEntry>,
    /// Pass as `cursor` for the next (older) page; null on the last page.
    pub next_cursor: Option<String>,
}

fn encode_cursor(at: DateTime<Utc>, id: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}:{id}", at.timestamp_micros()))
}

pub fn decode_cursor(cursor: &str) -> Option<(DateTime<Utc>, i64)> {
    let text = String::from_utf8(URL_SAFE_NO_PAD.decode(cursor).ok()?).ok()?;
    let (micros, id) = text.split_once(':')?;
    Some((
        DateTime::from_timestamp_micros(micros.parse().ok()?)?,
        id.parse().ok()?,
    ))
}

/// Up to `limit` rows matching `filter`, newest first, and the cursor of the next page.
pub async fn page(
    state: &AppState,
    filter: &AuditFilter,
    limit: i64,
) -> Result<AuditPage, ApiError> {
    let mut items = rows::list(&state.db, filter, limit + 1).await?;
    let next_cursor = if items.len() as i64 > limit {
        items.truncate(usize::try_from(limit).unwrap_or(0));
        items.last().map(|r| encode_cursor(r.occurred_at, r.id))
    } else {
        None
    };
    Ok(AuditPage {
        items: items.into_iter().map(Into::into).collect(),
        next_cursor,
    })
}
