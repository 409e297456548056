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

/// Like [`number`] but keeps "absent or null" apart from a value.
pub fn optional_number<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<f64>, D::Error> {
    deserializer.deserialize_any(OptionalVisitor(NumberVisitor))
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

/// Parses a map whose values should all be text (Huawei's `pinfoMap`):
/// numbers and booleans become their text, `null` and nested values become
/// empty; `null` in place of the map is an empty map. Keys are kept as sent.
pub fn text_map<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<std::collections::BTreeMap<String, String>, D::Error> {
    use serde::Deserialize;
    #[derive(Deserialize)]
    struct Text(#[serde(deserialize_with = "text")] String);
    let values: Option<std::collections::BTreeMap<String, Text>> =
        Option::deserialize(deserializer)?;
    Ok(values
        .unwrap_or_default()
        .into_iter()
        .map(|(key, Text(value))| (key, value))
        .collect())
}

/// Parses a non-negative integer exactly (never through `f64`), given as a
/// number or a numeric string; anything else (including `null`, fractions
/// and negative numbers) is `None`. For ids and sequence numbers, where a
/// wrong value is worse than none.
pub fn optional_u64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    use serde::Deserialize;
    let value = serde_json::Value::deserialize(deserializer)?;
    Ok(match value {
        serde_json::Value::Number(number) => number.as_u64(),
        serde_json::Value::String(text) => text.trim().parse().ok(),
        _ => None,
    })
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

/// Parses a list of ids given as strings or integers, each kept exactly as
/// text: an 18-digit account id is past the 53 bits a float holds, so ids
/// are never read through one. Other entries (floats included) are skipped;
/// `null` is an empty list.
pub fn id_list<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    deserializer.deserialize_any(IdListVisitor)
}

/// Reads an id given as a string or an integer exactly; `None` for anything
/// else. For wire types that hold one id.
pub fn optional_id<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    deserializer.deserialize_any(IdVisitor)
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

struct IdVisitor;

impl<'de> Visitor<'de> for IdVisitor {
    type Value = Option<String>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an id")
    }
    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Some(v.to_string()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Some(v.to_string()))
    }
    fn visit_i128<E>(self, v: i128) -> Result<Self::Value, E> {
        Ok(Some(v.to_string()))
    }
    fn visit_u128<E>(self, v: u128) -> Result<Self::Value, E> {
        Ok(Some(v.to_string()))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Some(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(Some(v))
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(None)
    }
    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(None)
    }
}

/// One entry of an id list, read by [`IdVisitor`].
struct IdEntry(Option<String>);

impl<'de> serde::Deserialize<'de> for IdEntry {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(IdVisitor).map(IdEntry)
    }
}

struct IdListVisitor;

impl<'de> Visitor<'de> for IdListVisitor {
    type Value = Vec<String>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of ids")
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<String>, A::Error> {
        let mut ids = Vec::new();
        while let Some(IdEntry(id)) = seq.next_element()? {
            ids.extend(id);
        }
        Ok(ids)
    }
    fn visit_unit<E>(self) -> Result<Vec<String>, E> {
        Ok(Vec::new())
    }
    fn visit_none<E>(self) -> Result<Vec<String>, E> {
        Ok(Vec::new())
    }
    fn visit_bool<E>(self, _: bool) -> Result<Vec<String>, E> {
        Ok(Vec::new())
    }
    fn visit_i64<E>(self, v: i64) -> Result<Vec<String>, E> {
        Ok(vec![v.to_string()])
    }
    fn visit_u64<E>(self, v: u64) -> Result<Vec<String>, E> {
        Ok(vec![v.to_string()])
    }
    fn visit_f64<E>(self, _: f64) -> Result<Vec<String>, E> {
        Ok(Vec::new())
    }
    fn visit_str<E>(self, v: &str) -> Result<Vec<String>, E> {
        Ok(vec![v.to_owned()])
    }
    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Vec<String>, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Vec::new())
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
    fn text_maps_read_every_value_as_text() {
        #[derive(Deserialize)]
        struct Holder {
            #[serde(default, deserialize_with = "text_map")]
            map: std::collections::BTreeMap<String, String>,
        }
        let holder: Holder = serde_json::from_str(
            r#"{"map": {"A": "1", "B": 2, "C": null, "D": {"x": 1}, "E": true}}"#,
        )
        .unwrap();
        let values: Vec<&str> = holder.map.values().map(String::as_str).collect();
        assert_eq!(values, ["1", "2", "", "", "true"]);
        let empty: Holder = serde_json::from_str(r#"{"map": null}"#).unwrap();
        assert!(empty.map.is_empty());
    }

    #[test]
    fn exact_integers_keep_every_digit() {
        #[derive(Deserialize)]
        struct Exact {
            #[serde(default, deserialize_with = "optional_u64")]
            n: Option<u64>,
        }
        let read = |json: &str| serde_json::from_str::<Exact>(json).unwrap().n;
        assert_eq!(
            read(r#"{"n": 144115188075855873}"#),
            Some(144_115_188_075_855_873)
        );
        assert_eq!(
            read(r#"{"n": "144115188075855873"}"#),
            Some(144_115_188_075_855_873)
        );
        for odd in ["-1", "1.5", "null", r#""soon""#, "[]"] {
            assert_eq!(read(&format!(r#"{{"n": {odd}}}"#)), None, "{odd}");
        }
        assert_eq!(read("{}"), None);
    }

    #[test]
    fn text_accepts_numbers_and_null() {
        assert_eq!(parse(r#"{"text": 42}"#).text, "42");
        assert_eq!(parse(r#"{"text": null}"#).text, "");
        assert_eq!(parse(r#"{"text": "x"}"#).text, "x");
    }

    #[derive(Deserialize)]
    struct Ids {
        #[serde(default, deserialize_with = "id_list")]
        ids: Vec<String>,
        #[serde(default, deserialize_with = "optional_id")]
        id: Option<String>,
    }

    #[test]
    fn ids_stay_exact_past_the_53_bits_of_a_float() {
        let ids: Ids = serde_json::from_str(
            r#"{"ids": ["user2", 144115188075855873, 3.5, null, -7], "id": 144115188075855873}"#,
        )
        .unwrap();
        assert_eq!(ids.ids, ["user2", "144115188075855873", "-7"]);
        assert_eq!(ids.id.as_deref(), Some("144115188075855873"));
        let through_float = 144_115_188_075_855_873_u64 as f64;
        assert_ne!(
            through_float as u64, 144_115_188_075_855_873,
            "the id would not survive a float"
        );
        let single: Ids = serde_json::from_str(r#"{"ids": "user2", "id": null}"#).unwrap();
        assert_eq!(single.ids, ["user2"]);
        assert_eq!(single.id, None);
    }
}
