//! The step vocabulary: things people do in a conference.
//!
//! Scenario timelines and rule tests speak the same language, so a step that
//! works in one works in the other:
//!
//! ```yaml
//! - join: Bob                          # a guest joins
//! - join: { name: Ada, role: host }    # with details
//! - waiting_room: Carl                 # arrives in the waiting room
//! - leave: Bob
//! - present: Ada
//! - stop_presenting
//! - speak: Ada                         # Ada's voice is active
//! - silence                            # nobody is speaking
//! - chat: { from: Ada, text: "!lock" }
//! - raise_hand: Bob
//! - lower_hand: Bob
//! - layout: "1:7"                      # the platform changes the layout
//! - spotlight: Bob                     # a host, by hand in their own client
//! - unspotlight: Bob
//! - mute: Bob
//! - unmute: Bob
//! - lock
//! - unlock
//! - wait: 5m                           # time passes
//! ```

use serde::{Deserialize, Serialize};

use crate::model::{Role, Span};

/// One thing that happens in a conference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Step {
    /// Someone joins the conference (or its waiting room, if it is locked
    /// and they are a guest).
    Join(Joiner),
    /// Someone arrives in the waiting room, whatever the lock says.
    WaitingRoom(Joiner),
    /// Someone leaves.
    Leave(String),
    /// Someone starts presenting (taking over from any current presenter).
    Present(String),
    /// The current presentation stops.
    StopPresenting,
    /// Someone's voice becomes the active one on stage.
    Speak(String),
    /// Nobody is speaking.
    Silence,
    /// Someone sends a chat message to the room.
    Chat(Chat),
    /// Someone raises a hand.
    RaiseHand(String),
    /// Someone lowers a hand.
    LowerHand(String),
    /// The platform switches to another layout on its own.
    Layout(String),
    /// A host spotlights someone by hand, from their own client.
    Spotlight(String),
    /// A host removes someone's spotlight by hand.
    Unspotlight(String),
    /// A host mutes someone by hand.
    Mute(String),
    /// A host unmutes someone by hand.
    Unmute(String),
    /// A host locks the room by hand.
    Lock,
    /// A host unlocks the room by hand.
    Unlock,
    /// Time passes.
    Wait(Span),
}

/// Who joins, and how. Written as just a name (a guest) or as a map.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Joiner {
    /// Display name.
    pub name: String,
    /// Host or guest (default guest).
    pub role: Role,
    /// Joins already muted.
    pub muted: bool,
    /// Audio only.
    pub audio_only: bool,
    /// Protocol (default `webrtc`).
    pub protocol: String,
    /// Address (default derived from the name).
    pub uri: Option<String>,
}

impl Joiner {
    /// A guest with this name and every default.
    pub fn guest(name: impl Into<String>) -> Self {
        Joiner {
            name: name.into(),
            role: Role::Guest,
            muted: false,
            audio_only: false,
            protocol: "webrtc".to_owned(),
            uri: None,
        }
    }

    /// A host with this name and every default.
    pub fn host(name: impl Into<String>) -> Self {
        Joiner {
            role: Role::Chair,
            ..Joiner::guest(name)
        }
    }
}

impl<'de> Deserialize<'de> for Joiner {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Details {
            name: String,
            #[serde(default = "guest")]
            role: Role,
            #[serde(default)]
            muted: bool,
            #[serde(default)]
            audio_only: bool,
            #[serde(default = "webrtc")]
            protocol: String,
            #[serde(default)]
            uri: Option<String>,
        }
        fn guest() -> Role {
            Role::Guest
        }
        fn webrtc() -> String {
            "webrtc".to_owned()
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Form {
            Name(String),
            Details(Details),
        }
        let form = Form::deserialize(deserializer).map_err(|_| {
            serde::de::Error::custom(
                "expected a name, or a map with `name` and optional `role` (host or guest), \
                 `muted`, `audio_only`, `protocol`, `uri`",
            )
        })?;
        Ok(match form {
            Form::Name(name) => Joiner::guest(name),
            Form::Details(details) => Joiner {
                name: details.name,
                role: details.role,
                muted: details.muted,
                audio_only: details.audio_only,
                protocol: details.protocol,
                uri: details.uri,
            },
        })
    }
}

/// A chat message from someone in the room.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Chat {
    /// The sender's display name.
    pub from: String,
    /// The text.
    pub text: String,
}

impl Step {
    /// The step as one short line, for logs and test output.
    pub fn describe(&self) -> String {
        match self {
            Step::Join(j) => format!("join {} ({})", j.name, j.role),
            Step::WaitingRoom(j) => format!("{} waits in the waiting room", j.name),
            Step::Leave(name) => format!("{name} leaves"),
            Step::Present(name) => format!("{name} presents"),
            Step::StopPresenting => "presentation stops".to_owned(),
            Step::Speak(name) => format!("{name} speaks"),
            Step::Silence => "silence".to_owned(),
            Step::Chat(chat) => format!("{}: {:?}", chat.from, chat.text),
            Step::RaiseHand(name) => format!("{name} raises a hand"),
            Step::LowerHand(name) => format!("{name} lowers a hand"),
            Step::Layout(view) => format!("layout becomes {view}"),
            Step::Spotlight(name) => format!("a host spotlights {name}"),
            Step::Unspotlight(name) => format!("a host removes {name}'s spotlight"),
            Step::Mute(name) => format!("a host mutes {name}"),
            Step::Unmute(name) => format!("a host unmutes {name}"),
            Step::Lock => "a host locks the room".to_owned(),
            Step::Unlock => "a host unlocks the room".to_owned(),
            Step::Wait(span) => format!("wait {span}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml;

    #[test]
    fn reads_the_documented_vocabulary() {
        let yaml = r#"
- join: Bob
- join: { name: Ada, role: host, muted: true }
- waiting_room: Carl
- leave: Bob
- present: Ada
- stop_presenting
- speak: Ada
- silence
- chat: { from: Ada, text: "!lock" }
- raise_hand: Bob
- lower_hand: Bob
- layout: "1:7"
- wait: 5m
- spotlight: Bob
- lock
"#;
        let steps: Vec<Step> = yaml::from_str(yaml).unwrap();
        assert_eq!(steps.len(), 15);
        assert_eq!(steps[14], Step::Lock);
        assert_eq!(steps[0], Step::Join(Joiner::guest("Bob")));
        assert_eq!(
            steps[1],
            Step::Join(Joiner {
                muted: true,
                ..Joiner::host("Ada")
            })
        );
        assert_eq!(steps[5], Step::StopPresenting);
        assert_eq!(steps[12], Step::Wait(Span::secs(300)));
    }

    #[test]
    fn a_misspelt_step_is_rejected() {
        let err = yaml::from_str::<Vec<Step>>("- join: Bob\n- jion: Bob").unwrap_err();
        assert!(err.to_string().starts_with("2:3: "), "{err}");
        assert!(err.to_string().contains("unknown variant `jion`"), "{err}");
        let err = yaml::from_str::<Vec<Step>>("- join: { name: Bob, rol: host }").unwrap_err();
        assert!(err.to_string().contains("`name`"), "{err}");
    }
}
