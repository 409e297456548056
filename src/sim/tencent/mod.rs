//! The Tencent room engine's simulator: its admin REST API, and its room
//! callbacks POSTed to usher.
//!
//! - [`room`]: one room, the shared conference plus what Tencent keeps, and
//!   the callbacks each change sends (with the vendor samples' quirks);
//! - [`sender`]: callbacks out, in order, signed, with their faults.
//!
//! [`TencentSimulator`] serves `POST /v4/<service>/<command>` as the
//! platform does (2.6 of the reference):
//! - the admin query string is checked: `sdkappid`, `identifier` (the app
//!   admin), `usersig` (TLS-Sig v2 with the app's key: expired → 70001,
//!   bad → 70009, another account's → 70013, another app's → 70014),
//!   `random`, `contenttype`;
//! - every answer is HTTP 200 with `ActionStatus`, `ErrorCode`, `ErrorInfo`
//!   and `RequestId` (and `Response` when there is one), an empty or
//!   non-JSON body included; other methods get 405;
//! - each API takes 200 calls a second at most; more are answered 60007;
//! - rooms go `NotStarted` → `Running` → destroyed (empty, and 100004 to
//!   every call afterwards);
//!   members are Owner/Admin/Member; seats are optional with per-seat
//!   locks; bans expire; the member list pages by cursor.
//!
//! Faults (per room): `fail_commands` (the next command calls answer an
//! HTTP status, e.g. 503), `rate_limit` (the next calls answer 60007),
//! `delay_responses`, `expire_tokens` (every UserSig seen so far is refused
//! as expired: usher must issue a new one), and the callback faults of
//! [`sender`]. `drop_streams` does not apply (there are no streams).

pub mod room;
pub mod sender;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use self::room::{Outgoing, Refusal, RoomSetup, TencentRoom, room_not_found};
use self::sender::{Delivery, Plan, SentCallback, Signing};
use super::calls::{CallLog, CallRecord};
use super::conference::SimError;
use super::player::{self, Drive};
use super::scenario::{Fault, Scenario};
use super::step::Step;
use super::{ConferenceSnapshot, RoomSpec};
use crate::clock::unix_now;
use crate::model::{Role, Secret};
use crate::platform::tencent::auth::{self, UserSigError};
use crate::platform::tencent::inferred::sim_codes;
use crate::platform::tencent::rest::{RATE_LIMITED, SIG_EXPIRED, SIG_INVALID};
use crate::platform::tencent::wire::{self, APIS, Api};

/// Calls per second each API answers before it refuses with 60007.
pub const CALLS_PER_SECOND: u32 = 200;
/// How long [`TencentSimulator::shutdown`] waits for connections to finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);
/// How many sent callbacks the log remembers.
const SENT_KEPT: usize = 20_000;

/// Who the simulated application is.
#[derive(Clone)]
pub struct TencentSimOptions {
    /// The SDKAppID.
    pub sdk_app_id: u64,
    /// The app admin account.
    pub admin: String,
    /// The app's secret key (UserSigs must be signed with it).
    pub secret_key: Secret,
    /// The callback token; callbacks are signed when it is set.
    pub callback_token: Option<Secret>,
    /// Where callbacks go; none are sent without it.
    pub webhook_to: Option<url::Url>,
    /// Where rooms' uuids come from; random when `None`.
    pub seed: Option<u64>,
    /// Keep callbacks (for [`TencentSimulator::take_collected`]) instead of
    /// sending them.
    pub collect_callbacks: bool,
}

impl Default for TencentSimOptions {
    /// The application `usher simulate --platform tencent` serves: SDKAppID
    /// 1400000000, admin `administrator`, the key [`DEMO_SECRET_KEY`], no
    /// callback token.
    fn default() -> Self {
        TencentSimOptions {
            sdk_app_id: 1_400_000_000,
            admin: "administrator".to_owned(),
            secret_key: Secret::new(DEMO_SECRET_KEY),
            callback_token: None,
            webhook_to: None,
            seed: None,
            collect_callbacks: false,
        }
    }
}

