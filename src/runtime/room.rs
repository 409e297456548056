//! One room: a supervised task from connection to commands.
//!
//! [`supervise`] keeps a room running and restarts it with backoff when it
//! fails, without touching other rooms. A running room connects through its
//! platform (which keeps its credentials fresh), follows its feed, and for
//! every event:
//!
//! 1. applies it to the room state and sees what changed;
//! 2. runs the room's rules on the changes and collects their intents;
//! 3. plans them (no-ops, duplicates, conflicts, commands on their way);
//! 4. passes the rest through the flip-flop guard to the dispatcher (or, in
//!    dry-run mode, only records them).
//!
//! Timers fire on the same loop, and a rule reload swaps the room's rules
//! in between two events. On shutdown the room stops taking events, lets its
//! dispatcher finish, and leaves the room.
//!
//! The room state outlives a failed run: the roster the room knew is what
//! the next run's first roster is diffed against, so people who arrived
//! while usher was away get their `on_join`. Only the very first roster of
//! the process is a baseline.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use super::activity::{Activity, describe};
use super::audit::{AuditRecord, Outcome};
use super::daemon::Shared;
use super::dispatch::{self, Finished, Job, Jobs, Refused, Reporting};
use super::guard::{FlipFlopGuard, InFlight};
use super::liveness::{Liveness, Verdict};
use super::plan::{Dropped, plan};
use super::status::{Phase, RoomStatus};
use crate::clock::unix_now;
use crate::model::{Change, Command, ConferenceCommand, Event, RoomState};
use crate::platform::{CappedBackoff, ConnectError, FeedItem, Platform, RoomAddress, RoomLink};
use crate::rules::{Intent, RoomRules, RuleBinding, RuleSet};
use crate::timetable::RoomSchedule;

/// What a room is: where it is, its rules and its status.
pub(crate) struct RoomSetup {
    pub address: RoomAddress,
    pub platform: Arc<dyn Platform>,
    pub bindings: Arc<[RuleBinding]>,
    pub status: Arc<RoomStatus>,
    /// The room's zone and timetable sessions, which its rules see.
    pub schedule: RoomSchedule,
}

/// How long a room may take to wind down before its queue is cancelled:
/// short enough that a stop (SIGTERM) ends within the 10 s a service
/// manager usually grants, whatever is queued.
const WIND_DOWN: Duration = Duration::from_secs(5);

/// How often a room refreshes its status snapshot at most.
const SNAPSHOT_EVERY: Duration = Duration::from_millis(250);

/// How often a room refreshes its status snapshot at least, even when
/// nothing happens in it: the last of a burst of events, and the session's
/// token refreshes, must show up without waiting for the next event.
const SNAPSHOT_IDLE: Duration = Duration::from_secs(1);

/// A room run this long without failing starts its backoff afresh.
const HEALTHY_RUN: Duration = Duration::from_secs(300);

/// The longest a failed room waits before it tries again: a platform that
/// comes back finds its rooms back within this.
const MAX_RESTART_DELAY: Duration = Duration::from_secs(10);

/// After usher ends a conference, how long its rules are not heard unless
/// someone joins again. Everyone leaving at once would otherwise set rules
/// off about people who are already gone.
const AFTER_ENDING: Duration = Duration::from_secs(30);

/// Keeps a room running until `cancel` fires, restarting it with backoff
/// when it fails.
pub(crate) async fn supervise(room: RoomSetup, shared: Arc<Shared>, cancel: CancellationToken) {
    let span = tracing::info_span!("room", room = %room.address.alias);
    supervise_room(room, shared, cancel).instrument(span).await;
}

async fn supervise_room(room: RoomSetup, shared: Arc<Shared>, cancel: CancellationToken) {
    let builder = CappedBackoff::new(Duration::from_secs(1), MAX_RESTART_DELAY);
    let mut backoff = builder.start();
    let mut state = Arc::new(RoomState::new());
    loop {
        let started = Instant::now();
        match run(&room, &shared, &cancel, &mut state).await {
            Ok(()) => break,
            Err(err) if cancel.is_cancelled() => {
                tracing::debug!(error = %format!("{err:#}"), "room stopped while failing");
                break;
            }
            Err(err) => {
                if started.elapsed() > HEALTHY_RUN {
                    backoff = builder.start();
                }
                let delay = backoff.next().unwrap_or(MAX_RESTART_DELAY);
                // Never sooner than the platform asked (`Retry-After`).
                let delay = err
                    .downcast_ref::<ConnectError>()
                    .and_then(ConnectError::retry_after)
                    .map_or(delay, |asked| asked.max(delay));
                let reason = format!("{err:#}");
                tracing::error!(error = %reason, retry_in = ?delay, "the room failed; restarting it");
                room.status.update(|status| {
                    status.note_error(reason.clone());
                    status.set_phase(Phase::Failed, Some(reason));
                });
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = tokio::time::sleep(delay) => {}
                }
            }
        }
    }
    room.status
        .update(|status| status.set_phase(Phase::Stopped, Some("usher stopped".to_owned())));
}

