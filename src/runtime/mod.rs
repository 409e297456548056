//! The daemon's runtime: rooms, rules and the way commands leave usher.
//!
//! - [`daemon`]: starts and stops everything ([`Daemon`]).
//! - [`room`]: one supervised task per room: connection, feed, state, rules.
//! - [`discovery`]: rooms the platforms report, watched as `discover:` says.
//! - [`booking`]: meetings booked ahead for timetable sessions, and watched.
//! - [`webhooks`]: the one listener for every platform's callbacks.
//! - [`persist`]: rooms' rule state kept between runs (a directory, or etcd).
//! - [`plan`]: which of an event's intents are worth sending (no I/O).
//! - [`guard`]: commands in flight and the flip-flop guard.
//! - [`dispatch`]: sending commands: pacing, retries, outcomes.
//! - [`audit`]: the JSONL audit log and `usher why`.
//! - [`status`]: per-room status, `/healthz`, `/status` and `/metrics`.
//! - `liveness`: whether a connected room is in sync and decoding, for health.
//! - [`http`]: the local HTTP endpoint serving them.
//! - [`reload`]: recompiling the rules when they change.
//! - [`activity`]: what happens, in words, for `usher demo`.

pub mod activity;
pub mod audit;
pub mod booking;
pub mod daemon;
pub mod discovery;
pub mod dispatch;
pub mod guard;
pub mod http;
mod liveness;
pub mod persist;
pub mod plan;
pub mod reload;
pub mod room;
pub mod status;
pub mod webhooks;

pub use daemon::{Daemon, StartError, StartOptions};
