//! Huawei Cloud Meeting's wire, as the reference verifies it: paths,
//! headers, request and reply bodies, push frames and signatures.
//!
//! The adapter and the simulator both speak through these definitions, so
//! they cannot drift apart. Everything here is marked [V] (vendor document
//! or SDK) or [V3] (an integrator's production code) in
//! `reference/platforms.md` §1; what the reference marks inferred or
//! unknown lives in [`super::inferred`] instead.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::platform::lenient;

/// Account auth (§1.1): `Authorization: Basic base64(account:password)`.
pub const ACCOUNT_AUTH_PATH: &str = "/v1/usg/acs/auth/account";
/// App-ID auth (§1.1): `Authorization: HMAC-SHA256 signature=…,access=…`.
pub const APP_AUTH_PATH: &str = "/v2/usg/acs/auth/appauth";
/// Refresh (`PUT`) or log out (`DELETE`) an access token (§1.1).
pub const TOKEN_PATH: &str = "/v1/usg/acs/token";
/// The conference-control token, and its keep-alive (§1.1).
pub const CONTROL_TOKEN_PATH: &str = "/v1/mmc/control/conferences/token";
/// The one-shot token that opens the meeting WebSocket (§1.1).
pub const WS_TOKEN_PATH: &str = "/v1/mmc/control/conferences/wsToken";
/// Who is in the meeting now, over REST (§1.4).
pub const REAL_TIME_INFO_PATH: &str = "/v1/mmc/control/conferences/realTimeInfo";
/// A meeting's details, passwords included, over the management API (§1.1).
pub const CONF_DETAIL_PATH: &str = "/v1/mmc/management/conferences/confDetail";
/// Booking meetings (§1.5): `POST` books one; moving (`PUT`) and
/// cancelling (`DELETE`) name it with `?conferenceID=` (see `inferred`).
pub const CONFERENCES_PATH: &str = "/v1/mmc/management/conferences";
/// Where every control command lives (§1.3).
pub const CONTROL_PREFIX: &str = "/v1/mmc/control/conferences/";
/// The meeting WebSocket, below the host `wsURL` names (§1.2.a).
pub const SOCKET_PATH: &str = "/cms/open/websocket/confctl/increment/conn";

/// The access token's header.
pub const ACCESS_TOKEN_HEADER: &str = "X-Access-Token";
/// The control token's header (raw, or `Basic base64(token)`).
pub const CONTROL_TOKEN_HEADER: &str = "X-Conference-Authorization";
/// The chair password's header on the control-token call.
pub const PASSWORD_HEADER: &str = "X-Password";
/// How the control-token call authenticates (`1`: with a password).
pub const LOGIN_TYPE_HEADER: &str = "X-Login-Type";
/// App-ID auth asks for a long ticket.
pub const TOKEN_TYPE_HEADER: &str = "X-Token-Type";
/// The value of [`TOKEN_TYPE_HEADER`].
pub const LONG_TICKET: &str = "LongTicket";
/// `clientType` 72: an API client, whose tokens do not evict each other.
pub const API_CLIENT_TYPE: u32 = 72;
/// The rate-limit code of the client SDK (§1.4).
pub const FLOW_CONTROL_CODE: &str = "100000429";

/// The push types usher subscribes to, in this order.
pub const SUBSCRIBED: &[&str] = &[
    BASIC_INFO,
    DYNAMIC_INFO,
    WAITING_LIST,
    PARTICIPANTS,
    SPEAKER_CHANGE,
];

/// Meeting metadata (seed 002).
pub const BASIC_INFO: &str = "ConfBasicInfoNotify";
/// Meeting state: lock, mute-all, ended.
pub const DYNAMIC_INFO: &str = "ConfDynamicInfoNotify";
/// Who is online, full and incremental.
pub const PARTICIPANTS: &str = "ParticipantsNotify";
/// Who waits in the waiting room.
pub const WAITING_LIST: &str = "WaitingListNotify";
/// The active speakers.
pub const SPEAKER_CHANGE: &str = "SpeakerChangeNotify";
/// The subscribe request and its answer.
pub const SUBSCRIBE: &str = "Subscribe";
/// The heartbeat and its echo.
pub const HEARTBEAT: &str = "HeartBeat";

/// `msgMode` of a full message.
pub const FULL: i64 = 0;
/// `msgMode` of an incremental message.
pub const INCREMENTAL: i64 = 1;
/// An entry's `mode`: add or update.
pub const UPSERT: i64 = 0;
/// An entry's `mode`: remove.
pub const REMOVE: i64 = 1;

