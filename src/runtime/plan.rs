//! Planning: which of one event's intents are worth sending.
//!
//! Rules may ask for what is already so, ask twice, or ask for opposite
//! things. [`plan`] decides, against the current room state, without I/O:
//!
//! - a **duplicate** of an earlier intent (same command, same target) is
//!   merged into it;
//! - a **conflict** (mute and unmute of the same person, lock and unlock)
//!   is resolved by rule order: the rule listed first wins, and the loser is
//!   reported. Conflicts are judged against what is planned, before the
//!   state: "unmute Ben" after a planned "mute Ben" is a conflict, not a no-op;
//! - a command **already on its way** (sent moments ago, its effect not yet
//!   seen in the room) is not sent again;
//! - a **no-op** (muting the muted, locking the locked, admitting someone
//!   not waiting, any command for someone no longer in the room) is dropped;
//! - a command the room's platform **cannot do** (its capabilities) is
//!   dropped as unsupported, never sent.
//!
//! The dispatcher sends what is left; `usher test` shows it. Shadow intents
//! are planned on their own, so a rule in shadow mode never suppresses a real
//! one.

use std::fmt;

use crate::model::{Command, ConferenceCommand, Participant, ParticipantCommand, RoomState};
use crate::platform::Capabilities;
use crate::rules::Intent;

/// Why an intent was not sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dropped {
    /// The room is already in the requested state.
    NoOp(&'static str),
    /// The same command was sent moments ago and its effect is not yet seen.
    InFlight,
    /// An earlier intent of this event asks for the same; `by` is its rule.
    Duplicate {
        /// The rule whose intent is kept.
        by: String,
    },
    /// An earlier intent of this event asks for the opposite; `by` is its
    /// rule, which comes first in the room's rule order.
    Conflict {
        /// The rule whose intent wins.
        by: String,
        /// What that rule asked for.
        kept: String,
    },
    /// The room's platform cannot carry out this command.
    Unsupported,
}

impl fmt::Display for Dropped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dropped::NoOp(why) => write!(f, "no-op: {why}"),
            Dropped::InFlight => f.write_str("already on its way"),
            Dropped::Duplicate { by } => write!(f, "duplicate of the same command from {by}"),
            Dropped::Conflict { by, kept } => {
                write!(f, "conflicts with `{kept}` from {by}, which comes first")
            }
            Dropped::Unsupported => f.write_str("the room's platform cannot do this"),
        }
    }
}

/// The outcome of planning one event's intents.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Plan {
    /// Intents to send, in order.
    pub send: Vec<Intent>,
    /// Shadow intents that would have been sent.
    pub shadow: Vec<Intent>,
    /// Intents dropped, with why.
    pub dropped: Vec<(Intent, Dropped)>,
}

/// Plans one event's intents against the room as it is now, the commands
/// still `in_flight` and what the room's platform can do.
pub fn plan(
    intents: Vec<Intent>,
    room: &RoomState,
    in_flight: &[Command],
    capabilities: &Capabilities,
) -> Plan {
    if intents.is_empty() {
        return Plan::default();
    }
    let (shadow, real): (Vec<Intent>, Vec<Intent>) =
        intents.into_iter().partition(|intent| intent.shadow);
    let mut result = Plan::default();
    let (send, dropped) = plan_group(real, room, in_flight, capabilities);
    result.send = send;
    result.dropped = dropped;
    let (shadow_send, shadow_dropped) = plan_group(shadow, room, &[], capabilities);
    result.shadow = shadow_send;
    result.dropped.extend(shadow_dropped);
    result
}

type Group = (Vec<Intent>, Vec<(Intent, Dropped)>);

