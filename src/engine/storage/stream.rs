//! Stream values: entries by ID (ms-seq) with their field/value pairs, the stream's counters
//! (last ID, entries added, max deleted ID, first ID) and its consumer groups with their
//! pending entries lists (PEL) and consumers. Pure.
//!
//! Entries live in an ordered map, not in Redis's radix tree of listpacks. But approximate
//! trimming (`MAXLEN ~`, `MINID ~`) is defined by that layout: Redis removes only *whole* nodes
//! (a node holds up to stream-node-max-entries entries, deleted ones included, and up to
//! stream-node-max-bytes bytes). So the node boundaries are kept as bookkeeping beside the
//! entries (master ID, live and deleted counts, an estimate of the listpack's bytes computed with
//! the listpack's own element sizes), which makes `XADD ... MAXLEN ~ n`, `XTRIM ... LIMIT`,
//! XINFO's radix-tree-keys and the DUMP payload's node split come out as redis-server's do.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use super::compact::CompactBytes;

/// A stream entry ID: milliseconds and a sequence number, ordered as a pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct StreamId {
    pub ms: u64,
    pub seq: u64,
}

impl StreamId {
    pub const MIN: StreamId = StreamId { ms: 0, seq: 0 };
    pub const MAX: StreamId = StreamId {
        ms: u64::MAX,
        seq: u64::MAX,
    };

    pub const fn new(ms: u64, seq: u64) -> StreamId {
        StreamId { ms, seq }
    }
    pub fn is_zero(self) -> bool {
        self == StreamId::MIN
    }
    /// The next ID, or None past the last possible one (Redis `streamIncrID`).
    pub fn incr(self) -> Option<StreamId> {
        if self.seq == u64::MAX {
            if self.ms == u64::MAX {
                None
            } else {
                Some(StreamId::new(self.ms + 1, 0))
            }
        } else {
            Some(StreamId::new(self.ms, self.seq + 1))
        }
    }
    /// The previous ID, or None before 0-0 (Redis `streamDecrID`).
    pub fn decr(self) -> Option<StreamId> {
        if self.seq == 0 {
            if self.ms == 0 {
                None
            } else {
                Some(StreamId::new(self.ms - 1, u64::MAX))
            }
        } else {
            Some(StreamId::new(self.ms, self.seq - 1))
        }
    }
    /// The 16-byte big-endian form Redis uses as radix-tree key (and in RDB PELs).
    pub fn to_be_bytes(self) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&self.ms.to_be_bytes());
        b[8..].copy_from_slice(&self.seq.to_be_bytes());
        b
    }
    pub fn from_be_bytes(b: &[u8]) -> Option<StreamId> {
        if b.len() != 16 {
            return None;
        }
        let mut ms = [0u8; 8];
        let mut seq = [0u8; 8];
        ms.copy_from_slice(&b[..8]);
        seq.copy_from_slice(&b[8..]);
        Some(StreamId::new(
            u64::from_be_bytes(ms),
            u64::from_be_bytes(seq),
        ))
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// One pending (delivered, not yet acknowledged) entry of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nack {
    /// Unix time of the last delivery, in ms.
    pub delivery_time: i64,
    pub delivery_count: u64,
    /// The consumer owning it.
    pub consumer: CompactBytes,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consumer {
    /// Unix time the consumer was last seen (read or claimed), in ms.
    pub seen_time: i64,
    /// The IDs of its pending entries (the Nacks themselves are in the group's PEL).
    pub pel: BTreeSet<StreamId>,
}

/// The group's `entries_read` when it is not known (Redis `SCG_INVALID_ENTRIES_READ`).
pub const INVALID_ENTRIES_READ: i64 = -1;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerGroup {
    pub last_id: StreamId,
    /// Logical read counter, or [`INVALID_ENTRIES_READ`].
    pub entries_read: i64,
    pub pel: BTreeMap<StreamId, Nack>,
    /// By name, in byte order (as Redis's radix tree lists them).
    pub consumers: BTreeMap<CompactBytes, Consumer>,
}

impl ConsumerGroup {
    pub fn new(last_id: StreamId, entries_read: i64) -> ConsumerGroup {
        ConsumerGroup {
            last_id,
            entries_read,
            pel: BTreeMap::new(),
            consumers: BTreeMap::new(),
        }
    }

    /// Drop `id` from the PEL and its owner's list; true if it was pending.
    pub fn ack(&mut self, id: StreamId) -> bool {
        match self.pel.remove(&id) {
            Some(n) => {
                if let Some(c) = self.consumers.get_mut(n.consumer.as_slice()) {
                    c.pel.remove(&id);
                }
                true
            }
            None => false,
        }
    }

    /// Give the pending entry `id` to `consumer` (which must exist), with a new delivery time
    /// and count. Creates the Nack if `id` was not pending.
    pub fn assign(&mut self, id: StreamId, consumer: &[u8], time: i64, count: Option<u64>) {
        let nack = self.pel.entry(id).or_insert_with(|| Nack {
            delivery_time: time,
            delivery_count: 0,
            consumer: CompactBytes::new(consumer),
        });
        if nack.consumer.as_slice() != consumer {
            if let Some(old) = self.consumers.get_mut(nack.consumer.as_slice()) {
                old.pel.remove(&id);
            }
            nack.consumer = CompactBytes::new(consumer);
        }
        nack.delivery_time = time;
        if let Some(c) = count {
            nack.delivery_count = c;
        }
        if let Some(c) = self.consumers.get_mut(consumer) {
            c.pel.insert(id);
        }
    }
}

/// Bookkeeping for one of Redis's radix-tree nodes (a listpack of consecutive entries).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Entries still in the stream.
    pub live: u64,
    /// Entries deleted (XDEL, exact trim) but still counted by the node, as in Redis.
    pub deleted: u64,
    /// The listpack size Redis would have (estimated with listpack element sizes).
    pub bytes: usize,
    /// The fields of the node's first entry (entries with the same fields are compressed).
    pub master_fields: Box<[CompactBytes]>,
    /// The last ID ever appended to the node (deleted or not).
    pub last_id: StreamId,
}

