//! Reading an iCalendar (RFC 5545) file into the events usher needs.
//!
//! The `icalendar` crate parses the text into components and properties;
//! this module makes them into [`Event`]s with their times resolved to
//! zones ([`super::zones`]), and points at the line of anything it cannot
//! use. Before the parser runs, a quick pass over the lines checks that each
//! is a `NAME:value` content line and that every `BEGIN` has its `END`, so
//! the common mistakes are reported at their own line (the parser would
//! report them at the start of the component).

use icalendar::parser::{Component, Property, read_calendar};
use jiff::civil::{Date, DateTime};
use jiff::{Span, Timestamp};

use super::zones::ZoneResolver;
use crate::clock::Zone;

/// A calendar that cannot be used: every problem found, each at its line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.describe(""))]
pub struct CalendarError {
    /// What is wrong, in file order.
    pub problems: Vec<Problem>,
}

impl CalendarError {
    fn one(line: Option<usize>, message: impl Into<String>) -> CalendarError {
        CalendarError {
            problems: vec![Problem::new(line, message)],
        }
    }

    /// Every problem on a line of its own, each led by `source` and the
    /// line: `hall-a.ics:12: …`.
    pub fn describe(&self, source: &str) -> String {
        let lines: Vec<String> = self
            .problems
            .iter()
            .map(|problem| match (source.is_empty(), problem.line) {
                (true, Some(line)) => format!("line {line}: {}", problem.message),
                (true, None) => problem.message.clone(),
                (false, Some(line)) => format!("{source}:{line}: {}", problem.message),
                (false, None) => format!("{source}: {}", problem.message),
            })
            .collect();
        lines.join("\n")
    }
}

/// One thing wrong in a calendar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The 1-based line in the file, where known.
    pub line: Option<usize>,
    /// What is wrong and, where possible, what to do.
    pub message: String,
}

impl Problem {
    pub(crate) fn new(line: Option<usize>, message: impl Into<String>) -> Problem {
        Problem {
            line,
            message: message.into(),
        }
    }
}

/// The events of a calendar, with the zone the calendar is written in.
#[derive(Debug, Clone, Default)]
pub struct Calendar {
    /// Every VEVENT, in file order.
    pub events: Vec<Event>,
    /// The calendar's own zone: `X-WR-TIMEZONE`, else that of the first
    /// event's start, else that of the first VTIMEZONE.
    pub zone: Option<Zone>,
}

/// A point in time as a calendar writes it.
#[derive(Debug, Clone, PartialEq)]
pub enum When {
    /// UTC (`…Z`).
    Instant(Timestamp),
    /// A wall-clock time in a zone (`TZID=…`).
    Local(DateTime, Zone),
    /// A wall-clock time in no zone: it is taken in the room's zone.
    Floating(DateTime),
    /// A whole day (`VALUE=DATE`).
    Date(Date),
}

/// How long an event lasts.
#[derive(Debug, Clone)]
pub enum End {
    /// Until `DTEND`.
    At(When),
    /// For a `DURATION` (days are calendar days, hours exact ones).
    Lasting(Span),
    /// Neither was given: it takes no time.
    Instant,
}

/// One VEVENT.
#[derive(Debug, Clone)]
pub struct Event {
    /// `UID`, which ties a moved or cancelled occurrence to its series.
    pub uid: String,
    /// The line of its `BEGIN:VEVENT`.
    pub line: Option<usize>,
    /// `SUMMARY`, if given.
    pub title: Option<String>,
    /// `DESCRIPTION`, if given.
    pub description: Option<String>,
    /// `LOCATION`, if given.
    pub location: Option<String>,
    /// `DTSTART`.
    pub start: When,
    /// `DTEND` or `DURATION`.
    pub end: End,
    /// Each `RRULE` and its line.
    pub rrules: Vec<(String, Option<usize>)>,
    /// `RDATE`s: extra occurrences, with their own length for periods.
    pub rdates: Vec<(When, Option<Span>)>,
    /// `EXDATE`s: occurrences taken out.
    pub exdates: Vec<When>,
    /// `RECURRENCE-ID`: the occurrence of the series this one replaces.
    pub recurrence_id: Option<When>,
    /// `STATUS:CANCELLED`.
    pub cancelled: bool,
}

