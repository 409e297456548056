//! `usher bench failover`: how long a killed instance's rooms go without
//! an owner, and how much usher writes to etcd.
//!
//! A local etcd, the simulator with `rooms` rooms, and three `usher run`
//! processes of this binary sharing them. Then, `kills` times: one instance
//! is killed with SIGKILL, the time until every one of its rooms has a new
//! owner in etcd is measured, and it is started again and the rooms
//! settle; then each instance in turn is stopped with SIGTERM, and the
//! handover timed the same way. Meanwhile a guest joins every room every few seconds, so rules
//! act and state is saved. etcd's own counters give the writes (committed
//! proposals: key writes, transactions and lease grants and revocations)
//! per room per minute over a quiet window with the same traffic.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use serde::Serialize;
use tokio::process::{Child, Command};
use tokio::time::Instant;

use super::etcd::LocalEtcd;
use crate::cluster::Cluster;
use crate::cluster::config::ClusterConfig;
use crate::model::Secret;
use crate::sim::step::{Joiner, Step};
use crate::sim::{RoomSpec, Simulator};

/// The figures, as the last line's JSON.
#[derive(Debug, Serialize)]
pub struct FailoverReport {
    /// Rooms shared.
    pub rooms: usize,
    /// Instances sharing them.
    pub instances: usize,
    /// The lease, in seconds.
    pub lease_ttl_s: f64,
    /// Kills measured.
    pub kills: usize,
    /// From SIGKILL to every room of the victim owned again: the median.
    pub failover_median_s: f64,
    /// And the longest.
    pub failover_max_s: f64,
    /// From SIGTERM to every room of the stopped instance owned again: the
    /// longest of three.
    pub sigterm_handover_max_s: f64,
    /// etcd writes (committed proposals) per room per minute, steady state
    /// with a guest joining every room every [`JOIN_EVERY`].
    pub etcd_writes_per_room_minute: f64,
}

/// How often a guest joins each room while measuring.
pub const JOIN_EVERY: Duration = Duration::from_secs(5);

const PIN: &str = "2468";
const NODES: [&str; 3] = ["bench-1", "bench-2", "bench-3"];

fn alias(n: usize) -> String {
    format!("room-{n:03}@bench.test")
}

/// One `usher run` of the cluster.
struct Instance {
    node: &'static str,
    child: Child,
}

fn spawn(dir: &Path, node: &'static str) -> anyhow::Result<Instance> {
    let child = Command::new(std::env::current_exe()?)
        .args(["run", "-c", "usher.yaml"])
        .current_dir(dir)
        .env("USHER_NODE", node)
        .env("RUST_LOG", "error")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("cannot start usher")?;
    Ok(Instance { node, child })
}

