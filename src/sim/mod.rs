//! Simulators of the platforms, for tests, demos and benchmarks.
//!
//! What every platform's simulator shares:
//!
//! - [`conference`]: one room as a pure state machine (steps and commands in,
//!   neutral events out);
//! - [`scenario`]: scenario files (a room and a timeline of steps and faults);
//! - [`step`]: the step vocabulary shared with rule tests;
//! - [`player`]: plays a scenario's timeline against a running simulator;
//! - [`calls`]: the log of every call a simulator answered;
//! - [`PlatformSimulator`]: what tests, demos and benchmarks drive.
//!
//! Each platform's wire (REST routes, sessions, event transport) is one
//! folder: [`vmr`] for seed 001, [`huawei`] for seeds 000/002, [`tencent`]
//! for seed 003, [`agora`] for seed 004.
//!
//! [`run`] is `usher simulate`: serve one room and play its scenario.

pub mod agora;
pub mod calls;
pub mod conference;
pub mod huawei;
pub mod player;
pub mod scenario;
pub mod step;
pub mod tencent;
pub mod vmr;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use futures_util::future::BoxFuture;
use tokio::task::JoinHandle;
use tracing::info;

use crate::model::{Participant, RoomFlags, Secret, Span};
use crate::platform::PlatformKind;
use step::Joiner;

pub use calls::CallRecord;
pub use conference::{Actor, CommandReply, Conference, SimError};
pub use scenario::{Action, Fault, Scenario, TimelineEntry};
pub use vmr::Simulator;

/// A room to simulate.
#[derive(Debug, Clone)]
pub struct RoomSpec {
    /// The room's id on its platform, e.g. `lecture@usher.example`.
    pub alias: String,
    /// The room's secret (seed 001: the host PIN); `None` accepts any or
    /// none.
    pub pin: Option<Secret>,
    /// How long a session token (or control token) lasts.
    pub token_expiry: Duration,
    /// Who is in the room from the start.
    pub participants: Vec<Joiner>,
}

impl RoomSpec {
    /// An empty room without a PIN and with the seed's 120 s tokens.
    pub fn new(alias: impl Into<String>) -> Self {
        RoomSpec {
            alias: alias.into(),
            pin: None,
            token_expiry: Duration::from_secs(120),
            participants: Vec::new(),
        }
    }

    /// The room a scenario describes.
    pub fn from_scenario(scenario: &Scenario) -> Self {
        RoomSpec {
            alias: scenario.room.clone(),
            pin: scenario.pin.clone(),
            token_expiry: scenario.token_expiry.into(),
            participants: scenario.participants.clone(),
        }
    }
}

/// A room as it is now, for assertions.
#[derive(Debug, Clone, PartialEq)]
pub struct ConferenceSnapshot {
    /// Visible participants in arrival order.
    pub participants: Vec<Participant>,
    /// Conference flags.
    pub flags: RoomFlags,
}

impl ConferenceSnapshot {
    /// The first participant with this display name.
    pub fn find(&self, name: &str) -> Option<&Participant> {
        self.participants.iter().find(|p| p.display_name == name)
    }
}

/// A running simulator of some platform, as tests, demos and benchmarks
/// drive it.
pub trait PlatformSimulator: Send + Sync {
    /// The base URL its API is served under.
    fn base_url(&self) -> url::Url;

    /// Adds a room, replacing one with the same alias.
    fn add_room(&self, spec: RoomSpec);

    /// Applies a step to a room and sends what it caused.
    fn step(&self, room: &str, step: &step::Step) -> Result<(), SimError>;

    /// Injects a fault into a room.
    fn fault(&self, room: &str, fault: Fault) -> Result<(), SimError>;

    /// Plays a scenario's timeline in real time, adding its room if needed.
    fn play(&self, scenario: &Scenario) -> JoinHandle<()>;

    /// The room's participants and flags, or `None` for an unknown room.
    fn conference(&self, room: &str) -> Option<ConferenceSnapshot>;

    /// The most recent calls answered, oldest first.
    fn calls(&self) -> Vec<CallRecord>;

    /// Every call answered, by call name and HTTP status.
    fn tally(&self) -> BTreeMap<(String, u16), u64>;

    /// Stops serving and frees the port.
    fn shutdown(self: Box<Self>) -> BoxFuture<'static, ()>;
}

