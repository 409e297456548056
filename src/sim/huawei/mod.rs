//! Huawei Cloud Meeting's simulator: its REST API, meeting WebSocket and
//! enterprise webhook, as `reference/platforms.md` §1.6 asks.
//!
//! - [`push`]: neutral events as notify frames.
//! - `rest`: auth (account and App-ID, refresh), the control token (30 min,
//!   kept alive by asking with it; refused before the meeting runs), the
//!   one-shot 60 s wsToken, `realTimeInfo`, `confDetail` and every control
//!   command, whose side effects arrive as pushes.
//! - `socket`: the meeting socket: only a valid, unused tmpToken opens it;
//!   Subscribe's `data` must be a JSON string; one full push per subscribed
//!   type, then incrementals; heartbeats echoed; closed 180 s after the last
//!   one, and when the meeting ends.
//! - `webhook`: signed enterprise webhooks to a URL, after the
//!   `meeting.verify` handshake.
//!
//! Every meeting is driven by the shared [`Conference`] state machine, so
//! the same scenario files play here as on every other platform. Faults:
//! `drop_streams` (every socket cut), `expire_tokens` (every access and
//! control token dies), `fail_commands` (5xx), `delay_responses`,
//! `heartbeat_silence` (open sockets go quiet: no pushes, no echoes) and
//! `reuse_ws_token` (the next wsToken issued is one already used).
//! Passwords and tokens never reach a log line.

pub mod push;
mod rest;
mod socket;
mod webhook;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use self::push::{MeetingView, Push, Pusher};
use super::calls::{CallLog, CallRecord};
use super::conference::{Actor, Conference, SimError};
use super::player::{self, Drive};
use super::scenario::{Fault, Scenario};
use super::step::Step;
use super::{ConferenceSnapshot, RoomSpec};
use crate::clock::unix_now;
use crate::model::{Command, ConferenceCommand, Event, ParticipantCommand, Role, Secret};
use crate::platform::huawei::wire::ControlCall;

/// The App ID the simulator accepts by default (not a real one).
pub const SIM_APP_ID: &str = "usher-sim-app";
/// The App key that signs for [`SIM_APP_ID`] (not a real one).
pub const SIM_APP_KEY: &str = "usher-sim-app-key";
/// The account the simulator accepts by default.
pub const SIM_ACCOUNT: &str = "usher@sim.huawei.test";
/// That account's password.
pub const SIM_PASSWORD: &str = "usher-sim-password";
/// The secret the simulator signs webhooks with by default.
pub const SIM_WEBHOOK_SECRET: &str = "usher-sim-webhook-secret";

/// How to reach the simulator: its made-up credentials, for `usher
/// simulate` to print (they are the simulator's, not real ones).
pub fn account_hint() -> String {
    format!(
        "Huawei credentials: App ID {SIM_APP_ID}, App key {SIM_APP_KEY} (any user_id), or account {SIM_ACCOUNT} / {SIM_PASSWORD}; webhooks signed with {SIM_WEBHOOK_SECRET}"
    )
}

/// How many frames a socket may fall behind before it is closed.
const SOCKET_BACKLOG: usize = 4096;
/// How long [`HuaweiSimulator::shutdown`] waits for connections to finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// How the simulated account behaves.
#[derive(Debug, Clone)]
pub struct HuaweiOptions {
    /// The App ID App-ID auth must name.
    pub app_id: String,
    /// The key its signature must be made with.
    pub app_key: String,
    /// The account account auth must name.
    pub account: String,
    /// Its password.
    pub password: String,
    /// How long an access token lasts.
    pub access_validity: Duration,
    /// How long a wsToken may wait before it opens a socket.
    pub ws_token_validity: Duration,
    /// A socket without a heartbeat for this long is closed.
    pub heartbeat_timeout: Duration,
    /// Where signed webhooks go, if anywhere.
    pub webhook: Option<WebhookTarget>,
}

/// Where the simulator sends its enterprise webhooks.
#[derive(Debug, Clone)]
pub struct WebhookTarget {
    /// usher's `/hooks/<name>` URL.
    pub url: url::Url,
    /// The subscription's secret.
    pub secret: String,
    /// The subscriber id the bodies carry.
    pub app_id: String,
}

