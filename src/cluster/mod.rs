//! Several usher instances sharing rooms through etcd, with fencing.
//!
//! Every instance loads the same config. Each keeps one etcd lease alive
//! and registers itself under `<prefix>/nodes/<node>` on it; each room is
//! owned by the instance whose key `<prefix>/rooms/<alias>` exists, bound
//! to that instance's lease, so a dead instance's rooms fall free when its
//! lease expires. Who should own what is computed alike by every instance
//! ([`assign`]); [`rooms`] takes free rooms that are this instance's, and
//! lets go of rooms that are another live instance's.
//!
//! Fencing: an instance that may have lost a room must not act in it. A
//! lease is known to be alive only until the deadline computed from the
//! last keep-alive etcd answered (sent at + TTL granted, less a margin),
//! measured on the monotonic clock, which keeps running while the process
//! is stopped. Before every command ([`fence::FencedLink`]) the room's
//! [`Ownership`] is checked: the lease alive by that deadline, and the
//! room's key as this instance created it (a watch on the keys reports any
//! change). When etcd cannot be reached, rooms run until the lease would
//! have expired, then stop acting.
//!
//! Rule state lives in etcd (`<prefix>/state/<alias>`), written only while
//! the writer still holds the room's key.
//!
//! - [`config`]: the `cluster:` section.
//! - [`etcd`]: the little of etcd's v3 API usher needs, over its JSON
//!   gateway. Not gRPC: every Rust gRPC client of etcd (`etcd-client`
//!   among them) generates its code with `protoc` at build time, and the
//!   build must not need it.
//! - [`assign`]: rendezvous hashing with bounded load over the live nodes.
//! - [`fence`]: the room link that refuses to send without ownership.
//! - [`rooms`]: taking, keeping and releasing rooms.
//! - [`report`]: `usher cluster status`.

pub mod assign;
pub mod config;
pub mod etcd;
pub mod fence;
pub mod report;
pub mod rooms;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use self::config::ClusterConfig;
use self::etcd::{Etcd, EtcdError, KeyValue, LeaseId};
use crate::rules::snapshot::RulesSnapshot;
use crate::runtime::persist::PersistError;

/// Why the cluster could not be joined.
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    /// The config cannot be used.
    #[error(transparent)]
    Config(#[from] config::ClusterConfigError),
    /// etcd cannot be reached or refused.
    #[error("cluster: {0}; is etcd running there? (`cluster.etcd` in the config)")]
    Etcd(#[from] EtcdError),
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct ClusterCounters {
    /// Rooms taken or given up (released, lost or stopped with the lease).
    pub ownership_changes: AtomicU64,
    /// Commands refused because the room may no longer be ours.
    pub fencing_refusals: AtomicU64,
    /// etcd calls that failed.
    pub etcd_errors: AtomicU64,
}

/// This instance's membership of the cluster.
pub struct Cluster {
    etcd: Etcd,
    node: String,
    prefix: String,
    ttl: Duration,
    lease: AtomicI64,
    /// The lease is surely alive before this (ms after `epoch`).
    alive_until: AtomicU64,
    epoch: Instant,
    /// Set when the lease was found gone: every room on it is lost.
    lease_lost: AtomicBool,
    /// The rooms and their owners as last seen in etcd.
    owners: Mutex<BTreeMap<String, String>>,
    /// Counters for `/metrics`.
    pub counters: ClusterCounters,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster").field("node", &self.node).finish()
    }
}

/// What `/status` shows of the cluster.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterReport {
    /// This instance.
    pub node: String,
    /// Whether its lease is known to be alive.
    pub lease_alive: bool,
    /// Every room with an owner, and the owner.
    pub owners: BTreeMap<String, String>,
    /// Rooms taken or given up.
    pub ownership_changes: u64,
    /// Commands refused by fencing.
    pub fencing_refusals: u64,
    /// Failed etcd calls.
    pub etcd_errors: u64,
}

