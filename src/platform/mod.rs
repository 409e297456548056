//! Conference platforms, and the one boundary the rest of usher sees them
//! through.
//!
//! ```text
//!              ┌ vmr      (REST + server-sent events, session tokens; seed 001)
//!  runtime ◀──▶ Platform ┼ huawei   (REST + meeting WebSocket + enterprise webhook; seeds 000, 002)
//!              ├ tencent  (admin REST with UserSig + room callbacks; seed 003)
//!              ├ agora    (REST + per-room webhooks ordered by sequence; seed 004)
//!              └ …        (one folder per platform)
//! ```
//!
//! A [`Platform`] is one configured account on one platform. It connects
//! rooms, each a [`RoomLink`]: a feed of neutral [`Event`]s (a roster
//! snapshot after every (re)connect, so the room state's diff prevents false
//! joins on every platform) and a way to send neutral [`Command`]s with a
//! typed [`SendOutcome`]. Credentials and their renewal stay inside the
//! adapter. [`Capabilities`] say which commands a platform can carry out;
//! the planner never sends the others.
//!
//! Each adapter is one folder (config, auth, REST calls, feed, decoding);
//! what they share lives here: [`http`] (connection pooling) and
//! [`lenient`] (tolerant payload parsing).

pub mod agora;
pub mod booking;
pub mod http;
pub mod huawei;
pub mod lenient;
pub mod tencent;
pub mod vmr;

pub use huawei::HuaweiConfig;
pub use vmr::VmrConfig;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::model::{Command, Event, Secret};

/// The platforms usher speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PlatformKind {
    /// The in-meeting REST API and event stream of seed 001.
    Vmr,
    /// Huawei Cloud Meeting: REST, the meeting WebSocket and the enterprise
    /// webhook (seeds 000, 002).
    Huawei,
    /// Tencent conference rooms: admin REST and room callbacks (seed 003).
    Tencent,
    /// Agora conference rooms (seed 004): REST and per-room webhooks.
    Agora,
}

impl PlatformKind {
    /// Every platform usher speaks.
    pub const ALL: &[PlatformKind] = &[
        PlatformKind::Vmr,
        PlatformKind::Huawei,
        PlatformKind::Tencent,
        PlatformKind::Agora,
    ];

    /// The name used in the config's `kind:`.
    pub fn as_str(self) -> &'static str {
        match self {
            PlatformKind::Vmr => "vmr",
            PlatformKind::Huawei => "huawei",
            PlatformKind::Tencent => "tencent",
            PlatformKind::Agora => "agora",
        }
    }

    /// The commands the platform can carry out.
    pub fn capabilities(self) -> Capabilities {
        match self {
            PlatformKind::Vmr => vmr::CAPABILITIES,
            PlatformKind::Huawei => huawei::CAPABILITIES,
            PlatformKind::Tencent => tencent::CAPABILITIES,
            PlatformKind::Agora => agora::CAPABILITIES,
        }
    }
}

impl std::str::FromStr for PlatformKind {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        PlatformKind::ALL
            .iter()
            .copied()
            .find(|kind| kind.as_str() == name)
            .ok_or_else(|| {
                let known: Vec<&str> = PlatformKind::ALL.iter().map(|k| k.as_str()).collect();
                format!("no platform `{name}`; usher speaks {}", known.join(", "))
            })
    }
}

