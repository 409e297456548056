//! The simulator's webhook sender: one task per room POSTs its callbacks,
//! in order, to every URL of the room's `webhookConfig`, signed when the
//! simulator has a secret, and delivers again after a failed attempt (an
//! answer other than 2xx, or none), as Agora's notification service does.
//!
//! Faults are decided per callback when it is made (see
//! [`CallbackFaults`]): a dropped callback never leaves (its sequence is
//! spent), a duplicated one is POSTed twice, a reordered one is sent after
//! the callback that follows it (or after a short wait if none follows),
//! and a badly signed one goes out first with a wrong signature, then again
//! with the right one.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::future::join_all;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::model::Secret;
use crate::platform::agora::auth::signature_headers;
use crate::platform::agora::wire::Callback;

/// Attempts per callback and URL before the sender gives up on it.
const ATTEMPTS: u32 = 4;
/// The wait before the second attempt; doubled for each after it.
const FIRST_RETRY: Duration = Duration::from_millis(100);
/// How long a reordered callback waits for one to overtake it.
const REORDER_WAIT: Duration = Duration::from_millis(300);

/// Faults waiting to hit a room's next callbacks.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CallbackFaults {
    /// Callbacks never sent.
    pub drop: u32,
    /// Callbacks sent twice.
    pub duplicate: u32,
    /// Callbacks sent after their successor.
    pub reorder: u32,
    /// Callbacks first sent with a wrong signature.
    pub bad_signature: u32,
}

/// What becomes of one callback.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Fate {
    /// Sent twice.
    pub duplicate: bool,
    /// Sent after the next one.
    pub reorder: bool,
    /// First sent with a wrong signature.
    pub bad_signature: bool,
}

impl CallbackFaults {
    /// The fate of the next callback, `None` when it is dropped; uses up
    /// one of each pending fault.
    pub fn fate_of_next(&mut self) -> Option<Fate> {
        let take = |count: &mut u32| {
            let hit = *count > 0;
            *count = count.saturating_sub(1);
            hit
        };
        if take(&mut self.drop) {
            return None;
        }
        Some(Fate {
            duplicate: take(&mut self.duplicate),
            reorder: take(&mut self.reorder),
            bad_signature: take(&mut self.bad_signature),
        })
    }
}

/// One callback on its way.
#[derive(Debug)]
pub struct Outgoing {
    /// The callback.
    pub callback: Callback,
    /// Where it goes.
    pub urls: Vec<String>,
    /// What happens to it.
    pub fate: Fate,
}

/// What the sender did, for tests and benchmarks.
#[derive(Debug, Default)]
pub struct DeliveryCounters {
    posts: AtomicU64,
    accepted: AtomicU64,
    refused: AtomicU64,
    failed: AtomicU64,
    abandoned: AtomicU64,
}

/// A snapshot of [`DeliveryCounters`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryStats {
    /// POSTs made (attempts included).
    pub posts: u64,
    /// POSTs answered 2xx.
    pub accepted: u64,
    /// POSTs answered 401.
    pub refused: u64,
    /// POSTs answered otherwise, or not at all.
    pub failed: u64,
    /// Callbacks given up on after every attempt.
    pub abandoned: u64,
}

impl DeliveryCounters {
    /// The counts so far.
    pub fn stats(&self) -> DeliveryStats {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        DeliveryStats {
            posts: read(&self.posts),
            accepted: read(&self.accepted),
            refused: read(&self.refused),
            failed: read(&self.failed),
            abandoned: read(&self.abandoned),
        }
    }
}

/// Starts a room's sender; it ends when the sender half is dropped or
/// `stop` fires.
pub fn spawn(
    client: reqwest::Client,
    secret: Option<Secret>,
    counters: Arc<DeliveryCounters>,
    stop: CancellationToken,
) -> mpsc::UnboundedSender<Outgoing> {
    let (queue, mut items) = mpsc::unbounded_channel::<Outgoing>();
    let sender = Sender {
        client,
        secret,
        counters,
    };
    tokio::spawn(async move {
        let mut held: Option<Outgoing> = None;
        loop {
            let wait = async {
                match held {
                    Some(_) => tokio::time::sleep(REORDER_WAIT).await,
                    None => std::future::pending().await,
                }
            };
            let item = tokio::select! {
                _ = stop.cancelled() => return,
                item = items.recv() => item,
                _ = wait => None,
            };
            match item {
                Some(item) if item.fate.reorder && held.is_none() => held = Some(item),
                Some(item) => {
                    sender.deliver(&item).await;
                    if let Some(late) = held.take() {
                        sender.deliver(&late).await;
                    }
                }
                None => match held.take() {
                    Some(late) => sender.deliver(&late).await,
                    None if items.is_closed() => return,
                    None => {}
                },
            }
        }
    });
    queue
}

struct Sender {
    client: reqwest::Client,
    secret: Option<Secret>,
    counters: Arc<DeliveryCounters>,
}

impl Sender {
    async fn deliver(&self, item: &Outgoing) {
        let Ok(body) = serde_json::to_vec(&item.callback) else {
            return;
        };
        let copies = if item.fate.duplicate { 2 } else { 1 };
        for _ in 0..copies {
            join_all(
                item.urls
                    .iter()
                    .map(|url| self.post(url, &body, item.fate.bad_signature)),
            )
            .await;
        }
    }

    /// POSTs until answered 2xx or out of attempts.
    async fn post(&self, url: &str, body: &[u8], bad_signature: bool) {
        let mut delay = FIRST_RETRY;
        for attempt in 0..ATTEMPTS {
            let mut request = self
                .client
                .post(url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.to_vec());
            if let Some(secret) = &self.secret {
                let signed_with = if bad_signature && attempt == 0 {
                    Secret::new(format!("not-{}", secret.expose()))
                } else {
                    secret.clone()
                };
                for (name, value) in signature_headers(&signed_with, body) {
                    request = request.header(name, value);
                }
            }
            self.counters.posts.fetch_add(1, Ordering::Relaxed);
            match request.send().await {
                Ok(response) if response.status().is_success() => {
                    self.counters.accepted.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                Ok(response) if response.status().as_u16() == 401 => {
                    self.counters.refused.fetch_add(1, Ordering::Relaxed);
                }
                Ok(_) | Err(_) => {
                    self.counters.failed.fetch_add(1, Ordering::Relaxed);
                }
            }
            tokio::time::sleep(delay).await;
            delay *= 2;
        }
        self.counters.abandoned.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(url = %url, "gave up delivering an Agora callback");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_are_used_up_one_callback_at_a_time() {
        let mut faults = CallbackFaults {
            drop: 1,
            duplicate: 2,
            reorder: 1,
            bad_signature: 0,
        };
        assert_eq!(faults.fate_of_next(), None);
        assert_eq!(
            faults.fate_of_next(),
            Some(Fate {
                duplicate: true,
                reorder: true,
                bad_signature: false
            })
        );
        assert_eq!(
            faults.fate_of_next(),
            Some(Fate {
                duplicate: true,
                ..Fate::default()
            })
        );
        assert_eq!(faults.fate_of_next(), Some(Fate::default()));
    }
}
