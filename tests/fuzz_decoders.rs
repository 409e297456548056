//! Property tests over every decoder of outside input: the event stream
//! (bytes to frames), each event's payload, REST replies, the config and
//! rule-test YAML. Whatever they are given, they must not panic, must cost
//! work in proportion to the input (measured as bytes allocated, counted per
//! thread, so the bound is exact and not a timing), and their errors must
//! name the position in the input where the format has positions.
//!
//! The decoders are reached through the thin functions under "The decoders",
//! so a decoder that moves is retargeted in one place.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};

use proptest::prelude::*;
use proptest::test_runner::Config as Cases;

use usher::config::{Config, ConfigError};
use usher::limits::{MAX_STREAM_EVENT, MAX_STREAM_LINE};
use usher::model::Participant;
use usher::platform::vmr::client::{decode_reply, decode_result};
use usher::platform::vmr::sse::{Frame, SseDecoder, SseError};
use usher::platform::vmr::wire::{
    CheckJoinReply, Reply, ServiceStatus, SessionGrant, TokenRefresh,
};
use usher::platform::vmr::{ClientError, codec};
use usher::ruletest::spec::TestFile;
use usher::yaml::YamlError;

/// `n` cases, or as many as `PROPTEST_CASES` says (to search longer).
fn cases(n: u32) -> Cases {
    let mut config = Cases::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = n;
    }
    config
}

// ---------------------------------------------------------------- the decoders

/// Bytes of an event stream, fed in `chunks`, to frames.
fn decode_stream(chunks: &[&[u8]]) -> (Vec<Frame>, Option<SseError>, usize) {
    let mut decoder = SseDecoder::new();
    let mut frames = VecDeque::new();
    let mut most_held = 0;
    for chunk in chunks {
        if let Err(err) = decoder.decode(chunk, &mut frames) {
            return (frames.into(), Some(err), most_held);
        }
        most_held = most_held.max(decoder.buffered());
    }
    (frames.into(), None, most_held)
}

/// One event's name and data to what the frame says.
fn decode_event(name: &str, data: &str) -> Result<codec::Frame, String> {
    codec::decode(name, data).map_err(|err| err.reason)
}

/// A REST reply to its envelope, then its result as each type read from one.
fn decode_rest(status: u16, body: &[u8]) -> Result<Reply, ClientError> {
    let reply = decode_reply("fuzz", status, None, body)?;
    let _ = decode_result::<SessionGrant>("fuzz", reply.clone());
    let _ = decode_result::<TokenRefresh>("fuzz", reply.clone());
    let _ = decode_result::<ServiceStatus>("fuzz", reply.clone());
    let _ = decode_result::<Vec<Participant>>("fuzz", reply.clone());
    Ok(reply)
}

/// A `checkJoin` reply body.
fn decode_check_join(body: &[u8]) -> Result<CheckJoinReply, serde_json::Error> {
    serde_json::from_slice(body)
}

/// A config file.
fn load_config(path: &Path) -> Result<Config, ConfigError> {
    Config::load(path)
}

/// A rule-test file.
fn load_rule_test(path: &Path) -> Result<TestFile, YamlError> {
    usher::yaml::from_file(path)
}

// ------------------------------------------------- counting what work costs

/// Counts the bytes each thread allocates, so a test can bound the work a
/// decoder does on an input without timing it.
struct CountingAllocator;

thread_local! {
    static ALLOCATED: Cell<usize> = const { Cell::new(0) };
}

fn count(bytes: usize) {
    let _ = ALLOCATED.try_with(|total| total.set(total.get().saturating_add(bytes)));
}

// SAFETY: every call is passed on to the system allocator unchanged; the
// counter is a const-initialised thread-local without a destructor.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: as the caller promised for `layout`.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: as the caller promised for `layout`.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size);
        // SAFETY: as the caller promised for `ptr`, `layout` and `new_size`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as the caller promised for `ptr` and `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static COUNTING: CountingAllocator = CountingAllocator;

