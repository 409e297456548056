//! `usher bench webhooks`: a flood of Agora callbacks, then one of Tencent
//! callbacks, through the real webhook path, checked for loss and double
//! application.
//!
//! The Agora simulator serves `rooms` rooms and POSTs their callbacks
//! (signed, in sequence, one sender per room, all rooms at once) to the
//! daemon's webhook listener (`runtime::webhooks`), which hands them to the
//! real Agora adapter; each room's link feeds a room state, as the runtime
//! does. The flood is joins, chat and leaves, one callback each, spread
//! evenly over the rooms; with faults, 5% of the callbacks are sent twice
//! and another 5% after their successor.
//!
//! A room is done when its state has seen every join, leave and message.
//! The figure is callbacks per second from the first step to the last room
//! done. Then, after a pause for stragglers, every room's roster must equal
//! the platform's and every count must be exact: a lost callback shows as a
//! missing change, one applied twice as an extra message (chat is not
//! idempotent, so it is the sharpest test).
//!
//! The Tencent flood ([`tencent_flood`]) has no chat (Tencent sends none):
//! each room's guests enter, then most of them leave. The simulator
//! collects the callbacks, faults played, and one sender per room POSTs
//! them to the listener, as the platform would. Parsing the bodies alone is
//! timed too, for scale.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use serde::Serialize;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::SecretSource;
use crate::model::{Change, Event, RoomState, Secret, Span};
use crate::platform::agora::{Agora, AgoraConfig};
use crate::platform::tencent::wire::CallbackBody;
use crate::platform::tencent::{Tencent, TencentConfig};
use crate::platform::{BuildContext, FeedItem, FeedOptions, Platform, RoomAddress, RoomLink};
use crate::runtime::status::Registry;
use crate::sim::agora::{AgoraSimOptions, AgoraSimulator};
use crate::sim::step::{Chat, Joiner, Step};
use crate::sim::tencent::room::RoomSetup;
use crate::sim::tencent::sender::Delivery;
use crate::sim::tencent::{DEMO_SECRET_KEY, TencentSimOptions, TencentSimulator};
use crate::sim::{Fault, RoomSpec};

/// The share of callbacks duplicated, and the share reordered, with faults.
const FAULT_SHARE: f64 = 0.05;
/// How long stragglers (duplicates still on their way) get after the flood.
const SETTLE: Duration = Duration::from_millis(500);
/// The longest a flood may take.
const DEADLINE: Duration = Duration::from_secs(30);

/// What one flood did.
#[derive(Debug, Clone, Serialize)]
pub struct Flood {
    /// Rooms.
    pub rooms: usize,
    /// Callbacks made by the platform (not counting duplicates).
    pub callbacks: usize,
    /// Callbacks sent twice.
    pub duplicated: usize,
    /// Callbacks sent after their successor.
    pub reordered: usize,
    /// From the first step to the last room done.
    pub seconds: f64,
    /// `callbacks / seconds`.
    pub callbacks_per_sec: f64,
    /// Each room's outcome.
    #[serde(skip)]
    pub outcomes: Vec<RoomOutcome>,
}

/// What one room saw, against what the platform did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomOutcome {
    /// The room.
    pub room: String,
    /// Joins, leaves and messages the platform made.
    pub expected: Counts,
    /// Joins, leaves and messages the room state reported.
    pub seen: Counts,
    /// Who usher has in the room at the end (uuids, sorted).
    pub roster: Vec<String>,
    /// Who the platform lists (uuids, sorted).
    pub platform_roster: Vec<String>,
}

/// Changes of each kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Joins.
    pub joined: usize,
    /// Leaves.
    pub left: usize,
    /// Chat messages.
    pub messages: usize,
}

impl Flood {
    /// Callbacks whose change never showed (summed over rooms).
    pub fn lost(&self) -> usize {
        self.outcomes
            .iter()
            .map(|o| {
                o.expected.joined.saturating_sub(o.seen.joined)
                    + o.expected.left.saturating_sub(o.seen.left)
                    + o.expected.messages.saturating_sub(o.seen.messages)
            })
            .sum()
    }

