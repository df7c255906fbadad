//! Alarm operations: PutMetricAlarm, PutCompositeAlarm, DescribeAlarms, DescribeAlarmsForMetric,
//! DeleteAlarms, SetAlarmState, EnableAlarmActions, DisableAlarmActions, DescribeAlarmHistory,
//! TagResource, UntagResource, ListTagsForResource.

use super::super::actions::AlarmState;
use super::super::series::Dimension;
use super::super::stats::{self, Stat};
use super::super::CloudWatch;
use super::eval::{Missing, Op};
use super::evaluate::Transition;
use super::rule::Rule;
use super::{Alarm, HistoryItem, Tag};
use crate::protocol::codes;
use crate::protocol::AwsError;
use crate::services::input::Input;
use crate::services::{Ctx, HandlerResult};
use serde_json::{json, Value};

const ONE_DAY: i64 = 86_400;
const MAX_METRICS: usize = 20;
const DESCRIBE_PAGE: i64 = 50;
const HISTORY_PAGE: i64 = 100;

fn invalid(msg: impl Into<String>) -> AwsError {
    AwsError::new(codes::cloudwatch::InvalidParameterValueException, msg)
}

fn combination(msg: impl Into<String>) -> AwsError {
    AwsError::new(codes::cloudwatch::InvalidParameterCombinationException, msg)
}

fn missing(name: &str) -> AwsError {
    AwsError::new(
        codes::cloudwatch::MissingRequiredParameterException,
        format!("The parameter {name} is required."),
    )
}

fn not_found(msg: impl Into<String>) -> AwsError {
    AwsError::new(codes::cloudwatch::ResourceNotFound, msg)
}

fn alarm_key(ctx: &Ctx, name: &str) -> String {
    format!("{}{name}", ctx.scope())
}

fn tags(input: &Value) -> Vec<Tag> {
    input
        .get("Tags")
        .cloned()
        .and_then(|t| serde_json::from_value(t).ok())
        .unwrap_or_default()
}

fn dimensions(v: Option<&Value>) -> Vec<Dimension> {
    let mut d: Vec<Dimension> = v
        .cloned()
        .and_then(|d| serde_json::from_value(d).ok())
        .unwrap_or_default();
    d.sort();
    d
}

/// Action ARNs: must look like ARNs (AWS refuses anything else).
fn actions(input: &Value, key: &str) -> Result<Vec<String>, AwsError> {
    let list = input.string_list(key);
    for a in &list {
        if a.split(':').count() < 6 || !a.starts_with("arn:") {
            return Err(invalid(format!("Invalid arn syntax: {a}")));
        }
    }
    Ok(list)
}

/// A period CloudWatch alarms accept: 10, 20, 30 or a multiple of 60.
fn check_period(period: i64, path: &str) -> Result<(), AwsError> {
    if matches!(period, 10 | 20 | 30) || (period > 0 && period % 60 == 0) {
        Ok(())
    } else {
        Err(invalid(format!(
            "The parameter {path} must be 10, 20, 30 or a multiple of 60."
        )))
    }
}

