//! The REST calls of one Agora account, and what their answers mean.
//!
//! Every call carries `Authorization: agora token=…` and answers
//! `{code, msg, ts[, data]}`. An answer is read (capped at 1 MiB) and
//! classified once, in [`classify`]:
//!
//! | answer | [`CallError`] |
//! |---|---|
//! | HTTP 2xx and `code` 0 | success |
//! | HTTP 401 | `Unauthorized`, after the token was read again and the call retried once |
//! | HTTP 429, 5xx, a transport failure | `Retryable`, with `Retry-After` (seconds, at most a minute) |
//! | HTTP 404 or `code` 20404100 / 20404200 | `NotFound` |
//! | any other | `Refused`, with the platform's `msg` |
//!
//! Paths are built here from the verified prefix
//! (`/{region}/conference/apps/{appId}/v1/rooms/{roomUuid}`) and the
//! inferred segments of [`super::inferred`]; every segment is
//! percent-encoded, since room ids may hold spaces and punctuation. No
//! error message carries a URL (the App ID is in it) or the token.

use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use serde::Serialize;
use serde::de::DeserializeOwned;
use url::Url;

use super::auth::Token;
use super::inferred::{self, RoomInfo, User, UserPage};
use super::wire::{self, AUTHORIZATION_PREFIX, CreateRoom, Reply};
use crate::clock::unix_now;
use crate::model::Secret;
use crate::platform::http::{HttpClients, describe_transport, read_body_capped, retry_after};

/// The most pages of users read in one listing, so a server that never
/// ends its paging cannot hold a room forever (100 a page: 100,000 users).
const MAX_USER_PAGES: usize = 1000;

/// Why a call did not succeed. Never carries a URL or the token.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CallError {
    /// The platform refused the token, even one read again.
    #[error("{call}: the platform refused the token (HTTP 401)")]
    Unauthorized {
        /// The call.
        call: &'static str,
    },
    /// The room or the user does not exist.
    #[error("{call}: not found: {reason}")]
    NotFound {
        /// The call.
        call: &'static str,
        /// The platform's words.
        reason: String,
    },
    /// The platform said no; trying again will not help.
    #[error("{call}: refused: {reason}")]
    Refused {
        /// The call.
        call: &'static str,
        /// The platform's code and words.
        reason: String,
        /// The business code.
        code: i64,
    },
    /// A failure that may pass.
    #[error("{call}: {reason}")]
    Retryable {
        /// The call.
        call: &'static str,
        /// What happened.
        reason: String,
        /// How long the platform asked us to wait.
        retry_after: Option<Duration>,
    },
}

/// A successful call's `data`, and whether the token had to be renewed.
#[derive(Debug)]
pub struct Answer<T> {
    /// The reply's `data`.
    pub data: T,
    /// The token was refused and a renewed one worked.
    pub renewed: bool,
}

/// Whether a create call made the room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    /// Made now.
    New,
    /// It existed already (HTTP 409).
    Existed,
}

/// The REST side of one account.
pub struct Rest {
    http: HttpClients,
    base: Url,
    region: String,
    app_id: Secret,
    token: Arc<Token>,
}

impl Rest {
    /// Calls to `base` in `region` for `app_id`.
    pub fn new(
        http: HttpClients,
        base: Url,
        region: &str,
        app_id: Secret,
        token: Arc<Token>,
    ) -> Rest {
        Rest {
            http,
            base,
            region: region.to_owned(),
            app_id,
            token,
        }
    }

