//! Two safeguards between a room's rules and its dispatcher.
//!
//! - [`InFlight`] remembers commands sent but not yet seen to take effect,
//!   so the same command is not sent twice while the platform catches up.
//! - [`FlipFlopGuard`] stops rules that fight each other (one mutes, another
//!   unmutes, over and over) from making a participant's microphone blink:
//!   more than a few opposite commands to one target in a minute and the
//!   rest are held back, naming the rules involved.
//!
//! Both forget as they go, so neither grows with the commands a long-lived
//! room sends: the guard keeps only targets commanded within its window, and
//! commands on their way are dropped once done for longer than they may
//! take to show.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::plan::no_op;
use crate::model::{Command, ConferenceCommand, ParticipantCommand, Role, RoomState};

/// How long a command that succeeded may go unconfirmed by an event before
/// it no longer counts as on its way.
const SETTLE_WITHIN: Duration = Duration::from_secs(5);

/// Commands on their way to the platform.
#[derive(Debug, Default)]
pub struct InFlight {
    commands: Vec<Command>,
    entries: Vec<Entry>,
}

/// What is known about one command on its way.
#[derive(Debug)]
struct Entry {
    id: u64,
    /// When the platform answered that it was carried out.
    done: Option<Instant>,
    /// The room state has shown its effect (possibly before the answer).
    seen: bool,
}

impl InFlight {
    /// Remembers a command handed to the dispatcher under `id`, if its effect
    /// can show in the room. Others (a message, DTMF, a dial) cannot be
    /// confirmed, and asking for them twice means sending them twice.
    pub fn add(&mut self, id: u64, command: Command) {
        if !shows_in_room(&command) {
            return;
        }
        self.commands.push(command);
        self.entries.push(Entry {
            id,
            done: None,
            seen: false,
        });
    }

    /// The dispatcher is done with `id`. A failed command is forgotten at
    /// once, and so is a successful one whose effect the room already
    /// showed; any other waits to be confirmed by the room state, for at
    /// most [`SETTLE_WITHIN`] (so a room without events keeps no more than
    /// that much, too).
    pub fn finish(&mut self, id: u64, ok: bool, now: Instant) {
        if let Some(index) = self.entries.iter().position(|entry| entry.id == id) {
            if ok && !self.entries[index].seen {
                self.entries[index].done = Some(now);
            } else {
                self.remove(index);
            }
        }
        let mut index = 0;
        while index < self.entries.len() {
            let done_long_ago = self.entries[index]
                .done
                .is_some_and(|done| now.duration_since(done) >= SETTLE_WITHIN);
            if done_long_ago {
                self.remove(index);
            } else {
                index += 1;
            }
        }
    }

    /// Notes the effects the room now shows, and forgets commands that are
    /// done and were confirmed, and successful ones that went unconfirmed
    /// for too long.
    pub fn settle(&mut self, room: &RoomState, now: Instant) {
        let mut index = 0;
        while index < self.entries.len() {
            if no_op(&self.commands[index], room).is_some() {
                // The platform's event often arrives before its answer; the
                // effect may be undone again before the answer comes.
                self.entries[index].seen = true;
            }
            let entry = &self.entries[index];
            let done_long_ago = entry
                .done
                .is_some_and(|done| now.duration_since(done) >= SETTLE_WITHIN);
            let confirmed = entry.done.is_some() && entry.seen;
            if done_long_ago || confirmed {
                self.remove(index);
            } else {
                index += 1;
            }
        }
    }

    /// The commands still on their way.
    pub fn commands(&self) -> &[Command] {
        &self.commands
    }

    fn remove(&mut self, index: usize) {
        self.commands.remove(index);
        self.entries.remove(index);
    }
}

/// True for commands whose effect the room state shows (so it can confirm
/// them): a lock, a mute, an admission, a participant leaving, …
fn shows_in_room(command: &Command) -> bool {
    use ConferenceCommand as C;
    use ParticipantCommand as P;
    match command {
        Command::Conference(command) => matches!(
            command,
            C::Lock | C::Unlock | C::MuteGuests | C::UnmuteGuests | C::StartService
        ),
        Command::Participant { action, .. } => !matches!(
            action,
            P::Dtmf { .. } | P::Calls(_) | P::CancelDelay | P::ResumeDelay
        ),
    }
}

/// The window the flip-flop guard looks back over.
const FLIP_FLOP_WINDOW: Duration = Duration::from_secs(60);

struct Sent {
    at: Instant,
    on: bool,
    rule: Arc<str>,
}

/// The guard looks for targets to forget once it holds at least this many.
const SWEEP_FROM: usize = 64;

