//! The Tencent adapter against the Tencent simulator, over loopback: admin
//! REST calls one way, signed callbacks the other, through
//! `Platform::webhook`.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::tencent::{Rig, RigOptions, room, setup};
use common::{Feed, PATIENCE, apply_all, describe, eventually};
use usher::model::{
    Change, Command, ConferenceCommand, Participant, ParticipantCommand, Role, RoomState,
};
use usher::platform::tencent::TencentLink;
use usher::platform::{Discovery, FeedItem, Platform, RoomLink, SendOutcome, WebhookRequest};
use usher::sim::Fault;
use usher::sim::step::{Joiner, Step};
use usher::sim::tencent::room::RoomSetup;

const HALL: &str = "hall-1";

/// A followed room: its link, feed and the room state the feed builds.
struct Watched {
    link: Arc<TencentLink>,
    feed: Feed,
    state: RoomState,
}

impl Watched {
    async fn start(rig: &Rig, room: &str) -> (Watched, Vec<Change>) {
        let link = rig.connect(room).await;
        let mut feed = Feed::follow(link.clone());
        feed.connected().await;
        let mut state = RoomState::new();
        let changes = apply_all(&mut state, feed.roster().await);
        (Watched { link, feed, state }, changes)
    }

    /// Applies the feed's events until a change matches `wanted`; returns
    /// every change on the way.
    async fn until(&mut self, what: &str, mut wanted: impl FnMut(&Change) -> bool) -> Vec<Change> {
        let mut changes = Vec::new();
        loop {
            if let FeedItem::Event(event) = self.feed.next(what).await {
                let new = self.state.apply(event);
                let found = new.iter().any(&mut wanted);
                changes.extend(new);
                if found {
                    return changes;
                }
            }
        }
    }

    /// Applies whatever the feed reports for `window`.
    async fn drain(&mut self, window: Duration) -> Vec<Change> {
        let mut changes = Vec::new();
        let end = tokio::time::Instant::now() + window;
        while let Ok(item) = tokio::time::timeout_at(end, self.feed.next_or_end()).await {
            if let Some(FeedItem::Event(event)) = item {
                changes.extend(self.state.apply(event));
            }
        }
        changes
    }

    fn participant(&self, uuid: &str) -> Option<Participant> {
        self.state.participant(uuid).map(|p| (**p).clone())
    }

    async fn send(&self, command: Command) -> SendOutcome {
        self.link.send(&command).await
    }
}

fn joins_of<'a>(changes: &'a [Change], uuid: &'a str) -> usize {
    changes
        .iter()
        .filter(|change| matches!(change, Change::Joined(p) if p.uuid == uuid))
        .count()
}

fn on(uuid: &str, name: &str, action: ParticipantCommand) -> Command {
    Command::participant(uuid, name, action)
}

fn lecture(seats: usize) -> Vec<(usher::sim::RoomSpec, RoomSetup)> {
    vec![room(
        HALL,
        vec![Joiner::host("Ada Lovelace"), Joiner::guest("Bob Smith")],
        seats,
    )]
}

#[tokio::test]
async fn the_first_listing_is_a_baseline_and_a_join_arrives_named() {
    let rig = Rig::start(lecture(0), RigOptions::default()).await;
    let (mut room, initial) = Watched::start(&rig, HALL).await;
    assert!(
        !initial.iter().any(|c| matches!(c, Change::Joined(_))),
        "{:?}",
        describe(&initial)
    );
    let ada = room
        .participant("ada_lovelace")
        .expect("the owner is listed");
    assert_eq!(
        (ada.display_name.as_str(), ada.role.clone()),
        ("Ada Lovelace", Role::Chair)
    );
    let bob = room.participant("bob_smith").expect("the member is listed");
    assert_eq!(
        (bob.display_name.as_str(), bob.role.clone()),
        ("Bob Smith", Role::Guest)
    );

    rig.sim
        .step(HALL, &Step::Join(Joiner::guest("Cat Ng")))
        .unwrap();
    let changes = room
        .until(
            "Cat's join",
            |c| matches!(c, Change::Joined(p) if p.uuid == "cat_ng"),
        )
        .await;
    assert_eq!(joins_of(&changes, "cat_ng"), 1);
    // The enter callback names only the account: the join waits for the
    // listing it prompts, so it arrives named.
    let cat = room.participant("cat_ng").unwrap();
    assert_eq!(
        (cat.display_name.as_str(), cat.role),
        ("Cat Ng", Role::Guest)
    );
    assert!(
        !changes.iter().any(|c| matches!(c, Change::Synced { .. })),
        "a join, not a resync: {:?}",
        describe(&changes)
    );
    assert_eq!(room.state.len(), 3);
    rig.stop().await;
}

