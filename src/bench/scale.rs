//! `usher bench scale`: thousands of rooms in one daemon.
//!
//! The simulator runs as a child process (`usher bench serve-rooms`), so
//! the memory and CPU measured are the daemon's alone. The daemon watches
//! every room with the shipped rules, for at least two token lifetimes:
//! every token must be refreshed before it expires, no stream may drop, and
//! when a guest joins every room halfway through, every mute must arrive.

use std::io::Write;
use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context as _;
use serde::Serialize;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::time::Instant;

use crate::config::Config;
use crate::platform::http::StreamProtocol;
use crate::runtime::{Daemon, StartError, StartOptions};
use crate::sim::step::{Joiner, Step};
use crate::sim::{RoomSpec, Simulator};

/// The scale figures.
#[derive(Debug, Clone, Serialize)]
pub struct ScaleReport {
    /// Rooms watched.
    pub rooms: usize,
    /// The daemon's resident memory at the end, in MB.
    pub rss_mb: f64,
    /// The daemon's peak resident memory, in MB.
    pub peak_rss_mb: f64,
    /// The daemon's CPU use over the measured window, in percent of one core.
    pub cpu_percent: f64,
    /// Token expiries the window spanned, over all rooms.
    pub refreshes_due: u64,
    /// Token refreshes done in the window.
    pub refreshes_done: u64,
    /// Calls the platform refused with 403 (an expired token).
    pub refused: u64,
    /// Event-stream reconnects.
    pub reconnects: u64,
    /// Mutes asked for but not received by the platform.
    pub commands_lost: u64,
    /// How long it took every room to connect, in seconds.
    pub connect_seconds: f64,
}

/// The child: serves `rooms` rooms and follows orders on stdin:
/// `join` (a guest joins every room), `stats` (prints the call tally as one
/// JSON line), end of input (stops).
pub async fn serve_rooms(rooms: usize, token_expiry: Duration) -> anyhow::Result<()> {
    let specs = (0..rooms)
        .map(|n| RoomSpec {
            token_expiry,
            participants: vec![Joiner::host("Lecturer")],
            ..RoomSpec::new(room_alias(n))
        })
        .collect();
    let simulator = Simulator::start(SocketAddr::from(([127, 0, 0, 1], 0)), specs).await?;
    let mut stdout = tokio::io::stdout();
    stdout
        .write_all(format!("listening {}\n", simulator.base_url()).as_bytes())
        .await?;
    stdout.flush().await?;
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await? {
        let answer = match line.trim() {
            "join" => {
                for n in 0..rooms {
                    simulator.step(&room_alias(n), &Step::Join(Joiner::guest("Newcomer")))?;
                }
                format!("joined {rooms}")
            }
            "stats" => {
                let tally: Vec<(String, u16, u64)> = simulator
                    .tally()
                    .into_iter()
                    .map(|((call, status), count)| (call, status, count))
                    .collect();
                serde_json::to_string(&tally)?
            }
            other => format!("unknown order {other:?}"),
        };
        stdout.write_all(format!("{answer}\n").as_bytes()).await?;
        stdout.flush().await?;
    }
    simulator.shutdown().await;
    Ok(())
}

fn room_alias(n: usize) -> String {
    format!("room-{n}@scale.usher.test")
}

