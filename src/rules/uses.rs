//! Which commands a rule's source asks for, and where.
//!
//! `usher check -c` warns when a rule bound to a room calls a command the
//! room's platform cannot carry out (`room.message()` on a platform without
//! chat), pointing at the call. The rule still loads and runs; the runtime
//! audits such commands as unsupported. The scan reads method calls
//! (`.message(`) outside comments and string literals: a warning, not a
//! proof, so a call built at run time is not seen.

use crate::model::command::VERBS;

/// One command call in a rule's source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandUse {
    /// The command's verb (the method's name).
    pub verb: &'static str,
    /// 1-based line.
    pub line: usize,
    /// 1-based column of the method name.
    pub column: usize,
}

/// Every `.verb(` call of a command method in `source`, in order.
pub fn command_uses(source: &str) -> Vec<CommandUse> {
    let mut uses = Vec::new();
    let mut in_block_comment = false;
    for (index, line) in source.lines().enumerate() {
        let code = code_of(line, &mut in_block_comment);
        let mut at = 0;
        while let Some(dot) = code[at..].find('.') {
            let start = at + dot + 1;
            let name_len = code[start..]
                .bytes()
                .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
                .count();
            let name = &code[start..start + name_len];
            let rest = code[start + name_len..].trim_start();
            if rest.starts_with('(') {
                if let Some(verb) = VERBS.iter().find(|verb| **verb == name) {
                    uses.push(CommandUse {
                        verb,
                        line: index + 1,
                        column: code[..start].chars().count() + 1,
                    });
                }
            }
            at = start + name_len;
        }
    }
    uses
}

/// The line with comments and the contents of string literals blanked out
/// (same length, so columns stay true).
fn code_of(line: &str, in_block_comment: &mut bool) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        if *in_block_comment {
            if c == '*' && chars.peek() == Some(&'/') {
                chars.next();
                *in_block_comment = false;
                out.push_str("  ");
            } else {
                out.push(' ');
            }
            continue;
        }
        match quote {
            Some(q) => {
                if c == '\\' {
                    out.push(' ');
                    if chars.next().is_some() {
                        out.push(' ');
                    }
                    continue;
                }
                if c == q {
                    quote = None;
                    out.push(c);
                } else {
                    out.push(' ');
                }
            }
            None => match c {
                '"' | '`' | '\'' => {
                    quote = Some(c);
                    out.push(c);
                }
                '/' if chars.peek() == Some(&'/') => break,
                '/' if chars.peek() == Some(&'*') => {
                    chars.next();
                    *in_block_comment = true;
                    out.push_str("  ");
                }
                _ => out.push(c),
            },
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_command_calls_with_their_place() {
        let source =
            "fn on_join(p) {\n    p.mute();\n    room.message(\"Welcome, p.lock()\");\n}\n";
        let uses = command_uses(source);
        assert_eq!(
            uses,
            [
                CommandUse {
                    verb: "mute",
                    line: 2,
                    column: 7
                },
                CommandUse {
                    verb: "message",
                    line: 3,
                    column: 10
                }
            ]
        );
    }

    #[test]
    fn comments_strings_and_other_methods_are_not_calls() {
        let source = "// room.message(\"x\")\n/* p.mute()\n p.lock() */ let n = p.name.len();\nlet t = `p.end()`;\nstate.told.contains(p.uuid);\n";
        assert!(
            command_uses(source).is_empty(),
            "{:?}",
            command_uses(source)
        );
    }

    #[test]
    fn odd_input_does_not_panic() {
        for source in [
            "",
            ".",
            "..(",
            "p.\u{e9}(",
            "\"unterminated .mute(",
            "/* open",
            "a.mute",
        ] {
            let _ = command_uses(source);
        }
    }
}
