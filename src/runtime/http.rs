//! The local HTTP endpoint: `/healthz`, `/metrics` and `/status`.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;

use super::status::Registry;

/// The endpoint's routes.
pub fn router(registry: Arc<Registry>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/status", get(status))
        .with_state(registry)
}

/// 200 when every room's event stream is up; otherwise 503 naming the rooms
/// that are not, and why.
async fn healthz(State(registry): State<Arc<Registry>>) -> Response {
    let down = registry.unhealthy();
    if down.is_empty() {
        return (StatusCode::OK, "ok\n").into_response();
    }
    let mut body = String::from("not moderated (down or stalled):\n");
    for (room, why) in down {
        body.push_str(&format!("  {room}: {why}\n"));
    }
    (StatusCode::SERVICE_UNAVAILABLE, body).into_response()
}

async fn metrics(State(registry): State<Arc<Registry>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        registry.metrics(),
    )
        .into_response()
}

async fn status(State(registry): State<Arc<Registry>>) -> Response {
    Json(registry.report()).into_response()
}
