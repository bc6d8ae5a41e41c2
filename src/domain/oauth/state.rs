//! Flow state in Redis: `<prefix>oauth:state:<state>`, written at authorize with
//! `OAUTH_STATE_TTL`, consumed exactly once at the callback with GETDEL.

use std::time::Duration;

use base64::Engine;
use rand::RngCore;
use reqwest::Url;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::{Environment, Provider};
use crate::infra::redis::Redis;

/// What the callback needs to finish a flow. The PKCE verifier lives only here, only for the
/// state's lifetime.
#[derive(Serialize, Deserialize)]
pub struct FlowState {
    pub provider: Provider,
    pub environment: Environment,
    pub verifier: String,
    pub redirect_uri: String,
    pub return_to: String,
    pub actor_name: String,
    pub actor_token_id: Option<Uuid>,
    /// The authorization may replace a connection to another external account. Absent in
    /// flows started before it existed: no.
    #[serde(default)]
    pub replace_account: bool,
}

/// A new state value: 256 bits from the OS CSPRNG, URL-safe.
pub fn new_state() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Only values shaped like ours are looked up, so junk never reaches Redis as a key.
pub fn well_formed(state: &str) -> bool {
    state.len() == 43
        && state
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn key(redis: &Redis, state: &str) -> String {
    redis.key(&format!("oauth:state:{state}"))
}

/// Stores a flow under `state`; fails when Redis does not answer.
pub async fn save(
    redis: &Redis,
    state: &str,
    flow: &FlowState,
    ttl: Duration,
) -> redis::RedisResult<()> {
    let json = serde_json::to_string(flow).map_err(|_| {
        redis::RedisError::from((redis::ErrorKind::TypeError, "flow state does not serialize"))
    })?;
    let stored: Option<String> = redis
        .query(
            redis::cmd("SET")
                .arg(key(redis, state))
                .arg(json)
                .arg("NX")
                .arg("PX")
                .arg(ttl.as_millis() as u64),
        )
        .await?;
    match stored {
        Some(_) => Ok(()),
        None => Err(redis::RedisError::from((
            redis::ErrorKind::ResponseError,
            "state collision",
        ))),
    }
}

/// Takes the flow stored under `state`, once: a replay finds nothing.
pub async fn consume(redis: &Redis, state: &str) -> redis::RedisResult<Option<FlowState>> {
    let raw: Option<String> = redis
        .query(redis::cmd("GETDEL").arg(key(redis, state)))
        .await?;
    Ok(raw.and_then(|json| serde_json::from_str(&json).ok()))
}

/// Why a `return_to` is refused.
pub fn check_return_to(return_to: &str, allowed: &[Url]) -> Result<Url, &'static str> {
    let url = Url::parse(return_to).map_err(|_| "must be an absolute http(s) URL")?;
    if !matches!(url.scheme(), "http" | "https")
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return Err("must be an absolute http(s) URL without credentials");
    }
    if allowed.iter().any(|a| a.origin() == url.origin()) {
        Ok(url)
    } else {
        Err("must be on an origin listed in OAUTH_RETURN_ALLOWED_ORIGINS")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_are_long_random_and_well_formed() {
        let (a, b) = (new_state(), new_state());
        assert_ne!(a, b);
        assert!(well_formed(&a), "{a}");
        assert!(!well_formed("short"));
        assert!(!well_formed(&format!("{}*", &a[..42])));
    }

    #[test]
    fn return_to_must_be_on_an_allowed_origin() {
        let allowed = vec![Url::parse("https://dash.example.com").expect("url")];
        assert!(check_return_to("https://dash.example.com/settings?tab=1", &allowed).is_ok());
        for bad in [
            "https://evil.example.com/",
            "https://dash.example.com.evil.com/",
            "http://dash.example.com/",
            "https://user@dash.example.com/",
            "javascript:alert(1)",
            "/relative",
        ] {
            assert!(check_return_to(bad, &allowed).is_err(), "{bad}");
        }
    }
}
