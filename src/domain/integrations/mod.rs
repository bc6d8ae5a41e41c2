//! Integration configurations: validate, seal, mask, store and audit in one transaction.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sqlx::types::Json;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::domain::audit::{self, Resource};
use crate::domain::events::EventType;
use crate::domain::mask::mask;
use crate::domain::outbox::{self, Prepared, config_event};
use crate::domain::{Environment, Provider};
use crate::http::auth::Caller;
use crate::http::error::ApiError;
use crate::infra::crypto::{Aad, KeyRing, SecretMap};
use crate::providers;
use crate::state::AppState;
use crate::store::audit::NewAuditRow;
use crate::store::integrations::{self as rows, ConfigRow};

mod read;
mod snapshot;

pub use read::{RevealedSecrets, get, list, open_secrets, reveal};

use snapshot::{Snapshot, changes};

const TABLE: &str = "integration_configs";

/// The AAD of a config's sealed secrets: bound to its row.
pub fn secrets_aad(id: Uuid) -> Aad {
    Aad::new(TABLE, id, "secrets")
}

/// Body of `PUT /api/config/integrations/{provider}/{environment}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfigInput {
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Plain settings; the provider's schema says which.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub settings: Map<String, Value>,
    /// Secret values, sealed at rest and masked on read.
    #[serde(default)]
    #[schema(value_type = BTreeMap<String, String>)]
    pub secrets: SecretMap,
}

/// Body of `PATCH /api/config/integrations/{provider}/{environment}`: a JSON merge patch of
/// the configuration. Omitted members stay as they are; `null` removes a setting or secret.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // read as a merge patch; this type only documents it
pub struct ConfigPatch {
    /// `null` turns the integration back on (the default).
    enabled: Option<bool>,
    /// Settings to set, or `null` to remove one.
    #[schema(value_type = Option<Object>)]
    settings: Option<Map<String, Value>>,
    /// Secrets to set, or `null` to remove one.
    secrets: Option<BTreeMap<String, Option<String>>>,
}

fn default_true() -> bool {
    true
}

/// The result of the last live validation, if any.
#[derive(Debug, Serialize, ToSchema)]
pub struct LastValidation {
    pub at: DateTime<Utc>,
    pub status: Option<String>,
    pub detail: Option<String>,
}

/// A configuration as every read returns it: secrets masked.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConfigView {
    pub id: Uuid,
    pub provider: Provider,
    pub environment: Environment,
    pub enabled: bool,
    #[schema(value_type = Object)]
    pub settings: Map<String, Value>,
    /// Masked values, e.g. `sk_te***...***4242`.
    pub secrets: BTreeMap<String, String>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub created_by: Option<String>,
    pub updated_by: Option<String>,
    pub last_validation: Option<LastValidation>,
}

impl TryFrom<ConfigRow> for ConfigView {
    type Error = ApiError;

    fn try_from(row: ConfigRow) -> Result<Self, ApiError> {
        let corrupt = |e: String| ApiError::Internal(anyhow::anyhow!("bad row: {e}"));
        Ok(Self {
            id: row.id,
            provider: row.provider.parse().map_err(corrupt)?,
            environment: row.environment.parse().map_err(corrupt)?,
            enabled: row.enabled,
            settings: row.settings.0,
            secrets: row.secrets_masked.0,
            version: row.version,
            created_at: row.created_at,
            updated_at: row.updated_at,
            created_by: row.created_by,
            updated_by: row.updated_by,
            last_validation: row.last_validated_at.map(|at| LastValidation {
                at,
                status: row.last_validation_status,
                detail: row.last_validation_detail,
            }),
        })
    }
}

/// `If-Match`: any existing version, or exactly this one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precondition {
    Exists,
    Version(i64),
}

impl Precondition {
    fn check(self, current: Option<i64>) -> Result<(), ApiError> {
        match (self, current) {
            (Precondition::Exists, Some(_)) => Ok(()),
            (Precondition::Version(want), Some(have)) if want == have => Ok(()),
            _ => Err(ApiError::PreconditionFailed),
        }
    }
}

