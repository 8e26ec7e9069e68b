//! The operator's HTTP endpoints with axum: /healthz (the process runs), /readyz (connected to
//! the API server; a standby waiting for the Lease is ready too) and /metrics. Does I/O: a TCP
//! listener.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use prometheus_client::registry::Registry;

pub struct HttpState {
    pub registry: Registry,
    pub ready: AtomicBool,
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(s): State<Arc<HttpState>>) -> (StatusCode, &'static str) {
    if s.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "starting")
    }
}

/// prometheus-client writes OpenMetrics (counters' samples end in `_total`, `# EOF` at the
/// end): said in the content type, so Prometheus parses it as such and keeps the types.
async fn metrics(State(s): State<Arc<HttpState>>) -> impl axum::response::IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        super::metrics::encode(&s.registry),
    )
}

pub fn router(state: Arc<HttpState>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

pub async fn serve(addr: SocketAddr, state: Arc<HttpState>) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(%addr, "serving /healthz /readyz /metrics");
    axum::serve(listener, router(state)).await
}
