//! The event feed of one room: a supervised, self-healing event stream.
//!
//! [`run_feed`] keeps a room's event stream connected for as long as it is
//! asked to and forwards what arrives as [`FeedItem`]s:
//!
//! - On 403 it renews the session (a new token) and reconnects at once. A
//!   refusal before the stream has opened again waits the backoff, so a node
//!   that refuses even fresh tokens is not flooded with new sessions.
//! - On 5xx, transport errors and closed streams it reconnects after an
//!   exponential backoff with jitter and a cap, reset by every successful open.
//! - Every (re)connect is announced with [`FeedItem::Connected`]; the server
//!   then sends its sync bracket, from which the room state resynchronizes.
//!   The bracket does not carry the room's flags, so right after it the feed
//!   asks for `service_status` and reports it as a `service_update`.
//! - A frame whose data cannot be read is logged with its event name and
//!   skipped; the stream goes on. `refresh_token` triggers a token refresh.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::events::{StreamEnd, StreamItem};
use super::session::Session;
use crate::model::{Event, Secret, ServiceFlags};

/// What the feed reports. The channel carries items boxed: a channel
/// allocates room for 32 items at once, and a daemon watching thousands of
/// mostly quiet rooms would otherwise hold kilobytes per room for nothing.
#[derive(Debug, Clone, PartialEq)]
#[allow(
    clippy::large_enum_variant,
    reason = "items travel boxed, so the channel holds only pointers"
)]
pub enum FeedItem {
    /// The stream is connected; a sync bracket follows. `own_uuid` is usher's
    /// own participant in the current session.
    Connected {
        /// usher's participant uuid.
        own_uuid: String,
    },
    /// An event.
    Event(Event),
    /// The stream is down and will be retried.
    Disconnected {
        /// Why it went down.
        reason: String,
        /// When the next attempt is made.
        retry_in: Duration,
    },
}

/// How the feed paces its reconnects.
#[derive(Debug, Clone, Copy)]
pub struct FeedOptions {
    /// The first delay after a failure.
    pub min_backoff: Duration,
    /// The longest delay between attempts.
    pub max_backoff: Duration,
}

impl Default for FeedOptions {
    fn default() -> Self {
        FeedOptions {
            min_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(30),
        }
    }
}

/// Keeps the room's event stream connected until `cancel` fires or `sink` is
/// closed, forwarding everything to `sink`.
pub async fn run_feed(
    session: Arc<Session>,
    sink: mpsc::Sender<Box<FeedItem>>,
    cancel: CancellationToken,
    options: FeedOptions,
) {
    let room = session.client().alias().to_owned();
    let backoff_builder = ExponentialBuilder::new()
        .with_min_delay(options.min_backoff)
        .with_max_delay(options.max_backoff)
        .with_jitter()
        .without_max_times();
    let mut backoff = backoff_builder.build();
    // Set by a renewal after a 403, cleared when a stream opens.
    let mut renewed_since_open = false;
    let mut unknown_events = HashSet::new();
    loop {
        let current = session.current();
        let mut stream = session.client().events(&current.token);
        let mut resyncing = false;
        let end = loop {
            let item = tokio::select! {
                _ = cancel.cancelled() => return,
                item = stream.next() => item,
            };
            let forward = match item {
                Ok(StreamItem::Opened) => {
                    backoff = backoff_builder.build();
                    renewed_since_open = false;
                    resyncing = true;
                    tracing::info!(room = %room, "event stream connected");
                    FeedItem::Connected {
                        own_uuid: current.participant_uuid.clone(),
                    }
                }
                Ok(StreamItem::Frame { name, data }) => {
                    let event = match Event::parse(&name, &data) {
                        Ok(event) => event,
                        Err(err) => {
                            tracing::warn!(room = %room, event = %name, error = %err.reason, "skipping a malformed event");
                            continue;
                        }
                    };
                    if resyncing && matches!(event, Event::ParticipantSyncEnd) {
                        // The event is moved out before any await, so the
                        // task that lives as long as the room does not keep
                        // room for one.
                        resyncing = false;
                        if sink.send(Box::new(FeedItem::Event(event))).await.is_err() {
                            return;
                        }
                        match Box::pin(room_flags(&session, &current.token)).await {
                            Some(flags) => FeedItem::Event(flags),
                            None => continue,
                        }
                    } else {
                        note_event(&room, &session, &event, &mut unknown_events);
                        FeedItem::Event(event)
                    }
                }
                Err(end) => break end,
            };
            if sink.send(Box::new(forward)).await.is_err() {
                return;
            }
        };
        let retry_in = match end {
            StreamEnd::Forbidden => {
                tracing::info!(room = %room, "event stream refused the token; starting a new session");
                match Box::pin(session.renew(current.generation)).await {
                    Ok(()) if !renewed_since_open => {
                        renewed_since_open = true;
                        Duration::ZERO
                    }
                    Ok(()) => {
                        let delay = backoff.next().unwrap_or(options.max_backoff);
                        tracing::warn!(room = %room, retry_in = ?delay, "the event stream refused a renewed session too; backing off");
                        delay
                    }
                    Err(err) => {
                        let delay = backoff.next().unwrap_or(options.max_backoff);
                        tracing::warn!(room = %room, error = %err, retry_in = ?delay, "could not start a new session");
                        delay
                    }
                }
            }
            _ => backoff.next().unwrap_or(options.max_backoff),
        };
        tracing::info!(room = %room, reason = %end, retry_in = ?retry_in, "event stream down");
        let down = FeedItem::Disconnected {
            reason: end.to_string(),
            retry_in,
        };
        if sink.send(Box::new(down)).await.is_err() {
            return;
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(retry_in) => {}
        }
    }
}

/// The room's flags, asked for after a resync: the sync bracket lists the
/// participants but not whether the room was locked or guests muted while
/// the stream was down. Reported as a `service_update`; `None` if the
/// platform cannot say now (the next `service_update` will).
async fn room_flags(session: &Session, token: &Secret) -> Option<Event> {
    match session.client().service_status(token).await {
        Ok(status) => Some(Event::ServiceUpdate(ServiceFlags {
            locked: Some(status.locked),
            guests_muted: Some(status.guests_muted),
            started: None,
        })),
        Err(err) => {
            tracing::warn!(room = %session.client().alias(), error = %err, "could not read the room's flags after a resync");
            None
        }
    }
}

/// Side effects of particular events on the feed itself.
fn note_event(room: &str, session: &Session, event: &Event, unknown: &mut HashSet<String>) {
    match event {
        Event::RefreshToken => session.request_refresh(),
        Event::Unknown { name, .. } => {
            if unknown.insert(name.clone()) {
                tracing::info!(room = %room, event = %name, "ignoring an event this version does not know");
            } else {
                tracing::debug!(room = %room, event = %name, "ignoring an unknown event");
            }
        }
        _ => {}
    }
}
