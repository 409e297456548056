//! What usher knows of one Tencent room, built from callbacks that come at
//! least once and in any order, and corrected by member listings.
//!
//! Tencent's callbacks carry no sequence number, so [`Tracker`]:
//! - drops redeliveries: a callback whose key (name, room, `EventTime`,
//!   who) it has seen lately;
//! - orders by `EventTime` where it matters: per member (an enter older
//!   than the leave already applied is stale), per seat, and for the
//!   room's flags;
//! - reports each member whole ([`Event::Participant`]), merging what the
//!   enter callback says (only the account) with what listings, seats and
//!   the room's flags say. A member whose name no listing has given yet is
//!   held back until the listing their entry prompts, so rules see a
//!   newcomer with their name (one who leaves before it is reported then,
//!   under their account, and leaves);
//! - merges a member listing ([`Tracker::reconcile`]) into one
//!   [`Event::Roster`]: what the list shows, except members a callback
//!   changed so recently that the list may not show it yet
//!   ([`LIST_MAY_LAG`]). The room state diffs the roster, so a reconcile
//!   never makes a false join or leave.
//!
//! usher's own admin account is left out of everything.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use tokio::time::Instant;

use super::decode::{Callback, Happening, Seat, neutral_role, role};
use super::inferred::{LIST_MAY_LAG, RoleWord, room_mute_applies};
use super::wire::{MemberInfo, RoomInfo, SeatInfo};
use crate::model::{Event, FlagsUpdate, Participant, Role, ServiceType};

/// How many callback keys a room remembers for dropping redeliveries.
const KEYS_KEPT: usize = 8192;

/// How many members' names and ordering marks a room remembers beyond the
/// members present, before it forgets the oldest.
const MARKS_KEPT: usize = 20_000;

/// Counters of what a room's callbacks did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TrackerStats {
    /// Callbacks applied.
    pub applied: u64,
    /// Redeliveries dropped.
    pub duplicates: u64,
    /// Callbacks (or parts of them) older than what was applied already.
    pub stale: u64,
    /// Member listings merged.
    pub reconciles: u64,
}

/// What applying a callback gave.
#[derive(Debug, Default, PartialEq)]
pub struct Applied {
    /// The events to report, in order.
    pub events: Vec<Event>,
    /// Something cannot be known from callbacks alone (a seat's unknown
    /// occupant, two changes in one millisecond): list the members soon.
    pub doubt: bool,
    /// Someone entered whose name only a listing gives: list the members
    /// at once (their join is reported with the listing).
    pub names_wanted: bool,
}

/// A member listing, as the REST calls gave it.
#[derive(Debug, Default, Clone)]
pub struct Listing {
    /// The room (`get_room_info`).
    pub info: RoomInfo,
    /// Every member (`get_room_member_list`, all pages).
    pub members: Vec<MemberInfo>,
    /// Every seat (`get_seat_list`), when the room has seats.
    pub seats: Option<Vec<SeatInfo>>,
}

/// Where a member's seat stands, for commands that act through it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeatView {
    /// The seat's number.
    pub index: i64,
    /// Nobody may take it.
    pub taken_disabled: bool,
    /// Its camera is disabled.
    pub video_disabled: bool,
    /// Its microphone is disabled.
    pub audio_disabled: bool,
}

#[derive(Debug, Clone)]
struct Member {
    seq: u64,
    name_card: Option<String>,
    role: RoleWord,
    joined_at: f64,
    /// Reported to the room: false while an entered member waits for the
    /// listing that names them.
    reported: bool,
}

/// The last thing applied about one member: when (platform ms), whether it
/// left them present, and when usher applied it.
#[derive(Debug, Clone, Copy)]
struct Mark {
    at_ms: i64,
    present: bool,
    applied: Instant,
}

#[derive(Debug, Clone, Default)]
struct SeatState {
    member: Option<String>,
    taken_disabled: bool,
    video_disabled: bool,
    audio_disabled: bool,
    at_ms: i64,
    applied: Option<Instant>,
}

