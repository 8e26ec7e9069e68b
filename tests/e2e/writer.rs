//! The writer of unique keys: one task doing `SET e2e:w<writer>:<seq> <seq>` through the
//! read-write Service's ClusterIP, the way an application would (reconnect on any error,
//! nothing else), recording every acknowledged write with its time and the connection it came
//! on. Does I/O: Redis over TCP.
//!
//! Every write has its own key, so each acknowledged one is checked on its own at the end
//! (`acked_writes::find_lost`): a write applied but never acknowledged (cut connection, a
//! discarded tail) may or may not be there, an acknowledged one must be. The acknowledgement
//! times give the gaps the cases report (the longest time between two acknowledged writes).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis::{ConnectionAddr, IntoConnectionInfo, RedisConnectionInfo};

use crate::acked_writes;

/// Every key this run's writers write starts with `e2e:<run>:`, `<run>` the time the run
/// started (ms): a pod that kept an older run's data cannot pass for holding this run's keys.
pub fn key_prefix() -> &'static str {
    static PREFIX: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    PREFIX.get_or_init(|| {
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis();
        format!("e2e:{ms}:")
    })
}

/// One acknowledged write.
#[derive(Clone, Copy, Debug)]
pub struct Ack {
    /// The write's number: its key is `acked_writes::key(key_prefix(), writer, seq)`.
    pub seq: u64,
    pub at: Instant,
    /// The term the server reported when the connection was opened (`INFO replication`):
    /// tells the old master's acknowledgements from the new one's, whatever the timing.
    pub server_term: i64,
}

#[derive(Default)]
struct Log {
    acks: Vec<Ack>,
    errors: u64,
    last_error: String,
}

pub struct Writer {
    id: usize,
    log: Arc<Mutex<Log>>,
    stop: Arc<AtomicBool>,
    attempts: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

/// A connection to `addr:port` with the client password (a fresh TCP connection each time: a
/// ClusterIP picks an endpoint per connection). Short timeouts: a writer stuck on a dead or
/// cut-off master must give up and reconnect, as a client with sane timeouts does.
pub async fn connect(
    addr: &str,
    port: u16,
    password: &str,
) -> redis::RedisResult<redis::aio::MultiplexedConnection> {
    let info = ConnectionAddr::Tcp(addr.to_string(), port)
        .into_connection_info()?
        .set_redis_settings(RedisConnectionInfo::default().set_password(password));
    let cfg = redis::AsyncConnectionConfig::new()
        // Short: a connect whose SYN went to an endpoint that just left (kube-proxy rules
        // still changing) is retried soon instead of counting a second of outage that the
        // pair did not have; on these links a connect takes well under a millisecond.
        .set_connection_timeout(Some(Duration::from_millis(250)))
        .set_response_timeout(Some(Duration::from_secs(2)));
    redis::Client::open(info)?
        .get_multiplexed_async_connection_with_config(&cfg)
        .await
}

impl Writer {
    /// Writer 0, a write every 3 ms or so: a steady few hundred writes a second, enough to
    /// catch a lost write at any moment of a failover without taking a core of this machine.
    pub fn start(addr: String, port: u16, password: String) -> Writer {
        Writer::start_numbered(0, Duration::from_millis(3), addr, port, password)
    }

