//! The one support module of the integration tests: a simulated room,
//! sessions against it, a feed whose items can be awaited with a deadline,
//! and `eventually` for conditions that have no event to wait on. The
//! daemon's end-to-end helpers are in [`daemon`], a real browser in
//! [`browser`], a real etcd in [`etcd`], hostile servers in [`raw`], and
//! each platform's fixtures in [`agora`] and [`tencent`].
//!
//! Nothing here sleeps for a fixed time: every wait is for a condition or an
//! item, bounded by [`PATIENCE`], and a timeout panics saying what was awaited
//! and what arrived instead.

// Each test crate uses only some of these helpers.
#![allow(dead_code)]

pub mod agora;
pub mod browser;
pub mod daemon;
pub mod etcd;
pub mod raw;
pub mod tencent;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use usher::model::{Change, Event, Participant, RoomState, Secret};
use usher::platform::http::{HttpClients, HttpOptions};
use usher::platform::vmr::codec::{participant_from, participant_json};
use usher::platform::vmr::{Credentials, RoomClient, Session, run_feed};
use usher::platform::{FeedItem, FeedOptions, RoomLink};
use usher::sim::step::Joiner;
use usher::sim::{CallRecord, RoomSpec, Simulator};

/// The simulated room every test moderates.
pub const ROOM: &str = "hall@usher.test";
/// Its host PIN. Tests search for it wherever secrets must not be.
pub const PIN: &str = "864213579";
/// The display name usher's sessions use.
pub const USHER: &str = "usher";
/// How long a test waits for something that should happen promptly. Generous,
/// so a loaded CI machine does not fail a test that would pass.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// The room with a PIN, 120 s tokens and these people in it.
pub fn room(participants: Vec<Joiner>) -> RoomSpec {
    RoomSpec {
        pin: Some(Secret::new(PIN)),
        participants,
        ..RoomSpec::new(ROOM)
    }
}

/// A simulator on a free loopback port serving `rooms`.
pub async fn simulator(rooms: Vec<RoomSpec>) -> Simulator {
    Simulator::start(loopback(0), rooms)
        .await
        .expect("the simulator starts on loopback")
}

/// `127.0.0.1:port`.
pub fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// HTTP clients with the default timeouts.
pub fn clients() -> HttpClients {
    clients_with(HttpOptions::default())
}

/// HTTP clients with these timeouts.
pub fn clients_with(options: HttpOptions) -> HttpClients {
    HttpClients::new(options).expect("the HTTP clients build")
}

/// A client for [`ROOM`] on the simulator.
pub fn room_client(sim: &Simulator, clients: &HttpClients) -> RoomClient {
    RoomClient::new(clients, &sim.base_url(), ROOM)
}

/// usher's credentials with the right PIN.
pub fn credentials(hidden: bool) -> Credentials {
    Credentials {
        pin: Some(Secret::new(PIN)),
        display_name: USHER.to_owned(),
        hidden,
    }
}

/// A session in [`ROOM`] with the right PIN and default timeouts.
pub async fn open_session(sim: &Simulator, hidden: bool) -> Arc<Session> {
    Session::open(room_client(sim, &clients()), credentials(hidden))
        .await
        .expect("a session opens with the right PIN")
}

