//! One lecture as it happens: the accumulator behind every report.
//!
//! A [`Session`] takes the room's changes (with the room as it is after
//! them, and when they happened), the audit records of the commands sent
//! and the rules' failures, and keeps only what the report needs: who was
//! where and since when, hands, voices, presentations, locks, commands.
//! [`Session::finish`] turns it into a [`Report`]. The live daemon and
//! `usher report` feed the same accumulator, so both write the same report.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use super::zone::ZoneTimes;
use crate::clock::{Zone, parse_timestamp};
use crate::model::{Change, Participant, RoomState};
use crate::runtime::audit::AuditRecord;

/// A lecture being followed.
#[derive(Debug, Clone)]
pub struct Session {
    room: String,
    /// The timetable session it follows, if the room has one.
    title: Option<String>,
    start: f64,
    latest: f64,
    people: Vec<Person>,
    by_name: HashMap<String, usize>,
    /// Where each participant present is, by uuid.
    present: HashMap<String, Presence>,
    /// The count in the room proper each time it changed.
    attendance: Vec<(f64, usize)>,
    speaker: Option<(usize, f64)>,
    presentation: Option<(String, f64)>,
    presentations: Vec<Period>,
    locked_since: Option<f64>,
    locks: Vec<Period>,
    commands: Vec<AuditRecord>,
    rule_errors: Vec<RuleErrorLine>,
}

#[derive(Debug, Clone)]
struct Person {
    name: String,
    host: bool,
    stints: Vec<(f64, Option<f64>)>,
    waiting: f64,
    hands: u32,
    hand_time: f64,
    floor: f64,
    presenting: f64,
}

#[derive(Debug, Clone, Copy)]
struct Presence {
    person: usize,
    place: Place,
    since: f64,
    hand_since: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    Room,
    Waiting,
    /// Connecting, or entering a PIN.
    Elsewhere,
}

impl Place {
    fn of(p: &Participant) -> Place {
        if p.is_waiting() {
            Place::Waiting
        } else if p.in_room() {
            Place::Room
        } else {
            Place::Elsewhere
        }
    }
}

/// Something that lasted: a presentation, a lock.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Period {
    /// Who (the presenter), when it is about someone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub who: Option<String>,
    /// When it began (RFC 3339 in the room's zone).
    pub start: String,
    /// When it ended; `None` if it lasted until the end of the session.
    pub end: Option<String>,
    /// How long, in seconds.
    pub seconds: f64,
    #[serde(skip)]
    start_at: f64,
}

/// A rule call that failed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleErrorLine {
    /// When (RFC 3339 in the room's zone).
    pub time: String,
    /// The rule.
    pub rule: String,
    /// The handler or timer function.
    pub handler: String,
    /// Where and why.
    pub error: String,
    #[serde(skip)]
    at: f64,
}

/// An end-of-lecture report: what the `.json` holds and the `.html` shows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// The room.
    pub room: String,
    /// The timetable session it covers, if the room follows a timetable.
    pub title: Option<String>,
    /// The zone times are in (`Europe/Berlin (UTC+01:00)`).
    pub zone: String,
    /// When the session began (RFC 3339).
    pub start: String,
    /// When it ended.
    pub end: String,
    /// How long it lasted, in seconds.
    pub seconds: f64,
    /// Who was in the room, minute by minute.
    pub attendance: Attendance,
    /// Everyone who came, in order of arrival.
    pub participants: Vec<PersonReport>,
    /// Presentations, in order.
    pub presentations: Vec<Period>,
    /// When the room was locked.
    pub locks: Vec<Period>,
    /// Every command, by rule.
    pub commands: Vec<RuleCommands>,
    /// Rule calls that failed.
    pub rule_errors: Vec<RuleErrorLine>,
    #[serde(skip)]
    pub(crate) start_at: f64,
    #[serde(skip)]
    pub(crate) zone_used: Zone,
}

/// Attendance over the session.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Attendance {
    /// One point per minute of the session: the most people in the room
    /// proper during that minute.
    pub minutes: Vec<MinutePoint>,
    /// The most people in the room at once.
    pub peak: usize,
    /// When that was first reached.
    pub peak_at: String,
    /// The time-weighted average.
    pub average: f64,
}

/// One minute of attendance.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MinutePoint {
    /// The minute's start (RFC 3339).
    pub time: String,
    /// The most people in the room proper during it.
    pub people: usize,
}

