//! Commands: what usher asks a conference to do.
//!
//! Every command a rule can ask for. The set grew from the primary platform's
//! (seed 001), the richest of the four; each platform adapter maps what it
//! can to its own calls and declares the rest unsupported (see
//! `crate::platform::Capabilities`). Each command also has an operator-facing
//! *verb* (`mute`, `admit`, `make_host`, …): the name rules call it by, and the
//! name the audit log, `usher why` and rule tests print.

use std::fmt;

use super::participant::Role;
use super::secret::Secret;

/// A command for one conference.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// A command for the whole conference.
    Conference(ConferenceCommand),
    /// A command for one participant.
    Participant {
        /// Who it is for.
        target: Target,
        /// What to do.
        action: ParticipantCommand,
    },
}

/// The participant a command is for. The name is carried along for people
/// reading logs and the audit; only the uuid goes on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    /// The participant's uuid.
    pub uuid: String,
    /// The participant's display name when the command was decided.
    pub name: String,
}

/// Conference commands (`/api/services/<room>/<command>`).
#[derive(Debug, Clone, PartialEq)]
pub enum ConferenceCommand {
    /// Dial an endpoint into the conference.
    Dial(Box<Dial>),
    /// Lock: new guests wait in the waiting room.
    Lock,
    /// Unlock.
    Unlock,
    /// Start the conference and let waiting guests in without a host present.
    StartService,
    /// Mute all guests, including guests who join later.
    MuteGuests,
    /// Unmute all guests.
    UnmuteGuests,
    /// End the conference: disconnect everyone.
    Disconnect,
    /// Send a chat message to everyone.
    Message(Message),
    /// Override the layout for hosts and/or guests.
    OverrideLayout(Vec<LayoutOverride>),
}

/// Participant commands (`/api/services/<room>/participants/<uuid>/<command>`).
#[derive(Debug, Clone, PartialEq)]
pub enum ParticipantCommand {
    /// Remove the participant from the conference.
    Disconnect,
    /// Mute their audio.
    Mute,
    /// Unmute their audio.
    Unmute,
    /// Let them receive the presentation.
    AllowRxPresentation,
    /// Stop them receiving the presentation.
    DenyRxPresentation,
    /// Spotlight them.
    SpotlightOn,
    /// Remove their spotlight.
    SpotlightOff,
    /// Admit them from the waiting room of a locked conference (`unlock`).
    Admit,
    /// Send DTMF digits to them.
    Dtmf {
        /// The digits, e.g. `1234#`.
        digits: String,
    },
    /// Change their role.
    SetRole(Role),
    /// Move them to another conference.
    Transfer(Transfer),
    /// Add a media sub-call (WebRTC or RTMP) to them.
    Calls(CallRequest),
    /// Mute their video (`hard_vmute`).
    VideoMute,
    /// Unmute their video (`hard_uvmute`).
    VideoUnmute,
    /// Cancel their delay.
    CancelDelay,
    /// Resume their delay.
    ResumeDelay,
    /// Remove them and keep them out for this long (seconds, at least 1).
    Ban {
        /// How long they are kept out, in seconds.
        seconds: u64,
    },
}

/// The body of `dial`.
#[derive(Debug, Clone, PartialEq)]
pub struct Dial {
    /// `guest` or `chair`.
    pub role: Role,
    /// The address, short number or phone number to call.
    pub destination: String,
    /// `sip`, `h323`, `rtmp`, `mssip`, `phone` or `auto`.
    pub protocol: String,
    /// For RTMP: where to push the presentation stream.
    pub presentation_url: Option<String>,
    /// For RTMP: treat the call as a streaming call (`"yes"`/`"no"`).
    pub streaming: Option<String>,
    /// DTMF to send once connected.
    pub dtmf_sequence: Option<String>,
    /// The conference name the called endpoint sees.
    pub source_display_name: Option<String>,
    /// The conference alias to call from.
    pub source: Option<String>,
    /// `video`, `video-only` or `audio`.
    pub call_type: Option<String>,
    /// `keep_conference_alive`, `keep_conference_alive_if_multiple` or
    /// `keep_conference_alive_never`.
    pub keep_conference_alive: Option<String>,
    /// The name shown for the new participant in the roster.
    pub remote_display_name: Option<String>,
}