impl Default for HuaweiOptions {
    fn default() -> Self {
        HuaweiOptions {
            app_id: SIM_APP_ID.to_owned(),
            app_key: SIM_APP_KEY.to_owned(),
            account: SIM_ACCOUNT.to_owned(),
            password: SIM_PASSWORD.to_owned(),
            access_validity: Duration::from_secs(12 * 3600),
            ws_token_validity: Duration::from_secs(60),
            heartbeat_timeout: Duration::from_secs(180),
            webhook: None,
        }
    }
}

impl WebhookTarget {
    /// Webhooks to `url`, signed with [`SIM_WEBHOOK_SECRET`].
    pub fn to(url: url::Url) -> Self {
        WebhookTarget {
            url,
            secret: SIM_WEBHOOK_SECRET.to_owned(),
            app_id: SIM_APP_ID.to_owned(),
        }
    }
}

/// A meeting's life (§1.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MeetingState {
    /// Booked, not running: no control token yet.
    Schedule,
    /// Running.
    Created,
    /// Ended.
    Destroyed,
}

impl MeetingState {
    /// As the pushes and `confDetail` spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            MeetingState::Schedule => "Schedule",
            MeetingState::Created => "Created",
            MeetingState::Destroyed => "Destroyed",
        }
    }
}

/// One control command the simulator answered.
#[derive(Debug, Clone, PartialEq)]
pub struct ControlRecord {
    /// The conference it was for.
    pub room: String,
    /// The command.
    pub call: ControlCall,
    /// The HTTP status answered.
    pub status: u16,
}

/// A running Huawei simulator: an HTTP server for REST and sockets, and a
/// handle to drive meetings and inspect what happened.
pub struct HuaweiSimulator {
    shared: Arc<Shared>,
    server: JoinHandle<()>,
}

impl HuaweiSimulator {
    /// Binds `listen` (port 0 picks a free one) and serves `rooms` as
    /// running meetings, with the default account.
    pub async fn start(listen: SocketAddr, rooms: Vec<RoomSpec>) -> anyhow::Result<Self> {
        Self::start_with(listen, rooms, HuaweiOptions::default()).await
    }

