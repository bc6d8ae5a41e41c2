//! The token vault: sealing tokens into `oauth_tokens`, the views that leave it, and
//! disconnecting.
//!
//! Tokens are sealed with AAD `oauth_tokens/<row id>/access_token` and
//! `oauth_tokens/<row id>/refresh_token`; backup and key rotation rely on that convention.

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;
use uuid::Uuid;

use super::provider::{self, TokenSet};
use crate::domain::audit::{self, Resource};
use crate::domain::events::{EventType, NewEvent};
use crate::domain::integrations;
use crate::domain::outbox;
use crate::domain::{Environment, Provider};
use crate::http::auth::Caller;
use crate::http::error::ApiError;
use crate::infra::crypto::{Aad, KeyRing};
use crate::providers;
use crate::state::AppState;
use crate::store::oauth_tokens::{self as rows, TokenRow};

const TABLE: &str = "oauth_tokens";

pub fn access_aad(id: Uuid) -> Aad {
    Aad::new(TABLE, id, "access_token")
}

pub fn refresh_aad(id: Uuid) -> Aad {
    Aad::new(TABLE, id, "refresh_token")
}

/// Sealed copies of a token set for row `id`.
pub struct Sealed {
    pub access: Vec<u8>,
    pub refresh: Option<Vec<u8>>,
    pub key_id: String,
}

pub fn seal(keys: &KeyRing, id: Uuid, tokens: &TokenSet) -> Sealed {
    Sealed {
        access: keys.seal(
            tokens.access_token.expose_secret().as_bytes(),
            &access_aad(id),
        ),
        refresh: tokens
            .refresh_token
            .as_ref()
            .map(|t| keys.seal(t.expose_secret().as_bytes(), &refresh_aad(id))),
        key_id: keys.current_id().to_string(),
    }
}

pub fn open_refresh(keys: &KeyRing, row: &TokenRow) -> Result<Option<SecretString>, ApiError> {
    row.refresh_token
        .as_deref()
        .map(|sealed| keys.open_string(sealed, &refresh_aad(row.id)))
        .transpose()
        .map_err(ApiError::from)
}

pub fn resource(provider: Provider, environment: Environment) -> Resource {
    Resource {
        kind: "oauth_connection",
        id: Some(format!("{provider}/{environment}")),
        provider: Some(provider),
        environment: Some(environment),
    }
}

/// What `POST /api/config/{provider}/token` returns.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenGrant {
    #[serde(serialize_with = "expose")]
    #[schema(value_type = String)]
    pub access_token: SecretString,
    pub token_type: String,
    pub expires_at: Option<DateTime<Utc>>,
    /// The connected account's id at the provider; also returned under the provider's own
    /// name for it (`realm_id`, `hub_id`, `stripe_user_id`), as earlier versions did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_account_id: Option<String>,
    #[serde(flatten)]
    #[schema(ignore)]
    pub account: AccountField,
}

fn expose<S: serde::Serializer>(s: &SecretString, ser: S) -> Result<S::Ok, S::Error> {
    ser.serialize_str(s.expose_secret())
}

impl TokenGrant {
    pub fn open(keys: &KeyRing, row: &TokenRow) -> Result<Self, ApiError> {
        Ok(Self {
            access_token: keys.open_string(&row.access_token, &access_aad(row.id))?,
            token_type: row.token_type.clone(),
            expires_at: row.expires_at,
            external_account_id: row.external_account_id.clone(),
            account: AccountField::of(row),
        })
    }
}

/// A connection's external account id under the provider's name for it, serialized as one
/// member (`"realm_id": "…"`) or none.
#[derive(Debug, Clone, Default)]
pub struct AccountField(Option<(&'static str, String)>);

impl AccountField {
    pub fn of(row: &TokenRow) -> Self {
        let name = row
            .provider
            .parse::<Provider>()
            .ok()
            .map(|p| providers::spec(p).oauth().account_id_name);
        Self(name.zip(row.external_account_id.clone()))
    }
}

impl Serialize for AccountField {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(usize::from(self.0.is_some())))?;
        if let Some((name, id)) = &self.0 {
            map.serialize_entry(name, id)?;
        }
        map.end()
    }
}

