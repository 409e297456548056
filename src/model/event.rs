//! Events: what a conference tells us happened.
//!
//! An [`Event`] is parsed from one server-sent frame, its `event:` name and its
//! `data:` JSON. Every event of the seed API is here, plus the ones real
//! servers also send (`refresh_token`, `conference_update`, `message_received`,
//! `bye`). An event name we do not know becomes [`Event::Unknown`], which is
//! not an error. A known event whose data cannot be read is an [`EventError`]
//! naming the event, so the caller can log it and go on.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::lenient;
use super::participant::Participant;
use super::stage_json;

/// One event from a conference's event stream.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// Someone started presenting.
    PresentationStart(Presentation),
    /// The presentation ended.
    PresentationStop,
    /// A new presentation frame is available (as a JPEG from the node).
    PresentationFrame,
    /// A participant joined (or, inside a sync bracket, is listed).
    ParticipantCreate(Participant),
    /// A participant changed; carries the whole participant, not a diff.
    ParticipantUpdate(Participant),
    /// A participant left.
    ParticipantDelete {
        /// The participant who left.
        uuid: String,
    },
    /// The server is about to list every participant (on each subscribe).
    ParticipantSyncBegin,
    /// The listing is complete.
    ParticipantSyncEnd,
    /// Conference flags changed (`service_update`, or `conference_update` on
    /// real servers).
    ServiceUpdate(ServiceFlags),
    /// The video layout changed.
    Layout(Layout),
    /// A chat message (`message`, or `message_received` on real servers).
    Message(ChatMessage),
    /// The stage (speaker order and voice activity) changed.
    Stage(Vec<StageEntry>),
    /// One of a participant's sub-calls ended (e.g. a screen share).
    CallDisconnected(CallDisconnected),
    /// Our own participant was disconnected by the platform.
    Disconnect(Disconnect),
    /// The server asks us to refresh our token now.
    RefreshToken,
    /// The server is closing our stream.
    Bye,
    /// An event this version does not know; kept, logged, otherwise ignored.
    Unknown {
        /// The `event:` name.
        name: String,
        /// The raw `data:` text.
        data: String,
    },
}

/// A known event whose payload could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("malformed `{event}` event: {reason}")]
pub struct EventError {
    /// The event name.
    pub event: String,
    /// What was wrong with its data.
    pub reason: String,
}

/// `presentation_start`: who presents.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Presentation {
    /// The presenter's display name.
    #[serde(default, deserialize_with = "lenient::text")]
    pub presenter_name: String,
    /// The presenter's address.
    #[serde(default, deserialize_with = "lenient::text")]
    pub presenter_uri: String,
    /// The presenter's participant uuid (real servers send it; the seed omits it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presenter_uuid: Option<String>,
}

/// `service_update` / `conference_update`: conference flags. A flag the server
/// left out is `None` and leaves our picture unchanged.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ServiceFlags {
    /// The conference is locked: new guests wait to be admitted.
    #[serde(
        default,
        deserialize_with = "lenient::optional_flag",
        skip_serializing_if = "Option::is_none"
    )]
    pub locked: Option<bool>,
    /// Guests are muted, including guests who join later.
    #[serde(
        default,
        deserialize_with = "lenient::optional_flag",
        skip_serializing_if = "Option::is_none"
    )]
    pub guests_muted: Option<bool>,
    /// The conference has started (a host is in, or `start_service` was sent).
    #[serde(
        default,
        deserialize_with = "lenient::optional_flag",
        skip_serializing_if = "Option::is_none"
    )]
    pub started: Option<bool>,
}

/// `layout`: the current view and who is on screen.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Layout {
    /// The layout shown, such as `1:7` or `1:0`.
    #[serde(default, deserialize_with = "lenient::text")]
    pub view: String,
    /// Participant uuids on screen, current speaker first.
    #[serde(default, deserialize_with = "uuid_list")]
    pub participants: Vec<String>,
}

/// `message` / `message_received`: a chat message.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ChatMessage {
    /// The sender's display name.
    #[serde(default, deserialize_with = "lenient::text")]
    pub origin: String,
    /// The sender's participant uuid.
    #[serde(default, deserialize_with = "lenient::text")]
    pub uuid: String,
    /// The MIME type, normally `text/plain`.
    #[serde(rename = "type", default, deserialize_with = "lenient::text")]
    pub mime_type: String,
    /// The text.
    #[serde(default, deserialize_with = "lenient::text")]
    pub payload: String,
    /// Sent to us alone rather than to the room.
    #[serde(default, deserialize_with = "lenient::flag")]
    pub direct: bool,
}

/// One place on the stage: `stage` lists them in speaking order.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct StageEntry {
    /// The participant in this place.
    #[serde(deserialize_with = "lenient::text")]
    pub participant_uuid: String,
    /// 0 is the most recent speaker, 1 the one before, …
    #[serde(default, deserialize_with = "lenient::integer")]
    pub stage_index: i64,
    /// Voice activity: 0 is silent, 100 is speaking.
    #[serde(default, deserialize_with = "lenient::integer")]
    pub vad: i64,
}

