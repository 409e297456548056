//! Enums over platform strings that keep values they do not know.
//!
//! Platforms add enum values faster than we release. [`open_enum!`] declares an
//! enum whose known values parse case-insensitively (with optional aliases) and
//! whose unknown values land in `Other(String)`, exactly as sent, so parsing
//! never fails and nothing is lost on the way back out.

/// Declares an open enum: known variants with their wire spelling (first) and
/// accepted aliases, plus `Other(String)`. Generates `parse`, `as_str`,
/// `Display`, `Serialize` and a `Deserialize` that never fails on a string.
macro_rules! open_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $(
                $(#[$variant_meta:meta])*
                $variant:ident = $wire:literal $(| $alias:literal)*
            ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $(
                $(#[$variant_meta])*
                $variant,
            )+
            /// A value this version does not know, kept as it was sent.
            Other(String),
        }

        impl $name {
            /// Reads a wire value, case-insensitively; unknown values become `Other`.
            pub fn parse(value: &str) -> Self {
                $(
                    if value.eq_ignore_ascii_case($wire)
                        $(|| value.eq_ignore_ascii_case($alias))*
                    {
                        return Self::$variant;
                    }
                )+
                Self::Other(value.to_owned())
            }

            /// The wire spelling.
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $wire,)+
                    Self::Other(value) => value,
                }
            }
        }

        impl std::str::FromStr for $name {
            type Err = std::convert::Infallible;

            fn from_str(value: &str) -> Result<Self, Self::Err> {
                Ok(Self::parse(value))
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                <String as serde::Deserialize>::deserialize(deserializer).map(|value| Self::parse(&value))
            }
        }
    };
}

pub(crate) use open_enum;