/// `pinfoMap` keys (§1.2.a, the zh page's full list). Values are strings.
pub mod key {
    /// Display name.
    pub const NAME: &str = "NAME";
    /// Phone or SIP number.
    pub const TEL: &str = "TEL";
    /// `"1"` host, `"0"` participant, `"2"` audience.
    pub const ROLE: &str = "ROLE";
    /// `"0"` in the meeting, `"1"` being called.
    pub const STATE: &str = "STATE";
    /// `"1"` muted.
    pub const MUTE: &str = "MUTE";
    /// `"1"` hand raised.
    pub const HAND: &str = "HAND";
    /// `"1"` broadcast (usher's spotlight).
    pub const BROADCAST: &str = "BROADCAST";
    /// `"1"` called on in a roll call.
    pub const ROLLCALL: &str = "ROLLCALL";
    /// `"1"` sharing the screen.
    pub const SHARE: &str = "SHARE";
    /// When they joined, ms as a string.
    pub const ADDTIME: &str = "ADDTIME";
    /// `"1"` video, `"0"` audio only.
    pub const VIDEO: &str = "VIDEO";
    /// `"1"` joined anonymously.
    pub const ANONYMOUS: &str = "ANONYMOUS";
    /// `"1"` recording locally.
    pub const LOCALREC: &str = "LOCALREC";
    /// The login type, spelt so in participant pushes (sic).
    pub const CLICENT_LOGIN_TYPE: &str = "CLICENT_LOGIN_TYPE";
    /// The login type, spelt so in waiting-list pushes.
    pub const CLIENT_LOGIN_TYPE: &str = "CLIENT_LOGIN_TYPE";
    /// Waiting list: `"0"` waiting, `"1"` admitted and joining.
    pub const WAITINGSTATE: &str = "WAITINGSTATE";
    /// Waiting list: the enterprise.
    pub const ORG_ID: &str = "ORG_ID";
    /// Waiting list: the account's id.
    pub const ACCOUNT_ID: &str = "ACCOUNT_ID";
    /// Waiting list: the account.
    pub const ACCOUNT: &str = "ACCOUNT";
    /// Waiting list: the third-party account.
    pub const THIRDACCOUNT: &str = "THIRDACCOUNT";
}

/// The reply of both auth calls and of the refresh (§1.1, meeting_21_0306).
/// No `Debug`: it carries tokens, and nothing may print them.
#[derive(Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthReply {
    /// The access token.
    #[serde(default, deserialize_with = "lenient::text")]
    pub access_token: String,
    /// When it expires, UNIX seconds.
    #[serde(default, deserialize_with = "lenient::integer")]
    pub expire_time: i64,
    /// How long it lasts, seconds.
    #[serde(default, deserialize_with = "lenient::integer")]
    pub valid_period: i64,
    /// The refresh token (App-ID auth).
    #[serde(default, deserialize_with = "lenient::text")]
    pub refresh_token: String,
}

/// The body of App-ID auth.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppAuthRequest {
    /// The App ID.
    #[serde(default)]
    pub app_id: String,
    /// [`API_CLIENT_TYPE`].
    #[serde(default)]
    pub client_type: u32,
    /// When the signature stops being valid, UNIX seconds.
    #[serde(default)]
    pub expire_time: i64,
    /// 32–64 random characters, signed along.
    #[serde(default)]
    pub nonce: String,
    /// The third-party user usher acts as; empty for the enterprise admin.
    #[serde(default)]
    pub user_id: String,
}

/// The body of account auth.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountAuthRequest {
    /// The account.
    #[serde(default)]
    pub account: String,
    /// [`API_CLIENT_TYPE`].
    #[serde(default)]
    pub client_type: u32,
}

/// The reply of the control-token call (Go SDK `CreateConfTokenResponse`).
/// No `Debug`: it carries a token.
#[derive(Clone, Deserialize, Serialize)]
pub struct ControlTokenReply {
    /// The token and where to open the socket.
    pub data: TokenInfo,
}

/// A control token (Go SDK `TokenInfo`). No `Debug`: it carries the token.
#[derive(Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenInfo {
    /// The control token; 30 minutes.
    #[serde(default, deserialize_with = "lenient::text")]
    pub token: String,
    /// Where the meeting WebSocket is.
    #[serde(default, rename = "wsURL", deserialize_with = "lenient::text")]
    pub ws_url: String,
    /// 1 host, 0 participant.
    #[serde(default, deserialize_with = "lenient::integer")]
    pub role: i64,
    /// When the token expires, UNIX ms.
    #[serde(default, deserialize_with = "lenient::integer")]
    pub expire_time: i64,
    /// How long the token lasts, seconds.
    #[serde(default, deserialize_with = "lenient::integer")]
    pub conf_token_expire_time: i64,
}

/// The reply of the wsToken call (Go SDK `CreateWebSocketTokenResponse`).
/// No `Debug`: it carries a token.
#[derive(Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WsTokenReply {
    /// One use, one minute.
    #[serde(default, deserialize_with = "lenient::text")]
    pub web_socket_token: String,
}

