//! The daemon: everything `usher run` starts, and its orderly stop.
//!
//! [`Daemon::start`] checks everything it can before touching a room: the
//! rules compile, every room's bindings fit them, every secret and timetable
//! file can be read, every platform can be set up, the audit log can be
//! opened and the HTTP port bound. Any of these failing is a
//! [`StartError::Config`]; the CLI exits with status 2. Then it starts one
//! supervised task per room, a timetable keeper per room with a timetable,
//! discovery (rooms the platforms report, watched as `discover:` says), a
//! booker per room with `book_ahead` (instead of a room task: the room
//! names a series of booked meetings, each watched when it is due), the
//! rules watcher, the HTTP endpoint and, with `webhooks:`, the listener for
//! platforms' callbacks. With `cluster:`, it first joins the cluster (etcd
//! unreachable is a [`StartError::Config`] too), and rooms start as this
//! instance takes them (see [`crate::cluster`]).
//!
//! [`Daemon::shutdown`] stops taking events, lets each room finish (or record
//! as cancelled) the commands in flight and end its session, then flushes the
//! audit log.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::{Notify, broadcast, mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::activity::Activity;
use super::audit::AuditSink;
use super::booking::{BookingKeeper, Ledger};
use super::discovery::{self, Discoverer};
use super::dispatch::Pacing;
use super::persist::StateStore;
use super::reload::watch_rules;
use super::room::{RoomSetup, supervise};
use super::status::{Registry, Watching};
use crate::cluster::Cluster;
use crate::cluster::rooms::{self as cluster_rooms, ClusterRooms, RoomTemplate};
use crate::config::Config;
use crate::dashboard::Dashboard;
use crate::dashboard::actions::{Actions, Tokens};
use crate::platform::{self, BuildContext, FeedOptions, RoomAddress};
use crate::report::book::ReportBook;
use crate::rules::{RuleEngine, RuleLibrary, RuleSet};
use crate::timetable::fetch::default_cache_dir;
use crate::timetable::{Keeper, TimetableError};

/// Why the daemon did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration, the rules or something they name cannot be used.
    #[error("{0}")]
    Config(String),
    /// Anything else.
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// What every room task shares.
pub(crate) struct Shared {
    pub audit: AuditSink,
    pub activity: broadcast::Sender<Activity>,
    pub rules: watch::Receiver<Arc<RuleSet>>,
    pub dry_run: bool,
    pub pacing: Pacing,
    pub flip_flops_per_minute: u32,
    /// Where rooms' rule state is kept.
    pub store: StateStore,
}

/// How to start the daemon, beyond its configuration.
#[derive(Debug, Clone, Copy, Default)]
pub struct StartOptions {
    /// How the platforms' feeds pace their reconnects.
    pub feed: FeedOptions,
    /// Keep the activity feed from the very start, for
    /// [`Daemon::take_activity`]. Activity costs a little per event, so
    /// `usher run` leaves it off.
    pub follow_activity: bool,
}

/// A running daemon.
pub struct Daemon {
    cancel: CancellationToken,
    rooms: Vec<JoinHandle<()>>,
    background: Vec<JoinHandle<()>>,
    audit_writer: Option<JoinHandle<()>>,
    http_addr: SocketAddr,
    webhooks_addr: Option<SocketAddr>,
    activity: broadcast::Sender<Activity>,
    first_activity: Option<broadcast::Receiver<Activity>>,
    registry: Arc<Registry>,
    reload_requests: Arc<Notify>,
    reports: Option<Arc<ReportBook>>,
}

/// Where the bookings are kept: `bookings.json` beside the audit log, or
/// beside the config when there is none.
fn bookings_path(audit_log: Option<&Path>, config_path: &Path) -> std::path::PathBuf {
    audit_log
        .unwrap_or(config_path)
        .with_file_name("bookings.json")
}

impl Daemon {
    /// Checks the configuration and starts everything. `config_path` is used
    /// to point at mistakes in the file.
    pub async fn start(config: Config, config_path: &Path) -> Result<Daemon, StartError> {
        Daemon::start_with(config, config_path, StartOptions::default()).await
    }

