//! One compiled rule: a `.rhai` file, its handlers, parameters and constants.
//!
//! Compiling a rule does everything that can be checked before a room ever
//! runs it, and points at `file:line:column` when something is wrong:
//!
//! 1. the file parses;
//! 2. its top level runs once (sandboxed) and yields its constants, among
//!    them `PARAMS`, the parameters and their defaults;
//! 3. it compiles again with strict variables, so a misspelt variable is an
//!    error now rather than at 10:04 in a live lecture;
//! 4. every `on_*` function is a known handler with the right parameters;
//! 5. every `params.NAME` it reads is a parameter it declares.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use rhai::{AST, Dynamic, EvalAltResult, Map, ParseError, Position, Scope};

use super::engine::{DEADLINE_TOKEN, RuleEngine, with_deadline};

/// The events a rule can handle, by function name and parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Handler {
    /// `on_join(p)`: someone entered the room proper.
    Join,
    /// `on_leave(p)`: someone left.
    Leave,
    /// `on_update(p, before)`: someone changed.
    Update,
    /// `on_waiting(p)`: someone is waiting in the waiting room.
    Waiting,
    /// `on_hand_raised(p)`: someone raised a hand.
    HandRaised,
    /// `on_hand_lowered(p)`: someone lowered a hand.
    HandLowered,
    /// `on_spotlit(p)`: someone was spotlit.
    Spotlit,
    /// `on_unspotlit(p)`: someone's spotlight was removed.
    Unspotlit,
    /// `on_presentation_start(p)`: someone started presenting.
    PresentationStart,
    /// `on_presentation_stop()`: the presentation stopped.
    PresentationStop,
    /// `on_speaking(p)`: someone became the active speaker.
    Speaking,
    /// `on_layout(layout)`: the layout changed.
    Layout,
    /// `on_message(msg)`: a chat message arrived.
    Message,
    /// `on_room_update(before)`: locked, guests_muted or started changed.
    RoomUpdate,
    /// `on_connect()`: usher (re)connected and the room is in sync.
    Connect,
    /// `on_session_start(s)`: a session of the room's schedule started.
    SessionStart,
    /// `on_session_end(s)`: a session of the room's schedule ended.
    SessionEnd,
}

impl Handler {
    /// Every handler.
    pub const ALL: [Handler; 17] = [
        Handler::Join,
        Handler::Leave,
        Handler::Update,
        Handler::Waiting,
        Handler::HandRaised,
        Handler::HandLowered,
        Handler::Spotlit,
        Handler::Unspotlit,
        Handler::PresentationStart,
        Handler::PresentationStop,
        Handler::Speaking,
        Handler::Layout,
        Handler::Message,
        Handler::RoomUpdate,
        Handler::Connect,
        Handler::SessionStart,
        Handler::SessionEnd,
    ];

    /// The function name.
    pub fn name(self) -> &'static str {
        match self {
            Handler::Join => "on_join",
            Handler::Leave => "on_leave",
            Handler::Update => "on_update",
            Handler::Waiting => "on_waiting",
            Handler::HandRaised => "on_hand_raised",
            Handler::HandLowered => "on_hand_lowered",
            Handler::Spotlit => "on_spotlit",
            Handler::Unspotlit => "on_unspotlit",
            Handler::PresentationStart => "on_presentation_start",
            Handler::PresentationStop => "on_presentation_stop",
            Handler::Speaking => "on_speaking",
            Handler::Layout => "on_layout",
            Handler::Message => "on_message",
            Handler::RoomUpdate => "on_room_update",
            Handler::Connect => "on_connect",
            Handler::SessionStart => "on_session_start",
            Handler::SessionEnd => "on_session_end",
        }
    }

    /// When it is called, as the README and editors' definition files say.
    pub fn called_when(self) -> &'static str {
        match self {
            Handler::Join => "someone enters the room proper (not the waiting room)",
            Handler::Leave => "someone leaves",
            Handler::Update => "anything about a participant changes",
            Handler::Waiting => "someone is held in the waiting room",
            Handler::HandRaised => "someone raises a hand",
            Handler::HandLowered => "someone lowers a hand",
            Handler::Spotlit => "someone is spotlit",
            Handler::Unspotlit => "someone's spotlight is removed",
            Handler::PresentationStart => "someone starts presenting",
            Handler::PresentationStop => "the presentation stops",
            Handler::Speaking => "someone becomes the active speaker",
            Handler::Layout => "the layout changes (`layout.view`, `layout.participants`)",
            Handler::Message => "a chat message arrives (`msg.text`, `msg.from`, `msg.sender`)",
            Handler::RoomUpdate => "`locked`, `guests_muted` or `started` changes",
            Handler::Connect => {
                "usher (re)connects and the room is in sync (people already there get no `on_join`)"
            }
            Handler::SessionStart => {
                "a session of the room's schedule (timetable or platform) starts (`s.title`, `s.start`, `s.end`)"
            }
            Handler::SessionEnd => "a session of the room's schedule ends",
        }
    }

    /// The types of the parameters, for definition files.
    pub fn param_types(self) -> &'static [&'static str] {
        match self.params() {
            [] => &[],
            ["p"] => &["Participant"],
            ["p", "before"] => &["Participant", "Participant"],
            _ => &["Map"],
        }
    }

    /// The parameters, as documented.
    pub fn params(self) -> &'static [&'static str] {
        match self {
            Handler::Join
            | Handler::Leave
            | Handler::Waiting
            | Handler::HandRaised
            | Handler::HandLowered
            | Handler::Spotlit
            | Handler::Unspotlit
            | Handler::PresentationStart
            | Handler::Speaking => &["p"],
            Handler::Update => &["p", "before"],
            Handler::SessionStart | Handler::SessionEnd => &["s"],
            Handler::Layout => &["layout"],
            Handler::Message => &["msg"],
            Handler::RoomUpdate => &["before"],
            Handler::PresentationStop | Handler::Connect => &[],
        }
    }

    fn index(self) -> usize {
        self as usize
    }

    /// How the handler is written, e.g. `on_update(p, before)`.
    pub fn signature(self) -> String {
        format!("{}({})", self.name(), self.params().join(", "))
    }
}

