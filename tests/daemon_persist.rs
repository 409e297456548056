//! Rule state that survives the process: the real binary, killed with
//! SIGKILL in the middle of a hand queue and started again on the same
//! config, carries on with the same queue and the same guest holding the
//! floor, and counts nobody who stayed as a new arrival.

mod common;

use std::time::Duration;

use common::daemon::*;
use usher::sim::step::{Joiner, Step};

fn muted_guest(name: &str) -> Joiner {
    Joiner {
        muted: true,
        ..Joiner::guest(name)
    }
}

fn unmutes_of(sim: &usher::sim::Simulator, name: &str) -> usize {
    answers(sim, &format!("participants/{}/unmute", uuid_of(sim, name))).len()
}

/// Starts `usher run` in `dir` and waits until its room is connected.
async fn started(dir: &TestDir) -> Process {
    let usher = Process::spawn(dir.path(), &["run", "-c", "usher.yaml"], &[]);
    let http = usher.http_addr().await;
    let client = reqwest::Client::new();
    eventually(PATIENCE, "/healthz 200", async || {
        get(&client, http, "/healthz").await.0 == 200
    })
    .await;
    usher
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hand_queue_survives_kill_9() {
    let sim = simulator(vec![room(vec![
        Joiner::host("Ada"),
        muted_guest("Bob"),
        muted_guest("Cat"),
        muted_guest("Dan"),
    ])])
    .await;
    let dir = TestDir::new("persist_kill9");
    dir.shipped_rules();
    dir.write("hall.pin", PIN);
    dir.write(
        "usher.yaml",
        &config(&sim, &["hand_queue: { silence: 600 }"], ""),
    );
    let usher = started(&dir).await;
    for name in ["Bob", "Cat", "Dan"] {
        sim.step(ROOM, &Step::RaiseHand(name.to_owned())).unwrap();
    }
    eventually(PATIENCE, "Bob given the floor", async || {
        unmutes_of(&sim, "Bob") == 1
    })
    .await;
    let (cat, dan) = (uuid_of(&sim, "Cat"), uuid_of(&sim, "Dan"));
    let saved = dir.join("usher-state/hall@usher.test.json");
    eventually(PATIENCE, "the queue saved", async || {
        std::fs::read_to_string(&saved).is_ok_and(|text| text.contains(&cat) && text.contains(&dan))
    })
    .await;
    usher.signal("KILL");
    drop(usher);
    let before = commands(&sim).len();

    let _usher = started(&dir).await;
    // A moment for a wrongly fresh start to show (a join, a command).
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        commands(&sim).len(),
        before,
        "nothing sent on restart: {:?}",
        command_paths(&sim)
    );
    sim.step(ROOM, &Step::LowerHand("Bob".to_owned())).unwrap();
    eventually(PATIENCE, "Bob muted and Cat given the floor", async || {
        mutes_of(&sim, "Bob") == 1 && unmutes_of(&sim, "Cat") == 1
    })
    .await;
    assert_eq!(unmutes_of(&sim, "Dan"), 0, "Dan waits his turn");
    sim.step(ROOM, &Step::LowerHand("Cat".to_owned())).unwrap();
    eventually(PATIENCE, "Dan given the floor after Cat", async || {
        mutes_of(&sim, "Cat") == 1 && unmutes_of(&sim, "Dan") == 1
    })
    .await;
    assert_eq!(unmutes_of(&sim, "Bob"), 1, "{:?}", command_paths(&sim));
    sim.shutdown().await;
}
