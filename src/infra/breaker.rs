//! Circuit breakers per provider × environment, their state in Redis so every replica shares it.
//!
//! closed → open after `threshold` provider-side failures within `window` → half-open after
//! `cooldown`, when exactly one trial call is let through across all replicas → closed on
//! success, open again on failure. Transitions run as Lua scripts, so they are atomic, and use
//! Redis's clock, so replicas agree on time. Only provider-side failures (timeouts, 5xx,
//! connection errors) count; a 4xx means the provider is up.
//!
//! When Redis is unreachable each process falls back to its own in-memory breaker with the same
//! rules; the report says `backend: "local"`. A breaker never fails a request by itself.
//!
//! This module stays whole (past the usual 400 lines): the Lua scripts and the local fallback
//! are one state machine written twice, and keeping them side by side is what keeps them alike.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use redis::Script;
use serde::Serialize;
use utoipa::ToSchema;

use crate::infra::redis::Redis;
use crate::kinds::{Environment, Provider};

/// How long a half-open trial may take before another replica may try; longer than any call.
const TRIAL_LEASE: Duration = Duration::from_secs(120);
/// Idle breaker keys expire; a missing key is a closed breaker.
const KEY_TTL: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug, Clone, Copy)]
pub struct BreakerConfig {
    pub enabled: bool,
    pub threshold: u32,
    pub window: Duration,
    pub cooldown: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

impl BreakerState {
    fn parse(s: &str) -> Self {
        match s {
            "open" => Self::Open,
            "half_open" => Self::HalfOpen,
            _ => Self::Closed,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Open => "open",
            Self::HalfOpen => "half_open",
        }
    }

    /// The gauge value: 0 closed, 1 half-open, 2 open.
    pub fn level(self) -> f64 {
        match self {
            Self::Closed => 0.0,
            Self::HalfOpen => 1.0,
            Self::Open => 2.0,
        }
    }
}

/// Where a breaker's state was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    Redis,
    Local,
    Disabled,
}

/// Leave to make one call. Record its outcome with [`Breakers::record`].
#[derive(Debug)]
pub struct Permit {
    provider: Provider,
    environment: Environment,
    trial: bool,
    backend: Backend,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BreakerView {
    pub provider: Provider,
    pub environment: Environment,
    pub state: BreakerState,
    pub failures: u32,
    pub backend: Backend,
}

/// The in-process fallback: the same rules as the Lua scripts.
#[derive(Debug, Clone, Default)]
struct LocalBreaker {
    state: Option<BreakerState>,
    failures: u32,
    window_start: Option<Instant>,
    opened_at: Option<Instant>,
    trial_until: Option<Instant>,
}

impl LocalBreaker {
    fn state(&self) -> BreakerState {
        self.state.unwrap_or(BreakerState::Closed)
    }

    /// Some(trial?) when a call may go, None when it is rejected.
    fn admit(&mut self, now: Instant, cfg: &BreakerConfig) -> Option<bool> {
        match self.state() {
            BreakerState::Closed => Some(false),
            BreakerState::Open => {
                let cooled = self
                    .opened_at
                    .is_none_or(|t| now.duration_since(t) >= cfg.cooldown);
                cooled.then(|| {
                    self.state = Some(BreakerState::HalfOpen);
                    self.trial_until = Some(now + TRIAL_LEASE);
                    true
                })
            }
            BreakerState::HalfOpen => {
                let free = self.trial_until.is_none_or(|t| now >= t);
                free.then(|| {
                    self.trial_until = Some(now + TRIAL_LEASE);
                    true
                })
            }
        }
    }

