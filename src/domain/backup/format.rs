//! The backup file: one self-describing JSON document in canonical form, with an HMAC-SHA256
//! tag over everything but the tag itself.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::Sha256;
use uuid::Uuid;

use super::BackupError;
use crate::domain::Provider;
use crate::infra::canonical;
use crate::providers;

pub const FORMAT: &str = "hsq-config-backup";
/// The newest format this build writes and reads. Version 2 names a connection's account in
/// one `external_account_id`; version 1 files still restore.
pub const FORMAT_VERSION: u32 = 2;
pub const MAC_ALGORITHM: &str = "HMAC-SHA256";

/// The whole file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Document {
    pub format: String,
    pub format_version: u32,
    pub created_at: DateTime<Utc>,
    /// The host that wrote the file.
    pub source_instance: String,
    /// Every key id a sealed value in this file names.
    pub key_ids: Vec<String>,
    pub protection: Protection,
    pub data: Data,
    pub integrity: Integrity,
}

/// How the secrets in `data` are sealed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "mode", rename_all = "snake_case", deny_unknown_fields)]
pub enum Protection {
    /// Sealed as stored, under the service's own keys: restores where those keys are known.
    Keyring,
    /// Re-sealed under a key derived from a passphrase: restores under any `ENCRYPTION_KEY`.
    Passphrase {
        kdf: KdfParams,
        /// The id of the derived key; a different passphrase derives a different id.
        passphrase_key_id: String,
    },
}

