//! Running rule tests: the real engine against a simulated room, on a fake
//! clock.
//!
//! Each test starts fresh. The simulator's conference state machine plays the
//! platform: steps become the events a real platform would send, usher's
//! room state and rules react, the planner decides what would be sent (no-ops
//! and duplicates are dropped, as in the daemon), and each command is applied
//! back to the conference so its events reach the rules in turn. `wait`
//! moves the clock, firing timers at their due times.

use std::collections::{BTreeMap, VecDeque};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::spec::{Action, Scheduled, TestCase, TestFile};
use crate::clock::{Zone, parse_timestamp};
use crate::model::{Event, FlagsUpdate, RoomState};
use crate::platform::{Capabilities, PlatformKind};
use crate::rules::{Intent, RoomRules, RuleEngine, RuleSet};
use crate::runtime::plan::plan;
use crate::sim::conference::{Actor, Conference};
use crate::sim::step::Step;
use crate::timetable::{self, PlatformTimes, RoomSchedule};
use crate::yaml;

/// How many events one step may cause before it is called a loop.
const MAX_EVENTS_PER_STEP: usize = 10_000;

/// Totals over every test run.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Tests that passed.
    pub passed: usize,
    /// Tests (or files that could not be run) that failed.
    pub failed: usize,
}

/// Runs every test file under `paths` (files, or directories searched for
/// `*.yaml`), printing a report to `out`. Rules come from `rules_dir`, or
/// else from the parent of a `tests` directory holding the file, or else from
/// the file's own directory.
pub fn run_paths(
    paths: &[PathBuf],
    rules_dir: Option<&Path>,
    out: &mut dyn Write,
) -> io::Result<Summary> {
    let engine = Arc::new(RuleEngine::default());
    let mut sets: BTreeMap<PathBuf, Result<Arc<RuleSet>, String>> = BTreeMap::new();
    let mut summary = Summary::default();
    for file in test_files(paths, out, &mut summary)? {
        let dir = rules_dir
            .map(Path::to_owned)
            .unwrap_or_else(|| rules_dir_for(&file));
        let set = sets.entry(dir.clone()).or_insert_with(|| {
            RuleSet::load_dir(engine.clone(), &dir)
                .map(Arc::new)
                .map_err(|errors| {
                    errors
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("\n")
                })
        });
        writeln!(out, "{}", file.display())?;
        let set = match set {
            Ok(set) => set.clone(),
            Err(errors) => {
                writeln!(
                    out,
                    "  FAIL  the rules in {} do not compile:",
                    dir.display()
                )?;
                for line in errors.lines() {
                    writeln!(out, "        {line}")?;
                }
                summary.failed += 1;
                continue;
            }
        };
        let spec: TestFile = match yaml::from_file(&file) {
            Ok(spec) => spec,
            Err(err) => {
                writeln!(out, "  FAIL  {err}")?;
                summary.failed += 1;
                continue;
            }
        };
        for case in &spec.tests {
            let report = run_case(&spec, case, &set, &file);
            if report.is_empty() {
                summary.passed += 1;
                writeln!(out, "  ok    {}", case.name)?;
            } else {
                summary.failed += 1;
                writeln!(out, "  FAIL  {}", case.name)?;
                for line in report {
                    writeln!(out, "        {line}")?;
                }
            }
        }
    }
    writeln!(
        out,
        "\n{} passed, {} failed",
        summary.passed, summary.failed
    )?;
    Ok(summary)
}

fn test_files(
    paths: &[PathBuf],
    out: &mut dyn Write,
    summary: &mut Summary,
) -> io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            collect_yaml(path, &mut files)?;
        } else if path.is_file() {
            files.push(path.clone());
        } else {
            writeln!(out, "{}: no such file or directory", path.display())?;
            summary.failed += 1;
        }
    }
    Ok(files)
}

fn collect_yaml(dir: &Path, files: &mut Vec<PathBuf>) -> io::Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            collect_yaml(&path, files)?;
        } else if path
            .extension()
            .is_some_and(|ext| ext == "yaml" || ext == "yml")
        {
            files.push(path);
        }
    }
    Ok(())
}

fn rules_dir_for(file: &Path) -> PathBuf {
    let dir = file.parent().unwrap_or(Path::new("."));
    match (dir.file_name(), dir.parent()) {
        (Some(name), Some(parent)) if name == "tests" => parent.to_owned(),
        _ => dir.to_owned(),
    }
}

