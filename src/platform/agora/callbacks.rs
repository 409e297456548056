//! Callbacks in: checked, routed to their room, and put back in order.
//!
//! Agora POSTs each room's callbacks at least once and in no particular
//! order; each carries the room's `sequence`, increasing by one per event.
//!
//! - [`Routes`] takes a callback off the shared webhook listener: checks
//!   its signature when a secret is set (a refusal is a 401 and a count,
//!   never an effect), reads its envelope, and hands it to its room's
//!   queue (a full queue answers 503, so Agora sends it again later).
//! - [`Sequencer`] (one per room) drops what it has seen and releases
//!   callbacks in sequence order. One that arrives ahead of a missing one
//!   is held; if the gap is not filled within the hold window, the held
//!   ones are released anyway and the room resyncs from the user list.
//!   Nothing says where a room's numbering stands when usher starts
//!   listening, so the first callbacks wait out the hold window too, are
//!   released in order, and the room resyncs (some may have been lost
//!   between its listing and them). A callback older than
//!   everything seen (from before usher started listening, or given up on
//!   after a gap) is *late*: its chat message is still delivered, and
//!   anything else it says is left to a resync.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::auth::WebhookKey;
use super::inferred::CALLBACK_REPLY;
use super::wire::Callback;
use crate::platform::{WebhookReply, WebhookRequest};

/// How many callbacks wait for their room at most; past this the webhook
/// answers 503 and Agora delivers again later.
pub const QUEUE: usize = 4096;

/// How many given-up or pre-start sequence numbers a room remembers, to
/// tell a late arrival from a duplicate.
const REMEMBERED: usize = 4096;

/// What reaches a room's follower.
#[derive(Debug)]
pub enum Inbound {
    /// A callback for the room.
    Callback(Callback),
    /// usher's mute of this user was carried out.
    Muted {
        /// The user.
        user: String,
    },
}

/// Counters of the webhook endpoint, for `/metrics`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct WebhookStats {
    /// Callbacks handed to a room.
    pub accepted: u64,
    /// Callbacks refused as not authentic (401).
    pub refused: u64,
    /// Authentic callbacks that could not be read (400).
    pub malformed: u64,
    /// Callbacks for rooms usher does not watch (answered 200, ignored).
    pub unrouted: u64,
    /// Callbacks turned away because their room's queue was full (503).
    pub busy: u64,
}

#[derive(Debug, Default)]
struct Counters {
    accepted: AtomicU64,
    refused: AtomicU64,
    malformed: AtomicU64,
    unrouted: AtomicU64,
    busy: AtomicU64,
}

/// Where each watched room's callbacks go.
#[derive(Debug, Default)]
pub struct Routes {
    rooms: Mutex<HashMap<String, Route>>,
    counters: Counters,
}

#[derive(Debug)]
struct Route {
    link: u64,
    queue: mpsc::Sender<Inbound>,
}

impl Routes {
    /// Sends `room`'s callbacks to `queue` from now on (replacing an
    /// earlier link of the same room).
    pub fn add(&self, room: &str, link: u64, queue: mpsc::Sender<Inbound>) {
        self.lock().insert(room.to_owned(), Route { link, queue });
    }

    /// Stops routing `room` to `link` (a newer link of the room keeps its
    /// route).
    pub fn remove(&self, room: &str, link: u64) {
        let mut rooms = self.lock();
        if rooms.get(room).is_some_and(|route| route.link == link) {
            rooms.remove(room);
        }
    }

    /// The counters so far.
    pub fn stats(&self) -> WebhookStats {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        WebhookStats {
            accepted: read(&self.counters.accepted),
            refused: read(&self.counters.refused),
            malformed: read(&self.counters.malformed),
            unrouted: read(&self.counters.unrouted),
            busy: read(&self.counters.busy),
        }
    }

