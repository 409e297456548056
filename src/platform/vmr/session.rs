//! A session in one room: the token and everything that keeps it valid.
//!
//! Tokens live for `expires` seconds (120 on the seed platform). A [`Session`]
//! refreshes its token at a random point between a third and 45% of that
//! lifetime (the jitter keeps thousands of rooms from refreshing at the same
//! instant), at once when the server sends `refresh_token`, and starts a new
//! session when the platform answers 403, ending the refused one in case it
//! is still alive. Commands sent through the session are retried once, with
//! the new token, after such a renewal.
//!
//! A `Retry-After` on `new_session` holds every renewal back until it has
//! passed (they fail at once meanwhile, without asking the platform); one on
//! `refresh_session` delays the next try.
//!
//! The token itself never leaves this module except to go on the wire.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::Value;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::client::RoomClient;
use super::error::ClientError;
use super::feed::FeedMeter;
use super::wire::{NewSessionRequest, SessionGrant};
use crate::limits::{MAX_TOKEN_LIFETIME, UNKNOWN_TOKEN_LIFETIME};
use crate::model::{Command, Secret};
use crate::platform::LinkStats;

/// Who usher is in a room.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// The room's host PIN, if it has one.
    pub pin: Option<Secret>,
    /// The name usher's participant gets.
    pub display_name: String,
    /// Keep usher's participant out of the roster (`hideme`).
    pub hidden: bool,
}

/// A token and when to refresh it.
#[derive(Debug, Clone)]
struct Token {
    value: Secret,
    /// Bumped by every refresh and renewal, so a caller whose call was
    /// refused can tell whether someone already fixed the session.
    generation: u64,
    participant_uuid: String,
    refresh_at: Instant,
    expires_at: Instant,
}

/// The session as it is at one moment: its token, and whose it is.
#[derive(Debug, Clone)]
pub(crate) struct Current {
    /// The token.
    pub token: Secret,
    /// Its generation (see [`Session::renew`]).
    pub generation: u64,
    /// usher's participant in this session.
    pub participant_uuid: String,
}

/// A live session in one room.
pub struct Session {
    client: RoomClient,
    credentials: Credentials,
    token: Mutex<Token>,
    renewal: tokio::sync::Mutex<()>,
    /// No `new_session` before this: the platform's `Retry-After`.
    renew_not_before: Mutex<Option<Instant>>,
    refresh_requested: tokio::sync::Notify,
    refreshes: AtomicU64,
    late_refreshes: AtomicU64,
    renewals: AtomicU64,
    /// What the room's feed could read, for health.
    feed_meter: FeedMeter,
}

/// Never refresh more often than this, whatever `expires` says.
const MIN_REFRESH_DELAY: Duration = Duration::from_millis(250);

impl Session {
    /// Starts a session (`new_session`).
    pub async fn open(
        client: RoomClient,
        credentials: Credentials,
    ) -> Result<Arc<Session>, ClientError> {
        let grant = new_session(&client, &credentials).await?;
        tracing::debug!(participant = %grant.participant_uuid, expires = grant.expires, "session started");
        Ok(Arc::new(Session {
            token: Mutex::new(token_from(
                grant.token,
                grant.expires,
                0,
                grant.participant_uuid,
            )),
            client,
            credentials,
            renewal: tokio::sync::Mutex::new(()),
            renew_not_before: Mutex::new(None),
            refresh_requested: tokio::sync::Notify::new(),
            refreshes: AtomicU64::new(0),
            late_refreshes: AtomicU64::new(0),
            renewals: AtomicU64::new(0),
            feed_meter: FeedMeter::default(),
        }))
    }

    /// What the room's feed could read.
    pub fn feed_meter(&self) -> &FeedMeter {
        &self.feed_meter
    }

    /// The room's client.
    pub fn client(&self) -> &RoomClient {
        &self.client
    }

    /// The uuid of usher's own participant in the current session.
    pub fn participant_uuid(&self) -> String {
        self.lock().participant_uuid.clone()
    }

    /// The current token and its generation.
    pub(crate) fn current_token(&self) -> (Secret, u64) {
        let token = self.lock();
        (token.value.clone(), token.generation)
    }

    /// The current token, its generation and participant, read together.
    pub(crate) fn current(&self) -> Current {
        let token = self.lock();
        Current {
            token: token.value.clone(),
            generation: token.generation,
            participant_uuid: token.participant_uuid.clone(),
        }
    }

