//! The daemon's configuration: schema, validation and secrets.
//!
//! ```yaml
//! platform:
//!   url: https://node.example.com   # the meeting node (mcuHost)…
//!   # check_join: { api_server: https://api.example.com }   # …or look it up per room
//!   display_name: usher
//!   hide: true                      # hideme on new_session
//!   stream_protocol: http1          # or http2 for thousands of rooms
//! rules_dir: rules
//! rooms:
//!   - alias: hall-a@example.com
//!     pin: ${HALL_A_PIN}            # from the environment; or pin_file: /path
//!     rules:
//!       - auto_mute_guests
//!       - lock_when_full: { max: 120, reserve: 5 }
//! dry_run: false
//! audit_log: audit.jsonl
//! reports_dir: reports              # end-of-lecture reports; off when absent
//! http: { listen: 127.0.0.1:9750 }   # auth: { token_file: … } allows the dashboard's actions
//! ```
//!
//! Unknown fields are errors, every error names `file:line:column`, and PINs
//! are read from the environment or a file and never printed: an error about
//! a PIN names the variable or file, not the value.

use std::collections::HashSet;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer};
use url::Url;

use crate::model::{Secret, Span};
use crate::platform::vmr::{HttpOptions, StreamProtocol};
use crate::rules::{Limits, RuleBinding, RuleSet};
use crate::yaml::{self, YamlError};

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// How to reach the platform.
    pub platform: PlatformConfig,
    /// Where the rules are (relative to the config file).
    #[serde(default = "default_rules_dir")]
    pub rules_dir: PathBuf,
    /// The rooms to watch.
    pub rooms: Vec<RoomConfig>,
    /// Run every rule but send nothing; commands are logged and audited as
    /// dry-run.
    #[serde(default)]
    pub dry_run: bool,
    /// The append-only JSONL audit log (relative to the config file); none
    /// when absent.
    #[serde(default)]
    pub audit_log: Option<PathBuf>,
    /// The local HTTP endpoint for `/healthz`, `/metrics` and `/status`.
    #[serde(default)]
    pub http: HttpConfig,
    /// How commands are paced and retried.
    #[serde(default)]
    pub dispatch: DispatchConfig,
    /// What one rule call may cost.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// Where end-of-lecture reports go (relative to the config file); none
    /// are written when absent.
    #[serde(default)]
    pub reports_dir: Option<PathBuf>,
}

/// How to reach the platform.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlatformConfig {
    /// The meeting node's URL.
    #[serde(default)]
    pub url: Option<HttpUrl>,
    /// Look up each room's node with `checkJoin` instead.
    #[serde(default)]
    pub check_join: Option<CheckJoinConfig>,
    /// The name usher's participant gets.
    #[serde(default = "default_display_name")]
    pub display_name: String,
    /// Keep usher's participant out of the roster.
    #[serde(default = "default_true")]
    pub hide: bool,
    /// Network timeouts.
    #[serde(default)]
    pub timeouts: TimeoutsConfig,
    /// How event streams reach the node: `http1` (one connection per room,
    /// works everywhere) or `http2` (multiplexed, far lighter for thousands
    /// of rooms; the node must speak HTTP/2).
    #[serde(default)]
    pub stream_protocol: StreamProtocol,
}

impl PlatformConfig {
    /// How to talk to the platform, for `rooms` rooms.
    pub fn http_options(&self, rooms: usize) -> HttpOptions {
        HttpOptions {
            connect_timeout: self.timeouts.connect.0,
            request_timeout: self.timeouts.request.0,
            stream_idle_timeout: self.timeouts.stream_idle.0,
            stream_protocol: self.stream_protocol,
            rooms,
        }
    }
}

/// Where to look rooms up with `checkJoin`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckJoinConfig {
    /// The API server, e.g. `https://api.example.com`.
    pub api_server: HttpUrl,
}

