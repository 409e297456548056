//! Agora conference rooms (`kind: agora`): REST commands, per-room
//! webhooks ordered by `sequence`, rosters reconciled from the user list.
//!
//! - [`config`]: the account's settings, and the rooms usher creates.
//! - [`wire`]: what Agora documents (seed 004, the webhook envelope).
//! - [`inferred`]: every path, field, number and spelling usher had to
//!   guess, each citing the reference; correct them there.
//! - [`auth`]: the API token (read again when refused) and the callback
//!   signature.
//! - [`rest`]: the REST calls and what their answers mean.
//! - [`booking`]: rooms created ahead for timetable sessions (`book_ahead`).
//! - [`callbacks`]: the webhook entry (verify, read, route) and the
//!   per-room [`callbacks::Sequencer`].
//! - [`decode`]: callbacks and listings to neutral events.
//!
//! [`Agora`] is the account; [`AgoraLink`] one room. A room's link
//! reconciles on connect (room query and user list: a roster snapshot),
//! then applies its callbacks in sequence order, and reconciles again
//! every `reconcile` interval and after every gap, so a lost callback
//! costs at most a late update, never a false join or leave.
//!
//! Commands ([`CAPABILITIES`]):
//!
//! | verb | call |
//! |---|---|
//! | `end` | `PUT …/rooms/{room}/states/3` (closed: everyone ejected) |
//! | `disconnect` | `POST …/rooms/{room}/users/{user}/exit` `{dirty: {state: 1, duration: rejoin_ban}}` |
//! | `mute` | `PUT …/rooms/{room}/streams` `{streams: [{streamUuid, audioState: 0}]}` |
//! | `ban` | the same exit, barred for the ban's duration |
//!
//! Everything else (lock, mute all, admit, spotlight, roles, chat, …) is
//! undocumented for Agora conference rooms and planned as unsupported.

pub mod auth;
pub mod booking;
pub mod callbacks;
pub mod config;
pub mod decode;
pub mod inferred;
pub mod rest;
pub mod wire;

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use url::Url;

pub use callbacks::{SequenceStats, WebhookStats};
pub use config::{AgoraConfig, CreateConfig};

use self::auth::{Token, WebhookKey};
use self::callbacks::{Inbound, Routes, Sequencer};
use self::decode::Roster;
use self::rest::{CallError, Created, Rest};
use super::http::HttpClients;
use super::{
    BuildContext, BuildError, Capabilities, CappedBackoff, ConnectError, DiscoveredRoom, Discovery,
    FeedItem, FeedOptions, LinkStats, Platform, PlatformKind, RoomAddress, RoomLink, Schedule,
    SendOutcome, WebhookReply, WebhookRequest,
};
use crate::clock::unix_now;
use crate::model::{Command, ConferenceCommand, Event, ParticipantCommand};

/// What Agora conference rooms can be asked to do.
pub const CAPABILITIES: Capabilities = Capabilities::new(&["end", "disconnect", "mute", "ban"]);

/// One Agora conference account.
pub struct Agora {
    account: Arc<Account>,
    config: AgoraConfig,
    key: Option<WebhookKey>,
    routes: Arc<Routes>,
    feed: FeedOptions,
    next_link: AtomicU64,
}

/// What the account's rooms share, and its room creation.
struct Account {
    name: String,
    rest: Arc<Rest>,
    discoveries: mpsc::UnboundedSender<Discovery>,
    /// `public_url` + `/hooks/<name>`.
    hook_url: Option<Url>,
    create: std::collections::BTreeMap<String, CreateConfig>,
    /// Rooms whose discovery was announced.
    announced: Mutex<HashSet<String>>,
    /// Rooms created (or found to exist) by this process.
    created: tokio::sync::Mutex<HashSet<String>>,
}