    /// Like [`HuaweiSimulator::start`], with these options.
    pub async fn start_with(
        listen: SocketAddr,
        rooms: Vec<RoomSpec>,
        options: HuaweiOptions,
    ) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|err| anyhow::anyhow!("cannot listen on {listen}: {err}"))?;
        let addr = listener.local_addr()?;
        let shutdown = CancellationToken::new();
        let webhooks = Mutex::new(
            options
                .webhook
                .clone()
                .map(|target| webhook::spawn(target, shutdown.clone())),
        );
        let shared = Arc::new(Shared {
            rooms: RwLock::new(HashMap::new()),
            calls: CallLog::default(),
            controls: Mutex::new(Vec::new()),
            access: Mutex::new(HashMap::new()),
            options,
            addr,
            shutdown,
            webhooks,
        });
        for spec in rooms {
            shared.add_room(&spec, MeetingState::Created);
        }
        let app = rest::router(shared.clone());
        let stop = shared.shutdown.clone();
        let server = tokio::spawn(async move {
            let serving = axum::serve(listener, app).with_graceful_shutdown(stop.cancelled_owned());
            if let Err(err) = serving.await {
                warn!("simulator server failed: {err}");
            }
        });
        Ok(HuaweiSimulator { shared, server })
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.shared.addr
    }

    /// `http://<addr>/`, the REST base.
    pub fn base_url(&self) -> url::Url {
        url::Url::parse(&format!("http://{}/", self.shared.addr))
            .expect("a socket address always makes a valid URL")
    }

    /// From now on, sends the account's webhooks to `target` (after the
    /// verify handshake), instead of where they went before.
    pub fn send_webhooks_to(&self, target: WebhookTarget) {
        let sender = webhook::spawn(target, self.shared.shutdown.clone());
        *lock(&self.shared.webhooks) = Some(sender);
    }

    /// Adds a running meeting, replacing one with the same conference ID.
    pub fn add_room(&self, spec: RoomSpec) {
        self.shared.add_room(&spec, MeetingState::Created);
    }

    /// Adds a meeting that is booked but not running yet.
    pub fn add_scheduled_room(&self, spec: RoomSpec) {
        self.shared.add_room(&spec, MeetingState::Schedule);
    }

    /// The meetings booked and not yet started: id, title, scheduled start
    /// (UNIX seconds) and length in minutes, by start.
    pub fn booked(&self) -> Vec<(String, String, f64, i64)> {
        let mut booked: Vec<_> = self
            .shared
            .all_rooms()
            .iter()
            .filter_map(|room| {
                let meeting = room.lock();
                (meeting.state == MeetingState::Schedule).then(|| {
                    let details = &meeting.details;
                    (
                        details.alias.clone(),
                        details.title.clone(),
                        details.scheduled_ms as f64 / 1000.0,
                        details.minutes,
                    )
                })
            })
            .collect();
        booked.sort_by(|a, b| a.2.total_cmp(&b.2).then_with(|| a.0.cmp(&b.0)));
        booked
    }

    /// Starts a booked meeting (and sends `meeting.started`).
    pub fn start_meeting(&self, room: &str) -> Result<(), SimError> {
        self.shared.set_state(room, MeetingState::Created)
    }

    /// Ends a meeting: `Destroyed` pushed, sockets closed, `meeting.end`
    /// sent.
    pub fn end_meeting(&self, room: &str) -> Result<(), SimError> {
        self.shared.set_state(room, MeetingState::Destroyed)
    }

    /// Applies a step to a room and pushes what it caused.
    pub fn step(&self, room: &str, step: &Step) -> Result<(), SimError> {
        self.shared.step(room, step)
    }

    /// Injects a fault into a room.
    pub fn fault(&self, room: &str, fault: Fault) -> Result<(), SimError> {
        self.shared.fault(room, fault)
    }

    /// Plays a scenario's timeline in real time, adding its room if needed.
    pub fn play(&self, scenario: &Scenario) -> JoinHandle<()> {
        if self.shared.room(&scenario.room).is_none() {
            self.shared
                .add_room(&RoomSpec::from_scenario(scenario), MeetingState::Created);
        }
        let driver: Arc<dyn Drive> = self.shared.clone();
        tokio::spawn(player::play(
            driver,
            scenario.clone(),
            self.shared.shutdown.clone(),
        ))
    }

    /// The room's participants and flags, or `None` for an unknown room.
    pub fn conference(&self, room: &str) -> Option<ConferenceSnapshot> {
        let room = self.shared.room(room)?;
        let meeting = room.lock();
        Some(ConferenceSnapshot {
            participants: meeting.conference.participants().cloned().collect(),
            flags: meeting.conference.flags(),
        })
    }

    /// The meeting's state, or `None` for an unknown room.
    pub fn meeting_state(&self, room: &str) -> Option<MeetingState> {
        Some(self.shared.room(room)?.lock().state)
    }

    /// Every request answered so far (the most recent 10,000), oldest first.
    pub fn calls(&self) -> Vec<CallRecord> {
        self.shared.calls.calls()
    }

    /// Every call answered, by call name and HTTP status.
    pub fn tally(&self) -> BTreeMap<(String, u16), u64> {
        self.shared.calls.tally()
    }

    /// Every control command answered, in order.
    pub fn controls(&self) -> Vec<ControlRecord> {
        lock(&self.shared.controls).clone()
    }

    /// How many sockets of the room are open.
    pub fn open_sockets(&self, room: &str) -> usize {
        self.shared.room(room).map_or(0, |room| {
            room.lock()
                .sockets
                .iter()
                .filter(|socket| !socket.frames.is_closed())
                .count()
        })
    }

    /// Stops serving: closes the listener and every socket and waits
    /// (briefly) for connections to finish. The port is free afterwards.
    pub async fn shutdown(mut self) {
        self.shared.close();
        let server = &mut self.server;
        if tokio::time::timeout(SHUTDOWN_GRACE, &mut *server)
            .await
            .is_err()
        {
            warn!("simulator connections did not finish in time; aborting them");
            server.abort();
        }
    }
}

super::platform_simulator!(HuaweiSimulator);