#[tokio::test]
async fn each_supported_command_has_its_effect_on_the_platform_and_in_the_room() {
    let rig = Rig::start(lecture(0), RigOptions::default()).await;
    let (mut room, _) = Watched::start(&rig, HALL).await;

    let mute = room
        .send(Command::Conference(ConferenceCommand::MuteGuests))
        .await;
    assert_eq!(mute, SendOutcome::Done);
    assert!(rig.sim.conference(HALL).unwrap().flags.guests_muted);
    room.until(
        "guests muted",
        |c| matches!(c, Change::RoomUpdated { after, .. } if after.guests_muted),
    )
    .await;
    assert!(
        room.participant("bob_smith").unwrap().muted,
        "a member is muted"
    );
    assert!(
        !room.participant("ada_lovelace").unwrap().muted,
        "the owner is not"
    );

    assert_eq!(
        room.send(Command::Conference(ConferenceCommand::UnmuteGuests))
            .await,
        SendOutcome::Done
    );
    room.until(
        "guests unmuted",
        |c| matches!(c, Change::RoomUpdated { after, .. } if !after.guests_muted),
    )
    .await;

    rig.sim
        .step(HALL, &Step::Join(Joiner::guest("Cat Ng")))
        .unwrap();
    room.until(
        "Cat",
        |c| matches!(c, Change::Joined(p) if p.uuid == "cat_ng"),
    )
    .await;
    assert_eq!(
        room.send(on(
            "cat_ng",
            "Cat Ng",
            ParticipantCommand::SetRole(Role::Chair)
        ))
        .await,
        SendOutcome::Done
    );
    room.until("Cat made a host", |c| {
        matches!(c, Change::Updated { after, .. } if after.uuid == "cat_ng" && after.role == Role::Chair)
    })
    .await;
    assert_eq!(
        room.send(on(
            "cat_ng",
            "Cat Ng",
            ParticipantCommand::SetRole(Role::Guest)
        ))
        .await,
        SendOutcome::Done
    );
    room.until("Cat a guest again", |c| {
        matches!(c, Change::Updated { after, .. } if after.uuid == "cat_ng" && after.role == Role::Guest)
    })
    .await;

    assert_eq!(
        room.send(on("bob_smith", "Bob Smith", ParticipantCommand::Disconnect))
            .await,
        SendOutcome::Done
    );
    assert!(
        rig.sim
            .conference(HALL)
            .unwrap()
            .find("Bob Smith")
            .is_none()
    );
    room.until(
        "Bob removed",
        |c| matches!(c, Change::Left(p) if p.uuid == "bob_smith"),
    )
    .await;
    let kick = rig
        .sim
        .rest_calls()
        .into_iter()
        .find(|call| call.api.ends_with("kick_user_out"))
        .expect("a kick was sent");
    assert_eq!(kick.code, Some(0));
    assert!(
        !kick.body["Reason"].as_str().unwrap_or_default().is_empty(),
        "a reason is given"
    );

    assert!(matches!(
        room.send(Command::Conference(ConferenceCommand::Lock))
            .await,
        SendOutcome::Unsupported(_)
    ));

    assert_eq!(
        room.send(Command::Conference(ConferenceCommand::Disconnect))
            .await,
        SendOutcome::Done
    );
    assert!(
        rig.sim.conference(HALL).unwrap().participants.is_empty(),
        "the room is destroyed"
    );
    room.until("the end", |c| matches!(c, Change::Disconnected { .. }))
        .await;
    rig.stop().await;
}

