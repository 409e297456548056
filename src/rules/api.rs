//! The script API: everything a rule can see and ask for.
//!
//! Inside a handler a rule reads `room`, `params` and `state`, gets
//! participants as values with fields and command methods, and uses `now()`,
//! timers, `log` and a few text helpers. A handler call runs with its
//! [`CallContext`] installed on the thread ([`CallContext::run`]); `room`,
//! `params` and `state` are resolved from it (Rhai functions cannot see outer
//! variables), and every command method records an intent in it. Nothing here
//! performs I/O.

use std::cell::RefCell;
use std::sync::Arc;

use rhai::{
    Array, Dynamic, Engine, EvalAltResult, FLOAT, FuncRegistration, INT, ImmutableString, Map,
};

use super::binding::Params;
use super::rule::Rule;
use super::state;
use super::timers::{Timer, TimerRequest};
use crate::model::{
    ChatMessage, Command, ConferenceCommand, Dial, Layout, LayoutOverride, Message, Participant,
    ParticipantCommand, Role, RoomFlags, RoomState, Secret, Transfer,
};

type ScriptResult<T> = Result<T, Box<EvalAltResult>>;

/// A named, documented read of a participant: a field, or a filter for a list.
type Field<T> = (&'static str, &'static str, fn(&Participant) -> T);

/// A named, documented text field of a participant.
type TextField = (&'static str, &'static str, fn(&Participant) -> &str);

/// A named, documented read of the room.
type RoomField<T> = (&'static str, &'static str, fn(&RoomState) -> T);

/// A named, documented command with no arguments.
type Verb<C> = (&'static str, &'static str, fn() -> C);

/// A function registered with a doc comment, which editors show (see
/// `usher rules definitions`).
fn documented(name: &str, doc: &str) -> FuncRegistration {
    FuncRegistration::new(name).with_comments([doc_comment(doc)])
}

/// A property registered with a doc comment.
pub(crate) fn documented_getter(name: &str, doc: &str) -> FuncRegistration {
    FuncRegistration::new_getter(name).with_comments([doc_comment(doc)])
}

