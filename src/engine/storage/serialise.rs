//! Serialising an entry as the commands that recreate it (SET, RPUSH, HSET, SADD, ZADD, then
//! PEXPIREAT): the encoding of snapshots and full syncs. Pure.

use bytes::Bytes;

use super::{CompactBytes, Entry, Value};
use crate::engine::replication::stream::encode_command;

/// Elements per command for big collections (keeps each command small).
const CHUNK: usize = 128;

/// Append the commands recreating `key` to `out`.
pub fn serialise_entry(key: &CompactBytes, e: &Entry, out: &mut Vec<u8>) {
    let k = key.to_bytes();
    let b = |c: &CompactBytes| c.to_bytes();
    match &e.value {
        Value::Str(s) => encode_command(&[Bytes::from_static(b"SET"), k.clone(), b(s)], out),
        Value::List(l) => {
            let items: Vec<&CompactBytes> = l.items.iter().collect();
            for chunk in items.chunks(CHUNK) {
                let mut args = vec![Bytes::from_static(b"RPUSH"), k.clone()];
                args.extend(chunk.iter().map(|i| b(i)));
                encode_command(&args, out);
            }
        }
        Value::Hash(h) => {
            let pairs: Vec<_> = h.map.iter().collect();
            for chunk in pairs.chunks(CHUNK) {
                let mut args = vec![Bytes::from_static(b"HSET"), k.clone()];
                for (f, v) in chunk {
                    args.push(b(f));
                    args.push(b(v));
                }
                encode_command(&args, out);
            }
        }
        Value::Set(s) => {
            let members: Vec<_> = s.members.iter().collect();
            for chunk in members.chunks(CHUNK) {
                let mut args = vec![Bytes::from_static(b"SADD"), k.clone()];
                args.extend(chunk.iter().map(|m| b(m)));
                encode_command(&args, out);
            }
        }
        Value::ZSet(z) => {
            let pairs: Vec<_> = z.iter().collect();
            for chunk in pairs.chunks(CHUNK) {
                let mut args = vec![Bytes::from_static(b"ZADD"), k.clone()];
                for (m, score) in chunk {
                    args.push(Bytes::from(format_score(*score)));
                    args.push(b(m));
                }
                encode_command(&args, out);
            }
        }
    }
    if e.expire_at != 0 {
        encode_command(
            &[
                Bytes::from_static(b"PEXPIREAT"),
                k,
                Bytes::from(e.expire_at.to_string()),
            ],
            out,
        );
    }
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
