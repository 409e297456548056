//! Black-box tests of the simulator over loopback HTTP: sessions, tokens,
//! errors, event streams, commands and faults, as a client sees them.

use std::time::{Duration, Instant};

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

use usher::model::{Secret, Span};
use usher::platform::vmr::wire::{Reply, SessionGrant, TokenRefresh};
use usher::sim::step::{Joiner, Step};
use usher::sim::{Fault, RoomSpec, Scenario, Simulator};

const ROOM: &str = "lecture@usher.example";
const PIN: &str = "2468";
/// How long a test waits for something that should happen at once.
const PATIENCE: Duration = Duration::from_secs(5);

fn spec(token_expiry: Duration) -> RoomSpec {
    RoomSpec {
        alias: ROOM.into(),
        pin: Some(Secret::new(PIN)),
        token_expiry,
        participants: vec![Joiner::host("Ada"), Joiner::guest("Bob")],
    }
}

async fn start() -> Simulator {
    start_with(Duration::from_secs(120)).await
}

async fn start_with(token_expiry: Duration) -> Simulator {
    Simulator::start("127.0.0.1:0".parse().unwrap(), vec![spec(token_expiry)])
        .await
        .unwrap()
}

fn url(sim: &Simulator, path: &str) -> String {
    format!("{}api/services/{ROOM}/{path}", sim.base_url())
}

