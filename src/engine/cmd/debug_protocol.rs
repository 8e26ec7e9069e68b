//! DEBUG PROTOCOL (one reply of each RESP type, for client tests), DEBUG
//! SET-DISABLE-DENY-SCRIPTS, and the DEBUG test hooks the engine accepts without an effect of
//! its own (QUICKLIST-PACKED-THRESHOLD, REPLYBUFFER). Pure (builds replies).
//!
//! `cmd::server::debug` calls [`debug_extra`] first; `None` means "not one of these".

use bytes::Bytes;

use super::args::{is, lossy};
use super::Ctx;
use crate::engine::protocol::arg::Arg;
use crate::engine::protocol::reply::Reply;

/// The DEBUG subcommands handled here, or `None` for the others.
pub fn debug_extra(ctx: &mut Ctx<'_>, a: &[Arg]) -> Option<Reply> {
    let sub = a.get(1)?;
    if is(sub, "protocol") && a.len() == 3 {
        return Some(protocol_reply(&a[2], ctx.client.proto));
    }
    // Redis's threshold above which a list element gets a quicklist node of its own ("plain"
    // node). The engine's lists have no nodes, so the value is checked as Redis checks it and
    // has no other effect: the list commands the suite runs after it behave the same.
    if is(sub, "quicklist-packed-threshold") && a.len() == 3 {
        // Redis's bound (quicklistisSetPackedThreshold); 0 means its default, 1 GB.
        let ok = crate::engine::config::parse_memory(&lossy(&a[2]))
            .is_some_and(|n| n <= (1u64 << 32) - (1 << 20));
        return Some(if ok {
            Reply::Ok
        } else {
            Reply::err_static(
                "ERR argument must be a memory value bigger than 1 and smaller than 4gb",
            )
        });
    }
    // A test hook: scripts may call commands flagged `noscript` (DEBUG, CLIENT LIST...) while
    // it is set, as in Redis.
    if is(sub, "set-disable-deny-scripts") && a.len() == 3 {
        return Some(match super::args::parse_i64_strict(&a[2]) {
            Some(v) => {
                ctx.state.script_disable_deny = v != 0;
                Reply::Ok
            }
            None => super::args::not_int(),
        });
    }
    // Redis's reply-buffer resizing knobs: the engine has no per-client reply buffer to resize.
    if is(sub, "replybuffer") && a.len() == 4 {
        if is(&a[2], "peak-reset-time") {
            if !is(&a[3], "never")
                && !is(&a[3], "reset")
                && super::args::parse_i64_strict(&a[3]).is_none()
            {
                return Some(super::args::not_int());
            }
            return Some(Reply::Ok);
        }
        if is(&a[2], "resizing") {
            return Some(Reply::Ok);
        }
        return Some(Reply::error(format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try DEBUG HELP.",
            lossy(&a[2])
        )));
    }
    None
}

/// DEBUG PROTOCOL <type>: Redis's fixed reply of that RESP type, in the client's protocol.
fn protocol_reply(name: &[u8], proto: u8) -> Reply {
    match String::from_utf8_lossy(name).to_ascii_lowercase().as_str() {
        "string" => Reply::Bulk(Bytes::from_static(b"Hello World")),
        "integer" => Reply::Int(12345),
        // Redis's literal, not π.
        #[allow(clippy::approx_constant)]
        "double" => Reply::Double(3.141),
        "bignum" => Reply::BigNum(Bytes::from_static(b"1234567999999999999999999999999999999")),
        "null" => Reply::Nil,
        "array" => Reply::Array((0..3).map(Reply::Int).collect()),
        "set" => Reply::Set((0..3).map(Reply::Int).collect()),
        "map" => Reply::Map((0..3).map(|j| (Reply::Int(j), Reply::Bool(j == 1))).collect()),
        // An attribute is not a reply of its own: the real reply follows it (RESP2: alone).
        "attrib" => Reply::Attribute(Box::new((
            vec![(
                Reply::Bulk(Bytes::from_static(b"key-popularity")),
                Reply::Array(vec![
                    Reply::Bulk(Bytes::from_static(b"key:123")),
                    Reply::Int(90),
                ]),
            )],
            Reply::Bulk(Bytes::from_static(
                b"Some real reply following the attribute",
            )),
        ))),
        "push" => {
            if proto < 3 {
                return Reply::err_static("ERR RESP2 is not supported by this command");
            }
            const REAL: &str = "Some real reply following the push reply";
            Reply::Raw(Bytes::from(format!(
                ">2\r\n$16\r\nserver-cpu-usage\r\n:42\r\n${}\r\n{REAL}\r\n",
                REAL.len()
            )))
        }
        "true" => Reply::Bool(true),
        "false" => Reply::Bool(false),
        "verbatim" => Reply::Verbatim(Bytes::from_static(b"This is a verbatim\nstring")),
        _ => Reply::err_static(
            "ERR Wrong protocol type name. Please use one of the following: string|integer|double|bignum|null|array|set|map|attrib|push|verbatim|true|false",
        ),
    }
}
