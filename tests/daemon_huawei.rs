//! The daemon moderates a Huawei meeting: the real daemon, in process, with
//! the shipped rules unchanged, against the Huawei simulator over loopback.
//! Guests are muted exactly once each (by the simulator's command log), the
//! room locks when full, the presenter is broadcast, what Huawei cannot do
//! is audited as unsupported, and the room survives socket drops, a silent
//! socket and token expiry. Meetings are also found through the enterprise
//! webhook, arriving at the daemon's real listener.

mod common;

use std::time::Duration;

use common::daemon::*;
use usher::platform::huawei::wire::ControlCall;
use usher::runtime::audit::Outcome;
use usher::sim::huawei::{
    HuaweiSimulator, SIM_APP_ID, SIM_APP_KEY, SIM_WEBHOOK_SECRET, WebhookTarget,
};
use usher::sim::step::{Joiner, Step};
use usher::sim::{Fault, RoomSpec};

/// The Huawei meeting the daemon moderates.
const MEETING: &str = "900487914";

fn meeting(participants: Vec<Joiner>) -> RoomSpec {
    RoomSpec {
        alias: MEETING.to_owned(),
        pin: Some(usher::model::Secret::new(PIN)),
        token_expiry: Duration::from_secs(1800),
        participants,
    }
}

fn platform_yaml(sim: &HuaweiSimulator, extra: &str) -> String {
    format!(
        "platforms:\n  hw:\n    kind: huawei\n    url: {url}\n    app_id: \"{SIM_APP_ID}\"\n    app_key: \"{SIM_APP_KEY}\"\n    user_id: usher\n    heartbeat: 300ms\n{extra}rules_dir: rules\naudit_log: audit.jsonl\nhttp: {{ listen: 127.0.0.1:0 }}\n",
        url = sim.base_url()
    )
}

fn config(sim: &HuaweiSimulator, rules: &[&str]) -> String {
    let rules: String = rules
        .iter()
        .map(|rule| format!("      - {rule}\n"))
        .collect();
    format!(
        "{}rooms:\n  - alias: \"{MEETING}\"\n    platform: hw\n    pin_file: hall.pin\n    rules:\n{rules}",
        platform_yaml(sim, "")
    )
}

fn pid(sim: &HuaweiSimulator, name: &str) -> String {
    sim.conference(MEETING)
        .and_then(|room| room.find(name).map(|p| p.uuid.clone()))
        .unwrap_or_else(|| panic!("{name} is not in the simulated meeting"))
}

/// How often the simulator carried out muting `name` (status 200).
fn mutes_of(sim: &HuaweiSimulator, name: &str) -> usize {
    let pid = pid(sim, name);
    sim.controls()
        .iter()
        .filter(|r| {
            r.status == 200
                && r.call
                    == ControlCall::Mute {
                        pid: pid.clone(),
                        mute: true,
                    }
        })
        .count()
}

fn join(sim: &HuaweiSimulator, name: &str) {
    sim.step(MEETING, &Step::Join(Joiner::guest(name))).unwrap();
}

async fn muted_once(sim: &HuaweiSimulator, usher: &Usher, name: &str) {
    eventually(PATIENCE, &format!("{name} muted"), async || {
        sim.conference(MEETING)
            .and_then(|room| room.find(name).map(|p| p.muted))
            .unwrap_or(false)
    })
    .await;
    usher.audited(Outcome::Ok, &format!("mute {name}")).await;
    assert_eq!(
        mutes_of(sim, name),
        1,
        "{name} is muted exactly once: {:#?}",
        sim.controls()
    );
}

async fn reconnected(usher: &Usher, sim: &HuaweiSimulator, before: usize) {
    eventually(PATIENCE, "the meeting socket to reopen", async || {
        let sockets = sim
            .calls()
            .iter()
            .filter(|c| c.path == usher::platform::huawei::wire::SOCKET_PATH && c.status == 101)
            .count();
        sockets > before && sim.open_sockets(MEETING) == 1
    })
    .await;
    usher.connected().await;
}

