//! `usher demo`: a simulated lecture, moderated by the shipped rules, told
//! as it happens.
//!
//! The simulator plays the bundled lecture scenario in-process; the real
//! daemon connects to it over loopback with every shipped rule, exactly as
//! `usher run` would, and the demo prints a timeline of what happens in the
//! room and what usher does about it. It ends on its own within a minute.
//!
//! `--platform` picks whose simulator plays the lecture: the seed-001 room
//! (`vmr`, the default) or a Tencent room, whose callbacks reach the
//! daemon's webhook listener and where what Tencent cannot do (lock,
//! messages, spotlights, …) shows as `unsupported`.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::broadcast::error::RecvError;
use tokio::time::Instant;

use crate::clock::{format_timestamp, unix_now};
use crate::config::Config;
use crate::platform::PlatformKind;
use crate::runtime::activity::Activity;
use crate::runtime::audit::{AuditRecord, Outcome};
use crate::runtime::{Daemon, StartError, StartOptions};
use crate::shipped;
use crate::sim::tencent::room::RoomSetup;
use crate::sim::tencent::{DEMO_SECRET_KEY, TencentSimOptions, TencentSimulator};
use crate::sim::{PlatformSimulator, RoomSpec, Scenario, Simulator};

/// What the demo did, for its closing line.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DemoSummary {
    /// Things that happened in the room.
    pub happenings: usize,
    /// Commands carried out.
    pub commands_ok: usize,
    /// Commands that failed or were not sent.
    pub commands_not_ok: usize,
}

/// How long after the scenario the lecture is ended, and the demo after that.
const LECTURE_OVERRUN: Duration = Duration::from_secs(2);
const AFTERWARDS: Duration = Duration::from_secs(3);

