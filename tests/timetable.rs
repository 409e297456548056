//! Timetables through real parts: a feed served over loopback and fetched
//! with conditional requests, cached on disk and kept when it fails; and
//! the daemon starting and ending a lecture when its timetable says, on the
//! simulator.

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use jiff::{SignedDuration, Timestamp};
use tokio_util::sync::CancellationToken;

use common::daemon::{ROOM, TestDir, Usher, config, room, simulator};
use usher::clock::Zone;
use usher::runtime::audit::Outcome;
use usher::runtime::{Daemon, StartError, StartOptions};
use usher::timetable::{Keeper, Refreshed, ScheduleSettings, TimetableError};

const SEMESTER: &str = include_str!("../examples/physics-101.ics");

/// What the feed server answers, and what it was asked.
#[derive(Default)]
struct Served {
    /// `Some((etag, body))`, or `None` to answer 500.
    copy: Option<(String, String)>,
    /// The `If-None-Match` of each request.
    asked_with: Vec<Option<String>>,
}

type Shared = Arc<Mutex<Served>>;

async fn serve_feed(State(served): State<Shared>, headers: HeaderMap) -> Response {
    let mut served = served.lock().unwrap();
    let asked = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    served.asked_with.push(asked.clone());
    match &served.copy {
        None => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        Some((etag, _)) if asked.as_deref() == Some(etag.as_str()) => {
            StatusCode::NOT_MODIFIED.into_response()
        }
        Some((etag, body)) => ([(header::ETAG, etag.clone())], body.clone()).into_response(),
    }
}

/// A feed server on a free 127.0.0.1 port, until `stop` fires.
async fn feed_server(served: Shared, stop: CancellationToken) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new()
        .route("/rooms/hall-a.ics", get(serve_feed))
        .with_state(served);
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await
            .unwrap();
    });
    addr
}

fn settings(text: &str) -> ScheduleSettings {
    ScheduleSettings {
        timetable: Some(usher::yaml::from_str(text).unwrap()),
        zone: Some(Zone::parse("Europe/Berlin").unwrap()),
    }
}

fn titles(schedule: &usher::timetable::RoomSchedule) -> Vec<String> {
    schedule
        .schedule
        .get()
        .sessions()
        .iter()
        .map(|s| s.line(&schedule.zone))
        .collect()
}

#[tokio::test]
async fn a_feed_is_fetched_conditionally_cached_and_kept_when_it_fails() {
    let dir = TestDir::new("timetable-feed");
    let cache = dir.join("cache");
    let served: Shared = Arc::default();
    served.lock().unwrap().copy = Some(("\"v1\"".into(), SEMESTER.into()));
    let stop = CancellationToken::new();
    let addr = feed_server(served.clone(), stop.clone()).await;
    let url = format!("\"http://{addr}/rooms/hall-a.ics?token=s3cret\"");
    let settings = settings(&url);

    let (schedule, keeper) = Keeper::open("hall-a", &settings, Some(&cache)).unwrap();
    let mut keeper = keeper.expect("a room with a timetable has a keeper");
    assert!(
        titles(&schedule).is_empty(),
        "nothing before the first fetch"
    );
    assert_eq!(keeper.refresh().await, Ok(Refreshed::Updated));
    let semester = titles(&schedule);
    assert_eq!(semester.len(), 16, "{semester:#?}");
    assert_eq!(
        semester[2],
        "2027-04-05T09:00:00+02:00 2027-04-05T10:30:00+02:00 Physics 101"
    );

    // Asked again, the server answers 304 to the ETag usher kept.
    assert_eq!(keeper.refresh().await, Ok(Refreshed::Unchanged));
    assert_eq!(
        served.lock().unwrap().asked_with,
        [None, Some("\"v1\"".to_owned())]
    );

    // A broken copy is refused; the last good one stays.
    served.lock().unwrap().copy = Some((
        "\"v2\"".into(),
        SEMESTER.replace(
            "DTSTART;TZID=Europe/Berlin:20270315",
            "DTSTART;TZID=Mars/Olympus:20270315",
        ),
    ));
    let err = keeper.refresh().await.unwrap_err().to_string();
    assert!(
        err.starts_with(&format!(
            "room `hall-a`: timetable http://{addr}/…/hall-a.ics?…:"
        )) && err.contains("unknown time zone TZID=\"Mars/Olympus\""),
        "{err}"
    );
    assert_eq!(titles(&schedule), semester);

    // So does a server error, and a server that is gone.
    served.lock().unwrap().copy = None;
    let err = keeper.refresh().await.unwrap_err();
    assert!(
        matches!(&err, TimetableError::Unavailable { .. })
            && err.to_string().contains("the server answered 500"),
        "{err}"
    );
    stop.cancel();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let err = keeper.refresh().await.unwrap_err().to_string();
    assert!(err.contains("cannot fetch it"), "{err}");
    assert!(
        !err.contains("s3cret"),
        "the feed's token is never shown: {err}"
    );
    assert_eq!(titles(&schedule), semester);

    // After a restart, with the feed still down, the copy on disk is used.
    let (restarted, mut keeper) = Keeper::open("hall-a", &settings, Some(&cache)).unwrap();
    assert_eq!(titles(&restarted), semester);
    assert!(keeper.as_mut().unwrap().refresh().await.is_err());
    assert_eq!(titles(&restarted), semester);
}

