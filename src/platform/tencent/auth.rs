//! Credentials: the admin's UserSig, which usher issues itself, and the
//! `Sign` that proves a callback.
//!
//! A UserSig (TLS-Sig v2, as Tencent's public `tls-sig-api-v2` libraries
//! make it) is a JSON document — version, identifier, SDKAppID, issue time
//! and lifetime in seconds, and an HMAC-SHA256 over
//! `TLS.identifier:…\nTLS.sdkappid:…\nTLS.time:…\nTLS.expire:…\n` keyed
//! with the app's secret key — zlib-compressed and written in Tencent's
//! base64 variant (`+` `/` `=` become `*` `-` `_`). [`UserSigs`] keeps one
//! per account, renews it at half its life, and renews it at once when the
//! platform answers 70001 (expired).
//!
//! Callbacks carry `Sign = hex(sha256(token + RequestTime))` when a
//! callback token is set; [`check_callback_sign`] also refuses a
//! `RequestTime` more than a minute away from now.

use std::io::{Read, Write};
use std::sync::Mutex;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::model::Secret;
use crate::platform::LinkStats;

/// The TLS-Sig version usher issues.
const VERSION: &str = "2.0";

/// The most a UserSig may inflate to: a real one is some 200 bytes.
const MAX_USERSIG_JSON: u64 = 16 * 1024;

/// How far a callback's `RequestTime` may be from now.
pub const MAX_CALLBACK_SKEW: Duration = Duration::from_secs(60);

/// The signed document inside a UserSig.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserSigDoc {
    /// `2.0`.
    #[serde(rename = "TLS.ver")]
    pub version: String,
    /// The account it is for.
    #[serde(rename = "TLS.identifier")]
    pub identifier: String,
    /// The application.
    #[serde(rename = "TLS.sdkappid")]
    pub sdk_app_id: u64,
    /// Its lifetime in seconds.
    #[serde(rename = "TLS.expire")]
    pub expire: i64,
    /// When it was issued (UNIX seconds).
    #[serde(rename = "TLS.time")]
    pub time: i64,
    /// The HMAC, in standard base64.
    #[serde(rename = "TLS.sig")]
    pub sig: String,
}

/// Why a UserSig is not good.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UserSigError {
    /// It cannot be read at all.
    #[error("the UserSig cannot be decoded")]
    Malformed,
    /// Its lifetime is over.
    #[error("the UserSig has expired")]
    Expired,
    /// It was issued for another application.
    #[error("the UserSig is for another SDKAppID")]
    WrongApp,
    /// It was issued for another account.
    #[error("the UserSig is for another identifier")]
    WrongIdentifier,
    /// Its HMAC does not match the secret key.
    #[error("the UserSig's signature does not match")]
    BadSignature,
}

/// The string a UserSig's HMAC covers.
pub fn signed_content(identifier: &str, sdk_app_id: u64, time: i64, expire: i64) -> String {
    format!(
        "TLS.identifier:{identifier}\nTLS.sdkappid:{sdk_app_id}\nTLS.time:{time}\nTLS.expire:{expire}\n"
    )
}

/// The HMAC-SHA256 of a UserSig, in standard base64.
pub fn hmac_base64(key: &Secret, content: &str) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key.expose().as_bytes());
    STANDARD.encode(ring::hmac::sign(&key, content.as_bytes()).as_ref())
}

/// Issues a UserSig for `identifier`, issued at `time` (UNIX seconds) and
/// valid for `expire` seconds.
pub fn issue(sdk_app_id: u64, identifier: &str, key: &Secret, time: i64, expire: i64) -> Secret {
    let doc = UserSigDoc {
        version: VERSION.to_owned(),
        identifier: identifier.to_owned(),
        sdk_app_id,
        expire,
        time,
        sig: hmac_base64(key, &signed_content(identifier, sdk_app_id, time, expire)),
    };
    let json = serde_json::to_vec(&doc).expect("a UserSig document always serializes");
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    encoder
        .write_all(&json)
        .expect("writing into memory cannot fail");
    let compressed = encoder.finish().expect("writing into memory cannot fail");
    Secret::new(to_tencent_base64(&compressed))
}

