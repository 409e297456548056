//! What the daemon knows about itself: per-room status and counters.
//!
//! Each room task owns one [`RoomStatus`] and updates it as it works; nothing
//! on the hot path is shared between rooms. `/healthz`, `/status` and
//! `/metrics` read every room's entry when asked and add them up.
//!
//! A room also tells its [`RoomWatcher`]s (the dashboard's journal, the
//! end-of-lecture report) what changed and which commands went out, and
//! every update is signalled through the registry's [`Pulse`], so live views
//! wake when something happens instead of polling.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use serde::Serialize;
use tokio::sync::Notify;

use super::audit::AuditRecord;
use crate::clock::{Zone, format_timestamp, unix_now};
use crate::model::{Change, Participant, RoomState};
use crate::platform::LinkStats;
use crate::report::zone::ZoneTimes;
use crate::rules::{CallLatency, LATENCY_BUCKETS, RuleFailure, RuleStats};
use crate::timetable::Session;

/// Where a room's connection stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Opening a session.
    Connecting,
    /// The event stream is up.
    Connected,
    /// The event stream dropped and is being reconnected.
    Reconnecting,
    /// The room task failed and will be restarted.
    Failed,
    /// Shut down.
    Stopped,
}

/// Whether a room is moderated: its stream up and telling usher what
/// happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    /// Connected and in sync.
    Ok,
    /// Connected, but no complete listing or nothing decodable for longer
    /// than the platform's bound; `reason` says which.
    Stalled,
    /// Not connected; `phase` and `reason` say why.
    Down,
}

/// One rule's counters in a room.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleStatus {
    /// The rule.
    pub name: String,
    /// Calls made.
    pub calls: u64,
    /// Calls that failed.
    pub errors: u64,
    /// Disabled after repeated failures.
    pub disabled: bool,
    /// The latest failure, with when it happened.
    pub last_error: Option<String>,
}

/// The latest command a room sent (or would have sent).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LastCommand {
    /// When its outcome was known (RFC 3339).
    pub time: String,
    /// The rule that asked.
    pub rule: String,
    /// The command as people read it (`mute Bob`).
    pub text: String,
    /// What became of it (`ok`, `failed`, `shadow`, …).
    pub outcome: &'static str,
}

/// The timetable session under way in a room.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SessionNow {
    /// What it is called.
    pub title: String,
    /// When it started (RFC 3339 in the room's zone).
    pub start: String,
    /// When it ends.
    pub end: String,
}

/// Everything known about one room.
#[derive(Debug, Clone, Serialize)]
pub struct RoomSnapshot {
    /// The platform account the room is on (its name in the config).
    pub platform: String,
    /// Found through `discover:` rather than listed.
    pub discovered: bool,
    /// The kind of platform (`vmr`, …); empty until the room's task starts.
    pub platform_kind: &'static str,
    /// Where the connection stands.
    pub phase: Phase,
    /// Since when (RFC 3339).
    pub since: String,
    /// Why it is not connected, or why it is stalled.
    pub reason: Option<String>,
    /// Whether the room is moderated.
    pub health: Health,
    #[serde(skip)]
    stall: Option<String>,
    /// Listed participants (waiting ones included).
    pub participants: usize,
    /// In the room proper.
    pub in_room: usize,
    /// In the waiting room.
    pub waiting: usize,
    /// Locked.
    pub locked: bool,
    /// Guests muted.
    pub guests_muted: bool,
    /// The rules running here.
    pub rules: Vec<RuleStatus>,
    /// Events received, by type.
    pub events: BTreeMap<&'static str, u64>,
    /// Commands by verb, then outcome.
    pub commands: BTreeMap<String, BTreeMap<String, u64>>,
    /// Event-stream reconnects.
    pub reconnects: u64,
    /// Token refreshes and session renewals.
    pub refreshes: u64,
    /// New sessions started after a refusal.
    pub renewals: u64,
    /// The latest problems, newest last.
    pub last_errors: Vec<String>,
    /// Who is presenting (display name).
    pub presenter: Option<String>,
    /// Who is speaking (display name).
    pub speaker: Option<String>,
    /// The timetable session under way, if the room follows a timetable.
    pub timetable_session: Option<SessionNow>,
    /// The latest command and the rule behind it.
    pub last_command: Option<LastCommand>,
    /// Why the room's commands are held back, while an operator has paused
    /// its rules (who, and since when).
    pub paused: Option<String>,
    #[serde(skip)]
    latency: CallLatency,
    /// Each rule's latest failure: when (UNIX seconds), and what.
    #[serde(skip)]
    rule_errors: BTreeMap<String, (f64, String)>,
}

