//! A report as one self-contained HTML page: inline styles, an inline SVG
//! chart, no scripts and nothing fetched, so it can be mailed or archived
//! as it is. Light or dark follows the reader's system setting.

use std::fmt::Write as _;

use super::markup::esc;
use super::session::{Period, Report};
use super::zone::{ZoneTimes, duration};

/// The page's styles.
const STYLE: &str = include_str!("report.css");

/// The report as HTML.
pub fn render(report: &Report) -> String {
    let zone = &report.zone_used;
    let local = |stamp: &str| stamp.get(11..19).unwrap_or(stamp).to_owned();
    let mut out = String::with_capacity(16 * 1024);
    let date = report.start.get(..10).unwrap_or_default();
    let _ = write!(
        out,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"color-scheme\" content=\"light dark\">\
         <title>{room} — {date}</title><style>{STYLE}</style></head><body>\
         <main><header><h1>{room}</h1>{title}<p class=\"when\">{date}, {from}–{to} \
         ({length}, times in {zone_label})</p></header>",
        room = esc(&report.room),
        title = report
            .title
            .as_deref()
            .map(|title| format!("<p class=\"title\">{}</p>", esc(title)))
            .unwrap_or_default(),
        date = esc(date),
        from = esc(&local(&report.start)),
        to = esc(&local(&report.end)),
        length = duration(report.seconds),
        zone_label = esc(&report.zone),
    );
    let attendance = &report.attendance;
    let commands: usize = report.commands.iter().map(|r| r.commands.len()).sum();
    let _ = write!(
        out,
        "<section class=\"figures\" aria-label=\"Summary\">\
         <div><b>{peak}</b><span>peak, at {peak_at}</span></div>\
         <div><b>{average:.1}</b><span>on average</span></div>\
         <div><b>{people}</b><span>people came</span></div>\
         <div><b>{commands}</b><span>commands</span></div>\
         <div><b>{errors}</b><span>rule errors</span></div></section>",
        peak = attendance.peak,
        peak_at = esc(&local(&attendance.peak_at)),
        average = attendance.average,
        people = report.participants.len(),
        errors = report.rule_errors.len(),
    );
    out.push_str("<section><h2>Attendance</h2>");
    chart(&mut out, report);
    out.push_str("</section>");

    out.push_str(
        "<section><h2>Participants</h2><div class=\"scroll\"><table><thead><tr>\
         <th scope=\"col\">Name</th><th scope=\"col\">Role</th><th scope=\"col\">In the room</th>\
         <th scope=\"col\" class=\"n\">Total</th><th scope=\"col\" class=\"n\">Waiting</th>\
         <th scope=\"col\" class=\"n\">Hands</th><th scope=\"col\" class=\"n\">Floor</th>\
         <th scope=\"col\" class=\"n\">Presenting</th></tr></thead><tbody>",
    );
    for person in &report.participants {
        let stays: Vec<String> = person
            .stays
            .iter()
            .map(|stay| {
                let left = stay
                    .left
                    .as_deref()
                    .map_or_else(|| "end".to_owned(), &local);
                format!(
                    "{}–{} ({})",
                    esc(&local(&stay.joined)),
                    esc(&left),
                    duration(stay.seconds)
                )
            })
            .collect();
        let hands = if person.hands_raised == 0 {
            "—".to_owned()
        } else {
            format!(
                "{} ({} up)",
                person.hands_raised,
                duration(person.hand_seconds)
            )
        };
        let _ = write!(
            out,
            "<tr><th scope=\"row\">{name}</th><td>{role}</td><td>{stays}</td>\
             <td class=\"n\">{total}</td><td class=\"n\">{waiting}</td><td class=\"n\">{hands}</td>\
             <td class=\"n\">{floor}</td><td class=\"n\">{presenting}</td></tr>",
            name = esc(&person.name),
            role = person.role,
            stays = if stays.is_empty() {
                "waited only".to_owned()
            } else {
                stays.join("<br>")
            },
            total = duration(person.in_room_seconds),
            waiting = optional(person.waiting_seconds),
            floor = optional(person.floor_seconds),
            presenting = optional(person.presenting_seconds),
        );
    }
    out.push_str("</tbody></table></div></section>");

    periods(&mut out, "Presentations", &report.presentations, &local);
    periods(&mut out, "Lock periods", &report.locks, &local);

    out.push_str("<section><h2>Commands by rule</h2>");
    if report.commands.is_empty() {
        out.push_str("<p>No rule asked for anything.</p>");
    }
    for rule in &report.commands {
        let outcomes: Vec<String> = rule
            .outcomes
            .iter()
            .map(|(outcome, count)| format!("{count} {outcome}"))
            .collect();
        let _ = write!(
            out,
            "<details><summary><b>{}</b>: {}</summary><div class=\"scroll\"><table><thead><tr>\
             <th scope=\"col\">Time</th><th scope=\"col\">Command</th><th scope=\"col\">Why</th>\
             <th scope=\"col\">Outcome</th></tr></thead><tbody>",
            esc(&rule.rule),
            esc(&outcomes.join(", "))
        );
        for line in &rule.commands {
            let outcome = match &line.error {
                Some(error) => format!("{}: {}", line.outcome, error),
                None => line.outcome.to_owned(),
            };
            let _ = write!(
                out,
                "<tr class=\"{class}\"><td>{time}</td><td>{text}</td><td>{why} on {event}</td><td>{outcome}</td></tr>",
                class = line.outcome,
                time = esc(&local(&line.time)),
                text = esc(&line.text),
                why = esc(&line.why),
                event = esc(&line.event),
                outcome = esc(&outcome),
            );
        }
        out.push_str("</tbody></table></div></details>");
    }
    out.push_str("</section><section><h2>Rule errors</h2>");
    if report.rule_errors.is_empty() {
        out.push_str("<p>None.</p>");
    } else {
        out.push_str("<ul class=\"errors\">");
        for line in &report.rule_errors {
            let _ = write!(
                out,
                "<li><time>{}</time> <b>{}</b> in {}: <code>{}</code></li>",
                esc(&local(&line.time)),
                esc(&line.rule),
                esc(&line.handler),
                esc(&line.error)
            );
        }
        out.push_str("</ul>");
    }
    let _ = writeln!(
        out,
        "</section><footer>Written by usher {} for {}, {}.</footer></main></body></html>",
        env!("CARGO_PKG_VERSION"),
        esc(&report.room),
        esc(&zone.timestamp(report.start_at + report.seconds))
    );
    out
}

