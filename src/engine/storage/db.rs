//! One logical database: keys → entries, expiry (lazy and active), random sampling and SCAN.
//! Pure: time is passed in as milliseconds since the Unix epoch.
//!
//! Keys live in an insertion-ordered index map so that random sampling (RANDOMKEY, eviction) is
//! O(1) and SCAN can walk positions. Deletion swaps the last entry into the hole, so SCAN walks
//! positions from the *end* towards 0: an entry moved by a deletion always lands at a position not
//! yet visited or comes from one already visited, so every key present for the whole scan is
//! returned at least once (the guarantee Redis gives), without Redis's reverse-binary cursor.
//!
//! Expired keys are removed lazily on access and actively by [`Db::expire_cycle`], which walks an
//! ordered index of deadlines (so it never samples at random and never misses one). Every removal
//! caused by expiry is queued in `expired_pending` so the caller can propagate a DEL to the write
//! log and replicas: expiry is decided on the master only, replicas apply the DEL. How a
//! database treats deadlines is its [`Expiry`] mode: a master deletes, a replica hides, and
//! anything applying a stream (recovery, a snapshot, the master's stream) suspends them.
//!
//! Fork-less snapshots (versioned incremental serialisation): a snapshot has an epoch E and
//! starts at a stream offset S. While it is active, every entry whose `epoch` is below E has not
//! been written yet and still holds its value at S. A background walk serialises such entries a
//! few at a time and stamps them with E; every mutation path here first serialises the entry it
//! is about to change or remove if its epoch is below E (copy-before-write), into `snap_out`.
//! Keys created during the snapshot get epoch E (they did not exist at S). So the snapshot is
//! exactly the dataset at S, with extra memory bounded by what is written while it runs. The walk
//! goes from the last position towards 0 for the same reason SCAN does: a deletion moves an entry
//! only from an already-walked position.
//!
//! Every lookup through [`Db::get`] / [`Db::get_mut`] counts as an access for maxmemory
//! eviction: it refreshes `Entry.access`, an LRU clock or Redis's LFU counter depending on
//! [`AccessPolicy`]. Inspection that must not count (OBJECT, SCAN, RENAME checks) uses
//! [`Db::get_untouched`] or [`Db::peek`].

use std::collections::BTreeSet;

use indexmap::map::Entry as MapEntry;
use indexmap::IndexMap;

use super::compact::CompactBytes;
use super::hash::FastState;
use super::value::Value;

/// How many entries ahead a snapshot walk prefetches (see [`super::prefetch`]).
const SNAPSHOT_PREFETCH_AHEAD: usize = 8;

#[derive(Debug, Clone)]
pub struct Entry {
    pub value: Value,
    /// Absolute expiry in ms since the epoch; 0 means no expiry.
    pub expire_at: i64,
    /// LRU clock (seconds) or LFU counter, depending on maxmemory-policy.
    pub access: u32,
    /// Snapshot epoch (see the module comment). Fits the padding after `access`.
    pub epoch: u32,
}

impl Entry {
    pub fn new(value: Value) -> Entry {
        Entry {
            value,
            expire_at: 0,
            access: 0,
            epoch: 0,
        }
    }
}

/// What `Entry.access` holds, following maxmemory-policy: an LRU clock for every policy except
/// the LFU ones, which keep Redis's logarithmic access counter instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AccessPolicy {
    /// `access` = seconds since the epoch of the last access (truncated to u32).
    #[default]
    Lru,
    /// `access` = (last decrement time in minutes, 16 bits) << 8 | log counter (8 bits).
    Lfu { log_factor: u32, decay_minutes: u32 },
}

/// Redis's initial LFU counter for a new key, so fresh keys are not evicted at once.
pub const LFU_INIT_VAL: u8 = 5;

/// The LRU clock (seconds) at `now_ms`.
pub fn lru_clock(now_ms: i64) -> u32 {
    (now_ms / 1000).max(0) as u32
}

/// The 16-bit minute clock LFU uses for decay.
pub fn lfu_minutes(now_ms: i64) -> u32 {
    ((now_ms / 60_000).max(0) as u32) & 0xFFFF
}

/// Pack an LFU counter with the current decay time.
pub fn lfu_pack(counter: u8, now_ms: i64) -> u32 {
    (lfu_minutes(now_ms) << 8) | counter as u32
}

