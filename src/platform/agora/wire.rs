//! What Agora's conference API documents itself (seed 004 and the webhook
//! page, marked [V] in `../shared/reference/platforms.md` §3): the reply
//! envelope, the create-room body and the callback envelope. Shared with
//! the simulator, so both ends read and write the same shapes.
//!
//! Everything guessed lives in [`super::inferred`].

use serde::{Deserialize, Serialize};

use crate::platform::lenient;

/// The path prefix of every conference call: `/{region}/conference/apps/{appId}`
/// (seed 004).
pub const PRODUCT_SEGMENT: &str = "conference";

/// The room template of a conference room (seed 004).
pub const ROOM_TEMPLATE: &str = "conf_finity_v1";

/// The regions Agora's REST services run in (FC and seed 004).
pub const REGIONS: [&str; 4] = ["cn", "ap", "eu", "na"];

/// The scheme of the `Authorization` header: `agora token=<token>` (seed 004).
pub const AUTHORIZATION_PREFIX: &str = "agora token=";

/// Every reply: `{code, msg, ts[, data]}`, `code` 0 for success (seed 004).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Reply {
    /// The business code; 0 is success.
    #[serde(default, deserialize_with = "lenient::integer")]
    pub code: i64,
    /// What the code means, in words.
    #[serde(default, deserialize_with = "lenient::text")]
    pub msg: String,
    /// The server's time, UNIX milliseconds.
    #[serde(default, deserialize_with = "lenient::integer")]
    pub ts: i64,
    /// The call's result, for calls that return one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<serde_json::Value>,
}

/// The body of `POST /{region}/conference/apps/{appId}/v1/rooms/{roomUuid}`
/// (seed 004).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateRoom {
    /// The meeting's title (at most 64 characters).
    #[serde(default, deserialize_with = "lenient::text")]
    pub room_name: String,
    /// [`ROOM_TEMPLATE`].
    #[serde(default, deserialize_with = "lenient::text")]
    pub room_template: String,
    /// Schedule, security, webhooks, roles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room_properties: Option<RoomProperties>,
    /// Role limits where seed 004's field table puts them (its example puts
    /// them in `roomProperties`; see `inferred::ROLE_CONFIG_IN_PROPERTIES`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_config: Option<RoleConfig>,
}

/// `roomProperties` of a create body.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoomProperties {
    /// When the meeting runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<ScheduleWire>,
    /// What participants may do; the field table spells it `scurity`.
    #[serde(default, alias = "scurity", skip_serializing_if = "Option::is_none")]
    pub security: Option<Security>,
    /// AI minutes (`aimm.state`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aimm: Option<Toggle>,
    /// Where callbacks go and which.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_config: Option<WebhookConfig>,
    /// Role limits, where seed 004's example puts them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_config: Option<RoleConfig>,
}

/// `roomProperties.schedule`.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleWire {
    /// The start, UNIX milliseconds (cannot be changed later).
    #[serde(
        default,
        deserialize_with = "lenient::optional_u64",
        skip_serializing_if = "Option::is_none"
    )]
    pub start_time: Option<u64>,
    /// How long the meeting runs, seconds; then it is ended (state 2) but
    /// people may stay.
    #[serde(
        default,
        deserialize_with = "lenient::optional_u64",
        skip_serializing_if = "Option::is_none"
    )]
    pub duration: Option<u64>,
    /// The overtime window after the duration, seconds; then the room
    /// closes (state 3) and everyone is ejected.
    #[serde(
        default,
        deserialize_with = "lenient::optional_u64",
        skip_serializing_if = "Option::is_none"
    )]
    pub close_delay: Option<u64>,
}

impl ScheduleWire {
    /// The scheduled start and end, UNIX seconds, when the start is known.
    /// The end is the end of the duration, not of the overtime window.
    pub fn times(&self) -> Option<(f64, Option<f64>)> {
        let start = self.start_time? as f64 / 1000.0;
        Some((start, self.duration.map(|seconds| start + seconds as f64)))
    }
}

/// `roomProperties.security` (`scurity` in seed 004's table).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Security {
    /// Screen sharing allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share_screen: Option<Enable>,
    /// Video allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_video: Option<Enable>,
    /// Audio allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_audio: Option<Enable>,
    /// People join muted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub join_with_mute_audio: Option<Enable>,
}

/// `{enable: 0|1}`.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Enable {
    /// 1 on, 0 off (flags in any spelling are read).
    #[serde(default, deserialize_with = "flag_as_integer")]
    pub enable: i64,
}

impl Enable {
    /// `{enable: 1}` or `{enable: 0}`.
    pub fn from_flag(on: bool) -> Self {
        Enable {
            enable: i64::from(on),
        }
    }
}

/// `{state: 0|1}`.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Toggle {
    /// 1 on, 0 off.
    #[serde(default, deserialize_with = "flag_as_integer")]
    pub state: i64,
}

