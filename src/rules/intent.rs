//! Intents: commands a rule asked for, not yet sent.
//!
//! Rules never perform I/O. Calling `p.mute()` in a handler records an
//! [`Intent`] naming the rule, the command and what triggered it; the
//! dispatcher decides what is actually sent.

use std::fmt;
use std::sync::Arc;

use crate::model::{Command, Target};

/// A command a rule asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct Intent {
    /// The rule that asked.
    pub rule: Arc<str>,
    /// What it asked for.
    pub command: Command,
    /// What made it ask.
    pub trigger: Arc<Trigger>,
    /// The rule runs in shadow mode: its commands are recorded, never sent.
    pub shadow: bool,
}

/// What caused a handler to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trigger {
    /// The handler or timer function that ran, e.g. `on_join` or `warn_end`.
    pub handler: String,
    /// The platform event behind it, e.g. `participant_create`, or `timer`.
    pub event: String,
    /// The participant the event was about, if any.
    pub participant: Option<Target>,
}

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.handler)?;
        if let Some(participant) = &self.participant {
            write!(f, "({})", participant.name)?;
        }
        write!(f, " on {}", self.event)
    }
}
