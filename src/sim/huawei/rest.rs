//! The simulated REST API: auth, tokens, queries and control commands.
//!
//! Errors answer `{error_code, error_msg}` with the status a real server
//! would plausibly use (the codes are the simulator's own, see
//! `platform::huawei::inferred`): 401 for an unknown or expired token, 400
//! for a bad request or a meeting that is not running, 403 for a wrong
//! password, 404 for an unknown meeting or participant. Every call is
//! logged (path without query, so without any token) and may be delayed or
//! failed by a fault.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use crate::platform::huawei::wire::{BOOKING_MINUTES, ScheduleConference};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde_json::Value;

use super::{ControlRecord, MeetingState, Shared, socket};
use crate::platform::huawei::inferred;
use crate::platform::huawei::wire::{
    self, AppAuthRequest, AuthReply, ConfDetailReply, ConferenceInfo, ControlCall,
    ControlTokenReply, ErrorReply, PasswordEntry, RealTimeInfo, RealTimeParticipant, TokenInfo,
    WsTokenReply,
};
use crate::sim::calls::CallRecord;

type Params = Query<HashMap<String, String>>;

pub(super) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route(wire::ACCOUNT_AUTH_PATH, post(account_auth))
        .route(wire::APP_AUTH_PATH, post(app_auth))
        .route(wire::TOKEN_PATH, put(refresh))
        .route(wire::CONTROL_TOKEN_PATH, get(control_token))
        .route(wire::WS_TOKEN_PATH, get(ws_token))
        .route(wire::REAL_TIME_INFO_PATH, get(real_time_info))
        .route(wire::CONF_DETAIL_PATH, get(conf_detail))
        .route(
            wire::CONFERENCES_PATH,
            post(book).put(rebook).delete(cancel_booking),
        )
        .route(wire::SOCKET_PATH, get(socket::upgrade))
        .route(
            &format!("{}{{*command}}", wire::CONTROL_PREFIX),
            put(control).post(control),
        )
        .fallback(|| async { error(404, "MMC.111000404", "no such API call") })
        .method_not_allowed_fallback(|| async {
            error(405, "MMC.111000405", "wrong HTTP method for this call")
        })
        .layer(middleware::from_fn_with_state(shared.clone(), observe))
        .with_state(shared)
}

/// Records every call and holds back responses a `delay_responses` fault
/// asked for.
async fn observe(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let arrived = SystemTime::now();
    let method = request.method().to_string();
    let full_path = request.uri().path().to_owned();
    let query = request.uri().query().unwrap_or_default();
    let room = url::form_urlencoded::parse(query.as_bytes())
        .find(|(name, _)| name == "conferenceID" || name == "confID")
        .map(|(_, value)| value.into_owned());
    let path = full_path
        .strip_prefix(wire::CONTROL_PREFIX)
        .map_or(full_path.clone(), str::to_owned);
    let delay = room
        .as_deref()
        .and_then(|alias| shared.room(alias))
        .and_then(|room| room.lock().take_delay());
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    let response = next.run(request).await;
    shared.record(CallRecord {
        room,
        method,
        path,
        status: response.status().as_u16(),
        at: arrived,
    });
    response
}

fn error(status: u16, code: &str, message: &str) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, axum::Json(ErrorReply::new(code, message))).into_response()
}