/// Trimming strategy of XADD/XTRIM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trim {
    MaxLen(u64),
    MinId(StreamId),
}

/// Node size limits (stream-node-max-entries / stream-node-max-bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeLimits {
    pub max_entries: u64,
    pub max_bytes: usize,
}

impl Default for NodeLimits {
    fn default() -> NodeLimits {
        NodeLimits {
            max_entries: 100,
            max_bytes: 4096,
        }
    }
}

/// Redis's STREAM_LISTPACK_MAX_SIZE (1 GiB): the cap on a node's bytes.
const LISTPACK_MAX_SIZE: usize = 1 << 30;

#[derive(Debug, Clone, Default)]
pub struct StreamValue {
    /// Flattened field, value, field, value ... per entry.
    pub entries: BTreeMap<StreamId, Box<[CompactBytes]>>,
    /// Node bookkeeping by master ID (see the module comment).
    pub nodes: BTreeMap<StreamId, Node>,
    pub last_id: StreamId,
    /// The first entry's ID (0-0 when empty), as Redis records it.
    pub first_id: StreamId,
    pub max_deleted_id: StreamId,
    pub entries_added: u64,
    /// By name, in byte order.
    pub groups: BTreeMap<CompactBytes, ConsumerGroup>,
}

/// Bytes of a listpack element holding `s` (integers are stored as integers, as listpack does).
pub fn lp_string_size(s: &[u8]) -> usize {
    if s.len() <= 20 {
        if let Some(n) = crate::engine::storage::number::parse_i64_strict(s) {
            return lp_int_size(n);
        }
    }
    let header = if s.len() < 64 {
        1
    } else if s.len() < 4096 {
        2
    } else {
        5
    };
    let enc = header + s.len();
    enc + lp_backlen_size(enc)
}

