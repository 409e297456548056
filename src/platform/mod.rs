//! Conference platform adapters.
//!
//! Each adapter turns a platform's event source into [`crate::model::Event`]s
//! and carries [`crate::model::Command`]s to it. `vmr` speaks the primary
//! platform's in-meeting REST API and event stream (seed 001).

pub mod vmr;
