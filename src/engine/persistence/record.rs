//! The on-disk record format shared by log segments and snapshots, its checksum (CRC-32C), and
//! the scan that validates a file record by record. Pure: works on byte slices.
//!
//! A record is `len: u32 LE | crc: u32 LE | offset: u64 LE | payload[len]`, where `offset` is the
//! position of the payload's first byte in the logical replication stream (for snapshots: a
//! sequence number) and `crc` covers the offset bytes and the payload. Including the offset in
//! the checksum means a record copied to the wrong place is detected as corruption too.

/// Bytes before the payload.
pub const HEADER_LEN: usize = 16;

/// Payloads larger than this are treated as corruption (a garbage length must not make the
/// scanner allocate gigabytes). Larger than any single effect the engine can produce.
pub const MAX_PAYLOAD: usize = 1 << 31;

/// CRC-32C of the concatenation of `parts`. Every record written and every record read at
/// recovery is checksummed, so this uses the `crc32c` crate (SSE 4.2 / ARMv8 CRC instructions
/// where the CPU has them, 8 bytes a step otherwise) rather than a byte-at-a-time table.
pub fn crc32c(parts: &[&[u8]]) -> u32 {
    parts
        .iter()
        .fold(0u32, |crc, part| crc32c::crc32c_append(crc, part))
}

/// The header of the record holding `payload` at `offset`: what goes before the payload.
pub fn header(offset: u64, payload: &[u8]) -> [u8; HEADER_LEN] {
    let off = offset.to_le_bytes();
    let mut h = [0u8; HEADER_LEN];
    h[0..4].copy_from_slice(&(payload.len() as u32).to_le_bytes());
    h[4..8].copy_from_slice(&crc32c(&[&off, payload]).to_le_bytes());
    h[8..16].copy_from_slice(&off);
    h
}

/// Append one encoded record to `out`.
pub fn encode(offset: u64, payload: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&header(offset, payload));
    out.extend_from_slice(payload);
}

/// One valid record found by [`scan`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordPos {
    /// Position of the record header in the file.
    pub file_pos: usize,
    /// Stream offset (or sequence number) stored in the record.
    pub offset: u64,
    pub len: usize,
}

impl RecordPos {
    pub fn payload<'a>(&self, data: &'a [u8]) -> &'a [u8] {
        &data[self.file_pos + HEADER_LEN..self.file_pos + HEADER_LEN + self.len]
    }
    pub fn end_pos(&self) -> usize {
        self.file_pos + HEADER_LEN + self.len
    }
}

/// How a scan ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanEnd {
    /// Every byte belongs to a valid record.
    Clean,
    /// The last record is incomplete or fails its checksum and nothing follows it: the typical
    /// result of a crash in the middle of a write. `at` is where the valid data ends.
    Torn { at: usize },
    /// A bad record with data after it, or records that do not follow each other: real damage.
    Corrupt { at: usize, reason: String },
}

/// Validate `data` record by record. When `contiguous` (log segments) each record's offset must
/// equal the previous record's offset plus its length, starting at `first_offset` if given.
pub fn scan(data: &[u8], contiguous: bool, first_offset: Option<u64>) -> (Vec<RecordPos>, ScanEnd) {
    let mut out = Vec::new();
    let mut pos = 0usize;
    let mut expect = first_offset;
    while pos < data.len() {
        let rest = &data[pos..];
        if rest.len() < HEADER_LEN {
            return (out, ScanEnd::Torn { at: pos });
        }
        let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        let crc = u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]]);
        let mut off_bytes = [0u8; 8];
        off_bytes.copy_from_slice(&rest[8..16]);
        let offset = u64::from_le_bytes(off_bytes);
        if len > MAX_PAYLOAD {
            return (out, tail_or_corrupt(data, pos, "impossible record length"));
        }
        if rest.len() < HEADER_LEN + len {
            return (out, ScanEnd::Torn { at: pos });
        }
        let payload = &rest[HEADER_LEN..HEADER_LEN + len];
        if crc32c(&[&off_bytes, payload]) != crc {
            return (out, tail_or_corrupt(data, pos, "checksum mismatch"));
        }
        if contiguous {
            if let Some(e) = expect {
                if e != offset {
                    return (
                        out,
                        ScanEnd::Corrupt {
                            at: pos,
                            reason: format!("record offset {offset}, expected {e}"),
                        },
                    );
                }
            }
            expect = Some(offset + len as u64);
        }
        out.push(RecordPos {
            file_pos: pos,
            offset,
            len,
        });
        pos += HEADER_LEN + len;
    }
    (out, ScanEnd::Clean)
}

/// A bad record is a torn tail only if it claims to reach (or beyond) the end of the file:
/// a record that was being written when the process died. Anything else is damage.
fn tail_or_corrupt(data: &[u8], pos: usize, reason: &str) -> ScanEnd {
    let rest = &data[pos..];
    let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
    if pos + HEADER_LEN + len >= data.len() {
        ScanEnd::Torn { at: pos }
    } else {
        ScanEnd::Corrupt {
            at: pos,
            reason: reason.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_known_vector() {
        assert_eq!(crc32c(&[b"123456789"]), 0xE306_9283);
        assert_eq!(crc32c(&[b"1234", b"56789"]), 0xE306_9283);
    }

    fn three_records() -> Vec<u8> {
        let mut v = Vec::new();
        encode(100, b"abc", &mut v);
        encode(103, b"defg", &mut v);
        encode(107, b"hi", &mut v);
        v
    }

    #[test]
    fn clean_scan() {
        let v = three_records();
        let (recs, end) = scan(&v, true, Some(100));
        assert_eq!(end, ScanEnd::Clean);
        assert_eq!(recs.len(), 3);
        assert_eq!(recs[1].payload(&v), b"defg");
    }

    #[test]
    fn every_truncation_of_the_last_record_is_a_torn_tail() {
        let v = three_records();
        let last_start = v.len() - (HEADER_LEN + 2);
        for cut in last_start..v.len() {
            let (recs, end) = scan(&v[..cut], true, Some(100));
            assert_eq!(recs.len(), 2, "cut at {cut}");
            if cut == last_start {
                assert_eq!(end, ScanEnd::Clean);
            } else {
                assert_eq!(end, ScanEnd::Torn { at: last_start }, "cut at {cut}");
            }
        }
    }

    #[test]
    fn damage_before_the_tail_is_corruption() {
        let mut v = three_records();
        v[HEADER_LEN + 1] ^= 0xff; // payload of the first record
        let (recs, end) = scan(&v, true, Some(100));
        assert!(recs.is_empty());
        assert!(matches!(end, ScanEnd::Corrupt { at: 0, .. }));
        // A garbled last payload is a torn tail (it reaches the end of the file).
        let mut v = three_records();
        let n = v.len();
        v[n - 1] ^= 0xff;
        let (recs, end) = scan(&v, true, Some(100));
        assert_eq!(recs.len(), 2);
        assert!(matches!(end, ScanEnd::Torn { .. }));
    }

    #[test]
    fn offsets_must_follow() {
        let mut v = Vec::new();
        encode(0, b"ab", &mut v);
        encode(5, b"cd", &mut v);
        let (_, end) = scan(&v, true, None);
        assert!(matches!(end, ScanEnd::Corrupt { .. }));
    }
}