    /// Writer `id` (its keys are its own), pausing `pace` after each acknowledged write.
    pub fn start_numbered(
        id: usize,
        pace: Duration,
        addr: String,
        port: u16,
        password: String,
    ) -> Writer {
        let log = Arc::new(Mutex::new(Log::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let attempts = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn(write_loop(
            WriteLoop {
                id,
                pace,
                addr,
                port,
                password,
            },
            log.clone(),
            stop.clone(),
            attempts.clone(),
        ));
        Writer {
            id,
            log,
            stop,
            attempts,
            task,
        }
    }

    /// Stop, wait for the task, and return every acknowledged write in order.
    pub async fn finish(self) -> WriterReport {
        self.stop.store(true, Ordering::SeqCst);
        self.task.await.expect("writer task");
        let log = std::mem::take(&mut *self.log.lock().unwrap());
        WriterReport {
            id: self.id,
            acks: log.acks,
            errors: log.errors,
            last_error: log.last_error,
            attempts: self.attempts.load(Ordering::SeqCst),
        }
    }

    pub fn acked(&self) -> usize {
        self.log.lock().unwrap().acks.len()
    }

    /// The longest time between two consecutive acknowledged writes after `since` (the
    /// writes it waited for, e.g. while a semi-sync master waits for a degrade).
    pub fn longest_gap_after(&self, since: Instant) -> Duration {
        let log = self.log.lock().unwrap();
        let mut prev = since;
        let mut longest = Duration::ZERO;
        for a in log.acks.iter().filter(|a| a.at > since) {
            longest = longest.max(a.at.duration_since(prev));
            prev = a.at;
        }
        longest
    }

    /// Every time between two consecutive acknowledged writes where the later one came in
    /// `(since, until]` (the earlier one may come before `since`: the gap a fault opened
    /// starts at the last write acknowledged before it).
    pub fn gaps_between(&self, since: Instant, until: Instant) -> Vec<Duration> {
        let log = self.log.lock().unwrap();
        log.acks
            .windows(2)
            .filter(|w| w[1].at > since && w[1].at <= until)
            .map(|w| w[1].at.duration_since(w[0].at))
            .collect()
    }

    /// The keys of every write acknowledged so far, with the value each must hold.
    pub fn acked_keys(&self) -> Vec<(String, u64)> {
        let log = self.log.lock().unwrap();
        log.acks
            .iter()
            .map(|a| (acked_writes::key(key_prefix(), self.id, a.seq), a.seq))
            .collect()
    }

    pub fn last_ack(&self) -> Option<Ack> {
        self.log.lock().unwrap().acks.last().copied()
    }

    /// The first write acknowledged by a master of a term above `term`: after a failover from
    /// a master of `term`, the new master. (A connection opened after the fault may still
    /// reach the old master for a moment, e.g. a Terminating pod before the Service moved, so
    /// the time a connection was opened does not tell them apart.)
    pub fn first_ack_in_term_above(&self, term: i64) -> Option<Ack> {
        let log = self.log.lock().unwrap();
        log.acks.iter().find(|a| a.server_term > term).copied()
    }
}

pub struct WriterReport {
    pub id: usize,
    pub acks: Vec<Ack>,
    pub errors: u64,
    pub last_error: String,
    pub attempts: u64,
}

impl WriterReport {
    /// The keys of every acknowledged write, with the value each must hold.
    pub fn acked_keys(&self) -> Vec<(String, u64)> {
        self.acks
            .iter()
            .map(|a| (acked_writes::key(key_prefix(), self.id, a.seq), a.seq))
            .collect()
    }
}

/// What one writer task writes, where, and how fast.
struct WriteLoop {
    id: usize,
    pace: Duration,
    addr: String,
    port: u16,
    password: String,
}

async fn write_loop(
    w: WriteLoop,
    log: Arc<Mutex<Log>>,
    stop: Arc<AtomicBool>,
    attempts: Arc<AtomicU64>,
) {
    let WriteLoop {
        id,
        pace,
        addr,
        port,
        password,
    } = w;
    let mut seq = 0u64;
    let mut conn: Option<(redis::aio::MultiplexedConnection, i64)> = None;
    let fail = |e: String| {
        let mut l = log.lock().unwrap();
        l.errors += 1;
        l.last_error = e;
    };
    while !stop.load(Ordering::SeqCst) {
        let (c, term) = match conn.as_mut() {
            Some(c) => c,
            None => match connect_with_term(&addr, port, &password).await {
                Ok(c) => conn.insert(c),
                Err(e) => {
                    fail(format!("connect: {e}"));
                    // Pacing of reconnect attempts while no master is selected, not a
                    // synchronisation point.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        attempts.fetch_add(1, Ordering::SeqCst);
        // A new number for every attempt: a write whose outcome is unknown (timeout, cut
        // connection) may or may not land, and its key is never checked.
        seq += 1;
        match redis::cmd("SET")
            .arg(acked_writes::key(key_prefix(), id, seq))
            .arg(seq)
            .query_async::<()>(c)
            .await
        {
            Ok(()) => {
                let ack = Ack {
                    seq,
                    at: Instant::now(),
                    server_term: *term,
                };
                log.lock().unwrap().acks.push(ack);
                // Pacing of the writes (the load), not a synchronisation point.
                tokio::time::sleep(pace).await;
            }
            Err(e) => {
                fail(format!("SET: {e}"));
                conn = None;
            }
        }
    }
}

/// A connection and the term its server reports (`term:` in `INFO replication`).
async fn connect_with_term(
    addr: &str,
    port: u16,
    password: &str,
) -> redis::RedisResult<(redis::aio::MultiplexedConnection, i64)> {
    let mut c = connect(addr, port, password).await?;
    let info: String = redis::cmd("INFO")
        .arg("replication")
        .query_async(&mut c)
        .await?;
    let term = info
        .lines()
        .find_map(|l| l.strip_prefix("term:"))
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(-1);
    Ok((c, term))
}
