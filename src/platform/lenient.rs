//! Tolerant field parsing for platform payloads, shared by every adapter.
//!
//! Real servers disagree with their own documentation: a flag may be `"YES"`,
//! `"no"`, `true` or `1`; a number may arrive as `120`, `120.0` or `"120"`; a
//! field may be `null` or missing. These `deserialize_with` helpers accept all
//! of them and never fail on an odd value: an unreadable flag is `false` and an
//! unreadable number is `0`, so one strange field never costs us a whole event.
//!
//! The `yes_no` serializer writes flags the way the platform does, for the
//! simulator and for recordings.

use std::convert::Infallible;
use std::fmt;
use std::str::FromStr;

use serde::Deserializer;
use serde::de::{self, IgnoredAny, Visitor};

/// Parses a flag: booleans, `"YES"`/`"NO"`, `"true"`/`"false"`, `"on"`/`"off"`,
/// numbers (non-zero is true) and `null` (false).
pub fn flag<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    deserializer.deserialize_any(FlagVisitor)
}

/// Like [`flag`] but keeps "absent or null" apart from "false".
pub fn optional_flag<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<bool>, D::Error> {
    deserializer.deserialize_any(OptionalVisitor(FlagVisitor))
}

/// Parses a number given as an integer, a float or a numeric string; anything
/// else (including `null`) is `0.0`.
pub fn number<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
    deserializer.deserialize_any(NumberVisitor)
}

/// Parses an integer the way [`number`] does, truncating any fraction.
pub fn integer<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    number(deserializer).map(|n| n as i64)
}

/// Parses text given as a string, a number or a boolean; `null` is empty.
pub fn text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    deserializer.deserialize_any(TextVisitor)
}

/// Parses an open enum (a role, a service type, …) from any text-like value;
/// values the enum does not know are kept as they were sent.
pub fn open<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr<Err = Infallible>,
{
    text(deserializer).map(|value| match value.parse() {
        Ok(parsed) => parsed,
        Err(never) => match never {},
    })
}

/// Parses a list of strings, skipping entries that are not strings; `null`
/// is an empty list.
pub fn text_list<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    use serde::Deserialize;
    let values: Option<Vec<serde_json::Value>> = Option::deserialize(deserializer)?;
    Ok(values
        .unwrap_or_default()
        .into_iter()
        .filter_map(|value| match value {
            serde_json::Value::String(text) => Some(text),
            _ => None,
        })
        .collect())
}

/// Writes a flag as the platform's `"YES"` / `"NO"`.
pub fn yes_no<S: serde::Serializer>(value: &bool, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(if *value { "YES" } else { "NO" })
}

/// Reads a flag word; unknown words are `false`.
pub fn flag_from_str(value: &str) -> bool {
    let value = value.trim();
    ["yes", "true", "on", "1", "y"]
        .iter()
        .any(|word| value.eq_ignore_ascii_case(word))
}

struct FlagVisitor;

impl<'de> Visitor<'de> for FlagVisitor {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a flag")
    }
    fn visit_bool<E>(self, v: bool) -> Result<bool, E> {
        Ok(v)
    }
    fn visit_i64<E>(self, v: i64) -> Result<bool, E> {
        Ok(v != 0)
    }
    fn visit_u64<E>(self, v: u64) -> Result<bool, E> {
        Ok(v != 0)
    }
    fn visit_f64<E>(self, v: f64) -> Result<bool, E> {
        Ok(v != 0.0)
    }
    fn visit_str<E>(self, v: &str) -> Result<bool, E> {
        Ok(flag_from_str(v))
    }
    fn visit_unit<E>(self) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_none<E>(self) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(false)
    }
    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(false)
    }
}

struct NumberVisitor;

