//! One daemon, four platforms at once: a room on the seed-001 API, a Huawei
//! meeting, a Tencent room and an Agora room, each on its own simulator over
//! loopback, all moderated by the same shipped rules from one profile. Each
//! room's joining guest is muted exactly once (by each simulator's own
//! command log); what a platform cannot do is audited as unsupported and
//! never reaches it; `/status` lists the four rooms with their platforms;
//! the two webhook platforms post through the daemon's one listener.

mod common;

use std::time::Duration;

use common::daemon::*;
use serde_json::Value;
use usher::model::Secret;
use usher::platform::huawei::wire::ControlCall;
use usher::runtime::audit::Outcome;
use usher::sim::RoomSpec;
use usher::sim::agora::{AgoraSimOptions, AgoraSimulator};
use usher::sim::huawei::{HuaweiSimulator, SIM_APP_ID, SIM_APP_KEY};
use usher::sim::step::{Chat, Joiner, Step};
use usher::sim::tencent::room::RoomSetup;
use usher::sim::tencent::{DEMO_SECRET_KEY, TencentSimOptions, TencentSimulator};

/// The Huawei meeting's conference ID.
const MEETING: &str = "900487914";
/// The Tencent room.
const TX_ROOM: &str = "hall-1";
/// The Agora room.
const AG_ROOM: &str = "physics-101";
const TX_TOKEN: &str = "four-platforms-callback-token";
const AG_TOKEN: &str = "four-platforms-agora-token";
const AG_SECRET: &str = "four-platforms-agora-secret";

/// Each room, by the platform account it is on: (account, room).
const ROOMS: [(&str, &str); 4] = [
    ("campus", ROOM),
    ("hw", MEETING),
    ("tx", TX_ROOM),
    ("ag", AG_ROOM),
];

/// Ada (host) and Bob (guest) are in every room from the start.
fn people(alias: &str) -> RoomSpec {
    RoomSpec {
        alias: alias.to_owned(),
        pin: Some(Secret::new(PIN)),
        token_expiry: Duration::from_secs(600),
        participants: vec![Joiner::host("Ada"), Joiner::guest("Bob")],
    }
}

/// A free loopback port (bound, then let go) for the webhook listener,
/// which the Agora simulator must know before the daemon starts.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

struct Simulators {
    vmr: usher::sim::Simulator,
    huawei: HuaweiSimulator,
    tencent: TencentSimulator,
    agora: AgoraSimulator,
}

impl Simulators {
    async fn start(dir: &TestDir, hooks: u16) -> Simulators {
        let vmr = simulator(vec![room(vec![Joiner::host("Ada"), Joiner::guest("Bob")])]).await;
        let huawei = HuaweiSimulator::start(loopback(0), vec![people(MEETING)])
            .await
            .expect("the Huawei simulator starts");
        let tencent = TencentSimulator::start(
            loopback(0),
            Vec::new(),
            TencentSimOptions {
                callback_token: Some(Secret::new(TX_TOKEN)),
                webhook_to: Some(hook_url(hooks, "tx")),
                ..TencentSimOptions::default()
            },
        )
        .await
        .expect("the Tencent simulator starts");
        tencent.add_room_with(
            people(TX_ROOM),
            RoomSetup {
                name: "Hall 1".into(),
                owner: "ada".into(),
                seats: 3,
                schedule: None,
            },
        );
        let agora = AgoraSimulator::start(
            loopback(0),
            AgoraSimOptions {
                token: Some(Secret::new(AG_TOKEN)),
                token_file: Some(dir.join("agora.token")),
                webhook_secret: Some(Secret::new(AG_SECRET)),
                webhook_to: Some(hook_url(hooks, "ag")),
                ..AgoraSimOptions::default()
            },
            vec![people(AG_ROOM)],
        )
        .await
        .expect("the Agora simulator starts");
        Simulators {
            vmr,
            huawei,
            tencent,
            agora,
        }
    }

    /// The same step in every room.
    fn everywhere(&self, step: &Step) {
        self.vmr.step(ROOM, step).unwrap();
        self.huawei.step(MEETING, step).unwrap();
        self.tencent.step(TX_ROOM, step).unwrap();
        self.agora.step(AG_ROOM, step).unwrap();
    }

    async fn shutdown(self) {
        self.vmr.shutdown().await;
        self.huawei.shutdown().await;
        self.tencent.shutdown().await;
        self.agora.shutdown().await;
    }
}