    /// Changes that showed more often than the platform made them.
    pub fn applied_twice(&self) -> usize {
        self.outcomes
            .iter()
            .map(|o| {
                o.seen.joined.saturating_sub(o.expected.joined)
                    + o.seen.left.saturating_sub(o.expected.left)
                    + o.seen.messages.saturating_sub(o.expected.messages)
            })
            .sum()
    }

    /// Rooms whose final roster differs from the platform's.
    pub fn rosters_differing(&self) -> usize {
        self.outcomes
            .iter()
            .filter(|o| o.roster != o.platform_roster)
            .count()
    }
}

/// The report of `usher bench webhooks`: a clean flood and a faulty one on
/// each platform, side by side.
#[derive(Debug, Clone, Serialize)]
pub struct WebhookReport {
    /// Agora, without faults.
    pub clean: Flood,
    /// Agora, with 5% duplicated and 5% reordered.
    pub faulty: Flood,
    /// Tencent, without faults.
    pub tencent_clean: Flood,
    /// Tencent, with 5% duplicated and 5% reordered.
    pub tencent_faulty: Flood,
    /// Tencent callback bodies parsed per second, parsing alone.
    pub tencent_parsed_per_sec: f64,
    /// Changes lost in either flood.
    pub lost: usize,
    /// Changes applied twice in either flood.
    pub applied_twice: usize,
}

/// Runs a clean flood and a faulty one on each webhook platform and prints
/// them.
pub async fn run(
    rooms: usize,
    callbacks: usize,
    out: &mut dyn Write,
) -> anyhow::Result<WebhookReport> {
    writeln!(
        out,
        "{callbacks} callbacks over {rooms} rooms, through the webhook listener\n"
    )?;
    let clean = flood(rooms, callbacks, false).await?;
    let faulty = flood(rooms, callbacks, true).await?;
    let (tencent_clean, _) = tencent_flood(rooms, callbacks, false).await?;
    let (tencent_faulty, tencent_parsed_per_sec) = tencent_flood(rooms, callbacks, true).await?;
    writeln!(
        out,
        "{:<44} {:>12} {:>10} {:>6} {:>8} {:>8}",
        "flood", "callbacks/s", "seconds", "lost", "twice", "rosters"
    )?;
    for (name, run) in [
        ("agora, clean", &clean),
        ("agora, 5% duplicated, 5% reordered", &faulty),
        ("tencent, clean", &tencent_clean),
        ("tencent, 5% duplicated, 5% reordered", &tencent_faulty),
    ] {
        writeln!(
            out,
            "{name:<44} {:>12.0} {:>10.2} {:>6} {:>8} {:>8}",
            run.callbacks_per_sec,
            run.seconds,
            run.lost(),
            run.applied_twice(),
            if run.rosters_differing() == 0 {
                "exact"
            } else {
                "DIFFER"
            },
        )?;
    }
    let ratio = |a: f64, b: f64| a / b.max(f64::MIN_POSITIVE);
    writeln!(
        out,
        "\nfaulty / clean throughput: agora {:.2}, tencent {:.2}",
        ratio(faulty.callbacks_per_sec, clean.callbacks_per_sec),
        ratio(
            tencent_faulty.callbacks_per_sec,
            tencent_clean.callbacks_per_sec
        ),
    )?;
    writeln!(
        out,
        "tencent bodies parsed alone: {tencent_parsed_per_sec:.0}/s ({:.1}x the flood's rate)",
        ratio(tencent_parsed_per_sec, tencent_faulty.callbacks_per_sec)
    )?;
    let floods = [&clean, &faulty, &tencent_clean, &tencent_faulty];
    Ok(WebhookReport {
        lost: floods.iter().map(|run| run.lost()).sum(),
        applied_twice: floods.iter().map(|run| run.applied_twice()).sum(),
        clean,
        faulty,
        tencent_clean,
        tencent_faulty,
        tencent_parsed_per_sec,
    })
}

/// One room's plan: its steps, which are faulted, and what they add up to.
struct Plan {
    room: String,
    steps: Vec<(Step, Option<Fault>)>,
    expected: Counts,
}

