//! Webhook configurations: endpoint, events and a sealed signing secret.

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::domain::Provider;
use crate::domain::audit::{self, Resource};
use crate::domain::mask::mask;
use crate::http::auth::Caller;
use crate::http::error::{ApiError, FieldError};
use crate::infra::crypto::{Aad, KeyRing};
use crate::state::AppState;
use crate::store::webhooks::{self as rows, WebhookRow};

pub fn secret_aad(id: Uuid) -> Aad {
    Aad::new("webhook_configurations", id, "secret")
}

/// Body of `POST /api/config/webhooks`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookInput {
    /// Absolute http(s) URL the events are delivered to.
    #[schema(format = "uri", pattern = "^https?://[^/?#\\s]+", max_length = 2048)]
    pub url: String,
    pub events: Vec<String>,
    /// Signing secret; sealed at rest, masked on read.
    #[schema(value_type = Option<String>, min_length = 8, max_length = 4096, pattern = "^\\S+$")]
    pub secret: Option<SecretString>,
    pub provider: Option<Provider>,
    #[serde(default = "yes")]
    pub enabled: bool,
    #[schema(max_length = 1000)]
    pub description: Option<String>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookView {
    pub id: Uuid,
    pub provider: Option<Provider>,
    pub url: String,
    pub events: Vec<String>,
    /// Masked signing secret, or null when none is set.
    pub secret: Option<String>,
    pub enabled: bool,
    pub description: Option<String>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub created_by: Option<String>,
    pub updated_by: Option<String>,
}

impl TryFrom<WebhookRow> for WebhookView {
    type Error = ApiError;

    fn try_from(r: WebhookRow) -> Result<Self, ApiError> {
        Ok(Self {
            id: r.id,
            provider: r
                .provider
                .map(|p| p.parse())
                .transpose()
                .map_err(|e: String| ApiError::Internal(anyhow::anyhow!(e)))?,
            url: r.url,
            events: r.events,
            secret: r.secret_masked,
            enabled: r.enabled,
            description: r.description,
            version: r.version,
            created_at: r.created_at,
            updated_at: r.updated_at,
            created_by: r.created_by,
            updated_by: r.updated_by,
        })
    }
}

/// A webhook's content, plaintext secret in memory only.
struct Doc {
    provider: Option<Provider>,
    url: String,
    events: Vec<String>,
    secret: Option<SecretString>,
    enabled: bool,
    description: Option<String>,
}