/// Runs `rooms` rooms for `length` with tokens lasting `token_expiry`, their
/// event streams over `protocol`.
pub async fn run(
    rooms: usize,
    length: Duration,
    token_expiry: Duration,
    protocol: StreamProtocol,
    out: &mut dyn Write,
) -> anyhow::Result<ScaleReport> {
    anyhow::ensure!(
        length >= token_expiry * 2,
        "run for at least two token lifetimes"
    );
    // The simulator's process, which inherits the limit, needs as many.
    let limit = crate::os::raise_open_files_limit()?;
    crate::os::check_open_files(rooms, protocol, limit)?;

    let mut child = tokio::process::Command::new(std::env::current_exe()?)
        .args(["bench", "serve-rooms", "--rooms", &rooms.to_string()])
        .args(["--token-expiry", &format!("{}ms", token_expiry.as_millis())])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .context("cannot start the simulator process")?;
    let mut orders = child.stdin.take().context("no stdin")?;
    let mut answers = BufReader::new(child.stdout.take().context("no stdout")?).lines();
    let first = answers
        .next_line()
        .await?
        .context("the simulator said nothing")?;
    let url = first
        .strip_prefix("listening ")
        .context("the simulator did not start")?
        .to_owned();

    let workdir = std::env::temp_dir().join(format!("usher-bench-scale-{}", std::process::id()));
    crate::shipped::write_rules(&workdir.join("rules"))?;
    let mut config = format!(
        "platform: {{ url: {url}, stream_protocol: {protocol} }}\nrules_dir: rules\nhttp: {{ listen: 127.0.0.1:0 }}\nrooms:\n"
    );
    for n in 0..rooms {
        config.push_str(&format!(
            "  - alias: {}\n    rules: [auto_mute_guests, chat_commands, hand_queue, lock_when_full, spotlight_presenter, presentation_layout, waiting_room_admit]\n",
            room_alias(n)
        ));
    }
    let config_path = workdir.join("usher.yaml");
    std::fs::write(&config_path, config)?;
    let config = Config::load(&config_path).map_err(|err| anyhow::anyhow!("{err}"))?;
    let started = Instant::now();
    let daemon = match Daemon::start_with(config, &config_path, StartOptions::default()).await {
        Ok(daemon) => daemon,
        Err(StartError::Config(message)) => anyhow::bail!("{message}"),
        Err(StartError::Other(err)) => return Err(err),
    };
    writeln!(
        out,
        "scale: {rooms} rooms, streams over {protocol}, tokens lasting {token_expiry:?}, measured over {length:?}"
    )?;
    let connect_by = started + Duration::from_secs(300);
    loop {
        let down = daemon.registry().unhealthy().len();
        if down == 0 {
            break;
        }
        anyhow::ensure!(
            Instant::now() < connect_by,
            "{down} rooms still not connected after 300 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let connect_seconds = started.elapsed().as_secs_f64();
    writeln!(out, "every room connected in {connect_seconds:.1} s")?;

    let before = daemon_counters(&daemon);
    let tally_before = ask_tally(&mut orders, &mut answers).await?;
    let cpu_before = cpu_seconds();
    let window = Instant::now();
    tokio::time::sleep(length / 2).await;
    orders.write_all(b"join\n").await?;
    answers.next_line().await?;
    tokio::time::sleep_until(window + length).await;
    let cpu = (cpu_seconds() - cpu_before) / window.elapsed().as_secs_f64() * 100.0;
    let after = daemon_counters(&daemon);
    let tally_after = ask_tally(&mut orders, &mut answers).await?;
    let (rss_mb, peak_rss_mb) = memory_mb();
    let count = |tally: &[(String, u16, u64)], call: &str, status: u16| -> u64 {
        tally
            .iter()
            .filter(|(name, code, _)| name == call && *code == status)
            .map(|(_, _, count)| count)
            .sum()
    };
    let refused = tally_after
        .iter()
        .filter(|(_, status, _)| *status == 403)
        .map(|(_, _, count)| count)
        .sum::<u64>();
    let mutes = count(&tally_after, "mute", 200) - count(&tally_before, "mute", 200);
    let report = ScaleReport {
        rooms,
        rss_mb: (rss_mb * 10.0).round() / 10.0,
        peak_rss_mb: (peak_rss_mb * 10.0).round() / 10.0,
        cpu_percent: (cpu * 10.0).round() / 10.0,
        refreshes_due: rooms as u64
            * (length.as_secs_f64() / token_expiry.as_secs_f64()).floor() as u64,
        refreshes_done: after.refreshes - before.refreshes,
        refused,
        reconnects: after.reconnects - before.reconnects,
        commands_lost: (rooms as u64).saturating_sub(mutes),
        connect_seconds: (connect_seconds * 10.0).round() / 10.0,
    };
    daemon.shutdown().await;
    drop(orders);
    let _ = tokio::time::timeout(Duration::from_secs(30), child.wait()).await;
    let _ = std::fs::remove_dir_all(&workdir);

    writeln!(out)?;
    for (label, value) in [
        ("rooms", report.rooms.to_string()),
        (
            "resident memory",
            format!("{} MB (peak {} MB)", report.rss_mb, report.peak_rss_mb),
        ),
        ("cpu", format!("{}% of one core", report.cpu_percent)),
        (
            "token expiries in the window",
            report.refreshes_due.to_string(),
        ),
        (
            "token refreshes in the window",
            report.refreshes_done.to_string(),
        ),
        ("calls refused (403)", report.refused.to_string()),
        ("reconnects", report.reconnects.to_string()),
        ("mutes lost", report.commands_lost.to_string()),
    ] {
        writeln!(out, "{label:<32} {value}")?;
    }
    Ok(report)
}

struct Counters {
    refreshes: u64,
    reconnects: u64,
}

fn daemon_counters(daemon: &Daemon) -> Counters {
    let report = daemon.registry().report();
    Counters {
        refreshes: report.rooms.values().map(|room| room.refreshes).sum(),
        reconnects: report.rooms.values().map(|room| room.reconnects).sum(),
    }
}

async fn ask_tally(
    orders: &mut tokio::process::ChildStdin,
    answers: &mut tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
) -> anyhow::Result<Vec<(String, u16, u64)>> {
    orders.write_all(b"stats\n").await?;
    let line = answers
        .next_line()
        .await?
        .context("the simulator stopped")?;
    Ok(serde_json::from_str(&line)?)
}

/// CPU time this process has used, in seconds.
fn cpu_seconds() -> f64 {
    // SAFETY: `usage` is a valid, writable `rusage` for the duration of the call.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return 0.0;
    }
    let seconds = |time: libc::timeval| time.tv_sec as f64 + time.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

/// This process's resident memory now and at its peak, in MB.
fn memory_mb() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}
