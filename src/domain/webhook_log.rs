//! What the outbox shows and keeps: an endpoint's deliveries, the event log (cursor pages,
//! newest first), manual retries, and the daily purge of settled deliveries.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::domain::Provider;
use crate::domain::audit::{self, Resource};
use crate::domain::events::{EventType, NewEvent};
use crate::http::auth::Caller;
use crate::http::error::ApiError;
use crate::state::AppState;
use crate::store::webhook_log::{self as rows, DeliveryRow};

/// A delivery as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryView {
    pub id: Uuid,
    /// The `webhook-id` of the event, the same for every attempt.
    pub message_id: String,
    pub event_type: String,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub last_status_code: Option<i32>,
    pub last_error: Option<String>,
    /// The start of the receiver's last answer (at most a few KiB).
    pub last_response_body: Option<String>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

impl From<DeliveryRow> for DeliveryView {
    fn from(r: DeliveryRow) -> Self {
        Self {
            id: r.id,
            message_id: NewEvent::message_id(r.event_id),
            event_type: r.event_type,
            status: r.status,
            attempts: r.attempts,
            next_attempt_at: r.next_attempt_at,
            last_attempt_at: r.last_attempt_at,
            last_status_code: r.last_status_code,
            last_error: r.last_error,
            last_response_body: r.last_response_body,
            created_at: r.created_at,
            delivered_at: r.delivered_at,
        }
    }
}

/// A page of deliveries, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryPage {
    pub items: Vec<DeliveryView>,
    /// Pass as `cursor` for the next (older) page; null on the last page.
    pub next_cursor: Option<String>,
}

fn encode_cursor(at: DateTime<Utc>, id: Uuid) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}:{id}", at.timestamp_micros()))
}

/// The keyset of a cursor; None when it is not one this service made.
pub fn decode_cursor(cursor: &str) -> Option<(DateTime<Utc>, Uuid)> {
    let text = String::from_utf8(URL_SAFE_NO_PAD.decode(cursor).ok()?).ok()?;
    let (micros, id) = text.split_once(':')?;
    Some((
        DateTime::from_timestamp_micros(micros.parse().ok()?)?,
        id.parse().ok()?,
    ))
}

fn no_webhook() -> ApiError {
    ApiError::not_found("no webhook configuration has this id")
}

/// Up to `limit` deliveries of an endpoint, newest first, after `cursor`.
pub async fn deliveries(
    state: &AppState,
    webhook_id: Uuid,
    cursor: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<DeliveryPage, ApiError> {
    let mut conn = state.db.acquire().await?;
    if crate::store::webhooks::find(&mut conn, webhook_id)
        .await?
        .is_none()
    {
        return Err(no_webhook());
    }
    drop(conn);
    let mut items = rows::deliveries(&state.db, webhook_id, cursor, limit + 1).await?;
    let next_cursor = if items.len() as i64 > limit {
        items.truncate(limit as usize);
        items.last().map(|r| encode_cursor(r.created_at, r.id))
    } else {
        None
    };
    Ok(DeliveryPage {
        items: items.into_iter().map(Into::into).collect(),
        next_cursor,
    })
}

/// Makes a delivery due now for one more attempt (audited).
pub async fn retry(
    state: &AppState,
    caller: &Caller,
    webhook_id: Uuid,
    delivery_id: Uuid,
) -> Result<DeliveryView, ApiError> {
    let mut tx = state.db.begin().await?;
    if !rows::make_due(&mut tx, webhook_id, delivery_id).await? {
        return Err(ApiError::not_found(
            "this webhook has no delivery with this id",
        ));
    }
    let row = rows::delivery(&mut tx, webhook_id, delivery_id)
        .await?
        .ok_or_else(|| ApiError::not_found("this webhook has no delivery with this id"))?;
    audit::write(
        &mut tx,
        &audit::row(
            caller,
            "webhook_delivery_retried",
            &Resource::webhook(Some(webhook_id.to_string())),
            true,
            json!({ "delivery_id": delivery_id, "event_type": row.event_type }),
        ),
    )
    .await?;
    tx.commit().await?;
    Ok(row.into())
}

/// An event as the event log shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventView {
    /// The payload receivers got: `{"id", "type", "timestamp", "data"}`.
    #[schema(value_type = Object)]
    pub event: Value,
    pub created_at: DateTime<Utc>,
    /// Its deliveries by status.
    pub pending: i64,
    pub delivered: i64,
    pub failed: i64,
}

