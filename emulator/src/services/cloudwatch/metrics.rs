//! Handlers: PutMetricData, ListMetrics, GetMetricStatistics, GetMetricData.

use super::expr;
use super::series::{Dimension, Point, SeriesId, SeriesMeta};
use super::stats::{self, Agg, Stat};
use super::CloudWatch;
use crate::protocol::codes;
use crate::protocol::AwsError;
use crate::services::input::Input;
use crate::services::{Ctx, HandlerResult};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashSet};

const MAX_DATA: usize = 1000;
const MAX_DIMENSIONS: usize = 30;
const MAX_VALUES: usize = 150;
const LIST_PAGE: usize = 500;
const MAX_DATAPOINTS: f64 = 1440.0;
const TWO_WEEKS: f64 = 14.0 * 86_400.0;
const TWO_HOURS: f64 = 7_200.0;

pub(super) fn invalid(msg: impl Into<String>) -> AwsError {
    AwsError::new(codes::cloudwatch::InvalidParameterValueException, msg)
}

fn combination(msg: impl Into<String>) -> AwsError {
    AwsError::new(codes::cloudwatch::InvalidParameterCombinationException, msg)
}

fn missing(msg: impl Into<String>) -> AwsError {
    AwsError::new(codes::cloudwatch::MissingRequiredParameterException, msg)
}

/// Dimensions as given ({Name, Value} list).
fn dimensions(v: Option<&Value>) -> Vec<Dimension> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|d| Dimension {
                    name: d.str("Name").unwrap_or_default().to_string(),
                    value: d.str("Value").unwrap_or_default().to_string(),
                })
                .collect()
        })
        .unwrap_or_default()
}

fn dims_json(d: &[Dimension]) -> Value {
    Value::Array(
        d.iter()
            .map(|d| json!({"Name": d.name, "Value": d.value}))
            .collect(),
    )
}

/// A number as AWS's message shows it: NaN and the infinities in Java's words ("NaN",
/// "Infinity", "-Infinity"), which is how the decoders hand them over.
fn shown(x: &Value) -> String {
    match x {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A number member that must be finite when present.
fn finite(v: &Value, key: &str, path: &str) -> Result<Option<f64>, AwsError> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(x) => match x.as_f64() {
            Some(f) if f.is_finite() => Ok(Some(f)),
            _ => Err(invalid(format!(
                "The value {} for parameter {path}.{key} is invalid.",
                shown(x)
            ))),
        },
    }
}

fn finite_list(v: &Value, key: &str, path: &str) -> Result<Option<Vec<f64>>, AwsError> {
    let Some(a) = v.get(key).and_then(Value::as_array) else {
        return Ok(None);
    };
    let mut out = Vec::with_capacity(a.len());
    for (i, x) in a.iter().enumerate() {
        match x.as_f64() {
            Some(f) if f.is_finite() => out.push(f),
            _ => {
                return Err(invalid(format!(
                    "The value {} for parameter {path}.{key}.member.{} is invalid.",
                    shown(x),
                    i + 1
                )))
            }
        }
    }
    Ok(Some(out))
}

fn unit_of(v: &Value) -> Option<String> {
    v.str("Unit").filter(|u| *u != "None").map(str::to_string)
}