/// One person's lecture.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PersonReport {
    /// Their display name.
    pub name: String,
    /// `host` or `guest`.
    pub role: &'static str,
    /// Each stay in the room proper.
    pub stays: Vec<Stay>,
    /// Time in the room proper, in seconds.
    pub in_room_seconds: f64,
    /// Time in the waiting room, in seconds.
    pub waiting_seconds: f64,
    /// Hands raised.
    pub hands_raised: u32,
    /// Time with a hand up, in seconds.
    pub hand_seconds: f64,
    /// Time as the active speaker, in seconds.
    pub floor_seconds: f64,
    /// Time presenting, in seconds.
    pub presenting_seconds: f64,
}

/// One stay in the room.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stay {
    /// When they came in (RFC 3339).
    pub joined: String,
    /// When they left; `None` if they were there at the end.
    pub left: Option<String>,
    /// How long, in seconds.
    pub seconds: f64,
}

/// The commands one rule asked for.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleCommands {
    /// The rule.
    pub rule: String,
    /// How many ended how (`ok`, `failed`, `shadow`, …).
    pub outcomes: BTreeMap<&'static str, u64>,
    /// Each command, in order.
    pub commands: Vec<CommandLine>,
}

/// One command.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CommandLine {
    /// When its outcome was known (RFC 3339).
    pub time: String,
    /// The command as people read it.
    pub text: String,
    /// The handler that asked, and what it was about: `on_join(Bob)`.
    pub why: String,
    /// The platform event behind it.
    pub event: String,
    /// What became of it.
    pub outcome: &'static str,
    /// Why it failed or was not sent.
    pub error: Option<String>,
}

impl Session {
    /// Names the timetable session this lecture is.
    pub fn set_title(&mut self, title: &str) {
        self.title = Some(title.to_owned());
    }

    /// Starts following room `alias` at `at`, with whoever `state` lists as
    /// already there.
    pub fn begin(room: &str, state: &RoomState, at: f64) -> Session {
        let mut session = Session {
            room: room.to_owned(),
            title: None,
            start: at,
            latest: at,
            people: Vec::new(),
            by_name: HashMap::new(),
            present: HashMap::new(),
            attendance: vec![(at, 0)],
            speaker: None,
            presentation: None,
            presentations: Vec::new(),
            locked_since: None,
            locks: Vec::new(),
            commands: Vec::new(),
            rule_errors: Vec::new(),
        };
        session.reconcile(state, at);
        session.attendance = vec![(at, state.counts().in_room)];
        if state.flags().locked {
            session.locked_since = Some(at);
        }
        if let Some(p) = state.presenter() {
            session.presentation = Some((p.display_name.clone(), at));
        }
        if let Some(p) = state.speaker() {
            let person = session.person(p);
            session.speaker = Some((person, at));
        }
        session
    }

    /// The room.
    pub fn room(&self) -> &str {
        &self.room
    }

    /// The most people in the room proper so far.
    pub fn peak(&self) -> usize {
        self.attendance.iter().map(|(_, n)| *n).max().unwrap_or(0)
    }

    /// Takes in what an event changed at `at`; `state` is the room after it.
    pub fn changes(&mut self, state: &RoomState, changes: &[Change], at: f64) {
        let at = at.max(self.latest);
        self.latest = at;
        for change in changes {
            match change {
                Change::Joined(p) => self.arrive(p, at),
                Change::Left(p) => self.leave(&p.uuid, at),
                Change::Updated { before, after } => self.update(before, after, at),
                Change::SpeakerChanged { after, .. } => {
                    self.end_floor(at);
                    if let Some(p) = after {
                        let person = self.person(p);
                        self.speaker = Some((person, at));
                    }
                }
                Change::PresentationStarted {
                    presentation,
                    presenter,
                } => {
                    self.end_presentation(at);
                    let name = presenter
                        .as_ref()
                        .map_or(&presentation.presenter_name, |p| &p.display_name);
                    self.presentation = Some((name.clone(), at));
                }
                Change::PresentationStopped { .. } => self.end_presentation(at),
                Change::RoomUpdated { before, after } if before.locked != after.locked => {
                    if after.locked {
                        self.locked_since = Some(at);
                    } else {
                        self.end_lock(at);
                    }
                }
                Change::Synced { .. } => self.reconcile(state, at),
                _ => {}
            }
        }
        let count = state.counts().in_room;
        if self.attendance.last().map(|(_, n)| *n) != Some(count) {
            self.attendance.push((at, count));
        }
    }