/// What `work` returns, and the bytes it allocated on this thread.
fn allocated_by<T>(work: impl FnOnce() -> T) -> (T, usize) {
    let before = ALLOCATED.with(Cell::get);
    let result = work();
    (result, ALLOCATED.with(Cell::get) - before)
}

/// Fails unless `allocated` is within `per_byte` times `input` plus `fixed`.
fn assert_proportional(what: &str, input: usize, allocated: usize, per_byte: usize, fixed: usize) {
    assert!(
        allocated <= input * per_byte + fixed,
        "{what}: {allocated} bytes allocated for {input} bytes of input"
    );
}

// ------------------------------------------------------------- event stream

/// Bytes that make up event streams, bad ones included.
fn stream_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        4 => prop::sample::select(b"data:event: id\r\n\n\n:retry".to_vec()),
        1 => prop::sample::select(vec![0xff, 0xfe, 0xc3, 0xa9, 0xef, 0xbb, 0xbf, 0x80, 0x00]),
        1 => any::<u8>(),
    ]
}

/// Where to cut a stream into chunks.
fn cuts(len: usize, cut_at: &[usize]) -> Vec<usize> {
    let mut cuts: Vec<usize> = cut_at.iter().map(|cut| cut % (len + 1)).collect();
    cuts.sort_unstable();
    cuts
}

fn chunks<'a>(bytes: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut chunks = Vec::new();
    let mut start = 0;
    for &cut in cuts {
        chunks.push(&bytes[start..cut]);
        start = cut;
    }
    chunks.push(&bytes[start..]);
    chunks
}

/// The number of the line a byte offset is on, counting CR, LF and CRLF as
/// one line end each (from 1).
fn lines_in(bytes: &[u8]) -> u64 {
    let mut lines = 1;
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'\r' if bytes.get(index + 1) == Some(&b'\n') => {
                lines += 1;
                index += 1;
            }
            b'\r' | b'\n' => lines += 1,
            _ => {}
        }
        index += 1;
    }
    lines
}

/// An event as a test writes it: its name, its data lines, how lines end,
/// and a comment before it.
#[derive(Debug, Clone)]
struct Written {
    name: Option<String>,
    data: Vec<String>,
    line_end: &'static str,
    comment: Option<String>,
}

fn written() -> impl Strategy<Value = Written> {
    (
        proptest::option::of("[a-z_]{1,16}"),
        prop::collection::vec("[^\r\n]{0,24}", 0..4),
        prop::sample::select(vec!["\n", "\r", "\r\n"]),
        proptest::option::of("[^\r\n]{0,12}"),
    )
        .prop_map(|(name, data, line_end, comment)| Written {
            name,
            data,
            line_end,
            comment,
        })
}

fn write_stream(events: &[Written]) -> String {
    let mut text = String::new();
    for event in events {
        let end = event.line_end;
        if let Some(comment) = &event.comment {
            text.push_str(&format!(":{comment}{end}"));
        }
        if let Some(name) = &event.name {
            text.push_str(&format!("event: {name}{end}"));
        }
        for line in &event.data {
            text.push_str(&format!("data: {line}{end}"));
        }
        text.push_str(end);
    }
    text
}

/// The frames a spec-following decoder makes of `events`.
fn expected_frames(events: &[Written]) -> Vec<Frame> {
    events
        .iter()
        .filter(|event| !event.data.is_empty())
        .map(|event| Frame {
            name: event.name.clone().unwrap_or_else(|| "message".to_owned()),
            data: event.data.join("\n"),
        })
        .collect()
}

