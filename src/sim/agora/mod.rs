//! The Agora conference simulator: its REST API and its webhooks.
//!
//! [`AgoraSimulator`] serves the conference paths of
//! `../shared/reference/platforms.md` §3 (the verified create call and the
//! inferred ones of `platform::agora::inferred`) over loopback, each room an
//! [`AgoraRoom`] (the shared conference plus Agora's lifecycle) behind a
//! `std::sync::Mutex` never held across an `.await`. Every call must carry
//! `Authorization: agora token=<token>` (any token when none is set) and
//! the simulator's App ID; replies are `{code, msg, ts[, data]}` with FC's
//! business codes. Rooms are created by the API (seed 004's body, in either
//! of its spellings) or added by hand as rooms created elsewhere. Callbacks
//! go to every URL of a room's `webhookConfig`, only for its `cmds`, with
//! `sequence` rising by one per event of the room, through [`delivery`].
//!
//! Faults: `drop_callbacks`, `duplicate_callbacks`, `reorder_callbacks`,
//! `bad_signatures` (callbacks); `fail_commands` (5xx, or 429 with
//! `Retry-After: 1`), `delay_responses` (REST); `expire_tokens` (a new
//! token, written to the token file when there is one). `drop_streams`
//! does not apply to Agora and is logged and ignored. Agora's signature
//! scheme carries no timestamp, so there are no expired signatures to
//! simulate.

pub mod delivery;
pub mod room;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use self::delivery::{CallbackFaults, DeliveryCounters, DeliveryStats, Outgoing};
use self::room::{AgoraRoom, Conflict};
use super::calls::{CallLog, CallRecord};
use super::conference::SimError;
use super::player::{self, Drive};
use super::scenario::{Fault, Scenario};
use super::step::Step;
use super::{ConferenceSnapshot, RoomSpec};
use crate::clock::unix_now;
use crate::model::Secret;
use crate::platform::agora::inferred::{self, ExitBody, StreamsBody, UserPage};
use crate::platform::agora::wire::{
    self, AUTHORIZATION_PREFIX, Callback, CreateRoom, Reply, ScheduleWire, WebhookConfig,
};

/// How often rooms move along their schedules.
const TICK: Duration = Duration::from_millis(50);
/// How long [`AgoraSimulator::shutdown`] waits for connections to finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// How the simulated account is set up.
#[derive(Debug, Clone)]
pub struct AgoraSimOptions {
    /// The App ID in every path.
    pub app_id: String,
    /// The region in every path.
    pub region: String,
    /// The token every call must carry; `None` accepts any.
    pub token: Option<Secret>,
    /// Where the current token is written (on start and whenever it is
    /// renewed), the way an app server hands tokens out. `{port}` in it
    /// becomes the port the simulator listens on (see [`token_file_for`]);
    /// such a file is removed when the simulator stops.
    pub token_file: Option<PathBuf>,
    /// The key callbacks are signed with; unsigned without one.
    pub webhook_secret: Option<Secret>,
    /// Where callbacks of rooms added by hand go (rooms created by the API
    /// name their own).
    pub webhook_to: Option<url::Url>,
}

impl Default for AgoraSimOptions {
    fn default() -> Self {
        AgoraSimOptions {
            app_id: "usher-sim".to_owned(),
            region: "cn".to_owned(),
            token: None,
            token_file: None,
            webhook_secret: None,
            webhook_to: None,
        }
    }
}

/// Where a simulator started with [`AgoraSimOptions::published`] on `port`
/// writes its token: for configs that must name the file before it exists.
pub fn token_file_for(port: u16) -> PathBuf {
    std::env::temp_dir().join(format!("usher-agora-sim-{port}.token"))
}

impl AgoraSimOptions {
    /// The defaults, with a random token written to [`token_file_for`]
    /// the simulator's port: what `usher simulate --platform agora` and the
    /// platform contract use.
    pub fn published() -> Self {
        AgoraSimOptions {
            token: Some(random_token()),
            token_file: Some(std::env::temp_dir().join("usher-agora-sim-{port}.token")),
            ..AgoraSimOptions::default()
        }
    }
}

fn random_token() -> Secret {
    Secret::new(format!("sim-{:016x}", fastrand::u64(..)))
}

/// A running Agora simulator.
pub struct AgoraSimulator {
    shared: Arc<Shared>,
    server: JoinHandle<()>,
    clock: JoinHandle<()>,
    /// The token file is the simulator's own (named after its port).
    by_port: bool,
}

