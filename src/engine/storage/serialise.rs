//! Serialising an entry as the commands that recreate it (SET, RPUSH, HSET, SADD, ZADD, XADD...,
//! then PEXPIREAT): the encoding of snapshots and full syncs. Pure.

use super::{CompactBytes, Entry, Value};
use crate::engine::protocol::commands::encode_command;

/// Elements per command for big collections (keeps each command small).
const CHUNK: usize = 128;

/// Append the commands recreating `key` to `out`.
pub fn serialise_entry(key: &CompactBytes, e: &Entry, out: &mut Vec<u8>) {
    // Arguments are borrowed slices of the entry: this runs for every key of every snapshot
    // and full sync, mostly under the state lock, so it copies each byte once, into `out`.
    let k = key.as_slice();
    match &e.value {
        Value::Str(s) => encode_command(&[b"SET".as_slice(), k, s.as_slice()], out),
        Value::List(l) => {
            let items: Vec<&[u8]> = l.items.iter().map(|i| i.as_slice()).collect();
            for chunk in items.chunks(CHUNK) {
                encode_with_key(b"RPUSH", k, chunk, out);
            }
        }
        Value::Hash(h) => {
            let flat: Vec<&[u8]> = h.iter().flat_map(|(f, v)| [f, v]).collect();
            for chunk in flat.chunks(2 * CHUNK) {
                encode_with_key(b"HSET", k, chunk, out);
            }
        }
        Value::Set(s) => {
            // Intset members are built from their integers (inline, no allocation).
            let owned: Vec<_> = s.iter().collect();
            let members: Vec<&[u8]> = owned.iter().map(|m| m.as_slice()).collect();
            for chunk in members.chunks(CHUNK) {
                encode_with_key(b"SADD", k, chunk, out);
            }
        }
        Value::ZSet(z) => {
            let pairs: Vec<_> = z.iter().collect();
            for chunk in pairs.chunks(CHUNK) {
                let scores: Vec<String> = chunk.iter().map(|(_, sc)| format_score(*sc)).collect();
                let mut args: Vec<&[u8]> = Vec::with_capacity(2 + 2 * chunk.len());
                args.extend([b"ZADD".as_slice(), k]);
                for ((m, _), score) in chunk.iter().zip(&scores) {
                    args.push(score.as_bytes());
                    args.push(m);
                }
                encode_command(&args, out);
            }
        }
        Value::Stream(st) => serialise_stream(k, st, out),
    }
    if e.expire_at != 0 {
        let at = e.expire_at.to_string();
        encode_command(&[b"PEXPIREAT".as_slice(), k, at.as_bytes()], out);
    }
}

/// `name key rest...` as one command.
fn encode_with_key(name: &'static [u8], key: &[u8], rest: &[&[u8]], out: &mut Vec<u8>) {
    let mut args: Vec<&[u8]> = Vec::with_capacity(2 + rest.len());
    args.extend([name, key]);
    args.extend_from_slice(rest);
    encode_command(&args, out);
}

/// A score as text that parses back to exactly the same double.
fn format_score(s: f64) -> String {
    if s == f64::INFINITY {
        "inf".into()
    } else if s == f64::NEG_INFINITY {
        "-inf".into()
    } else {
        // Rust's shortest round-trip representation.
        format!("{s:?}")
    }
}

/// A stream as Redis's AOF rewrite writes it: one XADD per entry (or, for an empty stream, an
/// XADD trimmed away at once), XSETID for the counters, then per group XGROUP CREATE with its
/// read counter, XCLAIM ... FORCE JUSTID for each pending entry (owner, delivery time and count)
/// and XGROUP CREATECONSUMER for consumers with nothing pending.
fn serialise_stream(k: &[u8], st: &super::stream::StreamValue, out: &mut Vec<u8>) {
    if st.entries.is_empty() {
        encode_command(
            &[b"XADD".as_slice(), k, b"MAXLEN", b"0", b"0-1", b"x", b"y"],
            out,
        );
    }
    for (id, fv) in &st.entries {
        let id = id.to_string();
        let mut args: Vec<&[u8]> = Vec::with_capacity(3 + fv.len());
        args.extend([b"XADD".as_slice(), k, id.as_bytes()]);
        args.extend(fv.iter().map(|f| f.as_slice()));
        encode_command(&args, out);
    }
    let (last, added, maxdel) = (
        st.last_id.to_string(),
        st.entries_added.to_string(),
        st.max_deleted_id.to_string(),
    );
    encode_command(
        &[
            b"XSETID".as_slice(),
            k,
            last.as_bytes(),
            b"ENTRIESADDED",
            added.as_bytes(),
            b"MAXDELETEDID",
            maxdel.as_bytes(),
        ],
        out,
    );
    for (name, g) in &st.groups {
        let (gid, read) = (g.last_id.to_string(), g.entries_read.to_string());
        encode_command(
            &[
                b"XGROUP".as_slice(),
                b"CREATE",
                k,
                name.as_slice(),
                gid.as_bytes(),
                b"ENTRIESREAD",
                read.as_bytes(),
            ],
            out,
        );
        for (cname, c) in &g.consumers {
            if c.pel.is_empty() {
                encode_command(
                    &[
                        b"XGROUP".as_slice(),
                        b"CREATECONSUMER",
                        k,
                        name.as_slice(),
                        cname.as_slice(),
                    ],
                    out,
                );
                continue;
            }
            for id in &c.pel {
                let Some(n) = g.pel.get(id) else { continue };
                let (id, time, count) = (
                    id.to_string(),
                    n.delivery_time.to_string(),
                    n.delivery_count.to_string(),
                );
                encode_command(
                    &[
                        b"XCLAIM".as_slice(),
                        k,
                        name.as_slice(),
                        cname.as_slice(),
                        b"0",
                        id.as_bytes(),
                        b"TIME",
                        time.as_bytes(),
                        b"RETRYCOUNT",
                        count.as_bytes(),
                        b"JUSTID",
                        b"FORCE",
                    ],
                    out,
                );
            }
        }
    }
}
