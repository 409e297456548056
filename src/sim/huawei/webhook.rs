//! The simulated enterprise webhook (reference §1.2.b): signed POSTs to
//! one URL, in order, after the `meeting.verify` handshake.
//!
//! The body is written by hand around the exact `eventInfo` text that was
//! signed, so the receiver can (and must) check the signature against the
//! raw body. A handshake whose answer does not echo the nonce is logged;
//! events are sent anyway, as a misconfigured subscription would.

use serde_json::json;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::WebhookTarget;
use crate::platform::huawei::wire::{self, VerifyReply};

/// What the webhook tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Notice {
    /// A meeting started.
    Started(String),
    /// A meeting ended.
    Ended(String),
}

/// Starts the sender; notices go through the returned channel, in order.
pub(super) fn spawn(
    target: WebhookTarget,
    stop: CancellationToken,
) -> mpsc::UnboundedSender<Notice> {
    let (notices, mut queue) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let client = reqwest::Client::new();
        verify(&client, &target).await;
        loop {
            let notice = tokio::select! {
                _ = stop.cancelled() => return,
                notice = queue.recv() => match notice {
                    Some(notice) => notice,
                    None => return,
                },
            };
            let (event, meeting) = match &notice {
                Notice::Started(meeting) => (wire::MEETING_STARTED, meeting),
                Notice::Ended(meeting) => (wire::MEETING_END, meeting),
            };
            match send(&client, &target, event, meeting).await {
                Ok((status, _)) => info!(event, meeting = %meeting, status, "webhook sent"),
                Err(err) => warn!(event, meeting = %meeting, "webhook failed: {err}"),
            }
        }
    });
    notices
}

/// The handshake: `meeting.verify`, whose answer must echo the nonce.
async fn verify(client: &reqwest::Client, target: &WebhookTarget) {
    match send(client, target, wire::MEETING_VERIFY, "").await {
        Ok((200, body)) => match serde_json::from_str::<VerifyReply>(&body) {
            Ok(reply) if reply.event == wire::MEETING_VERIFY => {
                info!("webhook receiver verified");
            }
            _ => warn!("the webhook receiver did not echo meeting.verify's nonce"),
        },
        Ok((status, _)) => warn!(status, "the webhook receiver refused meeting.verify"),
        Err(err) => warn!("meeting.verify failed: {err}"),
    }
}

/// Signs and posts one event; the status and body answered.
async fn send(
    client: &reqwest::Client,
    target: &WebhookTarget,
    event: &str,
    meeting: &str,
) -> Result<(u16, String), String> {
    let now = (crate::clock::unix_now() * 1000.0) as i64;
    let nonce = format!("{:032x}", fastrand::u128(..));
    let event_info = json!({
        "event": event,
        "timestamp": now,
        "payload": {
            "meetingInfo": {
                "meetingID": meeting,
                "meetingUUID": format!("uuid-{meeting}"),
                "meetingCycleSubID": "",
            },
        },
    })
    .to_string();
    let timestamp = now.to_string();
    let signature = wire::hmac_hex(
        target.secret.as_bytes(),
        wire::webhook_message(&target.app_id, &timestamp, &nonce, &event_info).as_bytes(),
    );
    let body = format!(
        r#"{{"appID":{},"timestamp":{timestamp},"nonce":"{nonce}","signature":"{signature}","eventInfo":{event_info}}}"#,
        json!(target.app_id)
    );
    let response = client
        .post(target.url.clone())
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .map_err(|err| err.without_url().to_string())?;
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    Ok((status, text))
}
