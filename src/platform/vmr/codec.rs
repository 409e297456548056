//! The seed-001 event stream on the wire: frames to neutral events and back.
//!
//! [`decode`] reads one server-sent frame, its `event:` name and its `data:`
//! JSON, into a [`Frame`]. Every event of the seed API is known, plus the
//! ones real servers also send (`refresh_token`, `conference_update`,
//! `message_received`, `bye`). An event name we do not know is
//! [`Frame::Unknown`], which is not an error. A known event whose data
//! cannot be read is a [`DecodeError`] naming the event, so the feed can log
//! it and go on.
//!
//! Payloads are read tolerantly (see [`crate::platform::lenient`]): flags as
//! `"YES"`/`"NO"` or booleans, numbers as strings, unknown fields and enum
//! values kept or ignored, never a reason to lose an event. [`encode`] writes
//! events back the way servers send them, for the simulator.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::Serializer as Json;

use super::stage_json;
use crate::model::{
    CallDirection, ChatMessage, Event, FlagsUpdate, Layout, Participant, Presentation, Role,
    RxPresentationPolicy, ServiceType, StageEntry,
};
use crate::platform::lenient;

/// What one frame of the event stream says.
#[derive(Debug, Clone, PartialEq)]
#[allow(
    clippy::large_enum_variant,
    reason = "a frame is taken in at once, never stored"
)]
pub enum Frame {
    /// `participant_sync_begin`: the server is about to list everyone.
    SyncBegin,
    /// `participant_sync_end`: the listing is complete.
    SyncEnd,
    /// An event for the room.
    Event(Event),
    /// `refresh_token`: refresh our token now.
    RefreshToken,
    /// `bye`: the server is closing our stream.
    Bye,
    /// An event that means nothing to a room (`presentation_frame`,
    /// `call_disconnected`).
    Ignored(&'static str),
    /// An event this version does not know.
    Unknown(String),
}

/// A known event whose payload could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("malformed `{event}` event: {reason}")]
pub struct DecodeError {
    /// The event name.
    pub event: String,
    /// What was wrong with its data.
    pub reason: String,
}

/// Reads one frame: its `event:` name and `data:` text. Payload-less events
/// accept any data (`null`, `{}`, nothing).
pub fn decode(name: &str, data: &str) -> Result<Frame, DecodeError> {
    let event = match name {
        "participant_sync_begin" => return Ok(Frame::SyncBegin),
        "participant_sync_end" => return Ok(Frame::SyncEnd),
        "refresh_token" => return Ok(Frame::RefreshToken),
        "bye" => return Ok(Frame::Bye),
        "presentation_frame" => return Ok(Frame::Ignored("presentation_frame")),
        "call_disconnected" => return Ok(Frame::Ignored("call_disconnected")),
        "presentation_start" => {
            Event::PresentationStart(payload::<PresentationWire>(name, data)?.0)
        }
        "presentation_stop" => Event::PresentationStop,
        "participant_create" | "participant_update" => Event::Participant(participant(name, data)?),
        "participant_delete" => {
            let deleted: DeletedParticipant = payload(name, data)?;
            if deleted.uuid.is_empty() {
                return Err(fail(name, "empty `uuid`"));
            }
            Event::ParticipantLeft { uuid: deleted.uuid }
        }
        "service_update" | "conference_update" => {
            Event::RoomUpdate(payload::<FlagsWire>(name, data)?.0)
        }
        "layout" => Event::Layout(payload::<LayoutWire>(name, data)?.0),
        "message" | "message_received" => Event::Message(payload::<ChatWire>(name, data)?.0),
        "stage" => match stage_json::read(data) {
            Some(stage) => Event::Stage(stage),
            None => Event::Stage(read_stage(name, data)?),
        },
        "disconnect" => {
            let reason = match data.trim() {
                "" | "null" => String::new(),
                _ => payload::<DisconnectWire>(name, data)?.reason,
            };
            Event::Disconnected { reason }
        }
        _ => return Ok(Frame::Unknown(name.to_owned())),
    };
    Ok(Frame::Event(event))
}

/// Writes events as the frames a server sends for them: `event:` names and
/// `data:` JSON. A roster is a whole sync bracket; a participant is a
/// `participant_create` the first time the room hears of them and a
/// `participant_update` after, as servers send them.
#[derive(Debug, Default, Clone)]
pub struct Encoder {
    known: std::collections::HashSet<String>,
}

impl Encoder {
    /// The frames for one event.
    pub fn encode(&mut self, event: &Event) -> Vec<(&'static str, String)> {
        match event {
            Event::Roster(listing) => {
                self.known.extend(listing.iter().map(|p| p.uuid.clone()));
            }
            Event::Participant(p) if self.known.insert(p.uuid.clone()) => {
                return vec![("participant_create", participant_json(p).to_string())];
            }
            Event::ParticipantLeft { uuid } => {
                self.known.remove(uuid);
            }
            _ => {}
        }
        encode(event)
    }
}

/// The frames for one event, participants always as updates.
fn encode(event: &Event) -> Vec<(&'static str, String)> {
    let json = |value: Result<Value, serde_json::Error>| {
        value.expect("event payloads always serialize").to_string()
    };
    let one = |name: &'static str, data: String| vec![(name, data)];
    match event {
        Event::Roster(listing) => {
            let mut frames = Vec::with_capacity(listing.len() + 2);
            frames.push(("participant_sync_begin", "null".to_owned()));
            frames.extend(
                listing
                    .iter()
                    .map(|p| ("participant_create", participant_json(p).to_string())),
            );
            frames.push(("participant_sync_end", "null".to_owned()));
            frames
        }
        Event::Participant(p) => one("participant_update", participant_json(p).to_string()),
        Event::ParticipantLeft { uuid } => one(
            "participant_delete",
            serde_json::json!({ "uuid": uuid }).to_string(),
        ),
        Event::PresentationStart(p) => one(
            "presentation_start",
            json(PresentationRemote::serialize(p, Json)),
        ),
        Event::PresentationStop => one("presentation_stop", "null".to_owned()),
        Event::RoomUpdate(flags) => {
            one("service_update", json(FlagsRemote::serialize(flags, Json)))
        }
        Event::Layout(layout) => one("layout", json(LayoutRemote::serialize(layout, Json))),
        Event::Message(message) => one("message", json(ChatRemote::serialize(message, Json))),
        Event::Stage(stage) => {
            let entries: Vec<Value> = stage
                .iter()
                .map(|entry| json_value(StageWire::serialize(entry, Json)))
                .collect();
            one("stage", Value::Array(entries).to_string())
        }
        Event::Disconnected { reason } => one(
            "disconnect",
            serde_json::json!({ "reason": reason }).to_string(),
        ),
    }
}

/// A participant as real servers send it: the fields usher reads, and
/// every other field a real participant object carries (capabilities,
/// media mixes, recording flags), so that whatever reads what the simulator
/// or an encoder writes (usher, or a vendor's own client library) meets
/// the same object as from a real server.
pub fn participant_json(participant: &Participant) -> Value {
    let mut value = json_value(ParticipantWire::serialize(participant, Json));
    if let Value::Object(fields) = &mut value {
        fields.extend(server_fields(participant));
    }
    value
}

/// The fields of a real participant object usher does not model, as a
/// server sends them for an ordinary call (`tests/fixtures/pexip-payloads`,
/// and the vendor schema for the last three).
fn server_fields(p: &Participant) -> [(String, Value); 30] {
    let yes_no = |yes: bool| Value::from(if yes { "YES" } else { "NO" });
    let api = p.protocol == "api";
    [
        ("api_url", Value::from(format!("/participants/{}", p.uuid))),
        ("encryption", Value::from("On")),
        ("overlay_text", Value::from(p.display_name.clone())),
        ("presentation_supported", yes_no(!api && p.video_call)),
        ("fecc_supported", yes_no(false)),
        ("external_node_uuid", Value::from("")),
        ("transfer_supported", yes_no(true)),
        ("disconnect_supported", yes_no(true)),
        ("mute_supported", yes_no(true)),
        ("call_tag", Value::from("")),
        ("is_video_silent", Value::from(false)),
        ("is_main_video_dropped_out", Value::from(false)),
        ("needs_presentation_in_mix", Value::from(false)),
        ("show_live_captions", Value::from(false)),
        ("is_idp_authenticated", Value::from(false)),
        ("is_tx_muted", Value::from(false)),
        ("is_on_hold", Value::from(false)),
        ("is_public_streaming", Value::from(false)),
        ("is_recording", Value::from(false)),
        ("is_transcribing", Value::from(false)),
        ("is_ai_enabled", Value::from(false)),
        ("is_conjoined", Value::from(false)),
        ("is_transferring", Value::from(false)),
        ("layout_group", Value::Null),
        ("receive_from_audio_mix", Value::from("main")),
        (
            "send_to_audio_mixes",
            serde_json::json!([{ "mix_name": "main", "prominent": false }]),
        ),
        ("studiosound_enabled", Value::Null),
        (
            "supports_direct_chat",
            Value::from(api || p.protocol == "webrtc"),
        ),
        ("can_receive_personal_mix", Value::from(false)),
        ("receive_from_video_mix", Value::from("main")),
    ]
    .map(|(key, value)| (key.to_owned(), value))
}

/// Reads a participant from a seed payload (a `participants` entry or an
/// event's data).
pub fn participant_from(value: Value) -> Result<Participant, serde_json::Error> {
    ParticipantWire::deserialize(value)
}

fn json_value(value: Result<Value, serde_json::Error>) -> Value {
    value.expect("event payloads always serialize")
}

fn fail(name: &str, reason: &str) -> DecodeError {
    DecodeError {
        event: name.to_owned(),
        reason: reason.to_owned(),
    }
}

fn payload<T: DeserializeOwned>(name: &str, data: &str) -> Result<T, DecodeError> {
    serde_json::from_str(data).map_err(|err| DecodeError {
        event: name.to_owned(),
        reason: if data.trim().is_empty() || data.trim() == "null" {
            "the event has no data".to_owned()
        } else {
            err.to_string()
        },
    })
}

fn participant(name: &str, data: &str) -> Result<Participant, DecodeError> {
    let participant = payload::<ParticipantPayload>(name, data)?.0;
    if participant.uuid.is_empty() {
        return Err(fail(name, "empty `uuid`"));
    }
    Ok(participant)
}

fn read_stage(name: &str, data: &str) -> Result<Vec<StageEntry>, DecodeError> {
    let entries: Vec<StagePayload> = payload(name, data)?;
    Ok(entries.into_iter().map(|entry| entry.0).collect())
}

#[derive(Deserialize)]
struct DeletedParticipant {
    #[serde(deserialize_with = "lenient::text")]
    uuid: String,
}

#[derive(Deserialize)]
struct DisconnectWire {
    #[serde(default, deserialize_with = "lenient::text")]
    reason: String,
}

#[derive(Deserialize)]
struct ParticipantPayload(#[serde(with = "ParticipantWire")] Participant);

#[derive(Deserialize)]
struct StagePayload(#[serde(with = "StageWire")] StageEntry);

/// A participant as the seed's `participant_create` / `participant_update`
/// payloads spell it.
#[derive(Serialize, Deserialize)]
#[serde(remote = "Participant")]
struct ParticipantWire {
    #[serde(deserialize_with = "lenient::text")]
    uuid: String,
    #[serde(default, deserialize_with = "lenient::text")]
    display_name: String,
    #[serde(default, deserialize_with = "lenient::open")]
    role: Role,
    #[serde(
        rename = "is_muted",
        default,
        deserialize_with = "lenient::flag",
        serialize_with = "lenient::yes_no"
    )]
    muted: bool,
    #[serde(
        rename = "is_presenting",
        default,
        deserialize_with = "lenient::flag",
        serialize_with = "lenient::yes_no"
    )]
    presenting: bool,
    #[serde(default, deserialize_with = "lenient::number")]
    spotlight: f64,
    #[serde(default, deserialize_with = "lenient::open")]
    service_type: ServiceType,
    #[serde(default, deserialize_with = "lenient::text")]
    protocol: String,
    #[serde(default, deserialize_with = "lenient::open")]
    call_direction: CallDirection,
    #[serde(default, deserialize_with = "lenient::text")]
    uri: String,
    #[serde(default, deserialize_with = "lenient::text")]
    local_alias: String,
    #[serde(default, deserialize_with = "lenient::text")]
    vendor: String,
    #[serde(default, deserialize_with = "lenient::number")]
    start_time: f64,
    #[serde(default, deserialize_with = "lenient::open")]
    rx_presentation_policy: RxPresentationPolicy,
    #[serde(default, deserialize_with = "lenient::flag")]
    has_media: bool,
    #[serde(
        rename = "is_audio_only_call",
        default,
        deserialize_with = "lenient::flag",
        serialize_with = "lenient::yes_no"
    )]
    audio_only: bool,
    #[serde(
        rename = "is_video_call",
        default,
        deserialize_with = "lenient::flag",
        serialize_with = "lenient::yes_no"
    )]
    video_call: bool,
    #[serde(rename = "is_video_muted", default, deserialize_with = "lenient::flag")]
    video_muted: bool,
    #[serde(
        rename = "is_client_muted",
        default,
        deserialize_with = "lenient::flag"
    )]
    client_muted: bool,
    #[serde(default, deserialize_with = "lenient::number")]
    buzz_time: f64,
    #[serde(rename = "is_external", default, deserialize_with = "lenient::flag")]
    external: bool,
    #[serde(
        rename = "is_streaming_conference",
        default,
        deserialize_with = "lenient::flag"
    )]
    streaming: bool,
}

