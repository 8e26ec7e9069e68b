//! Sorted set values: members ordered by (score, member), packed in one buffer while small (as
//! Redis's listpack), a dict plus an order-statistic tree once past zset-max-listpack-*. Pure.
//!
//! The packed form is a buffer of (score, member) entries in ascending (score, member) order:
//! the score as a LEB128 number whose low bit says which form follows (1: the rest is a zigzag
//! integer, for whole scores of magnitude below 2^53, the usual case, one or two bytes; 0: the
//! 8 bytes of an f64 follow), then the member as a length-prefixed entry. Every operation walks
//! it (Redis walks its listpack the same way); at the default limits (128 members of at most
//! 64 bytes) that is faster than chasing tree nodes. Position `i` of the packed form is rank `i`,
//! which is also Redis's listpack order for ZSCAN and ZRANDMEMBER.
//!
//! The big form shares the members between two structures:
//! - `dict`, an insertion-ordered map member → score. Deletions swap the last entry into the
//!   hole, so ZSCAN walks it with [`super::db::scan_positions`] exactly like SCAN walks keys, and
//!   ZRANDMEMBER picks positions in O(1).
//! - an order-statistic treap (a randomised balanced binary search tree whose nodes carry their
//!   subtree size) ordered by (score, member), kept in an arena of nodes. Subtree sizes give
//!   rank → member and member → rank in O(log n), which is what Redis's skiplist spans give.
//!
//! A set converts to the big form once past the thresholds and never back (as Redis).
//! Scores are never NaN (commands reject NaN before they get here), so `partial_cmp` is total on
//! them; `-0.0` and `0.0` compare equal as in Redis (C `<`/`>` on doubles).

use std::cmp::Ordering;

use indexmap::IndexMap;

use super::compact::CompactBytes;
use super::hash::FastState;
use super::packed;

const NIL: u32 = u32::MAX;

#[derive(Debug, Clone)]
struct Node {
    member: CompactBytes,
    score: f64,
    left: u32,
    right: u32,
    priority: u32,
    size: u32,
}

#[derive(Debug, Clone)]
struct Tree {
    dict: IndexMap<CompactBytes, f64, FastState>,
    nodes: Vec<Node>,
    free: Vec<u32>,
    root: u32,
    /// xorshift state for node priorities: any sequence works for balance, and a fixed seed
    /// keeps the structure deterministic (useful when debugging).
    rng: u32,
}

impl Default for Tree {
    fn default() -> Self {
        Tree {
            dict: IndexMap::default(),
            nodes: Vec::new(),
            free: Vec::new(),
            root: NIL,
            rng: 0x9E37_79B9,
        }
    }
}

/// Redis's order: score first, then member bytes.
fn cmp_key(score_a: f64, member_a: &[u8], score_b: f64, member_b: &[u8]) -> Ordering {
    score_a
        .partial_cmp(&score_b)
        .unwrap_or(Ordering::Equal)
        .then_with(|| member_a.cmp(member_b))
}

impl Tree {
    pub fn len(&self) -> usize {
        self.dict.len()
    }

    fn size(&self, n: u32) -> u32 {
        if n == NIL {
            0
        } else {
            self.nodes[n as usize].size
        }
    }

    fn fix(&mut self, n: u32) {
        let (l, r) = {
            let node = &self.nodes[n as usize];
            (node.left, node.right)
        };
        self.nodes[n as usize].size = 1 + self.size(l) + self.size(r);
    }

    fn next_priority(&mut self) -> u32 {
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.rng = x;
        x
    }

    /// Split `t` into (nodes ordered before (score, member), the rest).
    fn split(&mut self, t: u32, score: f64, member: &[u8]) -> (u32, u32) {
        if t == NIL {
            return (NIL, NIL);
        }
        let goes_left = {
            let n = &self.nodes[t as usize];
            cmp_key(n.score, &n.member, score, member) == Ordering::Less
        };
        if goes_left {
            let right = self.nodes[t as usize].right;
            let (a, b) = self.split(right, score, member);
            self.nodes[t as usize].right = a;
            self.fix(t);
            (t, b)
        } else {
            let left = self.nodes[t as usize].left;
            let (a, b) = self.split(left, score, member);
            self.nodes[t as usize].left = b;
            self.fix(t);
            (a, t)
        }
    }

