//! Scaling policies: PutScalingPolicy (SimpleScaling, StepScaling, TargetTrackingScaling,
//! PredictiveScaling stored), DescribePolicies, DeletePolicy, ExecutePolicy, and running a policy
//! when a CloudWatch alarm invokes it. Target tracking creates its two alarms through the
//! CloudWatch handle (the one alarm evaluator of the emulator); the capacity arithmetic is
//! Application Auto Scaling's.

use super::groups::max_records;
use super::model::{iso, Group, Policy};
use super::{group_key, sub_key, validation, AutoScaling, SVC};
use crate::protocol::codes;
use crate::protocol::AwsError;
use crate::services::application_autoscaling::{adjust, step_adjustment, tracking_capacity};
use crate::services::cloudwatch::{AlarmEvent, AlarmState};
use crate::services::input::Input;
use crate::services::{page, Ctx, HandlerResult, Registry};
use serde_json::{json, Value};
use std::sync::Arc;

pub fn register(r: &mut Registry, s: &Arc<AutoScaling>) {
    r.sync(SVC, "PutScalingPolicy", s, put_policy);
    r.sync(SVC, "DescribePolicies", s, describe_policies);
    r.sync(SVC, "DeletePolicy", s, delete_policy);
    r.sync(SVC, "ExecutePolicy", s, execute_policy);
}

/// Policies whose name starts with this are the ones ECS managed scaling puts on a group.
pub const ECS_MANAGED_PREFIX: &str = "ECSManagedAutoScalingPolicy-";

fn check(policy_type: &str, input: &Value) -> Result<(), AwsError> {
    let adj_type = input.str("AdjustmentType");
    if let Some(t) = adj_type {
        if !matches!(
            t,
            "ChangeInCapacity" | "ExactCapacity" | "PercentChangeInCapacity"
        ) {
            return Err(validation(format!("Invalid adjustment type {t}")));
        }
    }
    match policy_type {
        "SimpleScaling" => {
            if input.i64("ScalingAdjustment").is_none() {
                return Err(validation(
                    "ScalingAdjustment is required for a SimpleScaling policy.",
                ));
            }
            if adj_type.is_none() {
                return Err(validation(
                    "AdjustmentType is required for a SimpleScaling policy.",
                ));
            }
        }
        "StepScaling" => {
            let steps = input
                .get("StepAdjustments")
                .and_then(Value::as_array)
                .map(Vec::len)
                .unwrap_or(0);
            if steps == 0 {
                return Err(validation(
                    "StepAdjustments is required for a StepScaling policy.",
                ));
            }
            if adj_type.is_none() {
                return Err(validation(
                    "AdjustmentType is required for a StepScaling policy.",
                ));
            }
        }
        "TargetTrackingScaling" => {
            let Some(c) = input.get("TargetTrackingConfiguration") else {
                return Err(validation(
                    "TargetTrackingConfiguration is required for a TargetTrackingScaling policy.",
                ));
            };
            let predefined = c.get("PredefinedMetricSpecification");
            let custom = c.get("CustomizedMetricSpecification");
            if predefined.is_some() == custom.is_some() {
                return Err(validation(
                    "Exactly one of PredefinedMetricSpecification and CustomizedMetricSpecification must be specified.",
                ));
            }
            if let Some(p) = predefined {
                let t = p.str("PredefinedMetricType").unwrap_or_default();
                if t == "ALBRequestCountPerTarget" && p.str("ResourceLabel").is_none() {
                    return Err(validation(
                        "ResourceLabel is required for the predefined metric type ALBRequestCountPerTarget.",
                    ));
                }
            }
        }
        "PredictiveScaling" => {
            if input.get("PredictiveScalingConfiguration").is_none() {
                return Err(validation(
                    "PredictiveScalingConfiguration is required for a PredictiveScaling policy.",
                ));
            }
        }
        other => {
            return Err(validation(format!(
                "Invalid policy type {other}. Valid values are SimpleScaling, StepScaling, TargetTrackingScaling and PredictiveScaling."
            )))
        }
    }
    Ok(())
}

