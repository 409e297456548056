//! The event feed of one room: a supervised, self-healing event stream.
//!
//! [`run_feed`] keeps a room's event stream connected for as long as it is
//! asked to and forwards what arrives as neutral [`FeedItem`]s:
//!
//! - On 403 it renews the session (a new token) and reconnects at once. A
//!   refusal before the stream has opened again waits the backoff, so a node
//!   that refuses even fresh tokens is not flooded with new sessions.
//! - On 5xx, transport errors and closed streams it reconnects after an
//!   exponential backoff with jitter and a cap, reset by every successful open.
//! - Every (re)connect is announced with [`FeedItem::Connected`]. The server
//!   then lists the room inside a `participant_sync_begin` …
//!   `participant_sync_end` bracket, which the feed collects and reports as
//!   one [`Event::Roster`]. The bracket does not carry the room's flags, so
//!   right after it the feed asks for `service_status` and reports it. A
//!   bracket that does not close within [`FeedOptions::sync_bound`] is
//!   abandoned: the stream is reset and the next subscribe lists the room
//!   again.
//! - usher's own participants (its sessions, current and past) are left out
//!   of everything reported, chat included.
//! - A frame whose data cannot be read is logged with its event name and
//!   skipped; the stream goes on. The [`FeedMeter`] notes since when nothing
//!   decodable came, for health. `refresh_token` triggers a token refresh.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::codec::{self, Frame};
use super::events::{StreamEnd, StreamItem};
use super::session::Session;
use crate::model::{Event, FlagsUpdate, Participant, Secret};
use crate::platform::{
    CappedBackoff, FeedItem, FeedOptions, FrameError, StreamCodec, StreamHealth, WireFrame,
};

/// Whether the feed can read what the server sends: since when it could
/// not, for health.
#[derive(Debug, Default)]
pub struct FeedMeter(Mutex<StreamHealth>);

impl FeedMeter {
    fn decoded(&self) {
        self.lock().undecodable_since = None;
    }

    fn undecodable(&self) {
        let mut health = self.lock();
        health.undecodable += 1;
        health.undecodable_since.get_or_insert_with(Instant::now);
    }

