//! Huawei's REST calls and what their answers mean.
//!
//! [`Rest`] makes one call at a time and reads the answer with a cap.
//! [`CallError`] sorts failures by what the caller must do: renew a token
//! (401), give up (another 4xx, the platform's `{error_code, error_msg}`
//! quoted), or retry later (5xx, 429, the SDK's flow-control code,
//! transport errors; honouring `Retry-After`). Messages never carry a
//! token, password or URL query.

use std::time::Duration;

use reqwest::header::HeaderMap;
use serde::de::DeserializeOwned;
use serde_json::Value;
use url::Url;

use super::inferred;
use super::wire::{self, ControlCall, ErrorReply};
use crate::limits::MAX_REPLY_BODY;
use crate::model::Secret;
use crate::platform::http::{describe_transport, parse_retry_after, read_body_capped};

/// Why a call failed, shaped for the decision the caller makes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// HTTP 401: the token used is expired or unknown; renew it and retry.
    #[error("{call}: the token was refused (HTTP 401): {message}")]
    Expired {
        /// The call, e.g. `mute`.
        call: &'static str,
        /// What the platform said.
        message: String,
    },
    /// The platform said no; retrying will not help.
    #[error("{call}: refused (HTTP {status}): {message}")]
    Refused {
        /// The call.
        call: &'static str,
        /// The HTTP status.
        status: u16,
        /// The platform's code and text.
        message: String,
    },
    /// A failure that may pass.
    #[error("{call}: temporary failure: {reason}")]
    Retryable {
        /// The call.
        call: &'static str,
        /// What happened.
        reason: String,
        /// How long the platform asked us to wait.
        retry_after: Option<Duration>,
    },
    /// The answer could not be understood.
    #[error("{call}: unexpected reply: {reason}")]
    Protocol {
        /// The call.
        call: &'static str,
        /// What was wrong with it.
        reason: String,
    },
}

/// Calls to one Huawei REST base.
#[derive(Debug, Clone)]
pub struct Rest {
    client: reqwest::Client,
    base: Url,
}

/// Headers a call carries besides its body.
#[derive(Default)]
pub struct Auth<'a> {
    /// `X-Access-Token`.
    pub access: Option<&'a Secret>,
    /// `X-Conference-Authorization`.
    pub control: Option<&'a Secret>,
    /// `X-Password` (with `X-Login-Type`).
    pub password: Option<&'a Secret>,
    /// `Authorization`.
    pub authorization: Option<&'a str>,
    /// `X-Token-Type: LongTicket` (App-ID auth).
    pub long_ticket: bool,
}

impl Rest {
    /// Calls to `base` with `client`.
    pub fn new(client: reqwest::Client, base: Url) -> Self {
        Rest { client, base }
    }

    /// The REST base.
    pub fn base(&self) -> &Url {
        &self.base
    }

    /// One call: `method path?query` with `auth` and a JSON `body`; the
    /// answer's body, capped.
    pub async fn call(
        &self,
        call: &'static str,
        method: reqwest::Method,
        path: &str,
        query: &[(&str, &str)],
        auth: Auth<'_>,
        body: Option<&Value>,
    ) -> Result<bytes::Bytes, CallError> {
        let mut url = self.base.clone();
        url.set_path(path);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        let mut request = self.client.request(method, url);
        if let Some(token) = auth.access {
            request = request.header(wire::ACCESS_TOKEN_HEADER, token.expose());
        }
        if let Some(token) = auth.control {
            request = request.header(wire::CONTROL_TOKEN_HEADER, token.expose());
        }
        if let Some(password) = auth.password {
            request = request
                .header(wire::PASSWORD_HEADER, password.expose())
                .header(wire::LOGIN_TYPE_HEADER, inferred::LOGIN_TYPE_PASSWORD);
        }
        if let Some(authorization) = auth.authorization {
            request = request.header(reqwest::header::AUTHORIZATION, authorization);
        }
        if auth.long_ticket {
            request = request.header(wire::TOKEN_TYPE_HEADER, wire::LONG_TICKET);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|err| CallError::Retryable {
            call,
            reason: describe_transport(err),
            retry_after: None,
        })?;
        let status = response.status().as_u16();
        let retry_after = retry_after(response.headers());
        let body = read_body_capped(response, MAX_REPLY_BODY)
            .await
            .map_err(|err| CallError::Retryable {
                call,
                reason: err.to_string(),
                retry_after: None,
            })?;
        if (200..300).contains(&status) {
            return Ok(body);
        }
        Err(failure(call, status, &body, retry_after))
    }

