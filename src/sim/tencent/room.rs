//! One simulated Tencent room: the shared [`Conference`] for who is there,
//! plus what the room engine keeps that the conference does not (accounts,
//! roles Owner/Admin/Member, the room's status and flags, seats with their
//! locks, bans with their expiry), and the callbacks each change sends.
//!
//! Steps and REST commands go through the conference first, so every
//! platform's simulator agrees on what a step does; this file decides what
//! of it Tencent's wire shows. Chat, hands, presentations, layouts and the
//! stage are invisible on Tencent's wire and send nothing; the lock and the
//! waiting room do not exist there and are refused.
//!
//! The callbacks carry the vendor samples' quirks: `RoomType` `Meeting` in
//! the create callback (`Conference` in `get_room_info`), `RoomOwner` in the
//! member list, `"false"` as a string in the update callback, an all-digit
//! account as a bare number in the seat callback, an invitee listed twice,
//! schedule times in seconds and `EventTime` in milliseconds.

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use crate::model::{Command, ConferenceCommand, Participant, ParticipantCommand, Role};
use crate::platform::tencent::inferred::sim_codes;
use crate::platform::tencent::rest::{INVALID_PARAMETER, NOT_A_MEMBER, ROOM_NOT_FOUND};
use crate::platform::tencent::wire::{self, Api};
use crate::sim::conference::{Actor, Conference, SimError};
use crate::sim::step::{Joiner, Step};

/// A callback to send: its name, body and the `OptPlatform` it reports.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    /// The room it is about.
    pub room: String,
    /// `CallbackCommand`.
    pub command: &'static str,
    /// The JSON body.
    pub body: Value,
    /// `OptPlatform`: `RESTAPI` for admin calls, `Web` for people.
    pub platform: &'static str,
}

/// A refused REST call: `ErrorCode` and `ErrorInfo`.
pub type Refusal = (i64, String);

/// What the room engine says about a room beyond its people.
#[derive(Debug, Clone)]
pub struct RoomSetup {
    /// `RoomName`.
    pub name: String,
    /// The owner's account.
    pub owner: String,
    /// How many seats; 0 for a room without seats.
    pub seats: usize,
    /// `ScheduleStartTime` / `ScheduleEndTime` (UNIX seconds), for a
    /// scheduled room (which waits `NotStarted` until its owner enters).
    pub schedule: Option<(i64, i64)>,
}

#[derive(Debug, Clone, Default)]
struct SimSeat {
    member: Option<String>,
    taken_disabled: bool,
    video_disabled: bool,
    audio_disabled: bool,
}

/// The room.
#[derive(Debug)]
pub struct TencentRoom {
    id: String,
    conference: Conference,
    name: String,
    owner: String,
    running: bool,
    created: i64,
    schedule: Option<(i64, i64)>,
    audio_disabled: bool,
    video_disabled: bool,
    seats: Vec<SimSeat>,
    /// Conference uuid → account, and back.
    accounts: HashMap<String, String>,
    uuids: HashMap<String, String>,
    /// NameCard by account.
    name_cards: HashMap<String, String>,
    admins: Vec<String>,
    /// Banned account → until (UNIX seconds).
    bans: HashMap<String, f64>,
    last_event_ms: i64,
    /// Destroyed: empty, and answering every call 100004.
    destroyed: bool,
}

impl TencentRoom {
    /// A room with `people` in it already (no callbacks: they were there
    /// before anyone watched). `seed` makes the conference's uuids.
    pub fn new(id: &str, setup: RoomSetup, people: &[Joiner], seed: u64, now: f64) -> TencentRoom {
        let mut room = TencentRoom {
            id: id.to_owned(),
            conference: Conference::with_seed(id, seed),
            name: setup.name,
            owner: setup.owner,
            running: setup.schedule.is_none(),
            created: now as i64,
            schedule: setup.schedule,
            audio_disabled: false,
            video_disabled: false,
            seats: vec![SimSeat::default(); setup.seats],
            accounts: HashMap::new(),
            uuids: HashMap::new(),
            name_cards: HashMap::new(),
            admins: Vec::new(),
            bans: HashMap::new(),
            last_event_ms: 0,
            destroyed: false,
        };
        for joiner in people {
            // Joining an open room never fails; what it sends is not sent.
            let _ = room.join(joiner, now);
        }
        room
    }

