//! Tamper evidence for the audit log: a hash chain over every row.
//!
//! Each row's hash is SHA-256 over a domain label, the previous row's hash and the canonical
//! JSON of the row's content (id, time, actor, action, resource, outcome, details). Writers
//! append without a lock; the sequencer (`audit_sequencer`) chains committed rows shortly after,
//! giving each its position (`chain_seq`). Retention deletes a prefix of the chain and records
//! the hash of the last row it deleted as a checkpoint, from which the remaining rows still
//! verify.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::infra::canonical;
use crate::state::AppState;
use crate::store::audit::{AuditRow, NewAuditRow};
use crate::store::audit_chain as chain;

const LABEL: &[u8] = b"hsq-config audit chain v1\0";
/// The `prev_hash` of the first row ever written.
pub const GENESIS: [u8; 32] = [0; 32];
const PAGE: i64 = 1000;

/// The hashed content of one audit row, in its canonical JSON form.
pub struct Content(Value);

impl Content {
    /// The content of a row about to be written, with the id and time PostgreSQL assigned.
    pub fn of_new(id: i64, occurred_at: DateTime<Utc>, row: &NewAuditRow, details: &Value) -> Self {
        Self::build(Fields {
            id,
            occurred_at,
            actor_token_id: row.actor_token_id,
            actor_name: &row.actor_name,
            actor_ip: row.actor_ip.as_deref(),
            request_id: row.request_id.as_deref(),
            user_agent: row.user_agent.as_deref(),
            action: &row.action,
            resource_type: &row.resource_type,
            resource_id: row.resource_id.as_deref(),
            provider: row.provider.as_deref(),
            environment: row.environment.as_deref(),
            success: row.success,
            details,
        })
    }

    /// The content of a stored row, as `audit verify` reads it back.
    pub fn of_stored(row: &AuditRow) -> Self {
        Self::build(Fields {
            id: row.id,
            occurred_at: row.occurred_at,
            actor_token_id: row.actor_token_id,
            actor_name: &row.actor_name,
            actor_ip: row.actor_ip.as_deref(),
            request_id: row.request_id.as_deref(),
            user_agent: row.user_agent.as_deref(),
            action: &row.action,
            resource_type: &row.resource_type,
            resource_id: row.resource_id.as_deref(),
            provider: row.provider.as_deref(),
            environment: row.environment.as_deref(),
            success: row.success,
            details: &row.details.0,
        })
    }

    fn build(f: Fields<'_>) -> Self {
        Self(json!({
            "id": f.id,
            // PostgreSQL keeps microseconds; so does the hash.
            "occurred_at": f.occurred_at.to_rfc3339_opts(SecondsFormat::Micros, true),
            "actor_token_id": f.actor_token_id,
            "actor_name": f.actor_name,
            "actor_ip": f.actor_ip,
            "request_id": f.request_id,
            "user_agent": f.user_agent,
            "action": f.action,
            "resource_type": f.resource_type,
            "resource_id": f.resource_id,
            "provider": f.provider,
            "environment": f.environment,
            "success": f.success,
            "details": f.details,
        }))
    }
}

struct Fields<'a> {
    id: i64,
    occurred_at: DateTime<Utc>,
    actor_token_id: Option<Uuid>,
    actor_name: &'a str,
    actor_ip: Option<&'a str>,
    request_id: Option<&'a str>,
    user_agent: Option<&'a str>,
    action: &'a str,
    resource_type: &'a str,
    resource_id: Option<&'a str>,
    provider: Option<&'a str>,
    environment: Option<&'a str>,
    success: bool,
    details: &'a Value,
}

/// `SHA-256(label ‖ prev_hash ‖ canonical(content))`.
pub fn row_hash(prev_hash: &[u8], content: &Content) -> Vec<u8> {
    Sha256::new()
        .chain_update(LABEL)
        .chain_update(prev_hash)
        .chain_update(canonical::to_vec(&content.0))
        .finalize()
        .to_vec()
}

/// Where and why the chain stops verifying.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Break {
    pub row_id: i64,
    pub reason: String,
}

/// The outcome of `hsq-config audit verify`.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    pub rows_verified: u64,
    /// Rows written before the chain existed.
    pub unchained_rows: i64,
    /// Committed rows another replica's sequencer was still chaining when the check ran.
    pub pending_rows: i64,
    pub starts_after_checkpoint: Option<i64>,
    pub first_break: Option<Break>,
}

