//! From the wire to usher's terms: callbacks to [`Callback`]s, roles to
//! host or guest, the platform's times to UNIX seconds, a created room to a
//! [`DiscoveredRoom`].
//!
//! Roles: the room's owner and its admins are hosts ([`Role::Chair`]),
//! members are guests ([`Role::Guest`]).

use std::hash::{DefaultHasher, Hash, Hasher};

use super::inferred::{MILLISECONDS_ABOVE, RoleWord, role_word};
use super::wire::{self, CallbackBody, RoomInfo, SeatInfo};
use crate::model::Role;
use crate::platform::{DiscoveredRoom, Schedule};

/// A time in seconds, whichever unit it came in.
pub fn seconds(value: f64) -> f64 {
    if value > MILLISECONDS_ABOVE {
        value / 1000.0
    } else {
        value
    }
}

/// A time in milliseconds, whichever unit it came in.
pub fn millis(value: f64) -> i64 {
    if value > MILLISECONDS_ABOVE {
        value as i64
    } else {
        (value * 1000.0) as i64
    }
}

/// A role word (`Owner`, `RoomOwner`, `Admin`, `Member`, …).
pub fn role(word: &str) -> RoleWord {
    role_word(word)
}

/// The neutral role: the owner and admins are hosts, members guests.
pub fn neutral_role(role: RoleWord) -> Role {
    match role {
        RoleWord::Owner | RoleWord::Admin => Role::Chair,
        RoleWord::Member => Role::Guest,
    }
}

/// The room's schedule, when it has one (`ScheduleStartTime` above zero).
pub fn schedule(info: &RoomInfo) -> Option<Schedule> {
    let start = info.schedule_start.filter(|start| *start > 0.0)?;
    Some(Schedule {
        start: seconds(start),
        end: info.schedule_end.filter(|end| *end > 0.0).map(seconds),
    })
}

/// What a created room tells discovery: its id, its name as the title (its
/// id when it has none) and its schedule.
pub fn discovered(platform: &str, room: &str, info: &RoomInfo) -> DiscoveredRoom {
    let title = info
        .room_name
        .as_deref()
        .filter(|name| !name.trim().is_empty())
        .unwrap_or(room);
    DiscoveredRoom {
        platform: platform.to_owned(),
        alias: room.to_owned(),
        title: title.to_owned(),
        pin: None,
        schedule: schedule(info),
    }
}

/// How a member left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaveKind {
    /// They left.
    Left,
    /// They were removed (`Kicked`), with the reason given.
    Kicked,
    /// Their client stopped answering (`Expired`).
    Expired,
    /// A word this version does not know.
    Other(String),
}

/// One seat as a callback or listing gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seat {
    /// The seat's number.
    pub index: i64,
    /// Who sits there: `Some(None)` when the seat is said to be free,
    /// `None` when the callback does not say.
    pub member: Option<Option<String>>,
    /// Nobody may take it.
    pub taken_disabled: Option<bool>,
    /// Its camera is disabled.
    pub video_disabled: Option<bool>,
    /// Its microphone is disabled.
    pub audio_disabled: Option<bool>,
}

impl Seat {
    /// A seat from the wire; `None` without an index.
    pub fn from_wire(seat: &SeatInfo) -> Option<Seat> {
        let index = seat.index?;
        let member = seat.member.as_deref().map(|member| {
            (!super::inferred::seat_is_free(Some(member))).then(|| member.trim().to_owned())
        });
        Some(Seat {
            index: index as i64,
            member,
            taken_disabled: seat.taken_disabled,
            video_disabled: seat.video_disabled,
            audio_disabled: seat.audio_disabled,
        })
    }
}

/// What a callback says happened.
#[derive(Debug, Clone, PartialEq)]
pub enum Happening {
    /// The room was created.
    Created(RoomInfo),
    /// The room was destroyed.
    Destroyed,
    /// The room's information changed.
    Updated(RoomInfo),
    /// Members entered.
    Entered(Vec<String>),
    /// Members left.
    Left {
        /// Who.
        members: Vec<String>,
        /// How.
        kind: LeaveKind,
        /// The reason given, if any.
        reason: String,
    },
    /// Seats changed.
    Seats(Vec<Seat>),
}

