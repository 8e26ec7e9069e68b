//! MIGRATE: move keys to another Redis-compatible server: DUMP here, RESTORE there, DEL here.
//! Does network I/O: a blocking TCP connection to the target, on the command's thread, while the
//! state lock is held.
//!
//! Why blocking under the lock: MIGRATE is atomic in Redis (the server is single-threaded and
//! MIGRATE blocks it for up to its timeout), and clients rely on that: once `+OK` arrives the key
//! is on the target and gone here, with no moment where a write to it here could be lost between
//! the DUMP and the DEL. Doing the I/O outside the lock would need the key fenced meanwhile;
//! holding the lock is the same contract as Redis's, bounded by the command's own timeout. The
//! connection layer runs a batch with MIGRATE off the runtime's worker (`block_in_place`), as
//! it does for scripts, so the worker's other connections move to another thread.
//!
//! Differences from Redis 7.0.15, decided and recorded in docs/compatibility.md: no cached
//! connections (`migrate_cached_sockets` stays 0; each MIGRATE connects anew), no TLS to the
//! target, and no retry on a fresh connection after a socket error (Redis retries once when its
//! cached socket had gone stale; a new connection is never stale). Keys deleted here before a
//! read error are propagated as DEL (Redis leaves them out of its stream in that case, which
//! would make the replicas and the log disagree with the dataset).

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use bytes::Bytes;

use super::args::{int_arg, is, syntax_error};
use super::flags::*;
use super::{CommandSpec, Ctx};
use crate::engine::protocol::arg::Arg;
use crate::engine::protocol::commands::encode_command;
use crate::engine::protocol::reply::Reply;
use crate::engine::storage::rdb;

pub const COMMANDS: &[CommandSpec] =
    &[
        CommandSpec::new("migrate", -6, WRITE, (3, 3, 1), "generic", migrate)
            .with_keys(migrate_keys),
    ];

/// Key positions (Redis's `migrateGetKeys`): the key argument, or everything after KEYS when the
/// key argument is empty. AUTH and AUTH2 values are skipped, so a password spelled "KEYS" is not
/// taken for the option.
pub fn migrate_keys(a: &[Arg]) -> Vec<usize> {
    let mut i = 6;
    while i < a.len() {
        if is(&a[i], "auth") {
            i += 1;
        } else if is(&a[i], "auth2") {
            i += 2;
        } else if is(&a[i], "keys") {
            if !a[3].is_empty() {
                return Vec::new();
            }
            return (i + 1..a.len()).collect();
        }
        i += 1;
    }
    vec![3]
}

/// What MIGRATE was asked to do.
struct Request<'a> {
    host: &'a [u8],
    port: &'a [u8],
    db: i64,
    timeout: Duration,
    copy: bool,
    replace: bool,
    /// AUTH password, or AUTH2 user and password.
    auth: Option<(Option<&'a Arg>, &'a Arg)>,
    keys: &'a [Arg],
}

fn parse(a: &[Arg]) -> Result<Request<'_>, Reply> {
    let (mut copy, mut replace, mut auth) = (false, false, None);
    let mut keys = &a[3..4];
    let mut j = 6;
    while j < a.len() {
        let more = a.len() - 1 - j;
        if is(&a[j], "copy") {
            copy = true;
        } else if is(&a[j], "replace") {
            replace = true;
        } else if is(&a[j], "auth") {
            if more < 1 {
                return Err(syntax_error());
            }
            auth = Some((None, &a[j + 1]));
            j += 1;
        } else if is(&a[j], "auth2") {
            if more < 2 {
                return Err(syntax_error());
            }
            auth = Some((Some(&a[j + 1]), &a[j + 2]));
            j += 2;
        } else if is(&a[j], "keys") {
            if !a[3].is_empty() {
                return Err(Reply::err_static(
                    "ERR When using MIGRATE KEYS option, the key argument must be set to the empty string",
                ));
            }
            keys = &a[j + 1..];
            break;
        } else {
            return Err(syntax_error());
        }
        j += 1;
    }
    // Redis reads the timeout before the database, so a bad timeout is the error reported.
    let timeout = int_arg(&a[5])?;
    let db = int_arg(&a[4])?;
    let timeout = if timeout <= 0 { 1000 } else { timeout };
    Ok(Request {
        host: &a[1],
        port: &a[2],
        db,
        timeout: Duration::from_millis(timeout as u64),
        copy,
        replace,
        auth,
        keys,
    })
}

