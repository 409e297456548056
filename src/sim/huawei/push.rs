//! The simulated meeting's pushes: neutral events written as Huawei's
//! notify frames.
//!
//! [`Pusher`] remembers each participant's `pinfoMap` as last pushed, so an
//! incremental push carries only the keys that changed (a join carries them
//! all), and numbers each type's incrementals with a strictly increasing
//! `version`. Full messages use the time in ms as `version`. Every
//! `msgID` is new. The quirks a real server shows are reproduced on
//! purpose: every `pinfoMap` value is a string, participants spell
//! `CLICENT_LOGIN_TYPE` and the waiting list `CLIENT_LOGIN_TYPE`, keys the
//! documentation does not list appear, `picNum` is a number, and waiting-list
//! removals carry `delType`.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::{Value, json};

use crate::model::{Event, Participant, Role, RoomFlags, ServiceType};
use crate::platform::huawei::inferred;
use crate::platform::huawei::wire::{self, key};

/// A participant's `pinfoMap`.
pub type Pinfo = BTreeMap<String, String>;

/// What the pushes need to know of the meeting besides one event.
pub struct MeetingView<'a> {
    /// The conference ID.
    pub conf_id: &'a str,
    /// The title.
    pub title: &'a str,
    /// Who booked it.
    pub owner: &'a str,
    /// When it started and was scheduled to start, UNIX ms.
    pub started_ms: i64,
    /// When it was scheduled to start, UNIX ms.
    pub scheduled_ms: i64,
    /// `Schedule`, `Created` or `Destroyed`.
    pub state: &'a str,
    /// The chair password, pushed in clear as the seed shows.
    pub chair_password: &'a str,
    /// The room's flags.
    pub flags: RoomFlags,
    /// Someone is broadcast.
    pub broadcasting: bool,
    /// Participants made co-host.
    pub cohosts: &'a HashSet<String>,
    /// Everyone present, waiting room included.
    pub participants: Vec<&'a Participant>,
}

/// One frame for the sockets subscribed to its type.
#[derive(Debug, Clone, PartialEq)]
pub struct Push {
    /// The notify type.
    pub kind: &'static str,
    /// The frame.
    pub text: String,
}

/// Writes pushes, remembering what each participant's last push said.
#[derive(Debug, Default)]
pub struct Pusher {
    versions: HashMap<&'static str, i64>,
    participants: HashMap<String, Pinfo>,
    waiting: HashMap<String, Pinfo>,
}

impl Pusher {
    /// The incremental pushes (and full dynamic-info push) an event makes.
    pub fn event(&mut self, event: &Event, view: &MeetingView) -> Vec<Push> {
        match event {
            Event::Participant(p) if p.is_waiting() => self.waiting_upsert(p, view.conf_id),
            Event::Participant(p) => self.participant_upsert(p, view),
            Event::ParticipantLeft { uuid } => self.left(uuid, view.conf_id),
            Event::RoomUpdate(_) => vec![self.dynamic(view)],
            Event::Stage(stage) => {
                let speaking: Vec<Value> = stage
                    .iter()
                    .filter(|entry| entry.vad > 0)
                    .map(|entry| json!({ inferred::SPEAKER_PID: entry.participant_uuid }))
                    .collect();
                vec![self.full(
                    wire::SPEAKER_CHANGE,
                    view.conf_id,
                    json!({ "data": speaking }),
                )]
            }
            Event::Roster(_)
            | Event::PresentationStart(_)
            | Event::PresentationStop
            | Event::Layout(_)
            | Event::Message(_)
            | Event::Disconnected { .. } => Vec::new(),
        }
    }

