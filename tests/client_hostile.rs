//! The client against a platform that misbehaves: a raw server on loopback
//! sends bytes that are not UTF-8, lines that never end, replies too large,
//! and asks to be called back later with `Retry-After`. Whatever it sends,
//! usher must neither stall nor grow: it ends what it cannot read, says why,
//! and comes back.

mod common;

use tokio::io::AsyncWriteExt;

use common::raw::{EVENT_STREAM_HEAD, RawServer, Reply, script};
use common::{Logs, PATIENCE, clients, credentials};
use usher::limits::{MAX_REPLY_BODY, MAX_STREAM_LINE};
use usher::model::{Event, Secret};
use usher::platform::vmr::events::{EventStream, StreamEnd, StreamItem};
use usher::platform::vmr::{ClientError, RoomClient, Session};
use usher::platform::{FeedItem, FeedOptions};

const ROOM: &str = "hall@usher.test";

/// A `new_session` grant.
const GRANT: &str = r#"{"token":"t-1","expires":"120","participant_uuid":"usher-1"}"#;

fn client(server: &RawServer) -> RoomClient {
    RoomClient::new(&clients(), &server.url(), ROOM)
}

/// Opens the stream and expects it to open.
async fn opened(server: &RawServer) -> EventStream {
    let mut stream = client(server).events(&Secret::new("t-1"));
    let first = tokio::time::timeout(PATIENCE, stream.next())
        .await
        .expect("the stream answers");
    assert_eq!(first, Ok(StreamItem::Opened));
    stream
}

/// How the stream ends, skipping frames; panics if it does not end.
async fn end_of(stream: &mut EventStream, waiting_for: &str) -> (Vec<String>, StreamEnd) {
    let mut names = Vec::new();
    loop {
        match tokio::time::timeout(PATIENCE, stream.next()).await {
            Ok(Ok(StreamItem::Frame { name, .. })) => names.push(name),
            Ok(Ok(StreamItem::Opened)) => panic!("opened twice"),
            Ok(Err(end)) => return (names, end),
            Err(_) => panic!(
                "the stream did not end within {PATIENCE:?} ({waiting_for}); frames so far: {names:?}"
            ),
        }
    }
}

#[tokio::test]
async fn one_byte_that_is_not_utf8_ends_the_stream_naming_where() {
    let server = RawServer::start(|_| {
        Reply::event_stream(b"event: a\ndata: 1\n\n: \xff\n\nevent: b\ndata: 2\n\n".to_vec())
    })
    .await;
    let mut stream = opened(&server).await;
    let (frames, end) = end_of(&mut stream, "a comment with an invalid byte").await;
    assert_eq!(frames, ["a"], "what came before the bad byte is delivered");
    assert_eq!(
        end.to_string(),
        "the event stream cannot be decoded: line 4, byte 3: not UTF-8"
    );
    assert_eq!(stream.next().await, Err(StreamEnd::Closed));
}

