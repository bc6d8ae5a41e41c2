//! The delivery worker: every replica claims due deliveries (`FOR UPDATE SKIP LOCKED`, so two
//! replicas never send the same attempt), signs them per Standard Webhooks, sends them and
//! records the outcome: `delivered`, another attempt on `WEBHOOK_RETRY_SCHEDULE` with jitter,
//! or `failed`. At least once: a claim that is not finished (the process died) lapses and the
//! attempt is made again. An endpoint that has only failed for `WEBHOOK_DISABLE_AFTER` is
//! disabled and audited.

use std::time::{Duration, Instant};

use chrono::Utc;
use rand::Rng;
use secrecy::SecretString;
use serde::Serialize;
use serde_json::json;
use tokio_util::sync::CancellationToken;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::domain::audit::{self, Resource};
use crate::domain::events::NewEvent;
use crate::domain::webhooks::{previous_secret_aad, secret_aad};
use crate::http::auth::Caller;
use crate::http::error::ApiError;
use crate::infra::metrics;
use crate::infra::outbound::{self, TargetRefused};
use crate::infra::webhook_signature as signature;
use crate::state::AppState;
use crate::store::outbox::{self as rows, AttemptRecord, Claimed};

pub const ACTOR: &str = "system:webhook-delivery";
/// Deliveries claimed per round, sent concurrently.
const BATCH: i64 = 20;
/// How often each replica looks for due deliveries.
const TICK: Duration = Duration::from_millis(200);
/// The most of a receiver's answer that is read and kept.
pub const MAX_RESPONSE_BYTES: usize = 4096;
const MAX_ERROR_CHARS: usize = 500;

/// The outcome of one attempt, as the test endpoint returns it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AttemptOutcome {
    pub delivery_id: Uuid,
    /// The `webhook-id` the receiver saw.
    pub message_id: String,
    pub delivered: bool,
    /// The receiver's HTTP status, when it answered.
    pub status_code: Option<u16>,
    pub latency_ms: u64,
    /// Why the attempt did not deliver (no connection, timeout, refused target, status).
    pub error: Option<String>,
}

/// One attempt's result before it is stored.
struct Sent {
    status_code: Option<u16>,
    latency: Duration,
    error: Option<String>,
    body: Option<String>,
}

fn truncate(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

/// The secrets that sign a delivery: the current one, and the previous during its overlap.
fn signing_keys(state: &AppState, c: &Claimed) -> Result<Vec<zeroize::Zeroizing<Vec<u8>>>, String> {
    let keys = state.keyring();
    let Some(sealed) = &c.secret else {
        return Err("the endpoint has no signing secret; rotate its secret to create one".into());
    };
    let current: SecretString = keys
        .open_string(sealed, &secret_aad(c.webhook_id))
        .map_err(|_| "the endpoint's signing secret could not be opened".to_owned())?;
    let mut out = vec![signature::signing_key(&current)];
    let in_overlap = c.previous_secret_expires_at.is_some_and(|t| t > Utc::now());
    if let (Some(previous), true) = (&c.previous_secret, in_overlap) {
        // A previous secret that no longer opens (its key retired) just stops signing.
        if let Ok(previous) = keys.open_string(previous, &previous_secret_aad(c.webhook_id)) {
            out.push(signature::signing_key(&previous));
        }
    }
    Ok(out)
}

fn describe(e: &reqwest::Error, timeout: Duration) -> String {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if let Some(refused) = s.downcast_ref::<TargetRefused>() {
            return format!("refused: the URL's name {refused}");
        }
        source = s.source();
    }
    if e.is_timeout() {
        format!("no answer within {}s", timeout.as_secs_f64())
    } else if e.is_connect() {
        "could not resolve or connect to the endpoint".into()
    } else {
        "the request failed before an answer".into()
    }
}