impl<'de> Deserialize<'de> for PlatformKind {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for PlatformKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One platform account as the config describes it (`platforms:` entries,
/// tagged by `kind:`).
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PlatformConfig {
    /// `kind: vmr`.
    Vmr(vmr::VmrConfig),
    /// `kind: huawei`.
    Huawei(huawei::HuaweiConfig),
    /// `kind: tencent`.
    Tencent(tencent::TencentConfig),
    /// `kind: agora`.
    Agora(agora::AgoraConfig),
}

impl PlatformConfig {
    /// Which platform this is.
    pub fn kind(&self) -> PlatformKind {
        match self {
            PlatformConfig::Vmr(_) => PlatformKind::Vmr,
            PlatformConfig::Huawei(_) => PlatformKind::Huawei,
            PlatformConfig::Tencent(_) => PlatformKind::Tencent,
            PlatformConfig::Agora(_) => PlatformKind::Agora,
        }
    }

    /// What the platform can do, without connecting to it.
    pub fn capabilities(&self) -> Capabilities {
        self.kind().capabilities()
    }

    /// Takes the files the settings name (secrets' `_file` twins) relative
    /// to `base`, the config file's directory.
    pub fn rebase_files(&mut self, base: &std::path::Path) {
        match self {
            PlatformConfig::Vmr(_) => {}
            PlatformConfig::Huawei(config) => config.rebase_files(base),
            PlatformConfig::Tencent(config) => config.rebase_files(base),
            PlatformConfig::Agora(config) => config.rebase_files(base),
        }
    }

    /// How the platform's per-room streams travel, for the open-files
    /// estimate (platforms with a connection per room count as HTTP/1).
    pub fn stream_protocol(&self) -> http::StreamProtocol {
        match self {
            PlatformConfig::Vmr(config) => config.stream_protocol,
            PlatformConfig::Huawei(_) => http::StreamProtocol::Http1,
            PlatformConfig::Tencent(_) => http::StreamProtocol::Http1,
            // No stream per room: callbacks come in on the shared listener.
            PlatformConfig::Agora(_) => http::StreamProtocol::Http2,
        }
    }

    /// Checks what can be checked without the network (secrets readable,
    /// URLs usable); the message names the field.
    pub fn validate(&self) -> Result<(), String> {
        match self {
            PlatformConfig::Vmr(config) => config.validate(),
            PlatformConfig::Huawei(config) => config.validate(),
            PlatformConfig::Tencent(config) => config.validate(),
            PlatformConfig::Agora(config) => config.validate(),
        }
    }
}

/// One frame of a platform's event stream, as it travels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireFrame {
    /// The frame's name (seed 001: the `event:` field).
    pub name: String,
    /// The frame's payload (seed 001: the `data:` JSON).
    pub data: String,
}

/// A frame that could not be read, naming the frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed `{frame}` frame: {reason}")]
pub struct FrameError {
    /// The frame's name.
    pub frame: String,
    /// What was wrong with it.
    pub reason: String,
}

/// A stream platform's decoding without its network: the exact path a feed
/// takes from frames to events, for benchmarks and tools that hold frames.
pub trait StreamCodec: Send {
    /// Takes one frame in; returns the event it completes, if any (a
    /// roster completes only with the frame that closes its listing).
    fn decode(&mut self, frame: &WireFrame) -> Result<Option<Event>, FrameError>;

    /// The frames a server sends for an event (it may depend on the events
    /// encoded before: a first mention reads differently from a later one).
    fn encode(&mut self, event: &Event) -> Vec<WireFrame>;
}

/// The stream codec of a platform, for those that stream.
pub fn stream_codec(kind: PlatformKind) -> Option<Box<dyn StreamCodec>> {
    match kind {
        PlatformKind::Vmr => Some(Box::new(vmr::feed::VmrCodec::default())),
        PlatformKind::Huawei => None,
        PlatformKind::Tencent => None,
        PlatformKind::Agora => None,
    }
}

/// How adapters pace their reconnects.
#[derive(Debug, Clone, Copy)]
pub struct FeedOptions {
    /// The first delay after a failure.
    pub min_backoff: Duration,
    /// The longest delay between attempts: a platform that comes back
    /// finds its rooms back within this.
    pub max_backoff: Duration,
    /// The longest a room listing sent over several frames may stay open
    /// before the stream is reset and the room listed again.
    pub sync_bound: Duration,
}

impl Default for FeedOptions {
    fn default() -> Self {
        FeedOptions {
            min_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(10),
            sync_bound: Duration::from_secs(30),
        }
    }
}

/// Exponential backoff with jitter, from `min` and never longer than
/// `max`, jitter included. (The jitter adds up to the delay again on top:
/// the delay before it grows to half of `max`, and what the jitter would
/// add past `max` is cut. A cap of 10 s with the jitter on top used to wait
/// up to 20 s.)
#[derive(Debug, Clone, Copy)]
pub struct CappedBackoff {
    min: Duration,
    max: Duration,
}

impl CappedBackoff {
    /// Delays from `min` up to `max`.
    pub fn new(min: Duration, max: Duration) -> Self {
        CappedBackoff {
            min,
            max: max.max(min),
        }
    }

