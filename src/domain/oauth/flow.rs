//! The browser flow: `authorize` starts it (state in Redis, PKCE, consent URL); `callback`
//! finishes it (state consumed once, code exchanged, tokens sealed and stored, audited).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use reqwest::Url;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use uuid::Uuid;

use super::provider::{self, AppClient};
use super::state::{self, FlowState};
use super::vault;
use crate::domain::audit;
use crate::domain::events::{EventType, NewEvent};
use crate::domain::integrations;
use crate::domain::outbox;
use crate::domain::{Environment, Provider, Role};
use crate::http::auth::{Caller, RequestMeta};
use crate::http::error::ApiError;
use crate::providers::{self, AccountSource};
use crate::state::AppState;
use crate::store::oauth_tokens::{self as rows, TokenRow};

/// Body of `POST /api/config/{provider}/oauth/authorize`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthorizeInput {
    pub environment: Environment,
    /// Where the browser lands after the callback; must be on `OAUTH_RETURN_ALLOWED_ORIGINS`.
    pub return_to: String,
    /// Allow this authorization to connect another external account (QuickBooks company,
    /// HubSpot portal, Stripe account) than the one connected now, replacing it. Without it,
    /// such a callback is refused and the connection stays as it is.
    #[serde(default)]
    pub replace_account: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuthorizeOutput {
    /// Send the user's browser here.
    pub authorization_url: String,
    /// The flow must finish before this.
    pub expires_at: DateTime<Utc>,
}

/// The OAuth app client of a provider × environment, or why there is none.
async fn app_client(
    state: &AppState,
    provider: Provider,
    environment: Environment,
) -> Result<AppClient, ApiError> {
    let oauth = providers::spec(provider).oauth();
    let missing = || {
        ApiError::Conflict(format!(
            "{provider} {environment} has no OAuth app configured; set settings.{} and secrets.{} first",
            oauth.client_id_setting, oauth.client_secret_field
        ))
    };
    let (config, secrets) = integrations::open_secrets(state, provider, environment)
        .await?
        .ok_or_else(missing)?;
    provider::app_client(
        provider,
        state.settings.oauth.endpoints(provider),
        &config.settings.0,
        &secrets,
    )
    .ok_or_else(missing)
}

/// Starts a flow: stores its state in Redis and returns the consent URL.
pub async fn authorize(
    state: &AppState,
    caller: &Caller,
    provider: Provider,
    input: AuthorizeInput,
) -> Result<AuthorizeOutput, ApiError> {
    let settings = &state.settings.oauth;
    let return_to = state::check_return_to(&input.return_to, &settings.return_allowed_origins)
        .map_err(|m| ApiError::field("return_to", m))?;
    let environment = input.environment;
    let redirect_uri = settings
        .endpoints(provider)
        .redirect_uri
        .clone()
        .ok_or_else(|| {
            ApiError::Conflict(format!(
                "{}_OAUTH_REDIRECT_URI is not set, so a {provider} flow cannot start",
                provider.as_str().to_ascii_uppercase()
            ))
        })?;
    let client = app_client(state, provider, environment).await?;
    let (challenge, verifier) = provider::pkce();
    let flow_state = state::new_state();
    let url = client
        .authorize_url(&flow_state, &redirect_uri, challenge)
        .map_err(|e| {
            ApiError::Internal(anyhow::anyhow!(
                "the authorization URL could not be built: {e}"
            ))
        })?;
    let flow = FlowState {
        provider,
        environment,
        verifier: verifier.secret().to_owned(),
        redirect_uri: redirect_uri.to_string(),
        return_to: return_to.to_string(),
        actor_name: caller.name.clone(),
        actor_token_id: caller.token_id,
        replace_account: input.replace_account,
    };
    state::save(&state.redis, &flow_state, &flow, settings.state_ttl)
        .await
        .map_err(|e| ApiError::unavailable("the OAuth flow store (Redis)", e))?;
    let expires_at = Utc::now() + settings.state_ttl;
    let mut tx = state.db.begin().await?;
    let details = json!({ "return_to_origin": return_to.origin().ascii_serialization(),
                          "replace_account": input.replace_account });
    audit::write(
        &mut tx,
        &audit::row(
            caller,
            "oauth_authorize_started",
            &vault::resource(provider, environment),
            true,
            details,
        ),
    )
    .await?;
    tx.commit().await?;
    Ok(AuthorizeOutput {
        authorization_url: url.to_string(),
        expires_at,
    })
}

