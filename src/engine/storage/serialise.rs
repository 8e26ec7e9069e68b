//! Serialising an entry as the commands that recreate it (SET, RPUSH, HSET, SADD, ZADD, then
//! PEXPIREAT): the encoding of snapshots and full syncs. Pure.

use super::{CompactBytes, Entry, Value};
use crate::engine::replication::stream::encode_command;

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
            let flat: Vec<&[u8]> = h
                .map
                .iter()
                .flat_map(|(f, v)| [f.as_slice(), v.as_slice()])
                .collect();
            for chunk in flat.chunks(2 * CHUNK) {
                encode_with_key(b"HSET", k, chunk, out);
            }
        }
        Value::Set(s) => {
            let members: Vec<&[u8]> = s.members.iter().map(|m| m.as_slice()).collect();
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
                    args.push(m.as_slice());
                }
                encode_command(&args, out);
            }
        }
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