impl Dial {
    /// Dial `destination` as a guest over `protocol`, with no optional fields.
    pub fn new(destination: impl Into<String>, protocol: impl Into<String>) -> Self {
        Dial {
            role: Role::Guest,
            destination: destination.into(),
            protocol: protocol.into(),
            presentation_url: None,
            streaming: None,
            dtmf_sequence: None,
            source_display_name: None,
            source: None,
            call_type: None,
            keep_conference_alive: None,
            remote_display_name: None,
        }
    }
}

fn auto() -> String {
    "auto".to_owned()
}

/// The body of `message`.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// The MIME type, normally `text/plain`.
    pub mime_type: String,
    /// The text.
    pub payload: String,
}

impl Message {
    /// A plain-text message.
    pub fn text(payload: impl Into<String>) -> Self {
        Message {
            mime_type: text_plain(),
            payload: payload.into(),
        }
    }
}

fn text_plain() -> String {
    "text/plain".to_owned()
}

/// One entry of `override_layout`'s `layouts`.
#[derive(Debug, Clone, PartialEq)]
pub struct LayoutOverride {
    /// `hosts` for hosts, `""` for guests.
    pub audience: String,
    /// Participant uuids to show first; empty for anyone.
    pub actors: Vec<String>,
    /// Fill empty places by voice activity.
    pub vad_backfill: bool,
    /// `1:0`, `4:0`, `1:7`, `1:21` or `2:21`.
    pub layout: String,
    /// `off` when actors are given, otherwise `auto`.
    pub plus_n: String,
    /// Always `auto`.
    pub actors_overlay_text: String,
}

impl LayoutOverride {
    /// A layout for one audience (`hosts` or `""` for guests) with no actors.
    pub fn new(audience: &str, layout: &str) -> Self {
        LayoutOverride {
            audience: audience.to_owned(),
            actors: Vec::new(),
            vad_backfill: true,
            layout: layout.to_owned(),
            plus_n: auto(),
            actors_overlay_text: auto(),
        }
    }
}

/// The body of `transfer`. The PIN is a [`Secret`]: it is sent, never shown.
#[derive(Debug, Clone, PartialEq)]
pub struct Transfer {
    /// The conference to move them to.
    pub conference_alias: String,
    /// Their role there.
    pub role: Role,
    /// The PIN for that role there, if one is needed.
    pub pin: Option<Secret>,
}

/// The body of `calls`: a new media sub-call for a WebRTC or RTMP participant.
#[derive(Debug, Clone, PartialEq)]
pub struct CallRequest {
    /// `WEBRTC` or `RTMP`.
    pub call_type: String,
    /// WebRTC: the SDP offer.
    pub sdp: Option<String>,
    /// RTMP: `send` or `receive` for a presentation stream.
    pub present: Option<String>,
    /// RTMP: treat as a streaming call.
    pub streaming: Option<bool>,
    /// RTMP: the maximum bandwidth.
    pub bandwidth: Option<u64>,
}

/// Every verb a command can have, conference verbs first.
pub const VERBS: &[&str] = &[
    "dial",
    "lock",
    "unlock",
    "start",
    "mute_guests",
    "unmute_guests",
    "end",
    "message",
    "layout",
    "disconnect",
    "mute",
    "unmute",
    "allow_presentation",
    "deny_presentation",
    "spotlight",
    "unspotlight",
    "admit",
    "dtmf",
    "make_host",
    "make_guest",
    "set_role",
    "transfer",
    "add_call",
    "video_mute",
    "video_unmute",
    "cancel_delay",
    "resume_delay",
    "ban",
];

impl ConferenceCommand {
    /// The operator-facing verb.
    pub fn verb(&self) -> &'static str {
        match self {
            ConferenceCommand::Dial(_) => "dial",
            ConferenceCommand::Lock => "lock",
            ConferenceCommand::Unlock => "unlock",
            ConferenceCommand::StartService => "start",
            ConferenceCommand::MuteGuests => "mute_guests",
            ConferenceCommand::UnmuteGuests => "unmute_guests",
            ConferenceCommand::Disconnect => "end",
            ConferenceCommand::Message(_) => "message",
            ConferenceCommand::OverrideLayout(_) => "layout",
        }
    }
}

