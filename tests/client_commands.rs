//! Every command of the seed API sent through the real client to the real
//! simulator, each observed as the reply and the events it causes on the
//! room's event feed; and failed commands coming back as typed errors that
//! never show the token.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use common::{
    Feed, PIN, ROOM, apply_all, calls_to, clients_with, credentials, open_session, room, roster,
    sim_roster, simulator,
};
use usher::model::{
    CallRequest, Command, ConferenceCommand, Dial, Event, FlagsUpdate, LayoutOverride, Message,
    Participant, ParticipantCommand, Role, RoomState, RxPresentationPolicy, Secret, ServiceType,
    Span,
};
use usher::platform::FeedItem;
use usher::platform::http::HttpOptions;
use usher::platform::vmr::events::StreamEnd;
use usher::platform::vmr::wire::NewSessionRequest;
use usher::platform::vmr::{ClientError, RoomClient, Session};
use usher::sim::step::{Chat, Joiner, Step};
use usher::sim::{ConferenceSnapshot, Fault, Simulator};

/// Who is in the room for the round trips. Mo is a host no command touches:
/// his chat marks the end of each command's events.
fn audience() -> Vec<Joiner> {
    ["Bob", "Cat", "Dan", "Eve"]
        .into_iter()
        .map(Joiner::guest)
        .chain([Joiner::host("Ada"), Joiner::host("Mo")])
        .collect()
}

/// The name of a command's variant. The matches are exhaustive on purpose:
/// a new command variant does not compile here until the round-trip test
/// covers it.
fn variant(command: &Command) -> &'static str {
    match command {
        Command::Conference(command) => match command {
            ConferenceCommand::Dial(_) => "Dial",
            ConferenceCommand::Lock => "Lock",
            ConferenceCommand::Unlock => "Unlock",
            ConferenceCommand::StartService => "StartService",
            ConferenceCommand::MuteGuests => "MuteGuests",
            ConferenceCommand::UnmuteGuests => "UnmuteGuests",
            ConferenceCommand::Disconnect => "Disconnect (conference)",
            ConferenceCommand::Message(_) => "Message",
            ConferenceCommand::OverrideLayout(_) => "OverrideLayout",
        },
        Command::Participant { action, .. } => match action {
            ParticipantCommand::Disconnect => "Disconnect (participant)",
            ParticipantCommand::Mute => "Mute",
            ParticipantCommand::Unmute => "Unmute",
            ParticipantCommand::AllowRxPresentation => "AllowRxPresentation",
            ParticipantCommand::DenyRxPresentation => "DenyRxPresentation",
            ParticipantCommand::SpotlightOn => "SpotlightOn",
            ParticipantCommand::SpotlightOff => "SpotlightOff",
            ParticipantCommand::Admit => "Admit",
            ParticipantCommand::Dtmf { .. } => "Dtmf",
            ParticipantCommand::SetRole(_) => "SetRole",
            ParticipantCommand::Transfer(_) => "Transfer",
            ParticipantCommand::Calls(_) => "Calls",
            ParticipantCommand::VideoMute => "VideoMute",
            ParticipantCommand::VideoUnmute => "VideoUnmute",
            ParticipantCommand::CancelDelay => "CancelDelay",
            ParticipantCommand::ResumeDelay => "ResumeDelay",
            ParticipantCommand::Ban { .. } => {
                unreachable!("seed 001 has no ban call: the vmr link answers it as unsupported")
            }
        },
    }
}

const EVERY_VARIANT: [&str; 25] = [
    "Dial",
    "Lock",
    "Unlock",
    "StartService",
    "MuteGuests",
    "UnmuteGuests",
    "Disconnect (conference)",
    "Message",
    "OverrideLayout",
    "Disconnect (participant)",
    "Mute",
    "Unmute",
    "AllowRxPresentation",
    "DenyRxPresentation",
    "SpotlightOn",
    "SpotlightOff",
    "Admit",
    "Dtmf",
    "SetRole",
    "Transfer",
    "Calls",
    "VideoMute",
    "VideoUnmute",
    "CancelDelay",
    "ResumeDelay",
];