/// An error reply (§1.4): `{error_code, error_msg}`, or the management
/// API's `{returnCode, returnDesc}`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct ErrorReply {
    /// `MMC.…` or `USG.…`.
    #[serde(default, deserialize_with = "lenient::text")]
    pub error_code: String,
    /// What went wrong.
    #[serde(default, deserialize_with = "lenient::text")]
    pub error_msg: String,
    /// The management API's code.
    #[serde(
        default,
        rename = "returnCode",
        skip_serializing_if = "String::is_empty",
        deserialize_with = "lenient::text"
    )]
    pub return_code: String,
    /// The management API's text.
    #[serde(
        default,
        rename = "returnDesc",
        skip_serializing_if = "String::is_empty",
        deserialize_with = "lenient::text"
    )]
    pub return_desc: String,
}

impl ErrorReply {
    /// An error reply with this code and text.
    pub fn new(code: &str, message: &str) -> Self {
        ErrorReply {
            error_code: code.to_owned(),
            error_msg: message.to_owned(),
            ..ErrorReply::default()
        }
    }

    /// The code, whichever shape carried it.
    pub fn code(&self) -> &str {
        if self.error_code.is_empty() {
            &self.return_code
        } else {
            &self.error_code
        }
    }

    /// The text, whichever shape carried it.
    pub fn message(&self) -> &str {
        if self.error_msg.is_empty() {
            &self.return_desc
        } else {
            &self.error_msg
        }
    }
}

/// The reply of `confDetail` (Go SDK `ShowMeetingDetailResponse`), as far
/// as usher reads it.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfDetailReply {
    /// The meeting.
    #[serde(default)]
    pub conference_data: ConferenceInfo,
}

/// The body that books or moves a meeting (§1.5, the REST counterpart of
/// seed 000's BookConf): `startTime` a UTC `yyyy-MM-dd HH:mm`, `length`
/// in minutes (15–1440).
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleConference {
    /// The title.
    #[serde(default, deserialize_with = "lenient::text")]
    pub subject: String,
    /// `yyyy-MM-dd HH:mm`, UTC.
    #[serde(default, deserialize_with = "lenient::text")]
    pub start_time: String,
    /// Minutes.
    #[serde(default, deserialize_with = "lenient::integer")]
    pub length: i64,
    /// `Voice`, `Video`, `HDVideo`, `Data`, comma-separated.
    #[serde(default, deserialize_with = "lenient::text")]
    pub media_types: String,
}

/// The shortest and longest meeting `length` the booking call takes.
pub const BOOKING_MINUTES: std::ops::RangeInclusive<i64> = 15..=1440;

/// A meeting's details (Go SDK `ConferenceInfo`).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConferenceInfo {
    /// The conference ID.
    #[serde(default, rename = "conferenceID", deserialize_with = "lenient::text")]
    pub conference_id: String,
    /// The title.
    #[serde(default, deserialize_with = "lenient::text")]
    pub subject: String,
    /// `YYYY-MM-DD HH:MM`, UTC.
    #[serde(default, deserialize_with = "lenient::text")]
    pub start_time: String,
    /// `YYYY-MM-DD HH:MM`, UTC.
    #[serde(default, deserialize_with = "lenient::text")]
    pub end_time: String,
    /// `Schedule`, `Created` (running) or `Destroyed`.
    #[serde(default, deserialize_with = "lenient::text")]
    pub conference_state: String,
    /// The passwords the caller may see; never logged.
    #[serde(default)]
    pub password_entry: Vec<PasswordEntry>,
}

/// One of a meeting's passwords. Its `Debug` hides the password.
#[derive(Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PasswordEntry {
    /// `chair`, `general` or `audience`.
    #[serde(default, deserialize_with = "lenient::text")]
    pub conference_role: String,
    /// The password.
    #[serde(default, deserialize_with = "lenient::text")]
    pub password: String,
}

impl std::fmt::Debug for PasswordEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PasswordEntry({}: ***)", self.conference_role)
    }
}

/// The reply of `realTimeInfo` (Go SDK `ShowRealTimeInfoOfMeetingResponse`):
/// typed integers here, unlike the pushes.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RealTimeInfo {
    /// Who is online.
    #[serde(default)]
    pub participants: Vec<RealTimeParticipant>,
    /// The meeting's chair and co-hosts.
    #[serde(default)]
    pub conf_info: super::inferred::RealTimeConfInfo,
}

