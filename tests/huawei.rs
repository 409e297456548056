//! The Huawei adapter against the Huawei simulator, over loopback: auth and
//! token renewal, the meeting socket (baseline roster, joins, resyncs
//! without false joins, silence, reused wsTokens, a meeting that has not
//! started), every supported command with its effect in the simulator and
//! as the pushed change, and the enterprise webhook.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Feed, PATIENCE, apply_all, describe, eventually};
use tokio::sync::mpsc;
use usher::model::{
    Command, ConferenceCommand, Event, Message, ParticipantCommand, Role, RoomState, Secret, Span,
};
use usher::platform::huawei::wire::{self, ControlCall};
use usher::platform::huawei::{Huawei, HuaweiConfig};
use usher::platform::{
    BuildContext, ConnectError, Discovery, FeedItem, FeedOptions, Platform, RoomAddress, RoomLink,
    SendOutcome, WebhookRequest,
};
use usher::sim::huawei::{
    HuaweiOptions, HuaweiSimulator, MeetingState, SIM_APP_ID, SIM_APP_KEY, SIM_WEBHOOK_SECRET,
    WebhookTarget,
};
use usher::sim::step::{Joiner, Step};
use usher::sim::{Fault, RoomSpec};

/// The meeting every test joins.
const MEETING: &str = "900487914";
/// Its chair password.
const CHAIR: &str = "chair-8642";

fn quick() -> FeedOptions {
    FeedOptions {
        min_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(400),
        ..FeedOptions::default()
    }
}

fn meeting(participants: Vec<Joiner>) -> RoomSpec {
    RoomSpec {
        alias: MEETING.to_owned(),
        pin: Some(Secret::new(CHAIR)),
        token_expiry: Duration::from_secs(1800),
        participants,
    }
}

fn lecture() -> Vec<Joiner> {
    vec![Joiner::host("Ada"), Joiner::guest("Bob")]
}

async fn simulator(rooms: Vec<RoomSpec>, options: HuaweiOptions) -> HuaweiSimulator {
    HuaweiSimulator::start_with(common_loopback(), rooms, options)
        .await
        .expect("the simulator starts on loopback")
}

fn common_loopback() -> std::net::SocketAddr {
    "127.0.0.1:0".parse().expect("a socket address")
}

fn config(sim: &HuaweiSimulator) -> HuaweiConfig {
    let mut config = HuaweiConfig::with_app(sim.base_url(), SIM_APP_ID, SIM_APP_KEY, "usher");
    config.heartbeat = Span(Duration::from_millis(300));
    config
}

fn platform(config: &HuaweiConfig) -> (Arc<Huawei>, mpsc::UnboundedReceiver<Discovery>) {
    let (discoveries, receiver) = mpsc::unbounded_channel();
    let context = BuildContext {
        discoveries,
        ..BuildContext::standalone("hw", 1, quick())
    };
    let huawei = Huawei::new(config, &context).expect("the platform builds");
    (Arc::new(huawei), receiver)
}

fn address(pin: Option<&str>) -> RoomAddress {
    RoomAddress {
        alias: MEETING.to_owned(),
        pin: pin.map(Secret::new),
    }
}

/// A connected room: the simulator, the link, its feed, and the room state
/// the feed's events were applied to (baseline taken).
struct Rig {
    sim: HuaweiSimulator,
    link: Arc<dyn RoomLink>,
    feed: Feed,
    state: RoomState,
}

async fn rig(participants: Vec<Joiner>) -> Rig {
    rig_with(participants, HuaweiOptions::default()).await
}

async fn rig_with(participants: Vec<Joiner>, options: HuaweiOptions) -> Rig {
    let sim = simulator(vec![meeting(participants)], options).await;
    let (huawei, _) = platform(&config(&sim));
    let link = huawei
        .connect(&address(Some(CHAIR)))
        .await
        .expect("the room connects");
    let mut feed = Feed::follow(link.clone());
    feed.connected().await;
    let mut state = RoomState::new();
    let roster = feed.next("the roster").await;
    let FeedItem::Event(roster @ Event::Roster(_)) = roster else {
        panic!("expected a roster first, got {roster:?}");
    };
    let changes = apply_all(&mut state, [roster]);
    assert_eq!(
        describe(&changes),
        ["synced (initial)"],
        "a baseline, no joins"
    );
    Rig {
        sim,
        link,
        feed,
        state,
    }
}

