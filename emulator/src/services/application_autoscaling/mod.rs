//! Application Auto Scaling: scalable targets, scaling policies (target tracking, step scaling,
//! predictive stored), scheduled actions, scaling activities and tags.
//!
//! Namespace `ecs` with dimension `ecs:service:DesiredCount` acts on ECS services through the
//! typed [`Ecs`] handle. Every other namespace is stored and validated, but no resource stands
//! behind it: its scaling activities say so and end Failed.
//!
//! Policies run when their CloudWatch alarms invoke them: this service is an
//! [`AlarmActionTarget`] for `arn:aws:autoscaling:…:scalingPolicy:…:resource/…` ARNs. Scheduled
//! actions run on the emulator clock (`run_scheduler`).

mod activities;
mod policies;
mod scaling;
mod scheduled;
mod targets;

use super::cloudwatch::{AlarmActionTarget, AlarmEvent, CloudWatch};
use super::ecs::Ecs;
use super::{Deps, Registry};
use crate::protocol::codes;
use crate::protocol::AwsError;
use crate::store::Table;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Shared with EC2 Auto Scaling, whose policies compute capacities the same way.
pub(crate) use scaling::{adjust, step_adjustment, tracking_capacity};
pub use scheduled::run_scheduler;

const SVC: &str = "application-autoscaling";

