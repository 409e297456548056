//! The room engine's REST calls and what their answers mean.
//!
//! Every call is `POST <url>/v4/<service>/<command>?sdkappid=…&identifier=…
//! &usersig=…&random=…&contenttype=json` with a JSON body (never empty),
//! and is answered HTTP 200 whatever happened: the outcome is in
//! `ActionStatus` / `ErrorCode` (2.3, 2.4 [V]). [`Rest::call`] maps it:
//!
//! | `ErrorCode` | meaning | usher |
//! |---|---|---|
//! | 0 | done | ok |
//! | 70001 | UserSig expired | renew it and retry once |
//! | 60007, 60011 | rate limited | retryable, after a second |
//! | 100001 | internal error | retryable |
//! | 100004 | the room does not exist (or was destroyed) | not found |
//! | anything else | refused (70009 bad sig, 60010 not admin, 100002 bad parameter, 100005 not a member, …) | refused |
//!
//! plus [`super::inferred::TRANSIENT_CODES`]. HTTP 5xx, 429 and transport
//! failures are retryable; replies are read up to [`MAX_REPLY_BODY`]. Calls are
//! paced below the documented 200 per second per API for the whole
//! account, so a busy account waits rather than being refused. The UserSig
//! is in the URL, so no error text ever carries the URL.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio::time::Instant;
use url::Url;

use super::auth::UserSigs;
use super::inferred::{MAX_MEMBER_PAGES, MEMBER_PAGE, TRANSIENT_CODES};
use super::tracker::Listing;
use super::wire::{
    self, Api, MemberInfo, MemberPage, Reply, RoomInfo, RoomInfoAnswer, SeatInfo, SeatListAnswer,
};
use crate::limits::MAX_REPLY_BODY;
use crate::model::Secret;
use crate::platform::http::{BodyError, describe_transport, read_body_capped};

/// The UserSig expired.
pub const SIG_EXPIRED: i64 = 70001;
/// The UserSig is not valid.
pub const SIG_INVALID: i64 = 70009;
/// Too many calls to one API.
pub const RATE_LIMITED: i64 = 60007;
/// Too many calls for the application.
pub const APP_RATE_LIMITED: i64 = 60011;
/// The room engine failed inside.
pub const INTERNAL: i64 = 100001;
/// A parameter is not valid.
pub const INVALID_PARAMETER: i64 = 100002;
/// The room does not exist, or was destroyed.
pub const ROOM_NOT_FOUND: i64 = 100004;
/// The account is not a member of the room.
pub const NOT_A_MEMBER: i64 = 100005;

/// Calls per second per API usher allows itself (the platform allows 200).
const PACE: f64 = 190.0;
/// Calls to one API that may go at once before the pace applies.
const PACE_BURST: f64 = 20.0;
/// How long usher waits after a rate-limit answer.
const RATE_LIMIT_WAIT: Duration = Duration::from_secs(1);

/// Why a call did not work.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RestError {
    /// The platform said no; asking again will not help.
    #[error("{call}: refused, {code} {info}")]
    Refused {
        /// The command.
        call: &'static str,
        /// `ErrorCode`.
        code: i64,
        /// `ErrorInfo`.
        info: String,
    },
    /// The room does not exist (or no longer).
    #[error("{call}: the room does not exist ({code} {info})")]
    NotFound {
        /// The command.
        call: &'static str,
        /// `ErrorCode`.
        code: i64,
        /// `ErrorInfo`.
        info: String,
    },
    /// A failure that may pass.
    #[error("{call}: {reason}")]
    Transient {
        /// The command.
        call: &'static str,
        /// What happened.
        reason: String,
        /// How long to wait first, when known.
        retry_after: Option<Duration>,
    },
    /// The answer could not be read.
    #[error("{call}: unreadable answer: {reason}")]
    Protocol {
        /// The command.
        call: &'static str,
        /// What was wrong.
        reason: String,
    },
}

/// One account's REST client: its HTTP client, UserSigs and pacing.
pub struct Rest {
    client: reqwest::Client,
    base: Url,
    sigs: Arc<UserSigs>,
    pace: Pacer,
}

/// What one attempt gave.
enum Attempt {
    Done(Option<Value>),
    SigExpired,
    Failed(RestError),
}

impl Rest {
    /// A client for the REST domain `base`.
    pub fn new(client: reqwest::Client, base: Url, sigs: Arc<UserSigs>) -> Self {
        Rest {
            client,
            base,
            sigs,
            pace: Pacer::default(),
        }
    }

    /// The account's UserSigs.
    pub fn sigs(&self) -> &UserSigs {
        &self.sigs
    }

