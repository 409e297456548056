//! The simulated meeting WebSocket (reference §1.2.a, §1.6).
//!
//! The upgrade spends the `tmpToken`: a token that is unknown, late or used
//! before gets a socket that the server closes at once, as the real one
//! does on an auth failure. Subscribe must carry its `data` as a JSON
//! string holding a valid control token; it is answered with the
//! `returnDesc ` key (trailing space included) and then one full push per
//! subscribed type. Heartbeats are echoed with their sequence; a socket
//! without one for the heartbeat timeout is closed.

use std::sync::Arc;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::response::Response;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{Room, SOCKET_BACKLOG, Shared};
use crate::limits::MAX_STREAM_EVENT;
use crate::platform::huawei::wire::{self, ClientFrame, SubscribeData};

/// Accepts the upgrade; only a valid tmpToken gets a working socket.
pub(super) async fn upgrade(
    State(shared): State<Arc<Shared>>,
    Query(params): Query<std::collections::HashMap<String, String>>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let conference = params.get("confID").cloned().unwrap_or_default();
    let token = params.get("tmpToken").cloned().unwrap_or_default();
    let room = shared
        .room(&conference)
        .filter(|room| room.lock().take_ws_token(&token));
    upgrade
        .max_message_size(MAX_STREAM_EVENT)
        .max_frame_size(MAX_STREAM_EVENT)
        .on_upgrade(move |socket| async move {
            match room {
                Some(room) => serve(shared, room, socket).await,
                None => refuse(socket).await,
            }
        })
}

/// Closes a socket opened with a bad tmpToken.
async fn refuse(mut socket: WebSocket) {
    let _ = socket
        .send(Message::Close(Some(CloseFrame {
            code: 1008,
            reason: "invalid tmpToken".into(),
        })))
        .await;
}

/// Serves one subscribed socket until it closes, the meeting drops it, the
/// client stops sending heartbeats or the simulator stops.
async fn serve(shared: Arc<Shared>, room: Arc<Room>, mut socket: WebSocket) {
    let (frames, mut outgoing) = mpsc::channel(SOCKET_BACKLOG);
    let id = room.lock().add_socket(frames);
    let timeout = shared.options.heartbeat_timeout;
    let mut last_beat = Instant::now();
    loop {
        let incoming = tokio::select! {
            _ = shared.shutdown.cancelled() => break,
            _ = tokio::time::sleep_until(last_beat + timeout) => {
                let _ = socket.send(Message::Close(Some(CloseFrame {
                    code: 1000,
                    reason: "no heartbeat".into(),
                }))).await;
                break;
            }
            frame = outgoing.recv() => match frame {
                Some(text) => {
                    if socket.send(Message::text(text)).await.is_err() {
                        break;
                    }
                    continue;
                }
                None => {
                    let _ = socket.send(Message::Close(None)).await;
                    break;
                }
            },
            incoming = socket.recv() => incoming,
        };
        let text = match incoming {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
            Some(Ok(_)) => continue,
        };
        let Ok(frame) = serde_json::from_str::<ClientFrame>(text.as_str()) else {
            continue;
        };
        match frame.action.as_str() {
            wire::HEARTBEAT => {
                last_beat = Instant::now();
                if room.lock().socket_silent(id) {
                    continue;
                }
                let echo = json!({ "sequence": frame.sequence, "action": wire::HEARTBEAT });
                if socket.send(Message::text(echo.to_string())).await.is_err() {
                    break;
                }
            }
            wire::SUBSCRIBE => {
                let (answer, fulls) = subscribe(&room, id, &frame);
                let refused = fulls.is_none();
                if socket.send(Message::text(answer)).await.is_err() {
                    break;
                }
                if refused {
                    let _ = socket.send(Message::Close(None)).await;
                    break;
                }
                for push in fulls.unwrap_or_default() {
                    if socket.send(Message::text(push)).await.is_err() {
                        break;
                    }
                }
            }
            _ => {}
        }
    }
    room.lock().remove_socket(id);
}

/// Answers Subscribe: the reply, and the full pushes when it was accepted.
fn subscribe(room: &Room, id: u64, frame: &ClientFrame) -> (String, Option<Vec<String>>) {
    let answer = |code: i64, description: &str| {
        json!({
            "action": wire::SUBSCRIBE,
            "sequence": frame.sequence,
            "data": { "returnCode": code, "returnDesc ": description },
        })
        .to_string()
    };
    let Some(Value::String(data)) = &frame.data else {
        return (answer(1, "data must be a JSON string"), None);
    };
    let Ok(data) = serde_json::from_str::<SubscribeData>(data) else {
        return (answer(1, "data is not a subscription"), None);
    };
    let token = wire::unwrap_basic(&data.conf_token).unwrap_or_default();
    match room.lock().subscribe(id, data.subscribe_type, &token) {
        Ok(fulls) => (
            answer(0, "SUCCESS"),
            Some(fulls.into_iter().map(|push| push.text).collect()),
        ),
        Err(why) => (answer(2, &why), None),
    }
}
