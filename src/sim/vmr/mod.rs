//! The seed-001 platform's simulator: its REST API and event streams.
//!
//! [`Simulator`] serves any number of rooms, each a [`Conference`] behind a
//! `std::sync::Mutex` (never held across an `.await`). Everything a room
//! sends goes through [`RoomState::broadcast`]: each event is rendered once
//! into an SSE frame and handed to every open stream of that room through the
//! stream's own bounded channel, so the work per event depends on that room
//! alone. A stream that falls too far behind is closed, never silently
//! skipped; a subscriber's sync bracket is built under the same lock that
//! registers its channel, so nothing is lost or duplicated in between.
//!
//! Sessions expire lazily (each request first expires what is due) and from a
//! background sweeper, so an unrefreshed session's streams close and its
//! visible participant leaves soon after its token runs out. Tokens and PINs
//! never reach a log line.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::calls::{CallLog, CallRecord};
use super::conference::{Actor, Conference, SimError};
use super::player::{self, Drive};
use super::scenario::{Fault, Scenario};
use super::step::Step;
use super::{ConferenceSnapshot, RoomSpec};
use crate::model::{Command, Event, Secret};
use crate::platform::vmr::codec::{Encoder, participant_json};
use crate::platform::vmr::wire::{
    self, CHECK_JOIN_PATH, CheckJoinRequest, INVALID_TOKEN, NewSessionRequest, PIN_HEADER,
    ParseRequestError, Reply, ServiceStatus, TOKEN_HEADER,
};

/// How many frames a stream may fall behind before it is closed.
const STREAM_BACKLOG: usize = 4096;
/// How often an idle stream gets a keep-alive comment.
const KEEP_ALIVE_EVERY: Duration = Duration::from_secs(15);
/// How often the sweeper ends expired sessions.
const SWEEP_EVERY: Duration = Duration::from_millis(200);
/// How long [`Simulator::shutdown`] waits for connections to finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);
/// Tokens are this many url-safe characters.
const TOKEN_LENGTH: usize = 48;
/// The result of a 404 for an unknown room, as real servers word it.
const ROOM_NOT_FOUND: &str = "Neither conference nor gateway found";
/// The reason a kicked session's streams are given.
const KICKED: &str = "API initiated participant disconnect";

/// A running simulator: an HTTP server, a session sweeper, and a handle to
/// drive rooms and inspect what happened.
pub struct Simulator {
    shared: Arc<Shared>,
    server: JoinHandle<()>,
    sweeper: JoinHandle<()>,
}

impl Simulator {
    /// Binds `listen` (port 0 picks a free one) and starts serving `rooms`.
    /// Every start gives participants new uuids, as a restarted platform would.
    pub async fn start(listen: SocketAddr, rooms: Vec<RoomSpec>) -> anyhow::Result<Simulator> {
        Simulator::start_with(listen, rooms, None).await
    }

    /// Like [`Simulator::start`], but each room's uuids come from `seed` and
    /// its alias: two simulators started with the same seed and rooms list
    /// the same participants under the same uuids (a platform that came back
    /// with its rooms intact).
    pub async fn start_seeded(
        listen: SocketAddr,
        rooms: Vec<RoomSpec>,
        seed: u64,
    ) -> anyhow::Result<Simulator> {
        Simulator::start_with(listen, rooms, Some(seed)).await
    }