/// The LFU counter after decay (Redis `LFUDecrAndReturn`): one step per `decay_minutes`
/// elapsed since the last decrement.
pub fn lfu_decayed(access: u32, now_ms: i64, decay_minutes: u32) -> u8 {
    let last = access >> 8;
    let counter = (access & 0xFF) as u8;
    let now = lfu_minutes(now_ms);
    // The minute clock wraps every 2^16 minutes (~45 days), as in Redis.
    let elapsed = if now >= last {
        now - last
    } else {
        0xFFFF - last + now
    };
    // lfu-decay-time 0 means the counter never decays.
    let periods = elapsed.checked_div(decay_minutes).unwrap_or(0);
    counter.saturating_sub(periods.min(255) as u8)
}

/// Logarithmic increment (Redis `LFULogIncr`): the higher the counter, the less likely a hit
/// bumps it, so 255 represents about a million hits with the default factor 10.
pub fn lfu_log_incr(counter: u8, log_factor: u32) -> u8 {
    if counter == 255 {
        return 255;
    }
    let r: f64 = rand::random();
    let base = (counter as f64 - LFU_INIT_VAL as f64).max(0.0);
    let p = 1.0 / (base * log_factor as f64 + 1.0);
    if r < p {
        counter + 1
    } else {
        counter
    }
}

impl AccessPolicy {
    /// The `access` value of a key created now.
    pub fn initial(self, now_ms: i64) -> u32 {
        match self {
            AccessPolicy::Lru => lru_clock(now_ms),
            AccessPolicy::Lfu { .. } => lfu_pack(LFU_INIT_VAL, now_ms),
        }
    }
    /// The `access` value after a hit.
    pub fn touched(self, access: u32, now_ms: i64) -> u32 {
        match self {
            AccessPolicy::Lru => lru_clock(now_ms),
            AccessPolicy::Lfu {
                log_factor,
                decay_minutes,
            } => {
                let c = lfu_decayed(access, now_ms, decay_minutes);
                lfu_pack(lfu_log_incr(c, log_factor), now_ms)
            }
        }
    }
}

/// The state of an active snapshot in one database.
#[derive(Debug, Default)]
pub struct SnapshotCapture {
    /// Entries with an epoch below this one are not yet serialised.
    pub epoch: u32,
    /// The walk's cursor: positions below it are still to visit (counted from the start).
    pub cursor: usize,
    /// Serialised entries (commands), waiting to be written out.
    pub out: Vec<u8>,
    /// FLUSHDB / SWAPDB happened: the snapshot must be restarted.
    pub aborted: bool,
}

/// How a database treats keys whose deadline has passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Expiry {
    /// A master: an expired key is deleted when met (lazily, or by the active cycle) and the
    /// deletion queued in `expired_pending`, to be propagated as DEL.
    #[default]
    Delete,
    /// A replica: an expired key reads as missing but stays until the master's DEL removes it,
    /// so both sides hold the same keys.
    Hide,
    /// Applying a stream (log recovery, a snapshot, a master's stream on its replica): deadlines
    /// are not looked at, every key lives until the stream deletes it. The node that wrote the
    /// stream already decided every expiry, in order, and wrote it as a DEL; judging deadlines
    /// again by this node's clock, later, decides differently: `INCR k; PEXPIREAT k <t>; INCR
    /// k` replayed after `t` deleted `k` at the PEXPIREAT and the next INCR recreated it as 1
    /// without a TTL. Redis does the same: nothing expires while loading or on the master's
    /// stream. Keys whose deadline passed meanwhile expire normally once the stream has been
    /// applied (on a master, as a propagated DEL).
    Suspend,
}

#[derive(Debug, Default)]
pub struct Db {
    map: IndexMap<CompactBytes, Entry, FastState>,
    deadlines: BTreeSet<(i64, CompactBytes)>,
    /// Keys removed by expiry and not yet propagated.
    pub expired_pending: Vec<CompactBytes>,
    /// How deadlines that passed are treated (see [`Expiry`]).
    pub expiry: Expiry,
    /// CLIENT PAUSE holds expiries: an expired key reads as missing but is not deleted (its
    /// DEL would be a write of a paused master), as Redis's `expireIfNeeded` does.
    pub expiry_held: bool,
    /// Epoch given to new entries (the epoch of the newest snapshot).
    epoch: u32,
    /// The active snapshot, if any.
    pub snap: Option<SnapshotCapture>,
    /// How lookups update `Entry.access` (kept in sync with maxmemory-policy by the caller).
    pub access_policy: AccessPolicy,
    /// The time of the last lookup-or-write, used to stamp new keys' `access` (set by `get`).
    last_now_ms: i64,
}

