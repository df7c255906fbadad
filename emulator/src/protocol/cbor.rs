//! Smithy RPC v2 CBOR: the body is the input structure as a CBOR map; timestamps are tag 1,
//! blobs are byte strings. Handlers see the same model-shaped JSON as with the JSON protocols.

use super::error::AwsError;
use super::model::{ServiceModel, ShapeType};
use base64::Engine;
use ciborium::value::{Integer, Value as Cbor};
use serde_json::{Map, Number, Value};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

pub fn decode(body: &[u8]) -> Result<Value, AwsError> {
    if body.is_empty() {
        return Ok(Value::Object(Map::new()));
    }
    let mut rest = body;
    let cbor: Cbor = ciborium::de::from_reader(&mut rest)
        .map_err(|e| AwsError::serialization(format!("Malformed CBOR request body: {e}")))?;
    // One data item, nothing after it (a second item would be silently ignored otherwise).
    if !rest.is_empty() {
        return Err(AwsError::serialization(format!(
            "Malformed CBOR request body: {} bytes after the end of the data item",
            rest.len()
        )));
    }
    match to_json(cbor, 0)? {
        v @ Value::Object(_) => Ok(v),
        _ => Err(AwsError::serialization(
            "The request body must be a CBOR map",
        )),
    }
}

fn to_json(v: Cbor, depth: usize) -> Result<Value, AwsError> {
    if depth > 64 {
        return Err(AwsError::serialization("CBOR nesting too deep"));
    }
    Ok(match v {
        Cbor::Null => Value::Null,
        Cbor::Bool(b) => Value::Bool(b),
        Cbor::Integer(i) => {
            let n = i128::from(i);
            if let Ok(x) = i64::try_from(n) {
                Value::Number(x.into())
            } else if let Ok(x) = u64::try_from(n) {
                Value::Number(x.into())
            } else {
                return Err(AwsError::serialization("CBOR integer out of range"));
            }
        }
        Cbor::Float(f) => match Number::from_f64(f) {
            Some(n) => Value::Number(n),
            // NaN and the infinities as the JSON protocols carry them.
            None => Value::String(super::model::non_finite_name(f).to_string()),
        },
        Cbor::Text(s) => Value::String(s),
        Cbor::Bytes(b) => Value::String(B64.encode(b)),
        // Tag 1: epoch-seconds timestamp; any other tag: its content.
        Cbor::Tag(_, inner) => to_json(*inner, depth + 1)?,
        Cbor::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|i| to_json(i, depth + 1))
                .collect::<Result<_, _>>()?,
        ),
        Cbor::Map(entries) => {
            let mut out = Map::new();
            for (k, v) in entries {
                let Cbor::Text(key) = k else {
                    return Err(AwsError::serialization("CBOR map keys must be text"));
                };
                let v = to_json(v, depth + 1)?;
                // Null members are absent members.
                if !v.is_null() {
                    out.insert(key, v);
                }
            }
            Value::Object(out)
        }
        _ => return Err(AwsError::serialization("Unsupported CBOR value")),
    })
}

/// Encodes model-shaped JSON as CBOR, following the shape for timestamps, blobs and number kinds.
pub fn encode(model: &ServiceModel, shape_name: Option<&str>, value: &Value) -> Vec<u8> {
    let cbor = from_json(model, shape_name, value);
    let mut out = Vec::with_capacity(256);
    // Writing into a Vec cannot fail.
    let _ = ciborium::ser::into_writer(&cbor, &mut out);
    out
}

pub fn encode_value(cbor: &Cbor) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = ciborium::ser::into_writer(cbor, &mut out);
    out
}

fn from_json(model: &ServiceModel, shape_name: Option<&str>, value: &Value) -> Cbor {
    let shape = shape_name.and_then(|n| model.shape(n));
    match value {
        Value::Null => Cbor::Null,
        Value::Bool(b) => Cbor::Bool(*b),
        Value::Number(n) => {
            let kind = shape.map(|s| s.kind);
            match kind {
                Some(ShapeType::Timestamp) => Cbor::Tag(1, Box::new(number(n, true))),
                Some(ShapeType::Float | ShapeType::Double) => {
                    Cbor::Float(n.as_f64().unwrap_or(0.0))
                }
                Some(ShapeType::Integer | ShapeType::Long | ShapeType::Short | ShapeType::Byte) => {
                    number(n, false)
                }
                _ => number(n, false),
            }
        }
        Value::String(s) => match shape.map(|s| s.kind) {
            Some(ShapeType::Blob) => {
                Cbor::Bytes(B64.decode(s).unwrap_or_else(|_| s.as_bytes().to_vec()))
            }
            _ => Cbor::Text(s.clone()),
        },
        Value::Array(items) => {
            let member = shape
                .and_then(|s| s.member.as_ref())
                .map(|m| m.shape.as_str());
            Cbor::Array(items.iter().map(|i| from_json(model, member, i)).collect())
        }
        Value::Object(obj) => {
            let mut entries = Vec::with_capacity(obj.len());
            for (k, v) in obj {
                if v.is_null() {
                    continue;
                }
                let member_shape = shape.and_then(|s| match s.kind {
                    ShapeType::Map => s.value.as_ref().map(|r| r.shape.as_str()),
                    _ => s.members.get(k).map(|r| r.shape.as_str()),
                });
                entries.push((Cbor::Text(k.clone()), from_json(model, member_shape, v)));
            }
            Cbor::Map(entries)
        }
    }
}

fn number(n: &Number, float: bool) -> Cbor {
    if !float {
        if let Some(i) = n.as_i64() {
            return Cbor::Integer(Integer::from(i));
        }
        if let Some(u) = n.as_u64() {
            return Cbor::Integer(Integer::from(u));
        }
    }
    Cbor::Float(n.as_f64().unwrap_or(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::model::model;
    use serde_json::json;

    #[test]
    fn round_trip_keeps_timestamps_blobs_lists_and_maps() {
        let m = model("cloudwatch").expect("model");
        let value = json!({
            "Namespace": "App",
            "MetricData": [{
                "MetricName": "Latency",
                "Timestamp": 1767225600.5,
                "Dimensions": [{"Name": "Svc", "Value": "web"}],
                "Values": [1.0, 2.5],
                "Counts": [],
                "StorageResolution": 60
            }]
        });
        let bytes = encode(m, Some("PutMetricDataInput"), &value);
        // The timestamp travels as tag 1.
        let raw: Cbor = ciborium::de::from_reader(bytes.as_slice()).expect("cbor");
        let ts = raw
            .as_map()
            .and_then(|m| m.iter().find(|(k, _)| k.as_text() == Some("MetricData")))
            .and_then(|(_, v)| v.as_array())
            .and_then(|a| a[0].as_map())
            .and_then(|m| m.iter().find(|(k, _)| k.as_text() == Some("Timestamp")))
            .map(|(_, v)| v.clone());
        assert!(matches!(ts, Some(Cbor::Tag(1, _))), "{ts:?}");
        assert_eq!(decode(&bytes).expect("decode"), value);

        let blob = json!({"Data": "aGVsbG8="});
        let bytes = encode(m, None, &blob);
        assert_eq!(decode(&bytes).expect("decode"), blob);
    }

    #[test]
    fn malformed_cbor_is_a_serialization_error() {
        assert_eq!(
            decode(&[0xbf, 0x61]).unwrap_err().code,
            "SerializationException"
        );
        assert_eq!(decode(&[0x01]).unwrap_err().code, "SerializationException");
        assert_eq!(decode(&[]).expect("empty"), json!({}));
    }
}
