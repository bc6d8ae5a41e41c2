//! The sequencer: chains committed audit rows shortly after they commit.
//!
//! Writers append audit rows with a plain INSERT in their own transaction — no lock, so audited
//! requests do not wait on each other, on any replica. Every replica runs this loop; the one
//! that takes the chain head (`FOR UPDATE SKIP LOCKED`; the others skip) reads the committed
//! rows not chained yet in write order, computes each one's hash from the previous one, and
//! stores positions, hashes and the new head in one transaction. A row is chained within a few
//! hundred milliseconds of its commit while any replica runs (the tick below), and at the next
//! start otherwise; `audit verify` chains what is pending first.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::audit_chain::{Content, row_hash};
use crate::state::AppState;
use crate::store::audit::AuditRow;
use crate::store::audit_chain::{self as chain, Link};

/// Rows chained per transaction.
const BATCH: i64 = 500;
/// How often each replica looks for rows to chain.
const TICK: Duration = Duration::from_millis(200);

/// Chains one batch. `None`: another sequencer holds the head right now (and `wait` is off).
async fn chain_batch(state: &AppState, wait: bool) -> Result<Option<usize>, sqlx::Error> {
    let mut tx = state.db.begin().await?;
    let Some(head) = chain::claim_head(&mut tx, !wait).await? else {
        return Ok(None);
    };
    let rows = chain::pending(&mut tx, head.legacy_through_id, BATCH).await?;
    if rows.is_empty() {
        tx.rollback().await?;
        return Ok(Some(0));
    }
    // Hashing a batch (canonical JSON and SHA-256 of up to 500 rows) takes milliseconds of
    // CPU: done on the blocking pool, so it never holds up a runtime worker, and with it the
    // requests queued on that worker.
    let (prev, first_seq) = (head.last_hash, head.last_seq.unwrap_or(0));
    let links = tokio::task::spawn_blocking(move || link(&rows, prev, first_seq))
        .await
        .map_err(|e| sqlx::Error::Protocol(format!("the audit hashing task failed: {e}")))?;
    chain::append(&mut tx, &links).await?;
    tx.commit().await?;
    Ok(Some(links.len()))
}

/// The links that chain `rows`, in order, after the row hashed `prev` at position `seq`.
fn link(rows: &[AuditRow], mut prev: Vec<u8>, mut seq: i64) -> Vec<Link> {
    rows.iter()
        .map(|row| {
            seq += 1;
            let hash = row_hash(&prev, &Content::of_stored(row));
            Link {
                id: row.id,
                chain_seq: seq,
                prev_hash: std::mem::replace(&mut prev, hash.clone()),
                hash,
            }
        })
        .collect()
}

/// Chains every committed row that is not chained yet; returns how many this call chained.
/// Stops early when another replica is chaining (it will finish the work).
pub async fn chain_pending(state: &AppState) -> Result<u64, sqlx::Error> {
    chain_all(state, false).await
}

/// Like [`chain_pending`], but waits for a sequencer at work instead of leaving it the rest:
/// when it returns, every row committed before the call is chained.
pub async fn chain_committed(state: &AppState) -> Result<u64, sqlx::Error> {
    chain_all(state, true).await
}

async fn chain_all(state: &AppState, wait: bool) -> Result<u64, sqlx::Error> {
    let mut total = 0;
    loop {
        match chain_batch(state, wait).await? {
            Some(n) if n > 0 => total += n as u64,
            _ => return Ok(total),
        }
    }
}

/// The background loop of every replica; stops when `cancel` fires.
pub fn spawn(state: AppState, cancel: CancellationToken) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tick.tick() => {
                    if let Err(e) = chain_pending(&state).await {
                        tracing::warn!(error = %e, "could not chain audit rows; will retry");
                    }
                }
            }
        }
    });
}
