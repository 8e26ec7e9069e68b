//! The reply gate: a connection whose batch wrote up to stream offset N sends its replies only
//! once N is released. N is released when it is durable on the local disk (if `appendfsync
//! always`) and acknowledged by the replica (if semi-sync/sync and not degraded). One mechanism
//! serves both, and a single fsync or a single replica ACK releases every waiting client at once
//! (group commit). Pure except for the tokio watch channel it notifies waiters with.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tokio::sync::watch;

#[derive(Debug)]
pub struct ReplyGate {
    /// Offset the log writer has fsynced.
    durable: AtomicU64,
    /// Replies wait for `durable` (persistence on and appendfsync always).
    need_durable: AtomicBool,
    /// Highest offset acknowledged by a replica.
    acked: AtomicU64,
    /// Replies wait for `acked` (semi-sync or sync, not degraded).
    need_ack: AtomicBool,
    /// While the log writer cannot write (a full disk): the offset it had written up to, else
    /// `u64::MAX`. Nothing beyond it can be released until the log works again (neither an
    /// fsync nor a replica, which is sent only written bytes, gets past it), so waiters for
    /// such offsets are failed at once instead of left hanging.
    log_failed_at: AtomicU64,
    /// Bumped on every change; waiters re-evaluate.
    tick: watch::Sender<u64>,
    /// How long replies that had to wait waited (semi-sync acknowledgements, `appendfsync
    /// always` fsyncs), recorded by the connection; replies released at once are not counted.
    pub waits: crate::engine::latency::AtomicLatency,
}

/// A wait that cannot end with a release: the log cannot be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the write log cannot be written")]
pub struct LogFailed;

impl Default for ReplyGate {
    fn default() -> Self {
        ReplyGate {
            durable: AtomicU64::new(0),
            need_durable: AtomicBool::new(false),
            acked: AtomicU64::new(0),
            need_ack: AtomicBool::new(false),
            log_failed_at: AtomicU64::new(u64::MAX),
            tick: watch::channel(0).0,
            waits: Default::default(),
        }
    }
}

impl ReplyGate {
    /// The highest offset whose replies may be sent.
    pub fn released(&self) -> u64 {
        let d = if self.need_durable.load(Ordering::Acquire) {
            self.durable.load(Ordering::Acquire)
        } else {
            u64::MAX
        };
        let a = if self.need_ack.load(Ordering::Acquire) {
            self.acked.load(Ordering::Acquire)
        } else {
            u64::MAX
        };
        d.min(a)
    }

    fn bump(&self) {
        self.tick.send_modify(|v| *v = v.wrapping_add(1));
    }

    pub fn set_durable(&self, offset: u64) {
        self.durable.fetch_max(offset, Ordering::AcqRel);
        self.bump();
    }
    pub fn durable(&self) -> u64 {
        self.durable.load(Ordering::Acquire)
    }
    /// Reset the durable mark (after recovery or a log truncation).
    pub fn reset_durable(&self, offset: u64) {
        self.durable.store(offset, Ordering::Release);
        self.bump();
    }
    pub fn set_acked(&self, offset: u64) {
        self.acked.store(offset, Ordering::Release);
        self.bump();
    }
    pub fn acked(&self) -> u64 {
        self.acked.load(Ordering::Acquire)
    }
    pub fn set_need_durable(&self, on: bool) {
        self.need_durable.store(on, Ordering::Release);
        self.bump();
    }
    pub fn set_need_ack(&self, on: bool) {
        if self.need_ack.swap(on, Ordering::AcqRel) != on {
            self.bump();
        }
    }
    pub fn need_ack(&self) -> bool {
        self.need_ack.load(Ordering::Acquire)
    }

    /// The log writer failed having written up to `written` (Some), or works again (None).
    pub fn set_log_failed_at(&self, written: Option<u64>) {
        self.log_failed_at
            .store(written.unwrap_or(u64::MAX), Ordering::Release);
        self.bump();
    }

    /// Wait until `offset` is released, or fail when the log cannot be written past an offset
    /// below it (the reply must then not be an acknowledgement).
    pub async fn wait(&self, offset: u64) -> Result<(), LogFailed> {
        let mut rx = self.tick.subscribe();
        loop {
            if self.released() >= offset {
                return Ok(());
            }
            if offset > self.log_failed_at.load(Ordering::Acquire) {
                return Err(LogFailed);
            }
            if rx.changed().await.is_err() {
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test]
    async fn one_ack_releases_many_waiters() {
        let g = Arc::new(ReplyGate::default());
        g.set_need_ack(true);
        let mut tasks = Vec::new();
        for off in [10u64, 20, 30] {
            let g = g.clone();
            tasks.push(tokio::spawn(async move { g.wait(off).await }));
        }
        tokio::task::yield_now().await;
        assert!(tasks.iter().all(|t| !t.is_finished()));
        g.set_acked(30);
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        g.set_need_durable(true);
        assert_eq!(g.released(), 0);
        g.set_durable(25);
        assert_eq!(g.released(), 25);
        g.set_need_ack(false);
        g.set_need_durable(false);
        assert_eq!(g.released(), u64::MAX);
    }

    #[tokio::test]
    async fn a_log_failure_fails_the_waiters_it_strands() {
        let g = Arc::new(ReplyGate::default());
        g.set_need_durable(true);
        g.set_durable(10);
        let waiter = {
            let g = g.clone();
            tokio::spawn(async move { g.wait(30).await })
        };
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        // The log wrote up to 20 and cannot go on: offset 30 will not be released.
        g.set_log_failed_at(Some(20));
        assert_eq!(waiter.await.unwrap(), Err(LogFailed));
        // An offset the log did write is still released by its fsync.
        let waiter = {
            let g = g.clone();
            tokio::spawn(async move { g.wait(20).await })
        };
        g.set_durable(20);
        assert_eq!(waiter.await.unwrap(), Ok(()));
        g.set_log_failed_at(None);
        let waiter = {
            let g = g.clone();
            tokio::spawn(async move { g.wait(30).await })
        };
        g.set_durable(30);
        assert_eq!(waiter.await.unwrap(), Ok(()));
    }
}
