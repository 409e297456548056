//! `usher bench`: measuring what matters to an operator.
//!
//! Every benchmark prints a readable table and, as its last line, one JSON
//! object with its figures, so scripts can compare runs. Compare figures as
//! ratios taken in the same run; absolute numbers depend on the machine.
//!
//! - [`pipeline`]: events per second through decode, state, rules and
//!   planning, on one core.
//! - [`latency`]: from an event leaving the platform to the command it
//!   causes arriving back, over loopback.
//! - [`scale`]: thousands of rooms in one daemon: memory, CPU, token
//!   refreshes, reconnects, lost commands.
//! - [`dashboard`]: the dashboard's pages and live updates with many rooms.
//! - [`webhooks`]: floods of Agora and Tencent callbacks through the webhook listener,
//!   duplicated and reordered, checked for loss and double application.
//! - [`failover`]: three instances sharing rooms through etcd: how soon a
//!   killed one's rooms are taken over, and etcd writes per room.
//! - [`etcd`]: a throwaway local etcd for it (and the cluster tests).

pub mod dashboard;
pub mod etcd;
pub mod failover;
pub mod latency;
pub mod pipeline;
pub mod scale;
pub mod webhooks;
pub mod workload;

use std::path::Path;
use std::sync::Arc;

use crate::rules::{Rule, RuleBinding, RuleEngine, RuleError, RuleSet};
use crate::shipped;

/// The shipped rules, compiled from the copies built into the binary, each
/// bound with its default parameters.
pub fn shipped_rules() -> Result<(Arc<RuleSet>, Vec<RuleBinding>), RuleError> {
    shipped_rules_on(Arc::new(RuleEngine::default()))
}

/// [`shipped_rules`] on `engine`, e.g. one whose limits suit a test.
pub fn shipped_rules_on(
    engine: Arc<RuleEngine>,
) -> Result<(Arc<RuleSet>, Vec<RuleBinding>), RuleError> {
    let mut rules = Vec::new();
    for (name, source) in shipped::RULES {
        let path = Path::new("rules").join(format!("{name}.rhai"));
        rules.push(Rule::compile(&engine, name, &path, source)?);
    }
    let bindings = shipped::RULES
        .iter()
        .map(|(name, _)| RuleBinding::named(*name))
        .collect();
    Ok((Arc::new(RuleSet::new(engine, rules)), bindings))
}
