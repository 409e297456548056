//! Human durations in files: `500ms`, `30s`, `5m`, `1h30m`, or a bare number
//! of seconds.
//!
//! Scenarios, rule tests and the config all write times this way; [`Span`]
//! reads them and says exactly what it expected when it cannot.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A duration read from a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Span(pub Duration);

impl Span {
    /// A span of whole seconds.
    pub fn secs(seconds: u64) -> Self {
        Span(Duration::from_secs(seconds))
    }

    /// The span in seconds.
    pub fn as_secs_f64(&self) -> f64 {
        self.0.as_secs_f64()
    }
}

impl From<Span> for Duration {
    fn from(span: Span) -> Duration {
        span.0
    }
}

/// Why a duration could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not a duration; write it like `500ms`, `30s`, `5m`, `1h30m` or a number of seconds"
)]
pub struct SpanError(String);

impl FromStr for Span {
    type Err = SpanError;

    fn from_str(text: &str) -> Result<Self, SpanError> {
        let fail = || SpanError(text.to_owned());
        let trimmed = text.trim();
        if let Ok(seconds) = trimmed.parse::<f64>() {
            return Duration::try_from_secs_f64(seconds)
                .map(Span)
                .map_err(|_| fail());
        }
        let mut total = Duration::ZERO;
        let mut rest = trimmed;
        if rest.is_empty() {
            return Err(fail());
        }
        while !rest.is_empty() {
            let digits = rest
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .ok_or_else(fail)?;
            let (number, tail) = rest.split_at(digits);
            let number: f64 = number.parse().map_err(|_| fail())?;
            let unit_len = tail
                .find(|c: char| c.is_ascii_digit() || c == '.')
                .unwrap_or(tail.len());
            let (unit, tail) = tail.split_at(unit_len);
            let seconds = match unit.trim() {
                "ms" => number / 1000.0,
                "s" | "sec" | "secs" => number,
                "m" | "min" | "mins" => number * 60.0,
                "h" | "hr" | "hrs" => number * 3600.0,
                "d" => number * 86400.0,
                _ => return Err(fail()),
            };
            total += Duration::try_from_secs_f64(seconds).map_err(|_| fail())?;
            rest = tail.trim_start();
        }
        Ok(Span(total))
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let millis = self.0.as_millis();
        if millis % 1000 != 0 {
            return write!(f, "{millis}ms");
        }
        let mut seconds = self.0.as_secs();
        if seconds == 0 {
            return f.write_str("0s");
        }
        for (unit, size) in [("h", 3600), ("m", 60), ("s", 1)] {
            if seconds >= size {
                write!(f, "{}{unit}", seconds / size)?;
                seconds %= size;
            }
        }
        Ok(())
    }
}

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Seconds(f64),
            Text(String),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Seconds(seconds) => Duration::try_from_secs_f64(seconds)
                .map(Span)
                .map_err(|_| serde::de::Error::custom(SpanError(seconds.to_string()))),
            Raw::Text(text) => text.parse().map_err(serde::de::Error::custom),
        }
    }
}

impl Serialize for Span {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(text: &str) -> Duration {
        text.parse::<Span>().unwrap().0
    }

    #[test]
    fn reads_every_unit() {
        assert_eq!(span("500ms"), Duration::from_millis(500));
        assert_eq!(span("30s"), Duration::from_secs(30));
        assert_eq!(span("5m"), Duration::from_secs(300));
        assert_eq!(span("1h30m"), Duration::from_secs(5400));
        assert_eq!(span("1h 30m 5s"), Duration::from_secs(5405));
        assert_eq!(span("2.5"), Duration::from_millis(2500));
        assert_eq!(span("0.5s"), Duration::from_millis(500));
    }

    #[test]
    fn rejects_nonsense_with_advice() {
        for bad in ["", "5 parsecs", "m", "-3", "5x"] {
            let err = bad.parse::<Span>().unwrap_err();
            assert!(err.to_string().contains("30s"), "{bad}: {err}");
        }
    }

    #[test]
    fn displays_compactly_and_reads_back() {
        for text in ["90m", "1h30m", "250ms", "0s", "45s"] {
            let parsed: Span = text.parse().unwrap();
            assert_eq!(parsed.to_string().parse::<Span>().unwrap(), parsed);
        }
        assert_eq!(Span::secs(5400).to_string(), "1h30m");
    }

    #[test]
    fn deserializes_numbers_and_text() {
        let spans: Vec<Span> = serde_yaml::from_str("[3, 2.5, 1m, \"10s\"]").unwrap();
        assert_eq!(
            spans.iter().map(|s| s.as_secs_f64()).collect::<Vec<_>>(),
            [3.0, 2.5, 60.0, 10.0]
        );
    }
}
