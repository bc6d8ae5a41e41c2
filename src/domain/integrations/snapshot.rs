//! A config's content before and after a change: merge patches applied to it, and the audit
//! details of what changed (names and plain values; secrets only say that they changed).

use std::collections::BTreeMap;

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value, json};

use super::secrets_aad;
use crate::http::error::ApiError;
use crate::infra::crypto::{KeyRing, SecretMap};
use crate::store::integrations::ConfigRow;

/// A config's content before or after a change; `secrets` is None when it could not be opened.
#[derive(Default)]
pub(super) struct Snapshot {
    pub enabled: bool,
    pub settings: Map<String, Value>,
    pub secrets: Option<SecretMap>,
}

static EMPTY: SecretMap = BTreeMap::new();

impl Snapshot {
    pub fn of(row: &ConfigRow, keys: &KeyRing) -> Self {
        Self {
            enabled: row.enabled,
            settings: row.settings.0.clone(),
            secrets: keys.open_map(&row.secrets, &secrets_aad(row.id)).ok(),
        }
    }

    pub fn secrets(&self) -> &SecretMap {
        self.secrets.as_ref().unwrap_or(&EMPTY)
    }

    pub fn patched(&self, patch: &Map<String, Value>) -> Result<Self, ApiError> {
        let mut enabled = self.enabled;
        match patch.get("enabled") {
            None => {}
            Some(Value::Bool(b)) => enabled = *b,
            Some(Value::Null) => enabled = true,
            Some(_) => {
                return Err(ApiError::field(
                    "enabled",
                    "invalid value; expected a boolean",
                ));
            }
        }
        let mut settings = Value::Object(self.settings.clone());
        if let Some(p) = patch.get("settings") {
            if !p.is_object() && !p.is_null() {
                return Err(ApiError::field(
                    "settings",
                    "invalid value; expected an object or null",
                ));
            }
            crate::http::json::merge_patch(&mut settings, p);
        }
        let mut secrets = self.secrets().clone();
        match patch.get("secrets") {
            None => {}
            // RFC 7396: null removes the member, here every secret.
            Some(Value::Null) => secrets.clear(),
            Some(Value::Object(changes)) => {
                for (name, value) in changes {
                    match value {
                        Value::Null => {
                            secrets.remove(name);
                        }
                        Value::String(s) => {
                            secrets.insert(name.clone(), SecretString::from(s.clone()));
                        }
                        _ => {
                            return Err(ApiError::field(
                                format!("secrets.{name}"),
                                "invalid value; expected a string or null",
                            ));
                        }
                    }
                }
            }
            Some(_) => {
                return Err(ApiError::field(
                    "secrets",
                    "invalid value; expected an object or null",
                ));
            }
        }
        Ok(Self {
            enabled,
            settings: match settings {
                Value::Object(m) => m,
                _ => Map::new(),
            },
            secrets: Some(secrets),
        })
    }
}

/// Names of changed fields with plain before/after values; secrets only say that they changed.
pub(super) fn changes(before: Option<&Snapshot>, after: &Snapshot) -> Value {
    let mut changed = Map::new();
    let before_enabled = before.map(|b| b.enabled);
    if before_enabled != Some(after.enabled) {
        changed.insert(
            "enabled".into(),
            json!({ "before": before_enabled, "after": after.enabled }),
        );
    }
    let empty = Map::new();
    let before_settings = before.map_or(&empty, |b| &b.settings);
    let names: std::collections::BTreeSet<&String> = before_settings
        .keys()
        .chain(after.settings.keys())
        .collect();
    for name in names {
        let (b, a) = (before_settings.get(name), after.settings.get(name));
        if b != a {
            changed.insert(
                format!("settings.{name}"),
                json!({ "before": b, "after": a }),
            );
        }
    }
    let before_secrets = before.and_then(|b| b.secrets.as_ref());
    let after_secrets = after.secrets();
    let names: std::collections::BTreeSet<&String> = before_secrets
        .into_iter()
        .flat_map(|m| m.keys())
        .chain(after_secrets.keys())
        .collect();
    for name in names {
        let b = before_secrets.and_then(|m| m.get(name));
        let a = after_secrets.get(name);
        let change = match (b, a) {
            (None, Some(_)) if before.is_some() && before_secrets.is_none() => "replaced",
            (None, Some(_)) => "added",
            (Some(_), None) => "removed",
            (Some(x), Some(y)) if x.expose_secret() != y.expose_secret() => "replaced",
            _ => continue,
        };
        changed.insert(format!("secrets.{name}"), json!({ "secret": change }));
    }
    json!({
        "changed_fields": changed.keys().cloned().collect::<Vec<_>>(),
        "changes": changed,
    })
}
