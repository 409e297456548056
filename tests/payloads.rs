//! Every real Pexip payload in the reference set parses with usher's model
//! and wire types, into the right variant with the right fields; and what
//! the simulator sends looks like them, field for field.
//!
//! The payloads live next to the repository in
//! `../shared/reference/pexip-payloads/`; CI clones the repository alone, so
//! `tests/fixtures/pexip-payloads/` holds copies (Apache-2.0, see its README).
//! The originals are used when present, the copies otherwise, and when both
//! exist the copies must equal the originals.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use usher::model::{
    ChatMessage, Event, FlagsUpdate, Layout, Presentation, Role, ServiceType, StageEntry,
};
use usher::platform::vmr::codec::{Frame, decode};
use usher::platform::vmr::wire::{INVALID_TOKEN, Reply, SessionGrant};
use usher::sim::step::Joiner;

/// Every file of the reference set.
const EXPECTED_FILES: [&str; 19] = [
    "breakout_event_participant_create.json",
    "bye.json",
    "conference_not_found.json",
    "conference_update.json",
    "disconnect.json",
    "invalid_token.json",
    "layout.json",
    "message_received.json",
    "participant_create.json",
    "participant_create_unknown.json",
    "participant_delete.json",
    "participant_sync_begin.json",
    "participant_sync_end.json",
    "participant_update.json",
    "presentation_start.json",
    "presentation_stop.json",
    "request_token_v35.json",
    "request_token_v36.json",
    "stage.json",
];

/// The originals, when the shared directory sits next to the repository.
fn shared_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/reference/pexip-payloads");
    dir.is_dir().then_some(dir)
}

/// The copies kept in the repository.
fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pexip-payloads")
}

/// Every `*.json` file of a directory: name → text.
fn json_files(dir: &Path) -> BTreeMap<String, String> {
    let entries =
        std::fs::read_dir(dir).unwrap_or_else(|err| panic!("cannot list {}: {err}", dir.display()));
    entries
        .map(|entry| entry.expect("a readable directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .map(|path| {
            let name = path
                .file_name()
                .and_then(|name| name.to_str())
                .expect("payload file names are UTF-8")
                .to_owned();
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|err| panic!("cannot read {}: {err}", path.display()));
            (name, text)
        })
        .collect()
}

/// Asserts a timestamp to the microsecond. serde_json's default float parser
/// (the crate does not enable `float_roundtrip`) may miss a 17-digit value by
/// one unit in the last place, about 0.2 µs for today's UNIX times.
fn assert_time(file: &str, field: &str, actual: f64, expected: f64) {
    assert!(
        (actual - expected).abs() < 1e-6,
        "{file}: {field} is {actual}, expected {expected}"
    );
}

fn frame(file: &str, name: &str, data: &str) -> Frame {
    decode(name, data).unwrap_or_else(|err| panic!("{file}: {err}"))
}

fn parse(file: &str, name: &str, data: &str) -> Event {
    match frame(file, name, data) {
        Frame::Event(event) => event,
        other => panic!("{file}: not an event for the room: {other:?}"),
    }
}

