//! Rooms found rather than listed: `discover:` entries acted on.
//!
//! Platforms report the rooms they learn of (a meeting started, a room
//! created) as [`Discovery`] events. [`run`] watches each one a `discover:`
//! entry of its platform matches, with the entry's profile, until the
//! platform reports it ended or usher stops. A room that is already watched
//! (listed in the config, or discovered before) is left alone, so a platform
//! that reports a room twice never gets two watchers.
//!
//! A discovery also says when the platform has the room booked: that goes
//! into the room's schedule as its `platform` source, for discovered rooms
//! and for listed ones alike (a listed Agora room is announced when it is
//! connected, a listed Huawei meeting when the webhook says it started).

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::daemon::Shared;
use super::room::{RoomSetup, supervise};
use super::status::Registry;
use crate::config::{DiscoverConfig, Profile};
use crate::platform::{DiscoveredRoom, Discovery, Platform, RoomAddress};
use crate::timetable::{PlatformTimes, RoomSchedule, SharedSchedule};

/// What discovery needs from the config and the daemon.
pub(crate) struct Discoverer {
    pub entries: Vec<DiscoverConfig>,
    pub profiles: std::collections::BTreeMap<String, Profile>,
    pub platforms: std::collections::BTreeMap<String, Arc<dyn Platform>>,
    pub registry: Arc<Registry>,
    pub shared: Arc<Shared>,
    /// Every watched room's schedule, by alias: the listed rooms' from the
    /// start, the discovered ones' as they are found.
    pub schedules: HashMap<String, Arc<SharedSchedule>>,
}

/// A discovered room being watched.
struct Watched {
    task: JoinHandle<()>,
    stop: CancellationToken,
}

/// Acts on discoveries until `cancel` fires, then stops every discovered
/// room and waits for them.
pub(crate) async fn run(
    mut discoverer: Discoverer,
    mut discoveries: mpsc::UnboundedReceiver<Discovery>,
    cancel: CancellationToken,
) {
    let mut watched: HashMap<String, Watched> = HashMap::new();
    loop {
        let discovery = tokio::select! {
            _ = cancel.cancelled() => break,
            discovery = discoveries.recv() => match discovery {
                Some(discovery) => discovery,
                None => break,
            },
        };
        watched.retain(|_, room| !room.task.is_finished());
        match discovery {
            Discovery::Started(room) => {
                if let Some(started) = discoverer.watch(&room, &cancel) {
                    watched.insert(room.alias.clone(), started);
                }
                discoverer.note_schedule(&room);
            }
            Discovery::Ended { platform, alias } => {
                if let Some(room) = watched.remove(&alias) {
                    tracing::info!(%platform, room = %alias, "the platform reports the room ended; no longer watching it");
                    room.stop.cancel();
                    let _ = room.task.await;
                    discoverer.registry.remove_room(&alias);
                    discoverer.schedules.remove(&alias);
                }
            }
        }
    }
    for (_, room) in watched.drain() {
        room.stop.cancel();
        let _ = room.task.await;
    }
}

impl Discoverer {
    /// Hands the platform's times for a watched room to its schedule.
    fn note_schedule(&self, room: &DiscoveredRoom) {
        let (Some(times), Some(schedule)) = (room.schedule, self.schedules.get(&room.alias)) else {
            return;
        };
        let times = PlatformTimes {
            start: times.start,
            end: times.end,
        };
        let title = if room.title.is_empty() {
            &room.alias
        } else {
            &room.title
        };
        schedule.set_platform(times, title);
    }

    /// Starts watching a discovered room if an entry matches it and it is
    /// not watched already.
    fn watch(&mut self, room: &DiscoveredRoom, cancel: &CancellationToken) -> Option<Watched> {
        let entry = self
            .entries
            .iter()
            .find(|entry| entry.matches(&room.platform, &room.title, &room.alias))?;
        if self.registry.has_room(&room.alias) {
            tracing::debug!(room = %room.alias, "discovered again; already watched");
            return None;
        }
        let platform = self.platforms.get(&room.platform)?.clone();
        let pin = match entry.resolve_pin() {
            Ok(Some(pin)) => Some(pin),
            Ok(None) => room.pin.clone(),
            Err(err) => {
                tracing::error!(room = %room.alias, "cannot watch a discovered room: discover entry `{}`: {err}", entry.pattern);
                return None;
            }
        };
        let profile = self
            .profiles
            .get(&entry.profile)
            .cloned()
            .unwrap_or_default();
        let schedule = RoomSchedule::new(profile.schedule.zone());
        self.schedules
            .insert(room.alias.clone(), schedule.schedule.clone());
        tracing::info!(platform = %room.platform, room = %room.alias, title = %room.title, profile = %entry.profile, "watching a discovered room");
        let setup = RoomSetup {
            address: RoomAddress {
                alias: room.alias.clone(),
                pin,
            },
            platform,
            bindings: profile.rules.into(),
            status: self.registry.add_room(&room.alias, &room.platform, true),
            schedule,
            ownership: None,
        };
        let stop = cancel.child_token();
        let task = tokio::spawn(supervise(setup, self.shared.clone(), stop.clone()));
        Some(Watched { task, stop })
    }
}
