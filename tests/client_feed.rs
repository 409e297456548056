//! The supervised event feed over loopback: a dropped stream reconnects and
//! resyncs without false joins or leaves, while real changes made during the
//! outage are reported; frames that cannot be read, or that this version
//! does not know, do not stop the stream; and a stream that keeps refusing
//! fresh tokens is retried with backoff, not flooded with new sessions.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::RawQuery;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde_json::json;

use common::{
    Feed, PATIENCE, ROOM, apply_all, calls_to, clients, credentials, describe, eventually,
    open_session, room, roster, sim_roster, simulator,
};
use usher::model::{Event, Participant, Role, RoomState};
use usher::platform::vmr::codec::{participant_from, participant_json};
use usher::platform::vmr::{RoomClient, Session};
use usher::platform::{FeedItem, FeedOptions};
use usher::sim::Fault;
use usher::sim::step::{Joiner, Step};

#[tokio::test]
async fn a_dropped_stream_resyncs_with_no_false_joins_or_leaves() {
    const BACKOFF: Duration = Duration::from_millis(400);
    let people = ["Bob", "Cat", "Dan"].map(Joiner::guest);
    let sim = simulator(vec![room(
        [Joiner::host("Ada")].into_iter().chain(people).collect(),
    )])
    .await;
    let session = open_session(&sim, true).await;
    let options = FeedOptions {
        min_backoff: BACKOFF,
        max_backoff: BACKOFF,
        ..FeedOptions::default()
    };
    let mut feed = Feed::start_with(session.clone(), options);
    feed.connected().await;
    let own = session.participant_uuid();
    let mut state = RoomState::new();
    let changes = apply_all(&mut state, feed.roster().await);
    assert_eq!(describe(&changes), ["synced (initial)"]);

    // An outage in which nothing happens: the resync reports nothing.
    sim.fault(ROOM, Fault::DropStreams)
        .expect("the streams drop");
    let reconnect = |item: &FeedItem| {
        let FeedItem::Disconnected { retry_in, .. } = item else {
            panic!("expected Disconnected first, got {item:?}");
        };
        assert!(*retry_in >= BACKOFF, "waits the backoff: {retry_in:?}");
    };
    reconnect(&feed.next("Disconnected").await);
    feed.connected().await;
    assert_eq!(
        session.participant_uuid(),
        own,
        "the same session reconnects"
    );
    let changes = apply_all(&mut state, feed.roster().await);
    assert_eq!(
        describe(&changes),
        ["synced"],
        "a resync of an unchanged room is not news"
    );

    // An outage in which Eve joins, Bob leaves and Cat is muted. No `.await`
    // separates the drop from the steps, and the feed waits out its backoff
    // before reconnecting, so no stream can see these events live.
    sim.fault(ROOM, Fault::DropStreams)
        .expect("the streams drop");
    for step in [
        Step::Join(Joiner::guest("Eve")),
        Step::Leave("Bob".into()),
        Step::Mute("Cat".into()),
        Step::Lock,
    ] {
        sim.step(ROOM, &step).expect("the step applies");
    }
    assert_eq!(
        sim.open_streams(ROOM),
        0,
        "the steps happened while the stream was down"
    );
    reconnect(&feed.next("Disconnected").await);
    feed.connected().await;
    let changes = apply_all(&mut state, feed.roster().await);
    assert_eq!(
        describe(&changes),
        [
            "left Bob",
            "updated Cat",
            "joined Eve",
            "synced",
            "room locked=true guests_muted=false"
        ],
        "only the real differences are reported, the room's lock included"
    );
    assert_eq!(roster(&state), sim_roster(&sim));
    assert!(state.find("Cat").is_some_and(|cat| cat.muted));

    assert_eq!(session.stats().renewals, 0, "the session was never refused");
    assert_eq!(calls_to(&sim, "new_session").len(), 1);
    assert_eq!(calls_to(&sim, "events").len(), 3);
    feed.stop().await;
    sim.shutdown().await;
}