    /// Makes one call; returns its `Response`, if it has one. An expired
    /// UserSig is renewed and the call made once more.
    pub async fn call(&self, api: Api, body: &Value) -> Result<Option<Value>, RestError> {
        let sig = self.sigs.current();
        match self.attempt(api, &sig, body).await {
            Attempt::Done(response) => Ok(response),
            Attempt::Failed(err) => Err(err),
            Attempt::SigExpired => {
                tracing::info!(call = api.command, "the UserSig expired; issuing a new one");
                let renewed = self.sigs.renew(&sig);
                match self.attempt(api, &renewed, body).await {
                    Attempt::Done(response) => Ok(response),
                    Attempt::Failed(err) => Err(err),
                    Attempt::SigExpired => Err(RestError::Transient {
                        call: api.command,
                        reason:
                            "a freshly issued UserSig was refused as expired (is the clock right?)"
                                .to_owned(),
                        retry_after: None,
                    }),
                }
            }
        }
    }

    /// `get_room_info`.
    pub async fn room_info(&self, room: &str) -> Result<RoomInfo, RestError> {
        let answer: RoomInfoAnswer = answer(
            wire::GET_ROOM_INFO,
            self.call(wire::GET_ROOM_INFO, &json!({"RoomId": room}))
                .await?,
        )?;
        Ok(answer.room)
    }

    /// `get_room_member_list`, every page.
    pub async fn members(&self, room: &str) -> Result<Vec<MemberInfo>, RestError> {
        let mut members = Vec::new();
        let mut next = String::new();
        for _ in 0..MAX_MEMBER_PAGES {
            let body = json!({"RoomId": room, "Count": MEMBER_PAGE, "Next": next});
            let page: MemberPage = answer(
                wire::GET_ROOM_MEMBER_LIST,
                self.call(wire::GET_ROOM_MEMBER_LIST, &body).await?,
            )?;
            members.extend(page.members);
            if page.next.is_empty() || page.next == next {
                return Ok(members);
            }
            next = page.next;
        }
        Err(RestError::Protocol {
            call: wire::GET_ROOM_MEMBER_LIST.command,
            reason: format!("the member list did not end within {MAX_MEMBER_PAGES} pages"),
        })
    }

    /// `get_seat_list`.
    pub async fn seats(&self, room: &str) -> Result<Vec<SeatInfo>, RestError> {
        let answer: SeatListAnswer = answer(
            wire::GET_SEAT_LIST,
            self.call(wire::GET_SEAT_LIST, &json!({"RoomId": room}))
                .await?,
        )?;
        Ok(answer.seats)
    }

    /// Everything a reconcile needs: the room, its members and, when it has
    /// seats, its seats.
    pub async fn listing(&self, room: &str) -> Result<Listing, RestError> {
        let info = self.room_info(room).await?;
        let members = self.members(room).await?;
        let seats = if info.seat_enabled.unwrap_or(false) {
            Some(self.seats(room).await?)
        } else {
            None
        };
        Ok(Listing {
            info,
            members,
            seats,
        })
    }

    async fn attempt(&self, api: Api, sig: &Secret, body: &Value) -> Attempt {
        self.pace.take(api).await;
        let call = api.command;
        let mut url = match self.base.join(&api.path()) {
            Ok(url) => url,
            Err(err) => {
                return Attempt::Failed(RestError::Protocol {
                    call,
                    reason: format!("cannot build the URL: {err}"),
                });
            }
        };
        url.query_pairs_mut()
            .append_pair("sdkappid", &self.sigs.sdk_app_id().to_string())
            .append_pair("identifier", self.sigs.identifier())
            .append_pair("usersig", sig.expose())
            .append_pair("random", &fastrand::u32(..).to_string())
            .append_pair("contenttype", "json");
        let transient = |reason: String| {
            Attempt::Failed(RestError::Transient {
                call,
                reason,
                retry_after: None,
            })
        };
        let response = match self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_string())
            .send()
            .await
        {
            Ok(response) => response,
            // The URL holds the UserSig: never let it into an error.
            Err(err) => {
                return transient(format!(
                    "cannot reach the platform: {}",
                    describe_transport(err)
                ));
            }
        };
        let status = response.status();
        if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            return transient(format!("HTTP {}", status.as_u16()));
        }
        if !status.is_success() {
            return Attempt::Failed(RestError::Protocol {
                call,
                reason: format!("HTTP {}", status.as_u16()),
            });
        }
        let bytes = match read_body_capped(response, MAX_REPLY_BODY).await {
            Ok(bytes) => bytes,
            Err(BodyError::Transport(err)) => {
                return transient(format!("the answer broke off: {}", describe_transport(err)));
            }
            Err(err) => {
                return Attempt::Failed(RestError::Protocol {
                    call,
                    reason: err.to_string(),
                });
            }
        };
        match serde_json::from_slice::<Reply>(&bytes) {
            Ok(reply) => outcome(call, reply),
            Err(err) => Attempt::Failed(RestError::Protocol {
                call,
                reason: format!("not the platform's JSON answer: {err}"),
            }),
        }
    }
}

