//! The platform contract: the same checks, run against every platform's
//! adapter and its simulator, through the real daemon over loopback.
//!
//! A contract rule acts on people by their names ("kick me" is disconnected
//! as they arrive, "lock me" locks the room, …), so one scenario exercises
//! every platform the same way, whatever its wire. Each platform passes:
//!
//! - the first connect is a baseline: people already present are no news;
//! - a join reaches `on_join`, and the command it causes has its effect;
//! - each command the platform supports has its effect on the platform;
//! - a lost feed resyncs without false joins, and people who arrived while
//!   it was lost are news;
//! - expired credentials are renewed, and the room goes on;
//! - a command the platform cannot do is never sent, and is audited.
//!
//! A platform joins the contract with an arm in [`account`] and [`outage`]
//! and a line in the `contract!` list at the bottom.

mod common;

use std::time::Duration;

use common::daemon::{PATIENCE, PIN, ROOM, TestDir, Usher, eventually, loopback, quick_feed};
use usher::platform::PlatformKind;
use usher::runtime::audit::Outcome;
use usher::sim::step::{Joiner, Step};
use usher::sim::{Fault, PlatformSimulator, RoomSpec};

/// Acts on people by their names, with commands every platform is asked to
/// carry out.
const CONTRACT_RULE: &str = r#"
//! Contract: a participant's name says what to do to them.

fn on_join(p) {
    switch p.name {
        "kick me" => p.disconnect(),
        "mute me" => p.mute(),
        "spotlight me" => p.spotlight(),
        "host me" => p.make_host(),
        "lock me" => room.lock(),
        "mute everyone" => room.mute_guests(),
        "greet me" => room.message("hello"),
        "end me" => room.end(),
    }
}

fn on_waiting(p) {
    if p.name == "admit me" {
        p.admit();
    }
}
"#;

/// The platform account's YAML (one `platforms:` entry's value) for a
/// simulator serving at `sim`.
fn account(kind: PlatformKind, sim: &url::Url) -> String {
    match kind {
        PlatformKind::Vmr => format!("{{ kind: vmr, url: {sim} }}"),
        PlatformKind::Huawei => {
            use usher::sim::huawei::{SIM_APP_ID, SIM_APP_KEY, SIM_WEBHOOK_SECRET};
            format!(
                "{{ kind: huawei, url: {sim}, app_id: \"{SIM_APP_ID}\", app_key: \"{SIM_APP_KEY}\", user_id: usher, webhook_secret: \"{SIM_WEBHOOK_SECRET}\", heartbeat: 1s }}"
            )
        }
        PlatformKind::Tencent => format!(
            "{{ kind: tencent, url: {sim}, sdk_app_id: 1400000000, admin: administrator, secret_key: \"{}\", reconcile: 1s }}",
            usher::sim::tencent::DEMO_SECRET_KEY
        ),
        PlatformKind::Agora => format!(
            "{{ kind: agora, url: {sim}, region: cn, app_id: usher-sim, token_file: {token}, gap_hold: 300ms, reconcile: 1s }}",
            token = usher::sim::agora::token_file_for(sim.port().unwrap_or_default()).display()
        ),
    }
}

/// The fault that loses a platform's feed for a moment: events in between
/// are lost and must be recovered by a resync.
fn outage(kind: PlatformKind) -> Fault {
    match kind {
        PlatformKind::Vmr => Fault::DropStreams,
        PlatformKind::Huawei => Fault::DropStreams,
        PlatformKind::Tencent => Fault::DropCallbacks { count: 1 },
        // The callback is lost; a reconcile (every second here) finds it.
        PlatformKind::Agora => Fault::DropCallbacks { count: 1 },
    }
}

/// A simulator of `kind`, a daemon watching its room with the contract rule,
/// and the people present from the start.
struct Stage {
    sim: Box<dyn PlatformSimulator>,
    usher: Usher,
}

