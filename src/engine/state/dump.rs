//! `dump.rdb`: the whole dataset (every database, expiries, function libraries) as a Redis RDB
//! file, and such a file loaded into the engine, using the file codec of
//! [`crate::engine::storage::rdbfile`]. Used at start (a fresh data directory imports
//! `dir/dbfilename`), by SAVE/BGSAVE/DEBUG RELOAD with persistence off, by `rdb-export`, and by
//! full syncs with stock Redis replicas and masters. Encoding and loading work on the state in
//! memory; `save_file` and `load_file` do I/O: they write and read that one file.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::engine::persistence::{io_err, PersistError};
use crate::engine::state::EngineState;
use crate::engine::storage::rdbfile::{self, Item, RdbFileError, RdbWriter, Summary};
use crate::engine::storage::{CompactBytes, Entry};

/// `dir/dbfilename`.
pub fn rdb_path(state: &EngineState) -> PathBuf {
    let dir = state.config.get("dir").unwrap_or(".");
    let name = state.config.get("dbfilename").unwrap_or("dump.rdb");
    Path::new(dir).join(name)
}

/// Replication aux fields of a full sync's payload (`repl-id`, `repl-offset`,
/// `repl-stream-db`), which let a Redis replica that later restarts from the file resume by
/// partial resync.
#[derive(Debug, Clone)]
pub struct ReplAux {
    pub replid: String,
    pub offset: u64,
    pub stream_db: Option<usize>,
}

/// The aux fields Redis 7.0 writes (tools print them; `redis-check-rdb` wants none of them in
/// particular), plus the replication ones when given.
fn aux_fields(
    state: &EngineState,
    repl: Option<&ReplAux>,
    now_ms: i64,
) -> Vec<(&'static str, String)> {
    let mut aux = vec![
        ("redis-ver", crate::engine::REDIS_VERSION.to_string()),
        ("redis-bits", "64".to_string()),
        ("ctime", (now_ms / 1000).to_string()),
        ("used-mem", crate::engine::memory::used_memory().to_string()),
        ("aof-base", "0".to_string()),
    ];
    if let Some(r) = repl {
        aux.push((
            "repl-stream-db",
            r.stream_db.map(|d| d as i64).unwrap_or(-1).to_string(),
        ));
        aux.push(("repl-id", r.replid.clone()));
        aux.push(("repl-offset", r.offset.to_string()));
    }
    // `state` is for future fields (lua scripts are not saved: Redis 7.0 does not either).
    let _ = state;
    aux
}

/// Write the dataset as an RDB file to `out`. Keys whose deadline passed are written too, as
/// Redis does: the loader decides (a master drops them, a replica keeps them for its master's
/// DEL).
pub fn encode_to<W: Write>(
    state: &EngineState,
    repl: Option<&ReplAux>,
    now_ms: i64,
    out: W,
) -> std::io::Result<W> {
    let mut w = RdbWriter::new(out, &aux_fields(state, repl, now_ms))?;
    for lib in state.scripting.libraries.values() {
        w.function(&lib.code)?;
    }
    for (i, db) in state.dbs.iter().enumerate() {
        if db.is_empty() {
            continue;
        }
        w.select_db(i, db.len() as u64, db.volatile_len() as u64)?;
        for (key, entry) in db.iter() {
            w.entry(key.as_slice(), &entry.value, entry.expire_at)?;
        }
    }
    w.finish()
}

/// The dataset as RDB bytes in memory (a full sync's payload).
pub fn encode(state: &EngineState, repl: Option<&ReplAux>, now_ms: i64) -> Vec<u8> {
    // Writing to a Vec cannot fail.
    encode_to(state, repl, now_ms, Vec::new()).unwrap_or_default()
}

/// What loading a file found besides the keys.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    pub summary: Summary,
    pub keys_loaded: u64,
    /// Keys skipped because their deadline had passed (only when loading as a master).
    pub expired_skipped: u64,
    pub functions: u64,
    pub repl_id: Option<String>,
    pub repl_offset: Option<u64>,
}

/// Load RDB bytes into `state`, adding to (and replacing keys of) what it holds; the caller
/// empties it first when the file is to be the whole dataset. `drop_expired`: skip keys whose
/// deadline is before `now_ms` (a master loading; a replica keeps them, as Redis does). The
/// whole file is checksummed before any key is inserted, but an error found later (a bad value
/// deep in the file) leaves the keys before it loaded: callers that cannot keep a partial
/// dataset clear it on error.
pub fn load(
    state: &mut EngineState,
    data: &[u8],
    now_ms: i64,
    drop_expired: bool,
) -> Result<Loaded, RdbFileError> {
    load_merging(state, data, now_ms, drop_expired, true)
}