impl Rig {
    fn pid(&self, name: &str) -> String {
        self.sim
            .conference(MEETING)
            .and_then(|room| room.find(name).map(|p| p.uuid.clone()))
            .unwrap_or_else(|| panic!("{name} is not in the simulated meeting"))
    }

    /// Applies feed items until `wanted` holds for a change; returns every
    /// change seen on the way, described.
    async fn changes_until(&mut self, what: &str, wanted: impl Fn(&str) -> bool) -> Vec<String> {
        let mut seen = Vec::new();
        loop {
            let item = self.feed.next(what).await;
            let FeedItem::Event(event) = item else {
                seen.push(format!("{item:?}"));
                continue;
            };
            let described = describe(&self.state.apply(event));
            let found = described.iter().any(|text| wanted(text));
            seen.extend(described);
            if found {
                return seen;
            }
        }
    }

    async fn send(&self, command: Command) -> SendOutcome {
        self.link.send(&command).await
    }

    async fn send_to(&self, name: &str, action: ParticipantCommand) -> SendOutcome {
        self.send(Command::participant(&self.pid(name), name, action))
            .await
    }

    fn participant(&self, name: &str) -> usher::model::Participant {
        self.sim
            .conference(MEETING)
            .and_then(|room| room.find(name).cloned())
            .unwrap_or_else(|| panic!("{name} is not in the simulated meeting"))
    }

    fn ours(&self, name: &str) -> usher::model::Participant {
        self.state
            .participants()
            .find(|p| p.display_name == name)
            .map(|p| (**p).clone())
            .unwrap_or_else(|| panic!("usher does not know {name}"))
    }
}

#[tokio::test]
async fn the_first_connect_is_a_baseline_and_a_join_is_a_join() {
    let mut rig = rig(lecture()).await;
    assert!(rig.ours("Ada").is_host() && rig.ours("Bob").is_guest());
    rig.sim
        .step(MEETING, &Step::Join(Joiner::guest("Cy")))
        .unwrap();
    let seen = rig.changes_until("Cy's join", |c| c == "joined Cy").await;
    assert!(
        !seen
            .iter()
            .any(|c| c.starts_with("joined A") || c == "joined Bob"),
        "{seen:?}"
    );
    let cy = rig.ours("Cy");
    assert!(cy.is_guest() && cy.in_room() && cy.uuid == rig.pid("Cy"));
    rig.sim
        .step(MEETING, &Step::WaitingRoom(Joiner::guest("Dee")))
        .unwrap();
    rig.changes_until("Dee waiting", |c| c == "joined Dee")
        .await;
    assert!(rig.ours("Dee").is_waiting());
    rig.sim.step(MEETING, &Step::Leave("Cy".into())).unwrap();
    rig.changes_until("Cy leaving", |c| c == "left Cy").await;
}