impl Drop for HuaweiSimulator {
    fn drop(&mut self) {
        self.shared.close();
    }
}

/// An access token the simulator issued.
struct AccessGrant {
    expires_at: Instant,
    refresh: String,
}

/// State shared by the handlers, the player and the handle.
pub(crate) struct Shared {
    rooms: RwLock<HashMap<String, Arc<Room>>>,
    calls: CallLog,
    controls: Mutex<Vec<ControlRecord>>,
    access: Mutex<HashMap<String, AccessGrant>>,
    options: HuaweiOptions,
    addr: SocketAddr,
    shutdown: CancellationToken,
    webhooks: Mutex<Option<mpsc::UnboundedSender<webhook::Notice>>>,
}

impl Shared {
    fn room(&self, alias: &str) -> Option<Arc<Room>> {
        self.rooms
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(alias)
            .cloned()
    }

    fn all_rooms(&self) -> Vec<Arc<Room>> {
        self.rooms
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect()
    }

    fn add_room(&self, spec: &RoomSpec, state: MeetingState) {
        let room = Arc::new(Room {
            state: Mutex::new(Meeting::new(spec, state)),
        });
        let replaced = self
            .rooms
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(spec.alias.clone(), room);
        if let Some(old) = replaced {
            old.lock().sockets.clear();
        }
        if state == MeetingState::Created {
            self.notify(webhook::Notice::Started(spec.alias.clone()));
        }
    }

    /// Books a meeting (the management API's create call): a new meeting
    /// in `Schedule` with its own nine-digit id and a chair password.
    fn book(&self, title: &str, scheduled_ms: i64, minutes: i64) -> String {
        let mut rooms = self.rooms.write().unwrap_or_else(PoisonError::into_inner);
        let alias = loop {
            let id = format!("{}", fastrand::u64(900_000_000..1_000_000_000));
            if !rooms.contains_key(&id) {
                break id;
            }
        };
        let spec = RoomSpec {
            pin: Some(Secret::new(format!(
                "{}",
                fastrand::u32(100_000..1_000_000)
            ))),
            ..RoomSpec::new(&alias)
        };
        let mut meeting = Meeting::new(&spec, MeetingState::Schedule);
        meeting.details.title = title.to_owned();
        meeting.details.scheduled_ms = scheduled_ms;
        meeting.details.minutes = minutes;
        rooms.insert(
            alias.clone(),
            Arc::new(Room {
                state: Mutex::new(meeting),
            }),
        );
        info!(room = %alias, title, "meeting booked");
        alias
    }

    /// Moves a booked meeting; `false` if it is not booked (unknown, or
    /// running or over).
    fn rebook(&self, alias: &str, title: &str, scheduled_ms: i64, minutes: i64) -> bool {
        let Some(room) = self.room(alias) else {
            return false;
        };
        let mut meeting = room.lock();
        if meeting.state != MeetingState::Schedule {
            return false;
        }
        meeting.details.title = title.to_owned();
        meeting.details.scheduled_ms = scheduled_ms;
        meeting.details.minutes = minutes;
        info!(room = %alias, "meeting moved");
        true
    }

    /// Cancels a booked meeting; `false` if it is not booked.
    fn cancel_booking(&self, alias: &str) -> bool {
        let mut rooms = self.rooms.write().unwrap_or_else(PoisonError::into_inner);
        let booked = rooms
            .get(alias)
            .is_some_and(|room| room.lock().state == MeetingState::Schedule);
        if booked {
            rooms.remove(alias);
            info!(room = %alias, "meeting cancelled");
        }
        booked
    }

    fn set_state(&self, alias: &str, state: MeetingState) -> Result<(), SimError> {
        let room = self
            .room(alias)
            .ok_or_else(|| SimError::UnknownRoom(alias.to_owned()))?;
        let mut meeting = room.lock();
        if meeting.state == state {
            return Ok(());
        }
        match state {
            MeetingState::Created => {
                meeting.state = state;
                meeting.details.started_ms = now_ms();
                info!(room = %alias, "meeting started");
                self.notify(webhook::Notice::Started(alias.to_owned()));
            }
            MeetingState::Destroyed => {
                meeting.destroy();
                info!(room = %alias, "meeting ended");
                self.notify(webhook::Notice::Ended(alias.to_owned()));
            }
            MeetingState::Schedule => meeting.state = state,
        }
        Ok(())
    }

