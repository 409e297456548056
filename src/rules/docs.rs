//! What rules can use, described once for people and for editors.
//!
//! [`write_definitions`] writes Rhai definition files (`*.d.rhai`) for
//! everything usher gives scripts: `room`, participants' fields and
//! commands, `params`, `state`, timers and helpers (from the doc comments
//! they are registered with), and the handlers a rule may define. An editor
//! with the Rhai extension reads them to complete and check rule files.
//! [`handler_table`] is the README's table of handlers, from the same
//! source ([`Handler`]); a test keeps the README in step with it.

use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};

use super::engine::RuleEngine;
use super::rule::Handler;

/// The file describing the variables and handlers usher provides.
const USHER_FILE: &str = "usher.d.rhai";

/// The variables every handler can read, with their types and docs.
const VARIABLES: [(&str, &str, &str); 3] = [
    (
        "room",
        "Room",
        "The room the rule runs in: what is going on in it, who is in it, and the commands it takes.",
    ),
    (
        "params",
        "Map",
        "The rule's parameters: the defaults in its `PARAMS`, with the room's values laid over them. Read-only.",
    ),
    (
        "state",
        "Map",
        "What the rule remembers in this room between events. Maps and lists in it are shared, not \
         copied: `let q = state.queue; q.push(x)` adds to `state.queue`.",
    ),
];

/// Writes the definition files into `dir` (created if need be) and returns
/// the files written.
pub fn write_definitions(engine: &RuleEngine, dir: &Path) -> io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut written = Vec::new();
    for (name, content) in engine.strict.definitions().iter_files() {
        let path = dir.join(name);
        std::fs::write(&path, content)?;
        written.push(path);
    }
    let path = dir.join(USHER_FILE);
    std::fs::write(&path, usher_definitions())?;
    written.push(path);
    Ok(written)
}

/// The definitions of the variables handlers read and of the handlers.
fn usher_definitions() -> String {
    let mut text = String::from("module static;\n");
    for (name, kind, doc) in VARIABLES {
        let _ = write!(text, "\n/// {doc}\nconst {name}: {kind};\n");
    }
    for handler in Handler::ALL {
        let params: Vec<String> = handler
            .params()
            .iter()
            .zip(handler.param_types())
            .map(|(name, kind)| format!("{name}: {kind}"))
            .collect();
        let _ = write!(
            text,
            "\n/// A handler: define it in a rule and usher calls it when {}.\nfn {}({});\n",
            handler.called_when(),
            handler.name(),
            params.join(", ")
        );
    }
    text
}

/// The README's table of handlers.
pub fn handler_table() -> String {
    let mut table = String::from("| handler | called when |\n|---|---|\n");
    for handler in Handler::ALL {
        let _ = writeln!(
            table,
            "| `{}` | {} |",
            handler.signature(),
            handler.called_when()
        );
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_readme_lists_every_handler_as_the_code_does() {
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
            .expect("README.md");
        let table = handler_table();
        assert!(
            readme.contains(&table),
            "README.md's table of handlers differs from the code's; replace it with:\n\n{table}"
        );
    }

    /// The README's Platforms table agrees with each platform's
    /// capabilities: a cell is "—" exactly when the platform can carry out
    /// none of its row's commands, and every command a platform beyond
    /// seed 001 can carry out has a row.
    #[test]
    fn the_readme_platform_table_matches_the_capabilities() {
        use crate::platform::PlatformKind;

        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
            .expect("README.md");
        let section = readme
            .split("\n## Platforms\n")
            .nth(1)
            .expect("README.md has a Platforms section");
        let mut lines = section
            .lines()
            .skip_while(|line| !line.starts_with("| rule command |"));
        let header: Vec<String> = cells(lines.next().expect("the Platforms command table"));
        let kinds: Vec<PlatformKind> = header[1..]
            .iter()
            .map(|column| {
                let name = column.split_whitespace().next().unwrap_or_default();
                name.parse()
                    .unwrap_or_else(|err| panic!("column `{column}`: {err}"))
            })
            .collect();
        assert_eq!(
            kinds,
            PlatformKind::ALL,
            "a column for every platform, in order"
        );
        let mut named: Vec<&str> = Vec::new();
        for row in lines.skip(1).take_while(|line| line.starts_with('|')) {
            let row = cells(row);
            let verbs = called_verbs(&row[0]);
            assert!(!verbs.is_empty(), "row `{}` names a command", row[0]);
            named.extend(&verbs);
            for (kind, cell) in kinds.iter().zip(&row[1..]) {
                let capabilities = kind.capabilities();
                let none = !verbs.iter().any(|verb| capabilities.supports_verb(verb));
                let dash = cell == "—" || cell.starts_with("— ");
                assert_eq!(
                    dash,
                    none,
                    "README row `{}`, column {}: `{cell}`, but {} can carry out {:?}",
                    row[0],
                    kind.as_str(),
                    kind.as_str(),
                    verbs
                        .iter()
                        .filter(|verb| capabilities.supports_verb(verb))
                        .collect::<Vec<_>>(),
                );
            }
        }
        for kind in &kinds[1..] {
            for verb in kind.capabilities().verbs() {
                assert!(
                    named.contains(&verb),
                    "{} can `{verb}`, which has no row in the README's Platforms table",
                    kind.as_str()
                );
            }
        }
    }

    /// The command verbs called in a README cell (`p.mute()` / `unmute()`).
    fn called_verbs(cell: &str) -> Vec<&'static str> {
        cell.split('(')
            .filter_map(|before| {
                let reversed: String = before
                    .chars()
                    .rev()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                let name: String = reversed.chars().rev().collect();
                crate::model::command::VERBS
                    .iter()
                    .copied()
                    .find(|verb| *verb == name)
            })
            .collect()
    }

    /// A Markdown table row's cells, trimmed.
    fn cells(row: &str) -> Vec<String> {
        row.trim()
            .trim_matches('|')
            .split('|')
            .map(|cell| cell.trim().to_owned())
            .collect()
    }

    #[test]
    fn definitions_cover_what_rules_use() {
        let dir = std::env::temp_dir().join(format!("usher-definitions-{}", std::process::id()));
        let written = write_definitions(&RuleEngine::default(), &dir).unwrap();
        let all: String = written
            .iter()
            .map(|path| std::fs::read_to_string(path).unwrap())
            .collect();
        for expected in [
            "const room: Room;",
            "const params: Map;",
            "fn on_update(p: Participant, before: Participant);",
            "fn on_connect();",
            "/// Mute their audio.\nfn mute(",
            "fn get hand_raised(",
            "/// People in the room proper.\nfn count(_: Room) -> int;",
            "fn after(",
            "fn contains(",
        ] {
            assert!(all.contains(expected), "no `{expected}` in the definitions");
        }
        std::fs::remove_dir_all(dir).unwrap();
    }
}
