//! The Tencent room engine's wire: REST paths and replies, and callback
//! bodies, as the adapter reads them (the simulator writes them with the
//! vendor samples' quirks, and reads requests with the same types).
//!
//! Every field is read leniently (`crate::platform::lenient`): flags may be
//! booleans or the strings `"true"`/`"false"`, numbers may be strings, and
//! account ids may be strings or bare numbers — read exactly as text, never
//! through a float, since an 18-digit id is past what a float holds. Unknown
//! fields are ignored; a field of the wrong shape reads as absent.

use serde::Deserialize;

use crate::platform::lenient;

/// The REST services.
pub const ROOM_SERVICE: &str = "v4/room_engine_http_srv";
/// The seat ("mic") service.
pub const SEAT_SERVICE: &str = "v4/room_engine_http_mic";

/// One REST call: its service and command (`<service>/<command>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Api {
    /// `v4/room_engine_http_srv` or `v4/room_engine_http_mic`.
    pub service: &'static str,
    /// The command word, e.g. `kick_user_out`.
    pub command: &'static str,
}

impl Api {
    const fn room(command: &'static str) -> Api {
        Api {
            service: ROOM_SERVICE,
            command,
        }
    }

    /// The path below the domain, without a leading slash.
    pub fn path(&self) -> String {
        format!("{}/{}", self.service, self.command)
    }
}

/// `get_room_info {RoomId}`.
pub const GET_ROOM_INFO: Api = Api::room("get_room_info");
/// `get_room_member_list {RoomId, Count, Next}`.
pub const GET_ROOM_MEMBER_LIST: Api = Api::room("get_room_member_list");
/// `update_room_info {RoomInfo{RoomId, …}}`.
pub const UPDATE_ROOM_INFO: Api = Api::room("update_room_info");
/// `destroy_room {RoomId}`.
pub const DESTROY_ROOM: Api = Api::room("destroy_room");
/// `create_room {RoomInfo{…}}`.
pub const CREATE_ROOM: Api = Api::room("create_room");
/// `kick_user_out {RoomId, MemberList_Account, Reason}`.
pub const KICK_USER_OUT: Api = Api::room("kick_user_out");
/// `ban_room_member {RoomId, MemberList_Account, Reason, Duration}`.
pub const BAN_ROOM_MEMBER: Api = Api::room("ban_room_member");
/// `unban_room_member {RoomId, MemberList_Account}`.
pub const UNBAN_ROOM_MEMBER: Api = Api::room("unban_room_member");
/// `get_banned_member_list {RoomId}`.
pub const GET_BANNED_MEMBER_LIST: Api = Api::room("get_banned_member_list");
/// `update_room_member_info {RoomId, MemberInfo{Member_Account, Role, …}}`.
pub const UPDATE_ROOM_MEMBER_INFO: Api = Api::room("update_room_member_info");
/// `get_seat_list {RoomId}`.
pub const GET_SEAT_LIST: Api = Api {
    service: SEAT_SERVICE,
    command: "get_seat_list",
};
/// `lock_seat {RoomId, Index, ForbidTaken, ForbidVideo, ForbidAudio}`.
pub const LOCK_SEAT: Api = Api {
    service: SEAT_SERVICE,
    command: "lock_seat",
};

/// Every call usher or its simulator knows.
pub const APIS: &[Api] = &[
    GET_ROOM_INFO,
    GET_ROOM_MEMBER_LIST,
    UPDATE_ROOM_INFO,
    DESTROY_ROOM,
    CREATE_ROOM,
    KICK_USER_OUT,
    BAN_ROOM_MEMBER,
    UNBAN_ROOM_MEMBER,
    GET_BANNED_MEMBER_LIST,
    UPDATE_ROOM_MEMBER_INFO,
    GET_SEAT_LIST,
    LOCK_SEAT,
];

