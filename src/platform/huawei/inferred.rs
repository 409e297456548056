//! Every Huawei fact usher had to guess, in one place.
//!
//! `reference/platforms.md` §1 marks what public sources could not show as
//! inferred [I] or unknown [?]. Each guess below says what it assumes,
//! which section it comes from, and what usher does if the guess is wrong,
//! so a maintainer with access to a real server can correct them here
//! without hunting through the adapter. The simulator follows the same
//! guesses (it has nothing better to go on); tests therefore prove usher
//! consistent with them, not that they hold on the real service.

use std::time::Duration;

use super::wire::key;

/// [I §1.1] The refresh call (`PUT /v1/usg/acs/token`) takes the current
/// access token in `X-Access-Token` and the refresh token in a JSON body
/// under this name, and answers like the auth calls. If the real call
/// differs, the refresh fails and usher authenticates afresh, which always
/// works.
pub const REFRESH_TOKEN_FIELD: &str = "refreshToken";

/// [I §1.1] The control-token call is sent with the account's access token
/// too (the vendor SDKs add `X-Access-Token` to every call they make). A
/// server that does not want it ignores a header.
pub const CONTROL_TOKEN_NEEDS_ACCESS_TOKEN: bool = true;

/// [V §1.1] `X-Login-Type: 1` with the chair password; the value's meaning
/// beyond "a password is given" is not documented.
pub const LOGIN_TYPE_PASSWORD: &str = "1";

/// [? §1.5] The code a control-token call answers for a meeting that has not
/// started is not documented. usher does not rely on any code: every refusal
/// of that call (other than an expired access token) is retried with
/// backoff and reported as "not connected", quoting the platform's message.
/// The simulator answers with this code.
pub const NOT_STARTED_CODE: &str = "MMC.111070005";

/// [I §1.2.a] What `wsURL` holds is not specified: usher accepts a full URL
/// (`wss://host:port/…`, `https://host`) or a bare `host[:port]` and keeps
/// only scheme, host and port, adding [`super::wire::SOCKET_PATH`]; with no
/// `wsURL` it uses the REST base's host. `http`/`https` become `ws`/`wss`.
pub fn socket_base(ws_url: &str, rest_base: &url::Url) -> Option<url::Url> {
    let trimmed = ws_url.trim();
    let parsed = if trimmed.is_empty() {
        Some(rest_base.clone())
    } else if trimmed.contains("://") {
        url::Url::parse(trimmed).ok()
    } else {
        url::Url::parse(&format!("wss://{trimmed}")).ok()
    }?;
    let scheme = match parsed.scheme() {
        "http" | "ws" => "ws",
        "https" | "wss" => "wss",
        _ => return None,
    };
    let host = parsed.host_str()?;
    let port = parsed
        .port()
        .map(|port| format!(":{port}"))
        .unwrap_or_default();
    url::Url::parse(&format!("{scheme}://{host}{port}")).ok()
}

/// [V3 §1.2.a] The co-host flag. An integrator reads it as `isCohost` with
/// case-insensitive mapping, so the server's exact spelling is unknown;
/// usher matches `pinfoMap` keys ignoring case and underscores (see
/// [`normalize_key`]), which covers `IS_COHOST`, `isCohost` and `ISCOHOST`.
/// `"1"` means co-host.
pub const CO_HOST_KEY: &str = "IS_COHOST";

/// [V3 §1.2.a] The client's user agent, read by the same integrator; usher
/// shows it as the participant's vendor.
pub const USER_AGENT_KEY: &str = "USER_AGENT";

/// [I §1.2.a] How `pinfoMap` keys are compared: upper case, without
/// underscores. The documented keys are upper case; integrators map them
/// case-insensitively; the doc itself spells one key two ways
/// (`CLICENT_LOGIN_TYPE`, `CLIENT_LOGIN_TYPE`), which this does not merge.
pub fn normalize_key(key: &str) -> String {
    key.chars()
        .filter(|&c| c != '_')
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// [I §1.2.a] `STATE` values other than `"0"` mean the participant is not
/// in the meeting yet (`"1"` being called; `"2"` joining, by analogy with
/// `realTimeInfo`). usher reports them as connecting, so no `on_join` fires
/// until they are in; an integrator skips them altogether.
pub fn is_connecting(state: &str) -> bool {
    !state.is_empty() && state != "0"
}

/// [I §1.2.a] `ROLE` `"1"` (host) and the co-host flag make a participant a
/// chair in usher's terms; `"0"` (participant) and `"2"` (audience) make a
/// guest.
pub fn is_chair(role: &str, co_host: &str) -> bool {
    role == "1" || co_host == "1"
}

/// [I §1.2.a, §1.6] A waiting-room entry with `WAITINGSTATE` `"1"` was
/// admitted and is joining; its removal from the waiting list is then not a
/// departure. The same `pid` appears next in `ParticipantsNotify`, so the
/// person moves from the waiting room into the meeting under one identity.
pub const ADMITTED: &str = "1";

/// [I] How long usher waits, after an admitted entry leaves the waiting
/// list, for the same `pid` to appear among the participants before it
/// reports the person as gone.
pub const ADMISSION_BOUND: Duration = Duration::from_secs(15);

/// [I §1.2.a] `SpeakerChangeNotify`'s `data[]` lists the participants
/// speaking now, loudest first, by `pid` (the only field an integrator
/// reads); an empty list is silence.
pub const SPEAKER_PID: &str = "pid";

/// [I §1.4] `realTimeInfo`'s `confInfo`: the host as `chairID` and the
/// co-hosts as `coHosts` (the reference names them so; the SDK model was
/// not read). A wrong guess makes everyone a guest in a REST resync.
#[derive(Debug, Clone, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RealTimeConfInfo {
    /// The host's participant id.
    #[serde(
        default,
        rename = "chairID",
        deserialize_with = "crate::platform::lenient::text"
    )]
    pub chair_id: String,
    /// The co-hosts' participant ids.
    #[serde(default, deserialize_with = "crate::platform::lenient::text_list")]
    pub co_hosts: Vec<String>,
}

