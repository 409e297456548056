//! Huawei's three stacked tokens (reference §1.1), each kept fresh here.
//!
//! - [`AccessAuth`]: the account's access token (12–24 h), shared by every
//!   room of the account. It is renewed once half its validity has passed:
//!   refreshed with the refresh token when there is one, otherwise (or if
//!   that fails) by logging in again; a 401 anywhere renews it at once.
//! - [`ControlAuth`]: one meeting's conference-control token (30 min),
//!   obtained with the chair password once the meeting runs and kept alive
//!   by asking again with the current token. A 401 gets a fresh one.
//! - The one-shot, one-minute WebSocket token ([`ControlAuth::ws_token`]),
//!   fetched right before each socket opens.
//!
//! Only one renewal of a token runs at a time; callers that find a renewal
//! under way wait for it and use its result.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{Mutex, Notify};
use tokio::time::Instant;

use super::config::Login;
use super::inferred;
use super::rest::{Auth, CallError, Rest};
use super::wire::{self, AccountAuthRequest, AppAuthRequest, AuthReply, ControlTokenReply};
use crate::model::Secret;
use crate::platform::LinkStats;

/// When a token's validity is unknown, it is taken to last this long.
const DEFAULT_ACCESS_VALIDITY: Duration = Duration::from_secs(12 * 3600);
/// The control token's documented lifetime.
const DEFAULT_CONTROL_VALIDITY: Duration = Duration::from_secs(30 * 60);
/// How long an App-ID auth signature stays valid.
const SIGNATURE_VALIDITY: Duration = Duration::from_secs(600);

/// An access token and when to renew it.
#[derive(Clone)]
struct AccessToken {
    token: Secret,
    refresh: Option<Secret>,
    obtained: Instant,
    valid_for: Duration,
    generation: u64,
}

impl AccessToken {
    fn due(&self) -> Instant {
        self.obtained + self.valid_for / 2
    }

    fn expired(&self) -> bool {
        Instant::now() >= self.obtained + self.valid_for
    }
}

/// The account's access token.
pub struct AccessAuth {
    rest: Rest,
    login: Login,
    current: Mutex<Option<AccessToken>>,
    generations: AtomicU64,
    refreshes: AtomicU64,
    logins: AtomicU64,
}

impl AccessAuth {
    /// Logs in lazily, on first use.
    pub fn new(rest: Rest, login: Login) -> Self {
        AccessAuth {
            rest,
            login,
            current: Mutex::new(None),
            generations: AtomicU64::new(0),
            refreshes: AtomicU64::new(0),
            logins: AtomicU64::new(0),
        }
    }

    /// A valid access token and its generation (for [`AccessAuth::refused`]).
    pub async fn token(&self) -> Result<(Secret, u64), CallError> {
        let mut current = self.current.lock().await;
        let renewed = match current.as_ref() {
            None => self.log_in().await?,
            Some(token) if Instant::now() < token.due() => {
                return Ok((token.token.clone(), token.generation));
            }
            Some(token) => self.renew(token).await?,
        };
        let answer = (renewed.token.clone(), renewed.generation);
        *current = Some(renewed);
        Ok(answer)
    }

    /// The platform refused generation `generation` with a 401: the next
    /// [`AccessAuth::token`] logs in again (unless another caller already
    /// did).
    pub async fn refused(&self, generation: u64) {
        let mut current = self.current.lock().await;
        if current.as_ref().is_some_and(|t| t.generation == generation) {
            *current = None;
        }
    }

    /// Refreshes with the refresh token while the token is still valid,
    /// and logs in again otherwise or when that fails.
    async fn renew(&self, token: &AccessToken) -> Result<AccessToken, CallError> {
        if let (Some(refresh), false) = (&token.refresh, token.expired()) {
            match self.refresh(&token.token, refresh).await {
                Ok(renewed) => {
                    self.refreshes.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!("access token refreshed");
                    return Ok(renewed);
                }
                Err(err) => {
                    tracing::info!(error = %err, "could not refresh the access token; logging in again");
                }
            }
        }
        self.log_in().await
    }