/// One participant of `realTimeInfo`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct RealTimeParticipant {
    /// The participant id, as in the pushes.
    #[serde(default, deserialize_with = "lenient::text")]
    pub pid: String,
    /// Display name.
    #[serde(default, deserialize_with = "lenient::text")]
    pub name: String,
    /// Phone or SIP number.
    #[serde(default, deserialize_with = "lenient::text")]
    pub phone: String,
    /// 0 in the meeting, 1 being called, 2 joining.
    #[serde(default, deserialize_with = "lenient::integer")]
    pub state: i64,
    /// 1 video, 0 audio.
    #[serde(default, deserialize_with = "lenient::integer")]
    pub video: i64,
    /// 1 muted.
    #[serde(default, deserialize_with = "lenient::integer")]
    pub mute: i64,
    /// 1 hand raised.
    #[serde(default, deserialize_with = "lenient::integer")]
    pub hand: i64,
}

/// A frame from client to server: Subscribe or HeartBeat. No `Debug`:
/// Subscribe carries the control token.
#[derive(Clone, Serialize, Deserialize)]
pub struct ClientFrame {
    /// 20–30 characters; echoed by the server.
    #[serde(default, deserialize_with = "lenient::text")]
    pub sequence: String,
    /// [`SUBSCRIBE`] or [`HEARTBEAT`].
    #[serde(default, deserialize_with = "lenient::text")]
    pub action: String,
    /// Subscribe: a JSON *string* holding [`SubscribeData`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

/// What Subscribe's `data` string holds. No `Debug`: it carries the
/// control token.
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscribeData {
    /// The push types wanted.
    #[serde(default, deserialize_with = "lenient::text_list")]
    pub subscribe_type: Vec<String>,
    /// The control token, `Basic base64(token)`.
    #[serde(default, deserialize_with = "lenient::text")]
    pub conf_token: String,
}

impl ClientFrame {
    /// A Subscribe frame: `data` is the JSON of [`SubscribeData`], as a string.
    pub fn subscribe(sequence: String, control_token: &str) -> Self {
        let data = SubscribeData {
            subscribe_type: SUBSCRIBED.iter().map(|&kind| kind.to_owned()).collect(),
            conf_token: basic(control_token),
        };
        let text = serde_json::to_string(&data).unwrap_or_default();
        ClientFrame {
            sequence,
            action: SUBSCRIBE.to_owned(),
            data: Some(Value::String(text)),
        }
    }

    /// A heartbeat; `sequence` is the time in ms, zero-padded to 30 digits.
    pub fn heartbeat(now_ms: u128) -> Self {
        ClientFrame {
            sequence: format!("{now_ms:030}"),
            action: HEARTBEAT.to_owned(),
            data: None,
        }
    }
}

/// The envelope every server frame shares (§1.2.a). Each push type's own
/// fields are read separately from the same text (see [`PushEntries`],
/// [`BasicInfo`], [`DynamicInfo`]), so what a frame carries that usher
/// does not read — the meeting's passwords above all — never lands in a
/// structure that could be logged.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Envelope {
    /// The push type, or [`SUBSCRIBE`] / [`HEARTBEAT`] for replies.
    #[serde(default, deserialize_with = "lenient::text")]
    pub action: String,
    /// Full messages: the generation time in ms; incremental ones: an
    /// ascending sequence number.
    #[serde(default, deserialize_with = "lenient::integer")]
    pub version: i64,
    /// Unique per message.
    #[serde(default, rename = "msgID", deserialize_with = "lenient::text")]
    pub msg_id: String,
    /// [`FULL`] or [`INCREMENTAL`].
    #[serde(default, rename = "msgMode", deserialize_with = "lenient::integer")]
    pub msg_mode: i64,
    /// The meeting.
    #[serde(default, rename = "confID", deserialize_with = "lenient::text")]
    pub conf_id: String,
    /// Replies to Subscribe and HeartBeat echo the sequence.
    #[serde(default, deserialize_with = "lenient::text")]
    pub sequence: String,
}

/// The answer to Subscribe: `data` is an object here, and its description
/// key carries a trailing space in the vendor's example (`"returnDesc "`).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SubscribeReply {
    /// The answer.
    #[serde(default)]
    pub data: SubscribeResult,
}

/// The result inside [`SubscribeReply`].
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SubscribeResult {
    /// 0 for success.
    #[serde(
        default = "minus_one",
        rename = "returnCode",
        deserialize_with = "lenient::integer"
    )]
    pub return_code: i64,
    /// What the server said, under either spelling of the key.
    #[serde(
        default,
        rename = "returnDesc ",
        alias = "returnDesc",
        deserialize_with = "lenient::text"
    )]
    pub return_desc: String,
}

fn minus_one() -> i64 {
    -1
}

/// The `data[]` of participant, waiting-list and speaker pushes.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct PushEntries {
    /// The entries; `null` is none.
    #[serde(default, deserialize_with = "entries")]
    pub data: Vec<PushEntry>,
}

