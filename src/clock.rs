//! Wall-clock time as usher uses it: UNIX seconds as `f64`, and time zones.
//!
//! Rules get the time from `now()`, the audit log stamps every record and
//! rule schedules name times of day in a zone. The calendar work is done by
//! [`jiff`]: RFC 3339 in and out, and [`Zone`]s that are either an IANA name
//! (`"Europe/Berlin"`, with its daylight saving time) or a fixed UTC offset
//! (`"+08:00"`, `"Z"`). Zones come from the system's time zone database, and
//! from the copy built into usher where the system has none (a bare
//! container) or lacks the zone.

use std::fmt;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use jiff::civil::DateTime;
use jiff::fmt::temporal::DateTimeParser;
use jiff::tz::{TimeZone, TimeZoneDatabase};
use jiff::{SignedDuration, Timestamp, ZonedDateTime};
use serde::{Deserialize, Deserializer};

/// Why a time or a zone could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ClockError {
    /// Not an RFC 3339 timestamp.
    #[error(
        "{0:?} is not a timestamp; write it like \"2026-11-22T14:00:00+08:00\" or \"2026-11-22T14:00[Europe/Berlin]\""
    )]
    NotATimestamp(String),
    /// Not a date and time of day without a zone.
    #[error("{0:?} is not a local date and time; write it like \"2026-11-22T14:00\"")]
    NotALocalTime(String),
    /// Not a zone usher knows.
    #[error(
        "{0:?} is not a time zone; write an IANA name like \"Europe/Berlin\" or a UTC offset like \"+08:00\", \"-05:30\" or \"Z\""
    )]
    NotAZone(String),
    /// A number of seconds too far from 1970 to be a time.
    #[error("{0} is not a time usher can work with")]
    OutOfRange(f64),
}

/// The current time in UNIX seconds.
pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|since| since.as_secs_f64())
        .unwrap_or(0.0)
}

/// UNIX seconds as a [`Timestamp`], if they are in jiff's range.
pub fn to_timestamp(at: f64) -> Result<Timestamp, ClockError> {
    SignedDuration::try_from_secs_f64(at)
        .ok()
        .and_then(|since| Timestamp::from_duration(since).ok())
        .ok_or(ClockError::OutOfRange(at))
}

/// A [`Timestamp`] as UNIX seconds.
pub fn from_timestamp(at: Timestamp) -> f64 {
    at.as_duration().as_secs_f64()
}

