//! Several `usher run` processes sharing 30 simulated rooms through a real
//! etcd: the rooms spread evenly; a killed instance's rooms are taken over
//! within the lease plus a resync, and nobody is muted twice; an instance
//! stopped (SIGSTOP) past its lease sends nothing when it wakes; a rolling
//! restart leaves no room unmoderated for long. Each test starts its own
//! etcd and is skipped, saying so, only when `etcd` is not installed.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::daemon::*;
use common::etcd::{Etcd, available, start};
use serde_json::Value;
use usher::model::Secret;
use usher::sim::step::{Joiner, Step};
use usher::sim::{RoomSpec, Simulator};

/// The lease the tests use: short, so failover is quick.
const LEASE_TTL: Duration = Duration::from_secs(2);

fn alias(n: usize) -> String {
    format!("room-{n:02}@usher.test")
}

async fn rooms_simulator(count: usize) -> Simulator {
    queue_simulator(count, &[]).await
}

/// `count` rooms, the first with these guests (muted) in it from the start.
async fn queue_simulator(count: usize, guests: &[&str]) -> Simulator {
    let rooms = (0..count)
        .map(|n| {
            let mut participants = vec![Joiner::host("Ada")];
            if n == 0 {
                participants.extend(guests.iter().map(|name| Joiner {
                    muted: true,
                    ..Joiner::guest(*name)
                }));
            }
            RoomSpec {
                alias: alias(n),
                pin: Some(Secret::new(PIN)),
                token_expiry: Duration::from_secs(120),
                participants,
            }
        })
        .collect();
    simulator(rooms).await
}

/// How often `name` was unmuted in `room`.
fn unmutes_in(sim: &Simulator, room: &str, name: &str) -> usize {
    let Some(uuid) = sim
        .conference(room)
        .and_then(|conference| conference.find(name).map(|p| p.uuid.clone()))
    else {
        return 0;
    };
    let path = format!("participants/{uuid}/unmute");
    sim.calls()
        .iter()
        .filter(|call| call.room.as_deref() == Some(room) && call.path == path)
        .count()
}

/// The cluster's config: every room with `auto_mute_guests`, the node's
/// name from `USHER_NODE`.
fn cluster_config(sim: &Simulator, etcd: &Etcd, count: usize) -> String {
    let rooms: String = (0..count)
        .map(|n| {
            format!(
                "  - alias: {}\n    pin_file: hall.pin\n    rules:\n      - auto_mute_guests\n      - hand_queue: {{ silence: 600 }}\n",
                alias(n)
            )
        })
        .collect();
    format!(
        "platform:\n  url: {url}\n  display_name: usher\nrules_dir: rules\nrooms:\n{rooms}http: {{ listen: 127.0.0.1:0 }}\ncluster:\n  etcd: [{etcd}]\n  node: ${{USHER_NODE}}\n  lease_ttl: {ttl}s\n",
        url = sim.base_url(),
        etcd = etcd.url(),
        ttl = LEASE_TTL.as_secs(),
    )
}

/// One `usher run` of the cluster.
struct Instance {
    node: String,
    process: Process,
    http: SocketAddr,
}

async fn instance(dir: &TestDir, node: &str) -> Instance {
    let process = Process::spawn(
        dir.path(),
        &["run", "-c", "usher.yaml"],
        &[("USHER_NODE", node), ("RUST_LOG", "usher=info")],
    );
    let http = process.http_addr().await;
    Instance {
        node: node.to_owned(),
        process,
        http,
    }
}

async fn status(http: SocketAddr) -> Value {
    let (_, body) = get(&reqwest::Client::new(), http, "/status").await;
    serde_json::from_str(&body).unwrap_or(Value::Null)
}

/// The rooms this instance runs and has connected.
async fn connected_rooms(instance: &Instance) -> Vec<String> {
    let status = status(instance.http).await;
    status["rooms"]
        .as_object()
        .map(|rooms| {
            rooms
                .iter()
                .filter(|(_, room)| room["phase"] == "connected")
                .map(|(alias, _)| alias.clone())
                .collect()
        })
        .unwrap_or_default()
}

/// Every room's owner, as `instance` last saw etcd.
async fn owners(instance: &Instance) -> BTreeMap<String, String> {
    let status = status(instance.http).await;
    serde_json::from_value(status["cluster"]["owners"].clone()).unwrap_or_default()
}

