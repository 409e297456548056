//! Agora's callbacks and listings, in neutral terms.
//!
//! Agora says who entered and left (cmd 20) but never the whole
//! participant, and nothing at all about microphones; [`Roster`] keeps
//! each user's record so every [`Event::Participant`] it emits is whole,
//! and so a mute usher carried out stays known across listings. Roles map
//! through `inferred::role`: host and co-host are chairs.

use std::collections::HashMap;

use super::inferred::{self, ChatReceived, RoomStateChanged, User, UsersChanged, state};
use super::wire::Callback;
use crate::model::{ChatMessage, Event, FlagsUpdate, Participant, ServiceType};

/// Everyone usher knows to be in a room, with what only usher knows.
#[derive(Debug, Default)]
pub struct Roster {
    records: HashMap<String, Record>,
    /// The room's state as last reported.
    state: Option<i64>,
}

/// One user.
#[derive(Debug, Clone)]
struct Record {
    participant: Participant,
    stream_uuid: String,
}

/// A callback whose `data` could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cmd {cmd}: {reason}")]
pub struct DecodeError {
    /// The callback's `cmd`.
    pub cmd: i64,
    /// What was wrong.
    pub reason: String,
}

/// What a callback meant.
#[derive(Debug, Default, PartialEq)]
pub struct Decoded {
    /// Neutral events, in order.
    pub events: Vec<Event>,
    /// The room closed (state 3).
    pub closed: bool,
}

impl Roster {
    /// The stream a user's microphone is on, if usher knows them.
    pub fn stream_of(&self, user: &str) -> Option<&str> {
        self.records
            .get(user)
            .map(|record| record.stream_uuid.as_str())
            .filter(|stream| !stream.is_empty())
    }

    /// How many users are in the room.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// True when nobody is in the room.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Someone entered (or entered again): the whole participant.
    fn enter(&mut self, user: &User) -> Option<Event> {
        if user.user_uuid.is_empty() {
            return None;
        }
        let previous = self.records.get(&user.user_uuid);
        let record = Record {
            participant: participant(user, previous.map(|r| &r.participant)),
            stream_uuid: user.stream_uuid.clone(),
        };
        let event = Event::Participant(record.participant.clone());
        self.records.insert(user.user_uuid.clone(), record);
        Some(event)
    }

    fn leave(&mut self, user: &User) -> Option<Event> {
        self.records.remove(&user.user_uuid)?;
        Some(Event::ParticipantLeft {
            uuid: user.user_uuid.clone(),
        })
    }

    /// The platform's listing of who is online, merged with what usher
    /// knows of them, as a roster snapshot.
    pub fn replace(&mut self, users: &[User]) -> Event {
        let mut records = HashMap::with_capacity(users.len());
        for user in users.iter().filter(|user| !user.user_uuid.is_empty()) {
            let previous = self.records.get(&user.user_uuid);
            let stream_uuid = if user.stream_uuid.is_empty() {
                previous.map(|r| r.stream_uuid.clone()).unwrap_or_default()
            } else {
                user.stream_uuid.clone()
            };
            let record = Record {
                participant: participant(user, previous.map(|r| &r.participant)),
                stream_uuid,
            };
            records.insert(user.user_uuid.clone(), record);
        }
        self.records = records;
        self.snapshot()
    }

    /// Everyone, as a roster snapshot.
    pub fn snapshot(&self) -> Event {
        let mut listing: Vec<Participant> = self
            .records
            .values()
            .map(|record| record.participant.clone())
            .collect();
        listing.sort_by(|a, b| {
            a.start_time
                .total_cmp(&b.start_time)
                .then(a.uuid.cmp(&b.uuid))
        });
        Event::Roster(listing)
    }

    /// usher muted this user's stream; the whole participant, if it changed.
    pub fn muted(&mut self, user: &str) -> Option<Event> {
        let record = self.records.get_mut(user)?;
        if record.participant.muted {
            return None;
        }
        record.participant.muted = true;
        Some(Event::Participant(record.participant.clone()))
    }

    /// Reads one callback; people and messages become events.
    pub fn decode(&mut self, callback: &Callback) -> Result<Decoded, DecodeError> {
        let data = |reason: serde_json::Error| DecodeError {
            cmd: callback.cmd,
            reason: reason.to_string(),
        };
        let mut decoded = Decoded::default();
        match callback.cmd {
            inferred::cmd::USERS => {
                let change: UsersChanged =
                    serde_json::from_value(callback.data.clone()).map_err(data)?;
                for user in &change.offline_users {
                    decoded.events.extend(self.leave(user));
                }
                for user in &change.online_users {
                    decoded.events.extend(self.enter(user));
                }
            }
            inferred::cmd::CHAT => {
                let chat: ChatReceived =
                    serde_json::from_value(callback.data.clone()).map_err(data)?;
                decoded.events.push(message(&chat));
            }
            inferred::cmd::ROOM_STATE => {
                let change: RoomStateChanged =
                    serde_json::from_value(callback.data.clone()).map_err(data)?;
                let Some(state) = change.state else {
                    return Err(DecodeError {
                        cmd: callback.cmd,
                        reason: "no `state`".to_owned(),
                    });
                };
                decoded = self.room_state(state as i64);
            }
            _ => {}
        }
        Ok(decoded)
    }

    /// The room is in `state`: whether it started, or that it closed (everyone
    /// gone, then the meeting's end). Nothing when that was reported already.
    pub fn room_state(&mut self, state: i64) -> Decoded {
        let state = state.min(state::CLOSED);
        if self.state.replace(state) == Some(state) {
            return Decoded::default();
        }
        if state == state::CLOSED {
            self.records.clear();
            return Decoded {
                events: vec![
                    Event::Roster(Vec::new()),
                    Event::Disconnected {
                        reason: "the Agora room closed".to_owned(),
                    },
                ],
                closed: true,
            };
        }
        Decoded {
            events: vec![Event::RoomUpdate(FlagsUpdate {
                started: Some(state >= state::RUNNING),
                ..FlagsUpdate::default()
            })],
            closed: false,
        }
    }
}

