//! Reports in the live daemon: one [`Session`] per room, written to
//! `<reports_dir>/<room>/<date>-<time>.html` (and `.json`) when it ends.
//!
//! A session begins when someone is first listed in the room and ends when
//! - the platform disconnects usher (the conference ended),
//! - the room has stayed empty for [`EMPTY_GRACE`] (at once if usher ended
//!   the conference itself),
//! - the room's timetable session is over ([`ReportBook::end_session`]), or
//! - usher stops ([`ReportBook::finish_all`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::session::{Report, Session};
use super::zone::Zone;
use super::{html, write_report};
use crate::clock::unix_now;
use crate::model::{Change, RoomState};
use crate::rules::RuleFailure;
use crate::runtime::audit::{AuditRecord, Outcome};
use crate::runtime::status::{RoomWatcher, Watching};

/// How long a room stays empty before its session counts as over.
pub const EMPTY_GRACE: f64 = 120.0;

/// How often empty rooms are looked at.
const SWEEP_EVERY: Duration = Duration::from_secs(10);

/// Every room's session, and where reports go.
#[derive(Debug)]
pub struct ReportBook {
    dir: PathBuf,
    rooms: RwLock<BTreeMap<String, Arc<RoomReports>>>,
}

/// One room's session, as its watcher.
#[derive(Debug)]
struct RoomReports {
    alias: String,
    dir: PathBuf,
    open: Mutex<Open>,
}

#[derive(Debug, Default)]
struct Open {
    session: Option<Session>,
    /// Since when nobody has been listed.
    empty_since: Option<f64>,
    /// usher ended the conference; the session ends when the room empties.
    ended_by_usher: bool,
}

impl ReportBook {
    /// Reports written under `dir`; empty rooms are looked at until
    /// `cancel` fires.
    pub fn start(dir: &Path, cancel: CancellationToken) -> Arc<ReportBook> {
        let book = Arc::new(ReportBook {
            dir: dir.to_owned(),
            rooms: RwLock::new(BTreeMap::new()),
        });
        let sweeper = book.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(SWEEP_EVERY);
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = ticks.tick() => {}
                }
                let book = sweeper.clone();
                let _ = tokio::task::spawn_blocking(move || book.sweep(unix_now())).await;
            }
        });
        book
    }

    /// Ends the sessions of rooms that have stayed empty long enough.
    pub fn sweep(&self, now: f64) -> Vec<PathBuf> {
        self.each_room()
            .iter()
            .filter_map(|room| room.sweep(now))
            .collect()
    }

    /// Ends room `alias`'s session at `at` (its timetable session is over)
    /// and writes its report, if anyone came.
    pub fn end_session(&self, alias: &str, at: f64) -> Option<PathBuf> {
        let room = self.rooms.read().ok()?.get(alias).cloned()?;
        room.end(at)
    }

    /// Ends every session at `at` (usher is stopping) and writes the reports.
    pub fn finish_all(&self, at: f64) -> Vec<PathBuf> {
        self.each_room()
            .iter()
            .filter_map(|room| room.end(at))
            .collect()
    }

    fn each_room(&self) -> Vec<Arc<RoomReports>> {
        self.rooms
            .read()
            .map(|rooms| rooms.values().cloned().collect())
            .unwrap_or_default()
    }
}

impl Watching for ReportBook {
    fn watch(&self, alias: &str) -> Arc<dyn RoomWatcher> {
        let room = Arc::new(RoomReports {
            alias: alias.to_owned(),
            dir: self.dir.clone(),
            open: Mutex::new(Open::default()),
        });
        if let Ok(mut rooms) = self.rooms.write() {
            rooms.insert(alias.to_owned(), room.clone());
        }
        room
    }
}

impl RoomReports {
    fn lock(&self) -> std::sync::MutexGuard<'_, Open> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Ends the session if the room has been empty long enough.
    fn sweep(&self, now: f64) -> Option<PathBuf> {
        let report = {
            let mut open = self.lock();
            let since = open.empty_since?;
            if now - since < EMPTY_GRACE {
                return None;
            }
            open.take(since)?
        };
        write_now(&self.dir, &self.alias, &report)
    }

    fn end(&self, at: f64) -> Option<PathBuf> {
        let report = self.lock().take(at)?;
        write_now(&self.dir, &self.alias, &report)
    }

    /// Writes `report` off the room's task when there is a runtime to do it.
    fn write(&self, report: Report) {
        let (dir, alias) = (self.dir.clone(), self.alias.clone());
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn_blocking(move || write_now(&dir, &alias, &report));
            }
            Err(_) => {
                write_now(&dir, &alias, &report);
            }
        }
    }
}

/// Writes `report` under `dir` and says so in the log.
fn write_now(dir: &Path, alias: &str, report: &Report) -> Option<PathBuf> {
    match write_report(dir, report, &html::render(report)) {
        Ok(path) => {
            tracing::info!(room = %alias, path = %path.display(), "end-of-lecture report written");
            Some(path)
        }
        Err(err) => {
            tracing::error!(room = %alias, error = %err, "cannot write the end-of-lecture report");
            None
        }
    }
}

impl Open {
    /// Ends the session at `at`: its report, if anyone came.
    fn take(&mut self, at: f64) -> Option<Report> {
        self.empty_since = None;
        self.ended_by_usher = false;
        let session = self.session.take()?;
        (session.peak() > 0).then(|| session.finish(at, Zone::Local))
    }
}

impl RoomWatcher for RoomReports {
    fn changes(&self, state: &RoomState, changes: &[Change], at: f64) {
        let report = {
            let mut open = self.lock();
            match &mut open.session {
                Some(session) => session.changes(state, changes, at),
                None if !state.is_empty() => {
                    open.session = Some(Session::begin(&self.alias, state, at));
                }
                None => {}
            }
            let ended = changes
                .iter()
                .any(|change| matches!(change, Change::Disconnected { .. }));
            if state.is_empty() {
                open.empty_since.get_or_insert(at);
            } else {
                open.empty_since = None;
            }
            if ended || (open.ended_by_usher && state.is_empty()) {
                open.take(at)
            } else {
                None
            }
        };
        if let Some(report) = report {
            self.write(report);
        }
    }

    fn command(&self, record: &AuditRecord) {
        let report = {
            let mut open = self.lock();
            if let Some(session) = &mut open.session {
                session.command(record);
            }
            let ends_conference = record.command == "end" && record.outcome == Outcome::Ok;
            open.ended_by_usher |= ends_conference;
            // The platform often shows the room empty before usher hears back.
            match open.empty_since {
                Some(since) if ends_conference => open.take(since),
                _ => None,
            }
        };
        if let Some(report) = report {
            self.write(report);
        }
    }

    fn rule_failed(&self, failure: &RuleFailure, at: f64) {
        if let Some(session) = &mut self.lock().session {
            session.rule_failed(
                &failure.rule,
                &failure.handler,
                &failure.error.to_string(),
                at,
            );
        }
    }
}
