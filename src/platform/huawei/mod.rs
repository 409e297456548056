//! Huawei Cloud Meeting (`kind: huawei`; seeds 000 and 002, reference §1).
//!
//! - [`config`]: the account's settings and secrets.
//! - [`wire`]: paths, headers, bodies, push frames and signatures, shared
//!   with the simulator.
//! - [`inferred`]: every fact the reference could not verify, in one place.
//! - [`rest`]: REST calls and what their failures mean.
//! - [`auth`]: the access token, the meeting's control token and the
//!   one-shot socket token, each kept fresh.
//! - [`socket`]: the meeting WebSocket as a supervised event feed.
//! - [`decode`]: pushes to neutral events (merging incremental participant
//!   pushes into whole participants).
//! - [`webhook`]: the enterprise webhook, for discovery.
//! - [`booking`]: meetings booked ahead for timetable sessions (`book_ahead`).
//!
//! [`Huawei`] and [`HuaweiLink`] put them behind the platform boundary.
//!
//! Verbs (see [`CAPABILITIES`]): `mute`/`unmute` (participants/mute),
//! `mute_guests`/`unmute_guests` (mute), `lock`/`unlock` (lock), `admit`
//! (allowWaitingParticipant), `disconnect` (participants/delete: a hang-up;
//! they may rejoin unless the room is locked), `spotlight` (broadcast),
//! `unspotlight` (cancelBroadcast), `make_host` (co-host), `make_guest`
//! (co-host off, or releasing the host role), `end` (stop). Huawei has no
//! server-side chat, no seed-001 layouts, no DTMF, no transfer: those are
//! not capabilities.
//!
//! Roles: the host (`ROLE` "1") and co-hosts are [`crate::model::Role::Chair`];
//! participants ("0") and the audience ("2") are guests.

pub mod auth;
pub mod booking;
pub mod config;
pub mod decode;
pub mod inferred;
pub mod rest;
pub mod socket;
pub mod webhook;
pub mod wire;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use config::HuaweiConfig;

use self::auth::{AccessAuth, ControlAuth};
use self::decode::Decoder;
use self::rest::{Auth, CallError, Rest};
use self::webhook::{Callback, Webhook};
use self::wire::{ConferenceInfo, ControlCall};
use super::http::HttpClients;
use super::{
    BuildContext, BuildError, Capabilities, ConnectError, DiscoveredRoom, Discovery, FeedItem,
    FeedOptions, LinkStats, Platform, PlatformKind, RoomAddress, RoomLink, Schedule, SendOutcome,
    WebhookReply, WebhookRequest,
};
use crate::model::{Command, ConferenceCommand, ParticipantCommand, Role, Secret};

/// What Huawei's control API can do.
pub const CAPABILITIES: Capabilities = Capabilities::new(&[
    "lock",
    "unlock",
    "mute_guests",
    "unmute_guests",
    "end",
    "disconnect",
    "mute",
    "unmute",
    "spotlight",
    "unspotlight",
    "admit",
    "make_host",
    "make_guest",
]);

/// How long the keeper waits after a failed keep-alive.
const KEEPER_RETRY: Duration = Duration::from_secs(5);

/// One Huawei Cloud Meeting account.
pub struct Huawei {
    name: String,
    access: Arc<AccessAuth>,
    webhook: Webhook,
    discoveries: mpsc::UnboundedSender<Discovery>,
    heartbeat: Duration,
    connect_timeout: Duration,
    feed: FeedOptions,
}

impl Huawei {
    /// Sets the account up: reads its secrets, builds its HTTP client.
    /// Nothing is sent until a room connects.
    pub fn new(config: &HuaweiConfig, context: &BuildContext) -> Result<Huawei, BuildError> {
        let resolved = config.resolve().map_err(BuildError::Config)?;
        let http = HttpClients::new(config.http_options(context.rooms))?;
        let rest = Rest::new(http.rest().clone(), config.url.0.clone());
        Ok(Huawei {
            name: context.name.clone(),
            access: Arc::new(AccessAuth::new(rest, resolved.login)),
            webhook: Webhook::new(resolved.webhook_secret),
            discoveries: context.discoveries.clone(),
            heartbeat: config.heartbeat.0,
            connect_timeout: config.timeouts.connect.0,
            feed: context.feed,
        })
    }