/// The metric a target tracking policy's alarms watch.
fn alarm_metric(group: &str, conf: &Value) -> Value {
    if let Some(p) = conf.get("PredefinedMetricSpecification") {
        let t = p.str("PredefinedMetricType").unwrap_or_default();
        let (ns, metric, stat, dims) = match t {
            "ALBRequestCountPerTarget" => {
                let label = p.str("ResourceLabel").unwrap_or_default();
                let tg = label
                    .split_once("/targetgroup/")
                    .map(|(_, t)| format!("targetgroup/{t}"))
                    .unwrap_or_default();
                (
                    "AWS/ApplicationELB",
                    "RequestCountPerTarget",
                    "Sum",
                    json!([{"Name": "TargetGroup", "Value": tg}]),
                )
            }
            "ASGAverageNetworkIn" => (
                "AWS/EC2",
                "NetworkIn",
                "Average",
                json!([{"Name": "AutoScalingGroupName", "Value": group}]),
            ),
            "ASGAverageNetworkOut" => (
                "AWS/EC2",
                "NetworkOut",
                "Average",
                json!([{"Name": "AutoScalingGroupName", "Value": group}]),
            ),
            _ => (
                "AWS/EC2",
                "CPUUtilization",
                "Average",
                json!([{"Name": "AutoScalingGroupName", "Value": group}]),
            ),
        };
        return json!({"Namespace": ns, "MetricName": metric, "Statistic": stat, "Dimensions": dims, "Period": 60});
    }
    let c = conf
        .get("CustomizedMetricSpecification")
        .cloned()
        .unwrap_or(Value::Null);
    if let Some(list) = c.get("Metrics").and_then(Value::as_array) {
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
        return json!({"Metrics": metrics});
    }
    let mut out = json!({
        "Namespace": c.get("Namespace"),
        "MetricName": c.get("MetricName"),
        "Dimensions": c.get("Dimensions").cloned().unwrap_or(json!([])),
        "Statistic": c.get("Statistic").cloned().unwrap_or(json!("Average")),
        "Period": c.get("Period").cloned().unwrap_or(json!(60)),
    });
    if let Some(u) = c.get("Unit") {
        out["Unit"] = u.clone();
    }
    out
}

fn create_alarms(
    s: &AutoScaling,
    ctx: &Ctx,
    group: &str,
    policy_name: &str,
    arn: &str,
    conf: &Value,
) -> Result<Vec<(String, String)>, AwsError> {
    let cw = &s.cloudwatch;
    let target = conf
        .get("TargetValue")
        .and_then(Value::as_f64)
        .unwrap_or(0.0);
    let metric = alarm_metric(group, conf);
    // ECS managed scaling scales out on one breaching minute; other policies on three.
    let high_periods = if policy_name.starts_with(ECS_MANAGED_PREFIX) {
        1
    } else {
        3
    };
    let mut specs = vec![("AlarmHigh", "GreaterThanThreshold", target, high_periods)];
    if conf.bool("DisableScaleIn") != Some(true) {
        specs.push(("AlarmLow", "LessThanThreshold", target * 0.9, 15));
    }
    let mut out: Vec<(String, String)> = Vec::new();
    for (suffix, op, threshold, periods) in specs {
        let name = format!("TargetTracking-{group}-{suffix}-{}", uuid::Uuid::new_v4());
        let mut input = metric.clone();
        input["AlarmName"] = json!(name);
        input["AlarmDescription"] = json!(format!(
            "DO NOT EDIT OR DELETE. For TargetTrackingScaling policy {arn}."
        ));
        input["ActionsEnabled"] = json!(true);
        input["AlarmActions"] = json!([arn]);
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
            let names: Vec<String> = out.iter().map(|(n, _)| n.clone()).collect();
            let _ = cw.delete_alarms(ctx, &names);
            return Err(validation(format!(
                "The target tracking alarm could not be created: {}",
                e.message
            )));
        }
        out.push((
            name.clone(),
            ctx.arn("cloudwatch", &format!("alarm:{name}")),
        ));
    }
    Ok(out)
}

fn delete_alarms(s: &AutoScaling, ctx: &Ctx, p: &Policy) {
    let names: Vec<String> = p.alarms.iter().map(|(n, _)| n.clone()).collect();
    let _ = s.cloudwatch.delete_alarms(ctx, &names);
}

