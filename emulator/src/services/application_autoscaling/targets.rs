//! RegisterScalableTarget, DescribeScalableTargets, DeregisterScalableTarget and the tag
//! operations (scalable targets are the taggable resource).

use super::{no_target, target_key, validation, AppAutoScaling, ScalableTarget, Suspended};
use crate::protocol::codes;
use crate::protocol::AwsError;
use crate::services::input::Input;
use crate::services::{page, random_hex, Ctx, HandlerResult};
use serde_json::{json, Value};

const MAX_TAGS: usize = 50;

/// `service/<cluster>/<service>` → (cluster, service).
pub(crate) fn ecs_service(resource_id: &str) -> Option<(&str, &str)> {
    let rest = resource_id.strip_prefix("service/")?;
    let (cluster, service) = rest.split_once('/')?;
    (!cluster.is_empty() && !service.is_empty() && !service.contains('/'))
        .then_some((cluster, service))
}

/// The namespace, resource id and dimension of a request, checked together.
pub(crate) fn check_resource(
    s: &AppAutoScaling,
    ctx: &Ctx,
    input: &Value,
) -> Result<(String, String, String), AwsError> {
    let namespace = input
        .str("ServiceNamespace")
        .unwrap_or_default()
        .to_string();
    let resource_id = input.str("ResourceId").unwrap_or_default().to_string();
    let dim = input
        .str("ScalableDimension")
        .unwrap_or_default()
        .to_string();
    if dim.split(':').next() != Some(namespace.as_str()) {
        return Err(validation(format!(
            "Unsupported scalable dimension {dim} for service namespace {namespace}"
        )));
    }
    if namespace == "ecs" {
        let (cluster, service) = ecs_service(&resource_id).ok_or_else(|| {
            validation(format!(
                "Unsupported resource ID {resource_id}: an ECS service's resource ID is service/<cluster name>/<service name>"
            ))
        })?;
        let exists = s
            .ecs
            .desired_count(&ctx.scope(), cluster, service)
            .is_some();
        if !exists {
            return Err(validation(format!(
                "ECS service doesn't exist: {resource_id}"
            )));
        }
    }
    Ok((namespace, resource_id, dim))
}

fn default_role(ctx: &Ctx, namespace: &str) -> String {
    let (host, suffix) = match namespace {
        "ecs" => ("ecs", "ECSService"),
        "dynamodb" => ("dynamodb", "DynamoDBTable"),
        "ec2" => ("ec2", "EC2SpotFleetRequest"),
        "rds" => ("rds", "RDSCluster"),
        "lambda" => ("lambda", "LambdaConcurrency"),
        "sagemaker" => ("sagemaker", "SageMakerEndpoint"),
        other => (other, "CustomResource"),
    };
    format!(
        "arn:aws:iam::{}:role/aws-service-role/{host}.application-autoscaling.amazonaws.com/AWSServiceRoleForApplicationAutoScaling_{suffix}",
        ctx.account
    )
}

fn suspended(input: &Value, current: &Suspended) -> Suspended {
    let Some(s) = input.get("SuspendedState") else {
        return current.clone();
    };
    Suspended {
        dynamic_in: s
            .bool("DynamicScalingInSuspended")
            .unwrap_or(current.dynamic_in),
        dynamic_out: s
            .bool("DynamicScalingOutSuspended")
            .unwrap_or(current.dynamic_out),
        scheduled: s
            .bool("ScheduledScalingSuspended")
            .unwrap_or(current.scheduled),
    }
}

