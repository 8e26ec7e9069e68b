//! Set values: unique byte strings, held as a sorted array of integers while Redis would keep an
//! intset, a hash table with O(1) random access (SRANDMEMBER, SPOP, SSCAN) after. Pure.
//!
//! Redis 7.0 keeps a set of integers (at most set-max-intset-entries) as a sorted intset and
//! returns it in ascending numeric order; a non-integer member or one member too many converts
//! it to a hash table, and it never converts back. The intset here is Redis's: one buffer,
//! a width byte (2, 4 or 8) then the members as little-endian integers of that width, ascending,
//! widened for all members when one needs more bytes. Lookups are a binary search; random
//! access by position is O(1). Members read back as their decimal text, which is exactly what
//! was added: only canonical integers (Redis's `string2ll`) go into an intset.

use std::borrow::Cow;

use indexmap::IndexSet;

use super::compact::CompactBytes;
use super::hash::FastState;
use crate::engine::storage::number::parse_i64_strict;

type Table = IndexSet<CompactBytes, FastState>;

/// Redis's default set-max-intset-entries, used where no configuration is at hand (loading an
/// RDB payload or a snapshot); the next write applies the configured limit.
pub const DEFAULT_MAX_INTSET: usize = 512;

#[derive(Debug, Clone)]
pub struct SetValue {
    repr: Repr,
}

#[derive(Debug, Clone)]
enum Repr {
    /// Empty, or a width byte then the members in ascending order.
    Ints(Box<[u8]>),
    Table(Box<Table>),
}

impl Default for SetValue {
    fn default() -> Self {
        SetValue {
            repr: Repr::Ints(Box::default()),
        }
    }
}

fn width_for(n: i64) -> usize {
    if i16::try_from(n).is_ok() {
        2
    } else if i32::try_from(n).is_ok() {
        4
    } else {
        8
    }
}

/// Read-only view of an intset buffer.
struct Ints<'a>(&'a [u8]);

impl Ints<'_> {
    fn width(&self) -> usize {
        self.0.first().map_or(2, |&w| w as usize)
    }
    fn len(&self) -> usize {
        self.0.len().saturating_sub(1) / self.width()
    }
    fn get(&self, i: usize) -> i64 {
        let w = self.width();
        let b = &self.0[1 + i * w..1 + (i + 1) * w];
        match w {
            2 => i16::from_le_bytes([b[0], b[1]]) as i64,
            4 => i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as i64,
            _ => {
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                i64::from_le_bytes(a)
            }
        }
    }
    /// Ok(position) when present, Err(insertion point) otherwise.
    fn search(&self, n: i64) -> Result<usize, usize> {
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            match self.get(mid).cmp(&n) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Ok(mid),
            }
        }
        Err(lo)
    }
}

fn push_int(out: &mut Vec<u8>, n: i64, w: usize) {
    out.extend_from_slice(&n.to_le_bytes()[..w]);
}

/// Decimal text of an integer, inline (at most 20 bytes: never allocates).
fn int_member(n: i64) -> CompactBytes {
    let mut buf = itoa::Buffer::new();
    CompactBytes::new(buf.format(n).as_bytes())
}

/// Iterator over a set's members: ascending numbers for an intset, the table's order after.
/// Intset members are built (inline, no allocation); table members are borrowed.
pub enum Iter<'a> {
    Ints { ints: &'a [u8], next: usize },
    Table(indexmap::set::Iter<'a, CompactBytes>),
}

impl<'a> Iterator for Iter<'a> {
    type Item = Cow<'a, CompactBytes>;
    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Iter::Ints { ints, next } => {
                let v = Ints(ints);
                if *next >= v.len() {
                    return None;
                }
                *next += 1;
                Some(Cow::Owned(int_member(v.get(*next - 1))))
            }
            Iter::Table(it) => it.next().map(Cow::Borrowed),
        }
    }
}

impl SetValue {
    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Ints(b) => Ints(b).len(),
            Repr::Table(t) => t.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// True while Redis would still hold this set as an intset.
    pub fn is_intset(&self) -> bool {
        matches!(self.repr, Repr::Ints(_))
    }

    /// Switch to the table form (Redis never converts back).
    fn convert(&mut self) {
        if let Repr::Ints(b) = &self.repr {
            let v = Ints(b);
            let mut t = Table::with_capacity_and_hasher(v.len() + 1, FastState::default());
            for i in 0..v.len() {
                t.insert(int_member(v.get(i)));
            }
            self.repr = Repr::Table(Box::new(t));
        }
    }

    /// Add a member; returns true if it is new. `max_intset` is set-max-intset-entries.
    pub fn insert(&mut self, member: &[u8], max_intset: usize) -> bool {
        if let Repr::Ints(buf) = &mut self.repr {
            match parse_i64_strict(member) {
                Some(n) => {
                    let v = Ints(buf);
                    let pos = match v.search(n) {
                        Ok(_) => return false,
                        Err(pos) => pos,
                    };
                    if v.len() < max_intset {
                        // Rebuild at the width every member needs (Redis's intsetUpgrade).
                        let w = v.width().max(width_for(n));
                        let w = if buf.is_empty() { width_for(n) } else { w };
                        let mut out = Vec::with_capacity(1 + (v.len() + 1) * w);
                        out.push(w as u8);
                        for i in 0..pos {
                            push_int(&mut out, v.get(i), w);
                        }
                        push_int(&mut out, n, w);
                        for i in pos..v.len() {
                            push_int(&mut out, v.get(i), w);
                        }
                        *buf = out.into_boxed_slice();
                        return true;
                    }
                    self.convert();
                }
                None => self.convert(),
            }
        }
        let Repr::Table(t) = &mut self.repr else {
            unreachable!("converted above")
        };
        t.insert(CompactBytes::new(member))
    }

