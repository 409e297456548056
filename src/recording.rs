//! Recordings: a live room's events in a file, and rules replayed over them.
//!
//! `usher record` writes one JSON line per event as it arrives, in usher's
//! own platform-neutral form (the same on every platform):
//!
//! ```json
//! {"t":1795327200.125,"event":"participant","data":{"uuid":"…","display_name":"Bob",…}}
//! ```
//!
//! `usher replay` runs rules over such a file offline, on the recording's
//! clock, and prints the commands they would have sent. Nothing is sent and
//! no command is applied: the room changes only as the recording says.

use std::io::{BufRead, Write};
use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::clock::unix_now;
use crate::config::Config;
use crate::model::{Event, RoomState};
use crate::platform::{self, BuildContext, FeedItem, FeedOptions, RoomAddress};
use crate::rules::{Intent, RoomRules, RuleEngine, RuleLibrary};
use crate::runtime::plan::plan;

/// One line of a recording.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Line {
    /// When it arrived (UNIX seconds).
    pub t: f64,
    /// The event's kind.
    pub event: String,
    /// The event's data.
    #[serde(default)]
    pub data: Value,
}

impl Line {
    /// An event line.
    pub fn event(t: f64, event: &Event) -> Line {
        let mut json = serde_json::to_value(event).expect("events always serialize");
        Line {
            t,
            event: event.kind().to_owned(),
            data: json.get_mut("data").map(Value::take).unwrap_or(Value::Null),
        }
    }

    /// The event this line holds, or why it cannot be read.
    pub fn to_event(&self) -> Result<Event, serde_json::Error> {
        let mut json = serde_json::json!({ "event": self.event });
        if !self.data.is_null() {
            json["data"] = self.data.clone();
        }
        serde_json::from_value(json)
    }
}

/// Reads a recording. Lines that cannot be read are reported with their
/// line number and skipped.
pub fn read(path: &Path) -> anyhow::Result<Vec<Line>> {
    let file = std::fs::File::open(path)
        .with_context(|| format!("cannot open the recording {}", path.display()))?;
    let mut lines = Vec::new();
    for (number, text) in std::io::BufReader::new(file).lines().enumerate() {
        let text = text.with_context(|| format!("cannot read {}", path.display()))?;
        if text.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Line>(&text) {
            Ok(line) => lines.push(line),
            Err(err) => tracing::warn!(
                "{}:{}: skipping a line that cannot be read: {err}",
                path.display(),
                number + 1
            ),
        }
    }
    Ok(lines)
}

/// Records room `alias` of `config` into `out` until `stop` fires. Returns
/// how many events were written.
pub async fn record(
    config: &Config,
    config_path: &Path,
    alias: &str,
    out: &Path,
    stop: CancellationToken,
) -> anyhow::Result<u64> {
    let room = config.room(Some(alias))?;
    let pin = config.resolve_pin(config_path, room)?;
    let context = BuildContext::standalone(room.platform_name(), 1, FeedOptions::default());
    let platform = platform::build(config.platform_of(room), context)?;
    let address = RoomAddress {
        alias: room.alias.clone(),
        pin,
    };
    let link = platform
        .connect(&address)
        .await
        .context("cannot connect to the room")?;
    let mut file = std::io::BufWriter::new(
        std::fs::File::create(out).with_context(|| format!("cannot create {}", out.display()))?,
    );
    let background = stop.child_token();
    let (sink, mut feed) = mpsc::channel(4096);
    let follower = tokio::spawn(link.clone().follow(sink, background.clone()));
    let mut events = 0;
    loop {
        let item = tokio::select! {
            _ = stop.cancelled() => break,
            item = feed.recv() => match item {
                Some(item) => item,
                None => break,
            },
        };
        let line = match *item {
            FeedItem::Event(event) => {
                events += 1;
                Line::event(unix_now(), &event)
            }
            FeedItem::Connected => continue,
            FeedItem::Disconnected { reason, .. } => {
                tracing::warn!("event stream down: {reason}");
                continue;
            }
        };
        serde_json::to_writer(&mut file, &line)?;
        file.write_all(b"\n")?;
        file.flush()?;
    }
    background.cancel();
    let _ = follower.await;
    link.close().await;
    Ok(events)
}