/// `roomProperties.webhookConfig`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct WebhookConfig {
    /// Where callbacks are POSTed (Agora wants HTTPS).
    #[serde(default, deserialize_with = "lenient::text_list")]
    pub urls: Vec<String>,
    /// The `cmd`s to send; others are not sent.
    #[serde(default)]
    pub cmds: Vec<serde_json::Value>,
}

impl WebhookConfig {
    /// The subscribed `cmd`s that are numbers (as numbers or numeric text).
    pub fn cmd_numbers(&self) -> Vec<i64> {
        self.cmds
            .iter()
            .filter_map(|cmd| match cmd {
                serde_json::Value::Number(n) => n.as_i64(),
                serde_json::Value::String(text) => text.trim().parse().ok(),
                _ => None,
            })
            .collect()
    }
}

/// `roleConfig`: limits per role.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct RoleConfig {
    /// Co-hosts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cohost: Option<Limit>,
    /// Participants.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub participant: Option<Limit>,
}

/// `{limit: N}`.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Limit {
    /// The most people of this role.
    #[serde(default, deserialize_with = "lenient::optional_u64")]
    pub limit: Option<u64>,
}

impl CreateRoom {
    /// The role limits wherever the body put them: inside `roomProperties`
    /// (seed 004's example) or at the top level (its field table).
    pub fn roles(&self) -> Option<RoleConfig> {
        self.room_properties
            .as_ref()
            .and_then(|properties| properties.role_config)
            .or(self.role_config)
    }
}

/// One callback: `{roomUuid, cmd, sequence, version, ts, data}`, `sequence`
/// unique and increasing per room, `ts` in milliseconds (the conference
/// webhook page).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Callback {
    /// The room.
    #[serde(default, deserialize_with = "lenient::text")]
    pub room_uuid: String,
    /// What happened (see `inferred::cmd`).
    #[serde(default, deserialize_with = "lenient::integer")]
    pub cmd: i64,
    /// The room's event number; `None` when missing or not a whole number.
    #[serde(default, deserialize_with = "lenient::optional_u64")]
    pub sequence: Option<u64>,
    /// The service version.
    #[serde(default, deserialize_with = "lenient::integer")]
    pub version: i64,
    /// When, UNIX milliseconds.
    #[serde(default, deserialize_with = "lenient::integer")]
    pub ts: i64,
    /// The event's own fields.
    #[serde(default)]
    pub data: serde_json::Value,
}

fn flag_as_integer<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    lenient::flag(deserializer).map(i64::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Seed 004's request example, verbatim.
    const SEED_EXAMPLE: &str = r#"{
"roomName": "test_conference",
"roomTemplate": "conf_finity_v1",
"roomProperties": {
"schedule": {
"startTime": 1655452800000,
"duration": 600,
"closeDelay": 300
},
"roleConfig": {
"cohost":{
"limit": 10
},
"participant":{
"limit": 200
}
},
"security": {
"joinWithMuteAudio": {
"enable": 1
},
"startVideo": {
"enable": 1
}
}
}
}"#;

    #[test]
    fn the_seed_example_reads_whole() {
        let body: CreateRoom = serde_json::from_str(SEED_EXAMPLE).unwrap();
        assert_eq!(body.room_name, "test_conference");
        assert_eq!(body.room_template, ROOM_TEMPLATE);
        let properties = body.room_properties.as_ref().unwrap();
        let schedule = properties.schedule.unwrap();
        assert_eq!(
            schedule.times(),
            Some((1_655_452_800.0, Some(1_655_453_400.0)))
        );
        assert_eq!(schedule.close_delay, Some(300));
        let security = properties.security.unwrap();
        assert_eq!(security.join_with_mute_audio, Some(Enable { enable: 1 }));
        assert_eq!(body.roles().unwrap().participant.unwrap().limit, Some(200));
    }

    #[test]
    fn the_field_tables_spellings_read_too() {
        let table_shaped = r#"{"roomName":"r","roomTemplate":"conf_finity_v1",
            "roomProperties":{"scurity":{"shareScreen":{"enable":"1"}}},
            "roleConfig":{"cohost":{"limit":"3"}}}"#;
        let body: CreateRoom = serde_json::from_str(table_shaped).unwrap();
        let security = body.room_properties.as_ref().unwrap().security.unwrap();
        assert_eq!(security.share_screen, Some(Enable { enable: 1 }));
        assert_eq!(body.roles().unwrap().cohost.unwrap().limit, Some(3));
    }

    #[test]
    fn callbacks_take_numbers_as_text() {
        let callback: Callback = serde_json::from_str(
            r#"{"roomUuid":"r1","cmd":"20","sequence":"42","version":1,"ts":1611561776588,"data":{}}"#,
        )
        .unwrap();
        assert_eq!((callback.cmd, callback.sequence), (20, Some(42)));
        let missing: Callback = serde_json::from_str(r#"{"roomUuid":"r1","cmd":1}"#).unwrap();
        assert_eq!(missing.sequence, None);
    }
}