/// Spreads `callbacks` steps over `rooms` rooms: half joins, three tenths
/// chat, two tenths leaves; each step is one callback.
fn plans(rooms: usize, callbacks: usize, faults: bool) -> Vec<Plan> {
    let mut rng = fastrand::Rng::with_seed(0x5eed_ca11);
    let per_room = callbacks / rooms.max(1);
    let mut plans: Vec<Plan> = (0..rooms)
        .map(|index| {
            let room = format!("flood-{index:03}");
            let mut present: Vec<String> = Vec::new();
            let mut expected = Counts::default();
            let mut steps = Vec::with_capacity(per_room);
            for k in 0..per_room {
                let step = match k % 10 {
                    5..=7 if !present.is_empty() => {
                        expected.messages += 1;
                        let from = present[rng.usize(..present.len())].clone();
                        Step::Chat(Chat {
                            from,
                            text: format!("{room} message {k}"),
                        })
                    }
                    8 | 9 if present.len() > 1 => {
                        expected.left += 1;
                        Step::Leave(present.remove(rng.usize(..present.len())))
                    }
                    _ => {
                        expected.joined += 1;
                        let name = format!("{room}-guest-{k}");
                        present.push(name.clone());
                        Step::Join(Joiner::guest(name))
                    }
                };
                steps.push((step, None));
            }
            Plan {
                room,
                steps,
                expected,
            }
        })
        .collect();
    if faults {
        let total: usize = plans.iter().map(|plan| plan.steps.len()).sum();
        let each = (total as f64 * FAULT_SHARE).round() as usize;
        // Distinct callbacks for each fault; never the last of a room for a
        // reorder, which would have nothing to overtake it.
        let mut slots: Vec<(usize, usize)> = plans
            .iter()
            .enumerate()
            .flat_map(|(room, plan)| {
                (0..plan.steps.len().saturating_sub(1)).map(move |step| (room, step))
            })
            .collect();
        rng.shuffle(&mut slots);
        for (n, (room, step)) in slots.into_iter().take(2 * each).enumerate() {
            plans[room].steps[step].1 = Some(if n < each {
                Fault::DuplicateCallbacks { count: 1 }
            } else {
                Fault::ReorderCallbacks { count: 1 }
            });
        }
    }
    plans
}

