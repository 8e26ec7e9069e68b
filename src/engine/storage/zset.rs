//! Sorted set values: members ordered by (score, member). Pure.

use std::collections::HashMap;

use super::compact::CompactBytes;

#[derive(Debug, Clone, Default)]
pub struct ZSetValue {
    pub scores: HashMap<CompactBytes, f64>,
}

impl ZSetValue {
    pub fn len(&self) -> usize {
        self.scores.len()
    }
    pub fn is_empty(&self) -> bool {
        self.scores.is_empty()
    }
    pub fn memory_estimate(&self) -> usize {
        64 + self
            .scores
            .keys()
            .map(|m| 64 + m.heap_size())
            .sum::<usize>()
    }
}
