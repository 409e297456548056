//! Credentials both ways: the token usher sends, and the signature it asks
//! of callbacks.
//!
//! - [`Token`]: the apaas token for `Authorization: agora token=…`. Agora
//!   tokens are issued by the operator's app server from the App
//!   Certificate (at most 24 h in FC); usher does not mint them. When the
//!   platform refuses the token, usher reads its source again (a
//!   `token_file` that the issuing process rewrites) and retries once.
//! - [`WebhookKey`]: checks a callback's signature over its raw body (see
//!   `inferred::SIGNATURE_HEADER` for the scheme, which is a guess).

use std::path::PathBuf;
use std::sync::RwLock;

use ring::hmac;

use super::inferred::{LEGACY_SIGNATURE_HEADER, SIGNATURE_HEADER};
use crate::config::{SecretSource, secret};
use crate::model::Secret;

/// The API token and where it comes from.
#[derive(Debug)]
pub struct Token {
    current: RwLock<Secret>,
    source: Option<SecretSource>,
    file: Option<PathBuf>,
}

/// The token cannot be read; names the field, never the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TokenError(String);

impl Token {
    /// Reads the token from its field or its file.
    pub fn load(
        source: Option<&SecretSource>,
        file: Option<&PathBuf>,
    ) -> Result<Token, TokenError> {
        let current = read("token", source, file)?;
        Ok(Token {
            current: RwLock::new(current),
            source: source.cloned(),
            file: file.cloned(),
        })
    }

    /// A fixed token, for tools and tests.
    pub fn fixed(token: Secret) -> Token {
        Token {
            current: RwLock::new(token),
            source: None,
            file: None,
        }
    }

    /// The token to send now.
    pub fn current(&self) -> Secret {
        self.current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The platform refused `refused`: reads the source again. True when
    /// there is now a different token to try (read here, or already by
    /// another room that was refused first).
    pub fn renew(&self, refused: &Secret) -> bool {
        if self.current() != *refused {
            return true;
        }
        if self.source.is_none() && self.file.is_none() {
            return false;
        }
        match read("token", self.source.as_ref(), self.file.as_ref()) {
            Ok(fresh) if fresh != *refused => {
                *self
                    .current
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = fresh;
                tracing::info!("the platform refused the token; using the renewed one");
                true
            }
            Ok(_) => {
                tracing::warn!(
                    "the platform refused the token and its source still holds the same one"
                );
                false
            }
            Err(err) => {
                tracing::warn!(error = %err, "the platform refused the token and it cannot be read again");
                false
            }
        }
    }
}

/// Reads a required secret: `field` or `field_file`.
pub fn read(
    field: &str,
    source: Option<&SecretSource>,
    file: Option<&PathBuf>,
) -> Result<Secret, TokenError> {
    match secret::resolve(field, source, file.map(PathBuf::as_path)) {
        Ok(Some(secret)) if !secret.is_empty() => Ok(secret),
        Ok(_) => Err(TokenError(format!("`{field}` is empty"))),
        Err(err) => Err(TokenError(err.to_string())),
    }
}

/// The key callbacks are signed with.
pub struct WebhookKey {
    sha256: hmac::Key,
}

impl std::fmt::Debug for WebhookKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookKey(***)")
    }
}

/// Why a callback's signature was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No signature header.
    #[error("no {SIGNATURE_HEADER} header")]
    Missing,
    /// The header is not a hex digest.
    #[error("the {SIGNATURE_HEADER} header is not a hex digest")]
    Malformed,
    /// The digest does not match the body.
    #[error("the {SIGNATURE_HEADER} signature does not match the body")]
    Mismatch,
}

impl WebhookKey {
    /// A key from the webhook secret.
    pub fn new(secret: &Secret) -> Self {
        WebhookKey {
            sha256: hmac::Key::new(hmac::HMAC_SHA256, secret.expose().as_bytes()),
        }
    }

