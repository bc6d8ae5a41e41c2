//! Restore: verify the whole file first, then apply it in one transaction or not at all.

use std::collections::{BTreeMap, HashMap, HashSet};

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, PgPool, types::Json};
use uuid::Uuid;

use super::format::{self, ConfigRecord, Parsed, Protection, Sealed, TokenRecord, WebhookRecord};
use super::{BackupError, PassphraseKey, token_aad};
use crate::audit;
use crate::auth::Caller;
use crate::crypto::{Aad, KeyId, KeyRing, OpenError, SecretMap};
use crate::domain::{Environment, Provider};
use crate::integrations::secrets_aad;
use crate::mask::mask;
use crate::store::backup::{self as rows, TokenRow};
use crate::store::integrations::ConfigRow;
use crate::store::webhooks::WebhookRow;
use crate::webhooks::secret_aad;

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

struct OpenConfig {
    rec: ConfigRecord,
    secrets: SecretMap,
}

struct OpenWebhook {
    rec: WebhookRecord,
    secret: Option<SecretString>,
}

struct OpenToken {
    rec: TokenRecord,
    access: SecretString,
    refresh: Option<SecretString>,
}

/// Everything in the file, verified and opened in memory; nothing touched yet.
struct Opened {
    configs: Vec<OpenConfig>,
    webhooks: Vec<OpenWebhook>,
    tokens: Vec<OpenToken>,
    sha256: String,
}

/// Verifies the file (integrity, passphrase, key ids, every sealed value), then applies it in
/// one transaction and audits one `config_restored` row. With `dry_run`, nothing is written.
pub async fn restore(
    db: &PgPool,
    keys: &KeyRing,
    caller: &Caller,
    parsed: Parsed,
    options: &RestoreOptions,
) -> Result<RestoreReport, BackupError> {
    let derived = match (&parsed.document.protection, &options.passphrase) {
        (Protection::Passphrase { kdf, .. }, Some(passphrase)) => {
            Some(PassphraseKey::derive_blocking(passphrase.clone(), kdf.clone()).await?)
        }
        _ => None,
    };
    let opened = open(keys, parsed, derived)?;
    let mut tx = db.begin().await?;
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
    Ok(report)
}

/// Checks the tag with the right key and opens every sealed value, or refuses the file.
fn open(
    keys: &KeyRing,
    parsed: Parsed,
    derived: Option<PassphraseKey>,
) -> Result<Opened, BackupError> {
    let doc = &parsed.document;
    let opener: &KeyRing = match &doc.protection {
        Protection::Keyring => {
            let name = doc
                .integrity
                .key
                .strip_prefix("keyring:")
                .ok_or(BackupError::Modified)?;
            let id = KeyId::parse(name).ok_or(BackupError::Modified)?;
            let mac_key = keys
                .integrity_key(id)
                .ok_or_else(|| BackupError::UnknownKey(name.to_owned()))?;
            parsed.verify(&mac_key[..])?;
            for id in &doc.key_ids {
                if !KeyId::parse(id).is_some_and(|k| keys.knows(k)) {
                    return Err(BackupError::UnknownKey(id.clone()));
                }
            }
            keys
        }
        Protection::Passphrase {
            passphrase_key_id, ..
        } => {
            let derived = derived.as_ref().ok_or(BackupError::PassphraseRequired)?;
            if derived.ring.current_id().to_string() != *passphrase_key_id {
                return Err(BackupError::WrongPassphrase);
            }
            parsed.verify(&derived.mac_key[..])?;
            &derived.ring
        }
    };
    let sha256 = hex::encode(Sha256::digest(format::Document::to_bytes(doc)));
    let doc = parsed.document;

    let open_one = |sealed: &Sealed,
                    aad: &Aad,
                    what: &str|
     -> Result<zeroize::Zeroizing<Vec<u8>>, BackupError> {
        opener
            .open(&sealed.bytes()?, aad)
            .map_err(|source| match source {
                OpenError::UnknownKey(id) => BackupError::UnknownKey(id.to_string()),
                source => BackupError::Unreadable {
                    what: what.to_owned(),
                    source,
                },
            })
    };
    let text =
        |bytes: zeroize::Zeroizing<Vec<u8>>, what: &str| -> Result<SecretString, BackupError> {
            std::str::from_utf8(&bytes)
                .map(|s| SecretString::from(s.to_owned()))
                .map_err(|_| BackupError::Unreadable {
                    what: what.to_owned(),
                    source: OpenError::Malformed,
                })
        };

    let mut configs = Vec::new();
    let mut config_ids = HashSet::new();
    for rec in doc.data.integration_configs {
        let what = format!("integration config {}/{}", rec.provider, rec.environment);
        check_place(&rec.provider, &rec.environment, &what)?;
        let plain = open_one(&rec.secrets, &secrets_aad(rec.id), &what)?;
        let map: BTreeMap<String, String> =
            serde_json::from_slice(&plain).map_err(|_| BackupError::Unreadable {
                what: what.clone(),
                source: OpenError::Malformed,
            })?;
        config_ids.insert(rec.id);
        let secrets = map
            .into_iter()
            .map(|(k, v)| (k, SecretString::from(v)))
            .collect();
        configs.push(OpenConfig { rec, secrets });
    }
    let mut webhooks = Vec::new();
    for rec in doc.data.webhook_configurations {
        let what = format!("webhook {}", rec.id);
        let secret = match &rec.secret {
            Some(s) => Some(text(open_one(s, &secret_aad(rec.id), &what)?, &what)?),
            None => None,
        };
        webhooks.push(OpenWebhook { rec, secret });
    }
    let mut tokens = Vec::new();
    for rec in doc.data.oauth_tokens {
        let what = format!("OAuth token {}/{}", rec.provider, rec.environment);
        check_place(&rec.provider, &rec.environment, &what)?;
        if !config_ids.contains(&rec.integration_id) {
            return Err(BackupError::Invalid(format!(
                "{what} belongs to an integration config the file does not hold"
            )));
        }
        let access = text(
            open_one(&rec.access_token, &token_aad(rec.id, "access_token"), &what)?,
            &what,
        )?;
        let refresh = match &rec.refresh_token {
            Some(s) => Some(text(
                open_one(s, &token_aad(rec.id, "refresh_token"), &what)?,
                &what,
            )?),
            None => None,
        };
        tokens.push(OpenToken {
            rec,
            access,
            refresh,
        });
    }
    Ok(Opened {
        configs,
        webhooks,
        tokens,
        sha256,
    })
}

