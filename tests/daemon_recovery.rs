//! The daemon recovers from what goes wrong on the platform's side without
//! surprising the room: a dropped event stream, a restarted platform,
//! expiring tokens and failing commands. The real daemon, in process,
//! against the real simulator over loopback; every fault is the simulator's
//! own, and the simulator's record of calls is the evidence.

mod common;

use std::time::{Duration, Instant};

use common::daemon::*;
use usher::platform::FeedOptions;
use usher::runtime::audit::Outcome;
use usher::sim::step::{Joiner, Step};
use usher::sim::{Fault, Simulator};

fn join(sim: &Simulator, name: &str) {
    sim.step(ROOM, &Step::Join(Joiner::guest(name))).unwrap();
}

fn muted(sim: &Simulator, name: &str) -> bool {
    sim.conference(ROOM)
        .and_then(|room| room.find(name).map(|p| p.muted))
        .unwrap_or(false)
}

/// The rules of these tests: guests are muted as they come, and a rule
/// with an `on_connect` handler looks at the room on every (re)connect.
const RULES: [&str; 2] = [
    "auto_mute_guests",
    "lock_when_full: { max: 10, reserve: 1 }",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_stream_resyncs_without_false_joins_or_doubled_commands() {
    let sim = simulator(vec![room(vec![Joiner::host("Ada"), Joiner::guest("Bob")])]).await;
    let dir = TestDir::new("stream_drop");
    dir.shipped_rules();
    let usher = Usher::start(dir, &config(&sim, &RULES, "")).await;
    join(&sim, "Cat");
    join(&sim, "Dan");
    eventually(PATIENCE, "Cat and Dan muted", async || {
        muted(&sim, "Cat") && muted(&sim, "Dan")
    })
    .await;
    let cat = uuid_of(&sim, "Cat");
    assert_eq!(usher.metric("usher_reconnects_total").await, Some(0.0));

    // The stream drops; while usher is away, Eve arrives and Cat leaves.
    sim.fault(ROOM, Fault::DropStreams).unwrap();
    join(&sim, "Eve");
    sim.step(ROOM, &Step::Leave("Cat".into())).unwrap();
    eventually(PATIENCE, "a reconnect counted", async || {
        usher.metric("usher_reconnects_total").await >= Some(1.0)
    })
    .await;
    eventually(PATIENCE, "healthy again, with one stream", async || {
        usher.get("/healthz").await.0 == 200 && sim.open_streams(ROOM) == 1
    })
    .await;
    eventually(PATIENCE, "Eve, who really arrived, muted", async || {
        muted(&sim, "Eve")
    })
    .await;
    // Rules still act after the resync (and Fay's mute orders everything
    // before it).
    join(&sim, "Fay");
    usher.audited(Outcome::Ok, "mute Fay").await;

    for (name, times) in [("Ada", 0), ("Bob", 0), ("Dan", 1), ("Eve", 1), ("Fay", 1)] {
        assert_eq!(mutes_of(&sim, name), times, "{name} muted {times} times");
    }
    assert_eq!(answers(&sim, &format!("participants/{cat}/mute")), [200]);
    assert_eq!(
        commands(&sim).len(),
        4,
        "the resync caused nothing else: {:?}",
        command_paths(&sim)
    );
    let texts: Vec<String> = usher.audit().into_iter().map(|r| r.text).collect();
    assert_eq!(
        texts,
        ["mute Cat", "mute Dan", "mute Eve", "mute Fay"],
        "no false joins: Ada and Bob were there all along"
    );
    assert_eq!(
        answers(&sim, "new_session"),
        [200],
        "the session outlived the stream"
    );
    assert_eq!(usher.metric("usher_rooms_connected").await, Some(1.0));
    usher.stop().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_platform_is_rejoined_without_false_joins() {
    // The platform comes back with the same people under the same uuids
    // (a seeded simulator), as when its rooms survive a restart. Bob joined
    // muted; Carl, a guest present before usher, is deliberately unmuted.
    const SEED: u64 = 20_261_123;
    let spec = room(vec![
        Joiner::host("Ada"),
        Joiner {
            muted: true,
            ..Joiner::guest("Bob")
        },
        Joiner::guest("Carl"),
    ]);
    let sim = Simulator::start_seeded(loopback(0), vec![spec.clone()], SEED)
        .await
        .unwrap();
    let addr = sim.addr();
    let dir = TestDir::new("restart");
    dir.shipped_rules();
    let usher = Usher::start(dir, &config(&sim, &RULES, "")).await;
    let people = |sim: &Simulator| -> Vec<(String, String)> {
        let room = sim.conference(ROOM).unwrap();
        room.participants
            .iter()
            .map(|p| (p.display_name.clone(), p.uuid.clone()))
            .collect()
    };
    let before = people(&sim);
    assert!(commands(&sim).is_empty(), "{:?}", command_paths(&sim));

    sim.shutdown().await;
    eventually(
        PATIENCE,
        "/healthz to name the room that is down",
        async || {
            let (code, body) = usher.get("/healthz").await;
            code == 503 && body.contains(ROOM)
        },
    )
    .await;
    let sim = Simulator::start_seeded(addr, vec![spec], SEED)
        .await
        .unwrap();
    assert_eq!(people(&sim), before, "the same people under the same uuids");

    // usher's old token means nothing to the new platform: refused, so a
    // new session, then a resync.
    usher.connected().await;
    eventually(PATIENCE, "a session renewal counted", async || {
        usher.metric("usher_session_renewals_total").await >= Some(1.0)
    })
    .await;
    assert_eq!(answers(&sim, "new_session"), [200]);
    let calls = sim.calls();
    let renewal = calls.iter().position(|c| c.path == "new_session").unwrap();
    assert!(
        calls[..renewal].iter().any(|c| c.status == 403),
        "the old token was refused first: {calls:?}"
    );
    assert_eq!(sim.active_sessions(ROOM), 1);

    // The rules keep working, and no one who was there is treated as new.
    join(&sim, "Dan");
    usher.audited(Outcome::Ok, "mute Dan").await;
    assert!(
        !muted(&sim, "Carl"),
        "Carl did not arrive; he is left alone"
    );
    let sent: Vec<String> = commands(&sim).into_iter().map(|c| c.path).collect();
    assert_eq!(
        sent,
        [format!("participants/{}/mute", uuid_of(&sim, "Dan"))]
    );
    let texts: Vec<String> = usher.audit().into_iter().map(|r| r.text).collect();
    assert_eq!(texts, ["mute Dan"]);
    usher.stop().await;
    assert_eq!(
        answers(&sim, "end_session"),
        [403, 200],
        "the renewal tries to end the refused session (unknown to the restarted \
         platform), and shutdown ends the live one"
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_refreshed_in_time_and_expired_ones_replaced() {
    const LIFETIME: Duration = Duration::from_secs(2);
    let mut spec = room(vec![Joiner::host("Ada")]);
    spec.token_expiry = LIFETIME;
    let sim = simulator(vec![spec]).await;
    let dir = TestDir::new("token_expiry");
    dir.shipped_rules();
    let usher = Usher::start(dir, &config(&sim, &["auto_mute_guests"], "")).await;
    let started = Instant::now();
    let refreshed = || answers(&sim, "refresh_session").len();

    // Over three lifetimes the token is refreshed again and again, always
    // in time: the platform never refuses anything.
    eventually(PATIENCE, "a first lifetime", async || refreshed() >= 2).await;
    join(&sim, "Bob");
    usher.audited(Outcome::Ok, "mute Bob").await;
    let early = usher.metric("usher_token_refreshes_total").await.unwrap();
    eventually(PATIENCE, "three token lifetimes", async || {
        started.elapsed() >= LIFETIME * 3 + Duration::from_millis(200)
    })
    .await;
    let refused: Vec<_> = sim
        .calls()
        .into_iter()
        .filter(|c| c.status == 403)
        .collect();
    assert!(refused.is_empty(), "nothing refused: {refused:?}");
    assert!(refreshed() >= 6, "{} refreshes in 3 lifetimes", refreshed());
    assert!(answers(&sim, "refresh_session").iter().all(|s| *s == 200));
    assert_eq!(answers(&sim, "new_session"), [200], "one session all along");
    eventually(PATIENCE, "the metric to count the refreshes", async || {
        let counted = usher.metric("usher_token_refreshes_total").await.unwrap();
        counted > early && counted >= 6.0
    })
    .await;
    assert_eq!(usher.get("/healthz").await.0, 200);

    // Tokens that die early (the platform forgot them): a new session, and
    // the room goes on.
    sim.fault(ROOM, Fault::ExpireTokens).unwrap();
    eventually(PATIENCE, "a new session with its stream", async || {
        answers(&sim, "new_session").len() == 2
            && sim.open_streams(ROOM) == 1
            && usher.get("/healthz").await.0 == 200
    })
    .await;
    eventually(PATIENCE, "the renewal counted", async || {
        usher.metric("usher_session_renewals_total").await >= Some(1.0)
    })
    .await;
    join(&sim, "Cat");
    usher.audited(Outcome::Ok, "mute Cat").await;
    assert_eq!(mutes_of(&sim, "Cat"), 1);
    assert_eq!(mutes_of(&sim, "Bob"), 1);
    assert_eq!(answers(&sim, "new_session"), [200, 200]);
    assert_eq!(sim.active_sessions(ROOM), 1, "no ghost session");
    usher.stop().await;
    assert_eq!(sim.active_sessions(ROOM), 0);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transient_failure_is_retried_and_nothing_is_doubled() {
    let sim = simulator(vec![room(vec![Joiner::host("Ada")])]).await;
    let dir = TestDir::new("retry_5xx");
    dir.shipped_rules();
    let usher = Usher::start(dir, &config(&sim, &["auto_mute_guests"], "")).await;
    sim.fault(
        ROOM,
        Fault::FailCommands {
            count: 2,
            status: 502,
        },
    )
    .unwrap();
    join(&sim, "Bob");
    let record = usher.audited(Outcome::Ok, "mute Bob").await;
    assert_eq!(record.attempts, 3, "{record:?}");
    assert!(record.error.is_none());
    let path = format!("participants/{}/mute", uuid_of(&sim, "Bob"));
    assert_eq!(answers(&sim, &path), [502, 502, 200]);
    assert_eq!(commands(&sim).len(), 3, "{:?}", command_paths(&sim));
    assert!(muted(&sim, "Bob"));
    assert_eq!(usher.audit().len(), 1, "one command, audited once");
    let metrics = usher.metrics().await;
    assert_eq!(
        metric(
            &metrics,
            "usher_commands_total{command=\"mute\",outcome=\"ok\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        metric(
            &metrics,
            "usher_commands_total{command=\"mute\",outcome=\"failed\"}"
        ),
        None
    );
    usher.stop().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_is_reported_and_not_retried() {
    let sim = simulator(vec![room(vec![Joiner::host("Ada")])]).await;
    let dir = TestDir::new("refused_4xx");
    dir.shipped_rules();
    let usher = Usher::start(dir, &config(&sim, &["auto_mute_guests"], "")).await;
    sim.fault(
        ROOM,
        Fault::FailCommands {
            count: 1,
            status: 400,
        },
    )
    .unwrap();
    join(&sim, "Bob");
    let record = usher.audited(Outcome::Failed, "mute Bob").await;
    assert_eq!(record.attempts, 1);
    let error = record.error.as_deref().unwrap();
    assert!(error.contains("HTTP 400"), "{error}");
    // Cat's mute comes after Bob's in the same queue: once it is done, any
    // retry of Bob's would have been sent.
    join(&sim, "Cat");
    usher.audited(Outcome::Ok, "mute Cat").await;
    let bob = format!("participants/{}/mute", uuid_of(&sim, "Bob"));
    assert_eq!(answers(&sim, &bob), [400], "tried once");
    assert!(!muted(&sim, "Bob"));

    let status = usher.status().await;
    let errors = status["rooms"][ROOM]["last_errors"].as_array().unwrap();
    assert!(
        errors.iter().any(|e| {
            let e = e.as_str().unwrap();
            e.contains("mute Bob") && e.contains("HTTP 400")
        }),
        "{errors:?}"
    );
    let metrics = usher.metrics().await;
    assert_eq!(
        metric(
            &metrics,
            "usher_commands_total{command=\"mute\",outcome=\"failed\"}"
        ),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        metric(
            &metrics,
            "usher_commands_total{command=\"mute\",outcome=\"ok\"}"
        ),
        Some(1.0)
    );
    usher.stop().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_an_outage_usher_returns_within_ten_seconds_and_mutes_who_came_meanwhile() {
    // Long enough for an uncapped backoff to grow past 10 s (it used to
    // reach 30 s, and up to twice that with its jitter).
    const OUTAGE: Duration = Duration::from_secs(25);
    const CAP: Duration = Duration::from_millis(10_500);
    let sim = simulator(vec![room(vec![Joiner::host("Ada"), Joiner::guest("Bob")])]).await;
    let link = Link::start(sim.addr()).await;
    let dir = TestDir::new("outage");
    dir.shipped_rules();
    let config = config(&sim, &RULES, "").replace(sim.base_url().as_str(), &link.url());
    // The production reconnect policy, not the tests' quick one.
    let usher = Usher::start_with(dir, &config, FeedOptions::default()).await;
    usher.connected().await;

    // The platform is out of reach; guests arrive meanwhile, one of them
    // leaves again.
    link.cut();
    eventually(PATIENCE, "/healthz to report the room down", async || {
        usher.get("/healthz").await.0 == 503
    })
    .await;
    for name in ["Cat", "Dan", "Eve", "Fay"] {
        join(&sim, name);
        tokio::time::sleep(OUTAGE / 4).await;
    }
    sim.step(ROOM, &Step::Leave("Fay".into())).unwrap();

    link.restore();
    let back = Instant::now();
    eventually(
        Duration::from_secs(15),
        "usher back in the room",
        async || usher.get("/healthz").await.0 == 200,
    )
    .await;
    let returned = back.elapsed();
    assert!(
        returned <= CAP,
        "usher returned {returned:?} after the platform"
    );
    // However long the outage, the stream was tried again at least every
    // 10 s (jitter included), up to the one that worked.
    let mut tries: Vec<Instant> = link
        .refused()
        .into_iter()
        .filter(|(_, line)| line.starts_with("GET") && line.contains("/events"))
        .map(|(at, _)| at)
        .collect();
    tries.push(back + returned);
    assert!(tries.len() >= 5, "{} tries", tries.len());
    let longest = tries
        .windows(2)
        .map(|pair| pair[1].duration_since(pair[0]))
        .max()
        .unwrap();
    assert!(longest <= CAP, "{longest:?} between two tries");

    for name in ["Cat", "Dan", "Eve"] {
        usher.audited(Outcome::Ok, &format!("mute {name}")).await;
    }
    for (name, times) in [("Ada", 0), ("Bob", 0), ("Cat", 1), ("Dan", 1), ("Eve", 1)] {
        assert_eq!(mutes_of(&sim, name), times, "{name} muted {times} times");
    }
    let texts: Vec<String> = usher.audit().into_iter().map(|r| r.text).collect();
    assert_eq!(texts, ["mute Cat", "mute Dan", "mute Eve"], "Fay is gone");
    usher.stop().await;
    sim.shutdown().await;
}
