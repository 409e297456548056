//! How to reach a seed-001 platform: `kind: vmr` in `platforms:` (or the
//! single `platform:` block of older configs).
//!
//! ```yaml
//! platforms:
//!   campus:
//!     kind: vmr
//!     url: https://node.example.com   # the meeting node (mcuHost)…
//!     # check_join: { api_server: https://api.example.com }   # …or look it up per room
//!     display_name: usher
//!     hide: true                      # hideme on new_session
//!     stream_protocol: http1          # or http2 for thousands of rooms
//! ```
//!
//! A room's `alias` is the conference alias; its `pin` the host PIN.

use serde::Deserialize;

use crate::platform::http::{HttpOptions, HttpUrl, StreamProtocol, Timeouts};

/// One seed-001 platform.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VmrConfig {
    /// The meeting node's URL.
    #[serde(default)]
    pub url: Option<HttpUrl>,
    /// Look up each room's node with `checkJoin` instead.
    #[serde(default)]
    pub check_join: Option<CheckJoinConfig>,
    /// The name usher's participant gets.
    #[serde(default = "default_display_name")]
    pub display_name: String,
    /// Keep usher's participant out of the roster.
    #[serde(default = "default_true")]
    pub hide: bool,
    /// Network timeouts.
    #[serde(default)]
    pub timeouts: Timeouts,
    /// How event streams reach the node: `http1` (one connection per room,
    /// works everywhere) or `http2` (multiplexed, far lighter for thousands
    /// of rooms; the node must speak HTTP/2).
    #[serde(default)]
    pub stream_protocol: StreamProtocol,
}

/// Where to look rooms up with `checkJoin`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckJoinConfig {
    /// The API server, e.g. `https://api.example.com`.
    pub api_server: HttpUrl,
}

impl VmrConfig {
    /// A platform whose meeting node is at `url`, with every other setting
    /// at its default.
    pub fn at(url: url::Url) -> Self {
        VmrConfig {
            url: Some(HttpUrl(url)),
            check_join: None,
            display_name: default_display_name(),
            hide: true,
            timeouts: Timeouts::default(),
            stream_protocol: StreamProtocol::default(),
        }
    }

    /// How to talk to the platform, for `rooms` rooms.
    pub fn http_options(&self, rooms: usize) -> HttpOptions {
        HttpOptions {
            connect_timeout: self.timeouts.connect.0,
            request_timeout: self.timeouts.request.0,
            stream_idle_timeout: self.timeouts.stream_idle.0,
            stream_protocol: self.stream_protocol,
            rooms,
        }
    }

    /// Exactly one of `url` and `check_join` must be given.
    pub fn validate(&self) -> Result<(), String> {
        match (&self.url, &self.check_join) {
            (None, None) => Err(
                "give the meeting node as `url:`, or `check_join: { api_server: ... }` to look it up"
                    .to_owned(),
            ),
            (Some(_), Some(_)) => Err(
                "give either `url:` or `check_join:`, not both: `url` names the node itself"
                    .to_owned(),
            ),
            _ => Ok(()),
        }
    }
}

fn default_display_name() -> String {
    "usher".to_owned()
}

fn default_true() -> bool {
    true
}
