//! What an operator may do from the dashboard: pause a room's rules and
//! resume them. The dashboard is read-only unless the config names a token
//! file (`http: { auth: { token_file } }`); then each action needs one of
//! its tokens (as `Authorization: Bearer …` or a form's `token` field), is
//! refused with 401 without it, and is audited with the token holder's name.
//!
//! While a room's rules are paused they keep running (their state and
//! timers stay current), but every command they ask for is held back and
//! audited as `blocked`, naming who paused them.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use axum::http::{HeaderMap, header};

use crate::clock::{format_timestamp, unix_now};
use crate::model::Secret;
use crate::runtime::audit::{AuditRecord, AuditSink, Outcome};

/// The shortest token accepted: guessing one must be hopeless.
const SHORTEST_TOKEN: usize = 16;

/// The largest token file usher reads: thousands of operators' tokens.
pub const MAX_TOKEN_FILE: u64 = 64 * 1024;

/// Why the token file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// It cannot be read.
    #[error("http.auth.token_file: cannot read {path}: {error}")]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// It is not a regular file of at most [`MAX_TOKEN_FILE`] bytes of text.
    #[error(
        "http.auth.token_file: {0} must be a text file of at most {MAX_TOKEN_FILE} bytes, one token a line"
    )]
    NotATokenFile(PathBuf),
    /// It holds no token.
    #[error("http.auth.token_file: {0} holds no token; write one a line, e.g. `alice 3f9c…`")]
    Empty(PathBuf),
    /// A token is too short.
    #[error(
        "{path}:{line}: this token is shorter than {SHORTEST_TOKEN} characters; use a long random one (e.g. `openssl rand -hex 24`)"
    )]
    TooShort {
        /// The file.
        path: PathBuf,
        /// Its line.
        line: usize,
    },
}

/// The tokens that allow actions, each with its holder's name.
#[derive(Debug, Clone)]
pub struct Tokens(Vec<(String, Secret)>);

impl Tokens {
    /// Reads a token file: one token a line, optionally preceded by its
    /// holder's name and a space; blank lines and `#` comments are skipped.
    pub fn load(path: &Path) -> Result<Tokens, TokenError> {
        let text = read_token_file(path)?;
        let mut tokens = Vec::new();
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (holder, token) = match line.rsplit_once(char::is_whitespace) {
                Some((holder, token)) => (holder.trim().to_owned(), token),
                None => ("operator".to_owned(), line),
            };
            if token.chars().count() < SHORTEST_TOKEN {
                return Err(TokenError::TooShort {
                    path: path.to_owned(),
                    line: index + 1,
                });
            }
            tokens.push((holder, Secret::new(token)));
        }
        if tokens.is_empty() {
            return Err(TokenError::Empty(path.to_owned()));
        }
        Ok(Tokens(tokens))
    }

    /// The holder of `presented`, if it is one of the tokens. Every token
    /// is compared in full, so timing tells nothing about them.
    pub fn holder(&self, presented: &str) -> Option<&str> {
        let mut found = None;
        for (holder, token) in &self.0 {
            if same(token.expose().as_bytes(), presented.as_bytes()) {
                found = Some(holder.as_str());
            }
        }
        found
    }
}

/// Compares in time that depends only on the lengths.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

/// The token a request presents: `Authorization: Bearer …`, else the
/// form's `token` field.
pub fn presented(headers: &HeaderMap, form: &[u8]) -> Option<String> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(|token| token.trim().to_owned());
    bearer.or_else(|| {
        url::form_urlencoded::parse(form)
            .find(|(name, _)| name == "token")
            .map(|(_, value)| value.into_owned())
    })
}

/// What actions need: the tokens, and the audit log to record them in.
#[derive(Debug, Clone)]
pub struct Actions {
    /// Who may act.
    pub tokens: Tokens,
    /// Where actions are recorded.
    pub audit: AuditSink,
}

/// An action on a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Hold back every command the room's rules ask for.
    Pause,
    /// Send them again.
    Resume,
}

impl Action {
    /// The action named in a URL.
    pub fn parse(name: &str) -> Option<Action> {
        match name {
            "pause" => Some(Action::Pause),
            "resume" => Some(Action::Resume),
            _ => None,
        }
    }

