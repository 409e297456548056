//! The simulators' call log: every request a simulated platform answered.
//!
//! Tests read it to see what usher sent (and that it sent nothing twice);
//! the tally counts every call ever answered, by name and status, for
//! benchmarks that run longer than the log remembers.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::SystemTime;

/// How many calls the log remembers.
const CALLS_KEPT: usize = 10_000;

/// One request a simulator received.
#[derive(Debug, Clone, PartialEq)]
pub struct CallRecord {
    /// The room the call was about, when it names one.
    pub room: Option<String>,
    /// `GET`, `POST`, `PUT`, …
    pub method: String,
    /// The path below the room (seed 001: `end_session`,
    /// `participants/<uuid>/mute`) or the call's own path. Never the query,
    /// so never a token.
    pub path: String,
    /// The HTTP status answered.
    pub status: u16,
    /// When it arrived.
    pub at: SystemTime,
}

/// Every call a simulator answered: the most recent ones in full, and a
/// tally of all of them.
#[derive(Debug, Default)]
pub struct CallLog {
    calls: Mutex<VecDeque<CallRecord>>,
    /// Every call ever answered, by call name and status (never trimmed).
    tally: Mutex<BTreeMap<(String, u16), u64>>,
}

impl CallLog {
    /// Records one call. Its name in the tally is the last path segment.
    pub fn record(&self, call: CallRecord) {
        let name = call.path.rsplit('/').next().unwrap_or_default().to_owned();
        *lock(&self.tally).entry((name, call.status)).or_default() += 1;
        let mut calls = lock(&self.calls);
        if calls.len() == CALLS_KEPT {
            calls.pop_front();
        }
        calls.push_back(call);
    }

    /// The most recent calls (up to 10,000), oldest first.
    pub fn calls(&self) -> Vec<CallRecord> {
        lock(&self.calls).iter().cloned().collect()
    }

    /// How many calls were answered, by call name and HTTP status.
    pub fn tally(&self) -> BTreeMap<(String, u16), u64> {
        lock(&self.tally).clone()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
