//! The outbox: an event is written with one pending delivery per subscribed endpoint, in the
//! transaction of the change that caused it — a rolled-back change emits nothing, a committed
//! one is never lost. The delivery worker (`webhook_delivery`) sends them.

use sqlx::PgConnection;
use uuid::Uuid;

use serde_json::{Value, json};

use crate::domain::audit;
use crate::domain::events::{self, EventType, NewEvent};
use crate::domain::{Environment, Provider};
use crate::http::error::ApiError;
use crate::state::AppState;
use crate::store::audit::NewAuditRow;
use crate::store::outbox::{self as rows, Subscriber};

/// The enabled endpoints, from this process's cache when it holds a fresh copy (see
/// `store::invalidation` for how fresh).
async fn cached_subscribers(state: &AppState) -> Result<Vec<Subscriber>, sqlx::Error> {
    if let Some(list) = state.caches.webhooks.get(&()) {
        return Ok(list);
    }
    let generation = state.caches.webhooks.generation();
    let list = rows::all_subscribers(&state.db).await?;
    state
        .caches
        .webhooks
        .insert_since(generation, (), list.clone());
    Ok(list)
}

/// Writes `event` and its deliveries inside the caller's transaction; returns the endpoints
/// it goes to.
pub async fn record(conn: &mut PgConnection, event: &NewEvent) -> Result<Vec<Uuid>, ApiError> {
    subscribers(conn).await?.record(conn, event).await
}

/// Every enabled endpoint, read in the caller's transaction. A change that locks a row reads
/// them before it does, so the read is not made while others wait on the lock; its events go
/// to the endpoints enabled when it began.
pub async fn subscribers(conn: &mut PgConnection) -> Result<Subscribers, ApiError> {
    Ok(Subscribers(rows::all_subscribers(conn).await?))
}

/// What [`subscribers`] read.
pub struct Subscribers(Vec<Subscriber>);

impl Subscribers {
    /// Writes `event` and its deliveries inside the caller's transaction; returns the
    /// endpoints it goes to.
    pub async fn record(
        &self,
        conn: &mut PgConnection,
        event: &NewEvent,
    ) -> Result<Vec<Uuid>, ApiError> {
        let targets = targets(&self.0, event);
        self.write(conn, None, event, &targets).await?;
        Ok(targets)
    }

    /// Writes a change's audit row, its event and the event's deliveries in one statement
    /// inside the change's transaction (one round trip while it holds its row lock). A failure
    /// is `audit_unavailable`: the change must not commit without its audit row.
    pub async fn record_audited(
        &self,
        conn: &mut PgConnection,
        audit_row: &NewAuditRow,
        event: &NewEvent,
    ) -> Result<Vec<Uuid>, ApiError> {
        let targets = targets(&self.0, event);
        audit::written(self.write(conn, Some(audit_row), event, &targets).await)?;
        Ok(targets)
    }

    async fn write(
        &self,
        conn: &mut PgConnection,
        audit_row: Option<&NewAuditRow>,
        event: &NewEvent,
        targets: &[Uuid],
    ) -> Result<(), sqlx::Error> {
        let provider = event.provider.map(|p| p.to_string());
        let environment = event.environment.map(|e| e.to_string());
        let payload = event.payload();
        // A type only named subscriptions get (a token read) is not logged for nobody.
        let logged = !(targets.is_empty() && event.kind.explicit_only());
        let row = logged.then(|| rows::NewEventRow {
            id: event.id,
            event_type: event.kind.as_str(),
            provider: provider.as_deref(),
            environment: environment.as_deref(),
            payload: &payload,
        });
        rows::insert_records(conn, audit_row, row.as_ref(), targets).await
    }
}

/// The endpoints among `subscribers` that receive `event`.
fn targets(subscribers: &[Subscriber], event: &NewEvent) -> Vec<Uuid> {
    let provider = event.provider.map(|p| p.as_str());
    subscribers
        .iter()
        .filter(|s| s.provider.is_none() || s.provider.as_deref() == provider)
        .filter(|s| s.events.iter().any(|p| events::matches(p, event.kind)))
        .map(|s| s.id)
        .collect()
}

/// Writes an event that belongs to no transaction (a failed refresh, a token read). Best
/// effort: what caused it has happened either way, so a failure is logged, not returned.
pub async fn record_alone(state: &AppState, event: &NewEvent) {
    // A type only named subscriptions get (every token read) is written for nobody; the
    // cached list of endpoints says whether anybody names it without a transaction.
    if event.kind.explicit_only() {
        match cached_subscribers(state).await {
            Ok(subscribers) if targets(&subscribers, event).is_empty() => return,
            // Subscribed, or the list could not be read: `record` decides in the transaction.
            _ => {}
        }
    }
    let result = async {
        let mut tx = state.db.begin().await?;
        record(&mut tx, event).await?;
        tx.commit().await?;
        Ok::<(), ApiError>(())
    }
    .await;
    if let Err(e) = result {
        tracing::warn!(error = %e, event.kind = event.kind.as_str(), "could not write an event to the outbox");
    }
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

/// Announces breaker transitions (`breaker.opened`, `breaker.closed`) until `cancel` fires.
pub fn spawn_breaker_events(state: AppState, cancel: tokio_util::sync::CancellationToken) {
    let mut transitions = state.breakers.transitions();
    tokio::spawn(async move {
        loop {
            let transition = tokio::select! {
                _ = cancel.cancelled() => break,
                t = transitions.recv() => t,
            };
            let t = match transition {
                Ok(t) => t,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::warn!(
                        missed,
                        "breaker transitions were missed by the event writer"
                    );
                    continue;
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            };
            let kind = match t.state {
                crate::infra::breaker::BreakerState::Open => EventType::BreakerOpened,
                _ => EventType::BreakerClosed,
            };
            record_alone(&state, &NewEvent::about(kind, t.provider, t.environment)).await;
        }
    });
}