    /// The audit record of `holder` taking this action in `room`.
    pub fn record(self, room: &str, holder: &str) -> AuditRecord {
        let (verb, text) = match self {
            Action::Pause => ("pause", "pause the room's rules"),
            Action::Resume => ("resume", "resume the room's rules"),
        };
        AuditRecord {
            time: format_timestamp(unix_now()),
            room: room.to_owned(),
            rule: "dashboard".to_owned(),
            event: format!("request by {holder}"),
            handler: verb.to_owned(),
            participant: None,
            command: verb.to_owned(),
            target: None,
            text: text.to_owned(),
            outcome: Outcome::Ok,
            error: None,
            attempts: 1,
            latency_ms: None,
            dry_run: false,
        }
    }

    /// What the room's status says while paused by `holder`.
    pub fn pause_reason(holder: &str) -> String {
        format!(
            "rules paused from the dashboard by {holder} at {}",
            format_timestamp(unix_now())
        )
    }
}

/// Reads the token file, refusing anything but a regular file of text of
/// at most [`MAX_TOKEN_FILE`] bytes (`/dev/zero` would never end).
fn read_token_file(path: &Path) -> Result<String, TokenError> {
    let unreadable = |error| TokenError::Unreadable {
        path: path.to_owned(),
        error,
    };
    let file = std::fs::File::open(path).map_err(unreadable)?;
    if !file.metadata().map_err(unreadable)?.is_file() {
        return Err(TokenError::NotATokenFile(path.to_owned()));
    }
    let mut bytes = Vec::new();
    file.take(MAX_TOKEN_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(unreadable)?;
    if bytes.len() as u64 > MAX_TOKEN_FILE {
        return Err(TokenError::NotATokenFile(path.to_owned()));
    }
    String::from_utf8(bytes).map_err(|_| TokenError::NotATokenFile(path.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_name_their_holders_and_short_ones_are_refused() {
        let dir = std::env::temp_dir().join(format!("usher-tokens-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("tokens");
        std::fs::write(
            &path,
            "# operators\nalice 0123456789abcdef0123\n\nfedcba9876543210fedc\n",
        )
        .unwrap();
        let tokens = Tokens::load(&path).unwrap();
        assert_eq!(tokens.holder("0123456789abcdef0123"), Some("alice"));
        assert_eq!(tokens.holder("fedcba9876543210fedc"), Some("operator"));
        assert_eq!(tokens.holder("0123456789abcdef012"), None);
        assert_eq!(tokens.holder(""), None);
        assert!(
            !format!("{tokens:?}").contains("0123456789"),
            "tokens are never shown"
        );

        std::fs::write(&path, "bob short\n").unwrap();
        let err = Tokens::load(&path).unwrap_err().to_string();
        assert!(
            err.ends_with(
                "tokens:1: this token is shorter than 16 characters; use a long random one (e.g. `openssl rand -hex 24`)"
            ),
            "{err}"
        );
        assert!(!err.contains("bob short"), "the token is not shown: {err}");
        std::fs::write(&path, "# nothing\n").unwrap();
        assert!(matches!(Tokens::load(&path), Err(TokenError::Empty(_))));
        let huge = "alice 0123456789abcdef0123\n".repeat(3000);
        std::fs::write(&path, huge).unwrap();
        assert!(matches!(
            Tokens::load(&path),
            Err(TokenError::NotATokenFile(_))
        ));
        std::fs::remove_dir_all(&dir).unwrap();
        for endless in ["/dev/zero", "/dev/urandom"] {
            assert!(
                matches!(
                    Tokens::load(Path::new(endless)),
                    Err(TokenError::NotATokenFile(_))
                ),
                "{endless} is refused at once"
            );
        }
    }

    #[test]
    fn a_token_comes_from_the_header_or_the_form() {
        let mut headers = HeaderMap::new();
        assert_eq!(presented(&headers, b"token=abc%20d"), Some("abc d".into()));
        assert_eq!(presented(&headers, b""), None);
        headers.insert(header::AUTHORIZATION, "Bearer xyz".parse().unwrap());
        assert_eq!(presented(&headers, b"token=abc"), Some("xyz".into()));
    }
}
