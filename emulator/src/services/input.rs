//! Reading model-shaped JSON input in handlers.

use crate::protocol::AwsError;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Accessors for a handler's input. Validation against the model has already run, so required
/// members are present and types are right; these still never panic.
pub trait Input {
    fn str(&self, key: &str) -> Option<&str>;
    fn string_list(&self, key: &str) -> Vec<String>;
    fn i64(&self, key: &str) -> Option<i64>;
    fn bool(&self, key: &str) -> Option<bool>;
    /// A member as a typed value (e.g. a serde struct of the model shape).
    fn member<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, AwsError>;
}

impl Input for Value {
    fn str(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(Value::as_str)
    }

    fn string_list(&self, key: &str) -> Vec<String> {
        self.get(key)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn i64(&self, key: &str) -> Option<i64> {
        self.get(key).and_then(Value::as_i64)
    }

    fn bool(&self, key: &str) -> Option<bool> {
        self.get(key).and_then(Value::as_bool)
    }

    fn member<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, AwsError> {
        match self.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => serde_json::from_value(v.clone())
                .map(Some)
                .map_err(|e| AwsError::serialization(format!("Invalid value for {key}: {e}"))),
        }
    }
}
