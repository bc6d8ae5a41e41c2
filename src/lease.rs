//! Redis leases: one replica at a time runs a scheduled job.
//!
//! `SET <prefix>lease:<name> <owner> NX PX <ttl>` takes the lease; release deletes it only if
//! this owner still holds it (a Lua compare-and-delete), so a job that overran its TTL never
//! frees a lease another replica has since taken.

use std::time::Duration;

use crate::redis_store::Redis;

const RELEASE: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"#;

/// A held lease; release it with [`Lease::release`] (it also expires by itself).
#[derive(Debug)]
pub struct Lease {
    key: String,
    owner: String,
}

/// Takes the lease `name` for `ttl`, or returns None when another owner holds it.
pub async fn acquire(
    redis: &Redis,
    name: &str,
    ttl: Duration,
) -> redis::RedisResult<Option<Lease>> {
    let key = redis.key(&format!("lease:{name}"));
    let owner = uuid::Uuid::new_v4().to_string();
    let mut conn = redis.conn().await?;
    let millis = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
    let set: Option<String> = redis::cmd("SET")
        .arg(&key)
        .arg(&owner)
        .arg("NX")
        .arg("PX")
        .arg(millis)
        .query_async(&mut conn)
        .await?;
    Ok(set.map(|_| Lease { key, owner }))
}

impl Lease {
    /// Frees the lease if this owner still holds it.
    pub async fn release(self, redis: &Redis) -> redis::RedisResult<()> {
        let mut conn = redis.conn().await?;
        let _: i64 = redis::Script::new(RELEASE)
            .key(&self.key)
            .arg(&self.owner)
            .invoke_async(&mut conn)
            .await?;
        Ok(())
    }
}