proptest! {
    #![proptest_config(cases(512))]

    /// Any bytes, cut anywhere: no panic, the same outcome however they are
    /// cut, no more held than a line's cap, output no larger than input, an
    /// error naming a line that exists, and work in proportion.
    #[test]
    fn any_bytes_decode_the_same_however_cut(
        bytes in prop::collection::vec(stream_byte(), 0..2048),
        cut_at in prop::collection::vec(any::<usize>(), 0..8),
    ) {
        let (whole, whole_error, _) = decode_stream(&[&bytes]);
        let cut = cuts(bytes.len(), &cut_at);
        let ((frames, error, most_held), allocated) =
            allocated_by(|| decode_stream(&chunks(&bytes, &cut)));
        prop_assert_eq!(&frames, &whole);
        prop_assert_eq!(&error, &whole_error);
        prop_assert!(most_held <= MAX_STREAM_LINE);
        let data: usize = frames.iter().map(|frame| frame.data.len()).sum();
        prop_assert!(data <= bytes.len());
        prop_assert!(frames.len() * 6 <= bytes.len(), "a frame takes at least `data\\n\\n`");
        if let Some(SseError::InvalidUtf8 { line, column }) = error {
            prop_assert!(line <= lines_in(&bytes) && column >= 1 && column <= bytes.len());
        }
        assert_proportional("the event stream", bytes.len(), allocated, 16, 16 * 1024);
    }

    /// Streams written by the rules (names, multi-line data, comments, every
    /// line ending), cut anywhere, read back as written.
    #[test]
    fn written_streams_read_back(
        events in prop::collection::vec(written(), 0..8),
        cut_at in prop::collection::vec(any::<usize>(), 0..8),
    ) {
        let text = write_stream(&events);
        let cut = cuts(text.len(), &cut_at);
        let (frames, error, _) = decode_stream(&chunks(text.as_bytes(), &cut));
        prop_assert_eq!(error, None);
        prop_assert_eq!(frames, expected_frames(&events));
    }
}

/// The worst cases by hand: a line far past the cap costs the cap, not the
/// line, and a long event in many short lines is refused at its cap.
#[test]
fn oversized_lines_and_events_cost_at_most_their_cap() {
    let line = vec![b'a'; 8 * MAX_STREAM_LINE];
    let chunked: Vec<&[u8]> = line.chunks(16 * 1024).collect();
    let ((_, error, most_held), allocated) = allocated_by(|| decode_stream(&chunked));
    assert!(
        matches!(error, Some(SseError::LineTooLong { line: 1, .. })),
        "{error:?}"
    );
    assert!(most_held <= MAX_STREAM_LINE);
    assert!(
        allocated <= 3 * MAX_STREAM_LINE,
        "{allocated} bytes allocated for a line cut at {MAX_STREAM_LINE}"
    );
    let many = "data: 0123456789abcdef0123456789abcdef\n".repeat(2 * MAX_STREAM_EVENT / 32);
    let (_, error, _) = decode_stream(&[many.as_bytes()]);
    assert!(
        matches!(error, Some(SseError::EventTooLarge { .. })),
        "{error:?}"
    );
}

// ------------------------------------------------------------ event payloads

const EVENT_NAMES: &[&str] = &[
    "presentation_start",
    "presentation_stop",
    "presentation_frame",
    "participant_create",
    "participant_update",
    "participant_delete",
    "participant_sync_begin",
    "participant_sync_end",
    "service_update",
    "conference_update",
    "layout",
    "message",
    "message_received",
    "stage",
    "disconnect",
    "refresh_token",
    "bye",
];

/// The names whose payload is JSON that must be read.
const WITH_PAYLOAD: &[&str] = &[
    "presentation_start",
    "participant_create",
    "participant_update",
    "participant_delete",
    "service_update",
    "conference_update",
    "layout",
    "message",
    "message_received",
    "stage",
    "disconnect",
];

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pexip-payloads")
}

/// The recorded payloads of a real server, by event name.
fn fixtures() -> Vec<(String, String)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(fixtures_dir()).expect("the fixtures are there") {
        let path = entry.expect("a directory entry").path();
        if path.extension().is_some_and(|ext| ext == "json") {
            let name = path
                .file_stem()
                .expect("a name")
                .to_string_lossy()
                .into_owned();
            found.push((
                name,
                std::fs::read_to_string(&path).expect("a fixture reads"),
            ));
        }
    }
    found.sort();
    found
}

