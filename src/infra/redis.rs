//! Redis with the key prefix applied everywhere. Connects lazily and reconnects, so the
//! service starts and keeps serving config reads while Redis is away.
//!
//! Every operation goes through [`Redis::run`], which bounds it — connect, send and answer —
//! by `REDIS_TIMEOUT_MS`. An operation that times out or loses its connection marks Redis
//! down for a moment, and operations in that moment fail at once instead of each waiting its
//! full deadline: a request that asks Redis six things while Redis is black-holed waits once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use secrecy::ExposeSecret;
use tokio::sync::Mutex;

use crate::config::Settings;

/// After a failure, operations fail fast for this long instead of each waiting on a dead or
/// silent server (health checks and breakers ask often while Redis is away).
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(2);

#[derive(Clone)]
pub struct Redis {
    client: redis::Client,
    prefix: Arc<str>,
    timeout: Duration,
    conn: Arc<Mutex<Slot>>,
}

#[derive(Default)]
struct Slot {
    conn: Option<ConnectionManager>,
    failed_at: Option<Instant>,
}

fn unavailable(why: &'static str) -> redis::RedisError {
    redis::RedisError::from((redis::ErrorKind::IoError, why))
}

impl Redis {
    pub fn new(settings: &Settings) -> anyhow::Result<Self> {
        let client = redis::Client::open(settings.redis_url.expose_secret())
            .map_err(|_| anyhow::anyhow!("REDIS_URL: not a valid Redis URL"))?;
        Ok(Self {
            client,
            prefix: settings.redis_key_prefix.as_str().into(),
            timeout: settings.redis_timeout,
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

    /// Runs `op` on a connection within the Redis deadline. A timeout or a lost connection
    /// marks Redis down for [`RETRY_AFTER_FAILURE`].
    pub async fn run<T, F, Fut>(&self, op: F) -> redis::RedisResult<T>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let deadline = tokio::time::Instant::now() + self.timeout;
        // A failed or timed-out connect marks Redis down itself; fail-fast refusals do not
        // extend the pause.
        let conn = match tokio::time::timeout_at(deadline, self.conn()).await {
            Ok(conn) => conn?,
            Err(_) => {
                self.mark_down().await;
                return Err(unavailable("Redis did not accept a connection in time"));
            }
        };
        let result = tokio::time::timeout_at(deadline, op(conn))
            .await
            .unwrap_or_else(|_| Err(unavailable("Redis did not answer in time")));
        if let Err(e) = &result {
            if e.is_timeout()
                || e.is_io_error()
                || e.is_connection_dropped()
                || e.is_connection_refusal()
            {
                self.mark_down().await;
            }
        }
        result
    }

    /// Runs one command.
    pub async fn query<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> redis::RedisResult<T> {
        self.run(|mut conn| async move { cmd.query_async(&mut conn).await })
            .await
    }

    /// Runs commands in one round trip.
    pub async fn pipeline<T: redis::FromRedisValue>(
        &self,
        pipe: &redis::Pipeline,
    ) -> redis::RedisResult<T> {
        self.run(|mut conn| async move { pipe.query_async(&mut conn).await })
            .await
    }

    /// Runs a Lua script (`EVALSHA`, loading it when Redis does not know it yet).
    pub async fn invoke<T: redis::FromRedisValue>(
        &self,
        script: &redis::ScriptInvocation<'_>,
    ) -> redis::RedisResult<T> {
        self.run(|mut conn| async move { script.invoke_async(&mut conn).await })
            .await
    }

    /// Round-trip time of a PING.
    pub async fn ping(&self) -> redis::RedisResult<Duration> {
        let start = Instant::now();
        let _: String = self.query(&redis::cmd("PING")).await?;
        Ok(start.elapsed())
    }

    /// A multiplexed connection; the manager reconnects by itself once established.
    async fn conn(&self) -> redis::RedisResult<ConnectionManager> {
        let mut slot = self.conn.lock().await;
        if slot
            .failed_at
            .is_some_and(|t| t.elapsed() < RETRY_AFTER_FAILURE)
        {
            return Err(unavailable("Redis was unreachable moments ago"));
        }
        if let Some(conn) = slot.conn.as_ref() {
            return Ok(conn.clone());
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(self.timeout)
            .set_response_timeout(self.timeout)
            .set_number_of_retries(1);
        match ConnectionManager::new_with_config(self.client.clone(), config).await {
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

    /// Drops the connection so the next operation after the pause connects afresh.
    async fn mark_down(&self) {
        let mut slot = self.conn.lock().await;
        slot.conn = None;
        slot.failed_at = Some(Instant::now());
    }
}
