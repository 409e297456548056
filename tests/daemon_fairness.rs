//! One rule cannot starve a room: a rule that asks for thousands of
//! commands in one call is failed and disabled, one that keeps asking for
//! many waits its turn behind nobody else's, the room's queue is bounded and
//! a stop ends in bounded time whatever is queued. The real daemon, in
//! process, against the real simulator over loopback; the simulator's
//! record of calls is the evidence.

mod common;

use std::time::{Duration, Instant};

use common::daemon::*;
use usher::runtime::audit::Outcome;
use usher::sim::Simulator;
use usher::sim::step::{Joiner, Step};

const GUESTS: usize = 16;

/// Asks for 10,000 distinct chat messages whenever someone joins.
const FLOOD: &str = "//! Floods the chat.\nfn on_join(p) {\n    for n in 0..10000 {\n        room.message(`${p.name} ${n}`);\n    }\n}\n";

/// Asks for 100 distinct chat messages (the default cap) whenever someone
/// joins.
const CHATTY: &str = "//! Chats a lot.\nfn on_join(p) {\n    for n in 0..100 {\n        room.message(`${p.name} ${n}`);\n    }\n}\n";

fn guest(n: usize) -> String {
    format!("Guest {n:02}")
}

fn join_guests(sim: &Simulator) {
    for n in 0..GUESTS {
        sim.step(ROOM, &Step::Join(Joiner::guest(guest(n))))
            .unwrap();
    }
}

async fn all_muted(sim: &Simulator) {
    eventually(PATIENCE, "every guest muted", async || {
        (0..GUESTS).all(|n| {
            sim.conference(ROOM)
                .and_then(|room| room.find(&guest(n)).map(|p| p.muted))
                .unwrap_or(false)
        })
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rule_asking_for_ten_thousand_commands_is_failed_and_disabled() {
    let sim = simulator(vec![room(vec![Joiner::host("Ada")])]).await;
    let dir = TestDir::new("flood");
    dir.shipped_rules();
    dir.rule("flood", FLOOD);
    let usher = Usher::start(dir, &config(&sim, &["flood", "auto_mute_guests"], "")).await;
    join_guests(&sim);
    all_muted(&sim).await;

    let sent = commands(&sim);
    assert!(
        sent.iter().all(|call| call.path.ends_with("/mute")),
        "nothing of the flood was sent: {:?}",
        command_paths(&sim)
    );
    assert_eq!(sent.len(), GUESTS, "{:?}", command_paths(&sim));
    eventually(PATIENCE, "/status to show the flood disabled", async || {
        let status = usher.status().await;
        let rules = status["rooms"][ROOM]["rules"].as_array().unwrap().clone();
        rules
            .iter()
            .any(|r| r["name"] == "flood" && r["disabled"] == true && r["errors"] == 5)
    })
    .await;

    let audit = usher.audit();
    let failed: Vec<_> = audit
        .iter()
        .filter(|r| r.outcome == Outcome::RuleFailed)
        .collect();
    assert_eq!(failed.len(), 5, "one record a failed call, until disabled");
    let error = failed[0].error.as_deref().unwrap();
    assert!(
        error.contains("rules/flood.rhai:4:")
            && error.contains("more than 100 commands (limits.intents)"),
        "{error}"
    );
    assert_eq!(
        audit.len(),
        GUESTS + 5,
        "the audit log holds the mutes and the failures, nothing else"
    );
    let stopping = Instant::now();
    usher.stop().await;
    assert!(stopping.elapsed() < Duration::from_secs(8));
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rules_backlog_never_delays_another_rules_commands() {
    const QUEUE: usize = 150;
    let sim = simulator(vec![room(vec![Joiner::host("Ada")])]).await;
    let dir = TestDir::new("fair");
    dir.shipped_rules();
    dir.rule("chatty", CHATTY);
    let extra = format!("dispatch: {{ rate: 20, burst: 1, queue: {QUEUE} }}\n");
    let usher = Usher::start(dir, &config(&sim, &["chatty", "auto_mute_guests"], &extra)).await;
    join_guests(&sim);
    all_muted(&sim).await;

    // The chatty rule asked for 1,600 messages ahead of every mute; each
    // mute waited for at most one message a guest before it.
    let sent: Vec<String> = commands(&sim).into_iter().map(|c| c.path).collect();
    let last_mute = sent
        .iter()
        .rposition(|path| path.ends_with("/mute"))
        .unwrap();
    assert!(
        last_mute < 2 * GUESTS + 2,
        "the last mute was command {last_mute}: {sent:?}"
    );
    eventually(PATIENCE, "the queue to overflow", async || {
        usher.audit().iter().any(|r| r.outcome == Outcome::Overflow)
    })
    .await;

    // Stopping with a full queue (some 7 s of messages at 20/s) ends in
    // bounded time, and every queued command is accounted for.
    let stopping = Instant::now();
    let dir = usher.stop().await;
    let took = stopping.elapsed();
    assert!(took < Duration::from_secs(8), "the stop took {took:?}");
    let audit = dir.audit();
    let count = |outcome: Outcome| audit.iter().filter(|r| r.outcome == outcome).count();
    let (ok, cancelled, overflow) = (
        count(Outcome::Ok),
        count(Outcome::Cancelled),
        count(Outcome::Overflow),
    );
    assert!(cancelled > 0, "the stop cancelled what was queued");
    assert_eq!(
        ok + cancelled + overflow,
        GUESTS * 101,
        "every command asked for is audited once"
    );
    assert_eq!(
        ok,
        commands(&sim).len(),
        "what was sent is what is audited ok"
    );
    assert!(
        ok - GUESTS + cancelled <= QUEUE + GUESTS * 2,
        "the queue held at most about {QUEUE}: {ok} sent, {cancelled} cancelled"
    );
    sim.shutdown().await;
}