#[derive(Debug, Clone, Default)]
struct Facts {
    owner: Option<String>,
    seats_enabled: bool,
    take_seat_mode: String,
    audio_disabled: bool,
    video_disabled: bool,
    running: Option<bool>,
    at_ms: i64,
    applied: Option<Instant>,
}

/// One room, as usher knows it.
#[derive(Debug)]
pub struct Tracker {
    room: String,
    own: String,
    members: HashMap<String, Member>,
    next_seq: u64,
    /// Names and roles from listings, kept after people leave so a returning
    /// member is named at once.
    known: HashMap<String, (String, RoleWord)>,
    marks: HashMap<String, Mark>,
    seats: BTreeMap<i64, SeatState>,
    facts: Facts,
    keys: HashSet<u64>,
    key_order: VecDeque<u64>,
    destroyed: bool,
    stats: TrackerStats,
}

impl Tracker {
    /// A room about which nothing is known yet; `own` is usher's admin
    /// account, left out of everything.
    pub fn new(room: &str, own: &str) -> Self {
        Tracker {
            room: room.to_owned(),
            own: own.to_owned(),
            members: HashMap::new(),
            next_seq: 0,
            known: HashMap::new(),
            marks: HashMap::new(),
            seats: BTreeMap::new(),
            facts: Facts::default(),
            keys: HashSet::new(),
            key_order: VecDeque::new(),
            destroyed: false,
            stats: TrackerStats::default(),
        }
    }

    /// Counters.
    pub fn stats(&self) -> TrackerStats {
        self.stats
    }

    /// How many members are present.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// True when nobody is present.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// True once the platform said the room was destroyed.
    pub fn destroyed(&self) -> bool {
        self.destroyed
    }

    /// Whether the room has seats.
    pub fn seats_enabled(&self) -> bool {
        self.facts.seats_enabled
    }

    /// The seat `account` sits on, if any.
    pub fn seat_of(&self, account: &str) -> Option<SeatView> {
        self.seats.iter().find_map(|(index, seat)| {
            (seat.member.as_deref() == Some(account)).then_some(SeatView {
                index: *index,
                taken_disabled: seat.taken_disabled,
                video_disabled: seat.video_disabled,
                audio_disabled: seat.audio_disabled,
            })
        })
    }

    /// True when arriving members take free seats by themselves
    /// (`FreeToTake`) and a seat is free to take.
    pub fn seats_free_to_take(&self) -> bool {
        self.facts.seats_enabled
            && self.facts.take_seat_mode.eq_ignore_ascii_case("FreeToTake")
            && self
                .seats
                .values()
                .any(|seat| seat.member.is_none() && !seat.taken_disabled)
    }

    /// True when `account` entered (by callback) less than `window` ago.
    pub fn entered_within(&self, account: &str, window: std::time::Duration) -> bool {
        self.members.contains_key(account)
            && self
                .marks
                .get(account)
                .is_some_and(|mark| mark.present && mark.applied.elapsed() < window)
    }

    /// Everyone present and reported, whole, in the order usher learned of
    /// them.
    pub fn participants(&self) -> Vec<Participant> {
        let mut members: Vec<(&String, &Member)> = self
            .members
            .iter()
            .filter(|(_, member)| member.reported)
            .collect();
        members.sort_by_key(|(_, member)| member.seq);
        members
            .into_iter()
            .map(|(account, member)| self.participant(account, member))
            .collect()
    }

