//! How to reach an Agora conference account: `kind: agora` in `platforms:`.
//!
//! ```yaml
//! platforms:
//!   ag:
//!     kind: agora
//!     url: https://api.sd-rtn.com          # the default
//!     region: cn                           # cn, ap, eu or na
//!     app_id: ${AGORA_APP_ID}              # or app_id_file
//!     token: ${AGORA_TOKEN}                # or token_file (re-read when refused)
//!     webhook_secret: ${AGORA_WEBHOOK_SECRET}   # optional: callbacks must be signed
//!     reconcile: 30s                       # roster check against the user list
//!     gap_hold: 2s                         # wait this long for a missing callback
//!     rejoin_ban: 10m                      # who usher disconnects stays out this long
//!     create:                              # rooms usher creates itself, by roomUuid
//!       physics-101:
//!         name: Physics 101
//!         start: "2026-11-23T09:00:00+08:00"   # or leave out: starts when created
//!         duration: 90m
//!         close_delay: 10m
//!         join_muted: true
//!         participant_limit: 200
//! ```
//!
//! A room's `alias` is its `roomUuid`. A room listed under `create:` is
//! created (seed 004's call, with its webhooks pointed at
//! `webhooks.public_url` + `/hooks/<platform name>`) when usher first
//! connects to it; any other room is watched as it is, and must have been
//! created with that webhook URL by whoever created it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::wire::{self, REGIONS};
use crate::config::SecretSource;
use crate::model::Span;
use crate::platform::http::{HttpOptions, HttpUrl, Timeouts};

/// One Agora conference account.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgoraConfig {
    /// The REST host.
    #[serde(default = "default_url")]
    pub url: HttpUrl,
    /// The service region: `cn`, `ap`, `eu` or `na`.
    pub region: String,
    /// The project's App ID.
    #[serde(default)]
    pub app_id: Option<SecretSource>,
    /// A file holding the App ID.
    #[serde(default)]
    pub app_id_file: Option<PathBuf>,
    /// The apaas token sent as `Authorization: agora token=…`.
    #[serde(default)]
    pub token: Option<SecretSource>,
    /// A file holding the token; read again whenever the platform refuses
    /// the token, so a process that renews it there keeps usher going.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// The key callbacks are signed with; unsigned callbacks are refused
    /// when it is set.
    #[serde(default)]
    pub webhook_secret: Option<SecretSource>,
    /// A file holding the webhook secret.
    #[serde(default)]
    pub webhook_secret_file: Option<PathBuf>,
    /// How often each room's roster is checked against the user list.
    #[serde(default = "default_reconcile")]
    pub reconcile: Span,
    /// How long a callback that arrived ahead of a missing one is held
    /// before the room is resynced without it.
    #[serde(default = "default_gap_hold")]
    pub gap_hold: Span,
    /// How long someone usher disconnects may not come back.
    #[serde(default = "default_rejoin_ban")]
    pub rejoin_ban: Span,
    /// Network timeouts.
    #[serde(default)]
    pub timeouts: Timeouts,
    /// Rooms usher creates, by `roomUuid`.
    #[serde(default)]
    pub create: BTreeMap<String, CreateConfig>,
}

/// A room usher creates.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateConfig {
    /// The meeting's title (at most 64 characters).
    pub name: String,
    /// When it starts (RFC 3339); without it, when it is created.
    #[serde(default)]
    pub start: Option<String>,
    /// How long it runs; then it is ended but people may stay.
    #[serde(default)]
    pub duration: Option<Span>,
    /// How long people may stay after that before the room closes.
    #[serde(default)]
    pub close_delay: Option<Span>,
    /// People join muted.
    #[serde(default)]
    pub join_muted: Option<bool>,
    /// Audio is allowed.
    #[serde(default)]
    pub start_audio: Option<bool>,
    /// Video is allowed.
    #[serde(default)]
    pub start_video: Option<bool>,
    /// Screen sharing is allowed.
    #[serde(default)]
    pub share_screen: Option<bool>,
    /// The most co-hosts.
    #[serde(default)]
    pub cohost_limit: Option<u64>,
    /// The most participants.
    #[serde(default)]
    pub participant_limit: Option<u64>,
}

