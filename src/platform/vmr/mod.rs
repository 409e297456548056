//! The primary platform: the seed-001 in-meeting REST API and its event stream.
//!
//! - [`wire`]: paths, bodies and replies, shared with the simulator.
//! - [`client`]: the REST calls of one room ([`RoomClient`]), stateless.
//! - [`session`]: the token lifecycle ([`Session`]): refresh, renewal on 403,
//!   `end_session`.
//! - [`events`]: one connection to the event stream.
//! - [`sse`]: the event-stream decoder, with caps on lines and events.
//! - [`feed`]: the supervised stream of a room ([`run_feed`]), reconnecting
//!   with backoff and resyncing through the sync bracket.
//! - [`check_join`]: finding the meeting node for a conference.

pub mod check_join;
pub mod client;
pub mod error;
pub mod events;
pub mod feed;
pub mod session;
pub mod sse;
pub mod wire;

pub use check_join::{check_join, node_url};
pub use client::{HttpClients, HttpOptions, RoomClient, STREAMS_PER_CONNECTION, StreamProtocol};
pub use error::ClientError;
pub use feed::{FeedItem, FeedOptions, run_feed};
pub use session::{Credentials, Session, SessionStats};
