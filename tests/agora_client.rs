//! The Agora adapter against the Agora simulator, over loopback: the real
//! REST client, the real webhook path (signed callbacks POSTed by the
//! simulator to a listener that hands them to the adapter), and the room
//! state the runtime builds from the adapter's feed.

mod common;

use std::time::Duration;

use common::agora::{Account, NAME, WEBHOOK_SECRET, create};
use common::{Feed, PATIENCE, describe, eventually};
use usher::model::{
    Change, Command, ConferenceCommand, Event, ParticipantCommand, Role, RoomState, Secret,
};
use usher::platform::agora::CAPABILITIES;
use usher::platform::agora::auth::signature_headers;
use usher::platform::agora::inferred::state;
use usher::platform::{
    ConnectError, Discovery, FeedItem, Platform, RoomAddress, SendOutcome, WebhookRequest,
};
use usher::sim::step::{Chat, Joiner, Step};
use usher::sim::{Fault, RoomSpec};

const ROOM: &str = "physics-101";

fn room(people: Vec<Joiner>) -> RoomSpec {
    RoomSpec {
        participants: people,
        ..RoomSpec::new(ROOM)
    }
}

fn join(account: &Account, name: &str) {
    account
        .sim
        .step(ROOM, &Step::Join(Joiner::guest(name)))
        .expect("the join is simulated");
}

fn uuid(account: &Account, name: &str) -> String {
    account
        .sim
        .conference(ROOM)
        .and_then(|room| room.find(name).map(|p| p.uuid.clone()))
        .unwrap_or_else(|| panic!("{name} is in the simulated room"))
}

/// Connects, checks the first listing is a baseline, and returns the
/// feed and the room state built from it.
async fn connected(account: &Account) -> (Feed, RoomState) {
    let mut feed = Feed::follow(account.connect(ROOM).await);
    feed.connected().await;
    let mut state = RoomState::new();
    let changes = common::apply_all(&mut state, feed.roster().await);
    assert_eq!(describe(&changes)[0], "synced (initial)", "{changes:?}");
    assert!(
        !changes.iter().any(|c| matches!(c, Change::Joined(_))),
        "the first listing is a baseline: {changes:?}"
    );
    (feed, state)
}

/// The changes the next event that changes something makes to `state`,
/// described. Resyncs are left out: whether a change arrives by its
/// callback or by a resync that overtook it is a race, and either is right.
async fn next_changes(feed: &mut Feed, state: &mut RoomState, what: &str) -> Vec<String> {
    loop {
        if let FeedItem::Event(event) = feed.next(what).await {
            let mut changes = describe(&state.apply(event));
            changes.retain(|change| change != "synced");
            if !changes.is_empty() {
                return changes;
            }
        }
    }
}

/// Asserts the next changes to `state` are exactly `expected`.
async fn expect_changes(feed: &mut Feed, state: &mut RoomState, expected: &[&str]) {
    let what = expected.join(", ");
    let mut seen = Vec::new();
    while seen.len() < expected.len() {
        seen.extend(next_changes(feed, state, &what).await);
    }
    assert_eq!(seen, expected);
}

fn mute(uuid: &str, name: &str) -> Command {
    Command::participant(uuid, name, ParticipantCommand::Mute)
}

#[tokio::test]
async fn the_first_listing_is_a_baseline_and_a_join_is_a_join() {
    let account = Account::start(
        "baseline",
        vec![room(vec![Joiner::host("Ada"), Joiner::guest("Bob")])],
        |_| {},
    )
    .await;
    let (mut feed, mut state) = connected(&account).await;
    assert_eq!(state.len(), 2);
    let ada = state
        .participants()
        .find(|p| p.display_name == "Ada")
        .unwrap();
    assert_eq!(ada.role, Role::Chair, "hosts are chairs");
    assert!(state.flags().started, "a running room has started");

    join(&account, "Cat");
    expect_changes(&mut feed, &mut state, &["joined Cat"]).await;
    account.sim.step(ROOM, &Step::Leave("Bob".into())).unwrap();
    expect_changes(&mut feed, &mut state, &["left Bob"]).await;
    account
        .sim
        .step(
            ROOM,
            &Step::Chat(Chat {
                from: "Cat".into(),
                text: "hello".into(),
            }),
        )
        .unwrap();
    let message = feed
        .next_matching("Cat's message", |item| {
            matches!(item, FeedItem::Event(Event::Message(_)))
        })
        .await;
    let FeedItem::Event(Event::Message(message)) = message else {
        unreachable!()
    };
    assert_eq!(
        (message.origin.as_str(), message.payload.as_str()),
        ("Cat", "hello")
    );
    assert_eq!(message.uuid, uuid(&account, "Cat"));
    feed.stop().await;
}

