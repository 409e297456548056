//! From the meeting socket's frames to neutral events.
//!
//! [`Decoder`] keeps what Huawei pushes only in parts: one record per
//! participant (every `pinfoMap` key as sent, unknown ones included, values
//! as strings), the waiting list, who shares and who speaks. An incremental
//! push carries only the keys that changed; the decoder merges them into
//! the record and reports the whole participant. `mode` 1 removes.
//!
//! After every (re)subscribe the server pushes one full message per type.
//! The decoder collects the full participant list and the full waiting list
//! (pushes in between are held back) and reports them as one
//! [`Event::Roster`]: the room state diffs it, so a reconnect reports no
//! false joins. If the participant list does not come within
//! [`SNAPSHOT_BOUND`], the feed asks `realTimeInfo` over REST instead
//! ([`Decoder::take_real_time`]).
//!
//! A malformed frame is an error for the caller to log and skip; the
//! decoder's state is untouched by it. Replayed messages (a `msgID` seen
//! before, an incremental `version` not above the last) are dropped.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::time::Duration;

use tokio::time::Instant;

use super::inferred;
use super::wire::{
    self, BasicInfo, DynamicInfo, Envelope, PushEntries, PushEntry, RealTimeInfo, SubscribeReply,
    key,
};
use crate::model::{
    CallDirection, Event, FlagsUpdate, Participant, Presentation, Role, ServiceType, StageEntry,
};
use crate::platform::FrameError;

/// How long after subscribing the full participant list may take before
/// usher asks `realTimeInfo` instead.
pub const SNAPSHOT_BOUND: Duration = Duration::from_secs(5);

/// How long after the full participant list the full waiting list may take
/// (a meeting without a waiting room may never push one).
pub const WAITING_GRACE: Duration = Duration::from_secs(2);

/// How many message ids are remembered to drop replays.
const RECENT_IDS: usize = 256;

/// How many places the stage keeps.
const STAGE_SIZE: usize = 24;

/// What one frame was.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    /// The answer to Subscribe: accepted, or refused with the server's words.
    Subscribed(Result<(), String>),
    /// A heartbeat's echo.
    HeartBeat,
    /// A push, and the events it makes (possibly none).
    Events(Vec<Event>),
}

/// What the meeting's basic info says of it (seed 002), passwords left
/// out: logged when it changes, as there is no neutral event for it yet.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MeetingInfo {
    /// The topic.
    pub title: String,
    /// The scheduled start, UNIX seconds.
    pub scheduled_start: Option<f64>,
    /// Who booked it.
    pub owner: String,
}

/// One participant as Huawei describes it: its `pinfoMap`, merged.
#[derive(Debug, Clone, Default, PartialEq)]
struct Record {
    /// Normalized key → (key as sent, value).
    keys: BTreeMap<String, (String, String)>,
    /// When usher first saw the broadcast flag set (UNIX seconds).
    spotlit_at: f64,
    /// When usher first saw the hand raised (UNIX seconds).
    hand_at: f64,
}

impl Record {
    fn get(&self, key: &str) -> &str {
        self.keys
            .get(&inferred::normalize_key(key))
            .map_or("", |(_, value)| value.as_str())
    }

    fn flag(&self, key: &str) -> bool {
        self.get(key) == "1"
    }

    /// Takes in `pinfo`'s keys; stamps broadcast and hand when they change.
    fn merge(&mut self, pinfo: &BTreeMap<String, String>, now: f64) {
        let (spotlit, hand) = (self.flag(inferred::BROADCAST_KEY), self.flag(key::HAND));
        for (name, value) in pinfo {
            self.keys
                .insert(inferred::normalize_key(name), (name.clone(), value.clone()));
        }
        self.stamp(spotlit, hand, now);
    }

    /// A record of `pinfo` alone, keeping `before`'s stamps for flags that
    /// stayed set.
    fn replaced(pinfo: &BTreeMap<String, String>, before: Option<&Record>, now: f64) -> Record {
        let mut record = Record {
            spotlit_at: before.map_or(0.0, |b| b.spotlit_at),
            hand_at: before.map_or(0.0, |b| b.hand_at),
            ..Record::default()
        };
        let was = before.map_or((false, false), |b| {
            (b.flag(inferred::BROADCAST_KEY), b.flag(key::HAND))
        });
        for (name, value) in pinfo {
            record
                .keys
                .insert(inferred::normalize_key(name), (name.clone(), value.clone()));
        }
        record.stamp(was.0, was.1, now);
        record
    }