impl AgoraSimulator {
    /// Binds `listen` (port 0 picks a free one) and serves `rooms` as rooms
    /// created elsewhere, running, their callbacks to `webhook_to`.
    pub async fn start(
        listen: SocketAddr,
        mut options: AgoraSimOptions,
        rooms: Vec<RoomSpec>,
    ) -> anyhow::Result<AgoraSimulator> {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|err| anyhow::anyhow!("cannot listen on {listen}: {err}"))?;
        let addr = listener.local_addr()?;
        let mut by_port = false;
        if let Some(file) = &options.token_file {
            let text = file.to_string_lossy();
            if text.contains("{port}") {
                by_port = true;
                options.token_file = Some(PathBuf::from(
                    text.replace("{port}", &addr.port().to_string()),
                ));
            }
        }
        let shared = Arc::new(Shared {
            rooms: RwLock::new(HashMap::new()),
            calls: CallLog::default(),
            addr,
            shutdown: CancellationToken::new(),
            token: Mutex::new(options.token.clone()),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()?,
            deliveries: Arc::new(DeliveryCounters::default()),
            next_seed: Mutex::new(fastrand::u64(..)),
            options,
        });
        shared.write_token()?;
        for spec in rooms {
            shared.add_room(spec);
        }
        let app = router(shared.clone());
        let stop = shared.shutdown.clone();
        let server = tokio::spawn(async move {
            let serving = axum::serve(listener, app).with_graceful_shutdown(stop.cancelled_owned());
            if let Err(err) = serving.await {
                warn!("simulator server failed: {err}");
            }
        });
        let clock = tokio::spawn(run_clock(shared.clone()));
        Ok(AgoraSimulator {
            shared,
            server,
            clock,
            by_port,
        })
    }

    /// Where the current token is written, if anywhere.
    pub fn token_file(&self) -> Option<&std::path::Path> {
        self.shared.options.token_file.as_deref()
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.shared.addr
    }

    /// `http://<addr>/`, the REST host.
    pub fn base_url(&self) -> url::Url {
        url::Url::parse(&format!("http://{}/", self.shared.addr))
            .expect("a socket address always makes a valid URL")
    }

    /// The App ID.
    pub fn app_id(&self) -> &str {
        &self.shared.options.app_id
    }

    /// The region.
    pub fn region(&self) -> &str {
        &self.shared.options.region
    }

    /// The token calls must carry now, if one is set.
    pub fn token(&self) -> Option<Secret> {
        self.shared.token()
    }

    /// Adds a room created elsewhere, running, replacing one of that id.
    pub fn add_room(&self, spec: RoomSpec) {
        self.shared.add_room(spec);
    }

    /// Adds a room created elsewhere with this schedule and webhook.
    pub fn add_scheduled_room(
        &self,
        uuid: &str,
        name: &str,
        schedule: ScheduleWire,
        hooks: WebhookConfig,
    ) {
        self.shared.insert_room(uuid, name, schedule, hooks);
    }

    /// Applies a step to a room and sends its callbacks.
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
            self.shared.add_room(RoomSpec::from_scenario(scenario));
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
        let state = room.lock();
        Some(ConferenceSnapshot {
            participants: state.room.conference().participants().cloned().collect(),
            flags: state.room.conference().flags(),
        })
    }

    /// A room's schedule, if the room exists.
    pub fn room_schedule(&self, room: &str) -> Option<ScheduleWire> {
        self.shared
            .room(room)
            .map(|room| room.lock().room.schedule())
    }

    /// A room's state (see `inferred::state`), if the room exists.
    pub fn room_state(&self, room: &str) -> Option<i64> {
        Some(self.shared.room(room)?.lock().room.state())
    }

    /// Who Agora lists in the room: `userUuid`s and names.
    pub fn users(&self, room: &str) -> Vec<inferred::User> {
        self.shared
            .room(room)
            .map(|room| room.lock().room.users())
            .unwrap_or_default()
    }

    /// Every request received so far (the most recent 10,000), oldest first.
    pub fn calls(&self) -> Vec<CallRecord> {
        self.shared.calls.calls()
    }

    /// How many calls were answered, by last path segment and status.
    pub fn tally(&self) -> BTreeMap<(String, u16), u64> {
        self.shared.calls.tally()
    }

    /// What the webhook sender did.
    pub fn deliveries(&self) -> DeliveryStats {
        self.shared.deliveries.stats()
    }

    /// Stops serving and sending; the port is free afterwards.
    pub async fn shutdown(mut self) {
        self.shared.shutdown.cancel();
        let server = &mut self.server;
        if tokio::time::timeout(SHUTDOWN_GRACE, &mut *server)
            .await
            .is_err()
        {
            warn!("simulator connections did not finish in time; aborting them");
            server.abort();
        }
        self.clock.abort();
    }
}

