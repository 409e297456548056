//! One simulated Agora conference room: the shared [`Conference`] plus
//! Agora's lifecycle and its view of who is in the room. Pure: every call
//! takes `now` (UNIX seconds) and returns the callbacks it causes.
//!
//! - Lifecycle `0 not started → 1 running → 2 ended → 3 closed`, driven by
//!   the schedule (`startTime`, `duration`, `closeDelay`) through [`tick`]
//!   and by the states call. People may enter in states 0–2; at 3 everyone
//!   is ejected and nobody may enter. Without a `startTime` a room runs
//!   from its creation; without a `closeDelay` an ended room stays open
//!   until it is closed by a call.
//! - Only people in the room proper are on Agora's wire: someone the shared
//!   conference holds in a waiting room (Agora has none) has not entered.
//! - Every callback takes the room's next `sequence`; the numbering counts
//!   every event of the room, so a cmd the room does not subscribe to
//!   leaves a gap (see `inferred::SEQUENCE_COUNTS_UNSUBSCRIBED`). Only subscribed
//!   cmds are returned for delivery.
//!
//! [`tick`]: AgoraRoom::tick

use std::collections::{HashMap, HashSet};

use crate::model::{Command, Event, Participant, ParticipantCommand};
use crate::platform::agora::inferred::{
    self, ChatReceived, Dirty, RoomInfo, RoomInfoProperties, RoomStateChanged, StreamsBody, User,
    UsersChanged, state,
};
use crate::platform::agora::wire::{Callback, ScheduleWire, WebhookConfig};
use crate::sim::conference::{Actor, Conference, SimError};
use crate::sim::step::Step;

/// How long a room is kept after its creation: five days (seed 004).
pub const KEPT_FOR: f64 = 5.0 * 86_400.0;

/// Why a state change was refused: the platform's business code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conflict(pub i64);

/// One room.
#[derive(Debug)]
pub struct AgoraRoom {
    uuid: String,
    name: String,
    conference: Conference,
    state: i64,
    schedule: ScheduleWire,
    created: f64,
    /// When the room entered state 2, for its overtime window.
    ended: Option<f64>,
    hooks: WebhookConfig,
    cmds: Vec<i64>,
    next_sequence: u64,
    /// Users on the wire, by the conference's uuid.
    published: HashMap<String, User>,
    next_stream: u64,
    /// Users kept out until then (UNIX seconds), by name.
    barred: HashMap<String, f64>,
    /// Users whose next leave is a kick.
    kicked: HashSet<String>,
}

impl AgoraRoom {
    /// A room created at `now`.
    pub fn new(
        uuid: &str,
        name: &str,
        schedule: ScheduleWire,
        hooks: WebhookConfig,
        now: f64,
        seed: u64,
    ) -> Self {
        let starts_later = schedule
            .start_time
            .is_some_and(|start| start as f64 / 1000.0 > now);
        let cmds = hooks.cmd_numbers();
        AgoraRoom {
            uuid: uuid.to_owned(),
            name: name.to_owned(),
            conference: Conference::with_seed(uuid, seed),
            state: if starts_later {
                state::NOT_STARTED
            } else {
                state::RUNNING
            },
            schedule,
            created: now,
            ended: None,
            hooks,
            cmds,
            next_sequence: 1,
            published: HashMap::new(),
            next_stream: 1000,
            barred: HashMap::new(),
            kicked: HashSet::new(),
        }
    }

    /// The room's id.
    pub fn uuid(&self) -> &str {
        &self.uuid
    }

    /// The shared conference underneath.
    pub fn conference(&self) -> &Conference {
        &self.conference
    }

    /// The room's state (see `inferred::state`).
    pub fn state(&self) -> i64 {
        self.state
    }

    /// Where its callbacks go.
    pub fn hook_urls(&self) -> &[String] {
        &self.hooks.urls
    }

    /// True once the room is past its five days.
    pub fn expired(&self, now: f64) -> bool {
        now - self.created >= KEPT_FOR
    }