fn plan_group(
    intents: Vec<Intent>,
    room: &RoomState,
    in_flight: &[Command],
    capabilities: &Capabilities,
) -> Group {
    let mut send: Vec<Intent> = Vec::new();
    let mut dropped = Vec::new();
    for intent in intents {
        if !capabilities.supports(&intent.command) {
            dropped.push((intent, Dropped::Unsupported));
        } else if let Some(kept) = send.iter().find(|kept| kept.command == intent.command) {
            let by = kept.rule.to_string();
            dropped.push((intent, Dropped::Duplicate { by }));
        } else if let Some(kept) = send
            .iter()
            .find(|kept| opposes(&kept.command, &intent.command))
        {
            let reason = Dropped::Conflict {
                by: kept.rule.to_string(),
                kept: kept.command.to_string(),
            };
            tracing::info!(loser = %intent.rule, command = %intent.command, "{reason}");
            dropped.push((intent, reason));
        } else if in_flight.contains(&intent.command) {
            dropped.push((intent, Dropped::InFlight));
        } else if let Some(why) = no_op(&intent.command, room) {
            dropped.push((intent, Dropped::NoOp(why)));
        } else {
            send.push(intent);
        }
    }
    (send, dropped)
}

/// Why a command would change nothing, if it would not.
pub fn no_op(command: &Command, room: &RoomState) -> Option<&'static str> {
    let flags = room.flags();
    match command {
        Command::Conference(command) => match command {
            ConferenceCommand::Lock if flags.locked => Some("the room is already locked"),
            ConferenceCommand::Unlock if !flags.locked => Some("the room is not locked"),
            ConferenceCommand::MuteGuests if flags.guests_muted => Some("guests are already muted"),
            ConferenceCommand::UnmuteGuests if !flags.guests_muted => Some("guests are not muted"),
            ConferenceCommand::StartService if flags.started => {
                Some("the conference has already started")
            }
            _ => None,
        },
        Command::Participant { target, action } => match room.participant(&target.uuid) {
            None => Some("the participant is no longer in the room"),
            Some(p) => participant_no_op(action, p),
        },
    }
}

fn participant_no_op(action: &ParticipantCommand, p: &Participant) -> Option<&'static str> {
    use crate::model::RxPresentationPolicy::{Allow, Deny};
    match action {
        ParticipantCommand::Mute if p.muted => Some("already muted"),
        ParticipantCommand::Unmute if !p.muted => Some("not muted"),
        ParticipantCommand::SpotlightOn if p.spotlit() => Some("already spotlit"),
        ParticipantCommand::SpotlightOff if !p.spotlit() => Some("not spotlit"),
        ParticipantCommand::Admit if !p.is_waiting() => Some("not waiting to be admitted"),
        ParticipantCommand::SetRole(role) if &p.role == role => Some("already has that role"),
        ParticipantCommand::VideoMute if p.video_muted => Some("video already muted"),
        ParticipantCommand::VideoUnmute if !p.video_muted => Some("video not muted"),
        ParticipantCommand::AllowRxPresentation if p.rx_presentation_policy == Allow => {
            Some("already receives the presentation")
        }
        ParticipantCommand::DenyRxPresentation if p.rx_presentation_policy == Deny => {
            Some("already denied the presentation")
        }
        _ => None,
    }
}