/// Checks one file; panics naming it when something is off.
fn check(file: &str, text: &str) {
    let event = |name: &str| parse(file, name, text);
    match file {
        "breakout_event_participant_create.json" => {
            let frame: Value = serde_json::from_str(text).expect("the frame is JSON");
            assert_eq!(frame["id"], "MjdfNw==", "{file}");
            let name = frame["event"].as_str().expect("the frame names its event");
            let Event::Participant(p) = parse(file, name, &frame["data"].to_string()) else {
                panic!("{file}: not a participant_create");
            };
            assert_eq!(p.uuid, "1e1bdef4-323c-4ed2-8765-1153be63760e", "{file}");
            assert_eq!(p.display_name, "George", "{file}");
            assert_eq!(p.role, Role::Chair, "{file}");
            assert!(!p.muted && !p.presenting && !p.has_media, "{file}: {p:?}");
            assert_time(file, "start_time", p.start_time, 1730272988.6773953);
            assert_eq!(p.service_type, ServiceType::Conference, "{file}");
        }
        "bye.json" => assert_eq!(frame(file, "bye", text), Frame::Bye, "{file}"),
        "participant_sync_begin.json" => assert_eq!(
            frame(file, "participant_sync_begin", text),
            Frame::SyncBegin,
            "{file}"
        ),
        "participant_sync_end.json" => assert_eq!(
            frame(file, "participant_sync_end", text),
            Frame::SyncEnd,
            "{file}"
        ),
        "presentation_stop.json" => assert_eq!(
            event("presentation_stop"),
            Event::PresentationStop,
            "{file}"
        ),
        "conference_update.json" => assert_eq!(
            event("conference_update"),
            Event::RoomUpdate(FlagsUpdate {
                locked: Some(false),
                guests_muted: Some(false),
                started: Some(true),
            }),
            "{file}"
        ),
        "disconnect.json" => assert_eq!(
            event("disconnect"),
            Event::Disconnected {
                reason: "Disconnected by remote host".into()
            },
            "{file}"
        ),
        "layout.json" => assert_eq!(
            event("layout"),
            Event::Layout(Layout {
                view: "1:0".into(),
                participants: Vec::new(),
            }),
            "{file}"
        ),
        "message_received.json" => assert_eq!(
            event("message_received"),
            Event::Message(ChatMessage {
                origin: "George".into(),
                uuid: "dc46269f-5b39-4356-93fd-94d31b890bd5".into(),
                mime_type: "text/plain".into(),
                payload: "hello".into(),
                direct: true,
            }),
            "{file}"
        ),
        "participant_create.json" => {
            let Event::Participant(p) = event("participant_create") else {
                panic!("{file}: not a participant_create");
            };
            assert_eq!(p.uuid, "0296f038-7f41-4c73-8dcf-0b95bd0138c7", "{file}");
            assert_eq!(p.display_name, "George R", "{file}");
            assert_eq!(p.role, Role::Guest, "{file}");
            assert!(p.muted, "{file}: is_muted is \"YES\"");
            assert!(!p.presenting && !p.video_call && !p.audio_only, "{file}");
            assert!(p.has_media && !p.client_muted && !p.video_muted, "{file}");
            assert_time(file, "start_time", p.start_time, 1700484383.846972);
            assert_eq!((p.spotlight, p.buzz_time), (0.0, 0.0), "{file}");
            assert_eq!(p.service_type, ServiceType::Conference, "{file}");
            assert_eq!(p.protocol, "api", "{file}");
            assert_eq!(p.local_alias, "george@example.com", "{file}");
        }
        "participant_create_unknown.json" => {
            let Event::Participant(p) = event("participant_create") else {
                panic!("{file}: not a participant_create");
            };
            assert_eq!(p.role, Role::Other("unknown".into()), "{file}");
            assert!(!p.is_host() && !p.is_guest(), "{file}");
            assert_eq!(p.display_name, "George R", "{file}");
        }
        "participant_update.json" => {
            let Event::Participant(p) = event("participant_update") else {
                panic!("{file}: not a participant_update");
            };
            assert_eq!(p.uuid, "0296f038-7f41-4c73-8dcf-0b95bd0138c7", "{file}");
            assert_eq!(p.role, Role::Chair, "{file}");
            assert_time(file, "spotlight", p.spotlight, 1700486479.123456);
            assert_time(file, "buzz_time", p.buzz_time, 1700486478.098765);
            assert_time(file, "start_time", p.start_time, 1700486477.114828);
            assert!(p.spotlit() && p.hand_raised(), "{file}");
            assert_eq!(p.service_type, ServiceType::Gateway, "{file}");
            assert_eq!(p.protocol, "webrtc", "{file}");
            assert!(p.muted && p.client_muted, "{file}");
        }
        "participant_delete.json" => assert_eq!(
            event("participant_delete"),
            Event::ParticipantLeft {
                uuid: "0296f038-7f41-4c73-8dcf-0b95bd0138c7".into()
            },
            "{file}"
        ),
        "presentation_start.json" => assert_eq!(
            event("presentation_start"),
            Event::PresentationStart(Presentation {
                presenter_name: "George".into(),
                presenter_uri: "George".into(),
                presenter_uuid: Some("0296f038-7f41-4c73-8dcf-0b95bd0138c7".into()),
            }),
            "{file}"
        ),
        "stage.json" => assert_eq!(
            event("stage"),
            Event::Stage(vec![
                StageEntry {
                    participant_uuid: "119895e3-c614-4e92-b906-90fd2afd6dff".into(),
                    stage_index: 0,
                    vad: 100,
                },
                StageEntry {
                    participant_uuid: "25206ea5-5fa6-4bfb-93ff-3c6aa74e03c2".into(),
                    stage_index: 1,
                    vad: 0,
                },
            ]),
            "{file}"
        ),
        "request_token_v35.json" | "request_token_v36.json" => {
            let reply: Reply = serde_json::from_str(text)
                .unwrap_or_else(|err| panic!("{file}: not a reply: {err}"));
            assert!(reply.is_success(), "{file}");
            let grant: SessionGrant = serde_json::from_value(reply.result)
                .unwrap_or_else(|err| panic!("{file}: not a session grant: {err}"));
            assert_eq!(
                grant.expires, 120.0,
                "{file}: expires is the string \"120\""
            );
            assert_eq!(grant.display_name, "George", "{file}");
            assert_eq!(grant.role, Role::Chair, "{file}: HOST is a chair");
            assert_eq!(grant.current_service_type, "conference", "{file}");
            assert!(grant.chat_enabled, "{file}");
            let (uuid, token_start) = if file.contains("v35") {
                ("f22f8f50-0d85-47ea-bbf7-97f4eaa39f53", "stK5GSZbt0")
            } else {
                ("614221f4-3a5c-4d1f-8df6-3ae27188df54", "yaanKhAlQF")
            };
            assert_eq!(grant.participant_uuid, uuid, "{file}");
            assert!(grant.token.expose().starts_with(token_start), "{file}");
            assert!(
                !format!("{grant:?}").contains(token_start),
                "{file}: the token must not show in Debug output"
            );
        }
        "invalid_token.json" | "conference_not_found.json" => {
            let reply: Reply = serde_json::from_str(text)
                .unwrap_or_else(|err| panic!("{file}: not a reply: {err}"));
            assert_eq!(reply.status, "success", "{file}: real servers say success");
            let reason = if file == "invalid_token.json" {
                INVALID_TOKEN
            } else {
                "Neither conference nor gateway found"
            };
            assert_eq!(reply.reason(), reason, "{file}");
        }
        other => panic!("{other}: a payload with no expectation; add one to tests/payloads.rs"),
    }
}