#[tokio::test]
async fn binary_garbage_ends_the_stream() {
    let garbage: Vec<u8> = (0..64 * 1024u32)
        .map(|n| (n.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let server = RawServer::start(move |_| Reply::event_stream(garbage.clone())).await;
    let mut stream = opened(&server).await;
    let (_, end) = end_of(&mut stream, "binary garbage").await;
    assert!(
        matches!(end, StreamEnd::Undecodable(_)),
        "garbage ends the stream as undecodable, not {end:?}"
    );
}

#[tokio::test]
async fn a_line_that_never_ends_is_cut_at_the_cap() {
    let server = RawServer::start(|_| {
        Reply::write(|mut socket| async move {
            let _ = socket.write_all(EVENT_STREAM_HEAD).await;
            let _ = socket.write_all(b"data: ").await;
            let endless = vec![b'a'; 64 * 1024];
            while socket.write_all(&endless).await.is_ok() {}
        })
    })
    .await;
    let mut stream = opened(&server).await;
    let (_, end) = end_of(&mut stream, "a line that never ends").await;
    let StreamEnd::Undecodable(err) = &end else {
        panic!("expected the line to be cut, got {end:?}");
    };
    assert!(
        err.to_string()
            .starts_with(&format!("line 1 is longer than {MAX_STREAM_LINE} bytes")),
        "{err}"
    );
}

#[tokio::test]
async fn a_large_event_under_the_cap_arrives_whole() {
    let big = "x".repeat(MAX_STREAM_LINE - 1000);
    let body = format!("event: message_received\ndata: {big}\n\nevent: after\ndata: 1\n\n");
    let server = RawServer::start(move |_| Reply::event_stream(body.clone().into_bytes())).await;
    let mut stream = opened(&server).await;
    let first = stream.next().await.expect("a frame");
    let StreamItem::Frame { name, data } = first else {
        panic!("expected a frame")
    };
    assert_eq!((name.as_str(), data.len()), ("message_received", big.len()));
    assert!(matches!(stream.next().await, Ok(StreamItem::Frame { name, .. }) if name == "after"));
}

/// A room whose first event stream sends garbage and whose second sends a
/// proper sync bracket: the feed must drop the first, say why, and resync.
#[tokio::test]
async fn the_feed_resyncs_after_a_stream_it_cannot_decode() {
    let streams = std::sync::atomic::AtomicUsize::new(0);
    let server = RawServer::start(move |request| {
        if request.is("new_session") {
            Reply::success(GRANT)
        } else if request.is("service_status") {
            Reply::success(r#"{"locked":false,"guests_muted":false}"#)
        } else if request.is("events") {
            match streams.fetch_add(1, std::sync::atomic::Ordering::SeqCst) {
                0 => Reply::event_stream(
                    b"event: participant_sync_begin\ndata: null\n\n\xc3\x28\n".to_vec(),
                ),
                _ => Reply::event_stream(
                    concat!(
                        "event: participant_sync_begin\ndata: null\n\n",
                        "event: participant_create\n",
                        r#"data: {"uuid":"p-1","display_name":"Ada","role":"chair"}"#,
                        "\n\nevent: participant_sync_end\ndata: null\n\n"
                    )
                    .as_bytes()
                    .to_vec(),
                ),
            }
        } else {
            Reply::json(404, &[], r#"{"status":"failed","result":"no such call"}"#)
        }
    })
    .await;
    let session = Session::open(client(&server), credentials(true))
        .await
        .expect("a session opens");
    let mut feed = common::Feed::start(session);
    feed.connected().await;
    let down = feed
        .next_matching("the stream dropped", |item| {
            matches!(item, FeedItem::Disconnected { .. })
        })
        .await;
    let FeedItem::Disconnected { reason, .. } = down else {
        unreachable!()
    };
    assert_eq!(
        reason,
        "the event stream cannot be decoded: line 4, byte 1: not UTF-8"
    );
    feed.connected().await;
    let roster = feed.roster().await;
    assert!(
        matches!(&roster[0], Event::Roster(listed) if listed.iter().any(|p| p.display_name == "Ada")),
        "{roster:?}"
    );
    feed.stop().await;
}

/// A room whose first event stream opens a participant listing and never
/// closes it (while staying alive): the feed must abandon the listing
/// after its bound, say so in the log, and resync on a new stream.
#[tokio::test]
async fn a_listing_that_never_closes_is_abandoned_and_the_room_resynced() {
    let (logs, _guard) = Logs::capture();
    let streams = std::sync::atomic::AtomicUsize::new(0);
    let server = RawServer::start(move |request| {
        if request.is("new_session") {
            Reply::success(GRANT)
        } else if request.is("service_status") {
            Reply::success(r#"{"locked":false,"guests_muted":false}"#)
        } else if request.is("events") {
            match streams.fetch_add(1, std::sync::atomic::Ordering::SeqCst) {
                0 => Reply::write(|mut socket| async move {
                    let opening = concat!(
                        "event: participant_sync_begin\ndata: null\n\n",
                        "event: participant_create\n",
                        r#"data: {"uuid":"p-1","display_name":"Ada","role":"chair"}"#,
                        "\n\n"
                    );
                    let _ = socket.write_all(EVENT_STREAM_HEAD).await;
                    let _ = socket.write_all(opening.as_bytes()).await;
                    loop {
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        if socket.write_all(b": keep-alive\n\n").await.is_err() {
                            return;
                        }
                    }
                }),
                _ => Reply::event_stream(
                    concat!(
                        "event: participant_sync_begin\ndata: null\n\n",
                        "event: participant_create\n",
                        r#"data: {"uuid":"p-1","display_name":"Ada","role":"chair"}"#,
                        "\n\nevent: participant_sync_end\ndata: null\n\n"
                    )
                    .as_bytes()
                    .to_vec(),
                ),
            }
        } else {
            Reply::json(404, &[], r#"{"status":"failed","result":"no such call"}"#)
        }
    })
    .await;
    let session = Session::open(client(&server), credentials(true))
        .await
        .expect("a session opens");
    let options = FeedOptions {
        sync_bound: std::time::Duration::from_millis(300),
        min_backoff: std::time::Duration::from_millis(10),
        ..FeedOptions::default()
    };
    let mut feed = common::Feed::start_with(session, options);
    feed.connected().await;
    let down = feed
        .next_matching("the unclosed listing abandoned", |item| {
            matches!(item, FeedItem::Disconnected { .. })
        })
        .await;
    let FeedItem::Disconnected { reason, .. } = down else {
        unreachable!()
    };
    assert_eq!(
        reason,
        "not an event stream: participant_sync_begin without participant_sync_end"
    );
    feed.connected().await;
    let roster = feed.roster().await;
    assert!(
        matches!(&roster[0], Event::Roster(listed) if listed.len() == 1 && listed[0].display_name == "Ada"),
        "{roster:?}"
    );
    assert_eq!(server.requests_for("events").len(), 2);
    let log = logs.text();
    assert!(
        log.contains("WARN") && log.contains("opened a participant listing and never closed it"),
        "the abandoned listing is logged:\n{log}"
    );
    feed.stop().await;
}

/// A reply declaring more than the cap is refused before it is read.
#[tokio::test]
async fn a_reply_larger_than_the_cap_is_an_error() {
    let padding = "x".repeat(MAX_REPLY_BODY);
    let server = RawServer::start(move |_| {
        Reply::success(&format!(
            r#"{{"locked":true,"guests_muted":false,"padding":"{padding}"}}"#
        ))
    })
    .await;
    let err = client(&server)
        .service_status(&Secret::new("t-1"))
        .await
        .expect_err("a reply over the cap is refused");
    assert!(
        matches!(err, ClientError::Protocol { .. }),
        "a reply too large is a protocol error, not {err:?}"
    );
    assert!(
        err.to_string().contains("larger than"),
        "the error says why: {err}"
    );
}

/// A reply that never ends (no length given) is cut at the cap, long before
/// the request's timeout.
#[tokio::test]
async fn a_reply_that_never_ends_is_cut_at_the_cap() {
    let server = RawServer::start(|_| {
        Reply::write(|mut socket| async move {
            let head = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n{\"status\":\"success\",\"result\":\"";
            let _ = socket.write_all(head).await;
            let endless = vec![b'a'; 64 * 1024];
            while socket.write_all(&endless).await.is_ok() {}
        })
    })
    .await;
    let err = tokio::time::timeout(
        PATIENCE,
        client(&server).service_status(&Secret::new("t-1")),
    )
    .await
    .expect("the client gives up on an endless reply")
    .expect_err("an endless reply is refused");
    assert!(err.to_string().contains("larger than"), "{err}");
}

/// `checkJoin` replies are capped as well.
#[tokio::test]
async fn a_check_join_reply_larger_than_the_cap_is_an_error() {
    let padding = "x".repeat(MAX_REPLY_BODY);
    let server = RawServer::start(move |_| {
        Reply::json(
            200,
            &[],
            &format!(r#"{{"code":"200","results":{{"mcuHost":"node","padding":"{padding}"}}}}"#),
        )
    })
    .await;
    let err = usher::platform::vmr::check_join(
        &reqwest::Client::new(),
        &server.url(),
        ROOM,
        None,
        "usher",
    )
    .await
    .expect_err("a reply over the cap is refused");
    assert!(err.to_string().contains("larger than"), "{err}");
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
async fn renewals_wait_for_the_retry_after_of_new_session() {
    let server = RawServer::start(script(vec![(
        "new_session",
        vec![
            Reply::success(GRANT),
            Reply::too_many(2),
            Reply::success(GRANT),
        ],
    )]))
    .await;
    let session = Session::open(client(&server), credentials(true))
        .await
        .expect("a session opens");
    let err = session.renew(0).await.expect_err("the platform said 429");
    assert_eq!(err.retry_after(), Some(std::time::Duration::from_secs(2)));
    let held = session.renew(0).await.expect_err("too soon to ask again");
    assert!(held.retry_after().is_some(), "{held:?}");
    assert_eq!(
        server.requests_for("new_session").len(),
        2,
        "no new_session goes out before the Retry-After has passed"
    );
    tokio::time::sleep(err.retry_after().expect("asked to wait")).await;
    session
        .renew(0)
        .await
        .expect("after the wait a renewal goes through");
    assert!(gap_between(&server, "new_session", 1, 2) >= 2.0);
}

#[tokio::test]
async fn a_refresh_refused_with_retry_after_is_tried_again_no_sooner() {
    let short_grant = r#"{"token":"t-1","expires":"1","participant_uuid":"usher-1"}"#;
    let server = RawServer::start(script(vec![
        ("new_session", vec![Reply::success(short_grant)]),
        (
            "refresh_session",
            vec![
                Reply::too_many(2),
                Reply::success(r#"{"token":"t-2","expires":"120"}"#),
            ],
        ),
    ]))
    .await;
    let session = Session::open(client(&server), credentials(true))
        .await
        .expect("a session opens");
    let cancel = tokio_util::sync::CancellationToken::new();
    let keeper = tokio::spawn(session.clone().keep_fresh(cancel.clone()));
    let deadline = std::time::Instant::now() + PATIENCE;
    while session.stats().refreshes == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "no refresh went through"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    cancel.cancel();
    keeper.await.expect("the keeper stops");
    let waited = gap(&server, "refresh_session");
    assert!(waited >= 2.0, "retried after {waited:.2} s, asked 2 s");
}

/// Seconds between the `first`th and `second`th requests for `call` (from 0).
fn gap_between(server: &RawServer, call: &str, first: usize, second: usize) -> f64 {
    let requests = server.requests_for(call);
    requests[second]
        .at
        .duration_since(requests[first].at)
        .as_secs_f64()
}

/// Odd `expires` values (huge, negative, zero, not a number) neither crash
/// the token keeper nor stop it: each one is refreshed again when asked.
#[tokio::test]
async fn odd_expiry_values_never_stop_the_refreshing() {
    let short_grant = r#"{"token":"t-1","expires":"1","participant_uuid":"usher-1"}"#;
    let odd = [r#"1e19"#, r#""-5""#, "0", r#""soon""#, "1e300"];
    let refreshes = odd
        .iter()
        .map(|expires| Reply::success(&format!(r#"{{"token":"t-2","expires":{expires}}}"#)))
        .collect();
    let server = RawServer::start(script(vec![
        ("new_session", vec![Reply::success(short_grant)]),
        ("refresh_session", refreshes),
    ]))
    .await;
    let session = Session::open(client(&server), credentials(true))
        .await
        .expect("a session opens");
    let cancel = tokio_util::sync::CancellationToken::new();
    let keeper = tokio::spawn(session.clone().keep_fresh(cancel.clone()));
    for (done, expires) in odd.iter().enumerate() {
        if done > 0 {
            session.request_refresh();
        }
        let deadline = std::time::Instant::now() + PATIENCE;
        while session.stats().refreshes <= done as u64 {
            assert!(
                !keeper.is_finished(),
                "the token keeper stopped after `expires: {}`",
                odd[done.saturating_sub(1)]
            );
            assert!(
                std::time::Instant::now() < deadline,
                "no refresh after `expires: {expires}`"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
    assert!(!keeper.is_finished());
    cancel.cancel();
    keeper.await.expect("the keeper stops cleanly");
}
