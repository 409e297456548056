//! How to reach Huawei Cloud Meeting: `kind: huawei` in `platforms:`.
//!
//! ```yaml
//! platforms:
//!   hw:
//!     kind: huawei
//!     url: https://api.meeting.huaweicloud.com   # the REST base
//!     app_id: ${HW_APP_ID}          # App-ID auth: app_id, app_key, user_id …
//!     app_key: ${HW_APP_KEY}
//!     user_id: usher
//!     # account: usher@example.com  # … or account auth: account, password
//!     # password: ${HW_PASSWORD}
//!     webhook_secret: ${HW_WEBHOOK_SECRET}   # optional: meeting.started / meeting.end
//! ```
//!
//! Every secret (`app_id`, `app_key`, `password`, `webhook_secret`) is
//! `${VARIABLE}` or the value itself, or comes from its `*_file` twin.
//! A room's `alias` is the conference ID; its `pin` the chair password
//! (without one, usher reads it from the meeting's details).

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::config::secret::{self, SecretSource};
use crate::model::{Secret, Span};
use crate::platform::http::{HttpOptions, HttpUrl, StreamProtocol, Timeouts};

/// One Huawei Cloud Meeting account.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HuaweiConfig {
    /// The REST base, e.g. `https://api.meeting.huaweicloud.com`.
    pub url: HttpUrl,
    /// App-ID auth: the App ID.
    #[serde(default)]
    pub app_id: Option<SecretSource>,
    /// A file holding the App ID.
    #[serde(default)]
    pub app_id_file: Option<PathBuf>,
    /// App-ID auth: the App key, which signs the auth request.
    #[serde(default)]
    pub app_key: Option<SecretSource>,
    /// A file holding the App key.
    #[serde(default)]
    pub app_key_file: Option<PathBuf>,
    /// App-ID auth: the third-party user usher acts as (empty: the
    /// enterprise's default administrator).
    #[serde(default)]
    pub user_id: String,
    /// Account auth: the account.
    #[serde(default)]
    pub account: Option<String>,
    /// Account auth: its password.
    #[serde(default)]
    pub password: Option<SecretSource>,
    /// A file holding the password.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// The enterprise webhook's secret: with it, `POST /hooks/<name>`
    /// accepts `meeting.started` / `meeting.end` signed with it.
    #[serde(default)]
    pub webhook_secret: Option<SecretSource>,
    /// A file holding the webhook secret.
    #[serde(default)]
    pub webhook_secret_file: Option<PathBuf>,
    /// How often the meeting socket is sent a heartbeat (the server drops
    /// a socket after 180 s without one).
    #[serde(default = "default_heartbeat")]
    pub heartbeat: Span,
    /// Network timeouts.
    #[serde(default)]
    pub timeouts: Timeouts,
}

/// How usher proves who it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Login {
    /// App-ID auth, signed with the App key.
    App {
        /// The App ID.
        app_id: Secret,
        /// The App key.
        app_key: Secret,
        /// The user usher acts as.
        user_id: String,
    },
    /// Account auth.
    Account {
        /// The account.
        account: String,
        /// Its password.
        password: Secret,
    },
}

/// The secrets of a Huawei account, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// How to log in.
    pub login: Login,
    /// The webhook secret, if webhooks are taken.
    pub webhook_secret: Option<Secret>,
}

/// The heartbeat the reference recommends.
fn default_heartbeat() -> Span {
    Span::secs(60)
}

/// The server drops a socket after this long without a heartbeat.
const SERVER_HEARTBEAT_LIMIT: Duration = Duration::from_secs(180);

impl HuaweiConfig {
    /// A platform at `url` with App-ID auth and every other setting at its
    /// default.
    pub fn with_app(url: url::Url, app_id: &str, app_key: &str, user_id: &str) -> Self {
        HuaweiConfig {
            url: HttpUrl(url),
            app_id: Some(SecretSource::Literal(Secret::new(app_id))),
            app_id_file: None,
            app_key: Some(SecretSource::Literal(Secret::new(app_key))),
            app_key_file: None,
            user_id: user_id.to_owned(),
            account: None,
            password: None,
            password_file: None,
            webhook_secret: None,
            webhook_secret_file: None,
            heartbeat: default_heartbeat(),
            timeouts: Timeouts::default(),
        }
    }

    /// How to talk to the platform, for `rooms` rooms (REST only: the
    /// meeting sockets are not HTTP streams).
    pub fn http_options(&self, rooms: usize) -> HttpOptions {
        HttpOptions {
            connect_timeout: self.timeouts.connect.0,
            request_timeout: self.timeouts.request.0,
            stream_idle_timeout: self.timeouts.stream_idle.0,
            stream_protocol: StreamProtocol::Http1,
            rooms,
        }
    }

    /// Takes the secrets' `_file` twins relative to `base`, the config
    /// file's directory.
    pub fn rebase_files(&mut self, base: &std::path::Path) {
        for file in [
            &mut self.app_id_file,
            &mut self.app_key_file,
            &mut self.password_file,
            &mut self.webhook_secret_file,
        ]
        .into_iter()
        .flatten()
        {
            *file = base.join(&*file);
        }
    }

