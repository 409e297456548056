//! Tencent helpers: the simulator, an account on it, and a loopback webhook
//! receiver that hands every callback to the account's
//! `Platform::webhook`, exactly as usher's listener does.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use usher::model::{Secret, Span};
use usher::platform::tencent::{Tencent, TencentConfig, TencentLink};
use usher::platform::{
    BuildContext, Discovery, FeedOptions, Platform, RoomAddress, WebhookRequest,
};
use usher::sim::RoomSpec;
use usher::sim::step::Joiner;
use usher::sim::tencent::room::RoomSetup;
use usher::sim::tencent::{DEMO_SECRET_KEY, TencentSimOptions, TencentSimulator};

/// The callback token, when a test signs callbacks.
pub const TOKEN: &str = "tx-callback-token-7d1f";

/// How a rig is set up.
#[derive(Debug, Clone, Copy)]
pub struct RigOptions {
    /// Callbacks carry `Sign`/`RequestTime` and usher checks them.
    pub signed: bool,
    /// usher's reconcile interval.
    pub reconcile: Duration,
}

impl Default for RigOptions {
    fn default() -> Self {
        RigOptions {
            signed: true,
            reconcile: Duration::from_secs(30),
        }
    }
}

/// A simulator, an account on it and the webhook receiver between them.
pub struct Rig {
    /// The simulated platform.
    pub sim: TencentSimulator,
    /// usher's account on it.
    pub platform: Arc<Tencent>,
    /// What the account discovered.
    pub discoveries: mpsc::UnboundedReceiver<Discovery>,
    hooks: JoinHandle<()>,
}

impl Rig {
    /// Starts the simulator with `rooms`, the account and the receiver.
    pub async fn start(rooms: Vec<(RoomSpec, RoomSetup)>, options: RigOptions) -> Rig {
        let token = options.signed.then(|| Secret::new(TOKEN));
        let sim = TencentSimulator::start(
            SocketAddr::from(([127, 0, 0, 1], 0)),
            Vec::new(),
            TencentSimOptions {
                callback_token: token,
                seed: Some(7),
                ..TencentSimOptions::default()
            },
        )
        .await
        .expect("the simulator starts on loopback");
        for (spec, setup) in rooms {
            sim.add_room_with(spec, setup);
        }
        let mut config = TencentConfig::new(
            sim.base_url(),
            sim.sdk_app_id(),
            "administrator",
            DEMO_SECRET_KEY,
        );
        if options.signed {
            config.callback_token = Some(usher::config::SecretSource::Literal(Secret::new(TOKEN)));
        }
        config.reconcile = Span(options.reconcile);
        let (sender, discoveries) = mpsc::unbounded_channel();
        let context = BuildContext {
            discoveries: sender,
            ..BuildContext::standalone(
                "tx",
                4,
                FeedOptions {
                    min_backoff: Duration::from_millis(50),
                    max_backoff: Duration::from_millis(500),
                    ..FeedOptions::default()
                },
            )
        };
        let platform = Arc::new(Tencent::new(&config, &context).expect("the account builds"));
        let (addr, hooks) = serve_hooks(platform.clone()).await;
        sim.set_webhook_to(Some(
            url::Url::parse(&format!("http://{addr}/hooks/tx")).expect("a URL"),
        ));
        Rig {
            sim,
            platform,
            discoveries,
            hooks,
        }
    }

    /// Connects to `room`.
    pub async fn connect(&self, room: &str) -> Arc<TencentLink> {
        self.platform
            .connect_room(&RoomAddress {
                alias: room.to_owned(),
                pin: None,
            })
            .await
            .unwrap_or_else(|err| panic!("cannot connect to {room}: {err}"))
    }

    /// Waits until the simulator has sent (or dropped) every callback.
    pub async fn callbacks_delivered(&self) {
        super::eventually(
            super::PATIENCE,
            "the simulator's callbacks to be delivered",
            async || self.sim.callbacks_pending() == 0,
        )
        .await;
    }

    /// Stops the receiver and the simulator.
    pub async fn stop(self) {
        self.hooks.abort();
        self.sim.shutdown().await;
    }
}

/// A room set up so.
pub fn setup(owner: &str, seats: usize) -> RoomSetup {
    RoomSetup {
        name: "Lecture hall".to_owned(),
        owner: owner.to_owned(),
        seats,
        schedule: None,
    }
}

/// A room with these people, its first host the owner, and `seats` seats.
pub fn room(alias: &str, people: Vec<Joiner>, seats: usize) -> (RoomSpec, RoomSetup) {
    let owner = people
        .iter()
        .find(|joiner| joiner.role == usher::model::Role::Chair)
        .map(usher::sim::tencent::room::account_for)
        .unwrap_or_else(|| "owner".to_owned());
    (
        RoomSpec {
            participants: people,
            ..RoomSpec::new(alias)
        },
        setup(&owner, seats),
    )
}

/// Serves `POST /hooks/tx` on a free loopback port, handing each callback
/// to the platform.
async fn serve_hooks(platform: Arc<Tencent>) -> (SocketAddr, JoinHandle<()>) {
    async fn hook(
        State(platform): State<Arc<Tencent>>,
        RawQuery(query): RawQuery,
        headers: HeaderMap,
        body: Bytes,
    ) -> impl IntoResponse {
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
    }
    let app = axum::Router::new()
        .route("/hooks/tx", axum::routing::post(hook))
        .with_state(platform);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let addr = listener.local_addr().expect("an address");
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, task)
}