    /// Insert with Redis's default threshold, for loaders; returns false on a duplicate.
    pub fn insert_loaded(&mut self, member: &[u8]) -> bool {
        self.insert(member, DEFAULT_MAX_INTSET)
    }

    pub fn contains(&self, member: &[u8]) -> bool {
        match &self.repr {
            Repr::Ints(b) => parse_i64_strict(member).is_some_and(|n| Ints(b).search(n).is_ok()),
            Repr::Table(t) => t.contains(member),
        }
    }

    pub fn remove(&mut self, member: &[u8]) -> bool {
        match &mut self.repr {
            Repr::Ints(buf) => {
                let Some(n) = parse_i64_strict(member) else {
                    return false;
                };
                let v = Ints(buf);
                let Ok(pos) = v.search(n) else {
                    return false;
                };
                let w = v.width();
                if v.len() == 1 {
                    *buf = Box::default();
                } else {
                    super::packed::splice(buf, 1 + pos * w..1 + (pos + 1) * w, b"");
                }
                true
            }
            Repr::Table(t) => t.swap_remove(member),
        }
    }

    /// Members in the order Redis returns them: ascending numbers for an intset, the container's
    /// order otherwise.
    pub fn iter(&self) -> Iter<'_> {
        match &self.repr {
            Repr::Ints(b) => Iter::Ints { ints: b, next: 0 },
            Repr::Table(t) => Iter::Table(t.iter()),
        }
    }

    /// [`Self::iter`], collected.
    pub fn ordered(&self) -> Vec<CompactBytes> {
        self.iter().map(Cow::into_owned).collect()
    }

    /// The member at position `i` of [`Self::iter`]'s order, O(1) in both forms (SRANDMEMBER,
    /// SPOP, SSCAN's position walk).
    pub fn get_index(&self, i: usize) -> Option<CompactBytes> {
        match &self.repr {
            Repr::Ints(b) => {
                let v = Ints(b);
                (i < v.len()).then(|| int_member(v.get(i)))
            }
            Repr::Table(t) => t.get_index(i).cloned(),
        }
    }

    /// An estimate of the bytes this set occupies (MEMORY USAGE, eviction).
    pub fn memory_estimate(&self) -> usize {
        match &self.repr {
            Repr::Ints(b) => 32 + 8 + b.len(),
            Repr::Table(t) => 64 + t.iter().map(|m| 32 + m.heap_size()).sum::<usize>(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(s: &SetValue) -> Vec<String> {
        s.iter()
            .map(|m| String::from_utf8_lossy(&m).into_owned())
            .collect()
    }

    #[test]
    fn integer_sets_are_ordered_numerically_until_converted() {
        let mut s = SetValue::default();
        for m in ["10", "-3", "2"] {
            assert!(s.insert(m.as_bytes(), 512));
        }
        assert!(!s.insert(b"2", 512));
        assert_eq!(members(&s), ["-3", "2", "10"]);
        assert_eq!(s.get_index(2).as_deref(), Some(&b"10"[..]));
        assert_eq!(s.get_index(3), None);
        assert!(s.contains(b"-3"));
        assert!(!s.contains(b"-03"));
        assert!(!s.contains(b"x"));
        s.insert(b"x", 512);
        assert!(!s.is_intset());
        assert!(s.contains(b"10") && s.contains(b"x"));
        s.remove(b"x");
        assert!(!s.is_intset());
        assert_eq!(s.len(), 3);
    }

    #[test]
    fn intsets_widen_and_keep_every_member() {
        let mut s = SetValue::default();
        let values = [5i64, -40_000, 3, i64::MAX, i64::MIN, 70_000, 0, -1];
        for v in values {
            assert!(s.insert(v.to_string().as_bytes(), 512));
        }
        let mut want: Vec<i64> = values.to_vec();
        want.sort_unstable();
        let got: Vec<i64> = members(&s).iter().map(|m| m.parse().unwrap()).collect();
        assert_eq!(got, want);
        for v in values {
            assert!(s.remove(v.to_string().as_bytes()));
        }
        assert!(s.is_empty() && s.is_intset());
        assert!(!s.remove(b"5"));
    }

    #[test]
    fn non_canonical_integers_and_too_many_members_convert() {
        let mut s = SetValue::default();
        s.insert(b"007", 512);
        assert!(!s.is_intset(), "leading zeros are not an integer to Redis");
        let mut s = SetValue::default();
        for i in 0..4 {
            s.insert(i.to_string().as_bytes(), 4);
        }
        assert!(s.is_intset());
        s.insert(b"4", 4);
        assert!(!s.is_intset());
        // The table starts from the intset's (ascending) order.
        assert_eq!(members(&s), ["0", "1", "2", "3", "4"]);
    }

    #[test]
    fn matches_a_model_under_random_operations() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let mut s = SetValue::default();
        let mut model = std::collections::BTreeSet::new();
        for _ in 0..3000 {
            let n: i64 = rng.gen_range(-70_000..70_000) / 7;
            let m = n.to_string();
            if rng.gen_bool(0.6) {
                assert_eq!(s.insert(m.as_bytes(), 10_000), model.insert(n));
            } else {
                assert_eq!(s.remove(m.as_bytes()), model.remove(&n));
            }
        }
        assert!(s.is_intset());
        let got: Vec<i64> = members(&s).iter().map(|m| m.parse().unwrap()).collect();
        assert_eq!(got, model.into_iter().collect::<Vec<_>>());
    }
}
