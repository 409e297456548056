//! The seed-001 API on the wire: paths, request bodies and replies.
//!
//! Both ends use this module: the client to build requests, the simulator to
//! route and answer them. Mapping a [`Command`] to its request and a request
//! back to its [`Command`] live side by side so the two cannot drift apart.
//!
//! Every reply is `{"status": ..., "result": ...}`. Servers say `success`,
//! `failed` or `failure`; an expired token is HTTP 403 with status `success`
//! and result `"Invalid token"`.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::Serializer as Json;

use crate::model::{
    CallRequest, Command, ConferenceCommand, Dial, LayoutOverride, Message, ParticipantCommand,
    Role, Secret, Target, Transfer,
};
use crate::platform::lenient;

/// The header that carries the token.
pub const TOKEN_HEADER: &str = "token";
/// The header that carries the PIN on `new_session`.
pub const PIN_HEADER: &str = "pin";
/// The result text of a 403 for a bad or expired token.
pub const INVALID_TOKEN: &str = "Invalid token";
/// The path of `checkJoin` on the API server.
pub const CHECK_JOIN_PATH: &str = "api/v3/meet/checkJoin.shtml";

/// A reply envelope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    /// `success`, `failed` or `failure`.
    #[serde(default, deserialize_with = "lenient::text")]
    pub status: String,
    /// The result; its shape depends on the call.
    #[serde(default)]
    pub result: Value,
}

impl Reply {
    /// A successful reply.
    pub fn success(result: impl Into<Value>) -> Self {
        Reply {
            status: "success".to_owned(),
            result: result.into(),
        }
    }

    /// A failed reply with a reason.
    pub fn failed(reason: impl Into<String>) -> Self {
        Reply {
            status: "failed".to_owned(),
            result: Value::String(reason.into()),
        }
    }

    /// True when the call worked: status `success` and a result that is not
    /// `false` (commands answer `true`/`false`, sometimes as text).
    pub fn is_success(&self) -> bool {
        let status_ok = self.status.eq_ignore_ascii_case("success");
        let result_false = match &self.result {
            Value::Bool(false) => true,
            Value::String(text) => text.trim_matches('\'').eq_ignore_ascii_case("false"),
            _ => false,
        };
        status_ok && !result_false
    }

    /// The result as text, for error messages.
    pub fn reason(&self) -> String {
        match &self.result {
            Value::String(text) => text.clone(),
            Value::Null => self.status.clone(),
            other => other.to_string(),
        }
    }
}

/// The body of `new_session`. The PIN goes in a header, not here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewSessionRequest {
    /// The name our participant gets.
    #[serde(default, deserialize_with = "lenient::text")]
    pub display_name: String,
    /// `"yes"` keeps our participant out of the roster.
    #[serde(default = "hide_me", deserialize_with = "lenient::text")]
    pub hideme: String,
}

fn yes() -> bool {
    true
}

fn hide_me() -> String {
    "yes".to_owned()
}

/// The result of `new_session`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct SessionGrant {
    /// The token for every later call.
    #[serde(serialize_with = "expose")]
    pub token: Secret,
    /// Seconds until the token expires (a string on some servers).
    #[serde(default = "default_expiry", deserialize_with = "lenient::number")]
    pub expires: f64,
    /// Our own participant's uuid.
    #[serde(default, deserialize_with = "lenient::text")]
    pub participant_uuid: String,
    /// Our display name.
    #[serde(default, deserialize_with = "lenient::text")]
    pub display_name: String,
    /// `HOST` or `GUEST`.
    #[serde(default, deserialize_with = "lenient::open")]
    pub role: Role,
    /// `conference` or `gateway`.
    #[serde(default, deserialize_with = "lenient::text")]
    pub service_type: String,
    /// `conference`, `gateway`, `waiting_room` or `ivr`.
    #[serde(default, deserialize_with = "lenient::text")]
    pub current_service_type: String,
    /// Whether chat is enabled in this conference.
    #[serde(default, deserialize_with = "lenient::flag")]
    pub chat_enabled: bool,
}