    fn notify(&self, notice: webhook::Notice) {
        if let Some(webhooks) = lock(&self.webhooks).as_ref() {
            let _ = webhooks.send(notice);
        }
    }

    fn step(&self, alias: &str, step: &Step) -> Result<(), SimError> {
        let room = self
            .room(alias)
            .ok_or_else(|| SimError::UnknownRoom(alias.to_owned()))?;
        let mut meeting = room.lock();
        let arrives = matches!(step, Step::Join(_) | Step::WaitingRoom(_));
        if arrives && meeting.state != MeetingState::Created {
            // Someone arriving starts a booked or ended cloud meeting room,
            // as a host joining one does.
            meeting.state = MeetingState::Created;
            meeting.details.started_ms = now_ms();
            info!(room = %alias, "meeting started by someone joining");
            self.notify(webhook::Notice::Started(alias.to_owned()));
        }
        let events = meeting.conference.apply_step(step, unix_now())?;
        if matches!(step, Step::Chat(_) | Step::Layout(_)) {
            info!(room = %alias, "{}: Huawei pushes no chat or layout to API clients", step.describe());
        }
        meeting.broadcast(&events);
        Ok(())
    }

    fn fault(&self, alias: &str, fault: Fault) -> Result<(), SimError> {
        let room = self
            .room(alias)
            .ok_or_else(|| SimError::UnknownRoom(alias.to_owned()))?;
        let mut meeting = room.lock();
        match fault {
            Fault::DropStreams => meeting.sockets.clear(),
            Fault::ExpireTokens => {
                meeting.control_tokens.clear();
                meeting.ws_tokens.clear();
                lock(&self.access).clear();
            }
            Fault::FailCommands { count, status } => meeting.failing = Some((count, status)),
            Fault::DelayResponses { delay, count } => {
                meeting.delaying = Some((delay.into(), count));
            }
            Fault::HeartbeatSilence => {
                for socket in &mut meeting.sockets {
                    socket.silent = true;
                }
            }
            Fault::ReuseWsToken => meeting.reuse_ws_token = true,
            other => info!(
                "{}: does not apply to the huawei platform; ignored",
                other.describe()
            ),
        }
        Ok(())
    }

    fn record(&self, call: CallRecord) {
        self.calls.record(call);
    }

    fn record_control(&self, record: ControlRecord) {
        lock(&self.controls).push(record);
    }

    /// A new access token.
    fn issue_access(&self) -> (String, String, Duration) {
        let token = new_token();
        let refresh = new_token();
        lock(&self.access).insert(
            token.clone(),
            AccessGrant {
                expires_at: Instant::now() + self.options.access_validity,
                refresh: refresh.clone(),
            },
        );
        (token, refresh, self.options.access_validity)
    }

    /// True when `token` is a live access token.
    fn access_valid(&self, token: Option<&str>) -> bool {
        token.is_some_and(|token| {
            lock(&self.access)
                .get(token)
                .is_some_and(|grant| grant.expires_at > Instant::now())
        })
    }

    /// Replaces a live access token whose refresh token matches.
    fn refresh_access(&self, token: &str, refresh: &str) -> Option<(String, String, Duration)> {
        {
            let mut access = lock(&self.access);
            let grant = access.get(token)?;
            if grant.refresh != refresh || grant.expires_at <= Instant::now() {
                return None;
            }
            access.remove(token);
        }
        Some(self.issue_access())
    }

    /// Stops accepting and closes every socket.
    fn close(&self) {
        self.shutdown.cancel();
        for room in self.all_rooms() {
            room.lock().sockets.clear();
        }
    }
}

impl Drive for Shared {
    fn step(&self, room: &str, step: &Step) -> Result<(), SimError> {
        Shared::step(self, room, step)
    }

    fn fault(&self, room: &str, fault: Fault) -> Result<(), SimError> {
        Shared::fault(self, room, fault)
    }
}

/// One simulated meeting.
pub(crate) struct Room {
    state: Mutex<Meeting>,
}

impl Room {
    fn lock(&self) -> MutexGuard<'_, Meeting> {
        lock(&self.state)
    }
}