/// Waits until `instances` together run all `count` rooms, connected, each
/// room on one of them, and returns who runs what.
async fn settled(
    instances: &[&Instance],
    count: usize,
    patience: Duration,
) -> BTreeMap<String, Vec<String>> {
    let mut found = BTreeMap::new();
    eventually(
        patience,
        "every room connected on exactly one instance",
        async || {
            found.clear();
            let mut total = 0;
            for instance in instances {
                let rooms = connected_rooms(instance).await;
                total += rooms.len();
                found.insert(instance.node.clone(), rooms);
            }
            let mut all: Vec<&String> = found.values().flatten().collect();
            all.sort();
            all.dedup();
            total == count && all.len() == count
        },
    )
    .await;
    found
}

/// The commands the simulator got, by room and path, that came more than once.
fn repeated_commands(sim: &Simulator) -> Vec<String> {
    let mut seen: BTreeMap<(String, String), usize> = BTreeMap::new();
    for call in commands(sim) {
        *seen
            .entry((call.room.unwrap_or_default(), call.path))
            .or_default() += 1;
    }
    seen.into_iter()
        .filter(|(_, count)| *count > 1)
        .map(|((room, path), count)| format!("{room} {path} ×{count}"))
        .collect()
}

/// How often `name` was muted in `room`.
fn mutes_in(sim: &Simulator, room: &str, name: &str) -> usize {
    let Some(uuid) = sim
        .conference(room)
        .and_then(|conference| conference.find(name).map(|p| p.uuid.clone()))
    else {
        return 0;
    };
    let path = format!("participants/{uuid}/mute");
    sim.calls()
        .iter()
        .filter(|call| call.room.as_deref() == Some(room) && call.path == path)
        .count()
}

fn spread(found: &BTreeMap<String, Vec<String>>) -> (usize, usize) {
    let counts: Vec<usize> = found.values().map(Vec::len).collect();
    (
        counts.iter().copied().min().unwrap_or(0),
        counts.iter().copied().max().unwrap_or(0),
    )
}

