//! A room's schedule: its sessions from every source, merged.
//!
//! A [`Schedule`] holds sessions by source — `timetable` for the room's
//! iCalendar, `platform` for the time the room's platform has it booked
//! (a booked meeting's start and length, a created room's schedule) — and
//! keeps them merged in time order. The timetable wins: a platform session
//! that overlaps a timetable session is left out, so a meeting booked for
//! a lecture is not a second session. A [`SharedSchedule`]
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
    /// The series it belongs to (`UID`).
    pub uid: String,
    /// Which occurrence of the series it is: its `RECURRENCE-ID` when it
    /// was moved, else its start. With `uid` it names the session, also
    /// after a move.
    pub occurrence: f64,
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

/// Where the session the room's platform has booked comes from.
pub const PLATFORM: &str = "platform";

/// When the room's platform has the room booked (UNIX seconds).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlatformTimes {
    /// The scheduled start.
    pub start: f64,
    /// The scheduled end, when the platform says.
    pub end: Option<f64>,
}

/// A room's sessions, from every source, in time order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Schedule {
    sources: BTreeMap<String, Vec<Session>>,
    merged: Vec<Session>,
    platform: Option<PlatformTimes>,
}

impl Schedule {
    /// The schedule with `source`'s sessions replaced by `sessions`.
    pub fn with_source(&self, source: &str, sessions: Vec<Session>) -> Schedule {
        let mut sources = self.sources.clone();
        sources.insert(source.to_owned(), sessions);
        Schedule {
            merged: merge(&sources),
            sources,
            platform: self.platform,
        }
    }

    /// The schedule with the platform's times for the room: `titled` is
    /// the session they make when the end is known. An end the platform
    /// leaves out keeps the one known for the same start (one call may
    /// give both, a later push only the start).
    pub fn with_platform(&self, times: PlatformTimes, titled: &str) -> Schedule {
        let end = times.end.or(self
            .platform
            .filter(|known| known.start == times.start)
            .and_then(|known| known.end));
        let times = PlatformTimes { end, ..times };
        let sessions = end
            .filter(|end| *end > times.start)
            .map(|end| Session {
                title: titled.to_owned(),
                start: times.start,
                end,
                description: String::new(),
                location: String::new(),
                uid: PLATFORM.to_owned(),
                occurrence: times.start,
            })
            .into_iter()
            .collect();
        Schedule {
            platform: Some(times),
            ..self.with_source(PLATFORM, sessions)
        }
    }

    /// `source`'s sessions, if it has given any yet.
    pub fn source(&self, source: &str) -> Option<&[Session]> {
        self.sources.get(source).map(Vec::as_slice)
    }

    /// When the room's platform has it booked, if it says.
    pub fn platform_times(&self) -> Option<PlatformTimes> {
        self.platform
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

/// Every source's sessions in order of start, the platform's only where
/// no other source has a session at that time.
fn merge(sources: &BTreeMap<String, Vec<Session>>) -> Vec<Session> {
    let own: Vec<&Session> = sources
        .iter()
        .filter(|(source, _)| *source != PLATFORM)
        .flat_map(|(_, sessions)| sessions)
        .collect();
    let overlaps = |s: &Session| own.iter().any(|o| o.start < s.end && s.start < o.end);
    let platform = sources
        .get(PLATFORM)
        .into_iter()
        .flatten()
        .filter(|s| !overlaps(s));
    let mut merged: Vec<Session> = own.iter().copied().chain(platform).cloned().collect();
    merged.sort_by(|a, b| {
        a.start
            .total_cmp(&b.start)
            .then(a.end.total_cmp(&b.end))
            .then_with(|| a.title.cmp(&b.title))
    });
    merged
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
        self.update(|schedule| schedule.with_source(source, sessions));
    }

    /// Takes the platform's times for the room (see
    /// [`Schedule::with_platform`]).
    pub fn set_platform(&self, times: PlatformTimes, titled: &str) {
        self.update(|schedule| schedule.with_platform(times, titled));
    }

    fn update(&self, change: impl FnOnce(&Schedule) -> Schedule) {
        let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
        let updated = change(&current);
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
            occurrence: start,
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
    fn the_timetable_wins_over_the_platform_where_they_overlap() {
        let times = |start, end| PlatformTimes { start, end };
        let schedule = Schedule::default().with_platform(times(100.0, Some(200.0)), "booked");
        assert_eq!(schedule.sessions().len(), 1);
        assert_eq!(schedule.sessions()[0].title, "booked");
        let with_lecture = schedule.with_source(TIMETABLE, vec![session("lecture", 150.0, 250.0)]);
        let titles: Vec<&str> = with_lecture
            .sessions()
            .iter()
            .map(|s| s.title.as_str())
            .collect();
        assert_eq!(titles, ["lecture"]);
        let apart = schedule.with_source(TIMETABLE, vec![session("lecture", 200.0, 250.0)]);
        assert_eq!(apart.sessions().len(), 2, "touching is not overlapping");
    }

    #[test]
    fn a_platform_start_alone_keeps_the_end_known_for_it() {
        let times = |start, end| PlatformTimes { start, end };
        let schedule = Schedule::default()
            .with_platform(times(100.0, Some(200.0)), "booked")
            .with_platform(times(100.0, None), "booked");
        assert_eq!(schedule.platform_times(), Some(times(100.0, Some(200.0))));
        assert_eq!(schedule.sessions().len(), 1);
        let moved = schedule.with_platform(times(300.0, None), "booked");
        assert_eq!(moved.platform_times(), Some(times(300.0, None)));
        assert!(moved.sessions().is_empty(), "no end, no session");
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
