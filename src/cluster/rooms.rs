//! Taking, keeping and releasing rooms in a cluster.
//!
//! [`run`] looks at etcd whenever a watch on the cluster's keys reports a
//! change, and at least every [`resync`] interval. Each time it:
//!
//! 1. stops at once every room it may have lost: its key gone or made by
//!    someone else, or the lease not surely alive (fencing has already
//!    refused its commands);
//! 2. releases rooms another live node should own: the room stops, its
//!    rule state is written, then its key is deleted, and the other node,
//!    watching, takes it at once;
//! 3. takes the free rooms that are its own by [`assign`].
//!
//! A taken room starts like any room, from the saved roster and rule state
//! (so the people present are no news) and with its timers due as they
//! were. On shutdown every room is stopped and the lease revoked, which
//! frees the rooms for the others at once.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use super::assign::assign;
use super::etcd::WatchItem;
use super::{Cluster, Ownership};
use crate::platform::{Platform, RoomAddress};
use crate::rules::RuleBinding;
use crate::runtime::daemon::Shared;
use crate::runtime::room::{RoomSetup, supervise};
use crate::runtime::status::Registry;
use crate::timetable::RoomSchedule;

/// A room of the config, ready to start when this instance takes it.
pub(crate) struct RoomTemplate {
    pub address: RoomAddress,
    pub platform_name: String,
    pub platform: Arc<dyn Platform>,
    pub bindings: Arc<[RuleBinding]>,
    pub schedule: RoomSchedule,
}

/// What the cluster's rooms need from the daemon.
pub(crate) struct ClusterRooms {
    pub cluster: Arc<Cluster>,
    pub rooms: BTreeMap<String, RoomTemplate>,
    pub registry: Arc<Registry>,
    pub shared: Arc<Shared>,
}

/// A room this instance holds and runs.
struct Held {
    ownership: Ownership,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

/// How often etcd is looked at even when the watch reports nothing.
pub fn resync(ttl: Duration) -> Duration {
    (ttl / 4).clamp(Duration::from_millis(250), Duration::from_secs(1))
}

/// Runs the cluster's side of the daemon until `cancel` fires; then stops
/// every room held and leaves the cluster.
pub(crate) async fn run(pool: ClusterRooms, cancel: CancellationToken) {
    let cluster = pool.cluster.clone();
    let span = tracing::info_span!("cluster", node = %cluster.node());
    async move {
        let keep = CancellationToken::new();
        let keeper = tokio::spawn(cluster.clone().keep_lease(keep.clone()).in_current_span());
        let (changes, mut changed) = mpsc::channel(64);
        let watcher =
            tokio::spawn(watch_keys(cluster.clone(), changes, keep.clone()).in_current_span());
        let mut held: BTreeMap<String, Held> = BTreeMap::new();
        let mut letting_go: BTreeMap<String, JoinHandle<()>> = BTreeMap::new();
        let mut ticks = tokio::time::interval(resync(cluster.ttl()));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                _ = cancel.cancelled() => break,
                Some(()) = changed.recv() => while changed.try_recv().is_ok() {},
                _ = ticks.tick() => {}
            }
            letting_go.retain(|_, task| !task.is_finished());
            pool.reconcile(&mut held, &mut letting_go).await;
        }
        // Every room stops at once; each is released as soon as it has
        // finished (its state written), and the lease goes last.
        for room in held.values() {
            room.stop.cancel();
        }
        let releases: Vec<JoinHandle<()>> = std::mem::take(&mut held)
            .into_iter()
            .map(|(alias, room)| {
                let (cluster, registry) = (cluster.clone(), pool.registry.clone());
                tokio::spawn(async move {
                    let _ = room.task.await;
                    registry.remove_room(&alias);
                    cluster.release(&room.ownership).await;
                })
            })
            .chain(letting_go.into_values())
            .collect();
        for task in releases {
            let _ = task.await;
        }
        cluster.leave().await;
        keep.cancel();
        let _ = keeper.await;
        let _ = watcher.await;
    }
    .instrument(span)
    .await;
}

/// Reports a change under the cluster's prefix, watching anew when a
/// watch ends, until `cancel` fires.
async fn watch_keys(cluster: Arc<Cluster>, changes: mpsc::Sender<()>, cancel: CancellationToken) {
    let prefix = format!("{}/", cluster.prefix);
    while !cancel.is_cancelled() {
        let (sink, mut seen) = mpsc::channel(16);
        let watch = cluster.etcd.watch(&prefix, 0, sink, cancel.clone());
        let forward = async {
            while let Some(item) = seen.recv().await {
                match item {
                    WatchItem::Events(_) => {
                        let _ = changes.try_send(());
                    }
                    WatchItem::Ended(why) => {
                        tracing::debug!(%why, "the watch on the cluster's keys ended");
                    }
                }
            }
        };
        tokio::join!(watch, forward);
        // Whatever the watch missed meanwhile, the next resync sees.
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
        let _ = changes.try_send(());
    }
}