    /// Checks the signature header against the raw body, in constant time.
    pub fn verify(
        &self,
        headers: &axum::http::HeaderMap,
        body: &[u8],
    ) -> Result<(), SignatureError> {
        let header = headers
            .get(SIGNATURE_HEADER)
            .ok_or(SignatureError::Missing)?;
        let digest = decode_hex(header.as_bytes()).ok_or(SignatureError::Malformed)?;
        hmac::verify(&self.sha256, body, &digest).map_err(|_| SignatureError::Mismatch)
    }
}

/// The signature headers a sender puts on `body`: the SHA-256 one usher
/// checks and the legacy SHA-1 one Agora's notification service also sends.
pub fn signature_headers(secret: &Secret, body: &[u8]) -> [(&'static str, String); 2] {
    let sign = |algorithm| {
        let key = hmac::Key::new(algorithm, secret.expose().as_bytes());
        encode_hex(hmac::sign(&key, body).as_ref())
    };
    [
        (SIGNATURE_HEADER, sign(hmac::HMAC_SHA256)),
        (
            LEGACY_SIGNATURE_HEADER,
            sign(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY),
        ),
    ]
}

fn encode_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        text.push(char::from(DIGITS[usize::from(byte >> 4)]));
        text.push(char::from(DIGITS[usize::from(byte & 0xf)]));
    }
    text
}

/// Hex digits (either case, surrounding blanks ignored) as bytes.
fn decode_hex(text: &[u8]) -> Option<Vec<u8>> {
    let text = text.trim_ascii();
    if text.len() % 2 != 0 {
        return None;
    }
    let digit = |c: u8| char::from(c).to_digit(16).map(|d| d as u8);
    text.chunks_exact(2)
        .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderMap, HeaderValue};

    fn headers(secret: &str, body: &[u8]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in signature_headers(&Secret::new(secret), body) {
            map.insert(name, HeaderValue::from_str(&value).unwrap());
        }
        map
    }

    #[test]
    fn a_signed_body_verifies_and_nothing_else_does() {
        let key = WebhookKey::new(&Secret::new("s3cret"));
        let body = br#"{"roomUuid":"r","cmd":1}"#;
        assert_eq!(key.verify(&headers("s3cret", body), body), Ok(()));
        assert_eq!(
            key.verify(&headers("s3cret", body), b"{}"),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            key.verify(&headers("other", body), body),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            key.verify(&HeaderMap::new(), body),
            Err(SignatureError::Missing)
        );
        let mut odd = HeaderMap::new();
        odd.insert(SIGNATURE_HEADER, HeaderValue::from_static("xyz"));
        assert_eq!(key.verify(&odd, body), Err(SignatureError::Malformed));
    }

    #[test]
    fn hex_digests_match_a_known_vector() {
        // RFC 4231 test case 2.
        let key = hmac::Key::new(hmac::HMAC_SHA256, b"Jefe");
        let tag = hmac::sign(&key, b"what do ya want for nothing?");
        assert_eq!(
            encode_hex(tag.as_ref()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(decode_hex(b" 0aFF "), Some(vec![0x0a, 0xff]));
    }

    #[test]
    fn a_refused_token_is_read_again_from_its_file() {
        let dir = std::env::temp_dir().join(format!("usher-agora-token-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("token");
        std::fs::write(&file, "t1\n").unwrap();
        let token = Token::load(None, Some(&file)).unwrap();
        let first = token.current();
        assert_eq!(first.expose(), "t1");
        assert!(!token.renew(&first), "the same token is no renewal");
        std::fs::write(&file, "t2\n").unwrap();
        assert!(token.renew(&first));
        assert_eq!(token.current().expose(), "t2");
        assert!(
            token.renew(&first),
            "another room's refusal of t1 finds t2 ready"
        );
        let fixed = Token::fixed(Secret::new("f"));
        assert!(!fixed.renew(&fixed.current()));
    }
}
