//! Every real Pexip payload in the reference set parses with usher's model
//! and wire types, into the right variant with the right fields.
//!
//! The payloads live next to the repository in
//! `../shared/reference/pexip-payloads/`; CI clones the repository alone, so
//! `tests/fixtures/pexip-payloads/` holds copies (Apache-2.0, see its README).
//! The originals are used when present, the copies otherwise, and when both
//! exist the copies must equal the originals.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use usher::model::{
    ChatMessage, Event, FlagsUpdate, Layout, Presentation, Role, ServiceType, StageEntry,
};
use usher::platform::vmr::codec::{Frame, decode};
use usher::platform::vmr::wire::{INVALID_TOKEN, Reply, SessionGrant};

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