    /// Takes in a command's audit record.
    pub fn command(&mut self, record: &AuditRecord) {
        self.commands.push(record.clone());
    }

    /// Takes in a rule's failure.
    pub fn rule_failed(&mut self, rule: &str, handler: &str, error: &str, at: f64) {
        self.rule_errors.push(RuleErrorLine {
            time: String::new(),
            rule: rule.to_owned(),
            handler: handler.to_owned(),
            error: error.to_owned(),
            at,
        });
    }

    /// Ends the session at `at` and writes its times in `zone`.
    pub fn finish(mut self, at: f64, zone: Zone) -> Report {
        let end = at.max(self.latest);
        self.end_floor(end);
        self.end_presentation(end);
        self.end_lock(end);
        let open: Vec<String> = self.present.keys().cloned().collect();
        for uuid in open {
            self.close(&uuid, end, true);
        }
        let stamp = |at: f64| zone.timestamp(at);
        let participants = self
            .people
            .iter()
            .map(|person| PersonReport {
                name: person.name.clone(),
                role: if person.host { "host" } else { "guest" },
                stays: person
                    .stints
                    .iter()
                    .map(|(from, to)| Stay {
                        joined: stamp(*from),
                        left: to.map(stamp),
                        seconds: tenths(to.unwrap_or(end) - from),
                    })
                    .collect(),
                in_room_seconds: tenths(
                    person
                        .stints
                        .iter()
                        .map(|(from, to)| to.unwrap_or(end) - from)
                        .sum(),
                ),
                waiting_seconds: tenths(person.waiting),
                hands_raised: person.hands,
                hand_seconds: tenths(person.hand_time),
                floor_seconds: tenths(person.floor),
                presenting_seconds: tenths(person.presenting),
            })
            .collect();
        let stamp_period = |period: &Period| Period {
            start: stamp(period.start_at),
            end: period
                .end
                .as_ref()
                .map(|_| stamp(period.start_at + period.seconds)),
            seconds: tenths(period.seconds),
            ..period.clone()
        };
        let mut rules: BTreeMap<&str, RuleCommands> = BTreeMap::new();
        self.commands
            .sort_by(|a, b| record_time(a, end).total_cmp(&record_time(b, end)));
        for record in &self.commands {
            let entry = rules.entry(&record.rule).or_insert_with(|| RuleCommands {
                rule: record.rule.clone(),
                outcomes: BTreeMap::new(),
                commands: Vec::new(),
            });
            *entry.outcomes.entry(record.outcome.as_str()).or_default() += 1;
            let subject = record
                .participant
                .as_ref()
                .map(|who| format!("({})", who.name))
                .unwrap_or_default();
            entry.commands.push(CommandLine {
                time: stamp(record_time(record, end)),
                text: record.text.clone(),
                why: format!("{}{subject}", record.handler),
                event: record.event.clone(),
                outcome: record.outcome.as_str(),
                error: record.error.clone(),
            });
        }
        Report {
            room: self.room.clone(),
            title: self.title.clone(),
            zone: zone.label(self.start),
            start: stamp(self.start),
            end: stamp(end),
            seconds: tenths(end - self.start),
            attendance: attendance(&self.attendance, self.start, end, &zone),
            participants,
            presentations: self.presentations.iter().map(stamp_period).collect(),
            locks: self.locks.iter().map(stamp_period).collect(),
            commands: rules.into_values().collect(),
            rule_errors: self
                .rule_errors
                .iter()
                .map(|line| RuleErrorLine {
                    time: stamp(line.at),
                    ..line.clone()
                })
                .collect(),
            start_at: self.start,
            zone_used: zone,
        }
    }

    /// The index of `p`'s person (by display name), added if new.
    fn person(&mut self, p: &Participant) -> usize {
        if let Some(index) = self.by_name.get(&p.display_name) {
            self.people[*index].host |= p.is_host();
            return *index;
        }
        self.people.push(Person {
            name: p.display_name.clone(),
            host: p.is_host(),
            stints: Vec::new(),
            waiting: 0.0,
            hands: 0,
            hand_time: 0.0,
            floor: 0.0,
            presenting: 0.0,
        });
        self.by_name
            .insert(p.display_name.clone(), self.people.len() - 1);
        self.people.len() - 1
    }