/// Formats UNIX seconds as RFC 3339 in UTC with milliseconds,
/// e.g. `2026-11-22T06:00:00.250Z`.
pub fn format_timestamp(at: f64) -> String {
    let millis = (at * 1000.0).round() as i64;
    let at = Timestamp::from_millisecond(millis).unwrap_or(Timestamp::UNIX_EPOCH);
    at.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// Parses an RFC 3339 timestamp (`2026-11-22T14:00:00Z`,
/// `2026-11-22 14:00+08:00`, fractional seconds allowed) or one with an
/// IANA zone (`2026-11-22T14:00[Europe/Berlin]`) to UNIX seconds.
pub fn parse_timestamp(text: &str) -> Result<f64, ClockError> {
    let trimmed = text.trim();
    let instant = if trimmed.ends_with(']') {
        trimmed
            .parse::<ZonedDateTime>()
            .map(|zoned| zoned.timestamp())
    } else {
        trimmed.parse::<Timestamp>()
    };
    instant
        .map(from_timestamp)
        .map_err(|_| ClockError::NotATimestamp(text.to_owned()))
}

/// Parses a date and time of day without a zone (`2026-11-22T14:00`) as a
/// time in `zone`. A time the clocks skip (02:30 on the night they spring
/// forward) is read as that much after the change; a time they pass twice
/// is the first of the two.
pub fn parse_local(text: &str, zone: &Zone) -> Result<f64, ClockError> {
    let civil: DateTime = text
        .trim()
        .parse()
        .map_err(|_| ClockError::NotALocalTime(text.to_owned()))?;
    zone.instant_of(civil)
        .map(from_timestamp)
        .ok_or_else(|| ClockError::NotALocalTime(text.to_owned()))
}

/// The time of day (`"HH:MM"`) of UNIX time `at` in a zone such as
/// `"Europe/Berlin"`, `"+08:00"` or `"Z"`.
pub fn time_of_day(at: f64, zone: &str) -> Result<String, ClockError> {
    Zone::parse(zone)?.time_of_day(at)
}

/// A time zone: an IANA name or a fixed UTC offset, with the name it was
/// given by.
#[derive(Clone)]
pub struct Zone {
    name: Arc<str>,
    tz: TimeZone,
}

impl Zone {
    /// UTC.
    pub fn utc() -> Zone {
        Zone {
            name: "UTC".into(),
            tz: TimeZone::UTC,
        }
    }

    /// The machine's zone (`TZ`, else `/etc/localtime`), or UTC when it
    /// cannot be told.
    pub fn system() -> Zone {
        let tz = TimeZone::try_system().unwrap_or(TimeZone::UTC);
        let name = tz.iana_name().unwrap_or("local").into();
        Zone { name, tz }
    }

    /// Reads a zone: an IANA name (`"Europe/Berlin"`), `"UTC"`, `"Z"` or a
    /// UTC offset (`"+08:00"`, `"-0530"`, `"+08"`).
    pub fn parse(text: &str) -> Result<Zone, ClockError> {
        let trimmed = text.trim();
        let fail = || ClockError::NotAZone(text.to_owned());
        if trimmed.eq_ignore_ascii_case("z") {
            return Ok(Zone {
                name: trimmed.into(),
                tz: TimeZone::UTC,
            });
        }
        if trimmed.starts_with(['+', '-']) {
            return fixed_offset(trimmed)
                .map(|tz| Zone {
                    name: trimmed.into(),
                    tz,
                })
                .ok_or_else(fail);
        }
        Zone::named(trimmed, &[jiff::tz::db(), &TimeZoneDatabase::bundled()]).ok_or_else(fail)
    }

    /// Looks an IANA name up in each database in turn.
    fn named(name: &str, databases: &[&TimeZoneDatabase]) -> Option<Zone> {
        if name.is_empty() || name.starts_with(['+', '-']) {
            return None;
        }
        databases
            .iter()
            .find_map(|db| db.get(name).ok())
            .map(|tz| Zone {
                name: tz.iana_name().unwrap_or(name).into(),
                tz,
            })
    }

    /// A zone made from jiff's, named `name`.
    pub fn from_time_zone(name: &str, tz: TimeZone) -> Zone {
        Zone {
            name: name.into(),
            tz,
        }
    }

    /// The name it was given by (the IANA name, or the offset as written).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// jiff's time zone.
    pub fn time_zone(&self) -> &TimeZone {
        &self.tz
    }

    /// The time of day (`"HH:MM"`) of UNIX time `at` in this zone.
    pub fn time_of_day(&self, at: f64) -> Result<String, ClockError> {
        let local = to_timestamp(at.floor())?.to_zoned_datetime(self.tz.clone());
        Ok(local.strftime("%H:%M").to_string())
    }

    /// UNIX time `at` as RFC 3339 at this zone's offset on that date, to the
    /// second: `2027-03-29T09:00:00+02:00`.
    pub fn format(&self, at: f64) -> Result<String, ClockError> {
        let local = to_timestamp(at.round())?.to_zoned_datetime(self.tz.clone());
        Ok(local.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string())
    }

    /// The instant a wall-clock time in this zone stands for: in a gap the
    /// clocks skip it is read with the offset before the change, in a fold
    /// it is the earlier of the two (RFC 5545's rule, and jiff's
    /// "compatible" one).
    pub fn instant_of(&self, civil: DateTime) -> Option<Timestamp> {
        self.tz
            .to_ambiguous_zoned_datetime(civil)
            .compatible()
            .ok()
            .map(|zoned| zoned.timestamp())
    }
}

impl fmt::Debug for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Zone({})", self.name)
    }
}

impl fmt::Display for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

impl PartialEq for Zone {
    fn eq(&self, other: &Zone) -> bool {
        self.name == other.name && self.tz == other.tz
    }
}