fn setup(name: &str, sim: &Simulator, etcd: &Etcd, count: usize) -> TestDir {
    let dir = TestDir::new(name);
    dir.shipped_rules();
    dir.write("hall.pin", PIN);
    dir.write("usher.yaml", &cluster_config(sim, etcd, count));
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_balance_and_take_over_a_killed_ones_rooms() {
    if !available("three_instances_balance_and_take_over_a_killed_ones_rooms") {
        return;
    }
    let etcd = start("balance").await;
    let sim = rooms_simulator(30).await;
    let dir = setup("cluster_balance", &sim, &etcd, 30);
    let one = instance(&dir, "node-1").await;
    let two = instance(&dir, "node-2").await;
    let three = instance(&dir, "node-3").await;

    // (a) Balanced within one room.
    let mut found = BTreeMap::new();
    eventually(PATIENCE * 2, "30 rooms spread 10/10/10", async || {
        found = settled(&[&one, &two, &three], 30, PATIENCE * 2).await;
        let (least, most) = spread(&found);
        most - least <= 1
    })
    .await;
    let owned = owners(&one).await;
    assert_eq!(owned.len(), 30, "{owned:?}");
    let printed = std::process::Command::new(env!("CARGO_BIN_EXE_usher"))
        .args(["cluster", "status", "-c", "usher.yaml"])
        .current_dir(dir.path())
        .output()
        .expect("usher cluster status runs");
    let text = String::from_utf8_lossy(&printed.stdout);
    assert!(
        printed.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&printed.stderr)
    );
    assert!(
        text.starts_with("nodes: node-1, node-2, node-3\n"),
        "{text}"
    );
    for (room, owner) in &owned {
        assert!(
            text.contains(&format!("{room}  {owner}\n")),
            "{room} {owner} in {text}"
        );
    }

    // (b) kill -9: the victim's rooms are taken within the lease and a
    // resync, and every guest who joins afterwards is muted once.
    let victims = found["node-2"].clone();
    assert!(!victims.is_empty());
    // The victim's last state is saved well within this.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let killed = Instant::now();
    two.process.signal("KILL");
    eventually(
        LEASE_TTL + Duration::from_secs(4),
        "the victim's rooms taken over",
        async || {
            let owned = owners(&one).await;
            victims
                .iter()
                .all(|room| owned.get(room).is_some_and(|owner| owner != "node-2"))
        },
    )
    .await;
    let took = killed.elapsed();
    assert!(
        took <= LEASE_TTL + Duration::from_secs(2),
        "taken over in {took:?}"
    );
    eprintln!("failover after kill -9 took {took:?} (lease {LEASE_TTL:?})");
    for room in &victims {
        sim.step(room, &Step::Join(Joiner::guest("Guest"))).unwrap();
    }
    for room in &victims {
        eventually(
            PATIENCE,
            &format!("the guest muted in {room}"),
            async || mutes_in(&sim, room, "Guest") == 1,
        )
        .await;
    }
    let found = settled(&[&one, &three], 30, PATIENCE).await;
    let (least, most) = spread(&found);
    assert!(most - least <= 1, "{found:?}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let repeated = repeated_commands(&sim);
    assert!(repeated.is_empty(), "commands sent twice: {repeated:?}");
    let metrics = get(&reqwest::Client::new(), one.http, "/metrics").await.1;
    assert!(
        metric(&metrics, "usher_cluster_ownership_changes_total").is_some_and(|n| n >= 10.0),
        "{metrics}"
    );
    drop((one, three));
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_owner_sends_nothing_when_it_wakes() {
    if !available("a_stopped_owner_sends_nothing_when_it_wakes") {
        return;
    }
    let etcd = start("sigstop").await;
    let sim = rooms_simulator(4).await;
    let dir = setup("cluster_sigstop", &sim, &etcd, 4);
    let one = instance(&dir, "node-1").await;
    let two = instance(&dir, "node-2").await;
    let found = settled(&[&one, &two], 4, PATIENCE * 2).await;
    let room = found["node-1"]
        .first()
        .cloned()
        .expect("node-1 runs a room");
    tokio::time::sleep(Duration::from_millis(1200)).await;

    one.process.signal("STOP");
    let stopped = Instant::now();
    // Guests join while the owner is stopped: the first right away (the
    // stopped owner's feed holds the event), more after the lease is gone.
    sim.step(&room, &Step::Join(Joiner::guest("Early")))
        .unwrap();
    tokio::time::sleep(LEASE_TTL + Duration::from_millis(500)).await;
    sim.step(&room, &Step::Join(Joiner::guest("Late"))).unwrap();
    eventually(PATIENCE, "the new owner mutes both guests", async || {
        mutes_in(&sim, &room, "Early") == 1 && mutes_in(&sim, &room, "Late") == 1
    })
    .await;
    let pause = (LEASE_TTL * 2).saturating_sub(stopped.elapsed());
    tokio::time::sleep(pause).await;
    one.process.signal("CONT");
    let woke = Instant::now();
    let commands_before = commands(&sim).len();
    // The woken instance finds its lease gone and its rooms lost; whatever
    // its rules still ask for is fenced off.
    eventually(PATIENCE, "node-1 back with its lease", async || {
        status(one.http).await["cluster"]["lease_alive"] == true
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        mutes_in(&sim, &room, "Early"),
        1,
        "{:?}",
        command_paths(&sim)
    );
    assert_eq!(mutes_in(&sim, &room, "Late"), 1);
    let repeated = repeated_commands(&sim);
    assert!(repeated.is_empty(), "commands sent twice: {repeated:?}");
    let metrics = get(&reqwest::Client::new(), one.http, "/metrics").await.1;
    eprintln!(
        "after SIGCONT ({:?} ago): {} commands before, {} now; node-1 refused {:?} by fencing",
        woke.elapsed(),
        commands_before,
        commands(&sim).len(),
        metric(&metrics, "usher_cluster_fencing_refusals_total"),
    );
    drop((one, two));
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_leaves_no_room_unmoderated_for_long() {
    if !available("a_rolling_restart_leaves_no_room_unmoderated_for_long") {
        return;
    }
    let etcd = start("rolling").await;
    let count = 9;
    let sim = queue_simulator(count, &["Bob", "Cat", "Dan"]).await;
    let dir = setup("cluster_rolling", &sim, &etcd, count);
    let mut instances = Vec::new();
    for node in ["node-1", "node-2", "node-3"] {
        instances.push(instance(&dir, node).await);
    }
    let all: Vec<&Instance> = instances.iter().collect();
    settled(&all, count, PATIENCE * 2).await;
    // A hand queue in the first room: Bob has the floor, Cat and Dan wait.
    for name in ["Bob", "Cat", "Dan"] {
        sim.step(&alias(0), &Step::RaiseHand(name.to_owned()))
            .unwrap();
    }
    eventually(PATIENCE, "Bob given the floor", async || {
        unmutes_in(&sim, &alias(0), "Bob") == 1
    })
    .await;
    // Saved within a second.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let mut guest = 0;
    let mut slowest = Duration::ZERO;
    for index in 0..instances.len() {
        let node = instances[index].node.clone();
        // As it is told to stop, a guest arrives in every room.
        instances[index].process.signal("TERM");
        let arrived = Instant::now();
        guest += 1;
        let name = format!("Guest {guest}");
        for n in 0..count {
            sim.step(&alias(n), &Step::Join(Joiner::guest(&name)))
                .unwrap();
        }
        for n in 0..count {
            eventually(
                PATIENCE,
                &format!("{name} muted in {}", alias(n)),
                async || mutes_in(&sim, &alias(n), &name) == 1,
            )
            .await;
        }
        slowest = slowest.max(arrived.elapsed());
        let (status, stderr) = instances[index].process.exit_within(PATIENCE).await;
        assert_eq!(status.code(), Some(0), "{stderr}");
        instances[index] = instance(&dir, &node).await;
        let all: Vec<&Instance> = instances.iter().collect();
        settled(&all, count, PATIENCE * 2).await;
    }
    // The queue went through three owners, in order.
    sim.step(&alias(0), &Step::LowerHand("Bob".to_owned()))
        .unwrap();
    eventually(PATIENCE, "the floor passed from Bob to Cat", async || {
        mutes_in(&sim, &alias(0), "Bob") == 1 && unmutes_in(&sim, &alias(0), "Cat") == 1
    })
    .await;
    sim.step(&alias(0), &Step::LowerHand("Cat".to_owned()))
        .unwrap();
    eventually(PATIENCE, "the floor passed from Cat to Dan", async || {
        mutes_in(&sim, &alias(0), "Cat") == 1 && unmutes_in(&sim, &alias(0), "Dan") == 1
    })
    .await;
    eprintln!(
        "rolling restart: every guest who came as an instance stopped muted within {slowest:?}"
    );
    assert!(slowest <= Duration::from_secs(2), "{slowest:?}");
    let repeated = repeated_commands(&sim);
    assert!(repeated.is_empty(), "commands sent twice: {repeated:?}");
    drop(instances);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_are_fenced_once_the_lease_may_have_expired() {
    use usher::cluster::Cluster;
    use usher::cluster::config::ClusterConfig;
    use usher::cluster::fence::FencedLink;
    use usher::model::{Command, ParticipantCommand, Target};
    use usher::platform::{
        self, BuildContext, FeedOptions, PlatformConfig, RoomAddress, SendOutcome,
    };

    if !available("commands_are_fenced_once_the_lease_may_have_expired") {
        return;
    }
    let etcd = start("fence").await;
    let mut spec = room(vec![Joiner::host("Ada"), Joiner::guest("Bob")]);
    spec.alias = alias(0);
    let sim = simulator(vec![spec]).await;
    let settings: ClusterConfig = serde_json::from_value(serde_json::json!({
        "etcd": [etcd.url()],
        "node": "fenced",
        "lease_ttl": "2s",
    }))
    .unwrap();
    // Joined, but nobody keeps the lease alive: it is known alive only
    // until the grant's TTL has passed.
    let cluster = Cluster::join(&settings).await.expect("etcd answers");
    let ownership = cluster
        .take(&alias(0))
        .await
        .unwrap()
        .expect("the room is free");
    assert!(
        cluster.take(&alias(0)).await.unwrap().is_none(),
        "taken once"
    );
    let platform = platform::build(
        &PlatformConfig::Vmr(usher::platform::VmrConfig::at(sim.base_url())),
        BuildContext::standalone("default", 1, FeedOptions::default()),
    )
    .unwrap();
    let address = RoomAddress {
        alias: alias(0),
        pin: Some(Secret::new(PIN)),
    };
    let link = FencedLink::wrap(platform.connect(&address).await.unwrap(), ownership.clone());
    let bob = sim
        .conference(&alias(0))
        .unwrap()
        .find("Bob")
        .unwrap()
        .uuid
        .clone();
    let mute = Command::Participant {
        target: Target {
            uuid: bob,
            name: "Bob".to_owned(),
        },
        action: ParticipantCommand::Mute,
    };
    assert_eq!(link.send(&mute).await, SendOutcome::Done, "held: sent");
    let mutes = || mutes_in(&sim, &alias(0), "Bob");
    assert_eq!(mutes(), 1);

    tokio::time::sleep(LEASE_TTL).await;
    assert!(!ownership.holds());
    assert!(matches!(link.send(&mute).await, SendOutcome::Refused(why) if why.contains("fencing")));
    assert_eq!(mutes(), 1, "nothing reached the platform");
    assert_eq!(cluster.report().fencing_refusals, 1);
    link.close().await;
    sim.shutdown().await;
}

#[tokio::test]
async fn etcd_unreachable_at_start_is_a_clear_error_and_exit_2() {
    let sim = rooms_simulator(1).await;
    let dir = TestDir::new("cluster_unreachable");
    dir.shipped_rules();
    dir.write("hall.pin", PIN);
    let config = format!(
        "platform:\n  url: {}\nrooms:\n  - alias: {}\n    pin_file: hall.pin\n    rules: [auto_mute_guests]\nhttp: {{ listen: 127.0.0.1:0 }}\ncluster:\n  etcd: [http://127.0.0.1:9]\n  node: n1\n  lease_ttl: 2s\n",
        sim.base_url(),
        alias(0)
    );
    dir.write("usher.yaml", &config);
    let mut usher = Process::spawn(dir.path(), &["run", "-c", "usher.yaml"], &[]);
    let (status, stderr) = usher.exit_within(Duration::from_secs(10)).await;
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("cannot reach etcd at http://127.0.0.1:9"),
        "{stderr}"
    );
    assert!(
        commands(&sim).is_empty() && sim.calls().is_empty(),
        "no room was touched"
    );

    // A bad lease is refused where it is written.
    let bad = config.replace("lease_ttl: 2s", "lease_ttl: 1s");
    dir.write("usher.yaml", &bad);
    let mut usher = Process::spawn(dir.path(), &["run", "-c", "usher.yaml"], &[]);
    let (status, stderr) = usher.exit_within(Duration::from_secs(10)).await;
    assert_eq!(status.code(), Some(2), "{stderr}");
    let line = bad.lines().position(|l| l.contains("lease_ttl")).unwrap() + 1;
    let at = format!("usher.yaml:{line}:3:");
    assert!(
        stderr.contains(&at) && stderr.contains("lease_ttl must be between"),
        "{at} in {stderr}"
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_lost_rooms_run_until_the_lease_would_expire_then_stop_acting() {
    if !available("etcd_lost_rooms_run_until_the_lease_would_expire_then_stop_acting") {
        return;
    }
    let etcd = start("lost").await;
    let sim = rooms_simulator(1).await;
    let dir = setup("cluster_etcd_lost", &sim, &etcd, 1);
    let one = instance(&dir, "node-1").await;
    settled(&[&one], 1, PATIENCE * 2).await;
    let room = alias(0);
    tokio::time::sleep(Duration::from_millis(1200)).await;

    etcd.signal("STOP");
    let lost = Instant::now();
    sim.step(&room, &Step::Join(Joiner::guest("Early")))
        .unwrap();
    eventually(
        LEASE_TTL / 2,
        "a guest muted while etcd is away",
        async || mutes_in(&sim, &room, "Early") == 1,
    )
    .await;
    // Past the lease: the room stops acting.
    tokio::time::sleep((LEASE_TTL + Duration::from_millis(300)).saturating_sub(lost.elapsed()))
        .await;
    sim.step(&room, &Step::Join(Joiner::guest("Late"))).unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        mutes_in(&sim, &room, "Late"),
        0,
        "nothing sent without a lease"
    );
    let (code, body) = get(&reqwest::Client::new(), one.http, "/healthz").await;
    assert!(code == 503 && body.contains("lease"), "{code} {body}");
    let metrics = get(&reqwest::Client::new(), one.http, "/metrics").await.1;
    assert!(
        metric(&metrics, "usher_cluster_etcd_errors_total").is_some_and(|n| n >= 1.0),
        "{metrics}"
    );

    // etcd back: the instance joins again, takes the room, and catches up
    // with who came meanwhile.
    etcd.signal("CONT");
    eventually(
        PATIENCE,
        "the late guest muted once etcd is back",
        async || mutes_in(&sim, &room, "Late") == 1,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let repeated = repeated_commands(&sim);
    assert!(repeated.is_empty(), "commands sent twice: {repeated:?}");
    drop(one);
    sim.shutdown().await;
}

#[tokio::test]
async fn the_etcd_client_does_what_fencing_relies_on() {
    use usher::cluster::etcd::{Etcd as Client, WatchEvent, WatchItem};

    if !available("the_etcd_client_does_what_fencing_relies_on") {
        return;
    }
    let etcd = start("client").await;
    let client = Client::new(
        vec![
            // A dead member first: the client moves on to the live one.
            url::Url::parse("http://127.0.0.1:9").unwrap(),
            url::Url::parse(etcd.url()).unwrap(),
        ],
        Duration::from_secs(2),
    )
    .unwrap();
    let (lease, granted) = client.grant(Duration::from_secs(5)).await.unwrap();
    assert!(granted >= Duration::from_secs(5), "{granted:?}");
    assert!(client.keep_alive(lease).await.unwrap().is_some());

    let cancel = tokio_util::sync::CancellationToken::new();
    let (sink, mut seen) = tokio::sync::mpsc::channel(16);
    let watching = {
        let (cancel, url) = (cancel.clone(), etcd.url().to_owned());
        async move { client_watch(&url, sink, cancel).await }
    };
    let watcher = tokio::spawn(watching);
    tokio::time::sleep(Duration::from_millis(200)).await;

    let created = client.create("/t/rooms/a", b"n1", lease).await.unwrap();
    let created = created.expect("created: the key was free");
    let holder = client.create("/t/rooms/a", b"n2", lease).await.unwrap();
    assert_eq!(
        holder.map_err(|kv| kv.value),
        Err(b"n1".to_vec()),
        "taken once"
    );
    assert!(
        client
            .put_while("/t/rooms/a", created, "/t/state/a", b"s1")
            .await
            .unwrap()
    );
    assert!(
        !client
            .put_while("/t/rooms/a", created + 1, "/t/state/a", b"s2")
            .await
            .unwrap(),
        "a writer that does not hold the key writes nothing"
    );
    assert_eq!(
        client.get("/t/state/a").await.unwrap().unwrap().value,
        b"s1"
    );
    let (keys, _) = client.range_prefix("/t/").await.unwrap();
    assert_eq!(keys.len(), 2);
    assert!(
        !client
            .delete_if_created("/t/rooms/a", created + 1)
            .await
            .unwrap()
    );
    assert!(
        client
            .delete_if_created("/t/rooms/a", created)
            .await
            .unwrap()
    );

    // Revoking the lease deletes what is bound to it, and a revoked lease
    // cannot be kept alive.
    client
        .create("/t/rooms/b", b"n1", lease)
        .await
        .unwrap()
        .unwrap();
    client.revoke(lease).await.unwrap();
    assert!(client.get("/t/rooms/b").await.unwrap().is_none());
    assert_eq!(client.keep_alive(lease).await.unwrap(), None);
    client.revoke(lease).await.unwrap();

    let mut events = Vec::new();
    while events.len() < 5 {
        match tokio::time::timeout(PATIENCE, seen.recv()).await {
            Ok(Some(WatchItem::Events(batch))) => events.extend(batch),
            other => panic!("watch: {other:?} after {events:?}"),
        }
    }
    let deletes = events
        .iter()
        .filter(
            |event| matches!(event, WatchEvent::Delete { key, .. } if key.starts_with("/t/rooms/")),
        )
        .count();
    assert_eq!(deletes, 2, "{events:?}");
    cancel.cancel();
    let _ = watcher.await;

    let unreachable = Client::new(
        vec![url::Url::parse("http://127.0.0.1:9").unwrap()],
        Duration::from_millis(500),
    )
    .unwrap();
    let err = unreachable.grant(Duration::from_secs(5)).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("cannot reach etcd at http://127.0.0.1:9"),
        "{err}"
    );
}

/// Watches `/t/` on etcd at `url` until `cancel` fires.
async fn client_watch(
    url: &str,
    sink: tokio::sync::mpsc::Sender<usher::cluster::etcd::WatchItem>,
    cancel: tokio_util::sync::CancellationToken,
) {
    let client = usher::cluster::etcd::Etcd::new(
        vec![url::Url::parse(url).unwrap()],
        Duration::from_secs(2),
    )
    .unwrap();
    client.watch("/t/", 0, sink, cancel).await;
}
