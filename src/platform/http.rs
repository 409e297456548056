//! HTTP connection pooling shared by every platform adapter.
//!
//! REST calls and long-lived streams use separate clients. reqwest puts
//! every request to one host onto one HTTP/2 connection, and long-lived
//! streams stall it past about a hundred rooms (the server's limit on
//! concurrent streams). So streams either go over HTTP/1, one connection per
//! room, or over HTTP/2 spread across several clients, each with its own
//! connection carrying at most [`STREAMS_PER_CONNECTION`].

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use url::Url;

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
