//! Lazy freeing (Redis's lazyfree.c): a value that costs much to free (a big hash, set, sorted
//! set, list or stream) is dropped on a background thread instead of under the state lock when
//! UNLINK removes it (or DEL with `lazyfree-lazy-user-del yes`), and FLUSHALL / FLUSHDB ASYNC
//! (or `lazyfree-lazy-user-flush yes`) hand a whole database's contents over. Does I/O: spawns
//! one thread per process, the first time something is handed over.
//!
//! Why: freeing a 10-million-member set walks ten million allocations; under the lock every
//! client waits for it. The value is unreachable the moment it leaves the map, so who frees it
//! and when is invisible to clients, except in `INFO` (`lazyfree_pending_objects`,
//! `lazyfreed_objects`, counted as Redis counts them: one per value, the number of keys per
//! database flushed) and in how soon `used_memory` falls.
//!
//! Not lazy here, though Redis can make them so: expiry, eviction and the server's own
//! deletions (`lazyfree-lazy-expire`, `-eviction`, `-server-del` are accepted and ignored).
//! Expiry and eviction free one key at a time in bounded cycles already.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};

use crate::engine::storage::Value;

/// Above this free effort (about one allocation per unit) a value is freed in the background:
/// Redis's `LAZYFREE_THRESHOLD`.
pub const LAZYFREE_THRESHOLD: usize = 64;

/// One engine's counters (the thread is shared by every engine of a process: tests run several).
#[derive(Debug, Default)]
pub struct LazyFreeStats {
    pending: AtomicU64,
    freed: AtomicU64,
}

impl LazyFreeStats {
    /// Objects handed over and not freed yet (`lazyfree_pending_objects`).
    pub fn pending(&self) -> u64 {
        self.pending.load(Ordering::Relaxed)
    }
    /// Objects freed in the background since start or CONFIG RESETSTAT (`lazyfreed_objects`).
    pub fn freed(&self) -> u64 {
        self.freed.load(Ordering::Relaxed)
    }
    pub fn reset_freed(&self) {
        self.freed.store(0, Ordering::Relaxed);
    }
}

/// Something to drop, the objects it counts for, and whose counters they are.
type Job = (Box<dyn Send>, u64, Arc<LazyFreeStats>);

fn queue() -> Option<&'static Mutex<mpsc::Sender<Job>>> {
    static QUEUE: OnceLock<Option<Mutex<mpsc::Sender<Job>>>> = OnceLock::new();
    QUEUE
        .get_or_init(|| {
            let (tx, rx) = mpsc::channel::<Job>();
            let spawned = std::thread::Builder::new()
                .name("lazyfree".into())
                .spawn(move || {
                    for (garbage, objects, stats) in rx {
                        drop(garbage);
                        stats.pending.fetch_sub(objects, Ordering::Relaxed);
                        stats.freed.fetch_add(objects, Ordering::Relaxed);
                    }
                });
            // No thread (the process is out of threads): everything is freed in place.
            spawned.ok().map(|_| Mutex::new(tx))
        })
        .as_ref()
}

/// Hand `garbage` (counting as `objects`) to the background thread, or drop it here when there
/// is no thread.
fn hand_over(stats: &Arc<LazyFreeStats>, garbage: Box<dyn Send>, objects: u64) {
    // No thread, or a poisoned queue: `garbage` is dropped here on return.
    let Some(q) = queue() else {
        return;
    };
    let Ok(tx) = q.lock() else {
        return;
    };
    stats.pending.fetch_add(objects, Ordering::Relaxed);
    if let Err(mpsc::SendError((garbage, objects, _))) = tx.send((garbage, objects, stats.clone()))
    {
        drop(garbage);
        stats.pending.fetch_sub(objects, Ordering::Relaxed);
    }
}

/// Free a value removed from the dataset: in the background when its effort is above the
/// threshold (Redis's `dbAsyncDelete`), here otherwise.
pub fn free_value(stats: &Arc<LazyFreeStats>, value: Value) {
    if value.free_effort() > LAZYFREE_THRESHOLD {
        hand_over(stats, Box::new(value), 1);
    }
}

/// Free a flushed database's contents in the background (FLUSHALL / FLUSHDB ASYNC), counted as
/// its number of keys (Redis's `emptyDbAsync`).
pub fn free_contents(stats: &Arc<LazyFreeStats>, contents: Box<dyn Send>, keys: usize) {
    if keys > 0 {
        hand_over(stats, contents, keys as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn wait_freed(stats: &LazyFreeStats, n: u64) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while stats.freed() < n || stats.pending() > 0 {
            assert!(Instant::now() < deadline, "not freed: {stats:?}");
            std::thread::yield_now();
        }
    }

    #[test]
    fn big_values_and_flushed_databases_are_freed_in_the_background_and_counted() {
        let stats = Arc::new(LazyFreeStats::default());
        // A small value: freed here, not counted.
        free_value(&stats, Value::str(b"small"));
        assert_eq!((stats.pending(), stats.freed()), (0, 0));
        // A list of many elements: handed over, counted once.
        let mut list = crate::engine::storage::list::ListValue::default();
        for i in 0..20_000u32 {
            list.push(
                crate::engine::storage::list::End::Right,
                i.to_string().as_bytes(),
            );
        }
        let big = Value::List(Box::new(list));
        assert!(big.free_effort() > LAZYFREE_THRESHOLD);
        free_value(&stats, big);
        wait_freed(&stats, 1);
        // A database of 3 keys: counted as 3.
        free_contents(&stats, Box::new(vec![1u8, 2, 3]), 3);
        wait_freed(&stats, 4);
        stats.reset_freed();
        assert_eq!(stats.freed(), 0);
    }
}
