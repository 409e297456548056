//! Recordings: a live room's events in a file, and rules replayed over them.
//!
//! `usher record` writes one JSON line per event as it arrives:
//!
//! ```json
//! {"t":1795327200.125,"event":"participant_create","data":{"uuid":"…","display_name":"Bob",…}}
//! ```
//!
//! plus a `{"t":…,"session":"<uuid>"}` line whenever usher's own participant
//! changes, so a replay can leave it out of the roster as the daemon does.
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
use crate::platform::vmr::{
    Credentials, FeedItem, FeedOptions, HttpClients, RoomClient, Session, run_feed,
};
use crate::rules::{Intent, RoomRules, RuleEngine, RuleLibrary};
use crate::runtime::plan::plan;
use crate::runtime::room::node_for;

/// One line of a recording.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Line {
    /// When it arrived (UNIX seconds).
    pub t: f64,
    /// The event's name, for event lines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    /// The event's data, for event lines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
    /// usher's own participant uuid, for session lines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
}

impl Line {
    /// An event line.
    pub fn event(t: f64, event: &Event) -> Line {
        let data = serde_json::from_str(&event.data()).unwrap_or(Value::Null);
        Line {
            t,
            event: Some(event.name().to_owned()),
            data: Some(data),
            session: None,
        }
    }

    /// The event this line holds, if it holds one that can be read.
    pub fn to_event(&self) -> Option<Result<Event, crate::model::EventError>> {
        let name = self.event.as_deref()?;
        let data = self
            .data
            .as_ref()
            .map_or_else(|| "null".to_owned(), Value::to_string);
        Some(Event::parse(name, &data))
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
    alias: &str,
    out: &Path,
    stop: CancellationToken,
) -> anyhow::Result<u64> {
    let room = config
        .rooms
        .iter()
        .find(|room| room.alias == alias)
        .with_context(|| {
            let known: Vec<&str> = config
                .rooms
                .iter()
                .map(|room| room.alias.as_str())
                .collect();
            format!(
                "no room `{alias}` in the config; its rooms are: {}",
                known.join(", ")
            )
        })?;
    let pin = room.resolve_pin().map_err(|err| anyhow::anyhow!(err))?;
    let http = HttpClients::new(config.platform.http_options(1))?;
    let node = node_for(&config.platform, &http, alias, pin.as_ref()).await?;
    let credentials = Credentials {
        pin,
        display_name: config.platform.display_name.clone(),
        hidden: config.platform.hide,
    };
    let session = Session::open(RoomClient::new(&http, &node, alias), credentials)
        .await
        .context("cannot open a session")?;
    let mut file = std::io::BufWriter::new(
        std::fs::File::create(out).with_context(|| format!("cannot create {}", out.display()))?,
    );
    let background = stop.child_token();
    let keeper = tokio::spawn(session.clone().keep_fresh(background.clone()));
    let (sink, mut feed) = mpsc::channel(4096);
    let feeder = tokio::spawn(run_feed(
        session.clone(),
        sink,
        background.clone(),
        FeedOptions::default(),
    ));
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
            FeedItem::Connected { own_uuid } => Line {
                t: unix_now(),
                event: None,
                data: None,
                session: Some(own_uuid),
            },
            FeedItem::Event(event) => {
                events += 1;
                Line::event(unix_now(), &event)
            }
            FeedItem::Disconnected { reason, .. } => {
                tracing::warn!(room = %alias, "event stream down: {reason}");
                continue;
            }
        };
        serde_json::to_writer(&mut file, &line)?;
        file.write_all(b"\n")?;
        file.flush()?;
    }
    background.cancel();
    let _ = keeper.await;
    let _ = feeder.await;
    session.close().await;
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
    let room = match alias {
        Some(alias) => config
            .rooms
            .iter()
            .find(|room| room.alias == alias)
            .with_context(|| format!("no room `{alias}` in the config"))?,
        None if config.rooms.len() == 1 => &config.rooms[0],
        None => anyhow::bail!("the config has several rooms; say which with --room"),
    };
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
            show(intents, &state, due - start, &mut summary, out)?;
        }
        if let Some(own) = &line.session {
            Arc::make_mut(&mut state).add_own_uuid(own);
        }
        let Some(event) = line.to_event() else {
            continue;
        };
        let event = match event {
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
        show(intents, &state, line.t - start, &mut summary, out)?;
    }
    Ok(summary)
}

/// Plans a replayed event's intents and prints what would be sent, `at`
/// seconds into the recording.
fn show(
    intents: Vec<Intent>,
    state: &RoomState,
    at: f64,
    summary: &mut ReplaySummary,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let planned = plan(intents, state, &[]);
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
        let event = Event::ParticipantCreate(Participant {
            uuid: "u1".into(),
            display_name: "Bob".into(),
            role: Role::Guest,
            ..Participant::default()
        });
        let line = Line::event(12.5, &event);
        let text = serde_json::to_string(&line).unwrap();
        assert!(
            text.starts_with(r#"{"t":12.5,"event":"participant_create","data":{"#),
            "{text}"
        );
        let back: Line = serde_json::from_str(&text).unwrap();
        assert_eq!(back.to_event().unwrap().unwrap(), event);
        let bye: Line =
            serde_json::from_str(r#"{"t":1,"event":"participant_sync_begin","data":null}"#)
                .unwrap();
        assert_eq!(
            bye.to_event().unwrap().unwrap(),
            Event::ParticipantSyncBegin
        );
        let session: Line = serde_json::from_str(r#"{"t":1,"session":"me"}"#).unwrap();
        assert!(session.to_event().is_none());
    }
}