fn hook_url(port: u16, account: &str) -> url::Url {
    url::Url::parse(&format!("http://127.0.0.1:{port}/hooks/{account}")).unwrap()
}

fn config(sims: &Simulators, dir: &TestDir, hooks: u16) -> String {
    format!(
        r#"platforms:
  campus: {{ kind: vmr, url: "{vmr}", display_name: usher }}
  hw: {{ kind: huawei, url: "{huawei}", app_id: "{SIM_APP_ID}", app_key: "{SIM_APP_KEY}", user_id: usher }}
  tx:
    kind: tencent
    url: "{tencent}"
    sdk_app_id: {sdk_app_id}
    admin: administrator
    secret_key_file: tx.key
    callback_token_file: tx.token
  ag:
    kind: agora
    url: "{agora}"
    region: cn
    app_id: {ag_app}
    token_file: {ag_token}
    webhook_secret_file: ag.secret
webhooks: {{ listen: "127.0.0.1:{hooks}" }}
profiles:
  lecture: [auto_mute_guests, lock_when_full: {{ max: 3, reserve: 0 }}, spotlight_presenter, chat_commands]
rooms:
  - {{ alias: "{ROOM}", platform: campus, pin_file: hall.pin, profile: lecture }}
  - {{ alias: "{MEETING}", platform: hw, pin_file: hall.pin, profile: lecture }}
  - {{ alias: {TX_ROOM}, platform: tx, profile: lecture }}
  - {{ alias: {AG_ROOM}, platform: ag, profile: lecture }}
rules_dir: rules
audit_log: audit.jsonl
http: {{ listen: 127.0.0.1:0 }}
"#,
        vmr = sims.vmr.base_url(),
        huawei = sims.huawei.base_url(),
        tencent = sims.tencent.base_url(),
        sdk_app_id = sims.tencent.sdk_app_id(),
        agora = sims.agora.base_url(),
        ag_app = sims.agora.app_id(),
        ag_token = dir.join("agora.token").display(),
    )
}

/// Waits for an audit record in `room` with this outcome and text.
async fn audited_in(usher: &Usher, room: &str, outcome: Outcome, text: &str) {
    let what = format!("`{text}` audited {} in {room}", outcome.as_str());
    eventually(PATIENCE, &what, async || {
        usher
            .audit()
            .iter()
            .any(|r| r.room == room && r.outcome == outcome && r.text == text)
    })
    .await;
}