    /// The room's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The `Room.CallbackAfterCreateRoom` announcing this room.
    pub fn created_callback(&mut self, operator: &str, invitees: &[String], now: f64) -> Outgoing {
        let mut invitees = invitees.to_vec();
        if let Some(last) = invitees.last().cloned() {
            // The seed's sample lists an invitee twice.
            invitees.push(last);
        }
        let (start, end) = self.schedule.unwrap_or((0, 0));
        let body = json!({
            "CallbackCommand": wire::CREATED,
            "Operator_Account": operator,
            "RoomInfo": {
                "RoomId": self.id,
                "RoomName": self.name,
                "RoomType": "Meeting",
                "Owner_Account": self.owner,
                "MaxMemberCount": 300,
                "MaxSeatCount": self.seats.len(),
                "IsVideoDisabled": self.video_disabled,
                "IsAudioDisabled": self.audio_disabled,
                "IsMessageDisabled": false,
                "IsScreenSharingDisabled": false,
                "IsCloudRecordingDisabled": false,
                "CustomInfo": "",
                "ScheduleStartTime": start,
                "ScheduleEndTime": end,
                "RoomStatus": self.status(),
                "IsSeatEnabled": !self.seats.is_empty(),
                "TakeSeatMode": self.take_seat_mode(),
                "CreateTime": self.created,
            },
            "ScheduleInviteeList_Account": invitees,
            "EventTime": self.event_time(now),
        });
        self.outgoing(wire::CREATED, body, "RESTAPI")
    }

    /// Everyone in the room as the room engine knows them: the conference's
    /// participants under their accounts, muted as Tencent shows it (by the
    /// room's mute for members, by their seat's lock).
    pub fn participants(&self) -> Vec<Participant> {
        self.conference
            .participants()
            .filter_map(|p| {
                let account = self.accounts.get(&p.uuid)?;
                let host = self.is_host(account);
                let seat = self.seat_of(account).map(|index| &self.seats[index]);
                Some(Participant {
                    uuid: account.clone(),
                    uri: account.clone(),
                    muted: (self.audio_disabled && !host)
                        || seat.is_some_and(|seat| seat.audio_disabled),
                    ..p.clone()
                })
            })
            .collect()
    }

    /// The conference's flags (guests muted is the room's `IsAudioDisabled`).
    pub fn flags(&self) -> crate::model::RoomFlags {
        self.conference.flags()
    }

    /// Each seat: who sits there and whether its microphone is locked.
    pub fn seats(&self) -> Vec<(Option<String>, bool)> {
        self.seats
            .iter()
            .map(|seat| (seat.member.clone(), seat.audio_disabled))
            .collect()
    }

    /// Who is banned now, and until when (UNIX seconds).
    pub fn bans(&self, now: f64) -> Vec<(String, f64)> {
        let mut bans: Vec<(String, f64)> = self
            .bans
            .iter()
            .filter(|(_, until)| **until > now)
            .map(|(account, until)| (account.clone(), *until))
            .collect();
        bans.sort_by(|a, b| a.0.cmp(&b.0));
        bans
    }

    /// The account of the participant called `name`.
    pub fn account_of(&self, name: &str) -> Option<String> {
        let uuid = &self.conference.find(name)?.uuid;
        self.accounts.get(uuid).cloned()
    }

    /// True once the room was destroyed.
    pub fn destroyed(&self) -> bool {
        self.destroyed
    }

