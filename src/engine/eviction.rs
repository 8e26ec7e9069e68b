//! maxmemory enforcement: evicts keys by the configured policy until memory use is under the
//! limit, with Redis's approximations (sample `maxmemory-samples` keys per database, keep the
//! best candidates in a small pool, evict the best). Pure (on the locked state; memory use comes
//! from the counting allocator).
//!
//! `Entry.access` is the LRU clock (seconds) or, under an LFU policy, Redis's packed
//! (decay-minutes, log-counter) pair; lookups in `storage::db` keep it current.

use crate::engine::protocol::arg::Arg;
use crate::engine::state::EngineState;
use crate::engine::storage::db::{lfu_decayed, lru_clock, AccessPolicy};
use crate::engine::storage::{CompactBytes, Db};

/// Redis's EVPOOL_SIZE: candidates kept across samples before one is evicted.
const POOL_SIZE: usize = 16;

/// The maxmemory policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    NoEviction,
    AllKeysLru,
    AllKeysLfu,
    AllKeysRandom,
    VolatileLru,
    VolatileLfu,
    VolatileRandom,
    VolatileTtl,
}

impl Policy {
    pub fn from_name(name: &str) -> Policy {
        match name {
            "allkeys-lru" => Policy::AllKeysLru,
            "allkeys-lfu" => Policy::AllKeysLfu,
            "allkeys-random" => Policy::AllKeysRandom,
            "volatile-lru" => Policy::VolatileLru,
            "volatile-lfu" => Policy::VolatileLfu,
            "volatile-random" => Policy::VolatileRandom,
            "volatile-ttl" => Policy::VolatileTtl,
            _ => Policy::NoEviction,
        }
    }
    fn volatile_only(self) -> bool {
        matches!(
            self,
            Policy::VolatileLru
                | Policy::VolatileLfu
                | Policy::VolatileRandom
                | Policy::VolatileTtl
        )
    }
}

/// The access policy implied by the configuration.
fn access_policy(state: &EngineState) -> AccessPolicy {
    let s = &state.config.settings;
    if s.maxmemory_policy.ends_with("-lfu") {
        AccessPolicy::Lfu {
            log_factor: s.lfu_log_factor,
            decay_minutes: s.lfu_decay_time,
        }
    } else {
        AccessPolicy::Lru
    }
}

/// Called before every command: keeps each database's access policy in step with
/// maxmemory-policy (CONFIG SET may change it at any time) and stamps the command's time for
/// keys it creates.
pub fn before_command(state: &mut EngineState, db: usize, now_ms: i64) {
    let wanted = access_policy(state);
    if state.dbs.first().is_some_and(|d| d.access_policy != wanted) {
        for d in &mut state.dbs {
            d.access_policy = wanted;
        }
    }
    if let Some(d) = state.dbs.get_mut(db) {
        d.set_clock(now_ms);
    }
}

/// Evict keys until used memory is at most maxmemory. Returns false if that is impossible
/// (policy noeviction, or nothing left to evict), in which case writes get an OOM error.
pub fn free_memory_if_needed(state: &mut EngineState) -> bool {
    let limit = state.config.settings.maxmemory;
    if limit == 0 {
        return true;
    }
    // precheck runs before the command's cached time exists; the wall clock is only used to
    // rank candidates, never stored.
    let now_ms = crate::engine::clock::now_ms();
    // No evictions while clients are paused (their DELs would be writes of a paused master),
    // and no OOM error either: Redis lets memory go over the limit until the pause ends.
    if state.pause.until_ms > now_ms {
        return true;
    }
    let over = |state: &EngineState| {
        let reusable: usize = state.dbs.iter().map(Db::reusable_bytes).sum();
        crate::engine::memory::used_memory().saturating_sub(reusable) as u64 > limit
    };
    evict_until_under(state, now_ms, over)
}

/// Evict by the configured policy while `over_limit(state)` says memory is over the limit. Returns
/// false when it is still over and nothing more can be evicted.
pub fn evict_until_under(
    state: &mut EngineState,
    now_ms: i64,
    mut over_limit: impl FnMut(&EngineState) -> bool,
) -> bool {
    if !over_limit(state) {
        return true;
    }
    let policy = Policy::from_name(&state.config.settings.maxmemory_policy);
    if policy == Policy::NoEviction {
        return false;
    }
    let mut pool: Vec<Candidate> = Vec::with_capacity(POOL_SIZE);
    while over_limit(state) {
        let Some((db, key)) = pick_victim(state, policy, now_ms, &mut pool) else {
            return false;
        };
        evict(state, db, &key);
    }
    true
}

