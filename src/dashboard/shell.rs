//! The frame every dashboard page shares: head, header, skip link, and the
//! small helpers its views use (badges, times).

use std::fmt::Write as _;

use crate::clock::Zone;
use crate::report::markup::esc;
use crate::report::zone::ZoneTimes;
use crate::runtime::status::{Phase, RoomSnapshot, SessionNow};

/// What a page needs from its frame.
pub struct Frame<'a> {
    /// The page's title.
    pub title: &'a str,
    /// Where its live updates come from.
    pub live: &'a str,
    /// Without JavaScript the page reloads itself this often (seconds).
    pub refresh_without_js: Option<u32>,
}

/// Opens a page: everything up to and including `<main>`.
pub fn open(out: &mut String, frame: &Frame<'_>) {
    let _ = write!(
        out,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"color-scheme\" content=\"light dark\">\
         <title>{title} · usher</title>\
         <link rel=\"stylesheet\" href=\"/assets/dashboard.css\">\
         <script src=\"/assets/dashboard.js\" defer></script>",
        title = esc(frame.title)
    );
    if let Some(seconds) = frame.refresh_without_js {
        let _ = write!(
            out,
            "<noscript><meta http-equiv=\"refresh\" content=\"{seconds}\"></noscript>"
        );
    }
    let _ = write!(
        out,
        "</head><body data-live=\"{live}\"><a class=\"skip\" href=\"#main\">Skip to content</a>\
         <header class=\"top\"><a class=\"home\" href=\"/\">usher</a>\
         <span id=\"live-state\" class=\"live-state\" role=\"status\" aria-live=\"polite\"></span></header>\
         <main id=\"main\" tabindex=\"-1\">",
        live = esc(frame.live)
    );
}

/// Closes a page opened with [`open`].
pub fn close(out: &mut String) {
    out.push_str("</main></body></html>\n");
}

/// The word and style for a room's phase.
pub fn phase(phase: Phase) -> (&'static str, &'static str) {
    match phase {
        Phase::Connecting => ("connecting", "warn"),
        Phase::Connected => ("connected", "ok"),
        Phase::Reconnecting => ("reconnecting", "bad"),
        Phase::Failed => ("failed", "bad"),
        Phase::Stopped => ("stopped", "warn"),
    }
}

/// A time of day in the zone the dashboard shows, from an RFC 3339 stamp
/// (as the audit log and the status write them).
pub fn clock_of(stamp: &str) -> String {
    crate::clock::parse_timestamp(stamp)
        .map(clock)
        .unwrap_or_else(|_| stamp.to_owned())
}

/// A time of day in the zone the dashboard shows: the machine's.
pub fn clock(at: f64) -> String {
    static MACHINE: std::sync::OnceLock<Zone> = std::sync::OnceLock::new();
    MACHINE.get_or_init(Zone::system).clock(at)
}

/// The room's platform account, with its kind when the name does not say.
pub fn platform(room: &RoomSnapshot) -> String {
    if room.platform_kind.is_empty() || room.platform == room.platform_kind {
        esc(&room.platform).to_string()
    } else {
        format!("{} ({})", esc(&room.platform), room.platform_kind)
    }
}

/// The timetable session under way, with when it ends, or a dash.
pub fn timetable_session(session: Option<&SessionNow>) -> String {
    match session {
        Some(session) => format!(
            "{} <small>until {}</small>",
            esc(&session.title),
            esc(session.end.get(11..16).unwrap_or(&session.end))
        ),
        None => "<span class=\"none\" aria-label=\"none\">—</span>".to_owned(),
    }
}

/// "yes" or an empty cell, for flags.
pub fn flag(on: bool, word: &str) -> String {
    if on {
        format!("<span class=\"flag\">{}</span>", esc(word))
    } else {
        "<span class=\"none\" aria-label=\"no\">—</span>".to_owned()
    }
}

/// A name, or a dash for nobody.
pub fn name_or_dash(name: Option<&str>) -> String {
    match name {
        Some(name) => esc(name).to_string(),
        None => "<span class=\"none\" aria-label=\"nobody\">—</span>".to_owned(),
    }
}
