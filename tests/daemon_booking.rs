//! Booking ahead, end to end: the real daemon books each timetable session
//! within `book_ahead` on the Huawei and Agora simulators over loopback,
//! never twice (also across restarts), moves a booking when its session
//! moves and cancels it when the session is cancelled, audits every action
//! and sends nothing in dry-run mode.

mod common;

use std::time::Duration;

use common::daemon::*;
use usher::clock::{format_timestamp, unix_now};
use usher::model::Secret;
use usher::runtime::audit::{AuditRecord, Outcome};
use usher::sim::agora::{AgoraSimOptions, AgoraSimulator};
use usher::sim::huawei::{HuaweiSimulator, SIM_APP_ID, SIM_APP_KEY};

const HOUR: f64 = 3600.0;
const DAY: f64 = 86_400.0;

/// `20270322T080000Z`.
fn ics_time(at: f64) -> String {
    let text = format_timestamp(at);
    format!("{}Z", text[..19].replace(['-', ':'], ""))
}

/// A daily 90-minute lecture, three times from `first`, with `extra`
/// VEVENTs (overrides) after the series.
fn timetable(first: f64, extra: &str) -> String {
    format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//usher//test//EN\r\nBEGIN:VEVENT\r\nUID:physics@usher.test\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:{}\r\nDTEND:{}\r\nRRULE:FREQ=DAILY;COUNT=3\r\nSUMMARY:Physics 101\r\nEND:VEVENT\r\n{extra}END:VCALENDAR\r\n",
        ics_time(first),
        ics_time(first + 1.5 * HOUR)
    )
}

/// An override of the occurrence at `occurrence`: moved to `start`, or
/// cancelled.
fn moved(occurrence: f64, start: f64) -> String {
    format!(
        "BEGIN:VEVENT\r\nUID:physics@usher.test\r\nDTSTAMP:20260101T000000Z\r\nRECURRENCE-ID:{}\r\nDTSTART:{}\r\nDTEND:{}\r\nSUMMARY:Physics 101 (moved)\r\nEND:VEVENT\r\n",
        ics_time(occurrence),
        ics_time(start),
        ics_time(start + 1.5 * HOUR)
    )
}

fn cancelled(occurrence: f64) -> String {
    format!(
        "BEGIN:VEVENT\r\nUID:physics@usher.test\r\nDTSTAMP:20260101T000000Z\r\nRECURRENCE-ID:{at}\r\nDTSTART:{at}\r\nDTEND:{end}\r\nSTATUS:CANCELLED\r\nSUMMARY:Physics 101\r\nEND:VEVENT\r\n",
        at = ics_time(occurrence),
        end = ics_time(occurrence + 1.5 * HOUR)
    )
}

/// The first lecture: two hours from now, on a whole minute (Huawei books
/// to the minute).
fn first_lecture() -> f64 {
    ((unix_now() / 60.0).ceil() * 60.0) + 2.0 * HOUR
}

fn booking_records(usher: &Usher, command: &str, outcome: Outcome) -> Vec<AuditRecord> {
    usher
        .audit()
        .into_iter()
        .filter(|r| r.rule == "book_ahead" && r.command == command && r.outcome == outcome)
        .collect()
}

async fn audited_times(usher: &Usher, command: &str, outcome: Outcome, count: usize) {
    eventually(
        PATIENCE,
        &format!("{count} `{command}` records ({})", outcome.as_str()),
        async || booking_records(usher, command, outcome).len() >= count,
    )
    .await;
}

