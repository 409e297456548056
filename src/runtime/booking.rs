//! Booking ahead: a meeting on the room's platform for every timetable
//! session within `book_ahead`, kept in step with the timetable.
//!
//! A room with `book_ahead` names a series (its alias is not a meeting):
//! its [`BookingKeeper`] task books each session of the room's timetable that
//! starts within the horizon, moves a booking when its session moves
//! (a session is named by its `UID` and occurrence, so a `RECURRENCE-ID`
//! override is a move), and cancels it when the session is cancelled.
//! What is booked is kept in a [`Ledger`] on disk, so a session is never
//! booked twice, also across restarts. Every call is audited like a
//! command (rule `book_ahead`, commands `book`, `move`, `cancel`), and in
//! dry-run mode only audited. A booked meeting is watched with the room's
//! rules from [`WATCH_LEAD`] before its start until [`WATCH_AFTER`] past
//! its end.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use super::audit::{AuditRecord, Outcome};
use super::daemon::Shared;
use super::room::{RoomSetup, supervise};
use super::status::Registry;
use crate::clock::{format_timestamp, unix_now};
use crate::platform::booking::{BookError, Booked, BookingRequest};
use crate::platform::{Platform, RoomAddress};
use crate::rules::RuleBinding;
use crate::timetable::{RoomSchedule, Session, TIMETABLE};

/// The rule name booking actions are audited under.
pub const AUDIT_RULE: &str = "book_ahead";

/// How long before a booked session its meeting is watched.
pub const WATCH_LEAD: Duration = Duration::from_secs(300);

/// How long after a booked session's end its meeting is still watched.
pub const WATCH_AFTER: Duration = Duration::from_secs(900);

/// How often the bookings are checked against the timetable, beyond each
/// change of the timetable.
const RECHECK: Duration = Duration::from_secs(60);

/// How often the timetable is looked at for changes.
const LOOK: Duration = Duration::from_secs(1);

/// How long a failed call waits before it is tried again.
const RETRY: Duration = Duration::from_secs(60);

/// A booking usher made: the meeting and the session it was made for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// The room (series) it belongs to.
    pub room: String,
    /// The meeting on the platform.
    pub booked: Booked,
    /// The session's title when it was booked or last moved.
    pub title: String,
    /// Its start then (UNIX seconds).
    pub start: f64,
    /// Its end then (UNIX seconds).
    pub end: f64,
}

/// Why the ledger cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// The file could not be read or written.
    #[error("bookings file {path}: {error}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        error: std::io::Error,
    },
    /// The file is not a ledger.
    #[error("bookings file {path}: not a bookings file ({error}); move it aside to start afresh")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        error: serde_json::Error,
    },
}

/// Every booking usher made, by session key, kept in a JSON file written
/// whole to a temporary file and renamed over the old one, so a crash
/// leaves either the old ledger or the new one.
#[derive(Debug)]
pub struct Ledger {
    path: PathBuf,
    entries: BTreeMap<String, Entry>,
}

impl Ledger {
    /// Opens the ledger at `path`; a missing file is an empty ledger.
    pub fn open(path: &Path) -> Result<Ledger, LedgerError> {
        let entries = match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|error| LedgerError::Invalid {
                path: path.to_owned(),
                error,
            })?,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(error) => {
                return Err(LedgerError::Io {
                    path: path.to_owned(),
                    error,
                });
            }
        };
        Ok(Ledger {
            path: path.to_owned(),
            entries,
        })
    }

    /// The booking for `key`.
    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.entries.get(key)
    }

    /// Every booking of `room`, by key.
    pub fn of_room<'a>(&'a self, room: &'a str) -> impl Iterator<Item = (&'a String, &'a Entry)> {
        self.entries.iter().filter(move |(_, e)| e.room == room)
    }

    /// Records (or replaces) a booking and writes the file.
    pub fn put(&mut self, key: &str, entry: Entry) -> Result<(), LedgerError> {
        self.entries.insert(key.to_owned(), entry);
        self.save()
    }

    /// Forgets a booking and writes the file.
    pub fn remove(&mut self, key: &str) -> Result<(), LedgerError> {
        if self.entries.remove(key).is_some() {
            self.save()?;
        }
        Ok(())
    }

    fn save(&self) -> Result<(), LedgerError> {
        let io = |error| LedgerError::Io {
            path: self.path.clone(),
            error,
        };
        let text = serde_json::to_vec_pretty(&self.entries).map_err(std::io::Error::other);
        let temporary = self.path.with_extension("json.tmp");
        std::fs::write(&temporary, text.map_err(io)?).map_err(io)?;
        std::fs::rename(&temporary, &self.path).map_err(io)
    }
}