fn expired() -> Response {
    error(
        inferred::EXPIRED_STATUS,
        "USG.000000004",
        "the token is invalid or has expired",
    )
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

fn auth_reply(token: String, refresh: String, validity: std::time::Duration) -> Response {
    let now = crate::clock::unix_now() as i64;
    axum::Json(AuthReply {
        access_token: token,
        expire_time: now + validity.as_secs() as i64,
        valid_period: validity.as_secs() as i64,
        refresh_token: refresh,
    })
    .into_response()
}

async fn account_auth(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let expected = wire::account_auth_header(&shared.options.account, &shared.options.password);
    if header(&headers, "authorization") != Some(expected.as_str()) {
        return error(401, "USG.000000001", "wrong account or password");
    }
    let (token, _, validity) = shared.issue_access();
    auth_reply(token, String::new(), validity)
}

async fn app_auth(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    if header(&headers, wire::TOKEN_TYPE_HEADER) != Some(wire::LONG_TICKET) {
        return error(400, "USG.000000002", "X-Token-Type must be LongTicket");
    }
    let Ok(request) = serde_json::from_slice::<AppAuthRequest>(&body) else {
        return error(
            400,
            "USG.000000002",
            "the body is not an App-ID auth request",
        );
    };
    let Some((signature, app_id)) =
        header(&headers, "authorization").and_then(wire::parse_app_auth_header)
    else {
        return error(401, "USG.000000003", "no HMAC-SHA256 signature");
    };
    let now = crate::clock::unix_now() as i64;
    let fresh = request.expire_time == 0 || request.expire_time > now;
    let nonce_ok = (32..=64).contains(&request.nonce.len());
    let signed = format!(
        "{}:{}:{}:{}",
        request.app_id, request.user_id, request.expire_time, request.nonce
    );
    let valid = app_id == shared.options.app_id
        && request.app_id == shared.options.app_id
        && wire::hmac_hex_verify(
            shared.options.app_key.as_bytes(),
            signed.as_bytes(),
            &signature,
        );
    if !(fresh && nonce_ok && valid) {
        return error(401, "USG.000000003", "the App-ID signature is not valid");
    }
    let (token, refresh, validity) = shared.issue_access();
    auth_reply(token, refresh, validity)
}

async fn refresh(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let token = header(&headers, wire::ACCESS_TOKEN_HEADER).unwrap_or_default();
    let refresh_token = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|body| {
            body.get(inferred::REFRESH_TOKEN_FIELD)?
                .as_str()
                .map(str::to_owned)
        })
        .unwrap_or_default();
    match shared.refresh_access(token, &refresh_token) {
        Some((token, refresh, validity)) => auth_reply(token, refresh, validity),
        None => expired(),
    }
}

fn conference_id(params: &HashMap<String, String>) -> &str {
    params.get("conferenceID").map_or("", String::as_str)
}

async fn control_token(
    State(shared): State<Arc<Shared>>,
    Query(params): Params,
    headers: HeaderMap,
) -> Response {
    if !shared.access_valid(header(&headers, wire::ACCESS_TOKEN_HEADER)) {
        return expired();
    }
    let alias = conference_id(&params);
    let Some(room) = shared.room(alias) else {
        return error(404, "MMC.111070004", "no such conference");
    };
    let mut meeting = room.lock();
    if meeting.state != MeetingState::Created {
        return error(
            400,
            inferred::NOT_STARTED_CODE,
            "the conference is not in progress",
        );
    }
    let presented = header(&headers, wire::CONTROL_TOKEN_HEADER).and_then(wire::unwrap_basic);
    let password = header(&headers, wire::PASSWORD_HEADER);
    let token = match (presented, password) {
        (Some(current), _) if meeting.keep_alive(&current) => current,
        (Some(_), None) => return expired(),
        (_, Some(password)) => {
            let right = meeting
                .details
                .chair_password
                .as_ref()
                .is_none_or(|chair| chair.expose() == password);
            if !right {
                return error(403, "MMC.111070001", "the chair password is wrong");
            }
            meeting.issue_control()
        }
        (None, None) => return error(400, "MMC.111000001", "give X-Password"),
    };
    let lifetime = meeting.control_lifetime;
    let now_ms = super::now_ms();
    axum::Json(ControlTokenReply {
        data: TokenInfo {
            token,
            ws_url: format!("ws://{}", shared.addr),
            role: 1,
            expire_time: now_ms + lifetime.as_millis() as i64,
            conf_token_expire_time: lifetime.as_secs().max(1) as i64,
        },
    })
    .into_response()
}