/// The result of `refresh_session`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct TokenRefresh {
    /// The new token.
    #[serde(serialize_with = "expose")]
    pub token: Secret,
    /// Seconds until it expires.
    #[serde(default = "default_expiry", deserialize_with = "lenient::number")]
    pub expires: f64,
}

/// The seed's token lifetime, used when a server leaves `expires` out.
pub fn default_expiry() -> f64 {
    120.0
}

fn expose<S: serde::Serializer>(secret: &Secret, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(secret.expose())
}

/// The result of `service_status`.
#[derive(Debug, Clone, Copy, PartialEq, Default, Deserialize, Serialize)]
pub struct ServiceStatus {
    /// Guests are muted.
    #[serde(default, deserialize_with = "lenient::flag")]
    pub guests_muted: bool,
    /// The conference is locked.
    #[serde(default, deserialize_with = "lenient::flag")]
    pub locked: bool,
    /// The conference has started (hosts present or started by the API);
    /// not every server says.
    #[serde(
        default,
        deserialize_with = "lenient::optional_flag",
        skip_serializing_if = "Option::is_none"
    )]
    pub started: Option<bool>,
}

/// The body of `checkJoin`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckJoinRequest {
    /// The conference's short number or address.
    #[serde(rename = "joinAccount")]
    pub join_account: String,
    /// The conference password, if any.
    #[serde(
        rename = "joinPwd",
        default,
        serialize_with = "Secret::serialize_exposed",
        skip_serializing_if = "Option::is_none"
    )]
    pub join_pwd: Option<Secret>,
    /// The name we join with.
    #[serde(rename = "participantName")]
    pub participant_name: String,
}

/// The reply of `checkJoin` (its own envelope, not `{status, result}`).
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct CheckJoinReply {
    /// `"200"` on success.
    #[serde(default, deserialize_with = "lenient::text")]
    pub code: String,
    /// The details, on success.
    #[serde(default)]
    pub results: Option<CheckJoinResult>,
}

/// What `checkJoin` tells us about the conference.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct CheckJoinResult {
    /// The meeting node to send every later request to.
    #[serde(rename = "mcuHost", default, deserialize_with = "lenient::text")]
    pub mcu_host: String,
    /// The conference address.
    #[serde(default, deserialize_with = "lenient::text")]
    pub alias: String,
    /// `host` or `guest`: the role the password gives.
    #[serde(rename = "roleType", default, deserialize_with = "lenient::text")]
    pub role_type: String,
    /// The conference's name.
    #[serde(rename = "conferenceName", default, deserialize_with = "lenient::text")]
    pub conference_name: String,
}

/// The body of `dial`, as the seed spells it.
#[derive(Serialize, Deserialize)]
#[serde(remote = "Dial")]
pub struct DialBody {
    #[serde(default = "guest", deserialize_with = "lenient::open")]
    role: Role,
    #[serde(default, deserialize_with = "lenient::text")]
    destination: String,
    #[serde(default = "auto", deserialize_with = "lenient::text")]
    protocol: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    presentation_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    streaming: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dtmf_sequence: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    source_display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    call_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    keep_conference_alive: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    remote_display_name: Option<String>,
}

/// The body of `message`.
#[derive(Serialize, Deserialize)]
#[serde(remote = "Message")]
pub struct MessageBody {
    #[serde(rename = "type", default = "text_plain")]
    mime_type: String,
    #[serde(deserialize_with = "lenient::text")]
    payload: String,
}

/// One entry of `override_layout`'s `layouts`.
#[derive(Serialize, Deserialize)]
#[serde(remote = "LayoutOverride")]
pub struct LayoutOverrideBody {
    #[serde(default)]
    audience: String,
    #[serde(default)]
    actors: Vec<String>,
    #[serde(default = "yes", deserialize_with = "lenient::flag")]
    vad_backfill: bool,
    layout: String,
    #[serde(default = "auto")]
    plus_n: String,
    #[serde(default = "auto")]
    actors_overlay_text: String,
}

