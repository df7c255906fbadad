//! PutScalingPolicy, DescribeScalingPolicies, DeleteScalingPolicy; the two CloudWatch alarms of
//! a target tracking policy, named, set and described as Application Auto Scaling does.

use super::targets::{check_dimension_has_resource, ecs_service, page_of};
use super::{no_target, target_key, validation, AlarmRef, AppAutoScaling, ScalingPolicy};
use crate::protocol::codes;
use crate::protocol::AwsError;
use crate::services::input::Input;
use crate::services::{Ctx, HandlerResult};
use serde_json::{json, Value};

/// Which predefined metric types a namespace accepts.
fn predefined_namespace(metric_type: &str) -> &'static str {
    match metric_type {
        t if t.starts_with("ECSService") => "ecs",
        "ALBRequestCountPerTarget" => "*alb",
        t if t.starts_with("DynamoDB") => "dynamodb",
        t if t.starts_with("RDS") => "rds",
        t if t.starts_with("EC2SpotFleet") => "ec2",
        t if t.starts_with("SageMaker") => "sagemaker",
        t if t.starts_with("AppStream") => "appstream",
        t if t.starts_with("Comprehend") => "comprehend",
        t if t.starts_with("Lambda") => "lambda",
        t if t.starts_with("Cassandra") => "cassandra",
        t if t.starts_with("Kafka") => "kafka",
        t if t.starts_with("ElastiCache") => "elasticache",
        t if t.starts_with("Neptune") => "neptune",
        t if t.starts_with("WorkSpaces") => "workspaces",
        _ => "",
    }
}

/// Policy types each namespace supports.
fn supports(namespace: &str, policy_type: &str) -> bool {
    match policy_type {
        "StepScaling" => !matches!(namespace, "dynamodb" | "cassandra" | "kafka" | "workspaces"),
        "TargetTrackingScaling" => namespace != "elasticmapreduce",
        "PredictiveScaling" => namespace == "ecs",
        _ => false,
    }
}

fn check_step(conf: &Value) -> Result<(), AwsError> {
    let adjustments = conf
        .get("StepAdjustments")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if adjustments.is_empty() {
        return Err(validation("StepAdjustments cannot be empty"));
    }
    if conf.str("AdjustmentType").is_none() {
        return Err(validation(
            "AdjustmentType is required for StepScaling policies",
        ));
    }
    if let Some(m) = conf.i64("MinAdjustmentMagnitude") {
        if conf.str("AdjustmentType") != Some("PercentChangeInCapacity") {
            return Err(validation(
                "MinAdjustmentMagnitude is only supported with the PercentChangeInCapacity adjustment type",
            ));
        }
        if m < 1 {
            return Err(validation("MinAdjustmentMagnitude must be greater than 0"));
        }
    }
    if conf.i64("Cooldown").is_some_and(|c| c < 0) {
        return Err(validation("Cooldown must be a non-negative number"));
    }
    // Intervals must not overlap and at most one may be unbounded at each end.
    let mut bounds: Vec<(f64, f64)> = adjustments
        .iter()
        .map(|a| {
            (
                a.get("MetricIntervalLowerBound")
                    .and_then(Value::as_f64)
                    .unwrap_or(f64::NEG_INFINITY),
                a.get("MetricIntervalUpperBound")
                    .and_then(Value::as_f64)
                    .unwrap_or(f64::INFINITY),
            )
        })
        .collect();
    for (lo, hi) in &bounds {
        if lo.is_infinite() && hi.is_infinite() && adjustments.len() > 1 {
            return Err(validation(
                "Only one step adjustment can have both bounds unspecified",
            ));
        }
        if lo >= hi {
            return Err(validation(
                "MetricIntervalLowerBound must be less than MetricIntervalUpperBound",
            ));
        }
    }
    bounds.sort_by(|a, b| a.0.total_cmp(&b.0));
    for w in bounds.windows(2) {
        if w[0].1 > w[1].0 {
            return Err(validation("Step adjustments must not overlap"));
        }
        if w[0].1 < w[1].0 {
            return Err(validation("There must be no gaps between step adjustments"));
        }
    }
    Ok(())
}