/// One entry of a push's `data[]`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
pub struct PushEntry {
    /// The participant id.
    #[serde(default, deserialize_with = "lenient::text")]
    pub pid: String,
    /// [`UPSERT`] or [`REMOVE`].
    #[serde(default, deserialize_with = "lenient::integer")]
    pub mode: i64,
    /// String keys to string values; incrementals carry only what changed.
    #[serde(
        default,
        rename = "pinfoMap",
        deserialize_with = "lenient::text_map",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub pinfo_map: BTreeMap<String, String>,
    /// Waiting-list removals carry it (meaning unknown).
    #[serde(default, rename = "delType", skip_serializing_if = "Option::is_none")]
    pub del_type: Option<Value>,
}

/// Reads `data[]`, skipping entries that are not objects.
fn entries<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Vec<PushEntry>, D::Error> {
    let values: Option<Vec<Value>> = Option::deserialize(deserializer)?;
    Ok(values
        .unwrap_or_default()
        .into_iter()
        .filter_map(|value| match serde_json::from_value::<PushEntry>(value) {
            Ok(entry) => Some(entry),
            Err(err) => {
                tracing::debug!(error = %err, "skipping an unreadable push entry");
                None
            }
        })
        .collect())
}

/// `ConfBasicInfoNotify` (seed 002), as far as usher reads it. The
/// meeting's passwords (`pwds`) are deliberately not among the fields.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BasicInfo {
    /// The ID people dial.
    #[serde(default, rename = "displayID", deserialize_with = "lenient::text")]
    pub display_id: String,
    /// The meeting's topic.
    #[serde(default, deserialize_with = "lenient::text")]
    pub title: String,
    /// When it started, UTC ms as a string.
    #[serde(default, deserialize_with = "lenient::text")]
    pub start_time: String,
    /// When it was scheduled to start, UTC ms as a string.
    #[serde(default, deserialize_with = "lenient::text")]
    pub scheduled_start_time: String,
    /// Who scheduled it.
    #[serde(default, deserialize_with = "lenient::text")]
    pub owner: String,
    /// The scheduler's UUID.
    #[serde(default, rename = "ownerID", deserialize_with = "lenient::text")]
    pub owner_id: String,
    /// Whether the meeting has a waiting room.
    #[serde(default, deserialize_with = "lenient::flag")]
    pub support_waiting_room: bool,
}

/// `ConfDynamicInfoNotify`: the meeting's state.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DynamicInfo {
    /// `Schedule`, `Created` or `Destroyed`.
    #[serde(default, deserialize_with = "lenient::text")]
    pub state: String,
    /// 1 locked.
    #[serde(default, deserialize_with = "lenient::optional_flag")]
    pub lock: Option<bool>,
    /// 1 everyone muted, and newcomers muted on arrival.
    #[serde(default, deserialize_with = "lenient::optional_flag")]
    pub mute: Option<bool>,
    /// `FREE`, `FIXED`, `ROLLCALL` or `BROADCAST`.
    #[serde(default, deserialize_with = "lenient::text")]
    pub mode: String,
}

/// `Basic base64(token)`: how the control token travels inside Subscribe.
pub fn basic(token: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(token)
    )
}

/// The control token in an `X-Conference-Authorization` value: raw, or
/// `Basic base64(token)` (both are accepted, §1.1).
pub fn unwrap_basic(value: &str) -> Option<String> {
    let value = value.trim();
    match value.strip_prefix("Basic ") {
        Some(encoded) => base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok()),
        None => Some(value.to_owned()),
    }
}

/// `HexEncode(HMAC-SHA256(key, message))`.
pub fn hmac_hex(key: &[u8], message: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
    let tag = ring::hmac::sign(&key, message);
    tag.as_ref()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Checks `HexEncode(HMAC-SHA256(key, message))` in constant time.
pub fn hmac_hex_verify(key: &[u8], message: &[u8], hex: &str) -> bool {
    let Some(tag) = decode_hex(hex.trim()) else {
        return false;
    };
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
    ring::hmac::verify(&key, message, &tag).is_ok()
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if hex.len() % 2 != 0 || !hex.is_ascii() {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(&hex[at..at + 2], 16).ok())
        .collect()
}

/// The App-ID auth header: `HMAC-SHA256 signature=HexEncode(HMAC256(appId:userId:expireTime:nonce, appKey)),access=base64(appId)`.
pub fn app_auth_header(
    app_id: &str,
    app_key: &str,
    user_id: &str,
    expire_time: i64,
    nonce: &str,
) -> String {
    let signed = format!("{app_id}:{user_id}:{expire_time}:{nonce}");
    format!(
        "HMAC-SHA256 signature={},access={}",
        hmac_hex(app_key.as_bytes(), signed.as_bytes()),
        base64::engine::general_purpose::STANDARD.encode(app_id)
    )
}

/// Reads an App-ID auth header back into its signature and App ID.
pub fn parse_app_auth_header(value: &str) -> Option<(String, String)> {
    let rest = value.trim().strip_prefix("HMAC-SHA256")?.trim();
    let mut signature = None;
    let mut access = None;
    for part in rest.split(',') {
        let (name, value) = part.trim().split_once('=')?;
        match name.trim() {
            "signature" => signature = Some(value.trim().to_owned()),
            "access" => access = Some(value.trim().to_owned()),
            _ => {}
        }
    }
    let app_id = base64::engine::general_purpose::STANDARD
        .decode(access?)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())?;
    Some((signature?, app_id))
}

