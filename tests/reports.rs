//! End-of-lecture reports from the real daemon moderating a room of the real
//! simulator: written when usher stops and when the conference ends, and
//! built the same offline by `usher report` from a recording and the audit
//! log.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::daemon::*;
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use usher::runtime::audit::Outcome;
use usher::sim::step::{Chat, Joiner, Step};

fn step(sim: &usher::sim::Simulator, step: Step) {
    sim.step(ROOM, &step).unwrap();
}

/// The reports written for [`ROOM`] under `reports/`: (page, its JSON).
fn reports(dir: &TestDir) -> Vec<(PathBuf, Value)> {
    let folder = dir.join("reports").join(ROOM);
    let Ok(entries) = std::fs::read_dir(&folder) else {
        return Vec::new();
    };
    let mut pages: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "html"))
        .collect();
    pages.sort();
    pages
        .into_iter()
        .filter_map(|page| {
            let json = std::fs::read_to_string(page.with_extension("json")).ok()?;
            Some((page, serde_json::from_str(&json).ok()?))
        })
        .collect()
}

fn names(report: &Value) -> Vec<String> {
    report["participants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect()
}

/// Every command as `rule: text outcome`, in order.
fn commands(report: &Value) -> Vec<String> {
    let mut all = Vec::new();
    for rule in report["commands"].as_array().unwrap() {
        for command in rule["commands"].as_array().unwrap() {
            all.push(format!(
                "{}: {} {}",
                rule["rule"].as_str().unwrap(),
                command["text"].as_str().unwrap(),
                command["outcome"].as_str().unwrap()
            ));
        }
    }
    all
}

fn person<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["participants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("{name} in {report:#}"))
}

/// A lecture: Bob joins (and is muted), raises and lowers his hand; Cat
/// joins and leaves.
async fn lecture(sim: &usher::sim::Simulator, usher: &Usher) {
    step(sim, Step::Join(Joiner::guest("Bob")));
    step(sim, Step::Join(Joiner::guest("<i>Cat</i>")));
    usher.audited(Outcome::Ok, "mute Bob").await;
    usher.audited(Outcome::Ok, "mute <i>Cat</i>").await;
    step(sim, Step::RaiseHand("Bob".into()));
    step(sim, Step::Speak("Ada".into()));
    tokio::time::sleep(Duration::from_millis(300)).await;
    step(sim, Step::LowerHand("Bob".into()));
    step(sim, Step::Leave("<i>Cat</i>".into()));
    eventually(PATIENCE, "usher to see Cat leave", async || {
        usher.status().await["rooms"][ROOM]["in_room"] == 2
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_is_written_when_usher_stops() {
    let sim = simulator(vec![room(vec![Joiner::host("Ada")])]).await;
    let dir = TestDir::new("report_stop");
    dir.shipped_rules();
    let usher = Usher::start(
        dir,
        &config(&sim, &["auto_mute_guests"], "reports_dir: reports\n"),
    )
    .await;
    lecture(&sim, &usher).await;
    assert!(reports(&usher.dir).is_empty(), "nothing before the end");
    let dir = usher.stop().await;

    let written = reports(&dir);
    assert_eq!(written.len(), 1, "one report: {written:?}");
    let (page, report) = &written[0];
    assert_eq!(report["room"], ROOM);
    assert_eq!(names(report), ["Ada", "Bob", "<i>Cat</i>"]);
    let bob = person(report, "Bob");
    assert_eq!(bob["hands_raised"], 1);
    assert!(bob["hand_seconds"].as_f64().unwrap() > 0.0, "{bob}");
    assert!(
        bob["stays"][0]["left"].is_null(),
        "Bob was there at the end"
    );
    let cat = person(report, "<i>Cat</i>");
    assert!(cat["stays"][0]["left"].is_string(), "Cat left: {cat}");
    assert!(person(report, "Ada")["floor_seconds"].as_f64().unwrap() > 0.0);
    assert_eq!(
        commands(report),
        [
            "auto_mute_guests: mute Bob ok",
            "auto_mute_guests: mute <i>Cat</i> ok"
        ]
    );
    assert_eq!(report["attendance"]["peak"], 3);
    assert_eq!(report["attendance"]["minutes"].as_array().unwrap().len(), 1);

    let html = std::fs::read_to_string(page).unwrap();
    assert!(html.contains("&lt;i&gt;Cat&lt;/i&gt;") && !html.contains("<i>Cat"));
    for external in ["<script", "src=", "href=", "url("] {
        assert!(
            !html.contains(external),
            "the page fetches nothing: {external}"
        );
    }
    assert!(!html.contains(PIN) && !report.to_string().contains(PIN));
    let name = page.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        name.len() == "2026-11-23-090412.html".len() && name.ends_with(".html"),
        "<date>-<time>.html: {name}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_is_written_when_usher_ends_the_conference() {
    let sim = simulator(vec![room(vec![Joiner::host("Ada"), Joiner::guest("Bob")])]).await;
    let dir = TestDir::new("report_end");
    dir.shipped_rules();
    let usher = Usher::start(
        dir,
        &config(&sim, &["chat_commands"], "reports_dir: reports\n"),
    )
    .await;
    step(
        &sim,
        Step::Chat(Chat {
            from: "Ada".into(),
            text: "!end".into(),
        }),
    );
    eventually(PATIENCE, "the report of the ended lecture", async || {
        !reports(&usher.dir).is_empty()
    })
    .await;
    let written = reports(&usher.dir);
    let report = &written[0].1;
    assert_eq!(names(report), ["Ada", "Bob"]);
    assert_eq!(commands(report), ["chat_commands: end ok"]);
    let dir = usher.stop().await;
    assert_eq!(
        reports(&dir).len(),
        1,
        "the ended lecture is not reported twice"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usher_report_builds_the_same_report_offline() {
    let sim = simulator(vec![room(vec![Joiner::host("Ada")])]).await;
    let dir = TestDir::new("report_offline");
    dir.shipped_rules();
    let usher = Usher::start(
        dir,
        &config(&sim, &["auto_mute_guests"], "reports_dir: reports\n"),
    )
    .await;
    // Record the room alongside the daemon, as an operator would.
    let config_path = usher.dir.join("usher.yaml");
    let config = usher::config::Config::load(&config_path).unwrap();
    let recording = usher.dir.join("hall.jsonl");
    let stop = CancellationToken::new();
    let recorder = tokio::spawn({
        let (stop, recording) = (stop.clone(), recording.clone());
        async move { usher::recording::record(&config, &config_path, ROOM, &recording, stop).await }
    });
    eventually(PATIENCE, "the recorder to connect", async || {
        sim.active_sessions(ROOM) == 2 && recorded_lines(&recording) >= 1
    })
    .await;
    lecture(&sim, &usher).await;
    eventually(PATIENCE, "the recorder to see Cat leave", async || {
        std::fs::read_to_string(&recording).is_ok_and(|text| text.contains("participant_left"))
    })
    .await;
    stop.cancel();
    recorder.await.unwrap().unwrap();
    let dir = usher.stop().await;
    let live = reports(&dir).pop().expect("the live report").1;

    let mut cli = Process::spawn(
        dir.path(),
        &[
            "report",
            "--audit",
            "audit.jsonl",
            "--recording",
            "hall.jsonl",
            "-o",
            "offline/hall.html",
        ],
        &[],
    );
    std::fs::create_dir_all(dir.join("offline")).unwrap();
    let (status, stderr) = cli.exit_within(PATIENCE).await;
    assert!(status.success(), "usher report: {stderr}");
    let offline: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("offline/hall.json")).unwrap())
            .unwrap();
    assert!(Path::new(&dir.join("offline/hall.html")).exists());
    assert_eq!(offline["room"], ROOM, "the room comes from the audit log");
    assert_eq!(names(&offline), names(&live));
    assert_eq!(commands(&offline), commands(&live));
    assert_eq!(offline["attendance"]["peak"], live["attendance"]["peak"]);
    for name in ["Bob", "<i>Cat</i>"] {
        let (a, b) = (person(&offline, name), person(&live, name));
        assert_eq!(a["hands_raised"], b["hands_raised"], "{name}");
        assert_eq!(
            a["stays"].as_array().unwrap().len(),
            b["stays"].as_array().unwrap().len(),
            "{name}"
        );
    }
}

fn recorded_lines(path: &Path) -> usize {
    std::fs::read_to_string(path).map_or(0, |text| text.lines().count())
}

/// A calendar of one lecture, "Optics", from `starts` to `ends` seconds
/// from now.
fn optics(starts: i64, ends: i64) -> String {
    let now = jiff::Timestamp::now();
    let ical = |seconds: i64| {
        (now + jiff::SignedDuration::from_secs(seconds))
            .strftime("%Y%m%dT%H%M%SZ")
            .to_string()
    };
    format!(
        "BEGIN:VCALENDAR\nVERSION:2.0\nBEGIN:VEVENT\nUID:optics@usher.test\nSUMMARY:Optics\nDTSTART:{}\nDTEND:{}\nEND:VEVENT\nEND:VCALENDAR\n",
        ical(starts),
        ical(ends)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_is_written_when_the_timetable_session_is_over_in_the_rooms_zone() {
    let sim = simulator(vec![room(vec![Joiner::host("Ada"), Joiner::guest("Bob")])]).await;
    let dir = TestDir::new("report_timetable");
    dir.shipped_rules();
    dir.write("hall.ics", &optics(-60, 4));
    let text = config(&sim, &["auto_mute_guests"], "reports_dir: reports\n").replace(
        "    pin_file: hall.pin\n",
        "    pin_file: hall.pin\n    timetable: hall.ics\n    zone: Asia/Kolkata\n",
    );
    let usher = Usher::start(dir, &text).await;
    eventually(PATIENCE, "the session under way in /status", async || {
        usher.status().await["rooms"][ROOM]["timetable_session"]["title"] == "Optics"
    })
    .await;
    let status = usher.status().await;
    let end = status["rooms"][ROOM]["timetable_session"]["end"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(end.ends_with("+05:30"), "in the room's zone: {end}");
    assert!(reports(&usher.dir).is_empty(), "nothing before the end");

    eventually(PATIENCE, "the report of the lecture", async || {
        !reports(&usher.dir).is_empty()
    })
    .await;
    let (page, report) = reports(&usher.dir).remove(0);
    assert_eq!(report["title"], "Optics");
    assert_eq!(report["zone"], "Asia/Kolkata (UTC+05:30)");
    assert_eq!(report["end"], end.as_str(), "it ends with the session");
    for stamp in [&report["start"], &report["end"]] {
        assert!(stamp.as_str().unwrap().ends_with("+05:30"), "{stamp}");
    }
    assert_eq!(names(&report), ["Ada", "Bob"]);
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("<p class=\"title\">Optics</p>"));
    let stem = page.file_stem().unwrap().to_string_lossy().into_owned();
    let local_start = report["start"].as_str().unwrap();
    assert_eq!(
        stem,
        format!(
            "{}-{}",
            &local_start[..10],
            local_start[11..19].replace(':', "")
        ),
        "the file is named in the room's zone"
    );
    eventually(PATIENCE, "no session under way", async || {
        usher.status().await["rooms"][ROOM]["timetable_session"].is_null()
    })
    .await;
    let dir = usher.stop().await;
    assert_eq!(
        reports(&dir).len(),
        1,
        "nothing happened after the lecture; no second report"
    );
}