#[tokio::test]
async fn every_supported_command_has_its_effect_in_the_meeting_and_in_the_pushes() {
    let mut rig = rig(lecture()).await;

    assert_eq!(
        rig.send_to("Bob", ParticipantCommand::Mute).await,
        SendOutcome::Done
    );
    rig.changes_until("Bob muted", |c| c == "updated Bob").await;
    assert!(rig.participant("Bob").muted && rig.ours("Bob").muted);
    assert_eq!(
        rig.send_to("Bob", ParticipantCommand::Unmute).await,
        SendOutcome::Done
    );
    rig.changes_until("Bob unmuted", |c| c == "updated Bob")
        .await;
    assert!(!rig.participant("Bob").muted && !rig.ours("Bob").muted);

    let conference = |command| Command::Conference(command);
    assert_eq!(
        rig.send(conference(ConferenceCommand::MuteGuests)).await,
        SendOutcome::Done
    );
    rig.changes_until("guests muted", |c| c.contains("guests_muted=true"))
        .await;
    assert!(rig.sim.conference(MEETING).unwrap().flags.guests_muted);
    assert_eq!(
        rig.send(conference(ConferenceCommand::UnmuteGuests)).await,
        SendOutcome::Done
    );
    rig.changes_until("guests unmuted", |c| c.contains("guests_muted=false"))
        .await;

    assert_eq!(
        rig.send(conference(ConferenceCommand::Lock)).await,
        SendOutcome::Done
    );
    rig.changes_until("locked", |c| c.contains("locked=true"))
        .await;
    assert!(rig.sim.conference(MEETING).unwrap().flags.locked && rig.state.flags().locked);

    rig.sim
        .step(MEETING, &Step::Join(Joiner::guest("Cy")))
        .unwrap();
    rig.changes_until("Cy waiting", |c| c == "joined Cy").await;
    assert!(rig.ours("Cy").is_waiting());
    assert_eq!(
        rig.send_to("Cy", ParticipantCommand::Admit).await,
        SendOutcome::Done
    );
    rig.changes_until("Cy admitted", |c| c == "updated Cy")
        .await;
    assert!(rig.participant("Cy").in_room() && rig.ours("Cy").in_room());
    assert_eq!(
        rig.ours("Cy").uuid,
        rig.pid("Cy"),
        "one identity from the waiting room in"
    );

    assert_eq!(
        rig.send(conference(ConferenceCommand::Unlock)).await,
        SendOutcome::Done
    );
    rig.changes_until("unlocked", |c| c.contains("locked=false"))
        .await;

    assert_eq!(
        rig.send_to("Bob", ParticipantCommand::SpotlightOn).await,
        SendOutcome::Done
    );
    rig.changes_until("Bob broadcast", |c| c == "updated Bob")
        .await;
    assert!(rig.participant("Bob").spotlit() && rig.ours("Bob").spotlit());
    assert_eq!(
        rig.send_to("Cy", ParticipantCommand::SpotlightOn).await,
        SendOutcome::Done
    );
    rig.changes_until("Cy broadcast", |c| c == "updated Cy")
        .await;
    assert!(!rig.participant("Bob").spotlit(), "one broadcast at a time");
    assert_eq!(
        rig.send_to("Cy", ParticipantCommand::SpotlightOff).await,
        SendOutcome::Done
    );
    rig.changes_until("broadcast cancelled", |c| c == "updated Cy")
        .await;
    assert!(!rig.participant("Cy").spotlit() && !rig.ours("Cy").spotlit());

    let host = ParticipantCommand::SetRole(Role::Chair);
    let guest = ParticipantCommand::SetRole(Role::Guest);
    assert_eq!(rig.send_to("Bob", host).await, SendOutcome::Done);
    rig.changes_until("Bob co-host", |c| c == "updated Bob")
        .await;
    assert!(rig.participant("Bob").is_host() && rig.ours("Bob").is_host());
    assert_eq!(rig.send_to("Bob", guest.clone()).await, SendOutcome::Done);
    rig.changes_until("Bob a guest again", |c| c == "updated Bob")
        .await;
    assert!(rig.ours("Bob").is_guest());
    assert_eq!(rig.send_to("Ada", guest).await, SendOutcome::Done);
    rig.changes_until("Ada's host role released", |c| c == "updated Ada")
        .await;
    assert!(rig.participant("Ada").is_guest() && rig.ours("Ada").is_guest());
    let calls: Vec<ControlCall> = rig.sim.controls().into_iter().map(|r| r.call).collect();
    assert!(
        calls.contains(&ControlCall::Chair {
            pid: rig.pid("Ada"),
            apply: false
        }),
        "{calls:?}"
    );
    assert!(
        calls.contains(&ControlCall::Cohost {
            pid: rig.pid("Bob"),
            on: false
        }),
        "{calls:?}"
    );

    let cy = rig.pid("Cy");
    assert_eq!(
        rig.send_to("Cy", ParticipantCommand::Disconnect).await,
        SendOutcome::Done
    );
    rig.changes_until("Cy hung up", |c| c == "left Cy").await;
    assert!(
        rig.sim
            .conference(MEETING)
            .unwrap()
            .participants
            .iter()
            .all(|p| p.uuid != cy)
    );

    let message = conference(ConferenceCommand::Message(Message::text("hello")));
    assert!(matches!(
        rig.send(message).await,
        SendOutcome::Unsupported(_)
    ));
    let dtmf = ParticipantCommand::Dtmf {
        digits: "1#".into(),
    };
    assert!(matches!(
        rig.send_to("Bob", dtmf).await,
        SendOutcome::Unsupported(_)
    ));

    assert_eq!(
        rig.send(conference(ConferenceCommand::Disconnect)).await,
        SendOutcome::Done
    );
    let ended = rig
        .feed
        .next_matching("the meeting's end", |item| {
            matches!(item, FeedItem::Event(Event::Disconnected { .. }))
        })
        .await;
    assert!(
        matches!(ended, FeedItem::Event(Event::Disconnected { reason }) if reason.contains("ended"))
    );
    assert_eq!(
        rig.sim.meeting_state(MEETING),
        Some(MeetingState::Destroyed)
    );
    let down = rig
        .feed
        .next_matching("the socket reported down", |item| {
            matches!(item, FeedItem::Disconnected { .. })
        })
        .await;
    assert!(matches!(down, FeedItem::Disconnected { reason, .. } if reason.contains("ended")));
    rig.feed.stop().await;
}

