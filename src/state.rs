//! `AppState`: what every handler, domain function and background job is handed.
//!
//! It lives below the domain and imports nothing from it, so any module may take it without
//! an import loop. Building it connects to nothing: the pool, Redis and the HTTP client all
//! connect lazily, so the CLI's operator commands use the same state as the server.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use secrecy::ExposeSecret;
use sqlx::PgPool;

use crate::config::Settings;
use crate::infra::breaker::Breakers;
use crate::infra::cache::FixedCache;
use crate::infra::crypto::KeyRing;
use crate::infra::redis::Redis;
use crate::store;
use crate::store::audit::RenderedRow;
use crate::store::audit_batch::AuditBatcher;
use crate::store::invalidation::Caches;

/// How many rendered audit rows a process keeps: four pages of the largest size, about 2 MiB.
const AUDIT_ROWS_CACHED: usize = 2_048;

/// Shared by every handler through `State`, and by background jobs and CLI commands. One
/// `Arc`: the router clones the state for every request, so a clone must cost one increment.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What [`AppState`] holds.
pub struct Shared {
    pub db: PgPool,
    pub redis: Redis,
    pub settings: Arc<Settings>,
    pub admin_token_hash: Option<Arc<Vec<u8>>>,
    /// Outbound HTTP to the providers: rustls, no redirects followed, bounded by a timeout
    /// (validation calls set their own, `CONFIG_VALIDATION_TIMEOUT`).
    pub http: reqwest::Client,
    pub breakers: Arc<Breakers>,
    /// Outbound HTTP to webhook endpoints: no redirects, `WEBHOOK_TIMEOUT`, and a resolver
    /// that refuses private addresses unless `WEBHOOK_ALLOW_PRIVATE_TARGETS`.
    pub webhook_http: reqwest::Client,
    /// The last health-monitor round this process ran, as the JSON it also stores in Redis:
    /// what `/api/config/health` shows when Redis is away.
    pub monitor_last: Arc<Mutex<Option<String>>>,
    /// Hot reads cached in this process; off until the invalidation listener runs (servers
    /// start it, CLI commands do not).
    pub caches: Arc<Caches>,
    /// The group-committing writer of audit rows that stand alone (read audits, refusals).
    pub audit_batch: AuditBatcher,
    /// Audit rows as the listing renders them, by id and time (`domain::audit_log`).
    pub audit_rows: FixedCache<(i64, i64), Arc<RenderedRow>>,
}

impl AppState {
    /// Builds the state from settings without connecting to anything yet (inside a Tokio
    /// runtime: the audit writer starts here).
    pub fn new(settings: Settings) -> anyhow::Result<Self> {
        let db = store::pool(&settings)?;
        let redis = Redis::new(&settings)?;
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(settings.oauth.provider_timeout)
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("hsq-config/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| anyhow::anyhow!("cannot build the HTTP client: {e}"))?;
        let webhook_http = crate::infra::outbound::client(
            settings.webhooks.timeout,
            settings.webhooks.allow_private_targets,
        )?;
        Ok(Self(Arc::new(Shared {
            webhook_http,
            audit_batch: AuditBatcher::start(db.clone()),
            db,
            breakers: Arc::new(Breakers::new(redis.clone(), settings.breaker)),
            redis,
            admin_token_hash: settings
                .admin_api_token
                .as_ref()
                .map(|t| Arc::new(crate::infra::crypto::token_hash(t.expose_secret()))),
            http,
            monitor_last: Arc::new(Mutex::new(None)),
            caches: Arc::new(Caches::new(settings.cache_ttl)),
            audit_rows: FixedCache::new(AUDIT_ROWS_CACHED),
            settings: Arc::new(settings),
        })))
    }

    /// The encryption keys (current and previous) every seal and open uses.
    pub fn keyring(&self) -> &KeyRing {
        &self.settings.keyring
    }
}