/// What an answer's `ErrorCode` means (see the module's table).
fn outcome(call: &'static str, reply: Reply) -> Attempt {
    let code = reply.error_code;
    let info = reply.error_info;
    match code {
        0 if !reply.action_status.eq_ignore_ascii_case("FAIL") => Attempt::Done(reply.response),
        SIG_EXPIRED => Attempt::SigExpired,
        RATE_LIMITED | APP_RATE_LIMITED => Attempt::Failed(RestError::Transient {
            call,
            reason: format!("rate limited ({code} {info})"),
            retry_after: Some(RATE_LIMIT_WAIT),
        }),
        INTERNAL => Attempt::Failed(RestError::Transient {
            call,
            reason: format!("the platform failed ({code} {info})"),
            retry_after: None,
        }),
        code if TRANSIENT_CODES.contains(&code) => Attempt::Failed(RestError::Transient {
            call,
            reason: format!("{code} {info}"),
            retry_after: None,
        }),
        ROOM_NOT_FOUND => Attempt::Failed(RestError::NotFound { call, code, info }),
        code => Attempt::Failed(RestError::Refused { call, code, info }),
    }
}

/// Reads a call's `Response` as `T`.
fn answer<T: DeserializeOwned + Default>(
    api: Api,
    response: Option<Value>,
) -> Result<T, RestError> {
    match response {
        None => Ok(T::default()),
        Some(value) => serde_json::from_value(value).map_err(|err| RestError::Protocol {
            call: api.command,
            reason: format!("unexpected Response: {err}"),
        }),
    }
}

/// Keeps each API's calls under the platform's limit, for the whole
/// account: a token bucket per API.
#[derive(Default)]
struct Pacer {
    buckets: Mutex<HashMap<&'static str, Bucket>>,
}

struct Bucket {
    tokens: f64,
    last: Instant,
}

impl Pacer {
    async fn take(&self, api: Api) {
        loop {
            let wait = {
                let mut buckets = self
                    .buckets
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                let now = Instant::now();
                let bucket = buckets.entry(api.command).or_insert(Bucket {
                    tokens: PACE_BURST,
                    last: now,
                });
                bucket.tokens = (bucket.tokens
                    + now.duration_since(bucket.last).as_secs_f64() * PACE)
                    .min(PACE_BURST);
                bucket.last = now;
                if bucket.tokens >= 1.0 {
                    bucket.tokens -= 1.0;
                    return;
                }
                Duration::from_secs_f64((1.0 - bucket.tokens) / PACE)
            };
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(json: &str) -> Reply {
        serde_json::from_str(json).unwrap()
    }

    fn failed(attempt: Attempt) -> RestError {
        match attempt {
            Attempt::Failed(err) => err,
            Attempt::Done(_) => panic!("done"),
            Attempt::SigExpired => panic!("sig expired"),
        }
    }

    #[test]
    fn codes_map_to_outcomes() {
        assert!(matches!(
            outcome(
                "x",
                reply(r#"{"ActionStatus":"OK","ErrorCode":0,"Response":{"a":1}}"#)
            ),
            Attempt::Done(Some(_))
        ));
        assert!(matches!(
            outcome("x", reply(r#"{"ActionStatus":"FAIL","ErrorCode":70001}"#)),
            Attempt::SigExpired
        ));
        for code in [60007, 60011, 100001, 60008] {
            let err = failed(outcome(
                "x",
                reply(&format!(r#"{{"ActionStatus":"FAIL","ErrorCode":{code}}}"#)),
            ));
            assert!(
                matches!(err, RestError::Transient { .. }),
                "{code}: {err:?}"
            );
        }
        let err = failed(outcome(
            "x",
            reply(r#"{"ActionStatus":"FAIL","ErrorCode":"100004","ErrorInfo":"gone"}"#),
        ));
        assert!(
            matches!(err, RestError::NotFound { code: 100004, .. }),
            "{err:?}"
        );
        for code in [70009, 60010, 100002, 100005] {
            let err = failed(outcome(
                "x",
                reply(&format!(r#"{{"ActionStatus":"FAIL","ErrorCode":{code}}}"#)),
            ));
            assert!(matches!(err, RestError::Refused { .. }), "{code}: {err:?}");
        }
        let err = failed(outcome(
            "x",
            reply(r#"{"ActionStatus":"FAIL","ErrorCode":0}"#),
        ));
        assert!(
            matches!(err, RestError::Refused { code: 0, .. }),
            "FAIL with code 0 is no success"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn calls_are_paced_under_the_platform_limit() {
        let pacer = Pacer::default();
        let start = Instant::now();
        for _ in 0..(PACE_BURST as usize + 190) {
            pacer.take(wire::GET_ROOM_INFO).await;
        }
        let took = start.elapsed().as_secs_f64();
        assert!(
            (0.95..1.1).contains(&took),
            "190 calls past the burst take a second, took {took}"
        );
        let other = Instant::now();
        pacer.take(wire::KICK_USER_OUT).await;
        assert_eq!(
            other.elapsed(),
            Duration::ZERO,
            "each API has its own budget"
        );
    }
}
