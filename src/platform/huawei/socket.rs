//! The meeting WebSocket: the supervised event feed of one Huawei room.
//!
//! [`run_feed`] keeps the room's socket open for as long as it is asked to:
//!
//! 1. a control token (only obtainable once the meeting runs: until then
//!    every attempt is reported as [`FeedItem::Disconnected`] with the
//!    platform's reason, and retried with backoff);
//! 2. a one-shot wsToken, and the socket opened with it;
//! 3. Subscribe, whose `data` is a JSON string; on its answer the feed
//!    reports [`FeedItem::Connected`], and the full pushes that follow make
//!    the roster ([`super::decode`]);
//! 4. a heartbeat every `heartbeat` (the server drops a socket after
//!    180 s without one); a socket that says nothing for
//!    [`inferred::SILENT_PERIODS`] heartbeats is taken to be dead.
//!
//! Whatever ends a socket — the server closing it, silence, a refused
//! token, the meeting ending — the feed starts again from 1 after a backoff
//! with jitter, reset by every socket that subscribed. Frames are capped at
//! [`MAX_STREAM_EVENT`]; a malformed one is logged and skipped.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;

use super::auth::ControlAuth;
use super::decode::{Deadline, Decoder, Frame};
use super::inferred;
use super::rest::{Auth, CallError};
use super::wire::{self, ClientFrame, RealTimeInfo};
use crate::clock::unix_now;
use crate::limits::MAX_STREAM_EVENT;
use crate::model::{Event, Secret};
use crate::platform::{CappedBackoff, FeedItem, FeedOptions};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The longest the server may take to answer Subscribe.
const SUBSCRIBE_BOUND: Duration = Duration::from_secs(10);

/// What a room's feed works with.
pub struct FeedContext {
    /// The meeting's control token (and through it the access token).
    pub control: Arc<ControlAuth>,
    /// The decoding, shared with the link (which asks it about roles).
    pub decoder: Arc<Mutex<Decoder>>,
    /// How often to send a heartbeat.
    pub heartbeat: Duration,
    /// The longest wait for the socket to open.
    pub connect_timeout: Duration,
}

/// Why a socket ended.
#[derive(Debug)]
enum End {
    /// usher is stopping, or nobody listens any more.
    Stopped,
    /// The socket ended; try again after the backoff.
    Lost(String),
}

/// Keeps the meeting socket open until `cancel` fires or `sink` closes.
pub async fn run_feed(
    context: FeedContext,
    sink: mpsc::Sender<Box<FeedItem>>,
    cancel: CancellationToken,
    options: FeedOptions,
) {
    let backoff_builder = CappedBackoff::new(options.min_backoff, options.max_backoff);
    let mut backoff = backoff_builder.start();
    loop {
        let reason = match open(&context).await {
            Ok(socket) => {
                backoff = backoff_builder.start();
                match follow(&context, socket, &sink, &cancel).await {
                    End::Stopped => return,
                    End::Lost(reason) => reason,
                }
            }
            Err(reason) => reason,
        };
        if lock(&context.decoder).ended() {
            context.control.forget().await;
        }
        let retry_in = backoff.next().unwrap_or(options.max_backoff);
        tracing::info!(reason = %reason, retry_in = ?retry_in, "meeting socket down");
        let down = FeedItem::Disconnected { reason, retry_in };
        if sink.send(Box::new(down)).await.is_err() {
            return;
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(retry_in) => {}
        }
    }
}

/// Opens and subscribes a socket; the error is the reason to report.
async fn open(context: &FeedContext) -> Result<(Socket, Secret), String> {
    let conference = context.control.conference();
    let (ws_token, control) = context
        .control
        .ws_token()
        .await
        .map_err(|err| not_running(conference, &err))?;
    let rest_base = context.control.access().rest().base();
    let mut url = inferred::socket_base(&control.ws_url, rest_base).ok_or_else(|| {
        format!(
            "the platform gave an unusable socket address ({:?})",
            control.ws_url
        )
    })?;
    url.set_path(wire::SOCKET_PATH);
    url.query_pairs_mut()
        .append_pair("confID", conference)
        .append_pair("tmpToken", ws_token.expose());
    let config = WebSocketConfig::default()
        .read_buffer_size(8 * 1024)
        .write_buffer_size(0)
        .max_message_size(Some(MAX_STREAM_EVENT))
        .max_frame_size(Some(MAX_STREAM_EVENT));
    let connecting = tokio_tungstenite::connect_async_with_config(url.as_str(), Some(config), true);
    let (socket, _) = tokio::time::timeout(context.connect_timeout, connecting)
        .await
        .map_err(|_| "the meeting socket did not open in time".to_owned())?
        .map_err(|err| format!("cannot open the meeting socket: {}", describe(&err)))?;
    Ok((socket, control.token))
}

/// The reason to report when no socket could be had: the meeting not
/// running yet reads as such.
fn not_running(conference: &str, err: &CallError) -> String {
    match err {
        CallError::Refused { .. } | CallError::Expired { .. } => format!(
            "no control token for meeting {conference}: {err} (a meeting that has not started yet has none; usher keeps trying)"
        ),
        _ => format!("no control token for meeting {conference}: {err}"),
    }
}