/// Reads a UserSig's document without checking it.
pub fn decode(usersig: &str) -> Result<UserSigDoc, UserSigError> {
    let compressed = from_tencent_base64(usersig).ok_or(UserSigError::Malformed)?;
    let mut json = Vec::new();
    flate2::read::ZlibDecoder::new(compressed.as_slice())
        .take(MAX_USERSIG_JSON)
        .read_to_end(&mut json)
        .map_err(|_| UserSigError::Malformed)?;
    serde_json::from_slice(&json).map_err(|_| UserSigError::Malformed)
}

/// Checks a UserSig as the platform does: for this app and account, signed
/// with `key`, and not expired at `now` (UNIX seconds).
pub fn verify(
    usersig: &str,
    sdk_app_id: u64,
    identifier: &str,
    key: &Secret,
    now: i64,
) -> Result<UserSigDoc, UserSigError> {
    let doc = decode(usersig)?;
    if doc.sdk_app_id != sdk_app_id {
        return Err(UserSigError::WrongApp);
    }
    if doc.identifier != identifier {
        return Err(UserSigError::WrongIdentifier);
    }
    let expected = hmac_base64(
        key,
        &signed_content(&doc.identifier, doc.sdk_app_id, doc.time, doc.expire),
    );
    if !constant_time_eq(expected.as_bytes(), doc.sig.as_bytes()) {
        return Err(UserSigError::BadSignature);
    }
    if now > doc.time.saturating_add(doc.expire) {
        return Err(UserSigError::Expired);
    }
    Ok(doc)
}

/// Standard base64 with Tencent's substitutions: `+` → `*`, `/` → `-`,
/// `=` → `_`, so the result goes into a URL unescaped.
pub fn to_tencent_base64(bytes: &[u8]) -> String {
    STANDARD
        .encode(bytes)
        .chars()
        .map(|c| match c {
            '+' => '*',
            '/' => '-',
            '=' => '_',
            other => other,
        })
        .collect()
}

/// Reverses [`to_tencent_base64`].
pub fn from_tencent_base64(text: &str) -> Option<Vec<u8>> {
    let standard: String = text
        .trim()
        .chars()
        .map(|c| match c {
            '*' => '+',
            '-' => '/',
            '_' => '=',
            other => other,
        })
        .collect();
    STANDARD.decode(standard).ok()
}

/// A callback's `Sign` for `RequestTime`: `hex(sha256(token + RequestTime))`.
pub fn callback_sign(token: &Secret, request_time: &str) -> String {
    let mut context = ring::digest::Context::new(&ring::digest::SHA256);
    context.update(token.expose().as_bytes());
    context.update(request_time.as_bytes());
    context
        .finish()
        .as_ref()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Why a callback's signature is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    /// `Sign` or `RequestTime` is missing.
    #[error("the callback is not signed")]
    Missing,
    /// `RequestTime` is not a number of seconds.
    #[error("the callback's RequestTime is not a time")]
    BadTime,
    /// `RequestTime` is more than a minute from now.
    #[error("the callback's RequestTime is more than a minute from now")]
    Stale,
    /// `Sign` does not match.
    #[error("the callback's Sign does not match")]
    Mismatch,
}

/// Checks a callback's `Sign` and `RequestTime` against the token, at `now`
/// (UNIX seconds).
pub fn check_callback_sign(
    token: &Secret,
    sign: Option<&str>,
    request_time: Option<&str>,
    now: f64,
) -> Result<(), SignError> {
    let (Some(sign), Some(request_time)) = (sign, request_time) else {
        return Err(SignError::Missing);
    };
    let at: i64 = request_time
        .trim()
        .parse()
        .map_err(|_| SignError::BadTime)?;
    if (now - at as f64).abs() > MAX_CALLBACK_SKEW.as_secs_f64() {
        return Err(SignError::Stale);
    }
    let expected = callback_sign(token, request_time);
    if constant_time_eq(
        expected.as_bytes(),
        sign.trim().to_ascii_lowercase().as_bytes(),
    ) {
        Ok(())
    } else {
        Err(SignError::Mismatch)
    }
}