/// `Room.CallbackAfterCreateRoom` (seed 003).
pub const CREATED: &str = "Room.CallbackAfterCreateRoom";
/// `Room.CallbackAfterDestroyRoom`.
pub const DESTROYED: &str = "Room.CallbackAfterDestroyRoom";
/// `Room.CallbackAfterUpdateRoomInfo`.
pub const UPDATED: &str = "Room.CallbackAfterUpdateRoomInfo";
/// The same callback as some of Tencent's own pages name it (the Chinese
/// IM and room-SDK callback lists write `Room.CallbackUpdateRoomInfo`).
pub const UPDATED_ALIAS: &str = "Room.CallbackUpdateRoomInfo";
/// `Room.CallbackAfterMemberEnter`.
pub const MEMBER_ENTERED: &str = "Room.CallbackAfterMemberEnter";
/// `Room.CallbackAfterMemberLeave`.
pub const MEMBER_LEFT: &str = "Room.CallbackAfterMemberLeave";
/// `Mic.CallbackAfterSeatInfoChanged`.
pub const SEATS_CHANGED: &str = "Mic.CallbackAfterSeatInfoChanged";

/// What usher answers every callback it takes.
pub const CALLBACK_OK: &str = r#"{"ActionStatus":"OK","ErrorInfo":"","ErrorCode":0}"#;

/// The reply every REST call gets (HTTP 200 whatever happened).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Reply {
    /// `OK` or `FAIL`.
    #[serde(rename = "ActionStatus", deserialize_with = "lenient::text")]
    pub action_status: String,
    /// 0 on success.
    #[serde(rename = "ErrorCode", deserialize_with = "lenient::integer")]
    pub error_code: i64,
    /// What went wrong.
    #[serde(rename = "ErrorInfo", deserialize_with = "lenient::text")]
    pub error_info: String,
    /// The request's id, for Tencent's support.
    #[serde(rename = "RequestId", deserialize_with = "lenient::text")]
    pub request_id: String,
    /// The call's answer, when it has one.
    #[serde(rename = "Response")]
    pub response: Option<serde_json::Value>,
}

/// A room's information, in callbacks and `get_room_info`. Every field is
/// optional: `…AfterUpdateRoomInfo` carries only some.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct RoomInfo {
    /// The room's id.
    #[serde(rename = "RoomId", deserialize_with = "lenient::optional_id")]
    pub room_id: Option<String>,
    /// Its name.
    #[serde(rename = "RoomName", deserialize_with = "lenient::optional_id")]
    pub room_name: Option<String>,
    /// `Meeting` in the create callback's sample, `Conference` in the API.
    #[serde(rename = "RoomType", deserialize_with = "lenient::text")]
    pub room_type: String,
    /// The owner's account.
    #[serde(rename = "Owner_Account", deserialize_with = "lenient::optional_id")]
    pub owner: Option<String>,
    /// `None` / `NotStarted` / `Running`.
    #[serde(rename = "RoomStatus", deserialize_with = "lenient::optional_id")]
    pub status: Option<String>,
    /// Everyone's microphone is disabled (owner and admins aside).
    #[serde(
        rename = "IsAudioDisabled",
        deserialize_with = "lenient::optional_flag"
    )]
    pub audio_disabled: Option<bool>,
    /// Everyone's camera is disabled.
    #[serde(
        rename = "IsVideoDisabled",
        deserialize_with = "lenient::optional_flag"
    )]
    pub video_disabled: Option<bool>,
    /// Chat is disabled.
    #[serde(
        rename = "IsMessageDisabled",
        deserialize_with = "lenient::optional_flag"
    )]
    pub message_disabled: Option<bool>,
    /// The room has seats.
    #[serde(rename = "IsSeatEnabled", deserialize_with = "lenient::optional_flag")]
    pub seat_enabled: Option<bool>,
    /// How many seats.
    #[serde(rename = "MaxSeatCount", deserialize_with = "lenient::optional_number")]
    pub max_seat_count: Option<f64>,
    /// How many members at most.
    #[serde(
        rename = "MaxMemberCount",
        deserialize_with = "lenient::optional_number"
    )]
    pub max_member_count: Option<f64>,
    /// `None` / `FreeToTake` / `ApplyToTake`.
    #[serde(rename = "TakeSeatMode", deserialize_with = "lenient::text")]
    pub take_seat_mode: String,
    /// Scheduled start (seconds; milliseconds are recognised).
    #[serde(
        rename = "ScheduleStartTime",
        deserialize_with = "lenient::optional_number"
    )]
    pub schedule_start: Option<f64>,
    /// Scheduled end.
    #[serde(
        rename = "ScheduleEndTime",
        deserialize_with = "lenient::optional_number"
    )]
    pub schedule_end: Option<f64>,
    /// When it was created (seconds).
    #[serde(rename = "CreateTime", deserialize_with = "lenient::optional_number")]
    pub create_time: Option<f64>,
}

