//! Reports in the live daemon: one [`Session`] per room, written to
//! `<reports_dir>/<room>/<date>-<time>.html` (and `.json`) when it ends.
//!
//! A session begins when someone is first listed in the room and ends when
//! - the platform disconnects usher (the conference ended): as soon as
//!   usher's own `end` is confirmed, else after [`DISCONNECT_GRACE`] for
//!   the outcomes of commands still on their way,
//! - the room has stayed empty for [`EMPTY_GRACE`] (at once if usher ended
//!   the conference itself),
//! - the room's timetable session is over (a session that starts with
//!   people in the room begins a new report at once, named after it),
//! - the platform reports the room ended (a discovered room), or
//! - usher stops ([`ReportBook::finish_all`]).
//!
//! Times are in the room's zone, the one its timetable is read in.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::session::{Report, Session};
use super::{html, write_report};
use crate::clock::{Zone, unix_now};
use crate::model::{Change, RoomState};
use crate::rules::RuleFailure;
use crate::runtime::audit::{AuditRecord, Outcome};
use crate::runtime::status::{RoomWatcher, Watching};
use crate::timetable::Session as TimetableSession;

/// How long a room stays empty before its session counts as over.
pub const EMPTY_GRACE: f64 = 120.0;

/// How long after the platform disconnected usher a session waits for
/// the outcomes of commands still on their way (usher's own `end` among
/// them) before its report is written.
pub const DISCONNECT_GRACE: f64 = 5.0;

/// How often empty rooms are looked at.
const SWEEP_EVERY: Duration = Duration::from_secs(10);

/// Every room's session, and where reports go.
#[derive(Debug)]
pub struct ReportBook {
    dir: PathBuf,
    /// Each room's watcher; the room's status owns it, so a room no longer
    /// watched goes with its status.
    rooms: RwLock<BTreeMap<String, Weak<RoomReports>>>,
}

/// One room's session, as its watcher.
#[derive(Debug)]
struct RoomReports {
    alias: String,
    dir: PathBuf,
    open: Mutex<Open>,
}

#[derive(Debug)]
struct Open {
    /// The room's zone.
    zone: Zone,
    /// The timetable session under way, which a new session is named after.
    title: Option<String>,
    session: Option<Session>,
    /// Since when nobody has been listed.
    empty_since: Option<f64>,
    /// When the platform disconnected usher (the conference ended).
    disconnected_at: Option<f64>,
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
            .map(|rooms| rooms.values().filter_map(Weak::upgrade).collect())
            .unwrap_or_default()
    }
}

impl Watching for ReportBook {
    fn watch(&self, alias: &str) -> Arc<dyn RoomWatcher> {
        let room = Arc::new(RoomReports {
            alias: alias.to_owned(),
            dir: self.dir.clone(),
            open: Mutex::new(Open {
                zone: Zone::system(),
                title: None,
                session: None,
                empty_since: None,
                disconnected_at: None,
                ended_by_usher: false,
            }),
        });
        if let Ok(mut rooms) = self.rooms.write() {
            rooms.retain(|_, room| room.strong_count() > 0);
            rooms.insert(alias.to_owned(), Arc::downgrade(&room));
        }
        room
    }
}

impl RoomReports {
    fn lock(&self) -> std::sync::MutexGuard<'_, Open> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Ends the session if the room has been empty long enough, or the
    /// conference ended a while ago.
    fn sweep(&self, now: f64) -> Option<PathBuf> {
        let report = {
            let mut open = self.lock();
            let end = match (open.disconnected_at, open.empty_since) {
                (Some(at), _) if now - at >= DISCONNECT_GRACE => at,
                (_, Some(since)) if now - since >= EMPTY_GRACE => since,
                _ => return None,
            };
            open.take(end)?
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
        self.disconnected_at = None;
        self.ended_by_usher = false;
        let session = self.session.take()?;
        (session.peak() > 0).then(|| session.finish(at, self.zone.clone()))
    }

    /// Begins a session at `at` with the room as `state` shows it, named
    /// after the timetable session under way.
    fn begin(&mut self, alias: &str, state: &RoomState, at: f64) {
        let mut session = Session::begin(alias, state, at);
        if let Some(title) = &self.title {
            session.set_title(title);
        }
        self.session = Some(session);
    }
}

impl RoomWatcher for RoomReports {
    fn changes(&self, state: &RoomState, changes: &[Change], at: f64) {
        let report = {
            let mut open = self.lock();
            match &mut open.session {
                Some(session) => session.changes(state, changes, at),
                None if !state.is_empty() => open.begin(&self.alias, state, at),
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
            if ended {
                open.disconnected_at.get_or_insert(at);
            }
            // When usher ended it, its command's outcome is already in.
            if open.ended_by_usher && (ended || state.is_empty()) {
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
            // The platform often shows the room empty, or drops usher,
            // before usher hears back.
            match open.disconnected_at.or(open.empty_since) {
                Some(since) if ends_conference => open.take(since),
                _ => None,
            }
        };
        if let Some(report) = report {
            self.write(report);
        }
    }

    fn zone(&self, zone: &Zone) {
        self.lock().zone = zone.clone();
    }

    fn timetable(
        &self,
        state: &RoomState,
        ended: Option<&TimetableSession>,
        started: Option<&TimetableSession>,
        at: f64,
    ) {
        let report = {
            let mut open = self.lock();
            open.title = started.map(|session| session.title.clone());
            let report = match ended {
                Some(ended) => open.take(ended.end.min(at)),
                None => None,
            };
            if started.is_some() && !state.is_empty() {
                // A report per lecture: what came before has its own.
                if let Some(before) = open.take(at) {
                    self.write(before);
                }
                open.begin(&self.alias, state, at);
            }
            report
        };
        if let Some(report) = report {
            self.write(report);
        }
    }

    fn gone(&self, at: f64) {
        let report = self.lock().take(at);
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
