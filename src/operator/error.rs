//! The reconcile error, one variant per pipeline step, each with a category used as the
//! metrics label and the Event reason, and a requeue policy. Pure.

use std::time::Duration;

use super::engine_client::EngineError;
use super::validate::ValidateError;

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("observe: {0}")]
    Observe(#[source] kube::Error),
    #[error("invalid spec: {0}")]
    Validate(#[source] ValidateError),
    #[error("apply {kind} {name}: {source}")]
    Apply {
        kind: &'static str,
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("status: {0}")]
    Status(#[source] kube::Error),
    #[error("engine: {0}")]
    Engine(#[source] EngineError),
}

impl ReconcileError {
    pub fn category(&self) -> &'static str {
        match self {
            ReconcileError::Observe(_) => "ObserveFailed",
            ReconcileError::Validate(e) => e.category(),
            ReconcileError::Apply { .. } => "ApplyFailed",
            ReconcileError::Status(_) => "StatusFailed",
            ReconcileError::Engine(e) => e.category(),
        }
    }

    /// When to try again: an invalid spec waits for the user to change it; an engine that
    /// did not answer is retried fast (a failover may be waiting on it); API errors back off.
    pub fn requeue_after(&self) -> Option<Duration> {
        match self {
            ReconcileError::Validate(_) => None,
            ReconcileError::Engine(_) => Some(Duration::from_millis(500)),
            ReconcileError::Observe(_)
            | ReconcileError::Apply { .. }
            | ReconcileError::Status(_) => Some(Duration::from_secs(2)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories_and_requeues() {
        let e = ReconcileError::Validate(ValidateError::NoNamespace);
        assert_eq!(e.category(), "InvalidSpec");
        assert_eq!(e.requeue_after(), None);
        let e = ReconcileError::Engine(EngineError::MissingField {
            addr: "a".into(),
            field: "role",
        });
        assert_eq!(e.category(), "EngineProtocol");
        assert_eq!(e.requeue_after(), Some(Duration::from_millis(500)));
    }
}