/// One seat, in `Mic.CallbackAfterSeatInfoChanged` and `get_seat_list`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct SeatInfo {
    /// The seat's number.
    #[serde(rename = "Index", deserialize_with = "lenient::optional_number")]
    pub index: Option<f64>,
    /// Who sits there (an empty string or absent when nobody).
    #[serde(rename = "Member_Account", deserialize_with = "lenient::optional_id")]
    pub member: Option<String>,
    /// Nobody may take the seat.
    #[serde(
        rename = "IsTakenDisabled",
        deserialize_with = "lenient::optional_flag"
    )]
    pub taken_disabled: Option<bool>,
    /// The seat's camera is disabled.
    #[serde(
        rename = "IsVideoDisabled",
        deserialize_with = "lenient::optional_flag"
    )]
    pub video_disabled: Option<bool>,
    /// The seat's microphone is disabled.
    #[serde(
        rename = "IsAudioDisabled",
        deserialize_with = "lenient::optional_flag"
    )]
    pub audio_disabled: Option<bool>,
}

/// One member in `get_room_member_list`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct MemberInfo {
    /// The member's account.
    #[serde(rename = "Member_Account", deserialize_with = "lenient::optional_id")]
    pub account: Option<String>,
    /// Their nickname in the room.
    #[serde(rename = "NameCard", deserialize_with = "lenient::text")]
    pub name_card: String,
    /// `Owner` (`RoomOwner` in the sample) / `Admin` / `Member`.
    #[serde(rename = "Role", deserialize_with = "lenient::text")]
    pub role: String,
}

/// The answer of `get_room_member_list`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct MemberPage {
    /// Where the next page starts; empty on the last.
    #[serde(rename = "Next", deserialize_with = "lenient::text")]
    pub next: String,
    /// The members on this page.
    #[serde(rename = "MemberList", deserialize_with = "lenient_list")]
    pub members: Vec<MemberInfo>,
}

/// The answer of `get_room_info`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct RoomInfoAnswer {
    /// The room.
    #[serde(rename = "RoomInfo")]
    pub room: RoomInfo,
}

/// The answer of `get_seat_list`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct SeatListAnswer {
    /// Every seat.
    #[serde(rename = "SeatList", deserialize_with = "lenient_list")]
    pub seats: Vec<SeatInfo>,
}

/// A callback's body: the union of every callback's fields, each optional.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct CallbackBody {
    /// The callback's name (also in the URL).
    #[serde(rename = "CallbackCommand", deserialize_with = "lenient::text")]
    pub command: String,
    /// Who did it.
    #[serde(rename = "Operator_Account", deserialize_with = "lenient::text")]
    pub operator: String,
    /// The room (every callback but create and update, which carry it in
    /// `RoomInfo`).
    #[serde(rename = "RoomId", deserialize_with = "lenient::optional_id")]
    pub room_id: Option<String>,
    /// The room (create, update).
    #[serde(rename = "RoomInfo")]
    pub room_info: Option<RoomInfo>,
    /// Enter / leave: `Enter`, or `Leave` / `Kicked` / `Expired`.
    #[serde(rename = "Type", deserialize_with = "lenient::text")]
    pub kind: String,
    /// Leave: why.
    #[serde(rename = "Reason", deserialize_with = "lenient::text")]
    pub reason: String,
    /// Enter / leave: who.
    #[serde(rename = "MemberList_Account", deserialize_with = "lenient::id_list")]
    pub members: Vec<String>,
    /// Enter / leave: how many are in the room now.
    #[serde(rename = "MemberCount", deserialize_with = "lenient::optional_number")]
    pub member_count: Option<f64>,
    /// Seat changes.
    #[serde(rename = "SeatList", deserialize_with = "lenient_list")]
    pub seats: Vec<SeatInfo>,
    /// Create: who was invited (duplicates happen).
    #[serde(
        rename = "ScheduleInviteeList_Account",
        deserialize_with = "lenient::id_list"
    )]
    pub invitees: Vec<String>,
    /// When it happened, in milliseconds.
    #[serde(rename = "EventTime", deserialize_with = "lenient::optional_number")]
    pub event_time: Option<f64>,
}

