//! What the daemon knows about itself: per-room status and counters.
//!
//! Each room task owns one [`RoomStatus`] and updates it as it works; nothing
//! on the hot path is shared between rooms. `/healthz`, `/status` and
//! `/metrics` read every room's entry when asked and add them up.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use serde::Serialize;

use crate::clock::{format_timestamp, unix_now};
use crate::platform::LinkStats;
use crate::rules::{CallLatency, LATENCY_BUCKETS, RuleStats};

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
}

/// Everything known about one room.
#[derive(Debug, Clone, Serialize)]
pub struct RoomSnapshot {
    /// The platform account the room is on (its name in the config).
    pub platform: String,
    /// Found through `discover:` rather than listed.
    pub discovered: bool,
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
    #[serde(skip)]
    latency: CallLatency,
}

/// How many recent problems each room keeps.
const KEPT_ERRORS: usize = 10;

impl RoomSnapshot {
    fn new(platform: &str, discovered: bool) -> Self {
        RoomSnapshot {
            platform: platform.to_owned(),
            discovered,
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
            latency: CallLatency::default(),
        }
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
            })
            .collect();
        self.latency = latency.clone();
    }

    /// Takes in the session's counters.
    pub fn set_session(&mut self, stats: LinkStats) {
        self.refreshes = stats.refreshes;
        self.renewals = stats.renewals;
    }
}

/// One room's status, shared between its task and the HTTP endpoint.
#[derive(Debug)]
pub struct RoomStatus(Mutex<RoomSnapshot>);

impl RoomStatus {
    /// Changes the status.
    pub fn update<T>(&self, change: impl FnOnce(&mut RoomSnapshot) -> T) -> T {
        change(&mut self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// A copy of the status.
    pub fn snapshot(&self) -> RoomSnapshot {
        self.update(|snapshot| snapshot.clone())
    }
}

/// Every room's status, and daemon-wide counters.
#[derive(Debug, Default)]
pub struct Registry {
    rooms: RwLock<BTreeMap<String, Arc<RoomStatus>>>,
    reloads_ok: AtomicU64,
    reloads_failed: AtomicU64,
    last_reload_error: Mutex<Option<String>>,
    /// Webhook callbacks answered, by platform account and HTTP status.
    webhooks: Mutex<BTreeMap<(String, u16), u64>>,
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
}

impl Registry {
    /// Adds a room on the platform account `platform` and returns its
    /// status.
    pub fn add_room(&self, alias: &str, platform: &str, discovered: bool) -> Arc<RoomStatus> {
        let status = Arc::new(RoomStatus(Mutex::new(RoomSnapshot::new(
            platform, discovered,
        ))));
        self.rooms
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(alias.to_owned(), status.clone());
        status
    }

    /// Forgets a room that is no longer watched.
    pub fn remove_room(&self, alias: &str) {
        self.rooms
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(alias);
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
    }

    fn snapshots(&self) -> BTreeMap<String, RoomSnapshot> {
        self.rooms
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(alias, status)| (alias.clone(), status.snapshot()))
            .collect()
    }

    /// Rooms whose event stream is not up or stalled, with why.
    pub fn unhealthy(&self) -> Vec<(String, String)> {
        self.snapshots()
            .into_iter()
            .filter(|(_, room)| room.health != Health::Ok)
            .map(|(alias, room)| {
                let why = room
                    .reason
                    .unwrap_or_else(|| format!("{:?}", room.phase).to_lowercase());
                (alias, why)
            })
            .collect()
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
        }
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