/// Checks a metric alarm's input and builds it (state fields are the caller's).
fn metric_alarm(ctx: &Ctx, input: &Value) -> Result<Alarm, AwsError> {
    let name = input.str("AlarmName").unwrap_or_default().to_string();
    if !name.is_ascii() {
        return Err(invalid("Alarm names must contain only ASCII characters."));
    }
    let metrics = input
        .get("Metrics")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let has_metric = input.str("MetricName").is_some() || input.str("Namespace").is_some();
    if has_metric && !metrics.is_empty() {
        return Err(combination(
            "The parameters MetricName and Metrics are mutually exclusive and you have specified both.",
        ));
    }
    let mut alarm = Alarm {
        arn: ctx.arn("cloudwatch", &format!("alarm:{name}")),
        name,
        description: input.str("AlarmDescription").map(str::to_string),
        actions_enabled: input.bool("ActionsEnabled").unwrap_or(true),
        ok_actions: actions(input, "OKActions")?,
        alarm_actions: actions(input, "AlarmActions")?,
        insufficient_data_actions: actions(input, "InsufficientDataActions")?,
        unit: input.str("Unit").map(str::to_string),
        datapoints_to_alarm: input.i64("DatapointsToAlarm"),
        threshold: input.get("Threshold").and_then(Value::as_f64),
        comparison_operator: input.str("ComparisonOperator").map(str::to_string),
        treat_missing_data: input.str("TreatMissingData").map(str::to_string),
        evaluate_low_sample_count_percentile: input
            .str("EvaluateLowSampleCountPercentile")
            .map(str::to_string),
        threshold_metric_id: input.str("ThresholdMetricId").map(str::to_string),
        tags: tags(input),
        ..Default::default()
    };
    let evaluation_periods = input
        .i64("EvaluationPeriods")
        .ok_or_else(|| missing("EvaluationPeriods"))?;
    alarm.evaluation_periods = evaluation_periods;
    let op_name = alarm
        .comparison_operator
        .clone()
        .ok_or_else(|| missing("ComparisonOperator"))?;
    if Op::parse(&op_name).is_none() {
        // The anomaly detection band operators (LessThanLowerOrGreaterThanUpperThreshold, …).
        if alarm.threshold_metric_id.is_none() {
            return Err(combination(format!(
                "ThresholdMetricId must be specified when using the comparison operator {op_name}."
            )));
        }
        return Err(invalid(format!(
            "The comparison operator {op_name} needs an anomaly detection model, which ecs-emulator does not build."
        )));
    }
    if alarm.threshold_metric_id.is_some() {
        return Err(combination(
            "ThresholdMetricId can only be used with an anomaly detection comparison operator.",
        ));
    }
    if alarm.threshold.is_none() {
        return Err(missing("Threshold"));
    }
    if Missing::parse(alarm.treat_missing_data.as_deref()).is_none() {
        return Err(invalid(format!(
            "The value {} for parameter TreatMissingData is invalid. Valid values are: breaching, notBreaching, ignore, missing.",
            alarm.treat_missing_data.as_deref().unwrap_or_default()
        )));
    }
    if let Some(p) = &alarm.evaluate_low_sample_count_percentile {
        if p != "evaluate" && p != "ignore" {
            return Err(invalid(format!(
                "The value {p} for parameter EvaluateLowSampleCountPercentile is invalid."
            )));
        }
    }
    if let Some(m) = alarm.datapoints_to_alarm {
        if m > evaluation_periods {
            return Err(invalid(
                "DatapointsToAlarm must be less than or equal to EvaluationPeriods.",
            ));
        }
    }
    let period = if metrics.is_empty() {
        single_metric(input, &mut alarm)?
    } else {
        metric_math(&metrics, &mut alarm)?
    };
    if period * evaluation_periods > ONE_DAY {
        return Err(invalid(
            "The product of EvaluationPeriods and Period must not exceed 86400 (one day).",
        ));
    }
    Ok(alarm)
}

/// MetricName, Namespace, Dimensions, Statistic or ExtendedStatistic, Period.
fn single_metric(input: &Value, alarm: &mut Alarm) -> Result<i64, AwsError> {
    alarm.metric_name = Some(
        input
            .str("MetricName")
            .ok_or_else(|| missing("MetricName"))?
            .to_string(),
    );
    alarm.namespace = Some(
        input
            .str("Namespace")
            .ok_or_else(|| missing("Namespace"))?
            .to_string(),
    );
    alarm.dimensions = dimensions(input.get("Dimensions"));
    alarm.statistic = input.str("Statistic").map(str::to_string);
    alarm.extended_statistic = input.str("ExtendedStatistic").map(str::to_string);
    match (&alarm.statistic, &alarm.extended_statistic) {
        (Some(_), Some(_)) | (None, None) => {
            return Err(combination(
                "Exactly one of the parameters Statistic and ExtendedStatistic must be specified.",
            ))
        }
        (None, Some(e)) if stats::parse_percentile(e).is_none() => {
            return Err(invalid(format!(
                "The value {e} for parameter ExtendedStatistic is not supported by ecs-emulator (only pNN.NN percentiles are)."
            )))
        }
        _ => {}
    }
    let period = input.i64("Period").ok_or_else(|| missing("Period"))?;
    check_period(period, "Period")?;
    alarm.period = Some(period);
    Ok(period)
}

