//! The sandboxed Rhai engine that compiles and runs every rule.
//!
//! One engine serves all rules and rooms (Rhai's `sync` feature makes it
//! shareable). The sandbox bounds what a rule can cost: operations, call
//! depth, expression depth, string/array/map sizes and a wall-clock deadline
//! per call. `eval` and modules are disabled; there is no file or network
//! access to begin with. `print` and `debug` write to the log, as `log` does.

use std::cell::Cell;
use std::time::{Duration, Instant};

use rhai::module_resolvers::DummyModuleResolver;
use rhai::{Dynamic, Engine};

use super::{api, state};

/// What one handler call may cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Rhai operations per call.
    pub max_operations: u64,
    /// Nested function calls.
    pub max_call_levels: usize,
    /// Expression nesting at the top level of a file.
    pub max_expr_depth: usize,
    /// Expression nesting inside functions.
    pub max_function_expr_depth: usize,
    /// Bytes in one string.
    pub max_string_size: usize,
    /// Items in one array.
    pub max_array_size: usize,
    /// Entries in one map.
    pub max_map_size: usize,
    /// Wall-clock time for one call.
    pub deadline: Duration,
    /// Timers one rule may have pending in one room.
    pub max_timers: usize,
    /// Commands one call may ask for; one more fails the call.
    pub max_intents: usize,
    /// Consecutive failing calls after which a rule is disabled in a room.
    pub failures_before_disable: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_operations: 1_000_000,
            max_call_levels: 32,
            max_expr_depth: 64,
            max_function_expr_depth: 32,
            max_string_size: 64 * 1024,
            max_array_size: 10_000,
            max_map_size: 10_000,
            deadline: Duration::from_millis(50),
            max_timers: 64,
            max_intents: 100,
            failures_before_disable: 5,
        }
    }
}

/// How often (in operations) the deadline is checked.
const DEADLINE_CHECK_EVERY: u64 = 256;

thread_local! {
    /// The deadline of the call running on this thread, if any. A call runs
    /// synchronously on one thread, so a thread-local is exactly its scope.
    static DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// The value a call is terminated with when it runs past its deadline.
pub(crate) const DEADLINE_TOKEN: &str = "deadline";

/// Runs `call` with a wall-clock deadline enforced on Rhai code inside it.
pub(crate) fn with_deadline<T>(deadline: Instant, call: impl FnOnce() -> T) -> T {
    let previous = DEADLINE.replace(Some(deadline));
    let result = call();
    DEADLINE.set(previous);
    result
}

/// The engines rules are compiled and run with.
pub struct RuleEngine {
    /// Strict variables: an undefined variable is a compile error.
    pub(crate) strict: Engine,
    /// Lenient: used once per file to find its top-level constants, which
    /// strict compilation must then be told about.
    pub(crate) lenient: Engine,
    pub(crate) limits: Limits,
}

impl RuleEngine {
    /// Builds the engines with these limits.
    pub fn new(limits: Limits) -> Self {
        RuleEngine {
            strict: build(&limits, true),
            lenient: build(&limits, false),
            limits,
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }
}

impl std::fmt::Debug for RuleEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuleEngine")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl Default for RuleEngine {
    fn default() -> Self {
        RuleEngine::new(Limits::default())
    }
}

fn build(limits: &Limits, strict: bool) -> Engine {
    let mut engine = Engine::new();
    engine
        .set_strict_variables(strict)
        .set_max_operations(limits.max_operations)
        .set_max_call_levels(limits.max_call_levels)
        .set_max_expr_depths(limits.max_expr_depth, limits.max_function_expr_depth)
        .set_max_string_size(limits.max_string_size)
        .set_max_array_size(limits.max_array_size)
        .set_max_map_size(limits.max_map_size)
        .set_max_modules(0)
        .set_module_resolver(DummyModuleResolver::new())
        .disable_symbol("eval");
    engine.on_progress(|operations| {
        if operations % DEADLINE_CHECK_EVERY != 0 {
            return None;
        }
        DEADLINE
            .get()
            .filter(|deadline| Instant::now() >= *deadline)
            .map(|_| Dynamic::from(DEADLINE_TOKEN))
    });
    engine.on_print(|text| api::log_line(text.to_owned()));
    engine.on_debug(|text, _, position| match position.line() {
        Some(line) => api::log_line(format!("line {line}: {text}")),
        None => api::log_line(text.to_owned()),
    });
    #[allow(deprecated)]
    engine.on_var(|name, index, _| api::resolve_variable(name, index));
    api::register(&mut engine);
    state::register(&mut engine);
    engine
}