/// One MetricData member → its series and stored point.
fn datum(d: &Value, path: &str, namespace: &str, now: f64) -> Result<(SeriesId, Point), AwsError> {
    let name = d.str("MetricName").unwrap_or_default();
    let dims = dimensions(d.get("Dimensions"));
    if dims.len() > MAX_DIMENSIONS {
        return Err(invalid(format!(
            "The collection {path}.Dimensions must not have a size greater than {MAX_DIMENSIONS}."
        )));
    }
    let mut names = HashSet::new();
    for dim in &dims {
        if !names.insert(dim.name.as_str()) {
            return Err(invalid(
                "No metric may specify the same dimension name twice.",
            ));
        }
    }
    let resolution = d.i64("StorageResolution").unwrap_or(60);
    if resolution != 1 && resolution != 60 {
        return Err(invalid(format!(
            "The parameter {path}.StorageResolution must be either 1 or 60."
        )));
    }
    let mut t = finite(d, "Timestamp", path)?.unwrap_or(now);
    if t > now + TWO_HOURS {
        return Err(invalid(format!(
            "The parameter {path}.Timestamp must specify a time no more than two hours in the future."
        )));
    }
    if t < now - TWO_WEEKS {
        return Err(invalid(format!(
            "The parameter {path}.Timestamp must specify a time within the past two weeks."
        )));
    }
    // Standard resolution is kept at one-minute granularity, high resolution at one second.
    t = if resolution == 60 {
        (t / 60.0).floor() * 60.0
    } else {
        t.floor()
    };
    let unit = unit_of(d);
    let value = finite(d, "Value", path)?;
    let values = finite_list(d, "Values", path)?;
    let counts = finite_list(d, "Counts", path)?;
    let set = d.get("StatisticValues").filter(|v| v.is_object());
    let given: Vec<&str> = [
        ("Value", value.is_some()),
        ("StatisticValues", set.is_some()),
        ("Values", values.is_some()),
    ]
    .iter()
    .filter(|(_, on)| *on)
    .map(|(k, _)| *k)
    .collect();
    if given.len() > 1 {
        return Err(combination(format!(
            "The parameters {path}.{} and {path}.{} are mutually exclusive and you have specified both.",
            given[0], given[1]
        )));
    }
    if counts.is_some() && values.is_none() {
        return Err(combination(format!(
            "The parameter {path}.Counts may only be specified with {path}.Values."
        )));
    }
    let point = if let Some(v) = value {
        Point::single(t, v, unit)
    } else if let Some(values) = values {
        if values.len() > MAX_VALUES {
            return Err(invalid(format!(
                "The collection {path}.Values must not have a size greater than {MAX_VALUES}."
            )));
        }
        let counts = counts.unwrap_or_else(|| vec![1.0; values.len()]);
        if counts.len() != values.len() {
            return Err(invalid(format!(
                "The parameters {path}.Values and {path}.Counts must be of the same size."
            )));
        }
        if counts.iter().any(|c| *c < 0.0) {
            return Err(invalid(format!(
                "The parameter {path}.Counts must not contain negative values."
            )));
        }
        if values.is_empty() {
            return Err(missing(format!(
                "The parameter {path}.Values must not be empty."
            )));
        }
        let pairs: Vec<(f64, f64)> = values.into_iter().zip(counts).collect();
        let n: f64 = pairs.iter().map(|(_, c)| c).sum();
        Point {
            t,
            unit,
            n,
            sum: pairs.iter().map(|(v, c)| v * c).sum(),
            min: pairs.iter().map(|(v, _)| *v).fold(f64::INFINITY, f64::min),
            max: pairs
                .iter()
                .map(|(v, _)| *v)
                .fold(f64::NEG_INFINITY, f64::max),
            values: pairs,
        }
    } else if let Some(set) = set {
        let p = format!("{path}.StatisticValues");
        let n = finite(set, "SampleCount", &p)?.unwrap_or(0.0);
        let sum = finite(set, "Sum", &p)?.unwrap_or(0.0);
        let min = finite(set, "Minimum", &p)?.unwrap_or(0.0);
        let max = finite(set, "Maximum", &p)?.unwrap_or(0.0);
        if n <= 0.0 {
            return Err(invalid(format!(
                "The parameter {p}.SampleCount must be greater than 0."
            )));
        }
        if min > max {
            return Err(invalid(format!(
                "The parameter {p}.Minimum must be less than or equal to {p}.Maximum."
            )));
        }
        Point {
            t,
            unit,
            n,
            sum,
            min,
            max,
            values: Vec::new(),
        }
    } else {
        return Err(missing(format!(
            "At least one of the parameters {path}.Value, {path}.StatisticValues or {path}.Values must be specified."
        )));
    };
    Ok((SeriesId::new(namespace, name, dims), point))
}

