//! Redis with the key prefix applied everywhere. Connects lazily and reconnects, so the
//! service starts and keeps serving config reads while Redis is away.

use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use secrecy::ExposeSecret;
use tokio::sync::Mutex;

use crate::config::Settings;

const TIMEOUT: Duration = Duration::from_secs(2);

/// After a failed connect, callers fail fast for this long instead of each waiting on a dead
/// server (health checks and breakers ask often while Redis is away).
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(2);

#[derive(Clone)]
pub struct Redis {
    client: redis::Client,
    prefix: Arc<str>,
    conn: Arc<Mutex<Slot>>,
}

#[derive(Default)]
struct Slot {
    conn: Option<ConnectionManager>,
    failed_at: Option<Instant>,
}

impl Redis {
    pub fn new(settings: &Settings) -> anyhow::Result<Self> {
        let client = redis::Client::open(settings.redis_url.expose_secret())
            .map_err(|_| anyhow::anyhow!("REDIS_URL: not a valid Redis URL"))?;
        Ok(Self {
            client,
            prefix: settings.redis_key_prefix.as_str().into(),
            conn: Arc::new(Mutex::new(Slot::default())),
        })
    }

    /// `<prefix><name>`: every key this service writes goes through here.
    pub fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// A multiplexed connection; the manager reconnects by itself once established.
    pub async fn conn(&self) -> redis::RedisResult<ConnectionManager> {
        let mut slot = self.conn.lock().await;
        if let Some(conn) = slot.conn.as_ref() {
            return Ok(conn.clone());
        }
        if slot
            .failed_at
            .is_some_and(|t| t.elapsed() < RETRY_AFTER_FAILURE)
        {
            return Err(redis::RedisError::from((
                redis::ErrorKind::IoError,
                "Redis was unreachable moments ago",
            )));
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(TIMEOUT)
            .set_response_timeout(TIMEOUT)
            .set_number_of_retries(1);
        let connected = tokio::time::timeout(
            TIMEOUT * 2,
            ConnectionManager::new_with_config(self.client.clone(), config),
        )
        .await
        .unwrap_or_else(|_| {
            Err(redis::RedisError::from((
                redis::ErrorKind::IoError,
                "connect timed out",
            )))
        });
        match connected {
            Ok(conn) => {
                slot.conn = Some(conn.clone());
                slot.failed_at = None;
                Ok(conn)
            }
            Err(e) => {
                slot.failed_at = Some(Instant::now());
                Err(e)
            }
        }
    }

    /// Round-trip time of a PING.
    pub async fn ping(&self) -> redis::RedisResult<Duration> {
        let start = Instant::now();
        let mut conn = self.conn().await?;
        let _: String = redis::cmd("PING").query_async(&mut conn).await?;
        Ok(start.elapsed())
    }
}
