//! Leader election on a coordination.k8s.io Lease, so several operator replicas can run and
//! only one acts. Does I/O: Kubernetes API reads and writes of one Lease.
//!
//! A loop of our own (kube-runtime has none; kube-lease-manager targets older kube releases
//! and compares the holder's `renewTime` with the local clock). Three rules make it safe
//! without trusting clocks across machines:
//!
//! 1. **Expiry is observed, not computed from `renewTime`.** A candidate remembers the Lease
//!    record it last saw (holder, renew time, resourceVersion) and *when it first saw it* on its
//!    own monotonic clock. The Lease is free once that record has stayed unchanged for
//!    `leaseDurationSeconds`. Comparing the holder's `renewTime` with the candidate's wall
//!    clock (the old rule) took over early or late by the clock skew between two nodes.
//! 2. **The leader stops before anyone may take over.** It counts its deadline from the
//!    moment it *sent* its last successful renewal (before the candidate can have observed
//!    it), and gives up [`RENEW_DEADLINE`] later, on a timer that fires even when a renewal
//!    request hangs (before, a hung request kept a stale leader acting). Giving up means the
//!    process stops ([`LeaderElection::hold`] returns) and starts again in place as a
//!    candidate (`execve` of itself: every task gone as with an exit, but no container
//!    restart for the kubelet to back off; see `restart_in_place` in the binary). The gap between [`RENEW_DEADLINE`] and [`LEASE_DURATION`] (1 s) covers clock
//!    rate differences (quartz: well under 0.1 %) and the process's exit.
//! 3. **Writes are optimistic** (the Lease's resourceVersion): two candidates can never both
//!    take it.
//!
//! A leader that shuts down (SIGTERM) *releases* the Lease (empty holder), so its successor
//! takes over at its next poll instead of waiting for expiry.
//!
//! The durations are short because a lost leader is a lost failover: when the node that runs
//! both the active operator and a pair's master dies, the standby's takeover is on the
//! failover's critical path (issue #14: 21.5 s with the old 15 s Lease and one replica). With
//! a standby whose prober is already warm (see `controller::run`), the failover starts at most
//! `LEASE_DURATION + POLL` after the leader's last renewal.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, ObjectMeta, PostParams};
use kube::Client;
use tokio::time::Instant;

/// How long an unchanged Lease record keeps others out (`leaseDurationSeconds`).
pub const LEASE_DURATION: Duration = Duration::from_secs(3);
/// The leader gives up this long after sending its last successful renewal.
pub const RENEW_DEADLINE: Duration = Duration::from_secs(2);
/// How often the leader renews and a candidate looks.
pub const POLL: Duration = Duration::from_millis(500);

#[derive(Debug, thiserror::Error)]
pub enum LeaderError {
    #[error("lease API: {0}")]
    Api(#[from] kube::Error),
    #[error("lease API: no answer within {0:?}")]
    Timeout(Duration),
    #[error("leadership lost: {0}")]
    Lost(String),
}

/// What a candidate remembers of the Lease between looks: the record it saw and when it first
/// saw it (its own monotonic clock).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    record: (String, Option<String>, Option<String>),
    since: Instant,
}

/// The part of a Lease whose change shows the holder is alive.
fn record_of(lease: &Lease) -> (String, Option<String>, Option<String>) {
    let spec = lease.spec.clone().unwrap_or_default();
    (
        spec.holder_identity.unwrap_or_default(),
        spec.renew_time.map(|MicroTime(t)| t.to_string()),
        lease.metadata.resource_version.clone(),
    )
}

