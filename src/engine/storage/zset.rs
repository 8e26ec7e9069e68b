//! Sorted set values: members ordered by (score, member), with O(log n) rank operations. Pure.
//!
//! Two structures share the members:
//! - `dict`, an insertion-ordered map member → score. Deletions swap the last entry into the
//!   hole, so ZSCAN walks it with [`super::db::scan_positions`] exactly like SCAN walks keys, and
//!   ZRANDMEMBER picks positions in O(1).
//! - an order-statistic treap (a randomised balanced binary search tree whose nodes carry their
//!   subtree size) ordered by (score, member), kept in an arena of nodes. Subtree sizes give
//!   rank → member and member → rank in O(log n), which is what Redis's skiplist spans give.
//!
//! Scores are never NaN (commands reject NaN before they get here), so `partial_cmp` is total on
//! them; `-0.0` and `0.0` compare equal as in Redis (C `<`/`>` on doubles).

use std::cmp::Ordering;

use indexmap::IndexMap;

use super::compact::CompactBytes;
use super::hash::FastState;

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
pub struct ZSetValue {
    dict: IndexMap<CompactBytes, f64, FastState>,
    nodes: Vec<Node>,
    free: Vec<u32>,
    root: u32,
    /// xorshift state for node priorities: any sequence works for balance, and a fixed seed
    /// keeps the structure deterministic (useful when debugging).
    rng: u32,
    /// True once the set outgrew what Redis keeps as a listpack (zset-max-listpack-*); Redis
    /// never converts back, and the encoding decides the reply order of ZSCAN.
    pub converted: bool,
}

impl Default for ZSetValue {
    fn default() -> Self {
        ZSetValue {
            dict: IndexMap::default(),
            nodes: Vec::new(),
            free: Vec::new(),
            root: NIL,
            rng: 0x9E37_79B9,
            converted: false,
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

impl ZSetValue {
    pub fn len(&self) -> usize {
        self.dict.len()
    }
    pub fn is_empty(&self) -> bool {
        self.dict.is_empty()
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
    pub fn by_rank(&self, mut i: usize) -> Option<(&CompactBytes, f64)> {
        let mut t = self.root;
        while t != NIL {
            let n = &self.nodes[t as usize];
            let ls = self.size(n.left) as usize;
            match i.cmp(&ls) {
                Ordering::Less => t = n.left,
                Ordering::Equal => return Some((&n.member, n.score)),
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
    pub fn iter(&self) -> impl Iterator<Item = (&CompactBytes, f64)> {
        let mut stack = Vec::new();
        let mut t = self.root;
        while t != NIL {
            stack.push(t);
            t = self.nodes[t as usize].left;
        }
        InOrder { zset: self, stack }
    }

    /// Members in insertion-ordered dict order (position `i`), for ZSCAN and ZRANDMEMBER.
    pub fn dict_index(&self, i: usize) -> Option<(&CompactBytes, f64)> {
        self.dict.get_index(i).map(|(m, s)| (m, *s))
    }

    pub fn memory_estimate(&self) -> usize {
        64 + self
            .dict
            .keys()
            .map(|m| 40 + std::mem::size_of::<Node>() + 2 * m.heap_size())
            .sum::<usize>()
    }
}

struct InOrder<'a> {
    zset: &'a ZSetValue,
    stack: Vec<u32>,
}

impl<'a> Iterator for InOrder<'a> {
    type Item = (&'a CompactBytes, f64);
    fn next(&mut self) -> Option<Self::Item> {
        let t = self.stack.pop()?;
        let nodes = &self.zset.nodes;
        let n = &nodes[t as usize];
        let mut c = n.right;
        while c != NIL {
            self.stack.push(c);
            c = nodes[c as usize].left;
        }
        Some((&n.member, n.score))
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

    #[test]
    fn matches_a_sorted_vector_under_random_operations() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut z = ZSetValue::default();
        let mut model: std::collections::BTreeMap<Vec<u8>, f64> = Default::default();
        for _ in 0..5000 {
            let m = format!("m{}", rng.gen_range(0..300)).into_bytes();
            if rng.gen_bool(0.6) {
                let s = rng.gen_range(-20..20) as f64;
                z.insert(CompactBytes::new(&m), s);
                model.insert(m, s);
            } else {
                assert_eq!(z.remove(&m), model.remove(&m));
            }
        }
        let mut expected: Vec<(Vec<u8>, f64)> = model.into_iter().collect();
        expected.sort_by(|a, b| cmp_key(a.1, &a.0, b.1, &b.0));
        assert_eq!(members(&z), expected);
        for (i, (m, _)) in expected.iter().enumerate() {
            assert_eq!(z.rank(m), Some(i));
            assert_eq!(z.by_rank(i).map(|(x, _)| x.to_vec()), Some(m.clone()));
        }
        let mid: Vec<Vec<u8>> = z
            .range(5, 17)
            .into_iter()
            .map(|(m, _)| m.to_vec())
            .collect();
        let want: Vec<Vec<u8>> = expected[5..17].iter().map(|(m, _)| m.clone()).collect();
        assert_eq!(mid, want);
    }
}