    /// Webhook callbacks refused so far (for `/metrics`).
    pub fn webhook_refusals(&self) -> u64 {
        self.webhook.refusals()
    }

    /// The chair password from a meeting's details.
    async fn chair_password(&self, conference: &str) -> Result<Secret, ConnectError> {
        let details = meeting_details(&self.access, conference)
            .await
            .map_err(|err| connect_error(&err))?;
        chair_password(&details).ok_or_else(|| {
            ConnectError::Refused(format!(
                "meeting {conference}'s details carry no chair password; give the room a `pin` (its chair password)"
            ))
        })
    }
}

/// A meeting's details over the management API, with the account's
/// access token.
async fn meeting_details(
    access: &AccessAuth,
    conference: &str,
) -> Result<ConferenceInfo, CallError> {
    let query = [("conferenceID", conference)];
    let rest = access.rest();
    let reply: wire::ConfDetailReply = access
        .with_token(|token| async move {
            rest.call_json(
                "confDetail",
                reqwest::Method::GET,
                wire::CONF_DETAIL_PATH,
                &query,
                Auth {
                    access: Some(&token),
                    ..Auth::default()
                },
                None,
            )
            .await
        })
        .await?;
    Ok(reply.conference_data)
}

/// The `chair` entry of a meeting's passwords.
fn chair_password(details: &ConferenceInfo) -> Option<Secret> {
    details
        .password_entry
        .iter()
        .find(|entry| entry.conference_role.eq_ignore_ascii_case("chair"))
        .map(|entry| Secret::new(entry.password.clone()))
        .filter(|password| !password.is_empty())
}

/// A meeting's schedule from its details (`YYYY-MM-DD HH:MM`, UTC).
fn schedule(details: &ConferenceInfo) -> Option<Schedule> {
    let parse = |text: &str| crate::clock::parse_timestamp(&format!("{}Z", text.trim())).ok();
    Some(Schedule {
        start: parse(&details.start_time)?,
        end: parse(&details.end_time),
    })
}

impl Platform for Huawei {
    fn kind(&self) -> PlatformKind {
        PlatformKind::Huawei
    }

    fn booker(&self) -> Option<&dyn super::booking::Booker> {
        Some(&*self.access)
    }

    fn connect<'a>(
        &'a self,
        room: &'a RoomAddress,
    ) -> BoxFuture<'a, Result<Arc<dyn RoomLink>, ConnectError>> {
        async move {
            self.access
                .token()
                .await
                .map_err(|err| connect_error(&err))?;
            let password = match &room.pin {
                Some(pin) if !pin.is_empty() => pin.clone(),
                _ => self.chair_password(&room.alias).await?,
            };
            let control = Arc::new(ControlAuth::new(self.access.clone(), &room.alias, password));
            Ok(Arc::new(HuaweiLink {
                control,
                decoder: Arc::new(Mutex::new(Decoder::new(&room.alias))),
                heartbeat: self.heartbeat,
                connect_timeout: self.connect_timeout,
                feed: self.feed,
            }) as Arc<dyn RoomLink>)
        }
        .boxed()
    }

    fn webhook(&self, request: WebhookRequest) -> BoxFuture<'_, WebhookReply> {
        async move {
            match self.webhook.check(&request) {
                Err(refused) => refused,
                Ok(Callback::Answer(reply)) => reply,
                Ok(Callback::Ended { meeting }) => {
                    webhook::report_end(&self.discoveries, &self.name, meeting);
                    webhook::empty()
                }
                Ok(Callback::Started { meeting }) => {
                    let discovery = Discovery::Started(DiscoveredRoom {
                        platform: self.name.clone(),
                        alias: meeting.clone(),
                        title: meeting.clone(),
                        pin: None,
                        schedule: None,
                    });
                    let lookup = self.discovered(meeting, discovery);
                    tokio::spawn(lookup);
                    webhook::empty()
                }
            }
        }
        .boxed()
    }
}