/// Waits until `condition` holds, checking every 20 ms, and panics naming
/// `what` if it still does not after `timeout` (usually [`PATIENCE`]). For
/// states that announce themselves with no event.
pub async fn eventually(timeout: Duration, what: &str, mut condition: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    loop {
        if condition().await {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The calls the simulator answered on `path` (below the room).
pub fn calls_to(sim: &Simulator, path: &str) -> Vec<CallRecord> {
    sim.calls()
        .into_iter()
        .filter(|call| call.room.as_deref() == Some(ROOM) && call.path == path)
        .collect()
}

/// A participant exactly as a client reads it off the wire: serialized the
/// way the simulator sends it, then parsed the way the client parses it.
/// (serde_json's default float parsing may round a 17-digit timestamp by one
/// unit in the last place, so the simulator's own value can differ from the
/// one any client sees.)
pub fn as_on_the_wire(participant: &Participant) -> Participant {
    let wire = serde_json::to_string(&participant_json(participant)).expect("JSON");
    participant_from(serde_json::from_str(&wire).expect("JSON"))
        .expect("the simulator's participant reads back")
}

/// The simulator's roster, in arrival order, as clients read it.
pub fn sim_roster(sim: &Simulator) -> Vec<Participant> {
    sim.conference(ROOM)
        .expect("the room is simulated")
        .participants
        .iter()
        .map(as_on_the_wire)
        .collect()
}

/// The room state's roster, in arrival order.
pub fn roster(state: &RoomState) -> Vec<Participant> {
    state.participants().map(|p| (**p).clone()).collect()
}

/// Changes in a form that reads well in assertion failures:
/// `joined Eve`, `left Bob`, `updated Cat`, `synced`, `synced (initial)`.
pub fn describe(changes: &[Change]) -> Vec<String> {
    changes
        .iter()
        .map(|change| match change {
            Change::Joined(p) => format!("joined {}", p.display_name),
            Change::Left(p) => format!("left {}", p.display_name),
            Change::Updated { after, .. } => format!("updated {}", after.display_name),
            Change::Synced { initial: true } => "synced (initial)".to_owned(),
            Change::Synced { initial: false } => "synced".to_owned(),
            Change::RoomUpdated { after, .. } => format!(
                "room locked={} guests_muted={}",
                after.locked, after.guests_muted
            ),
            other => format!("{other:?}"),
        })
        .collect()
}

/// A running [`run_feed`] and the items it reported, awaited one by one.
pub struct Feed {
    items: mpsc::Receiver<Box<FeedItem>>,
    cancel: CancellationToken,
    task: JoinHandle<()>,
    /// Every item received so far, for failure messages.
    history: Vec<FeedItem>,
}

impl Feed {
    /// Starts the feed of `session` with default backoff.
    pub fn start(session: Arc<Session>) -> Feed {
        Feed::start_with(session, FeedOptions::default())
    }

    /// Follows any platform's room link, as the runtime does.
    pub fn follow(link: Arc<dyn RoomLink>) -> Feed {
        let (sink, items) = mpsc::channel(1024);
        let cancel = CancellationToken::new();
        let task = tokio::spawn(link.follow(sink, cancel.clone()));
        Feed {
            items,
            cancel,
            task,
            history: Vec::new(),
        }
    }

    /// Starts the feed of `session` with these options.
    pub fn start_with(session: Arc<Session>, options: FeedOptions) -> Feed {
        let (sink, items) = mpsc::channel(1024);
        let cancel = CancellationToken::new();
        let task = tokio::spawn(run_feed(session, sink, cancel.clone(), options));
        Feed {
            items,
            cancel,
            task,
            history: Vec::new(),
        }
    }

    /// The next item; panics after [`PATIENCE`] naming `waiting_for`.
    pub async fn next(&mut self, waiting_for: &str) -> FeedItem {
        let item = match tokio::time::timeout(PATIENCE, self.items.recv()).await {
            Ok(Some(item)) => *item,
            Ok(None) => panic!(
                "the feed ended while waiting for {waiting_for}; it reported:\n{}",
                self.report()
            ),
            Err(_) => panic!(
                "no {waiting_for} within {PATIENCE:?}; the feed reported:\n{}",
                self.report()
            ),
        };
        self.history.push(item.clone());
        item
    }

    /// The next item, waiting as long as it takes; `None` when the feed
    /// ended. For callers that bound the wait themselves.
    pub async fn next_or_end(&mut self) -> Option<FeedItem> {
        let item = *self.items.recv().await?;
        self.history.push(item.clone());
        Some(item)
    }

    /// Every item up to and including the first that matches `wanted`.
    pub async fn until(
        &mut self,
        waiting_for: &str,
        mut wanted: impl FnMut(&FeedItem) -> bool,
    ) -> Vec<FeedItem> {
        let mut items = Vec::new();
        loop {
            let item = self.next(waiting_for).await;
            let found = wanted(&item);
            items.push(item);
            if found {
                return items;
            }
        }
    }

    /// The next item that matches `wanted`, skipping others.
    pub async fn next_matching(
        &mut self,
        waiting_for: &str,
        wanted: impl FnMut(&FeedItem) -> bool,
    ) -> FeedItem {
        self.until(waiting_for, wanted)
            .await
            .pop()
            .expect("`until` returns at least the match")
    }

    /// Expects the very next item to be `Connected`.
    pub async fn connected(&mut self) {
        match self.next("Connected").await {
            FeedItem::Connected => {}
            other => panic!("expected Connected, got {other:?}"),
        }
    }

    /// Expects the next items to be a roster followed by the room's flags
    /// (which the feed reports after every resync), and returns both.
    pub async fn roster(&mut self) -> Vec<Event> {
        let roster = match self.next("a roster").await {
            FeedItem::Event(roster @ Event::Roster(_)) => roster,
            other => panic!("expected a roster, got {other:?}"),
        };
        match self.next("the room's flags after the roster").await {
            FeedItem::Event(flags @ Event::RoomUpdate(_)) => vec![roster, flags],
            other => panic!("expected the room's flags after the roster, got {other:?}"),
        }
    }

    /// Stops the feed and waits for its task to end. Call it once.
    pub async fn stop(&mut self) {
        self.cancel.cancel();
        tokio::time::timeout(PATIENCE, &mut self.task)
            .await
            .expect("the feed stops promptly when cancelled")
            .expect("the feed task does not panic");
    }

    /// The last items received, one a line.
    fn report(&self) -> String {
        let skip = self.history.len().saturating_sub(40);
        self.history[skip..]
            .iter()
            .map(|item| format!("  {item:?}"))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Feed {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// Applies events to a room state and returns every change they caused.
pub fn apply_all(state: &mut RoomState, events: impl IntoIterator<Item = Event>) -> Vec<Change> {
    events
        .into_iter()
        .flat_map(|event| state.apply(event))
        .collect()
}

/// What usher logged on this thread while [`Logs::capture`]'s guard lived;
/// a current-thread runtime (the default of `#[tokio::test]`) runs every
/// task it spawns here too.
#[derive(Clone, Default)]
pub struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    /// Starts capturing; capturing stops when the guard is dropped.
    pub fn capture() -> (Logs, tracing::subscriber::DefaultGuard) {
        let logs = Logs::default();
        let sink = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .with_writer(move || sink.clone())
            .finish();
        (logs, tracing::subscriber::set_default(subscriber))
    }

    /// Everything captured so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("not poisoned")).into_owned()
    }
}

impl std::io::Write for Logs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .expect("not poisoned")
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
