use super::handlers::*;
use crate::services::cloudwatch::{AlarmActionTarget, AlarmEvent, AlarmState, CloudWatch};
use crate::services::{Ctx, Deps};
use parking_lot::Mutex;
use serde_json::{json, Value};
use std::sync::Arc;

fn cw() -> CloudWatch {
    CloudWatch::open(&Deps::for_tests())
}

/// A context at `t` (minute-aligned test epoch plus seconds).
fn at(t: f64) -> Ctx {
    let mut c = Ctx::for_tests();
    c.now = t;
    c
}

const T0: f64 = 1_767_225_600.0;

fn put_value(cw: &CloudWatch, t: f64, v: f64) {
    super::super::metrics::put_metric_data(
        cw,
        &at(t),
        json!({"Namespace": "App", "MetricData": [{"MetricName": "Load", "Value": v, "Timestamp": t}]}),
    )
    .expect("put");
}

fn alarm_input(extra: Value) -> Value {
    let mut v = json!({
        "AlarmName": "load-high", "Namespace": "App", "MetricName": "Load",
        "Statistic": "Average", "Period": 60, "EvaluationPeriods": 3,
        "Threshold": 50.0, "ComparisonOperator": "GreaterThanThreshold",
        "AlarmActions": ["arn:aws:autoscaling:us-east-1:000000000000:scalingPolicy:p:resource/ecs/service/c/s:policyName/x",
                         "arn:aws:sns:us-east-1:000000000000:topic"],
    });
    if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
        for (k, x) in e {
            o.insert(k.clone(), x.clone());
        }
    }
    v
}

fn describe(cw: &CloudWatch, name: &str) -> Value {
    let out = describe_alarms(
        cw,
        &at(T0),
        json!({"AlarmNames": [name], "AlarmTypes": ["MetricAlarm", "CompositeAlarm"]}),
    )
    .expect("describe");
    let mut all: Vec<Value> = out["MetricAlarms"].as_array().cloned().unwrap_or_default();
    all.extend(
        out["CompositeAlarms"]
            .as_array()
            .cloned()
            .unwrap_or_default(),
    );
    all.into_iter().next().expect("alarm")
}

#[derive(Default)]
struct Recorder {
    calls: Mutex<Vec<(String, AlarmEvent)>>,
}

impl AlarmActionTarget for Recorder {
    fn owns(&self, arn: &str) -> bool {
        arn.starts_with("arn:aws:autoscaling:")
    }
    fn invoke(&self, arn: &str, event: &AlarmEvent) -> Result<(), String> {
        self.calls.lock().push((arn.to_string(), event.clone()));
        Ok(())
    }
}