/// How many recent problems each room keeps.
const KEPT_ERRORS: usize = 10;

impl RoomSnapshot {
    fn new(platform: &str, discovered: bool) -> Self {
        RoomSnapshot {
            platform: platform.to_owned(),
            discovered,
            platform_kind: "",
            phase: Phase::Connecting,
            since: format_timestamp(unix_now()),
            reason: None,
            health: Health::Down,
            stall: None,
            participants: 0,
            in_room: 0,
            waiting: 0,
            locked: false,
            guests_muted: false,
            rules: Vec::new(),
            events: BTreeMap::new(),
            commands: BTreeMap::new(),
            reconnects: 0,
            refreshes: 0,
            renewals: 0,
            last_errors: Vec::new(),
            presenter: None,
            speaker: None,
            timetable_session: None,
            last_command: None,
            paused: None,
            latency: CallLatency::default(),
            rule_errors: BTreeMap::new(),
        }
    }

    /// Takes in what the room looks like now: counts, flags, who presents
    /// and who speaks.
    pub fn take_in(&mut self, state: &RoomState) {
        let counts = state.counts();
        let flags = state.flags();
        self.participants = state.len();
        self.in_room = counts.in_room;
        self.waiting = counts.waiting;
        self.locked = flags.locked;
        self.guests_muted = flags.guests_muted;
        keep_name(&mut self.presenter, state.presenter());
        keep_name(&mut self.speaker, state.speaker());
    }

    /// How much is wrong at UNIX time `now`, for listing rooms with trouble
    /// first: 2 when the room is not connected; 1 when a rule is disabled,
    /// a rule failed in the last [`RECENT_TROUBLE`] seconds or the latest
    /// command failed or was held back; else 0.
    pub fn trouble(&self, now: f64) -> u8 {
        if !matches!(self.phase, Phase::Connected) {
            return 2;
        }
        let disabled = self.rules.iter().any(|rule| rule.disabled);
        let failing = self
            .rule_errors
            .values()
            .any(|(at, _)| now - at < RECENT_TROUBLE);
        let command = self
            .last_command
            .as_ref()
            .is_some_and(|last| matches!(last.outcome, "failed" | "blocked"));
        u8::from(disabled || failing || command)
    }

    /// Notes a rule's failure.
    fn note_rule_failure(&mut self, failure: &RuleFailure, at: f64) {
        let text = failure.error.to_string();
        let stamped = format!("{} {}: {text}", format_timestamp(at), failure.handler);
        // The counters catch up at the next snapshot; until then, count it here.
        if let Some(rule) = self.rules.iter_mut().find(|rule| rule.name == failure.rule) {
            rule.last_error = Some(stamped.clone());
            rule.errors += 1;
            rule.disabled |= failure.disabled;
        }
        self.rule_errors.insert(failure.rule.clone(), (at, stamped));
        self.note_error(text);
    }

    /// Notes a command's outcome.
    fn note_command(&mut self, record: &AuditRecord) {
        self.count_command(&record.command, record.outcome.as_str());
        self.last_command = Some(LastCommand {
            time: record.time.clone(),
            rule: record.rule.clone(),
            text: record.text.clone(),
            outcome: record.outcome.as_str(),
        });
    }

    /// Moves to `phase`, with the reason when it is not a healthy one.
    pub fn set_phase(&mut self, phase: Phase, reason: Option<String>) {
        if self.phase != phase {
            self.since = format_timestamp(unix_now());
        }
        if phase == Phase::Reconnecting && self.phase == Phase::Connected {
            self.reconnects += 1;
        }
        self.phase = phase;
        self.reason = reason;
        self.judge();
    }

    /// Notes why a connected room is stalled (`None`: it is not).
    pub fn set_stalled(&mut self, why: Option<String>) {
        if self.stall != why {
            self.stall = why;
            self.judge();
        }
    }

    fn judge(&mut self) {
        self.health = match (self.phase, &self.stall) {
            (Phase::Connected, None) => Health::Ok,
            (Phase::Connected, Some(why)) => {
                self.reason = Some(why.clone());
                Health::Stalled
            }
            _ => Health::Down,
        };
        if self.health == Health::Ok {
            self.reason = None;
        }
    }