impl Agora {
    /// Sets the account up: reads its secrets and builds its HTTP client.
    /// Rooms listed under `create:` are created at once (in the
    /// background, retrying while the platform cannot be reached) and
    /// reported as discovered, so `discover:` entries can pick them up.
    pub fn new(config: &AgoraConfig, context: &BuildContext) -> Result<Agora, BuildError> {
        config.validate().map_err(BuildError::Config)?;
        let app_id = auth::read(
            "app_id",
            config.app_id.as_ref(),
            config.app_id_file.as_ref(),
        )
        .map_err(|err| BuildError::Config(err.to_string()))?;
        let token = Token::load(config.token.as_ref(), config.token_file.as_ref())
            .map_err(|err| BuildError::Config(err.to_string()))?;
        let key = match (&config.webhook_secret, &config.webhook_secret_file) {
            (None, None) => None,
            (source, file) => Some(WebhookKey::new(
                &auth::read("webhook_secret", source.as_ref(), file.as_ref())
                    .map_err(|err| BuildError::Config(err.to_string()))?,
            )),
        };
        if !config.create.is_empty() {
            match &context.public_url {
                None => {
                    return Err(BuildError::Config(
                        "rooms under `create:` need `webhooks.public_url`, where Agora sends their callbacks".to_owned(),
                    ));
                }
                Some(url) if url.scheme() != "https" => tracing::warn!(
                    "webhooks.public_url is not https; Agora takes only HTTPS webhook addresses"
                ),
                Some(_) => {}
            }
        }
        let http = HttpClients::new(config.http_options(context.rooms))?;
        let rest = Rest::new(
            http,
            config.url.0.clone(),
            &config.region,
            app_id,
            Arc::new(token),
        );
        let account = Arc::new(Account {
            name: context.name.clone(),
            rest: Arc::new(rest),
            discoveries: context.discoveries.clone(),
            hook_url: context
                .public_url
                .clone()
                .and_then(|url| hook_url(url, &context.name)),
            create: config.create.clone(),
            announced: Mutex::new(HashSet::new()),
            created: tokio::sync::Mutex::new(HashSet::new()),
        });
        if !config.create.is_empty() {
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => {
                    runtime.spawn(account.clone().create_all(context.feed));
                }
                Err(_) => tracing::warn!(
                    "no async runtime: rooms under `create:` are created when first connected"
                ),
            }
        }
        Ok(Agora {
            account,
            config: config.clone(),
            key,
            routes: Arc::new(Routes::default()),
            feed: context.feed,
            next_link: AtomicU64::new(0),
        })
    }

    /// The webhook endpoint's counters (refusals among them), for `/metrics`.
    pub fn webhook_stats(&self) -> WebhookStats {
        self.routes.stats()
    }

    /// Where this account's callbacks must be sent: `public_url` +
    /// `/hooks/<name>`.
    pub fn hook_url(&self) -> Option<Url> {
        self.account.hook_url.clone()
    }
}

/// `public_url` + `/hooks/<name>`.
fn hook_url(mut url: Url, name: &str) -> Option<Url> {
    url.path_segments_mut()
        .ok()?
        .pop_if_empty()
        .extend(["hooks", name]);
    Some(url)
}

impl Account {
    /// Creates every room under `create:`, and reports each.
    async fn create_all(self: Arc<Self>, pace: FeedOptions) {
        let builder = ExponentialBuilder::new()
            .with_min_delay(pace.min_backoff.max(Duration::from_secs(1)))
            .with_max_delay(pace.max_backoff.max(Duration::from_secs(60)))
            .with_jitter()
            .without_max_times();
        for room in self.create.keys() {
            let mut backoff = builder.build();
            loop {
                let made = match self.ensure_created(room).await {
                    Ok(()) => self.rest.room(room).await.map_err(connect_error),
                    Err(err) => Err(err),
                };
                match made {
                    Ok(info) => {
                        self.announce(room, &info.data);
                        break;
                    }
                    Err(ConnectError::Unavailable(why)) => {
                        let delay = backoff.next().unwrap_or(Duration::from_secs(60));
                        tracing::warn!(room = %room, error = %why, retry_in = ?delay, "cannot create the Agora room yet");
                        tokio::time::sleep(delay).await;
                    }
                    Err(err) => {
                        tracing::error!(room = %room, error = %err, "cannot create the Agora room");
                        break;
                    }
                }
            }
        }
    }

    /// Creates the room if the config lists it under `create:` and this
    /// process has not yet made sure it exists.
    async fn ensure_created(&self, room: &str) -> Result<(), ConnectError> {
        let Some(create) = self.create.get(room) else {
            return Ok(());
        };
        let mut created = self.created.lock().await;
        if created.contains(room) {
            return Ok(());
        }
        let hook = self.hook_url.as_ref().ok_or_else(|| {
            ConnectError::Refused("creating a room needs webhooks.public_url".to_owned())
        })?;
        let body = create_body(create, hook, unix_now());
        match self.rest.create_room(room, &body).await {
            Ok(answer) => {
                match answer.data {
                    Created::New => tracing::info!(room = %room, "created the Agora room"),
                    Created::Existed => {
                        tracing::info!(room = %room, "the Agora room exists already")
                    }
                }
                created.insert(room.to_owned());
                Ok(())
            }
            Err(err) => Err(connect_error(err)),
        }
    }

