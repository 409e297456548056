//! `usher run` as a process: the real binary, its exit codes, its signals
//! and what it prints. A config that cannot be used exits 2 with an error
//! that points at the mistake; SIGTERM ends every session and exits 0; and
//! no PIN or token ever reaches stderr, the audit log, `/status` or
//! `/metrics`.

mod common;

use std::time::Duration;

use common::daemon::*;
use usher::runtime::audit::Outcome;
use usher::sim::Fault;
use usher::sim::step::{Joiner, Step};

/// How long `usher` may take to exit.
const EXIT_WITHIN: Duration = Duration::from_secs(5);

/// The environment variable the binary's PIN comes from.
const PIN_VAR: &str = "USHER_E2E_HALL_PIN";

/// `config`, with the PIN taken from [`PIN_VAR`].
fn config_with_env_pin(sim: &usher::sim::Simulator, rules: &[&str], extra: &str) -> String {
    config(sim, rules, extra).replace("pin_file: hall.pin", &format!("pin: ${{{PIN_VAR}}}"))
}

/// Runs `usher run -c <config>` on a config that must be refused and
/// returns its stderr, having checked it exits 2 at once, says `error:`
/// and prints nothing else.
async fn refused(dir: &TestDir, config: &str, env: &[(&str, &str)]) -> String {
    let path = dir.write("usher.yaml", config);
    let path = path.to_str().unwrap();
    let mut usher = Process::spawn(dir.path(), &["run", "-c", path], env);
    let (status, stderr) = usher.exit_within(EXIT_WITHIN).await;
    assert_eq!(status.code(), Some(2), "exit status 2; stderr:\n{stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    stderr
}

/// The 1-based line and column where `needle` starts in `text`.
fn position(text: &str, needle: &str) -> (usize, usize) {
    let offset = text.find(needle).expect("the needle is in the text");
    let line = text[..offset].matches('\n').count() + 1;
    let column = offset - text[..offset].rfind('\n').map_or(0, |at| at + 1) + 1;
    (line, column)
}

/// A config for a room on a port nothing listens on: these must fail
/// before any room is contacted.
fn unreachable_config(room_lines: &str) -> String {
    format!(
        "platform:\n  url: http://127.0.0.1:9\nrooms:\n  - alias: {ROOM}\n{room_lines}http: {{ listen: 127.0.0.1:0 }}\n"
    )
}

#[tokio::test]
async fn an_unknown_field_is_refused_with_its_position() {
    let dir = TestDir::new("bad_field");
    dir.shipped_rules();
    let config =
        unreachable_config("    pin_file: hall.pin\n    rulez:\n      - auto_mute_guests\n");
    let stderr = refused(&dir, &config, &[]).await;
    let (line, column) = position(&config, "rulez:");
    let at = format!("{}:{line}:{column}:", dir.join("usher.yaml").display());
    assert!(stderr.contains(&at), "{at} in {stderr}");
    assert!(stderr.contains("unknown field `rulez`"), "{stderr}");
}

#[tokio::test]
async fn an_unknown_rule_or_parameter_is_refused_naming_the_room_and_rule() {
    let dir = TestDir::new("bad_rule");
    dir.shipped_rules();
    let config = unreachable_config("    rules:\n      - auto_mute_guest\n");
    let stderr = refused(&dir, &config, &[]).await;
    let (line, _) = position(&config, "auto_mute_guest\n");
    let at = format!("{}:{line}:", dir.join("usher.yaml").display());
    assert!(stderr.contains(&at), "{at} in {stderr}");
    assert!(stderr.contains(&format!("room `{ROOM}`")), "{stderr}");
    assert!(
        stderr.contains("no rule named `auto_mute_guest`"),
        "{stderr}"
    );
    assert!(stderr.contains("auto_mute_guests"), "a hint: {stderr}");

    let config = unreachable_config(
        "    rules:\n      - auto_mute_guests\n      - lock_when_full: { maxx: 30 }\n",
    );
    let stderr = refused(&dir, &config, &[]).await;
    let (line, _) = position(&config, "lock_when_full");
    let at = format!("{}:{line}:", dir.join("usher.yaml").display());
    assert!(stderr.contains(&at), "{at} in {stderr}");
    assert!(stderr.contains(&format!("room `{ROOM}`")), "{stderr}");
    assert!(
        stderr.contains("rule `lock_when_full` has no parameter `maxx`"),
        "{stderr}"
    );
}

#[tokio::test]
async fn an_unset_pin_variable_is_named_and_no_pin_is_printed() {
    let dir = TestDir::new("unset_pin");
    dir.shipped_rules();
    dir.write("hall.pin", PIN);
    // The first room's PIN is read; the second's variable is not set.
    let config = format!(
        "platform:\n  url: http://127.0.0.1:9\nrooms:\n  - alias: {ROOM}\n    pin_file: hall.pin\n    rules: [auto_mute_guests]\n  - alias: other@usher.test\n    pin: ${{USHER_E2E_UNSET_PIN}}\nhttp: {{ listen: 127.0.0.1:0 }}\n"
    );
    let stderr = refused(&dir, &config, &[(PIN_VAR, PIN)]).await;
    assert!(
        stderr.contains("${USHER_E2E_UNSET_PIN}") && stderr.contains("not set"),
        "{stderr}"
    );
    assert!(stderr.contains("other@usher.test"), "{stderr}");
    assert!(!stderr.contains(PIN), "no PIN in {stderr}");
}

#[tokio::test]
async fn a_rule_with_a_syntax_error_is_refused_with_its_position() {
    let dir = TestDir::new("bad_syntax");
    dir.shipped_rules();
    let rule = dir.rule(
        "broken",
        "//! Broken.\nfn on_join(p) {\n    if p.is_guest { p.mute( }\n}\n",
    );
    let config = unreachable_config("    rules: [auto_mute_guests]\n");
    let stderr = refused(&dir, &config, &[]).await;
    let at = format!("{}:3:", rule.display());
    let found = stderr
        .find(&at)
        .unwrap_or_else(|| panic!("{at} in {stderr}"));
    let column: String = stderr[found + at.len()..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    assert!(!column.is_empty(), "a column after {at}: {stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_the_session_and_exits_0() {
    let sim = simulator(vec![room(vec![Joiner::host("Ada")])]).await;
    let dir = TestDir::new("sigterm");
    dir.shipped_rules();
    dir.write(
        "usher.yaml",
        &config_with_env_pin(&sim, &["auto_mute_guests"], ""),
    );
    let args = ["--log-format", "json", "run", "-c", "usher.yaml"];
    let mut usher = Process::spawn(dir.path(), &args, &[(PIN_VAR, PIN)]);
    let http = usher.http_addr().await;
    let client = reqwest::Client::new();
    eventually(PATIENCE, "/healthz 200", async || {
        get(&client, http, "/healthz").await.0 == 200
    })
    .await;
    sim.step(ROOM, &Step::Join(Joiner::guest("Bob"))).unwrap();
    eventually(PATIENCE, "Bob muted by the process", async || {
        mutes_of(&sim, "Bob") == 1
    })
    .await;
    assert_eq!(sim.active_sessions(ROOM), 1);

    usher.signal("TERM");
    let (status, stderr) = usher.exit_within(EXIT_WITHIN).await;
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert_eq!(answers(&sim, "end_session"), [200], "the session was ended");
    assert_eq!(sim.active_sessions(ROOM), 0, "no ghost participant");
    assert_eq!(sim.open_streams(ROOM), 0);
    assert!(stderr.contains("usher stopped"), "{stderr}");
    let audit = dir.audit();
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(
        (audit[0].text.as_str(), audit[0].outcome),
        ("mute Bob", Outcome::Ok)
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_a_full_queue_exits_within_the_wind_down_bound() {
    // 4 guests, 100 messages each from a chatty rule: some 80 s of commands
    // at 5 a second, queued when the signal comes.
    const CHATTY: &str = "//! Chats a lot.\nfn on_join(p) {\n    for n in 0..100 {\n        room.message(`${p.name} ${n}`);\n    }\n}\n";
    const GUESTS: [&str; 4] = ["Bob", "Cat", "Dan", "Eve"];
    let sim = simulator(vec![room(vec![Joiner::host("Ada")])]).await;
    let dir = TestDir::new("sigterm-queue");
    dir.shipped_rules();
    dir.rule("chatty", CHATTY);
    dir.write(
        "usher.yaml",
        &config_with_env_pin(
            &sim,
            &["chatty", "auto_mute_guests"],
            "dispatch: { rate: 5, burst: 1 }\n",
        ),
    );
    let args = ["run", "-c", "usher.yaml"];
    let mut usher = Process::spawn(dir.path(), &args, &[(PIN_VAR, PIN)]);
    let http = usher.http_addr().await;
    let client = reqwest::Client::new();
    eventually(PATIENCE, "/healthz 200", async || {
        get(&client, http, "/healthz").await.0 == 200
    })
    .await;
    for name in GUESTS {
        sim.step(ROOM, &Step::Join(Joiner::guest(name))).unwrap();
    }
    eventually(PATIENCE, "every guest muted, the queue full", async || {
        GUESTS.iter().all(|name| mutes_of(&sim, name) == 1)
    })
    .await;

    let signalled = std::time::Instant::now();
    usher.signal("TERM");
    let (status, stderr) = usher.exit_within(Duration::from_secs(8)).await;
    let took = signalled.elapsed();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(took < Duration::from_secs(8), "exited after {took:?}");
    assert_eq!(sim.active_sessions(ROOM), 0, "no ghost participant");
    let audit = dir.audit();
    let count = |outcome: Outcome| audit.iter().filter(|r| r.outcome == outcome).count();
    assert!(
        count(Outcome::Cancelled) > 300,
        "the queue was cancelled, on the record"
    );
    assert_eq!(
        count(Outcome::Ok) + count(Outcome::Cancelled),
        GUESTS.len() * 101,
        "every command asked for is audited once"
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_pin_or_token_is_ever_shown() {
    let mut spec = room(vec![Joiner::host("Ada")]);
    spec.token_expiry = Duration::from_secs(2);
    let sim = simulator(vec![spec]).await;
    let dir = TestDir::new("secrets");
    dir.shipped_rules();
    dir.write(
        "usher.yaml",
        &config_with_env_pin(&sim, &["auto_mute_guests", "chat_commands"], ""),
    );
    // Everything usher logs, at its most talkative.
    let mut usher = Process::spawn(
        dir.path(),
        &["run", "-c", "usher.yaml"],
        &[(PIN_VAR, PIN), ("RUST_LOG", "debug")],
    );
    let http = usher.http_addr().await;
    let client = reqwest::Client::new();
    eventually(PATIENCE, "/healthz 200", async || {
        get(&client, http, "/healthz").await.0 == 200
    })
    .await;

    // Tokens are refreshed, replaced by a new session (with the PIN again),
    // commands succeed and fail.
    eventually(PATIENCE, "two token refreshes", async || {
        answers(&sim, "refresh_session").len() >= 2
    })
    .await;
    sim.fault(ROOM, Fault::ExpireTokens).unwrap();
    eventually(PATIENCE, "a new session", async || {
        answers(&sim, "new_session").len() == 2 && get(&client, http, "/healthz").await.0 == 200
    })
    .await;
    sim.step(ROOM, &Step::Join(Joiner::guest("Bob"))).unwrap();
    eventually(PATIENCE, "Bob muted", async || mutes_of(&sim, "Bob") == 1).await;
    sim.fault(
        ROOM,
        Fault::FailCommands {
            count: 1,
            status: 400,
        },
    )
    .unwrap();
    sim.step(ROOM, &Step::Join(Joiner::guest("Cat"))).unwrap();
    eventually(PATIENCE, "Cat's mute refused", async || {
        dir.audit().iter().any(|r| r.outcome == Outcome::Failed)
    })
    .await;
    let status = get(&client, http, "/status").await.1;
    let metrics = get(&client, http, "/metrics").await.1;
    let healthz = get(&client, http, "/healthz").await.1;
    usher.signal("TERM");
    let (exit, stderr) = usher.exit_within(EXIT_WITHIN).await;
    assert_eq!(exit.code(), Some(0), "{stderr}");
    assert!(stderr.contains("DEBUG"), "debug logging was on");
    assert!(stderr.contains("session refreshed") || stderr.contains("token refreshed"));

    let audit = dir.audit_text();
    assert!(
        audit.contains("mute Bob") && audit.contains("HTTP 400"),
        "{audit}"
    );
    let places: [(&str, &str); 5] = [
        ("stderr", &stderr),
        ("the audit log", &audit),
        ("/status", &status),
        ("/metrics", &metrics),
        ("/healthz", &healthz),
    ];
    for (place, text) in places {
        assert!(!text.contains(PIN), "the PIN appears in {place}:\n{text}");
        let tokens = token_like(text);
        assert!(
            tokens.is_empty(),
            "token-like {tokens:?} in {place}:\n{text}"
        );
    }
    // The config names the variable, never the value.
    let config_text = std::fs::read_to_string(dir.join("usher.yaml")).unwrap();
    assert!(!config_text.contains(PIN));
    sim.shutdown().await;
}

/// Runs of 32 or more characters of the simulator's token alphabet
/// (letters, digits, `-`, `_`) that mix upper case, lower case and digits,
/// as its 48-character random tokens do and uuids, names and log fields
/// do not.
fn token_like(text: &str) -> Vec<String> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        .filter(|run| {
            run.len() >= 32
                && run.chars().any(|c| c.is_ascii_uppercase())
                && run.chars().any(|c| c.is_ascii_lowercase())
                && run.chars().any(|c| c.is_ascii_digit())
        })
        .map(str::to_owned)
        .collect()
}

#[test]
fn check_warns_at_a_command_the_rooms_platform_cannot_carry_out() {
    let dir = TestDir::new("check_unsupported");
    let rule = "//! Greets everyone and mutes guests.\nfn on_join(p) {\n    room.message(\"Welcome, \" + p.name);\n    if p.is_guest { p.mute(); }\n}\n";
    dir.rule("greet", rule);
    let config = "platforms:\n  campus: { kind: vmr, url: \"http://127.0.0.1:9\" }\n  hw: { kind: huawei, url: \"http://127.0.0.1:9\", app_id: app, app_key: key, user_id: usher }\nrooms:\n  - { alias: hall-a, platform: campus, pin: \"1234\", rules: [greet] }\n  - { alias: \"900487914\", platform: hw, rules: [greet] }\nrules_dir: rules\n";
    let path = dir.write("usher.yaml", config);
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_usher"))
        .args(["check", "-c", path.to_str().unwrap()])
        .env("NO_COLOR", "1")
        .output()
        .expect("usher check runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    let (line, column) = position(rule, "message");
    let warnings: Vec<&str> = stdout.lines().filter(|l| l.contains("warning")).collect();
    assert_eq!(
        warnings.len(),
        1,
        "one warning, for the Huawei room only:\n{stdout}"
    );
    let expected = format!(
        "greet.rhai:{line}:{column}: warning: room `900487914` is on platform `hw` (huawei), which cannot `message`"
    );
    assert!(warnings[0].contains(&expected), "{stdout}");
}
