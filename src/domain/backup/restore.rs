//! Restore: verify the whole file first, then apply it in one transaction or not at all.

use std::collections::{HashMap, HashSet};

use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::PgConnection;
use uuid::Uuid;

use super::format::{Parsed, Protection};
use super::open::{Opened, open};
use super::restored_rows::{
    config_row, same_map, same_token, same_webhook, token_row, webhook_row,
};
use super::{BackupError, PassphraseKey};
use crate::domain::audit;
use crate::domain::integrations::secrets_aad;
use crate::http::auth::Caller;
use crate::infra::crypto::KeyRing;
use crate::state::AppState;
use crate::store::backup as rows;
use crate::store::outbox::Records;
use crate::store::{integrations, oauth_tokens, webhooks};

/// `merge` keeps rows the file does not mention; `replace` deletes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Merge,
    Replace,
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "merge" => Ok(Self::Merge),
            "replace" => Ok(Self::Replace),
            other => Err(format!(
                "unknown restore mode {other:?}; expected merge or replace"
            )),
        }
    }
}

/// Rows per table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Counts {
    pub integration_configs: u64,
    pub webhook_configurations: u64,
    pub oauth_tokens: u64,
}

impl Counts {
    pub fn total(&self) -> u64 {
        self.integration_configs + self.webhook_configurations + self.oauth_tokens
    }
}

/// What a restore did, or with `dry_run`, would do.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RestoreReport {
    pub mode: Mode,
    pub dry_run: bool,
    pub created: Counts,
    pub replaced: Counts,
    pub deleted: Counts,
    pub unchanged: Counts,
    /// SHA-256 of the document's canonical content.
    pub file_sha256: String,
}

impl RestoreReport {
    /// True when applying the file changed (or would change) nothing.
    pub fn is_noop(&self) -> bool {
        self.created.total() + self.replaced.total() + self.deleted.total() == 0
    }
}

pub struct RestoreOptions {
    pub mode: Mode,
    pub dry_run: bool,
    pub passphrase: Option<SecretString>,
}

/// Verifies the file (integrity, passphrase, key ids, every sealed value), then applies it in
/// one transaction and audits one `config_restored` row. With `dry_run`, nothing is written.
pub async fn restore(
    state: &AppState,
    caller: &Caller,
    parsed: Parsed,
    options: &RestoreOptions,
) -> Result<RestoreReport, BackupError> {
    let keys = state.keyring();
    let derived = match (&parsed.document.protection, &options.passphrase) {
        (Protection::Passphrase { kdf, .. }, Some(passphrase)) => {
            Some(PassphraseKey::derive_blocking(passphrase.clone(), kdf.clone()).await?)
        }
        _ => None,
    };
    let opened = open(keys, parsed, derived)?;
    let mut tx = state.db.begin().await?;
    if !options.dry_run {
        rows::lock_for_restore(&mut tx).await?;
    }
    let report = apply(&mut tx, keys, caller, &opened, options).await?;
    if options.dry_run {
        tx.rollback().await?;
        return Ok(report);
    }
    let details = json!({
        "mode": report.mode, "created": report.created, "replaced": report.replaced,
        "deleted": report.deleted, "unchanged": report.unchanged,
        "changed": !report.is_noop(), "file_sha256": report.file_sha256,
    });
    crate::store::audit::insert(
        &mut tx,
        &audit::row(caller, "config_restored", &super::resource(), true, details),
    )
    .await?;
    tx.commit().await?;
    state.caches.all_changed();
    Ok(report)
}