/// One key to send: its name, its remaining time to live (0: none) and its DUMP payload.
struct Outgoing {
    key: Arg,
    ttl_ms: i64,
    payload: Vec<u8>,
}

fn migrate(ctx: &mut Ctx<'_>, a: &[Arg]) -> Reply {
    let req = match parse(a) {
        Ok(r) => r,
        Err(e) => return e,
    };
    let now = ctx.now_ms;
    let mut out = Vec::new();
    for k in req.keys {
        if let Some(e) = ctx.db().get(k, now) {
            // At least 1 ms: a deadline that falls due during the transfer must not arrive as
            // "no TTL" (RESTORE's 0), which would make the key immortal on the target.
            let ttl_ms = if e.expire_at == 0 {
                0
            } else {
                (e.expire_at - now).max(1)
            };
            out.push(Outgoing {
                key: k.clone(),
                ttl_ms,
                payload: rdb::dump_payload(&e.value),
            });
        }
    }
    if out.is_empty() {
        return Reply::Status(Bytes::from_static(b"NOKEY"));
    }
    let outcome = transfer(&req, &out);
    // Delete here what the target acknowledged, unless COPY: the key exists in one place.
    let mut deleted = vec![Arg::from_static(b"DEL")];
    if !req.copy {
        for (o, restored) in out.iter().zip(&outcome.restored) {
            if *restored && ctx.db().remove(&o.key).is_some() {
                ctx.modified(&o.key);
                deleted.push(o.key.clone());
            }
        }
    }
    if deleted.len() > 1 {
        ctx.propagate_as(deleted);
    } else {
        ctx.propagate_nothing();
    }
    match outcome.error {
        None => Reply::Ok,
        Some(e) => e,
    }
}

/// What the target answered: which keys it restored, and the reply when not all went well.
struct Outcome {
    restored: Vec<bool>,
    error: Option<Reply>,
}

fn io_error(what: &str) -> Reply {
    Reply::Error(Bytes::from(format!(
        "IOERR error or timeout {what} target instance"
    )))
}

/// Send AUTH and SELECT, then (if they were accepted) one RESTORE per key in one write, and
/// read the replies in order.
fn transfer(req: &Request<'_>, keys: &[Outgoing]) -> Outcome {
    let mut outcome = Outcome {
        restored: vec![false; keys.len()],
        error: None,
    };
    let stream = match connect(req) {
        Some(s) => s,
        None => {
            outcome.error = Some(Reply::err_static(
                "IOERR error or timeout connecting to the client",
            ));
            return outcome;
        }
    };
    // AUTH and SELECT go first, on their own, and their replies are read before any RESTORE
    // is sent. Redis pipelines them with the RESTOREs: when the target refuses the AUTH its
    // connection is still the default user's (often `nopass`), so the RESTOREs run there anyway
    // while the source reports the error and keeps the keys (a copy made by accident); a refused
    // SELECT puts them in the wrong database. One more round trip rules both out.
    let mut buf = Vec::new();
    if let Some((user, password)) = req.auth {
        match user {
            Some(u) => encode_command(&[b"AUTH".as_slice(), u, password], &mut buf),
            None => encode_command(&[b"AUTH".as_slice(), password], &mut buf),
        }
    }
    let db = req.db.to_string();
    encode_command(&[b"SELECT".as_slice(), db.as_bytes()], &mut buf);
    if send(&stream, &buf).is_err() {
        outcome.error = Some(io_error("writing to"));
        return outcome;
    }
    let mut reader = BufReader::new(&stream);
    let mut line = Vec::new();
    let preamble = usize::from(req.auth.is_some()) + 1;
    let mut setup_error = None;
    for _ in 0..preamble {
        match read_line(&mut reader, &mut line) {
            Ok(()) if line.first() == Some(&b'-') && setup_error.is_none() => {
                setup_error = Some(target_error(&line));
            }
            Ok(()) => {}
            Err(()) => {
                outcome.error = Some(io_error("reading from"));
                return outcome;
            }
        }
    }
    if let Some(e) = setup_error {
        outcome.error = Some(e);
        return outcome;
    }
    buf.clear();
    for k in keys {
        let ttl = k.ttl_ms.to_string();
        let mut cmd: Vec<&[u8]> = vec![b"RESTORE", &k.key, ttl.as_bytes(), &k.payload];
        if req.replace {
            cmd.push(b"REPLACE");
        }
        encode_command(&cmd, &mut buf);
    }
    if send(&stream, &buf).is_err() {
        outcome.error = Some(io_error("writing to"));
        return outcome;
    }
    for restored in outcome.restored.iter_mut() {
        match read_line(&mut reader, &mut line) {
            Ok(()) if line.first() == Some(&b'-') => {
                // The first error is the reply; the other keys that made it still count.
                if outcome.error.is_none() {
                    outcome.error = Some(target_error(&line));
                }
            }
            Ok(()) => *restored = true,
            Err(()) => {
                if outcome.error.is_none() {
                    outcome.error = Some(io_error("reading from"));
                }
                break;
            }
        }
    }
    outcome
}

