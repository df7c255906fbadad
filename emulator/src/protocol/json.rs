//! awsJson 1.0 / 1.1: the body is the input structure as JSON; timestamps are epoch seconds.

use super::error::{AwsError, ResolvedError};
use super::model::ServiceModel;
use serde_json::{Map, Value};

pub fn decode(body: &[u8]) -> Result<Value, AwsError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(Map::new()));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(_) => Err(AwsError::serialization(
            "The request body must be a JSON object",
        )),
        Err(e) => Err(AwsError::serialization(format!(
            "Malformed JSON request body: {e}"
        ))),
    }
}

/// The error body: `{"__type": …, "message": …}` plus any extra members. The message key follows the
/// error shape ("Message" where the model spells it so).
pub fn error_body(
    err: &AwsError,
    resolved: &ResolvedError<'_>,
    model: Option<&ServiceModel>,
) -> Value {
    let mut body = Map::new();
    body.insert(
        "__type".into(),
        Value::String(resolved.shape_name.to_string()),
    );
    body.insert(
        message_key(err, model).into(),
        Value::String(err.message.clone()),
    );
    if let Some(fields) = &err.fields {
        for (k, v) in fields.iter() {
            body.insert(k.clone(), v.clone());
        }
    }
    Value::Object(body)
}

pub fn message_key(err: &AwsError, model: Option<&ServiceModel>) -> &'static str {
    let shape = model.and_then(|m| m.error_shape(&err.code));
    match shape {
        Some(s) if s.members.contains_key("Message") && !s.members.contains_key("message") => {
            "Message"
        }
        _ => "message",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_body_is_an_empty_structure_and_garbage_is_a_serialization_error() {
        assert_eq!(decode(b"").expect("empty"), Value::Object(Map::new()));
        assert_eq!(decode(b"{\"a\":1}").expect("obj")["a"], 1);
        assert_eq!(
            decode(b"{\"a\":").unwrap_err().code,
            "SerializationException"
        );
        assert_eq!(decode(b"[1]").unwrap_err().code, "SerializationException");
    }
}
