//! Reading configurations: masked views (from this process's cache when fresh), the audited
//! reveal of decrypted secrets, and opened secrets for internal callers.

use secrecy::ExposeSecret;
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use super::{ConfigView, not_configured, secrets_aad};
use crate::domain::audit::{self, Resource};
use crate::domain::{Environment, Provider};
use crate::http::auth::Caller;
use crate::http::error::ApiError;
use crate::infra::crypto::SecretMap;
use crate::state::AppState;
use crate::store::integrations::{self as rows, ConfigRow};

/// Decrypted secrets, returned only by reveal.
#[derive(Debug, Serialize, ToSchema)]
pub struct RevealedSecrets {
    pub provider: Provider,
    pub environment: Environment,
    pub version: i64,
    #[serde(serialize_with = "expose_map")]
    #[schema(value_type = BTreeMap<String, String>)]
    pub secrets: SecretMap,
}

fn expose_map<S: serde::Serializer>(map: &SecretMap, s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut out = s.serialize_map(Some(map.len()))?;
    for (k, v) in map {
        out.serialize_entry(k, v.expose_secret())?;
    }
    out.end()
}

pub async fn list(state: &AppState) -> Result<Vec<ConfigView>, ApiError> {
    rows::list(&state.db)
        .await?
        .into_iter()
        .map(ConfigView::try_from)
        .collect()
}

pub async fn get(
    state: &AppState,
    provider: Provider,
    environment: Environment,
) -> Result<ConfigView, ApiError> {
    cached_row(state, provider, environment).await?.try_into()
}

/// Decrypts the secrets for a caller allowed to see them, and audits the read first.
pub async fn reveal(
    state: &AppState,
    caller: &Caller,
    provider: Provider,
    environment: Environment,
) -> Result<RevealedSecrets, ApiError> {
    let row = cached_row(state, provider, environment).await?;
    let secrets = state
        .keyring()
        .open_map(&row.secrets, &secrets_aad(row.id))?;
    let names: Vec<&String> = secrets.keys().collect();
    // The secrets leave only after their audit row is committed; the row says which version
    // was revealed.
    audit::write_alone(
        state,
        audit::row(
            caller,
            "secret_revealed",
            &Resource::integration(provider, environment),
            true,
            json!({ "fields": names, "version": row.version }),
        ),
    )
    .await?;
    Ok(RevealedSecrets {
        provider,
        environment,
        version: row.version,
        secrets,
    })
}

/// The config row, from this process's cache when it holds a fresh copy (see
/// `store::invalidation` for how fresh).
async fn cached_row(
    state: &AppState,
    provider: Provider,
    environment: Environment,
) -> Result<ConfigRow, ApiError> {
    let key = format!("{provider}/{environment}");
    if let Some(row) = state.caches.configs.get(&key) {
        return Ok(row);
    }
    let generation = state.caches.configs.generation();
    let mut conn = state.db.acquire().await?;
    let row = rows::find(&mut conn, provider.as_str(), environment.as_str())
        .await?
        .ok_or_else(|| not_configured(provider, environment))?;
    state
        .caches
        .configs
        .insert_since(generation, key, row.clone());
    Ok(row)
}

/// The decrypted secrets of a config, for internal callers (OAuth, validation).
pub async fn open_secrets(
    state: &AppState,
    provider: Provider,
    environment: Environment,
) -> Result<Option<(ConfigRow, SecretMap)>, ApiError> {
    let keys = state.keyring();
    let mut conn = state.db.acquire().await?;
    let Some(row) = rows::find(&mut conn, provider.as_str(), environment.as_str()).await? else {
        return Ok(None);
    };
    let secrets = keys.open_map(&row.secrets, &secrets_aad(row.id))?;
    Ok(Some((row, secrets)))
}