pub fn put_policy(s: &AutoScaling, ctx: &Ctx, input: Value) -> HandlerResult {
    let scope = ctx.scope();
    let group = input
        .str("AutoScalingGroupName")
        .unwrap_or_default()
        .to_string();
    let name = input.str("PolicyName").unwrap_or_default().to_string();
    s.group(&scope, &group)?;
    let policy_type = input
        .str("PolicyType")
        .unwrap_or("SimpleScaling")
        .to_string();
    check(&policy_type, &input)?;
    let key = sub_key(&scope, &group, &name);
    let existing = s.policies.get(&key);
    if let Some(e) = &existing {
        if e.policy_type != policy_type {
            return Err(validation(format!(
                "The policy type of {name} cannot be changed from {} to {policy_type}.",
                e.policy_type
            )));
        }
    }
    let arn = existing.as_ref().map(|p| p.arn.clone()).unwrap_or_else(|| {
        ctx.arn(
            "autoscaling",
            &format!(
                "scalingPolicy:{}:autoScalingGroupName/{group}:policyName/{name}",
                uuid::Uuid::new_v4()
            ),
        )
    });
    let mut config = input.clone();
    if let Some(o) = config.as_object_mut() {
        o.remove("AutoScalingGroupName");
        o.remove("PolicyName");
        o.remove("PolicyType");
        o.remove("Enabled");
    }
    let mut alarms = Vec::new();
    if policy_type == "TargetTrackingScaling" {
        if let Some(old) = &existing {
            delete_alarms(s, ctx, old);
        }
        let conf = input
            .get("TargetTrackingConfiguration")
            .cloned()
            .unwrap_or(Value::Null);
        alarms = create_alarms(s, ctx, &group, &name, &arn, &conf)?;
    }
    let p = Policy {
        group: group.clone(),
        name,
        arn: arn.clone(),
        policy_type,
        config,
        alarms: alarms.clone(),
        enabled: input.bool("Enabled").unwrap_or(true),
        managed_steps: existing.as_ref().and_then(|e| e.managed_steps),
        last_run: existing.map(|e| e.last_run).unwrap_or(0.0),
    };
    s.policies.transact::<_, AwsError, _>(|t| {
        t.put(&key, p);
        Ok(())
    })?;
    Ok(json!({
        "PolicyARN": arn,
        "Alarms": alarms.iter().map(|(n, a)| json!({"AlarmName": n, "AlarmARN": a})).collect::<Vec<_>>(),
    }))
}

fn policies_in(s: &AutoScaling, scope: &str) -> Vec<Policy> {
    s.policies.read(|rows| {
        rows.range(scope.to_string()..)
            .take_while(|(k, _)| k.starts_with(scope))
            .map(|(_, p)| p.clone())
            .collect()
    })
}

pub fn describe_policies(s: &AutoScaling, ctx: &Ctx, input: Value) -> HandlerResult {
    let scope = ctx.scope();
    let group = input.str("AutoScalingGroupName").filter(|g| !g.is_empty());
    if let Some(g) = group {
        s.group(&scope, g)?;
    }
    let names = input.string_list("PolicyNames");
    let types = input.string_list("PolicyTypes");
    let rows: Vec<Policy> = policies_in(s, &scope)
        .into_iter()
        .filter(|p| group.is_none_or(|g| g == p.group))
        .filter(|p| names.is_empty() || names.contains(&p.name) || names.contains(&p.arn))
        .filter(|p| types.is_empty() || types.contains(&p.policy_type))
        .collect();
    let (page, next) = page::page(
        rows,
        |p| format!("{}\u{1}{}", p.group, p.name),
        input.str("NextToken"),
        max_records(&input, 50)?,
        codes::autoscaling::InvalidNextToken,
    )?;
    let mut out =
        json!({"ScalingPolicies": page.iter().map(|p| p.to_json(&[])).collect::<Vec<_>>()});
    if let Some(n) = next {
        out["NextToken"] = json!(n);
    }
    Ok(out)
}

/// A policy by group and name or ARN.
fn find_policy(
    s: &AutoScaling,
    scope: &str,
    group: Option<&str>,
    name: &str,
) -> Option<(String, Policy)> {
    s.policies.read(|rows| {
        rows.range(scope.to_string()..)
            .take_while(|(k, _)| k.starts_with(scope))
            .find(|(_, p)| p.arn == name || (p.name == name && group.is_none_or(|g| g == p.group)))
            .map(|(k, p)| (k.clone(), p.clone()))
    })
}

