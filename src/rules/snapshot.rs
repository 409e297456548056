//! What a room's rules remember, as data that outlives the process.
//!
//! A [`RulesSnapshot`] holds each rule's `state` (as JSON) and the room's
//! pending timers with absolute deadlines, so a restarted usher, or another
//! instance taking the room over, continues where the rules were: a hand
//! queue keeps its order and who holds the floor, a warning still goes out
//! on time. [`RoomRules::snapshot`](super::RoomRules::snapshot) takes one and
//! [`RoomRules::restore`](super::RoomRules::restore) puts one back.
//!
//! State is data: maps, lists, text, numbers, booleans and `()`. A value
//! that is not data (a participant object kept whole, a function pointer)
//! is saved as its text, which is what a rule reading it back can use.
//! Integers and floats stay apart (`1` and `1.0`).
//!
//! The room's roster rides along (see [`RulesSnapshot::roster`]).
//!
//! A repeating timer is saved by its phase and period rather than its next
//! deadline, so that its firing alone does not change the snapshot (and
//! cost a write every period).

use std::collections::BTreeMap;

use rhai::{Array, Dynamic, FLOAT, INT, ImmutableString, Map};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::timers::Timer;
use crate::model::Participant;

/// The snapshot format this version writes and reads.
pub const SNAPSHOT_VERSION: u32 = 1;

/// A room's rules as data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RulesSnapshot {
    /// [`SNAPSHOT_VERSION`].
    pub version: u32,
    /// Each rule's `state`, by rule name.
    pub states: BTreeMap<String, Value>,
    /// Pending timers.
    pub timers: Vec<SavedTimer>,
    /// The id the next timer gets, so ids rules keep stay unique.
    pub next_timer_id: i64,
    /// The people in the room when it was taken: whoever takes the room
    /// next diffs its first roster against them, so those who came while
    /// nobody watched get their `on_join` and those who stayed do not.
    #[serde(default)]
    pub roster: Vec<Participant>,
    /// When it was taken (UNIX seconds): a roster much older than this
    /// run is no guide to who is new.
    #[serde(default)]
    pub saved_at: f64,
}

/// A pending timer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedTimer {
    /// The id the rule was given.
    pub id: i64,
    /// The rule.
    pub rule: String,
    /// The function it calls.
    pub function: String,
    /// One-shot: when it is due (UNIX seconds). Repeating: its phase, a
    /// time at which it is (or was) due.
    pub due: f64,
    /// Repeating: the period in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<f64>,
}

/// Why a snapshot cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// Not JSON of this shape.
    #[error("the saved rule state cannot be read: {0}")]
    Unreadable(#[from] serde_json::Error),
    /// Written by a newer usher.
    #[error("the saved rule state is of format {0}; this usher reads format {SNAPSHOT_VERSION}")]
    Version(u32),
}

impl RulesSnapshot {
    /// The snapshot as bytes to store. Equal snapshots give equal bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        // Serialising plain data into memory cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// A snapshot from stored bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<RulesSnapshot, SnapshotError> {
        let snapshot: RulesSnapshot = serde_json::from_slice(bytes)?;
        if snapshot.version != SNAPSHOT_VERSION {
            return Err(SnapshotError::Version(snapshot.version));
        }
        Ok(snapshot)
    }
}

impl SavedTimer {
    /// A pending timer as saved: a repeating one by its phase.
    pub fn from_timer(timer: &Timer) -> SavedTimer {
        let due = match timer.period {
            // Rounded to the millisecond, so that float error in the
            // rescheduling (`due += period`) does not change it.
            Some(period) if period > 0.0 => ((timer.due % period) * 1000.0).round() / 1000.0,
            _ => timer.due,
        };
        SavedTimer {
            id: timer.id,
            rule: timer.rule.to_string(),
            function: timer.function.clone(),
            due,
            period: timer.period,
        }
    }