/// Network timeouts.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeoutsConfig {
    /// Connecting to the node.
    #[serde(default = "default_connect_timeout")]
    pub connect: Span,
    /// One REST call.
    #[serde(default = "default_request_timeout")]
    pub request: Span,
    /// An event stream silent this long is reconnected.
    #[serde(default = "default_stream_idle")]
    pub stream_idle: Span,
}

impl Default for TimeoutsConfig {
    fn default() -> Self {
        TimeoutsConfig {
            connect: default_connect_timeout(),
            request: default_request_timeout(),
            stream_idle: default_stream_idle(),
        }
    }
}

/// One room to watch.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoomConfig {
    /// The room's alias (address or number).
    pub alias: String,
    /// The host PIN: `${VARIABLE}` (read from the environment) or, not
    /// recommended, the PIN itself.
    #[serde(default)]
    pub pin: Option<PinSource>,
    /// A file holding the host PIN.
    #[serde(default)]
    pub pin_file: Option<PathBuf>,
    /// The rules to run here, in order (earlier rules win conflicts).
    #[serde(default)]
    pub rules: Vec<RuleBinding>,
}

/// The local HTTP endpoint.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Where to listen; loopback unless you mean otherwise.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Who may act from the dashboard; read-only when absent.
    #[serde(default)]
    pub auth: Option<HttpAuth>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: default_listen(),
            auth: None,
        }
    }
}

/// The tokens that allow the dashboard's actions.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpAuth {
    /// A file of tokens, one a line, each optionally preceded by its
    /// holder's name (relative to the config file).
    pub token_file: PathBuf,
}

/// How commands are paced and retried.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DispatchConfig {
    /// Commands per second per room, sustained.
    #[serde(default = "default_rate")]
    pub rate: f64,
    /// Commands a room may send at once before the rate applies.
    #[serde(default = "default_burst")]
    pub burst: u32,
    /// Attempts for a command that fails transiently (5xx, timeout).
    #[serde(default = "default_attempts")]
    pub attempts: u32,
    /// Opposite commands to one target tolerated per minute before the
    /// flip-flop guard holds further ones back.
    #[serde(default = "default_flip_flops")]
    pub flip_flops_per_minute: u32,
}

impl Default for DispatchConfig {
    fn default() -> Self {
        DispatchConfig {
            rate: default_rate(),
            burst: default_burst(),
            attempts: default_attempts(),
            flip_flops_per_minute: default_flip_flops(),
        }
    }
}

/// What one rule call may cost; see [`Limits`].
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Rhai operations per call.
    #[serde(default = "default_operations")]
    pub operations: u64,
    /// Wall-clock time per call.
    #[serde(default = "default_deadline")]
    pub deadline: Span,
    /// Consecutive failures before a rule is disabled in a room.
    #[serde(default = "default_failures")]
    pub failures_before_disable: u32,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            operations: default_operations(),
            deadline: default_deadline(),
            failures_before_disable: default_failures(),
        }
    }
}

impl LimitsConfig {
    /// The engine limits these settings give.
    pub fn to_limits(self) -> Limits {
        Limits {
            max_operations: self.operations,
            deadline: self.deadline.0,
            failures_before_disable: self.failures_before_disable,
            ..Limits::default()
        }
    }
}

fn default_rules_dir() -> PathBuf {
    PathBuf::from("rules")
}
fn default_display_name() -> String {
    "usher".to_owned()
}
fn default_true() -> bool {
    true
}
fn default_connect_timeout() -> Span {
    Span::secs(5)
}
fn default_request_timeout() -> Span {
    Span::secs(10)
}
fn default_stream_idle() -> Span {
    Span::secs(90)
}
fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9750))
}
fn default_rate() -> f64 {
    10.0
}
fn default_burst() -> u32 {
    20
}
fn default_attempts() -> u32 {
    4
}
fn default_flip_flops() -> u32 {
    4
}
fn default_operations() -> u64 {
    Limits::default().max_operations
}
fn default_deadline() -> Span {
    Span(Limits::default().deadline)
}
fn default_failures() -> u32 {
    Limits::default().failures_before_disable
}

