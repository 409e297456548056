//! The rules usher ships with, compiled into the binary.
//!
//! `usher demo` writes them out so it works from any directory; operators
//! start from the same files in `rules/`.

use std::path::Path;

/// Each shipped rule's name and source.
pub const RULES: [(&str, &str); 14] = [
    (
        "auto_mute_guests",
        include_str!("../rules/auto_mute_guests.rhai"),
    ),
    ("chat_commands", include_str!("../rules/chat_commands.rhai")),
    (
        "duplicate_names",
        include_str!("../rules/duplicate_names.rhai"),
    ),
    (
        "end_when_hosts_leave",
        include_str!("../rules/end_when_hosts_leave.rhai"),
    ),
    ("guest_policy", include_str!("../rules/guest_policy.rhai")),
    ("hand_queue", include_str!("../rules/hand_queue.rhai")),
    ("late_lock", include_str!("../rules/late_lock.rhai")),
    (
        "lecture_schedule",
        include_str!("../rules/lecture_schedule.rhai"),
    ),
    (
        "lock_when_full",
        include_str!("../rules/lock_when_full.rhai"),
    ),
    (
        "presentation_layout",
        include_str!("../rules/presentation_layout.rhai"),
    ),
    (
        "speaking_limit",
        include_str!("../rules/speaking_limit.rhai"),
    ),
    (
        "spotlight_presenter",
        include_str!("../rules/spotlight_presenter.rhai"),
    ),
    (
        "waiting_room_admit",
        include_str!("../rules/waiting_room_admit.rhai"),
    ),
    ("welcome", include_str!("../rules/welcome.rhai")),
];

/// Writes every shipped rule into `dir` as `<name>.rhai`.
pub fn write_rules(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for (name, source) in RULES {
        std::fs::write(dir.join(format!("{name}.rhai")), source)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::rule_files;

    #[test]
    fn every_rule_in_the_rules_directory_is_shipped() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
        let mut on_disk: Vec<String> = rule_files(&dir)
            .unwrap()
            .iter()
            .map(|path| path.file_stem().unwrap().to_string_lossy().into_owned())
            .collect();
        on_disk.sort();
        let shipped: Vec<&str> = RULES.iter().map(|(name, _)| *name).collect();
        assert_eq!(on_disk, shipped);
    }
}