#[test]
fn every_reference_payload_parses_into_the_right_variant() {
    let (dir, files) = match shared_dir() {
        Some(dir) => (dir.clone(), json_files(&dir)),
        None => (fixtures_dir(), json_files(&fixtures_dir())),
    };
    let names: Vec<&str> = files.keys().map(String::as_str).collect();
    assert_eq!(names, EXPECTED_FILES, "the payloads in {}", dir.display());
    for (file, text) in &files {
        check(file, text);
    }
}

#[test]
fn the_fixture_copies_equal_the_shared_originals() {
    let copies = json_files(&fixtures_dir());
    let names: Vec<&str> = copies.keys().map(String::as_str).collect();
    assert_eq!(names, EXPECTED_FILES, "the copies in tests/fixtures");
    for (file, text) in &copies {
        check(file, text);
    }
    let Some(shared) = shared_dir() else {
        eprintln!("../shared is absent; checked the copies alone");
        return;
    };
    let originals = json_files(&shared);
    let original_names: Vec<&str> = originals.keys().map(String::as_str).collect();
    assert_eq!(
        original_names,
        names,
        "the originals in {}",
        shared.display()
    );
    for (file, original) in &originals {
        assert!(
            copies[file] == *original,
            "tests/fixtures/pexip-payloads/{file} differs from the original in {}",
            shared.display()
        );
    }
}

/// The fields of a participant object that the vendor's client schema
/// lists and the reference payloads (an older server) lack.
const SCHEMA_ONLY_FIELDS: [&str; 3] = [
    "supports_direct_chat",
    "can_receive_personal_mix",
    "receive_from_video_mix",
];

/// The protocols the vendor's client schema allows for a participant.
const PARTICIPANT_PROTOCOLS: [&str; 6] = ["api", "webrtc", "sip", "rtmp", "h323", "mssip"];

/// A JSON value's type, as a schema would name it.
fn type_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Every participant object of the reference set (event data), by file.
fn real_participants() -> Vec<(String, serde_json::Map<String, Value>)> {
    let dir = shared_dir().unwrap_or_else(fixtures_dir);
    json_files(&dir)
        .into_iter()
        .filter_map(|(name, text)| {
            let value: Value = serde_json::from_str(&text).ok()?;
            let data = value.get("data").cloned().unwrap_or(value);
            match data {
                Value::Object(fields) if fields.contains_key("protocol") => Some((name, fields)),
                _ => None,
            }
        })
        .collect()
}

