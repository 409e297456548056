//! A room's schedule: its sessions from every source, merged.
//!
//! A [`Schedule`] holds sessions by source — `timetable` for the room's
//! iCalendar, and in future the room's platform (a booked meeting's start
//! and length) — and keeps them merged in time order. A [`SharedSchedule`]
//! is the copy a room's rules read while the timetable keeper replaces a
//! source's sessions after each refresh; its version tells readers cheaply
//! that something changed. A [`RoomSchedule`] is what a room's rules get:
//! the room's zone and its shared schedule.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use crate::clock::Zone;

/// One session: a lecture, seminar or meeting with a start and an end.
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    /// What it is called (`SUMMARY`).
    pub title: String,
    /// When it starts (UNIX seconds).
    pub start: f64,
    /// When it ends (UNIX seconds); at least `start`.
    pub end: f64,
    /// `DESCRIPTION`, or "".
    pub description: String,
    /// `LOCATION`, or "".
    pub location: String,
    /// The series it belongs to (`UID`); with `start`, it names the session.
    pub uid: String,
}

impl Session {
    /// True while the session runs: from its start up to (not including)
    /// its end.
    pub fn runs_at(&self, at: f64) -> bool {
        self.start <= at && at < self.end
    }

    /// `START END TITLE`, the times in RFC 3339 at `zone`'s offset on the
    /// day: `2027-03-29T09:00:00+02:00 2027-03-29T10:30:00+02:00 Physics 101`.
    pub fn line(&self, zone: &Zone) -> String {
        let time = |at: f64| zone.format(at).unwrap_or_else(|_| format!("{at}"));
        format!("{} {} {}", time(self.start), time(self.end), self.title)
    }
}

/// Where a session comes from.
pub const TIMETABLE: &str = "timetable";

/// A room's sessions, from every source, in time order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Schedule {
    sources: BTreeMap<String, Vec<Session>>,
    merged: Vec<Session>,
}

impl Schedule {
    /// The schedule with `source`'s sessions replaced by `sessions`.
    pub fn with_source(&self, source: &str, sessions: Vec<Session>) -> Schedule {
        let mut sources = self.sources.clone();
        sources.insert(source.to_owned(), sessions);
        let mut merged: Vec<Session> = sources.values().flatten().cloned().collect();
        merged.sort_by(|a, b| {
            a.start
                .total_cmp(&b.start)
                .then(a.end.total_cmp(&b.end))
                .then_with(|| a.title.cmp(&b.title))
        });
        Schedule { sources, merged }
    }

    /// Every session, in order of start.
    pub fn sessions(&self) -> &[Session] {
        &self.merged
    }

    /// The session running at `at`; of several, the one that started last.
    pub fn current(&self, at: f64) -> Option<&Session> {
        self.merged
            .iter()
            .take_while(|s| s.start <= at)
            .filter(|s| s.runs_at(at))
            .last()
    }

    /// The last session to have ended at or before `at`.
    pub fn previous(&self, at: f64) -> Option<&Session> {
        self.merged
            .iter()
            .filter(|s| s.end <= at)
            .max_by(|a, b| a.end.total_cmp(&b.end))
    }

    /// The first session to start after `at`.
    pub fn next(&self, at: f64) -> Option<&Session> {
        self.merged.iter().find(|s| s.start > at)
    }

    /// The earliest start or end after `after`.
    pub fn next_boundary(&self, after: f64) -> Option<f64> {
        let first_start = self.next(after).map(|s| s.start);
        let first_end = self
            .merged
            .iter()
            .filter(|s| s.end > after)
            .map(|s| s.end)
            .reduce(f64::min);
        match (first_start, first_end) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The sessions that end at `at`, then those that start at `at`.
    pub fn boundaries_at(&self, at: f64) -> Vec<(Boundary, Session)> {
        let ends = self
            .merged
            .iter()
            .filter(|s| s.end == at)
            .map(|s| (Boundary::End, s.clone()));
        let starts = self
            .merged
            .iter()
            .filter(|s| s.start == at)
            .map(|s| (Boundary::Start, s.clone()));
        ends.chain(starts).collect()
    }
}

/// A session starting or ending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Boundary {
    /// It starts.
    Start,
    /// It ends.
    End,
}

