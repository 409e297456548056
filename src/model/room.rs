//! The exact picture of one room, kept up to date event by event.
//!
//! [`RoomState::apply`] takes one [`Event`] and returns the [`Change`]s it
//! caused. Two rules keep the picture honest across reconnects, on every
//! platform:
//!
//! - A roster ([`Event::Roster`], sent by the adapter after every (re)connect
//!   and every reconcile) is diffed against what we knew: only new uuids are
//!   joins, only vanished ones are leaves, the rest are updates (and only if
//!   something changed). A reconnect never causes a storm of joins. The very
//!   first roster is a baseline, not news: it reports no joins at all, so
//!   starting usher mid-lecture never treats the whole audience as arriving.
//! - A participant event for an unknown uuid is a join; for a known one, an
//!   update.
//!
//! Adapters leave usher's own participants out of everything they report.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use super::event::{ChatMessage, Event, FlagsUpdate, Layout, Presentation, StageEntry};
use super::participant::Participant;

/// Conference-wide flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RoomFlags {
    /// New guests wait in the waiting room until admitted.
    pub locked: bool,
    /// Guests are muted, including guests who join later.
    pub guests_muted: bool,
    /// The conference has started.
    pub started: bool,
}

/// How many participants are where, kept up to date as the roster changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    /// In the room proper (not waiting, connecting or entering a PIN).
    pub in_room: usize,
    /// Guests in the room proper.
    pub guests: usize,
    /// Hosts in the room proper.
    pub hosts: usize,
    /// In the waiting room.
    pub waiting: usize,
}

impl Counts {
    fn add(&mut self, p: &Participant, sign: isize) {
        let step = |count: &mut usize| *count = count.saturating_add_signed(sign);
        if p.in_room() {
            step(&mut self.in_room);
            if p.is_guest() {
                step(&mut self.guests);
            }
            if p.is_host() {
                step(&mut self.hosts);
            }
        }
        if p.is_waiting() {
            step(&mut self.waiting);
        }
    }
}

/// What one event changed.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// A participant appeared (in any service type, the waiting room included).
    Joined(Arc<Participant>),
    /// A participant left.
    Left(Arc<Participant>),
    /// A participant changed.
    Updated {
        /// As it was.
        before: Arc<Participant>,
        /// As it is now.
        after: Arc<Participant>,
    },
    /// A presentation started (or another participant took it over).
    PresentationStarted {
        /// What the server said.
        presentation: Presentation,
        /// The presenter, when they are in the roster.
        presenter: Option<Arc<Participant>>,
    },
    /// The presentation stopped.
    PresentationStopped {
        /// Who was presenting, when known.
        presenter: Option<Arc<Participant>>,
    },
    /// Conference flags changed.
    RoomUpdated {
        /// As they were.
        before: RoomFlags,
        /// As they are now.
        after: RoomFlags,
    },
    /// The layout changed.
    LayoutChanged {
        /// As it was, if known.
        before: Option<Layout>,
        /// As it is now.
        after: Layout,
    },
    /// The active speaker changed.
    SpeakerChanged {
        /// The previous speaker, if any and still present.
        before: Option<Arc<Participant>>,
        /// The new speaker, if anyone is speaking.
        after: Option<Arc<Participant>>,
    },
    /// Someone sent a chat message.
    Message(ChatMessage),
    /// A roster arrived: the picture is now exactly the platform's.
    Synced {
        /// This was the first sync: the roster was taken as a baseline and
        /// no joins were reported for it.
        initial: bool,
    },
    /// The platform disconnected our own participant.
    Disconnected {
        /// The reason the platform gave.
        reason: String,
    },
}

/// The state of one room.
#[derive(Debug, Clone, Default)]
pub struct RoomState {
    /// Participants in the order we learned of them (key: arrival sequence).
    roster: BTreeMap<u64, Arc<Participant>>,
    counts: Counts,
    /// uuid → arrival sequence.
    index: HashMap<String, u64>,
    next_seq: u64,
    flags: RoomFlags,
    layout: Option<Layout>,
    stage: Vec<StageEntry>,
    presentation: Option<Presentation>,
    presenter_uuid: Option<String>,
    synced: bool,
    /// When each participant present was last heard on the stage.
    heard: HashMap<String, f64>,
    /// The time of the latest event (UNIX seconds), once one is timed.
    clock: f64,
}

