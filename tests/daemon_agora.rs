//! The daemon on an Agora room, end to end: the real daemon creates its
//! room on the Agora simulator (seed 004's call, webhooks pointed at its
//! own listener), takes the simulator's signed callbacks through the
//! shared webhook listener, and runs the shipped rules unchanged. What
//! Agora can do reaches the simulator; what it cannot is audited as
//! unsupported and never sent.

mod common;

use common::daemon::*;
use usher::model::Secret;
use usher::platform::agora::auth::signature_headers;
use usher::platform::agora::inferred::state;
use usher::runtime::audit::Outcome;
use usher::sim::agora::{AgoraSimOptions, AgoraSimulator};
use usher::sim::step::{Chat, Joiner, Step};

const AG_ROOM: &str = "physics-101";
const APP_ID: &str = "app-e2e-4242";
const TOKEN: &str = "tok-e2e-77aa";
const HOOK_SECRET: &str = "whsec-e2e-9911";

/// A free loopback port (bound, then let go) for the daemon's webhook
/// listener, whose address the config must name before it starts.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

fn config(sim: &AgoraSimulator, dir: &TestDir, hooks: u16) -> String {
    format!(
        r#"platforms:
  ag:
    kind: agora
    url: {url}
    region: cn
    app_id: {APP_ID}
    token_file: {token}
    webhook_secret_file: {secret}
    gap_hold: 300ms
    create:
      {AG_ROOM}: {{ name: Physics 101, duration: 1h, close_delay: 10m, participant_limit: 200 }}
webhooks: {{ listen: "127.0.0.1:{hooks}", public_url: "http://127.0.0.1:{hooks}/" }}
profiles:
  lecture: [auto_mute_guests, lock_when_full: {{ max: 3, reserve: 0 }}, chat_commands]
rooms:
  - {{ alias: {AG_ROOM}, platform: ag, profile: lecture }}
rules_dir: rules
audit_log: audit.jsonl
http: {{ listen: 127.0.0.1:0 }}
"#,
        url = sim.base_url(),
        token = dir.join("agora.token").display(),
        secret = dir.join("hook.secret").display(),
    )
}

fn step(sim: &AgoraSimulator, step: Step) {
    sim.step(AG_ROOM, &step).expect("the step is simulated");
}

fn chat(from: &str, text: &str) -> Step {
    Step::Chat(Chat {
        from: from.into(),
        text: text.into(),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shipped_rules_moderate_an_agora_room_and_what_agora_cannot_do_is_unsupported() {
    let dir = TestDir::new("agora");
    dir.shipped_rules();
    dir.write("hook.secret", &format!("{HOOK_SECRET}\n"));
    let sim = AgoraSimulator::start(
        loopback(0),
        AgoraSimOptions {
            app_id: APP_ID.to_owned(),
            region: "cn".to_owned(),
            token: Some(Secret::new(TOKEN)),
            token_file: Some(dir.join("agora.token")),
            webhook_secret: Some(Secret::new(HOOK_SECRET)),
            webhook_to: None,
        },
        Vec::new(),
    )
    .await
    .expect("the simulator starts");
    let hooks = free_port();
    let text = config(&sim, &dir, hooks);
    let usher = Usher::start(dir, &text).await;
    assert_eq!(
        sim.room_state(AG_ROOM),
        Some(state::RUNNING),
        "usher created its room"
    );

    step(&sim, Step::Join(Joiner::host("Ada")));
    step(&sim, Step::Join(Joiner::guest("Bob")));
    usher.audited(Outcome::Ok, "mute Bob").await;
    assert!(sim.conference(AG_ROOM).unwrap().find("Bob").unwrap().muted);

    // The room fills: Agora has no lock, and no way to post to the chat.
    step(&sim, Step::Join(Joiner::guest("Cat")));
    usher.audited(Outcome::Ok, "mute Cat").await;
    usher.audited(Outcome::Unsupported, "lock").await;
    usher
        .audited(
            Outcome::Unsupported,
            "message \"This lecture is full. Hosts can still join.\"",
        )
        .await;
    step(&sim, chat("Ada", "!mute guests"));
    usher.audited(Outcome::Unsupported, "mute_guests").await;

    // A forged callback is refused at the listener and changes nothing.
    let forged = br#"{"roomUuid":"physics-101","cmd":20,"sequence":9999,"version":1,"ts":0,"data":{"onlineUsers":[{"userUuid":"m","userName":"Mallory","role":"host"}]}}"#;
    let mut request = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{hooks}/hooks/ag"))
        .body(forged.to_vec());
    for (name, value) in signature_headers(&Secret::new("a guess"), forged) {
        request = request.header(name, value);
    }
    assert_eq!(request.send().await.unwrap().status(), 401);

    step(&sim, chat("Ada", "!end"));
    usher.audited(Outcome::Ok, "end").await;
    assert_eq!(sim.room_state(AG_ROOM), Some(state::CLOSED));
    assert!(sim.users(AG_ROOM).is_empty(), "everyone was ejected");

    let records = usher.audit();
    let sent: Vec<(&str, &str)> = records
        .iter()
        .map(|r| (r.text.as_str(), r.outcome.as_str()))
        .collect();
    assert!(
        records
            .iter()
            .all(|r| r.outcome == Outcome::Ok || r.outcome == Outcome::Unsupported),
        "{sent:?}"
    );
    assert!(
        !sent.iter().any(|(text, _)| text.contains("Mallory")),
        "{sent:?}"
    );
    // Only what Agora can do reached it: two mutes and the end.
    let commands: Vec<(String, u16)> = sim
        .calls()
        .into_iter()
        .filter(|call| call.method != "GET" && !call.path.is_empty())
        .map(|call| (call.path, call.status))
        .collect();
    assert_eq!(
        commands,
        [
            ("streams".to_owned(), 200),
            ("streams".to_owned(), 200),
            ("states/3".to_owned(), 200)
        ]
    );
    let metrics = usher.metrics().await;
    assert!(
        metric(
            &metrics,
            "usher_webhooks_total{platform=\"ag\",status=\"401\"}"
        ) == Some(1.0),
        "{metrics}"
    );
    assert!(
        metric(
            &metrics,
            "usher_webhooks_total{platform=\"ag\",status=\"200\"}"
        )
        .is_some_and(|count| count >= 5.0),
        "{metrics}"
    );
    let status = usher.get("/status").await.1;
    for secret in [TOKEN, HOOK_SECRET] {
        assert!(!status.contains(secret) && !metrics.contains(secret));
        assert!(!usher.dir.audit_text().contains(secret));
    }
    usher.stop().await;
    sim.shutdown().await;
}