#[test]
fn breaching_data_alarms_with_aws_reason_history_and_actions() {
    let cw = cw();
    let rec = Arc::new(Recorder::default());
    cw.add_action_target(rec.clone());
    put_metric_alarm(&cw, &at(T0), alarm_input(json!({}))).expect("put alarm");
    let a = describe(&cw, "load-high");
    assert_eq!(a["StateValue"], "INSUFFICIENT_DATA");
    assert_eq!(a["StateReason"], "Unchecked: Initial alarm creation");
    for i in 0..3 {
        put_value(&cw, T0 + 60.0 * i as f64 + 5.0, 80.0 + i as f64);
    }
    cw.evaluate_due(T0 + 190.0);
    let a = describe(&cw, "load-high");
    assert_eq!(a["StateValue"], "ALARM");
    let reason = a["StateReason"].as_str().expect("reason");
    assert!(
        reason.starts_with("Threshold Crossed: 3 out of the last 3 datapoints [82.0 (01/01/26 00:02:00), 81.0 (01/01/26 00:01:00), 80.0 (01/01/26 00:00:00)] were greater than the threshold (50.0) (minimum 3 datapoints for INSUFFICIENT_DATA -> ALARM transition)."),
        "{reason}"
    );
    let data: Value =
        serde_json::from_str(a["StateReasonData"].as_str().expect("data")).expect("json");
    assert_eq!(data["statistic"], "Average");
    assert_eq!(data["evaluatedDatapoints"][0]["value"], json!(82.0));
    let calls = rec.calls.lock().clone();
    assert_eq!(calls.len(), 1, "the SNS action is recorded, not called");
    assert_eq!(calls[0].1.value, Some(82.0));
    assert_eq!(calls[0].1.threshold, Some(50.0));
    assert!(calls[0].1.transition);
    // History: creation, the transition, and both actions.
    let h = describe_alarm_history(&cw, &at(T0 + 200.0), json!({"AlarmName": "load-high"}))
        .expect("history");
    let items = h["AlarmHistoryItems"].as_array().expect("items");
    let kinds: Vec<&str> = items
        .iter()
        .filter_map(|i| i["HistoryItemType"].as_str())
        .collect();
    assert_eq!(kinds.iter().filter(|k| **k == "Action").count(), 2);
    assert!(kinds.contains(&"ConfigurationUpdate"));
    let state = items
        .iter()
        .find(|i| i["HistoryItemType"] == "StateUpdate")
        .expect("state item");
    assert_eq!(
        state["HistorySummary"],
        "Alarm updated from INSUFFICIENT_DATA to ALARM"
    );
    assert!(items.iter().any(|i| i["HistorySummary"]
        == "Successfully executed action arn:aws:sns:us-east-1:000000000000:topic"));
    // Staying in ALARM re-invokes the Auto Scaling action once a minute, without history.
    put_value(&cw, T0 + 185.0, 90.0);
    cw.evaluate_due(T0 + 250.0);
    assert_eq!(rec.calls.lock().len(), 2);
    assert!(!rec.calls.lock()[1].1.transition);
    // Disabled actions are not run.
    disable_alarm_actions(&cw, &at(T0), json!({"AlarmNames": ["load-high"]})).expect("disable");
    cw.evaluate_due(T0 + 310.0);
    assert_eq!(rec.calls.lock().len(), 2);
}

#[test]
fn recovering_data_goes_ok_and_no_data_is_insufficient() {
    let cw = cw();
    put_metric_alarm(
        &cw,
        &at(T0),
        alarm_input(json!({"EvaluationPeriods": 2, "DatapointsToAlarm": 1})),
    )
    .expect("put");
    put_value(&cw, T0 + 5.0, 10.0);
    put_value(&cw, T0 + 65.0, 20.0);
    cw.evaluate_due(T0 + 125.0);
    let a = describe(&cw, "load-high");
    assert_eq!(a["StateValue"], "OK");
    assert!(a["StateReason"].as_str().expect("r").contains("were not greater than the threshold (50.0) (minimum 2 datapoints for INSUFFICIENT_DATA -> OK transition)"), "{}", a["StateReason"]);
    put_metric_alarm(
        &cw,
        &at(T0),
        alarm_input(json!({"AlarmName": "empty", "MetricName": "Nothing"})),
    )
    .expect("put");
    cw.evaluate_due(T0 + 600.0);
    let a = describe(&cw, "empty");
    assert_eq!(a["StateValue"], "INSUFFICIENT_DATA");
}

#[test]
fn metric_math_alarm_evaluates_the_expression() {
    let cw = cw();
    put_metric_alarm(&cw, &at(T0), json!({
        "AlarmName": "math", "EvaluationPeriods": 1, "Threshold": 100.0,
        "ComparisonOperator": "GreaterThanOrEqualToThreshold",
        "Metrics": [
            {"Id": "m1", "ReturnData": false, "MetricStat": {"Metric": {"Namespace": "App", "MetricName": "Load"}, "Period": 60, "Stat": "Sum"}},
            {"Id": "e1", "Expression": "m1 * 2", "ReturnData": true},
        ]})).expect("put");
    put_value(&cw, T0 + 5.0, 30.0);
    put_value(&cw, T0 + 6.0, 25.0);
    cw.evaluate_due(T0 + 70.0);
    let a = describe(&cw, "math");
    assert_eq!(a["StateValue"], "ALARM", "{}", a["StateReason"]);
    assert!(a["StateReason"].as_str().expect("r").starts_with("Threshold Crossed: 1 datapoint [110.0 (01/01/26 00:00:00)] was greater than or equal to the threshold (100.0)."));
}

