//! The daemon's configuration: schema, validation and secrets.
//!
//! ```yaml
//! platforms:                        # named platform accounts, each of one `kind`
//!   campus:
//!     kind: vmr
//!     url: https://node.example.com
//! rules_dir: rules
//! rooms:
//!   - alias: hall-a@example.com     # the room's id on its platform
//!     platform: campus              # optional when there is one platform
//!     pin: ${HALL_A_PIN}            # from the environment; or pin_file: /path
//!     rules:
//!       - auto_mute_guests
//!       - lock_when_full: { max: 120, reserve: 5 }
//!     timetable: hall-a.ics         # or an https:// feed (see `timetable`)
//!     zone: Europe/Berlin           # default: the machine's zone
//! dry_run: false
//! audit_log: audit.jsonl
//! state_dir: usher-state          # rules' state between runs; default: next to the audit log
//! reports_dir: reports              # end-of-lecture reports; off when absent
//! http: { listen: 127.0.0.1:9750 }   # auth: { token_file: … } allows the dashboard's actions
//! ```
//!
//! Rooms can also be found rather than listed: a `discover:` entry watches
//! every room its platform reports (a meeting started, a room created)
//! whose title or id matches, with the rules of a named profile, until the
//! platform reports it ended:
//!
//! ```yaml
//! webhooks: { listen: 127.0.0.1:9760, public_url: https://usher.example.com }
//! profiles:
//!   lecture: [auto_mute_guests, lock_when_full: { max: 100, reserve: 5 }]
//! discover:
//!   - { platform: hw, match: "Lecture *", profile: lecture }
//! ```
//!
//! With `cluster:` (see [`crate::cluster::config`]), several instances
//! loading the same config share its rooms through etcd.
//!
//! A single `platform:` block (the shape of earlier versions) is read as
//! one `vmr` platform named `default`. Unknown fields are errors, every
//! error names `file:line:column`, and secrets are read from the
//! environment or a file and never printed (see [`secret`]).
//!
//! [`Config::load`] is the one way to read a config, and [`Config::room`]
//! the one way to pick a room from it.

pub mod secret;

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::clock::Zone;
use crate::model::{Secret, Span};
use crate::platform::{Capabilities, PlatformConfig, PlatformKind};
use crate::rules::{Limits, RuleBinding, RuleSet};
use crate::timetable::{ScheduleSettings, TimetableConfig};
use crate::yaml::{self, YamlError};
pub use secret::{SecretError, SecretSource};

/// The name the single `platform:` block of older configs gets.
pub const DEFAULT_PLATFORM: &str = "default";

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Named platform accounts.
    #[serde(default)]
    pub platforms: BTreeMap<String, PlatformConfig>,
    /// One seed-001 platform, as earlier versions wrote it; read into
    /// `platforms` as [`DEFAULT_PLATFORM`].
    #[serde(default, rename = "platform")]
    legacy_platform: Option<crate::platform::VmrConfig>,
    /// Where the rules are (relative to the config file).
    #[serde(default = "default_rules_dir")]
    pub rules_dir: PathBuf,
    /// The rooms to watch.
    #[serde(default)]
    pub rooms: Vec<RoomConfig>,
    /// Named sets of rules, for listed rooms (`profile:`) and discovered ones.
    #[serde(default)]
    pub profiles: BTreeMap<String, Profile>,
    /// Rooms to watch as their platform reports them.
    #[serde(default)]
    pub discover: Vec<DiscoverConfig>,
    /// The listener for platforms' callbacks.
    #[serde(default)]
    pub webhooks: Option<WebhooksConfig>,
    /// Run every rule but send nothing; commands are logged and audited as
    /// dry-run.
    #[serde(default)]
    pub dry_run: bool,
    /// The append-only JSONL audit log (relative to the config file); none
    /// when absent.
    #[serde(default)]
    pub audit_log: Option<PathBuf>,
    /// Where rooms' rule state is kept between runs (relative to the config
    /// file); see [`Config::state_dir`].
    #[serde(default)]
    state_dir: Option<PathBuf>,
    /// Several instances sharing rooms through etcd.
    #[serde(default)]
    pub cluster: Option<crate::cluster::config::ClusterConfig>,
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