/// Opens a session and returns its grant.
async fn session(client: &Client, sim: &Simulator, hideme: &str) -> SessionGrant {
    let response = client
        .post(url(sim, "new_session"))
        .header("pin", PIN)
        .json(&json!({ "display_name": "usher", "hideme": hideme }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let reply: Reply = response.json().await.unwrap();
    serde_json::from_value(reply.result).unwrap()
}

async fn post(
    client: &Client,
    sim: &Simulator,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = client.post(url(sim, path)).header("token", token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    (response.status(), response.json().await.unwrap())
}

async fn get(client: &Client, sim: &Simulator, path: &str, token: &str) -> (StatusCode, Value) {
    let response = client
        .get(url(sim, path))
        .header("token", token)
        .send()
        .await
        .unwrap();
    (response.status(), response.json().await.unwrap())
}

/// One server-sent frame: event name, id and data.
type Frame = (String, u64, String);

/// An event stream as a client reads it: the raw text and its frames.
struct Stream {
    response: reqwest::Response,
    text: String,
    /// Complete frames parsed so far, and where parsing stopped in `text`.
    parsed: Vec<Frame>,
    parsed_up_to: usize,
}

impl Stream {
    async fn open(client: &Client, sim: &Simulator, token: &str) -> Stream {
        let response = client
            .get(format!("{}?token={token}", url(sim, "events")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        Stream::from(response)
    }

    fn from(response: reqwest::Response) -> Stream {
        Stream {
            response,
            text: String::new(),
            parsed: Vec::new(),
            parsed_up_to: 0,
        }
    }

    /// Reads one chunk; `false` when the stream ended. Panics once
    /// `deadline` passes, showing `waiting_for`.
    async fn read(&mut self, deadline: Instant, waiting_for: &str) -> bool {
        let left = deadline.saturating_duration_since(Instant::now());
        let chunk = tokio::time::timeout(left, self.response.chunk())
            .await
            .unwrap_or_else(|_| panic!("no {waiting_for} in time; got:\n{}", self.text));
        let Ok(Some(bytes)) = chunk else {
            return false;
        };
        self.text.push_str(&String::from_utf8_lossy(&bytes));
        while let Some(length) = self.text[self.parsed_up_to..].find("\n\n") {
            let block = &self.text[self.parsed_up_to..self.parsed_up_to + length];
            self.parsed_up_to += length + 2;
            if !block.starts_with("event: ") {
                continue;
            }
            let field = |name: &str| {
                block
                    .lines()
                    .find_map(|line| line.strip_prefix(name))
                    .unwrap_or_default()
                    .to_owned()
            };
            let frame = (
                field("event: "),
                field("id: ").parse().unwrap(),
                field("data: "),
            );
            self.parsed.push(frame);
        }
        true
    }

    /// Reads until the text contains `needle`.
    async fn until(&mut self, needle: &str) {
        let deadline = Instant::now() + PATIENCE;
        while !self.text.contains(needle) {
            let waiting_for = format!("{needle:?}");
            assert!(
                self.read(deadline, &waiting_for).await,
                "the stream ended without {needle:?}; got:\n{}",
                self.text
            );
        }
    }

    /// Reads until the server ends the stream.
    async fn until_end(&mut self) {
        let deadline = Instant::now() + PATIENCE;
        while self.read(deadline, "end of the stream").await {}
    }

    /// Reads until `count` whole frames have arrived.
    async fn until_frames(&mut self, count: usize) {
        let deadline = Instant::now() + PATIENCE;
        while self.parsed.len() < count {
            let waiting_for = format!("frame {count} (have {})", self.parsed.len());
            assert!(
                self.read(deadline, &waiting_for).await,
                "the stream ended before {waiting_for}"
            );
        }
    }

    /// The frames read completely so far.
    fn frames(&self) -> Vec<Frame> {
        self.parsed.clone()
    }
}

async fn wait_for(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn new_session_checks_the_pin() {
    let sim = start().await;
    let client = Client::new();
    for pin in [Some("1111"), None] {
        let mut request = client
            .post(url(&sim, "new_session"))
            .json(&json!({"display_name": "x"}));
        if let Some(pin) = pin {
            request = request.header("pin", pin);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body, json!({"status": "success", "result": "Invalid PIN"}));
    }
    let response = client
        .post(url(&sim, "new_session"))
        .header("pin", PIN)
        .json(&json!({"display_name": "usher"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "success");
    let result = &body["result"];
    assert!(result["token"].as_str().unwrap().len() >= 32);
    assert_eq!(
        result["expires"],
        json!("120"),
        "a string, as real servers send it"
    );
    assert_eq!(result["role"], "HOST");
    assert_eq!(result["display_name"], "usher");
    assert_eq!(result["service_type"], "conference");
    assert_eq!(result["current_service_type"], "conference");
    assert_eq!(result["chat_enabled"], true);
    assert!(result["version"]["version_id"].is_string());
    assert!(result["stun"][0]["url"].is_string());
    assert_eq!(result["participant_uuid"].as_str().unwrap().len(), 36);
    assert_eq!(sim.active_sessions(ROOM), 1);
    assert_eq!(
        sim.conference(ROOM).unwrap().participants.len(),
        2,
        "hidden by default"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn a_room_without_pin_takes_any_pin() {
    let sim = Simulator::start(
        "127.0.0.1:0".parse().unwrap(),
        vec![RoomSpec::new("open@usher.example")],
    )
    .await
    .unwrap();
    let client = Client::new();
    for pin in [Some("whatever"), None] {
        let mut request = client.post(format!(
            "{}api/services/open@usher.example/new_session",
            sim.base_url()
        ));
        if let Some(pin) = pin {
            request = request.header("pin", pin);
        }
        assert_eq!(request.send().await.unwrap().status(), StatusCode::OK);
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn refresh_gives_a_new_token_and_keeps_the_old_one_until_it_expires() {
    let sim = start().await;
    let client = Client::new();
    let grant = session(&client, &sim, "yes").await;
    let old = grant.token.expose().to_owned();
    let (status, body) = post(&client, &sim, "refresh_session", &old, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["result"]["expires"], json!("120"));
    let refreshed: TokenRefresh = serde_json::from_value(body["result"].clone()).unwrap();
    assert_ne!(refreshed.token.expose(), old);
    for token in [old.as_str(), refreshed.token.expose()] {
        let (status, body) = get(&client, &sim, "service_status", token).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            body,
            json!({"status": "success", "result": {"guests_muted": false, "locked": false, "started": false}})
        );
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn end_session_ends_it_now() {
    let sim = start().await;
    let client = Client::new();
    let grant = session(&client, &sim, "no").await;
    let token = grant.token.expose();
    let mut stream = Stream::open(&client, &sim, token).await;
    stream.until("participant_sync_end").await;
    let (status, body) = post(&client, &sim, "end_session", token, None).await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, json!({"status": "success", "result": true}))
    );
    stream.until_end().await;
    let (status, body) = get(&client, &sim, "service_status", token).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        body,
        json!({"status": "success", "result": "Invalid token"})
    );
    assert_eq!(sim.active_sessions(ROOM), 0);
    assert!(sim.conference(ROOM).unwrap().find("usher").is_none());
    let calls = sim.calls();
    let ended = calls
        .iter()
        .find(|call| call.path == "end_session")
        .unwrap();
    assert_eq!(
        (ended.room.as_deref(), ended.method.as_str(), ended.status),
        (Some(ROOM), "POST", 200)
    );
    assert!(calls.iter().all(|call| !call.path.contains(token)));
    sim.shutdown().await;
}

#[tokio::test]
async fn bad_and_expired_tokens_get_403() {
    let sim = start_with(Duration::from_millis(1000)).await;
    let client = Client::new();
    let invalid = json!({"status": "success", "result": "Invalid token"});
    assert_eq!(
        get(&client, &sim, "participants", "nonsense").await,
        (StatusCode::FORBIDDEN, invalid.clone())
    );
    let response = client.post(url(&sim, "lock")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(response.json::<Value>().await.unwrap(), invalid);
    let events = client.get(url(&sim, "events")).send().await.unwrap();
    assert_eq!(events.status(), StatusCode::FORBIDDEN);

    let grant = session(&client, &sim, "no").await;
    let token = grant.token.expose();
    let mut stream = Stream::open(&client, &sim, token).await;
    stream.until("participant_sync_end").await;
    assert!(sim.conference(ROOM).unwrap().find("usher").is_some());
    // Nobody refreshes: the sweeper ends the session soon after expiry.
    stream.until_end().await;
    assert_eq!(sim.active_sessions(ROOM), 0);
    assert!(sim.conference(ROOM).unwrap().find("usher").is_none());
    assert_eq!(
        get(&client, &sim, "participants", token).await,
        (StatusCode::FORBIDDEN, invalid)
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn unknown_rooms_participants_and_commands_get_404() {
    let sim = start().await;
    let client = Client::new();
    let response = client
        .post(format!(
            "{}api/services/nowhere@usher.example/new_session",
            sim.base_url()
        ))
        .header("pin", PIN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"status": "success", "result": "Neither conference nor gateway found"})
    );
    let token = session(&client, &sim, "yes")
        .await
        .token
        .expose()
        .to_owned();
    let (status, body) = post(&client, &sim, "participants/0000-nobody/mute", &token, None).await;
    assert_eq!(
        (status, body),
        (
            StatusCode::NOT_FOUND,
            json!({"status": "failed", "result": "Participant not found"})
        )
    );
    let (status, body) = post(&client, &sim, "explode", &token, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["status"], "failed");
    let (status, body) = post(
        &client,
        &sim,
        "message",
        &token,
        Some(json!({"type": "text/plain"})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["status"], "failed");
    let response = client
        .post(url(&sim, "lock"))
        .header("token", &token)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(
        response.json::<Value>().await.unwrap()["result"]
            .as_str()
            .unwrap()
            .contains("JSON")
    );
    let response = client
        .get(format!("{}no/such/path", sim.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let response = client
        .post(url(&sim, "service_status"))
        .header("token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    sim.shutdown().await;
}

#[tokio::test]
async fn a_stream_starts_with_the_sync_bracket() {
    let sim = start().await;
    let client = Client::new();
    let token = session(&client, &sim, "yes")
        .await
        .token
        .expose()
        .to_owned();
    let mut stream = Stream::open(&client, &sim, &token).await;
    stream.until("event: participant_sync_end").await;
    assert!(
        stream
            .text
            .starts_with("event: participant_sync_begin\nid: "),
        "{}",
        stream.text
    );
    let frames = stream.frames();
    let names: Vec<&str> = frames.iter().map(|(name, _, _)| name.as_str()).collect();
    assert_eq!(
        names,
        [
            "participant_sync_begin",
            "participant_create",
            "participant_create",
            "participant_sync_end"
        ]
    );
    assert_eq!(frames[0].2, "null");
    assert_eq!(frames[3].2, "null");
    let ada: Value = serde_json::from_str(&frames[1].2).unwrap();
    let bob: Value = serde_json::from_str(&frames[2].2).unwrap();
    assert_eq!(
        (ada["display_name"].as_str(), ada["role"].as_str()),
        (Some("Ada"), Some("chair"))
    );
    assert_eq!(
        (bob["display_name"].as_str(), bob["is_muted"].as_str()),
        (Some("Bob"), Some("NO"))
    );
    assert!(
        frames.windows(2).all(|pair| pair[0].1 < pair[1].1),
        "ids increase"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn a_command_is_answered_and_its_event_streamed() {
    let sim = start().await;
    let client = Client::new();
    let token = session(&client, &sim, "yes")
        .await
        .token
        .expose()
        .to_owned();
    let mut stream = Stream::open(&client, &sim, &token).await;
    stream.until("participant_sync_end").await;
    let bob = sim
        .conference(ROOM)
        .unwrap()
        .find("Bob")
        .unwrap()
        .uuid
        .clone();
    let (status, body) = post(
        &client,
        &sim,
        &format!("participants/{bob}/mute"),
        &token,
        None,
    )
    .await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, json!({"status": "success", "result": true}))
    );
    stream.until("event: participant_update").await;
    stream.until("\n\n").await;
    let (name, _, data) = stream.frames().pop().unwrap();
    assert_eq!(name, "participant_update");
    let data: Value = serde_json::from_str(&data).unwrap();
    assert_eq!(
        (data["uuid"].as_str(), data["is_muted"].as_str()),
        (Some(bob.as_str()), Some("YES"))
    );
    assert!(sim.conference(ROOM).unwrap().find("Bob").unwrap().muted);
    let mute = sim
        .calls()
        .into_iter()
        .find(|call| call.path.ends_with("/mute"))
        .unwrap();
    assert_eq!(mute.path, format!("participants/{bob}/mute"));

    let (status, body) = post(&client, &sim, "lock", &token, None).await;
    assert_eq!(
        (status, body["result"].clone()),
        (StatusCode::OK, json!(true))
    );
    stream.until("event: service_update").await;
    let (_, body) = get(&client, &sim, "service_status", &token).await;
    assert_eq!(body["result"]["locked"], true);
    let (_, body) = get(&client, &sim, "participants", &token).await;
    assert_eq!(body["result"].as_array().unwrap().len(), 2);
    sim.shutdown().await;
}

#[tokio::test]
async fn dial_returns_the_new_uuid() {
    let sim = start().await;
    let client = Client::new();
    let token = session(&client, &sim, "yes")
        .await
        .token
        .expose()
        .to_owned();
    let dial = json!({"role": "guest", "destination": "carl@example.com", "protocol": "sip"});
    let (status, body) = post(&client, &sim, "dial", &token, Some(dial)).await;
    assert_eq!(status, StatusCode::OK);
    let uuid = body["result"][0].as_str().unwrap();
    assert_eq!(
        sim.conference(ROOM)
            .unwrap()
            .find("carl@example.com")
            .unwrap()
            .uuid,
        uuid
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn steps_and_the_player_reach_the_stream() {
    let sim = start().await;
    let client = Client::new();
    let token = session(&client, &sim, "yes")
        .await
        .token
        .expose()
        .to_owned();
    let mut stream = Stream::open(&client, &sim, &token).await;
    stream.until("participant_sync_end").await;
    sim.step(ROOM, &Step::Present("Ada".into())).unwrap();
    stream.until("event: presentation_start").await;
    assert!(sim.step(ROOM, &Step::Leave("Nobody".into())).is_err());
    assert!(sim.step("nowhere", &Step::Silence).is_err());

    let scenario = Scenario::from_yaml(&format!(
        "room: {ROOM}\ntimeline:\n  - {{ at: 0s, join: Carl }}\n  - {{ at: 50ms, chat: {{ from: Carl, text: \"!lock\" }} }}\n"
    ))
    .unwrap();
    sim.play(&scenario).await.unwrap();
    stream.until("\"payload\":\"!lock\"").await;
    assert!(sim.conference(ROOM).unwrap().find("Carl").is_some());
    sim.shutdown().await;
}

#[tokio::test]
async fn drop_streams_ends_streams_but_not_sessions() {
    let sim = start().await;
    let client = Client::new();
    let token = session(&client, &sim, "yes")
        .await
        .token
        .expose()
        .to_owned();
    let mut stream = Stream::open(&client, &sim, &token).await;
    stream.until("participant_sync_end").await;
    assert_eq!(sim.open_streams(ROOM), 1);
    sim.fault(ROOM, Fault::DropStreams).unwrap();
    stream.until_end().await;
    wait_for("the stream to be gone", || sim.open_streams(ROOM) == 0).await;
    assert_eq!(
        get(&client, &sim, "service_status", &token).await.0,
        StatusCode::OK
    );
    let mut again = Stream::open(&client, &sim, &token).await;
    again.until("participant_sync_end").await;
    sim.shutdown().await;
}

#[tokio::test]
async fn expire_tokens_ends_every_session() {
    let sim = start().await;
    let client = Client::new();
    let token = session(&client, &sim, "no").await.token.expose().to_owned();
    let mut stream = Stream::open(&client, &sim, &token).await;
    stream.until("participant_sync_end").await;
    sim.fault(ROOM, Fault::ExpireTokens).unwrap();
    stream.until_end().await;
    assert_eq!(
        get(&client, &sim, "participants", &token).await.0,
        StatusCode::FORBIDDEN
    );
    assert!(sim.conference(ROOM).unwrap().find("usher").is_none());
    sim.shutdown().await;
}

#[tokio::test]
async fn fail_commands_fails_exactly_that_many_commands() {
    let sim = start().await;
    let client = Client::new();
    let token = session(&client, &sim, "yes")
        .await
        .token
        .expose()
        .to_owned();
    sim.fault(
        ROOM,
        Fault::FailCommands {
            count: 2,
            status: 502,
        },
    )
    .unwrap();
    assert_eq!(
        post(&client, &sim, "refresh_session", &token, None).await.0,
        StatusCode::OK
    );
    assert_eq!(
        get(&client, &sim, "service_status", &token).await.0,
        StatusCode::OK
    );
    for _ in 0..2 {
        let (status, body) = post(&client, &sim, "lock", &token, None).await;
        assert_eq!(
            (status, body),
            (
                StatusCode::BAD_GATEWAY,
                json!({"status": "failed", "result": "simulated failure"})
            )
        );
    }
    assert!(!sim.conference(ROOM).unwrap().flags.locked);
    assert_eq!(
        post(&client, &sim, "lock", &token, None).await.0,
        StatusCode::OK
    );
    assert!(sim.conference(ROOM).unwrap().flags.locked);
    sim.shutdown().await;
}

#[tokio::test]
async fn delay_responses_holds_back_that_many_responses() {
    let sim = start().await;
    let client = Client::new();
    let token = session(&client, &sim, "yes")
        .await
        .token
        .expose()
        .to_owned();
    let delay: Span = "300ms".parse().unwrap();
    sim.fault(ROOM, Fault::DelayResponses { delay, count: 1 })
        .unwrap();
    let started = Instant::now();
    assert_eq!(
        get(&client, &sim, "service_status", &token).await.0,
        StatusCode::OK
    );
    assert!(started.elapsed() >= Duration::from_millis(300));
    let started = Instant::now();
    assert_eq!(
        get(&client, &sim, "service_status", &token).await.0,
        StatusCode::OK
    );
    assert!(started.elapsed() < Duration::from_millis(300));
    sim.shutdown().await;
}

#[tokio::test]
async fn a_visible_session_is_in_the_roster() {
    let sim = start().await;
    let client = Client::new();
    let watcher = session(&client, &sim, "yes")
        .await
        .token
        .expose()
        .to_owned();
    let mut stream = Stream::open(&client, &sim, &watcher).await;
    stream.until("participant_sync_end").await;
    let shown = session(&client, &sim, "no").await;
    stream.until("\"protocol\":\"api\"").await;
    let (_, body) = get(&client, &sim, "participants", &watcher).await;
    let listed = body["result"].as_array().unwrap();
    let me = listed
        .iter()
        .find(|p| p["uuid"] == json!(shown.participant_uuid))
        .unwrap();
    assert_eq!(
        (me["protocol"].as_str(), me["role"].as_str()),
        (Some("api"), Some("chair"))
    );
    post(&client, &sim, "end_session", shown.token.expose(), None).await;
    stream.until("event: participant_delete").await;
    sim.shutdown().await;
}

#[tokio::test]
async fn conference_disconnect_kicks_every_session() {
    let sim = start().await;
    let client = Client::new();
    let token = session(&client, &sim, "yes")
        .await
        .token
        .expose()
        .to_owned();
    let mut stream = Stream::open(&client, &sim, &token).await;
    stream.until("participant_sync_end").await;
    let (status, _) = post(&client, &sim, "disconnect", &token, None).await;
    assert_eq!(status, StatusCode::OK);
    stream.until_end().await;
    let names: Vec<String> = stream
        .frames()
        .into_iter()
        .map(|(name, _, _)| name)
        .collect();
    assert_eq!(
        names[4..],
        ["participant_delete", "participant_delete", "disconnect"]
    );
    assert!(sim.conference(ROOM).unwrap().participants.is_empty());
    assert_eq!(sim.active_sessions(ROOM), 0);
    sim.shutdown().await;
}

#[tokio::test]
async fn percent_encoded_rooms_and_header_tokens_work() {
    let sim = start().await;
    let client = Client::new();
    let token = session(&client, &sim, "yes")
        .await
        .token
        .expose()
        .to_owned();
    let encoded = format!(
        "{}api/services/lecture%40usher.example/service_status",
        sim.base_url()
    );
    let response = client
        .get(encoded)
        .header("token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let response = client
        .get(url(&sim, "events"))
        .header("token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    drop(response);
    sim.shutdown().await;
}

#[tokio::test]
async fn check_join_finds_the_room() {
    let sim = start().await;
    let client = Client::new();
    let check = |account: &str, password: &str| {
        client
            .post(format!("{}api/v3/meet/checkJoin.shtml", sim.base_url()))
            .json(&json!({"joinAccount": account, "joinPwd": password, "participantName": "usher"}))
            .send()
    };
    let body: Value = check(ROOM, PIN).await.unwrap().json().await.unwrap();
    assert_eq!(body["code"], "200");
    assert_eq!(body["results"]["mcuHost"], json!(sim.addr().to_string()));
    assert_eq!(body["results"]["alias"], ROOM);
    assert_eq!(body["results"]["roleType"], "host");
    assert_eq!(body["timeStamp"].as_str().unwrap().len(), 19);
    let body: Value = check(ROOM, "0000").await.unwrap().json().await.unwrap();
    assert_eq!(body["code"], "403");
    let body: Value = check("nowhere@usher.example", PIN)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["code"], "404");
    let response = client
        .post(format!("{}api/v3/meet/checkJoin.shtml", sim.base_url()))
        .body("[]")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    sim.shutdown().await;
}

#[tokio::test]
async fn a_restarted_simulator_binds_the_same_port() {
    let sim = start().await;
    let client = Client::new();
    let token = session(&client, &sim, "yes")
        .await
        .token
        .expose()
        .to_owned();
    let mut stream = Stream::open(&client, &sim, &token).await;
    stream.until("participant_sync_end").await;
    let addr = sim.addr();
    sim.shutdown().await;
    stream.until_end().await;
    let again = Simulator::start(addr, vec![spec(Duration::from_secs(120))])
        .await
        .unwrap();
    assert_eq!(again.addr(), addr);
    assert_eq!(
        get(&client, &again, "service_status", &token).await.0,
        StatusCode::FORBIDDEN
    );
    again.shutdown().await;
}

#[tokio::test]
async fn busy_rooms_deliver_every_event_in_order_to_every_stream() {
    let rooms: Vec<RoomSpec> = (0..50)
        .map(|i| RoomSpec {
            participants: vec![Joiner::guest("Bob")],
            ..RoomSpec::new(format!("room{i}@usher.example"))
        })
        .collect();
    let sim = Simulator::start("127.0.0.1:0".parse().unwrap(), rooms)
        .await
        .unwrap();
    let client = Client::new();
    let mut streams = Vec::new();
    for i in 0..50 {
        let base = format!("{}api/services/room{i}@usher.example/", sim.base_url());
        let reply: Reply = client
            .post(format!("{base}new_session"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let token = reply.result["token"].as_str().unwrap().to_owned();
        let copies = if i == 0 { 8 } else { 1 };
        for _ in 0..copies {
            let response = client
                .get(format!("{base}events?token={token}"))
                .send()
                .await
                .unwrap();
            let mut stream = Stream::from(response);
            stream.until("participant_sync_end").await;
            streams.push(stream);
        }
    }
    const STEPS: usize = 1000;
    for n in 0..STEPS {
        let step = if n % 2 == 0 {
            Step::RaiseHand("Bob".into())
        } else {
            Step::LowerHand("Bob".into())
        };
        sim.step("room0@usher.example", &step).unwrap();
    }
    sim.step("room7@usher.example", &Step::Speak("Bob".into()))
        .unwrap();
    // room0's eight streams get every update, room7's one stream its stage
    // event, and every other room's stream nothing.
    let expected = |index: usize| match index {
        0..=7 => STEPS,
        14 => 1,
        _ => 0,
    };
    let readers: Vec<_> = streams
        .into_iter()
        .enumerate()
        .map(|(index, mut stream)| {
            tokio::spawn(async move {
                stream.until_frames(3 + expected(index)).await;
                stream
            })
        })
        .collect();
    // The streams stay open (held here) until the count below.
    let mut held = Vec::new();
    for (index, reader) in readers.into_iter().enumerate() {
        let stream = reader.await.unwrap();
        let frames = stream.frames();
        held.push(stream);
        assert_eq!(frames.len() - 3, expected(index), "stream {index}");
        assert!(
            frames.windows(2).all(|pair| pair[0].1 < pair[1].1),
            "stream {index}: ids increase"
        );
    }
    assert_eq!(sim.open_streams("room0@usher.example"), 8);
    sim.shutdown().await;
}