/// The control token a call carries, checked against the meeting.
fn control_ok(meeting: &super::Meeting, headers: &HeaderMap) -> bool {
    let token = header(headers, wire::CONTROL_TOKEN_HEADER).and_then(wire::unwrap_basic);
    meeting.control_valid(token.as_deref())
}

async fn ws_token(
    State(shared): State<Arc<Shared>>,
    Query(params): Params,
    headers: HeaderMap,
) -> Response {
    let Some(room) = shared.room(conference_id(&params)) else {
        return error(404, "MMC.111070004", "no such conference");
    };
    let mut meeting = room.lock();
    if !control_ok(&meeting, &headers) {
        return expired();
    }
    let token = meeting.issue_ws_token(shared.options.ws_token_validity);
    axum::Json(WsTokenReply {
        web_socket_token: token,
    })
    .into_response()
}

async fn real_time_info(
    State(shared): State<Arc<Shared>>,
    Query(params): Params,
    headers: HeaderMap,
) -> Response {
    let Some(room) = shared.room(conference_id(&params)) else {
        return error(404, "MMC.111070004", "no such conference");
    };
    let meeting = room.lock();
    if !control_ok(&meeting, &headers) {
        return expired();
    }
    let flag = |on: bool| i64::from(on);
    let online: Vec<_> = meeting
        .conference
        .participants()
        .filter(|p| !p.is_waiting())
        .collect();
    let participants = online
        .iter()
        .map(|p| RealTimeParticipant {
            pid: p.uuid.clone(),
            name: p.display_name.clone(),
            phone: String::new(),
            state: 0,
            video: flag(!p.audio_only),
            mute: flag(p.muted),
            hand: flag(p.hand_raised()),
        })
        .collect();
    let chair_id = online
        .iter()
        .find(|p| p.is_host() && !meeting.cohosts.contains(&p.uuid))
        .map(|p| p.uuid.clone())
        .unwrap_or_default();
    axum::Json(RealTimeInfo {
        participants,
        conf_info: inferred::RealTimeConfInfo {
            chair_id,
            co_hosts: meeting.cohosts.iter().cloned().collect(),
        },
    })
    .into_response()
}

async fn conf_detail(
    State(shared): State<Arc<Shared>>,
    Query(params): Params,
    headers: HeaderMap,
) -> Response {
    if !shared.access_valid(header(&headers, wire::ACCESS_TOKEN_HEADER)) {
        return expired();
    }
    let Some(room) = shared.room(conference_id(&params)) else {
        return error(404, "MMC.111070004", "no such conference");
    };
    let meeting = room.lock();
    let minutes =
        |ms: i64| crate::clock::format_timestamp(ms as f64 / 1000.0)[..16].replacen('T', " ", 1);
    let details = &meeting.details;
    let password_entry = details
        .chair_password
        .iter()
        .map(|password| PasswordEntry {
            conference_role: "chair".to_owned(),
            password: password.expose().to_owned(),
        })
        .collect();
    axum::Json(ConfDetailReply {
        conference_data: ConferenceInfo {
            conference_id: details.alias.clone(),
            subject: details.title.clone(),
            start_time: minutes(details.scheduled_ms),
            end_time: minutes(details.scheduled_ms + details.minutes * 60_000),
            conference_state: meeting.state.as_str().to_owned(),
            password_entry,
        },
    })
    .into_response()
}

/// A booking body's start (UNIX ms) and length, or why it is refused.
fn booking(body: &Bytes) -> Result<(ScheduleConference, i64), &'static str> {
    let Ok(body) = serde_json::from_slice::<ScheduleConference>(body) else {
        return Err("the body is not a booking");
    };
    let minute = format!("{}:00Z", body.start_time.replacen(' ', "T", 1));
    let Ok(start) = crate::clock::parse_timestamp(&minute) else {
        return Err("startTime must be yyyy-MM-dd HH:mm (UTC)");
    };
    if !BOOKING_MINUTES.contains(&body.length) {
        return Err("length must be 15 to 1440 minutes");
    }
    Ok((body, (start * 1000.0) as i64))
}

