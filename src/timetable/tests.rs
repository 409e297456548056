//! Timetables end to end, from `.ics` text to sessions: recurrence across
//! daylight saving time, exceptions, moved and cancelled occurrences,
//! zones, and calendars that cannot be used — including mangled ones,
//! which must never panic.

use proptest::prelude::*;

use super::*;
use crate::clock::{Zone, parse_timestamp};

fn calendar(events: &str) -> String {
    format!("BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//usher//tests//EN\n{events}END:VCALENDAR\n")
}

/// The sessions of `text` starting from `from` for `days`, one line each,
/// with times at `zone`'s offset.
fn listed(text: &str, zone: &str, from: &str, days: f64) -> Vec<String> {
    let zone = Zone::parse(zone).unwrap();
    let calendar = parse(text).unwrap_or_else(|err| panic!("{err}"));
    let from = parse_timestamp(from).unwrap();
    sessions(&calendar, &zone, from, from + days * 86_400.0)
        .unwrap_or_else(|err| panic!("{err}"))
        .iter()
        .map(|s| s.line(&zone))
        .collect()
}

fn problems(text: &str) -> String {
    match parse(text) {
        Err(err) => err.to_string(),
        Ok(calendar) => {
            let from = parse_timestamp("2027-01-01T00:00Z").unwrap();
            match sessions(&calendar, &Zone::utc(), from, from + 400.0 * 86_400.0) {
                Err(err) => err.to_string(),
                Ok(found) => panic!("expected an error, got {} sessions", found.len()),
            }
        }
    }
}

const WEEKLY_BERLIN: &str = "BEGIN:VEVENT\nUID:phys\nSUMMARY:Physics 101\nDTSTART;TZID=Europe/Berlin:20270315T090000\nDTEND;TZID=Europe/Berlin:20270315T103000\nRRULE:FREQ=WEEKLY;BYDAY=MO\nEND:VEVENT\n";

#[test]
fn a_weekly_lecture_keeps_its_local_time_across_the_march_change() {
    assert_eq!(
        listed(
            &calendar(WEEKLY_BERLIN),
            "Europe/Berlin",
            "2027-03-20T00:00Z",
            14.0
        ),
        [
            "2027-03-22T09:00:00+01:00 2027-03-22T10:30:00+01:00 Physics 101",
            "2027-03-29T09:00:00+02:00 2027-03-29T10:30:00+02:00 Physics 101",
        ]
    );
}

#[test]
fn a_weekly_lecture_keeps_its_local_time_across_the_october_change() {
    assert_eq!(
        listed(
            &calendar(WEEKLY_BERLIN),
            "Europe/Berlin",
            "2027-10-24T00:00Z",
            14.0
        ),
        [
            "2027-10-25T09:00:00+02:00 2027-10-25T10:30:00+02:00 Physics 101",
            "2027-11-01T09:00:00+01:00 2027-11-01T10:30:00+01:00 Physics 101",
        ]
    );
    // The same sessions, seen from UTC: an hour apart.
    assert_eq!(
        listed(&calendar(WEEKLY_BERLIN), "UTC", "2027-10-24T00:00Z", 14.0),
        [
            "2027-10-25T07:00:00+00:00 2027-10-25T08:30:00+00:00 Physics 101",
            "2027-11-01T08:00:00+00:00 2027-11-01T09:30:00+00:00 Physics 101",
        ]
    );
}

#[test]
fn the_example_semester_has_its_holidays_moves_and_cancellations() {
    let text = std::fs::read_to_string("examples/physics-101.ics").unwrap();
    let listed = listed(&text, "Europe/Berlin", "2027-03-01T00:00Z", 200.0);
    let expected = [
        "2027-03-15T09:00:00+01:00 2027-03-15T10:30:00+01:00 Physics 101",
        "2027-03-22T09:00:00+01:00 2027-03-22T10:30:00+01:00 Physics 101",
        // 29 March: Easter Monday (EXDATE)
        "2027-04-05T09:00:00+02:00 2027-04-05T10:30:00+02:00 Physics 101",
        "2027-04-12T09:00:00+02:00 2027-04-12T10:30:00+02:00 Physics 101",
        "2027-04-19T09:00:00+02:00 2027-04-19T10:30:00+02:00 Physics 101",
        "2027-04-26T09:00:00+02:00 2027-04-26T10:30:00+02:00 Physics 101",
        // 3 May moved to Tuesday 4 May (RECURRENCE-ID)
        "2027-05-04T14:00:00+02:00 2027-05-04T15:30:00+02:00 Physics 101 (moved to Tuesday)",
        "2027-05-10T09:00:00+02:00 2027-05-10T10:30:00+02:00 Physics 101",
        // 17 May: Whit Monday (EXDATE)
        "2027-05-24T09:00:00+02:00 2027-05-24T10:30:00+02:00 Physics 101",
        "2027-05-31T09:00:00+02:00 2027-05-31T10:30:00+02:00 Physics 101",
        "2027-06-07T09:00:00+02:00 2027-06-07T10:30:00+02:00 Physics 101",
        // 14 June: cancelled (STATUS:CANCELLED)
        "2027-06-21T09:00:00+02:00 2027-06-21T10:30:00+02:00 Physics 101",
        "2027-06-28T09:00:00+02:00 2027-06-28T10:30:00+02:00 Physics 101",
        "2027-07-05T09:00:00+02:00 2027-07-05T10:30:00+02:00 Physics 101",
        "2027-07-12T09:00:00+02:00 2027-07-12T10:30:00+02:00 Physics 101",
        // the exam (DURATION); the lecture-free period is all-day: ignored
        "2027-07-19T09:00:00+02:00 2027-07-19T11:00:00+02:00 Physics 101: final exam",
    ];
    assert_eq!(listed, expected);
    let calendar = parse(&text).unwrap();
    assert_eq!(
        calendar.zone.map(|z| z.name().to_owned()).as_deref(),
        Some("Europe/Berlin")
    );
}

