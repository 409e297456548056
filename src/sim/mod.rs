//! A simulator of the seed-001 platform, for tests, demos and benchmarks.
//!
//! - [`conference`]: one room as a pure state machine (steps and commands in,
//!   platform events out);
//! - [`scenario`]: scenario files (a room and a timeline of steps and faults);
//! - [`server`]: the REST API and event streams over HTTP, and a handle to
//!   drive and inspect it;
//! - [`step`]: the step vocabulary shared with rule tests.
//!
//! [`run`] is `usher simulate`: serve one room and play its scenario.

pub mod conference;
pub mod scenario;
pub mod server;
pub mod step;

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use tracing::info;

use crate::model::{Secret, Span};
pub use conference::{Actor, CommandReply, Conference, SimError};
pub use scenario::{Action, Fault, Scenario, TimelineEntry};
pub use server::{CallRecord, ConferenceSnapshot, RoomSpec, Simulator};

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
    let simulator = Simulator::start(options.listen, vec![RoomSpec::from_scenario(&scenario)])
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
    let player = simulator.play(&scenario);
    let interrupted = tokio::signal::ctrl_c().await;
    info!("shutting down the simulator");
    player.abort();
    simulator.shutdown().await;
    interrupted.context("cannot wait for Ctrl-C")
}
