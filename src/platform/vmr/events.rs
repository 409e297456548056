//! One connection to a room's event stream, kept behind a small interface.
//!
//! An [`EventStream`] is exactly one connection attempt: it never retries on
//! its own. The feed in [`super::feed`] owns reconnecting, with a fresh token
//! when needed. The body is read chunk by chunk and decoded by [`super::sse`],
//! which caps lines and events and refuses bytes that are not UTF-8. A stream
//! that cannot be decoded is logged and ended ([`StreamEnd::Undecodable`]):
//! the feed reconnects and the room resyncs from the platform's snapshot.
//!
//! This replaced `reqwest-eventsource`, whose UTF-8 layer took any invalid
//! byte for the start of a character still to come: it kept that byte and
//! everything after it, forever, yielding nothing and raising no error (a
//! stream wedged by one byte), and re-read its whole buffer on every chunk
//! (a long line cost quadratic time).

use std::collections::VecDeque;

use reqwest::StatusCode;
use reqwest::header::{ACCEPT, CONTENT_TYPE};

use super::sse::{Frame, SseDecoder, SseError};
use crate::platform::http::describe_transport;

const EVENT_STREAM: &str = "text/event-stream";

/// One item from the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamItem {
    /// The server accepted the subscription.
    Opened,
    /// One server-sent frame.
    Frame {
        /// The `event:` name.
        name: String,
        /// The `data:` text.
        data: String,
    },
}

/// Why the stream ended.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamEnd {
    /// HTTP 403: the token is invalid or expired.
    #[error("the token was refused (HTTP 403)")]
    Forbidden,
    /// Another non-200 status.
    #[error("HTTP {0}")]
    Status(u16),
    /// The connection failed or broke.
    #[error("{0}")]
    Transport(String),
    /// The server closed the stream.
    #[error("the server closed the stream")]
    Closed,
    /// The server sent something that is not an event stream.
    #[error("not an event stream: {0}")]
    Protocol(String),
    /// The stream cannot be decoded (not UTF-8, or past a cap): it was
    /// dropped, with what was not read.
    #[error("the event stream cannot be decoded: {0}")]
    Undecodable(SseError),
}

/// One connection attempt to `GET …/events`.
pub struct EventStream {
    state: State,
    /// Frames decoded and not yet handed out.
    decoded: VecDeque<Frame>,
    decoder: SseDecoder,
    /// The room's span, for what this stream logs.
    span: tracing::Span,
}

enum State {
    /// Not connected yet.
    Ready(reqwest::RequestBuilder),
    /// Reading the body.
    Open(reqwest::Response),
    /// Ends with this once the frames decoded before it are handed out.
    Ending(StreamEnd),
    /// Over.
    Finished,
}

impl EventStream {
    /// Connects with this request on the first call to [`EventStream::next`].
    pub(crate) fn open(request: reqwest::RequestBuilder, span: tracing::Span) -> Self {
        EventStream {
            state: State::Ready(request.header(ACCEPT, EVENT_STREAM)),
            decoded: VecDeque::new(),
            decoder: SseDecoder::new(),
            span,
        }
    }

    /// The next item, or why the stream ended. After an `Err` the stream is
    /// finished and every later call returns `Err(StreamEnd::Closed)`.
    pub async fn next(&mut self) -> Result<StreamItem, StreamEnd> {
        loop {
            if let Some(frame) = self.decoded.pop_front() {
                return Ok(StreamItem::Frame {
                    name: frame.name,
                    data: frame.data,
                });
            }
            // Taken out while awaiting: if this call is dropped midway, the
            // stream is over, which is what a dropped call means.
            match std::mem::replace(&mut self.state, State::Finished) {
                State::Ready(request) => {
                    self.state = State::Open(connect(request).await?);
                    return Ok(StreamItem::Opened);
                }
                State::Open(mut response) => {
                    let chunk = response
                        .chunk()
                        .await
                        .map_err(|err| StreamEnd::Transport(describe_transport(err)))?
                        .ok_or(StreamEnd::Closed)?;
                    self.state = match self.decoder.decode(&chunk, &mut self.decoded) {
                        Ok(()) => State::Open(response),
                        Err(err) => {
                            tracing::warn!(parent: &self.span, error = %err, "the event stream cannot be decoded; dropping it to resync");
                            State::Ending(StreamEnd::Undecodable(err))
                        }
                    };
                }
                State::Ending(end) => return Err(end),
                State::Finished => return Err(StreamEnd::Closed),
            }
        }
    }
}

/// Sends the request and checks that an event stream is coming.
async fn connect(request: reqwest::RequestBuilder) -> Result<reqwest::Response, StreamEnd> {
    let response = request
        .send()
        .await
        .map_err(|err| StreamEnd::Transport(describe_transport(err)))?;
    match response.status() {
        StatusCode::OK => {}
        StatusCode::FORBIDDEN => return Err(StreamEnd::Forbidden),
        status => return Err(StreamEnd::Status(status.as_u16())),
    }
    let content_type = response.headers().get(CONTENT_TYPE);
    let is_event_stream = content_type
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case(EVENT_STREAM));
    if !is_event_stream {
        return Err(StreamEnd::Protocol(format!(
            "content type {content_type:?}"
        )));
    }
    Ok(response)
}
