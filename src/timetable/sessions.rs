//! From a calendar's events to the sessions in a window of time.
//!
//! Each series is expanded as RFC 5545 says: its `DTSTART`, the occurrences
//! of its `RRULE`s (by the `rrule` crate) and its `RDATE`s, less its
//! `EXDATE`s and the occurrences that a `RECURRENCE-ID` event moves or
//! cancels. Recurrence runs on wall-clock time in the event's zone (a weekly
//! 09:00 lecture stays at 09:00 when the clocks change) and each occurrence
//! becomes an instant through the zone at the end. `rrule` is given the
//! wall-clock times as if they were UTC, so it never meets a zone it does
//! not know (a VTIMEZONE's) nor a daylight saving change. All-day events and
//! cancelled ones make no sessions.

use std::collections::{HashMap, HashSet};

use chrono::{Datelike, NaiveDate, TimeZone as _, Timelike};
use jiff::civil::{Date, DateTime};
use jiff::{Span, Timestamp};
use rrule::{RRule, Unvalidated};

use super::parse::{Calendar, CalendarError, End, Event, Problem, When, parse_date_time_value};
use super::schedule::Session;
use crate::clock::{Zone, from_timestamp, to_timestamp};

/// How many occurrences one series may run through before the window
/// ends: enough for a daily event since 1900, and a bound on the work a
/// calendar can ask for.
const MAX_OCCURRENCES: usize = 50_000;

/// The sessions of `calendar` that overlap `[from, to)` (UNIX seconds), in
/// order of start. Times written without a zone are taken in `floating`.
pub fn sessions(
    calendar: &Calendar,
    floating: &Zone,
    from: f64,
    to: f64,
) -> Result<Vec<Session>, CalendarError> {
    let window = Window {
        from: to_timestamp(from).map_err(|err| one_problem(None, err.to_string()))?,
        to: to_timestamp(to).map_err(|err| one_problem(None, err.to_string()))?,
    };
    let mut series: HashMap<&str, &Event> = HashMap::new();
    let mut overrides: HashMap<&str, Vec<&Event>> = HashMap::new();
    for event in &calendar.events {
        if event.recurrence_id.is_some() {
            overrides.entry(event.uid.as_str()).or_default().push(event);
        } else {
            series.entry(event.uid.as_str()).or_insert(event);
        }
    }
    let mut found = Vec::new();
    let mut problems = Vec::new();
    for event in &calendar.events {
        let result = if event.recurrence_id.is_some() {
            let master = series.get(event.uid.as_str()).copied();
            occurrence_override(event, master, floating, &window, &mut found)
        } else if series
            .get(event.uid.as_str())
            .is_some_and(|first| std::ptr::eq(*first, event))
        {
            let moved = overrides
                .get(event.uid.as_str())
                .map_or(&[][..], Vec::as_slice);
            expand(event, moved, floating, &window, &mut found)
        } else {
            Err(Problem::new(
                event.line,
                format!(
                    "a second event with UID {:?} and no RECURRENCE-ID; give each series its own UID",
                    event.uid
                ),
            ))
        };
        if let Err(problem) = result {
            problems.push(problem);
        }
    }
    if !problems.is_empty() {
        return Err(CalendarError { problems });
    }
    found.sort_by(|a, b| {
        a.start
            .total_cmp(&b.start)
            .then(a.end.total_cmp(&b.end))
            .then_with(|| a.title.cmp(&b.title))
    });
    Ok(found)
}

fn one_problem(line: Option<usize>, message: String) -> CalendarError {
    CalendarError {
        problems: vec![Problem::new(line, message)],
    }
}

struct Window {
    from: Timestamp,
    to: Timestamp,
}

impl Window {
    fn overlaps(&self, start: Timestamp, end: Timestamp) -> bool {
        start < self.to && (end > self.from || (start == end && start >= self.from))
    }
}

/// How long each occurrence of a series lasts.
enum Length {
    /// `DTEND`: the same exact time for every occurrence.
    Exact(jiff::SignedDuration),
    /// `DURATION`: days are calendar days in the event's zone.
    Nominal(Span),
}

impl Length {
    fn end(&self, start: Timestamp, zone: &Zone) -> Option<Timestamp> {
        match self {
            Length::Exact(length) => start.checked_add(*length).ok(),
            Length::Nominal(span) => start
                .to_zoned_datetime(zone.time_zone().clone())
                .checked_add(*span)
                .ok()
                .map(|end| end.timestamp()),
        }
    }
}

