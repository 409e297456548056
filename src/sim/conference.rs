//! One simulated conference: a pure, deterministic state machine.
//!
//! [`Conference`] holds a room's roster and flags and answers two kinds of
//! input with exactly the events a real platform would send:
//!
//! - [`Step`]s: things people do (join, leave, present, speak, chat, …);
//! - [`Command`]s: what an API client asks for (mute, lock, dial, …).
//!
//! It does no I/O and has no clock: every call takes `now` in UNIX seconds.
//! The HTTP simulator, the rule-test runner, the demo and the benchmarks all
//! drive the same machine. A change that changes nothing (muting the muted,
//! locking the locked) succeeds and emits nothing.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::{Value, json};

use super::step::{Chat, Joiner, Step};
use crate::model::{
    CallDirection, CallRequest, ChatMessage, Command, ConferenceCommand, Dial, Event, FlagsUpdate,
    Layout, LayoutOverride, Message, Participant, ParticipantCommand, Presentation, Role,
    RoomFlags, RxPresentationPolicy, ServiceType, StageEntry,
};

/// The domain of addresses made up for participants who give none.
const SIM_DOMAIN: &str = "sim.usher.test";

/// How many recent speakers the stage remembers (the largest layout shows 23).
const STAGE_SIZE: usize = 24;

/// Who sent a command: the participant of the API session that called.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// The session participant's uuid.
    pub uuid: String,
    /// The session participant's display name.
    pub name: String,
}

/// What a command that worked answers, and the events it caused.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandReply {
    /// The reply's `result`: `true` for most commands, the new uuids for `dial`.
    pub result: Value,
    /// The events to send to every stream of the room, in order.
    pub events: Vec<Event>,
}

/// Why a step or command could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SimError {
    /// Nobody with this uuid (commands) or name (steps) is in the conference;
    /// the HTTP server answers 404.
    #[error("no participant {0:?} in the conference")]
    UnknownParticipant(String),
    /// No room with this alias is simulated.
    #[error("no room {0:?} is simulated")]
    UnknownRoom(String),
    /// The platform refuses the request; the HTTP server answers 200 with
    /// status `failed` and this reason.
    #[error("{0}")]
    Rejected(String),
}

/// One room: its roster in arrival order, flags, stage, presenter and layout.
#[derive(Debug, Clone)]
pub struct Conference {
    alias: String,
    /// Visible participants by arrival sequence.
    roster: BTreeMap<u64, Participant>,
    /// uuid → arrival sequence, for visible participants.
    index: HashMap<String, u64>,
    /// API session participants that asked to stay out of the roster.
    hidden: HashMap<String, Participant>,
    next_seq: u64,
    flags: RoomFlags,
    /// Recent speakers' uuids, most recent first.
    stage: Vec<String>,
    presenter: Option<String>,
    layout: Option<Layout>,
    rng: fastrand::Rng,
}

impl Conference {
    /// An empty conference. Its uuids depend only on the alias, so two runs
    /// of the same steps produce the same events.
    pub fn new(alias: &str) -> Self {
        Self::with_seed(alias, fnv1a(alias.as_bytes()))
    }

    /// An empty conference whose uuids come from `seed`.
    pub fn with_seed(alias: &str, seed: u64) -> Self {
        Conference {
            alias: alias.to_owned(),
            roster: BTreeMap::new(),
            index: HashMap::new(),
            hidden: HashMap::new(),
            next_seq: 0,
            flags: RoomFlags::default(),
            stage: Vec::new(),
            presenter: None,
            layout: None,
            rng: fastrand::Rng::with_seed(seed),
        }
    }

    /// The conference alias.
    pub fn alias(&self) -> &str {
        &self.alias
    }

    /// Conference flags: locked, guests muted, started.
    pub fn flags(&self) -> RoomFlags {
        self.flags
    }

    /// Visible participants (waiting ones included), in arrival order.
    pub fn participants(&self) -> impl Iterator<Item = &Participant> {
        self.roster.values()
    }

    /// How many visible participants there are.
    pub fn len(&self) -> usize {
        self.roster.len()
    }

    /// True when nobody visible is in the conference.
    pub fn is_empty(&self) -> bool {
        self.roster.is_empty()
    }

    /// The visible participant with this uuid.
    pub fn participant(&self, uuid: &str) -> Option<&Participant> {
        self.index.get(uuid).and_then(|seq| self.roster.get(seq))
    }

    /// The first visible participant, in arrival order, with this display
    /// name (ignoring case).
    pub fn find(&self, name: &str) -> Option<&Participant> {
        self.participants()
            .find(|p| p.display_name.eq_ignore_ascii_case(name))
    }

    /// True when a participant with this uuid is in the conference, hidden
    /// session participants included.
    pub fn contains(&self, uuid: &str) -> bool {
        self.index.contains_key(uuid) || self.hidden.contains_key(uuid)
    }

    /// The current presenter.
    pub fn presenter(&self) -> Option<&Participant> {
        self.presenter
            .as_deref()
            .and_then(|uuid| self.participant(uuid))
    }

    /// The layout last announced, if any.
    pub fn layout(&self) -> Option<&Layout> {
        self.layout.as_ref()
    }

    /// What a new subscriber hears first: everyone visible, as a roster.
    pub fn roster(&self) -> Event {
        Event::Roster(self.participants().cloned().collect())
    }

    /// Adds the participant of a new API session: protocol `api`, role
    /// chair, no media. A hidden one never appears in the roster or in any
    /// event, but can still send commands and chat. Returns its uuid and the
    /// events its arrival caused.
    pub fn add_session_participant(
        &mut self,
        name: &str,
        hidden: bool,
        now: f64,
    ) -> (String, Vec<Event>) {
        let uuid = self.new_uuid();
        let participant = Participant {
            uuid: uuid.clone(),
            display_name: name.to_owned(),
            role: Role::Chair,
            service_type: ServiceType::Conference,
            protocol: "api".to_owned(),
            call_direction: CallDirection::In,
            uri: name.to_owned(),
            local_alias: self.alias.clone(),
            vendor: "usher-sim API client".to_owned(),
            start_time: now,
            rx_presentation_policy: RxPresentationPolicy::Allow,
            ..Participant::default()
        };
        if hidden {
            self.hidden.insert(uuid.clone(), participant);
            return (uuid, Vec::new());
        }
        let event = self.insert(participant);
        (uuid, vec![event])
    }