fn check_target_tracking(namespace: &str, conf: &Value) -> Result<(), AwsError> {
    let target = conf
        .get("TargetValue")
        .and_then(Value::as_f64)
        .unwrap_or(0.0);
    if target <= 0.0 || !target.is_finite() {
        return Err(validation("TargetValue must be greater than 0"));
    }
    for k in ["ScaleOutCooldown", "ScaleInCooldown"] {
        if conf.i64(k).is_some_and(|c| c < 0) {
            return Err(validation(format!("{k} must be a non-negative number")));
        }
    }
    let predefined = conf.get("PredefinedMetricSpecification");
    let customized = conf.get("CustomizedMetricSpecification");
    match (predefined, customized) {
        (Some(_), Some(_)) | (None, None) => Err(validation(
            "Exactly one of PredefinedMetricSpecification and CustomizedMetricSpecification must be specified",
        )),
        (Some(p), None) => {
            let t = p.str("PredefinedMetricType").unwrap_or_default();
            let ns = predefined_namespace(t);
            if ns == "*alb" {
                if !matches!(namespace, "ecs" | "ec2") {
                    return Err(validation(format!(
                        "Unsupported metric type {t} for service namespace {namespace}"
                    )));
                }
                let label = p.str("ResourceLabel").unwrap_or_default();
                if alb_dimensions(label).is_none() {
                    return Err(validation(format!(
                        "Invalid ResourceLabel {label}: ALBRequestCountPerTarget needs app/<load-balancer-name>/<load-balancer-id>/targetgroup/<target-group-name>/<target-group-id>"
                    )));
                }
                Ok(())
            } else if ns != namespace {
                Err(validation(format!(
                    "Unsupported metric type {t} for service namespace {namespace}"
                )))
            } else {
                Ok(())
            }
        }
        (None, Some(c)) => {
            let has_metric = c.str("MetricName").is_some() || c.str("Namespace").is_some();
            let metrics = c.get("Metrics").and_then(Value::as_array);
            match (has_metric, metrics) {
                (true, Some(_)) => Err(validation(
                    "CustomizedMetricSpecification cannot specify both MetricName and Metrics",
                )),
                (false, None) => Err(validation(
                    "CustomizedMetricSpecification must specify MetricName, Namespace and Statistic, or Metrics",
                )),
                (true, None) => {
                    if c.str("MetricName").is_none()
                        || c.str("Namespace").is_none()
                        || c.str("Statistic").is_none()
                    {
                        return Err(validation(
                            "CustomizedMetricSpecification must specify MetricName, Namespace and Statistic",
                        ));
                    }
                    Ok(())
                }
                (false, Some(list)) => {
                    let returning = list
                        .iter()
                        .filter(|q| q.bool("ReturnData").unwrap_or(true))
                        .count();
                    if returning != 1 {
                        return Err(validation(
                            "Exactly one metric data query must return data (ReturnData true)",
                        ));
                    }
                    Ok(())
                }
            }
        }
    }
}

/// ResourceLabel "app/<lb>/<id>/targetgroup/<tg>/<id>" → (LoadBalancer, TargetGroup) dimensions.
pub(crate) fn alb_dimensions(label: &str) -> Option<(String, String)> {
    let parts: Vec<&str> = label.split('/').collect();
    if parts.len() != 6 || parts[0] != "app" || parts[3] != "targetgroup" {
        return None;
    }
    if parts.iter().any(|p| p.is_empty()) {
        return None;
    }
    Some((parts[..3].join("/"), parts[3..].join("/")))
}

