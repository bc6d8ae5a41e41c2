//! Audit retention: delete rows older than `AUDIT_LOG_RETENTION_DAYS`, oldest first, in
//! batches, leaving a checkpoint so the remaining chain still verifies. Runs daily on one
//! replica (a Redis marker that lives a day), and audits itself.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::domain::audit::{self, Resource};
use crate::http::auth::Caller;
use crate::infra::lock::{Lock, Renewal};
use crate::state::AppState;
use crate::store::{self, audit_chain as chain};

pub const ACTOR: &str = "system:audit-retention";
const BATCH: i64 = 1000;
const DAY: Duration = Duration::from_secs(24 * 60 * 60);
/// The first look comes a while after start, so a restart loop does not hammer the database.
const FIRST_RUN_AFTER: Duration = Duration::from_secs(300);
const TICK: Duration = Duration::from_secs(60 * 60);

#[derive(Debug, Clone, Serialize)]
pub struct RetentionReport {
    pub cutoff: DateTime<Utc>,
    pub deleted: u64,
    pub batches: u64,
    pub deleted_through_id: Option<i64>,
}

/// Deletes the prefix of the chain older than `cutoff`, in batches of `BATCH` rows, each with
/// its checkpoint in the same transaction; then writes one `audit_retention_applied` row.
pub async fn apply(
    state: &AppState,
    cutoff: DateTime<Utc>,
    caller: &Caller,
) -> Result<RetentionReport, sqlx::Error> {
    let mut report = RetentionReport {
        cutoff,
        deleted: 0,
        batches: 0,
        deleted_through_id: None,
    };
    {
        // Rows from before the chain existed go by age alone.
        let mut conn = state.db.acquire().await?;
        let head = chain::head(&mut conn).await?;
        report.deleted +=
            chain::delete_legacy_before(&mut conn, head.legacy_through_id, cutoff).await?;
    }
    loop {
        let mut tx = state.db.begin().await?;
        // Only a prefix of the chain may go: stop at the first young row.
        let oldest = chain::oldest_for_delete(&mut tx, BATCH).await?;
        let old: Vec<_> = oldest
            .iter()
            .take_while(|(_, at, _)| *at < cutoff)
            .collect();
        let Some((through, _, hash)) = old.last().copied() else {
            tx.rollback().await?;
            break;
        };
        let deleted = chain::delete_through(&mut tx, *through).await?;
        chain::insert_checkpoint(&mut tx, *through, hash, deleted as i64).await?;
        tx.commit().await?;
        report.deleted += deleted;
        report.batches += 1;
        report.deleted_through_id = Some(*through);
        if old.len() < oldest.len() || (oldest.len() as i64) < BATCH {
            break;
        }
    }
    if report.deleted > 0 {
        let mut conn = state.db.acquire().await?;
        let details = json!({ "cutoff": cutoff, "deleted": report.deleted, "batches": report.batches,
                              "deleted_through_id": report.deleted_through_id });
        store::audit::insert(
            &mut conn,
            &audit::row(
                caller,
                "audit_retention_applied",
                &resource(),
                true,
                details,
            ),
        )
        .await?;
    }
    Ok(report)
}

fn resource() -> Resource {
    Resource::of_kind("audit_log")
}

/// Today's retention run, unless another replica already took today's: the Redis marker
/// `lease:audit-retention` is set NX for a day and never released.
pub async fn run_daily(state: &AppState) -> anyhow::Result<Option<RetentionReport>> {
    match Lock::try_acquire(&state.redis, "lease:audit-retention", DAY, Renewal::None).await? {
        Some(marker) => marker.keep_until_expiry(),
        None => return Ok(None),
    }
    let days = i64::from(state.settings.audit_log_retention_days);
    let cutoff = Utc::now() - chrono::Duration::days(days);
    let report = apply(state, cutoff, &Caller::system(ACTOR)).await?;
    tracing::info!(deleted = report.deleted, %cutoff, "audit retention applied");
    Ok(Some(report))
}

/// Looks hourly whether today's retention run is still to do.
pub fn spawn(state: AppState, cancel: CancellationToken) {
    tokio::spawn(async move {
        let mut tick =
            tokio::time::interval_at(tokio::time::Instant::now() + FIRST_RUN_AFTER, TICK);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tick.tick() => {}
            }
            if let Err(e) = run_daily(&state).await {
                tracing::error!(error = %e, "audit retention failed");
            }
            // Webhook deliveries age out on the same daily round, under their own marker.
            if let Err(e) = crate::domain::webhook_log::purge_daily(&state).await {
                tracing::error!(error = %e, "webhook delivery retention failed");
            }
        }
    });
}
