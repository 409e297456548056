//! The room link of a clustered room: every command is sent only while
//! this instance still owns the room (see [`Ownership::holds`]); otherwise
//! it is refused here and never reaches the platform.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::Ownership;
use crate::model::Command;
use crate::platform::{FeedItem, LinkStats, RoomLink, SendOutcome};

/// A link that checks ownership before each command.
pub struct FencedLink {
    inner: Arc<dyn RoomLink>,
    ownership: Ownership,
}

impl FencedLink {
    /// Fences `inner` with `ownership`.
    pub fn wrap(inner: Arc<dyn RoomLink>, ownership: Ownership) -> Arc<dyn RoomLink> {
        Arc::new(FencedLink { inner, ownership })
    }
}

impl RoomLink for FencedLink {
    fn follow(
        self: Arc<Self>,
        feed: mpsc::Sender<Box<FeedItem>>,
        cancel: CancellationToken,
    ) -> BoxFuture<'static, ()> {
        self.inner.clone().follow(feed, cancel)
    }

    fn send<'a>(&'a self, command: &'a Command) -> BoxFuture<'a, SendOutcome> {
        if !self.ownership.holds() {
            self.ownership.note_refusal();
            tracing::warn!(%command, "not sent: this instance may no longer own the room (fencing)");
            return Box::pin(async {
                SendOutcome::Refused(
                    "not sent: this instance may no longer own the room (fencing)".to_owned(),
                )
            });
        }
        self.inner.send(command)
    }

    fn stats(&self) -> LinkStats {
        self.inner.stats()
    }

    fn close(self: Arc<Self>) -> BoxFuture<'static, ()> {
        self.inner.clone().close()
    }
}
