//! Times as reports and the dashboard show them, in a room's zone.
//!
//! A room's zone is the one its timetable is read in (`zone:` in the
//! config, else the machine's); see [`crate::clock::Zone`]. [`ZoneTimes`]
//! gives the few shapes a page needs: a full timestamp, a date, a time of
//! day, a file name.

use crate::clock::{Zone, format_timestamp, to_timestamp};

/// The shapes of a time shown to people, in a zone.
pub trait ZoneTimes {
    /// RFC 3339 at the zone's offset on the day, to the second:
    /// `2026-11-23T09:04:12+08:00`.
    fn timestamp(&self, at: f64) -> String;

    /// How the zone reads at `at`: `Europe/Berlin (UTC+01:00)`.
    fn label(&self, at: f64) -> String;

    /// The date: `2026-11-23`.
    fn date(&self, at: f64) -> String {
        self.timestamp(at)[..10].to_owned()
    }

    /// The time of day to the second: `09:04:12`.
    fn clock(&self, at: f64) -> String {
        self.timestamp(at)[11..19].to_owned()
    }

    /// The time of day to the minute: `09:04`.
    fn minute(&self, at: f64) -> String {
        self.timestamp(at)[11..16].to_owned()
    }

    /// A name for file names: `2026-11-23-090412`.
    fn file_stamp(&self, at: f64) -> String {
        let stamp = self.timestamp(at);
        format!("{}-{}", &stamp[..10], stamp[11..19].replace(':', ""))
    }
}

impl ZoneTimes for Zone {
    fn timestamp(&self, at: f64) -> String {
        in_zone(self, at, "%Y-%m-%dT%H:%M:%S%:z")
            // Out of the calendar's range: still a time, in UTC.
            .unwrap_or_else(|| format!("{}+00:00", &format_timestamp(at)[..19]))
    }

    fn label(&self, at: f64) -> String {
        let offset = in_zone(self, at, "%:z").unwrap_or_else(|| "+00:00".to_owned());
        format!("{} (UTC{offset})", self.name())
    }
}

/// `at` (to the second below) written with `format` in `zone`.
fn in_zone(zone: &Zone, at: f64, format: &str) -> Option<String> {
    let local = to_timestamp(at.floor())
        .ok()?
        .to_zoned_datetime(zone.time_zone().clone());
    Some(local.strftime(format).to_string())
}

/// A duration for people: `45 s`, `12 min`, `1 h 05 min`.
pub fn duration(seconds: f64) -> String {
    let seconds = seconds.max(0.0).round() as u64;
    match seconds {
        0..60 => format!("{seconds} s"),
        60..3600 => format!("{} min", seconds / 60),
        _ => format!("{} h {:02} min", seconds / 3600, seconds % 3600 / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::parse_timestamp;

    #[test]
    fn times_read_in_the_zone() {
        let at = parse_timestamp("2026-11-23T09:04:12.700+08:00").unwrap();
        let zone = Zone::parse("+08:00").unwrap();
        assert_eq!(zone.timestamp(at), "2026-11-23T09:04:12+08:00");
        assert_eq!(zone.clock(at), "09:04:12");
        assert_eq!(zone.minute(at), "09:04");
        assert_eq!(zone.date(at), "2026-11-23");
        assert_eq!(zone.file_stamp(at), "2026-11-23-090412");
        assert_eq!(zone.label(at), "+08:00 (UTC+08:00)");
        assert_eq!(
            Zone::parse("-05:30").unwrap().timestamp(at),
            "2026-11-22T19:34:12-05:30"
        );
    }

    #[test]
    fn a_named_zone_follows_daylight_saving_time() {
        let berlin = Zone::parse("Europe/Berlin").unwrap();
        let winter = parse_timestamp("2026-01-15T12:00:00Z").unwrap();
        let summer = parse_timestamp("2026-07-15T12:00:00Z").unwrap();
        assert_eq!(berlin.timestamp(winter), "2026-01-15T13:00:00+01:00");
        assert_eq!(berlin.timestamp(summer), "2026-07-15T14:00:00+02:00");
        assert_eq!(berlin.label(summer), "Europe/Berlin (UTC+02:00)");
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration(44.6), "45 s");
        assert_eq!(duration(12.0 * 60.0 + 5.0), "12 min");
        assert_eq!(duration(3600.0 + 5.0 * 60.0), "1 h 05 min");
        assert_eq!(duration(-3.0), "0 s");
    }
}