/// What one command did: its reply, the events it caused, and the room
/// before and after.
struct Outcome {
    reply: Value,
    events: Vec<Event>,
    before: ConferenceSnapshot,
    after: ConferenceSnapshot,
}

/// Checks an outcome; `Err` says what is wrong.
type Check = Box<dyn Fn(&Outcome) -> Result<(), String>>;

/// A check written in place.
fn check(holds: impl Fn(&Outcome) -> Result<(), String> + 'static) -> Check {
    Box::new(holds)
}

fn ensure(condition: bool, problem: impl FnOnce() -> String) -> Result<(), String> {
    if condition { Ok(()) } else { Err(problem()) }
}

fn replied_true(outcome: &Outcome) -> Result<(), String> {
    ensure(outcome.reply == json!(true), || {
        format!("replied {} instead of true", outcome.reply)
    })
}

/// Replies `true` and causes exactly one `participant_update` of `uuid` in
/// which `what` holds.
fn updates(uuid: &str, what: &'static str, holds: fn(&Participant) -> bool) -> Check {
    let uuid = uuid.to_owned();
    Box::new(move |outcome| {
        replied_true(outcome)?;
        match &outcome.events[..] {
            [Event::Participant(p)] if p.uuid == uuid => {
                ensure(holds(p), || format!("the update does not show {what}"))
            }
            other => Err(format!(
                "expected one participant_update ({what}), got {other:?}"
            )),
        }
    })
}

/// Replies `true` and causes exactly one `participant_delete` of `uuid`.
fn deletes(uuid: &str) -> Check {
    let uuid = uuid.to_owned();
    Box::new(move |outcome| {
        replied_true(outcome)?;
        let expected = [Event::ParticipantLeft { uuid: uuid.clone() }];
        ensure(outcome.events == expected, || {
            format!("expected {expected:?}, got {:?}", outcome.events)
        })?;
        ensure(
            outcome.after.participants.iter().all(|p| p.uuid != uuid),
            || "the participant is still in the room".to_owned(),
        )
    })
}

/// Replies `true` and causes exactly one `service_update` in which `what` holds.
fn service_update(what: &'static str, holds: fn(&FlagsUpdate) -> bool) -> Check {
    Box::new(move |outcome| {
        replied_true(outcome)?;
        match &outcome.events[..] {
            [Event::RoomUpdate(flags)] => {
                ensure(holds(flags), || format!("the update does not show {what}"))
            }
            other => Err(format!(
                "expected one service_update ({what}), got {other:?}"
            )),
        }
    })
}

/// Replies `true`, causes no event and changes nobody.
fn quiet() -> Check {
    Box::new(|outcome| {
        replied_true(outcome)?;
        ensure(outcome.events.is_empty(), || {
            format!("expected no events, got {:?}", outcome.events)
        })?;
        ensure(outcome.before == outcome.after, || {
            "the room changed".to_owned()
        })
    })
}

/// `muteguests`/`unmuteguests`: a `service_update`, then an update for every
/// guest whose mute changes, and nothing for hosts.
fn guests_muted(muted: bool) -> Check {
    Box::new(move |outcome| {
        replied_true(outcome)?;
        let Some((Event::RoomUpdate(flags), updates)) = outcome.events.split_first() else {
            return Err(format!(
                "expected a service_update first, got {:?}",
                outcome.events
            ));
        };
        ensure(flags.guests_muted == Some(muted), || {
            format!(
                "the service_update says guests_muted {:?}",
                flags.guests_muted
            )
        })?;
        let expected: BTreeSet<&str> = outcome
            .before
            .participants
            .iter()
            .filter(|p| p.is_guest() && p.muted != muted)
            .map(|p| p.uuid.as_str())
            .collect();
        let mut updated = BTreeSet::new();
        for event in updates {
            match event {
                Event::Participant(p) if p.is_guest() && p.muted == muted => {
                    updated.insert(p.uuid.as_str());
                }
                other => return Err(format!("unexpected {other:?}")),
            }
        }
        ensure(expected.len() >= 2 && updated == expected, || {
            format!("updated guests {updated:?}, expected {expected:?}")
        })
    })
}