    /// Applies a step and returns the callbacks it sends.
    pub fn step(&mut self, step: &Step, now: f64) -> Result<Vec<Outgoing>, SimError> {
        if self.destroyed {
            return Err(SimError::Rejected(format!(
                "room {} was destroyed",
                self.id
            )));
        }
        match step {
            Step::Join(joiner) => self.join(joiner, now),
            Step::Leave(name) => {
                let account = self.named(name)?;
                Ok(self.remove(&account, "Leave", "", &account, now))
            }
            Step::Mute(name) | Step::Unmute(name) => {
                let muted = matches!(step, Step::Mute(_));
                self.conference.apply_step(step, now)?;
                let account = self.named(name)?;
                match self.seat_of(&account) {
                    Some(index) if self.seats[index].audio_disabled != muted => {
                        self.seats[index].audio_disabled = muted;
                        Ok(vec![self.seat_callback(&[index], &account, now)])
                    }
                    _ => Ok(Vec::new()),
                }
            }
            Step::WaitingRoom(_) | Step::Lock | Step::Unlock => Err(SimError::Rejected(
                "Tencent rooms have no lock and no waiting room".to_owned(),
            )),
            other => {
                // Chat, hands, presentations, layouts, the stage: the
                // conference changes; Tencent's wire shows none of it.
                self.conference.apply_step(other, now)?;
                Ok(Vec::new())
            }
        }
    }

    /// A member's heartbeat stops: they leave with `Type` `Expired`.
    pub fn expire(&mut self, name: &str, now: f64) -> Result<Vec<Outgoing>, SimError> {
        let account = self.named(name)?;
        Ok(self.remove(&account, "Expired", "", &account, now))
    }

    /// Answers one REST command about this room. `Ok` holds the `Response`
    /// (if any) and the callbacks to send.
    pub fn command(
        &mut self,
        api: Api,
        body: &Value,
        admin: &str,
        now: f64,
    ) -> Result<(Option<Value>, Vec<Outgoing>), Refusal> {
        if self.destroyed {
            return Err(room_not_found(&self.id));
        }
        match api {
            wire::GET_ROOM_INFO => Ok((Some(json!({"RoomInfo": self.info_json()})), Vec::new())),
            wire::GET_ROOM_MEMBER_LIST => Ok((Some(self.member_page(body)?), Vec::new())),
            wire::GET_SEAT_LIST => {
                if self.seats.is_empty() {
                    return Err(no_seats());
                }
                Ok((Some(json!({"SeatList": self.seat_list()})), Vec::new()))
            }
            wire::UPDATE_ROOM_INFO => Ok((None, self.update_info(body, admin, now)?)),
            wire::KICK_USER_OUT => {
                let reason = text(body, "Reason");
                if reason.is_empty() || reason.len() > 1000 {
                    return Err(invalid("`Reason` is required (at most 1000 bytes)"));
                }
                let accounts = self.listed_members(body)?;
                let sent = accounts
                    .iter()
                    .flat_map(|account| self.remove(account, "Kicked", &reason, admin, now))
                    .collect();
                Ok((None, sent))
            }
            wire::BAN_ROOM_MEMBER => {
                let reason = text(body, "Reason");
                let duration = body.get("Duration").and_then(Value::as_f64).unwrap_or(0.0);
                if duration <= 0.0 {
                    return Err(invalid("`Duration` (seconds) is required"));
                }
                let accounts = accounts_in(body)?;
                let mut sent = Vec::new();
                for account in accounts {
                    self.bans.insert(account.clone(), now + duration);
                    sent.extend(self.remove(&account, "Kicked", &reason, admin, now));
                }
                Ok((None, sent))
            }
            wire::UNBAN_ROOM_MEMBER => {
                for account in accounts_in(body)? {
                    self.bans.remove(&account);
                }
                Ok((None, Vec::new()))
            }
            wire::GET_BANNED_MEMBER_LIST => {
                let list: Vec<Value> = self
                    .bans(now)
                    .into_iter()
                    .map(|(account, until)| json!({"Member_Account": account, "EndTime": until as i64}))
                    .collect();
                Ok((Some(json!({"BannedMemberList": list})), Vec::new()))
            }
            wire::UPDATE_ROOM_MEMBER_INFO => {
                self.update_member(body, now)?;
                Ok((None, Vec::new()))
            }
            wire::LOCK_SEAT => Ok((None, self.lock_seat(body, now)?)),
            wire::DESTROY_ROOM => {
                // Everyone goes with the room; no leave callbacks (inferred.rs).
                for uuid in self.accounts.keys().cloned().collect::<Vec<_>>() {
                    self.conference.remove_participant(&uuid);
                }
                self.accounts.clear();
                self.uuids.clear();
                for seat in &mut self.seats {
                    seat.member = None;
                }
                self.destroyed = true;
                let body = json!({
                    "CallbackCommand": wire::DESTROYED,
                    "Operator_Account": admin,
                    "RoomId": self.id,
                    "EventTime": self.event_time(now),
                });
                Ok((None, vec![self.outgoing(wire::DESTROYED, body, "RESTAPI")]))
            }
            other => Err((
                sim_codes::BAD_REQUEST,
                format!("{} is not handled here", other.command),
            )),
        }
    }

