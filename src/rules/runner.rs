//! Running a room's rules: from state changes to intents.
//!
//! [`RoomRules`] holds the rules bound to one room, each with its parameters,
//! its `state` map, its failure count and its timers. For every event the
//! room's [`Change`]s become handler calls ([`handler_calls`]); each rule
//! that defines the handler is called, in binding order, and the commands it
//! asked for come back as [`Intent`]s in that order.
//!
//! A rule that errors or runs past its limits is isolated: the intents of
//! that call are dropped, the failure is logged with `file:line:column` and
//! counted, and after repeated consecutive failures the rule is disabled in
//! this room. The other rules are not affected.

use std::any::Any;
use std::collections::HashMap;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rhai::{CallFnOptions, Dynamic, EvalAltResult, FuncArgs, Scope};

use super::api::{CallContext, flags_map, layout_map, message_map, person};
use super::binding::{BindError, Params, RuleBinding, bind_params};
use super::engine::with_deadline;
use super::intent::{Intent, Trigger};
use super::rule::{Handler, Rule, RuleError};
use super::schedule::{SessionClock, session_map};
use super::set::RuleSet;
use super::snapshot::{RulesSnapshot, SNAPSHOT_VERSION, SavedTimer, from_json, to_json};
use super::state::{new_state, plain, restored_state};
use super::timers::{TimerQueue, TimerRequest};
use crate::model::{Change, ChatMessage, Layout, Participant, RoomFlags, RoomState, Target};
use crate::timetable::{Boundary, RoomSchedule, Session};

/// One handler call an event causes.
#[derive(Clone)]
pub struct HandlerCall<'a> {
    /// Which handler.
    pub handler: Handler,
    /// Its arguments.
    pub args: Arguments<'a>,
    /// The participant it is about, for the audit.
    pub subject: Option<&'a Arc<Participant>>,
}

/// A handler's arguments, borrowed from the change behind it. They become
/// Rhai values anew for each rule that handles the call (Rhai consumes
/// them), and only for those.
#[derive(Clone, Copy)]
pub enum Arguments<'a> {
    /// No arguments.
    None,
    /// A participant: `on_join(p)` and the like.
    Participant(&'a Arc<Participant>),
    /// A participant now and as it was: `on_update(p, before)`.
    Update(&'a Arc<Participant>, &'a Arc<Participant>),
    /// The layout: `on_layout(layout)`.
    Layout(&'a Layout),
    /// A chat message and its sender, if known: `on_message(msg)`.
    Message(&'a ChatMessage, Option<&'a Arc<Participant>>),
    /// The room's flags before the change: `on_room_update(before)`.
    Flags(&'a RoomFlags),
    /// A session starting or ending: `on_session_start(s)`.
    Session(&'a Session),
}

impl FuncArgs for Arguments<'_> {
    fn parse<ARGS: Extend<Dynamic>>(self, args: &mut ARGS) {
        match self {
            Arguments::None => {}
            Arguments::Participant(p) => args.extend([person(p)]),
            Arguments::Update(after, before) => args.extend([person(after), person(before)]),
            Arguments::Layout(layout) => args.extend([layout_map(layout)]),
            Arguments::Message(message, sender) => args.extend([message_map(message, sender)]),
            Arguments::Flags(flags) => args.extend([flags_map(flags)]),
            Arguments::Session(session) => args.extend([session_map(session)]),
        }
    }
}

/// Maps one change to the handler calls it causes, in order.
///
/// - A participant who arrives in the room proper gets `on_join`; one who
///   arrives in the waiting room gets `on_waiting`.
/// - Every participant change gets `on_update(p, before)`, and before it
///   `on_join` when they were admitted to the room, `on_waiting` when they
///   were moved to the waiting room, `on_hand_raised` / `on_hand_lowered`
///   when they raised or lowered a hand, and `on_spotlit` / `on_unspotlit`
///   when they were spotlit or their spotlight was removed.
/// - A presentation start is reported only when the presenter is known.
pub fn handler_calls<'a>(change: &'a Change, room: &'a RoomState) -> Vec<HandlerCall<'a>> {
    let about = |handler, p| HandlerCall {
        handler,
        args: Arguments::Participant(p),
        subject: Some(p),
    };
    let mut calls = Vec::new();
    match change {
        Change::Joined(p) => {
            if p.in_room() {
                calls.push(about(Handler::Join, p));
            } else if p.is_waiting() {
                calls.push(about(Handler::Waiting, p));
            }
        }
        Change::Left(p) => calls.push(about(Handler::Leave, p)),
        Change::Updated { before, after } => {
            if !before.in_room() && after.in_room() {
                calls.push(about(Handler::Join, after));
            }
            if !before.is_waiting() && after.is_waiting() {
                calls.push(about(Handler::Waiting, after));
            }
            if !before.hand_raised() && after.hand_raised() {
                calls.push(about(Handler::HandRaised, after));
            }
            if before.hand_raised() && !after.hand_raised() {
                calls.push(about(Handler::HandLowered, after));
            }
            if !before.spotlit() && after.spotlit() {
                calls.push(about(Handler::Spotlit, after));
            }
            if before.spotlit() && !after.spotlit() {
                calls.push(about(Handler::Unspotlit, after));
            }
            calls.push(HandlerCall {
                handler: Handler::Update,
                args: Arguments::Update(after, before),
                subject: Some(after),
            });
        }
        Change::PresentationStarted {
            presenter: Some(p), ..
        } => calls.push(about(Handler::PresentationStart, p)),
        Change::PresentationStarted {
            presenter: None,
            presentation,
        } => {
            tracing::debug!(presenter = %presentation.presenter_name, "presenter not in the roster; on_presentation_start not called")
        }
        Change::PresentationStopped { presenter } => calls.push(HandlerCall {
            handler: Handler::PresentationStop,
            args: Arguments::None,
            subject: presenter.as_ref(),
        }),
        Change::SpeakerChanged { after: Some(p), .. } => calls.push(about(Handler::Speaking, p)),
        Change::SpeakerChanged { after: None, .. } => {}
        Change::LayoutChanged { after, .. } => calls.push(HandlerCall {
            handler: Handler::Layout,
            args: Arguments::Layout(after),
            subject: None,
        }),
        Change::Message(message) => {
            let sender = room.participant(&message.uuid);
            calls.push(HandlerCall {
                handler: Handler::Message,
                args: Arguments::Message(message, sender),
                subject: sender,
            });
        }
        Change::RoomUpdated { before, .. } => calls.push(HandlerCall {
            handler: Handler::RoomUpdate,
            args: Arguments::Flags(before),
            subject: None,
        }),
        Change::Synced { .. } => calls.push(HandlerCall {
            handler: Handler::Connect,
            args: Arguments::None,
            subject: None,
        }),
        Change::Disconnected { .. } => {}
    }
    calls
}

/// What a call is for: the function, the event and the participant. Made
/// into a [`Trigger`] only when the call asks for something.
struct Cause<'a> {
    function: &'a str,
    event: &'a str,
    subject: Option<&'a Participant>,
}

impl Cause<'_> {
    fn trigger(&self) -> Trigger {
        Trigger {
            handler: self.function.to_owned(),
            event: self.event.to_owned(),
            participant: self.subject.map(|p| Target {
                uuid: p.uuid.clone(),
                name: p.display_name.clone(),
            }),
        }
    }
}