/// Everything the round-trip test needs: the room, our session and its feed,
/// and the room state built from what the feed delivered.
struct Harness {
    sim: Simulator,
    session: Arc<Session>,
    feed: Feed,
    state: RoomState,
    markers: usize,
    covered: BTreeSet<&'static str>,
}

impl Harness {
    fn uuid(&self, name: &str) -> String {
        self.snapshot()
            .find(name)
            .map(|p| p.uuid.clone())
            .unwrap_or_else(|| panic!("{name} is not in the room"))
    }

    fn snapshot(&self) -> ConferenceSnapshot {
        self.sim.conference(ROOM).expect("the room is simulated")
    }

    /// Sends `command`, then has Mo chat a marker: events arrive in order, so
    /// everything before the marker is what the command caused.
    async fn round_trip(&mut self, command: &Command) -> Outcome {
        self.covered.insert(variant(command));
        let before = self.snapshot();
        let reply = self
            .session
            .send(command)
            .await
            .unwrap_or_else(|err| panic!("`{command}` failed: {err}"));
        self.markers += 1;
        let marker = format!("marker {}", self.markers);
        let chat = Step::Chat(Chat {
            from: "Mo".into(),
            text: marker.clone(),
        });
        self.sim.step(ROOM, &chat).expect("Mo chats");
        let items = self
            .feed
            .until(
                &format!("the events of `{command}`"),
                |item| matches!(item, FeedItem::Event(event) if matches!(event, Event::Message(m) if m.payload == marker)),
            )
            .await;
        let mut events: Vec<Event> = items
            .into_iter()
            .map(|item| match item {
                FeedItem::Event(event) => event,
                other => panic!("`{command}`: the feed reported {other:?}"),
            })
            .collect();
        apply_all(&mut self.state, events.iter().cloned());
        events.pop();
        Outcome {
            reply,
            events,
            before,
            after: self.snapshot(),
        }
    }

    /// Runs a command and its check; a failure names the command.
    async fn expect(&mut self, command: Command, check: Check) {
        let outcome = self.round_trip(&command).await;
        if let Err(problem) = check(&outcome) {
            panic!(
                "`{command}` ({}): {problem}\n  reply: {}\n  events: {:?}",
                variant(&command),
                outcome.reply,
                outcome.events
            );
        }
        assert_eq!(
            roster(&self.state),
            sim_roster(&self.sim),
            "`{command}`: the room state follows the simulator"
        );
        assert_eq!(
            self.state.flags(),
            outcome.after.flags,
            "`{command}`: the room state has the simulator's flags"
        );
    }
}

fn on(uuid: &str, name: &str, action: ParticipantCommand) -> Command {
    Command::participant(uuid, name, action)
}

fn conference(command: ConferenceCommand) -> Command {
    Command::Conference(command)
}