/// Whether `identity` may take the Lease now. `last` is what this candidate saw before (updated
/// here); the Lease is free when unheld, held by `identity`, or unchanged for its duration.
pub fn lease_is_free(
    lease: &Lease,
    identity: &str,
    last: &mut Option<Observed>,
    now: Instant,
) -> bool {
    let record = record_of(lease);
    let holder = record.0.clone();
    if last.as_ref().is_none_or(|o| o.record != record) {
        *last = Some(Observed { record, since: now });
    }
    if holder.is_empty() || holder == identity {
        return true;
    }
    let duration = lease
        .spec
        .as_ref()
        .and_then(|s| s.lease_duration_seconds)
        .map(|s| Duration::from_secs(s.max(1) as u64))
        .unwrap_or(LEASE_DURATION);
    last.as_ref()
        .is_some_and(|o| now.duration_since(o.since) >= duration)
}

pub struct LeaderElection {
    api: Api<Lease>,
    name: String,
    identity: String,
    /// The Lease as this candidate last saw it (for the observed expiry).
    last: tokio::sync::Mutex<Option<Observed>>,
}

impl LeaderElection {
    pub fn new(client: Client, namespace: &str, name: &str, identity: &str) -> LeaderElection {
        LeaderElection {
            api: Api::namespaced(client, namespace),
            name: name.to_string(),
            identity: identity.to_string(),
            last: Default::default(),
        }
    }

