//! The feed of one watched room: its callbacks applied in order, and its
//! member list reconciled on connect, on a timer and after any doubt.
//!
//! [`run`] owns the room's [`Tracker`](super::tracker::Tracker) updates. It reports
//! [`FeedItem::Connected`] and a roster (with the room's flags) when the
//! first listing succeeds; later listings report a roster only when they
//! disagree on who is present, and otherwise what they add (names, roles)
//! participant by participant, so a quiet room's reconcile reports nothing.
//! A listing that fails reports [`FeedItem::Disconnected`] and is retried
//! with backoff, while callbacks go on being applied (silently: the roster
//! of the next successful listing carries them).
//! A reconcile is due:
//! - every `reconcile` interval (30 s by default);
//! - at once (50 ms, to gather a crowd) after a member enters whom no
//!   listing has named: their join is reported with it;
//! - soon after a doubt: a seat taken by someone unknown, two changes in
//!   one millisecond;
//! - when callbacks were lost to a full queue;
//! - when a command was done whose effect no callback reports (a role).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::TencentLink;
use super::rest::RestError;
use crate::clock::unix_now;
use crate::platform::{CappedBackoff, FeedItem};

/// How long after a doubt the room is listed: doubts in a burst share one
/// listing.
pub const DOUBT_DELAY: Duration = Duration::from_millis(500);

/// How long after someone enters unnamed the room is listed: long enough
/// for a crowd entering together to share a listing, short enough that
/// their joins are not noticeably late.
pub const NAME_DELAY: Duration = Duration::from_millis(50);

/// Follows the room until `cancel` fires or `sink` is gone.
pub(crate) async fn run(
    link: Arc<TencentLink>,
    sink: mpsc::Sender<Box<FeedItem>>,
    cancel: CancellationToken,
) {
    let Some(mut inbox) = link.take_inbox() else {
        tracing::error!("the room's feed was started twice; the second one does nothing");
        return;
    };
    let options = link.feed_options();
    let builder = CappedBackoff::new(options.min_backoff, options.max_backoff);
    let mut backoff = builder.start();
    let every = link.reconcile_every();
    let mut in_sync = false;
    let mut due = Instant::now();
    loop {
        if due <= Instant::now() || link.missed.swap(false, Ordering::Relaxed) {
            let started = Instant::now();
            let listing = tokio::select! {
                _ = cancel.cancelled() => return,
                listing = link.rest().listing(link.room()) => listing,
            };
            let items = match listing {
                Ok(listing) => {
                    let events = link
                        .tracker()
                        .reconcile(&listing, started, unix_now(), !in_sync);
                    backoff = builder.start();
                    due = Instant::now() + every;
                    let mut items = Vec::with_capacity(events.len() + 1);
                    if !in_sync {
                        tracing::info!("room listed; following its callbacks");
                        items.push(FeedItem::Connected);
                        in_sync = true;
                    }
                    items.extend(events.into_iter().map(FeedItem::Event));
                    items
                }
                Err(err) => {
                    let delay = backoff.next().unwrap_or(options.max_backoff);
                    let retry_in = match &err {
                        RestError::Transient {
                            retry_after: Some(asked),
                            ..
                        } => delay.max(*asked),
                        _ => delay,
                    };
                    tracing::warn!(error = %err, retry_in = ?retry_in, "cannot list the room");
                    in_sync = false;
                    due = Instant::now() + retry_in;
                    vec![FeedItem::Disconnected {
                        reason: err.to_string(),
                        retry_in,
                    }]
                }
            };
            for item in items {
                if sink.send(Box::new(item)).await.is_err() {
                    return;
                }
            }
            continue;
        }
        tokio::select! {
            biased;
            _ = cancel.cancelled() => return,
            callback = inbox.recv() => {
                let Some(callback) = callback else { return };
                let applied = link.tracker().apply(&callback, Instant::now());
                if applied.names_wanted {
                    due = due.min(Instant::now() + NAME_DELAY);
                }
                if applied.doubt {
                    due = due.min(Instant::now() + DOUBT_DELAY);
                }
                if in_sync {
                    for event in applied.events {
                        if sink.send(Box::new(FeedItem::Event(event))).await.is_err() {
                            return;
                        }
                    }
                }
            }
            _ = link.reconcile_wanted.notified() => {
                due = due.min(Instant::now() + DOUBT_DELAY);
            }
            _ = tokio::time::sleep_until(due) => {}
        }
    }
}
