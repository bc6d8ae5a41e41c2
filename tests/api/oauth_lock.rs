//! The Redis refresh lock on its own: exclusive, renewed while held, and released only by
//! its owner (compare-and-delete).

use std::time::Duration;

use hsq_config::config::Settings;
use hsq_config::infra::lock::{Lock, Renewal};
use hsq_config::infra::redis::Redis;

use crate::support::helpers::{base_vars, clear_redis_prefix};
use crate::support::wait::eventually;

#[tokio::test]
async fn a_lock_is_exclusive_renewed_while_held_and_released_only_by_its_owner() {
    let vars = base_vars("postgres://127.0.0.1/unused");
    let redis = Redis::new(&Settings::from_map(&vars).expect("settings")).expect("redis");
    let ttl = Duration::from_millis(600);
    let key = redis.key("lock:test");
    let pttl = |r: Redis, k: String| async move {
        r.query::<i64>(redis::cmd("PTTL").arg(k))
            .await
            .expect("PTTL")
    };

    let held = Lock::try_acquire(&redis, "lock:test", ttl, Renewal::WhileHeld)
        .await
        .expect("redis")
        .expect("free");
    let second = Lock::try_acquire(&redis, "lock:test", ttl, Renewal::WhileHeld)
        .await
        .expect("redis");
    assert!(second.is_none(), "exclusive");

    // Renewal pushes the expiry back while the holder works (bounded polling).
    let mut previous = pttl(redis.clone(), key.clone()).await;
    eventually(
        "the held lock to be renewed",
        Duration::from_secs(5),
        async || {
            let now = pttl(redis.clone(), key.clone()).await;
            assert!(now > 0, "the lock expired while held");
            if now > previous {
                return Some(());
            }
            previous = now;
            None
        },
    )
    .await;

    held.release().await;
    let exists: bool = redis
        .query(redis::cmd("EXISTS").arg(&key))
        .await
        .expect("EXISTS");
    assert!(!exists, "released");

    // A lock that expired and was taken by someone else is not deleted by its former owner.
    let stale = Lock::try_acquire(&redis, "lock:test", ttl, Renewal::WhileHeld)
        .await
        .expect("redis")
        .expect("free again");
    let _: () = redis
        .query(redis::cmd("SET").arg(&key).arg("someone-else"))
        .await
        .expect("SET");
    stale.release().await;
    let owner: Option<String> = redis.query(redis::cmd("GET").arg(&key)).await.expect("GET");
    assert_eq!(owner.as_deref(), Some("someone-else"));

    clear_redis_prefix(&vars["REDIS_KEY_PREFIX"]).await;
}
