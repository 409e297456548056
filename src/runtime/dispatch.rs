//! The dispatcher: the one place where commands leave usher.
//!
//! Each room has one dispatcher task. It sends the room's commands paced by
//! a token bucket, and records every outcome in the audit log, the room's
//! status and the activity feed.
//!
//! - The room's queue is bounded ([`Pacing::queue`]). When it is full, the
//!   rule with the longest backlog loses its newest command to make room for
//!   another rule's; a command of that rule itself is not queued. Either
//!   way the room audits what was not queued as `overflow`.
//! - Each rule has its own queue, and the dispatcher takes from them in
//!   turn: one rule's backlog never delays another rule's commands by more
//!   than one command each. Within a rule, commands go in the order decided.
//! - Retryable failures (5xx, rate limits, timeouts, connection errors) are
//!   retried with exponential backoff and jitter, up to the configured
//!   attempts, never sooner than the platform asked.
//! - Expired credentials are the adapter's business: it renews them and
//!   retries once before it answers.
//! - A refusal is never retried; it is reported, like a command the
//!   platform turns out not to support.
//! - On shutdown the command being sent is finished and the ones still
//!   queued are recorded as cancelled, never silently lost.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use tokio::sync::{Notify, broadcast};
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
    /// Commands a room may hold waiting to be sent.
    pub queue: usize,
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
        self.status
            .update(|status| status.count_command(&record.command, record.outcome.as_str()));
        if self.activity.receiver_count() > 0 {
            let _ = self
                .activity
                .send(Activity::Command(Box::new(record.clone())));
        }
        self.audit.record(record);
    }
}

/// The commands waiting in one room: one queue per rule, taken in turn,
/// bounded in all.
#[derive(Debug)]
struct JobQueue {
    waiting: Mutex<Waiting>,
    ready: Notify,
    bound: usize,
}

#[derive(Debug, Default)]
struct Waiting {
    /// Each rule with commands waiting, the one whose turn it is first.
    rules: VecDeque<(Arc<str>, VecDeque<Box<Job>>)>,
    len: usize,
    closed: bool,
}

impl JobQueue {
    fn lock(&self) -> std::sync::MutexGuard<'_, Waiting> {
        self.waiting
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queues `job`. When the queue is full, the newest command of the
    /// rule with the longest backlog makes room for it (and is handed
    /// back), unless that rule is the job's own.
    fn push(&self, job: Box<Job>) -> Result<Option<Box<Job>>, Refused> {
        let mut waiting = self.lock();
        if waiting.closed {
            return Err(Refused::Stopped(job));
        }
        let rule = job.intent.rule.clone();
        let mut displaced = None;
        if waiting.len >= self.bound {
            let own = waiting
                .rules
                .iter()
                .find(|(name, _)| *name == rule)
                .map_or(0, |(_, jobs)| jobs.len());
            let longest = waiting
                .rules
                .iter_mut()
                .max_by_key(|(_, jobs)| jobs.len())
                .filter(|(name, jobs)| *name != rule && jobs.len() > own + 1);
            let Some((_, jobs)) = longest else {
                return Err(Refused::Full(job));
            };
            displaced = jobs.pop_back();
            waiting.len -= 1;
        }
        waiting.len += 1;
        match waiting.rules.iter_mut().find(|(name, _)| *name == rule) {
            Some((_, jobs)) => jobs.push_back(job),
            None => waiting.rules.push_back((rule, VecDeque::from([job]))),
        }
        drop(waiting);
        self.ready.notify_one();
        Ok(displaced)
    }

    /// The next rule's next job, if any; the rule then goes to the back.
    fn pop(waiting: &mut Waiting) -> Option<Box<Job>> {
        let (rule, mut jobs) = waiting.rules.pop_front()?;
        let job = jobs.pop_front()?;
        if !jobs.is_empty() {
            waiting.rules.push_back((rule, jobs));
        }
        waiting.len -= 1;
        Some(job)
    }

    /// Waits for the next job; `None` once the queue is closed and empty.
    async fn next(&self) -> Option<Box<Job>> {
        loop {
            {
                let mut waiting = self.lock();
                if let Some(job) = Self::pop(&mut waiting) {
                    return Some(job);
                }
                if waiting.closed {
                    return None;
                }
            }
            // One consumer: a notification sent since the check is kept.
            self.ready.notified().await;
        }
    }

    fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_one();
    }

    /// Closes the queue and takes everything still in it.
    fn drain(&self) -> Vec<Job> {
        let mut waiting = self.lock();
        waiting.closed = true;
        std::iter::from_fn(|| Self::pop(&mut waiting).map(|job| *job)).collect()
    }
}

/// Why a job was not queued; the job comes back.
#[derive(Debug)]
pub enum Refused {
    /// The room's queue holds [`Pacing::queue`] commands already.
    Full(Box<Job>),
    /// The dispatcher has stopped.
    Stopped(Box<Job>),
}

/// Where a room puts the commands to send. Dropping it tells the
/// dispatcher to finish what is queued and stop.
#[derive(Debug)]
pub struct Jobs(Arc<JobQueue>);

impl Jobs {
    /// Queues a job behind its rule's earlier ones. On a full queue a job
    /// of the rule with the longest backlog may make room: it is handed
    /// back, not sent.
    pub fn send(&self, job: Box<Job>) -> Result<Option<Box<Job>>, Refused> {
        self.0.push(job)
    }

    /// How many commands are waiting.
    pub fn len(&self) -> usize {
        self.0.lock().len
    }

    /// True when nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Drop for Jobs {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// Starts a room's dispatcher. Jobs go in through the returned [`Jobs`]
/// and finished ones are reported in the returned [`Finished`]. The task
/// ends when [`Jobs`] is dropped and the queue is empty, or when `cancel`
/// fires (what is queued is then recorded as cancelled).
pub fn spawn(
    link: Arc<dyn RoomLink>,
    pacing: Pacing,
    reporting: Reporting,
    cancel: CancellationToken,
) -> (Jobs, Arc<Finished>, tokio::task::JoinHandle<()>) {
    let queue = Arc::new(JobQueue {
        waiting: Mutex::new(Waiting::default()),
        ready: Notify::new(),
        bound: pacing.queue.max(1),
    });
    let jobs = Jobs(queue.clone());
    let finished = Arc::new(Finished::default());
    let done = finished.clone();
    let task = tokio::spawn(async move {
        let mut bucket = TokenBucket::new(pacing.rate, pacing.burst);
        loop {
            let job = tokio::select! {
                biased;
                _ = cancel.cancelled() => break,
                job = queue.next() => match job {
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
        let left = queue.drain();
        if !left.is_empty() {
            tracing::warn!(
                count = left.len(),
                "shutting down with commands still queued; recording them as cancelled"
            );
        }
        for job in left {
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
    use crate::model::{Command, ConferenceCommand, Message};
    use crate::rules::Trigger;

    fn job(id: u64, rule: &str) -> Box<Job> {
        Box::new(Job {
            id,
            intent: Intent {
                rule: rule.into(),
                command: Command::Conference(ConferenceCommand::Message(Message::text(
                    id.to_string(),
                ))),
                trigger: Arc::new(Trigger {
                    handler: "on_join".into(),
                    event: "participant_create".into(),
                    participant: None,
                }),
                shadow: false,
            },
            decided_at: Instant::now(),
        })
    }

    #[tokio::test]
    async fn rules_take_turns_and_the_queue_is_bounded() {
        let queue = JobQueue {
            waiting: Mutex::new(Waiting::default()),
            ready: Notify::new(),
            bound: 6,
        };
        for id in 0..5 {
            assert!(queue.push(job(id, "greedy")).unwrap().is_none());
        }
        queue.push(job(100, "steady")).unwrap();
        assert!(
            matches!(queue.push(job(5, "greedy")), Err(Refused::Full(j)) if j.id == 5),
            "the longest backlog cannot grow past the bound"
        );
        let displaced = queue.push(job(200, "third")).unwrap();
        assert_eq!(
            displaced.map(|j| j.id),
            Some(4),
            "another rule's command displaces the longest backlog's newest"
        );
        let mut order = Vec::new();
        for _ in 0..3 {
            order.push(queue.next().await.unwrap().id);
        }
        queue.push(job(101, "steady")).unwrap();
        queue.close();
        while let Some(job) = queue.next().await {
            order.push(job.id);
        }
        assert_eq!(order, [0, 100, 200, 1, 101, 2, 3]);
        assert!(matches!(queue.push(job(6, "x")), Err(Refused::Stopped(_))));
    }

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