/// Compares two byte strings in time that does not depend on where they
/// differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The account's UserSig: issued on first use, renewed at half its life and
/// at once when the platform says it expired.
pub struct UserSigs {
    sdk_app_id: u64,
    identifier: String,
    key: Secret,
    lifetime: Duration,
    state: Mutex<SigState>,
}

#[derive(Default)]
struct SigState {
    current: Option<Issued>,
    stats: LinkStats,
}

#[derive(Clone)]
struct Issued {
    sig: Secret,
    time: i64,
    at: Instant,
}

impl UserSigs {
    /// UserSigs for `identifier`, each valid for `lifetime`.
    pub fn new(sdk_app_id: u64, identifier: &str, key: Secret, lifetime: Duration) -> Self {
        UserSigs {
            sdk_app_id,
            identifier: identifier.to_owned(),
            key,
            lifetime,
            state: Mutex::new(SigState::default()),
        }
    }

    /// The admin account the sigs are for.
    pub fn identifier(&self) -> &str {
        &self.identifier
    }

    /// The SDKAppID the sigs are for.
    pub fn sdk_app_id(&self) -> u64 {
        self.sdk_app_id
    }

    /// The sig to use now, issuing a new one when none is held or the held
    /// one is past half its life.
    pub fn current(&self) -> Secret {
        let mut state = self.lock();
        if let Some(issued) = &state.current {
            let age = issued.at.elapsed();
            if age < self.lifetime / 2 {
                return issued.sig.clone();
            }
            state.stats.refreshes += 1;
            if age >= self.lifetime {
                state.stats.late_refreshes += 1;
            }
        }
        self.issue_into(&mut state, unix_seconds())
    }

    /// Replaces `refused` (which the platform called expired) unless it was
    /// replaced already, and returns the sig to use. A renewal never
    /// reissues the very sig that was refused: it is dated at least a second
    /// after it.
    pub fn renew(&self, refused: &Secret) -> Secret {
        let mut state = self.lock();
        let time = match &state.current {
            Some(issued) if issued.sig != *refused => return issued.sig.clone(),
            Some(issued) => unix_seconds().max(issued.time + 1),
            None => unix_seconds(),
        };
        state.stats.renewals += 1;
        self.issue_into(&mut state, time)
    }

    /// Counters: refreshes at half-life, late ones, renewals after 70001.
    pub fn stats(&self) -> LinkStats {
        self.lock().stats
    }

