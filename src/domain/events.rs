//! The event catalogue: every event type a webhook endpoint can subscribe to, the patterns an
//! endpoint subscribes with (`config.updated`, `oauth.*`, `*`), and the payload receivers get.
//! The catalogue with an example of each is docs/webhooks.md.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::{Map, Value, json};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::domain::{Environment, Provider};

/// One kind of event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, ToSchema)]
pub enum EventType {
    #[serde(rename = "config.created")]
    ConfigCreated,
    #[serde(rename = "config.updated")]
    ConfigUpdated,
    #[serde(rename = "config.deleted")]
    ConfigDeleted,
    #[serde(rename = "config.validated")]
    ConfigValidated,
    #[serde(rename = "oauth.connected")]
    OAuthConnected,
    #[serde(rename = "oauth.disconnected")]
    OAuthDisconnected,
    #[serde(rename = "oauth.refresh_failed")]
    OAuthRefreshFailed,
    #[serde(rename = "oauth.needs_reauth")]
    OAuthNeedsReauth,
    #[serde(rename = "oauth.expiring")]
    OAuthExpiring,
    #[serde(rename = "oauth.token_retrieved")]
    OAuthTokenRetrieved,
    #[serde(rename = "breaker.opened")]
    BreakerOpened,
    #[serde(rename = "breaker.closed")]
    BreakerClosed,
    #[serde(rename = "backup.succeeded")]
    BackupSucceeded,
    #[serde(rename = "backup.failed")]
    BackupFailed,
    #[serde(rename = "key_rotation.completed")]
    KeyRotationCompleted,
    #[serde(rename = "webhook.test")]
    WebhookTest,
}

impl EventType {
    pub const ALL: [EventType; 16] = [
        Self::ConfigCreated,
        Self::ConfigUpdated,
        Self::ConfigDeleted,
        Self::ConfigValidated,
        Self::OAuthConnected,
        Self::OAuthDisconnected,
        Self::OAuthRefreshFailed,
        Self::OAuthNeedsReauth,
        Self::OAuthExpiring,
        Self::OAuthTokenRetrieved,
        Self::BreakerOpened,
        Self::BreakerClosed,
        Self::BackupSucceeded,
        Self::BackupFailed,
        Self::KeyRotationCompleted,
        Self::WebhookTest,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ConfigCreated => "config.created",
            Self::ConfigUpdated => "config.updated",
            Self::ConfigDeleted => "config.deleted",
            Self::ConfigValidated => "config.validated",
            Self::OAuthConnected => "oauth.connected",
            Self::OAuthDisconnected => "oauth.disconnected",
            Self::OAuthRefreshFailed => "oauth.refresh_failed",
            Self::OAuthNeedsReauth => "oauth.needs_reauth",
            Self::OAuthExpiring => "oauth.expiring",
            Self::OAuthTokenRetrieved => "oauth.token_retrieved",
            Self::BreakerOpened => "breaker.opened",
            Self::BreakerClosed => "breaker.closed",
            Self::BackupSucceeded => "backup.succeeded",
            Self::BackupFailed => "backup.failed",
            Self::KeyRotationCompleted => "key_rotation.completed",
            Self::WebhookTest => "webhook.test",
        }
    }

    /// High-volume types reach only endpoints that name them, never through a wildcard.
    pub fn explicit_only(self) -> bool {
        self == Self::OAuthTokenRetrieved
    }
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for EventType {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        Self::ALL.into_iter().find(|t| t.as_str() == s).ok_or(())
    }
}

/// Whether `pattern` is an event type, `<group>.*` for a group of the catalogue, or `*`.
pub fn is_known_pattern(pattern: &str) -> bool {
    if pattern == "*" || pattern.parse::<EventType>().is_ok() {
        return true;
    }
    pattern.strip_suffix(".*").is_some_and(|group| {
        EventType::ALL
            .iter()
            .any(|t| t.as_str().split_once('.').is_some_and(|(g, _)| g == group))
    })
}

/// Whether an endpoint subscribed with `pattern` gets events of type `event`. Unknown
/// patterns (free-form names from before the catalogue) match nothing.
pub fn matches(pattern: &str, event: EventType) -> bool {
    if pattern == event.as_str() {
        return true;
    }
    if event.explicit_only() {
        return false;
    }
    match pattern.strip_suffix('*') {
        Some("") => true,
        Some(prefix) if prefix.ends_with('.') => event.as_str().starts_with(prefix),
        _ => false,
    }
}

/// What the catalogue accepts, for 422 messages.
pub fn accepted() -> String {
    let names: Vec<&str> = EventType::ALL.iter().map(|t| t.as_str()).collect();
    format!(
        "an event type ({}), a group wildcard like oauth.* or *",
        names.join(", ")
    )
}

/// An event about to be written to the outbox.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub id: Uuid,
    pub kind: EventType,
    pub provider: Option<Provider>,
    pub environment: Option<Environment>,
    pub at: DateTime<Utc>,
    /// More of `data` than provider and environment: names, counts, states — never a secret,
    /// a token or a masked value.
    pub data: Map<String, Value>,
}

impl NewEvent {
    pub fn new(
        kind: EventType,
        provider: Option<Provider>,
        environment: Option<Environment>,
    ) -> Self {
        Self {
            id: Uuid::new_v4(),
            kind,
            provider,
            environment,
            at: Utc::now(),
            data: Map::new(),
        }
    }

    /// An event about one provider × environment.
    pub fn about(kind: EventType, provider: Provider, environment: Environment) -> Self {
        Self::new(kind, Some(provider), Some(environment))
    }

    pub fn with(mut self, key: &str, value: Value) -> Self {
        self.data.insert(key.to_owned(), value);
        self
    }

    /// The `webhook-id` header and the payload's `id`: the same for every attempt.
    pub fn message_id(id: Uuid) -> String {
        format!("msg_{}", id.simple())
    }

    /// The body every endpoint receives.
    pub fn payload(&self) -> Value {
        let mut data = Map::new();
        data.insert("provider".into(), json!(self.provider));
        data.insert("environment".into(), json!(self.environment));
        data.extend(self.data.clone());
        json!({
            "id": Self::message_id(self.id),
            "type": self.kind,
            "timestamp": self.at.to_rfc3339_opts(SecondsFormat::Millis, true),
            "data": data,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_their_group_but_never_the_token_read() {
        assert!(matches("oauth.*", EventType::OAuthConnected));
        assert!(!matches("oauth.*", EventType::OAuthTokenRetrieved));
        assert!(!matches("*", EventType::OAuthTokenRetrieved));
        assert!(matches(
            "oauth.token_retrieved",
            EventType::OAuthTokenRetrieved
        ));
        assert!(matches("*", EventType::BackupFailed));
        assert!(!matches("config.*", EventType::OAuthConnected));
        assert!(!matches("invoice.paid", EventType::ConfigUpdated));
        assert!(!matches("conf*", EventType::ConfigUpdated));
    }

    #[test]
    fn the_catalogue_knows_its_names_and_groups() {
        for t in EventType::ALL {
            assert_eq!(t.as_str().parse::<EventType>(), Ok(t));
            assert_eq!(serde_json::to_value(t).ok(), Some(json!(t.as_str())));
        }
        assert!(is_known_pattern("key_rotation.*"));
        assert!(is_known_pattern("*"));
        assert!(!is_known_pattern("invoice.*"));
        assert!(!is_known_pattern("config.changed"));
    }
}
