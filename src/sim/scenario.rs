//! Scenario files: a room, who is there at the start, and a timeline.
//!
//! ```yaml
//! room: lecture@usher.example
//! pin: "2468"                 # optional; without it any PIN (or none) is accepted
//! token_expiry: 120           # seconds or a duration such as 2m; default 120
//! participants:               # present before anyone connects
//!   - { name: Prof. Ada Lovelace, role: host }
//! timeline:                   # `at` (from the start, in order) plus one action
//!   - at: 2s
//!     join: Bob
//!   - at: 4s
//!     drop_streams:           # actions without details end with the colon
//!   - at: 5s
//!     fail_commands: { count: 2, status: 502 }
//! ```
//!
//! An action is a [`Step`] (the same vocabulary as rule tests) or a
//! [`Fault`], which only scenarios have. Files are read with [`crate::yaml`],
//! so mistakes are reported as `file:line:column`.

use std::fmt;
use std::path::Path;

use serde::de::value::StringDeserializer;
use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, IntoDeserializer, MapAccess, SeqAccess,
    VariantAccess, Visitor,
};
use serde::{Deserialize, Serialize};

use super::step::{Joiner, Step};
use crate::model::{Secret, Span};
use crate::yaml::{self, YamlError};

/// The bundled lecture scenario, played when no scenario file is given.
const BUNDLED_LECTURE: &str = include_str!("../../examples/scenarios/lecture.yaml");

/// Every step name, for telling a misspelt action from a fault.
const STEP_NAMES: &[&str] = &[
    "join",
    "waiting_room",
    "leave",
    "present",
    "stop_presenting",
    "speak",
    "silence",
    "chat",
    "raise_hand",
    "lower_hand",
    "layout",
    "wait",
];

/// Every fault name.
const FAULT_NAMES: &[&str] = &[
    "drop_streams",
    "expire_tokens",
    "rate_limit",
    "expired_signatures",
    "fail_commands",
    "delay_responses",
    "heartbeat_silence",
    "reuse_ws_token",
    "drop_callbacks",
    "duplicate_callbacks",
    "reorder_callbacks",
    "bad_signatures",
];

/// A scenario: one room and what happens in it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// The room alias, e.g. `lecture@usher.example`.
    pub room: String,
    /// The host PIN; `None` accepts any PIN or none.
    #[serde(default, deserialize_with = "optional_pin")]
    pub pin: Option<Secret>,
    /// How long a session token lasts.
    #[serde(default = "default_token_expiry")]
    pub token_expiry: Span,
    /// Who is in the room before anyone connects.
    #[serde(default)]
    pub participants: Vec<Joiner>,
    /// What happens, in time order.
    #[serde(default, deserialize_with = "timeline")]
    pub timeline: Vec<TimelineEntry>,
}

/// One line of the timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct TimelineEntry {
    /// When, counted from the start of the scenario.
    pub at: Span,
    /// What happens then.
    pub action: Action,
}

/// What happens at one point of the timeline.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Something people do.
    Step(Step),
    /// Something the platform does wrong.
    Fault(Fault),
}