    /// The full push of `kind`, for a socket that just subscribed.
    pub fn full_of(&mut self, kind: &str, view: &MeetingView) -> Option<Push> {
        Some(match kind {
            wire::BASIC_INFO => self.basic(view),
            wire::DYNAMIC_INFO => self.dynamic(view),
            wire::PARTICIPANTS => {
                let data: Vec<Value> = view
                    .participants
                    .iter()
                    .filter(|p| !p.is_waiting())
                    .map(|p| entry(&p.uuid, wire::UPSERT, &participant_pinfo(p, view.cohosts)))
                    .collect();
                self.full(wire::PARTICIPANTS, view.conf_id, json!({ "data": data }))
            }
            wire::WAITING_LIST => {
                let data: Vec<Value> = view
                    .participants
                    .iter()
                    .filter(|p| p.is_waiting())
                    .map(|p| entry(&p.uuid, wire::UPSERT, &waiting_pinfo(p)))
                    .collect();
                self.full(wire::WAITING_LIST, view.conf_id, json!({ "data": data }))
            }
            wire::SPEAKER_CHANGE => {
                self.full(wire::SPEAKER_CHANGE, view.conf_id, json!({ "data": [] }))
            }
            _ => return None,
        })
    }

    /// The dynamic-info push: always full (the reference: fixed to 0).
    pub fn dynamic(&mut self, view: &MeetingView) -> Push {
        let flag = |on: bool| i64::from(on);
        let body = json!({
            "state": view.state,
            "endTime": "0",
            "mode": if view.broadcasting { "BROADCAST" } else { "FREE" },
            "lock": flag(view.flags.locked),
            "mute": flag(view.flags.guests_muted),
            "canUnmute": 1,
            "lockSharing": 0,
            "recState": 0,
            "vas": 1,
            "chairView": "",
            "picNum": 1,
            "partViewNum": 0,
            "maxPartViewNum": 25,
            "forbiddenChat": 0,
            "confIMGroupId": "",
            "realTimeSubtitle": 0,
            "waitingRoomState": flag(view.flags.locked),
        });
        self.full(wire::DYNAMIC_INFO, view.conf_id, body)
    }

    /// The basic-info push, shaped exactly as seed 002 shows it.
    fn basic(&mut self, view: &MeetingView) -> Push {
        let body = json!({
            "displayID": view.conf_id,
            "title": view.title,
            "startTime": view.started_ms.to_string(),
            "guestJoinUri": format!("https://127.0.0.1/#/j/{}", view.conf_id),
            "pwds": [
                {"role": "chair", "pwd": view.chair_password},
                {"role": "general", "pwd": ""},
            ],
            "recType": 1,
            "media": 2,
            "owner": view.owner,
            "orgID": "44252",
            "aiRecType": 0,
            "callInRestriction": 0,
            "audienceCallInRestriction": 0,
            "confMode": "COMMON",
            "webinar": false,
            "realTimeSubtitle": 0,
            "bignumMultiPicSwitch": true,
            "partViewSwitch": true,
            "simultaneousInterpretation": 0,
            "supportWatermark": 1,
            "userType": 2,
            "ownerID": "271682cfdbe14fa9ae3a8b25f7502627",
            "scheduledStartTime": view.scheduled_ms.to_string(),
            "supportCohost": 1,
            "supportClientRecord": 1,
            "inviteShareSwitch": true,
            "confPortalCapabilities": "1",
            "supportWaitingRoom": true,
        });
        self.full(wire::BASIC_INFO, view.conf_id, body)
    }

