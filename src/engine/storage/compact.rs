//! `CompactBytes`: the byte string used for keys, string values and collection members. Pure.
//!
//! Most keys and values are short, so strings of up to 22 bytes live inline in the 24-byte value
//! itself (no heap allocation, no pointer chase on lookup); longer ones are one boxed slice. This
//! is what keeps per-key overhead near redis-server's embstr encoding.

use std::borrow::Borrow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;

const INLINE_CAP: usize = 22;

#[derive(Clone)]
pub enum CompactBytes {
    Inline {
        len: u8,
        buf: [u8; INLINE_CAP],
    },
    Heap(Box<[u8]>),
    /// A string grown in place (APPEND, SETRANGE, SETBIT, PFADD): the spare capacity makes
    /// repeated growth amortised O(1) per byte, as Redis's `sdsMakeRoomFor` does, instead of
    /// copying the whole value on every append. Boxed so the enum stays 24 bytes.
    Growable(Box<Vec<u8>>),
}

impl CompactBytes {
    pub fn new(b: &[u8]) -> Self {
        if b.len() <= INLINE_CAP {
            let mut buf = [0u8; INLINE_CAP];
            buf[..b.len()].copy_from_slice(b);
            CompactBytes::Inline {
                len: b.len() as u8,
                buf,
            }
        } else {
            CompactBytes::Heap(b.into())
        }
    }
    pub fn empty() -> Self {
        CompactBytes::new(b"")
    }
    pub fn as_slice(&self) -> &[u8] {
        match self {
            CompactBytes::Inline { len, buf } => &buf[..*len as usize],
            CompactBytes::Heap(b) => b,
            CompactBytes::Growable(v) => v,
        }
    }
    /// The bytes as a growable vector, converting (one copy) on first use.
    pub fn as_mut_vec(&mut self) -> &mut Vec<u8> {
        if !matches!(self, CompactBytes::Growable(_)) {
            *self = CompactBytes::Growable(Box::new(self.as_slice().to_vec()));
        }
        match self {
            CompactBytes::Growable(v) => v,
            // Just converted above.
            _ => unreachable!("converted to Growable"),
        }
    }
    pub fn to_bytes(&self) -> bytes::Bytes {
        bytes::Bytes::copy_from_slice(self.as_slice())
    }
    /// Bytes allocated on the heap for this string (for MEMORY USAGE and eviction estimates).
    pub fn heap_size(&self) -> usize {
        match self {
            CompactBytes::Inline { .. } => 0,
            CompactBytes::Heap(b) => b.len(),
            CompactBytes::Growable(v) => v.capacity() + 24,
        }
    }
}

impl Deref for CompactBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl Borrow<[u8]> for CompactBytes {
    fn borrow(&self) -> &[u8] {
        self.as_slice()
    }
}

// Hash and Eq must agree with [u8]'s so maps keyed by CompactBytes can be queried with &[u8].
impl Hash for CompactBytes {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_slice().hash(state)
    }
}
impl PartialEq for CompactBytes {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}
impl Eq for CompactBytes {}
impl PartialOrd for CompactBytes {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for CompactBytes {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_slice().cmp(other.as_slice())
    }
}

impl fmt::Debug for CompactBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self.as_slice()))
    }
}

impl From<&[u8]> for CompactBytes {
    fn from(b: &[u8]) -> Self {
        CompactBytes::new(b)
    }
}
impl From<&str> for CompactBytes {
    fn from(s: &str) -> Self {
        CompactBytes::new(s.as_bytes())
    }
}
impl From<Vec<u8>> for CompactBytes {
    fn from(v: Vec<u8>) -> Self {
        if v.len() <= INLINE_CAP {
            CompactBytes::new(&v)
        } else {
            CompactBytes::Heap(v.into_boxed_slice())
        }
    }
}
impl From<&bytes::Bytes> for CompactBytes {
    fn from(b: &bytes::Bytes) -> Self {
        CompactBytes::new(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn inline_and_heap_behave_the_same() {
        assert_eq!(std::mem::size_of::<CompactBytes>(), 24);
        let short = CompactBytes::from("key:1");
        let long = CompactBytes::from("a much longer key that does not fit inline");
        assert!(matches!(short, CompactBytes::Inline { .. }));
        assert!(matches!(long, CompactBytes::Heap(_)));
        let mut grown = CompactBytes::from("key:1");
        grown.as_mut_vec().extend_from_slice(b"23");
        assert_eq!(grown, CompactBytes::from("key:123"));
        let mut m = HashMap::new();
        m.insert(short.clone(), 1);
        m.insert(long.clone(), 2);
        assert_eq!(m.get(&b"key:1"[..]), Some(&1));
        assert_eq!(m.get(long.as_slice()), Some(&2));
    }
}