/// One room to watch.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoomConfig {
    /// The room's id on its platform (seed 001: the conference alias).
    pub alias: String,
    /// The platform account the room is on; after loading, always set.
    #[serde(default)]
    pub platform: Option<String>,
    /// The room's secret where its platform has one (seed 001: the host
    /// PIN): `${VARIABLE}` (read from the environment) or, not recommended,
    /// the value itself.
    #[serde(default)]
    pub pin: Option<SecretSource>,
    /// A file holding the room's secret.
    #[serde(default)]
    pub pin_file: Option<PathBuf>,
    /// A profile whose rules run here first.
    #[serde(default)]
    pub profile: Option<String>,
    /// The rules to run here, in order (earlier rules win conflicts); after
    /// the profile's, once the config is loaded.
    #[serde(default)]
    pub rules: Vec<RuleBinding>,
    /// The room's timetable: an `.ics` file or an `https://` feed (the
    /// profile's when the room gives none).
    #[serde(default)]
    pub timetable: Option<TimetableConfig>,
    /// The room's time zone (the profile's, else the machine's).
    #[serde(default)]
    pub zone: Option<Zone>,
    /// Book a meeting for each timetable session this far ahead (`7d`),
    /// on platforms that can book; the room's alias then names the series,
    /// and each booked meeting is watched with the room's rules.
    #[serde(default)]
    pub book_ahead: Option<crate::model::Span>,
}

/// A named set of rules: written as the list itself, or as a map with
/// `rules:` and the room settings its rooms share (`timetable:`, `zone:`).
#[derive(Debug, Clone, Default)]
pub struct Profile {
    /// The rules, in order.
    pub rules: Vec<RuleBinding>,
    /// The timetable and zone rooms of this profile take unless they give
    /// their own.
    pub schedule: ScheduleSettings,
}

impl<'de> Deserialize<'de> for Profile {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ProfileVisitor;
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Long {
            #[serde(default)]
            rules: Vec<RuleBinding>,
            #[serde(default)]
            timetable: Option<TimetableConfig>,
            #[serde(default)]
            zone: Option<Zone>,
        }
        impl<'de> serde::de::Visitor<'de> for ProfileVisitor {
            type Value = Profile;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of rules, or a map with `rules:`")
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<Profile, A::Error> {
                let rules = Vec::deserialize(serde::de::value::SeqAccessDeserializer::new(seq))?;
                Ok(Profile {
                    rules,
                    schedule: ScheduleSettings::default(),
                })
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Profile, A::Error> {
                let long = Long::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(Profile {
                    rules: long.rules,
                    schedule: ScheduleSettings {
                        timetable: long.timetable,
                        zone: long.zone,
                    },
                })
            }
        }
        deserializer.deserialize_any(ProfileVisitor)
    }
}

/// Rooms to watch as a platform reports them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiscoverConfig {
    /// The platform account whose rooms to watch.
    pub platform: String,
    /// A glob (`*`, `?`, ignoring case) matched against the room's title and
    /// its id.
    #[serde(rename = "match")]
    pub pattern: String,
    /// The profile whose rules the rooms run.
    pub profile: String,
    /// The rooms' secret, when the platform does not give it.
    #[serde(default)]
    pub pin: Option<SecretSource>,
    /// A file holding it.
    #[serde(default)]
    pub pin_file: Option<PathBuf>,
}

impl DiscoverConfig {
    /// True when this entry watches a room with this title or id.
    pub fn matches(&self, platform: &str, title: &str, alias: &str) -> bool {
        self.platform == platform
            && (crate::rules::api::glob_match(&self.pattern, title)
                || crate::rules::api::glob_match(&self.pattern, alias))
    }

    /// The entry's secret, if it gives one.
    pub fn resolve_pin(&self) -> Result<Option<Secret>, SecretError> {
        secret::resolve("pin", self.pin.as_ref(), self.pin_file.as_deref())
    }
}

/// The listener for platforms' callbacks.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhooksConfig {
    /// Where to listen (callbacks reach usher at `/hooks/<platform name>`).
    #[serde(default = "default_webhook_listen")]
    pub listen: SocketAddr,
    /// usher's address as platforms see it, for platforms that are told
    /// where to call back.
    #[serde(default)]
    pub public_url: Option<crate::platform::http::HttpUrl>,
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
    /// Commands a room may hold waiting to be sent; more are dropped and
    /// audited as `overflow`.
    #[serde(default = "default_queue")]
    pub queue: usize,
}

impl Default for DispatchConfig {
    fn default() -> Self {
        DispatchConfig {
            rate: default_rate(),
            burst: default_burst(),
            attempts: default_attempts(),
            flip_flops_per_minute: default_flip_flops(),
            queue: default_queue(),
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
    /// Commands one call may ask for; a call asking for more fails.
    #[serde(default = "default_intents")]
    pub intents: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            operations: default_operations(),
            deadline: default_deadline(),
            failures_before_disable: default_failures(),
            intents: default_intents(),
        }
    }
}

/// The bounds within which the sandbox's limits may be set: below them a
/// rule cannot do anything useful, above them (or at 0, which Rhai reads
/// as "unlimited") one rule could hold its room for seconds.
const OPERATIONS_RANGE: std::ops::RangeInclusive<u64> = 1_000..=100_000_000;
const DEADLINE_RANGE: std::ops::RangeInclusive<f64> = 0.001..=5.0;
const INTENTS_RANGE: std::ops::RangeInclusive<usize> = 1..=10_000;

