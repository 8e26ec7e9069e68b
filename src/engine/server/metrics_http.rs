//! The Prometheus endpoint (`metrics-port`): GET /metrics answers the engine's metrics
//! (`engine::metrics`), anything else 404. A separate listener, so a scrape never queues behind
//! client connections and needs no password (it shows counters, never data). Does I/O: TCP.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;

use crate::engine::clock::now_ms;
use crate::engine::core::Engine;
use crate::engine::metrics;

async fn scrape(State(engine): State<Arc<Engine>>) -> impl IntoResponse {
    // Copy under the lock, encode outside it: the lock is held for a few hundred loads.
    let snap = {
        let st = engine.state.lock();
        metrics::snapshot(&st, &engine.gate, now_ms())
    };
    (
        [(CONTENT_TYPE, metrics::CONTENT_TYPE)],
        metrics::encode(snap),
    )
}

/// Serve /metrics on `listener` until the task is aborted (the engine's shutdown).
pub async fn serve(engine: Arc<Engine>, listener: TcpListener) {
    let app = Router::new()
        .route("/metrics", get(scrape))
        .with_state(engine);
    if let Err(e) = axum::serve(listener, app).await {
        tracing::warn!(error = %e, "metrics endpoint stopped");
    }
}