/// A JSON value of any shape, a few levels deep.
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(serde_json::Value::from),
        "[^\"]{0,12}".prop_map(serde_json::Value::from),
        prop::sample::select(vec!["YES", "NO", "chair", "guest", "1e400", "-0", "NaN"])
            .prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            prop::collection::btree_map("[a-z_]{1,10}", inner, 0..4)
                .prop_map(|map| serde_json::Value::Object(map.into_iter().collect())),
        ]
    })
}

/// Replaces the `pick`th node of `value` (in depth-first order) by `with`.
fn replace_node(value: &mut serde_json::Value, pick: &mut usize, with: &serde_json::Value) {
    if *pick == 0 {
        *value = with.clone();
        return;
    }
    *pick -= 1;
    match value {
        serde_json::Value::Array(items) => {
            for item in items {
                replace_node(item, pick, with);
            }
        }
        serde_json::Value::Object(map) => {
            for item in map.values_mut() {
                replace_node(item, pick, with);
            }
        }
        _ => {}
    }
}

/// A text mangled: cut short at `cut`, with `insert` put in at `at`.
fn mangle(text: &str, cut: usize, at: usize, insert: &str) -> String {
    let boundary = |index: usize| {
        let mut index = index % (text.len() + 1);
        while !text.is_char_boundary(index) {
            index -= 1;
        }
        index
    };
    let mut mangled = text[..boundary(cut).max(boundary(at))].to_owned();
    let at = boundary(at).min(mangled.len());
    mangled.insert_str(at, insert);
    mangled
}

/// True when the error reason names where in the JSON it went wrong.
fn names_a_position(reason: &str) -> bool {
    reason.contains(" at line ") && reason.contains(" column ")
}

proptest! {
    #![proptest_config(cases(512))]

    /// Any text under any name: no panic, work in proportion, and JSON that
    /// does not parse is an error naming where.
    #[test]
    fn any_event_payload_is_read_or_refused_with_a_position(
        name in prop_oneof![
            4 => prop::sample::select(EVENT_NAMES).prop_map(str::to_owned),
            1 => "[a-z_]{0,12}",
        ],
        data in prop_oneof![
            "\\PC{0,256}",
            json_value().prop_map(|value| value.to_string()),
        ],
    ) {
        let (result, allocated) = allocated_by(|| decode_event(&name, &data));
        assert_proportional("an event payload", data.len(), allocated, 64, 16 * 1024);
        let blank = matches!(data.trim(), "" | "null");
        let is_json = serde_json::from_str::<serde_json::Value>(&data).is_ok();
        if WITH_PAYLOAD.contains(&name.as_str()) && !is_json && !blank {
            match result {
                Err(reason) => prop_assert!(names_a_position(&reason), "{name}: {reason}"),
                Ok(event) => prop_assert!(false, "{name} read from bad JSON {data:?}: {event:?}"),
            }
        }
    }

    /// Real payloads with a node swapped for any value, or cut and spliced:
    /// no panic, and a cut that breaks the JSON is refused naming where.
    #[test]
    fn mangled_real_payloads_are_read_or_refused_with_a_position(
        which in any::<prop::sample::Index>(),
        pick in 0usize..64,
        with in json_value(),
        cut in any::<usize>(),
        at in any::<usize>(),
        insert in "[\\[\\]{}\",:0-9a-z\\\\ ]{0,4}",
    ) {
        let fixtures = fixtures();
        let (name, text) = which.get(&fixtures);
        if let Ok(mut value) = serde_json::from_str::<serde_json::Value>(text) {
            let mut pick = pick;
            replace_node(&mut value, &mut pick, &with);
            let _ = decode_event(name, &value.to_string());
        }
        let mangled = mangle(text, cut, at, &insert);
        let result = decode_event(name, &mangled);
        let blank = matches!(mangled.trim(), "" | "null");
        if WITH_PAYLOAD.contains(&name.as_str())
            && !blank
            && serde_json::from_str::<serde_json::Value>(&mangled).is_err()
        {
            prop_assert!(matches!(&result, Err(reason) if names_a_position(reason)), "{result:?}");
        }
    }
}

