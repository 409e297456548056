//! The provider-neutral conference model: participants, events, commands and
//! the room state that events build up.
//!
//! Nothing here knows about HTTP, Rhai or the runtime; everything else in the
//! crate builds on it. Payload types parse the primary platform's JSON
//! tolerantly (see [`lenient`]); other platforms' adapters construct them
//! directly.

pub mod command;
pub mod duration;
pub mod event;
pub mod lenient;
mod open_enum;
pub mod participant;
pub mod room;
pub mod secret;
mod stage_json;

pub use command::{
    CallRequest, Command, ConferenceCommand, Dial, LayoutOverride, Message, ParticipantCommand,
    Target, Transfer,
};
pub use duration::Span;
pub use event::{
    CallDisconnected, ChatMessage, Disconnect, Event, EventError, Layout, Presentation,
    ServiceFlags, StageEntry,
};
pub use participant::{CallDirection, Participant, Role, RxPresentationPolicy, ServiceType};
pub use room::{Change, Counts, RoomFlags, RoomState};
pub use secret::Secret;
