//! Driving evaluation: read each due alarm's evaluation range from the series, decide its state
//! ([`eval::evaluate`]), write transitions with AWS's StateReason/StateReasonData and a history
//! item, then run its actions. Composite alarms follow the metric alarms in the same pass.

use super::super::actions::{AlarmEvent, AlarmState};
use super::super::expr;
use super::super::metrics::TimeSeries;
use super::super::series::{Dimension, SeriesId};
use super::super::stats::{self, Agg, Stat};
use super::super::CloudWatch;
use super::eval::{self, Missing, Op, Slot, Verdict};
use super::rule::Rule;
use super::{iso_millis, Alarm, HistoryItem};
use crate::protocol::AwsError;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashSet};

/// A state change to write.
pub(crate) struct Transition {
    pub to: AlarmState,
    pub reason: String,
    pub reason_data: Option<String>,
}

impl CloudWatch {
    /// Evaluates the metric alarms due at `now` (each once a minute of emulator time, or once a
    /// period for 10-, 20- and 30-second alarms), then every composite alarm.
    pub fn evaluate_due(&self, now: f64) {
        let due: Vec<(String, Alarm)> = {
            let next = self.next_evaluation.lock();
            self.alarms.read(|rows| {
                rows.iter()
                    .filter(|(k, a)| !a.composite && next.get(*k).is_none_or(|t| *t <= now))
                    .map(|(k, a)| (k.clone(), a.clone()))
                    .collect()
            })
        };
        for (key, alarm) in due {
            // Just after the next period closes (a little later, so data for it has arrived).
            let interval = alarm.evaluation_period().min(60) as f64;
            let offset = (interval / 6.0).min(10.0);
            let next = ((now - offset) / interval).floor() * interval + interval + offset;
            self.next_evaluation.lock().insert(key.clone(), next);
            self.evaluate_metric_alarm(&key, &alarm, now);
        }
        self.evaluate_composites(now);
    }