/// Bytes of a listpack integer element (encoding, data and back-length).
pub fn lp_int_size(n: i64) -> usize {
    let enc = if (0..=127).contains(&n) {
        1
    } else if (-4096..4096).contains(&n) {
        2
    } else if (i16::MIN as i64..=i16::MAX as i64).contains(&n) {
        3
    } else if (-(1 << 23)..(1 << 23)).contains(&n) {
        4
    } else if (i32::MIN as i64..=i32::MAX as i64).contains(&n) {
        5
    } else {
        9
    };
    enc + lp_backlen_size(enc)
}

pub fn lp_backlen_size(enc: usize) -> usize {
    match enc {
        0..=127 => 1,
        128..=16382 => 2,
        16383..=2097150 => 3,
        2097151..=268435454 => 4,
        _ => 5,
    }
}

/// Why XADD could not append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendError {
    /// The ID is not greater than the stream's last ID.
    NotGreater,
    /// The entry is too large for a listpack.
    TooLarge,
}

impl StreamValue {
    pub fn len(&self) -> usize {
        self.entries.len()
    }
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The ID XADD `*` would use at `now_ms` (Redis `streamNextID`), None once exhausted.
    pub fn next_id(&self, now_ms: i64) -> Option<StreamId> {
        let now = now_ms.max(0) as u64;
        if now > self.last_id.ms {
            Some(StreamId::new(now, 0))
        } else {
            self.last_id.incr()
        }
    }

    /// The last entry's ID (0-0 when empty).
    pub fn last_valid_id(&self) -> StreamId {
        self.entries
            .last_key_value()
            .map(|(k, _)| *k)
            .unwrap_or_default()
    }

    fn refresh_first_id(&mut self) {
        self.first_id = self
            .entries
            .first_key_value()
            .map(|(k, _)| *k)
            .unwrap_or_default();
    }

    /// Append an entry with ID `id` (already checked to be greater than the last ID by the
    /// caller or checked here).
    pub fn append(
        &mut self,
        id: StreamId,
        fields: &[&[u8]],
        limits: NodeLimits,
    ) -> Result<(), AppendError> {
        if id <= self.last_id {
            return Err(AppendError::NotGreater);
        }
        let total: usize = fields.iter().map(|f| f.len()).sum();
        if total > LISTPACK_MAX_SIZE {
            return Err(AppendError::TooLarge);
        }
        let max_bytes = if limits.max_bytes == 0 || limits.max_bytes > LISTPACK_MAX_SIZE {
            LISTPACK_MAX_SIZE
        } else {
            limits.max_bytes
        };
        let numfields = fields.len() / 2;
        let names: Vec<&[u8]> = fields.iter().step_by(2).copied().collect();
        let tail = self.nodes.iter_mut().next_back();
        let use_tail = match &tail {
            Some((_, n)) => {
                !(n.bytes + total >= max_bytes
                    || (limits.max_entries > 0 && n.live + n.deleted >= limits.max_entries))
            }
            None => false,
        };
        match tail {
            Some((master, node)) if use_tail => {
                let same = node.master_fields.len() == numfields
                    && node
                        .master_fields
                        .iter()
                        .zip(&names)
                        .all(|(a, b)| a.as_slice() == *b);
                let mut sz = lp_int_size(if same { 2 } else { 0 })
                    + lp_int_size((id.ms - master.ms) as i64)
                    + lp_int_size(id.seq.wrapping_sub(master.seq) as i64);
                let mut count = 3 + numfields;
                if !same {
                    sz += lp_int_size(numfields as i64);
                    sz += names.iter().map(|f| lp_string_size(f)).sum::<usize>();
                    count += numfields + 1;
                }
                sz += fields
                    .iter()
                    .skip(1)
                    .step_by(2)
                    .map(|v| lp_string_size(v))
                    .sum::<usize>();
                sz += lp_int_size(count as i64);
                node.bytes += sz;
                node.live += 1;
                node.last_id = id;
            }
            _ => {
                // A new node: header, the master entry (count, deleted, fields, 0 terminator),
                // then the entry itself with the same fields (flags, two deltas, values, count).
                let mut sz = 7 + lp_int_size(1) + lp_int_size(0) + lp_int_size(numfields as i64);
                sz += names.iter().map(|f| lp_string_size(f)).sum::<usize>();
                sz += lp_int_size(0);
                sz += lp_int_size(2) + 2 * lp_int_size(0);
                sz += fields
                    .iter()
                    .skip(1)
                    .step_by(2)
                    .map(|v| lp_string_size(v))
                    .sum::<usize>();
                sz += lp_int_size((3 + numfields) as i64);
                self.nodes.insert(
                    id,
                    Node {
                        live: 1,
                        deleted: 0,
                        bytes: sz,
                        master_fields: names.iter().map(|f| CompactBytes::new(f)).collect(),
                        last_id: id,
                    },
                );
            }
        }
        self.entries
            .insert(id, fields.iter().map(|f| CompactBytes::new(f)).collect());
        self.entries_added += 1;
        self.last_id = id;
        if self.entries.len() == 1 {
            self.first_id = id;
        }
        Ok(())
    }

