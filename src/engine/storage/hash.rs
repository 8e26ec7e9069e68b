//! Hash values: field → value, packed in one buffer while small (as Redis's listpack), a hash
//! table once past hash-max-listpack-entries/value. Pure.
//!
//! The packed form keeps fields in insertion order and a deletion closes the gap, so HGETALL and
//! HSCAN return what Redis returns for a listpack. Once the hash outgrows the thresholds it
//! becomes an insertion-ordered map and never goes back (as Redis); there a deletion swaps the
//! last entry into the hole (O(1)), which is what HSCAN's position walk expects.
//!
//! Commands see only the methods below: nothing outside this module knows which form is in use
//! except through [`HashValue::is_packed`] (OBJECT ENCODING, HSCAN's one-call reply).

use indexmap::IndexMap;

use super::compact::CompactBytes;
use super::packed::{self, Entries};

pub type FastState = ahash::RandomState;

type Table = IndexMap<CompactBytes, CompactBytes, FastState>;

/// Redis's defaults for hash-max-listpack-entries/value, used where no configuration is at hand
/// (loading an RDB payload or a snapshot); the next write applies the configured limits.
pub const DEFAULT_MAX_ENTRIES: usize = 128;
pub const DEFAULT_MAX_VALUE: usize = 64;

/// 16 bytes, held in the keyspace entry itself (`Value::Hash`): the table form's pointer sits in
/// the second word and the packed form's non-null data pointer tells them apart, so a small
/// hash costs its entry plus one allocation of exactly its bytes. Its count is not stored: it is
/// a walk of at most hash-max-listpack-entries entries, like every packed operation.
#[derive(Debug, Clone)]
pub struct HashValue {
    repr: Repr,
}

#[derive(Debug, Clone)]
enum Repr {
    /// (field, value) pairs as alternating length-prefixed entries.
    Packed(Box<[u8]>),
    Table(Box<Table>),
}

impl Default for HashValue {
    fn default() -> Self {
        HashValue {
            repr: Repr::Packed(Box::default()),
        }
    }
}

/// Where a field sits in a packed buffer: the pair's start, the value's start, the pair's end.
struct Slot {
    start: usize,
    value: usize,
    end: usize,
}

/// The field's slot, or how many pairs were walked (all of them) when it is absent.
fn find_packed(buf: &[u8], field: &[u8]) -> Result<Slot, usize> {
    let mut pos = 0;
    let mut pairs = 0;
    while pos < buf.len() {
        let start = pos;
        let f = packed::read_entry(buf, &mut pos);
        let value = pos;
        packed::read_entry(buf, &mut pos);
        if f == field {
            return Ok(Slot {
                start,
                value,
                end: pos,
            });
        }
        pairs += 1;
    }
    Err(pairs)
}

/// Iterator over a hash's (field, value) pairs in its order.
pub enum Iter<'a> {
    Packed(Entries<'a>),
    Table(indexmap::map::Iter<'a, CompactBytes, CompactBytes>),
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a [u8], &'a [u8]);
    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Iter::Packed(e) => {
                let f = e.next()?;
                let v = e.next().unwrap_or_default();
                Some((f, v))
            }
            Iter::Table(it) => it.next().map(|(k, v)| (k.as_slice(), v.as_slice())),
        }
    }
}