/// One callback, decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct Callback {
    /// The room it is about.
    pub room: String,
    /// When it happened on the platform (ms).
    pub at_ms: i64,
    /// What happened.
    pub happening: Happening,
    /// Equal for a callback and its redeliveries: its name, room, time and
    /// what it names.
    pub key: u64,
}

/// Why a callback cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// It names no room.
    #[error("`{0}` names no room")]
    NoRoom(String),
    /// The command is not one this version knows.
    #[error("`{0}` is not a callback this version knows")]
    Unknown(String),
}

/// Decodes a callback. `command` is the URL's `CallbackCommand`, used when
/// the body does not name itself; `received_ms` stands in for a missing
/// `EventTime`.
pub fn decode(
    command: &str,
    body: &CallbackBody,
    received_ms: i64,
) -> Result<Callback, DecodeError> {
    let command = if body.command.is_empty() {
        command
    } else {
        body.command.as_str()
    };
    let happening = match command {
        wire::CREATED => Happening::Created(body.room_info.clone().unwrap_or_default()),
        wire::DESTROYED => Happening::Destroyed,
        wire::UPDATED | wire::UPDATED_ALIAS => {
            Happening::Updated(body.room_info.clone().unwrap_or_default())
        }
        wire::MEMBER_ENTERED => Happening::Entered(unique(&body.members)),
        wire::MEMBER_LEFT => Happening::Left {
            members: unique(&body.members),
            kind: match body.kind.trim() {
                "" | "Leave" => LeaveKind::Left,
                "Kicked" => LeaveKind::Kicked,
                "Expired" => LeaveKind::Expired,
                other => LeaveKind::Other(other.to_owned()),
            },
            reason: body.reason.clone(),
        },
        wire::SEATS_CHANGED => {
            Happening::Seats(body.seats.iter().filter_map(Seat::from_wire).collect())
        }
        other => return Err(DecodeError::Unknown(other.to_owned())),
    };
    let room = body
        .room()
        .ok_or_else(|| DecodeError::NoRoom(command.to_owned()))?
        .to_owned();
    let at_ms = body.event_time.map_or(received_ms, millis);
    let key = key(command, &room, at_ms, &happening);
    Ok(Callback {
        room,
        at_ms,
        happening,
        key,
    })
}

/// Accounts without repeats, in order (the seed's invitee list repeats one).
fn unique(accounts: &[String]) -> Vec<String> {
    let mut seen = Vec::with_capacity(accounts.len());
    for account in accounts {
        let account = account.trim();
        if !account.is_empty() && !seen.iter().any(|known: &String| known == account) {
            seen.push(account.to_owned());
        }
    }
    seen
}