impl ClusterRooms {
    async fn reconcile(
        &self,
        held: &mut BTreeMap<String, Held>,
        letting_go: &mut BTreeMap<String, JoinHandle<()>>,
    ) {
        let cluster = &self.cluster;
        // Fencing first, without etcd: a lease not surely alive holds nothing.
        let lost: Vec<String> = held
            .iter()
            .filter(|(_, room)| !room.ownership.holds())
            .map(|(alias, _)| alias.clone())
            .collect();
        for alias in lost {
            self.stop(
                held,
                &alias,
                "the lease is not known to be alive",
                letting_go,
            );
        }
        let (nodes, keys) = match cluster.survey().await {
            Ok(found) => found,
            Err(err) => {
                tracing::debug!(error = %err, "cannot look at the cluster now");
                return;
            }
        };
        let lease = cluster.lease();
        let me = cluster.node();
        let lost: Vec<String> = held
            .iter()
            .filter(|(alias, room)| {
                keys.get(*alias).is_none_or(|kv| {
                    kv.create_revision != room.ownership.inner.created || kv.lease != lease
                })
            })
            .map(|(alias, _)| alias.clone())
            .collect();
        for alias in lost {
            self.stop(held, &alias, "its key in etcd changed", letting_go);
        }
        if !cluster.lease_alive() {
            return;
        }
        if !nodes.iter().any(|node| node == me) {
            // Our key is gone though the lease lives (deleted by hand, or
            // etcd restored from a backup): register again and look anew.
            tracing::warn!("this node is not registered in etcd; registering it again");
            if let Err(err) = cluster.register().await {
                tracing::warn!(error = %err, "cannot register this node now");
            }
            return;
        }
        let live: Vec<&str> = nodes.iter().map(String::as_str).collect();
        let aliases: Vec<&str> = self.rooms.keys().map(String::as_str).collect();
        let owners = assign(&aliases, &live);
        // Rooms another live node should have.
        let moving: Vec<String> = held
            .keys()
            .filter(|alias| owners.get(alias.as_str()).is_some_and(|owner| owner != me))
            .cloned()
            .collect();
        for alias in moving {
            if let Some(room) = held.remove(&alias) {
                tracing::info!(room = %alias, to = %owners[alias.as_str()], "releasing the room to its owner by the balance");
                cluster
                    .counters
                    .ownership_changes
                    .fetch_add(1, Ordering::Relaxed);
                room.stop.cancel();
                let (cluster, registry) = (cluster.clone(), self.registry.clone());
                let gone = alias.clone();
                let task = tokio::spawn(async move {
                    let _ = room.task.await;
                    registry.remove_room(&gone);
                    cluster.release(&room.ownership).await;
                    room.ownership.lose();
                });
                letting_go.insert(alias, task);
            }
        }
        // Free rooms that are ours.
        for (alias, owner) in &owners {
            // A room still winding down here is taken again once it has.
            if owner != me
                || held.contains_key(*alias)
                || keys.contains_key(*alias)
                || letting_go.contains_key(*alias)
            {
                continue;
            }
            match cluster.take(alias).await {
                Ok(Some(ownership)) => self.start(held, alias, ownership),
                Ok(None) => {}
                Err(err) => {
                    tracing::warn!(room = %alias, error = %err, "cannot take the room now");
                    return;
                }
            }
        }
    }

    fn start(&self, held: &mut BTreeMap<String, Held>, alias: &str, ownership: Ownership) {
        let Some(template) = self.rooms.get(alias) else {
            return;
        };
        tracing::info!(room = %alias, "took the room");
        self.cluster
            .counters
            .ownership_changes
            .fetch_add(1, Ordering::Relaxed);
        let status = self
            .registry
            .add_room(alias, &template.platform_name, false);
        let setup = RoomSetup {
            address: template.address.clone(),
            platform: template.platform.clone(),
            bindings: template.bindings.clone(),
            status,
            schedule: template.schedule.clone(),
            ownership: Some(ownership.clone()),
        };
        let stop = CancellationToken::new();
        let task = tokio::spawn(supervise(setup, self.shared.clone(), stop.clone()));
        held.insert(
            alias.to_owned(),
            Held {
                ownership,
                stop,
                task,
            },
        );
    }

    /// Stops a room that may no longer be ours: nothing more is sent in it.
    fn stop(
        &self,
        held: &mut BTreeMap<String, Held>,
        alias: &str,
        why: &str,
        letting_go: &mut BTreeMap<String, JoinHandle<()>>,
    ) {
        let Some(room) = held.remove(alias) else {
            return;
        };
        tracing::warn!(room = %alias, "the room is lost ({why}); stopping it");
        self.cluster
            .counters
            .ownership_changes
            .fetch_add(1, Ordering::Relaxed);
        room.ownership.lose();
        room.stop.cancel();
        let (registry, gone) = (self.registry.clone(), alias.to_owned());
        let task = tokio::spawn(async move {
            let _ = room.task.await;
            registry.remove_room(&gone);
        });
        letting_go.insert(alias.to_owned(), task);
    }
}