    async fn start_with(
        listen: SocketAddr,
        rooms: Vec<RoomSpec>,
        seed: Option<u64>,
    ) -> anyhow::Result<Simulator> {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|err| anyhow::anyhow!("cannot listen on {listen}: {err}"))?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            rooms: RwLock::new(HashMap::new()),
            calls: CallLog::default(),
            addr,
            shutdown: CancellationToken::new(),
            seed,
        });
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
        let sweeper = tokio::spawn(sweep(shared.clone()));
        Ok(Simulator {
            shared,
            server,
            sweeper,
        })
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.shared.addr
    }

    /// `http://<addr>/`, the base every API path is joined to.
    pub fn base_url(&self) -> url::Url {
        url::Url::parse(&format!("http://{}/", self.shared.addr))
            .expect("a socket address always makes a valid URL")
    }

    /// Adds a room, replacing (and ending every session of) one with the
    /// same alias.
    pub fn add_room(&self, spec: RoomSpec) {
        self.shared.add_room(spec);
    }

    /// Applies a step to a room and sends its events.
    pub fn step(&self, room: &str, step: &Step) -> Result<(), SimError> {
        self.shared.step(room, step)
    }

    /// Injects a fault into a room.
    pub fn fault(&self, room: &str, fault: Fault) -> Result<(), SimError> {
        self.shared.fault(room, fault)
    }

    /// Plays a scenario's timeline in real time, adding its room first if
    /// needed. Each action is logged; one that fails is logged and skipped.
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
            participants: state.conference.participants().cloned().collect(),
            flags: state.conference.flags(),
        })
    }

    /// Every request received so far (the most recent 10,000), oldest first.
    pub fn calls(&self) -> Vec<CallRecord> {
        self.shared.calls.calls()
    }

    /// How many calls were answered, by call name (the last path segment,
    /// e.g. `refresh_session` or `mute`) and HTTP status, since the start.
    /// Unlike [`Simulator::calls`] this is never trimmed.
    pub fn tally(&self) -> BTreeMap<(String, u16), u64> {
        self.shared.calls.tally()
    }

    /// How many sessions of the room are alive.
    pub fn active_sessions(&self, room: &str) -> usize {
        self.shared.room(room).map_or(0, |room| {
            let mut state = room.lock();
            state.expire(Instant::now());
            state.sessions.len()
        })
    }

    /// How many event streams of the room are open.
    pub fn open_streams(&self, room: &str) -> usize {
        self.shared.room(room).map_or(0, |room| {
            let state = room.lock();
            state
                .streams
                .iter()
                .filter(|stream| !stream.frames.is_closed())
                .count()
        })
    }

    /// Stops serving: closes the listener and every stream and waits
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
        self.sweeper.abort();
    }
}

super::platform_simulator!(Simulator);

impl Drop for Simulator {
    fn drop(&mut self) {
        self.shared.close();
        self.sweeper.abort();
    }
}

/// State shared by the handlers, the sweeper, the player and the handle.
struct Shared {
    rooms: RwLock<HashMap<String, Arc<Room>>>,
    calls: CallLog,
    addr: SocketAddr,
    shutdown: CancellationToken,
    /// Where rooms' uuids come from; random when `None`.
    seed: Option<u64>,
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

    fn add_room(&self, spec: RoomSpec) {
        let room = Arc::new(Room {
            alias: spec.alias.clone(),
            state: Mutex::new(RoomState::new(&spec, self.seed)),
        });
        let replaced = self
            .rooms
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(spec.alias, room);
        if let Some(old) = replaced {
            old.lock().end_all_sessions();
        }
    }

    fn step(&self, alias: &str, step: &Step) -> Result<(), SimError> {
        let room = self
            .room(alias)
            .ok_or_else(|| SimError::UnknownRoom(alias.to_owned()))?;
        let mut state = room.lock();
        let events = state.conference.apply_step(step, unix_now())?;
        state.broadcast(&events);
        state.end_removed_sessions();
        Ok(())
    }

    fn fault(&self, alias: &str, fault: Fault) -> Result<(), SimError> {
        let room = self
            .room(alias)
            .ok_or_else(|| SimError::UnknownRoom(alias.to_owned()))?;
        let mut state = room.lock();
        match fault {
            Fault::DropStreams => state.streams.clear(),
            Fault::ExpireTokens => state.end_all_sessions(),
            Fault::FailCommands { count, status } => state.failing = Some((count, status)),
            Fault::DelayResponses { delay, count } => state.delaying = Some((delay.into(), count)),
            other => info!(
                "{}: does not apply to the vmr platform; ignored",
                other.describe()
            ),
        }
        Ok(())
    }