pub fn register_scalable_target(s: &AppAutoScaling, ctx: &Ctx, input: Value) -> HandlerResult {
    let (namespace, resource_id, dim) = check_resource(s, ctx, &input)?;
    let key = target_key(&ctx.scope(), &namespace, &resource_id, &dim);
    let min = input.i64("MinCapacity");
    let max = input.i64("MaxCapacity");
    if min.is_some_and(|m| m < 0) || max.is_some_and(|m| m < 0) {
        return Err(validation("Capacity must be a non-negative number."));
    }
    let tags: Vec<(String, String)> = input
        .get("Tags")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default();
    let target = s.targets.transact(|tx| {
        let mut t = match tx.get(&key) {
            Some(t) => t.clone(),
            None => {
                if min.is_none() || max.is_none() {
                    return Err(validation(
                        "MinCapacity and MaxCapacity are required for registering a new scalable target.",
                    ));
                }
                ScalableTarget {
                    namespace: namespace.clone(),
                    resource_id: resource_id.clone(),
                    dimension: dim.clone(),
                    role_arn: default_role(ctx, &namespace),
                    arn: ctx.arn(
                        "application-autoscaling",
                        &format!("scalable-target/{}", random_hex(36)),
                    ),
                    created: ctx.now,
                    ..Default::default()
                }
            }
        };
        if let Some(m) = min {
            t.min = m;
        }
        if let Some(m) = max {
            t.max = m;
        }
        if t.min > t.max {
            return Err(validation(
                "Minimum capacity cannot be greater than maximum capacity",
            ));
        }
        if let Some(r) = input.str("RoleARN") {
            t.role_arn = r.to_string();
        }
        t.suspended = suspended(&input, &t.suspended);
        for (k, v) in &tags {
            t.tags.insert(k.clone(), v.clone());
        }
        if t.tags.len() > MAX_TAGS {
            return Err(AwsError::new(codes::application_autoscaling::TooManyTagsException,
                format!("A resource can have at most {MAX_TAGS} tags."),
            ));
        }
        tx.put(&key, t.clone());
        Ok(t)
    })?;
    let cause_min = min.map(|m| format!("minimum capacity was set to {m}"));
    let cause_max = max.map(|m| format!("maximum capacity was set to {m}"));
    s.enforce_bounds(ctx, &key, cause_min.as_deref(), cause_max.as_deref());
    Ok(json!({ "ScalableTargetARN": target.arn }))
}

impl ScalableTarget {
    pub fn describe(&self) -> Value {
        json!({
            "ServiceNamespace": self.namespace,
            "ResourceId": self.resource_id,
            "ScalableDimension": self.dimension,
            "MinCapacity": self.min,
            "MaxCapacity": self.max,
            "RoleARN": self.role_arn,
            "CreationTime": self.created,
            "SuspendedState": {
                "DynamicScalingInSuspended": self.suspended.dynamic_in,
                "DynamicScalingOutSuspended": self.suspended.dynamic_out,
                "ScheduledScalingSuspended": self.suspended.scheduled,
            },
            "ScalableTargetARN": self.arn,
        })
    }
}

pub(crate) fn max_results(input: &Value) -> usize {
    input.i64("MaxResults").unwrap_or(50).clamp(1, 50) as usize
}

/// The page of `rows` (keyed, in key order) that NextToken/MaxResults ask for, as
/// `{member: [describe(row)…], "NextToken": …}`: the shape of every Describe* answer here.
pub(crate) fn page_of<T>(
    input: &Value,
    member: &str,
    rows: Vec<(String, T)>,
    describe: impl Fn(&T) -> Value,
) -> HandlerResult {
    let (page, next) = page::page(
        rows,
        |(k, _)| k.clone(),
        input.str("NextToken"),
        max_results(input),
        codes::application_autoscaling::InvalidNextTokenException,
    )?;
    let mut out = json!({ member: page.iter().map(|(_, t)| describe(t)).collect::<Vec<_>>() });
    if let Some(n) = next {
        out["NextToken"] = json!(n);
    }
    Ok(out)
}

/// DescribeScalingPolicies and DescribeScheduledActions refuse a dimension without a resource.
pub(crate) fn check_dimension_has_resource(input: &Value) -> Result<(), crate::protocol::AwsError> {
    if input.str("ScalableDimension").is_some() && input.str("ResourceId").is_none() {
        return Err(super::validation(
            "If you specify a scalable dimension, you must also specify a resource ID",
        ));
    }
    Ok(())
}