/// `presentation_start`.
#[derive(Serialize, Deserialize)]
#[serde(remote = "Presentation")]
struct PresentationRemote {
    #[serde(default, deserialize_with = "lenient::text")]
    presenter_name: String,
    #[serde(default, deserialize_with = "lenient::text")]
    presenter_uri: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    presenter_uuid: Option<String>,
}

#[derive(Deserialize)]
struct PresentationWire(#[serde(with = "PresentationRemote")] Presentation);

/// `service_update` / `conference_update`.
#[derive(Serialize, Deserialize)]
#[serde(remote = "FlagsUpdate")]
struct FlagsRemote {
    #[serde(
        default,
        deserialize_with = "lenient::optional_flag",
        skip_serializing_if = "Option::is_none"
    )]
    locked: Option<bool>,
    #[serde(
        default,
        deserialize_with = "lenient::optional_flag",
        skip_serializing_if = "Option::is_none"
    )]
    guests_muted: Option<bool>,
    #[serde(
        default,
        deserialize_with = "lenient::optional_flag",
        skip_serializing_if = "Option::is_none"
    )]
    started: Option<bool>,
}

#[derive(Deserialize)]
struct FlagsWire(#[serde(with = "FlagsRemote")] FlagsUpdate);

/// `layout`.
#[derive(Serialize, Deserialize)]
#[serde(remote = "Layout")]
struct LayoutRemote {
    #[serde(default, deserialize_with = "lenient::text")]
    view: String,
    #[serde(default, deserialize_with = "lenient::text_list")]
    participants: Vec<String>,
}

#[derive(Deserialize)]
struct LayoutWire(#[serde(with = "LayoutRemote")] Layout);

/// `message` / `message_received`.
#[derive(Serialize, Deserialize)]
#[serde(remote = "ChatMessage")]
struct ChatRemote {
    #[serde(default, deserialize_with = "lenient::text")]
    origin: String,
    #[serde(default, deserialize_with = "lenient::text")]
    uuid: String,
    #[serde(rename = "type", default, deserialize_with = "lenient::text")]
    mime_type: String,
    #[serde(default, deserialize_with = "lenient::text")]
    payload: String,
    #[serde(default, deserialize_with = "lenient::flag")]
    direct: bool,
}

#[derive(Deserialize)]
struct ChatWire(#[serde(with = "ChatRemote")] ChatMessage);

/// One place of `stage`.
#[derive(Serialize, Deserialize)]
#[serde(remote = "StageEntry")]
struct StageWire {
    #[serde(deserialize_with = "lenient::text")]
    participant_uuid: String,
    #[serde(default, deserialize_with = "lenient::integer")]
    stage_index: i64,
    #[serde(default, deserialize_with = "lenient::integer")]
    vad: i64,
}

/// Reads a stage payload the slow, general way (for tests of the fast reader).
#[cfg(test)]
pub(crate) fn stage_by_serde(data: &str) -> Option<Vec<StageEntry>> {
    read_stage("stage", data).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(name: &str, data: &str) -> Event {
        match decode(name, data) {
            Ok(Frame::Event(event)) => event,
            other => panic!("{name}: {other:?}"),
        }
    }

    #[test]
    fn payload_less_events_accept_null_and_empty_objects() {
        for data in ["null", "{}", ""] {
            assert_eq!(event("presentation_stop", data), Event::PresentationStop);
            assert_eq!(decode("participant_sync_begin", data), Ok(Frame::SyncBegin));
        }
    }

    #[test]
    fn aliases_map_to_one_event() {
        assert_eq!(
            event("conference_update", r#"{"locked": true}"#),
            Event::RoomUpdate(FlagsUpdate {
                locked: Some(true),
                ..FlagsUpdate::default()
            })
        );
        let message = event(
            "message_received",
            r#"{"origin":"A","payload":"hi","type":"text/plain","uuid":"u"}"#,
        );
        assert!(matches!(message, Event::Message(m) if m.payload == "hi"));
    }

    #[test]
    fn unknown_events_are_kept_not_rejected() {
        assert_eq!(
            decode("fecc", r#"{"x":1}"#),
            Ok(Frame::Unknown("fecc".into()))
        );
    }

    #[test]
    fn malformed_data_names_the_event() {
        let err = decode("participant_create", "{not json").unwrap_err();
        assert_eq!(err.event, "participant_create");
        let err = decode("participant_update", r#"{"display_name":"no uuid"}"#).unwrap_err();
        assert!(err.reason.contains("uuid"), "{err}");
        let err = decode("participant_delete", "null").unwrap_err();
        assert_eq!(err.reason, "the event has no data");
        assert!(decode("stage", r#"{"not":"a list"}"#).is_err());
    }

    #[test]
    fn encoded_events_decode_to_themselves() {
        let events = [
            Event::PresentationStart(Presentation {
                presenter_name: "Ada".into(),
                presenter_uri: "ada@example.com".into(),
                presenter_uuid: Some("u1".into()),
            }),
            Event::ParticipantLeft { uuid: "u1".into() },
            Event::Stage(vec![StageEntry {
                participant_uuid: "u1".into(),
                stage_index: 0,
                vad: 100,
            }]),
            Event::Layout(Layout {
                view: "1:7".into(),
                participants: vec!["u1".into()],
            }),
            Event::Disconnected {
                reason: "bye".into(),
            },
            Event::Participant(Participant {
                uuid: "u2".into(),
                display_name: "Bob".into(),
                role: Role::Guest,
                muted: true,
                buzz_time: 12.5,
                ..Participant::default()
            }),
        ];
        for event in events {
            let frames = Encoder::default().encode(&event);
            let [(name, data)] = &frames[..] else {
                panic!("{frames:?}")
            };
            assert_eq!(decode(name, data), Ok(Frame::Event(event)));
        }
    }

    #[test]
    fn a_roster_is_a_sync_bracket() {
        let bob = Participant {
            uuid: "u2".into(),
            ..Participant::default()
        };
        let mut encoder = Encoder::default();
        let frames = encoder.encode(&Event::Roster(vec![bob.clone()]));
        let names: Vec<&str> = frames.iter().map(|(name, _)| *name).collect();
        assert_eq!(
            names,
            [
                "participant_sync_begin",
                "participant_create",
                "participant_sync_end"
            ]
        );
        let carol = Participant {
            uuid: "u3".into(),
            ..Participant::default()
        };
        let names = |frames: Vec<(&'static str, String)>| -> Vec<&'static str> {
            frames.into_iter().map(|(name, _)| name).collect()
        };
        assert_eq!(
            names(encoder.encode(&Event::Participant(bob))),
            ["participant_update"]
        );
        assert_eq!(
            names(encoder.encode(&Event::Participant(carol.clone()))),
            ["participant_create"]
        );
        assert_eq!(
            names(encoder.encode(&Event::Participant(carol))),
            ["participant_update"]
        );
    }

    #[test]
    fn participants_read_the_seed_example() {
        let json = r#"{
            "api_url": "/participants/50b956c8-9a63-4711-8630-3810f8666b04",
            "call_direction": "in", "display_name": "Alice", "encryption": "On",
            "has_media": false, "is_audio_only_call": "NO", "is_external": false,
            "is_muted": "NO", "is_presenting": "NO", "is_streaming_conference": false,
            "is_video_call": "YES", "local_alias": "meet.alice", "overlay_text": "Alice",
            "presentation_supported": "NO", "protocol": "api", "role": "chair",
            "rx_presentation_policy": "ALLOW", "service_type": "conference",
            "spotlight": 0, "start_time": 1441720992,
            "uri": "CloudConnect_10.44.21.35",
            "uuid": "50b956c8-9a63-4711-8630-3810f8666b04",
            "vendor": "CloudConnect/2.0.0"
        }"#;
        let Event::Participant(p) = event("participant_create", json) else {
            unreachable!()
        };
        assert_eq!(p.display_name, "Alice");
        assert!(p.is_host());
        assert!(!p.muted && p.video_call && !p.audio_only);
        assert_eq!(p.start_time, 1441720992.0);
        assert_eq!(p.service_type, ServiceType::Conference);
    }

    #[test]
    fn participants_are_written_as_the_seed_spells_them() {
        let p = Participant {
            uuid: "u1".into(),
            role: Role::Guest,
            muted: true,
            ..Participant::default()
        };
        let wire = participant_json(&p);
        assert_eq!(wire["is_muted"], "YES");
        assert_eq!(wire["is_presenting"], "NO");
        assert_eq!(wire["role"], "guest");
        assert_eq!(participant_from(wire).unwrap(), p);
    }

    #[test]
    fn layouts_skip_entries_that_are_not_uuids() {
        let layout = event(
            "layout",
            r#"{ "view": "1:7", "participants": [ "a", "b", 3 ] }"#,
        );
        assert_eq!(
            layout,
            Event::Layout(Layout {
                view: "1:7".into(),
                participants: vec!["a".into(), "b".into()]
            })
        );
    }
}