    /// Tells the runtime of a room and its schedule, once.
    fn announce(&self, room: &str, info: &inferred::RoomInfo) {
        let first = self
            .announced
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(room.to_owned());
        if !first {
            return;
        }
        let schedule = info
            .room_properties
            .schedule
            .and_then(|schedule| schedule.times())
            .map(|(start, end)| Schedule { start, end });
        let _ = self.discoveries.send(Discovery::Started(DiscoveredRoom {
            platform: self.name.clone(),
            alias: room.to_owned(),
            title: info.room_name.clone(),
            pin: None,
            schedule,
        }));
    }
}

/// Seed 004's create call for a configured room, webhooks to `hook`.
pub fn create_body(create: &CreateConfig, hook: &Url, now: f64) -> wire::CreateRoom {
    let enable = |flag: Option<bool>| flag.map(wire::Enable::from_flag);
    let security = wire::Security {
        share_screen: enable(create.share_screen),
        start_video: enable(create.start_video),
        start_audio: enable(create.start_audio),
        join_with_mute_audio: enable(create.join_muted),
    };
    let limit = |limit: Option<u64>| limit.map(|limit| wire::Limit { limit: Some(limit) });
    let roles = Some(wire::RoleConfig {
        cohost: limit(create.cohost_limit),
        participant: limit(create.participant_limit),
    })
    .filter(|roles| *roles != wire::RoleConfig::default());
    wire::CreateRoom {
        room_name: create.name.clone(),
        room_template: wire::ROOM_TEMPLATE.to_owned(),
        room_properties: Some(wire::RoomProperties {
            schedule: Some(create.schedule(now)),
            security: (security != wire::Security::default()).then_some(security),
            aimm: None,
            webhook_config: Some(wire::WebhookConfig {
                urls: vec![hook.to_string()],
                cmds: inferred::SUBSCRIBED_CMDS
                    .iter()
                    .map(|cmd| serde_json::Value::from(*cmd))
                    .collect(),
            }),
            role_config: roles.filter(|_| inferred::ROLE_CONFIG_IN_PROPERTIES),
        }),
        role_config: roles.filter(|_| !inferred::ROLE_CONFIG_IN_PROPERTIES),
    }
}

impl Platform for Agora {
    fn kind(&self) -> PlatformKind {
        PlatformKind::Agora
    }

    fn booker(&self) -> Option<&dyn super::booking::Booker> {
        Some(&*self.account)
    }

    fn connect<'a>(
        &'a self,
        room: &'a RoomAddress,
    ) -> BoxFuture<'a, Result<Arc<dyn RoomLink>, ConnectError>> {
        async move {
            let account = &self.account;
            account.ensure_created(&room.alias).await?;
            let info = account
                .rest
                .room(&room.alias)
                .await
                .map_err(connect_error)?;
            account.announce(&room.alias, &info.data);
            let id = self.next_link.fetch_add(1, Ordering::Relaxed);
            let (queue, inbound) = mpsc::channel(callbacks::QUEUE);
            self.routes.add(&room.alias, id, queue.clone());
            let link = AgoraLink {
                id,
                room: room.alias.clone(),
                platform: account.name.clone(),
                rest: account.rest.clone(),
                routes: self.routes.clone(),
                discoveries: account.discoveries.clone(),
                roster: Mutex::new(Roster::default()),
                queue,
                inbound: Mutex::new(Some(inbound)),
                first_state: info.data.state(),
                reconcile: self.config.reconcile.0,
                gap_hold: self.config.gap_hold.0,
                rejoin_ban: self.config.rejoin_ban.0,
                feed: self.feed,
                renewals: AtomicU64::new(0),
                sequence: Mutex::new(SequenceStats::default()),
            };
            if info.renewed {
                link.renewals.fetch_add(1, Ordering::Relaxed);
            }
            Ok(Arc::new(link) as Arc<dyn RoomLink>)
        }
        .boxed()
    }

    fn webhook(&self, request: WebhookRequest) -> BoxFuture<'_, WebhookReply> {
        let reply = self.routes.handle(self.key.as_ref(), &request);
        async move { reply }.boxed()
    }
}