    /// A fresh series of delays, endless.
    pub fn start(&self) -> Delays {
        let inner = backon::ExponentialBuilder::new()
            .with_min_delay(self.min)
            .with_max_delay((self.max / 2).max(self.min))
            .with_jitter()
            .without_max_times();
        Delays {
            inner: backon::BackoffBuilder::build(inner),
            max: self.max,
        }
    }
}

/// The delays of one [`CappedBackoff`] series.
#[derive(Debug)]
pub struct Delays {
    inner: backon::ExponentialBackoff,
    max: Duration,
}

impl Iterator for Delays {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        Some(self.inner.next().unwrap_or(self.max).min(self.max))
    }
}

/// How long a connected room may go without a complete listing, or with
/// nothing decodable, before its health says it is stalled, for platforms
/// that do not say.
pub const DEFAULT_STALL_BOUND: Duration = Duration::from_secs(90);

/// What a platform is built with, beyond its own settings.
#[derive(Debug, Clone)]
pub struct BuildContext {
    /// The account's name in the config (`platforms:` key), for logs and
    /// webhook paths (`/hooks/<name>`).
    pub name: String,
    /// How many rooms it will watch (to size connection pools).
    pub rooms: usize,
    /// How feeds pace their reconnects.
    pub feed: FeedOptions,
    /// Where the platform reports rooms it learns of (meetings started or
    /// rooms created, and their end). Platforms without discovery ignore it.
    pub discoveries: mpsc::UnboundedSender<Discovery>,
    /// usher's public base URL for webhooks (`webhooks.public_url`), for
    /// platforms that are told where to call back.
    pub public_url: Option<url::Url>,
}

impl BuildContext {
    /// A context for `rooms` rooms of the account `name`, with nobody
    /// listening for discoveries and no public URL: for tools and tests
    /// that connect rooms by hand.
    pub fn standalone(name: &str, rooms: usize, feed: FeedOptions) -> Self {
        let (discoveries, _) = mpsc::unbounded_channel();
        BuildContext {
            name: name.to_owned(),
            rooms,
            feed,
            discoveries,
            public_url: None,
        }
    }
}

/// Builds a platform account from its config.
pub fn build(
    config: &PlatformConfig,
    context: BuildContext,
) -> Result<Arc<dyn Platform>, BuildError> {
    match config {
        PlatformConfig::Vmr(config) => Ok(Arc::new(vmr::Vmr::new(config, &context)?)),
        PlatformConfig::Huawei(config) => Ok(Arc::new(huawei::Huawei::new(config, &context)?)),
        PlatformConfig::Tencent(config) => Ok(Arc::new(tencent::Tencent::new(config, &context)?)),
        PlatformConfig::Agora(config) => Ok(Arc::new(agora::Agora::new(config, &context)?)),
    }
}

/// A room a platform learned of by itself.
#[derive(Debug, Clone, PartialEq)]
pub enum Discovery {
    /// A meeting started or a room was created: watch it if a `discover:`
    /// entry of this platform matches its title or id.
    Started(DiscoveredRoom),
    /// The meeting ended or the room was destroyed: stop watching it.
    Ended {
        /// The platform account's name.
        platform: String,
        /// The room's id on the platform.
        alias: String,
    },
}

/// What a platform says of a room it discovered.
#[derive(Debug, Clone, PartialEq)]
pub struct DiscoveredRoom {
    /// The platform account's name.
    pub platform: String,
    /// The room's id on the platform (what a config would list as `alias`).
    pub alias: String,
    /// The meeting's title or room name, matched by `discover:` patterns.
    pub title: String,
    /// The room's secret, when the platform gave it (never logged).
    pub pin: Option<Secret>,
    /// When the room is scheduled, when the platform says.
    pub schedule: Option<Schedule>,
}

/// A room's scheduled time, as its platform knows it (UNIX seconds).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Schedule {
    /// The scheduled start.
    pub start: f64,
    /// The scheduled end, when known.
    pub end: Option<f64>,
}

