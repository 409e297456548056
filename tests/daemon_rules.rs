//! The daemon runs rules against a live room: the real daemon, in process,
//! moderates a room of the real simulator over loopback. What the rules ask
//! for must show in the simulator's room and in the audit log; what dry
//! run, shadow mode and the flip-flop guard hold back must never reach the
//! simulator; and a broken edit to a rule must leave the old one running.

mod common;

use std::time::Duration;

use common::daemon::*;
use usher::runtime::audit::{AuditRecord, Outcome};
use usher::sim::step::{Chat, Joiner, Step};

fn join(sim: &usher::sim::Simulator, name: &str) {
    sim.step(ROOM, &Step::Join(Joiner::guest(name))).unwrap();
}

fn chat(sim: &usher::sim::Simulator, from: &str, text: &str) {
    sim.step(
        ROOM,
        &Step::Chat(Chat {
            from: from.into(),
            text: text.into(),
        }),
    )
    .unwrap();
}

/// The one `ok` record with this text, checked for its rule and event.
fn ok_record<'a>(
    records: &'a [AuditRecord],
    text: &str,
    rule: &str,
    event: &str,
) -> &'a AuditRecord {
    let found: Vec<&AuditRecord> = records
        .iter()
        .filter(|r| r.text == text && r.outcome == Outcome::Ok)
        .collect();
    assert_eq!(found.len(), 1, "one ok record `{text}` in {records:#?}");
    let record = found[0];
    assert_eq!(record.rule, rule, "{record:?}");
    assert_eq!(record.event, event, "{record:?}");
    assert_eq!(record.room, ROOM);
    assert_eq!(record.attempts, 1, "{record:?}");
    record
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shipped_rules_moderate_a_live_room() {
    let sim = simulator(vec![room(vec![Joiner::host("Ada")])]).await;
    let dir = TestDir::new("shipped_rules");
    dir.shipped_rules();
    let rules = [
        "auto_mute_guests",
        "lock_when_full: { max: 4, reserve: 1 }",
        "chat_commands",
    ];
    let usher = Usher::start(dir, &config(&sim, &rules, "")).await;
    let state = || sim.conference(ROOM).unwrap();

    // Guests are muted as they arrive; the third person fills the room.
    join(&sim, "Bob");
    join(&sim, "Cat");
    eventually(
        PATIENCE,
        "Bob and Cat muted and the room locked",
        async || {
            let room = state();
            room.find("Bob").unwrap().muted && room.find("Cat").unwrap().muted && room.flags.locked
        },
    )
    .await;
    // Dan waits; when Bob leaves, Dan is let in (and muted as he arrives).
    join(&sim, "Dan");
    assert!(state().find("Dan").unwrap().is_waiting());
    sim.step(ROOM, &Step::Leave("Bob".into())).unwrap();
    eventually(PATIENCE, "Dan admitted and muted", async || {
        let room = state();
        let dan = room.find("Dan").unwrap();
        dan.in_room() && dan.muted
    })
    .await;
    assert!(state().flags.locked, "still full after Dan came in");

    // A host may unlock a full room; a guest's commands are ignored, and
    // the guest is told so once; a host's `!lock` locks it again.
    chat(&sim, "Ada", "!unlock");
    eventually(PATIENCE, "the host's !unlock obeyed", async || {
        !state().flags.locked
    })
    .await;
    chat(&sim, "Cat", "!lock");
    chat(&sim, "Cat", "!lock");
    chat(&sim, "Ada", "!lock");
    // The platform shows a command's effect before usher hears back, so
    // wait for the audit of the last one.
    eventually(
        PATIENCE,
        "the host's !lock obeyed and audited",
        async || usher.audit().iter().filter(|r| r.text == "lock").count() == 2,
    )
    .await;
    assert!(state().flags.locked);

    let records = usher.audit();
    let bob = ok_record(&records, "mute Bob", "auto_mute_guests", "participant");
    assert_eq!(bob.handler, "on_join");
    let target = bob.target.as_ref().expect("a mute names its target");
    assert_eq!(target.name, "Bob");
    ok_record(&records, "mute Cat", "auto_mute_guests", "participant");
    // Dan's mute came from his admission, his `admit` from Bob leaving.
    ok_record(&records, "mute Dan", "auto_mute_guests", "participant");
    ok_record(&records, "admit Dan", "lock_when_full", "participant_left");
    ok_record(
        &records,
        "message \"This lecture is full. Hosts can still join.\"",
        "lock_when_full",
        "participant",
    );
    ok_record(&records, "unlock", "chat_commands", "message");
    let locks: Vec<(&str, &str)> = records
        .iter()
        .filter(|r| r.text == "lock")
        .map(|r| (r.rule.as_str(), r.outcome.as_str()))
        .collect();
    assert_eq!(
        locks,
        [("lock_when_full", "ok"), ("chat_commands", "ok")],
        "the room was locked by the rule, then by the host; never by the guest"
    );
    let told = records
        .iter()
        .filter(|r| r.text == "message \"Only hosts can use chat commands.\"")
        .count();
    assert_eq!(told, 1, "the guest is told once: {records:#?}");
    let cat_told = records
        .iter()
        .find(|r| r.text.contains("Only hosts"))
        .unwrap();
    assert_eq!(cat_told.participant.as_ref().unwrap().name, "Cat");
    assert!(
        records.iter().all(|r| r.outcome == Outcome::Ok),
        "{records:#?}"
    );

    // The simulator saw each of these once, and every one worked.
    for name in ["Cat", "Dan"] {
        let path = format!("participants/{}/mute", uuid_of(&sim, name));
        assert_eq!(answers(&sim, &path), [200], "{name} muted once");
    }
    assert_eq!(answers(&sim, "lock"), [200, 200]);
    assert_eq!(answers(&sim, "unlock"), [200]);
    assert_eq!(answers(&sim, "message"), [200, 200]);
    assert_eq!(
        commands(&sim).len(),
        records.len(),
        "one call per audited command: {:?}",
        command_paths(&sim)
    );
    assert!(!state().find("Ada").unwrap().muted, "hosts are never muted");
    usher.stop().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_audits_everything_and_sends_nothing() {
    let sim = simulator(vec![room(vec![Joiner::host("Ada")])]).await;
    let dir = TestDir::new("dry_run");
    dir.shipped_rules();
    let rules = ["auto_mute_guests", "lock_when_full: { max: 3, reserve: 0 }"];
    let usher = Usher::start(dir, &config(&sim, &rules, "dry_run: true\n")).await;
    join(&sim, "Bob");
    join(&sim, "Cat");
    usher.audited(Outcome::DryRun, "lock").await;
    for text in [
        "mute Bob",
        "mute Cat",
        "message \"This lecture is full. Hosts can still join.\"",
    ] {
        usher.audited(Outcome::DryRun, text).await;
    }

    let records = usher.audit();
    assert_eq!(records.len(), 4, "{records:#?}");
    assert!(records.iter().all(|r| r.dry_run && r.attempts == 0));
    let text = usher.dir.audit_text();
    assert_eq!(text.matches("\"outcome\":\"dry_run\"").count(), 4, "{text}");
    assert!(
        commands(&sim).is_empty(),
        "nothing but sessions reaches the platform: {:?}",
        command_paths(&sim)
    );
    let room = sim.conference(ROOM).unwrap();
    assert!(!room.flags.locked);
    assert!(!room.find("Bob").unwrap().muted && !room.find("Cat").unwrap().muted);
    assert_eq!(
        usher
            .metric("usher_commands_total{command=\"mute\",outcome=\"dry_run\"}")
            .await,
        Some(2.0)
    );
    usher.stop().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shadow_rule_sends_nothing_while_the_others_do() {
    let sim = simulator(vec![room(vec![Joiner::host("Ada")])]).await;
    let dir = TestDir::new("shadow");
    dir.shipped_rules();
    let rules = [
        "{ rule: auto_mute_guests, shadow: true }",
        "lock_when_full: { max: 3, reserve: 0 }",
    ];
    let usher = Usher::start(dir, &config(&sim, &rules, "")).await;
    join(&sim, "Bob");
    join(&sim, "Cat");
    usher.audited(Outcome::Ok, "lock").await;
    usher
        .audited(
            Outcome::Ok,
            "message \"This lecture is full. Hosts can still join.\"",
        )
        .await;
    usher.audited(Outcome::Shadow, "mute Bob").await;
    usher.audited(Outcome::Shadow, "mute Cat").await;

    let room = sim.conference(ROOM).unwrap();
    assert!(
        room.flags.locked,
        "the rule that is not in shadow mode acts"
    );
    assert!(!room.find("Bob").unwrap().muted && !room.find("Cat").unwrap().muted);
    let records = usher.audit();
    for record in &records {
        match record.rule.as_str() {
            "auto_mute_guests" => {
                assert_eq!(record.outcome, Outcome::Shadow, "{record:?}");
                assert!(record.dry_run);
            }
            _ => assert_eq!(record.outcome, Outcome::Ok, "{record:?}"),
        }
    }
    let sent: Vec<String> = commands(&sim).into_iter().map(|c| c.path).collect();
    assert_eq!(sent, ["lock", "message"], "no mute reaches the platform");
    usher.stop().await;
    sim.shutdown().await;
}

const GREETER: &str =
    "//! Greets whoever joins.\nfn on_join(p) {\n    room.message(\"hello \" + p.name);\n}\n";
const BROKEN_GREETER: &str =
    "//! Greets whoever joins.\nfn on_join(p) {\n    room.message(\"hello \" + );\n}\n";
const WELCOMER: &str =
    "//! Welcomes whoever joins.\nfn on_join(p) {\n    room.message(\"welcome \" + p.name);\n}\n";
const BYE: &str =
    "//! Says goodbye.\nfn on_join(p) {\n    room.message(\"goodbye \" + p.name);\n}\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_edit_leaves_the_old_rule_running() {
    let sim = simulator(vec![room(vec![Joiner::host("Ada")])]).await;
    let dir = TestDir::new("reload");
    dir.rule("greeter", GREETER);
    let usher = Usher::start(dir, &config(&sim, &["greeter"], "")).await;
    let reloads = async || {
        let status = usher.status().await;
        (
            status["reloads_ok"].as_u64().unwrap(),
            status["reloads_failed"].as_u64().unwrap(),
        )
    };
    join(&sim, "Bob");
    usher.audited(Outcome::Ok, "message \"hello Bob\"").await;

    // A syntax error is refused, pointing at it; the old rule keeps working.
    let file = usher.dir.rule("greeter", BROKEN_GREETER);
    eventually(
        Duration::from_secs(5),
        "the broken edit refused",
        async || reloads().await.1 >= 1,
    )
    .await;
    let status = usher.status().await;
    let error = status["last_reload_error"]
        .as_str()
        .expect("a reload error");
    let position = format!("{}:3:", file.display());
    assert!(
        error.contains(&position),
        "{error} names {position}<column>"
    );
    let column = error[error.find(&position).unwrap() + position.len()..]
        .split(':')
        .next()
        .unwrap();
    assert!(column.parse::<u32>().is_ok(), "a column in {error}");
    assert_eq!(reloads().await.0, 0, "nothing was reloaded");
    join(&sim, "Cat");
    usher.audited(Outcome::Ok, "message \"hello Cat\"").await;

    // The fix is taken, with its new behaviour.
    usher.dir.rule("greeter", WELCOMER);
    eventually(
        Duration::from_secs(5),
        "the fixed rule reloaded",
        async || reloads().await.0 >= 1,
    )
    .await;
    assert!(usher.status().await["last_reload_error"].is_null());
    join(&sim, "Dan");
    usher.audited(Outcome::Ok, "message \"welcome Dan\"").await;

    // A reload on request (SIGHUP) happens even when nothing changed, which
    // the watcher alone never does...
    let (ok, failed) = reloads().await;
    usher.daemon.reload();
    eventually(PATIENCE, "a reload on request", async || {
        reloads().await == (ok + 1, failed)
    })
    .await;
    // ...and takes a change at once.
    usher.dir.rule("greeter", BYE);
    usher.daemon.reload();
    eventually(PATIENCE, "a reload on request", async || {
        reloads().await.0 >= ok + 2
    })
    .await;
    join(&sim, "Eve");
    usher.audited(Outcome::Ok, "message \"goodbye Eve\"").await;

    let greetings: Vec<String> = usher.audit().into_iter().map(|r| r.text).collect();
    assert_eq!(
        greetings,
        [
            "message \"hello Bob\"",
            "message \"hello Cat\"",
            "message \"welcome Dan\"",
            "message \"goodbye Eve\"",
        ]
    );
    assert_eq!(answers(&sim, "message"), [200; 4]);
    usher.stop().await;
    sim.shutdown().await;
}

const MUTER: &str = "//! Mutes a guest whenever anything about them changes.\nfn on_update(p, before) {\n    if p.is_guest && !p.muted { p.mute(); }\n}\n";
const UNMUTER: &str = "//! Unmutes a guest whenever anything about them changes.\nfn on_update(p, before) {\n    if p.is_guest && p.muted { p.unmute(); }\n}\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_flip_flop_guard_stops_rules_that_fight() {
    let sim = simulator(vec![room(vec![Joiner::host("Ada"), Joiner::guest("Bob")])]).await;
    let dir = TestDir::new("flip_flop");
    dir.rule("muter", MUTER);
    dir.rule("unmuter", UNMUTER);
    let usher = Usher::start(dir, &config(&sim, &["muter", "unmuter"], "")).await;
    let bob = uuid_of(&sim, "Bob");
    let flips = || {
        answers(&sim, &format!("participants/{bob}/mute")).len()
            + answers(&sim, &format!("participants/{bob}/unmute")).len()
    };

    // Any change to Bob sets them off: mute, unmute, mute, ...
    sim.step(ROOM, &Step::RaiseHand("Bob".into())).unwrap();
    let blocked = || {
        usher
            .audit()
            .into_iter()
            .filter(|r| r.outcome == Outcome::Blocked)
            .collect::<Vec<_>>()
    };
    eventually(PATIENCE, "the guard to hold a command back", async || {
        !blocked().is_empty()
    })
    .await;
    // The default tolerates 4 changes of direction a minute: 5 commands.
    eventually(PATIENCE, "5 commands at the platform", async || {
        flips() == 5
    })
    .await;
    let record = &blocked()[0];
    assert_eq!(record.text, "unmute Bob");
    assert_eq!(record.rule, "unmuter");
    let error = record.error.as_deref().unwrap();
    assert!(
        error.contains("flip-flop") && error.contains("muter, unmuter"),
        "{error}"
    );
    assert!(sim.conference(ROOM).unwrap().find("Bob").unwrap().muted);

    // The next change is held back too, and nothing more reaches Bob.
    sim.step(ROOM, &Step::LowerHand("Bob".into())).unwrap();
    eventually(PATIENCE, "a second command held back", async || {
        blocked().len() >= 2
    })
    .await;
    assert_eq!(flips(), 5, "{:?}", command_paths(&sim));
    // The last mute's answer may be audited after the first refusal.
    eventually(PATIENCE, "every command audited", async || {
        usher.audit().len() == 7
    })
    .await;
    let mut sent: Vec<(String, &str)> = usher
        .audit()
        .into_iter()
        .map(|r| (r.text, r.outcome.as_str()))
        .collect();
    sent.sort();
    let expected = [
        ("mute Bob", "ok"),
        ("mute Bob", "ok"),
        ("mute Bob", "ok"),
        ("unmute Bob", "blocked"),
        ("unmute Bob", "blocked"),
        ("unmute Bob", "ok"),
        ("unmute Bob", "ok"),
    ]
    .map(|(text, outcome)| (text.to_owned(), outcome));
    assert_eq!(sent, expected);
    let status = usher.status().await;
    let errors = status["rooms"][ROOM]["last_errors"].to_string();
    assert!(errors.contains("flip-flop guard"), "{errors}");
    usher.stop().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_reply_to_two_guests_is_sent_twice() {
    let sim = simulator(vec![room(vec![
        Joiner::host("Ada"),
        Joiner::guest("Bob"),
        Joiner::guest("Cat"),
    ])])
    .await;
    let dir = TestDir::new("same-reply-twice");
    dir.shipped_rules();
    let usher = Usher::start(dir, &config(&sim, &["chat_commands"], "")).await;
    chat(&sim, "Bob", "!lock");
    chat(&sim, "Cat", "!lock");
    eventually(PATIENCE, "both guests are told", async || {
        usher
            .audit()
            .iter()
            .filter(|r| r.text.starts_with("message") && r.outcome == Outcome::Ok)
            .count()
            == 2
    })
    .await;
    let told: Vec<String> = usher
        .audit()
        .iter()
        .filter_map(|r| r.participant.as_ref().map(|who| who.name.clone()))
        .collect();
    assert_eq!(
        told,
        ["Bob", "Cat"],
        "each guest got the reply meant for them"
    );
    usher.stop().await;
    sim.shutdown().await;
}

const FAILING: &str = "//! Fails on every join, two calls deep.\nfn on_join(p) {\n    greet(p);\n}\nfn greet(p) {\n    p.shout();\n}\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_rule_is_audited_and_shown_where_it_failed() {
    let sim = simulator(vec![room(vec![Joiner::host("Ada")])]).await;
    let dir = TestDir::new("failing");
    dir.rule("failing", FAILING);
    let usher = Usher::start(dir, &config(&sim, &["failing"], "")).await;
    join(&sim, "Bob");
    let failure = usher.audited(Outcome::RuleFailed, "the rule failed").await;
    let error = failure.error.clone().unwrap_or_default();
    assert!(
        error.contains(
            "failing.rhai:6:7: in `greet`, called from `on_join` at 3:5: Function not found: shout"
        ),
        "{error}"
    );
    assert_eq!(
        failure.participant.as_ref().map(|who| who.name.as_str()),
        Some("Bob")
    );
    let status = usher.status().await;
    let errors = status["rooms"][ROOM]["last_errors"].to_string();
    assert!(errors.contains("failing.rhai:6:7: in `greet`"), "{errors}");
    usher.stop().await;
    sim.shutdown().await;
}