/// What a replay found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReplaySummary {
    /// Events replayed.
    pub events: u64,
    /// Lines holding an event that could not be read.
    pub malformed: u64,
    /// Commands the rules would have sent.
    pub commands: u64,
    /// Rule calls that failed.
    pub rule_errors: u64,
}

/// Replays `lines` through the rules of room `alias` (or the config's only
/// room), writing the commands they would have sent to `out`.
pub fn replay(
    config: &Config,
    alias: Option<&str>,
    lines: &[Line],
    out: &mut dyn Write,
) -> anyhow::Result<ReplaySummary> {
    let room = config.room(alias)?;
    let capabilities = config.platform_of(room).capabilities();
    let engine = Arc::new(RuleEngine::new(config.limits.to_limits()));
    let library = RuleLibrary::load(engine, &config.rules_dir).map_err(|errors| {
        anyhow::anyhow!(
            errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        )
    })?;
    let mut rules = RoomRules::new(&room.alias, library.current(), &room.rules)?;
    let mut state = Arc::new(RoomState::new());
    let mut summary = ReplaySummary::default();
    let start = lines.first().map_or(0.0, |line| line.t);
    for line in lines {
        while let Some(due) = rules.next_timer().filter(|due| *due <= line.t) {
            let intents = rules.fire_timers(&state, due);
            show(
                intents,
                &state,
                &capabilities,
                due - start,
                &mut summary,
                out,
            )?;
        }
        let event = match line.to_event() {
            Ok(event) => event,
            Err(err) => {
                summary.malformed += 1;
                writeln!(out, "{:>9.3}s  (skipped: {err})", line.t - start)?;
                continue;
            }
        };
        summary.events += 1;
        let name = event.kind();
        let changes = Arc::make_mut(&mut state).apply_at(event, line.t);
        if changes.is_empty() {
            continue;
        }
        let intents = rules.on_changes(&state, &changes, name, line.t);
        for failure in rules.drain_failures() {
            summary.rule_errors += 1;
            writeln!(
                out,
                "{:>9.3}s  rule error: {}",
                line.t - start,
                failure.error
            )?;
        }
        show(
            intents,
            &state,
            &capabilities,
            line.t - start,
            &mut summary,
            out,
        )?;
    }
    Ok(summary)
}

/// Plans a replayed event's intents and prints what would be sent, `at`
/// seconds into the recording.
fn show(
    intents: Vec<Intent>,
    state: &RoomState,
    capabilities: &crate::platform::Capabilities,
    at: f64,
    summary: &mut ReplaySummary,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let planned = plan(intents, state, &[], capabilities);
    for intent in planned.send.iter().chain(&planned.shadow) {
        summary.commands += 1;
        let command = intent.command.to_string();
        writeln!(
            out,
            "{at:>9.3}s  {command:<36} ← {} ({})",
            intent.rule, intent.trigger
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Participant, Role};

    #[test]
    fn lines_round_trip_events() {
        let event = Event::Participant(Participant {
            uuid: "u1".into(),
            display_name: "Bob".into(),
            role: Role::Guest,
            ..Participant::default()
        });
        let line = Line::event(12.5, &event);
        let text = serde_json::to_string(&line).unwrap();
        assert!(
            text.starts_with(r#"{"t":12.5,"event":"participant","data":{"#),
            "{text}"
        );
        let back: Line = serde_json::from_str(&text).unwrap();
        assert_eq!(back.to_event().unwrap(), event);
        let stop: Line =
            serde_json::from_str(r#"{"t":1,"event":"presentation_stop","data":null}"#).unwrap();
        assert_eq!(stop.to_event().unwrap(), Event::PresentationStop);
        let unknown: Line = serde_json::from_str(r#"{"t":1,"event":"fecc"}"#).unwrap();
        assert!(unknown.to_event().is_err());
    }
}
