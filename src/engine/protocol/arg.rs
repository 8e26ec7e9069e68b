//! `Arg`: one argument of a request. Short arguments are copied inline; long ones share the
//! request's frame. Pure, no I/O.
//!
//! Why not a `Bytes` slice per argument: each slice of a shared frame is an atomic increment
//! when made and an atomic decrement when dropped. For MSET with ten pairs that was 12 % of the
//! engine's cycles at pipeline depth 16 (perf, docs/benchmarks.md). Keys, fields, numbers and
//! small values fit in [`INLINE`] bytes: copying them is cheaper than two atomics, and a
//! request whose arguments are all short needs no reference to its frame at all.

use std::borrow::Borrow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;

use bytes::Bytes;

/// Longest argument stored inline (the enum is then 40 bytes, a `Bytes` and its tag).
pub const INLINE: usize = 38;

#[derive(Clone)]
pub enum Arg {
    Inline { len: u8, data: [u8; INLINE] },
    Shared(Bytes),
}

impl Arg {
    /// An argument holding a copy of `b` (inline when short).
    pub fn copy_from_slice(b: &[u8]) -> Arg {
        if b.len() <= INLINE {
            let mut data = [0u8; INLINE];
            data[..b.len()].copy_from_slice(b);
            Arg::Inline {
                len: b.len() as u8,
                data,
            }
        } else {
            Arg::Shared(Bytes::copy_from_slice(b))
        }
    }

    /// Append a copy of `b` to `args` (inline when short), built in place in the vector.
    ///
    /// Why not `args.push(Arg::copy_from_slice(b))`: that fills a temporary on the stack with a
    /// copy of `b.len()` bytes (a few narrow stores), then moves the 40-byte enum into the
    /// vector with wide loads that span several of those stores. The CPU cannot forward such
    /// stores to a load, so every argument waited for its own bytes to reach the cache: a
    /// store-forwarding stall that callgrind does not count (it is no instruction) and `perf`
    /// put at 8 % of the engine's time for redis-benchmark's 21-argument MSET at `-P 16`
    /// (2026-12-06, the two loads after the copy held 78 % of the parser's copy loop).
    /// Pushing a zeroed `Inline` and copying into it writes each byte once, where it stays.
    pub fn push_copy(args: &mut Vec<Arg>, b: &[u8]) {
        if b.len() <= INLINE {
            args.push(Arg::Inline {
                len: b.len() as u8,
                data: [0; INLINE],
            });
            if let Some(Arg::Inline { data, .. }) = args.last_mut() {
                data[..b.len()].copy_from_slice(b);
            }
        } else {
            args.push(Arg::Shared(Bytes::copy_from_slice(b)));
        }
    }

    /// [`Arg::push_copy`] for the bytes of `range` within `frame`: a copy when short, a shared
    /// slice otherwise (as [`Arg::from_frame`]).
    pub fn push_from_frame(args: &mut Vec<Arg>, frame: &Bytes, start: usize, end: usize) {
        if end - start <= INLINE {
            Arg::push_copy(args, &frame[start..end]);
        } else {
            args.push(Arg::Shared(frame.slice(start..end)));
        }
    }

    /// An argument of static bytes (command names in rewrites and tests).
    pub fn from_static(b: &'static [u8]) -> Arg {
        if b.len() <= INLINE {
            Arg::copy_from_slice(b)
        } else {
            Arg::Shared(Bytes::from_static(b))
        }
    }

    /// The bytes of `range` within `frame`: a copy when short, a shared slice otherwise.
    pub fn from_frame(frame: &Bytes, start: usize, end: usize) -> Arg {
        if end - start <= INLINE {
            Arg::copy_from_slice(&frame[start..end])
        } else {
            Arg::Shared(frame.slice(start..end))
        }
    }

    /// The argument as `Bytes` (a copy when inline, the shared slice otherwise).
    pub fn to_bytes(&self) -> Bytes {
        match self {
            Arg::Inline { .. } => Bytes::copy_from_slice(self),
            Arg::Shared(b) => b.clone(),
        }
    }

    pub fn as_slice(&self) -> &[u8] {
        match self {
            Arg::Inline { len, data } => &data[..*len as usize],
            Arg::Shared(b) => b,
        }
    }
}

