//! The participant: one person or endpoint in a conference.
//!
//! This is the platform-neutral form every adapter fills in. The field set
//! grew from the primary platform's (seed 001), the richest of the four;
//! adapters leave what their platform does not know at its default.

use serde::{Deserialize, Serialize};

use super::open_enum::open_enum;

open_enum! {
    /// A participant's role: a host moderates, a guest does not.
    pub enum Role {
        /// A host: can moderate.
        Chair = "chair" | "host",
        /// A guest.
        Guest = "guest",
    }
}

impl Default for Role {
    /// An absent role is unknown: neither host nor guest.
    fn default() -> Self {
        Role::Other(String::new())
    }
}

open_enum! {
    /// Where a participant's call stands. A participant with no service type
    /// is taken to be in the conference.
    #[derive(Default)]
    pub enum ServiceType {
        /// Being dialled out to; not in the room yet.
        Connecting = "connecting",
        /// Held in the waiting room of a locked conference.
        WaitingRoom = "waiting_room",
        /// Entering a PIN.
        Ivr = "ivr",
        /// In the conference.
        #[default]
        Conference = "conference",
        /// In a lecture (a conference where guests only listen).
        Lecture = "lecture",
        /// A point-to-point gateway call.
        Gateway = "gateway",
    }
}

open_enum! {
    /// Who placed the call.
    #[derive(Default)]
    pub enum CallDirection {
        /// The participant called in.
        #[default]
        In = "in",
        /// The conference dialled the participant.
        Out = "out",
    }
}

open_enum! {
    /// Whether a participant may receive the presentation stream.
    #[derive(Default)]
    pub enum RxPresentationPolicy {
        /// May receive it (the default).
        #[default]
        Allow = "ALLOW",
        /// May not.
        Deny = "DENY",
    }
}

/// One participant, in usher's own terms. Adapters build it from their
/// platform's payloads; it serializes (for recordings) under these names.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Participant {
    /// The platform's id for this participant; stable for the whole call.
    pub uuid: String,
    /// The name shown in the roster.
    pub display_name: String,
    /// Host or guest.
    pub role: Role,
    /// Audio muted by a host or the API.
    pub muted: bool,
    /// Sending the presentation (second) stream.
    pub presenting: bool,
    /// When the participant was spotlit (UNIX seconds); 0 when not spotlit.
    pub spotlight: f64,
    /// Where the call stands: connecting, waiting room, in the conference, …
    pub service_type: ServiceType,
    /// Signalling protocol: `sip`, `h323`, `webrtc`, `rtmp`, `api`, …
    pub protocol: String,
    /// Whether the participant called in or was dialled.
    pub call_direction: CallDirection,
    /// The participant's address.
    pub uri: String,
    /// The conference alias the participant dialled.
    pub local_alias: String,
    /// The endpoint's or browser's vendor string.
    pub vendor: String,
    /// When the participant joined (UNIX seconds).
    pub start_time: f64,
    /// Whether the participant may receive the presentation.
    pub rx_presentation_policy: RxPresentationPolicy,
    /// Has audio/video media (false for API and control-only participants).
    pub has_media: bool,
    /// An audio-only call.
    pub audio_only: bool,
    /// A call with video.
    pub video_call: bool,
    /// Video muted by a host.
    pub video_muted: bool,
    /// Muted on the participant's own device.
    pub client_muted: bool,
    /// When the participant raised a hand (UNIX seconds); 0 when not raised.
    pub buzz_time: f64,
    /// A participant from outside the platform (for example via a gateway).
    pub external: bool,
    /// A streaming or recording participant.
    pub streaming: bool,
}

impl Participant {
    /// A host (chair).
    pub fn is_host(&self) -> bool {
        self.role == Role::Chair
    }

    /// A guest.
    pub fn is_guest(&self) -> bool {
        self.role == Role::Guest
    }

    /// Held in the waiting room.
    pub fn is_waiting(&self) -> bool {
        self.service_type == ServiceType::WaitingRoom
    }

    /// Actually in the room: not connecting, waiting or entering a PIN.
    pub fn in_room(&self) -> bool {
        !matches!(
            self.service_type,
            ServiceType::Connecting | ServiceType::WaitingRoom | ServiceType::Ivr
        )
    }

    /// Has a raised hand.
    pub fn hand_raised(&self) -> bool {
        self.buzz_time > 0.0
    }

    /// Is spotlit.
    pub fn spotlit(&self) -> bool {
        self.spotlight > 0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_enum_values_are_kept() {
        let p: Participant = serde_json::from_str(
            r#"{"uuid":"u","role":"unknown","service_type":"test_call","call_direction":"sideways","rx_presentation_policy":"MAYBE"}"#,
        )
        .unwrap();
        assert_eq!(p.role, Role::Other("unknown".into()));
        assert!(!p.is_host() && !p.is_guest());
        assert_eq!(p.service_type, ServiceType::Other("test_call".into()));
        assert_eq!(p.call_direction, CallDirection::Other("sideways".into()));
        let back = serde_json::to_value(&p).unwrap();
        assert_eq!(back["role"], "unknown");
        assert_eq!(back["service_type"], "test_call");
    }

    #[test]
    fn roles_accept_either_spelling() {
        assert_eq!(Role::parse("HOST"), Role::Chair);
        assert_eq!(Role::parse("GUEST"), Role::Guest);
        assert_eq!(Role::Chair.as_str(), "chair");
    }
}