/// An `http://` or `https://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl(pub Url);

impl<'de> Deserialize<'de> for HttpUrl {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        let url = Url::parse(&text).map_err(|err| {
            serde::de::Error::custom(format!(
                "`{text}` is not a URL ({err}); write it like https://node.example.com"
            ))
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(serde::de::Error::custom(format!(
                "`{text}` must be an http:// or https:// URL"
            )));
        }
        Ok(HttpUrl(url))
    }
}

/// A PIN as written in the config: `${VARIABLE}` or literal.
#[derive(Clone, PartialEq, Eq)]
pub enum PinSource {
    /// Read from this environment variable.
    Environment(String),
    /// Written in the file itself.
    Literal(Secret),
}

impl fmt::Debug for PinSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PinSource::Environment(name) => write!(f, "${{{name}}}"),
            PinSource::Literal(_) => f.write_str("***"),
        }
    }
}

impl<'de> Deserialize<'de> for PinSource {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = Secret::deserialize(deserializer)?;
        let trimmed = text.expose().trim();
        match trimmed
            .strip_prefix("${")
            .and_then(|rest| rest.strip_suffix('}'))
        {
            Some(name)
                if !name.is_empty()
                    && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') =>
            {
                Ok(PinSource::Environment(name.to_owned()))
            }
            Some(_) => Err(serde::de::Error::custom(
                "write an environment variable as ${NAME}, with letters, digits and _ only",
            )),
            None => Ok(PinSource::Literal(text)),
        }
    }
}

/// A configuration that cannot be used, with where and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub YamlError);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Reads and validates a config file. Relative paths in it are taken
    /// relative to the file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let mut config: Config = yaml::from_file(path).map_err(ConfigError)?;
        let source = std::fs::read_to_string(path).unwrap_or_default();
        config.validate(path, &source)?;
        let base = path.parent().unwrap_or(Path::new(""));
        config.rules_dir = base.join(&config.rules_dir);
        if let Some(audit) = &config.audit_log {
            config.audit_log = Some(base.join(audit));
        }
        if let Some(reports) = &config.reports_dir {
            config.reports_dir = Some(base.join(reports));
        }
        if let Some(auth) = &mut config.http.auth {
            auth.token_file = base.join(&auth.token_file);
        }
        for room in &mut config.rooms {
            if let Some(file) = &room.pin_file {
                room.pin_file = Some(base.join(file));
            }
        }
        Ok(config)
    }

    fn validate(&self, path: &Path, source: &str) -> Result<(), ConfigError> {
        let error = |needle: &str, nth: usize, message: String| {
            let (line, column) = locate(source, needle, nth);
            ConfigError(YamlError {
                path: Some(path.to_owned()),
                line,
                column,
                message,
            })
        };
        match (&self.platform.url, &self.platform.check_join) {
            (None, None) => {
                return Err(error(
                    "platform:",
                    0,
                    "platform: give the meeting node as `url:`, or `check_join: { api_server: ... }` to look it up".to_owned(),
                ));
            }
            (Some(_), Some(_)) => {
                return Err(error(
                    "check_join:",
                    0,
                    "platform: give either `url` or `check_join`, not both".to_owned(),
                ));
            }
            _ => {}
        }
        if self.rooms.is_empty() {
            return Err(error(
                "rooms:",
                0,
                "rooms: list at least one room to watch".to_owned(),
            ));
        }
        let mut seen = HashSet::new();
        for (index, room) in self.rooms.iter().enumerate() {
            if room.alias.trim().is_empty() {
                return Err(error(
                    "alias:",
                    index,
                    format!("rooms[{index}].alias is empty"),
                ));
            }
            if !seen.insert(room.alias.as_str()) {
                return Err(error(
                    &room.alias,
                    1,
                    format!("rooms[{index}]: room `{}` is listed twice", room.alias),
                ));
            }
            if room.pin.is_some() && room.pin_file.is_some() {
                return Err(error(
                    "pin_file:",
                    0,
                    format!("rooms[{index}]: give either `pin` or `pin_file`, not both"),
                ));
            }
        }
        if !(self.dispatch.rate > 0.0 && self.dispatch.rate.is_finite()) {
            return Err(error(
                "rate:",
                0,
                "dispatch.rate must be a positive number of commands per second".to_owned(),
            ));
        }
        if self.dispatch.burst == 0 || self.dispatch.attempts == 0 {
            return Err(error(
                "dispatch:",
                0,
                "dispatch.burst and dispatch.attempts must be at least 1".to_owned(),
            ));
        }
        Ok(())
    }

    /// Checks every room's rule bindings against a rule set, naming the room
    /// and the place in the file.
    pub fn check_bindings(&self, path: &Path, rules: &RuleSet) -> Result<(), ConfigError> {
        let source = std::fs::read_to_string(path).unwrap_or_default();
        for room in &self.rooms {
            for binding in &room.rules {
                if let Err(err) = rules.check(binding) {
                    let (line, column) = locate_after(&source, &room.alias, &binding.rule);
                    return Err(ConfigError(YamlError {
                        path: Some(path.to_owned()),
                        line,
                        column,
                        message: format!("room `{}`: {err}", room.alias),
                    }));
                }
            }
        }
        Ok(())
    }
}