/// Runs one test; returns the lines describing what went wrong (none: passed).
fn run_case(spec: &TestFile, case: &TestCase, set: &Arc<RuleSet>, file: &Path) -> Vec<String> {
    let mut report = Vec::new();
    let mut harness = match Harness::new(spec, case, set, file) {
        Ok(harness) => harness,
        Err(err) => return vec![err],
    };
    let connected = harness.connect();
    check(
        "when usher connects",
        case.connect.as_deref(),
        &connected,
        &mut report,
    );
    for (number, step) in case.steps.iter().enumerate() {
        let outcome = harness.run(&step.action);
        let title = format!("step {}: {}", number + 1, step.action.describe());
        check(&title, step.expect.as_deref(), &outcome, &mut report);
        if !report.is_empty() {
            break;
        }
    }
    report
}

/// What one step led to.
#[derive(Default)]
struct Outcome {
    /// Commands that would be sent, as people read them.
    sent: Vec<String>,
    /// Rule errors and failed commands.
    problems: Vec<String>,
    /// What rules wrote with `log` or `print`, as `rule: line`.
    logs: Vec<String>,
}

fn check(title: &str, expected: Option<&[String]>, outcome: &Outcome, report: &mut Vec<String>) {
    let mismatch = expected.and_then(|expected| compare(expected, &outcome.sent));
    if mismatch.is_none() && outcome.problems.is_empty() {
        return;
    }
    report.push(title.to_owned());
    if let Some((missing, unexpected)) = mismatch {
        let expected = expected.unwrap_or_default();
        report.push(format!("  expected: [{}]", expected.join(", ")));
        report.push(format!("  sent:     [{}]", outcome.sent.join(", ")));
        for line in missing {
            report.push(format!("  missing:    {line}"));
        }
        for line in unexpected {
            report.push(format!("  unexpected: {line}"));
        }
    }
    for problem in &outcome.problems {
        report.push(format!("  error: {problem}"));
    }
    for line in &outcome.logs {
        report.push(format!("  log:   {line}"));
    }
}

/// Matches expectations to what was sent, in any order. An expectation
/// matches a command that reads the same, or that starts with it followed
/// by a space: `message` matches any message, `transfer Bob` any transfer
/// of Bob. Returns what is missing and what was not expected.
fn compare(expected: &[String], sent: &[String]) -> Option<(Vec<String>, Vec<String>)> {
    let mut unmatched: Vec<&String> = sent.iter().collect();
    let mut missing = Vec::new();
    let mut pending = Vec::new();
    for wanted in expected {
        match unmatched.iter().position(|got| got.trim() == wanted.trim()) {
            Some(index) => {
                unmatched.remove(index);
            }
            None => pending.push(wanted),
        }
    }
    for wanted in pending {
        let prefix = format!("{} ", wanted.trim());
        match unmatched.iter().position(|got| got.starts_with(&prefix)) {
            Some(index) => {
                unmatched.remove(index);
            }
            None => missing.push(wanted.clone()),
        }
    }
    if missing.is_empty() && unmatched.is_empty() {
        None
    } else {
        Some((missing, unmatched.into_iter().cloned().collect()))
    }
}

/// How far ahead of the fake clock's start a test's timetable is read.
const TIMETABLE_DAYS: f64 = 400.0;

/// The room's zone (UTC unless given) and its sessions from `timetable`, a
/// path relative to the test file.
fn room_schedule(
    file: &Path,
    zone: Option<&Zone>,
    timetable: Option<&PathBuf>,
    scheduled: Option<&Scheduled>,
    start: f64,
) -> Result<RoomSchedule, String> {
    let zone = zone.cloned().unwrap_or_else(Zone::utc);
    let schedule = RoomSchedule::new(zone.clone());
    if let Some(scheduled) = scheduled {
        let time = |name: &str, text: &str| {
            parse_timestamp(text).map_err(|err| format!("scheduled.{name}: {err}"))
        };
        let times = PlatformTimes {
            start: time("start", &scheduled.start)?,
            end: scheduled
                .end
                .as_deref()
                .map(|end| time("end", end))
                .transpose()?,
        };
        schedule.schedule.set_platform(times, "booked meeting");
    }
    if let Some(timetable) = timetable {
        let path = file.parent().unwrap_or(Path::new("")).join(timetable);
        let source = path.display().to_string();
        let text = std::fs::read_to_string(&path)
            .map_err(|err| format!("timetable {source}: cannot read it: {err}"))?;
        let from = start - 86_400.0;
        let found = timetable::parse(&text)
            .and_then(|calendar| {
                timetable::sessions(&calendar, &zone, from, start + TIMETABLE_DAYS * 86_400.0)
            })
            .map_err(|err| format!("timetable {}", err.describe(&source)))?;
        schedule.schedule.set_source(timetable::TIMETABLE, found);
    }
    Ok(schedule)
}

/// A simulated room with usher's state and rules attached.
struct Harness {
    conference: Conference,
    room: Arc<RoomState>,
    rules: RoomRules,
    actor: Actor,
    clock: f64,
    /// What the simulated room's platform can do.
    capabilities: Capabilities,
}

