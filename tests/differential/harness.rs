//! Differential testing harness: the same seeded command sequence runs against Debian's
//! redis-server (started here on a free loopback port) and against the engine (in-process on
//! loopback); replies must match after the normalisation each command asks for. Does I/O:
//! processes and sockets.
//!
//! Replay a failure with `DIFF_SEED=<seed> cargo test --test differential <name>`; the failing
//! seed and the commands that led to the mismatch are printed.
#![allow(dead_code)]

use std::fmt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A reply frame, RESP2 (both servers are spoken to in RESP2 unless a test says HELLO 3).
#[derive(Clone, PartialEq, PartialOrd)]
pub enum Frame {
    Simple(Vec<u8>),
    Error(Vec<u8>),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<Frame>>),
    /// RESP3 shapes, for tests that switch protocol.
    Map(Vec<(Frame, Frame)>),
    Set(Vec<Frame>),
    Double(Vec<u8>),
    Bool(bool),
    Null,
    Push(Vec<Frame>),
    Verbatim(Vec<u8>),
    /// Produced by normalisation only.
    Redacted(&'static str),
}

impl fmt::Debug for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        match self {
            Frame::Simple(b) => write!(f, "+{}", s(b)),
            Frame::Error(b) => write!(f, "-{}", s(b)),
            Frame::Int(i) => write!(f, ":{i}"),
            Frame::Bulk(Some(b)) => write!(f, "{:?}", s(b)),
            Frame::Bulk(None) => write!(f, "(nil)"),
            Frame::Array(Some(v)) => f.debug_list().entries(v).finish(),
            Frame::Array(None) => write!(f, "(nil array)"),
            Frame::Map(v) => f
                .debug_map()
                .entries(v.iter().map(|(k, v)| (k, v)))
                .finish(),
            Frame::Set(v) => write!(f, "set{:?}", v),
            Frame::Double(b) => write!(f, ",{}", s(b)),
            Frame::Bool(b) => write!(f, "#{b}"),
            Frame::Null => write!(f, "_"),
            Frame::Push(v) => write!(f, ">{:?}", v),
            Frame::Verbatim(b) => write!(f, "={}", s(b)),
            Frame::Redacted(w) => write!(f, "<{w}>"),
        }
    }
}

/// How replies of a command are compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Norm {
    /// Byte for byte.
    Exact,
    /// The reply is an array whose order Redis does not define (SMEMBERS, KEYS, HKEYS ...).
    Unordered,
    /// A flat array of pairs (HGETALL, CONFIG GET) whose pair order is not defined.
    UnorderedPairs,
    /// Only the kind of reply (and error-ness) must match: random or time-dependent values.
    Shape,
    /// Integer replies that depend on timing (TTL): equal when both are negative codes,
    /// otherwise both must be non-negative and within 2 units.
    Ttl,
    /// Only whether it is an error, and the error's first word.
    ErrorCode,
    /// A SCAN-family reply `[cursor, elements]` whose elements are compared as a set (a walk
    /// completed in one call: the cursor is "0" on both).
    ScanAll,
}

/// One generated command with its normalisation.
#[derive(Debug, Clone)]
pub struct Step {
    pub args: Vec<Vec<u8>>,
    pub norm: Norm,
}

impl Step {
    pub fn new(args: &[&[u8]], norm: Norm) -> Step {
        Step {
            args: args.iter().map(|a| a.to_vec()).collect(),
            norm,
        }
    }
    pub fn exact<S: AsRef<[u8]>>(args: &[S]) -> Step {
        Step {
            args: args.iter().map(|a| a.as_ref().to_vec()).collect(),
            norm: Norm::Exact,
        }
    }
    pub fn with<S: AsRef<[u8]>>(norm: Norm, args: &[S]) -> Step {
        Step {
            args: args.iter().map(|a| a.as_ref().to_vec()).collect(),
            norm,
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .args
            .iter()
            .map(|a| format!("{:?}", String::from_utf8_lossy(a)))
            .collect();
        write!(f, "{}", parts.join(" "))
    }
}

/// A raw RESP connection.
pub struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    pub async fn connect(addr: &str) -> Conn {
        let stream = TcpStream::connect(addr).await.expect("connect");
        stream.set_nodelay(true).ok();
        Conn {
            stream,
            buf: Vec::new(),
        }
    }