fn doc_comment(doc: &str) -> String {
    doc.lines()
        .map(|line| format!("/// {line}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Everything one handler call can reach, and what it asked for.
pub(crate) struct CallContext {
    pub room: Arc<RoomState>,
    pub rule: Arc<Rule>,
    /// The rule's parameters, which scripts read as a read-only map. Each
    /// use gets its own copy: a shared value would be locked by every use,
    /// failing a closure that reads `params` inside a method on `params`,
    /// and rooms (which share their defaults) run on several threads.
    pub params: Params,
    /// The rule's `state` in this room: a handle, so writes persist.
    pub state: Dynamic,
    pub now: f64,
    pub commands: Vec<Command>,
    /// How many commands this call may ask for (`limits.intents`): one
    /// rule asking for thousands would hold its room's queue for minutes.
    pub command_room: usize,
    pub timers: Vec<TimerRequest>,
    /// The id the next timer started in this room gets.
    pub next_timer_id: i64,
    /// How many more timers this rule may start in this room.
    pub timer_room: usize,
    /// The room's zone and schedule, when it has them.
    pub schedule: Option<Arc<crate::timetable::RoomSchedule>>,
    /// What the call wrote with `log` or `print`.
    pub logs: Vec<String>,
}

thread_local! {
    /// The context of the handler call running on this thread. A call runs
    /// synchronously on one thread, so a thread-local is exactly its scope,
    /// and reaching it costs no allocation (a Rhai tag would cost two).
    static CURRENT: RefCell<Option<CallContext>> = const { RefCell::new(None) };
}

impl CallContext {
    /// Runs `call` with this context installed, and hands the context back
    /// with what the call recorded in it.
    pub(crate) fn run<T>(self, call: impl FnOnce() -> T) -> (T, CallContext) {
        let outer = CURRENT.replace(Some(self));
        let result = call();
        let context = CURRENT
            .replace(outer)
            .expect("the context stays installed for the whole call");
        (result, context)
    }
}

/// A participant as rules see it: read-only fields and command methods.
#[derive(Debug, Clone)]
pub struct Person(pub Arc<Participant>);

/// The room as rules see it: a handle with nothing in it; every read goes
/// to the room of the call in progress, so handing `room` to a script costs
/// no allocation.
#[derive(Debug, Clone, Copy)]
pub struct RoomView;

/// Uses the current call's context, or fails when a rule uses the API
/// outside a handler (for example at the top level of the file).
pub(crate) fn with_call<T>(use_context: impl FnOnce(&mut CallContext) -> T) -> ScriptResult<T> {
    CURRENT
        .with_borrow_mut(|current| current.as_mut().map(use_context))
        .ok_or_else(|| "this is only available inside a handler".into())
}

/// Reads the room of the call in progress.
fn with_room<T>(read: impl FnOnce(&RoomState) -> T) -> ScriptResult<T> {
    with_call(|call| read(&call.room))
        .map_err(|_| "`room` is only available inside a handler".into())
}

fn record(command: Command) -> ScriptResult<()> {
    with_call(|call| {
        if call.commands.len() >= call.command_room {
            return Err(format!(
                "this call asked for more than {} commands (limits.intents); none of them is sent",
                call.command_room
            )
            .into());
        }
        call.commands.push(command);
        Ok(())
    })?
}

/// Resolves `room`, `params`, `state` and the rule's own top-level constants
/// inside handlers.
pub(crate) fn resolve_variable(name: &str, index: usize) -> ScriptResult<Option<Dynamic>> {
    if index > 0 {
        return Ok(None);
    }
    let resolved = CURRENT.with_borrow(|current| {
        current.as_ref().map(|call| match name {
            "room" => Some(Dynamic::from(RoomView)),
            "params" => Some(Dynamic::from_map((*call.params.0).clone())),
            "state" => Some(call.state.clone()),
            _ => call.rule.constant(name).cloned(),
        })
    });
    match (name, resolved) {
        ("room" | "params" | "state", None) => Err(format!(
            "`{name}` is only available inside a handler such as `fn on_join(p)`"
        )
        .into()),
        (_, resolved) => Ok(resolved.flatten()),
    }
}

/// Registers the whole API on an engine.
pub(crate) fn register(engine: &mut Engine) {
    name_results(engine);
    register_participant(engine);
    register_room(engine);
    register_functions(engine);
    super::schedule::register(engine);
}

/// Names a fallible function's result by what it gives when it succeeds,
/// as definition files show it (`-> bool`, not `-> Result<bool, …>`).
fn name_results(engine: &mut Engine) {
    use std::any::type_name;
    let names = [
        (type_name::<ScriptResult<bool>>(), "bool"),
        (type_name::<ScriptResult<i64>>(), "int"),
        (type_name::<ScriptResult<f64>>(), "float"),
        (type_name::<ScriptResult<()>>(), "()"),
        (type_name::<ScriptResult<Dynamic>>(), "?"),
        (type_name::<ScriptResult<String>>(), "string"),
        (type_name::<ScriptResult<Array>>(), "array"),
    ];
    for (rust, script) in names {
        engine.register_type_with_name_raw(rust, script);
    }
}

fn register_participant(engine: &mut Engine) {
    engine.register_type_with_name::<Person>("Participant");
    let flags: [Field<bool>; 17] = [
        ("is_host", "A host (chair).", Participant::is_host),
        ("is_guest", "A guest.", Participant::is_guest),
        ("muted", "Their audio is muted.", |p| p.muted),
        ("presenting", "They are presenting.", |p| p.presenting),
        ("spotlit", "They are spotlit.", Participant::spotlit),
        (
            "hand_raised",
            "Their hand is raised.",
            Participant::hand_raised,
        ),
        (
            "waiting",
            "They are in the waiting room.",
            Participant::is_waiting,
        ),
        (
            "in_room",
            "They are in the room proper.",
            Participant::in_room,
        ),
        ("audio_only", "An audio-only call.", |p| p.audio_only),
        ("video_call", "A video call.", |p| p.video_call),
        ("video_muted", "Their video is muted.", |p| p.video_muted),
        ("client_muted", "They muted themselves.", |p| p.client_muted),
        ("has_media", "Their call carries media.", |p| p.has_media),
        ("external", "An external participant.", |p| p.external),
        ("streaming", "A streaming participant.", |p| p.streaming),
        (
            "receives_presentation",
            "They are sent the presentation.",
            |p| p.rx_presentation_policy == crate::model::RxPresentationPolicy::Allow,
        ),
        ("dialled_out", "The room dialled them.", |p| {
            p.call_direction == crate::model::CallDirection::Out
        }),
    ];
    for (name, doc, read) in flags {
        documented_getter(name, doc).register_into_engine(engine, move |p: &mut Person| read(&p.0));
    }
    let texts: [TextField; 8] = [
        ("name", "Their display name.", |p| &p.display_name),
        ("uuid", "Their id in this room.", |p| &p.uuid),
        ("role", "\"host\" or \"guest\".", |p| match &p.role {
            Role::Chair => "host",
            other => other.as_str(),
        }),
        (
            "protocol",
            "How they call in: \"webrtc\", \"sip\", \"h323\"…",
            |p| &p.protocol,
        ),
        ("uri", "Their address.", |p| &p.uri),
        ("alias", "The alias they dialled.", |p| &p.local_alias),
        ("vendor", "Their client.", |p| &p.vendor),
        ("service_type", "\"conference\", \"waiting_room\"…", |p| {
            p.service_type.as_str()
        }),
    ];
    for (name, doc, read) in texts {
        documented_getter(name, doc).register_into_engine(engine, move |p: &mut Person| {
            ImmutableString::from(read(&p.0))
        });
    }
    let times: [Field<f64>; 3] = [
        ("joined_at", "When they joined (UNIX seconds).", |p| {
            p.start_time
        }),
        (
            "spotlit_at",
            "When they were spotlit (0: not spotlit).",
            |p| p.spotlight,
        ),
        (
            "hand_raised_at",
            "When they raised their hand (0: not raised).",
            |p| p.buzz_time,
        ),
    ];
    for (name, doc, read) in times {
        documented_getter(name, doc).register_into_engine(engine, move |p: &mut Person| read(&p.0));
    }
    documented_getter("speaking", "They are the active speaker.")
        .register_into_engine(engine, |p: &mut Person| {
            with_room(|room| room.is_speaking(&p.0.uuid))
        });
    documented_getter(
        "heard_at",
        "When they were last heard on the stage: now while they speak, 0 if not yet.",
    )
    .register_into_engine(engine, |p: &mut Person| {
        with_call(|call| call.room.heard_at(&p.0.uuid, call.now))
    });
    engine.register_fn("==", |a: Person, b: Person| a.0.uuid == b.0.uuid);
    engine.register_fn("!=", |a: Person, b: Person| a.0.uuid != b.0.uuid);
    engine.register_fn("to_string", |p: &mut Person| describe(&p.0));
    engine.register_fn("to_debug", |p: &mut Person| describe(&p.0));

    let commands: [Verb<ParticipantCommand>; 12] = [
        ("mute", "Mute their audio.", || ParticipantCommand::Mute),
        ("unmute", "Unmute their audio.", || {
            ParticipantCommand::Unmute
        }),
        ("spotlight", "Spotlight them.", || {
            ParticipantCommand::SpotlightOn
        }),
        ("unspotlight", "Remove their spotlight.", || {
            ParticipantCommand::SpotlightOff
        }),
        ("disconnect", "Disconnect them.", || {
            ParticipantCommand::Disconnect
        }),
        ("admit", "Let them in from the waiting room.", || {
            ParticipantCommand::Admit
        }),
        ("make_host", "Make them a host.", || {
            ParticipantCommand::SetRole(Role::Chair)
        }),
        ("make_guest", "Make them a guest.", || {
            ParticipantCommand::SetRole(Role::Guest)
        }),
        ("allow_presentation", "Send them the presentation.", || {
            ParticipantCommand::AllowRxPresentation
        }),
        (
            "deny_presentation",
            "Stop sending them the presentation.",
            || ParticipantCommand::DenyRxPresentation,
        ),
        ("video_mute", "Mute their video.", || {
            ParticipantCommand::VideoMute
        }),
        ("video_unmute", "Unmute their video.", || {
            ParticipantCommand::VideoUnmute
        }),
    ];
    for (name, doc, action) in commands {
        documented(name, doc).register_into_engine(engine, move |p: &mut Person| {
            record(participant_command(p, action()))
        });
    }
    let ban_doc = "Remove them and keep them out for this many minutes.";
    documented("ban", ban_doc).register_into_engine(engine, |p: &mut Person, minutes: INT| {
        ban(p, minutes as FLOAT)
    });
    documented("ban", ban_doc)
        .register_into_engine(engine, |p: &mut Person, minutes: FLOAT| ban(p, minutes));
    documented("dtmf", "Send them DTMF tones.").register_into_engine(
        engine,
        |p: &mut Person, digits: ImmutableString| {
            let action = ParticipantCommand::Dtmf {
                digits: digits.to_string(),
            };
            record(participant_command(p, action))
        },
    );
    let transfer_doc = "Move them to another room, as \"host\" or \"guest\" (the default), with its PIN if it has one.";
    documented("transfer", transfer_doc)
        .register_into_engine(engine, |p: &mut Person, alias: ImmutableString| {
            transfer(p, &alias, "guest", None)
        });
    documented("transfer", transfer_doc).register_into_engine(
        engine,
        |p: &mut Person, alias: ImmutableString, role: ImmutableString| {
            transfer(p, &alias, &role, None)
        },
    );
    documented("transfer", transfer_doc).register_into_engine(
        engine,
        |p: &mut Person, alias: ImmutableString, role: ImmutableString, pin: ImmutableString| {
            transfer(p, &alias, &role, Some(&pin))
        },
    );
}

fn describe(p: &Participant) -> String {
    let role = match &p.role {
        Role::Chair => "host",
        Role::Guest => "guest",
        Role::Other(other) => other,
    };
    format!("{} ({role})", p.display_name)
}

/// `p.ban(minutes)`: at least a second, at most a year.
fn ban(p: &mut Person, minutes: FLOAT) -> ScriptResult<()> {
    if !minutes.is_finite() || minutes <= 0.0 {
        return Err(format!("ban takes a positive number of minutes, not {minutes}").into());
    }
    let seconds = (minutes * 60.0).clamp(1.0, 365.0 * 86_400.0).round() as u64;
    record(participant_command(p, ParticipantCommand::Ban { seconds }))
}

fn participant_command(p: &Person, action: ParticipantCommand) -> Command {
    Command::participant(&p.0.uuid, &p.0.display_name, action)
}

fn parse_role(role: &str) -> ScriptResult<Role> {
    match Role::parse(role) {
        Role::Other(other) => {
            Err(format!("unknown role {other:?}; use \"host\" or \"guest\"").into())
        }
        known => Ok(known),
    }
}

fn transfer(p: &Person, alias: &str, role: &str, pin: Option<&str>) -> ScriptResult<()> {
    let action = ParticipantCommand::Transfer(Transfer {
        conference_alias: alias.to_owned(),
        role: parse_role(role)?,
        pin: pin.map(Secret::new),
    });
    record(participant_command(p, action))
}

fn register_room(engine: &mut Engine) {
    engine.register_type_with_name::<RoomView>("Room");
    let flags: [RoomField<bool>; 3] = [
        (
            "locked",
            "The room is locked: newcomers wait to be admitted.",
            |room| room.flags().locked,
        ),
        ("guests_muted", "Guests are muted as a whole.", |room| {
            room.flags().guests_muted
        }),
        ("started", "The conference has started.", |room| {
            room.flags().started
        }),
    ];
    for (name, doc, read) in flags {
        documented_getter(name, doc)
            .register_into_engine(engine, move |_: &mut RoomView| with_room(read));
    }
    documented_getter(
        "layout",
        "The layout: `view` and the `participants` on screen, or () before the first.",
    )
    .register_into_engine(engine, |_: &mut RoomView| {
        with_room(|room| room.layout().map_or(Dynamic::UNIT, layout_map))
    });
    let counts: [RoomField<usize>; 5] = [
        ("count", "People in the room proper.", |room| {
            room.counts().in_room
        }),
        ("guest_count", "Guests in the room proper.", |room| {
            room.counts().guests
        }),
        ("host_count", "Hosts in the room proper.", |room| {
            room.counts().hosts
        }),
        ("waiting_count", "People in the waiting room.", |room| {
            room.counts().waiting
        }),
        ("participant_count", "Everyone, waiting or not.", |room| {
            room.len()
        }),
    ];
    for (name, doc, read) in counts {
        documented(name, doc).register_into_engine(engine, move |_: &mut RoomView| {
            with_room(|room| read(room) as i64)
        });
    }
    let lists: [Field<bool>; 4] = [
        ("participants", "Everyone, waiting or not.", |_| true),
        ("guests", "The guests in the room proper.", |p| {
            p.in_room() && p.is_guest()
        }),
        ("hosts", "The hosts in the room proper.", |p| {
            p.in_room() && p.is_host()
        }),
        (
            "waiting",
            "The people in the waiting room.",
            Participant::is_waiting,
        ),
    ];
    for (name, doc, keep) in lists {
        documented(name, doc).register_into_engine(engine, move |_: &mut RoomView| {
            with_room(|room| -> Array {
                room.participants()
                    .filter(|p| keep(p))
                    .map(person)
                    .collect()
            })
        });
    }
    documented("presenter", "Who presents, or ().")
        .register_into_engine(engine, |_: &mut RoomView| {
            with_room(|room| person_or_unit(room.presenter()))
        });
    documented("speaker", "The active speaker, or ().")
        .register_into_engine(engine, |_: &mut RoomView| {
            with_room(|room| person_or_unit(room.speaker()))
        });
    documented(
        "find",
        "The participant with this display name (any case), or ().",
    )
    .register_into_engine(engine, |_: &mut RoomView, name: ImmutableString| {
        with_room(|room| person_or_unit(room.find(&name)))
    });
    documented("participant", "The participant with this uuid, or ().").register_into_engine(
        engine,
        |_: &mut RoomView, uuid: ImmutableString| {
            with_room(|room| person_or_unit(room.participant(&uuid)))
        },
    );

    let commands: [Verb<ConferenceCommand>; 6] = [
        ("lock", "Lock the room.", || ConferenceCommand::Lock),
        ("unlock", "Unlock the room.", || ConferenceCommand::Unlock),
        ("mute_guests", "Mute all guests.", || {
            ConferenceCommand::MuteGuests
        }),
        ("unmute_guests", "Unmute all guests.", || {
            ConferenceCommand::UnmuteGuests
        }),
        ("start", "Start the conference.", || {
            ConferenceCommand::StartService
        }),
        ("end", "End the conference for everyone.", || {
            ConferenceCommand::Disconnect
        }),
    ];
    for (name, doc, command) in commands {
        documented(name, doc).register_into_engine(engine, move |_: &mut RoomView| {
            record(Command::Conference(command()))
        });
    }
    documented("message", "Send a chat message to the room.").register_into_engine(
        engine,
        |_: &mut RoomView, text: Dynamic| {
            let message = Message::text(state::display(&text));
            record(Command::Conference(ConferenceCommand::Message(message)))
        },
    );
    let layouts = format!(
        "Set the layout ({}), for everyone or for hosts and guests apart.",
        LAYOUTS.join(", ")
    );
    documented("layout", &layouts)
        .register_into_engine(engine, |_: &mut RoomView, view: ImmutableString| {
            set_layout(&view, &view)
        });
    documented("layout", &layouts).register_into_engine(
        engine,
        |_: &mut RoomView, hosts: ImmutableString, guests: ImmutableString| {
            set_layout(&hosts, &guests)
        },
    );
    let dial_doc = "Call someone into the room; options: role, protocol, name, call_type, dtmf, source, source_name, streaming, presentation_url, keep_alive.";
    documented("dial", dial_doc)
        .register_into_engine(engine, |_: &mut RoomView, destination: ImmutableString| {
            dial(&destination, Map::new())
        });
    documented("dial", dial_doc).register_into_engine(
        engine,
        |_: &mut RoomView, destination: ImmutableString, options: Map| dial(&destination, options),
    );
}

/// A participant as a script value.
pub(crate) fn person(p: &Arc<Participant>) -> Dynamic {
    Dynamic::from(Person(p.clone()))
}

fn person_or_unit(p: Option<&Arc<Participant>>) -> Dynamic {
    p.map_or(Dynamic::UNIT, person)
}

/// A layout as a script value: `view` and the `participants` on screen.
pub(crate) fn layout_map(layout: &Layout) -> Dynamic {
    let mut map = Map::new();
    map.insert("view".into(), layout.view.clone().into());
    let on_screen: Array = layout
        .participants
        .iter()
        .map(|uuid| Dynamic::from(uuid.clone()))
        .collect();
    map.insert("participants".into(), on_screen.into());
    Dynamic::from_map(map)
}

/// A chat message as a script value: `text`, `from`, `uuid`, `type`,
/// `direct` and the `sender` (a participant, or `()` when unknown).
pub(crate) fn message_map(message: &ChatMessage, sender: Option<&Arc<Participant>>) -> Dynamic {
    let mut map = Map::new();
    map.insert("text".into(), message.payload.clone().into());
    map.insert("from".into(), message.origin.clone().into());
    map.insert("uuid".into(), message.uuid.clone().into());
    map.insert("type".into(), message.mime_type.clone().into());
    map.insert("direct".into(), message.direct.into());
    map.insert("sender".into(), sender.map_or(Dynamic::UNIT, person));
    Dynamic::from_map(map)
}

/// The room's flags as a script value: `locked`, `guests_muted`, `started`.
pub(crate) fn flags_map(flags: &RoomFlags) -> Dynamic {
    let mut map = Map::new();
    map.insert("locked".into(), flags.locked.into());
    map.insert("guests_muted".into(), flags.guests_muted.into());
    map.insert("started".into(), flags.started.into());
    Dynamic::from_map(map)
}

/// The layouts the platform supports.
const LAYOUTS: [&str; 5] = ["1:0", "4:0", "1:7", "1:21", "2:21"];

fn set_layout(hosts: &str, guests: &str) -> ScriptResult<()> {
    for view in [hosts, guests] {
        if !LAYOUTS.contains(&view) {
            return Err(
                format!("unknown layout {view:?}; use one of {}", LAYOUTS.join(", ")).into(),
            );
        }
    }
    let layouts = vec![
        LayoutOverride::new("hosts", hosts),
        LayoutOverride::new("", guests),
    ];
    record(Command::Conference(ConferenceCommand::OverrideLayout(
        layouts,
    )))
}

fn dial(destination: &str, options: Map) -> ScriptResult<()> {
    let mut dial = Dial::new(destination, "auto");
    for (key, value) in options {
        let text = value.to_string();
        match key.as_str() {
            "role" => dial.role = parse_role(&text)?,
            "protocol" => dial.protocol = text,
            "name" => dial.remote_display_name = Some(text),
            "call_type" => dial.call_type = Some(text),
            "dtmf" => dial.dtmf_sequence = Some(text),
            "source" => dial.source = Some(text),
            "source_name" => dial.source_display_name = Some(text),
            "streaming" => dial.streaming = Some(text),
            "presentation_url" => dial.presentation_url = Some(text),
            "keep_alive" => dial.keep_conference_alive = Some(text),
            other => {
                return Err(format!(
                    "unknown dial option `{other}`; use role, protocol, name, call_type, dtmf, \
                     source, source_name, streaming, presentation_url or keep_alive"
                )
                .into());
            }
        }
    }
    record(Command::Conference(ConferenceCommand::Dial(Box::new(dial))))
}

fn register_functions(engine: &mut Engine) {
    documented(
        "now",
        "The time (UNIX seconds): the daemon's clock, a fake one in tests.",
    )
    .register_into_engine(engine, || with_call(|call| call.now));
    let after = "Call this rule's function `name()` once, in `seconds`; returns the timer's id.";
    documented("after", after)
        .register_into_engine(engine, |seconds: f64, function: ImmutableString| {
            start_timer(seconds, &function, false)
        });
    documented("after", after)
        .register_into_engine(engine, |seconds: i64, function: ImmutableString| {
            start_timer(seconds as f64, &function, false)
        });
    let every = "Call this rule's function `name()` every `seconds`; returns the timer's id.";
    documented("every", every)
        .register_into_engine(engine, |seconds: f64, function: ImmutableString| {
            start_timer(seconds, &function, true)
        });
    documented("every", every)
        .register_into_engine(engine, |seconds: i64, function: ImmutableString| {
            start_timer(seconds as f64, &function, true)
        });
    let cancel = "Cancel a timer, by its id or every timer calling the named function.";
    documented("cancel", cancel)
        .register_into_engine(engine, |id: i64| timer_request(TimerRequest::CancelId(id)));
    documented("cancel", cancel).register_into_engine(engine, |function: ImmutableString| {
        timer_request(TimerRequest::CancelFunction(function.to_string()))
    });
    documented(
        "log",
        "Write a line to usher's log (and under a failing step in `usher test`).",
    )
    .register_into_engine(engine, |message: Dynamic| {
        log_line(state::display(&message))
    });
    documented(
        "matches",
        "The text matches a pattern, ignoring case: `*` is any run of characters, `?` any one.",
    )
    .register_into_engine(engine, |text: ImmutableString, pattern: ImmutableString| {
        glob_match(&pattern, &text)
    });
    documented(
        "matches_any",
        "The text matches any of these patterns (see `matches`).",
    )
    .register_into_engine(engine, |text: ImmutableString, patterns: Array| {
        patterns
            .iter()
            .any(|pattern| glob_match(&pattern.to_string(), &text))
    });
    documented(
        "timestamp",
        "An RFC 3339 time (\"2026-11-23T09:00:00+08:00\", or with `[Europe/Berlin]`) as UNIX seconds.",
    )
    .register_into_engine(engine, |text: ImmutableString| -> ScriptResult<f64> {
        crate::clock::parse_timestamp(&text).map_err(|err| err.to_string().into())
    });
    documented(
        "time_of_day",
        "The time of day (\"09:30\") of a UNIX time in a zone (\"Europe/Berlin\" or \"+08:00\").",
    )
    .register_into_engine(
        engine,
        |at: f64, utc_offset: ImmutableString| -> ScriptResult<String> {
            crate::clock::time_of_day(at, &utc_offset).map_err(|err| err.to_string().into())
        },
    );
}

/// Keeps a line a rule wrote for the log with the call writing it; outside
/// a call (the top level of a file) it goes to the log at once.
pub(crate) fn log_line(text: String) {
    if let Err(text) = CURRENT.with_borrow_mut(|current| match current.as_mut() {
        Some(call) => {
            call.logs.push(text);
            Ok(())
        }
        None => Err(text),
    }) {
        tracing::info!(target: "usher::rules::log", "{text}");
    }
}

/// The shortest period `every` accepts, so a typo cannot spin a room.
const MIN_PERIOD: f64 = 0.1;

fn start_timer(seconds: f64, function: &str, repeat: bool) -> ScriptResult<i64> {
    with_call(|call| {
        if !call.rule.has_function(function, 0) {
            return Err(format!(
                "no function `{function}()` with no parameters in this rule to call from a timer"
            )
            .into());
        }
        if !seconds.is_finite() || (repeat && seconds < MIN_PERIOD) {
            return Err(format!("`every` needs a period of at least {MIN_PERIOD} seconds").into());
        }
        let started = call
            .timers
            .iter()
            .filter(|t| matches!(t, TimerRequest::Start(_)))
            .count();
        if started >= call.timer_room {
            return Err("too many timers in this room; cancel the ones you no longer need".into());
        }
        let id = call.next_timer_id;
        call.next_timer_id += 1;
        call.timers.push(TimerRequest::Start(Timer {
            id,
            rule: call.rule.name().into(),
            function: function.to_owned(),
            due: call.now + seconds.max(0.0),
            period: repeat.then_some(seconds),
        }));
        Ok(id)
    })?
}

fn timer_request(request: TimerRequest) -> ScriptResult<()> {
    with_call(|call| call.timers.push(request))
}

/// Case-insensitive glob match: `*` is any run of characters, `?` any one.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.to_lowercase().chars().collect();
    let text: Vec<char> = text.to_lowercase().chars().collect();
    let (mut p, mut t) = (0, 0);
    let mut backtrack: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some('*') => {
                backtrack = Some((p, t));
                p += 1;
            }
            Some(&c) if c == '?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match backtrack {
                Some((star, matched)) => {
                    p = star + 1;
                    t = matched + 1;
                    backtrack = Some((star, matched + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn globs_match_like_shells_ignoring_case() {
        assert!(glob_match("interpreter*", "Interpreter (FR)"));
        assert!(glob_match("*bot", "RecordBot"));
        assert!(glob_match("a?c", "ABC"));
        assert!(glob_match("*", ""));
        assert!(glob_match("a*b*c", "a-x-b-y-c"));
        assert!(!glob_match("a*b", "a-x-c"));
        assert!(!glob_match("bob", "bobby"));
    }
}
