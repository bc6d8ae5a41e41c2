//! Scheduled backups and the backup passphrase (see docs/backup-and-rotation.md).

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use super::env::{SettingsError, Source};

/// Scheduled backups and the backup passphrase.
#[derive(Debug, Clone)]
pub struct BackupSettings {
    /// `CONFIG_BACKUP_ENABLED`: take backups on a schedule.
    pub enabled: bool,
    /// `CONFIG_BACKUP_INTERVAL`: time between scheduled backups.
    pub interval: Duration,
    /// `CONFIG_BACKUP_RETAIN`: how many scheduled backup files to keep.
    pub retain: usize,
    /// `BACKUP_DIR`: where scheduled backups (and `hsq-config backup` without `--out`) go.
    pub dir: std::path::PathBuf,
    /// `BACKUP_PASSPHRASE`/`BACKUP_PASSPHRASE_FILE`: when set, backups are re-sealed under a
    /// key derived from it, so they restore under another `ENCRYPTION_KEY`.
    pub passphrase: Option<SecretString>,
}

/// The shortest backup passphrase accepted; Argon2id slows guessing, length does the rest.
pub const MIN_BACKUP_PASSPHRASE_CHARS: usize = 16;

impl BackupSettings {
    pub(super) fn from_source(src: &Source<'_>) -> Result<Self, SettingsError> {
        let interval: u64 = src.parse(
            "CONFIG_BACKUP_INTERVAL",
            3600,
            "a number of seconds, at least 60",
        )?;
        if interval < 60 {
            return Err(SettingsError::new(
                "CONFIG_BACKUP_INTERVAL",
                format!("got {interval}; accepts a number of seconds, at least 60"),
            ));
        }
        let retain: usize = src.parse(
            "CONFIG_BACKUP_RETAIN",
            24,
            "a whole number of files, at least 1",
        )?;
        if retain == 0 {
            return Err(SettingsError::new(
                "CONFIG_BACKUP_RETAIN",
                "got 0; accepts a whole number of files, at least 1",
            ));
        }
        let dir = std::path::PathBuf::from(src.string_or("BACKUP_DIR", "/app/backups"));
        if !dir.is_absolute() {
            return Err(SettingsError::new(
                "BACKUP_DIR",
                format!(
                    "got {:?}; accepts an absolute directory path like /app/backups",
                    dir.display()
                ),
            ));
        }
        let passphrase = src.secret("BACKUP_PASSPHRASE")?;
        if passphrase
            .as_ref()
            .is_some_and(|p| p.expose_secret().chars().count() < MIN_BACKUP_PASSPHRASE_CHARS)
        {
            return Err(SettingsError::new(
                "BACKUP_PASSPHRASE",
                format!(
                    "must be at least {MIN_BACKUP_PASSPHRASE_CHARS} characters; generate one with `openssl rand -base64 24`"
                ),
            ));
        }
        Ok(Self {
            enabled: src.bool("CONFIG_BACKUP_ENABLED", false)?,
            interval: Duration::from_secs(interval),
            retain,
            dir,
            passphrase,
        })
    }
}
