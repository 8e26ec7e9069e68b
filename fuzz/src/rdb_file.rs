//! Fuzz the RDB file reader (storage::rdbfile, what `dump.rdb` at start and a Redis master's
//! full sync feed the engine): the input as a file as it is, then with its checksum zeroed
//! (Redis's "no checksum") so damaged bytes reach the parser instead of failing the checksum.
//! Neither may panic; the keys of a file it accepts, written again, read back the same. Pure.

use redispair::engine::storage::rdb;
use redispair::engine::storage::rdbfile::{self, Item, RdbWriter};

/// (db, key, DUMP payload of the value, expiry) of every key a file holds, or None.
fn keys(data: &[u8]) -> Option<Vec<(usize, Vec<u8>, Vec<u8>, i64)>> {
    let mut out = Vec::new();
    rdbfile::read(data, |item| {
        if let Item::Entry {
            db,
            key,
            value,
            expire_at_ms,
        } = item
        {
            out.push((db, key, rdb::dump_payload(&value), expire_at_ms));
        }
        Ok(())
    })
    .ok()?;
    Some(out)
}

/// One input: see the module's documentation.
pub fn fuzz_one(data: &[u8]) {
    let _ = keys(data);
    let mut unchecked = data.to_vec();
    if unchecked.len() >= 8 {
        let n = unchecked.len();
        unchecked[n - 8..].fill(0);
    }
    let Some(found) = keys(&unchecked) else {
        return;
    };
    let mut w = RdbWriter::new(Vec::new(), &[]).expect("writing to memory");
    let mut db = None;
    for (d, key, payload, at) in &found {
        if db != Some(*d) {
            w.select_db(*d, 0, 0).expect("writing to memory");
            db = Some(*d);
        }
        let body = rdb::verify_payload(payload).expect("DUMP writes a valid footer");
        let value = rdb::load_value(body).expect("a loaded value's DUMP loads");
        w.entry(key, &value, *at).expect("writing to memory");
    }
    let written = w.finish().expect("writing to memory");
    assert_eq!(
        keys(&written).as_ref(),
        Some(&found),
        "a file's keys, written again, read back differently"
    );
}