impl Huawei {
    /// Completes a discovered meeting with its details and reports it; if
    /// the details cannot be read, reports what the webhook said.
    fn discovered(&self, meeting: String, fallback: Discovery) -> BoxFuture<'static, ()> {
        let access = self.access.clone();
        let discoveries = self.discoveries.clone();
        let name = self.name.clone();
        async move {
            let discovery = match meeting_details(&access, &meeting).await {
                Ok(details) => Discovery::Started(DiscoveredRoom {
                    platform: name,
                    title: if details.subject.is_empty() {
                        meeting.clone()
                    } else {
                        details.subject.clone()
                    },
                    pin: chair_password(&details),
                    schedule: schedule(&details),
                    alias: meeting,
                }),
                Err(err) => {
                    tracing::warn!(meeting = %meeting, error = %err, "cannot read a started meeting's details; reporting it by id alone");
                    fallback
                }
            };
            tracing::info!("the platform says a meeting started");
            let _ = discoveries.send(discovery);
        }
        .boxed()
    }
}

/// One Huawei meeting: its control token and its socket feed.
pub struct HuaweiLink {
    control: Arc<ControlAuth>,
    decoder: Arc<Mutex<Decoder>>,
    heartbeat: Duration,
    connect_timeout: Duration,
    feed: FeedOptions,
}

impl HuaweiLink {
    fn lock(&self) -> std::sync::MutexGuard<'_, Decoder> {
        self.decoder
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Keeps the control token alive halfway through its life, for as long
    /// as there is one.
    async fn keep_fresh(control: Arc<ControlAuth>, cancel: CancellationToken) {
        loop {
            let due = control.due().await;
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = control.obtained() => continue,
                _ = sleep_until(due) => {}
            }
            if control
                .due()
                .await
                .is_some_and(|due| due <= tokio::time::Instant::now())
            {
                match control.keep_alive().await {
                    Ok(()) => tracing::debug!("control token kept alive"),
                    Err(err) => {
                        tracing::warn!(error = %err, "could not keep the control token alive");
                        tokio::select! {
                            _ = cancel.cancelled() => return,
                            _ = tokio::time::sleep(KEEPER_RETRY) => {}
                        }
                    }
                }
            }
        }
    }

    /// The calls that carry out `command`, or why it cannot be done.
    fn calls(&self, command: &Command) -> Result<Vec<ControlCall>, String> {
        let call = match command {
            Command::Conference(command) => match command {
                ConferenceCommand::Lock => ControlCall::Lock { lock: true },
                ConferenceCommand::Unlock => ControlCall::Lock { lock: false },
                ConferenceCommand::MuteGuests => ControlCall::MuteAll { mute: true },
                ConferenceCommand::UnmuteGuests => ControlCall::MuteAll { mute: false },
                ConferenceCommand::Disconnect => ControlCall::Stop,
                other => return Err(format!("Huawei Cloud Meeting cannot `{}`", other.verb())),
            },
            Command::Participant { target, action } => {
                let pid = target.uuid.clone();
                match action {
                    ParticipantCommand::Mute => ControlCall::Mute { pid, mute: true },
                    ParticipantCommand::Unmute => ControlCall::Mute { pid, mute: false },
                    ParticipantCommand::Admit => ControlCall::Admit { pid },
                    ParticipantCommand::Disconnect => ControlCall::HangUp { pid },
                    ParticipantCommand::SpotlightOn => ControlCall::Broadcast { pid },
                    ParticipantCommand::SpotlightOff => ControlCall::CancelBroadcast,
                    ParticipantCommand::SetRole(Role::Chair) => {
                        ControlCall::Cohost { pid, on: true }
                    }
                    ParticipantCommand::SetRole(Role::Guest)
                        if inferred::RELEASE_ANOTHERS_HOST_ROLE
                            && self.lock().holds_host_role(&pid) =>
                    {
                        ControlCall::Chair { pid, apply: false }
                    }
                    ParticipantCommand::SetRole(Role::Guest) => {
                        ControlCall::Cohost { pid, on: false }
                    }
                    other => return Err(format!("Huawei Cloud Meeting cannot `{}`", other.verb())),
                }
            }
        };
        Ok(vec![call])
    }
}