/// The alarm's metric part (MetricName/Namespace/Dimensions/Statistic/Unit, or Metrics).
fn alarm_metric(resource_id: &str, conf: &Value) -> Value {
    if let Some(p) = conf.get("PredefinedMetricSpecification") {
        let t = p.str("PredefinedMetricType").unwrap_or_default();
        if t == "ALBRequestCountPerTarget" {
            let (_, tg) =
                alb_dimensions(p.str("ResourceLabel").unwrap_or_default()).unwrap_or_default();
            return json!({
                "Namespace": "AWS/ApplicationELB",
                "MetricName": "RequestCountPerTarget",
                "Dimensions": [{"Name": "TargetGroup", "Value": tg}],
                "Statistic": "Sum",
                "Period": 60,
            });
        }
        let (cluster, service) = ecs_service(resource_id).unwrap_or_default();
        let metric = if t.contains("Memory") {
            "MemoryUtilization"
        } else {
            "CPUUtilization"
        };
        let period = if t.ends_with("HighResolution") {
            10
        } else {
            60
        };
        return json!({
            "Namespace": "AWS/ECS",
            "MetricName": metric,
            "Dimensions": [
                {"Name": "ClusterName", "Value": cluster},
                {"Name": "ServiceName", "Value": service},
            ],
            "Statistic": "Average",
            "Unit": "Percent",
            "Period": period,
        });
    }
    let c = conf
        .get("CustomizedMetricSpecification")
        .cloned()
        .unwrap_or(Value::Null);
    if let Some(list) = c.get("Metrics").and_then(Value::as_array) {
        // Alarms need a period on each MetricStat: target tracking evaluates per minute.
        let metrics: Vec<Value> = list
            .iter()
            .map(|q| {
                let mut q = q.clone();
                if let Some(ms) = q.get_mut("MetricStat").and_then(Value::as_object_mut) {
                    ms.entry("Period").or_insert(json!(60));
                }
                q
            })
            .collect();
        return json!({ "Metrics": metrics });
    }
    let mut out = json!({
        "Namespace": c.get("Namespace"),
        "MetricName": c.get("MetricName"),
        "Dimensions": c.get("Dimensions").cloned().unwrap_or(json!([])),
        "Statistic": c.get("Statistic"),
        "Period": 60,
    });
    if let Some(u) = c.get("Unit") {
        out["Unit"] = u.clone();
    }
    out
}

impl AppAutoScaling {
    /// Creates the AlarmHigh and (unless DisableScaleIn) AlarmLow alarms of a target tracking
    /// policy: at the target over 3 one-minute periods, and at 90 % of it over 15.
    fn create_alarms(
        &self,
        ctx: &Ctx,
        resource_id: &str,
        policy_arn: &str,
        conf: &Value,
    ) -> Result<Vec<AlarmRef>, AwsError> {
        let cw = &self.cloudwatch;
        let target = conf
            .get("TargetValue")
            .and_then(Value::as_f64)
            .unwrap_or(0.0);
        let metric = alarm_metric(resource_id, conf);
        let description =
            format!("DO NOT EDIT OR DELETE. For TargetTrackingScaling policy {policy_arn}.");
        let mut specs = vec![("AlarmHigh", "GreaterThanThreshold", target, 3)];
        if conf.bool("DisableScaleIn") != Some(true) {
            specs.push(("AlarmLow", "LessThanThreshold", target * 0.9, 15));
        }
        let mut refs = Vec::new();
        for (suffix, op, threshold, periods) in specs {
            let name = format!(
                "TargetTracking-{resource_id}-{suffix}-{}",
                uuid::Uuid::new_v4()
            );
            let mut input = metric.clone();
            input["AlarmName"] = json!(name);
            input["AlarmDescription"] = json!(description);
            input["ActionsEnabled"] = json!(true);
            input["AlarmActions"] = json!([policy_arn]);
            input["ComparisonOperator"] = json!(op);
            input["Threshold"] = json!(threshold);
            input["EvaluationPeriods"] = json!(periods);
            input["DatapointsToAlarm"] = json!(periods);
            if input.get("Metrics").is_some() {
                if let Some(o) = input.as_object_mut() {
                    o.remove("Period");
                }
            }
            if let Err(e) = cw.put_metric_alarm(ctx, input) {
                let names: Vec<String> = refs.iter().map(|r: &AlarmRef| r.name.clone()).collect();
                let _ = cw.delete_alarms(ctx, &names);
                return Err(validation(format!(
                    "The target tracking alarm could not be created: {}",
                    e.message
                )));
            }
            refs.push(AlarmRef {
                arn: ctx.arn("cloudwatch", &format!("alarm:{name}")),
                name,
            });
        }
        Ok(refs)
    }