/// The account auth header: `Basic base64(account:password)`.
pub fn account_auth_header(account: &str, password: &str) -> String {
    basic(&format!("{account}:{password}"))
}

/// The enterprise webhook's body (§1.2.b). `timestamp` and `eventInfo` are
/// kept exactly as sent: the signature covers their text, not their value.
#[derive(Debug, Deserialize)]
pub struct WebhookBody<'a> {
    /// The subscriber id.
    #[serde(default, rename = "appID", deserialize_with = "lenient::text")]
    pub app_id: String,
    /// ms, as written.
    #[serde(borrow)]
    pub timestamp: &'a serde_json::value::RawValue,
    /// Random; echoed by the verify handshake.
    #[serde(default, deserialize_with = "lenient::text")]
    pub nonce: String,
    /// Hex HMAC-SHA256.
    #[serde(default, deserialize_with = "lenient::text")]
    pub signature: String,
    /// The event, exactly as sent.
    #[serde(borrow, rename = "eventInfo")]
    pub event_info: &'a serde_json::value::RawValue,
}

impl WebhookBody<'_> {
    /// The timestamp's text as signed: a string without its quotes, a
    /// number as written.
    pub fn timestamp_text(&self) -> String {
        let raw = self.timestamp.get();
        serde_json::from_str::<String>(raw).unwrap_or_else(|_| raw.to_owned())
    }
}

/// The signature of a webhook: hex HMAC-SHA256 over `appID + timestamp +
/// nonce + eventInfo`, keyed with the subscription's secret.
pub fn webhook_message(app_id: &str, timestamp: &str, nonce: &str, event_info: &str) -> String {
    format!("{app_id}{timestamp}{nonce}{event_info}")
}

/// `eventInfo` of a webhook.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct EventInfo {
    /// `meeting.verify`, `meeting.started`, `meeting.end`, …
    #[serde(default, deserialize_with = "lenient::text")]
    pub event: String,
    /// ms.
    #[serde(default, deserialize_with = "lenient::integer")]
    pub timestamp: i64,
    /// What it is about.
    #[serde(default)]
    pub payload: EventPayload,
}

/// `eventInfo.payload`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventPayload {
    /// The meeting.
    #[serde(default)]
    pub meeting_info: MeetingInfo,
}

/// `eventInfo.payload.meetingInfo`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MeetingInfo {
    /// The conference ID.
    #[serde(default, rename = "meetingID", deserialize_with = "lenient::text")]
    pub meeting_id: String,
    /// The meeting's UUID.
    #[serde(default, rename = "meetingUUID", deserialize_with = "lenient::text")]
    pub meeting_uuid: String,
}

/// The verify handshake's event.
pub const MEETING_VERIFY: &str = "meeting.verify";
/// A meeting started.
pub const MEETING_STARTED: &str = "meeting.started";
/// A meeting ended.
pub const MEETING_END: &str = "meeting.end";

/// The answer to `meeting.verify`: the nonce echoed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct VerifyReply {
    /// [`MEETING_VERIFY`].
    pub event: String,
    /// The request's nonce.
    pub nonce: String,
}

/// A control command as it travels (§1.3): method, path below
/// [`CONTROL_PREFIX`], the participant it names and its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlCall {
    /// `PUT participants/mute` `{isMute}`.
    Mute {
        /// The participant.
        pid: String,
        /// Mute or unmute.
        mute: bool,
    },
    /// `PUT mute` `{isMute, allowUnmuteByOneself}`.
    MuteAll {
        /// Mute or unmute everyone.
        mute: bool,
    },
    /// `PUT lock` `{isLock}`.
    Lock {
        /// Lock or unlock.
        lock: bool,
    },
    /// `PUT allowWaitingParticipant` `{participantID}`.
    Admit {
        /// The participant waiting.
        pid: String,
    },
    /// `POST participants/delete` `{bulkHangUpParticipants: [pid]}`.
    HangUp {
        /// The participant.
        pid: String,
    },
    /// `PUT participants/broadcast` (no body).
    Broadcast {
        /// The participant.
        pid: String,
    },
    /// `PUT cancelBroadcast`.
    CancelBroadcast,
    /// `PUT participants/cohost` `{isCohost}`.
    Cohost {
        /// The participant.
        pid: String,
        /// Make or unmake co-host.
        on: bool,
    },
    /// `PUT participants/role` `{applyChair}`.
    Chair {
        /// The participant.
        pid: String,
        /// Apply for (true) or release (false) the host role.
        apply: bool,
    },
    /// `PUT stop`: end the meeting.
    Stop,
}