pub fn put_metric_data(cw: &CloudWatch, ctx: &Ctx, input: Value) -> HandlerResult {
    let namespace = input.str("Namespace").unwrap_or_default();
    if namespace.starts_with("AWS/") || namespace.contains(':') || namespace.trim().is_empty() {
        return Err(invalid(format!(
            "The value {namespace} for parameter Namespace is invalid."
        )));
    }
    let mut data: Vec<(String, &Value)> = Vec::new();
    if let Some(a) = input.get("MetricData").and_then(Value::as_array) {
        for (i, d) in a.iter().enumerate() {
            data.push((format!("MetricData.member.{}", i + 1), d));
        }
    }
    if let Some(entities) = input.get("EntityMetricData").and_then(Value::as_array) {
        for (e, ent) in entities.iter().enumerate() {
            if let Some(a) = ent.get("MetricData").and_then(Value::as_array) {
                for (i, d) in a.iter().enumerate() {
                    data.push((
                        format!(
                            "EntityMetricData.member.{}.MetricData.member.{}",
                            e + 1,
                            i + 1
                        ),
                        d,
                    ));
                }
            }
        }
    }
    if data.is_empty() {
        return Err(missing("The parameter MetricData is required."));
    }
    if data.len() > MAX_DATA {
        return Err(invalid(format!(
            "The collection MetricData must not have a size greater than {MAX_DATA}."
        )));
    }
    let batch = data
        .iter()
        .map(|(path, d)| datum(d, path, namespace, ctx.now))
        .collect::<Result<Vec<_>, _>>()?;
    cw.series.append(&ctx.scope(), ctx.now, batch)?;
    Ok(json!({}))
}

fn matches_filters(m: &SeriesMeta, input: &Value, now: f64) -> bool {
    if input.str("Namespace").is_some_and(|n| n != m.namespace) {
        return false;
    }
    if input.str("MetricName").is_some_and(|n| n != m.metric_name) {
        return false;
    }
    if input.str("RecentlyActive").is_some() && m.last_put < now - 3.0 * 3600.0 {
        return false;
    }
    let filters = input
        .get("Dimensions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    filters.iter().all(|f| {
        let name = f.str("Name").unwrap_or_default();
        let value = f.str("Value");
        m.dimensions
            .iter()
            .any(|d| d.name == name && value.is_none_or(|v| v == d.value))
    })
}

pub fn list_metrics(cw: &CloudWatch, ctx: &Ctx, input: Value) -> HandlerResult {
    if let Some(r) = input.str("RecentlyActive") {
        if r != "PT3H" {
            return Err(invalid(format!(
                "The value {r} for parameter RecentlyActive is invalid."
            )));
        }
    }
    let mut metrics: Vec<SeriesMeta> = cw
        .series
        .list(&ctx.scope(), ctx.now)
        .into_iter()
        .filter(|m| matches_filters(m, &input, ctx.now))
        .collect();
    metrics.sort_by(|a, b| {
        (&a.namespace, &a.metric_name, &a.dimensions).cmp(&(
            &b.namespace,
            &b.metric_name,
            &b.dimensions,
        ))
    });
    let start = match input.str("NextToken") {
        None => 0,
        Some(t) => t
            .strip_prefix("lm-")
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|n| *n <= metrics.len())
            .ok_or_else(|| invalid(format!("The value {t} for parameter NextToken is invalid.")))?,
    };
    let page: Vec<Value> = metrics
        .iter()
        .skip(start)
        .take(LIST_PAGE)
        .map(|m| {
            json!({
                "Namespace": m.namespace,
                "MetricName": m.metric_name,
                "Dimensions": dims_json(&m.dimensions),
            })
        })
        .collect();
    let mut out = json!({ "Metrics": page });
    if start + LIST_PAGE < metrics.len() {
        out["NextToken"] = json!(format!("lm-{}", start + LIST_PAGE));
    }
    if input.bool("IncludeLinkedAccounts") == Some(true) {
        let owners: Vec<&str> = metrics
            .iter()
            .skip(start)
            .take(LIST_PAGE)
            .map(|_| ctx.account.as_str())
            .collect();
        out["OwningAccounts"] = json!(owners);
    }
    Ok(out)
}

/// StartTime, EndTime and Period, checked; the start rounded as CloudWatch rounds it.
fn window(input: &Value, period: i64, prefix: &str) -> Result<(f64, f64), AwsError> {
    let start = input
        .get("StartTime")
        .and_then(Value::as_f64)
        .unwrap_or(0.0);
    let end = input.get("EndTime").and_then(Value::as_f64).unwrap_or(0.0);
    if start >= end {
        return Err(invalid(
            "The parameter StartTime must be less than the parameter EndTime.",
        ));
    }
    if !stats::valid_period(period) {
        return Err(invalid(format!(
            "The parameter {prefix}Period must be 1, 5, 10, 30, or a multiple of 60."
        )));
    }
    Ok((stats::align_start(start, period), end))
}