    /// Deletes a policy and the alarms it created.
    pub(crate) fn remove_policy(
        &self,
        ctx: &Ctx,
        target: &str,
        name: &str,
    ) -> Result<(), AwsError> {
        let key = format!("{target}|{name}");
        let removed = self
            .policies
            .transact::<_, AwsError, _>(|tx| Ok(tx.remove(&key)))?;
        if let Some(p) = removed {
            let names: Vec<String> = p.alarms.into_iter().map(|a| a.name).collect();
            self.cloudwatch.delete_alarms(ctx, &names)?;
        }
        Ok(())
    }
}

pub fn put_scaling_policy(s: &AppAutoScaling, ctx: &Ctx, input: Value) -> HandlerResult {
    let name = input.str("PolicyName").unwrap_or_default().to_string();
    let namespace = input
        .str("ServiceNamespace")
        .unwrap_or_default()
        .to_string();
    let resource_id = input.str("ResourceId").unwrap_or_default().to_string();
    let dim = input
        .str("ScalableDimension")
        .unwrap_or_default()
        .to_string();
    let policy_type = input.str("PolicyType").unwrap_or("StepScaling").to_string();
    let tkey = target_key(&ctx.scope(), &namespace, &resource_id, &dim);
    if !s.targets.contains(&tkey) {
        return Err(no_target(&namespace, &resource_id, &dim));
    }
    if !supports(&namespace, &policy_type) {
        return Err(validation(format!(
            "Unsupported policy type {policy_type} for scalable dimension {dim}"
        )));
    }
    let conf_key = match policy_type.as_str() {
        "StepScaling" => "StepScalingPolicyConfiguration",
        "TargetTrackingScaling" => "TargetTrackingScalingPolicyConfiguration",
        _ => "PredictiveScalingPolicyConfiguration",
    };
    let conf = input.get(conf_key).cloned().ok_or_else(|| {
        validation(format!(
            "{conf_key} is required for policy type {policy_type}"
        ))
    })?;
    for other in [
        "StepScalingPolicyConfiguration",
        "TargetTrackingScalingPolicyConfiguration",
        "PredictiveScalingPolicyConfiguration",
    ] {
        if other != conf_key && input.get(other).is_some() {
            return Err(validation(format!(
                "{other} cannot be specified for policy type {policy_type}"
            )));
        }
    }
    match policy_type.as_str() {
        "StepScaling" => check_step(&conf)?,
        "TargetTrackingScaling" => check_target_tracking(&namespace, &conf)?,
        _ => {}
    }
    let key = format!("{tkey}|{name}");
    let existing = s.policies.get(&key);
    let arn = existing.as_ref().map(|p| p.arn.clone()).unwrap_or_else(|| {
        ctx.arn(
            "autoscaling",
            &format!(
                "scalingPolicy:{}:resource/{namespace}/{resource_id}:policyName/{name}",
                uuid::Uuid::new_v4()
            ),
        )
    });
    // An update replaces the policy's alarms.
    if let Some(old) = &existing {
        let names: Vec<String> = old.alarms.iter().map(|a| a.name.clone()).collect();
        s.cloudwatch.delete_alarms(ctx, &names)?;
    }
    let alarms = if policy_type == "TargetTrackingScaling" {
        s.create_alarms(ctx, &resource_id, &arn, &conf)?
    } else {
        Vec::new()
    };
    let policy = ScalingPolicy {
        name,
        arn: arn.clone(),
        namespace,
        resource_id,
        dimension: dim,
        policy_type,
        configuration: conf,
        alarms: alarms.clone(),
        created: existing.map(|p| p.created).unwrap_or(ctx.now),
    };
    let stored = s.policies.transact(|tx| {
        tx.put(&key, policy);
        Ok(())
    });
    if let Err(e) = stored {
        let names: Vec<String> = alarms.iter().map(|a| a.name.clone()).collect();
        let _ = s.cloudwatch.delete_alarms(ctx, &names);
        return Err(e);
    }
    Ok(json!({
        "PolicyARN": arn,
        "Alarms": alarms.iter().map(|a| json!({"AlarmName": a.name, "AlarmARN": a.arn})).collect::<Vec<_>>(),
    }))
}