    fn stamp(&mut self, spotlit_before: bool, hand_before: bool, now: f64) {
        match (spotlit_before, self.flag(inferred::BROADCAST_KEY)) {
            (false, true) => self.spotlit_at = now,
            (_, false) => self.spotlit_at = 0.0,
            (true, true) if self.spotlit_at == 0.0 => self.spotlit_at = now,
            _ => {}
        }
        match (hand_before, self.flag(key::HAND)) {
            (false, true) => self.hand_at = now,
            (_, false) => self.hand_at = 0.0,
            (true, true) if self.hand_at == 0.0 => self.hand_at = now,
            _ => {}
        }
    }

    fn participant(&self, pid: &str, conference: &str, waiting: bool) -> Participant {
        let video = self.get(key::VIDEO);
        let service_type = if waiting {
            ServiceType::WaitingRoom
        } else if inferred::is_connecting(self.get(key::STATE)) {
            ServiceType::Connecting
        } else {
            ServiceType::Conference
        };
        let role = if inferred::is_chair(self.get(key::ROLE), self.get(inferred::CO_HOST_KEY)) {
            Role::Chair
        } else {
            Role::Guest
        };
        Participant {
            uuid: pid.to_owned(),
            display_name: self.get(key::NAME).to_owned(),
            role,
            muted: self.flag(key::MUTE),
            presenting: self.flag(key::SHARE),
            spotlight: self.spotlit_at,
            service_type,
            call_direction: CallDirection::In,
            uri: self.get(key::TEL).to_owned(),
            local_alias: conference.to_owned(),
            vendor: self.get(inferred::USER_AGENT_KEY).to_owned(),
            start_time: millis_text(self.get(key::ADDTIME)).unwrap_or(0.0),
            has_media: !waiting,
            audio_only: video == "0",
            video_call: video == "1",
            buzz_time: self.hand_at,
            ..Participant::default()
        }
    }

    /// The time this participant joined, for ordering a roster.
    fn added(&self) -> f64 {
        millis_text(self.get(key::ADDTIME)).unwrap_or(f64::MAX)
    }
}

/// UNIX seconds from ms written as text.
fn millis_text(text: &str) -> Option<f64> {
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|ms| ms.is_finite() && *ms > 0.0)
        .map(|ms| ms / 1000.0)
}

/// The full lists collected after a (re)subscribe.
#[derive(Debug)]
struct Snapshot {
    participants: Option<HashMap<String, Record>>,
    waiting: Option<HashMap<String, Record>>,
    dynamic: Option<DynamicInfo>,
    /// Give up waiting for the participant list (then: REST).
    due: Instant,
    /// Give up waiting for the waiting list, once participants came.
    waiting_due: Option<Instant>,
}

/// A push read, before it is applied.
enum Push {
    Participants(PushEntries),
    Waiting(PushEntries),
    Dynamic(DynamicInfo),
    Basic(BasicInfo),
    Speakers(PushEntries),
}

/// What a deadline asks of the feed.
#[derive(Debug, Clone, PartialEq)]
pub enum Deadline {
    /// Report these events.
    Events(Vec<Event>),
    /// The full participant list did not come: ask `realTimeInfo`.
    NeedsRealTime,
}

/// The meeting socket's decoding, kept across reconnects.
#[derive(Debug)]
pub struct Decoder {
    conference: String,
    participants: HashMap<String, Record>,
    waiting: HashMap<String, Record>,
    /// Admitted from the waiting room, not yet among participants.
    admitted: HashMap<String, Instant>,
    last_version: HashMap<String, i64>,
    recent_ids: VecDeque<String>,
    sharer: Option<String>,
    stage: Vec<StageEntry>,
    snapshot: Option<Snapshot>,
    meeting: Option<MeetingInfo>,
    ended: bool,
    unknown_actions: HashSet<String>,
}

impl Decoder {
    /// A decoder for `conference` that has seen nothing.
    pub fn new(conference: &str) -> Self {
        Decoder {
            conference: conference.to_owned(),
            participants: HashMap::new(),
            waiting: HashMap::new(),
            admitted: HashMap::new(),
            last_version: HashMap::new(),
            recent_ids: VecDeque::new(),
            sharer: None,
            stage: Vec::new(),
            snapshot: None,
            meeting: None,
            ended: false,
            unknown_actions: HashSet::new(),
        }
    }

    /// A new socket subscribed: collect its full pushes into a roster.
    /// Version numbers start afresh (the server may have restarted).
    pub fn begin_snapshot(&mut self) {
        self.last_version.clear();
        self.ended = false;
        self.snapshot = Some(Snapshot {
            participants: None,
            waiting: None,
            dynamic: None,
            due: Instant::now() + SNAPSHOT_BOUND,
            waiting_due: None,
        });
    }