    /// Stops accepting streams and closes every open one.
    fn close(&self) {
        self.shutdown.cancel();
        for room in self.all_rooms() {
            room.lock().streams.clear();
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

/// One simulated room.
struct Room {
    alias: String,
    state: Mutex<RoomState>,
}

impl Room {
    fn lock(&self) -> MutexGuard<'_, RoomState> {
        lock(&self.state)
    }
}

/// Everything about a room that changes: the conference, its sessions,
/// tokens and streams, and pending faults.
struct RoomState {
    conference: Conference,
    pin: Option<Secret>,
    token_expiry: Duration,
    sessions: HashMap<u64, Session>,
    tokens: HashMap<String, Grant>,
    streams: Vec<Stream>,
    next_session: u64,
    next_event_id: u64,
    /// Writes events as frames, remembering who the room has heard of.
    encoder: Encoder,
    /// `fail_commands`: how many more, and with which status.
    failing: Option<(u32, u16)>,
    /// `delay_responses`: by how much, and how many more.
    delaying: Option<(Duration, u32)>,
}

/// An API session: its participant and when its newest token expires.
struct Session {
    participant_uuid: String,
    display_name: String,
    expires_at: Instant,
}

/// What a token grants: a session, until a moment.
struct Grant {
    session: u64,
    expires_at: Instant,
}

/// One open event stream.
struct Stream {
    session: u64,
    frames: mpsc::Sender<Bytes>,
}

impl RoomState {
    fn new(spec: &RoomSpec, seed: Option<u64>) -> Self {
        let seed = seed.map_or_else(
            || fastrand::u64(..),
            |seed| seed ^ super::conference::fnv1a(spec.alias.as_bytes()),
        );
        let mut conference = Conference::with_seed(&spec.alias, seed);
        let now = unix_now();
        for joiner in &spec.participants {
            conference
                .apply_step(&Step::Join(joiner.clone()), now)
                .expect("joining never names an absent participant");
        }
        RoomState {
            conference,
            pin: spec.pin.clone(),
            token_expiry: spec.token_expiry,
            sessions: HashMap::new(),
            tokens: HashMap::new(),
            streams: Vec::new(),
            next_session: 0,
            next_event_id: 0,
            encoder: Encoder::default(),
            failing: None,
            delaying: None,
        }
    }

    /// Sends events to every stream of the room, closing streams that are
    /// gone or too far behind.
    fn broadcast(&mut self, events: &[Event]) {
        let frames: Vec<Bytes> = events.iter().flat_map(|event| self.frames(event)).collect();
        for frame in frames {
            if self.streams.is_empty() {
                continue;
            }
            self.streams
                .retain(|stream| match stream.frames.try_send(frame.clone()) {
                    Ok(()) => true,
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        warn!(
                            room = %self.conference.alias(),
                            "an event stream fell {STREAM_BACKLOG} events behind; closing it"
                        );
                        false
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => false,
                });
        }
    }

    /// The server-sent frames for an event, each with its own id.
    fn frames(&mut self, event: &Event) -> Vec<Bytes> {
        self.encoder
            .encode(event)
            .into_iter()
            .map(|(name, data)| {
                self.next_event_id += 1;
                Bytes::from(format!(
                    "event: {name}\nid: {}\ndata: {data}\n\n",
                    self.next_event_id
                ))
            })
            .collect()
    }

    /// Opens a stream for a session: its sync bracket, then live frames.
    fn subscribe(&mut self, session: u64) -> (Vec<Bytes>, mpsc::Receiver<Bytes>) {
        let roster = self.conference.roster();
        let frames = self.frames(&roster);
        let (sender, receiver) = mpsc::channel(STREAM_BACKLOG);
        self.streams.push(Stream {
            session,
            frames: sender,
        });
        (frames, receiver)
    }

    fn start_session(&mut self, name: &str, hidden: bool) -> (String, String) {
        let (uuid, events) = self
            .conference
            .add_session_participant(name, hidden, unix_now());
        self.broadcast(&events);
        self.next_session += 1;
        let id = self.next_session;
        let token = new_token();
        let expires_at = Instant::now() + self.token_expiry;
        self.sessions.insert(
            id,
            Session {
                participant_uuid: uuid.clone(),
                display_name: name.to_owned(),
                expires_at,
            },
        );
        self.tokens.insert(
            token.clone(),
            Grant {
                session: id,
                expires_at,
            },
        );
        (token, uuid)
    }

    /// A new token for a session; older tokens stay valid until they expire.
    fn refresh(&mut self, session: u64) -> String {
        let token = new_token();
        let expires_at = Instant::now() + self.token_expiry;
        if let Some(session) = self.sessions.get_mut(&session) {
            session.expires_at = expires_at;
        }
        self.tokens.insert(
            token.clone(),
            Grant {
                session,
                expires_at,
            },
        );
        token
    }

    /// The session a token belongs to, if the token is valid now.
    fn session_for(&self, token: Option<&str>) -> Option<u64> {
        let grant = self.tokens.get(token?)?;
        (grant.expires_at > Instant::now() && self.sessions.contains_key(&grant.session))
            .then_some(grant.session)
    }

    fn actor(&self, session: u64) -> Actor {
        self.sessions
            .get(&session)
            .map(|s| Actor {
                uuid: s.participant_uuid.clone(),
                name: s.display_name.clone(),
            })
            .unwrap_or_else(|| Actor {
                uuid: String::new(),
                name: String::new(),
            })
    }

    /// Ends a session: its tokens die, its streams close (after `farewell`,
    /// if given) and its participant leaves.
    fn end_session(&mut self, id: u64, farewell: Option<&Event>) {
        let Some(session) = self.sessions.remove(&id) else {
            return;
        };
        self.tokens.retain(|_, grant| grant.session != id);
        let goodbye = farewell.map(|event| self.frames(event));
        self.streams.retain(|stream| {
            if stream.session != id {
                return true;
            }
            for frame in goodbye.iter().flatten() {
                let _ = stream.frames.try_send(frame.clone());
            }
            false
        });
        let events = self
            .conference
            .remove_participant(&session.participant_uuid);
        self.broadcast(&events);
    }

    fn end_all_sessions(&mut self) {
        let ids: Vec<u64> = self.sessions.keys().copied().collect();
        for id in ids {
            self.end_session(id, None);
        }
    }

    /// Ends sessions whose participant a command or step removed (kicked,
    /// transferred, or the whole conference disconnected).
    fn end_removed_sessions(&mut self) {
        let removed: Vec<u64> = self
            .sessions
            .iter()
            .filter(|(_, session)| !self.conference.contains(&session.participant_uuid))
            .map(|(id, _)| *id)
            .collect();
        let farewell = Event::Disconnected {
            reason: KICKED.to_owned(),
        };
        for id in removed {
            info!(room = %self.conference.alias(), "session ended: its participant was disconnected");
            self.end_session(id, Some(&farewell));
        }
    }

    /// Forgets expired tokens and ends sessions whose newest token expired.
    fn expire(&mut self, now: Instant) {
        self.tokens.retain(|_, grant| grant.expires_at > now);
        let expired: Vec<u64> = self
            .sessions
            .iter()
            .filter(|(_, session)| session.expires_at <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            info!(room = %self.conference.alias(), "session expired");
            self.end_session(id, None);
        }
        self.streams.retain(|stream| !stream.frames.is_closed());
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

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/api/services/{room}/new_session", post(new_session))
        .route(
            "/api/services/{room}/refresh_session",
            post(refresh_session),
        )
        .route("/api/services/{room}/end_session", post(end_session))
        .route("/api/services/{room}/events", get(events))
        .route("/api/services/{room}/service_status", get(service_status))
        .route("/api/services/{room}/participants", get(participants))
        .route("/api/services/{room}/{command}", post(conference_command))
        .route(
            "/api/services/{room}/participants/{uuid}/{command}",
            post(participant_command),
        )
        .route(&format!("/{CHECK_JOIN_PATH}"), post(check_join))
        .fallback(|| async { reply(StatusCode::NOT_FOUND, Reply::failed("no such API call")) })
        .method_not_allowed_fallback(|| async {
            reply(
                StatusCode::METHOD_NOT_ALLOWED,
                Reply::failed("wrong HTTP method for this call"),
            )
        })
        .layer(middleware::from_fn_with_state(shared.clone(), observe))
        .with_state(shared)
}

/// Records every call and holds back responses a `delay_responses` fault asked for.
async fn observe(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let arrived = SystemTime::now();
    let method = request.method().to_string();
    let full_path = request.uri().path().to_owned();
    let (room, path) = match full_path.strip_prefix("/api/services/") {
        Some(rest) => {
            let (alias, below) = rest.split_once('/').unwrap_or((rest, ""));
            (Some(percent_decode(alias)), below.to_owned())
        }
        None => (None, full_path),
    };
    let delay = match &room {
        Some(alias) if path != "events" => shared.room(alias).and_then(|r| r.lock().take_delay()),
        _ => None,
    };
    let response = next.run(request).await;
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    shared.calls.record(CallRecord {
        room,
        method,
        path,
        status: response.status().as_u16(),
        at: arrived,
    });
    response
}

async fn new_session(
    State(shared): State<Arc<Shared>>,
    Path(alias): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(room) = shared.room(&alias) else {
        return room_not_found();
    };
    let request = match json_body(&body).and_then(|body| {
        let body = if body.is_null() { json!({}) } else { body };
        serde_json::from_value::<NewSessionRequest>(body).map_err(|err| err.to_string())
    }) {
        Ok(request) => request,
        Err(reason) => return bad_request(reason),
    };
    let pin = header_text(&headers, PIN_HEADER);
    let mut state = room.lock();
    state.expire(Instant::now());
    if let Some(required) = &state.pin
        && pin != Some(required.expose())
    {
        info!(room = %alias, "pin rejected");
        return reply(StatusCode::FORBIDDEN, Reply::success("Invalid PIN"));
    }
    let hidden = !matches!(
        request.hideme.trim().to_ascii_lowercase().as_str(),
        "no" | "false" | "off" | "0"
    );
    let name = match request.display_name.trim() {
        "" => "usher",
        name => name,
    };
    let (token, uuid) = state.start_session(name, hidden);
    let expiry = state.token_expiry;
    drop(state);
    info!(
        room = %alias,
        "session started for {name}{}",
        if hidden { " (hidden)" } else { " (in the roster)" }
    );
    reply(
        StatusCode::OK,
        Reply::success(json!({
            "token": token,
            "expires": seconds_text(expiry),
            "participant_uuid": uuid,
            "display_name": name,
            "stun": [{ "url": "stun:stun.sim.usher.test" }],
            "analytics_enabled": false,
            "version": { "pseudo_version": "25010.0.0", "version_id": "12" },
            "role": "HOST",
            "service_type": "conference",
            "chat_enabled": true,
            "current_service_type": "conference",
        })),
    )
}

async fn refresh_session(
    State(shared): State<Arc<Shared>>,
    Path(alias): Path<String>,
    headers: HeaderMap,
) -> Response {
    with_session(
        &shared,
        &alias,
        header_text(&headers, TOKEN_HEADER),
        |state, session| {
            let token = state.refresh(session);
            info!(room = %alias, "session refreshed");
            let expires = seconds_text(state.token_expiry);
            reply(
                StatusCode::OK,
                Reply::success(json!({ "token": token, "expires": expires })),
            )
        },
    )
}

async fn end_session(
    State(shared): State<Arc<Shared>>,
    Path(alias): Path<String>,
    headers: HeaderMap,
) -> Response {
    with_session(
        &shared,
        &alias,
        header_text(&headers, TOKEN_HEADER),
        |state, session| {
            state.end_session(session, None);
            info!(room = %alias, "session ended by the client");
            reply(StatusCode::OK, Reply::success(true))
        },
    )
}

async fn service_status(
    State(shared): State<Arc<Shared>>,
    Path(alias): Path<String>,
    headers: HeaderMap,
) -> Response {
    with_session(
        &shared,
        &alias,
        header_text(&headers, TOKEN_HEADER),
        |state, _| {
            let flags = state.conference.flags();
            let status = ServiceStatus {
                guests_muted: flags.guests_muted,
                locked: flags.locked,
                started: Some(flags.started),
            };
            reply(StatusCode::OK, Reply::success(json!(status)))
        },
    )
}

async fn participants(
    State(shared): State<Arc<Shared>>,
    Path(alias): Path<String>,
    headers: HeaderMap,
) -> Response {
    with_session(
        &shared,
        &alias,
        header_text(&headers, TOKEN_HEADER),
        |state, _| {
            let list: Vec<Value> = state
                .conference
                .participants()
                .map(participant_json)
                .collect();
            reply(StatusCode::OK, Reply::success(list))
        },
    )
}

async fn events(
    State(shared): State<Arc<Shared>>,
    Path(alias): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let query_token = query.as_deref().and_then(|query| {
        url::form_urlencoded::parse(query.as_bytes())
            .find(|(key, _)| key == TOKEN_HEADER)
            .map(|(_, value)| value.into_owned())
    });
    let token = header_text(&headers, TOKEN_HEADER).or(query_token.as_deref());
    let shutting_down = shared.shutdown.clone();
    with_session(&shared, &alias, token, |state, session| {
        if shutting_down.is_cancelled() {
            return reply(
                StatusCode::SERVICE_UNAVAILABLE,
                Reply::failed("the simulator is shutting down"),
            );
        }
        let (sync, frames) = state.subscribe(session);
        (
            [
                (header::CONTENT_TYPE, "text/event-stream"),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            event_stream(sync, frames),
        )
            .into_response()
    })
}

async fn conference_command(
    State(shared): State<Arc<Shared>>,
    Path((alias, command)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    run_command(&shared, &alias, &command, &headers, &body)
}

async fn participant_command(
    State(shared): State<Arc<Shared>>,
    Path((alias, uuid, command)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = format!("participants/{uuid}/{command}");
    run_command(&shared, &alias, &path, &headers, &body)
}

/// Authenticates, applies a fault if one is pending, parses and applies a
/// command, and sends its events.
fn run_command(
    shared: &Shared,
    alias: &str,
    path: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    with_session(
        shared,
        alias,
        header_text(headers, TOKEN_HEADER),
        |state, session| {
            if let Some(status) = state.take_failure() {
                info!(room = %alias, "← {path}: failing it with HTTP {status} (simulated fault)");
                let status =
                    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                return reply(status, Reply::failed("simulated failure"));
            }
            let body = match json_body(body) {
                Ok(body) => body,
                Err(reason) => return bad_request(reason),
            };
            let mut command = match wire::parse_request(path, &body) {
                Ok(command) => command,
                Err(err @ ParseRequestError::UnknownCommand(_)) => {
                    return reply(StatusCode::NOT_FOUND, Reply::failed(err.to_string()));
                }
                Err(err @ ParseRequestError::BadBody { .. }) => {
                    return bad_request(err.to_string());
                }
            };
            if let Command::Participant { target, .. } = &mut command {
                target.name = state
                    .conference
                    .participant(&target.uuid)
                    .map_or_else(|| target.uuid.clone(), |p| p.display_name.clone());
            }
            info!(room = %alias, "← {command}");
            let actor = state.actor(session);
            match state.conference.apply_command(&actor, &command, unix_now()) {
                Ok(outcome) => {
                    state.broadcast(&outcome.events);
                    state.end_removed_sessions();
                    reply(StatusCode::OK, Reply::success(outcome.result))
                }
                Err(SimError::UnknownParticipant(_)) => reply(
                    StatusCode::NOT_FOUND,
                    Reply::failed("Participant not found"),
                ),
                Err(SimError::UnknownRoom(_)) => room_not_found(),
                Err(SimError::Rejected(reason)) => reply(StatusCode::OK, Reply::failed(reason)),
            }
        },
    )
}

/// Runs `handle` for a valid token of an existing room, under the room's
/// lock, after expiring what is due; otherwise answers 404 or 403.
fn with_session(
    shared: &Shared,
    alias: &str,
    token: Option<&str>,
    handle: impl FnOnce(&mut RoomState, u64) -> Response,
) -> Response {
    let Some(room) = shared.room(alias) else {
        return room_not_found();
    };
    let mut state = room.lock();
    state.expire(Instant::now());
    match state.session_for(token) {
        Some(session) => handle(&mut state, session),
        None => reply(StatusCode::FORBIDDEN, Reply::success(INVALID_TOKEN)),
    }
}

async fn check_join(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let stamp = timestamp(SystemTime::now());
    let request: CheckJoinRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(err) => {
            let message =
                format!("the body must be JSON with joinAccount and participantName: {err}");
            return (
                StatusCode::BAD_REQUEST,
                axum::Json(json!({ "code": "400", "timeStamp": stamp, "msg": message })),
            )
                .into_response();
        }
    };
    let answer = |code: &str, message: &str| {
        axum::Json(json!({ "code": code, "timeStamp": stamp, "msg": message })).into_response()
    };
    let Some(room) = shared.room(request.join_account.trim()) else {
        return answer("404", "Conference not found");
    };
    let pin = room.lock().pin.clone();
    let given = request.join_pwd.as_ref().map(Secret::expose).unwrap_or("");
    if let Some(pin) = &pin
        && pin.expose() != given
    {
        info!(room = %room.alias, "checkJoin: password rejected");
        return answer("403", "Wrong password");
    }
    let local_part = room.alias.split('@').next().unwrap_or(&room.alias);
    // The node is this server, as the client reached it.
    let mcu_host = header_text(&headers, header::HOST.as_str())
        .map_or_else(|| shared.addr.to_string(), str::to_owned);
    axum::Json(json!({
        "code": "200",
        "timeStamp": stamp,
        "results": {
            "isDot": false,
            "sipkey": local_part,
            "alias": room.alias,
            "password": given,
            "participantName": request.participant_name,
            "roleType": "host",
            "mcuHost": mcu_host,
            "companyId": 1,
            "isRecord": false,
            "isLive": false,
            "conferenceName": local_part,
            "allowGuest": "yes",
        }
    }))
    .into_response()
}

/// A stream body: the sync frames, then live frames, with keep-alive
/// comments while idle. It ends when the room drops its sender.
fn event_stream(sync: Vec<Bytes>, frames: mpsc::Receiver<Bytes>) -> Body {
    struct Feed {
        sync: std::vec::IntoIter<Bytes>,
        frames: mpsc::Receiver<Bytes>,
        keep_alive: tokio::time::Interval,
    }
    let mut keep_alive = tokio::time::interval_at(
        tokio::time::Instant::now() + KEEP_ALIVE_EVERY,
        KEEP_ALIVE_EVERY,
    );
    keep_alive.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let feed = Feed {
        sync: sync.into_iter(),
        frames,
        keep_alive,
    };
    let stream = futures_util::stream::unfold(feed, |mut feed| async move {
        if let Some(frame) = feed.sync.next() {
            return Some((Ok::<_, Infallible>(frame), feed));
        }
        tokio::select! {
            frame = feed.frames.recv() => frame.map(|frame| (Ok(frame), feed)),
            _ = feed.keep_alive.tick() => Some((Ok(Bytes::from_static(b": keep-alive\n\n")), feed)),
        }
    });
    Body::from_stream(stream)
}

/// Ends expired sessions of every room, every [`SWEEP_EVERY`].
async fn sweep(shared: Arc<Shared>) {
    let mut ticks = tokio::time::interval(SWEEP_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shared.shutdown.cancelled() => return,
            _ = ticks.tick() => {
                let now = Instant::now();
                for room in shared.all_rooms() {
                    room.lock().expire(now);
                }
            }
        }
    }
}

fn reply(status: StatusCode, body: Reply) -> Response {
    (status, axum::Json(body)).into_response()
}

fn room_not_found() -> Response {
    reply(StatusCode::NOT_FOUND, Reply::success(ROOM_NOT_FOUND))
}

fn bad_request(reason: String) -> Response {
    reply(StatusCode::BAD_REQUEST, Reply::failed(reason))
}

/// Reads a JSON body; an empty body is `null`.
fn json_body(body: &[u8]) -> Result<Value, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    serde_json::from_slice(body).map_err(|err| format!("the body is not valid JSON: {err}"))
}

fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

fn new_token() -> String {
    const URL_SAFE: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    (0..TOKEN_LENGTH)
        .map(|_| char::from(URL_SAFE[fastrand::usize(..URL_SAFE.len())]))
        .collect()
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |since| since.as_secs_f64())
}

/// Seconds as text, the way real servers answer `new_session` and
/// `refresh_session`: `"120"`.
fn seconds_text(duration: Duration) -> String {
    duration.as_secs_f64().to_string()
}

/// `2017-05-24 15:41:30` (UTC), as `checkJoin` stamps its replies.
fn timestamp(time: SystemTime) -> String {
    let seconds = time
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |since| since.as_secs() as f64);
    crate::clock::format_timestamp(seconds)[..19].replacen('T', " ", 1)
}

/// Decodes `%XX` escapes in a path segment; invalid escapes stay as they are.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escape = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escape {
            Some(byte) => {
                decoded.push(byte);
                i += 3;
            }
            None => {
                decoded.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::step::Joiner;

    #[test]
    fn timestamps_look_like_the_seed() {
        let at = UNIX_EPOCH + Duration::from_secs(1_495_640_490);
        assert_eq!(timestamp(at), "2017-05-24 15:41:30");
        assert_eq!(timestamp(UNIX_EPOCH), "1970-01-01 00:00:00");
        let leap = UNIX_EPOCH + Duration::from_secs(951_825_600);
        assert_eq!(timestamp(leap), "2000-02-29 12:00:00");
    }

    #[test]
    fn percent_decoding_handles_odd_input() {
        assert_eq!(
            percent_decode("lecture%40usher.example"),
            "lecture@usher.example"
        );
        assert_eq!(percent_decode("a%2"), "a%2");
        assert_eq!(percent_decode("a%zz%41"), "a%zzA");
        assert_eq!(percent_decode("%E2%9C%93"), "✓");
    }

    #[test]
    fn tokens_are_long_and_url_safe() {
        let token = new_token();
        assert_eq!(token.len(), TOKEN_LENGTH);
        assert!(
            token
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        assert_ne!(token, new_token());
    }

    #[test]
    fn expiry_is_text() {
        assert_eq!(seconds_text(Duration::from_secs(120)), "120");
        assert_eq!(seconds_text(Duration::from_millis(1500)), "1.5");
    }

    fn room_with(backlog_streams: usize) -> (RoomState, Vec<mpsc::Receiver<Bytes>>) {
        let mut spec = RoomSpec::new("r");
        spec.participants = vec![Joiner::host("Ada")];
        let mut state = RoomState::new(&spec, None);
        let (_, uuid) = state.start_session("usher", true);
        assert!(state.conference.contains(&uuid));
        let receivers = (0..backlog_streams).map(|_| state.subscribe(1).1).collect();
        (state, receivers)
    }

    #[test]
    fn a_stream_that_falls_behind_is_closed_not_skipped() {
        let (mut state, mut receivers) = room_with(1);
        let events = vec![Event::PresentationStop; STREAM_BACKLOG + 1];
        state.broadcast(&events);
        assert!(state.streams.is_empty());
        let receiver = &mut receivers[0];
        let mut ids = Vec::new();
        while let Ok(frame) = receiver.try_recv() {
            ids.push(frame);
        }
        assert_eq!(ids.len(), STREAM_BACKLOG);
        assert!(receiver.is_closed());
    }

    #[test]
    fn faults_count_down() {
        let (mut state, _) = room_with(0);
        state.failing = Some((2, 502));
        assert_eq!(state.take_failure(), Some(502));
        assert_eq!(state.take_failure(), Some(502));
        assert_eq!(state.take_failure(), None);
        state.delaying = Some((Duration::from_millis(5), 1));
        assert_eq!(state.take_delay(), Some(Duration::from_millis(5)));
        assert_eq!(state.take_delay(), None);
    }

    #[test]
    fn sessions_expire_and_take_their_streams_along() {
        let (mut state, mut receivers) = room_with(1);
        assert_eq!(state.sessions.len(), 1);
        state.expire(Instant::now() + Duration::from_secs(121));
        assert!(state.sessions.is_empty() && state.tokens.is_empty());
        assert!(state.streams.is_empty());
        while receivers[0].try_recv().is_ok() {}
        assert!(receivers[0].is_closed());
    }
}