/// A rule that failed to load, with where and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError {
    /// The rule file.
    pub path: PathBuf,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// 1-based column, when known.
    pub column: Option<usize>,
    /// What is wrong and, where possible, what to do.
    pub message: String,
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for RuleError {}

impl RuleError {
    fn new(path: &Path, position: Position, message: impl Into<String>) -> Self {
        RuleError {
            path: path.to_owned(),
            line: position.line(),
            column: position.position(),
            message: message.into(),
        }
    }
}

/// A compiled rule.
#[derive(Debug)]
pub struct Rule {
    name: String,
    path: PathBuf,
    doc: String,
    ast: AST,
    handlers: [bool; Handler::ALL.len()],
    functions: HashSet<(String, usize)>,
    /// Where each function is defined, for errors Rhai reports without a
    /// position (limits hit inside a call).
    definitions: HashMap<String, Position>,
    /// The parameters the rule declares, with their defaults; shared by
    /// every room that binds the rule with them.
    defaults: Arc<Map>,
    constants: HashMap<String, Dynamic>,
}

/// The variables the runtime provides inside handlers.
const PROVIDED: [&str; 3] = ["room", "params", "state"];

impl Rule {
    /// Reads and compiles a rule file. The rule is named after the file.
    pub fn load(engine: &RuleEngine, path: &Path) -> Result<Rule, RuleError> {
        let source = std::fs::read_to_string(path).map_err(|err| {
            RuleError::new(path, Position::NONE, format!("cannot read the rule: {err}"))
        })?;
        let name = path
            .file_stem()
            .map(|stem| stem.to_string_lossy().into_owned())
            .unwrap_or_default();
        Rule::compile(engine, &name, path, &source)
    }

