//! The platform-neutral conference model: participants, events, commands and
//! the room state that events build up.
//!
//! Nothing here knows about HTTP, Rhai, the runtime or any platform's wire
//! format; everything else in the crate builds on it. Platform adapters
//! (`crate::platform`) decode their payloads into these types and encode
//! commands from them.

pub mod command;
pub mod duration;
pub mod event;
mod open_enum;
pub mod participant;
pub mod room;
pub mod secret;

pub use command::{
    CallRequest, Command, ConferenceCommand, Dial, LayoutOverride, Message, ParticipantCommand,
    Target, Transfer,
};
pub use duration::Span;
pub use event::{ChatMessage, Event, FlagsUpdate, Layout, Presentation, StageEntry};
pub use participant::{CallDirection, Participant, Role, RxPresentationPolicy, ServiceType};
pub use room::{Change, Counts, RoomFlags, RoomState};
pub use secret::Secret;