/// Counters for one rule in one room.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RuleStats {
    /// Handler and timer calls made.
    pub calls: u64,
    /// Calls that failed.
    pub errors: u64,
    /// Failures in a row, reset by a success.
    pub consecutive_errors: u32,
    /// The rule was disabled in this room after too many failures.
    pub disabled: bool,
    /// Time spent in the rule's calls.
    pub busy: Duration,
}

/// Upper bounds (seconds) of the rule-call latency histogram's buckets.
pub const LATENCY_BUCKETS: [f64; 10] = [
    0.000_01, 0.000_05, 0.000_1, 0.000_5, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1,
];

/// How long rule calls took, as a histogram.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CallLatency {
    /// Calls per bucket of [`LATENCY_BUCKETS`] (not cumulative); calls
    /// slower than the last bound are only in `count`.
    pub buckets: [u64; LATENCY_BUCKETS.len()],
    /// Every call.
    pub count: u64,
    /// Their total duration in seconds.
    pub sum: f64,
}

impl CallLatency {
    /// Records one call.
    pub fn observe(&mut self, took: Duration) {
        let seconds = took.as_secs_f64();
        if let Some(bucket) = LATENCY_BUCKETS.iter().position(|bound| seconds <= *bound) {
            self.buckets[bucket] += 1;
        }
        self.count += 1;
        self.sum += seconds;
    }

    /// Adds another histogram's counts to this one.
    pub fn merge(&mut self, other: &CallLatency) {
        for (mine, theirs) in self.buckets.iter_mut().zip(other.buckets) {
            *mine += theirs;
        }
        self.count += other.count;
        self.sum += other.sum;
    }
}

/// A failed rule call, for the log, the audit, metrics and `/status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleFailure {
    /// The rule.
    pub rule: String,
    /// The handler or timer function.
    pub handler: String,
    /// What the call was for: its handler, event and participant.
    pub trigger: Trigger,
    /// Where and why.
    pub error: RuleError,
    /// This failure disabled the rule in the room.
    pub disabled: bool,
}

struct BoundRule {
    rule: Arc<Rule>,
    name: Arc<str>,
    params: Params,
    state: Dynamic,
    shadow: bool,
    stats: RuleStats,
}

/// The rules of one room.
pub struct RoomRules {
    room: String,
    set: Arc<RuleSet>,
    bound: Vec<BoundRule>,
    timers: TimerQueue,
    next_timer_id: i64,
    failures: Vec<RuleFailure>,
    latency: CallLatency,
    /// The room's schedule, whose starts and ends fire like timers.
    sessions: Option<SessionClock>,
    /// The variables of the call in progress; kept between calls (empty)
    /// so that calls do not allocate a new one.
    scope: Scope<'static>,
    /// Lines rules wrote, kept for [`RoomRules::drain_logs`] rather than
    /// logged (`usher test` shows them under the step that wrote them).
    captured: Option<Vec<String>>,
    /// Counts rule calls and restores: while it stands still, so do the
    /// rules' states and timers, and nothing needs saving.
    revision: u64,
}

impl RoomRules {
    /// Binds `bindings` (in order) from `set` for room `room`.
    pub fn new(room: &str, set: Arc<RuleSet>, bindings: &[RuleBinding]) -> Result<Self, BindError> {
        let mut rules = RoomRules {
            room: room.to_owned(),
            bound: Vec::new(),
            set: set.clone(),
            timers: TimerQueue::default(),
            next_timer_id: 1,
            failures: Vec::new(),
            latency: CallLatency::default(),
            sessions: None,
            scope: Scope::new(),
            captured: None,
            revision: 0,
        };
        rules.bound = rules.bind(&set, bindings)?;
        Ok(rules)
    }

    fn bind(
        &mut self,
        set: &RuleSet,
        bindings: &[RuleBinding],
    ) -> Result<Vec<BoundRule>, BindError> {
        let mut previous: HashMap<Arc<str>, BoundRule> =
            self.bound.drain(..).map(|b| (b.name.clone(), b)).collect();
        bindings
            .iter()
            .map(|binding| {
                let rule = set.find(&binding.rule)?.clone();
                let params = bind_params(&rule, binding)?;
                let carried = previous.remove(binding.rule.as_str());
                Ok(BoundRule {
                    name: binding.rule.as_str().into(),
                    state: carried
                        .as_ref()
                        .map(|b| b.state.clone())
                        .unwrap_or_else(|| new_state(set.engine().limits())),
                    stats: carried
                        .map(|b| RuleStats {
                            consecutive_errors: 0,
                            disabled: false,
                            ..b.stats
                        })
                        .unwrap_or_default(),
                    rule,
                    params,
                    shadow: binding.shadow,
                })
            })
            .collect()
    }

