//! Set values: unique byte strings, held as a packed sorted run of integers while Redis would
//! keep an intset, a hash table with O(1) random access (SRANDMEMBER, SPOP, SSCAN) after. Pure.
//!
//! Redis 7.0 keeps a set of integers (at most set-max-intset-entries) as a sorted intset and
//! returns it in ascending numeric order; a non-integer member or one member too many converts
//! it to a hash table, and it never converts back. The small form here holds the same sorted
//! integers more densely than Redis's fixed-width array: LEB128 numbers, the first one
//! zigzag-encoded, each next one as its (positive) difference from the one before, so ten
//! neighbouring ids take 13 bytes instead of 48. Everything walks the run (Redis binary-searches
//! its intset; at <= 512 members a walk of one cache-friendly buffer costs about the same).
//! Members read back as their decimal text, which is exactly what was added: only canonical
//! integers (Redis's `string2ll`) go into the small form.

use std::borrow::Cow;

use indexmap::IndexSet;

use super::compact::CompactBytes;
use super::hash::FastState;
use super::packed;
use crate::engine::storage::number::parse_i64_strict;

type Table = IndexSet<CompactBytes, FastState>;

/// Redis's default set-max-intset-entries, used where no configuration is at hand (loading an
/// RDB payload or a snapshot); the next write applies the configured limit.
pub const DEFAULT_MAX_INTSET: usize = 512;

/// 16 bytes, held in the keyspace entry itself (`Value::Set`), as hashes and sorted sets.
#[derive(Debug, Clone)]
pub struct SetValue {
    repr: Repr,
}

#[derive(Debug, Clone)]
enum Repr {
    /// The members ascending, delta-encoded (see the module comment); empty for an empty set.
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

fn zigzag(n: i64) -> u64 {
    ((n << 1) ^ (n >> 63)) as u64
}

fn unzigzag(z: u64) -> i64 {
    ((z >> 1) as i64) ^ -((z & 1) as i64)
}

/// The encoding of `n` after `prev` (None: `n` is the first member).
fn encode_after(out: &mut Vec<u8>, prev: Option<i64>, n: i64) {
    match prev {
        None => packed::write_varint(out, zigzag(n)),
        // Ascending, so the true difference is in 1..2^64: wrapping arithmetic gives it exactly.
        Some(p) => packed::write_varint(out, n.wrapping_sub(p) as u64),
    }
}

/// Walk of a delta-encoded run: (byte offset of the member's encoding, member).
struct IntsIter<'a> {
    buf: &'a [u8],
    pos: usize,
    prev: Option<i64>,
}

impl<'a> IntsIter<'a> {
    fn new(buf: &'a [u8]) -> Self {
        IntsIter {
            buf,
            pos: 0,
            prev: None,
        }
    }
}

impl Iterator for IntsIter<'_> {
    type Item = (usize, i64);
    fn next(&mut self) -> Option<(usize, i64)> {
        if self.pos >= self.buf.len() {
            return None;
        }
        let at = self.pos;
        let raw = packed::read_varint(self.buf, &mut self.pos);
        let n = match self.prev {
            None => unzigzag(raw),
            Some(p) => p.wrapping_add(raw as i64),
        };
        self.prev = Some(n);
        Some((at, n))
    }
}

/// Where `n` is or would go in a run.
struct Place {
    /// The member before it.
    prev: Option<i64>,
    /// The first member >= n: its byte range and value.
    next: Option<(std::ops::Range<usize>, i64)>,
}

fn place(buf: &[u8], n: i64) -> Place {
    let mut it = IntsIter::new(buf);
    let mut prev = None;
    while let Some((at, v)) = it.next() {
        if v >= n {
            return Place {
                prev,
                next: Some((at..it.pos, v)),
            };
        }
        prev = Some(v);
    }
    Place { prev, next: None }
}

fn ints_len(buf: &[u8]) -> usize {
    // One final byte (high bit clear) per member.
    buf.iter().filter(|&&b| b < 0x80).count()
}

/// Decimal text of an integer, inline (at most 20 bytes: never allocates).
fn int_member(n: i64) -> CompactBytes {
    let mut buf = itoa::Buffer::new();
    CompactBytes::new(buf.format(n).as_bytes())
}

/// Iterator over a set's members: ascending numbers for an intset, the table's order after.
/// Intset members are built (inline, no allocation); table members are borrowed.
pub enum Iter<'a> {
    Ints(IntsIterPub<'a>),
    Table(indexmap::set::Iter<'a, CompactBytes>),
}

/// The small form's walk, as [`Iter`] exposes it.
pub struct IntsIterPub<'a>(IntsIter<'a>);

impl<'a> Iterator for Iter<'a> {
    type Item = Cow<'a, CompactBytes>;
    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Iter::Ints(it) => it.0.next().map(|(_, n)| Cow::Owned(int_member(n))),
            Iter::Table(it) => it.next().map(Cow::Borrowed),
        }
    }
}