    /// True once the meeting was reported ended (`Destroyed`).
    pub fn ended(&self) -> bool {
        self.ended
    }

    /// The participant's record says they hold the host role (not merely
    /// co-host).
    pub fn holds_host_role(&self, pid: &str) -> bool {
        self.participants
            .get(pid)
            .is_some_and(|record| record.get(key::ROLE) == "1")
    }

    /// When [`Decoder::on_deadline`] is next due.
    pub fn next_deadline(&self) -> Option<Instant> {
        let snapshot = self
            .snapshot
            .as_ref()
            .map(|s| s.waiting_due.map_or(s.due, |w| w.min(s.due)));
        let admission = self
            .admitted
            .values()
            .min()
            .map(|at| *at + inferred::ADMISSION_BOUND);
        match (snapshot, admission) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Handles what is due: a snapshot that waited long enough, admitted
    /// people who never arrived.
    pub fn on_deadline(&mut self) -> Deadline {
        let instant = Instant::now();
        let mut events = self.overdue_admissions(instant);
        if let Some(snapshot) = &self.snapshot {
            if snapshot.participants.is_none() && instant >= snapshot.due {
                return Deadline::NeedsRealTime;
            }
            if snapshot.waiting_due.is_some_and(|due| instant >= due) {
                events.extend(self.finish_snapshot());
            }
        }
        Deadline::Events(events)
    }

    /// Takes one text frame in.
    pub fn decode(&mut self, text: &str, now: f64) -> Result<Frame, FrameError> {
        let envelope: Envelope = serde_json::from_str(text).map_err(|err| FrameError {
            frame: "frame".to_owned(),
            reason: format!("not a JSON object: {err}"),
        })?;
        let malformed = |err: serde_json::Error| FrameError {
            frame: envelope.action.clone(),
            reason: err.to_string(),
        };
        match envelope.action.as_str() {
            wire::SUBSCRIBE => {
                let reply: SubscribeReply = serde_json::from_str(text).map_err(malformed)?;
                return Ok(Frame::Subscribed(match reply.data.return_code {
                    0 => Ok(()),
                    code => Err(format!("code {code}: {}", reply.data.return_desc)),
                }));
            }
            wire::HEARTBEAT => return Ok(Frame::HeartBeat),
            _ => {}
        }
        let push = match envelope.action.as_str() {
            wire::PARTICIPANTS => {
                Push::Participants(serde_json::from_str(text).map_err(malformed)?)
            }
            wire::WAITING_LIST => Push::Waiting(serde_json::from_str(text).map_err(malformed)?),
            wire::DYNAMIC_INFO => Push::Dynamic(serde_json::from_str(text).map_err(malformed)?),
            wire::BASIC_INFO => Push::Basic(serde_json::from_str(text).map_err(malformed)?),
            wire::SPEAKER_CHANGE => Push::Speakers(serde_json::from_str(text).map_err(malformed)?),
            other => {
                if self.unknown_actions.insert(other.to_owned()) {
                    tracing::info!(action = %other, "ignoring a push this version does not read");
                }
                return Ok(Frame::Events(Vec::new()));
            }
        };
        // Only a push that reads is remembered as seen.
        if !self.fresh(&envelope) {
            return Ok(Frame::Events(Vec::new()));
        }
        let full = envelope.msg_mode == wire::FULL;
        let mut events = self.overdue_admissions(Instant::now());
        match push {
            Push::Participants(entries) => {
                events.extend(self.participants_push(full, &entries.data, now));
            }
            Push::Waiting(entries) => events.extend(self.waiting_push(full, &entries.data, now)),
            Push::Dynamic(info) => events.extend(self.dynamic_push(info)),
            Push::Basic(info) => self.basic_push(info),
            Push::Speakers(entries) => events.extend(self.speaker_push(&entries.data)),
        }
        Ok(Frame::Events(events))
    }

    /// False for a message seen before or an incremental older than the
    /// last of its type.
    fn fresh(&mut self, envelope: &Envelope) -> bool {
        if !envelope.msg_id.is_empty() {
            if self.recent_ids.contains(&envelope.msg_id) {
                tracing::debug!(action = %envelope.action, "dropping a message seen before");
                return false;
            }
            if self.recent_ids.len() == RECENT_IDS {
                self.recent_ids.pop_front();
            }
            self.recent_ids.push_back(envelope.msg_id.clone());
        }
        if envelope.msg_mode == wire::INCREMENTAL {
            let last = self
                .last_version
                .entry(envelope.action.clone())
                .or_insert(i64::MIN);
            if inferred::is_replay(envelope.version, *last) {
                tracing::debug!(action = %envelope.action, version = envelope.version, last = *last, "dropping an incremental message older than the last");
                return false;
            }
            *last = envelope.version;
        }
        true
    }

    fn participants_push(&mut self, full: bool, entries: &[PushEntry], now: f64) -> Vec<Event> {
        if full {
            let listing = self.full_listing(entries, &self.participants, now);
            return match &mut self.snapshot {
                Some(snapshot) => {
                    snapshot.participants = Some(listing);
                    if snapshot.waiting.is_some() {
                        self.finish_snapshot()
                    } else {
                        snapshot.waiting_due = Some(Instant::now() + WAITING_GRACE);
                        Vec::new()
                    }
                }
                None => {
                    self.participants = listing;
                    self.roster()
                }
            };
        }
        if let Some(snapshot) = &mut self.snapshot {
            if let Some(listing) = &mut snapshot.participants {
                merge_listing(listing, entries, now);
            }
            return Vec::new();
        }
        let mut events = Vec::new();
        for entry in entries {
            if entry.pid.is_empty() {
                continue;
            }
            if entry.mode == wire::REMOVE {
                events.extend(self.participant_left(&entry.pid));
                continue;
            }
            let before = self
                .participants
                .get(&entry.pid)
                .map(|record| record.participant(&entry.pid, &self.conference, false));
            let record = self.participants.entry(entry.pid.clone()).or_default();
            record.merge(&entry.pinfo_map, now);
            let after = record.participant(&entry.pid, &self.conference, false);
            self.admitted.remove(&entry.pid);
            let was_waiting = self.waiting.remove(&entry.pid).is_some();
            if before.as_ref() != Some(&after) || was_waiting {
                events.push(Event::Participant(after));
            }
            events.extend(self.presentation_change());
        }
        events
    }

    fn waiting_push(&mut self, full: bool, entries: &[PushEntry], now: f64) -> Vec<Event> {
        if full {
            let listing = self.full_listing(entries, &self.waiting, now);
            return match &mut self.snapshot {
                Some(snapshot) => {
                    snapshot.waiting = Some(listing);
                    if snapshot.participants.is_some() {
                        self.finish_snapshot()
                    } else {
                        Vec::new()
                    }
                }
                None => {
                    self.waiting = listing;
                    self.roster()
                }
            };
        }
        if let Some(snapshot) = &mut self.snapshot {
            if let Some(listing) = &mut snapshot.waiting {
                merge_listing(listing, entries, now);
            }
            return Vec::new();
        }
        let mut events = Vec::new();
        for entry in entries {
            if entry.pid.is_empty() || self.participants.contains_key(&entry.pid) {
                continue;
            }
            if entry.mode == wire::REMOVE {
                let Some(gone) = self.waiting.remove(&entry.pid) else {
                    continue;
                };
                if gone.get(key::WAITINGSTATE) == inferred::ADMITTED {
                    // Admitted: they reappear among the participants.
                    self.waiting.insert(entry.pid.clone(), gone);
                    self.admitted.insert(entry.pid.clone(), Instant::now());
                } else {
                    events.push(Event::ParticipantLeft {
                        uuid: entry.pid.clone(),
                    });
                }
                continue;
            }
            let before = self
                .waiting
                .get(&entry.pid)
                .map(|record| record.participant(&entry.pid, &self.conference, true));
            let record = self.waiting.entry(entry.pid.clone()).or_default();
            record.merge(&entry.pinfo_map, now);
            let after = record.participant(&entry.pid, &self.conference, true);
            if before.as_ref() != Some(&after) {
                events.push(Event::Participant(after));
            }
        }
        events
    }

    /// Admitted people who never showed up among the participants: gone.
    fn overdue_admissions(&mut self, now: Instant) -> Vec<Event> {
        let overdue: Vec<String> = self
            .admitted
            .iter()
            .filter(|(_, at)| now >= **at + inferred::ADMISSION_BOUND)
            .map(|(pid, _)| pid.clone())
            .collect();
        overdue
            .into_iter()
            .map(|pid| {
                self.admitted.remove(&pid);
                self.waiting.remove(&pid);
                Event::ParticipantLeft { uuid: pid }
            })
            .collect()
    }

    fn participant_left(&mut self, pid: &str) -> Vec<Event> {
        let mut events = Vec::new();
        if self.participants.remove(pid).is_none() {
            return events;
        }
        if self.sharer.as_deref() == Some(pid) {
            self.sharer = None;
            events.push(Event::PresentationStop);
        }
        events.push(Event::ParticipantLeft {
            uuid: pid.to_owned(),
        });
        events
    }

    /// A full list as records, keeping the stamps of those already known.
    fn full_listing(
        &self,
        entries: &[PushEntry],
        known: &HashMap<String, Record>,
        now: f64,
    ) -> HashMap<String, Record> {
        entries
            .iter()
            .filter(|entry| !entry.pid.is_empty() && entry.mode != wire::REMOVE)
            .map(|entry| {
                let record = Record::replaced(&entry.pinfo_map, known.get(&entry.pid), now);
                (entry.pid.clone(), record)
            })
            .collect()
    }

    /// Ends the snapshot: the roster, then the room's state, then who shares.
    fn finish_snapshot(&mut self) -> Vec<Event> {
        let Some(snapshot) = self.snapshot.take() else {
            return Vec::new();
        };
        if let Some(participants) = snapshot.participants {
            self.participants = participants;
        }
        if let Some(waiting) = snapshot.waiting {
            self.waiting = waiting;
        }
        self.admitted.clear();
        let mut events = self.roster();
        if let Some(dynamic) = snapshot.dynamic {
            events.extend(self.dynamic_push(dynamic));
        }
        events
    }

    /// The whole room as one roster, and who shares now.
    fn roster(&mut self) -> Vec<Event> {
        self.waiting
            .retain(|pid, _| !self.participants.contains_key(pid));
        let mut listed: Vec<(f64, &String, Participant)> = self
            .participants
            .iter()
            .map(|(pid, record)| {
                (
                    record.added(),
                    pid,
                    record.participant(pid, &self.conference, false),
                )
            })
            .chain(self.waiting.iter().map(|(pid, record)| {
                (
                    record.added(),
                    pid,
                    record.participant(pid, &self.conference, true),
                )
            }))
            .collect();
        listed.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.cmp(b.1)));
        let roster = listed.into_iter().map(|(_, _, p)| p).collect();
        let mut events = vec![Event::Roster(roster)];
        events.extend(self.presentation_change());
        events
    }

    /// A presentation start or stop when who shares changed.
    fn presentation_change(&mut self) -> Vec<Event> {
        let sharing = |pid: &str| {
            self.participants
                .get(pid)
                .is_some_and(|record| record.flag(key::SHARE))
        };
        let current = match &self.sharer {
            Some(pid) if sharing(pid) => Some(pid.clone()),
            _ => {
                let mut sharers: Vec<&String> = self
                    .participants
                    .iter()
                    .filter(|(_, record)| record.flag(key::SHARE))
                    .map(|(pid, _)| pid)
                    .collect();
                sharers.sort();
                sharers.first().map(|pid| (*pid).clone())
            }
        };
        if current == self.sharer {
            return Vec::new();
        }
        self.sharer = current.clone();
        match current.and_then(|pid| self.participants.get(&pid).map(|r| (pid, r))) {
            Some((pid, record)) => vec![Event::PresentationStart(Presentation {
                presenter_name: record.get(key::NAME).to_owned(),
                presenter_uri: record.get(key::TEL).to_owned(),
                presenter_uuid: Some(pid),
            })],
            None => vec![Event::PresentationStop],
        }
    }

    fn dynamic_push(&mut self, info: DynamicInfo) -> Vec<Event> {
        if let Some(snapshot) = &mut self.snapshot {
            if info.state != "Destroyed" {
                snapshot.dynamic = Some(info);
                return Vec::new();
            }
        }
        if info.state == "Destroyed" {
            self.ended = true;
            return vec![Event::Disconnected {
                reason: "the meeting ended".to_owned(),
            }];
        }
        let started = match info.state.as_str() {
            "Created" => Some(true),
            "Schedule" => Some(false),
            _ => None,
        };
        vec![Event::RoomUpdate(FlagsUpdate {
            locked: info.lock,
            guests_muted: info.mute,
            started,
        })]
    }

    fn basic_push(&mut self, info: BasicInfo) {
        let meeting = MeetingInfo {
            title: info.title,
            scheduled_start: millis_text(&info.scheduled_start_time),
            owner: info.owner,
        };
        if self.meeting.as_ref() != Some(&meeting) {
            tracing::info!(title = %meeting.title, owner = %meeting.owner, scheduled_start = ?meeting.scheduled_start, "meeting details");
            self.meeting = Some(meeting);
        }
    }

    fn speaker_push(&mut self, entries: &[PushEntry]) -> Vec<Event> {
        let mut stage: Vec<StageEntry> = Vec::new();
        let mut seen = HashSet::new();
        let speaking = entries
            .iter()
            .filter(|entry| !entry.pid.is_empty())
            .map(|entry| (entry.pid.clone(), 100));
        let before = self
            .stage
            .iter()
            .map(|entry| (entry.participant_uuid.clone(), 0));
        for (pid, vad) in speaking.chain(before) {
            if stage.len() == STAGE_SIZE || !seen.insert(pid.clone()) {
                continue;
            }
            stage.push(StageEntry {
                participant_uuid: pid,
                stage_index: stage.len() as i64,
                vad,
            });
        }
        if stage == self.stage {
            return Vec::new();
        }
        self.stage = stage.clone();
        vec![Event::Stage(stage)]
    }

    /// A roster from `realTimeInfo` (when the socket's full push did not
    /// come): what REST tells (typed ints there) merged into the records.
    pub fn take_real_time(&mut self, info: RealTimeInfo, now: f64) -> Vec<Event> {
        let waiting = self.snapshot.take().and_then(|snapshot| snapshot.waiting);
        if let Some(waiting) = waiting {
            self.waiting = waiting;
        }
        let flag = |on: bool| if on { "1" } else { "0" }.to_owned();
        let listing = info
            .participants
            .iter()
            .filter(|p| !p.pid.is_empty())
            .map(|p| {
                let mut record = self.participants.get(&p.pid).cloned().unwrap_or_default();
                let chair = p.pid == info.conf_info.chair_id;
                let co_host = info.conf_info.co_hosts.contains(&p.pid);
                let pinfo = BTreeMap::from([
                    (key::NAME.to_owned(), p.name.clone()),
                    (key::TEL.to_owned(), p.phone.clone()),
                    (key::STATE.to_owned(), p.state.to_string()),
                    (key::VIDEO.to_owned(), flag(p.video == 1)),
                    (key::MUTE.to_owned(), flag(p.mute == 1)),
                    (key::HAND.to_owned(), flag(p.hand == 1)),
                    (key::ROLE.to_owned(), flag(chair)),
                    (inferred::CO_HOST_KEY.to_owned(), flag(co_host)),
                ]);
                record.merge(&pinfo, now);
                (p.pid.clone(), record)
            })
            .collect();
        self.participants = listing;
        self.admitted.clear();
        self.roster()
    }
}

