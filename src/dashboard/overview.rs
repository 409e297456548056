//! The overview: every room on one page, rooms with trouble first.
//!
//! Each room is one table row rendered from its status alone, so a live
//! view re-renders only the rooms whose status changed and sends the rows
//! that came out different.

use std::fmt::Write as _;

use super::Dashboard;
use super::journal::Glance;
use super::shell::{self, Frame, flag, name_or_dash};
use crate::report::markup::{esc, path_segment};
use crate::runtime::status::{Registry, RoomSnapshot};

/// One room's row.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The row's element id.
    pub id: String,
    /// How much is wrong (see [`RoomSnapshot::trouble`]).
    pub trouble: u8,
    /// The room.
    pub alias: String,
    /// The `<tr>`.
    pub html: String,
}

/// The element id of room `alias`'s row.
pub fn row_id(alias: &str) -> String {
    format!("room-{}", path_segment(alias))
}

/// The URL of room `alias`'s page.
pub fn room_url(alias: &str) -> String {
    format!("/room/{}", path_segment(alias))
}

/// Room `alias`'s row at UNIX time `now`, from its status and who is in it.
pub fn row(alias: &str, room: &RoomSnapshot, people: &Glance, now: f64) -> Row {
    let trouble = room.trouble(now);
    let id = row_id(alias);
    let (phase, style) = shell::phase(room.phase);
    let mut html = String::with_capacity(1024);
    let _ = write!(
        html,
        "<tr id=\"{id}\" class=\"trouble-{trouble}\" data-room=\"{alias}\">\
         <th scope=\"row\" data-label=\"Room\"><a href=\"{url}\">{alias}</a> <small>{platform}</small></th>\
         <td data-label=\"Health\" class=\"health\"><span class=\"badge {style}\">{phase}</span>",
        id = esc(&id),
        alias = esc(alias),
        url = esc(&room_url(alias)),
        platform = shell::platform(room),
    );
    if let Some(reason) = &room.reason {
        let _ = write!(
            html,
            " <small title=\"{}\">{}</small>",
            esc(reason),
            esc(&shorten(reason, 60))
        );
    }
    if room.paused.is_some() {
        html.push_str(" <span class=\"badge warn\">paused</span>");
    }
    let _ = write!(
        html,
        "</td><td data-label=\"In the room\" class=\"n people\">{in_room}</td>\
         <td data-label=\"Waiting\" class=\"n waiting\">{waiting}</td>\
         <td data-label=\"Locked\" class=\"locked\">{locked}</td>\
         <td data-label=\"Guests muted\" class=\"guests-muted\">{guests_muted}</td>\
         <td data-label=\"Presenter\" class=\"presenter\">{presenter}</td>\
         <td data-label=\"Speaker\" class=\"speaker\">{speaker}</td>\
         <td data-label=\"Session\" class=\"timetable\">{timetable}</td>\
         <td data-label=\"Last command\" class=\"last\">",
        in_room = people.in_room,
        waiting = people.waiting,
        locked = flag(people.locked, "locked"),
        guests_muted = flag(people.guests_muted, "muted"),
        presenter = name_or_dash(people.presenter.as_deref()),
        speaker = name_or_dash(people.speaker.as_deref()),
        timetable = shell::timetable_session(room.timetable_session.as_ref()),
    );
    match &room.last_command {
        Some(last) => {
            let _ = write!(
                html,
                "{text} <small>by {rule}, <span class=\"outcome {outcome}\">{outcome}</span> at {time}</small>",
                text = esc(&last.text),
                rule = esc(&last.rule),
                outcome = last.outcome,
                time = esc(&shell::clock_of(&last.time)),
            );
        }
        None => html.push_str(&name_or_dash(None)),
    }
    let errors: u64 = room.rules.iter().map(|rule| rule.errors).sum();
    let disabled = room.rules.iter().filter(|rule| rule.disabled).count();
    html.push_str("</td><td data-label=\"Rule errors\" class=\"n rule-errors\">");
    if errors == 0 {
        html.push('0');
    } else {
        let _ = write!(html, "<span class=\"bad\">{errors}</span>");
        if disabled > 0 {
            let _ = write!(html, " <small>{disabled} disabled</small>");
        }
        // The failing rules by name; the latest error in full on hover.
        let failing: Vec<&str> = room
            .rules
            .iter()
            .filter(|rule| rule.errors > 0)
            .map(|rule| rule.name.as_str())
            .collect();
        let latest = room
            .rules
            .iter()
            .filter_map(|rule| rule.last_error.as_deref())
            .max_by(|a, b| a.get(..24).cmp(&b.get(..24)))
            .unwrap_or_default();
        let _ = write!(
            html,
            " <small title=\"{}\">in {}</small>",
            esc(latest),
            esc(&failing.join(", "))
        );
    }
    html.push_str("</td></tr>");
    Row {
        id,
        trouble,
        alias: alias.to_owned(),
        html,
    }
}

/// Puts rooms with trouble first, then by alias.
pub fn sort(rows: &mut [Row]) {
    rows.sort_by(|a, b| {
        b.trouble
            .cmp(&a.trouble)
            .then_with(|| a.alias.cmp(&b.alias))
    });
}