/// Runs a room once: until `cancel` fires (Ok) or something fails (Err).
/// `state` is the room as last known, and is kept up to date.
async fn run(
    room: &RoomSetup,
    shared: &Shared,
    cancel: &CancellationToken,
    state: &mut Arc<RoomState>,
) -> anyhow::Result<()> {
    room.status
        .update(|status| status.set_phase(Phase::Connecting, None));
    // The slow paths are boxed: this future lives as long as the room does.
    let link = Box::pin(room.platform.connect(&room.address))
        .await
        .context("cannot connect to the room")?;
    let alias = &room.address.alias;
    let mut rules = RoomRules::new(alias, shared.rules.borrow().clone(), &room.bindings)
        .context("cannot bind the room's rules")?;
    rules.set_schedule(room.schedule.clone(), unix_now());

    let background = cancel.child_token();
    let (feed_sink, mut feed) = mpsc::channel(4096);
    let follower = tokio::spawn(
        link.clone()
            .follow(feed_sink, background.clone())
            .in_current_span(),
    );
    let reporting = Reporting {
        room: alias.clone(),
        audit: shared.audit.clone(),
        status: room.status.clone(),
        activity: shared.activity.clone(),
    };
    let stop_dispatching = CancellationToken::new();
    let (jobs, finished, dispatcher) = dispatch::spawn(
        link.clone(),
        shared.pacing,
        reporting.clone(),
        stop_dispatching.clone(),
    );

    let mut actor = RoomActor {
        alias,
        bindings: &room.bindings,
        shared,
        status: room.status.clone(),
        link: link.clone(),
        state: std::mem::take(state),
        capabilities: room.platform.capabilities(),
        rules,
        rules_updates: shared.rules.clone(),
        in_flight: InFlight::default(),
        guard: FlipFlopGuard::new(shared.flip_flops_per_minute),
        jobs,
        finished,
        next_job: 0,
        reporting,
        last_snapshot: None,
        ended_at: None,
        liveness: Liveness::new(room.platform.stall_bound()),
    };
    let result = actor.run(&mut feed, cancel).await;
    actor.snapshot(true);
    *state = std::mem::take(&mut actor.state);
    drop(actor);

    background.cancel();
    let mut dispatcher = dispatcher;
    if tokio::time::timeout(WIND_DOWN, &mut dispatcher)
        .await
        .is_err()
    {
        stop_dispatching.cancel();
        let _ = dispatcher.await;
    }
    let _ = follower.await;
    Box::pin(link.close()).await;
    result
}

struct RoomActor<'a> {
    alias: &'a str,
    bindings: &'a [RuleBinding],
    shared: &'a Shared,
    status: Arc<RoomStatus>,
    link: Arc<dyn RoomLink>,
    state: Arc<RoomState>,
    capabilities: crate::platform::Capabilities,
    rules: RoomRules,
    rules_updates: watch::Receiver<Arc<RuleSet>>,
    in_flight: InFlight,
    guard: FlipFlopGuard,
    jobs: Jobs,
    /// What the dispatcher has finished since the room last looked.
    finished: Arc<Finished>,
    next_job: u64,
    reporting: Reporting,
    last_snapshot: Option<Instant>,
    /// When usher ended the conference, while that still holds.
    ended_at: Option<Instant>,
    /// Whether the connected feed is in sync and decoding.
    liveness: Liveness,
}