    /// Switches to a new rule set (after a reload). Each rule keeps its
    /// `state`, counters and timers; rules no longer bound lose theirs. On
    /// error nothing changes.
    pub fn rebind(&mut self, set: Arc<RuleSet>, bindings: &[RuleBinding]) -> Result<(), BindError> {
        for binding in bindings {
            set.check(binding)?;
        }
        let bound = self.bind(&set, bindings)?;
        self.timers
            .retain_rules(|rule| bound.iter().any(|b| &*b.name == rule));
        self.bound = bound;
        self.set = set;
        Ok(())
    }

    /// Runs every rule on the changes one event caused. `event` is the
    /// platform event's name, recorded in each intent's trigger.
    pub fn on_changes(
        &mut self,
        room: &Arc<RoomState>,
        changes: &[Change],
        event: &str,
        now: f64,
    ) -> Vec<Intent> {
        let calls: Vec<HandlerCall> = changes
            .iter()
            .flat_map(|change| handler_calls(change, room))
            .collect();
        let mut intents = Vec::new();
        for index in 0..self.bound.len() {
            for call in &calls {
                if !self.bound[index].rule.handles(call.handler) {
                    continue;
                }
                let cause = Cause {
                    function: call.handler.name(),
                    event,
                    subject: call.subject.map(|p| &**p),
                };
                self.call(index, room, now, cause, call.args, &mut intents);
            }
        }
        intents
    }

    /// Gives the rules the room's zone and schedule: `room.session` and the
    /// like read it, and the starts and ends of its sessions after `now`
    /// call `on_session_start` and `on_session_end` like timers.
    pub fn set_schedule(&mut self, schedule: RoomSchedule, now: f64) {
        self.sessions = Some(SessionClock::new(schedule, now));
    }

    /// When the next timer, or session start or end, is due (UNIX seconds).
    pub fn next_timer(&self) -> Option<f64> {
        let session = self.sessions.as_ref().and_then(SessionClock::next_due);
        match (self.timers.next_due(), session) {
            (Some(timer), Some(session)) => Some(timer.min(session)),
            (timer, session) => timer.or(session),
        }
    }

    /// Fires every timer and session start or end due at or before `now`,
    /// in due order (a session's start or end before a timer due with it).
    pub fn fire_timers(&mut self, room: &Arc<RoomState>, now: f64) -> Vec<Intent> {
        let mut intents = Vec::new();
        loop {
            let session_due = self.sessions.as_ref().and_then(SessionClock::next_due);
            let timer_due = self.timers.next_due();
            if session_due.is_some_and(|due| due <= now && timer_due.is_none_or(|t| due <= t)) {
                if let Some((boundary, session)) =
                    self.sessions.as_mut().and_then(|clock| clock.pop_due(now))
                {
                    self.on_session(room, now, boundary, &session, &mut intents);
                    continue;
                }
            }
            let Some(timer) = self.timers.pop_due(now) else {
                break;
            };
            let Some(index) = self.bound.iter().position(|b| b.name == timer.rule) else {
                continue;
            };
            if !self.bound[index].rule.has_function(&timer.function, 0) {
                tracing::warn!(room = %self.room, rule = %timer.rule, function = %timer.function, "timer dropped: the rule no longer has this function");
                self.timers
                    .apply(&timer.rule, TimerRequest::CancelId(timer.id));
                continue;
            }
            let cause = Cause {
                function: &timer.function,
                event: "timer",
                subject: None,
            };
            self.call(index, room, now, cause, Arguments::None, &mut intents);
        }
        intents
    }

    /// Calls every rule's `on_session_start` or `on_session_end`.
    fn on_session(
        &mut self,
        room: &Arc<RoomState>,
        now: f64,
        boundary: Boundary,
        session: &Session,
        intents: &mut Vec<Intent>,
    ) {
        let (handler, event) = match boundary {
            Boundary::Start => (Handler::SessionStart, "session_start"),
            Boundary::End => (Handler::SessionEnd, "session_end"),
        };
        for index in 0..self.bound.len() {
            if !self.bound[index].rule.handles(handler) {
                continue;
            }
            let cause = Cause {
                function: handler.name(),
                event,
                subject: None,
            };
            self.call(
                index,
                room,
                now,
                cause,
                Arguments::Session(session),
                intents,
            );
        }
    }

    /// Keeps what rules write with `log` and `print`, and their failures,
    /// out of the log: [`RoomRules::drain_logs`] and
    /// [`RoomRules::drain_failures`] hand them over instead.
    pub fn capture_logs(&mut self) {
        self.captured.get_or_insert_with(Vec::new);
    }