impl Stage {
    /// The webhook listener's port is picked before the simulator starts
    /// (both must know it) and bound after, so another test may take it in
    /// between; then the daemon cannot listen, and the stage is set up
    /// again on another port.
    async fn new(test: &str, kind: PlatformKind, present: &[&str]) -> Stage {
        let mut attempts = 0;
        loop {
            attempts += 1;
            let hooks = free_port();
            let webhook_to = url::Url::parse(&format!("http://127.0.0.1:{hooks}/hooks/contract"))
                .expect("a URL");
            let spec = RoomSpec {
                pin: Some(usher::model::Secret::new(PIN)),
                participants: std::iter::once(Joiner::host("Host"))
                    .chain(present.iter().map(|name| Joiner::guest(*name)))
                    .collect(),
                ..RoomSpec::new(ROOM)
            };
            let sim = usher::sim::start(kind, loopback(0), vec![spec], Some(webhook_to))
                .await
                .expect("the simulator starts");
            let dir = TestDir::new(&format!("contract-{kind}-{test}"));
            dir.rule("contract", CONTRACT_RULE);
            let config = format!(
                "platforms:\n  contract: {account}\nrules_dir: rules\nrooms:\n  - alias: {ROOM}\n    platform: contract\n    pin_file: hall.pin\n    rules: [contract]\naudit_log: audit.jsonl\nhttp: {{ listen: 127.0.0.1:0 }}\nwebhooks: {{ listen: 127.0.0.1:{hooks} }}\n",
                account = account(kind, &sim.base_url()),
            );
            match Usher::try_start_with(dir, &config, quick_feed()).await {
                Ok(usher) => {
                    usher.connected().await;
                    return Stage { sim, usher };
                }
                Err((dir, err))
                    if attempts < 5 && err.to_string().starts_with("webhooks.listen:") =>
                {
                    drop(dir);
                    sim.shutdown().await;
                }
                Err((_, err)) => panic!("the daemon starts: {err}"),
            }
        }
    }

    fn step(&self, step: Step) {
        self.sim
            .step(ROOM, &step)
            .unwrap_or_else(|err| panic!("{step:?}: {err}"));
    }

    fn join(&self, name: &str) {
        self.step(Step::Join(Joiner::guest(name)));
    }

    fn present(&self, name: &str) -> bool {
        self.sim
            .conference(ROOM)
            .is_some_and(|room| room.find(name).is_some())
    }

    /// Waits until the simulated room shows `what`.
    async fn until(&self, what: &str, holds: impl Fn(&usher::sim::ConferenceSnapshot) -> bool) {
        eventually(PATIENCE, what, async || {
            self.sim.conference(ROOM).is_some_and(|room| holds(&room))
        })
        .await;
    }

    /// The audit records with this text, whatever their outcome.
    fn audited(&self, text: &str) -> Vec<Outcome> {
        self.usher
            .audit()
            .into_iter()
            .filter(|record| record.text == text)
            .map(|record| record.outcome)
            .collect()
    }

    async fn stop(self) {
        self.usher.stop().await;
        self.sim.shutdown().await;
    }
}

/// A free loopback port, for a listener both sides must know before either
/// starts.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free loopback port")
}

/// Lets the daemon hear and act on what just happened, when the expected
/// outcome is that nothing happens.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(500)).await;
}

async fn first_connect_is_a_baseline(kind: PlatformKind) {
    let stage = Stage::new("baseline", kind, &["kick me"]).await;
    settle().await;
    assert!(stage.present("kick me"), "present before usher: no news");
    assert!(stage.usher.audit().is_empty(), "{:?}", stage.usher.audit());
    stage.stop().await;
}

async fn a_join_reaches_on_join(kind: PlatformKind) {
    let stage = Stage::new("join", kind, &[]).await;
    stage.join("kick me");
    stage
        .until("the joiner disconnected", |room| {
            room.find("kick me").is_none()
        })
        .await;
    stage.usher.audited(Outcome::Ok, "disconnect kick me").await;
    assert_eq!(
        stage.audited("disconnect kick me"),
        [Outcome::Ok],
        "sent once"
    );
    stage.stop().await;
}

async fn supported_commands_have_their_effect(kind: PlatformKind) {
    let capabilities = kind.capabilities();
    let stage = Stage::new("commands", kind, &[]).await;
    let mut checked = Vec::new();
    if capabilities.supports_verb("mute") {
        stage.join("mute me");
        stage
            .until("muted", |room| {
                room.find("mute me").is_some_and(|p| p.muted)
            })
            .await;
        checked.push("mute");
    }
    if capabilities.supports_verb("spotlight") {
        stage.join("spotlight me");
        stage
            .until("spotlit", |room| {
                room.find("spotlight me").is_some_and(|p| p.spotlit())
            })
            .await;
        checked.push("spotlight");
    }
    if capabilities.supports_verb("make_host") {
        stage.join("host me");
        stage
            .until("a host", |room| {
                room.find("host me").is_some_and(|p| p.is_host())
            })
            .await;
        checked.push("make_host");
    }
    if capabilities.supports_verb("mute_guests") {
        stage.join("mute everyone");
        stage
            .until("guests muted", |room| room.flags.guests_muted)
            .await;
        checked.push("mute_guests");
    }
    if capabilities.supports_verb("admit") {
        stage.step(Step::WaitingRoom(Joiner::guest("admit me")));
        stage
            .until("admitted", |room| {
                room.find("admit me").is_some_and(|p| p.in_room())
            })
            .await;
        checked.push("admit");
    }
    if capabilities.supports_verb("end") {
        stage.join("end me");
        stage
            .until("ended", |room| room.participants.is_empty())
            .await;
        checked.push("end");
    }
    // Last: a locked room holds newcomers in the waiting room.
    if capabilities.supports_verb("lock") {
        stage.join("lock me");
        stage.until("locked", |room| room.flags.locked).await;
        checked.push("lock");
    }
    for verb in &checked {
        eventually(PATIENCE, &format!("`{verb}` audited"), async || {
            stage.usher.audit().iter().any(|r| r.command == *verb)
        })
        .await;
        let ok = stage
            .usher
            .audit()
            .iter()
            .filter(|record| record.command == *verb && record.outcome == Outcome::Ok)
            .count();
        assert_eq!(ok, 1, "`{verb}` sent once and carried out");
    }
    stage.stop().await;
}