    fn participant_upsert(&mut self, p: &Participant, view: &MeetingView) -> Vec<Push> {
        let mut pushes = Vec::new();
        if self.waiting.remove(&p.uuid).is_some() {
            // Admitted: marked as joining, removed from the list, then online.
            let joining =
                Pinfo::from([(key::WAITINGSTATE.to_owned(), inferred::ADMITTED.to_owned())]);
            pushes.push(self.incremental(
                wire::WAITING_LIST,
                view.conf_id,
                vec![entry(&p.uuid, wire::UPSERT, &joining)],
            ));
            let mut removal = entry(&p.uuid, wire::REMOVE, &Pinfo::new());
            removal["delType"] = json!(0);
            pushes.push(self.incremental(wire::WAITING_LIST, view.conf_id, vec![removal]));
        }
        let pinfo = participant_pinfo(p, view.cohosts);
        let changed = match self.participants.get(&p.uuid) {
            None => pinfo.clone(),
            Some(before) => pinfo
                .iter()
                .filter(|(name, value)| before.get(*name) != Some(*value))
                .map(|(name, value)| (name.clone(), value.clone()))
                .collect(),
        };
        self.participants.insert(p.uuid.clone(), pinfo);
        if !changed.is_empty() {
            pushes.push(self.incremental(
                wire::PARTICIPANTS,
                view.conf_id,
                vec![entry(&p.uuid, wire::UPSERT, &changed)],
            ));
        }
        pushes
    }

    fn waiting_upsert(&mut self, p: &Participant, conf_id: &str) -> Vec<Push> {
        let pinfo = waiting_pinfo(p);
        let changed: Pinfo = match self.waiting.get(&p.uuid) {
            None => pinfo.clone(),
            Some(before) => pinfo
                .iter()
                .filter(|(name, value)| before.get(*name) != Some(*value))
                .map(|(name, value)| (name.clone(), value.clone()))
                .collect(),
        };
        self.waiting.insert(p.uuid.clone(), pinfo);
        if changed.is_empty() {
            return Vec::new();
        }
        vec![self.incremental(
            wire::WAITING_LIST,
            conf_id,
            vec![entry(&p.uuid, wire::UPSERT, &changed)],
        )]
    }

    fn left(&mut self, pid: &str, conf_id: &str) -> Vec<Push> {
        if self.participants.remove(pid).is_some() {
            return vec![self.incremental(
                wire::PARTICIPANTS,
                conf_id,
                vec![entry(pid, wire::REMOVE, &Pinfo::new())],
            )];
        }
        if self.waiting.remove(pid).is_some() {
            let mut removal = entry(pid, wire::REMOVE, &Pinfo::new());
            removal["delType"] = json!(1);
            return vec![self.incremental(wire::WAITING_LIST, conf_id, vec![removal])];
        }
        Vec::new()
    }

    /// Forgets everyone (the meeting ended).
    pub fn clear(&mut self) {
        self.participants.clear();
        self.waiting.clear();
    }

    fn incremental(&mut self, kind: &'static str, conf_id: &str, data: Vec<Value>) -> Push {
        let version = self.versions.entry(kind).or_insert(0);
        *version += 1;
        let version = *version;
        frame(
            kind,
            conf_id,
            wire::INCREMENTAL,
            version,
            json!({ "data": data }),
        )
    }

    fn full(&mut self, kind: &'static str, conf_id: &str, body: Value) -> Push {
        frame(kind, conf_id, wire::FULL, now_ms(), body)
    }
}

/// A push with the common envelope around `body`'s fields.
fn frame(kind: &'static str, conf_id: &str, mode: i64, version: i64, mut body: Value) -> Push {
    if let Value::Object(fields) = &mut body {
        fields.insert("confID".to_owned(), json!(conf_id));
        fields.insert("msgID".to_owned(), json!(message_id()));
        fields.insert("msgMode".to_owned(), json!(mode));
        fields.insert("version".to_owned(), json!(version));
        fields.insert("createTime".to_owned(), json!(now_ms()));
        fields.insert("action".to_owned(), json!(kind));
    }
    Push {
        kind,
        text: body.to_string(),
    }
}

fn entry(pid: &str, mode: i64, pinfo: &Pinfo) -> Value {
    if mode == wire::REMOVE {
        return json!({ "pid": pid, "mode": mode });
    }
    json!({ "pid": pid, "mode": mode, "pinfoMap": pinfo })
}

fn flag(on: bool) -> String {
    if on { "1" } else { "0" }.to_owned()
}