#[tokio::test]
async fn one_member_is_muted_through_their_seat_or_not_at_all() {
    let rig = Rig::start(lecture(2), RigOptions::default()).await;
    let (mut room, _) = Watched::start(&rig, HALL).await;
    assert_eq!(
        rig.sim.seats(HALL),
        [
            (Some("ada_lovelace".to_owned()), false),
            (Some("bob_smith".to_owned()), false)
        ]
    );
    assert_eq!(
        room.send(on("bob_smith", "Bob Smith", ParticipantCommand::Mute))
            .await,
        SendOutcome::Done
    );
    assert_eq!(rig.sim.seats(HALL)[1], (Some("bob_smith".to_owned()), true));
    room.until(
        "Bob muted",
        |c| matches!(c, Change::Updated { after, .. } if after.uuid == "bob_smith" && after.muted),
    )
    .await;
    assert_eq!(
        room.send(on("bob_smith", "Bob Smith", ParticipantCommand::Unmute))
            .await,
        SendOutcome::Done
    );
    room.until(
        "Bob unmuted",
        |c| matches!(c, Change::Updated { after, .. } if after.uuid == "bob_smith" && !after.muted),
    )
    .await;

    rig.sim
        .step(HALL, &Step::Join(Joiner::guest("Cat Ng")))
        .unwrap();
    room.until(
        "Cat",
        |c| matches!(c, Change::Joined(p) if p.uuid == "cat_ng"),
    )
    .await;
    let seatless = room
        .send(on("cat_ng", "Cat Ng", ParticipantCommand::Mute))
        .await;
    assert!(
        matches!(&seatless, SendOutcome::Unsupported(why) if why.contains("no seat")),
        "{seatless:?}"
    );
    rig.stop().await;

    let rig = Rig::start(lecture(0), RigOptions::default()).await;
    let (room, _) = Watched::start(&rig, HALL).await;
    let outcome = room
        .send(on("bob_smith", "Bob Smith", ParticipantCommand::Mute))
        .await;
    assert!(
        matches!(&outcome, SendOutcome::Unsupported(why) if why.contains("no seats")),
        "{outcome:?}"
    );
    assert!(
        !rig.sim
            .rest_calls()
            .iter()
            .any(|call| call.api.ends_with("lock_seat")),
        "nothing was sent"
    );
    rig.stop().await;
}

#[tokio::test]
async fn an_18_digit_account_stays_exact_through_seats_and_commands() {
    const WEN: &str = "144115188075855873";
    let rig = Rig::start(lecture(3), RigOptions::default()).await;
    let (mut room, _) = Watched::start(&rig, HALL).await;
    let joiner = Joiner {
        uri: Some(WEN.to_owned()),
        ..Joiner::guest("Wen")
    };
    rig.sim.step(HALL, &Step::Join(joiner)).unwrap();
    room.until("Wen", |c| matches!(c, Change::Joined(p) if p.uuid == WEN))
        .await;
    assert_eq!(rig.sim.seats(HALL)[2].0.as_deref(), Some(WEN));
    eventually(
        PATIENCE,
        "Wen's seat, from the bare number in the seat callback",
        async || room.link.seat_of(WEN).is_some_and(|seat| seat.index == 2),
    )
    .await;
    assert_eq!(
        room.send(on(WEN, "Wen", ParticipantCommand::Mute)).await,
        SendOutcome::Done
    );
    room.until(
        "Wen muted",
        |c| matches!(c, Change::Updated { after, .. } if after.uuid == WEN && after.muted),
    )
    .await;
    assert_eq!(
        room.send(on(WEN, "Wen", ParticipantCommand::Disconnect))
            .await,
        SendOutcome::Done
    );
    room.until(
        "Wen removed",
        |c| matches!(c, Change::Left(p) if p.uuid == WEN),
    )
    .await;
    let kick = rig
        .sim
        .rest_calls()
        .into_iter()
        .find(|call| call.api.ends_with("kick_user_out"))
        .expect("a kick");
    assert_eq!(kick.body["MemberList_Account"][0], WEN);
    rig.stop().await;
}