    fn evaluate_metric_alarm(&self, key: &str, alarm: &Alarm, now: f64) {
        let scope = scope_of(key, &alarm.name);
        let Some(rule) = rule_of(alarm) else {
            return;
        };
        let slots = match self.slots(&scope, alarm, &rule, now) {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(alarm = %alarm.name, error = %e.message, "alarm evaluation failed");
                return;
            }
        };
        let verdict = eval::evaluate(&rule, &slots);
        let new_state = verdict.state.unwrap_or(alarm.state);
        let value = verdict.evaluated.first().map(|(_, v)| *v);
        if new_state == alarm.state {
            self.repeat_scaling_actions(alarm, value, now);
            return;
        }
        let reason = state_reason(alarm, &rule, &verdict, new_state, slots.len());
        let data = reason_data(alarm, &rule, &verdict, &slots, now);
        let t = Transition {
            to: new_state,
            reason,
            reason_data: Some(data),
        };
        if let Some((before, after)) = self.transition(key, alarm.config_updated, t, now) {
            self.run_actions(&after, before, value, now);
        }
    }

    /// Writes a state change (unless the alarm changed meanwhile) with its history item.
    /// Returns the previous state and the updated alarm.
    pub(crate) fn transition(
        &self,
        key: &str,
        config_updated: f64,
        t: Transition,
        now: f64,
    ) -> Option<(AlarmState, Alarm)> {
        let scope = key.rsplit_once('/').map(|(s, _)| format!("{s}/"))?;
        let result = self.alarms.record::<_, AwsError, _>(|tx| {
            let Some(a) = tx.get_mut(key) else {
                return Ok(None);
            };
            if a.config_updated != config_updated {
                return Ok(None);
            }
            let before = a.state;
            let old_reason = a.state_reason.clone();
            a.state = t.to;
            a.state_reason = t.reason.clone();
            a.state_reason_data = t.reason_data.clone();
            a.state_updated = now;
            if before != t.to {
                a.state_transitioned = now;
            }
            Ok(Some((before, old_reason, a.clone())))
        });
        let (before, old_reason, after) = result.ok().flatten()?;
        let mut new_state = json!({"stateValue": t.to.as_str(), "stateReason": t.reason});
        if let Some(d) = t
            .reason_data
            .as_deref()
            .and_then(|d| serde_json::from_str::<Value>(d).ok())
        {
            new_state["stateReasonData"] = d;
        }
        let data = json!({
            "version": "1.0",
            "oldState": {"stateValue": before.as_str(), "stateReason": old_reason},
            "newState": new_state,
        });
        self.add_history(
            &scope,
            HistoryItem {
                alarm_name: after.name.clone(),
                alarm_type: after.type_name().into(),
                timestamp: now,
                item_type: "StateUpdate".into(),
                summary: format!("Alarm updated from {before} to {}", t.to),
                data: data.to_string(),
            },
        );
        self.alarm_changes.send_modify(|v| *v += 1);
        Some((before, after))
    }

    pub(crate) fn add_history(&self, scope: &str, item: HistoryItem) {
        let key = item.key(scope);
        let cutoff = format!("{scope}{:017.3}", item.timestamp - super::HISTORY_SECS);
        let _ = self.history.record::<_, AwsError, _>(|tx| {
            for old in tx.keys(scope) {
                if old.as_str() >= cutoff.as_str() {
                    break;
                }
                tx.remove(&old);
            }
            tx.put(&key, item);
            Ok(())
        });
    }

    /// Runs the actions of the state an alarm just entered, each recorded in its history.
    pub(crate) fn run_actions(
        &self,
        alarm: &Alarm,
        previous: AlarmState,
        value: Option<f64>,
        now: f64,
    ) {
        if !alarm.actions_enabled {
            return;
        }
        let scope = scope_from_arn(&alarm.arn);
        let event = self.event(alarm, previous, true, value, now);
        for arn in alarm.actions_for(alarm.state) {
            let outcome = match self.target_for(arn) {
                Some(target) => target.invoke(arn, &event),
                None => Ok(()),
            };
            let (summary, data) = match outcome {
                Ok(()) => (
                    format!("Successfully executed action {arn}"),
                    json!({"actionState": "Succeeded", "notificationResource": arn, "stateUpdateTimestamp": (now * 1000.0) as i64}),
                ),
                Err(e) => (
                    format!("Failed to execute action {arn}. Received error: \"{e}\""),
                    json!({"actionState": "Failed", "notificationResource": arn, "stateUpdateTimestamp": (now * 1000.0) as i64, "error": e}),
                ),
            };
            self.add_history(
                &scope,
                HistoryItem {
                    alarm_name: alarm.name.clone(),
                    alarm_type: alarm.type_name().into(),
                    timestamp: now,
                    item_type: "Action".into(),
                    summary,
                    data: data.to_string(),
                },
            );
        }
    }

    /// CloudWatch invokes Auto Scaling actions again once a minute while the alarm stays in the
    /// state; other actions run only on transitions.
    fn repeat_scaling_actions(&self, alarm: &Alarm, value: Option<f64>, now: f64) {
        if !alarm.actions_enabled {
            return;
        }
        let event = self.event(alarm, alarm.state, false, value, now);
        for arn in alarm.actions_for(alarm.state) {
            if let Some(target) = self.target_for(arn) {
                if let Err(e) = target.invoke(arn, &event) {
                    tracing::debug!(alarm = %alarm.name, %arn, error = %e, "repeated alarm action failed");
                }
            }
        }
    }

    fn event(
        &self,
        alarm: &Alarm,
        previous: AlarmState,
        transition: bool,
        value: Option<f64>,
        now: f64,
    ) -> AlarmEvent {
        let mut parts = alarm.arn.split(':');
        let region = parts.nth(3).unwrap_or_default().to_string();
        let account = parts.next().unwrap_or_default().to_string();
        AlarmEvent {
            account,
            region,
            alarm_name: alarm.name.clone(),
            alarm_arn: alarm.arn.clone(),
            state: alarm.state,
            previous_state: previous,
            transition,
            threshold: alarm.threshold,
            value,
            statistic: alarm
                .statistic
                .clone()
                .or_else(|| alarm.extended_statistic.clone()),
            now,
        }
    }

    /// The evaluation range of a metric alarm: [`eval::Rule::range`] periods ending at the last
    /// complete period, oldest first.
    fn slots(
        &self,
        scope: &str,
        alarm: &Alarm,
        rule: &eval::Rule,
        now: f64,
    ) -> Result<Vec<Slot>, AwsError> {
        let period = alarm.evaluation_period();
        let p = period as f64;
        let end = (now / p).floor() * p;
        let start = end - rule.range() as f64 * p;
        let series = if alarm.metrics.is_empty() {
            let stat_name = alarm
                .statistic
                .as_deref()
                .or(alarm.extended_statistic.as_deref())
                .unwrap_or("Average");
            let stat = Stat::parse(stat_name).unwrap_or(Stat::Average);
            let id = SeriesId::new(
                alarm.namespace.as_deref().unwrap_or_default(),
                alarm.metric_name.as_deref().unwrap_or_default(),
                alarm.dimensions.clone(),
            );
            self.bucketed(
                scope,
                &id,
                alarm.unit.as_deref(),
                stat,
                start,
                end,
                period,
                now,
            )
        } else {
            self.math(scope, alarm, start, end, now)?
        };
        Ok((0..rule.range())
            .map(|i| {
                let t = start + i as f64 * p;
                (t, series.get(&(t as i64)).copied())
            })
            .collect())
    }

    #[allow(clippy::too_many_arguments)]
    fn bucketed(
        &self,
        scope: &str,
        id: &SeriesId,
        unit: Option<&str>,
        stat: Stat,
        start: f64,
        end: f64,
        period: i64,
        now: f64,
    ) -> TimeSeries {
        let points: Vec<_> = self
            .series
            .points(scope, id, start, end, now)
            .into_iter()
            .filter(|p| unit.is_none_or(|u| p.unit.as_deref().unwrap_or("None") == u))
            .collect();
        stats::bucket(&points, start, period)
            .into_iter()
            .filter_map(|(t, ps)| Some((t, Agg::of(ps)?.get(stat)?)))
            .collect()
    }

    /// A metric math alarm's series: the query with ReturnData (or the only expression).
    fn math(
        &self,
        scope: &str,
        alarm: &Alarm,
        start: f64,
        end: f64,
        now: f64,
    ) -> Result<TimeSeries, AwsError> {
        let mut results = BTreeMap::new();
        let mut metric_ids = Vec::new();
        let mut expressions = BTreeMap::new();
        for q in &alarm.metrics {
            let id = q.get("Id").and_then(Value::as_str).unwrap_or_default();
            if let Some(ms) = q.get("MetricStat") {
                let m = ms.get("Metric").cloned().unwrap_or(Value::Null);
                let s = |k: &str| m.get(k).and_then(Value::as_str).unwrap_or_default();
                let dims: Vec<Dimension> = m
                    .get("Dimensions")
                    .cloned()
                    .and_then(|d| serde_json::from_value(d).ok())
                    .unwrap_or_default();
                let sid = SeriesId::new(s("Namespace"), s("MetricName"), dims);
                let stat = ms
                    .get("Stat")
                    .and_then(Value::as_str)
                    .and_then(Stat::parse)
                    .unwrap_or(Stat::Average);
                let period = ms.get("Period").and_then(Value::as_i64).unwrap_or(60);
                let unit = ms.get("Unit").and_then(Value::as_str);
                results.insert(
                    id.to_string(),
                    self.bucketed(scope, &sid, unit, stat, start, end, period, now),
                );
                metric_ids.push(id.to_string());
            } else if let Some(e) = q.get("Expression").and_then(Value::as_str) {
                expressions.insert(id.to_string(), e.to_string());
            }
        }
        let returned = alarm
            .metrics
            .iter()
            .find(|q| q.get("ReturnData").and_then(Value::as_bool) == Some(true))
            .or_else(|| alarm.metrics.iter().find(|q| q.get("Expression").is_some()))
            .and_then(|q| q.get("Id").and_then(Value::as_str))
            .unwrap_or_default()
            .to_string();
        let mut env = expr::Env {
            series: results,
            metric_ids,
            expressions,
            in_progress: HashSet::new(),
        };
        env.resolve(&returned)
    }

    fn evaluate_composites(&self, now: f64) {
        let (composites, states): (Vec<(String, Alarm)>, BTreeMap<String, AlarmState>) =
            self.alarms.read(|rows| {
                let composites = rows
                    .iter()
                    .filter(|(_, a)| a.composite)
                    .map(|(k, a)| (k.clone(), a.clone()))
                    .collect();
                let mut states = BTreeMap::new();
                for a in rows.values() {
                    states.insert(a.arn.clone(), a.state);
                }
                (composites, states)
            });
        for (key, alarm) in composites {
            let Some(rule) = alarm.rule.as_deref().and_then(|r| Rule::parse(r).ok()) else {
                continue;
            };
            let prefix = alarm
                .arn
                .rsplit_once(":alarm:")
                .map(|(p, _)| p)
                .unwrap_or("");
            let arn_of = |n: &str| {
                if n.starts_with("arn:") {
                    n.to_string()
                } else {
                    format!("{prefix}:alarm:{n}")
                }
            };
            let state_of = |n: &str| states.get(&arn_of(n)).copied();
            let to = if rule.eval(&state_of) {
                AlarmState::Alarm
            } else {
                AlarmState::Ok
            };
            if to == alarm.state {
                continue;
            }
            // AWS names the child alarms whose states decide the rule.
            let triggering: Vec<String> = rule
                .alarms()
                .iter()
                .filter(|n| state_of(n) == Some(to) || to == AlarmState::Ok)
                .map(|n| arn_of(n))
                .collect();
            let when = chrono::DateTime::from_timestamp(now as i64, 0)
                .map(|d| d.format("%A %d %B, %Y %H:%M:%S UTC").to_string())
                .unwrap_or_default();
            let reason = match triggering.first() {
                Some(child) => {
                    let child_state = states
                        .get(child)
                        .map(|s| s.as_str())
                        .unwrap_or("INSUFFICIENT_DATA");
                    format!("{child} transitioned to {child_state} at {when}")
                }
                None => format!("Rule evaluated to {} at {when}", to == AlarmState::Alarm),
            };
            let data = json!({
                "triggeringAlarms": triggering.iter().map(|arn| json!({
                    "arn": arn,
                    "state": {"value": states.get(arn).map(|s| s.as_str()).unwrap_or("INSUFFICIENT_DATA")},
                })).collect::<Vec<_>>(),
            });
            let t = Transition {
                to,
                reason,
                reason_data: Some(data.to_string()),
            };
            if let Some((before, after)) = self.transition(&key, alarm.config_updated, t, now) {
                self.run_actions(&after, before, None, now);
            }
        }
    }
}