    fn record(&mut self, now: Instant, up: bool, trial: bool, cfg: &BreakerConfig) {
        if trial {
            if self.state() != BreakerState::HalfOpen {
                return;
            }
            if up {
                *self = Self::default();
            } else {
                self.state = Some(BreakerState::Open);
                self.opened_at = Some(now);
            }
            return;
        }
        if up || self.state() != BreakerState::Closed {
            return;
        }
        let expired = self
            .window_start
            .is_none_or(|t| now.duration_since(t) > cfg.window);
        if expired {
            self.failures = 0;
            self.window_start = Some(now);
        }
        self.failures += 1;
        if self.failures >= cfg.threshold {
            self.state = Some(BreakerState::Open);
            self.opened_at = Some(now);
        }
    }
}

static ADMIT: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local s = redis.call('HMGET', KEYS[1], 'state', 'opened_at', 'trial_until')
local state = s[1] or 'closed'
if state == 'closed' then return {'allow', state} end
if state == 'open' then
  if now - tonumber(s[2] or '0') >= tonumber(ARGV[1]) then
    redis.call('HSET', KEYS[1], 'state', 'half_open', 'trial_until', now + tonumber(ARGV[2]))
    redis.call('PEXPIRE', KEYS[1], ARGV[3])
    return {'trial', 'half_open'}
  end
  return {'reject', state}
end
if now >= tonumber(s[3] or '0') then
  redis.call('HSET', KEYS[1], 'trial_until', now + tonumber(ARGV[2]))
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  return {'trial', state}
end
return {'reject', state}
"#;

static RECORD: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local s = redis.call('HMGET', KEYS[1], 'state', 'failures', 'window_start')
local state = s[1] or 'closed'
local changed = 0
if ARGV[2] == '1' then
  if state == 'half_open' then
    if ARGV[1] == 'up' then
      redis.call('DEL', KEYS[1])
      return {'closed', 1}
    end
    redis.call('HSET', KEYS[1], 'state', 'open', 'opened_at', now)
    state = 'open'
  end
elseif ARGV[1] == 'down' and state == 'closed' then
  local failures = tonumber(s[2] or '0')
  local started = tonumber(s[3] or '0')
  if now - started > tonumber(ARGV[4]) then
    failures = 0
    started = now
  end
  failures = failures + 1
  redis.call('HSET', KEYS[1], 'state', 'closed', 'failures', failures, 'window_start', started)
  if failures >= tonumber(ARGV[3]) then
    redis.call('HSET', KEYS[1], 'state', 'open', 'opened_at', now)
    state = 'open'
    changed = 1
  end
end
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return {state, changed}
"#;

/// A breaker that opened (closed → open) or closed again (a successful trial), reported once
/// by the process whose call made it so (per process while the local fallback runs).
#[derive(Debug, Clone, Copy)]
pub struct Transition {
    pub provider: Provider,
    pub environment: Environment,
    pub state: BreakerState,
}

/// All breakers of this process: Redis-backed, with a local fallback.
pub struct Breakers {
    redis: Redis,
    config: BreakerConfig,
    local: Mutex<HashMap<(Provider, Environment), LocalBreaker>>,
    admit: Script,
    record: Script,
    transitions: tokio::sync::broadcast::Sender<Transition>,
}

impl Breakers {
    pub fn new(redis: Redis, config: BreakerConfig) -> Self {
        Self {
            redis,
            config,
            local: Mutex::new(HashMap::new()),
            admit: Script::new(ADMIT),
            record: Script::new(RECORD),
            transitions: tokio::sync::broadcast::channel(64).0,
        }
    }

    /// Transitions from now on, for whoever announces them.
    pub fn transitions(&self) -> tokio::sync::broadcast::Receiver<Transition> {
        self.transitions.subscribe()
    }

    fn key(&self, provider: Provider, environment: Environment) -> String {
        self.redis.key(&format!("breaker:{provider}:{environment}"))
    }

    fn with_local<T>(
        &self,
        provider: Provider,
        environment: Environment,
        f: impl FnOnce(&mut LocalBreaker) -> T,
    ) -> T {
        let mut map = self
            .local
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        f(map.entry((provider, environment)).or_default())
    }

