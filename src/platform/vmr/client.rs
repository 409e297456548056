//! The REST calls of one room, one method per call of the seed API.
//!
//! [`RoomClient`] is stateless: every call takes the token it should use, and
//! the token lifecycle lives in [`super::session`]. Replies are read in one
//! place, [`RoomClient::call`], which turns HTTP statuses and the
//! `{status, result}` envelope into a value or a typed [`ClientError`].
//!
//! Two HTTP clients are used. Event streams get a dedicated HTTP/1-only client:
//! reqwest would otherwise put every request to one node onto one HTTP/2
//! connection, and long-lived streams stall it past about a hundred rooms.

use std::time::Duration;

use reqwest::StatusCode;
use serde::de::DeserializeOwned;
use serde_json::Value;
use url::Url;

use super::error::ClientError;
use super::events::EventStream;
use super::wire::{
    self, INVALID_TOKEN, NewSessionRequest, PIN_HEADER, Reply, ServiceStatus, SessionGrant,
    TOKEN_HEADER, TokenRefresh,
};
use crate::model::{Command, Participant, Secret};

/// Timeouts for talking to the platform.
#[derive(Debug, Clone, Copy)]
pub struct HttpOptions {
    /// Longest wait for a TCP/TLS connection.
    pub connect_timeout: Duration,
    /// Longest wait for a whole REST call.
    pub request_timeout: Duration,
    /// A stream silent for this long is taken to be dead and reconnected.
    pub stream_idle_timeout: Duration,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(10),
            stream_idle_timeout: Duration::from_secs(90),
        }
    }
}

/// Idle REST connections kept per node. Calls are short, so a few serve
/// thousands of rooms; each idle HTTP/1 connection holds some 25 KB.
const REST_IDLE_CONNECTIONS: usize = 16;

/// The HTTP clients shared by every room on a node.
#[derive(Debug, Clone)]
pub struct HttpClients {
    rest: reqwest::Client,
    streams: reqwest::Client,
}

impl HttpClients {
    /// Builds the REST client and the HTTP/1-only streaming client.
    pub fn new(options: HttpOptions) -> Result<Self, reqwest::Error> {
        let user_agent = concat!("usher/", env!("CARGO_PKG_VERSION"));
        let rest = reqwest::Client::builder()
            .user_agent(user_agent)
            .connect_timeout(options.connect_timeout)
            .timeout(options.request_timeout)
            .pool_max_idle_per_host(REST_IDLE_CONNECTIONS)
            .pool_idle_timeout(Duration::from_secs(30))
            .build()?;
        let streams = reqwest::Client::builder()
            .user_agent(user_agent)
            .http1_only()
            .connect_timeout(options.connect_timeout)
            .read_timeout(options.stream_idle_timeout)
            .pool_idle_timeout(Duration::from_secs(30))
            .build()?;
        Ok(HttpClients { rest, streams })
    }

    /// The REST client, for calls outside a room (such as `checkJoin`).
    pub fn rest(&self) -> &reqwest::Client {
        &self.rest
    }
}

/// The calls of one room on one node.
#[derive(Debug, Clone)]
pub struct RoomClient {
    clients: HttpClients,
    /// `https://node/api/services/<alias>/`
    room_url: Url,
    alias: String,
}

impl RoomClient {
    /// A client for room `alias` on the node at `node` (e.g. `https://node.example.com`).
    pub fn new(clients: &HttpClients, node: &Url, alias: &str) -> Self {
        let mut room_url = node.clone();
        room_url.set_query(None);
        room_url.set_fragment(None);
        room_url
            .path_segments_mut()
            .expect("a node URL is an http(s) URL, which has a path")
            .pop_if_empty()
            .extend(["api", "services", alias, ""]);
        RoomClient {
            clients: clients.clone(),
            room_url,
            alias: alias.to_owned(),
        }
    }

    /// The room's alias.
    pub fn alias(&self) -> &str {
        &self.alias
    }

    /// The room's base URL, `…/api/services/<alias>/` (carries no secret).
    pub fn room_url(&self) -> &Url {
        &self.room_url
    }

    /// `new_session`: asks for a token. The PIN goes in the `pin` header.
    pub async fn new_session(
        &self,
        pin: Option<&Secret>,
        request: &NewSessionRequest,
    ) -> Result<SessionGrant, ClientError> {
        let mut builder = self
            .clients
            .rest
            .post(self.url("new_session"))
            .json(request);
        if let Some(pin) = pin {
            builder = builder.header(PIN_HEADER, pin.expose());
        }
        match self.call("new_session", builder).await {
            Err(ClientError::Forbidden { call, message }) => Err(ClientError::Forbidden {
                call,
                message: format!(
                    "{message}; the PIN for room `{}` was refused, check `pin` in the config",
                    self.alias
                ),
            }),
            other => parse_result("new_session", other?),
        }
    }

    /// `refresh_session`: trades a valid token for a new one.
    pub async fn refresh_session(&self, token: &Secret) -> Result<TokenRefresh, ClientError> {
        let builder = self.authorized_post("refresh_session", token);
        parse_result(
            "refresh_session",
            self.call("refresh_session", builder).await?,
        )
    }

    /// `end_session`: releases the token. The seed says to ignore the reply,
    /// so only a failure to deliver the request is an error.
    pub async fn end_session(&self, token: &Secret) -> Result<(), ClientError> {
        self.authorized_post("end_session", token)
            .send()
            .await
            .map(drop)
            .map_err(|err| ClientError::transport("end_session", err))
    }