#[test]
fn composite_alarm_follows_its_rule() {
    let cw = cw();
    put_metric_alarm(&cw, &at(T0), alarm_input(json!({"AlarmActions": []}))).expect("put");
    put_metric_alarm(
        &cw,
        &at(T0),
        alarm_input(json!({"AlarmName": "other", "AlarmActions": []})),
    )
    .expect("put");
    let err = put_composite_alarm(
        &cw,
        &at(T0),
        json!({"AlarmName": "both", "AlarmRule": "ALARM(load-high) AND ALARM(missing)"}),
    )
    .expect_err("unknown child");
    assert_eq!(err.code, "InvalidParameterValueException");
    let err = put_composite_alarm(
        &cw,
        &at(T0),
        json!({"AlarmName": "both", "AlarmRule": "ALARM(load-high) AND"}),
    )
    .expect_err("bad rule");
    assert_eq!(err.code, "InvalidParameterValueException");
    put_composite_alarm(
        &cw,
        &at(T0),
        json!({"AlarmName": "both", "AlarmRule": "ALARM(load-high) AND NOT ALARM(\"other\")"}),
    )
    .expect("composite");
    // Evaluated once (no data), the metric alarms are next due a minute later; SetAlarmState
    // holds until then.
    cw.evaluate_due(T0 + 1.0);
    set_alarm_state(
        &cw,
        &at(T0 + 1.0),
        json!({"AlarmName": "load-high", "StateValue": "ALARM", "StateReason": "testing"}),
    )
    .expect("set");
    set_alarm_state(
        &cw,
        &at(T0 + 1.0),
        json!({"AlarmName": "other", "StateValue": "OK", "StateReason": "testing"}),
    )
    .expect("set");
    cw.evaluate_due(T0 + 2.0);
    let c = describe(&cw, "both");
    assert_eq!(c["StateValue"], "ALARM");
    assert!(c["StateReason"]
        .as_str()
        .expect("r")
        .contains(":alarm:load-high transitioned to ALARM at"));
    // Describe without AlarmTypes returns metric alarms only.
    let out = describe_alarms(&cw, &at(T0), json!({})).expect("describe");
    assert_eq!(out["MetricAlarms"].as_array().map(Vec::len), Some(2));
    assert_eq!(out["CompositeAlarms"].as_array().map(Vec::len), Some(0));
    let parents = describe_alarms(
        &cw,
        &at(T0),
        json!({"ParentsOfAlarmName": "other", "AlarmTypes": ["CompositeAlarm"]}),
    )
    .expect("parents");
    assert_eq!(parents["CompositeAlarms"][0]["AlarmName"], "both");
}

#[test]
fn put_metric_alarm_refuses_bad_input() {
    let cw = cw();
    let cases = [
        (
            json!({"ComparisonOperator": "LessThanLowerOrGreaterThanUpperThreshold"}),
            "InvalidParameterCombinationException",
        ),
        (
            json!({"ComparisonOperator": "GreaterThanUpperThreshold", "ThresholdMetricId": "ad1"}),
            "InvalidParameterValueException",
        ),
        (json!({"Period": 90}), "InvalidParameterValueException"),
        (
            json!({"Period": 3600, "EvaluationPeriods": 25}),
            "InvalidParameterValueException",
        ),
        (
            json!({"DatapointsToAlarm": 4}),
            "InvalidParameterValueException",
        ),
        (
            json!({"ExtendedStatistic": "p99"}),
            "InvalidParameterCombinationException",
        ),
        (
            json!({"TreatMissingData": "sometimes"}),
            "InvalidParameterValueException",
        ),
        (
            json!({"AlarmActions": ["not-an-arn"]}),
            "InvalidParameterValueException",
        ),
        (
            json!({"Metrics": [{"Id": "m1", "Expression": "1"}]}),
            "InvalidParameterCombinationException",
        ),
    ];
    for (extra, code) in cases {
        let err = put_metric_alarm(&cw, &at(T0), alarm_input(extra.clone())).expect_err("refused");
        assert_eq!(err.code, code, "{extra}: {}", err.message);
    }
    assert!(cw.alarms.is_empty(), "nothing half-created");
    for p in [10, 30, 60, 120] {
        put_metric_alarm(&cw, &at(T0), alarm_input(json!({"Period": p}))).expect("valid period");
    }
}