/// Metric math: 1–20 queries, MetricStat or Expression each, one returning data, one period.
fn metric_math(metrics: &[Value], alarm: &mut Alarm) -> Result<i64, AwsError> {
    if metrics.len() > MAX_METRICS {
        return Err(invalid(format!(
            "The collection Metrics must not have a size greater than {MAX_METRICS}."
        )));
    }
    let mut period = None;
    let mut returning = 0;
    for (i, q) in metrics.iter().enumerate() {
        let path = format!("Metrics.member.{}", i + 1);
        match (q.get("MetricStat"), q.str("Expression")) {
            (Some(ms), None) => {
                let p = ms.i64("Period").unwrap_or(60);
                check_period(p, &format!("{path}.MetricStat.Period"))?;
                if period.is_some_and(|x| x != p) {
                    return Err(invalid(
                        "All metrics in an alarm's math expression must use the same period.",
                    ));
                }
                period = Some(p);
                let stat = ms.str("Stat").unwrap_or_default();
                if Stat::parse(stat).is_none() {
                    return Err(invalid(format!(
                        "The value {stat} for parameter {path}.MetricStat.Stat is not supported by ecs-emulator (SampleCount, Average, Sum, Minimum, Maximum and pNN.NN are)."
                    )));
                }
            }
            (None, Some(_)) => {
                if let Some(p) = q.i64("Period") {
                    check_period(p, &format!("{path}.Period"))?;
                }
            }
            _ => {
                return Err(invalid(format!(
                    "Exactly one of the parameters {path}.MetricStat and {path}.Expression must be specified."
                )))
            }
        }
        if q.bool("ReturnData").unwrap_or(true) {
            returning += 1;
        }
    }
    if returning != 1 {
        return Err(invalid(
            "Exactly one element of the metrics list should return data.",
        ));
    }
    alarm.metrics = metrics.to_vec();
    let period = period
        .or_else(|| metrics.iter().find_map(|q| q.i64("Period")))
        .unwrap_or(60);
    Ok(period)
}

fn config_history(ctx: &Ctx, alarm: &Alarm, created: bool) -> HistoryItem {
    let verb = if created { "created" } else { "updated" };
    HistoryItem {
        alarm_name: alarm.name.clone(),
        alarm_type: alarm.type_name().into(),
        timestamp: ctx.now,
        item_type: "ConfigurationUpdate".into(),
        summary: format!("Alarm \"{}\" {verb}", alarm.name),
        data: json!({
            "version": "1.0",
            "type": if created { "Create" } else { "Update" },
            "createdAlarm": alarm.describe(),
        })
        .to_string(),
    }
}