/// A platform failure to test clients against.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Fault {
    /// Close every event stream of the room; sessions stay valid.
    DropStreams,
    /// Every token of the room becomes invalid at once; those sessions end,
    /// their streams close and their visible participants leave.
    ExpireTokens,
    /// Webhook platforms: the next `count` REST calls of the room are
    /// refused as over the platform's rate limit.
    RateLimit {
        /// How many (default 1).
        #[serde(default = "one")]
        count: u32,
    },
    /// Webhook platforms: the room's next `count` callbacks are first sent
    /// signed for a time long past (then again, signed right).
    ExpiredSignatures {
        /// How many (default 1).
        #[serde(default = "one")]
        count: u32,
    },
    /// The next `count` command calls (POSTs of conference and participant
    /// commands; not session calls, `service_status`/`participants` queries
    /// or event streams) answer HTTP `status` with
    /// `{"status":"failed","result":"simulated failure"}`.
    FailCommands {
        /// How many calls fail (default 1).
        #[serde(default = "one")]
        count: u32,
        /// The HTTP status they answer (default 503).
        #[serde(default = "service_unavailable", deserialize_with = "http_status")]
        status: u16,
    },
    /// The next `count` REST responses of the room are held back by `delay`.
    DelayResponses {
        /// How long each response is held back.
        delay: Span,
        /// How many responses (default 1).
        #[serde(default = "one")]
        count: u32,
    },
    /// Huawei: the open meeting sockets go quiet (no pushes, no heartbeat
    /// echoes) without closing, as a half-dead connection does.
    HeartbeatSilence,
    /// Huawei: the next wsToken issued is one already used, so the socket
    /// it opens is closed at once.
    ReuseWsToken,
    /// Webhook platforms: the room's next `count` callbacks are never sent
    /// (their place in the room's numbering is spent, so a gap shows).
    DropCallbacks {
        /// How many (default 1).
        #[serde(default = "one")]
        count: u32,
    },
    /// Webhook platforms: the room's next `count` callbacks are sent twice.
    DuplicateCallbacks {
        /// How many (default 1).
        #[serde(default = "one")]
        count: u32,
    },
    /// Webhook platforms: each of the room's next `count` callbacks is sent
    /// after the one that follows it.
    ReorderCallbacks {
        /// How many (default 1).
        #[serde(default = "one")]
        count: u32,
    },
    /// Webhook platforms: the room's next `count` callbacks are first sent
    /// with a wrong signature (then again, signed right, as a platform
    /// resends what was not accepted).
    BadSignatures {
        /// How many (default 1).
        #[serde(default = "one")]
        count: u32,
    },
}

impl Fault {
    /// The fault as one short line, for logs.
    pub fn describe(&self) -> String {
        match self {
            Fault::DropStreams => "fault: drop every event stream".to_owned(),
            Fault::ExpireTokens => "fault: expire every token".to_owned(),
            Fault::RateLimit { count } => {
                format!("fault: refuse the next {count} call(s) as rate limited")
            }
            Fault::ExpiredSignatures { count } => {
                format!("fault: sign the next {count} callback(s) for a time long past at first")
            }
            Fault::FailCommands { count, status } => {
                format!("fault: fail the next {count} command(s) with HTTP {status}")
            }
            Fault::DelayResponses { delay, count } => {
                format!("fault: delay the next {count} response(s) by {delay}")
            }
            Fault::HeartbeatSilence => "fault: the meeting sockets go silent".to_owned(),
            Fault::ReuseWsToken => "fault: the next wsToken is one already used".to_owned(),
            Fault::DropCallbacks { count } => format!("fault: drop the next {count} callback(s)"),
            Fault::DuplicateCallbacks { count } => {
                format!("fault: send the next {count} callback(s) twice")
            }
            Fault::ReorderCallbacks { count } => {
                format!("fault: send the next {count} callback(s) out of order")
            }
            Fault::BadSignatures { count } => {
                format!("fault: sign the next {count} callback(s) wrongly at first")
            }
        }
    }
}

