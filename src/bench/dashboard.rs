//! `usher bench dashboard`: how long the dashboard takes with many rooms.
//!
//! Builds a daemon's registry of `rooms` rooms, each with `people`
//! participants who joined through the real room state and the dashboard's
//! journal, a presenter, a speaker, hands up, rules with counters and
//! commands, some rooms in trouble. Then serves the real endpoint on
//! loopback and times, side by side in one run: the overview page (every
//! room), `/status` (the same rooms as JSON, for comparison), one room's
//! page, and one live update of the overview after every room changed.
//! Last, what following a room costs its task per event: a busy lecture's
//! events through decode and room state alone, with the dashboard's journal,
//! and with the journal and an end-of-lecture report.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use std::hint::black_box;

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::workload::{self, Frame};
use crate::report::book::ReportBook;

use crate::clock::unix_now;
use crate::dashboard::Dashboard;
use crate::dashboard::live::OverviewFeed;
use crate::model::{
    Command, Event, Participant, ParticipantCommand, Presentation, Role, RoomState, ServiceType,
    StageEntry, Target,
};
use crate::rules::{CallLatency, Intent, RuleStats, Trigger};
use crate::runtime::audit::{AuditRecord, Outcome};
use crate::runtime::status::{Phase, Registry, RoomStatus, Watching};

/// The figures, in milliseconds (medians).
#[derive(Debug, Clone, Serialize)]
pub struct DashboardReport {
    /// Rooms on the overview.
    pub rooms: usize,
    /// Participants in each room.
    pub people: usize,
    /// `GET /`: the overview, over loopback.
    pub overview_ms: f64,
    /// Its size.
    pub overview_bytes: usize,
    /// `GET /status`: the same rooms as JSON.
    pub status_ms: f64,
    /// Overview time over `/status` time.
    pub ratio: f64,
    /// `GET /room/…`: one room's page.
    pub room_ms: f64,
    /// One live update of the overview after every room changed.
    pub live_update_ms: f64,
    /// A lecture's events through decode and room state, per event.
    pub state_ns_per_event: f64,
    /// The same, with the room followed by the dashboard's journal.
    pub journal_ns_per_event: f64,
    /// The same, followed by the journal and an end-of-lecture report.
    pub journal_report_ns_per_event: f64,
}