impl Doc {
    fn validate(&self) -> Result<(), ApiError> {
        let mut errors = Vec::new();
        let url_ok = reqwest::Url::parse(&self.url)
            .map(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
            .unwrap_or(false);
        if !url_ok || self.url.len() > 2048 {
            errors.push(FieldError::new(
                "url",
                "must be an absolute http:// or https:// URL",
            ));
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

    fn plain(&self) -> Value {
        json!({
            "provider": self.provider,
            "url": self.url,
            "events": self.events,
            "enabled": self.enabled,
            "description": self.description,
        })
    }
}

pub async fn list(state: &AppState) -> Result<Vec<WebhookView>, ApiError> {
    rows::list(&state.db)
        .await?
        .into_iter()
        .map(WebhookView::try_from)
        .collect()
}

pub async fn get(state: &AppState, id: Uuid) -> Result<WebhookView, ApiError> {
    let mut conn = state.db.acquire().await?;
    rows::find(&mut conn, id)
        .await?
        .ok_or_else(not_found)?
        .try_into()
}

fn not_found() -> ApiError {
    ApiError::not_found("no webhook configuration has this id")
}

pub async fn create(
    state: &AppState,
    caller: &Caller,
    input: WebhookInput,
) -> Result<WebhookView, ApiError> {
    let keys = state.keyring();
    let doc = Doc {
        provider: input.provider,
        url: input.url,
        events: input.events,
        secret: input.secret,
        enabled: input.enabled,
        description: input.description,
    };
    doc.validate()?;
    let id = Uuid::new_v4();
    let mut tx = state.db.begin().await?;
    let row = store(&mut tx, keys, caller, id, None, &doc).await?;
    let mut details = doc.plain();
    details["secret"] = json!(doc.secret.is_some());
    audit::write(
        &mut tx,
        &audit::row(
            caller,
            "webhook_created",
            &Resource::webhook(Some(id.to_string())),
            true,
            details,
        ),
    )
    .await?;
    tx.commit().await?;
    row.try_into()
}

pub async fn patch(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
    patch: Value,
    expected_version: Option<i64>,
) -> Result<WebhookView, ApiError> {
    let keys = state.keyring();
    let Value::Object(patch) = patch else {
        return Err(ApiError::field(
            "body",
            "a merge patch must be a JSON object",
        ));
    };
    let mut tx = state.db.begin().await?;
    let row = rows::find_for_update(&mut tx, id)
        .await?
        .ok_or_else(not_found)?;
    if expected_version.is_some_and(|v| v != row.version) {
        return Err(ApiError::PreconditionFailed);
    }
    let secret = match &row.secret {
        Some(sealed) => Some(keys.open_string(sealed, &secret_aad(id))?),
        None => None,
    };
    let before = Doc {
        provider: row
            .provider
            .as_deref()
            .map(str::parse)
            .transpose()
            .map_err(|e: String| ApiError::Internal(anyhow::anyhow!(e)))?,
        url: row.url.clone(),
        events: row.events.clone(),
        secret,
        enabled: row.enabled,
        description: row.description.clone(),
    };
    let after = apply(&before, &patch)?;
    after.validate()?;
    let updated = store(&mut tx, keys, caller, id, Some(&row), &after).await?;
    audit::write(
        &mut tx,
        &audit::row(
            caller,
            "webhook_updated",
            &Resource::webhook(Some(id.to_string())),
            true,
            diff(&before, &after),
        ),
    )
    .await?;
    tx.commit().await?;
    updated.try_into()
}

pub async fn delete(state: &AppState, caller: &Caller, id: Uuid) -> Result<(), ApiError> {
    let mut tx = state.db.begin().await?;
    if !rows::delete(&mut tx, id).await? {
        return Err(not_found());
    }
    audit::write(
        &mut tx,
        &audit::row(
            caller,
            "webhook_deleted",
            &Resource::webhook(Some(id.to_string())),
            true,
            json!({}),
        ),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Seals, masks and writes `doc` as webhook `id`: a new row, or `existing` replaced.
async fn store(
    tx: &mut sqlx::PgConnection,
    keys: &KeyRing,
    caller: &Caller,
    id: Uuid,
    existing: Option<&WebhookRow>,
    doc: &Doc,
) -> Result<WebhookRow, ApiError> {
    let sealed = doc
        .secret
        .as_ref()
        .map(|s| keys.seal(s.expose_secret().as_bytes(), &secret_aad(id)));
    let now = Utc::now();
    let row = WebhookRow {
        id,
        provider: doc.provider.map(|p| p.to_string()),
        url: doc.url.clone(),
        events: doc.events.clone(),
        key_id: sealed.as_ref().map(|_| keys.current_id().to_string()),
        secret: sealed,
        secret_masked: doc.secret.as_ref().map(|s| mask(s.expose_secret())),
        enabled: doc.enabled,
        description: doc.description.clone(),
        version: existing.map_or(1, |r| r.version),
        created_at: existing.map_or(now, |r| r.created_at),
        updated_at: now,
        created_by: existing.map_or(Some(caller.name.clone()), |r| r.created_by.clone()),
        updated_by: Some(caller.name.clone()),
    };
    Ok(match existing {
        Some(_) => rows::update(tx, &row).await?,
        None => rows::insert(tx, &row).await?,
    })
}

fn apply(before: &Doc, patch: &Map<String, Value>) -> Result<Doc, ApiError> {
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

fn diff(before: &Doc, after: &Doc) -> Value {
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