    /// Notes a problem.
    pub fn note_error(&mut self, error: String) {
        if self.last_errors.len() == KEPT_ERRORS {
            self.last_errors.remove(0);
        }
        self.last_errors
            .push(format!("{} {error}", format_timestamp(unix_now())));
    }

    /// Counts one event.
    pub fn count_event(&mut self, kind: &'static str) {
        *self.events.entry(kind).or_default() += 1;
    }

    /// Counts one command's outcome.
    pub fn count_command(&mut self, verb: &str, outcome: &str) {
        *self
            .commands
            .entry(verb.to_owned())
            .or_default()
            .entry(outcome.to_owned())
            .or_default() += 1;
    }

    /// Takes in the rules' counters.
    pub fn set_rules<'a>(
        &mut self,
        stats: impl Iterator<Item = (&'a str, RuleStats)>,
        latency: &CallLatency,
    ) {
        self.rules = stats
            .map(|(name, stats)| RuleStatus {
                name: name.to_owned(),
                calls: stats.calls,
                errors: stats.errors,
                disabled: stats.disabled,
                last_error: None,
            })
            .collect();
        for rule in &mut self.rules {
            rule.last_error = self
                .rule_errors
                .get(&rule.name)
                .map(|(_, text)| text.clone());
        }
        self.latency = latency.clone();
    }

    /// Takes in the session's counters.
    pub fn set_session(&mut self, stats: LinkStats) {
        self.refreshes = stats.refreshes;
        self.renewals = stats.renewals;
    }
}

/// A rule failing for this long after its latest failure counts as trouble.
pub const RECENT_TROUBLE: f64 = 900.0;

/// Keeps its name when `who` is the same person, else takes theirs.
pub fn keep_name(slot: &mut Option<String>, who: Option<&Arc<Participant>>) {
    match (slot.as_deref(), who) {
        (Some(name), Some(p)) if name == p.display_name => {}
        (None, None) => {}
        _ => *slot = who.map(|p| p.display_name.clone()),
    }
}

/// Follows one room as it happens. Watchers are called on the room's task,
/// in the order things happened, so they must be quick and never block.
pub trait RoomWatcher: Send + Sync + std::fmt::Debug {
    /// An event changed the room (`state` is the room after it) at UNIX
    /// time `at`.
    fn changes(&self, state: &RoomState, changes: &[Change], at: f64);
    /// A command's outcome is known (or it was recorded as not sent).
    fn command(&self, record: &AuditRecord);
    /// A rule call failed at UNIX time `at`.
    fn rule_failed(&self, failure: &RuleFailure, at: f64);
    /// The room's times are in `zone` (told before anything happens).
    fn zone(&self, _zone: &Zone) {}
    /// The timetable session under way changed at UNIX time `at`: `ended`
    /// is over, `started` has begun (`state` is the room now).
    fn timetable(
        &self,
        _state: &RoomState,
        _ended: Option<&Session>,
        _started: Option<&Session>,
        _at: f64,
    ) {
    }
    /// The room is no longer watched (its platform reported it ended).
    fn gone(&self, _at: f64) {}
}

/// Gives every room a [`RoomWatcher`] as the room is added.
pub trait Watching: Send + Sync + std::fmt::Debug {
    /// The watcher for room `alias`.
    fn watch(&self, alias: &str) -> Arc<dyn RoomWatcher>;
}

/// Tells live views that some room's status changed. Cheap when no one
/// listens: one atomic add per update.
#[derive(Debug, Default)]
pub struct Pulse {
    generation: AtomicU64,
    listeners: AtomicUsize,
    notify: Notify,
}

impl Pulse {
    /// How many changes there have been.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    fn beat(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        if self.listeners.load(Ordering::Acquire) > 0 {
            self.notify.notify_waiters();
        }
    }

    /// Starts listening; the pulse wakes listeners until the guard is dropped.
    pub fn listen(self: &Arc<Self>) -> Listening {
        self.listeners.fetch_add(1, Ordering::AcqRel);
        Listening(self.clone())
    }

    /// Waits until the generation is no longer `seen`, and returns it.
    pub async fn changed_since(&self, seen: u64) -> u64 {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let now = self.generation();
            if now != seen {
                return now;
            }
            notified.await;
        }
    }
}

