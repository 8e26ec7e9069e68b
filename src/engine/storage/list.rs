//! List values: a double-ended queue of byte strings. Pure.

use std::collections::VecDeque;

use super::compact::CompactBytes;

#[derive(Debug, Clone, Default)]
pub struct ListValue {
    pub items: VecDeque<CompactBytes>,
}

impl ListValue {
    pub fn len(&self) -> usize {
        self.items.len()
    }
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
    pub fn memory_estimate(&self) -> usize {
        48 + self.items.iter().map(|i| 24 + i.heap_size()).sum::<usize>()
    }
}
