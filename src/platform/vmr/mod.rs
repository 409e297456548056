//! The primary platform: the seed-001 in-meeting REST API and its event stream.

pub mod wire;
