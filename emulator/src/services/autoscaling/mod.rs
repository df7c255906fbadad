//! EC2 Auto Scaling (awsQuery): groups of virtual EC2 instances launched from launch templates or
//! launch configurations, kept at their desired capacity by the controller
//! (`controllers/autoscaling.rs`) on the emulator clock; scaling policies run by CloudWatch
//! alarms (this service is an [`AlarmActionTarget`] for its policy ARNs), scheduled actions,
//! lifecycle hooks, instance protection, standby, target groups and activities.
//!
//! Handlers only record desired state (a group's desired capacity, an instance marked
//! Terminating, a lifecycle action's result); the controller launches and terminates instances
//! through the typed [`Ec2`] handle and records what happened as activities.

pub mod account;
pub mod activities;
pub mod forecast;
pub mod groups;
pub mod hooks;
pub mod instances;
pub mod launch_configs;
pub mod misc;
pub mod model;
pub mod policies;
pub mod scheduled;
pub mod tags;

#[cfg(test)]
mod tests;

use super::cloudwatch::{AlarmActionTarget, AlarmEvent, CloudWatch};
use super::ec2::Ec2;
use super::elbv2::Elbv2;
use super::{Deps, Registry};
use crate::protocol::codes;
use crate::protocol::AwsError;
use crate::store::Table;
use model::{
    AccountSetting, Activity, Group, InstanceRefresh, LaunchConfiguration, Policy, ScheduledAction,
};
use std::sync::Arc;

pub const SVC: &str = "autoscaling";

/// The service's state; `registry.handle::<AutoScaling>()`.
pub struct AutoScaling {
    /// Keyed "<scope><group name>".
    pub groups: Arc<Table<Group>>,
    /// Keyed "<scope><name>".
    pub launch_configs: Arc<Table<LaunchConfiguration>>,
    /// Keyed "<scope><group>\u{1}<policy name>".
    pub policies: Arc<Table<Policy>>,
    /// Keyed "<scope><group>\u{1}<action name>".
    pub scheduled: Arc<Table<ScheduledAction>>,
    /// Keyed "<scope><group>\u{1}<start, 20 digits>\u{1}<id>".
    pub activities: Arc<Table<Activity>>,
    /// Keyed "<scope><group>\u{1}<start>\u{1}<id>".
    pub refreshes: Arc<Table<InstanceRefresh>>,
    /// Keyed "<scope><setting name>".
    pub account_settings: Arc<Table<AccountSetting>>,
    pub ec2: Arc<Ec2>,
    pub elbv2: Arc<Elbv2>,
    pub cloudwatch: Arc<CloudWatch>,
    /// Wakes the controller when a group's desired state changes.
    pub wake: tokio::sync::Notify,
    /// ECS managed scaling's latest estimate of the instances each group needs, keyed like
    /// `groups` (written by the capacity controller with each CapacityProviderReservation).
    pub managed_needed: parking_lot::Mutex<std::collections::HashMap<String, i64>>,
}

pub fn validation(msg: impl Into<String>) -> AwsError {
    AwsError::new(codes::common::ValidationError, msg)
}

pub fn group_key(scope: &str, name: &str) -> String {
    format!("{scope}{name}")
}

pub fn sub_key(scope: &str, group: &str, name: &str) -> String {
    format!("{scope}{group}\u{1}{name}")
}

impl AutoScaling {
    pub fn new(
        deps: &Deps,
        ec2: Arc<Ec2>,
        elbv2: Arc<Elbv2>,
        cloudwatch: Arc<CloudWatch>,
    ) -> AutoScaling {
        let s = &deps.store;
        AutoScaling {
            groups: Table::open(s, "autoscaling.groups"),
            launch_configs: Table::open(s, "autoscaling.launch_configurations"),
            policies: Table::open(s, "autoscaling.policies"),
            scheduled: Table::open(s, "autoscaling.scheduled_actions"),
            activities: Table::open(s, "autoscaling.activities"),
            refreshes: Table::open(s, "autoscaling.instance_refreshes"),
            account_settings: Table::open(s, "autoscaling.account_settings"),
            ec2,
            elbv2,
            cloudwatch,
            wake: tokio::sync::Notify::new(),
            managed_needed: parking_lot::Mutex::new(std::collections::HashMap::new()),
        }
    }

    pub fn ec2(&self) -> Result<&Arc<Ec2>, AwsError> {
        Ok(&self.ec2)
    }

    /// A group by name, or AWS's ValidationError.
    pub fn group(&self, scope: &str, name: &str) -> Result<Group, AwsError> {
        self.groups
            .get(&group_key(scope, name))
            .filter(|g| !g.deleting || !g.instances.is_empty())
            .ok_or_else(|| no_group(name))
    }

    /// Changes a group in one transaction; wakes the controller.
    pub fn update_group<T>(
        &self,
        scope: &str,
        name: &str,
        change: impl FnOnce(&mut Group) -> Result<T, AwsError>,
    ) -> Result<T, AwsError> {
        let key = group_key(scope, name);
        let out = self.groups.transact(|t| {
            let Some(mut g) = t.get(&key).cloned() else {
                return Err(no_group(name));
            };
            let out = change(&mut g)?;
            t.put(&key, g);
            Ok(out)
        })?;
        self.wake.notify_one();
        Ok(out)
    }

    /// Every group of every scope (for the controller).
    pub fn all_groups(&self) -> Vec<(String, Group)> {
        self.groups
            .read(|rows| rows.iter().map(|(k, g)| (k.clone(), g.clone())).collect())
    }

    /// The group an EC2 instance belongs to, if any.
    pub fn group_of_instance(&self, scope: &str, instance_id: &str) -> Option<Group> {
        self.groups.read(|rows| {
            rows.range(scope.to_string()..)
                .take_while(|(k, _)| k.starts_with(scope))
                .find(|(_, g)| g.instances.contains_key(instance_id))
                .map(|(_, g)| g.clone())
        })
    }
}

pub fn no_group(name: &str) -> AwsError {
    validation(format!("AutoScalingGroup name not found - {name}"))
}

impl AlarmActionTarget for AutoScaling {
    fn owns(&self, arn: &str) -> bool {
        arn.starts_with("arn:aws:autoscaling:")
            && arn.contains(":scalingPolicy:")
            && arn.contains(":autoScalingGroupName/")
    }

    fn invoke(&self, arn: &str, event: &AlarmEvent) -> Result<(), String> {
        policies::run_from_alarm(self, arn, event)
    }
}

/// EC2 Auto Scaling launches through EC2, registers targets with ELBv2 and runs its policies'
/// alarms in CloudWatch (which calls back through [`AlarmActionTarget`]): all three are built first.
pub fn register(
    r: &mut Registry,
    deps: &Deps,
    ec2: Arc<Ec2>,
    elbv2: Arc<Elbv2>,
    cloudwatch: Arc<CloudWatch>,
) -> Arc<AutoScaling> {
    let s = Arc::new(AutoScaling::new(deps, ec2, elbv2, cloudwatch.clone()));
    cloudwatch.add_action_target(s.clone());
    groups::register(r, &s);
    instances::register(r, &s);
    launch_configs::register(r, &s);
    policies::register(r, &s);
    scheduled::register(r, &s);
    hooks::register(r, &s);
    activities::register(r, &s);
    tags::register(r, &s);
    misc::register(r, &s);
    account::register(r, &s);
    forecast::register(r, &s);
    r.provide(s.clone());
    s
}
