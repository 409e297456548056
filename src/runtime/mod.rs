//! The daemon's runtime: from intents to commands on the wire.
//!
//! - [`plan`]: which of an event's intents are worth sending (no I/O).

pub mod plan;
