//! CloudWatch alarms: metric alarms (one metric and statistic, or metric math) and composite
//! alarms, their history, tags, and the evaluator the alarm controller drives on the emulator
//! clock (`controllers/alarms.rs`).

pub mod eval;
mod evaluate;
pub mod handlers;
pub mod rule;

use super::actions::AlarmState;
use super::series::Dimension;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// History is kept two weeks, as CloudWatch keeps it.
pub const HISTORY_SECS: f64 = 14.0 * 86_400.0;

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Tag {
    #[serde(rename = "Key")]
    pub key: String,
    #[serde(rename = "Value")]
    pub value: String,
}

/// A stored alarm, keyed "<scope><alarm name>".
#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub struct Alarm {
    pub name: String,
    pub arn: String,
    /// A composite alarm (rule over other alarms) rather than a metric alarm.
    #[serde(default)]
    pub composite: bool,
    #[serde(default)]
    pub description: Option<String>,
    pub actions_enabled: bool,
    #[serde(default)]
    pub ok_actions: Vec<String>,
    #[serde(default)]
    pub alarm_actions: Vec<String>,
    #[serde(default)]
    pub insufficient_data_actions: Vec<String>,
    pub state: AlarmState,
    pub state_reason: String,
    #[serde(default)]
    pub state_reason_data: Option<String>,
    pub state_updated: f64,
    pub state_transitioned: f64,
    pub config_updated: f64,
    // Metric alarm, one metric.
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub metric_name: Option<String>,
    #[serde(default)]
    pub dimensions: Vec<Dimension>,
    #[serde(default)]
    pub statistic: Option<String>,
    #[serde(default)]
    pub extended_statistic: Option<String>,
    #[serde(default)]
    pub unit: Option<String>,
    #[serde(default)]
    pub period: Option<i64>,
    /// Metric math: the MetricDataQuery list as given (model shape).
    #[serde(default)]
    pub metrics: Vec<Value>,
    #[serde(default)]
    pub evaluation_periods: i64,
    #[serde(default)]
    pub datapoints_to_alarm: Option<i64>,
    #[serde(default)]
    pub threshold: Option<f64>,
    #[serde(default)]
    pub comparison_operator: Option<String>,
    #[serde(default)]
    pub treat_missing_data: Option<String>,
    #[serde(default)]
    pub evaluate_low_sample_count_percentile: Option<String>,
    #[serde(default)]
    pub threshold_metric_id: Option<String>,
    // Composite alarm.
    #[serde(default)]
    pub rule: Option<String>,
    #[serde(default)]
    pub tags: Vec<Tag>,
    /// Emulator time of the next evaluation.
    #[serde(default)]
    pub next_evaluation: f64,
}

impl Alarm {
    /// Actions for a state.
    pub fn actions_for(&self, state: AlarmState) -> &[String] {
        match state {
            AlarmState::Ok => &self.ok_actions,
            AlarmState::Alarm => &self.alarm_actions,
            AlarmState::InsufficientData => &self.insufficient_data_actions,
        }
    }

    /// The period evaluated: the alarm's, or its metric math MetricStats'.
    pub fn evaluation_period(&self) -> i64 {
        self.period
            .or_else(|| {
                self.metrics
                    .iter()
                    .find_map(|q| q.get("MetricStat")?.get("Period")?.as_i64())
            })
            .or_else(|| self.metrics.iter().find_map(|q| q.get("Period")?.as_i64()))
            .unwrap_or(60)
            .max(1)
    }

    pub fn type_name(&self) -> &'static str {
        if self.composite {
            "CompositeAlarm"
        } else {
            "MetricAlarm"
        }
    }

    /// The MetricAlarm or CompositeAlarm structure.
    pub fn describe(&self) -> Value {
        let mut out = json!({
            "AlarmName": self.name,
            "AlarmArn": self.arn,
            "AlarmConfigurationUpdatedTimestamp": self.config_updated,
            "ActionsEnabled": self.actions_enabled,
            "OKActions": self.ok_actions,
            "AlarmActions": self.alarm_actions,
            "InsufficientDataActions": self.insufficient_data_actions,
            "StateValue": self.state.as_str(),
            "StateReason": self.state_reason,
            "StateUpdatedTimestamp": self.state_updated,
            "StateTransitionedTimestamp": self.state_transitioned,
        });
        let set = |out: &mut Value, k: &str, v: Value| {
            if !v.is_null() {
                out[k] = v;
            }
        };
        set(&mut out, "AlarmDescription", json!(self.description));
        set(&mut out, "StateReasonData", json!(self.state_reason_data));
        if self.composite {
            set(&mut out, "AlarmRule", json!(self.rule));
            return out;
        }
        set(&mut out, "Namespace", json!(self.namespace));
        set(&mut out, "MetricName", json!(self.metric_name));
        if self.metric_name.is_some() {
            out["Dimensions"] = json!(self.dimensions);
        }
        set(&mut out, "Statistic", json!(self.statistic));
        set(
            &mut out,
            "ExtendedStatistic",
            json!(self.extended_statistic),
        );
        set(&mut out, "Unit", json!(self.unit));
        set(&mut out, "Period", json!(self.period));
        if !self.metrics.is_empty() {
            out["Metrics"] = json!(self.metrics);
        }
        out["EvaluationPeriods"] = json!(self.evaluation_periods);
        set(
            &mut out,
            "DatapointsToAlarm",
            json!(self.datapoints_to_alarm),
        );
        set(&mut out, "Threshold", json!(self.threshold));
        set(
            &mut out,
            "ComparisonOperator",
            json!(self.comparison_operator),
        );
        set(&mut out, "TreatMissingData", json!(self.treat_missing_data));
        set(
            &mut out,
            "EvaluateLowSampleCountPercentile",
            json!(self.evaluate_low_sample_count_percentile),
        );
        set(
            &mut out,
            "ThresholdMetricId",
            json!(self.threshold_metric_id),
        );
        out
    }
}

/// One AlarmHistoryItem, keyed "<scope><timestamp>\u{1}<alarm name>\u{1}<id>" (chronological).
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct HistoryItem {
    pub alarm_name: String,
    pub alarm_type: String,
    pub timestamp: f64,
    /// ConfigurationUpdate, StateUpdate or Action.
    pub item_type: String,
    pub summary: String,
    pub data: String,
}

impl HistoryItem {
    pub fn key(&self, scope: &str) -> String {
        format!(
            "{scope}{:017.3}\u{1}{}\u{1}{}",
            self.timestamp,
            self.alarm_name,
            uuid::Uuid::new_v4().simple()
        )
    }

    pub fn describe(&self) -> Value {
        json!({
            "AlarmName": self.alarm_name,
            "AlarmType": self.alarm_type,
            "Timestamp": self.timestamp,
            "HistoryItemType": self.item_type,
            "HistorySummary": self.summary,
            "HistoryData": self.data,
        })
    }
}

/// "2026-12-01T21:40:05.123+0000", as alarm history and StateReasonData write times.
pub fn iso_millis(t: f64) -> String {
    chrono::DateTime::from_timestamp_millis((t * 1000.0) as i64)
        .map(|d| d.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests;
