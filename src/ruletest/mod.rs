//! `usher test`: testing rules the way `promtool test rules` tests alerts.
//!
//! A test file lists the rules under test and steps (people joining,
//! presenting, chatting, time passing), each with the commands expected
//! after it. [`run_paths`] runs them against the real rule engine with a fake
//! clock and reports a clear diff for every failure.

pub mod run;
pub mod spec;

pub use run::{Summary, run_paths};