/// What a meeting is, apart from who is in it.
struct Details {
    alias: String,
    title: String,
    owner: String,
    started_ms: i64,
    scheduled_ms: i64,
    /// The booked length.
    minutes: i64,
    chair_password: Option<Secret>,
}

/// A wsToken: one use, one minute.
struct WsGrant {
    expires_at: Instant,
    used: bool,
}

/// One open meeting socket, as the meeting sees it.
struct SocketHandle {
    id: u64,
    frames: mpsc::Sender<String>,
    kinds: Vec<String>,
    /// `heartbeat_silence`: nothing more goes out on it.
    silent: bool,
}

/// Everything about a meeting that changes.
pub(crate) struct Meeting {
    conference: Conference,
    state: MeetingState,
    details: Details,
    control_lifetime: Duration,
    control_tokens: HashMap<String, Instant>,
    ws_tokens: HashMap<String, WsGrant>,
    reuse_ws_token: bool,
    sockets: Vec<SocketHandle>,
    next_socket: u64,
    pusher: Pusher,
    cohosts: HashSet<String>,
    failing: Option<(u32, u16)>,
    delaying: Option<(Duration, u32)>,
}

/// The actor of API commands in the conference.
fn api_actor() -> Actor {
    Actor {
        uuid: String::new(),
        name: "usher".to_owned(),
    }
}

/// The view of a meeting its pushes need (a macro-free way to borrow the
/// fields it reads while the pusher is borrowed mutably).
fn view<'a>(
    details: &'a Details,
    conference: &'a Conference,
    cohosts: &'a HashSet<String>,
    state: MeetingState,
) -> MeetingView<'a> {
    let participants: Vec<_> = conference.participants().collect();
    MeetingView {
        conf_id: &details.alias,
        title: &details.title,
        owner: &details.owner,
        started_ms: details.started_ms,
        scheduled_ms: details.scheduled_ms,
        state: state.as_str(),
        chair_password: details
            .chair_password
            .as_ref()
            .map_or("", |password| password.expose()),
        flags: conference.flags(),
        broadcasting: participants.iter().any(|p| p.spotlit()),
        cohosts,
        participants,
    }
}

impl Meeting {
    fn new(spec: &RoomSpec, state: MeetingState) -> Self {
        let now = unix_now();
        let mut meeting = Meeting {
            conference: Conference::with_seed(&spec.alias, fastrand::u64(..)),
            state,
            details: Details {
                alias: spec.alias.clone(),
                title: format!("Meeting {}", spec.alias),
                owner: "usher-sim".to_owned(),
                started_ms: (now * 1000.0) as i64,
                scheduled_ms: (now * 1000.0) as i64,
                minutes: 60,
                chair_password: spec.pin.clone(),
            },
            control_lifetime: spec.token_expiry,
            control_tokens: HashMap::new(),
            ws_tokens: HashMap::new(),
            reuse_ws_token: false,
            sockets: Vec::new(),
            next_socket: 0,
            pusher: Pusher::default(),
            cohosts: HashSet::new(),
            failing: None,
            delaying: None,
        };
        for joiner in &spec.participants {
            let events = meeting
                .conference
                .apply_step(&Step::Join(joiner.clone()), now)
                .expect("joining never names an absent participant");
            meeting.broadcast(&events);
        }
        meeting
    }

    /// Pushes what `events` mean to every socket subscribed to their types.
    fn broadcast(&mut self, events: &[Event]) {
        let mut pushes = Vec::new();
        for event in events {
            let view = view(&self.details, &self.conference, &self.cohosts, self.state);
            pushes.extend(self.pusher.event(event, &view));
        }
        self.deliver(pushes);
    }

    /// Pushes the dynamic info, full, as every change of it is.
    fn push_dynamic(&mut self) {
        let view = view(&self.details, &self.conference, &self.cohosts, self.state);
        let push = self.pusher.dynamic(&view);
        self.deliver(vec![push]);
    }

