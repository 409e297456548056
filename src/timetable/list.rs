//! `usher timetable`: a calendar's sessions, or every room's, one per line;
//! and the timetable half of `usher check -c`.
//!
//! ```console
//! $ usher timetable examples/physics-101.ics --from 2027-03-22 --days 14
//! 2027-03-22T09:00:00+01:00 2027-03-22T10:30:00+01:00 Physics 101
//! 2027-04-05T09:00:00+02:00 2027-04-05T10:30:00+02:00 Physics 101
//! ```

use std::path::Path;

use jiff::Timestamp;
use jiff::civil::Date;

use super::config::{ScheduleSettings, Source};
use super::fetch::default_cache_dir;
use super::fetch::read_file;
use super::keeper::{Keeper, Refreshed, TimetableError};
use super::parse::{Calendar, CalendarError, parse};
use super::schedule::Session;
use super::sessions::sessions;
use crate::clock::{ClockError, Zone, from_timestamp};
use crate::config::Config;

/// Why sessions could not be listed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ListError {
    /// The calendar cannot be used.
    #[error(transparent)]
    Timetable(#[from] TimetableError),
    /// The file cannot be read or used.
    #[error("{0}")]
    File(String),
    /// `--zone` or `--from` cannot be read.
    #[error(transparent)]
    Clock(#[from] ClockError),
    /// `--from` is not a date.
    #[error("--from {0:?} is not a date; write it like 2027-03-29")]
    NotADate(String),
}

/// The days to list: from the start of `from` (today if not given) in
/// `zone`, for `days` calendar days.
pub fn window(zone: &Zone, from: Option<&str>, days: u32) -> Result<(f64, f64), ListError> {
    let first: Date = match from {
        Some(text) => text
            .trim()
            .parse()
            .map_err(|_| ListError::NotADate(text.to_owned()))?,
        None => Timestamp::now()
            .to_zoned_datetime(zone.time_zone().clone())
            .date(),
    };
    let last = first
        .checked_add(jiff::Span::new().days(i64::from(days)))
        .map_err(|_| ListError::NotADate(format!("{first} + {days} days")))?;
    let midnight = |day: Date| {
        zone.instant_of(day.to_datetime(jiff::civil::Time::midnight()))
            .map(from_timestamp)
            .ok_or_else(|| ListError::NotADate(day.to_string()))
    };
    Ok((midnight(first)?, midnight(last)?))
}

/// The sessions of `calendar` that start in `[from, to)`.
pub fn starting_between(
    calendar: &Calendar,
    zone: &Zone,
    from: f64,
    to: f64,
) -> Result<Vec<Session>, CalendarError> {
    Ok(sessions(calendar, zone, from, to)?
        .into_iter()
        .filter(|session| session.start >= from)
        .collect())
}

/// `usher timetable FILE`: the lines to print, each `START END TITLE` in
/// `zone` (default: the calendar's own, else the machine's).
pub fn file(
    path: &Path,
    zone: Option<&str>,
    from: Option<&str>,
    days: u32,
) -> Result<Vec<String>, ListError> {
    let source = path.display().to_string();
    let text = read_file(path).map_err(|err| ListError::File(format!("{source}: {err}")))?;
    let calendar = parse(&text).map_err(|err| ListError::File(err.describe(&source)))?;
    let zone = match zone {
        Some(name) => Zone::parse(name)?,
        None => calendar.zone.clone().unwrap_or_else(Zone::system),
    };
    let (start, end) = window(&zone, from, days)?;
    let found = starting_between(&calendar, &zone, start, end)
        .map_err(|err| ListError::File(err.describe(&source)))?;
    Ok(found.iter().map(|session| session.line(&zone)).collect())
}

/// Reads a room's timetable as `usher run` would, fetching a feed now
/// (its copy on disk stands in when the feed cannot be reached).
pub async fn room_calendar(
    room: &str,
    settings: &ScheduleSettings,
    cache_dir: Option<&Path>,
) -> Result<(Option<Calendar>, Option<TimetableError>), TimetableError> {
    let (_, keeper) = Keeper::open(room, settings, cache_dir)?;
    let Some(mut keeper) = keeper else {
        return Ok((None, None));
    };
    let unreachable = match settings.timetable.as_ref().map(|t| &t.source) {
        Some(Source::Url(_)) => match keeper.refresh().await {
            Ok(Refreshed::Updated | Refreshed::Unchanged) => None,
            Err(err @ TimetableError::Unavailable { .. }) => Some(err),
            Err(err) => return Err(err),
        },
        _ => None,
    };
    Ok((keeper.calendar().cloned(), unreachable))
}

/// `usher timetable -c CONFIG`: every room's sessions, each line led by the
/// room's alias, in `zone` (default: each room's), and the errors, each
/// naming its room. A feed that cannot be reached is an error, and is
/// listed from its copy on disk.
pub async fn rooms(
    config: &Config,
    zone: Option<&str>,
    from: Option<&str>,
    days: u32,
) -> (Vec<String>, Vec<String>) {
    let cache = default_cache_dir();
    let mut lines = Vec::new();
    let mut errors = Vec::new();
    for room in &config.rooms {
        let settings = room.schedule();
        let listed = async {
            let (calendar, unreachable) =
                room_calendar(&room.alias, &settings, Some(&cache)).await?;
            if let Some(err) = unreachable {
                errors.push(format!("{err}; listing the copy kept on disk, if any"));
            }
            let zone = match zone {
                Some(name) => Zone::parse(name)?,
                None => settings.zone(),
            };
            let (start, end) = window(&zone, from, days)?;
            let Some(calendar) = calendar else {
                return Ok(Vec::new());
            };
            let found = starting_between(&calendar, &zone, start, end)
                .map_err(|err| ListError::File(err.describe(&room.alias)))?;
            Ok::<_, ListError>(
                found
                    .iter()
                    .map(|s| format!("{} {}", room.alias, s.line(&zone)))
                    .collect(),
            )
        };
        match listed.await {
            Ok(found) => lines.extend(found),
            Err(err) => errors.push(err.to_string()),
        }
    }
    (lines, errors)
}

/// `usher check -c`: reads every room's timetable as `usher run` would.
/// `Ok` holds warnings (a feed that cannot be reached now: the daemon keeps
/// trying); `Err` every timetable that cannot be used.
pub async fn check(config: &Config) -> Result<Vec<String>, Vec<String>> {
    let cache = default_cache_dir();
    let mut warnings = Vec::new();
    let mut errors = Vec::new();
    for room in config.rooms.iter().filter(|room| room.timetable.is_some()) {
        match room_calendar(&room.alias, &room.schedule(), Some(&cache)).await {
            Ok((_, Some(unreachable))) => {
                warnings.push(format!("{unreachable}; usher run keeps trying"))
            }
            Ok(_) => {}
            Err(err) => errors.push(err.to_string()),
        }
    }
    if errors.is_empty() {
        Ok(warnings)
    } else {
        Err(errors)
    }
}