/// What the purpose-built node saw.
#[derive(Default)]
struct Seen {
    /// The token of each `refresh_session`.
    refreshes: Vec<String>,
    /// The query of each `events` request.
    subscriptions: Vec<String>,
}

/// A participant frame's data.
fn participant(uuid: &str, name: &str) -> String {
    participant_json(&Participant {
        uuid: uuid.into(),
        display_name: name.into(),
        role: Role::Guest,
        ..Participant::default()
    })
    .to_string()
}

/// A participant as the client reads it from a frame's data.
fn read_participant(data: &str) -> Participant {
    participant_from(serde_json::from_str(data).expect("JSON")).expect("a participant")
}

/// A minimal node on loopback: `new_session`, `refresh_session`, and an event
/// stream that sends `frames` and then ends.
async fn fake_node(
    frames: String,
    seen: Arc<Mutex<Seen>>,
) -> (url::Url, tokio::task::JoinHandle<()>) {
    let refreshes = seen.clone();
    let subscriptions = seen;
    let app = Router::new()
        .route(
            "/api/services/{room}/new_session",
            post(|| async {
                axum::Json(json!({"status": "success", "result": {
                    "token": "token-1", "expires": 120, "participant_uuid": "own-uuid",
                    "display_name": "usher", "role": "HOST",
                }}))
            }),
        )
        .route(
            "/api/services/{room}/refresh_session",
            post(move |headers: HeaderMap| {
                let refreshes = refreshes.clone();
                async move {
                    let token = headers
                        .get("token")
                        .and_then(|value| value.to_str().ok())
                        .unwrap_or_default()
                        .to_owned();
                    refreshes
                        .lock()
                        .expect("not poisoned")
                        .refreshes
                        .push(token);
                    axum::Json(json!({"status": "success", "result": {
                        "token": "token-2", "expires": "120",
                    }}))
                }
            }),
        )
        .route(
            "/api/services/{room}/events",
            get(move |RawQuery(query): RawQuery| {
                let (subscriptions, frames) = (subscriptions.clone(), frames.clone());
                async move {
                    subscriptions
                        .lock()
                        .expect("not poisoned")
                        .subscriptions
                        .push(query.unwrap_or_default());
                    ([(header::CONTENT_TYPE, "text/event-stream")], frames).into_response()
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let url = url::Url::parse(&format!(
        "http://{}/",
        listener.local_addr().expect("an address")
    ))
    .expect("a URL");
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .await
            .expect("the fake node serves");
    });
    (url, server)
}

#[tokio::test]
async fn malformed_and_unknown_frames_are_skipped_and_the_stream_goes_on() {
    let first = participant("p-1", "Ann");
    let last = participant("p-2", "Ben");
    let frames = [
        ("participant_create", first.as_str()),
        ("participant_create", "{this is not json"),
        (
            "participant_create",
            r#"{"display_name":"No Uuid","role":"guest"}"#,
        ),
        ("fecc", r#"{"action":"start","target":"p-1"}"#),
        ("refresh_token", "null"),
        ("participant_create", last.as_str()),
    ]
    .iter()
    .enumerate()
    .map(|(id, (name, data))| format!("event: {name}\nid: {id}\ndata: {data}\n\n"))
    .collect::<String>();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let (node, server) = fake_node(frames, seen.clone()).await;

    let client = RoomClient::new(&clients(), &node, ROOM);
    let session = Session::open(client, credentials(true))
        .await
        .expect("the fake node grants a session");
    let keeper_stop = tokio_util::sync::CancellationToken::new();
    let keeper = tokio::spawn(session.clone().keep_fresh(keeper_stop.clone()));
    // A long backoff: the stream ends after its frames and must not be
    // fetched again during the test.
    let options = FeedOptions {
        min_backoff: Duration::from_secs(60),
        max_backoff: Duration::from_secs(60),
        ..FeedOptions::default()
    };
    let mut feed = Feed::start_with(session.clone(), options);
    feed.connected().await;
    let items = feed
        .until("the end of the stream", |item| {
            matches!(item, FeedItem::Disconnected { .. })
        })
        .await;
    let (end, forwarded) = items.split_last().expect("at least the end");
    let expected = [
        FeedItem::Event(Event::Participant(read_participant(&first))),
        FeedItem::Event(Event::Participant(read_participant(&last))),
    ];
    assert_eq!(
        forwarded, expected,
        "exactly the readable events, in order; the unknown one and refresh_token are the feed's own business"
    );
    assert!(
        matches!(end, FeedItem::Disconnected { reason, .. } if reason.contains("closed")),
        "the stream ended: {end:?}"
    );

    eventually(
        PATIENCE,
        "the refresh the refresh_token event asked for",
        async || session.stats().refreshes == 1,
    )
    .await;
    let (refreshes, subscriptions) = {
        let seen = seen.lock().expect("not poisoned");
        (seen.refreshes.clone(), seen.subscriptions.clone())
    };
    assert_eq!(
        refreshes,
        ["token-1"],
        "one refresh_session, with the first token"
    );
    assert_eq!(subscriptions, ["token=token-1"], "one subscription");

    keeper_stop.cancel();
    keeper.await.expect("the keeper ends when cancelled");
    feed.stop().await;
    server.abort();
}

#[tokio::test]
async fn a_stream_that_refuses_every_new_token_backs_off_instead_of_looping() {
    const BACKOFF: Duration = Duration::from_millis(100);
    // A node that grants sessions but refuses every event stream, as a
    // cluster node might that does not know the other nodes' tokens.
    let sessions = Arc::new(AtomicUsize::new(0));
    let granted = sessions.clone();
    let app = Router::new()
        .route(
            "/api/services/{room}/new_session",
            post(move || {
                let n = granted.fetch_add(1, Ordering::SeqCst);
                async move {
                    axum::Json(json!({"status": "success", "result": {
                        "token": format!("token-{n}"), "expires": 120,
                        "participant_uuid": format!("own-{n}"),
                    }}))
                }
            }),
        )
        .route(
            "/api/services/{room}/events",
            get(|| async {
                let refused = json!({"status": "success", "result": "Invalid token"});
                (StatusCode::FORBIDDEN, axum::Json(refused))
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let node = url::Url::parse(&format!(
        "http://{}/",
        listener.local_addr().expect("an address")
    ))
    .expect("a URL");
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .await
            .expect("the fake node serves");
    });

    let client = RoomClient::new(&clients(), &node, ROOM);
    let session = Session::open(client, credentials(true))
        .await
        .expect("the fake node grants a session");
    let options = FeedOptions {
        min_backoff: BACKOFF,
        max_backoff: BACKOFF,
        ..FeedOptions::default()
    };
    let mut feed = Feed::start_with(session.clone(), options);
    let mut delays = Vec::new();
    for _ in 0..4 {
        match feed.next("the stream being refused").await {
            FeedItem::Disconnected { reason, retry_in } => {
                assert!(reason.contains("403"), "{reason}");
                delays.push(retry_in);
            }
            other => panic!("the stream never opens, yet the feed reported {other:?}"),
        }
    }
    feed.stop().await;
    assert_eq!(
        delays[0],
        Duration::ZERO,
        "the first refusal renews and reconnects at once"
    );
    assert!(
        delays[1..].iter().all(|delay| *delay >= BACKOFF),
        "a refusal right after a renewal waits the backoff: {delays:?}"
    );
    let renewals = session.stats().renewals;
    assert_eq!(renewals, 4, "each refusal renews the session once");
    assert_eq!(
        sessions.load(Ordering::SeqCst) as u64,
        1 + renewals,
        "no session was started beyond those renewals"
    );
    server.abort();
}