#[tokio::test]
async fn lost_repeated_and_reordered_callbacks_resync_without_false_joins() {
    let options = RigOptions {
        reconcile: Duration::from_secs(1),
        ..RigOptions::default()
    };
    let rig = Rig::start(lecture(0), options).await;
    let (mut room, _) = Watched::start(&rig, HALL).await;

    rig.sim
        .fault(HALL, Fault::DropCallbacks { count: 1 })
        .unwrap();
    rig.sim
        .step(HALL, &Step::Join(Joiner::guest("Dan Wu")))
        .unwrap();
    let changes = room
        .until(
            "Dan, from a listing",
            |c| matches!(c, Change::Joined(p) if p.uuid == "dan_wu"),
        )
        .await;
    assert!(
        changes
            .iter()
            .any(|c| matches!(c, Change::Synced { initial: false })),
        "Dan came with a reconcile"
    );

    rig.sim
        .fault(HALL, Fault::DuplicateCallbacks { count: 1 })
        .unwrap();
    rig.sim
        .step(HALL, &Step::Join(Joiner::guest("Eve Li")))
        .unwrap();
    rig.sim
        .fault(HALL, Fault::ReorderCallbacks { count: 1 })
        .unwrap();
    rig.sim
        .step(HALL, &Step::Join(Joiner::guest("Fay Ho")))
        .unwrap();
    rig.sim.step(HALL, &Step::Leave("Fay Ho".into())).unwrap();
    rig.callbacks_delivered().await;
    // Two reconciles' worth of time.
    let changes = room.drain(Duration::from_millis(2500)).await;
    assert_eq!(joins_of(&changes, "eve_li"), 1, "{:?}", describe(&changes));
    assert_eq!(
        joins_of(&changes, "fay_ho"),
        0,
        "a leave that overtook its enter"
    );
    for known in ["ada_lovelace", "bob_smith", "dan_wu"] {
        assert_eq!(joins_of(&changes, known), 0, "no false join of {known}");
    }
    assert!(
        !changes.iter().any(|c| matches!(c, Change::Left(_))),
        "no false leave: {:?}",
        describe(&changes)
    );
    let stats = room.link.tracker_stats();
    assert!(stats.duplicates >= 1, "{stats:?}");
    assert!(stats.stale >= 1, "{stats:?}");
    let mut ours: Vec<String> = room.state.participants().map(|p| p.uuid.clone()).collect();
    ours.sort();
    let mut theirs: Vec<String> = rig
        .sim
        .conference(HALL)
        .unwrap()
        .participants
        .into_iter()
        .map(|p| p.uuid)
        .collect();
    theirs.sort();
    assert_eq!(ours, theirs);
    rig.stop().await;
}

#[tokio::test]
async fn an_expired_usersig_is_renewed_and_the_call_made_once_more() {
    let rig = Rig::start(lecture(0), RigOptions::default()).await;
    let (room, _) = Watched::start(&rig, HALL).await;
    rig.sim.fault(HALL, Fault::ExpireTokens).unwrap();
    assert_eq!(
        room.send(Command::Conference(ConferenceCommand::MuteGuests))
            .await,
        SendOutcome::Done
    );
    let codes: Vec<Option<i64>> = rig
        .sim
        .rest_calls()
        .into_iter()
        .filter(|call| call.api.ends_with("update_room_info"))
        .map(|call| call.code)
        .collect();
    assert_eq!(codes, [Some(70001), Some(0)]);
    assert_eq!(room.link.stats().renewals, 1);
    rig.stop().await;
}

#[tokio::test]
async fn rate_limits_and_server_errors_are_retryable() {
    let rig = Rig::start(lecture(0), RigOptions::default()).await;
    let (room, _) = Watched::start(&rig, HALL).await;
    rig.sim.fault(HALL, Fault::RateLimit { count: 1 }).unwrap();
    let limited = room
        .send(Command::Conference(ConferenceCommand::MuteGuests))
        .await;
    assert!(
        matches!(&limited, SendOutcome::Retryable { retry_after: Some(wait), .. } if *wait >= Duration::from_secs(1)),
        "{limited:?}"
    );
    rig.sim
        .fault(
            HALL,
            Fault::FailCommands {
                count: 1,
                status: 503,
            },
        )
        .unwrap();
    let failed = room
        .send(Command::Conference(ConferenceCommand::MuteGuests))
        .await;
    assert!(
        matches!(&failed, SendOutcome::Retryable { reason, .. } if reason.contains("503")),
        "{failed:?}"
    );
    assert_eq!(
        room.send(Command::Conference(ConferenceCommand::MuteGuests))
            .await,
        SendOutcome::Done
    );
    let refused = room
        .send(on("nobody", "Nobody", ParticipantCommand::Disconnect))
        .await;
    assert!(
        matches!(&refused, SendOutcome::Refused(why) if why.contains("100005")),
        "{refused:?}"
    );
    rig.stop().await;
}