/// Reads an event stream until `participant_sync_end`; returns the
/// `participant_create` data in it.
async fn listed(response: reqwest::Response) -> Vec<Value> {
    let mut response = response;
    let mut text = String::new();
    while !text.contains("participant_sync_end") {
        let chunk = tokio::time::timeout(common::PATIENCE, response.chunk())
            .await
            .expect("the listing arrives")
            .expect("the stream reads")
            .expect("the stream stays open until the listing is complete");
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    text.split("\n\n")
        .filter(|frame| frame.contains("event: participant_create"))
        .filter_map(|frame| frame.lines().find_map(|line| line.strip_prefix("data:")))
        .map(|data| serde_json::from_str(data.trim()).expect("participant data is JSON"))
        .collect()
}

#[tokio::test]
async fn the_simulator_sends_participants_as_real_servers_do() {
    // The fields and their types, from every real participant object.
    let mut expected: BTreeMap<String, &'static str> = BTreeMap::new();
    let real = real_participants();
    assert!(
        real.len() >= 4,
        "the reference set has participants: {real:?}"
    );
    for (file, fields) in &real {
        for (key, value) in fields {
            let kind = type_of(value);
            let known = expected.entry(key.clone()).or_insert(kind);
            assert_eq!(*known, kind, "{file}: {key} changes type");
        }
    }

    let sim = common::simulator(vec![common::room(vec![
        Joiner::host("Ada"),
        Joiner {
            protocol: "sip".into(),
            ..Joiner::guest("Bob")
        },
        Joiner {
            protocol: "phone".into(),
            audio_only: true,
            uri: Some("tel:+4722225555".into()),
            ..Joiner::guest("Cat")
        },
    ])])
    .await;
    let base = sim.base_url();
    let call = |path: &str| {
        base.join(&format!("api/services/{}/{path}", common::ROOM))
            .expect("a call URL")
    };
    let http = reqwest::Client::new();
    let grant: Value = http
        .post(call("new_session"))
        .header("pin", common::PIN)
        .json(&serde_json::json!({ "display_name": "probe" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = grant["result"]["token"]
        .as_str()
        .expect("a token")
        .to_owned();
    let v36: Value = serde_json::from_str(
        &std::fs::read_to_string(
            shared_dir()
                .unwrap_or_else(fixtures_dir)
                .join("request_token_v36.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(
        type_of(&grant["result"]["expires"]),
        type_of(&v36["result"]["expires"]),
        "new_session's expires: {grant}"
    );
    let dialled: Value = http
        .post(call("dial"))
        .header("token", &token)
        .json(&serde_json::json!({ "role": "guest", "destination": "+4722226666", "protocol": "phone" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(dialled["status"], "success", "{dialled}");
    let status: Value = http
        .get(call("service_status"))
        .header("token", &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(status["result"]["started"].is_boolean(), "{status}");

    let roster: Value = http
        .get(call("participants"))
        .header("token", &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut sent: Vec<Value> = roster["result"].as_array().expect("a list").clone();
    let stream = http
        .get(call("events"))
        .header("token", &token)
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .unwrap();
    sent.extend(listed(stream).await);
    assert!(sent.len() >= 8, "four people, listed twice: {sent:?}");

    let wanted: BTreeSet<&str> = expected
        .keys()
        .map(String::as_str)
        .chain(SCHEMA_ONLY_FIELDS)
        .collect();
    for participant in &sent {
        let fields = participant.as_object().expect("a participant is an object");
        let keys: BTreeSet<&str> = fields.keys().map(String::as_str).collect();
        let name = &participant["display_name"];
        assert_eq!(
            keys.symmetric_difference(&wanted).collect::<Vec<_>>(),
            Vec::<&&str>::new(),
            "{name}: fields missing or extra"
        );
        for (key, kind) in &expected {
            assert_eq!(type_of(&fields[key]), *kind, "{name}: {key}");
        }
        let protocol = participant["protocol"].as_str().unwrap();
        assert!(
            PARTICIPANT_PROTOCOLS.contains(&protocol),
            "{name}: protocol {protocol}"
        );
    }
    sim.shutdown().await;
}
