//! The enterprise webhook (reference §1.2.b): how usher learns that a
//! meeting started or ended.
//!
//! Every callback is signed: hex HMAC-SHA256 over `appID + timestamp +
//! nonce + eventInfo`, keyed with the subscription's secret
//! (`webhook_secret`), checked against the body exactly as it arrived. A
//! callback that fails the check, or any callback when no secret is
//! configured, is answered 401, counted, and has no effect.
//!
//! - `meeting.verify` (sent when the subscription is enabled) is answered
//!   `{"event":"meeting.verify","nonce":…}`.
//! - `meeting.started` becomes [`Discovery::Started`]: the meeting's title,
//!   schedule and chair password come from its details over the management
//!   API, read in the background so the platform gets its answer at once.
//! - `meeting.end` becomes [`Discovery::Ended`].
//! - Anything else is answered 200 and ignored. A nonce seen before is a
//!   redelivery: answered 200, acted on once.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::mpsc;

use super::inferred;
use super::wire::{self, EventInfo, VerifyReply, WebhookBody};
use crate::model::Secret;
use crate::platform::{Discovery, WebhookReply, WebhookRequest};

/// How many nonces are remembered to recognise redeliveries.
const NONCES_KEPT: usize = 1024;

/// What a verified callback asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Callback {
    /// Answer this (the verify handshake, or an event already handled).
    Answer(WebhookReply),
    /// A meeting started: look it up and report it.
    Started {
        /// The conference ID.
        meeting: String,
    },
    /// A meeting ended.
    Ended {
        /// The conference ID.
        meeting: String,
    },
}

/// Checks callbacks and remembers what was seen.
pub struct Webhook {
    secret: Option<Secret>,
    refusals: AtomicU64,
    nonces: Mutex<VecDeque<String>>,
}

impl Webhook {
    /// Callbacks signed with `secret`; none are accepted without one.
    pub fn new(secret: Option<Secret>) -> Self {
        Webhook {
            secret,
            refusals: AtomicU64::new(0),
            nonces: Mutex::new(VecDeque::new()),
        }
    }

    /// Callbacks refused so far (bad or missing signature, unreadable body).
    pub fn refusals(&self) -> u64 {
        self.refusals.load(Ordering::Relaxed)
    }

    /// Verifies one callback and says what it asks for; `Err` is the 401
    /// to answer.
    pub fn check(&self, request: &WebhookRequest) -> Result<Callback, WebhookReply> {
        let refuse = |why: &str| {
            self.refusals.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(reason = why, "refused a webhook callback");
            WebhookReply::refused(why)
        };
        let Some(secret) = &self.secret else {
            return Err(refuse("this platform has no webhook_secret configured"));
        };
        let Ok(body) = serde_json::from_slice::<WebhookBody>(&request.body) else {
            return Err(refuse("the body is not a Huawei event"));
        };
        let message = wire::webhook_message(
            &body.app_id,
            &body.timestamp_text(),
            &body.nonce,
            inferred::signed_event_info(body.event_info),
        );
        if !wire::hmac_hex_verify(
            secret.expose().as_bytes(),
            message.as_bytes(),
            &body.signature,
        ) {
            return Err(refuse("bad signature"));
        }
        let Ok(event) = serde_json::from_str::<EventInfo>(body.event_info.get()) else {
            return Err(refuse("eventInfo is not an event"));
        };
        if event.event == wire::MEETING_VERIFY {
            let reply = VerifyReply {
                event: wire::MEETING_VERIFY.to_owned(),
                nonce: body.nonce.clone(),
            };
            return Ok(Callback::Answer(WebhookReply::json(
                serde_json::to_string(&reply).unwrap_or_default(),
            )));
        }
        if !self.first_time(&body.nonce) {
            tracing::debug!(event = %event.event, "a webhook delivered again; already handled");
            return Ok(Callback::Answer(empty()));
        }
        let meeting = event.payload.meeting_info.meeting_id;
        Ok(match event.event.as_str() {
            wire::MEETING_STARTED if !meeting.is_empty() => Callback::Started { meeting },
            wire::MEETING_END if !meeting.is_empty() => Callback::Ended { meeting },
            other => {
                tracing::debug!(event = %other, "ignoring a webhook event");
                Callback::Answer(empty())
            }
        })
    }

