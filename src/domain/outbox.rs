//! The outbox: an event is written with one pending delivery per subscribed endpoint, in the
//! transaction of the change that caused it — a rolled-back change emits nothing, a committed
//! one is never lost. The delivery worker (`webhook_delivery`) sends them.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgConnection;
use utoipa::ToSchema;
use uuid::Uuid;

use serde_json::{Value, json};

use crate::domain::audit::{self, Resource};
use crate::domain::events::{self, EventType, NewEvent};
use crate::domain::{Environment, Provider};
use crate::http::auth::Caller;
use crate::http::error::ApiError;
use crate::state::AppState;
use crate::store::outbox::{self as rows, DeliveryRow};

/// Writes `event` and its deliveries inside the caller's transaction; returns the endpoints
/// it goes to.
pub async fn record(conn: &mut PgConnection, event: &NewEvent) -> Result<Vec<Uuid>, ApiError> {
    let provider = event.provider.map(|p| p.to_string());
    let environment = event.environment.map(|e| e.to_string());
    rows::insert_event(
        conn,
        event.id,
        event.kind.as_str(),
        provider.as_deref(),
        environment.as_deref(),
        &event.payload(),
    )
    .await?;
    let targets: Vec<Uuid> = rows::subscribers(conn, provider.as_deref())
        .await?
        .into_iter()
        .filter(|s| s.events.iter().any(|p| events::matches(p, event.kind)))
        .map(|s| s.id)
        .collect();
    if !targets.is_empty() {
        rows::insert_deliveries(conn, event.id, &targets).await?;
    }
    Ok(targets)
}

/// Writes an event that belongs to no transaction (a breaker transition, a backup result).
pub async fn record_alone(state: &AppState, event: &NewEvent) -> Result<Vec<Uuid>, ApiError> {
    let mut tx = state.db.begin().await?;
    let targets = record(&mut tx, event).await?;
    tx.commit().await?;
    Ok(targets)
}

/// A `config.*` event: names of the changed fields from a change's audit details (never
/// their values), and the version the change left.
pub fn config_event(
    kind: EventType,
    provider: Provider,
    environment: Environment,
    audit_details: &Value,
    version: i64,
) -> NewEvent {
    let changed = audit_details
        .get("changed_fields")
        .cloned()
        .unwrap_or_else(|| json!([]));
    NewEvent::new(kind, Some(provider), Some(environment))
        .with("changed_fields", changed)
        .with("version", json!(version))
}

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
