//! In-process caches of hot reads (bearer-token lookups, masked configs), kept honest across
//! replicas by PostgreSQL `LISTEN/NOTIFY`.
//!
//! Triggers on the cached tables `NOTIFY hsq_invalidate` in the writing transaction, so every
//! replica drops an entry when the change commits (`infra::invalidation` listens). Staleness is
//! bounded three ways: notifications arrive within milliseconds of a commit; while the listener
//! is disconnected the caches are flushed and bypassed; and every entry expires after
//! `CACHE_TTL_SECS` regardless, which also covers a connection that dies silently.
//!
//! A read that began before an invalidation must not put back what the invalidation removed:
//! every removal bumps the cache's generation, and [`TtlCache::insert_since`] stores a value
//! only when no removal happened since the read began.
//!
//! What never changes once written needs none of that: [`FixedCache`] only keeps itself
//! bounded.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The most entries one cache holds; past it, the cache starts over (entries are cheap to
/// read again, and the hot set is small: a few tokens, six configs).
const MAX_ENTRIES: usize = 10_000;

/// A map whose entries expire, which can be switched off while invalidations may be missed.
pub struct TtlCache<K, V> {
    ttl: Duration,
    live: AtomicBool,
    /// Bumped, under the entries' lock, by every removal.
    generation: AtomicU64,
    entries: Mutex<HashMap<K, (V, Instant)>>,
}

impl<K: Eq + Hash, V: Clone> TtlCache<K, V> {
    /// A cache that starts off (bypassed) until [`TtlCache::resume`]; a zero `ttl` never caches.
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            live: AtomicBool::new(false),
            generation: AtomicU64::new(0),
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

    /// Where the cache stands now: take it before reading what [`TtlCache::insert_since`] will
    /// store.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Stores `value`, read after [`TtlCache::generation`] returned `generation`, unless an
    /// entry was removed since: the value may predate that change.
    pub fn insert_since(&self, generation: u64, key: K, value: V) {
        if !self.on() {
            return;
        }
        let mut entries = self.entries();
        if self.generation.load(Ordering::Acquire) != generation {
            return;
        }
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(key, (value, Instant::now()));
    }

    /// Changes the entry of `key`, if there is one, in place: it keeps its age, and nothing
    /// is invalidated (for bookkeeping this process does itself, like a token's last use).
    pub fn update(&self, key: &K, change: impl FnOnce(&mut V)) {
        if let Some((value, _)) = self.entries().get_mut(key) {
            change(value);
        }
    }

    pub fn remove(&self, key: &K) {
        let mut entries = self.entries();
        entries.remove(key);
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    pub fn clear(&self) {
        let mut entries = self.entries();
        entries.clear();
        self.generation.fetch_add(1, Ordering::AcqRel);
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

/// A bounded map of values that never change once written (rendered audit rows): nothing to
/// invalidate and nothing to expire, so it is always on. Past `capacity` entries it starts over.
pub struct FixedCache<K, V> {
    capacity: usize,
    entries: Mutex<HashMap<K, V>>,
}

impl<K: Eq + Hash, V: Clone> FixedCache<K, V> {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<K, V>> {
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The value of every key, in order, under one lock.
    pub fn get_many<'k>(&self, keys: impl IntoIterator<Item = &'k K>) -> Vec<Option<V>>
    where
        K: 'k,
    {
        let entries = self.entries();
        keys.into_iter().map(|k| entries.get(k).cloned()).collect()
    }

    pub fn insert(&self, key: K, value: V) {
        if self.capacity == 0 {
            return;
        }
        let mut entries = self.entries();
        if entries.len() >= self.capacity {
            entries.clear();
        }
        entries.insert(key, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_live_only_while_the_cache_is_on_and_young() {
        let cache = TtlCache::new(Duration::from_secs(60));
        cache.insert_since(cache.generation(), 1, "a");
        assert_eq!(cache.get(&1), None, "off until resumed");
        cache.resume();
        cache.insert_since(cache.generation(), 1, "a");
        assert_eq!(cache.get(&1), Some("a"));
        cache.suspend();
        assert_eq!(cache.get(&1), None, "suspended caches hold nothing");
        let brief = TtlCache::new(Duration::from_nanos(1));
        brief.resume();
        brief.insert_since(brief.generation(), 1, "a");
        assert_eq!(brief.get(&1), None, "expired");
        let never = TtlCache::new(Duration::ZERO);
        never.resume();
        never.insert_since(never.generation(), 1, "a");
        assert_eq!(never.get(&1), None, "a zero TTL never caches");
    }

    #[test]
    fn a_value_read_before_an_invalidation_is_not_stored() {
        let cache = TtlCache::new(Duration::from_secs(60));
        cache.resume();
        let before = cache.generation();
        // The invalidation lands while the value is being read.
        cache.remove(&1);
        cache.insert_since(before, 1, "stale");
        assert_eq!(cache.get(&1), None);
        cache.insert_since(cache.generation(), 1, "fresh");
        assert_eq!(cache.get(&1), Some("fresh"));
    }

    #[test]
    fn a_fixed_cache_answers_in_key_order_and_stays_bounded() {
        let cache = FixedCache::new(2);
        cache.insert(1, "a");
        cache.insert(2, "b");
        assert_eq!(cache.get_many(&[2, 3, 1]), vec![Some("b"), None, Some("a")]);
        cache.insert(3, "c");
        assert_eq!(
            cache.get_many(&[1, 2, 3]),
            vec![None, None, Some("c")],
            "full: it started over"
        );
        let off = FixedCache::new(0);
        off.insert(1, "a");
        assert_eq!(off.get_many(&[1]), vec![None]);
    }
}