    /// Counters for metrics.
    pub fn stats(&self) -> LinkStats {
        LinkStats {
            refreshes: self.refreshes.load(Ordering::Relaxed),
            late_refreshes: self.late_refreshes.load(Ordering::Relaxed),
            renewals: self.renewals.load(Ordering::Relaxed),
        }
    }

    /// Asks the keeper to refresh now (the server sent `refresh_token`).
    pub fn request_refresh(&self) {
        self.refresh_requested.notify_one();
    }

    /// Sends a command with the current token. On 403 the session is renewed
    /// and the command sent once more; a refused command was not carried out,
    /// so this cannot double it.
    pub async fn send(&self, command: &Command) -> Result<Value, ClientError> {
        let (token, generation) = self.current_token();
        match self.client.send(&token, command).await {
            Err(err) if err.is_forbidden() => {
                self.renew(generation).await?;
                let (token, _) = self.current_token();
                self.client.send(&token, command).await
            }
            other => other,
        }
    }

    /// Refreshes the token now. A refusal (the token already expired) starts
    /// a new session instead.
    pub async fn refresh(&self) -> Result<(), ClientError> {
        let (token, generation) = self.current_token();
        if Instant::now() >= self.lock().expires_at {
            self.late_refreshes.fetch_add(1, Ordering::Relaxed);
        }
        match self.client.refresh_session(&token).await {
            Ok(refresh) => {
                let mut current = self.lock();
                if current.generation == generation {
                    let uuid = std::mem::take(&mut current.participant_uuid);
                    *current = token_from(refresh.token, refresh.expires, generation + 1, uuid);
                }
                drop(current);
                self.refreshes.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(expires = refresh.expires, "token refreshed");
                Ok(())
            }
            Err(err) if err.is_forbidden() => {
                tracing::info!("token refused on refresh; starting a new session");
                self.renew(generation).await
            }
            Err(err) => Err(err),
        }
    }

    /// Starts a new session because the token of `failed_generation` was
    /// refused. If the session already moved on (another task renewed or
    /// refreshed it), nothing is done. While a `Retry-After` the platform
    /// gave on `new_session` lasts, this fails at once without asking it.
    pub async fn renew(&self, failed_generation: u64) -> Result<(), ClientError> {
        let _only_one_renewal = self.renewal.lock().await;
        if self.lock().generation != failed_generation {
            return Ok(());
        }
        let not_before = *lock(&self.renew_not_before);
        if let Some(wait) = not_before.and_then(|at| at.checked_duration_since(Instant::now())) {
            return Err(ClientError::Transient {
                call: "new_session",
                reason: "the platform asked to wait (Retry-After)".to_owned(),
                retry_after: Some(wait),
            });
        }
        let grant = match new_session(&self.client, &self.credentials).await {
            Ok(grant) => grant,
            Err(err) => {
                *lock(&self.renew_not_before) = err.retry_after().map(|wait| Instant::now() + wait);
                return Err(err);
            }
        };
        tracing::info!(participant = %grant.participant_uuid, "new session started");
        let replaced = std::mem::replace(
            &mut *self.lock(),
            token_from(
                grant.token,
                grant.expires,
                failed_generation + 1,
                grant.participant_uuid,
            ),
        );
        self.renewals.fetch_add(1, Ordering::Relaxed);
        // A refused token is usually dead already; if it is not (a 403 for
        // another reason), ending its session keeps no ghost participant.
        let client = self.client.clone();
        tokio::spawn(async move {
            let _ = client.end_session(&replaced.value).await;
        });
        Ok(())
    }