impl Db {
    pub fn new() -> Db {
        Db::default()
    }

    /// Start capturing a snapshot with epoch `epoch` (greater than every earlier one).
    pub fn begin_snapshot(&mut self, epoch: u32) {
        self.epoch = epoch;
        self.snap = Some(SnapshotCapture {
            epoch,
            cursor: self.map.len(),
            out: Vec::new(),
            aborted: false,
        });
    }

    /// Stop capturing (the snapshot is complete or abandoned).
    pub fn end_snapshot(&mut self) {
        self.snap = None;
    }

    /// Serialise up to `max` not-yet-written entries into `out` (the caller's buffer, reused
    /// from step to step: no allocation under the lock). Returns true when the walk is
    /// complete. What copy-before-write captured meanwhile stays in the capture's own buffer.
    pub fn snapshot_walk(&mut self, max: usize, out: &mut Vec<u8>) -> bool {
        let Some(snap) = &mut self.snap else {
            return true;
        };
        snap.cursor = snap.cursor.min(self.map.len());
        let mut n = 0;
        while snap.cursor > 0 && n < max {
            snap.cursor -= 1;
            // The walk goes down the index; start loading the bytes of an entry a few
            // positions further down now, so its cache misses overlap this one's work.
            if let Some((k, e)) = snap
                .cursor
                .checked_sub(SNAPSHOT_PREFETCH_AHEAD)
                .and_then(|i| self.map.get_index(i))
            {
                super::prefetch::read_soon(k.as_slice().as_ptr());
                super::prefetch::read_soon(e.value.first_heap_byte());
            }
            if let Some((k, e)) = self.map.get_index_mut(snap.cursor) {
                if e.epoch < snap.epoch {
                    super::serialise::serialise_entry(k, e, out);
                    e.epoch = snap.epoch;
                    n += 1;
                }
            }
        }
        snap.cursor == 0
    }

    /// Copy-before-write: serialise `key`'s current entry into the active snapshot if it has not
    /// been written yet.
    fn cow(&mut self, key: &[u8]) {
        let Some(snap) = &mut self.snap else {
            return;
        };
        if let Some((_, k, e)) = self.map.get_full_mut(key) {
            if e.epoch < snap.epoch {
                super::serialise::serialise_entry(k, e, &mut snap.out);
                e.epoch = snap.epoch;
            }
        }
    }

    fn cow_index(&mut self, i: usize) {
        let Some(snap) = &mut self.snap else {
            return;
        };
        if let Some((k, e)) = self.map.get_index_mut(i) {
            if e.epoch < snap.epoch {
                super::serialise::serialise_entry(k, e, &mut snap.out);
                e.epoch = snap.epoch;
            }
        }
    }

