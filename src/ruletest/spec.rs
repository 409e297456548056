//! The rule-test file format.
//!
//! ```yaml
//! rules:                                  # the rules under test, as in the config
//!   - lock_when_full: { max: 4, reserve: 1 }
//! participants:                           # already in the room when usher connects
//!   - { name: Ada, role: host }
//! waiting: [Carl]                         # already in the waiting room then
//! start: 2026-11-23T09:00:00+08:00        # the fake clock's start (optional)
//! zone: Asia/Shanghai                     # the room's zone (optional; UTC)
//! timetable: timetables/lectures.ics      # the room's timetable (optional),
//!                                         # relative to this file
//! scheduled: { start: 2026-11-23T09:00:00+08:00, end: 2026-11-23T10:30:00+08:00 }
//!                                         # when the platform has the room
//!                                         # booked (optional; `end` too)
//! tests:
//!   - name: locks when full and says so
//!     steps:
//!       - join: Bob
//!         expect: []                      # nothing may be sent
//!       - join: Cat
//!         expect: [lock, message]         # `message` matches any message
//!       - wait: 5m                        # time passes; timers fire
//!       - wait_until: 2026-11-23T10:00:00+08:00   # …up to this time
//!       - reconnect                       # the stream drops and resyncs
//!         expect: []
//! ```
//!
//! Steps are the simulator's vocabulary ([`Step`]) plus `reconnect`. A step
//! without `expect` is not checked. A test may override `rules`,
//! `participants`, `waiting`, `start`, `zone`, `timetable` and `scheduled`, and check
//! what usher sends when it connects with `connect`.

use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;
use serde::de::{self, MapAccess, Visitor};

use crate::clock::{Zone, parse_timestamp};
use crate::rules::RuleBinding;
use crate::sim::step::{Joiner, Step};
use crate::yaml;

/// One test file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestFile {
    /// The rules every test runs, in order.
    #[serde(default)]
    pub rules: Vec<RuleBinding>,
    /// The simulated room's alias.
    #[serde(default = "default_room")]
    pub room: String,
    /// When the fake clock starts (RFC 3339).
    #[serde(default = "default_start")]
    pub start: String,
    /// Who is in the room before usher connects.
    #[serde(default)]
    pub participants: Vec<Joiner>,
    /// Who is in the waiting room before usher connects.
    #[serde(default)]
    pub waiting: Vec<Joiner>,
    /// The room's zone (UTC when not given).
    #[serde(default)]
    pub zone: Option<Zone>,
    /// The room's timetable, an `.ics` file relative to the test file.
    #[serde(default)]
    pub timetable: Option<PathBuf>,
    /// When the room's platform has it booked.
    #[serde(default)]
    pub scheduled: Option<Scheduled>,
    /// The platform the room is on: what it cannot do is dropped as
    /// unsupported, as the daemon does (vmr, which can do nearly all, by
    /// default).
    #[serde(default)]
    pub platform: Option<crate::platform::PlatformKind>,
    /// The tests.
    pub tests: Vec<TestCase>,
}

/// When a test room's platform has it booked (RFC 3339), as a booked
/// meeting's or a created room's schedule would say.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scheduled {
    /// The scheduled start.
    pub start: String,
    /// The scheduled end, if the platform says.
    #[serde(default)]
    pub end: Option<String>,
}

fn default_room() -> String {
    "lecture@usher.test".to_owned()
}

/// A Monday morning, so schedules in tests have something sensible to work with.
fn default_start() -> String {
    "2026-01-05T09:00:00Z".to_owned()
}

/// One test: a fresh room, the rules, and steps with expectations.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestCase {
    /// What the test shows.
    pub name: String,
    /// Rules for this test instead of the file's.
    #[serde(default)]
    pub rules: Option<Vec<RuleBinding>>,
    /// Participants for this test instead of the file's.
    #[serde(default)]
    pub participants: Option<Vec<Joiner>>,
    /// The waiting room for this test instead of the file's.
    #[serde(default)]
    pub waiting: Option<Vec<Joiner>>,
    /// When the fake clock starts for this test instead of the file's.
    #[serde(default)]
    pub start: Option<String>,
    /// The room's zone for this test instead of the file's.
    #[serde(default)]
    pub zone: Option<Zone>,
    /// The room's timetable for this test instead of the file's.
    #[serde(default)]
    pub timetable: Option<PathBuf>,
    /// When the room's platform has it booked, for this test.
    #[serde(default)]
    pub scheduled: Option<Scheduled>,
    /// Commands expected when usher connects (not checked if absent).
    #[serde(default)]
    pub connect: Option<Vec<String>>,
    /// The steps.
    pub steps: Vec<TestStep>,
}

/// One step and, optionally, the commands expected after it.
#[derive(Debug, Clone, PartialEq)]
pub struct TestStep {
    /// What happens.
    pub action: Action,
    /// What usher should send as a result; `None` is not checked.
    pub expect: Option<Vec<String>>,
}