    /// `…/v1/rooms/{room}` followed by `tail`.
    fn room_url(&self, room: &str, tail: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty().extend([
                self.region.as_str(),
                wire::PRODUCT_SEGMENT,
                "apps",
                self.app_id.expose(),
                inferred::API_VERSION,
                "rooms",
                room,
            ]);
            segments.extend(tail);
        }
        url
    }

    /// Creates a room (seed 004's call).
    pub async fn create_room(
        &self,
        room: &str,
        body: &CreateRoom,
    ) -> Result<Answer<Created>, CallError> {
        let url = self.room_url(room, &[]);
        let (status, reply, renewed) = self
            .exchange("create room", Method::POST, url, Some(body))
            .await?;
        if status == inferred::ROOM_EXISTS_STATUS {
            return Ok(Answer {
                data: Created::Existed,
                renewed,
            });
        }
        classify("create room", status, &reply)?;
        Ok(Answer {
            data: Created::New,
            renewed,
        })
    }

    /// The room's name, state and schedule.
    pub async fn room(&self, room: &str) -> Result<Answer<RoomInfo>, CallError> {
        let url = self.room_url(room, &[]);
        self.data("query room", Method::GET, url, None::<&()>).await
    }

    /// Everyone online in the room, every page.
    pub async fn users(&self, room: &str) -> Result<Answer<Vec<User>>, CallError> {
        let mut users = Vec::new();
        let mut next: Option<String> = None;
        let mut renewed = false;
        for _ in 0..MAX_USER_PAGES {
            let mut url = self.room_url(room, &[inferred::USERS_SEGMENT]);
            url.query_pairs_mut()
                .append_pair("count", &inferred::USERS_PAGE.to_string());
            if let Some(next) = &next {
                url.query_pairs_mut().append_pair("nextId", next);
            }
            let page: Answer<UserPage> = self
                .data("list users", Method::GET, url, None::<&()>)
                .await?;
            renewed |= page.renewed;
            users.extend(page.data.list.into_iter().filter(User::online));
            match page.data.next_id {
                Some(id) if next.as_ref() != Some(&id) => next = Some(id),
                _ => {
                    return Ok(Answer {
                        data: users,
                        renewed,
                    });
                }
            }
        }
        Err(CallError::Retryable {
            call: "list users",
            reason: format!("the user list did not end within {MAX_USER_PAGES} pages"),
            retry_after: None,
        })
    }

    /// Sets the room's properties (see `inferred::PROPERTIES_SEGMENT`).
    pub async fn set_properties(
        &self,
        room: &str,
        body: &inferred::PropertiesBody,
    ) -> Result<Answer<()>, CallError> {
        let url = self.room_url(room, &[inferred::PROPERTIES_SEGMENT]);
        self.ok("set room properties", Method::PUT, url, Some(body))
            .await
    }

    /// Sets the room's state (see `inferred::state`).
    pub async fn set_state(&self, room: &str, state: i64) -> Result<Answer<()>, CallError> {
        let url = self.room_url(room, &[inferred::STATES_SEGMENT, &state.to_string()]);
        self.ok("set room state", Method::PUT, url, None::<&()>)
            .await
    }

    /// Removes a user, who may not come back for `ban`.
    pub async fn exit(
        &self,
        room: &str,
        user: &str,
        ban: Duration,
    ) -> Result<Answer<()>, CallError> {
        let url = self.room_url(
            room,
            &[inferred::USERS_SEGMENT, user, inferred::EXIT_SEGMENT],
        );
        let body = inferred::ExitBody {
            dirty: inferred::Dirty {
                state: i64::from(!ban.is_zero()),
                duration: ban.as_secs() as i64,
            },
        };
        self.ok("remove user", Method::POST, url, Some(&body)).await
    }

    /// Updates stream states.
    pub async fn streams(
        &self,
        room: &str,
        body: &inferred::StreamsBody,
    ) -> Result<Answer<()>, CallError> {
        let url = self.room_url(room, &[inferred::STREAMS_SEGMENT]);
        self.ok("update streams", Method::PUT, url, Some(body))
            .await
    }

    async fn ok<B: Serialize>(
        &self,
        call: &'static str,
        method: Method,
        url: Url,
        body: Option<&B>,
    ) -> Result<Answer<()>, CallError> {
        let (status, reply, renewed) = self.exchange(call, method, url, body).await?;
        classify(call, status, &reply)?;
        Ok(Answer { data: (), renewed })
    }

    async fn data<T: DeserializeOwned, B: Serialize>(
        &self,
        call: &'static str,
        method: Method,
        url: Url,
        body: Option<&B>,
    ) -> Result<Answer<T>, CallError> {
        let (status, reply, renewed) = self.exchange(call, method, url, body).await?;
        classify(call, status, &reply)?;
        let data = reply.data.unwrap_or(serde_json::Value::Null);
        let data = serde_json::from_value(data).map_err(|err| CallError::Refused {
            call,
            reason: format!("the reply's data cannot be read: {err}"),
            code: reply.code,
        })?;
        Ok(Answer { data, renewed })
    }

    /// Sends one call; on 401 reads the token again and, if it changed,
    /// sends it once more. Returns the status and the reply.
    async fn exchange<B: Serialize>(
        &self,
        call: &'static str,
        method: Method,
        url: Url,
        body: Option<&B>,
    ) -> Result<(u16, Reply, bool), CallError> {
        let body = body
            .map(serde_json::to_vec)
            .transpose()
            .map_err(|err| CallError::Refused {
                call,
                reason: format!("cannot write the request: {err}"),
                code: 0,
            })?;
        let mut renewed = false;
        loop {
            let token = self.token.current();
            let (status, reply, retry_after) = self
                .send_once(call, method.clone(), url.clone(), body.clone(), &token)
                .await?;
            if status == 401 {
                if !renewed && self.token.renew(&token) {
                    renewed = true;
                    continue;
                }
                return Err(CallError::Unauthorized { call });
            }
            if status == 429 || status >= 500 {
                return Err(CallError::Retryable {
                    call,
                    reason: describe(status, &reply),
                    retry_after,
                });
            }
            return Ok((status, reply, renewed));
        }
    }

    async fn send_once(
        &self,
        call: &'static str,
        method: Method,
        url: Url,
        body: Option<Vec<u8>>,
        token: &Secret,
    ) -> Result<(u16, Reply, Option<Duration>), CallError> {
        let mut request = self.http.rest().request(method, url).header(
            reqwest::header::AUTHORIZATION,
            format!("{AUTHORIZATION_PREFIX}{}", token.expose()),
        );
        if let Some(body) = body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body);
        }
        let transport = |err: reqwest::Error| CallError::Retryable {
            call,
            reason: describe_transport(err),
            retry_after: None,
        };
        let response = request.send().await.map_err(transport)?;
        let status = response.status().as_u16();
        let retry_after = retry_after(response.headers());
        let bytes = read_body_capped(response, crate::limits::MAX_REPLY_BODY)
            .await
            .map_err(|err| CallError::Retryable {
                call,
                reason: err.to_string(),
                retry_after: None,
            })?;
        // A reply that is not the envelope (a proxy's error page, say) is
        // judged by its status alone.
        let reply = serde_json::from_slice::<Reply>(&bytes).unwrap_or_else(|_| Reply {
            code: i64::from(status),
            msg: format!("HTTP {status} without the platform's reply"),
            ts: (unix_now() * 1000.0) as i64,
            data: None,
        });
        Ok((status, reply, retry_after))
    }
}

