//! Set values: unique byte strings with O(1) random access (SRANDMEMBER, SPOP, SSCAN). Pure.
//!
//! Redis 7.0 keeps a set of integers (at most set-max-intset-entries) as a sorted intset and
//! returns it in ascending numeric order; `converted` records when Redis would have switched to a
//! hash table (a non-integer member, or too many members; it never switches back), so replies
//! of small integer sets can be ordered exactly like Redis's.

use indexmap::IndexSet;

use super::compact::CompactBytes;
use super::hash::FastState;
use crate::engine::storage::number::parse_i64_strict;

#[derive(Debug, Clone, Default)]
pub struct SetValue {
    pub members: IndexSet<CompactBytes, FastState>,
    /// True once Redis would have converted this set from an intset to a hash table.
    pub converted: bool,
}

impl SetValue {
    pub fn len(&self) -> usize {
        self.members.len()
    }
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }
    /// Add a member; returns true if it is new. `max_intset` is set-max-intset-entries.
    pub fn insert(&mut self, member: &[u8], max_intset: usize) -> bool {
        if !self.converted && parse_i64_strict(member).is_none() {
            self.converted = true;
        }
        let new = self.members.insert(CompactBytes::new(member));
        if self.members.len() > max_intset {
            self.converted = true;
        }
        new
    }
    pub fn contains(&self, member: &[u8]) -> bool {
        self.members.contains(member)
    }
    pub fn remove(&mut self, member: &[u8]) -> bool {
        self.members.swap_remove(member)
    }
    /// True while Redis would still hold this set as an intset.
    pub fn is_intset(&self) -> bool {
        !self.converted
    }
    /// Members in the order Redis returns them: ascending numbers for an intset, the container's
    /// order otherwise.
    pub fn ordered(&self) -> Vec<CompactBytes> {
        let mut v: Vec<CompactBytes> = self.members.iter().cloned().collect();
        if self.is_intset() {
            v.sort_by_key(|m| parse_i64_strict(m).unwrap_or(0));
        }
        v
    }
    pub fn memory_estimate(&self) -> usize {
        64 + self
            .members
            .iter()
            .map(|m| 32 + m.heap_size())
            .sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_sets_are_ordered_numerically_until_converted() {
        let mut s = SetValue::default();
        for m in ["10", "-3", "2"] {
            s.insert(m.as_bytes(), 512);
        }
        let order: Vec<Vec<u8>> = s.ordered().iter().map(|m| m.to_vec()).collect();
        assert_eq!(order, vec![b"-3".to_vec(), b"2".to_vec(), b"10".to_vec()]);
        s.insert(b"x", 512);
        assert!(!s.is_intset());
        s.remove(b"x");
        assert!(!s.is_intset());
    }
}
