//! The time zone reports and the dashboard show times in.
//!
//! Rooms will carry their own zone once timetables arrive; until then every
//! time is shown in the machine's local zone. This is the one place that
//! decides, so switching a room to its own zone changes only [`Zone`].

use crate::clock::format_timestamp;

/// Where times are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Zone {
    /// The machine's local zone, with its daylight-saving changes.
    #[default]
    Local,
    /// A fixed offset from UTC, in seconds (tests and offline reports).
    Fixed(i64),
}

impl Zone {
    /// The offset from UTC at UNIX time `at`, in seconds.
    pub fn offset_at(self, at: f64) -> i64 {
        match self {
            Zone::Local => local_offset(at),
            Zone::Fixed(offset) => offset,
        }
    }

    /// RFC 3339 with the zone's offset, to the second:
    /// `2026-11-23T09:04:12+08:00`.
    pub fn timestamp(self, at: f64) -> String {
        let offset = self.offset_at(at);
        let local = format_timestamp(at.floor() + offset as f64);
        format!("{}{}", &local[..19], offset_text(offset))
    }

    /// The date: `2026-11-23`.
    pub fn date(self, at: f64) -> String {
        self.timestamp(at)[..10].to_owned()
    }

    /// The time of day to the second: `09:04:12`.
    pub fn clock(self, at: f64) -> String {
        self.timestamp(at)[11..19].to_owned()
    }

    /// The time of day to the minute: `09:04`.
    pub fn minute(self, at: f64) -> String {
        self.timestamp(at)[11..16].to_owned()
    }

    /// A name for file names: `2026-11-23-090412`.
    pub fn file_stamp(self, at: f64) -> String {
        let stamp = self.timestamp(at);
        format!("{}-{}", &stamp[..10], stamp[11..19].replace(':', ""))
    }

    /// How the zone reads at `at`: `UTC+08:00`.
    pub fn label(self, at: f64) -> String {
        format!("UTC{}", offset_text(self.offset_at(at)))
    }
}

/// `+08:00`, `-05:30`, `+00:00`.
fn offset_text(offset: i64) -> String {
    let sign = if offset < 0 { '-' } else { '+' };
    let minutes = offset.abs() / 60;
    format!("{sign}{:02}:{:02}", minutes / 60, minutes % 60)
}

/// The machine's UTC offset at UNIX time `at` (0 if the system cannot say).
fn local_offset(at: f64) -> i64 {
    let time = at.floor() as libc::time_t;
    // SAFETY: `tm` is plain data; all-zero bytes are a valid value for it.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are valid for the call; localtime_r is the
    // thread-safe variant and writes only into `tm`.
    let filled = unsafe { libc::localtime_r(&time, &mut tm) };
    if filled.is_null() {
        return 0;
    }
    tm.tm_gmtoff
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
        let zone = Zone::Fixed(8 * 3600);
        assert_eq!(zone.timestamp(at), "2026-11-23T09:04:12+08:00");
        assert_eq!(zone.clock(at), "09:04:12");
        assert_eq!(zone.minute(at), "09:04");
        assert_eq!(zone.date(at), "2026-11-23");
        assert_eq!(zone.file_stamp(at), "2026-11-23-090412");
        assert_eq!(zone.label(at), "UTC+08:00");
        assert_eq!(
            Zone::Fixed(-5 * 3600 - 1800).timestamp(at),
            "2026-11-22T19:34:12-05:30"
        );
    }

    #[test]
    fn the_local_zone_agrees_with_the_system() {
        let at = parse_timestamp("2026-07-01T12:00:00Z").unwrap();
        let offset = Zone::Local.offset_at(at);
        assert!(offset.abs() <= 14 * 3600, "{offset}");
        assert_eq!(
            parse_timestamp(&Zone::Local.timestamp(at)).unwrap(),
            at,
            "the local timestamp names the same instant"
        );
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration(44.6), "45 s");
        assert_eq!(duration(12.0 * 60.0 + 5.0), "12 min");
        assert_eq!(duration(3600.0 + 5.0 * 60.0), "1 h 05 min");
        assert_eq!(duration(-3.0), "0 s");
    }
}