impl Harness {
    fn new(
        spec: &TestFile,
        case: &TestCase,
        set: &Arc<RuleSet>,
        file: &Path,
    ) -> Result<Harness, String> {
        let start = case.start.as_ref().unwrap_or(&spec.start);
        let clock = parse_timestamp(start).map_err(|err| format!("start: {err}"))?;
        let bindings = case.rules.as_ref().unwrap_or(&spec.rules);
        let mut rules =
            RoomRules::new(&spec.room, set.clone(), bindings).map_err(|err| err.to_string())?;
        let zone = case.zone.as_ref().or(spec.zone.as_ref());
        let timetable = case.timetable.as_ref().or(spec.timetable.as_ref());
        let scheduled = case.scheduled.as_ref().or(spec.scheduled.as_ref());
        rules.set_schedule(
            room_schedule(file, zone, timetable, scheduled, clock)?,
            clock,
        );
        rules.capture_logs();
        let mut conference = Conference::new(&spec.room);
        let present = case.participants.as_ref().unwrap_or(&spec.participants);
        let waiting = case.waiting.as_ref().unwrap_or(&spec.waiting);
        let arrivals = present
            .iter()
            .map(|joiner| Step::Join(joiner.clone()))
            .chain(
                waiting
                    .iter()
                    .map(|joiner| Step::WaitingRoom(joiner.clone())),
            );
        for arrival in arrivals {
            conference
                .apply_step(&arrival, clock)
                .map_err(|err| format!("participants: {err}"))?;
        }
        let (uuid, _) = conference.add_session_participant("usher", true, clock);
        Ok(Harness {
            conference,
            room: Arc::new(RoomState::new()),
            rules,
            actor: Actor {
                uuid,
                name: "usher".to_owned(),
            },
            clock,
            capabilities: spec.platform.unwrap_or(PlatformKind::Vmr).capabilities(),
        })
    }

    fn connect(&mut self) -> Outcome {
        let mut outcome = Outcome::default();
        let events = vec![self.conference.roster()];
        self.deliver(events, &mut outcome);
        outcome
    }

    fn run(&mut self, action: &Action) -> Outcome {
        let mut outcome = Outcome::default();
        match action {
            Action::Reconnect => {
                let events = vec![self.conference.roster()];
                self.deliver(events, &mut outcome);
            }
            Action::WaitUntil(until, _) if *until < self.clock => outcome
                .problems
                .push("the clock cannot go back: wait_until a later time".to_owned()),
            Action::Step(Step::Wait(_)) | Action::WaitUntil(..) => {
                let until = match action {
                    Action::WaitUntil(until, _) => *until,
                    Action::Step(Step::Wait(span)) => self.clock + span.as_secs_f64(),
                    _ => self.clock,
                };
                while let Some(due) = self.rules.next_timer().filter(|due| *due <= until) {
                    self.clock = due.max(self.clock);
                    let intents = self.rules.fire_timers(&self.room, self.clock);
                    let events = self.send(intents, &mut outcome);
                    self.deliver(events, &mut outcome);
                }
                self.clock = until;
            }
            Action::Step(step) => match self.conference.apply_step(step, self.clock) {
                Ok(events) => self.deliver(events, &mut outcome),
                Err(err) => outcome
                    .problems
                    .push(format!("the step cannot happen: {err}")),
            },
        }
        outcome
    }

    /// Feeds events to the room and its rules, sending what they ask for and
    /// feeding the events that causes, until the room is quiet.
    fn deliver(&mut self, events: Vec<Event>, outcome: &mut Outcome) {
        let mut queue: VecDeque<Event> = events.into();
        let mut delivered = 0;
        while let Some(event) = queue.pop_front() {
            delivered += 1;
            if delivered > MAX_EVENTS_PER_STEP {
                outcome.problems.push(format!(
                    "more than {MAX_EVENTS_PER_STEP} events from one step: do rules keep undoing each other?"
                ));
                return;
            }
            let name = event.kind();
            let changes = Arc::make_mut(&mut self.room).apply_at(event, self.clock);
            if changes.is_empty() {
                continue;
            }
            let intents = self
                .rules
                .on_changes(&self.room, &changes, name, self.clock);
            queue.extend(self.send(intents, outcome));
        }
    }

    /// Plans and "sends" intents: applies them to the conference, returning
    /// the events that follows.
    fn send(&mut self, intents: Vec<Intent>, outcome: &mut Outcome) -> Vec<Event> {
        outcome.problems.extend(
            self.rules
                .drain_failures()
                .into_iter()
                .map(|failure| failure.error.to_string()),
        );
        outcome.logs.extend(self.rules.drain_logs());
        let plan = plan(intents, &self.room, &[], &self.capabilities);
        let mut events = Vec::new();
        for intent in plan.send {
            outcome.sent.push(intent.command.to_string());
            match self
                .conference
                .apply_command(&self.actor, &intent.command, self.clock)
            {
                Ok(reply) => events.extend(reply.events),
                Err(err) => outcome
                    .problems
                    .push(format!("`{}` failed: {err}", intent.command)),
            }
        }
        outcome.sent.extend(
            plan.shadow
                .iter()
                .map(|intent| format!("shadow {}", intent.command)),
        );
        if !self.conference.contains(&self.actor.uuid) {
            events.extend(self.rejoin());
        }
        events
    }