    /// Applies one callback. `received` is when usher took it.
    pub fn apply(&mut self, callback: &Callback, received: Instant) -> Applied {
        if !self.remember_key(callback.key) {
            self.stats.duplicates += 1;
            return Applied::default();
        }
        self.stats.applied += 1;
        let at = callback.at_ms;
        let mut applied = Applied::default();
        match &callback.happening {
            Happening::Entered(accounts) => {
                for account in accounts {
                    if *account != self.own {
                        self.enter(account, at, received, &mut applied);
                    }
                }
            }
            Happening::Left { members, .. } => {
                for account in members {
                    if *account != self.own {
                        self.leave(account, at, received, &mut applied);
                    }
                }
            }
            Happening::Created(info) | Happening::Updated(info) => {
                if at < self.facts.at_ms {
                    self.stats.stale += 1;
                } else {
                    let before = self.flags();
                    let people = self.snapshot();
                    self.take_info(info);
                    self.facts.at_ms = at;
                    self.facts.applied = Some(received);
                    applied.events.extend(self.changed_since(&people));
                    if let Some(update) = flags_update(before, self.flags()) {
                        applied.events.push(Event::RoomUpdate(update));
                    }
                }
            }
            Happening::Seats(seats) => {
                let people = self.snapshot();
                for seat in seats {
                    self.seat(seat, at, received, &mut applied);
                }
                applied.events.extend(self.changed_since(&people));
            }
            Happening::Destroyed => {
                self.destroyed = true;
                applied.events.push(Event::Disconnected {
                    reason: format!("the room {} was destroyed", self.room),
                });
            }
        }
        applied
    }

    /// Merges a listing taken after `started` (when the listing was asked
    /// for). `now` is the UNIX time, for members first seen in it.
    ///
    /// Returns the roster and the room's flags when `rebase` is set (the
    /// first listing after a (re)connect) or when the listing disagrees on
    /// who is present (a callback was lost); otherwise only what the listing
    /// added about people already known (a name, a role), participant by
    /// participant, and the flags if they changed: a quiet room's periodic
    /// reconcile reports nothing.
    pub fn reconcile(
        &mut self,
        listing: &Listing,
        started: Instant,
        now: f64,
        rebase: bool,
    ) -> Vec<Event> {
        self.stats.reconciles += 1;
        let before: HashMap<String, Participant> = self
            .participants()
            .into_iter()
            .map(|p| (p.uuid.clone(), p))
            .collect();
        let waiting: Vec<String> = self
            .members
            .iter()
            .filter(|(_, member)| !member.reported)
            .map(|(account, _)| account.clone())
            .collect();
        let flags_before = self.flags();
        self.destroyed = false;
        let recently = |applied: Instant| applied + LIST_MAY_LAG > started;
        if self.facts.applied.is_none_or(|applied| !recently(applied)) {
            self.take_info(&listing.info);
        } else if let Some(owner) = &listing.info.owner {
            self.facts.owner = Some(owner.clone());
        }
        let mut listed = HashSet::new();
        for member in &listing.members {
            let Some(account) = member.account.as_deref().map(str::trim) else {
                continue;
            };
            if account.is_empty() || account == self.own || !listed.insert(account.to_owned()) {
                continue;
            }
            let name = Some(member.name_card.trim())
                .filter(|name| !name.is_empty())
                .map(str::to_owned);
            let role = role(&member.role);
            self.remember(account, name.clone(), role);
            if let Some(present) = self.members.get_mut(account) {
                present.name_card = name.or(present.name_card.take());
                present.role = role;
                continue;
            }
            let left_lately = self
                .marks
                .get(account)
                .is_some_and(|mark| !mark.present && recently(mark.applied));
            if !left_lately {
                self.insert(account, name, role, now, true);
            }
        }
        let gone: Vec<String> = self
            .members
            .keys()
            .filter(|account| !listed.contains(*account))
            .filter(|account| {
                !self
                    .marks
                    .get(*account)
                    .is_some_and(|mark| mark.present && recently(mark.applied))
            })
            .cloned()
            .collect();
        for account in gone {
            self.members.remove(&account);
        }
        if let Some(seats) = &listing.seats {
            let mut seen = HashSet::new();
            for seat in seats.iter().filter_map(Seat::from_wire) {
                seen.insert(seat.index);
                let state = self.seats.entry(seat.index).or_default();
                if state.applied.is_some_and(recently) {
                    continue;
                }
                state.member = seat.member.clone().flatten();
                state.taken_disabled = seat.taken_disabled.unwrap_or(false);
                state.video_disabled = seat.video_disabled.unwrap_or(false);
                state.audio_disabled = seat.audio_disabled.unwrap_or(false);
            }
            self.seats
                .retain(|index, seat| seen.contains(index) || seat.applied.is_some_and(recently));
        }
        // Members who entered unnamed are reported now, named if listed.
        for member in self.members.values_mut() {
            member.reported = true;
        }
        let flags = self.flags();
        let after = self.participants();
        let expected = |uuid: &str| before.contains_key(uuid) || waiting.iter().any(|w| w == uuid);
        let entered_unnamed = waiting
            .iter()
            .filter(|account| self.members.contains_key(*account))
            .count();
        let same_people = after.len() == before.len() + entered_unnamed
            && after.iter().all(|p| expected(&p.uuid));
        if rebase || !same_people {
            return vec![
                Event::Roster(after),
                Event::RoomUpdate(FlagsUpdate {
                    locked: None,
                    guests_muted: Some(flags.0),
                    started: flags.1,
                }),
            ];
        }
        let mut events: Vec<Event> = after
            .into_iter()
            .filter(|p| before.get(&p.uuid) != Some(p))
            .map(Event::Participant)
            .collect();
        events.extend(flags_update(flags_before, flags).map(Event::RoomUpdate));
        events
    }