impl RoomState {
    /// An empty room.
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies one event that happened at `at` (UNIX seconds) and returns
    /// what it changed, in order. The time is what [`RoomState::heard_at`]
    /// reports for voices that fall silent.
    pub fn apply_at(&mut self, event: Event, at: f64) -> Vec<Change> {
        self.clock = at;
        self.apply(event)
    }

    /// Applies one event as if it happened when the latest timed one did
    /// (see [`RoomState::apply_at`]), and returns what it changed, in order.
    pub fn apply(&mut self, event: Event) -> Vec<Change> {
        let mut changes = Vec::new();
        match event {
            Event::Roster(listing) => self.take_roster(listing, &mut changes),
            Event::Participant(participant) => self.upsert(Arc::new(participant), &mut changes),
            Event::ParticipantLeft { uuid } => {
                if let Some(gone) = self.remove(&uuid) {
                    changes.push(Change::Left(gone));
                }
            }
            Event::PresentationStart(presentation) => {
                let presenter = self.find_presenter(&presentation);
                self.presenter_uuid = presenter.as_ref().map(|p| p.uuid.clone());
                self.presentation = Some(presentation.clone());
                changes.push(Change::PresentationStarted {
                    presentation,
                    presenter,
                });
            }
            Event::PresentationStop => {
                if self.presentation.take().is_some() {
                    let presenter = self.presenter_uuid.take();
                    changes.push(Change::PresentationStopped {
                        presenter: presenter.and_then(|uuid| self.participant(&uuid).cloned()),
                    });
                }
            }
            Event::RoomUpdate(update) => self.update_flags(&update, &mut changes),
            Event::Layout(layout) => {
                if self.layout.as_ref() != Some(&layout) {
                    let before = self.layout.replace(layout.clone());
                    changes.push(Change::LayoutChanged {
                        before,
                        after: layout,
                    });
                }
            }
            Event::Stage(stage) => {
                let heard = std::mem::replace(&mut self.stage, stage);
                self.note_silenced(&heard);
                let voice_before = top_voice(&heard);
                if voice_before != top_voice(&self.stage) {
                    let before = voice_before
                        .and_then(|uuid| self.participant(uuid))
                        .cloned();
                    let after = self.speaker().cloned();
                    if before.as_ref().map(|p| &p.uuid) != after.as_ref().map(|p| &p.uuid) {
                        changes.push(Change::SpeakerChanged { before, after });
                    }
                }
            }
            Event::Message(message) => changes.push(Change::Message(message)),
            Event::Disconnected { reason } => {
                // What usher knew of the meeting is over: the next meeting in
                // this room starts unlocked and not started, and a resync
                // reads the flags the platform still reports.
                self.flags = RoomFlags::default();
                changes.push(Change::Disconnected { reason });
            }
        }
        changes
    }

    fn upsert(&mut self, participant: Arc<Participant>, changes: &mut Vec<Change>) {
        match self.index.get(&participant.uuid) {
            Some(seq) => {
                let slot = self.roster.get_mut(seq).expect("index and roster agree");
                if **slot != *participant {
                    let before = std::mem::replace(slot, participant.clone());
                    self.counts.add(&before, -1);
                    self.counts.add(&participant, 1);
                    changes.push(Change::Updated {
                        before,
                        after: participant,
                    });
                }
            }
            None => {
                self.insert(participant.clone());
                changes.push(Change::Joined(participant));
            }
        }
    }