/// What the audit log says happened in `room`: (text, outcome) in order.
fn audit_of(usher: &Usher, room: &str) -> Vec<(String, &'static str)> {
    usher
        .audit()
        .into_iter()
        .filter(|r| r.room == room)
        .map(|r| (r.text, r.outcome.as_str()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_daemon_moderates_a_room_on_each_of_the_four_platforms_with_the_same_rules() {
    let dir = TestDir::new("four_platforms");
    dir.shipped_rules();
    dir.write("tx.key", DEMO_SECRET_KEY);
    dir.write("tx.token", TX_TOKEN);
    dir.write("ag.secret", AG_SECRET);
    let hooks = free_port();
    let sims = Simulators::start(&dir, hooks).await;
    let text = config(&sims, &dir, hooks);
    let usher = Usher::start(dir, &text).await;
    assert_eq!(
        usher.daemon.webhooks_addr().map(|addr| addr.port()),
        Some(hooks),
        "one listener for every platform's callbacks"
    );

    let status = usher.status().await;
    let rooms = status["rooms"].as_object().expect("/status lists rooms");
    assert_eq!(rooms.len(), 4, "{status:#}");
    for (account, alias) in ROOMS {
        let room = &rooms[alias];
        assert_eq!(room["platform"], account, "{alias}: {room:#}");
        assert_eq!(room["phase"], "connected", "{alias}: {room:#}");
    }

    // Cy joins every room, which fills it (three people, max 3).
    sims.everywhere(&Step::Join(Joiner::guest("Cy")));
    for (_, alias) in ROOMS {
        audited_in(&usher, alias, Outcome::Ok, "mute Cy").await;
    }
    // Locking: Huawei and seed 001 can; Tencent and Agora cannot.
    audited_in(&usher, ROOM, Outcome::Ok, "lock").await;
    audited_in(&usher, MEETING, Outcome::Ok, "lock").await;
    audited_in(&usher, TX_ROOM, Outcome::Unsupported, "lock").await;
    audited_in(&usher, AG_ROOM, Outcome::Unsupported, "lock").await;
    // The room-full notice: only seed 001 has a server-side chat.
    let notice = "message \"This lecture is full. Hosts can still join.\"";
    audited_in(&usher, ROOM, Outcome::Ok, notice).await;
    for alias in [MEETING, TX_ROOM, AG_ROOM] {
        audited_in(&usher, alias, Outcome::Unsupported, notice).await;
    }

    // Whoever shares is spotlit where a platform can (seed 001, Huawei's
    // broadcast).
    sims.vmr.step(ROOM, &Step::Present("Ada".into())).unwrap();
    sims.huawei
        .step(MEETING, &Step::Present("Ada".into()))
        .unwrap();
    audited_in(&usher, ROOM, Outcome::Ok, "spotlight Ada").await;
    audited_in(&usher, MEETING, Outcome::Ok, "spotlight Ada").await;

    // A host's chat command, where the platform carries chat.
    let command = Step::Chat(Chat {
        from: "Ada".into(),
        text: "!mute guests".into(),
    });
    sims.vmr.step(ROOM, &command).unwrap();
    sims.agora.step(AG_ROOM, &command).unwrap();
    audited_in(&usher, ROOM, Outcome::Ok, "mute_guests").await;
    audited_in(&usher, AG_ROOM, Outcome::Unsupported, "mute_guests").await;

    // Each platform's own log: Cy muted exactly once, Bob (there from the
    // start) never, and nothing a platform cannot do was sent to it.
    assert_eq!(
        mutes_of(&sims.vmr, "Cy"),
        1,
        "{:?}",
        command_paths(&sims.vmr)
    );
    assert_eq!(mutes_of(&sims.vmr, "Bob"), 0);

    let huawei_mutes = |name: &str| {
        let pid = sims
            .huawei
            .conference(MEETING)
            .and_then(|room| room.find(name).map(|p| p.uuid.clone()))
            .expect("in the meeting");
        sims.huawei
            .controls()
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
    };
    assert_eq!(huawei_mutes("Cy"), 1, "{:#?}", sims.huawei.controls());
    assert_eq!(huawei_mutes("Bob"), 0);
    assert!(sims.huawei.conference(MEETING).unwrap().flags.locked);

    let tencent_commands: Vec<(String, Option<i64>)> = sims
        .tencent
        .rest_calls()
        .into_iter()
        .filter(|call| {
            let name = call.api.rsplit('/').next().unwrap_or_default();
            !name.starts_with("get_")
        })
        .map(|call| {
            (
                call.api.rsplit('/').next().unwrap_or_default().to_owned(),
                call.code,
            )
        })
        .collect();
    assert_eq!(
        tencent_commands,
        [("lock_seat".to_owned(), Some(0))],
        "only Cy's seat was muted"
    );
    assert!(
        sims.tencent
            .seats(TX_ROOM)
            .contains(&(Some("cy".to_owned()), true)),
        "{:?}",
        sims.tencent.seats(TX_ROOM)
    );

    let agora_commands: Vec<(String, u16)> = sims
        .agora
        .calls()
        .into_iter()
        .filter(|call| call.method != "GET" && !call.path.is_empty())
        .map(|call| (call.path, call.status))
        .collect();
    assert_eq!(
        agora_commands,
        [("streams".to_owned(), 200)],
        "only Cy's stream"
    );
    assert!(
        sims.agora
            .conference(AG_ROOM)
            .unwrap()
            .find("Cy")
            .unwrap()
            .muted
    );

    // Nothing failed anywhere: every record is done or unsupported.
    for (_, alias) in ROOMS {
        let records = audit_of(&usher, alias);
        assert!(
            records
                .iter()
                .all(|(_, outcome)| *outcome == "ok" || *outcome == "unsupported"),
            "{alias}: {records:?}"
        );
    }

    // The webhook platforms' callbacks came through the shared listener.
    let metrics = usher.metrics().await;
    for account in ["tx", "ag"] {
        let accepted = metric(
            &metrics,
            &format!("usher_webhooks_total{{platform=\"{account}\",status=\"200\"}}"),
        );
        assert!(accepted.is_some_and(|n| n >= 1.0), "{account}: {metrics}");
    }
    let status: Value = usher.status().await;
    let text = status.to_string();
    for secret in [PIN, TX_TOKEN, AG_TOKEN, AG_SECRET, DEMO_SECRET_KEY] {
        assert!(!text.contains(secret) && !metrics.contains(secret));
        assert!(!usher.dir.audit_text().contains(secret));
    }
    usher.stop().await;
    sims.shutdown().await;
}