    fn enter(&mut self, account: &str, at: i64, received: Instant, applied: &mut Applied) {
        match self.marks.get(account) {
            Some(mark) if mark.at_ms > at => {
                self.stats.stale += 1;
                return;
            }
            Some(mark) if mark.at_ms == at && !mark.present => applied.doubt = true,
            _ => {}
        }
        self.mark(account, at, true, received);
        if self.members.contains_key(account) {
            return;
        }
        let Some((name, role)) = self.known.get(account).cloned() else {
            // Only a listing names them: they are reported with it.
            self.insert(account, None, RoleWord::Member, at as f64 / 1000.0, false);
            applied.names_wanted = true;
            return;
        };
        self.insert(account, Some(name), role, at as f64 / 1000.0, true);
        if let Some(member) = self.members.get(account) {
            applied
                .events
                .push(Event::Participant(self.participant(account, member)));
        }
    }

    fn leave(&mut self, account: &str, at: i64, received: Instant, applied: &mut Applied) {
        match self.marks.get(account) {
            Some(mark) if mark.at_ms > at => {
                self.stats.stale += 1;
                return;
            }
            Some(mark) if mark.at_ms == at && mark.present => applied.doubt = true,
            _ => {}
        }
        self.mark(account, at, false, received);
        if let Some(member) = self.members.remove(account) {
            if !member.reported {
                // They leave before a listing named them: their visit is
                // still news, under the name the platform gave (their
                // account).
                applied
                    .events
                    .push(Event::Participant(self.participant(account, &member)));
            }
            for seat in self.seats.values_mut() {
                if seat.member.as_deref() == Some(account) {
                    seat.member = None;
                }
            }
            applied.events.push(Event::ParticipantLeft {
                uuid: account.to_owned(),
            });
        }
    }

    fn seat(&mut self, seat: &Seat, at: i64, received: Instant, applied: &mut Applied) {
        let state = self.seats.entry(seat.index).or_default();
        if state.at_ms > at {
            self.stats.stale += 1;
            return;
        }
        state.at_ms = at;
        state.applied = Some(received);
        if let Some(member) = &seat.member {
            state.member = member.clone();
        }
        if let Some(flag) = seat.taken_disabled {
            state.taken_disabled = flag;
        }
        if let Some(flag) = seat.video_disabled {
            state.video_disabled = flag;
        }
        if let Some(flag) = seat.audio_disabled {
            state.audio_disabled = flag;
        }
        let occupant = state.member.clone();
        self.facts.seats_enabled = true;
        if let Some(occupant) = occupant {
            // The same member cannot sit on two seats: a move frees the old one.
            for (index, other) in self.seats.iter_mut() {
                if *index != seat.index && other.member.as_deref() == Some(occupant.as_str()) {
                    other.member = None;
                }
            }
            if occupant != self.own && !self.members.contains_key(&occupant) {
                applied.doubt = true;
            }
        }
    }

