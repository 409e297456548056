//! End-of-lecture reports: who was there, and what the moderation did.
//!
//! - [`session`]: the accumulator, fed the room's changes, commands and rule
//!   failures as they happen, and the [`Report`] it ends in.
//! - [`html`]: a report as one self-contained page with an inline SVG chart.
//! - [`book`]: the live daemon's sessions, one per room, written as they end.
//! - [`offline`]: `usher report`, the same report from a recording and an
//!   audit log.
//! - [`zone`]: times in a room's zone; [`markup`]: HTML escaping.

pub mod book;
pub mod html;
pub mod markup;
pub mod offline;
pub mod session;
pub mod zone;

use std::path::{Path, PathBuf};

use zone::ZoneTimes;

pub use session::{Report, Session};

/// Writes `report` as `<dir>/<room>/<date>-<time>.html` (the page `html`)
/// and `.json` beside it, and returns the page's path.
pub fn write_report(dir: &Path, report: &Report, html: &str) -> std::io::Result<PathBuf> {
    let folder = dir.join(file_name(&report.room));
    std::fs::create_dir_all(&folder)?;
    let stem = report.zone_used.file_stamp(report.start_at);
    let page = folder.join(format!("{stem}.html"));
    write_pair(&page, report, html)?;
    Ok(page)
}

/// Writes the page `html` to `page` and the report's JSON beside it (same
/// name, `.json`).
pub fn write_pair(page: &Path, report: &Report, html: &str) -> std::io::Result<()> {
    let json = serde_json::to_string_pretty(report).map_err(std::io::Error::other)?;
    std::fs::write(page, html)?;
    std::fs::write(page.with_extension("json"), json + "\n")
}

/// A room alias made safe as one file name: letters, digits, `@`, `.`, `-`
/// and `_` stay, anything else becomes `_`, and it never starts with a dot.
pub fn file_name(alias: &str) -> String {
    let name: String = alias
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '@' | '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    match name.strip_prefix('.') {
        Some(rest) => format!("_{rest}"),
        None if name.is_empty() => "_".to_owned(),
        None => name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_become_safe_file_names() {
        assert_eq!(file_name("hall-a@example.com"), "hall-a@example.com");
        assert_eq!(file_name("../etc/passwd"), "_._etc_passwd");
        assert_eq!(file_name("room 7/β"), "room_7__");
        assert_eq!(file_name(""), "_");
    }
}
