//! Live updates over Server-Sent Events, pushed when rooms change.
//!
//! A feed sleeps on the registry's [`Pulse`](crate::runtime::status::Pulse)
//! until some room's status changes, then waits out [`MIN_GAP`] since its
//! last message (so a view gets at most a few updates a second, however busy
//! the rooms are), re-renders only what changed and sends the parts that
//! came out different as one JSON message. The page's script swaps them in.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::response::sse::Event;
use serde::Serialize;
use tokio::time::Instant;

use super::journal::{Entry, Journal};
use super::overview::{self, Row};
use super::{Dashboard, room_page};
use crate::clock::unix_now;
use crate::runtime::status::{Listening, Registry, RoomStatus};

/// The least time between two messages to one view.
pub const MIN_GAP: Duration = Duration::from_millis(300);

/// How long a room's view waits before looking again after other rooms
/// changed.
const RECHECK: Duration = Duration::from_millis(50);

/// What changed on the overview.
#[derive(Debug, Default, Serialize)]
pub struct OverviewUpdate {
    /// The line above the table, when it changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// Rows that changed, by element id.
    #[serde(skip_serializing_if = "HashMap::is_empty")]
    pub rows: HashMap<String, String>,
    /// Every row's id in order, when the order changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order: Option<Vec<String>>,
}

/// Follows every room for one overview.
pub struct OverviewFeed {
    registry: Arc<Registry>,
    dashboard: Arc<Dashboard>,
    _listening: Listening,
    generation: u64,
    last_sent: Instant,
    /// Each room's status version and row as last sent.
    sent: HashMap<String, (u64, Row)>,
    order: Vec<String>,
    summary: String,
}

impl OverviewFeed {
    /// A feed that first sends every row.
    pub fn new(registry: Arc<Registry>, dashboard: Arc<Dashboard>) -> OverviewFeed {
        OverviewFeed {
            dashboard,
            _listening: registry.pulse().listen(),
            generation: u64::MAX,
            last_sent: Instant::now() - MIN_GAP,
            sent: HashMap::new(),
            order: Vec::new(),
            summary: String::new(),
            registry,
        }
    }

    /// The next message, when something on the page changed.
    pub async fn next(&mut self) -> Event {
        loop {
            self.generation = self.registry.pulse().changed_since(self.generation).await;
            tokio::time::sleep_until(self.last_sent + MIN_GAP).await;
            self.generation = self.registry.pulse().generation();
            let update = self.update(unix_now());
            if update.summary.is_some() || !update.rows.is_empty() || update.order.is_some() {
                self.last_sent = Instant::now();
                return message("overview", &update);
            }
        }
    }

    /// What changed since the last update, at UNIX time `now`.
    pub fn update(&mut self, now: f64) -> OverviewUpdate {
        let mut update = OverviewUpdate::default();
        let mut rows = Vec::new();
        for (alias, status) in self.registry.rooms() {
            let version = status.version();
            let row = match self.sent.get(&alias) {
                Some((seen, row)) if *seen == version => row.clone(),
                _ => {
                    let people = self.dashboard.glance(&alias);
                    let row = status.read(|room| overview::row(&alias, room, &people, now));
                    let known = self.sent.get(&alias).map(|(_, row)| &row.html);
                    if known != Some(&row.html) {
                        update.rows.insert(row.id.clone(), row.html.clone());
                    }
                    self.sent.insert(alias.clone(), (version, row.clone()));
                    row
                }
            };
            rows.push(row);
        }
        overview::sort(&mut rows);
        let order: Vec<String> = rows.iter().map(|row| row.id.clone()).collect();
        if order != self.order {
            update.order = Some(order.clone());
            self.order = order;
        }
        let summary = overview::summary(&self.registry, &rows);
        if summary != self.summary {
            update.summary = Some(summary.clone());
            self.summary = summary;
        }
        update
    }
}

/// What changed on a room's page.
#[derive(Debug, Default, Serialize)]
pub struct RoomUpdate {
    /// The heading and the room's state, when they changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
    /// The roster's rows, when they changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub roster: Option<String>,
    /// New timeline entries, oldest first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub timeline: Vec<String>,
    /// New commands shadow and dry-run rules would have sent, oldest first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub held: Vec<String>,
    /// The rules' rows, when they changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rules: Option<String>,
}

/// Follows one room for its page.
pub struct RoomFeed {
    registry: Arc<Registry>,
    alias: String,
    status: Arc<RoomStatus>,
    journal: Arc<Journal>,
    _listening: Listening,
    generation: u64,
    last_sent: Instant,
    version: u64,
    seq: u64,
    header: String,
    roster: String,
    rules: String,
}

impl RoomFeed {
    /// A feed for room `alias` whose page shows the timeline up to entry
    /// `after`; it first sends the page's other parts.
    pub fn new(
        registry: Arc<Registry>,
        alias: String,
        status: Arc<RoomStatus>,
        journal: Arc<Journal>,
        after: u64,
    ) -> RoomFeed {
        RoomFeed {
            _listening: registry.pulse().listen(),
            registry,
            alias,
            status,
            journal,
            generation: u64::MAX,
            last_sent: Instant::now() - MIN_GAP,
            version: u64::MAX,
            seq: after,
            header: String::new(),
            roster: String::new(),
            rules: String::new(),
        }
    }

    /// The next message, when something on the page changed.
    pub async fn next(&mut self) -> Event {
        loop {
            self.generation = self.registry.pulse().changed_since(self.generation).await;
            if self.status.version() == self.version && self.journal.seq() == self.seq {
                // Another room changed: look again a little later, so busy
                // rooms elsewhere do not keep this view awake.
                tokio::time::sleep(RECHECK).await;
                continue;
            }
            tokio::time::sleep_until(self.last_sent + MIN_GAP).await;
            self.generation = self.registry.pulse().generation();
            let update = self.update();
            if update.header.is_some()
                || update.roster.is_some()
                || update.rules.is_some()
                || !update.timeline.is_empty()
                || !update.held.is_empty()
            {
                self.last_sent = Instant::now();
                return message("room", &update);
            }
        }
    }

    /// What changed since the last update.
    pub fn update(&mut self) -> RoomUpdate {
        let mut update = RoomUpdate::default();
        self.version = self.status.version();
        let people = self.journal.glance();
        let (header, rules) = self.status.read(|room| {
            (
                room_page::header(&self.alias, room, &people),
                room_page::rules_rows(room),
            )
        });
        let roster = room_page::roster_rows(&self.journal.roster(), people.speaker.as_deref());
        let upto = self.journal.seq();
        let upto_now = |entries: Vec<Entry>| -> Vec<String> {
            entries
                .iter()
                .filter(|entry| entry.seq <= upto)
                .map(room_page::entry)
                .collect()
        };
        update.timeline = upto_now(self.journal.timeline_after(self.seq));
        update.held = upto_now(self.journal.held_after(self.seq));
        self.seq = upto.max(self.seq);
        for (new, old, slot) in [
            (header, &mut self.header, &mut update.header),
            (roster, &mut self.roster, &mut update.roster),
            (rules, &mut self.rules, &mut update.rules),
        ] {
            if new != *old {
                old.clone_from(&new);
                *slot = Some(new);
            }
        }
        update
    }
}

fn message(name: &str, update: &impl Serialize) -> Event {
    let data = serde_json::to_string(update).unwrap_or_else(|_| "{}".to_owned());
    Event::default().event(name).data(data)
}