impl HashValue {
    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Packed(buf) => Entries::new(buf).count() / 2,
            Repr::Table(t) => t.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        match &self.repr {
            Repr::Packed(buf) => buf.is_empty(),
            Repr::Table(t) => t.is_empty(),
        }
    }
    /// True while Redis would still hold this hash as a listpack.
    pub fn is_packed(&self) -> bool {
        matches!(self.repr, Repr::Packed(_))
    }

    /// Switch to the table form, keeping the order (Redis never converts back).
    fn convert(&mut self) {
        if let Repr::Packed(buf) = &self.repr {
            let mut t = Table::with_capacity_and_hasher(self.len() + 1, FastState::default());
            for (f, v) in Iter::Packed(Entries::new(buf)) {
                t.insert(CompactBytes::new(f), CompactBytes::new(v));
            }
            self.repr = Repr::Table(Box::new(t));
        }
    }

    /// Set a field; returns true if it is new. `max_entries`/`max_value` are
    /// hash-max-listpack-entries/value: past them the hash becomes a table.
    pub fn insert(
        &mut self,
        field: &[u8],
        value: &[u8],
        max_entries: usize,
        max_value: usize,
    ) -> bool {
        if field.len() > max_value || value.len() > max_value {
            self.convert();
        }
        if let Repr::Packed(buf) = &mut self.repr {
            let pairs = match find_packed(buf, field) {
                Ok(slot) => {
                    let mut enc = Vec::with_capacity(packed::entry_len(value));
                    packed::write_entry(&mut enc, value);
                    packed::splice(buf, slot.value..slot.end, &enc);
                    return false;
                }
                Err(pairs) => pairs,
            };
            if pairs < max_entries {
                let mut enc =
                    Vec::with_capacity(packed::entry_len(field) + packed::entry_len(value));
                packed::write_entry(&mut enc, field);
                packed::write_entry(&mut enc, value);
                let end = buf.len();
                packed::splice(buf, end..end, &enc);
                return true;
            }
            self.convert();
        }
        let Repr::Table(t) = &mut self.repr else {
            unreachable!("converted above")
        };
        // One hash lookup; building the key is free for short fields (stored inline).
        match t.entry(CompactBytes::new(field)) {
            indexmap::map::Entry::Occupied(mut e) => {
                *e.get_mut() = CompactBytes::new(value);
                false
            }
            indexmap::map::Entry::Vacant(e) => {
                e.insert(CompactBytes::new(value));
                true
            }
        }
    }

    /// Insert with Redis's default thresholds, for loaders; returns false on a duplicate field.
    pub fn insert_loaded(&mut self, field: &[u8], value: &[u8]) -> bool {
        self.insert(field, value, DEFAULT_MAX_ENTRIES, DEFAULT_MAX_VALUE)
    }

    pub fn get(&self, field: &[u8]) -> Option<&[u8]> {
        match &self.repr {
            Repr::Packed(buf) => {
                let slot = find_packed(buf, field).ok()?;
                let mut pos = slot.value;
                Some(packed::read_entry(buf, &mut pos))
            }
            Repr::Table(t) => t.get(field).map(|v| v.as_slice()),
        }
    }

    pub fn remove(&mut self, field: &[u8]) -> bool {
        match &mut self.repr {
            Repr::Packed(buf) => match find_packed(buf, field) {
                Ok(slot) => {
                    packed::splice(buf, slot.start..slot.end, b"");
                    true
                }
                Err(_) => false,
            },
            Repr::Table(t) => t.swap_remove(field).is_some(),
        }
    }

    /// (field, value) pairs: insertion order while packed, the table's order after.
    pub fn iter(&self) -> Iter<'_> {
        match &self.repr {
            Repr::Packed(buf) => Iter::Packed(Entries::new(buf)),
            Repr::Table(t) => Iter::Table(t.iter()),
        }
    }

    /// The pair at position `i` of [`Self::iter`]'s order (O(1) for a table, a walk while
    /// packed). HSCAN walks positions of the table form.
    pub fn get_index(&self, i: usize) -> Option<(&[u8], &[u8])> {
        match &self.repr {
            Repr::Packed(_) => self.iter().nth(i),
            Repr::Table(t) => t.get_index(i).map(|(k, v)| (k.as_slice(), v.as_slice())),
        }
    }

    /// The pairs at `positions` (HRANDFIELD): one walk of a packed buffer however many
    /// positions are asked for (a negative count may ask for millions).
    pub fn pairs_at(&self, positions: &[usize]) -> Vec<(&[u8], &[u8])> {
        match &self.repr {
            Repr::Packed(_) => {
                let all: Vec<_> = self.iter().collect();
                positions
                    .iter()
                    .filter_map(|&i| all.get(i).copied())
                    .collect()
            }
            Repr::Table(_) => positions
                .iter()
                .filter_map(|&i| self.get_index(i))
                .collect(),
        }
    }

    /// Where reading this hash starts (for prefetching; see [`super::prefetch`]).
    pub fn heap_ptr(&self) -> *const u8 {
        match &self.repr {
            Repr::Packed(buf) => buf.as_ptr(),
            Repr::Table(t) => (&**t as *const Table).cast(),
        }
    }

    /// An estimate of the bytes this hash occupies (MEMORY USAGE, eviction): the allocations,
    /// plus the allocator's per-chunk word.
    pub fn memory_estimate(&self) -> usize {
        match &self.repr {
            Repr::Packed(buf) => 16 + 8 + buf.len(),
            Repr::Table(t) => {
                64 + t
                    .iter()
                    .map(|(k, v)| 56 + k.heap_size() + v.heap_size())
                    .sum::<usize>()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(h: &HashValue) -> Vec<Vec<u8>> {
        h.iter().map(|(k, _)| k.to_vec()).collect()
    }

    #[test]
    fn small_hashes_are_packed_and_keep_insertion_order_after_deletes() {
        assert_eq!(std::mem::size_of::<HashValue>(), 16);
        let mut h = HashValue::default();
        for f in ["a", "b", "c", "d"] {
            assert!(h.insert(f.as_bytes(), b"v", 128, 64));
        }
        assert!(!h.insert(b"c", b"longer value", 128, 64));
        assert!(!h.insert(b"a", b"w", 128, 64));
        assert!(h.remove(b"b"));
        assert!(!h.remove(b"b"));
        assert_eq!(
            fields(&h),
            vec![b"a".to_vec(), b"c".to_vec(), b"d".to_vec()]
        );
        assert_eq!(h.get(b"c"), Some(&b"longer value"[..]));
        assert_eq!(h.get(b"a"), Some(&b"w"[..]));
        assert_eq!(h.get(b"b"), None);
        assert_eq!(h.len(), 3);
        assert!(h.is_packed());
        assert_eq!(h.get_index(1), Some((&b"c"[..], &b"longer value"[..])));
        assert_eq!(
            h.pairs_at(&[2, 0, 2, 9]),
            vec![
                (&b"d"[..], &b"v"[..]),
                (&b"a"[..], &b"w"[..]),
                (&b"d"[..], &b"v"[..])
            ]
        );
    }

    #[test]
    fn a_long_value_converts_and_keeps_the_order() {
        let mut h = HashValue::default();
        for f in ["a", "b", "c"] {
            h.insert(f.as_bytes(), b"v", 128, 64);
        }
        h.insert(b"long", &[b'x'; 65], 128, 64);
        assert!(!h.is_packed());
        assert_eq!(
            fields(&h),
            [&b"a"[..], b"b", b"c", b"long"].map(|f| f.to_vec())
        );
        assert_eq!(h.get(b"long").map(|v| v.len()), Some(65));
        // Never back, even when it shrinks again.
        h.remove(b"long");
        h.insert(b"e", b"v", 128, 64);
        assert!(!h.is_packed());
        assert_eq!(h.len(), 4);
    }

    #[test]
    fn too_many_fields_convert_and_match_a_model() {
        let mut h = HashValue::default();
        let mut model = std::collections::HashMap::new();
        let mut was_converted = false;
        for i in 0..300u32 {
            let f = format!("f{}", i % 150);
            let v = format!("v{i}");
            assert_eq!(
                h.insert(f.as_bytes(), v.as_bytes(), 128, 64),
                model.insert(f.clone(), v).is_none()
            );
            if i % 7 == 0 {
                let g = format!("f{}", i % 50);
                assert_eq!(h.remove(g.as_bytes()), model.remove(&g).is_some());
            }
            assert_eq!(h.len(), model.len());
            // Packed only within the limit, and never back once converted.
            assert!(!h.is_packed() || (h.len() <= 128 && !was_converted));
            was_converted |= !h.is_packed();
        }
        assert!(!h.is_packed());
        for (f, v) in &model {
            assert_eq!(h.get(f.as_bytes()), Some(v.as_bytes()));
        }
        assert_eq!(h.iter().count(), model.len());
    }

    #[test]
    fn the_entry_threshold_is_the_configured_one() {
        let mut h = HashValue::default();
        for f in ["a", "b"] {
            h.insert(f.as_bytes(), b"v", 2, 64);
        }
        assert!(h.is_packed());
        h.insert(b"c", b"v", 2, 64);
        assert!(!h.is_packed());
        assert_eq!(fields(&h), [&b"a"[..], b"b", b"c"].map(|f| f.to_vec()));
    }
}
