//! Console sessions: server-side in Redis under `console:session:<SHA-256 of the id>`, so
//! neither the cookie's value nor the API token is ever stored. A session holds the token's
//! id (the bootstrap admin: a fingerprint of its hash), name and role, its CSRF token and its
//! start; every request refreshes the idle timeout, and the maximum age ends it regardless.

use axum::http::{HeaderMap, header};
use base64::Engine;
use chrono::Utc;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::domain::Role;
use crate::http::auth::Caller;
use crate::state::AppState;
use crate::store;

/// What a session knows about who signed in. Never the token itself.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session {
    pub token_id: Option<Uuid>,
    /// For the bootstrap admin: which `ADMIN_API_TOKEN` signed in, so replacing it ends the
    /// sessions it started.
    pub admin_fingerprint: Option<String>,
    pub name: String,
    pub role: Role,
    /// Every state-changing form carries this.
    pub csrf: String,
    /// Unix seconds of the sign-in.
    pub started_at: i64,
}

/// 256 random bits, URL-safe.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn key(state: &AppState, id: &str) -> String {
    let digest = Sha256::digest(format!("hsq-console session\0{id}").as_bytes());
    state
        .redis
        .key(&format!("console:session:{}", hex::encode(digest)))
}

fn admin_fingerprint(state: &AppState) -> Option<String> {
    state.admin_token_hash.as_ref().map(|h| {
        let digest = Sha256::digest([b"hsq-console admin\0".as_slice(), h.as_slice()].concat());
        hex::encode(&digest[..8])
    })
}

/// The session cookie's name: `__Host-` prefixed when served over https.
pub fn cookie_name(https: bool) -> &'static str {
    if https {
        "__Host-hsq_console"
    } else {
        "hsq_console"
    }
}

/// `Set-Cookie` for a new session; over https `Secure` with the `__Host-` rules (path `/`, no
/// domain).
pub fn set_cookie(state: &AppState, id: &str, https: bool) -> String {
    let max_age = state.settings.console.session_max.as_secs();
    let name = cookie_name(https);
    if https {
        format!("{name}={id}; Path=/; Max-Age={max_age}; HttpOnly; Secure; SameSite=Strict")
    } else {
        format!("{name}={id}; Path=/settings; Max-Age={max_age}; HttpOnly; SameSite=Strict")
    }
}

/// `Set-Cookie` that removes the session cookie.
pub fn clear_cookie(https: bool) -> String {
    let name = cookie_name(https);
    if https {
        format!("{name}=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Strict")
    } else {
        format!("{name}=; Path=/settings; Max-Age=0; HttpOnly; SameSite=Strict")
    }
}

/// The session id the request's cookie names, if well formed.
pub fn cookie_value(headers: &HeaderMap, https: bool) -> Option<String> {
    let name = cookie_name(https);
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
        .filter(|v| crate::domain::oauth::state::well_formed(v))
}

/// Starts a session for `caller` under a new id, which it returns.
pub async fn create(state: &AppState, caller: &Caller) -> redis::RedisResult<String> {
    let id = random_token();
    let session = Session {
        token_id: caller.token_id,
        admin_fingerprint: caller
            .token_id
            .is_none()
            .then(|| admin_fingerprint(state))
            .flatten(),
        name: caller.name.clone(),
        role: caller.role,
        csrf: random_token(),
        started_at: Utc::now().timestamp(),
    };
    let json = serde_json::to_string(&session).map_err(|_| {
        redis::RedisError::from((redis::ErrorKind::TypeError, "session does not serialize"))
    })?;
    let idle = state.settings.console.session_idle.as_secs();
    let _: () = state
        .redis
        .query(
            redis::cmd("SET")
                .arg(key(state, &id))
                .arg(json)
                .arg("EX")
                .arg(idle),
        )
        .await?;
    Ok(id)
}

/// Why a request has no usable session.
#[derive(Debug)]
pub enum Missing {
    /// No cookie, an unknown or expired id, or a session past its maximum age.
    SignedOut,
    /// The API token it was started with was revoked (or `ADMIN_API_TOKEN` replaced).
    Revoked,
    /// Redis or PostgreSQL did not answer.
    Unavailable,
}

/// The live session under `id`, its idle timeout refreshed; checks the token is still active.
pub async fn load(state: &AppState, id: &str) -> Result<Session, Missing> {
    let idle = state.settings.console.session_idle.as_secs();
    let raw: Option<String> = state
        .redis
        .query(redis::cmd("GETEX").arg(key(state, id)).arg("EX").arg(idle))
        .await
        .map_err(|_| Missing::Unavailable)?;
    let session: Session = raw
        .and_then(|r| serde_json::from_str(&r).ok())
        .ok_or(Missing::SignedOut)?;
    let max = i64::try_from(state.settings.console.session_max.as_secs()).unwrap_or(i64::MAX);
    if Utc::now().timestamp() - session.started_at > max {
        destroy(state, id).await;
        return Err(Missing::SignedOut);
    }
    let active = match session.token_id {
        Some(token_id) => store::api_tokens::is_active(&state.db, token_id)
            .await
            .map_err(|_| Missing::Unavailable)?,
        None => {
            session.admin_fingerprint.is_some()
                && session.admin_fingerprint == admin_fingerprint(state)
        }
    };
    if !active {
        destroy(state, id).await;
        return Err(Missing::Revoked);
    }
    Ok(session)
}

/// Ends the session under `id`; a Redis failure is logged (the cookie is cleared anyway).
pub async fn destroy(state: &AppState, id: &str) {
    let result: redis::RedisResult<()> = state
        .redis
        .query(redis::cmd("DEL").arg(key(state, id)))
        .await;
    if let Err(e) = result {
        tracing::warn!(error = %e, "could not delete a console session");
    }
}

/// Compares two tokens in time independent of where they differ.
pub fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cookie_is_read_by_its_name_only() {
        let id = random_token();
        let mut headers = HeaderMap::new();
        let value = format!("other=1; hsq_console={id}; x=y");
        headers.insert(header::COOKIE, value.parse().expect("header"));
        assert_eq!(cookie_value(&headers, false), Some(id.clone()));
        assert_eq!(cookie_value(&headers, true), None);
        headers.insert(header::COOKIE, "hsq_console=short".parse().expect("header"));
        assert_eq!(cookie_value(&headers, false), None);
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(same_token("abc", "abc"));
        assert!(!same_token("abc", "abd"));
        assert!(!same_token("abc", "abcd"));
    }
}