/// Names a session across moves: the room, the series and the occurrence.
pub fn session_key(room: &str, session: &Session) -> String {
    format!("{room} {} {}", session.uid, session.occurrence)
}

/// A platform-friendly name for a session's meeting, unique per session:
/// the room's alias and the occurrence, letters, digits and `-` only.
fn room_hint(room: &str, session: &Session) -> String {
    let base: String = room
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(40)
        .collect();
    let uid = session
        .uid
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x100_0000_01b3)
        });
    format!(
        "{base}-{:x}-{}",
        uid & 0xffff_ffff,
        session.occurrence as i64
    )
}

/// One room's bookings.
pub(crate) struct BookingKeeper {
    pub room: String,
    pub platform_name: String,
    pub platform: Arc<dyn Platform>,
    pub horizon: Duration,
    pub schedule: RoomSchedule,
    pub bindings: Arc<[RuleBinding]>,
    pub ledger: Arc<Mutex<Ledger>>,
    pub shared: Arc<Shared>,
    pub registry: Arc<Registry>,
}

/// A booked meeting being watched.
struct Watch {
    until: f64,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl BookingKeeper {
    /// Keeps the room's bookings in step with its timetable until `cancel`.
    pub(crate) async fn run(self, cancel: CancellationToken) {
        let span = tracing::info_span!("booking", room = %self.room);
        self.keep(cancel).instrument(span).await;
    }

    async fn keep(self, cancel: CancellationToken) {
        let mut seen_version = None;
        let mut checked_at = f64::NEG_INFINITY;
        let mut retry_at: HashMap<String, f64> = HashMap::new();
        let mut announced: HashMap<String, (String, f64, f64)> = HashMap::new();
        let mut watches: HashMap<String, Watch> = HashMap::new();
        loop {
            let now = unix_now();
            let version = self.schedule.schedule.version();
            if seen_version != Some(version) || now - checked_at >= RECHECK.as_secs_f64() {
                seen_version = Some(version);
                checked_at = now;
                self.reconcile(now, &mut retry_at, &mut announced).await;
            }
            self.watch(now, &mut watches, &cancel).await;
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tokio::time::sleep(LOOK) => {}
            }
        }
        for (_, watch) in watches.drain() {
            watch.stop.cancel();
            let _ = watch.task.await;
        }
    }

    fn ledger(&self) -> std::sync::MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Books, moves and cancels so the bookings match the sessions within
    /// the horizon. With no timetable read yet, nothing is touched.
    async fn reconcile(
        &self,
        now: f64,
        retry_at: &mut HashMap<String, f64>,
        announced: &mut HashMap<String, (String, f64, f64)>,
    ) {
        let schedule = self.schedule.schedule.get();
        let Some(sessions) = schedule.source(TIMETABLE) else {
            return;
        };
        let horizon = now + self.horizon.as_secs_f64();
        let all: BTreeMap<String, &Session> = sessions
            .iter()
            .map(|s| (session_key(&self.room, s), s))
            .collect();
        // Sessions to book, and booked ones still to come wherever they
        // moved (beyond the horizon too).
        let wanted: Vec<(&String, &&Session)> = {
            let ledger = self.ledger();
            all.iter()
                .filter(|(key, s)| {
                    (s.start > now && s.start <= horizon)
                        || (s.end > now && ledger.get(key).is_some())
                })
                .collect()
        };
        for (key, session) in wanted {
            if retry_at.get(key).is_some_and(|at| *at > now) {
                continue;
            }
            let known = self.ledger().get(key).cloned();
            let done = match known {
                None => self.book(key, session, announced).await,
                Some(entry)
                    if entry.start != session.start
                        || entry.end != session.end
                        || entry.title != session.title =>
                {
                    self.rebook(key, entry, session, announced).await
                }
                Some(_) => true,
            };
            if done {
                retry_at.remove(key);
            } else {
                retry_at.insert(key.clone(), now + RETRY.as_secs_f64());
            }
        }
        let booked: Vec<(String, Entry)> = self
            .ledger()
            .of_room(&self.room)
            .map(|(key, entry)| (key.clone(), entry.clone()))
            .collect();
        for (key, entry) in booked {
            if all.contains_key(&key) {
                continue;
            }
            if entry.end < now {
                // Over: nothing to cancel, only to forget.
                if let Err(err) = self.ledger().remove(&key) {
                    tracing::error!("{err}");
                }
                continue;
            }
            if retry_at.get(&key).is_some_and(|at| *at > now) {
                continue;
            }
            if self.cancel(&key, &entry, announced).await {
                retry_at.remove(&key);
            } else {
                retry_at.insert(key, now + RETRY.as_secs_f64());
            }
        }
    }

