//! Packed entries: byte strings stored back to back in one exact-size allocation, each behind a
//! LEB128 length, the small form of hashes and sorted sets (Redis's listpack plays this part).
//! Pure.
//!
//! Why one `Box<[u8]>`: a small collection held as a hash table costs a table, a hasher state
//! and 24+ bytes per entry before the bytes themselves; a packed buffer costs the bytes plus one
//! or two length bytes per entry, in one allocation of exactly the size needed (the allocator's
//! rounding is the only slack). Every edit rebuilds or shifts the buffer (O(size)), which is what
//! Redis does with listpacks and is cheap at the sizes the `*-max-listpack-*` thresholds allow
//! (by default at most 128 entries of at most 64 bytes).
//!
//! Entries are found by walking from the start; callers keep their own structure on top (pairs
//! for hashes, a score prefix for sorted sets).

/// Append `n` as LEB128 (7 bits a byte, low first, high bit = more).
pub fn write_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// Bytes `write_varint` takes for `n`.
pub fn varint_len(mut n: u64) -> usize {
    let mut len = 1;
    while n >= 0x80 {
        n >>= 7;
        len += 1;
    }
    len
}

/// Read a LEB128 number at `buf[*pos..]`, advancing `pos`. The buffers read here were written
/// by this module, so they are well formed; a short buffer reads as 0 rather than panicking.
pub fn read_varint(buf: &[u8], pos: &mut usize) -> u64 {
    let mut n = 0u64;
    let mut shift = 0;
    while let Some(&b) = buf.get(*pos) {
        *pos += 1;
        if shift < 64 {
            n |= u64::from(b & 0x7f) << shift;
        }
        if b & 0x80 == 0 {
            break;
        }
        shift += 7;
    }
    n
}

/// Append one length-prefixed entry.
pub fn write_entry(out: &mut Vec<u8>, bytes: &[u8]) {
    write_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// Bytes one entry takes, prefix included.
pub fn entry_len(bytes: &[u8]) -> usize {
    varint_len(bytes.len() as u64) + bytes.len()
}

/// Read the entry at `buf[*pos..]`, advancing `pos` past it.
pub fn read_entry<'a>(buf: &'a [u8], pos: &mut usize) -> &'a [u8] {
    let len = read_varint(buf, pos) as usize;
    let start = (*pos).min(buf.len());
    let end = start.saturating_add(len).min(buf.len());
    *pos = end;
    &buf[start..end]
}

/// Iterator over the entries of a packed buffer.
pub struct Entries<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Entries<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Entries { buf, pos: 0 }
    }
    /// Byte offset of the next entry.
    pub fn offset(&self) -> usize {
        self.pos
    }
}

impl<'a> Iterator for Entries<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        if self.pos >= self.buf.len() {
            return None;
        }
        Some(read_entry(self.buf, &mut self.pos))
    }
}

/// Replace `buf[range]` with `with`, reallocating to the exact new size. The one place packed
/// buffers change: inserts (empty range), deletes (empty `with`) and value updates.
pub fn splice(buf: &mut Box<[u8]>, range: std::ops::Range<usize>, with: &[u8]) {
    if range.len() == with.len() {
        // Same size (an HSET of a value as long as the old one): no allocation at all.
        buf[range].copy_from_slice(with);
        return;
    }
    let old = std::mem::take(buf);
    let mut v = Vec::with_capacity(old.len() - range.len() + with.len());
    v.extend_from_slice(&old[..range.start]);
    v.extend_from_slice(with);
    v.extend_from_slice(&old[range.end..]);
    *buf = v.into_boxed_slice();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_and_entries_round_trip() {
        let mut out = Vec::new();
        for n in [0u64, 1, 127, 128, 300, 16_383, 16_384, u64::MAX] {
            let before = out.len();
            write_varint(&mut out, n);
            assert_eq!(out.len() - before, varint_len(n));
        }
        let mut pos = 0;
        for n in [0u64, 1, 127, 128, 300, 16_383, 16_384, u64::MAX] {
            assert_eq!(read_varint(&out, &mut pos), n);
        }
        let long = vec![b'x'; 200];
        let mut buf = Vec::new();
        for e in [&b""[..], b"a", &long] {
            write_entry(&mut buf, e);
        }
        let got: Vec<&[u8]> = Entries::new(&buf).collect();
        assert_eq!(got, vec![&b""[..], b"a", &long[..]]);
        assert_eq!(
            buf.len(),
            entry_len(b"") + entry_len(b"a") + entry_len(&long)
        );
    }

    #[test]
    fn truncated_buffers_read_short_without_panicking() {
        let mut buf = Vec::new();
        write_entry(&mut buf, b"hello");
        buf.truncate(3);
        let got: Vec<&[u8]> = Entries::new(&buf).collect();
        assert_eq!(got, vec![&b"he"[..]]);
        let mut pos = 0;
        assert_eq!(read_varint(&[0x80, 0x80], &mut pos), 0);
    }

    #[test]
    fn splice_inserts_deletes_and_replaces() {
        let mut b: Box<[u8]> = b"abcdef".to_vec().into_boxed_slice();
        splice(&mut b, 2..4, b"XY");
        assert_eq!(&*b, b"abXYef");
        splice(&mut b, 2..4, b"");
        assert_eq!(&*b, b"abef");
        splice(&mut b, 4..4, b"123");
        assert_eq!(&*b, b"abef123");
        assert_eq!(b.len(), 7);
    }
}
