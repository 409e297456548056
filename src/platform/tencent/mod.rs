//! Tencent conference rooms (TUIRoomKit's room engine, seed 003): admin
//! REST calls signed with a UserSig usher issues itself, and room callbacks
//! POSTed to usher's webhook listener (`kind: tencent`).
//!
//! - [`config`]: the account's settings and secrets.
//! - [`auth`]: UserSigs (TLS-Sig v2) and callbacks' `Sign`.
//! - [`wire`]: REST paths, replies and callback bodies.
//! - [`rest`]: the REST calls and what their `ErrorCode`s mean.
//! - [`callbacks`]: callbacks in: authenticity, reading, routing, discovery.
//! - [`decode`]: callbacks, roles and times in usher's terms.
//! - [`tracker`]: one room from unordered, repeated callbacks and listings.
//! - [`feed`]: a room's callbacks applied in order, its list reconciled.
//! - [`inferred`]: every fact about the platform that is guessed.
//!
//! [`Tencent`] and [`TencentLink`] put them behind the platform boundary.
//!
//! What rules can ask of a Tencent room ([`CAPABILITIES`]):
//!
//! | verb | call |
//! |---|---|
//! | `mute_guests` / `unmute_guests` | `update_room_info` `IsAudioDisabled` true / false |
//! | `end` | `destroy_room` |
//! | `disconnect` | `kick_user_out` with a reason |
//! | `make_host` / `make_guest` | `update_room_member_info` `Role` `Admin` / `Member` |
//! | `mute` / `unmute` | `lock_seat` `ForbidAudio` on the member's seat; `unsupported` for a member without one |
//! | `ban` | `ban_room_member` with the duration ([`TencentLink::ban`]) |
//!
//! Everything else (lock, admit, spotlight, layout, chat, dial, …) has no
//! room-engine call and is planned as unsupported.

pub mod auth;
pub mod callbacks;
pub mod config;
pub mod decode;
mod feed;
pub mod inferred;
pub mod rest;
pub mod tracker;
pub mod wire;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use serde_json::json;
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

pub use callbacks::WebhookStats;
pub use config::TencentConfig;

use self::auth::UserSigs;
use self::callbacks::{Inbox, Receiver};
use self::decode::Callback;
use self::rest::{Rest, RestError};
use self::tracker::Tracker;
use super::http::HttpClients;
use super::{
    BuildContext, BuildError, Capabilities, ConnectError, FeedItem, FeedOptions, LinkStats,
    Platform, PlatformKind, RoomAddress, RoomLink, SendOutcome, WebhookReply, WebhookRequest,
};
use crate::model::{Command, ConferenceCommand, ParticipantCommand, Role};

/// The verbs a Tencent room can carry out (see the module's table).
pub const CAPABILITIES: Capabilities = Capabilities::new(&[
    "mute_guests",
    "unmute_guests",
    "end",
    "disconnect",
    "make_host",
    "make_guest",
    "mute",
    "unmute",
    "ban",
]);

/// The reason `kick_user_out` is given (the platform requires one).
const KICK_REASON: &str = "removed by the room's moderation";

/// How often a mute of a member who has just entered looks for their seat.
const SEAT_POLL: Duration = Duration::from_millis(20);

/// How many callbacks a room may have waiting before more are dropped (and
/// the room reconciles instead).
const INBOX: usize = 4096;

/// One Tencent account.
pub struct Tencent {
    shared: Arc<Shared>,
}

/// What every room of the account shares.
struct Shared {
    rest: Rest,
    receiver: Receiver,
    admin: String,
    feed: FeedOptions,
    reconcile_every: Duration,
    next_link: AtomicU64,
}

impl Tencent {
    /// Sets up the account: reads its secrets (the error names the field,
    /// never the value) and its HTTP client.
    pub fn new(config: &TencentConfig, context: &BuildContext) -> Result<Tencent, BuildError> {
        config.validate().map_err(BuildError::Config)?;
        let secrets = config
            .secrets()
            .map_err(|err| BuildError::Config(err.to_string()))?;
        let http = HttpClients::new(config.http_options(context.rooms))?;
        let sigs = Arc::new(UserSigs::new(
            config.sdk_app_id,
            &config.admin,
            secrets.secret_key,
            config.usersig_lifetime.0,
        ));
        Ok(Tencent {
            shared: Arc::new(Shared {
                rest: Rest::new(http.rest().clone(), config.url.0.clone(), sigs),
                receiver: Receiver::new(
                    &context.name,
                    config.sdk_app_id,
                    secrets.callback_token,
                    context.discoveries.clone(),
                ),
                admin: config.admin.clone(),
                feed: context.feed,
                reconcile_every: config.reconcile_every(),
                next_link: AtomicU64::new(0),
            }),
        })
    }