#[tokio::test]
async fn a_dropped_socket_resyncs_without_false_joins() {
    let mut rig = rig(lecture()).await;
    rig.sim.fault(MEETING, Fault::DropStreams).unwrap();
    rig.sim
        .step(MEETING, &Step::Join(Joiner::guest("Eve")))
        .unwrap();
    rig.sim.step(MEETING, &Step::Leave("Bob".into())).unwrap();
    let mut seen = rig.changes_until("the resync", |c| c == "synced").await;
    if !seen.contains(&"joined Eve".to_owned()) {
        // The socket was back before Eve came: she arrives as a push.
        seen.extend(rig.changes_until("Eve", |c| c == "joined Eve").await);
    }
    if !seen.contains(&"left Bob".to_owned()) {
        seen.extend(rig.changes_until("Bob leaving", |c| c == "left Bob").await);
    }
    assert!(
        seen.iter().any(|c| c.starts_with("Disconnected")),
        "{seen:?}"
    );
    let joins: Vec<&String> = seen.iter().filter(|c| c.starts_with("joined")).collect();
    assert_eq!(joins, ["joined Eve"], "only who really arrived: {seen:?}");
    rig.sim
        .step(MEETING, &Step::Join(Joiner::guest("Fay")))
        .unwrap();
    rig.changes_until("a join after the resync", |c| c == "joined Fay")
        .await;
}

#[tokio::test]
async fn a_silent_socket_is_given_up_and_reopened() {
    let mut rig = rig(lecture()).await;
    rig.sim.fault(MEETING, Fault::HeartbeatSilence).unwrap();
    let down = rig
        .feed
        .next_matching("the silent socket reported down", |item| {
            matches!(item, FeedItem::Disconnected { .. })
        })
        .await;
    assert!(
        matches!(&down, FeedItem::Disconnected { reason, .. } if reason.contains("silent")),
        "{down:?}"
    );
    let seen = rig.changes_until("the resync", |c| c == "synced").await;
    assert!(!seen.iter().any(|c| c.starts_with("joined")), "{seen:?}");
    rig.sim
        .step(MEETING, &Step::Join(Joiner::guest("Gus")))
        .unwrap();
    rig.changes_until("a join on the new socket", |c| c == "joined Gus")
        .await;
}

#[tokio::test]
async fn a_reused_ws_token_closes_the_socket_and_a_fresh_one_is_fetched() {
    let mut rig = rig(lecture()).await;
    rig.sim.fault(MEETING, Fault::ReuseWsToken).unwrap();
    rig.sim.fault(MEETING, Fault::DropStreams).unwrap();
    let mut reasons = Vec::new();
    loop {
        match rig.feed.next("a reconnect").await {
            FeedItem::Disconnected { reason, .. } => reasons.push(reason),
            FeedItem::Connected => break,
            _ => {}
        }
    }
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("before answering Subscribe")),
        "the reused token was refused: {reasons:?}"
    );
    let seen = rig.changes_until("the resync", |c| c == "synced").await;
    assert!(!seen.iter().any(|c| c.starts_with("joined")), "{seen:?}");
}

#[tokio::test]
async fn expired_tokens_are_renewed_and_the_command_goes_through() {
    let mut rig = rig(lecture()).await;
    rig.sim.fault(MEETING, Fault::ExpireTokens).unwrap();
    assert_eq!(
        rig.send_to("Bob", ParticipantCommand::Mute).await,
        SendOutcome::Done
    );
    rig.changes_until("Bob muted", |c| c == "updated Bob").await;
    let mutes: Vec<u16> = rig
        .sim
        .controls()
        .into_iter()
        .filter(|r| matches!(r.call, ControlCall::Mute { .. }))
        .map(|r| r.status)
        .collect();
    assert_eq!(mutes, [401, 200], "refused once, renewed, sent again");
    assert!(rig.link.stats().renewals >= 1, "{:?}", rig.link.stats());
    let logins = rig
        .sim
        .calls()
        .into_iter()
        .filter(|c| c.path == wire::APP_AUTH_PATH && c.status == 200)
        .count();
    assert_eq!(logins, 2, "the expired access token was replaced too");
}