#[tokio::test]
async fn unauthentic_callbacks_are_refused_and_change_nothing() {
    let rig = Rig::start(lecture(0), RigOptions::default()).await;
    let (mut room, _) = Watched::start(&rig, HALL).await;
    rig.sim
        .fault(HALL, Fault::BadSignatures { count: 1 })
        .unwrap();
    rig.sim
        .step(HALL, &Step::Join(Joiner::guest("Gus")))
        .unwrap();
    rig.sim
        .fault(HALL, Fault::ExpiredSignatures { count: 1 })
        .unwrap();
    rig.sim
        .step(HALL, &Step::Join(Joiner::guest("Hal")))
        .unwrap();
    rig.callbacks_delivered().await;
    let statuses: Vec<Option<u16>> = rig
        .sim
        .sent_callbacks()
        .iter()
        .map(|sent| sent.status)
        .collect();
    // Each refused callback is sent again, signed right, and takes effect once.
    assert_eq!(statuses, [Some(401), Some(200), Some(401), Some(200)]);
    let changes = room.drain(Duration::from_millis(800)).await;
    assert_eq!(joins_of(&changes, "gus"), 1, "{:?}", describe(&changes));
    assert_eq!(joins_of(&changes, "hal"), 1, "{:?}", describe(&changes));
    assert_eq!(
        room.link.tracker_stats().duplicates,
        0,
        "the refused copies never reached the room"
    );

    let platform: &dyn Platform = rig.platform.as_ref();
    let query = format!(
        "SdkAppid={}&CallbackCommand=Room.CallbackAfterMemberEnter&contenttype=json",
        rig.sim.sdk_app_id()
    );
    let unsigned = platform
        .webhook(WebhookRequest {
            query,
            headers: Default::default(),
            body: bytes::Bytes::from_static(
                br#"{"RoomId":"hall-1","MemberList_Account":["ivy"],"EventTime":1}"#,
            ),
        })
        .await;
    assert_eq!(unsigned.status, 401);
    let stats = rig.platform.webhook_stats();
    assert_eq!((stats.refused, stats.accepted), (3, 2));
    assert!(room.drain(Duration::from_millis(300)).await.is_empty());
    assert!(
        room.participant("ivy").is_none(),
        "the unsigned enter had no effect"
    );
    rig.stop().await;
}

#[tokio::test]
async fn a_created_room_is_discovered_with_its_schedule_and_its_end() {
    let mut rig = Rig::start(Vec::new(), RigOptions::default()).await;
    let start = usher::clock::unix_now() as i64 + 60;
    rig.sim.create_room(
        usher::sim::RoomSpec::new("lecture-7"),
        RoomSetup {
            name: "Lecture 7: Optics".into(),
            schedule: Some((start, start + 3600)),
            ..setup("prof", 0)
        },
    );
    let discovered = tokio::time::timeout(PATIENCE, rig.discoveries.recv())
        .await
        .expect("a discovery")
        .expect("the channel is open");
    let Discovery::Started(found) = discovered else {
        panic!("{discovered:?}")
    };
    assert_eq!(
        (found.alias.as_str(), found.title.as_str()),
        ("lecture-7", "Lecture 7: Optics")
    );
    let schedule = found.schedule.expect("a schedule");
    assert_eq!(
        (schedule.start, schedule.end),
        (start as f64, Some((start + 3600) as f64))
    );

    let (mut room, _) = Watched::start(&rig, "lecture-7").await;
    assert!(
        !room.state.flags().started,
        "a scheduled room has not started"
    );
    rig.sim
        .step(
            "lecture-7",
            &Step::Join(Joiner {
                uri: Some("prof".into()),
                ..Joiner::host("Prof. Ng")
            }),
        )
        .unwrap();
    room.until(
        "the lecture starts",
        |c| matches!(c, Change::RoomUpdated { after, .. } if after.started),
    )
    .await;
    assert_eq!(
        room.send(Command::Conference(ConferenceCommand::Disconnect))
            .await,
        SendOutcome::Done
    );
    let ended = tokio::time::timeout(PATIENCE, rig.discoveries.recv())
        .await
        .expect("the end is discovered")
        .expect("open");
    assert_eq!(
        ended,
        Discovery::Ended {
            platform: "tx".into(),
            alias: "lecture-7".into()
        }
    );
    rig.stop().await;
}

