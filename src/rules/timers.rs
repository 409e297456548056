//! Rule timers: `after`, `every` and `cancel`, on an injected clock.
//!
//! The queue is plain data with no clock of its own: the room runner asks for
//! the next due time, sleeps (or, in tests, moves a fake clock) and takes
//! what is due. Times are UNIX seconds as floats, like `now()` in rules.

use std::sync::Arc;

/// One scheduled call of a rule's function.
#[derive(Debug, Clone, PartialEq)]
pub struct Timer {
    /// The id returned to the rule by `after`/`every`.
    pub id: i64,
    /// The rule that owns it.
    pub rule: Arc<str>,
    /// The function to call (no arguments).
    pub function: String,
    /// When it is due.
    pub due: f64,
    /// For `every`: the period.
    pub period: Option<f64>,
}

/// What a rule asked of its timers during one call.
#[derive(Debug, Clone, PartialEq)]
pub enum TimerRequest {
    /// Schedule a timer.
    Start(Timer),
    /// Cancel the timer with this id.
    CancelId(i64),
    /// Cancel every timer that calls this function.
    CancelFunction(String),
}

/// A room's pending timers.
#[derive(Debug, Default)]
pub struct TimerQueue {
    timers: Vec<Timer>,
}

impl TimerQueue {
    /// Applies one rule's requests.
    pub fn apply(&mut self, rule: &str, request: TimerRequest) {
        match request {
            TimerRequest::Start(timer) => self.timers.push(timer),
            TimerRequest::CancelId(id) => self.timers.retain(|t| !(t.id == id && &*t.rule == rule)),
            TimerRequest::CancelFunction(function) => self
                .timers
                .retain(|t| !(t.function == function && &*t.rule == rule)),
        }
    }

    /// Drops every timer of a rule.
    pub fn cancel_rule(&mut self, rule: &str) {
        self.timers.retain(|t| &*t.rule != rule);
    }

    /// Keeps only the timers of rules for which `keep` is true.
    pub fn retain_rules(&mut self, keep: impl Fn(&str) -> bool) {
        self.timers.retain(|t| keep(&t.rule));
    }

    /// Every pending timer, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &Timer> {
        self.timers.iter()
    }

    /// How many timers a rule has pending.
    pub fn count(&self, rule: &str) -> usize {
        self.timers.iter().filter(|t| &*t.rule == rule).count()
    }

    /// When the next timer is due.
    pub fn next_due(&self) -> Option<f64> {
        self.timers.iter().map(|t| t.due).reduce(f64::min)
    }

    /// Takes the earliest timer due at or before `now`, rescheduling it if it
    /// repeats. Call repeatedly until `None` to fire timers in due order.
    pub fn pop_due(&mut self, now: f64) -> Option<Timer> {
        let (index, _) = self
            .timers
            .iter()
            .enumerate()
            .filter(|(_, t)| t.due <= now)
            .min_by(|(_, a), (_, b)| a.due.total_cmp(&b.due).then(a.id.cmp(&b.id)))?;
        match self.timers[index].period {
            Some(period) => {
                let fired = self.timers[index].clone();
                self.timers[index].due += period;
                Some(fired)
            }
            None => Some(self.timers.remove(index)),
        }
    }

    /// True when nothing is scheduled.
    pub fn is_empty(&self) -> bool {
        self.timers.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timer(id: i64, rule: &str, function: &str, due: f64, period: Option<f64>) -> Timer {
        Timer {
            id,
            rule: rule.into(),
            function: function.into(),
            due,
            period,
        }
    }

    #[test]
    fn fires_in_due_order_and_repeats() {
        let mut queue = TimerQueue::default();
        queue.apply("r", TimerRequest::Start(timer(1, "r", "late", 10.0, None)));
        queue.apply(
            "r",
            TimerRequest::Start(timer(2, "r", "tick", 3.0, Some(3.0))),
        );
        assert_eq!(queue.next_due(), Some(3.0));
        let fired: Vec<String> = std::iter::from_fn(|| queue.pop_due(10.0))
            .map(|t| format!("{}@{}", t.function, t.due))
            .collect();
        assert_eq!(fired, ["tick@3", "tick@6", "tick@9", "late@10"]);
        assert_eq!(queue.next_due(), Some(12.0));
    }

    #[test]
    fn cancels_by_id_or_function_within_one_rule() {
        let mut queue = TimerQueue::default();
        queue.apply("a", TimerRequest::Start(timer(1, "a", "f", 1.0, None)));
        queue.apply("a", TimerRequest::Start(timer(2, "a", "f", 2.0, None)));
        queue.apply("b", TimerRequest::Start(timer(3, "b", "f", 3.0, None)));
        queue.apply("a", TimerRequest::CancelId(3));
        assert_eq!(queue.count("b"), 1, "a rule cannot cancel another's timers");
        queue.apply("a", TimerRequest::CancelFunction("f".into()));
        assert_eq!(queue.count("a"), 0);
        queue.cancel_rule("b");
        assert!(queue.is_empty());
    }
}
