//! The zones a calendar's `TZID`s name: IANA names, and VTIMEZONEs.
//!
//! A `TZID` that is an IANA name (`Europe/Berlin`, or one ending in it such
//! as `/mozilla.org/20050126_1/Europe/Berlin`) is taken from the time zone
//! database, which knows every past and future change. Otherwise the
//! calendar's VTIMEZONE of that `TZID` defines it (Outlook writes
//! `W. Europe Standard Time`): its latest STANDARD and DAYLIGHT rules become
//! a POSIX TZ rule (`<STD>-1<DST>-2,M3.5.0/2,M10.5.0/3`) that jiff
//! evaluates, which is how every common VTIMEZONE is written.

use std::collections::HashMap;

use icalendar::parser::Component;
use jiff::tz::{Offset, TimeZone};

use crate::clock::Zone;

/// Resolves `TZID`s, remembering each answer.
#[derive(Default)]
pub(crate) struct ZoneResolver {
    /// The calendar's VTIMEZONEs, in file order.
    defined: Vec<Definition>,
    resolved: HashMap<String, Result<Zone, String>>,
}

/// One VTIMEZONE.
struct Definition {
    tzid: String,
    line: Option<usize>,
    /// `X-LIC-LOCATION`: an IANA name some writers add.
    location: Option<String>,
    /// The zone its rules define, or why they cannot be used.
    rules: Result<TimeZone, String>,
}

impl ZoneResolver {
    /// Takes note of a VTIMEZONE that begins on `line`.
    pub(crate) fn add(&mut self, component: &Component<'_>, line: Option<usize>) {
        let property = |name: &str| {
            component
                .properties
                .iter()
                .find(|p| p.name.as_str().eq_ignore_ascii_case(name))
                .map(|p| p.val.as_str().trim().to_owned())
        };
        let Some(tzid) = property("TZID") else {
            return;
        };
        self.defined.push(Definition {
            rules: rules_of(component),
            location: property("X-LIC-LOCATION"),
            tzid,
            line,
        });
    }

    /// The zone a `TZID` names, or why there is none.
    pub(crate) fn resolve(&mut self, tzid: &str) -> Result<Zone, String> {
        let tzid = tzid.trim().trim_matches('"');
        if let Some(known) = self.resolved.get(tzid) {
            return known.clone();
        }
        let found = self.look_up(tzid);
        self.resolved.insert(tzid.to_owned(), found.clone());
        found
    }

    fn look_up(&self, tzid: &str) -> Result<Zone, String> {
        if let Some(zone) = iana_zone(tzid) {
            return Ok(zone);
        }
        let Some(definition) = self.defined.iter().find(|d| d.tzid == tzid) else {
            return Err(format!(
                "unknown time zone TZID={tzid:?}: it is neither an IANA name like \"Europe/Berlin\" nor defined by a VTIMEZONE in this calendar"
            ));
        };
        if let Some(zone) = definition.location.as_deref().and_then(iana_zone) {
            return Ok(zone);
        }
        match &definition.rules {
            Ok(tz) => Ok(Zone::from_time_zone(tzid, tz.clone())),
            Err(why) => Err(format!(
                "the VTIMEZONE of TZID={tzid:?}{} cannot be used: {why}",
                definition
                    .line
                    .map(|line| format!(" (line {line})"))
                    .unwrap_or_default()
            )),
        }
    }

    /// The zone of the first VTIMEZONE that can be used.
    pub(crate) fn first_defined(&mut self) -> Option<Zone> {
        let tzids: Vec<String> = self.defined.iter().map(|d| d.tzid.clone()).collect();
        tzids.iter().find_map(|tzid| self.resolve(tzid).ok())
    }
}

/// An IANA zone named by `tzid`, or by its last two or three `/` parts.
fn iana_zone(tzid: &str) -> Option<Zone> {
    let named = |name: &str| {
        (!name.is_empty() && !name.starts_with(['+', '-']))
            .then(|| Zone::parse(name).ok())
            .flatten()
    };
    if let Some(zone) = named(tzid) {
        return Some(zone);
    }
    let parts: Vec<&str> = tzid.split('/').filter(|part| !part.is_empty()).collect();
    (2..=3.min(parts.len()))
        .rev()
        .find_map(|take| named(&parts[parts.len() - take..].join("/")))
}

/// One STANDARD or DAYLIGHT observance.
struct Observance {
    daylight: bool,
    /// `DTSTART` as written (local time before the change).
    start: String,
    offset_to: i32,
    rule: Option<String>,
}

/// The zone a VTIMEZONE's latest rules define.
fn rules_of(component: &Component<'_>) -> Result<TimeZone, String> {
    let mut observances = Vec::new();
    for sub in &component.components {
        let kind = sub.name.as_str().to_ascii_uppercase();
        if kind != "STANDARD" && kind != "DAYLIGHT" {
            continue;
        }
        let property = |name: &str| {
            sub.properties
                .iter()
                .find(|p| p.name.as_str().eq_ignore_ascii_case(name))
                .map(|p| p.val.as_str().trim().to_owned())
        };
        let offset_to = property("TZOFFSETTO")
            .as_deref()
            .and_then(offset_seconds)
            .ok_or_else(|| format!("{kind} has no readable TZOFFSETTO (like +0100)"))?;
        observances.push(Observance {
            daylight: kind == "DAYLIGHT",
            start: property("DTSTART").unwrap_or_default(),
            offset_to,
            rule: property("RRULE"),
        });
    }
    let latest = |daylight: bool| {
        observances
            .iter()
            .filter(|o| o.daylight == daylight)
            .max_by(|a, b| a.start.cmp(&b.start))
    };
    let standard = latest(false).ok_or("it has no STANDARD observance")?;
    let fixed = |seconds: i32| {
        Offset::from_seconds(seconds)
            .map(TimeZone::fixed)
            .map_err(|_| format!("the offset of {seconds} seconds is out of range"))
    };
    let daylight = match latest(true) {
        Some(daylight) if daylight.rule.is_some() && standard.rule.is_some() => daylight,
        // No daylight saving time now: the standard offset holds.
        _ => return fixed(standard.offset_to),
    };
    let posix = format!(
        "<STD>{}<DST>{},{},{}",
        posix_offset(standard.offset_to),
        posix_offset(daylight.offset_to),
        posix_rule(daylight)?,
        posix_rule(standard)?,
    );
    TimeZone::posix(&posix).map_err(|err| format!("its rules ({posix}) are not valid: {err}"))
}

