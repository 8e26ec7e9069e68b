//! The counting writer: one task doing `INCR` through the read-write Service's ClusterIP, the
//! way an application would (reconnect on any error, nothing else), recording every
//! acknowledged value with its time and the connection it came on. Does I/O: Redis over TCP.
//!
//! Why INCR proves "no acknowledged write lost": one writer, one write at a time, so the
//! values it is acknowledged must strictly increase. If a failover lost acknowledged
//! increments, the new master would hand out a value already acknowledged, and the sequence
//! would go back. A write applied but never acknowledged (cut connection, a discarded tail)
//! only leaves a gap, which is allowed.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis::{ConnectionAddr, IntoConnectionInfo, RedisConnectionInfo};

pub const COUNTER_KEY: &str = "e2e:counter";

/// One acknowledged INCR.
#[derive(Clone, Copy, Debug)]
pub struct Ack {
    pub value: i64,
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
    pub fn start(addr: String, port: u16, password: String) -> Writer {
        let log = Arc::new(Mutex::new(Log::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let attempts = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn(write_loop(
            addr,
            port,
            password,
            log.clone(),
            stop.clone(),
            attempts.clone(),
        ));
        Writer {
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
    pub acks: Vec<Ack>,
    pub errors: u64,
    pub last_error: String,
    pub attempts: u64,
}

impl WriterReport {
    pub fn max_acked(&self) -> i64 {
        self.acks.iter().map(|a| a.value).max().unwrap_or(0)
    }

    /// The first acknowledged value that is not above every value acknowledged before it (a
    /// lost acknowledged write shows as such a step back), with its predecessor.
    pub fn first_step_back(&self) -> Option<(i64, i64)> {
        self.acks
            .windows(2)
            .find(|w| w[1].value <= w[0].value)
            .map(|w| (w[0].value, w[1].value))
    }
}

async fn write_loop(
    addr: String,
    port: u16,
    password: String,
    log: Arc<Mutex<Log>>,
    stop: Arc<AtomicBool>,
    attempts: Arc<AtomicU64>,
) {
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
        match redis::cmd("INCR")
            .arg(COUNTER_KEY)
            .query_async::<i64>(c)
            .await
        {
            Ok(value) => {
                let ack = Ack {
                    value,
                    at: Instant::now(),
                    server_term: *term,
                };
                log.lock().unwrap().acks.push(ack);
                // A steady few hundred writes a second: enough to catch a lost write at any
                // moment of a failover without the writer taking a core of this machine.
                tokio::time::sleep(Duration::from_millis(3)).await;
            }
            Err(e) => {
                fail(format!("INCR: {e}"));
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