impl Drop for AgoraSimulator {
    fn drop(&mut self) {
        self.shared.shutdown.cancel();
        self.clock.abort();
        if let (true, Some(file)) = (self.by_port, &self.shared.options.token_file) {
            let _ = std::fs::remove_file(file);
        }
    }
}

super::platform_simulator!(AgoraSimulator);

/// State shared by the handlers, the clock, the player and the handle.
struct Shared {
    rooms: RwLock<HashMap<String, Arc<Room>>>,
    calls: CallLog,
    addr: SocketAddr,
    shutdown: CancellationToken,
    options: AgoraSimOptions,
    token: Mutex<Option<Secret>>,
    client: reqwest::Client,
    deliveries: Arc<DeliveryCounters>,
    next_seed: Mutex<u64>,
}

/// One simulated room and its sender.
struct Room {
    state: Mutex<RoomState>,
    outbox: mpsc::UnboundedSender<Outgoing>,
}

struct RoomState {
    room: AgoraRoom,
    callbacks: CallbackFaults,
    /// `fail_commands`: how many more, and with which status.
    failing: Option<(u32, u16)>,
    /// `delay_responses`: by how much, and how many more.
    delaying: Option<(Duration, u32)>,
}

impl Room {
    fn lock(&self) -> MutexGuard<'_, RoomState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Hands callbacks to the sender, deciding each one's fate. Called
    /// under the room's lock, so the sender gets them in sequence order.
    fn send(&self, state: &mut RoomState, callbacks: Vec<Callback>) {
        let urls = state.room.hook_urls().to_vec();
        for callback in callbacks {
            let Some(fate) = state.callbacks.fate_of_next() else {
                info!(room = %state.room.uuid(), sequence = ?callback.sequence, "fault: dropping a callback");
                continue;
            };
            if urls.is_empty() {
                continue;
            }
            let _ = self.outbox.send(Outgoing {
                callback,
                urls: urls.clone(),
                fate,
            });
        }
    }
}

impl Shared {
    fn room(&self, uuid: &str) -> Option<Arc<Room>> {
        self.rooms
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(uuid)
            .cloned()
    }

