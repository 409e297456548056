//! `usher new rule NAME`: a new rule and its test, ready to edit.
//!
//! The rule is documented the way the shipped ones are (a `//!` header that
//! says what it does and lists its parameters), declares `PARAMS` and
//! handles one event; its test passes as written, so an operator starts from
//! something that works and changes it a step at a time.

use std::path::{Path, PathBuf};

/// Why a rule could not be started.
#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    /// The name cannot be a rule's.
    #[error(
        "`{0}` cannot name a rule: use lower-case letters, digits and underscores, starting with a letter (e.g. `greet_guests`)"
    )]
    BadName(String),
    /// A file is in the way.
    #[error("{} exists already; pick another name or remove it", .0.display())]
    Exists(PathBuf),
    /// A file could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

const RULE: &str = r#"//! NAME: greet guests as they arrive.
//!
//! Say here what the rule does and when, so whoever binds it to a room knows
//! what it will send. `usher check` shows the first line.
//!
//! Parameters:
//! - `greeting` (default "Welcome, {name}!"): what an arriving guest is
//!   told; `{name}` is replaced by their name.

const PARAMS = #{
    greeting: "Welcome, {name}!",
};

fn on_join(p) {
    if p.is_guest {
        let text = params.greeting;
        text.replace("{name}", p.name);
        room.message(text);
    }
}
"#;

const TEST: &str = r#"# The tests of rules/NAME.rhai: `usher test rules/tests/NAME.yaml`.
rules:
  - NAME                           # with parameters: `- NAME: { greeting: "Hi {name}" }`
participants:                      # in the room when usher connects
  - { name: Prof. Ada, role: host }
tests:
  - name: greets a guest who joins, not a host
    steps:
      - join: Bob
        expect:                    # a message with a comma or colon in it goes on a line of its own
          - message "Welcome, Bob!"
      - join: { name: Dr. Cat, role: host }
        expect: []
"#;

/// Writes `NAME.rhai` into `rules_dir` and `NAME.yaml` into its `tests`
/// directory; returns the two files.
pub fn new_rule(name: &str, rules_dir: &Path) -> Result<[PathBuf; 2], ScaffoldError> {
    let valid = name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !valid {
        return Err(ScaffoldError::BadName(name.to_owned()));
    }
    let rule = rules_dir.join(format!("{name}.rhai"));
    let test = rules_dir.join("tests").join(format!("{name}.yaml"));
    for path in [&rule, &test] {
        if path.exists() {
            return Err(ScaffoldError::Exists(path.clone()));
        }
    }
    let write = |path: &Path, template: &str| {
        let written = match path.parent() {
            Some(dir) => std::fs::create_dir_all(dir),
            None => Ok(()),
        };
        written
            .and_then(|()| std::fs::write(path, template.replace("NAME", name)))
            .map_err(|source| ScaffoldError::Write {
                path: path.to_owned(),
                source,
            })
    };
    write(&rule, RULE)?;
    write(&test, TEST)?;
    Ok([rule, test])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ruletest::run_paths;

    #[test]
    fn a_new_rule_compiles_and_its_test_passes() {
        let dir = std::env::temp_dir().join(format!("usher-new-rule-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let rules = dir.join("rules");
        let [rule, test] = new_rule("greet_guests", &rules).unwrap();
        assert!(
            std::fs::read_to_string(&rule)
                .unwrap()
                .starts_with("//! greet_guests: ")
        );
        let mut out = Vec::new();
        let summary = run_paths(&[test], None, &mut out).unwrap();
        let report = String::from_utf8(out).unwrap();
        assert_eq!((summary.passed, summary.failed), (1, 0), "{report}");

        assert!(matches!(
            new_rule("greet_guests", &rules),
            Err(ScaffoldError::Exists(_))
        ));
        for bad in ["Greet", "1st", "greet-guests", "", "a b"] {
            assert!(
                matches!(new_rule(bad, &rules), Err(ScaffoldError::BadName(_))),
                "{bad}"
            );
        }
        std::fs::remove_dir_all(dir).unwrap();
    }
}