/// A listener of a [`Pulse`]; stops listening when dropped.
#[derive(Debug)]
pub struct Listening(Arc<Pulse>);

impl Drop for Listening {
    fn drop(&mut self) {
        self.0.listeners.fetch_sub(1, Ordering::AcqRel);
    }
}

/// One room's status, shared between its task and the HTTP endpoint.
#[derive(Debug)]
pub struct RoomStatus {
    snapshot: Mutex<RoomSnapshot>,
    /// Updates so far, for live views to tell what changed.
    version: AtomicU64,
    pulse: Arc<Pulse>,
    watchers: Box<[Arc<dyn RoomWatcher>]>,
}

impl RoomStatus {
    /// Changes the status.
    pub fn update<T>(&self, change: impl FnOnce(&mut RoomSnapshot) -> T) -> T {
        let result = change(&mut self.lock());
        self.version.fetch_add(1, Ordering::AcqRel);
        self.pulse.beat();
        result
    }

    /// Reads the status without copying it.
    pub fn read<T>(&self, read: impl FnOnce(&RoomSnapshot) -> T) -> T {
        read(&self.lock())
    }

    /// A copy of the status.
    pub fn snapshot(&self) -> RoomSnapshot {
        self.read(RoomSnapshot::clone)
    }

    /// Why the room's commands are held back, while its rules are paused.
    pub fn paused(&self) -> Option<String> {
        self.read(|status| status.paused.clone())
    }

    /// How many times the status has changed.
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// An event changed the room at UNIX time `at`: tells the watchers and
    /// wakes live views. The status itself takes the room in at the room's
    /// next snapshot, with the rules' counters, so `/status` stays coherent.
    pub fn observe(&self, state: &RoomState, changes: &[Change], at: f64) {
        for watcher in &self.watchers {
            watcher.changes(state, changes, at);
        }
        self.version.fetch_add(1, Ordering::AcqRel);
        self.pulse.beat();
    }

    /// A command's outcome is known: counts it and tells the watchers.
    pub fn command(&self, record: &AuditRecord) {
        for watcher in &self.watchers {
            watcher.command(record);
        }
        self.update(|status| status.note_command(record));
    }

    /// A rule call failed: notes it for the rule and tells the watchers.
    pub fn rule_failed(&self, failure: &RuleFailure) {
        let at = unix_now();
        for watcher in &self.watchers {
            watcher.rule_failed(failure, at);
        }
        self.update(|status| status.note_rule_failure(failure, at));
    }

    /// The room's times are in `zone`: tells the watchers.
    pub fn set_zone(&self, zone: &Zone) {
        for watcher in &self.watchers {
            watcher.zone(zone);
        }
    }