    fn insert(&mut self, participant: Arc<Participant>) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.counts.add(&participant, 1);
        self.index.insert(participant.uuid.clone(), seq);
        self.roster.insert(seq, participant);
    }

    /// Stamps the voices of the stage before that the stage now shows
    /// silent (or gone) as heard until now. Voices still heard need no
    /// stamp: [`RoomState::heard_at`] reports them heard at the moment.
    fn note_silenced(&mut self, before: &[StageEntry]) {
        let voices = before.iter().filter(|entry| entry.vad > 0);
        for uuid in voices.map(|entry| entry.participant_uuid.as_str()) {
            if self.is_speaking(uuid) || !self.index.contains_key(uuid) {
                continue;
            }
            match self.heard.get_mut(uuid) {
                Some(heard) => *heard = self.clock,
                None => {
                    self.heard.insert(uuid.to_owned(), self.clock);
                }
            }
        }
    }

    fn remove(&mut self, uuid: &str) -> Option<Arc<Participant>> {
        self.heard.remove(uuid);
        let seq = self.index.remove(uuid)?;
        let gone = self.roster.remove(&seq)?;
        self.counts.add(&gone, -1);
        Some(gone)
    }

    fn take_roster(&mut self, listing: Vec<Participant>, changes: &mut Vec<Change>) {
        let mut listing: Vec<Arc<Participant>> = listing.into_iter().map(Arc::new).collect();
        // A platform listing someone twice means the later entry.
        let mut seen = HashSet::new();
        for index in (0..listing.len()).rev() {
            if !seen.insert(listing[index].uuid.clone()) {
                listing.remove(index);
            }
        }
        let listed: HashSet<&str> = listing.iter().map(|p| p.uuid.as_str()).collect();
        let vanished: Vec<String> = self
            .index
            .keys()
            .filter(|uuid| !listed.contains(uuid.as_str()))
            .cloned()
            .collect();
        let mut left: Vec<(u64, Arc<Participant>)> = vanished
            .iter()
            .filter_map(|uuid| {
                let seq = self.index[uuid];
                self.remove(uuid).map(|p| (seq, p))
            })
            .collect();
        left.sort_by_key(|(seq, _)| *seq);
        changes.extend(left.into_iter().map(|(_, p)| Change::Left(p)));
        let initial = !self.synced;
        for participant in listing {
            if initial {
                let mut ignored = Vec::new();
                self.upsert(participant, &mut ignored);
            } else {
                self.upsert(participant, changes);
            }
        }
        self.synced = true;
        changes.push(Change::Synced { initial });
    }

    fn update_flags(&mut self, update: &FlagsUpdate, changes: &mut Vec<Change>) {
        let before = self.flags;
        let after = RoomFlags {
            locked: update.locked.unwrap_or(before.locked),
            guests_muted: update.guests_muted.unwrap_or(before.guests_muted),
            started: update.started.unwrap_or(before.started),
        };
        if after != before {
            self.flags = after;
            changes.push(Change::RoomUpdated { before, after });
        }
    }

    fn find_presenter(&self, presentation: &Presentation) -> Option<Arc<Participant>> {
        if let Some(uuid) = &presentation.presenter_uuid {
            return self.participant(uuid).cloned();
        }
        let by_uri = (!presentation.presenter_uri.is_empty())
            .then(|| {
                self.participants()
                    .find(|p| p.uri == presentation.presenter_uri)
            })
            .flatten();
        by_uri
            .or_else(|| {
                self.participants()
                    .find(|p| p.display_name == presentation.presenter_name)
            })
            .cloned()
    }

    /// Every participant (waiting ones included), in the order they arrived.
    pub fn participants(&self) -> impl Iterator<Item = &Arc<Participant>> {
        self.roster.values()
    }

    /// The participant with this uuid.
    pub fn participant(&self, uuid: &str) -> Option<&Arc<Participant>> {
        self.index.get(uuid).and_then(|seq| self.roster.get(seq))
    }

    /// The first participant, in arrival order, whose display name is `name`
    /// (ignoring case).
    pub fn find(&self, name: &str) -> Option<&Arc<Participant>> {
        self.participants()
            .find(|p| p.display_name.eq_ignore_ascii_case(name))
    }

    /// How many participants are in the room proper (not waiting, connecting
    /// or entering a PIN).
    pub fn count(&self) -> usize {
        self.counts.in_room
    }

    /// How many participants are where.
    pub fn counts(&self) -> Counts {
        self.counts
    }

    /// How many participants are listed at all.
    pub fn len(&self) -> usize {
        self.roster.len()
    }

    /// True when no one is listed.
    pub fn is_empty(&self) -> bool {
        self.roster.is_empty()
    }

    /// Conference flags.
    pub fn flags(&self) -> RoomFlags {
        self.flags
    }

    /// The current layout, once the server has sent one.
    pub fn layout(&self) -> Option<&Layout> {
        self.layout.as_ref()
    }

    /// The stage: recent speakers and their voice activity.
    pub fn stage(&self) -> &[StageEntry] {
        &self.stage
    }

    /// The current presentation, if any.
    pub fn presentation(&self) -> Option<&Presentation> {
        self.presentation.as_ref()
    }

    /// The current presenter, when they are in the roster.
    pub fn presenter(&self) -> Option<&Arc<Participant>> {
        self.presenter_uuid
            .as_deref()
            .and_then(|uuid| self.participant(uuid))
    }

    /// The active speaker: the first place on the stage with voice activity.
    pub fn speaker(&self) -> Option<&Arc<Participant>> {
        top_voice(&self.stage).and_then(|uuid| self.participant(uuid))
    }

    /// True when this participant shows voice activity on the stage now.
    pub fn is_speaking(&self, uuid: &str) -> bool {
        self.stage
            .iter()
            .any(|entry| entry.participant_uuid == uuid && entry.vad > 0)
    }

    /// When this participant was last heard on the stage (UNIX seconds):
    /// `now` while they are heard, 0 if they have not been heard since usher
    /// joined.
    pub fn heard_at(&self, uuid: &str, now: f64) -> f64 {
        if self.is_speaking(uuid) {
            return now;
        }
        self.heard.get(uuid).copied().unwrap_or(0.0)
    }

    /// True once a roster has arrived: the picture is the platform's.
    pub fn is_synced(&self) -> bool {
        self.synced
    }
}