/// Applies incremental entries to a list being collected.
fn merge_listing(listing: &mut HashMap<String, Record>, entries: &[PushEntry], now: f64) {
    for entry in entries.iter().filter(|entry| !entry.pid.is_empty()) {
        if entry.mode == wire::REMOVE {
            listing.remove(&entry.pid);
        } else {
            listing
                .entry(entry.pid.clone())
                .or_default()
                .merge(&entry.pinfo_map, now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const T0: f64 = 1_700_000_000.0;

    fn push(action: &str, mode: i64, version: i64, data: serde_json::Value) -> String {
        json!({
            "action": action,
            "version": version,
            "createTime": 1_611_993_595_029_i64,
            "msgID": format!("{action}-{mode}-{version}"),
            "msgMode": mode,
            "confID": "900487914",
            "data": data,
        })
        .to_string()
    }

    fn events(decoder: &mut Decoder, text: &str) -> Vec<Event> {
        match decoder.decode(text, T0).unwrap() {
            Frame::Events(events) => events,
            other => panic!("expected events, got {other:?}"),
        }
    }

    fn ada_and_bob() -> serde_json::Value {
        json!([
            {"pid": "p1", "mode": 0, "pinfoMap": {"NAME": "Ada", "ROLE": "1", "STATE": "0", "MUTE": "0", "ADDTIME": "1700000000000", "CAMERA_STATE": "1"}},
            {"pid": "p2", "mode": 0, "pinfoMap": {"NAME": "Bob", "ROLE": "0", "STATE": "0", "MUTE": "0", "ADDTIME": "1700000001000"}},
        ])
    }

    fn subscribed() -> Decoder {
        let mut decoder = Decoder::new("900487914");
        decoder.begin_snapshot();
        assert!(events(&mut decoder, &push(wire::PARTICIPANTS, 0, 1, ada_and_bob())).is_empty());
        let roster = events(&mut decoder, &push(wire::WAITING_LIST, 0, 2, json!([])));
        let [Event::Roster(listed)] = roster.as_slice() else {
            panic!("a roster: {roster:?}");
        };
        assert_eq!(listed.len(), 2);
        decoder
    }

    #[test]
    fn the_first_full_pushes_make_one_roster() {
        let mut decoder = Decoder::new("900487914");
        decoder.begin_snapshot();
        let dynamic = json!({"action": wire::DYNAMIC_INFO, "msgMode": 0, "version": 5, "msgID": "d1", "state": "Created", "lock": 1, "mute": 0});
        assert!(events(&mut decoder, &dynamic.to_string()).is_empty());
        assert!(events(&mut decoder, &push(wire::PARTICIPANTS, 0, 1, ada_and_bob())).is_empty());
        let incremental = json!([{"pid": "p2", "mode": 0, "pinfoMap": {"MUTE": "1"}}]);
        assert!(events(&mut decoder, &push(wire::PARTICIPANTS, 1, 1, incremental)).is_empty());
        let out = events(&mut decoder, &push(wire::WAITING_LIST, 0, 2, json!([])));
        let Event::Roster(listed) = &out[0] else {
            panic!("{out:?}");
        };
        assert_eq!(listed[0].display_name, "Ada");
        assert!(listed[0].is_host());
        assert!(listed[1].is_guest() && listed[1].muted);
        assert_eq!(listed[0].start_time, 1_700_000_000.0);
        assert_eq!(
            out[1],
            Event::RoomUpdate(FlagsUpdate {
                locked: Some(true),
                guests_muted: Some(false),
                started: Some(true)
            })
        );
    }

    #[test]
    fn incrementals_merge_and_report_the_whole_participant() {
        let mut decoder = subscribed();
        let mute =
            json!([{"pid": "p2", "mode": 0, "pinfoMap": {"MUTE": "1", "SOME_NEW_KEY": "x"}}]);
        let out = events(&mut decoder, &push(wire::PARTICIPANTS, 1, 7, mute));
        let [Event::Participant(bob)] = out.as_slice() else {
            panic!("{out:?}");
        };
        assert!(bob.muted && bob.display_name == "Bob" && bob.is_guest());
        assert_eq!(decoder.participants["p2"].get("some_new_key"), "x");
        let same = json!([{"pid": "p2", "mode": 0, "pinfoMap": {"MUTE": "1"}}]);
        assert!(events(&mut decoder, &push(wire::PARTICIPANTS, 1, 8, same)).is_empty());
        let stale = json!([{"pid": "p2", "mode": 0, "pinfoMap": {"MUTE": "0"}}]);
        assert!(events(&mut decoder, &push(wire::PARTICIPANTS, 1, 6, stale)).is_empty());
        let join = json!([{"pid": "p3", "mode": 0, "pinfoMap": {"NAME": "Cy", "ROLE": "2", "STATE": "1"}}]);
        let out = events(&mut decoder, &push(wire::PARTICIPANTS, 1, 9, join));
        let [Event::Participant(cy)] = out.as_slice() else {
            panic!("{out:?}");
        };
        assert_eq!(cy.service_type, ServiceType::Connecting);
        let gone = json!([{"pid": "p3", "mode": 1}]);
        assert_eq!(
            events(&mut decoder, &push(wire::PARTICIPANTS, 1, 10, gone)),
            [Event::ParticipantLeft { uuid: "p3".into() }]
        );
    }

    #[test]
    fn replays_are_dropped() {
        let mut decoder = subscribed();
        let mute = push(
            wire::PARTICIPANTS,
            1,
            3,
            json!([{"pid": "p2", "mode": 0, "pinfoMap": {"MUTE": "1"}}]),
        );
        assert_eq!(events(&mut decoder, &mute).len(), 1);
        let unmute_same_id = mute.replace("\"MUTE\":\"1\"", "\"MUTE\":\"0\"");
        assert!(events(&mut decoder, &unmute_same_id).is_empty());
    }

    #[test]
    fn sharing_broadcast_and_hands_are_stamped() {
        let mut decoder = subscribed();
        let share = json!([{"pid": "p1", "mode": 0, "pinfoMap": {"SHARE": "1", "BROADCAST": "1", "HAND": "1"}}]);
        let out = events(&mut decoder, &push(wire::PARTICIPANTS, 1, 1, share));
        let Event::Participant(ada) = &out[0] else {
            panic!("{out:?}");
        };
        assert!(ada.presenting && ada.spotlight == T0 && ada.buzz_time == T0);
        assert!(
            matches!(&out[1], Event::PresentationStart(p) if p.presenter_uuid.as_deref() == Some("p1"))
        );
        let leave = json!([{"pid": "p1", "mode": 1}]);
        assert_eq!(
            events(&mut decoder, &push(wire::PARTICIPANTS, 1, 2, leave)),
            [
                Event::PresentationStop,
                Event::ParticipantLeft { uuid: "p1".into() }
            ]
        );
    }

    #[test]
    fn admission_moves_a_waiting_person_in_under_one_identity() {
        let mut decoder = subscribed();
        let arrive = json!([{"pid": "w1", "mode": 0, "pinfoMap": {"NAME": "Carl", "WAITINGSTATE": "0", "CLIENT_LOGIN_TYPE": "1"}}]);
        let out = events(&mut decoder, &push(wire::WAITING_LIST, 1, 1, arrive));
        assert!(matches!(&out[..], [Event::Participant(p)] if p.is_waiting()));
        let admitted = json!([{"pid": "w1", "mode": 0, "pinfoMap": {"WAITINGSTATE": "1"}}]);
        assert!(events(&mut decoder, &push(wire::WAITING_LIST, 1, 2, admitted)).is_empty());
        let removed = json!([{"pid": "w1", "mode": 1, "delType": 0}]);
        assert!(events(&mut decoder, &push(wire::WAITING_LIST, 1, 3, removed)).is_empty());
        let joined = json!([{"pid": "w1", "mode": 0, "pinfoMap": {"NAME": "Carl", "ROLE": "0", "STATE": "0"}}]);
        let out = events(&mut decoder, &push(wire::PARTICIPANTS, 1, 1, joined));
        assert!(matches!(&out[..], [Event::Participant(p)] if p.in_room() && p.uuid == "w1"));
        let left = json!([{"pid": "w2", "mode": 0, "pinfoMap": {"NAME": "Dee"}}]);
        events(&mut decoder, &push(wire::WAITING_LIST, 1, 4, left));
        let gone = json!([{"pid": "w2", "mode": 1, "delType": 1}]);
        assert_eq!(
            events(&mut decoder, &push(wire::WAITING_LIST, 1, 5, gone)),
            [Event::ParticipantLeft { uuid: "w2".into() }]
        );
    }

    #[test]
    fn speakers_make_the_stage_and_destroyed_ends_the_meeting() {
        let mut decoder = subscribed();
        let out = events(
            &mut decoder,
            &push(wire::SPEAKER_CHANGE, 0, 1, json!([{"pid": "p2"}])),
        );
        assert_eq!(
            out,
            [Event::Stage(vec![StageEntry {
                participant_uuid: "p2".into(),
                stage_index: 0,
                vad: 100
            }])]
        );
        let silence = events(&mut decoder, &push(wire::SPEAKER_CHANGE, 0, 2, json!([])));
        assert!(matches!(&silence[..], [Event::Stage(stage)] if stage[0].vad == 0));
        let end = json!({"action": wire::DYNAMIC_INFO, "msgMode": 0, "version": 9, "msgID": "end", "state": "Destroyed"});
        assert!(matches!(
            &events(&mut decoder, &end.to_string())[..],
            [Event::Disconnected { .. }]
        ));
        assert!(decoder.ended());
    }

    #[test]
    fn malformed_frames_are_errors_and_change_nothing() {
        let mut decoder = subscribed();
        assert!(decoder.decode("not json", T0).is_err());
        let bad = json!({"action": wire::PARTICIPANTS, "msgMode": 1, "version": 1, "data": 5});
        assert!(decoder.decode(&bad.to_string(), T0).is_err());
        assert_eq!(decoder.participants.len(), 2);
    }

    #[test]
    fn a_missing_full_push_falls_back_to_rest() {
        let mut decoder = Decoder::new("900487914");
        decoder.begin_snapshot();
        if let Some(snapshot) = &mut decoder.snapshot {
            snapshot.due = Instant::now();
        }
        assert_eq!(decoder.on_deadline(), Deadline::NeedsRealTime);
        let info: RealTimeInfo = serde_json::from_value(json!({
            "participants": [{"pid": "p1", "name": "Ada", "state": 0, "mute": 1, "video": 1}],
            "confInfo": {"chairID": "p1"}
        }))
        .unwrap();
        let out = decoder.take_real_time(info, T0);
        let Event::Roster(listed) = &out[0] else {
            panic!("{out:?}");
        };
        assert!(listed[0].is_host() && listed[0].muted && listed[0].video_call);
        assert!(decoder.next_deadline().is_none());
    }

    #[test]
    fn subscribe_answers_and_echoes() {
        let mut decoder = Decoder::new("1");
        let ok = r#"{"action":"Subscribe","sequence":"1","data":{"returnCode":0,"returnDesc ":"SUCCESS"}}"#;
        assert_eq!(decoder.decode(ok, T0).unwrap(), Frame::Subscribed(Ok(())));
        let refused = r#"{"action":"Subscribe","data":{"returnCode":3,"returnDesc":"bad token"}}"#;
        assert!(
            matches!(decoder.decode(refused, T0).unwrap(), Frame::Subscribed(Err(e)) if e.contains("bad token"))
        );
        let echo = r#"{"action":"HeartBeat","sequence":"000000000000000001700000000000"}"#;
        assert_eq!(decoder.decode(echo, T0).unwrap(), Frame::HeartBeat);
    }
}