    /// The room query's `data`.
    pub fn info(&self) -> RoomInfo {
        RoomInfo {
            room_uuid: self.uuid.clone(),
            room_name: self.name.clone(),
            state: Some(self.state as u64),
            room_properties: RoomInfoProperties {
                schedule: Some(self.schedule),
                state: Some(self.state as u64),
            },
        }
    }

    /// Everyone in the room, in the order they entered.
    pub fn users(&self) -> Vec<User> {
        let mut users: Vec<User> = self
            .published
            .values()
            .cloned()
            .map(|user| User {
                state: Some(inferred::USER_ONLINE as u64),
                reason: None,
                ..user
            })
            .collect();
        users.sort_by(|a, b| {
            a.update_time
                .cmp(&b.update_time)
                .then(a.user_uuid.cmp(&b.user_uuid))
        });
        users
    }

    /// Moves the room along its schedule.
    pub fn tick(&mut self, now: f64) -> Vec<Callback> {
        let mut out = Vec::new();
        let start = self.schedule.start_time.map(|ms| ms as f64 / 1000.0);
        if self.state == state::NOT_STARTED && start.is_some_and(|start| now >= start) {
            out.extend(self.become_state(state::RUNNING, now));
        }
        if self.state == state::RUNNING {
            let began = start.unwrap_or(self.created);
            if let Some(duration) = self.schedule.duration {
                if now >= began + duration as f64 {
                    out.extend(self.become_state(state::ENDED, now));
                }
            }
        }
        if self.state == state::ENDED {
            if let (Some(ended), Some(delay)) = (self.ended, self.schedule.close_delay) {
                if now >= ended + delay as f64 {
                    out.extend(self.become_state(state::CLOSED, now));
                }
            }
        }
        out
    }

    /// The room's schedule.
    pub fn schedule(&self) -> ScheduleWire {
        self.schedule
    }

    /// The properties call: a new schedule, for a room that has not ended.
    pub fn reschedule(&mut self, schedule: ScheduleWire) -> Result<(), Conflict> {
        if self.state >= state::ENDED {
            return Err(Conflict(inferred::code::ALREADY_ENDED));
        }
        self.schedule = schedule;
        Ok(())
    }

    /// The states call: 1 starts, 2 ends, 3 closes.
    pub fn set_state(&mut self, wanted: i64, now: f64) -> Result<Vec<Callback>, Conflict> {
        match wanted {
            state::NOT_STARTED if self.state == state::NOT_STARTED => Ok(Vec::new()),
            state::RUNNING if self.state == state::NOT_STARTED => {
                Ok(self.become_state(wanted, now))
            }
            state::ENDED | state::CLOSED if self.state < wanted => {
                Ok(self.become_state(wanted, now))
            }
            state::NOT_STARTED | state::RUNNING if self.state < state::ENDED => {
                Err(Conflict(inferred::code::ALREADY_STARTED))
            }
            state::NOT_STARTED..=state::CLOSED => Err(Conflict(inferred::code::ALREADY_ENDED)),
            _ => Err(Conflict(400)),
        }
    }

    /// Applies a step; people may not enter a closed room, nor while barred.
    pub fn step(&mut self, step: &Step, now: f64) -> Result<Vec<Callback>, SimError> {
        if let Step::Join(joiner) | Step::WaitingRoom(joiner) = step {
            if self.state >= state::CLOSED {
                return Err(SimError::Rejected(format!(
                    "{} cannot enter: the room is closed",
                    joiner.name
                )));
            }
            if self
                .barred
                .get(&joiner.name)
                .is_some_and(|until| now < *until)
            {
                return Err(SimError::Rejected(format!(
                    "{} was removed and may not enter again yet",
                    joiner.name
                )));
            }
        }
        let events = self.conference.apply_step(step, now)?;
        Ok(self.publish(events, now))
    }