pub fn get_metric_statistics(cw: &CloudWatch, ctx: &Ctx, input: Value) -> HandlerResult {
    let namespace = input.str("Namespace").unwrap_or_default();
    let name = input.str("MetricName").unwrap_or_default();
    let period = input.i64("Period").unwrap_or(60);
    let (start, end) = window(&input, period, "")?;
    let statistics = input.string_list("Statistics");
    let extended = input.string_list("ExtendedStatistics");
    if statistics.is_empty() && extended.is_empty() {
        return Err(missing(
            "Must specify at least one of the parameters Statistics and ExtendedStatistics.",
        ));
    }
    let mut standard = Vec::new();
    for s in &statistics {
        match Stat::parse(s) {
            Some(st) if !matches!(st, Stat::Percentile(_)) => standard.push((s.clone(), st)),
            _ => {
                return Err(invalid(format!(
                    "The value {s} for parameter Statistics is invalid."
                )))
            }
        }
    }
    let mut percentiles = Vec::new();
    for s in &extended {
        match stats::parse_percentile(s) {
            Some(p) => percentiles.push((s.clone(), Stat::Percentile(p))),
            None => {
                return Err(invalid(format!(
                    "The value {s} for parameter ExtendedStatistics is not supported by ecs-emulator (only pNN.NN percentiles are)."
                )))
            }
        }
    }
    let requested = ((end - start) / period as f64).ceil();
    if requested > MAX_DATAPOINTS {
        return Err(combination(format!(
            "You have requested up to {} datapoints, which exceeds the limit of 1,440. You may reduce the datapoints requested by increasing Period, or decreasing the time range.",
            thousands(requested as u64)
        )));
    }
    let id = SeriesId::new(namespace, name, dimensions(input.get("Dimensions")));
    let unit_filter = input.str("Unit");
    let points = cw.series.points(&ctx.scope(), &id, start, end, ctx.now);
    let mut by_unit: BTreeMap<String, Vec<Point>> = BTreeMap::new();
    for p in points {
        let unit = p.unit.clone().unwrap_or_else(|| "None".into());
        if unit_filter.is_some_and(|u| u != unit) {
            continue;
        }
        by_unit.entry(unit).or_default().push(p);
    }
    let mut datapoints = Vec::new();
    for (unit, points) in &by_unit {
        for (t, ps) in stats::bucket(points, start, period) {
            let Some(agg) = Agg::of(ps) else { continue };
            let mut dp = Map::new();
            dp.insert("Timestamp".into(), json!(t));
            for (name, st) in &standard {
                if let Some(v) = agg.get(*st) {
                    dp.insert(name.clone(), json!(v));
                }
            }
            if !percentiles.is_empty() {
                let mut ext = Map::new();
                for (name, st) in &percentiles {
                    if let Some(v) = agg.get(*st) {
                        ext.insert(name.clone(), json!(v));
                    }
                }
                dp.insert("ExtendedStatistics".into(), Value::Object(ext));
            }
            dp.insert("Unit".into(), json!(unit));
            datapoints.push(Value::Object(dp));
        }
    }
    Ok(json!({ "Label": name, "Datapoints": datapoints }))
}

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// One query's bucketed values: bucket start → value.
pub(super) type TimeSeries = BTreeMap<i64, f64>;

