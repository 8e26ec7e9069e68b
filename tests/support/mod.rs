//! Test support: start a real engine on loopback (in-process, ephemeral port), connect to it
//! with the `redis` crate or talk raw RESP to it, and wait on conditions with a deadline
//! instead of sleeping. Does I/O: sockets.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use redispair::engine::config::Config;
use redispair::engine::server::{self, ServerHandle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A loopback port for a server a test starts as a child process (redis-server, the engine
/// binary), which must be told its port before it binds.
///
/// Why not "bind port 0, read the port, release it": that port lies in the kernel's ephemeral
/// range, and until the child binds it any `bind(0)` in this process (in-process engines, test
/// proxies) or any outgoing connection may be handed the same port. The child then fails to
/// bind and the test talks to somebody else's server (a differential run once connected to
/// another test's engine, which then went away: "connection refused"). Ports here come from
/// below the ephemeral range and the NodePort range (20000..30000), which the kernel never
/// hands out by itself; a process-wide counter keeps them unique among this binary's parallel
/// tests, and a trial bind skips ports another process holds.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const FIRST: u32 = 20000;
    const SPAN: u32 = 10000;
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    // Start each test binary at its own offset, so binaries run side by side rarely meet.
    let _ = NEXT.compare_exchange(
        u32::MAX,
        std::process::id().wrapping_mul(7919) % SPAN,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    for _ in 0..SPAN {
        let port = (FIRST + NEXT.fetch_add(1, Ordering::SeqCst) % SPAN) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port in {FIRST}..{}", FIRST + SPAN);
}

/// Start an engine on 127.0.0.1 with an ephemeral port and the given extra settings. Tests run
/// a pure cache unless they pass `persistence on` (with their own `dir`).
pub async fn start_engine(settings: &[(&str, &str)]) -> ServerHandle {
    let mut cfg = Config::default();
    cfg.set_startup("port", "0").unwrap();
    cfg.set_startup("bind", "127.0.0.1").unwrap();
    cfg.set_startup("persistence", "off").unwrap();
    for (k, v) in settings {
        cfg.set_startup(k, v).unwrap();
    }
    server::start(cfg).await.expect("engine starts")
}

/// A `redis` crate async connection to the engine. The crate's default 500 ms response
/// timeout is raised to 30 s: a loaded CI machine can take longer than 500 ms to schedule a
/// reply, and a timeout there is a flaky test, not an engine failure.
pub async fn redis_conn(h: &ServerHandle) -> redis::aio::MultiplexedConnection {
    redis_conn_to(&format!("redis://{}/", h.addr()))
        .await
        .unwrap()
}

/// A `redis` crate async connection to `url` (a password, a user or `?protocol=resp3` in it),
/// with the same 30 s response timeout as `redis_conn`.
pub async fn redis_conn_to(url: &str) -> redis::RedisResult<redis::aio::MultiplexedConnection> {
    redis::Client::open(url)?
        .get_multiplexed_async_connection_with_config(
            &redis::AsyncConnectionConfig::new()
                .set_response_timeout(Some(std::time::Duration::from_secs(30))),
        )
        .await
}

/// A raw TCP client that sends bytes and reads replies (mini-redis style tests).
pub struct RawClient {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl RawClient {
    pub async fn connect(h: &ServerHandle) -> RawClient {
        RawClient {
            stream: TcpStream::connect(h.addr()).await.unwrap(),
            buf: Vec::new(),
        }
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }

    /// Send a command encoded as a RESP multibulk.
    pub async fn cmd(&mut self, args: &[&str]) {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            out.extend_from_slice(format!("${}\r\n{}\r\n", a.len(), a).as_bytes());
        }
        self.send(&out).await;
    }

    /// Read until `expected` bytes have arrived (or fail after 10 s) and compare.
    pub async fn expect(&mut self, expected: &[u8]) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.buf.len() < expected.len() {
            let mut chunk = [0u8; 4096];
            let n = tokio::time::timeout_at(deadline.into(), self.stream.read(&mut chunk))
                .await
                .unwrap_or_else(|_| {
                    panic!(
                        "timed out waiting for {:?}, got {:?}",
                        String::from_utf8_lossy(expected),
                        String::from_utf8_lossy(&self.buf)
                    )
                })
                .unwrap();
            if n == 0 {
                break;
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
        let got: Vec<u8> = self
            .buf
            .drain(..expected.len().min(self.buf.len()))
            .collect();
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(expected)
        );
    }

    /// Read and discard bytes until what arrived ends with `marker` (skips HELLO's map; the
    /// client's own buffer must be empty).
    pub async fn skip_until(&mut self, marker: &[u8]) {
        let mut seen = Vec::new();
        while !seen.ends_with(marker) {
            let mut chunk = [0u8; 4096];
            let n = tokio::time::timeout(Duration::from_secs(10), self.stream.read(&mut chunk))
                .await
                .expect("reply in time")
                .expect("read");
            assert!(n > 0, "connection closed");
            seen.extend_from_slice(&chunk[..n]);
        }
    }

    /// Wait until the server closes the connection.
    pub async fn expect_closed(&mut self) {
        let mut chunk = [0u8; 1024];
        let n = tokio::time::timeout(Duration::from_secs(10), self.stream.read(&mut chunk))
            .await
            .expect("server closes the connection")
            .unwrap_or(0);
        assert_eq!(
            n,
            0,
            "unexpected bytes: {:?}",
            String::from_utf8_lossy(&chunk[..n])
        );
    }
}

/// Poll `check` until it returns true or `timeout` passes.
pub async fn wait_for<F, Fut>(timeout: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if check().await {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// What a poll of a replica got: a replica answers -LOADING while it loads its master's
/// snapshot (as redis-server does), which a test waiting for data takes as "not yet"; any
/// other error fails the test. A wait that polled with a plain unwrap failed CI once when
/// its poll landed inside a 3 MB load.
pub fn unless_loading<T>(reply: redis::RedisResult<T>) -> Option<T> {
    match reply {
        Ok(v) => Some(v),
        Err(e) if e.code() == Some("LOADING") => None,
        Err(e) => panic!("polling a replica: {e}"),
    }
}

/// Wait until `count` (a writer's answered writes) has grown by `more` from its value now, so
/// a test phase runs under load by a count of writes rather than by the clock.
pub async fn wait_for_more(count: &Arc<AtomicU64>, more: u64, what: &str) {
    let target = count.load(Ordering::Relaxed) + more;
    wait_for(Duration::from_secs(30), what, || {
        let count = count.clone();
        async move { count.load(Ordering::Relaxed) >= target }
    })
    .await;
}

/// A fresh, empty directory under the system temp dir, unique to this process and `name`.
pub fn temp_dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("redispair-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}