#[test]
fn exceptions_are_matched_in_any_zone_and_as_whole_days() {
    let events = "BEGIN:VEVENT\nUID:s\nSUMMARY:Seminar\nDTSTART;TZID=Europe/Berlin:20270104T100000\nDURATION:PT1H\nRRULE:FREQ=DAILY;COUNT=5\nEXDATE:20270105T090000Z\nEXDATE;VALUE=DATE:20270107\nRDATE;TZID=Europe/Berlin:20270110T120000\nEND:VEVENT\n";
    assert_eq!(
        listed(
            &calendar(events),
            "Europe/Berlin",
            "2027-01-01T00:00Z",
            30.0
        ),
        [
            "2027-01-04T10:00:00+01:00 2027-01-04T11:00:00+01:00 Seminar",
            "2027-01-06T10:00:00+01:00 2027-01-06T11:00:00+01:00 Seminar",
            "2027-01-08T10:00:00+01:00 2027-01-08T11:00:00+01:00 Seminar",
            "2027-01-10T12:00:00+01:00 2027-01-10T13:00:00+01:00 Seminar",
        ]
    );
}

#[test]
fn until_in_utc_ends_the_series_at_that_instant() {
    let events = "BEGIN:VEVENT\nUID:t\nSUMMARY:Tutorial\nDTSTART;TZID=America/New_York:20270308T180000\nDTEND;TZID=America/New_York:20270308T190000\nRRULE:FREQ=DAILY;UNTIL=20270310T230000Z\nEND:VEVENT\n";
    assert_eq!(
        listed(
            &calendar(events),
            "America/New_York",
            "2027-03-01T00:00Z",
            30.0
        ),
        [
            "2027-03-08T18:00:00-05:00 2027-03-08T19:00:00-05:00 Tutorial",
            "2027-03-09T18:00:00-05:00 2027-03-09T19:00:00-05:00 Tutorial",
            "2027-03-10T18:00:00-05:00 2027-03-10T19:00:00-05:00 Tutorial",
        ]
    );
}

#[test]
fn a_cancelled_series_and_all_day_events_make_no_sessions() {
    let events = "BEGIN:VEVENT\nUID:gone\nSUMMARY:Gone\nSTATUS:CANCELLED\nDTSTART:20270104T100000Z\nRRULE:FREQ=DAILY\nEND:VEVENT\nBEGIN:VEVENT\nUID:day\nSUMMARY:Holiday\nDTSTART;VALUE=DATE:20270105\nEND:VEVENT\nBEGIN:VEVENT\nUID:kept\nSUMMARY:Kept\nDTSTART:20270106T100000Z\nDTEND:20270106T110000Z\nEND:VEVENT\n";
    assert_eq!(
        listed(&calendar(events), "UTC", "2027-01-01T00:00Z", 30.0),
        ["2027-01-06T10:00:00+00:00 2027-01-06T11:00:00+00:00 Kept"]
    );
}

#[test]
fn floating_times_are_in_the_rooms_zone() {
    let events = "BEGIN:VEVENT\nUID:f\nSUMMARY:Floating\nDTSTART:20270706T090000\nDTEND:20270706T100000\nEND:VEVENT\n";
    assert_eq!(
        listed(
            &calendar(events),
            "Asia/Shanghai",
            "2027-07-01T00:00Z",
            30.0
        ),
        ["2027-07-06T09:00:00+08:00 2027-07-06T10:00:00+08:00 Floating"]
    );
}