/// A key considered for eviction; higher `score` = better to evict.
#[derive(Debug, Clone)]
struct Candidate {
    score: u64,
    db: usize,
    key: CompactBytes,
}

/// How desirable evicting an entry is: idle seconds (LRU), 255 - counter (LFU), or the
/// inverse of the deadline (TTL: sooner first).
fn score(policy: Policy, access: u32, expire_at: i64, now_ms: i64, decay: u32) -> u64 {
    match policy {
        Policy::AllKeysLfu | Policy::VolatileLfu => 255 - lfu_decayed(access, now_ms, decay) as u64,
        Policy::VolatileTtl => u64::MAX - expire_at.max(0) as u64,
        _ => lru_clock(now_ms).saturating_sub(access) as u64,
    }
}

fn pick_victim(
    state: &mut EngineState,
    policy: Policy,
    now_ms: i64,
    pool: &mut Vec<Candidate>,
) -> Option<(usize, CompactBytes)> {
    let samples = state.config.settings.maxmemory_samples.max(1);
    if matches!(policy, Policy::AllKeysRandom | Policy::VolatileRandom) {
        return random_victim(&state.dbs, policy.volatile_only(), samples);
    }
    let decay = state.config.settings.lfu_decay_time;
    // Refill the pool from every database, then take the best candidate that still exists
    // (pool entries may be stale: deleted or changed since they were sampled).
    for (i, db) in state.dbs.iter().enumerate() {
        if db.is_empty() || (policy.volatile_only() && db.volatile_len() == 0) {
            continue;
        }
        for key in sample_keys(db, policy, samples) {
            let Some(e) = db.peek(&key) else { continue };
            if pool.iter().any(|c| c.db == i && c.key == key) {
                continue;
            }
            let s = score(policy, e.access, e.expire_at, now_ms, decay);
            pool.push(Candidate {
                score: s,
                db: i,
                key,
            });
        }
    }
    pool.sort_by_key(|c| std::cmp::Reverse(c.score));
    pool.truncate(POOL_SIZE);
    while !pool.is_empty() {
        let c = pool.remove(0);
        let still_eligible = state.dbs[c.db]
            .peek(&c.key)
            .is_some_and(|e| !policy.volatile_only() || e.expire_at != 0);
        if still_eligible {
            return Some((c.db, c.key));
        }
    }
    None
}

/// Sample up to `n` keys of a database for the policy.
fn sample_keys(db: &Db, policy: Policy, n: usize) -> Vec<CompactBytes> {
    if policy == Policy::VolatileTtl {
        // The deadline index is ordered: the soonest deadlines are exact, not sampled.
        return db.earliest_deadlines(n).map(|(_, k)| k.clone()).collect();
    }
    if db.len() <= n {
        // A small database is sampled whole (Redis's dictGetSomeKeys does the same).
        return db
            .iter()
            .filter(|(_, e)| !policy.volatile_only() || e.expire_at != 0)
            .map(|(k, _)| k.clone())
            .collect();
    }
    let mut out = Vec::with_capacity(n);
    // Volatile keys may be rare among all keys: try a bounded number of positions, then fall
    // back to the deadline index so a volatile key is always found when one exists.
    let tries = if policy.volatile_only() { n * 10 } else { n };
    for _ in 0..tries {
        if out.len() >= n {
            break;
        }
        let Some((k, e)) = db.random_index().and_then(|i| db.get_index(i)) else {
            break;
        };
        if !policy.volatile_only() || e.expire_at != 0 {
            out.push(k.clone());
        }
    }
    if out.is_empty() && policy.volatile_only() {
        out.extend(db.earliest_deadlines(n).map(|(_, k)| k.clone()));
    }
    out
}