/// The service's state; `registry.handle::<AppAutoScaling>()`.
pub struct AppAutoScaling {
    /// Keyed "<scope><namespace>|<resource id>|<dimension>".
    pub targets: Arc<Table<ScalableTarget>>,
    /// Keyed "<target key>|<policy name>".
    pub policies: Arc<Table<ScalingPolicy>>,
    /// Keyed "<target key>|<scheduled action name>".
    pub scheduled: Arc<Table<ScheduledAction>>,
    /// Keyed "<scope><start time>|<activity id>" (chronological).
    pub activities: Arc<Table<Activity>>,
    /// CloudWatch, for target tracking alarms (its alarms call back through
    /// [`AlarmActionTarget`]).
    pub cloudwatch: Arc<CloudWatch>,
    /// ECS, whose services `ecs:service:DesiredCount` scales.
    pub ecs: Arc<Ecs>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Suspended {
    pub dynamic_in: bool,
    pub dynamic_out: bool,
    pub scheduled: bool,
}

/// The last scale-out or scale-in a cooldown is measured from.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct LastScaling {
    pub at: f64,
    /// Capacity before and after.
    pub from: i64,
    pub to: i64,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub struct ScalableTarget {
    pub namespace: String,
    pub resource_id: String,
    pub dimension: String,
    pub min: i64,
    pub max: i64,
    pub role_arn: String,
    pub arn: String,
    pub created: f64,
    #[serde(default)]
    pub suspended: Suspended,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Per policy name: its last scale-out and scale-in (cooldowns are per policy).
    #[serde(default)]
    pub last_out: BTreeMap<String, LastScaling>,
    #[serde(default)]
    pub last_in: BTreeMap<String, LastScaling>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub struct AlarmRef {
    pub name: String,
    pub arn: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub struct ScalingPolicy {
    pub name: String,
    pub arn: String,
    pub namespace: String,
    pub resource_id: String,
    pub dimension: String,
    /// StepScaling, TargetTrackingScaling or PredictiveScaling.
    pub policy_type: String,
    /// The configuration as given (model shape).
    pub configuration: Value,
    /// Target tracking: the high alarm first, then the low one (absent with DisableScaleIn).
    #[serde(default)]
    pub alarms: Vec<AlarmRef>,
    pub created: f64,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub struct ScheduledAction {
    pub name: String,
    pub arn: String,
    pub namespace: String,
    pub resource_id: String,
    pub dimension: String,
    pub schedule: String,
    #[serde(default)]
    pub timezone: Option<String>,
    #[serde(default)]
    pub start: Option<f64>,
    #[serde(default)]
    pub end: Option<f64>,
    #[serde(default)]
    pub min: Option<i64>,
    #[serde(default)]
    pub max: Option<i64>,
    pub created: f64,
    /// Emulator time of the next run (None: none left).
    #[serde(default)]
    pub next_run: Option<f64>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct NotScaledReason {
    pub code: String,
    #[serde(default)]
    pub max: Option<i64>,
    #[serde(default)]
    pub min: Option<i64>,
    #[serde(default)]
    pub current: Option<i64>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub struct Activity {
    pub id: String,
    pub namespace: String,
    pub resource_id: String,
    pub dimension: String,
    pub description: String,
    pub cause: String,
    pub start: f64,
    #[serde(default)]
    pub end: Option<f64>,
    /// Pending, InProgress, Successful, Overridden, Unfulfilled, Failed.
    pub status: String,
    #[serde(default)]
    pub message: Option<String>,
    /// A not scaled activity (shown with IncludeNotScaledActivities).
    #[serde(default)]
    pub not_scaled: Vec<NotScaledReason>,
}

pub(crate) fn validation(msg: impl Into<String>) -> AwsError {
    AwsError::new(codes::application_autoscaling::ValidationException, msg)
}

pub(crate) fn target_key(scope: &str, namespace: &str, resource_id: &str, dim: &str) -> String {
    format!("{scope}{namespace}|{resource_id}|{dim}")
}

pub(crate) fn no_target(namespace: &str, resource_id: &str, dim: &str) -> AwsError {
    AwsError::new(codes::application_autoscaling::ObjectNotFoundException,
        format!(
            "No scalable target registered for service namespace: {namespace}, resource ID: {resource_id}, scalable dimension: {dim}"
        ),
    )
}

impl AlarmActionTarget for AppAutoScaling {
    fn owns(&self, arn: &str) -> bool {
        arn.starts_with("arn:aws:autoscaling:")
            && arn.contains(":scalingPolicy:")
            && arn.contains(":resource/")
    }

    fn invoke(&self, arn: &str, event: &AlarmEvent) -> Result<(), String> {
        self.execute_policy(arn, event)
    }
}

/// Application Auto Scaling is built last: it scales ECS services on CloudWatch alarms.
pub fn register(
    r: &mut Registry,
    deps: &Deps,
    cloudwatch: Arc<CloudWatch>,
    ecs: Arc<Ecs>,
) -> Arc<AppAutoScaling> {
    let s = Arc::new(AppAutoScaling {
        targets: Table::open(&deps.store, "application_autoscaling.targets"),
        policies: Table::open(&deps.store, "application_autoscaling.policies"),
        scheduled: Table::open(&deps.store, "application_autoscaling.scheduled_actions"),
        activities: Table::open(&deps.store, "application_autoscaling.activities"),
        cloudwatch: cloudwatch.clone(),
        ecs,
    });
    cloudwatch.add_action_target(s.clone());
    r.sync(
        SVC,
        "RegisterScalableTarget",
        &s,
        targets::register_scalable_target,
    );
    r.sync(
        SVC,
        "DescribeScalableTargets",
        &s,
        targets::describe_scalable_targets,
    );
    r.sync(
        SVC,
        "DeregisterScalableTarget",
        &s,
        targets::deregister_scalable_target,
    );
    r.sync(SVC, "PutScalingPolicy", &s, policies::put_scaling_policy);
    r.sync(
        SVC,
        "DescribeScalingPolicies",
        &s,
        policies::describe_scaling_policies,
    );
    r.sync(
        SVC,
        "DeleteScalingPolicy",
        &s,
        policies::delete_scaling_policy,
    );
    r.sync(
        SVC,
        "PutScheduledAction",
        &s,
        scheduled::put_scheduled_action,
    );
    r.sync(
        SVC,
        "DescribeScheduledActions",
        &s,
        scheduled::describe_scheduled_actions,
    );
    r.sync(
        SVC,
        "DeleteScheduledAction",
        &s,
        scheduled::delete_scheduled_action,
    );
    r.sync(
        SVC,
        "DescribeScalingActivities",
        &s,
        activities::describe_scaling_activities,
    );
    r.sync(
        SVC,
        "GetPredictiveScalingForecast",
        &s,
        policies::get_predictive_scaling_forecast,
    );
    r.sync(SVC, "TagResource", &s, targets::tag_resource);
    r.sync(SVC, "UntagResource", &s, targets::untag_resource);
    r.sync(
        SVC,
        "ListTagsForResource",
        &s,
        targets::list_tags_for_resource,
    );
    r.provide(s.clone());
    s
}

#[cfg(test)]
mod tests;
