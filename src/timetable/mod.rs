//! Timetables: the sessions a room runs on, from an iCalendar file or feed.
//!
//! - [`parse`]: an `.ics` text into events, with errors at their line.
//! - [`zones`]: the zones its `TZID`s name (IANA names and VTIMEZONEs).
//! - [`sessions`]: events into the sessions of a window of time
//!   (recurrence, exceptions, moved and cancelled occurrences).
//! - [`schedule`]: a room's sessions from every source, shared with its rules.
//! - [`config`]: the `timetable:` and `zone:` settings of a room.
//! - [`fetch`]: a timetable's text from a file or an HTTPS feed, cached.
//! - [`keeper`]: reading a room's timetable again every `refresh`, keeping
//!   the last good copy.
//! - [`list`]: `usher timetable` and the timetable half of `usher check`.

pub mod config;
pub mod fetch;
pub mod keeper;
pub mod list;
pub mod parse;
pub mod schedule;
pub mod sessions;
mod zones;

pub use config::{ScheduleSettings, Source, TimetableConfig};
pub use keeper::{Keeper, Refreshed, TimetableError};
pub use parse::{Calendar, CalendarError, Problem, parse};
pub use schedule::{
    Boundary, PLATFORM, PlatformTimes, RoomSchedule, Schedule, Session, SharedSchedule, TIMETABLE,
};
pub use sessions::sessions;

#[cfg(test)]
mod tests;