    fn take_info(&mut self, info: &RoomInfo) {
        if let Some(owner) = &info.owner {
            self.facts.owner = Some(owner.clone()).filter(|owner| !owner.is_empty());
        }
        if let Some(flag) = info.seat_enabled {
            self.facts.seats_enabled = flag;
        }
        if !info.take_seat_mode.is_empty() {
            self.facts.take_seat_mode = info.take_seat_mode.clone();
        }
        if let Some(flag) = info.audio_disabled {
            self.facts.audio_disabled = flag;
        }
        if let Some(flag) = info.video_disabled {
            self.facts.video_disabled = flag;
        }
        if let Some(status) = &info.status {
            self.facts.running = Some(status.trim().eq_ignore_ascii_case("Running"));
        }
    }

    /// `(guests muted, started)`.
    fn flags(&self) -> (bool, Option<bool>) {
        (self.facts.audio_disabled, self.facts.running)
    }

    fn insert(
        &mut self,
        account: &str,
        name_card: Option<String>,
        role: RoleWord,
        joined_at: f64,
        reported: bool,
    ) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.members.insert(
            account.to_owned(),
            Member {
                seq,
                name_card,
                role,
                joined_at,
                reported,
            },
        );
    }

    fn mark(&mut self, account: &str, at_ms: i64, present: bool, applied: Instant) {
        if self.marks.len() >= MARKS_KEPT && !self.marks.contains_key(account) {
            self.forget_absent_marks();
        }
        self.marks.insert(
            account.to_owned(),
            Mark {
                at_ms,
                present,
                applied,
            },
        );
    }

    /// Forgets the marks of members no longer present, oldest half first,
    /// so a room with endless churn stays bounded.
    fn forget_absent_marks(&mut self) {
        let mut absent: Vec<(Instant, String)> = self
            .marks
            .iter()
            .filter(|(account, _)| !self.members.contains_key(*account))
            .map(|(account, mark)| (mark.applied, account.clone()))
            .collect();
        absent.sort();
        for (_, account) in absent.iter().take(absent.len().div_ceil(2)) {
            self.marks.remove(account);
        }
    }

    fn remember(&mut self, account: &str, name: Option<String>, role: RoleWord) {
        if self.known.len() >= MARKS_KEPT && !self.known.contains_key(account) {
            let members = &self.members;
            self.known
                .retain(|account, _| members.contains_key(account));
        }
        if let Some(name) = name {
            self.known.insert(account.to_owned(), (name, role));
        }
    }

    fn remember_key(&mut self, key: u64) -> bool {
        if !self.keys.insert(key) {
            return false;
        }
        self.key_order.push_back(key);
        if self.key_order.len() > KEYS_KEPT
            && let Some(oldest) = self.key_order.pop_front()
        {
            self.keys.remove(&oldest);
        }
        true
    }

    /// Everyone's participant now, to compare after a change.
    fn snapshot(&self) -> Vec<(String, Participant)> {
        self.members
            .iter()
            .filter(|(_, member)| member.reported)
            .map(|(account, member)| (account.clone(), self.participant(account, member)))
            .collect()
    }

    /// The participants that differ from `before`, in arrival order.
    fn changed_since(&self, before: &[(String, Participant)]) -> Vec<Event> {
        let before: HashMap<&str, &Participant> = before
            .iter()
            .map(|(account, participant)| (account.as_str(), participant))
            .collect();
        self.participants()
            .into_iter()
            .filter(|now| {
                before
                    .get(now.uuid.as_str())
                    .is_some_and(|then| *then != now)
            })
            .map(Event::Participant)
            .collect()
    }

    fn participant(&self, account: &str, member: &Member) -> Participant {
        let role = if self.facts.owner.as_deref() == Some(account) {
            RoleWord::Owner
        } else {
            member.role
        };
        let neutral = neutral_role(role);
        let host = neutral == Role::Chair;
        let seat = self.seat_of(account);
        let room_mutes = self.facts.audio_disabled && room_mute_applies(host);
        Participant {
            uuid: account.to_owned(),
            display_name: member
                .name_card
                .clone()
                .unwrap_or_else(|| account.to_owned()),
            role: neutral,
            muted: room_mutes || seat.is_some_and(|seat| seat.audio_disabled),
            video_muted: (self.facts.video_disabled && !host)
                || seat.is_some_and(|seat| seat.video_disabled),
            service_type: ServiceType::Conference,
            uri: account.to_owned(),
            local_alias: self.room.clone(),
            start_time: member.joined_at,
            has_media: true,
            video_call: true,
            ..Participant::default()
        }
    }
}

