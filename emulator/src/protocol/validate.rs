//! Input validation from the model: required members, types, enums, lengths, ranges, patterns.
//! Runs once, before any handler, and answers with the service's own bad-input error.

use super::catalog::ServiceInfo;
use super::error::AwsError;
use super::model::{is_non_finite_name, ServiceModel, Shape, ShapeType};
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

/// Where a service's own validation differs from the model's constraints.
#[derive(Clone, Copy)]
struct Rules {
    /// Whether members bound to the request path (URI labels) are checked against their
    /// patterns. EFS does not check them: a malformed id in the path ("fs-2394287") is looked up
    /// and answers the resource's 404 not-found error, as AWS does.
    path_patterns: bool,
    /// Whether patterns are checked at this point of the input.
    patterns: bool,
}

/// Checks `input` against the operation's input shape.
pub fn validate(
    model: &ServiceModel,
    info: &ServiceInfo,
    shape_name: &str,
    input: &Value,
) -> Result<(), AwsError> {
    let mut v = Violations(Vec::new());
    let rules = Rules {
        path_patterns: info.name != "efs",
        patterns: true,
    };
    check(model, rules, shape_name, input, "", &mut v);
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

fn check(
    model: &ServiceModel,
    rules: Rules,
    shape_name: &str,
    value: &Value,
    path: &str,
    v: &mut Violations,
) {
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
            value.is_number() || value.as_str().is_some_and(is_non_finite_name)
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
        ShapeType::Structure => check_structure(model, rules, shape, value, path, v),
        ShapeType::List => {
            if let Some(items) = value.as_array() {
                check_length(shape, items.len(), value, path, v);
                if let Some(member) = &shape.member {
                    for (i, item) in items.iter().enumerate() {
                        check(
                            model,
                            rules,
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
                            rules,
                            &key.shape,
                            &Value::String(k.clone()),
                            &format!("{path}.key"),
                            v,
                        );
                    }
                    if let Some(val) = &shape.value {
                        check(model, rules, &val.shape, item, &format!("{path}.{k}"), v);
                    }
                }
            }
        }
        ShapeType::String => {
            if let Some(s) = value.as_str() {
                check_string(shape, rules, s, path, v);
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
    rules: Rules,
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
            let in_path = member.location.as_deref() == Some("uri");
            let rules = Rules {
                patterns: rules.patterns && (rules.path_patterns || !in_path),
                ..rules
            };
            check(
                model,
                rules,
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

fn check_string(shape: &Shape, rules: Rules, s: &str, path: &str, v: &mut Violations) {
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
    if let Some(pattern) = shape.pattern.as_ref().filter(|_| rules.patterns) {
        if let Some(re) = compiled(pattern) {
            if !re.is_match(s) {
                v.0.push((Kind::Invalid, format!("Value '{s}' at '{path}' failed to satisfy constraint: Member must satisfy regular expression pattern: {pattern}")));
            }
        }
    }
}

/// Model patterns, compiled once, matched against the whole value: AWS's validators match a
/// pattern as Java's `Pattern.matches` does, so `[a-z0-9]+` refuses "tesT" although the model
/// writes no anchors. A pattern the regex crate cannot compile (look-around, lone surrogates)
/// is skipped.
fn compiled(pattern: &str) -> Option<Arc<Regex>> {
    static CACHE: OnceLock<Mutex<HashMap<String, Option<Arc<Regex>>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let mut map = cache.lock();
    map.entry(pattern.to_string())
        .or_insert_with(|| Regex::new(&anchored(pattern)).ok().map(Arc::new))
        .clone()
}

/// The pattern as a whole-value match.
fn anchored(pattern: &str) -> String {
    format!("^(?:{pattern})$")
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

#[cfg(test)]
mod pattern_tests {
    use super::*;
    use crate::protocol::{catalog, model::model, model::model_names};
    use serde_json::json;

    fn run(svc: &str, shape: &str, input: Value) -> Result<(), AwsError> {
        validate(
            model(svc).expect("model"),
            catalog::by_name(svc).expect("info"),
            shape,
            &input,
        )
    }

    /// Anchoring never costs a pattern: every model pattern that compiles as written also
    /// compiles as a whole-value match.
    #[test]
    fn every_model_pattern_compiles_anchored() {
        for name in model_names() {
            let m = model(name).expect("model");
            for (shape, s) in &m.shapes {
                if let Some(p) = &s.pattern {
                    assert_eq!(
                        Regex::new(p).is_ok(),
                        Regex::new(&anchored(p)).is_ok(),
                        "{name} {shape}: {p}"
                    );
                }
            }
        }
    }

    /// Documented values of each service's patterned members pass; a value that only contains a
    /// match is refused with AWS's message (ECR's "tesT").
    #[test]
    fn patterns_match_whole_values_in_every_service() {
        // (service, input shape, member, a valid input, the same input with a bad value)
        let cases = [
            (
                "ecr",
                "CreateRepositoryRequest",
                "repositoryName",
                json!({"repositoryName": "project-a/nginx-web-app"}),
                json!({"repositoryName": "tesT"}),
            ),
            (
                "iam",
                "CreateRoleRequest",
                "roleName",
                json!({"RoleName": "Test-Role", "AssumeRolePolicyDocument": "{}"}),
                json!({"RoleName": "Test Role", "AssumeRolePolicyDocument": "{}"}),
            ),
            (
                "logs",
                "CreateLogGroupRequest",
                "logGroupName",
                json!({"logGroupName": "/ecs/web"}),
                json!({"logGroupName": "my group"}),
            ),
            (
                "sts",
                "AssumeRoleRequest",
                "roleSessionName",
                json!({"RoleArn": "arn:aws:iam::123456789012:role/demo", "RoleSessionName": "testAssumeRoleSession"}),
                json!({"RoleArn": "arn:aws:iam::123456789012:role/demo", "RoleSessionName": "test session"}),
            ),
            (
                "ssm",
                "DeleteAssociationRequest",
                "associationId",
                json!({"AssociationId": "fa94c678-85c6-4d40-926b-7c791ab0c1d2"}),
                json!({"AssociationId": "x-fa94c678-85c6-4d40-926b-7c791ab0c1d2-x"}),
            ),
            (
                "cloudwatch",
                "ListMetricsInput",
                "namespace",
                json!({"Namespace": "AWS/EC2"}),
                json!({"Namespace": ":AWS/EC2"}),
            ),
            (
                "autoscaling",
                "CompleteLifecycleActionType",
                "lifecycleHookName",
                json!({"LifecycleHookName": "my-lifecycle-hook", "AutoScalingGroupName": "my-asg", "LifecycleActionResult": "CONTINUE"}),
                json!({"LifecycleHookName": "my lifecycle hook", "AutoScalingGroupName": "my-asg", "LifecycleActionResult": "CONTINUE"}),
            ),
            (
                "servicediscovery",
                "RegisterInstanceRequest",
                "instanceId",
                json!({"ServiceId": "srv-e4anhexample0004", "InstanceId": "i-abcd1234", "Attributes": {}}),
                json!({"ServiceId": "srv-e4anhexample0004", "InstanceId": "i abcd1234", "Attributes": {}}),
            ),
            (
                "elbv2",
                "CreateTrustStoreInput",
                "name",
                json!({"Name": "my-trust-store", "CaCertificatesBundleS3Bucket": "b", "CaCertificatesBundleS3Key": "k"}),
                json!({"Name": "my_trust_store", "CaCertificatesBundleS3Bucket": "b", "CaCertificatesBundleS3Key": "k"}),
            ),
            (
                "application-autoscaling",
                "ListTagsForResourceRequest",
                "resourceARN",
                json!({"ResourceARN": "arn:aws:application-autoscaling:us-west-2:123456789012:scalable-target/1234abcd56ab78cd901ef1234567890ab123"}),
                json!({"ResourceARN": "arn:aws:application-autoscaling:us-west-2:123456789012:scalable-target/1234_abcd"}),
            ),
            (
                "efs",
                "CreateMountTargetRequest",
                "subnetId",
                json!({"FileSystemId": "fs-01234567", "SubnetId": "subnet-0123456789abcdef0"}),
                json!({"FileSystemId": "fs-01234567", "SubnetId": "subnet-0123456789abcdef0-x"}),
            ),
        ];
        for (svc, shape, member, good, bad) in cases {
            assert!(run(svc, shape, good.clone()).is_ok(), "{svc} {good}");
            let err = run(svc, shape, bad.clone()).expect_err(&format!("{svc} {bad}"));
            assert_eq!(
                err.code,
                catalog::by_name(svc).expect("info").bad_input.invalid,
                "{svc}"
            );
            assert!(
                err.message.starts_with("1 validation error detected: Value '")
                    && err.message.contains(&format!("' at '{member}' failed to satisfy constraint: Member must satisfy regular expression pattern: ")),
                "{svc}: {}",
                err.message
            );
        }
        let err = run(
            "ecr",
            "CreateRepositoryRequest",
            json!({"repositoryName": "tesT"}),
        )
        .expect_err("tesT");
        assert_eq!(err.message, "1 validation error detected: Value 'tesT' at 'repositoryName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*(\\/[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*)*");
    }

    /// EFS looks a malformed id in the request path up (404 FileSystemNotFound, as AWS answers
    /// "fs-2394287"); ids in the body or query string are still checked.
    #[test]
    fn efs_path_ids_are_not_pattern_checked() {
        assert!(run(
            "efs",
            "DeleteFileSystemRequest",
            json!({"FileSystemId": "fs-2394287"})
        )
        .is_ok());
        let err = run(
            "efs",
            "CreateMountTargetRequest",
            json!({"FileSystemId": "fs-01234567", "SubnetId": "subnet-1"}),
        )
        .expect_err("body id");
        assert_eq!(err.code, "BadRequest");
    }
}
