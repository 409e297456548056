//! `usher demo`: a simulated lecture, moderated by the shipped rules, told
//! as it happens.
//!
//! The simulator plays the bundled lecture scenario in-process; the real
//! daemon connects to it over loopback with every shipped rule, exactly as
//! `usher run` would, and the demo prints a timeline of what happens in the
//! room and what usher does about it. It ends on its own within a minute.
//! `--platform` picks the simulated platform; on a webhook platform the
//! simulator calls the daemon's webhook listener back, and what the
//! platform cannot do shows as unsupported.

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
use crate::sim::{RoomSpec, Scenario};

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

/// Runs the demo on a simulator of `platform`, printing the timeline to
/// `out`. Files (the rules, the config and the audit log) go to a fresh
/// directory under the system's temporary directory, named at the end.
pub async fn run(
    out: &mut (dyn Write + Send),
    platform: PlatformKind,
) -> anyhow::Result<DemoSummary> {
    let scenario = Scenario::bundled();
    let hooks = free_port().context("cannot find a port for the webhook listener")?;
    let calls_back = matches!(platform, PlatformKind::Tencent | PlatformKind::Agora);
    let webhook_to = url::Url::parse(&format!("http://127.0.0.1:{hooks}/hooks/demo"))?;
    let simulator = crate::sim::start(
        platform,
        SocketAddr::from(([127, 0, 0, 1], 0)),
        vec![RoomSpec::from_scenario(&scenario)],
        calls_back.then_some(webhook_to),
    )
    .await
    .context("cannot start the simulator")?;
    let workdir = workdir();
    shipped::write_rules(&workdir.join("rules")).context("cannot write the demo's rules")?;
    let lecture_ends =
        unix_now() + scenario.length().as_secs_f64() + LECTURE_OVERRUN.as_secs_f64() + 1.0;
    let config_path = workdir.join("usher.yaml");
    std::fs::write(
        &config_path,
        demo_config(
            platform,
            &simulator.base_url(),
            &scenario,
            lecture_ends,
            hooks,
        ),
    )
    .context("cannot write the demo's config")?;
    let config = Config::load(&config_path).map_err(|err| anyhow::anyhow!("{err}"))?;

    writeln!(
        out,
        "usher demo: a simulated lecture on {platform}, moderated by the shipped rules\n"
    )?;
    writeln!(
        out,
        "  simulator  {} ({platform})  room {}",
        simulator.base_url(),
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

    let connected_by = Instant::now() + Duration::from_secs(10);
    while !daemon.registry().unhealthy().is_empty() {
        anyhow::ensure!(
            Instant::now() < connected_by,
            "usher did not connect to the simulator within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let started = Instant::now();
    let player = simulator.play(&scenario);
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
        "ask why: usher why \"Grace Hopper\" --audit {}",
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

/// The demo's config: every shipped rule, tuned to the bundled scenario.
fn demo_config(
    platform: PlatformKind,
    url: &url::Url,
    scenario: &Scenario,
    lecture_ends: f64,
    hooks: u16,
) -> String {
    let pin = match (platform, &scenario.pin) {
        (PlatformKind::Vmr | PlatformKind::Huawei, Some(pin)) => {
            format!("    pin: \"{}\"\n", pin.expose())
        }
        _ => String::new(),
    };
    let starts = format_timestamp(unix_now() + 1.0);
    let ends = format_timestamp(lecture_ends);
    format!(
        r#"# Written by `usher demo`. Its secrets are the simulator's, not real ones.
{platform}rules_dir: rules
audit_log: audit.jsonl
http: {{ listen: 127.0.0.1:0 }}
rooms:
  - alias: {room}
{pin}    rules:
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
"#,
        platform = platform_block(platform, url, hooks),
        room = scenario.room,
    )
}

/// The demo config's platform, reaching the simulator at `url` with the
/// simulator's own credentials; platforms that call back do so on `hooks`.
fn platform_block(platform: PlatformKind, url: &url::Url, hooks: u16) -> String {
    match platform {
        PlatformKind::Vmr => format!("platform:\n  url: {url}\n  display_name: usher\n"),
        PlatformKind::Huawei => format!(
            "platforms:\n  demo:\n    kind: huawei\n    url: {url}\n    app_id: \"{}\"\n    app_key: \"{}\"\n    user_id: usher\n",
            crate::sim::huawei::SIM_APP_ID,
            crate::sim::huawei::SIM_APP_KEY
        ),
        PlatformKind::Tencent => format!(
            "platforms:\n  demo:\n    kind: tencent\n    url: {url}\n    sdk_app_id: {}\n    admin: administrator\n    secret_key: \"{}\"\n    reconcile: 5s\nwebhooks: {{ listen: \"127.0.0.1:{hooks}\" }}\n",
            crate::sim::tencent::TencentSimOptions::default().sdk_app_id,
            crate::sim::tencent::DEMO_SECRET_KEY
        ),
        PlatformKind::Agora => format!(
            "platforms:\n  demo:\n    kind: agora\n    url: {url}\n    region: cn\n    app_id: usher-sim\n    token_file: {token}\n    gap_hold: 500ms\nwebhooks: {{ listen: \"127.0.0.1:{hooks}\" }}\n",
            token = crate::sim::agora::token_file_for(url.port().unwrap_or_default()).display()
        ),
    }
}

/// A free loopback port for the webhook listener, known before the
/// simulator that calls it starts.
fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Where `usher demo` writes its files: a directory of its own per run.
fn workdir() -> PathBuf {
    std::env::temp_dir().join(format!("usher-demo-{}", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_platforms_demo_config_loads() {
        let dir = std::env::temp_dir().join(format!("usher-demo-config-{}", std::process::id()));
        shipped::write_rules(&dir.join("rules")).unwrap();
        let url = url::Url::parse("http://127.0.0.1:9/").unwrap();
        for platform in PlatformKind::ALL {
            let text = demo_config(*platform, &url, &Scenario::bundled(), unix_now() + 60.0, 9);
            let path = dir.join(format!("{platform}.yaml"));
            std::fs::write(&path, text).unwrap();
            let config = Config::load(&path).unwrap_or_else(|err| panic!("{platform}: {err}"));
            let room = &config.rooms[0];
            assert_eq!(config.platform_of(room).kind(), *platform);
            assert_eq!(room.rules.len(), 8, "{platform}: every shipped rule");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
