use super::scaling::{adjust, step_adjustment, tracking_capacity};
use serde_json::json;

#[test]
fn step_bounds_are_relative_to_the_threshold() {
    let conf = json!({"AdjustmentType": "ChangeInCapacity", "StepAdjustments": [
        {"MetricIntervalLowerBound": 0.0, "MetricIntervalUpperBound": 10.0, "ScalingAdjustment": 1},
        {"MetricIntervalLowerBound": 10.0, "ScalingAdjustment": 3},
        {"MetricIntervalUpperBound": 0.0, "ScalingAdjustment": -1},
    ]});
    assert_eq!(step_adjustment(&conf, 0.0), Some(1));
    assert_eq!(step_adjustment(&conf, 9.99), Some(1));
    assert_eq!(step_adjustment(&conf, 10.0), Some(3));
    assert_eq!(step_adjustment(&conf, -0.5), Some(-1));
    assert_eq!(adjust(&conf, 2, 3), 5);
}

#[test]
fn percent_change_rounds_like_aws_and_honours_min_magnitude() {
    let conf = json!({"AdjustmentType": "PercentChangeInCapacity"});
    assert_eq!(adjust(&conf, 10, 25), 12, "2.5 rounds down to 2");
    assert_eq!(adjust(&conf, 2, 10), 3, "0.2 becomes 1");
    assert_eq!(adjust(&conf, 10, -25), 8, "-2.5 rounds towards zero");
    assert_eq!(adjust(&conf, 2, -10), 1, "-0.2 becomes -1");
    let conf = json!({"AdjustmentType": "PercentChangeInCapacity", "MinAdjustmentMagnitude": 3});
    assert_eq!(adjust(&conf, 4, 50), 7);
    let exact = json!({"AdjustmentType": "ExactCapacity"});
    assert_eq!(adjust(&exact, 4, 2), 2);
}

#[test]
fn target_tracking_scales_proportionally() {
    assert_eq!(tracking_capacity(1, 200.0, 50.0, true), 4);
    assert_eq!(tracking_capacity(2, 55.0, 50.0, true), 3);
    assert_eq!(tracking_capacity(4, 10.0, 50.0, false), 1);
    assert_eq!(tracking_capacity(4, 44.0, 50.0, false), 3);
}
