//! The one listener for every platform's callbacks.
//!
//! Platforms that push nothing over a stream (and Huawei's account-wide
//! event push) POST their callbacks to usher. They all arrive here, at
//! `POST /hooks/<platform name>`, and go to that platform account's
//! [`Platform::webhook`], which verifies and acts on them. Bodies are
//! capped at [`MAX_BODY`]; a larger one is refused (413) before any
//! platform sees it. Every answer is counted by platform and status, so
//! refused callbacks (401) show in `/metrics`.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;

use super::status::Registry;
use crate::platform::{Platform, WebhookRequest};

/// The largest callback body usher reads.
pub const MAX_BODY: usize = 1 << 20;

/// What the handlers share.
struct Hooks {
    platforms: BTreeMap<String, Arc<dyn Platform>>,
    registry: Arc<Registry>,
}

/// The listener's routes.
pub fn router(platforms: BTreeMap<String, Arc<dyn Platform>>, registry: Arc<Registry>) -> Router {
    Router::new()
        .route("/hooks/{platform}", post(callback))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(Arc::new(Hooks {
            platforms,
            registry,
        }))
}

async fn callback(
    State(hooks): State<Arc<Hooks>>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(platform) = hooks.platforms.get(&name) else {
        return (StatusCode::NOT_FOUND, "no such platform\n").into_response();
    };
    let request = WebhookRequest {
        query: query.unwrap_or_default(),
        headers,
        body,
    };
    let reply = platform.webhook(request).await;
    hooks.registry.count_webhook(&name, reply.status);
    if reply.status == 401 {
        tracing::warn!(platform = %name, "refused a callback: {}", reply.body.trim());
    }
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        [(header::CONTENT_TYPE, reply.content_type)],
        reply.body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SecretSource;
    use crate::model::Secret;
    use crate::platform::agora::auth::signature_headers;
    use crate::platform::agora::{Agora, AgoraConfig};
    use crate::platform::{BuildContext, FeedOptions};

    const SECRET: &str = "listener-test-secret";

    /// The listener with one webhook platform, `ag`, whose callbacks must
    /// be signed with [`SECRET`].
    async fn serve() -> (std::net::SocketAddr, Arc<Registry>) {
        let registry = Arc::new(Registry::default());
        let mut config = AgoraConfig::at(url::Url::parse("http://127.0.0.1:9/").unwrap(), "cn");
        config.app_id = Some(SecretSource::Literal(Secret::new("app")));
        config.token = Some(SecretSource::Literal(Secret::new("token")));
        config.webhook_secret = Some(SecretSource::Literal(Secret::new(SECRET)));
        let context = BuildContext::standalone("ag", 1, FeedOptions::default());
        let agora: Arc<dyn Platform> = Arc::new(Agora::new(&config, &context).unwrap());
        let platforms = BTreeMap::from([("ag".to_owned(), agora)]);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = router(platforms, registry.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (addr, registry)
    }

    #[tokio::test]
    async fn callbacks_are_routed_by_platform_capped_and_counted() {
        let (addr, registry) = serve().await;
        let client = reqwest::Client::new();
        let post = |path: &str, body: Vec<u8>, secret: &str| {
            let mut request = client.post(format!("http://{addr}{path}"));
            for (name, value) in signature_headers(&Secret::new(secret), &body) {
                request = request.header(name, value);
            }
            request.body(body).send()
        };
        let body =
            br#"{"roomUuid":"r","cmd":1,"sequence":1,"version":1,"ts":0,"data":{"state":1}}"#;
        let unknown = post("/hooks/nowhere", body.to_vec(), SECRET).await.unwrap();
        assert_eq!(unknown.status(), 404);
        let forged = post("/hooks/ag", body.to_vec(), "a guess").await.unwrap();
        assert_eq!(forged.status(), 401, "the platform checks the signature");
        let huge = post("/hooks/ag", vec![b'x'; MAX_BODY + 1], SECRET)
            .await
            .unwrap();
        assert_eq!(huge.status(), 413, "a body over the cap is refused unread");
        let metrics = registry.metrics();
        assert!(
            metrics.contains("usher_webhooks_total{platform=\"ag\",status=\"401\"} 1"),
            "{metrics}"
        );
        assert!(
            !metrics.contains("nowhere"),
            "an unknown path is no platform: {metrics}"
        );
    }
}