impl Event {
    /// True for an all-day event (`DTSTART;VALUE=DATE`): usher ignores them.
    pub fn all_day(&self) -> bool {
        matches!(self.start, When::Date(_))
    }
}

/// The unfolded content lines of a file, each with the line it starts on.
struct Lines {
    lines: Vec<(usize, String)>,
}

impl Lines {
    /// Unfolds (RFC 5545 §3.1: a line starting with a space or tab
    /// continues the previous one) and drops empty lines.
    fn unfold(text: &str) -> Lines {
        let mut lines: Vec<(usize, String)> = Vec::new();
        for (index, raw) in text.split('\n').enumerate() {
            let raw = raw.strip_suffix('\r').unwrap_or(raw);
            match (raw.strip_prefix([' ', '\t']), lines.last_mut()) {
                (Some(rest), Some((_, previous))) => previous.push_str(rest),
                _ if raw.trim().is_empty() => {}
                _ => lines.push((index + 1, raw.to_owned())),
            }
        }
        Lines { lines }
    }

    /// The file line of unfolded line `index` (0-based).
    fn file_line(&self, index: usize) -> Option<usize> {
        self.lines.get(index).map(|(line, _)| *line)
    }

    /// The text handed to the parser: one content line per line.
    fn joined(&self) -> String {
        let mut text = String::new();
        for (_, line) in &self.lines {
            text.push_str(line);
            text.push('\n');
        }
        text
    }

    /// Checks the shape of every line and the nesting of components, and
    /// returns the lines of each `BEGIN:VEVENT` and `BEGIN:VTIMEZONE` in
    /// order.
    fn check_structure(&self) -> Result<Openings, CalendarError> {
        let mut problems = Vec::new();
        let mut open: Vec<(String, usize)> = Vec::new();
        let mut openings = Openings::default();
        for (line, text) in &self.lines {
            let line = *line;
            let name_end = text.find([':', ';']).unwrap_or(text.len());
            let name = &text[..name_end];
            let well_formed = !name.is_empty()
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && text.contains(':');
            if !well_formed {
                problems.push(Problem::new(
                    Some(line),
                    format!(
                        "{:?} is not an iCalendar line; each line is NAME:value, like \"SUMMARY:Physics 101\"",
                        shorten(text)
                    ),
                ));
                continue;
            }
            let value = text.split_once(':').map_or("", |(_, value)| value).trim();
            if name.eq_ignore_ascii_case("BEGIN") {
                let component = value.to_ascii_uppercase();
                if open.is_empty() && component != "VCALENDAR" {
                    problems.push(Problem::new(
                        Some(line),
                        format!("the file must begin with BEGIN:VCALENDAR, not BEGIN:{value}"),
                    ));
                }
                match component.as_str() {
                    "VEVENT" => openings.events.push(line),
                    "VTIMEZONE" => openings.zones.push(line),
                    _ => {}
                }
                open.push((component, line));
            } else if name.eq_ignore_ascii_case("END") {
                match open
                    .iter()
                    .rposition(|(component, _)| component.eq_ignore_ascii_case(value))
                {
                    Some(depth) => {
                        for (component, begun) in open.drain(depth..).skip(1) {
                            problems.push(Problem::new(
                                Some(begun),
                                format!("BEGIN:{component} has no END:{component} before END:{value} (line {line})"),
                            ));
                        }
                    }
                    None => problems.push(Problem::new(
                        Some(line),
                        format!(
                            "END:{value} closes nothing{}",
                            open.last()
                                .map(|(component, begun)| format!(
                                    "; BEGIN:{component} (line {begun}) is open"
                                ))
                                .unwrap_or_default()
                        ),
                    )),
                }
            } else if open.is_empty() {
                problems.push(Problem::new(
                    Some(line),
                    format!("{name} is outside BEGIN:VCALENDAR … END:VCALENDAR"),
                ));
            }
        }
        for (component, begun) in open {
            problems.push(Problem::new(
                Some(begun),
                format!("BEGIN:{component} has no END:{component}"),
            ));
        }
        if self.lines.is_empty() {
            problems.push(Problem::new(
                None,
                "the calendar is empty; expected BEGIN:VCALENDAR",
            ));
        }
        if problems.is_empty() {
            Ok(openings)
        } else {
            Err(CalendarError { problems })
        }
    }
}