/// How a callback ends for the browser.
pub enum CallbackOutcome {
    /// 303 to `return_to` (or the first allowed origin) with `oauth=success|error`.
    Redirect(Url),
    /// No usable `return_to`: a small page that says what happened.
    Page { success: bool, reason: &'static str },
}

/// Finishes a flow. Never fails as HTTP: every outcome is a redirect or a page.
pub async fn callback(
    state: &AppState,
    meta: RequestMeta,
    provider: Provider,
    query: &HashMap<String, String>,
) -> CallbackOutcome {
    let Some(flow_state) = query.get("state").filter(|s| state::well_formed(s)) else {
        return without_flow(state, provider, "invalid_state");
    };
    let flow = match state::consume(&state.redis, flow_state).await {
        Ok(Some(flow)) => flow,
        Ok(None) => return without_flow(state, provider, "invalid_state"),
        Err(e) => {
            tracing::warn!(%provider, error = %e, "the OAuth flow store is unavailable; the callback cannot finish");
            return without_flow(state, provider, "state_unavailable");
        }
    };
    let caller = Caller {
        token_id: flow.actor_token_id,
        name: flow.actor_name.clone(),
        role: Role::Admin,
        meta,
    };
    let resource = vault::resource(flow.provider, flow.environment);
    let result = if flow.provider != provider {
        Err("provider_mismatch")
    } else {
        finish(state, &caller, &flow, query).await
    };
    crate::infra::metrics::OAUTH_FLOWS
        .with_label_values(&[provider.as_str(), result.err().unwrap_or("success")])
        .inc();
    let reason = match result {
        Ok(()) => None,
        Err(reason) => {
            tracing::info!(%provider, environment = %flow.environment, reason, "OAuth callback failed");
            let details = json!({ "reason": reason });
            let record = audit::row(&caller, "oauth_connected", &resource, false, details);
            if let Err(e) = write_audit(state, &record).await {
                tracing::error!(
                    error.code = e.code(),
                    "could not audit a failed OAuth callback"
                );
            }
            Some(reason)
        }
    };
    match Url::parse(&flow.return_to) {
        Ok(url) => CallbackOutcome::Redirect(with_outcome(url, provider, reason)),
        Err(_) => CallbackOutcome::Page {
            success: reason.is_none(),
            reason: reason.unwrap_or("connected"),
        },
    }
}

async fn write_audit(
    state: &AppState,
    record: &crate::store::audit::NewAuditRow,
) -> Result<(), ApiError> {
    let mut conn = state.db.acquire().await?;
    audit::write(&mut conn, record).await
}

/// A callback whose flow is unknown: back to the first allowed origin, never to anything
/// the request names.
fn without_flow(state: &AppState, provider: Provider, reason: &'static str) -> CallbackOutcome {
    match state.settings.oauth.return_allowed_origins.first() {
        Some(origin) => {
            CallbackOutcome::Redirect(with_outcome(origin.clone(), provider, Some(reason)))
        }
        None => CallbackOutcome::Page {
            success: false,
            reason,
        },
    }
}

fn with_outcome(mut url: Url, provider: Provider, reason: Option<&str>) -> Url {
    {
        let mut pairs = url.query_pairs_mut();
        pairs.append_pair("provider", provider.as_str());
        match reason {
            None => pairs.append_pair("oauth", "success"),
            Some(reason) => pairs
                .append_pair("oauth", "error")
                .append_pair("reason", reason),
        };
    }
    url
}

async fn finish(
    state: &AppState,
    caller: &Caller,
    flow: &FlowState,
    query: &HashMap<String, String>,
) -> Result<(), &'static str> {
    if let Some(error) = query.get("error") {
        return Err(if error == "access_denied" {
            "access_denied"
        } else {
            "provider_error"
        });
    }
    let code = query
        .get("code")
        .filter(|c| !c.is_empty() && c.len() <= 4096)
        .ok_or("missing_code")?;
    let oauth = providers::spec(flow.provider).oauth();
    let from_callback = match oauth.account {
        AccountSource::TokenField(_) => None,
        AccountSource::CallbackParam(param) => Some(
            query
                .get(param)
                .filter(|v| !v.is_empty() && v.len() <= 32 && v.bytes().all(|b| b.is_ascii_digit()))
                .ok_or(oauth.invalid_account_reason)?
                .clone(),
        ),
    };
    let client = app_client(state, flow.provider, flow.environment)
        .await
        .map_err(|_| "not_configured")?;
    let redirect_uri = Url::parse(&flow.redirect_uri).map_err(|_| "invalid_state")?;
    let exchange = client.exchange_code(
        &state.http,
        state.settings.oauth.provider_timeout,
        code,
        &flow.verifier,
        &redirect_uri,
    );
    let tokens = state
        .breakers
        .call(flow.provider, flow.environment, exchange, provider::ProviderError::provider_up)
        .await
        .unwrap_or_else(|| Err(provider::ProviderError::circuit_open()))
        .map_err(|e| {
            tracing::warn!(provider = %flow.provider, error = %e, "authorization code exchange failed");
            if matches!(e, provider::ProviderError::InvalidGrant) { "invalid_grant" } else { e.reason() }
        })?;
    let account = from_callback.or_else(|| tokens.account_id.clone());
    store(state, caller, flow, &tokens, account)
        .await
        .map(|_| ())
        .map_err(|e| match e {
            ApiError::Conflict(_) => "account_mismatch",
            e => {
                tracing::error!(error.cause_chain = ?e, "storing OAuth tokens failed");
                "storage_failed"
            }
        })
}

