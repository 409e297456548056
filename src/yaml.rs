//! Reading usher's YAML files: scenarios, rule tests and the config.
//!
//! Every file is read the same way. Enums are written as single-key maps
//! (`- join: Bob`, `- lock_when_full: { max: 120 }`) rather than YAML tags,
//! and every error names the place it was found as `file:line:column`.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

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
        let location = err.location();
        let mut message = err.to_string();
        if let Some(at) = message.rfind(" at line ") {
            message.truncate(at);
        }
        YamlError {
            path: None,
            line: location.as_ref().map(|l| l.line()),
            column: location.as_ref().map(|l| l.column()),
            message,
        }
    })
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
    fn file_errors_name_the_file() {
        let err = from_file::<Sample>(Path::new("/nonexistent/usher.yaml")).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("/nonexistent/usher.yaml: cannot read"),
            "{err}"
        );
    }
}
