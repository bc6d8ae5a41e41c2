//! Redis locks across replicas: `SET <prefix><name> <owner> NX PX <ttl>` takes one; release is
//! a compare-and-delete, so a lock that expired and was taken by someone else is never deleted
//! by its former owner.
//!
//! One mechanism serves every "only one of us" need: the OAuth refresh lock (`lock:…`, renewed
//! while a slow provider call runs), the leases of scheduled jobs (`lease:…`, released when the
//! job ends), and markers that must simply outlive their period (`lease:audit-retention`,
//! `lease:health-monitor:<round>`, left to expire).

use std::time::Duration;

use redis::Script;
use tokio_util::sync::CancellationToken;

use crate::infra::redis::Redis;

const RELEASE: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"#;

const RENEW: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"#;

/// Whether a held lock is extended while its holder works.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Renewal {
    /// Extended every third of its TTL until released or dropped (work of unknown length).
    WhileHeld,
    /// Lives at most its TTL.
    None,
}

/// A held lock. [`Lock::release`] frees it; [`Lock::keep_until_expiry`] leaves it to expire;
/// dropping it stops any renewal, so it expires by itself.
pub struct Lock {
    redis: Redis,
    key: String,
    owner: String,
    renewal: CancellationToken,
}

impl Lock {
    /// Takes the lock `name` (a key under the Redis prefix, e.g. `lease:backup`) if it is free.
    /// `Ok(None)`: someone else holds it.
    pub async fn try_acquire(
        redis: &Redis,
        name: &str,
        ttl: Duration,
        renewal: Renewal,
    ) -> redis::RedisResult<Option<Self>> {
        let key = redis.key(name);
        let owner = uuid::Uuid::new_v4().to_string();
        let taken: Option<String> = redis
            .query(
                redis::cmd("SET")
                    .arg(&key)
                    .arg(&owner)
                    .arg("NX")
                    .arg("PX")
                    .arg(millis(ttl)),
            )
            .await?;
        if taken.is_none() {
            return Ok(None);
        }
        let lock = Self {
            redis: redis.clone(),
            key,
            owner,
            renewal: CancellationToken::new(),
        };
        if renewal == Renewal::WhileHeld {
            tokio::spawn(renew(
                lock.redis.clone(),
                lock.key.clone(),
                lock.owner.clone(),
                ttl,
                lock.renewal.clone(),
            ));
        }
        Ok(Some(lock))
    }

    /// Frees the lock if this owner still holds it. A failure is logged: the lock then
    /// expires by itself.
    pub async fn release(self) {
        self.renewal.cancel();
        let result: redis::RedisResult<i64> = self
            .redis
            .invoke(Script::new(RELEASE).key(&self.key).arg(&self.owner))
            .await;
        if let Err(e) = result {
            tracing::warn!(error = %e, lock = %self.key, "could not release a Redis lock; it expires by itself");
        }
    }

    /// Keeps the lock for the rest of its TTL: a marker that says "done for this period".
    pub fn keep_until_expiry(self) {
        self.renewal.cancel();
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        self.renewal.cancel();
    }
}

fn millis(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// Extends the lock every third of its TTL while the holder works (a slow provider).
async fn renew(redis: Redis, key: String, owner: String, ttl: Duration, stop: CancellationToken) {
    let period = ttl / 3;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(period) => {}
        }
        let renewed: redis::RedisResult<i64> = redis
            .invoke(Script::new(RENEW).key(&key).arg(&owner).arg(millis(ttl)))
            .await;
        match renewed {
            Ok(1) => {}
            Ok(_) => {
                tracing::warn!(lock = %key, "a Redis lock was lost while held");
                return;
            }
            Err(e) => tracing::warn!(error = %e, lock = %key, "could not renew a Redis lock"),
        }
    }
}