/// Stores a new or updated alarm: a new one starts in INSUFFICIENT_DATA; an update keeps the
/// state (and overwrites the whole configuration, tags excepted).
fn store_alarm(cw: &CloudWatch, ctx: &Ctx, mut alarm: Alarm) -> HandlerResult {
    let key = alarm_key(ctx, &alarm.name);
    let created = cw.alarms.transact(|tx| {
        alarm.config_updated = ctx.now;
        let created = match tx.get(&key) {
            Some(old) => {
                if old.composite != alarm.composite {
                    return Err(invalid(format!(
                        "An alarm named {} already exists as a {}.",
                        alarm.name,
                        old.type_name()
                    )));
                }
                alarm.state = old.state;
                alarm.state_reason = old.state_reason.clone();
                alarm.state_reason_data = old.state_reason_data.clone();
                alarm.state_updated = old.state_updated;
                alarm.state_transitioned = old.state_transitioned;
                if alarm.tags.is_empty() {
                    alarm.tags = old.tags.clone();
                }
                false
            }
            None => {
                alarm.state = AlarmState::InsufficientData;
                alarm.state_reason = "Unchecked: Initial alarm creation".into();
                alarm.state_updated = ctx.now;
                alarm.state_transitioned = ctx.now;
                true
            }
        };
        tx.put(&key, alarm.clone());
        Ok(created)
    })?;
    cw.add_history(&ctx.scope(), config_history(ctx, &alarm, created));
    // Evaluate at the next pass of the alarm controller.
    cw.next_evaluation.lock().remove(&key);
    cw.alarm_changes.send_modify(|v| *v += 1);
    Ok(json!({}))
}

pub fn put_metric_alarm(cw: &CloudWatch, ctx: &Ctx, input: Value) -> HandlerResult {
    let alarm = metric_alarm(ctx, &input)?;
    store_alarm(cw, ctx, alarm)
}

pub fn put_composite_alarm(cw: &CloudWatch, ctx: &Ctx, input: Value) -> HandlerResult {
    let name = input.str("AlarmName").unwrap_or_default().to_string();
    let rule_text = input.str("AlarmRule").unwrap_or_default().to_string();
    let rule = Rule::parse(&rule_text)
        .map_err(|e| invalid(format!("Error in AlarmRule [{rule_text}]: {e}.")))?;
    let scope = ctx.scope();
    for child in rule.alarms() {
        let child_name = child.rsplit(":alarm:").next().unwrap_or(&child);
        if child_name == name {
            return Err(invalid("A composite alarm cannot refer to itself."));
        }
        if !cw.alarms.contains(&format!("{scope}{child_name}")) {
            return Err(invalid(format!(
                "Could not save the composite alarm as alarms [{child}] in the alarm rule do not exist"
            )));
        }
    }
    let mut alarm = Alarm {
        arn: ctx.arn("cloudwatch", &format!("alarm:{name}")),
        name,
        composite: true,
        description: input.str("AlarmDescription").map(str::to_string),
        actions_enabled: input.bool("ActionsEnabled").unwrap_or(true),
        ok_actions: actions(&input, "OKActions")?,
        alarm_actions: actions(&input, "AlarmActions")?,
        insufficient_data_actions: actions(&input, "InsufficientDataActions")?,
        rule: Some(rule_text),
        tags: tags(&input),
        ..Default::default()
    };
    for arn in alarm
        .ok_actions
        .iter()
        .chain(&alarm.alarm_actions)
        .chain(&alarm.insufficient_data_actions)
    {
        if arn.starts_with("arn:aws:autoscaling:") || arn.starts_with("arn:aws:automate:") {
            return Err(invalid(format!(
                "Composite alarms do not support EC2 or Auto Scaling actions: {arn}"
            )));
        }
    }
    alarm.evaluation_periods = 1;
    store_alarm(cw, ctx, alarm)
}

/// Which alarm types a Describe call returns: only metric alarms unless AlarmTypes says.
fn wanted_types(input: &Value) -> (bool, bool) {
    let types = input.string_list("AlarmTypes");
    if types.is_empty() {
        return (true, false);
    }
    (
        types.iter().any(|t| t == "MetricAlarm"),
        types.iter().any(|t| t == "CompositeAlarm"),
    )
}

fn max_records(input: &Value, default: i64) -> usize {
    input.i64("MaxRecords").unwrap_or(default).clamp(1, 100) as usize
}