/// One flood: `callbacks` over `rooms`, with or without faults.
pub async fn flood(rooms: usize, callbacks: usize, faults: bool) -> anyhow::Result<Flood> {
    let plans = plans(rooms, callbacks, faults);
    let secret = Secret::new("bench-webhook-secret");
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .context("cannot bind the webhook listener")?;
    let hooks = listener.local_addr()?;
    let sim = AgoraSimulator::start(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        AgoraSimOptions {
            token: Some(Secret::new("bench-token")),
            webhook_secret: Some(secret.clone()),
            webhook_to: Some(url::Url::parse(&format!("http://{hooks}/hooks/ag"))?),
            ..AgoraSimOptions::default()
        },
        plans
            .iter()
            .map(|plan| RoomSpec::new(plan.room.clone()))
            .collect(),
    )
    .await?;
    let mut config = AgoraConfig::at(sim.base_url(), sim.region());
    config.app_id = Some(SecretSource::Literal(Secret::new(sim.app_id())));
    config.token = Some(SecretSource::Literal(Secret::new("bench-token")));
    config.webhook_secret = Some(SecretSource::Literal(secret));
    config.gap_hold = Span(Duration::from_secs(2));
    config.reconcile = Span(Duration::from_secs(600));
    let context = BuildContext::standalone("ag", rooms, FeedOptions::default());
    let agora: Arc<dyn Platform> = Arc::new(Agora::new(&config, &context)?);
    let router = crate::runtime::webhooks::router(
        BTreeMap::from([("ag".to_owned(), agora.clone())]),
        Arc::new(Registry::default()),
    );
    let stop = CancellationToken::new();
    let serving = stop.clone();
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, router)
            .with_graceful_shutdown(serving.cancelled_owned())
            .await;
    });

    let mut rooms_watched = Vec::with_capacity(plans.len());
    for plan in &plans {
        let link = agora
            .connect(&RoomAddress {
                alias: plan.room.clone(),
                pin: None,
            })
            .await
            .with_context(|| format!("cannot connect {}", plan.room))?;
        rooms_watched.push(watch_room(link, plan.expected, stop.clone()).await?);
    }

    let started = Instant::now();
    for plan in &plans {
        for (step, fault) in &plan.steps {
            if let Some(fault) = fault {
                sim.fault(&plan.room, fault.clone())?;
            }
            sim.step(&plan.room, step)
                .with_context(|| format!("{}: {}", plan.room, step.describe()))?;
        }
    }
    let deadline = started + DEADLINE;
    for (plan, watched) in plans.iter().zip(&mut rooms_watched) {
        let finished = tokio::time::timeout_at(deadline, watched.done.wait_for(|done| *done)).await;
        if finished.is_err() {
            let (seen, _) = watched.seen.borrow().clone();
            anyhow::bail!(
                "the flood did not finish in {DEADLINE:?}: room {} saw {seen:?} of {:?}; the simulator's sender: {:?}",
                plan.room,
                plan.expected,
                sim.deliveries()
            );
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    tokio::time::sleep(SETTLE).await;

    let mut outcomes = Vec::with_capacity(plans.len());
    for (plan, watched) in plans.iter().zip(&rooms_watched) {
        let (seen, mut roster) = watched.seen.borrow().clone();
        roster.sort();
        let mut platform_roster: Vec<String> = sim
            .users(&plan.room)
            .into_iter()
            .map(|user| user.user_uuid)
            .collect();
        platform_roster.sort();
        outcomes.push(RoomOutcome {
            room: plan.room.clone(),
            expected: plan.expected,
            seen,
            roster,
            platform_roster,
        });
    }
    stop.cancel();
    let _ = server.await;
    sim.shutdown().await;
    let count = |wanted: fn(&Fault) -> bool| {
        plans
            .iter()
            .flat_map(|plan| &plan.steps)
            .filter(|(_, fault)| fault.as_ref().is_some_and(wanted))
            .count()
    };
    let made: usize = plans.iter().map(|plan| plan.steps.len()).sum();
    Ok(Flood {
        rooms: plans.len(),
        callbacks: made,
        duplicated: count(|fault| matches!(fault, Fault::DuplicateCallbacks { .. })),
        reordered: count(|fault| matches!(fault, Fault::ReorderCallbacks { .. })),
        seconds,
        callbacks_per_sec: made as f64 / seconds.max(f64::MIN_POSITIVE),
        outcomes,
    })
}

/// The Tencent callback token of the bench.
const TENCENT_TOKEN: &str = "bench-callback-token";

/// One Tencent flood: `callbacks` over `rooms` (three fifths enter, then
/// two fifths of them leave, in order), with or without faults; also how
/// fast the bodies parse alone.
pub async fn tencent_flood(
    rooms: usize,
    callbacks: usize,
    faults: bool,
) -> anyhow::Result<(Flood, f64)> {
    let per_room = callbacks / rooms.max(1);
    let enters = per_room - per_room * 2 / 5;
    let sim = TencentSimulator::start(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        Vec::new(),
        TencentSimOptions {
            callback_token: Some(Secret::new(TENCENT_TOKEN)),
            collect_callbacks: true,
            seed: Some(11),
            ..TencentSimOptions::default()
        },
    )
    .await?;
    let names: Vec<String> = (0..rooms).map(|n| format!("flood-{n:03}")).collect();
    for room in &names {
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
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .context("cannot bind the webhook listener")?;
    let hooks = listener.local_addr()?;
    let mut config = TencentConfig::new(
        sim.base_url(),
        sim.sdk_app_id(),
        "administrator",
        DEMO_SECRET_KEY,
    );
    config.callback_token = Some(SecretSource::Literal(Secret::new(TENCENT_TOKEN)));
    config.reconcile = Span(Duration::from_secs(600));
    let context = BuildContext::standalone("tx", rooms, FeedOptions::default());
    let tencent: Arc<dyn Platform> = Arc::new(Tencent::new(&config, &context)?);
    let router = crate::runtime::webhooks::router(
        BTreeMap::from([("tx".to_owned(), tencent.clone())]),
        Arc::new(Registry::default()),
    );
    let stop = CancellationToken::new();
    let serving = stop.clone();
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, router)
            .with_graceful_shutdown(serving.cancelled_owned())
            .await;
    });
    let expected = Counts {
        joined: enters,
        left: per_room - enters,
        messages: 0,
    };
    let mut watched = Vec::with_capacity(rooms);
    for room in &names {
        let link = tencent
            .connect(&RoomAddress {
                alias: room.clone(),
                pin: None,
            })
            .await
            .with_context(|| format!("cannot connect {room}"))?;
        watched.push(watch_room(link, expected, stop.clone()).await?);
    }

    // The platform's callbacks, collected with their faults played: 5% of
    // each room's callbacks (never its last) duplicated, another 5% sent
    // after their successor. Leaves follow every enter, so a swap never
    // puts someone's leave before their own enter.
    let mut rng = fastrand::Rng::with_seed(0x7e11_ca11);
    let mut slots: Vec<(usize, usize)> = (0..rooms)
        .flat_map(|room| (0..per_room.saturating_sub(1)).map(move |step| (room, step)))
        .collect();
    rng.shuffle(&mut slots);
    let each = if faults {
        (rooms as f64 * per_room as f64 * FAULT_SHARE).round() as usize
    } else {
        0
    };
    let mut faulted: BTreeMap<(usize, usize), Fault> = BTreeMap::new();
    for (n, slot) in slots.into_iter().take(2 * each).enumerate() {
        faulted.insert(
            slot,
            if n < each {
                Fault::DuplicateCallbacks { count: 1 }
            } else {
                Fault::ReorderCallbacks { count: 1 }
            },
        );
    }
    for (index, room) in names.iter().enumerate() {
        for k in 0..per_room {
            if let Some(fault) = faulted.get(&(index, k)) {
                sim.fault(room, fault.clone())?;
            }
            let step = if k < enters {
                Step::Join(Joiner::guest(format!("Guest {k}")))
            } else {
                Step::Leave(format!("Guest {}", k - enters))
            };
            sim.step(room, &step)?;
        }
    }
    let collecting = Instant::now() + DEADLINE;
    while sim.callbacks_pending() > 0 {
        anyhow::ensure!(
            Instant::now() < collecting,
            "the simulator still holds {} callbacks",
            sim.callbacks_pending()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let deliveries = sim.take_collected();
    let parse_started = Instant::now();
    for delivery in &deliveries {
        let body: CallbackBody =
            serde_json::from_str(&delivery.body).context("a callback body does not parse")?;
        std::hint::black_box(body);
    }
    let parsed_per_sec =
        deliveries.len() as f64 / parse_started.elapsed().as_secs_f64().max(f64::MIN_POSITIVE);
    let mut by_room: BTreeMap<String, Vec<Delivery>> = BTreeMap::new();
    for delivery in deliveries {
        let body: CallbackBody = serde_json::from_str(&delivery.body)?;
        let room = body.room().unwrap_or_default().to_owned();
        by_room.entry(room).or_default().push(delivery);
    }

    let client = reqwest::Client::new();
    let started = Instant::now();
    let senders: Vec<_> = by_room
        .into_values()
        .map(|deliveries| {
            let client = client.clone();
            tokio::spawn(async move {
                for delivery in deliveries {
                    let url = format!("http://{hooks}/hooks/tx?{}", delivery.query);
                    let reply = client.post(url).body(delivery.body).send().await?;
                    anyhow::ensure!(reply.status() == 200, "usher answered {}", reply.status());
                }
                anyhow::Ok(())
            })
        })
        .collect();
    for sender in senders {
        sender.await??;
    }
    let deadline = started + DEADLINE;
    for (room, watched) in names.iter().zip(&mut watched) {
        let finished = tokio::time::timeout_at(deadline, watched.done.wait_for(|done| *done)).await;
        if finished.is_err() {
            let (seen, _) = watched.seen.borrow().clone();
            anyhow::bail!(
                "the flood did not finish in {DEADLINE:?}: room {room} saw {seen:?} of {expected:?}"
            );
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    tokio::time::sleep(SETTLE).await;

    let mut outcomes = Vec::with_capacity(rooms);
    for (room, watched) in names.iter().zip(&watched) {
        let (seen, mut roster) = watched.seen.borrow().clone();
        roster.sort();
        let mut platform_roster: Vec<String> = sim
            .conference(room)
            .map(|conference| conference.participants)
            .unwrap_or_default()
            .into_iter()
            .map(|p| p.uuid)
            .collect();
        platform_roster.sort();
        outcomes.push(RoomOutcome {
            room: room.clone(),
            expected,
            seen,
            roster,
            platform_roster,
        });
    }
    stop.cancel();
    let _ = server.await;
    sim.shutdown().await;
    let made = rooms * per_room;
    let count = |wanted: fn(&Fault) -> bool| faulted.values().filter(|f| wanted(f)).count();
    let flood = Flood {
        rooms,
        callbacks: made,
        duplicated: count(|fault| matches!(fault, Fault::DuplicateCallbacks { .. })),
        reordered: count(|fault| matches!(fault, Fault::ReorderCallbacks { .. })),
        seconds,
        callbacks_per_sec: made as f64 / seconds.max(f64::MIN_POSITIVE),
        outcomes,
    };
    Ok((flood, parsed_per_sec))
}

/// A room being followed into a room state.
struct Watched {
    /// Set once every expected change was seen.
    done: watch::Receiver<bool>,
    /// The counts and roster so far.
    seen: watch::Receiver<(Counts, Vec<String>)>,
}

/// Follows a room until `stop`; waits for its first listing.
async fn watch_room(
    link: Arc<dyn RoomLink>,
    expected: Counts,
    stop: CancellationToken,
) -> anyhow::Result<Watched> {
    let (sink, mut items) = mpsc::channel::<Box<FeedItem>>(4096);
    tokio::spawn(link.follow(sink, stop.clone()));
    let (done_tx, done) = watch::channel(false);
    let (seen_tx, seen) = watch::channel((Counts::default(), Vec::new()));
    let (listed_tx, listed) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let mut state = RoomState::new();
        let mut counts = Counts::default();
        let mut listed_tx = Some(listed_tx);
        while let Some(item) = items.recv().await {
            let FeedItem::Event(event) = *item else {
                continue;
            };
            let roster = matches!(event, Event::Roster(_));
            for change in state.apply(event) {
                match change {
                    Change::Joined(_) => counts.joined += 1,
                    Change::Left(_) => counts.left += 1,
                    Change::Message(_) => counts.messages += 1,
                    _ => {}
                }
            }
            if roster {
                if let Some(listed) = listed_tx.take() {
                    let _ = listed.send(());
                }
            }
            let uuids = state.participants().map(|p| p.uuid.clone()).collect();
            let _ = seen_tx.send((counts, uuids));
            if counts == expected {
                let _ = done_tx.send(true);
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(10), listed)
        .await
        .context("a room was not listed in time")?
        .context("a room's feed stopped before its listing")?;
    Ok(Watched { done, seen })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_spread_the_flood_and_its_faults_evenly() {
        let plans = plans(100, 10_000, true);
        assert_eq!(plans.len(), 100);
        let steps: usize = plans.iter().map(|p| p.steps.len()).sum();
        assert_eq!(steps, 10_000);
        let faults: Vec<&Fault> = plans
            .iter()
            .flat_map(|p| p.steps.iter().filter_map(|(_, f)| f.as_ref()))
            .collect();
        let duplicated = faults
            .iter()
            .filter(|f| matches!(f, Fault::DuplicateCallbacks { .. }))
            .count();
        assert_eq!((duplicated, faults.len() - duplicated), (500, 500));
        let expected = plans[0].expected;
        assert_eq!(expected.joined + expected.left + expected.messages, 100);
        assert!(plans.iter().all(|p| {
            p.steps
                .last()
                .is_some_and(|(_, f)| !matches!(f, Some(Fault::ReorderCallbacks { .. })))
        }));
    }
}
