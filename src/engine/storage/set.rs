//! Set values: unique byte strings with O(1) random access (SRANDMEMBER, SPOP, SSCAN). Pure.

use indexmap::IndexSet;

use super::compact::CompactBytes;
use super::hash::FastState;

#[derive(Debug, Clone, Default)]
pub struct SetValue {
    pub members: IndexSet<CompactBytes, FastState>,
}

impl SetValue {
    pub fn len(&self) -> usize {
        self.members.len()
    }
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }
    pub fn memory_estimate(&self) -> usize {
        64 + self
            .members
            .iter()
            .map(|m| 32 + m.heap_size())
            .sum::<usize>()
    }
}