    /// The timetable session under way changed at `at`: shows the new one
    /// (in `zone`) and tells the watchers.
    pub fn timetable(
        &self,
        state: &RoomState,
        zone: &Zone,
        ended: Option<&Session>,
        started: Option<&Session>,
        at: f64,
    ) {
        for watcher in &self.watchers {
            watcher.timetable(state, ended, started, at);
        }
        let now = started.map(|session| SessionNow {
            title: session.title.clone(),
            start: zone.timestamp(session.start),
            end: zone.timestamp(session.end),
        });
        self.update(|status| status.timetable_session = now);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, RoomSnapshot> {
        self.snapshot.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Every room's status, and daemon-wide counters.
#[derive(Debug, Default)]
pub struct Registry {
    rooms: RwLock<BTreeMap<String, Arc<RoomStatus>>>,
    reloads_ok: AtomicU64,
    reloads_failed: AtomicU64,
    last_reload_error: Mutex<Option<String>>,
    pulse: Arc<Pulse>,
    watching: Vec<Arc<dyn Watching>>,
    /// Webhook callbacks answered, by platform account and HTTP status.
    webhooks: Mutex<BTreeMap<(String, u16), u64>>,
    /// The cluster this instance is in, if any.
    cluster: std::sync::OnceLock<Arc<crate::cluster::Cluster>>,
}

/// The body of `/status`.
#[derive(Debug, Serialize)]
pub struct StatusReport {
    /// usher's version.
    pub version: &'static str,
    /// Rule reloads that worked.
    pub reloads_ok: u64,
    /// Rule reloads refused (the old rules stayed).
    pub reloads_failed: u64,
    /// Why the last reload was refused.
    pub last_reload_error: Option<String>,
    /// Each room, by alias.
    pub rooms: BTreeMap<String, RoomSnapshot>,
    /// In a cluster: this node, and every room's owner.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<crate::cluster::ClusterReport>,
}

impl Registry {
    /// A registry whose rooms are followed by these watchers.
    pub fn watched_by(watching: Vec<Arc<dyn Watching>>) -> Registry {
        Registry {
            watching,
            ..Registry::default()
        }
    }

    /// Adds a room on the platform account `platform` and returns its
    /// status.
    pub fn add_room(&self, alias: &str, platform: &str, discovered: bool) -> Arc<RoomStatus> {
        let status = Arc::new(RoomStatus {
            snapshot: Mutex::new(RoomSnapshot::new(platform, discovered)),
            version: AtomicU64::new(0),
            pulse: self.pulse.clone(),
            watchers: self.watching.iter().map(|w| w.watch(alias)).collect(),
        });
        self.pulse.beat();
        self.rooms
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(alias.to_owned(), status.clone());
        status
    }

    /// Forgets a room that is no longer watched, and tells its watchers.
    pub fn remove_room(&self, alias: &str) {
        let removed = self
            .rooms
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(alias);
        if let Some(status) = removed {
            let at = unix_now();
            for watcher in &status.watchers {
                watcher.gone(at);
            }
        }
        self.pulse.beat();
    }

    /// True when a room with this alias is watched.
    pub fn has_room(&self, alias: &str) -> bool {
        self.rooms
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(alias)
    }

    /// Counts one webhook callback answered with `status`.
    pub fn count_webhook(&self, platform: &str, status: u16) {
        *self
            .webhooks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry((platform.to_owned(), status))
            .or_default() += 1;
    }

    /// Notes a rule reload and its outcome.
    pub fn note_reload(&self, error: Option<String>) {
        let counter = if error.is_some() {
            &self.reloads_failed
        } else {
            &self.reloads_ok
        };
        counter.fetch_add(1, Ordering::Relaxed);
        *self
            .last_reload_error
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = error;
        self.pulse.beat();
    }

    /// Why the latest rule reload was refused, if it was.
    pub fn last_reload_error(&self) -> Option<String> {
        self.last_reload_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Every room's status, by alias.
    pub fn rooms(&self) -> Vec<(String, Arc<RoomStatus>)> {
        self.rooms
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(alias, status)| (alias.clone(), status.clone()))
            .collect()
    }

    /// One room's status.
    pub fn room(&self, alias: &str) -> Option<Arc<RoomStatus>> {
        self.rooms
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(alias)
            .cloned()
    }

    /// What tells live views that a room changed.
    pub fn pulse(&self) -> &Arc<Pulse> {
        &self.pulse
    }

    fn snapshots(&self) -> BTreeMap<String, RoomSnapshot> {
        self.rooms
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(alias, status)| (alias.clone(), status.snapshot()))
            .collect()
    }

    /// Rooms whose event stream is not up or stalled, with why; in a
    /// cluster, also the lease when it is not known to be alive.
    pub fn unhealthy(&self) -> Vec<(String, String)> {
        let mut down: Vec<(String, String)> = self
            .snapshots()
            .into_iter()
            .filter(|(_, room)| room.health != Health::Ok)
            .map(|(alias, room)| {
                let why = room
                    .reason
                    .unwrap_or_else(|| format!("{:?}", room.phase).to_lowercase());
                (alias, why)
            })
            .collect();
        if let Some(cluster) = self.cluster.get().filter(|cluster| !cluster.lease_alive()) {
            down.push((
                format!("cluster node {}", cluster.node()),
                "its etcd lease is not known to be alive: it acts in no room".to_owned(),
            ));
        }
        down
    }

    /// The body of `/status`.
    pub fn report(&self) -> StatusReport {
        StatusReport {
            version: env!("CARGO_PKG_VERSION"),
            reloads_ok: self.reloads_ok.load(Ordering::Relaxed),
            reloads_failed: self.reloads_failed.load(Ordering::Relaxed),
            last_reload_error: self
                .last_reload_error
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
            rooms: self.snapshots(),
            cluster: self.cluster.get().map(|cluster| cluster.report()),
        }
    }

    /// Shows the cluster in `/status` and `/metrics`.
    pub fn set_cluster(&self, cluster: Arc<crate::cluster::Cluster>) {
        let _ = self.cluster.set(cluster);
    }

    /// The body of `/metrics`, in the Prometheus text format.
    pub fn metrics(&self) -> String {
        let rooms = self.snapshots();
        let mut events: BTreeMap<&str, u64> = BTreeMap::new();
        let mut rule_calls: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
        let mut commands: BTreeMap<(&str, &str), u64> = BTreeMap::new();
        let mut latency = CallLatency::default();
        let (mut reconnects, mut refreshes, mut renewals, mut connected) = (0, 0, 0, 0);
        let mut stalled = 0;
        for room in rooms.values() {
            for (name, count) in &room.events {
                *events.entry(name).or_default() += count;
            }
            for rule in &room.rules {
                let entry = rule_calls.entry(&rule.name).or_default();
                entry.0 += rule.calls;
                entry.1 += rule.errors;
            }
            for (verb, outcomes) in &room.commands {
                for (outcome, count) in outcomes {
                    *commands.entry((verb, outcome)).or_default() += count;
                }
            }
            latency.merge(&room.latency);
            reconnects += room.reconnects;
            refreshes += room.refreshes;
            renewals += room.renewals;
            connected += u64::from(room.phase == Phase::Connected);
            stalled += u64::from(room.health == Health::Stalled);
        }
        let mut out = String::new();
        let section = |out: &mut String, name: &str, kind: &str, help: &str, lines: String| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            out.push_str(&lines);
        };
        let lines = events
            .iter()
            .map(|(name, count)| {
                format!("usher_events_total{{type=\"{}\"}} {count}\n", escape(name))
            })
            .collect();
        section(
            &mut out,
            "usher_events_total",
            "counter",
            "Platform events received, by type.",
            lines,
        );
        let lines = rule_calls
            .iter()
            .map(|(rule, (calls, _))| {
                format!(
                    "usher_rule_calls_total{{rule=\"{}\"}} {calls}\n",
                    escape(rule)
                )
            })
            .collect();
        section(
            &mut out,
            "usher_rule_calls_total",
            "counter",
            "Rule handler and timer calls.",
            lines,
        );
        let lines = rule_calls
            .iter()
            .map(|(rule, (_, errors))| {
                format!(
                    "usher_rule_errors_total{{rule=\"{}\"}} {errors}\n",
                    escape(rule)
                )
            })
            .collect();
        section(
            &mut out,
            "usher_rule_errors_total",
            "counter",
            "Rule calls that failed.",
            lines,
        );
        let mut lines = String::new();
        let mut cumulative = 0;
        for (bound, count) in LATENCY_BUCKETS.iter().zip(latency.buckets) {
            cumulative += count;
            let _ = writeln!(
                lines,
                "usher_rule_eval_seconds_bucket{{le=\"{bound}\"}} {cumulative}"
            );
        }
        let _ = writeln!(
            lines,
            "usher_rule_eval_seconds_bucket{{le=\"+Inf\"}} {}",
            latency.count
        );
        let _ = writeln!(lines, "usher_rule_eval_seconds_sum {}", latency.sum);
        let _ = writeln!(lines, "usher_rule_eval_seconds_count {}", latency.count);
        section(
            &mut out,
            "usher_rule_eval_seconds",
            "histogram",
            "Time spent in one rule call.",
            lines,
        );
        let lines = commands
            .iter()
            .map(|((verb, outcome), count)| {
                format!(
                    "usher_commands_total{{command=\"{}\",outcome=\"{}\"}} {count}\n",
                    escape(verb),
                    escape(outcome)
                )
            })
            .collect();
        section(
            &mut out,
            "usher_commands_total",
            "counter",
            "Commands by kind and outcome.",
            lines,
        );
        let lines = self
            .webhooks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|((platform, status), count)| {
                format!(
                    "usher_webhooks_total{{platform=\"{}\",status=\"{status}\"}} {count}\n",
                    escape(platform)
                )
            })
            .collect();
        section(
            &mut out,
            "usher_webhooks_total",
            "counter",
            "Platform callbacks received, by platform and the HTTP status answered (401: refused).",
            lines,
        );
        let scalars = [
            (
                "usher_reconnects_total",
                "counter",
                "Event-stream reconnects.",
                reconnects,
            ),
            (
                "usher_token_refreshes_total",
                "counter",
                "Token refreshes.",
                refreshes,
            ),
            (
                "usher_session_renewals_total",
                "counter",
                "New sessions after a refused token.",
                renewals,
            ),
            (
                "usher_rooms",
                "gauge",
                "Rooms configured.",
                rooms.len() as u64,
            ),
            (
                "usher_rooms_connected",
                "gauge",
                "Rooms whose event stream is up.",
                connected,
            ),
            (
                "usher_rooms_stalled",
                "gauge",
                "Rooms connected but stalled: no complete listing, or nothing decodable, for too long.",
                stalled,
            ),
            (
                "usher_rule_reloads_total",
                "counter",
                "Rule reloads that worked.",
                self.reloads_ok.load(Ordering::Relaxed),
            ),
            (
                "usher_rule_reload_failures_total",
                "counter",
                "Rule reloads refused.",
                self.reloads_failed.load(Ordering::Relaxed),
            ),
        ];
        for (name, kind, help, value) in scalars {
            section(&mut out, name, kind, help, format!("{name} {value}\n"));
        }
        if let Some(cluster) = self.cluster.get() {
            let report = cluster.report();
            let counters = [
                (
                    "usher_cluster_ownership_changes_total",
                    "Rooms this instance took or gave up.",
                    report.ownership_changes,
                ),
                (
                    "usher_cluster_fencing_refusals_total",
                    "Commands not sent because the room may no longer be this instance's.",
                    report.fencing_refusals,
                ),
                (
                    "usher_cluster_etcd_errors_total",
                    "etcd calls that failed.",
                    report.etcd_errors,
                ),
            ];
            for (name, help, value) in counters {
                section(&mut out, name, "counter", help, format!("{name} {value}\n"));
            }
        }
        out
    }
}