/// Signs and sends one claimed delivery; a disabled endpoint gets only test sends.
async fn send(state: &AppState, c: &Claimed, test: bool) -> Sent {
    let started = Instant::now();
    let failed = |error: String| Sent {
        status_code: None,
        latency: started.elapsed(),
        error: Some(error),
        body: None,
    };
    if !c.enabled && !test {
        return failed("the endpoint is disabled".into());
    }
    let settings = &state.settings.webhooks;
    let checked = outbound::check_url(
        &c.url,
        settings.allow_private_targets,
        settings.require_https,
    );
    let url = match checked.await {
        Ok(url) => url,
        Err(refused) => return failed(format!("refused: the URL {refused}")),
    };
    let keys = match signing_keys(state, c) {
        Ok(keys) => keys,
        Err(e) => return failed(e),
    };
    let body = match serde_json::to_vec(&c.payload) {
        Ok(body) => body,
        Err(_) => return failed("the event could not be serialized".into()),
    };
    let msg_id = NewEvent::message_id(c.event_id);
    let timestamp = Utc::now().timestamp();
    let result = state
        .webhook_http
        .post(url)
        .header("content-type", "application/json")
        .header("webhook-id", &msg_id)
        .header("webhook-timestamp", timestamp.to_string())
        .header(
            "webhook-signature",
            signature::header(&keys, &msg_id, timestamp, &body),
        )
        .body(body)
        .send()
        .await;
    let mut response = match result {
        Ok(r) => r,
        Err(e) => return failed(describe(&e, settings.timeout)),
    };
    let status = response.status();
    let mut kept = Vec::new();
    while kept.len() < MAX_RESPONSE_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => kept.extend_from_slice(&chunk),
            _ => break,
        }
    }
    kept.truncate(MAX_RESPONSE_BYTES);
    let error = if status.is_success() {
        None
    } else if status.is_redirection() {
        Some(format!("answered {status}; redirects are not followed"))
    } else {
        Some(format!("answered {status}"))
    };
    Sent {
        status_code: Some(status.as_u16()),
        latency: started.elapsed(),
        error,
        body: Some(String::from_utf8_lossy(&kept).replace('\0', "\u{FFFD}")),
    }
}

/// When the attempt after `attempts` failed ones is due: the schedule's wait ±20 %, or None
/// when the schedule is spent.
fn next_attempt(state: &AppState, attempts: i32) -> Option<chrono::DateTime<Utc>> {
    let index = usize::try_from(attempts).ok()?.checked_sub(1)?;
    let wait = *state.settings.webhooks.retry_schedule.get(index)?;
    let jittered = wait.mul_f64(rand::thread_rng().gen_range(0.8..1.2));
    Some(Utc::now() + chrono::Duration::from_std(jittered).unwrap_or(chrono::Duration::MAX))
}

/// Stores one attempt's outcome; a test send is never retried and never disables.
async fn finish(state: &AppState, c: &Claimed, sent: &Sent, test: bool) -> Result<(), ApiError> {
    let delivered = sent.error.is_none();
    // A test send is not retried, nor is a delivery to an endpoint disabled since.
    let next = if delivered || test || !c.enabled {
        None
    } else {
        next_attempt(state, c.attempts)
    };
    let status = match (delivered, next) {
        (true, _) => "delivered",
        (false, Some(_)) => "pending",
        (false, None) => "failed",
    };
    metrics::WEBHOOK_DELIVERIES
        .with_label_values(&[if status == "pending" {
            "retrying"
        } else {
            status
        }])
        .inc();
    metrics::WEBHOOK_ATTEMPT_DURATION.observe(sent.latency.as_secs_f64());
    let error = sent.error.as_deref().map(|e| truncate(e, MAX_ERROR_CHARS));
    tracing::info!(
        webhook.id = %c.webhook_id,
        delivery.id = %c.id,
        delivery.attempt = c.attempts,
        delivery.status = status,
        http.status_code = sent.status_code,
        latency_ms = u64::try_from(sent.latency.as_millis()).unwrap_or(u64::MAX),
        error = error.as_deref(),
        "webhook attempt"
    );
    let mut tx = state.db.begin().await?;
    rows::record_attempt(
        &mut tx,
        c.id,
        &AttemptRecord {
            status,
            next_attempt_at: next,
            status_code: sent.status_code.map(i32::from),
            error: error.as_deref(),
            response_body: sent.body.as_deref(),
        },
    )
    .await?;
    if !test {
        if delivered {
            rows::endpoint_succeeded(&mut tx, c.webhook_id).await?;
        } else if let Some(since) = rows::endpoint_failed(&mut tx, c.webhook_id).await? {
            let span = chrono::Duration::from_std(state.settings.webhooks.disable_after)
                .unwrap_or(chrono::Duration::MAX);
            if Utc::now() - since >= span {
                disable(&mut tx, c.webhook_id, since).await?;
            }
        }
    }
    tx.commit().await?;
    Ok(())
}