/// Every key a participant's push carries, all strings.
pub fn participant_pinfo(p: &Participant, cohosts: &HashSet<String>) -> Pinfo {
    let cohost = cohosts.contains(&p.uuid);
    let phone = matches!(p.protocol.as_str(), "phone" | "sip" | "h323");
    Pinfo::from([
        (key::NAME.to_owned(), p.display_name.clone()),
        (
            key::TEL.to_owned(),
            if phone { p.uri.clone() } else { String::new() },
        ),
        (key::ROLE.to_owned(), flag(p.role == Role::Chair && !cohost)),
        (
            key::STATE.to_owned(),
            flag(p.service_type == ServiceType::Connecting),
        ),
        (key::MUTE.to_owned(), flag(p.muted)),
        (key::HAND.to_owned(), flag(p.hand_raised())),
        (key::BROADCAST.to_owned(), flag(p.spotlit())),
        (key::ROLLCALL.to_owned(), flag(false)),
        (key::SHARE.to_owned(), flag(p.presenting)),
        (
            key::ADDTIME.to_owned(),
            ((p.start_time * 1000.0) as i64).to_string(),
        ),
        (key::VIDEO.to_owned(), flag(!p.audio_only)),
        (key::ANONYMOUS.to_owned(), flag(false)),
        (key::LOCALREC.to_owned(), flag(false)),
        ("M".to_owned(), flag(false)),
        ("T".to_owned(), flag(false)),
        ("VIEW_TYPE".to_owned(), flag(false)),
        (key::CLICENT_LOGIN_TYPE.to_owned(), login_type(p)),
        (inferred::CO_HOST_KEY.to_owned(), flag(cohost)),
        (inferred::USER_AGENT_KEY.to_owned(), p.vendor.clone()),
        // Keys the documentation does not list, as integrators see them.
        (
            "CAMERA_STATE".to_owned(),
            flag(p.video_call && !p.video_muted),
        ),
        ("IS_SVC".to_owned(), flag(false)),
    ])
}

/// Every key a waiting-list push carries, all strings.
pub fn waiting_pinfo(p: &Participant) -> Pinfo {
    Pinfo::from([
        (key::NAME.to_owned(), p.display_name.clone()),
        (
            key::ADDTIME.to_owned(),
            ((p.start_time * 1000.0) as i64).to_string(),
        ),
        (key::ANONYMOUS.to_owned(), flag(false)),
        (key::CLIENT_LOGIN_TYPE.to_owned(), login_type(p)),
        (key::ORG_ID.to_owned(), String::new()),
        (key::ACCOUNT_ID.to_owned(), String::new()),
        (key::ACCOUNT.to_owned(), String::new()),
        (key::THIRDACCOUNT.to_owned(), String::new()),
        (key::TEL.to_owned(), String::new()),
        (key::WAITINGSTATE.to_owned(), "0".to_owned()),
    ])
}

/// A login type per protocol (the values' meaning is not documented).
fn login_type(p: &Participant) -> String {
    match p.protocol.as_str() {
        "sip" | "h323" => "3",
        "phone" => "4",
        _ => "1",
    }
    .to_owned()
}

fn message_id() -> String {
    format!("{:032x}", fastrand::u128(..))
}

