//! The real client against the real simulator over loopback: opening a
//! session and following the room through the sync bracket, keeping the token
//! fresh across several expiries, recovering from a refused token, clear
//! errors for a wrong PIN or room, and finding the node with `checkJoin`.

mod common;

use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use common::{
    Feed, PIN, ROOM, USHER, apply_all, calls_to, clients, clients_with, credentials, describe,
    open_session, room, room_client, roster, sim_roster, simulator,
};
use usher::model::{
    Change, Command, ConferenceCommand, Event, ParticipantCommand, RoomState, Secret,
};
use usher::platform::FeedItem;
use usher::platform::http::{HttpOptions, StreamProtocol};
use usher::platform::vmr::{ClientError, Credentials, RoomClient, Session, check_join, node_url};
use usher::sim::Fault;
use usher::sim::step::{Joiner, Step};

/// Ada hosts; Bob, Cat (muted) and Dan are guests.
fn lecture() -> Vec<Joiner> {
    vec![
        Joiner::host("Ada"),
        Joiner::guest("Bob"),
        Joiner {
            muted: true,
            ..Joiner::guest("Cat")
        },
        Joiner::guest("Dan"),
    ]
}

#[tokio::test]
async fn a_hidden_session_follows_the_room_through_its_sync_bracket() {
    let sim = simulator(vec![room(lecture())]).await;
    sim.step(ROOM, &Step::WaitingRoom(Joiner::guest("Wanda")))
        .expect("Wanda waits");
    sim.step(ROOM, &Step::RaiseHand("Bob".into()))
        .expect("Bob raises a hand");

    let session = open_session(&sim, true).await;
    let own = session.participant_uuid();
    assert_eq!(own.len(), 36, "our participant has a uuid: {own:?}");
    assert_eq!(sim.active_sessions(ROOM), 1);
    assert!(
        sim.conference(ROOM)
            .expect("the room")
            .participants
            .iter()
            .all(|p| p.uuid != own),
        "a hidden session is not in the platform's roster"
    );

    let mut feed = Feed::start(session.clone());
    feed.connected().await;
    let bracket = feed.roster().await;
    let Event::Roster(listed) = &bracket[0] else {
        unreachable!("a roster comes first")
    };
    assert_eq!(listed.len(), 5, "five participants");
    assert!(
        listed.iter().all(|p| p.uuid != own),
        "our hidden participant is not listed"
    );
    let mut state = RoomState::new();
    let changes = apply_all(&mut state, bracket);
    assert_eq!(
        changes,
        [Change::Synced { initial: true }],
        "the first bracket is a silent baseline"
    );
    assert_eq!(
        roster(&state),
        sim_roster(&sim),
        "the room state is exactly the simulator's roster"
    );
    assert!(state.participant(&own).is_none());

    // After the baseline, live events are news.
    sim.step(ROOM, &Step::Join(Joiner::guest("Eve")))
        .expect("Eve joins");
    let FeedItem::Event(joined) = feed.next("Eve's participant_create").await else {
        panic!("expected an event");
    };
    assert_eq!(describe(&state.apply(joined)), ["joined Eve"]);
    assert_eq!(roster(&state), sim_roster(&sim));

    feed.stop().await;
    session.close().await;
    assert_eq!(
        sim.active_sessions(ROOM),
        0,
        "close ends the session on the platform"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn a_visible_session_is_in_the_platform_roster_but_never_in_the_room_state() {
    let sim = simulator(vec![room(lecture())]).await;
    let session = open_session(&sim, false).await;
    let own = session.participant_uuid();
    let listed = sim_roster(&sim);
    let me = listed
        .iter()
        .find(|p| p.uuid == own)
        .expect("with hidden: false the platform lists our participant");
    assert_eq!(
        (me.display_name.as_str(), me.protocol.as_str()),
        (USHER, "api")
    );

    let mut feed = Feed::start(session.clone());
    let mut state = RoomState::new();
    feed.connected().await;
    let bracket = feed.roster().await;
    let Event::Roster(listed_by_feed) = &bracket[0] else {
        unreachable!("a roster comes first")
    };
    assert!(
        listed_by_feed.iter().all(|p| p.uuid != own),
        "the platform lists us, the feed leaves us out"
    );
    let changes = apply_all(&mut state, bracket);
    assert_eq!(changes, [Change::Synced { initial: true }]);
    let others: Vec<_> = listed.into_iter().filter(|p| p.uuid != own).collect();
    assert_eq!(
        roster(&state),
        others,
        "the room state is the roster without us"
    );
    assert!(state.participant(&own).is_none());
    feed.stop().await;
    sim.shutdown().await;
}

#[tokio::test]
async fn the_token_is_refreshed_across_several_expiries_and_commands_keep_working() {
    const EXPIRY: Duration = Duration::from_secs(2);
    let spec = usher::sim::RoomSpec {
        token_expiry: EXPIRY,
        ..room(lecture())
    };
    let sim = simulator(vec![spec]).await;
    let session = open_session(&sim, true).await;
    let keeper_stop = CancellationToken::new();
    let keeper = tokio::spawn(session.clone().keep_fresh(keeper_stop.clone()));
    let mut feed = Feed::start(session.clone());
    feed.connected().await;
    feed.roster().await;
    let bob = sim
        .conference(ROOM)
        .and_then(|c| c.find("Bob").map(|p| p.uuid.clone()))
        .expect("Bob is in the room");

    // Three token lifetimes and a bit: any token not refreshed in time would
    // have expired (and been answered with 403) well before the end.
    let started = Instant::now();
    let mut muted = false;
    let mut commands = 0;
    while started.elapsed() < EXPIRY * 3 + Duration::from_millis(300) {
        muted = !muted;
        let action = if muted {
            ParticipantCommand::Mute
        } else {
            ParticipantCommand::Unmute
        };
        let command = Command::participant(&bob, "Bob", action);
        let reply = session
            .send(&command)
            .await
            .unwrap_or_else(|err| panic!("`{command}` after {:?}: {err}", started.elapsed()));
        assert_eq!(reply, serde_json::json!(true), "`{command}`");
        let item = feed
            .next_matching(&format!("the update for `{command}`"), |item| {
                matches!(item, FeedItem::Event(event)
                    if matches!(event, Event::Participant(p) if p.uuid == bob))
                    || matches!(item, FeedItem::Disconnected { .. })
            })
            .await;
        match item {
            FeedItem::Event(event) => match event {
                Event::Participant(p) => assert_eq!(p.muted, muted, "`{command}`"),
                other => panic!("expected Bob's update, got {other:?}"),
            },
            other => panic!("the stream went down with a valid session: {other:?}"),
        }
        commands += 1;
        // Pacing, not waiting for a condition: spread commands over the run.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let stats = session.stats();
    assert!(
        stats.refreshes >= 3,
        "refreshed only {} times in {:?}",
        stats.refreshes,
        started.elapsed()
    );
    assert_eq!(stats.renewals, 0, "no session had to be renewed");
    assert_eq!(stats.late_refreshes, 0, "no refresh came after expiry");
    assert!(commands >= 10, "only {commands} commands were sent");
    let calls = sim.calls();
    let refused: Vec<_> = calls.iter().filter(|call| call.status == 403).collect();
    assert!(
        refused.is_empty(),
        "the simulator refused a token: {refused:?}"
    );
    assert_eq!(calls_to(&sim, "new_session").len(), 1);
    assert_eq!(
        calls_to(&sim, "refresh_session").len() as u64,
        stats.refreshes
    );
    assert_eq!(
        calls_to(&sim, "events").len(),
        1,
        "the stream stayed up across token changes"
    );
    assert_eq!(sim.active_sessions(ROOM), 1);

    keeper_stop.cancel();
    keeper.await.expect("the keeper ends when cancelled");
    feed.stop().await;
    sim.shutdown().await;
}

#[tokio::test]
async fn a_refused_token_renews_the_session_and_the_feed_resyncs_with_a_new_uuid() {
    let sim = simulator(vec![room(lecture())]).await;
    let session = open_session(&sim, true).await;
    let mut feed = Feed::start(session.clone());
    feed.connected().await;
    let first_uuid = session.participant_uuid();
    let mut state = RoomState::new();
    apply_all(&mut state, feed.roster().await);

    sim.fault(ROOM, Fault::ExpireTokens)
        .expect("the tokens expire");
    let lock = Command::Conference(ConferenceCommand::Lock);
    let reply = session
        .send(&lock)
        .await
        .expect("a command after a refused token succeeds once the session is renewed");
    assert_eq!(reply, serde_json::json!(true));
    assert!(
        sim.conference(ROOM).expect("the room").flags.locked,
        "the retried command took effect"
    );
    assert_eq!(session.stats().renewals, 1);
    let statuses = |path| -> Vec<u16> { calls_to(&sim, path).iter().map(|c| c.status).collect() };
    assert_eq!(
        statuses("lock"),
        [403, 200],
        "refused once, then sent once more"
    );
    assert_eq!(
        statuses("new_session"),
        [200, 200],
        "a second session was started"
    );

    feed.next_matching("the feed reconnecting", |item| {
        matches!(item, FeedItem::Connected)
    })
    .await;
    assert_ne!(
        session.participant_uuid(),
        first_uuid,
        "the new session has a new participant"
    );
    let changes = apply_all(&mut state, feed.roster().await);
    assert_eq!(
        describe(&changes),
        ["synced", "room locked=true guests_muted=false"],
        "nobody joined or left because we reconnected, and the lock sent \
         while the stream was down is learnt from the room's flags"
    );
    assert_eq!(roster(&state), sim_roster(&sim));
    assert_eq!(
        session.stats().renewals,
        1,
        "the feed and the command shared one renewal"
    );
    assert_eq!(sim.active_sessions(ROOM), 1);
    feed.stop().await;
    sim.shutdown().await;
}

#[tokio::test]
async fn a_wrong_pin_is_refused_with_a_clear_error_that_hides_the_pin() {
    let sim = simulator(vec![room(lecture())]).await;
    let wrong_pin = "97531";
    for pin in [Some(Secret::new(wrong_pin)), None] {
        let credentials = Credentials {
            pin: pin.clone(),
            ..credentials(true)
        };
        let err = match Session::open(room_client(&sim, &clients()), credentials).await {
            Ok(_) => panic!("a session opened with PIN {pin:?}"),
            Err(err) => err,
        };
        let ClientError::Forbidden { call, .. } = &err else {
            panic!("expected Forbidden, got {err:?}");
        };
        assert_eq!(*call, "new_session");
        let text = err.to_string();
        assert!(
            text.contains("PIN") && text.contains("refused"),
            "says the PIN was refused: {text}"
        );
        assert!(text.contains(ROOM), "names the room: {text}");
        for shown in [text, format!("{err:?}")] {
            assert!(
                !shown.contains(wrong_pin) && !shown.contains(PIN),
                "shows a PIN: {shown}"
            );
        }
    }
    assert_eq!(sim.active_sessions(ROOM), 0);
    sim.shutdown().await;
}

#[tokio::test]
async fn an_unknown_room_is_not_found() {
    let sim = simulator(vec![room(lecture())]).await;
    let client = RoomClient::new(&clients(), &sim.base_url(), "nowhere@usher.example");
    let err = match Session::open(client, credentials(true)).await {
        Ok(_) => panic!("a session opened in a room that does not exist"),
        Err(err) => err,
    };
    assert!(
        matches!(&err, ClientError::NotFound { call: "new_session", message }
            if message == "Neither conference nor gateway found"),
        "{err:?}"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn check_join_finds_a_node_that_serves_the_room() {
    let sim = simulator(vec![room(lecture())]).await;
    let clients = clients();
    let api_server = sim.base_url();
    let joined = check_join(
        clients.rest(),
        &api_server,
        ROOM,
        Some(&Secret::new(PIN)),
        USHER,
    )
    .await
    .expect("checkJoin accepts the right password");
    assert_eq!(joined.mcu_host, sim.addr().to_string());
    assert_eq!(joined.alias, ROOM);
    assert_eq!(joined.role_type, "host");

    let node = node_url(&api_server, &joined.mcu_host).expect("mcuHost makes a URL");
    assert_eq!(node, api_server, "the node is the simulator, over http");
    let session = Session::open(RoomClient::new(&clients, &node, ROOM), credentials(true))
        .await
        .expect("new_session works on the node checkJoin named");
    assert_eq!(sim.active_sessions(ROOM), 1);
    session.close().await;

    let wrong = "0000";
    let err = check_join(
        clients.rest(),
        &api_server,
        ROOM,
        Some(&Secret::new(wrong)),
        USHER,
    )
    .await
    .expect_err("a wrong password is refused");
    assert!(
        matches!(
            err,
            ClientError::Forbidden {
                call: "checkJoin",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains(ROOM), "names the room: {err}");
    assert!(
        !err.to_string().contains(wrong),
        "shows the password: {err}"
    );
    let err = check_join(clients.rest(), &api_server, "nowhere", None, USHER)
        .await
        .expect_err("an unknown conference is not found");
    assert!(
        matches!(
            err,
            ClientError::NotFound {
                call: "checkJoin",
                ..
            }
        ),
        "{err:?}"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn event_streams_also_travel_over_http2() {
    let sim = simulator(vec![room(lecture())]).await;
    let clients = clients_with(HttpOptions {
        stream_protocol: StreamProtocol::Http2,
        rooms: 200,
        ..HttpOptions::default()
    });
    let session = Session::open(room_client(&sim, &clients), credentials(true))
        .await
        .expect("a session opens");
    let mut feed = Feed::start(session.clone());
    feed.connected().await;
    let mut state = RoomState::new();
    apply_all(&mut state, feed.roster().await);
    assert_eq!(roster(&state), sim_roster(&sim));
    sim.step(ROOM, &Step::Join(Joiner::guest("Eve")))
        .expect("Eve joins");
    let FeedItem::Event(joined) = feed.next("Eve's participant_create").await else {
        panic!("expected an event");
    };
    assert_eq!(describe(&state.apply(joined)), ["joined Eve"]);
    feed.stop().await;
    sim.shutdown().await;
}