/// A duration, or a dash for none.
fn optional(seconds: f64) -> String {
    if seconds > 0.0 {
        duration(seconds)
    } else {
        "—".to_owned()
    }
}

fn periods(out: &mut String, title: &str, periods: &[Period], local: &dyn Fn(&str) -> String) {
    let _ = write!(out, "<section><h2>{title}</h2>");
    if periods.is_empty() {
        out.push_str("<p>None.</p></section>");
        return;
    }
    out.push_str("<ul>");
    for period in periods {
        let end = period
            .end
            .as_deref()
            .map_or_else(|| "the end".to_owned(), local);
        let who = period
            .who
            .as_deref()
            .map(|who| format!("<b>{}</b>, ", esc(who)))
            .unwrap_or_default();
        let _ = write!(
            out,
            "<li>{who}{}–{} ({})</li>",
            esc(&local(&period.start)),
            esc(&end),
            duration(period.seconds)
        );
    }
    out.push_str("</ul></section>");
}

/// The attendance chart: one point per minute.
fn chart(out: &mut String, report: &Report) {
    const WIDTH: f64 = 720.0;
    const HEIGHT: f64 = 220.0;
    const LEFT: f64 = 40.0;
    const RIGHT: f64 = 12.0;
    const TOP: f64 = 12.0;
    const BOTTOM: f64 = 28.0;
    let minutes = &report.attendance.minutes;
    let top = report.attendance.peak.max(1) as f64;
    let plot_width = WIDTH - LEFT - RIGHT;
    let plot_height = HEIGHT - TOP - BOTTOM;
    let step = if minutes.len() > 1 {
        plot_width / (minutes.len() - 1) as f64
    } else {
        0.0
    };
    let x = |index: usize| {
        if minutes.len() > 1 {
            LEFT + step * index as f64
        } else {
            LEFT + plot_width / 2.0
        }
    };
    let y = |people: usize| TOP + plot_height * (1.0 - people as f64 / top);
    let _ = write!(
        out,
        "<figure><svg class=\"attendance\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\" \
         aria-label=\"People in the room, minute by minute: peak {peak}, average {average:.1}\">",
        peak = report.attendance.peak,
        average = report.attendance.average,
    );
    for people in [0, report.attendance.peak / 2, report.attendance.peak] {
        let _ = write!(
            out,
            "<line class=\"grid\" x1=\"{LEFT}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\"/>\
             <text class=\"axis\" x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{people}</text>",
            WIDTH - RIGHT,
            LEFT - 6.0,
            y(people) + 4.0,
            y = y(people),
        );
    }
    let label_every = minutes.len().div_ceil(8).max(1);
    for (index, point) in minutes.iter().enumerate().step_by(label_every) {
        // The last label may not overflow the chart's right edge.
        let anchor = if x(index) > WIDTH - RIGHT - 20.0 {
            "end"
        } else {
            "middle"
        };
        let _ = write!(
            out,
            "<text class=\"axis\" x=\"{:.1}\" y=\"{}\" text-anchor=\"{anchor}\">{}</text>",
            x(index),
            HEIGHT - 8.0,
            esc(point.time.get(11..16).unwrap_or_default())
        );
    }
    let line: Vec<String> = minutes
        .iter()
        .enumerate()
        .map(|(index, point)| format!("{:.1},{:.1}", x(index), y(point.people)))
        .collect();
    let _ = write!(
        out,
        "<polyline class=\"line\" points=\"{}\"/>",
        line.join(" ")
    );
    for (index, point) in minutes.iter().enumerate() {
        let _ = write!(
            out,
            "<circle class=\"point\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\"><title>{}: {} in the room</title></circle>",
            x(index),
            y(point.people),
            esc(point.time.get(11..16).unwrap_or_default()),
            point.people
        );
    }
    let _ = write!(
        out,
        "</svg><figcaption>People in the room, the most in each minute ({} minutes).</figcaption></figure>",
        minutes.len()
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Zone;
    use crate::model::{Event, Participant, Role, RoomState, ServiceType};
    use crate::report::session::Session;

    #[test]
    fn names_are_escaped_and_nothing_is_fetched() {
        let mut state = RoomState::new();
        state.apply(Event::Roster(Vec::new()));
        let mut session = Session::begin("hall<1>", &state, 1_795_327_200.0);
        let evil = Participant {
            uuid: "x".into(),
            display_name: "<img src=x onerror=alert(1)>".into(),
            role: Role::Guest,
            service_type: ServiceType::Conference,
            ..Participant::default()
        };
        let changes = state.apply_at(Event::Participant(evil), 1_795_327_260.0);
        session.changes(&state, &changes, 1_795_327_260.0);
        let html = render(&session.finish(1_795_327_500.0, Zone::utc()));
        assert!(!html.contains("<img"), "{html}");
        assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;"));
        assert!(html.contains("<h1>hall&lt;1&gt;</h1>"));
        for external in ["src=\"", "href=", "<script", "url("] {
            assert!(!html.contains(external), "{external} in {html}");
        }
        assert_eq!(html.matches("class=\"point\"").count(), 5);
    }
}