    /// Audits a booking action.
    fn audit(&self, command: &str, text: String, outcome: Outcome, error: Option<String>) {
        let record = AuditRecord {
            time: format_timestamp(unix_now()),
            room: self.room.clone(),
            rule: AUDIT_RULE.to_owned(),
            event: "timetable".to_owned(),
            handler: String::new(),
            participant: None,
            command: command.to_owned(),
            target: None,
            text,
            outcome,
            error,
            attempts: u32::from(outcome != Outcome::DryRun),
            latency_ms: None,
            dry_run: outcome == Outcome::DryRun,
        };
        self.shared.audit.record(record);
    }

    /// Says in dry-run mode what would be done, once per state of the
    /// session; true when in dry-run mode.
    fn dry_run(
        &self,
        key: &str,
        command: &str,
        text: &str,
        session: (&str, f64, f64),
        announced: &mut HashMap<String, (String, f64, f64)>,
    ) -> bool {
        if !self.shared.dry_run {
            return false;
        }
        let state = (session.0.to_owned(), session.1, session.2);
        if announced.get(key) != Some(&state) {
            tracing::info!("dry run: would {text}");
            self.audit(command, text.to_owned(), Outcome::DryRun, None);
            announced.insert(key.to_owned(), state);
        }
        true
    }

    fn request(&self, session: &Session) -> BookingRequest {
        BookingRequest {
            title: session.title.clone(),
            start: session.start,
            end: session.end,
            room_hint: room_hint(&self.room, session),
        }
    }

    async fn book(
        &self,
        key: &str,
        session: &Session,
        announced: &mut HashMap<String, (String, f64, f64)>,
    ) -> bool {
        let text = format!(
            "book \"{}\" {} to {}",
            session.title,
            format_timestamp(session.start),
            format_timestamp(session.end)
        );
        let state = (session.title.as_str(), session.start, session.end);
        if self.dry_run(key, "book", &text, state, announced) {
            return true;
        }
        let Some(booker) = self.platform.booker() else {
            return true;
        };
        match booker.book(&self.request(session)).await {
            Ok(booked) => {
                tracing::info!(meeting = %booked.alias, "{text}");
                let entry = Entry {
                    room: self.room.clone(),
                    booked: booked.clone(),
                    title: session.title.clone(),
                    start: session.start,
                    end: session.end,
                };
                let saved = self.ledger().put(key, entry);
                let error = saved.err().map(|err| {
                    tracing::error!("{err}; the booking may be made again after a restart");
                    err.to_string()
                });
                self.audit(
                    "book",
                    format!("{text} as {}", booked.alias),
                    Outcome::Ok,
                    error,
                );
                true
            }
            Err(err) => {
                self.failed("book", text, &err);
                false
            }
        }
    }

    async fn rebook(
        &self,
        key: &str,
        entry: Entry,
        session: &Session,
        announced: &mut HashMap<String, (String, f64, f64)>,
    ) -> bool {
        let text = format!(
            "move {} \"{}\" to {} to {}",
            entry.booked.alias,
            session.title,
            format_timestamp(session.start),
            format_timestamp(session.end)
        );
        let state = (session.title.as_str(), session.start, session.end);
        if self.dry_run(key, "move", &text, state, announced) {
            return true;
        }
        let Some(booker) = self.platform.booker() else {
            return true;
        };
        match booker.rebook(&entry.booked, &self.request(session)).await {
            Ok(()) => {
                tracing::info!("{text}");
                let moved = Entry {
                    title: session.title.clone(),
                    start: session.start,
                    end: session.end,
                    ..entry
                };
                let error = self.ledger().put(key, moved).err().map(|e| e.to_string());
                self.audit("move", text, Outcome::Ok, error);
                true
            }
            Err(err) => {
                self.failed("move", text, &err);
                false
            }
        }
    }