    fn join(&mut self, joiner: &Joiner, now: f64) -> Result<Vec<Outgoing>, SimError> {
        let account = self.new_account(joiner);
        if self.bans.get(&account).is_some_and(|until| *until > now) {
            return Err(SimError::Rejected(format!(
                "{account} is banned from the room"
            )));
        }
        let events = self
            .conference
            .apply_step(&Step::Join(joiner.clone()), now)?;
        let Some(uuid) = events.iter().find_map(|event| match event {
            crate::model::Event::Participant(p) if !self.accounts.contains_key(&p.uuid) => {
                Some(p.uuid.clone())
            }
            _ => None,
        }) else {
            return Ok(Vec::new());
        };
        self.accounts.insert(uuid.clone(), account.clone());
        self.uuids.insert(account.clone(), uuid);
        self.name_cards.insert(account.clone(), joiner.name.clone());
        if joiner.role == Role::Chair && account != self.owner && !self.admins.contains(&account) {
            self.admins.push(account.clone());
        }
        let body = json!({
            "CallbackCommand": wire::MEMBER_ENTERED,
            "Operator_Account": account,
            "RoomId": self.id,
            "MemberCount": self.accounts.len(),
            "Type": "Enter",
            "MemberList_Account": [account],
            "EventTime": self.event_time(now),
        });
        let mut sent = vec![self.outgoing(wire::MEMBER_ENTERED, body, "Web")];
        if account == self.owner && !self.running {
            self.running = true;
            let body = json!({
                "CallbackCommand": wire::UPDATED,
                "Operator_Account": account,
                "RoomInfo": {"RoomId": self.id, "RoomStatus": "Running"},
                "EventTime": self.event_time(now),
            });
            sent.push(self.outgoing(wire::UPDATED, body, "Web"));
        }
        if let Some(index) = self
            .seats
            .iter()
            .position(|seat| seat.member.is_none() && !seat.taken_disabled)
        {
            self.seats[index].member = Some(account.clone());
            sent.push(self.seat_callback(&[index], &account, now));
        }
        Ok(sent)
    }

    /// A member leaves (`Leave`), is removed (`Kicked`) or stops answering
    /// (`Expired`); their seat frees.
    fn remove(
        &mut self,
        account: &str,
        kind: &str,
        reason: &str,
        operator: &str,
        now: f64,
    ) -> Vec<Outgoing> {
        let Some(uuid) = self.uuids.remove(account) else {
            return Vec::new();
        };
        self.accounts.remove(&uuid);
        self.conference.remove_participant(&uuid);
        let body = json!({
            "CallbackCommand": wire::MEMBER_LEFT,
            "Operator_Account": operator,
            "RoomId": self.id,
            "MemberCount": self.accounts.len(),
            "Type": kind,
            "Reason": reason,
            "MemberList_Account": [account],
            "EventTime": self.event_time(now),
        });
        let platform = if operator == account {
            "Web"
        } else {
            "RESTAPI"
        };
        let mut sent = vec![self.outgoing(wire::MEMBER_LEFT, body, platform)];
        if let Some(index) = self.seat_of(account) {
            self.seats[index].member = None;
            sent.push(self.seat_callback(&[index], account, now));
        }
        sent
    }

