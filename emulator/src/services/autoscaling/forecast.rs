//! GetPredictiveScalingForecast for PredictiveScaling policies (which are stored, never run).
//!
//! AWS forecasts from up to 14 days of history with machine learning. The emulator's forecast is
//! flat: every hour of [StartTime, EndTime) gets the mean hourly load of the last 14 days of the
//! policy's load metric (for the predefined metric types, from CloudWatch: AWS/EC2 CPUUtilization
//! summed over the group's instances, NetworkIn/NetworkOut, or the ALB's RequestCount), and the
//! capacity forecast is that load divided by the target (load per instance), within the group's
//! bounds. Without history (or for customized metrics) the lists are empty, as AWS answers before
//! it has 24 hours of data.

use super::{validation, AutoScaling, SVC};
use crate::services::cloudwatch::{Stat, StatQuery};
use crate::services::input::Input;
use crate::services::{Ctx, HandlerResult, Registry};
use serde_json::{json, Value};
use std::sync::Arc;

const HOUR: f64 = 3600.0;
/// AWS forecasts at most 56 hours (two days ahead plus the rest of today); the emulator too.
const MAX_HOURS: usize = 56;

pub fn register(r: &mut Registry, s: &Arc<AutoScaling>) {
    r.sync(SVC, "GetPredictiveScalingForecast", s, get_forecast);
}

/// The CloudWatch load metric of a predefined metric type: (namespace, metric, dimension name,
/// dimension value).
fn load_metric(spec: &Value, group: &str) -> Option<(String, String, String, String)> {
    let t = spec
        .get("PredefinedMetricPairSpecification")
        .or_else(|| spec.get("PredefinedLoadMetricSpecification"))?;
    let kind = t.str("PredefinedMetricType")?;
    let asg = |m: &str| {
        Some((
            "AWS/EC2".to_string(),
            m.to_string(),
            "AutoScalingGroupName".to_string(),
            group.to_string(),
        ))
    };
    match kind {
        "ASGCPUUtilization" | "ASGTotalCPUUtilization" => asg("CPUUtilization"),
        "ASGNetworkIn" | "ASGTotalNetworkIn" => asg("NetworkIn"),
        "ASGNetworkOut" | "ASGTotalNetworkOut" => asg("NetworkOut"),
        "ALBRequestCount" | "ALBTargetGroupRequestCount" => {
            let label = t.str("ResourceLabel")?;
            let tg = label.split_once("/targetgroup/").map(|(_, x)| x)?;
            Some((
                "AWS/ApplicationELB".to_string(),
                "RequestCount".to_string(),
                "TargetGroup".to_string(),
                format!("targetgroup/{tg}"),
            ))
        }
        _ => None,
    }
}

fn get_forecast(s: &AutoScaling, ctx: &Ctx, input: Value) -> HandlerResult {
    let scope = ctx.scope();
    let group = input.str("AutoScalingGroupName").unwrap_or_default();
    let name = input.str("PolicyName").unwrap_or_default();
    let g = s.group(&scope, group)?;
    let p = s
        .policies
        .get(&super::sub_key(&scope, group, name))
        .filter(|p| p.policy_type == "PredictiveScaling")
        .ok_or_else(|| {
            validation(format!(
                "No predictive scaling policy found with name {name} for Auto Scaling group {group}"
            ))
        })?;
    let start = input
        .get("StartTime")
        .and_then(Value::as_f64)
        .unwrap_or(ctx.now);
    let end = input
        .get("EndTime")
        .and_then(Value::as_f64)
        .unwrap_or(start);
    if end <= start {
        return Err(validation("EndTime must be after StartTime."));
    }
    let first = (start / HOUR).floor() * HOUR;
    let hours: Vec<f64> = (0..)
        .map(|i| first + i as f64 * HOUR)
        .take_while(|t| *t < end)
        .take(MAX_HOURS)
        .collect();
    let specs: Vec<Value> = p
        .config
        .get("PredictiveScalingConfiguration")
        .and_then(|c| c.get("MetricSpecifications"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut loads = Vec::new();
    let mut capacity: Option<f64> = None;
    for spec in &specs {
        let mean = load_metric(spec, group).and_then(|m| mean_hourly_load(s, ctx, &m));
        let (ts, values) = match mean {
            Some(v) => (hours.clone(), vec![v; hours.len()]),
            None => (Vec::new(), Vec::new()),
        };
        if let (Some(v), Some(target)) = (mean, spec.get("TargetValue").and_then(Value::as_f64)) {
            if target > 0.0 {
                capacity = Some(capacity.unwrap_or(0.0).max(v / target));
            }
        }
        loads.push(json!({"Timestamps": ts, "Values": values, "MetricSpecification": spec}));
    }
    let (cap_ts, cap_values) = match capacity {
        Some(c) => {
            let n = (c.ceil() as i64).clamp(g.min, g.max) as f64;
            (hours.clone(), vec![n; hours.len()])
        }
        None => (Vec::new(), Vec::new()),
    };
    Ok(json!({
        "LoadForecast": loads,
        "CapacityForecast": {"Timestamps": cap_ts, "Values": cap_values},
        "UpdateTime": ctx.now,
    }))
}

/// The mean of the hourly sums of a metric over the last 14 days (None without data).
fn mean_hourly_load(
    s: &AutoScaling,
    ctx: &Ctx,
    m: &(String, String, String, String),
) -> Option<f64> {
    let cw = &s.cloudwatch;
    let q = StatQuery {
        namespace: m.0.clone(),
        metric_name: m.1.clone(),
        dimensions: vec![(m.2.clone(), m.3.clone())],
        start: ctx.now - 14.0 * 24.0 * HOUR,
        end: ctx.now,
        period: HOUR as i64,
        stat: Stat::Sum,
    };
    let points = cw.statistics(&ctx.account, &ctx.region, ctx.now, &q);
    if points.is_empty() {
        return None;
    }
    Some(points.iter().map(|(_, v)| v).sum::<f64>() / points.len() as f64)
}
