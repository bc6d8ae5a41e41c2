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
use crate::store::outbox::{self as rows, Records, Subscriber};

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
        let prepared = self.prepare(event);
        rows::insert_records(conn, prepared.records(None)).await?;
        Ok(prepared.targets)
    }

    /// `event` ready to be written beside a change: its targets picked among these endpoints.
    pub fn prepare(&self, event: &NewEvent) -> Prepared {
        let targets = targets(&self.0, event);
        Prepared {
            // A type only named subscriptions get (a token read) is not logged for nobody.
            logged: !(targets.is_empty() && event.kind.explicit_only()),
            id: event.id,
            kind: event.kind,
            provider: event.provider.map(|p| p.to_string()),
            environment: event.environment.map(|e| e.to_string()),
            payload: event.payload(),
            targets,
        }
    }
}

/// An event as [`Subscribers::prepare`] made it ready.
pub struct Prepared {
    logged: bool,
    id: Uuid,
    kind: EventType,
    provider: Option<String>,
    environment: Option<String>,
    payload: Value,
    targets: Vec<Uuid>,
}

impl Prepared {
    /// Writes the event, its deliveries and a change's `audit_row` in one statement inside
    /// the change's transaction. A failure is `audit_unavailable`: the change must not commit
    /// without its audit row.
    pub async fn write_audited(
        &self,
        conn: &mut PgConnection,
        audit_row: &NewAuditRow,
    ) -> Result<(), ApiError> {
        audit::written(rows::insert_records(conn, self.records(Some(audit_row))).await)
    }

    /// The event, its deliveries and `audit_row`, as one statement writes them.
    pub fn records<'a>(&'a self, audit_row: Option<&'a NewAuditRow>) -> Records<'a> {
        Records {
            audit: audit_row,
            event: self.logged.then(|| rows::NewEventRow {
                id: self.id,
                event_type: self.kind.as_str(),
                provider: self.provider.as_deref(),
                environment: self.environment.as_deref(),
                payload: &self.payload,
            }),
            targets: &self.targets,
        }
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