    /// Like [`Daemon::start`], with options.
    pub async fn start_with(
        config: Config,
        config_path: &Path,
        options: StartOptions,
    ) -> Result<Daemon, StartError> {
        let engine = Arc::new(RuleEngine::new(config.limits.to_limits()));
        let library = RuleLibrary::load(engine, &config.rules_dir).map_err(|errors| {
            let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
            StartError::Config(lines.join("\n"))
        })?;
        let library = Arc::new(library);
        config
            .check_bindings(config_path, &library.current())
            .map_err(|err| StartError::Config(err.to_string()))?;
        let pins = config
            .resolve_pins(config_path)
            .map_err(|err| StartError::Config(err.to_string()))?;
        let (discovered, discoveries) = mpsc::unbounded_channel();
        let public_url = config
            .webhooks
            .as_ref()
            .and_then(|webhooks| webhooks.public_url.as_ref())
            .map(|url| url.0.clone());
        let mut platforms = BTreeMap::new();
        for (name, platform) in &config.platforms {
            let rooms = config
                .rooms
                .iter()
                .filter(|room| room.platform_name() == name)
                .count();
            let context = BuildContext {
                name: name.clone(),
                rooms,
                feed: options.feed,
                discoveries: discovered.clone(),
                public_url: public_url.clone(),
            };
            let built = platform::build(platform, context)
                .map_err(|err| StartError::Config(format!("platform `{name}`: {err}")))?;
            platforms.insert(name.clone(), built);
        }
        let rooms: Vec<_> = config
            .rooms
            .iter()
            .zip(pins)
            .map(|(room, pin)| {
                let address = RoomAddress {
                    alias: room.alias.clone(),
                    pin,
                };
                let platform = platforms[room.platform_name()].clone();
                let name = room.platform_name().to_owned();
                (address, (name, platform), Arc::from(room.rules.as_slice()))
            })
            .collect();
        for room in config.rooms.iter().filter(|room| room.book_ahead.is_some()) {
            let platform = &platforms[room.platform_name()];
            if platform.booker().is_none() {
                return Err(StartError::Config(format!(
                    "room `{}`: book_ahead: platform `{}` ({}) cannot book meetings; Huawei and Agora accounts can",
                    room.alias,
                    room.platform_name(),
                    platform.kind()
                )));
            }
        }
        let ledger = if config.rooms.iter().any(|room| room.book_ahead.is_some()) {
            let path = bookings_path(config.audit_log.as_deref(), config_path);
            let ledger = Ledger::open(&path).map_err(|err| StartError::Config(err.to_string()))?;
            Some(Arc::new(std::sync::Mutex::new(ledger)))
        } else {
            None
        };
        let timetable_cache = default_cache_dir();
        let mut schedules = Vec::new();
        for room in &config.rooms {
            let opened = Keeper::open(&room.alias, &room.schedule(), Some(&timetable_cache))
                .map_err(|err| StartError::Config(err.to_string()))?;
            schedules.push(opened);
        }
        let (audit, audit_writer) = match &config.audit_log {
            Some(path) => {
                let (sink, writer) = AuditSink::open(path).map_err(|err| {
                    StartError::Config(format!(
                        "cannot open the audit log {}: {err}",
                        path.display()
                    ))
                })?;
                (sink, Some(writer))
            }
            None => (AuditSink::disabled(), None),
        };
        let listener = TcpListener::bind(config.http.listen).await.map_err(|err| {
            StartError::Config(format!(
                "http.listen: cannot listen on {}: {err}",
                config.http.listen
            ))
        })?;
        let http_addr = listener.local_addr().map_err(anyhow::Error::from)?;
        let hooks_listener = match &config.webhooks {
            Some(webhooks) => Some(TcpListener::bind(webhooks.listen).await.map_err(|err| {
                StartError::Config(format!(
                    "webhooks.listen: cannot listen on {}: {err}",
                    webhooks.listen
                ))
            })?),
            None => None,
        };
        let webhooks_addr = match &hooks_listener {
            Some(listener) => Some(listener.local_addr().map_err(anyhow::Error::from)?),
            None => None,
        };

        let cancel = CancellationToken::new();
        let cluster = match &config.cluster {
            Some(settings) => Some(
                Cluster::join(settings)
                    .await
                    .map_err(|err| StartError::Config(err.to_string()))?,
            ),
            None => None,
        };
        let store = match (&cluster, config.state_dir()) {
            (Some(cluster), _) => StateStore::Etcd(cluster.clone()),
            (None, Some(dir)) => {
                std::fs::create_dir_all(&dir).map_err(|err| {
                    StartError::Config(format!("state_dir: cannot create {}: {err}", dir.display()))
                })?;
                StateStore::Dir(Arc::from(dir.as_path()))
            }
            (None, None) => StateStore::Off,
        };
        let (publish, rules) = watch::channel(library.current());
        let (activity, first_activity) = broadcast::channel(4096);
        let first_activity = options.follow_activity.then_some(first_activity);
        let actions = match &config.http.auth {
            Some(auth) => Some(Actions {
                tokens: Tokens::load(&auth.token_file)
                    .map_err(|err| StartError::Config(err.to_string()))?,
                audit: audit.clone(),
            }),
            None => None,
        };
        let dashboard = Arc::new(Dashboard::new(cancel.clone()));
        let mut watching: Vec<Arc<dyn Watching>> = vec![dashboard.clone()];
        let reports = config
            .reports_dir
            .as_deref()
            .map(|dir| ReportBook::start(dir, cancel.clone()));
        watching.extend(reports.iter().map(|book| book.clone() as Arc<dyn Watching>));
        let registry = Arc::new(Registry::watched_by(watching));
        let shared = Arc::new(Shared {
            audit,
            activity: activity.clone(),
            rules,
            dry_run: config.dry_run,
            pacing: Pacing {
                rate: config.dispatch.rate,
                burst: config.dispatch.burst,
                attempts: config.dispatch.attempts,
                queue: config.dispatch.queue,
            },
            flip_flops_per_minute: config.dispatch.flip_flops_per_minute,
            store,
        });
        let all_bindings = rooms
            .iter()
            .map(|(_, _, bindings)| Arc::clone(bindings))
            .chain(
                config
                    .profiles
                    .values()
                    .map(|profile| Arc::from(profile.rules.as_slice())),
            )
            .collect();
        let mut keepers = Vec::new();
        let known_schedules = config
            .rooms
            .iter()
            .zip(&schedules)
            .map(|(room, (schedule, _))| (room.alias.clone(), schedule.schedule.clone()))
            .collect();
        let mut room_tasks: Vec<JoinHandle<()>> = Vec::new();
        let mut templates = BTreeMap::new();
        for (((address, (name, platform), bindings), (schedule, keeper)), book_ahead) in rooms
            .into_iter()
            .zip(schedules)
            .zip(config.rooms.iter().map(|room| room.book_ahead))
        {
            if let (Some(horizon), Some(ledger)) = (book_ahead, &ledger) {
                if let Some(keeper) = keeper {
                    let note = |err: &TimetableError| tracing::warn!("{err}");
                    keepers.push(tokio::spawn(keeper.run(note, cancel.clone())));
                }
                let booker = BookingKeeper {
                    room: address.alias,
                    platform_name: name,
                    platform,
                    horizon: horizon.0,
                    schedule,
                    bindings,
                    ledger: ledger.clone(),
                    shared: shared.clone(),
                    registry: registry.clone(),
                };
                room_tasks.push(tokio::spawn(booker.run(cancel.clone())));
                continue;
            }
            if cluster.is_some() {
                // Rooms start when this instance takes them (cluster::rooms).
                if let Some(keeper) = keeper {
                    let alias = address.alias.clone();
                    let note = move |err: &TimetableError| {
                        tracing::error!(room = %alias, error = %err, "timetable");
                    };
                    keepers.push(tokio::spawn(keeper.run(note, cancel.clone())));
                }
                let template = RoomTemplate {
                    address,
                    platform_name: name,
                    platform,
                    bindings,
                    schedule,
                };
                templates.insert(template.address.alias.clone(), template);
                continue;
            }
            let status = registry.add_room(&address.alias, &name, false);
            if let Some(keeper) = keeper {
                let noted = status.clone();
                let note = move |err: &TimetableError| {
                    noted.update(|status| status.note_error(err.to_string()));
                };
                keepers.push(tokio::spawn(keeper.run(note, cancel.clone())));
            }
            let setup = RoomSetup {
                status,
                address,
                platform,
                bindings,
                schedule,
                ownership: None,
            };
            room_tasks.push(tokio::spawn(supervise(
                setup,
                shared.clone(),
                cancel.clone(),
            )));
        }
        if let Some(cluster) = &cluster {
            registry.set_cluster(cluster.clone());
            let pool = ClusterRooms {
                cluster: cluster.clone(),
                rooms: templates,
                registry: registry.clone(),
                shared: shared.clone(),
            };
            room_tasks.push(tokio::spawn(cluster_rooms::run(pool, cancel.clone())));
        }
        let discoverer = Discoverer {
            entries: config.discover.clone(),
            profiles: config.profiles.clone(),
            platforms: platforms.clone(),
            registry: registry.clone(),
            shared: shared.clone(),
            schedules: known_schedules,
        };
        room_tasks.push(tokio::spawn(discovery::run(
            discoverer,
            discoveries,
            cancel.clone(),
        )));
        let reload_requests = Arc::new(Notify::new());
        let watcher = tokio::spawn(watch_rules(
            library,
            publish,
            all_bindings,
            registry.clone(),
            reload_requests.clone(),
            cancel.clone(),
        ));
        let router = super::http::router(registry.clone(), dashboard, actions);
        let stop_serving = cancel.clone();
        let server = tokio::spawn(async move {
            let serving = axum::serve(listener, router)
                .with_graceful_shutdown(async move { stop_serving.cancelled().await });
            if let Err(err) = serving.await {
                tracing::error!(error = %err, "the HTTP endpoint failed");
            }
        });
        let mut background: Vec<JoinHandle<()>> =
            [watcher, server].into_iter().chain(keepers).collect();
        if let Some(listener) = hooks_listener {
            let router = super::webhooks::router(platforms, registry.clone());
            let stop_serving = cancel.clone();
            background.push(tokio::spawn(async move {
                let serving = axum::serve(listener, router)
                    .with_graceful_shutdown(async move { stop_serving.cancelled().await });
                if let Err(err) = serving.await {
                    tracing::error!(error = %err, "the webhook listener failed");
                }
            }));
        }
        tracing::info!(
            rooms = config.rooms.len(),
            discover = config.discover.len(),
            http = %http_addr,
            webhooks = ?webhooks_addr,
            dry_run = config.dry_run,
            "usher is running"
        );
        Ok(Daemon {
            cancel,
            rooms: room_tasks,
            background,
            webhooks_addr,
            audit_writer,
            http_addr,
            activity,
            first_activity,
            registry,
            reload_requests,
            reports,
        })
    }