/// How long an etcd call may take: well within a lease.
fn call_timeout(ttl: Duration) -> Duration {
    (ttl / 4).clamp(Duration::from_millis(300), Duration::from_secs(3))
}

/// What is taken off a lease's TTL for the time a keep-alive may have
/// been on its way and for clocks that run at slightly different rates.
fn safety_margin(ttl: Duration) -> Duration {
    (ttl / 10).min(Duration::from_secs(1))
}

impl Cluster {
    /// Joins the cluster: grants this instance's lease and registers the
    /// node. Fails when etcd cannot be reached.
    pub async fn join(config: &ClusterConfig) -> Result<Arc<Cluster>, JoinError> {
        config.validate()?;
        let ttl = config.lease();
        let etcd = Etcd::new(config.endpoints()?, call_timeout(ttl))?;
        let cluster = Arc::new(Cluster {
            etcd,
            node: config.node_name()?,
            prefix: config.prefix.clone(),
            ttl,
            lease: AtomicI64::new(0),
            alive_until: AtomicU64::new(0),
            epoch: Instant::now(),
            lease_lost: AtomicBool::new(false),
            owners: Mutex::new(BTreeMap::new()),
            counters: ClusterCounters::default(),
        });
        cluster.new_lease().await?;
        Ok(cluster)
    }

    /// Connects without joining, and without a node name of its own: for
    /// `usher cluster status`.
    pub fn observer(config: &ClusterConfig) -> Result<Cluster, JoinError> {
        let ttl = config.lease();
        Ok(Cluster {
            etcd: Etcd::new(config.endpoints()?, call_timeout(ttl))?,
            node: String::new(),
            prefix: config.prefix.clone(),
            ttl,
            lease: AtomicI64::new(0),
            alive_until: AtomicU64::new(0),
            epoch: Instant::now(),
            lease_lost: AtomicBool::new(false),
            owners: Mutex::new(BTreeMap::new()),
            counters: ClusterCounters::default(),
        })
    }

