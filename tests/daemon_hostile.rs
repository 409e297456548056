//! The daemon against a platform that misbehaves, played by a raw server on
//! loopback: what it asks for (`Retry-After`) is honoured, end to end.

mod common;
mod daemon_support;

use common::raw::{RawServer, Reply, script};
use daemon_support::{ROOM, TestDir, Usher};
use usher::runtime::audit::Outcome;

/// A room with nobody in it, then Bob (a guest) joining.
const EVENTS: &str = concat!(
    "event: participant_sync_begin\ndata: null\n\n",
    "event: participant_sync_end\ndata: null\n\n",
    "event: participant_create\n",
    r#"data: {"uuid":"p-bob","display_name":"Bob","role":"guest","service_type":"conference"}"#,
    "\n\n"
);

fn config(server: &RawServer) -> String {
    format!(
        "platform:\n  url: {}\n  display_name: usher\nrules_dir: rules\nrooms:\n  - alias: {ROOM}\n    pin_file: hall.pin\n    rules:\n      - auto_mute_guests\naudit_log: audit.jsonl\nhttp: {{ listen: 127.0.0.1:0 }}\n",
        server.url()
    )
}

/// Seconds between the first two requests for `call`.
fn gap(server: &RawServer, call: &str) -> f64 {
    let requests = server.requests_for(call);
    assert!(
        requests.len() >= 2,
        "{call} was asked {} times",
        requests.len()
    );
    requests[1].at.duration_since(requests[0].at).as_secs_f64()
}

#[tokio::test]
async fn retry_after_holds_back_a_new_session_and_a_command() {
    let server = RawServer::start(script(vec![
        (
            "new_session",
            vec![
                Reply::too_many(3),
                Reply::success(r#"{"token":"t-1","expires":"120","participant_uuid":"usher-1"}"#),
            ],
        ),
        (
            "events",
            vec![Reply::event_stream(EVENTS.as_bytes().to_vec())],
        ),
        (
            "service_status",
            vec![Reply::success(r#"{"locked":false,"guests_muted":false}"#)],
        ),
        ("mute", vec![Reply::too_many(2), Reply::success("true")]),
        (
            "refresh_session",
            vec![Reply::success(r#"{"token":"t-2","expires":"120"}"#)],
        ),
        ("end_session", vec![Reply::success("true")]),
    ]))
    .await;
    let dir = TestDir::new("retry-after");
    dir.shipped_rules();
    let usher = Usher::start_only(dir, &config(&server)).await;
    let record = usher.audited(Outcome::Ok, "mute Bob").await;
    assert_eq!(record.attempts, 2);
    let (session_wait, mute_wait) = (gap(&server, "new_session"), gap(&server, "mute"));
    assert!(
        session_wait >= 3.0 && mute_wait >= 2.0,
        "asked again after {session_wait:.2} s (new_session, asked 3 s) and {mute_wait:.2} s (mute, asked 2 s)"
    );
    usher.stop().await;
}
