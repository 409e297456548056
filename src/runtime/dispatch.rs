//! The dispatcher: the one place where commands leave usher.
//!
//! Each room has one dispatcher task. It sends the room's commands in the
//! order they were decided, paced by a token bucket, and records every
//! outcome in the audit log, the room's status and the activity feed.
//!
//! - Retryable failures (5xx, rate limits, timeouts, connection errors) are
//!   retried with exponential backoff and jitter, up to the configured
//!   attempts, never sooner than the platform asked.
//! - Expired credentials are the adapter's business: it renews them and
//!   retries once before it answers.
//! - A refusal is never retried; it is reported, like a command the
//!   platform turns out not to support.
//! - On shutdown the command being sent is finished and the ones still
//!   queued are recorded as cancelled, never silently lost.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use tokio::sync::{broadcast, mpsc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::activity::Activity;
use super::audit::{AuditRecord, AuditSink, Outcome};
use super::status::RoomStatus;
use crate::clock::unix_now;
use crate::limits::MAX_RETRY_AFTER;
use crate::platform::{RoomLink, SendOutcome};
use crate::rules::Intent;

/// A command to send.
#[derive(Debug)]
pub struct Job {
    /// Its id, reported back when done.
    pub id: u64,
    /// The intent it carries out.
    pub intent: Intent,
    /// When it was decided, for the latency.
    pub decided_at: Instant,
}

/// A finished job, reported back to the room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Done {
    /// The job's id.
    pub id: u64,
    /// The platform carried it out.
    pub ok: bool,
    /// When the dispatcher was done with it.
    pub at: Instant,
}

/// Jobs the dispatcher has finished, waiting for the room to take note.
/// A mailbox rather than a channel: the room reads it whenever it next
/// plans, so nothing needs waking, and a quiet room pays a few bytes for it
/// instead of a channel's kilobyte.
#[derive(Debug, Default)]
pub struct Finished(Mutex<Vec<Done>>);

impl Finished {
    fn push(&self, done: Done) {
        self.lock().push(done);
    }

