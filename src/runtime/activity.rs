//! The activity feed: what is happening, in words, as it happens.
//!
//! Rooms publish what they see and the dispatcher what it did. `usher demo`
//! prints the feed as a timeline; nothing is built when no one listens.

use crate::model::{Change, Participant};
use crate::runtime::audit::AuditRecord;

/// One thing worth telling.
#[derive(Debug, Clone)]
pub enum Activity {
    /// Something happened in a room.
    Room {
        /// The room.
        room: String,
        /// What happened, in words.
        text: String,
    },
    /// A command's outcome.
    Command(Box<AuditRecord>),
}

/// A change in words, when it is worth telling.
pub fn describe(change: &Change, room_size: usize) -> Option<String> {
    let text = match change {
        Change::Joined(p) if p.is_waiting() => format!("{} is waiting to be admitted", who(p)),
        Change::Joined(p) if p.in_room() => format!("{} joined", who(p)),
        Change::Joined(_) => return None,
        Change::Left(p) => format!("{} left", p.display_name),
        Change::Updated { before, after } => return describe_update(before, after),
        Change::PresentationStarted {
            presentation,
            presenter,
        } => {
            let name = presenter
                .as_ref()
                .map_or(presentation.presenter_name.as_str(), |p| {
                    p.display_name.as_str()
                });
            format!("{name} started presenting")
        }
        Change::PresentationStopped { .. } => "the presentation stopped".to_owned(),
        Change::RoomUpdated { before, after } => {
            let mut parts = Vec::new();
            if before.locked != after.locked {
                parts.push(if after.locked {
                    "the room is locked"
                } else {
                    "the room is unlocked"
                });
            }
            if before.guests_muted != after.guests_muted {
                parts.push(if after.guests_muted {
                    "guests are muted"
                } else {
                    "guests may speak"
                });
            }
            if before.started != after.started && after.started {
                parts.push("the conference has started");
            }
            if parts.is_empty() {
                return None;
            }
            parts.join(", ")
        }
        Change::LayoutChanged { after, .. } => format!("the layout is now {}", after.view),
        Change::SpeakerChanged { after: Some(p), .. } => format!("{} is speaking", p.display_name),
        Change::SpeakerChanged { after: None, .. } => return None,
        Change::Message(message) => format!("{} says {:?}", message.origin, message.payload),
        Change::Synced { initial: true } => format!("in sync: {room_size} in the room"),
        Change::Synced { initial: false } => "resynced after a reconnect".to_owned(),
        Change::Disconnected { reason } => format!("usher was disconnected: {reason}"),
    };
    Some(text)
}

fn who(p: &Participant) -> String {
    let role = if p.is_host() { "host" } else { "guest" };
    format!("{} ({role})", p.display_name)
}

fn describe_update(before: &Participant, after: &Participant) -> Option<String> {
    let name = &after.display_name;
    let text = if before.is_waiting() && after.in_room() {
        format!("{name} was admitted")
    } else if !before.in_room() && after.in_room() {
        format!("{} joined", who(after))
    } else if before.muted != after.muted {
        format!(
            "{name} is {}",
            if after.muted { "muted" } else { "unmuted" }
        )
    } else if !before.hand_raised() && after.hand_raised() {
        format!("{name} raised a hand")
    } else if before.hand_raised() && !after.hand_raised() {
        format!("{name} lowered their hand")
    } else if before.spotlit() != after.spotlit() {
        format!(
            "{name} is {}",
            if after.spotlit() {
                "spotlit"
            } else {
                "no longer spotlit"
            }
        )
    } else if before.role != after.role {
        format!(
            "{name} is now a {}",
            if after.is_host() { "host" } else { "guest" }
        )
    } else {
        return None;
    };
    Some(text)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::model::{Role, ServiceType};

    #[test]
    fn changes_read_as_sentences() {
        let bob = Participant {
            uuid: "b".into(),
            display_name: "Bob".into(),
            role: Role::Guest,
            ..Participant::default()
        };
        let waiting = Participant {
            service_type: ServiceType::WaitingRoom,
            ..bob.clone()
        };
        let muted = Participant {
            muted: true,
            ..bob.clone()
        };
        assert_eq!(
            describe(&Change::Joined(Arc::new(bob.clone())), 1).unwrap(),
            "Bob (guest) joined"
        );
        assert_eq!(
            describe(&Change::Joined(Arc::new(waiting.clone())), 1).unwrap(),
            "Bob (guest) is waiting to be admitted"
        );
        let admitted = Change::Updated {
            before: Arc::new(waiting),
            after: Arc::new(bob.clone()),
        };
        assert_eq!(describe(&admitted, 1).unwrap(), "Bob was admitted");
        let mute = Change::Updated {
            before: Arc::new(bob.clone()),
            after: Arc::new(muted),
        };
        assert_eq!(describe(&mute, 1).unwrap(), "Bob is muted");
        let same = Change::Updated {
            before: Arc::new(bob.clone()),
            after: Arc::new(bob),
        };
        assert_eq!(describe(&same, 1), None);
    }
}