#[tokio::test]
async fn each_supported_command_has_its_effect_in_the_room_and_on_the_feed() {
    let mut account = Account::start(
        "commands",
        vec![room(vec![
            Joiner::host("Ada"),
            Joiner::guest("Bob"),
            Joiner::guest("Cat"),
        ])],
        |_| {},
    )
    .await;
    let link = account.connect(ROOM).await;
    let mut feed = Feed::follow(link.clone());
    feed.connected().await;
    let mut state = RoomState::new();
    common::apply_all(&mut state, feed.roster().await);
    let (bob, cat) = (uuid(&account, "Bob"), uuid(&account, "Cat"));

    assert_eq!(link.send(&mute(&bob, "Bob")).await, SendOutcome::Done);
    assert!(
        account
            .sim
            .conference(ROOM)
            .unwrap()
            .find("Bob")
            .unwrap()
            .muted
    );
    expect_changes(&mut feed, &mut state, &["updated Bob"]).await;
    assert!(state.participant(&bob).unwrap().muted);

    let kick = Command::participant(&cat, "Cat", ParticipantCommand::Disconnect);
    assert_eq!(link.send(&kick).await, SendOutcome::Done);
    assert!(account.sim.conference(ROOM).unwrap().find("Cat").is_none());
    expect_changes(&mut feed, &mut state, &["left Cat"]).await;
    let back = account.sim.step(ROOM, &Step::Join(Joiner::guest("Cat")));
    assert!(
        back.is_err(),
        "a removed user may not come straight back: {back:?}"
    );

    let end = Command::Conference(ConferenceCommand::Disconnect);
    assert_eq!(link.send(&end).await, SendOutcome::Done);
    assert_eq!(account.sim.room_state(ROOM), Some(state::CLOSED));
    let mut gone = next_changes(&mut feed, &mut state, "everyone gone").await;
    gone.sort();
    assert_eq!(gone, ["left Ada", "left Bob"], "they were seated at once");
    let disconnected = feed
        .next_matching("the meeting's end", |item| {
            matches!(item, FeedItem::Event(Event::Disconnected { .. }))
        })
        .await;
    assert!(matches!(disconnected, FeedItem::Event(_)));
    assert!(
        account
            .sim
            .conference(ROOM)
            .unwrap()
            .participants
            .is_empty()
    );
    assert!(matches!(account.discovery().await, Discovery::Started(_)));
    assert_eq!(
        account.discovery().await,
        Discovery::Ended {
            platform: NAME.to_owned(),
            alias: ROOM.to_owned()
        }
    );
    assert_eq!(
        link.send(&end).await,
        SendOutcome::Done,
        "ending an ended room is done"
    );
    feed.stop().await;
}

