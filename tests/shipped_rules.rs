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
