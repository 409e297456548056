//! Secrets in the config: PINs, passwords, keys and tokens.
//!
//! A secret field is written `${VARIABLE}` (read from the environment; the
//! recommended way) or as the value itself, in quotes; its `*_file` twin
//! names a file holding it instead. Values are never printed: errors name
//! the variable, the file or the field, never what they hold.
//!
//! A secret is text exactly as written. A YAML number, map or list in a
//! secret field is an error rather than a value: `pin: 0x1F` would otherwise
//! reach the platform as `31`, and `pin: { x: 1 }` as nothing at all.
//! Secret files must be regular files of at most [`MAX_SECRET_FILE`] bytes,
//! so `pin_file: /dev/zero` is refused instead of read forever.

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::de::{self, Deserializer, Visitor};

use crate::model::Secret;

/// The largest secret file usher reads.
pub const MAX_SECRET_FILE: u64 = 4096;

/// A secret as written in the config: `${VARIABLE}` or the value itself.
#[derive(Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// Read from this environment variable.
    Environment(String),
    /// Written in the file itself.
    Literal(Secret),
}

impl fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretSource::Environment(name) => write!(f, "${{{name}}}"),
            SecretSource::Literal(_) => f.write_str("***"),
        }
    }
}

impl<'de> de::Deserialize<'de> for SecretSource {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(SourceVisitor)
    }
}

struct SourceVisitor;

/// The error for a secret written as something other than text; it never
/// repeats the value.
fn not_text<E: de::Error>(what: &str) -> E {
    E::custom(format!(
        "a secret must be text, not {what}: write it in quotes (\"0042\") or as ${{VARIABLE}}"
    ))
}

impl<'de> Visitor<'de> for SourceVisitor {
    type Value = SecretSource;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("text or ${VARIABLE}")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<SecretSource, E> {
        let trimmed = text.trim();
        match trimmed
            .strip_prefix("${")
            .and_then(|rest| rest.strip_suffix('}'))
        {
            Some(name)
                if !name.is_empty()
                    && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') =>
            {
                Ok(SecretSource::Environment(name.to_owned()))
            }
            Some(_) => Err(E::custom(
                "write an environment variable as ${NAME}, with letters, digits and _ only",
            )),
            None => Ok(SecretSource::Literal(Secret::new(text))),
        }
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<SecretSource, E> {
        Err(not_text("true or false"))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<SecretSource, E> {
        Err(not_text("a number"))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<SecretSource, E> {
        Err(not_text("a number"))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<SecretSource, E> {
        Err(not_text("a number"))
    }

    fn visit_unit<E: de::Error>(self) -> Result<SecretSource, E> {
        Err(not_text("empty"))
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, _: A) -> Result<SecretSource, A::Error> {
        Err(not_text("a list"))
    }

    fn visit_map<A: de::MapAccess<'de>>(self, _: A) -> Result<SecretSource, A::Error> {
        Err(not_text("a map"))
    }
}

/// Why a secret could not be read. Never carries the secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// Both the field and its `_file` twin are given.
    #[error("give either `{field}` or `{field}_file`, not both")]
    Both {
        /// The field.
        field: String,
    },
    /// The environment variable is not set (or empty).
    #[error(
        "`{field}` comes from ${{{variable}}}, which is not set; export it or use `{field}_file`"
    )]
    Unset {
        /// The field.
        field: String,
        /// The variable.
        variable: String,
    },
    /// The file cannot be used.
    #[error("cannot read `{field}_file` {}: {reason}", path.display())]
    File {
        /// The field.
        field: String,
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// Resolves the secret `field` from its value or its `_file` twin: `None`
/// when neither is given.
pub fn resolve(
    field: &str,
    value: Option<&SecretSource>,
    file: Option<&Path>,
) -> Result<Option<Secret>, SecretError> {
    match (value, file) {
        (Some(_), Some(_)) => Err(SecretError::Both {
            field: field.to_owned(),
        }),
        (Some(SecretSource::Literal(secret)), None) => Ok(Some(secret.clone())),
        (Some(SecretSource::Environment(name)), None) => match std::env::var(name) {
            Ok(value) if !value.is_empty() => Ok(Some(Secret::new(value))),
            _ => Err(SecretError::Unset {
                field: field.to_owned(),
                variable: name.clone(),
            }),
        },
        (None, Some(path)) => read_file(path)
            .map(Some)
            .map_err(|reason| SecretError::File {
                field: field.to_owned(),
                path: path.to_owned(),
                reason,
            }),
        (None, None) => Ok(None),
    }
}

/// Reads a secret file: a regular file of at most [`MAX_SECRET_FILE`]
/// bytes, its trailing line break dropped.
fn read_file(path: &Path) -> Result<Secret, String> {
    let file = std::fs::File::open(path).map_err(|err| describe_io(&err))?;
    let metadata = file.metadata().map_err(|err| describe_io(&err))?;
    if !metadata.is_file() {
        return Err("not a regular file".to_owned());
    }
    let mut bytes = Vec::new();
    file.take(MAX_SECRET_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(|err| describe_io(&err))?;
    if bytes.len() as u64 > MAX_SECRET_FILE {
        return Err(format!(
            "larger than {MAX_SECRET_FILE} bytes; a secret file holds the secret alone"
        ));
    }
    let text = String::from_utf8(bytes).map_err(|_| "not UTF-8 text".to_owned())?;
    let secret = text.trim_end_matches(['\r', '\n']);
    if secret.is_empty() {
        return Err("the file is empty".to_owned());
    }
    Ok(Secret::new(secret))
}

fn describe_io(err: &std::io::Error) -> String {
    match err.kind() {
        std::io::ErrorKind::NotFound => "no such file".to_owned(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
        _ => err.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(yaml: &str) -> Result<SecretSource, String> {
        crate::yaml::from_str::<SecretSource>(yaml).map_err(|err| err.to_string())
    }

    #[test]
    fn a_secret_is_text_as_written() {
        for (yaml, text) in [("\"0042\"", "0042"), ("abc", "abc"), ("'1e3'", "1e3")] {
            match source(yaml).unwrap() {
                SecretSource::Literal(secret) => assert_eq!(secret.expose(), text),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(
            source("${HALL_PIN}").unwrap(),
            SecretSource::Environment("HALL_PIN".into())
        );
    }

    #[test]
    fn anything_but_text_is_refused_without_echoing_it() {
        for yaml in ["1e3", "0x1F", "4242", "{ x: 1 }", "[1, 2]", "true", "~"] {
            let err = source(yaml).unwrap_err();
            assert!(err.contains("a secret must be text"), "{yaml}: {err}");
            for value in ["1000", "31", "4242"] {
                assert!(!err.contains(value), "{yaml}: {err}");
            }
        }
    }

    #[test]
    fn files_are_capped_and_must_be_regular() {
        let err = resolve("pin", None, Some(Path::new("/dev/zero"))).unwrap_err();
        assert!(err.to_string().contains("not a regular file"), "{err}");
        let dir = std::env::temp_dir().join(format!("usher-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let big = dir.join("big.pin");
        std::fs::write(&big, vec![b'7'; 5000]).unwrap();
        let err = resolve("pin", None, Some(&big)).unwrap_err().to_string();
        assert!(err.contains("larger than 4096 bytes"), "{err}");
        assert!(!err.contains("7777"), "{err}");
        let good = dir.join("good.pin");
        std::fs::write(&good, "2468\n").unwrap();
        let pin = resolve("pin", None, Some(&good)).unwrap().unwrap();
        assert_eq!(pin.expose(), "2468");
    }
}