/// `call_disconnected`: a participant's sub-call ended.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CallDisconnected {
    /// The sub-call.
    #[serde(default, deserialize_with = "lenient::text")]
    pub call_uuid: String,
    /// Why it ended.
    #[serde(default, deserialize_with = "lenient::text")]
    pub reason: String,
}

/// `disconnect`: our participant was removed.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Disconnect {
    /// Why.
    #[serde(default, deserialize_with = "lenient::text")]
    pub reason: String,
}

#[derive(Deserialize)]
struct DeletedParticipant {
    #[serde(deserialize_with = "lenient::text")]
    uuid: String,
}

impl Event {
    /// Parses one frame: its `event:` name and `data:` text. Payload-less
    /// events accept any data (`null`, `{}`, nothing).
    pub fn parse(name: &str, data: &str) -> Result<Event, EventError> {
        let fail = |reason: String| EventError {
            event: name.to_owned(),
            reason,
        };
        let event = match name {
            "presentation_start" => Event::PresentationStart(payload(name, data)?),
            "presentation_stop" => Event::PresentationStop,
            "presentation_frame" => Event::PresentationFrame,
            "participant_create" => Event::ParticipantCreate(participant(name, data)?),
            "participant_update" => Event::ParticipantUpdate(participant(name, data)?),
            "participant_delete" => {
                let deleted: DeletedParticipant = payload(name, data)?;
                if deleted.uuid.is_empty() {
                    return Err(fail("empty `uuid`".into()));
                }
                Event::ParticipantDelete { uuid: deleted.uuid }
            }
            "participant_sync_begin" => Event::ParticipantSyncBegin,
            "participant_sync_end" => Event::ParticipantSyncEnd,
            "service_update" | "conference_update" => Event::ServiceUpdate(payload(name, data)?),
            "layout" => Event::Layout(payload(name, data)?),
            "message" | "message_received" => Event::Message(payload(name, data)?),
            "stage" => match stage_json::read(data) {
                Some(stage) => Event::Stage(stage),
                None => Event::Stage(payload(name, data)?),
            },
            "call_disconnected" => Event::CallDisconnected(payload(name, data)?),
            "disconnect" => Event::Disconnect(optional_payload(name, data)?),
            "refresh_token" => Event::RefreshToken,
            "bye" => Event::Bye,
            _ => Event::Unknown {
                name: name.to_owned(),
                data: data.to_owned(),
            },
        };
        Ok(event)
    }

    /// The event's wire name (the canonical one where servers use two).
    pub fn name(&self) -> &str {
        match self {
            Event::Unknown { name, .. } => name,
            known => known.kind(),
        }
    }

    /// The event's kind: its wire name, or `unknown` for events this
    /// version does not know. Unlike [`Event::name`] it costs nothing to keep.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::PresentationStart(_) => "presentation_start",
            Event::PresentationStop => "presentation_stop",
            Event::PresentationFrame => "presentation_frame",
            Event::ParticipantCreate(_) => "participant_create",
            Event::ParticipantUpdate(_) => "participant_update",
            Event::ParticipantDelete { .. } => "participant_delete",
            Event::ParticipantSyncBegin => "participant_sync_begin",
            Event::ParticipantSyncEnd => "participant_sync_end",
            Event::ServiceUpdate(_) => "service_update",
            Event::Layout(_) => "layout",
            Event::Message(_) => "message",
            Event::Stage(_) => "stage",
            Event::CallDisconnected(_) => "call_disconnected",
            Event::Disconnect(_) => "disconnect",
            Event::RefreshToken => "refresh_token",
            Event::Bye => "bye",
            Event::Unknown { .. } => "unknown",
        }
    }

    /// The event's `data:` JSON as the platform would send it (`null` for
    /// payload-less events). [`Event::parse`] reads it back.
    pub fn data(&self) -> String {
        let json = match self {
            Event::PresentationStart(p) => serde_json::to_string(p),
            Event::ParticipantCreate(p) | Event::ParticipantUpdate(p) => serde_json::to_string(p),
            Event::ParticipantDelete { uuid } => {
                serde_json::to_string(&serde_json::json!({ "uuid": uuid }))
            }
            Event::ServiceUpdate(flags) => serde_json::to_string(flags),
            Event::Layout(layout) => serde_json::to_string(layout),
            Event::Message(message) => serde_json::to_string(message),
            Event::Stage(stage) => serde_json::to_string(stage),
            Event::CallDisconnected(call) => serde_json::to_string(call),
            Event::Disconnect(disconnect) => serde_json::to_string(disconnect),
            Event::Unknown { data, .. } => return data.clone(),
            Event::PresentationStop
            | Event::PresentationFrame
            | Event::ParticipantSyncBegin
            | Event::ParticipantSyncEnd
            | Event::RefreshToken
            | Event::Bye => return "null".to_owned(),
        };
        json.expect("event payloads always serialize")
    }

    /// The participant uuid this event is about, if any.
    pub fn participant_uuid(&self) -> Option<&str> {
        match self {
            Event::ParticipantCreate(p) | Event::ParticipantUpdate(p) => Some(&p.uuid),
            Event::ParticipantDelete { uuid } => Some(uuid),
            Event::PresentationStart(p) => p.presenter_uuid.as_deref(),
            Event::Message(m) if !m.uuid.is_empty() => Some(&m.uuid),
            _ => None,
        }
    }
}

