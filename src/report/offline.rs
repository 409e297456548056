//! `usher report`: the end-of-lecture report built offline from a recording
//! of the room (`usher record`) and the audit log, through the same
//! [`Session`] the daemon uses. The recording holds the room's events in
//! usher's neutral form (whatever the platform); the audit log holds the
//! commands and the rules' failures.

use std::path::{Path, PathBuf};

use super::session::{Report, Session};
use crate::clock::Zone;
use crate::clock::parse_timestamp;
use crate::model::RoomState;
use crate::recording::{self, Line};
use crate::runtime::audit::{AuditRecord, Outcome, read_log};

/// Why a report could not be built.
#[derive(Debug, thiserror::Error)]
pub enum OfflineError {
    /// The recording could not be read.
    #[error("{0:#}")]
    Recording(anyhow::Error),
    /// The recording holds no event.
    #[error("{0} holds no event to report on")]
    Empty(PathBuf),
    /// The audit log could not be read.
    #[error("cannot read the audit log {path}: {error}")]
    Audit {
        /// The file.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// The audit log names several rooms while the recording was made.
    #[error(
        "the audit log names several rooms while the recording was made ({0}); say which with --room"
    )]
    WhichRoom(String),
}

/// What to build a report from.
#[derive(Debug, Clone)]
pub struct Sources<'a> {
    /// The room's recording.
    pub recording: &'a Path,
    /// The audit log, if there is one.
    pub audit: Option<&'a Path>,
    /// The room's alias; by default the one room the audit log names while
    /// the recording was made, else the recording's file name.
    pub room: Option<&'a str>,
}

/// Builds the report for `sources`, with times in `zone`.
pub fn build(sources: &Sources<'_>, zone: Zone) -> Result<Report, OfflineError> {
    let lines = recording::read(sources.recording).map_err(OfflineError::Recording)?;
    let records = match sources.audit {
        Some(path) => {
            let (records, unreadable) = read_log(path).map_err(|error| OfflineError::Audit {
                path: path.to_owned(),
                error,
            })?;
            if unreadable > 0 {
                tracing::warn!(
                    "{}: skipped {unreadable} lines that are not audit records",
                    path.display()
                );
            }
            records
        }
        None => Vec::new(),
    };
    from_lines(&lines, &records, sources, zone)
}

/// Builds the report from a recording's lines and audit records.
pub fn from_lines(
    lines: &[Line],
    records: &[AuditRecord],
    sources: &Sources<'_>,
    zone: Zone,
) -> Result<Report, OfflineError> {
    let (Some(first), Some(last)) = (lines.first(), lines.last()) else {
        return Err(OfflineError::Empty(sources.recording.to_owned()));
    };
    let (start, end) = (first.t, last.t);
    let during = |record: &AuditRecord| {
        parse_timestamp(&record.time).is_ok_and(|at| at >= start - 1.0 && at <= end + 1.0)
    };
    let room = match sources.room {
        Some(room) => room.to_owned(),
        None => {
            let mut rooms: Vec<&str> = records
                .iter()
                .filter(|r| during(r))
                .map(|r| r.room.as_str())
                .collect();
            rooms.sort_unstable();
            rooms.dedup();
            match rooms.as_slice() {
                [] => sources
                    .recording
                    .file_stem()
                    .map_or_else(|| "room".to_owned(), |s| s.to_string_lossy().into_owned()),
                [one] => (*one).to_owned(),
                several => return Err(OfflineError::WhichRoom(several.join(", "))),
            }
        }
    };
    let mut state = RoomState::new();
    let mut session = Session::begin(&room, &state, start);
    for (number, line) in lines.iter().enumerate() {
        match line.to_event() {
            Ok(event) => {
                let changes = state.apply_at(event, line.t);
                if !changes.is_empty() {
                    session.changes(&state, &changes, line.t);
                }
            }
            Err(err) => tracing::warn!(
                "{}: line {}: skipping an event that cannot be read: {err}",
                sources.recording.display(),
                number + 1
            ),
        }
    }
    for record in records.iter().filter(|r| r.room == room && during(r)) {
        if record.outcome == Outcome::RuleFailed {
            let at = parse_timestamp(&record.time).unwrap_or(end);
            let error = record.error.as_deref().unwrap_or_default();
            session.rule_failed(&record.rule, &record.handler, error, at);
        } else {
            session.command(record);
        }
    }
    Ok(session.finish(end, zone))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Event, Participant, Role, ServiceType};

    const T0: f64 = 1_795_327_200.0;

    fn line(t: f64, event: &Event) -> Line {
        Line::event(T0 + t, event)
    }

    #[test]
    fn a_recording_becomes_a_report() {
        let bob = Participant {
            uuid: "b".into(),
            display_name: "Bob".into(),
            role: Role::Guest,
            service_type: ServiceType::Conference,
            ..Participant::default()
        };
        let lines = vec![
            line(0.0, &Event::Roster(Vec::new())),
            line(90.0, &Event::Participant(bob)),
            line(400.0, &Event::ParticipantLeft { uuid: "b".into() }),
        ];
        let sources = Sources {
            recording: Path::new("hall.jsonl"),
            audit: None,
            room: None,
        };
        let report = from_lines(&lines, &[], &sources, Zone::utc()).unwrap();
        assert_eq!(report.room, "hall");
        assert_eq!(
            report.attendance.minutes.len(),
            7,
            "400 s is 7 minutes begun"
        );
        let people: Vec<usize> = report.attendance.minutes.iter().map(|m| m.people).collect();
        assert_eq!(people, [0, 1, 1, 1, 1, 1, 1]);
        assert_eq!(report.participants[0].in_room_seconds, 310.0);
        let empty = from_lines(&[], &[], &sources, Zone::utc()).unwrap_err();
        assert!(empty.to_string().contains("no event"), "{empty}");
    }

    #[test]
    fn rule_failures_in_the_audit_log_are_listed() {
        let lines = vec![
            line(0.0, &Event::Roster(Vec::new())),
            line(300.0, &Event::PresentationStop),
        ];
        let failed = AuditRecord {
            time: crate::clock::format_timestamp(T0 + 100.0),
            room: "hall".into(),
            rule: "greeter".into(),
            event: "participant".into(),
            handler: "on_join".into(),
            participant: None,
            command: String::new(),
            target: None,
            text: "the rule failed".into(),
            outcome: Outcome::RuleFailed,
            error: Some("rules/greeter.rhai:3:9: unknown variable `nmae`".into()),
            attempts: 0,
            latency_ms: None,
            dry_run: false,
        };
        let sources = Sources {
            recording: Path::new("hall.jsonl"),
            audit: None,
            room: None,
        };
        let report = from_lines(&lines, &[failed], &sources, Zone::utc()).unwrap();
        assert!(report.commands.is_empty(), "a failure is not a command");
        assert_eq!(report.rule_errors.len(), 1);
        let error = &report.rule_errors[0];
        assert_eq!(
            (error.rule.as_str(), error.handler.as_str()),
            ("greeter", "on_join")
        );
        assert!(error.error.contains("greeter.rhai:3:9"), "{}", error.error);
        assert_eq!(error.time, "2026-11-22T06:01:40+00:00");
    }
}