impl RoomConfig {
    /// Resolves the room's PIN from the environment or its file. The error
    /// names the variable or file, never a value.
    pub fn resolve_pin(&self) -> Result<Option<Secret>, String> {
        match (&self.pin, &self.pin_file) {
            (Some(PinSource::Literal(pin)), _) => Ok(Some(pin.clone())),
            (Some(PinSource::Environment(name)), _) => match std::env::var(name) {
                Ok(value) if !value.is_empty() => Ok(Some(Secret::new(value))),
                _ => Err(format!(
                    "room `{}`: the PIN comes from ${{{name}}}, which is not set; export it or use pin_file",
                    self.alias
                )),
            },
            (None, Some(file)) => std::fs::read_to_string(file)
                .map(|text| Some(Secret::new(text.trim_end_matches(['\r', '\n']))))
                .map_err(|err| {
                    format!(
                        "room `{}`: cannot read pin_file {}: {}",
                        self.alias,
                        file.display(),
                        err.kind()
                    )
                }),
            (None, None) => Ok(None),
        }
    }
}

/// The 1-based line and column of the `nth` (0-based) occurrence of
/// `needle`, or nothing when it does not appear.
fn locate(source: &str, needle: &str, nth: usize) -> (Option<usize>, Option<usize>) {
    source
        .match_indices(needle)
        .nth(nth)
        .map(|(offset, _)| line_column(source, offset))
        .map_or((None, None), |(line, column)| (Some(line), Some(column)))
}

/// The position of `needle` after the first mention of `anchor`.
fn locate_after(source: &str, anchor: &str, needle: &str) -> (Option<usize>, Option<usize>) {
    let start = source.find(anchor).unwrap_or(0);
    source[start..]
        .find(needle)
        .map(|offset| line_column(source, start + offset))
        .map_or((None, None), |(line, column)| (Some(line), Some(column)))
}