    /// The account's callback counters (refusals included), for `/metrics`.
    pub fn webhook_stats(&self) -> WebhookStats {
        self.shared.receiver.stats()
    }

    /// Connects to a room (see [`Platform::connect`]), as the concrete link.
    pub async fn connect_room(&self, room: &RoomAddress) -> Result<Arc<TencentLink>, ConnectError> {
        let shared = &self.shared;
        // The room must exist, and the account's credentials must work.
        shared
            .rest
            .room_info(&room.alias)
            .await
            .map_err(|err| connect_error(&err))?;
        let id = shared.next_link.fetch_add(1, Ordering::Relaxed);
        let (sender, inbox) = mpsc::channel(INBOX);
        let missed = Arc::new(AtomicBool::new(false));
        shared.receiver.watch(
            &room.alias,
            Inbox {
                sender,
                missed: missed.clone(),
                id,
            },
        );
        Ok(Arc::new(TencentLink {
            shared: shared.clone(),
            room: room.alias.clone(),
            id,
            tracker: Mutex::new(Tracker::new(&room.alias, &shared.admin)),
            inbox: Mutex::new(Some(inbox)),
            missed,
            reconcile_wanted: Notify::new(),
        }))
    }
}

impl Platform for Tencent {
    fn kind(&self) -> PlatformKind {
        PlatformKind::Tencent
    }

    fn connect<'a>(
        &'a self,
        room: &'a RoomAddress,
    ) -> BoxFuture<'a, Result<Arc<dyn RoomLink>, ConnectError>> {
        async move {
            let link = self.connect_room(room).await?;
            Ok(link as Arc<dyn RoomLink>)
        }
        .boxed()
    }

    fn webhook(&self, request: WebhookRequest) -> BoxFuture<'_, WebhookReply> {
        let reply = self.shared.receiver.handle(&request);
        Box::pin(std::future::ready(reply))
    }
}

/// A watched Tencent room.
pub struct TencentLink {
    shared: Arc<Shared>,
    room: String,
    id: u64,
    tracker: Mutex<Tracker>,
    inbox: Mutex<Option<mpsc::Receiver<Box<Callback>>>>,
    missed: Arc<AtomicBool>,
    reconcile_wanted: Notify,
}

impl TencentLink {
    fn take_inbox(&self) -> Option<mpsc::Receiver<Box<Callback>>> {
        self.inbox
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take()
    }

    fn tracker(&self) -> MutexGuard<'_, Tracker> {
        self.tracker
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn rest(&self) -> &Rest {
        &self.shared.rest
    }

    fn room(&self) -> &str {
        &self.room
    }

    fn feed_options(&self) -> FeedOptions {
        self.shared.feed
    }

    fn reconcile_every(&self) -> Duration {
        self.shared.reconcile_every
    }

    /// The room's callback counters: applied, duplicates, stale, reconciles.
    pub fn tracker_stats(&self) -> tracker::TrackerStats {
        self.tracker().stats()
    }

    /// The seat `account` sits on, as the room's callbacks and listings
    /// say.
    pub fn seat_of(&self, account: &str) -> Option<tracker::SeatView> {
        self.tracker().seat_of(account)
    }

    /// Bans `account` from the room for `duration` (`ban_room_member`):
    /// removes them if present and keeps them out until it ends.
    pub async fn ban(&self, account: &str, duration: Duration, reason: &str) -> SendOutcome {
        let body = json!({
            "RoomId": self.room,
            "MemberList_Account": [account],
            "Reason": reason,
            "Duration": duration.as_secs().max(1),
        });
        outcome(self.rest().call(wire::BAN_ROOM_MEMBER, &body).await)
    }