    /// Join two treaps where every node of `a` orders before every node of `b`.
    fn merge(&mut self, a: u32, b: u32) -> u32 {
        if a == NIL {
            return b;
        }
        if b == NIL {
            return a;
        }
        if self.nodes[a as usize].priority > self.nodes[b as usize].priority {
            let ar = self.nodes[a as usize].right;
            let m = self.merge(ar, b);
            self.nodes[a as usize].right = m;
            self.fix(a);
            a
        } else {
            let bl = self.nodes[b as usize].left;
            let m = self.merge(a, bl);
            self.nodes[b as usize].left = m;
            self.fix(b);
            b
        }
    }

    fn tree_insert(&mut self, member: CompactBytes, score: f64) {
        let priority = self.next_priority();
        let node = Node {
            member: member.clone(),
            score,
            left: NIL,
            right: NIL,
            priority,
            size: 1,
        };
        let idx = match self.free.pop() {
            Some(i) => {
                self.nodes[i as usize] = node;
                i
            }
            None => {
                self.nodes.push(node);
                (self.nodes.len() - 1) as u32
            }
        };
        let (l, r) = self.split(self.root, score, &member);
        let l = self.merge(l, idx);
        self.root = self.merge(l, r);
    }

    fn tree_remove(&mut self, t: u32, score: f64, member: &[u8]) -> u32 {
        if t == NIL {
            return NIL;
        }
        let ord = {
            let n = &self.nodes[t as usize];
            cmp_key(score, member, n.score, &n.member)
        };
        match ord {
            Ordering::Equal => {
                let (l, r) = (self.nodes[t as usize].left, self.nodes[t as usize].right);
                self.nodes[t as usize].member = CompactBytes::empty();
                self.free.push(t);
                self.merge(l, r)
            }
            Ordering::Less => {
                let l = self.nodes[t as usize].left;
                let nl = self.tree_remove(l, score, member);
                self.nodes[t as usize].left = nl;
                self.fix(t);
                t
            }
            Ordering::Greater => {
                let r = self.nodes[t as usize].right;
                let nr = self.tree_remove(r, score, member);
                self.nodes[t as usize].right = nr;
                self.fix(t);
                t
            }
        }
    }

    /// Add or update a member; returns true if it was new.
    pub fn insert(&mut self, member: CompactBytes, score: f64) -> bool {
        if let Some(old) = self.dict.get(member.as_slice()).copied() {
            // Same position in the order: only the stored score bits may differ (-0 vs 0).
            if old.total_cmp(&score) == Ordering::Equal {
                return false;
            }
            self.root = self.tree_remove(self.root, old, &member);
            self.tree_insert(member.clone(), score);
            self.dict.insert(member, score);
            return false;
        }
        self.tree_insert(member.clone(), score);
        self.dict.insert(member, score);
        true
    }

    /// Remove a member; returns its score.
    pub fn remove(&mut self, member: &[u8]) -> Option<f64> {
        let score = self.dict.swap_remove(member)?;
        self.root = self.tree_remove(self.root, score, member);
        if self.dict.is_empty() {
            self.nodes.clear();
            self.free.clear();
            self.root = NIL;
        }
        Some(score)
    }

    pub fn score(&self, member: &[u8]) -> Option<f64> {
        self.dict.get(member).copied()
    }

    /// 0-based rank of `member` in ascending order.
    pub fn rank(&self, member: &[u8]) -> Option<usize> {
        let score = self.score(member)?;
        Some(self.count_before(|s, m| cmp_key(s, m, score, member) == Ordering::Less))
    }

    /// How many members satisfy `before`, a predicate true for a prefix of the order (e.g.
    /// "score < min"). O(log n).
    pub fn count_before(&self, before: impl Fn(f64, &[u8]) -> bool) -> usize {
        let mut t = self.root;
        let mut count = 0usize;
        while t != NIL {
            let n = &self.nodes[t as usize];
            if before(n.score, &n.member) {
                count += self.size(n.left) as usize + 1;
                t = n.right;
            } else {
                t = n.left;
            }
        }
        count
    }