    /// What the feed has read so far.
    pub fn health(&self) -> StreamHealth {
        *self.lock()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, StreamHealth> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// How many of our own session uuids are remembered (sessions are renewed).
const OWN_UUIDS_KEPT: usize = 16;

/// Keeps the room's event stream connected until `cancel` fires or `sink` is
/// closed, forwarding everything to `sink`.
pub async fn run_feed(
    session: Arc<Session>,
    sink: mpsc::Sender<Box<FeedItem>>,
    cancel: CancellationToken,
    options: FeedOptions,
) {
    let backoff_builder = CappedBackoff::new(options.min_backoff, options.max_backoff);
    let mut backoff = backoff_builder.start();
    // Set by a renewal after a 403, cleared when a stream opens.
    let mut renewed_since_open = false;
    let mut stream_state = StreamState {
        sync_bound: options.sync_bound,
        ..StreamState::default()
    };
    let meter = session.feed_meter();
    loop {
        let current = session.current();
        let mut stream = session.client().events(&current.token);
        stream_state.bracket = None;
        let end = loop {
            let bracket_due = stream_state.bracket.as_ref().map(|b| b.due);
            let item = tokio::select! {
                _ = cancel.cancelled() => return,
                item = stream.next() => item,
                _ = sleep_until(bracket_due), if bracket_due.is_some() => {
                    tracing::warn!(bound = ?options.sync_bound, "the server opened a participant listing and never closed it; resetting the stream");
                    break StreamEnd::Protocol("participant_sync_begin without participant_sync_end".to_owned());
                }
            };
            let frame = match item {
                Ok(StreamItem::Opened) => {
                    backoff = backoff_builder.start();
                    renewed_since_open = false;
                    stream_state.own.add(&current.participant_uuid);
                    tracing::info!("event stream connected");
                    if sink.send(Box::new(FeedItem::Connected)).await.is_err() {
                        return;
                    }
                    continue;
                }
                Ok(StreamItem::Frame { name, data }) => match codec::decode(&name, &data) {
                    Ok(frame) => {
                        meter.decoded();
                        frame
                    }
                    Err(err) => {
                        meter.undecodable();
                        tracing::warn!(event = %name, error = %err.reason, "skipping a malformed event");
                        continue;
                    }
                },
                Err(end) => {
                    if matches!(end, StreamEnd::Undecodable(_)) {
                        meter.undecodable();
                    }
                    break end;
                }
            };
            if frame == Frame::RefreshToken {
                session.request_refresh();
            }
            let Some(event) = stream_state.take(frame) else {
                continue;
            };
            let roster = matches!(event, Event::Roster(_));
            if sink.send(Box::new(FeedItem::Event(event))).await.is_err() {
                return;
            }
            if roster {
                if let Some(flags) = Box::pin(room_flags(&session, &current.token)).await {
                    if sink.send(Box::new(FeedItem::Event(flags))).await.is_err() {
                        return;
                    }
                }
            }
        };
        let retry_in = match end {
            StreamEnd::Forbidden => {
                tracing::info!("event stream refused the token; starting a new session");
                match Box::pin(session.renew(current.generation)).await {
                    Ok(()) if !renewed_since_open => {
                        renewed_since_open = true;
                        Duration::ZERO
                    }
                    Ok(()) => {
                        let delay = backoff.next().unwrap_or(options.max_backoff);
                        tracing::warn!(retry_in = ?delay, "the event stream refused a renewed session too; backing off");
                        delay
                    }
                    Err(err) => {
                        let delay = backoff.next().unwrap_or(options.max_backoff);
                        tracing::warn!(error = %err, retry_in = ?delay, "could not start a new session");
                        delay
                    }
                }
            }
            _ => backoff.next().unwrap_or(options.max_backoff),
        };
        tracing::info!(reason = %end, retry_in = ?retry_in, "event stream down");
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

async fn sleep_until(due: Option<Instant>) {
    match due {
        Some(due) => tokio::time::sleep_until(due).await,
        None => std::future::pending().await,
    }
}

/// What the feed keeps between frames: the listing of an open sync bracket
/// and who usher itself is.
#[derive(Default)]
struct StreamState {
    bracket: Option<Bracket>,
    /// How long a bracket may stay open.
    sync_bound: Duration,
    own: OwnParticipants,
    unknown_events: HashSet<String>,
}

/// A sync bracket being collected.
struct Bracket {
    listing: Vec<Participant>,
    /// The uuids in `listing`, so that a listing of hundreds is collected
    /// in linear time: only a uuid listed twice (or deleted) is searched for.
    listed: HashSet<String>,
    due: Instant,
}

impl Bracket {
    /// Lists `participant`, replacing an earlier entry for the same uuid.
    fn list(&mut self, participant: Participant) {
        if !self.listed.insert(participant.uuid.clone()) {
            self.listing
                .retain(|listed| listed.uuid != participant.uuid);
        }
        self.listing.push(participant);
    }

    /// Takes `uuid` off the listing.
    fn unlist(&mut self, uuid: &str) {
        if self.listed.remove(uuid) {
            self.listing.retain(|listed| listed.uuid != uuid);
        }
    }
}

impl StreamState {
    /// Takes one frame in; returns the event to report, if any.
    fn take(&mut self, frame: Frame) -> Option<Event> {
        match frame {
            Frame::SyncBegin => {
                self.bracket = Some(Bracket {
                    listing: Vec::new(),
                    listed: HashSet::new(),
                    due: Instant::now() + self.sync_bound,
                });
                None
            }
            Frame::SyncEnd => match self.bracket.take() {
                Some(bracket) => Some(Event::Roster(bracket.listing)),
                None => {
                    tracing::debug!("participant_sync_end without a listing; ignored");
                    None
                }
            },
            Frame::Event(event) => self.event(event),
            Frame::RefreshToken => None,
            Frame::Bye => {
                tracing::info!("the server is closing the event stream");
                None
            }
            Frame::Ignored(_) => None,
            Frame::Unknown(name) => {
                if self.unknown_events.insert(name.clone()) {
                    tracing::info!(event = %name, "ignoring an event this version does not know");
                } else {
                    tracing::debug!(event = %name, "ignoring an unknown event");
                }
                None
            }
        }
    }

    fn event(&mut self, event: Event) -> Option<Event> {
        match event {
            Event::Participant(p) if self.own.contains(&p.uuid) => None,
            Event::Message(ref m) if self.own.contains(&m.uuid) => None,
            Event::Participant(p) => match &mut self.bracket {
                Some(bracket) => {
                    bracket.list(p);
                    None
                }
                None => Some(Event::Participant(p)),
            },
            Event::ParticipantLeft { uuid } => match &mut self.bracket {
                Some(bracket) => {
                    bracket.unlist(&uuid);
                    None
                }
                None => Some(Event::ParticipantLeft { uuid }),
            },
            other => Some(other),
        }
    }
}

/// The uuids of usher's own sessions in the room, newest last.
#[derive(Default)]
struct OwnParticipants(VecDeque<String>);

impl OwnParticipants {
    fn add(&mut self, uuid: &str) {
        if uuid.is_empty() || self.contains(uuid) {
            return;
        }
        if self.0.len() == OWN_UUIDS_KEPT {
            self.0.pop_front();
        }
        self.0.push_back(uuid.to_owned());
    }

    fn contains(&self, uuid: &str) -> bool {
        self.0.iter().any(|own| own == uuid)
    }
}

/// The feed's decoding without its network (see [`StreamCodec`]).
#[derive(Default)]
pub struct VmrCodec {
    decoding: StreamState,
    encoder: codec::Encoder,
}

impl StreamCodec for VmrCodec {
    fn decode(&mut self, frame: &WireFrame) -> Result<Option<Event>, FrameError> {
        let decoded = codec::decode(&frame.name, &frame.data).map_err(|err| FrameError {
            frame: err.event,
            reason: err.reason,
        })?;
        Ok(self.decoding.take(decoded))
    }

    fn encode(&mut self, event: &Event) -> Vec<WireFrame> {
        self.encoder
            .encode(event)
            .into_iter()
            .map(|(name, data)| WireFrame {
                name: name.to_owned(),
                data,
            })
            .collect()
    }
}

/// The room's flags, asked for after a resync: the sync bracket lists the
/// participants but not whether the room was locked or guests muted while
/// the stream was down. `None` if the platform cannot say now (the next
/// `service_update` will).
async fn room_flags(session: &Session, token: &Secret) -> Option<Event> {
    match session.client().service_status(token).await {
        Ok(status) => Some(Event::RoomUpdate(FlagsUpdate {
            locked: Some(status.locked),
            guests_muted: Some(status.guests_muted),
            started: None,
        })),
        Err(err) => {
            tracing::warn!(error = %err, "could not read the room's flags after a resync");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(name: &str, data: &str) -> WireFrame {
        WireFrame {
            name: name.to_owned(),
            data: data.to_owned(),
        }
    }

    fn listed(uuid: &str, name: &str) -> WireFrame {
        frame(
            "participant_create",
            &format!(r#"{{"uuid":"{uuid}","display_name":"{name}"}}"#),
        )
    }

    #[test]
    fn a_bracket_keeps_the_later_entry_and_drops_the_deleted() {
        let mut codec = VmrCodec::default();
        let frames = [
            frame("participant_sync_begin", "null"),
            listed("a", "Ann"),
            listed("b", "Ben"),
            listed("c", "Cat"),
            listed("a", "Ann again"),
            frame("participant_delete", r#"{"uuid":"b"}"#),
            frame("participant_delete", r#"{"uuid":"nobody"}"#),
        ];
        for wire in &frames {
            assert_eq!(codec.decode(wire).unwrap(), None, "{}", wire.name);
        }
        let Some(Event::Roster(roster)) = codec
            .decode(&frame("participant_sync_end", "null"))
            .unwrap()
        else {
            panic!("the bracket closes with a roster");
        };
        let names: Vec<&str> = roster.iter().map(|p| p.display_name.as_str()).collect();
        assert_eq!(names, ["Cat", "Ann again"]);
    }
}