    async fn cancel(
        &self,
        key: &str,
        entry: &Entry,
        announced: &mut HashMap<String, (String, f64, f64)>,
    ) -> bool {
        let text = format!(
            "cancel {} \"{}\" {}",
            entry.booked.alias,
            entry.title,
            format_timestamp(entry.start)
        );
        if self.dry_run(key, "cancel", &text, ("", 0.0, 0.0), announced) {
            return true;
        }
        let Some(booker) = self.platform.booker() else {
            return true;
        };
        match booker.cancel(&entry.booked).await {
            Ok(()) => {
                tracing::info!("{text}");
                let error = self.ledger().remove(key).err().map(|e| e.to_string());
                self.audit("cancel", text, Outcome::Ok, error);
                true
            }
            Err(err) => {
                self.failed("cancel", text, &err);
                false
            }
        }
    }

    fn failed(&self, command: &str, text: String, err: &BookError) {
        tracing::warn!(error = %err, "could not {text}; trying again in {RETRY:?}");
        self.audit(command, text, Outcome::Failed, Some(err.to_string()));
    }

    /// Watches the booked meetings whose sessions are near or running, and
    /// stops watching those long over.
    async fn watch(
        &self,
        now: f64,
        watches: &mut HashMap<String, Watch>,
        cancel: &CancellationToken,
    ) {
        let due: Vec<Entry> = self
            .ledger()
            .of_room(&self.room)
            .map(|(_, entry)| entry.clone())
            .filter(|entry| {
                entry.start - WATCH_LEAD.as_secs_f64() <= now
                    && now < entry.end + WATCH_AFTER.as_secs_f64()
            })
            .collect();
        for entry in due {
            let alias = entry.booked.alias.clone();
            if watches.contains_key(&alias) || self.registry.has_room(&alias) {
                continue;
            }
            tracing::info!(meeting = %alias, title = %entry.title, "watching the booked meeting");
            let setup = RoomSetup {
                address: RoomAddress {
                    alias: alias.clone(),
                    pin: None,
                },
                platform: self.platform.clone(),
                bindings: self.bindings.clone(),
                status: self.registry.add_room(&alias, &self.platform_name, true),
                schedule: self.schedule.clone(),
                ownership: None,
            };
            let stop = cancel.child_token();
            let task = tokio::spawn(supervise(setup, self.shared.clone(), stop.clone()));
            watches.insert(
                alias,
                Watch {
                    until: entry.end + WATCH_AFTER.as_secs_f64(),
                    stop,
                    task,
                },
            );
        }
        let over: Vec<String> = watches
            .iter()
            .filter(|(_, watch)| watch.until <= now || watch.task.is_finished())
            .map(|(alias, _)| alias.clone())
            .collect();
        for alias in over {
            if let Some(watch) = watches.remove(&alias) {
                tracing::info!(meeting = %alias, "the booked session is over; no longer watching it");
                watch.stop.cancel();
                let _ = watch.task.await;
                self.registry.remove_room(&alias);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(room: &str, id: &str) -> Entry {
        Entry {
            room: room.into(),
            booked: Booked {
                id: id.into(),
                alias: id.into(),
            },
            title: "Physics".into(),
            start: 100.0,
            end: 200.0,
        }
    }

    #[test]
    fn the_ledger_survives_a_reopen_and_keeps_rooms_apart() {
        let dir = std::env::temp_dir().join(format!("usher-ledger-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bookings.json");
        let _ = std::fs::remove_file(&path);
        let mut ledger = Ledger::open(&path).unwrap();
        ledger.put("a 1", entry("hall-a", "m1")).unwrap();
        ledger.put("b 1", entry("hall-b", "m2")).unwrap();
        let reopened = Ledger::open(&path).unwrap();
        assert_eq!(reopened.get("a 1"), Some(&entry("hall-a", "m1")));
        assert_eq!(reopened.of_room("hall-b").count(), 1);
        let mut reopened = reopened;
        reopened.remove("a 1").unwrap();
        assert!(Ledger::open(&path).unwrap().get("a 1").is_none());
        std::fs::write(&path, "not json").unwrap();
        let err = Ledger::open(&path).unwrap_err().to_string();
        assert!(err.contains("not a bookings file"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn room_hints_are_plain_and_differ_per_occurrence() {
        let session = |uid: &str, occurrence: f64| Session {
            title: "t".into(),
            start: occurrence,
            end: occurrence + 60.0,
            description: String::new(),
            location: String::new(),
            uid: uid.into(),
            occurrence,
        };
        let a = room_hint("hall a@uni.example", &session("x@uni", 1000.0));
        assert!(a.starts_with("hall-a-uni-example-"), "{a}");
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
        assert_ne!(
            a,
            room_hint("hall a@uni.example", &session("x@uni", 2000.0))
        );
        assert_ne!(
            a,
            room_hint("hall a@uni.example", &session("y@uni", 1000.0))
        );
    }
}