/// Holds back opposite commands that come too often to one target.
pub struct FlipFlopGuard {
    limit: u32,
    history: HashMap<String, VecDeque<Sent>>,
    /// Targets left by the last sweep: the next one comes when there are
    /// twice as many, so sweeping costs O(1) a command.
    kept_by_last_sweep: usize,
}

impl FlipFlopGuard {
    /// Tolerates `limit` changes of direction per target per minute.
    pub fn new(limit: u32) -> Self {
        FlipFlopGuard {
            limit,
            history: HashMap::new(),
            kept_by_last_sweep: 0,
        }
    }

    /// Admits a command about to be sent, or refuses it with the rules that
    /// took part in the flip-flopping.
    pub fn admit(
        &mut self,
        command: &Command,
        rule: &Arc<str>,
        now: Instant,
    ) -> Result<(), Vec<String>> {
        let Some((key, on)) = direction(command) else {
            return Ok(());
        };
        self.forget_quiet_targets(now);
        let sent = self.history.entry(key).or_default();
        while sent
            .front()
            .is_some_and(|oldest| now.duration_since(oldest.at) > FLIP_FLOP_WINDOW)
        {
            sent.pop_front();
        }
        let mut flips = sent
            .iter()
            .zip(sent.iter().skip(1))
            .filter(|(a, b)| a.on != b.on)
            .count() as u32;
        if sent.back().is_some_and(|last| last.on != on) {
            flips += 1;
        }
        if flips > self.limit {
            let mut rules: Vec<String> = sent.iter().map(|s| s.rule.to_string()).collect();
            rules.push(rule.to_string());
            rules.sort();
            rules.dedup();
            return Err(rules);
        }
        sent.push_back(Sent {
            at: now,
            on,
            rule: rule.clone(),
        });
        Ok(())
    }
}

impl FlipFlopGuard {
    /// Forgets targets not commanded within the window (people long gone),
    /// once the map has doubled since it last did.
    fn forget_quiet_targets(&mut self, now: Instant) {
        if self.history.len() < (self.kept_by_last_sweep * 2).max(SWEEP_FROM) {
            return;
        }
        self.history.retain(|_, sent| {
            sent.back()
                .is_some_and(|last| now.duration_since(last.at) <= FLIP_FLOP_WINDOW)
        });
        self.kept_by_last_sweep = self.history.len();
    }

    /// How many targets the guard remembers.
    #[cfg(test)]
    fn targets(&self) -> usize {
        self.history.len()
    }
}