pub fn describe_scalable_targets(s: &AppAutoScaling, ctx: &Ctx, input: Value) -> HandlerResult {
    let namespace = input.str("ServiceNamespace").unwrap_or_default();
    let ids = input.string_list("ResourceIds");
    let dim = input.str("ScalableDimension");
    let rows: Vec<(String, ScalableTarget)> = s
        .targets
        .scan(&format!("{}{namespace}|", ctx.scope()))
        .into_iter()
        .filter(|(_, t)| ids.is_empty() || ids.contains(&t.resource_id))
        .filter(|(_, t)| dim.is_none_or(|d| t.dimension == d))
        .collect();
    page_of(&input, "ScalableTargets", rows, ScalableTarget::describe)
}

pub fn deregister_scalable_target(s: &AppAutoScaling, ctx: &Ctx, input: Value) -> HandlerResult {
    let namespace = input.str("ServiceNamespace").unwrap_or_default();
    let resource_id = input.str("ResourceId").unwrap_or_default();
    let dim = input.str("ScalableDimension").unwrap_or_default();
    let key = target_key(&ctx.scope(), namespace, resource_id, dim);
    if !s.targets.contains(&key) {
        return Err(no_target(namespace, resource_id, dim));
    }
    // Its policies (and their alarms) and scheduled actions go with it.
    let policies: Vec<String> = s
        .policies
        .scan(&format!("{key}|"))
        .into_iter()
        .map(|(_, p)| p.name)
        .collect();
    for name in policies {
        s.remove_policy(ctx, &key, &name)?;
    }
    s.scheduled.transact::<_, AwsError, _>(|tx| {
        for k in tx.keys(&format!("{key}|")) {
            tx.remove(&k);
        }
        Ok(())
    })?;
    s.targets.transact::<_, AwsError, _>(|tx| {
        tx.remove(&key);
        Ok(())
    })?;
    Ok(json!({}))
}

/// The target an ARN names, in the caller's scope.
fn target_by_arn(s: &AppAutoScaling, ctx: &Ctx, arn: &str) -> Result<String, AwsError> {
    s.targets
        .scan(&ctx.scope())
        .into_iter()
        .find(|(_, t)| t.arn == arn)
        .map(|(k, _)| k)
        .ok_or_else(|| {
            let mut e = AwsError::new(
                codes::application_autoscaling::ResourceNotFoundException,
                format!("Resource not found: {arn}"),
            );
            let mut fields = serde_json::Map::new();
            fields.insert("ResourceName".into(), json!(arn));
            e.fields = Some(Box::new(fields));
            e
        })
}

pub fn tag_resource(s: &AppAutoScaling, ctx: &Ctx, input: Value) -> HandlerResult {
    let arn = input.str("ResourceARN").unwrap_or_default();
    let key = target_by_arn(s, ctx, arn)?;
    let tags = input
        .get("Tags")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    s.targets.transact(|tx| {
        let Some(t) = tx.get_mut(&key) else {
            return Ok(());
        };
        for (k, v) in &tags {
            t.tags
                .insert(k.clone(), v.as_str().unwrap_or_default().to_string());
        }
        if t.tags.len() > MAX_TAGS {
            let mut e = AwsError::new(
                codes::application_autoscaling::TooManyTagsException,
                format!("A resource can have at most {MAX_TAGS} tags."),
            );
            let mut fields = serde_json::Map::new();
            fields.insert("ResourceName".into(), json!(arn));
            e.fields = Some(Box::new(fields));
            return Err(e);
        }
        Ok(())
    })?;
    Ok(json!({}))
}

pub fn untag_resource(s: &AppAutoScaling, ctx: &Ctx, input: Value) -> HandlerResult {
    let key = target_by_arn(s, ctx, input.str("ResourceARN").unwrap_or_default())?;
    let keys = input.string_list("TagKeys");
    s.targets.transact::<_, AwsError, _>(|tx| {
        if let Some(t) = tx.get_mut(&key) {
            for k in &keys {
                t.tags.remove(k);
            }
        }
        Ok(())
    })?;
    Ok(json!({}))
}

pub fn list_tags_for_resource(s: &AppAutoScaling, ctx: &Ctx, input: Value) -> HandlerResult {
    let key = target_by_arn(s, ctx, input.str("ResourceARN").unwrap_or_default())?;
    let tags = s.targets.get(&key).map(|t| t.tags).unwrap_or_default();
    Ok(json!({ "Tags": tags }))
}
