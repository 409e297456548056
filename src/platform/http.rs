//! HTTP connection pooling shared by every platform adapter.
//!
//! REST calls and long-lived streams use separate clients. reqwest puts
//! every request to one host onto one HTTP/2 connection, and long-lived
//! streams stall it past about a hundred rooms (the server's limit on
//! concurrent streams). So streams either go over HTTP/1, one connection per
//! room, or over HTTP/2 spread across several clients, each with its own
//! connection carrying at most [`STREAMS_PER_CONNECTION`].

use std::error::Error as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Deserializer};
use url::Url;

use crate::limits::MAX_RETRY_AFTER;
use crate::model::Span;

/// How a room's long-lived stream reaches the platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StreamProtocol {
    /// One HTTP/1.1 connection per room. Works with every server; costs some
    /// 40 KB per room in connection buffers.
    #[default]
    Http1,
    /// Streams multiplexed over HTTP/2, at most [`STREAMS_PER_CONNECTION`]
    /// to a connection so none hits the server's concurrent-stream limit.
    /// A few KB per room. The server must speak HTTP/2 (cleartext `http://`
    /// servers by prior knowledge).
    Http2,
}

impl std::fmt::Display for StreamProtocol {
    /// As the config spells it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            StreamProtocol::Http1 => "http1",
            StreamProtocol::Http2 => "http2",
        })
    }
}

/// Streams sharing one HTTP/2 connection, kept under the usual server limit
/// of 100 concurrent streams.
pub const STREAMS_PER_CONNECTION: usize = 80;

/// How to talk to a platform.
#[derive(Debug, Clone, Copy)]
pub struct HttpOptions {
    /// Longest wait for a TCP/TLS connection.
    pub connect_timeout: Duration,
    /// Longest wait for a whole REST call.
    pub request_timeout: Duration,
    /// A stream silent for this long is taken to be dead and reconnected.
    pub stream_idle_timeout: Duration,
    /// How streams travel.
    pub stream_protocol: StreamProtocol,
    /// How many rooms will stream, to size the HTTP/2 connections.
    pub rooms: usize,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(10),
            stream_idle_timeout: Duration::from_secs(90),
            stream_protocol: StreamProtocol::Http1,
            rooms: 1,
        }
    }
}

/// Idle REST connections kept per host. Calls are short, so a few serve
/// thousands of rooms; each idle HTTP/1 connection holds some 25 KB.
const REST_IDLE_CONNECTIONS: usize = 16;

/// The HTTP clients shared by every room of one platform account.
#[derive(Debug, Clone)]
pub struct HttpClients {
    rest: reqwest::Client,
    /// Clients for streams: one over HTTP/1, or one per HTTP/2
    /// connection's worth of rooms.
    streams: Arc<[reqwest::Client]>,
    next_stream: Arc<AtomicUsize>,
}

impl HttpClients {
    /// Builds the REST client and the clients for streams.
    pub fn new(options: HttpOptions) -> Result<Self, reqwest::Error> {
        let user_agent = concat!("usher/", env!("CARGO_PKG_VERSION"));
        let rest = reqwest::Client::builder()
            .user_agent(user_agent)
            .connect_timeout(options.connect_timeout)
            .timeout(options.request_timeout)
            .pool_max_idle_per_host(REST_IDLE_CONNECTIONS)
            .pool_idle_timeout(Duration::from_secs(30))
            .build()?;
        let stream_client = || {
            let builder = reqwest::Client::builder()
                .user_agent(user_agent)
                .connect_timeout(options.connect_timeout)
                .read_timeout(options.stream_idle_timeout)
                .pool_idle_timeout(Duration::from_secs(30));
            match options.stream_protocol {
                StreamProtocol::Http1 => builder.http1_only(),
                StreamProtocol::Http2 => builder
                    .http2_prior_knowledge()
                    .http2_keep_alive_interval(Duration::from_secs(30))
                    .http2_keep_alive_timeout(Duration::from_secs(10)),
            }
            .build()
        };
        let shards = match options.stream_protocol {
            StreamProtocol::Http1 => 1,
            StreamProtocol::Http2 => options.rooms.div_ceil(STREAMS_PER_CONNECTION).max(1),
        };
        let streams = (0..shards)
            .map(|_| stream_client())
            .collect::<Result<Vec<_>, _>>()?;
        Ok(HttpClients {
            rest,
            streams: streams.into(),
            next_stream: Arc::new(AtomicUsize::new(0)),
        })
    }