#[test]
fn describe_pages_filters_and_tags() {
    let cw = cw();
    for i in 0..5 {
        put_metric_alarm(&cw, &at(T0), alarm_input(json!({"AlarmName": format!("a{i}"), "AlarmActions": if i % 2 == 0 { json!(["arn:aws:sns:us-east-1:000000000000:x"]) } else { json!([]) }}))).expect("put");
    }
    let p1 = describe_alarms(&cw, &at(T0), json!({"MaxRecords": 2})).expect("p1");
    assert_eq!(p1["MetricAlarms"].as_array().map(Vec::len), Some(2));
    let token = p1["NextToken"].as_str().expect("token").to_string();
    let p2 =
        describe_alarms(&cw, &at(T0), json!({"MaxRecords": 2, "NextToken": token})).expect("p2");
    assert_eq!(p2["MetricAlarms"][0]["AlarmName"], "a2");
    let bad = describe_alarms(&cw, &at(T0), json!({"NextToken": "!!"})).expect_err("token");
    assert_eq!(bad.code, "InvalidNextToken");
    let sns =
        describe_alarms(&cw, &at(T0), json!({"ActionPrefix": "arn:aws:sns:"})).expect("prefix");
    assert_eq!(sns["MetricAlarms"].as_array().map(Vec::len), Some(3));
    let pre = describe_alarms(
        &cw,
        &at(T0),
        json!({"AlarmNamePrefix": "a4", "StateValue": "INSUFFICIENT_DATA"}),
    )
    .expect("prefix");
    assert_eq!(pre["MetricAlarms"].as_array().map(Vec::len), Some(1));
    let for_metric = describe_alarms_for_metric(
        &cw,
        &at(T0),
        json!({"Namespace": "App", "MetricName": "Load", "Period": 60}),
    )
    .expect("for metric");
    assert_eq!(for_metric["MetricAlarms"].as_array().map(Vec::len), Some(5));
    let arn = "arn:aws:cloudwatch:us-east-1:000000000000:alarm:a1";
    tag_resource(
        &cw,
        &at(T0),
        json!({"ResourceARN": arn, "Tags": [{"Key": "team", "Value": "x"}]}),
    )
    .expect("tag");
    assert_eq!(
        list_tags_for_resource(&cw, &at(T0), json!({"ResourceARN": arn})).expect("tags")["Tags"],
        json!([{"Key": "team", "Value": "x"}])
    );
    let missing = list_tags_for_resource(
        &cw,
        &at(T0),
        json!({"ResourceARN": "arn:aws:cloudwatch:us-east-1:000000000000:alarm:nope"}),
    )
    .expect_err("missing");
    assert_eq!(missing.code, "ResourceNotFoundException");
    let err =
        delete_alarms(&cw, &at(T0), json!({"AlarmNames": ["a1", "nope"]})).expect_err("missing");
    assert_eq!(err.code, "ResourceNotFound");
    assert!(
        cw.alarms.get("000000000000/us-east-1/a1").is_some(),
        "nothing deleted"
    );
    delete_alarms(&cw, &at(T0), json!({"AlarmNames": ["a1", "a2"]})).expect("delete");
    assert_eq!(cw.alarms.len(), 3);
    assert_eq!(
        cw.alarm_state("000000000000", "us-east-1", "a3")
            .map(|s| s.0),
        Some(AlarmState::InsufficientData)
    );
}