    /// Keeps the token fresh until `cancel` fires: refreshes when due or when
    /// asked, and retries failed refreshes with short, growing delays.
    pub async fn keep_fresh(self: Arc<Self>, cancel: CancellationToken) {
        let mut retry_delay = MIN_REFRESH_DELAY;
        loop {
            let due = self.lock().refresh_at;
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep_until(due) => {}
                _ = self.refresh_requested.notified() => {}
            }
            // Boxed: the refresh (and any renewal) is a big future, and every
            // room keeps this task alive between refreshes.
            match Box::pin(self.refresh()).await {
                Ok(()) => retry_delay = MIN_REFRESH_DELAY,
                Err(err) => {
                    let retry_in = err
                        .retry_after()
                        .map_or(retry_delay, |asked| asked.max(retry_delay));
                    tracing::warn!(error = %err, retry_in = ?retry_in, "token refresh failed");
                    self.lock().refresh_at = Instant::now() + retry_in;
                    retry_delay = (retry_delay * 2).min(Duration::from_secs(10));
                }
            }
        }
    }

    /// Ends the session (`end_session`) so no ghost participant stays behind.
    pub async fn close(&self) {
        let (token, _) = self.current_token();
        match self.client.end_session(&token).await {
            Ok(()) => tracing::debug!("session ended"),
            Err(err) => {
                tracing::warn!(error = %err, "could not end the session")
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Token> {
        lock(&self.token)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

async fn new_session(
    client: &RoomClient,
    credentials: &Credentials,
) -> Result<SessionGrant, ClientError> {
    let request = NewSessionRequest {
        display_name: credentials.display_name.clone(),
        hideme: if credentials.hidden { "yes" } else { "no" }.to_owned(),
    };
    client.new_session(credentials.pin.as_ref(), &request).await
}

/// How long a token given with `expires` is taken to live. A value that is
/// not a positive number (0, -5, `"soon"`, which reads as 0) says nothing,
/// and [`UNKNOWN_TOKEN_LIFETIME`] is assumed; an absurdly long one is cut to
/// [`MAX_TOKEN_LIFETIME`], so a token is always refreshed in bounded time.
fn lifetime(expires: f64) -> Duration {
    if expires.is_nan() || expires <= 0.0 {
        return UNKNOWN_TOKEN_LIFETIME;
    }
    Duration::try_from_secs_f64(expires)
        .unwrap_or(MAX_TOKEN_LIFETIME)
        .clamp(MIN_REFRESH_DELAY * 2, MAX_TOKEN_LIFETIME)
}

fn token_from(value: Secret, expires: f64, generation: u64, participant_uuid: String) -> Token {
    let now = Instant::now();
    let lifetime = lifetime(expires);
    let refresh_after = lifetime
        .mul_f64(fastrand::f64() * 0.12 + 0.33)
        .max(MIN_REFRESH_DELAY);
    Token {
        value,
        generation,
        participant_uuid,
        refresh_at: now + refresh_after,
        expires_at: now + lifetime,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn refresh_lands_between_a_third_and_under_half_of_the_lifetime() {
        for _ in 0..200 {
            let start = Instant::now();
            let token = token_from(Secret::new("t"), 120.0, 0, "u".into());
            let after = (token.refresh_at - start).as_secs_f64();
            assert!((39.0..=54.5).contains(&after), "{after}");
            assert!(token.expires_at - start >= Duration::from_secs(119));
        }
    }

    #[tokio::test]
    async fn any_expiry_is_refreshed_in_bounded_time() {
        let bound = MAX_TOKEN_LIFETIME.mul_f64(0.45);
        for expires in [
            -5.0,
            0.0,
            f64::NAN,
            f64::INFINITY,
            0.001,
            120.0,
            1e12,
            1e19,
            1e300,
            f64::MAX,
        ] {
            let start = Instant::now();
            let token = token_from(Secret::new("t"), expires, 0, "u".into());
            let refresh = token.refresh_at - start;
            assert!(
                (MIN_REFRESH_DELAY..=bound).contains(&refresh),
                "expires {expires}: refresh after {refresh:?}"
            );
            assert!(token.expires_at > token.refresh_at, "expires {expires}");
        }
        for unknown in [-5.0, 0.0, f64::NAN] {
            let start = Instant::now();
            let token = token_from(Secret::new("t"), unknown, 0, "u".into());
            assert!(
                token.refresh_at - start >= UNKNOWN_TOKEN_LIFETIME.mul_f64(0.33),
                "an expiry that says nothing is not taken for an expired token: {unknown}"
            );
        }
    }

    #[tokio::test]
    async fn absurd_lifetimes_do_not_cause_a_refresh_storm() {
        let start = Instant::now();
        for expires in [0.0, -5.0, f64::NAN] {
            let token = token_from(Secret::new("t"), expires, 0, "u".into());
            assert!(token.refresh_at - start >= MIN_REFRESH_DELAY);
        }
    }
}
