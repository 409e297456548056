//! Every Agora fact usher had to guess, in one place.
//!
//! Agora's conference product (room template `conf_finity_v1`) documents its
//! room creation call (seed 004) and its webhook envelope; most of the rest
//! is inferred from its far better documented sibling, Flexible Classroom
//! (FC), whose REST paths live under `/{region}/edu/apps/{appId}/v2/…`
//! instead of `/{region}/conference/apps/{appId}/v1/…`. Each item below
//! cites `../shared/reference/platforms.md` section 3 and its mark there:
//! **[I]** inferred, **[?]** unknown (a choice of ours), **[V3]** seen only in
//! third-party code. When Agora's documentation says otherwise, correct it
//! here: the adapter and the simulator both read these values, so a fix
//! here changes both and the tests say what else it touches.

use serde::{Deserialize, Serialize};

use super::wire::ScheduleWire;
use crate::model::Role;
use crate::platform::lenient;

/// The API version segment of every conference path.
/// Seed 004 shows `v1` for room creation [V]; the other calls are assumed
/// to share it (§3.3) [I].
pub const API_VERSION: &str = "v1";

/// Where a room's state is set: `PUT …/rooms/{roomUuid}/states/{state}`.
/// §3.3 "end meeting": FC's path under the conference prefix [I].
pub const STATES_SEGMENT: &str = "states";

/// Where a user is removed: `POST …/rooms/{roomUuid}/users/{userUuid}/exit`
/// with `{dirty: {state, duration}}`. §3.3 "remove participant": FC's kick
/// under the conference prefix [I].
pub const EXIT_SEGMENT: &str = "exit";

/// Where stream states are updated: `PUT …/rooms/{roomUuid}/streams` with
/// `{streams: [{streamUuid, audioState, …}]}`. §3.3 "mute one": the path
/// is seen in a third-party client [V3]; that a server may mute a user by
/// setting `audioState` 0 is our reading [I].
pub const STREAMS_SEGMENT: &str = "streams";

/// The paged user list: `GET …/rooms/{roomUuid}/users?nextId=&count=`,
/// answering `{data: {total, count, list: [user], nextId}}` with users
/// shaped like cmd 20's. §3.4: FC documents only a single-user query; a
/// paged list for conference is unknown [?]. The paging shape copies FC's
/// `sequences` and `records` lists (`nextId` null at the end, ≤ 100 a
/// page) [I].
pub const USERS_SEGMENT: &str = "users";

/// Users asked for per page of the user list (FC pages hold at most 100)
/// [I].
pub const USERS_PAGE: usize = 100;

/// Whether a listed user is online: FC's single-user query carries
/// `state` 1 online, 0 offline (§3.4) [I]. Users without the field count
/// as online.
pub const USER_ONLINE: i64 = 1;

/// Where a room's properties are changed: `PUT …/rooms/{roomUuid}/properties`
/// with `{properties: {…}, cause: {…}}` (see [`PropertiesBody`]). §3.3 "room
/// / user properties": FC's call under the conference prefix [I]; that a
/// room's `schedule` is among the properties it changes (how usher moves a
/// booked room) is our reading of seed 004's `roomProperties` [I].
pub const PROPERTIES_SEGMENT: &str = "properties";

/// HTTP status of the create call when the room already exists: FC says
/// "200 means the room is created, 409 means it has already been created"
/// (§3.3) [I]. Its business code is unknown [?]; usher keys on the status.
pub const ROOM_EXISTS_STATUS: u16 = 409;

/// Room states (cmd 1 `state`, the room query, the states path). The
/// values are FC's (§3.2 table, "state values V for FC") [I for
/// conference].
pub mod state {
    /// Scheduled, not started; people may enter.
    pub const NOT_STARTED: i64 = 0;
    /// Running.
    pub const RUNNING: i64 = 1;
    /// Past its duration, in its overtime window (`closeDelay`); people
    /// may still enter and stay.
    pub const ENDED: i64 = 2;
    /// Closed: everyone is ejected and nobody may enter.
    pub const CLOSED: i64 = 3;
}

/// The state usher's `end` sets: closed, which ejects everyone, rather
/// than 2, which leaves people in the overtime window. §3.3 "end meeting"
/// offers both (2 = end, 3 = close and eject) [I]; `end` means "disconnect
/// everyone".
pub const END_STATE: i64 = state::CLOSED;

