//! Hash values: field → value, in insertion order while small (as Redis's listpack keeps it).
//! Pure.
//!
//! While the hash would still be a listpack in Redis (few, short fields and values), deleting a
//! field shifts the later ones down so HGETALL/HSCAN order stays the insertion order Redis
//! returns. Once it outgrows that (Redis converts to a hash table and never back), deletion swaps
//! the last entry into the hole (O(1)), which is what HSCAN's position walk expects.

use indexmap::IndexMap;

use super::compact::CompactBytes;

pub type FastState = ahash::RandomState;

#[derive(Debug, Clone, Default)]
pub struct HashValue {
    pub map: IndexMap<CompactBytes, CompactBytes, FastState>,
    /// True once Redis would have converted this hash to a hash table.
    pub converted: bool,
}

impl HashValue {
    pub fn len(&self) -> usize {
        self.map.len()
    }
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
    /// Set a field; returns true if it is new. `max_entries`/`max_value` are
    /// hash-max-listpack-entries/value.
    pub fn insert(
        &mut self,
        field: &[u8],
        value: &[u8],
        max_entries: usize,
        max_value: usize,
    ) -> bool {
        if field.len() > max_value || value.len() > max_value {
            self.converted = true;
        }
        // One hash lookup; building the key is free for short fields (stored inline).
        let new = match self.map.entry(CompactBytes::new(field)) {
            indexmap::map::Entry::Occupied(mut e) => {
                *e.get_mut() = CompactBytes::new(value);
                false
            }
            indexmap::map::Entry::Vacant(e) => {
                e.insert(CompactBytes::new(value));
                true
            }
        };
        if self.map.len() > max_entries {
            self.converted = true;
        }
        new
    }
    pub fn get(&self, field: &[u8]) -> Option<&CompactBytes> {
        self.map.get(field)
    }
    pub fn remove(&mut self, field: &[u8]) -> bool {
        if self.converted {
            self.map.swap_remove(field).is_some()
        } else {
            self.map.shift_remove(field).is_some()
        }
    }
    pub fn memory_estimate(&self) -> usize {
        64 + self
            .map
            .iter()
            .map(|(k, v)| 56 + k.heap_size() + v.heap_size())
            .sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_hashes_keep_insertion_order_after_deletes() {
        let mut h = HashValue::default();
        for f in ["a", "b", "c", "d"] {
            h.insert(f.as_bytes(), b"v", 128, 64);
        }
        h.remove(b"b");
        let order: Vec<&[u8]> = h.map.keys().map(|k| k.as_slice()).collect();
        assert_eq!(order, vec![&b"a"[..], b"c", b"d"]);
        h.insert(b"long", &[b'x'; 65], 128, 64);
        assert!(h.converted);
    }
}
