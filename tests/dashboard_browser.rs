//! The dashboard and the end-of-lecture report in a real browser: headless
//! Chromium, driven over WebDriver, against the real daemon moderating rooms
//! of the real simulator over loopback.

mod common;

use std::time::{Duration, Instant};

use common::browser::Browser;
use common::daemon::*;
use usher::model::{Event, FlagsUpdate, Participant, Presentation, Role, ServiceType};
use usher::recording::Line;
use usher::runtime::audit::Outcome;
use usher::sim::step::{Joiner, Step};

const SECOND_ROOM: &str = "zz-second@usher.test";

/// Someone in the room proper.
fn person(uuid: &str, name: &str, role: Role) -> Participant {
    Participant {
        uuid: uuid.into(),
        display_name: name.into(),
        role,
        service_type: ServiceType::Conference,
        ..Participant::default()
    }
}

/// A recording's text, as `usher record` writes it.
fn recording_text(lines: &[Line]) -> String {
    lines
        .iter()
        .map(|line| serde_json::to_string(line).unwrap() + "\n")
        .collect()
}

fn join(sim: &usher::sim::Simulator, room: &str, name: &str) {
    sim.step(room, &Step::Join(Joiner::guest(name))).unwrap();
}

fn room_url(usher: &Usher, alias: &str) -> String {
    format!(
        "http://{}/room/{}",
        usher.http,
        usher::report::markup::path_segment(alias)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_joining_guest_appears_within_a_second() {
    let sim = simulator(vec![room(vec![Joiner::host("Ada")])]).await;
    let usher = Usher::start(TestDir::new("dash_join"), &config(&sim, &[], "")).await;
    let browser = Browser::start("join").await;
    browser.open(&room_url(&usher, ROOM)).await;
    browser.live().await;
    assert_eq!(browser.texts("#roster-rows th").await, ["Ada"]);

    let joined = Instant::now();
    join(&sim, ROOM, "Eve");
    let took = browser
        .until(Duration::from_secs(5), "Eve in the roster", async || {
            browser.count("#roster-rows tr[data-name=\"Eve\"]").await == 1
        })
        .await;
    let shown = joined.elapsed();
    assert!(
        shown < Duration::from_secs(1),
        "Eve appeared {shown:?} after joining (polled for {took:?}); the dashboard promises under a second"
    );
    assert_eq!(
        browser.text("#in-room").await.as_deref(),
        Some("2"),
        "the room's count follows"
    );
    browser
        .until(
            Duration::from_secs(5),
            "the join in the timeline",
            async || {
                browser
                    .texts("#timeline-list li")
                    .await
                    .iter()
                    .any(|text| text.ends_with("Eve (guest) joined"))
            },
        )
        .await;
    browser.close().await;
    usher.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_muted_flag_flips_once_the_rule_has_acted() {
    let sim = simulator(vec![room(vec![Joiner::host("Ada")])]).await;
    let dir = TestDir::new("dash_mute");
    dir.shipped_rules();
    let usher = Usher::start(dir, &config(&sim, &["auto_mute_guests"], "")).await;
    let browser = Browser::start("mute").await;
    browser.open(&room_url(&usher, ROOM)).await;
    browser.live().await;

    join(&sim, ROOM, "Bob");
    let record = usher.audited(Outcome::Ok, "mute Bob").await;
    assert_eq!(record.rule, "auto_mute_guests");
    browser
        .until(Duration::from_secs(5), "Bob shown muted", async || {
            browser
                .text("#roster-rows tr[data-name=\"Bob\"] td.muted")
                .await
                .as_deref()
                == Some("muted")
        })
        .await;
    assert_ne!(
        browser
            .text("#roster-rows tr[data-name=\"Ada\"] td.muted")
            .await
            .as_deref(),
        Some("muted"),
        "the host is not muted"
    );
    // The timeline says why: the command, its rule, handler and outcome.
    let commands = browser.texts("#timeline-list li.command").await;
    let mute = commands
        .iter()
        .find(|text| text.contains("mute Bob"))
        .unwrap_or_else(|| panic!("a `mute Bob` command in the timeline: {commands:?}"));
    assert!(
        mute.contains("← rule auto_mute_guests, on_join(Bob) on participant"),
        "{mute}"
    );
    assert!(mute.contains("ok in"), "{mute}");
    browser.close().await;
    usher.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_room_is_listed_first() {
    let sim = simulator(vec![
        room(vec![Joiner::host("Ada")]),
        room_named(SECOND_ROOM, vec![Joiner::host("Grace")]),
    ])
    .await;
    let dir = TestDir::new("dash_trouble");
    dir.rule(
        "broken",
        "//! Fails on every join, on purpose.\nfn on_join(p) { throw \"broken on purpose\"; }\n",
    );
    let rooms: [(&str, &[&str]); 3] = [
        (ROOM, &[]),
        (SECOND_ROOM, &["broken"]),
        ("nowhere@usher.test", &[]),
    ];
    let usher = Usher::start_only(dir, &rooms_config(&sim, &rooms, "")).await;
    let browser = Browser::start("trouble").await;
    let overview = format!("http://{}/", usher.http);

    // A room that cannot connect comes first, though it sorts after `hall`.
    browser
        .until(Duration::from_secs(10), "two rooms connected", async || {
            let status = usher.status().await;
            ["hall@usher.test", SECOND_ROOM]
                .iter()
                .all(|room| status["rooms"][room]["phase"] == "connected")
        })
        .await;
    browser.open(&overview).await;
    browser.live().await;
    let order = browser.texts("#rooms tbody th a").await;
    assert_eq!(
        order,
        ["nowhere@usher.test", "hall@usher.test", SECOND_ROOM],
        "the room that cannot connect first, then by name"
    );
    assert!(
        browser
            .text("#rooms tbody tr:first-child td.health")
            .await
            .unwrap_or_default()
            .starts_with("failed"),
    );

    // A rule failing moves its room up, live.
    join(&sim, SECOND_ROOM, "Bob");
    browser
        .until(
            Duration::from_secs(5),
            "the failing rule's room moved up",
            async || {
                browser.texts("#rooms tbody th a").await
                    == ["nowhere@usher.test", SECOND_ROOM, "hall@usher.test"]
            },
        )
        .await;
    let errors = browser
        .text("#rooms tbody tr:nth-child(2) td.rule-errors")
        .await
        .unwrap_or_default();
    assert_eq!(errors, "1 in broken", "one rule error, and which rule");
    let latest = browser
        .attr("#rooms tbody tr:nth-child(2) td.rule-errors small", "title")
        .await
        .unwrap_or_default();
    assert!(
        latest.contains("broken.rhai:2:17") && latest.contains("broken on purpose"),
        "the latest error, where and why: {latest}"
    );
    browser.close().await;
    usher.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_overview_renders_with_javascript_off() {
    let sim = simulator(vec![room(vec![
        Joiner::host("Ada"),
        Joiner::guest("<b>Bob</b>"),
    ])])
    .await;
    let usher = Usher::start(TestDir::new("dash_nojs"), &config(&sim, &[], "")).await;
    let browser = Browser::without_javascript("nojs").await;
    browser.open(&format!("http://{}/", usher.http)).await;
    assert_eq!(browser.texts("#rooms tbody th a").await, [ROOM]);
    browser
        .until(Duration::from_secs(5), "the room's count", async || {
            browser.text("#rooms tbody td.people").await.as_deref() == Some("2")
        })
        .await;
    assert_eq!(
        browser.text("#live-state").await.as_deref(),
        Some(""),
        "no script ran: nothing says the page is live"
    );
    // The room's page renders too, with names shown as text.
    browser.open(&room_url(&usher, ROOM)).await;
    let names = browser.texts("#roster-rows th").await;
    assert_eq!(names, ["Ada", "<b>Bob</b>"]);
    browser.close().await;
    usher.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reports_chart_has_one_point_per_minute() {
    let dir = TestDir::new("dash_report");
    // A lecture of 7 minutes 30 seconds, as `usher record` writes it.
    let t0 = 1_795_327_200.0;
    let mut lines = vec![Line::event(
        t0,
        &Event::Roster(vec![person("a", "Ada", Role::Chair)]),
    )];
    for minute in 1..7 {
        let guest = person(
            &format!("g{minute}"),
            &format!("Guest {minute}"),
            Role::Guest,
        );
        lines.push(Line::event(
            t0 + 60.0 * f64::from(minute) + 5.0,
            &Event::Participant(guest),
        ));
    }
    lines.push(Line::event(
        t0 + 450.0,
        &Event::ParticipantLeft { uuid: "g1".into() },
    ));
    let recording = recording_text(&lines);
    dir.write("hall.jsonl", &recording);

    let mut report = Process::spawn(
        dir.path(),
        &["report", "--recording", "hall.jsonl", "-o", "hall.html"],
        &[],
    );
    let (status, stderr) = report.exit_within(PATIENCE).await;
    assert!(status.success(), "usher report failed: {stderr}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("hall.json")).unwrap()).unwrap();
    let minutes: Vec<u64> = json["attendance"]["minutes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["people"].as_u64().unwrap())
        .collect();
    assert_eq!(minutes, [1, 2, 3, 4, 5, 6, 7, 7]);

    let browser = Browser::start("report").await;
    browser
        .open(&format!("file://{}", dir.join("hall.html").display()))
        .await;
    assert_eq!(
        browser.count("svg.attendance circle.point").await,
        8,
        "one point per minute begun in a 7.5-minute session"
    );
    let heights: Vec<f64> = browser
        .run("return [...document.querySelectorAll('svg.attendance circle.point')].map(c => c.cy.baseVal.value)")
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|y| y.as_f64().unwrap())
        .collect();
    assert!(
        heights.windows(2).all(|pair| pair[1] <= pair[0]),
        "attendance only grows, so the points only rise: {heights:?}"
    );
    assert_eq!(
        browser.text(".figures div:first-child b").await.as_deref(),
        Some("7"),
        "the peak"
    );
    browser.close().await;
}

/// Writes the README's screenshots into `docs/`:
/// `cargo test --test dashboard_browser -- --ignored screenshots`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "writes the README's screenshots; run by hand"]
async fn screenshots_for_the_readme() {
    let docs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs");
    std::fs::create_dir_all(&docs).unwrap();
    let lab = "lab-2@usher.test";
    let mut students: Vec<Joiner> = vec![Joiner::host("Prof. Ada Lovelace")];
    students.extend(
        [
            "Alan Turing",
            "Barbara Liskov",
            "Claude Shannon",
            "Donald Knuth",
            "Edsger Dijkstra",
            "Frances Allen",
        ]
        .map(Joiner::guest),
    );
    let sim = simulator(vec![
        room(students),
        room_named(SECOND_ROOM, vec![Joiner::host("Grace Hopper")]),
        room_named(lab, vec![Joiner::host("Katherine Johnson")]),
    ])
    .await;
    let dir = TestDir::new("dash_screens");
    dir.shipped_rules();
    dir.rule(
        "broken",
        "//! Fails on every join, on purpose.\nfn on_join(p) { throw \"broken on purpose\"; }\n",
    );
    let hall: &[&str] = &[
        "auto_mute_guests",
        "spotlight_presenter",
        "hand_queue",
        "chat_commands",
    ];
    let rooms: [(&str, &[&str]); 4] = [
        (ROOM, hall),
        (SECOND_ROOM, &["auto_mute_guests", "broken"]),
        (
            lab,
            &[
                "auto_mute_guests",
                "rule: lock_when_full\n        params: { max: 3, reserve: 0 }\n        shadow: true",
            ],
        ),
        ("aula-1@usher.test", &["auto_mute_guests"]),
    ];
    let usher = Usher::start_only(dir, &rooms_config(&sim, &rooms, "")).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    for step in [
        Step::Present("Prof. Ada Lovelace".into()),
        Step::Speak("Prof. Ada Lovelace".into()),
        Step::Join(Joiner::guest("Grace Hopper")),
        Step::Join(Joiner::guest("John McCarthy")),
        Step::RaiseHand("Barbara Liskov".into()),
    ] {
        sim.step(ROOM, &step).unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    join(&sim, SECOND_ROOM, "Bob");
    for name in ["Hedy Lamarr", "Ivan Sutherland", "Jean Sammet"] {
        join(&sim, lab, name);
    }
    sim.step(lab, &Step::WaitingRoom(Joiner::guest("Ken Thompson")))
        .unwrap();
    sim.step(lab, &Step::Lock).unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;

    let browser = Browser::start("screens").await;
    browser.client().set_window_size(1440, 720).await.unwrap();
    browser.open(&format!("http://{}/", usher.http)).await;
    browser.live().await;
    browser.screenshot(&docs.join("dashboard.png")).await;
    browser.client().set_window_size(1440, 1100).await.unwrap();
    browser.open(&room_url(&usher, ROOM)).await;
    browser.live().await;
    browser.screenshot(&docs.join("dashboard-room.png")).await;
    browser.client().set_window_size(420, 900).await.unwrap();
    browser.open(&format!("http://{}/", usher.http)).await;
    browser.live().await;
    browser.screenshot(&docs.join("dashboard-phone.png")).await;

    // A 50-minute lecture's report, built offline from a recording.
    let t0 = 1_795_424_400.0;
    let ada = person("ada", "Prof. Ada Lovelace", Role::Chair);
    let mut lines = vec![
        Line::event(t0, &Event::Roster(vec![ada])),
        Line::event(
            t0 + 240.0,
            &Event::PresentationStart(Presentation {
                presenter_name: "Prof. Ada Lovelace".into(),
                presenter_uri: String::new(),
                presenter_uuid: Some("ada".into()),
            }),
        ),
        Line::event(t0 + 2700.0, &Event::PresentationStop),
    ];
    for n in 0..38u32 {
        let uuid = format!("s{n}");
        let at = t0 + 20.0 + f64::from(n) * f64::from(n % 5 + 3) * 4.0;
        let student = person(&uuid, &format!("Student {}", n + 1), Role::Guest);
        lines.push(Line::event(at, &Event::Participant(student)));
        if n % 4 == 1 {
            let left = at + 1500.0 + f64::from(n) * 20.0;
            lines.push(Line::event(left, &Event::ParticipantLeft { uuid }));
        }
    }
    lines.push(Line::event(
        t0 + 3000.0,
        &Event::RoomUpdate(FlagsUpdate {
            locked: Some(false),
            ..FlagsUpdate::default()
        }),
    ));
    lines.sort_by(|a, b| a.t.total_cmp(&b.t));
    let recording = recording_text(&lines);
    usher.dir.write("lecture.jsonl", &recording);
    let mut report = Process::spawn(
        usher.dir.path(),
        &[
            "report",
            "--recording",
            "lecture.jsonl",
            "--room",
            ROOM,
            "-o",
            "lecture.html",
        ],
        &[],
    );
    let (status, stderr) = report.exit_within(PATIENCE).await;
    assert!(status.success(), "{stderr}");
    browser.client().set_window_size(1100, 1000).await.unwrap();
    browser
        .open(&format!(
            "file://{}",
            usher.dir.join("lecture.html").display()
        ))
        .await;
    browser.screenshot(&docs.join("report.png")).await;
    browser.close().await;
    usher.stop().await;
}