/// A user as a neutral participant, keeping what usher knew of them.
fn participant(user: &User, previous: Option<&Participant>) -> Participant {
    let mut participant = previous.cloned().unwrap_or_else(|| Participant {
        uuid: user.user_uuid.clone(),
        service_type: ServiceType::Conference,
        protocol: "agora".to_owned(),
        vendor: "agora".to_owned(),
        has_media: true,
        start_time: user.update_time.map_or(0.0, |ms| ms as f64 / 1000.0),
        ..Participant::default()
    });
    if !user.user_name.is_empty() || participant.display_name.is_empty() {
        participant.display_name = user.user_name.clone();
    }
    if !user.role.is_empty() {
        participant.role = inferred::role(&user.role);
    }
    participant
}

fn message(chat: &ChatReceived) -> Event {
    Event::Message(ChatMessage {
        origin: chat.from_user.user_name.clone(),
        uuid: chat.from_user.user_uuid.clone(),
        mime_type: "text/plain".to_owned(),
        payload: chat.message.clone(),
        direct: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Role;
    use serde_json::json;

    fn callback(cmd: i64, data: serde_json::Value) -> Callback {
        Callback {
            room_uuid: "r".into(),
            cmd,
            sequence: Some(1),
            version: 1,
            ts: 0,
            data,
        }
    }

    #[test]
    fn users_entering_and_leaving_are_whole_participants() {
        let mut roster = Roster::default();
        let entered = roster
            .decode(&callback(
                20,
                json!({"total": 1, "onlineUsers": [{"userUuid": "u1", "userName": "Ada", "role": "host",
                    "streamUuid": "s1", "type": 1, "updateTime": 1611561776588u64}], "offlineUsers": []}),
            ))
            .unwrap();
        let Event::Participant(ada) = &entered.events[0] else {
            panic!("{entered:?}")
        };
        assert_eq!(
            (ada.uuid.as_str(), ada.display_name.as_str()),
            ("u1", "Ada")
        );
        assert_eq!(ada.role, Role::Chair);
        assert_eq!(ada.start_time, 1_611_561_776.588);
        assert_eq!(roster.stream_of("u1"), Some("s1"));
        assert_eq!(roster.muted("u1").map(|e| e.kind()), Some("participant"));
        assert_eq!(roster.muted("u1"), None, "muting the muted changes nothing");
        let left = roster
            .decode(&callback(
                20,
                json!({"offlineUsers": [{"userUuid": "u1", "type": 2}]}),
            ))
            .unwrap();
        assert_eq!(left.events, [Event::ParticipantLeft { uuid: "u1".into() }]);
        let again = roster
            .decode(&callback(20, json!({"offlineUsers": [{"userUuid": "u1"}]})))
            .unwrap();
        assert!(again.events.is_empty(), "a second leave is nothing");
    }

    #[test]
    fn a_listing_keeps_what_usher_knew() {
        let mut roster = Roster::default();
        let ada = User {
            user_uuid: "u1".into(),
            user_name: "Ada".into(),
            role: "2".into(),
            stream_uuid: "s1".into(),
            ..User::default()
        };
        roster.replace(std::slice::from_ref(&ada));
        roster.muted("u1");
        let listed = User {
            stream_uuid: String::new(),
            ..ada
        };
        let Event::Roster(listing) = roster.replace(&[listed]) else {
            panic!()
        };
        assert!(listing[0].muted && listing[0].is_guest());
        assert_eq!(roster.stream_of("u1"), Some("s1"));
    }

    #[test]
    fn chat_and_room_states_read() {
        let mut roster = Roster::default();
        let chat = roster
            .decode(&callback(
                3,
                json!({"fromUser": {"role": "host", "userName": "jason", "userUuid": "jason1"}, "message": "aa", "type": 1}),
            ))
            .unwrap();
        assert_eq!(
            chat.events,
            [Event::Message(ChatMessage {
                origin: "jason".into(),
                uuid: "jason1".into(),
                mime_type: "text/plain".into(),
                payload: "aa".into(),
                direct: false
            })]
        );
        let running = roster
            .decode(&callback(
                1,
                json!({"startTime": 1611561776588u64, "state": 1}),
            ))
            .unwrap();
        assert_eq!(
            running.events,
            [Event::RoomUpdate(FlagsUpdate {
                started: Some(true),
                ..FlagsUpdate::default()
            })]
        );
        let again = roster.decode(&callback(1, json!({"state": 1}))).unwrap();
        assert_eq!(again, Decoded::default(), "a state is reported once");
        let closed = roster.decode(&callback(1, json!({"state": "3"}))).unwrap();
        assert!(closed.closed);
        assert_eq!(closed.events[0], Event::Roster(Vec::new()));
        assert_eq!(closed.events[1].kind(), "disconnected");
        assert_eq!(roster.room_state(3), Decoded::default());
    }

    #[test]
    fn malformed_data_is_an_error_and_unknown_cmds_are_nothing() {
        let mut roster = Roster::default();
        let err = roster
            .decode(&callback(20, json!({"onlineUsers": "everyone"})))
            .unwrap_err();
        assert_eq!(err.cmd, 20);
        assert!(roster.decode(&callback(1, json!({}))).is_err());
        assert_eq!(
            roster.decode(&callback(1001, json!({"state": 1}))).unwrap(),
            Decoded::default()
        );
    }
}