/// The dedupe key: the callback's name (both spellings of the update are
/// one), room, time and what it names.
fn key(command: &str, room: &str, at_ms: i64, happening: &Happening) -> u64 {
    let mut hasher = DefaultHasher::new();
    let command = if command == wire::UPDATED_ALIAS {
        wire::UPDATED
    } else {
        command
    };
    (command, room, at_ms).hash(&mut hasher);
    match happening {
        Happening::Entered(members) => members.hash(&mut hasher),
        Happening::Left {
            members,
            kind,
            reason,
        } => {
            members.hash(&mut hasher);
            format!("{kind:?}").hash(&mut hasher);
            reason.hash(&mut hasher);
        }
        Happening::Seats(seats) => {
            for seat in seats {
                (
                    seat.index,
                    &seat.member,
                    seat.taken_disabled,
                    seat.video_disabled,
                    seat.audio_disabled,
                )
                    .hash(&mut hasher);
            }
        }
        Happening::Created(info) | Happening::Updated(info) => {
            (
                &info.room_name,
                &info.owner,
                &info.status,
                info.audio_disabled,
                info.video_disabled,
                info.seat_enabled,
            )
                .hash(&mut hasher);
        }
        Happening::Destroyed => {}
    }
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(json: &str) -> CallbackBody {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn times_in_either_unit_read_the_same() {
        assert_eq!(seconds(1_703_589_922.0), 1_703_589_922.0);
        assert_eq!(seconds(1_703_589_922_780.0), 1_703_589_922.78);
        assert_eq!(millis(1_703_589_922_780.0), 1_703_589_922_780);
        assert_eq!(millis(1_703_589_922.0), 1_703_589_922_000);
    }

    #[test]
    fn owners_and_admins_are_hosts_whatever_the_spelling() {
        for word in ["Owner", "RoomOwner", "Admin", "administrator"] {
            assert_eq!(neutral_role(role(word)), Role::Chair, "{word}");
        }
        for word in ["Member", "", "Audience"] {
            assert_eq!(neutral_role(role(word)), Role::Guest, "{word}");
        }
    }

    #[test]
    fn leaves_keep_their_kind_and_reason_and_repeats_go() {
        let callback = decode(
            "",
            &body(
                r#"{"CallbackCommand":"Room.CallbackAfterMemberLeave","RoomId":"r","Type":"Kicked","Reason":"spam","MemberList_Account":["a","a",144115188075855873],"EventTime":1703589922780}"#,
            ),
            0,
        )
        .unwrap();
        assert_eq!(callback.at_ms, 1_703_589_922_780);
        assert_eq!(
            callback.happening,
            Happening::Left {
                members: vec!["a".into(), "144115188075855873".into()],
                kind: LeaveKind::Kicked,
                reason: "spam".into(),
            }
        );
    }

    #[test]
    fn redeliveries_share_a_key_and_other_callbacks_do_not() {
        let enter = r#"{"CallbackCommand":"Room.CallbackAfterMemberEnter","RoomId":"r","Type":"Enter","MemberList_Account":["a"],"EventTime":5}"#;
        let first = decode("", &body(enter), 0).unwrap();
        let again = decode("", &body(enter), 99).unwrap();
        assert_eq!(first.key, again.key);
        let later = decode(
            "",
            &body(&enter.replace("\"EventTime\":5", "\"EventTime\":6")),
            0,
        )
        .unwrap();
        assert_ne!(first.key, later.key);
        let other = decode("", &body(&enter.replace("[\"a\"]", "[\"b\"]")), 0).unwrap();
        assert_ne!(first.key, other.key);
    }

    #[test]
    fn either_spelling_of_the_update_callback_is_an_update() {
        let update = |name: &str| {
            decode(
                name,
                &body(r#"{"RoomInfo":{"RoomId":"r","IsAudioDisabled":"true","IsCloudRecordingDisabled":"false"},"EventTime":7}"#),
                0,
            )
            .unwrap()
        };
        let after = update(wire::UPDATED);
        let alias = update(wire::UPDATED_ALIAS);
        assert!(
            matches!(&after.happening, Happening::Updated(info) if info.audio_disabled == Some(true))
        );
        assert_eq!(after.key, alias.key);
    }

    #[test]
    fn callbacks_without_a_room_or_of_an_unknown_kind_are_errors() {
        assert_eq!(
            decode("Room.CallbackAfterMemberEnter", &body("{}"), 0),
            Err(DecodeError::NoRoom("Room.CallbackAfterMemberEnter".into()))
        );
        assert!(matches!(
            decode("Room.CallbackSomethingNew", &body(r#"{"RoomId":"r"}"#), 0),
            Err(DecodeError::Unknown(_))
        ));
    }

    #[test]
    fn a_created_room_is_discovered_with_its_schedule_in_seconds() {
        let info = RoomInfo {
            room_id: Some("r1".into()),
            room_name: Some("Lecture 1".into()),
            schedule_start: Some(1_703_589_922.0),
            schedule_end: Some(1_703_593_522_000.0),
            ..RoomInfo::default()
        };
        let room = discovered("tx", "r1", &info);
        assert_eq!(room.title, "Lecture 1");
        assert_eq!(
            room.schedule,
            Some(Schedule {
                start: 1_703_589_922.0,
                end: Some(1_703_593_522.0)
            })
        );
        let unnamed = discovered("tx", "r2", &RoomInfo::default());
        assert_eq!((unnamed.title.as_str(), unnamed.schedule), ("r2", None));
    }
}
