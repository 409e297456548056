//! usher keeps order in live video conferences.
//!
//! It subscribes to each conference's event stream, keeps an exact picture of
//! the room, runs the operator's Rhai rules on every change and sends the
//! control commands those rules ask for. Data flows one way:
//!
//! ```text
//! platform adapter ──Event──▶ room state ──Change──▶ rules ──Intent──▶ dispatcher ──Command──▶ platform
//! ```
//!
//! - [`model`]: participants, events, commands and room state; depends on nothing.
//! - [`platform`]: adapters for conference platforms (the seed-001 API in `vmr`).
//! - [`rules`]: the sandboxed Rhai rule engine that turns changes into intents.
//! - [`runtime`]: from intents to commands: planning and dispatching.
//! - [`dashboard`]: the control-room dashboard on the local HTTP port.
//! - [`sim`]: a faithful simulator of that platform, for tests and demos.
//! - [`ruletest`]: `usher test`, rule tests against a simulated room.
//! - [`recording`]: `usher record` and `usher replay`.
//! - [`report`]: end-of-lecture reports, live and offline (`usher report`).
//! - [`demo`]: `usher demo`; [`shipped`]: the shipped rules, built in.
//! - [`bench`]: `usher bench`.
//! - [`yaml`]: how every YAML file is read, with `file:line:column` errors.
//! - [`cluster`]: several instances sharing rooms through etcd, with fencing.
//! - [`clock`]: wall-clock time, RFC 3339 and time zones.
//! - [`timetable`]: rooms' sessions from iCalendar timetables.
//! - [`config`]: the daemon's configuration.
//! - [`limits`]: caps on what usher takes from the outside.

pub mod bench;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod dashboard;
pub mod demo;
pub mod limits;
pub mod model;
pub mod os;
pub mod platform;
pub mod recording;
pub mod report;
pub mod rules;
pub mod ruletest;
pub mod runtime;
pub mod shipped;
pub mod sim;
pub mod timetable;
pub mod yaml;
