//! A webhook's content while it is changed: checks (the URL's target, events against the
//! catalogue), merge patches applied to it, and the audit details of what changed.

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value, json};

use crate::config::WebhookSettings;
use crate::domain::Provider;
use crate::domain::events;
use crate::http::error::{ApiError, FieldError};
use crate::infra::outbound::{self, TargetRefused};

/// A webhook's content, plaintext secret in memory only.
pub(super) struct Doc {
    pub provider: Option<Provider>,
    pub url: String,
    pub events: Vec<String>,
    pub secret: Option<SecretString>,
    pub enabled: bool,
    pub description: Option<String>,
}

impl Doc {
    /// Checks every field. `events_changed`: the events were given now and must name the
    /// catalogue; stored free-form names are kept (and reported as warnings).
    pub async fn validate(
        &self,
        events_changed: bool,
        targets: &WebhookSettings,
    ) -> Result<(), ApiError> {
        let mut errors = Vec::new();
        if self.url.len() > 2048 {
            errors.push(FieldError::new(
                "url",
                "must be an absolute http:// or https:// URL",
            ));
        } else if let Err(refused) = outbound::check_url(
            &self.url,
            targets.allow_private_targets,
            targets.require_https,
        )
        .await
        {
            let message = match refused {
                TargetRefused::Scheme => "must be an absolute http:// or https:// URL".to_owned(),
                TargetRefused::Private => {
                    format!("{refused}; set WEBHOOK_ALLOW_PRIVATE_TARGETS=true for development")
                }
                TargetRefused::Insecure => refused.to_string(),
            };
            errors.push(FieldError::new("url", message));
        }
        if self.events.is_empty() || self.events.len() > 100 {
            errors.push(FieldError::new(
                "events",
                "must list between 1 and 100 event names",
            ));
        }
        for (i, event) in self.events.iter().enumerate() {
            let ok = !event.is_empty()
                && event.len() <= 128
                && event
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-:*".contains(c));
            if !ok {
                errors.push(FieldError::new(
                    format!("events[{i}]"),
                    "must be an event name of letters, digits and . _ - : *",
                ));
            } else if events_changed && !events::is_known_pattern(event) {
                errors.push(FieldError::new(
                    format!("events[{i}]"),
                    format!("unknown event type; expected {}", events::accepted()),
                ));
            }
        }
        if let Some(secret) = &self.secret {
            let s = secret.expose_secret();
            if s.len() < 8 || s.len() > 4096 || s.chars().any(char::is_whitespace) {
                errors.push(FieldError::new(
                    "secret",
                    "must be 8 to 4096 characters without whitespace",
                ));
            } else if let Some((provider, prefix)) = self.provider.and_then(|p| {
                crate::providers::spec(p)
                    .webhook_secret_prefix()
                    .map(|prefix| (p, prefix))
            }) {
                if !s.starts_with(prefix) {
                    errors.push(FieldError::new(
                        "secret",
                        format!("a {provider} signing secret starts with {prefix}"),
                    ));
                }
            }
        }
        if self.description.as_ref().is_some_and(|d| d.len() > 1000) {
            errors.push(FieldError::new(
                "description",
                "must be at most 1000 characters",
            ));
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Validation(errors))
        }
    }

    pub fn plain(&self) -> Value {
        json!({
            "provider": self.provider,
            "url": self.url,
            "events": self.events,
            "enabled": self.enabled,
            "description": self.description,
        })
    }
}

pub(super) fn apply(before: &Doc, patch: &Map<String, Value>) -> Result<Doc, ApiError> {
    let mut doc = Doc {
        provider: before.provider,
        url: before.url.clone(),
        events: before.events.clone(),
        secret: before.secret.clone(),
        enabled: before.enabled,
        description: before.description.clone(),
    };
    let invalid = |field: &str, expected: &str| {
        ApiError::field(field, format!("invalid value; expected {expected}"))
    };
    for (key, value) in patch {
        match (key.as_str(), value) {
            ("url", Value::String(s)) => doc.url = s.clone(),
            ("url", _) => return Err(invalid("url", "a URL string")),
            ("events", Value::Array(items)) => {
                doc.events = items
                    .iter()
                    .map(|i| i.as_str().map(str::to_owned))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| invalid("events", "a list of strings"))?;
            }
            ("events", _) => return Err(invalid("events", "a list of strings")),
            ("secret", Value::Null) => doc.secret = None,
            ("secret", Value::String(s)) => doc.secret = Some(SecretString::from(s.clone())),
            ("secret", _) => return Err(invalid("secret", "a string or null")),
            ("provider", Value::Null) => doc.provider = None,
            ("provider", Value::String(s)) => {
                doc.provider = Some(
                    s.parse()
                        .map_err(|e: String| ApiError::field("provider", e))?,
                );
            }
            ("provider", _) => {
                let expected = format!("{} or null", Provider::ALL.map(|p| p.as_str()).join(", "));
                return Err(invalid("provider", &expected));
            }
            ("enabled", Value::Bool(b)) => doc.enabled = *b,
            ("enabled", _) => return Err(invalid("enabled", "a boolean")),
            ("description", Value::Null) => doc.description = None,
            ("description", Value::String(s)) => doc.description = Some(s.clone()),
            ("description", _) => return Err(invalid("description", "a string or null")),
            (other, _) => {
                return Err(ApiError::field(
                    other,
                    "unknown field; expected url, events, secret, provider, enabled or description",
                ));
            }
        }
    }
    Ok(doc)
}

pub(super) fn diff(before: &Doc, after: &Doc) -> Value {
    let (b, a) = (before.plain(), after.plain());
    let mut changes = Map::new();
    if let (Value::Object(b), Value::Object(a)) = (&b, &a) {
        for (k, av) in a {
            if b.get(k) != Some(av) {
                changes.insert(k.clone(), json!({ "before": b.get(k), "after": av }));
            }
        }
    }
    let secret_change = match (&before.secret, &after.secret) {
        (None, Some(_)) => Some("added"),
        (Some(_), None) => Some("removed"),
        (Some(x), Some(y)) if x.expose_secret() != y.expose_secret() => Some("replaced"),
        _ => None,
    };
    if let Some(change) = secret_change {
        changes.insert("secret".into(), json!({ "secret": change }));
    }
    json!({ "changed_fields": changes.keys().cloned().collect::<Vec<_>>(), "changes": changes })
}

/// Stored event names the catalogue does not know: they match nothing.
pub(super) fn warnings(events: &[String]) -> Vec<String> {
    events
        .iter()
        .enumerate()
        .filter(|(_, e)| !events::is_known_pattern(e))
        .map(|(i, e)| {
            format!("events[{i}] {e:?} is not a known event type and receives nothing; replace it")
        })
        .collect()
}
