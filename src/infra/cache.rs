//! In-process caches of hot reads (bearer-token lookups, masked configs), kept honest across
//! replicas by PostgreSQL `LISTEN/NOTIFY`.
//!
//! Triggers on the cached tables `NOTIFY hsq_invalidate` in the writing transaction, so every
//! replica drops an entry when the change commits (`infra::invalidation` listens). Staleness is
//! bounded three ways: notifications arrive within milliseconds of a commit; while the listener
//! is disconnected the caches are flushed and bypassed; and every entry expires after
//! `CACHE_TTL_SECS` regardless, which also covers a connection that dies silently.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The most entries one cache holds; past it, the cache starts over (entries are cheap to
/// read again, and the hot set is small: a few tokens, six configs).
const MAX_ENTRIES: usize = 10_000;

/// A map whose entries expire, which can be switched off while invalidations may be missed.
pub struct TtlCache<K, V> {
    ttl: Duration,
    live: AtomicBool,
    entries: Mutex<HashMap<K, (V, Instant)>>,
}

impl<K: Eq + Hash, V: Clone> TtlCache<K, V> {
    /// A cache that starts off (bypassed) until [`TtlCache::resume`]; a zero `ttl` never caches.
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            live: AtomicBool::new(false),
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<K, (V, Instant)>> {
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn on(&self) -> bool {
        !self.ttl.is_zero() && self.live.load(Ordering::Acquire)
    }

    pub fn get(&self, key: &K) -> Option<V> {
        if !self.on() {
            return None;
        }
        let mut entries = self.entries();
        match entries.get(key) {
            Some((value, at)) if at.elapsed() < self.ttl => Some(value.clone()),
            Some(_) => {
                entries.remove(key);
                None
            }
            None => None,
        }
    }

    pub fn insert(&self, key: K, value: V) {
        if !self.on() {
            return;
        }
        let mut entries = self.entries();
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(key, (value, Instant::now()));
    }

    pub fn remove(&self, key: &K) {
        self.entries().remove(key);
    }

    pub fn clear(&self) {
        self.entries().clear();
    }

    /// Flushes and bypasses the cache: invalidations may be missed from now on.
    pub fn suspend(&self) {
        self.live.store(false, Ordering::Release);
        self.clear();
    }

    /// Uses the cache again: invalidations arrive.
    pub fn resume(&self) {
        self.clear();
        self.live.store(true, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_live_only_while_the_cache_is_on_and_young() {
        let cache = TtlCache::new(Duration::from_secs(60));
        cache.insert(1, "a");
        assert_eq!(cache.get(&1), None, "off until resumed");
        cache.resume();
        cache.insert(1, "a");
        assert_eq!(cache.get(&1), Some("a"));
        cache.suspend();
        assert_eq!(cache.get(&1), None, "suspended caches hold nothing");
        let brief = TtlCache::new(Duration::from_nanos(1));
        brief.resume();
        brief.insert(1, "a");
        assert_eq!(brief.get(&1), None, "expired");
        let never = TtlCache::new(Duration::ZERO);
        never.resume();
        never.insert(1, "a");
        assert_eq!(never.get(&1), None, "a zero TTL never caches");
    }
}