impl VerifyReport {
    pub fn ok(&self) -> bool {
        self.first_break.is_none()
    }
}

/// Walks the chain from the latest retention checkpoint (or the genesis hash) and reports the
/// first row whose content, link or position does not verify.
pub async fn verify(state: &AppState) -> Result<VerifyReport, sqlx::Error> {
    // Whatever is committed is chained first, so the check covers it.
    crate::domain::audit_sequencer::chain_committed(state).await?;
    // One snapshot: rows chained or deleted by retention while we read do not look like breaks.
    let mut tx = crate::store::point_in_time(&state.db).await?;
    let head = chain::head(&mut tx).await?;
    let checkpoint = chain::latest_checkpoint(&mut tx).await?;
    let mut expected_prev = checkpoint
        .as_ref()
        .map_or(GENESIS.to_vec(), |(_, h)| h.clone());
    let mut after = checkpoint.as_ref().map_or(0, |(seq, _)| *seq);
    let mut report = VerifyReport {
        rows_verified: 0,
        unchained_rows: chain::legacy_count(&mut tx, head.legacy_through_id).await?,
        pending_rows: chain::pending_count(&mut tx, head.legacy_through_id).await?,
        starts_after_checkpoint: checkpoint.as_ref().map(|(seq, _)| *seq),
        first_break: None,
    };
    let mut last_seq = checkpoint.as_ref().map(|(seq, _)| *seq);
    loop {
        let page = chain::chained_page(&mut tx, after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.chain_seq.unwrap_or(after);
        for row in &page {
            if let Some(reason) = check(row, &expected_prev) {
                report.first_break = Some(Break {
                    row_id: row.id,
                    reason,
                });
                return Ok(report);
            }
            expected_prev = row.hash.clone().unwrap_or_default();
            last_seq = row.chain_seq;
            report.rows_verified += 1;
        }
    }
    tx.rollback().await?;
    // The head names the newest chained row: rows cut from the end of the chain show up here.
    if head.last_seq.filter(|s| *s > 0) != last_seq.filter(|s| *s > 0)
        || head.last_hash != expected_prev
    {
        report.first_break = Some(Break {
            row_id: head.last_id.unwrap_or_default(),
            reason: format!(
                "the chain head names position {} but the last row that verifies is at {}; rows were removed from the end",
                head.last_seq
                    .map_or_else(|| "none".to_owned(), |s| s.to_string()),
                last_seq.map_or_else(|| "none".to_owned(), |s| s.to_string())
            ),
        });
    }
    Ok(report)
}

fn check(row: &AuditRow, expected_prev: &[u8]) -> Option<String> {
    let prev = row.prev_hash.as_deref().unwrap_or_default();
    if prev != expected_prev {
        return Some(
            "its prev_hash is not the hash of the row before it: a row before it was removed, inserted or re-hashed".into(),
        );
    }
    let recomputed = row_hash(prev, &Content::of_stored(row));
    if row.hash.as_deref() != Some(recomputed.as_slice()) {
        return Some("its content does not match its hash: the row was edited".into());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> NewAuditRow {
        NewAuditRow {
            actor_token_id: None,
            actor_name: "admin".into(),
            actor_ip: Some("127.0.0.1".into()),
            request_id: Some("r1".into()),
            user_agent: None,
            action: "config_created".into(),
            resource_type: "integration_config".into(),
            resource_id: Some("stripe/sandbox".into()),
            provider: Some("stripe".into()),
            environment: Some("sandbox".into()),
            success: true,
            details: json!({"changed_fields": ["enabled"]}),
        }
    }

    #[test]
    fn the_hash_covers_content_and_the_previous_hash() {
        let at = Utc::now();
        let row = sample();
        let base = row_hash(&GENESIS, &Content::of_new(1, at, &row, &row.details));
        assert_eq!(
            base,
            row_hash(&GENESIS, &Content::of_new(1, at, &row, &row.details))
        );
        assert_ne!(
            base,
            row_hash(&[1; 32], &Content::of_new(1, at, &row, &row.details))
        );
        assert_ne!(
            base,
            row_hash(&GENESIS, &Content::of_new(2, at, &row, &row.details))
        );
        let mut edited = sample();
        edited.success = false;
        assert_ne!(
            base,
            row_hash(&GENESIS, &Content::of_new(1, at, &edited, &edited.details))
        );
    }
}
