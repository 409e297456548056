//! `usher bench latency`: from an event leaving the platform to the command
//! it causes arriving back, over loopback.
//!
//! The simulator and the real daemon run in this process. The simulator
//! emits events at a steady rate; every tenth is a guest joining, which
//! `auto_mute_guests` answers with a mute, and the rest are voice-activity
//! updates and chat that cause nothing. For each join, the time from the
//! moment the simulator emits it to the moment the mute request arrives at
//! the simulator is one sample.

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use serde::Serialize;
use tokio::time::{Instant, MissedTickBehavior};

use crate::config::Config;
use crate::runtime::{Daemon, StartError, StartOptions};
use crate::sim::step::{Chat, Joiner, Step};
use crate::sim::{RoomSpec, Simulator};

/// The latency figures, in microseconds.
#[derive(Debug, Clone, Serialize)]
pub struct LatencyReport {
    /// Median.
    pub p50_us: u64,
    /// 90th percentile.
    pub p90_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// Worst.
    pub max_us: u64,
    /// Joins measured.
    pub samples: usize,
    /// Joins whose mute never arrived.
    pub lost: usize,
    /// Events emitted per second.
    pub rate: u32,
}

const ROOM: &str = "latency@usher.test";

/// Emits events at `rate` per second for `length`, then reports.
pub async fn run(
    rate: u32,
    length: Duration,
    out: &mut dyn Write,
) -> anyhow::Result<LatencyReport> {
    let mut room = RoomSpec::new(ROOM);
    room.participants = vec![Joiner::host("Lecturer")];
    let simulator = Simulator::start(SocketAddr::from(([127, 0, 0, 1], 0)), vec![room]).await?;
    let workdir = std::env::temp_dir().join(format!("usher-bench-latency-{}", std::process::id()));
    crate::shipped::write_rules(&workdir.join("rules"))?;
    let config_path = workdir.join("usher.yaml");
    std::fs::write(
        &config_path,
        format!(
            "platform: {{ url: {} }}\nrules_dir: rules\nhttp: {{ listen: 127.0.0.1:0 }}\n\
             dispatch: {{ rate: 1000000, burst: 100000 }}\n\
             rooms:\n  - alias: {ROOM}\n    rules: [auto_mute_guests]\n",
            simulator.base_url()
        ),
    )?;
    let config = Config::load(&config_path).map_err(|err| anyhow::anyhow!("{err}"))?;
    let daemon = match Daemon::start_with(config, &config_path, StartOptions::default()).await {
        Ok(daemon) => daemon,
        Err(StartError::Config(message)) => anyhow::bail!("{message}"),
        Err(StartError::Other(err)) => return Err(err),
    };
    let ready_by = Instant::now() + Duration::from_secs(10);
    while !daemon.registry().unhealthy().is_empty() {
        anyhow::ensure!(
            Instant::now() < ready_by,
            "usher did not connect within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let mut joined: Vec<(String, SystemTime)> = Vec::new();
    let mut ticks = tokio::time::interval(Duration::from_secs(1) / rate.max(1));
    ticks.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let total = (f64::from(rate) * length.as_secs_f64()) as usize;
    for n in 0..total {
        ticks.tick().await;
        let step = match n % 10 {
            0 => {
                let name = format!("Guest {}", n / 10);
                joined.push((name.clone(), SystemTime::now()));
                Step::Join(Joiner::guest(name))
            }
            5 => Step::Chat(Chat {
                from: "Lecturer".to_owned(),
                text: "next slide".to_owned(),
            }),
            _ if n % 3 == 0 => Step::Silence,
            _ => Step::Speak("Lecturer".to_owned()),
        };
        simulator
            .step(ROOM, &step)
            .context("the simulator refused a step")?;
    }
    let settle_by = Instant::now() + Duration::from_secs(5);
    let mut arrivals: HashMap<String, SystemTime> = HashMap::new();
    while Instant::now() < settle_by {
        arrivals = mute_arrivals(&simulator);
        if arrivals.len() >= joined.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let roster = simulator.conference(ROOM).context("the room is gone")?;
    let mut samples: Vec<u64> = Vec::new();
    let mut lost = 0;
    for (name, sent) in &joined {
        let arrived = roster.find(name).and_then(|p| arrivals.get(&p.uuid));
        match arrived.and_then(|at| at.duration_since(*sent).ok()) {
            Some(took) => samples.push(took.as_micros() as u64),
            None => lost += 1,
        }
    }
    daemon.shutdown().await;
    simulator.shutdown().await;
    let _ = std::fs::remove_dir_all(&workdir);
    anyhow::ensure!(!samples.is_empty(), "no command came back");
    samples.sort_unstable();
    let at = |fraction: f64| samples[((samples.len() - 1) as f64 * fraction).round() as usize];
    let report = LatencyReport {
        p50_us: at(0.50),
        p90_us: at(0.90),
        p99_us: at(0.99),
        max_us: *samples.last().expect("not empty"),
        samples: samples.len(),
        lost,
        rate,
    };
    writeln!(
        out,
        "latency: {rate} events/s for {length:?}; one join in ten is answered with a mute"
    )?;
    writeln!(
        out,
        "from the event leaving the simulator to the command arriving back, over loopback\n"
    )?;
    for (label, value) in [
        ("p50", report.p50_us),
        ("p90", report.p90_us),
        ("p99", report.p99_us),
        ("max", report.max_us),
    ] {
        writeln!(out, "{label:<10} {value:>10} µs")?;
    }
    writeln!(out, "{:<10} {:>10}", "samples", report.samples)?;
    writeln!(out, "{:<10} {:>10}", "lost", report.lost)?;
    Ok(report)
}

/// When each participant's first mute arrived, by uuid.
fn mute_arrivals(simulator: &Simulator) -> HashMap<String, SystemTime> {
    let mut arrivals = HashMap::new();
    for call in simulator.calls() {
        if call.method != "POST" || call.status != 200 {
            continue;
        }
        if let Some(uuid) = call
            .path
            .strip_prefix("participants/")
            .and_then(|rest| rest.strip_suffix("/mute"))
        {
            arrivals.entry(uuid.to_owned()).or_insert(call.at);
        }
    }
    arrivals
}