/// Argon2id parameters, recorded so a later build with other defaults still derives the key.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct KdfParams {
    pub algorithm: String,
    pub version: u32,
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
    /// Base64 of a random salt.
    pub salt: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Integrity {
    pub algorithm: String,
    /// `keyring:<key id>` or `passphrase`: which key the tag is computed with.
    pub key: String,
    /// Base64 HMAC over the canonical JSON of the document without this tag (version 1:
    /// without `integrity`).
    pub tag: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Data {
    pub integration_configs: Vec<ConfigRecord>,
    pub webhook_configurations: Vec<WebhookRecord>,
    pub oauth_tokens: Vec<TokenRecord>,
}

/// A sealed value: base64 of `version ‖ key id ‖ nonce ‖ ciphertext+tag`, with its key id.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sealed {
    pub key_id: String,
    pub sealed: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigRecord {
    pub id: Uuid,
    pub provider: String,
    pub environment: String,
    pub enabled: bool,
    pub settings: Map<String, Value>,
    /// The secrets map, sealed as one JSON document (AAD `integration_configs/<id>/secrets`).
    pub secrets: Sealed,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub created_by: Option<String>,
    pub updated_by: Option<String>,
    pub last_validated_at: Option<DateTime<Utc>>,
    pub last_validation_status: Option<String>,
    pub last_validation_detail: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookRecord {
    pub id: Uuid,
    pub provider: Option<String>,
    pub url: String,
    pub events: Vec<String>,
    /// AAD `webhook_configurations/<id>/secret`.
    pub secret: Option<Sealed>,
    pub enabled: bool,
    pub description: Option<String>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub created_by: Option<String>,
    pub updated_by: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenRecord {
    pub id: Uuid,
    pub integration_id: Uuid,
    pub provider: String,
    pub environment: String,
    /// AAD `oauth_tokens/<id>/access_token`.
    pub access_token: Sealed,
    /// AAD `oauth_tokens/<id>/refresh_token`.
    pub refresh_token: Option<Sealed>,
    pub token_type: String,
    pub expires_at: Option<DateTime<Utc>>,
    pub refresh_expires_at: Option<DateTime<Utc>>,
    pub scope: Option<String>,
    /// The connected account's id at the provider (format version 2; version 1 files had one
    /// field per provider, read by [`upgrade_v1`]).
    pub external_account_id: Option<String>,
    pub status: String,
    pub version: i64,
    pub last_refreshed_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Sealed {
    pub fn new(key_id: impl ToString, bytes: &[u8]) -> Self {
        Self {
            key_id: key_id.to_string(),
            sealed: B64.encode(bytes),
        }
    }

    pub fn bytes(&self) -> Result<Vec<u8>, BackupError> {
        B64.decode(&self.sealed)
            .map_err(|_| BackupError::NotABackup("a sealed value is not valid base64".into()))
    }
}

/// The HMAC over what [`signed_content`] says the tag covers.
fn mac(key: &[u8], unsigned: &Value) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC accepts any key length");
    mac.update(&canonical::to_vec(unsigned));
    mac
}

/// What the tag covers. Version 1: everything but `integrity`. Version 2 also covers
/// `integrity.algorithm` and `integrity.key`, so no byte of the file but the tag itself can
/// change unnoticed (a one-byte edit of the key name was invisible to a version 1 tag).
fn signed_content(doc: &Value) -> Value {
    let mut unsigned = doc.clone();
    let version = doc.get("format_version").and_then(Value::as_u64);
    if let Value::Object(map) = &mut unsigned {
        match version {
            Some(1) => {
                map.remove("integrity");
            }
            _ => {
                if let Some(Value::Object(integrity)) = map.get_mut("integrity") {
                    integrity.remove("tag");
                }
            }
        }
    }
    unsigned
}

impl Document {
    /// Sets `integrity` for the current content, computed with `key` (named by `key_name`).
    pub fn sign(&mut self, key: &[u8], key_name: &str) {
        self.integrity = Integrity {
            algorithm: MAC_ALGORITHM.into(),
            key: key_name.into(),
            tag: String::new(),
        };
        let value = serde_json::to_value(&*self).expect("a backup document always serializes");
        let tag = mac(key, &signed_content(&value)).finalize().into_bytes();
        self.integrity.tag = B64.encode(tag);
    }

    /// The file's bytes: canonical JSON and a newline.
    pub fn to_bytes(&self) -> Vec<u8> {
        let value = serde_json::to_value(self).expect("a backup document always serializes");
        let mut bytes = canonical::to_vec(&value);
        bytes.push(b'\n');
        bytes
    }
}

/// A file parsed far enough to choose its key: the raw value (for the tag) and the document.
pub struct Parsed {
    value: Value,
    pub document: Document,
}

/// Parses a file. `strict` also requires the exact canonical form hsq-config writes, so any
/// edit — even one that JSON would not notice — is refused.
pub fn parse(bytes: &[u8], strict: bool) -> Result<Parsed, BackupError> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| {
        BackupError::NotABackup(format!(
            "not valid JSON (line {}, column {})",
            e.line(),
            e.column()
        ))
    })?;
    parse_value(value, strict.then_some(bytes))
}

/// Parses a document given as a JSON value (the HTTP API).
pub fn parse_value(value: Value, exact_bytes: Option<&[u8]>) -> Result<Parsed, BackupError> {
    if value.get("format").and_then(Value::as_str) != Some(FORMAT) {
        return Err(BackupError::NotABackup(format!(
            "the document's format is not {FORMAT}"
        )));
    }
    match value.get("format_version").and_then(Value::as_u64) {
        Some(v) if v > u64::from(FORMAT_VERSION) => {
            return Err(BackupError::NewerFormat {
                found: v,
                supported: FORMAT_VERSION,
            });
        }
        Some(v) if v >= 1 => {}
        _ => {
            return Err(BackupError::NotABackup(
                "format_version is missing or invalid".into(),
            ));
        }
    }
    if let Some(bytes) = exact_bytes {
        let mut canonical = canonical::to_vec(&value);
        canonical.push(b'\n');
        if bytes != canonical.as_slice() && bytes != &canonical[..canonical.len() - 1] {
            return Err(BackupError::Modified);
        }
    }
    // The tag covers the file as written; only the copy that is read is upgraded.
    let readable = match value.get("format_version").and_then(Value::as_u64) {
        Some(1) => upgrade_v1(value.clone()),
        _ => value.clone(),
    };
    let document: Document = serde_json::from_value(readable).map_err(|e| {
        BackupError::NotABackup(format!(
            "the document does not have the expected shape: {e}"
        ))
    })?;
    Ok(Parsed { value, document })
}

/// A version 1 document in version 2's shape: each token's per-provider account field (named
/// by the provider specs) becomes `external_account_id`.
fn upgrade_v1(mut value: Value) -> Value {
    let legacy: Vec<&str> = Provider::ALL
        .iter()
        .map(|p| providers::spec(*p).oauth().account_id_name)
        .collect();
    if let Some(tokens) = value
        .pointer_mut("/data/oauth_tokens")
        .and_then(Value::as_array_mut)
    {
        for token in tokens.iter_mut().filter_map(Value::as_object_mut) {
            let own = token
                .get("provider")
                .and_then(Value::as_str)
                .and_then(|p| p.parse::<Provider>().ok())
                .map(|p| providers::spec(p).oauth().account_id_name);
            let mut found: Vec<(&str, Value)> = legacy
                .iter()
                .filter_map(|name| token.remove(*name).map(|v| (*name, v)))
                .filter(|(_, v)| !v.is_null())
                .collect();
            found.sort_by_key(|(name, _)| Some(*name) != own);
            let id = found.into_iter().next().map_or(Value::Null, |(_, v)| v);
            token.insert("external_account_id".into(), id);
        }
    }
    value["format_version"] = Value::from(FORMAT_VERSION);
    value
}

impl Parsed {
    /// Checks the integrity tag with `key`, in constant time.
    pub fn verify(&self, key: &[u8]) -> Result<(), BackupError> {
        if self.document.integrity.algorithm != MAC_ALGORITHM {
            return Err(BackupError::NotABackup(format!(
                "integrity algorithm {:?} is not {MAC_ALGORITHM}",
                self.document.integrity.algorithm
            )));
        }
        let tag = B64
            .decode(&self.document.integrity.tag)
            .map_err(|_| BackupError::Modified)?;
        mac(key, &signed_content(&self.value))
            .verify_slice(&tag)
            .map_err(|_| BackupError::Modified)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn signed() -> Document {
        let mut doc = Document {
            format: FORMAT.into(),
            format_version: FORMAT_VERSION,
            created_at: Utc::now(),
            source_instance: "test".into(),
            key_ids: vec![],
            protection: Protection::Keyring,
            data: Data::default(),
            integrity: Integrity {
                algorithm: String::new(),
                key: String::new(),
                tag: String::new(),
            },
        };
        doc.sign(&[7; 32], "keyring:0011223344556677");
        doc
    }

    #[test]
    fn a_signed_file_verifies_with_its_key_only() {
        let bytes = signed().to_bytes();
        let parsed = parse(&bytes, true).expect("parses");
        parsed.verify(&[7; 32]).expect("verifies");
        assert!(matches!(
            parsed.verify(&[8; 32]),
            Err(BackupError::Modified)
        ));
    }

    #[test]
    fn the_cli_wants_the_exact_bytes_and_the_api_the_same_content() {
        let value: Value = serde_json::from_slice(&signed().to_bytes()).expect("json");
        let pretty = serde_json::to_vec_pretty(&value).expect("pretty");
        assert!(matches!(parse(&pretty, true), Err(BackupError::Modified)));
        let parsed = parse(&pretty, false).expect("same content");
        parsed
            .verify(&[7; 32])
            .expect("the tag covers content, not layout");
    }

    #[test]
    fn an_edit_of_the_integrity_key_name_is_refused() {
        // Found by the property test below: version 1 tags did not cover `integrity.key`.
        let text = String::from_utf8(signed().to_bytes()).expect("utf-8");
        let edited = text.replace("keyring:0011", "keyring:9911");
        let parsed = parse(edited.as_bytes(), true).expect("still parses");
        assert!(matches!(
            parsed.verify(&[7; 32]),
            Err(BackupError::Modified)
        ));
    }

    #[test]
    fn a_newer_format_is_named() {
        let mut value: Value = serde_json::from_slice(&signed().to_bytes()).expect("json");
        value["format_version"] = Value::from(FORMAT_VERSION + 1);
        let err = parse_value(value, None).err().expect("refused");
        assert!(
            err.to_string()
                .contains(&format!("version {}", FORMAT_VERSION + 1)),
            "{err}"
        );
    }

    // Property tests: a backup file is bytes from outside; none makes the parser panic, and
    // no edit of a signed file survives verification.
    proptest::proptest! {
        #[test]
        fn any_bytes_parse_to_a_document_or_a_refusal(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..400)) {
            if let Ok(parsed) = parse(&bytes, true) {
                let _ = parsed.verify(&[7; 32]);
            }
        }

        #[test]
        fn no_one_byte_edit_of_a_signed_file_verifies(at in 0usize..10_000, byte in proptest::num::u8::ANY) {
            let mut bytes = signed().to_bytes();
            let i = at % bytes.len();
            proptest::prop_assume!(bytes[i] != byte);
            bytes[i] = byte;
            if let Ok(parsed) = parse(&bytes, true) {
                proptest::prop_assert!(parsed.verify(&[7; 32]).is_err());
            }
        }
    }
}