impl LimitsConfig {
    /// The engine limits these settings give.
    pub fn to_limits(self) -> Limits {
        Limits {
            max_operations: self.operations,
            deadline: self.deadline.0,
            failures_before_disable: self.failures_before_disable,
            max_intents: self.intents,
            ..Limits::default()
        }
    }
}

fn default_rules_dir() -> PathBuf {
    PathBuf::from("rules")
}
fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9750))
}
fn default_webhook_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9760))
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
fn default_intents() -> usize {
    Limits::default().max_intents
}
fn default_queue() -> usize {
    1_000
}
fn default_failures() -> u32 {
    Limits::default().failures_before_disable
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
    /// relative to the file; every room's `platform` is resolved.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let mut config: Config = yaml::from_file(path).map_err(ConfigError)?;
        let source = std::fs::read_to_string(path).unwrap_or_default();
        let at = Locator {
            path,
            source: &source,
        };
        config.gather_platforms(&at)?;
        config.apply_profiles(&at)?;
        config.validate(&at)?;
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
        if let Some(dir) = &config.state_dir {
            config.state_dir = Some(base.join(dir));
        }
        for room in &mut config.rooms {
            if let Some(file) = &room.pin_file {
                room.pin_file = Some(base.join(file));
            }
            let mut schedule = room.schedule();
            schedule.relative_to(base);
            room.timetable = schedule.timetable;
        }
        for profile in config.profiles.values_mut() {
            profile.schedule.relative_to(base);
        }
        for platform in config.platforms.values_mut() {
            platform.rebase_files(base);
        }
        for entry in &mut config.discover {
            if let Some(file) = &entry.pin_file {
                entry.pin_file = Some(base.join(file));
            }
        }
        if !config.rules_dir.is_dir() {
            return Err(at.error(
                "rules_dir:",
                0,
                format!(
                    "the rules directory {} does not exist; create it or point `rules_dir:` at it",
                    config.rules_dir.display()
                ),
            ));
        }
        Ok(config)
    }

    /// Where rooms' rule state is kept: `state_dir:`, else `usher-state`
    /// next to the audit log; none without either (state then lasts as
    /// long as the process).
    pub fn state_dir(&self) -> Option<PathBuf> {
        self.state_dir.clone().or_else(|| {
            let audit = self.audit_log.as_ref()?;
            Some(audit.parent().unwrap_or(Path::new("")).join("usher-state"))
        })
    }

    /// The room `alias`, or with `None` the only room; the error lists the
    /// rooms there are.
    pub fn room(&self, alias: Option<&str>) -> Result<&RoomConfig, PickRoomError> {
        let known = || self.rooms.iter().map(|room| room.alias.clone()).collect();
        match alias {
            Some(alias) => self
                .rooms
                .iter()
                .find(|room| room.alias == alias)
                .ok_or_else(|| PickRoomError::Unknown {
                    alias: alias.to_owned(),
                    known: known(),
                }),
            None if self.rooms.len() == 1 => Ok(&self.rooms[0]),
            None => Err(PickRoomError::Ambiguous { known: known() }),
        }
    }

    /// The platform a room is on.
    pub fn platform_of(&self, room: &RoomConfig) -> &PlatformConfig {
        &self.platforms[room.platform_name()]
    }

    /// Moves the older single `platform:` block into `platforms` and gives
    /// every room its platform.
    fn gather_platforms(&mut self, at: &Locator) -> Result<(), ConfigError> {
        if let Some(legacy) = self.legacy_platform.take() {
            if !self.platforms.is_empty() {
                return Err(at.error(
                    "platform:",
                    0,
                    "give either `platform:` (one platform) or `platforms:` (named accounts), not both".to_owned(),
                ));
            }
            self.platforms
                .insert(DEFAULT_PLATFORM.to_owned(), PlatformConfig::Vmr(legacy));
        }
        if self.platforms.is_empty() {
            return Err(at.error(
                "rooms:",
                0,
                "name the platform the rooms are on: `platforms: { NAME: { kind: vmr, url: https://… } }`".to_owned(),
            ));
        }
        for (name, platform) in &self.platforms {
            if let Err(message) = platform.validate() {
                let needle = if self.platforms.len() == 1 && name == DEFAULT_PLATFORM {
                    "platform:".to_owned()
                } else {
                    format!("{name}:")
                };
                return Err(at.error(&needle, 0, format!("platform `{name}`: {message}")));
            }
        }
        let only = (self.platforms.len() == 1)
            .then(|| self.platforms.keys().next().cloned())
            .flatten();
        for (index, room) in self.rooms.iter_mut().enumerate() {
            match (&room.platform, &only) {
                (Some(name), _) if self.platforms.contains_key(name) => {}
                (Some(name), _) => {
                    let known: Vec<&str> = self.platforms.keys().map(String::as_str).collect();
                    return Err(at.error_after(
                        &room.alias,
                        "platform:",
                        format!(
                            "rooms[{index}]: no platform `{name}`; the platforms are: {}",
                            known.join(", ")
                        ),
                    ));
                }
                (None, Some(only)) => room.platform = Some(only.clone()),
                (None, None) => {
                    return Err(at.error(
                        &room.alias,
                        0,
                        format!(
                            "rooms[{index}]: say which platform room `{}` is on (`platform: NAME`); there are several",
                            room.alias
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Puts each room's profile rules before its own, and checks that every
    /// profile named exists.
    fn apply_profiles(&mut self, at: &Locator) -> Result<(), ConfigError> {
        let known = || self.profiles.keys().cloned().collect::<Vec<_>>().join(", ");
        for (index, room) in self.rooms.iter_mut().enumerate() {
            let Some(name) = &room.profile else { continue };
            let Some(profile) = self.profiles.get(name) else {
                return Err(at.error_after(
                    &room.alias,
                    "profile:",
                    format!(
                        "rooms[{index}]: no profile `{name}`; the profiles are: {}",
                        known()
                    ),
                ));
            };
            let own = std::mem::take(&mut room.rules);
            room.rules = profile.rules.iter().cloned().chain(own).collect();
            let schedule = room.schedule().or(&profile.schedule);
            room.timetable = schedule.timetable;
            room.zone = schedule.zone;
        }
        for (index, entry) in self.discover.iter().enumerate() {
            if !self.profiles.contains_key(&entry.profile) {
                return Err(at.error(
                    "profile:",
                    self.rooms.iter().filter(|r| r.profile.is_some()).count() + index,
                    format!(
                        "discover[{index}]: no profile `{}`; the profiles are: {}",
                        entry.profile,
                        known()
                    ),
                ));
            }
            if !self.platforms.contains_key(&entry.platform) {
                let platforms: Vec<&str> = self.platforms.keys().map(String::as_str).collect();
                return Err(at.error(
                    &format!("platform: {}", entry.platform),
                    0,
                    format!(
                        "discover[{index}]: no platform `{}`; the platforms are: {}",
                        entry.platform,
                        platforms.join(", ")
                    ),
                ));
            }
            if entry.pin.is_some() && entry.pin_file.is_some() {
                return Err(at.error(
                    "pin_file:",
                    0,
                    format!("discover[{index}]: give either `pin` or `pin_file`, not both"),
                ));
            }
        }
        Ok(())
    }

    fn validate(&self, at: &Locator) -> Result<(), ConfigError> {
        if self.rooms.is_empty() && self.discover.is_empty() {
            return Err(at.error(
                "rooms:",
                0,
                "rooms: list at least one room to watch, or `discover:` rooms as their platform reports them".to_owned(),
            ));
        }
        let mut seen = HashSet::new();
        for (index, room) in self.rooms.iter().enumerate() {
            if room.alias.trim().is_empty() {
                return Err(at.error("alias:", index, format!("rooms[{index}].alias is empty")));
            }
            if !seen.insert((room.platform_name(), room.alias.as_str())) {
                return Err(at.error(
                    &room.alias,
                    1,
                    format!("rooms[{index}]: room `{}` is listed twice", room.alias),
                ));
            }
            if room.pin.is_some() && room.pin_file.is_some() {
                return Err(at.error_after(
                    &room.alias,
                    "pin_file:",
                    format!("rooms[{index}]: give either `pin` or `pin_file`, not both"),
                ));
            }
            if room.book_ahead.is_some() && room.timetable.is_none() {
                return Err(at.error_after(
                    &room.alias,
                    "book_ahead:",
                    format!(
                        "rooms[{index}]: `book_ahead` books the sessions of the room's timetable; give the room a `timetable`"
                    ),
                ));
            }
            let kind = self
                .platforms
                .get(room.platform_name())
                .map(PlatformConfig::kind);
            if room.book_ahead.is_some()
                && !matches!(kind, Some(PlatformKind::Huawei | PlatformKind::Agora))
            {
                return Err(at.error_after(
                    &room.alias,
                    "book_ahead:",
                    format!(
                        "rooms[{index}]: `book_ahead` needs a platform that can book meetings (huawei or agora); `{}` cannot",
                        room.platform_name()
                    ),
                ));
            }
        }
        if !(self.dispatch.rate > 0.0 && self.dispatch.rate.is_finite()) {
            return Err(at.error(
                "rate:",
                0,
                "dispatch.rate must be a positive number of commands per second".to_owned(),
            ));
        }
        if self.dispatch.burst == 0 || self.dispatch.attempts == 0 || self.dispatch.queue == 0 {
            return Err(at.error(
                "dispatch:",
                0,
                "dispatch.burst, dispatch.attempts and dispatch.queue must be at least 1"
                    .to_owned(),
            ));
        }
        if !INTENTS_RANGE.contains(&self.limits.intents) {
            return Err(at.error(
                "intents:",
                0,
                format!(
                    "limits.intents must be between {} and {}: it bounds the commands one rule call may ask for",
                    INTENTS_RANGE.start(),
                    INTENTS_RANGE.end()
                ),
            ));
        }
        if !OPERATIONS_RANGE.contains(&self.limits.operations) {
            return Err(at.error(
                "operations:",
                0,
                format!(
                    "limits.operations must be between {} and {}: it bounds what one rule call may do, and 0 would switch the bound off",
                    OPERATIONS_RANGE.start(),
                    OPERATIONS_RANGE.end()
                ),
            ));
        }
        if !DEADLINE_RANGE.contains(&self.limits.deadline.as_secs_f64()) {
            return Err(at.error(
                "deadline:",
                0,
                format!(
                    "limits.deadline must be between {} ms and {} s: one rule call holds its room for that long at most",
                    DEADLINE_RANGE.start() * 1000.0,
                    DEADLINE_RANGE.end()
                ),
            ));
        }
        if self.limits.failures_before_disable == 0 {
            return Err(at.error(
                "failures_before_disable:",
                0,
                "limits.failures_before_disable must be at least 1".to_owned(),
            ));
        }
        self.validate_cluster(at)
    }

    /// `cluster:` as far as it can be checked without etcd.
    fn validate_cluster(&self, at: &Locator) -> Result<(), ConfigError> {
        use crate::cluster::config::ClusterConfigError;
        let Some(cluster) = &self.cluster else {
            return Ok(());
        };
        if let Err(err) = cluster.validate() {
            let needle = match err {
                ClusterConfigError::NoEndpoints | ClusterConfigError::BadEndpoint(_) => "etcd:",
                ClusterConfigError::LeaseTtl => "lease_ttl:",
                ClusterConfigError::Node(_) => "node:",
                ClusterConfigError::Prefix => "prefix:",
            };
            return Err(at.error_after("cluster:", needle, err.to_string()));
        }
        if !self.discover.is_empty() {
            return Err(at.error(
                "discover:",
                0,
                "discover: is not shared between the instances of a cluster yet; with `cluster:`, list the rooms under `rooms:`".to_owned(),
            ));
        }
        if self.rooms.iter().any(|room| room.book_ahead.is_some()) {
            return Err(at.error(
                "book_ahead:",
                0,
                "book_ahead is not shared between the instances of a cluster yet (each would book); run the booking rooms on an instance without `cluster:`".to_owned(),
            ));
        }
        Ok(())
    }

    /// Checks every room's rule bindings against a rule set, naming the room
    /// and the place in the file.
    pub fn check_bindings(&self, path: &Path, rules: &RuleSet) -> Result<(), ConfigError> {
        let source = std::fs::read_to_string(path).unwrap_or_default();
        let at = Locator {
            path,
            source: &source,
        };
        for room in &self.rooms {
            for binding in &room.rules {
                if let Err(err) = rules.check(binding) {
                    return Err(at.error_after(
                        &room.alias,
                        &binding.rule,
                        format!("room `{}`: {err}", room.alias),
                    ));
                }
            }
        }
        for (name, profile) in &self.profiles {
            for binding in &profile.rules {
                if let Err(err) = rules.check(binding) {
                    return Err(at.error_after(
                        &format!("{name}:"),
                        &binding.rule,
                        format!("profile `{name}`: {err}"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Reads every room's secret, naming the room and the place in the
    /// file when one cannot be read. Returns them in room order.
    pub fn resolve_pins(&self, path: &Path) -> Result<Vec<Option<Secret>>, ConfigError> {
        self.rooms
            .iter()
            .map(|room| self.resolve_pin(path, room))
            .collect()
    }

    /// Reads one room's secret, naming the room and the place in the file
    /// when it cannot be read.
    pub fn resolve_pin(
        &self,
        path: &Path,
        room: &RoomConfig,
    ) -> Result<Option<Secret>, ConfigError> {
        room.resolve_pin().map_err(|err| {
            let source = std::fs::read_to_string(path).unwrap_or_default();
            let at = Locator {
                path,
                source: &source,
            };
            let field = if room.pin_file.is_some() {
                "pin_file:"
            } else {
                "pin:"
            };
            at.error_after(&room.alias, field, format!("room `{}`: {err}", room.alias))
        })
    }

    /// The capabilities of the platform each room is on, by alias.
    pub fn capabilities(&self) -> BTreeMap<&str, Capabilities> {
        self.rooms
            .iter()
            .map(|room| (room.alias.as_str(), self.platform_of(room).capabilities()))
            .collect()
    }
}

impl RoomConfig {
    /// The room's timetable and zone.
    pub fn schedule(&self) -> ScheduleSettings {
        ScheduleSettings {
            timetable: self.timetable.clone(),
            zone: self.zone.clone(),
        }
    }

    /// The name of the platform account the room is on.
    pub fn platform_name(&self) -> &str {
        self.platform.as_deref().unwrap_or(DEFAULT_PLATFORM)
    }

    /// Resolves the room's secret from the environment or its file. The
    /// error names the variable or file, never a value.
    pub fn resolve_pin(&self) -> Result<Option<Secret>, SecretError> {
        secret::resolve("pin", self.pin.as_ref(), self.pin_file.as_deref())
    }
}

/// Why [`Config::room`] found no room.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PickRoomError {
    /// No room has this alias.
    #[error("no room `{alias}` in the config; its rooms are: {}", known.join(", "))]
    Unknown {
        /// The alias asked for.
        alias: String,
        /// The rooms there are.
        known: Vec<String>,
    },
    /// No alias was given and there are several rooms.
    #[error("the config has several rooms; pick one with --room (one of: {})", known.join(", "))]
    Ambiguous {
        /// The rooms there are.
        known: Vec<String>,
    },
}

/// Points errors at places in the config file.
struct Locator<'a> {
    path: &'a Path,
    source: &'a str,
}

impl Locator<'_> {
    /// An error at the `nth` (0-based) occurrence of `needle`.
    fn error(&self, needle: &str, nth: usize, message: String) -> ConfigError {
        let (line, column) = locate(self.source, needle, nth);
        self.at(line, column, message)
    }

    /// An error at the first `needle` after the first mention of `anchor`.
    fn error_after(&self, anchor: &str, needle: &str, message: String) -> ConfigError {
        let (line, column) = locate_after(self.source, anchor, needle);
        self.at(line, column, message)
    }

    /// An error at a place, or at the top of the file when the place is
    /// not written out (a missing section, say).
    fn at(&self, line: Option<usize>, column: Option<usize>, message: String) -> ConfigError {
        ConfigError(YamlError {
            path: Some(self.path.to_owned()),
            line: line.or(Some(1)),
            column: column.or(Some(1)),
            message,
        })
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

/// The position of `needle` after the first mention of `anchor`, or of the
/// anchor itself when `needle` is not written out whole (a name folded
/// across lines, say).
fn locate_after(source: &str, anchor: &str, needle: &str) -> (Option<usize>, Option<usize>) {
    let Some(start) = source.find(anchor) else {
        return locate(source, needle, 0);
    };
    let offset = source[start..].find(needle).map_or(start, |at| start + at);
    let (line, column) = line_column(source, offset);
    (Some(line), Some(column))
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
        std::fs::create_dir_all(dir.join("rules")).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    const GOOD: &str = "platform:\n  url: https://node.example.com\nrooms:\n  - alias: hall-a@example.com\n    pin: ${USHER_TEST_PIN_A}\n    rules:\n      - auto_mute_guests\n      - lock_when_full: { max: 120 }\naudit_log: audit.jsonl\n";

    #[test]
    fn reads_the_documented_shape_with_defaults() {
        let path = write("good.yaml", GOOD);
        let config = Config::load(&path).unwrap();
        let PlatformConfig::Vmr(platform) = &config.platforms[DEFAULT_PLATFORM] else {
            panic!("the legacy block is a vmr platform");
        };
        assert_eq!(platform.display_name, "usher");
        assert!(platform.hide && !config.dry_run);
        assert_eq!(config.rooms[0].platform_name(), DEFAULT_PLATFORM);
        assert_eq!(config.rooms[0].rules[1].params["max"], 120);
        assert_eq!(config.http.listen, "127.0.0.1:9750".parse().unwrap());
        assert_eq!(config.rules_dir, path.parent().unwrap().join("rules"));
        assert_eq!(
            config.audit_log,
            Some(path.parent().unwrap().join("audit.jsonl"))
        );
        assert_eq!(
            config.state_dir(),
            Some(path.parent().unwrap().join("usher-state")),
            "next to the audit log"
        );
        assert!(config.cluster.is_none());
    }

    #[test]
    fn state_dir_is_taken_relative_to_the_file_and_off_without_an_audit_log() {
        let path = write("state.yaml", &format!("{GOOD}state_dir: kept\n"));
        let config = Config::load(&path).unwrap();
        assert_eq!(
            config.state_dir(),
            Some(path.parent().unwrap().join("kept"))
        );
        let path = write(
            "stateless.yaml",
            &GOOD.replace("audit_log: audit.jsonl\n", ""),
        );
        assert_eq!(Config::load(&path).unwrap().state_dir(), None);
    }

    #[test]
    fn a_bad_cluster_is_refused_where_it_is_written() {
        let cluster = "cluster:\n  etcd: [http://127.0.0.1:2379]\n  node: a\n  lease_ttl: 2s\n";
        let path = write("cluster.yaml", &format!("{GOOD}{cluster}"));
        let config = Config::load(&path).unwrap();
        assert_eq!(config.cluster.unwrap().lease().as_secs(), 2);
        let cases = [
            (
                "lease_ttl: 2s",
                "lease_ttl: 1h",
                "lease_ttl:",
                "lease_ttl must be between 2s and 300s",
            ),
            (
                "http://127.0.0.1:2379",
                "etcd.example:2379",
                "etcd:",
                "is not an http:// URL",
            ),
        ];
        for (from, to, needle, message) in cases {
            let text = format!("{GOOD}{}", cluster.replace(from, to));
            let path = write("bad-cluster.yaml", &text);
            let err = Config::load(&path).unwrap_err().to_string();
            let line = text.lines().position(|l| l.contains(needle)).unwrap() + 1;
            assert!(
                err.contains(&format!("bad-cluster.yaml:{line}:3:")),
                "{err}"
            );
            assert!(err.contains(message), "{err}");
        }
    }

    #[test]
    fn unknown_fields_are_errors_with_a_position() {
        let path = write("typo.yaml", &GOOD.replace("audit_log", "audit_lgo"));
        let err = Config::load(&path).unwrap_err().to_string();
        assert!(err.contains("typo.yaml:9:1:"), "{err}");
        assert!(err.contains("unknown field `audit_lgo`"), "{err}");
    }

    #[test]
    fn book_ahead_needs_a_timetable_and_a_platform_that_books() {
        let without = GOOD.replace("    rules:\n", "    book_ahead: 7d\n    rules:\n");
        let err = Config::load(&write("book1.yaml", &without))
            .unwrap_err()
            .to_string();
        assert!(err.contains("book1.yaml:6:"), "{err}");
        assert!(err.contains("give the room a `timetable`"), "{err}");
        let on_vmr = GOOD.replace(
            "    rules:\n",
            "    timetable: t.ics\n    book_ahead: 7d\n    rules:\n",
        );
        let err = Config::load(&write("book2.yaml", &on_vmr))
            .unwrap_err()
            .to_string();
        assert!(err.contains("book2.yaml:7:"), "{err}");
        assert!(err.contains("cannot"), "{err}");
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
            err.contains("no_node.yaml:1:1: platform `default`: give the meeting node"),
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
    fn rooms_take_a_timetable_beside_the_config_and_a_zone() {
        let text = GOOD.replace(
            "    rules:\n",
            "    timetable: hall-a.ics\n    zone: Europe/Berlin\n    rules:\n",
        );
        let path = write("timetable.yaml", &text);
        let config = Config::load(&path).unwrap();
        let schedule = config.rooms[0].schedule();
        assert_eq!(schedule.zone().name(), "Europe/Berlin");
        assert_eq!(
            schedule.timetable.map(|t| t.source),
            Some(crate::timetable::Source::File(
                path.parent().unwrap().join("hall-a.ics")
            ))
        );
        let bad = text.replace("Europe/Berlin", "Europe/Atlantis");
        let err = Config::load(&write("badzone.yaml", &bad))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("badzone.yaml:4:5: rooms[0]: \"Europe/Atlantis\" is not a time zone"),
            "{err}"
        );
    }

    #[test]
    fn pins_come_from_the_environment_and_never_show() {
        let config = Config::load(&write("pin.yaml", GOOD)).unwrap();
        let room = &config.rooms[0];
        assert_eq!(format!("{:?}", room.pin), "Some(${USHER_TEST_PIN_A})");
        let err = room.resolve_pin().unwrap_err().to_string();
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
        let path = write("nopin.yaml", &missing);
        let config = Config::load(&path).unwrap();
        let err = config.resolve_pins(&path).unwrap_err().to_string();
        assert!(
            err.contains("nopin.yaml:5:5: room `hall-a@example.com`: cannot read `pin_file` /nonexistent/pin: no such file"),
            "{err}"
        );
    }

    const TWO: &str = "platforms:\n  campus: { kind: vmr, url: https://node.example.com }\n  east: { kind: vmr, check_join: { api_server: https://api.example.com } }\nrooms:\n  - alias: hall-a\n    platform: campus\n  - alias: hall-b\n    platform: east\n";

    #[test]
    fn named_platforms_and_rooms_on_them() {
        let config = Config::load(&write("two.yaml", TWO)).unwrap();
        assert_eq!(config.platforms.len(), 2);
        assert_eq!(config.room(Some("hall-b")).unwrap().platform_name(), "east");
        let err = config.room(None).unwrap_err().to_string();
        assert!(err.contains("hall-a, hall-b"), "{err}");
        let err = config.room(Some("hall-z")).unwrap_err().to_string();
        assert!(err.contains("no room `hall-z`"), "{err}");
    }

    #[test]
    fn a_room_must_name_an_existing_platform_when_there_are_several() {
        let unnamed = TWO.replace("    platform: east\n", "");
        let err = Config::load(&write("unnamed.yaml", &unnamed))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("unnamed.yaml:7:12: rooms[1]: say which platform room `hall-b` is on"),
            "{err}"
        );
        let unknown = TWO.replace("platform: east", "platform: west");
        let err = Config::load(&write("unknown.yaml", &unknown))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(
                "unknown.yaml:8:5: rooms[1]: no platform `west`; the platforms are: campus, east"
            ),
            "{err}"
        );
        let both = format!("platform:\n  url: https://n.example.com\n{TWO}");
        let err = Config::load(&write("both.yaml", &both))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("both.yaml:1:1: give either `platform:`"),
            "{err}"
        );
        let bad_kind = TWO.replace("kind: vmr, url", "kind: webex, url");
        let err = Config::load(&write("kind.yaml", &bad_kind))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("kind.yaml:2:") && err.contains("webex"),
            "{err}"
        );
    }

    #[test]
    fn limits_that_switch_the_sandbox_off_are_refused() {
        for (limits, field) in [
            ("limits: { operations: 0 }", "limits.operations"),
            ("limits: { deadline: 0s }", "limits.deadline"),
            ("limits: { deadline: 1h }", "limits.deadline"),
            (
                "limits: { failures_before_disable: 0 }",
                "limits.failures_before_disable",
            ),
            ("limits: { intents: 0 }", "limits.intents"),
            ("limits: { intents: 100000 }", "limits.intents"),
        ] {
            let text = format!("{GOOD}{limits}\n");
            let err = Config::load(&write("limits.yaml", &text))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("limits.yaml:10:") && err.contains(field),
                "{limits}: {err}"
            );
        }
    }

    #[test]
    fn secrets_must_be_text_and_are_never_echoed() {
        for pin in ["1e3", "0x1F", "{ x: 1 }", "[1, 2]"] {
            let text = GOOD.replace("${USHER_TEST_PIN_A}", pin);
            let err = Config::load(&write("pin_kind.yaml", &text))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("pin_kind.yaml:5:") && err.contains("a secret must be text"),
                "{pin}: {err}"
            );
            let message = err.split_once("rooms[0].pin:").map_or("", |(_, m)| m);
            assert!(
                !message.contains("1000") && !message.contains("31"),
                "{err}"
            );
        }
    }

    #[test]
    fn profiles_come_first_and_discovery_names_real_profiles_and_platforms() {
        let text = format!(
            "{TWO}profiles:\n  lecture: [auto_mute_guests]\n  seminar:\n    rules: [lock_when_full]\ndiscover:\n  - {{ platform: east, match: \"Lecture *\", profile: lecture }}\n"
        )
        .replace(
            "    platform: campus\n",
            "    platform: campus\n    profile: seminar\n    rules: [chat_commands]\n",
        );
        let config = Config::load(&write("profiles.yaml", &text)).unwrap();
        let rules: Vec<&str> = config.rooms[0]
            .rules
            .iter()
            .map(|binding| binding.rule.as_str())
            .collect();
        assert_eq!(rules, ["lock_when_full", "chat_commands"]);
        assert!(config.discover[0].matches("east", "lecture 101: Physics", "r-1"));
        assert!(!config.discover[0].matches("campus", "Lecture 101", "r-1"));
        let unknown = text.replace("profile: lecture }", "profile: lectures }");
        let err = Config::load(&write("profiles.yaml", &unknown))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("discover[0]: no profile `lectures`; the profiles are: lecture, seminar"),
            "{err}"
        );
        let only_discovery = "platforms:\n  east: { kind: vmr, url: https://n.example.com }\nprofiles:\n  lecture: [auto_mute_guests]\ndiscover:\n  - { platform: east, match: \"*\", profile: lecture }\n";
        assert!(Config::load(&write("discover_only.yaml", only_discovery)).is_ok());
    }

    #[test]
    fn a_missing_rules_dir_is_named_with_its_place() {
        let text = format!("{GOOD}rules_dir: nowhere\n");
        let err = Config::load(&write("norules.yaml", &text))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("norules.yaml:10:1: the rules directory"),
            "{err}"
        );
    }
}
