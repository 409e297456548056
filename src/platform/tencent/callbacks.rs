//! Callbacks in: check that one is authentic, read it, and hand it to the
//! room it is about (or to discovery).
//!
//! A callback must name this account's `SdkAppid` in its URL, and, when a
//! callback token is configured, carry `Sign = hex(sha256(token +
//! RequestTime))` with a `RequestTime` within a minute of now. One that does
//! not is answered 401, counted, and has no effect. An authentic callback is
//! answered `{"ActionStatus":"OK","ErrorInfo":"","ErrorCode":0}` once it is
//! queued for its room; the room's feed applies it in order. A body that
//! cannot be read is answered 400, logged and counted.
//!
//! `Room.CallbackAfterCreateRoom` reports a [`Discovery::Started`] and
//! `Room.CallbackAfterDestroyRoom` a [`Discovery::Ended`] (each once, however
//! often the platform delivers it), besides reaching the room when it is
//! watched.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use tokio::sync::mpsc;

use super::auth::check_callback_sign;
use super::decode::{self, Callback, DecodeError, Happening};
use super::wire::{CALLBACK_OK, CallbackBody};
use crate::clock::unix_now;
use crate::model::Secret;
use crate::platform::{Discovery, WebhookReply, WebhookRequest};

/// How many discovery keys the account remembers, to report each room's
/// creation and end once.
const DISCOVERY_KEYS_KEPT: usize = 4096;

/// Counters of the account's callbacks, for `/metrics`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct WebhookStats {
    /// Authentic callbacks taken.
    pub accepted: u64,
    /// Callbacks refused as not authentic (401).
    pub refused: u64,
    /// Authentic callbacks whose body could not be read (400).
    pub malformed: u64,
    /// Callbacks about rooms usher does not watch.
    pub unwatched: u64,
    /// Callbacks dropped because their room's queue was full (the room then
    /// reconciles).
    pub overflowed: u64,
}

#[derive(Default)]
struct Counters {
    accepted: AtomicU64,
    refused: AtomicU64,
    malformed: AtomicU64,
    unwatched: AtomicU64,
    overflowed: AtomicU64,
}

/// Where a watched room's callbacks go.
pub(crate) struct Inbox {
    /// The room's queue, read by its feed.
    pub sender: mpsc::Sender<Box<Callback>>,
    /// Set when a callback could not be queued: the feed reconciles.
    pub missed: Arc<AtomicBool>,
    /// Which connection of the room registered it.
    pub id: u64,
}

/// The callback side of one account: who it is, its token, its watched
/// rooms and where discoveries go.
pub(crate) struct Receiver {
    platform: String,
    sdk_app_id: u64,
    token: Option<Secret>,
    rooms: RwLock<HashMap<String, Inbox>>,
    discoveries: mpsc::UnboundedSender<Discovery>,
    discovered: Mutex<KeySet>,
    counters: Counters,
}

impl Receiver {
    /// The receiver of account `platform` (its name in the config).
    pub fn new(
        platform: &str,
        sdk_app_id: u64,
        token: Option<Secret>,
        discoveries: mpsc::UnboundedSender<Discovery>,
    ) -> Self {
        Receiver {
            platform: platform.to_owned(),
            sdk_app_id,
            token,
            rooms: RwLock::new(HashMap::new()),
            discoveries,
            discovered: Mutex::new(KeySet::default()),
            counters: Counters::default(),
        }
    }

    /// Starts routing `room`'s callbacks to `inbox`, in place of any
    /// earlier connection's.
    pub fn watch(&self, room: &str, inbox: Inbox) {
        self.rooms_mut().insert(room.to_owned(), inbox);
    }

