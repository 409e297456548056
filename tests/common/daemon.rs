//! What the daemon's end-to-end tests share: a temporary directory per test,
//! the config they write, the in-process daemon or the real binary, the
//! simulator they talk to over loopback (directly or through a [`Link`]
//! that can be cut). The room, its simulator, [`PATIENCE`] and
//! [`eventually`] are the parent module's, re-exported here so that
//! `use common::daemon::*;` brings all a daemon test needs.
//!
//! Every test binary uses a different part of this module.
#![allow(dead_code)]

// Each test binary uses only some of them.
#[allow(unused_imports)]
pub use super::{PATIENCE, PIN, ROOM, eventually, loopback, room, simulator};

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use usher::config::Config;
use usher::platform::FeedOptions;
use usher::runtime::audit::{AuditRecord, Outcome, read_log};
use usher::runtime::{Daemon, StartError, StartOptions};
use usher::sim::step::Joiner;
use usher::sim::{CallRecord, RoomSpec, Simulator};

/// A directory of its own for one test, removed when dropped.
pub struct TestDir {
    path: PathBuf,
}

impl TestDir {
    /// `<tmp>/usher-e2e-<test>-<pid>`, empty.
    pub fn new(test: &str) -> TestDir {
        let path = std::env::temp_dir().join(format!("usher-e2e-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(path.join("rules")).expect("the test directory can be made");
        TestDir { path }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A path inside it.
    pub fn join(&self, relative: &str) -> PathBuf {
        self.path.join(relative)
    }

    /// Writes a file inside it and returns its path.
    pub fn write(&self, relative: &str, text: &str) -> PathBuf {
        let path = self.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("the parent can be made");
        }
        std::fs::write(&path, text).expect("the file can be written");
        path
    }

    /// Writes the shipped rules into `rules/`.
    pub fn shipped_rules(&self) {
        usher::shipped::write_rules(&self.join("rules")).expect("the shipped rules can be written");
    }

    /// Writes a rule of the test's own into `rules/<name>.rhai`.
    pub fn rule(&self, name: &str, source: &str) -> PathBuf {
        self.write(&format!("rules/{name}.rhai"), source)
    }

    /// The audit log (`audit.jsonl`) as records so far; none before it exists.
    pub fn audit(&self) -> Vec<AuditRecord> {
        match read_log(&self.join("audit.jsonl")) {
            Ok((records, unreadable)) => {
                assert_eq!(unreadable, 0, "every audit line is a record");
                records
            }
            Err(_) => Vec::new(),
        }
    }

    /// The audit log as written, for searching.
    pub fn audit_text(&self) -> String {
        std::fs::read_to_string(self.join("audit.jsonl")).unwrap_or_default()
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// A config for [`ROOM`] on `sim`, its PIN in `hall.pin`, with `rules` (one
/// YAML list item each, e.g. `lock_when_full: { max: 4 }`) and `extra`
/// top-level YAML. The audit log is `audit.jsonl`; the HTTP endpoint takes
/// any free loopback port.
pub fn config(sim: &Simulator, rules: &[&str], extra: &str) -> String {
    let rules: String = rules
        .iter()
        .map(|rule| format!("      - {rule}\n"))
        .collect();
    format!(
        "platform:\n  url: {url}\n  display_name: usher\nrules_dir: rules\nrooms:\n  - alias: {ROOM}\n    pin_file: hall.pin\n    rules:\n{rules}audit_log: audit.jsonl\nhttp: {{ listen: 127.0.0.1:0 }}\n{extra}",
        url = sim.base_url(),
    )
}

/// Like [`config`] for several rooms on `sim`, each `(alias, rules)`, all
/// with the PIN in `hall.pin`.
pub fn rooms_config(sim: &Simulator, rooms: &[(&str, &[&str])], extra: &str) -> String {
    let rooms: String = rooms
        .iter()
        .map(|(alias, rules)| {
            let rules: String = rules
                .iter()
                .map(|rule| format!("      - {rule}\n"))
                .collect();
            let rules = if rules.is_empty() {
                " []\n".to_owned()
            } else {
                format!("\n{rules}")
            };
            format!("  - alias: {alias}\n    pin_file: hall.pin\n    rules:{rules}")
        })
        .collect();
    format!(
        "platform:\n  url: {url}\n  display_name: usher\nrules_dir: rules\nrooms:\n{rooms}audit_log: audit.jsonl\nhttp: {{ listen: 127.0.0.1:0 }}\n{extra}",
        url = sim.base_url(),
    )
}

/// Room `alias` with [`PIN`] and these people in it from the start.
pub fn room_named(alias: &str, participants: Vec<Joiner>) -> RoomSpec {
    RoomSpec {
        alias: alias.to_owned(),
        ..room(participants)
    }
}

/// The uuid the simulator gave `name` in [`ROOM`].
pub fn uuid_of(sim: &Simulator, name: &str) -> String {
    sim.conference(ROOM)
        .and_then(|room| room.find(name).map(|p| p.uuid.clone()))
        .unwrap_or_else(|| panic!("{name} is not in the simulated room"))
}

/// The statuses the simulator answered to `path` in [`ROOM`], in order.
pub fn answers(sim: &Simulator, path: &str) -> Vec<u16> {
    sim.calls()
        .iter()
        .filter(|call| call.room.as_deref() == Some(ROOM) && call.path == path)
        .map(|call| call.status)
        .collect()
}

/// How often the simulator was asked to mute `name`.
pub fn mutes_of(sim: &Simulator, name: &str) -> usize {
    answers(sim, &format!("participants/{}/mute", uuid_of(sim, name))).len()
}

/// Every command (a POST other than the session calls) the simulator got.
pub fn commands(sim: &Simulator) -> Vec<CallRecord> {
    sim.calls()
        .into_iter()
        .filter(|call| {
            call.method == "POST"
                && !matches!(
                    call.path.as_str(),
                    "new_session" | "refresh_session" | "end_session"
                )
        })
        .collect()
}

/// The paths of [`commands`], for messages.
pub fn command_paths(sim: &Simulator) -> Vec<String> {
    commands(sim)
        .into_iter()
        .map(|call| format!("{} {}", call.path, call.status))
        .collect()
}

/// How the tests' daemons reconnect: the production policy, only quicker.
pub fn quick_feed() -> FeedOptions {
    FeedOptions {
        min_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(500),
        ..FeedOptions::default()
    }
}

/// The in-process daemon, with its directory and a client for its endpoint.
pub struct Usher {
    pub daemon: Daemon,
    pub http: SocketAddr,
    client: reqwest::Client,
    // Dropped last: the daemon may still be writing into it.
    pub dir: TestDir,
}

impl Usher {
    /// Writes `config_text` as `usher.yaml` (and the PIN file), starts the
    /// daemon on it and waits until every room is connected.
    pub async fn start(dir: TestDir, config_text: &str) -> Usher {
        let usher = Usher::start_only(dir, config_text).await;
        usher.connected().await;
        usher
    }

    /// Like [`Usher::start`], without waiting for the rooms.
    pub async fn start_only(dir: TestDir, config_text: &str) -> Usher {
        Usher::start_with(dir, config_text, quick_feed()).await
    }

    /// Like [`Usher::start_only`], with feeds that reconnect as `feed` says
    /// (e.g. the production policy, `FeedOptions::default()`).
    pub async fn start_with(dir: TestDir, config_text: &str, feed: FeedOptions) -> Usher {
        Usher::try_start_with(dir, config_text, feed)
            .await
            .unwrap_or_else(|(_, err)| panic!("the daemon starts: {err}"))
    }

    /// Like [`Usher::start_with`], giving back the directory with the error
    /// when the daemon does not start, for a test that can try again.
    pub async fn try_start_with(
        dir: TestDir,
        config_text: &str,
        feed: FeedOptions,
    ) -> Result<Usher, (TestDir, StartError)> {
        dir.write("hall.pin", &format!("{PIN}\n"));
        let path = dir.write("usher.yaml", config_text);
        let config = Config::load(&path).unwrap_or_else(|err| panic!("the config loads: {err}"));
        let options = StartOptions {
            feed,
            follow_activity: false,
        };
        match Daemon::start_with(config, &path, options).await {
            Ok(daemon) => Ok(Usher {
                http: daemon.http_addr(),
                daemon,
                client: reqwest::Client::new(),
                dir,
            }),
            Err(err) => Err((dir, err)),
        }
    }

    /// Waits until `/healthz` says every room is connected.
    pub async fn connected(&self) {
        eventually(
            PATIENCE,
            "every room to connect (/healthz 200)",
            async || self.get("/healthz").await.0 == 200,
        )
        .await;
    }

    /// `GET path` on the daemon's endpoint: status and body.
    pub async fn get(&self, path: &str) -> (u16, String) {
        get(&self.client, self.http, path).await
    }

    /// `/status`, parsed.
    pub async fn status(&self) -> Value {
        let (code, body) = self.get("/status").await;
        assert_eq!(code, 200, "{body}");
        serde_json::from_str(&body).expect("/status is JSON")
    }

    /// `/metrics`.
    pub async fn metrics(&self) -> String {
        let (code, body) = self.get("/metrics").await;
        assert_eq!(code, 200, "{body}");
        body
    }

    /// One sample of `/metrics` (`name` or `name{labels}`), if present.
    pub async fn metric(&self, series: &str) -> Option<f64> {
        metric(&self.metrics().await, series)
    }

    /// The audit log so far.
    pub fn audit(&self) -> Vec<AuditRecord> {
        self.dir.audit()
    }

    /// Waits until the audit log has a record with this `outcome` whose text
    /// is `text` (e.g. `mute Bob`), and returns it.
    pub async fn audited(&self, outcome: Outcome, text: &str) -> AuditRecord {
        let what = format!("an audit record `{text}` with outcome {}", outcome.as_str());
        let found = Mutex::new(None);
        eventually(PATIENCE, &what, async || {
            let record = self
                .audit()
                .into_iter()
                .find(|r| r.outcome == outcome && r.text == text);
            let seen = record.is_some();
            *found.lock().unwrap() = record;
            seen
        })
        .await;
        found.into_inner().unwrap().expect("found above")
    }

    /// Stops the daemon in order and gives back its directory.
    pub async fn stop(self) -> TestDir {
        self.daemon.shutdown().await;
        self.dir
    }
}

/// `GET path` on `addr`: status and body.
pub async fn get(client: &reqwest::Client, addr: SocketAddr, path: &str) -> (u16, String) {
    match client.get(format!("http://{addr}{path}")).send().await {
        Ok(response) => {
            let code = response.status().as_u16();
            (code, response.text().await.unwrap_or_default())
        }
        Err(err) => (0, err.to_string()),
    }
}

/// The value of one sample in Prometheus text (`name` or `name{labels}`).
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let value = line.strip_prefix(series)?.strip_prefix(' ')?;
        value.trim().parse().ok()
    })
}

/// The real `usher` binary, running; killed if still running when dropped.
pub struct Process {
    child: Child,
    stderr: Arc<Mutex<String>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Process {
    /// Runs `usher <args>` in `dir` with these environment variables (and
    /// none of the caller's `RUST_LOG`), capturing stderr.
    pub fn spawn(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Process {
        let mut command = Command::new(env!("CARGO_BIN_EXE_usher"));
        command
            .args(args)
            .current_dir(dir)
            .env_remove("RUST_LOG")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().expect("the usher binary starts");
        let pipe = child.stderr.take().expect("stderr is piped");
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = stderr.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                let mut text = sink.lock().unwrap();
                text.push_str(&line);
                text.push('\n');
            }
        });
        Process {
            child,
            stderr,
            reader: Some(reader),
        }
    }