async fn disable(
    tx: &mut sqlx::PgConnection,
    id: Uuid,
    since: chrono::DateTime<Utc>,
) -> Result<(), ApiError> {
    let reason = format!("every delivery failed since {}", since.to_rfc3339());
    if rows::disable_endpoint(tx, id, &reason).await? {
        tracing::warn!(webhook.id = %id, "webhook endpoint disabled after failing deliveries");
        audit::write(
            tx,
            &audit::row(
                &Caller::system(ACTOR),
                "webhook_disabled",
                &Resource::webhook(Some(id.to_string())),
                true,
                json!({ "reason": reason, "failing_since": since }),
            ),
        )
        .await?;
    }
    Ok(())
}

/// How long a claim holds: the attempt's timeout (which bounds the whole request, answer
/// included) and a margin to record the outcome. Past it another replica may attempt again.
fn lease_secs(state: &AppState) -> f64 {
    state.settings.webhooks.timeout.as_secs_f64() + 10.0
}

/// One round: claims due deliveries and attempts them concurrently; returns how many.
pub async fn run_round(state: &AppState) -> Result<usize, ApiError> {
    let claimed = rows::claim_due(&state.db, BATCH, lease_secs(state)).await?;
    let attempts = claimed.iter().map(|c| async move {
        let sent = send(state, c, false).await;
        if let Err(e) = finish(state, c, &sent, false).await {
            // The claim lapses and the attempt is made again: at least once.
            tracing::warn!(error = %e, delivery.id = %c.id, "could not record a webhook attempt");
        }
    });
    futures::future::join_all(attempts).await;
    Ok(claimed.len())
}

/// Sends a `webhook.test` event to one endpoint now and returns the attempt's outcome.
pub async fn send_test(state: &AppState, webhook_id: Uuid) -> Result<AttemptOutcome, ApiError> {
    let event = NewEvent::new(crate::domain::events::EventType::WebhookTest, None, None)
        .with("webhook_id", json!(webhook_id));
    let mut tx = state.db.begin().await?;
    if crate::store::webhooks::find(&mut tx, webhook_id)
        .await?
        .is_none()
    {
        return Err(ApiError::not_found("no webhook configuration has this id"));
    }
    rows::insert_event(
        &mut tx,
        &rows::NewEventRow {
            id: event.id,
            event_type: event.kind.as_str(),
            provider: None,
            environment: None,
            payload: &event.payload(),
        },
    )
    .await?;
    let ids = rows::insert_deliveries(&mut tx, event.id, &[webhook_id]).await?;
    let delivery_id = *ids
        .first()
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("the test delivery was not written")))?;
    // Claimed in the same transaction, so the worker never takes a test delivery.
    let claimed = rows::claim_one(&mut tx, webhook_id, delivery_id, lease_secs(state))
        .await?
        .ok_or_else(|| ApiError::not_found("no webhook configuration has this id"))?;
    tx.commit().await?;
    let sent = send(state, &claimed, true).await;
    finish(state, &claimed, &sent, true).await?;
    Ok(AttemptOutcome {
        delivery_id,
        message_id: NewEvent::message_id(event.id),
        delivered: sent.error.is_none(),
        status_code: sent.status_code,
        latency_ms: u64::try_from(sent.latency.as_millis()).unwrap_or(u64::MAX),
        error: sent.error,
    })
}

async fn observe_queue(state: &AppState) {
    if let Ok(q) = rows::queue_state(&state.db).await {
        metrics::WEBHOOK_QUEUE_DEPTH.set(q.pending);
        metrics::WEBHOOK_OLDEST_PENDING.set(q.oldest_pending_secs.unwrap_or(0.0) as i64);
    }
}

/// The delivery loop of every replica; stops when `cancel` fires (an attempt in flight is
/// dropped and its claim lapses, so it is made again).
pub fn spawn(state: AppState, cancel: CancellationToken) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut rounds: u64 = 0;
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tick.tick() => {}
            }
            rounds += 1;
            if rounds % 25 == 0 {
                observe_queue(&state).await;
            }
            loop {
                let round = tokio::select! {
                    _ = cancel.cancelled() => return,
                    round = run_round(&state) => round,
                };
                match round {
                    Ok(n) if n as i64 == BATCH => continue,
                    Ok(_) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "could not claim webhook deliveries; will retry");
                        break;
                    }
                }
            }
        }
    });
}