/// Business codes of FC's status table (§3.4) [V FC, I conference].
pub mod code {
    /// Success.
    pub const OK: i64 = 0;
    /// The room does not exist.
    pub const ROOM_NOT_FOUND: i64 = 20_404_100;
    /// The user does not exist.
    pub const USER_NOT_FOUND: i64 = 20_404_200;
    /// The room has already started.
    pub const ALREADY_STARTED: i64 = 30_409_100;
    /// The room has already ended.
    pub const ALREADY_ENDED: i64 = 30_409_101;
    /// Chat is muted room-wide.
    pub const CHAT_MUTED: i64 = 30_403_200;
}

/// Webhook event numbers (`cmd`).
pub mod cmd {
    /// Room state changed: `data.state` (0–3), `startTime`, `endTime`.
    /// The conference webhook page documents cmd 1 [V]; its state values
    /// are FC's [I].
    pub const ROOM_STATE: i64 = 1;
    /// A room chat message: `data.fromUser{userUuid, userName, role}`,
    /// `message`, `type` (1 text). FC's cmd 3 (§3.2) [I].
    pub const CHAT: i64 = 3;
    /// Users entered or left: `data.onlineUsers[]`, `offlineUsers[]`,
    /// `total`. FC's cmd 20 (§3.2) [I].
    pub const USERS: i64 = 20;
}

/// The events usher subscribes to in `webhookConfig.cmds` when it creates
/// a room.
pub const SUBSCRIBED_CMDS: [i64; 3] = [cmd::ROOM_STATE, cmd::CHAT, cmd::USERS];

/// Whether a room's `sequence` numbers every event of the room, or only
/// those its webhook subscribes to: unknown [?]. FC's sequence replay
/// lists every cmd under one numbering (§3.4) [I], so the simulator
/// numbers every event: a room subscribed to fewer cmds than it produces
/// shows gaps, each costing the adapter a resync after its hold window.
/// Rooms usher creates subscribe to every cmd the simulator produces.
pub const SEQUENCE_COUNTS_UNSUBSCRIBED: bool = true;

/// Why a user left (cmd 20 `offlineUsers[].type`): 1 left on their client
/// (crash and network loss included), 2 kicked. FC (§3.2) [I].
pub const LEFT_KICKED: i64 = 2;

/// The chat message type for text (cmd 3 `type`). FC (§3.2) [I].
pub const CHAT_TEXT: i64 = 1;

/// The header carrying the webhook signature, and how it is made: the
/// lowercase hex HMAC-SHA256 of the raw body keyed with the webhook
/// secret. §3.2 "Signature / verification": not visible for conference
/// [?]; Agora's generic notification service signs this way [I].
pub const SIGNATURE_HEADER: &str = "Agora-Signature-V2";

/// The legacy signature header of Agora's notification service: hex
/// HMAC-SHA1 of the raw body (§3.2) [I]. usher checks only the SHA-256
/// one; the simulator sends both, as the service does.
pub const LEGACY_SIGNATURE_HEADER: &str = "Agora-Signature";

/// What usher answers an accepted callback. §3.2 "Expected reply": unknown
/// [?]; Agora's notification service wants a 200 [I], and this body is the
/// platform's own reply envelope. That a non-2xx answer makes Agora deliver
/// again is inferred from the same service [I]: usher answers 503 when a
/// room's queue is full, counting on it.
pub const CALLBACK_REPLY: &str = r#"{"code":0,"msg":"Success"}"#;

/// Role spellings that make a host (`Role::Chair`): the conference's
/// `host` and `cohost` (seed 004's `roleConfig` names `cohost` and
/// `participant` [V]; `host` [I]) and FC's numbers 1 teacher and 3
/// assistant, which FC payloads send as strings (§3.6 quirks) [I].
pub const CHAIR_ROLES: &[&str] = &["host", "cohost", "owner", "1", "3", "teacher", "assistant"];

/// Role spellings that make a guest (`Role::Guest`): `participant` [V seed
/// 004], FC's 2 student and `audience`, and `0`, which FC's cmd 20 example
/// sends for an ordinary user [I]. Anything else is kept as it came and
/// is neither host nor guest.
pub const GUEST_ROLES: &[&str] = &["participant", "audience", "2", "0", "student"];

/// The neutral role of a role as Agora spells it.
pub fn role(spelling: &str) -> Role {
    let spelling = spelling.trim();
    let is = |list: &[&str]| {
        list.iter()
            .any(|known| known.eq_ignore_ascii_case(spelling))
    };
    if is(CHAIR_ROLES) {
        Role::Chair
    } else if is(GUEST_ROLES) {
        Role::Guest
    } else {
        Role::Other(spelling.to_owned())
    }
}