impl<'de> Deserialize<'de> for Zone {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Zone::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// `+08:00`, `-0530` or `+08` as a fixed-offset zone, at most 18 hours
/// from UTC (real zones stay within 14).
fn fixed_offset(text: &str) -> Option<TimeZone> {
    let digits: String = text[1..].chars().filter(|c| *c != ':').collect();
    if digits.get(..2).and_then(|hours| hours.parse::<u8>().ok())? > 18 {
        return None;
    }
    let expanded = match digits.len() {
        2 => format!("{}{digits}:00", &text[..1]),
        4 => format!("{}{}:{}", &text[..1], &digits[..2], &digits[2..]),
        _ => return None,
    };
    static PARSER: DateTimeParser = DateTimeParser::new();
    PARSER.parse_time_zone(&expanded).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rfc3339_with_offsets() {
        assert_eq!(parse_timestamp("1970-01-01T00:00:00Z").unwrap(), 0.0);
        assert_eq!(
            parse_timestamp("2026-11-22T14:00:00+08:00").unwrap(),
            1_795_327_200.0
        );
        assert_eq!(
            parse_timestamp("2026-11-22 06:00Z").unwrap(),
            1_795_327_200.0
        );
        assert_eq!(
            parse_timestamp("2000-02-29T12:30:15.5-05:30").unwrap(),
            951_847_215.5
        );
    }

    #[test]
    fn parses_times_with_an_iana_zone() {
        assert_eq!(
            parse_timestamp("2026-11-22T07:00[Europe/Berlin]").unwrap(),
            1_795_327_200.0
        );
        let berlin = Zone::parse("Europe/Berlin").unwrap();
        assert_eq!(
            parse_local("2026-11-22T07:00", &berlin).unwrap(),
            1_795_327_200.0
        );
        // 02:30 does not exist on 2027-03-28 in Berlin: it is read as 03:30.
        assert_eq!(
            parse_local("2027-03-28T02:30", &berlin).unwrap(),
            parse_timestamp("2027-03-28T03:30+02:00").unwrap()
        );
    }

    #[test]
    fn rejects_malformed_timestamps_with_an_example() {
        for bad in [
            "",
            "tomorrow",
            "2026-13-01T00:00Z",
            "2026-11-22T25:00Z",
            "2026-11-22T10:00",
            "2026-11-22T10:00[Mars/Olympus]",
        ] {
            let err = parse_timestamp(bad).unwrap_err().to_string();
            assert!(err.contains("2026-11-22T14:00:00+08:00"), "{bad}: {err}");
        }
        assert!(parse_local("soon", &Zone::utc()).is_err());
    }

    #[test]
    fn formats_back_what_it_parses() {
        for text in [
            "1970-01-01T00:00:00.000Z",
            "2000-02-29T18:00:15.500Z",
            "2026-11-22T06:00:00.250Z",
            "2100-12-31T23:59:59.999Z",
        ] {
            assert_eq!(format_timestamp(parse_timestamp(text).unwrap()), text);
        }
    }

    #[test]
    fn time_of_day_applies_the_offset() {
        let at = parse_timestamp("2026-11-22T14:05:59+08:00").unwrap();
        assert_eq!(time_of_day(at, "+08:00").unwrap(), "14:05");
        assert_eq!(time_of_day(at, "+0800").unwrap(), "14:05");
        assert_eq!(time_of_day(at, "+08").unwrap(), "14:05");
        assert_eq!(time_of_day(at, "Z").unwrap(), "06:05");
        assert_eq!(time_of_day(at, "UTC").unwrap(), "06:05");
        assert_eq!(time_of_day(at, "-07:00").unwrap(), "23:05");
        assert_eq!(time_of_day(at, "-0530").unwrap(), "00:35");
        for bad in ["Middle Earth", "Mars/Olympus", "+8", "+25:00", ""] {
            let err = time_of_day(at, bad).unwrap_err().to_string();
            assert!(err.contains("Europe/Berlin"), "{bad}: {err}");
        }
    }

    #[test]
    fn time_of_day_follows_daylight_saving_time() {
        let winter = parse_timestamp("2027-03-22T08:00:00Z").unwrap();
        let summer = parse_timestamp("2027-03-29T07:00:00Z").unwrap();
        assert_eq!(time_of_day(winter, "Europe/Berlin").unwrap(), "09:00");
        assert_eq!(time_of_day(summer, "Europe/Berlin").unwrap(), "09:00");
        assert_eq!(time_of_day(summer, "Asia/Shanghai").unwrap(), "15:00");
        let berlin = Zone::parse("europe/berlin").unwrap();
        assert_eq!(berlin.name(), "Europe/Berlin");
        assert_eq!(berlin.format(summer).unwrap(), "2027-03-29T09:00:00+02:00");
        assert_eq!(berlin.format(winter).unwrap(), "2027-03-22T09:00:00+01:00");
    }

    #[test]
    fn the_built_in_database_stands_in_for_a_missing_system_one() {
        let empty = std::env::temp_dir().join(format!("usher-no-tzdb-{}", std::process::id()));
        std::fs::create_dir_all(&empty).unwrap();
        let none = TimeZoneDatabase::from_dir(&empty).unwrap_or_else(|_| TimeZoneDatabase::none());
        assert!(none.get("Europe/Berlin").is_err());
        let zone = Zone::named("Europe/Berlin", &[&none, &TimeZoneDatabase::bundled()])
            .expect("the bundled copy has Berlin");
        let summer = parse_timestamp("2027-07-01T07:00:00Z").unwrap();
        assert_eq!(zone.time_of_day(summer).unwrap(), "09:00");
        assert!(Zone::named("Mars/Olympus", &[&none, &TimeZoneDatabase::bundled()]).is_none());
    }
}