impl RoomLink for HuaweiLink {
    fn follow(
        self: Arc<Self>,
        feed: mpsc::Sender<Box<FeedItem>>,
        cancel: CancellationToken,
    ) -> BoxFuture<'static, ()> {
        async move {
            let keeper = HuaweiLink::keep_fresh(self.control.clone(), cancel.clone());
            let context = socket::FeedContext {
                control: self.control.clone(),
                decoder: self.decoder.clone(),
                heartbeat: self.heartbeat,
                connect_timeout: self.connect_timeout,
            };
            let feeding = socket::run_feed(context, feed, cancel.clone(), self.feed);
            tokio::select! {
                _ = keeper => {}
                _ = feeding => {}
            }
        }
        .boxed()
    }

    fn send<'a>(&'a self, command: &'a Command) -> BoxFuture<'a, SendOutcome> {
        async move {
            let calls = match self.calls(command) {
                Ok(calls) => calls,
                Err(why) => return SendOutcome::Unsupported(why),
            };
            let conference = self.control.conference();
            let rest = self.control.access().rest();
            for call in &calls {
                let sent = self
                    .control
                    .with_token(|token| async move { rest.control(conference, &token, call).await })
                    .await;
                if let Err(err) = sent {
                    return match err {
                        CallError::Retryable {
                            reason,
                            retry_after,
                            call,
                        } => SendOutcome::Retryable {
                            reason: format!("{call}: {reason}"),
                            retry_after,
                        },
                        other => SendOutcome::Refused(other.to_string()),
                    };
                }
            }
            SendOutcome::Done
        }
        .boxed()
    }

    fn stats(&self) -> LinkStats {
        self.control.stats()
    }

    fn close(self: Arc<Self>) -> BoxFuture<'static, ()> {
        // usher is no participant of a Huawei meeting: nothing to leave.
        async move { self.control.forget().await }.boxed()
    }
}

async fn sleep_until(due: Option<tokio::time::Instant>) {
    match due {
        Some(due) => tokio::time::sleep_until(due).await,
        None => std::future::pending().await,
    }
}

/// How a failed call reads at the boundary.
fn connect_error(err: &CallError) -> ConnectError {
    match err {
        CallError::Expired { .. } | CallError::Refused { .. } => {
            ConnectError::Refused(err.to_string())
        }
        CallError::Retryable { .. } | CallError::Protocol { .. } => {
            ConnectError::Unavailable(err.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::command::VERBS;

    #[test]
    fn capabilities_are_known_verbs_and_leave_out_what_huawei_cannot_do() {
        for verb in CAPABILITIES.verbs() {
            assert!(VERBS.contains(&verb), "{verb}");
        }
        for missing in ["message", "layout", "dtmf", "transfer", "dial"] {
            assert!(!CAPABILITIES.supports_verb(missing), "{missing}");
        }
    }

    #[test]
    fn schedules_read_the_management_format() {
        let details = ConferenceInfo {
            start_time: "2026-11-22 06:00".into(),
            end_time: "2026-11-22 07:30".into(),
            ..ConferenceInfo::default()
        };
        let schedule = schedule(&details).unwrap();
        assert_eq!(schedule.end.unwrap() - schedule.start, 5400.0);
        assert!(super::schedule(&ConferenceInfo::default()).is_none());
    }
}
