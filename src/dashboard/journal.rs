//! What the dashboard remembers of one room: who is there now, and the
//! latest events and commands in order, for the room's page.
//!
//! The room's task feeds it (through [`RoomWatcher`]) as things happen; the
//! page reads it. It keeps the roster as shared participants, so an update
//! costs a map insert, and a bounded timeline of sentences and audit
//! records, so a busy room never grows it.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use crate::model::{Change, Participant, RoomState};
use crate::rules::RuleFailure;
use crate::runtime::activity::describe;
use crate::runtime::audit::{AuditRecord, Outcome};
use crate::runtime::status::{RoomWatcher, keep_name};

/// How many timeline entries a room keeps (some 10 KB in a busy room).
pub const TIMELINE_KEPT: usize = 100;

/// How many commands that shadow and dry-run rules would have sent a room
/// keeps.
pub const HELD_KEPT: usize = 30;

/// One room's journal.
#[derive(Debug, Default)]
pub struct Journal {
    inner: Mutex<Inner>,
}

/// The room at a glance, as of its latest event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Glance {
    /// In the room proper.
    pub in_room: usize,
    /// In the waiting room.
    pub waiting: usize,
    /// Locked.
    pub locked: bool,
    /// Guests muted.
    pub guests_muted: bool,
    /// Who presents.
    pub presenter: Option<String>,
    /// Who speaks.
    pub speaker: Option<String>,
}

#[derive(Debug, Default)]
struct Inner {
    glance: Glance,
    roster: HashMap<String, Arc<Participant>>,
    timeline: VecDeque<Entry>,
    held: VecDeque<Entry>,
    next_seq: u64,
}

/// One line of the timeline.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Its place in the room's timeline, from 1.
    pub seq: u64,
    /// When (UNIX seconds).
    pub at: f64,
    /// What.
    pub what: What,
}

/// What a timeline entry tells.
#[derive(Debug, Clone)]
pub enum What {
    /// Something happened in the room, in words.
    Event(String),
    /// A command's outcome, with the rule and event behind it.
    Command(Box<AuditRecord>),
    /// A rule call failed.
    RuleError {
        /// The rule.
        rule: String,
        /// The handler or timer function.
        handler: String,
        /// Where and why.
        error: String,
    },
}

impl Journal {
    /// Everyone listed in the room now: the waiting first, then hosts, then
    /// guests, each by name.
    pub fn roster(&self) -> Vec<Arc<Participant>> {
        let mut roster: Vec<Arc<Participant>> = self.lock().roster.values().cloned().collect();
        roster.sort_by_cached_key(|p| {
            (
                !p.is_waiting(),
                !p.is_host(),
                p.display_name.to_lowercase(),
                p.uuid.clone(),
            )
        });
        roster
    }

    /// The room at a glance, as of its latest event.
    pub fn glance(&self) -> Glance {
        self.lock().glance.clone()
    }

    /// The timeline entries after `seq`, oldest first.
    pub fn timeline_after(&self, seq: u64) -> Vec<Entry> {
        let inner = self.lock();
        let newer = inner.timeline.iter().rev().take_while(|e| e.seq > seq);
        let mut entries: Vec<Entry> = newer.cloned().collect();
        entries.reverse();
        entries
    }

    /// What shadow and dry-run rules would have sent after `seq`, oldest
    /// first.
    pub fn held_after(&self, seq: u64) -> Vec<Entry> {
        let inner = self.lock();
        let newer = inner.held.iter().rev().take_while(|e| e.seq > seq);
        let mut entries: Vec<Entry> = newer.cloned().collect();
        entries.reverse();
        entries
    }