    /// The exit call: removes a user, who may not come back for `dirty`.
    pub fn exit(&mut self, user: &str, dirty: Dirty, now: f64) -> Result<Vec<Callback>, SimError> {
        let name = self
            .conference
            .participant(user)
            .map(|p| p.display_name.clone())
            .filter(|_| self.published.contains_key(user))
            .ok_or_else(|| SimError::UnknownParticipant(user.to_owned()))?;
        if dirty.state == 1 && dirty.duration > 0 {
            self.barred
                .insert(name.clone(), now + dirty.duration as f64);
        }
        self.kicked.insert(user.to_owned());
        let command = Command::participant(user, &name, ParticipantCommand::Disconnect);
        let reply = self.conference.apply_command(&api(), &command, now)?;
        Ok(self.publish(reply.events, now))
    }

    /// The streams call: `audioState` 0 mutes, 1 unmutes. Sends no callback.
    pub fn streams(&mut self, body: &StreamsBody, now: f64) -> Result<(), SimError> {
        let mut changes = Vec::new();
        for stream in &body.streams {
            let user = self
                .published
                .values()
                .find(|user| user.stream_uuid == stream.stream_uuid)
                .map(|user| user.user_uuid.clone())
                .ok_or_else(|| SimError::UnknownParticipant(stream.stream_uuid.clone()))?;
            let action = match stream.audio_state {
                Some(inferred::AUDIO_MUTED) => ParticipantCommand::Mute,
                Some(_) => ParticipantCommand::Unmute,
                None => continue,
            };
            changes.push(Command::participant(&user, &user, action));
        }
        for command in changes {
            self.conference.apply_command(&api(), &command, now)?;
        }
        Ok(())
    }

    /// Enters a new state, and at 3 ejects everyone.
    fn become_state(&mut self, new: i64, now: f64) -> Vec<Callback> {
        self.state = new;
        let ms = (now * 1000.0) as u64;
        let mut data = RoomStateChanged {
            state: Some(new as u64),
            start_time: self
                .schedule
                .start_time
                .or(Some((self.created * 1000.0) as u64)),
            ..RoomStateChanged::default()
        };
        if new == state::ENDED {
            self.ended = Some(now);
            data.end_time = Some(ms);
        }
        if new == state::CLOSED {
            self.ended.get_or_insert(now);
            data.end_time = Some((self.ended.unwrap_or(now) * 1000.0) as u64);
            data.close_time = Some(ms);
        }
        let mut out = Vec::new();
        out.extend(self.callback(inferred::cmd::ROOM_STATE, &data, now));
        if new == state::CLOSED {
            let everyone: Vec<String> = self
                .conference
                .participants()
                .map(|p| p.uuid.clone())
                .collect();
            let mut events = Vec::new();
            for uuid in everyone {
                self.kicked.insert(uuid.clone());
                events.extend(self.conference.remove_participant(&uuid));
            }
            out.extend(self.publish(events, now));
        }
        out
    }

    /// The callbacks a batch of the conference's events cause.
    fn publish(&mut self, events: Vec<Event>, now: f64) -> Vec<Callback> {
        let mut out = Vec::new();
        let mut change = UsersChanged::default();
        for event in events {
            match event {
                Event::Participant(p) => {
                    let known = self.published.contains_key(&p.uuid);
                    if p.in_room() && !known {
                        let user = self.user(&p, now);
                        self.published.insert(p.uuid.clone(), user.clone());
                        change.online_users.push(User {
                            reason: Some(1),
                            ..user
                        });
                    } else if !p.in_room() && known {
                        change.offline_users.extend(self.depart(&p.uuid, now));
                    }
                }
                Event::ParticipantLeft { uuid } => {
                    change.offline_users.extend(self.depart(&uuid, now));
                }
                Event::Message(message) => {
                    out.extend(self.users_changed(&mut change, now));
                    let from = self.published.get(&message.uuid).cloned().unwrap_or(User {
                        user_uuid: message.uuid.clone(),
                        user_name: message.origin.clone(),
                        ..User::default()
                    });
                    let chat = ChatReceived {
                        from_user: User {
                            user_uuid: from.user_uuid,
                            user_name: from.user_name,
                            role: from.role,
                            ..User::default()
                        },
                        message: message.payload,
                        kind: inferred::CHAT_TEXT,
                    };
                    out.extend(self.callback(inferred::cmd::CHAT, &chat, now));
                }
                _ => {}
            }
        }
        out.extend(self.users_changed(&mut change, now));
        out
    }

