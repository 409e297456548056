//! Rules and the room's schedule and zone.
//!
//! Scripts read `room.session` (the session running now, or `()`),
//! `room.next_session()`, `room.previous_session()` (the last to have
//! ended), `room.scheduled_start` / `room.scheduled_end` (when the room's
//! platform has it booked) and `room.zone`, use `time_of_day(t)` in the
//! room's zone and `timestamp("2027-03-29T09:00", zone)` for a wall-clock
//! time in a zone, and handle `on_session_start(s)` / `on_session_end(s)`.
//! A session is a map: `title`, `start`, `end` (UNIX seconds),
//! `description`, `location`.
//!
//! [`SessionClock`] turns the schedule's starts and ends into handler calls
//! on the rules' own timer machinery: the room asks `next_timer()` when to
//! wake and `fire_timers()` delivers what is due, sessions and timers in
//! time order. Only starts and ends that happen while the rules run are
//! delivered: a session already running when they begin shows in
//! `room.session` (rules look at it in `on_connect`), and one that the
//! room slept through entirely does not start late.

use std::cell::Cell;
use std::collections::VecDeque;
use std::sync::Arc;

use rhai::{Dynamic, Engine, EvalAltResult, ImmutableString, Map};

use super::api::{RoomView, documented_getter, with_call};
use crate::clock::{self, Zone};
use crate::timetable::{Boundary, PlatformTimes, RoomSchedule, Session};

type ScriptResult<T> = Result<T, Box<EvalAltResult>>;

/// Delivers a schedule's session starts and ends, each once, in order.
pub(crate) struct SessionClock {
    room: Arc<RoomSchedule>,
    /// Every start and end up to this time has been taken.
    taken_until: f64,
    /// Those at `taken_until` not yet delivered.
    pending: VecDeque<(Boundary, Session)>,
    /// The next start or end after `taken_until`, for the schedule version
    /// it was worked out for: asked before every event, so kept.
    next: Cell<Option<(u64, Option<f64>)>>,
}

impl SessionClock {
    /// Delivers the starts and ends after `now`.
    pub(crate) fn new(room: RoomSchedule, now: f64) -> SessionClock {
        SessionClock {
            room: Arc::new(room),
            taken_until: now,
            pending: VecDeque::new(),
            next: Cell::new(None),
        }
    }

    /// The room's zone and schedule, for handler calls.
    pub(crate) fn room(&self) -> &Arc<RoomSchedule> {
        &self.room
    }

    /// When the next start or end is due.
    pub(crate) fn next_due(&self) -> Option<f64> {
        if !self.pending.is_empty() {
            return Some(self.taken_until);
        }
        let version = self.room.schedule.version();
        if let Some((known, due)) = self.next.get() {
            if known == version {
                return due;
            }
        }
        let due = self.room.schedule.get().next_boundary(self.taken_until);
        self.next.set(Some((version, due)));
        due
    }

    /// The next start or end due at or before `now`. A start whose session
    /// is already over by `now` (the room slept through it) is passed over.
    pub(crate) fn pop_due(&mut self, now: f64) -> Option<(Boundary, Session)> {
        loop {
            if let Some(due) = self.pending.pop_front() {
                return Some(due);
            }
            let at = self.next_due().filter(|at| *at <= now)?;
            self.taken_until = at;
            self.next.set(None);
            self.pending = self
                .room
                .schedule
                .get()
                .boundaries_at(at)
                .into_iter()
                .filter(|(boundary, session)| *boundary == Boundary::End || session.end > now)
                .collect();
        }
    }
}

/// A session as a script value.
pub(crate) fn session_map(session: &Session) -> Dynamic {
    let mut map = Map::new();
    map.insert("title".into(), session.title.clone().into());
    map.insert("start".into(), session.start.into());
    map.insert("end".into(), session.end.into());
    map.insert("description".into(), session.description.clone().into());
    map.insert("location".into(), session.location.clone().into());
    Dynamic::from_map(map)
}

/// The room's zone, or the machine's where the room has none set up (a
/// benchmark or a replay).
fn room_zone() -> ScriptResult<Zone> {
    with_call(|call| call.schedule.as_ref().map(|room| room.zone.clone()))
        .map(|zone| zone.unwrap_or_else(Zone::system))
}

