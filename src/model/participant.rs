//! The participant: one person or endpoint in a conference.
//!
//! This is the normalized form of the platform's `participant_create` /
//! `participant_update` payload. It deserializes straight from that payload,
//! tolerating every spelling real servers use, and serializes back to it (the
//! simulator and recordings speak the same wire format).

use serde::{Deserialize, Serialize};

use super::lenient;
use super::open_enum::open_enum;

open_enum! {
    /// A participant's role. The platform says `chair`; sessions say `HOST`.
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

/// One participant as the platform describes it. Field names follow Rust;
/// the serde names are the wire names.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Participant {
    /// The platform's id for this participant; stable for the whole call.
    #[serde(deserialize_with = "lenient::text")]
    pub uuid: String,
    /// The name shown in the roster.
    #[serde(default, deserialize_with = "lenient::text")]
    pub display_name: String,
    /// Host or guest.
    #[serde(default)]
    pub role: Role,
    /// Audio muted by a host or the API.
    #[serde(
        rename = "is_muted",
        default,
        deserialize_with = "lenient::flag",
        serialize_with = "lenient::yes_no"
    )]
    pub muted: bool,
    /// Sending the presentation (second) stream.
    #[serde(
        rename = "is_presenting",
        default,
        deserialize_with = "lenient::flag",
        serialize_with = "lenient::yes_no"
    )]
    pub presenting: bool,
    /// When the participant was spotlit (UNIX seconds); 0 when not spotlit.
    #[serde(default, deserialize_with = "lenient::number")]
    pub spotlight: f64,
    /// Where the call stands: connecting, waiting room, in the conference, …
    #[serde(default)]
    pub service_type: ServiceType,
    /// Signalling protocol: `sip`, `h323`, `webrtc`, `rtmp`, `api`, …
    #[serde(default, deserialize_with = "lenient::text")]
    pub protocol: String,
    /// Whether the participant called in or was dialled.
    #[serde(default)]
    pub call_direction: CallDirection,
    /// The participant's address.
    #[serde(default, deserialize_with = "lenient::text")]
    pub uri: String,
    /// The conference alias the participant dialled.
    #[serde(default, deserialize_with = "lenient::text")]
    pub local_alias: String,
    /// The endpoint's or browser's vendor string.
    #[serde(default, deserialize_with = "lenient::text")]
    pub vendor: String,
    /// When the participant joined (UNIX seconds).
    #[serde(default, deserialize_with = "lenient::number")]
    pub start_time: f64,
    /// Whether the participant may receive the presentation.
    #[serde(default)]
    pub rx_presentation_policy: RxPresentationPolicy,
    /// Has audio/video media (false for API and control-only participants).
    #[serde(default, deserialize_with = "lenient::flag")]
    pub has_media: bool,
    /// An audio-only call.
    #[serde(
        rename = "is_audio_only_call",
        default,
        deserialize_with = "lenient::flag",
        serialize_with = "lenient::yes_no"
    )]
    pub audio_only: bool,
    /// A call with video.
    #[serde(
        rename = "is_video_call",
        default,
        deserialize_with = "lenient::flag",
        serialize_with = "lenient::yes_no"
    )]
    pub video_call: bool,
    /// Video muted by a host (`hard_vmute`).
    #[serde(rename = "is_video_muted", default, deserialize_with = "lenient::flag")]
    pub video_muted: bool,
    /// Muted on the participant's own device.
    #[serde(
        rename = "is_client_muted",
        default,
        deserialize_with = "lenient::flag"
    )]
    pub client_muted: bool,
    /// When the participant raised a hand (UNIX seconds); 0 when not raised.
    #[serde(default, deserialize_with = "lenient::number")]
    pub buzz_time: f64,
    /// A participant from outside the platform (for example via Lync).
    #[serde(rename = "is_external", default, deserialize_with = "lenient::flag")]
    pub external: bool,
    /// A streaming or recording participant.
    #[serde(
        rename = "is_streaming_conference",
        default,
        deserialize_with = "lenient::flag"
    )]
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
    fn parses_the_seed_example() {
        let json = r#"{
            "api_url": "/participants/50b956c8-9a63-4711-8630-3810f8666b04",
            "call_direction": "in", "display_name": "Alice", "encryption": "On",
            "has_media": false, "is_audio_only_call": "NO", "is_external": false,
            "is_muted": "NO", "is_presenting": "NO", "is_streaming_conference": false,
            "is_video_call": "YES", "local_alias": "meet.alice", "overlay_text": "Alice",
            "presentation_supported": "NO", "protocol": "api", "role": "chair",
            "rx_presentation_policy": "ALLOW", "service_type": "conference",
            "spotlight": 0, "start_time": 1441720992,
            "uri": "CloudConnect_10.44.21.35",
            "uuid": "50b956c8-9a63-4711-8630-3810f8666b04",
            "vendor": "CloudConnect/2.0.0"
        }"#;
        let p: Participant = serde_json::from_str(json).unwrap();
        assert_eq!(p.display_name, "Alice");
        assert!(p.is_host());
        assert!(!p.muted && p.video_call && !p.audio_only);
        assert_eq!(p.start_time, 1441720992.0);
        assert_eq!(p.service_type, ServiceType::Conference);
    }

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
        assert_eq!(
            p.rx_presentation_policy,
            RxPresentationPolicy::Other("MAYBE".into())
        );
        let back = serde_json::to_value(&p).unwrap();
        assert_eq!(back["role"], "unknown");
        assert_eq!(back["service_type"], "test_call");
    }

    #[test]
    fn round_trips_through_the_wire_format() {
        let p = Participant {
            uuid: "u1".into(),
            display_name: "Bob".into(),
            role: Role::Guest,
            muted: true,
            buzz_time: 12.5,
            ..Participant::default()
        };
        let wire = serde_json::to_value(&p).unwrap();
        assert_eq!(wire["is_muted"], "YES");
        assert_eq!(wire["is_presenting"], "NO");
        assert_eq!(wire["role"], "guest");
        let back: Participant = serde_json::from_value(wire).unwrap();
        assert_eq!(back, p);
    }

    #[test]
    fn a_participant_without_uuid_is_an_error() {
        assert!(serde_json::from_str::<Participant>(r#"{"display_name":"x"}"#).is_err());
    }

    #[test]
    fn roles_accept_session_spelling() {
        assert_eq!(Role::parse("HOST"), Role::Chair);
        assert_eq!(Role::parse("GUEST"), Role::Guest);
        assert_eq!(Role::Chair.as_str(), "chair");
    }
}