/// The body of `override_layout`.
#[derive(Serialize, Deserialize)]
struct LayoutsBody {
    layouts: Vec<LayoutEntry>,
}

#[derive(Serialize, Deserialize)]
struct LayoutEntry(#[serde(with = "LayoutOverrideBody")] LayoutOverride);

/// The body of `transfer`; the PIN goes on the wire, never into a log.
#[derive(Serialize, Deserialize)]
#[serde(remote = "Transfer")]
pub struct TransferBody {
    #[serde(deserialize_with = "lenient::text")]
    conference_alias: String,
    #[serde(default = "guest", deserialize_with = "lenient::open")]
    role: Role,
    #[serde(
        default,
        serialize_with = "Secret::serialize_exposed",
        skip_serializing_if = "Option::is_none"
    )]
    pin: Option<Secret>,
}

/// The body of `calls`.
#[derive(Serialize, Deserialize)]
#[serde(remote = "CallRequest")]
pub struct CallRequestBody {
    call_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sdp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    present: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    streaming: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    bandwidth: Option<u64>,
}

fn guest() -> Role {
    Role::Guest
}

fn auto() -> String {
    "auto".to_owned()
}

fn text_plain() -> String {
    "text/plain".to_owned()
}

/// HTTP method of a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// GET.
    Get,
    /// POST.
    Post,
}

/// One REST call: method, path below `/api/services/<room>/`, JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// GET or POST.
    pub method: Method,
    /// The path below the room, e.g. `lock` or `participants/<uuid>/mute`.
    pub path: String,
    /// The JSON body, if the call has one.
    pub body: Option<Value>,
}

/// The request name of a conference command (the last path segment).
pub fn conference_command_name(command: &ConferenceCommand) -> &'static str {
    match command {
        ConferenceCommand::Dial(_) => "dial",
        ConferenceCommand::Lock => "lock",
        ConferenceCommand::Unlock => "unlock",
        ConferenceCommand::StartService => "start_service",
        ConferenceCommand::MuteGuests => "muteguests",
        ConferenceCommand::UnmuteGuests => "unmuteguests",
        ConferenceCommand::Disconnect => "disconnect",
        ConferenceCommand::Message(_) => "message",
        ConferenceCommand::OverrideLayout(_) => "override_layout",
    }
}

/// The request name of a participant command (the last path segment).
pub fn participant_command_name(command: &ParticipantCommand) -> &'static str {
    match command {
        ParticipantCommand::Disconnect => "disconnect",
        ParticipantCommand::Mute => "mute",
        ParticipantCommand::Unmute => "unmute",
        ParticipantCommand::AllowRxPresentation => "allowrxpresentation",
        ParticipantCommand::DenyRxPresentation => "denyrxpresentation",
        ParticipantCommand::SpotlightOn => "spotlighton",
        ParticipantCommand::SpotlightOff => "spotlightoff",
        ParticipantCommand::Admit => "unlock",
        ParticipantCommand::Dtmf { .. } => "dtmf",
        ParticipantCommand::SetRole(_) => "role",
        ParticipantCommand::Transfer(_) => "transfer",
        ParticipantCommand::Calls(_) => "calls",
        ParticipantCommand::VideoMute => "hard_vmute",
        ParticipantCommand::VideoUnmute => "hard_uvmute",
        ParticipantCommand::CancelDelay => "cancel_delay",
        ParticipantCommand::ResumeDelay => "resume_delay",
        // Never sent: seed 001 cannot ban (see `CAPABILITIES`).
        ParticipantCommand::Ban { .. } => "ban",
    }
}

