//! Benchmark workloads: stream frames, as the primary platform (seed 001)
//! would send them.
//!
//! The default workload is a busy lecture: a 500-participant room listed in
//! a sync bracket, then a realistic mix of events produced by the
//! simulator's state machine and written by the platform's own encoder, so
//! every payload is a whole participant as a real server sends it. A
//! recording made by `usher record` can be used instead.

use std::path::Path;

use crate::model::Event;
use crate::platform::{PlatformKind, StreamCodec, WireFrame, stream_codec};
use crate::recording;
use crate::sim::Conference;
use crate::sim::step::{Chat, Joiner, Step};

/// The platform whose stream the workloads are written for.
pub const PLATFORM: PlatformKind = PlatformKind::Vmr;

/// One frame and when it arrives.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    /// The frame as it travels.
    pub wire: WireFrame,
    /// When it arrives, in seconds from the start.
    pub at: f64,
}

/// The codec of [`PLATFORM`].
pub fn codec() -> Box<dyn StreamCodec> {
    stream_codec(PLATFORM).expect("the workload platform streams")
}

/// Appends the frames of `event`, arriving `at`.
fn push(frames: &mut Vec<Frame>, codec: &mut dyn StreamCodec, event: &Event, at: f64) {
    frames.extend(
        codec
            .encode(event)
            .into_iter()
            .map(|wire| Frame { wire, at }),
    );
}

/// How many participants the default workload's room holds.
pub const ROOM_SIZE: usize = 500;

/// What fraction of the default mix each kind of event makes up, in percent.
///
/// The shape of a lecture: most frames are voice-activity updates (the
/// lecturer, now and then a guest, pauses), then participant updates
/// (mutes, hands, spotlight), arrivals and departures, chat, presentations
/// and layout changes.
pub const MIX: [(&str, u32); 8] = [
    ("stage (voice activity)", 57),
    ("mute and unmute", 14),
    ("joins and leaves", 10),
    ("raised and lowered hands", 6),
    ("chat", 5),
    ("spotlight", 3),
    ("layout", 3),
    ("presentations", 2),
];

/// The default workload: a sync bracket of [`ROOM_SIZE`] participants, then
/// `events` events of the [`MIX`], one millisecond apart.
pub fn lecture(events: usize) -> Vec<Frame> {
    let mut conference = Conference::with_seed("bench@usher.test", 7);
    let mut rng = fastrand::Rng::with_seed(42);
    conference
        .apply_step(&Step::Join(Joiner::host("Prof. Ada")), 0.0)
        .expect("a host can join");
    let mut next_guest = 0;
    let mut guests: Vec<String> = Vec::new();
    let mut join = |conference: &mut Conference, guests: &mut Vec<String>, at: f64| {
        let name = format!("Guest {next_guest}");
        next_guest += 1;
        let joiner = Joiner {
            audio_only: next_guest % 7 == 0,
            ..Joiner::guest(name.clone())
        };
        guests.push(name);
        conference
            .apply_step(&Step::Join(joiner), at)
            .expect("a guest can join")
    };
    while conference.len() < ROOM_SIZE {
        join(&mut conference, &mut guests, 0.0);
    }
    let mut codec = codec();
    let mut frames = Vec::new();
    push(&mut frames, codec.as_mut(), &conference.roster(), 0.0);
    let mut presenting = false;
    let mut raised = std::collections::BTreeSet::new();
    let mut at = 0.0;
    while frames.len() < events + ROOM_SIZE + 2 {
        at += 0.001;
        let pick = rng.u32(0..100);
        let someone = guests[rng.usize(0..guests.len())].clone();
        let step = match pick {
            0..=56 => match rng.u32(0..20) {
                0..=14 => Step::Speak("Prof. Ada".to_owned()),
                15..=17 => Step::Speak(someone),
                _ => Step::Silence,
            },
            57..=70 => {
                if rng.bool() {
                    Step::Mute(someone)
                } else {
                    Step::Unmute(someone)
                }
            }
            71..=80 => {
                if rng.bool() {
                    for event in join(&mut conference, &mut guests, at) {
                        push(&mut frames, codec.as_mut(), &event, at);
                    }
                    continue;
                }
                guests.retain(|guest| *guest != someone);
                raised.remove(&someone);
                Step::Leave(someone)
            }
            81..=86 => {
                // Hands go up now and then and come down again: a few at a time.
                let lower = raised.iter().next().cloned().filter(|_| rng.u32(0..3) > 0);
                match lower {
                    Some(guest) => {
                        raised.remove(&guest);
                        Step::LowerHand(guest)
                    }
                    None => {
                        raised.insert(someone.clone());
                        Step::RaiseHand(someone)
                    }
                }
            }
            87..=91 => Step::Chat(Chat {
                from: someone,
                text: if rng.u32(0..10) == 0 {
                    "!lock".to_owned()
                } else {
                    "a question about slide 12".to_owned()
                },
            }),
            92..=94 => {
                if rng.bool() {
                    Step::Spotlight(someone)
                } else {
                    Step::Unspotlight(someone)
                }
            }
            95..=97 => Step::Layout(["1:7", "1:21", "2:21"][rng.usize(0..3)].to_owned()),
            _ => {
                presenting = !presenting;
                if presenting {
                    Step::Present("Prof. Ada".to_owned())
                } else {
                    Step::StopPresenting
                }
            }
        };
        if let Ok(events) = conference.apply_step(&step, at) {
            for event in &events {
                push(&mut frames, codec.as_mut(), event, at);
            }
        }
    }
    frames
}

/// A recording's events as frames, timed from its first line.
pub fn recorded(path: &Path) -> anyhow::Result<Vec<Frame>> {
    let lines = recording::read(path)?;
    let start = lines.first().map_or(0.0, |line| line.t);
    let mut codec = codec();
    let mut frames = Vec::new();
    for line in &lines {
        if let Ok(event) = line.to_event() {
            push(&mut frames, codec.as_mut(), &event, line.t - start);
        }
    }
    Ok(frames)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lecture_opens_with_a_full_room_and_mixes_every_kind() {
        let frames = lecture(5_000);
        assert_eq!(frames[0].wire.name, "participant_sync_begin");
        assert_eq!(frames[ROOM_SIZE + 1].wire.name, "participant_sync_end");
        for name in [
            "participant_update",
            "stage",
            "participant_create",
            "participant_delete",
            "message",
            "presentation_start",
            "layout",
        ] {
            assert!(frames.iter().any(|f| f.wire.name == name), "no {name}");
        }
        let mut codec = codec();
        for frame in &frames {
            codec
                .decode(&frame.wire)
                .unwrap_or_else(|err| panic!("{err}"));
        }
        assert!(
            lecture(1_000) == lecture(1_000),
            "the workload is the same every time"
        );
    }
}