/// True when two commands ask for opposite things on the same target.
pub fn opposes(a: &Command, b: &Command) -> bool {
    use ConferenceCommand as C;
    use ParticipantCommand as P;
    match (a, b) {
        (Command::Conference(a), Command::Conference(b)) => matches!(
            (a, b),
            (C::Lock, C::Unlock)
                | (C::Unlock, C::Lock)
                | (C::MuteGuests, C::UnmuteGuests)
                | (C::UnmuteGuests, C::MuteGuests)
                | (C::OverrideLayout(_), C::OverrideLayout(_))
        ),
        (
            Command::Participant {
                target: ta,
                action: a,
            },
            Command::Participant {
                target: tb,
                action: b,
            },
        ) if ta.uuid == tb.uuid => matches!(
            (a, b),
            (P::Mute, P::Unmute)
                | (P::Unmute, P::Mute)
                | (P::SpotlightOn, P::SpotlightOff)
                | (P::SpotlightOff, P::SpotlightOn)
                | (P::VideoMute, P::VideoUnmute)
                | (P::VideoUnmute, P::VideoMute)
                | (P::AllowRxPresentation, P::DenyRxPresentation)
                | (P::DenyRxPresentation, P::AllowRxPresentation)
                | (P::SetRole(_), P::SetRole(_))
                | (P::Transfer(_), P::Transfer(_))
        ),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::model::{Event, FlagsUpdate, Role};
    use crate::rules::Trigger;

    const ALL: Capabilities = Capabilities::new(crate::model::command::VERBS);

    fn room() -> RoomState {
        let mut room = RoomState::new();
        for (uuid, name, muted) in [("a", "Ann", true), ("b", "Ben", false)] {
            room.apply(Event::Participant(Participant {
                uuid: uuid.into(),
                display_name: name.into(),
                role: Role::Guest,
                muted,
                ..Participant::default()
            }));
        }
        room.apply(Event::RoomUpdate(FlagsUpdate {
            locked: Some(true),
            ..FlagsUpdate::default()
        }));
        room
    }

    fn intent(rule: &str, command: Command) -> Intent {
        Intent {
            rule: rule.into(),
            command,
            trigger: Arc::new(Trigger {
                handler: "on_join".into(),
                event: "participant_create".into(),
                participant: None,
            }),
            shadow: false,
        }
    }

    fn mute(uuid: &str, name: &str) -> Command {
        Command::participant(uuid, name, ParticipantCommand::Mute)
    }

    fn shown(intents: &[Intent]) -> Vec<String> {
        intents
            .iter()
            .map(|i| format!("{}: {}", i.rule, i.command))
            .collect()
    }

    #[test]
    fn drops_what_is_already_so() {
        let plan = plan(
            vec![
                intent("r", mute("a", "Ann")),
                intent("r", mute("b", "Ben")),
                intent("r", Command::Conference(ConferenceCommand::Lock)),
                intent("r", mute("gone", "Gus")),
            ],
            &room(),
            &[],
            &ALL,
        );
        assert_eq!(shown(&plan.send), ["r: mute Ben"]);
        let reasons: Vec<String> = plan.dropped.iter().map(|(_, d)| d.to_string()).collect();
        assert_eq!(
            reasons,
            [
                "no-op: already muted",
                "no-op: the room is already locked",
                "no-op: the participant is no longer in the room"
            ]
        );
    }

    #[test]
    fn merges_duplicates_and_resolves_conflicts_by_rule_order() {
        let unmute = Command::participant("b", "Ben", ParticipantCommand::Unmute);
        let plan = plan(
            vec![
                intent("first", mute("b", "Ben")),
                intent("second", mute("b", "Ben")),
                intent("third", unmute.clone()),
                intent("first", Command::Conference(ConferenceCommand::Unlock)),
                intent("second", Command::Conference(ConferenceCommand::Lock)),
            ],
            &room(),
            &[],
            &ALL,
        );
        assert_eq!(shown(&plan.send), ["first: mute Ben", "first: unlock"]);
        let reasons: Vec<String> = plan.dropped.iter().map(|(_, d)| d.to_string()).collect();
        assert_eq!(
            reasons,
            [
                "duplicate of the same command from first",
                "conflicts with `mute Ben` from first, which comes first",
                "conflicts with `unlock` from first, which comes first",
            ]
        );
    }

    #[test]
    fn commands_on_their_way_are_not_sent_again() {
        let plan = plan(
            vec![intent("r", mute("b", "Ben"))],
            &room(),
            &[mute("b", "Ben")],
            &ALL,
        );
        assert!(plan.send.is_empty());
        assert_eq!(plan.dropped[0].1, Dropped::InFlight);
    }

    #[test]
    fn shadow_intents_never_suppress_real_ones() {
        let mut shadow = intent("shadowed", mute("b", "Ben"));
        shadow.shadow = true;
        let plan = plan(
            vec![shadow, intent("real", mute("b", "Ben"))],
            &room(),
            &[],
            &ALL,
        );
        assert_eq!(shown(&plan.send), ["real: mute Ben"]);
        assert_eq!(shown(&plan.shadow), ["shadowed: mute Ben"]);
    }

    #[test]
    fn what_the_platform_cannot_do_is_never_sent() {
        const NO_CHAT: Capabilities = Capabilities::new(&["mute", "lock"]);
        let message = Command::Conference(ConferenceCommand::Message(crate::model::Message::text(
            "hi",
        )));
        let plan = plan(
            vec![intent("r", message), intent("r", mute("b", "Ben"))],
            &room(),
            &[],
            &NO_CHAT,
        );
        assert_eq!(shown(&plan.send), ["r: mute Ben"]);
        assert_eq!(plan.dropped[0].1, Dropped::Unsupported);
    }
}