    /// Handles one callback: verifies, reads and routes it, and says what
    /// to answer.
    pub fn handle(&self, key: Option<&WebhookKey>, request: &WebhookRequest) -> WebhookReply {
        if let Some(key) = key {
            if let Err(err) = key.verify(&request.headers, &request.body) {
                self.counters.refused.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %err, "refused an Agora callback that is not authentic");
                return WebhookReply::refused(&err.to_string());
            }
        }
        let callback = match serde_json::from_slice::<Callback>(&request.body) {
            Ok(callback) if !callback.room_uuid.is_empty() && callback.sequence.is_some() => {
                callback
            }
            Ok(_) => return self.malformed("no roomUuid or no sequence"),
            Err(err) => return self.malformed(&err.to_string()),
        };
        let room = callback.room_uuid.clone();
        let queue = self.lock().get(&room).map(|route| route.queue.clone());
        let Some(queue) = queue else {
            self.counters.unrouted.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(room = %room, cmd = callback.cmd, "a callback for a room usher does not watch");
            return WebhookReply::json(CALLBACK_REPLY.to_owned());
        };
        match queue.try_send(Inbound::Callback(callback)) {
            Ok(()) => {
                self.counters.accepted.fetch_add(1, Ordering::Relaxed);
                WebhookReply::json(CALLBACK_REPLY.to_owned())
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.counters.busy.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(room = %room, "a room's callback queue is full; asking Agora to send again");
                WebhookReply {
                    status: 503,
                    content_type: "text/plain",
                    body: "busy; send it again later\n".to_owned(),
                }
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                self.counters.unrouted.fetch_add(1, Ordering::Relaxed);
                WebhookReply::json(CALLBACK_REPLY.to_owned())
            }
        }
    }

    fn malformed(&self, why: &str) -> WebhookReply {
        self.counters.malformed.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(error = %why, "skipping an Agora callback that cannot be read");
        WebhookReply {
            status: 400,
            content_type: "text/plain",
            body: format!("malformed callback: {why}\n"),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Route>> {
        self.rooms.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// What a room's sequencer did with callbacks, for `/status` and tests.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SequenceStats {
    /// Callbacks released in order.
    pub in_order: u64,
    /// Duplicates dropped.
    pub duplicates: u64,
    /// Gaps given up on after the hold window.
    pub gaps: u64,
    /// Callbacks that came after their place was given up (or from before
    /// usher listened).
    pub late: u64,
}

/// What to do with callbacks now.
#[derive(Debug, Default, PartialEq)]
pub struct Released {
    /// Callbacks to apply, in sequence order.
    pub in_order: Vec<Callback>,
    /// Callbacks that arrived after their turn.
    pub late: Vec<Callback>,
}

/// Puts one room's callbacks in order and drops duplicates.
#[derive(Debug)]
pub struct Sequencer {
    hold: Duration,
    /// The first sequence seen; everything in `first..next` is applied or
    /// in `skipped`.
    first: Option<u64>,
    next: u64,
    held: BTreeMap<u64, Callback>,
    due: Option<Instant>,
    /// Sequences given up on in a gap, not (yet) seen.
    skipped: BTreeSet<u64>,
    /// Sequences from before `first` that were seen.
    before_first: BTreeSet<u64>,
    stats: SequenceStats,
}

impl Sequencer {
    /// A sequencer that holds callbacks ahead of a gap for `hold`.
    pub fn new(hold: Duration) -> Self {
        Sequencer {
            hold,
            first: None,
            next: 0,
            held: BTreeMap::new(),
            due: None,
            skipped: BTreeSet::new(),
            before_first: BTreeSet::new(),
            stats: SequenceStats::default(),
        }
    }

    /// The counters so far.
    pub fn stats(&self) -> SequenceStats {
        self.stats
    }

    /// When the callbacks held ahead of a gap must be released.
    pub fn due(&self) -> Option<Instant> {
        self.due
    }

    /// Takes one callback (which has a sequence) in.
    pub fn take(&mut self, callback: Callback, now: Instant) -> Released {
        let mut released = Released::default();
        let Some(sequence) = callback.sequence else {
            return released;
        };
        let Some(first) = self.first else {
            // Nothing says where the numbering stands: the first callbacks
            // wait out the window, so one sent before them but delivered
            // after them still comes first.
            self.hold(sequence, callback, now);
            return released;
        };
        if sequence < first {
            if remember(&mut self.before_first, sequence) {
                self.late(callback, &mut released);
            } else {
                self.stats.duplicates += 1;
            }
        } else if sequence < self.next {
            if self.skipped.remove(&sequence) {
                self.late(callback, &mut released);
            } else {
                self.stats.duplicates += 1;
            }
        } else if sequence == self.next {
            self.accept(callback, &mut released);
            if self.held.is_empty() {
                self.due = None;
            } else {
                // Progress: the next gap gets its own full window.
                self.due = Some(now + self.hold);
            }
        } else {
            self.hold(sequence, callback, now);
        }
        released
    }

    fn hold(&mut self, sequence: u64, callback: Callback, now: Instant) {
        if let std::collections::btree_map::Entry::Vacant(slot) = self.held.entry(sequence) {
            slot.insert(callback);
            self.due.get_or_insert(now + self.hold);
        } else {
            self.stats.duplicates += 1;
        }
    }

    /// The hold window ran out: gives up on the gaps and releases every
    /// held callback in order. The room should resync. The first window
    /// only sets where the numbering starts: callbacks behind a gap in it
    /// get a window of their own.
    pub fn give_up(&mut self, now: Instant) -> Vec<Callback> {
        self.due = None;
        let mut released = Released::default();
        if self.first.is_none() {
            if let Some((&sequence, _)) = self.held.first_key_value() {
                self.first = Some(sequence);
                self.next = sequence;
                self.accept_held(&mut released);
                if !self.held.is_empty() {
                    self.due = Some(now + self.hold);
                }
            }
            return released.in_order;
        }
        while let Some((&sequence, _)) = self.held.first_key_value() {
            for missing in self.next..sequence {
                remember(&mut self.skipped, missing);
            }
            if sequence > self.next {
                self.stats.gaps += 1;
            }
            self.next = sequence;
            self.accept_held(&mut released);
        }
        released.in_order
    }

    /// Applies `callback` (at `next`) and everything held right behind it.
    fn accept(&mut self, callback: Callback, released: &mut Released) {
        self.stats.in_order += 1;
        self.next += 1;
        released.in_order.push(callback);
        self.accept_held(released);
    }

    fn accept_held(&mut self, released: &mut Released) {
        while let Some(callback) = self.held.remove(&self.next) {
            self.stats.in_order += 1;
            self.next += 1;
            released.in_order.push(callback);
        }
    }

    fn late(&mut self, callback: Callback, released: &mut Released) {
        self.stats.late += 1;
        released.late.push(callback);
    }
}

/// Adds `sequence` to a bounded set; false when it was there already.
fn remember(set: &mut BTreeSet<u64>, sequence: u64) -> bool {
    if !set.insert(sequence) {
        return false;
    }
    if set.len() > REMEMBERED {
        set.pop_first();
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cb(sequence: u64) -> Callback {
        Callback {
            room_uuid: "r".into(),
            cmd: 3,
            sequence: Some(sequence),
            ..Callback::default()
        }
    }

    fn order(released: &Released) -> Vec<u64> {
        released
            .in_order
            .iter()
            .filter_map(|c| c.sequence)
            .collect()
    }

    /// A sequencer whose numbering starts at `first`.
    fn started(first: u64, now: Instant) -> Sequencer {
        let mut seq = Sequencer::new(Duration::from_secs(2));
        assert!(
            seq.take(cb(first), now).in_order.is_empty(),
            "the first waits"
        );
        assert_eq!(seq.due(), Some(now + Duration::from_secs(2)));
        let released: Vec<u64> = seq.give_up(now).iter().filter_map(|c| c.sequence).collect();
        assert_eq!(released, [first]);
        assert_eq!(seq.stats().gaps, 0);
        seq
    }

    #[test]
    fn in_order_callbacks_pass_and_duplicates_do_not() {
        let now = Instant::now();
        let mut seq = started(10, now);
        assert_eq!(order(&seq.take(cb(11), now)), [11]);
        assert_eq!(order(&seq.take(cb(11), now)), Vec::<u64>::new());
        assert_eq!(order(&seq.take(cb(10), now)), Vec::<u64>::new());
        assert_eq!(seq.stats().duplicates, 2);
        assert_eq!(seq.due(), None);
    }

    #[test]
    fn the_first_callbacks_wait_so_an_earlier_one_delivered_late_comes_first() {
        let mut seq = Sequencer::new(Duration::from_secs(2));
        let now = Instant::now();
        seq.take(cb(8), now);
        seq.take(cb(7), now);
        seq.take(cb(8), now);
        let released: Vec<u64> = seq.give_up(now).iter().filter_map(|c| c.sequence).collect();
        assert_eq!(released, [7, 8]);
        assert_eq!((seq.stats().gaps, seq.stats().duplicates), (0, 1));
        assert_eq!(order(&seq.take(cb(9), now)), [9]);
    }

    #[test]
    fn a_gap_in_the_first_window_gets_a_window_of_its_own() {
        let mut seq = Sequencer::new(Duration::from_secs(2));
        let now = Instant::now();
        seq.take(cb(1), now);
        seq.take(cb(3), now);
        let later = now + Duration::from_secs(2);
        let released: Vec<u64> = seq
            .give_up(later)
            .iter()
            .filter_map(|c| c.sequence)
            .collect();
        assert_eq!(released, [1]);
        assert_eq!(seq.due(), Some(later + Duration::from_secs(2)));
        assert_eq!(order(&seq.take(cb(2), later)), [2, 3]);
        assert_eq!(seq.stats().gaps, 0);
    }

    #[test]
    fn a_callback_ahead_waits_for_the_one_before() {
        let now = Instant::now();
        let mut seq = started(1, now);
        assert!(seq.take(cb(3), now).in_order.is_empty());
        assert!(seq.take(cb(4), now).in_order.is_empty());
        assert!(
            seq.take(cb(3), now).in_order.is_empty(),
            "held twice is one"
        );
        assert_eq!(seq.due(), Some(now + Duration::from_secs(2)));
        assert_eq!(order(&seq.take(cb(2), now)), [2, 3, 4]);
        assert_eq!(seq.due(), None);
        assert_eq!(seq.stats().duplicates, 1);
    }

    #[test]
    fn a_gap_is_given_up_and_its_late_arrival_is_told_apart() {
        let now = Instant::now();
        let mut seq = started(1, now);
        seq.take(cb(3), now);
        seq.take(cb(6), now);
        let released: Vec<u64> = seq.give_up(now).iter().filter_map(|c| c.sequence).collect();
        assert_eq!(released, [3, 6]);
        assert_eq!(seq.stats().gaps, 2);
        let late = seq.take(cb(2), now);
        assert!(late.in_order.is_empty());
        assert_eq!(late.late.len(), 1);
        assert!(
            seq.take(cb(2), now).late.is_empty(),
            "late once, then a duplicate"
        );
        assert_eq!(order(&seq.take(cb(7), now)), [7]);
    }

    #[test]
    fn callbacks_from_before_the_first_are_late_once() {
        let now = Instant::now();
        let mut seq = started(5, now);
        assert_eq!(seq.take(cb(4), now).late.len(), 1);
        assert!(seq.take(cb(4), now).late.is_empty());
        assert_eq!(seq.stats().late, 1);
    }
}
