//! The RDB encoding of stream values (DUMP/RESTORE, and the RDB file built on this codec):
//! written as RDB_TYPE_STREAM_LISTPACKS_2 (19), what redis-server 7.0 writes and loads; read
//! from 15 (Redis 5-6.2), 19 (7.0) and 21 (7.2, consumers with an active time). Pure.
//!
//! Layout: the node count, then per node its master ID (16 bytes, big-endian) and a listpack
//! (master entry: live count, deleted count, field count, the fields, 0; then per entry: flags,
//! ms and seq deltas from the master ID, [field count and fields unless the same as the
//! master's], the values, and the entry's element count); then length, last ID, first ID, max
//! deleted ID and entries added; then the groups with their PEL (raw ID, delivery time as 8
//! little-endian bytes, delivery count) and consumers (name, seen time, PEL IDs).
//!
//! Written listpacks hold live entries only (deleted ones are dropped, the counts say 0
//! deleted); read listpacks may hold deleted entries (flag 1), which are skipped.

use super::{write_len, BadData, LpEntry, Reader, Result};
use crate::engine::storage::compact::CompactBytes;
use crate::engine::storage::stream::{
    lp_backlen_size, Consumer, ConsumerGroup, Nack, Node, StreamId, StreamValue,
};

pub const TYPE_STREAM_LISTPACKS: u8 = 15;
pub const TYPE_STREAM_LISTPACKS_2: u8 = 19;
pub const TYPE_STREAM_LISTPACKS_3: u8 = 21;

const FLAG_DELETED: i64 = 1;
const FLAG_SAMEFIELDS: i64 = 2;

// ---------------------------------------------------------------------------------------------
// Listpack writing.

/// A listpack being built: elements are appended, `finish` writes the header and terminator.
struct Listpack {
    body: Vec<u8>,
    count: usize,
}

impl Listpack {
    fn new() -> Listpack {
        Listpack {
            body: Vec::new(),
            count: 0,
        }
    }
    /// listpack's lpEncodeBacklen: the entry's encoded size in 7-bit groups, most significant
    /// first with bit 7 clear, the others with bit 7 set (read right to left by the parser).
    fn push_backlen(&mut self, enc_len: usize) {
        let n = lp_backlen_size(enc_len);
        for i in (0..n).rev() {
            let group = ((enc_len >> (7 * i)) & 0x7f) as u8;
            self.body
                .push(if i == n - 1 { group } else { group | 0x80 });
        }
    }
    fn int(&mut self, n: i64) {
        let start = self.body.len();
        if (0..=127).contains(&n) {
            self.body.push(n as u8);
        } else if (-4096..4096).contains(&n) {
            let u = (n as u16) & 0x1fff;
            self.body.push(0xC0 | (u >> 8) as u8);
            self.body.push(u as u8);
        } else if (i16::MIN as i64..=i16::MAX as i64).contains(&n) {
            self.body.push(0xF1);
            self.body.extend_from_slice(&(n as i16).to_le_bytes());
        } else if (-(1 << 23)..(1 << 23)).contains(&n) {
            self.body.push(0xF2);
            self.body.extend_from_slice(&(n as i32).to_le_bytes()[..3]);
        } else if (i32::MIN as i64..=i32::MAX as i64).contains(&n) {
            self.body.push(0xF3);
            self.body.extend_from_slice(&(n as i32).to_le_bytes());
        } else {
            self.body.push(0xF4);
            self.body.extend_from_slice(&n.to_le_bytes());
        }
        let enc = self.body.len() - start;
        self.push_backlen(enc);
        self.count += 1;
    }
    fn string(&mut self, s: &[u8]) {
        if s.len() <= 20 {
            if let Some(n) = crate::engine::storage::number::parse_i64_strict(s) {
                self.int(n);
                return;
            }
        }
        let start = self.body.len();
        if s.len() < 64 {
            self.body.push(0x80 | s.len() as u8);
        } else if s.len() < 4096 {
            self.body.push(0xE0 | (s.len() >> 8) as u8);
            self.body.push(s.len() as u8);
        } else {
            self.body.push(0xF0);
            self.body.extend_from_slice(&(s.len() as u32).to_le_bytes());
        }
        self.body.extend_from_slice(s);
        let enc = self.body.len() - start;
        self.push_backlen(enc);
        self.count += 1;
    }
    fn finish(self) -> Vec<u8> {
        let total = 6 + self.body.len() + 1;
        let mut out = Vec::with_capacity(total);
        out.extend_from_slice(&(total as u32).to_le_bytes());
        // The element count saturates at 65535 (listpack's "unknown" marker).
        out.extend_from_slice(&(self.count.min(65535) as u16).to_le_bytes());
        out.extend_from_slice(&self.body);
        out.push(0xFF);
        out
    }
}

