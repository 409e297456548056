//! A value that must never be printed: PINs and tokens.
//!
//! [`Secret`] prints as `***` through both `Debug` and `Display`, and has no
//! `Serialize`, so a secret cannot reach a log line, an error message or the
//! audit log by accident. The one way out is [`Secret::expose`], which the
//! code that puts it on the wire calls explicitly.

use std::fmt;

use serde::{Deserialize, Deserializer, Serializer};

/// A PIN, token or other credential.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value itself, for putting on the wire. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// True when no value was given.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Serializes the exposed value; for wire bodies that must carry it.
    pub fn serialize_exposed<S: Serializer>(
        secret: &Option<Secret>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match secret {
            Some(secret) => serializer.serialize_str(secret.expose()),
            None => serializer.serialize_none(),
        }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_prints_its_value() {
        let pin = Secret::new("424242");
        assert_eq!(format!("{pin}"), "***");
        assert_eq!(format!("{pin:?}"), "Secret(***)");
        assert_eq!(format!("{:?}", Some(pin.clone())), "Some(Secret(***))");
        assert_eq!(pin.expose(), "424242");
    }
}