/// The instant a calendar time stands for; `None` for a whole day.
fn instant(when: &When, floating: &Zone) -> Option<Timestamp> {
    match when {
        When::Instant(at) => Some(*at),
        When::Local(civil, zone) => zone.instant_of(*civil),
        When::Floating(civil) => floating.instant_of(*civil),
        When::Date(_) => None,
    }
}

/// The wall-clock start of an event and the zone its recurrence runs in.
fn wall_start(event: &Event, floating: &Zone) -> Option<(DateTime, Zone)> {
    match &event.start {
        When::Local(civil, zone) => Some((*civil, zone.clone())),
        When::Floating(civil) => Some((*civil, floating.clone())),
        When::Instant(at) => Some((
            at.to_zoned_datetime(jiff::tz::TimeZone::UTC).datetime(),
            Zone::utc(),
        )),
        When::Date(_) => None,
    }
}

fn length_of(event: &Event, start: Timestamp, floating: &Zone) -> Result<Length, Problem> {
    match &event.end {
        End::Instant => Ok(Length::Exact(jiff::SignedDuration::ZERO)),
        End::Lasting(span) => Ok(Length::Nominal(*span)),
        End::At(end) => {
            let end = instant(end, floating).ok_or_else(|| {
                Problem::new(
                    event.line,
                    "DTEND is a date but DTSTART a date-time; give both the same form",
                )
            })?;
            let length = end.duration_since(start);
            if length.is_negative() {
                return Err(Problem::new(event.line, "DTEND is before DTSTART"));
            }
            Ok(Length::Exact(length))
        }
    }
}

fn session(
    event: &Event,
    master: Option<&Event>,
    floating: &Zone,
    start: Timestamp,
    end: Timestamp,
) -> Session {
    let text = |field: fn(&Event) -> &Option<String>| {
        field(event)
            .clone()
            .or_else(|| master.and_then(|m| field(m).clone()))
            .unwrap_or_default()
    };
    Session {
        title: text(|e| &e.title),
        description: text(|e| &e.description),
        location: text(|e| &e.location),
        start: from_timestamp(start),
        end: from_timestamp(end),
        uid: event.uid.clone(),
        occurrence: event
            .recurrence_id
            .as_ref()
            .and_then(|id| instant(id, floating))
            .map_or_else(|| from_timestamp(start), from_timestamp),
    }
}

/// A single moved (or cancelled) occurrence of a series.
fn occurrence_override(
    event: &Event,
    master: Option<&Event>,
    floating: &Zone,
    window: &Window,
    found: &mut Vec<Session>,
) -> Result<(), Problem> {
    if event.cancelled || event.all_day() || master.is_some_and(|m| m.cancelled || m.all_day()) {
        return Ok(());
    }
    let Some(start) = instant(&event.start, floating) else {
        return Ok(());
    };
    let length = length_of(event, start, floating)?;
    let zone = wall_start(event, floating).map_or_else(Zone::utc, |(_, zone)| zone);
    let end = length.end(start, &zone).unwrap_or(start);
    if window.overlaps(start, end) {
        found.push(session(event, master, floating, start, end));
    }
    Ok(())
}

/// Every occurrence of a series in the window.
fn expand(
    event: &Event,
    moved: &[&Event],
    floating: &Zone,
    window: &Window,
    found: &mut Vec<Session>,
) -> Result<(), Problem> {
    if event.cancelled {
        return Ok(());
    }
    let Some((wall, zone)) = wall_start(event, floating) else {
        return Ok(());
    };
    let start = zone
        .instant_of(wall)
        .ok_or_else(|| Problem::new(event.line, "DTSTART is out of range"))?;
    let length = length_of(event, start, floating)?;
    let replaced: HashSet<Timestamp> = moved
        .iter()
        .filter_map(|o| {
            o.recurrence_id
                .as_ref()
                .and_then(|id| instant(id, floating))
        })
        .collect();
    let excluded_instants: HashSet<Timestamp> = event
        .exdates
        .iter()
        .filter_map(|when| instant(when, floating))
        .collect();
    let excluded_days: HashSet<Date> = event
        .exdates
        .iter()
        .filter_map(|when| match when {
            When::Date(day) => Some(*day),
            _ => None,
        })
        .collect();
    let keep = |at: Timestamp| {
        !replaced.contains(&at)
            && !excluded_instants.contains(&at)
            && !excluded_days.contains(&at.to_zoned_datetime(zone.time_zone().clone()).date())
    };
    let mut starts: Vec<(Timestamp, Option<Span>)> = vec![(start, None)];
    for (rule, line) in &event.rrules {
        for occurrence in recurrences(rule, *line, wall, &zone, window)? {
            starts.push((occurrence, None));
        }
    }
    for (rdate, period) in &event.rdates {
        if let Some(at) = instant(rdate, floating) {
            starts.push((at, *period));
        }
    }
    starts.sort_by_key(|(at, _)| *at);
    starts.dedup_by_key(|(at, _)| *at);
    for (at, period) in starts {
        if !keep(at) {
            continue;
        }
        let end = match period {
            Some(span) => Length::Nominal(span).end(at, &zone),
            None => length.end(at, &zone),
        }
        .unwrap_or(at);
        if window.overlaps(at, end) {
            found.push(session(event, None, floating, at, end));
        }
    }
    Ok(())
}

