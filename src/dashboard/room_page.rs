//! A room's page: its state, roster, timeline of events and the commands
//! they caused (with the rule and handler behind each, as the audit log
//! says), what shadow and dry-run rules would have sent, and its rules.
//!
//! Each part is rendered on its own so a live view can send only the parts
//! that changed.

use std::fmt::Write as _;

use super::journal::{Entry, Glance, Journal, What};
use super::overview::{room_url, shorten};
use super::shell::{self, Frame, flag, name_or_dash};
use crate::model::Participant;
use crate::report::markup::{esc, path_segment};
use crate::runtime::audit::{AuditRecord, Outcome};
use crate::runtime::status::RoomSnapshot;

/// The page's heading and the room's state: its status, and who is in it.
pub fn header(alias: &str, room: &RoomSnapshot, people: &Glance) -> String {
    let (phase, style) = shell::phase(room.phase);
    let mut html = format!(
        "<h1>{alias}</h1><p><span class=\"badge {style}\">{phase}</span> since {since}",
        alias = esc(alias),
        since = esc(&shell::clock_of(&room.since)),
    );
    if let Some(reason) = &room.reason {
        let _ = write!(html, ": {}", esc(reason));
    }
    if let Some(paused) = &room.paused {
        let _ = write!(
            html,
            " · <span class=\"badge warn paused\">paused</span> {}",
            esc(paused)
        );
    }
    let _ = write!(
        html,
        "</p><dl class=\"facts\">\
         <div><dt>Platform</dt><dd>{platform}</dd></div>\
         <div><dt>In the room</dt><dd id=\"in-room\">{in_room}</dd></div>\
         <div><dt>Waiting</dt><dd id=\"waiting\">{waiting}</dd></div>\
         <div><dt>Locked</dt><dd>{locked}</dd></div>\
         <div><dt>Guests muted</dt><dd>{guests_muted}</dd></div>\
         <div><dt>Presenter</dt><dd>{presenter}</dd></div>\
         <div><dt>Speaker</dt><dd>{speaker}</dd></div>\
         <div><dt>Session</dt><dd>{timetable}</dd></div>\
         <div><dt>Reconnects</dt><dd>{reconnects}</dd></div></dl>",
        platform = shell::platform(room),
        in_room = people.in_room,
        waiting = people.waiting,
        locked = flag(people.locked, "locked"),
        guests_muted = flag(people.guests_muted, "muted"),
        presenter = name_or_dash(people.presenter.as_deref()),
        speaker = name_or_dash(people.speaker.as_deref()),
        timetable = shell::timetable_session(room.timetable_session.as_ref()),
        reconnects = room.reconnects,
    );
    html
}

/// The roster's rows; `speaker` is marked as speaking.
pub fn roster_rows(roster: &[std::sync::Arc<Participant>], speaker: Option<&str>) -> String {
    let mut html = String::with_capacity(roster.len() * 600);
    if roster.is_empty() {
        html.push_str("<tr><td colspan=\"7\">Nobody is here.</td></tr>");
    }
    for p in roster {
        let place = if p.is_waiting() {
            "waiting"
        } else if p.in_room() {
            "in the room"
        } else {
            "connecting"
        };
        let speaking = speaker == Some(p.display_name.as_str());
        let _ = write!(
            html,
            "<tr id=\"p-{id}\" data-name=\"{name}\" class=\"{class}\">\
             <th scope=\"row\" data-label=\"Name\">{name}{speaking}</th>\
             <td data-label=\"Role\" class=\"role\">{role}</td>\
             <td data-label=\"Where\" class=\"where\">{place}</td>\
             <td data-label=\"Muted\" class=\"muted\">{muted}</td>\
             <td data-label=\"Hand\" class=\"hand\">{hand}</td>\
             <td data-label=\"Presenting\" class=\"presenting\">{presenting}</td>\
             <td data-label=\"Spotlit\" class=\"spotlit\">{spotlit}</td></tr>",
            id = esc(&path_segment(&p.uuid)),
            name = esc(&p.display_name),
            class = if p.is_waiting() { "waiting" } else { "" },
            speaking = if speaking {
                " <span class=\"flag speaking\">speaking</span>"
            } else {
                ""
            },
            role = if p.is_host() { "host" } else { "guest" },
            muted = flag(p.muted, "muted"),
            hand = if p.hand_raised() {
                format!(
                    "<span class=\"flag\">raised</span> <time data-since=\"{since:.0}\">at {at}</time>",
                    since = p.buzz_time,
                    at = esc(&shell::clock(p.buzz_time)),
                )
            } else {
                flag(false, "")
            },
            presenting = flag(p.presenting, "presenting"),
            spotlit = flag(p.spotlit(), "spotlit"),
        );
    }
    html
}

/// One timeline entry as a list item.
pub fn entry(entry: &Entry) -> String {
    let time = format!("<time>{}</time>", esc(&shell::clock(entry.at)));
    let id = entry.seq;
    match &entry.what {
        What::Event(text) => format!(
            "<li id=\"e-{id}\" class=\"event\">{time} {}</li>",
            esc(text)
        ),
        What::Command(record) => command(id, &time, record),
        What::RuleError {
            rule,
            handler,
            error,
        } => format!(
            "<li id=\"e-{id}\" class=\"rule-error\">{time} <b>{}</b> failed in {}: <code>{}</code></li>",
            esc(rule),
            esc(handler),
            esc(error)
        ),
    }
}