/// [I §1.3] "Apply for / release host" (`participants/role`,
/// `applyChair: 0`) is used on another participant to take the host role
/// from them (`make_guest` on the host); `make_host` uses the co-host call,
/// the only one that names who gets the role. If the platform refuses
/// releasing someone else's role, the command is reported refused.
pub const RELEASE_ANOTHERS_HOST_ROLE: bool = true;

/// [I §1.3] A broadcast shows as `BROADCAST` `"1"` on the participant (and
/// the dynamic `mode` `BROADCAST`); usher reads only the participant flag.
pub const BROADCAST_KEY: &str = key::BROADCAST;

/// [? §1.2.b] Whether the webhook signature covers `eventInfo` as sent or
/// re-serialized is not stated; usher checks the raw substring of the body
/// (and the timestamp as written), as the reference recommends.
pub fn signed_event_info(event_info: &serde_json::value::RawValue) -> &str {
    event_info.get()
}

/// [? §1.2.a] Whether incremental `version`s are contiguous is not stated;
/// only that they ascend. usher drops a message whose version is not above
/// the last one of its type (a replay) and treats gaps as normal.
pub fn is_replay(version: i64, last: i64) -> bool {
    version <= last
}

/// [I §1.2.a] The server echoes every heartbeat. A socket that has said
/// nothing at all (no push, no echo) for this many heartbeat periods is
/// taken to be dead and reopened.
pub const SILENT_PERIODS: u32 = 3;

/// [? §1.4] Rate limits carry no published numbers; a 429, or an error body
/// with the client SDK's flow-control code, is retried, honouring
/// `Retry-After` when sent.
pub const RETRY_AFTER_HEADER: &str = "retry-after";

/// [I §1.1, §1.6] An expired or unknown token is answered with HTTP 401;
/// usher then renews the token concerned once and retries.
pub const EXPIRED_STATUS: u16 = 401;

/// [I §1.5] Booking: the create call answers a JSON list of the booked
/// meetings' `ConferenceInfo` (one for a single booking), as the Go SDK's
/// `CreateMeetingResponse` holds; usher reads the first `conferenceID`. A
/// booking is moved with `PUT` and cancelled with `DELETE` on the same
/// path with `?conferenceID=`, the body of a move being the create body.
/// If the real calls differ, moving or cancelling is refused and audited
/// as failed; nothing is booked twice (usher keeps its own ledger).
pub type BookingReply = Vec<super::wire::ConferenceInfo>;

/// [? §1.5] The media of a booked meeting: video with data sharing, as a
/// lecture needs.
pub const BOOKING_MEDIA: &str = "Voice,HDVideo,Data";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_bases_come_from_any_reasonable_ws_url() {
        let rest = url::Url::parse("https://api.meeting.huaweicloud.com").unwrap();
        let cases = [
            (
                "wss://ws.example.com:8443/some/path",
                "wss://ws.example.com:8443/",
            ),
            ("https://ws.example.com", "wss://ws.example.com/"),
            ("ws.example.com:443", "wss://ws.example.com/"),
            ("http://127.0.0.1:9000", "ws://127.0.0.1:9000/"),
            ("", "wss://api.meeting.huaweicloud.com/"),
        ];
        for (ws_url, expected) in cases {
            let base = socket_base(ws_url, &rest).unwrap();
            assert_eq!(base.as_str(), expected, "{ws_url}");
        }
        assert!(socket_base("ftp://x", &rest).is_none());
    }

    #[test]
    fn keys_match_ignoring_case_and_underscores() {
        assert_eq!(normalize_key("isCohost"), normalize_key(CO_HOST_KEY));
        assert_eq!(normalize_key("is_cohost"), "ISCOHOST");
        assert_ne!(
            normalize_key(key::CLICENT_LOGIN_TYPE),
            normalize_key(key::CLIENT_LOGIN_TYPE)
        );
    }

    #[test]
    fn roles_and_states() {
        assert!(is_chair("1", ""));
        assert!(is_chair("0", "1"));
        assert!(!is_chair("2", "0"));
        assert!(is_connecting("1") && is_connecting("2"));
        assert!(!is_connecting("0") && !is_connecting(""));
    }
}