    /// Compiles rule `name` from `source`; `path` is used in messages.
    pub fn compile(
        engine: &RuleEngine,
        name: &str,
        path: &Path,
        source: &str,
    ) -> Result<Rule, RuleError> {
        let parse_error = |err: ParseError| RuleError::new(path, err.1, err.0.to_string());
        let lenient_ast = engine.lenient.compile(source).map_err(parse_error)?;
        let mut top_level = Scope::new();
        with_deadline(Instant::now() + engine.limits.deadline, || {
            engine
                .lenient
                .run_ast_with_scope(&mut top_level, &lenient_ast)
        })
        .map_err(|err| runtime_error(path, &err, "running the top level of the file"))?;

        let mut known = Scope::new();
        for provided in PROVIDED {
            known.push(provided, ());
        }
        for (variable, _, _) in top_level.iter_raw() {
            known.push(variable.to_owned(), ());
        }
        let mut ast = engine
            .strict
            .compile_with_scope(&known, source)
            .map_err(parse_error)?;
        ast.set_source(path.display().to_string());

        let mut handlers = [false; Handler::ALL.len()];
        let mut functions = HashSet::new();
        let mut definitions = HashMap::new();
        for function in ast.iter_functions() {
            let position = find_function(source, function.name);
            functions.insert((function.name.to_owned(), function.params.len()));
            definitions.insert(function.name.to_owned(), position);
            if !function.name.starts_with("on_") {
                continue;
            }
            let Some(handler) = Handler::ALL.into_iter().find(|h| h.name() == function.name) else {
                return Err(RuleError::new(
                    path,
                    position,
                    format!(
                        "`{}` is not a handler{}; functions named `on_…` must be one of: {}",
                        function.name,
                        suggestion(function.name),
                        Handler::ALL.map(Handler::name).join(", ")
                    ),
                ));
            };
            if function.params.len() != handler.params().len() {
                return Err(RuleError::new(
                    path,
                    position,
                    format!(
                        "`{}` takes {} parameter(s): write it as `fn {}`",
                        handler.name(),
                        handler.params().len(),
                        handler.signature()
                    ),
                ));
            }
            handlers[handler.index()] = true;
        }

        let mut constants = HashMap::new();
        for (variable, _, value) in top_level.iter_raw() {
            constants.insert(variable.to_owned(), value.clone());
        }
        let defaults = match constants.get("PARAMS") {
            None => Map::new(),
            Some(params) => params.clone().try_cast::<Map>().ok_or_else(|| {
                RuleError::new(
                    path,
                    find_text(source, "PARAMS"),
                    "`PARAMS` must be a map of parameters and their defaults, like `const PARAMS = #{ max: 100 };`",
                )
            })?,
        };

        if let Some((position, unknown)) = unknown_param(source, &defaults) {
            let known: Vec<&str> = defaults.keys().map(|k| k.as_str()).collect();
            return Err(RuleError::new(
                path,
                position,
                format!(
                    "unknown parameter `{unknown}`; this rule declares {}",
                    if known.is_empty() {
                        "none (add `const PARAMS = #{ ... };`)".to_owned()
                    } else {
                        known.join(", ")
                    }
                ),
            ));
        }

        Ok(Rule {
            name: name.to_owned(),
            path: path.to_owned(),
            doc: doc_header(source),
            ast,
            handlers,
            functions,
            definitions,
            defaults: Arc::new(defaults),
            constants,
        })
    }

    /// The rule's name (its file name without `.rhai`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The rule file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The `//!` header: what the rule does and its parameters.
    pub fn doc(&self) -> &str {
        &self.doc
    }

    /// The parameters the rule declares, with their defaults.
    pub fn defaults(&self) -> &Arc<Map> {
        &self.defaults
    }

    /// True when the rule defines this handler.
    pub fn handles(&self, handler: Handler) -> bool {
        self.handlers[handler.index()]
    }

    /// True when the rule defines a function with this name and arity.
    pub fn has_function(&self, name: &str, params: usize) -> bool {
        self.functions.contains(&(name.to_owned(), params))
    }

    /// A constant from the file's top level.
    pub fn constant(&self, name: &str) -> Option<&Dynamic> {
        self.constants.get(name)
    }

    pub(crate) fn ast(&self) -> &AST {
        &self.ast
    }

    /// A positioned error for a failed call of `function`, naming the
    /// rule's functions (and closures) it failed in and where each was
    /// called. Where Rhai gives no position (limits are reported without
    /// one), the function's definition is named instead.
    pub(crate) fn call_error(&self, err: &EvalAltResult, function: &str) -> RuleError {
        let (message, position, calls) = describe_runtime_error(err);
        let innermost = calls.last().map_or(function, |(name, _)| name.as_str());
        let position = if position.is_none() {
            self.definitions
                .get(innermost)
                .copied()
                .unwrap_or(Position::NONE)
        } else {
            position
        };
        let mut place = format!("in {}", function_name(innermost));
        for (index, (_, called_at)) in calls.iter().enumerate().rev() {
            let caller = match index {
                0 => function,
                _ => calls[index - 1].0.as_str(),
            };
            place.push_str(&format!(", called from {}", function_name(caller)));
            if let (Some(line), Some(column)) = (called_at.line(), called_at.position()) {
                place.push_str(&format!(" at {line}:{column}"));
            }
        }
        RuleError::new(&self.path, position, format!("{place}: {message}"))
    }
}

/// A function as messages name it: closures have no name of their own.
fn function_name(name: &str) -> String {
    if name.starts_with("anon$") {
        "a closure".to_owned()
    } else {
        format!("`{name}`")
    }
}