fn sockets_opened(sim: &HuaweiSimulator) -> usize {
    sim.calls()
        .iter()
        .filter(|c| c.path == usher::platform::huawei::wire::SOCKET_PATH && c.status == 101)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shipped_rules_run_unchanged_on_a_huawei_meeting() {
    let sim = HuaweiSimulator::start(
        loopback(0),
        vec![meeting(vec![Joiner::host("Ada"), Joiner::guest("Bob")])],
    )
    .await
    .unwrap();
    let dir = TestDir::new("huawei_shipped");
    dir.shipped_rules();
    let rules = [
        "auto_mute_guests",
        "lock_when_full: { max: 5, reserve: 0 }",
        "spotlight_presenter",
    ];
    let usher = Usher::start(dir, &config(&sim, &rules)).await;

    // Guests already there are left alone; every guest who joins is muted, once.
    join(&sim, "Cy");
    join(&sim, "Dee");
    muted_once(&sim, &usher, "Cy").await;
    muted_once(&sim, &usher, "Dee").await;
    assert_eq!(mutes_of(&sim, "Bob"), 0, "the baseline is not a join");

    // The fifth person fills the room: it locks; the message it would send is
    // something Huawei cannot do, and is audited as such.
    join(&sim, "Eve");
    muted_once(&sim, &usher, "Eve").await;
    eventually(PATIENCE, "the room to lock", async || {
        sim.conference(MEETING).unwrap().flags.locked
    })
    .await;
    let unsupported = usher
        .audited(
            Outcome::Unsupported,
            "message \"This lecture is full. Hosts can still join.\"",
        )
        .await;
    assert_eq!(unsupported.rule, "lock_when_full");

    // Whoever shares is broadcast.
    sim.step(MEETING, &Step::Present("Ada".into())).unwrap();
    usher.audited(Outcome::Ok, "spotlight Ada").await;
    assert!(
        sim.conference(MEETING)
            .unwrap()
            .find("Ada")
            .unwrap()
            .spotlit()
    );
    let ada = pid(&sim, "Ada");
    assert!(
        sim.controls()
            .iter()
            .any(|r| r.call == ControlCall::Broadcast { pid: ada.clone() })
    );
    sim.step(MEETING, &Step::StopPresenting).unwrap();
    usher.audited(Outcome::Ok, "unspotlight Ada").await;

    // The socket is cut: usher resubscribes, and nobody is muted again.
    let before = sockets_opened(&sim);
    sim.fault(MEETING, Fault::DropStreams).unwrap();
    reconnected(&usher, &sim, before).await;
    sim.step(MEETING, &Step::Leave("Eve".into())).unwrap();
    eventually(PATIENCE, "the room to unlock below the limit", async || {
        !sim.conference(MEETING).unwrap().flags.locked
    })
    .await;
    join(&sim, "Fay");
    muted_once(&sim, &usher, "Fay").await;

    // The socket goes silent: usher notices and opens a new one.
    let before = sockets_opened(&sim);
    sim.fault(MEETING, Fault::HeartbeatSilence).unwrap();
    reconnected(&usher, &sim, before).await;

    // Every token dies: the next command is refused once, then goes through.
    sim.step(MEETING, &Step::Leave("Fay".into())).unwrap();
    eventually(PATIENCE, "the room to unlock again", async || {
        !sim.conference(MEETING).unwrap().flags.locked
    })
    .await;
    sim.fault(MEETING, Fault::ExpireTokens).unwrap();
    join(&sim, "Gus");
    muted_once(&sim, &usher, "Gus").await;
    let gus = pid(&sim, "Gus");
    let attempts: Vec<u16> = sim
        .controls()
        .iter()
        .filter(|r| {
            r.call
                == ControlCall::Mute {
                    pid: gus.clone(),
                    mute: true,
                }
        })
        .map(|r| r.status)
        .collect();
    assert_eq!(
        attempts,
        [401, 200],
        "refused with the dead token, sent again with a new one"
    );

    for name in ["Cy", "Dee", "Gus"] {
        assert_eq!(
            mutes_of(&sim, name),
            1,
            "{name} was muted again after a resync"
        );
    }
    let audit = usher.audit();
    let hosts_muted = audit.iter().filter(|r| r.text == "mute Ada").count();
    assert_eq!(hosts_muted, 0);
    let text = usher.dir.audit_text();
    assert!(
        !text.contains(PIN),
        "the chair password never reaches the audit log"
    );
    let status = usher.get("/status").await.1;
    assert!(
        !status.contains(PIN) && !status.contains(SIM_APP_KEY),
        "{status}"
    );
    usher.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn meetings_are_found_through_the_webhook_and_released_when_they_end() {
    let sim = HuaweiSimulator::start(loopback(0), vec![]).await.unwrap();
    let dir = TestDir::new("huawei_discovery");
    dir.shipped_rules();
    let extra = format!("    webhook_secret: \"{SIM_WEBHOOK_SECRET}\"\n");
    let text = format!(
        "{}webhooks: {{ listen: 127.0.0.1:0 }}\nprofiles:\n  lecture: [auto_mute_guests]\ndiscover:\n  - {{ platform: hw, match: \"Meeting 9*\", profile: lecture }}\n",
        platform_yaml(&sim, &extra)
    );
    let usher = Usher::start(dir, &text).await;
    let hooks = usher
        .daemon
        .webhooks_addr()
        .expect("the webhook listener runs");
    let url = url::Url::parse(&format!("http://{hooks}/hooks/hw")).unwrap();
    sim.send_webhooks_to(WebhookTarget::to(url.clone()));
    sim.add_scheduled_room(meeting(vec![Joiner::host("Ada")]));
    sim.start_meeting(MEETING).unwrap();
    eventually(
        PATIENCE,
        "the discovered meeting to be watched",
        async || usher.status().await.to_string().contains(MEETING),
    )
    .await;
    usher.connected().await;
    join(&sim, "Bob");
    muted_once(&sim, &usher, "Bob").await;

    let forged = r#"{"appID":"x","timestamp":1,"nonce":"n","signature":"00","eventInfo":{"event":"meeting.end","payload":{"meetingInfo":{"meetingID":"900487914"}}}}"#;
    let answer = reqwest::Client::new()
        .post(url)
        .body(forged)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 401);
    assert_eq!(
        usher
            .metric("usher_webhooks_total{platform=\"hw\",status=\"401\"}")
            .await,
        Some(1.0)
    );
    assert!(
        usher.status().await.to_string().contains(MEETING),
        "a forgery ends nothing"
    );

    sim.end_meeting(MEETING).unwrap();
    eventually(PATIENCE, "the ended meeting to be released", async || {
        !usher.status().await.to_string().contains(MEETING)
    })
    .await;
    usher.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_the_log_even_at_trace_level() {
    let sim = HuaweiSimulator::start(loopback(0), vec![meeting(vec![Joiner::host("Ada")])])
        .await
        .unwrap();
    let dir = TestDir::new("huawei_secrets");
    dir.shipped_rules();
    dir.write("hall.pin", &format!("{PIN}\n"));
    let text = config(&sim, &["auto_mute_guests"]).replace(
        &format!("app_key: \"{SIM_APP_KEY}\""),
        "app_key: ${HW_APP_KEY}",
    );
    dir.write("usher.yaml", &text);
    let mut usher = Process::spawn(
        dir.path(),
        &["run", "-c", "usher.yaml"],
        &[("HW_APP_KEY", SIM_APP_KEY), ("RUST_LOG", "trace")],
    );
    let http = usher.http_addr().await;
    let client = reqwest::Client::new();
    eventually(PATIENCE, "the meeting to connect", async || {
        get(&client, http, "/healthz").await.0 == 200
    })
    .await;
    join(&sim, "Bob");
    eventually(PATIENCE, "Bob muted", async || {
        sim.conference(MEETING).unwrap().find("Bob").unwrap().muted
    })
    .await;
    usher.signal("TERM");
    let (status, stderr) = usher.exit_within(PATIENCE).await;
    assert!(status.success(), "{stderr}");
    assert!(stderr.contains("meeting socket subscribed"), "{stderr}");
    for secret in [PIN, SIM_APP_KEY, "tmpToken", "\"pwd\"", "accessToken"] {
        assert!(!stderr.contains(secret), "`{secret}` in the log:\n{stderr}");
    }
}
