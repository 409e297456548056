//! The audit log: one JSON line for every command usher sent or would have
//! sent, with the rule and event behind it and what came of it.
//!
//! Operators ask "why was Alice muted at 10:04?"; `usher why Alice` answers
//! from this file. Records are appended by one writer task, so rooms never
//! wait on the disk. Secrets never reach it: commands are recorded as people
//! read them (`transfer Bob to room@example.com`), never as request bodies.

use std::io::{BufRead, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::model::Target;
use crate::rules::{Intent, RuleFailure};

/// What became of a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The platform carried it out.
    Ok,
    /// The platform refused it or could not be reached; see `error`.
    Failed,
    /// Not sent: usher runs in dry-run mode.
    DryRun,
    /// Not sent: the rule runs in shadow mode.
    Shadow,
    /// Not sent: another rule, earlier in the room's order, asked for the
    /// opposite in the same event.
    Conflict,
    /// Not sent: the flip-flop guard held it back.
    Blocked,
    /// Not sent: usher was shutting down.
    Cancelled,
    /// Not sent: the room's platform cannot do this.
    Unsupported,
    /// Not a command: the rule's call failed, so what it asked is dropped;
    /// `error` says where and why.
    RuleFailed,
    /// Not sent: the room's queue was full (`dispatch.queue`).
    Overflow,
}

impl Outcome {
    /// The label used in logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Failed => "failed",
            Outcome::DryRun => "dry_run",
            Outcome::Shadow => "shadow",
            Outcome::Conflict => "conflict",
            Outcome::Blocked => "blocked",
            Outcome::Cancelled => "cancelled",
            Outcome::Unsupported => "unsupported",
            Outcome::RuleFailed => "rule_failed",
            Outcome::Overflow => "overflow",
        }
    }
}

/// A participant named in a record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Who {
    /// Their uuid.
    pub uuid: String,
    /// Their display name at the time.
    pub name: String,
}

impl From<&Target> for Who {
    fn from(target: &Target) -> Self {
        Who {
            uuid: target.uuid.clone(),
            name: target.name.clone(),
        }
    }
}

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// When the outcome was known (RFC 3339, UTC).
    pub time: String,
    /// The room.
    pub room: String,
    /// The rule that asked.
    pub rule: String,
    /// The platform event behind it (`participant_create`, `timer`, …).
    pub event: String,
    /// The handler or timer function that ran.
    pub handler: String,
    /// The participant the event was about, if any.
    pub participant: Option<Who>,
    /// The command's verb (`mute`, `lock`, …).
    pub command: String,
    /// The participant the command was for, if any.
    pub target: Option<Who>,
    /// The command as people read it (`mute Alice`).
    pub text: String,
    /// What became of it.
    pub outcome: Outcome,
    /// Why it failed or was not sent.
    pub error: Option<String>,
    /// How many times it was tried.
    pub attempts: u32,
    /// From the decision to the platform's answer, in milliseconds.
    pub latency_ms: Option<f64>,
    /// usher ran in dry-run mode (or the rule in shadow mode).
    pub dry_run: bool,
}

impl AuditRecord {
    /// A record for an intent, to be completed with its outcome.
    pub fn for_intent(room: &str, intent: &Intent, outcome: Outcome, time: f64) -> Self {
        AuditRecord {
            time: crate::clock::format_timestamp(time),
            room: room.to_owned(),
            rule: intent.rule.to_string(),
            event: intent.trigger.event.clone(),
            handler: intent.trigger.handler.clone(),
            participant: intent.trigger.participant.as_ref().map(Who::from),
            command: intent.command.verb().to_owned(),
            target: intent.command.target().map(Who::from),
            text: intent.command.to_string(),
            outcome,
            error: None,
            attempts: 0,
            latency_ms: None,
            dry_run: matches!(outcome, Outcome::DryRun | Outcome::Shadow),
        }
    }

    /// A record for a rule call that failed: no command, the error in full.
    pub fn for_failure(room: &str, failure: &RuleFailure, time: f64) -> Self {
        AuditRecord {
            time: crate::clock::format_timestamp(time),
            room: room.to_owned(),
            rule: failure.rule.clone(),
            event: failure.trigger.event.clone(),
            handler: failure.trigger.handler.clone(),
            participant: failure.trigger.participant.as_ref().map(Who::from),
            command: String::new(),
            target: None,
            text: "the rule failed".to_owned(),
            outcome: Outcome::RuleFailed,
            error: Some(failure.error.to_string()),
            attempts: 0,
            latency_ms: None,
            dry_run: false,
        }
    }