/// `+0100` → 3600, `-053000` → -19800.
fn offset_seconds(text: &str) -> Option<i32> {
    let sign = match text.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let digits = &text[1..];
    if !(digits.len() == 4 || digits.len() == 6) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let part =
        |range: std::ops::Range<usize>| digits.get(range).and_then(|d| d.parse::<i32>().ok());
    let seconds = part(0..2)? * 3600 + part(2..4)? * 60 + part(4..6).unwrap_or(0);
    Some(sign * seconds)
}

/// A POSIX offset: the hours *west* of UTC, so +01:00 is `-1`.
fn posix_offset(seconds: i32) -> String {
    let west = -seconds;
    let sign = if west < 0 { "-" } else { "" };
    let west = west.abs();
    let (hours, minutes, secs) = (west / 3600, west / 60 % 60, west % 60);
    match (minutes, secs) {
        (0, 0) => format!("{sign}{hours}"),
        (_, 0) => format!("{sign}{hours}:{minutes:02}"),
        _ => format!("{sign}{hours}:{minutes:02}:{secs:02}"),
    }
}

/// A yearly `RRULE` as a POSIX rule `Mm.w.d/time`: the month, the week of
/// the month (5 = last) and the weekday (0 = Sunday), at the observance's
/// local start time.
fn posix_rule(observance: &Observance) -> Result<String, String> {
    let rule = observance.rule.as_deref().unwrap_or_default();
    let parts: HashMap<String, String> = rule
        .split(';')
        .filter_map(|part| part.split_once('='))
        .map(|(key, value)| {
            (
                key.trim().to_ascii_uppercase(),
                value.trim().to_ascii_uppercase(),
            )
        })
        .collect();
    let unreadable = || format!("the rule {rule:?} is not a yearly rule usher can read");
    if parts.get("FREQ").map(String::as_str) != Some("YEARLY") {
        return Err(unreadable());
    }
    let month: u8 = parts
        .get("BYMONTH")
        .and_then(|m| m.parse().ok())
        .filter(|m| (1..=12).contains(m))
        .ok_or_else(unreadable)?;
    let by_day = parts.get("BYDAY").ok_or_else(unreadable)?;
    let day_name = by_day
        .get(by_day.len().saturating_sub(2)..)
        .ok_or_else(unreadable)?;
    let weekday = ["SU", "MO", "TU", "WE", "TH", "FR", "SA"]
        .iter()
        .position(|d| *d == day_name)
        .ok_or_else(unreadable)?;
    let ordinal = &by_day[..by_day.len() - 2];
    let week = match ordinal.parse::<i8>() {
        Ok(n @ 1..=4) => n as u8,
        Ok(-1 | 5) => 5,
        Ok(_) => return Err(unreadable()),
        // `BYDAY=SU;BYMONTHDAY=8,9,…,14`: the week the first listed day is in.
        Err(_) if ordinal.is_empty() => {
            let first: i8 = parts
                .get("BYMONTHDAY")
                .and_then(|days| days.split(',').filter_map(|d| d.parse().ok()).min())
                .ok_or_else(unreadable)?;
            match first {
                1..=28 => (first as u8 - 1) / 7 + 1,
                -7..=-1 => 5,
                _ => return Err(unreadable()),
            }
        }
        Err(_) => return Err(unreadable()),
    };
    let time = observance
        .start
        .split(['T', 't'])
        .nth(1)
        .unwrap_or("000000");
    let field = |range: std::ops::Range<usize>| time.get(range).and_then(|t| t.parse::<u8>().ok());
    let (hours, minutes, seconds) = (
        field(0..2).unwrap_or(0),
        field(2..4).unwrap_or(0),
        field(4..6).unwrap_or(0),
    );
    Ok(format!(
        "M{month}.{week}.{weekday}/{hours}:{minutes:02}:{seconds:02}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_read_and_turn_west() {
        assert_eq!(offset_seconds("+0100"), Some(3600));
        assert_eq!(offset_seconds("-053000"), Some(-19800));
        assert_eq!(offset_seconds("0100"), None);
        assert_eq!(posix_offset(3600), "-1");
        assert_eq!(posix_offset(-5 * 3600), "5");
        assert_eq!(posix_offset(19800), "-5:30");
    }

    #[test]
    fn iana_names_hide_in_long_tzids() {
        assert_eq!(
            iana_zone("/mozilla.org/20050126_1/Europe/Berlin").map(|z| z.name().to_owned()),
            Some("Europe/Berlin".to_owned())
        );
        assert_eq!(
            iana_zone("/freeassociation.sourceforge.net/Tzfile/America/Argentina/Buenos_Aires")
                .map(|z| z.name().to_owned()),
            Some("America/Argentina/Buenos_Aires".to_owned())
        );
        assert!(iana_zone("W. Europe Standard Time").is_none());
    }
}
