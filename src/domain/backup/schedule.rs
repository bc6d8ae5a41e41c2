//! Scheduled backups: one replica at a time (a Redis lease), written to a temporary name,
//! fsynced and renamed into `BACKUP_DIR`, keeping the newest `CONFIG_BACKUP_RETAIN` files.

use serde_json::json;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use super::{Summary, audit_created, create};
use crate::domain::events::{EventType, NewEvent};
use crate::http::auth::Caller;
use crate::infra::lock::{Lock, Renewal};
use crate::state::AppState;
use crate::store;

/// The actor of scheduled backups in the audit log.
pub const SCHEDULER: &str = "system:backup-scheduler";
const FILE_PREFIX: &str = "hsq-config-backup-";
const FILE_SUFFIX: &str = ".json";
/// A temporary file older than this belongs to a writer that died.
const ABANDONED_AFTER: Duration = Duration::from_secs(60 * 60);
/// How often the scheduler looks whether a backup is due.
const TICK: Duration = Duration::from_secs(60);
/// Longer than any backup takes; the lease is released when the round ends.
const LEASE_TTL: Duration = Duration::from_secs(600);

/// What one scheduled round did.
#[derive(Debug)]
pub enum Round {
    /// Another replica holds the lease.
    Skipped,
    Written {
        path: PathBuf,
        summary: Summary,
        removed: Vec<PathBuf>,
    },
}

/// One scheduled round, regardless of when the last one ran: takes the lease, writes a backup
/// into `BACKUP_DIR`, applies retention and audits. Tests drive the schedule through this.
pub async fn run_backup_round(state: &AppState) -> anyhow::Result<Round> {
    leased_round(state, false).await
}

/// With `only_if_due`, the round re-checks under the lease that no replica wrote a backup
/// within the interval, so replicas that all found a backup due take one between them.
async fn leased_round(state: &AppState, only_if_due: bool) -> anyhow::Result<Round> {
    let Some(lease) =
        Lock::try_acquire(&state.redis, "lease:backup", LEASE_TTL, Renewal::None).await?
    else {
        return Ok(Round::Skipped);
    };
    let result = if only_if_due && !due(state).await? {
        Ok(Round::Skipped)
    } else {
        round(state).await
    };
    if result.is_err() {
        crate::infra::metrics::BACKUPS
            .with_label_values(&["failed"])
            .inc();
    }
    lease.release().await;
    let event = match &result {
        Ok(Round::Written { path, .. }) => Some(
            NewEvent::new(EventType::BackupSucceeded, None, None)
                .with("file", json!(path.file_name().map(|n| n.to_string_lossy()))),
        ),
        Ok(_) => None,
        // The cause is in the service log; the event says only that it failed.
        Err(_) => Some(NewEvent::new(EventType::BackupFailed, None, None).with(
            "error",
            json!("the scheduled backup failed; see the service log"),
        )),
    };
    if let Some(event) = event {
        crate::domain::outbox::record_alone(state, &event).await;
    }
    result
}

async fn round(state: &AppState) -> anyhow::Result<Round> {
    let settings = &state.settings.backup;
    let backup = create(state, settings.passphrase.as_ref()).await?;
    let path = write_new(&settings.dir, &backup.bytes).await?;
    let removed = prune(&settings.dir, settings.retain).await?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    audit_created(
        state,
        &Caller::system(SCHEDULER),
        &backup.summary,
        name.as_deref(),
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    crate::infra::metrics::BACKUP_LAST_SUCCESS.set(chrono::Utc::now().timestamp());
    crate::infra::metrics::BACKUPS
        .with_label_values(&["ok"])
        .inc();
    tracing::info!(file = %path.display(), removed = removed.len(), "scheduled backup written");
    Ok(Round::Written {
        path,
        summary: backup.summary,
        removed,
    })
}

/// Writes `bytes` as a new timestamped file in `dir` via a temporary name, fsync and rename,
/// so a crash never leaves a half-written backup under a backup's name.
pub async fn write_new(dir: &Path, bytes: &[u8]) -> std::io::Result<PathBuf> {
    let name = format!(
        "{FILE_PREFIX}{}{FILE_SUFFIX}",
        Utc::now().format("%Y%m%dT%H%M%S%.6fZ")
    );
    write_atomically(&dir.join(name), bytes.to_vec()).await
}

/// Writes `path` atomically: temporary file in the same directory, fsync, rename, fsync dir.
pub async fn write_atomically(path: &Path, bytes: Vec<u8>) -> std::io::Result<PathBuf> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_path_buf();
        std::fs::create_dir_all(&dir)?;
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = dir.join(format!(
            ".{file_name}.{}.tmp",
            uuid::Uuid::new_v4().simple()
        ));
        let written = (|| {
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&tmp)?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
            }
            file.write_all(&bytes)?;
            file.sync_all()?;
            std::fs::rename(&tmp, &path)?;
            std::fs::File::open(&dir)?.sync_all()
        })();
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        written.map(|()| path)
    })
    .await
    .map_err(std::io::Error::other)?
}

/// Deletes all but the newest `retain` scheduled backup files (names sort by time), and
/// temporary files a crashed writer left behind more than an hour ago.
pub async fn prune(dir: &Path, retain: usize) -> std::io::Result<Vec<PathBuf>> {
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(FILE_PREFIX) && n.ends_with(FILE_SUFFIX))
            })
            .collect();
        files.sort();
        let excess = files.len().saturating_sub(retain);
        let removed: Vec<PathBuf> = files.into_iter().take(excess).collect();
        for path in &removed {
            std::fs::remove_file(path)?;
        }
        for entry in std::fs::read_dir(&dir)?.filter_map(Result::ok) {
            let name = entry.file_name().to_string_lossy().into_owned();
            let abandoned = name.starts_with(&format!(".{FILE_PREFIX}"))
                && name.ends_with(".tmp")
                && entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age > ABANDONED_AFTER);
            if abandoned {
                std::fs::remove_file(entry.path())?;
            }
        }
        Ok(removed)
    })
    .await
    .map_err(std::io::Error::other)?
}

/// When the scheduler last succeeded and the file it wrote; shared by every replica.
pub async fn last_success(
    state: &AppState,
) -> Result<Option<(DateTime<Utc>, Option<String>)>, sqlx::Error> {
    store::backup::last_scheduled_backup(&state.db, SCHEDULER).await
}

async fn due(state: &AppState) -> Result<bool, sqlx::Error> {
    let interval = state.settings.backup.interval;
    Ok(match last_success(state).await? {
        Some((at, _)) => {
            Utc::now()
                .signed_duration_since(at)
                .to_std()
                .unwrap_or_default()
                >= interval
        }
        None => true,
    })
}

/// Runs scheduled backups until `cancel`: every minute, a round runs when the last scheduled
/// backup (by any replica) is older than `CONFIG_BACKUP_INTERVAL`.
pub fn spawn(state: AppState, cancel: CancellationToken) {
    tokio::spawn(async move {
        let interval = state.settings.backup.interval;
        let mut tick = tokio::time::interval(TICK.min(interval));
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tick.tick() => {}
            }
            match due(&state).await {
                Ok(true) => {}
                Ok(false) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot tell when the last backup ran; will retry");
                    continue;
                }
            }
            if let Err(e) = leased_round(&state, true).await {
                tracing::error!(error = %e, "scheduled backup failed");
            }
        }
    });
}