/// A connection as `GET …/connection` shows it: state and metadata, never a token.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectionView {
    pub provider: Provider,
    pub environment: Environment,
    /// `connected`, `needs_reauth` or `revoked`.
    pub status: String,
    pub scopes: Vec<String>,
    pub token_type: String,
    pub expires_at: Option<DateTime<Utc>>,
    /// The refresh token's rolling expiry (extended by each refresh).
    pub refresh_expires_at: Option<DateTime<Utc>>,
    /// Its hard maximum lifetime (QuickBooks: five years), when the provider reports it.
    pub refresh_hard_expires_at: Option<DateTime<Utc>>,
    /// The connected account's id at the provider; also returned under the provider's own
    /// name for it (`realm_id`, `hub_id`, `stripe_user_id`), as earlier versions did.
    pub external_account_id: Option<String>,
    #[serde(flatten)]
    #[schema(ignore)]
    pub account: AccountField,
    pub last_refreshed_at: Option<DateTime<Utc>>,
    pub connected_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl ConnectionView {
    pub fn of(provider: Provider, environment: Environment, row: &TokenRow) -> Self {
        Self {
            provider,
            environment,
            status: row.status.clone(),
            scopes: row
                .scope
                .as_deref()
                .map(|s| {
                    s.split([' ', ','])
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default(),
            token_type: row.token_type.clone(),
            expires_at: row.expires_at,
            refresh_expires_at: row.refresh_expires_at,
            refresh_hard_expires_at: row.refresh_hard_expires_at,
            external_account_id: row.external_account_id.clone(),
            account: AccountField::of(row),
            last_refreshed_at: row.last_refreshed_at,
            connected_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

fn not_connected(provider: Provider, environment: Environment) -> ApiError {
    ApiError::not_found(format!("{provider} {environment} is not connected"))
}

/// The connection's row, from this process's cache when it holds a fresh copy (see
/// `store::invalidation`); writers lock and re-read the row itself.
pub async fn find(
    state: &AppState,
    provider: Provider,
    environment: Environment,
) -> Result<TokenRow, ApiError> {
    let key = format!("{provider}/{environment}");
    if let Some(row) = state.caches.connections.get(&key) {
        return Ok(row);
    }
    let generation = state.caches.connections.generation();
    let mut conn = state.db.acquire().await?;
    let row = rows::find(&mut conn, provider.as_str(), environment.as_str())
        .await?
        .ok_or_else(|| not_connected(provider, environment))?;
    state
        .caches
        .connections
        .insert_since(generation, key, row.clone());
    Ok(row)
}

pub async fn connection(
    state: &AppState,
    provider: Provider,
    environment: Environment,
) -> Result<ConnectionView, ApiError> {
    let row = find(state, provider, environment).await?;
    Ok(ConnectionView::of(provider, environment, &row))
}

/// Every connection, without tokens (the console's overview).
pub async fn connections(state: &AppState) -> Result<Vec<ConnectionView>, ApiError> {
    let mut views = Vec::new();
    for row in rows::list(&state.db).await? {
        if let (Ok(p), Ok(e)) = (row.provider.parse(), row.environment.parse()) {
            views.push(ConnectionView::of(p, e, &row));
        }
    }
    Ok(views)
}

/// The result of a disconnect: tokens are gone; revocation at the provider is best effort.
#[derive(Debug, Serialize, ToSchema)]
pub struct Disconnected {
    pub provider: Provider,
    pub environment: Environment,
    pub revoked_at_provider: bool,
    /// Why revocation at the provider failed, when it did (a stable code).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoke_error: Option<String>,
}

/// Revokes at the provider (best effort), deletes the tokens and audits `oauth_disconnected`.
pub async fn disconnect(
    state: &AppState,
    caller: &Caller,
    provider: Provider,
    environment: Environment,
) -> Result<Disconnected, ApiError> {
    let row = find(state, provider, environment).await?;
    let revoke_error = match revoke(state, provider, environment, &row).await {
        Ok(()) => None,
        Err(reason) => {
            tracing::warn!(%provider, %environment, reason, "revocation at the provider failed; deleting the tokens anyway");
            Some(reason)
        }
    };
    let mut tx = state.db.begin().await?;
    // Locked so a refresh in flight finishes first and nothing writes the row back.
    if let Some(current) =
        rows::find_for_update(&mut tx, provider.as_str(), environment.as_str()).await?
    {
        rows::delete(&mut tx, current.id).await?;
    }
    let details = json!({
        "revoked_at_provider": revoke_error.is_none(),
        "revoke_error": revoke_error,
    });
    let event = NewEvent::about(EventType::OAuthDisconnected, provider, environment)
        .with("revoked_at_provider", json!(revoke_error.is_none()));
    outbox::record(&mut tx, &event).await?;
    audit::write(
        &mut tx,
        &audit::row(
            caller,
            "oauth_disconnected",
            &resource(provider, environment),
            true,
            details,
        ),
    )
    .await?;
    tx.commit().await?;
    state
        .caches
        .connection_changed(provider.as_str(), environment.as_str());
    Ok(Disconnected {
        provider,
        environment,
        revoked_at_provider: revoke_error.is_none(),
        revoke_error,
    })
}

async fn revoke(
    state: &AppState,
    provider: Provider,
    environment: Environment,
    row: &TokenRow,
) -> Result<(), String> {
    let keys = state.keyring();
    let config = integrations::open_secrets(state, provider, environment)
        .await
        .map_err(|e| e.code().to_owned())?;
    let Some((config, secrets)) = config else {
        return Err("not_configured".into());
    };
    let endpoints = state.settings.oauth.endpoints(provider);
    let client = provider::app_client(provider, endpoints, &config.settings.0, &secrets)
        .ok_or_else(|| "client_not_configured".to_owned())?;
    let access = keys
        .open_string(&row.access_token, &access_aad(row.id))
        .map_err(|_| "sealed_value_unreadable".to_owned())?;
    let refresh = open_refresh(keys, row).map_err(|_| "sealed_value_unreadable".to_owned())?;
    client
        .revoke(
            &state.http,
            state.settings.oauth.provider_timeout,
            refresh.as_ref(),
            &access,
            row.external_account_id.as_deref(),
        )
        .await
        .map_err(|e| e.reason().to_owned())
}