/// A schedule that a keeper updates and a room's rules read.
#[derive(Debug, Default)]
pub struct SharedSchedule {
    current: RwLock<Arc<Schedule>>,
    version: AtomicU64,
}

impl SharedSchedule {
    /// An empty shared schedule.
    pub fn new() -> Arc<SharedSchedule> {
        Arc::new(SharedSchedule::default())
    }

    /// The schedule now.
    pub fn get(&self) -> Arc<Schedule> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Goes up by one with every change.
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// Replaces `source`'s sessions.
    pub fn set_source(&self, source: &str, sessions: Vec<Session>) {
        let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
        let updated = current.with_source(source, sessions);
        if updated != **current {
            *current = Arc::new(updated);
            self.version.fetch_add(1, Ordering::AcqRel);
        }
    }
}

/// What a room's rules know of time: the room's zone and its schedule.
#[derive(Debug, Clone)]
pub struct RoomSchedule {
    /// The zone the room's times of day are in.
    pub zone: Zone,
    /// Its sessions.
    pub schedule: Arc<SharedSchedule>,
}

impl RoomSchedule {
    /// A room in `zone` with no sessions (yet).
    pub fn new(zone: Zone) -> RoomSchedule {
        RoomSchedule {
            zone,
            schedule: SharedSchedule::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(title: &str, start: f64, end: f64) -> Session {
        Session {
            title: title.into(),
            start,
            end,
            description: String::new(),
            location: String::new(),
            uid: title.into(),
        }
    }

    #[test]
    fn sources_merge_in_time_order_and_replace_their_own() {
        let schedule = Schedule::default()
            .with_source(
                TIMETABLE,
                vec![session("b", 20.0, 30.0), session("a", 0.0, 10.0)],
            )
            .with_source("platform", vec![session("c", 10.0, 20.0)]);
        let titles: Vec<&str> = schedule
            .sessions()
            .iter()
            .map(|s| s.title.as_str())
            .collect();
        assert_eq!(titles, ["a", "c", "b"]);
        let schedule = schedule.with_source(TIMETABLE, vec![]);
        assert_eq!(schedule.sessions().len(), 1);
    }

    #[test]
    fn current_next_and_boundaries() {
        let schedule = Schedule::default().with_source(
            TIMETABLE,
            vec![
                session("a", 0.0, 10.0),
                session("b", 10.0, 20.0),
                session("c", 30.0, 40.0),
            ],
        );
        assert_eq!(schedule.current(5.0).map(|s| &*s.title), Some("a"));
        assert_eq!(schedule.current(10.0).map(|s| &*s.title), Some("b"));
        assert_eq!(schedule.current(25.0), None);
        assert_eq!(schedule.next(10.0).map(|s| &*s.title), Some("c"));
        assert_eq!(schedule.previous(25.0).map(|s| &*s.title), Some("b"));
        assert_eq!(schedule.previous(5.0), None);
        assert_eq!(schedule.next_boundary(5.0), Some(10.0));
        assert_eq!(schedule.next_boundary(20.0), Some(30.0));
        assert_eq!(schedule.next_boundary(40.0), None);
        let at_ten: Vec<(Boundary, String)> = schedule
            .boundaries_at(10.0)
            .into_iter()
            .map(|(b, s)| (b, s.title))
            .collect();
        assert_eq!(
            at_ten,
            [
                (Boundary::End, "a".to_owned()),
                (Boundary::Start, "b".to_owned())
            ]
        );
    }

    #[test]
    fn a_shared_schedule_counts_real_changes_only() {
        let shared = SharedSchedule::new();
        assert_eq!(shared.version(), 0);
        shared.set_source(TIMETABLE, vec![session("a", 0.0, 10.0)]);
        shared.set_source(TIMETABLE, vec![session("a", 0.0, 10.0)]);
        assert_eq!(shared.version(), 1);
        assert_eq!(shared.get().sessions().len(), 1);
    }
}