impl<'de> Visitor<'de> for NumberVisitor {
    type Value = f64;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a number")
    }
    fn visit_bool<E>(self, v: bool) -> Result<f64, E> {
        Ok(if v { 1.0 } else { 0.0 })
    }
    fn visit_i64<E>(self, v: i64) -> Result<f64, E> {
        Ok(v as f64)
    }
    fn visit_u64<E>(self, v: u64) -> Result<f64, E> {
        Ok(v as f64)
    }
    fn visit_f64<E>(self, v: f64) -> Result<f64, E> {
        Ok(if v.is_finite() { v } else { 0.0 })
    }
    fn visit_str<E>(self, v: &str) -> Result<f64, E> {
        Ok(v.trim()
            .parse::<f64>()
            .ok()
            .filter(|n| n.is_finite())
            .unwrap_or(0.0))
    }
    fn visit_unit<E>(self) -> Result<f64, E> {
        Ok(0.0)
    }
    fn visit_none<E>(self) -> Result<f64, E> {
        Ok(0.0)
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<f64, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(0.0)
    }
    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<f64, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(0.0)
    }
}

struct TextVisitor;

impl<'de> Visitor<'de> for TextVisitor {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("text")
    }
    fn visit_bool<E>(self, v: bool) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_i64<E>(self, v: i64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_u64<E>(self, v: u64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_f64<E>(self, v: f64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_str<E>(self, v: &str) -> Result<String, E> {
        Ok(v.to_owned())
    }
    fn visit_string<E>(self, v: String) -> Result<String, E> {
        Ok(v)
    }
    fn visit_unit<E>(self) -> Result<String, E> {
        Ok(String::new())
    }
    fn visit_none<E>(self) -> Result<String, E> {
        Ok(String::new())
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<String, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(String::new())
    }
    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<String, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(String::new())
    }
}

/// Wraps a visitor so that `null` becomes `None` and anything else `Some`.
struct OptionalVisitor<V>(V);

impl<'de, V: Visitor<'de>> Visitor<'de> for OptionalVisitor<V> {
    type Value = Option<V::Value>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        self.0.expecting(f)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        self.0.visit_bool(v).map(Some)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        self.0.visit_i64(v).map(Some)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        self.0.visit_u64(v).map(Some)
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        self.0.visit_f64(v).map(Some)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        self.0.visit_str(v).map(Some)
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        self.0.visit_seq(seq).map(Some)
    }
    fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        self.0.visit_map(map).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Deserialize)]
    struct Sample {
        #[serde(default, deserialize_with = "flag")]
        flag: bool,
        #[serde(default, deserialize_with = "optional_flag")]
        maybe: Option<bool>,
        #[serde(default, deserialize_with = "number")]
        number: f64,
        #[serde(default, deserialize_with = "text")]
        text: String,
    }

    fn parse(json: &str) -> Sample {
        serde_json::from_str(json).expect("lenient fields never fail")
    }

    #[test]
    fn flags_accept_every_spelling() {
        for yes in [r#""YES""#, r#""yes""#, "true", r#""true""#, "1", r#""On""#] {
            assert!(parse(&format!(r#"{{"flag": {yes}}}"#)).flag, "{yes}");
        }
        for no in [r#""NO""#, "false", "0", "null", r#""maybe""#, "[]", "{}"] {
            assert!(!parse(&format!(r#"{{"flag": {no}}}"#)).flag, "{no}");
        }
        assert!(!parse("{}").flag);
    }

    #[test]
    fn optional_flags_keep_absence_apart_from_false() {
        assert_eq!(parse("{}").maybe, None);
        assert_eq!(parse(r#"{"maybe": null}"#).maybe, None);
        assert_eq!(parse(r#"{"maybe": "NO"}"#).maybe, Some(false));
        assert_eq!(parse(r#"{"maybe": true}"#).maybe, Some(true));
    }

    #[test]
    fn numbers_accept_strings_integers_and_floats() {
        assert_eq!(parse(r#"{"number": "120"}"#).number, 120.0);
        assert_eq!(parse(r#"{"number": 120}"#).number, 120.0);
        assert_eq!(
            parse(r#"{"number": 1700484383.846972}"#).number,
            1700484383.846972
        );
        assert_eq!(parse(r#"{"number": "soon"}"#).number, 0.0);
        assert_eq!(parse(r#"{"number": null}"#).number, 0.0);
    }

    #[test]
    fn text_accepts_numbers_and_null() {
        assert_eq!(parse(r#"{"text": 42}"#).text, "42");
        assert_eq!(parse(r#"{"text": null}"#).text, "");
        assert_eq!(parse(r#"{"text": "x"}"#).text, "x");
    }
}