/// The simulator's default secret key: not a secret, only the key the
/// simulator and a config pointed at it share.
pub const DEMO_SECRET_KEY: &str = "usher-simulator-key";

/// One REST call the simulator answered, with its `ErrorCode`.
#[derive(Debug, Clone, PartialEq)]
pub struct RestCall {
    /// `<service>/<command>` without `v4/`.
    pub api: String,
    /// The `RoomId` it named, if any.
    pub room: Option<String>,
    /// The HTTP status.
    pub status: u16,
    /// `ErrorCode` (0 on success; none for an HTTP failure).
    pub code: Option<i64>,
    /// The body it was sent.
    pub body: Value,
}

/// A running simulator: the REST server, the callback sender, and a handle
/// to drive rooms and inspect what happened.
pub struct TencentSimulator {
    shared: Arc<Shared>,
    server: JoinHandle<()>,
    sender: JoinHandle<()>,
}

impl TencentSimulator {
    /// Binds `listen` (port 0 picks a free one) and starts serving `rooms`
    /// (each as [`TencentSimulator::add_room`] makes it).
    pub async fn start(
        listen: SocketAddr,
        rooms: Vec<RoomSpec>,
        options: TencentSimOptions,
    ) -> anyhow::Result<TencentSimulator> {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|err| anyhow::anyhow!("cannot listen on {listen}: {err}"))?;
        let addr = listener.local_addr()?;
        let (outbox, queue) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            webhook: RwLock::new(options.webhook_to.clone()),
            options,
            rooms: Mutex::new(HashMap::new()),
            calls: CallLog::default(),
            rest_calls: Mutex::new(VecDeque::new()),
            faults: Mutex::new(HashMap::new()),
            sigs: Mutex::new(SigBook::default()),
            throttle: Mutex::new(HashMap::new()),
            outbox,
            sent: Mutex::new(VecDeque::new()),
            collected: Mutex::new(Vec::new()),
            pending: AtomicUsize::new(0),
            addr,
            shutdown: CancellationToken::new(),
            next_request: AtomicU64::new(0),
        });
        for spec in rooms {
            shared.add_room(&spec, default_setup(&spec));
        }
        let app = Router::new()
            .route("/v4/{service}/{command}", post(rest))
            .with_state(shared.clone());
        let stop = shared.shutdown.clone();
        let server = tokio::spawn(async move {
            let serving = axum::serve(listener, app).with_graceful_shutdown(stop.cancelled_owned());
            if let Err(err) = serving.await {
                warn!("simulator server failed: {err}");
            }
        });
        let sender = tokio::spawn(sender::run(shared.clone(), queue));
        Ok(TencentSimulator {
            shared,
            server,
            sender,
        })
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.shared.addr
    }

    /// `http://<addr>/`, the REST domain.
    pub fn base_url(&self) -> url::Url {
        url::Url::parse(&format!("http://{}/", self.shared.addr))
            .expect("a socket address always makes a valid URL")
    }

    /// The simulated application's SDKAppID.
    pub fn sdk_app_id(&self) -> u64 {
        self.shared.sdk_app_id()
    }

    /// Sends callbacks to `url` from now on (none when `None`).
    pub fn set_webhook_to(&self, url: Option<url::Url>) {
        *self
            .shared
            .webhook
            .write()
            .unwrap_or_else(PoisonError::into_inner) = url;
    }

    /// Adds a running room with [`DEFAULT_SEATS`] seats, owned by its first
    /// host (sends no callback: it existed before anyone watched).
    pub fn add_room(&self, spec: RoomSpec) {
        let setup = default_setup(&spec);
        self.shared.add_room(&spec, setup);
    }

    /// Adds a room set up so (sends no callback).
    pub fn add_room_with(&self, spec: RoomSpec, setup: RoomSetup) {
        self.shared.add_room(&spec, setup);
    }

    /// Creates a room as the admin's `create_room` would, sending
    /// `Room.CallbackAfterCreateRoom` (its invitees are its owner and its
    /// hosts).
    pub fn create_room(&self, spec: RoomSpec, setup: RoomSetup) {
        let invitees: Vec<String> = std::iter::once(setup.owner.clone()).collect();
        let callback = {
            let mut rooms = self.shared.rooms();
            let mut room = self.shared.new_room(&spec, setup);
            let callback = room.created_callback(&self.shared.options.admin, &invitees, unix_now());
            rooms.insert(spec.alias.clone(), room);
            callback
        };
        self.shared.send(vec![callback]);
    }

    /// Applies a step to a room and sends its callbacks.
    pub fn step(&self, room: &str, step: &Step) -> Result<(), SimError> {
        self.shared.step(room, step)
    }

    /// A member's client stops answering: they leave with `Type` `Expired`.
    pub fn expire_member(&self, room: &str, name: &str) -> Result<(), SimError> {
        let sent = self
            .shared
            .with_room(room, |room| room.expire(name, unix_now()))??;
        self.shared.send(sent);
        Ok(())
    }

    /// Injects a fault into a room.
    pub fn fault(&self, room: &str, fault: Fault) -> Result<(), SimError> {
        self.shared.fault(room, fault)
    }

    /// Plays a scenario's timeline in real time, adding its room first if
    /// needed.
    pub fn play(&self, scenario: &Scenario) -> JoinHandle<()> {
        if !self.shared.rooms().contains_key(&scenario.room) {
            self.add_room(RoomSpec::from_scenario(scenario));
        }
        let driver: Arc<dyn Drive> = self.shared.clone();
        tokio::spawn(player::play(
            driver,
            scenario.clone(),
            self.shared.shutdown.clone(),
        ))
    }

    /// The room's members as the room engine knows them (uuid and uri are
    /// their accounts) and its flags; empty once destroyed; `None` for a
    /// room that never existed.
    pub fn conference(&self, room: &str) -> Option<ConferenceSnapshot> {
        self.shared
            .with_room(room, |room| ConferenceSnapshot {
                participants: room.participants(),
                flags: room.flags(),
            })
            .ok()
    }

    /// The account of the member called `name`.
    pub fn account_of(&self, room: &str, name: &str) -> Option<String> {
        self.shared
            .with_room(room, |room| room.account_of(name))
            .ok()
            .flatten()
    }

    /// Each seat of the room: who sits there and whether its microphone is
    /// locked.
    pub fn seats(&self, room: &str) -> Vec<(Option<String>, bool)> {
        self.shared
            .with_room(room, |room| room.seats())
            .unwrap_or_default()
    }

    /// Who is banned from the room now, and until when.
    pub fn bans(&self, room: &str) -> Vec<(String, f64)> {
        self.shared
            .with_room(room, |room| room.bans(unix_now()))
            .unwrap_or_default()
    }

    /// Every request received (the most recent 10,000), oldest first.
    pub fn calls(&self) -> Vec<CallRecord> {
        self.shared.calls.calls()
    }

    /// Every call answered, by command and HTTP status.
    pub fn tally(&self) -> BTreeMap<(String, u16), u64> {
        self.shared.calls.tally()
    }

    /// The REST calls answered, with their `ErrorCode`s and bodies.
    pub fn rest_calls(&self) -> Vec<RestCall> {
        lock(&self.shared.rest_calls).iter().cloned().collect()
    }

    /// Every callback handled so far, oldest first, with what became of it.
    pub fn sent_callbacks(&self) -> Vec<SentCallback> {
        lock(&self.shared.sent).iter().cloned().collect()
    }

    /// The callbacks collected so far (with `collect_callbacks`), in the
    /// order they would have been sent, faults played.
    pub fn take_collected(&self) -> Vec<Delivery> {
        std::mem::take(&mut *lock(&self.shared.collected))
    }

    /// How many callbacks are still to be sent or collected.
    pub fn callbacks_pending(&self) -> usize {
        self.shared.pending.load(Ordering::Relaxed)
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
        self.sender.abort();
    }
}

