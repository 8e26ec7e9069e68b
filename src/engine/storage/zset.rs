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
    /// Add or update a member. (Placeholder structure: the sorted-set work replaces it with an
    /// order-statistic structure keeping this API.)
    pub fn insert(&mut self, member: CompactBytes, score: f64) {
        self.scores.insert(member, score);
    }
    pub fn score(&self, member: &[u8]) -> Option<f64> {
        self.scores.get(member).copied()
    }
    /// Members in (score, member) order.
    pub fn iter(&self) -> impl Iterator<Item = (&CompactBytes, f64)> {
        let mut v: Vec<_> = self.scores.iter().map(|(m, s)| (m, *s)).collect();
        v.sort_by(|a, b| a.1.total_cmp(&b.1).then_with(|| a.0.cmp(b.0)));
        v.into_iter()
    }
    pub fn memory_estimate(&self) -> usize {
        64 + self
            .scores
            .keys()
            .map(|m| 64 + m.heap_size())
            .sum::<usize>()
    }
}