async fn book(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    if !shared.access_valid(header(&headers, wire::ACCESS_TOKEN_HEADER)) {
        return expired();
    }
    let (body, start_ms) = match booking(&body) {
        Ok(booking) => booking,
        Err(why) => return error(400, "MMC.111000400", why),
    };
    let alias = shared.book(&body.subject, start_ms, body.length);
    let room = shared.room(&alias).expect("just booked");
    let meeting = room.lock();
    let minutes =
        |ms: i64| crate::clock::format_timestamp(ms as f64 / 1000.0)[..16].replacen('T', " ", 1);
    axum::Json(vec![ConferenceInfo {
        conference_id: alias.clone(),
        subject: body.subject.clone(),
        start_time: minutes(start_ms),
        end_time: minutes(start_ms + body.length * 60_000),
        conference_state: meeting.state.as_str().to_owned(),
        password_entry: Vec::new(),
    }])
    .into_response()
}

async fn rebook(
    State(shared): State<Arc<Shared>>,
    Query(params): Params,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !shared.access_valid(header(&headers, wire::ACCESS_TOKEN_HEADER)) {
        return expired();
    }
    let (body, start_ms) = match booking(&body) {
        Ok(booking) => booking,
        Err(why) => return error(400, "MMC.111000400", why),
    };
    if shared.rebook(conference_id(&params), &body.subject, start_ms, body.length) {
        StatusCode::OK.into_response()
    } else {
        error(404, "MMC.111070004", "no such booked conference")
    }
}

async fn cancel_booking(
    State(shared): State<Arc<Shared>>,
    Query(params): Params,
    headers: HeaderMap,
) -> Response {
    if !shared.access_valid(header(&headers, wire::ACCESS_TOKEN_HEADER)) {
        return expired();
    }
    if shared.cancel_booking(conference_id(&params)) {
        StatusCode::OK.into_response()
    } else {
        error(404, "MMC.111070004", "no such booked conference")
    }
}

async fn control(
    State(shared): State<Arc<Shared>>,
    Path(command): Path<String>,
    Query(params): Params,
    method: axum::http::Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let alias = conference_id(&params).to_owned();
    let Some(room) = shared.room(&alias) else {
        return error(404, "MMC.111070004", "no such conference");
    };
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        match serde_json::from_slice(&body) {
            Ok(body) => body,
            Err(_) => return error(400, "MMC.111000001", "the body is not JSON"),
        }
    };
    let participant = params.get("participantID").map(String::as_str);
    let call = match ControlCall::parse(method.as_str(), &command, participant, &body) {
        Ok(call) => call,
        Err(reason) => return error(400, "MMC.111000001", &reason),
    };
    let outcome = {
        let mut meeting = room.lock();
        if !control_ok(&meeting, &headers) {
            Err((
                inferred::EXPIRED_STATUS,
                "USG.000000004",
                "the token is invalid or has expired".to_owned(),
            ))
        } else if let Some(status) = meeting.take_failure() {
            Err((status, "MMC.111000500", "simulated failure".to_owned()))
        } else if meeting.state != MeetingState::Created {
            Err((
                400,
                inferred::NOT_STARTED_CODE,
                "the conference is not in progress".to_owned(),
            ))
        } else {
            meeting.apply(&call)
        }
    };
    let stopped = call == ControlCall::Stop && outcome.is_ok();
    let response = match &outcome {
        Ok(()) => StatusCode::OK.into_response(),
        Err((status, code, message)) => error(*status, code, message),
    };
    shared.record_control(ControlRecord {
        room: alias.clone(),
        call,
        status: response.status().as_u16(),
    });
    if stopped {
        shared.notify(super::webhook::Notice::Ended(alias));
    }
    response
}