    fn token(&self) -> Option<Secret> {
        self.token
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn write_token(&self) -> anyhow::Result<()> {
        if let (Some(file), Some(token)) = (&self.options.token_file, self.token()) {
            std::fs::write(file, format!("{}\n", token.expose())).map_err(|err| {
                anyhow::anyhow!("cannot write the token file {}: {err}", file.display())
            })?;
        }
        Ok(())
    }

    fn seed(&self) -> u64 {
        let mut next = self
            .next_seed
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *next = next.wrapping_add(0x9e37_79b9_7f4a_7c15);
        *next
    }

    fn add_room(&self, spec: RoomSpec) {
        let hooks = WebhookConfig {
            urls: self
                .options
                .webhook_to
                .iter()
                .map(ToString::to_string)
                .collect(),
            cmds: inferred::SUBSCRIBED_CMDS
                .iter()
                .map(|cmd| serde_json::Value::from(*cmd))
                .collect(),
        };
        let room = self.insert_room(&spec.alias, &spec.alias, ScheduleWire::default(), hooks);
        let mut state = room.lock();
        for joiner in &spec.participants {
            match state.room.step(&Step::Join(joiner.clone()), unix_now()) {
                Ok(callbacks) => room.send(&mut state, callbacks),
                Err(err) => warn!("cannot seat {}: {err}", joiner.name),
            }
        }
    }

    fn insert_room(
        &self,
        uuid: &str,
        name: &str,
        schedule: ScheduleWire,
        hooks: WebhookConfig,
    ) -> Arc<Room> {
        let outbox = delivery::spawn(
            self.client.clone(),
            self.options.webhook_secret.clone(),
            self.deliveries.clone(),
            self.shutdown.clone(),
        );
        let room = Arc::new(Room {
            state: Mutex::new(RoomState {
                room: AgoraRoom::new(uuid, name, schedule, hooks, unix_now(), self.seed()),
                callbacks: CallbackFaults::default(),
                failing: None,
                delaying: None,
            }),
            outbox,
        });
        self.rooms
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(uuid.to_owned(), room.clone());
        room
    }

    fn step(&self, uuid: &str, step: &Step) -> Result<(), SimError> {
        let room = self
            .room(uuid)
            .ok_or_else(|| SimError::UnknownRoom(uuid.to_owned()))?;
        let mut state = room.lock();
        let callbacks = state.room.step(step, unix_now())?;
        room.send(&mut state, callbacks);
        Ok(())
    }

    fn fault(&self, uuid: &str, fault: Fault) -> Result<(), SimError> {
        let room = self
            .room(uuid)
            .ok_or_else(|| SimError::UnknownRoom(uuid.to_owned()))?;
        let mut state = room.lock();
        match fault {
            Fault::DropCallbacks { count } => state.callbacks.drop += count,
            Fault::DuplicateCallbacks { count } => state.callbacks.duplicate += count,
            Fault::ReorderCallbacks { count } => state.callbacks.reorder += count,
            Fault::BadSignatures { count } => state.callbacks.bad_signature += count,
            Fault::FailCommands { count, status } => state.failing = Some((count, status)),
            Fault::DelayResponses { delay, count } => state.delaying = Some((delay.into(), count)),
            Fault::ExpireTokens => {
                drop(state);
                self.renew_token();
            }
            other => info!("{}: does not apply to Agora; ignored", other.describe()),
        }
        Ok(())
    }

    /// Every token so far stops working; a new one is issued.
    fn renew_token(&self) {
        let mut token = self.token.lock().unwrap_or_else(PoisonError::into_inner);
        if token.is_none() {
            info!("fault: expire_tokens, but this simulator accepts any token; ignored");
            return;
        }
        *token = Some(random_token());
        drop(token);
        if let Err(err) = self.write_token() {
            warn!("{err}");
        }
        info!("fault: every token expired; a new one was issued");
    }

    fn record(&self, room: &str, method: &Method, path: String, status: u16) {
        self.calls.record(CallRecord {
            room: Some(room.to_owned()),
            method: method.to_string(),
            path,
            status,
            at: SystemTime::now(),
        });
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

/// Moves every room along its schedule; forgets rooms past their five days.
async fn run_clock(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shared.shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let now = unix_now();
        let rooms: Vec<(String, Arc<Room>)> = shared
            .rooms
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(uuid, room)| (uuid.clone(), room.clone()))
            .collect();
        for (uuid, room) in rooms {
            let mut state = room.lock();
            if state.room.expired(now) {
                drop(state);
                shared
                    .rooms
                    .write()
                    .unwrap_or_else(PoisonError::into_inner)
                    .remove(&uuid);
                continue;
            }
            let callbacks = state.room.tick(now);
            room.send(&mut state, callbacks);
        }
    }
}

fn router(shared: Arc<Shared>) -> Router {
    let rooms = format!(
        "/{{region}}/{}/apps/{{app}}/{}/rooms/{{room}}",
        wire::PRODUCT_SEGMENT,
        inferred::API_VERSION
    );
    Router::new()
        .route(&rooms, post(create_room).get(query_room))
        .route(
            &format!("{rooms}/{}/{{state}}", inferred::STATES_SEGMENT),
            put(set_state),
        )
        .route(
            &format!("{rooms}/{}", inferred::USERS_SEGMENT),
            get(list_users),
        )
        .route(
            &format!("{rooms}/{}", inferred::PROPERTIES_SEGMENT),
            put(set_properties),
        )
        .route(
            &format!(
                "{rooms}/{}/{{user}}/{}",
                inferred::USERS_SEGMENT,
                inferred::EXIT_SEGMENT
            ),
            post(exit_user),
        )
        .route(
            &format!("{rooms}/{}", inferred::STREAMS_SEGMENT),
            put(update_streams),
        )
        .fallback(not_found)
        .with_state(shared)
}

/// The path parameters every room call has.
#[derive(serde::Deserialize)]
struct RoomPath {
    region: String,
    app: String,
    room: String,
}

/// A reply with status, business code and message.
fn reply(status: u16, code: i64, msg: &str, data: Option<serde_json::Value>) -> Response {
    let body = Reply {
        code,
        msg: msg.to_owned(),
        ts: (unix_now() * 1000.0) as i64,
        data,
    };
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::to_string(&body).unwrap_or_default(),
    )
        .into_response()
}

fn success(data: Option<serde_json::Value>) -> Response {
    reply(200, inferred::code::OK, "Success", data)
}