    /// Lines rules wrote since the last call, as `rule: line`, when captured.
    pub fn drain_logs(&mut self) -> Vec<String> {
        self.captured
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// Failures since the last call, oldest first.
    pub fn drain_failures(&mut self) -> Vec<RuleFailure> {
        std::mem::take(&mut self.failures)
    }

    /// Each bound rule's name and counters, in binding order.
    pub fn stats(&self) -> impl Iterator<Item = (&str, RuleStats)> {
        self.bound.iter().map(|b| (&*b.name, b.stats))
    }

    /// How long this room's rule calls have taken.
    pub fn latency(&self) -> &CallLatency {
        &self.latency
    }

    /// The rule set in use.
    pub fn set(&self) -> &Arc<RuleSet> {
        &self.set
    }

    /// Changes whenever the rules may have changed their state or timers.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// Each bound rule's `state` and the pending timers, as data.
    pub fn snapshot(&self) -> RulesSnapshot {
        let states = self
            .bound
            .iter()
            .map(|b| {
                let value = plain(&b.state).unwrap_or_else(|_| b.state.clone());
                (b.name.to_string(), to_json(&value))
            })
            .collect();
        let mut timers: Vec<SavedTimer> = self.timers.iter().map(SavedTimer::from_timer).collect();
        timers.sort_by_key(|timer| timer.id);
        RulesSnapshot {
            version: SNAPSHOT_VERSION,
            states,
            timers,
            next_timer_id: self.next_timer_id,
            roster: Vec::new(),
            saved_at: 0.0,
        }
    }

    /// Puts back what a snapshot holds, as a reload carries state over:
    /// each bound rule gets the state saved under its name (its file may
    /// have changed since) and its timers, due as they were (`now` decides
    /// a repeating timer's next beat). Rules the snapshot does not know
    /// start afresh; saved rules no longer bound are forgotten.
    pub fn restore(&mut self, snapshot: &RulesSnapshot, now: f64) {
        let limits = *self.set.engine().limits();
        for bound in &mut self.bound {
            let Some(saved) = snapshot.states.get(&*bound.name) else {
                continue;
            };
            match restored_state(&limits, from_json(saved)) {
                Ok(state) => bound.state = state,
                Err(err) => {
                    tracing::warn!(room = %self.room, rule = %bound.name, "the saved state does not fit the rule's limits ({err}); it starts afresh");
                }
            }
        }
        for saved in &snapshot.timers {
            let Some(bound) = self.bound.iter().find(|b| *b.name == *saved.rule) else {
                continue;
            };
            let timer = saved.to_timer(bound.name.clone(), now);
            self.timers
                .apply(&timer.rule.clone(), TimerRequest::Start(timer));
        }
        let highest = snapshot
            .timers
            .iter()
            .map(|timer| timer.id)
            .max()
            .unwrap_or(0);
        self.next_timer_id = self
            .next_timer_id
            .max(snapshot.next_timer_id)
            .max(highest + 1);
        self.revision += 1;
    }

    fn call(
        &mut self,
        index: usize,
        room: &Arc<RoomState>,
        now: f64,
        cause: Cause,
        args: Arguments,
        intents: &mut Vec<Intent>,
    ) {
        let limits = *self.set.engine().limits();
        let bound = &mut self.bound[index];
        if bound.stats.disabled {
            return;
        }
        let context = CallContext {
            room: room.clone(),
            rule: bound.rule.clone(),
            params: bound.params.clone(),
            state: bound.state.clone(),
            now,
            commands: Vec::new(),
            command_room: limits.max_intents,
            timers: Vec::new(),
            next_timer_id: self.next_timer_id,
            timer_room: limits
                .max_timers
                .saturating_sub(self.timers.count(&bound.name)),
            schedule: self.sessions.as_ref().map(|clock| clock.room().clone()),
            logs: Vec::new(),
        };
        let options = CallFnOptions::new().eval_ast(false).rewind_scope(true);
        let engine = &self.set.engine().strict;
        let scope = &mut self.scope;
        scope.clear();
        let started = Instant::now();
        let (result, context) = context.run(|| {
            with_deadline(started + limits.deadline, || {
                // A panic inside the engine fails this call like an error
                // would, instead of taking the room down.
                panic::catch_unwind(AssertUnwindSafe(|| {
                    engine.call_fn_with_options::<Dynamic>(
                        options,
                        scope,
                        bound.rule.ast(),
                        cause.function,
                        args,
                    )
                }))
                .unwrap_or_else(|panic| Err(engine_failure(panic.as_ref())))
            })
        });
        let took = started.elapsed();
        self.next_timer_id = context.next_timer_id;
        for line in context.logs {
            match &mut self.captured {
                Some(captured) => captured.push(format!("{}: {line}", bound.name)),
                None => tracing::info!(room = %self.room, rule = %bound.name, "{line}"),
            }
        }
        bound.stats.busy += took;
        bound.stats.calls += 1;
        self.revision += 1;
        self.latency.observe(took);
        match result {
            Ok(_) => {
                bound.stats.consecutive_errors = 0;
                if !context.commands.is_empty() {
                    let trigger = Arc::new(cause.trigger());
                    intents.extend(context.commands.into_iter().map(|command| Intent {
                        rule: bound.name.clone(),
                        command,
                        trigger: trigger.clone(),
                        shadow: bound.shadow,
                    }));
                }
                for request in context.timers {
                    self.timers.apply(&bound.name, request);
                }
            }
            Err(err) => {
                bound.stats.errors += 1;
                bound.stats.consecutive_errors += 1;
                let disabled = bound.stats.consecutive_errors >= limits.failures_before_disable;
                let error = bound.rule.call_error(&err, cause.function);
                if disabled {
                    bound.stats.disabled = true;
                    self.timers.cancel_rule(&bound.name);
                }
                // Captured failures are reported by whoever captures them.
                match (self.captured.is_some(), disabled) {
                    (true, _) => {}
                    (false, true) => {
                        tracing::error!(room = %self.room, rule = %bound.name, failures = bound.stats.consecutive_errors, "{error}; the rule is disabled in this room until it is reloaded")
                    }
                    (false, false) => {
                        tracing::warn!(room = %self.room, rule = %bound.name, "{error}; its commands from this call are dropped")
                    }
                }
                self.failures.push(RuleFailure {
                    rule: bound.name.to_string(),
                    handler: cause.function.to_owned(),
                    trigger: cause.trigger(),
                    error,
                    disabled,
                });
            }
        }
    }
}

/// The error a call fails with when the engine panicked.
fn engine_failure(panic: &(dyn Any + Send)) -> Box<EvalAltResult> {
    let message = panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("no message");
    format!("the rule engine failed ({message})").into()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::model::{Event, Role, ServiceType, StageEntry};
    use crate::rules::{Limits, RuleEngine};

    fn set_with(engine: RuleEngine, rules: &[(&str, &str)]) -> Arc<RuleSet> {
        let engine = Arc::new(engine);
        let compiled: Vec<Rule> = rules
            .iter()
            .map(|(name, source)| {
                Rule::compile(
                    &engine,
                    name,
                    Path::new(&format!("rules/{name}.rhai")),
                    source,
                )
                .unwrap_or_else(|err| panic!("{err}"))
            })
            .collect();
        Arc::new(RuleSet::new(engine, compiled))
    }

    fn room_rules(rules: &[(&str, &str)]) -> RoomRules {
        let set = set_with(RuleEngine::default(), rules);
        let bindings: Vec<RuleBinding> =
            rules.iter().map(|(n, _)| RuleBinding::named(*n)).collect();
        RoomRules::new("hall", set, &bindings).unwrap()
    }

    fn person(uuid: &str, name: &str, role: Role) -> Participant {
        Participant {
            uuid: uuid.into(),
            display_name: name.into(),
            role,
            ..Participant::default()
        }
    }

    /// Applies an event to the room and runs the rules on what it changed.
    fn feed(rules: &mut RoomRules, room: &mut Arc<RoomState>, event: Event) -> Vec<String> {
        let name = event.kind();
        let changes = Arc::make_mut(room).apply(event);
        rules
            .on_changes(room, &changes, name, 1000.0)
            .iter()
            .map(|intent| format!("{}: {}", intent.rule, intent.command))
            .collect()
    }

    fn handlers_for(change: Change, room: &RoomState) -> Vec<&'static str> {
        handler_calls(&change, room)
            .iter()
            .map(|call| call.handler.name())
            .collect()
    }

