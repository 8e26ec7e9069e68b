//! Fuzz `cmsgpack.unpack`, `unpack_limit` and `pack`, the MessagePack library scripts use on
//! bytes a client passes in ARGV, in the scripts' own interpreter (engine::fuzzing). Nothing
//! may panic. Unpacking one value at a time gives the values (or the failure) of unpacking all
//! at once; what unpacks packs to bytes that unpack to the same values (when nested no deeper
//! than pack's limit of 16 tables), and packing is a fixed point after one round. Pure.

use redispair::engine::fuzzing::{LuaData, ScriptLibraries};

/// Tables nested deeper than this are packed as nil.
const PACK_NESTING: usize = 16;

thread_local! {
    static LIBS: ScriptLibraries = ScriptLibraries::new().expect("the scripting interpreter starts");
}

/// `unpack_limit(data, 1, offset)` from offset 0 to the end: the values, or None on an error.
fn unpack_one_by_one(libs: &ScriptLibraries, data: &[u8]) -> Option<Vec<LuaData>> {
    let mut values = Vec::new();
    let mut offset = 0;
    loop {
        let (next, one) = libs.msgpack_unpack_limit(data, 1, offset).ok()?;
        assert!(
            one.len() <= 1,
            "unpack_limit(data, 1) gave {} values",
            one.len()
        );
        values.extend(one);
        if next == -1 {
            return Some(values);
        }
        assert!(
            next > offset,
            "unpack_limit went from offset {offset} to {next}"
        );
        offset = next;
    }
}

/// One input: see the module's documentation.
pub fn fuzz_one(data: &[u8]) {
    LIBS.with(|libs| {
        let all = libs.msgpack_unpack_pack(data);
        let stepped = unpack_one_by_one(libs, data);
        let (values, packed) = match all {
            Ok(ok) => ok,
            Err(_) => {
                assert_eq!(stepped, None, "unpack failed where unpack_one did not");
                return;
            }
        };
        assert_eq!(stepped.as_ref(), Some(&values), "unpack vs unpack_one");
        let (again, repacked) = libs
            .msgpack_unpack_pack(&packed)
            .expect("what pack wrote unpacks");
        if values.iter().all(|v| v.depth() <= PACK_NESTING) {
            assert_eq!(again, values, "unpack(pack(values))");
        }
        let (third, _) = libs
            .msgpack_unpack_pack(&repacked)
            .expect("what pack wrote unpacks");
        assert_eq!(third, again, "pack is not a fixed point");
    });
}
