//! The lost-write check shared by `tests/operator_failover.rs` and `tests/e2e`: writers write
//! unique keys (`<prefix>w<writer>:<seq>`, value `<seq>`), each acknowledged key is recorded,
//! and at the end every one of them is read back from the final master. A key missing there,
//! or holding another value, is an acknowledged write lost. Does I/O: Redis over TCP (the
//! read back).
//!
//! Why unique keys rather than a counter: with `INCR`, keeping only the highest value
//! acknowledged hides a lost write whenever later increments land on top of it, and even the
//! "values strictly increase" check can be fooled by an unacknowledged increment that lands
//! after the failover. A unique key per write is checked on its own: it is there or it is not.
//!
//! `REDISPAIR_TEST_DROP_ACKED=1` makes the first check of the process delete one acknowledged
//! key on the master before reading back, to see the check fail (never set in CI).

use std::sync::atomic::{AtomicBool, Ordering};

/// The env knob that deletes one acknowledged key before the first check (see the module doc).
pub const DROP_ACKED_ENV: &str = "REDISPAIR_TEST_DROP_ACKED";

/// MGET batch size: one round trip per batch, a few kilobytes each way.
const BATCH: usize = 1000;

/// The key writer `writer` writes for its write number `seq`.
pub fn key(prefix: &str, writer: usize, seq: u64) -> String {
    format!("{prefix}w{writer}:{seq}")
}

/// The outcome of reading back acknowledged writes.
#[derive(Debug, Default)]
pub struct LostWrites {
    /// Acknowledged writes read back.
    pub checked: usize,
    /// The keys missing (or holding another value), in the order they were acknowledged.
    pub lost: Vec<String>,
}

impl LostWrites {
    /// `N of M acknowledged writes lost, the first: k1, k2, ...` (or `none of M lost`).
    pub fn summary(&self) -> String {
        if self.lost.is_empty() {
            return format!("none of {} acknowledged writes lost", self.checked);
        }
        let first: Vec<&str> = self.lost.iter().take(5).map(String::as_str).collect();
        format!(
            "{} of {} acknowledged writes lost, the first: {}",
            self.lost.len(),
            self.checked,
            first.join(", ")
        )
    }
}

/// Read every `(key, seq)` in `acked` back with MGET on `conn`: a key absent, or whose value
/// is not its `seq`, is lost.
pub async fn find_lost<C>(conn: &mut C, acked: &[(String, u64)]) -> redis::RedisResult<LostWrites>
where
    C: redis::aio::ConnectionLike,
{
    let mut out = LostWrites {
        checked: acked.len(),
        lost: vec![],
    };
    for chunk in acked.chunks(BATCH) {
        let mut mget = redis::cmd("MGET");
        for (k, _) in chunk {
            mget.arg(k);
        }
        let values: Vec<Option<String>> = mget.query_async(conn).await?;
        for ((k, seq), v) in chunk.iter().zip(values) {
            if v.and_then(|v| v.parse::<u64>().ok()) != Some(*seq) {
                out.lost.push(k.clone());
            }
        }
    }
    Ok(out)
}

static DROPPED: AtomicBool = AtomicBool::new(false);

/// With `REDISPAIR_TEST_DROP_ACKED=1`, the first call in the process deletes one acknowledged
/// key (the middle one) through `conn`, which must be the master: the check that follows must
/// then report it lost. Returns the key deleted.
pub async fn drop_one_if_asked<C>(
    conn: &mut C,
    acked: &[(String, u64)],
) -> redis::RedisResult<Option<String>>
where
    C: redis::aio::ConnectionLike,
{
    if std::env::var(DROP_ACKED_ENV).as_deref() != Ok("1") || acked.is_empty() {
        return Ok(None);
    }
    if DROPPED.swap(true, Ordering::SeqCst) {
        return Ok(None);
    }
    let (k, _) = &acked[acked.len() / 2];
    let _: i64 = redis::cmd("DEL").arg(k).query_async(conn).await?;
    eprintln!("{DROP_ACKED_ENV}=1: deleted the acknowledged key {k} on the master");
    Ok(Some(k.clone()))
}