    /// Removes a participant, hidden or not, as if they hung up. Unknown
    /// uuids are ignored.
    pub fn remove_participant(&mut self, uuid: &str) -> Vec<Event> {
        if self.hidden.remove(uuid).is_some() {
            return Vec::new();
        }
        self.leave(uuid)
    }

    /// Applies one step and returns the events it caused.
    pub fn apply_step(&mut self, step: &Step, now: f64) -> Result<Vec<Event>, SimError> {
        let events = match step {
            Step::Join(joiner) => {
                let waits = joiner.role == Role::Guest && self.flags.locked;
                let service_type = if waits {
                    ServiceType::WaitingRoom
                } else {
                    ServiceType::Conference
                };
                let participant = self.new_participant(joiner, service_type, now);
                vec![self.insert(participant)]
            }
            Step::WaitingRoom(joiner) => {
                let participant = self.new_participant(joiner, ServiceType::WaitingRoom, now);
                vec![self.insert(participant)]
            }
            Step::Leave(name) => {
                let uuid = self.uuid_of(name)?;
                self.leave(&uuid)
            }
            Step::Present(name) => {
                let uuid = self.uuid_of(name)?;
                self.present(&uuid)
            }
            Step::StopPresenting => self.stop_presenting(),
            Step::Speak(name) => {
                let uuid = self.uuid_of(name)?;
                self.stage.retain(|speaker| *speaker != uuid);
                self.stage.insert(0, uuid);
                self.stage.truncate(STAGE_SIZE);
                vec![self.stage_event(true)]
            }
            Step::Silence => vec![self.stage_event(false)],
            Step::Chat(Chat { from, text }) => {
                let uuid = self.uuid_of(from)?;
                let origin = self.participant(&uuid).map(|p| p.display_name.clone());
                vec![Event::Message(ChatMessage {
                    origin: origin.unwrap_or_default(),
                    uuid,
                    mime_type: "text/plain".to_owned(),
                    payload: text.clone(),
                    direct: false,
                })]
            }
            Step::RaiseHand(name) => {
                let uuid = self.uuid_of(name)?;
                self.update(&uuid, |p| {
                    if p.buzz_time == 0.0 {
                        p.buzz_time = now;
                    }
                })
            }
            Step::LowerHand(name) => {
                let uuid = self.uuid_of(name)?;
                self.update(&uuid, |p| p.buzz_time = 0.0)
            }
            Step::Layout(view) => vec![self.layout_event(view, &[], true)],
            Step::Spotlight(name) => self.by_hand(name, ParticipantCommand::SpotlightOn, now)?,
            Step::Unspotlight(name) => self.by_hand(name, ParticipantCommand::SpotlightOff, now)?,
            Step::Mute(name) => self.by_hand(name, ParticipantCommand::Mute, now)?,
            Step::Unmute(name) => self.by_hand(name, ParticipantCommand::Unmute, now)?,
            Step::Lock => self.host_command(Command::Conference(ConferenceCommand::Lock), now)?,
            Step::Unlock => {
                self.host_command(Command::Conference(ConferenceCommand::Unlock), now)?
            }
            Step::Wait(_) => Vec::new(),
        };
        Ok(events)
    }

    /// A host does something to a participant from their own client.
    fn by_hand(
        &mut self,
        name: &str,
        action: ParticipantCommand,
        now: f64,
    ) -> Result<Vec<Event>, SimError> {
        let uuid = self.uuid_of(name)?;
        self.host_command(Command::participant(&uuid, name, action), now)
    }

    /// A command a host sends from their own client rather than the API.
    fn host_command(&mut self, command: Command, now: f64) -> Result<Vec<Event>, SimError> {
        let host = Actor {
            uuid: String::new(),
            name: "a host".to_owned(),
        };
        Ok(self.apply_command(&host, &command, now)?.events)
    }

    /// Applies one command sent by `actor` and returns the reply and events.
    pub fn apply_command(
        &mut self,
        actor: &Actor,
        command: &Command,
        now: f64,
    ) -> Result<CommandReply, SimError> {
        match command {
            Command::Conference(command) => self.conference_command(actor, command, now),
            Command::Participant { target, action } => {
                if !self.index.contains_key(&target.uuid) {
                    return Err(SimError::UnknownParticipant(target.uuid.clone()));
                }
                self.participant_command(&target.uuid, action, now)
            }
        }
    }

    fn conference_command(
        &mut self,
        actor: &Actor,
        command: &ConferenceCommand,
        now: f64,
    ) -> Result<CommandReply, SimError> {
        let events = match command {
            ConferenceCommand::Dial(dial) => return self.dial(dial, now),
            ConferenceCommand::Lock => self.set_flags(|flags| flags.locked = true),
            ConferenceCommand::Unlock => self.set_flags(|flags| flags.locked = false),
            ConferenceCommand::StartService => self.set_flags(|flags| flags.started = true),
            ConferenceCommand::MuteGuests => self.mute_guests(true),
            ConferenceCommand::UnmuteGuests => self.mute_guests(false),
            ConferenceCommand::Disconnect => self.disconnect_everyone(),
            ConferenceCommand::Message(Message { mime_type, payload }) => {
                vec![Event::Message(ChatMessage {
                    origin: actor.name.clone(),
                    uuid: actor.uuid.clone(),
                    mime_type: mime_type.clone(),
                    payload: payload.clone(),
                    direct: false,
                })]
            }
            ConferenceCommand::OverrideLayout(layouts) => {
                let chosen: &LayoutOverride = layouts
                    .iter()
                    .find(|layout| layout.audience.is_empty())
                    .or_else(|| layouts.first())
                    .ok_or_else(|| SimError::Rejected("`layouts` is empty".to_owned()))?;
                vec![self.layout_event(&chosen.layout, &chosen.actors, chosen.vad_backfill)]
            }
        };
        Ok(success(events))
    }