/// How Agora spells a neutral role, for the simulator's payloads: FC sends
/// roles as strings (§3.6) and the conference names them `host` and
/// `participant` [I].
pub fn spelling(role: &Role) -> &str {
    match role {
        Role::Chair => "host",
        Role::Guest => "participant",
        Role::Other(other) => other,
    }
}

/// Where usher puts `roleConfig` in a create body. Seed 004 (§3.6
/// quirks) lists it at the top level in its field table and inside
/// `roomProperties` in its example; which one the server reads is unknown
/// [?]. usher follows the example (and spells `security` as the example
/// does, not the table's `scurity`); the simulator reads either place and
/// either spelling.
pub const ROLE_CONFIG_IN_PROPERTIES: bool = true;

/// A user as cmd 20 and the user list carry it: `{userUuid, userName,
/// role, streamUuid, userProperties, type, updateTime}`, FC's shape (§3.2)
/// [I]; `state` as FC's single-user query has it (§3.4) [I]. `role` comes
/// as a number or a string (§3.6 quirks).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    /// The user's id.
    #[serde(default, deserialize_with = "lenient::text")]
    pub user_uuid: String,
    /// The name shown.
    #[serde(default, deserialize_with = "lenient::text")]
    pub user_name: String,
    /// The role, in any spelling (see [`role`]).
    #[serde(default, deserialize_with = "lenient::text")]
    pub role: String,
    /// The user's media stream (what a mute addresses).
    #[serde(default, deserialize_with = "lenient::text")]
    pub stream_uuid: String,
    /// Why they entered (1 normally, 2 again) or left (1 left, 2 kicked).
    #[serde(
        default,
        rename = "type",
        deserialize_with = "lenient::optional_u64",
        skip_serializing_if = "Option::is_none"
    )]
    pub reason: Option<u64>,
    /// When they entered or left, UNIX milliseconds.
    #[serde(
        default,
        deserialize_with = "lenient::optional_u64",
        skip_serializing_if = "Option::is_none"
    )]
    pub update_time: Option<u64>,
    /// 1 online, 0 offline (the user list); absent in cmd 20.
    #[serde(
        default,
        deserialize_with = "lenient::optional_u64",
        skip_serializing_if = "Option::is_none"
    )]
    pub state: Option<u64>,
}

impl User {
    /// Online, as far as the listing says.
    pub fn online(&self) -> bool {
        self.state.is_none_or(|state| state as i64 == USER_ONLINE)
    }
}

/// cmd 20 `data`: `{total, onlineUsers[], offlineUsers[]}`. FC (§3.2) [I].
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UsersChanged {
    /// Users in the room after the change.
    #[serde(default, deserialize_with = "lenient::integer")]
    pub total: i64,
    /// Who entered.
    #[serde(default)]
    pub online_users: Vec<User>,
    /// Who left.
    #[serde(default)]
    pub offline_users: Vec<User>,
}

/// cmd 3 `data`: `{fromUser{userUuid, userName, role}, message, type}`.
/// FC (§3.2) [I].
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatReceived {
    /// The sender.
    #[serde(default)]
    pub from_user: User,
    /// The text.
    #[serde(default, deserialize_with = "lenient::text")]
    pub message: String,
    /// 1 for text.
    #[serde(default, rename = "type", deserialize_with = "lenient::integer")]
    pub kind: i64,
}

/// cmd 1 `data`: `{state, startTime, endTime, closeTime}` (ms). The
/// conference page documents `state`, `startTime` and `endTime` [V]; the
/// state values and `closeTime` are FC's [I].
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoomStateChanged {
    /// See [`state`].
    #[serde(default, deserialize_with = "lenient::optional_u64")]
    pub state: Option<u64>,
    /// When the meeting started, UNIX milliseconds.
    #[serde(
        default,
        deserialize_with = "lenient::optional_u64",
        skip_serializing_if = "Option::is_none"
    )]
    pub start_time: Option<u64>,
    /// When it ended.
    #[serde(
        default,
        deserialize_with = "lenient::optional_u64",
        skip_serializing_if = "Option::is_none"
    )]
    pub end_time: Option<u64>,
    /// When it closed.
    #[serde(
        default,
        deserialize_with = "lenient::optional_u64",
        skip_serializing_if = "Option::is_none"
    )]
    pub close_time: Option<u64>,
}

