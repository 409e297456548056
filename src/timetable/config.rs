//! The schedule settings a room (or a profile) carries: `timetable:` and
//! `zone:`.
//!
//! ```yaml
//! timetable: timetables/hall-a.ics           # a file, relative to the config…
//! timetable: https://timetable.example.edu/rooms/hall-a.ics   # …or a feed
//! timetable: { source: https://…/hall-a.ics, refresh: 5m }     # long form
//! zone: Europe/Berlin                          # default: the machine's zone
//! ```
//!
//! A feed must be `https://`; plain `http://` is allowed only to
//! 127.0.0.1, for tests. A source is shown without the middle of its path
//! or any query, since feed addresses often carry a private token.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use url::Url;

use crate::clock::Zone;
use crate::model::Span;

/// How often a feed is fetched again unless told otherwise.
pub const DEFAULT_REFRESH: Duration = Duration::from_secs(15 * 60);

/// The shortest refresh allowed, so a typo cannot hammer a server.
pub const MIN_REFRESH: Duration = Duration::from_secs(10);

/// Where a timetable comes from.
#[derive(Clone, PartialEq, Eq)]
pub enum Source {
    /// An `.ics` file.
    File(PathBuf),
    /// An `https://` feed.
    Url(Url),
}

impl Source {
    fn parse(text: &str) -> Result<Source, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("timetable: give an .ics file or an https:// URL".to_owned());
        }
        let lower = text.to_ascii_lowercase();
        if !lower.starts_with("http://") && !lower.starts_with("https://") {
            if lower.contains("://") {
                return Err(format!(
                    "timetable: {text:?} is neither a file nor an https:// URL"
                ));
            }
            return Ok(Source::File(PathBuf::from(text)));
        }
        let url =
            Url::parse(text).map_err(|err| format!("timetable: the URL cannot be read ({err})"))?;
        let loopback = url.host_str() == Some("127.0.0.1");
        if url.scheme() == "http" && !loopback {
            return Err(
                "timetable: use https:// (plain http:// only to 127.0.0.1, for tests)".to_owned(),
            );
        }
        Ok(Source::Url(url))
    }
}

impl fmt::Display for Source {
    /// A file as its path; a URL as scheme, host and last path segment.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::File(path) => write!(f, "{}", path.display()),
            Source::Url(url) => {
                let host = url.host_str().unwrap_or("");
                let port = url
                    .port()
                    .map(|port| format!(":{port}"))
                    .unwrap_or_default();
                let segments: Vec<&str> = url
                    .path_segments()
                    .map(|segments| segments.filter(|s| !s.is_empty()).collect())
                    .unwrap_or_default();
                let path = match segments.as_slice() {
                    [] => String::new(),
                    [only] => format!("/{only}"),
                    [.., last] => format!("/…/{last}"),
                };
                let query = if url.query().is_some() { "?…" } else { "" };
                write!(f, "{}://{host}{port}{path}{query}", url.scheme())
            }
        }
    }
}

impl fmt::Debug for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

/// A room's `timetable:` setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimetableConfig {
    /// Where it comes from.
    pub source: Source,
    /// How often it is read again.
    pub refresh: Duration,
}

impl<'de> Deserialize<'de> for TimetableConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Long {
            source: String,
            #[serde(default)]
            refresh: Option<Span>,
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Form {
            Short(String),
            Long(Long),
        }
        let form = Form::deserialize(deserializer).map_err(|_| {
            serde::de::Error::custom(
                "timetable: write a file or URL, or `{ source: https://…, refresh: 15m }`",
            )
        })?;
        let (source, refresh) = match form {
            Form::Short(source) => (source, None),
            Form::Long(long) => (long.source, long.refresh),
        };
        let refresh = refresh.map_or(DEFAULT_REFRESH, |span| span.0);
        if refresh < MIN_REFRESH {
            return Err(serde::de::Error::custom(format!(
                "timetable: refresh must be at least {}s",
                MIN_REFRESH.as_secs()
            )));
        }
        Ok(TimetableConfig {
            source: Source::parse(&source).map_err(serde::de::Error::custom)?,
            refresh,
        })
    }
}

/// The schedule settings of a room or a profile.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScheduleSettings {
    /// The room's timetable, if it has one.
    pub timetable: Option<TimetableConfig>,
    /// The room's zone; the machine's when not given.
    pub zone: Option<Zone>,
}

impl ScheduleSettings {
    /// These settings, with `fallback`'s (a profile's) where these have none.
    pub fn or(&self, fallback: &ScheduleSettings) -> ScheduleSettings {
        ScheduleSettings {
            timetable: self
                .timetable
                .clone()
                .or_else(|| fallback.timetable.clone()),
            zone: self.zone.clone().or_else(|| fallback.zone.clone()),
        }
    }

    /// The room's zone: the one given, else the machine's.
    pub fn zone(&self) -> Zone {
        self.zone.clone().unwrap_or_else(Zone::system)
    }

    /// A timetable file taken relative to `base` (the config's directory).
    pub fn relative_to(&mut self, base: &Path) {
        if let Some(TimetableConfig {
            source: Source::File(path),
            ..
        }) = &mut self.timetable
        {
            *path = base.join(&*path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(yaml: &str) -> Result<TimetableConfig, String> {
        crate::yaml::from_str(yaml).map_err(|err| err.to_string())
    }

    #[test]
    fn files_urls_and_the_long_form() {
        let file = read("hall-a.ics").unwrap();
        assert_eq!(file.source, Source::File("hall-a.ics".into()));
        assert_eq!(file.refresh, DEFAULT_REFRESH);
        let feed =
            read("{ source: \"https://t.example.edu/rooms/hall-a.ics\", refresh: 5m }").unwrap();
        assert!(matches!(feed.source, Source::Url(_)));
        assert_eq!(feed.refresh, Duration::from_secs(300));
        assert!(read("http://127.0.0.1:8123/a.ics").is_ok());
    }

    #[test]
    fn unsafe_or_unreadable_sources_are_refused() {
        let err = read("http://timetable.example.edu/a.ics").unwrap_err();
        assert!(err.contains("use https://"), "{err}");
        let err = read("ftp://example.edu/a.ics").unwrap_err();
        assert!(err.contains("neither a file nor an https:// URL"), "{err}");
        let err = read("{ source: a.ics, refresh: 1s }").unwrap_err();
        assert!(err.contains("at least 10s"), "{err}");
        let err = read("{ sauce: a.ics }").unwrap_err();
        assert!(err.contains("write a file or URL"), "{err}");
    }

    #[test]
    fn feed_addresses_are_shown_without_their_secrets() {
        let shown = Source::parse(
            "https://user:pw@calendar.example.com/calendar/ical/private-5e3cr3t/basic.ics?key=abc",
        )
        .unwrap()
        .to_string();
        assert_eq!(shown, "https://calendar.example.com/…/basic.ics?…");
    }

    #[test]
    fn a_rooms_settings_fall_back_to_a_profiles() {
        let profile = ScheduleSettings {
            timetable: Some(read("a.ics").unwrap()),
            zone: Some(Zone::parse("Europe/Berlin").unwrap()),
        };
        let room = ScheduleSettings {
            timetable: None,
            zone: Some(Zone::parse("Asia/Shanghai").unwrap()),
        };
        let merged = room.or(&profile);
        assert_eq!(merged.zone().name(), "Asia/Shanghai");
        assert_eq!(merged.timetable, profile.timetable);
    }
}