impl CallbackBody {
    /// The room the callback is about.
    pub fn room(&self) -> Option<&str> {
        self.room_id
            .as_deref()
            .or_else(|| self.room_info.as_ref()?.room_id.as_deref())
            .filter(|room| !room.is_empty())
    }
}

/// A list whose entries are read one by one, an entry of the wrong shape
/// skipped rather than failing the list; anything but a list is empty.
fn lenient_list<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    let value = serde_json::Value::deserialize(deserializer)?;
    Ok(match value {
        serde_json::Value::Array(items) => items
            .into_iter()
            .filter_map(|item| serde_json::from_value(item).ok())
            .collect(),
        _ => Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Seed 003's request body, verbatim.
    const SEED_003: &str = r#"{"CallbackCommand":"Room.CallbackAfterCreateRoom","Operator_Account":"admin","RoomInfo":{"RoomId":"tandy-test-rest","RoomName":"tandy-test-rest","RoomType":"Meeting","Owner_Account":"user3","MaxMemberCount":300,"MaxSeatCount":16,"IsVideoDisabled":true,"IsAudioDisabled":true,"IsMessageDisabled":true,"IsScreenSharingDisabled":true,"IsCloudRecordingDisabled":true,"CustomInfo":"custom123","ScheduleStartTime":1703589922,"ScheduleEndTime":1703593522,"RoomStatus":"Running","IsSeatEnabled":true,"TakeSeatMode":"ApplyToTake","CreateTime":1703589922},"ScheduleInviteeList_Account":["user2", "user3", "user3"],"EventTime":1703589922780}"#;

    #[test]
    fn seed_003_reads_whole() {
        let body: CallbackBody = serde_json::from_str(SEED_003).unwrap();
        assert_eq!(body.command, CREATED);
        assert_eq!(body.room(), Some("tandy-test-rest"));
        let info = body.room_info.as_ref().unwrap();
        assert_eq!(info.room_name.as_deref(), Some("tandy-test-rest"));
        assert_eq!(info.room_type, "Meeting");
        assert_eq!(info.owner.as_deref(), Some("user3"));
        assert_eq!(info.audio_disabled, Some(true));
        assert_eq!(info.seat_enabled, Some(true));
        assert_eq!(info.max_seat_count, Some(16.0));
        assert_eq!(info.schedule_start, Some(1_703_589_922.0));
        assert_eq!(info.schedule_end, Some(1_703_593_522.0));
        assert_eq!(info.status.as_deref(), Some("Running"));
        assert_eq!(body.invitees, ["user2", "user3", "user3"]);
        assert_eq!(body.event_time, Some(1_703_589_922_780.0));
    }

    #[test]
    fn the_seat_sample_keeps_its_18_digit_account_and_string_flags() {
        let body: CallbackBody = serde_json::from_str(
            r#"{"CallbackCommand":"Mic.CallbackAfterSeatInfoChanged","RoomId":"r","SeatList":[{"Index":0,"Member_Account":144115188075855873,"IsTakenDisabled":"false","IsVideoDisabled":false,"IsAudioDisabled":"true"},"junk",{"Index":"1","Member_Account":""}],"EventTime":"1703589922780"}"#,
        )
        .unwrap();
        assert_eq!(
            body.seats.len(),
            2,
            "the entry of the wrong shape is skipped"
        );
        assert_eq!(body.seats[0].member.as_deref(), Some("144115188075855873"));
        assert_eq!(body.seats[0].taken_disabled, Some(false));
        assert_eq!(body.seats[0].audio_disabled, Some(true));
        assert_eq!(body.seats[1].index, Some(1.0));
        assert_eq!(body.event_time, Some(1_703_589_922_780.0));
    }

    #[test]
    fn member_pages_take_either_owner_spelling() {
        let reply: Reply = serde_json::from_str(
            r#"{"ErrorCode":0,"ErrorInfo":"","ActionStatus":"OK","RequestId":"Id-1","Response":{"Next":"","MemberList":[{"Member_Account":"user2","NameCard":"123","Role":"RoomOwner","Marks":[1000],"CustomInfo":""}]}}"#,
        )
        .unwrap();
        let page: MemberPage = serde_json::from_value(reply.response.unwrap()).unwrap();
        assert_eq!(page.next, "");
        assert_eq!(page.members[0].role, "RoomOwner");
        assert_eq!(page.members[0].name_card, "123");
    }
}
