//! Hash values: field → value, in insertion order while small (as Redis's listpack keeps it).
//! Pure.

use indexmap::IndexMap;

use super::compact::CompactBytes;

pub type FastState = ahash::RandomState;

#[derive(Debug, Clone, Default)]
pub struct HashValue {
    pub map: IndexMap<CompactBytes, CompactBytes, FastState>,
}

impl HashValue {
    pub fn len(&self) -> usize {
        self.map.len()
    }
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
    pub fn memory_estimate(&self) -> usize {
        64 + self
            .map
            .iter()
            .map(|(k, v)| 56 + k.heap_size() + v.heap_size())
            .sum::<usize>()
    }
}