/// The REST call for a command. Every command is a POST.
pub fn request(command: &Command) -> Request {
    let (path, body) = match command {
        Command::Conference(conference) => {
            let body = match conference {
                ConferenceCommand::Dial(dial) => json(DialBody::serialize(dial, Json)),
                ConferenceCommand::Message(message) => json(MessageBody::serialize(message, Json)),
                ConferenceCommand::OverrideLayout(layouts) => json(
                    LayoutsBody {
                        layouts: layouts.iter().cloned().map(LayoutEntry).collect(),
                    }
                    .serialize(Json),
                ),
                _ => None,
            };
            (conference_command_name(conference).to_owned(), body)
        }
        Command::Participant { target, action } => {
            let body = match action {
                ParticipantCommand::Dtmf { digits } => {
                    Some(serde_json::json!({ "digits": digits }))
                }
                ParticipantCommand::SetRole(role) => Some(serde_json::json!({ "role": role })),
                ParticipantCommand::Transfer(transfer) => {
                    json(TransferBody::serialize(transfer, Json))
                }
                ParticipantCommand::Calls(call) => json(CallRequestBody::serialize(call, Json)),
                _ => None,
            };
            let path = format!(
                "participants/{}/{}",
                target.uuid,
                participant_command_name(action)
            );
            (path, body)
        }
    };
    Request {
        method: Method::Post,
        path,
        body,
    }
}

/// Why a request could not be read as a command.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ParseRequestError {
    /// No command has that name.
    #[error("unknown command `{0}`")]
    UnknownCommand(String),
    /// The body is missing or wrong for the command.
    #[error("bad body for `{command}`: {reason}")]
    BadBody {
        /// The command.
        command: String,
        /// What was wrong.
        reason: String,
    },
}

/// Reads a conference command from its name and body (the simulator's side).
pub fn parse_conference_command(
    name: &str,
    body: &Value,
) -> Result<ConferenceCommand, ParseRequestError> {
    let command = match name {
        "dial" => ConferenceCommand::Dial(Box::new(body_of(name, DialBody::deserialize(body))?)),
        "lock" => ConferenceCommand::Lock,
        "unlock" => ConferenceCommand::Unlock,
        "start_service" => ConferenceCommand::StartService,
        "muteguests" => ConferenceCommand::MuteGuests,
        "unmuteguests" => ConferenceCommand::UnmuteGuests,
        "disconnect" => ConferenceCommand::Disconnect,
        "message" => ConferenceCommand::Message(body_of(name, MessageBody::deserialize(body))?),
        "override_layout" => {
            let layouts: LayoutsBody = body_of(name, LayoutsBody::deserialize(body))?;
            ConferenceCommand::OverrideLayout(layouts.layouts.into_iter().map(|l| l.0).collect())
        }
        _ => return Err(ParseRequestError::UnknownCommand(name.to_owned())),
    };
    Ok(command)
}

/// Reads a participant command from its name and body (the simulator's side).
pub fn parse_participant_command(
    name: &str,
    body: &Value,
) -> Result<ParticipantCommand, ParseRequestError> {
    #[derive(Deserialize)]
    struct Digits {
        #[serde(deserialize_with = "lenient::text")]
        digits: String,
    }
    #[derive(Deserialize)]
    struct RoleBody {
        #[serde(deserialize_with = "lenient::open")]
        role: Role,
    }
    let command = match name {
        "disconnect" => ParticipantCommand::Disconnect,
        "mute" => ParticipantCommand::Mute,
        "unmute" => ParticipantCommand::Unmute,
        "allowrxpresentation" => ParticipantCommand::AllowRxPresentation,
        "denyrxpresentation" => ParticipantCommand::DenyRxPresentation,
        "spotlighton" => ParticipantCommand::SpotlightOn,
        "spotlightoff" => ParticipantCommand::SpotlightOff,
        "unlock" => ParticipantCommand::Admit,
        "dtmf" => ParticipantCommand::Dtmf {
            digits: body_of(name, Digits::deserialize(body))?.digits,
        },
        "role" => ParticipantCommand::SetRole(body_of(name, RoleBody::deserialize(body))?.role),
        "transfer" => ParticipantCommand::Transfer(body_of(name, TransferBody::deserialize(body))?),
        "calls" => ParticipantCommand::Calls(body_of(name, CallRequestBody::deserialize(body))?),
        "hard_vmute" => ParticipantCommand::VideoMute,
        "hard_uvmute" => ParticipantCommand::VideoUnmute,
        "cancel_delay" => ParticipantCommand::CancelDelay,
        "resume_delay" => ParticipantCommand::ResumeDelay,
        _ => return Err(ParseRequestError::UnknownCommand(name.to_owned())),
    };
    Ok(command)
}