#[tokio::test]
async fn every_command_is_answered_and_observed_as_the_events_it_causes() {
    let sim = simulator(vec![room(audience())]).await;
    sim.step(ROOM, &Step::WaitingRoom(Joiner::guest("Wanda")))
        .expect("Wanda waits");
    let session = open_session(&sim, true).await;
    let mut feed = Feed::start(session.clone());
    let mut state = RoomState::new();
    feed.connected().await;
    apply_all(&mut state, feed.roster().await);
    let mut h = Harness {
        sim,
        session,
        feed,
        state,
        markers: 0,
        covered: BTreeSet::new(),
    };
    let [bob, cat, dan, eve, wanda] = ["Bob", "Cat", "Dan", "Eve", "Wanda"].map(|n| h.uuid(n));

    // Participant commands that change someone.
    use ParticipantCommand as P;
    let cases: Vec<(Command, Check)> = vec![
        (
            on(&bob, "Bob", P::Mute),
            updates(&bob, "muted", |p| p.muted),
        ),
        (
            on(&bob, "Bob", P::Unmute),
            updates(&bob, "unmuted", |p| !p.muted),
        ),
        (
            on(&bob, "Bob", P::DenyRxPresentation),
            updates(&bob, "presentation denied", |p| {
                p.rx_presentation_policy == RxPresentationPolicy::Deny
            }),
        ),
        (
            on(&bob, "Bob", P::AllowRxPresentation),
            updates(&bob, "presentation allowed", |p| {
                p.rx_presentation_policy == RxPresentationPolicy::Allow
            }),
        ),
        (
            on(&cat, "Cat", P::SpotlightOn),
            updates(&cat, "a spotlight time", |p| p.spotlight > 0.0),
        ),
        (
            on(&cat, "Cat", P::SpotlightOff),
            updates(&cat, "no spotlight", |p| p.spotlight == 0.0),
        ),
        (
            on(&cat, "Cat", P::VideoMute),
            updates(&cat, "video muted", |p| p.video_muted),
        ),
        (
            on(&cat, "Cat", P::VideoUnmute),
            updates(&cat, "video unmuted", |p| !p.video_muted),
        ),
        (
            on(&cat, "Cat", P::SetRole(Role::Chair)),
            updates(&cat, "role chair", |p| p.role == Role::Chair),
        ),
        (
            on(&wanda, "Wanda", P::Admit),
            updates(&wanda, "Wanda in the conference", |p| {
                p.service_type == ServiceType::Conference
            }),
        ),
        // Participant commands that change nobody.
        (
            on(
                &bob,
                "Bob",
                P::Dtmf {
                    digits: "1234#".into(),
                },
            ),
            quiet(),
        ),
        (on(&bob, "Bob", P::CancelDelay), quiet()),
        (on(&bob, "Bob", P::ResumeDelay), quiet()),
        (
            on(
                &bob,
                "Bob",
                P::Calls(CallRequest {
                    call_type: "RTMP".into(),
                    sdp: None,
                    present: Some("send".into()),
                    streaming: Some(true),
                    bandwidth: Some(1024),
                }),
            ),
            check(|outcome| {
                let call = outcome.reply["call_uuid"].as_str().unwrap_or_default();
                ensure(call.len() == 36, || "no call_uuid in the reply".to_owned())?;
                let url = outcome.reply["url"].as_str().unwrap_or_default();
                ensure(url.starts_with("rtmp://") && url.ends_with(call), || {
                    format!("the RTMP url {url:?} does not name the call")
                })?;
                ensure(
                    outcome.events.is_empty() && outcome.before == outcome.after,
                    || "adding a call changed the roster".to_owned(),
                )
            }),
        ),
        // Participant commands that remove someone.
        (on(&dan, "Dan", P::Disconnect), deletes(&dan)),
        (
            on(
                &eve,
                "Eve",
                P::Transfer(usher::model::Transfer {
                    conference_alias: "overflow@usher.example".into(),
                    role: Role::Guest,
                    pin: Some(Secret::new("1357")),
                }),
            ),
            deletes(&eve),
        ),
        // Conference commands.
        (
            conference(ConferenceCommand::Lock),
            service_update("locked", |f| f.locked == Some(true)),
        ),
        (
            conference(ConferenceCommand::Unlock),
            service_update("unlocked", |f| f.locked == Some(false)),
        ),
        (
            conference(ConferenceCommand::StartService),
            service_update("started", |f| f.started == Some(true)),
        ),
        (
            conference(ConferenceCommand::MuteGuests),
            guests_muted(true),
        ),
        (
            conference(ConferenceCommand::UnmuteGuests),
            guests_muted(false),
        ),
        (
            conference(ConferenceCommand::OverrideLayout(vec![
                LayoutOverride::new("hosts", "2:21"),
                LayoutOverride::new("", "1:7"),
            ])),
            check(|outcome| {
                replied_true(outcome)?;
                match &outcome.events[..] {
                    [Event::Layout(layout)] => ensure(layout.view == "1:7", || {
                        format!("the guests' layout is {:?}, not 1:7", layout.view)
                    }),
                    other => Err(format!("expected one layout event, got {other:?}")),
                }
            }),
        ),
    ];
    for (command, expected) in cases {
        h.expect(command, expected).await;
    }

    // A message comes back as chat from our own participant, which the feed
    // leaves out: rules never hear their own messages.
    let message = conference(ConferenceCommand::Message(Message::text("Welcome!")));
    let outcome = h.round_trip(&message).await;
    replied_true(&outcome).unwrap_or_else(|problem| panic!("`{message}`: {problem}"));
    assert!(
        !outcome
            .events
            .iter()
            .any(|event| matches!(event, Event::Message(_))),
        "`{message}`: our own chat is not reported: {:?}",
        outcome.events
    );

    // Dial: the reply names the new participant, who appears connecting and
    // is then connected.
    let dial = conference(ConferenceCommand::Dial(Box::new(Dial {
        remote_display_name: Some("Zoe".into()),
        ..Dial::new("zoe@example.com", "sip")
    })));
    let outcome = h.round_trip(&dial).await;
    let uuids: Vec<&str> = outcome
        .reply
        .as_array()
        .map(|uuids| uuids.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let [zoe] = uuids[..] else {
        panic!("`{dial}`: the reply {} is not one uuid", outcome.reply);
    };
    match &outcome.events[..] {
        [Event::Participant(created), Event::Participant(connected)] => {
            assert_eq!(created.uuid, zoe, "`{dial}`: created the dialled uuid");
            assert_eq!(created.service_type, ServiceType::Connecting, "`{dial}`");
            assert_eq!(created.display_name, "Zoe", "`{dial}`");
            assert_eq!(created.uri, "zoe@example.com", "`{dial}`");
            assert_eq!(created.protocol, "sip", "`{dial}`");
            assert_eq!(connected.uuid, zoe, "`{dial}`");
            assert_eq!(connected.service_type, ServiceType::Conference, "`{dial}`");
        }
        other => panic!("`{dial}`: expected a create and an update, got {other:?}"),
    }
    assert_eq!(roster(&h.state), sim_roster(&h.sim), "`{dial}`");

    // Ending the conference deletes everyone, then disconnects us.
    let end = conference(ConferenceCommand::Disconnect);
    h.covered.insert(variant(&end));
    let everyone: Vec<Event> = h
        .snapshot()
        .participants
        .iter()
        .map(|p| Event::ParticipantLeft {
            uuid: p.uuid.clone(),
        })
        .collect();
    assert_eq!(everyone.len(), 6, "Bob, Cat, Ada, Mo, Wanda and Zoe are in");
    let reply = h
        .session
        .send(&end)
        .await
        .unwrap_or_else(|err| panic!("`{end}` failed: {err}"));
    assert_eq!(reply, json!(true), "`{end}`");
    let items = h
        .feed
        .until(
            "our own disconnect",
            |item| matches!(item, FeedItem::Event(event) if matches!(event, Event::Disconnected { .. })),
        )
        .await;
    let events: Vec<Event> = items
        .into_iter()
        .map(|item| match item {
            FeedItem::Event(event) => event,
            other => panic!("`{end}`: the feed reported {other:?}"),
        })
        .collect();
    h.feed.stop().await;
    let (disconnect, deletes) = events.split_last().expect("at least the disconnect");
    assert_eq!(deletes, everyone, "`{end}`: everyone is deleted, in order");
    assert!(
        matches!(disconnect, Event::Disconnected { reason } if reason.contains("disconnect")),
        "{disconnect:?}"
    );
    apply_all(&mut h.state, events);
    assert!(h.state.is_empty(), "`{end}`: the room state is empty");
    assert!(h.snapshot().participants.is_empty());
    assert_eq!(h.sim.active_sessions(ROOM), 0, "our session ended too");

    let covered: Vec<&str> = h.covered.iter().copied().collect();
    let every: BTreeSet<&str> = EVERY_VARIANT.into_iter().collect();
    assert_eq!(
        covered,
        every.into_iter().collect::<Vec<_>>(),
        "every command variant was sent"
    );
    h.sim.shutdown().await;
}

/// The error each fault is expected to cause.
enum Expected {
    Transient(&'static str),
    Rejected(u16),
    NotFound,
}

#[tokio::test]
async fn failed_commands_come_back_as_typed_errors_that_never_show_the_token() {
    const TIMEOUT: Duration = Duration::from_millis(400);
    let sim = simulator(vec![room(audience())]).await;
    let clients = clients_with(HttpOptions {
        request_timeout: TIMEOUT,
        ..HttpOptions::default()
    });
    let client = RoomClient::new(&clients, &sim.base_url(), ROOM);
    let session = Session::open(client.clone(), credentials(true))
        .await
        .expect("a session opens");
    // A second session opened by hand, whose token we know.
    let grant = client
        .new_session(
            Some(&Secret::new(PIN)),
            &NewSessionRequest {
                display_name: "raw".into(),
                hideme: "yes".into(),
            },
        )
        .await
        .expect("new_session");
    let token = grant.token.expose().to_owned();
    let bob = sim
        .conference(ROOM)
        .and_then(|c| c.find("Bob").map(|p| p.uuid.clone()))
        .expect("Bob is in the room");
    let lock = Command::Conference(ConferenceCommand::Lock);
    let mute_nobody = Command::participant(
        "00000000-0000-4000-8000-000000000000",
        "nobody",
        ParticipantCommand::Mute,
    );
    let delay = Span(TIMEOUT * 3);
    let cases = [
        (
            Some(Fault::FailCommands {
                count: 1,
                status: 502,
            }),
            &lock,
            Expected::Transient("HTTP 502"),
        ),
        (
            Some(Fault::FailCommands {
                count: 1,
                status: 400,
            }),
            &lock,
            Expected::Rejected(400),
        ),
        (None, &mute_nobody, Expected::NotFound),
        (
            Some(Fault::DelayResponses { delay, count: 1 }),
            &Command::participant(&bob, "Bob", ParticipantCommand::Unmute),
            Expected::Transient("timed out"),
        ),
    ];
    for (fault, command, expected) in &cases {
        for through_session in [true, false] {
            let path = usher::platform::vmr::wire::request(command).path;
            let calls_before = calls_to(&sim, &path).len();
            if let Some(fault) = fault {
                sim.fault(ROOM, fault.clone()).expect("the fault applies");
            }
            let started = Instant::now();
            let result = if through_session {
                session.send(command).await
            } else {
                client.send(&grant.token, command).await
            };
            let via = if through_session {
                "Session::send"
            } else {
                "RoomClient::send"
            };
            let err = result.expect_err(&format!("`{command}` via {via} should fail"));
            let call = usher::platform::vmr::wire::request(command)
                .path
                .rsplit('/')
                .next()
                .map(str::to_owned);
            assert_eq!(Some(err.call().to_owned()), call, "{via}: {err:?}");
            match (expected, &err) {
                (Expected::Transient(reason), ClientError::Transient { reason: got, .. }) => {
                    assert!(got.contains(reason), "{via}: {err}");
                }
                (Expected::Rejected(status), ClientError::Rejected { status: got, .. }) => {
                    assert_eq!(got, &Some(*status), "{via}: {err}");
                }
                (Expected::NotFound, ClientError::NotFound { .. }) => {}
                _ => panic!("`{command}` via {via}: unexpected {err:?}"),
            }
            if matches!(expected, Expected::Transient("timed out")) {
                assert!(
                    started.elapsed() < delay.0,
                    "{via}: gave up after the timeout, not the delay"
                );
            } else {
                assert_eq!(
                    calls_to(&sim, &path).len(),
                    calls_before + 1,
                    "`{command}` via {via}: sent exactly once, not retried"
                );
            }
            for shown in [err.to_string(), format!("{err:?}")] {
                assert!(!shown.contains(&token), "{via}: the token shows in {shown}");
            }
        }
    }
    assert_eq!(session.stats().renewals, 0, "no error renewed the session");
    assert!(
        !sim.conference(ROOM).expect("the room").flags.locked,
        "failed locks did not lock"
    );

    // A stream whose server hangs up without answering says why without its
    // URL, which carries the token.
    let rude = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let node = url::Url::parse(&format!(
        "http://{}/",
        rude.local_addr().expect("an address")
    ))
    .expect("a URL");
    let hang_up = tokio::spawn(async move {
        while let Ok((connection, _)) = rude.accept().await {
            drop(connection);
        }
    });
    let mut stream = RoomClient::new(&clients, &node, ROOM).events(&grant.token);
    match stream.next().await {
        Err(StreamEnd::Transport(reason)) => {
            assert!(!reason.contains(&token), "the token shows in {reason}");
            assert!(!reason.contains("token="), "the URL shows in {reason}");
        }
        other => panic!("expected a transport failure, got {other:?}"),
    }
    hang_up.abort();
    sim.shutdown().await;
}