/// Runs the demo, printing the timeline to `out`. Files (the rules, the
/// config and the audit log) go to a fresh directory under the system's
/// temporary directory, named at the end.
pub async fn run(
    out: &mut (dyn Write + Send),
    platform: PlatformKind,
) -> anyhow::Result<DemoSummary> {
    let scenario = Scenario::bundled();
    let simulator = DemoSimulator::start(platform, &scenario)
        .await
        .context("cannot start the simulator")?;
    let workdir = workdir();
    shipped::write_rules(&workdir.join("rules")).context("cannot write the demo's rules")?;
    let lecture_ends =
        unix_now() + scenario.length().as_secs_f64() + LECTURE_OVERRUN.as_secs_f64() + 1.0;
    let config_path = workdir.join("usher.yaml");
    std::fs::write(
        &config_path,
        format!(
            "{}{}",
            simulator.platform_config(&scenario),
            demo_rules(lecture_ends)
        ),
    )
    .context("cannot write the demo's config")?;
    let config = Config::load(&config_path).map_err(|err| anyhow::anyhow!("{err}"))?;

    writeln!(
        out,
        "usher demo: a simulated lecture, moderated by the shipped rules\n"
    )?;
    writeln!(
        out,
        "  simulator  {} ({platform})  room {}",
        simulator.platform().base_url(),
        scenario.room
    )?;
    writeln!(
        out,
        "  rules      {}",
        config.rooms[0]
            .rules
            .iter()
            .map(|b| b.rule.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    )?;
    writeln!(out, "  files      {}\n", workdir.display())?;

    let options = StartOptions {
        follow_activity: true,
        ..StartOptions::default()
    };
    let mut daemon = match Daemon::start_with(config, &config_path, options).await {
        Ok(daemon) => daemon,
        Err(StartError::Config(message)) => {
            anyhow::bail!("the demo's config was refused: {message}")
        }
        Err(StartError::Other(err)) => return Err(err),
    };
    let mut activity = daemon
        .take_activity()
        .context("the daemon was started without its activity feed")?;
    simulator.call_back(&daemon);

    let connected_by = Instant::now() + Duration::from_secs(10);
    while !daemon.registry().unhealthy().is_empty() {
        anyhow::ensure!(
            Instant::now() < connected_by,
            "usher did not connect to the simulator within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let started = Instant::now();
    let player = simulator.platform().play(&scenario);
    let finish = started + scenario.length().0 + LECTURE_OVERRUN + AFTERWARDS;
    let mut summary = DemoSummary::default();
    loop {
        let item = tokio::select! {
            _ = tokio::time::sleep_until(finish) => break,
            item = activity.recv() => item,
        };
        let at = started.elapsed().as_secs_f64();
        match item {
            Ok(Activity::Room { text, .. }) => {
                summary.happenings += 1;
                writeln!(out, "{at:>6.1}s  {text}")?;
            }
            Ok(Activity::Command(record)) => {
                if record.outcome == Outcome::Ok {
                    summary.commands_ok += 1;
                } else {
                    summary.commands_not_ok += 1;
                }
                writeln!(out, "{at:>6.1}s      ⇒ {}", describe_command(&record))?;
            }
            Err(RecvError::Lagged(missed)) => writeln!(out, "        ({missed} lines skipped)")?,
            Err(RecvError::Closed) => break,
        }
    }
    player.abort();
    daemon.shutdown().await;
    let grace = simulator.name_of("Grace Hopper");
    simulator.shutdown().await;
    let audit = workdir.join("audit.jsonl");
    writeln!(
        out,
        "\ndone: {} things happened; usher sent {} commands ({} not carried out).",
        summary.happenings,
        summary.commands_ok + summary.commands_not_ok,
        summary.commands_not_ok
    )?;
    writeln!(
        out,
        "ask why: usher why \"{}\" --audit {}",
        grace,
        audit.display()
    )?;
    Ok(summary)
}

fn describe_command(record: &AuditRecord) -> String {
    let outcome = match (&record.outcome, record.latency_ms) {
        (Outcome::Ok, Some(ms)) => format!("ok, {ms:.0} ms"),
        (outcome, _) => match &record.error {
            Some(error) => format!("{}: {error}", outcome.as_str()),
            None => outcome.as_str().to_owned(),
        },
    };
    format!(
        "{:<36} {} · {} · {outcome}",
        record.text, record.rule, record.handler
    )
}

/// The simulator a demo runs against.
enum DemoSimulator {
    Vmr(Simulator),
    Tencent(TencentSimulator),
}

impl DemoSimulator {
    /// Starts `platform`'s simulator with the scenario's room. The Tencent
    /// room has seats for the first six people, so some can be muted one
    /// by one and the rest cannot.
    async fn start(platform: PlatformKind, scenario: &Scenario) -> anyhow::Result<Self> {
        let listen = SocketAddr::from(([127, 0, 0, 1], 0));
        let spec = RoomSpec::from_scenario(scenario);
        Ok(match platform {
            PlatformKind::Vmr => DemoSimulator::Vmr(Simulator::start(listen, vec![spec]).await?),
            PlatformKind::Tencent => {
                let sim = TencentSimulator::start(listen, Vec::new(), TencentSimOptions::default())
                    .await?;
                let owner = spec
                    .participants
                    .first()
                    .map(crate::sim::tencent::room::account_for)
                    .unwrap_or_else(|| "owner".to_owned());
                sim.add_room_with(
                    spec,
                    RoomSetup {
                        name: "Lecture".to_owned(),
                        owner,
                        seats: 6,
                        schedule: None,
                    },
                );
                DemoSimulator::Tencent(sim)
            }
        })
    }

    fn platform(&self) -> &dyn PlatformSimulator {
        match self {
            DemoSimulator::Vmr(sim) => sim,
            DemoSimulator::Tencent(sim) => sim,
        }
    }

    /// The config's platform part, ending with the room's own lines.
    fn platform_config(&self, scenario: &Scenario) -> String {
        let url = self.platform().base_url();
        let room = &scenario.room;
        match self {
            DemoSimulator::Vmr(_) => {
                let pin = scenario
                    .pin
                    .as_ref()
                    .map(|pin| format!("\"{}\"", pin.expose()))
                    .unwrap_or_else(|| "\"\"".to_owned());
                format!(
                    r#"# Written by `usher demo`. The PIN is the simulator's, not a real one.
platform:
  url: {url}
  display_name: usher
rooms:
  - alias: {room}
    pin: {pin}
"#
                )
            }
            DemoSimulator::Tencent(sim) => format!(
                r#"# Written by `usher demo`. The key is the simulator's, not a real one.
platforms:
  tx:
    kind: tencent
    url: {url}
    sdk_app_id: {app}
    admin: administrator
    secret_key: "{DEMO_SECRET_KEY}"
    reconcile: 5s
webhooks: {{ listen: 127.0.0.1:0 }}
rooms:
  - alias: {room}
    platform: tx
"#,
                app = sim.sdk_app_id(),
            ),
        }
    }

    /// Points a webhook platform's callbacks at the daemon's listener.
    fn call_back(&self, daemon: &Daemon) {
        if let (DemoSimulator::Tencent(sim), Some(hooks)) = (self, daemon.webhooks_addr()) {
            sim.set_webhook_to(url::Url::parse(&format!("http://{hooks}/hooks/tx")).ok());
        }
    }

    /// What the audit log calls someone: their name, or on Tencent (whose
    /// callbacks name accounts) their account.
    fn name_of(&self, name: &str) -> String {
        match self {
            DemoSimulator::Vmr(_) => name.to_owned(),
            DemoSimulator::Tencent(_) => {
                crate::sim::tencent::room::account_for(&crate::sim::step::Joiner::guest(name))
            }
        }
    }

    async fn shutdown(self) {
        match self {
            DemoSimulator::Vmr(sim) => sim.shutdown().await,
            DemoSimulator::Tencent(sim) => sim.shutdown().await,
        }
    }
}

/// The rest of the demo's config: every shipped rule, tuned to the bundled
/// scenario, for the room the platform part ends with.
fn demo_rules(lecture_ends: f64) -> String {
    let starts = format_timestamp(unix_now() + 1.0);
    let ends = format_timestamp(lecture_ends);
    format!(
        r#"    rules:
      - chat_commands
      - auto_mute_guests: {{ after: 2, except: ["Charles *"] }}
      - spotlight_presenter
      - presentation_layout
      - lock_when_full: {{ max: 10, reserve: 1 }}
      - waiting_room_admit: {{ allow: ["Dr. *"] }}
      - hand_queue: {{ silence: 6, check_every: 1 }}
      - lecture_schedule:
          start: "{starts}"
          end: "{ends}"
          warn: [0.25]
          grace: 0
          warning: "Fifteen seconds left, please wrap up."
rules_dir: rules
audit_log: audit.jsonl
http: {{ listen: 127.0.0.1:0 }}
"#
    )
}

/// Where `usher demo` writes its files: a directory of its own per run.
fn workdir() -> PathBuf {
    std::env::temp_dir().join(format!("usher-demo-{}", std::process::id()))
}