    /// This instance's name.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// The lease TTL asked for.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    fn nodes_prefix(&self) -> String {
        format!("{}/nodes/", self.prefix)
    }

    fn rooms_prefix(&self) -> String {
        format!("{}/rooms/", self.prefix)
    }

    fn room_key(&self, room: &str) -> String {
        format!("{}{room}", self.rooms_prefix())
    }

    fn state_key(&self, room: &str) -> String {
        format!("{}/state/{room}", self.prefix)
    }

    /// The lease in use.
    fn lease(&self) -> LeaseId {
        self.lease.load(Ordering::Acquire)
    }

    /// Counts a failed etcd call and passes it on.
    fn note<T>(&self, result: Result<T, EtcdError>) -> Result<T, EtcdError> {
        if result.is_err() {
            self.counters.etcd_errors.fetch_add(1, Ordering::Relaxed);
        }
        result
    }

    /// Grants a fresh lease and registers the node on it.
    async fn new_lease(&self) -> Result<(), EtcdError> {
        let sent = Instant::now();
        let (lease, granted) = self.note(self.etcd.grant(self.ttl).await)?;
        self.lease.store(lease, Ordering::Release);
        self.lease_lost.store(false, Ordering::Release);
        self.extend(sent, granted);
        let key = format!("{}{}", self.nodes_prefix(), self.node);
        if let Some(holder) = self.note(self.etcd.get(&key).await)? {
            if holder.lease != 0 && holder.lease != lease {
                tracing::warn!(node = %self.node, "another live instance is registered under this node's name (or this node's previous run, until its lease expires); give each instance its own `cluster.node`");
            }
        }
        self.register().await?;
        tracing::info!(node = %self.node, lease = format!("{lease:x}"), "joined the cluster");
        Ok(())
    }

    /// Puts this node's key on the lease (again).
    async fn register(&self) -> Result<(), EtcdError> {
        let key = format!("{}{}", self.nodes_prefix(), self.node);
        self.note(
            self.etcd
                .put(&key, self.node.as_bytes(), Some(self.lease()))
                .await,
        )
        .map(drop)
    }

    /// The lease is alive until `sent + granted`, less the margin.
    fn extend(&self, sent: Instant, granted: Duration) {
        let until = (sent + granted.saturating_sub(safety_margin(granted))) - self.epoch;
        self.alive_until
            .store(until.as_millis() as u64, Ordering::Release);
    }

    /// The lease is surely alive now.
    pub fn lease_alive(&self) -> bool {
        !self.lease_lost.load(Ordering::Acquire)
            && ((Instant::now() - self.epoch).as_millis() as u64)
                < self.alive_until.load(Ordering::Acquire)
    }

    /// Keeps the lease alive until `cancel` fires, renewing it three to four
    /// times a TTL; a lease etcd no longer has is replaced (its rooms are
    /// lost with it).
    pub async fn keep_lease(self: Arc<Self>, cancel: CancellationToken) {
        let every = self.ttl / 4;
        let mut failing = false;
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
            }
            let sent = Instant::now();
            let renewed = self.note(self.etcd.keep_alive(self.lease()).await);
            match renewed {
                Ok(Some(granted)) => {
                    self.extend(sent, granted);
                    if failing {
                        tracing::info!("etcd answers again; the lease is renewed");
                        failing = false;
                    }
                }
                Ok(None) => {
                    tracing::error!(
                        "this instance's lease expired in etcd: its rooms are lost; joining again"
                    );
                    self.lease_lost.store(true, Ordering::Release);
                    if let Err(err) = self.new_lease().await {
                        tracing::error!(error = %err, "cannot join the cluster again yet");
                    }
                }
                Err(err) => {
                    if !failing {
                        tracing::error!(error = %err, "cannot renew the lease; rooms keep running until it would expire");
                        failing = true;
                    }
                }
            }
        }
    }

    /// Leaves the cluster: revokes the lease, which frees every room this
    /// instance held at once.
    pub async fn leave(&self) {
        match self.note(self.etcd.revoke(self.lease()).await) {
            Ok(()) => tracing::info!("left the cluster; its rooms are free"),
            Err(err) => {
                tracing::warn!(error = %err, "cannot revoke the lease; its rooms fall free when it expires");
            }
        }
    }

    /// The live nodes and the rooms' owner keys, as of one moment.
    async fn survey(&self) -> Result<(Vec<String>, BTreeMap<String, KeyValue>), EtcdError> {
        let (nodes, _) = self.note(self.etcd.range_prefix(&self.nodes_prefix()).await)?;
        let (rooms, _) = self.note(self.etcd.range_prefix(&self.rooms_prefix()).await)?;
        let nodes = nodes
            .into_iter()
            .filter_map(|kv| kv.key.strip_prefix(&self.nodes_prefix()).map(str::to_owned))
            .collect();
        let prefix = self.rooms_prefix();
        let rooms: BTreeMap<String, KeyValue> = rooms
            .into_iter()
            .filter_map(|kv| Some((kv.key.strip_prefix(&prefix)?.to_owned(), kv)))
            .collect();
        *self.owners.lock().unwrap_or_else(|p| p.into_inner()) = rooms
            .iter()
            .map(|(room, kv)| {
                (
                    room.clone(),
                    String::from_utf8_lossy(&kv.value).into_owned(),
                )
            })
            .collect();
        Ok((nodes, rooms))
    }

    /// Every room with an owner, as etcd has it now.
    pub async fn owners(&self) -> Result<(Vec<String>, BTreeMap<String, String>), EtcdError> {
        let (nodes, _) = self.survey().await?;
        let owners = self
            .owners
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        Ok((nodes, owners))
    }

    /// What `/status` shows.
    pub fn report(&self) -> ClusterReport {
        ClusterReport {
            node: self.node.clone(),
            lease_alive: self.lease_alive(),
            owners: self
                .owners
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
            ownership_changes: self.counters.ownership_changes.load(Ordering::Relaxed),
            fencing_refusals: self.counters.fencing_refusals.load(Ordering::Relaxed),
            etcd_errors: self.counters.etcd_errors.load(Ordering::Relaxed),
        }
    }

    /// Takes `room` if it is free: its key is created on this instance's
    /// lease. `None` when another instance holds it.
    pub async fn take(self: &Arc<Self>, room: &str) -> Result<Option<Ownership>, EtcdError> {
        let lease = self.lease();
        let created = self.note(
            self.etcd
                .create(&self.room_key(room), self.node.as_bytes(), lease)
                .await,
        )?;
        Ok(created.ok().map(|revision| Ownership {
            inner: Arc::new(OwnershipInner {
                cluster: self.clone(),
                room: room.to_owned(),
                created: revision,
                lease,
                lost: CancellationToken::new(),
            }),
        }))
    }

    /// Gives `room` up: deletes its key if it is still the one taken.
    async fn release(&self, ownership: &Ownership) {
        let key = self.room_key(&ownership.inner.room);
        if let Err(err) = self.note(
            self.etcd
                .delete_if_created(&key, ownership.inner.created)
                .await,
        ) {
            tracing::warn!(error = %err, "cannot release the room; it falls free when the lease expires");
        }
    }

    /// The rule state saved for `room` in etcd.
    pub(crate) async fn load_state(
        &self,
        room: &str,
    ) -> Result<Option<RulesSnapshot>, PersistError> {
        let found = self
            .note(self.etcd.get(&self.state_key(room)).await)
            .map_err(|err| PersistError::Etcd(err.to_string()))?;
        let Some(kv) = found else {
            return Ok(None);
        };
        RulesSnapshot::from_bytes(&kv.value)
            .map(Some)
            .map_err(|source| PersistError::Unusable {
                place: format!("etcd key {}", self.state_key(room)),
                source,
            })
    }

    /// Saves `room`'s rule state while `ownership` still holds its key.
    pub(crate) async fn save_state(
        &self,
        bytes: &[u8],
        ownership: &Ownership,
    ) -> Result<(), PersistError> {
        if !ownership.holds() {
            return Err(PersistError::NotOwner);
        }
        let room = &ownership.inner.room;
        let written = self
            .note(
                self.etcd
                    .put_while(
                        &self.room_key(room),
                        ownership.inner.created,
                        &self.state_key(room),
                        bytes,
                    )
                    .await,
            )
            .map_err(|err| PersistError::Etcd(err.to_string()))?;
        if written {
            Ok(())
        } else {
            Err(PersistError::NotOwner)
        }
    }
}