/// The outcome of an answer that is not a 401 or a retryable status.
fn classify(call: &'static str, status: u16, reply: &Reply) -> Result<(), CallError> {
    if (200..300).contains(&status) && reply.code == inferred::code::OK {
        return Ok(());
    }
    if status == 404
        || matches!(
            reply.code,
            inferred::code::ROOM_NOT_FOUND | inferred::code::USER_NOT_FOUND
        )
    {
        return Err(CallError::NotFound {
            call,
            reason: describe(status, reply),
        });
    }
    Err(CallError::Refused {
        call,
        reason: describe(status, reply),
        code: reply.code,
    })
}

fn describe(status: u16, reply: &Reply) -> String {
    format!("HTTP {status}, code {}: {}", reply.code, reply.msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(code: i64) -> Reply {
        Reply {
            code,
            msg: "m".into(),
            ..Reply::default()
        }
    }

    #[test]
    fn answers_are_classified_by_status_and_code() {
        assert_eq!(classify("c", 200, &reply(0)), Ok(()));
        assert!(matches!(
            classify("c", 404, &reply(inferred::code::ROOM_NOT_FOUND)),
            Err(CallError::NotFound { .. })
        ));
        assert!(matches!(
            classify("c", 200, &reply(inferred::code::USER_NOT_FOUND)),
            Err(CallError::NotFound { .. })
        ));
        assert!(matches!(
            classify("c", 409, &reply(inferred::code::ALREADY_ENDED)),
            Err(CallError::Refused {
                code: inferred::code::ALREADY_ENDED,
                ..
            })
        ));
        assert!(matches!(
            classify("c", 200, &reply(400)),
            Err(CallError::Refused { .. })
        ));
    }

    #[test]
    fn paths_are_built_and_escaped() {
        let rest = Rest::new(
            HttpClients::new(crate::platform::http::HttpOptions::default()).unwrap(),
            Url::parse("https://api.example.com").unwrap(),
            "cn",
            Secret::new("app1"),
            Arc::new(Token::fixed(Secret::new("t"))),
        );
        assert_eq!(
            rest.room_url("physics 101/a", &["users", "u1", "exit"])
                .as_str(),
            "https://api.example.com/cn/conference/apps/app1/v1/rooms/physics%20101%2Fa/users/u1/exit"
        );
    }
}
