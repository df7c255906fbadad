//! Input validation from the model: required members, types, enums, lengths, ranges, patterns.
//! Runs once, before any handler, and answers with the service's own bad-input error.

use super::catalog::ServiceInfo;
use super::error::AwsError;
use super::model::{ServiceModel, Shape, ShapeType};
use parking_lot::Mutex;
use regex::Regex;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

#[derive(Debug, PartialEq)]
enum Kind {
    Missing,
    Invalid,
    /// A value of the wrong JSON type: a serialization error on JSON and CBOR.
    Type,
}

struct Violations(Vec<(Kind, String)>);

/// Checks `input` against the operation's input shape.
pub fn validate(
    model: &ServiceModel,
    info: &ServiceInfo,
    shape_name: &str,
    input: &Value,
) -> Result<(), AwsError> {
    let mut v = Violations(Vec::new());
    check(model, shape_name, input, "", &mut v);
    if v.0.is_empty() {
        return Ok(());
    }
    if let Some((_, msg)) = v.0.iter().find(|(k, _)| *k == Kind::Type) {
        return Err(AwsError::serialization(msg.clone()));
    }
    let code = if v.0.iter().any(|(k, _)| *k == Kind::Missing) {
        info.bad_input.missing
    } else {
        info.bad_input.invalid
    };
    let n = v.0.len();
    let details: Vec<String> = v.0.into_iter().map(|(_, m)| m).collect();
    let noun = if n == 1 { "error" } else { "errors" };
    Err(AwsError::new(
        code,
        format!("{n} validation {noun} detected: {}", details.join("; ")),
    ))
}

fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