fn not_configured(provider: Provider, environment: Environment) -> ApiError {
    ApiError::not_found(format!("{provider} has no {environment} configuration"))
}

/// Creates or replaces a configuration. Returns the view and whether it was created.
pub async fn put(
    state: &AppState,
    caller: &Caller,
    provider: Provider,
    environment: Environment,
    input: ConfigInput,
    precondition: Option<Precondition>,
) -> Result<(ConfigView, bool), ApiError> {
    let keys = state.keyring();
    let settings = providers::with_defaults(provider, input.settings);
    providers::validate(provider, environment, &settings, &input.secrets)
        .map_err(ApiError::Validation)?;

    let mut tx = state.db.begin().await?;
    let subscribers = outbox::subscribers(&mut tx).await?;
    let existing = rows::find_for_update(&mut tx, provider.as_str(), environment.as_str()).await?;
    if let Some(p) = precondition {
        p.check(existing.as_ref().map(|r| r.version))?;
    }
    let before = existing.as_ref().map(|row| Snapshot::of(row, keys));
    let after = Snapshot {
        enabled: input.enabled,
        settings,
        secrets: Some(input.secrets),
    };
    let action = if existing.is_some() {
        "config_replaced"
    } else {
        "config_created"
    };
    let details = changes(before.as_ref(), &after);
    let kind = if existing.is_some() {
        EventType::ConfigUpdated
    } else {
        EventType::ConfigCreated
    };
    // The row is locked: its UPDATE moves the version on by exactly one.
    let version = existing.as_ref().map_or(1, |r| r.version + 1);
    let event = config_event(kind, provider, environment, &details, version);
    let audit_row = audit::row(
        caller,
        action,
        &Resource::integration(provider, environment),
        true,
        details,
    );
    let row = write(
        &mut tx,
        keys,
        caller,
        (provider, environment),
        existing.as_ref(),
        &after,
        (&subscribers.prepare(&event), &audit_row),
    )
    .await?;
    tx.commit().await?;
    state
        .caches
        .config_changed(provider.as_str(), environment.as_str());
    Ok((row.try_into()?, existing.is_none()))
}

/// Applies a JSON merge patch to `{enabled, settings, secrets}`.
pub async fn patch(
    state: &AppState,
    caller: &Caller,
    provider: Provider,
    environment: Environment,
    patch: Value,
    precondition: Option<Precondition>,
) -> Result<ConfigView, ApiError> {
    let keys = state.keyring();
    let Value::Object(patch) = patch else {
        return Err(ApiError::field(
            "body",
            "a merge patch must be a JSON object",
        ));
    };
    for key in patch.keys() {
        if !matches!(key.as_str(), "enabled" | "settings" | "secrets") {
            return Err(ApiError::field(
                key.clone(),
                "unknown field; expected enabled, settings or secrets",
            ));
        }
    }
    // The patch's own shape is judged before the stored row (and its version) is looked at.
    Snapshot::default().patched(&patch)?;
    let mut tx = state.db.begin().await?;
    let subscribers = outbox::subscribers(&mut tx).await?;
    let existing = rows::find_for_update(&mut tx, provider.as_str(), environment.as_str())
        .await?
        .ok_or_else(|| not_configured(provider, environment))?;
    if let Some(p) = precondition {
        p.check(Some(existing.version))?;
    }
    let current_secrets = keys.open_map(&existing.secrets, &secrets_aad(existing.id))?;
    let before = Snapshot {
        enabled: existing.enabled,
        settings: existing.settings.0.clone(),
        secrets: Some(current_secrets),
    };
    let after = before.patched(&patch)?;
    providers::validate(provider, environment, &after.settings, after.secrets())
        .map_err(ApiError::Validation)?;
    let details = changes(Some(&before), &after);
    let event = config_event(
        EventType::ConfigUpdated,
        provider,
        environment,
        &details,
        // The row is locked: its UPDATE moves the version on by exactly one.
        existing.version + 1,
    );
    let audit_row = audit::row(
        caller,
        "config_patched",
        &Resource::integration(provider, environment),
        true,
        details,
    );
    let row = write(
        &mut tx,
        keys,
        caller,
        (provider, environment),
        Some(&existing),
        &after,
        (&subscribers.prepare(&event), &audit_row),
    )
    .await?;
    tx.commit().await?;
    state
        .caches
        .config_changed(provider.as_str(), environment.as_str());
    row.try_into()
}

