//! Leader election on a coordination.k8s.io Lease, so several operator replicas can run and
//! only one acts. A small loop of our own (kube-runtime has none): take the Lease when it is
//! free or expired, renew it well within its duration, and stop acting as soon as a renewal
//! fails past the deadline. Does I/O: Kubernetes API reads and writes of one Lease.
//!
//! Writes use the Lease's resourceVersion (optimistic locking), so two candidates can never
//! both succeed in taking it.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, ObjectMeta, PostParams};
use kube::Client;

#[derive(Debug, thiserror::Error)]
pub enum LeaderError {
    #[error("lease API: {0}")]
    Api(#[from] kube::Error),
    #[error("leadership lost: {0}")]
    Lost(String),
}

pub struct LeaderElection {
    api: Api<Lease>,
    name: String,
    identity: String,
    duration: Duration,
}

/// Whether a Lease is free for `identity` at `now`.
pub fn lease_is_free(spec: &LeaseSpec, identity: &str, now: jiff::Timestamp) -> bool {
    let holder = spec.holder_identity.as_deref().unwrap_or("");
    if holder.is_empty() || holder == identity {
        return true;
    }
    let duration = spec.lease_duration_seconds.unwrap_or(15) as i64;
    match &spec.renew_time {
        Some(MicroTime(t)) => *t + jiff::SignedDuration::from_secs(duration) < now,
        None => true,
    }
}

impl LeaderElection {
    pub fn new(client: Client, namespace: &str, name: &str, identity: &str) -> LeaderElection {
        LeaderElection {
            api: Api::namespaced(client, namespace),
            name: name.to_string(),
            identity: identity.to_string(),
            duration: Duration::from_secs(15),
        }
    }

    /// One attempt to take or renew the Lease. Ok(true): we hold it now.
    pub async fn try_acquire(&self) -> Result<bool, kube::Error> {
        let now = jiff::Timestamp::now();
        let existing = self.api.get_opt(&self.name).await?;
        let mut lease = existing.clone().unwrap_or_else(|| Lease {
            metadata: ObjectMeta {
                name: Some(self.name.clone()),
                ..Default::default()
            },
            spec: Some(LeaseSpec::default()),
        });
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        if !lease_is_free(spec, &self.identity, now) {
            return Ok(false);
        }
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            spec.acquire_time = Some(MicroTime(now));
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
        }
        spec.holder_identity = Some(self.identity.clone());
        spec.lease_duration_seconds = Some(self.duration.as_secs() as i32);
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

    /// Wait until this instance holds the Lease.
    pub async fn acquire(&self) {
        loop {
            match self.try_acquire().await {
                Ok(true) => return,
                Ok(false) => {}
                Err(e) => tracing::warn!(%e, "leader election"),
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }

    /// Keep renewing; returns when leadership is lost (the caller must stop acting: the
    /// process exits so a restarted one starts as a follower).
    pub async fn hold(&self) -> LeaderError {
        let renew_every = self.duration / 5;
        let mut last_ok = tokio::time::Instant::now();
        loop {
            tokio::time::sleep(renew_every).await;
            match self.try_acquire().await {
                Ok(true) => last_ok = tokio::time::Instant::now(),
                Ok(false) => return LeaderError::Lost("another instance holds the lease".into()),
                Err(e) => {
                    // Give up well before the Lease could expire for the others.
                    if last_ok.elapsed() > self.duration / 2 {
                        return LeaderError::Lost(format!("renewals failing: {e}"));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_is_free_when_unheld_ours_or_expired() {
        let now: jiff::Timestamp = "2026-01-01T00:00:30Z".parse().unwrap();
        let mut spec = LeaseSpec::default();
        assert!(lease_is_free(&spec, "me", now));
        spec.holder_identity = Some("other".into());
        spec.lease_duration_seconds = Some(15);
        spec.renew_time = Some(MicroTime("2026-01-01T00:00:20Z".parse().unwrap()));
        assert!(!lease_is_free(&spec, "me", now));
        assert!(lease_is_free(&spec, "other", now));
        spec.renew_time = Some(MicroTime("2026-01-01T00:00:10Z".parse().unwrap()));
        assert!(lease_is_free(&spec, "me", now));
    }
}