pub fn delete_policy(s: &AutoScaling, ctx: &Ctx, input: Value) -> HandlerResult {
    let scope = ctx.scope();
    let group = input.str("AutoScalingGroupName").filter(|g| !g.is_empty());
    let name = input.str("PolicyName").unwrap_or_default();
    if let Some(g) = group {
        s.group(&scope, g)?;
    }
    let (key, p) = find_policy(s, &scope, group, name)
        .ok_or_else(|| validation(format!("Policy {name} not found")))?;
    delete_alarms(s, ctx, &p);
    s.policies.transact::<_, AwsError, _>(|t| {
        t.remove(&key);
        Ok(())
    })?;
    Ok(json!({}))
}

/// Removes a deleted group's policies and their alarms.
pub fn delete_group_policies(s: &AutoScaling, ctx: &Ctx, group: &str) -> Result<(), AwsError> {
    let scope = ctx.scope();
    let prefix = sub_key(&scope, group, "");
    let doomed: Vec<(String, Policy)> = s.policies.read(|rows| {
        rows.range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .map(|(k, p)| (k.clone(), p.clone()))
            .collect()
    });
    for (_, p) in &doomed {
        delete_alarms(s, ctx, p);
    }
    s.policies.transact(|t| {
        for (k, _) in &doomed {
            t.remove(k);
        }
        Ok(())
    })
}

/// Sets the step bounds of ECS managed scaling on the policy ECS put on a group.
pub fn set_managed_steps(
    s: &AutoScaling,
    ctx: &Ctx,
    group: &str,
    name: &str,
    min: i64,
    max: i64,
) -> Result<(), AwsError> {
    let key = sub_key(&ctx.scope(), group, name);
    s.policies.transact(|t| {
        if let Some(p) = t.get_mut(&key) {
            p.managed_steps = Some((min, max));
        }
        Ok(())
    })
}

/// ECS managed scaling's scale-out: to the instances ECS estimates the tasks need (at the
/// target capacity; when the group is empty the metric cannot say how many, the estimate can),
/// adding at least minimumScalingStepSize and at most maximumScalingStepSize instances.
pub(super) fn managed_scale_out(
    current: i64,
    value: f64,
    target: f64,
    needed: Option<i64>,
    (min, max): (i64, i64),
) -> i64 {
    let from_metric = tracking_capacity(current, value, target, true);
    let want = match needed {
        Some(m) if target > 0.0 => ((m as f64) * 100.0 / target).ceil() as i64,
        _ => from_metric,
    };
    want.clamp(current + min.max(1), current + max.max(min.max(1)))
}

/// Instances launched less than the policy's EstimatedInstanceWarmup ago (target tracking does
/// not scale in while instances warm up).
fn warming(p: &Policy, g: &Group, now: f64) -> bool {
    let Some(warmup) = p.config.i64("EstimatedInstanceWarmup") else {
        return false;
    };
    g.instances
        .values()
        .any(|m| m.counts() && now < m.launched + warmup as f64)
}

/// The capacity a policy asks for from `current`, given the breaching value and threshold
/// (None: nothing to do).
fn wanted(
    p: &Policy,
    current: i64,
    value: Option<f64>,
    threshold: Option<f64>,
    alarm: &str,
    needed: Option<i64>,
) -> Option<i64> {
    let c = &p.config;
    match p.policy_type.as_str() {
        "SimpleScaling" => Some(adjust(c, current, c.i64("ScalingAdjustment")?)),
        "StepScaling" => {
            let diff = value? - threshold?;
            Some(adjust(c, current, step_adjustment(c, diff)?))
        }
        "TargetTrackingScaling" => {
            let tt = c.get("TargetTrackingConfiguration")?;
            let target = tt.get("TargetValue").and_then(Value::as_f64)?;
            let out = alarm.contains("-AlarmHigh-");
            if !out && tt.bool("DisableScaleIn") == Some(true) {
                return None;
            }
            if let (true, Some(steps)) = (out, p.managed_steps) {
                return Some(managed_scale_out(current, value?, target, needed, steps));
            }
            Some(tracking_capacity(current, value?, target, out))
        }
        _ => None,
    }
}