impl Drop for TencentSimulator {
    fn drop(&mut self) {
        self.shared.shutdown.cancel();
        self.sender.abort();
    }
}

super::platform_simulator!(TencentSimulator);

/// A room as `add_room` makes it: named after its id, running, with the
/// seed sample's 16 seats taken as people arrive, owned by its first host
/// (or by an absent `owner`).
fn default_setup(spec: &RoomSpec) -> RoomSetup {
    let owner = spec
        .participants
        .iter()
        .find(|joiner| joiner.role == Role::Chair)
        .map(room::account_for)
        .unwrap_or_else(|| "owner".to_owned());
    RoomSetup {
        name: spec.alias.clone(),
        owner,
        seats: DEFAULT_SEATS,
        schedule: None,
    }
}

/// The seats of a room `add_room` makes (`MaxSeatCount` in seed 003).
pub const DEFAULT_SEATS: usize = 16;

/// Faults waiting to be played on a room.
#[derive(Debug, Default)]
struct RoomFaults {
    /// `fail_commands`: how many more, and the HTTP status.
    fail: Option<(u32, u16)>,
    /// `rate_limit`: how many more calls answer 60007.
    throttle: u32,
    /// `delay_responses`: by how much, and how many more.
    delay: Option<(Duration, u32)>,
    drop: u32,
    duplicate: u32,
    reorder: u32,
    bad_sign: u32,
    expired_sign: u32,
}