pub fn describe_alarms(cw: &CloudWatch, ctx: &Ctx, input: Value) -> HandlerResult {
    let names = input.string_list("AlarmNames");
    let prefix = input.str("AlarmNamePrefix");
    if !names.is_empty() && prefix.is_some() {
        return Err(combination(
            "The parameters AlarmNames and AlarmNamePrefix are mutually exclusive and you have specified both.",
        ));
    }
    let state = input.str("StateValue");
    let action_prefix = input.str("ActionPrefix");
    let (metric, composite) = wanted_types(&input);
    let scope = ctx.scope();
    let all: Vec<Alarm> = cw.alarms.scan(&scope).into_iter().map(|(_, a)| a).collect();
    let related: Option<Vec<String>> = if let Some(parent) = input.str("ChildrenOfAlarmName") {
        let rule = all
            .iter()
            .find(|a| a.name == parent && a.composite)
            .and_then(|a| a.rule.as_deref())
            .and_then(|r| Rule::parse(r).ok());
        Some(
            rule.map(|r| r.alarms())
                .unwrap_or_default()
                .into_iter()
                .map(|n| n.rsplit(":alarm:").next().unwrap_or(&n).to_string())
                .collect(),
        )
    } else {
        input.str("ParentsOfAlarmName").map(|child| {
            all.iter()
                .filter(|a| a.composite)
                .filter(|a| {
                    a.rule
                        .as_deref()
                        .and_then(|r| Rule::parse(r).ok())
                        .is_some_and(|r| {
                            r.alarms()
                                .iter()
                                .any(|n| n.rsplit(":alarm:").next() == Some(child))
                        })
                })
                .map(|a| a.name.clone())
                .collect()
        })
    };
    let selected: Vec<Alarm> = all
        .into_iter()
        .filter(|a| if a.composite { composite } else { metric })
        .filter(|a| names.is_empty() || names.contains(&a.name))
        .filter(|a| prefix.is_none_or(|p| a.name.starts_with(p)))
        .filter(|a| state.is_none_or(|s| a.state.as_str() == s))
        .filter(|a| {
            action_prefix.is_none_or(|p| {
                a.ok_actions
                    .iter()
                    .chain(&a.alarm_actions)
                    .chain(&a.insufficient_data_actions)
                    .any(|x| x.starts_with(p))
            })
        })
        .filter(|a| related.as_ref().is_none_or(|r| r.contains(&a.name)))
        .collect();
    let (page, next) = crate::services::page::page(
        selected,
        |a| a.name.clone(),
        input.str("NextToken"),
        max_records(&input, DESCRIBE_PAGE),
        codes::cloudwatch::InvalidNextToken,
    )?;
    let (metric_alarms, composite_alarms): (Vec<&Alarm>, Vec<&Alarm>) =
        page.iter().partition(|a| !a.composite);
    let mut out = json!({
        "MetricAlarms": metric_alarms.iter().map(|a| a.describe()).collect::<Vec<_>>(),
        "CompositeAlarms": composite_alarms.iter().map(|a| a.describe()).collect::<Vec<_>>(),
    });
    if let Some(n) = next {
        out["NextToken"] = json!(n);
    }
    Ok(out)
}

pub fn describe_alarms_for_metric(cw: &CloudWatch, ctx: &Ctx, input: Value) -> HandlerResult {
    let namespace = input.str("Namespace").unwrap_or_default();
    let name = input.str("MetricName").unwrap_or_default();
    let dims = input.get("Dimensions").map(|d| dimensions(Some(d)));
    let found: Vec<Value> = cw
        .alarms
        .scan(&ctx.scope())
        .into_iter()
        .map(|(_, a)| a)
        .filter(|a| !a.composite)
        .filter(|a| {
            a.namespace.as_deref() == Some(namespace) && a.metric_name.as_deref() == Some(name)
        })
        .filter(|a| dims.as_ref().is_none_or(|d| *d == a.dimensions))
        .filter(|a| {
            input
                .str("Statistic")
                .is_none_or(|s| a.statistic.as_deref() == Some(s))
        })
        .filter(|a| {
            input
                .str("ExtendedStatistic")
                .is_none_or(|s| a.extended_statistic.as_deref() == Some(s))
        })
        .filter(|a| input.i64("Period").is_none_or(|p| a.period == Some(p)))
        .filter(|a| {
            input
                .str("Unit")
                .is_none_or(|u| a.unit.as_deref() == Some(u))
        })
        .map(|a| a.describe())
        .collect();
    Ok(json!({ "MetricAlarms": found }))
}

