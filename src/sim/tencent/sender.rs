//! Callbacks out: POSTs every room change to the webhook URL, in order, one
//! at a time, with the five query parameters and, when a callback token is
//! set, `Sign` and `RequestTime`; and plays the callback faults.
//!
//! Faults, per room, for its next `count` callbacks: dropped (never sent),
//! duplicated (sent twice), reordered (held until `count` have gathered, or
//! a second has passed, then sent last first), badly signed (a wrong `Sign`,
//! or a wrong `SdkAppid` when no token is set) and expired (signed for a
//! `RequestTime` five minutes ago).
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
    let mut held: HashMap<String, Vec<Outgoing>> = HashMap::new();
    loop {
        let next = if held.is_empty() {
            outbox.recv().await
        } else {
            match tokio::time::timeout(HOLD_AT_MOST, outbox.recv()).await {
                Ok(next) => next,
                Err(_) => {
                    for (_, callbacks) in held.drain() {
                        let count = callbacks.len();
                        send_reversed(&shared, &client, callbacks).await;
                        shared.done_with(count);
                    }
                    continue;
                }
            }
        };
        let Some(callback) = next else { return };
        let plan = shared.plan(&callback.room);
        match plan {
            Plan::Drop => {
                shared.record(&callback, None, Some("dropped"));
                shared.done_with(1);
            }
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
            Plan::Hold { last } => {
                let room = callback.room.clone();
                held.entry(room.clone()).or_default().push(callback);
                if last && let Some(callbacks) = held.remove(&room) {
                    let count = callbacks.len();
                    send_reversed(&shared, &client, callbacks).await;
                    shared.done_with(count);
                }
            }
            Plan::Sign(signing) => {
                let fault = match signing {
                    Signing::Right => None,
                    Signing::Wrong => Some("bad signature"),
                    Signing::Expired => Some("expired signature"),
                };
                send(&shared, &client, &callback, signing, fault).await;
                shared.done_with(1);
            }
        }
    }
}

/// What to do with the next callback of a room.
pub(super) enum Plan {
    /// Do not send it.
    Drop,
    /// Send it twice.
    Duplicate,
    /// Hold it; `last` when the held ones are now to go out, last first.
    Hold {
        /// This is the last one to hold.
        last: bool,
    },
    /// Send it, signed so.
    Sign(Signing),
}

async fn send_reversed(shared: &Shared, client: &reqwest::Client, callbacks: Vec<Outgoing>) {
    for callback in callbacks.into_iter().rev() {
        send(shared, client, &callback, Signing::Right, Some("reordered")).await;
    }
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