/// The uuid in the first place on `stage` with voice activity.
fn top_voice(stage: &[StageEntry]) -> Option<&str> {
    stage
        .iter()
        .filter(|entry| entry.vad > 0)
        .min_by_key(|entry| entry.stage_index)
        .map(|entry| entry.participant_uuid.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::participant::{Role, ServiceType};

    fn person(uuid: &str, name: &str, role: Role) -> Participant {
        Participant {
            uuid: uuid.into(),
            display_name: name.into(),
            role,
            ..Participant::default()
        }
    }

    fn guest(uuid: &str, name: &str) -> Participant {
        person(uuid, name, Role::Guest)
    }

    fn names(changes: &[Change]) -> Vec<String> {
        changes
            .iter()
            .map(|change| match change {
                Change::Joined(p) => format!("joined {}", p.display_name),
                Change::Left(p) => format!("left {}", p.display_name),
                Change::Updated { after, .. } => format!("updated {}", after.display_name),
                Change::Synced { initial: true } => "synced (initial)".into(),
                Change::Synced { initial: false } => "synced".into(),
                other => format!("{other:?}"),
            })
            .collect()
    }

    fn sync(state: &mut RoomState, listing: &[Participant]) -> Vec<Change> {
        state.apply(Event::Roster(listing.to_vec()))
    }

    #[test]
    fn first_sync_is_a_silent_baseline() {
        let mut state = RoomState::new();
        let changes = sync(&mut state, &[guest("a", "Ann"), guest("b", "Ben")]);
        assert_eq!(names(&changes), ["synced (initial)"]);
        assert_eq!(state.count(), 2);
        assert!(state.is_synced());
    }

    #[test]
    fn joins_before_any_roster_are_still_joins() {
        let mut state = RoomState::new();
        let changes = state.apply(Event::Participant(guest("a", "Ann")));
        assert_eq!(names(&changes), ["joined Ann"]);
        let changes = sync(&mut state, &[guest("a", "Ann"), guest("b", "Ben")]);
        assert_eq!(
            names(&changes),
            ["synced (initial)"],
            "the first roster is a baseline"
        );
    }

    #[test]
    fn resync_reports_only_differences() {
        let mut state = RoomState::new();
        sync(&mut state, &[guest("a", "Ann"), guest("b", "Ben")]);
        let muted_ben = Participant {
            muted: true,
            ..guest("b", "Ben")
        };
        let changes = sync(&mut state, &[muted_ben, guest("c", "Cat")]);
        assert_eq!(
            names(&changes),
            ["left Ann", "updated Ben", "joined Cat", "synced"]
        );
        let ben = state_of(&state, "b");
        let unchanged = sync(&mut state, &[guest("c", "Cat"), ben]);
        assert_eq!(names(&unchanged), ["synced"]);
    }

    fn state_of(state: &RoomState, uuid: &str) -> Participant {
        (**state.participant(uuid).unwrap()).clone()
    }

    #[test]
    fn a_roster_listing_someone_twice_keeps_the_later_entry() {
        let mut state = RoomState::new();
        sync(&mut state, &[guest("a", "Ann")]);
        let renamed = guest("a", "Anne");
        let changes = sync(&mut state, &[guest("a", "Ann"), renamed]);
        assert_eq!(names(&changes), ["updated Anne", "synced"]);
        assert_eq!(state.len(), 1);
    }

    #[test]
    fn an_unknown_uuid_is_a_join_and_a_known_one_an_update() {
        let mut state = RoomState::new();
        let joined = state.apply(Event::Participant(guest("a", "Ann")));
        assert_eq!(names(&joined), ["joined Ann"]);
        let renamed = state.apply(Event::Participant(guest("a", "Anne")));
        assert_eq!(names(&renamed), ["updated Anne"]);
        let same = state.apply(Event::Participant(guest("a", "Anne")));
        assert!(
            same.is_empty(),
            "an update that changes nothing is not a change"
        );
    }

    #[test]
    fn updates_carry_before_and_after() {
        let mut state = RoomState::new();
        state.apply(Event::Participant(guest("a", "Ann")));
        let changes = state.apply(Event::Participant(Participant {
            muted: true,
            ..guest("a", "Ann")
        }));
        match &changes[..] {
            [Change::Updated { before, after }] => {
                assert!(!before.muted);
                assert!(after.muted);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn leave_of_an_unknown_uuid_changes_nothing() {
        let mut state = RoomState::new();
        assert!(
            state
                .apply(Event::ParticipantLeft { uuid: "x".into() })
                .is_empty()
        );
    }

    #[test]
    fn count_excludes_waiting_and_connecting() {
        let mut state = RoomState::new();
        state.apply(Event::Participant(guest("a", "Ann")));
        state.apply(Event::Participant(Participant {
            service_type: ServiceType::WaitingRoom,
            ..guest("b", "Ben")
        }));
        state.apply(Event::Participant(Participant {
            service_type: ServiceType::Connecting,
            ..guest("c", "Cat")
        }));
        assert_eq!(state.count(), 1);
        assert_eq!(state.len(), 3);
    }

    #[test]
    fn counts_follow_every_change() {
        let mut state = RoomState::new();
        let host = person("h", "Ada", Role::Chair);
        let waiting = Participant {
            service_type: ServiceType::WaitingRoom,
            ..guest("w", "Wes")
        };
        sync(&mut state, &[host, guest("a", "Ann"), waiting.clone()]);
        let expect = |state: &RoomState, in_room, guests, hosts, waiting| {
            let counts = state.counts();
            assert_eq!(
                (counts.in_room, counts.guests, counts.hosts, counts.waiting),
                (in_room, guests, hosts, waiting)
            );
            let recount = state.participants().filter(|p| p.in_room()).count();
            assert_eq!(counts.in_room, recount);
        };
        expect(&state, 2, 1, 1, 1);
        state.apply(Event::Participant(Participant {
            service_type: ServiceType::Conference,
            ..waiting
        }));
        expect(&state, 3, 2, 1, 0);
        state.apply(Event::ParticipantLeft { uuid: "a".into() });
        expect(&state, 2, 1, 1, 0);
        sync(&mut state, &[guest("b", "Ben")]);
        expect(&state, 1, 1, 0, 0);
    }

    #[test]
    fn flags_change_only_when_they_differ() {
        let mut state = RoomState::new();
        let lock = FlagsUpdate {
            locked: Some(true),
            ..FlagsUpdate::default()
        };
        let changes = state.apply(Event::RoomUpdate(lock.clone()));
        assert!(matches!(
            &changes[..],
            [Change::RoomUpdated { before, after }] if !before.locked && after.locked
        ));
        assert!(state.apply(Event::RoomUpdate(lock)).is_empty());
        assert!(state.flags().locked);
        let partial = FlagsUpdate {
            guests_muted: Some(true),
            ..FlagsUpdate::default()
        };
        state.apply(Event::RoomUpdate(partial));
        assert!(state.flags().locked, "absent flags keep their value");
        assert!(state.flags().guests_muted);
    }

    #[test]
    fn presentation_finds_the_presenter_by_uuid_uri_or_name() {
        let mut state = RoomState::new();
        state.apply(Event::Participant(Participant {
            uri: "ada@example.com".into(),
            ..guest("a", "Ada")
        }));
        for presentation in [
            Presentation {
                presenter_uuid: Some("a".into()),
                ..Presentation::default()
            },
            Presentation {
                presenter_uri: "ada@example.com".into(),
                ..Presentation::default()
            },
            Presentation {
                presenter_name: "Ada".into(),
                ..Presentation::default()
            },
        ] {
            let changes = state.apply(Event::PresentationStart(presentation));
            assert!(matches!(
                &changes[..],
                [Change::PresentationStarted { presenter: Some(p), .. }] if p.uuid == "a"
            ));
            assert_eq!(state.presenter().unwrap().uuid, "a");
            let stop = state.apply(Event::PresentationStop);
            assert!(matches!(
                &stop[..],
                [Change::PresentationStopped { presenter: Some(p) }] if p.uuid == "a"
            ));
        }
        assert!(
            state.apply(Event::PresentationStop).is_empty(),
            "a second stop is not a change"
        );
    }

    #[test]
    fn the_speaker_is_the_first_voice_on_stage() {
        let mut state = RoomState::new();
        state.apply(Event::Participant(guest("a", "Ann")));
        state.apply(Event::Participant(guest("b", "Ben")));
        let entry = |uuid: &str, index, vad| StageEntry {
            participant_uuid: uuid.into(),
            stage_index: index,
            vad,
        };
        let changes = state.apply(Event::Stage(vec![entry("a", 1, 0), entry("b", 0, 100)]));
        assert!(matches!(
            &changes[..],
            [Change::SpeakerChanged { before: None, after: Some(p) }] if p.uuid == "b"
        ));
        assert!(state.is_speaking("b") && !state.is_speaking("a"));
        let same = state.apply(Event::Stage(vec![entry("b", 0, 100)]));
        assert!(same.is_empty());
        let silence = state.apply(Event::Stage(vec![entry("b", 0, 0)]));
        assert!(matches!(
            &silence[..],
            [Change::SpeakerChanged {
                before: Some(_),
                after: None
            }]
        ));
    }

    #[test]
    fn voices_are_timed_until_they_fall_silent() {
        let mut state = RoomState::new();
        state.apply_at(Event::Participant(guest("a", "Ann")), 100.0);
        state.apply_at(Event::Participant(guest("b", "Ben")), 100.0);
        let stage = |voices: &[(&str, i64)]| {
            let entries = voices
                .iter()
                .enumerate()
                .map(|(index, (uuid, vad))| StageEntry {
                    participant_uuid: (*uuid).into(),
                    stage_index: index as i64,
                    vad: *vad,
                });
            Event::Stage(entries.collect())
        };
        assert_eq!(state.heard_at("a", 105.0), 0.0, "not heard yet");
        state.apply_at(stage(&[("a", 100), ("ghost", 100)]), 110.0);
        assert_eq!(state.heard_at("a", 115.0), 115.0, "heard now");
        state.apply_at(stage(&[("b", 100), ("a", 0)]), 120.0);
        assert_eq!(
            state.heard_at("a", 130.0),
            120.0,
            "heard until the stage said otherwise"
        );
        assert_eq!(state.heard_at("b", 130.0), 130.0);
        state.apply_at(stage(&[("b", 0), ("a", 0)]), 125.0);
        assert_eq!(state.heard_at("b", 130.0), 125.0);
        state.apply_at(Event::ParticipantLeft { uuid: "a".into() }, 140.0);
        state.apply_at(Event::Participant(guest("a", "Ann")), 150.0);
        assert_eq!(state.heard_at("a", 150.0), 0.0, "forgotten when they left");
        assert_eq!(
            state.heard_at("ghost", 150.0),
            0.0,
            "only participants are timed"
        );
    }

    #[test]
    fn participants_keep_arrival_order() {
        let mut state = RoomState::new();
        for (uuid, name) in [("z", "Zed"), ("a", "Ann"), ("m", "Max")] {
            state.apply(Event::Participant(guest(uuid, name)));
        }
        let order: Vec<&str> = state
            .participants()
            .map(|p| p.display_name.as_str())
            .collect();
        assert_eq!(order, ["Zed", "Ann", "Max"]);
        assert_eq!(state.find("max").unwrap().uuid, "m");
    }
}