    /// True when the record concerns a participant called `name` (as the
    /// command's target or the event's subject), ignoring case.
    pub fn concerns(&self, name: &str) -> bool {
        [&self.target, &self.participant]
            .into_iter()
            .flatten()
            .any(|who| who.name.eq_ignore_ascii_case(name) || who.uuid == name)
    }
}

/// Where records go: a cheap handle for every room.
#[derive(Debug, Clone)]
pub struct AuditSink {
    sender: Option<mpsc::UnboundedSender<AuditRecord>>,
}

impl AuditSink {
    /// A sink that drops every record (no audit log configured).
    pub fn disabled() -> Self {
        AuditSink { sender: None }
    }

    /// Opens (creating or appending to) `path` and starts the writer task.
    /// The task ends, after writing everything sent, when every sink is
    /// dropped; await the handle to be sure it is all on disk. A log whose
    /// last line was torn (the process died while writing it) is continued
    /// on a fresh line, so the torn line costs no other record.
    pub fn open(path: &Path) -> std::io::Result<(AuditSink, tokio::task::JoinHandle<()>)> {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(path)?;
        if ends_in_a_torn_line(&mut file)? {
            tracing::warn!(path = %path.display(), "the audit log ends in a torn line (usher was stopped while writing it); continuing on a fresh line");
            file.write_all(b"\n")?;
        }
        let (sender, mut receiver) = mpsc::unbounded_channel::<AuditRecord>();
        let path: PathBuf = path.to_owned();
        let writer = tokio::task::spawn_blocking(move || {
            let mut out = std::io::BufWriter::new(file);
            while let Some(record) = receiver.blocking_recv() {
                let mut batch = vec![record];
                while let Ok(more) = receiver.try_recv() {
                    batch.push(more);
                }
                let written = batch.iter().try_for_each(|record| {
                    serde_json::to_writer(&mut out, record)?;
                    out.write_all(b"\n")
                });
                if let Err(err) = written.and_then(|()| out.flush()) {
                    tracing::error!(path = %path.display(), error = %err, "cannot write the audit log");
                }
            }
        });
        Ok((
            AuditSink {
                sender: Some(sender),
            },
            writer,
        ))
    }

    /// Records one command.
    pub fn record(&self, record: AuditRecord) {
        if let Some(sender) = &self.sender {
            let _ = sender.send(record);
        }
    }
}

/// True when the file is not empty and its last byte is not a line end.
fn ends_in_a_torn_line(file: &mut std::fs::File) -> std::io::Result<bool> {
    if file.metadata()?.len() == 0 {
        return Ok(false);
    }
    file.seek(SeekFrom::End(-1))?;
    let mut last = [0u8];
    file.read_exact(&mut last)?;
    Ok(last[0] != b'\n')
}

/// Reads an audit log, skipping (and counting) lines that cannot be read:
/// not JSON, not a record, or not even UTF-8 (a line torn inside a
/// character).
pub fn read_log(path: &Path) -> std::io::Result<(Vec<AuditRecord>, usize)> {
    let file = std::io::BufReader::new(std::fs::File::open(path)?);
    let mut records = Vec::new();
    let mut unreadable = 0;
    for line in file.split(b'\n') {
        let line = line?;
        if line.trim_ascii().is_empty() {
            continue;
        }
        match serde_json::from_slice(&line) {
            Ok(record) => records.push(record),
            Err(_) => unreadable += 1,
        }
    }
    Ok((records, unreadable))
}