/// Seals and stores the tokens and audits `oauth_connected`, in one transaction.
async fn store(
    state: &AppState,
    caller: &Caller,
    flow: &FlowState,
    tokens: &provider::TokenSet,
    external_account_id: Option<String>,
) -> Result<TokenRow, ApiError> {
    let (p, e) = (flow.provider, flow.environment);
    let config_id = integrations::open_secrets(state, p, e)
        .await?
        .map(|(row, _)| row.id)
        .ok_or_else(|| ApiError::not_found("the configuration was deleted during the flow"))?;
    let mut tx = state.db.begin().await?;
    let existing = rows::find_for_update(&mut tx, p.as_str(), e.as_str()).await?;
    // Account pinning: another company, portal or account replaces this one only when the
    // authorization said so; otherwise the new tokens are dropped here, unstored.
    let replaced = existing
        .as_ref()
        .and_then(|r| r.external_account_id.clone())
        .filter(|old| external_account_id.as_ref().is_some_and(|new| new != old));
    if replaced.is_some() && !flow.replace_account {
        return Err(ApiError::Conflict(format!(
            "{p} {e} is connected to another account; authorize with replace_account to replace it"
        )));
    }
    let id = existing.as_ref().map_or_else(Uuid::new_v4, |r| r.id);
    let sealed = vault::seal(state.keyring(), id, tokens);
    let now = Utc::now();
    let secs = |s: u64| {
        chrono::Duration::seconds(
            i64::try_from(s)
                .unwrap_or(i64::MAX / 1000)
                .min(10 * 365 * 86_400),
        )
    };
    let row = TokenRow {
        id,
        integration_id: config_id,
        provider: p.to_string(),
        environment: e.to_string(),
        access_token: sealed.access,
        refresh_token: sealed.refresh,
        key_id: sealed.key_id,
        token_type: tokens.token_type.clone(),
        expires_at: tokens.expires_in.map(|s| now + secs(s)),
        refresh_expires_at: tokens.refresh_expires_in.map(|s| now + secs(s)),
        scope: tokens.scope.clone(),
        external_account_id,
        status: "connected".into(),
        version: 1,
        last_refreshed_at: None,
        created_at: now,
        updated_at: now,
        refresh_hard_expires_at: None,
    };
    let row = match &existing {
        Some(_) => rows::replace(&mut tx, &row).await?,
        None => rows::insert(&mut tx, &row).await?,
    };
    // A new authorization starts a new chain of refresh tokens, with its own hard expiry.
    let hard = tokens.refresh_hard_expires_in.map(|s| now + secs(s));
    let row = rows::set_hard_expiry(&mut tx, row.id, hard).await?;
    let account_name = providers::spec(p).oauth().account_id_name;
    let mut details = json!({
        "reconnected": existing.is_some(),
        "scope": row.scope,
        "external_account_id": row.external_account_id,
        "expires_at": row.expires_at,
        "has_refresh_token": row.refresh_token.is_some(),
        "replaced_external_account_id": replaced,
    });
    details[account_name] = json!(row.external_account_id);
    let event = NewEvent::new(EventType::OAuthConnected, Some(p), Some(e))
        .with("reconnected", json!(existing.is_some()))
        .with("replaced_account", json!(replaced.is_some()))
        .with("external_account_id", json!(row.external_account_id))
        .with("scope", json!(row.scope))
        .with("expires_at", json!(row.expires_at));
    outbox::record(&mut tx, &event).await?;
    audit::write(
        &mut tx,
        &audit::row(
            caller,
            "oauth_connected",
            &vault::resource(p, e),
            true,
            details,
        ),
    )
    .await?;
    tx.commit().await?;
    state.caches.connection_changed(p.as_str(), e.as_str());
    Ok(row)
}
