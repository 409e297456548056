//! The rule engine: operators' Rhai rules, sandboxed, turned into intents.
//!
//! - [`engine`]: the sandboxed Rhai engine and its [`Limits`].
//! - [`api`]: what scripts see: `room`, participants, `params`, `state`,
//!   timers, `now()`, `log`.
//! - [`rule`]: one compiled `.rhai` file and its [`Handler`]s.
//! - [`set`]: a directory of rules compiled together; reloads swap it whole.
//! - [`binding`]: which rules run in a room, with which parameters.
//! - [`runner`]: [`RoomRules`], running a room's rules on each change.
//! - [`intent`]: what rules ask for; [`timers`]: `after`, `every`, `cancel`.
//! - [`snapshot`]: a room's rule state and timers as data that outlives the process.
//! - [`schedule`]: the room's sessions and zone, and `on_session_start`/`_end`.

pub mod api;
pub mod binding;
pub mod docs;
pub mod engine;
pub mod intent;
pub mod rule;
pub mod runner;
pub mod scaffold;
pub mod schedule;
pub mod set;
pub mod snapshot;
pub mod state;
pub mod timers;
pub mod uses;
pub mod values;

pub use binding::{BindError, RuleBinding};
pub use engine::{Limits, RuleEngine};
pub use intent::{Intent, Trigger};
pub use rule::{Handler, Rule, RuleError};
pub use runner::{CallLatency, LATENCY_BUCKETS, RoomRules, RuleFailure, RuleStats, handler_calls};
pub use set::{ReloadError, RuleLibrary, RuleSet, rule_files};