    fn update_info(
        &mut self,
        body: &Value,
        admin: &str,
        now: f64,
    ) -> Result<Vec<Outgoing>, Refusal> {
        let info = body
            .get("RoomInfo")
            .and_then(Value::as_object)
            .ok_or_else(|| invalid("`RoomInfo` is required"))?;
        let mut changed = Map::new();
        if let Some(disabled) = info.get("IsAudioDisabled").and_then(flag)
            && disabled != self.audio_disabled
        {
            self.audio_disabled = disabled;
            let command = if disabled {
                ConferenceCommand::MuteGuests
            } else {
                ConferenceCommand::UnmuteGuests
            };
            self.conference
                .apply_command(&actor(admin), &Command::Conference(command), now)
                .map_err(|err| invalid(&err.to_string()))?;
            changed.insert("IsAudioDisabled".into(), json!(disabled));
        }
        if let Some(disabled) = info.get("IsVideoDisabled").and_then(flag)
            && disabled != self.video_disabled
        {
            self.video_disabled = disabled;
            changed.insert("IsVideoDisabled".into(), json!(disabled));
        }
        if let Some(name) = info.get("RoomName").and_then(Value::as_str)
            && name != self.name
        {
            self.name = name.to_owned();
            changed.insert("RoomName".into(), json!(name));
        }
        if changed.is_empty() {
            return Ok(Vec::new());
        }
        changed.insert("RoomId".into(), json!(self.id));
        // The update callback's sample writes this flag as a string.
        changed.insert("IsCloudRecordingDisabled".into(), json!("false"));
        let body = json!({
            "CallbackCommand": wire::UPDATED,
            "Operator_Account": admin,
            "RoomInfo": changed,
            "EventTime": self.event_time(now),
        });
        Ok(vec![self.outgoing(wire::UPDATED, body, "RESTAPI")])
    }

    fn update_member(&mut self, body: &Value, now: f64) -> Result<(), Refusal> {
        let info = body
            .get("MemberInfo")
            .and_then(Value::as_object)
            .ok_or_else(|| invalid("`MemberInfo` is required"))?;
        let account = info
            .get("Member_Account")
            .and_then(id)
            .ok_or_else(|| invalid("`MemberInfo.Member_Account` is required"))?;
        let uuid = self.uuids.get(&account).cloned().ok_or_else(not_member)?;
        if let Some(name) = info.get("NameCard").and_then(Value::as_str) {
            self.name_cards.insert(account.clone(), name.to_owned());
        }
        if let Some(role) = info.get("Role").and_then(Value::as_str) {
            if account == self.owner {
                return Err(invalid(
                    "the owner's role is changed with change_room_owner",
                ));
            }
            let role = match role {
                "Admin" => Role::Chair,
                "Member" => Role::Guest,
                other => return Err(invalid(&format!("`Role` {other:?} is not Admin or Member"))),
            };
            self.admins.retain(|admin| *admin != account);
            if role == Role::Chair {
                self.admins.push(account.clone());
            }
            let command = Command::participant(&uuid, &account, ParticipantCommand::SetRole(role));
            self.conference
                .apply_command(&actor("administrator"), &command, now)
                .map_err(|err| invalid(&err.to_string()))?;
        }
        Ok(())
    }

    fn lock_seat(&mut self, body: &Value, now: f64) -> Result<Vec<Outgoing>, Refusal> {
        if self.seats.is_empty() {
            return Err(no_seats());
        }
        let index = body
            .get("Index")
            .and_then(Value::as_i64)
            .filter(|index| (0..self.seats.len() as i64).contains(index))
            .ok_or_else(|| (sim_codes::NO_SUCH_SEAT, "no such seat".to_owned()))?
            as usize;
        let before = self.seats[index].clone();
        let seat = &mut self.seats[index];
        if let Some(flag) = body.get("ForbidTaken").and_then(flag) {
            seat.taken_disabled = flag;
        }
        if let Some(flag) = body.get("ForbidVideo").and_then(flag) {
            seat.video_disabled = flag;
        }
        if let Some(flag) = body.get("ForbidAudio").and_then(flag) {
            seat.audio_disabled = flag;
        }
        if seat.taken_disabled {
            // Locking a seat removes whoever sits there first.
            seat.member = None;
        }
        let seat = seat.clone();
        if let Some(account) = &before.member
            && seat.audio_disabled != before.audio_disabled
            && let Some(uuid) = self.uuids.get(account).cloned()
        {
            let action = if seat.audio_disabled {
                ParticipantCommand::Mute
            } else {
                ParticipantCommand::Unmute
            };
            let command = Command::participant(&uuid, account, action);
            self.conference
                .apply_command(&actor("administrator"), &command, now)
                .map_err(|err| invalid(&err.to_string()))?;
        }
        let unchanged = seat.member == before.member
            && seat.taken_disabled == before.taken_disabled
            && seat.video_disabled == before.video_disabled
            && seat.audio_disabled == before.audio_disabled;
        if unchanged {
            return Ok(Vec::new());
        }
        let operator = before.member.clone().unwrap_or_default();
        Ok(vec![self.seat_callback(&[index], &operator, now)])
    }