    fn deliver(&mut self, pushes: Vec<Push>) {
        for push in pushes {
            self.sockets.retain(|socket| {
                if socket.silent || !socket.kinds.iter().any(|kind| kind == push.kind) {
                    return !socket.frames.is_closed();
                }
                match socket.frames.try_send(push.text.clone()) {
                    Ok(()) => true,
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        warn!("a meeting socket fell {SOCKET_BACKLOG} pushes behind; closing it");
                        false
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => false,
                }
            });
        }
    }

    /// Registers a new socket's channel; returns its id.
    fn add_socket(&mut self, frames: mpsc::Sender<String>) -> u64 {
        self.next_socket += 1;
        self.sockets.push(SocketHandle {
            id: self.next_socket,
            frames,
            kinds: Vec::new(),
            silent: false,
        });
        self.next_socket
    }

    fn remove_socket(&mut self, id: u64) {
        self.sockets.retain(|socket| socket.id != id);
    }

    /// True when the socket went quiet (`heartbeat_silence`) or is gone.
    fn socket_silent(&self, id: u64) -> bool {
        self.sockets
            .iter()
            .find(|socket| socket.id == id)
            .is_none_or(|socket| socket.silent)
    }

    /// Subscribes a socket with `token`: the full push of each type, in
    /// the order asked. `Err` is the refusal's description.
    fn subscribe(&mut self, id: u64, kinds: Vec<String>, token: &str) -> Result<Vec<Push>, String> {
        if !self.control_valid(Some(token)) {
            return Err("invalid confToken".to_owned());
        }
        let view = view(&self.details, &self.conference, &self.cohosts, self.state);
        let fulls = kinds
            .iter()
            .filter_map(|kind| self.pusher.full_of(kind, &view))
            .collect();
        if let Some(socket) = self.sockets.iter_mut().find(|socket| socket.id == id) {
            socket.kinds = kinds;
        }
        Ok(fulls)
    }

    /// A new control token.
    fn issue_control(&mut self) -> String {
        let token = new_token();
        self.control_tokens
            .insert(token.clone(), Instant::now() + self.control_lifetime);
        token
    }

    /// True when `token` is a live control token of this meeting.
    fn control_valid(&self, token: Option<&str>) -> bool {
        token.is_some_and(|token| {
            self.control_tokens
                .get(token)
                .is_some_and(|expires| *expires > Instant::now())
        })
    }

    /// Extends a live control token (the keep-alive).
    fn keep_alive(&mut self, token: &str) -> bool {
        match self.control_tokens.get_mut(token) {
            Some(expires) if *expires > Instant::now() => {
                *expires = Instant::now() + self.control_lifetime;
                true
            }
            _ => false,
        }
    }

    /// A new wsToken (or, after `reuse_ws_token`, one already used).
    fn issue_ws_token(&mut self, validity: Duration) -> String {
        if self.reuse_ws_token {
            if let Some(used) = self.ws_tokens.iter().find(|(_, grant)| grant.used) {
                self.reuse_ws_token = false;
                return used.0.clone();
            }
        }
        let token = new_token();
        self.ws_tokens.insert(
            token.clone(),
            WsGrant {
                expires_at: Instant::now() + validity,
                used: false,
            },
        );
        token
    }

    /// Uses a wsToken: true when it is known, unused and in time.
    fn take_ws_token(&mut self, token: &str) -> bool {
        match self.ws_tokens.get_mut(token) {
            Some(grant) if !grant.used && grant.expires_at > Instant::now() => {
                grant.used = true;
                true
            }
            _ => false,
        }
    }