fn send(mut stream: &TcpStream, buf: &[u8]) -> std::io::Result<()> {
    stream.write_all(buf)?;
    stream.flush()
}

fn target_error(line: &[u8]) -> Reply {
    Reply::Error(Bytes::from(format!(
        "ERR Target instance replied with error: {}",
        String::from_utf8_lossy(&line[1..])
    )))
}

/// Resolve and connect within the timeout; the same timeout then bounds each write and read.
fn connect(req: &Request<'_>) -> Option<TcpStream> {
    let host = std::str::from_utf8(req.host).ok()?;
    let port: u16 = std::str::from_utf8(req.port).ok()?.parse().ok()?;
    let addrs = (host, port).to_socket_addrs().ok()?;
    for addr in addrs {
        if let Ok(s) = TcpStream::connect_timeout(&addr, req.timeout) {
            s.set_read_timeout(Some(req.timeout)).ok()?;
            s.set_write_timeout(Some(req.timeout)).ok()?;
            s.set_nodelay(true).ok()?;
            return Some(s);
        }
    }
    None
}

/// One reply line without its CRLF. A target answers AUTH, SELECT and RESTORE with a simple
/// string or an error; anything longer than a line is not a reply MIGRATE can get.
fn read_line(reader: &mut impl BufRead, line: &mut Vec<u8>) -> Result<(), ()> {
    line.clear();
    match reader.read_until(b'\n', line) {
        Ok(0) | Err(_) => Err(()),
        Ok(_) => {
            while matches!(line.last(), Some(b'\n' | b'\r')) {
                line.pop();
            }
            if line.is_empty() {
                return Err(());
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(words: &[&str]) -> Vec<Arg> {
        words.iter().map(|w| Arg::from(w.to_string())).collect()
    }

    #[test]
    fn keys_are_found_as_redis_finds_them() {
        let k = |w: &[&str]| migrate_keys(&args(w));
        assert_eq!(k(&["migrate", "h", "1", "key", "0", "500"]), vec![3]);
        assert_eq!(
            k(&["migrate", "h", "1", "", "0", "5000", "KEYS", "a", "b"]),
            vec![7, 8]
        );
        // A password that reads "KEYS" is not the option.
        assert_eq!(
            k(&["migrate", "h", "1", "", "0", "5000", "AUTH", "KEYS", "KEYS", "rw"]),
            vec![9]
        );
        assert_eq!(
            k(&["migrate", "h", "1", "", "0", "5000", "AUTH2", "KEYS", "123", "KEYS", "rw"]),
            vec![10]
        );
        // KEYS with a non-empty key argument: an error, so no keys.
        assert!(k(&["migrate", "h", "1", "key", "0", "5000", "KEYS", "a"]).is_empty());
    }

    #[test]
    fn bad_arguments_are_refused_before_any_connection() {
        let err = |w: &[&str]| match parse(&args(w)) {
            Err(Reply::Error(e)) => String::from_utf8_lossy(&e).into_owned(),
            Err(other) => panic!("not an error: {other:?}"),
            Ok(_) => panic!("accepted: {w:?}"),
        };
        assert!(err(&["migrate", "h", "1", "k", "0", "5000", "AUTH"]).contains("syntax"));
        assert!(err(&["migrate", "h", "1", "k", "0", "5000", "AUTH2", "u"]).contains("syntax"));
        assert!(err(&["migrate", "h", "1", "k", "0", "5000", "BOGUS"]).contains("syntax"));
        assert!(err(&["migrate", "h", "1", "k", "0", "5000", "KEYS", "a"]).contains("empty string"));
        assert!(err(&["migrate", "h", "1", "k", "0", "soon"]).contains("not an integer"));
        assert!(err(&["migrate", "h", "1", "k", "db", "10"]).contains("not an integer"));
        let a = args(&["migrate", "h", "1", "k", "3", "0", "COPY", "REPLACE"]);
        let Ok(r) = parse(&a) else { panic!("refused") };
        assert!(r.copy && r.replace && r.db == 3);
        assert_eq!(r.timeout, Duration::from_millis(1000));
    }
}