#[tokio::test]
async fn a_new_copy_of_the_feed_moves_a_lecture() {
    let dir = TestDir::new("timetable-moved");
    let served: Shared = Arc::default();
    let plain = SEMESTER
        .split("BEGIN:VEVENT\nUID:physics-101-ss27@timetable.example.edu\nRECURRENCE-ID")
        .next()
        .unwrap()
        .to_owned()
        + "END:VCALENDAR\n";
    served.lock().unwrap().copy = Some(("\"a\"".into(), plain));
    let stop = CancellationToken::new();
    let addr = feed_server(served.clone(), stop.clone()).await;
    let settings = settings(&format!(
        "{{ source: \"http://{addr}/rooms/hall-a.ics\", refresh: 10s }}"
    ));
    let (schedule, keeper) = Keeper::open("hall-a", &settings, Some(&dir.join("cache"))).unwrap();
    let mut keeper = keeper.unwrap();
    keeper.refresh().await.unwrap();
    let may = |lines: Vec<String>| -> Vec<String> {
        lines
            .into_iter()
            .filter(|l| l.starts_with("2027-05-0"))
            .collect()
    };
    assert_eq!(
        may(titles(&schedule)),
        ["2027-05-03T09:00:00+02:00 2027-05-03T10:30:00+02:00 Physics 101"]
    );
    served.lock().unwrap().copy = Some(("\"b\"".into(), SEMESTER.into()));
    assert_eq!(keeper.refresh().await, Ok(Refreshed::Updated));
    assert_eq!(
        may(titles(&schedule)),
        ["2027-05-04T14:00:00+02:00 2027-05-04T15:30:00+02:00 Physics 101 (moved to Tuesday)"]
    );
    stop.cancel();
}

/// A calendar of one lecture from `starts` to `ends` seconds from now (to
/// the whole second), and when it starts.
fn lecture_in(starts: i64, ends: i64) -> (String, Timestamp) {
    let now = Timestamp::from_second(Timestamp::now().as_second()).unwrap();
    let at = |seconds: i64| now + SignedDuration::from_secs(seconds);
    let ical = |at: Timestamp| at.strftime("%Y%m%dT%H%M%SZ").to_string();
    let text = format!(
        "BEGIN:VCALENDAR\nVERSION:2.0\nBEGIN:VEVENT\nUID:soon@usher.test\nSUMMARY:Soon\nDTSTART:{}\nDTEND:{}\nEND:VEVENT\nEND:VCALENDAR\n",
        ical(at(starts)),
        ical(at(ends))
    );
    (text, at(starts))
}

fn with_timetable(config: String, timetable: &str) -> String {
    config.replace(
        "    pin_file: hall.pin\n",
        &format!("    pin_file: hall.pin\n    timetable: {timetable}\n    zone: Europe/Berlin\n"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_starts_and_ends_a_lecture_when_its_timetable_says() {
    let sim = simulator(vec![room(vec![])]).await;
    let dir = TestDir::new("timetable-daemon");
    dir.shipped_rules();
    let (lecture, starts) = lecture_in(4, 7);
    dir.write("hall.ics", &lecture);
    let text = with_timetable(
        config(
            &sim,
            &["lecture_schedule: { warn: [], grace: 0, ending: \"\" }"],
            "",
        ),
        "hall.ics",
    );
    let usher = Usher::start(dir, &text).await;
    let started = usher.audited(Outcome::Ok, "start").await;
    assert_eq!(started.rule, "lecture_schedule");
    let started_at: Timestamp = started.time.parse().unwrap();
    assert!(
        started_at >= starts,
        "started at {started_at}, before {starts}"
    );
    assert!(sim.conference(ROOM).unwrap().flags.started);
    usher.audited(Outcome::Ok, "end").await;
    usher.stop().await;
}

#[tokio::test]
async fn a_broken_timetable_file_stops_the_daemon_from_starting() {
    let sim = simulator(vec![room(vec![])]).await;
    let dir = TestDir::new("timetable-broken");
    dir.shipped_rules();
    dir.write("hall.pin", "1234\n");
    dir.write(
        "hall.ics",
        "BEGIN:VCALENDAR\nBEGIN:VEVENT\nUID:x\nDTSTART;TZID=Nowhere/Special:20270101T090000\nEND:VEVENT\nEND:VCALENDAR\n",
    );
    let path = dir.write(
        "usher.yaml",
        &with_timetable(config(&sim, &["lecture_schedule"], ""), "hall.ics"),
    );
    let loaded = usher::config::Config::load(&path).unwrap();
    let started = Daemon::start_with(loaded, &path, StartOptions::default()).await;
    let Err(StartError::Config(message)) = started else {
        panic!("the daemon must refuse a timetable it cannot read");
    };
    let expected = format!(
        "room `{ROOM}`: timetable {}:4: DTSTART: unknown time zone TZID=\"Nowhere/Special\"",
        dir.join("hall.ics").display()
    );
    assert!(message.starts_with(&expected), "{message}");
}
