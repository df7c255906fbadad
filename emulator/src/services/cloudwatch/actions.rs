//! Alarm actions that call into another service: the scaling policies of Application Auto
//! Scaling and EC2 Auto Scaling. A service that owns such ARNs implements [`AlarmActionTarget`]
//! and registers itself with [`CloudWatch::add_action_target`](super::CloudWatch::add_action_target)
//! (in their `register`, which runs after CloudWatch is built). ARNs no target owns (SNS topics, …) are recorded
//! in the alarm's history as executed, without a call.

use std::fmt;

/// An alarm state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum AlarmState {
    #[serde(rename = "OK")]
    Ok,
    #[serde(rename = "ALARM")]
    Alarm,
    #[default]
    #[serde(rename = "INSUFFICIENT_DATA")]
    InsufficientData,
}

impl AlarmState {
    pub fn as_str(self) -> &'static str {
        match self {
            AlarmState::Ok => "OK",
            AlarmState::Alarm => "ALARM",
            AlarmState::InsufficientData => "INSUFFICIENT_DATA",
        }
    }

    pub fn parse(s: &str) -> Option<AlarmState> {
        Some(match s {
            "OK" => AlarmState::Ok,
            "ALARM" => AlarmState::Alarm,
            "INSUFFICIENT_DATA" => AlarmState::InsufficientData,
            _ => return None,
        })
    }
}

impl fmt::Display for AlarmState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an action target is told when an alarm invokes it.
#[derive(Clone, Debug)]
pub struct AlarmEvent {
    pub account: String,
    pub region: String,
    pub alarm_name: String,
    pub alarm_arn: String,
    /// The state the alarm is in (whose action list named the target).
    pub state: AlarmState,
    pub previous_state: AlarmState,
    /// True on the evaluation that changed the state; false when CloudWatch repeats an Auto
    /// Scaling action because the alarm stays in the state (it does so once a minute).
    pub transition: bool,
    /// The alarm's threshold (None for composite alarms and SetAlarmState without data).
    pub threshold: Option<f64>,
    /// The newest evaluated datapoint's value: step scaling compares it with the threshold,
    /// target tracking with its target value.
    pub value: Option<f64>,
    /// The alarm's statistic or metric math label, for messages ("Average").
    pub statistic: Option<String>,
    /// Emulator time of the evaluation, epoch seconds.
    pub now: f64,
}

/// A service whose ARNs can be alarm actions.
pub trait AlarmActionTarget: Send + Sync {
    /// True when `arn` is one of this target's (e.g. an Application Auto Scaling policy ARN,
    /// `arn:aws:autoscaling:<region>:<account>:scalingPolicy:<id>:resource/<namespace>/…`, or an
    /// EC2 Auto Scaling one, `…:scalingPolicy:<id>:autoScalingGroupName/<group>:policyName/<name>`).
    fn owns(&self, arn: &str) -> bool;

    /// Runs the action. `Ok` carries nothing; `Err` a message for the alarm's history ("Failed
    /// to execute action <arn>. Received error: …"). Called on the evaluation loop: it must not
    /// block on I/O (write desired state and wake a controller instead).
    fn invoke(&self, arn: &str, event: &AlarmEvent) -> Result<(), String>;
}