    /// The master ID of the node holding `id`.
    fn node_of(&self, id: StreamId) -> Option<StreamId> {
        self.nodes.range(..=id).next_back().map(|(k, _)| *k)
    }

    /// XDEL one entry: true if it existed. Updates max-deleted-id and first-id.
    pub fn delete(&mut self, id: StreamId) -> bool {
        if self.entries.remove(&id).is_none() {
            return false;
        }
        if let Some(master) = self.node_of(id) {
            let remove = match self.nodes.get_mut(&master) {
                Some(n) => {
                    n.live = n.live.saturating_sub(1);
                    n.deleted += 1;
                    n.live == 0
                }
                None => false,
            };
            if remove {
                self.nodes.remove(&master);
            }
        }
        if id > self.max_deleted_id {
            self.max_deleted_id = id;
        }
        if self.entries.is_empty() || id == self.first_id {
            self.refresh_first_id();
        }
        true
    }

    /// Redis `streamTrim`: remove entries from the head by `trim`; with `approx` only whole
    /// nodes; `limit` (0 = none) caps the entries removed. Returns how many were removed.
    pub fn trim(&mut self, trim: Trim, approx: bool, limit: u64) -> u64 {
        let mut deleted = 0u64;
        loop {
            if let Trim::MaxLen(max) = trim {
                if self.entries.len() as u64 <= max {
                    break;
                }
            }
            let Some((&master, node)) = self.nodes.iter().next() else {
                break;
            };
            let entries = node.live;
            if limit > 0 && deleted + entries > limit {
                break;
            }
            let remove_node = match trim {
                Trim::MaxLen(max) => self.entries.len() as u64 - entries >= max,
                Trim::MinId(min) => node.last_id < min,
            };
            if remove_node {
                let next = self
                    .nodes
                    .range((
                        std::ops::Bound::Excluded(master),
                        std::ops::Bound::Unbounded,
                    ))
                    .next()
                    .map(|(k, _)| *k);
                self.nodes.remove(&master);
                match next {
                    Some(n) => {
                        let keep = self.entries.split_off(&n);
                        self.entries = keep;
                    }
                    None => self.entries.clear(),
                }
                deleted += entries;
                continue;
            }
            if approx {
                break;
            }
            // Trim inside the node, entry by entry, then stop (as Redis does).
            let mut removed = 0u64;
            loop {
                let stop = match trim {
                    Trim::MaxLen(max) => self.entries.len() as u64 <= max,
                    Trim::MinId(min) => self
                        .entries
                        .first_key_value()
                        .is_none_or(|(k, _)| *k >= min),
                };
                if stop {
                    break;
                }
                self.entries.pop_first();
                removed += 1;
            }
            if let Some(n) = self.nodes.get_mut(&master) {
                n.live -= removed;
                n.deleted += removed;
            }
            deleted += removed;
            break;
        }
        if self.entries.is_empty() {
            self.first_id = StreamId::MIN;
        } else if deleted > 0 {
            self.refresh_first_id();
        }
        deleted
    }