    /// The timer to schedule at `now`: a one-shot timer keeps its deadline
    /// (one already past fires at once); a repeating one is next due at its
    /// first beat from `now` on.
    pub fn to_timer(&self, rule: std::sync::Arc<str>, now: f64) -> Timer {
        let due = match self.period {
            Some(period) if period > 0.0 => {
                let beats = ((now - self.due) / period).ceil().max(0.0);
                self.due + beats * period
            }
            _ => self.due,
        };
        Timer {
            id: self.id,
            rule,
            function: self.function.clone(),
            due,
            period: self.period,
        }
    }
}

/// A plain value (no state nodes in it) as JSON.
pub(crate) fn to_json(value: &Dynamic) -> Value {
    if value.is_unit() {
        return Value::Null;
    }
    if let Ok(flag) = value.as_bool() {
        return Value::Bool(flag);
    }
    if let Ok(number) = value.as_int() {
        return Value::from(number);
    }
    if let Ok(number) = value.as_float() {
        return serde_json::Number::from_f64(number).map_or(Value::Null, Value::Number);
    }
    if let Some(text) = value.read_lock::<ImmutableString>() {
        return Value::String(text.to_string());
    }
    if let Some(list) = value.read_lock::<Array>() {
        return Value::Array(list.iter().map(to_json).collect());
    }
    if let Some(map) = value.read_lock::<Map>() {
        return Value::Object(
            map.iter()
                .map(|(key, value)| (key.to_string(), to_json(value)))
                .collect(),
        );
    }
    Value::String(value.to_string())
}

/// JSON as a plain value: the inverse of [`to_json`].
pub(crate) fn from_json(value: &Value) -> Dynamic {
    match value {
        Value::Null => Dynamic::UNIT,
        Value::Bool(flag) => Dynamic::from_bool(*flag),
        Value::Number(number) => match number.as_i64() {
            Some(int) => Dynamic::from_int(int as INT),
            None => Dynamic::from_float(number.as_f64().unwrap_or_default() as FLOAT),
        },
        Value::String(text) => Dynamic::from(ImmutableString::from(text.as_str())),
        Value::Array(items) => Dynamic::from_array(items.iter().map(from_json).collect()),
        Value::Object(entries) => Dynamic::from_map(
            entries
                .iter()
                .map(|(key, value)| (key.as_str().into(), from_json(value)))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn values_survive_json() {
        let mut map = Map::new();
        map.insert("int".into(), Dynamic::from_int(3));
        map.insert("float".into(), Dynamic::from_float(3.0));
        map.insert("text".into(), Dynamic::from("Ann"));
        map.insert("none".into(), Dynamic::UNIT);
        map.insert(
            "list".into(),
            Dynamic::from_array(vec![Dynamic::from_bool(true), Dynamic::from_int(-1)]),
        );
        let value = Dynamic::from_map(map);
        let json = to_json(&value);
        assert_eq!(
            json.to_string(),
            r#"{"float":3.0,"int":3,"list":[true,-1],"none":null,"text":"Ann"}"#
        );
        assert_eq!(to_json(&from_json(&json)), json);
        assert!(from_json(&json["int"]).is_int() && from_json(&json["float"]).is_float());
    }

    #[test]
    fn repeating_timers_are_saved_by_phase() {
        let mut timer = Timer {
            id: 4,
            rule: "r".into(),
            function: "tick".into(),
            due: 1005.0,
            period: Some(5.0),
        };
        let saved = SavedTimer::from_timer(&timer);
        timer.due += 5.0;
        assert_eq!(
            SavedTimer::from_timer(&timer),
            saved,
            "firing changes nothing"
        );
        let back = saved.to_timer(Arc::from("r"), 2001.5);
        assert_eq!(back.due, 2005.0);
        let once = SavedTimer {
            period: None,
            due: 1500.0,
            ..saved
        };
        assert_eq!(
            once.to_timer(Arc::from("r"), 2000.0).due,
            1500.0,
            "fires at once"
        );
    }
}