    /// Carries out a control command; `Err` is the status and error body.
    fn apply(&mut self, call: &ControlCall) -> Result<(), (u16, &'static str, String)> {
        let now = unix_now();
        let actor = api_actor();
        let known = |meeting: &Meeting, pid: &str| {
            if meeting.conference.participant(pid).is_some() {
                Ok(())
            } else {
                Err((
                    404,
                    "MMC.111070004",
                    format!("no participant {pid} in the meeting"),
                ))
            }
        };
        let run = |meeting: &mut Meeting, command: Command| {
            let reply = meeting
                .conference
                .apply_command(&actor, &command, now)
                .map_err(|err| (400u16, "MMC.111000001", err.to_string()))?;
            meeting.broadcast(&reply.events);
            Ok::<(), (u16, &'static str, String)>(())
        };
        let on = |pid: &str, action: ParticipantCommand| Command::participant(pid, "", action);
        match call {
            ControlCall::Mute { pid, mute } => {
                known(self, pid)?;
                let action = if *mute {
                    ParticipantCommand::Mute
                } else {
                    ParticipantCommand::Unmute
                };
                run(self, on(pid, action))?;
            }
            ControlCall::MuteAll { mute } => {
                let command = if *mute {
                    ConferenceCommand::MuteGuests
                } else {
                    ConferenceCommand::UnmuteGuests
                };
                run(self, Command::Conference(command))?;
            }
            ControlCall::Lock { lock } => {
                let command = if *lock {
                    ConferenceCommand::Lock
                } else {
                    ConferenceCommand::Unlock
                };
                run(self, Command::Conference(command))?;
            }
            ControlCall::Admit { pid } => {
                known(self, pid)?;
                run(self, on(pid, ParticipantCommand::Admit))?;
            }
            ControlCall::HangUp { pid } => {
                known(self, pid)?;
                self.cohosts.remove(pid);
                run(self, on(pid, ParticipantCommand::Disconnect))?;
            }
            ControlCall::Broadcast { pid } => {
                known(self, pid)?;
                // One broadcast at a time: the previous one ends.
                for other in self.spotlit_except(Some(pid)) {
                    run(self, on(&other, ParticipantCommand::SpotlightOff))?;
                }
                run(self, on(pid, ParticipantCommand::SpotlightOn))?;
                self.push_dynamic();
            }
            ControlCall::CancelBroadcast => {
                for other in self.spotlit_except(None) {
                    run(self, on(&other, ParticipantCommand::SpotlightOff))?;
                }
                self.push_dynamic();
            }
            ControlCall::Cohost { pid, on: cohost } => {
                known(self, pid)?;
                if *cohost {
                    self.cohosts.insert(pid.clone());
                } else {
                    self.cohosts.remove(pid);
                }
                let role = if *cohost { Role::Chair } else { Role::Guest };
                run(self, on(pid, ParticipantCommand::SetRole(role)))?;
            }
            ControlCall::Chair { pid, apply } => {
                known(self, pid)?;
                self.cohosts.remove(pid);
                let role = if *apply { Role::Chair } else { Role::Guest };
                run(self, on(pid, ParticipantCommand::SetRole(role)))?;
            }
            ControlCall::Stop => self.destroy(),
        }
        Ok(())
    }

    /// The participants broadcast now, but `keep`.
    fn spotlit_except(&self, keep: Option<&str>) -> Vec<String> {
        self.conference
            .participants()
            .filter(|p| p.spotlit() && Some(p.uuid.as_str()) != keep)
            .map(|p| p.uuid.clone())
            .collect()
    }

    /// Ends the meeting: `Destroyed` pushed, then every socket closed and
    /// every token void.
    fn destroy(&mut self) {
        self.state = MeetingState::Destroyed;
        self.push_dynamic();
        let _ = self.conference.apply_command(
            &api_actor(),
            &Command::Conference(ConferenceCommand::Disconnect),
            unix_now(),
        );
        self.pusher.clear();
        self.cohosts.clear();
        self.sockets.clear();
        self.control_tokens.clear();
        self.ws_tokens.clear();
    }

    /// Takes one pending `fail_commands` failure, if any.
    fn take_failure(&mut self) -> Option<u16> {
        let (count, status) = self.failing.as_mut()?;
        let status = *status;
        *count = count.saturating_sub(1);
        if *count == 0 {
            self.failing = None;
        }
        Some(status)
    }

    /// Takes one pending `delay_responses` delay, if any.
    fn take_delay(&mut self) -> Option<Duration> {
        let (delay, count) = self.delaying.as_mut()?;
        let delay = *delay;
        *count = count.saturating_sub(1);
        if *count == 0 {
            self.delaying = None;
        }
        Some(delay)
    }
}

fn new_token() -> String {
    const ALPHANUMERIC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    (0..40)
        .map(|_| char::from(ALPHANUMERIC[fastrand::usize(..ALPHANUMERIC.len())]))
        .collect()
}

fn now_ms() -> i64 {
    (unix_now() * 1000.0) as i64
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
