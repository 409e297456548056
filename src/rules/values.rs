//! Moving values between config files and Rhai.
//!
//! Rule parameters come from YAML (read as JSON values) and are checked
//! against the defaults a rule declares, so conversions and type names live
//! together here.

use rhai::{Array, Dynamic, Map};
use serde_json::Value;

/// Converts a config value to a Rhai value. Integers stay integers; other
/// numbers become floats.
pub fn to_dynamic(value: &Value) -> Dynamic {
    match value {
        Value::Null => Dynamic::UNIT,
        Value::Bool(flag) => Dynamic::from_bool(*flag),
        Value::Number(number) => match number.as_i64() {
            Some(integer) => Dynamic::from_int(integer),
            None => Dynamic::from_float(number.as_f64().unwrap_or(0.0)),
        },
        Value::String(text) => Dynamic::from(text.clone()),
        Value::Array(items) => Dynamic::from_array(items.iter().map(to_dynamic).collect::<Array>()),
        Value::Object(entries) => Dynamic::from_map(
            entries
                .iter()
                .map(|(key, value)| (key.as_str().into(), to_dynamic(value)))
                .collect::<Map>(),
        ),
    }
}

/// The name of a value's type as operators read it in error messages.
pub fn type_name(value: &Dynamic) -> &'static str {
    if value.is_unit() {
        "nothing"
    } else if value.is_bool() {
        "a boolean"
    } else if value.is_int() {
        "an integer"
    } else if value.is_float() {
        "a number"
    } else if value.is_string() {
        "a string"
    } else if value.is_array() {
        "a list"
    } else if value.is_map() {
        "a map"
    } else {
        "a value"
    }
}

/// Checks a configured value against the rule's default for the same
/// parameter. An integer is accepted where a number is expected; a
/// parameter whose default is `()` accepts anything.
pub fn fits(default: &Dynamic, value: &Dynamic) -> bool {
    default.is_unit()
        || type_name(default) == type_name(value)
        || (default.is_float() && value.is_int())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn converts_every_json_shape() {
        let value = to_dynamic(&json!({"n": 3, "f": 2.5, "s": "x", "l": [true, null]}));
        let map = value.cast::<Map>();
        assert_eq!(map["n"].as_int().unwrap(), 3);
        assert_eq!(map["f"].as_float().unwrap(), 2.5);
        assert_eq!(map["s"].clone().into_string().unwrap(), "x");
        let list = map["l"].clone().into_array().unwrap();
        assert!(list[0].as_bool().unwrap() && list[1].is_unit());
    }

    #[test]
    fn integers_fit_numbers_but_not_the_reverse() {
        let int = Dynamic::from_int(1);
        let float = Dynamic::from_float(1.5);
        assert!(fits(&float, &int));
        assert!(!fits(&int, &float));
        assert!(!fits(&int, &Dynamic::from("1")));
        assert!(fits(&Dynamic::UNIT, &Dynamic::from("anything")));
    }
}
