//! An Agora account against its simulator, over loopback: the simulator
//! with a token (written to a token file) and a webhook secret, a webhook
//! listener routing `POST /hooks/<name>` to the real adapter, and the
//! adapter itself.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use usher::config::SecretSource;
use usher::model::{Secret, Span};
use usher::platform::agora::{Agora, AgoraConfig, CreateConfig};
use usher::platform::{
    BuildContext, Discovery, FeedOptions, Platform, RoomAddress, RoomLink, WebhookRequest,
};
use usher::sim::agora::{AgoraSimOptions, AgoraSimulator};

/// The account's name: callbacks go to `/hooks/ag`.
pub const NAME: &str = "ag";
/// The simulator's App ID.
pub const APP_ID: &str = "app-0123456789";
/// The webhook secret both ends know.
pub const WEBHOOK_SECRET: &str = "hook-secret-5150";
/// The first token.
pub const TOKEN: &str = "tok-first-0001";

/// How the tests' links pace themselves: quick gaps and reconciles.
pub fn quick(config: &mut AgoraConfig) {
    config.gap_hold = Span(Duration::from_millis(300));
    config.reconcile = Span(Duration::from_secs(30));
}

/// Where the listener sends callbacks.
type Slot = Arc<std::sync::RwLock<Option<Arc<dyn Platform>>>>;

/// A webhook listener on a free loopback port, routing to whichever
/// platform is put in its slot (the platform is built after the listener,
/// whose address it needs).
pub struct Hooks {
    pub addr: SocketAddr,
    slot: Slot,
    task: JoinHandle<()>,
}

impl Hooks {
    /// Binds the listener.
    pub async fn bind() -> Hooks {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let addr = listener.local_addr().expect("an address");
        let slot: Slot = Arc::default();
        let app = Router::new()
            .route("/hooks/{name}", post(hook))
            .with_state(slot.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Hooks { addr, slot, task }
    }

    /// `http://<addr>/`, usher's public URL.
    pub fn public_url(&self) -> url::Url {
        url::Url::parse(&format!("http://{}/", self.addr)).expect("a URL")
    }

    /// Where the account's callbacks go.
    pub fn url(&self) -> url::Url {
        url::Url::parse(&format!("http://{}/hooks/{NAME}", self.addr)).expect("a URL")
    }

    /// Routes callbacks to `platform` from now on.
    pub fn serve(&self, platform: Arc<dyn Platform>) {
        *self.slot.write().expect("the slot") = Some(platform);
    }
}

impl Drop for Hooks {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn hook(
    State(slot): State<Slot>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let platform = slot.read().expect("the slot").clone();
    let Some(platform) = platform.filter(|_| name == NAME) else {
        return (StatusCode::NOT_FOUND, "no such platform\n").into_response();
    };
    let reply = platform
        .webhook(WebhookRequest {
            query: query.unwrap_or_default(),
            headers,
            body,
        })
        .await;
    (
        StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        [(header::CONTENT_TYPE, reply.content_type)],
        reply.body,
    )
        .into_response()
}

/// The simulator, the listener and the adapter of one test.
pub struct Account {
    pub sim: AgoraSimulator,
    pub hooks: Hooks,
    pub platform: Arc<Agora>,
    pub discoveries: mpsc::UnboundedReceiver<Discovery>,
    pub token_file: PathBuf,
    pub dir: PathBuf,
}

impl Account {
    /// A simulator serving `rooms` (rooms created elsewhere, callbacks to
    /// the listener), and an adapter configured by `configure`.
    pub async fn start(
        test: &str,
        rooms: Vec<usher::sim::RoomSpec>,
        configure: impl FnOnce(&mut AgoraConfig),
    ) -> Account {
        let dir = std::env::temp_dir().join(format!("usher-agora-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a test directory");
        let token_file = dir.join("agora.token");
        let hooks = Hooks::bind().await;
        let options = AgoraSimOptions {
            app_id: APP_ID.to_owned(),
            region: "cn".to_owned(),
            token: Some(Secret::new(TOKEN)),
            token_file: Some(token_file.clone()),
            webhook_secret: Some(Secret::new(WEBHOOK_SECRET)),
            webhook_to: Some(hooks.url()),
        };
        let sim = AgoraSimulator::start("127.0.0.1:0".parse().expect("an address"), options, rooms)
            .await
            .expect("the simulator starts");
        let mut config = AgoraConfig::at(sim.base_url(), "cn");
        config.app_id = Some(SecretSource::Literal(Secret::new(APP_ID)));
        config.token_file = Some(token_file.clone());
        config.webhook_secret = Some(SecretSource::Literal(Secret::new(WEBHOOK_SECRET)));
        quick(&mut config);
        configure(&mut config);
        let (platform, discoveries) = build(&config, &hooks);
        Account {
            sim,
            hooks,
            platform,
            discoveries,
            token_file,
            dir,
        }
    }

    /// Connects a room, as the runtime would.
    pub async fn connect(&self, room: &str) -> Arc<dyn RoomLink> {
        self.platform
            .connect(&RoomAddress {
                alias: room.to_owned(),
                pin: None,
            })
            .await
            .unwrap_or_else(|err| panic!("{room} connects: {err}"))
    }

    /// The next discovery, waiting a little for it.
    pub async fn discovery(&mut self) -> Discovery {
        tokio::time::timeout(super::PATIENCE, self.discoveries.recv())
            .await
            .expect("a discovery in time")
            .expect("the platform is alive")
    }
}

impl Drop for Account {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Builds the adapter for `config`, its callbacks routed from `hooks`.
pub fn build(
    config: &AgoraConfig,
    hooks: &Hooks,
) -> (Arc<Agora>, mpsc::UnboundedReceiver<Discovery>) {
    let (discoveries, found) = mpsc::unbounded_channel();
    let context = BuildContext {
        name: NAME.to_owned(),
        rooms: 1,
        feed: FeedOptions {
            min_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_millis(500),
            ..FeedOptions::default()
        },
        discoveries,
        public_url: Some(hooks.public_url()),
    };
    let platform = Arc::new(Agora::new(config, &context).expect("the adapter builds"));
    hooks.serve(platform.clone());
    (platform, found)
}

/// A room usher creates: `name`, starting now, with this duration and
/// overtime.
pub fn create(name: &str, duration: Option<u64>, close_delay: Option<u64>) -> CreateConfig {
    CreateConfig {
        name: name.to_owned(),
        start: None,
        duration: duration.map(Span::secs),
        close_delay: close_delay.map(Span::secs),
        join_muted: Some(true),
        start_audio: None,
        start_video: None,
        share_screen: None,
        cohost_limit: Some(5),
        participant_limit: Some(100),
    }
}