/// The evaluation rule of a metric alarm (None when it cannot be evaluated).
pub(crate) fn rule_of(alarm: &Alarm) -> Option<eval::Rule> {
    let n = alarm.evaluation_periods.max(1) as usize;
    Some(eval::Rule {
        m: alarm
            .datapoints_to_alarm
            .map(|m| m as usize)
            .unwrap_or(n)
            .clamp(1, n),
        n,
        missing: Missing::parse(alarm.treat_missing_data.as_deref())?,
        op: Op::parse(alarm.comparison_operator.as_deref()?)?,
        threshold: alarm.threshold?,
    })
}

fn scope_of(key: &str, name: &str) -> String {
    key.strip_suffix(name).unwrap_or(key).to_string()
}

fn scope_from_arn(arn: &str) -> String {
    let mut parts = arn.split(':');
    let region = parts.nth(3).unwrap_or_default();
    let account = parts.next().unwrap_or_default();
    format!("{account}/{region}/")
}

/// "21.5 (01/12/26 21:40:00)": a datapoint as StateReason lists it.
fn point_text(t: f64, v: f64) -> String {
    let when = chrono::DateTime::from_timestamp(t as i64, 0)
        .map(|d| d.format("%d/%m/%y %H:%M:%S").to_string())
        .unwrap_or_default();
    format!("{v:?} ({when})")
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        "datapoint"
    } else {
        "datapoints"
    }
}