    /// The process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Everything written to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Sends a signal (`TERM`, `HUP`, …) with `kill`.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.id().to_string())
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{name} {} failed", self.id());
    }

    /// Waits for the process to exit, up to `timeout`, and returns its
    /// status and all of its stderr. Panics (and the guard kills it) if it
    /// does not exit in time.
    pub async fn exit_within(&mut self, timeout: Duration) -> (ExitStatus, String) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("the child can be waited for") {
                if let Some(reader) = self.reader.take() {
                    let _ = reader.join();
                }
                return (status, self.stderr());
            }
            assert!(
                Instant::now() < deadline,
                "usher did not exit within {timeout:?}; stderr:\n{}",
                self.stderr()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until stderr says where the HTTP endpoint listens.
    pub async fn http_addr(&self) -> SocketAddr {
        let found = Mutex::new(None);
        eventually(PATIENCE, "usher to log its HTTP address", async || {
            let addr = listen_address(&self.stderr());
            let seen = addr.is_some();
            *found.lock().unwrap() = addr;
            seen
        })
        .await;
        found.into_inner().unwrap().expect("found above")
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The address in the "usher is running" log line (`http=127.0.0.1:PORT`
/// in human logs, `"http":"127.0.0.1:PORT"` in JSON ones).
pub fn listen_address(log: &str) -> Option<SocketAddr> {
    let line = log.lines().find(|line| line.contains("usher is running"))?;
    let clean = strip_ansi(line);
    let start = clean
        .find("http=")
        .map(|at| at + "http=".len())
        .or_else(|| clean.find("\"http\":\"").map(|at| at + "\"http\":\"".len()))?;
    let address: String = clean[start..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
        .collect();
    address.parse().ok()
}

/// Text without ANSI colour escapes.
pub fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A loopback TCP relay to a server that can be cut, as an outage cuts
/// it: every connection through it breaks, and while it is cut each new
/// one is closed as soon as its request line is read (and noted), while
/// the server behind it carries on.
pub struct Link {
    addr: SocketAddr,
    down: Arc<std::sync::atomic::AtomicBool>,
    connections: Arc<Mutex<tokio_util::sync::CancellationToken>>,
    refused: Arc<Mutex<Vec<(Instant, String)>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Link {
    /// Relays a free loopback port to `target`.
    pub async fn start(target: SocketAddr) -> Link {
        let listener = tokio::net::TcpListener::bind(loopback(0))
            .await
            .expect("a loopback port is free");
        let addr = listener.local_addr().expect("the listener has an address");
        let down = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let connections = Arc::new(Mutex::new(tokio_util::sync::CancellationToken::new()));
        let refused = Arc::new(Mutex::new(Vec::new()));
        let (is_down, live, noted) = (down.clone(), connections.clone(), refused.clone());
        let task = tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                if is_down.load(std::sync::atomic::Ordering::SeqCst) {
                    tokio::spawn(refuse(inbound, noted.clone()));
                } else {
                    let cut = live.lock().unwrap().clone();
                    tokio::spawn(relay(inbound, target, cut));
                }
            }
        });
        Link {
            addr,
            down,
            connections,
            refused,
            task,
        }
    }

    /// `http://127.0.0.1:<port>/`.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// Breaks every connection and refuses new ones.
    pub fn cut(&self) {
        self.down.store(true, std::sync::atomic::Ordering::SeqCst);
        let mut live = self.connections.lock().unwrap();
        live.cancel();
        *live = tokio_util::sync::CancellationToken::new();
    }

    /// Relays new connections again.
    pub fn restore(&self) {
        self.down.store(false, std::sync::atomic::Ordering::SeqCst);
    }

    /// When each connection refused while cut came, and its request line.
    pub fn refused(&self) -> Vec<(Instant, String)> {
        self.refused.lock().unwrap().clone()
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.task.abort();
        self.connections.lock().unwrap().cancel();
    }
}

async fn relay(
    mut inbound: tokio::net::TcpStream,
    target: SocketAddr,
    cut: tokio_util::sync::CancellationToken,
) {
    let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await else {
        return;
    };
    tokio::select! {
        _ = cut.cancelled() => {}
        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
    }
}

async fn refuse(mut inbound: tokio::net::TcpStream, noted: Arc<Mutex<Vec<(Instant, String)>>>) {
    use tokio::io::AsyncReadExt;
    let at = Instant::now();
    let mut head = [0u8; 512];
    let read = inbound.read(&mut head).await.unwrap_or(0);
    let text = String::from_utf8_lossy(&head[..read]);
    let line = text.lines().next().unwrap_or_default().to_owned();
    noted.lock().unwrap().push((at, line));
}