    pub async fn call(&mut self, args: &[Vec<u8>]) -> Frame {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            out.extend_from_slice(a);
            out.extend_from_slice(b"\r\n");
        }
        self.stream.write_all(&out).await.expect("write");
        self.read_frame().await
    }

    pub async fn call_str(&mut self, args: &[&str]) -> Frame {
        let v: Vec<Vec<u8>> = args.iter().map(|a| a.as_bytes().to_vec()).collect();
        self.call(&v).await
    }

    pub async fn read_frame(&mut self) -> Frame {
        loop {
            if let Some((frame, used)) = parse_frame(&self.buf) {
                self.buf.drain(..used);
                return frame;
            }
            let mut chunk = [0u8; 16384];
            let n = tokio::time::timeout(Duration::from_secs(20), self.stream.read(&mut chunk))
                .await
                .expect("reply within 20 s")
                .expect("read");
            assert!(n > 0, "server closed the connection");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

fn line(buf: &[u8], from: usize) -> Option<(&[u8], usize)> {
    let pos = buf[from..].windows(2).position(|w| w == b"\r\n")?;
    Some((&buf[from..from + pos], from + pos + 2))
}

/// Parse one RESP2/RESP3 frame; None if incomplete.
pub fn parse_frame(buf: &[u8]) -> Option<(Frame, usize)> {
    if buf.is_empty() {
        return None;
    }
    let (l, next) = line(buf, 1)?;
    let text = String::from_utf8_lossy(l).into_owned();
    let num = || text.parse::<i64>().expect("length");
    match buf[0] {
        b'+' => Some((Frame::Simple(l.to_vec()), next)),
        b'-' => Some((Frame::Error(l.to_vec()), next)),
        b':' => Some((Frame::Int(num()), next)),
        b',' => Some((Frame::Double(l.to_vec()), next)),
        b'#' => Some((Frame::Bool(l == b"t"), next)),
        b'_' => Some((Frame::Null, next)),
        b'$' | b'=' => {
            let n = num();
            if n < 0 {
                return Some((Frame::Bulk(None), next));
            }
            let end = next + n as usize;
            if buf.len() < end + 2 {
                return None;
            }
            let data = buf[next..end].to_vec();
            if buf[0] == b'=' {
                Some((Frame::Verbatim(data), end + 2))
            } else {
                Some((Frame::Bulk(Some(data)), end + 2))
            }
        }
        b'*' | b'~' | b'>' | b'%' => {
            let n = num();
            if n < 0 {
                return Some((Frame::Array(None), next));
            }
            let count = if buf[0] == b'%' { 2 * n } else { n } as usize;
            let mut items = Vec::with_capacity(count);
            let mut pos = next;
            for _ in 0..count {
                let (f, used) = parse_frame(&buf[pos..])?;
                items.push(f);
                pos += used;
            }
            let frame = match buf[0] {
                b'~' => Frame::Set(items),
                b'>' => Frame::Push(items),
                b'%' => {
                    let mut pairs = Vec::new();
                    let mut it = items.into_iter();
                    while let (Some(k), Some(v)) = (it.next(), it.next()) {
                        pairs.push((k, v));
                    }
                    Frame::Map(pairs)
                }
                _ => Frame::Array(Some(items)),
            };
            Some((frame, pos))
        }
        other => panic!("bad frame type byte {other:?}"),
    }
}

fn sort_key(f: &Frame) -> String {
    format!("{f:?}")
}

/// Apply a normalisation to a reply.
pub fn normalise(norm: Norm, f: Frame) -> Frame {
    match (norm, f) {
        (_, Frame::Error(e)) if norm == Norm::ErrorCode || norm == Norm::Shape => {
            let word = e.split(|c| *c == b' ').next().unwrap_or(b"").to_vec();
            Frame::Error(word)
        }
        (Norm::Exact, f) | (Norm::ErrorCode, f) => f,
        (Norm::ScanAll, Frame::Array(Some(mut v))) if v.len() == 2 => {
            if let Frame::Array(Some(items)) = &mut v[1] {
                items.sort_by_key(sort_key);
            }
            Frame::Array(Some(v))
        }
        (Norm::Unordered, Frame::Array(Some(mut v))) => {
            v.sort_by_key(sort_key);
            Frame::Array(Some(v))
        }
        (Norm::UnorderedPairs, Frame::Array(Some(v))) => {
            let mut pairs: Vec<Vec<Frame>> = v.chunks(2).map(|c| c.to_vec()).collect();
            pairs.sort_by_key(|p| sort_key(&p[0]));
            Frame::Array(Some(pairs.into_iter().flatten().collect()))
        }
        (Norm::Shape, f) => Frame::Redacted(match f {
            Frame::Simple(_) => "simple",
            Frame::Int(_) => "int",
            Frame::Bulk(Some(_)) => "bulk",
            Frame::Bulk(None) => "nil",
            Frame::Array(Some(_)) => "array",
            Frame::Array(None) => "nil array",
            _ => "other",
        }),
        (_, f) => f,
    }
}

fn ttl_equal(a: &Frame, b: &Frame) -> bool {
    match (a, b) {
        (Frame::Int(x), Frame::Int(y)) if *x < 0 || *y < 0 => x == y,
        (Frame::Int(x), Frame::Int(y)) => (x - y).abs() <= 2,
        (x, y) => x == y,
    }
}

fn replies_equal(norm: Norm, a: &Frame, b: &Frame) -> bool {
    if norm == Norm::Ttl {
        ttl_equal(a, b)
    } else {
        normalise(norm, a.clone()) == normalise(norm, b.clone())
    }
}

fn is_command(step: &Step, name: &str) -> bool {
    step.args
        .first()
        .is_some_and(|c| c.eq_ignore_ascii_case(name.as_bytes()))
}

/// EXEC replies: arrays of the same length whose elements match under the queued norms;
/// anything else (EXECABORT, nil for a failed WATCH) exactly.
fn exec_equal(norms: &[Norm], a: &Frame, b: &Frame) -> bool {
    match (a, b) {
        (Frame::Array(Some(x)), Frame::Array(Some(y))) if x.len() == y.len() => {
            x.iter().zip(y).enumerate().all(|(i, (x, y))| {
                replies_equal(norms.get(i).copied().unwrap_or(Norm::Exact), x, y)
            })
        }
        _ => a == b,
    }
}

/// A redis-server process on a free loopback port, stopped on drop.
pub struct RedisServer {
    child: Child,
    pub addr: String,
    _dir: tempdir::Dir,
}

mod tempdir {
    /// A temporary directory removed on drop.
    pub struct Dir(pub std::path::PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

impl RedisServer {
    pub async fn start() -> RedisServer {
        let port = crate::support::free_port();
        let dir =
            std::env::temp_dir().join(format!("redispair-diff-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                "--dir",
                dir.to_str().unwrap(),
                "--enable-debug-command",
                "yes",
                "--loglevel",
                "warning",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("redis-server is installed (hack/install-test-deps.sh)");
        let addr = format!("127.0.0.1:{port}");
        let mut child = child;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            // A child that exited did not bind: whatever answers on the port is not ours.
            if let Ok(Some(status)) = child.try_wait() {
                panic!("redis-server on {addr} exited at start: {status}");
            }
            // Ready when *this* redis-server answers: another listener that took the port
            // after it was checked would accept the connection too.
            if let Ok(s) = TcpStream::connect(&addr).await {
                if answers_with_pid(s, child.id()).await {
                    break;
                }
            }
            assert!(Instant::now() < deadline, "redis-server did not start");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        RedisServer {
            child,
            addr,
            _dir: tempdir::Dir(dir),
        }
    }
}

/// Whether the server behind `s` reports `pid` as its `process_id` (INFO server).
async fn answers_with_pid(mut s: TcpStream, pid: u32) -> bool {
    if s.write_all(b"*2\r\n$4\r\nINFO\r\n$6\r\nserver\r\n")
        .await
        .is_err()
    {
        return false;
    }
    let want = format!("process_id:{pid}\r\n");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    // The section is well under 4 KB; stop at its end (the last field) or on any error.
    while !got.windows(want.len()).any(|w| w == want.as_bytes()) {
        match tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => got.extend_from_slice(&buf[..n]),
            _ => return false,
        }
        if got.len() > 64 * 1024 {
            return false;
        }
    }
    true
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A command generator for one family: called once per step with the shared key pool.
pub type Generator = fn(&mut StdRng, &Keys) -> Step;

/// The key names a sequence draws from: few, so commands collide on keys and types.
pub struct Keys {
    pub names: Vec<String>,
}

impl Keys {
    pub fn new(n: usize) -> Keys {
        Keys {
            names: (0..n).map(|i| format!("k{i}")).collect(),
        }
    }
    pub fn pick(&self, rng: &mut StdRng) -> String {
        self.names[rng.gen_range(0..self.names.len())].clone()
    }
}

/// Small random helpers for generators.
pub fn pick<'a, T>(rng: &mut StdRng, items: &'a [T]) -> &'a T {
    &items[rng.gen_range(0..items.len())]
}

/// A value: mostly small integers and short strings (so INCR & co. and encodings vary).
pub fn value(rng: &mut StdRng) -> String {
    match rng.gen_range(0..6) {
        0 => rng.gen_range(-100..100).to_string(),
        1 => "".to_string(),
        2 => format!("v{}", rng.gen_range(0..10)),
        3 => "x".repeat(rng.gen_range(1..70)),
        4 => format!("{}.{}", rng.gen_range(-5..5), rng.gen_range(0..100)),
        _ => format!("m{}", rng.gen_range(0..20)),
    }
}

/// Read the whole dataset of a server in a comparable form (type-specific dumps, sorted where
/// Redis's order is undefined).
pub async fn dataset(conn: &mut Conn) -> Vec<(Vec<u8>, Frame, Frame)> {
    let keys = match conn.call_str(&["KEYS", "*"]).await {
        Frame::Array(Some(v)) => v,
        other => panic!("KEYS failed: {other:?}"),
    };
    let mut out = Vec::new();
    for k in keys {
        let Frame::Bulk(Some(name)) = k else { continue };
        let t = conn.call(&[b"TYPE".to_vec(), name.clone()]).await;
        let content = match &t {
            Frame::Simple(s) if s == b"string" => conn.call(&[b"GET".to_vec(), name.clone()]).await,
            Frame::Simple(s) if s == b"list" => {
                conn.call(&[
                    b"LRANGE".to_vec(),
                    name.clone(),
                    b"0".to_vec(),
                    b"-1".to_vec(),
                ])
                .await
            }
            Frame::Simple(s) if s == b"hash" => normalise(
                Norm::UnorderedPairs,
                conn.call(&[b"HGETALL".to_vec(), name.clone()]).await,
            ),
            Frame::Simple(s) if s == b"set" => normalise(
                Norm::Unordered,
                conn.call(&[b"SMEMBERS".to_vec(), name.clone()]).await,
            ),
            Frame::Simple(s) if s == b"zset" => {
                conn.call(&[
                    b"ZRANGE".to_vec(),
                    name.clone(),
                    b"0".to_vec(),
                    b"-1".to_vec(),
                    b"WITHSCORES".to_vec(),
                ])
                .await
            }
            Frame::Simple(s) if s == b"stream" => Frame::Array(Some(vec![
                conn.call(&[
                    b"XRANGE".to_vec(),
                    name.clone(),
                    b"-".to_vec(),
                    b"+".to_vec(),
                ])
                .await,
                conn.call(&[b"XINFO".to_vec(), b"GROUPS".to_vec(), name.clone()])
                    .await,
            ])),
            other => other.clone(),
        };
        out.push((name, t, content));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Run `steps_per_seed` generated commands for each of `seeds` seeds against both servers and
/// compare every reply and, at the end of each seed, the whole dataset. `DIFF_SEED` replays one
/// seed; `DIFF_SEEDS` / `DIFF_STEPS` scale the run.
pub async fn run_differential(
    name: &str,
    generators: &[Generator],
    seeds: u64,
    steps_per_seed: usize,
) {
    let reference = RedisServer::start().await;
    let engine = crate::support::start_engine(&[]).await;
    let engine_addr = engine.addr().to_string();
    let seeds: Vec<u64> = match std::env::var("DIFF_SEED") {
        Ok(s) => vec![s.parse().expect("DIFF_SEED is a number")],
        Err(_) => {
            let n = std::env::var("DIFF_SEEDS")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(seeds);
            // Fixed by default, so a run is reproducible as a whole (state that outlives a
            // seed's FLUSHALL, such as scripts and settings, makes one seed's replay differ
            // from its place in a run); `DIFF_RANDOM=1` explores new seeds (the failure
            // message names the base to replay with `DIFF_BASE`).
            let base: u64 = match std::env::var("DIFF_BASE") {
                Ok(b) => b.parse().expect("DIFF_BASE is a number"),
                Err(_) if std::env::var("DIFF_RANDOM").is_ok() => rand::random::<u32>() as u64,
                Err(_) => 20_261_206,
            };
            println!("[{name}] seeds from base {base} (DIFF_BASE={base} replays the whole run)");
            (0..n).map(|i| base * 1000 + i).collect()
        }
    };
    let steps = std::env::var("DIFF_STEPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(steps_per_seed);
    let keys = Keys::new(8);
    for seed in seeds {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut a = Conn::connect(&reference.addr).await;
        let mut b = Conn::connect(&engine_addr).await;
        a.call_str(&["FLUSHALL"]).await;
        b.call_str(&["FLUSHALL"]).await;
        let mut history: Vec<String> = Vec::new();
        // The norms of the steps queued since MULTI (None outside a transaction).
        let mut queued: Option<Vec<Norm>> = None;
        for _ in 0..steps {
            let gen = generators[rng.gen_range(0..generators.len())];
            let step = gen(&mut rng, &keys);
            history.push(step.to_string());
            let ra = a.call(&step.args).await;
            let rb = b.call(&step.args).await;
            let equal = match queued.as_mut() {
                // Inside MULTI: replies are +QUEUED or errors, compared exactly; EXEC's array
                // is compared element by element with the norms of the queued steps.
                Some(norms) if is_command(&step, "EXEC") => {
                    let norms = std::mem::take(norms);
                    queued = None;
                    exec_equal(&norms, &ra, &rb)
                }
                // RESET runs at once even inside MULTI and ends the transaction, like DISCARD.
                Some(_) if is_command(&step, "DISCARD") || is_command(&step, "RESET") => {
                    queued = None;
                    ra == rb
                }
                Some(norms) => {
                    if ra == Frame::Simple(b"QUEUED".to_vec()) {
                        norms.push(step.norm);
                    }
                    ra == rb
                }
                None => {
                    if is_command(&step, "MULTI") && ra == Frame::Simple(b"OK".to_vec()) {
                        queued = Some(Vec::new());
                    }
                    replies_equal(step.norm, &ra, &rb)
                }
            };
            if !equal {
                let tail: Vec<&String> = history.iter().rev().take(25).rev().collect();
                panic!(
                    "[{name}] mismatch with seed {seed} (replay: DIFF_SEED={seed} cargo test --test differential {name})\n\
                     last commands:\n  {}\n\
                     command: {step}\n  redis-server: {ra:?}\n  engine:       {rb:?}",
                    tail.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("\n  ")
                );
            }
        }
        if queued.is_some() {
            // Leave an open transaction before reading the datasets.
            a.call_str(&["DISCARD"]).await;
            b.call_str(&["DISCARD"]).await;
        }
        let da = dataset(&mut a).await;
        let db = dataset(&mut b).await;
        assert_eq!(
            format!("{da:?}"),
            format!("{db:?}"),
            "[{name}] datasets differ after seed {seed} (replay: DIFF_SEED={seed})"
        );
    }
    engine.stop().await;
}