/// Compares the file with the database and, unless dry-running, writes the difference.
async fn apply(
    tx: &mut PgConnection,
    keys: &KeyRing,
    caller: &Caller,
    file: &Opened,
    options: &RestoreOptions,
) -> Result<RestoreReport, BackupError> {
    let write = !options.dry_run;
    let actor = caller.name.as_str();
    let current = rows::read_all(tx).await?;
    let mut report = RestoreReport {
        mode: options.mode,
        dry_run: options.dry_run,
        created: Counts::default(),
        replaced: Counts::default(),
        deleted: Counts::default(),
        unchanged: Counts::default(),
        file_sha256: file.sha256.clone(),
    };
    let key_id = keys.current_id().to_string();

    // Deletions first (replace mode): tokens, then configs (their remaining tokens cascade).
    if options.mode == Mode::Replace {
        let wanted: HashSet<(&str, &str)> = file
            .tokens
            .iter()
            .map(|t| (t.rec.provider.as_str(), t.rec.environment.as_str()))
            .collect();
        for t in current
            .tokens
            .iter()
            .filter(|t| !wanted.contains(&(t.provider.as_str(), t.environment.as_str())))
        {
            report.deleted.oauth_tokens += 1;
            if write {
                oauth_tokens::delete(tx, t.id).await?;
            }
        }
        let wanted: HashSet<(&str, &str)> = file
            .configs
            .iter()
            .map(|c| (c.rec.provider.as_str(), c.rec.environment.as_str()))
            .collect();
        for c in current
            .configs
            .iter()
            .filter(|c| !wanted.contains(&(c.provider.as_str(), c.environment.as_str())))
        {
            report.deleted.integration_configs += 1;
            if write {
                integrations::delete(tx, c.id).await?;
            }
        }
        let wanted: HashSet<Uuid> = file.webhooks.iter().map(|w| w.rec.id).collect();
        for w in current.webhooks.iter().filter(|w| !wanted.contains(&w.id)) {
            report.deleted.webhook_configurations += 1;
            if write {
                webhooks::delete(tx, w.id).await?;
            }
        }
    }

    // Configs match by provider and environment; a replaced row keeps its id.
    let mut target_of: HashMap<Uuid, Uuid> = HashMap::new();
    for c in &file.configs {
        let existing = current
            .configs
            .iter()
            .find(|r| r.provider == c.rec.provider && r.environment == c.rec.environment);
        let id = existing.map_or(c.rec.id, |r| r.id);
        target_of.insert(c.rec.id, id);
        if let Some(row) = existing {
            let same = row.enabled == c.rec.enabled
                && row.settings.0 == c.rec.settings
                && keys
                    .open_map(&row.secrets, &secrets_aad(row.id))
                    .is_ok_and(|m| same_map(&m, &c.secrets));
            if same {
                report.unchanged.integration_configs += 1;
                continue;
            }
            report.replaced.integration_configs += 1;
            if write {
                let mut row = config_row(keys, &key_id, id, c);
                row.updated_by = Some(actor.to_owned());
                integrations::update(tx, &row, Records::default()).await?;
            }
        } else {
            report.created.integration_configs += 1;
            if write {
                integrations::insert(tx, &config_row(keys, &key_id, id, c)).await?;
            }
        }
    }

    // Tokens match by provider and environment and follow their config's target id.
    for t in &file.tokens {
        let existing = current
            .tokens
            .iter()
            .find(|r| r.provider == t.rec.provider && r.environment == t.rec.environment);
        let id = existing.map_or(t.rec.id, |r| r.id);
        let integration_id = target_of
            .get(&t.rec.integration_id)
            .copied()
            .unwrap_or(t.rec.integration_id);
        let row = token_row(keys, &key_id, id, integration_id, t);
        if let Some(current) = existing {
            if same_token(keys, current, &row, t) {
                report.unchanged.oauth_tokens += 1;
                continue;
            }
            report.replaced.oauth_tokens += 1;
            if write {
                oauth_tokens::replace(tx, &row).await?;
            }
        } else {
            report.created.oauth_tokens += 1;
            if write {
                oauth_tokens::insert(tx, &row).await?;
            }
        }
    }

    // Webhooks have no natural key: they match by id.
    for w in &file.webhooks {
        let mut row = webhook_row(keys, &key_id, w);
        match current.webhooks.iter().find(|r| r.id == w.rec.id) {
            Some(current) if same_webhook(keys, current, w) => {
                report.unchanged.webhook_configurations += 1
            }
            Some(_) => {
                report.replaced.webhook_configurations += 1;
                if write {
                    row.updated_by = Some(actor.to_owned());
                    webhooks::update(tx, &row).await?;
                }
            }
            None => {
                report.created.webhook_configurations += 1;
                if write {
                    webhooks::insert(tx, &row).await?;
                }
            }
        }
    }
    Ok(report)
}