impl ScalingPolicy {
    pub fn describe(&self) -> Value {
        let mut out = json!({
            "PolicyARN": self.arn,
            "PolicyName": self.name,
            "ServiceNamespace": self.namespace,
            "ResourceId": self.resource_id,
            "ScalableDimension": self.dimension,
            "PolicyType": self.policy_type,
            "Alarms": self.alarms.iter().map(|a| json!({"AlarmName": a.name, "AlarmARN": a.arn})).collect::<Vec<_>>(),
            "CreationTime": self.created,
        });
        let key = match self.policy_type.as_str() {
            "StepScaling" => "StepScalingPolicyConfiguration",
            "TargetTrackingScaling" => "TargetTrackingScalingPolicyConfiguration",
            _ => "PredictiveScalingPolicyConfiguration",
        };
        out[key] = self.configuration.clone();
        out
    }
}

pub fn describe_scaling_policies(s: &AppAutoScaling, ctx: &Ctx, input: Value) -> HandlerResult {
    let namespace = input.str("ServiceNamespace").unwrap_or_default();
    let names = input.string_list("PolicyNames");
    let resource_id = input.str("ResourceId");
    let dim = input.str("ScalableDimension");
    check_dimension_has_resource(&input)?;
    let rows: Vec<(String, ScalingPolicy)> = s
        .policies
        .scan(&format!("{}{namespace}|", ctx.scope()))
        .into_iter()
        .filter(|(_, p)| names.is_empty() || names.contains(&p.name))
        .filter(|(_, p)| resource_id.is_none_or(|r| p.resource_id == r))
        .filter(|(_, p)| dim.is_none_or(|d| p.dimension == d))
        .collect();
    page_of(&input, "ScalingPolicies", rows, ScalingPolicy::describe)
}

pub fn delete_scaling_policy(s: &AppAutoScaling, ctx: &Ctx, input: Value) -> HandlerResult {
    let name = input.str("PolicyName").unwrap_or_default();
    let namespace = input.str("ServiceNamespace").unwrap_or_default();
    let resource_id = input.str("ResourceId").unwrap_or_default();
    let dim = input.str("ScalableDimension").unwrap_or_default();
    let tkey = target_key(&ctx.scope(), namespace, resource_id, dim);
    if !s.policies.contains(&format!("{tkey}|{name}")) {
        return Err(AwsError::new(codes::application_autoscaling::ObjectNotFoundException,
            format!(
                "No scaling policy found for service namespace: {namespace}, resource ID: {resource_id}, scalable dimension: {dim}, policy name: {name}"
            ),
        ));
    }
    s.remove_policy(ctx, &tkey, name)?;
    Ok(json!({}))
}

/// Predictive scaling forecasts need a model of the metric's history, which is not built here:
/// the answer names the policy and carries no forecast.
pub fn get_predictive_scaling_forecast(
    s: &AppAutoScaling,
    ctx: &Ctx,
    input: Value,
) -> HandlerResult {
    let name = input.str("PolicyName").unwrap_or_default();
    let namespace = input.str("ServiceNamespace").unwrap_or_default();
    let resource_id = input.str("ResourceId").unwrap_or_default();
    let dim = input.str("ScalableDimension").unwrap_or_default();
    let tkey = target_key(&ctx.scope(), namespace, resource_id, dim);
    let policy = s
        .policies
        .get(&format!("{tkey}|{name}"))
        .ok_or_else(|| validation(format!("No scaling policy found: {name}")))?;
    if policy.policy_type != "PredictiveScaling" {
        return Err(validation(format!(
            "Policy {name} is not a PredictiveScaling policy"
        )));
    }
    Ok(json!({
        "LoadForecast": [],
        "CapacityForecast": {"Timestamps": [], "Values": []},
        "UpdateTime": ctx.now,
    }))
}
