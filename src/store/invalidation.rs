//! The listener that keeps the in-process caches honest: `LISTEN hsq_invalidate` on a
//! connection of its own; each notification drops the entry it names. While the connection is
//! down the caches are suspended (flushed and bypassed), and resumed once it listens again.

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio_util::sync::CancellationToken;

use crate::infra::cache::TtlCache;

/// The channel the triggers of migration `20261202000003` notify.
pub const CHANNEL: &str = "hsq_invalidate";

/// Every cache of this process that a database change can make stale.
pub struct Caches {
    /// Active API tokens by the SHA-256 of the token: `(id, name, role, last recorded use)`.
    pub tokens: TtlCache<Vec<u8>, super::api_tokens::ApiTokenRow>,
    /// Integration config rows by `provider/environment`.
    pub configs: TtlCache<String, super::integrations::ConfigRow>,
    /// OAuth connection rows by `provider/environment`.
    pub connections: TtlCache<String, super::oauth_tokens::TokenRow>,
    /// The status page's rows (every config with its connection): dropped by any change to
    /// either.
    pub status: TtlCache<(), Vec<super::integrations::StatusRow>>,
    /// Every enabled webhook endpoint with its subscriptions.
    pub webhooks: TtlCache<(), Vec<super::outbox::Subscriber>>,
}

impl Caches {
    pub fn new(ttl: Duration) -> Self {
        Self {
            tokens: TtlCache::new(ttl),
            configs: TtlCache::new(ttl),
            connections: TtlCache::new(ttl),
            status: TtlCache::new(ttl),
            webhooks: TtlCache::new(ttl),
        }
    }

    /// Drops this process's copy of a config it just changed: the notification reaches the
    /// other replicas; this one reads its own write at once.
    pub fn config_changed(&self, provider: &str, environment: &str) {
        self.configs.remove(&format!("{provider}/{environment}"));
        self.status.clear();
    }

    /// Drops this process's copy of a connection it just changed.
    pub fn connection_changed(&self, provider: &str, environment: &str) {
        self.connections
            .remove(&format!("{provider}/{environment}"));
        self.status.clear();
    }

    /// Drops every cached token lookup (a token was revoked here).
    pub fn tokens_changed(&self) {
        self.tokens.clear();
    }

    /// Drops this process's list of webhook endpoints (one was created, changed or deleted
    /// here).
    pub fn webhooks_changed(&self) {
        self.webhooks.clear();
    }

    /// Drops everything (a restore rewrote the tables).
    pub fn all_changed(&self) {
        self.tokens.clear();
        self.configs.clear();
        self.connections.clear();
        self.status.clear();
        self.webhooks.clear();
    }

    fn suspend(&self) {
        self.tokens.suspend();
        self.configs.suspend();
        self.connections.suspend();
        self.status.suspend();
        self.webhooks.suspend();
    }

    fn resume(&self) {
        self.tokens.resume();
        self.configs.resume();
        self.connections.resume();
        self.status.resume();
        self.webhooks.resume();
    }

    /// Applies one notification: `api_token:<hex sha-256>`, `config:<provider>/<environment>`,
    /// `connection:<provider>/<environment>` or `webhooks`; anything else flushes everything.
    fn apply(&self, payload: &str) {
        match payload.split_once(':') {
            Some(("api_token", hex)) => match hex::decode(hex) {
                Ok(hash) => self.tokens.remove(&hash),
                Err(_) => self.tokens.clear(),
            },
            Some(("config", key)) => {
                self.configs.remove(&key.to_owned());
                self.status.clear();
            }
            Some(("connection", key)) => {
                self.connections.remove(&key.to_owned());
                self.status.clear();
            }
            None if payload == "webhooks" => self.webhooks_changed(),
            _ => self.all_changed(),
        }
    }
}

/// Listens until `cancel`; reconnects with a growing pause while the database is away.
pub fn spawn(db: PgPool, caches: Arc<Caches>, cancel: CancellationToken) {
    tokio::spawn(async move {
        let mut pause = Duration::from_millis(100);
        loop {
            let listened = async {
                let mut listener = PgListener::connect_with(&db).await?;
                listener.listen(CHANNEL).await?;
                caches.resume();
                pause = Duration::from_millis(100);
                // `try_recv`, not `recv`: `recv` reconnects by itself and would hide that the
                // notifications sent while the connection was down are lost.
                while let Some(note) = listener.try_recv().await? {
                    caches.apply(note.payload());
                }
                Ok(())
            };
            let outcome: Result<(), sqlx::Error> = tokio::select! {
                _ = cancel.cancelled() => {
                    // Requests still draining read from the database, not from caches no
                    // invalidation reaches any more.
                    caches.suspend();
                    return;
                }
                r = listened => r,
            };
            caches.suspend();
            match outcome {
                Err(e) => {
                    tracing::warn!(error = %e, "cache invalidations unavailable; caches bypassed until the listener reconnects");
                }
                Ok(()) => {
                    tracing::warn!(
                        "the cache invalidation connection was lost; caches flushed and bypassed until it listens again"
                    );
                }
            }
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(pause) => {}
            }
            pause = (pause * 2).min(Duration::from_secs(5));
        }
    });
}
