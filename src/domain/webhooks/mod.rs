//! Webhook configurations: endpoint, subscribed events and a sealed `whsec_` signing secret
//! (generated when the client gives none, shown once), with rotation and an overlap during
//! which the old secret still signs.

mod doc;

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::domain::Provider;
use crate::domain::audit::{self, Resource};
use crate::domain::mask::mask;
use crate::http::auth::Caller;
use crate::http::error::ApiError;
use crate::infra::crypto::{Aad, KeyRing};
use crate::infra::webhook_signature::generate_secret;
use crate::state::AppState;
use crate::store::webhooks::{self as rows, WebhookRow};
use doc::{Doc, apply, diff, warnings};

pub fn secret_aad(id: Uuid) -> Aad {
    Aad::new("webhook_configurations", id, "secret")
}

/// The AAD of the secret that still signs during a rotation's overlap.
pub fn previous_secret_aad(id: Uuid) -> Aad {
    Aad::new("webhook_configurations", id, "previous_secret")
}

/// Body of `POST /api/config/webhooks`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookInput {
    /// Absolute http(s) URL the events are delivered to.
    #[schema(format = "uri", pattern = "^https?://[^/?#\\s]+", max_length = 2048)]
    pub url: String,
    /// Event types (docs/webhooks.md), `<group>.*` wildcards or `*`.
    #[schema(min_items = 1, max_items = 100)]
    pub events: Vec<String>,
    /// Signing secret, best as `whsec_<base64>`; generated when omitted and returned once.
    /// Sealed at rest, masked on read.
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
    /// Until when the secret replaced by the last rotation still signs too.
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    /// When delivery disabled the endpoint (every delivery failing), and why.
    pub disabled_at: Option<DateTime<Utc>>,
    pub disabled_reason: Option<String>,
    /// Stored event names the catalogue does not know (they receive nothing).
    pub warnings: Vec<String>,
}

/// The answer to a create: the view, and the generated secret, this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookCreated {
    #[serde(flatten)]
    pub webhook: WebhookView,
    /// The signing secret the service generated (`whsec_…`); shown only in this answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signing_secret: Option<String>,
}

/// The answer to a secret rotation: the new secret, this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct RotatedSecret {
    pub id: Uuid,
    /// The new signing secret (`whsec_…`); shown only in this answer.
    pub secret: String,
    /// Until when deliveries are signed with the old secret too.
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    pub version: i64,
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
            warnings: warnings(&r.events),
            events: r.events,
            secret: r.secret_masked,
            enabled: r.enabled,
            description: r.description,
            version: r.version,
            created_at: r.created_at,
            updated_at: r.updated_at,
            created_by: r.created_by,
            updated_by: r.updated_by,
            previous_secret_expires_at: r.previous_secret_expires_at.filter(|t| *t > Utc::now()),
            disabled_at: r.disabled_at,
            disabled_reason: r.disabled_reason,
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
) -> Result<WebhookCreated, ApiError> {
    let keys = state.keyring();
    let generated = input.secret.is_none().then(generate_secret);
    let doc = Doc {
        provider: input.provider,
        url: input.url,
        events: input.events,
        secret: input.secret.or_else(|| generated.clone()),
        enabled: input.enabled,
        description: input.description,
    };
    doc.validate(true, &state.settings.webhooks).await?;
    let id = Uuid::new_v4();
    let mut tx = state.db.begin().await?;
    let row = store(&mut tx, keys, caller, id, None, &doc).await?;
    let mut details = doc.plain();
    details["secret"] = json!(if generated.is_some() {
        "generated"
    } else {
        "given"
    });
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
    state.caches.webhooks_changed();
    Ok(WebhookCreated {
        webhook: row.try_into()?,
        signing_secret: generated.map(|s| s.expose_secret().to_owned()),
    })
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
    after
        .validate(patch.contains_key("events"), &state.settings.webhooks)
        .await?;
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
    state.caches.webhooks_changed();
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
    state.caches.webhooks_changed();
    Ok(())
}

/// Replaces the signing secret with a generated one; the old one keeps signing (a second
/// `v1,` signature) for `WEBHOOK_SECRET_OVERLAP`, so receivers switch without losing events.
pub async fn rotate_secret(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
) -> Result<RotatedSecret, ApiError> {
    let keys = state.keyring();
    let mut tx = state.db.begin().await?;
    let row = rows::find_for_update(&mut tx, id)
        .await?
        .ok_or_else(not_found)?;
    let old = match &row.secret {
        Some(sealed) => Some(keys.open_string(sealed, &secret_aad(id))?),
        None => None,
    };
    let overlap = chrono::Duration::from_std(state.settings.webhooks.secret_overlap)
        .unwrap_or(chrono::Duration::MAX);
    let expires_at = old.as_ref().map(|_| Utc::now() + overlap);
    let previous = old
        .as_ref()
        .map(|s| keys.seal(s.expose_secret().as_bytes(), &previous_secret_aad(id)));
    crate::store::outbox::set_previous_secret(
        &mut tx,
        id,
        previous.as_deref(),
        previous
            .as_ref()
            .map(|_| keys.current_id().to_string())
            .as_deref(),
        expires_at,
    )
    .await?;
    let new = generate_secret();
    let mut updated = row.clone();
    updated.secret = Some(keys.seal(new.expose_secret().as_bytes(), &secret_aad(id)));
    updated.secret_masked = Some(mask(new.expose_secret()));
    updated.key_id = Some(keys.current_id().to_string());
    updated.updated_by = Some(caller.name.clone());
    let stored = rows::update(&mut tx, &updated).await?;
    audit::write(
        &mut tx,
        &audit::row(
            caller,
            "webhook_secret_rotated",
            &Resource::webhook(Some(id.to_string())),
            true,
            json!({ "previous_secret_expires_at": expires_at, "version": stored.version }),
        ),
    )
    .await?;
    tx.commit().await?;
    Ok(RotatedSecret {
        id,
        secret: new.expose_secret().to_owned(),
        previous_secret_expires_at: expires_at,
        version: stored.version,
    })
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
        previous_secret_expires_at: existing.and_then(|r| r.previous_secret_expires_at),
        disabled_at: None,
        disabled_reason: None,
    };
    Ok(match existing {
        Some(_) => rows::update(tx, &row).await?,
        None => rows::insert(tx, &row).await?,
    })
}