    /// The client the next room's stream uses, in turn.
    pub fn stream_client(&self) -> reqwest::Client {
        let next = self.next_stream.fetch_add(1, Ordering::Relaxed);
        self.streams[next % self.streams.len()].clone()
    }

    /// The client for REST calls.
    pub fn rest(&self) -> &reqwest::Client {
        &self.rest
    }
}

/// Network timeouts, as the config sets them for a platform.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Timeouts {
    /// Connecting to the platform.
    #[serde(default = "default_connect_timeout")]
    pub connect: Span,
    /// One REST call.
    #[serde(default = "default_request_timeout")]
    pub request: Span,
    /// A stream silent this long is reconnected.
    #[serde(default = "default_stream_idle")]
    pub stream_idle: Span,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: default_connect_timeout(),
            request: default_request_timeout(),
            stream_idle: default_stream_idle(),
        }
    }
}

fn default_connect_timeout() -> Span {
    Span::secs(5)
}

fn default_request_timeout() -> Span {
    Span::secs(10)
}

fn default_stream_idle() -> Span {
    Span::secs(90)
}

/// An `http://` or `https://` URL from the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl(pub Url);

impl<'de> Deserialize<'de> for HttpUrl {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        let url = Url::parse(&text).map_err(|err| {
            serde::de::Error::custom(format!(
                "`{text}` is not a URL ({err}); write it like https://node.example.com"
            ))
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(serde::de::Error::custom(format!(
                "`{text}` must be an http:// or https:// URL"
            )));
        }
        Ok(HttpUrl(url))
    }
}

/// A reply body larger than its cap, or one that broke off.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// The body is larger than the cap.
    #[error("the reply is larger than {cap} bytes")]
    TooLarge {
        /// The cap.
        cap: usize,
    },
    /// The body could not be read to its end (the error carries no URL).
    #[error("the reply broke off: {0}")]
    Transport(reqwest::Error),
}

/// Reads a reply body chunk by chunk, giving up as soon as it passes `cap`
/// bytes: a `Content-Length` is not trusted, and nothing beyond the cap is
/// ever buffered.
pub async fn read_body_capped(
    mut response: reqwest::Response,
    cap: usize,
) -> Result<bytes::Bytes, BodyError> {
    if response
        .content_length()
        .is_some_and(|length| length > cap as u64)
    {
        return Err(BodyError::TooLarge { cap });
    }
    let mut body = bytes::BytesMut::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|err| BodyError::Transport(err.without_url()))?
    {
        if body.len() + chunk.len() > cap {
            return Err(BodyError::TooLarge { cap });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// The wait a reply's `Retry-After` header asks for, if it has a usable one.
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    parse_retry_after(value, SystemTime::now())
}

/// The wait a `Retry-After` value asks for: delay-seconds or an HTTP date
/// (a date in the past is no wait), capped at [`MAX_RETRY_AFTER`]. `None`
/// when it is neither.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    let delay = match value.parse::<u64>() {
        Ok(seconds) => Duration::from_secs(seconds),
        Err(_) => httpdate::parse_http_date(value)
            .ok()?
            .duration_since(now)
            .unwrap_or(Duration::ZERO),
    };
    Some(delay.min(MAX_RETRY_AFTER))
}

/// Describes a reqwest error and its causes, with the URL removed.
pub fn describe_transport(err: reqwest::Error) -> String {
    let err = err.without_url();
    let mut text = if err.is_timeout() {
        "timed out".to_owned()
    } else if err.is_connect() {
        "cannot connect".to_owned()
    } else {
        err.to_string()
    };
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_dates_and_is_capped() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_784_000_000);
        let secs = |s| Some(Duration::from_secs(s));
        assert_eq!(parse_retry_after("2", now), secs(2));
        assert_eq!(parse_retry_after(" 0 ", now), secs(0));
        assert_eq!(parse_retry_after("86400", now), Some(MAX_RETRY_AFTER));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(3));
        assert_eq!(parse_retry_after(&later, now), secs(3));
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(30));
        assert_eq!(parse_retry_after(&earlier, now), secs(0));
        let next_year = httpdate::fmt_http_date(now + Duration::from_secs(31_536_000));
        assert_eq!(parse_retry_after(&next_year, now), Some(MAX_RETRY_AFTER));
        for junk in ["", "-1", "1.5", "soon", "Wed, 99 Foo 2026"] {
            assert_eq!(parse_retry_after(junk, now), None, "{junk:?}");
        }
    }
}