    /// One attempt to take or renew the Lease. Ok(true): we hold it now.
    pub async fn try_acquire(&self) -> Result<bool, kube::Error> {
        let existing = self.api.get_opt(&self.name).await?;
        let mut lease = existing.clone().unwrap_or_else(|| Lease {
            metadata: ObjectMeta {
                name: Some(self.name.clone()),
                ..Default::default()
            },
            spec: Some(LeaseSpec::default()),
        });
        if existing.is_some() {
            let mut last = self.last.lock().await;
            if !lease_is_free(&lease, &self.identity, &mut last, Instant::now()) {
                return Ok(false);
            }
        }
        // The wall clock only for the fields humans and other tools read; nobody here
        // derives expiry from them (rule 1).
        let now = jiff::Timestamp::now();
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            spec.acquire_time = Some(MicroTime(now));
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
        }
        spec.holder_identity = Some(self.identity.clone());
        spec.lease_duration_seconds = Some(LEASE_DURATION.as_secs() as i32);
        spec.renew_time = Some(MicroTime(now));
        let result = match existing {
            None => self.api.create(&PostParams::default(), &lease).await,
            Some(_) => {
                self.api
                    .replace(&self.name, &PostParams::default(), &lease)
                    .await
            }
        };
        match result {
            Ok(_) => Ok(true),
            // Someone else wrote it first.
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Wait until this instance holds the Lease. Returns when it does, having sent the
    /// successful request at the returned instant (the start of the leader's deadline).
    pub async fn acquire(&self) -> Instant {
        loop {
            let sent = Instant::now();
            match tokio::time::timeout(RENEW_DEADLINE, self.try_acquire()).await {
                Ok(Ok(true)) => return sent,
                Ok(Ok(false)) => {}
                Ok(Err(e)) => tracing::warn!(%e, "leader election"),
                Err(_) => tracing::warn!("leader election: the API did not answer"),
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Keep renewing; returns when leadership is lost: another instance holds the Lease, or
    /// no renewal succeeded within [`RENEW_DEADLINE`] of sending the last one that did. The
    /// caller must stop acting at once (the process re-executes itself, so it comes back a candidate).
    /// `held_since`: when the request that took the Lease was sent.
    pub async fn hold(&self, held_since: Instant) -> LeaderError {
        let mut last_ok_sent = held_since;
        loop {
            let deadline = last_ok_sent + RENEW_DEADLINE;
            tokio::time::sleep_until(deadline.min(Instant::now() + POLL)).await;
            let sent = Instant::now();
            if sent >= deadline {
                return LeaderError::Lost(format!(
                    "no renewal succeeded within {RENEW_DEADLINE:?}"
                ));
            }
            // The request may hang (apiserver gone, network cut): it is bounded by the deadline,
            // so a stale leader never outlives it.
            match tokio::time::timeout_at(deadline, self.try_acquire()).await {
                Ok(Ok(true)) => last_ok_sent = sent,
                Ok(Ok(false)) => {
                    return LeaderError::Lost("another instance holds the lease".into())
                }
                Ok(Err(e)) => tracing::warn!(%e, "lease renewal failed"),
                Err(_) => {
                    return LeaderError::Lost(format!(
                        "{}",
                        LeaderError::Timeout(deadline.duration_since(sent))
                    ))
                }
            }
        }
    }

    /// Give the Lease up (on shutdown, after this instance stopped acting): an empty holder,
    /// so a standby takes over at its next poll instead of after the Lease's duration. Best
    /// effort and bounded: if it fails, the Lease simply expires.
    pub async fn release(&self) {
        let release = async {
            let Some(mut lease) = self.api.get_opt(&self.name).await? else {
                return Ok::<_, kube::Error>(false);
            };
            let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
            if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
                return Ok(false);
            }
            spec.holder_identity = None;
            spec.renew_time = None;
            spec.acquire_time = None;
            self.api
                .replace(&self.name, &PostParams::default(), &lease)
                .await?;
            Ok(true)
        };
        match tokio::time::timeout(RENEW_DEADLINE, release).await {
            Ok(Ok(true)) => tracing::info!(identity = %self.identity, "leader Lease released"),
            Ok(Ok(false)) => {}
            Ok(Err(e)) => tracing::warn!(%e, "could not release the leader Lease"),
            Err(_) => tracing::warn!("could not release the leader Lease: no answer"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(holder: &str, renew: &str, rv: &str) -> Lease {
        Lease {
            metadata: ObjectMeta {
                resource_version: Some(rv.into()),
                ..Default::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: (!holder.is_empty()).then(|| holder.into()),
                lease_duration_seconds: Some(3),
                renew_time: Some(MicroTime(renew.parse().unwrap())),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn expiry_is_observed_on_the_local_clock_never_from_renew_time() {
        let mut last = None;
        // The holder's renewTime is far in the past by our wall clock (skewed clocks): that
        // alone frees nothing.
        let l = lease("other", "2000-01-01T00:00:00Z", "1");
        let t0 = Instant::now();
        assert!(!lease_is_free(&l, "me", &mut last, t0));
        assert!(!lease_is_free(
            &l,
            "me",
            &mut last,
            t0 + Duration::from_millis(2_900)
        ));
        // A renewal (the record changed) restarts the count.
        let l2 = lease("other", "2000-01-01T00:00:00.5Z", "2");
        assert!(!lease_is_free(
            &l2,
            "me",
            &mut last,
            t0 + Duration::from_millis(2_950)
        ));
        assert!(!lease_is_free(
            &l2,
            "me",
            &mut last,
            t0 + Duration::from_millis(5_900)
        ));
        // Unchanged for the whole duration: free.
        assert!(lease_is_free(
            &l2,
            "me",
            &mut last,
            t0 + Duration::from_millis(5_950)
        ));
        // Ours, or released: free at once.
        assert!(lease_is_free(&l2, "other", &mut None, t0));
        assert!(lease_is_free(
            &lease("", "2000-01-01T00:00:00Z", "3"),
            "me",
            &mut None,
            t0
        ));
        // A holder renewing with a renewTime in the future (clock ahead) changes nothing either.
        let mut last = None;
        let ahead = lease("other", "2100-01-01T00:00:00Z", "4");
        assert!(!lease_is_free(&ahead, "me", &mut last, t0));
        assert!(lease_is_free(&ahead, "me", &mut last, t0 + LEASE_DURATION));
    }

    #[test]
    fn the_leader_gives_up_before_a_candidate_may_take_over() {
        // The leader's deadline runs from the send of its last good renewal, the candidate's
        // wait from its observation of it (later): the margin is what separates them.
        assert!(RENEW_DEADLINE + Duration::from_millis(500) <= LEASE_DURATION);
        assert!(POLL * 2 <= RENEW_DEADLINE);
    }
}