pub fn delete_alarms(cw: &CloudWatch, ctx: &Ctx, input: Value) -> HandlerResult {
    let names = input.string_list("AlarmNames");
    let scope = ctx.scope();
    cw.alarms.transact(|tx| {
        let absent: Vec<&String> = names
            .iter()
            .filter(|n| !tx.contains(&format!("{scope}{n}")))
            .collect();
        if !absent.is_empty() {
            return Err(not_found(format!(
                "{} does not exist",
                absent
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        for n in &names {
            tx.remove(&format!("{scope}{n}"));
        }
        Ok(())
    })?;
    for n in &names {
        cw.next_evaluation.lock().remove(&format!("{scope}{n}"));
    }
    cw.alarm_changes.send_modify(|v| *v += 1);
    Ok(json!({}))
}

pub fn set_alarm_state(cw: &CloudWatch, ctx: &Ctx, input: Value) -> HandlerResult {
    let name = input.str("AlarmName").unwrap_or_default();
    let state_text = input.str("StateValue").unwrap_or_default();
    let state = AlarmState::parse(state_text).ok_or_else(|| {
        invalid(format!(
            "The value {state_text} for parameter StateValue is invalid."
        ))
    })?;
    let reason = input.str("StateReason").unwrap_or_default().to_string();
    let reason_data = input.str("StateReasonData").map(str::to_string);
    if let Some(d) = &reason_data {
        if serde_json::from_str::<Value>(d).is_err() {
            return Err(AwsError::new(
                codes::cloudwatch::InvalidFormatFault,
                "Unable to parse StateReasonData: it must be a JSON document.",
            ));
        }
    }
    let key = alarm_key(ctx, name);
    let alarm = cw
        .alarms
        .get(&key)
        .ok_or_else(|| not_found(format!("Alarm {name} not found")))?;
    let t = Transition {
        to: state,
        reason,
        reason_data,
    };
    if let Some((before, after)) = cw.transition(&key, alarm.config_updated, t, ctx.now) {
        if before != state {
            cw.run_actions(&after, before, None, ctx.now);
        }
    }
    Ok(json!({}))
}

fn set_actions_enabled(cw: &CloudWatch, ctx: &Ctx, input: &Value, enabled: bool) -> HandlerResult {
    let scope = ctx.scope();
    cw.alarms.transact::<_, AwsError, _>(|tx| {
        for n in input.string_list("AlarmNames") {
            if let Some(a) = tx.get_mut(&format!("{scope}{n}")) {
                a.actions_enabled = enabled;
            }
        }
        Ok(())
    })?;
    Ok(json!({}))
}

pub fn enable_alarm_actions(cw: &CloudWatch, ctx: &Ctx, input: Value) -> HandlerResult {
    set_actions_enabled(cw, ctx, &input, true)
}

pub fn disable_alarm_actions(cw: &CloudWatch, ctx: &Ctx, input: Value) -> HandlerResult {
    set_actions_enabled(cw, ctx, &input, false)
}

pub fn describe_alarm_history(cw: &CloudWatch, ctx: &Ctx, input: Value) -> HandlerResult {
    let name = input.str("AlarmName");
    let kind = input.str("HistoryItemType");
    let types = input.string_list("AlarmTypes");
    let start = input.get("StartDate").and_then(Value::as_f64);
    let end = input.get("EndDate").and_then(Value::as_f64);
    let cutoff = ctx.now - super::HISTORY_SECS;
    let mut items: Vec<(String, HistoryItem)> = cw
        .history
        .scan(&ctx.scope())
        .into_iter()
        .filter(|(_, h)| h.timestamp >= cutoff)
        .filter(|(_, h)| name.is_none_or(|n| h.alarm_name == n))
        .filter(|(_, h)| kind.is_none_or(|k| h.item_type == k))
        .filter(|(_, h)| types.is_empty() || types.contains(&h.alarm_type))
        .filter(|(_, h)| start.is_none_or(|s| h.timestamp >= s))
        .filter(|(_, h)| end.is_none_or(|e| h.timestamp <= e))
        .collect();
    if input.str("ScanBy") != Some("TimestampAscending") {
        items.reverse();
    }
    // Page by position in this order: keys are unique, so the token is the index's key.
    let ordered: Vec<(usize, HistoryItem)> =
        items.into_iter().map(|(_, h)| h).enumerate().collect();
    let (page, next) = crate::services::page::page(
        ordered,
        |(i, _)| format!("{i:012}"),
        input.str("NextToken"),
        max_records(&input, HISTORY_PAGE),
        codes::cloudwatch::InvalidNextToken,
    )?;
    let mut out = json!({
        "AlarmHistoryItems": page.iter().map(|(_, h)| h.describe()).collect::<Vec<_>>(),
    });
    if let Some(n) = next {
        out["NextToken"] = json!(n);
    }
    Ok(out)
}

/// The alarm an ARN names, in the caller's scope.
fn alarm_by_arn(cw: &CloudWatch, ctx: &Ctx, arn: &str) -> Result<String, AwsError> {
    let unknown = || {
        AwsError::new(
            codes::cloudwatch::ResourceNotFoundException,
            format!("Unknown resource: {arn}"),
        )
    };
    let prefix = ctx.arn("cloudwatch", "alarm:");
    if !arn.starts_with("arn:") || arn.split(':').count() < 6 {
        return Err(invalid(format!(
            "The value {arn} for parameter ResourceARN is invalid."
        )));
    }
    let name = arn.strip_prefix(&prefix).ok_or_else(unknown)?;
    let key = alarm_key(ctx, name);
    if cw.alarms.contains(&key) {
        Ok(key)
    } else {
        Err(unknown())
    }
}

pub fn tag_resource(cw: &CloudWatch, ctx: &Ctx, input: Value) -> HandlerResult {
    let key = alarm_by_arn(cw, ctx, input.str("ResourceARN").unwrap_or_default())?;
    let new = tags(&input);
    cw.alarms.transact(|tx| {
        let a = tx.get_mut(&key).ok_or_else(|| not_found("alarm deleted"))?;
        for t in new {
            a.tags.retain(|x| x.key != t.key);
            a.tags.push(t);
        }
        if a.tags.len() > 50 {
            return Err(invalid("A resource can have at most 50 tags."));
        }
        Ok(())
    })?;
    Ok(json!({}))
}

pub fn untag_resource(cw: &CloudWatch, ctx: &Ctx, input: Value) -> HandlerResult {
    let key = alarm_by_arn(cw, ctx, input.str("ResourceARN").unwrap_or_default())?;
    let keys = input.string_list("TagKeys");
    cw.alarms.transact::<_, AwsError, _>(|tx| {
        if let Some(a) = tx.get_mut(&key) {
            a.tags.retain(|t| !keys.contains(&t.key));
        }
        Ok(())
    })?;
    Ok(json!({}))
}

pub fn list_tags_for_resource(cw: &CloudWatch, ctx: &Ctx, input: Value) -> HandlerResult {
    let key = alarm_by_arn(cw, ctx, input.str("ResourceARN").unwrap_or_default())?;
    let tags = cw.alarms.get(&key).map(|a| a.tags).unwrap_or_default();
    Ok(json!({ "Tags": tags }))
}