#[tokio::test]
async fn what_agora_cannot_do_is_unsupported_and_never_sent() {
    let account = Account::start(
        "unsupported",
        vec![room(vec![Joiner::guest("Bob")])],
        |_| {},
    )
    .await;
    let link = account.connect(ROOM).await;
    let bob = uuid(&account, "Bob");
    let before = account.sim.calls().len();
    for command in [
        Command::Conference(ConferenceCommand::Lock),
        Command::Conference(ConferenceCommand::MuteGuests),
        Command::participant(&bob, "Bob", ParticipantCommand::Unmute),
        Command::participant(&bob, "Bob", ParticipantCommand::SpotlightOn),
        Command::participant(&bob, "Bob", ParticipantCommand::Admit),
    ] {
        assert!(!CAPABILITIES.supports(&command), "{command}");
        assert!(
            matches!(link.send(&command).await, SendOutcome::Unsupported(_)),
            "{command}"
        );
    }
    assert_eq!(account.sim.calls().len(), before, "nothing was sent");
    assert_eq!(
        account.platform.capabilities().verbs().collect::<Vec<_>>(),
        ["end", "disconnect", "mute", "ban"]
    );
}

#[tokio::test]
async fn missed_callbacks_resync_without_false_joins_or_leaves() {
    let account = Account::start(
        "gaps",
        vec![room(vec![Joiner::host("Ada"), Joiner::guest("Bob")])],
        |_| {},
    )
    .await;
    let (mut feed, mut state) = connected(&account).await;

    // Bob's leave is lost; Cat's join arrives ahead of the gap and is held.
    account
        .sim
        .fault(ROOM, Fault::DropCallbacks { count: 1 })
        .unwrap();
    account.sim.step(ROOM, &Step::Leave("Bob".into())).unwrap();
    join(&account, "Cat");
    expect_changes(&mut feed, &mut state, &["joined Cat", "left Bob"]).await;
    assert_eq!(common::roster(&state).len(), 2, "Ada and Cat");

    // Reordered and duplicated callbacks are applied once, in order.
    account
        .sim
        .fault(ROOM, Fault::ReorderCallbacks { count: 1 })
        .unwrap();
    account
        .sim
        .fault(ROOM, Fault::DuplicateCallbacks { count: 3 })
        .unwrap();
    join(&account, "Dan");
    account.sim.step(ROOM, &Step::Leave("Dan".into())).unwrap();
    join(&account, "Eve");
    expect_changes(
        &mut feed,
        &mut state,
        &["joined Dan", "left Dan", "joined Eve"],
    )
    .await;
    for text in ["one", "two"] {
        account
            .sim
            .fault(ROOM, Fault::DuplicateCallbacks { count: 1 })
            .unwrap();
        account
            .sim
            .step(
                ROOM,
                &Step::Chat(Chat {
                    from: "Eve".into(),
                    text: text.into(),
                }),
            )
            .unwrap();
    }
    let mut messages = Vec::new();
    while messages.len() < 2 {
        if let FeedItem::Event(Event::Message(message)) = feed.next("two messages").await {
            messages.push(message.payload);
        }
    }
    assert_eq!(messages, ["one", "two"]);
    join(&account, "Fay");
    assert_eq!(
        next_changes(&mut feed, &mut state, "Fay's join").await,
        ["joined Fay"],
        "no duplicate message came before it"
    );
    feed.stop().await;
}

