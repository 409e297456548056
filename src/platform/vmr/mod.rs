//! The primary platform: the seed-001 in-meeting REST API and its event
//! stream (`kind: vmr`).
//!
//! - [`config`]: the platform's settings.
//! - [`wire`]: paths, bodies and replies, shared with the simulator.
//! - [`codec`]: event-stream frames to neutral events and back.
//! - [`client`]: the REST calls of one room ([`RoomClient`]), stateless.
//! - [`session`]: the token lifecycle ([`Session`]): refresh, renewal on 403,
//!   `end_session`.
//! - [`events`]: one connection to the event stream.
//! - [`sse`]: the event-stream decoder, with caps on lines and events.
//! - [`feed`]: the supervised stream of a room ([`run_feed`]), reconnecting
//!   with backoff and turning the sync bracket into a roster.
//! - [`check_join`]: finding the meeting node for a conference.
//!
//! [`Vmr`] and [`VmrLink`] put them behind the platform boundary.

pub mod check_join;
pub mod client;
pub mod codec;
pub mod config;
pub mod error;
pub mod events;
pub mod feed;
pub mod session;
pub mod sse;
mod stage_json;
pub mod wire;

use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use url::Url;

pub use check_join::{check_join, node_url};
pub use client::RoomClient;
pub use config::{CheckJoinConfig, VmrConfig};
pub use error::ClientError;
pub use feed::run_feed;
pub use session::{Credentials, Session};

use super::http::HttpClients;
use super::{
    BuildContext, BuildError, Capabilities, ConnectError, FeedItem, FeedOptions, LinkStats,
    Platform, PlatformKind, RoomAddress, RoomLink, SendOutcome, StreamHealth,
};
use crate::model::Command;

/// Every verb but `ban`: seed 001 can disconnect someone, not keep them out.
pub const CAPABILITIES: Capabilities = Capabilities::all_but(&["ban"]);

/// One seed-001 platform account.
pub struct Vmr {
    config: VmrConfig,
    http: HttpClients,
    feed: FeedOptions,
}

impl Vmr {
    /// Sets up the platform.
    pub fn new(config: &VmrConfig, context: &BuildContext) -> Result<Vmr, BuildError> {
        Ok(Vmr {
            http: HttpClients::new(config.http_options(context.rooms))?,
            config: config.clone(),
            feed: context.feed,
        })
    }

    /// The meeting node for a room: the configured one, or `checkJoin`'s answer.
    async fn node_for(&self, room: &RoomAddress) -> Result<Url, ConnectError> {
        if let Some(url) = &self.config.url {
            return Ok(url.0.clone());
        }
        let Some(lookup) = &self.config.check_join else {
            return Err(ConnectError::Refused(
                "the platform names neither a node url nor check_join".to_owned(),
            ));
        };
        let api = &lookup.api_server.0;
        let found = check_join(
            self.http.rest(),
            api,
            &room.alias,
            room.pin.as_ref(),
            &self.config.display_name,
        )
        .await
        .map_err(|err| connect_error(&err))?;
        node_url(api, &found.mcu_host).map_err(|err| {
            ConnectError::Unavailable(format!(
                "checkJoin named an unusable node {:?}: {err}",
                found.mcu_host
            ))
        })
    }
}

impl Platform for Vmr {
    fn kind(&self) -> PlatformKind {
        PlatformKind::Vmr
    }

    fn stall_bound(&self) -> Duration {
        self.config.timeouts.stream_idle.0
    }

    fn connect<'a>(
        &'a self,
        room: &'a RoomAddress,
    ) -> BoxFuture<'a, Result<Arc<dyn RoomLink>, ConnectError>> {
        async move {
            let node = self.node_for(room).await?;
            let client = RoomClient::new(&self.http, &node, &room.alias);
            let credentials = Credentials {
                pin: room.pin.clone(),
                display_name: self.config.display_name.clone(),
                hidden: self.config.hide,
            };
            let session = Session::open(client, credentials)
                .await
                .map_err(|err| connect_error(&err))?;
            Ok(Arc::new(VmrLink {
                session,
                feed: self.feed,
            }) as Arc<dyn RoomLink>)
        }
        .boxed()
    }
}

/// A room on a seed-001 platform: its session and event feed.
pub struct VmrLink {
    session: Arc<Session>,
    feed: FeedOptions,
}

impl RoomLink for VmrLink {
    fn follow(
        self: Arc<Self>,
        feed: mpsc::Sender<Box<FeedItem>>,
        cancel: CancellationToken,
    ) -> BoxFuture<'static, ()> {
        async move {
            let keeper = self.session.clone().keep_fresh(cancel.clone());
            let feeding = run_feed(self.session.clone(), feed, cancel.clone(), self.feed);
            // The feed ends when its receiver is gone; the keeper with it.
            tokio::select! {
                _ = keeper => {}
                _ = feeding => {}
            }
        }
        .boxed()
    }

    fn send<'a>(&'a self, command: &'a Command) -> BoxFuture<'a, SendOutcome> {
        async move {
            if !CAPABILITIES.supports(command) {
                return SendOutcome::Unsupported(format!(
                    "seed 001 has no `{}` call",
                    command.verb()
                ));
            }
            match self.session.send(command).await {
                Ok(_) => SendOutcome::Done,
                Err(err @ ClientError::Transient { .. }) => SendOutcome::Retryable {
                    reason: err.to_string(),
                    retry_after: err.retry_after(),
                },
                Err(err) => SendOutcome::Refused(err.to_string()),
            }
        }
        .boxed()
    }

    fn stats(&self) -> LinkStats {
        self.session.stats()
    }

    fn stream_health(&self) -> StreamHealth {
        self.session.feed_meter().health()
    }

    fn close(self: Arc<Self>) -> BoxFuture<'static, ()> {
        async move { self.session.close().await }.boxed()
    }
}

/// How a failed call to open a room reads at the boundary.
fn connect_error(err: &ClientError) -> ConnectError {
    if let Some(retry_after) = err.retry_after() {
        return ConnectError::Busy {
            reason: err.to_string(),
            retry_after,
        };
    }
    match err {
        ClientError::Forbidden { .. } | ClientError::Rejected { .. } => {
            ConnectError::Refused(err.to_string())
        }
        ClientError::NotFound { .. } => ConnectError::NotFound(err.to_string()),
        ClientError::Transient { .. } | ClientError::Protocol { .. } => {
            ConnectError::Unavailable(err.to_string())
        }
    }
}