/// A node's master ID, its bookkeeping and its live entries.
type NodeEntries<'a> = (StreamId, &'a Node, Vec<(StreamId, &'a [CompactBytes])>);

fn write_ms_time(out: &mut Vec<u8>, t: i64) {
    out.extend_from_slice(&t.to_le_bytes());
}

/// Encode a stream (after its type byte, which the caller writes).
pub fn encode(s: &StreamValue, out: &mut Vec<u8>) {
    // Group the live entries by node (the node bookkeeping gives the split redis-server had).
    let mut nodes: Vec<NodeEntries<'_>> = Vec::new();
    for (master, node) in &s.nodes {
        nodes.push((*master, node, Vec::new()));
    }
    for (id, fv) in &s.entries {
        let idx = nodes.partition_point(|(m, _, _)| m <= id);
        if idx == 0 {
            continue; // Cannot happen: every entry belongs to a node.
        }
        nodes[idx - 1].2.push((*id, &fv[..]));
    }
    nodes.retain(|(_, _, e)| !e.is_empty());
    write_len(out, nodes.len() as u64);
    for (master, node, entries) in &nodes {
        write_string_raw(out, &master.to_be_bytes());
        let mut lp = Listpack::new();
        lp.int(entries.len() as i64);
        lp.int(0);
        lp.int(node.master_fields.len() as i64);
        for f in node.master_fields.iter() {
            lp.string(f);
        }
        lp.int(0);
        for (id, fv) in entries {
            let numfields = fv.len() / 2;
            let same = numfields == node.master_fields.len()
                && fv
                    .iter()
                    .step_by(2)
                    .zip(node.master_fields.iter())
                    .all(|(a, b)| a == b);
            lp.int(if same { FLAG_SAMEFIELDS } else { 0 });
            lp.int(id.ms.wrapping_sub(master.ms) as i64);
            lp.int(id.seq.wrapping_sub(master.seq) as i64);
            if same {
                for v in fv.iter().skip(1).step_by(2) {
                    lp.string(v);
                }
                lp.int(3 + numfields as i64);
            } else {
                lp.int(numfields as i64);
                for f in fv.iter() {
                    lp.string(f);
                }
                lp.int(3 + 2 * numfields as i64 + 1);
            }
        }
        write_string_raw(out, &lp.finish());
    }
    write_len(out, s.entries.len() as u64);
    for id in [s.last_id, s.first_id, s.max_deleted_id] {
        write_len(out, id.ms);
        write_len(out, id.seq);
    }
    write_len(out, s.entries_added);
    write_len(out, s.groups.len() as u64);
    for (name, g) in &s.groups {
        write_string_raw(out, name);
        write_len(out, g.last_id.ms);
        write_len(out, g.last_id.seq);
        // -1 (unknown) is written as the unsigned 64-bit value, as Redis's rdbSaveLen does.
        write_len(out, g.entries_read as u64);
        write_len(out, g.pel.len() as u64);
        for (id, n) in &g.pel {
            out.extend_from_slice(&id.to_be_bytes());
            write_ms_time(out, n.delivery_time);
            write_len(out, n.delivery_count);
        }
        write_len(out, g.consumers.len() as u64);
        for (cname, c) in &g.consumers {
            write_string_raw(out, cname);
            write_ms_time(out, c.seen_time);
            write_len(out, c.pel.len() as u64);
            for id in &c.pel {
                out.extend_from_slice(&id.to_be_bytes());
            }
        }
    }
}

/// A string as raw bytes (node keys are binary; Redis writes names raw too).
fn write_string_raw(out: &mut Vec<u8>, s: &[u8]) {
    write_len(out, s.len() as u64);
    out.extend_from_slice(s);
}

// ---------------------------------------------------------------------------------------------
// Reading.

fn entry_int(e: &LpEntry<'_>) -> Result<i64> {
    match e {
        LpEntry::Int(n) => Ok(*n),
        LpEntry::Str(s) => crate::engine::storage::number::parse_i64_strict(s)
            .ok_or(BadData("stream listpack: integer expected")),
    }
}

fn read_ms_time(r: &mut Reader<'_>) -> Result<i64> {
    let s = r.take(8)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(s);
    Ok(i64::from_le_bytes(a))
}

fn read_id(r: &mut Reader<'_>) -> Result<StreamId> {
    Ok(StreamId::new(r.len()?, r.len()?))
}

/// Decode a stream of RDB type `t` (15, 19 or 21), the reader just past the type byte.
pub fn decode(r: &mut Reader<'_>, t: u8) -> Result<StreamValue> {
    let bad = |m: &'static str| BadData(m);
    let mut s = StreamValue::default();
    let nodes = r.count()?;
    for _ in 0..nodes {
        let key = r.string()?;
        let master = StreamId::from_be_bytes(&key).ok_or(bad("stream node key size"))?;
        let blob = r.string()?;
        let items = super::listpack_entries(&blob)?;
        let mut it = items.iter();
        let mut next = || it.next().ok_or(bad("stream listpack truncated"));
        let live = entry_int(next()?)?;
        let deleted = entry_int(next()?)?;
        let master_count = entry_int(next()?)?;
        if live < 0 || deleted < 0 || master_count < 0 || live + deleted == 0 {
            return Err(bad("stream listpack counts"));
        }
        let mut master_fields = Vec::new();
        for _ in 0..master_count {
            master_fields.push(CompactBytes::from(next()?.to_bytes()));
        }
        if entry_int(next()?)? != 0 {
            return Err(bad("stream master entry terminator"));
        }
        let mut seen_live = 0;
        let mut last_in_node = master;
        for _ in 0..live + deleted {
            let flags = entry_int(next()?)?;
            let ms = master
                .ms
                .checked_add(entry_int(next()?)? as u64)
                .ok_or(bad("stream id"))?;
            let seq = master.seq.wrapping_add(entry_int(next()?)? as u64);
            let id = StreamId::new(ms, seq);
            let mut fv = Vec::new();
            if flags & FLAG_SAMEFIELDS != 0 {
                for f in &master_fields {
                    fv.push(f.clone());
                    fv.push(CompactBytes::from(next()?.to_bytes()));
                }
            } else {
                let n = entry_int(next()?)?;
                if n < 0 {
                    return Err(bad("stream field count"));
                }
                for _ in 0..2 * n {
                    fv.push(CompactBytes::from(next()?.to_bytes()));
                }
            }
            next()?; // the entry's element count
                     // IDs grow inside a node, from the master ID on.
            if id < master || (id <= last_in_node && id != master) {
                return Err(bad("stream ids out of order"));
            }
            last_in_node = id;
            if flags & FLAG_DELETED != 0 {
                continue;
            }
            if fv.is_empty() {
                return Err(bad("stream entry without fields"));
            }
            if let Some((prev, _)) = s.entries.last_key_value() {
                if *prev >= id {
                    return Err(bad("stream ids out of order"));
                }
            }
            s.entries.insert(id, fv.into_boxed_slice());
            seen_live += 1;
        }
        if it.next().is_some() {
            return Err(bad("stream listpack trailing elements"));
        }
        if seen_live != live {
            return Err(bad("stream listpack live count"));
        }
        if s.nodes.contains_key(&master) {
            return Err(bad("stream node re-added"));
        }
        s.nodes.insert(
            master,
            Node {
                live: live as u64,
                deleted: deleted as u64,
                bytes: blob.len(),
                master_fields: master_fields.into_boxed_slice(),
                last_id: last_in_node,
            },
        );
    }
    // Nodes whose entries were all deleted hold nothing: drop them.
    s.nodes.retain(|_, n| n.live > 0);
    let length = r.len()?;
    s.last_id = read_id(r)?;
    if t == TYPE_STREAM_LISTPACKS {
        s.entries_added = length;
        s.first_id = s
            .entries
            .first_key_value()
            .map(|(k, _)| *k)
            .unwrap_or_default();
    } else {
        s.first_id = read_id(r)?;
        s.max_deleted_id = read_id(r)?;
        s.entries_added = r.len()?;
    }
    if length != s.entries.len() as u64 {
        return Err(bad("stream length inconsistent with its entries"));
    }
    if s.entries
        .last_key_value()
        .is_some_and(|(k, _)| *k > s.last_id)
    {
        return Err(bad("stream entry beyond the last id"));
    }
    let groups = r.count()?;
    for _ in 0..groups {
        let name = CompactBytes::from(r.string()?);
        let last = read_id(r)?;
        let entries_read = if t == TYPE_STREAM_LISTPACKS {
            s.estimate_distance(last)
        } else {
            r.len()? as i64
        };
        let mut g = ConsumerGroup::new(last, entries_read);
        let pel = r.count()?;
        for _ in 0..pel {
            let id = StreamId::from_be_bytes(r.take(16)?).ok_or(bad("pel id"))?;
            let delivery_time = read_ms_time(r)?;
            let delivery_count = r.len()?;
            let nack = Nack {
                delivery_time,
                delivery_count,
                consumer: CompactBytes::new(b""),
            };
            if g.pel.insert(id, nack).is_some() {
                return Err(bad("duplicate PEL entry"));
            }
        }
        let consumers = r.count()?;
        for _ in 0..consumers {
            let cname = CompactBytes::from(r.string()?);
            let seen_time = read_ms_time(r)?;
            if t == TYPE_STREAM_LISTPACKS_3 {
                read_ms_time(r)?; // active time (7.2): not kept
            }
            let mut c = Consumer {
                seen_time,
                pel: Default::default(),
            };
            let n = r.count()?;
            for _ in 0..n {
                let id = StreamId::from_be_bytes(r.take(16)?).ok_or(bad("pel id"))?;
                let nack = g
                    .pel
                    .get_mut(&id)
                    .ok_or(bad("consumer entry not in the group PEL"))?;
                if !nack.consumer.is_empty() || !c.pel.insert(id) {
                    return Err(bad("duplicate consumer PEL entry"));
                }
                nack.consumer = cname.clone();
            }
            if g.consumers.insert(cname, c).is_some() {
                return Err(bad("duplicate consumer"));
            }
        }
        if g.pel.values().any(|n| n.consumer.is_empty()) {
            return Err(bad("PEL entry without consumer"));
        }
        if s.groups.insert(name, g).is_some() {
            return Err(bad("duplicate consumer group"));
        }
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::storage::rdb::{dump_payload, load_value, verify_payload};
    use crate::engine::storage::stream::{NodeLimits, StreamValue};
    use crate::engine::storage::value::Value;

    fn sample() -> StreamValue {
        let limits = NodeLimits {
            max_entries: 3,
            max_bytes: 4096,
        };
        let mut s = StreamValue::default();
        for i in 0..10u64 {
            let v = (i * 1000).to_string();
            let fields: Vec<&[u8]> = if i % 4 == 0 {
                vec![b"other", v.as_bytes()]
            } else {
                vec![b"n", v.as_bytes(), b"s", b"a longer string value"]
            };
            s.append(StreamId::new(100 + i, i), &fields, limits)
                .unwrap();
        }
        s.delete(StreamId::new(101, 1));
        s.delete(StreamId::new(109, 9));
        let mut g = ConsumerGroup::new(StreamId::new(104, 4), 5);
        g.consumers.insert(
            CompactBytes::new(b"alice"),
            Consumer {
                seen_time: 1_700_000_000_123,
                pel: Default::default(),
            },
        );
        g.assign(StreamId::new(102, 2), b"alice", 1_700_000_000_000, Some(3));
        g.assign(StreamId::new(101, 1), b"alice", -5, Some(1));
        s.groups.insert(CompactBytes::new(b"g"), g);
        s.groups.insert(
            CompactBytes::new(b"unknown-read"),
            ConsumerGroup::new(StreamId::MIN, -1),
        );
        s
    }

    #[test]
    fn streams_round_trip_with_groups_tombstones_and_nodes() {
        let s = sample();
        let payload = dump_payload(&Value::Stream(Box::new(s.clone())));
        let body = verify_payload(&payload).unwrap();
        assert_eq!(body[0], TYPE_STREAM_LISTPACKS_2);
        let Ok(Value::Stream(back)) = load_value(body) else {
            panic!("a stream comes back");
        };
        assert_eq!(back.entries, s.entries);
        assert_eq!(back.groups, s.groups);
        assert_eq!(
            (
                back.last_id,
                back.first_id,
                back.max_deleted_id,
                back.entries_added
            ),
            (s.last_id, s.first_id, s.max_deleted_id, s.entries_added)
        );
        let masters: Vec<StreamId> = back.nodes.keys().copied().collect();
        assert_eq!(masters, s.nodes.keys().copied().collect::<Vec<_>>());
    }

    #[test]
    fn listpack_elements_parse_back() {
        let mut lp = Listpack::new();
        let ints = [
            0i64,
            127,
            128,
            -1,
            -4096,
            4095,
            32767,
            -32768,
            (1 << 23) - 1,
            -(1 << 23),
            i32::MAX as i64,
            i32::MIN as i64,
            i64::MAX,
            i64::MIN,
        ];
        for n in ints {
            lp.int(n);
        }
        let long = vec![b'x'; 5000];
        lp.string(b"short");
        lp.string(&[b'y'; 100]);
        lp.string(&long);
        let blob = lp.finish();
        let items = super::super::listpack_entries(&blob).unwrap();
        let got: Vec<Vec<u8>> = items.iter().map(|e| e.to_bytes()).collect();
        let mut want: Vec<Vec<u8>> = ints.iter().map(|n| n.to_string().into_bytes()).collect();
        want.push(b"short".to_vec());
        want.push(vec![b'y'; 100]);
        want.push(long);
        assert_eq!(got, want);
    }

    #[test]
    fn a_consumer_pel_entry_missing_from_the_group_is_bad_data() {
        let mut s = sample();
        let g = s.groups.get_mut(&b"g"[..]).unwrap();
        g.pel.remove(&StreamId::new(102, 2));
        let payload = dump_payload(&Value::Stream(Box::new(s)));
        let body = verify_payload(&payload).unwrap();
        assert!(load_value(body).is_err());
    }
}
