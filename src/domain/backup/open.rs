//! The verification half of a restore: check the tag with the right key, check every key id,
//! and open every sealed value in memory. Nothing is written until all of this succeeds.

use std::collections::{BTreeMap, HashSet};

use secrecy::SecretString;
use sha2::{Digest, Sha256};

use super::format::{self, ConfigRecord, Parsed, Protection, Sealed, TokenRecord, WebhookRecord};
use super::{BackupError, PassphraseKey};
use crate::domain::integrations::secrets_aad;
use crate::domain::oauth::vault;
use crate::domain::webhooks::secret_aad;
use crate::domain::{Environment, Provider};
use crate::infra::crypto::{Aad, KeyId, KeyRing, OpenError, SecretMap};

pub(super) struct OpenConfig {
    pub(super) rec: ConfigRecord,
    pub(super) secrets: SecretMap,
}

pub(super) struct OpenWebhook {
    pub(super) rec: WebhookRecord,
    pub(super) secret: Option<SecretString>,
}

pub(super) struct OpenToken {
    pub(super) rec: TokenRecord,
    pub(super) access: SecretString,
    pub(super) refresh: Option<SecretString>,
}

/// Everything in the file, verified and opened in memory; nothing touched yet.
pub(super) struct Opened {
    pub(super) configs: Vec<OpenConfig>,
    pub(super) webhooks: Vec<OpenWebhook>,
    pub(super) tokens: Vec<OpenToken>,
    pub(super) sha256: String,
}

/// Checks the tag with the right key and opens every sealed value, or refuses the file.
pub(super) fn open(
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
            open_one(&rec.access_token, &vault::access_aad(rec.id), &what)?,
            &what,
        )?;
        let refresh = match &rec.refresh_token {
            Some(s) => Some(text(
                open_one(s, &vault::refresh_aad(rec.id), &what)?,
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