/// A page of the event log, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventPage {
    pub items: Vec<EventView>,
    /// Pass as `cursor` for the next (older) page; null on the last page.
    pub next_cursor: Option<String>,
}

/// Up to `limit` recent events, of one type and provider when given, after `cursor`.
pub async fn events(
    state: &AppState,
    kind: Option<EventType>,
    provider: Option<Provider>,
    cursor: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<EventPage, ApiError> {
    let provider = provider.map(|p| p.to_string());
    let mut items = rows::events(
        &state.db,
        kind.map(EventType::as_str),
        provider.as_deref(),
        cursor,
        limit + 1,
    )
    .await?;
    let next_cursor = if items.len() as i64 > limit {
        items.truncate(limit as usize);
        items.last().map(|r| encode_cursor(r.created_at, r.id))
    } else {
        None
    };
    Ok(EventPage {
        items: items
            .into_iter()
            .map(|r| EventView {
                event: r.payload,
                created_at: r.created_at,
                pending: r.pending,
                delivered: r.delivered,
                failed: r.failed,
            })
            .collect(),
        next_cursor,
    })
}

const PURGE_BATCH: i64 = 1000;
const DAY: std::time::Duration = std::time::Duration::from_secs(24 * 60 * 60);

/// Deletes settled deliveries older than `cutoff` (and events left without any), in batches.
pub async fn purge(state: &AppState, cutoff: DateTime<Utc>) -> Result<u64, sqlx::Error> {
    let mut total = 0;
    loop {
        let n = rows::purge_batch(&state.db, cutoff, PURGE_BATCH).await?;
        total += n;
        if n == 0 {
            return Ok(total);
        }
    }
}

/// Today's purge of old deliveries, unless another replica took today's: the Redis marker
/// `lease:webhook-retention` is set for a day and never released.
pub async fn purge_daily(state: &AppState) -> anyhow::Result<Option<u64>> {
    use crate::infra::lock::{Lock, Renewal};
    match Lock::try_acquire(&state.redis, "lease:webhook-retention", DAY, Renewal::None).await? {
        Some(marker) => marker.keep_until_expiry(),
        None => return Ok(None),
    }
    let days = i64::from(state.settings.webhooks.delivery_retention_days);
    let cutoff = Utc::now() - chrono::Duration::days(days);
    let purged = purge(state, cutoff).await?;
    tracing::info!(purged, %cutoff, "webhook deliveries purged");
    Ok(Some(purged))
}

/// How far behind the workers may fall (a due delivery not attempted) before health says
/// `degraded`.
const BACKLOG_DEGRADED_AFTER_SECS: f64 = 300.0;

/// The outbox as `/api/config/health` shows it: `ok`, or `backlogged` when a due delivery
/// has waited more than five minutes for a worker. Failing endpoints do not count: their
/// deliveries wait for their retry time, not for a worker.
pub async fn health(state: &AppState) -> Result<(bool, serde_json::Value), sqlx::Error> {
    let q = crate::store::outbox::queue_state(&state.db).await?;
    let backlogged = q
        .most_overdue_secs
        .is_some_and(|s| s > BACKLOG_DEGRADED_AFTER_SECS);
    Ok((
        !backlogged,
        json!({
            "pending": q.pending,
            "oldest_pending_seconds": q.oldest_pending_secs.map(f64::round),
            "most_overdue_seconds": q.most_overdue_secs.map(f64::round),
            "worker": state.settings.webhooks.delivery_enabled,
        }),
    ))
}