/// The setting a command moves, and which way: `("u1/mute", true)` for
/// muting u1. Commands without an opposite have none.
fn direction(command: &Command) -> Option<(String, bool)> {
    use ConferenceCommand as C;
    use ParticipantCommand as P;
    let (setting, on) = match command {
        Command::Conference(C::Lock) => ("room/lock".to_owned(), true),
        Command::Conference(C::Unlock) => ("room/lock".to_owned(), false),
        Command::Conference(C::MuteGuests) => ("room/guests_muted".to_owned(), true),
        Command::Conference(C::UnmuteGuests) => ("room/guests_muted".to_owned(), false),
        Command::Conference(_) => return None,
        Command::Participant { target, action } => {
            let (setting, on) = match action {
                P::Mute => ("mute", true),
                P::Unmute => ("mute", false),
                P::SpotlightOn => ("spotlight", true),
                P::SpotlightOff => ("spotlight", false),
                P::VideoMute => ("video", true),
                P::VideoUnmute => ("video", false),
                P::DenyRxPresentation => ("presentation", true),
                P::AllowRxPresentation => ("presentation", false),
                P::SetRole(Role::Chair) => ("role", true),
                P::SetRole(Role::Guest) => ("role", false),
                _ => return None,
            };
            (format!("{}/{setting}", target.uuid), on)
        }
    };
    Some((setting, on))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Event, Participant};

    fn mute(on: bool) -> Command {
        let action = if on {
            ParticipantCommand::Mute
        } else {
            ParticipantCommand::Unmute
        };
        Command::participant("u1", "Bob", action)
    }

    #[test]
    fn commands_the_room_cannot_confirm_are_never_on_their_way() {
        let mut in_flight = InFlight::default();
        let message = Command::Conference(ConferenceCommand::Message(crate::model::Message::text(
            "Only hosts can use chat commands.",
        )));
        in_flight.add(1, message);
        in_flight.add(
            2,
            Command::participant("u1", "Bob", ParticipantCommand::Dtmf { digits: "1".into() }),
        );
        assert!(
            in_flight.commands().is_empty(),
            "the same message to a second guest is sent again"
        );
        in_flight.add(3, Command::Conference(ConferenceCommand::Lock));
        assert_eq!(in_flight.commands().len(), 1);
    }

    #[test]
    fn opposite_commands_are_held_back_past_the_limit() {
        let mut guard = FlipFlopGuard::new(2);
        let (muter, unmuter): (Arc<str>, Arc<str>) = ("muter".into(), "unmuter".into());
        let start = Instant::now();
        assert!(guard.admit(&mute(true), &muter, start).is_ok());
        assert!(
            guard.admit(&mute(true), &muter, start).is_ok(),
            "repeats are not flips"
        );
        assert!(guard.admit(&mute(false), &unmuter, start).is_ok());
        assert!(guard.admit(&mute(true), &muter, start).is_ok());
        assert_eq!(
            guard.admit(&mute(false), &unmuter, start),
            Err(vec!["muter".to_owned(), "unmuter".to_owned()])
        );
        let other = Command::participant("u2", "Cat", ParticipantCommand::Unmute);
        assert!(
            guard.admit(&other, &unmuter, start).is_ok(),
            "other targets are unaffected"
        );
        let later = start + FLIP_FLOP_WINDOW + Duration::from_secs(1);
        assert!(
            guard.admit(&mute(false), &unmuter, later).is_ok(),
            "the window moves on"
        );
    }

    /// A lecture where a new guest is muted every 50 ms for ten thousand
    /// guests: the guard remembers only those of the last minute or so.
    #[test]
    fn the_guard_forgets_targets_not_commanded_within_its_window() {
        let mut guard = FlipFlopGuard::new(3);
        let rule: Arc<str> = "auto_mute_guests".into();
        let start = Instant::now();
        let step = Duration::from_millis(50);
        let in_a_window = (FLIP_FLOP_WINDOW.as_millis() / step.as_millis()) as usize + 1;
        for n in 0..10_000u32 {
            let mute = Command::participant(&format!("u-{n}"), "Guest", ParticipantCommand::Mute);
            assert!(guard.admit(&mute, &rule, start + step * n).is_ok());
            assert!(
                guard.targets() <= 2 * in_a_window + SWEEP_FROM,
                "after {n} guests the guard remembers {} targets",
                guard.targets()
            );
        }
    }

    /// Commands done but never confirmed (a room whose events stopped) are
    /// forgotten as later ones finish.
    #[test]
    fn unconfirmed_commands_are_forgotten_without_events() {
        let mut in_flight = InFlight::default();
        let start = Instant::now();
        let step = Duration::from_millis(100);
        for n in 0..5_000u32 {
            let id = u64::from(n);
            in_flight.add(
                id,
                Command::participant(&format!("u-{n}"), "Guest", ParticipantCommand::Mute),
            );
            in_flight.finish(id, true, start + step * n);
            assert!(
                in_flight.commands().len() <= 51,
                "after {n} commands {} are still on their way",
                in_flight.commands().len()
            );
        }
    }

    #[test]
    fn in_flight_commands_settle_when_confirmed_or_failed() {
        let mut room = RoomState::new();
        room.apply(Event::Participant(Participant {
            uuid: "u1".into(),
            display_name: "Bob".into(),
            ..Participant::default()
        }));
        let now = Instant::now();
        let mut in_flight = InFlight::default();
        in_flight.add(1, mute(true));
        in_flight.add(2, Command::Conference(ConferenceCommand::Lock));
        in_flight.settle(&room, now);
        assert_eq!(
            in_flight.commands().len(),
            2,
            "nothing is confirmed before it is done"
        );
        in_flight.finish(2, false, now);
        assert_eq!(in_flight.commands(), [mute(true)]);
        in_flight.finish(1, true, now);
        in_flight.settle(&room, now);
        assert_eq!(
            in_flight.commands().len(),
            1,
            "done but not yet seen in the room"
        );
        room.apply(Event::Participant(Participant {
            uuid: "u1".into(),
            display_name: "Bob".into(),
            muted: true,
            ..Participant::default()
        }));
        in_flight.settle(&room, now);
        assert!(in_flight.commands().is_empty());
    }

    #[test]
    fn an_effect_seen_before_the_answer_confirms_the_command() {
        let bob = |muted| {
            Event::Participant(Participant {
                uuid: "u1".into(),
                display_name: "Bob".into(),
                muted,
                ..Participant::default()
            })
        };
        let mut room = RoomState::new();
        room.apply(bob(false));
        let now = Instant::now();
        let mut in_flight = InFlight::default();
        in_flight.add(1, mute(true));
        // The platform's event comes first, then someone unmutes Bob again...
        room.apply(bob(true));
        in_flight.settle(&room, now);
        room.apply(bob(false));
        in_flight.settle(&room, now);
        assert_eq!(in_flight.commands(), [mute(true)], "not done yet");
        // ...and when the answer arrives, the mute is no longer on its way,
        // so muting Bob again is possible at once.
        in_flight.finish(1, true, now);
        assert!(in_flight.commands().is_empty());
    }
}