/// The UserSigs the simulator has seen, and those `expire_tokens` revoked.
#[derive(Debug, Default)]
struct SigBook {
    seen: HashSet<String>,
    revoked: HashSet<String>,
}

/// What the handlers, the sender, the player and the handle share.
struct Shared {
    options: TencentSimOptions,
    webhook: RwLock<Option<url::Url>>,
    rooms: Mutex<HashMap<String, TencentRoom>>,
    calls: CallLog,
    rest_calls: Mutex<VecDeque<RestCall>>,
    faults: Mutex<HashMap<String, RoomFaults>>,
    sigs: Mutex<SigBook>,
    /// Per API: the second and how many calls in it.
    throttle: Mutex<HashMap<&'static str, (u64, u32)>>,
    outbox: mpsc::UnboundedSender<Outgoing>,
    sent: Mutex<VecDeque<SentCallback>>,
    collected: Mutex<Vec<Delivery>>,
    /// Callbacks queued or held, not yet sent, dropped or collected.
    pending: AtomicUsize,
    addr: SocketAddr,
    shutdown: CancellationToken,
    next_request: AtomicU64,
}

impl Shared {
    fn sdk_app_id(&self) -> u64 {
        self.options.sdk_app_id
    }

    fn token(&self) -> Option<&Secret> {
        self.options.callback_token.as_ref()
    }

    fn collecting(&self) -> bool {
        self.options.collect_callbacks
    }

    fn collect(&self, delivery: Delivery) {
        lock(&self.collected).push(delivery);
    }

    fn webhook_to(&self) -> Option<url::Url> {
        self.webhook
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn rooms(&self) -> MutexGuard<'_, HashMap<String, TencentRoom>> {
        lock(&self.rooms)
    }

    fn new_room(&self, spec: &RoomSpec, setup: RoomSetup) -> TencentRoom {
        let seed = self.options.seed.map_or_else(
            || fastrand::u64(..),
            |seed| seed ^ super::conference::fnv1a(spec.alias.as_bytes()),
        );
        TencentRoom::new(&spec.alias, setup, &spec.participants, seed, unix_now())
    }

    fn add_room(&self, spec: &RoomSpec, setup: RoomSetup) {
        let room = self.new_room(spec, setup);
        self.rooms().insert(spec.alias.clone(), room);
    }

    fn with_room<T>(
        &self,
        room: &str,
        act: impl FnOnce(&mut TencentRoom) -> T,
    ) -> Result<T, SimError> {
        let mut rooms = self.rooms();
        let room = rooms
            .get_mut(room)
            .ok_or_else(|| SimError::UnknownRoom(room.to_owned()))?;
        Ok(act(room))
    }

    fn step(&self, room: &str, step: &Step) -> Result<(), SimError> {
        let sent = self.with_room(room, |room| room.step(step, unix_now()))??;
        self.send(sent);
        Ok(())
    }