    fn depart(&mut self, uuid: &str, now: f64) -> Option<User> {
        let user = self.published.remove(uuid)?;
        let kicked = self.kicked.remove(uuid);
        Some(User {
            reason: Some(if kicked {
                inferred::LEFT_KICKED as u64
            } else {
                1
            }),
            update_time: Some((now * 1000.0) as u64),
            ..user
        })
    }

    fn users_changed(&mut self, change: &mut UsersChanged, now: f64) -> Option<Callback> {
        if change.online_users.is_empty() && change.offline_users.is_empty() {
            return None;
        }
        let data = UsersChanged {
            total: self.published.len() as i64,
            online_users: std::mem::take(&mut change.online_users),
            offline_users: std::mem::take(&mut change.offline_users),
        };
        self.callback(inferred::cmd::USERS, &data, now)
    }

    /// A user as Agora shows them.
    fn user(&mut self, p: &Participant, now: f64) -> User {
        self.next_stream += 1;
        User {
            user_uuid: p.uuid.clone(),
            user_name: p.display_name.clone(),
            role: inferred::spelling(&p.role).to_owned(),
            stream_uuid: self.next_stream.to_string(),
            reason: None,
            update_time: Some((now * 1000.0) as u64),
            state: None,
        }
    }

    /// Numbers an event and returns it when the room subscribes to its cmd.
    fn callback<T: serde::Serialize>(&mut self, cmd: i64, data: &T, now: f64) -> Option<Callback> {
        let subscribed = self.cmds.contains(&cmd);
        if !subscribed && !inferred::SEQUENCE_COUNTS_UNSUBSCRIBED {
            return None;
        }
        let sequence = self.next_sequence;
        self.next_sequence += 1;
        if !subscribed {
            return None;
        }
        Some(Callback {
            room_uuid: self.uuid.clone(),
            cmd,
            sequence: Some(sequence),
            version: 1,
            ts: (now * 1000.0) as i64,
            data: serde_json::to_value(data).unwrap_or_default(),
        })
    }
}