    async fn refresh(&self, token: &Secret, refresh: &Secret) -> Result<AccessToken, CallError> {
        let body = serde_json::json!({ inferred::REFRESH_TOKEN_FIELD: refresh.expose() });
        let reply: AuthReply = self
            .rest
            .call_json(
                "refresh",
                reqwest::Method::PUT,
                wire::TOKEN_PATH,
                &[],
                Auth {
                    access: Some(token),
                    ..Auth::default()
                },
                Some(&body),
            )
            .await?;
        self.token_from(reply, "refresh")
    }

    async fn log_in(&self) -> Result<AccessToken, CallError> {
        let reply: AuthReply = match &self.login {
            Login::App {
                app_id,
                app_key,
                user_id,
            } => {
                let nonce = nonce();
                let expire_time = unix_seconds() + SIGNATURE_VALIDITY.as_secs() as i64;
                let header = wire::app_auth_header(
                    app_id.expose(),
                    app_key.expose(),
                    user_id,
                    expire_time,
                    &nonce,
                );
                let body = serde_json::to_value(AppAuthRequest {
                    app_id: app_id.expose().to_owned(),
                    client_type: wire::API_CLIENT_TYPE,
                    expire_time,
                    nonce,
                    user_id: user_id.clone(),
                })
                .unwrap_or_default();
                self.rest
                    .call_json(
                        "appauth",
                        reqwest::Method::POST,
                        wire::APP_AUTH_PATH,
                        &[],
                        Auth {
                            authorization: Some(&header),
                            long_ticket: true,
                            ..Auth::default()
                        },
                        Some(&body),
                    )
                    .await?
            }
            Login::Account { account, password } => {
                let header = wire::account_auth_header(account, password.expose());
                let body = serde_json::to_value(AccountAuthRequest {
                    account: account.clone(),
                    client_type: wire::API_CLIENT_TYPE,
                })
                .unwrap_or_default();
                self.rest
                    .call_json(
                        "auth",
                        reqwest::Method::POST,
                        wire::ACCOUNT_AUTH_PATH,
                        &[],
                        Auth {
                            authorization: Some(&header),
                            ..Auth::default()
                        },
                        Some(&body),
                    )
                    .await?
            }
        };
        let token = self.token_from(reply, "auth")?;
        self.logins.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(valid_for = ?token.valid_for, "logged in to Huawei Cloud Meeting");
        Ok(token)
    }

    fn token_from(&self, reply: AuthReply, call: &'static str) -> Result<AccessToken, CallError> {
        if reply.access_token.is_empty() {
            return Err(CallError::Protocol {
                call,
                reason: "the answer carries no accessToken".to_owned(),
            });
        }
        let valid_for = if reply.valid_period > 0 {
            Duration::from_secs(reply.valid_period as u64)
        } else if reply.expire_time > unix_seconds() {
            Duration::from_secs((reply.expire_time - unix_seconds()) as u64)
        } else {
            DEFAULT_ACCESS_VALIDITY
        };
        Ok(AccessToken {
            token: Secret::new(reply.access_token),
            refresh: Some(Secret::new(reply.refresh_token)).filter(|t| !t.is_empty()),
            obtained: Instant::now(),
            valid_for,
            generation: self.generations.fetch_add(1, Ordering::Relaxed) + 1,
        })
    }

    /// Refreshes that worked so far.
    pub fn refreshes(&self) -> u64 {
        self.refreshes.load(Ordering::Relaxed)
    }

    /// Logins so far (the first included).
    pub fn logins(&self) -> u64 {
        self.logins.load(Ordering::Relaxed)
    }

    /// The REST base this account calls.
    pub fn rest(&self) -> &Rest {
        &self.rest
    }

    /// Runs `call` with a valid access token; after a 401, once more with
    /// a fresh one.
    pub async fn with_token<T, F, Fut>(&self, call: F) -> Result<T, CallError>
    where
        F: Fn(Secret) -> Fut,
        Fut: std::future::Future<Output = Result<T, CallError>>,
    {
        let (token, generation) = self.token().await?;
        match call(token).await {
            Err(CallError::Expired { .. }) => {
                self.refused(generation).await;
                let (token, _) = self.token().await?;
                call(token).await
            }
            other => other,
        }
    }
}