    #[test]
    fn changes_map_to_handlers() {
        let room = RoomState::new();
        let guest = Arc::new(person("g", "Gus", Role::Guest));
        let waiting = Arc::new(Participant {
            service_type: ServiceType::WaitingRoom,
            ..person("w", "Wes", Role::Guest)
        });
        let admitted = Arc::new(Participant {
            service_type: ServiceType::Conference,
            ..(*waiting).clone()
        });
        let hand = Arc::new(Participant {
            buzz_time: 5.0,
            ..(*guest).clone()
        });
        assert_eq!(
            handlers_for(Change::Joined(guest.clone()), &room),
            ["on_join"]
        );
        assert_eq!(
            handlers_for(Change::Joined(waiting.clone()), &room),
            ["on_waiting"]
        );
        let connecting = Arc::new(Participant {
            service_type: ServiceType::Connecting,
            ..(*guest).clone()
        });
        assert!(handlers_for(Change::Joined(connecting), &room).is_empty());
        assert_eq!(
            handlers_for(Change::Left(guest.clone()), &room),
            ["on_leave"]
        );
        assert_eq!(
            handlers_for(
                Change::Updated {
                    before: waiting.clone(),
                    after: admitted
                },
                &room
            ),
            ["on_join", "on_update"]
        );
        assert_eq!(
            handlers_for(
                Change::Updated {
                    before: guest.clone(),
                    after: hand.clone()
                },
                &room
            ),
            ["on_hand_raised", "on_update"]
        );
        assert_eq!(
            handlers_for(
                Change::Updated {
                    before: hand,
                    after: guest.clone()
                },
                &room
            ),
            ["on_hand_lowered", "on_update"]
        );
        let lit = Arc::new(Participant {
            spotlight: 7.0,
            ..(*guest).clone()
        });
        assert_eq!(
            handlers_for(
                Change::Updated {
                    before: guest.clone(),
                    after: lit.clone()
                },
                &room
            ),
            ["on_spotlit", "on_update"]
        );
        assert_eq!(
            handlers_for(
                Change::Updated {
                    before: lit,
                    after: guest.clone()
                },
                &room
            ),
            ["on_unspotlit", "on_update"]
        );
        assert_eq!(
            handlers_for(
                Change::PresentationStarted {
                    presentation: Default::default(),
                    presenter: Some(guest.clone())
                },
                &room
            ),
            ["on_presentation_start"]
        );
        assert!(
            handlers_for(
                Change::PresentationStarted {
                    presentation: Default::default(),
                    presenter: None
                },
                &room
            )
            .is_empty()
        );
        assert_eq!(
            handlers_for(Change::PresentationStopped { presenter: None }, &room),
            ["on_presentation_stop"]
        );
        assert_eq!(
            handlers_for(
                Change::SpeakerChanged {
                    before: None,
                    after: Some(guest)
                },
                &room
            ),
            ["on_speaking"]
        );
        assert_eq!(
            handlers_for(Change::Message(Default::default()), &room),
            ["on_message"]
        );
        assert_eq!(
            handlers_for(
                Change::RoomUpdated {
                    before: RoomFlags::default(),
                    after: RoomFlags::default()
                },
                &room
            ),
            ["on_room_update"]
        );
        assert_eq!(
            handlers_for(
                Change::LayoutChanged {
                    before: None,
                    after: Default::default()
                },
                &room
            ),
            ["on_layout"]
        );
        assert_eq!(
            handlers_for(Change::Synced { initial: true }, &room),
            ["on_connect"]
        );
    }

    #[test]
    fn intents_come_back_in_rule_order_with_their_trigger() {
        let mut rules = room_rules(&[
            ("second", "fn on_join(p) { room.lock(); }"),
            (
                "first",
                "fn on_join(p) { p.mute(); room.message(`hi ${p.name}`); }",
            ),
        ]);
        let mut room = Arc::new(RoomState::new());
        let name = "participant_create";
        let changes =
            Arc::make_mut(&mut room).apply(Event::Participant(person("g", "Gus", Role::Guest)));
        let intents = rules.on_changes(&room, &changes, name, 0.0);
        let shown: Vec<String> = intents
            .iter()
            .map(|i| format!("{}: {}", i.rule, i.command))
            .collect();
        assert_eq!(
            shown,
            [
                "second: lock",
                "first: mute Gus",
                "first: message \"hi Gus\""
            ]
        );
        assert_eq!(
            intents[1].trigger.to_string(),
            "on_join(Gus) on participant_create"
        );
    }