    /// Asks to make one call; `Err(state)` when the breaker rejects it.
    pub async fn admit(
        &self,
        provider: Provider,
        environment: Environment,
    ) -> Result<Permit, BreakerState> {
        let permit = |trial, backend| Permit {
            provider,
            environment,
            trial,
            backend,
        };
        if !self.config.enabled {
            return Ok(permit(false, Backend::Disabled));
        }
        let result: redis::RedisResult<(String, String)> = self
            .redis
            .invoke(
                self.admit
                    .key(self.key(provider, environment))
                    .arg(self.config.cooldown.as_millis() as u64)
                    .arg(TRIAL_LEASE.as_millis() as u64)
                    .arg(KEY_TTL.as_millis() as u64),
            )
            .await;
        match result {
            Ok((verdict, state)) => {
                let state = BreakerState::parse(&state);
                crate::infra::metrics::BREAKER_STATE
                    .with_label_values(&[provider.as_str(), environment.as_str()])
                    .set(state.level());
                match verdict.as_str() {
                    "allow" => Ok(permit(false, Backend::Redis)),
                    "trial" => Ok(permit(true, Backend::Redis)),
                    _ => Err(state),
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, %provider, %environment, "breaker state unavailable in Redis; using this process's breaker");
                let config = self.config;
                self.with_local(provider, environment, |b| {
                    match b.admit(Instant::now(), &config) {
                        Some(trial) => Ok(permit(trial, Backend::Local)),
                        None => Err(b.state()),
                    }
                })
            }
        }
    }

    /// Records whether the provider answered (`up`: any HTTP answer but 5xx) or not.
    pub async fn record(&self, permit: Permit, up: bool) {
        let Permit {
            provider,
            environment,
            trial,
            backend,
        } = permit;
        let config = self.config;
        let local = |this: &Self| {
            this.with_local(provider, environment, |b| {
                let before = b.state();
                b.record(Instant::now(), up, trial, &config);
                let after = b.state();
                let changed = matches!(
                    (before, after),
                    (BreakerState::Closed, BreakerState::Open)
                        | (BreakerState::HalfOpen, BreakerState::Closed)
                );
                (after, changed)
            })
        };
        let (state, changed) = match backend {
            Backend::Disabled => return,
            Backend::Local => local(self),
            Backend::Redis => {
                let result: redis::RedisResult<(String, i64)> = self
                    .redis
                    .invoke(
                        self.record
                            .key(self.key(provider, environment))
                            .arg(if up { "up" } else { "down" })
                            .arg(if trial { "1" } else { "0" })
                            .arg(config.threshold)
                            .arg(config.window.as_millis() as u64)
                            .arg(KEY_TTL.as_millis() as u64),
                    )
                    .await;
                match result {
                    Ok((state, changed)) => (BreakerState::parse(&state), changed == 1),
                    Err(e) => {
                        tracing::warn!(error = %e, %provider, %environment, "could not record a breaker outcome in Redis");
                        local(self)
                    }
                }
            }
        };
        if changed {
            // Nobody listening (a CLI command) is fine: the state is in Redis either way.
            let _ = self.transitions.send(Transition {
                provider,
                environment,
                state,
            });
        }
        crate::infra::metrics::BREAKER_STATE
            .with_label_values(&[provider.as_str(), environment.as_str()])
            .set(state.level());
    }

    /// Runs one provider call through the breaker; `None` when the breaker rejected it and no
    /// call was made. `provider_up` says whether the outcome shows the provider answering.
    pub async fn call<T>(
        &self,
        provider: Provider,
        environment: Environment,
        call: impl Future<Output = T>,
        provider_up: impl FnOnce(&T) -> bool,
    ) -> Option<T> {
        let permit = self.admit(provider, environment).await.ok()?;
        let outcome = call.await;
        self.record(permit, provider_up(&outcome)).await;
        Some(outcome)
    }