/// One Agora room.
pub struct AgoraLink {
    id: u64,
    room: String,
    platform: String,
    rest: Arc<Rest>,
    routes: Arc<Routes>,
    discoveries: mpsc::UnboundedSender<Discovery>,
    roster: Mutex<Roster>,
    /// The room's queue, for usher's own confirmations.
    queue: mpsc::Sender<Inbound>,
    /// Taken by the one follower.
    inbound: Mutex<Option<mpsc::Receiver<Inbound>>>,
    /// The room's state when connected.
    first_state: Option<i64>,
    reconcile: Duration,
    gap_hold: Duration,
    rejoin_ban: Duration,
    feed: FeedOptions,
    renewals: AtomicU64,
    sequence: Mutex<SequenceStats>,
}

/// Why a follower stops.
struct Gone;

impl AgoraLink {
    /// What the room's sequencer did so far.
    pub fn sequence_stats(&self) -> SequenceStats {
        *self.sequence.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn roster(&self) -> std::sync::MutexGuard<'_, Roster> {
        self.roster.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn note_renewal<T>(&self, answer: &rest::Answer<T>) {
        if answer.renewed {
            self.renewals.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The room as the platform lists it now: a roster snapshot and the
    /// room's state.
    /// The room as the platform lists it now: a roster snapshot (on the
    /// first sync always, later only when it changes something) and the
    /// room's state.
    async fn reconcile_events(
        &self,
        state: Option<i64>,
        first: bool,
    ) -> Result<Vec<Event>, CallError> {
        let state = match state {
            Some(state) => Some(state),
            None => {
                let info = self.rest.room(&self.room).await?;
                self.note_renewal(&info);
                info.data.state()
            }
        };
        let users = self.rest.users(&self.room).await?;
        self.note_renewal(&users);
        let mut roster = self.roster();
        let before = roster.snapshot();
        let listed = roster.replace(&users.data);
        let mut events = Vec::new();
        if first || listed != before {
            events.push(listed);
        }
        if let Some(state) = state {
            let decoded = roster.room_state(state);
            self.note_close(&decoded);
            events.extend(
                decoded
                    .events
                    .into_iter()
                    .filter(|e| !matches!(e, Event::Roster(_))),
            );
        }
        Ok(events)
    }

    /// Reports the end of a room that closed now.
    fn note_close(&self, decoded: &decode::Decoded) {
        if decoded.closed {
            let _ = self.discoveries.send(Discovery::Ended {
                platform: self.platform.clone(),
                alias: self.room.clone(),
            });
        }
    }

    /// The stream of a user's microphone: as the roster knows it, or as
    /// the platform lists it (a command may come before the first listing).
    async fn stream_of(&self, user: &str) -> Result<Option<String>, CallError> {
        if let Some(stream) = self.roster().stream_of(user) {
            return Ok(Some(stream.to_owned()));
        }
        let users = self.rest.users(&self.room).await?;
        self.note_renewal(&users);
        Ok(users
            .data
            .into_iter()
            .find(|listed| listed.user_uuid == user)
            .map(|listed| listed.stream_uuid)
            .filter(|stream| !stream.is_empty()))
    }

    async fn emit(feed: &mpsc::Sender<Box<FeedItem>>, events: Vec<Event>) -> Result<(), Gone> {
        for event in events {
            feed.send(Box::new(FeedItem::Event(event)))
                .await
                .map_err(|_| Gone)?;
        }
        Ok(())
    }

    /// Applies callbacks in order; true when the room should resync.
    async fn apply(
        &self,
        feed: &mpsc::Sender<Box<FeedItem>>,
        callbacks: Vec<wire::Callback>,
    ) -> Result<(), Gone> {
        for callback in callbacks {
            let decoded = self.roster().decode(&callback);
            match decoded {
                Ok(decoded) => {
                    self.note_close(&decoded);
                    Self::emit(feed, decoded.events).await?;
                }
                Err(err) => {
                    tracing::warn!(sequence = ?callback.sequence, error = %err, "skipping an Agora callback whose data cannot be read");
                }
            }
        }
        Ok(())
    }

    /// Late callbacks: chat is still news; anything else asks for a resync.
    async fn apply_late(
        &self,
        feed: &mpsc::Sender<Box<FeedItem>>,
        late: Vec<wire::Callback>,
    ) -> Result<bool, Gone> {
        let mut resync = false;
        for callback in late {
            if callback.cmd == inferred::cmd::CHAT {
                self.apply(feed, vec![callback]).await?;
            } else {
                tracing::debug!(sequence = ?callback.sequence, cmd = callback.cmd, "a late callback; resyncing instead");
                resync = true;
            }
        }
        Ok(resync)
    }

    async fn run(
        self: &Arc<Self>,
        feed: mpsc::Sender<Box<FeedItem>>,
        cancel: CancellationToken,
    ) -> Result<(), Gone> {
        let Some(mut inbound) = self
            .inbound
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        else {
            tracing::error!("an Agora room link was followed twice");
            return Ok(());
        };
        let builder = CappedBackoff::new(self.feed.min_backoff, self.feed.max_backoff);
        let mut backoff = builder.start();
        // The first sync: the room is "connected" once it is listed.
        let mut state = self.first_state;
        loop {
            match self.reconcile_events(state.take(), true).await {
                Ok(events) => {
                    feed.send(Box::new(FeedItem::Connected))
                        .await
                        .map_err(|_| Gone)?;
                    Self::emit(&feed, events).await?;
                    break;
                }
                Err(err) => {
                    let retry_in = backoff.next().unwrap_or(self.feed.max_backoff);
                    tracing::warn!(error = %err, retry_in = ?retry_in, "cannot list the Agora room");
                    let down = FeedItem::Disconnected {
                        reason: err.to_string(),
                        retry_in,
                    };
                    feed.send(Box::new(down)).await.map_err(|_| Gone)?;
                    tokio::select! {
                        _ = cancel.cancelled() => return Ok(()),
                        _ = tokio::time::sleep(retry_in) => {}
                    }
                }
            }
        }
        backoff = builder.start();
        let mut sequencer = Sequencer::new(self.gap_hold);
        let mut next_reconcile = Instant::now() + self.reconcile;
        loop {
            let gap_due = sequencer.due();
            let mut resync = false;
            tokio::select! {
                _ = cancel.cancelled() => return Ok(()),
                item = inbound.recv() => match item {
                    None => return Ok(()),
                    Some(Inbound::Muted { user }) => {
                        let event = self.roster().muted(&user);
                        Self::emit(&feed, event.into_iter().collect()).await?;
                    }
                    Some(Inbound::Callback(callback)) => {
                        let released = sequencer.take(callback, Instant::now());
                        self.apply(&feed, released.in_order).await?;
                        resync = self.apply_late(&feed, released.late).await?;
                    }
                },
                _ = sleep_until(gap_due), if gap_due.is_some() => {
                    let gaps = sequencer.stats().gaps;
                    let released = sequencer.give_up(Instant::now());
                    if sequencer.stats().gaps > gaps {
                        tracing::info!(hold = ?self.gap_hold, "Agora callbacks are missing; resyncing without them");
                    }
                    self.apply(&feed, released).await?;
                    resync = true;
                }
                _ = tokio::time::sleep_until(next_reconcile) => resync = true,
            }
            *self.sequence.lock().unwrap_or_else(PoisonError::into_inner) = sequencer.stats();
            if resync {
                match self.reconcile_events(None, false).await {
                    Ok(events) => {
                        backoff = builder.start();
                        next_reconcile = Instant::now() + self.reconcile;
                        Self::emit(&feed, events).await?;
                    }
                    Err(err) => {
                        let retry_in = backoff.next().unwrap_or(self.feed.max_backoff);
                        tracing::warn!(error = %err, retry_in = ?retry_in, "cannot reconcile the Agora room's roster");
                        next_reconcile = Instant::now() + retry_in.min(self.reconcile);
                    }
                }
            }
        }
    }
}

async fn sleep_until(due: Option<Instant>) {
    match due {
        Some(due) => tokio::time::sleep_until(due).await,
        None => std::future::pending().await,
    }
}

impl RoomLink for AgoraLink {
    fn follow(
        self: Arc<Self>,
        feed: mpsc::Sender<Box<FeedItem>>,
        cancel: CancellationToken,
    ) -> BoxFuture<'static, ()> {
        async move {
            let _ = self.run(feed, cancel).await;
        }
        .boxed()
    }

    fn send<'a>(&'a self, command: &'a Command) -> BoxFuture<'a, SendOutcome> {
        async move {
            let result = match command {
                Command::Conference(ConferenceCommand::Disconnect) => {
                    match self.rest.set_state(&self.room, inferred::END_STATE).await {
                        Err(CallError::Refused {
                            code: inferred::code::ALREADY_ENDED,
                            ..
                        }) => Ok(()),
                        other => other.map(|answer| self.note_renewal(&answer)),
                    }
                }
                Command::Participant {
                    target,
                    action: ParticipantCommand::Disconnect,
                } => self
                    .rest
                    .exit(&self.room, &target.uuid, self.rejoin_ban)
                    .await
                    .map(|answer| self.note_renewal(&answer)),
                Command::Participant {
                    target,
                    action: ParticipantCommand::Ban { seconds },
                } => self
                    .rest
                    .exit(&self.room, &target.uuid, Duration::from_secs(*seconds))
                    .await
                    .map(|answer| self.note_renewal(&answer)),
                Command::Participant {
                    target,
                    action: ParticipantCommand::Mute,
                } => {
                    let stream = match self.stream_of(&target.uuid).await {
                        Ok(Some(stream)) => stream,
                        Ok(None) => {
                            return SendOutcome::Refused(format!(
                                "{} is not in the Agora room, or has no stream",
                                target.name
                            ));
                        }
                        Err(err) => return outcome(err),
                    };
                    let body = inferred::StreamsBody {
                        streams: vec![inferred::StreamState {
                            stream_uuid: stream,
                            audio_state: Some(inferred::AUDIO_MUTED),
                            video_state: None,
                        }],
                    };
                    let result = self.rest.streams(&self.room, &body).await;
                    if let Ok(answer) = &result {
                        self.note_renewal(answer);
                        // Agora sends no callback for a stream change; its
                        // answer is the confirmation.
                        let _ = self
                            .queue
                            .send(Inbound::Muted {
                                user: target.uuid.clone(),
                            })
                            .await;
                    }
                    result.map(|_| ())
                }
                other => {
                    return SendOutcome::Unsupported(format!(
                        "Agora conference rooms cannot {}",
                        other.verb()
                    ));
                }
            };
            match result {
                Ok(()) => SendOutcome::Done,
                Err(err) => outcome(err),
            }
        }
        .boxed()
    }

    fn stats(&self) -> LinkStats {
        LinkStats {
            renewals: self.renewals.load(Ordering::Relaxed),
            ..LinkStats::default()
        }
    }

    fn close(self: Arc<Self>) -> BoxFuture<'static, ()> {
        async move { self.routes.remove(&self.room, self.id) }.boxed()
    }
}

/// How a failed command reads at the boundary.
fn outcome(err: CallError) -> SendOutcome {
    match err {
        CallError::Retryable {
            reason,
            retry_after,
            call,
        } => SendOutcome::Retryable {
            reason: format!("{call}: {reason}"),
            retry_after,
        },
        err => SendOutcome::Refused(err.to_string()),
    }
}

/// How a failed call reads when connecting.
fn connect_error(err: CallError) -> ConnectError {
    match err {
        CallError::Unauthorized { .. } | CallError::Refused { .. } => {
            ConnectError::Refused(err.to_string())
        }
        CallError::NotFound { .. } => ConnectError::NotFound(err.to_string()),
        CallError::Retryable { .. } => ConnectError::Unavailable(err.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_configured_room_is_created_with_seed_004s_call() {
        let create: CreateConfig = crate::yaml::from_str(
            "{ name: Physics 101, start: \"2026-11-23T09:00:00+08:00\", duration: 90m, close_delay: 10m, join_muted: true, participant_limit: 200 }",
        )
        .unwrap();
        let hook = Url::parse("https://usher.example.com/hooks/ag").unwrap();
        let body = serde_json::to_value(create_body(&create, &hook, 0.0)).unwrap();
        assert_eq!(
            body,
            serde_json::json!({
                "roomName": "Physics 101",
                "roomTemplate": "conf_finity_v1",
                "roomProperties": {
                    "schedule": {"startTime": 1_795_395_600_000u64, "duration": 5400, "closeDelay": 600},
                    "security": {"joinWithMuteAudio": {"enable": 1}},
                    "webhookConfig": {"urls": ["https://usher.example.com/hooks/ag"], "cmds": [1, 3, 20]},
                    "roleConfig": {"participant": {"limit": 200}}
                }
            })
        );
        let read: wire::CreateRoom = serde_json::from_value(body).unwrap();
        assert_eq!(read.roles().unwrap().participant.unwrap().limit, Some(200));
    }

    #[test]
    fn hooks_are_under_the_public_url() {
        let at = |base: &str| {
            hook_url(Url::parse(base).unwrap(), "ag")
                .unwrap()
                .to_string()
        };
        assert_eq!(
            at("https://usher.example.com"),
            "https://usher.example.com/hooks/ag"
        );
        assert_eq!(
            at("https://example.com/usher/"),
            "https://example.com/usher/hooks/ag"
        );
    }
}