/// [`load`], with what to do about a library or key the state already holds: `allow_dup`
/// replaces it (Redis's `RDBFLAGS_ALLOW_DUP`, DEBUG RELOAD MERGE); without it the load fails
/// there (Redis refuses the library; for a key it stops the server, which the engine does not
/// do).
pub fn load_merging(
    state: &mut EngineState,
    data: &[u8],
    now_ms: i64,
    drop_expired: bool,
    allow_dup: bool,
) -> Result<Loaded, RdbFileError> {
    let mut loaded = Loaded::default();
    let databases = state.dbs.len();
    let summary = rdbfile::read(data, |item| {
        match item {
            Item::Aux { key, value } => {
                let text = String::from_utf8_lossy(&value).into_owned();
                match key.as_slice() {
                    b"repl-id" => loaded.repl_id = Some(text),
                    b"repl-offset" => loaded.repl_offset = text.parse().ok(),
                    _ => {}
                }
            }
            Item::Function(code) => {
                crate::engine::scripting::load_library(&mut state.scripting, &code, allow_dup)
                    .map_err(|e| {
                        let why = match &e {
                            crate::engine::protocol::reply::Reply::Error(b) => {
                                String::from_utf8_lossy(b).into_owned()
                            }
                            _ => "refused".to_string(),
                        };
                        format!("cannot load a function library: {why}")
                    })?;
                loaded.functions += 1;
            }
            Item::Entry {
                db,
                key,
                value,
                expire_at_ms,
            } => {
                if db >= databases {
                    return Err(format!(
                        "the file has database {db}, this engine has {databases} (set `databases`)"
                    ));
                }
                if drop_expired && expire_at_ms != 0 && expire_at_ms < now_ms {
                    loaded.expired_skipped += 1;
                    return Ok(());
                }
                let d = &mut state.dbs[db];
                if !allow_dup && d.peek(&key).is_some() {
                    return Err(format!(
                        "duplicate key '{}' in database {db}",
                        String::from_utf8_lossy(&key)
                    ));
                }
                let mut entry = Entry::new(value);
                entry.expire_at = expire_at_ms;
                entry.access = d.access_policy.initial(now_ms);
                d.insert_entry(CompactBytes::from(key), entry);
                loaded.keys_loaded += 1;
            }
        }
        Ok(())
    })?;
    loaded.summary = summary;
    Ok(loaded)
}

/// Write the dataset to `path` as an RDB file: a temporary name, fsync, rename, so the file at
/// `path` is always whole. Returns the bytes written.
pub fn save_file(state: &EngineState, path: &Path, now_ms: i64) -> Result<u64, PersistError> {
    let data = encode(state, None, now_ms);
    write_file(path, &data)?;
    Ok(data.len() as u64)
}

/// The second half of [`save_file`], for callers that encode under the lock and write
/// outside it.
pub fn write_file(path: &Path, data: &[u8]) -> Result<(), PersistError> {
    // `write_atomic` renames from `path.with_extension("tmp")`: for `dump.rdb` that is
    // `dump.tmp`, which start-up recovery removes if a crash left it.
    crate::engine::persistence::write_atomic(path, data)
}

/// Load `path` if it exists. Ok(None): there is no such file.
pub fn load_file(
    state: &mut EngineState,
    path: &Path,
    now_ms: i64,
) -> Result<Option<Loaded>, PersistError> {
    load_file_merging(state, path, now_ms, true)
}

/// [`load_file`] with [`load_merging`]'s `allow_dup`.
pub fn load_file_merging(
    state: &mut EngineState,
    path: &Path,
    now_ms: i64,
    allow_dup: bool,
) -> Result<Option<Loaded>, PersistError> {
    let data = match std::fs::read(path) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(path)(e)),
    };
    load_merging(state, &data, now_ms, true, allow_dup)
        .map(Some)
        .map_err(|source| PersistError::Rdb {
            file: path.display().to_string(),
            source,
        })
}

/// Record the outcome of an RDB save (SAVE/BGSAVE with persistence off) as INFO persistence
/// and LASTSAVE report it. `dirty_at_start`: `dirty_since_save` when the dataset was captured.
pub fn saved(state: &mut EngineState, ok: bool, dirty_at_start: u64, now_ms: i64) {
    let p = &mut state.persist;
    p.snapshot_in_progress = false;
    p.last_snapshot_ok = ok;
    p.last_snapshot_secs = (now_ms - p.snapshot_started_ms) / 1000;
    if ok {
        p.snapshots_done += 1;
        state.lastsave_secs = now_ms / 1000;
        state.dirty_since_save = state.dirty_since_save.saturating_sub(dirty_at_start);
    }
}

/// SAVE with persistence off: the dataset to `dir/dbfilename` now, under the lock (every
/// client waits, as for Redis's SAVE).
pub fn save_now(state: &mut EngineState, now_ms: i64) -> Result<u64, PersistError> {
    let path = rdb_path(state);
    state.persist.snapshot_started_ms = now_ms;
    let dirty = state.dirty_since_save;
    let r = save_file(state, &path, now_ms);
    saved(state, r.is_ok(), dirty, now_ms);
    r
}

/// DEBUG RELOAD's options (Redis's NOSAVE, NOFLUSH, MERGE).
#[derive(Debug, Clone, Copy)]
pub struct ReloadOptions {
    /// Save first (not NOSAVE).
    pub save: bool,
    /// Empty the databases and the libraries before loading (not NOFLUSH).
    pub flush: bool,
    /// A library or key already there is replaced, not an error (MERGE).
    pub merge: bool,
}

impl Default for ReloadOptions {
    fn default() -> Self {
        ReloadOptions {
            save: true,
            flush: true,
            merge: false,
        }
    }
}

/// DEBUG RELOAD with persistence off: save `dir/dbfilename`, empty the databases and the
/// function libraries, and load the file back (each step as `opts` says).
pub fn debug_reload(
    state: &mut EngineState,
    now_ms: i64,
    opts: ReloadOptions,
) -> Result<(), PersistError> {
    if opts.save {
        save_now(state, now_ms)?;
    }
    super::snapshot::cancel(state);
    if opts.flush {
        for db in state.dbs.iter_mut() {
            db.clear();
        }
        state.scripting.flush_functions();
    }
    let path = rdb_path(state);
    load_file_merging(state, &path, now_ms, opts.merge)?;
    Ok(())
}