    /// Entries with start <= id <= end, forwards or backwards, at most `count` (0 = all).
    pub fn range(
        &self,
        start: StreamId,
        end: StreamId,
        rev: bool,
        count: usize,
    ) -> Vec<(StreamId, &[CompactBytes])> {
        if start > end {
            return Vec::new();
        }
        let it = self.entries.range(start..=end).map(|(k, v)| (*k, &v[..]));
        let limit = if count == 0 { usize::MAX } else { count };
        if rev {
            it.rev().take(limit).collect()
        } else {
            it.take(limit).collect()
        }
    }

    /// Redis `streamRangeHasTombstones` (start/end None = unbounded).
    pub fn range_has_tombstones(&self, start: Option<StreamId>, end: Option<StreamId>) -> bool {
        if self.entries.is_empty() || self.max_deleted_id.is_zero() {
            return false;
        }
        if self.first_id > self.max_deleted_id {
            return false;
        }
        let s = start.unwrap_or(StreamId::MIN);
        let e = end.unwrap_or(StreamId::MAX);
        s <= self.max_deleted_id && self.max_deleted_id <= e
    }

    /// Redis `streamEstimateDistanceFromFirstEverEntry`: the logical read counter of `id`, or
    /// [`INVALID_ENTRIES_READ`] when it cannot be known.
    pub fn estimate_distance(&self, id: StreamId) -> i64 {
        if self.entries_added == 0 {
            return 0;
        }
        let added = self.entries_added as i64;
        let len = self.entries.len() as i64;
        if self.entries.is_empty() && id <= self.last_id {
            return added;
        }
        match id.cmp(&self.last_id) {
            std::cmp::Ordering::Equal => return added,
            std::cmp::Ordering::Greater => return INVALID_ENTRIES_READ,
            std::cmp::Ordering::Less => {}
        }
        if self.max_deleted_id.is_zero() || self.max_deleted_id < self.first_id {
            match id.cmp(&self.first_id) {
                std::cmp::Ordering::Less => return added - len,
                std::cmp::Ordering::Equal => return added - len + 1,
                std::cmp::Ordering::Greater => {}
            }
        }
        INVALID_ENTRIES_READ
    }

    /// A group's lag (entries not yet delivered), None when it cannot be known.
    pub fn group_lag(&self, g: &ConsumerGroup) -> Option<i64> {
        if self.entries_added == 0 {
            return Some(0);
        }
        if g.entries_read != INVALID_ENTRIES_READ
            && !self.range_has_tombstones(Some(g.last_id), None)
        {
            return Some(self.entries_added as i64 - g.entries_read);
        }
        let read = self.estimate_distance(g.last_id);
        if read != INVALID_ENTRIES_READ {
            Some(self.entries_added as i64 - read)
        } else {
            None
        }
    }

    /// Deliver `id` to a group: advance its last ID and read counter (Redis does this in
    /// `streamReplyWithRange` for each entry served to a group). True if the last ID moved.
    pub fn advance_group(&mut self, group: &[u8], id: StreamId) -> bool {
        let tombstones = self.range_has_tombstones(Some(id), None);
        let estimate = self.estimate_distance(id);
        let added = self.entries_added;
        let Some(g) = self.groups.get_mut(group) else {
            return false;
        };
        if id <= g.last_id {
            return false;
        }
        if g.entries_read != INVALID_ENTRIES_READ && !tombstones {
            g.entries_read += 1;
        } else if added > 0 {
            g.entries_read = estimate;
        }
        g.last_id = id;
        true
    }