/// StateReason as CloudWatch writes it, e.g. "Threshold Crossed: 3 out of the last 3 datapoints
/// [80.0 (01/12/26 21:42:00), …] were greater than the threshold (50.0) (minimum 3 datapoints
/// for OK -> ALARM transition)."
fn state_reason(
    alarm: &Alarm,
    rule: &eval::Rule,
    v: &Verdict,
    to: AlarmState,
    range: usize,
) -> String {
    if to == AlarmState::InsufficientData {
        let unknown = range - v.evaluated.len();
        let verb = if unknown == 1 { "was" } else { "were" };
        return format!(
            "Insufficient Data: {unknown} {} {verb} unknown.",
            plural(unknown)
        );
    }
    let alarming = to == AlarmState::Alarm;
    let matching: Vec<&(f64, f64)> = v
        .evaluated
        .iter()
        .filter(|(_, x)| rule.op.breaches(*x, rule.threshold) == alarming)
        .collect();
    let listed = matching
        .iter()
        .map(|(t, x)| point_text(*t, *x))
        .collect::<Vec<_>>()
        .join(", ");
    let count = if alarming {
        v.breaching
    } else {
        rule.n - v.breaching
    };
    let verb = if count == 1 { "was" } else { "were" };
    let not = if alarming { "" } else { "not " };
    let threshold = format!("{:?}", rule.threshold);
    if rule.n == 1 {
        return format!(
            "Threshold Crossed: 1 datapoint [{listed}] {verb} {not}{} the threshold ({threshold}).",
            rule.op.words()
        );
    }
    let minimum = if alarming {
        rule.m
    } else {
        rule.n - rule.m + 1
    };
    format!(
        "Threshold Crossed: {count} out of the last {} {} [{listed}] {verb} {not}{} the threshold ({threshold}) (minimum {minimum} {} for {} -> {to} transition).",
        rule.n,
        plural(rule.n),
        rule.op.words(),
        plural(minimum),
        alarm.state,
    )
}

/// StateReasonData: the JSON document CloudWatch attaches to threshold transitions.
fn reason_data(alarm: &Alarm, rule: &eval::Rule, v: &Verdict, slots: &[Slot], now: f64) -> String {
    let mut data = json!({
        "version": "1.0",
        "queryDate": iso_millis(now),
        "startDate": iso_millis(slots.first().map(|s| s.0).unwrap_or(now)),
        "period": alarm.evaluation_period(),
        "recentDatapoints": slots.iter().filter_map(|(_, x)| *x).collect::<Vec<_>>(),
        "threshold": rule.threshold,
        "evaluatedDatapoints": v.evaluated.iter().map(|(t, x)| json!({
            "timestamp": iso_millis(*t),
            "value": x,
        })).collect::<Vec<_>>(),
    });
    if let Some(s) = &alarm.statistic {
        data["statistic"] = json!(s);
    }
    if let Some(s) = &alarm.extended_statistic {
        data["statistic"] = json!(s);
    }
    if let Some(u) = &alarm.unit {
        data["unit"] = json!(u);
    }
    data.to_string()
}
