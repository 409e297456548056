//! Events: what a conference tells us happened, in platform-neutral terms.
//!
//! Each platform adapter turns its own transport (an event stream, a
//! WebSocket push, webhook callbacks) into these events. Two shapes matter:
//!
//! - [`Event::Roster`] lists everyone present at one moment: after every
//!   (re)connect, and whenever an adapter reconciles with the platform's
//!   list call. The room state diffs it against what it knew, so a reconnect
//!   never reports the whole room as arriving.
//! - [`Event::Participant`] carries the whole participant, never a diff:
//!   adapters whose platform pushes only the fields that changed merge them
//!   first.
//!
//! Events serialize to usher's own JSON (`{"event": "participant", "data":
//! {…}}`), the format of recordings; no platform speaks it.

use serde::{Deserialize, Serialize};

use super::participant::Participant;

/// One event from a conference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", content = "data", rename_all = "snake_case")]
pub enum Event {
    /// Everyone present now (waiting room included), as the platform lists
    /// them.
    Roster(Vec<Participant>),
    /// A participant appeared or changed; the whole participant.
    Participant(Participant),
    /// A participant left.
    ParticipantLeft {
        /// The participant who left.
        uuid: String,
    },
    /// Someone started presenting.
    PresentationStart(Presentation),
    /// The presentation ended.
    PresentationStop,
    /// Room flags changed.
    RoomUpdate(FlagsUpdate),
    /// The video layout changed.
    Layout(Layout),
    /// A chat message.
    Message(ChatMessage),
    /// The stage (speaker order and voice activity) changed.
    Stage(Vec<StageEntry>),
    /// The platform removed usher from the room, or ended the meeting.
    Disconnected {
        /// Why, as the platform put it.
        reason: String,
    },
}

/// Who presents.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Presentation {
    /// The presenter's display name.
    pub presenter_name: String,
    /// The presenter's address.
    pub presenter_uri: String,
    /// The presenter's participant uuid, when the platform says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub presenter_uuid: Option<String>,
}

/// Room flags that changed. A flag left out is `None` and leaves our picture
/// unchanged.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct FlagsUpdate {
    /// The room is locked: new guests wait to be admitted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locked: Option<bool>,
    /// Guests are muted, including guests who join later.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guests_muted: Option<bool>,
    /// The meeting has started.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started: Option<bool>,
}

/// The current view and who is on screen.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Layout {
    /// The layout shown, such as `1:7` or `1:0`.
    pub view: String,
    /// Participant uuids on screen, current speaker first.
    pub participants: Vec<String>,
}

/// A chat message.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ChatMessage {
    /// The sender's display name.
    pub origin: String,
    /// The sender's participant uuid.
    pub uuid: String,
    /// The MIME type, normally `text/plain`.
    pub mime_type: String,
    /// The text.
    pub payload: String,
    /// Sent to usher alone rather than to the room.
    pub direct: bool,
}

/// One place on the stage: the stage lists them in speaking order.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct StageEntry {
    /// The participant in this place.
    pub participant_uuid: String,
    /// 0 is the most recent speaker, 1 the one before, …
    pub stage_index: i64,
    /// Voice activity: 0 is silent, 100 is speaking.
    pub vad: i64,
}

impl Event {
    /// The event's kind, for counters and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::Roster(_) => "roster",
            Event::Participant(_) => "participant",
            Event::ParticipantLeft { .. } => "participant_left",
            Event::PresentationStart(_) => "presentation_start",
            Event::PresentationStop => "presentation_stop",
            Event::RoomUpdate(_) => "room_update",
            Event::Layout(_) => "layout",
            Event::Message(_) => "message",
            Event::Stage(_) => "stage",
            Event::Disconnected { .. } => "disconnected",
        }
    }

    /// The participant uuid this event is about, if any.
    pub fn participant_uuid(&self) -> Option<&str> {
        match self {
            Event::Participant(p) => Some(&p.uuid),
            Event::ParticipantLeft { uuid } => Some(uuid),
            Event::PresentationStart(p) => p.presenter_uuid.as_deref(),
            Event::Message(m) if !m.uuid.is_empty() => Some(&m.uuid),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_through_usher_json() {
        let events = [
            Event::Roster(vec![Participant {
                uuid: "u1".into(),
                display_name: "Ada".into(),
                ..Participant::default()
            }]),
            Event::ParticipantLeft { uuid: "u1".into() },
            Event::PresentationStop,
            Event::RoomUpdate(FlagsUpdate {
                locked: Some(true),
                ..FlagsUpdate::default()
            }),
            Event::Stage(vec![StageEntry {
                participant_uuid: "u1".into(),
                stage_index: 0,
                vad: 100,
            }]),
            Event::Disconnected {
                reason: "bye".into(),
            },
        ];
        for event in events {
            let json = serde_json::to_string(&event).unwrap();
            assert_eq!(
                serde_json::from_str::<Event>(&json).unwrap(),
                event,
                "{json}"
            );
        }
    }

    #[test]
    fn the_json_names_the_kind() {
        let json = serde_json::to_value(Event::ParticipantLeft { uuid: "u".into() }).unwrap();
        assert_eq!(json["event"], "participant_left");
        assert_eq!(json["data"]["uuid"], "u");
    }
}