/// Turns a runtime error into a positioned rule error.
fn runtime_error(path: &Path, err: &EvalAltResult, doing: &str) -> RuleError {
    let (message, position, _) = describe_runtime_error(err);
    RuleError::new(path, position, format!("{doing}: {message}"))
}

/// The innermost error's message (without position) and its position, and
/// the functions it happened in below the one called, outermost first, each
/// with where it was called.
fn describe_runtime_error(err: &EvalAltResult) -> (String, Position, Vec<(String, Position)>) {
    let mut err = err;
    let mut calls = Vec::new();
    while let EvalAltResult::ErrorInFunctionCall(name, _, inner, called_at) = err {
        calls.push((name.clone(), *called_at));
        err = inner;
    }
    let position = err.position();
    let message = match err {
        EvalAltResult::ErrorTooManyOperations(_) => {
            "stopped: too many operations (is there an endless loop?)".to_owned()
        }
        EvalAltResult::ErrorTerminated(token, _)
            if token.clone().into_string().ok().as_deref() == Some(DEADLINE_TOKEN) =>
        {
            "stopped: ran past its time limit (is there an endless loop?)".to_owned()
        }
        EvalAltResult::ErrorStackOverflow(_) => {
            "stopped: functions nested too deeply (endless recursion?)".to_owned()
        }
        EvalAltResult::ErrorDataTooLarge(what, _) => {
            format!("stopped: {what} grew larger than allowed")
        }
        EvalAltResult::ErrorRuntime(thrown, _) if thrown.is_string() => thrown.to_string(),
        EvalAltResult::ErrorDataRace(..) => format!(
            "{} (a closure reads a variable that the method it was given to is changing; \
             copy the variable first)",
            without_position(&err.to_string())
        ),
        other => without_position(&other.to_string()).to_owned(),
    };
    (message, position, calls)
}

/// Rhai ends messages with ` (line 3, position 5)`; we print positions as
/// `file:line:column` instead.
fn without_position(message: &str) -> &str {
    match message.rfind(" (line ") {
        Some(at) if message.ends_with(')') => &message[..at],
        _ => message,
    }
}

/// The first `params.NAME` in code (not comments or strings) whose NAME is
/// not declared in `PARAMS`, with where it is.
fn unknown_param(source: &str, declared: &Map) -> Option<(Position, String)> {
    let chars: Vec<char> = source.chars().collect();
    let (mut i, mut line, mut column) = (0, 1, 1);
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    let advance = |i: &mut usize, line: &mut usize, column: &mut usize| {
        if chars[*i] == '\n' {
            *line += 1;
            *column = 1;
        } else {
            *column += 1;
        }
        *i += 1;
    };
    while i < chars.len() {
        let rest = &chars[i..];
        if rest.starts_with(&['/', '/']) {
            while i < chars.len() && chars[i] != '\n' {
                advance(&mut i, &mut line, &mut column);
            }
        } else if rest.starts_with(&['/', '*']) {
            while i < chars.len() && !chars[i..].starts_with(&['*', '/']) {
                advance(&mut i, &mut line, &mut column);
            }
        } else if rest[0] == '"' || rest[0] == '`' {
            let quote = rest[0];
            advance(&mut i, &mut line, &mut column);
            while i < chars.len() && chars[i] != quote {
                if chars[i] == '\\' {
                    advance(&mut i, &mut line, &mut column);
                }
                if i < chars.len() {
                    advance(&mut i, &mut line, &mut column);
                }
            }
        } else if rest.starts_with(&['p', 'a', 'r', 'a', 'm', 's', '.'])
            && (i == 0 || !ident(chars[i - 1]))
        {
            let name: String = rest[7..].iter().take_while(|c| ident(**c)).collect();
            if !name.is_empty() && !declared.contains_key(name.as_str()) {
                return Some((Position::new(line as u16, column as u16 + 7), name));
            }
        }
        if i < chars.len() {
            advance(&mut i, &mut line, &mut column);
        }
    }
    None
}

/// The `//!` lines at the top of a rule, without the markers.
fn doc_header(source: &str) -> String {
    source
        .lines()
        .map(str::trim_start)
        .take_while(|line| line.starts_with("//!") || line.is_empty())
        .filter_map(|line| line.strip_prefix("//!"))
        .map(|line| line.strip_prefix(' ').unwrap_or(line))
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .to_owned()
}