    fn participant_command(
        &mut self,
        uuid: &str,
        action: &ParticipantCommand,
        now: f64,
    ) -> Result<CommandReply, SimError> {
        let events = match action {
            ParticipantCommand::Disconnect
            | ParticipantCommand::Transfer(_)
            | ParticipantCommand::Ban { .. } => self.leave(uuid),
            ParticipantCommand::Mute => self.update(uuid, |p| p.muted = true),
            ParticipantCommand::Unmute => self.update(uuid, |p| p.muted = false),
            ParticipantCommand::AllowRxPresentation => self.update(uuid, |p| {
                p.rx_presentation_policy = RxPresentationPolicy::Allow;
            }),
            ParticipantCommand::DenyRxPresentation => self.update(uuid, |p| {
                p.rx_presentation_policy = RxPresentationPolicy::Deny;
            }),
            ParticipantCommand::SpotlightOn => self.update(uuid, |p| {
                if p.spotlight == 0.0 {
                    p.spotlight = now;
                }
            }),
            ParticipantCommand::SpotlightOff => self.update(uuid, |p| p.spotlight = 0.0),
            ParticipantCommand::Admit => self.update(uuid, |p| {
                if p.is_waiting() {
                    p.service_type = ServiceType::Conference;
                }
            }),
            ParticipantCommand::SetRole(role) => {
                if !matches!(role, Role::Chair | Role::Guest) {
                    return Err(SimError::Rejected(format!(
                        "unknown role `{role}`; use chair or guest"
                    )));
                }
                self.update(uuid, |p| p.role = role.clone())
            }
            ParticipantCommand::VideoMute => self.update(uuid, |p| p.video_muted = true),
            ParticipantCommand::VideoUnmute => self.update(uuid, |p| p.video_muted = false),
            ParticipantCommand::Calls(call) => {
                return Ok(CommandReply {
                    result: self.new_call(call)?,
                    events: Vec::new(),
                });
            }
            ParticipantCommand::Dtmf { .. }
            | ParticipantCommand::CancelDelay
            | ParticipantCommand::ResumeDelay => Vec::new(),
        };
        Ok(success(events))
    }

    fn dial(&mut self, dial: &Dial, now: f64) -> Result<CommandReply, SimError> {
        if dial.destination.trim().is_empty() {
            return Err(SimError::Rejected("`destination` is empty".to_owned()));
        }
        if !matches!(dial.role, Role::Chair | Role::Guest) {
            return Err(SimError::Rejected(format!(
                "unknown role `{}`; use chair or guest",
                dial.role
            )));
        }
        let audio_only = dial.call_type.as_deref() == Some("audio");
        let joiner = Joiner {
            name: dial
                .remote_display_name
                .clone()
                .filter(|name| !name.is_empty())
                .unwrap_or_else(|| dial.destination.clone()),
            role: dial.role.clone(),
            muted: false,
            audio_only,
            protocol: dial.protocol.clone(),
            uri: Some(dial.destination.clone()),
        };
        let mut participant = self.new_participant(&joiner, ServiceType::Connecting, now);
        participant.call_direction = CallDirection::Out;
        let uuid = participant.uuid.clone();
        let created = self.insert(participant);
        let connected = self.update(&uuid, |p| p.service_type = ServiceType::Conference);
        let mut events = vec![created];
        events.extend(connected);
        Ok(CommandReply {
            result: json!([uuid]),
            events,
        })
    }

    fn new_call(&mut self, call: &CallRequest) -> Result<Value, SimError> {
        let call_uuid = self.new_uuid();
        if call.call_type.eq_ignore_ascii_case("webrtc") {
            Ok(json!({
                "call_uuid": call_uuid,
                "sdp": "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=usher-sim\r\nt=0 0\r\n",
            }))
        } else if call.call_type.eq_ignore_ascii_case("rtmp") {
            Ok(json!({
                "call_uuid": call_uuid,
                "url": format!("rtmp://127.0.0.1:40002/sim/{call_uuid}"),
                "secure_url": format!("rtmps://127.0.0.1:40003/sim/{call_uuid}"),
            }))
        } else {
            Err(SimError::Rejected(format!(
                "unsupported call_type `{}`; use WEBRTC or RTMP",
                call.call_type
            )))
        }
    }

    fn new_participant(
        &mut self,
        joiner: &Joiner,
        service_type: ServiceType,
        now: f64,
    ) -> Participant {
        let muted = joiner.muted || (joiner.role == Role::Guest && self.flags.guests_muted);
        Participant {
            uuid: self.new_uuid(),
            display_name: joiner.name.clone(),
            role: joiner.role.clone(),
            muted,
            service_type,
            protocol: participant_protocol(&joiner.protocol).to_owned(),
            call_direction: CallDirection::In,
            uri: joiner
                .uri
                .clone()
                .unwrap_or_else(|| address_for(&joiner.name)),
            local_alias: self.alias.clone(),
            vendor: vendor_for(&joiner.protocol).to_owned(),
            start_time: now,
            rx_presentation_policy: RxPresentationPolicy::Allow,
            has_media: true,
            audio_only: joiner.audio_only,
            video_call: !joiner.audio_only,
            ..Participant::default()
        }
    }

    /// A fresh random uuid (version 4 layout) not used in this conference.
    fn new_uuid(&mut self) -> String {
        loop {
            let high = self.rng.u64(..);
            let low = self.rng.u64(..);
            let uuid = format!(
                "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
                high >> 32,
                (high >> 16) & 0xffff,
                high & 0x0fff,
                0x8000 | ((low >> 48) & 0x3fff),
                low & 0xffff_ffff_ffff,
            );
            if !self.contains(&uuid) {
                return uuid;
            }
        }
    }

    fn insert(&mut self, participant: Participant) -> Event {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.index.insert(participant.uuid.clone(), seq);
        let event = Event::Participant(participant.clone());
        self.roster.insert(seq, participant);
        event
    }

    /// Changes a visible participant; returns its `participant_update` if
    /// anything changed.
    fn update(&mut self, uuid: &str, change: impl FnOnce(&mut Participant)) -> Vec<Event> {
        let Some(participant) = self
            .index
            .get(uuid)
            .and_then(|seq| self.roster.get_mut(seq))
        else {
            return Vec::new();
        };
        let before = participant.clone();
        change(participant);
        if *participant == before {
            Vec::new()
        } else {
            vec![Event::Participant(participant.clone())]
        }
    }