impl SetValue {
    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Ints(b) => ints_len(b),
            Repr::Table(t) => t.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        match &self.repr {
            Repr::Ints(b) => b.is_empty(),
            Repr::Table(t) => t.is_empty(),
        }
    }
    /// True while Redis would still hold this set as an intset.
    pub fn is_intset(&self) -> bool {
        matches!(self.repr, Repr::Ints(_))
    }

    /// Switch to the table form (Redis never converts back).
    fn convert(&mut self) {
        if let Repr::Ints(b) = &self.repr {
            let mut t = Table::with_capacity_and_hasher(ints_len(b) + 1, FastState::default());
            for (_, n) in IntsIter::new(b) {
                t.insert(int_member(n));
            }
            self.repr = Repr::Table(Box::new(t));
        }
    }

    /// Add a member; returns true if it is new. `max_intset` is set-max-intset-entries.
    pub fn insert(&mut self, member: &[u8], max_intset: usize) -> bool {
        if let Repr::Ints(buf) = &mut self.repr {
            match parse_i64_strict(member) {
                Some(n) => {
                    let p = place(buf, n);
                    if p.next.as_ref().is_some_and(|(_, v)| *v == n) {
                        return false;
                    }
                    if ints_len(buf) < max_intset {
                        // n goes before `next`, whose delta becomes relative to n.
                        let mut enc = Vec::with_capacity(20);
                        encode_after(&mut enc, p.prev, n);
                        let range = match p.next {
                            Some((range, v)) => {
                                encode_after(&mut enc, Some(n), v);
                                range
                            }
                            None => buf.len()..buf.len(),
                        };
                        packed::splice(buf, range, &enc);
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
            Repr::Ints(b) => parse_i64_strict(member)
                .is_some_and(|n| place(b, n).next.is_some_and(|(_, v)| v == n)),
            Repr::Table(t) => t.contains(member),
        }
    }

    pub fn remove(&mut self, member: &[u8]) -> bool {
        match &mut self.repr {
            Repr::Ints(buf) => {
                let Some(n) = parse_i64_strict(member) else {
                    return false;
                };
                let p = place(buf, n);
                let Some((range, _)) = p.next.filter(|(_, v)| *v == n) else {
                    return false;
                };
                // The member after n (if any) takes n's place, its delta now relative to prev.
                let mut rest = IntsIter::new(buf);
                rest.pos = range.end;
                rest.prev = Some(n);
                let mut enc = Vec::with_capacity(10);
                let end = match rest.next() {
                    Some((_, after)) => {
                        encode_after(&mut enc, p.prev, after);
                        rest.pos
                    }
                    None => range.end,
                };
                packed::splice(buf, range.start..end, &enc);
                true
            }
            Repr::Table(t) => t.swap_remove(member),
        }
    }

    /// Members in the order Redis returns them: ascending numbers for an intset, the container's
    /// order otherwise.
    pub fn iter(&self) -> Iter<'_> {
        match &self.repr {
            Repr::Ints(b) => Iter::Ints(IntsIterPub(IntsIter::new(b))),
            Repr::Table(t) => Iter::Table(t.iter()),
        }
    }

    /// [`Self::iter`], collected.
    pub fn ordered(&self) -> Vec<CompactBytes> {
        self.iter().map(Cow::into_owned).collect()
    }

    /// The member at position `i` of [`Self::iter`]'s order: O(1) in the table (SSCAN's
    /// position walk), a walk of the small form.
    pub fn get_index(&self, i: usize) -> Option<CompactBytes> {
        match &self.repr {
            Repr::Ints(b) => IntsIter::new(b).nth(i).map(|(_, n)| int_member(n)),
            Repr::Table(t) => t.get_index(i).cloned(),
        }
    }

    /// The members at `positions` (SRANDMEMBER, SPOP): one walk of the small form however many
    /// positions are asked for (a negative count may ask for millions).
    pub fn members_at(&self, positions: &[usize]) -> Vec<CompactBytes> {
        match &self.repr {
            Repr::Ints(b) => {
                let all: Vec<i64> = IntsIter::new(b).map(|(_, n)| n).collect();
                positions
                    .iter()
                    .filter_map(|&i| all.get(i).map(|&n| int_member(n)))
                    .collect()
            }
            Repr::Table(t) => positions
                .iter()
                .filter_map(|&i| t.get_index(i).cloned())
                .collect(),
        }
    }

    /// Where reading this set starts (for prefetching; see [`super::prefetch`]).
    pub fn heap_ptr(&self) -> *const u8 {
        match &self.repr {
            Repr::Ints(b) => b.as_ptr(),
            Repr::Table(t) => (&**t as *const Table).cast(),
        }
    }

    /// An estimate of the bytes this set occupies (MEMORY USAGE, eviction).
    pub fn memory_estimate(&self) -> usize {
        match &self.repr {
            Repr::Ints(b) => 16 + 8 + b.len(),
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
    fn small_sets_hold_any_i64_and_keep_every_member() {
        assert_eq!(std::mem::size_of::<SetValue>(), 16);
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