    /// The member at 0-based ascending rank `i`.
    pub fn by_rank(&self, mut i: usize) -> Option<(&[u8], f64)> {
        let mut t = self.root;
        while t != NIL {
            let n = &self.nodes[t as usize];
            let ls = self.size(n.left) as usize;
            match i.cmp(&ls) {
                Ordering::Less => t = n.left,
                Ordering::Equal => return Some((n.member.as_slice(), n.score)),
                Ordering::Greater => {
                    i -= ls + 1;
                    t = n.right;
                }
            }
        }
        None
    }

    /// Members with ascending ranks in `start..end`, in order. O(log n + (end - start)).
    pub fn range(&self, start: usize, end: usize) -> Vec<(CompactBytes, f64)> {
        let end = end.min(self.len());
        let mut out = Vec::with_capacity(end.saturating_sub(start));
        if start < end {
            self.collect_range(self.root, 0, start, end, &mut out);
        }
        out
    }

    fn collect_range(
        &self,
        t: u32,
        offset: usize,
        start: usize,
        end: usize,
        out: &mut Vec<(CompactBytes, f64)>,
    ) {
        if t == NIL {
            return;
        }
        let n = &self.nodes[t as usize];
        let ls = self.size(n.left) as usize;
        let here = offset + ls;
        if start < here {
            self.collect_range(n.left, offset, start, end, out);
        }
        if start <= here && here < end {
            out.push((n.member.clone(), n.score));
        }
        if here + 1 < end {
            self.collect_range(n.right, here + 1, start, end, out);
        }
    }

    /// Members in (score, member) order.
    pub fn iter(&self) -> InOrder<'_> {
        let mut stack = Vec::new();
        let mut t = self.root;
        while t != NIL {
            stack.push(t);
            t = self.nodes[t as usize].left;
        }
        InOrder { zset: self, stack }
    }

    /// Members in insertion-ordered dict order (position `i`), for ZSCAN and ZRANDMEMBER.
    pub fn dict_index(&self, i: usize) -> Option<(&[u8], f64)> {
        self.dict.get_index(i).map(|(m, s)| (m.as_slice(), *s))
    }

    pub fn memory_estimate(&self) -> usize {
        64 + self
            .dict
            .keys()
            .map(|m| 40 + std::mem::size_of::<Node>() + 2 * m.heap_size())
            .sum::<usize>()
    }
}

pub struct InOrder<'a> {
    zset: &'a Tree,
    stack: Vec<u32>,
}

impl<'a> Iterator for InOrder<'a> {
    type Item = (&'a [u8], f64);
    fn next(&mut self) -> Option<Self::Item> {
        let t = self.stack.pop()?;
        let nodes = &self.zset.nodes;
        let n = &nodes[t as usize];
        let mut c = n.right;
        while c != NIL {
            self.stack.push(c);
            c = nodes[c as usize].left;
        }
        Some((n.member.as_slice(), n.score))
    }
}

/// Redis's defaults for zset-max-listpack-entries/value, used by [`ZSetValue::insert`] where no
/// configuration is at hand (loaders, temporary results); commands use
/// [`ZSetValue::insert_limited`] with the configured values.
pub const DEFAULT_MAX_ENTRIES: usize = 128;
pub const DEFAULT_MAX_VALUE: usize = 64;

/// Whole scores below this magnitude are exact in an f64 and stored as integers.
const INT_SCORE_LIMIT: f64 = (1u64 << 53) as f64;

fn write_score(out: &mut Vec<u8>, score: f64) {
    let whole = score.fract() == 0.0 && score.abs() < INT_SCORE_LIMIT;
    // -0.0 is whole but is not the integer 0: it keeps the f64 form (only the tree holds one in
    // practice; a packed insert turns it into 0 as Redis's listpack does).
    if whole && !(score == 0.0 && score.is_sign_negative()) {
        let i = score as i64;
        let zigzag = ((i << 1) ^ (i >> 63)) as u64;
        packed::write_varint(out, (zigzag << 1) | 1);
    } else {
        out.push(0);
        out.extend_from_slice(&score.to_le_bytes());
    }
}

fn read_score(buf: &[u8], pos: &mut usize) -> f64 {
    let tag = packed::read_varint(buf, pos);
    if tag & 1 == 1 {
        let zigzag = tag >> 1;
        (((zigzag >> 1) as i64) ^ -((zigzag & 1) as i64)) as f64
    } else {
        let mut a = [0u8; 8];
        if let Some(b) = buf.get(*pos..*pos + 8) {
            a.copy_from_slice(b);
        }
        *pos += 8;
        f64::from_le_bytes(a)
    }
}

/// Iterator over a packed buffer's (member, score) entries, in ascending order.
pub struct PackedIter<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for PackedIter<'a> {
    type Item = (&'a [u8], f64);
    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.buf.len() {
            return None;
        }
        let score = read_score(self.buf, &mut self.pos);
        let member = packed::read_entry(self.buf, &mut self.pos);
        Some((member, score))
    }
}

