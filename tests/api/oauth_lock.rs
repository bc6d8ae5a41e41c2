//! The Redis refresh lock on its own: exclusive, renewed while held, and released only by
//! its owner (compare-and-delete).

use std::time::Duration;

use hsq_config::config::Settings;
use hsq_config::oauth::lock::Lock;
use hsq_config::redis_store::Redis;

use crate::support::helpers::{base_vars, clear_redis_prefix};
use crate::support::wait::eventually;

#[tokio::test]
async fn a_lock_is_exclusive_renewed_while_held_and_released_only_by_its_owner() {
    let vars = base_vars("postgres://127.0.0.1/unused");
    let redis = Redis::new(&Settings::from_map(&vars).expect("settings")).expect("redis");
    let ttl = Duration::from_millis(600);
    let key = redis.key("lock:test");
    let mut conn = redis.conn().await.expect("redis connection");
    let pttl = |mut c: redis::aio::ConnectionManager, k: String| async move {
        redis::cmd("PTTL")
            .arg(k)
            .query_async::<i64>(&mut c)
            .await
            .expect("PTTL")
    };

    let held = Lock::try_acquire(&redis, "test", ttl)
        .await
        .expect("redis")
        .expect("free");
    let second = Lock::try_acquire(&redis, "test", ttl).await.expect("redis");
    assert!(second.is_none(), "exclusive");

    // Renewal pushes the expiry back while the holder works (bounded polling).
    let mut previous = pttl(conn.clone(), key.clone()).await;
    eventually(
        "the held lock to be renewed",
        Duration::from_secs(5),
        async || {
            let now = pttl(conn.clone(), key.clone()).await;
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
    let exists: bool = redis::cmd("EXISTS")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .expect("EXISTS");
    assert!(!exists, "released");

    // A lock that expired and was taken by someone else is not deleted by its former owner.
    let stale = Lock::try_acquire(&redis, "test", ttl)
        .await
        .expect("redis")
        .expect("free again");
    let _: () = redis::cmd("SET")
        .arg(&key)
        .arg("someone-else")
        .query_async(&mut conn)
        .await
        .expect("SET");
    stale.release().await;
    let owner: Option<String> = redis::cmd("GET")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .expect("GET");
    assert_eq!(owner.as_deref(), Some("someone-else"));

    clear_redis_prefix(&vars["REDIS_KEY_PREFIX"]).await;
}
