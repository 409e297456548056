//! The daemon moderates a Tencent room: the real daemon, in process, with
//! its webhook listener, against the Tencent simulator over loopback. The
//! shipped rules run unchanged; what Tencent cannot do is audited as
//! unsupported, and what it can do shows in the simulated room.

mod common;

use std::time::Duration;

use common::daemon::*;
use usher::clock::{format_timestamp, unix_now};
use usher::model::Secret;
use usher::runtime::audit::Outcome;
use usher::sim::RoomSpec;
use usher::sim::step::{Joiner, Step};
use usher::sim::tencent::room::RoomSetup;
use usher::sim::tencent::{DEMO_SECRET_KEY, TencentSimOptions, TencentSimulator};

const HALL: &str = "hall-1";
const TOKEN: &str = "daemon-callback-token-52";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shipped_rules_moderate_a_tencent_room() {
    let sim = TencentSimulator::start(
        loopback(0),
        Vec::new(),
        TencentSimOptions {
            callback_token: Some(Secret::new(TOKEN)),
            ..TencentSimOptions::default()
        },
    )
    .await
    .expect("the simulator starts");
    sim.add_room_with(
        RoomSpec {
            participants: vec![Joiner::host("Ada Lovelace"), Joiner::guest("Bob Smith")],
            ..RoomSpec::new(HALL)
        },
        RoomSetup {
            name: "Physics 101".into(),
            owner: "ada_lovelace".into(),
            seats: 3,
            schedule: None,
        },
    );
    let dir = TestDir::new("tencent_shipped_rules");
    dir.shipped_rules();
    dir.write("tx.key", DEMO_SECRET_KEY);
    dir.write("tx.token", TOKEN);
    let now = unix_now();
    let config = format!(
        r#"platforms:
  tx:
    kind: tencent
    url: {url}
    sdk_app_id: {app}
    admin: administrator
    secret_key_file: tx.key
    callback_token_file: tx.token
    reconcile: 1s
webhooks: {{ listen: 127.0.0.1:0 }}
rules_dir: rules
rooms:
  - alias: {HALL}
    platform: tx
    rules:
      - auto_mute_guests
      - lock_when_full: {{ max: 4, reserve: 0 }}
      - spotlight_presenter
      - presentation_layout
      - waiting_room_admit
      - chat_commands
      - hand_queue
      - lecture_schedule: {{ start: "{start}", end: "{end}", warn: [], grace: 0 }}
audit_log: audit.jsonl
http: {{ listen: 127.0.0.1:0 }}
"#,
        url = sim.base_url(),
        app = sim.sdk_app_id(),
        start = format_timestamp(now - 10.0),
        end = format_timestamp(now + 8.0),
    );
    let usher = Usher::start_only(dir, &config).await;
    let hooks = usher
        .daemon
        .webhooks_addr()
        .expect("the webhook listener runs");
    sim.set_webhook_to(Some(
        url::Url::parse(&format!("http://{hooks}/hooks/tx")).unwrap(),
    ));
    usher.connected().await;

    // The lecture's start was due: Tencent has no call to start a room.
    usher.audited(Outcome::Unsupported, "start").await;

    // Cat sits on the last free seat and is muted through it.
    sim.step(HALL, &Step::Join(Joiner::guest("Cat Ng")))
        .unwrap();
    usher.audited(Outcome::Ok, "mute Cat Ng").await;
    assert_eq!(sim.seats(HALL)[2], (Some("cat_ng".to_owned()), true));

    // Dan finds no seat: muting him one by one is not possible; the room is
    // full, and Tencent rooms cannot be locked.
    sim.step(HALL, &Step::Join(Joiner::guest("Dan Wu")))
        .unwrap();
    usher.audited(Outcome::Unsupported, "lock").await;
    let mute_dan = usher.audited(Outcome::Unsupported, "mute Dan Wu").await;
    assert!(
        mute_dan
            .error
            .as_deref()
            .unwrap_or_default()
            .contains("no seat"),
        "{mute_dan:?}"
    );
    assert!(
        usher
            .audit()
            .iter()
            .any(|r| r.outcome == Outcome::Unsupported && r.text.starts_with("message")),
        "messages are unsupported too"
    );

    // The lecture ends on time: the room is destroyed.
    eventually(Duration::from_secs(15), "the room destroyed", async || {
        sim.rest_calls()
            .iter()
            .any(|call| call.api.ends_with("destroy_room") && call.code == Some(0))
    })
    .await;
    assert!(sim.conference(HALL).unwrap().participants.is_empty());
    usher.audited(Outcome::Ok, "end").await;

    let metrics = usher.metrics().await;
    let accepted = metric(
        &metrics,
        "usher_webhooks_total{platform=\"tx\",status=\"200\"}",
    )
    .unwrap_or_default();
    assert!(accepted >= 3.0, "{metrics}");
    let audit = usher.dir.audit_text();
    assert!(!audit.contains(DEMO_SECRET_KEY) && !audit.contains(TOKEN));
    usher.stop().await;
    sim.shutdown().await;
}