/// The instants of one `RRULE`'s occurrences, up to the window's end.
fn recurrences(
    rule: &str,
    line: Option<usize>,
    wall: DateTime,
    zone: &Zone,
    window: &Window,
) -> Result<Vec<Timestamp>, Problem> {
    let problem = |message: String| Problem::new(line, message);
    let (rule_text, until) = split_until(rule);
    let mut parsed: RRule<Unvalidated> = rule_text
        .parse()
        .map_err(|err| problem(format!("RRULE {rule:?} cannot be read: {err}")))?;
    if let Some(until) = until {
        let until_wall = until_wall_time(until, zone)
            .ok_or_else(|| problem(format!("RRULE UNTIL={until:?} is not a date or date-time")))?;
        parsed = parsed.until(
            as_rrule_time(until_wall).ok_or_else(|| problem("UNTIL is out of range".into()))?,
        );
    }
    let start = as_rrule_time(wall).ok_or_else(|| problem("DTSTART is out of range".into()))?;
    let set = parsed
        .build(start)
        .map_err(|err| problem(format!("RRULE {rule:?} cannot be used: {err}")))?
        .limit();
    let mut instants = Vec::new();
    for (count, occurrence) in set.into_iter().enumerate() {
        if count >= MAX_OCCURRENCES {
            return Err(problem(format!(
                "RRULE {rule:?} repeats more than {MAX_OCCURRENCES} times before the time usher needs; start the series later"
            )));
        }
        let Some(at) = from_rrule_time(&occurrence).and_then(|civil| zone.instant_of(civil)) else {
            continue;
        };
        if at >= window.to {
            break;
        }
        instants.push(at);
    }
    Ok(instants)
}

/// An `RRULE` without its `UNTIL`, and the `UNTIL` value if it had one.
fn split_until(rule: &str) -> (String, Option<&str>) {
    let mut until = None;
    let kept: Vec<&str> = rule
        .split(';')
        .filter(|part| match part.split_once('=') {
            Some((key, value)) if key.trim().eq_ignore_ascii_case("UNTIL") => {
                until = Some(value.trim());
                false
            }
            _ => true,
        })
        .collect();
    (kept.join(";"), until)
}

/// `UNTIL` as wall-clock time in the series' zone: a UTC time moved into
/// the zone, a local one as it is, a date as its last second.
fn until_wall_time(until: &str, zone: &Zone) -> Option<DateTime> {
    match parse_date_time_value(until)? {
        When::Instant(at) => Some(at.to_zoned_datetime(zone.time_zone().clone()).datetime()),
        When::Floating(civil) | When::Local(civil, _) => Some(civil),
        When::Date(day) => DateTime::new(day.year(), day.month(), day.day(), 23, 59, 59, 0).ok(),
    }
}

/// Wall-clock time as `rrule` takes it: a UTC time of the same reading.
fn as_rrule_time(civil: DateTime) -> Option<chrono::DateTime<rrule::Tz>> {
    let naive = NaiveDate::from_ymd_opt(
        civil.year().into(),
        civil.month() as u32,
        civil.day() as u32,
    )?
    .and_hms_opt(
        civil.hour() as u32,
        civil.minute() as u32,
        civil.second() as u32,
    )?;
    Some(rrule::Tz::UTC.from_utc_datetime(&naive))
}

/// The wall-clock time an `rrule` occurrence stands for.
fn from_rrule_time(at: &chrono::DateTime<rrule::Tz>) -> Option<DateTime> {
    let naive = at.naive_utc();
    DateTime::new(
        i16::try_from(naive.year()).ok()?,
        naive.month() as i8,
        naive.day() as i8,
        naive.hour() as i8,
        naive.minute() as i8,
        naive.second() as i8,
        0,
    )
    .ok()
}