async fn not_found() -> Response {
    reply(404, 404, "no such path", None)
}

/// What every room call checks first: the region, the App ID and the
/// token. The refusal, if any.
fn refusal(shared: &Shared, path: &RoomPath, headers: &HeaderMap) -> Option<Response> {
    if path.region != shared.options.region {
        return Some(reply(404, 404, "no such region", None));
    }
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix(AUTHORIZATION_PREFIX));
    let token_ok = match (shared.token(), given) {
        (_, None) => false,
        (None, Some(_)) => true,
        (Some(token), Some(given)) => token.expose() == given,
    };
    (path.app != shared.options.app_id || !token_ok).then(|| reply(401, 401, "Unauthorized", None))
}

/// Runs a room call: checks, applies the room's REST faults, records it.
async fn room_call(
    shared: &Shared,
    method: Method,
    path: &RoomPath,
    below: String,
    headers: &HeaderMap,
    command: bool,
    handle: impl FnOnce(&Room, &mut RoomState) -> Response,
) -> Response {
    let mut delay = None;
    let response = match refusal(shared, path, headers) {
        Some(refused) => refused,
        None => match shared.room(&path.room) {
            None => reply(404, inferred::code::ROOM_NOT_FOUND, "room not found", None),
            Some(room) => {
                let mut state = room.lock();
                if let Some((delay_by, count)) = state.delaying.as_mut() {
                    delay = Some(*delay_by);
                    *count -= 1;
                    if *count == 0 {
                        state.delaying = None;
                    }
                }
                match state.failing.as_mut().filter(|_| command) {
                    Some((count, status)) => {
                        let status = *status;
                        *count -= 1;
                        if *count == 0 {
                            state.failing = None;
                        }
                        failure(status)
                    }
                    None => handle(&room, &mut state),
                }
            }
        },
    };
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    shared.record(&path.room, &method, below, response.status().as_u16());
    response
}

/// A simulated failure: `Retry-After: 1` on a 429.
fn failure(status: u16) -> Response {
    let mut response = reply(status, i64::from(status), "simulated failure", None);
    if status == 429 {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
    }
    response
}

async fn create_room(
    State(shared): State<Arc<Shared>>,
    Path(path): Path<RoomPath>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(refused) = refusal(&shared, &path, &headers) {
        shared.record(
            &path.room,
            &Method::POST,
            String::new(),
            refused.status().as_u16(),
        );
        return refused;
    }
    let response = match serde_json::from_slice::<CreateRoom>(&body) {
        Err(err) => reply(400, 400, &format!("bad request body: {err}"), None),
        Ok(body) if body.room_template != wire::ROOM_TEMPLATE => reply(
            400,
            400,
            &format!("roomTemplate must be {}", wire::ROOM_TEMPLATE),
            None,
        ),
        Ok(body) if body.room_name.trim().is_empty() || body.room_name.chars().count() > 64 => {
            reply(400, 400, "roomName must have 1 to 64 characters", None)
        }
        Ok(_) if shared.room(&path.room).is_some() => reply(
            inferred::ROOM_EXISTS_STATUS,
            i64::from(inferred::ROOM_EXISTS_STATUS),
            "the room already exists",
            None,
        ),
        Ok(body) => {
            let properties = body.room_properties.clone().unwrap_or_default();
            shared.insert_room(
                &path.room,
                &body.room_name,
                properties.schedule.unwrap_or_default(),
                properties.webhook_config.unwrap_or_default(),
            );
            info!(room = %path.room, "room created");
            success(None)
        }
    };
    shared.record(
        &path.room,
        &Method::POST,
        String::new(),
        response.status().as_u16(),
    );
    response
}

async fn query_room(
    State(shared): State<Arc<Shared>>,
    Path(path): Path<RoomPath>,
    headers: HeaderMap,
) -> Response {
    room_call(
        &shared,
        Method::GET,
        &path,
        String::new(),
        &headers,
        false,
        |_, state| success(serde_json::to_value(state.room.info()).ok()),
    )
    .await
}

#[derive(serde::Deserialize)]
struct StatePath {
    region: String,
    app: String,
    room: String,
    state: String,
}

