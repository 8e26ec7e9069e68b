//! List values: a double-ended queue of byte strings, with the index arithmetic of Redis's list
//! commands (negative indexes, clamped ranges, LREM/LPOS scans from either end). Pure.

use std::collections::VecDeque;

use super::compact::CompactBytes;

/// Which end of a list an operation works on (LEFT = head, RIGHT = tail).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    Left,
    Right,
}

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

    pub fn push(&mut self, end: End, item: &[u8]) {
        match end {
            End::Left => self.items.push_front(CompactBytes::new(item)),
            End::Right => self.items.push_back(CompactBytes::new(item)),
        }
    }

    pub fn pop(&mut self, end: End) -> Option<CompactBytes> {
        match end {
            End::Left => self.items.pop_front(),
            End::Right => self.items.pop_back(),
        }
    }

    /// Resolve a Redis index (negative counts from the tail) to a position, if inside the list.
    pub fn position(&self, index: i64) -> Option<usize> {
        let len = self.items.len() as i64;
        let i = if index < 0 {
            len.checked_add(index)?
        } else {
            index
        };
        (0..len).contains(&i).then_some(i as usize)
    }

    /// The positions `start..=stop` (LRANGE/LTRIM rules: negative from the tail, clamped),
    /// or None when the range is empty.
    pub fn range(&self, start: i64, stop: i64) -> Option<(usize, usize)> {
        let len = self.items.len() as i64;
        let mut start = if start < 0 {
            len.saturating_add(start)
        } else {
            start
        };
        let mut stop = if stop < 0 {
            len.saturating_add(stop)
        } else {
            stop
        };
        if start < 0 {
            start = 0;
        }
        if start > stop || start >= len {
            return None;
        }
        if stop >= len {
            stop = len - 1;
        }
        Some((start as usize, stop as usize))
    }

    /// Keep only `start..=stop` (LTRIM).
    pub fn trim(&mut self, start: i64, stop: i64) {
        match self.range(start, stop) {
            None => self.items.clear(),
            Some((s, e)) => {
                self.items.truncate(e + 1);
                self.items.drain(..s);
            }
        }
    }

    /// Remove up to |count| occurrences of `item` (all when 0), from the head when count ≥ 0,
    /// from the tail when negative (LREM). Returns how many were removed.
    pub fn remove(&mut self, count: i64, item: &[u8]) -> usize {
        let limit = if count == 0 {
            usize::MAX
        } else {
            count.unsigned_abs().min(usize::MAX as u64) as usize
        };
        let mut removed = 0;
        if count >= 0 {
            let mut i = 0;
            while i < self.items.len() && removed < limit {
                if self.items[i].as_slice() == item {
                    self.items.remove(i);
                    removed += 1;
                } else {
                    i += 1;
                }
            }
        } else {
            let mut i = self.items.len();
            while i > 0 && removed < limit {
                i -= 1;
                if self.items[i].as_slice() == item {
                    self.items.remove(i);
                    removed += 1;
                }
            }
        }
        removed
    }

    /// Insert `item` before or after the first occurrence of `pivot` (LINSERT); false if the
    /// pivot is absent.
    pub fn insert_at_pivot(&mut self, after: bool, pivot: &[u8], item: &[u8]) -> bool {
        let Some(pos) = self.items.iter().position(|x| x.as_slice() == pivot) else {
            return false;
        };
        let at = if after { pos + 1 } else { pos };
        self.items.insert(at, CompactBytes::new(item));
        true
    }

    /// LPOS: positions of `item`, skipping the first |rank|-1 matches, scanning from the head
    /// (rank > 0) or the tail (rank < 0), looking at no more than `maxlen` elements (0 = all),
    /// returning at most `count` positions (0 = all).
    pub fn positions(&self, item: &[u8], rank: i64, count: usize, maxlen: usize) -> Vec<usize> {
        let len = self.items.len();
        // Redis negates a negative rank in a C long: i64::MIN stays negative there, so every
        // match counts as reached, scanning from the tail. Its COUNT test (`matches - rank + 1
        // >= count`) then overflows to a negative number and never stops the scan: every match
        // is returned whatever COUNT says (without COUNT the first one still ends it). The
        // differential tests compare with that redis-server, so the engine does the same.
        let (mut skip, count) = if rank == i64::MIN {
            (0, 0)
        } else {
            (rank.unsigned_abs() - 1, count)
        };
        let mut out = Vec::new();
        let scan = if maxlen == 0 { len } else { maxlen.min(len) };
        for step in 0..scan {
            let i = if rank > 0 { step } else { len - 1 - step };
            if self.items[i].as_slice() != item {
                continue;
            }
            if skip > 0 {
                skip -= 1;
                continue;
            }
            out.push(i);
            if count != 0 && out.len() >= count {
                break;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(items: &[&str]) -> ListValue {
        let mut l = ListValue::default();
        for i in items {
            l.push(End::Right, i.as_bytes());
        }
        l
    }

    fn strings(l: &ListValue) -> Vec<String> {
        l.items
            .iter()
            .map(|i| String::from_utf8_lossy(i.as_slice()).into_owned())
            .collect()
    }

    #[test]
    fn ranges_follow_redis_rules() {
        let l = list(&["a", "b", "c", "d"]);
        assert_eq!(l.range(0, -1), Some((0, 3)));
        assert_eq!(l.range(-100, 100), Some((0, 3)));
        assert_eq!(l.range(2, 1), None);
        assert_eq!(l.range(4, 10), None);
        assert_eq!(l.range(-2, -1), Some((2, 3)));
        assert_eq!(l.range(i64::MIN, i64::MAX), Some((0, 3)));
        assert_eq!(l.position(-1), Some(3));
        assert_eq!(l.position(4), None);
        assert_eq!(l.position(i64::MIN), None);
    }

    #[test]
    fn trim_remove_insert() {
        let mut l = list(&["a", "b", "a", "c", "a"]);
        assert_eq!(l.remove(-2, b"a"), 2);
        assert_eq!(strings(&l), ["a", "b", "c"]);
        assert_eq!(l.remove(0, b"zz"), 0);
        assert!(l.insert_at_pivot(true, b"b", b"x"));
        assert!(!l.insert_at_pivot(false, b"zz", b"x"));
        assert_eq!(strings(&l), ["a", "b", "x", "c"]);
        l.trim(1, -2);
        assert_eq!(strings(&l), ["b", "x"]);
        l.trim(5, 10);
        assert!(l.is_empty());
    }

    #[test]
    fn lpos_rank_count_maxlen() {
        let l = list(&["a", "b", "a", "c", "a"]);
        assert_eq!(l.positions(b"a", 1, 0, 0), [0, 2, 4]);
        assert_eq!(l.positions(b"a", 2, 1, 0), [2]);
        assert_eq!(l.positions(b"a", -1, 2, 0), [4, 2]);
        assert_eq!(l.positions(b"a", 1, 0, 2), [0]);
        assert_eq!(l.positions(b"a", i64::MIN, 1, 0), [4, 2, 0]);
        assert_eq!(l.positions(b"a", i64::MIN, 2, 2), [4]);
    }
}
