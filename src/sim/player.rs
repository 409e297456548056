//! Plays a scenario's timeline against a running simulator, in real time.
//!
//! Every platform's simulator plays the same scenario files: the player only
//! needs to apply steps and inject faults, which each simulator does on its
//! own wire.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::conference::SimError;
use super::scenario::{Action, Fault, Scenario};
use super::step::Step;

/// What the player drives.
pub trait Drive: Send + Sync + 'static {
    /// Applies a step to a room and sends what it caused.
    fn step(&self, room: &str, step: &Step) -> Result<(), SimError>;

    /// Injects a fault into a room.
    fn fault(&self, room: &str, fault: Fault) -> Result<(), SimError>;
}

/// Plays `scenario` until its timeline ends or `stop` fires. Each action is
/// logged; one that fails is logged and skipped.
pub async fn play(driver: Arc<dyn Drive>, scenario: Scenario, stop: CancellationToken) {
    let start = tokio::time::Instant::now();
    let room = scenario.room.as_str();
    for entry in &scenario.timeline {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep_until(start + Duration::from(entry.at)) => {}
        }
        info!(room = %room, "▶ {} {}", entry.at, entry.action);
        let outcome = match &entry.action {
            Action::Step(step) => driver.step(room, step),
            Action::Fault(fault) => driver.fault(room, fault.clone()),
        };
        if let Err(err) = outcome {
            warn!(room = %room, "{} failed: {err}", entry.action);
        }
    }
    info!(room = %room, "scenario finished; still serving");
}
