//! One connection to a room's event stream, kept behind a small interface.
//!
//! This is the only module that knows about `reqwest-eventsource`. That crate
//! freezes the request (and so the token) when the stream is created and ends
//! the stream on any non-200 status, so an [`EventStream`] is exactly one
//! connection attempt: it never retries on its own. The feed in
//! [`super::feed`] owns reconnecting, with a fresh token when needed.

use futures_util::StreamExt;
use reqwest_eventsource::{Error as SourceError, Event as SourceEvent, EventSource, retry};

use super::error::describe_transport;

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
}

/// One connection attempt to `GET …/events`.
pub struct EventStream {
    source: Option<EventSource>,
}

impl EventStream {
    /// Starts connecting with this request.
    pub(crate) fn open(request: reqwest::RequestBuilder) -> Self {
        let source = EventSource::new(request).map(|mut source| {
            source.set_retry_policy(Box::new(retry::Never));
            source
        });
        EventStream {
            source: source.ok(),
        }
    }

    /// The next item, or why the stream ended. After an `Err` the stream is
    /// finished and every later call returns `Err(StreamEnd::Closed)`.
    pub async fn next(&mut self) -> Result<StreamItem, StreamEnd> {
        let Some(source) = self.source.as_mut() else {
            return Err(StreamEnd::Closed);
        };
        let end = match source.next().await {
            Some(Ok(SourceEvent::Open)) => return Ok(StreamItem::Opened),
            Some(Ok(SourceEvent::Message(message))) => {
                return Ok(StreamItem::Frame {
                    name: message.event,
                    data: message.data,
                });
            }
            Some(Err(err)) => classify(err),
            None => StreamEnd::Closed,
        };
        if let Some(mut source) = self.source.take() {
            source.close();
        }
        Err(end)
    }
}

fn classify(err: SourceError) -> StreamEnd {
    match err {
        SourceError::InvalidStatusCode(status, _) if status.as_u16() == 403 => StreamEnd::Forbidden,
        SourceError::InvalidStatusCode(status, _) => StreamEnd::Status(status.as_u16()),
        SourceError::Transport(err) => StreamEnd::Transport(describe_transport(err)),
        SourceError::StreamEnded => StreamEnd::Closed,
        SourceError::InvalidContentType(value, _) => {
            StreamEnd::Protocol(format!("content type {value:?}"))
        }
        SourceError::Utf8(err) => StreamEnd::Protocol(err.to_string()),
        SourceError::Parser(err) => StreamEnd::Protocol(err.to_string()),
        SourceError::InvalidLastEventId(_) => StreamEnd::Protocol("bad Last-Event-ID".to_owned()),
    }
}