    /// Sends a command and returns its `result` (`true`, or the new uuids for `dial`).
    pub async fn send(&self, token: &Secret, command: &Command) -> Result<Value, ClientError> {
        let request = wire::request(command);
        let call = match command {
            Command::Conference(c) => wire::conference_command_name(c),
            Command::Participant { action, .. } => wire::participant_command_name(action),
        };
        let mut builder = self.authorized_post(&request.path, token);
        if let Some(body) = &request.body {
            builder = builder.json(body);
        }
        Ok(self.call(call, builder).await?.result)
    }

    /// `service_status`: whether the room is locked and guests are muted.
    pub async fn service_status(&self, token: &Secret) -> Result<ServiceStatus, ClientError> {
        let builder = self
            .clients
            .rest
            .get(self.url("service_status"))
            .header(TOKEN_HEADER, token.expose());
        parse_result(
            "service_status",
            self.call("service_status", builder).await?,
        )
    }

    /// `participants`: the roster. Entries that cannot be read are skipped
    /// with a warning rather than failing the whole list.
    pub async fn participants(&self, token: &Secret) -> Result<Vec<Participant>, ClientError> {
        let builder = self
            .clients
            .rest
            .get(self.url("participants"))
            .header(TOKEN_HEADER, token.expose());
        let reply = self.call("participants", builder).await?;
        let Value::Array(entries) = reply.result else {
            return Err(ClientError::Protocol {
                call: "participants",
                reason: "the result is not a list".to_owned(),
            });
        };
        Ok(entries
            .into_iter()
            .filter_map(|entry| match serde_json::from_value::<Participant>(entry) {
                Ok(participant) => Some(participant),
                Err(err) => {
                    tracing::warn!(room = %self.alias, error = %err, "skipping a participant that cannot be read");
                    None
                }
            })
            .collect())
    }

    /// Opens the event stream (`GET …/events?token=`): one connection attempt.
    pub fn events(&self, token: &Secret) -> EventStream {
        let mut url = self.url("events");
        url.query_pairs_mut().append_pair("token", token.expose());
        EventStream::open(self.clients.streams.get(url))
    }

    fn url(&self, path: &str) -> Url {
        self.room_url
            .join(path)
            .expect("request paths are relative paths")
    }

    fn authorized_post(&self, path: &str, token: &Secret) -> reqwest::RequestBuilder {
        self.clients
            .rest
            .post(self.url(path))
            .header(TOKEN_HEADER, token.expose())
    }

    /// Sends a request and reads the reply envelope.
    async fn call(
        &self,
        call: &'static str,
        builder: reqwest::RequestBuilder,
    ) -> Result<Reply, ClientError> {
        let response = builder
            .send()
            .await
            .map_err(|err| ClientError::transport(call, err))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|err| ClientError::transport(call, err))?;
        let reply = serde_json::from_slice::<Reply>(&body).ok();
        let message = || {
            reply.as_ref().map(Reply::reason).unwrap_or_else(|| {
                status
                    .canonical_reason()
                    .unwrap_or("no reason given")
                    .to_owned()
            })
        };
        match status {
            StatusCode::FORBIDDEN => Err(ClientError::Forbidden {
                call,
                message: reply
                    .as_ref()
                    .map(Reply::reason)
                    .unwrap_or_else(|| INVALID_TOKEN.to_owned()),
            }),
            StatusCode::NOT_FOUND => Err(ClientError::NotFound {
                call,
                message: message(),
            }),
            StatusCode::REQUEST_TIMEOUT | StatusCode::TOO_MANY_REQUESTS => {
                Err(ClientError::Transient {
                    call,
                    reason: format!("HTTP {}: {}", status.as_u16(), message()),
                })
            }
            status if status.is_server_error() => Err(ClientError::Transient {
                call,
                reason: format!("HTTP {}: {}", status.as_u16(), message()),
            }),
            status if status.is_client_error() => Err(ClientError::Rejected {
                call,
                status: Some(status.as_u16()),
                message: message(),
            }),
            status if status.is_success() => match reply {
                Some(reply) if reply.is_success() => Ok(reply),
                Some(reply) => Err(ClientError::Rejected {
                    call,
                    status: None,
                    message: reply.reason(),
                }),
                None => Err(ClientError::Protocol {
                    call,
                    reason: "the reply is not a {status, result} JSON object".to_owned(),
                }),
            },
            status => Err(ClientError::Protocol {
                call,
                reason: format!("unexpected HTTP {}", status.as_u16()),
            }),
        }
    }
}

fn parse_result<T: DeserializeOwned>(call: &'static str, reply: Reply) -> Result<T, ClientError> {
    serde_json::from_value(reply.result).map_err(|err| ClientError::Protocol {
        call,
        reason: err.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room(node: &str, alias: &str) -> RoomClient {
        let clients = HttpClients::new(HttpOptions::default()).unwrap();
        RoomClient::new(&clients, &Url::parse(node).unwrap(), alias)
    }

    #[test]
    fn room_urls_follow_the_seed() {
        let client = room("https://node.example.com", "zjvmr@myvmr.cn");
        assert_eq!(
            client.url("new_session").as_str(),
            "https://node.example.com/api/services/zjvmr@myvmr.cn/new_session"
        );
        assert_eq!(
            client.url("participants/u-1/mute").as_str(),
            "https://node.example.com/api/services/zjvmr@myvmr.cn/participants/u-1/mute"
        );
    }

    #[test]
    fn aliases_are_escaped_and_base_paths_kept() {
        let client = room("http://127.0.0.1:8440/prefix/", "a b/c");
        assert_eq!(
            client.url("lock").as_str(),
            "http://127.0.0.1:8440/prefix/api/services/a%20b%2Fc/lock"
        );
    }
}
