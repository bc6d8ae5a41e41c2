//! Reading the audit log: filtered pages, newest first, with an opaque keyset cursor.
//!
//! An audit row never changes once written (only the chain columns, which the listing does not
//! show, are filled in after), so each row is rendered to JSON once and kept in the process
//! (`AppState::audit_rows`, keyed by id and time). A page reads the positions of its rows,
//! then only the rows the process has not rendered yet. A row edited in the database behind
//! the service's back keeps its first rendering here until the process restarts or the cache
//! starts over; `hsq-config audit verify` reads the table itself and names the edit.

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use serde::{Serialize, Serializer};
use serde_json::value::RawValue;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::http::error::ApiError;
use crate::state::AppState;
use crate::store::audit::{self as rows, AuditFilter, ListedRow, RenderedRow};

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

/// A rendered row is sent as the JSON it was rendered to.
impl Serialize for RenderedRow {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.json.serialize(serializer)
    }
}

fn render(row: ListedRow) -> Result<RenderedRow, ApiError> {
    let entry = AuditEntry::from(row.clone());
    let json = serde_json::value::to_raw_value(&entry)
        .map_err(|e| anyhow::anyhow!("cannot render audit row {}: {e}", row.id))?;
    Ok(RenderedRow { row, json })
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    #[schema(value_type = Vec<AuditEntry>)]
    pub items: Vec<Arc<RenderedRow>>,
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
    let mut at = rows::positions(&state.db, filter, limit + 1).await?;
    let next_cursor = if at.len() as i64 > limit {
        at.truncate(usize::try_from(limit).unwrap_or(0));
        at.last().map(|p| encode_cursor(p.occurred_at, p.id))
    } else {
        None
    };
    let keys: Vec<(i64, i64)> = at
        .iter()
        .map(|p| (p.id, p.occurred_at.timestamp_micros()))
        .collect();
    let mut items = state.audit_rows.get_many(&keys);
    let missing: HashMap<(i64, i64), usize> = keys
        .iter()
        .zip(&items)
        .enumerate()
        .filter(|(_, (_, item))| item.is_none())
        .map(|(slot, (key, _))| (*key, slot))
        .collect();
    if !missing.is_empty() {
        let ids: Vec<i64> = missing.keys().map(|(id, _)| *id).collect();
        for row in rows::listed(&state.db, &ids).await? {
            let key = (row.id, row.occurred_at.timestamp_micros());
            // An id found again with another time is not the row positioned: leave it out.
            let Some(&slot) = missing.get(&key) else {
                continue;
            };
            let rendered = Arc::new(render(row)?);
            state.audit_rows.insert(key, Arc::clone(&rendered));
            items[slot] = Some(rendered);
        }
    }
    Ok(AuditPage {
        // A row retention deleted between the two reads is left out.
        items: items.into_iter().flatten().collect(),
        next_cursor,
    })
}