/// What happens in a step.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Something people do, or time passing.
    Step(Step),
    /// usher's event stream drops and reconnects; the room resyncs.
    Reconnect,
    /// Time passes up to this time (UNIX seconds), written as RFC 3339.
    WaitUntil(f64, String),
}

impl Action {
    /// One short line for reports.
    pub fn describe(&self) -> String {
        match self {
            Action::Step(step) => step.describe(),
            Action::Reconnect => "the stream reconnects".to_owned(),
            Action::WaitUntil(_, written) => format!("wait until {written}"),
        }
    }
}

const RECONNECT: &str = "reconnect";
const WAIT_UNTIL: &str = "wait_until";

impl<'de> Deserialize<'de> for TestStep {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(TestStepVisitor)
    }
}

struct TestStepVisitor;

impl<'de> Visitor<'de> for TestStepVisitor {
    type Value = TestStep;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a step such as `join: Bob` (with an optional `expect: [...]`), or `reconnect`")
    }

    fn visit_str<E: de::Error>(self, word: &str) -> Result<TestStep, E> {
        let action = if word == RECONNECT {
            Action::Reconnect
        } else {
            Action::Step(
                Step::deserialize(de::value::StrDeserializer::<E>::new(word)).map_err(|_| {
                    let hint = if word.contains(" expect") {
                        "; a step without details needs a colon to take an `expect` \
                         (`- silence:` then `expect: [...]` on the next line)"
                    } else {
                        "; write steps like `join: Bob`, `silence`, `stop_presenting` or `reconnect`"
                    };
                    E::custom(format!("`{word}` on its own is not a step{hint}"))
                })?,
            )
        };
        Ok(TestStep {
            action,
            expect: None,
        })
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TestStep, A::Error> {
        let mut action = None;
        let mut expect = None;
        while let Some(key) = map.next_key::<String>()? {
            if key == "expect" {
                expect = Some(map.next_value::<Vec<String>>()?);
                continue;
            }
            if action.is_some() {
                return Err(de::Error::custom(format!(
                    "one action per step: `{key}` needs a step of its own"
                )));
            }
            action = Some(if key == RECONNECT {
                map.next_value::<de::IgnoredAny>()?;
                Action::Reconnect
            } else if key == WAIT_UNTIL {
                let written = map.next_value::<String>()?;
                let at = parse_timestamp(&written).map_err(de::Error::custom)?;
                Action::WaitUntil(at, written)
            } else {
                Action::Step(yaml::enum_from_entry(&key, &mut map)?)
            });
        }
        let action =
            action.ok_or_else(|| de::Error::custom("this step has `expect` but no action"))?;
        Ok(TestStep { action, expect })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Span;

    fn steps(text: &str) -> Result<Vec<TestStep>, yaml::YamlError> {
        yaml::from_str(text)
    }

    #[test]
    fn reads_actions_with_and_without_expectations() {
        let parsed = steps(
            "- join: Bob\n  expect: [mute Bob]\n- silence\n- stop_presenting:\n  expect: []\n- reconnect\n- wait: 5m\n- wait_until: 1970-01-01T00:01:00Z\n",
        )
        .unwrap();
        assert_eq!(parsed.len(), 6);
        assert_eq!(
            parsed[5].action,
            Action::WaitUntil(60.0, "1970-01-01T00:01:00Z".to_owned())
        );
        assert_eq!(parsed[0].expect, Some(vec!["mute Bob".to_owned()]));
        assert_eq!(parsed[1].action, Action::Step(Step::Silence));
        assert_eq!(parsed[2].expect, Some(vec![]));
        assert_eq!(parsed[3].action, Action::Reconnect);
        assert_eq!(parsed[4].action, Action::Step(Step::Wait(Span::secs(300))));
    }

    #[test]
    fn mistakes_are_explained_where_they_are() {
        let err = steps("- join: Bob\n- jion: Bob\n  expect: []\n").unwrap_err();
        assert_eq!(err.line, Some(2), "{err}");
        assert!(err.message.contains("unknown variant `jion`"), "{err}");
        let err = steps("- join: Bob\n  leave: Bob\n").unwrap_err();
        assert!(err.message.contains("one action per step"), "{err}");
        let err = steps("- expect: []\n").unwrap_err();
        assert!(err.message.contains("no action"), "{err}");
        let err = steps("- join\n").unwrap_err();
        assert!(
            err.message.contains("`join` on its own is not a step"),
            "{err}"
        );
        let err = steps("- wait_until: soon\n").unwrap_err();
        assert!(err.message.contains("is not a timestamp"), "{err}");
        let err = steps("- wait: soon\n").unwrap_err();
        assert_eq!(err.line, Some(1));
        assert!(err.message.contains("not a duration"), "{err}");
    }
}