async fn a_lost_feed_resyncs_without_false_joins(kind: PlatformKind) {
    let stage = Stage::new("outage", kind, &["Ann", "Ben"]).await;
    stage
        .sim
        .fault(ROOM, outage(kind))
        .expect("the fault applies");
    stage.join("kick me");
    stage
        .until("the late joiner disconnected after the resync", |room| {
            room.find("kick me").is_none()
        })
        .await;
    assert!(stage.present("Ann") && stage.present("Ben"));
    stage.usher.audited(Outcome::Ok, "disconnect kick me").await;
    let commands: Vec<String> = stage
        .usher
        .audit()
        .into_iter()
        .map(|record| record.text)
        .collect();
    assert_eq!(
        commands,
        ["disconnect kick me"],
        "only the one who arrived while the feed was lost is news"
    );
    stage.stop().await;
}

async fn expired_credentials_are_renewed(kind: PlatformKind) {
    let stage = Stage::new("expiry", kind, &[]).await;
    stage
        .sim
        .fault(ROOM, Fault::ExpireTokens)
        .expect("the fault applies");
    stage.join("kick me");
    stage
        .until("the joiner disconnected with renewed credentials", |room| {
            room.find("kick me").is_none()
        })
        .await;
    stage.usher.audited(Outcome::Ok, "disconnect kick me").await;
    assert_eq!(
        stage.audited("disconnect kick me"),
        [Outcome::Ok],
        "sent once"
    );
    stage.stop().await;
}

/// Run for platforms that cannot send chat messages.
async fn unsupported_commands_are_audited_not_sent(kind: PlatformKind) {
    assert!(!kind.capabilities().supports_verb("message"));
    let stage = Stage::new("unsupported", kind, &[]).await;
    stage.join("greet me");
    eventually(PATIENCE, "the message audited as unsupported", async || {
        stage.audited("message \"hello\"") == [Outcome::Unsupported]
    })
    .await;
    let sent = stage
        .sim
        .calls()
        .into_iter()
        .filter(|call| call.path.contains("message"))
        .count();
    assert_eq!(sent, 0, "nothing reached the platform");
    stage.stop().await;
}

/// One module of contract tests per platform.
macro_rules! contract {
    ($($platform:ident: $kind:expr;)*) => {$(
        mod $platform {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn first_connect_is_a_baseline() {
                super::first_connect_is_a_baseline($kind).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn a_join_reaches_on_join() {
                super::a_join_reaches_on_join($kind).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn supported_commands_have_their_effect() {
                super::supported_commands_have_their_effect($kind).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn a_lost_feed_resyncs_without_false_joins() {
                super::a_lost_feed_resyncs_without_false_joins($kind).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn expired_credentials_are_renewed() {
                super::expired_credentials_are_renewed($kind).await;
            }
        }
    )*};
}

/// The unsupported-command check, for platforms without chat.
macro_rules! without_chat {
    ($($platform:ident: $kind:expr;)*) => {$(
        mod $platform {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn unsupported_commands_are_audited_not_sent() {
                super::unsupported_commands_are_audited_not_sent($kind).await;
            }
        }
    )*};
}

contract! {
    vmr: PlatformKind::Vmr;
    huawei: PlatformKind::Huawei;
    tencent: PlatformKind::Tencent;
    agora: PlatformKind::Agora;
}

without_chat! {
    huawei_without_chat: PlatformKind::Huawei;
    tencent_without_chat: PlatformKind::Tencent;
    agora_without_chat: PlatformKind::Agora;
}
