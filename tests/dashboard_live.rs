//! Live updates are pushed, and coalesced: however busy a room, a view gets
//! a few messages a second, and the last one shows the room as it is. The
//! real daemon and simulator over loopback, the event stream read as a
//! browser's EventSource reads it.

mod common;

use std::time::{Duration, Instant};

use common::daemon::*;
use futures_util::StreamExt as _;
use usher::sim::step::{Joiner, Step};

/// The `data:` of every message named `event` that arrives on `path`
/// within `window`, while `busy` runs.
async fn messages_during(
    usher: &Usher,
    path: &str,
    event: &str,
    window: Duration,
    busy: impl std::future::Future<Output = ()>,
) -> Vec<String> {
    let response = reqwest::Client::new()
        .get(format!("http://{}{path}", usher.http))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "text/event-stream"
    );
    let mut body = response.bytes_stream();
    let reading = async {
        let mut text = String::new();
        let until = Instant::now() + window;
        while let Ok(Some(Ok(chunk))) = tokio::time::timeout_at(until.into(), body.next()).await {
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
        text
    };
    let (text, ()) = tokio::join!(reading, busy);
    let marker = format!("event: {event}\n");
    text.split("\n\n")
        .filter(|message| message.starts_with(&marker))
        .filter_map(|message| message.lines().find_map(|l| l.strip_prefix("data: ")))
        .map(str::to_owned)
        .collect()
}

/// 80 people join as fast as the simulator takes them (fewer than a room's
/// timeline keeps, so none of them is pushed out before it is sent).
async fn crowd(sim: &usher::sim::Simulator) {
    tokio::time::sleep(Duration::from_millis(200)).await;
    for n in 0..80 {
        sim.step(ROOM, &Step::Join(Joiner::guest(format!("Guest {n}"))))
            .unwrap();
        if n % 10 == 0 {
            tokio::task::yield_now().await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_room_gets_a_few_updates_a_second() {
    let sim = simulator(vec![room(vec![Joiner::host("Ada")])]).await;
    let usher = Usher::start(TestDir::new("live_room"), &config(&sim, &[], "")).await;
    let window = Duration::from_secs(3);
    let path = format!("/room/{}/live", usher::report::markup::path_segment(ROOM));
    let messages = messages_during(&usher, &path, "room", window, crowd(&sim)).await;
    // One message at once, then at most one every 300 ms.
    assert!(
        (2..=1 + 10).contains(&messages.len()),
        "{} messages in {window:?}",
        messages.len()
    );
    let last_roster = messages
        .iter()
        .rev()
        .find(|m| m.contains("\"roster\""))
        .expect("the roster was sent");
    assert!(
        last_roster.contains("data-name=\\\"Guest 79\\\""),
        "the last update shows everyone"
    );
    let entries: usize = messages
        .iter()
        .map(|m| m.matches("joined</li>").count())
        .sum();
    assert_eq!(entries, 80, "every join reached the timeline, once");
    usher.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_overview_sends_only_rooms_that_changed() {
    let sim = simulator(vec![
        room(vec![Joiner::host("Ada")]),
        room_named("quiet@usher.test", vec![Joiner::host("Grace")]),
    ])
    .await;
    let rooms: [(&str, &[&str]); 2] = [(ROOM, &[]), ("quiet@usher.test", &[])];
    let usher = Usher::start(
        TestDir::new("live_overview"),
        &rooms_config(&sim, &rooms, ""),
    )
    .await;
    let window = Duration::from_secs(3);
    let messages = messages_during(&usher, "/live", "overview", window, crowd(&sim)).await;
    assert!(
        (2..=1 + 10).contains(&messages.len()),
        "{} messages in {window:?}",
        messages.len()
    );
    assert!(
        messages[0].contains("room-quiet%40usher.test"),
        "every row first"
    );
    for later in &messages[1..] {
        assert!(
            !later.contains("room-quiet%40usher.test"),
            "the quiet room is not sent again: {later}"
        );
    }
    assert!(
        messages.last().unwrap().contains(">81</td>"),
        "the last update counts everyone in the busy room"
    );
    usher.stop().await;
}