#[test]
fn a_vtimezone_defines_a_zone_with_a_windows_name() {
    let zone = "BEGIN:VTIMEZONE\nTZID:W. Europe Standard Time\nBEGIN:STANDARD\nDTSTART:16010101T030000\nTZOFFSETFROM:+0200\nTZOFFSETTO:+0100\nRRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=10\nEND:STANDARD\nBEGIN:DAYLIGHT\nDTSTART:16010101T020000\nTZOFFSETFROM:+0100\nTZOFFSETTO:+0200\nRRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=3\nEND:DAYLIGHT\nEND:VTIMEZONE\n";
    let event = "BEGIN:VEVENT\nUID:o\nSUMMARY:Outlook\nDTSTART;TZID=W. Europe Standard Time:20270322T090000\nDTEND;TZID=W. Europe Standard Time:20270322T100000\nRRULE:FREQ=WEEKLY;COUNT=2\nEND:VEVENT\n";
    let text = calendar(&format!("{zone}{event}"));
    assert_eq!(
        listed(&text, "Europe/Berlin", "2027-03-20T00:00Z", 14.0),
        [
            "2027-03-22T09:00:00+01:00 2027-03-22T10:00:00+01:00 Outlook",
            "2027-03-29T09:00:00+02:00 2027-03-29T10:00:00+02:00 Outlook",
        ]
    );
    let own = parse(&text).unwrap().zone.unwrap();
    assert_eq!(own.name(), "W. Europe Standard Time");
}

#[test]
fn crlf_and_folded_lines_are_read() {
    let text = calendar("BEGIN:VEVENT\nUID:x\nSUMMARY:A very long title that the writer\n  folded onto a second line\nDTSTART:20270106T100000Z\nDTEND:20270106T110000Z\nEND:VEVENT\n")
        .replace('\n', "\r\n");
    assert_eq!(
        listed(&text, "UTC", "2027-01-01T00:00Z", 30.0),
        [
            "2027-01-06T10:00:00+00:00 2027-01-06T11:00:00+00:00 A very long title that the writer folded onto a second line"
        ]
    );
}

#[test]
fn an_unknown_tzid_is_named_at_its_line() {
    let err = problems(&calendar(
        "BEGIN:VEVENT\nUID:m\nSUMMARY:Mars\nDTSTART;TZID=Mars/Olympus_Mons:20270106T100000\nEND:VEVENT\n",
    ));
    assert_eq!(
        err,
        "line 7: DTSTART: unknown time zone TZID=\"Mars/Olympus_Mons\": it is neither an IANA name like \"Europe/Berlin\" nor defined by a VTIMEZONE in this calendar"
    );
}

#[test]
fn malformed_calendars_are_explained_where_they_go_wrong() {
    let err = problems(&calendar(
        "BEGIN:VEVENT\nUID:a\nthis is not a property\nDTSTART:20270106T100000Z\nEND:VEVENT\n",
    ));
    assert!(
        err.starts_with("line 6: \"this is not a property\" is not an iCalendar line"),
        "{err}"
    );
    let err = problems(&calendar("BEGIN:VEVENT\nUID:a\nDTSTART:20270106T100000Z\n"));
    assert_eq!(
        err,
        "line 4: BEGIN:VEVENT has no END:VEVENT before END:VCALENDAR (line 7)"
    );
    let err = problems("BEGIN:VCALENDAR\nBEGIN:VEVENT\nEND:VTODO\nEND:VCALENDAR\n");
    assert!(
        err.starts_with("line 3: END:VTODO closes nothing; BEGIN:VEVENT (line 2) is open"),
        "{err}"
    );
    let err = problems("");
    assert!(err.contains("empty"), "{err}");
    let err = problems("<html>Not found</html>\n");
    assert!(err.starts_with("line 1:"), "{err}");
    let err = problems(&calendar(
        "BEGIN:VEVENT\nUID:a\nDTSTART:2027-01-06 10:00\nEND:VEVENT\n",
    ));
    assert!(
        err.contains("line 6: DTSTART \"2027-01-06 10:00\" is not a date or date-time"),
        "{err}"
    );
    let err = problems(&calendar(
        "BEGIN:VEVENT\nUID:a\nDTSTART:20270106T100000Z\nRRULE:FREQ=SOMETIMES\nEND:VEVENT\n",
    ));
    assert!(
        err.contains("line 7: RRULE \"FREQ=SOMETIMES\" cannot be read"),
        "{err}"
    );
    let err = problems(&calendar("BEGIN:VEVENT\nUID:a\nSUMMARY:x\nEND:VEVENT\n"));
    assert!(err.contains("line 4: this event has no DTSTART"), "{err}");
    let err = problems(&calendar(
        "BEGIN:VEVENT\nUID:a\nDTSTART:20270106T100000Z\nDTEND:20270106T090000Z\nEND:VEVENT\n",
    ));
    assert!(err.contains("line 4: DTEND is before DTSTART"), "{err}");
}