fn check_place(provider: &str, environment: &str, what: &str) -> Result<(), BackupError> {
    provider
        .parse::<Provider>()
        .and_then(|_| environment.parse::<Environment>())
        .map(|_| ())
        .map_err(|e| BackupError::Invalid(format!("{what}: {e}")))
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
                rows::delete_token(tx, t.id).await?;
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
                rows::delete_config(tx, c.id).await?;
            }
        }
        let wanted: HashSet<Uuid> = file.webhooks.iter().map(|w| w.rec.id).collect();
        for w in current.webhooks.iter().filter(|w| !wanted.contains(&w.id)) {
            report.deleted.webhook_configurations += 1;
            if write {
                rows::delete_webhook(tx, w.id).await?;
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
                rows::replace_config(tx, &config_row(keys, &key_id, id, c), actor).await?;
            }
        } else {
            report.created.integration_configs += 1;
            if write {
                rows::insert_config(tx, &config_row(keys, &key_id, id, c)).await?;
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
                rows::replace_token(tx, &row).await?;
            }
        } else {
            report.created.oauth_tokens += 1;
            if write {
                rows::insert_token(tx, &row).await?;
            }
        }
    }

    // Webhooks have no natural key: they match by id.
    for w in &file.webhooks {
        let row = webhook_row(keys, &key_id, w);
        match current.webhooks.iter().find(|r| r.id == w.rec.id) {
            Some(current) if same_webhook(keys, current, w) => {
                report.unchanged.webhook_configurations += 1
            }
            Some(_) => {
                report.replaced.webhook_configurations += 1;
                if write {
                    rows::replace_webhook(tx, &row, actor).await?;
                }
            }
            None => {
                report.created.webhook_configurations += 1;
                if write {
                    rows::insert_webhook(tx, &row).await?;
                }
            }
        }
    }
    Ok(report)
}

fn same_map(a: &SecretMap, b: &SecretMap) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b.iter())
            .all(|((ka, va), (kb, vb))| ka == kb && va.expose_secret() == vb.expose_secret())
}

fn same_secret(a: Option<&SecretString>, b: Option<&SecretString>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => a.expose_secret() == b.expose_secret(),
        _ => false,
    }
}