/// One webhook callback, as it arrived on `POST /hooks/<name>`.
#[derive(Debug, Clone)]
pub struct WebhookRequest {
    /// The raw query string (without `?`), for platforms that sign it.
    pub query: String,
    /// The request headers.
    pub headers: axum::http::HeaderMap,
    /// The raw body (already size-capped), for signature checks.
    pub body: bytes::Bytes,
}

/// What usher answers a webhook callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookReply {
    /// The HTTP status.
    pub status: u16,
    /// The body's content type.
    pub content_type: &'static str,
    /// The body.
    pub body: String,
}

impl WebhookReply {
    /// 401: the callback was not authentic; it has no effect.
    pub fn refused(why: &str) -> Self {
        WebhookReply {
            status: 401,
            content_type: "text/plain",
            body: format!("refused: {why}\n"),
        }
    }

    /// A JSON answer with status 200.
    pub fn json(body: String) -> Self {
        WebhookReply {
            status: 200,
            content_type: "application/json",
            body,
        }
    }
}

/// Why a platform could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The HTTP client could not be built (for example no TLS roots).
    #[error("cannot build the HTTP client: {0}")]
    Http(#[from] reqwest::Error),
    /// A setting cannot be used.
    #[error("{0}")]
    Config(String),
}

/// One room, as the config names it.
#[derive(Debug, Clone)]
pub struct RoomAddress {
    /// The room's id on its platform (seed 001: the conference alias).
    pub alias: String,
    /// The room's secret where the platform has one (seed 001: the host PIN).
    pub pin: Option<Secret>,
}

/// One configured platform account.
pub trait Platform: Send + Sync + 'static {
    /// Which platform this is.
    fn kind(&self) -> PlatformKind;

    /// The commands this platform can carry out.
    fn capabilities(&self) -> Capabilities {
        self.kind().capabilities()
    }

    /// Connects to a room: opens what the platform needs (a session, a
    /// control token). The link keeps its credentials fresh while it is
    /// followed.
    fn connect<'a>(
        &'a self,
        room: &'a RoomAddress,
    ) -> BoxFuture<'a, Result<Arc<dyn RoomLink>, ConnectError>>;

    /// How long a connected room may go without a complete listing after
    /// a (re)connect, or receive only what cannot be decoded, before its
    /// health says it is stalled: the platform's stream idle bound.
    fn stall_bound(&self) -> Duration {
        DEFAULT_STALL_BOUND
    }

    /// Handles one webhook callback addressed to this account
    /// (`POST /hooks/<name>`): verifies it, acts on it, and says what to
    /// answer. A callback that is not authentic must have no effect.
    /// Platforms that take no webhooks answer 404.
    fn webhook(&self, request: WebhookRequest) -> BoxFuture<'_, WebhookReply> {
        let _ = request;
        Box::pin(async {
            WebhookReply {
                status: 404,
                content_type: "text/plain",
                body: "this platform takes no webhooks\n".to_owned(),
            }
        })
    }

    /// The platform's booking calls, where it can book meetings ahead.
    fn booker(&self) -> Option<&dyn booking::Booker> {
        None
    }
}

/// A connected room.
pub trait RoomLink: Send + Sync + 'static {
    /// Follows the room until `cancel` fires or `feed`'s receiver is gone:
    /// keeps credentials fresh, reconnects with backoff, and reports a
    /// [`FeedItem::Connected`] and an [`Event::Roster`] on every (re)connect.
    fn follow(
        self: Arc<Self>,
        feed: mpsc::Sender<Box<FeedItem>>,
        cancel: CancellationToken,
    ) -> BoxFuture<'static, ()>;

    /// Sends one command.
    fn send<'a>(&'a self, command: &'a Command) -> BoxFuture<'a, SendOutcome>;

    /// Counters for `/status` and `/metrics`.
    fn stats(&self) -> LinkStats;

    /// Whether what the feed receives can be decoded, for health. Links
    /// that cannot tell report nothing undecodable.
    fn stream_health(&self) -> StreamHealth {
        StreamHealth::default()
    }

    /// Leaves the room: ends sessions so no ghost participant stays.
    fn close(self: Arc<Self>) -> BoxFuture<'static, ()>;
}