    fn member_page(&self, body: &Value) -> Result<Value, Refusal> {
        let count = body
            .get("Count")
            .and_then(Value::as_u64)
            .unwrap_or(50)
            .clamp(1, 100) as usize;
        let start = match body.get("Next").and_then(Value::as_str).unwrap_or("") {
            "" => 0,
            next => next
                .strip_prefix("member-")
                .and_then(|at| at.parse::<usize>().ok())
                .ok_or_else(|| invalid("`Next` is not a cursor this room gave"))?,
        };
        let members: Vec<(&String, &String)> = self
            .conference
            .participants()
            .filter_map(|p| self.accounts.get_key_value(&p.uuid))
            .collect();
        let page: Vec<Value> = members
            .iter()
            .skip(start)
            .take(count)
            .map(|(_, account)| {
                let role = if **account == self.owner {
                    "RoomOwner"
                } else if self.admins.contains(account) {
                    "Admin"
                } else {
                    "Member"
                };
                json!({
                    "Member_Account": account,
                    "NameCard": self.name_cards.get(*account).cloned().unwrap_or_default(),
                    "Role": role,
                    "Marks": [],
                    "CustomInfo": "",
                })
            })
            .collect();
        let next = if start + count < members.len() {
            format!("member-{}", start + count)
        } else {
            String::new()
        };
        Ok(json!({"Next": next, "MemberList": page}))
    }

    fn info_json(&self) -> Value {
        let (start, end) = self.schedule.unwrap_or((0, 0));
        json!({
            "RoomId": self.id,
            "RoomName": self.name,
            "RoomType": "Conference",
            "Owner_Account": self.owner,
            "MaxMemberCount": 300,
            "MaxSeatCount": self.seats.len(),
            "IsVideoDisabled": self.video_disabled,
            "IsAudioDisabled": self.audio_disabled,
            "IsMessageDisabled": false,
            "IsScreenSharingDisabled": false,
            "IsCloudRecordingDisabled": false,
            "CustomInfo": "",
            "ScheduleStartTime": start,
            "ScheduleEndTime": end,
            "RoomStatus": self.status(),
            "IsSeatEnabled": !self.seats.is_empty(),
            "TakeSeatMode": self.take_seat_mode(),
            "CreateTime": self.created,
        })
    }

    fn seat_list(&self) -> Vec<Value> {
        (0..self.seats.len())
            .map(|index| self.seat_json(index, false))
            .collect()
    }

    /// One seat on the wire. In callbacks an all-digit account goes out as
    /// a bare number, as in the seat callback's sample.
    fn seat_json(&self, index: usize, in_callback: bool) -> Value {
        let seat = &self.seats[index];
        let member = match &seat.member {
            Some(account) if in_callback => account
                .parse::<u64>()
                .map_or_else(|_| json!(account), |number| json!(number)),
            Some(account) => json!(account),
            None => json!(""),
        };
        json!({
            "Index": index,
            "Member_Account": member,
            "IsTakenDisabled": seat.taken_disabled,
            "IsVideoDisabled": seat.video_disabled,
            "IsAudioDisabled": seat.audio_disabled,
        })
    }

    fn seat_callback(&mut self, seats: &[usize], operator: &str, now: f64) -> Outgoing {
        let list: Vec<Value> = seats
            .iter()
            .map(|index| self.seat_json(*index, true))
            .collect();
        let body = json!({
            "CallbackCommand": wire::SEATS_CHANGED,
            "Operator_Account": operator,
            "RoomId": self.id,
            "SeatList": list,
            "EventTime": self.event_time(now),
        });
        self.outgoing(wire::SEATS_CHANGED, body, "RESTAPI")
    }

    fn outgoing(&self, command: &'static str, body: Value, platform: &'static str) -> Outgoing {
        Outgoing {
            room: self.id.clone(),
            command,
            body,
            platform,
        }
    }