    fn abort_snapshot(&mut self) {
        if let Some(snap) = &mut self.snap {
            snap.aborted = true;
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
    /// Number of keys with an expiry.
    pub fn volatile_len(&self) -> usize {
        self.deadlines.len()
    }

    fn is_expired(&self, e: &Entry, now: i64) -> bool {
        self.is_due(e.expire_at, now)
    }

    /// Whether a deadline `at_ms` (0: none) counts as passed at `now`: never while a stream is
    /// applied ([`Expiry::Suspend`]). Commands that look at deadlines themselves (EXPIRE with a
    /// time in the past, RESTORE, multi-key reads through `peek`) ask this, not the clock.
    pub fn is_due(&self, at_ms: i64, now: i64) -> bool {
        at_ms != 0 && at_ms <= now && self.expiry != Expiry::Suspend
    }

    /// Remove `key` if it has expired at `now`. Returns true if the key is (logically) gone.
    fn expire_if_needed(&mut self, key: &[u8], now: i64) -> bool {
        let Some(e) = self.map.get(key) else {
            return true;
        };
        if !self.is_expired(e, now) {
            return false;
        }
        if self.expiry == Expiry::Delete && !self.expiry_held {
            if let Some((k, _)) = self.remove_entry(key) {
                self.expired_pending.push(k);
            }
        }
        true
    }

    /// Look up a key for reading, expiring it first if its time has passed. Counts as an access
    /// for LRU/LFU.
    ///
    /// A read needs no copy-before-write: it changes nothing a snapshot records (the access
    /// stamp is not part of it), so a GET during a snapshot costs what it costs without one.
    pub fn get(&mut self, key: &[u8], now: i64) -> Option<&Entry> {
        self.last_now_ms = now;
        let i = self.live_index(key, now)?;
        Some(self.touch(i, now))
    }

    /// Look up a key for modification, expiring it first if its time has passed. Counts as an
    /// access for LRU/LFU.
    pub fn get_mut(&mut self, key: &[u8], now: i64) -> Option<&mut Entry> {
        self.last_now_ms = now;
        let i = self.live_index(key, now)?;
        self.cow_index(i);
        Some(self.touch(i, now))
    }

    /// The index of `key` if it exists and has not expired at `now` (expiring it if due).
    fn live_index(&mut self, key: &[u8], now: i64) -> Option<usize> {
        // One hash and probe on the hot path; the expired case (rare) takes the slow road.
        let i = self.map.get_index_of(key)?;
        if self.is_expired(&self.map[i], now) {
            self.expire_if_needed(key, now);
            return None;
        }
        Some(i)
    }

    /// Count an access to the entry at `i` (LRU/LFU) and return it.
    fn touch(&mut self, i: usize, now: i64) -> &mut Entry {
        let policy = self.access_policy;
        let e = &mut self.map[i];
        e.access = policy.touched(e.access, now);
        e
    }

    /// Look up a key, expiring it if needed, without counting an access (OBJECT, TYPE-less
    /// inspection: Redis's LOOKUP_NOTOUCH).
    pub fn get_untouched(&mut self, key: &[u8], now: i64) -> Option<&Entry> {
        let i = self.live_index(key, now)?;
        Some(&self.map[i])
    }

    /// Look up without expiring or touching anything (DEBUG, OBJECT, SCAN filters).
    pub fn peek(&self, key: &[u8]) -> Option<&Entry> {
        self.map.get(key)
    }

    /// Whether the key exists (expiring it if due), without counting an access (EXISTS, DEL).
    pub fn contains(&mut self, key: &[u8], now: i64) -> bool {
        self.get_untouched(key, now).is_some()
    }

    /// Insert or overwrite a key; an overwritten key loses its expiry (Redis `setKey`).
    pub fn set(&mut self, key: &[u8], value: Value) {
        self.cow(key);
        let epoch = self.epoch;
        // The entry API hashes the key once whether it is new or overwritten.
        match self.map.entry(CompactBytes::new(key)) {
            MapEntry::Occupied(mut o) => {
                let e = o.get_mut();
                if e.expire_at != 0 {
                    let old = e.expire_at;
                    e.expire_at = 0;
                    self.deadlines.remove(&(old, CompactBytes::new(key)));
                }
                e.value = value;
            }
            MapEntry::Vacant(v) => {
                let mut e = Entry::new(value);
                e.access = self.access_policy.initial(self.last_now_ms);
                e.epoch = epoch;
                v.insert(e);
            }
        }
    }

    /// Insert or overwrite a key keeping its current expiry (SET KEEPTTL, SETRANGE, APPEND...).
    pub fn set_keep_ttl(&mut self, key: &[u8], value: Value) {
        self.cow(key);
        let epoch = self.epoch;
        match self.map.entry(CompactBytes::new(key)) {
            MapEntry::Occupied(mut o) => o.get_mut().value = value,
            MapEntry::Vacant(v) => {
                let mut e = Entry::new(value);
                e.access = self.access_policy.initial(self.last_now_ms);
                e.epoch = epoch;
                v.insert(e);
            }
        }
    }

    /// Insert a whole entry (RESTORE, MOVE, COPY, RENAME), replacing any existing key.
    pub fn insert_entry(&mut self, key: CompactBytes, mut entry: Entry) {
        let _ = self.remove_entry(&key);
        entry.epoch = self.epoch;
        if entry.expire_at != 0 {
            self.deadlines.insert((entry.expire_at, key.clone()));
        }
        self.map.insert(key, entry);
    }

    /// Remove a key, returning it and its entry.
    pub fn remove_entry(&mut self, key: &[u8]) -> Option<(CompactBytes, Entry)> {
        self.cow(key);
        let (k, e) = self.map.swap_remove_entry(key)?;
        if e.expire_at != 0 {
            self.deadlines.remove(&(e.expire_at, k.clone()));
        }
        Some((k, e))
    }

    pub fn remove(&mut self, key: &[u8]) -> Option<Entry> {
        self.remove_entry(key).map(|(_, e)| e)
    }

    /// Set an absolute expiry (ms) on an existing key. Returns false if the key does not exist.
    pub fn set_expire(&mut self, key: &[u8], at_ms: i64) -> bool {
        self.cow(key);
        let Some(e) = self.map.get_mut(key) else {
            return false;
        };
        let k = CompactBytes::new(key);
        if e.expire_at != 0 {
            self.deadlines.remove(&(e.expire_at, k.clone()));
        }
        e.expire_at = at_ms;
        if at_ms != 0 {
            self.deadlines.insert((at_ms, k));
        }
        true
    }

    /// Remove the expiry of a key. Returns true if it had one.
    pub fn persist(&mut self, key: &[u8]) -> bool {
        match self.map.get(key) {
            Some(e) if e.expire_at != 0 => {
                self.set_expire(key, 0);
                true
            }
            _ => false,
        }
    }

    pub fn clear(&mut self) {
        self.abort_snapshot();
        self.map = IndexMap::default();
        self.deadlines.clear();
    }

    /// Empty the database and return its former contents, to be freed elsewhere (FLUSHALL
    /// ASYNC), with the number of keys they held.
    pub fn take_contents(&mut self) -> (Box<dyn Send>, usize) {
        self.abort_snapshot();
        let map = std::mem::take(&mut self.map);
        let deadlines = std::mem::take(&mut self.deadlines);
        let keys = map.len();
        (Box::new((map, deadlines)), keys)
    }

    /// Remove up to `max` keys whose deadline has passed; returns how many were removed. Used by
    /// the periodic active-expiry task, bounded so one cycle never stalls clients.
    pub fn expire_cycle(&mut self, now: i64, max: usize) -> usize {
        if self.expiry != Expiry::Delete {
            return 0;
        }
        let mut n = 0;
        while n < max {
            let Some((at, _)) = self.deadlines.first() else {
                break;
            };
            if *at > now {
                break;
            }
            let (_, key) = self.deadlines.pop_first().expect("checked non-empty");
            self.cow(key.as_slice());
            if let Some((k, _)) = self.map.swap_remove_entry(key.as_slice()) {
                self.expired_pending.push(k);
            }
            n += 1;
        }
        n
    }

    /// Entry at a position (for sampling).
    pub fn get_index(&self, i: usize) -> Option<(&CompactBytes, &Entry)> {
        self.map.get_index(i)
    }

    pub fn get_index_mut(&mut self, i: usize) -> Option<(&CompactBytes, &mut Entry)> {
        self.cow_index(i);
        self.map.get_index_mut(i)
    }

    /// Iterate over all keys and entries (including logically expired ones: callers filter).
    pub fn iter(&self) -> impl Iterator<Item = (&CompactBytes, &Entry)> {
        self.map.iter()
    }

    /// Walk positions for SCAN. `cursor` 0 starts at the end; the returned cursor is 0 when the
    /// walk is complete. Calls `visit` for at most `count` positions.
    pub fn scan(
        &self,
        cursor: u64,
        count: usize,
        mut visit: impl FnMut(&CompactBytes, &Entry),
    ) -> u64 {
        scan_positions(self.map.len(), cursor, count, |i| {
            let (k, e) = self.map.get_index(i).expect("position in range");
            visit(k, e)
        })
    }

    /// Bytes of keyspace table capacity that are allocated but vacant: removing a key frees no
    /// heap block when its key and value are stored inline, yet its slot is reused by the next
    /// insert. Eviction subtracts this from used memory so it counts a removed key as freed
    /// space instead of evicting everything while the table's allocation stays the same.
    pub fn reusable_bytes(&self) -> usize {
        // One entry (hash, key, entry) plus its index (a usize and a control byte).
        const SLOT: usize =
            std::mem::size_of::<(u64, CompactBytes, Entry)>() + std::mem::size_of::<usize>() + 1;
        self.map.capacity().saturating_sub(self.map.len()) * SLOT
    }

    /// Set the time new keys are stamped with (called before each command).
    pub fn set_clock(&mut self, now_ms: i64) {
        self.last_now_ms = now_ms;
    }

    /// A uniformly random position, or None when empty (RANDOMKEY, eviction sampling).
    pub fn random_index(&self) -> Option<usize> {
        if self.map.is_empty() {
            None
        } else {
            Some(rand::random::<usize>() % self.map.len())
        }
    }

    /// The keys with the earliest deadlines, soonest first (volatile-ttl eviction).
    pub fn earliest_deadlines(&self, n: usize) -> impl Iterator<Item = &(i64, CompactBytes)> {
        self.deadlines.iter().take(n)
    }

    /// Exchange the contents of two databases (SWAPDB).
    pub fn swap_contents(&mut self, other: &mut Db) {
        self.abort_snapshot();
        other.abort_snapshot();
        std::mem::swap(&mut self.map, &mut other.map);
        std::mem::swap(&mut self.deadlines, &mut other.deadlines);
    }
}

/// The cursor walk shared by SCAN, HSCAN, SSCAN and ZSCAN over insertion-ordered containers
/// whose deletions swap the last element into the hole (see the module comment). The cursor is
/// the number of positions still to visit, counted from the start; 0 starts a new walk at the end.
pub fn scan_positions(len: usize, cursor: u64, count: usize, mut visit: impl FnMut(usize)) -> u64 {
    let mut next = if cursor == 0 {
        len
    } else {
        (cursor as usize).min(len)
    };
    let mut visited = 0;
    while next > 0 && visited < count.max(1) {
        next -= 1;
        visit(next);
        visited += 1;
    }
    next as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lazy_expiry_and_pending_dels() {
        let mut db = Db::new();
        db.set(b"a", Value::str(b"1"));
        db.set_expire(b"a", 1000);
        assert!(db.get(b"a", 999).is_some());
        assert!(db.get(b"a", 1000).is_none());
        assert_eq!(db.expired_pending.len(), 1);
        assert_eq!(db.volatile_len(), 0);
    }

    #[test]
    fn replica_does_not_delete_expired() {
        let mut db = Db::new();
        db.expiry = Expiry::Hide;
        db.set(b"a", Value::str(b"1"));
        db.set_expire(b"a", 10);
        assert!(db.get(b"a", 20).is_none());
        assert_eq!(db.len(), 1);
        assert_eq!(db.expire_cycle(20, 10), 0);
    }

    #[test]
    fn suspended_expiry_keeps_keys_past_their_deadline_until_resumed() {
        let mut db = Db::new();
        db.expiry = Expiry::Suspend;
        db.set(b"a", Value::str(b"1"));
        db.set_expire(b"a", 10);
        assert!(db.get(b"a", 20).is_some(), "a stream sees the key as live");
        assert!(!db.is_due(10, 20));
        assert_eq!(db.expire_cycle(20, 10), 0);
        assert!(db.expired_pending.is_empty());
        db.expiry = Expiry::Delete;
        assert!(db.get(b"a", 20).is_none());
        assert_eq!(db.expired_pending.len(), 1);
    }

    #[test]
    fn active_expiry_is_bounded_and_ordered() {
        let mut db = Db::new();
        for i in 0..10 {
            let k = format!("k{i}");
            db.set(k.as_bytes(), Value::str(b"v"));
            db.set_expire(k.as_bytes(), 100 + i);
        }
        assert_eq!(db.expire_cycle(104, 3), 3);
        assert_eq!(db.expire_cycle(104, 100), 2);
        assert_eq!(db.len(), 5);
        assert!(db.get(b"k5", 104).is_some());
    }

    #[test]
    fn overwrite_clears_ttl() {
        let mut db = Db::new();
        db.set(b"a", Value::str(b"1"));
        db.set_expire(b"a", 50);
        db.set(b"a", Value::str(b"2"));
        assert_eq!(db.get(b"a", 100).unwrap().expire_at, 0);
        assert_eq!(db.volatile_len(), 0);
    }

    #[test]
    fn scan_returns_every_stable_key_despite_deletions() {
        let mut db = Db::new();
        for i in 0..100 {
            db.set(format!("k{i}").as_bytes(), Value::str(b"v"));
        }
        let mut seen = std::collections::HashSet::new();
        let mut cursor = 0;
        let mut round = 0;
        loop {
            cursor = db.scan(cursor, 7, |k, _| {
                seen.insert(k.clone());
            });
            // Delete keys we have already seen and some we have not, between calls.
            round += 1;
            db.remove(format!("k{}", round * 3).as_bytes());
            if cursor == 0 {
                break;
            }
        }
        for i in 0..100 {
            let k = format!("k{i}");
            if db.peek(k.as_bytes()).is_some() {
                assert!(seen.contains(k.as_bytes()), "{k} missed");
            }
        }
    }
}

#[cfg(test)]
mod snapshot_tests {
    use super::*;
    use std::collections::BTreeMap;

    /// Parse the SET/PEXPIREAT commands of a string-only snapshot into key → (value, expiry).
    fn parse(out: &[u8]) -> BTreeMap<Vec<u8>, (Vec<u8>, i64)> {
        let mut buf = bytes::BytesMut::from(out);
        let cmds = crate::engine::protocol::commands::split_commands(&mut buf).unwrap();
        assert!(buf.is_empty());
        let mut m = BTreeMap::new();
        for (args, _) in cmds {
            match args[0].as_ref() {
                b"SET" => {
                    let prev = m.insert(args[1].to_vec(), (args[2].to_vec(), 0));
                    assert!(prev.is_none(), "key serialised twice");
                }
                b"PEXPIREAT" => {
                    let at = std::str::from_utf8(&args[2]).unwrap().parse().unwrap();
                    m.get_mut(args[1].as_ref()).unwrap().1 = at;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        m
    }

    fn contents(db: &Db) -> BTreeMap<Vec<u8>, (Vec<u8>, i64)> {
        db.iter()
            .map(|(k, e)| {
                let Value::Str(v) = &e.value else { panic!() };
                (k.to_vec(), (v.to_vec(), e.expire_at))
            })
            .collect()
    }

    #[test]
    fn snapshot_is_the_dataset_at_its_start_despite_concurrent_writes() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for round in 0..20u32 {
            let mut db = Db::new();
            for i in 0..500 {
                db.set(
                    format!("k{i}").as_bytes(),
                    Value::str(format!("v{i}").as_bytes()),
                );
                if i % 7 == 0 {
                    db.set_expire(format!("k{i}").as_bytes(), 1_000_000 + i);
                }
            }
            let at_start = contents(&db);
            db.begin_snapshot(round + 1);
            let mut out = Vec::new();
            loop {
                // Mutations between walk steps: overwrite, delete, expire, persist, create.
                for _ in 0..rng.gen_range(0..30) {
                    let k = format!("k{}", rng.gen_range(0..700));
                    match rng.gen_range(0..7) {
                        0 => db.set(k.as_bytes(), Value::str(b"new")),
                        1 => {
                            db.remove(k.as_bytes());
                        }
                        2 => {
                            db.set_expire(k.as_bytes(), 5);
                        }
                        3 => {
                            db.persist(k.as_bytes());
                        }
                        4 => {
                            if let Some(e) = db.get_mut(k.as_bytes(), 0) {
                                e.value = Value::str(b"mutated");
                            }
                        }
                        5 => {
                            // A read: no copy-before-write, and the snapshot still holds
                            // what the key was at the start.
                            let _ = db.get(k.as_bytes(), 0);
                        }
                        _ => {
                            db.expire_cycle(10, 3);
                        }
                    }
                }
                let done = db.snapshot_walk(rng.gen_range(1..40), &mut out);
                out.append(&mut db.snap.as_mut().unwrap().out);
                if done {
                    break;
                }
            }
            db.end_snapshot();
            assert_eq!(parse(&out), at_start, "round {round}");
        }
    }

    #[test]
    fn flush_aborts_a_running_snapshot() {
        let mut db = Db::new();
        db.set(b"a", Value::str(b"1"));
        db.begin_snapshot(1);
        db.clear();
        assert!(db.snap.as_ref().unwrap().aborted);
    }
}
