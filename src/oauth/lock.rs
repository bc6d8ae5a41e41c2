//! A Redis lock across replicas: `SET <prefix>lock:<name> <owner> NX PX <ttl>`, renewed while
//! held, released by compare-and-delete so a lock that expired and was taken by someone else
//! is never deleted by its former owner.

use std::time::Duration;

use redis::Script;
use tokio_util::sync::CancellationToken;

use crate::redis_store::Redis;

const RELEASE: &str = r#"
if redis.call("GET", KEYS[1]) == ARGV[1] then
    return redis.call("DEL", KEYS[1])
end
return 0
"#;

const RENEW: &str = r#"
if redis.call("GET", KEYS[1]) == ARGV[1] then
    return redis.call("PEXPIRE", KEYS[1], ARGV[2])
end
return 0
"#;

/// A held lock. Release it with [`Lock::release`]; if dropped, renewal stops and it expires.
pub struct Lock {
    redis: Redis,
    key: String,
    owner: String,
    renewal: CancellationToken,
}

impl Lock {
    /// Takes the lock if it is free. `Ok(None)`: someone else holds it.
    pub async fn try_acquire(
        redis: &Redis,
        name: &str,
        ttl: Duration,
    ) -> redis::RedisResult<Option<Self>> {
        let key = redis.key(&format!("lock:{name}"));
        let owner = uuid::Uuid::new_v4().to_string();
        let mut conn = redis.conn().await?;
        let taken: Option<String> = redis::cmd("SET")
            .arg(&key)
            .arg(&owner)
            .arg("NX")
            .arg("PX")
            .arg(ttl.as_millis() as u64)
            .query_async(&mut conn)
            .await?;
        if taken.is_none() {
            return Ok(None);
        }
        let renewal = CancellationToken::new();
        tokio::spawn(renew(
            redis.clone(),
            key.clone(),
            owner.clone(),
            ttl,
            renewal.clone(),
        ));
        Ok(Some(Self {
            redis: redis.clone(),
            key,
            owner,
            renewal,
        }))
    }

    /// Releases the lock if this owner still holds it.
    pub async fn release(self) {
        self.renewal.cancel();
        let result: redis::RedisResult<i64> = async {
            let mut conn = self.redis.conn().await?;
            Script::new(RELEASE)
                .key(&self.key)
                .arg(&self.owner)
                .invoke_async(&mut conn)
                .await
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(error = %e, "could not release a Redis lock; it expires by itself");
        }
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        self.renewal.cancel();
    }
}

/// Extends the lock every third of its TTL while the holder works (a slow provider).
async fn renew(redis: Redis, key: String, owner: String, ttl: Duration, stop: CancellationToken) {
    let period = ttl / 3;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(period) => {}
        }
        let renewed: redis::RedisResult<i64> = async {
            let mut conn = redis.conn().await?;
            Script::new(RENEW)
                .key(&key)
                .arg(&owner)
                .arg(ttl.as_millis() as u64)
                .invoke_async(&mut conn)
                .await
        }
        .await;
        match renewed {
            Ok(1) => {}
            Ok(_) => {
                tracing::warn!(
                    "a Redis lock was lost while held; the row lock still guards the refresh"
                );
                return;
            }
            Err(e) => tracing::warn!(error = %e, "could not renew a Redis lock"),
        }
    }
}