    fn issue_into(&self, state: &mut SigState, time: i64) -> Secret {
        let expire = self.lifetime.as_secs() as i64;
        let sig = issue(self.sdk_app_id, &self.identifier, &self.key, time, expire);
        state.current = Some(Issued {
            sig: sig.clone(),
            time,
            at: Instant::now(),
        });
        sig
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SigState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn unix_seconds() -> i64 {
    crate::clock::unix_now() as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The demo key of Tencent's tls-sig-api-v2 libraries (all of them use
    /// it in their examples), with SDKAppID 1400000000.
    const KEY: &str = "5bd2850fff3ecb11d7c805251c51ee463a25727bddc2385f3fa8bfee1bb93b5e";
    const APP: u64 = 1_400_000_000;
    /// 2019-10-01T06:10:00Z.
    const TIME: i64 = 1_569_910_200;
    const EXPIRE: i64 = 180 * 86_400;

    /// A UserSig made by the Python tls-sig-api-v2 for identifier "0" at
    /// TIME with EXPIRE, as published with a Rust port of the library (its
    /// HMAC, `CpjuBd…`, is the one that port's passing test checks).
    const PYTHON_SIG: &str = "eJyrVgrxCdYrSy1SslIy0jNQ0gHzM1NS80oy0zLBwjDB4pTsxIKCzBQlK0MTAyiAyKRWFGQWpQLFTU1NjeCiJZm5YDEzS0tDAyOYaHFmOtBM54KsUqeUwGLLqPK8UndHryCL-Lx8-1RPy7Ty1AijMk9f30hLk0x-r3CvSFulWgAPYy*9";

    #[test]
    fn the_hmac_matches_the_published_vector() {
        let content = signed_content("0", APP, TIME, EXPIRE);
        assert_eq!(
            hmac_base64(&Secret::new(KEY), &content),
            "CpjuBdQs9ZwnuGAJR8onoOeI9fweX2vIMMY94iOJWJY="
        );
    }

    #[test]
    fn a_sig_made_by_the_python_library_reads_and_verifies() {
        let doc = decode(PYTHON_SIG).unwrap();
        assert_eq!(
            doc,
            UserSigDoc {
                version: "2.0".into(),
                identifier: "0".into(),
                sdk_app_id: APP,
                expire: EXPIRE,
                time: TIME,
                sig: "CpjuBdQs9ZwnuGAJR8onoOeI9fweX2vIMMY94iOJWJY=".into(),
            }
        );
        let key = Secret::new(KEY);
        assert!(verify(PYTHON_SIG, APP, "0", &key, TIME + 10).is_ok());
        assert_eq!(
            verify(PYTHON_SIG, APP, "0", &key, TIME + EXPIRE + 1),
            Err(UserSigError::Expired)
        );
        assert_eq!(
            verify(PYTHON_SIG, APP + 1, "0", &key, TIME),
            Err(UserSigError::WrongApp)
        );
        assert_eq!(
            verify(PYTHON_SIG, APP, "admin", &key, TIME),
            Err(UserSigError::WrongIdentifier)
        );
        assert_eq!(
            verify(PYTHON_SIG, APP, "0", &Secret::new("another key"), TIME),
            Err(UserSigError::BadSignature)
        );
    }

    #[test]
    fn our_sig_carries_the_same_document_as_the_python_one() {
        let ours = issue(APP, "0", &Secret::new(KEY), TIME, EXPIRE);
        assert_eq!(decode(ours.expose()).unwrap(), decode(PYTHON_SIG).unwrap());
        assert!(
            ours.expose()
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "*-_".contains(c)),
            "only URL-safe characters: {}",
            ours.expose()
        );
    }

    #[test]
    fn garbage_is_malformed_not_a_panic() {
        for text in ["", "not base64!", "eJyr", "AAAA", "eJwrSS0uAQAEXQHB"] {
            assert_eq!(decode(text), Err(UserSigError::Malformed), "{text:?}");
        }
    }

    #[test]
    fn callback_signs_check_token_and_time() {
        let token = Secret::new("callback-token");
        let sign = callback_sign(&token, "1700000000");
        assert_eq!(sign.len(), 64);
        let now = 1_700_000_030.0;
        assert_eq!(
            check_callback_sign(&token, Some(&sign), Some("1700000000"), now),
            Ok(())
        );
        assert_eq!(
            check_callback_sign(&token, Some(&sign.to_uppercase()), Some("1700000000"), now),
            Ok(())
        );
        assert_eq!(
            check_callback_sign(&token, Some(&sign), Some("1700000000"), now + 61.0),
            Err(SignError::Stale)
        );
        assert_eq!(
            check_callback_sign(&Secret::new("other"), Some(&sign), Some("1700000000"), now),
            Err(SignError::Mismatch)
        );
        assert_eq!(
            check_callback_sign(&token, None, Some("1700000000"), now),
            Err(SignError::Missing)
        );
        assert_eq!(
            check_callback_sign(&token, Some(&sign), Some("soon"), now),
            Err(SignError::BadTime)
        );
    }

    #[test]
    fn a_renewal_never_reissues_the_refused_sig() {
        let sigs = UserSigs::new(APP, "admin", Secret::new(KEY), Duration::from_secs(3600));
        let first = sigs.current();
        assert_eq!(sigs.current(), first, "reused until half its life");
        let renewed = sigs.renew(&first);
        assert_ne!(renewed, first);
        assert!(decode(renewed.expose()).unwrap().time > decode(first.expose()).unwrap().time);
        assert_eq!(
            sigs.renew(&first),
            renewed,
            "a second refusal of the old sig renews nothing"
        );
        assert_eq!(sigs.stats().renewals, 1);
    }
}