/// A meeting's control token.
#[derive(Clone)]
pub struct ControlToken {
    /// The token.
    pub token: Secret,
    /// Where the meeting socket is (`wsURL`).
    pub ws_url: String,
    obtained: Instant,
    lifetime: Duration,
    generation: u64,
}

impl ControlToken {
    /// When to keep it alive: halfway through its life.
    pub fn due(&self) -> Instant {
        self.obtained + self.lifetime / 2
    }

    fn expired(&self) -> bool {
        Instant::now() >= self.obtained + self.lifetime
    }
}

/// One meeting's control token.
pub struct ControlAuth {
    access: std::sync::Arc<AccessAuth>,
    conference: String,
    password: Secret,
    current: Mutex<Option<ControlToken>>,
    /// Told whenever a fresh token is obtained, so the keeper wakes.
    obtained: Notify,
    generations: AtomicU64,
    keep_alives: AtomicU64,
    late_keep_alives: AtomicU64,
    renewals: AtomicU64,
}

impl ControlAuth {
    /// The control token of `conference`, obtained with the chair password
    /// on first use.
    pub fn new(access: std::sync::Arc<AccessAuth>, conference: &str, password: Secret) -> Self {
        ControlAuth {
            access,
            conference: conference.to_owned(),
            password,
            current: Mutex::new(None),
            obtained: Notify::new(),
            generations: AtomicU64::new(0),
            keep_alives: AtomicU64::new(0),
            late_keep_alives: AtomicU64::new(0),
            renewals: AtomicU64::new(0),
        }
    }

    /// The conference ID.
    pub fn conference(&self) -> &str {
        &self.conference
    }

    /// The account's access token keeper.
    pub fn access(&self) -> &AccessAuth {
        &self.access
    }

    /// The current token, obtaining one if there is none. Fails while the
    /// meeting has not started.
    pub async fn token(&self) -> Result<ControlToken, CallError> {
        let mut current = self.current.lock().await;
        if let Some(token) = current.as_ref().filter(|t| !t.expired()) {
            return Ok(token.clone());
        }
        let token = self.obtain().await?;
        *current = Some(token.clone());
        Ok(token)
    }

    /// When the current token is due for keep-alive, if there is one.
    pub async fn due(&self) -> Option<Instant> {
        self.current.lock().await.as_ref().map(ControlToken::due)
    }

    /// Waits until a fresh token is obtained.
    pub async fn obtained(&self) {
        self.obtained.notified().await;
    }

    /// Keeps the token alive (asking again with it); if the platform no
    /// longer knows it, obtains a fresh one with the password.
    pub async fn keep_alive(&self) -> Result<(), CallError> {
        let mut current = self.current.lock().await;
        let Some(token) = current.clone() else {
            return Ok(());
        };
        if token.expired() {
            self.late_keep_alives.fetch_add(1, Ordering::Relaxed);
        }
        let renewed = match self.request(Some(&token.token)).await {
            Ok(renewed) => {
                self.keep_alives.fetch_add(1, Ordering::Relaxed);
                renewed
            }
            Err(CallError::Expired { .. }) => {
                tracing::info!("the control token had expired; obtaining a new one");
                self.obtain().await?
            }
            Err(err) => return Err(err),
        };
        *current = Some(renewed);
        Ok(())
    }

    /// A call was refused with generation `generation`'s token: obtain a
    /// fresh one (unless another caller already did) and return it.
    pub async fn refused(&self, generation: u64) -> Result<ControlToken, CallError> {
        let mut current = self.current.lock().await;
        if let Some(token) = current.as_ref().filter(|t| t.generation != generation) {
            return Ok(token.clone());
        }
        *current = None;
        let token = self.obtain().await?;
        *current = Some(token.clone());
        Ok(token)
    }

    /// Forgets the token (the meeting ended): the next use obtains one.
    pub async fn forget(&self) {
        *self.current.lock().await = None;
    }

    /// A fresh token, with the chair password.
    async fn obtain(&self) -> Result<ControlToken, CallError> {
        let token = self.request(None).await?;
        self.renewals.fetch_add(1, Ordering::Relaxed);
        self.obtained.notify_one();
        Ok(token)
    }

