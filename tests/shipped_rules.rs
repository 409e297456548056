//! The shipped rules pass their own tests (`usher test rules/tests`), run
//! here through the library so `cargo test` covers them.

use std::path::PathBuf;

#[test]
fn every_shipped_rule_passes_its_tests() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut report = Vec::new();
    let summary = usher::ruletest::run_paths(&[root.join("rules/tests")], None, &mut report)
        .expect("the report is written to memory");
    let report = String::from_utf8_lossy(&report);
    assert_eq!(summary.failed, 0, "{report}");
    assert!(
        summary.passed >= 16,
        "at least two tests per shipped rule:\n{report}"
    );
    for (rule, _) in usher::shipped::RULES {
        let tests = root.join(format!("rules/tests/{rule}.yaml"));
        assert!(
            tests.is_file(),
            "{rule} has no tests at {}",
            tests.display()
        );
    }
}

/// The version of `hand_queue` before `p.heard_at`, as far as a reload
/// cares: Bob has the floor, and its state says when it was last heard.
const HAND_QUEUE_BEFORE: &str = r#"
const PARAMS = #{ silence: 20, check_every: 5 };
fn on_connect() {
    state.queue = #{};
    state.raised = 0;
    state.current = room.find("Bob").uuid;
    state.heard_at = now();
    state.checking = true;
    every(params.check_every, "check_silence");
}
fn check_silence() {}
"#;

#[test]
fn reloading_hand_queue_keeps_the_floor_of_the_previous_version() {
    use std::path::Path;
    use std::sync::Arc;
    use usher::model::{Event, Participant, Role, RoomState};
    use usher::rules::{RoomRules, Rule, RuleBinding, RuleEngine, RuleSet};

    let engine = Arc::new(RuleEngine::default());
    let path = Path::new("rules/hand_queue.rhai");
    let compile = |source: &str| {
        let rule = Rule::compile(&engine, "hand_queue", path, source).unwrap();
        Arc::new(RuleSet::new(engine.clone(), vec![rule]))
    };
    let (_, shipped) = usher::shipped::RULES
        .iter()
        .find(|(name, _)| *name == "hand_queue")
        .unwrap();
    let bindings = [RuleBinding::named("hand_queue")];
    let mut rules = RoomRules::new("hall", compile(HAND_QUEUE_BEFORE), &bindings).unwrap();

    let mut room = RoomState::new();
    let guests = [("b", "Bob"), ("c", "Cat")].map(|(uuid, name)| Participant {
        uuid: uuid.into(),
        display_name: name.into(),
        role: Role::Guest,
        ..Participant::default()
    });
    let changes = room.apply_at(Event::Roster(guests.to_vec()), 1000.0);
    let room = Arc::new(room);
    rules.on_changes(&room, &changes, "roster", 1000.0);

    rules.rebind(compile(shipped), &bindings).unwrap();
    let mut said = Vec::new();
    while let Some(due) = rules.next_timer().filter(|due| *due <= 1030.0) {
        let intents = rules.fire_timers(&room, due);
        said.extend(intents.iter().map(|i| format!("{} at {due}", i.command)));
    }
    assert!(rules.drain_failures().is_empty(), "the new version fails");
    assert_eq!(
        said,
        ["mute Bob at 1020"],
        "silent since 1000, so moved on at 1020"
    );
}
