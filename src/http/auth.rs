//! Bearer tokens and roles.
//!
//! Tokens are random, shown once, and stored only as SHA-256. An unknown, revoked or missing
//! token gets the same 401 whatever the reason.

use axum::extract::{FromRef, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;
use base64::Engine;
use rand::RngCore;
use secrecy::SecretString;
use uuid::Uuid;

use crate::domain::Role;
use crate::http::client_ip::client_ip;
use crate::http::error::ApiError;
use crate::infra::crypto::token_hash;
use crate::state::AppState;
use crate::store;

const TOKEN_PREFIX: &str = "hsq_";

/// Facts about the request that go into audit rows.
#[derive(Debug, Clone, Default)]
pub struct RequestMeta {
    pub request_id: Option<String>,
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
}

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Caller {
    /// None for the bootstrap admin token from `ADMIN_API_TOKEN`.
    pub token_id: Option<Uuid>,
    pub name: String,
    pub role: Role,
    pub meta: RequestMeta,
}

impl Caller {
    /// The service itself or an operator's CLI command, as named in audit rows
    /// (`system:backup-scheduler`, `cli:restore`).
    pub fn system(name: impl Into<String>) -> Self {
        Self {
            token_id: None,
            name: name.into(),
            role: Role::Admin,
            meta: RequestMeta::default(),
        }
    }

    pub fn has_role(&self, allowed: &[Role]) -> bool {
        allowed.contains(&self.role)
    }
}

/// A new random token and the hash to store.
pub fn new_token() -> (SecretString, Vec<u8>) {
    let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng.fill_bytes(&mut bytes[..]);
    let token = format!(
        "{TOKEN_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&bytes[..])
    );
    let hash = token_hash(&token);
    (SecretString::from(token), hash)
}

impl<S> FromRequestParts<S> for RequestMeta
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let state = AppState::from_ref(state);
        let peer = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0.ip());
        let text = |name: &str| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(|v| v.chars().take(512).collect::<String>())
        };
        Ok(RequestMeta {
            request_id: text("x-request-id"),
            client_ip: client_ip(peer, &parts.headers, &state.settings.trusted_proxies)
                .map(|ip| ip.to_string()),
            user_agent: text(header::USER_AGENT.as_str()),
        })
    }
}

impl<S> FromRequestParts<S> for Caller
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let meta = RequestMeta::from_request_parts(parts, state).await?;
        let state = AppState::from_ref(state);
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let (scheme, token) = v.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            })
            .filter(|t| !t.is_empty() && t.len() <= 512)
            .ok_or(ApiError::Unauthorized)?;
        authenticate(&state, token, meta).await
    }
}

/// The caller a bearer token stands for: the bootstrap admin, or an active API token (its use
/// recorded). The API's extractor and the console's sign-in both ask here.
pub async fn authenticate(
    state: &AppState,
    token: &str,
    meta: RequestMeta,
) -> Result<Caller, ApiError> {
    let hash = token_hash(token);

    if let Some(admin) = &state.admin_token_hash {
        // Both sides are hashes, so comparing them leaks nothing about the token.
        if admin.as_slice() == hash.as_slice() {
            return Ok(Caller {
                token_id: None,
                name: "bootstrap-admin".into(),
                role: Role::Admin,
                meta,
            });
        }
    }
    let generation = state.caches.tokens.generation();
    let cached = state.caches.tokens.get(&hash);
    let from_cache = cached.is_some();
    let mut row = match cached {
        Some(row) => row,
        None => store::api_tokens::find_active_by_hash(&state.db, &hash)
            .await?
            .ok_or(ApiError::Unauthorized)?,
    };
    let role: Role = row
        .role
        .parse()
        .map_err(|e: String| ApiError::Internal(anyhow::anyhow!(e)))?;
    // The row (read, or cached) says when the token was last recorded; only a stale mark
    // costs a write, so authenticated reads need no round trip while cached.
    let stale = row
        .last_used_at
        .is_none_or(|t| chrono::Utc::now() - t > chrono::Duration::minutes(1));
    if stale {
        // The cached row is marked first, so the requests that arrive while the write runs
        // see a fresh mark and do not all queue on the same row to write it too (under load
        // that pile-up stalled every request of the token for a moment, once a minute). The
        // mark is bookkeeping with a minute's resolution: a failed write is only logged.
        let now = chrono::Utc::now();
        state
            .caches
            .tokens
            .update(&hash, |cached| cached.last_used_at = Some(now));
        row.last_used_at = Some(now);
        if let Err(e) = store::api_tokens::touch(&state.db, row.id).await {
            tracing::warn!(error = %e, "could not record token use");
        }
    }
    // A hit keeps its entry's age: the TTL bounds how long a row read once is believed.
    if !from_cache {
        state
            .caches
            .tokens
            .insert_since(generation, hash, row.clone());
    }
    Ok(Caller {
        token_id: Some(row.id),
        name: row.name,
        role,
        meta,
    })
}
