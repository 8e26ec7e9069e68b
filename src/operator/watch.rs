//! The controller's watch streams, built so that a watch error never pauses a failover.
//! Does I/O: Kubernetes watches (list + watch of the objects the controller follows).
//!
//! Why not kube-runtime's defaults: `Controller::new` / `owns` / `watches` merge every watch
//! *and the probers' triggers* (`reconcile_on`) into one stream, and wrap that merged stream
//! in a `StreamBackoff`: after any watch error the whole stream — the probers' "the master
//! just failed" triggers included — is paused for client-go's backoff, 0.8 s doubling to 30 s.
//! An apiserver restart makes every watch fail for its downtime and then briefly with 403s
//! (its authorizer serves before its RBAC cache has synced), so the pause reached 30 s and
//! more: the failover after an apiserver restart, and the one after it, waited a minute for
//! the 60 s resync instead of the prober's trigger (issue #14, torture round
//! `apiserver-restarted`: 68 s).
//!
//! So each watch here carries **its own** backoff (short: 0.2 s doubling to 2 s; a handful of
//! watches retrying every 2 s is nothing to an apiserver), and its errors are logged and
//! dropped before the merge: the merged stream never sees an error, the controller's
//! backoff never engages, and a prober's trigger reaches the scheduler at once. A watch that
//! cannot reach the apiserver only means its objects' changes arrive late; the reconcile pass
//! reads what it acts on from the API itself, and the probers read engines directly.

use std::fmt::Debug;
use std::time::Duration;

use futures::{Stream, StreamExt};
use kube::runtime::utils::Backoff;
use kube::runtime::{watcher, WatchStreamExt};

/// First retry after a failed list or watch.
pub const FIRST_RETRY: Duration = Duration::from_millis(200);
/// The longest wait between retries: what a watch can add to the time the controller takes
/// to see a change once the apiserver is back.
pub const MAX_RETRY: Duration = Duration::from_secs(2);

/// Capped doubling backoff, reset by the first good event (kube-runtime's `StreamBackoff`
/// calls `reset` on every `Ok`). Pure.
#[derive(Debug, Clone)]
pub struct WatchBackoff {
    next: Duration,
}

impl Default for WatchBackoff {
    fn default() -> Self {
        WatchBackoff { next: FIRST_RETRY }
    }
}

impl Iterator for WatchBackoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let now = self.next;
        self.next = (self.next * 2).min(MAX_RETRY);
        Some(now)
    }
}

impl Backoff for WatchBackoff {
    fn reset(&mut self) {
        self.next = FIRST_RETRY;
    }
}

/// A watch stream with its own [`WatchBackoff`] whose errors are logged (`what` names the
/// watch) and dropped, so that they never reach the controller's merged trigger stream.
pub fn resilient<T, S>(
    stream: S,
    what: &'static str,
) -> impl Stream<Item = Result<T, watcher::Error>> + Send + 'static
where
    T: Send + 'static,
    S: Stream<Item = Result<T, watcher::Error>> + Send + 'static,
{
    stream
        .backoff(WatchBackoff::default())
        .filter_map(move |r| async move {
            match r {
                Ok(obj) => Some(Ok(obj)),
                Err(e) => {
                    tracing::warn!(watch = what, error = %e, "watch failed; retrying");
                    None
                }
            }
        })
}

/// Shorthand: the touched objects of a fresh watcher of `api`, made [`resilient`].
pub fn touched<K>(
    api: kube::Api<K>,
    config: watcher::Config,
    what: &'static str,
) -> impl Stream<Item = Result<K, watcher::Error>> + Send + 'static
where
    K: kube::Resource + Clone + Debug + serde::de::DeserializeOwned + Send + 'static,
{
    resilient(watcher(api, config).touched_objects(), what)
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::stream;

    #[test]
    fn backoff_doubles_to_its_cap_and_resets() {
        let mut b = WatchBackoff::default();
        let first: Vec<_> = (&mut b).take(6).collect();
        assert_eq!(
            first,
            [200, 400, 800, 1600, 2000, 2000].map(Duration::from_millis)
        );
        b.reset();
        assert_eq!(b.next(), Some(FIRST_RETRY));
    }

    /// The property the controller relies on: errors never come out, good events do.
    #[tokio::test]
    async fn errors_are_dropped_and_events_pass() {
        let items: Vec<Result<u32, watcher::Error>> = vec![
            Ok(1),
            Err(watcher::Error::NoResourceVersion),
            Err(watcher::Error::NoResourceVersion),
            Ok(2),
        ];
        let out: Vec<_> = resilient(stream::iter(items), "test").collect().await;
        let out: Vec<u32> = out
            .into_iter()
            .map(|r| r.expect("no error passes"))
            .collect();
        assert_eq!(out, [1, 2]);
    }
}
