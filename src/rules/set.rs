//! Rule sets: every rule of a directory, compiled together, swapped whole.
//!
//! A [`RuleSet`] is immutable and shared by every room. The [`RuleLibrary`]
//! holds the current set; reloading compiles a complete new set and swaps it
//! in only if every file compiled, so a broken edit leaves the running rules
//! exactly as they were.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use super::binding::{BindError, RuleBinding, bind_params};
use super::engine::RuleEngine;
use super::rule::{Rule, RuleError};

/// A compiled set of rules.
#[derive(Debug)]
pub struct RuleSet {
    engine: Arc<RuleEngine>,
    rules: BTreeMap<String, Arc<Rule>>,
}

impl RuleSet {
    /// A set of already compiled rules.
    pub fn new(engine: Arc<RuleEngine>, rules: impl IntoIterator<Item = Rule>) -> Self {
        RuleSet {
            engine,
            rules: rules
                .into_iter()
                .map(|rule| (rule.name().to_owned(), Arc::new(rule)))
                .collect(),
        }
    }

    /// This set with more rules; a rule of the same name replaces its own.
    pub fn with(&self, rules: impl IntoIterator<Item = Rule>) -> RuleSet {
        let mut all = self.rules.clone();
        all.extend(
            rules
                .into_iter()
                .map(|rule| (rule.name().to_owned(), Arc::new(rule))),
        );
        RuleSet {
            engine: self.engine.clone(),
            rules: all,
        }
    }

    /// Compiles every `*.rhai` file in `dir`. Every error is returned, not
    /// just the first, so one `usher check` shows all that needs fixing.
    pub fn load_dir(engine: Arc<RuleEngine>, dir: &Path) -> Result<RuleSet, Vec<RuleError>> {
        let files = rule_files(dir).map_err(|err| vec![err])?;
        RuleSet::load_files(engine, &files)
    }

    /// Compiles the given rule files.
    pub fn load_files(
        engine: Arc<RuleEngine>,
        files: &[PathBuf],
    ) -> Result<RuleSet, Vec<RuleError>> {
        let mut rules = Vec::new();
        let mut errors = Vec::new();
        for file in files {
            match Rule::load(&engine, file) {
                Ok(rule) => rules.push(rule),
                Err(err) => errors.push(err),
            }
        }
        if errors.is_empty() {
            Ok(RuleSet::new(engine, rules))
        } else {
            Err(errors)
        }
    }

    /// The engine the rules were compiled with.
    pub fn engine(&self) -> &Arc<RuleEngine> {
        &self.engine
    }

    /// A rule by name.
    pub fn get(&self, name: &str) -> Option<&Arc<Rule>> {
        self.rules.get(name)
    }

    /// Every rule, by name.
    pub fn rules(&self) -> impl Iterator<Item = &Arc<Rule>> {
        self.rules.values()
    }

    /// Checks that a binding names a rule of this set with valid parameters.
    pub fn check(&self, binding: &RuleBinding) -> Result<(), BindError> {
        bind_params(self.find(&binding.rule)?, binding).map(drop)
    }

    /// A rule by name, or an error listing the rules there are.
    pub fn find(&self, name: &str) -> Result<&Arc<Rule>, BindError> {
        self.rules.get(name).ok_or_else(|| {
            let hint = self
                .rules
                .keys()
                .find(|known| known.contains(name) || name.contains(known.as_str()))
                .map(|known| format!(" (did you mean `{known}`?)"))
                .unwrap_or_default();
            BindError::UnknownRule {
                rule: name.to_owned(),
                hint,
                known: self.rules.keys().cloned().collect::<Vec<_>>().join(", "),
            }
        })
    }
}

/// The `*.rhai` files of a directory, sorted by name.
pub fn rule_files(dir: &Path) -> Result<Vec<PathBuf>, RuleError> {
    let entries = std::fs::read_dir(dir).map_err(|err| RuleError {
        path: dir.to_owned(),
        line: None,
        column: None,
        message: format!("cannot read the rules directory: {err}"),
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "rhai") && path.is_file())
        .collect();
    files.sort();
    Ok(files)
}