#[tokio::test]
async fn a_ban_removes_a_member_and_keeps_them_out_until_it_ends() {
    let rig = Rig::start(lecture(0), RigOptions::default()).await;
    let (mut room, _) = Watched::start(&rig, HALL).await;
    let banned_at = Instant::now();
    let ban = ParticipantCommand::Ban { seconds: 2 };
    assert_eq!(
        room.send(Command::participant("bob_smith", "Bob Smith", ban))
            .await,
        SendOutcome::Done
    );
    room.until(
        "Bob banned",
        |c| matches!(c, Change::Left(p) if p.uuid == "bob_smith"),
    )
    .await;
    assert_eq!(rig.sim.bans(HALL).len(), 1);
    let again = rig.sim.step(HALL, &Step::Join(Joiner::guest("Bob Smith")));
    assert!(again.is_err(), "banned: {again:?}");
    tokio::time::sleep(
        Duration::from_secs(2).saturating_sub(banned_at.elapsed()) + Duration::from_millis(200),
    )
    .await;
    rig.sim
        .step(HALL, &Step::Join(Joiner::guest("Bob Smith")))
        .unwrap();
    room.until(
        "Bob back",
        |c| matches!(c, Change::Joined(p) if p.uuid == "bob_smith"),
    )
    .await;
    rig.stop().await;
}

#[tokio::test]
async fn big_rooms_are_listed_page_by_page_and_expired_members_leave() {
    let mut people = vec![Joiner::host("Ada Lovelace")];
    people.extend((0..120).map(|n| Joiner::guest(format!("Student {n:03}"))));
    let rig = Rig::start(vec![room(HALL, people, 0)], RigOptions::default()).await;
    let (mut room, initial) = Watched::start(&rig, HALL).await;
    assert_eq!(room.state.len(), 121);
    assert!(!initial.iter().any(|c| matches!(c, Change::Joined(_))));
    let pages = rig
        .sim
        .rest_calls()
        .iter()
        .filter(|call| call.api.ends_with("get_room_member_list"))
        .count();
    assert_eq!(pages, 3, "50 a page");
    rig.sim.expire_member(HALL, "Student 007").unwrap();
    room.until(
        "an expired member",
        |c| matches!(c, Change::Left(p) if p.uuid == "student_007"),
    )
    .await;
    rig.stop().await;
}

#[tokio::test]
async fn a_missing_room_is_not_found_and_bad_credentials_are_refused() {
    let rig = Rig::start(lecture(0), RigOptions::default()).await;
    let missing = rig
        .platform
        .connect_room(&usher::platform::RoomAddress {
            alias: "nowhere".into(),
            pin: None,
        })
        .await
        .err()
        .expect("no such room");
    assert!(
        matches!(missing, usher::platform::ConnectError::NotFound(_)),
        "{missing:?}"
    );

    let config = usher::platform::tencent::TencentConfig::new(
        rig.sim.base_url(),
        rig.sim.sdk_app_id(),
        "administrator",
        "not-the-key",
    );
    let wrong = usher::platform::tencent::Tencent::new(
        &config,
        &usher::platform::BuildContext::standalone("tx", 1, Default::default()),
    )
    .unwrap();
    let refused = wrong
        .connect_room(&usher::platform::RoomAddress {
            alias: HALL.into(),
            pin: None,
        })
        .await
        .err()
        .expect("a wrong key is refused");
    assert!(
        matches!(&refused, usher::platform::ConnectError::Refused(why) if why.contains("70009")),
        "{refused:?}"
    );
    assert!(
        !format!("{refused:?}").contains("usersig="),
        "no UserSig in errors"
    );
    rig.stop().await;
}