/// Registers the schedule and zone API.
pub(crate) fn register(engine: &mut Engine) {
    engine.register_get("session", |_: &mut RoomView| {
        with_call(|call| {
            call.schedule
                .as_ref()
                .and_then(|room| room.schedule.get().current(call.now).map(session_map))
                .unwrap_or(Dynamic::UNIT)
        })
    });
    engine.register_fn("next_session", |_: &mut RoomView| {
        with_call(|call| {
            call.schedule
                .as_ref()
                .and_then(|room| room.schedule.get().next(call.now).map(session_map))
                .unwrap_or(Dynamic::UNIT)
        })
    });
    engine.register_fn("previous_session", |_: &mut RoomView| {
        with_call(|call| {
            call.schedule
                .as_ref()
                .and_then(|room| room.schedule.get().previous(call.now).map(session_map))
                .unwrap_or(Dynamic::UNIT)
        })
    });
    type Read = fn(PlatformTimes) -> Option<f64>;
    let times: [(&str, &str, Read); 2] = [
        (
            "scheduled_start",
            "When the room's platform has it booked to start (UNIX seconds), or () when it does not say.",
            |times| Some(times.start),
        ),
        (
            "scheduled_end",
            "When the room's platform has it booked to end (UNIX seconds), or () when it does not say.",
            |times| times.end,
        ),
    ];
    for (name, doc, read) in times {
        documented_getter(name, doc).register_into_engine(engine, move |_: &mut RoomView| {
            with_call(|call| {
                call.schedule
                    .as_ref()
                    .and_then(|room| room.schedule.get().platform_times())
                    .and_then(read)
                    .map_or(Dynamic::UNIT, Dynamic::from)
            })
        });
    }
    engine.register_get(
        "zone",
        |_: &mut RoomView| -> ScriptResult<ImmutableString> { Ok(room_zone()?.name().into()) },
    );
    engine.register_fn("time_of_day", |at: f64| -> ScriptResult<String> {
        room_zone()?
            .time_of_day(at)
            .map_err(|err| err.to_string().into())
    });
    engine.register_fn("time_of_day", |at: i64| -> ScriptResult<String> {
        room_zone()?
            .time_of_day(at as f64)
            .map_err(|err| err.to_string().into())
    });
    engine.register_fn(
        "timestamp",
        |text: ImmutableString, zone: ImmutableString| -> ScriptResult<f64> {
            let zone = Zone::parse(&zone).map_err(|err| err.to_string())?;
            clock::parse_local(&text, &zone).map_err(|err| err.to_string().into())
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timetable::TIMETABLE;

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

    fn taken(clock: &mut SessionClock, now: f64) -> Vec<String> {
        std::iter::from_fn(|| clock.pop_due(now))
            .map(|(boundary, s)| format!("{boundary:?} {}", s.title))
            .collect()
    }

    #[test]
    fn starts_and_ends_come_once_in_order_and_follow_updates() {
        let room = RoomSchedule::new(Zone::utc());
        room.schedule.set_source(
            TIMETABLE,
            vec![session("a", 10.0, 20.0), session("b", 20.0, 30.0)],
        );
        let mut clock = SessionClock::new(room.clone(), 0.0);
        assert_eq!(clock.next_due(), Some(10.0));
        assert_eq!(taken(&mut clock, 10.0), ["Start a"]);
        assert!(taken(&mut clock, 10.0).is_empty(), "each only once");
        assert_eq!(clock.next_due(), Some(20.0));
        assert_eq!(taken(&mut clock, 20.0), ["End a", "Start b"]);
        // A session added later is picked up at once.
        room.schedule.set_source(
            TIMETABLE,
            vec![
                session("a", 10.0, 20.0),
                session("b", 20.0, 30.0),
                session("c", 25.0, 40.0),
            ],
        );
        assert_eq!(clock.next_due(), Some(25.0));
        assert_eq!(taken(&mut clock, 30.0), ["Start c", "End b"]);
    }

    #[test]
    fn a_session_slept_through_does_not_start_late() {
        let room = RoomSchedule::new(Zone::utc());
        room.schedule.set_source(
            TIMETABLE,
            vec![session("missed", 10.0, 20.0), session("late", 30.0, 60.0)],
        );
        let mut clock = SessionClock::new(room, 0.0);
        assert_eq!(taken(&mut clock, 40.0), ["End missed", "Start late"]);
        assert_eq!(clock.next_due(), Some(60.0));
    }
}