fn random_victim(dbs: &[Db], volatile: bool, samples: usize) -> Option<(usize, CompactBytes)> {
    // Databases are visited in turn from a random start, like Redis's rotating db index.
    let start = rand::random::<usize>() % dbs.len().max(1);
    for off in 0..dbs.len() {
        let i = (start + off) % dbs.len();
        let db = &dbs[i];
        if volatile {
            if db.volatile_len() == 0 {
                continue;
            }
            let policy = Policy::VolatileRandom;
            if let Some(k) = sample_keys(db, policy, samples).into_iter().next() {
                return Some((i, k));
            }
        } else if let Some((k, _)) = db.random_index().and_then(|p| db.get_index(p)) {
            return Some((i, k.clone()));
        }
    }
    None
}

/// Delete an evicted key: fails WATCHers, counts it, and propagates it as DEL so replicas and
/// the log stay identical (they never evict on their own).
fn evict(state: &mut EngineState, db: usize, key: &CompactBytes) {
    if state.dbs[db].remove(key).is_none() {
        return;
    }
    state.stats.evicted_keys += 1;
    if state.config.settings.notify_flags & crate::engine::notify::EVICTED != 0 {
        let now = crate::engine::clock::now_ms();
        crate::engine::notify::notify(
            state,
            now,
            crate::engine::notify::EVICTED,
            "evicted",
            key,
            db,
        );
    }
    state.watches.touch(db, key);
    crate::engine::tracking::invalidate_key(state, key, 0, crate::engine::clock::now_ms());
    state.dirty += 1;
    state.propagate(
        db,
        vec![Arg::from_static(b"DEL"), Arg::copy_from_slice(key)],
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::config::Config;
    use crate::engine::state::WriteLog;
    use crate::engine::storage::db::{lfu_log_incr, lfu_pack, LFU_INIT_VAL};
    use crate::engine::storage::{Entry, Value};
    use std::sync::{Arc, Mutex};

    /// Effects appended to the write log, with their database.
    type Effects = Arc<Mutex<Vec<(usize, Vec<Arg>)>>>;

    /// A write log that records effects for inspection.
    struct Recorder(Effects);
    impl WriteLog for Recorder {
        fn append(&mut self, db: usize, args: &[Arg]) {
            self.0.lock().unwrap().push((db, args.to_vec()));
        }
    }

    fn state_with(policy: &str) -> (EngineState, Effects) {
        let mut cfg = Config::default();
        cfg.set_startup("maxmemory-policy", policy).unwrap();
        let mut state = EngineState::new(cfg, 0);
        let log = Arc::new(Mutex::new(Vec::new()));
        state.write_log = Box::new(Recorder(log.clone()));
        (state, log)
    }

    fn put(state: &mut EngineState, db: usize, key: &str, access: u32, expire_at: i64) {
        let entry = Entry {
            value: Value::str(b"v"),
            expire_at,
            access,
            epoch: 0,
        };
        state.dbs[db].insert_entry(CompactBytes::from(key), entry);
    }

    /// An "over the limit" oracle that allows exactly `n` evictions (one initial check, then
    /// one check before each eviction).
    fn evictions(n: usize) -> impl FnMut(&EngineState) -> bool {
        let mut calls = 0;
        move |_| {
            calls += 1;
            calls <= n + 1
        }
    }

    fn total_keys(state: &EngineState) -> usize {
        state.dbs.iter().map(Db::len).sum()
    }

    #[test]
    fn evictions_are_propagated_counted_and_fail_watchers() {
        let (mut state, log) = state_with("allkeys-lru");
        let now = 10_000_000;
        for i in 0..20 {
            // key0 is the most idle.
            put(
                &mut state,
                i % 2,
                &format!("key{i}"),
                lru_clock(now) - 100 + i as u32,
                0,
            );
        }
        state
            .watches
            .by_key
            .insert((0, CompactBytes::from("key0")), vec![7]);
        // Not over the limit: nothing happens.
        assert!(evict_until_under(&mut state, now, |_| false));
        assert_eq!(total_keys(&state), 20);
        // Over by one key: with every key sampled, the most idle one (key0) goes.
        state.config.settings.maxmemory_samples = 20;
        assert!(evict_until_under(&mut state, now, evictions(1)));
        assert_eq!(state.stats.evicted_keys, 1);
        assert!(state.dbs[0].peek(b"key0").is_none());
        assert!(state.watches.dirty.contains(&7));
        let effects = log.lock().unwrap().clone();
        assert_eq!(
            effects,
            vec![(0, vec![Arg::from_static(b"DEL"), Arg::from_static(b"key0")])]
        );
        assert_eq!(total_keys(&state), 19);
    }

    #[test]
    fn volatile_policies_spare_persistent_keys_and_ttl_goes_soonest_first() {
        let now = 10_000_000;
        let (mut state, _) = state_with("volatile-ttl");
        put(&mut state, 0, "persistent", 0, 0);
        put(&mut state, 0, "late", 0, now + 5000);
        put(&mut state, 3, "soon", 0, now + 10);
        put(&mut state, 0, "middle", 0, now + 100);
        // Evict three keys one by one and check the order.
        let mut evicted = Vec::new();
        for _ in 0..3 {
            let before: Vec<String> = names(&state);
            assert!(evict_until_under(&mut state, now, evictions(1)));
            let after = names(&state);
            evicted.extend(before.into_iter().filter(|k| !after.contains(k)));
        }
        assert_eq!(evicted, ["soon", "middle", "late"]);
        // Only the persistent key is left: a volatile policy cannot free anything more.
        assert!(!evict_until_under(&mut state, now, |_| true));
        assert_eq!(names(&state), ["persistent"]);

        for policy in ["volatile-lru", "volatile-lfu", "volatile-random"] {
            let (mut state, _) = state_with(policy);
            put(&mut state, 0, "persistent", 0, 0);
            put(&mut state, 1, "volatile", 0, now + 10);
            assert!(evict_until_under(&mut state, now, evictions(1)));
            assert_eq!(names(&state), ["persistent"], "{policy}");
            assert!(!evict_until_under(&mut state, now, |_| true), "{policy}");
        }
    }

    fn names(state: &EngineState) -> Vec<String> {
        let mut v: Vec<String> = state
            .dbs
            .iter()
            .flat_map(|d| {
                d.iter()
                    .map(|(k, _)| String::from_utf8_lossy(k).into_owned())
            })
            .collect();
        v.sort();
        v
    }

    #[test]
    fn lfu_evicts_the_least_frequent_and_noeviction_refuses() {
        let now = 10_000_000;
        let (mut state, _) = state_with("allkeys-lfu");
        state.config.settings.maxmemory_samples = 10;
        put(&mut state, 0, "hot", lfu_pack(200, now), 0);
        put(&mut state, 0, "warm", lfu_pack(50, now), 0);
        put(&mut state, 0, "cold", lfu_pack(1, now), 0);
        assert!(evict_until_under(&mut state, now, evictions(1)));
        assert_eq!(names(&state), ["hot", "warm"]);

        let (mut state, _) = state_with("noeviction");
        put(&mut state, 0, "k", 0, 0);
        assert!(!evict_until_under(&mut state, now, |_| true));
        assert!(evict_until_under(&mut state, now, |_| false));
        assert_eq!(names(&state), ["k"]);
    }

    #[test]
    fn policy_names() {
        assert_eq!(Policy::from_name("volatile-ttl"), Policy::VolatileTtl);
        assert_eq!(Policy::from_name("noeviction"), Policy::NoEviction);
        assert!(Policy::from_name("volatile-lfu").volatile_only());
        assert!(!Policy::from_name("allkeys-lru").volatile_only());
    }

    #[test]
    fn lfu_counter_grows_logarithmically_and_decays() {
        let mut c = LFU_INIT_VAL;
        for _ in 0..1000 {
            c = lfu_log_incr(c, 10);
        }
        assert!(c > LFU_INIT_VAL && c < 40, "counter {c}");
        // One decay period per minute with lfu-decay-time 1.
        let packed = lfu_pack(20, 0);
        assert_eq!(lfu_decayed(packed, 5 * 60_000, 1), 15);
        assert_eq!(lfu_decayed(packed, 5 * 60_000, 0), 20);
    }

    #[test]
    fn scores_prefer_idle_rare_and_soon() {
        let now = 1_000_000;
        let lru = |a| score(Policy::AllKeysLru, a, 0, now, 1);
        assert!(lru(lru_clock(now) - 100) > lru(lru_clock(now)));
        let lfu = |c| score(Policy::AllKeysLfu, lfu_pack(c, now), 0, now, 1);
        assert!(lfu(1) > lfu(100));
        let ttl = |t| score(Policy::VolatileTtl, 0, t, now, 1);
        assert!(ttl(now + 10) > ttl(now + 1000));
    }
}