/// Deep nesting costs neither the stack nor more than its size (lenient
/// fields skip what they cannot use, so some names accept it).
#[test]
fn deeply_nested_payloads_cost_no_more_than_their_size() {
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let objects = format!("{}{}", "{\"a\":".repeat(50_000), "}".repeat(50_000));
    for data in [&deep, &objects] {
        for name in WITH_PAYLOAD {
            let (_, allocated) = allocated_by(|| decode_event(name, data));
            assert_proportional(name, data.len(), allocated, 64, 16 * 1024);
        }
    }
}

// --------------------------------------------------------------- REST replies

proptest! {
    #![proptest_config(cases(512))]

    /// Any status and body: no panic, the error kind the status calls for,
    /// and a 2xx body that is not an envelope refused naming where.
    #[test]
    fn any_rest_reply_is_classified(
        status in prop_oneof![
            prop::sample::select(vec![200u16, 201, 204, 400, 403, 404, 408, 429, 500, 502, 503]),
            any::<u16>(),
        ],
        body in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..256),
            (prop::sample::select(vec!["success", "failed", "failure", ""]), json_value())
                .prop_map(|(status, result)| {
                    serde_json::json!({"status": status, "result": result}).to_string().into_bytes()
                }),
            json_value().prop_map(|value| value.to_string().into_bytes()),
        ],
    ) {
        let (result, allocated) = allocated_by(|| decode_rest(status, &body));
        assert_proportional("a REST reply", body.len(), allocated, 64, 16 * 1024);
        let _ = decode_check_join(&body);
        match status {
            403 => prop_assert!(matches!(result, Err(ClientError::Forbidden { .. })), "{:?}", result),
            404 => prop_assert!(matches!(result, Err(ClientError::NotFound { .. })), "{:?}", result),
            408 | 429 | 500..=599 => prop_assert!(matches!(result, Err(ClientError::Transient { .. })), "{:?}", result),
            400..=499 => prop_assert!(matches!(result, Err(ClientError::Rejected { .. })), "{:?}", result),
            200..=299 => {
                if serde_json::from_slice::<Reply>(&body).is_err() {
                    prop_assert!(
                        matches!(&result, Err(ClientError::Protocol { reason, .. }) if names_a_position(reason)),
                        "{result:?}"
                    );
                }
            }
            _ => prop_assert!(result.is_err(), "{:?}", result),
        }
    }
}

// ------------------------------------------------------------ YAML files

/// A file holding `text`, this test binary's own, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn write(file: &str, text: &str) -> Scratch {
        let path = std::env::temp_dir().join(format!("usher-fuzz-{}-{file}", std::process::id()));
        std::fs::write(&path, text).expect("the scratch file can be written");
        Scratch(path)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Snippets that YAML reads specially.
fn yaml_snippet() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            ":",
            "- ",
            "{",
            "}",
            "[",
            "]",
            "\n",
            "  ",
            "\t",
            "&a ",
            "*a",
            "!!str ",
            "!!binary ",
            "'",
            "\"",
            "# ",
            "~",
            "null",
            "1e3",
            "0x1F",
            "-5",
            "\u{feff}",
            "? ",
            "|\n",
            ">-\n",
            "<<: *a",
            "---\n",
            "...\n",
            "\\",
            "%YAML 1.1\n",
        ])
        .prop_map(str::to_owned),
        "\\PC{0,6}",
    ]
}