#[test]
fn lines_in_any_script_are_searched_safely() {
    let err = problems(&calendar(
        "BEGIN:VEVENT\nUID:ü\nX:éééééé\nSUMMARY:Vorlesung über Thermodynamik\nDTSTART:morgen früh\nEND:VEVENT\n",
    ));
    assert!(err.starts_with("line 8: DTSTART \"morgen früh\""), "{err}");
}

#[test]
fn every_problem_is_reported_not_just_the_first() {
    let err = problems(&calendar(
        "BEGIN:VEVENT\nUID:a\nDTSTART;TZID=Nowhere:20270106T100000\nEND:VEVENT\nBEGIN:VEVENT\nUID:b\nDTSTART:soon\nEND:VEVENT\n",
    ));
    assert_eq!(err.lines().count(), 2, "{err}");
    assert!(
        err.lines()
            .nth(1)
            .is_some_and(|line| line.starts_with("line 10:")),
        "{err}"
    );
}

/// A well-formed calendar, then cut, repeated, shuffled or overwritten.
fn mangled() -> impl Strategy<Value = String> {
    let base = std::fs::read_to_string("examples/physics-101.ics").unwrap_or_default();
    let lines: Vec<String> = base.lines().map(str::to_owned).collect();
    let count = lines.len();
    (
        proptest::collection::vec((0..count, 0..count, any::<u8>(), "[ -~]{0,12}"), 1..6),
        any::<bool>(),
    )
        .prop_map(move |(edits, crlf)| {
            let mut lines = lines.clone();
            for (at, other, how, junk) in edits {
                if lines.is_empty() {
                    break;
                }
                let at = at % lines.len();
                let other = other % lines.len();
                match how % 6 {
                    0 => {
                        lines.remove(at);
                    }
                    1 => lines.swap(at, other),
                    2 => {
                        let copy = lines[other].clone();
                        lines.insert(at, copy);
                    }
                    3 => {
                        let cut = (how as usize) % (lines[at].len() + 1);
                        let keep: String = lines[at].chars().take(cut).collect();
                        lines[at] = keep;
                    }
                    4 => lines[at].push_str(&junk),
                    _ => lines[at] = junk,
                }
            }
            let joined = lines.join("\n");
            if crlf {
                joined.replace('\n', "\r\n")
            } else {
                joined
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn mangled_calendars_never_panic(text in mangled()) {
        if let Ok(calendar) = parse(&text) {
            let from = parse_timestamp("2027-01-01T00:00Z").unwrap();
            let _ = sessions(&calendar, &Zone::utc(), from, from + 400.0 * 86_400.0);
        }
    }

    #[test]
    fn unicode_anywhere_never_panics(text in "(BEGIN:VCALENDAR\n)(BEGIN:VEVENT\n)(\\PC{0,12}(:|;)?\\PC{0,12}\n){0,8}(DTSTART\\PC{0,8}:\\PC{0,16}\n)?(END:VEVENT\n)(END:VCALENDAR\n)") {
        if let Ok(calendar) = parse(&text) {
            let _ = sessions(&calendar, &Zone::utc(), 0.0, 86_400.0 * 400.0);
        }
    }

    #[test]
    fn arbitrary_text_never_panics(text in "(BEGIN:VCALENDAR\n)?(BEGIN:VEVENT\n)?([A-Z;=:/0-9T-]{0,30}\n){0,8}(END:VEVENT\n)?(END:VCALENDAR\n)?") {
        if let Ok(calendar) = parse(&text) {
            let _ = sessions(&calendar, &Zone::utc(), 0.0, 86_400.0 * 400.0);
        }
    }

    #[test]
    fn mangled_rules_never_panic(rule in "(FREQ=(YEARLY|MONTHLY|WEEKLY|DAILY|HOURLY|MINUTELY|SECONDLY|X);?)?((INTERVAL|COUNT|BYDAY|BYMONTHDAY|BYSETPOS|BYMONTH|BYWEEKNO|BYYEARDAY|UNTIL|WKST)=[-0-9A-Z,]{0,9};?){0,4}") {
        let text = calendar(&format!(
            "BEGIN:VEVENT\nUID:r\nDTSTART;TZID=Europe/Berlin:20270315T090000\nDTEND;TZID=Europe/Berlin:20270315T103000\nRRULE:{rule}\nEND:VEVENT\n"
        ));
        if let Ok(calendar) = parse(&text) {
            let from = parse_timestamp("2027-01-01T00:00Z").unwrap();
            let _ = sessions(&calendar, &Zone::utc(), from, from + 400.0 * 86_400.0);
        }
    }
}