    fn uuid_of(&self, name: &str) -> Result<String, SimError> {
        self.find(name)
            .map(|p| p.uuid.clone())
            .ok_or_else(|| SimError::UnknownParticipant(name.to_owned()))
    }

    /// A visible participant leaves: the presentation stops first if theirs.
    fn leave(&mut self, uuid: &str) -> Vec<Event> {
        let Some(seq) = self.index.remove(uuid) else {
            return Vec::new();
        };
        self.roster.remove(&seq);
        self.stage.retain(|speaker| speaker != uuid);
        let mut events = Vec::new();
        if self.presenter.as_deref() == Some(uuid) {
            self.presenter = None;
            events.push(Event::PresentationStop);
        }
        events.push(Event::ParticipantLeft {
            uuid: uuid.to_owned(),
        });
        events
    }

    fn present(&mut self, uuid: &str) -> Vec<Event> {
        if self.presenter.as_deref() == Some(uuid) {
            return Vec::new();
        }
        let mut events = Vec::new();
        if let Some(previous) = self.presenter.take() {
            events.extend(self.update(&previous, |p| p.presenting = false));
        }
        self.presenter = Some(uuid.to_owned());
        let presenter = self
            .participant(uuid)
            .map(|p| Presentation {
                presenter_name: p.display_name.clone(),
                presenter_uri: p.uri.clone(),
                presenter_uuid: Some(p.uuid.clone()),
            })
            .unwrap_or_default();
        events.push(Event::PresentationStart(presenter));
        events.extend(self.update(uuid, |p| p.presenting = true));
        events
    }

    fn stop_presenting(&mut self) -> Vec<Event> {
        let Some(presenter) = self.presenter.take() else {
            return Vec::new();
        };
        let mut events = vec![Event::PresentationStop];
        events.extend(self.update(&presenter, |p| p.presenting = false));
        events
    }

    fn stage_event(&self, first_is_speaking: bool) -> Event {
        Event::Stage(
            self.stage
                .iter()
                .enumerate()
                .map(|(index, uuid)| StageEntry {
                    participant_uuid: uuid.clone(),
                    stage_index: index as i64,
                    vad: if index == 0 && first_is_speaking {
                        100
                    } else {
                        0
                    },
                })
                .collect(),
        )
    }

    /// A `layout` event for `view`: the actors first, then (with backfill)
    /// the stage, or the roster when nobody has spoken yet; as many as the
    /// view has tiles when the view says (`1:7` has eight).
    fn layout_event(&mut self, view: &str, actors: &[String], backfill: bool) -> Event {
        let tiles = tile_count(view).unwrap_or(usize::MAX);
        let mut seen = HashSet::new();
        let fill: Vec<&str> = if !backfill {
            Vec::new()
        } else if self.stage.is_empty() {
            self.participants()
                .filter(|p| p.in_room())
                .map(|p| p.uuid.as_str())
                .collect()
        } else {
            self.stage.iter().map(String::as_str).collect()
        };
        let participants: Vec<String> = actors
            .iter()
            .map(String::as_str)
            .filter(|uuid| self.index.contains_key(*uuid))
            .chain(fill)
            .filter(|uuid| seen.insert(*uuid))
            .take(tiles)
            .map(str::to_owned)
            .collect();
        let layout = Layout {
            view: view.to_owned(),
            participants,
        };
        self.layout = Some(layout.clone());
        Event::Layout(layout)
    }

    fn set_flags(&mut self, change: impl FnOnce(&mut RoomFlags)) -> Vec<Event> {
        let before = self.flags;
        change(&mut self.flags);
        if self.flags == before {
            Vec::new()
        } else {
            vec![self.service_update()]
        }
    }

    fn service_update(&self) -> Event {
        Event::RoomUpdate(FlagsUpdate {
            locked: Some(self.flags.locked),
            guests_muted: Some(self.flags.guests_muted),
            started: Some(self.flags.started),
        })
    }

    fn mute_guests(&mut self, muted: bool) -> Vec<Event> {
        let mut events = self.set_flags(|flags| flags.guests_muted = muted);
        let guests: Vec<String> = self
            .participants()
            .filter(|p| p.is_guest() && p.muted != muted)
            .map(|p| p.uuid.clone())
            .collect();
        for uuid in guests {
            events.extend(self.update(&uuid, |p| p.muted = muted));
        }
        events
    }

    fn disconnect_everyone(&mut self) -> Vec<Event> {
        let mut events = Vec::new();
        if self.presenter.take().is_some() {
            events.push(Event::PresentationStop);
        }
        events.extend(
            self.participants()
                .map(|p| Event::ParticipantLeft {
                    uuid: p.uuid.clone(),
                })
                .collect::<Vec<_>>(),
        );
        self.roster.clear();
        self.index.clear();
        self.hidden.clear();
        self.stage.clear();
        // The conference is over, and no one is left to tell: the next one
        // begins unlocked and not started.
        self.flags = RoomFlags::default();
        events
    }
}

fn success(events: Vec<Event>) -> CommandReply {
    CommandReply {
        result: Value::Bool(true),
        events,
    }
}

/// An address made from a name: `Prof. Ada Lovelace` → `prof.ada.lovelace@sim.usher.test`.
fn address_for(name: &str) -> String {
    let local: Vec<String> = name
        .split(|c: char| !c.is_alphanumeric())
        .filter(|word| !word.is_empty())
        .map(str::to_lowercase)
        .collect();
    let local = if local.is_empty() {
        "anonymous".to_owned()
    } else {
        local.join(".")
    };
    format!("{local}@{SIM_DOMAIN}")
}

/// The protocol a participant shows for a call asked for with `requested`.
/// Participants are only ever `api`, `webrtc`, `sip`, `rtmp`, `h323` or
/// `mssip`: a phone call reaches the room through a SIP gateway, and `auto`
/// (or anything else) resolves to SIP.
fn participant_protocol(requested: &str) -> &'static str {
    match requested.to_ascii_lowercase().as_str() {
        "api" => "api",
        "webrtc" => "webrtc",
        "rtmp" => "rtmp",
        "h323" => "h323",
        "mssip" => "mssip",
        _ => "sip",
    }
}