/// Reads a whole command from a request path below the room and its body.
pub fn parse_request(path: &str, body: &Value) -> Result<Command, ParseRequestError> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match segments[..] {
        [name] => parse_conference_command(name, body).map(Command::Conference),
        ["participants", uuid, name] => Ok(Command::Participant {
            target: Target {
                uuid: uuid.to_owned(),
                name: String::new(),
            },
            action: parse_participant_command(name, body)?,
        }),
        _ => Err(ParseRequestError::UnknownCommand(path.to_owned())),
    }
}

fn body_of<T>(name: &str, parsed: Result<T, serde_json::Error>) -> Result<T, ParseRequestError> {
    parsed.map_err(|err| ParseRequestError::BadBody {
        command: name.to_owned(),
        reason: err.to_string(),
    })
}

fn json(body: Result<Value, serde_json::Error>) -> Option<Value> {
    Some(body.expect("request bodies always serialize"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_command() -> Vec<Command> {
        let conference = [
            ConferenceCommand::Dial(Box::new(Dial::new("bob@example.com", "sip"))),
            ConferenceCommand::Lock,
            ConferenceCommand::Unlock,
            ConferenceCommand::StartService,
            ConferenceCommand::MuteGuests,
            ConferenceCommand::UnmuteGuests,
            ConferenceCommand::Disconnect,
            ConferenceCommand::Message(Message::text("hello")),
            ConferenceCommand::OverrideLayout(vec![
                LayoutOverride::new("hosts", "1:7"),
                LayoutOverride::new("", "1:0"),
            ]),
        ];
        let participant = [
            ParticipantCommand::Disconnect,
            ParticipantCommand::Mute,
            ParticipantCommand::Unmute,
            ParticipantCommand::AllowRxPresentation,
            ParticipantCommand::DenyRxPresentation,
            ParticipantCommand::SpotlightOn,
            ParticipantCommand::SpotlightOff,
            ParticipantCommand::Admit,
            ParticipantCommand::Dtmf {
                digits: "1234#".into(),
            },
            ParticipantCommand::SetRole(Role::Chair),
            ParticipantCommand::Transfer(Transfer {
                conference_alias: "meet@example.com".into(),
                role: Role::Guest,
                pin: Some(Secret::new("1234")),
            }),
            ParticipantCommand::Calls(CallRequest {
                call_type: "RTMP".into(),
                sdp: None,
                present: Some("send".into()),
                streaming: Some(true),
                bandwidth: Some(1024),
            }),
            ParticipantCommand::VideoMute,
            ParticipantCommand::VideoUnmute,
            ParticipantCommand::CancelDelay,
            ParticipantCommand::ResumeDelay,
        ];
        conference
            .into_iter()
            .map(Command::Conference)
            .chain(participant.into_iter().map(|action| Command::Participant {
                target: Target {
                    uuid: "u-1".into(),
                    name: String::new(),
                },
                action,
            }))
            .collect()
    }

    #[test]
    fn every_command_round_trips_through_its_request() {
        for command in every_command() {
            let request = request(&command);
            assert_eq!(request.method, Method::Post);
            let body = request.body.clone().unwrap_or(Value::Null);
            let parsed = parse_request(&request.path, &body)
                .unwrap_or_else(|err| panic!("{}: {err}", request.path));
            assert_eq!(parsed, command, "{}", request.path);
        }
    }

    #[test]
    fn paths_and_bodies_follow_the_seed() {
        let admit = request(&Command::participant(
            "u-1",
            "Ann",
            ParticipantCommand::Admit,
        ));
        assert_eq!(admit.path, "participants/u-1/unlock");
        let role = request(&Command::participant(
            "u-1",
            "Ann",
            ParticipantCommand::SetRole(Role::Chair),
        ));
        assert_eq!(role.body, Some(serde_json::json!({"role": "chair"})));
        let message = request(&Command::Conference(ConferenceCommand::Message(
            Message::text("Hello World"),
        )));
        assert_eq!(
            message.body,
            Some(serde_json::json!({"type": "text/plain", "payload": "Hello World"}))
        );
        let vmute = request(&Command::participant(
            "u-1",
            "Ann",
            ParticipantCommand::VideoMute,
        ));
        assert_eq!(vmute.path, "participants/u-1/hard_vmute");
    }

    #[test]
    fn bodies_serialize_as_in_the_seed() {
        let dial = Dial {
            source_display_name: Some("Alice".into()),
            ..Dial::new("bob@example.com", "sip")
        };
        let request = request(&Command::Conference(ConferenceCommand::Dial(Box::new(
            dial,
        ))));
        assert_eq!(
            request.body,
            Some(
                serde_json::json!({"role":"guest","destination":"bob@example.com","protocol":"sip","source_display_name":"Alice"})
            )
        );
        let transfer = request_body(ParticipantCommand::Transfer(Transfer {
            conference_alias: "meet@example.com".into(),
            role: Role::Guest,
            pin: Some(Secret::new("1234")),
        }));
        assert_eq!(
            transfer,
            serde_json::json!({"role":"guest","conference_alias":"meet@example.com","pin":"1234"})
        );
        let layouts = parse_conference_command(
            "override_layout",
            &serde_json::json!({"layouts":[{"audience":"hosts","actors":[],"vad_backfill":"YES","layout":"2:21"}]}),
        )
        .unwrap();
        assert_eq!(
            layouts,
            ConferenceCommand::OverrideLayout(vec![LayoutOverride::new("hosts", "2:21")])
        );
    }

    fn request_body(action: ParticipantCommand) -> Value {
        request(&Command::participant("u-1", "Ann", action))
            .body
            .unwrap()
    }

    #[test]
    fn replies_accept_every_failure_spelling() {
        let parse = |json: &str| serde_json::from_str::<Reply>(json).unwrap();
        assert!(parse(r#"{"status":"success","result":true}"#).is_success());
        assert!(parse(r#"{"status":"success","result":"true"}"#).is_success());
        assert!(parse(r#"{"status":"success","result":["u"]}"#).is_success());
        assert!(!parse(r#"{"status":"success","result":false}"#).is_success());
        assert!(!parse(r#"{"status":"success","result":"'false'"}"#).is_success());
        assert!(!parse(r#"{"status":"failed","result":"no"}"#).is_success());
        assert!(!parse(r#"{"status":"failure","result":"no"}"#).is_success());
        assert_eq!(
            parse(r#"{"status":"failure","result":"no"}"#).reason(),
            "no"
        );
    }

    #[test]
    fn unknown_requests_are_named_in_the_error() {
        assert_eq!(
            parse_request("explode", &Value::Null),
            Err(ParseRequestError::UnknownCommand("explode".into()))
        );
        assert!(matches!(
            parse_request("message", &serde_json::json!({"type": "text/plain"})),
            Err(ParseRequestError::BadBody { .. })
        ));
        assert!(matches!(
            parse_request("participants/u/dtmf", &Value::Null),
            Err(ParseRequestError::BadBody { .. })
        ));
    }
}