/// One line of `usher why`: when, where, what, why and what came of it.
pub fn explain(record: &AuditRecord) -> String {
    let subject = record
        .participant
        .as_ref()
        .map(|who| format!("({})", who.name))
        .unwrap_or_default();
    let outcome = match (&record.outcome, &record.error) {
        (Outcome::Ok, _) => match record.latency_ms {
            Some(ms) => format!("ok in {ms:.0} ms"),
            None => "ok".to_owned(),
        },
        (outcome, Some(error)) => format!("{}: {error}", outcome.as_str()),
        (outcome, None) => outcome.as_str().to_owned(),
    };
    format!(
        "{}  {}  {}  ← rule {} ({}{} on {})  {}",
        record.time,
        record.room,
        record.text,
        record.rule,
        record.handler,
        subject,
        record.event,
        outcome
    )
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::model::{Command, ParticipantCommand, Role, Secret, Transfer};
    use crate::rules::Trigger;

    fn intent(command: Command) -> Intent {
        Intent {
            rule: "auto_mute_guests".into(),
            command,
            trigger: Arc::new(Trigger {
                handler: "on_join".into(),
                event: "participant_create".into(),
                participant: Some(Target {
                    uuid: "u-1".into(),
                    name: "Alice".into(),
                }),
            }),
            shadow: false,
        }
    }

    #[tokio::test]
    async fn records_round_trip_through_the_file() {
        let path = std::env::temp_dir().join(format!("usher-audit-{}.jsonl", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let (sink, writer) = AuditSink::open(&path).unwrap();
        let mute = intent(Command::participant(
            "u-1",
            "Alice",
            ParticipantCommand::Mute,
        ));
        let mut record = AuditRecord::for_intent("hall", &mute, Outcome::Ok, 1_795_327_200.0);
        record.latency_ms = Some(12.0);
        record.attempts = 1;
        sink.record(record.clone());
        drop(sink);
        writer.await.unwrap();
        std::fs::write(
            &path,
            format!("{}not json\n", std::fs::read_to_string(&path).unwrap()),
        )
        .unwrap();
        let (records, unreadable) = read_log(&path).unwrap();
        assert_eq!(records, [record]);
        assert_eq!(unreadable, 1);
        assert!(records[0].concerns("alice"));
        assert_eq!(
            explain(&records[0]),
            "2026-11-22T06:00:00.000Z  hall  mute Alice  ← rule auto_mute_guests (on_join(Alice) on participant_create)  ok in 12 ms"
        );
        std::fs::remove_file(&path).unwrap();
    }

    fn temp_log(test: &str) -> std::path::PathBuf {
        let path =
            std::env::temp_dir().join(format!("usher-audit-{test}-{}.jsonl", std::process::id()));
        let _ = std::fs::remove_file(&path);
        path
    }

    fn a_record() -> AuditRecord {
        let mute = intent(Command::participant(
            "u-1",
            "Alice",
            ParticipantCommand::Mute,
        ));
        AuditRecord::for_intent("hall", &mute, Outcome::Ok, 1_795_327_200.0)
    }

    #[tokio::test]
    async fn a_restart_after_a_torn_line_starts_on_a_fresh_line() {
        let path = temp_log("torn");
        std::fs::write(
            &path,
            "{\"time\":\"2026-11-22T06:00:00.000Z\",\"room\":\"ha",
        )
        .unwrap();
        let (sink, writer) = AuditSink::open(&path).unwrap();
        sink.record(a_record());
        drop(sink);
        writer.await.unwrap();
        let (records, unreadable) = read_log(&path).unwrap();
        assert_eq!(
            records,
            [a_record()],
            "the first record after the restart is whole"
        );
        assert_eq!(unreadable, 1, "only the torn line is lost");
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn a_line_torn_inside_a_character_is_skipped_not_fatal() {
        let path = temp_log("utf8");
        let whole = serde_json::to_string(&a_record()).unwrap();
        let mut bytes = format!("{whole}\n").into_bytes();
        bytes.extend_from_slice(b"{\"room\":\"Zo\xC3\n");
        bytes.extend_from_slice(format!("{whole}\n").as_bytes());
        bytes.extend_from_slice(b"\xFF\xFE");
        std::fs::write(&path, bytes).unwrap();
        let (records, unreadable) = read_log(&path).unwrap();
        assert_eq!(records, [a_record(), a_record()]);
        assert_eq!(unreadable, 2);
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn secrets_never_reach_a_record() {
        let transfer = intent(Command::participant(
            "u-1",
            "Alice",
            ParticipantCommand::Transfer(Transfer {
                conference_alias: "other@example.com".into(),
                role: Role::Guest,
                pin: Some(Secret::new("97531")),
            }),
        ));
        let record = AuditRecord::for_intent("hall", &transfer, Outcome::DryRun, 0.0);
        let line = serde_json::to_string(&record).unwrap();
        assert!(!line.contains("97531"), "{line}");
        assert!(record.dry_run);
    }
}