/// This instance's hold on one room: checked before every command.
#[derive(Clone)]
pub struct Ownership {
    inner: Arc<OwnershipInner>,
}

struct OwnershipInner {
    cluster: Arc<Cluster>,
    room: String,
    /// The create revision of the room's key when this instance made it.
    created: i64,
    /// The lease the key is bound to.
    lease: LeaseId,
    /// Fired when the key was seen changed or gone, or the room given up.
    lost: CancellationToken,
}

impl Ownership {
    /// The room is still this instance's: its key unchanged as far as the
    /// watch has seen, and the lease it is bound to surely alive.
    pub fn holds(&self) -> bool {
        let inner = &self.inner;
        !inner.lost.is_cancelled()
            && inner.cluster.lease() == inner.lease
            && inner.cluster.lease_alive()
    }

    /// Marks the room lost: nothing more is sent in it.
    pub fn lose(&self) {
        self.inner.lost.cancel();
    }

    /// Fires when the room is lost.
    pub fn lost(&self) -> &CancellationToken {
        &self.inner.lost
    }

    /// Counts a command refused because the room may not be ours.
    pub fn note_refusal(&self) {
        self.inner
            .cluster
            .counters
            .fencing_refusals
            .fetch_add(1, Ordering::Relaxed);
    }

    /// The node holding it.
    pub fn node(&self) -> &str {
        &self.inner.cluster.node
    }
}