    /// The control-token call: with the password, or as a keep-alive with
    /// `current`.
    async fn request(&self, current: Option<&Secret>) -> Result<ControlToken, CallError> {
        let query = [("conferenceID", self.conference.as_str())];
        let reply: ControlTokenReply = self
            .access
            .with_token(|access| async move {
                let auth = Auth {
                    access: inferred::CONTROL_TOKEN_NEEDS_ACCESS_TOKEN.then_some(&access),
                    control: current,
                    password: current.is_none().then_some(&self.password),
                    ..Auth::default()
                };
                self.access
                    .rest()
                    .call_json(
                        "token",
                        reqwest::Method::GET,
                        wire::CONTROL_TOKEN_PATH,
                        &query,
                        auth,
                        None,
                    )
                    .await
            })
            .await?;
        let info = reply.data;
        if info.token.is_empty() {
            return Err(CallError::Protocol {
                call: "token",
                reason: "the answer carries no token".to_owned(),
            });
        }
        let lifetime = if info.conf_token_expire_time > 0 {
            Duration::from_secs(info.conf_token_expire_time as u64)
        } else if info.expire_time > unix_millis() {
            Duration::from_millis((info.expire_time - unix_millis()) as u64)
        } else {
            DEFAULT_CONTROL_VALIDITY
        };
        Ok(ControlToken {
            token: Secret::new(info.token),
            ws_url: info.ws_url,
            obtained: Instant::now(),
            lifetime,
            generation: self.generations.fetch_add(1, Ordering::Relaxed) + 1,
        })
    }

    /// A one-shot WebSocket token, with the current control token (renewed
    /// once if refused).
    pub async fn ws_token(&self) -> Result<(Secret, ControlToken), CallError> {
        let token = self.token().await?;
        let query = [("conferenceID", self.conference.as_str())];
        let ask = |control: ControlToken| async move {
            let reply: wire::WsTokenReply = self
                .access
                .rest()
                .call_json(
                    "wsToken",
                    reqwest::Method::GET,
                    wire::WS_TOKEN_PATH,
                    &query,
                    Auth {
                        control: Some(&control.token),
                        ..Auth::default()
                    },
                    None,
                )
                .await?;
            Ok::<_, CallError>((reply.web_socket_token, control))
        };
        let (ws_token, control) = match ask(token.clone()).await {
            Err(CallError::Expired { .. }) => ask(self.refused(token.generation).await?).await?,
            other => other?,
        };
        if ws_token.is_empty() {
            return Err(CallError::Protocol {
                call: "wsToken",
                reason: "the answer carries no webSocketToken".to_owned(),
            });
        }
        Ok((Secret::new(ws_token), control))
    }

    /// Runs a call with the current control token; after a 401, once more
    /// with a fresh one.
    pub async fn with_token<T, F, Fut>(&self, call: F) -> Result<T, CallError>
    where
        F: Fn(Secret) -> Fut,
        Fut: std::future::Future<Output = Result<T, CallError>>,
    {
        let token = self.token().await?;
        match call(token.token.clone()).await {
            Err(CallError::Expired { .. }) => {
                tracing::info!("the control token was refused; obtaining a new one");
                let fresh = self.refused(token.generation).await?;
                call(fresh.token).await
            }
            other => other,
        }
    }

    /// Counters for `/status`: keep-alives and access refreshes that
    /// worked, keep-alives attempted after expiry, fresh tokens obtained.
    pub fn stats(&self) -> LinkStats {
        LinkStats {
            refreshes: self.keep_alives.load(Ordering::Relaxed) + self.access.refreshes(),
            late_refreshes: self.late_keep_alives.load(Ordering::Relaxed),
            renewals: self.renewals.load(Ordering::Relaxed).saturating_sub(1)
                + self.access.logins().saturating_sub(1),
        }
    }
}

/// 40 random alphanumerics: App-ID auth wants 32–64.
fn nonce() -> String {
    const ALPHANUMERIC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    (0..40)
        .map(|_| char::from(ALPHANUMERIC[fastrand::usize(..ALPHANUMERIC.len())]))
        .collect()
}

fn unix_seconds() -> i64 {
    crate::clock::unix_now() as i64
}

fn unix_millis() -> i64 {
    (crate::clock::unix_now() * 1000.0) as i64
}