/// Where `fn name` is defined, for messages about a function.
fn find_function(source: &str, name: &str) -> Position {
    let mut position = Position::NONE;
    for (index, line) in source.lines().enumerate() {
        let code = line.trim_start();
        let rest = code
            .strip_prefix("private ")
            .unwrap_or(code)
            .strip_prefix("fn ");
        if let Some(rest) = rest
            && rest.trim_start().starts_with(name)
            && rest.trim_start()[name.len()..]
                .trim_start()
                .starts_with('(')
        {
            let column = line.find(name).unwrap_or(0) + 1;
            position = Position::new(index as u16 + 1, column as u16);
            break;
        }
    }
    position
}

/// Where `text` first appears, for messages about a declaration.
fn find_text(source: &str, text: &str) -> Position {
    source
        .lines()
        .enumerate()
        .find_map(|(index, line)| {
            line.find(text)
                .map(|column| Position::new(index as u16 + 1, column as u16 + 1))
        })
        .unwrap_or(Position::NONE)
}

/// " (did you mean `on_join`?)" for a near miss.
fn suggestion(name: &str) -> String {
    Handler::ALL
        .iter()
        .map(|h| (h.name(), edit_distance(name, h.name())))
        .filter(|(_, distance)| *distance <= 3)
        .min_by_key(|(_, distance)| *distance)
        .map(|(handler, _)| format!(" (did you mean `{handler}`?)"))
        .unwrap_or_default()
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compile(source: &str) -> Result<Rule, RuleError> {
        Rule::compile(
            &RuleEngine::default(),
            "test",
            Path::new("rules/test.rhai"),
            source,
        )
    }

    #[test]
    fn finds_handlers_params_doc_and_constants() {
        let rule = compile(
            "//! Greets people.\n//! Politely.\n\nconst PARAMS = #{ greeting: \"hi\" };\nconst LOUD = true;\nfn on_join(p) { room.message(params.greeting); }\nfn helper() { LOUD }\n",
        )
        .unwrap();
        assert!(rule.handles(Handler::Join));
        assert!(!rule.handles(Handler::Leave));
        assert_eq!(rule.doc(), "Greets people.\nPolitely.");
        assert_eq!(rule.defaults()["greeting"].to_string(), "hi");
        assert!(rule.has_function("helper", 0));
        assert!(rule.constant("LOUD").unwrap().as_bool().unwrap());
    }

    #[test]
    fn syntax_errors_point_at_the_place() {
        let err = compile("fn on_join(p) {\n    p.mute(;\n}\n").unwrap_err();
        assert_eq!(err.line, Some(2), "{err}");
        assert!(err.to_string().starts_with("rules/test.rhai:2:"), "{err}");
    }

    #[test]
    fn misspelt_variables_are_compile_errors() {
        let err = compile("fn on_join(p) {\n    if parms.max > 1 { p.mute(); }\n}\n").unwrap_err();
        assert_eq!((err.line, err.column), (Some(2), Some(8)), "{err}");
        assert!(err.message.contains("parms"), "{err}");
    }

    #[test]
    fn unknown_handlers_and_wrong_arity_are_named() {
        let err = compile("\nfn on_jion(p) { }\n").unwrap_err();
        assert_eq!(err.line, Some(2));
        assert!(err.message.contains("did you mean `on_join`"), "{err}");
        let err = compile("fn on_update(p) { }\n").unwrap_err();
        assert!(err.message.contains("fn on_update(p, before)"), "{err}");
    }

    #[test]
    fn unknown_parameters_are_compile_errors() {
        let err = compile(
            "const PARAMS = #{ max: 1 };\n// params.nope in a comment is fine\nfn on_join(p) {\n  room.message(\"params.typo in text is fine\");\n  if params.maxx > 1 { p.mute(); }\n}\n",
        )
        .unwrap_err();
        assert_eq!((err.line, err.column), (Some(5), Some(13)), "{err}");
        assert_eq!(
            err.message,
            "unknown parameter `maxx`; this rule declares max"
        );
        let err = compile("fn on_join(p) { if params.max > 1 { } }").unwrap_err();
        assert!(err.message.contains("declares none"), "{err}");
    }

    #[test]
    fn params_must_be_a_map() {
        let err = compile("const PARAMS = 5;\n").unwrap_err();
        assert!(err.message.contains("must be a map"), "{err}");
        assert_eq!(err.line, Some(1));
    }

    #[test]
    fn the_top_level_cannot_reach_the_room() {
        let err = compile("\nroom.lock();\n").unwrap_err();
        assert_eq!(err.line, Some(2), "{err}");
        assert!(
            err.message.contains("only available inside a handler"),
            "{err}"
        );
    }

    #[test]
    fn eval_and_imports_are_refused() {
        assert!(compile("fn on_join(p) { eval(\"1\"); }").is_err());
        assert!(compile("import \"os\" as os;").is_err());
    }
}