    /// The time of the next callback in ms: now, but always later than the
    /// room's previous callback, so one room's callbacks order strictly.
    fn event_time(&mut self, now: f64) -> i64 {
        let at = ((now * 1000.0) as i64).max(self.last_event_ms + 1);
        self.last_event_ms = at;
        at
    }

    fn status(&self) -> &'static str {
        if self.running {
            "Running"
        } else {
            "NotStarted"
        }
    }

    fn take_seat_mode(&self) -> &'static str {
        if self.seats.is_empty() {
            "None"
        } else {
            "FreeToTake"
        }
    }

    fn is_host(&self, account: &str) -> bool {
        account == self.owner || self.admins.iter().any(|admin| admin == account)
    }

    fn seat_of(&self, account: &str) -> Option<usize> {
        self.seats
            .iter()
            .position(|seat| seat.member.as_deref() == Some(account))
    }

    fn named(&self, name: &str) -> Result<String, SimError> {
        self.account_of(name)
            .ok_or_else(|| SimError::UnknownParticipant(name.to_owned()))
    }

    /// The account a joiner gets: [`account_for`], unique in the room.
    fn new_account(&self, joiner: &Joiner) -> String {
        let base = account_for(joiner);
        if joiner
            .uri
            .as_deref()
            .is_some_and(|uri| !uri.trim().is_empty())
        {
            return base;
        }
        let mut account = base.clone();
        let mut n = 2;
        while self.uuids.contains_key(&account) {
            account = format!("{base}_{n}");
            n += 1;
        }
        account
    }

    fn listed_members(&self, body: &Value) -> Result<Vec<String>, Refusal> {
        let accounts = accounts_in(body)?;
        let present: Vec<String> = accounts
            .into_iter()
            .filter(|account| self.uuids.contains_key(account))
            .collect();
        if present.is_empty() {
            return Err(not_member());
        }
        Ok(present)
    }
}

/// The account a joiner's client signs in with: their `uri` when given (so
/// tests can pick an 18-digit one), else their name in lower case.
pub fn account_for(joiner: &Joiner) -> String {
    if let Some(uri) = joiner
        .uri
        .as_deref()
        .map(str::trim)
        .filter(|uri| !uri.is_empty())
    {
        return uri.to_owned();
    }
    let base = joiner
        .name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect::<String>()
        .split('_')
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join("_");
    if base.is_empty() {
        "member".to_owned()
    } else {
        base
    }
}

/// The accounts of `MemberList_Account` (1 to 20 of them).
fn accounts_in(body: &Value) -> Result<Vec<String>, Refusal> {
    let accounts: Vec<String> = body
        .get("MemberList_Account")
        .and_then(Value::as_array)
        .map(|list| list.iter().filter_map(id).collect())
        .unwrap_or_default();
    if accounts.is_empty() || accounts.len() > 20 {
        return Err(invalid("`MemberList_Account` must list 1 to 20 accounts"));
    }
    Ok(accounts)
}

fn id(value: &Value) -> Option<String> {
    match value {
        Value::String(text) if !text.is_empty() => Some(text.clone()),
        Value::Number(number) if number.is_u64() || number.is_i64() => Some(number.to_string()),
        _ => None,
    }
}

fn flag(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(flag) => Some(*flag),
        Value::String(text) => Some(crate::platform::lenient::flag_from_str(text)),
        _ => None,
    }
}

fn text(body: &Value, field: &str) -> String {
    body.get(field)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

fn actor(name: &str) -> Actor {
    Actor {
        uuid: String::new(),
        name: name.to_owned(),
    }
}

fn invalid(why: &str) -> Refusal {
    (INVALID_PARAMETER, why.to_owned())
}

fn not_member() -> Refusal {
    (NOT_A_MEMBER, "not a member of the room".to_owned())
}

fn no_seats() -> Refusal {
    (sim_codes::NO_SUCH_SEAT, "the room has no seats".to_owned())
}

/// The answer for a room that does not exist.
pub fn room_not_found(room: &str) -> Refusal {
    (
        ROOM_NOT_FOUND,
        format!("room {room} does not exist, or was destroyed"),
    )
}
