//! Wall-clock time as usher uses it: UNIX seconds as `f64`.
//!
//! Rules get the time from `now()`, the audit log stamps every record and
//! rule schedules name times of day. These helpers parse RFC 3339
//! (`"2026-11-22T14:00:00+08:00"`), format it back, and give the time of day
//! (`"14:05"`) at a UTC offset. That is all usher needs, so no date crate.

use std::time::{SystemTime, UNIX_EPOCH};

/// The current time in UNIX seconds.
pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|since| since.as_secs_f64())
        .unwrap_or(0.0)
}

/// Formats UNIX seconds as RFC 3339 in UTC with milliseconds,
/// e.g. `2026-11-22T06:00:00.250Z`.
pub fn format_timestamp(at: f64) -> String {
    let millis = (at * 1000.0).round() as i64;
    let (days, in_day) = (millis.div_euclid(86_400_000), millis.rem_euclid(86_400_000));
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        in_day / 3_600_000,
        in_day / 60_000 % 60,
        in_day / 1000 % 60,
        in_day % 1000
    )
}

/// Parses an RFC 3339 timestamp (`2026-11-22T14:00:00Z`,
/// `2026-11-22 14:00+08:00`, fractional seconds allowed) to UNIX seconds.
pub fn parse_timestamp(text: &str) -> Result<f64, String> {
    let fail =
        || format!("{text:?} is not a timestamp; write it like \"2026-11-22T14:00:00+08:00\"");
    let text = text.trim();
    let (date, rest) = text.split_at_checked(10).ok_or_else(fail)?;
    let mut date_parts = date.split('-');
    let mut next_number = |limit: i64| -> Option<i64> {
        date_parts
            .next()?
            .parse::<i64>()
            .ok()
            .filter(|n| (0..=limit).contains(n))
    };
    let (year, month, day) = (
        next_number(9999).ok_or_else(fail)?,
        next_number(12).ok_or_else(fail)?,
        next_number(31).ok_or_else(fail)?,
    );
    if month == 0 || day == 0 {
        return Err(fail());
    }
    let rest = rest.strip_prefix(['T', 't', ' ']).ok_or_else(fail)?;
    let zone_at = rest.find(['Z', 'z', '+', '-']).ok_or_else(fail)?;
    let (time, zone) = rest.split_at(zone_at);
    let mut time_parts = time.split(':');
    let hour: i64 = parse_bounded(time_parts.next(), 23).ok_or_else(fail)?;
    let minute: i64 = parse_bounded(time_parts.next(), 59).ok_or_else(fail)?;
    let second: f64 = match time_parts.next() {
        Some(seconds) => seconds
            .parse::<f64>()
            .ok()
            .filter(|s| (0.0..61.0).contains(s))
            .ok_or_else(fail)?,
        None => 0.0,
    };
    let offset = offset_seconds(zone).ok_or_else(fail)?;
    let days = days_from_civil(year, month, day);
    Ok((days * 86_400 + hour * 3600 + minute * 60 - offset) as f64 + second)
}

/// The time of day (`"HH:MM"`) of UNIX time `at` at a UTC offset such as
/// `"+08:00"`, `"-05:30"` or `"Z"`.
pub fn time_of_day(at: f64, utc_offset: &str) -> Result<String, String> {
    let offset = offset_seconds(utc_offset.trim()).ok_or_else(|| {
        format!("{utc_offset:?} is not a UTC offset; write it like \"+08:00\", \"-05:30\" or \"Z\"")
    })?;
    let local = (at.floor() as i64 + offset).rem_euclid(86_400);
    Ok(format!("{:02}:{:02}", local / 3600, local % 3600 / 60))
}

fn parse_bounded(part: Option<&str>, max: i64) -> Option<i64> {
    part?.parse::<i64>().ok().filter(|n| (0..=max).contains(n))
}

/// `Z` → 0, `+08:00` → 28800, `-0530` → -19800.
fn offset_seconds(zone: &str) -> Option<i64> {
    if zone.eq_ignore_ascii_case("z") {
        return Some(0);
    }
    let sign = match zone.chars().next()? {
        '+' => 1,
        '-' => -1,
        _ => return None,
    };
    let digits: String = zone[1..].chars().filter(|c| *c != ':').collect();
    if digits.len() != 4 || !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let hours: i64 = digits[..2].parse().ok().filter(|h| *h <= 23)?;
    let minutes: i64 = digits[2..].parse().ok().filter(|m| *m <= 59)?;
    Some(sign * (hours * 3600 + minutes * 60))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The proleptic Gregorian date of a day number (Howard Hinnant's
/// `civil_from_days`), the inverse of [`days_from_civil`].
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
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
    fn rejects_malformed_timestamps_with_an_example() {
        for bad in [
            "",
            "tomorrow",
            "2026-13-01T00:00Z",
            "2026-11-22T25:00Z",
            "2026-11-22T10:00",
        ] {
            let err = parse_timestamp(bad).unwrap_err();
            assert!(err.contains("2026-11-22T14:00:00+08:00"), "{bad}: {err}");
        }
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
        assert_eq!(time_of_day(at, "Z").unwrap(), "06:05");
        assert_eq!(time_of_day(at, "-07:00").unwrap(), "23:05");
        assert!(time_of_day(at, "CET").is_err());
    }
}