/// Applies a policy's result to the group: clamped to [min, max], with the activity's cause.
fn apply(
    s: &AutoScaling,
    scope: &str,
    p: &Policy,
    now: f64,
    trigger: &str,
    want: i64,
    honor_cooldown: bool,
) -> Result<bool, AwsError> {
    let policy_key = sub_key(scope, &p.group, &p.name);
    let changed = s.update_group(scope, &p.group, |g: &mut Group| {
        let cooldown = p.config.i64("Cooldown").unwrap_or(g.default_cooldown) as f64;
        if honor_cooldown && p.policy_type == "SimpleScaling" && now < g.last_scaling + cooldown {
            return Ok(false);
        }
        let new = want.clamp(g.min, g.max);
        if new == g.desired {
            return Ok(false);
        }
        g.cause = format!(
            "At {} {trigger} triggered policy {} changing the desired capacity from {} to {new}.",
            iso(now),
            p.name,
            g.desired
        );
        g.desired = new;
        g.last_scaling = now;
        Ok(true)
    })?;
    let _ = s.policies.transact::<_, AwsError, _>(|t| {
        if let Some(x) = t.get_mut(&policy_key) {
            x.last_run = now;
        }
        Ok(())
    });
    Ok(changed)
}

pub fn execute_policy(s: &AutoScaling, ctx: &Ctx, input: Value) -> HandlerResult {
    let scope = ctx.scope();
    let group = input.str("AutoScalingGroupName").filter(|g| !g.is_empty());
    let name = input.str("PolicyName").unwrap_or_default();
    let (_, p) = find_policy(s, &scope, group, name)
        .ok_or_else(|| validation(format!("No such policy {name}")))?;
    let g = s.group(&scope, &p.group)?;
    match p.policy_type.as_str() {
        "StepScaling" => {
            if input.get("MetricValue").is_none() || input.get("BreachThreshold").is_none() {
                return Err(validation(
                    "MetricValue and BreachThreshold are required for a StepScaling policy.",
                ));
            }
        }
        "SimpleScaling" => {}
        t => {
            return Err(validation(format!(
                "ExecutePolicy is not supported for a policy of type {t}."
            )))
        }
    }
    let honor = input.bool("HonorCooldown").unwrap_or(false);
    if honor
        && ctx.now < g.last_scaling + p.config.i64("Cooldown").unwrap_or(g.default_cooldown) as f64
    {
        return Err(AwsError::new(
            codes::autoscaling::ScalingActivityInProgressFault,
            "Scaling activity in progress",
        ));
    }
    let value = input.get("MetricValue").and_then(Value::as_f64);
    let threshold = input.get("BreachThreshold").and_then(Value::as_f64);
    if let Some(want) = wanted(&p, g.desired, value, threshold, "", None) {
        apply(
            s,
            &scope,
            &p,
            ctx.now,
            "a user request execute policy",
            want,
            false,
        )?;
    }
    Ok(json!({}))
}

/// A CloudWatch alarm in ALARM invokes policy `arn` (once a minute while it stays there).
pub fn run_from_alarm(s: &AutoScaling, arn: &str, event: &AlarmEvent) -> Result<(), String> {
    if event.state != AlarmState::Alarm {
        return Ok(());
    }
    let scope = format!("{}/{}/", event.account, event.region);
    let Some((_, p)) = find_policy(s, &scope, None, arn) else {
        return Err(format!("The policy {arn} does not exist"));
    };
    if !p.enabled {
        return Ok(());
    }
    let g = s
        .groups
        .get(&group_key(&scope, &p.group))
        .ok_or_else(|| format!("AutoScalingGroup name not found - {}", p.group))?;
    if g.suspended("AlarmNotification") {
        return Ok(());
    }
    let needed = s
        .managed_needed
        .lock()
        .get(&group_key(&scope, &p.group))
        .copied();
    let Some(want) = wanted(
        &p,
        g.desired,
        event.value,
        event.threshold,
        &event.alarm_name,
        needed,
    ) else {
        return Ok(());
    };
    if want < g.desired && p.policy_type == "TargetTrackingScaling" && warming(&p, &g, event.now) {
        return Ok(());
    }
    let trigger = format!("a monitor alarm {} in state ALARM", event.alarm_name);
    apply(s, &scope, &p, event.now, &trigger, want, true)
        .map(|_| ())
        .map_err(|e| e.message)
}