/// A plausible endpoint vendor string for a protocol.
fn vendor_for(protocol: &str) -> &'static str {
    match protocol.to_ascii_lowercase().as_str() {
        "webrtc" => {
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Webapp3/7.0.0"
        }
        "sip" => "Cisco Codec Pro CE11.9",
        "h323" => "Polycom RealPresence Group 500",
        "rtmp" => "Lavf58.29.100",
        "phone" => "PSTN gateway",
        "mssip" => "Microsoft Lync 2013",
        _ => "usher-sim endpoint",
    }
}

/// Tiles in a `main:others` view (`1:7` → 8); `None` for other names.
fn tile_count(view: &str) -> Option<usize> {
    let (main, others) = view.split_once(':')?;
    Some(main.trim().parse::<usize>().ok()? + others.trim().parse::<usize>().ok()?)
}

/// FNV-1a: a small, stable hash for seeding from an alias.
pub(super) fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Target, Transfer};
    use crate::platform::vmr::codec::participant_json;

    const T0: f64 = 1_700_000_000.0;

    fn actor() -> Actor {
        Actor {
            uuid: "api-uuid".into(),
            name: "usher".into(),
        }
    }

    /// A room with host Ada and guest Bob, both in.
    fn room() -> Conference {
        let mut c = Conference::new("lecture@usher.example");
        c.apply_step(&Step::Join(Joiner::host("Ada")), T0).unwrap();
        c.apply_step(&Step::Join(Joiner::guest("Bob")), T0).unwrap();
        c
    }

    fn uuid(c: &Conference, name: &str) -> String {
        c.find(name).unwrap().uuid.clone()
    }

    fn names(events: &[Event]) -> Vec<&str> {
        events.iter().map(Event::kind).collect()
    }

    fn updated(event: &Event) -> &Participant {
        match event {
            Event::Participant(p) => p,
            other => panic!("expected participant_update, got {other:?}"),
        }
    }

    fn created(event: &Event) -> &Participant {
        match event {
            Event::Participant(p) => p,
            other => panic!("expected participant_create, got {other:?}"),
        }
    }

    fn conference(c: &mut Conference, command: ConferenceCommand) -> CommandReply {
        c.apply_command(&actor(), &Command::Conference(command), T0 + 1.0)
            .unwrap()
    }

    fn on(c: &mut Conference, name: &str, action: ParticipantCommand) -> CommandReply {
        let uuid = uuid(c, name);
        c.apply_command(
            &actor(),
            &Command::participant(&uuid, name, action),
            T0 + 1.0,
        )
        .unwrap()
    }

    fn step(c: &mut Conference, step: Step) -> Vec<Event> {
        c.apply_step(&step, T0 + 2.0).unwrap()
    }

    #[test]
    fn join_creates_a_realistic_participant() {
        let mut c = Conference::new("lecture@usher.example");
        let events = step(&mut c, Step::Join(Joiner::guest("Prof. Ada Lovelace")));
        assert_eq!(names(&events), ["participant"]);
        let p = created(&events[0]);
        assert_eq!(p.uuid.len(), 36);
        assert_eq!(
            p.uuid.split('-').map(str::len).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
        assert!(p.uuid.chars().all(|ch| ch == '-' || ch.is_ascii_hexdigit()));
        assert_eq!(p.uri, "prof.ada.lovelace@sim.usher.test");
        assert_eq!(p.protocol, "webrtc");
        assert_eq!(p.start_time, T0 + 2.0);
        assert_eq!(p.call_direction, CallDirection::In);
        assert_eq!(p.service_type, ServiceType::Conference);
        assert_eq!(p.local_alias, "lecture@usher.example");
        assert!(p.has_media && p.video_call && !p.audio_only && !p.muted);
        assert!(!p.vendor.is_empty());
        let wire = participant_json(updated(&events[0]));
        assert_eq!(wire["is_video_call"], "YES");
        assert_eq!(wire["is_muted"], "NO");
        assert_eq!(c.participants().count(), 1);
    }

    #[test]
    fn join_details_are_honoured() {
        let mut c = Conference::new("r");
        let joiner = Joiner {
            muted: true,
            audio_only: true,
            protocol: "sip".into(),
            uri: Some("carl@example.com".into()),
            ..Joiner::host("Carl")
        };
        let events = step(&mut c, Step::Join(joiner));
        let p = created(&events[0]);
        assert!(p.muted && p.audio_only && !p.video_call && p.is_host());
        assert_eq!(p.uri, "carl@example.com");
        assert_eq!(p.protocol, "sip");
    }

    #[test]
    fn uuids_are_unique_and_deterministic() {
        let run = || {
            let mut c = Conference::new("r");
            (0..50)
                .map(|i| {
                    let events = step(&mut c, Step::Join(Joiner::guest(format!("g{i}"))));
                    created(&events[0]).uuid.clone()
                })
                .collect::<Vec<_>>()
        };
        let first = run();
        assert_eq!(first, run());
        assert_eq!(first.iter().collect::<HashSet<_>>().len(), 50);
        let other = Conference::with_seed("r", 7).new_uuid();
        assert!(!first.contains(&other));
    }

    #[test]
    fn locked_rooms_send_guests_to_the_waiting_room_but_not_hosts() {
        let mut c = room();
        let events = conference(&mut c, ConferenceCommand::Lock).events;
        assert_eq!(names(&events), ["room_update"]);
        let guest = step(&mut c, Step::Join(Joiner::guest("Carl")));
        assert_eq!(created(&guest[0]).service_type, ServiceType::WaitingRoom);
        let host = step(&mut c, Step::Join(Joiner::host("Dee")));
        assert_eq!(created(&host[0]).service_type, ServiceType::Conference);
    }

    #[test]
    fn waiting_room_step_ignores_the_lock() {
        let mut c = room();
        let events = step(&mut c, Step::WaitingRoom(Joiner::guest("Carl")));
        assert_eq!(created(&events[0]).service_type, ServiceType::WaitingRoom);
        assert!(c.find("Carl").unwrap().is_waiting());
    }

    #[test]
    fn guests_join_muted_while_guests_are_muted() {
        let mut c = room();
        conference(&mut c, ConferenceCommand::MuteGuests);
        let guest = step(&mut c, Step::Join(Joiner::guest("Carl")));
        assert!(created(&guest[0]).muted);
        let host = step(&mut c, Step::Join(Joiner::host("Dee")));
        assert!(!created(&host[0]).muted);
    }

    #[test]
    fn leave_deletes_and_stops_a_presentation_first() {
        let mut c = room();
        let bob = uuid(&c, "Bob");
        assert_eq!(
            step(&mut c, Step::Leave("Bob".into())),
            [Event::ParticipantLeft { uuid: bob }]
        );
        step(&mut c, Step::Present("Ada".into()));
        let ada = uuid(&c, "Ada");
        assert_eq!(
            step(&mut c, Step::Leave("Ada".into())),
            [
                Event::PresentationStop,
                Event::ParticipantLeft { uuid: ada }
            ]
        );
        assert!(c.is_empty() && c.presenter().is_none());
    }

    #[test]
    fn present_takes_over_from_the_current_presenter() {
        let mut c = room();
        let events = step(&mut c, Step::Present("Ada".into()));
        assert_eq!(names(&events), ["presentation_start", "participant"]);
        let Event::PresentationStart(start) = &events[0] else {
            unreachable!()
        };
        assert_eq!(start.presenter_name, "Ada");
        assert_eq!(start.presenter_uri, "ada@sim.usher.test");
        assert_eq!(
            start.presenter_uuid.as_deref(),
            Some(uuid(&c, "Ada").as_str())
        );
        assert!(updated(&events[1]).presenting);

        let events = step(&mut c, Step::Present("Bob".into()));
        assert_eq!(
            names(&events),
            ["participant", "presentation_start", "participant"]
        );
        assert_eq!(updated(&events[0]).display_name, "Ada");
        assert!(!updated(&events[0]).presenting);
        assert!(updated(&events[2]).presenting);
        assert_eq!(c.presenter().unwrap().display_name, "Bob");
        assert!(step(&mut c, Step::Present("Bob".into())).is_empty());
    }

    #[test]
    fn stop_presenting_stops_and_updates() {
        let mut c = room();
        assert!(step(&mut c, Step::StopPresenting).is_empty());
        step(&mut c, Step::Present("Ada".into()));
        let events = step(&mut c, Step::StopPresenting);
        assert_eq!(names(&events), ["presentation_stop", "participant"]);
        assert!(!updated(&events[1]).presenting);
    }

    #[test]
    fn speak_and_silence_drive_the_stage() {
        let mut c = room();
        let (ada, bob) = (uuid(&c, "Ada"), uuid(&c, "Bob"));
        let entry = |uuid: &str, index, vad| StageEntry {
            participant_uuid: uuid.to_owned(),
            stage_index: index,
            vad,
        };
        assert_eq!(
            step(&mut c, Step::Speak("Ada".into())),
            [Event::Stage(vec![entry(&ada, 0, 100)])]
        );
        assert_eq!(
            step(&mut c, Step::Speak("Bob".into())),
            [Event::Stage(vec![entry(&bob, 0, 100), entry(&ada, 1, 0)])]
        );
        assert_eq!(
            step(&mut c, Step::Silence),
            [Event::Stage(vec![entry(&bob, 0, 0), entry(&ada, 1, 0)])]
        );
    }

    #[test]
    fn chat_sends_a_message_from_the_participant() {
        let mut c = room();
        let events = step(
            &mut c,
            Step::Chat(Chat {
                from: "bob".into(),
                text: "!lock".into(),
            }),
        );
        assert_eq!(
            events,
            [Event::Message(ChatMessage {
                origin: "Bob".into(),
                uuid: uuid(&c, "Bob"),
                mime_type: "text/plain".into(),
                payload: "!lock".into(),
                direct: false,
            })]
        );
    }

    #[test]
    fn hands_go_up_and_down() {
        let mut c = room();
        let events = step(&mut c, Step::RaiseHand("Bob".into()));
        assert_eq!(updated(&events[0]).buzz_time, T0 + 2.0);
        assert!(
            c.apply_step(&Step::RaiseHand("Bob".into()), T0 + 9.0)
                .unwrap()
                .is_empty()
        );
        let events = step(&mut c, Step::LowerHand("Bob".into()));
        assert_eq!(updated(&events[0]).buzz_time, 0.0);
        assert!(step(&mut c, Step::LowerHand("Bob".into())).is_empty());
    }

    #[test]
    fn layout_step_lists_the_roster_then_the_stage() {
        let mut c = room();
        let (ada, bob) = (uuid(&c, "Ada"), uuid(&c, "Bob"));
        step(&mut c, Step::WaitingRoom(Joiner::guest("Carl")));
        assert_eq!(
            step(&mut c, Step::Layout("1:7".into())),
            [Event::Layout(Layout {
                view: "1:7".into(),
                participants: vec![ada.clone(), bob.clone()],
            })]
        );
        step(&mut c, Step::Speak("Bob".into()));
        assert_eq!(
            step(&mut c, Step::Layout("1:0".into())),
            [Event::Layout(Layout {
                view: "1:0".into(),
                participants: vec![bob],
            })]
        );
        assert_eq!(c.layout().unwrap().view, "1:0");
    }

    #[test]
    fn wait_emits_nothing() {
        let mut c = room();
        assert!(step(&mut c, Step::Wait(crate::model::Span::secs(5))).is_empty());
    }

    #[test]
    fn steps_naming_someone_absent_fail() {
        let mut c = room();
        for bad in [
            Step::Leave("Zed".into()),
            Step::Present("Zed".into()),
            Step::Speak("Zed".into()),
            Step::RaiseHand("Zed".into()),
            Step::LowerHand("Zed".into()),
            Step::Chat(Chat {
                from: "Zed".into(),
                text: "hi".into(),
            }),
        ] {
            assert_eq!(
                c.apply_step(&bad, T0),
                Err(SimError::UnknownParticipant("Zed".into()))
            );
        }
    }

    #[test]
    fn mute_and_unmute_update_only_on_change() {
        let mut c = room();
        let reply = on(&mut c, "Bob", ParticipantCommand::Mute);
        assert_eq!(reply.result, Value::Bool(true));
        assert!(updated(&reply.events[0]).muted);
        let wire = participant_json(updated(&reply.events[0]));
        assert_eq!(wire["is_muted"], "YES");
        assert!(
            on(&mut c, "Bob", ParticipantCommand::Mute)
                .events
                .is_empty()
        );
        let reply = on(&mut c, "Bob", ParticipantCommand::Unmute);
        assert!(!updated(&reply.events[0]).muted);
    }

    #[test]
    fn muteguests_updates_flags_and_every_guest() {
        let mut c = room();
        step(&mut c, Step::Join(Joiner::guest("Carl")));
        on(&mut c, "Carl", ParticipantCommand::Mute);
        let events = conference(&mut c, ConferenceCommand::MuteGuests).events;
        assert_eq!(names(&events), ["room_update", "participant"]);
        assert_eq!(
            events[0],
            Event::RoomUpdate(FlagsUpdate {
                locked: Some(false),
                guests_muted: Some(true),
                started: Some(false),
            })
        );
        assert_eq!(updated(&events[1]).display_name, "Bob");
        assert!(c.flags().guests_muted);
        assert!(!c.find("Ada").unwrap().muted);

        let events = conference(&mut c, ConferenceCommand::UnmuteGuests).events;
        assert_eq!(
            names(&events),
            ["room_update", "participant", "participant"]
        );
        assert!(c.participants().all(|p| !p.muted));
    }

    #[test]
    fn lock_unlock_and_start_update_the_service() {
        let mut c = room();
        let events = conference(&mut c, ConferenceCommand::Lock).events;
        assert!(matches!(&events[..], [Event::RoomUpdate(f)] if f.locked == Some(true)));
        assert!(
            conference(&mut c, ConferenceCommand::Lock)
                .events
                .is_empty()
        );
        let events = conference(&mut c, ConferenceCommand::Unlock).events;
        assert!(matches!(&events[..], [Event::RoomUpdate(f)] if f.locked == Some(false)));
        let events = conference(&mut c, ConferenceCommand::StartService).events;
        assert!(matches!(&events[..], [Event::RoomUpdate(f)] if f.started == Some(true)));
        assert!(
            conference(&mut c, ConferenceCommand::StartService)
                .events
                .is_empty()
        );
        assert!(c.flags().started && !c.flags().locked);
    }

    #[test]
    fn admit_lets_a_waiting_participant_in() {
        let mut c = room();
        step(&mut c, Step::WaitingRoom(Joiner::guest("Carl")));
        let events = on(&mut c, "Carl", ParticipantCommand::Admit).events;
        assert_eq!(updated(&events[0]).service_type, ServiceType::Conference);
        let reply = on(&mut c, "Bob", ParticipantCommand::Admit);
        assert_eq!(reply.result, Value::Bool(true));
        assert!(reply.events.is_empty());
    }

    #[test]
    fn spotlight_records_when() {
        let mut c = room();
        let events = on(&mut c, "Bob", ParticipantCommand::SpotlightOn).events;
        assert_eq!(updated(&events[0]).spotlight, T0 + 1.0);
        let events = on(&mut c, "Bob", ParticipantCommand::SpotlightOff).events;
        assert_eq!(updated(&events[0]).spotlight, 0.0);
    }

    #[test]
    fn presentation_policy_video_mute_and_role() {
        let mut c = room();
        let events = on(&mut c, "Bob", ParticipantCommand::DenyRxPresentation).events;
        assert_eq!(
            updated(&events[0]).rx_presentation_policy,
            RxPresentationPolicy::Deny
        );
        let events = on(&mut c, "Bob", ParticipantCommand::AllowRxPresentation).events;
        assert_eq!(
            updated(&events[0]).rx_presentation_policy,
            RxPresentationPolicy::Allow
        );
        let events = on(&mut c, "Bob", ParticipantCommand::VideoMute).events;
        assert!(updated(&events[0]).video_muted);
        let events = on(&mut c, "Bob", ParticipantCommand::VideoUnmute).events;
        assert!(!updated(&events[0]).video_muted);
        let events = on(&mut c, "Bob", ParticipantCommand::SetRole(Role::Chair)).events;
        assert!(updated(&events[0]).is_host());
        let bob = uuid(&c, "Bob");
        let odd = Command::participant(&bob, "Bob", ParticipantCommand::SetRole(Role::parse("x")));
        assert!(matches!(
            c.apply_command(&actor(), &odd, T0),
            Err(SimError::Rejected(_))
        ));
    }

    #[test]
    fn disconnect_and_transfer_delete_the_participant() {
        let mut c = room();
        step(&mut c, Step::Present("Bob".into()));
        let bob = uuid(&c, "Bob");
        let events = on(&mut c, "Bob", ParticipantCommand::Disconnect).events;
        assert_eq!(
            events,
            [
                Event::PresentationStop,
                Event::ParticipantLeft { uuid: bob }
            ]
        );
        let ada = uuid(&c, "Ada");
        let transfer = ParticipantCommand::Transfer(Transfer {
            conference_alias: "other@usher.example".into(),
            role: Role::Guest,
            pin: None,
        });
        assert_eq!(
            on(&mut c, "Ada", transfer).events,
            [Event::ParticipantLeft { uuid: ada }]
        );
        assert!(c.is_empty());
    }

    #[test]
    fn conference_disconnect_removes_everyone() {
        let mut c = room();
        let (hidden, _) = c.add_session_participant("usher", true, T0);
        step(&mut c, Step::Present("Ada".into()));
        let (ada, bob) = (uuid(&c, "Ada"), uuid(&c, "Bob"));
        let events = conference(&mut c, ConferenceCommand::Disconnect).events;
        assert_eq!(
            events,
            [
                Event::PresentationStop,
                Event::ParticipantLeft { uuid: ada },
                Event::ParticipantLeft { uuid: bob },
            ]
        );
        assert!(c.is_empty() && !c.contains(&hidden));
    }

    #[test]
    fn dial_connects_a_new_participant() {
        let mut c = room();
        let dial = Dial {
            role: Role::Chair,
            remote_display_name: Some("Room 101".into()),
            call_type: Some("audio".into()),
            ..Dial::new("room101@example.com", "sip")
        };
        let reply = conference(&mut c, ConferenceCommand::Dial(Box::new(dial)));
        let new_uuid = reply.result[0].as_str().unwrap().to_owned();
        assert_eq!(reply.result.as_array().unwrap().len(), 1);
        assert_eq!(names(&reply.events), ["participant", "participant"]);
        let connecting = created(&reply.events[0]);
        assert_eq!(connecting.uuid, new_uuid);
        assert_eq!(connecting.service_type, ServiceType::Connecting);
        assert_eq!(connecting.display_name, "Room 101");
        assert_eq!(connecting.call_direction, CallDirection::Out);
        assert_eq!(connecting.uri, "room101@example.com");
        assert!(connecting.is_host() && connecting.audio_only);
        assert_eq!(
            updated(&reply.events[1]).service_type,
            ServiceType::Conference
        );
        let plain = conference(
            &mut c,
            ConferenceCommand::Dial(Box::new(Dial::new("bob2@example.com", "sip"))),
        );
        assert_eq!(created(&plain.events[0]).display_name, "bob2@example.com");
        assert!(created(&plain.events[0]).is_guest());
    }

    #[test]
    fn message_comes_from_the_actor() {
        let mut c = room();
        let events =
            conference(&mut c, ConferenceCommand::Message(Message::text("Welcome"))).events;
        assert_eq!(
            events,
            [Event::Message(ChatMessage {
                origin: "usher".into(),
                uuid: "api-uuid".into(),
                mime_type: "text/plain".into(),
                payload: "Welcome".into(),
                direct: false,
            })]
        );
    }

    #[test]
    fn override_layout_prefers_the_guests_view() {
        let mut c = room();
        let (ada, bob) = (uuid(&c, "Ada"), uuid(&c, "Bob"));
        let layouts = vec![
            LayoutOverride::new("hosts", "2:21"),
            LayoutOverride::new("", "1:7"),
        ];
        let events = conference(&mut c, ConferenceCommand::OverrideLayout(layouts)).events;
        assert_eq!(
            events,
            [Event::Layout(Layout {
                view: "1:7".into(),
                participants: vec![ada.clone(), bob.clone()],
            })]
        );
        let hosts_only = LayoutOverride {
            actors: vec![bob.clone()],
            ..LayoutOverride::new("hosts", "4:0")
        };
        let events = conference(&mut c, ConferenceCommand::OverrideLayout(vec![hosts_only])).events;
        assert_eq!(
            events,
            [Event::Layout(Layout {
                view: "4:0".into(),
                participants: vec![bob, ada],
            })]
        );
        let empty = c.apply_command(
            &actor(),
            &Command::Conference(ConferenceCommand::OverrideLayout(Vec::new())),
            T0,
        );
        assert!(matches!(empty, Err(SimError::Rejected(_))));
    }

    #[test]
    fn quiet_commands_succeed_without_events() {
        let mut c = room();
        for action in [
            ParticipantCommand::Dtmf {
                digits: "1234#".into(),
            },
            ParticipantCommand::CancelDelay,
            ParticipantCommand::ResumeDelay,
        ] {
            let reply = on(&mut c, "Bob", action);
            assert_eq!(reply.result, Value::Bool(true));
            assert!(reply.events.is_empty());
        }
    }

    #[test]
    fn calls_answer_per_call_type() {
        let mut c = room();
        let call = |call_type: &str| {
            ParticipantCommand::Calls(CallRequest {
                call_type: call_type.into(),
                sdp: Some("v=0".into()),
                present: None,
                streaming: None,
                bandwidth: None,
            })
        };
        let webrtc = on(&mut c, "Bob", call("WEBRTC"));
        assert!(webrtc.result["call_uuid"].is_string());
        assert!(webrtc.result["sdp"].is_string());
        assert!(webrtc.events.is_empty());
        let rtmp = on(&mut c, "Bob", call("RTMP")).result;
        let call_uuid = rtmp["call_uuid"].as_str().unwrap();
        assert!(rtmp["url"].as_str().unwrap().ends_with(call_uuid));
        assert!(rtmp["secure_url"].as_str().unwrap().starts_with("rtmps://"));
        let bob = uuid(&c, "Bob");
        let fax = c.apply_command(
            &actor(),
            &Command::participant(&bob, "Bob", call("FAX")),
            T0,
        );
        assert!(matches!(fax, Err(SimError::Rejected(_))));
    }

    #[test]
    fn commands_for_unknown_uuids_fail() {
        let mut c = room();
        let (hidden, _) = c.add_session_participant("usher", true, T0);
        for uuid in ["nobody", hidden.as_str()] {
            let command = Command::Participant {
                target: Target {
                    uuid: uuid.into(),
                    name: String::new(),
                },
                action: ParticipantCommand::Mute,
            };
            assert_eq!(
                c.apply_command(&actor(), &command, T0),
                Err(SimError::UnknownParticipant(uuid.into()))
            );
        }
    }

    #[test]
    fn session_participants_are_hidden_or_listed() {
        let mut c = room();
        let (hidden, events) = c.add_session_participant("usher", true, T0);
        assert!(events.is_empty() && c.contains(&hidden));
        assert!(c.participant(&hidden).is_none());
        assert_eq!(c.len(), 2);
        let (shown, events) = c.add_session_participant("usher (shown)", false, T0);
        let p = created(&events[0]);
        assert_eq!(p.uuid, shown);
        assert_eq!(p.protocol, "api");
        assert!(p.is_host() && !p.has_media);
        assert_eq!(c.len(), 3);
        assert!(c.remove_participant(&hidden).is_empty());
        assert_eq!(
            c.remove_participant(&shown),
            [Event::ParticipantLeft {
                uuid: shown.clone()
            }]
        );
        assert!(!c.contains(&hidden) && !c.contains(&shown));
        assert!(c.remove_participant("nobody").is_empty());
    }

    #[test]
    fn sync_lists_everyone_visible_in_arrival_order() {
        let mut c = room();
        c.add_session_participant("usher", true, T0);
        let Event::Roster(listed) = c.roster() else {
            unreachable!("a roster is a roster")
        };
        let names: Vec<&str> = listed.iter().map(|p| p.display_name.as_str()).collect();
        assert_eq!(names, ["Ada", "Bob"]);
    }

    #[test]
    fn addresses_and_tiles() {
        assert_eq!(address_for("Bob"), "bob@sim.usher.test");
        assert_eq!(address_for("  ?? "), "anonymous@sim.usher.test");
        assert_eq!(tile_count("1:7"), Some(8));
        assert_eq!(tile_count("ac"), None);
    }
}