fn payload<T: DeserializeOwned>(name: &str, data: &str) -> Result<T, EventError> {
    serde_json::from_str(data).map_err(|err| EventError {
        event: name.to_owned(),
        reason: if data.trim().is_empty() || data.trim() == "null" {
            "the event has no data".to_owned()
        } else {
            err.to_string()
        },
    })
}

fn optional_payload<T: DeserializeOwned + Default>(
    name: &str,
    data: &str,
) -> Result<T, EventError> {
    match data.trim() {
        "" | "null" => Ok(T::default()),
        _ => payload(name, data),
    }
}

fn participant(name: &str, data: &str) -> Result<Participant, EventError> {
    let participant: Participant = payload(name, data)?;
    if participant.uuid.is_empty() {
        return Err(EventError {
            event: name.to_owned(),
            reason: "empty `uuid`".to_owned(),
        });
    }
    Ok(participant)
}

/// Reads a list of uuids, skipping entries that are not strings.
fn uuid_list<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    let values: Option<Vec<serde_json::Value>> = Option::deserialize(deserializer)?;
    Ok(values
        .unwrap_or_default()
        .into_iter()
        .filter_map(|value| match value {
            serde_json::Value::String(uuid) => Some(uuid),
            _ => None,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_less_events_accept_null_and_empty_objects() {
        for data in ["null", "{}", ""] {
            assert_eq!(
                Event::parse("presentation_stop", data).unwrap(),
                Event::PresentationStop
            );
            assert_eq!(
                Event::parse("participant_sync_begin", data).unwrap(),
                Event::ParticipantSyncBegin
            );
        }
    }

    #[test]
    fn aliases_map_to_one_event() {
        let update = Event::parse("conference_update", r#"{"locked": true}"#).unwrap();
        assert_eq!(
            update,
            Event::ServiceUpdate(ServiceFlags {
                locked: Some(true),
                ..ServiceFlags::default()
            })
        );
        let message = Event::parse(
            "message_received",
            r#"{"origin":"A","payload":"hi","type":"text/plain","uuid":"u"}"#,
        )
        .unwrap();
        assert!(matches!(message, Event::Message(m) if m.payload == "hi"));
    }

    #[test]
    fn unknown_events_are_kept_not_rejected() {
        let event = Event::parse("fecc", r#"{"x":1}"#).unwrap();
        assert_eq!(
            event,
            Event::Unknown {
                name: "fecc".into(),
                data: r#"{"x":1}"#.into()
            }
        );
    }

    #[test]
    fn malformed_data_names_the_event() {
        let err = Event::parse("participant_create", "{not json").unwrap_err();
        assert_eq!(err.event, "participant_create");
        let err = Event::parse("participant_update", r#"{"display_name":"no uuid"}"#).unwrap_err();
        assert!(err.reason.contains("uuid"), "{err}");
        let err = Event::parse("participant_delete", "null").unwrap_err();
        assert_eq!(err.reason, "the event has no data");
        assert!(Event::parse("stage", r#"{"not":"a list"}"#).is_err());
    }

    #[test]
    fn data_round_trips_through_parse() {
        let events = [
            Event::PresentationStart(Presentation {
                presenter_name: "Ada".into(),
                presenter_uri: "ada@example.com".into(),
                presenter_uuid: Some("u1".into()),
            }),
            Event::ParticipantDelete { uuid: "u1".into() },
            Event::Stage(vec![StageEntry {
                participant_uuid: "u1".into(),
                stage_index: 0,
                vad: 100,
            }]),
            Event::Layout(Layout {
                view: "1:7".into(),
                participants: vec!["u1".into()],
            }),
            Event::Disconnect(Disconnect {
                reason: "bye".into(),
            }),
            Event::Bye,
        ];
        for event in events {
            assert_eq!(Event::parse(event.name(), &event.data()).unwrap(), event);
        }
    }

    #[test]
    fn seed_call_disconnected_and_layout_parse() {
        let layout = Event::parse(
            "layout",
            r#"{ "view": "1:7", "participants": [ "a", "b", 3 ] }"#,
        )
        .unwrap();
        assert_eq!(
            layout,
            Event::Layout(Layout {
                view: "1:7".into(),
                participants: vec!["a".into(), "b".into()]
            })
        );
        let call = Event::parse(
            "call_disconnected",
            r#"{"call_uuid":"c","reason":"API initiated participant disconnect"}"#,
        )
        .unwrap();
        assert!(matches!(call, Event::CallDisconnected(c) if c.call_uuid == "c"));
    }
}
