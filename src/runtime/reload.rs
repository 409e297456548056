//! Hot reload: recompile the rules when their files change, or on SIGHUP.
//!
//! The rules directory is polled for changes in its `*.rhai` files (names,
//! sizes and contents). A change is acted on once it has held still for one
//! more poll, so an editor's save-in-several-steps causes one reload. Polling
//! a handful of small files is cheap and works the same on every filesystem
//! and with every editor, including those that save by renaming.
//!
//! A reload that fails to compile, or whose rules no longer fit a room's
//! bindings, is refused with `file:line:column`; the running rules stay.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

use super::status::Registry;
use crate::rules::{RuleBinding, RuleLibrary, RuleSet, rule_files};

/// How often the rules directory is looked at.
const POLL_EVERY: Duration = Duration::from_millis(500);

/// Watches the rules and publishes each reloaded set until `cancel` fires.
/// `requests` asks for a reload now (SIGHUP).
pub(crate) async fn watch_rules(
    library: Arc<RuleLibrary>,
    publish: watch::Sender<Arc<RuleSet>>,
    bindings: Vec<Arc<[RuleBinding]>>,
    registry: Arc<Registry>,
    requests: Arc<Notify>,
    cancel: CancellationToken,
) {
    let mut seen = fingerprint(library.dir());
    let mut changing: Option<u64> = None;
    let mut ticks = tokio::time::interval(POLL_EVERY);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = requests.notified() => {
                seen = fingerprint(library.dir());
                changing = None;
                reload(&library, &publish, &bindings, &registry, "on request");
            }
            _ = ticks.tick() => {
                let now = fingerprint(library.dir());
                if now == seen {
                    changing = None;
                } else if changing == Some(now) {
                    seen = now;
                    changing = None;
                    reload(&library, &publish, &bindings, &registry, "after a change");
                } else {
                    changing = Some(now);
                }
            }
        }
    }
}

fn reload(
    library: &RuleLibrary,
    publish: &watch::Sender<Arc<RuleSet>>,
    bindings: &[Arc<[RuleBinding]>],
    registry: &Registry,
    why: &str,
) {
    match library.reload(bindings.iter().flat_map(|room| room.iter())) {
        Ok(set) => {
            let names: Vec<&str> = set.rules().map(|rule| rule.name()).collect();
            tracing::info!(rules = %names.join(", "), "rules reloaded {why}");
            publish.send_replace(set);
            registry.note_reload(None);
        }
        Err(err) => {
            tracing::error!("rules not reloaded {why}; the previous rules keep running:\n{err}");
            registry.note_reload(Some(err.to_string()));
        }
    }
}

/// A hash of the names and contents of the rule files.
fn fingerprint(dir: &Path) -> u64 {
    let mut hasher = DefaultHasher::new();
    for file in rule_files(dir).unwrap_or_default() {
        file.hash(&mut hasher);
        std::fs::read(&file).unwrap_or_default().hash(&mut hasher);
    }
    hasher.finish()
}
