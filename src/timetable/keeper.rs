//! Keeping a room's timetable current.
//!
//! A [`Keeper`] reads the room's timetable when usher starts (a file must
//! be readable then; a feed starts from its copy on disk, if any), then
//! reads it again every `refresh`. A copy is accepted only when it parses
//! and its sessions can be worked out; anything else is an error naming the
//! room and the source, and the last good copy stays in force. Either way
//! the room's sessions are worked out afresh for the window ahead, so the
//! schedule moves along with time.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::config::{ScheduleSettings, Source, TimetableConfig};
use super::fetch::{Feed, FetchError, Fetched, read_file};
use super::parse::{Calendar, CalendarError, parse};
use super::schedule::{RoomSchedule, Session, SharedSchedule, TIMETABLE};
use super::sessions::sessions;
use crate::clock::{Zone, unix_now};

/// How far back the schedule reaches: a session that began yesterday may
/// still be running.
const BEHIND: f64 = 86_400.0;

/// How far ahead the schedule reaches: past the longest semester break, so
/// `room.next_session()` finds the first lecture of the next term.
const AHEAD: f64 = 370.0 * 86_400.0;

/// A timetable that cannot be used, naming the room and the source.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimetableError {
    /// The text could not be had.
    #[error("room `{room}`: timetable {from}: {error}")]
    Unavailable {
        /// The room.
        room: String,
        /// The file, or the feed (shown without secrets).
        from: String,
        /// Why.
        error: FetchError,
    },
    /// The text is not a usable calendar.
    #[error("{}", prefix_lines(&format!("room `{room}`: timetable "), &error.describe(from)))]
    Invalid {
        /// The room.
        room: String,
        /// The file, or the feed.
        from: String,
        /// Every problem, at its line.
        error: CalendarError,
    },
}

