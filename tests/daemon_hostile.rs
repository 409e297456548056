//! The daemon against a platform that misbehaves, played by a raw server on
//! loopback: what it asks for (`Retry-After`) is honoured, and a stream
//! that stays open but tells usher nothing is reported by `/healthz`, end
//! to end.

mod common;

use std::time::Duration;

use tokio::io::AsyncWriteExt;

use common::daemon::{PATIENCE, ROOM, TestDir, Usher, eventually};
use common::raw::{EVENT_STREAM_HEAD, RawServer, Reply, script};
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
    config_with(server, "")
}

/// The config with more `platform:` settings (indented lines).
fn config_with(server: &RawServer, platform: &str) -> String {
    format!(
        "platform:\n  url: {}\n  display_name: usher\n{platform}rules_dir: rules\nrooms:\n  - alias: {ROOM}\n    pin_file: hall.pin\n    rules:\n      - auto_mute_guests\naudit_log: audit.jsonl\nhttp: {{ listen: 127.0.0.1:0 }}\n",
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

/// A server whose session calls work and whose event stream is written by
/// `stream` (after the response head) and then kept open with keep-alive
/// comments, as a live stream is.
async fn stream_server(stream: &'static [u8], then: Option<&'static [u8]>) -> RawServer {
    let writer = Reply::write(move |mut socket| async move {
        if socket.write_all(EVENT_STREAM_HEAD).await.is_err()
            || socket.write_all(stream).await.is_err()
        {
            return;
        }
        // Quiet but alive for a while (longer than the stall bound), then
        // `then` over and over.
        for _ in 0..10 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if socket.write_all(b": keep-alive\n\n").await.is_err() {
                return;
            }
        }
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if socket
                .write_all(then.unwrap_or(b": keep-alive\n\n"))
                .await
                .is_err()
            {
                return;
            }
        }
    });
    RawServer::start(script(vec![
        (
            "new_session",
            vec![Reply::success(
                r#"{"token":"t-1","expires":"120","participant_uuid":"usher-1"}"#,
            )],
        ),
        ("events", vec![writer]),
        (
            "service_status",
            vec![Reply::success(r#"{"locked":false,"guests_muted":false}"#)],
        ),
        (
            "refresh_session",
            vec![Reply::success(r#"{"token":"t-2","expires":"120"}"#)],
        ),
        ("end_session", vec![Reply::success("true")]),
    ]))
    .await
}

/// A stall bound of one second (the platform's stream idle bound).
const QUICK_STALL: &str = "  timeouts: { stream_idle: 1s }\n";

/// Waits until `/healthz` is 503 naming the room with `why`, and checks
/// that `/status` says the room is connected but stalled, and why.
async fn reported_stalled(usher: &Usher, why: &str) {
    eventually(
        PATIENCE,
        "/healthz to report the stalled room",
        async || {
            let (code, body) = usher.get("/healthz").await;
            code == 503 && body.contains(ROOM) && body.contains(why)
        },
    )
    .await;
    let status = usher.status().await;
    let room = &status["rooms"][ROOM];
    assert_eq!(room["phase"], "connected", "{room}");
    assert_eq!(room["health"], "stalled", "{room}");
    assert!(room["reason"].as_str().unwrap().contains(why), "{room}");
    assert_eq!(usher.metric("usher_rooms_stalled").await, Some(1.0));
}

#[tokio::test]
async fn a_listing_that_never_ends_is_reported_by_healthz() {
    let server = stream_server(b"event: participant_sync_begin\ndata: null\n\n", None).await;
    let dir = TestDir::new("stalled-listing");
    dir.shipped_rules();
    let usher = Usher::start_only(dir, &config_with(&server, QUICK_STALL)).await;
    reported_stalled(&usher, "no complete room listing").await;
    usher.stop().await;
}

#[tokio::test]
async fn a_stream_of_nothing_decodable_is_reported_by_healthz() {
    let server = stream_server(
        b"event: participant_sync_begin\ndata: null\n\nevent: participant_sync_end\ndata: null\n\n",
        Some(b"event: participant_create\ndata: {\"uuid\": [1, 2\n\n"),
    )
    .await;
    let dir = TestDir::new("stalled-garbage");
    dir.shipped_rules();
    let usher = Usher::start(dir, &config_with(&server, QUICK_STALL)).await;
    // A quiet room (keep-alives only) stays healthy past the bound.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        usher.get("/healthz").await.0,
        200,
        "a quiet room is healthy"
    );
    reported_stalled(&usher, "nothing decodable").await;
    usher.stop().await;
}
