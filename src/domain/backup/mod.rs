//! Backups you can restore: a self-describing, integrity-tagged JSON file holding every
//! integration config, webhook configuration and OAuth token row.
//!
//! Without a passphrase, secrets stay sealed exactly as stored (the file never holds
//! plaintext) and the tag is keyed from the current encryption key. With a passphrase,
//! secrets are re-sealed under a key derived with Argon2id, so the file restores into a
//! deployment with another `ENCRYPTION_KEY`.

pub mod format;
mod open;
mod passphrase;
pub mod restore;
mod restored_rows;
pub mod schedule;

use std::collections::BTreeSet;

use crate::domain::oauth::vault;
use crate::state::AppState;
use chrono::Utc;
use secrecy::SecretString;
use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::domain::audit::{self, Resource};
use crate::domain::integrations::secrets_aad;
use crate::domain::webhooks::secret_aad;
use crate::http::auth::Caller;
use crate::http::error::ApiError;
use crate::infra::crypto::{Aad, OpenError, sealed_key_id};
use crate::store::backup as rows;
use format::{
    ConfigRecord, Data, Document, FORMAT, FORMAT_VERSION, Integrity, Protection, Sealed,
    TokenRecord, WebhookRecord,
};
pub use passphrase::PassphraseKey;

/// Why a backup or restore was refused. Messages say which check failed; none holds a secret.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("not an hsq-config backup: {0}")]
    NotABackup(String),
    #[error(
        "the file uses backup format version {found}, but this build reads up to version {supported}; upgrade hsq-config to restore it"
    )]
    NewerFormat { found: u64, supported: u32 },
    #[error(
        "the file is protected with a passphrase; give it with --passphrase-file, BACKUP_PASSPHRASE_FILE or the request's \"passphrase\""
    )]
    PassphraseRequired,
    #[error("the passphrase is wrong: it does not derive the key this file was sealed with")]
    WrongPassphrase,
    #[error(
        "the file was modified: its integrity tag does not match its content, so it is refused whole"
    )]
    Modified,
    #[error(
        "the file references key id {0}, which the configured keyring does not hold; add that key to ENCRYPTION_KEYS_PREVIOUS, or restore a backup taken with a passphrase"
    )]
    UnknownKey(String),
    #[error("{what} could not be opened: {source}")]
    Unreadable { what: String, source: OpenError },
    #[error("{0}")]
    Invalid(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

impl From<BackupError> for ApiError {
    fn from(e: BackupError) -> Self {
        match e {
            BackupError::Database(e) => ApiError::from(e),
            BackupError::PassphraseRequired | BackupError::WrongPassphrase => {
                ApiError::field("passphrase", e.to_string())
            }
            other => ApiError::field("backup", other.to_string()),
        }
    }
}

/// What a backup holds, for logs, audit rows and the CLI.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub integration_configs: usize,
    pub webhook_configurations: usize,
    pub oauth_tokens: usize,
    pub key_ids: Vec<String>,
    pub protection: &'static str,
    /// SHA-256 of the file's bytes.
    pub sha256: String,
}

/// A finished backup file.
pub struct Backup {
    pub bytes: Vec<u8>,
    pub summary: Summary,
}