#[tokio::test]
async fn tokens_are_kept_alive_and_refreshed_ahead_of_expiry() {
    let options = HuaweiOptions {
        access_validity: Duration::from_secs(2),
        ..HuaweiOptions::default()
    };
    let mut spec = meeting(lecture());
    spec.token_expiry = Duration::from_secs(2);
    let sim = simulator(vec![spec], options).await;
    let (huawei, _) = platform(&config(&sim));
    let link = huawei.connect(&address(Some(CHAIR))).await.unwrap();
    let mut feed = Feed::follow(link.clone());
    feed.connected().await;
    eventually(
        PATIENCE,
        "a control-token keep-alive and an access refresh",
        async || {
            let calls = sim.calls();
            let refreshed = calls
                .iter()
                .any(|c| c.path == wire::TOKEN_PATH && c.method == "PUT" && c.status == 200);
            let kept_alive = calls
                .iter()
                .filter(|c| c.path == "token" && c.status == 200)
                .count()
                >= 3;
            refreshed && kept_alive
        },
    )
    .await;
    assert!(link.stats().refreshes >= 2, "{:?}", link.stats());
    let pid = sim
        .conference(MEETING)
        .unwrap()
        .find("Bob")
        .unwrap()
        .uuid
        .clone();
    let mute = Command::participant(&pid, "Bob", ParticipantCommand::Mute);
    assert_eq!(link.send(&mute).await, SendOutcome::Done);
    let statuses: Vec<u16> = sim.controls().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [200], "the token never lapsed");
    assert!(
        !sim.calls().iter().any(|c| c.status == 401),
        "nothing was refused: {:?}",
        sim.calls()
    );
    feed.stop().await;
}

#[tokio::test]
async fn platform_failures_are_retryable_and_refusals_are_quoted() {
    let rig = rig(lecture()).await;
    rig.sim
        .fault(
            MEETING,
            Fault::FailCommands {
                count: 1,
                status: 503,
            },
        )
        .unwrap();
    let outcome = rig.send_to("Bob", ParticipantCommand::Mute).await;
    assert!(
        matches!(&outcome, SendOutcome::Retryable { reason, .. } if reason.contains("503")),
        "{outcome:?}"
    );
    let ghost = Command::participant("no-such-pid", "Ghost", ParticipantCommand::Mute);
    let outcome = rig.send(ghost).await;
    assert!(
        matches!(&outcome, SendOutcome::Refused(why) if why.contains("MMC.111070004") && why.contains("404")),
        "{outcome:?}"
    );
    assert_eq!(
        rig.send_to("Bob", ParticipantCommand::Mute).await,
        SendOutcome::Done
    );
}

#[tokio::test]
async fn a_meeting_that_has_not_started_is_reported_until_it_starts() {
    let sim = simulator(vec![], HuaweiOptions::default()).await;
    sim.add_scheduled_room(meeting(lecture()));
    let (huawei, _) = platform(&config(&sim));
    let link = huawei.connect(&address(Some(CHAIR))).await.unwrap();
    let mut feed = Feed::follow(link);
    let down = feed.next("a report that the meeting is not running").await;
    let FeedItem::Disconnected { reason, .. } = &down else {
        panic!("expected a disconnection, got {down:?}");
    };
    assert!(
        reason.contains("has not started yet") && reason.contains(MEETING),
        "{reason}"
    );
    assert!(!reason.contains(CHAIR));
    sim.start_meeting(MEETING).unwrap();
    feed.next_matching("the connection once it runs", |item| {
        matches!(item, FeedItem::Connected)
    })
    .await;
    let roster = feed.next("the roster").await;
    assert!(matches!(roster, FeedItem::Event(Event::Roster(listed)) if listed.len() == 2));
    feed.stop().await;
}