    fn arrive(&mut self, p: &Participant, at: f64) {
        if self.present.contains_key(&p.uuid) {
            return;
        }
        let person = self.person(p);
        let place = Place::of(p);
        if place == Place::Room {
            self.people[person].stints.push((at, None));
        }
        let hand_since = p.hand_raised().then_some(at);
        if hand_since.is_some() {
            self.people[person].hands += 1;
        }
        self.present.insert(
            p.uuid.clone(),
            Presence {
                person,
                place,
                since: at,
                hand_since,
            },
        );
    }

    fn update(&mut self, before: &Participant, after: &Participant, at: f64) {
        let Some(presence) = self.present.get(&after.uuid).copied() else {
            self.arrive(after, at);
            return;
        };
        let person = &mut self.people[presence.person];
        person.host |= after.is_host();
        let place = Place::of(after);
        let mut presence = presence;
        if place != presence.place {
            match presence.place {
                Place::Room => close_stint(person, at),
                Place::Waiting => person.waiting += at - presence.since,
                Place::Elsewhere => {}
            }
            if place == Place::Room {
                person.stints.push((at, None));
            }
            presence.place = place;
            presence.since = at;
        }
        if !before.hand_raised() && after.hand_raised() {
            person.hands += 1;
            presence.hand_since = Some(at);
        } else if before.hand_raised() && !after.hand_raised() {
            if let Some(since) = presence.hand_since.take() {
                person.hand_time += at - since;
            }
        }
        self.present.insert(after.uuid.clone(), presence);
    }

    fn leave(&mut self, uuid: &str, at: f64) {
        self.close(uuid, at, false);
    }

    /// Ends `uuid`'s presence at `at`; `still_there` leaves a stay open
    /// (they were in the room when the session ended).
    fn close(&mut self, uuid: &str, at: f64, still_there: bool) {
        let Some(presence) = self.present.remove(uuid) else {
            return;
        };
        if !still_there
            && self
                .speaker
                .is_some_and(|(speaker, _)| speaker == presence.person)
        {
            self.end_floor(at);
        }
        let person = &mut self.people[presence.person];
        if let Some(since) = presence.hand_since {
            person.hand_time += at - since;
        }
        match presence.place {
            Place::Room if !still_there => close_stint(person, at),
            Place::Waiting => person.waiting += at - presence.since,
            _ => {}
        }
    }

    /// Makes the presences agree with `state`: who it lists is present,
    /// whoever it does not list has left.
    fn reconcile(&mut self, state: &RoomState, at: f64) {
        let gone: Vec<String> = self
            .present
            .keys()
            .filter(|uuid| state.participant(uuid).is_none())
            .cloned()
            .collect();
        for uuid in gone {
            self.leave(&uuid, at);
        }
        for p in state.participants() {
            match self.present.get(&p.uuid) {
                Some(_) => {}
                None => self.arrive(p, at),
            }
        }
    }

    fn end_floor(&mut self, at: f64) {
        if let Some((person, since)) = self.speaker.take() {
            self.people[person].floor += at - since;
        }
    }

    fn end_presentation(&mut self, at: f64) {
        if let Some((who, since)) = self.presentation.take() {
            if let Some(index) = self.by_name.get(&who) {
                self.people[*index].presenting += at - since;
            }
            self.presentations.push(Period {
                who: Some(who),
                start: String::new(),
                end: Some(String::new()),
                seconds: at - since,
                start_at: since,
            });
        }
    }

    fn end_lock(&mut self, at: f64) {
        if let Some(since) = self.locked_since.take() {
            self.locks.push(Period {
                who: None,
                start: String::new(),
                end: Some(String::new()),
                seconds: at - since,
                start_at: since,
            });
        }
    }
}

fn close_stint(person: &mut Person, at: f64) {
    if let Some(stint) = person.stints.last_mut()
        && stint.1.is_none()
    {
        stint.1 = Some(at);
    }
}

/// Seconds to a tenth, as reports give them.
fn tenths(seconds: f64) -> f64 {
    (seconds * 10.0).round() / 10.0
}

/// When a record's outcome was known, or `fallback` if its time is unreadable.
fn record_time(record: &AuditRecord, fallback: f64) -> f64 {
    parse_timestamp(&record.time).unwrap_or(fallback)
}

