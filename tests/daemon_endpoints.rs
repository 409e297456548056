//! The daemon's own HTTP endpoint, read as an operator's monitoring would:
//! `/healthz` names the rooms that are down and why, `/metrics` is valid
//! Prometheus text with the documented families, and `/status` is JSON with
//! every room's counts and rules. The real daemon, in process, moderates
//! rooms of the real simulator over loopback.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::daemon::*;
use serde_json::Value;
use usher::model::Secret;
use usher::runtime::audit::Outcome;
use usher::sim::RoomSpec;
use usher::sim::step::{Joiner, Step};

/// A room the simulator does not know.
const GHOST: &str = "ghost@usher.test";
/// A room whose PIN usher gets wrong.
const VAULT: &str = "vault@usher.test";

/// A rule that fails on every join.
const FAULTY: &str = "//! Fails.\nfn on_join(p) {\n    throw \"no seats for \" + p.name;\n}\n";

/// The metric families the README documents.
const FAMILIES: [&str; 8] = [
    "usher_events_total",
    "usher_rule_calls_total",
    "usher_rule_errors_total",
    "usher_rule_eval_seconds",
    "usher_commands_total",
    "usher_reconnects_total",
    "usher_token_refreshes_total",
    "usher_rooms_connected",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_metrics_and_status_tell_the_state_of_every_room() {
    let vault = RoomSpec {
        pin: Some(Secret::new("1111")),
        ..RoomSpec::new(VAULT)
    };
    let sim = simulator(vec![room(vec![Joiner::host("Ada")]), vault]).await;
    let dir = TestDir::new("endpoints");
    dir.shipped_rules();
    dir.rule("faulty", FAULTY);
    let config = format!(
        "platform:\n  url: {url}\nrooms:\n  - alias: {ROOM}\n    pin_file: hall.pin\n    rules:\n      - auto_mute_guests\n      - lock_when_full: {{ max: 10, reserve: 1 }}\n      - faulty\n  - alias: {GHOST}\n    rules: [auto_mute_guests]\n  - alias: {VAULT}\n    pin_file: hall.pin\n    rules: [auto_mute_guests]\naudit_log: audit.jsonl\nhttp: {{ listen: 127.0.0.1:0 }}\n",
        url = sim.base_url()
    );
    let usher = Usher::start_only(dir, &config).await;

    // /healthz: 503, naming the two rooms that cannot connect and why, and
    // not the one that is up.
    eventually(
        PATIENCE,
        "/healthz to name both rooms that are down",
        async || {
            let (code, body) = usher.get("/healthz").await;
            code == 503 && body.contains("404") && body.contains("403")
        },
    )
    .await;
    eventually(PATIENCE, "the good room connected", async || {
        usher.status().await["rooms"][ROOM]["phase"] == "connected"
    })
    .await;
    let (code, body) = usher.get("/healthz").await;
    assert_eq!(code, 503);
    let line = |alias: &str| body.lines().find(|l| l.contains(alias)).map(str::to_owned);
    let ghost = line(GHOST).unwrap_or_else(|| panic!("{GHOST} named in {body}"));
    assert!(ghost.contains("not found (HTTP 404)"), "{ghost}");
    let vault = line(VAULT).unwrap_or_else(|| panic!("{VAULT} named in {body}"));
    assert!(
        vault.contains("HTTP 403") && vault.contains("Invalid PIN"),
        "{vault}"
    );
    assert!(
        line(ROOM).is_none(),
        "the room that is up is not named: {body}"
    );

    // Something happens in the good room: Bob joins, is muted, and the
    // faulty rule fails.
    sim.step(ROOM, &Step::Join(Joiner::guest("Bob"))).unwrap();
    usher.audited(Outcome::Ok, "mute Bob").await;

    // /status: every room, with counts, rules and the latest errors.
    eventually(PATIENCE, "/status to show Bob in the room", async || {
        usher.status().await["rooms"][ROOM]["in_room"] == 2
    })
    .await;
    let status = usher.status().await;
    assert_eq!(status["version"], env!("CARGO_PKG_VERSION"));
    let rooms = status["rooms"].as_object().unwrap();
    let aliases: BTreeSet<&str> = rooms.keys().map(String::as_str).collect();
    assert_eq!(aliases, BTreeSet::from([GHOST, ROOM, VAULT]));
    let hall = &rooms[ROOM];
    assert_eq!(hall["phase"], "connected");
    assert_eq!(hall["participants"], 2);
    assert_eq!(hall["waiting"], 0);
    assert_eq!(hall["locked"], false);
    assert_eq!(hall["commands"]["mute"]["ok"], 1);
    assert!(hall["events"]["participant"].as_u64().unwrap() >= 2);
    let rules: BTreeMap<&str, &Value> = hall["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|rule| (rule["name"].as_str().unwrap(), rule))
        .collect();
    assert_eq!(
        rules.keys().copied().collect::<Vec<_>>(),
        ["auto_mute_guests", "faulty", "lock_when_full"]
    );
    assert_eq!(rules["auto_mute_guests"]["calls"], 1);
    assert_eq!(rules["auto_mute_guests"]["errors"], 0);
    assert_eq!(rules["faulty"]["errors"], 1);
    assert_eq!(rules["faulty"]["disabled"], false);
    let errors = hall["last_errors"].to_string();
    assert!(
        errors.contains("faulty.rhai:3:") && errors.contains("no seats for Bob"),
        "{errors}"
    );
    for down in [GHOST, VAULT] {
        let room = &rooms[down];
        assert!(
            room["phase"] == "failed" || room["phase"] == "connecting",
            "{down}: {room}"
        );
        assert!(
            !room["last_errors"].as_array().unwrap().is_empty(),
            "{room}"
        );
    }

    // /metrics: Prometheus text with every documented family.
    let response = reqwest::get(format!("http://{}/metrics", usher.http))
        .await
        .unwrap();
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; version=0.0.4"
    );
    let text = response.text().await.unwrap();
    let families = check_exposition(&text);
    for family in FAMILIES {
        assert!(families.contains_key(family), "{family} missing:\n{text}");
    }
    assert_eq!(families["usher_rule_eval_seconds"], "histogram");
    assert_eq!(families["usher_rooms_connected"], "gauge");
    assert_eq!(families["usher_commands_total"], "counter");
    let value =
        |series: &str| metric(&text, series).unwrap_or_else(|| panic!("no {series} in\n{text}"));
    assert!(value("usher_events_total{type=\"participant\"}") >= 2.0);
    assert_eq!(
        value("usher_rule_calls_total{rule=\"auto_mute_guests\"}"),
        1.0
    );
    assert!(value("usher_rule_calls_total{rule=\"lock_when_full\"}") >= 2.0);
    assert_eq!(value("usher_rule_errors_total{rule=\"faulty\"}"), 1.0);
    assert_eq!(
        value("usher_rule_errors_total{rule=\"auto_mute_guests\"}"),
        0.0
    );
    assert_eq!(
        value("usher_commands_total{command=\"mute\",outcome=\"ok\"}"),
        1.0
    );
    assert_eq!(value("usher_reconnects_total"), 0.0);
    assert_eq!(value("usher_token_refreshes_total"), 0.0);
    assert_eq!(value("usher_rooms_connected"), 1.0);
    assert_eq!(value("usher_rooms"), 3.0);
    let calls = value("usher_rule_eval_seconds_count");
    assert!(calls >= 4.0, "every rule call is timed");
    assert_eq!(value("usher_rule_eval_seconds_bucket{le=\"+Inf\"}"), calls);
    usher.stop().await;
    sim.shutdown().await;
}

/// Checks Prometheus text exposition: every line a `# HELP`, a `# TYPE` or
/// a sample of a family typed before it, with well-formed labels and a
/// number; no series twice; histogram buckets cumulative up to `+Inf` =
/// `_count`. Returns each family's type.
fn check_exposition(text: &str) -> BTreeMap<String, String> {
    let mut types = BTreeMap::new();
    let mut series = BTreeSet::new();
    let mut buckets: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    assert!(text.ends_with('\n'), "ends with a newline");
    for line in text.lines() {
        if let Some(help) = line.strip_prefix("# HELP ") {
            let (name, doc) = help.split_once(' ').expect("HELP name text");
            assert!(valid_name(name) && !doc.is_empty(), "{line}");
            continue;
        }
        if let Some(kind) = line.strip_prefix("# TYPE ") {
            let (name, kind) = kind.split_once(' ').expect("TYPE name kind");
            assert!(valid_name(name), "{line}");
            assert!(
                ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                "{line}"
            );
            assert!(
                types.insert(name.to_owned(), kind.to_owned()).is_none(),
                "{name} typed twice"
            );
            continue;
        }
        assert!(
            !line.starts_with('#') && !line.is_empty(),
            "stray line {line:?}"
        );
        let (key, value) = line.rsplit_once(' ').expect("a sample is `series value`");
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("not a number: {line}"));
        let (name, labels) = match key.split_once('{') {
            Some((name, rest)) => (name, rest.strip_suffix('}').expect("labels close")),
            None => (key, ""),
        };
        assert!(valid_name(name), "{line}");
        for label in split_labels(labels) {
            let (label_name, quoted) = label.split_once('=').expect("label=\"value\"");
            assert!(valid_name(label_name), "{line}");
            assert!(
                quoted.len() >= 2 && quoted.starts_with('"') && quoted.ends_with('"'),
                "{line}"
            );
        }
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| {
                name.strip_suffix(suffix)
                    .filter(|base| types.get(*base).is_some_and(|t| t == "histogram"))
            })
            .unwrap_or(name);
        let kind = types
            .get(family)
            .unwrap_or_else(|| panic!("{name} sampled before its # TYPE"));
        if kind == "counter" || name.ends_with("_bucket") || name.ends_with("_count") {
            assert!(value >= 0.0, "{line}");
        }
        if name.ends_with("_bucket") {
            buckets.entry(family.to_owned()).or_default().push(value);
        }
        assert!(series.insert(key.to_owned()), "{key} twice");
    }
    for (family, counts) in buckets {
        assert!(
            counts.windows(2).all(|pair| pair[0] <= pair[1]),
            "{family} buckets are cumulative: {counts:?}"
        );
        let count = metric(text, &format!("{family}_count")).expect("a _count");
        assert_eq!(counts.last().copied(), Some(count), "+Inf = _count");
    }
    types
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// Splits `a="x",b="y"` at the commas outside quotes.
fn split_labels(labels: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (at, c) in labels.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => quoted = !quoted,
            ',' if !quoted => {
                parts.push(&labels[start..at]);
                start = at + 1;
            }
            _ => {}
        }
    }
    if start < labels.len() {
        parts.push(&labels[start..]);
    }
    parts
}