    fn first_time(&self, nonce: &str) -> bool {
        if nonce.is_empty() {
            return true;
        }
        let mut nonces = self
            .nonces
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if nonces.iter().any(|seen| seen == nonce) {
            return false;
        }
        if nonces.len() == NONCES_KEPT {
            nonces.pop_front();
        }
        nonces.push_back(nonce.to_owned());
        true
    }
}

/// 200 with an empty body: what every event but the handshake gets.
pub fn empty() -> WebhookReply {
    WebhookReply {
        status: 200,
        content_type: "text/plain",
        body: String::new(),
    }
}

/// Reports an ended meeting.
pub fn report_end(discoveries: &mpsc::UnboundedSender<Discovery>, platform: &str, meeting: String) {
    tracing::info!(meeting = %meeting, "the platform says a meeting ended");
    let _ = discoveries.send(Discovery::Ended {
        platform: platform.to_owned(),
        alias: meeting,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signed(secret: &str, event_info: &str, nonce: &str) -> WebhookRequest {
        let signature = wire::hmac_hex(
            secret.as_bytes(),
            wire::webhook_message("app", "1700000000000", nonce, event_info).as_bytes(),
        );
        let body = format!(
            r#"{{"appID":"app","timestamp":1700000000000,"nonce":"{nonce}","signature":"{signature}","eventInfo":{event_info}}}"#
        );
        WebhookRequest {
            query: String::new(),
            headers: axum::http::HeaderMap::new(),
            body: body.into(),
        }
    }

    #[test]
    fn the_handshake_echoes_the_nonce() {
        let hook = Webhook::new(Some(Secret::new("s3cret")));
        let request = signed(
            "s3cret",
            r#"{"event":"meeting.verify","timestamp":1}"#,
            "n1",
        );
        let Ok(Callback::Answer(reply)) = hook.check(&request) else {
            panic!("answered");
        };
        assert_eq!(reply.status, 200);
        let echoed: VerifyReply = serde_json::from_str(&reply.body).unwrap();
        assert_eq!(echoed.nonce, "n1");
        assert_eq!(echoed.event, "meeting.verify");
    }

    #[test]
    fn events_are_checked_against_the_raw_body() {
        let hook = Webhook::new(Some(Secret::new("s3cret")));
        // Spacing as sent: a re-serialized eventInfo would not match.
        let info = r#"{ "event": "meeting.started", "payload": {"meetingInfo": {"meetingID": "900487914"}}}"#;
        assert_eq!(
            hook.check(&signed("s3cret", info, "n2")),
            Ok(Callback::Started {
                meeting: "900487914".into()
            })
        );
        assert_eq!(
            hook.check(&signed("s3cret", info, "n2")),
            Ok(Callback::Answer(empty()))
        );
        let end = r#"{"event":"meeting.end","payload":{"meetingInfo":{"meetingID":"900487914"}}}"#;
        assert_eq!(
            hook.check(&signed("s3cret", end, "n3")),
            Ok(Callback::Ended {
                meeting: "900487914".into()
            })
        );
        assert_eq!(hook.refusals(), 0);
    }

    #[test]
    fn bad_signatures_and_bodies_are_refused_and_counted() {
        let hook = Webhook::new(Some(Secret::new("s3cret")));
        let info = r#"{"event":"meeting.started","payload":{"meetingInfo":{"meetingID":"1"}}}"#;
        let forged = hook.check(&signed("guess", info, "n4")).unwrap_err();
        assert_eq!(forged.status, 401);
        let mut tampered = signed("s3cret", info, "n5");
        let text = String::from_utf8(tampered.body.to_vec()).unwrap();
        tampered.body = text.replace("\"1\"", "\"2\"").into();
        assert_eq!(hook.check(&tampered).unwrap_err().status, 401);
        let mut garbage = signed("s3cret", info, "n6");
        garbage.body = "not json".into();
        assert_eq!(hook.check(&garbage).unwrap_err().status, 401);
        assert_eq!(hook.refusals(), 3);
        let closed = Webhook::new(None);
        assert_eq!(
            closed
                .check(&signed("s3cret", info, "n7"))
                .unwrap_err()
                .status,
            401
        );
        assert_eq!(closed.refusals(), 1);
    }
}