    /// Rebuild the node bookkeeping from scratch, one node per `limits` (used after loading a
    /// payload whose layout is not kept, and by tests).
    pub fn rebuild_nodes(&mut self, limits: NodeLimits) {
        let entries = std::mem::take(&mut self.entries);
        let (last, added, first) = (self.last_id, self.entries_added, self.first_id);
        self.nodes.clear();
        self.last_id = StreamId::MIN;
        for (id, fv) in &entries {
            let refs: Vec<&[u8]> = fv.iter().map(|f| f.as_slice()).collect();
            // Cannot fail: the IDs are increasing and the sizes were accepted before.
            let _ = self.append(*id, &refs, limits);
        }
        self.entries = entries;
        self.last_id = last;
        self.entries_added = added;
        self.first_id = first;
    }

    pub fn memory_estimate(&self) -> usize {
        let entries: usize = self
            .entries
            .values()
            .map(|fv| 48 + fv.iter().map(|f| 16 + f.heap_size()).sum::<usize>())
            .sum();
        let groups: usize = self
            .groups
            .values()
            .map(|g| 96 + g.pel.len() * 80 + g.consumers.len() * 96)
            .sum();
        128 + entries + self.nodes.len() * 96 + groups
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add(s: &mut StreamValue, ms: u64, limits: NodeLimits) {
        s.append(StreamId::new(ms, 0), &[b"item", b"v"], limits)
            .unwrap();
    }

    #[test]
    fn approximate_trim_removes_only_whole_nodes() {
        let limits = NodeLimits {
            max_entries: 10,
            max_bytes: 4096,
        };
        let mut s = StreamValue::default();
        for ms in 1..=25 {
            add(&mut s, ms, limits);
        }
        assert_eq!(s.nodes.len(), 3);
        // 25 entries, keep ~12: the first node (10) can go, the second would leave 5 < 12.
        assert_eq!(s.trim(Trim::MaxLen(12), true, 0), 10);
        assert_eq!(s.len(), 15);
        assert_eq!(s.first_id, StreamId::new(11, 0));
        // Exact trimming goes inside the node.
        assert_eq!(s.trim(Trim::MaxLen(12), false, 0), 3);
        assert_eq!(s.first_id, StreamId::new(14, 0));
        assert_eq!(s.nodes.values().next().unwrap().deleted, 3);
    }

    #[test]
    fn deleting_a_nodes_last_entry_drops_the_node() {
        let limits = NodeLimits {
            max_entries: 2,
            max_bytes: 4096,
        };
        let mut s = StreamValue::default();
        for ms in 1..=4 {
            add(&mut s, ms, limits);
        }
        assert!(s.delete(StreamId::new(1, 0)));
        assert!(s.delete(StreamId::new(2, 0)));
        assert_eq!(s.nodes.len(), 1);
        assert_eq!(s.max_deleted_id, StreamId::new(2, 0));
        assert_eq!(s.first_id, StreamId::new(3, 0));
        assert!(!s.delete(StreamId::new(2, 0)));
    }

    #[test]
    fn ids_step_and_format() {
        assert_eq!(StreamId::MAX.incr(), None);
        assert_eq!(StreamId::new(1, u64::MAX).incr(), Some(StreamId::new(2, 0)));
        assert_eq!(StreamId::MIN.decr(), None);
        assert_eq!(StreamId::new(2, 0).decr(), Some(StreamId::new(1, u64::MAX)));
        assert_eq!(StreamId::new(5, 7).to_string(), "5-7");
        let b = StreamId::new(5, 7).to_be_bytes();
        assert_eq!(StreamId::from_be_bytes(&b), Some(StreamId::new(5, 7)));
    }
}
