//! Fuzz RESTORE's payload decoder (storage::rdb): the input as a whole payload (checksum and
//! all, as a client sends it), then as the body behind a valid footer so the value decoder
//! itself is reached. Neither may panic; a value it accepts must DUMP to a payload that
//! RESTOREs to a value with the same DUMP (the engine's own encoding is a fixed point). Pure.

use redispair::engine::storage::rdb;

fn with_footer(body: &[u8]) -> Vec<u8> {
    let mut payload = body.to_vec();
    payload.extend_from_slice(&rdb::RDB_VERSION.to_le_bytes());
    let crc = rdb::crc64(&payload);
    payload.extend_from_slice(&crc.to_le_bytes());
    payload
}

/// One input: see the module's documentation.
pub fn fuzz_one(data: &[u8]) {
    if let Some(body) = rdb::verify_payload(data) {
        let _ = rdb::load_value(body);
    }
    let payload = with_footer(data);
    let body = rdb::verify_payload(&payload).expect("a payload with a valid footer verifies");
    assert_eq!(body, data);
    let Ok(value) = rdb::load_value(body) else {
        return;
    };
    let dumped = rdb::dump_payload(&value);
    let body = rdb::verify_payload(&dumped).expect("DUMP writes a valid footer");
    let reloaded = match rdb::load_value(body) {
        Ok(v) => v,
        Err(e) => panic!("DUMP of a restored value does not RESTORE: {e:?}"),
    };
    assert_eq!(reloaded.value_type(), value.value_type());
    assert_eq!(rdb::dump_payload(&reloaded), dumped);
}
