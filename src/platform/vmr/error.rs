//! Typed client errors, shaped for the decision a caller has to make.
//!
//! A dispatcher needs to know one thing about a failed call: retry it, renew
//! the session and retry, or give up and report. [`ClientError`] says which.
//! Messages never contain a URL (the events URL carries the token) or any
//! credential.

use std::time::Duration;

use crate::platform::http::describe_transport;

/// Why a call to the platform failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// HTTP 403: the token is invalid or expired, or the PIN was refused.
    /// Renew the session (for the PIN: fix the config).
    #[error("{call}: refused by the platform (HTTP 403): {message}")]
    Forbidden {
        /// The call, e.g. `mute` or `new_session`.
        call: &'static str,
        /// What the platform said.
        message: String,
    },
    /// HTTP 404: the room or participant does not exist (any more).
    #[error("{call}: not found (HTTP 404): {message}")]
    NotFound {
        /// The call.
        call: &'static str,
        /// What the platform said.
        message: String,
    },
    /// The platform understood and said no: a `failed`/`failure` status, a
    /// `false` result, or a 4xx other than 403/404. Do not retry.
    #[error("{call}: rejected{}: {message}", status.map(|s| format!(" (HTTP {s})")).unwrap_or_default())]
    Rejected {
        /// The call.
        call: &'static str,
        /// The HTTP status, when it was not 200.
        status: Option<u16>,
        /// What the platform said.
        message: String,
    },
    /// A failure that may pass: HTTP 5xx, 408 or 429, a timeout, or a
    /// connection error. Retry with backoff, and not before `retry_after`.
    #[error("{call}: temporary failure: {reason}")]
    Transient {
        /// The call.
        call: &'static str,
        /// What happened.
        reason: String,
        /// How long the platform asked to be left alone (`Retry-After`,
        /// capped at [`MAX_RETRY_AFTER`]).
        retry_after: Option<Duration>,
    },
    /// The reply could not be understood.
    #[error("{call}: unexpected reply: {reason}")]
    Protocol {
        /// The call.
        call: &'static str,
        /// What was wrong with it.
        reason: String,
    },
}

impl ClientError {
    /// True when retrying later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, ClientError::Transient { .. })
    }

    /// How long the platform asked to wait before the next try, if it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ClientError::Transient { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// True when the session must be renewed (HTTP 403).
    pub fn is_forbidden(&self) -> bool {
        matches!(self, ClientError::Forbidden { .. })
    }

    /// The call that failed.
    pub fn call(&self) -> &'static str {
        match self {
            ClientError::Forbidden { call, .. }
            | ClientError::NotFound { call, .. }
            | ClientError::Rejected { call, .. }
            | ClientError::Transient { call, .. }
            | ClientError::Protocol { call, .. } => call,
        }
    }

    /// A short label for metrics: `forbidden`, `not_found`, `rejected`,
    /// `transient` or `protocol`.
    pub fn kind(&self) -> &'static str {
        match self {
            ClientError::Forbidden { .. } => "forbidden",
            ClientError::NotFound { .. } => "not_found",
            ClientError::Rejected { .. } => "rejected",
            ClientError::Transient { .. } => "transient",
            ClientError::Protocol { .. } => "protocol",
        }
    }

    /// A transport-level failure from reqwest, described without its URL.
    pub(crate) fn transport(call: &'static str, err: reqwest::Error) -> Self {
        ClientError::Transient {
            call,
            reason: describe_transport(err),
            retry_after: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_say_what_happened_and_how_to_classify_it() {
        let err = ClientError::Rejected {
            call: "mute",
            status: Some(400),
            message: "bad body".into(),
        };
        assert_eq!(err.to_string(), "mute: rejected (HTTP 400): bad body");
        assert!(!err.is_transient() && !err.is_forbidden());
        let err = ClientError::Rejected {
            call: "lock",
            status: None,
            message: "false".into(),
        };
        assert_eq!(err.to_string(), "lock: rejected: false");
        assert_eq!(err.kind(), "rejected");
    }
}