    #[test]
    fn handlers_read_the_room_params_and_keep_state() {
        let engine = RuleEngine::default();
        let set = set_with(
            engine,
            &[(
                "count",
                "const PARAMS = #{ limit: 2 };\nfn on_join(p) {\n  state.seen = (state.seen ?? 0) + 1;\n  if state.seen >= params.limit && room.count() >= params.limit && !room.locked { room.lock(); }\n}",
            )],
        );
        let mut binding = RuleBinding::named("count");
        binding.params.insert("limit".into(), 3.into());
        let mut rules = RoomRules::new("hall", set, &[binding]).unwrap();
        let mut room = Arc::new(RoomState::new());
        for (uuid, name) in [("a", "Ann"), ("b", "Ben")] {
            let said = feed(
                &mut rules,
                &mut room,
                Event::Participant(person(uuid, name, Role::Guest)),
            );
            assert!(said.is_empty(), "{said:?}");
        }
        let said = feed(
            &mut rules,
            &mut room,
            Event::Participant(person("c", "Cat", Role::Guest)),
        );
        assert_eq!(said, ["count: lock"]);
    }

    #[test]
    fn the_platforms_booked_times_are_readable() {
        let rule = (
            "booked",
            "fn on_join(p) {\n  room.message(`${room.scheduled_start} ${room.scheduled_end ?? \"none\"}`);\n}",
        );
        let schedule = RoomSchedule::new(crate::clock::Zone::utc());
        let mut rules = room_rules(&[rule]);
        rules.set_schedule(schedule.clone(), 1000.0);
        let mut room = Arc::new(RoomState::new());
        let join = |uuid: &str| Event::Participant(person(uuid, uuid, Role::Guest));
        assert_eq!(
            feed(&mut rules, &mut room, join("a")),
            [r#"booked: message " none""#]
        );
        schedule.schedule.set_platform(
            crate::timetable::PlatformTimes {
                start: 900.0,
                end: Some(4500.0),
            },
            "booked",
        );
        assert_eq!(
            feed(&mut rules, &mut room, join("b")),
            [r#"booked: message "900.0 4500.0""#]
        );
    }

    #[test]
    fn participant_fields_and_lookups_are_readable() {
        let mut rules = room_rules(&[(
            "probe",
            r#"fn on_speaking(p) {
                let s = room.speaker();
                if p.speaking && s == p && p.is_host && p.role == "host" && room.find("ADA") == p
                   && room.guests().len() == 1 && room.hosts().len() == 1 && room.presenter() == () {
                    p.spotlight();
                }
            }"#,
        )]);
        let mut room = Arc::new(RoomState::new());
        feed(
            &mut rules,
            &mut room,
            Event::Participant(person("h", "Ada", Role::Chair)),
        );
        feed(
            &mut rules,
            &mut room,
            Event::Participant(person("g", "Gus", Role::Guest)),
        );
        let said = feed(
            &mut rules,
            &mut room,
            Event::Stage(vec![StageEntry {
                participant_uuid: "h".into(),
                stage_index: 0,
                vad: 100,
            }]),
        );
        assert_eq!(said, ["probe: spotlight Ada"]);
    }

    #[test]
    fn endless_loops_deep_recursion_and_giant_strings_are_contained() {
        let limits = Limits {
            max_operations: 50_000,
            ..Limits::default()
        };
        let set = set_with(
            RuleEngine::new(limits),
            &[
                ("spin", "fn on_join(p) { p.mute(); loop { } }"),
                (
                    "dive",
                    "fn dive(n) { dive(n + 1) }\nfn on_join(p) { dive(0); }",
                ),
                ("grow", "fn on_join(p) { let s = \"x\"; loop { s += s; } }"),
                ("fine", "fn on_join(p) { p.mute(); }"),
            ],
        );
        let bindings: Vec<RuleBinding> = ["spin", "dive", "grow", "fine"]
            .map(RuleBinding::named)
            .to_vec();
        let mut rules = RoomRules::new("hall", set, &bindings).unwrap();
        let mut room = Arc::new(RoomState::new());
        let said = feed(
            &mut rules,
            &mut room,
            Event::Participant(person("g", "Gus", Role::Guest)),
        );
        assert_eq!(
            said,
            ["fine: mute Gus"],
            "failed calls lose their intents; others run"
        );
        let failures = rules.drain_failures();
        let messages: Vec<String> = failures.iter().map(|f| f.error.to_string()).collect();
        assert_eq!(failures.len(), 3, "{messages:?}");
        assert!(
            messages[0].starts_with("rules/spin.rhai:1:")
                && messages[0].contains("too many operations"),
            "{}",
            messages[0]
        );
        assert!(messages[1].contains("nested too deeply"), "{}", messages[1]);
        assert!(
            messages[2].starts_with("rules/grow.rhai:1:")
                && messages[2].contains("larger than allowed"),
            "{}",
            messages[2]
        );
    }

    #[test]
    fn errors_point_at_the_failing_expression_and_the_calls_that_led_there() {
        let mut rules = room_rules(&[(
            "chain",
            "fn on_join(p) {\n    greet(p);\n}\nfn greet(p) {\n    let names = [p.name];\n    names.filter(|n| n.shout());\n}\nfn on_leave(p) {\n    let n = [1];\n    n[3] += 1;\n}",
        )]);
        let mut room = Arc::new(RoomState::new());
        feed(
            &mut rules,
            &mut room,
            Event::Participant(person("g", "Gus", Role::Guest)),
        );
        feed(
            &mut rules,
            &mut room,
            Event::ParticipantLeft { uuid: "g".into() },
        );
        let failures: Vec<String> = rules
            .drain_failures()
            .iter()
            .map(|f| f.error.to_string())
            .collect();
        assert_eq!(
            failures,
            [
                "rules/chain.rhai:6:24: in a closure, called from `filter` at 6:11, called from \
                 `greet` at 6:11, called from `on_join` at 2:5: Function not found: shout (&str | ImmutableString | String)",
                "rules/chain.rhai:10:7: in `on_leave`: Array index 3 out of bounds: only 1 element in array",
            ]
        );
    }

    #[test]
    fn a_call_asking_for_more_commands_than_the_cap_fails_and_counts_toward_disabling() {
        let limits = Limits {
            max_intents: 10,
            ..Limits::default()
        };
        let set = set_with(
            RuleEngine::new(limits),
            &[
                (
                    "greedy",
                    "fn on_join(p) {\n    for n in 0..10000 { room.message(`spam ${n}`); }\n}",
                ),
                (
                    "modest",
                    "fn on_join(p) { for n in 0..10 { room.message(`hi ${n}`); } }",
                ),
            ],
        );
        let bindings = [RuleBinding::named("greedy"), RuleBinding::named("modest")];
        let mut rules = RoomRules::new("hall", set, &bindings).unwrap();
        let mut room = Arc::new(RoomState::new());
        let said = feed(
            &mut rules,
            &mut room,
            Event::Participant(person("g", "Gus", Role::Guest)),
        );
        assert_eq!(said.len(), 10, "the call at the cap runs: {said:?}");
        assert!(said.iter().all(|line| line.starts_with("modest: ")));
        let failures = rules.drain_failures();
        assert_eq!(failures.len(), 1);
        let message = failures[0].error.to_string();
        assert!(
            message.starts_with("rules/greedy.rhai:2:")
                && message.contains("more than 10 commands (limits.intents)"),
            "{message}"
        );
        let stats: HashMap<&str, RuleStats> = rules.stats().collect();
        assert_eq!(stats["greedy"].consecutive_errors, 1);
    }

    #[test]
    fn the_wall_clock_deadline_stops_a_slow_rule() {
        let limits = Limits {
            deadline: Duration::from_millis(20),
            ..Limits::default()
        };
        let set = set_with(
            RuleEngine::new(limits),
            &[("slow", "fn on_join(p) { let n = 0; loop { n += 1; } }")],
        );
        let mut rules = RoomRules::new("hall", set, &[RuleBinding::named("slow")]).unwrap();
        let mut room = Arc::new(RoomState::new());
        let started = Instant::now();
        feed(
            &mut rules,
            &mut room,
            Event::Participant(person("g", "Gus", Role::Guest)),
        );
        let failures = rules.drain_failures();
        assert!(
            failures[0].error.message.contains("time limit"),
            "{:?}",
            failures[0].error
        );
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn repeated_failures_disable_a_rule_in_this_room_only() {
        let rules_src = [
            ("flaky", "fn on_join(p) { throw \"boom\"; }"),
            ("steady", "fn on_join(p) { p.mute(); }"),
        ];
        let set = set_with(RuleEngine::default(), &rules_src);
        let bindings = [RuleBinding::named("flaky"), RuleBinding::named("steady")];
        let mut rules = RoomRules::new("hall", set.clone(), &bindings).unwrap();
        let mut room = Arc::new(RoomState::new());
        let limit = Limits::default().failures_before_disable as usize;
        for n in 0..limit + 2 {
            let uuid = format!("u{n}");
            let said = feed(
                &mut rules,
                &mut room,
                Event::Participant(person(&uuid, &uuid, Role::Guest)),
            );
            assert_eq!(said, [format!("steady: mute {uuid}")]);
        }
        let failures = rules.drain_failures();
        assert_eq!(failures.len(), limit, "a disabled rule is no longer called");
        assert!(failures.last().unwrap().disabled);
        assert!(failures[0].error.message.contains("boom"));
        let stats: HashMap<&str, RuleStats> = rules.stats().collect();
        assert!(stats["flaky"].disabled && !stats["steady"].disabled);

        let other_room = RoomRules::new("other", set.clone(), &bindings).unwrap();
        assert!(other_room.stats().all(|(_, s)| !s.disabled));
        rules.rebind(set, &bindings).unwrap();
        assert!(
            rules.stats().all(|(_, s)| !s.disabled),
            "a reload gives it another chance"
        );
    }

    #[test]
    fn timers_fire_named_functions_and_can_be_cancelled() {
        let mut rules = room_rules(&[(
            "clock",
            r#"fn on_connect() { state.tick = every(10, "tick"); after(25, "once"); }
               fn tick() { room.message(`tick ${now()}`); if now() >= 1020.0 { cancel(state.tick); } }
               fn once() { room.lock(); }"#,
        )]);
        let mut room = Arc::new(RoomState::new());
        let changes = Arc::make_mut(&mut room).apply(Event::Roster(Vec::new()));
        assert!(
            rules
                .on_changes(&room, &changes, "roster", 1000.0)
                .is_empty()
        );
        let mut fired = Vec::new();
        while let Some(due) = rules.next_timer().filter(|due| *due <= 1100.0) {
            fired.extend(
                rules
                    .fire_timers(&room, due)
                    .iter()
                    .map(|i| i.command.to_string()),
            );
        }
        assert_eq!(
            fired,
            ["message \"tick 1010.0\"", "message \"tick 1020.0\"", "lock"]
        );
        assert_eq!(rules.next_timer(), None);
    }

    #[test]
    fn timers_must_name_an_existing_function() {
        let mut rules = room_rules(&[("bad", "fn on_connect() { after(5, \"nope\"); }")]);
        let room = Arc::new(RoomState::new());
        rules.on_changes(
            &room,
            &[Change::Synced { initial: true }],
            "participant_sync_end",
            0.0,
        );
        let failures = rules.drain_failures();
        assert!(
            failures[0].error.message.contains("no function `nope()`"),
            "{:?}",
            failures[0]
        );
    }

    #[test]
    fn copies_of_params_and_constants_are_the_rules_own() {
        let source = r#"const PARAMS = #{ max: 1 };
            const NAMES = ["a"];
            fn on_join(p) {
                let mine = params;
                mine.max += 1;
                let names = NAMES;
                names.push(p.name);
                room.message(`${params.max} ${NAMES.len()} ${mine.max} ${names.len()}`);
            }"#;
        let mut rules = room_rules(&[("copier", source)]);
        let mut room = Arc::new(RoomState::new());
        for (uuid, name) in [("g", "Gus"), ("h", "Hal")] {
            let said = feed(
                &mut rules,
                &mut room,
                Event::Participant(person(uuid, name, Role::Guest)),
            );
            assert_eq!(said, [r#"copier: message "1 1 2 2""#], "call for {name}");
        }
        assert!(rules.drain_failures().is_empty());
    }

    #[test]
    fn closures_can_read_params_and_a_copy_of_state() {
        let source = r#"const PARAMS = #{ names: ["Ann", "Gus"], skip: "Ann" };
            fn on_join(p) {
                state.seen = ["Gus"];
                let named = params.names.filter(|n| n != params.skip);
                let seen = state.seen;
                let seen = seen.filter(|n| n == p.name && state.seen.len() > 0);
                if named == seen { p.mute(); }
            }"#;
        let mut rules = room_rules(&[("closures", source)]);
        let mut room = Arc::new(RoomState::new());
        let said = feed(
            &mut rules,
            &mut room,
            Event::Participant(person("g", "Gus", Role::Guest)),
        );
        let failures: Vec<String> = rules
            .drain_failures()
            .iter()
            .map(|f| f.error.to_string())
            .collect();
        assert_eq!(failures, Vec::<String>::new());
        assert_eq!(said, ["closures: mute Gus"]);
    }

    #[test]
    fn params_are_read_only() {
        let mut rules = room_rules(&[
            (
                "writer",
                "const PARAMS = #{ max: 1 };\nfn on_join(p) { params.max = 5; }",
            ),
            (
                "reader",
                "const PARAMS = #{ max: 1 };\nfn on_join(p) { if params.max == 1 { p.mute(); } }",
            ),
        ]);
        let mut room = Arc::new(RoomState::new());
        let said = feed(
            &mut rules,
            &mut room,
            Event::Participant(person("g", "Gus", Role::Guest)),
        );
        assert_eq!(said, ["reader: mute Gus"], "the writer changed nothing");
        let failures = rules.drain_failures();
        assert_eq!(failures.len(), 1);
        assert!(
            failures[0].rule == "writer" && failures[0].error.message.contains("constant"),
            "{:?}",
            failures[0].error
        );
    }

    #[test]
    fn chat_messages_carry_their_sender() {
        let mut rules = room_rules(&[(
            "chat",
            r#"fn on_message(msg) { if msg.text == "!lock" && msg.sender != () && msg.sender.is_host { room.lock(); } }"#,
        )]);
        let mut room = Arc::new(RoomState::new());
        feed(
            &mut rules,
            &mut room,
            Event::Participant(person("h", "Ada", Role::Chair)),
        );
        feed(
            &mut rules,
            &mut room,
            Event::Participant(person("g", "Gus", Role::Guest)),
        );
        let message = |uuid: &str| {
            Event::Message(ChatMessage {
                uuid: uuid.into(),
                payload: "!lock".into(),
                ..ChatMessage::default()
            })
        };
        assert!(feed(&mut rules, &mut room, message("g")).is_empty());
        assert_eq!(feed(&mut rules, &mut room, message("h")), ["chat: lock"]);
    }

    #[test]
    fn a_snapshot_restores_state_and_timers_in_a_new_room_rules() {
        const COUNTER: &str = "fn on_join(p) {\n    state.seen = (state.seen ?? 0) + 1;\n    if state.names == () { state.names = []; }\n    state.names.push(p.name);\n    if state.seen == 1 { after(30, \"warn\"); }\n}\nfn warn() { room.lock(); }\n";
        let mut rules = room_rules(&[("counter", COUNTER)]);
        let mut room = Arc::new(RoomState::new());
        feed(&mut rules, &mut room, Event::Roster(vec![]));
        let before = rules.revision();
        feed(
            &mut rules,
            &mut room,
            Event::Participant(person("1", "Ann", Role::Guest)),
        );
        assert!(rules.revision() > before, "a call moves the revision");
        let snapshot = rules.snapshot();
        let bytes = snapshot.to_bytes();
        assert!(
            rules.drain_failures().is_empty(),
            "{}",
            String::from_utf8_lossy(&bytes)
        );
        assert_eq!(
            snapshot.timers.len(),
            1,
            "{}",
            String::from_utf8_lossy(&bytes)
        );
        let read = RulesSnapshot::from_bytes(&bytes).unwrap();
        assert_eq!(read, snapshot);

        let mut again = room_rules(&[("counter", COUNTER)]);
        again.restore(&read, 1010.0);
        assert_eq!(again.next_timer(), Some(1030.0), "due as it was");
        assert_eq!(again.snapshot(), snapshot);
        feed(
            &mut again,
            &mut room,
            Event::Participant(person("2", "Bo", Role::Guest)),
        );
        let state = again.snapshot().states["counter"].clone();
        assert_eq!(
            state,
            serde_json::json!({ "seen": 2, "names": ["Ann", "Bo"] })
        );
        let fired: Vec<String> = again
            .fire_timers(&room, 1031.0)
            .iter()
            .map(|intent| intent.command.to_string())
            .collect();
        assert_eq!(fired, ["lock"]);
    }

    #[test]
    fn a_rule_changed_since_the_snapshot_keeps_its_state_as_a_reload_does() {
        const BEFORE: &str = "fn on_join(p) {\n    state.seen = (state.seen ?? 0) + 1;\n    after(5, \"tick\");\n}\nfn tick() { room.lock(); }\n";
        const AFTER: &str = "fn on_leave(p) {\n    state.left = true;\n}\n";
        let mut before = room_rules(&[("counter", BEFORE)]);
        let mut room = Arc::new(RoomState::new());
        feed(&mut before, &mut room, Event::Roster(vec![]));
        feed(
            &mut before,
            &mut room,
            Event::Participant(person("1", "Ann", Role::Guest)),
        );
        let snapshot = before.snapshot();

        let mut after = room_rules(&[("counter", AFTER), ("other", "fn on_join(p) {}\n")]);
        after.restore(&snapshot, 1001.0);
        let restored = after.snapshot();
        assert_eq!(restored.states["counter"], serde_json::json!({ "seen": 1 }));
        assert_eq!(
            restored.states["other"],
            serde_json::json!({}),
            "a new rule starts afresh"
        );
        // The timer's function is gone: it is dropped when due, quietly.
        assert!(after.fire_timers(&room, 1010.0).is_empty());
        assert!(after.drain_failures().is_empty());
        assert_eq!(after.next_timer(), None);
    }
}