fn show(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn check(model: &ServiceModel, shape_name: &str, value: &Value, path: &str, v: &mut Violations) {
    let Some(shape) = model.shape(shape_name) else {
        return;
    };
    if value.is_null() {
        return;
    }
    let type_ok = match shape.kind {
        ShapeType::Structure => value.is_object(),
        ShapeType::List => value.is_array(),
        ShapeType::Map => value.is_object(),
        ShapeType::String | ShapeType::Blob => value.is_string(),
        ShapeType::Boolean => value.is_boolean(),
        ShapeType::Integer | ShapeType::Long | ShapeType::Short | ShapeType::Byte => {
            value.is_i64() || value.is_u64()
        }
        ShapeType::Float | ShapeType::Double | ShapeType::Bigdecimal | ShapeType::Biginteger => {
            value.is_number()
        }
        ShapeType::Timestamp => value.is_number(),
        ShapeType::Other => true,
    };
    if !type_ok && !shape.document {
        let at = if path.is_empty() { "the request" } else { path };
        v.0.push((
            Kind::Type,
            format!("Unexpected value type at '{at}': expected {:?}", shape.kind),
        ));
        return;
    }
    match shape.kind {
        ShapeType::Structure => check_structure(model, shape, value, path, v),
        ShapeType::List => {
            if let Some(items) = value.as_array() {
                check_length(shape, items.len(), value, path, v);
                if let Some(member) = &shape.member {
                    for (i, item) in items.iter().enumerate() {
                        check(
                            model,
                            &member.shape,
                            item,
                            &format!("{}.{}.member", path, i + 1),
                            v,
                        );
                    }
                }
            }
        }
        ShapeType::Map => {
            if let Some(map) = value.as_object() {
                check_length(shape, map.len(), value, path, v);
                for (k, item) in map {
                    if let Some(key) = &shape.key {
                        check(
                            model,
                            &key.shape,
                            &Value::String(k.clone()),
                            &format!("{path}.key"),
                            v,
                        );
                    }
                    if let Some(val) = &shape.value {
                        check(model, &val.shape, item, &format!("{path}.{k}"), v);
                    }
                }
            }
        }
        ShapeType::String => {
            if let Some(s) = value.as_str() {
                check_string(shape, s, path, v);
            }
        }
        ShapeType::Integer
        | ShapeType::Long
        | ShapeType::Short
        | ShapeType::Byte
        | ShapeType::Float
        | ShapeType::Double => {
            if let Some(n) = value.as_f64() {
                if let Some(min) = shape.min {
                    if n < min {
                        v.0.push((Kind::Invalid, format!("Value '{}' at '{path}' failed to satisfy constraint: Member must have value greater than or equal to {min}", show(value))));
                    }
                }
                if let Some(max) = shape.max {
                    if n > max {
                        v.0.push((Kind::Invalid, format!("Value '{}' at '{path}' failed to satisfy constraint: Member must have value less than or equal to {max}", show(value))));
                    }
                }
            }
        }
        _ => {}
    }
}

fn check_structure(
    model: &ServiceModel,
    shape: &Shape,
    value: &Value,
    path: &str,
    v: &mut Violations,
) {
    let Some(obj) = value.as_object() else { return };
    for req in &shape.required {
        if obj.get(req).is_none_or(Value::is_null) {
            v.0.push((
                Kind::Missing,
                format!(
                    "Value null at '{}' failed to satisfy constraint: Member must not be null",
                    join(path, &lower_first(req))
                ),
            ));
        }
    }
    for (name, member) in &shape.members {
        if let Some(item) = obj.get(name) {
            check(
                model,
                &member.shape,
                item,
                &join(path, &lower_first(name)),
                v,
            );
        }
    }
}

fn check_length(shape: &Shape, len: usize, value: &Value, path: &str, v: &mut Violations) {
    let len = len as f64;
    if let Some(min) = shape.min {
        if len < min {
            v.0.push((Kind::Invalid, format!("Value '{}' at '{path}' failed to satisfy constraint: Member must have length greater than or equal to {min}", show(value))));
        }
    }
    if let Some(max) = shape.max {
        if len > max {
            v.0.push((Kind::Invalid, format!("Value '{}' at '{path}' failed to satisfy constraint: Member must have length less than or equal to {max}", show(value))));
        }
    }
}

fn check_string(shape: &Shape, s: &str, path: &str, v: &mut Violations) {
    if let Some(values) = &shape.enum_values {
        if !values.iter().any(|e| e == s) {
            v.0.push((
                Kind::Invalid,
                format!(
                    "Value '{s}' at '{path}' failed to satisfy constraint: Member must satisfy enum value set: [{}]",
                    values.join(", ")
                ),
            ));
            return;
        }
    }
    let value = Value::String(s.to_string());
    check_length(shape, s.chars().count(), &value, path, v);
    if let Some(pattern) = &shape.pattern {
        if let Some(re) = compiled(pattern) {
            if !re.is_match(s) {
                v.0.push((Kind::Invalid, format!("Value '{s}' at '{path}' failed to satisfy constraint: Member must satisfy regular expression pattern: {pattern}")));
            }
        }
    }
}

/// Model patterns, compiled once. A pattern the regex crate cannot compile (look-around) is skipped.
fn compiled(pattern: &str) -> Option<Arc<Regex>> {
    static CACHE: OnceLock<Mutex<HashMap<String, Option<Arc<Regex>>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let mut map = cache.lock();
    map.entry(pattern.to_string())
        .or_insert_with(|| Regex::new(pattern).ok().map(Arc::new))
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{catalog, model::model};
    use serde_json::json;

    fn run(svc: &str, shape: &str, input: Value) -> Result<(), AwsError> {
        validate(
            model(svc).expect("model"),
            catalog::by_name(svc).expect("info"),
            shape,
            &input,
        )
    }

    #[test]
    fn required_enum_length_and_type() {
        let err = run("ecs", "DescribeServicesRequest", json!({})).unwrap_err();
        assert_eq!(err.code, "InvalidParameterException");
        assert!(
            err.message.contains("Value null at 'services'"),
            "{}",
            err.message
        );

        let err = run(
            "ecs",
            "ListTasksRequest",
            json!({"desiredStatus": "SLEEPING"}),
        )
        .unwrap_err();
        assert!(
            err.message
                .contains("enum value set: [RUNNING, PENDING, STOPPED]"),
            "{}",
            err.message
        );

        let err = run("ecs", "ListClustersRequest", json!({"maxResults": "ten"})).unwrap_err();
        assert_eq!(err.code, "SerializationException");

        let err = run(
            "elbv2",
            "DescribeLoadBalancersInput",
            json!({"PageSize": 0}),
        )
        .unwrap_err();
        assert_eq!(err.code, "ValidationError");
        assert!(
            err.message.contains("greater than or equal to 1"),
            "{}",
            err.message
        );

        assert!(run("ecs", "ListClustersRequest", json!({"maxResults": 10})).is_ok());
    }

    #[test]
    fn missing_and_invalid_codes_differ_where_the_service_distinguishes_them() {
        let err = run(
            "cloudwatch",
            "PutMetricDataInput",
            json!({"MetricData": []}),
        )
        .unwrap_err();
        assert_eq!(err.code, "MissingRequiredParameterException");
        let err = run("ec2", "DescribeVpcsRequest", json!({"MaxResults": 1})).unwrap_err();
        assert_eq!(err.code, "InvalidParameterValue");
    }
}