/// Builds `rooms` rooms of `people` each and times the dashboard `rounds`
/// times.
pub async fn run(
    rooms: usize,
    people: usize,
    rounds: usize,
    out: &mut dyn Write,
) -> anyhow::Result<DashboardReport> {
    let (registry, dashboard, statuses) = build(rooms, people);
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let addr = listener.local_addr()?;
    let router = crate::runtime::http::router(registry.clone(), dashboard.clone(), None);
    let server = tokio::spawn(async move { axum::serve(listener, router).await });
    let client = reqwest::Client::new();
    let url = |path: &str| format!("http://{addr}{path}");

    let mut overview = Vec::new();
    let mut status = Vec::new();
    let mut room = Vec::new();
    let mut live = Vec::new();
    let mut overview_bytes = 0;
    for _ in 0..rounds.max(1) {
        let (took, bytes) = time_get(&client, &url("/")).await?;
        overview.push(took);
        overview_bytes = bytes;
        status.push(time_get(&client, &url("/status")).await?.0);
        room.push(
            time_get(&client, &url("/room/hall-0000%40usher.example"))
                .await?
                .0,
        );
        let mut feed = OverviewFeed::new(registry.clone(), dashboard.clone());
        feed.update(unix_now());
        for status in &statuses {
            status.update(|room| room.count_event("stage"));
        }
        let start = Instant::now();
        feed.update(unix_now());
        live.push(start.elapsed());
    }
    server.abort();

    // What following a room costs on its task: a busy lecture's events
    // through decode and state alone, then with the journal, then with the
    // journal and a report, alternating rounds.
    let frames = workload::lecture(50_000);
    let reports_dir =
        std::env::temp_dir().join(format!("usher-bench-dashboard-{}", std::process::id()));
    let stop = CancellationToken::new();
    let book = ReportBook::start(&reports_dir, stop.clone());
    let (mut bare, mut journal, mut both) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds.max(1) {
        bare.push(follow_round(&frames, None));
        let followed = Registry::watched_by(vec![Arc::new(Dashboard::default())]);
        journal.push(follow_round(
            &frames,
            Some(&followed.add_room("a", "bench", false)),
        ));
        let followed = Registry::watched_by(vec![
            Arc::new(Dashboard::default()) as Arc<dyn Watching>,
            book.clone(),
        ]);
        both.push(follow_round(
            &frames,
            Some(&followed.add_room("b", "bench", false)),
        ));
    }
    stop.cancel();
    let _ = std::fs::remove_dir_all(&reports_dir);
    let per_event = |times: &mut Vec<Duration>| median_ms(times) * 1e6 / frames.len() as f64;
    let report = DashboardReport {
        rooms,
        people,
        overview_ms: median_ms(&mut overview),
        overview_bytes,
        status_ms: median_ms(&mut status),
        ratio: 0.0,
        room_ms: median_ms(&mut room),
        live_update_ms: median_ms(&mut live),
        state_ns_per_event: per_event(&mut bare),
        journal_ns_per_event: per_event(&mut journal),
        journal_report_ns_per_event: per_event(&mut both),
    };
    let report = DashboardReport {
        ratio: report.overview_ms / report.status_ms,
        ..report
    };
    writeln!(
        out,
        "dashboard: {rooms} rooms of {people} people; medians of {rounds} rounds over loopback\n"
    )?;
    for (label, value) in [
        ("GET / (overview)", report.overview_ms),
        ("GET /status", report.status_ms),
        ("GET /room/…", report.room_ms),
        ("live update", report.live_update_ms),
    ] {
        writeln!(out, "{label:<20} {value:>10.2} ms")?;
    }
    writeln!(
        out,
        "{:<20} {:>10} KB",
        "overview size",
        report.overview_bytes / 1024
    )?;
    writeln!(
        out,
        "{:<20} {:>10.2}   (overview time / status time)",
        "ratio", report.ratio
    )?;
    writeln!(
        out,
        "\na lecture's {} events on one room's task, per event:",
        frames.len()
    )?;
    for (label, value) in [
        ("decode + state", report.state_ns_per_event),
        ("  + journal", report.journal_ns_per_event),
        ("  + journal + report", report.journal_report_ns_per_event),
    ] {
        writeln!(
            out,
            "{label:<20} {value:>10.0} ns   ({:.2} of decode + state)",
            value / report.state_ns_per_event
        )?;
    }
    Ok(report)
}

/// Replays `frames` through a room state, telling `status` (when given)
/// what changed as the room's task does.
fn follow_round(frames: &[Frame], status: Option<&RoomStatus>) -> Duration {
    const START: f64 = 1_800_000_000.0;
    let mut state = RoomState::new();
    let mut codec = workload::codec();
    let started = Instant::now();
    for frame in frames {
        if let Ok(Some(event)) = codec.decode(&frame.wire) {
            let at = START + frame.at;
            let changes = state.apply_at(event, at);
            if let Some(status) = status
                && !changes.is_empty()
            {
                status.observe(&state, &changes, at);
            }
            black_box(changes);
        }
    }
    started.elapsed()
}

/// A registry of `rooms` rooms of `people` each, followed by a dashboard.
pub fn build(rooms: usize, people: usize) -> (Arc<Registry>, Arc<Dashboard>, Vec<Arc<RoomStatus>>) {
    let dashboard = Arc::new(Dashboard::default());
    let registry = Arc::new(Registry::watched_by(vec![
        dashboard.clone() as Arc<dyn Watching>
    ]));
    let statuses = (0..rooms)
        .map(|index| {
            let alias = format!("hall-{index:04}@usher.example");
            let status = registry.add_room(&alias, "campus", false);
            fill(&alias, &status, index, people);
            status
        })
        .collect();
    (registry, dashboard, statuses)
}

async fn time_get(client: &reqwest::Client, url: &str) -> anyhow::Result<(Duration, usize)> {
    let start = Instant::now();
    let response = client.get(url).send().await?.error_for_status()?;
    let body = response.bytes().await?;
    Ok((start.elapsed(), body.len()))
}

fn median_ms(times: &mut [Duration]) -> f64 {
    times.sort_unstable();
    times
        .get(times.len() / 2)
        .map_or(0.0, |median| median.as_secs_f64() * 1000.0)
}