fn huawei_config(sim: &HuaweiSimulator, extra: &str) -> String {
    format!(
        "platforms:\n  hw:\n    kind: huawei\n    url: {url}\n    app_id: \"{SIM_APP_ID}\"\n    app_key: \"{SIM_APP_KEY}\"\n    user_id: usher\nrooms:\n  - alias: hall-a\n    platform: hw\n    timetable: hall-a.ics\n    book_ahead: 36h\n    rules: [lecture_schedule]\n{extra}rules_dir: rules\naudit_log: audit.jsonl\nhttp: {{ listen: 127.0.0.1:0 }}\n",
        url = sim.base_url()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huawei_meetings_are_booked_once_moved_and_cancelled_with_the_timetable() {
    let sim = HuaweiSimulator::start(loopback(0), vec![]).await.unwrap();
    let dir = TestDir::new("booking_huawei");
    dir.shipped_rules();
    let first = first_lecture();
    dir.write("hall-a.ics", &timetable(first, ""));
    let text = huawei_config(&sim, "");

    // The two lectures within 36 hours are booked; the third is not yet.
    let usher = Usher::start_only(dir, &text).await;
    audited_times(&usher, "book", Outcome::Ok, 2).await;
    let booked = sim.booked();
    assert_eq!(booked.len(), 2, "{booked:?}");
    assert_eq!(
        booked
            .iter()
            .map(|(_, title, start, minutes)| (title.as_str(), *start, *minutes))
            .collect::<Vec<_>>(),
        [("Physics 101", first, 90), ("Physics 101", first + DAY, 90)]
    );
    assert!(usher.dir.join("bookings.json").is_file());

    // A restart books nothing again.
    let dir = usher.stop().await;
    let usher = Usher::start_only(dir, &text).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(sim.booked().len(), 2, "{:?}", sim.booked());
    assert_eq!(booking_records(&usher, "book", Outcome::Ok).len(), 2);

    // The timetable moves the second lecture and cancels the first.
    let dir = usher.stop().await;
    dir.write(
        "hall-a.ics",
        &timetable(
            first,
            &format!(
                "{}{}",
                moved(first + DAY, first + DAY + HOUR),
                cancelled(first)
            ),
        ),
    );
    let usher = Usher::start_only(dir, &text).await;
    audited_times(&usher, "move", Outcome::Ok, 1).await;
    audited_times(&usher, "cancel", Outcome::Ok, 1).await;
    let booked = sim.booked();
    assert_eq!(booked.len(), 1, "{booked:?}");
    assert_eq!(
        (booked[0].1.as_str(), booked[0].2),
        ("Physics 101 (moved)", first + DAY + HOUR)
    );
    assert_eq!(booking_records(&usher, "book", Outcome::Ok).len(), 2);
    usher.stop().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_dry_run_mode_bookings_are_audited_and_nothing_is_sent() {
    let sim = HuaweiSimulator::start(loopback(0), vec![]).await.unwrap();
    let dir = TestDir::new("booking_dry_run");
    dir.shipped_rules();
    dir.write("hall-a.ics", &timetable(first_lecture(), ""));
    let text = huawei_config(&sim, "dry_run: true\n");
    let usher = Usher::start_only(dir, &text).await;
    audited_times(&usher, "book", Outcome::DryRun, 2).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(sim.booked().is_empty(), "{:?}", sim.booked());
    assert!(
        !sim.calls()
            .iter()
            .any(|call| call.path.ends_with("management/conferences")),
        "no booking call in dry-run mode"
    );
    assert_eq!(booking_records(&usher, "book", Outcome::DryRun).len(), 2);
    usher.stop().await;
    sim.shutdown().await;
}

const APP_ID: &str = "app-book-4242";
const TOKEN: &str = "tok-book-77aa";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agora_rooms_are_created_ahead_moved_and_closed_with_the_timetable() {
    let dir = TestDir::new("booking_agora");
    dir.shipped_rules();
    let sim = AgoraSimulator::start(
        loopback(0),
        AgoraSimOptions {
            app_id: APP_ID.to_owned(),
            region: "cn".to_owned(),
            token: Some(Secret::new(TOKEN)),
            token_file: Some(dir.join("agora.token")),
            webhook_secret: None,
            webhook_to: None,
        },
        Vec::new(),
    )
    .await
    .expect("the simulator starts");
    let first = first_lecture();
    dir.write("hall-a.ics", &timetable(first, ""));
    let text = format!(
        "platforms:\n  ag:\n    kind: agora\n    url: {url}\n    region: cn\n    app_id: {APP_ID}\n    token_file: {token}\nwebhooks: {{ listen: 127.0.0.1:0, public_url: \"http://127.0.0.1:9/\" }}\nrooms:\n  - {{ alias: hall-a, platform: ag, timetable: hall-a.ics, book_ahead: 36h, rules: [lecture_schedule] }}\nrules_dir: rules\naudit_log: audit.jsonl\nhttp: {{ listen: 127.0.0.1:0 }}\n",
        url = sim.base_url(),
        token = dir.join("agora.token").display(),
    );
    let usher = Usher::start_only(dir, &text).await;
    audited_times(&usher, "book", Outcome::Ok, 2).await;
    let rooms: Vec<String> = booking_records(&usher, "book", Outcome::Ok)
        .iter()
        .map(|r| r.text.rsplit(' ').next().unwrap().to_owned())
        .collect();
    let schedule = |room: &str| sim.room_schedule(room).expect("the room was created");
    assert_eq!(
        schedule(&rooms[0]).start_time,
        Some((first * 1000.0) as u64)
    );
    assert_eq!(schedule(&rooms[0]).duration, Some(5400));

    let dir = usher.stop().await;
    let usher = Usher::start_only(dir, &text).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(booking_records(&usher, "book", Outcome::Ok).len(), 2);

    let dir = usher.stop().await;
    dir.write(
        "hall-a.ics",
        &timetable(
            first,
            &format!(
                "{}{}",
                moved(first + DAY, first + DAY + HOUR),
                cancelled(first)
            ),
        ),
    );
    let usher = Usher::start_only(dir, &text).await;
    audited_times(&usher, "move", Outcome::Ok, 1).await;
    audited_times(&usher, "cancel", Outcome::Ok, 1).await;
    assert_eq!(
        sim.room_state(&rooms[0]),
        Some(usher::platform::agora::inferred::state::CLOSED)
    );
    assert_eq!(
        schedule(&rooms[1]).start_time,
        Some(((first + DAY + HOUR) * 1000.0) as u64)
    );
    usher.stop().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_booked_meeting_is_watched_when_its_session_is_near() {
    let sim = HuaweiSimulator::start(loopback(0), vec![]).await.unwrap();
    let dir = TestDir::new("booking_watch");
    dir.shipped_rules();
    // Three minutes from now: within the five minutes before a session
    // when its meeting is watched.
    let soon = ((unix_now() / 60.0).ceil() * 60.0) + 120.0;
    dir.write("hall-a.ics", &timetable(soon, ""));
    let text = huawei_config(&sim, "");
    let usher = Usher::start_only(dir, &text).await;
    audited_times(&usher, "book", Outcome::Ok, 1).await;
    let meeting = sim.booked()[0].0.clone();
    sim.start_meeting(&meeting).unwrap();
    eventually(PATIENCE, "the booked meeting watched", async || {
        sim.open_sockets(&meeting) > 0
    })
    .await;
    let (_, status) = usher.get("/status").await;
    assert!(status.contains(&meeting), "{status}");
    usher.stop().await;
    sim.shutdown().await;
}