/// Why a reload was refused; the previous rules stay in force.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReloadError {
    /// A rule file does not compile.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Compile(Vec<RuleError>),
    /// The rooms' bindings do not fit the new rules.
    #[error("{0}")]
    Bind(BindError),
}

/// The current rule set of a rules directory, reloadable.
pub struct RuleLibrary {
    engine: Arc<RuleEngine>,
    dir: PathBuf,
    current: RwLock<Arc<RuleSet>>,
    generation: AtomicU64,
}

impl RuleLibrary {
    /// Loads the rules of `dir`.
    pub fn load(engine: Arc<RuleEngine>, dir: &Path) -> Result<RuleLibrary, Vec<RuleError>> {
        let set = RuleSet::load_dir(engine.clone(), dir)?;
        Ok(RuleLibrary {
            engine,
            dir: dir.to_owned(),
            current: RwLock::new(Arc::new(set)),
            generation: AtomicU64::new(0),
        })
    }

    /// The rules directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The current set.
    pub fn current(&self) -> Arc<RuleSet> {
        self.current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Bumped by every successful reload; rooms compare it to pick up new rules.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Recompiles the directory. The new set replaces the current one only if
    /// every file compiles and every binding in `bindings` still fits.
    pub fn reload<'a>(
        &self,
        bindings: impl IntoIterator<Item = &'a RuleBinding>,
    ) -> Result<Arc<RuleSet>, ReloadError> {
        let set =
            RuleSet::load_dir(self.engine.clone(), &self.dir).map_err(ReloadError::Compile)?;
        for binding in bindings {
            set.check(binding).map_err(ReloadError::Bind)?;
        }
        let set = Arc::new(set);
        *self
            .current
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = set.clone();
        self.generation.fetch_add(1, Ordering::AcqRel);
        Ok(set)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("usher-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_broken_edit_keeps_the_old_set() {
        let dir = temp_dir("reload");
        std::fs::write(
            dir.join("greet.rhai"),
            "fn on_join(p) { room.message(\"hi\"); }",
        )
        .unwrap();
        std::fs::write(dir.join("README.md"), "not a rule").unwrap();
        let library = RuleLibrary::load(Arc::new(RuleEngine::default()), &dir).unwrap();
        let before = library.current();
        assert!(before.get("greet").is_some());

        std::fs::write(
            dir.join("greet.rhai"),
            "fn on_join(p) { room.message(\"hi\" }",
        )
        .unwrap();
        let err = library.reload(&[]).unwrap_err();
        assert!(err.to_string().contains("greet.rhai:1:"), "{err}");
        assert!(
            Arc::ptr_eq(&before, &library.current()),
            "the old set stays"
        );
        assert_eq!(library.generation(), 0);

        std::fs::write(
            dir.join("greet.rhai"),
            "const PARAMS = #{ text: \"hello\" };\nfn on_join(p) { room.message(params.text); }",
        )
        .unwrap();
        let mut binding = RuleBinding::named("greet");
        binding.params.insert("wrong".into(), 1.into());
        assert!(matches!(
            library.reload(&[binding]),
            Err(ReloadError::Bind(_))
        ));
        assert_eq!(library.generation(), 0);

        library.reload(&[RuleBinding::named("greet")]).unwrap();
        assert_eq!(library.generation(), 1);
        assert!(
            library
                .current()
                .get("greet")
                .unwrap()
                .defaults()
                .contains_key("text")
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn unknown_rules_are_named_with_a_hint() {
        let engine = Arc::new(RuleEngine::default());
        let rule = Rule::compile(&engine, "lock_when_full", Path::new("x.rhai"), "").unwrap();
        let set = RuleSet::new(engine, [rule]);
        let err = set.find("lock_when").unwrap_err();
        assert_eq!(
            err.to_string(),
            "no rule named `lock_when` (did you mean `lock_when_full`?); the rules are: lock_when_full"
        );
    }
}