/// What a room's feed reports. Items travel boxed: a channel allocates room
/// for 32 items at once, and a daemon watching thousands of mostly quiet
/// rooms would otherwise hold kilobytes per room for nothing.
#[derive(Debug, Clone, PartialEq)]
#[allow(
    clippy::large_enum_variant,
    reason = "items travel boxed, so the channel holds only pointers"
)]
pub enum FeedItem {
    /// The feed is connected; a roster follows.
    Connected,
    /// An event.
    Event(Event),
    /// The feed is down and will be retried.
    Disconnected {
        /// Why it went down.
        reason: String,
        /// When the next attempt is made.
        retry_in: Duration,
    },
}

/// What became of a command.
#[derive(Debug, Clone, PartialEq)]
pub enum SendOutcome {
    /// The platform carried it out.
    Done,
    /// The platform said no; retrying will not help.
    Refused(String),
    /// A failure that may pass (5xx, rate limit, timeout): retry, not before
    /// `retry_after` when the platform said.
    Retryable {
        /// What happened.
        reason: String,
        /// How long the platform asked us to wait.
        retry_after: Option<Duration>,
    },
    /// The platform cannot do this.
    Unsupported(String),
}

/// Why a room could not be connected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConnectError {
    /// The platform refused our credentials or the room's secret: fix the
    /// config.
    #[error("refused: {0}")]
    Refused(String),
    /// The room does not exist (yet).
    #[error("not found: {0}")]
    NotFound(String),
    /// The platform could not be reached or failed; trying again may work.
    #[error("{0}")]
    Unavailable(String),
    /// The platform asked usher to wait before trying again.
    #[error("{reason} (asked to wait {retry_after:?})")]
    Busy {
        /// What the platform said.
        reason: String,
        /// How long it asked usher to wait.
        retry_after: Duration,
    },
}

impl ConnectError {
    /// How long the platform asked usher to wait, if it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ConnectError::Busy { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }
}

/// Counters describing a link's credentials.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct LinkStats {
    /// Credential refreshes that worked.
    pub refreshes: u64,
    /// Refreshes attempted only after the credential had expired.
    pub late_refreshes: u64,
    /// New sessions started to replace a refused one.
    pub renewals: u64,
}

/// Whether a link's feed can read what its platform sends.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct StreamHealth {
    /// Since when everything received was undecodable (frames skipped,
    /// streams reset); `None` when the last frame was decoded or nothing
    /// undecodable came.
    pub undecodable_since: Option<tokio::time::Instant>,
    /// Frames or streams that could not be decoded, in all.
    pub undecodable: u64,
}

/// The commands a platform can carry out, by verb (see [`Command::verb`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    verbs: &'static [&'static str],
    except: &'static [&'static str],
}

impl Capabilities {
    /// A platform that can carry out these verbs.
    pub const fn new(verbs: &'static [&'static str]) -> Self {
        Capabilities { verbs, except: &[] }
    }

    /// A platform that can carry out every verb usher knows but these.
    pub const fn all_but(except: &'static [&'static str]) -> Self {
        Capabilities {
            verbs: crate::model::command::VERBS,
            except,
        }
    }

    /// True when the platform can carry out this command.
    pub fn supports(&self, command: &Command) -> bool {
        self.supports_verb(command.verb())
    }

    /// True when the platform can carry out commands with this verb.
    pub fn supports_verb(&self, verb: &str) -> bool {
        self.verbs.contains(&verb) && !self.except.contains(&verb)
    }

    /// The verbs the platform can carry out.
    pub fn verbs(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.verbs
            .iter()
            .copied()
            .filter(|verb| !self.except.contains(verb))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_never_waits_past_its_cap_jitter_included() {
        let (min, max) = (Duration::from_millis(250), Duration::from_secs(10));
        let delays: Vec<Duration> = CappedBackoff::new(min, max).start().take(200).collect();
        assert!(delays[0] >= min && delays[0] <= min * 2, "{:?}", delays[0]);
        assert!(delays.iter().all(|d| *d <= max), "{delays:?}");
        assert!(
            delays[20..].iter().all(|d| *d >= max / 2),
            "it grows to the cap: {delays:?}"
        );
        let fixed = CappedBackoff::new(min, min).start().take(5);
        assert!(
            fixed.into_iter().all(|d| d == min),
            "min = max: always that"
        );
    }
}