#[tokio::test]
async fn callbacks_that_are_not_authentic_are_refused_and_change_nothing() {
    let account = Account::start("forged", vec![room(vec![Joiner::guest("Bob")])], |_| {}).await;
    let (mut feed, mut state) = connected(&account).await;
    let forged = serde_json::json!({"roomUuid": ROOM, "cmd": 20, "sequence": 999, "version": 1, "ts": 0,
        "data": {"onlineUsers": [{"userUuid": "mallory", "userName": "Mallory", "role": "host"}]}});
    let body = serde_json::to_vec(&forged).unwrap();
    let client = reqwest::Client::new();
    let unsigned = client
        .post(account.hooks.url())
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), 401);
    let mut wrong = client.post(account.hooks.url()).body(body.clone());
    for (name, value) in signature_headers(&Secret::new("guessed"), &body) {
        wrong = wrong.header(name, value);
    }
    assert_eq!(wrong.send().await.unwrap().status(), 401);
    assert_eq!(account.platform.webhook_stats().refused, 2);

    // A badly signed delivery from the platform is refused, then accepted
    // when it is sent again signed right: the join arrives exactly once.
    account
        .sim
        .fault(ROOM, Fault::BadSignatures { count: 1 })
        .unwrap();
    join(&account, "Cat");
    expect_changes(&mut feed, &mut state, &["joined Cat"]).await;
    assert_eq!(account.platform.webhook_stats().refused, 3);
    assert_eq!(account.sim.deliveries().refused, 1);
    assert!(state.participants().all(|p| p.display_name != "Mallory"));

    // Authentic but unreadable: 400, counted, nothing happens.
    let garbage = b"{\"roomUuid\": ".to_vec();
    let reply = account.platform.webhook(signed(&garbage)).await;
    assert_eq!(reply.status, 400);
    let no_sequence = signed(br#"{"roomUuid":"physics-101","cmd":20,"data":{}}"#);
    assert_eq!(account.platform.webhook(no_sequence).await.status, 400);
    assert_eq!(account.platform.webhook_stats().malformed, 2);
    let unrouted = account.platform.webhook_stats().unrouted;
    let elsewhere = signed(br#"{"roomUuid":"other","cmd":1,"sequence":1,"data":{"state":3}}"#);
    assert_eq!(account.platform.webhook(elsewhere).await.status, 200);
    assert_eq!(account.platform.webhook_stats().unrouted, unrouted + 1);
    join(&account, "Dan");
    expect_changes(&mut feed, &mut state, &["joined Dan"]).await;
    feed.stop().await;
}

fn signed(body: &[u8]) -> WebhookRequest {
    let mut headers = axum::http::HeaderMap::new();
    for (name, value) in signature_headers(&Secret::new(WEBHOOK_SECRET), body) {
        headers.insert(name, value.parse().unwrap());
    }
    WebhookRequest {
        query: String::new(),
        headers,
        body: bytes::Bytes::copy_from_slice(body),
    }
}

#[tokio::test]
async fn an_expired_token_is_read_again_and_the_command_retried() {
    let account = Account::start("token", vec![room(vec![Joiner::guest("Bob")])], |_| {}).await;
    let link = account.connect(ROOM).await;
    let bob = uuid(&account, "Bob");
    let first = std::fs::read_to_string(&account.token_file).unwrap();
    let before = account.sim.calls().len();
    account.sim.fault(ROOM, Fault::ExpireTokens).unwrap();
    assert_ne!(std::fs::read_to_string(&account.token_file).unwrap(), first);
    // Nothing was followed yet, so the mute first looks Bob's stream up.
    assert_eq!(link.send(&mute(&bob, "Bob")).await, SendOutcome::Done);
    assert_eq!(link.stats().renewals, 1);
    let calls: Vec<(String, u16)> = account.sim.calls()[before..]
        .iter()
        .map(|call| (call.path.clone(), call.status))
        .collect();
    assert_eq!(
        calls,
        [
            ("users".to_owned(), 401),
            ("users".to_owned(), 200),
            ("streams".to_owned(), 200)
        ]
    );
    assert!(
        account
            .sim
            .conference(ROOM)
            .unwrap()
            .find("Bob")
            .unwrap()
            .muted
    );
    // A token nobody renewed is refused for good.
    std::fs::write(&account.token_file, "tok-stale\n").unwrap();
    account.sim.fault(ROOM, Fault::ExpireTokens).unwrap();
    std::fs::write(&account.token_file, "tok-stale\n").unwrap();
    let refused = link.send(&mute(&bob, "Bob")).await;
    assert!(
        matches!(&refused, SendOutcome::Refused(why) if why.contains("401")),
        "{refused:?}"
    );
}

#[tokio::test]
async fn rate_limits_and_server_errors_are_retryable() {
    let account = Account::start("retry", vec![room(vec![Joiner::guest("Bob")])], |_| {}).await;
    let link = account.connect(ROOM).await;
    let bob = uuid(&account, "Bob");
    account
        .sim
        .fault(
            ROOM,
            Fault::FailCommands {
                count: 1,
                status: 429,
            },
        )
        .unwrap();
    assert_eq!(
        link.send(&mute(&bob, "Bob")).await,
        SendOutcome::Retryable {
            reason: "update streams: HTTP 429, code 429: simulated failure".to_owned(),
            retry_after: Some(Duration::from_secs(1)),
        }
    );
    account
        .sim
        .fault(
            ROOM,
            Fault::FailCommands {
                count: 1,
                status: 503,
            },
        )
        .unwrap();
    assert!(matches!(
        link.send(&mute(&bob, "Bob")).await,
        SendOutcome::Retryable {
            retry_after: None,
            ..
        }
    ));
    assert_eq!(link.send(&mute(&bob, "Bob")).await, SendOutcome::Done);
    let gone = Command::participant("nobody", "Nobody", ParticipantCommand::Disconnect);
    assert!(
        matches!(link.send(&gone).await, SendOutcome::Refused(why) if why.contains("not found"))
    );
}

#[tokio::test]
async fn usher_creates_its_room_and_follows_it_to_the_close() {
    let mut account = Account::start("create", Vec::new(), |config| {
        config
            .create
            .insert(ROOM.to_owned(), create("Physics 101", Some(1), Some(1)));
    })
    .await;
    let link = account.connect(ROOM).await;
    let Discovery::Started(found) = account.discovery().await else {
        panic!("a discovery")
    };
    assert_eq!(
        (found.alias.as_str(), found.title.as_str()),
        (ROOM, "Physics 101")
    );
    let schedule = found.schedule.expect("the schedule");
    assert_eq!(schedule.end, Some(schedule.start + 1.0));
    let created = account
        .sim
        .calls()
        .into_iter()
        .find(|call| call.method == "POST" && call.path.is_empty())
        .expect("the create call");
    assert_eq!(created.status, 200);

    let mut feed = Feed::follow(link);
    feed.connected().await;
    let mut state = RoomState::new();
    common::apply_all(&mut state, feed.roster().await);
    join(&account, "Ada");
    expect_changes(&mut feed, &mut state, &["joined Ada"]).await;
    // One second in, the room ends; a second later it closes and ejects.
    let closed = feed
        .next_matching("the room closing", |item| {
            matches!(item, FeedItem::Event(Event::Disconnected { .. }))
        })
        .await;
    assert!(matches!(closed, FeedItem::Event(_)));
    assert_eq!(account.sim.room_state(ROOM), Some(state::CLOSED));
    assert!(account.sim.users(ROOM).is_empty());
    assert!(
        account
            .sim
            .step(ROOM, &Step::Join(Joiner::guest("Late")))
            .is_err()
    );

    // A restarted usher finds the room made and watches it.
    let (again, _found) = common::agora::build(
        &{
            let mut config = usher::platform::agora::AgoraConfig::at(account.sim.base_url(), "cn");
            config.app_id = Some(usher::config::SecretSource::Literal(Secret::new(
                common::agora::APP_ID,
            )));
            config.token_file = Some(account.token_file.clone());
            config
                .create
                .insert(ROOM.to_owned(), create("Physics 101", Some(1), Some(1)));
            config
        },
        &account.hooks,
    );
    again
        .connect(&RoomAddress {
            alias: ROOM.to_owned(),
            pin: None,
        })
        .await
        .expect("an existing room connects");
    let statuses: Vec<u16> = account
        .sim
        .calls()
        .iter()
        .filter(|call| call.method == "POST" && call.path.is_empty())
        .map(|call| call.status)
        .collect();
    assert_eq!(statuses, [200, 409]);
    feed.stop().await;
}

#[tokio::test]
async fn rooms_that_do_not_exist_or_refuse_us_do_not_connect() {
    let account = Account::start("connect", vec![room(Vec::new())], |_| {}).await;
    let missing = account
        .platform
        .connect(&RoomAddress {
            alias: "nowhere".to_owned(),
            pin: None,
        })
        .await;
    assert!(
        matches!(missing, Err(ConnectError::NotFound(_))),
        "{:?}",
        missing.err()
    );
    std::fs::write(&account.token_file, "tok-wrong\n").unwrap();
    account.sim.fault(ROOM, Fault::ExpireTokens).unwrap();
    std::fs::write(&account.token_file, "tok-wrong\n").unwrap();
    let refused = account
        .platform
        .connect(&RoomAddress {
            alias: ROOM.to_owned(),
            pin: None,
        })
        .await;
    let Err(ConnectError::Refused(why)) = refused else {
        panic!("{:?}", refused.err())
    };
    assert!(!why.contains("tok-"), "no token in errors: {why}");
    assert!(
        !why.contains(common::agora::APP_ID),
        "no App ID in errors: {why}"
    );
}

#[tokio::test]
async fn a_room_closing_on_schedule_ejects_everyone_into_the_feed() {
    let account = Account::start("schedule", Vec::new(), |_| {}).await;
    let now_ms = (usher::clock::unix_now() * 1000.0) as u64;
    account.sim.add_scheduled_room(
        ROOM,
        "Chemistry",
        usher::platform::agora::wire::ScheduleWire {
            start_time: Some(now_ms + 600),
            duration: Some(1),
            close_delay: Some(1),
        },
        usher::platform::agora::wire::WebhookConfig {
            urls: vec![account.hooks.url().to_string()],
            cmds: vec![1.into(), 3.into(), 20.into()],
        },
    );
    join(&account, "Ada");
    let (mut feed, mut state) = connected(&account).await;
    assert!(!state.flags().started, "not started yet");
    assert_eq!(state.len(), 1, "people may enter before the start");
    let started = next_changes(&mut feed, &mut state, "the start").await;
    assert!(started[0].starts_with("room "), "{started:?}");
    assert!(state.flags().started);
    eventually(PATIENCE, "the room to close", async || {
        account.sim.room_state(ROOM) == Some(state::CLOSED)
    })
    .await;
    let mut changes = Vec::new();
    while !changes.iter().any(|c: &String| c.contains("Disconnected")) {
        changes.extend(next_changes(&mut feed, &mut state, "the close").await);
    }
    assert!(changes.contains(&"left Ada".to_owned()), "{changes:?}");
    assert_eq!(state.len(), 0);
    feed.stop().await;
}

#[tokio::test]
async fn reconciles_that_change_nothing_are_not_reported_and_a_close_is_reported_once() {
    let account = Account::start("quiet", vec![room(vec![Joiner::host("Ada")])], |config| {
        config.reconcile = usher::model::Span(Duration::from_millis(100))
    })
    .await;
    let (mut feed, mut state) = connected(&account).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let listings = account
        .sim
        .calls()
        .iter()
        .filter(|call| call.path == "users")
        .count();
    assert!(
        listings >= 4,
        "the room was reconciled: {listings} listings"
    );
    join(&account, "Bob");
    // Bob comes by his callback, or by a reconcile while the first
    // callback waits out its window; nothing comes before him.
    match feed.next("Bob's join").await {
        FeedItem::Event(Event::Participant(bob)) => assert_eq!(bob.display_name, "Bob"),
        FeedItem::Event(Event::Roster(listing)) => {
            assert!(
                listing.iter().any(|p| p.display_name == "Bob"),
                "{listing:?}"
            )
        }
        other => panic!("nothing before Bob's join, but {other:?}"),
    }
    // Closed by a host elsewhere: reported once, though every reconcile
    // finds it closed again.
    let end = Command::Conference(ConferenceCommand::Disconnect);
    let link = account.connect(ROOM).await;
    assert_eq!(link.send(&end).await, SendOutcome::Done);
    let mut closes = 0;
    let quiet_after = tokio::time::Instant::now() + Duration::from_millis(800);
    while tokio::time::Instant::now() < quiet_after {
        if let Ok(FeedItem::Event(event)) =
            tokio::time::timeout(Duration::from_millis(100), feed.next("the close")).await
        {
            closes += usize::from(matches!(event, Event::Disconnected { .. }));
            state.apply(event);
        }
    }
    assert_eq!(closes, 1);
    assert_eq!(state.len(), 0);
}