    /// Where `/healthz`, `/metrics` and `/status` are served.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// Where platforms' callbacks are received (`/hooks/<platform>`), when
    /// the config has `webhooks:`.
    pub fn webhooks_addr(&self) -> Option<SocketAddr> {
        self.webhooks_addr
    }

    /// Follows what happens from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Activity> {
        self.activity.subscribe()
    }

    /// Everything that happened since the start, when started with
    /// [`StartOptions::follow_activity`]; once.
    pub fn take_activity(&mut self) -> Option<broadcast::Receiver<Activity>> {
        self.first_activity.take()
    }

    /// Every room's status.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// Reloads the rules now (as SIGHUP does).
    pub fn reload(&self) {
        self.reload_requests.notify_one();
    }

    /// Runs until SIGINT or SIGTERM, reloading the rules on SIGHUP, then
    /// shuts down in order.
    pub async fn run_until_signalled(self) -> std::io::Result<()> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut terminate = signal(SignalKind::terminate())?;
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut hangup = signal(SignalKind::hangup())?;
        loop {
            tokio::select! {
                _ = terminate.recv() => break,
                _ = interrupt.recv() => break,
                _ = hangup.recv() => {
                    tracing::info!("SIGHUP: reloading the rules");
                    self.reload();
                }
            }
        }
        tracing::info!("stopping: finishing commands in flight and ending sessions");
        self.shutdown().await;
        Ok(())
    }

    /// Stops the daemon in order: rooms finish their commands and end their
    /// sessions, then the audit log is flushed.
    pub async fn shutdown(self) {
        self.cancel.cancel();
        for room in self.rooms {
            let _ = room.await;
        }
        if let Some(reports) = self.reports {
            reports.finish_all(crate::clock::unix_now());
        }
        for task in self.background {
            let _ = task.await;
        }
        if let Some(writer) = self.audit_writer {
            let _ = writer.await;
        }
        tracing::info!("usher stopped");
    }
}
