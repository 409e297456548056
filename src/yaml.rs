//! Reading usher's YAML files: scenarios, rule tests and the config.
//!
//! Every file is read the same way. Enums are written as single-key maps
//! (`- join: Bob`, `- lock_when_full: { max: 120 }`) rather than YAML tags,
//! and every error names the place it was found as `file:line:column`.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::{
    self, DeserializeOwned, DeserializeSeed, EnumAccess, IgnoredAny, IntoDeserializer, MapAccess,
    VariantAccess, Visitor,
};

/// A YAML file that could not be read, with where and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlError {
    /// The file, when the text came from one.
    pub path: Option<PathBuf>,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// 1-based column, when known.
    pub column: Option<usize>,
    /// What was wrong.
    pub message: String,
}

impl fmt::Display for YamlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(path) = &self.path {
            write!(f, "{}:", path.display())?;
        }
        if let (Some(line), Some(column)) = (self.line, self.column) {
            write!(f, "{line}:{column}:")?;
        }
        if self.path.is_some() || self.line.is_some() {
            f.write_str(" ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for YamlError {}

/// Parses YAML text.
pub fn from_str<T: DeserializeOwned>(text: &str) -> Result<T, YamlError> {
    let deserializer = serde_yaml::Deserializer::from_str(text);
    serde_yaml::with::singleton_map_recursive::deserialize(deserializer).map_err(|err| {
        let location = err
            .location()
            .map(|l| (l.line(), l.column()))
            .or_else(|| second_document(text));
        let mut message = err.to_string();
        if let Some(at) = message.rfind(" at line ") {
            message.truncate(at);
        }
        YamlError {
            path: None,
            line: location.map(|(line, _)| line),
            column: location.map(|(_, column)| column),
            message,
        }
    })
}

/// Where a second YAML document starts (line and column, from 1), for the
/// one error the parser gives no position: a file of several documents.
/// That is the first `---` or `%` directive when content comes before it,
/// else the second `---`; or the first content after a `...`.
fn second_document(text: &str) -> Option<(usize, usize)> {
    let is_marker = |line: &str, marker: &str| {
        line.strip_prefix(marker)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t']))
    };
    let mut content = false;
    let mut ended = false;
    for (index, line) in text.lines().enumerate() {
        let blank = line.trim().is_empty() || line.trim_start().starts_with('#');
        if line.starts_with('%') && (content || ended) {
            return Some((index + 1, 1));
        }
        if is_marker(line, "---") {
            if content || ended {
                return Some((index + 1, 1));
            }
            content = true;
        } else if is_marker(line, "...") {
            ended = content;
        } else if !blank {
            if ended {
                return Some((index + 1, 1));
            }
            content = true;
        }
    }
    None
}

/// Reads and parses a YAML file; errors name the file.
pub fn from_file<T: DeserializeOwned>(path: &Path) -> Result<T, YamlError> {
    let text = std::fs::read_to_string(path).map_err(|err| YamlError {
        path: Some(path.to_owned()),
        line: None,
        column: None,
        message: format!("cannot read the file: {err}"),
    })?;
    from_str(&text).map_err(|err| YamlError {
        path: Some(path.to_owned()),
        ..err
    })
}

/// Reads an enum written as one entry of a map that is already being read:
/// `key` names the variant and the entry's value is its payload. This lets a
/// map hold an action (`join: Bob`) beside other keys (`expect: [...]`)
/// without repeating the enum's variants, and keeps error positions.
pub fn enum_from_entry<'de, T, A>(key: &str, map: &mut A) -> Result<T, A::Error>
where
    T: de::Deserialize<'de>,
    A: MapAccess<'de>,
{
    T::deserialize(Entry { key, map })
}

struct Entry<'k, 'm, A> {
    key: &'k str,
    map: &'m mut A,
}

impl<'de, A: MapAccess<'de>> de::Deserializer<'de> for Entry<'_, '_, A> {
    type Error = A::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, A::Error> {
        visitor.visit_enum(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        visitor.visit_enum(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map struct identifier
        ignored_any
    }
}

impl<'de, 'k, 'm, A: MapAccess<'de>> EnumAccess<'de> for Entry<'k, 'm, A> {
    type Error = A::Error;
    type Variant = Self;

    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self), A::Error> {
        let variant = seed.deserialize(self.key.into_deserializer())?;
        Ok((variant, self))
    }
}

impl<'de, A: MapAccess<'de>> VariantAccess<'de> for Entry<'_, '_, A> {
    type Error = A::Error;

    fn unit_variant(self) -> Result<(), A::Error> {
        self.map.next_value::<IgnoredAny>().map(drop)
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, A::Error> {
        self.map.next_value_seed(seed)
    }

    fn tuple_variant<V: Visitor<'de>>(
        self,
        _len: usize,
        _visitor: V,
    ) -> Result<V::Value, A::Error> {
        Err(de::Error::custom(
            "tuple variants cannot be written as a map entry",
        ))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, A::Error> {
        Err(de::Error::custom(
            "struct variants cannot be written as a map entry",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Sample {
        #[allow(dead_code)]
        name: String,
    }

    #[test]
    fn errors_point_at_line_and_column() {
        let err = from_str::<Sample>("name: x\nnmae: y\n").unwrap_err();
        assert_eq!((err.line, err.column), (Some(2), Some(1)));
        assert!(err.to_string().starts_with("2:1: "), "{err}");
        assert!(!err.to_string().contains(" at line "), "{err}");
    }

    #[test]
    fn a_second_document_is_pointed_at() {
        let err = from_str::<Sample>("name: x\n---\nname: y\n").unwrap_err();
        assert_eq!((err.line, err.column), (Some(2), Some(1)), "{err}");
        let err = from_str::<Sample>("# c\n---\nname: x\n--- \nname: y\n").unwrap_err();
        assert_eq!((err.line, err.column), (Some(4), Some(1)), "{err}");
        let err = from_str::<Sample>("name: x\n...\nname: y\n").unwrap_err();
        assert_eq!((err.line, err.column), (Some(3), Some(1)), "{err}");
        let err = from_str::<Sample>("name: x\n%YAML 1.1\nname: y\n").unwrap_err();
        assert_eq!((err.line, err.column), (Some(2), Some(1)), "{err}");
    }

    #[test]
    fn file_errors_name_the_file() {
        let err = from_file::<Sample>(Path::new("/nonexistent/usher.yaml")).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("/nonexistent/usher.yaml: cannot read"),
            "{err}"
        );
    }
}
