//! `usher record` and `usher replay`: a live simulated room is recorded over
//! loopback with the real client, and the recording is replayed through the
//! real rule engine offline.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use usher::config::Config;
use usher::model::Secret;
use usher::recording::{read, record, replay};
use usher::sim::step::{Chat, Joiner, Step};
use usher::sim::{RoomSpec, Simulator};

const ROOM: &str = "recorded@usher.test";

fn workdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("usher-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    usher::shipped::write_rules(&dir.join("rules")).expect("rules are written");
    dir
}

fn config(dir: &Path, simulator: &Simulator) -> (Config, PathBuf) {
    let text = format!(
        "platform:\n  url: {}\nrules_dir: rules\nrooms:\n  - alias: {ROOM}\n    pin: \"1357\"\n    rules:\n      - auto_mute_guests\n      - chat_commands\n",
        simulator.base_url()
    );
    let path = dir.join("usher.yaml");
    std::fs::write(&path, text).expect("config is written");
    (Config::load(&path).expect("the config is valid"), path)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_room_replays_through_the_rules() {
    let dir = workdir("record");
    let mut room = RoomSpec::new(ROOM);
    room.pin = Some(Secret::new("1357"));
    room.participants = vec![Joiner::host("Prof. Ada"), Joiner::guest("Early Eve")];
    let simulator = Simulator::start(SocketAddr::from(([127, 0, 0, 1], 0)), vec![room])
        .await
        .expect("the simulator starts");
    let (config, config_path) = config(&dir, &simulator);
    let output = dir.join("room.jsonl");

    let stop = CancellationToken::new();
    let recorder = {
        let (config, output, stop) = (config.clone(), output.clone(), stop.clone());
        let path = config_path.clone();
        tokio::spawn(async move { record(&config, &path, ROOM, &output, stop).await })
    };
    let connected = tokio::time::timeout(Duration::from_secs(10), async {
        while simulator.open_streams(ROOM) == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    connected.await.expect("the recorder connects");
    for step in [
        Step::Join(Joiner::guest("Bob")),
        Step::Chat(Chat {
            from: "Prof. Ada".into(),
            text: "!lock".into(),
        }),
        Step::Leave("Early Eve".into()),
    ] {
        simulator.step(ROOM, &step).expect("the step happens");
    }
    let written = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let lines = read(&output).unwrap_or_default();
            if lines.iter().any(|l| l.event == "participant_left") {
                break lines;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the events reach the file");
    stop.cancel();
    let events = recorder
        .await
        .expect("the recorder ends")
        .expect("recording works");
    assert!(events >= 4, "roster, join, chat, leave: {events}");
    assert!(
        simulator
            .calls()
            .iter()
            .any(|call| call.path == "end_session"),
        "the recorder ends its session"
    );
    assert!(
        written.iter().all(|line| line.to_event().is_ok()),
        "every line reads back as an event"
    );
    assert!(
        !written
            .iter()
            .any(|line| line.data.to_string().contains("\"usher\"")),
        "usher's own participant is never recorded"
    );
    assert!(
        !simulator
            .calls()
            .iter()
            .any(|call| call.method == "POST" && call.path.starts_with("participants/")),
        "recording sends no command"
    );

    let mut out = Vec::new();
    let lines = read(&output).expect("the recording reads back");
    let summary = replay(&config, None, &lines, &mut out).expect("the replay runs");
    let text = String::from_utf8(out).expect("utf-8");
    assert_eq!(summary.rule_errors, 0, "{text}");
    assert_eq!(summary.commands, 2, "{text}");
    assert!(
        text.contains("mute Bob") && text.contains("auto_mute_guests"),
        "{text}"
    );
    assert!(
        text.contains("lock") && text.contains("chat_commands"),
        "{text}"
    );
    assert!(
        !text.contains("Early Eve"),
        "the baseline is not news: {text}"
    );
    simulator.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}