/// The byte range and score of `member` in a packed buffer, or how many entries were walked
/// (all of them) when it is absent.
fn find_packed(buf: &[u8], member: &[u8]) -> Result<(std::ops::Range<usize>, f64), usize> {
    let mut it = PackedIter { buf, pos: 0 };
    let mut walked = 0;
    loop {
        let start = it.pos;
        let Some((m, s)) = it.next() else {
            return Err(walked);
        };
        if m == member {
            return Ok((start..it.pos, s));
        }
        walked += 1;
    }
}

/// 16 bytes, held in the keyspace entry itself (`Value::ZSet`), as for hashes: the packed
/// buffer's non-null pointer tells the two forms apart, and the count is a walk.
#[derive(Debug, Clone)]
pub struct ZSetValue {
    repr: Repr,
}

#[derive(Debug, Clone)]
enum Repr {
    Packed(Box<[u8]>),
    Tree(Box<Tree>),
}

impl Default for ZSetValue {
    fn default() -> Self {
        ZSetValue {
            repr: Repr::Packed(Box::default()),
        }
    }
}

/// Iterator over a sorted set's (member, score) entries in ascending (score, member) order.
pub enum Iter<'a> {
    Packed(PackedIter<'a>),
    Tree(InOrder<'a>),
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a [u8], f64);
    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Iter::Packed(it) => it.next(),
            Iter::Tree(it) => it.next(),
        }
    }
}

