//! A simulator of the seed-001 platform, for tests, demos and benchmarks.

pub mod conference;
pub mod scenario;
pub mod step;

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::model::Span;

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

/// Runs the simulator until interrupted.
pub async fn run(_options: SimulateOptions) -> anyhow::Result<()> {
    anyhow::bail!("the simulator server is being written on the `sim` branch")
}