/// A command with the rule, handler and event behind it, and its outcome.
fn command(id: u64, time: &str, record: &AuditRecord) -> String {
    let subject = record
        .participant
        .as_ref()
        .map(|who| format!("({})", who.name))
        .unwrap_or_default();
    let outcome = match (&record.outcome, &record.error) {
        (Outcome::Ok, _) => match record.latency_ms {
            Some(ms) => format!("ok in {ms:.0} ms"),
            None => "ok".to_owned(),
        },
        (outcome, Some(error)) => format!("{}: {error}", outcome.as_str()),
        (outcome, None) => outcome.as_str().to_owned(),
    };
    format!(
        "<li id=\"e-{id}\" class=\"command {class}\">{time} <b>{text}</b> \
         <span class=\"why\">← rule <span class=\"rule\">{rule}</span>, {handler}{subject} on {event}</span> \
         <span class=\"outcome {class}\">{outcome}</span></li>",
        class = record.outcome.as_str(),
        text = esc(&record.text),
        rule = esc(&record.rule),
        handler = esc(&record.handler),
        subject = esc(&subject),
        event = esc(&record.event),
        outcome = esc(&outcome),
    )
}

/// The rules' rows: counters and last error.
pub fn rules_rows(room: &RoomSnapshot) -> String {
    let mut html = String::new();
    if room.rules.is_empty() {
        html.push_str("<tr><td colspan=\"5\">No rules run here.</td></tr>");
    }
    for rule in &room.rules {
        let _ = write!(
            html,
            "<tr><th scope=\"row\" data-label=\"Rule\">{name}</th>\
             <td data-label=\"Calls\" class=\"n\">{calls}</td>\
             <td data-label=\"Errors\" class=\"n\">{errors}</td>\
             <td data-label=\"State\">{state}</td>\
             <td data-label=\"Last error\" class=\"last-error\">{last}</td></tr>",
            name = esc(&rule.name),
            calls = rule.calls,
            errors = rule.errors,
            state = if rule.disabled {
                "<span class=\"badge bad\">disabled</span>"
            } else {
                "<span class=\"badge ok\">running</span>"
            },
            last = rule.last_error.as_deref().map_or_else(
                || name_or_dash(None),
                |error| format!("<code>{}</code>", esc(&shorten(error, 400)))
            ),
        );
    }
    html
}

/// The form that pauses the room's rules, or resumes them while paused.
fn action_form(alias: &str, room: &RoomSnapshot) -> String {
    let (action, label) = if room.paused.is_some() {
        ("resume", "Resume the rules")
    } else {
        ("pause", "Pause the rules")
    };
    format!(
        "<form class=\"action\" method=\"post\" action=\"{url}/{action}\">\
         <label>Token <input type=\"password\" name=\"token\" autocomplete=\"current-password\" required></label> \
         <button type=\"submit\">{label}</button> \
         <small>While paused, the rules keep running and nothing they ask for is sent.</small></form>",
        url = esc(&room_url(alias)),
    )
}

/// Newest first, as the page lists them.
pub fn entries_newest_first(entries: &[Entry]) -> String {
    entries.iter().rev().map(entry).collect()
}

/// The whole page; with `actions`, the form that pauses or resumes the
/// room's rules.
pub fn page(alias: &str, room: &RoomSnapshot, journal: &Journal, actions: bool) -> String {
    let upto = journal.seq();
    let people = journal.glance();
    let shown = |entries: Vec<Entry>| -> Vec<Entry> {
        entries.into_iter().filter(|e| e.seq <= upto).collect()
    };
    let mut out = String::with_capacity(32 * 1024);
    shell::open(
        &mut out,
        &Frame {
            title: alias,
            live: &format!("{}/live?after={upto}", room_url(alias)),
            refresh_without_js: None,
        },
    );
    let _ = write!(
        out,
        "<nav class=\"crumbs\"><a href=\"/\">All rooms</a></nav>\
         <section id=\"room-header\" class=\"room-header\">{header}</section>\
         <div class=\"columns\"><section aria-labelledby=\"roster-title\"><h2 id=\"roster-title\">Roster</h2>\
         <div class=\"scroll\"><table class=\"roster\"><thead><tr><th scope=\"col\">Name</th><th scope=\"col\">Role</th>\
         <th scope=\"col\">Where</th><th scope=\"col\">Muted</th><th scope=\"col\">Hand</th>\
         <th scope=\"col\">Presenting</th><th scope=\"col\">Spotlit</th></tr></thead>\
         <tbody id=\"roster-rows\">{roster}</tbody></table></div></section>\
         <section aria-labelledby=\"timeline-title\"><h2 id=\"timeline-title\">Timeline</h2>\
         <p class=\"hint\">Events and the commands they caused, newest first.</p>\
         <ol id=\"timeline-list\" class=\"timeline\" reversed>{timeline}</ol></section></div>\
         <section aria-labelledby=\"held-title\"><h2 id=\"held-title\">Would have sent</h2>\
         <p class=\"hint\">Commands that shadow and dry-run rules asked for; none of them was sent.</p>\
         <ol id=\"held-list\" class=\"timeline\" reversed>{held}</ol></section>\
         <section aria-labelledby=\"rules-title\"><h2 id=\"rules-title\">Rules</h2>\
         <div class=\"scroll\"><table class=\"rules\"><thead><tr><th scope=\"col\">Rule</th>\
         <th scope=\"col\" class=\"n\">Calls</th><th scope=\"col\" class=\"n\">Errors</th>\
         <th scope=\"col\">State</th><th scope=\"col\">Last error</th></tr></thead>\
         <tbody id=\"rules-rows\">{rules}</tbody></table></div>{form}</section>",
        header = header(alias, room, &people),
        roster = roster_rows(&journal.roster(), people.speaker.as_deref()),
        timeline = entries_newest_first(&shown(journal.timeline_after(0))),
        held = entries_newest_first(&shown(journal.held_after(0))),
        rules = rules_rows(room),
        form = if actions {
            action_form(alias, room)
        } else {
            String::new()
        },
    );
    shell::close(&mut out);
    out
}