/// Implements [`PlatformSimulator`] for a simulator whose inherent methods
/// of the same names do the work.
macro_rules! platform_simulator {
    ($simulator:ident) => {
        impl $crate::sim::PlatformSimulator for $simulator {
            fn base_url(&self) -> url::Url {
                $simulator::base_url(self)
            }

            fn add_room(&self, spec: $crate::sim::RoomSpec) {
                $simulator::add_room(self, spec);
            }

            fn step(
                &self,
                room: &str,
                step: &$crate::sim::step::Step,
            ) -> Result<(), $crate::sim::SimError> {
                $simulator::step(self, room, step)
            }

            fn fault(
                &self,
                room: &str,
                fault: $crate::sim::scenario::Fault,
            ) -> Result<(), $crate::sim::SimError> {
                $simulator::fault(self, room, fault)
            }

            fn play(&self, scenario: &$crate::sim::Scenario) -> tokio::task::JoinHandle<()> {
                $simulator::play(self, scenario)
            }

            fn conference(&self, room: &str) -> Option<$crate::sim::ConferenceSnapshot> {
                $simulator::conference(self, room)
            }

            fn calls(&self) -> Vec<$crate::sim::calls::CallRecord> {
                $simulator::calls(self)
            }

            fn tally(&self) -> std::collections::BTreeMap<(String, u16), u64> {
                $simulator::tally(self)
            }

            fn shutdown(self: Box<Self>) -> futures_util::future::BoxFuture<'static, ()> {
                Box::pin($simulator::shutdown(*self))
            }
        }
    };
}
pub(crate) use platform_simulator;

/// What `usher simulate` was asked for.
pub struct SimulateOptions {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Scenario file; `None` plays the bundled lecture scenario.
    pub scenario: Option<PathBuf>,
    /// Room alias override.
    pub room: Option<String>,
    /// PIN override.
    pub pin: Option<String>,
    /// Token lifetime override.
    pub token_expiry: Option<Span>,
    /// Which platform to simulate.
    pub platform: PlatformKind,
    /// Where a webhook platform's simulator sends its callbacks.
    pub webhook_to: Option<url::Url>,
}

/// Starts a simulator of `platform` on `listen` serving `rooms`; webhook
/// platforms send their callbacks to `webhook_to`.
pub async fn start(
    platform: PlatformKind,
    listen: SocketAddr,
    rooms: Vec<RoomSpec>,
    webhook_to: Option<url::Url>,
) -> anyhow::Result<Box<dyn PlatformSimulator>> {
    match platform {
        PlatformKind::Vmr => {
            if webhook_to.is_some() {
                tracing::warn!("the vmr platform sends no webhooks; --webhook-to is ignored");
            }
            Ok(Box::new(Simulator::start(listen, rooms).await?))
        }
        PlatformKind::Huawei => {
            let options = huawei::HuaweiOptions {
                webhook: webhook_to.map(huawei::WebhookTarget::to),
                ..huawei::HuaweiOptions::default()
            };
            Ok(Box::new(
                huawei::HuaweiSimulator::start_with(listen, rooms, options).await?,
            ))
        }
        PlatformKind::Tencent => {
            let options = tencent::TencentSimOptions {
                webhook_to,
                ..tencent::TencentSimOptions::default()
            };
            tracing::info!(
                sdk_app_id = options.sdk_app_id,
                admin = %options.admin,
                "Tencent simulator: sign UserSigs with the simulator's demo key"
            );
            Ok(Box::new(
                tencent::TencentSimulator::start(listen, rooms, options).await?,
            ))
        }
        PlatformKind::Agora => {
            let options = agora::AgoraSimOptions {
                webhook_to,
                ..agora::AgoraSimOptions::published()
            };
            let simulator = agora::AgoraSimulator::start(listen, options, rooms).await?;
            info!(
                "Agora simulator: App ID {}, region {}, token in {}",
                simulator.app_id(),
                simulator.region(),
                simulator
                    .token_file()
                    .map_or_else(String::new, |file| file.display().to_string()),
            );
            Ok(Box::new(simulator))
        }
    }
}

/// Serves the scenario's room, plays its timeline and keeps serving until
/// Ctrl-C, then shuts down cleanly.
pub async fn run(options: SimulateOptions) -> anyhow::Result<()> {
    let mut scenario = match &options.scenario {
        Some(path) => Scenario::from_file(path)?,
        None => Scenario::bundled(),
    };
    if let Some(room) = options.room {
        scenario.room = room;
    }
    if let Some(pin) = options.pin {
        scenario.pin = Some(Secret::new(pin)).filter(|pin| !pin.is_empty());
    }
    if let Some(expiry) = options.token_expiry {
        scenario.token_expiry = expiry;
    }
    let simulator = start(
        options.platform,
        options.listen,
        vec![RoomSpec::from_scenario(&scenario)],
        options.webhook_to,
    )
    .await
    .context("cannot start the simulator")?;
    info!(
        "simulator listening on {} — room {} ({}), token expiry {}s",
        simulator.base_url(),
        scenario.room,
        if scenario.pin.is_some() {
            "PIN set"
        } else {
            "no PIN"
        },
        scenario.token_expiry.as_secs_f64()
    );
    if options.platform == PlatformKind::Huawei {
        info!("{}", huawei::account_hint());
    }
    let player = simulator.play(&scenario);
    let interrupted = tokio::signal::ctrl_c().await;
    info!("shutting down the simulator");
    player.abort();
    simulator.shutdown().await;
    interrupted.context("cannot wait for Ctrl-C")
}