fn flags_update(before: (bool, Option<bool>), after: (bool, Option<bool>)) -> Option<FlagsUpdate> {
    (before != after).then(|| FlagsUpdate {
        locked: None,
        guests_muted: (before.0 != after.0).then_some(after.0),
        started: if before.1 != after.1 { after.1 } else { None },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::tencent::decode::decode;
    use crate::platform::tencent::wire::CallbackBody;

    fn callback(json: &str) -> Callback {
        let body: CallbackBody = serde_json::from_str(json).unwrap();
        decode("", &body, 0).unwrap()
    }

    fn enter(account: &str, at: i64) -> Callback {
        callback(&format!(
            r#"{{"CallbackCommand":"Room.CallbackAfterMemberEnter","RoomId":"r","Type":"Enter","MemberList_Account":["{account}"],"EventTime":{at}}}"#
        ))
    }

    fn leave(account: &str, at: i64) -> Callback {
        callback(&format!(
            r#"{{"CallbackCommand":"Room.CallbackAfterMemberLeave","RoomId":"r","Type":"Leave","MemberList_Account":["{account}"],"EventTime":{at}}}"#
        ))
    }

    fn kinds(events: &[Event]) -> Vec<String> {
        events
            .iter()
            .map(|event| match event {
                Event::Participant(p) => format!("participant {}", p.uuid),
                Event::ParticipantLeft { uuid } => format!("left {uuid}"),
                Event::Roster(people) => format!(
                    "roster {}",
                    people
                        .iter()
                        .map(|p| p.uuid.as_str())
                        .collect::<Vec<_>>()
                        .join(",")
                ),
                other => other.kind().to_owned(),
            })
            .collect()
    }

    fn member(account: &str, name: &str, role: &str) -> MemberInfo {
        MemberInfo {
            account: Some(account.into()),
            name_card: name.into(),
            role: role.into(),
        }
    }

    /// A room whose listing named these accounts (present now).
    fn named(accounts: &[&str]) -> Tracker {
        let mut room = Tracker::new("r", "admin");
        let listing = Listing {
            members: accounts
                .iter()
                .map(|account| member(account, &account.to_uppercase(), "Member"))
                .collect(),
            ..Listing::default()
        };
        room.reconcile(&listing, Instant::now(), 0.0, true);
        room
    }

    #[test]
    fn redeliveries_and_stale_callbacks_change_nothing() {
        let mut room = named(&["bob"]);
        let now = Instant::now();
        assert_eq!(
            kinds(&room.apply(&leave("bob", 20), now).events),
            ["left bob"]
        );
        assert!(
            room.apply(&leave("bob", 20), now).events.is_empty(),
            "a redelivery"
        );
        assert!(
            room.apply(&enter("bob", 15), now).events.is_empty(),
            "an enter older than the leave applied"
        );
        assert!(room.is_empty());
        let back = room.apply(&enter("bob", 30), now);
        assert_eq!(
            kinds(&back.events),
            ["participant bob"],
            "named at once: known"
        );
        assert!(!back.names_wanted);
        assert_eq!(room.stats().duplicates, 1);
        assert_eq!(room.stats().stale, 1);
    }

    #[test]
    fn a_newcomer_is_reported_named_with_the_listing_their_entry_prompts() {
        let mut room = named(&[]);
        let now = Instant::now();
        let entered = room.apply(&enter("xu", 10), now);
        assert!(entered.events.is_empty() && entered.names_wanted);
        let listing = Listing {
            members: vec![member("xu", "Xu Li", "Member")],
            ..Listing::default()
        };
        let events = room.reconcile(&listing, now, 0.0, false);
        assert!(
            matches!(&events[..], [Event::Participant(p)] if p.display_name == "Xu Li"),
            "a join, not a roster: {events:?}"
        );
        // Someone who comes and goes before any listing names them: their
        // visit is still reported, under their account.
        room.apply(&enter("yan", 20), now);
        assert_eq!(
            kinds(&room.apply(&leave("yan", 30), now).events),
            ["participant yan", "left yan"]
        );
        assert!(room.reconcile(&listing, now, 0.0, false).is_empty());
    }

    #[test]
    fn a_leave_that_overtook_its_enter_leaves_nobody_behind() {
        let mut room = Tracker::new("r", "admin");
        let now = Instant::now();
        assert!(room.apply(&leave("cat", 20), now).events.is_empty());
        assert!(room.apply(&enter("cat", 10), now).events.is_empty());
        assert!(room.is_empty());
    }

    #[test]
    fn the_admin_account_is_never_reported() {
        let mut room = Tracker::new("r", "admin");
        assert!(
            room.apply(&enter("admin", 1), Instant::now())
                .events
                .is_empty()
        );
        let listing = Listing {
            members: vec![
                member("admin", "usher", "Admin"),
                member("ann", "Ann", "Member"),
            ],
            ..Listing::default()
        };
        let events = room.reconcile(&listing, Instant::now(), 0.0, true);
        assert_eq!(kinds(&events), ["roster ann", "room_update"]);
    }

    #[test]
    fn a_listing_names_members_and_makes_owners_and_admins_hosts() {
        let mut room = Tracker::new("r", "admin");
        let applied = room.apply(&enter("144115188075855873", 10), Instant::now());
        assert!(
            applied.names_wanted,
            "the enter callback does not name the member"
        );
        let listing = Listing {
            info: RoomInfo {
                owner: Some("own".into()),
                ..RoomInfo::default()
            },
            members: vec![
                member("own", "Prof", "RoomOwner"),
                member("144115188075855873", "Wen", "Member"),
                member("adm", "Ada", "Admin"),
            ],
            seats: None,
        };
        // Long after the callback: the listing's word is final.
        let later = Instant::now() + LIST_MAY_LAG * 2;
        let events = room.reconcile(&listing, later, 100.0, true);
        let Event::Roster(people) = &events[0] else {
            panic!("{events:?}")
        };
        let by = |uuid: &str| people.iter().find(|p| p.uuid == uuid).unwrap().clone();
        assert_eq!(by("144115188075855873").display_name, "Wen");
        assert_eq!(by("144115188075855873").role, Role::Guest);
        assert_eq!(by("own").role, Role::Chair);
        assert_eq!(by("adm").role, Role::Chair);
        assert_eq!(
            by("144115188075855873").start_time,
            10.0,
            "joined at the enter's time"
        );
        assert_eq!(by("adm").start_time, 100.0, "first seen in the listing");
    }

    #[test]
    fn a_listing_does_not_undo_a_callback_it_may_not_show_yet() {
        let mut room = Tracker::new("r", "admin");
        let started = Instant::now();
        room.apply(&enter("new", 10), started);
        let events = room.reconcile(&Listing::default(), started, 0.0, true);
        assert_eq!(
            kinds(&events),
            ["roster new", "room_update"],
            "kept: entered just now"
        );
        room.apply(&leave("new", 20), started);
        let listing = Listing {
            members: vec![member("new", "New", "Member")],
            ..Listing::default()
        };
        let events = room.reconcile(&listing, started, 0.0, true);
        assert_eq!(
            kinds(&events),
            ["roster ", "room_update"],
            "kept out: left just now"
        );
        let events = room.reconcile(&listing, started + LIST_MAY_LAG * 2, 0.0, true);
        assert_eq!(
            kinds(&events),
            ["roster new", "room_update"],
            "the listing wins later"
        );
    }

    #[test]
    fn a_later_listing_reports_only_what_it_changed() {
        let mut room = Tracker::new("r", "admin");
        let listing = Listing {
            members: vec![member("ann", "Ann", "Member")],
            ..Listing::default()
        };
        let now = Instant::now();
        assert_eq!(
            kinds(&room.reconcile(&listing, now, 0.0, true)),
            ["roster ann", "room_update"]
        );
        assert!(
            room.reconcile(&listing, now, 0.0, false).is_empty(),
            "nothing new"
        );
        let renamed = Listing {
            members: vec![member("ann", "Ann Lee", "Admin")],
            ..Listing::default()
        };
        let events = room.reconcile(&renamed, now, 0.0, false);
        assert!(
            matches!(&events[..], [Event::Participant(p)] if p.display_name == "Ann Lee" && p.role == Role::Chair),
            "{events:?}"
        );
        let later = now + LIST_MAY_LAG * 2;
        assert_eq!(
            kinds(&room.reconcile(&Listing::default(), later, 0.0, false)),
            ["roster ", "room_update"],
            "someone is missing: a roster"
        );
    }

    #[test]
    fn muting_everyone_mutes_members_but_not_hosts() {
        let mut room = Tracker::new("r", "admin");
        let now = Instant::now();
        room.reconcile(
            &Listing {
                members: vec![member("h", "Host", "Admin"), member("g", "Guest", "Member")],
                ..Listing::default()
            },
            now,
            0.0,
            true,
        );
        let update = callback(
            r#"{"CallbackCommand":"Room.CallbackAfterUpdateRoomInfo","RoomInfo":{"RoomId":"r","IsAudioDisabled":true,"IsCloudRecordingDisabled":"false"},"EventTime":30}"#,
        );
        let events = room.apply(&update, now).events;
        assert_eq!(kinds(&events), ["participant g", "room_update"]);
        assert!(matches!(&events[0], Event::Participant(p) if p.muted));
        assert!(matches!(
            &events[1],
            Event::RoomUpdate(FlagsUpdate {
                guests_muted: Some(true),
                ..
            })
        ));
        let older = callback(
            r#"{"CallbackCommand":"Room.CallbackAfterUpdateRoomInfo","RoomInfo":{"RoomId":"r","IsAudioDisabled":false},"EventTime":20}"#,
        );
        assert!(
            room.apply(&older, now).events.is_empty(),
            "older than the flags applied"
        );
    }

    #[test]
    fn a_seat_with_its_microphone_locked_mutes_whoever_sits_there() {
        let mut room = named(&["144115188075855873"]);
        let now = Instant::now();
        let seated = callback(
            r#"{"CallbackCommand":"Mic.CallbackAfterSeatInfoChanged","RoomId":"r","SeatList":[{"Index":2,"Member_Account":144115188075855873,"IsAudioDisabled":"true"}],"EventTime":20}"#,
        );
        let events = room.apply(&seated, now).events;
        assert!(matches!(&events[..], [Event::Participant(p)] if p.muted));
        assert_eq!(
            room.seat_of("144115188075855873").map(|seat| seat.index),
            Some(2)
        );
        assert!(room.seats_enabled());
        let gone = room.apply(&leave("144115188075855873", 30), now);
        assert_eq!(kinds(&gone.events), ["left 144115188075855873"]);
        assert_eq!(room.seat_of("144115188075855873"), None);
    }

    #[test]
    fn destroying_the_room_disconnects() {
        let mut room = Tracker::new("r", "admin");
        let destroyed = callback(
            r#"{"CallbackCommand":"Room.CallbackAfterDestroyRoom","RoomId":"r","EventTime":5}"#,
        );
        let events = room.apply(&destroyed, Instant::now()).events;
        assert!(matches!(&events[..], [Event::Disconnected { .. }]));
        assert!(room.destroyed());
    }
}
