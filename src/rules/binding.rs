//! Bindings: which rule runs in a room, with which parameters.
//!
//! In the config and in rule tests a binding is written one of three ways:
//!
//! ```yaml
//! rules:
//!   - auto_mute_guests                          # defaults
//!   - lock_when_full: { max: 120, reserve: 5 }  # with parameters
//!   - rule: chat_commands                       # long form
//!     params: { prefix: "!" }
//!     shadow: true                              # run, but never send
//! ```
//!
//! Binding checks every parameter against the rule's `PARAMS`: unknown names
//! and wrong types are errors before anything runs.

use std::collections::BTreeMap;

use std::sync::Arc;

use rhai::Map;
use serde::Deserialize;
use serde_json::Value;

use super::rule::Rule;
use super::values::{fits, to_dynamic, type_name};

/// A rule to run, with its parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleBinding {
    /// The rule's name (its file name without `.rhai`).
    pub rule: String,
    /// Parameters given; the rule's defaults fill in the rest.
    pub params: BTreeMap<String, Value>,
    /// Run the rule but only record what it would send.
    pub shadow: bool,
}

impl RuleBinding {
    /// A binding with default parameters.
    pub fn named(rule: impl Into<String>) -> Self {
        RuleBinding {
            rule: rule.into(),
            params: BTreeMap::new(),
            shadow: false,
        }
    }
}

impl<'de> Deserialize<'de> for RuleBinding {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Long {
            rule: String,
            #[serde(default)]
            params: BTreeMap<String, Value>,
            #[serde(default)]
            shadow: bool,
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Form {
            Name(String),
            Long(Long),
            Short(BTreeMap<String, Option<BTreeMap<String, Value>>>),
        }
        const EXPECTED: &str = "expected a rule name, `rule_name: { param: value }`, \
                                or `{ rule: rule_name, params: {...}, shadow: true }`";
        let form =
            Form::deserialize(deserializer).map_err(|_| serde::de::Error::custom(EXPECTED))?;
        match form {
            Form::Name(rule) => Ok(RuleBinding::named(rule)),
            Form::Long(long) => Ok(RuleBinding {
                rule: long.rule,
                params: long.params,
                shadow: long.shadow,
            }),
            Form::Short(map) if map.len() == 1 => {
                let (rule, params) = map.into_iter().next().expect("one entry");
                Ok(RuleBinding {
                    rule,
                    params: params.unwrap_or_default(),
                    shadow: false,
                })
            }
            Form::Short(_) => Err(serde::de::Error::custom(EXPECTED)),
        }
    }
}

/// A binding that does not fit its rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BindError {
    /// No rule has that name.
    #[error("no rule named `{rule}`{hint}; the rules are: {known}")]
    UnknownRule {
        /// The name given.
        rule: String,
        /// " (did you mean …?)" or nothing.
        hint: String,
        /// The rules that exist.
        known: String,
    },
    /// The rule has no such parameter.
    #[error("rule `{rule}` has no parameter `{param}`; its parameters are: {known}")]
    UnknownParam {
        /// The rule.
        rule: String,
        /// The parameter given.
        param: String,
        /// The parameters it has.
        known: String,
    },
    /// The value has the wrong type.
    #[error(
        "rule `{rule}`: parameter `{param}` must be {expected} (its default is {default}), not {got}"
    )]
    WrongType {
        /// The rule.
        rule: String,
        /// The parameter.
        param: String,
        /// The type of the default.
        expected: &'static str,
        /// The default, as text.
        default: String,
        /// The type given.
        got: &'static str,
    },
}

/// A rule's parameters as bound for a room, the map scripts read as
/// `params`. Every room bound with the defaults holds the same one.
#[derive(Debug, Clone)]
pub struct Params(pub Arc<Map>);

/// The rule's defaults with the binding's parameters laid over them.
pub fn bind_params(rule: &Rule, binding: &RuleBinding) -> Result<Params, BindError> {
    let defaults = rule.defaults();
    if binding.params.is_empty() {
        return Ok(Params(defaults.clone()));
    }
    let mut merged: Map = (**defaults).clone();
    for (name, value) in &binding.params {
        let Some(default) = defaults.get(name.as_str()) else {
            let known: Vec<&str> = defaults.keys().map(|k| k.as_str()).collect();
            return Err(BindError::UnknownParam {
                rule: rule.name().to_owned(),
                param: name.clone(),
                known: if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                },
            });
        };
        let value = to_dynamic(value);
        if !fits(default, &value) {
            return Err(BindError::WrongType {
                rule: rule.name().to_owned(),
                param: name.clone(),
                expected: type_name(default),
                default: default.to_string(),
                got: type_name(&value),
            });
        }
        merged.insert(name.as_str().into(), value);
    }
    Ok(Params(Arc::new(merged)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::RuleEngine;
    use crate::yaml;
    use std::path::Path;

    fn rule() -> Rule {
        Rule::compile(
            &RuleEngine::default(),
            "lock_when_full",
            Path::new("lock_when_full.rhai"),
            "const PARAMS = #{ max: 100, reserve: 5, ratio: 0.5, message: \"full\" };",
        )
        .unwrap()
    }

    #[test]
    fn reads_all_three_forms() {
        let bindings: Vec<RuleBinding> = yaml::from_str(
            "- auto_mute_guests\n- lock_when_full: { max: 120 }\n- rule: chat_commands\n  shadow: true\n- bare:\n",
        )
        .unwrap();
        assert_eq!(bindings[0], RuleBinding::named("auto_mute_guests"));
        assert_eq!(bindings[1].params["max"], 120);
        assert!(bindings[2].shadow && bindings[2].rule == "chat_commands");
        assert_eq!(bindings[3], RuleBinding::named("bare"));
        let err = yaml::from_str::<Vec<RuleBinding>>("- {a: {}, b: {}}").unwrap_err();
        assert!(err.message.contains("expected a rule name"), "{err}");
    }

    #[test]
    fn params_merge_over_defaults() {
        let mut binding = RuleBinding::named("lock_when_full");
        binding.params.insert("max".into(), 120.into());
        binding.params.insert("ratio".into(), 1.into());
        let params = bind_params(&rule(), &binding).unwrap();
        let int = |name| params.0[name].as_int().unwrap();
        assert_eq!(int("max"), 120);
        assert_eq!(int("reserve"), 5);
        assert_eq!(int("ratio"), 1, "an integer fits a number");
    }

    #[test]
    fn unknown_params_and_wrong_types_are_explained() {
        let mut binding = RuleBinding::named("lock_when_full");
        binding.params.insert("maxx".into(), 1.into());
        let err = bind_params(&rule(), &binding).unwrap_err();
        assert_eq!(
            err.to_string(),
            "rule `lock_when_full` has no parameter `maxx`; its parameters are: max, message, ratio, reserve"
        );
        let mut binding = RuleBinding::named("lock_when_full");
        binding.params.insert("max".into(), "lots".into());
        let err = bind_params(&rule(), &binding).unwrap_err();
        assert_eq!(
            err.to_string(),
            "rule `lock_when_full`: parameter `max` must be an integer (its default is 100), not a string"
        );
    }
}