fn same_token(keys: &KeyRing, current: &TokenRow, wanted: &TokenRow, file: &OpenToken) -> bool {
    let access = keys
        .open_string(
            &current.access_token,
            &token_aad(current.id, "access_token"),
        )
        .ok();
    let refresh = match &current.refresh_token {
        Some(s) => match keys.open_string(s, &token_aad(current.id, "refresh_token")) {
            Ok(v) => Some(v),
            Err(_) => return false,
        },
        None => None,
    };
    current.integration_id == wanted.integration_id
        && current.token_type == wanted.token_type
        && current.expires_at == wanted.expires_at
        && current.refresh_expires_at == wanted.refresh_expires_at
        && current.scope == wanted.scope
        && current.realm_id == wanted.realm_id
        && current.hub_id == wanted.hub_id
        && current.stripe_user_id == wanted.stripe_user_id
        && current.status == wanted.status
        && current.last_refreshed_at == wanted.last_refreshed_at
        && same_secret(access.as_ref(), Some(&file.access))
        && same_secret(refresh.as_ref(), file.refresh.as_ref())
}

fn same_webhook(keys: &KeyRing, current: &WebhookRow, file: &OpenWebhook) -> bool {
    let secret = match &current.secret {
        Some(s) => match keys.open_string(s, &secret_aad(current.id)) {
            Ok(v) => Some(v),
            Err(_) => return false,
        },
        None => None,
    };
    current.provider == file.rec.provider
        && current.url == file.rec.url
        && current.events == file.rec.events
        && current.enabled == file.rec.enabled
        && current.description == file.rec.description
        && same_secret(secret.as_ref(), file.secret.as_ref())
}

/// The row to write for a file config, re-sealed under the current key for row `id`.
fn config_row(keys: &KeyRing, key_id: &str, id: Uuid, c: &OpenConfig) -> ConfigRow {
    let r = &c.rec;
    ConfigRow {
        id,
        provider: r.provider.clone(),
        environment: r.environment.clone(),
        enabled: r.enabled,
        settings: Json(r.settings.clone()),
        secrets: keys.seal_map(&c.secrets, &secrets_aad(id)),
        secrets_masked: Json(
            c.secrets
                .iter()
                .map(|(k, v)| (k.clone(), mask(v.expose_secret())))
                .collect(),
        ),
        key_id: key_id.to_owned(),
        version: r.version,
        created_at: r.created_at,
        updated_at: r.updated_at,
        created_by: r.created_by.clone(),
        updated_by: r.updated_by.clone(),
        last_validated_at: r.last_validated_at,
        last_validation_status: r.last_validation_status.clone(),
        last_validation_detail: r.last_validation_detail.clone(),
    }
}

fn webhook_row(keys: &KeyRing, key_id: &str, w: &OpenWebhook) -> WebhookRow {
    let r = &w.rec;
    WebhookRow {
        id: r.id,
        provider: r.provider.clone(),
        url: r.url.clone(),
        events: r.events.clone(),
        secret: w
            .secret
            .as_ref()
            .map(|s| keys.seal(s.expose_secret().as_bytes(), &secret_aad(r.id))),
        secret_masked: w.secret.as_ref().map(|s| mask(s.expose_secret())),
        key_id: w.secret.as_ref().map(|_| key_id.to_owned()),
        enabled: r.enabled,
        description: r.description.clone(),
        version: r.version,
        created_at: r.created_at,
        updated_at: r.updated_at,
        created_by: r.created_by.clone(),
        updated_by: r.updated_by.clone(),
    }
}

fn token_row(
    keys: &KeyRing,
    key_id: &str,
    id: Uuid,
    integration_id: Uuid,
    t: &OpenToken,
) -> TokenRow {
    let r = &t.rec;
    TokenRow {
        id,
        integration_id,
        provider: r.provider.clone(),
        environment: r.environment.clone(),
        access_token: keys.seal(
            t.access.expose_secret().as_bytes(),
            &token_aad(id, "access_token"),
        ),
        refresh_token: t.refresh.as_ref().map(|s| {
            keys.seal(
                s.expose_secret().as_bytes(),
                &token_aad(id, "refresh_token"),
            )
        }),
        key_id: key_id.to_owned(),
        token_type: r.token_type.clone(),
        expires_at: r.expires_at,
        refresh_expires_at: r.refresh_expires_at,
        scope: r.scope.clone(),
        realm_id: r.realm_id.clone(),
        hub_id: r.hub_id.clone(),
        stripe_user_id: r.stripe_user_id.clone(),
        status: r.status.clone(),
        version: r.version,
        last_refreshed_at: r.last_refreshed_at,
        created_at: r.created_at,
        updated_at: r.updated_at,
    }
}