fn metric_stat(
    cw: &CloudWatch,
    ctx: &Ctx,
    q: &Value,
    path: &str,
    input: &Value,
) -> Result<TimeSeries, AwsError> {
    let ms = q.get("MetricStat").cloned().unwrap_or(Value::Null);
    let metric = ms.get("Metric").cloned().unwrap_or(Value::Null);
    let period = ms.i64("Period").unwrap_or(60);
    let (start, end) = window(input, period, &format!("{path}.MetricStat."))?;
    let stat_name = ms.str("Stat").unwrap_or_default();
    let stat = Stat::parse(stat_name).ok_or_else(|| {
        invalid(format!(
            "The value {stat_name} for parameter {path}.MetricStat.Stat is not supported by ecs-emulator (SampleCount, Average, Sum, Minimum, Maximum and pNN.NN are)."
        ))
    })?;
    let id = SeriesId::new(
        metric.str("Namespace").unwrap_or_default(),
        metric.str("MetricName").unwrap_or_default(),
        dimensions(metric.get("Dimensions")),
    );
    let unit = ms.str("Unit");
    let points: Vec<Point> = cw
        .series
        .points(&ctx.scope(), &id, start, end, ctx.now)
        .into_iter()
        .filter(|p| unit.is_none_or(|u| p.unit.as_deref().unwrap_or("None") == u))
        .collect();
    Ok(stats::bucket(&points, start, period)
        .into_iter()
        .filter_map(|(t, ps)| Some((t, Agg::of(ps)?.get(stat)?)))
        .collect())
}

pub fn get_metric_data(cw: &CloudWatch, ctx: &Ctx, input: Value) -> HandlerResult {
    if let Some(t) = input.str("NextToken") {
        return Err(AwsError::new(
            codes::cloudwatch::InvalidNextToken,
            format!("The service couldn't process the provided NextToken: {t}"),
        ));
    }
    let queries = input
        .get("MetricDataQueries")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if queries.is_empty() || queries.len() > 500 {
        return Err(invalid(
            "The collection MetricDataQueries must contain between 1 and 500 items.",
        ));
    }
    let id_ok = regex_lite_id;
    let mut seen = HashSet::new();
    let mut stat_ids = Vec::new();
    let mut expressions: BTreeMap<String, String> = BTreeMap::new();
    let mut results: BTreeMap<String, TimeSeries> = BTreeMap::new();
    for (i, q) in queries.iter().enumerate() {
        let path = format!("MetricDataQueries.member.{}", i + 1);
        let id = q.str("Id").unwrap_or_default().to_string();
        if !id_ok(&id) {
            return Err(invalid(format!(
                "The value {id} for parameter {path}.Id is invalid: it must start with a lowercase letter and contain only letters, numbers and underscores."
            )));
        }
        if !seen.insert(id.clone()) {
            return Err(invalid(format!(
                "The values for parameter MetricDataQueries.member.N.Id must be unique: {id} is repeated."
            )));
        }
        match (q.get("MetricStat").filter(|v| v.is_object()), q.str("Expression")) {
            (Some(_), None) => {
                results.insert(id.clone(), metric_stat(cw, ctx, q, &path, &input)?);
                stat_ids.push(id);
            }
            (None, Some(e)) => {
                expressions.insert(id, e.to_string());
            }
            _ => {
                return Err(invalid(format!(
                    "Exactly one of the parameters {path}.MetricStat and {path}.Expression must be specified."
                )))
            }
        }
    }
    let mut env = expr::Env {
        series: results,
        metric_ids: stat_ids,
        expressions,
        in_progress: HashSet::new(),
    };
    let ascending = input.str("ScanBy") == Some("TimestampAscending");
    let mut out = Vec::new();
    for q in &queries {
        let id = q.str("Id").unwrap_or_default().to_string();
        let series = env.resolve(&id)?;
        if q.bool("ReturnData") == Some(false) {
            continue;
        }
        let label = q.str("Label").map(str::to_string).unwrap_or_else(|| {
            q.get("MetricStat")
                .and_then(|m| m.get("Metric"))
                .and_then(|m| m.str("MetricName"))
                .unwrap_or(&id)
                .to_string()
        });
        let mut pairs: Vec<(i64, f64)> = series.into_iter().collect();
        if !ascending {
            pairs.reverse();
        }
        out.push(json!({
            "Id": id,
            "Label": label,
            "Timestamps": pairs.iter().map(|(t, _)| json!(t)).collect::<Vec<_>>(),
            "Values": pairs.iter().map(|(_, v)| json!(v)).collect::<Vec<_>>(),
            "StatusCode": "Complete",
            "Messages": [],
        }));
    }
    Ok(json!({ "MetricDataResults": out, "Messages": [] }))
}

/// ^[a-z][a-zA-Z0-9_]*$
fn regex_lite_id(id: &str) -> bool {
    let mut chars = id.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests;