async fn set_state(
    State(shared): State<Arc<Shared>>,
    Path(path): Path<StatePath>,
    headers: HeaderMap,
) -> Response {
    let below = format!("{}/{}", inferred::STATES_SEGMENT, path.state);
    let wanted = path.state.parse::<i64>();
    let room_path = RoomPath {
        region: path.region,
        app: path.app,
        room: path.room,
    };
    room_call(
        &shared,
        Method::PUT,
        &room_path,
        below,
        &headers,
        true,
        |room, state| {
            let Ok(wanted) = wanted else {
                return reply(400, 400, "the state is not a number", None);
            };
            match state.room.set_state(wanted, unix_now()) {
                Ok(callbacks) => {
                    room.send(state, callbacks);
                    success(None)
                }
                Err(Conflict(400)) => reply(400, 400, "no such state", None),
                Err(Conflict(code)) => reply(409, code, "the room cannot move to that state", None),
            }
        },
    )
    .await
}

async fn set_properties(
    State(shared): State<Arc<Shared>>,
    Path(path): Path<RoomPath>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let below = inferred::PROPERTIES_SEGMENT.to_owned();
    let parsed = serde_json::from_slice::<inferred::PropertiesBody>(&body);
    room_call(
        &shared,
        Method::PUT,
        &path,
        below,
        &headers,
        true,
        |_, state| {
            let properties = match parsed {
                Ok(body) => body.properties,
                Err(err) => return reply(400, 400, &format!("bad request body: {err}"), None),
            };
            let Some(schedule) = properties.schedule else {
                return success(None);
            };
            match state.room.reschedule(schedule) {
                Ok(()) => success(None),
                Err(Conflict(code)) => reply(409, code, "the room has ended", None),
            }
        },
    )
    .await
}

async fn list_users(
    State(shared): State<Arc<Shared>>,
    Path(path): Path<RoomPath>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let query: HashMap<String, String> =
        url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    let count = query
        .get("count")
        .and_then(|count| count.parse::<usize>().ok())
        .unwrap_or(inferred::USERS_PAGE)
        .clamp(1, inferred::USERS_PAGE);
    let from = query
        .get("nextId")
        .and_then(|next| next.parse::<usize>().ok())
        .unwrap_or(0);
    room_call(
        &shared,
        Method::GET,
        &path,
        inferred::USERS_SEGMENT.to_owned(),
        &headers,
        false,
        |_, state| {
            let users = state.room.users();
            let total = users.len();
            let list: Vec<_> = users.into_iter().skip(from).take(count).collect();
            let end = from + list.len();
            let page = UserPage {
                total: total as i64,
                count: list.len() as i64,
                list,
                next_id: (end < total).then(|| end.to_string()),
            };
            success(serde_json::to_value(page).ok())
        },
    )
    .await
}

#[derive(serde::Deserialize)]
struct UserPath {
    region: String,
    app: String,
    room: String,
    user: String,
}

async fn exit_user(
    State(shared): State<Arc<Shared>>,
    Path(path): Path<UserPath>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let below = format!(
        "{}/{}/{}",
        inferred::USERS_SEGMENT,
        path.user,
        inferred::EXIT_SEGMENT
    );
    let exit = if body.is_empty() {
        Ok(ExitBody::default())
    } else {
        serde_json::from_slice::<ExitBody>(&body)
    };
    let room_path = RoomPath {
        region: path.region,
        app: path.app,
        room: path.room,
    };
    let user = path.user;
    room_call(
        &shared,
        Method::POST,
        &room_path,
        below,
        &headers,
        true,
        |room, state| {
            let exit = match exit {
                Ok(exit) => exit,
                Err(err) => return reply(400, 400, &format!("bad request body: {err}"), None),
            };
            match state.room.exit(&user, exit.dirty, unix_now()) {
                Ok(callbacks) => {
                    room.send(state, callbacks);
                    success(None)
                }
                Err(_) => reply(404, inferred::code::USER_NOT_FOUND, "user not found", None),
            }
        },
    )
    .await
}

async fn update_streams(
    State(shared): State<Arc<Shared>>,
    Path(path): Path<RoomPath>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let streams = serde_json::from_slice::<StreamsBody>(&body);
    room_call(
        &shared,
        Method::PUT,
        &path,
        inferred::STREAMS_SEGMENT.to_owned(),
        &headers,
        true,
        |_, state| {
            let streams = match streams {
                Ok(streams) => streams,
                Err(err) => return reply(400, 400, &format!("bad request body: {err}"), None),
            };
            match state.room.streams(&streams, unix_now()) {
                Ok(()) => success(None),
                Err(_) => reply(404, inferred::code::USER_NOT_FOUND, "no such stream", None),
            }
        },
    )
    .await
}