    /// A call whose answer is JSON of type `T`.
    pub async fn call_json<T: DeserializeOwned>(
        &self,
        call: &'static str,
        method: reqwest::Method,
        path: &str,
        query: &[(&str, &str)],
        auth: Auth<'_>,
        body: Option<&Value>,
    ) -> Result<T, CallError> {
        let bytes = self.call(call, method, path, query, auth, body).await?;
        serde_json::from_slice(&bytes).map_err(|err| CallError::Protocol {
            call,
            reason: format!("the answer is not the JSON expected: {err}"),
        })
    }

    /// A control command for `conference`, carried with `token`.
    pub async fn control(
        &self,
        conference: &str,
        token: &Secret,
        command: &ControlCall,
    ) -> Result<(), CallError> {
        let path = format!("{}{}", wire::CONTROL_PREFIX, command.path());
        let mut query = vec![("conferenceID", conference)];
        if let Some(pid) = command.participant_query() {
            query.push(("participantID", pid));
        }
        let body = command.body();
        self.call(
            command.path(),
            command.method(),
            &path,
            &query,
            Auth {
                control: Some(token),
                ..Auth::default()
            },
            body.as_ref(),
        )
        .await
        .map(drop)
    }
}

/// Sorts a non-2xx answer.
fn failure(
    call: &'static str,
    status: u16,
    body: &[u8],
    retry_after: Option<Duration>,
) -> CallError {
    let reply: ErrorReply = serde_json::from_slice(body).unwrap_or_default();
    let message = match (reply.code(), reply.message()) {
        ("", "") => String::from_utf8_lossy(body).chars().take(200).collect(),
        (code, "") => code.to_owned(),
        ("", text) => text.to_owned(),
        (code, text) => format!("{code}: {text}"),
    };
    let flow_controlled = reply.code() == wire::FLOW_CONTROL_CODE;
    if status >= 500 || status == 429 || status == 408 || flow_controlled {
        return CallError::Retryable {
            call,
            reason: format!("HTTP {status}: {message}"),
            retry_after,
        };
    }
    if status == inferred::EXPIRED_STATUS {
        return CallError::Expired { call, message };
    }
    CallError::Refused {
        call,
        status,
        message,
    }
}

/// The wait `Retry-After` asks for: seconds or an HTTP date, capped.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(inferred::RETRY_AFTER_HEADER)?.to_str().ok()?;
    parse_retry_after(value, std::time::SystemTime::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_sorted_by_what_to_do() {
        let body = br#"{"error_code":"MMC.111070005","error_msg":"not started"}"#;
        assert_eq!(
            failure("token", 400, body, None),
            CallError::Refused {
                call: "token",
                status: 400,
                message: "MMC.111070005: not started".into()
            }
        );
        assert!(matches!(
            failure("mute", 401, b"", None),
            CallError::Expired { .. }
        ));
        let limited = br#"{"error_code":"100000429","error_msg":"slow down"}"#;
        assert!(matches!(
            failure("mute", 400, limited, Some(Duration::from_secs(2))),
            CallError::Retryable { retry_after: Some(d), .. } if d == Duration::from_secs(2)
        ));
        assert!(matches!(
            failure("mute", 503, b"busy", None),
            CallError::Retryable { .. }
        ));
        let management = br#"{"returnCode":"1","returnDesc":"no such meeting"}"#;
        assert_eq!(
            failure("confDetail", 404, management, None).to_string(),
            "confDetail: refused (HTTP 404): 1: no such meeting"
        );
    }
}