impl RoomActor<'_> {
    async fn run(
        &mut self,
        feed: &mut mpsc::Receiver<Box<FeedItem>>,
        cancel: &CancellationToken,
    ) -> anyhow::Result<()> {
        let mut reloads_open = true;
        let mut idle = tokio::time::interval(SNAPSHOT_IDLE);
        idle.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let timer = self.rules.next_timer();
            let wake = timer.map_or_else(far_future, instant_for);
            tokio::select! {
                biased;
                _ = cancel.cancelled() => return Ok(()),
                item = feed.recv() => match item {
                    Some(item) => self.on_feed(*item),
                    None => anyhow::bail!("the event feed stopped"),
                },
                _ = tokio::time::sleep_until(wake), if timer.is_some() => {
                    let intents = self.rules.fire_timers(&self.state, unix_now());
                    self.dispatch(intents);
                }
                changed = self.rules_updates.changed(), if reloads_open => match changed {
                    Ok(()) => self.rebind(),
                    Err(_) => reloads_open = false,
                },
                _ = idle.tick() => {}
            }
            self.snapshot(false);
        }
    }

    fn on_feed(&mut self, item: FeedItem) {
        match item {
            FeedItem::Connected => {
                self.liveness.connected(Instant::now());
                self.status
                    .update(|status| status.set_phase(Phase::Connected, None));
                self.tell("connected".to_owned());
            }
            FeedItem::Disconnected { reason, retry_in } => {
                self.status.update(|status| {
                    status.set_phase(
                        Phase::Reconnecting,
                        Some(format!("event stream down: {reason}")),
                    );
                });
                self.tell(format!(
                    "event stream down ({reason}); retrying in {retry_in:.1?}"
                ));
            }
            FeedItem::Event(event) => self.on_event(event),
        }
    }

    fn on_event(&mut self, event: Event) {
        if matches!(event, Event::Roster(_)) {
            self.liveness.synced();
        }
        let name = event.kind();
        self.status.update(|status| status.count_event(name));
        let now = unix_now();
        let changes = Arc::make_mut(&mut self.state).apply_at(event, now);
        if changes.is_empty() {
            return;
        }
        if self.shared.activity.receiver_count() > 0 {
            let size = self.state.count();
            for text in changes.iter().filter_map(|change| describe(change, size)) {
                self.tell(text);
            }
        }
        if self.ended_at.is_some()
            && changes
                .iter()
                .any(|change| matches!(change, Change::Joined(p) if p.in_room()))
        {
            self.ended_at = None;
        }
        self.note_finished();
        self.in_flight.settle(&self.state, Instant::now());
        let intents = self.rules.on_changes(&self.state, &changes, name, now);
        self.dispatch(intents);
    }

    /// True while a conference usher ended is emptying.
    fn ending(&mut self) -> bool {
        if self
            .ended_at
            .is_some_and(|ended| ended.elapsed() >= AFTER_ENDING)
        {
            self.ended_at = None;
        }
        self.ended_at.is_some()
    }

    /// Takes note of the commands the dispatcher has finished.
    fn note_finished(&mut self) {
        for done in self.finished.take() {
            self.in_flight.finish(done.id, done.ok, done.at);
        }
    }

    /// Plans intents and hands what is left to the dispatcher.
    fn dispatch(&mut self, intents: Vec<Intent>) {
        for failure in self.rules.drain_failures() {
            self.status
                .update(|status| status.note_error(failure.error.to_string()));
            // Straight to the audit log: a failure is not a command to count.
            self.reporting
                .audit
                .record(AuditRecord::for_failure(self.alias, &failure, unix_now()));
        }
        if intents.is_empty() {
            return;
        }
        if self.ending() {
            tracing::info!(
                count = intents.len(),
                "the conference was ended; not sending what rules ask while it empties"
            );
            return;
        }
        self.note_finished();
        let plan = plan(
            intents,
            &self.state,
            self.in_flight.commands(),
            &self.capabilities,
        );
        let now = unix_now();
        for (intent, why) in plan.dropped {
            let outcome = match why {
                Dropped::Conflict { .. } => Outcome::Conflict,
                Dropped::Unsupported => Outcome::Unsupported,
                _ => {
                    tracing::debug!(rule = %intent.rule, command = %intent.command, "not sent: {why}");
                    continue;
                }
            };
            if outcome == Outcome::Unsupported {
                tracing::info!(rule = %intent.rule, command = %intent.command, "not sent: {why}");
            }
            let mut record = AuditRecord::for_intent(self.alias, &intent, outcome, now);
            record.error = Some(why.to_string());
            self.reporting.record(record);
        }
        for intent in plan.shadow {
            tracing::info!(rule = %intent.rule, command = %intent.command, "shadow: would send");
            self.reporting.record(AuditRecord::for_intent(
                self.alias,
                &intent,
                Outcome::Shadow,
                now,
            ));
        }
        let mut overflowed = Vec::new();
        for intent in plan.send {
            if let Err(rules) = self
                .guard
                .admit(&intent.command, &intent.rule, Instant::now())
            {
                let why = format!(
                    "held back by the flip-flop guard: opposite commands to this target more than {} times a minute; rules involved: {}",
                    self.shared.flip_flops_per_minute,
                    rules.join(", ")
                );
                tracing::error!(command = %intent.command, "{why}");
                self.status
                    .update(|status| status.note_error(format!("{}: {why}", intent.command)));
                let mut record =
                    AuditRecord::for_intent(self.alias, &intent, Outcome::Blocked, now);
                record.error = Some(why);
                self.reporting.record(record);
                continue;
            }
            if self.shared.dry_run {
                tracing::info!(rule = %intent.rule, command = %intent.command, "dry run: would send");
                self.reporting.record(AuditRecord::for_intent(
                    self.alias,
                    &intent,
                    Outcome::DryRun,
                    now,
                ));
                continue;
            }
            if intent.command == Command::Conference(ConferenceCommand::Disconnect) {
                self.ended_at = Some(Instant::now());
            }
            let id = self.next_job;
            self.next_job += 1;
            let command = intent.command.clone();
            let job = Box::new(Job {
                id,
                intent,
                decided_at: Instant::now(),
            });
            match self.jobs.send(job) {
                Ok(displaced) => {
                    self.in_flight.add(id, command);
                    if let Some(job) = displaced {
                        self.in_flight.finish(job.id, false, Instant::now());
                        overflowed.push(*job);
                    }
                }
                Err(Refused::Full(job)) => overflowed.push(*job),
                Err(Refused::Stopped(_)) => {
                    tracing::error!("the dispatcher has stopped; a command was not sent");
                }
            }
        }
        self.overflow(overflowed, now);
    }

    /// Audits the commands the full queue did not take, and says so once.
    fn overflow(&mut self, jobs: Vec<Job>, now: f64) {
        let Some(first) = jobs.first() else {
            return;
        };
        let why = format!(
            "not sent: the room's queue was full ({} commands, dispatch.queue), and this rule had the longest backlog",
            self.shared.pacing.queue
        );
        tracing::warn!(count = jobs.len(), rule = %first.intent.rule, "{why}");
        self.status
            .update(|status| status.note_error(format!("{} commands {why}", jobs.len())));
        for job in jobs {
            let mut record =
                AuditRecord::for_intent(self.alias, &job.intent, Outcome::Overflow, now);
            record.error = Some(why.clone());
            self.reporting.record(record);
        }
    }

    fn rebind(&mut self) {
        let set = self.rules_updates.borrow_and_update().clone();
        match self.rules.rebind(set, self.bindings) {
            Ok(()) => tracing::info!("rules reloaded"),
            Err(err) => {
                tracing::error!(error = %err, "the reloaded rules do not fit this room; keeping the previous ones");
            }
        }
    }

    /// Publishes the room's counts and counters, at most every few hundred
    /// milliseconds unless `now` is set.
    fn snapshot(&mut self, now: bool) {
        let due = self
            .last_snapshot
            .is_none_or(|last| last.elapsed() >= SNAPSHOT_EVERY);
        if !(now || due) {
            return;
        }
        self.last_snapshot = Some(Instant::now());
        let state = &self.state;
        let (participants, counts) = (state.len(), state.counts());
        let (in_room, waiting) = (counts.in_room, counts.waiting);
        let flags = state.flags();
        let session = self.link.stats();
        match self
            .liveness
            .check(self.link.stream_health(), Instant::now())
        {
            Verdict::Same => {}
            Verdict::Stalled(why) => {
                tracing::warn!("{why}; /healthz reports the room");
                self.status.update(|status| status.note_error(why));
            }
            Verdict::Recovered => tracing::info!("the room is in sync again"),
        }
        let stalled = self.liveness.stalled().map(str::to_owned);
        self.status.update(|status| {
            status.set_stalled(stalled);
            status.participants = participants;
            status.in_room = in_room;
            status.waiting = waiting;
            status.locked = flags.locked;
            status.guests_muted = flags.guests_muted;
            status.set_rules(self.rules.stats(), self.rules.latency());
            status.set_session(session);
        });
    }

    fn tell(&self, text: String) {
        if self.shared.activity.receiver_count() > 0 {
            let _ = self.shared.activity.send(Activity::Room {
                room: self.alias.to_owned(),
                text,
            });
        }
    }
}

/// The instant at which UNIX time `due` arrives.
fn instant_for(due: f64) -> Instant {
    Instant::now() + Duration::from_secs_f64((due - unix_now()).clamp(0.0, 86_400.0 * 365.0))
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86_400 * 365)
}