/// Every room's row, at UNIX time `now`, rooms with trouble first.
pub fn rows(registry: &Registry, dashboard: &Dashboard, now: f64) -> Vec<Row> {
    let mut rows: Vec<Row> = registry
        .rooms()
        .iter()
        .map(|(alias, status)| {
            let people = dashboard.glance(alias);
            status.read(|room| row(alias, room, &people, now))
        })
        .collect();
    sort(&mut rows);
    rows
}

/// The line above the table: how many rooms, how many in trouble.
pub fn summary(registry: &Registry, rows: &[Row]) -> String {
    let trouble = rows.iter().filter(|row| row.trouble > 0).count();
    let down = rows.iter().filter(|row| row.trouble > 1).count();
    let mut html = format!(
        "<b>{}</b> rooms · <b>{}</b> connected · ",
        rows.len(),
        rows.len() - down
    );
    if trouble == 0 {
        html.push_str("no trouble");
    } else {
        let _ = write!(html, "<b class=\"bad\">{trouble}</b> with trouble");
    }
    if let Some(error) = &registry.last_reload_error() {
        let _ = write!(
            html,
            " · <span class=\"bad\">the last rule reload was refused: {}</span>",
            esc(&shorten(error, 200))
        );
    }
    html
}

/// The whole overview page.
pub fn page(registry: &Registry, dashboard: &Dashboard, now: f64) -> String {
    let rows = rows(registry, dashboard, now);
    let mut out = String::with_capacity(1024 + rows.len() * 1200);
    shell::open(
        &mut out,
        &Frame {
            title: "Rooms",
            live: "/live",
            refresh_without_js: Some(10),
        },
    );
    let _ = write!(
        out,
        "<h1>Rooms</h1><p id=\"summary\" class=\"summary\">{}</p>\
         <div class=\"scroll\"><table id=\"rooms\" class=\"rooms\"><caption class=\"sr-only\">Every room, rooms with trouble first</caption>\
         <thead><tr><th scope=\"col\">Room</th><th scope=\"col\">Health</th>\
         <th scope=\"col\" class=\"n\">In the room</th><th scope=\"col\" class=\"n\">Waiting</th>\
         <th scope=\"col\">Locked</th><th scope=\"col\">Guests muted</th><th scope=\"col\">Presenter</th>\
         <th scope=\"col\">Speaker</th><th scope=\"col\">Session</th><th scope=\"col\">Last command</th>\
         <th scope=\"col\" class=\"n\">Rule errors</th></tr></thead><tbody>",
        summary(registry, &rows)
    );
    for row in &rows {
        out.push_str(&row.html);
    }
    out.push_str("</tbody></table></div>");
    shell::close(&mut out);
    out
}

/// `text`, cut to `limit` characters with an ellipsis.
pub fn shorten(text: &str, limit: usize) -> String {
    match text.char_indices().nth(limit) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::status::Phase;

    #[test]
    fn rooms_in_trouble_come_first_and_names_are_escaped() {
        let registry = Registry::default();
        let dashboard = Dashboard::default();
        for alias in ["a-hall", "b-hall", "c<hall>"] {
            registry
                .add_room(alias, "campus", false)
                .update(|room| room.set_phase(Phase::Connected, None));
        }
        registry
            .room("b-hall")
            .unwrap()
            .update(|room| room.set_phase(Phase::Failed, Some("HTTP 502 <bad>".into())));
        let rows = rows(&registry, &dashboard, 0.0);
        let order: Vec<&str> = rows.iter().map(|row| row.alias.as_str()).collect();
        assert_eq!(order, ["b-hall", "a-hall", "c<hall>"]);
        assert!(rows[0].html.contains("HTTP 502 &lt;bad&gt;"));
        assert!(rows[2].html.contains("c&lt;hall&gt;"));
        assert!(!rows[2].html.contains("<hall>"));
        let html = page(&registry, &dashboard, 0.0);
        assert!(html.contains("<b>3</b> rooms · <b>2</b> connected"));
    }

    #[test]
    fn a_row_shows_the_platform_and_the_timetable_session() {
        let registry = Registry::default();
        let dashboard = Dashboard::default();
        let status = registry.add_room("hall", "campus", false);
        status.update(|room| room.platform_kind = "vmr");
        let zone = crate::clock::Zone::parse("Europe/Berlin").unwrap();
        let optics = crate::timetable::Session {
            title: "Optics <1>".into(),
            start: 1_795_338_000.0,
            end: 1_795_343_400.0,
            description: String::new(),
            location: String::new(),
            uid: "optics".into(),
            occurrence: 1_795_338_000.0,
        };
        let state = crate::model::RoomState::new();
        status.timetable(&state, &zone, None, Some(&optics), optics.start);
        let row = &rows(&registry, &dashboard, 0.0)[0].html;
        assert!(row.contains("<small>campus (vmr)</small>"), "{row}");
        assert!(
            row.contains("Optics &lt;1&gt; <small>until 11:30</small>"),
            "the end in the room's zone: {row}"
        );
        status.timetable(&state, &zone, Some(&optics), None, optics.end);
        let row = &rows(&registry, &dashboard, 0.0)[0].html;
        assert!(!row.contains("Optics"), "{row}");
    }

    #[test]
    fn long_text_is_cut_at_a_character() {
        assert_eq!(shorten("ééééé", 3), "ééé…");
        assert_eq!(shorten("short", 10), "short");
    }
}
