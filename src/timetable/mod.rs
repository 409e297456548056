//! Timetables: the sessions a room runs on, from an iCalendar file or feed.
//!
//! - [`parse`]: an `.ics` text into events, with errors at their line.
//! - [`zones`]: the zones its `TZID`s name (IANA names and VTIMEZONEs).
//! - [`sessions`]: events into the sessions of a window of time
//!   (recurrence, exceptions, moved and cancelled occurrences).
//! - [`schedule`]: a room's sessions from every source, shared with its rules.

pub mod parse;
pub mod schedule;
pub mod sessions;
mod zones;

pub use parse::{Calendar, CalendarError, Problem, parse};
pub use schedule::{Boundary, RoomSchedule, Schedule, Session, SharedSchedule, TIMETABLE};
pub use sessions::sessions;

#[cfg(test)]
mod tests;