    /// Stops routing `room`'s callbacks, if connection `id` still has it.
    pub fn unwatch(&self, room: &str, id: u64) {
        let mut rooms = self.rooms_mut();
        if rooms.get(room).is_some_and(|inbox| inbox.id == id) {
            rooms.remove(room);
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> WebhookStats {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        WebhookStats {
            accepted: read(&self.counters.accepted),
            refused: read(&self.counters.refused),
            malformed: read(&self.counters.malformed),
            unwatched: read(&self.counters.unwatched),
            overflowed: read(&self.counters.overflowed),
        }
    }

    /// Handles one callback and says what to answer.
    pub fn handle(&self, request: &WebhookRequest) -> WebhookReply {
        let query = Query::parse(&request.query);
        if let Err(why) = self.authenticate(&query) {
            self.counters.refused.fetch_add(1, Ordering::Relaxed);
            // The listener logs the refusal; this is for direct callers.
            tracing::debug!(platform = %self.platform, "refused a callback: {why}");
            return WebhookReply::refused(why);
        }
        let command = query.get("CallbackCommand").unwrap_or_default();
        if request.body.trim_ascii_start().first() != Some(&b'{') {
            return self.malformed(command, "the body is not a JSON object");
        }
        let body = match serde_json::from_slice::<CallbackBody>(&request.body) {
            Ok(body) => body,
            Err(err) => return self.malformed(command, &err.to_string()),
        };
        let received_ms = (unix_now() * 1000.0) as i64;
        let callback = match decode::decode(command, &body, received_ms) {
            Ok(callback) => callback,
            Err(DecodeError::Unknown(name)) => {
                tracing::debug!(platform = %self.platform, callback = %name, "ignoring a callback this version does not know");
                self.counters.accepted.fetch_add(1, Ordering::Relaxed);
                return ok();
            }
            Err(err) => return self.malformed(command, &err.to_string()),
        };
        self.counters.accepted.fetch_add(1, Ordering::Relaxed);
        self.discover(&callback);
        self.route(callback);
        ok()
    }

    fn authenticate(&self, query: &Query) -> Result<(), &'static str> {
        let app = query
            .get("SdkAppid")
            .and_then(|app| app.trim().parse::<u64>().ok());
        if app != Some(self.sdk_app_id) {
            return Err("the callback's SdkAppid is not this account's");
        }
        if let Some(token) = &self.token {
            check_callback_sign(
                token,
                query.get("Sign"),
                query.get("RequestTime"),
                unix_now(),
            )
            .map_err(|err| match err {
                super::auth::SignError::Missing => "the callback is not signed",
                super::auth::SignError::BadTime => "the callback's RequestTime is not a time",
                super::auth::SignError::Stale => {
                    "the callback's RequestTime is more than a minute from now"
                }
                super::auth::SignError::Mismatch => "the callback's Sign does not match",
            })?;
        }
        Ok(())
    }

    fn malformed(&self, command: &str, why: &str) -> WebhookReply {
        self.counters.malformed.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(platform = %self.platform, callback = %command, error = %why, "skipping a malformed callback");
        WebhookReply {
            status: 400,
            content_type: "text/plain",
            body: "malformed callback\n".to_owned(),
        }
    }

    fn discover(&self, callback: &Callback) {
        let discovery = match &callback.happening {
            Happening::Created(info) => {
                Discovery::Started(decode::discovered(&self.platform, &callback.room, info))
            }
            Happening::Destroyed => Discovery::Ended {
                platform: self.platform.clone(),
                alias: callback.room.clone(),
            },
            _ => return,
        };
        let first = self
            .discovered
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(callback.key);
        if first {
            let _ = self.discoveries.send(discovery);
        }
    }

    fn route(&self, callback: Callback) {
        let rooms = self
            .rooms
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let Some(inbox) = rooms.get(&callback.room) else {
            self.counters.unwatched.fetch_add(1, Ordering::Relaxed);
            return;
        };
        match inbox.sender.try_send(Box::new(callback)) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(callback)) => {
                inbox.missed.store(true, Ordering::Relaxed);
                self.counters.overflowed.fetch_add(1, Ordering::Relaxed);
                tracing::warn_span!("room", room = %callback.room).in_scope(|| {
                    tracing::warn!("the room's callback queue is full; it will reconcile");
                });
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }

    fn rooms_mut(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Inbox>> {
        self.rooms
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn ok() -> WebhookReply {
    WebhookReply::json(CALLBACK_OK.to_owned())
}

/// A callback URL's query parameters (the first of each name; names
/// compared without case, as `SdkAppid` is spelt several ways).
struct Query(Vec<(String, String)>);

impl Query {
    fn parse(query: &str) -> Query {
        Query(
            url::form_urlencoded::parse(query.as_bytes())
                .map(|(name, value)| (name.into_owned(), value.into_owned()))
                .collect(),
        )
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// A bounded set of recent keys.
#[derive(Default)]
struct KeySet {
    keys: HashSet<u64>,
    order: VecDeque<u64>,
}

impl KeySet {
    /// Adds `key`; false when it was there.
    fn insert(&mut self, key: u64) -> bool {
        if !self.keys.insert(key) {
            return false;
        }
        self.order.push_back(key);
        if self.order.len() > DISCOVERY_KEYS_KEPT
            && let Some(oldest) = self.order.pop_front()
        {
            self.keys.remove(&oldest);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::tencent::auth::callback_sign;

    const SEED_003: &str = r#"{"CallbackCommand":"Room.CallbackAfterCreateRoom","Operator_Account":"admin","RoomInfo":{"RoomId":"tandy-test-rest","RoomName":"tandy-test-rest","RoomType":"Meeting","Owner_Account":"user3","MaxMemberCount":300,"MaxSeatCount":16,"IsVideoDisabled":true,"IsAudioDisabled":true,"IsMessageDisabled":true,"IsScreenSharingDisabled":true,"IsCloudRecordingDisabled":true,"CustomInfo":"custom123","ScheduleStartTime":1703589922,"ScheduleEndTime":1703593522,"RoomStatus":"Running","IsSeatEnabled":true,"TakeSeatMode":"ApplyToTake","CreateTime":1703589922},"ScheduleInviteeList_Account":["user2", "user3", "user3"],"EventTime":1703589922780}"#;

    fn request(query: &str, body: &str) -> WebhookRequest {
        WebhookRequest {
            query: query.to_owned(),
            headers: axum::http::HeaderMap::new(),
            body: bytes::Bytes::from(body.to_owned()),
        }
    }

    fn receiver(token: Option<&str>) -> (Receiver, mpsc::UnboundedReceiver<Discovery>) {
        let (sender, discoveries) = mpsc::unbounded_channel();
        (
            Receiver::new("tx", 1_400_000_000, token.map(Secret::new), sender),
            discoveries,
        )
    }

    const QUERY: &str = "SdkAppid=1400000000&CallbackCommand=Room.CallbackAfterCreateRoom&contenttype=json&ClientIP=127.0.0.1&OptPlatform=RESTAPI";

    #[test]
    fn seed_003_discovers_its_room_once() {
        let (receiver, mut discoveries) = receiver(None);
        let reply = receiver.handle(&request(QUERY, SEED_003));
        assert_eq!((reply.status, reply.body.as_str()), (200, CALLBACK_OK));
        receiver.handle(&request(QUERY, SEED_003));
        let Ok(Discovery::Started(room)) = discoveries.try_recv() else {
            panic!("no discovery")
        };
        assert_eq!(room.alias, "tandy-test-rest");
        assert_eq!(room.title, "tandy-test-rest");
        let schedule = room.schedule.unwrap();
        assert_eq!(
            (schedule.start, schedule.end),
            (1_703_589_922.0, Some(1_703_593_522.0))
        );
        assert!(
            discoveries.try_recv().is_err(),
            "a redelivery discovers nothing more"
        );
        assert_eq!(receiver.stats().accepted, 2);
    }

    #[test]
    fn another_apps_callback_is_refused_and_does_nothing() {
        let (receiver, mut discoveries) = receiver(None);
        let reply = receiver.handle(&request(
            &QUERY.replace("1400000000", "1400000001"),
            SEED_003,
        ));
        assert_eq!(reply.status, 401);
        assert!(discoveries.try_recv().is_err());
        assert_eq!(receiver.stats().refused, 1);
    }

    #[test]
    fn with_a_token_only_a_fresh_right_sign_passes() {
        let (receiver, mut discoveries) = receiver(Some("tok"));
        assert_eq!(
            receiver.handle(&request(QUERY, SEED_003)).status,
            401,
            "unsigned"
        );
        let now = (unix_now() as i64).to_string();
        let wrong = format!(
            "{QUERY}&RequestTime={now}&Sign={}",
            callback_sign(&Secret::new("other"), &now)
        );
        assert_eq!(
            receiver.handle(&request(&wrong, SEED_003)).status,
            401,
            "wrong token"
        );
        let old = (unix_now() as i64 - 120).to_string();
        let stale = format!(
            "{QUERY}&RequestTime={old}&Sign={}",
            callback_sign(&Secret::new("tok"), &old)
        );
        assert_eq!(
            receiver.handle(&request(&stale, SEED_003)).status,
            401,
            "two minutes old"
        );
        assert!(
            discoveries.try_recv().is_err(),
            "no refused callback had an effect"
        );
        let good = format!(
            "{QUERY}&RequestTime={now}&Sign={}",
            callback_sign(&Secret::new("tok"), &now)
        );
        assert_eq!(receiver.handle(&request(&good, SEED_003)).status, 200);
        assert!(discoveries.try_recv().is_ok());
        assert_eq!(receiver.stats().refused, 3);
    }

    #[test]
    fn unreadable_bodies_are_400_and_unknown_callbacks_are_ignored() {
        let (receiver, _discoveries) = receiver(None);
        for body in [
            "",
            "not json",
            "[1,2]",
            r#"{"RoomInfo": 5}"#,
            r#"{"CallbackCommand":"Room.CallbackAfterMemberEnter"}"#,
        ] {
            assert_eq!(
                receiver.handle(&request(QUERY, body)).status,
                400,
                "{body:?}"
            );
        }
        let unknown = r#"{"CallbackCommand":"Room.CallbackAfterSomethingNew","RoomId":"r"}"#;
        assert_eq!(receiver.handle(&request(QUERY, unknown)).status, 200);
        assert_eq!(receiver.stats().malformed, 5);
    }
}