/// Escapes a Prometheus label value.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_add_up_every_room() {
        let registry = Registry::default();
        for alias in ["a", "b"] {
            let room = registry.add_room(alias, "default", false);
            room.update(|status| {
                status.set_phase(Phase::Connected, None);
                status.count_event("participant_create");
                status.count_command("mute", "ok");
                let mut latency = CallLatency::default();
                latency.observe(std::time::Duration::from_micros(30));
                status.set_rules(
                    [(
                        "auto_mute_guests",
                        RuleStats {
                            calls: 2,
                            errors: 1,
                            ..RuleStats::default()
                        },
                    )]
                    .into_iter(),
                    &latency,
                );
            });
        }
        registry.note_reload(Some("rules/x.rhai:1:1: oops".into()));
        let text = registry.metrics();
        for line in [
            "usher_events_total{type=\"participant_create\"} 2",
            "usher_rule_calls_total{rule=\"auto_mute_guests\"} 4",
            "usher_rule_errors_total{rule=\"auto_mute_guests\"} 2",
            "usher_rule_eval_seconds_bucket{le=\"0.00005\"} 2",
            "usher_rule_eval_seconds_bucket{le=\"+Inf\"} 2",
            "usher_commands_total{command=\"mute\",outcome=\"ok\"} 2",
            "usher_rooms_connected 2",
            "usher_rule_reload_failures_total 1",
            "# TYPE usher_rule_eval_seconds histogram",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
    }

    #[test]
    fn health_names_the_rooms_that_are_down() {
        let registry = Registry::default();
        registry
            .add_room("up", "default", false)
            .update(|s| s.set_phase(Phase::Connected, None));
        registry
            .add_room("down", "default", false)
            .update(|s| s.set_phase(Phase::Reconnecting, Some("HTTP 502".into())));
        registry.add_room("stuck", "default", false).update(|s| {
            s.set_phase(Phase::Connected, None);
            s.set_stalled(Some("stalled: no complete room listing".into()));
        });
        assert_eq!(
            registry.unhealthy(),
            [
                ("down".to_owned(), "HTTP 502".to_owned()),
                (
                    "stuck".to_owned(),
                    "stalled: no complete room listing".to_owned()
                )
            ]
        );
        let report = registry.report();
        assert_eq!(report.rooms["stuck"].health, Health::Stalled);
        assert_eq!(report.rooms["up"].health, Health::Ok);
        assert!(registry.metrics().contains("usher_rooms_stalled 1\n"));
    }
}
