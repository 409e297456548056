//! How to reach a Tencent conference account: `kind: tencent` in
//! `platforms:`.
//!
//! ```yaml
//! platforms:
//!   tx:
//!     kind: tencent
//!     url: https://adminapisgp.im.qcloud.com    # the region's REST domain
//!     sdk_app_id: 1400000000
//!     admin: administrator                      # an app admin account
//!     secret_key: ${TX_SECRET_KEY}              # or secret_key_file: /path
//!     callback_token: ${TX_CALLBACK_TOKEN}      # optional: Sign/RequestTime check
//!     reconcile: 30s                            # member-list reconcile of every room
//! ```
//!
//! A room's `alias` is its `RoomId`; Tencent rooms have no PIN. The secret
//! key signs the admin's UserSig, which usher issues itself; the callback
//! token, when set, makes every callback prove it with `Sign`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::config::secret::{self, SecretError, SecretSource};
use crate::model::{Secret, Span};
use crate::platform::http::{HttpOptions, HttpUrl, StreamProtocol, Timeouts};

/// One Tencent account.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TencentConfig {
    /// The REST domain, e.g. `https://adminapisgp.im.qcloud.com`.
    pub url: HttpUrl,
    /// The application's SDKAppID.
    pub sdk_app_id: u64,
    /// The app admin account REST calls are made as.
    pub admin: String,
    /// The application's secret key: `${VARIABLE}` or the value.
    #[serde(default)]
    pub secret_key: Option<SecretSource>,
    /// A file holding the secret key.
    #[serde(default)]
    pub secret_key_file: Option<PathBuf>,
    /// The callback token, when callbacks are signed.
    #[serde(default)]
    pub callback_token: Option<SecretSource>,
    /// A file holding the callback token.
    #[serde(default)]
    pub callback_token_file: Option<PathBuf>,
    /// How often every watched room's members are listed and compared.
    #[serde(default = "default_reconcile")]
    pub reconcile: Span,
    /// How long each UserSig usher issues is valid (renewed at half of it).
    #[serde(default = "default_usersig_lifetime")]
    pub usersig_lifetime: Span,
    /// Network timeouts.
    #[serde(default)]
    pub timeouts: Timeouts,
}

/// The secrets of an account, read.
#[derive(Clone)]
pub struct TencentSecrets {
    /// Signs UserSigs.
    pub secret_key: Secret,
    /// Checks callbacks' `Sign`, when set.
    pub callback_token: Option<Secret>,
}

impl TencentConfig {
    /// An account at `url` with these credentials and every other setting at
    /// its default, for tests and tools.
    pub fn new(url: url::Url, sdk_app_id: u64, admin: &str, secret_key: &str) -> Self {
        TencentConfig {
            url: HttpUrl(url),
            sdk_app_id,
            admin: admin.to_owned(),
            secret_key: Some(SecretSource::Literal(Secret::new(secret_key))),
            secret_key_file: None,
            callback_token: None,
            callback_token_file: None,
            reconcile: default_reconcile(),
            usersig_lifetime: default_usersig_lifetime(),
            timeouts: Timeouts::default(),
        }
    }

    /// Reads the secrets from the environment or their files; the error
    /// names the field, never the value.
    pub fn secrets(&self) -> Result<TencentSecrets, SecretError> {
        let secret_key = secret::resolve(
            "secret_key",
            self.secret_key.as_ref(),
            self.secret_key_file.as_deref(),
        )?
        .ok_or_else(|| SecretError::Unset {
            field: "secret_key".to_owned(),
            variable: "(none given)".to_owned(),
        })?;
        let callback_token = secret::resolve(
            "callback_token",
            self.callback_token.as_ref(),
            self.callback_token_file.as_deref(),
        )?;
        Ok(TencentSecrets {
            secret_key,
            callback_token,
        })
    }

    /// Takes the secrets' files relative to `base`.
    pub fn rebase_files(&mut self, base: &Path) {
        for file in [&mut self.secret_key_file, &mut self.callback_token_file]
            .into_iter()
            .flatten()
        {
            *file = base.join(&*file);
        }
    }

    /// How to talk to the platform. Tencent has no streams: only REST.
    pub fn http_options(&self, rooms: usize) -> HttpOptions {
        HttpOptions {
            connect_timeout: self.timeouts.connect.0,
            request_timeout: self.timeouts.request.0,
            stream_idle_timeout: self.timeouts.stream_idle.0,
            stream_protocol: StreamProtocol::Http1,
            rooms,
        }
    }

    /// The reconcile interval, never below a second.
    pub fn reconcile_every(&self) -> Duration {
        self.reconcile.0.max(Duration::from_secs(1))
    }

    /// Checks what can be checked without the network or the environment
    /// (secrets are read when the platform is built); the message names the
    /// field.
    pub fn validate(&self) -> Result<(), String> {
        if self.admin.trim().is_empty() {
            return Err(
                "`admin` is empty: name the app admin account REST calls are made as".to_owned(),
            );
        }
        if self.secret_key.is_none() && self.secret_key_file.is_none() {
            return Err(
                "give the application's `secret_key` (as ${VARIABLE}) or `secret_key_file`"
                    .to_owned(),
            );
        }
        if self.usersig_lifetime.0 < Duration::from_secs(60) {
            return Err("`usersig_lifetime` must be at least 60s".to_owned());
        }
        for (field, given, file) in [
            (
                "secret_key",
                self.secret_key.is_some(),
                self.secret_key_file.is_some(),
            ),
            (
                "callback_token",
                self.callback_token.is_some(),
                self.callback_token_file.is_some(),
            ),
        ] {
            if given && file {
                return Err(SecretError::Both {
                    field: field.to_owned(),
                }
                .to_string());
            }
        }
        Ok(())
    }
}

fn default_reconcile() -> Span {
    Span::secs(30)
}

fn default_usersig_lifetime() -> Span {
    Span::secs(24 * 3600)
}