    /// usher's participant went with the conference it ended: like the
    /// daemon, it opens a new session, and the new stream shows the room
    /// as it now is (a new conference: unlocked, not started).
    fn rejoin(&mut self) -> Vec<Event> {
        let (uuid, _) = self
            .conference
            .add_session_participant("usher", true, self.clock);
        self.actor.uuid = uuid;
        let flags = self.conference.flags();
        let mut events = vec![self.conference.roster()];
        events.push(Event::RoomUpdate(FlagsUpdate {
            locked: Some(flags.locked),
            guests_muted: Some(flags.guests_muted),
            started: Some(flags.started),
        }));
        events
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn expectations_match_exactly_or_by_leading_words_in_any_order() {
        let sent = strings(&["lock", "message \"Full\"", "mute Bob"]);
        assert_eq!(
            compare(&strings(&["mute Bob", "message", "lock"]), &sent),
            None
        );
        assert_eq!(
            compare(&strings(&["lock", "message \"Full\"", "mute Bob"]), &sent),
            None
        );
        let (missing, unexpected) = compare(&strings(&["mute Cat", "lock"]), &sent).unwrap();
        assert_eq!(missing, ["mute Cat"]);
        assert_eq!(unexpected, ["message \"Full\"", "mute Bob"]);
        let (missing, _) = compare(&strings(&["mute Bo"]), &strings(&["mute Bob"])).unwrap();
        assert_eq!(missing, ["mute Bo"], "prefixes stop at word boundaries");
        assert_eq!(compare(&[], &[]), None);
    }

    #[test]
    fn a_failing_step_shows_what_rules_logged_under_it() {
        let dir = std::env::temp_dir().join(format!("usher-test-logs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("tests")).unwrap();
        std::fs::write(
            dir.join("talk.rhai"),
            "fn on_join(p) {\n    log(`saw ${p.name}`);\n    print(\"printed\");\n    if p.name == \"Cat\" { room.lock(); }\n}\n",
        )
        .unwrap();
        let test = dir.join("tests/talk.yaml");
        std::fs::write(
            &test,
            "rules: [talk]\ntests:\n  - name: stays open\n    steps:\n      - join: Bob\n        expect: []\n      - join: Cat\n        expect: []\n",
        )
        .unwrap();
        let mut out = Vec::new();
        let summary = run_paths(&[test], None, &mut out).unwrap();
        let report = String::from_utf8(out).unwrap();
        assert_eq!(summary.failed, 1);
        assert!(
            report.contains(
                "          unexpected: lock\n          log:   talk: saw Cat\n          log:   talk: printed\n"
            ),
            "{report}"
        );
        assert!(
            !report.contains("saw Bob"),
            "only the failing step's lines: {report}"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_test_room_is_on_the_platform_it_names() {
        let dir = std::env::temp_dir().join(format!("usher-test-platform-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("tests")).unwrap();
        std::fs::write(
            dir.join("ban_spam.rhai"),
            "fn on_message(msg) {\n    let p = room.find(msg.from);\n    if msg.text == \"spam\" && p != () && p.is_guest { p.ban(10); }\n}\n",
        )
        .unwrap();
        let run = |platform: &str, expect: &str| {
            let test = dir.join(format!("tests/{platform}.yaml"));
            std::fs::write(
                &test,
                format!("rules: [ban_spam]\nplatform: {platform}\nparticipants: [Bob]\ntests:\n  - name: spam\n    steps:\n      - chat: {{ from: Bob, text: spam }}\n        expect: {expect}\n"),
            )
            .unwrap();
            let mut out = Vec::new();
            let summary = run_paths(&[test], None, &mut out).unwrap();
            (summary.failed, String::from_utf8(out).unwrap())
        };
        let (failed, report) = run("tencent", "[ban Bob]");
        assert_eq!(failed, 0, "Tencent bans: {report}");
        let (failed, report) = run("vmr", "[]");
        assert_eq!(
            failed, 0,
            "seed 001 cannot ban, so nothing is sent: {report}"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn rules_dir_is_the_parent_of_a_tests_directory() {
        assert_eq!(
            rules_dir_for(Path::new("rules/tests/a.yaml")),
            Path::new("rules")
        );
        assert_eq!(rules_dir_for(Path::new("mine/a.yaml")), Path::new("mine"));
    }
}
