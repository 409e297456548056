//! Callbacks out: POSTs every room change to the webhook URL, in order, one
//! at a time, with the five query parameters and, when a callback token is
//! set, `Sign` and `RequestTime`; and plays the callback faults.
//!
//! Faults, per room, for its next `count` callbacks: dropped (never sent),
//! duplicated (sent twice), reordered (each sent after the one that follows
//! it, or after a second if none follows), badly signed (a wrong `Sign`, or a
//! wrong `SdkAppid` when no token is set) and expired (signed for a
//! `RequestTime` five minutes ago). A badly signed or expired callback is
//! sent again, signed right, as a platform resends what was not accepted
//! (Tencent's retry policy is not documented: the simulator resends at once).
//!
//! A simulator started with `collect_callbacks` keeps them, ready to send,
//! instead of POSTing them: benchmarks hand them to usher's webhook path
//! directly.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::mpsc;

use super::Shared;
use super::room::Outgoing;
use crate::clock::unix_now;
use crate::model::Secret;
use crate::platform::tencent::auth::callback_sign;

/// How long reordered callbacks are held at most before they go out.
const HOLD_AT_MOST: Duration = Duration::from_secs(1);

/// How far in the past an "expired" signature is dated.
const EXPIRED_BY: i64 = 300;

/// What became of one callback.
#[derive(Debug, Clone, PartialEq)]
pub struct SentCallback {
    /// The room it was about.
    pub room: String,
    /// Its `CallbackCommand`.
    pub command: &'static str,
    /// The HTTP status usher answered; `None` when it was not sent (dropped,
    /// no webhook URL) or the request failed.
    pub status: Option<u16>,
    /// The fault played on it, if any.
    pub fault: Option<&'static str>,
    /// When it was handled.
    pub at: SystemTime,
}

/// How one callback is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Signing {
    /// As the platform would.
    Right,
    /// With a wrong signature.
    Wrong,
    /// Signed for a time long past.
    Expired,
}

/// Sends the outbox's callbacks until it closes.
pub(super) async fn run(shared: Arc<Shared>, mut outbox: mpsc::UnboundedReceiver<Outgoing>) {
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
    {
        Ok(client) => client,
        Err(err) => {
            tracing::error!("the simulator cannot send callbacks: {err}");
            return;
        }
    };
    // Per room, callbacks held back to go after the next one.
    let mut held: HashMap<String, Vec<Outgoing>> = HashMap::new();
    loop {
        let next = if held.is_empty() {
            outbox.recv().await
        } else {
            match tokio::time::timeout(HOLD_AT_MOST, outbox.recv()).await {
                Ok(next) => next,
                Err(_) => {
                    for (_, callbacks) in held.drain() {
                        send_held(&shared, &client, callbacks).await;
                    }
                    continue;
                }
            }
        };
        let Some(callback) = next else { return };
        let room = callback.room.clone();
        let plan = shared.plan(&room);
        let holding = matches!(plan, Plan::Hold);
        match plan {
            Plan::Drop => {
                shared.record(&callback, None, Some("dropped"));
                shared.done_with(1);
            }
            Plan::Hold => held
                .entry(callback.room.clone())
                .or_default()
                .push(callback),
            Plan::Duplicate => {
                send(
                    &shared,
                    &client,
                    &callback,
                    Signing::Right,
                    Some("duplicated"),
                )
                .await;
                send(
                    &shared,
                    &client,
                    &callback,
                    Signing::Right,
                    Some("duplicated"),
                )
                .await;
                shared.done_with(1);
            }
            Plan::Sign(signing) => {
                let fault = match signing {
                    Signing::Right => None,
                    Signing::Wrong => Some("bad signature"),
                    Signing::Expired => Some("expired signature"),
                };
                send(&shared, &client, &callback, signing, fault).await;
                if signing != Signing::Right {
                    // The platform sends again what was not accepted.
                    send(&shared, &client, &callback, Signing::Right, Some("resent")).await;
                }
                shared.done_with(1);
            }
        }
        if !holding && let Some(callbacks) = held.remove(&room) {
            send_held(&shared, &client, callbacks).await;
        }
    }
}

/// What to do with the next callback of a room.
pub(super) enum Plan {
    /// Do not send it.
    Drop,
    /// Send it twice.
    Duplicate,
    /// Send it after the room's next callback.
    Hold,
    /// Send it, signed so (and, signed wrongly, once more signed right).
    Sign(Signing),
}

/// Held callbacks go out last held first, each after the one that came
/// after it.
async fn send_held(shared: &Shared, client: &reqwest::Client, callbacks: Vec<Outgoing>) {
    let count = callbacks.len();
    for callback in callbacks.into_iter().rev() {
        send(shared, client, &callback, Signing::Right, Some("reordered")).await;
    }
    shared.done_with(count);
}

async fn send(
    shared: &Shared,
    client: &reqwest::Client,
    callback: &Outgoing,
    signing: Signing,
    fault: Option<&'static str>,
) {
    let query = query(shared, callback, signing);
    let body = callback.body.to_string();
    if shared.collecting() {
        shared.collect(Delivery { query, body });
        shared.record(callback, None, fault);
        return;
    }
    let Some(mut url) = shared.webhook_to() else {
        shared.record(callback, None, fault);
        return;
    };
    url.set_query(Some(&query));
    let status = match client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await
    {
        Ok(response) => Some(response.status().as_u16()),
        Err(err) => {
            tracing::warn!(room = %callback.room, callback = callback.command, "could not deliver a callback: {}", err.without_url());
            None
        }
    };
    shared.record(callback, status, fault);
}

/// A callback's query string: the five parameters, and `Sign` and
/// `RequestTime` when the app has a callback token.
fn query(shared: &Shared, callback: &Outgoing, signing: Signing) -> String {
    let app = match (signing, shared.token()) {
        (Signing::Wrong, None) => shared.sdk_app_id() + 1,
        _ => shared.sdk_app_id(),
    };
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    query
        .append_pair("SdkAppid", &app.to_string())
        .append_pair("CallbackCommand", callback.command)
        .append_pair("contenttype", "json")
        .append_pair("ClientIP", "127.0.0.1")
        .append_pair("OptPlatform", callback.platform);
    if let Some(token) = shared.token() {
        let now = unix_now() as i64;
        let (time, key) = match signing {
            Signing::Right => (now, token.clone()),
            Signing::Wrong => (now, Secret::new(format!("not-{}", token.expose()))),
            Signing::Expired => (now - EXPIRED_BY, token.clone()),
        };
        let time = time.to_string();
        query
            .append_pair("Sign", &callback_sign(&key, &time))
            .append_pair("RequestTime", &time);
    }
    query.finish()
}

/// A callback collected instead of sent, as it would have gone out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The URL's query string.
    pub query: String,
    /// The JSON body.
    pub body: String,
}