impl Action {
    /// The action as one short line, for logs.
    pub fn describe(&self) -> String {
        match self {
            Action::Step(step) => step.describe(),
            Action::Fault(fault) => fault.describe(),
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

impl Scenario {
    /// Reads a scenario file.
    pub fn from_file(path: &Path) -> Result<Scenario, YamlError> {
        yaml::from_file(path)
    }

    /// Reads scenario text.
    pub fn from_yaml(text: &str) -> Result<Scenario, YamlError> {
        yaml::from_str(text)
    }

    /// The bundled lecture scenario (`examples/scenarios/lecture.yaml`).
    pub fn bundled() -> Scenario {
        Scenario::from_yaml(BUNDLED_LECTURE)
            .expect("the bundled scenario is valid: a unit test parses it")
    }

    /// When the last timeline entry happens.
    pub fn length(&self) -> Span {
        self.timeline
            .last()
            .map(|entry| entry.at)
            .unwrap_or_default()
    }
}

fn default_token_expiry() -> Span {
    Span::secs(120)
}

fn one() -> u32 {
    1
}

fn service_unavailable() -> u16 {
    503
}

fn http_status<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u16, D::Error> {
    let status = u16::deserialize(deserializer)?;
    if (200..=599).contains(&status) {
        Ok(status)
    } else {
        Err(de::Error::custom(format!(
            "`{status}` is not an HTTP status; use 200 to 599"
        )))
    }
}

fn optional_pin<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Secret>, D::Error> {
    let pin: Option<Secret> = Option::deserialize(deserializer)?;
    Ok(pin.filter(|pin| !pin.is_empty()))
}

/// Reads the timeline, checking that entries are in time order as it goes
/// (so an error points at the entry that is out of place).
fn timeline<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<TimelineEntry>, D::Error> {
    struct TimelineVisitor;

    impl<'de> Visitor<'de> for TimelineVisitor {
        type Value = Vec<TimelineEntry>;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a list of timeline entries, each `at` plus one action")
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut entries: Vec<TimelineEntry> = Vec::new();
            loop {
                let seed = EntrySeed {
                    number: entries.len() + 1,
                    not_before: entries.last().map(|entry| entry.at).unwrap_or_default(),
                };
                match seq.next_element_seed(seed)? {
                    Some(entry) => entries.push(entry),
                    None => return Ok(entries),
                }
            }
        }
    }

    deserializer.deserialize_seq(TimelineVisitor)
}

/// Reads one timeline entry, which must not come before `not_before`.
struct EntrySeed {
    number: usize,
    not_before: Span,
}

impl<'de> DeserializeSeed<'de> for EntrySeed {
    type Value = TimelineEntry;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<TimelineEntry, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for EntrySeed {
    type Value = TimelineEntry;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a map with `at` and one action, e.g. `{ at: 2s, join: Bob }`")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TimelineEntry, A::Error> {
        let mut at: Option<Span> = None;
        let mut action: Option<(String, Action)> = None;
        while let Some(key) = map.next_key::<String>()? {
            if key == "at" {
                if at.is_some() {
                    return Err(de::Error::duplicate_field("at"));
                }
                let when: Span = map.next_value()?;
                if when < self.not_before {
                    return Err(de::Error::custom(format!(
                        "timeline entry {} is at {when}, before the entry above it \
                         ({}); keep the timeline in time order",
                        self.number, self.not_before
                    )));
                }
                at = Some(when);
                continue;
            }
            if let Some((first, _)) = &action {
                return Err(de::Error::custom(format!(
                    "timeline entry {} has two actions, `{first}` and `{key}`; \
                     give each its own entry",
                    self.number
                )));
            }
            let value = map.next_value_seed(ActionSeed { name: key.clone() })?;
            action = Some((key, value));
        }
        let at = at.ok_or_else(|| {
            de::Error::custom(format!(
                "timeline entry {} has no `at` (when it happens, e.g. `at: 2s`)",
                self.number
            ))
        })?;
        let (_, action) = action.ok_or_else(|| {
            de::Error::custom(format!(
                "timeline entry {} (at {at}) has no action; add a step such as \
                 `join: Bob` or a fault such as `drop_streams:`",
                self.number
            ))
        })?;
        Ok(TimelineEntry { at, action })
    }
}

/// Reads the value of an action key as a step or a fault of that name.
struct ActionSeed {
    name: String,
}

impl<'de> DeserializeSeed<'de> for ActionSeed {
    type Value = Action;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Action, D::Error> {
        let is_fault = FAULT_NAMES.contains(&self.name.as_str());
        if !is_fault && !STEP_NAMES.contains(&self.name.as_str()) {
            return Err(de::Error::custom(format!(
                "unknown action `{}`; expected `at` and one step ({}) or fault ({})",
                self.name,
                STEP_NAMES.join(", "),
                FAULT_NAMES.join(", ")
            )));
        }
        let keyed = Keyed {
            name: self.name,
            value: deserializer,
        };
        if is_fault {
            Fault::deserialize(keyed).map(Action::Fault)
        } else {
            Step::deserialize(keyed).map(Action::Step)
        }
    }
}

/// An enum given as a variant name and the deserializer of its content, so
/// an action key and its value read exactly like `{name: value}` would.
struct Keyed<D> {
    name: String,
    value: D,
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Keyed<D> {
    type Error = D::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        visitor.visit_enum(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

impl<'de, D: Deserializer<'de>> EnumAccess<'de> for Keyed<D> {
    type Error = D::Error;
    type Variant = KeyedContent<D>;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, KeyedContent<D>), D::Error> {
        let name: StringDeserializer<D::Error> = self.name.into_deserializer();
        Ok((seed.deserialize(name)?, KeyedContent(self.value)))
    }
}

/// The content half of [`Keyed`].
struct KeyedContent<D>(D);

impl<'de, D: Deserializer<'de>> VariantAccess<'de> for KeyedContent<D> {
    type Error = D::Error;

    fn unit_variant(self) -> Result<(), D::Error> {
        <()>::deserialize(self.0)
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, D::Error> {
        seed.deserialize(self.0)
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, D::Error> {
        self.0.deserialize_tuple(len, visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_struct("action", fields, visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Role;
    use crate::sim::step::Chat;

    fn parse(text: &str) -> Result<Scenario, YamlError> {
        Scenario::from_yaml(text)
    }

    #[test]
    fn reads_the_documented_format() {
        let scenario = parse(
            r#"
room: lecture@usher.example
pin: "2468"
token_expiry: 90s
participants:
  - { name: Prof. Ada Lovelace, role: host }
  - Bob
timeline:
  - at: 2s
    join: Carl
  - at: 2s
    chat: { from: Carl, text: "!lock" }
  - at: 3s
    stop_presenting:
  - at: 4s
    drop_streams:
  - at: 5s
    fail_commands: { count: 2, status: 502 }
  - at: 6s
    delay_responses: { delay: 300ms, count: 3 }
  - at: 7s
    expire_tokens: ~
  - { at: 8s, silence: }
"#,
        )
        .unwrap();
        assert_eq!(scenario.room, "lecture@usher.example");
        assert_eq!(scenario.pin.as_ref().map(Secret::expose), Some("2468"));
        assert_eq!(scenario.token_expiry, Span::secs(90));
        assert_eq!(scenario.participants[0].role, Role::Chair);
        assert_eq!(scenario.participants[1], Joiner::guest("Bob"));
        let actions: Vec<&Action> = scenario.timeline.iter().map(|e| &e.action).collect();
        assert_eq!(
            actions,
            [
                &Action::Step(Step::Join(Joiner::guest("Carl"))),
                &Action::Step(Step::Chat(Chat {
                    from: "Carl".into(),
                    text: "!lock".into()
                })),
                &Action::Step(Step::StopPresenting),
                &Action::Fault(Fault::DropStreams),
                &Action::Fault(Fault::FailCommands {
                    count: 2,
                    status: 502
                }),
                &Action::Fault(Fault::DelayResponses {
                    delay: "300ms".parse().unwrap(),
                    count: 3
                }),
                &Action::Fault(Fault::ExpireTokens),
                &Action::Step(Step::Silence),
            ]
        );
        assert_eq!(scenario.length(), Span::secs(8));
    }

    #[test]
    fn defaults_apply() {
        let scenario = parse("room: r\nfail: ").unwrap_err();
        assert!(
            scenario.message.contains("unknown field `fail`"),
            "{scenario}"
        );
        let scenario =
            parse("room: r\npin: \"\"\ntimeline:\n  - { at: 1, fail_commands: {} }").unwrap();
        assert_eq!(scenario.pin, None);
        assert_eq!(scenario.token_expiry, Span::secs(120));
        assert!(scenario.participants.is_empty());
        assert_eq!(
            scenario.timeline[0].action,
            Action::Fault(Fault::FailCommands {
                count: 1,
                status: 503
            })
        );
    }

    #[test]
    fn out_of_order_entries_are_pointed_at() {
        let err = parse("room: r\ntimeline:\n  - at: 5s\n    join: A\n  - at: 3s\n    join: B\n")
            .unwrap_err();
        assert_eq!(err.line, Some(5), "{err}");
        assert!(err.message.contains("timeline entry 2 is at 3s"), "{err}");
        assert!(err.message.contains("(5s)"), "{err}");
    }

    #[test]
    fn malformed_entries_say_what_is_wrong() {
        let cases = [
            ("  - join: A\n", "has no `at`"),
            ("  - at: 1s\n", "has no action"),
            (
                "  - { at: 1s, join: A, leave: A }\n",
                "two actions, `join` and `leave`",
            ),
            ("  - { at: 1s, jion: A }\n", "unknown action `jion`"),
            ("  - { at: 1s, drop_stream: }\n", "fault (drop_streams"),
            (
                "  - { at: 1s, fail_commands: { count: 1, status: 42 } }\n",
                "not an HTTP status",
            ),
            (
                "  - { at: 1s, fail_commands: { cuont: 1 } }\n",
                "unknown field `cuont`",
            ),
            ("  - { at: 1s, drop_streams: yes }\n", "expected null"),
            ("  - { at: soon, join: A }\n", "not a duration"),
            ("  - { at: 1s, join: { name: A, rol: host } }\n", "`name`"),
        ];
        for (entry, expected) in cases {
            let text = format!("room: r\ntimeline:\n{entry}");
            let err = parse(&text).unwrap_err();
            assert!(err.message.contains(expected), "{entry}: {err}");
            assert_eq!(err.line, Some(3), "{entry}: {err}");
        }
    }

    #[test]
    fn every_step_and_fault_name_is_known() {
        for name in STEP_NAMES {
            let value = match *name {
                "stop_presenting" | "silence" => "",
                "chat" => "{ from: A, text: hi }",
                "wait" => "1s",
                _ => "A",
            };
            let text = format!("room: r\ntimeline:\n  - {{ at: 1s, {name}: {value} }}\n");
            parse(&text).unwrap_or_else(|err| panic!("{name}: {err}"));
        }
        for name in FAULT_NAMES {
            let value = if *name == "delay_responses" {
                "{ delay: 1s }"
            } else {
                ""
            };
            let text = format!("room: r\ntimeline:\n  - {{ at: 1s, {name}: {value} }}\n");
            parse(&text).unwrap_or_else(|err| panic!("{name}: {err}"));
        }
    }

    #[test]
    fn the_bundled_lecture_is_valid_and_realistic() {
        let scenario = Scenario::bundled();
        assert_eq!(scenario.room, "lecture@usher.example");
        assert_eq!(scenario.pin.as_ref().map(Secret::expose), Some("2468"));
        assert_eq!(scenario.token_expiry, Span::secs(120));
        assert!(
            scenario
                .participants
                .iter()
                .any(|p| p.name == "Prof. Ada Lovelace")
        );
        let length = scenario.length().as_secs_f64();
        assert!((35.0..=60.0).contains(&length), "{length}");
        let has =
            |wanted: &dyn Fn(&Action) -> bool| scenario.timeline.iter().any(|e| wanted(&e.action));
        assert!(has(&|a| matches!(a, Action::Fault(Fault::DropStreams))));
        assert!(has(&|a| matches!(a, Action::Step(Step::WaitingRoom(_)))));
        assert!(has(&|a| matches!(a, Action::Step(Step::Present(_)))));
        assert!(has(&|a| matches!(a, Action::Step(Step::LowerHand(_)))));
        assert!(has(
            &|a| matches!(a, Action::Step(Step::Chat(c)) if c.text == "!unlock")
        ));
    }

    #[test]
    fn the_bundled_lecture_plays_without_errors() {
        let scenario = Scenario::bundled();
        let mut conference = super::super::conference::Conference::new(&scenario.room);
        for joiner in &scenario.participants {
            conference
                .apply_step(&Step::Join(joiner.clone()), 0.0)
                .unwrap();
        }
        for entry in &scenario.timeline {
            if let Action::Step(step) = &entry.action {
                conference
                    .apply_step(step, entry.at.as_secs_f64())
                    .unwrap_or_else(|err| panic!("{}: {err}", step.describe()));
            }
        }
        let guests = conference.participants().filter(|p| p.is_guest()).count();
        assert!((6..=14).contains(&guests), "{guests}");
    }
}