/// Attendance minute by minute from the count's changes.
fn attendance(changes: &[(f64, usize)], start: f64, end: f64, zone: &Zone) -> Attendance {
    let minutes = (((end - start) / 60.0).ceil() as usize).max(1);
    let mut points = Vec::with_capacity(minutes);
    let mut next = 0;
    let mut current = 0;
    for minute in 0..minutes {
        let from = start + 60.0 * minute as f64;
        let to = from + 60.0;
        while next < changes.len() && changes[next].0 <= from {
            current = changes[next].1;
            next += 1;
        }
        let mut most = current;
        while next < changes.len() && changes[next].0 < to {
            current = changes[next].1;
            most = most.max(current);
            next += 1;
        }
        points.push(MinutePoint {
            time: zone.timestamp(from),
            people: most,
        });
    }
    let (peak, peak_at) =
        changes.iter().fold(
            (0, start),
            |best, (at, n)| if *n > best.0 { (*n, *at) } else { best },
        );
    let mut weighted = 0.0;
    for (index, (at, n)) in changes.iter().enumerate() {
        let until = changes
            .get(index + 1)
            .map_or(end, |(next, _)| *next)
            .min(end);
        weighted += (until - at.max(start)).max(0.0) * *n as f64;
    }
    let span = end - start;
    Attendance {
        minutes: points,
        peak,
        peak_at: zone.timestamp(peak_at),
        average: if span > 0.0 {
            (weighted / span * 100.0).round() / 100.0
        } else {
            peak as f64
        },
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::model::{Event, FlagsUpdate, Presentation, Role, ServiceType, StageEntry};

    const T0: f64 = 1_795_327_200.0;
    fn zone() -> Zone {
        Zone::parse("+08:00").unwrap()
    }

    fn person(uuid: &str, name: &str, role: Role) -> Participant {
        Participant {
            uuid: uuid.into(),
            display_name: name.into(),
            role,
            service_type: ServiceType::Conference,
            ..Participant::default()
        }
    }

    /// Feeds `event` at `T0 + seconds`.
    fn at(session: &mut Session, state: &mut RoomState, seconds: f64, event: Event) {
        let changes = state.apply_at(event, T0 + seconds);
        session.changes(state, &changes, T0 + seconds);
    }

    fn synced(people: &[Participant]) -> (RoomState, Session) {
        let mut state = RoomState::new();
        state.apply(Event::Roster(people.to_vec()));
        let session = Session::begin("hall", &state, T0);
        (state, session)
    }

    #[test]
    fn a_lecture_adds_up() {
        let ada = person("a", "Ada", Role::Chair);
        let bob = person("b", "Bob", Role::Guest);
        let (mut state, mut session) = synced(std::slice::from_ref(&ada));
        let waiting_cat = Participant {
            service_type: ServiceType::WaitingRoom,
            ..person("c", "Cat", Role::Guest)
        };
        at(
            &mut session,
            &mut state,
            30.0,
            Event::Participant(bob.clone()),
        );
        at(
            &mut session,
            &mut state,
            60.0,
            Event::Participant(waiting_cat),
        );
        at(
            &mut session,
            &mut state,
            90.0,
            Event::Participant(person("c", "Cat", Role::Guest)),
        );
        let hand = Participant {
            buzz_time: T0 + 100.0,
            ..bob.clone()
        };
        at(&mut session, &mut state, 100.0, Event::Participant(hand));
        at(
            &mut session,
            &mut state,
            130.0,
            Event::Participant(bob.clone()),
        );
        let voice = |uuid: &str| {
            Event::Stage(vec![StageEntry {
                participant_uuid: uuid.into(),
                stage_index: 0,
                vad: 100,
            }])
        };
        at(&mut session, &mut state, 130.0, voice("b"));
        at(&mut session, &mut state, 150.0, voice("a"));
        at(
            &mut session,
            &mut state,
            150.0,
            Event::PresentationStart(Presentation {
                presenter_name: "Ada".into(),
                presenter_uri: String::new(),
                presenter_uuid: Some("a".into()),
            }),
        );
        let lock = |locked| {
            Event::RoomUpdate(FlagsUpdate {
                locked: Some(locked),
                ..FlagsUpdate::default()
            })
        };
        at(&mut session, &mut state, 200.0, lock(true));
        at(&mut session, &mut state, 210.0, Event::PresentationStop);
        at(&mut session, &mut state, 230.0, lock(false));
        at(
            &mut session,
            &mut state,
            240.0,
            Event::ParticipantLeft { uuid: "b".into() },
        );
        let report = session.finish(T0 + 300.0, zone());

        assert_eq!(report.start, "2026-11-22T14:00:00+08:00");
        assert_eq!(report.seconds, 300.0);
        let minutes: Vec<usize> = report.attendance.minutes.iter().map(|m| m.people).collect();
        assert_eq!(
            minutes,
            [2, 3, 3, 3, 2],
            "one point per minute, the peak in it"
        );
        assert_eq!(report.attendance.peak, 3);
        assert_eq!(report.attendance.peak_at, "2026-11-22T14:01:30+08:00");
        // 1 for 30 s, 2 for 60 s, 3 for 150 s, 2 for 60 s: 720 / 300.
        assert_eq!(report.attendance.average, 2.4);

        let by_name = |name: &str| {
            report
                .participants
                .iter()
                .find(|p| p.name == name)
                .unwrap_or_else(|| panic!("{name} in the report"))
        };
        let ada = by_name("Ada");
        assert_eq!(ada.role, "host");
        assert_eq!(ada.stays.len(), 1);
        assert_eq!(ada.stays[0].left, None, "Ada was there at the end");
        assert_eq!(ada.in_room_seconds, 300.0);
        assert_eq!(ada.floor_seconds, 150.0);
        assert_eq!(ada.presenting_seconds, 60.0);
        let bob = by_name("Bob");
        assert_eq!(bob.in_room_seconds, 210.0);
        assert_eq!(
            bob.stays[0].left.as_deref(),
            Some("2026-11-22T14:04:00+08:00")
        );
        assert_eq!((bob.hands_raised, bob.hand_seconds), (1, 30.0));
        assert_eq!(bob.floor_seconds, 20.0);
        let cat = by_name("Cat");
        assert_eq!(cat.waiting_seconds, 30.0);
        assert_eq!(cat.in_room_seconds, 210.0);

        assert_eq!(report.presentations.len(), 1);
        assert_eq!(report.presentations[0].who.as_deref(), Some("Ada"));
        assert_eq!(report.presentations[0].seconds, 60.0);
        assert_eq!(report.locks.len(), 1);
        assert_eq!(report.locks[0].start, "2026-11-22T14:03:20+08:00");
        assert_eq!(report.locks[0].seconds, 30.0);
    }

    #[test]
    fn commands_group_by_rule_in_time_order() {
        use crate::model::{Command, ParticipantCommand, Target};
        use crate::rules::{Intent, Trigger};
        use crate::runtime::audit::Outcome;
        let (_, mut session) = synced(&[]);
        let mute = |name: &str| Intent {
            rule: "auto_mute_guests".into(),
            command: Command::participant(name, name, ParticipantCommand::Mute),
            trigger: Arc::new(Trigger {
                handler: "on_join".into(),
                event: "participant_create".into(),
                participant: Some(Target {
                    uuid: name.into(),
                    name: name.into(),
                }),
            }),
            shadow: false,
        };
        let late = AuditRecord::for_intent("hall", &mute("Cat"), Outcome::Failed, T0 + 20.0);
        let early = AuditRecord::for_intent("hall", &mute("Bob"), Outcome::Ok, T0 + 10.0);
        session.command(&late);
        session.command(&early);
        session.rule_failed(
            "lock_when_full",
            "on_join",
            "rules/x.rhai:1:1: oops",
            T0 + 5.0,
        );
        let report = session.finish(T0 + 60.0, zone());
        assert_eq!(report.commands.len(), 1);
        let rule = &report.commands[0];
        assert_eq!(rule.rule, "auto_mute_guests");
        assert_eq!(rule.outcomes.get("ok"), Some(&1));
        assert_eq!(rule.outcomes.get("failed"), Some(&1));
        let texts: Vec<&str> = rule.commands.iter().map(|c| c.text.as_str()).collect();
        assert_eq!(texts, ["mute Bob", "mute Cat"]);
        assert_eq!(rule.commands[0].why, "on_join(Bob)");
        assert_eq!(report.rule_errors[0].time, "2026-11-22T14:00:05+08:00");
    }

    #[test]
    fn people_already_there_count_from_the_start() {
        let (state, session) = synced(&[
            person("a", "Ada", Role::Chair),
            person("b", "Bob", Role::Guest),
        ]);
        assert_eq!(state.count(), 2);
        let report = session.finish(T0 + 120.0, zone());
        let minutes: Vec<usize> = report.attendance.minutes.iter().map(|m| m.people).collect();
        assert_eq!(minutes, [2, 2]);
        assert_eq!(report.attendance.average, 2.0);
        assert!(
            report
                .participants
                .iter()
                .all(|p| p.in_room_seconds == 120.0)
        );
    }
}