/// The longest meeting FC accepts, in seconds (a day).
const MAX_DURATION: u64 = 86_400;

/// The longest room id and name Agora accepts, in characters.
const MAX_ID: usize = 64;

impl AgoraConfig {
    /// Takes the secrets' `_file` twins relative to `base`, the config
    /// file's directory.
    pub fn rebase_files(&mut self, base: &std::path::Path) {
        for file in [
            &mut self.app_id_file,
            &mut self.token_file,
            &mut self.webhook_secret_file,
        ]
        .into_iter()
        .flatten()
        {
            *file = base.join(&*file);
        }
    }

    /// An account on `url` in `region` with every other setting at its
    /// default and no secrets; for tests and tools that fill them in.
    pub fn at(url: url::Url, region: &str) -> Self {
        AgoraConfig {
            url: HttpUrl(url),
            region: region.to_owned(),
            app_id: None,
            app_id_file: None,
            token: None,
            token_file: None,
            webhook_secret: None,
            webhook_secret_file: None,
            reconcile: default_reconcile(),
            gap_hold: default_gap_hold(),
            rejoin_ban: default_rejoin_ban(),
            timeouts: Timeouts::default(),
            create: BTreeMap::new(),
        }
    }

    /// How to talk to the platform, for `rooms` rooms.
    pub fn http_options(&self, rooms: usize) -> HttpOptions {
        HttpOptions {
            connect_timeout: self.timeouts.connect.0,
            request_timeout: self.timeouts.request.0,
            stream_idle_timeout: self.timeouts.stream_idle.0,
            rooms,
            ..HttpOptions::default()
        }
    }

    /// Checks what can be checked without the network or the secrets'
    /// values; the message names the field.
    pub fn validate(&self) -> Result<(), String> {
        if !REGIONS.contains(&self.region.as_str()) {
            return Err(format!(
                "region `{}` is not one of Agora's: {}",
                self.region,
                REGIONS.join(", ")
            ));
        }
        for (field, given) in [
            (
                "app_id",
                self.app_id.is_some() || self.app_id_file.is_some(),
            ),
            ("token", self.token.is_some() || self.token_file.is_some()),
        ] {
            if !given {
                return Err(format!(
                    "give `{field}` (${{VARIABLE}} or the value) or `{field}_file`"
                ));
            }
        }
        for (field, value, file) in [
            ("app_id", self.app_id.is_some(), self.app_id_file.is_some()),
            ("token", self.token.is_some(), self.token_file.is_some()),
            (
                "webhook_secret",
                self.webhook_secret.is_some(),
                self.webhook_secret_file.is_some(),
            ),
        ] {
            if value && file {
                return Err(format!("give either `{field}` or `{field}_file`, not both"));
            }
        }
        for (field, span) in [("reconcile", self.reconcile), ("gap_hold", self.gap_hold)] {
            if span.0 < Duration::from_millis(100) {
                return Err(format!("`{field}` must be at least 100ms"));
            }
        }
        for (room, create) in &self.create {
            create
                .validate(room)
                .map_err(|message| format!("create.{room}: {message}"))?;
        }
        Ok(())
    }
}

impl CreateConfig {
    fn validate(&self, room: &str) -> Result<(), String> {
        if room.trim().is_empty() || room.chars().count() > MAX_ID {
            return Err(format!(
                "a roomUuid has 1 to {MAX_ID} characters; `{room}` does not fit"
            ));
        }
        if self.name.trim().is_empty() || self.name.chars().count() > MAX_ID {
            return Err(format!("`name` must have 1 to {MAX_ID} characters"));
        }
        if let Some(start) = &self.start {
            crate::clock::parse_timestamp(start).map_err(|err| format!("`start`: {err}"))?;
        }
        if self
            .duration
            .is_some_and(|duration| duration.0.as_secs() > MAX_DURATION)
        {
            return Err(format!(
                "`duration` is at most {MAX_DURATION} seconds (a day)"
            ));
        }
        Ok(())
    }