    /// The latest entry's place, 0 before any.
    pub fn seq(&self) -> u64 {
        self.lock().next_seq
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Inner {
    fn push(&mut self, at: f64, what: What) {
        self.next_seq += 1;
        let held = matches!(&what, What::Command(record) if matches!(record.outcome, Outcome::Shadow | Outcome::DryRun));
        let entry = Entry {
            seq: self.next_seq,
            at,
            what,
        };
        let (list, kept) = if held {
            (&mut self.held, HELD_KEPT)
        } else {
            (&mut self.timeline, TIMELINE_KEPT)
        };
        if list.len() == kept {
            list.pop_front();
        }
        list.push_back(entry);
    }
}

impl RoomWatcher for Journal {
    fn changes(&self, state: &RoomState, changes: &[Change], at: f64) {
        let mut inner = self.lock();
        let (counts, flags) = (state.counts(), state.flags());
        let glance = &mut inner.glance;
        glance.in_room = counts.in_room;
        glance.waiting = counts.waiting;
        glance.locked = flags.locked;
        glance.guests_muted = flags.guests_muted;
        keep_name(&mut glance.presenter, state.presenter());
        keep_name(&mut glance.speaker, state.speaker());
        for change in changes {
            match change {
                Change::Joined(p) => {
                    inner.roster.insert(p.uuid.clone(), p.clone());
                }
                Change::Updated { after, .. } => {
                    if let Some(slot) = inner.roster.get_mut(&after.uuid) {
                        *slot = after.clone();
                    } else {
                        inner.roster.insert(after.uuid.clone(), after.clone());
                    }
                }
                Change::Left(p) => {
                    inner.roster.remove(&p.uuid);
                }
                Change::Synced { .. } => {
                    inner.roster = state
                        .participants()
                        .map(|p| (p.uuid.clone(), p.clone()))
                        .collect();
                }
                _ => {}
            }
            // Voices change many times a second; the page shows the speaker.
            if matches!(change, Change::SpeakerChanged { .. }) {
                continue;
            }
            if let Some(text) = describe(change, state.count()) {
                inner.push(at, What::Event(text));
            }
        }
    }

    fn command(&self, record: &AuditRecord) {
        let at = crate::clock::parse_timestamp(&record.time)
            .unwrap_or_else(|_| crate::clock::unix_now());
        self.lock()
            .push(at, What::Command(Box::new(record.clone())));
    }

    fn rule_failed(&self, failure: &RuleFailure, at: f64) {
        self.lock().push(
            at,
            What::RuleError {
                rule: failure.rule.clone(),
                handler: failure.handler.clone(),
                error: failure.error.to_string(),
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Event, Role, ServiceType};

    fn guest(uuid: &str, name: &str) -> Participant {
        Participant {
            uuid: uuid.into(),
            display_name: name.into(),
            role: Role::Guest,
            service_type: ServiceType::Conference,
            ..Participant::default()
        }
    }

    #[test]
    fn the_roster_and_timeline_follow_the_room() {
        let journal = Journal::default();
        let mut state = RoomState::new();
        let mut feed = |event: Event, at: f64| {
            let changes = state.apply_at(event, at);
            journal.changes(&state, &changes, at);
        };
        feed(Event::Roster(vec![guest("a", "Ada")]), 1.0);
        feed(Event::Participant(guest("b", "Bob")), 2.0);
        let muted = Participant {
            muted: true,
            ..guest("b", "Bob")
        };
        feed(Event::Participant(muted), 3.0);
        let names: Vec<String> = journal
            .roster()
            .iter()
            .map(|p| {
                format!(
                    "{}{}",
                    p.display_name,
                    if p.muted { " (muted)" } else { "" }
                )
            })
            .collect();
        assert_eq!(names, ["Ada", "Bob (muted)"]);
        let told: Vec<String> = journal
            .timeline_after(0)
            .into_iter()
            .map(|entry| match entry.what {
                What::Event(text) => text,
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(
            told,
            [
                "in sync: 1 in the room",
                "Bob (guest) joined",
                "Bob is muted"
            ]
        );
        assert_eq!(journal.timeline_after(2).len(), 1);
        assert_eq!(journal.seq(), 3);
    }

    #[test]
    fn the_timeline_is_bounded() {
        let journal = Journal::default();
        let state = RoomState::new();
        for at in 0..(TIMELINE_KEPT + 20) {
            let change = Change::Synced { initial: false };
            journal.changes(&state, std::slice::from_ref(&change), at as f64);
        }
        let kept = journal.timeline_after(0);
        assert_eq!(kept.len(), TIMELINE_KEPT);
        assert_eq!(kept[0].seq, 21, "the oldest went first");
    }
}