impl Deref for Arg {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl AsRef<[u8]> for Arg {
    fn as_ref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl Borrow<[u8]> for Arg {
    fn borrow(&self) -> &[u8] {
        self.as_slice()
    }
}

impl PartialEq for Arg {
    fn eq(&self, other: &Arg) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for Arg {}

impl PartialEq<[u8]> for Arg {
    fn eq(&self, other: &[u8]) -> bool {
        self.as_slice() == other
    }
}

impl PartialOrd for Arg {
    fn partial_cmp(&self, other: &Arg) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Arg {
    fn cmp(&self, other: &Arg) -> std::cmp::Ordering {
        self.as_slice().cmp(other.as_slice())
    }
}

impl Hash for Arg {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_slice().hash(state)
    }
}

impl fmt::Debug for Arg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&Bytes::copy_from_slice(self.as_slice()), f)
    }
}

impl From<Bytes> for Arg {
    fn from(b: Bytes) -> Arg {
        if b.len() <= INLINE {
            Arg::copy_from_slice(&b)
        } else {
            Arg::Shared(b)
        }
    }
}

impl From<Arg> for Bytes {
    fn from(a: Arg) -> Bytes {
        match a {
            Arg::Inline { .. } => Bytes::copy_from_slice(&a),
            Arg::Shared(b) => b,
        }
    }
}

impl From<Vec<u8>> for Arg {
    fn from(v: Vec<u8>) -> Arg {
        if v.len() <= INLINE {
            Arg::copy_from_slice(&v)
        } else {
            Arg::Shared(Bytes::from(v))
        }
    }
}

impl From<String> for Arg {
    fn from(s: String) -> Arg {
        Arg::from(s.into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_arguments_are_inline_and_long_ones_share_the_frame() {
        let frame = Bytes::from(vec![b'x'; 100]);
        let short = Arg::from_frame(&frame, 0, INLINE);
        let long = Arg::from_frame(&frame, 0, INLINE + 1);
        assert!(matches!(short, Arg::Inline { .. }));
        assert!(matches!(long, Arg::Shared(_)));
        assert_eq!(&short[..], &frame[..INLINE]);
        assert_eq!(&long[..], &frame[..INLINE + 1]);
        assert_eq!(Arg::from_frame(&frame, 5, 5).len(), 0);
    }

    #[test]
    fn pushed_in_place_equals_built_and_moved() {
        let frame = Bytes::from((0..100u8).collect::<Vec<u8>>());
        let mut copied = Vec::new();
        let mut framed = Vec::new();
        for len in 0..=INLINE + 2 {
            Arg::push_copy(&mut copied, &frame[3..3 + len]);
            Arg::push_from_frame(&mut framed, &frame, 3, 3 + len);
        }
        for (len, (c, f)) in copied.iter().zip(&framed).enumerate() {
            let built = Arg::from_frame(&frame, 3, 3 + len);
            assert_eq!(&c[..], &frame[3..3 + len]);
            assert_eq!(c, &built);
            assert_eq!(f, &built);
            assert_eq!(
                matches!(c, Arg::Inline { .. }),
                matches!(built, Arg::Inline { .. })
            );
            assert_eq!(
                matches!(f, Arg::Inline { .. }),
                matches!(built, Arg::Inline { .. })
            );
        }
    }

    #[test]
    fn an_argument_is_no_larger_than_a_bytes_and_its_tag() {
        // The request vector holds one per argument: growing past 40 bytes would cost every
        // command a larger allocation.
        assert_eq!(std::mem::size_of::<Arg>(), 40);
    }

    #[test]
    fn equality_hash_and_order_follow_the_bytes() {
        use std::collections::HashSet;
        let a = Arg::copy_from_slice(b"key");
        let b = Arg::from(Bytes::from(b"key".to_vec()));
        let long = Arg::from(vec![b'k'; 60]);
        assert_eq!(a, b);
        assert!(a < long);
        let set: HashSet<Arg> = [a.clone(), b, long.clone()].into_iter().collect();
        assert_eq!(set.len(), 2);
        assert_eq!(Bytes::from(long.clone()), Bytes::from(vec![b'k'; 60]));
        assert_eq!(a.to_bytes(), Bytes::from_static(b"key"));
    }
}