    /// The current state, for health and status reports.
    pub async fn view(&self, provider: Provider, environment: Environment) -> BreakerView {
        self.read(&[(provider, environment)]).await.remove(0)
    }

    /// Every provider × environment, read from Redis in one round trip.
    pub async fn views(&self) -> Vec<BreakerView> {
        let all: Vec<(Provider, Environment)> = Provider::ALL
            .into_iter()
            .flat_map(|p| Environment::ALL.into_iter().map(move |e| (p, e)))
            .collect();
        self.read(&all).await
    }

    async fn read(&self, which: &[(Provider, Environment)]) -> Vec<BreakerView> {
        let view = |(provider, environment): (Provider, Environment), state, failures, backend| {
            BreakerView {
                provider,
                environment,
                state,
                failures,
                backend,
            }
        };
        if !self.config.enabled {
            return which
                .iter()
                .map(|&pe| view(pe, BreakerState::Closed, 0, Backend::Disabled))
                .collect();
        }
        let mut pipe = redis::pipe();
        for &(p, e) in which {
            pipe.cmd("HGETALL").arg(self.key(p, e));
        }
        let shared: redis::RedisResult<Vec<HashMap<String, String>>> =
            self.redis.pipeline(&pipe).await;
        let views: Vec<BreakerView> = match shared {
            Ok(hashes) => which
                .iter()
                .zip(hashes)
                .map(|(&pe, h)| {
                    view(
                        pe,
                        BreakerState::parse(h.get("state").map(String::as_str).unwrap_or("closed")),
                        h.get("failures").and_then(|f| f.parse().ok()).unwrap_or(0),
                        Backend::Redis,
                    )
                })
                .collect(),
            Err(_) => which
                .iter()
                .map(|&(p, e)| {
                    self.with_local(p, e, |b| {
                        view((p, e), b.state(), b.failures, Backend::Local)
                    })
                })
                .collect(),
        };
        for v in &views {
            crate::infra::metrics::BREAKER_STATE
                .with_label_values(&[v.provider.as_str(), v.environment.as_str()])
                .set(v.state.level());
        }
        views
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> BreakerConfig {
        BreakerConfig {
            enabled: true,
            threshold: 3,
            window: Duration::from_secs(60),
            cooldown: Duration::from_secs(30),
        }
    }

    #[test]
    fn the_local_breaker_follows_the_same_rules() {
        let cfg = cfg();
        let mut b = LocalBreaker::default();
        let t0 = Instant::now();
        for _ in 0..2 {
            assert_eq!(b.admit(t0, &cfg), Some(false));
            b.record(t0, false, false, &cfg);
        }
        assert_eq!(b.state(), BreakerState::Closed);
        b.record(t0, true, false, &cfg); // a 4xx answer neither counts nor resets
        b.record(t0, false, false, &cfg);
        assert_eq!(b.state(), BreakerState::Open);
        assert_eq!(b.admit(t0 + Duration::from_secs(1), &cfg), None);

        let later = t0 + Duration::from_secs(31);
        assert_eq!(
            b.admit(later, &cfg),
            Some(true),
            "one trial after the cooldown"
        );
        assert_eq!(b.admit(later, &cfg), None, "and only one");
        b.record(later, false, true, &cfg);
        assert_eq!(b.state(), BreakerState::Open);

        let again = later + Duration::from_secs(31);
        assert_eq!(b.admit(again, &cfg), Some(true));
        b.record(again, true, true, &cfg);
        assert_eq!(b.state(), BreakerState::Closed);
    }

    #[test]
    fn failures_outside_the_window_do_not_add_up() {
        let cfg = cfg();
        let mut b = LocalBreaker::default();
        let t0 = Instant::now();
        b.record(t0, false, false, &cfg);
        b.record(t0, false, false, &cfg);
        b.record(t0 + Duration::from_secs(61), false, false, &cfg);
        assert_eq!(b.state(), BreakerState::Closed);
        assert_eq!(b.failures, 1);
    }
}