    /// Checks what can be checked without reading secrets: one way to log
    /// in, a usable heartbeat.
    pub fn validate(&self) -> Result<(), String> {
        let app = self.app_id.is_some()
            || self.app_id_file.is_some()
            || self.app_key.is_some()
            || self.app_key_file.is_some();
        let account =
            self.account.is_some() || self.password.is_some() || self.password_file.is_some();
        match (app, account) {
            (false, false) => {
                return Err("give App-ID auth (`app_id`, `app_key`, `user_id`) or account auth (`account`, `password`)".to_owned());
            }
            (true, true) => {
                return Err("give either App-ID auth (`app_id`, `app_key`) or account auth (`account`, `password`), not both".to_owned());
            }
            (false, true) if self.account.is_none() => {
                return Err("account auth needs `account` as well as `password`".to_owned());
            }
            _ => {}
        }
        let heartbeat = self.heartbeat.0;
        if heartbeat.is_zero() || heartbeat >= SERVER_HEARTBEAT_LIMIT {
            return Err(format!(
                "`heartbeat` must be above 0 and below {}s (the server drops a socket after that long without one)",
                SERVER_HEARTBEAT_LIMIT.as_secs()
            ));
        }
        Ok(())
    }

    /// Reads every secret. The error names the field, never a value.
    pub fn resolve(&self) -> Result<Resolved, String> {
        let read = |field: &str, value: &Option<SecretSource>, file: &Option<PathBuf>| {
            secret::resolve(field, value.as_ref(), file.as_deref()).map_err(|err| err.to_string())
        };
        let login = match &self.account {
            Some(account) => Login::Account {
                account: account.clone(),
                password: read("password", &self.password, &self.password_file)?
                    .ok_or("account auth needs `password` (or `password_file`)")?,
            },
            None => Login::App {
                app_id: read("app_id", &self.app_id, &self.app_id_file)?
                    .ok_or("App-ID auth needs `app_id` (or `app_id_file`)")?,
                app_key: read("app_key", &self.app_key, &self.app_key_file)?
                    .ok_or("App-ID auth needs `app_key` (or `app_key_file`)")?,
                user_id: self.user_id.clone(),
            },
        };
        let webhook_secret = read(
            "webhook_secret",
            &self.webhook_secret,
            &self.webhook_secret_file,
        )?;
        Ok(Resolved {
            login,
            webhook_secret,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<HuaweiConfig, String> {
        crate::yaml::from_str::<HuaweiConfig>(yaml).map_err(|err| err.to_string())
    }

    #[test]
    fn app_auth_reads_and_resolves() {
        let config = parse(
            "url: https://api.meeting.huaweicloud.com\napp_id: \"app\"\napp_key: \"k3y\"\nuser_id: usher\n",
        )
        .unwrap();
        config.validate().unwrap();
        let resolved = config.resolve().unwrap();
        let Login::App {
            app_id,
            app_key,
            user_id,
        } = resolved.login
        else {
            panic!("App-ID auth");
        };
        assert_eq!(
            (app_id.expose(), app_key.expose(), user_id.as_str()),
            ("app", "k3y", "usher")
        );
        assert!(resolved.webhook_secret.is_none());
        assert_eq!(config.heartbeat, Span::secs(60));
        assert!(!format!("{config:?}").contains("k3y"));
    }

    #[test]
    fn one_way_to_log_in() {
        let none = parse("url: https://h.example.com\n").unwrap();
        assert!(none.validate().unwrap_err().contains("App-ID auth"));
        let both =
            parse("url: https://h.example.com\napp_id: a\napp_key: b\naccount: c\npassword: d\n")
                .unwrap();
        assert!(both.validate().unwrap_err().contains("not both"));
        let half = parse("url: https://h.example.com\npassword: d\n").unwrap();
        assert!(half.validate().unwrap_err().contains("`account`"));
        let account = parse("url: https://h.example.com\naccount: me\npassword: \"pw\"\n").unwrap();
        account.validate().unwrap();
        assert!(matches!(
            account.resolve().unwrap().login,
            Login::Account { .. }
        ));
        let slow = parse("url: https://h.example.com\naccount: me\npassword: pw\nheartbeat: 3m\n")
            .unwrap();
        assert!(slow.validate().unwrap_err().contains("heartbeat"));
    }

    #[test]
    fn unset_secrets_name_the_field_not_a_value() {
        let config = parse(
            "url: https://h.example.com\napp_id: ${USHER_TEST_HW_UNSET_ID}\napp_key: \"secret-key\"\n",
        )
        .unwrap();
        let err = config.resolve().unwrap_err();
        assert!(
            err.contains("`app_id` comes from ${USHER_TEST_HW_UNSET_ID}"),
            "{err}"
        );
        assert!(!err.contains("secret-key"));
        let both =
            parse("url: https://h.example.com\naccount: me\npassword: pw\npassword_file: /x\n")
                .unwrap();
        assert!(
            both.resolve()
                .unwrap_err()
                .contains("`password` or `password_file`")
        );
    }
}