impl ControlCall {
    /// The HTTP method.
    pub fn method(&self) -> reqwest::Method {
        match self {
            ControlCall::HangUp { .. } => reqwest::Method::POST,
            _ => reqwest::Method::PUT,
        }
    }

    /// The path below [`CONTROL_PREFIX`].
    pub fn path(&self) -> &'static str {
        match self {
            ControlCall::Mute { .. } => "participants/mute",
            ControlCall::MuteAll { .. } => "mute",
            ControlCall::Lock { .. } => "lock",
            ControlCall::Admit { .. } => "allowWaitingParticipant",
            ControlCall::HangUp { .. } => "participants/delete",
            ControlCall::Broadcast { .. } => "participants/broadcast",
            ControlCall::CancelBroadcast => "cancelBroadcast",
            ControlCall::Cohost { .. } => "participants/cohost",
            ControlCall::Chair { .. } => "participants/role",
            ControlCall::Stop => "stop",
        }
    }

    /// The `participantID` query parameter, for the calls that take one.
    pub fn participant_query(&self) -> Option<&str> {
        match self {
            ControlCall::Mute { pid, .. }
            | ControlCall::Broadcast { pid }
            | ControlCall::Cohost { pid, .. }
            | ControlCall::Chair { pid, .. } => Some(pid),
            _ => None,
        }
    }

    /// The JSON body, for the calls that take one.
    pub fn body(&self) -> Option<Value> {
        let flag = |on: bool| Value::from(i64::from(on));
        match self {
            ControlCall::Mute { mute, .. } => Some(serde_json::json!({ "isMute": flag(*mute) })),
            ControlCall::MuteAll { mute } => Some(serde_json::json!({
                "isMute": flag(*mute),
                "allowUnmuteByOneself": 1,
            })),
            ControlCall::Lock { lock } => Some(serde_json::json!({ "isLock": flag(*lock) })),
            ControlCall::Admit { pid } => Some(serde_json::json!({ "participantID": pid })),
            ControlCall::HangUp { pid } => {
                Some(serde_json::json!({ "bulkHangUpParticipants": [pid] }))
            }
            ControlCall::Cohost { on, .. } => Some(serde_json::json!({ "isCohost": flag(*on) })),
            ControlCall::Chair { apply, .. } => {
                Some(serde_json::json!({ "applyChair": flag(*apply) }))
            }
            ControlCall::Broadcast { .. } | ControlCall::CancelBroadcast | ControlCall::Stop => {
                None
            }
        }
    }

    /// Reads a call back (the simulator's side): method, path below
    /// [`CONTROL_PREFIX`], `participantID` query and JSON body.
    pub fn parse(
        method: &str,
        path: &str,
        participant: Option<&str>,
        body: &Value,
    ) -> Result<ControlCall, String> {
        let pid = || {
            participant
                .filter(|pid| !pid.is_empty())
                .map(str::to_owned)
                .ok_or_else(|| format!("`{path}` needs the participantID query parameter"))
        };
        let flag = |name: &str| match body.get(name) {
            Some(Value::Number(n)) if n.as_i64() == Some(0) => Ok(false),
            Some(Value::Number(n)) if n.as_i64() == Some(1) => Ok(true),
            _ => Err(format!("`{path}` needs `{name}`: 0 or 1")),
        };
        let expected = if path == "participants/delete" {
            "POST"
        } else {
            "PUT"
        };
        if !method.eq_ignore_ascii_case(expected) {
            return Err(format!("`{path}` is called with {expected}"));
        }
        Ok(match path {
            "participants/mute" => ControlCall::Mute {
                pid: pid()?,
                mute: flag("isMute")?,
            },
            "mute" => ControlCall::MuteAll {
                mute: flag("isMute")?,
            },
            "lock" => ControlCall::Lock {
                lock: flag("isLock")?,
            },
            "allowWaitingParticipant" => ControlCall::Admit {
                pid: body
                    .get("participantID")
                    .and_then(Value::as_str)
                    .filter(|pid| !pid.is_empty())
                    .map(str::to_owned)
                    .ok_or("`allowWaitingParticipant` needs `participantID`")?,
            },
            "participants/delete" => {
                let pids = body
                    .get("bulkHangUpParticipants")
                    .and_then(Value::as_array)
                    .ok_or("`participants/delete` needs `bulkHangUpParticipants`")?;
                match pids.as_slice() {
                    [Value::String(pid)] => ControlCall::HangUp { pid: pid.clone() },
                    _ => {
                        return Err(
                            "`bulkHangUpParticipants` must list one participant id".to_owned()
                        );
                    }
                }
            }
            "participants/broadcast" => ControlCall::Broadcast { pid: pid()? },
            "cancelBroadcast" => ControlCall::CancelBroadcast,
            "participants/cohost" => ControlCall::Cohost {
                pid: pid()?,
                on: flag("isCohost")?,
            },
            "participants/role" => ControlCall::Chair {
                pid: pid()?,
                apply: flag("applyChair")?,
            },
            "stop" => ControlCall::Stop,
            other => return Err(format!("no control command `{other}`")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscribe_carries_its_data_as_a_json_string() {
        let frame = ClientFrame::subscribe("12345678901234567890".into(), "tok");
        let json = serde_json::to_value(&frame).unwrap();
        let Value::String(data) = &json["data"] else {
            panic!("data must be a string: {json}");
        };
        let inner: SubscribeData = serde_json::from_str(data).unwrap();
        assert_eq!(inner.conf_token, "Basic dG9r");
        assert_eq!(unwrap_basic(&inner.conf_token).as_deref(), Some("tok"));
        assert!(inner.subscribe_type.contains(&PARTICIPANTS.to_owned()));
    }

    #[test]
    fn heartbeats_pad_the_time_to_thirty_digits() {
        let frame = ClientFrame::heartbeat(1_611_993_595_029);
        assert_eq!(frame.sequence.len(), 30);
        assert!(frame.sequence.ends_with("1611993595029"));
    }

    #[test]
    fn the_subscribe_reply_reads_with_the_spaced_key() {
        let reply: SubscribeReply = serde_json::from_str(
            r#"{"action":"Subscribe","sequence":"1","data":{"returnCode":0,"returnDesc ":"SUCCESS"}}"#,
        )
        .unwrap();
        assert_eq!(reply.data.return_code, 0);
        assert_eq!(reply.data.return_desc, "SUCCESS");
        let missing: SubscribeReply = serde_json::from_str(r#"{"data":{}}"#).unwrap();
        assert_eq!(missing.data.return_code, -1);
    }

    #[test]
    fn seed_002_reads_without_its_passwords() {
        let seed = r#"{"displayID":"900487914","title":"Tom's Meeting","startTime":"1611988484164","pwds":[{"role":"chair","pwd":"******"}],"owner":"Tom","ownerID":"271682cfdbe14fa9ae3a8b25f7502627","scheduledStartTime":"1611988483700","supportWaitingRoom":false,"confID":"900487914","msgID":"239fbd1662d111eb980abbd127030a68","msgMode":0,"version":1611993595029,"createTime":1611993595029,"action":"ConfBasicInfoNotify"}"#;
        let envelope: Envelope = serde_json::from_str(seed).unwrap();
        assert_eq!(envelope.action, BASIC_INFO);
        assert_eq!(envelope.version, 1_611_993_595_029);
        let info: BasicInfo = serde_json::from_str(seed).unwrap();
        assert_eq!(info.title, "Tom's Meeting");
        assert_eq!(info.scheduled_start_time, "1611988483700");
        assert!(!format!("{info:?}").contains("******"));
    }

    #[test]
    fn app_auth_headers_round_trip() {
        let header = app_auth_header("app", "key", "usher", 0, "n".repeat(32).as_str());
        let (signature, app_id) = parse_app_auth_header(&header).unwrap();
        assert_eq!(app_id, "app");
        let signed = format!("app:usher:0:{}", "n".repeat(32));
        assert!(hmac_hex_verify(b"key", signed.as_bytes(), &signature));
        assert!(!hmac_hex_verify(b"other", signed.as_bytes(), &signature));
        assert!(!hmac_hex_verify(b"key", signed.as_bytes(), "zz"));
    }

    #[test]
    fn hmac_matches_rfc_4231_case_2() {
        assert_eq!(
            hmac_hex(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn control_calls_round_trip() {
        let calls = [
            ControlCall::Mute {
                pid: "p1".into(),
                mute: true,
            },
            ControlCall::MuteAll { mute: false },
            ControlCall::Lock { lock: true },
            ControlCall::Admit { pid: "p2".into() },
            ControlCall::HangUp { pid: "p3".into() },
            ControlCall::Broadcast { pid: "p4".into() },
            ControlCall::CancelBroadcast,
            ControlCall::Cohost {
                pid: "p5".into(),
                on: true,
            },
            ControlCall::Chair {
                pid: "p6".into(),
                apply: false,
            },
            ControlCall::Stop,
        ];
        for call in calls {
            let body = call.body().unwrap_or(Value::Null);
            let back = ControlCall::parse(
                call.method().as_str(),
                call.path(),
                call.participant_query(),
                &body,
            );
            assert_eq!(back, Ok(call));
        }
        assert!(ControlCall::parse("PUT", "nonsense", None, &Value::Null).is_err());
        assert!(
            ControlCall::parse("GET", "lock", None, &serde_json::json!({"isLock": 1})).is_err()
        );
    }
}
