//! The REST calls of one room, one method per call of the seed API.
//!
//! [`RoomClient`] is stateless: every call takes the token it should use, and
//! the token lifecycle lives in [`super::session`]. Replies are read in one
//! place: [`read_body`] takes the body chunk by chunk and refuses one larger
//! than [`MAX_REPLY_BODY`], and [`decode_reply`] turns HTTP statuses and the
//! `{status, result}` envelope into a value or a typed [`ClientError`].
//! REST calls and the event stream use the platform's shared
//! [`HttpClients`].

use std::time::Duration;

use reqwest::StatusCode;
use serde::de::DeserializeOwned;
use serde_json::Value;
use url::Url;

use super::codec;
use super::error::ClientError;
use super::events::EventStream;
use super::wire::{
    self, INVALID_TOKEN, NewSessionRequest, PIN_HEADER, Reply, ServiceStatus, SessionGrant,
    TOKEN_HEADER, TokenRefresh,
};
use crate::limits::MAX_REPLY_BODY;
use crate::model::{Command, Participant, Secret};
use crate::platform::http::retry_after;
use crate::platform::http::{BodyError, HttpClients, read_body_capped};

/// The calls of one room on one node.
#[derive(Debug, Clone)]
pub struct RoomClient {
    clients: HttpClients,
    /// This room's client for its event stream.
    stream: reqwest::Client,
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
            stream: clients.stream_client(),
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
            .rest()
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
            other => decode_result("new_session", other?),
        }
    }

    /// `refresh_session`: trades a valid token for a new one.
    pub async fn refresh_session(&self, token: &Secret) -> Result<TokenRefresh, ClientError> {
        let builder = self.authorized_post("refresh_session", token);
        decode_result(
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
            .rest()
            .get(self.url("service_status"))
            .header(TOKEN_HEADER, token.expose());
        decode_result(
            "service_status",
            self.call("service_status", builder).await?,
        )
    }

    /// `participants`: the roster. Entries that cannot be read are skipped
    /// with a warning rather than failing the whole list.
    pub async fn participants(&self, token: &Secret) -> Result<Vec<Participant>, ClientError> {
        let builder = self
            .clients
            .rest()
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
            .filter_map(|entry| match codec::participant_from(entry) {
                Ok(participant) => Some(participant),
                Err(err) => {
                    tracing::warn!(error = %err, "skipping a participant that cannot be read");
                    None
                }
            })
            .collect())
    }

    /// Opens the event stream (`GET …/events?token=`): one connection attempt.
    pub fn events(&self, token: &Secret) -> EventStream {
        let mut url = self.url("events");
        url.query_pairs_mut().append_pair("token", token.expose());
        EventStream::open(self.stream.get(url), tracing::Span::current())
    }

    fn url(&self, path: &str) -> Url {
        self.room_url
            .join(path)
            .expect("request paths are relative paths")
    }

    fn authorized_post(&self, path: &str, token: &Secret) -> reqwest::RequestBuilder {
        self.clients
            .rest()
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
        let status = response.status().as_u16();
        let retry_after = retry_after(response.headers());
        let body = read_body(call, response).await?;
        decode_reply(call, status, retry_after, &body)
    }
}

/// Reads a reply's body, refusing one larger than [`MAX_REPLY_BODY`] as
/// soon as it says so or grows past it.
pub(crate) async fn read_body(
    call: &'static str,
    response: reqwest::Response,
) -> Result<bytes::Bytes, ClientError> {
    read_body_capped(response, MAX_REPLY_BODY)
        .await
        .map_err(|err| match err {
            BodyError::TooLarge { .. } => ClientError::Protocol {
                call,
                reason: err.to_string(),
            },
            BodyError::Transport(err) => ClientError::transport(call, err),
        })
}

/// Turns a reply (its status, `Retry-After` and body) into the
/// `{status, result}` envelope or the error it means.
pub fn decode_reply(
    call: &'static str,
    status: u16,
    retry_after: Option<Duration>,
    body: &[u8],
) -> Result<Reply, ClientError> {
    let parsed = serde_json::from_slice::<Reply>(body);
    let status = StatusCode::from_u16(status).map_err(|_| ClientError::Protocol {
        call,
        reason: format!("HTTP status {status} does not exist"),
    })?;
    let reply = parsed.as_ref().ok();
    let message = || {
        reply.map(Reply::reason).unwrap_or_else(|| {
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
                .map(Reply::reason)
                .unwrap_or_else(|| INVALID_TOKEN.to_owned()),
        }),
        StatusCode::NOT_FOUND => Err(ClientError::NotFound {
            call,
            message: message(),
        }),
        status
            if status == StatusCode::REQUEST_TIMEOUT
                || status == StatusCode::TOO_MANY_REQUESTS
                || status.is_server_error() =>
        {
            Err(ClientError::Transient {
                call,
                reason: format!("HTTP {}: {}", status.as_u16(), message()),
                retry_after,
            })
        }
        status if status.is_client_error() => Err(ClientError::Rejected {
            call,
            status: Some(status.as_u16()),
            message: message(),
        }),
        status if status.is_success() => match parsed {
            Ok(reply) if reply.is_success() => Ok(reply),
            Ok(reply) => Err(ClientError::Rejected {
                call,
                status: None,
                message: reply.reason(),
            }),
            Err(err) => Err(ClientError::Protocol {
                call,
                reason: format!("the reply is not a {{status, result}} JSON object: {err}"),
            }),
        },
        status => Err(ClientError::Protocol {
            call,
            reason: format!("unexpected HTTP {}", status.as_u16()),
        }),
    }
}

/// Reads an envelope's `result` as a `T`.
pub fn decode_result<T: DeserializeOwned>(
    call: &'static str,
    reply: Reply,
) -> Result<T, ClientError> {
    serde_json::from_value(reply.result).map_err(|err| ClientError::Protocol {
        call,
        reason: err.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::platform::http::HttpOptions;

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