    fn fault(&self, room: &str, fault: Fault) -> Result<(), SimError> {
        if !self.rooms().contains_key(room) {
            return Err(SimError::UnknownRoom(room.to_owned()));
        }
        if fault == Fault::ExpireTokens {
            let mut sigs = lock(&self.sigs);
            let seen: Vec<String> = sigs.seen.drain().collect();
            sigs.revoked.extend(seen);
            return Ok(());
        }
        let mut faults = lock(&self.faults);
        let faults = faults.entry(room.to_owned()).or_default();
        match fault {
            Fault::FailCommands { count, status } => faults.fail = Some((count, status)),
            Fault::DelayResponses { delay, count } => faults.delay = Some((delay.into(), count)),
            Fault::RateLimit { count } => faults.throttle = count,
            Fault::DropCallbacks { count } => faults.drop = count,
            Fault::DuplicateCallbacks { count } => faults.duplicate = count,
            Fault::ReorderCallbacks { count } => faults.reorder = count,
            Fault::BadSignatures { count } => faults.bad_sign = count,
            Fault::ExpiredSignatures { count } => faults.expired_sign = count,
            other => tracing::info!(
                "the Tencent simulator has no streams: `{}` does not apply",
                other.describe()
            ),
        }
        Ok(())
    }

    /// What to do with a room's next callback.
    fn plan(&self, room: &str) -> Plan {
        let mut faults = lock(&self.faults);
        let Some(faults) = faults.get_mut(room) else {
            return Plan::Sign(Signing::Right);
        };
        if take(&mut faults.drop) {
            Plan::Drop
        } else if take(&mut faults.duplicate) {
            Plan::Duplicate
        } else if take(&mut faults.reorder) {
            Plan::Hold
        } else if take(&mut faults.bad_sign) {
            Plan::Sign(Signing::Wrong)
        } else if take(&mut faults.expired_sign) {
            Plan::Sign(Signing::Expired)
        } else {
            Plan::Sign(Signing::Right)
        }
    }