/// One page of the user list (see [`USERS_SEGMENT`]) [?].
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserPage {
    /// Users in all pages.
    #[serde(default, deserialize_with = "lenient::integer")]
    pub total: i64,
    /// Users in this page.
    #[serde(default, deserialize_with = "lenient::integer")]
    pub count: i64,
    /// The users.
    #[serde(default)]
    pub list: Vec<User>,
    /// Where the next page starts; `None` at the end.
    #[serde(default, deserialize_with = "optional_text")]
    pub next_id: Option<String>,
}

/// The room query's `data`: FC's "query a classroom" (§3.3) [I]: `roomName`,
/// `state` (also under `roomProperties.state`), `roomProperties.schedule`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoomInfo {
    /// The room.
    #[serde(default, deserialize_with = "lenient::text")]
    pub room_uuid: String,
    /// The title.
    #[serde(default, deserialize_with = "lenient::text")]
    pub room_name: String,
    /// See [`state`].
    #[serde(default, deserialize_with = "lenient::optional_u64")]
    pub state: Option<u64>,
    /// Schedule and state.
    #[serde(default)]
    pub room_properties: RoomInfoProperties,
}

/// `roomProperties` of the room query.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoomInfoProperties {
    /// When the meeting runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<ScheduleWire>,
    /// The state, where FC also puts it.
    #[serde(
        default,
        deserialize_with = "lenient::optional_u64",
        skip_serializing_if = "Option::is_none"
    )]
    pub state: Option<u64>,
}

impl RoomInfo {
    /// The room's state, wherever the reply put it.
    pub fn state(&self) -> Option<i64> {
        self.state
            .or(self.room_properties.state)
            .map(|state| state as i64)
    }
}

/// The body of the properties call: the properties to set, and why
/// (FC's `cause`, passed on to the room's clients) [I].
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct PropertiesBody {
    /// The properties to set; usher sets only `schedule`.
    #[serde(default)]
    pub properties: PropertiesSet,
    /// Why, as FC's `cause` (`{cmd, data}`); usher sends `{}`.
    #[serde(default)]
    pub cause: serde_json::Value,
}

/// `properties` of [`PropertiesBody`].
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct PropertiesSet {
    /// The room's new schedule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<ScheduleWire>,
}

/// The body of the exit call: `{dirty: {state, duration}}`; a dirty user
/// cannot enter again for `duration` seconds. FC (§3.3) [I].
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct ExitBody {
    /// Whether and how long they may not come back.
    #[serde(default)]
    pub dirty: Dirty,
}

/// `dirty` of [`ExitBody`].
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Dirty {
    /// 1 barred, 0 not.
    #[serde(default, deserialize_with = "lenient::integer")]
    pub state: i64,
    /// For how long, seconds.
    #[serde(default, deserialize_with = "lenient::integer")]
    pub duration: i64,
}

/// The body of the streams call: `{streams: [{streamUuid, audioState,
/// videoState}]}`; `audioState` 0 mutes (see [`STREAMS_SEGMENT`]) [V3/I].
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct StreamsBody {
    /// The streams to change.
    #[serde(default)]
    pub streams: Vec<StreamState>,
}

/// One stream of [`StreamsBody`].
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamState {
    /// The stream (the user's `streamUuid`).
    #[serde(default, deserialize_with = "lenient::text")]
    pub stream_uuid: String,
    /// 0 muted, 1 open; absent leaves it.
    #[serde(
        default,
        deserialize_with = "lenient::optional_u64",
        skip_serializing_if = "Option::is_none"
    )]
    pub audio_state: Option<u64>,
    /// 0 off, 1 on; absent leaves it.
    #[serde(
        default,
        deserialize_with = "lenient::optional_u64",
        skip_serializing_if = "Option::is_none"
    )]
    pub video_state: Option<u64>,
}

/// The `audioState` that mutes a stream [I].
pub const AUDIO_MUTED: u64 = 0;

fn optional_text<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<String>, D::Error> {
    lenient::text(deserializer).map(|text| Some(text).filter(|text| !text.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_read_in_every_spelling() {
        for chair in ["host", "HOST", "cohost", "1", "3", " teacher "] {
            assert_eq!(role(chair), Role::Chair, "{chair}");
        }
        for guest in ["participant", "2", "0", "audience"] {
            assert_eq!(role(guest), Role::Guest, "{guest}");
        }
        assert_eq!(role("server"), Role::Other("server".into()));
        assert_eq!(role(spelling(&Role::Chair)), Role::Chair);
        assert_eq!(role(spelling(&Role::Guest)), Role::Guest);
    }
}
