//! Key rotation: re-seal every stored secret under the current key.
//!
//! Batches of at most `batch_size` values, each in its own transaction with its own audit
//! row, locked with `FOR UPDATE SKIP LOCKED`. A batch commits or vanishes whole, and every
//! pass starts from "whatever is not under the current key yet", so an interrupted rotation
//! (even `kill -9`) loses nothing and a re-run resumes. Safe while the service serves: a row
//! the API holds is skipped and picked up by a later pass.

use std::time::Duration;

use serde::Serialize;
use serde_json::json;
use sqlx::PgPool;

use crate::domain::audit::{self, Resource};
use crate::domain::events::{EventType, NewEvent};
use crate::domain::integrations::secrets_aad;
use crate::domain::oauth::vault::{access_aad, refresh_aad};
use crate::domain::webhooks::{previous_secret_aad, secret_aad};
use crate::http::auth::Caller;
use crate::infra::crypto::{KeyRing, OpenError};
use crate::state::AppState;
use crate::store::{self, rotation as rows};

/// How many times a pass may find only rows locked by others before giving up.
const MAX_IDLE_PASSES: u32 = 100;
const IDLE_WAIT: Duration = Duration::from_millis(100);

#[derive(Debug, thiserror::Error)]
pub enum RotationError {
    #[error(
        "{what} could not be opened ({source}); add its key to ENCRYPTION_KEYS_PREVIOUS and re-run"
    )]
    Unreadable { what: String, source: OpenError },
    #[error("{0} values stayed locked by other transactions; re-run rotate-key")]
    StillLocked(i64),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

/// Values re-sealed in one batch (or in total).
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Rotated {
    pub integration_configs: u64,
    pub webhook_configurations: u64,
    pub oauth_tokens: u64,
}

impl Rotated {
    pub fn total(&self) -> u64 {
        self.integration_configs + self.webhook_configurations + self.oauth_tokens
    }

    fn add(&mut self, other: Rotated) {
        self.integration_configs += other.integration_configs;
        self.webhook_configurations += other.webhook_configurations;
        self.oauth_tokens += other.oauth_tokens;
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct RotationReport {
    pub current_key_id: String,
    pub batches: u64,
    pub rotated: Rotated,
    /// Key ids whose canary was dropped because no value is sealed under them any more.
    pub retired_canaries: u64,
}

/// Rows (values) per key id still stored, for `rotate-key --check`.
pub async fn remaining(state: &AppState) -> Result<Vec<(String, i64)>, sqlx::Error> {
    store::keyring::values_per_key_id(&state.db).await
}

/// Re-seals everything under the current key; `on_batch` sees each committed batch.
pub async fn rotate(
    state: &AppState,
    caller: &Caller,
    batch_size: u32,
    mut on_batch: impl FnMut(u64, &Rotated),
) -> Result<RotationReport, RotationError> {
    let keys = state.keyring();
    let current = keys.current_id().to_string();
    let mut total = Rotated::default();
    let mut batches = 0;
    let mut idle = 0;
    loop {
        let rotated = batch(
            &state.db,
            keys,
            caller,
            &current,
            i64::from(batch_size.max(1)),
        )
        .await?;
        if rotated.total() > 0 {
            batches += 1;
            idle = 0;
            total.add(rotated);
            on_batch(batches, &rotated);
            continue;
        }
        let left: i64 = remaining(state)
            .await?
            .iter()
            .filter(|(id, _)| *id != current)
            .map(|(_, n)| n)
            .sum();
        if left == 0 {
            break;
        }
        // Everything left is locked by someone else right now; wait for them briefly.
        idle += 1;
        if idle > MAX_IDLE_PASSES {
            return Err(RotationError::StillLocked(left));
        }
        tokio::time::sleep(IDLE_WAIT).await;
    }
    let mut tx = state.db.begin().await?;
    let retired = rows::retire_canaries(&mut tx, &current).await?;
    let details = json!({ "current_key_id": current, "batches": batches, "rotated": total, "retired_canaries": retired });
    store::audit::insert(
        &mut tx,
        &audit::row(caller, "key_rotation_completed", &resource(), true, details),
    )
    .await?;
    tx.commit().await?;
    let event = NewEvent::new(EventType::KeyRotationCompleted, None, None)
        .with("key_id", json!(current))
        .with("rotated", json!(total.total()));
    crate::domain::outbox::record_alone(state, &event).await;
    Ok(RotationReport {
        current_key_id: current,
        batches,
        rotated: total,
        retired_canaries: retired,
    })
}

fn resource() -> Resource {
    Resource::of_kind("keyring")
}

/// One transaction: up to `limit` values across the tables, re-sealed and audited together.
async fn batch(
    db: &PgPool,
    keys: &KeyRing,
    caller: &Caller,
    current: &str,
    limit: i64,
) -> Result<Rotated, RotationError> {
    let unreadable = |what: String| move |source| RotationError::Unreadable { what, source };
    let mut tx = db.begin().await?;
    let mut done = Rotated::default();
    let mut left = limit;

    for (id, sealed) in rows::configs_to_rotate(&mut tx, current, left).await? {
        let aad = secrets_aad(id);
        let plain = keys
            .open(&sealed, &aad)
            .map_err(unreadable(format!("integration config {id}")))?;
        rows::set_config_secrets(&mut tx, id, &keys.seal(&plain, &aad), current).await?;
        done.integration_configs += 1;
    }
    left -= done.integration_configs as i64;
    if left > 0 {
        for (id, sealed) in rows::webhooks_to_rotate(&mut tx, current, left).await? {
            let aad = secret_aad(id);
            let plain = keys
                .open(&sealed, &aad)
                .map_err(unreadable(format!("webhook {id}")))?;
            rows::set_webhook_secret(&mut tx, id, &keys.seal(&plain, &aad), current).await?;
            done.webhook_configurations += 1;
        }
        left -= done.webhook_configurations as i64;
    }
    if left > 0 {
        // The secret that still signs during a rotation overlap is a value like any other.
        let previous = rows::previous_webhook_secrets_to_rotate(&mut tx, current, left).await?;
        for (id, sealed) in &previous {
            let aad = previous_secret_aad(*id);
            let plain = keys
                .open(sealed, &aad)
                .map_err(unreadable(format!("webhook {id} (previous secret)")))?;
            rows::set_previous_webhook_secret(&mut tx, *id, &keys.seal(&plain, &aad), current)
                .await?;
        }
        done.webhook_configurations += previous.len() as u64;
        left -= previous.len() as i64;
    }
    if left > 0 {
        for (id, access, refresh) in rows::tokens_to_rotate(&mut tx, current, left).await? {
            let what = format!("OAuth token {id}");
            let aad = access_aad(id);
            let access = keys.open(&access, &aad).map_err(unreadable(what.clone()))?;
            let access = keys.seal(&access, &aad);
            let refresh = match refresh {
                Some(r) => {
                    let aad = refresh_aad(id);
                    let plain = keys.open(&r, &aad).map_err(unreadable(what))?;
                    Some(keys.seal(&plain, &aad))
                }
                None => None,
            };
            rows::set_token_secrets(&mut tx, id, &access, refresh.as_deref(), current).await?;
            done.oauth_tokens += 1;
        }
    }
    if done.total() == 0 {
        tx.rollback().await?;
        return Ok(done);
    }
    let details = json!({ "current_key_id": current, "rotated": done });
    store::audit::insert(
        &mut tx,
        &audit::row(caller, "key_rotation_batch", &resource(), true, details),
    )
    .await?;
    tx.commit().await?;
    Ok(done)
}