fn now_ms() -> i64 {
    (crate::clock::unix_now() * 1000.0) as i64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::huawei::decode::{Decoder, Frame};

    fn person(name: &str, role: Role, service_type: ServiceType) -> Participant {
        Participant {
            uuid: format!("pid-{name}"),
            display_name: name.to_owned(),
            role,
            service_type,
            local_alias: "900487914".into(),
            start_time: 1_700_000_000.0,
            protocol: "webrtc".into(),
            ..Participant::default()
        }
    }

    fn view<'a>(
        cohosts: &'a HashSet<String>,
        participants: Vec<&'a Participant>,
    ) -> MeetingView<'a> {
        MeetingView {
            conf_id: "900487914",
            title: "Lecture",
            owner: "Ada",
            started_ms: 1,
            scheduled_ms: 1,
            state: "Created",
            chair_password: "chair-pw",
            flags: RoomFlags::default(),
            broadcasting: false,
            cohosts,
            participants,
        }
    }

    fn decode(decoder: &mut Decoder, push: &Push) -> Vec<Event> {
        match decoder.decode(&push.text, 1_700_000_000.0).unwrap() {
            Frame::Events(events) => events,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn incrementals_carry_only_what_changed_with_rising_versions() {
        let cohosts = HashSet::new();
        let mut pusher = Pusher::default();
        let mut bob = person("Bob", Role::Guest, ServiceType::Conference);
        let join = pusher.event(&Event::Participant(bob.clone()), &view(&cohosts, vec![]));
        bob.muted = true;
        let mute = pusher.event(&Event::Participant(bob.clone()), &view(&cohosts, vec![]));
        let join: Value = serde_json::from_str(&join[0].text).unwrap();
        let mute: Value = serde_json::from_str(&mute[0].text).unwrap();
        assert_eq!(join["version"], 1);
        assert_eq!(mute["version"], 2);
        assert_ne!(join["msgID"], mute["msgID"]);
        assert_eq!(mute["data"][0]["pinfoMap"], json!({"MUTE": "1"}));
        let pinfo = join["data"][0]["pinfoMap"].as_object().unwrap();
        assert!(pinfo.values().all(Value::is_string));
        assert!(pinfo.contains_key("CLICENT_LOGIN_TYPE") && pinfo.contains_key("CAMERA_STATE"));
    }

    #[test]
    fn what_the_simulator_pushes_the_adapter_reads_back() {
        let cohosts = HashSet::from(["pid-Cy".to_owned()]);
        let mut pusher = Pusher::default();
        let ada = person("Ada", Role::Chair, ServiceType::Conference);
        let cy = person("Cy", Role::Chair, ServiceType::Conference);
        let dee = person("Dee", Role::Guest, ServiceType::WaitingRoom);
        let present = view(&cohosts, vec![&ada, &cy, &dee]);
        let mut decoder = Decoder::new("900487914");
        decoder.begin_snapshot();
        let mut events = Vec::new();
        for kind in wire::SUBSCRIBED {
            let push = pusher.full_of(kind, &present).unwrap();
            events.extend(decode(&mut decoder, &push));
        }
        let Some(Event::Roster(listed)) = events.first() else {
            panic!("{events:?}");
        };
        assert_eq!(listed.len(), 3);
        assert!(
            listed
                .iter()
                .find(|p| p.display_name == "Cy")
                .unwrap()
                .is_host()
        );
        assert!(
            listed
                .iter()
                .find(|p| p.display_name == "Dee")
                .unwrap()
                .is_waiting()
        );
        assert!(!decoder.holds_host_role("pid-Cy") && decoder.holds_host_role("pid-Ada"));

        // Admitting Dee: the waiting list marks her, drops her, and she is online.
        let mut admitted = dee.clone();
        admitted.service_type = ServiceType::Conference;
        pusher.waiting.insert(dee.uuid.clone(), waiting_pinfo(&dee));
        let pushes = pusher.event(&Event::Participant(admitted.clone()), &present);
        assert_eq!(pushes.len(), 3);
        let mut out = Vec::new();
        for push in &pushes {
            out.extend(decode(&mut decoder, push));
        }
        assert_eq!(out, [Event::Participant(decoder_view(&admitted))]);
    }

    /// How the adapter reads a participant the simulator describes.
    fn decoder_view(p: &Participant) -> Participant {
        Participant {
            has_media: true,
            video_call: true,
            vendor: String::new(),
            protocol: String::new(),
            ..p.clone()
        }
    }
}