    async fn carry_out(&self, command: &Command) -> SendOutcome {
        let room = self.room.as_str();
        match command {
            Command::Conference(ConferenceCommand::MuteGuests) => self.room_audio(true).await,
            Command::Conference(ConferenceCommand::UnmuteGuests) => self.room_audio(false).await,
            Command::Conference(ConferenceCommand::Disconnect) => outcome(
                self.rest()
                    .call(wire::DESTROY_ROOM, &json!({"RoomId": room}))
                    .await,
            ),
            Command::Participant {
                target,
                action: ParticipantCommand::Disconnect,
            } => outcome(
                self.rest()
                    .call(
                        wire::KICK_USER_OUT,
                        &json!({
                            "RoomId": room,
                            "MemberList_Account": [target.uuid],
                            "Reason": KICK_REASON,
                        }),
                    )
                    .await,
            ),
            Command::Participant {
                target,
                action: ParticipantCommand::Ban { seconds },
            } => {
                self.ban(&target.uuid, Duration::from_secs(*seconds), KICK_REASON)
                    .await
            }
            Command::Participant {
                target,
                action: ParticipantCommand::SetRole(role @ (Role::Chair | Role::Guest)),
            } => {
                let word = if *role == Role::Chair {
                    "Admin"
                } else {
                    "Member"
                };
                let body = json!({
                    "RoomId": room,
                    "MemberInfo": {"Member_Account": target.uuid, "Role": word},
                });
                let done = outcome(self.rest().call(wire::UPDATE_ROOM_MEMBER_INFO, &body).await);
                if done == SendOutcome::Done {
                    // No callback reports a role: the member list will.
                    self.reconcile_wanted.notify_one();
                }
                done
            }
            Command::Participant {
                target,
                action: action @ (ParticipantCommand::Mute | ParticipantCommand::Unmute),
            } => {
                self.mute_one(
                    &target.uuid,
                    &target.name,
                    *action == ParticipantCommand::Mute,
                )
                .await
            }
            other => SendOutcome::Unsupported(format!(
                "Tencent rooms cannot {}",
                other.verb().replace('_', " ")
            )),
        }
    }

    /// Mutes or unmutes one member through their seat: locks or unlocks
    /// the seat's microphone. A member who has just entered a room whose
    /// free seats are taken as people arrive (`FreeToTake`) is given a
    /// moment to sit; a member without a seat cannot be muted alone.
    async fn mute_one(&self, account: &str, name: &str, muted: bool) -> SendOutcome {
        let deadline = tokio::time::Instant::now() + inferred::SEAT_MAY_FOLLOW;
        let (enabled, seat) = loop {
            let (enabled, seat, may_sit) = {
                let tracker = self.tracker();
                let seat = tracker.seat_of(account);
                let may_sit = seat.is_none()
                    && tracker.seats_free_to_take()
                    && tracker.entered_within(account, inferred::SEAT_MAY_FOLLOW);
                (tracker.seats_enabled(), seat, may_sit)
            };
            if !may_sit || tokio::time::Instant::now() >= deadline {
                break (enabled, seat);
            }
            tokio::time::sleep(SEAT_POLL).await;
        };
        let Some(seat) = seat else {
            return SendOutcome::Unsupported(if enabled {
                format!(
                    "{name} has no seat: a Tencent room mutes one member only through their seat"
                )
            } else {
                "this Tencent room has no seats: it can mute only everyone at once".to_owned()
            });
        };
        let body = inferred::lock_seat_audio(
            &self.room,
            seat.index,
            seat.taken_disabled,
            seat.video_disabled,
            muted,
        );
        outcome(self.rest().call(wire::LOCK_SEAT, &body).await)
    }

    async fn room_audio(&self, disabled: bool) -> SendOutcome {
        let body = json!({"RoomInfo": {"RoomId": self.room, "IsAudioDisabled": disabled}});
        outcome(self.rest().call(wire::UPDATE_ROOM_INFO, &body).await)
    }
}

impl RoomLink for TencentLink {
    fn follow(
        self: Arc<Self>,
        feed: mpsc::Sender<Box<FeedItem>>,
        cancel: CancellationToken,
    ) -> BoxFuture<'static, ()> {
        feed::run(self, feed, cancel).boxed()
    }

    fn send<'a>(&'a self, command: &'a Command) -> BoxFuture<'a, SendOutcome> {
        self.carry_out(command).boxed()
    }

    fn stats(&self) -> LinkStats {
        self.shared.rest.sigs().stats()
    }

    fn close(self: Arc<Self>) -> BoxFuture<'static, ()> {
        self.shared.receiver.unwatch(&self.room, self.id);
        Box::pin(std::future::ready(()))
    }
}

/// A call's result as a command's outcome.
fn outcome(result: Result<Option<serde_json::Value>, RestError>) -> SendOutcome {
    match result {
        Ok(_) => SendOutcome::Done,
        Err(RestError::Transient {
            reason,
            retry_after,
            call,
        }) => SendOutcome::Retryable {
            reason: format!("{call}: {reason}"),
            retry_after,
        },
        Err(err) => SendOutcome::Refused(err.to_string()),
    }
}

/// How a failed check of the room reads at the boundary.
fn connect_error(err: &RestError) -> ConnectError {
    match err {
        RestError::NotFound { .. } => ConnectError::NotFound(err.to_string()),
        RestError::Refused { .. } => ConnectError::Refused(err.to_string()),
        RestError::Transient { .. } | RestError::Protocol { .. } => {
            ConnectError::Unavailable(err.to_string())
        }
    }
}