/// Subscribes, then follows the socket until it ends.
async fn follow(
    context: &FeedContext,
    (mut socket, control_token): (Socket, Secret),
    sink: &mpsc::Sender<Box<FeedItem>>,
    cancel: &CancellationToken,
) -> End {
    let sequence = format!("{:020}", fastrand::u64(..));
    let subscribe = ClientFrame::subscribe(sequence, control_token.expose());
    let Ok(text) = serde_json::to_string(&subscribe) else {
        return End::Lost("cannot write the Subscribe frame".to_owned());
    };
    if let Err(err) = socket.send(Message::text(text)).await {
        return End::Lost(format!("cannot subscribe: {}", describe(&err)));
    }
    lock(&context.decoder).begin_snapshot();
    let mut subscribed = false;
    let subscribe_due = Instant::now() + SUBSCRIBE_BOUND;
    let mut heartbeat =
        tokio::time::interval_at(Instant::now() + context.heartbeat, context.heartbeat);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let silent_limit = context.heartbeat * inferred::SILENT_PERIODS;
    let mut last_heard = Instant::now();
    loop {
        let deadline = lock(&context.decoder).next_deadline();
        let message = tokio::select! {
            _ = cancel.cancelled() => {
                let _ = socket.close(None).await;
                return End::Stopped;
            }
            message = socket.next() => message,
            _ = heartbeat.tick() => {
                if last_heard.elapsed() > silent_limit {
                    return End::Lost(format!("the meeting socket was silent for {:?}", last_heard.elapsed()));
                }
                let beat = ClientFrame::heartbeat(unix_millis());
                let text = serde_json::to_string(&beat).unwrap_or_default();
                if let Err(err) = socket.send(Message::text(text)).await {
                    return End::Lost(format!("cannot send a heartbeat: {}", describe(&err)));
                }
                continue;
            }
            _ = tokio::time::sleep_until(subscribe_due), if !subscribed => {
                return End::Lost("the server did not answer Subscribe".to_owned());
            }
            _ = sleep_until(deadline), if deadline.is_some() => {
                let due = lock(&context.decoder).on_deadline();
                let events = match due {
                    Deadline::Events(events) => events,
                    Deadline::NeedsRealTime => real_time_roster(context).await,
                };
                if forward(sink, events).await.is_err() {
                    return End::Stopped;
                }
                continue;
            }
        };
        let text = match message {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Close(frame))) => {
                let why = frame
                    .map(|f| f.reason.to_string())
                    .filter(|r| !r.is_empty());
                return End::Lost(match (subscribed, why) {
                    (false, why) => format!(
                        "the server closed the meeting socket before answering Subscribe (a refused or reused wsToken does that){}",
                        why.map(|w| format!(": {w}")).unwrap_or_default()
                    ),
                    (true, Some(why)) => format!("the server closed the meeting socket: {why}"),
                    (true, None) => "the server closed the meeting socket".to_owned(),
                });
            }
            Some(Ok(_)) => {
                last_heard = Instant::now();
                continue;
            }
            Some(Err(err)) => {
                return End::Lost(format!("the meeting socket failed: {}", describe(&err)));
            }
            None => return End::Lost("the meeting socket closed".to_owned()),
        };
        last_heard = Instant::now();
        let decoded = lock(&context.decoder).decode(text.as_str(), unix_now());
        let events = match decoded {
            Ok(Frame::Subscribed(Ok(()))) => {
                subscribed = true;
                tracing::info!("meeting socket subscribed");
                if sink.send(Box::new(FeedItem::Connected)).await.is_err() {
                    return End::Stopped;
                }
                continue;
            }
            Ok(Frame::Subscribed(Err(why))) => {
                return End::Lost(format!("the server refused Subscribe: {why}"));
            }
            Ok(Frame::HeartBeat) => continue,
            Ok(Frame::Events(events)) => events,
            Err(err) => {
                tracing::warn!(frame = %err.frame, error = %err.reason, "skipping a malformed push");
                continue;
            }
        };
        let ended = events
            .iter()
            .any(|e| matches!(e, Event::Disconnected { .. }));
        if forward(sink, events).await.is_err() {
            return End::Stopped;
        }
        if ended {
            let _ = socket.close(None).await;
            return End::Lost("the meeting ended".to_owned());
        }
    }
}

/// The roster from `realTimeInfo`, when the socket's full push did not come.
async fn real_time_roster(context: &FeedContext) -> Vec<Event> {
    let conference = context.control.conference();
    let query = [("conferenceID", conference)];
    let rest = context.control.access().rest();
    let info = context
        .control
        .with_token(|token| async move {
            rest.call_json::<RealTimeInfo>(
                "realTimeInfo",
                reqwest::Method::GET,
                wire::REAL_TIME_INFO_PATH,
                &query,
                Auth {
                    control: Some(&token),
                    ..Auth::default()
                },
                None,
            )
            .await
        })
        .await;
    match info {
        Ok(info) => {
            tracing::info!("the full participant push did not come; resynced over REST");
            lock(&context.decoder).take_real_time(info, unix_now())
        }
        Err(err) => {
            tracing::warn!(error = %err, "the full participant push did not come and realTimeInfo failed; waiting for the next push");
            Vec::new()
        }
    }
}

async fn forward(sink: &mpsc::Sender<Box<FeedItem>>, events: Vec<Event>) -> Result<(), ()> {
    for event in events {
        sink.send(Box::new(FeedItem::Event(event)))
            .await
            .map_err(drop)?;
    }
    Ok(())
}

async fn sleep_until(due: Option<Instant>) {
    match due {
        Some(due) => tokio::time::sleep_until(due).await,
        None => std::future::pending().await,
    }
}

/// A socket error without its URL (the URL carries the wsToken).
fn describe(err: &tokio_tungstenite::tungstenite::Error) -> String {
    use tokio_tungstenite::tungstenite::Error;
    match err {
        Error::Http(response) => format!("HTTP {}", response.status()),
        Error::Url(_) => "the socket address is not usable".to_owned(),
        other => other.to_string(),
    }
}

fn lock(decoder: &Mutex<Decoder>) -> std::sync::MutexGuard<'_, Decoder> {
    decoder
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn unix_millis() -> u128 {
    (unix_now() * 1000.0) as u128
}