impl ParticipantCommand {
    /// The operator-facing verb.
    pub fn verb(&self) -> &'static str {
        match self {
            ParticipantCommand::Disconnect => "disconnect",
            ParticipantCommand::Mute => "mute",
            ParticipantCommand::Unmute => "unmute",
            ParticipantCommand::AllowRxPresentation => "allow_presentation",
            ParticipantCommand::DenyRxPresentation => "deny_presentation",
            ParticipantCommand::SpotlightOn => "spotlight",
            ParticipantCommand::SpotlightOff => "unspotlight",
            ParticipantCommand::Admit => "admit",
            ParticipantCommand::Dtmf { .. } => "dtmf",
            ParticipantCommand::SetRole(Role::Chair) => "make_host",
            ParticipantCommand::SetRole(Role::Guest) => "make_guest",
            ParticipantCommand::SetRole(Role::Other(_)) => "set_role",
            ParticipantCommand::Transfer(_) => "transfer",
            ParticipantCommand::Calls(_) => "add_call",
            ParticipantCommand::VideoMute => "video_mute",
            ParticipantCommand::VideoUnmute => "video_unmute",
            ParticipantCommand::CancelDelay => "cancel_delay",
            ParticipantCommand::ResumeDelay => "resume_delay",
            ParticipantCommand::Ban { .. } => "ban",
        }
    }
}

impl Command {
    /// A participant command.
    pub fn participant(uuid: &str, name: &str, action: ParticipantCommand) -> Command {
        Command::Participant {
            target: Target {
                uuid: uuid.to_owned(),
                name: name.to_owned(),
            },
            action,
        }
    }

    /// The operator-facing verb (`mute`, `lock`, `admit`, …).
    pub fn verb(&self) -> &'static str {
        match self {
            Command::Conference(command) => command.verb(),
            Command::Participant { action, .. } => action.verb(),
        }
    }

    /// The participant the command is for, if it is a participant command.
    pub fn target(&self) -> Option<&Target> {
        match self {
            Command::Conference(_) => None,
            Command::Participant { target, .. } => Some(target),
        }
    }
}

/// Renders a command the way people read it: `mute Bob`, `lock`,
/// `message "Welcome"`, `transfer Bob to room@example.com`. Secrets never
/// appear.
impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.verb())?;
        match self {
            Command::Conference(ConferenceCommand::Dial(dial)) => {
                write!(f, " {}", dial.destination)
            }
            Command::Conference(ConferenceCommand::Message(message)) => {
                write!(f, " {:?}", message.payload)
            }
            Command::Conference(ConferenceCommand::OverrideLayout(layouts)) => {
                let mut views: Vec<&str> = layouts.iter().map(|l| l.layout.as_str()).collect();
                views.dedup();
                write!(f, " {}", views.join(","))
            }
            Command::Conference(_) => Ok(()),
            Command::Participant { target, action } => {
                write!(f, " {}", target.name)?;
                match action {
                    ParticipantCommand::Dtmf { digits } => write!(f, " {digits}"),
                    ParticipantCommand::SetRole(Role::Other(role)) => write!(f, " {role}"),
                    ParticipantCommand::Transfer(transfer) => {
                        write!(f, " to {}", transfer.conference_alias)
                    }
                    _ => Ok(()),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_reads_like_an_operator_would_say_it() {
        let mute = Command::participant("u1", "Bob", ParticipantCommand::Mute);
        assert_eq!(mute.to_string(), "mute Bob");
        assert_eq!(
            Command::Conference(ConferenceCommand::Lock).to_string(),
            "lock"
        );
        let msg = Command::Conference(ConferenceCommand::Message(Message::text("Full")));
        assert_eq!(msg.to_string(), r#"message "Full""#);
        let host = Command::participant("u1", "Bob", ParticipantCommand::SetRole(Role::Chair));
        assert_eq!(host.to_string(), "make_host Bob");
    }

    #[test]
    fn transfer_never_shows_its_pin() {
        let transfer = Command::participant(
            "u1",
            "Bob",
            ParticipantCommand::Transfer(Transfer {
                conference_alias: "other@example.com".into(),
                role: Role::Guest,
                pin: Some(Secret::new("9876")),
            }),
        );
        assert_eq!(transfer.to_string(), "transfer Bob to other@example.com");
        assert!(!format!("{transfer:?}").contains("9876"));
    }
}