    /// The schedule to send: the start in UNIX milliseconds (`now` when
    /// none is given), whole seconds for the rest.
    pub fn schedule(&self, now: f64) -> wire::ScheduleWire {
        let start = self
            .start
            .as_deref()
            .and_then(|text| crate::clock::parse_timestamp(text).ok())
            .unwrap_or(now);
        wire::ScheduleWire {
            start_time: Some((start * 1000.0).round() as u64),
            duration: self.duration.map(|span| span.0.as_secs()),
            close_delay: self.close_delay.map(|span| span.0.as_secs()),
        }
    }
}

fn default_url() -> HttpUrl {
    HttpUrl(url::Url::parse("https://api.sd-rtn.com").expect("a valid URL"))
}

fn default_reconcile() -> Span {
    Span::secs(30)
}

fn default_gap_hold() -> Span {
    Span::secs(2)
}

fn default_rejoin_ban() -> Span {
    Span::secs(600)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<AgoraConfig, String> {
        crate::yaml::from_str::<AgoraConfig>(yaml).map_err(|err| err.to_string())
    }

    const GOOD: &str = "region: cn\napp_id: ${AGORA_APP_ID}\ntoken: ${AGORA_TOKEN}\n";

    #[test]
    fn reads_the_documented_shape_with_defaults() {
        let config = parse(&format!(
            "{GOOD}create:\n  physics-101:\n    name: Physics 101\n    start: \"2026-11-23T09:00:00+08:00\"\n    duration: 90m\n    close_delay: 10m\n    join_muted: true\n"
        ))
        .unwrap();
        config.validate().unwrap();
        assert_eq!(config.url.0.as_str(), "https://api.sd-rtn.com/");
        assert_eq!(config.reconcile, Span::secs(30));
        assert_eq!(config.gap_hold, Span::secs(2));
        let room = &config.create["physics-101"];
        let schedule = room.schedule(0.0);
        assert_eq!(schedule.start_time, Some(1_795_395_600_000));
        assert_eq!(
            (schedule.duration, schedule.close_delay),
            (Some(5400), Some(600))
        );
    }

    #[test]
    fn mistakes_are_named() {
        let cases = [
            ("region: mars\napp_id: a\ntoken: t\n", "region `mars`"),
            ("region: cn\ntoken: t\n", "give `app_id`"),
            ("region: cn\napp_id: a\n", "give `token`"),
            (
                "region: cn\napp_id: a\ntoken: t\ntoken_file: /t\n",
                "either `token` or `token_file`",
            ),
            (
                "region: cn\napp_id: a\ntoken: t\nreconcile: 0s\n",
                "`reconcile`",
            ),
            (
                "region: cn\napp_id: a\ntoken: t\ncreate:\n  r: { name: \"\" }\n",
                "create.r: `name`",
            ),
            (
                "region: cn\napp_id: a\ntoken: t\ncreate:\n  r: { name: n, start: soon }\n",
                "create.r: `start`",
            ),
            (
                "region: cn\napp_id: a\ntoken: t\ncreate:\n  r: { name: n, duration: 25h }\n",
                "`duration` is at most",
            ),
        ];
        for (yaml, expected) in cases {
            let err = match parse(yaml) {
                Ok(config) => config.validate().unwrap_err(),
                Err(err) => err,
            };
            assert!(err.contains(expected), "{yaml}: {err}");
        }
        let err = parse("region: cn\napp_id: 12345\ntoken: t\n").unwrap_err();
        assert!(err.contains("a secret must be text"), "{err}");
    }
}
