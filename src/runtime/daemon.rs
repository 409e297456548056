//! The daemon: everything `usher run` starts, and its orderly stop.
//!
//! [`Daemon::start`] checks everything it can before touching a room: the
//! rules compile, every room's bindings fit them, every PIN can be read, the
//! audit log can be opened and the HTTP port bound. Any of these failing is a
//! [`StartError::Config`]; the CLI exits with status 2. Then it starts one
//! supervised task per room, the rules watcher and the HTTP endpoint.
//!
//! [`Daemon::shutdown`] stops taking events, lets each room finish (or record
//! as cancelled) the commands in flight and end its session, then flushes the
//! audit log.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::{Notify, broadcast, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::activity::Activity;
use super::audit::AuditSink;
use super::dispatch::Pacing;
use super::reload::watch_rules;
use super::room::{RoomSetup, supervise};
use super::status::{Registry, Watching};
use crate::config::{Config, PlatformConfig};
use crate::dashboard::Dashboard;
use crate::dashboard::actions::{Actions, Tokens};
use crate::platform::vmr::{FeedOptions, HttpClients};
use crate::report::book::ReportBook;
use crate::rules::{RuleEngine, RuleLibrary, RuleSet};

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
    pub platform: PlatformConfig,
    pub http: HttpClients,
    pub audit: AuditSink,
    pub activity: broadcast::Sender<Activity>,
    pub rules: watch::Receiver<Arc<RuleSet>>,
    pub dry_run: bool,
    pub pacing: Pacing,
    pub flip_flops_per_minute: u32,
    pub feed: FeedOptions,
}

/// How to start the daemon, beyond its configuration.
#[derive(Debug, Clone, Copy, Default)]
pub struct StartOptions {
    /// How the event feeds pace their reconnects.
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
    activity: broadcast::Sender<Activity>,
    first_activity: Option<broadcast::Receiver<Activity>>,
    registry: Arc<Registry>,
    reload_requests: Arc<Notify>,
    reports: Option<Arc<ReportBook>>,
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
        let mut rooms = Vec::new();
        for room in &config.rooms {
            let pin = room.resolve_pin().map_err(StartError::Config)?;
            rooms.push((room.alias.clone(), pin, Arc::from(room.rules.as_slice())));
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
        let http = HttpClients::new(config.platform.http_options(config.rooms.len()))
            .map_err(|err| anyhow::anyhow!("cannot build the HTTP client: {err}"))?;

        let cancel = CancellationToken::new();
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
            platform: config.platform.clone(),
            http,
            audit,
            activity: activity.clone(),
            rules,
            dry_run: config.dry_run,
            pacing: Pacing {
                rate: config.dispatch.rate,
                burst: config.dispatch.burst,
                attempts: config.dispatch.attempts,
            },
            flip_flops_per_minute: config.dispatch.flip_flops_per_minute,
            feed: options.feed,
        });
        let all_bindings = rooms
            .iter()
            .map(|(_, _, bindings)| Arc::clone(bindings))
            .collect();
        let room_tasks = rooms
            .into_iter()
            .map(|(alias, pin, bindings)| {
                let setup = RoomSetup {
                    status: registry.add_room(&alias),
                    alias,
                    pin,
                    bindings,
                };
                tokio::spawn(supervise(setup, shared.clone(), cancel.clone()))
            })
            .collect();
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
        tracing::info!(
            rooms = config.rooms.len(),
            http = %http_addr,
            dry_run = config.dry_run,
            "usher is running"
        );
        Ok(Daemon {
            cancel,
            rooms: room_tasks,
            background: vec![watcher, server],
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