/// Takes a backup from one consistent snapshot. With `passphrase`, secrets are re-sealed under
/// a key derived from it; without, they are copied sealed as stored.
pub async fn create(
    state: &AppState,
    passphrase: Option<&SecretString>,
) -> Result<Backup, BackupError> {
    let keys = state.keyring();
    let snapshot = rows::snapshot(&state.db).await?;
    let derived = match passphrase {
        Some(p) => Some(PassphraseKey::new_blocking(p.clone()).await?),
        None => None,
    };
    let copy = |bytes: &[u8], aad: &Aad, what: &str| -> Result<Sealed, BackupError> {
        match &derived {
            None => {
                let id = sealed_key_id(bytes).map_err(|source| BackupError::Unreadable {
                    what: what.to_owned(),
                    source,
                })?;
                Ok(Sealed::new(id, bytes))
            }
            Some(pk) => {
                let plain = keys
                    .open(bytes, aad)
                    .map_err(|source| BackupError::Unreadable {
                        what: what.to_owned(),
                        source,
                    })?;
                Ok(Sealed::new(
                    pk.ring.current_id(),
                    &pk.ring.seal(&plain, aad),
                ))
            }
        }
    };

    let mut data = Data::default();
    for r in snapshot.configs {
        let what = format!("integration config {}/{}", r.provider, r.environment);
        data.integration_configs.push(ConfigRecord {
            secrets: copy(&r.secrets, &secrets_aad(r.id), &what)?,
            id: r.id,
            provider: r.provider,
            environment: r.environment,
            enabled: r.enabled,
            settings: r.settings.0,
            version: r.version,
            created_at: r.created_at,
            updated_at: r.updated_at,
            created_by: r.created_by,
            updated_by: r.updated_by,
            last_validated_at: r.last_validated_at,
            last_validation_status: r.last_validation_status,
            last_validation_detail: r.last_validation_detail,
        });
    }
    for r in snapshot.webhooks {
        let what = format!("webhook {}", r.id);
        data.webhook_configurations.push(WebhookRecord {
            secret: r
                .secret
                .as_deref()
                .map(|s| copy(s, &secret_aad(r.id), &what))
                .transpose()?,
            id: r.id,
            provider: r.provider,
            url: r.url,
            events: r.events,
            enabled: r.enabled,
            description: r.description,
            version: r.version,
            created_at: r.created_at,
            updated_at: r.updated_at,
            created_by: r.created_by,
            updated_by: r.updated_by,
        });
    }
    for r in snapshot.tokens {
        let what = format!("OAuth token {}/{}", r.provider, r.environment);
        data.oauth_tokens.push(TokenRecord {
            access_token: copy(&r.access_token, &vault::access_aad(r.id), &what)?,
            refresh_token: r
                .refresh_token
                .as_deref()
                .map(|s| copy(s, &vault::refresh_aad(r.id), &what))
                .transpose()?,
            id: r.id,
            integration_id: r.integration_id,
            provider: r.provider,
            environment: r.environment,
            token_type: r.token_type,
            expires_at: r.expires_at,
            refresh_expires_at: r.refresh_expires_at,
            scope: r.scope,
            external_account_id: r.external_account_id,
            status: r.status,
            version: r.version,
            last_refreshed_at: r.last_refreshed_at,
            created_at: r.created_at,
            updated_at: r.updated_at,
        });
    }

    let key_ids: BTreeSet<String> = data
        .integration_configs
        .iter()
        .map(|c| &c.secrets)
        .chain(
            data.webhook_configurations
                .iter()
                .filter_map(|w| w.secret.as_ref()),
        )
        .chain(
            data.oauth_tokens
                .iter()
                .flat_map(|t| std::iter::once(&t.access_token).chain(t.refresh_token.as_ref())),
        )
        .map(|s| s.key_id.clone())
        .collect();
    let protection = match &derived {
        None => Protection::Keyring,
        Some(pk) => Protection::Passphrase {
            kdf: pk.kdf.clone(),
            passphrase_key_id: pk.ring.current_id().to_string(),
        },
    };
    let mut document = Document {
        format: FORMAT.into(),
        format_version: FORMAT_VERSION,
        created_at: Utc::now(),
        source_instance: source_instance(),
        key_ids: key_ids.into_iter().collect(),
        protection,
        data,
        integrity: Integrity {
            algorithm: String::new(),
            key: String::new(),
            tag: String::new(),
        },
    };
    match &derived {
        None => {
            let id = keys.current_id();
            let key = keys
                .integrity_key(id)
                .expect("the current key is in the keyring");
            document.sign(&key[..], &format!("keyring:{id}"));
        }
        Some(pk) => document.sign(&pk.mac_key[..], "passphrase"),
    }
    let bytes = document.to_bytes();
    let summary = Summary {
        integration_configs: document.data.integration_configs.len(),
        webhook_configurations: document.data.webhook_configurations.len(),
        oauth_tokens: document.data.oauth_tokens.len(),
        key_ids: document.key_ids.clone(),
        protection: if derived.is_some() {
            "passphrase"
        } else {
            "keyring"
        },
        sha256: hex::encode(Sha256::digest(&bytes)),
    };
    Ok(Backup { bytes, summary })
}

/// Records a finished backup in the audit log (`config_backup_created`).
pub async fn audit_created(
    state: &AppState,
    caller: &Caller,
    summary: &Summary,
    file: Option<&str>,
) -> Result<(), ApiError> {
    let mut conn = state.db.acquire().await?;
    let details = json!({ "summary": summary, "file": file });
    audit::write(
        &mut conn,
        &audit::row(caller, "config_backup_created", &resource(), true, details),
    )
    .await
}

/// What backup and restore audit rows are about.
pub fn resource() -> Resource {
    Resource::of_kind("configuration_backup")
}

fn source_instance() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.trim().is_empty())
        .unwrap_or_else(|| "hsq-config".to_owned())
}
