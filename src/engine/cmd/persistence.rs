//! SAVE, BGSAVE, BGREWRITEAOF (LASTSAVE is with the server commands). Pure (on the locked
//! state; BGSAVE hands the work to the persistence task).

use crate::engine::cmd::flags::*;
use crate::engine::cmd::{CommandSpec, Ctx};
use crate::engine::protocol::arg::Arg;
use crate::engine::protocol::reply::Reply;

pub const COMMANDS: &[CommandSpec] = &[
    CommandSpec::new(
        "save",
        1,
        ADMIN | NOSCRIPT | NO_MULTI,
        (0, 0, 0),
        "server",
        save,
    ),
    CommandSpec::new("bgsave", -1, ADMIN | NOSCRIPT, (0, 0, 0), "server", bgsave),
    CommandSpec::new(
        "bgrewriteaof",
        1,
        ADMIN | NOSCRIPT,
        (0, 0, 0),
        "server",
        bgrewriteaof,
    ),
];

fn off() -> Reply {
    Reply::err_static("ERR persistence is off (start the engine with --persistence on)")
}

fn save(ctx: &mut Ctx<'_>, _a: &[Arg]) -> Reply {
    if !ctx.state.persist.enabled {
        if ctx.state.persist.snapshot_in_progress {
            return Reply::err_static("ERR Background save already in progress");
        }
        // RDB mode: without the log, SAVE writes `dir/dbfilename` as redis-server does.
        return match crate::engine::state::dump::save_now(ctx.state, ctx.now_ms) {
            Ok(_) => Reply::Ok,
            Err(e) => {
                tracing::error!(error = %e, "SAVE failed");
                Reply::error(format!("ERR {e}"))
            }
        };
    }
    if ctx.state.persist.snapshot_in_progress {
        return Reply::err_static("ERR Background save already in progress");
    }
    match crate::engine::state::snapshot::save_inline(ctx.state, ctx.now_ms) {
        Ok(_) => Reply::Ok,
        Err(e) => {
            tracing::error!(error = %e, "SAVE failed");
            Reply::err_static("ERR")
        }
    }
}

fn request(ctx: &mut Ctx<'_>) {
    ctx.state.persist.snapshot_requested = true;
    ctx.state.persist.wake.notify_one();
}

fn bgsave(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let schedule = match a.len() {
        1 => false,
        2 if a[1].eq_ignore_ascii_case(b"schedule") => true,
        _ => return Reply::err_static("ERR syntax error"),
    };
    // With persistence off, the persistence task writes `dir/dbfilename` (RDB mode).
    if ctx.state.persist.snapshot_in_progress || ctx.state.persist.snapshot_requested {
        if schedule {
            request(ctx);
            return Reply::status("Background saving scheduled");
        }
        return Reply::err_static("ERR Background save already in progress");
    }
    request(ctx);
    Reply::status("Background saving started")
}

fn bgrewriteaof(ctx: &mut Ctx<'_>, _a: &[Arg]) -> Reply {
    if !ctx.state.persist.enabled {
        return off();
    }
    if ctx.state.persist.snapshot_in_progress || ctx.state.persist.snapshot_requested {
        return Reply::err_static("ERR Background append only file rewriting already in progress");
    }
    request(ctx);
    Reply::status("Background append only file rewriting started")
}
