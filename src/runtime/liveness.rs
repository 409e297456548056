//! Whether a connected room really follows its platform.
//!
//! A stream can be up and still tell usher nothing: the platform opened a
//! room listing and never finished it, or everything it sends is
//! undecodable. Such a room is "connected" to the transport but not
//! moderated. [`Liveness`] watches for both from what every platform
//! promises at the boundary (a roster after each (re)connect) and what the
//! link says of its decoding ([`StreamHealth`]), and calls the room
//! stalled once either has lasted longer than the platform's stall bound.

use std::time::Duration;

use tokio::time::Instant;

use crate::platform::StreamHealth;

/// What a room has seen of its feed, for health.
#[derive(Debug)]
pub(crate) struct Liveness {
    /// How long either condition may last.
    bound: Duration,
    /// Since when the room has waited for a roster: from the first
    /// (re)connect after the last roster, across reconnects.
    unsynced_since: Option<Instant>,
    /// Why the room is stalled, while it is.
    stalled: Option<String>,
}

/// A change in a room's health worth saying.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Nothing changed.
    Same,
    /// The room became stalled, for this reason.
    Stalled(String),
    /// The room follows its platform again.
    Recovered,
}

impl Liveness {
    pub(crate) fn new(bound: Duration) -> Self {
        Liveness {
            bound,
            unsynced_since: None,
            stalled: None,
        }
    }

    /// The feed (re)connected: a roster is due.
    pub(crate) fn connected(&mut self, now: Instant) {
        self.unsynced_since.get_or_insert(now);
    }

    /// A roster arrived: the room is in sync.
    pub(crate) fn synced(&mut self) {
        self.unsynced_since = None;
    }

    /// Why the room is stalled, if it is.
    pub(crate) fn stalled(&self) -> Option<&str> {
        self.stalled.as_deref()
    }

    /// Judges the room now, given what its link decoded.
    pub(crate) fn check(&mut self, stream: StreamHealth, now: Instant) -> Verdict {
        let bound = self.bound;
        let over = |since: Option<Instant>| since.filter(|at| now.duration_since(*at) > bound);
        let why = if let Some(since) = over(self.unsynced_since) {
            Some(format!(
                "stalled: no complete room listing for {}s after the stream (re)connected",
                now.duration_since(since).as_secs()
            ))
        } else {
            over(stream.undecodable_since).map(|since| {
                format!(
                    "stalled: nothing decodable from the platform for {}s ({} frames or streams could not be read)",
                    now.duration_since(since).as_secs(),
                    stream.undecodable
                )
            })
        };
        let was_stalled = self.stalled.is_some();
        self.stalled = why.clone();
        match why {
            Some(why) if !was_stalled => Verdict::Stalled(why),
            None if was_stalled => Verdict::Recovered,
            _ => Verdict::Same,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOUND: Duration = Duration::from_secs(90);

    #[test]
    fn a_listing_that_never_completes_stalls_the_room_across_reconnects() {
        let start = Instant::now();
        let mut liveness = Liveness::new(BOUND);
        liveness.connected(start);
        let fine = StreamHealth::default();
        assert_eq!(liveness.check(fine, start + BOUND), Verdict::Same);
        liveness.connected(start + BOUND);
        let later = start + BOUND + Duration::from_secs(1);
        assert!(
            matches!(liveness.check(fine, later), Verdict::Stalled(why) if why.contains("no complete room listing for 91s"))
        );
        assert_eq!(liveness.check(fine, later), Verdict::Same);
        liveness.synced();
        assert_eq!(liveness.check(fine, later), Verdict::Recovered);
        assert_eq!(liveness.stalled(), None);
    }

    #[test]
    fn only_undecodable_input_for_longer_than_the_bound_stalls_the_room() {
        let start = Instant::now();
        let mut liveness = Liveness::new(BOUND);
        liveness.connected(start);
        liveness.synced();
        let garbage = StreamHealth {
            undecodable_since: Some(start),
            undecodable: 7,
        };
        assert_eq!(liveness.check(garbage, start + BOUND), Verdict::Same);
        let verdict = liveness.check(garbage, start + BOUND * 2);
        assert!(
            matches!(&verdict, Verdict::Stalled(why) if why.contains("7 frames")),
            "{verdict:?}"
        );
        let quiet = StreamHealth {
            undecodable_since: None,
            undecodable: 7,
        };
        assert_eq!(liveness.check(quiet, start + BOUND * 3), Verdict::Recovered);
    }
}