/// A room created with a schedule, found through `discover:`, is ended at
/// its scheduled end by `lecture_schedule` given no times of its own: the
/// platform's schedule is the room's session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_discovered_room_ends_at_its_scheduled_end() {
    let sim = TencentSimulator::start(
        loopback(0),
        Vec::new(),
        TencentSimOptions {
            callback_token: Some(Secret::new(TOKEN)),
            ..TencentSimOptions::default()
        },
    )
    .await
    .expect("the simulator starts");
    let dir = TestDir::new("tencent_scheduled_end");
    dir.shipped_rules();
    dir.write("tx.key", DEMO_SECRET_KEY);
    dir.write("tx.token", TOKEN);
    let config = format!(
        r#"platforms:
  tx:
    kind: tencent
    url: {url}
    sdk_app_id: {app}
    admin: administrator
    secret_key_file: tx.key
    callback_token_file: tx.token
    reconcile: 1s
webhooks: {{ listen: 127.0.0.1:0 }}
rules_dir: rules
profiles:
  lecture:
    - lecture_schedule: {{ warn: [], grace: 0 }}
discover:
  - {{ platform: tx, match: "Lecture *", profile: lecture }}
audit_log: audit.jsonl
http: {{ listen: 127.0.0.1:0 }}
"#,
        url = sim.base_url(),
        app = sim.sdk_app_id(),
    );
    let usher = Usher::start_only(dir, &config).await;
    let hooks = usher
        .daemon
        .webhooks_addr()
        .expect("the webhook listener runs");
    sim.set_webhook_to(Some(
        url::Url::parse(&format!("http://{hooks}/hooks/tx")).unwrap(),
    ));
    let now = unix_now() as i64;
    sim.create_room(
        RoomSpec {
            participants: vec![Joiner::host("Prof. Ng")],
            ..RoomSpec::new("lecture-7")
        },
        RoomSetup {
            name: "Lecture 7: Optics".into(),
            owner: "prof_ng".into(),
            seats: 4,
            schedule: Some((now - 5, now + 6)),
        },
    );
    // The booked lecture is running when the room is found: it starts.
    usher.audited(Outcome::Unsupported, "start").await;
    assert!(
        !sim.rest_calls()
            .iter()
            .any(|call| call.api.ends_with("destroy_room")),
        "not before its scheduled end"
    );
    eventually(
        Duration::from_secs(15),
        "the room destroyed at its end",
        async || {
            sim.rest_calls()
                .iter()
                .any(|call| call.api.ends_with("destroy_room") && call.code == Some(0))
        },
    )
    .await;
    let ended = usher.audited(Outcome::Ok, "end").await;
    assert_eq!(ended.rule, "lecture_schedule");
    let ended_at = usher::clock::parse_timestamp(&ended.time).expect("an RFC 3339 time");
    assert!(
        ended_at >= (now + 6) as f64 - 0.5,
        "ended at {} before the scheduled end {}",
        ended.time,
        now + 6
    );
    usher.stop().await;
    sim.shutdown().await;
}