/// Where components begin, in file order.
#[derive(Default)]
struct Openings {
    events: Vec<usize>,
    zones: Vec<usize>,
}

fn shorten(text: &str) -> String {
    match text.char_indices().nth(60) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// Reads an iCalendar text.
pub fn parse(text: &str) -> Result<Calendar, CalendarError> {
    let lines = Lines::unfold(text);
    let openings = lines.check_structure()?;
    let joined = lines.joined();
    let parsed = read_calendar(&joined).map_err(|err| parser_error(&lines, &err))?;

    let mut zones = ZoneResolver::default();
    let mut zone_lines = openings.zones.iter();
    for component in &parsed.components {
        if component.name.as_str().eq_ignore_ascii_case("VTIMEZONE") {
            zones.add(component, zone_lines.next().copied());
        }
    }
    let mut problems = Vec::new();
    let mut events = Vec::new();
    let mut event_lines = openings.events.iter();
    for component in &parsed.components {
        if !component.name.as_str().eq_ignore_ascii_case("VEVENT") {
            continue;
        }
        let line = event_lines.next().copied();
        let mut reader = EventReader {
            component,
            lines: &lines,
            begins: line,
            zones: &mut zones,
            problems: &mut problems,
        };
        if let Some(event) = reader.read() {
            events.push(event);
        }
    }
    if !problems.is_empty() {
        return Err(CalendarError { problems });
    }
    let declared = parsed
        .properties
        .iter()
        .find(|p| p.name.as_str().eq_ignore_ascii_case("X-WR-TIMEZONE"))
        .and_then(|p| zones.resolve(p.val.as_str()).ok());
    let first_event_zone = events.iter().find_map(|event| match &event.start {
        When::Local(_, zone) => Some(zone.clone()),
        _ => None,
    });
    let zone = declared
        .or(first_event_zone)
        .or_else(|| zones.first_defined());
    Ok(Calendar { events, zone })
}

/// The parser's error, at the file line it names.
fn parser_error(lines: &Lines, error: &str) -> CalendarError {
    let line = error
        .split("at line ")
        .nth(1)
        .and_then(|rest| {
            rest.split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse::<usize>()
                .ok()
        })
        .and_then(|unfolded| lines.file_line(unfolded.saturating_sub(1)));
    let detail = error
        .lines()
        .find(|text| text.contains(", in "))
        .and_then(|text| text.split(", in ").nth(1))
        .unwrap_or("unreadable")
        .trim_end_matches(':');
    CalendarError::one(
        line,
        format!("the calendar cannot be parsed here ({detail})"),
    )
}

/// Reads one VEVENT, noting problems rather than stopping at the first.
struct EventReader<'a, 'c> {
    component: &'a Component<'c>,
    lines: &'a Lines,
    begins: Option<usize>,
    zones: &'a mut ZoneResolver,
    problems: &'a mut Vec<Problem>,
}

impl<'a, 'c> EventReader<'a, 'c> {
    fn read(&mut self) -> Option<Event> {
        let Some(start) = self.property("DTSTART") else {
            self.problem(None, "this event has no DTSTART; give it a start time");
            return None;
        };
        let start = self.when(start, "DTSTART")?;
        let uid = self
            .property("UID")
            .map(|p| p.val.as_str().to_owned())
            .unwrap_or_else(|| format!("line-{}", self.begins.unwrap_or(0)));
        let end = match (self.property("DTEND"), self.property("DURATION")) {
            (Some(end), _) => End::At(self.when(end, "DTEND")?),
            (None, Some(duration)) => End::Lasting(self.duration(duration, "DURATION")?),
            (None, None) => End::Instant,
        };
        let mut rrules = Vec::new();
        let mut rdates = Vec::new();
        let mut exdates = Vec::new();
        for property in &self.component.properties {
            let name = property.name.as_str().to_ascii_uppercase();
            match name.as_str() {
                "RRULE" => rrules.push((
                    property.val.as_str().to_owned(),
                    self.line_of(property.name.as_str()),
                )),
                "RDATE" => rdates.extend(self.date_list(property, "RDATE")),
                "EXDATE" => exdates.extend(
                    self.date_list(property, "EXDATE")
                        .into_iter()
                        .map(|(when, _)| when),
                ),
                _ => {}
            }
        }
        let recurrence_id = match self.property("RECURRENCE-ID") {
            Some(property) => Some(self.when(property, "RECURRENCE-ID")?),
            None => None,
        };
        let text = |name| self.property(name).map(|p| p.val.as_str().to_owned());

        Some(Event {
            uid,
            line: self.begins,
            title: text("SUMMARY"),
            description: text("DESCRIPTION"),
            location: text("LOCATION"),
            cancelled: text("STATUS").is_some_and(|s| s.trim().eq_ignore_ascii_case("CANCELLED")),
            start,
            end,
            rrules,
            rdates,
            exdates,
            recurrence_id,
        })
    }

    fn property(&self, name: &str) -> Option<&'a Property<'c>> {
        let component: &'a Component<'c> = self.component;
        component
            .properties
            .iter()
            .find(|p| p.name.as_str().eq_ignore_ascii_case(name))
    }

    fn param<'p>(property: &'p Property<'_>, key: &str) -> Option<&'p str> {
        property
            .params
            .iter()
            .find(|param| param.key.as_str().eq_ignore_ascii_case(key))
            .and_then(|param| param.val.as_ref())
            .map(|value| value.as_str().trim_matches('"'))
    }

    /// The file line of this event's property `name`.
    fn line_of(&self, name: &str) -> Option<usize> {
        let begins = self.begins?;
        self.lines
            .lines
            .iter()
            .skip_while(|(line, _)| *line < begins)
            .take_while(|(_, text)| !text.eq_ignore_ascii_case("END:VEVENT"))
            .find(|(_, text)| {
                text.get(..name.len())
                    .is_some_and(|head| head.eq_ignore_ascii_case(name))
                    && text[name.len()..].starts_with([':', ';'])
            })
            .map(|(line, _)| *line)
            .or(Some(begins))
    }

    fn problem(&mut self, property: Option<&str>, message: impl Into<String>) {
        let line = match property {
            Some(name) => self.line_of(name),
            None => self.begins,
        };
        self.problems.push(Problem::new(line, message));
    }

    /// A DATE or DATE-TIME property, in its zone.
    fn when(&mut self, property: &Property<'_>, name: &str) -> Option<When> {
        let tzid = Self::param(property, "TZID").map(str::to_owned);
        let date_only =
            Self::param(property, "VALUE").is_some_and(|v| v.eq_ignore_ascii_case("DATE"));
        self.value(
            property.val.as_str().trim(),
            tzid.as_deref(),
            date_only,
            name,
        )
    }

    fn value(
        &mut self,
        text: &str,
        tzid: Option<&str>,
        date_only: bool,
        name: &str,
    ) -> Option<When> {
        let parsed = match parse_date_time(text) {
            Some(parsed) => parsed,
            None => {
                self.problem(
                    Some(name),
                    format!(
                        "{name} {text:?} is not a date or date-time; write it like 20270329T090000 (with TZID=…), 20270329T070000Z or 20270329"
                    ),
                );
                return None;
            }
        };
        match (parsed, tzid) {
            (Written::Date(date), _) => Some(When::Date(date)),
            (Written::Utc(at), _) => Some(When::Instant(at)),
            (Written::Local(civil), _) if date_only => Some(When::Date(civil.date())),
            (Written::Local(civil), None) => Some(When::Floating(civil)),
            (Written::Local(civil), Some(tzid)) => match self.zones.resolve(tzid) {
                Ok(zone) => Some(When::Local(civil, zone)),
                Err(why) => {
                    self.problem(Some(name), format!("{name}: {why}"));
                    None
                }
            },
        }
    }

    /// The values of an RDATE or EXDATE (comma-separated; periods allowed
    /// in RDATE).
    fn date_list(&mut self, property: &Property<'_>, name: &str) -> Vec<(When, Option<Span>)> {
        let tzid = Self::param(property, "TZID").map(str::to_owned);
        let kind = Self::param(property, "VALUE").map(str::to_ascii_uppercase);
        let mut values = Vec::new();
        for item in property
            .val
            .as_str()
            .split(',')
            .map(str::trim)
            .filter(|i| !i.is_empty())
        {
            let (at, length) = match item.split_once('/') {
                Some((at, length)) => (at, Some(length)),
                None => (item, None),
            };
            let Some(when) = self.value(at, tzid.as_deref(), kind.as_deref() == Some("DATE"), name)
            else {
                continue;
            };
            let length = match length {
                None => None,
                Some(length) if length.starts_with(['P', 'p', '+', '-']) => self.span(length, name),
                Some(until) => {
                    let Some(end) = self.value(until, tzid.as_deref(), false, name) else {
                        continue;
                    };
                    period_length(&when, &end)
                }
            };
            values.push((when, length));
        }
        values
    }

    fn duration(&mut self, property: &Property<'_>, name: &str) -> Option<Span> {
        self.span(property.val.as_str().trim(), name)
    }

    fn span(&mut self, text: &str, name: &str) -> Option<Span> {
        match text.parse::<Span>() {
            Ok(span) if !span.is_negative() => Some(span),
            _ => {
                self.problem(
                    Some(name),
                    format!("{name} {text:?} is not a duration; write it like PT1H30M or P1D"),
                );
                None
            }
        }
    }
}

/// How long a period `start/end` lasts, when both are instants.
fn period_length(start: &When, end: &When) -> Option<Span> {
    let instant = |when: &When| match when {
        When::Instant(at) => Some(*at),
        When::Local(civil, zone) => zone.instant_of(*civil),
        _ => None,
    };
    let seconds = (instant(end)? - instant(start)?).as_secs();
    (seconds >= 0).then(|| Span::new().seconds(seconds))
}

/// A date or date-time value without a `TZID`: `20270329`,
/// `20270329T090000` (floating) or `20270329T070000Z`.
pub(crate) fn parse_date_time_value(text: &str) -> Option<When> {
    Some(match parse_date_time(text.trim())? {
        Written::Date(date) => When::Date(date),
        Written::Local(civil) => When::Floating(civil),
        Written::Utc(at) => When::Instant(at),
    })
}

/// A date or date-time as written, before its zone is known.
enum Written {
    Date(Date),
    Local(DateTime),
    Utc(Timestamp),
}

/// `20270329`, `20270329T090000` or `20270329T070000Z`.
fn parse_date_time(text: &str) -> Option<Written> {
    let digits = |range: std::ops::Range<usize>| -> Option<i8> {
        let part = text.get(range)?;
        part.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| part.parse().ok())
            .flatten()
    };
    let year: i16 = text
        .get(0..4)
        .filter(|part| part.bytes().all(|b| b.is_ascii_digit()))?
        .parse()
        .ok()?;
    let (month, day) = (digits(4..6)?, digits(6..8)?);
    if text.len() == 8 {
        return Date::new(year, month, day).ok().map(Written::Date);
    }
    if !matches!(text.len(), 15 | 16) || !text.as_bytes()[8].eq_ignore_ascii_case(&b'T') {
        return None;
    }
    // A leap second (:60) is read as the second before it.
    let second = digits(13..15)?.min(59);
    let civil = DateTime::new(year, month, day, digits(9..11)?, digits(11..13)?, second, 0).ok()?;
    match text.as_bytes().get(15) {
        None => Some(Written::Local(civil)),
        Some(b'Z' | b'z') => Zone::utc().instant_of(civil).map(Written::Utc),
        Some(_) => None,
    }
}