pub async fn delete(
    state: &AppState,
    caller: &Caller,
    provider: Provider,
    environment: Environment,
    precondition: Option<Precondition>,
) -> Result<(), ApiError> {
    let mut tx = state.db.begin().await?;
    let subscribers = outbox::subscribers(&mut tx).await?;
    let existing = rows::find_for_update(&mut tx, provider.as_str(), environment.as_str())
        .await?
        .ok_or_else(|| not_configured(provider, environment))?;
    if let Some(p) = precondition {
        p.check(Some(existing.version))?;
    }
    let tokens = crate::store::oauth_tokens::count_for_config(&mut tx, existing.id).await?;
    rows::delete(&mut tx, existing.id).await?;
    let event = config_event(
        EventType::ConfigDeleted,
        provider,
        environment,
        &json!({}),
        existing.version,
    );
    let audit_row = audit::row(
        caller,
        "config_deleted",
        &Resource::integration(provider, environment),
        true,
        json!({ "version": existing.version, "oauth_tokens_removed": tokens }),
    );
    subscribers
        .prepare(&event)
        .write_audited(&mut tx, &audit_row)
        .await?;
    tx.commit().await?;
    state
        .caches
        .config_changed(provider.as_str(), environment.as_str());
    Ok(())
}

/// Seals, masks and writes `doc` as the config of `provider`/`environment`: a new row, or
/// `existing` with its content replaced; with it, the change's event and audit row.
async fn write(
    tx: &mut sqlx::PgConnection,
    keys: &KeyRing,
    caller: &Caller,
    (provider, environment): (Provider, Environment),
    existing: Option<&ConfigRow>,
    doc: &Snapshot,
    (event, audit_row): (&Prepared, &NewAuditRow),
) -> Result<ConfigRow, ApiError> {
    let id = existing.map_or_else(Uuid::new_v4, |r| r.id);
    let secrets = doc.secrets();
    let now = Utc::now();
    let row = ConfigRow {
        id,
        provider: provider.to_string(),
        environment: environment.to_string(),
        enabled: doc.enabled,
        settings: Json(doc.settings.clone()),
        secrets: keys.seal_map(secrets, &secrets_aad(id)),
        secrets_masked: Json(
            secrets
                .iter()
                .map(|(k, v)| (k.clone(), mask(v.expose_secret())))
                .collect(),
        ),
        key_id: keys.current_id().to_string(),
        version: existing.map_or(1, |r| r.version),
        created_at: existing.map_or(now, |r| r.created_at),
        updated_at: now,
        created_by: existing.map_or(Some(caller.name.clone()), |r| r.created_by.clone()),
        updated_by: Some(caller.name.clone()),
        last_validated_at: existing.and_then(|r| r.last_validated_at),
        last_validation_status: existing.and_then(|r| r.last_validation_status.clone()),
        last_validation_detail: existing.and_then(|r| r.last_validation_detail.clone()),
    };
    match existing {
        // One statement while the row is locked: a failure leaves the change without its
        // audit row, so it is `audit_unavailable`.
        Some(_) => audit::written(rows::update(tx, &row, event.records(Some(audit_row))).await),
        None => {
            let row = rows::insert(tx, &row).await?;
            event.write_audited(tx, audit_row).await?;
            Ok(row)
        }
    }
}