/// Waits until every room has an owner and the owners are balanced over
/// `nodes`; returns the owners.
async fn settled(
    observer: &Cluster,
    rooms: usize,
    nodes: usize,
) -> anyhow::Result<BTreeMap<String, String>> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok((live, owners)) = observer.owners().await {
            let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
            for owner in owners.values() {
                *counts.entry(owner).or_default() += 1;
            }
            let (least, most) = (
                counts.values().min().copied().unwrap_or(0),
                counts.values().max().copied().unwrap_or(0),
            );
            if live.len() == nodes
                && owners.len() == rooms
                && counts.len() == nodes
                && most - least <= 1
            {
                return Ok(owners);
            }
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the rooms did not settle in 60 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Runs the benchmark.
pub async fn run(
    kills: usize,
    rooms: usize,
    lease_ttl: Duration,
    out: &mut dyn Write,
) -> anyhow::Result<FailoverReport> {
    let etcd = LocalEtcd::start("bench").await?;
    let specs = (0..rooms)
        .map(|n| RoomSpec {
            alias: alias(n),
            pin: Some(Secret::new(PIN)),
            token_expiry: Duration::from_secs(600),
            participants: vec![Joiner::host("Ada")],
        })
        .collect();
    let sim = Arc::new(Simulator::start(([127, 0, 0, 1], 0).into(), specs).await?);
    let dir: PathBuf =
        std::env::temp_dir().join(format!("usher-bench-failover-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    crate::shipped::write_rules(&dir.join("rules"))?;
    std::fs::write(dir.join("room.pin"), PIN)?;
    let mut config = format!(
        "platform: {{ url: {}, display_name: usher }}\nrules_dir: rules\nhttp: {{ listen: 127.0.0.1:0 }}\ncluster:\n  etcd: [{}]\n  node: ${{USHER_NODE}}\n  lease_ttl: {}ms\nrooms:\n",
        sim.base_url(),
        etcd.url(),
        lease_ttl.as_millis()
    );
    for n in 0..rooms {
        config.push_str(&format!(
            "  - alias: {}\n    pin_file: room.pin\n    rules: [auto_mute_guests, hand_queue]\n",
            alias(n)
        ));
    }
    std::fs::write(dir.join("usher.yaml"), &config)?;
    let settings: ClusterConfig = serde_json::from_value(serde_json::json!({
        "etcd": [etcd.url()],
        "lease_ttl": format!("{}ms", lease_ttl.as_millis()),
    }))?;
    let observer = Cluster::observer(&settings)?;
    writeln!(
        out,
        "failover: {rooms} rooms over {} instances, lease {lease_ttl:?}, {kills} kills",
        NODES.len()
    )?;
    let mut instances = Vec::new();
    for node in NODES {
        instances.push(spawn(&dir, node)?);
    }
    settled(&observer, rooms, NODES.len()).await?;

    // Guests keep arriving everywhere, so rules act and state changes.
    let traffic = {
        let sim = sim.clone();
        tokio::spawn(async move {
            let mut round = 0u64;
            loop {
                tokio::time::sleep(JOIN_EVERY).await;
                round += 1;
                for n in 0..rooms {
                    let _ = sim.step(
                        &alias(n),
                        &Step::Join(Joiner::guest(format!("Guest {round}"))),
                    );
                }
            }
        })
    };

    let window = Duration::from_secs(20);
    let proposals = "etcd_server_proposals_committed_total";
    let before = etcd.counter(proposals).await.unwrap_or(0.0);
    tokio::time::sleep(window).await;
    let after = etcd.counter(proposals).await.unwrap_or(0.0);
    let writes = (after - before) / rooms as f64 / (window.as_secs_f64() / 60.0);
    writeln!(out, "etcd writes: {writes:.1} per room per minute")?;

    let mut times = Vec::new();
    for kill in 0..kills {
        let owners = settled(&observer, rooms, NODES.len()).await?;
        // Past the save debounce, as a real crash would mostly be.
        tokio::time::sleep(Duration::from_millis(1200)).await;
        let index = kill % instances.len();
        let victim = instances[index].node;
        let theirs: Vec<&String> = owners
            .iter()
            .filter(|(_, owner)| *owner == victim)
            .map(|(room, _)| room)
            .collect();
        let killed = Instant::now();
        instances[index].child.start_kill()?;
        let _ = instances[index].child.wait().await;
        loop {
            if let Ok((_, now)) = observer.owners().await {
                if theirs
                    .iter()
                    .all(|room| now.get(*room).is_some_and(|owner| owner != victim))
                {
                    break;
                }
            }
            anyhow::ensure!(
                killed.elapsed() < Duration::from_secs(60),
                "{victim}'s rooms were not taken over in 60 s"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let took = killed.elapsed().as_secs_f64();
        writeln!(
            out,
            "kill {}: {victim}'s {} rooms taken over in {took:.2} s",
            kill + 1,
            theirs.len()
        )?;
        times.push(took);
        instances[index] = spawn(&dir, victim)?;
    }
    // Orderly stops: the rooms are released as they stop.
    let mut handovers: Vec<f64> = Vec::new();
    for instance in &mut instances {
        let owners = settled(&observer, rooms, NODES.len()).await?;
        let victim = instance.node;
        let theirs: Vec<&String> = owners
            .iter()
            .filter(|(_, owner)| *owner == victim)
            .map(|(room, _)| room)
            .collect();
        let stopped = Instant::now();
        let pid = instance.child.id().context("usher already exited")?;
        // SAFETY: kill(2) on a child of ours that has not been reaped.
        unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
        loop {
            if let Ok((_, now)) = observer.owners().await {
                if theirs
                    .iter()
                    .all(|room| now.get(*room).is_some_and(|owner| owner != victim))
                {
                    break;
                }
            }
            anyhow::ensure!(
                stopped.elapsed() < Duration::from_secs(60),
                "{victim}'s rooms were not handed over in 60 s"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let took = stopped.elapsed().as_secs_f64();
        writeln!(
            out,
            "SIGTERM: {victim}'s {} rooms handed over in {took:.2} s",
            theirs.len()
        )?;
        handovers.push(took);
        let _ = instance.child.wait().await;
        *instance = spawn(&dir, victim)?;
    }
    let handover_max = handovers.iter().copied().fold(0.0, f64::max);
    traffic.abort();
    let _ = traffic.await;
    drop(instances);
    if let Ok(sim) = Arc::try_unwrap(sim) {
        sim.shutdown().await;
    }
    let _ = std::fs::remove_dir_all(&dir);
    times.sort_by(f64::total_cmp);
    let median = times.get(times.len() / 2).copied().unwrap_or(0.0);
    let max = times.last().copied().unwrap_or(0.0);
    writeln!(out, "failover: median {median:.2} s, max {max:.2} s")?;
    let round = |value: f64| (value * 100.0).round() / 100.0;
    Ok(FailoverReport {
        rooms,
        instances: NODES.len(),
        lease_ttl_s: lease_ttl.as_secs_f64(),
        kills,
        failover_median_s: round(median),
        failover_max_s: round(max),
        sigterm_handover_max_s: round(handover_max),
        etcd_writes_per_room_minute: round(writes),
    })
}