fn prefix_lines(prefix: &str, lines: &str) -> String {
    lines
        .lines()
        .map(|line| format!("{prefix}{line}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// What a refresh found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refreshed {
    /// A new copy was accepted.
    Updated,
    /// The timetable had not changed.
    Unchanged,
}

/// Keeps one room's timetable current.
#[derive(Debug)]
pub struct Keeper {
    room: String,
    config: TimetableConfig,
    zone: Zone,
    schedule: Arc<SharedSchedule>,
    feed: Option<Feed>,
    /// The last good calendar and the text it was read from.
    accepted: Option<(Calendar, String)>,
}

impl Keeper {
    /// Sets up a room's schedule from its settings. A timetable file is
    /// read now and must be good; a feed begins from its copy in
    /// `cache_dir` (if any) and is fetched when the keeper runs.
    pub fn open(
        room: &str,
        settings: &ScheduleSettings,
        cache_dir: Option<&std::path::Path>,
    ) -> Result<(RoomSchedule, Option<Keeper>), TimetableError> {
        let schedule = RoomSchedule::new(settings.zone());
        let Some(config) = settings.timetable.clone() else {
            return Ok((schedule, None));
        };
        let mut keeper = Keeper {
            room: room.to_owned(),
            zone: schedule.zone.clone(),
            schedule: schedule.schedule.clone(),
            feed: None,
            accepted: None,
            config,
        };
        match &keeper.config.source {
            Source::File(path) => {
                let text = read_file(path).map_err(|error| keeper.unavailable(error))?;
                keeper.accept(text)?;
            }
            Source::Url(url) => {
                let mut feed =
                    Feed::new(url.clone(), cache_dir).map_err(|error| keeper.unavailable(error))?;
                if let Some(text) = feed.cached() {
                    if let Err(err) = keeper.accept(text) {
                        tracing::warn!("{err} (the copy kept on disk; it is fetched again)");
                    }
                }
                keeper.feed = Some(feed);
            }
        }
        keeper.publish(unix_now());
        Ok((schedule, Some(keeper)))
    }

    /// The last good calendar, if there is one.
    pub fn calendar(&self) -> Option<&Calendar> {
        self.accepted.as_ref().map(|(calendar, _)| calendar)
    }

    fn source(&self) -> String {
        self.config.source.to_string()
    }

    fn unavailable(&self, error: FetchError) -> TimetableError {
        TimetableError::Unavailable {
            room: self.room.clone(),
            from: self.source(),
            error,
        }
    }

    /// The sessions of `calendar` in the window around `now`.
    fn sessions_of(&self, calendar: &Calendar, now: f64) -> Result<Vec<Session>, TimetableError> {
        sessions(calendar, &self.zone, now - BEHIND, now + AHEAD).map_err(|error| {
            TimetableError::Invalid {
                room: self.room.clone(),
                from: self.source(),
                error,
            }
        })
    }

    /// Takes `text` as the timetable if it is a good one.
    fn accept(&mut self, text: String) -> Result<Refreshed, TimetableError> {
        if self
            .accepted
            .as_ref()
            .is_some_and(|(_, known)| *known == text)
        {
            return Ok(Refreshed::Unchanged);
        }
        let calendar = parse(&text).map_err(|error| TimetableError::Invalid {
            room: self.room.clone(),
            from: self.source(),
            error,
        })?;
        self.sessions_of(&calendar, unix_now())?;
        self.accepted = Some((calendar, text));
        Ok(Refreshed::Updated)
    }

    /// Reads the timetable again. On any error the last good copy stays.
    /// Either way the sessions are worked out afresh for the time ahead.
    pub async fn refresh(&mut self) -> Result<Refreshed, TimetableError> {
        let refreshed = self.read_again().await;
        self.publish(unix_now());
        refreshed
    }

    async fn read_again(&mut self) -> Result<Refreshed, TimetableError> {
        match &self.config.source {
            Source::File(path) => {
                let text = read_file(path).map_err(|error| self.unavailable(error))?;
                self.accept(text)
            }
            Source::Url(_) => {
                let Some(feed) = &self.feed else {
                    return Ok(Refreshed::Unchanged);
                };
                match feed
                    .fetch()
                    .await
                    .map_err(|error| self.unavailable(error))?
                {
                    Fetched::Unchanged => Ok(Refreshed::Unchanged),
                    Fetched::Text(text, validators) => {
                        let refreshed = self.accept(text.clone())?;
                        if let Some(feed) = &mut self.feed {
                            feed.accept(&text, validators);
                        }
                        Ok(refreshed)
                    }
                }
            }
        }
    }

    /// Works out the sessions of the last good copy for the window around
    /// `now` and hands them to the room.
    pub fn publish(&self, now: f64) {
        let Some((calendar, _)) = &self.accepted else {
            return;
        };
        match self.sessions_of(calendar, now) {
            Ok(found) => self.schedule.set_source(TIMETABLE, found),
            Err(err) => tracing::warn!("{err}"),
        }
    }

    /// Refreshes now and then every `refresh` until `cancel` fires,
    /// telling `on_error` of each failure.
    pub async fn run(self, on_error: impl Fn(&TimetableError), cancel: CancellationToken) {
        let span = tracing::info_span!("timetable", room = %self.room);
        self.keep(on_error, cancel).instrument(span).await;
    }

    async fn keep(mut self, on_error: impl Fn(&TimetableError), cancel: CancellationToken) {
        let mut first = true;
        loop {
            if !first || self.feed.is_some() {
                match self.refresh().await {
                    Ok(Refreshed::Updated) => {
                        tracing::info!(source = %self.source(), sessions = self.schedule.get().sessions().len(), "timetable updated");
                    }
                    Ok(Refreshed::Unchanged) => {}
                    Err(err) => {
                        let kept = if self.accepted.is_some() {
                            "; the last good timetable stays in force"
                        } else {
                            "; the room has no timetable until it can be read"
                        };
                        tracing::error!("{err}{kept}");
                        on_error(&err);
                    }
                }
            }
            first = false;
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(self.config.refresh) => {}
            }
        }
    }
}