/// Checks that a YAML error names its file and a position inside the text.
fn check_yaml_error(path: &Path, text: &str, err: &YamlError) -> Result<(), TestCaseError> {
    prop_assert_eq!(err.path.as_deref(), Some(path));
    let shown = err.to_string();
    prop_assert!(shown.starts_with(&path.display().to_string()), "{}", shown);
    prop_assert!(
        err.line.is_some() && err.column.is_some(),
        "no position: {}",
        shown
    );
    if let (Some(line), Some(column)) = (err.line, err.column) {
        let lines = text.lines().count() + 1;
        let widest = text.lines().map(|l| l.chars().count()).max().unwrap_or(0) + 2;
        prop_assert!(
            line >= 1 && line <= lines,
            "line {} of {}: {}",
            line,
            lines,
            shown
        );
        prop_assert!(
            column >= 1 && column <= widest,
            "column {} of {}: {}",
            column,
            widest,
            shown
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(cases(256))]

    /// The example config mangled: no panic, work in proportion, errors that
    /// name the file and a place in it.
    #[test]
    fn mangled_configs_are_refused_naming_the_place(
        cut in any::<usize>(),
        at in any::<usize>(),
        insert in yaml_snippet(),
        line_pick in any::<prop::sample::Index>(),
    ) {
        let example = include_str!("../examples/usher.yaml");
        let mut text = mangle(example, cut, at, &insert);
        let lines: Vec<&str> = example.lines().collect();
        let picked: &&str = line_pick.get(&lines);
        text.push_str(picked);
        let file = Scratch::write("usher.yaml", &text);
        let (result, allocated) = allocated_by(|| load_config(&file.0));
        assert_proportional("a config", text.len(), allocated, 512, 256 * 1024);
        if let Err(err) = result {
            check_yaml_error(&file.0, &text, &err.0)?;
        }
    }

    /// Every shipped rule test mangled the same way.
    #[test]
    fn mangled_rule_tests_are_refused_naming_the_place(
        which in any::<prop::sample::Index>(),
        cut in any::<usize>(),
        at in any::<usize>(),
        insert in yaml_snippet(),
    ) {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules/tests");
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .expect("the rule tests are there")
            .map(|entry| entry.expect("a directory entry").path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
            .collect();
        files.sort();
        let original = std::fs::read_to_string(which.get(&files)).expect("a rule test reads");
        let text = mangle(&original, cut, at, &insert);
        let file = Scratch::write("rule_test.yaml", &text);
        let (result, allocated) = allocated_by(|| load_rule_test(&file.0));
        assert_proportional("a rule test", text.len(), allocated, 512, 256 * 1024);
        if let Err(err) = result {
            check_yaml_error(&file.0, &text, &err)?;
        }
    }
}

/// Aliases that multiply (a "billion laughs", 9^9 strings, gigabytes, if
/// expanded) in a rule's parameters, where any value is read: refused.
/// The YAML library stops after 100 alias expansions per event of the file,
/// which bounds the work but not in proportion to the input (a large anchor
/// referenced many times costs its size times the references): the bound
/// here is a fixed 64 MB.
#[test]
fn yaml_alias_bombs_are_refused_in_bounded_work() {
    const BOMB_BOUND: usize = 64 << 20;
    let mut params = String::from("{ a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]");
    for (level, previous) in ('b'..='i').zip('a'..) {
        let refs = vec![format!("*{previous}"); 9].join(", ");
        params.push_str(&format!(", {level}: &{level} [{refs}]"));
    }
    params.push_str(" }");
    let config = Scratch::write(
        "bomb.yaml",
        &format!(
            "platform:\n  url: http://127.0.0.1:1\nrooms:\n  - alias: r\n    rules:\n      - auto_mute_guests: {params}\n"
        ),
    );
    let (result, allocated) = allocated_by(|| load_config(&config.0));
    assert!(result.is_err(), "an alias bomb is refused");
    assert!(
        allocated <= BOMB_BOUND,
        "an alias bomb in a config: {allocated} bytes allocated"
    );
    let rule_test = Scratch::write(
        "bomb_test.yaml",
        &format!("rules:\n  - auto_mute_guests: {params}\ntests: []\n"),
    );
    let (result, allocated) = allocated_by(|| load_rule_test(&rule_test.0));
    assert!(result.is_err(), "an alias bomb is refused");
    assert!(
        allocated <= BOMB_BOUND,
        "an alias bomb in a rule test: {allocated} bytes allocated"
    );
}