#[tokio::test]
async fn the_chair_password_comes_from_the_details_and_a_wrong_one_is_reported() {
    let sim = simulator(vec![meeting(lecture())], HuaweiOptions::default()).await;
    let (huawei, _) = platform(&config(&sim));
    let link = huawei
        .connect(&address(None))
        .await
        .expect("the password is looked up");
    let mut feed = Feed::follow(link);
    feed.connected().await;
    feed.stop().await;

    let link = huawei.connect(&address(Some("wrong"))).await.unwrap();
    let mut feed = Feed::follow(link);
    let down = feed.next("the refusal").await;
    assert!(
        matches!(&down, FeedItem::Disconnected { reason, .. } if reason.contains("chair password is wrong")),
        "{down:?}"
    );
    feed.stop().await;

    let mut bad = config(&sim);
    bad.app_key = Some(usher::config::SecretSource::Literal(Secret::new(
        "not-the-key",
    )));
    let (refused, _) = platform(&bad);
    let err = refused
        .connect(&address(Some(CHAIR)))
        .await
        .err()
        .expect("refused");
    assert!(
        matches!(&err, ConnectError::Refused(why) if !why.contains("not-the-key")),
        "{err:?}"
    );
}

#[tokio::test]
async fn account_auth_works_as_well() {
    let sim = simulator(vec![meeting(lecture())], HuaweiOptions::default()).await;
    let yaml = format!(
        "url: {}\naccount: {}\npassword: \"{}\"\n",
        sim.base_url(),
        usher::sim::huawei::SIM_ACCOUNT,
        usher::sim::huawei::SIM_PASSWORD
    );
    let config: HuaweiConfig = usher::yaml::from_str(&yaml).unwrap();
    config.validate().unwrap();
    let (huawei, _) = platform(&config);
    let link = huawei.connect(&address(Some(CHAIR))).await.unwrap();
    let mut feed = Feed::follow(link);
    feed.connected().await;
    assert!(
        sim.calls()
            .iter()
            .any(|c| c.path == wire::ACCOUNT_AUTH_PATH && c.status == 200)
    );
    feed.stop().await;
}

/// A receiver of the simulator's webhooks that hands them to the platform.
async fn hook_server(huawei: Arc<Huawei>) -> url::Url {
    use axum::body::Bytes;
    use axum::http::HeaderMap;
    use axum::response::IntoResponse;
    let app = axum::Router::new().route(
        "/hooks/hw",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let huawei = huawei.clone();
            async move {
                let reply = huawei
                    .webhook(WebhookRequest {
                        query: String::new(),
                        headers,
                        body,
                    })
                    .await;
                let status = axum::http::StatusCode::from_u16(reply.status).unwrap();
                (status, reply.body).into_response()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind(common_loopback())
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    url::Url::parse(&format!("http://{addr}/hooks/hw")).unwrap()
}

#[tokio::test]
async fn webhooks_discover_meetings_and_forgeries_change_nothing() {
    let sim = simulator(vec![], HuaweiOptions::default()).await;
    let mut config = config(&sim);
    config.webhook_secret = Some(usher::config::SecretSource::Literal(Secret::new(
        SIM_WEBHOOK_SECRET,
    )));
    let (huawei, mut discoveries) = platform(&config);
    let hooks = hook_server(huawei.clone()).await;
    sim.send_webhooks_to(WebhookTarget::to(hooks.clone()));
    sim.add_scheduled_room(meeting(lecture()));
    sim.start_meeting(MEETING).unwrap();
    let started = tokio::time::timeout(PATIENCE, discoveries.recv())
        .await
        .expect("a discovery in time")
        .expect("a discovery");
    let Discovery::Started(room) = started else {
        panic!("expected a start, got {started:?}");
    };
    assert_eq!(
        (room.platform.as_str(), room.alias.as_str()),
        ("hw", MEETING)
    );
    assert_eq!(
        room.title,
        format!("Meeting {MEETING}"),
        "the title from the details"
    );
    assert_eq!(room.pin.as_ref().map(Secret::expose), Some(CHAIR));
    assert!(room.schedule.is_some());
    sim.end_meeting(MEETING).unwrap();
    let ended = tokio::time::timeout(PATIENCE, discoveries.recv())
        .await
        .unwrap();
    assert_eq!(
        ended,
        Some(Discovery::Ended {
            platform: "hw".into(),
            alias: MEETING.into()
        })
    );

    let forged = r#"{"appID":"x","timestamp":1,"nonce":"n","signature":"00","eventInfo":{"event":"meeting.started","payload":{"meetingInfo":{"meetingID":"1"}}}}"#;
    let response = reqwest::Client::new()
        .post(hooks)
        .body(forged)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(huawei.webhook_refusals(), 1);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(discoveries.try_recv().is_err(), "a forgery has no effect");
}