fn line_column(source: &str, offset: usize) -> (usize, usize) {
    let before = &source[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rfind('\n')
        .map_or(offset, |newline| offset - newline - 1)
        + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(name: &str, text: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("usher-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    const GOOD: &str = "platform:\n  url: https://node.example.com\nrooms:\n  - alias: hall-a@example.com\n    pin: ${USHER_TEST_PIN_A}\n    rules:\n      - auto_mute_guests\n      - lock_when_full: { max: 120 }\naudit_log: audit.jsonl\n";

    #[test]
    fn reads_the_documented_shape_with_defaults() {
        let path = write("good.yaml", GOOD);
        let config = Config::load(&path).unwrap();
        assert_eq!(config.platform.display_name, "usher");
        assert!(config.platform.hide && !config.dry_run);
        assert_eq!(config.rooms[0].rules[1].params["max"], 120);
        assert_eq!(config.http.listen, "127.0.0.1:9750".parse().unwrap());
        assert_eq!(config.rules_dir, path.parent().unwrap().join("rules"));
        assert_eq!(
            config.audit_log,
            Some(path.parent().unwrap().join("audit.jsonl"))
        );
    }

    #[test]
    fn unknown_fields_are_errors_with_a_position() {
        let path = write("typo.yaml", &GOOD.replace("audit_log", "audit_lgo"));
        let err = Config::load(&path).unwrap_err().to_string();
        assert!(err.contains("typo.yaml:9:1:"), "{err}");
        assert!(err.contains("unknown field `audit_lgo`"), "{err}");
    }

    #[test]
    fn semantic_errors_point_at_the_place() {
        let twice = format!("{GOOD}  - alias: hall-a@example.com\n");
        let twice = twice.replace("audit_log: audit.jsonl\n", "") + "audit_log: a.jsonl\n";
        let err = Config::load(&write("twice.yaml", &twice))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("twice.yaml:9:12: rooms[1]: room `hall-a@example.com` is listed twice"),
            "{err}"
        );
        let no_node = GOOD.replace("  url: https://node.example.com\n", "  hide: true\n");
        let err = Config::load(&write("no_node.yaml", &no_node))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("no_node.yaml:1:1: platform: give the meeting node"),
            "{err}"
        );
        let bad_url = GOOD.replace("https://node.example.com", "node.example.com");
        let err = Config::load(&write("bad_url.yaml", &bad_url))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("bad_url.yaml:2:") && err.contains("https://node.example.com"),
            "{err}"
        );
    }

    #[test]
    fn pins_come_from_the_environment_and_never_show() {
        let config = Config::load(&write("pin.yaml", GOOD)).unwrap();
        let room = &config.rooms[0];
        assert_eq!(format!("{:?}", room.pin), "Some(${USHER_TEST_PIN_A})");
        let err = room.resolve_pin().unwrap_err();
        assert!(
            err.contains("${USHER_TEST_PIN_A}, which is not set"),
            "{err}"
        );
        // SAFETY: this test alone uses this variable.
        unsafe { std::env::set_var("USHER_TEST_PIN_A", "8642") };
        assert_eq!(room.resolve_pin().unwrap().unwrap().expose(), "8642");
        let literal = Config::load(&write(
            "literal.yaml",
            &GOOD.replace("${USHER_TEST_PIN_A}", "\"1357\""),
        ))
        .unwrap();
        assert!(!format!("{literal:?}").contains("1357"));
    }

    #[test]
    fn pin_files_are_read_and_trimmed() {
        let pin = write("hall.pin", "2468\n");
        let text = GOOD.replace(
            "pin: ${USHER_TEST_PIN_A}",
            &format!("pin_file: {}", pin.display()),
        );
        let config = Config::load(&write("pinfile.yaml", &text)).unwrap();
        assert_eq!(
            config.rooms[0].resolve_pin().unwrap().unwrap().expose(),
            "2468"
        );
        let missing = GOOD.replace("pin: ${USHER_TEST_PIN_A}", "pin_file: /nonexistent/pin");
        let config = Config::load(&write("nopin.yaml", &missing)).unwrap();
        let err = config.rooms[0].resolve_pin().unwrap_err();
        assert!(
            err.contains("cannot read pin_file /nonexistent/pin"),
            "{err}"
        );
    }
}