/// Gives room number `index` a lecture's worth of state.
fn fill(alias: &str, status: &RoomStatus, index: usize, people: usize) {
    let now = unix_now();
    let mut state = RoomState::new();
    let mut apply = |event: Event| {
        let changes = state.apply_at(event, now);
        if !changes.is_empty() {
            status.observe(&state, &changes, now);
        }
    };
    apply(Event::Roster(Vec::new()));
    for person in 0..people {
        apply(Event::Participant(Participant {
            uuid: format!("{index}-{person}"),
            display_name: if person == 0 {
                format!("Prof. Lecturer {index}")
            } else {
                format!("Student {person} <{index}>")
            },
            role: if person == 0 {
                Role::Chair
            } else {
                Role::Guest
            },
            muted: person > 0,
            buzz_time: if person % 17 == 3 { now - 60.0 } else { 0.0 },
            service_type: if person % 29 == 5 {
                ServiceType::WaitingRoom
            } else {
                ServiceType::Conference
            },
            ..Participant::default()
        }));
    }
    apply(Event::PresentationStart(Presentation {
        presenter_name: format!("Prof. Lecturer {index}"),
        presenter_uri: String::new(),
        presenter_uuid: Some(format!("{index}-0")),
    }));
    apply(Event::Stage(vec![StageEntry {
        participant_uuid: format!("{index}-0"),
        stage_index: 0,
        vad: 100,
    }]));
    let in_trouble = index % 50 == 7;
    let rules = [
        "auto_mute_guests",
        "spotlight_presenter",
        "lock_when_full",
        "presentation_layout",
        "hand_queue",
        "chat_commands",
        "lecture_schedule",
    ];
    status.update(|room| {
        room.take_in(&state);
        room.set_phase(
            if index % 100 == 42 {
                Phase::Reconnecting
            } else {
                Phase::Connected
            },
            None,
        );
        let stats = rules.iter().map(|name| {
            (
                *name,
                RuleStats {
                    calls: 1000,
                    errors: u64::from(in_trouble),
                    ..RuleStats::default()
                },
            )
        });
        room.set_rules(stats, &CallLatency::default());
    });
    let intent = Intent {
        rule: "auto_mute_guests".into(),
        command: Command::participant(
            &format!("{index}-1"),
            &format!("Student 1 <{index}>"),
            ParticipantCommand::Mute,
        ),
        trigger: Arc::new(Trigger {
            handler: "on_join".into(),
            event: "participant".into(),
            participant: Some(Target {
                uuid: format!("{index}-1"),
                name: format!("Student 1 <{index}>"),
            }),
        }),
        shadow: false,
    };
    for _ in 0..20 {
        status.command(&AuditRecord::for_intent(alias, &intent, Outcome::Ok, now));
    }
    if in_trouble {
        let mut failed = AuditRecord::for_intent(alias, &intent, Outcome::Failed, now);
        failed.error = Some("HTTP 502 from the node".into());
        status.command(&failed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::dashboard::overview;

    #[test]
    fn five_hundred_rooms_all_show_trouble_first() {
        let (registry, dashboard, _) = build(500, 20);
        let page = overview::page(&registry, &dashboard, unix_now());
        assert_eq!(page.matches("<tr id=\"room-").count(), 500);
        let rows = overview::rows(&registry, &dashboard, unix_now());
        let trouble: Vec<u8> = rows.iter().map(|row| row.trouble).collect();
        assert!(trouble.windows(2).all(|pair| pair[0] >= pair[1]));
        // Rooms 42, 142, … reconnect; rooms 7, 57, … had a command fail.
        assert_eq!(rows[0].alias, "hall-0042@usher.example");
        assert_eq!(trouble.iter().filter(|t| **t == 2).count(), 5);
        assert_eq!(trouble.iter().filter(|t| **t == 1).count(), 10);
    }

    #[tokio::test]
    async fn the_benchmark_reports_every_figure() {
        let mut out = Vec::new();
        let report = run(20, 10, 1, &mut out).await.unwrap();
        assert_eq!(report.rooms, 20);
        assert!(report.overview_ms > 0.0 && report.status_ms > 0.0);
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("GET / (overview)"), "{text}");
    }
}