impl ZSetValue {
    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Packed(buf) => PackedIter { buf, pos: 0 }.count(),
            Repr::Tree(t) => t.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        match &self.repr {
            Repr::Packed(buf) => buf.is_empty(),
            Repr::Tree(t) => t.len() == 0,
        }
    }
    /// True while Redis would still hold this sorted set as a listpack (OBJECT ENCODING; ZSCAN
    /// replies in one call then).
    pub fn is_packed(&self) -> bool {
        matches!(self.repr, Repr::Packed(_))
    }

    /// Switch to the big form (Redis never converts back). Also used by commands that build a
    /// result Redis would keep as a skiplist.
    pub fn convert(&mut self) {
        if let Repr::Packed(buf) = &self.repr {
            let mut t = Tree::default();
            for (m, s) in (PackedIter { buf, pos: 0 }) {
                t.insert(CompactBytes::new(m), s);
            }
            self.repr = Repr::Tree(Box::new(t));
        }
    }

    /// Add or update a member with Redis's default thresholds; returns true if it was new.
    pub fn insert(&mut self, member: CompactBytes, score: f64) -> bool {
        if let Repr::Tree(t) = &mut self.repr {
            return t.insert(member, score);
        }
        self.insert_limited(&member, score, DEFAULT_MAX_ENTRIES, DEFAULT_MAX_VALUE)
    }

    /// Add or update a member; returns true if it was new. `max_entries`/`max_value` are
    /// zset-max-listpack-entries/value, checked before the insert as Redis's `zsetAdd` does: a
    /// member that would not fit goes into the converted set (so a `-0` score keeps its sign
    /// there, while the packed form, like Redis's listpack, stores it as `0`).
    pub fn insert_limited(
        &mut self,
        member: &[u8],
        score: f64,
        max_entries: usize,
        max_value: usize,
    ) -> bool {
        if member.len() > max_value {
            self.convert();
        }
        if let Repr::Packed(buf) = &mut self.repr {
            let old = find_packed(buf, member);
            if old.as_ref().is_err_and(|&n| n >= max_entries) {
                self.convert();
            } else {
                let score = if score == 0.0 { 0.0 } else { score };
                let new = old.is_err();
                if let Ok((range, old_score)) = old {
                    if old_score.total_cmp(&score) == Ordering::Equal {
                        return false;
                    }
                    packed::splice(buf, range, b"");
                }
                // The first entry ordered after the new one is where it goes.
                let mut it = PackedIter { buf, pos: 0 };
                let mut at = buf.len();
                loop {
                    let start = it.pos;
                    let Some((m, s)) = it.next() else { break };
                    if cmp_key(s, m, score, member) == Ordering::Greater {
                        at = start;
                        break;
                    }
                }
                let mut enc = Vec::with_capacity(10 + packed::entry_len(member));
                write_score(&mut enc, score);
                packed::write_entry(&mut enc, member);
                packed::splice(buf, at..at, &enc);
                return new;
            }
        }
        let Repr::Tree(t) = &mut self.repr else {
            unreachable!("converted above")
        };
        t.insert(CompactBytes::new(member), score)
    }

    /// Remove a member; returns its score.
    pub fn remove(&mut self, member: &[u8]) -> Option<f64> {
        match &mut self.repr {
            Repr::Packed(buf) => {
                let (range, score) = find_packed(buf, member).ok()?;
                packed::splice(buf, range, b"");
                Some(score)
            }
            Repr::Tree(t) => t.remove(member),
        }
    }

    pub fn score(&self, member: &[u8]) -> Option<f64> {
        match &self.repr {
            Repr::Packed(buf) => find_packed(buf, member).ok().map(|(_, s)| s),
            Repr::Tree(t) => t.score(member),
        }
    }

    /// 0-based rank of `member` in ascending order.
    pub fn rank(&self, member: &[u8]) -> Option<usize> {
        match &self.repr {
            Repr::Packed(_) => self.iter().position(|(m, _)| m == member),
            Repr::Tree(t) => t.rank(member),
        }
    }

    /// How many members satisfy `before`, a predicate true for a prefix of the order (e.g.
    /// "score < min"). O(log n) in the tree, a walk of the prefix while packed.
    pub fn count_before(&self, before: impl Fn(f64, &[u8]) -> bool) -> usize {
        match &self.repr {
            Repr::Packed(_) => self.iter().take_while(|(m, s)| before(*s, m)).count(),
            Repr::Tree(t) => t.count_before(before),
        }
    }

    /// The member at 0-based ascending rank `i`.
    pub fn by_rank(&self, i: usize) -> Option<(&[u8], f64)> {
        match &self.repr {
            Repr::Packed(_) => self.iter().nth(i),
            Repr::Tree(t) => t.by_rank(i),
        }
    }

    /// Members with ascending ranks in `start..end`, in order.
    pub fn range(&self, start: usize, end: usize) -> Vec<(CompactBytes, f64)> {
        match &self.repr {
            Repr::Packed(_) => self
                .iter()
                .take(end)
                .skip(start)
                .map(|(m, s)| (CompactBytes::new(m), s))
                .collect(),
            Repr::Tree(t) => t.range(start, end),
        }
    }

    /// Members in (score, member) order.
    pub fn iter(&self) -> Iter<'_> {
        match &self.repr {
            Repr::Packed(buf) => Iter::Packed(PackedIter { buf, pos: 0 }),
            Repr::Tree(t) => Iter::Tree(t.iter()),
        }
    }

    /// The member at position `i` of the scan order (ZSCAN, ZRANDMEMBER): the rank while
    /// packed (Redis's listpack order), the dict's insertion order (O(1)) once converted.
    pub fn dict_index(&self, i: usize) -> Option<(&[u8], f64)> {
        match &self.repr {
            Repr::Packed(_) => self.iter().nth(i),
            Repr::Tree(t) => t.dict_index(i),
        }
    }

    /// The entries at `positions` of the scan order: one walk of a packed buffer however many
    /// positions are asked for (ZRANDMEMBER with a negative count may ask for millions).
    pub fn entries_at(&self, positions: &[usize]) -> Vec<(CompactBytes, f64)> {
        let own = |(m, s): (&[u8], f64)| (CompactBytes::new(m), s);
        match &self.repr {
            Repr::Packed(_) => {
                let all: Vec<_> = self.iter().collect();
                positions
                    .iter()
                    .filter_map(|&i| all.get(i).copied().map(own))
                    .collect()
            }
            Repr::Tree(t) => positions
                .iter()
                .filter_map(|&i| t.dict_index(i).map(own))
                .collect(),
        }
    }

    /// Where reading this sorted set starts (for prefetching; see [`super::prefetch`]).
    pub fn heap_ptr(&self) -> *const u8 {
        match &self.repr {
            Repr::Packed(buf) => buf.as_ptr(),
            Repr::Tree(t) => (&**t as *const Tree).cast(),
        }
    }

    /// An estimate of the bytes this sorted set occupies (MEMORY USAGE, eviction).
    pub fn memory_estimate(&self) -> usize {
        match &self.repr {
            Repr::Packed(buf) => 16 + 8 + buf.len(),
            Repr::Tree(t) => t.memory_estimate(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(z: &ZSetValue) -> Vec<(Vec<u8>, f64)> {
        z.iter().map(|(m, s)| (m.to_vec(), s)).collect()
    }

    #[test]
    fn order_rank_and_updates() {
        let mut z = ZSetValue::default();
        assert!(z.insert(CompactBytes::new(b"b"), 2.0));
        assert!(z.insert(CompactBytes::new(b"a"), 2.0));
        assert!(z.insert(CompactBytes::new(b"c"), 1.0));
        assert!(!z.insert(CompactBytes::new(b"c"), 3.0));
        assert_eq!(
            members(&z),
            vec![
                (b"a".to_vec(), 2.0),
                (b"b".to_vec(), 2.0),
                (b"c".to_vec(), 3.0)
            ]
        );
        assert_eq!(z.rank(b"b"), Some(1));
        assert_eq!(z.by_rank(2).map(|(m, _)| m.to_vec()), Some(b"c".to_vec()));
        assert_eq!(z.count_before(|s, _| s < 2.5), 2);
        assert_eq!(z.remove(b"a"), Some(2.0));
        assert_eq!(z.rank(b"c"), Some(1));
        assert_eq!(z.len(), 2);
    }

    /// The same random operations on a set kept packed (limits above its size) and on one
    /// converted at 128 members, checked against a model after every step that matters.
    fn random_operations(max_entries: usize, rng_seed: u64) -> ZSetValue {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(rng_seed);
        let mut z = ZSetValue::default();
        let mut model: std::collections::BTreeMap<Vec<u8>, f64> = Default::default();
        for _ in 0..5000 {
            let m = format!("m{}", rng.gen_range(0..300)).into_bytes();
            if rng.gen_bool(0.6) {
                // Whole and fractional scores: both packed score forms.
                let s = rng.gen_range(-20..20) as f64 / if rng.gen_bool(0.3) { 4.0 } else { 1.0 };
                let new = !model.contains_key(&m);
                assert_eq!(z.insert_limited(&m, s, max_entries, 64), new);
                model.insert(m, s);
            } else {
                assert_eq!(z.remove(&m), model.remove(&m));
            }
            assert_eq!(z.len(), model.len());
        }
        let mut expected: Vec<(Vec<u8>, f64)> = model.into_iter().collect();
        expected.sort_by(|a, b| cmp_key(a.1, &a.0, b.1, &b.0));
        assert_eq!(members(&z), expected);
        for (i, (m, s)) in expected.iter().enumerate() {
            assert_eq!(z.rank(m), Some(i));
            assert_eq!(z.score(m), Some(*s));
            assert_eq!(z.by_rank(i).map(|(x, _)| x.to_vec()), Some(m.clone()));
        }
        let mid: Vec<Vec<u8>> = z
            .range(5, 17)
            .into_iter()
            .map(|(m, _)| m.to_vec())
            .collect();
        let want: Vec<Vec<u8>> = expected[5..17].iter().map(|(m, _)| m.clone()).collect();
        assert_eq!(mid, want);
        assert_eq!(
            z.count_before(|s, _| s < 0.0),
            expected.iter().filter(|(_, s)| *s < 0.0).count()
        );
        z
    }

    #[test]
    fn matches_a_sorted_vector_under_random_operations() {
        assert!(random_operations(1000, 7).is_packed());
        assert!(!random_operations(128, 7).is_packed());
    }

    #[test]
    fn small_sets_are_packed_in_score_member_order() {
        assert_eq!(std::mem::size_of::<ZSetValue>(), 16);
        let mut z = ZSetValue::default();
        for (m, s) in [
            ("c", 1.5),
            ("a", 2.0),
            ("b", 2.0),
            ("z", -1.0),
            ("y", f64::INFINITY),
        ] {
            z.insert_limited(m.as_bytes(), s, 128, 64);
        }
        assert!(z.is_packed());
        let order: Vec<&[u8]> = z.iter().map(|(m, _)| m).collect();
        assert_eq!(order, [&b"z"[..], b"c", b"a", b"b", b"y"]);
        // Scan order of a packed set is its rank order (Redis's listpack order).
        assert_eq!(z.dict_index(4), Some((&b"y"[..], f64::INFINITY)));
        assert_eq!(
            z.entries_at(&[1, 1, 9]),
            vec![
                (CompactBytes::new(b"c"), 1.5),
                (CompactBytes::new(b"c"), 1.5)
            ]
        );
        // An update moves the member; an equal score is no change.
        assert!(!z.insert_limited(b"z", 3.0, 128, 64));
        assert_eq!(z.rank(b"z"), Some(3));
        assert!(!z.insert_limited(b"z", 3.0, 128, 64));
        assert_eq!(z.len(), 5);
    }

    #[test]
    fn packed_scores_round_trip_exactly() {
        let scores = [
            0.0,
            1.0,
            -1.0,
            0.1,
            -2.5e-300,
            1e300,
            f64::MAX,
            f64::MIN,
            f64::MIN_POSITIVE,
            (1u64 << 53) as f64,
            ((1u64 << 53) - 1) as f64,
            -(((1u64 << 53) - 1) as f64),
            f64::INFINITY,
            f64::NEG_INFINITY,
            -0.0,
        ];
        for s in scores {
            let mut buf = Vec::new();
            write_score(&mut buf, s);
            let mut pos = 0;
            let back = read_score(&buf, &mut pos);
            assert_eq!(back.to_bits(), s.to_bits(), "{s}");
            assert_eq!(pos, buf.len());
        }
        // Small whole scores take one byte.
        let mut buf = Vec::new();
        write_score(&mut buf, 17.0);
        assert_eq!(buf.len(), 1);
    }

    #[test]
    fn conversions_follow_the_limits_and_never_go_back() {
        let mut z = ZSetValue::default();
        for i in 0..3 {
            z.insert_limited(format!("m{i}").as_bytes(), i as f64, 3, 8);
        }
        assert!(z.is_packed());
        // Updating an existing member at the limit keeps it packed; a new one converts.
        z.insert_limited(b"m0", 10.0, 3, 8);
        assert!(z.is_packed());
        z.insert_limited(b"m3", 3.0, 3, 8);
        assert!(!z.is_packed());
        z.remove(b"m3");
        z.remove(b"m2");
        assert!(!z.is_packed());
        let order: Vec<&[u8]> = z.iter().map(|(m, _)| m).collect();
        assert_eq!(order, [&b"m1"[..], b"m0"]);
        // A long member converts too.
        let mut z = ZSetValue::default();
        z.insert_limited(b"short", 1.0, 3, 8);
        z.insert_limited(b"much too long", 1.0, 3, 8);
        assert!(!z.is_packed());
        assert_eq!(z.len(), 2);
    }

    #[test]
    fn negative_zero_is_zero_when_packed_and_keeps_its_sign_when_converted() {
        let mut z = ZSetValue::default();
        z.insert_limited(b"a", -0.0, 1, 64);
        assert!(z.score(b"a").is_some_and(|s| s.is_sign_positive()));
        // The second member does not fit: the set converts first, then takes it as given.
        z.insert_limited(b"b", -0.0, 1, 64);
        assert!(!z.is_packed());
        assert!(z.score(b"b").is_some_and(|s| s.is_sign_negative()));
    }
}