    fn send(&self, callbacks: Vec<Outgoing>) {
        for callback in callbacks {
            self.pending.fetch_add(1, Ordering::Relaxed);
            if self.outbox.send(callback).is_err() {
                self.pending.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }

    /// One callback has left the queue: sent, dropped or collected.
    fn done_with(&self, callbacks: usize) {
        self.pending.fetch_sub(callbacks, Ordering::Relaxed);
    }

    fn record(&self, callback: &Outgoing, status: Option<u16>, fault: Option<&'static str>) {
        let mut sent = lock(&self.sent);
        if sent.len() == SENT_KEPT {
            sent.pop_front();
        }
        sent.push_back(SentCallback {
            room: callback.room.clone(),
            command: callback.command,
            status,
            fault,
            at: SystemTime::now(),
        });
    }

    /// Checks the admin query string; the refusal to answer when it fails.
    fn admit(&self, query: &str) -> Result<(), Refusal> {
        let pairs: HashMap<String, String> = url::form_urlencoded::parse(query.as_bytes())
            .map(|(name, value)| (name.into_owned(), value.into_owned()))
            .collect();
        let field = |name: &str| pairs.get(name).map(String::as_str).unwrap_or_default();
        if field("sdkappid").parse::<u64>().ok() != Some(self.sdk_app_id()) {
            return Err((
                sim_codes::BAD_REQUEST,
                "sdkappid is missing or not this app".into(),
            ));
        }
        if field("random").parse::<u32>().is_err() || field("contenttype") != "json" {
            return Err((
                sim_codes::BAD_REQUEST,
                "random (a u32) and contenttype=json are required".into(),
            ));
        }
        let identifier = field("identifier");
        if identifier != self.options.admin {
            return Err((
                sim_codes::NOT_ADMIN,
                "identifier must be the app admin".into(),
            ));
        }
        let usersig = field("usersig");
        let mut sigs = lock(&self.sigs);
        if sigs.revoked.contains(usersig) {
            return Err((SIG_EXPIRED, "usersig expired".into()));
        }
        let checked = auth::verify(
            usersig,
            self.sdk_app_id(),
            identifier,
            &self.options.secret_key,
            unix_now() as i64,
        );
        match checked {
            Ok(_) => {
                sigs.seen.insert(usersig.to_owned());
                Ok(())
            }
            Err(UserSigError::Expired) => Err((SIG_EXPIRED, "usersig expired".into())),
            Err(UserSigError::WrongIdentifier) => {
                Err((70013, "usersig is for another identifier".into()))
            }
            Err(UserSigError::WrongApp) => Err((70014, "usersig is for another sdkappid".into())),
            Err(UserSigError::Malformed | UserSigError::BadSignature) => {
                Err((SIG_INVALID, "usersig is invalid".into()))
            }
        }
    }

    /// True when `api` is over its calls for this second.
    fn over_limit(&self, api: Api) -> bool {
        let second = unix_now() as u64;
        let mut throttle = lock(&self.throttle);
        let (at, count) = throttle.entry(api.command).or_insert((second, 0));
        if *at != second {
            *at = second;
            *count = 0;
        }
        *count += 1;
        *count > CALLS_PER_SECOND
    }

    /// Answers one call: the reply's `Response` and callbacks, or a refusal.
    fn answer(&self, api: Api, body: &Value) -> Result<Option<Value>, Refusal> {
        let now = unix_now();
        if api == wire::CREATE_ROOM {
            return self.create_room(body, now);
        }
        let room = body_room(body).ok_or((
            crate::platform::tencent::rest::INVALID_PARAMETER,
            "RoomId is required".to_owned(),
        ))?;
        let admin = self.options.admin.clone();
        let (response, sent) = {
            let mut rooms = self.rooms();
            let Some(state) = rooms.get_mut(&room) else {
                return Err(room_not_found(&room));
            };
            state.command(api, body, &admin, now)?
        };
        self.send(sent);
        Ok(response)
    }

    fn create_room(&self, body: &Value, now: f64) -> Result<Option<Value>, Refusal> {
        let info = body.get("RoomInfo").cloned().unwrap_or_default();
        let id = info
            .get("RoomId")
            .and_then(Value::as_str)
            .filter(|id| !id.is_empty())
            .ok_or((
                crate::platform::tencent::rest::INVALID_PARAMETER,
                "RoomInfo.RoomId is required".to_owned(),
            ))?
            .to_owned();
        let owner = info
            .get("Owner_Account")
            .and_then(Value::as_str)
            .unwrap_or(&self.options.admin)
            .to_owned();
        let seats = if info.get("IsSeatEnabled").and_then(Value::as_bool) == Some(true) {
            info.get("MaxSeatCount")
                .and_then(Value::as_u64)
                .unwrap_or(16) as usize
        } else {
            0
        };
        let schedule = info
            .get("ScheduleStartTime")
            .and_then(Value::as_i64)
            .filter(|start| *start > 0)
            .map(|start| {
                let end = info
                    .get("ScheduleEndTime")
                    .and_then(Value::as_i64)
                    .unwrap_or(0);
                (start, end)
            });
        let setup = RoomSetup {
            name: info
                .get("RoomName")
                .and_then(Value::as_str)
                .unwrap_or(&id)
                .to_owned(),
            owner: owner.clone(),
            seats,
            schedule,
        };
        let invitees: Vec<String> = body
            .get("ScheduleInviteeList_Account")
            .and_then(Value::as_array)
            .map(|list| {
                list.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        let callback = {
            let mut rooms = self.rooms();
            if rooms.get(&id).is_some_and(|room| !room.destroyed()) {
                return Err((
                    crate::platform::tencent::rest::INVALID_PARAMETER,
                    format!("room {id} exists"),
                ));
            }
            let mut room = self.new_room(&RoomSpec::new(id.clone()), setup);
            let callback = room.created_callback(&self.options.admin, &invitees, now);
            rooms.insert(id.clone(), room);
            callback
        };
        self.send(vec![callback]);
        Ok(None)
    }

    /// Takes one of a room's pending REST faults, if any applies to `api`.
    fn rest_fault(&self, room: Option<&str>, api: Api) -> (Option<Duration>, Option<RestFault>) {
        let Some(room) = room else {
            return (None, None);
        };
        let mut faults = lock(&self.faults);
        let Some(faults) = faults.get_mut(room) else {
            return (None, None);
        };
        let delay = match &mut faults.delay {
            Some((delay, count)) if *count > 0 => {
                *count -= 1;
                Some(*delay)
            }
            _ => None,
        };
        let is_command = !api.command.starts_with("get_");
        let fault = match &mut faults.fail {
            Some((count, status)) if is_command && *count > 0 => {
                *count -= 1;
                Some(RestFault::Status(*status))
            }
            _ if take(&mut faults.throttle) => Some(RestFault::RateLimited),
            _ => None,
        };
        (delay, fault)
    }

    fn log(&self, api: Api, body: &Value, status: u16, code: Option<i64>) {
        let room = body_room(body);
        self.calls.record(CallRecord {
            room: room.clone(),
            method: "POST".to_owned(),
            path: format!("{}/{}", api.service.trim_start_matches("v4/"), api.command),
            status,
            at: SystemTime::now(),
        });
        let mut calls = lock(&self.rest_calls);
        if calls.len() == 10_000 {
            calls.pop_front();
        }
        calls.push_back(RestCall {
            api: format!("{}/{}", api.service.trim_start_matches("v4/"), api.command),
            room,
            status,
            code,
            body: body.clone(),
        });
    }

    fn request_id(&self) -> String {
        let n = self.next_request.fetch_add(1, Ordering::Relaxed);
        format!("Id-{:032x}-O-Seq-{n}", fastrand::u128(..))
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

/// A REST fault to play on one call.
enum RestFault {
    Status(u16),
    RateLimited,
}

/// `POST /v4/<service>/<command>`.
async fn rest(
    State(shared): State<Arc<Shared>>,
    Path((service, command)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let service = format!("v4/{service}");
    let Some(api) = APIS
        .iter()
        .copied()
        .find(|api| api.service == service && api.command == command)
    else {
        return reply(
            &shared,
            Err((
                sim_codes::BAD_REQUEST,
                format!("no command {service}/{command}"),
            )),
        );
    };
    let parsed = parse_body(&body);
    let logged = parsed.clone().unwrap_or(Value::Null);
    let (delay, fault) = shared.rest_fault(body_room(&logged).as_deref(), api);
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    if let Some(RestFault::Status(status)) = fault {
        shared.log(api, &logged, status, None);
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
        return (status, "simulated failure").into_response();
    }
    let result = shared
        .admit(query.as_deref().unwrap_or_default())
        .and_then(|()| {
            if shared.over_limit(api) || matches!(fault, Some(RestFault::RateLimited)) {
                return Err((RATE_LIMITED, "REST API call frequency over limit".into()));
            }
            let body = parsed?;
            shared.answer(api, &body)
        });
    let code = match &result {
        Ok(_) => 0,
        Err((code, _)) => *code,
    };
    shared.log(api, &logged, 200, Some(code));
    reply(&shared, result)
}

/// The body as JSON: never empty, always an object.
fn parse_body(body: &[u8]) -> Result<Value, Refusal> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err((
            sim_codes::BAD_BODY,
            "the body is empty; send {} at least".into(),
        ));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(value @ Value::Object(_)) => Ok(value),
        _ => Err((sim_codes::BAD_BODY, "the body is not a JSON object".into())),
    }
}

fn body_room(body: &Value) -> Option<String> {
    body.get("RoomId")
        .or_else(|| body.get("RoomInfo").and_then(|info| info.get("RoomId")))
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// The platform's answer: always HTTP 200, the outcome in the body.
fn reply(shared: &Shared, result: Result<Option<Value>, Refusal>) -> Response {
    let mut body = match &result {
        Ok(_) => json!({"ActionStatus": "OK", "ErrorCode": 0, "ErrorInfo": ""}),
        Err((code, info)) => json!({"ActionStatus": "FAIL", "ErrorCode": code, "ErrorInfo": info}),
    };
    body["RequestId"] = json!(shared.request_id());
    if let Ok(Some(response)) = result {
        body["Response"] = response;
    }
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// Takes one from a fault's count.
fn take(count: &mut u32) -> bool {
    if *count == 0 {
        return false;
    }
    *count -= 1;
    true
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
