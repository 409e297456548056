//! Getting a timetable's text: a file, or a feed over HTTPS.
//!
//! A feed is asked with `If-None-Match` / `If-Modified-Since` from the last
//! copy usher accepted, so an unchanged timetable costs the server a `304`.
//! Each accepted copy is kept on disk with those validators, so a restart
//! begins from it even while the feed cannot be reached.

use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{ETAG, HeaderMap, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED};
use serde::{Deserialize, Serialize};
use url::Url;

/// The largest timetable usher reads: a whole university's is far smaller.
pub const MAX_BYTES: usize = 16 * 1024 * 1024;

/// Why a timetable's text could not be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// The file could not be read.
    #[error("cannot read it: {0}")]
    File(String),
    /// The feed could not be reached or did not answer in time.
    #[error("cannot fetch it: {0}")]
    Network(String),
    /// The feed answered with an error.
    #[error("the server answered {0}")]
    Status(String),
    /// More than [`MAX_BYTES`].
    #[error("it is larger than {MAX_BYTES} bytes")]
    TooLarge,
}

/// Reads a timetable file.
pub fn read_file(path: &Path) -> Result<String, FetchError> {
    let bytes = std::fs::read(path).map_err(|err| FetchError::File(err.to_string()))?;
    if bytes.len() > MAX_BYTES {
        return Err(FetchError::TooLarge);
    }
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// What the server said of the copy usher has.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Validators {
    /// `ETag`.
    pub etag: Option<String>,
    /// `Last-Modified`.
    pub last_modified: Option<String>,
}

impl Validators {
    fn from_headers(headers: &HeaderMap) -> Validators {
        let text = |name| {
            headers
                .get(name)
                .and_then(|value: &reqwest::header::HeaderValue| value.to_str().ok())
                .map(str::to_owned)
        };
        Validators {
            etag: text(ETAG),
            last_modified: text(LAST_MODIFIED),
        }
    }
}

/// A feed's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetched {
    /// A new copy, with its validators (to keep if it is accepted).
    Text(String, Validators),
    /// The copy usher has is still current (`304`).
    Unchanged,
}

/// A timetable feed and its copy on disk.
#[derive(Debug, Clone)]
pub struct Feed {
    url: Url,
    client: reqwest::Client,
    /// The validators of the copy accepted last.
    validators: Validators,
    /// Where the accepted copy is kept (`…/timetable-<hash>.ics` and `.json`).
    cache: Option<PathBuf>,
}

impl Feed {
    /// A feed at `url`, cached under `cache_dir` if given.
    pub fn new(url: Url, cache_dir: Option<&Path>) -> Result<Feed, FetchError> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(30))
            .user_agent(concat!("usher/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|err| FetchError::Network(err.to_string()))?;
        let cache =
            cache_dir.map(|dir| dir.join(format!("timetable-{:016x}", fnv1a(url.as_str()))));
        Ok(Feed {
            url,
            client,
            validators: Validators::default(),
            cache,
        })
    }

    /// The copy kept on disk, if any; its validators are used from now on.
    pub fn cached(&mut self) -> Option<String> {
        let base = self.cache.as_ref()?;
        let text = std::fs::read_to_string(base.with_extension("ics")).ok()?;
        self.validators = std::fs::read(base.with_extension("json"))
            .ok()
            .and_then(|json| serde_json::from_slice(&json).ok())
            .unwrap_or_default();
        Some(text)
    }

    /// Asks the server for the timetable, conditionally on the copy usher
    /// accepted last.
    pub async fn fetch(&self) -> Result<Fetched, FetchError> {
        let mut request = self.client.get(self.url.clone());
        if let Some(etag) = &self.validators.etag {
            request = request.header(IF_NONE_MATCH, etag);
        }
        if let Some(since) = &self.validators.last_modified {
            request = request.header(IF_MODIFIED_SINCE, since);
        }
        let mut response = request.send().await.map_err(describe_network_error)?;
        let status = response.status();
        if status == StatusCode::NOT_MODIFIED {
            return Ok(Fetched::Unchanged);
        }
        if !status.is_success() {
            return Err(FetchError::Status(status.to_string()));
        }
        let validators = Validators::from_headers(response.headers());
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(describe_network_error)? {
            if body.len() + chunk.len() > MAX_BYTES {
                return Err(FetchError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Fetched::Text(
            String::from_utf8_lossy(&body).into_owned(),
            validators,
        ))
    }

    /// Keeps an accepted copy: on disk, and its validators for the next
    /// request. A failure to write is logged; the copy is still used.
    pub fn accept(&mut self, text: &str, validators: Validators) {
        self.validators = validators;
        let Some(base) = &self.cache else {
            return;
        };
        let written =
            write_atomically(&base.with_extension("ics"), text.as_bytes()).and_then(|()| {
                let json = serde_json::to_vec(&self.validators).unwrap_or_default();
                write_atomically(&base.with_extension("json"), &json)
            });
        if let Err(err) = written {
            tracing::warn!(cache = %base.display(), error = %err, "cannot keep a copy of the timetable on disk");
        }
    }
}

/// A network error without the URL (which may carry a token).
fn describe_network_error(err: reqwest::Error) -> FetchError {
    let err = err.without_url();
    let kind = if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "cannot connect"
    } else {
        "failed"
    };
    let mut detail = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(cause) = source {
        detail = format!("{detail}: {cause}");
        source = cause.source();
    }
    FetchError::Network(format!("{kind} ({detail})"))
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let partial = path.with_extension("partial");
    std::fs::write(&partial, bytes)?;
    std::fs::rename(&partial, path)
}

/// FNV-1a: a stable name for a feed's copy that does not show its URL.
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Where feeds are cached: systemd's `CACHE_DIRECTORY`, else
/// `$XDG_CACHE_HOME/usher`, else `~/.cache/usher`, else the temporary
/// directory.
pub fn default_cache_dir() -> PathBuf {
    let env = |name| std::env::var_os(name).filter(|value| !value.is_empty());
    if let Some(dirs) = env("CACHE_DIRECTORY") {
        if let Some(first) = std::env::split_paths(&dirs).next() {
            return first;
        }
    }
    if let Some(cache) = env("XDG_CACHE_HOME") {
        return PathBuf::from(cache).join("usher");
    }
    if let Some(home) = env("HOME") {
        return PathBuf::from(home).join(".cache").join("usher");
    }
    std::env::temp_dir().join("usher-cache")
}