    /// Takes what was finished since the last call, oldest first.
    pub fn take(&self) -> Vec<Done> {
        std::mem::take(&mut *self.lock())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Done>> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// How commands are paced and retried.
#[derive(Debug, Clone, Copy)]
pub struct Pacing {
    /// Commands per second, sustained.
    pub rate: f64,
    /// Commands at once before the rate applies.
    pub burst: u32,
    /// Attempts for transient failures.
    pub attempts: u32,
}

/// Where outcomes are reported.
#[derive(Clone)]
pub struct Reporting {
    /// The room's alias.
    pub room: String,
    /// The audit log.
    pub audit: AuditSink,
    /// The room's status.
    pub status: Arc<RoomStatus>,
    /// The activity feed.
    pub activity: broadcast::Sender<Activity>,
}

impl Reporting {
    /// Records a command's outcome everywhere it belongs.
    pub fn record(&self, record: AuditRecord) {
        self.status.command(&record);
        if self.activity.receiver_count() > 0 {
            let _ = self
                .activity
                .send(Activity::Command(Box::new(record.clone())));
        }
        self.audit.record(record);
    }
}

/// Starts a room's dispatcher. Jobs go in through the returned sender
/// (boxed: a channel allocates room for 32 items at once, and most rooms are
/// quiet) and finished ones are reported in the returned [`Finished`]. The task ends when the sender is
/// dropped and the queue is empty, or when `cancel` fires (the queue is then
/// recorded as cancelled).
pub fn spawn(
    link: Arc<dyn RoomLink>,
    pacing: Pacing,
    reporting: Reporting,
    cancel: CancellationToken,
) -> (
    mpsc::UnboundedSender<Box<Job>>,
    Arc<Finished>,
    tokio::task::JoinHandle<()>,
) {
    let (jobs, mut queue) = mpsc::unbounded_channel::<Box<Job>>();
    let finished = Arc::new(Finished::default());
    let done = finished.clone();
    let task = tokio::spawn(async move {
        let mut bucket = TokenBucket::new(pacing.rate, pacing.burst);
        loop {
            let job = tokio::select! {
                biased;
                _ = cancel.cancelled() => break,
                job = queue.recv() => match job {
                    Some(job) => job,
                    None => return,
                },
            };
            tokio::select! {
                biased;
                _ = cancel.cancelled() => {
                    cancelled(&reporting, &job);
                    break;
                }
                _ = bucket.take() => {}
            }
            let (outcome, error, attempts) =
                Box::pin(send(link.as_ref(), &job, pacing.attempts, &cancel)).await;
            let mut record =
                AuditRecord::for_intent(&reporting.room, &job.intent, outcome, unix_now());
            record.attempts = attempts;
            record.latency_ms = Some(job.decided_at.elapsed().as_secs_f64() * 1000.0);
            if let Some(error) = &error {
                tracing::warn!(rule = %job.intent.rule, command = %job.intent.command, attempts, "{error}");
                reporting
                    .status
                    .update(|status| status.note_error(format!("{}: {error}", job.intent.command)));
            } else {
                tracing::info!(rule = %job.intent.rule, command = %job.intent.command, "sent");
            }
            record.error = error;
            reporting.record(record);
            done.push(Done {
                id: job.id,
                ok: outcome == Outcome::Ok,
                at: Instant::now(),
            });
        }
        queue.close();
        while let Ok(job) = queue.try_recv() {
            cancelled(&reporting, &job);
        }
    });
    (jobs, finished, task)
}

const SHUTTING_DOWN: &str = "usher was shutting down";

fn cancelled(reporting: &Reporting, job: &Job) {
    let mut record =
        AuditRecord::for_intent(&reporting.room, &job.intent, Outcome::Cancelled, unix_now());
    record.error = Some(SHUTTING_DOWN.to_owned());
    reporting.record(record);
}

/// Sends one command, retrying what may pass, never sooner than the
/// platform asked (capped at [`MAX_RETRY_AFTER`]). A wait for a retry ends
/// when `cancel` fires.
async fn send(
    link: &dyn RoomLink,
    job: &Job,
    attempts: u32,
    cancel: &CancellationToken,
) -> (Outcome, Option<String>, u32) {
    let mut delays = ExponentialBuilder::new()
        .with_min_delay(Duration::from_millis(200))
        .with_max_delay(Duration::from_secs(5))
        .with_jitter()
        .with_max_times(attempts.saturating_sub(1) as usize)
        .build();
    let mut attempt = 0;
    loop {
        attempt += 1;
        match link.send(&job.intent.command).await {
            SendOutcome::Done => return (Outcome::Ok, None, attempt),
            SendOutcome::Retryable {
                reason,
                retry_after,
            } => match delays.next() {
                Some(delay) => {
                    let delay =
                        retry_after.map_or(delay, |asked| asked.min(MAX_RETRY_AFTER).max(delay));
                    tracing::debug!(command = %job.intent.command, error = %reason, retry_in = ?delay, "retrying");
                    tokio::select! {
                        _ = cancel.cancelled() => {
                            return (Outcome::Cancelled, Some(SHUTTING_DOWN.to_owned()), attempt);
                        }
                        _ = tokio::time::sleep(delay) => {}
                    }
                }
                None => return (Outcome::Failed, Some(reason), attempt),
            },
            SendOutcome::Refused(reason) => return (Outcome::Failed, Some(reason), attempt),
            SendOutcome::Unsupported(reason) => {
                return (Outcome::Unsupported, Some(reason), attempt);
            }
        }
    }
}

/// Paces commands: `burst` at once, then `rate` per second.
struct TokenBucket {
    rate: f64,
    capacity: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    fn new(rate: f64, burst: u32) -> Self {
        let capacity = f64::from(burst.max(1));
        TokenBucket {
            rate,
            capacity,
            tokens: capacity,
            last: Instant::now(),
        }
    }

    async fn take(&mut self) {
        loop {
            let now = Instant::now();
            self.tokens = (self.tokens + now.duration_since(self.last).as_secs_f64() * self.rate)
                .min(self.capacity);
            self.last = now;
            if self.tokens >= 1.0 {
                self.tokens -= 1.0;
                return;
            }
            let wait = (1.0 - self.tokens) / self.rate;
            tokio::time::sleep(Duration::from_secs_f64(wait)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_bucket_allows_a_burst_then_the_rate() {
        let mut bucket = TokenBucket::new(10.0, 3);
        let start = Instant::now();
        for _ in 0..3 {
            bucket.take().await;
        }
        assert!(
            start.elapsed() < Duration::from_millis(1),
            "the burst is immediate"
        );
        for _ in 0..5 {
            bucket.take().await;
        }
        let paced = start.elapsed().as_secs_f64();
        assert!(
            (0.45..0.6).contains(&paced),
            "5 more at 10/s take about 0.5 s, took {paced}"
        );
    }
}
