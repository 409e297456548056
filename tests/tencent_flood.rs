//! A callback flood through the Tencent webhook path: 10,000 callbacks over
//! 100 rooms, 5% of them delivered twice and 5% out of order, handed to
//! `Platform::webhook` and followed into every room's feed. Nothing may be
//! lost or applied twice, and the rate is printed.
//!
//! A measurement, so not run by default (run it in release, alone):
//!
//! ```sh
//! cargo test --release --test tencent_flood -- --ignored --nocapture
//! ```

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use usher::model::{Change, RoomState, Secret};
use usher::platform::tencent::wire::CallbackBody;
use usher::platform::tencent::{Tencent, TencentConfig};
use usher::platform::{
    BuildContext, FeedItem, FeedOptions, Platform, RoomAddress, RoomLink, WebhookRequest,
};
use usher::sim::RoomSpec;
use usher::sim::step::{Joiner, Step};
use usher::sim::tencent::room::RoomSetup;
use usher::sim::tencent::sender::Delivery;
use usher::sim::tencent::{DEMO_SECRET_KEY, TencentSimOptions, TencentSimulator};

const ROOMS: usize = 100;
const PER_ROOM: usize = 100;
const TOKEN: &str = "flood-token";

/// What one room's feed saw.
#[derive(Default)]
struct Seen {
    joins: HashMap<String, usize>,
    leaves: HashMap<String, usize>,
    state: RoomState,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: run in release with --ignored --nocapture"]
async fn ten_thousand_callbacks_over_a_hundred_rooms() {
    let sim = TencentSimulator::start(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        Vec::new(),
        TencentSimOptions {
            callback_token: Some(Secret::new(TOKEN)),
            collect_callbacks: true,
            seed: Some(11),
            ..TencentSimOptions::default()
        },
    )
    .await
    .unwrap();
    let rooms: Vec<String> = (0..ROOMS).map(|n| format!("room-{n:03}")).collect();
    for room in &rooms {
        sim.add_room_with(
            RoomSpec {
                participants: vec![Joiner::host("Host")],
                ..RoomSpec::new(room.clone())
            },
            RoomSetup {
                name: room.clone(),
                owner: "host".into(),
                seats: 0,
                schedule: None,
            },
        );
    }
    let mut config = TencentConfig::new(
        sim.base_url(),
        sim.sdk_app_id(),
        "administrator",
        DEMO_SECRET_KEY,
    );
    config.callback_token = Some(usher::config::SecretSource::Literal(Secret::new(TOKEN)));
    let platform = Arc::new(
        Tencent::new(
            &config,
            &BuildContext::standalone("tx", ROOMS, FeedOptions::default()),
        )
        .unwrap(),
    );

    // Follow every room; count what reaches each room's state.
    let changes_seen = Arc::new(AtomicUsize::new(0));
    let cancel = CancellationToken::new();
    let mut followers = Vec::new();
    let mut links = Vec::new();
    for room in &rooms {
        let link = platform
            .connect_room(&RoomAddress {
                alias: room.clone(),
                pin: None,
            })
            .await
            .unwrap();
        let (sink, mut items) = mpsc::channel::<Box<FeedItem>>(4096);
        tokio::spawn(link.clone().follow(sink, cancel.clone()));
        links.push(link);
        let counter = changes_seen.clone();
        followers.push(tokio::spawn(async move {
            let mut seen = Seen::default();
            while let Some(item) = items.recv().await {
                let FeedItem::Event(event) = *item else {
                    continue;
                };
                for change in seen.state.apply(event) {
                    match change {
                        Change::Joined(p) => {
                            *seen.joins.entry(p.uuid.clone()).or_default() += 1;
                            counter.fetch_add(1, Ordering::Relaxed);
                        }
                        Change::Left(p) => {
                            *seen.leaves.entry(p.uuid.clone()).or_default() += 1;
                            counter.fetch_add(1, Ordering::Relaxed);
                        }
                        _ => {}
                    }
                }
            }
            seen
        }));
    }
    // Every room connected and listed before the flood.
    tokio::time::sleep(Duration::from_millis(500)).await;

    // 60 people enter each room and 40 of them leave: 100 callbacks a room.
    for room in &rooms {
        for n in 0..60 {
            sim.step(room, &Step::Join(Joiner::guest(format!("Guest {n}"))))
                .unwrap();
        }
        for n in 0..(PER_ROOM - 60) {
            sim.step(room, &Step::Leave(format!("Guest {n}"))).unwrap();
        }
    }
    while sim.callbacks_pending() > 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let callbacks = sim.take_collected();
    assert_eq!(callbacks.len(), ROOMS * PER_ROOM);
    let expected_changes = callbacks.len();
    let deliveries = disorder(callbacks);
    let delivered = deliveries.len();

    // The decoding alone, for scale: parsing every body.
    let decode_start = Instant::now();
    for delivery in &deliveries {
        let body: CallbackBody = serde_json::from_str(&delivery.body).unwrap();
        std::hint::black_box(body);
    }
    let decode_rate = delivered as f64 / decode_start.elapsed().as_secs_f64();

    // The flood: two workers, each a share of the rooms, in the order given.
    let start = Instant::now();
    let mut shares: Vec<Vec<Delivery>> = vec![Vec::new(), Vec::new()];
    for delivery in deliveries {
        let share = room_number(&delivery) % 2;
        shares[share].push(delivery);
    }
    let workers: Vec<_> = shares
        .into_iter()
        .map(|share| {
            let platform = platform.clone();
            tokio::spawn(async move {
                for delivery in share {
                    let reply = platform
                        .webhook(WebhookRequest {
                            query: delivery.query,
                            headers: Default::default(),
                            body: bytes::Bytes::from(delivery.body),
                        })
                        .await;
                    assert_eq!(reply.status, 200, "{}", reply.body);
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while changes_seen.load(Ordering::Relaxed) < expected_changes {
        assert!(
            Instant::now() < deadline,
            "changes stuck at {}",
            changes_seen.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let elapsed = start.elapsed();
    let rate = delivered as f64 / elapsed.as_secs_f64();

    cancel.cancel();
    let mut duplicates = 0;
    for (link, (room, follower)) in links.iter().zip(rooms.iter().zip(followers)) {
        let seen = follower.await.unwrap();
        duplicates += link.tracker_stats().duplicates;
        assert!(
            seen.joins.values().all(|n| *n == 1),
            "{room}: a join applied twice"
        );
        assert!(
            seen.leaves.values().all(|n| *n == 1),
            "{room}: a leave applied twice"
        );
        assert_eq!(seen.joins.len(), 60, "{room}: every enter arrived");
        assert_eq!(
            seen.leaves.len(),
            PER_ROOM - 60,
            "{room}: every leave arrived"
        );
        let mut ours: Vec<String> = seen.state.participants().map(|p| p.uuid.clone()).collect();
        let mut theirs: Vec<String> = sim
            .conference(room)
            .unwrap()
            .participants
            .into_iter()
            .map(|p| p.uuid)
            .collect();
        ours.sort();
        theirs.sort();
        assert_eq!(ours, theirs, "{room}");
    }
    assert_eq!(
        duplicates as usize,
        delivered - expected_changes,
        "every redelivery dropped"
    );
    let stats = platform.webhook_stats();
    println!(
        "tencent webhook flood: {delivered} callbacks ({} duplicated, 5% reordered) over {ROOMS} rooms \
         in {:.0} ms: {rate:.0} callbacks/s through Platform::webhook into the rooms' state; \
         parsing the bodies alone: {decode_rate:.0}/s (ratio {:.2}); accepted {}, refused {}",
        delivered - expected_changes,
        elapsed.as_secs_f64() * 1000.0,
        rate / decode_rate,
        stats.accepted,
        stats.refused,
    );
    println!(
        "{{\"callbacks\":{delivered},\"rooms\":{ROOMS},\"ms\":{:.1},\"per_second\":{rate:.0},\"parse_per_second\":{decode_rate:.0}}}",
        elapsed.as_secs_f64() * 1000.0
    );
    sim.shutdown().await;
}

/// The number in a callback's `room-NNN`.
fn room_number(delivery: &Delivery) -> usize {
    let body: serde_json::Value = serde_json::from_str(&delivery.body).unwrap();
    body["RoomId"]
        .as_str()
        .and_then(|room| room.strip_prefix("room-"))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// 5% of the callbacks delivered twice (the copy right after), and 5% moved
/// behind the next callback of their room that is about someone else (a
/// swap that keeps every member's own enter before their leave, so every
/// event still has its effect).
fn disorder(callbacks: Vec<Delivery>) -> Vec<Delivery> {
    let mut rng = fastrand::Rng::with_seed(5);
    let mut out: Vec<Delivery> = callbacks;
    let account = |delivery: &Delivery| -> String {
        let body: serde_json::Value = serde_json::from_str(&delivery.body).unwrap();
        format!("{}/{}", body["RoomId"], body["MemberList_Account"][0])
    };
    let room = |delivery: &Delivery| -> String {
        let body: serde_json::Value = serde_json::from_str(&delivery.body).unwrap();
        body["RoomId"].to_string()
    };
    let total = out.len();
    let mut swapped = 0;
    while swapped < total / 20 {
        let at = rng.usize(..total - 1);
        if room(&out[at]) == room(&out[at + 1]) && account(&out[at]) != account(&out[at + 1]) {
            out.swap(at, at + 1);
            swapped += 1;
        }
    }
    let mut with_copies = Vec::with_capacity(total + total / 20);
    let copy_every: Vec<bool> = {
        let mut marks = vec![false; total];
        let mut chosen = 0;
        while chosen < total / 20 {
            let at = rng.usize(..total);
            if !marks[at] {
                marks[at] = true;
                chosen += 1;
            }
        }
        marks
    };
    for (delivery, copy) in out.into_iter().zip(copy_every) {
        if copy {
            with_copies.push(delivery.clone());
        }
        with_copies.push(delivery);
    }
    with_copies
}