/// The platform's own hand, for commands made through its API.
fn api() -> Actor {
    Actor {
        uuid: String::new(),
        name: "Agora API".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::step::{Chat, Joiner};

    const T0: f64 = 1_700_000_000.0;

    fn hooks(cmds: &[i64]) -> WebhookConfig {
        WebhookConfig {
            urls: vec!["http://127.0.0.1:1/hooks/ag".into()],
            cmds: cmds.iter().map(|c| serde_json::Value::from(*c)).collect(),
        }
    }

    fn room(schedule: ScheduleWire) -> AgoraRoom {
        AgoraRoom::new("r1", "Physics", schedule, hooks(&[1, 3, 20]), T0, 7)
    }

    fn join(room: &mut AgoraRoom, name: &str, now: f64) -> Vec<Callback> {
        room.step(&Step::Join(Joiner::guest(name)), now).unwrap()
    }

    #[test]
    fn the_lifecycle_follows_the_schedule_and_ejects_everyone_at_the_end() {
        let mut r = room(ScheduleWire {
            start_time: Some(((T0 + 10.0) * 1000.0) as u64),
            duration: Some(60),
            close_delay: Some(30),
        });
        assert_eq!(r.state(), state::NOT_STARTED);
        join(&mut r, "Ada", T0 + 1.0);
        let started = r.tick(T0 + 10.0);
        assert_eq!(started[0].cmd, 1);
        assert_eq!(started[0].data["state"], 1);
        assert!(r.tick(T0 + 20.0).is_empty());
        let ended = r.tick(T0 + 70.0);
        assert_eq!(ended[0].data["state"], 2);
        join(&mut r, "Bob", T0 + 80.0);
        let closed = r.tick(T0 + 100.0);
        assert_eq!(closed[0].data["state"], 3);
        assert_eq!(closed[1].cmd, 20);
        let offline = closed[1].data["offlineUsers"].as_array().unwrap();
        assert_eq!(offline.len(), 2);
        assert!(offline.iter().all(|user| user["type"] == 2));
        assert!(r.users().is_empty() && r.conference().is_empty());
        let refused = r.step(&Step::Join(Joiner::guest("Cat")), T0 + 101.0);
        assert!(matches!(refused, Err(SimError::Rejected(_))));
    }

    #[test]
    fn sequences_rise_by_one_and_unsubscribed_cmds_leave_gaps() {
        let mut r = AgoraRoom::new("r1", "n", ScheduleWire::default(), hooks(&[20]), T0, 1);
        let first = join(&mut r, "Ada", T0);
        let chat = r
            .step(
                &Step::Chat(Chat {
                    from: "Ada".into(),
                    text: "hi".into(),
                }),
                T0,
            )
            .unwrap();
        assert!(chat.is_empty(), "cmd 3 is not subscribed");
        let second = join(&mut r, "Bob", T0);
        assert_eq!(first[0].sequence, Some(1));
        assert_eq!(second[0].sequence, Some(3));
    }

    #[test]
    fn exit_kicks_and_bars_and_streams_mute() {
        let mut r = room(ScheduleWire::default());
        join(&mut r, "Bob", T0);
        let bob = r.users()[0].clone();
        r.streams(
            &StreamsBody {
                streams: vec![inferred::StreamState {
                    stream_uuid: bob.stream_uuid.clone(),
                    audio_state: Some(0),
                    video_state: None,
                }],
            },
            T0,
        )
        .unwrap();
        assert!(r.conference().find("Bob").unwrap().muted);
        let out = r
            .exit(
                &bob.user_uuid,
                Dirty {
                    state: 1,
                    duration: 60,
                },
                T0,
            )
            .unwrap();
        assert_eq!(out[0].data["offlineUsers"][0]["type"], 2);
        assert!(
            r.step(&Step::Join(Joiner::guest("Bob")), T0 + 30.0)
                .is_err()
        );
        assert!(r.step(&Step::Join(Joiner::guest("Bob")), T0 + 61.0).is_ok());
        assert!(matches!(
            r.exit("nobody", Dirty::default(), T0),
            Err(SimError::UnknownParticipant(_))
        ));
    }

    #[test]
    fn state_calls_move_forward_only() {
        let mut r = room(ScheduleWire::default());
        assert_eq!(
            r.set_state(state::RUNNING, T0),
            Err(Conflict(inferred::code::ALREADY_STARTED))
        );
        assert_eq!(r.set_state(state::ENDED, T0).unwrap()[0].data["state"], 2);
        assert_eq!(r.set_state(state::CLOSED, T0).unwrap()[0].data["state"], 3);
        assert_eq!(
            r.set_state(state::CLOSED, T0),
            Err(Conflict(inferred::code::ALREADY_ENDED))
        );
        assert_eq!(r.set_state(9, T0), Err(Conflict(400)));
    }

    #[test]
    fn the_waiting_room_is_not_on_agoras_wire() {
        let mut r = room(ScheduleWire::default());
        let out = r
            .step(&Step::WaitingRoom(Joiner::guest("Dee")), T0)
            .unwrap();
        assert!(out.is_empty());
        assert!(r.users().is_empty());
        let chat = Step::Chat(Chat {
            from: "Dee".into(),
            text: "let me in".into(),
        });
        let out = r.step(&chat, T0).unwrap();
        assert_eq!(out[0].data["fromUser"]["userName"], "Dee");
        let user: Result<inferred::User, _> =
            serde_json::from_value(out[0].data["fromUser"].clone());
        assert!(user.is_ok());
    }
}
