//! What EC2 Auto Scaling stores: groups (with their instances and lifecycle hooks embedded, so a
//! change to a group and its instances commits at once), launch configurations, policies,
//! scheduled actions and activities; and how each is rendered in the model's shapes.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// `LaunchTemplateSpecification`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct LtSpec {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub name: String,
    /// "$Default", "$Latest" or a number, as given.
    #[serde(default)]
    pub version: String,
}

impl LtSpec {
    pub fn to_json(&self) -> Value {
        json!({
            "LaunchTemplateId": self.id,
            "LaunchTemplateName": self.name,
            "Version": self.version,
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct GroupTag {
    pub key: String,
    pub value: String,
    pub propagate: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Hook {
    pub name: String,
    /// autoscaling:EC2_INSTANCE_LAUNCHING or autoscaling:EC2_INSTANCE_TERMINATING.
    pub transition: String,
    pub heartbeat_timeout: i64,
    pub default_result: String,
    #[serde(default)]
    pub notification_target: Option<String>,
    #[serde(default)]
    pub role_arn: Option<String>,
    #[serde(default)]
    pub metadata: Option<String>,
}

impl Hook {
    /// AWS's global timeout: 100 heartbeat timeouts or 48 hours, whichever is smaller.
    pub fn global_timeout(&self) -> i64 {
        (self.heartbeat_timeout * 100).min(172_800)
    }

    pub fn to_json(&self, group: &str) -> Value {
        let mut v = json!({
            "LifecycleHookName": self.name,
            "AutoScalingGroupName": group,
            "LifecycleTransition": self.transition,
            "HeartbeatTimeout": self.heartbeat_timeout,
            "GlobalTimeout": self.global_timeout(),
            "DefaultResult": self.default_result,
        });
        if let Some(t) = &self.notification_target {
            v["NotificationTargetARN"] = json!(t);
        }
        if let Some(r) = &self.role_arn {
            v["RoleARN"] = json!(r);
        }
        if let Some(m) = &self.metadata {
            v["NotificationMetadata"] = json!(m);
        }
        v
    }
}

/// An instance waiting in Pending:Wait or Terminating:Wait.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct HookWait {
    pub hook: String,
    pub token: String,
    /// Emulator time when the heartbeat runs out (DefaultResult then applies).
    pub deadline: f64,
    pub global_deadline: f64,
    /// CONTINUE or ABANDON once CompleteLifecycleAction was called.
    #[serde(default)]
    pub result: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Member {
    pub id: String,
    pub az: String,
    #[serde(default)]
    pub subnet: String,
    /// The model's LifecycleState.
    pub state: String,
    /// Healthy or Unhealthy.
    pub health: String,
    pub protected: bool,
    #[serde(default)]
    pub launch_template: Option<LtSpec>,
    #[serde(default)]
    pub launch_configuration: Option<String>,
    pub instance_type: String,
    #[serde(default)]
    pub image_id: String,
    pub launched: f64,
    /// When `state` was entered.
    pub since: f64,
    #[serde(default)]
    pub wait: Option<HookWait>,
    #[serde(default)]
    pub spot: bool,
    #[serde(default)]
    pub weighted_capacity: Option<String>,
    /// The activity that launches or terminates it (its status follows the instance).
    #[serde(default)]
    pub activity: Option<String>,
    /// Terminating: whether desired capacity was decremented (else the group replaces it).
    #[serde(default)]
    pub replace: bool,
    /// Why the instance is unhealthy ("an EC2 health check", "an ELB system health check").
    #[serde(default)]
    pub unhealthy_reason: Option<String>,
    /// Registered in the group's target groups.
    #[serde(default)]
    pub registered: bool,
}

impl Member {
    /// Counts towards the group's capacity (launching or in service).
    pub fn counts(&self) -> bool {
        matches!(
            self.state.as_str(),
            "Pending" | "Pending:Wait" | "Pending:Proceed" | "InService"
        )
    }

    pub fn terminating(&self) -> bool {
        self.state.starts_with("Terminating")
    }

    pub fn to_json(&self, with_group: Option<&str>) -> Value {
        let mut v = json!({
            "InstanceId": self.id,
            "InstanceType": self.instance_type,
            "AvailabilityZone": self.az,
            "LifecycleState": self.state,
            "HealthStatus": self.health,
            "ProtectedFromScaleIn": self.protected,
        });
        if let Some(g) = with_group {
            v["AutoScalingGroupName"] = json!(g);
        }
        if let Some(lt) = &self.launch_template {
            v["LaunchTemplate"] = lt.to_json();
        }
        if let Some(lc) = &self.launch_configuration {
            v["LaunchConfigurationName"] = json!(lc);
        }
        if let Some(w) = &self.weighted_capacity {
            v["WeightedCapacity"] = json!(w);
        }
        v
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Group {
    pub account: String,
    pub region: String,
    pub name: String,
    pub arn: String,
    pub created: f64,
    #[serde(default)]
    pub launch_template: Option<LtSpec>,
    #[serde(default)]
    pub launch_configuration: Option<String>,
    /// MixedInstancesPolicy as given (model shape).
    #[serde(default)]
    pub mixed_instances_policy: Option<Value>,
    pub min: i64,
    pub max: i64,
    pub desired: i64,
    pub default_cooldown: i64,
    pub health_check_type: String,
    pub health_check_grace_period: i64,
    pub zones: Vec<String>,
    /// VPCZoneIdentifier's subnets, in the order given.
    pub subnets: Vec<String>,
    /// Each subnet's Availability Zone.
    #[serde(default)]
    pub subnet_zones: BTreeMap<String, String>,
    #[serde(default)]
    pub target_groups: Vec<String>,
    #[serde(default)]
    pub load_balancers: Vec<String>,
    /// Traffic sources other than those two lists: (identifier, type).
    #[serde(default)]
    pub traffic_sources: Vec<(String, String)>,
    #[serde(default)]
    pub termination_policies: Vec<String>,
    #[serde(default)]
    pub protect_new: bool,
    /// Suspended process → reason.
    #[serde(default)]
    pub suspended: BTreeMap<String, String>,
    #[serde(default)]
    pub tags: Vec<GroupTag>,
    #[serde(default)]
    pub hooks: BTreeMap<String, Hook>,
    #[serde(default)]
    pub instances: BTreeMap<String, Member>,
    /// Members the model has but the emulator only stores (ServiceLinkedRoleARN, Context, …).
    #[serde(default)]
    pub extra: BTreeMap<String, Value>,
    #[serde(default)]
    pub enabled_metrics: Vec<String>,
    /// (topic ARN, notification type).
    #[serde(default)]
    pub notifications: Vec<(String, String)>,
    #[serde(default)]
    pub warm_pool: Option<Value>,
    /// Why the desired capacity is what it is: the first sentence of the next activity's cause.
    #[serde(default)]
    pub cause: String,
    /// The last scaling activity's time (cooldowns).
    #[serde(default)]
    pub last_scaling: f64,
    /// No launch before this emulator time (after a failed launch).
    #[serde(default)]
    pub retry_after: f64,
    /// AZRebalance launched an instance in the zone with the fewest; one in the zone with the
    /// most goes once it is in service.
    #[serde(default)]
    pub rebalancing: bool,
    /// DeleteAutoScalingGroup in progress.
    #[serde(default)]
    pub deleting: bool,
}

pub const PROCESSES: [&str; 9] = [
    "Launch",
    "Terminate",
    "AddToLoadBalancer",
    "AlarmNotification",
    "AZRebalance",
    "HealthCheck",
    "InstanceRefresh",
    "ReplaceUnhealthy",
    "ScheduledActions",
];

impl Group {
    pub fn suspended(&self, process: &str) -> bool {
        self.suspended.contains_key(process)
    }

    pub fn capacity(&self) -> i64 {
        self.instances.values().filter(|m| m.counts()).count() as i64
    }

    pub fn tags_json(&self) -> Vec<Value> {
        self.tags
            .iter()
            .map(|t| {
                json!({
                    "ResourceId": self.name,
                    "ResourceType": "auto-scaling-group",
                    "Key": t.key,
                    "Value": t.value,
                    "PropagateAtLaunch": t.propagate,
                })
            })
            .collect()
    }

    pub fn to_json(&self, with_instances: bool) -> Value {
        let mut v = json!({
            "AutoScalingGroupName": self.name,
            "AutoScalingGroupARN": self.arn,
            "MinSize": self.min,
            "MaxSize": self.max,
            "DesiredCapacity": self.desired,
            "DefaultCooldown": self.default_cooldown,
            "AvailabilityZones": self.zones,
            "LoadBalancerNames": self.load_balancers,
            "TargetGroupARNs": self.target_groups,
            "HealthCheckType": self.health_check_type,
            "HealthCheckGracePeriod": self.health_check_grace_period,
            "CreatedTime": self.created,
            "SuspendedProcesses": self.suspended.iter().map(|(p, r)| json!({"ProcessName": p, "SuspensionReason": r})).collect::<Vec<_>>(),
            "VPCZoneIdentifier": self.subnets.iter().filter(|s| !s.starts_with("default:")).cloned().collect::<Vec<_>>().join(","),
            "EnabledMetrics": self.enabled_metrics.iter().map(|m| json!({"Metric": m, "Granularity": "1Minute"})).collect::<Vec<_>>(),
            "Tags": self.tags_json(),
            "TerminationPolicies": if self.termination_policies.is_empty() { vec!["Default".to_string()] } else { self.termination_policies.clone() },
            "NewInstancesProtectedFromScaleIn": self.protect_new,
            "ServiceLinkedRoleARN": self.extra.get("ServiceLinkedRoleARN").cloned().unwrap_or_else(|| json!(format!("arn:aws:iam::{}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling", self.account))),
            "CapacityRebalance": self.extra.get("CapacityRebalance").and_then(Value::as_bool).unwrap_or(false),
            "TrafficSources": self.traffic_sources_json().into_iter().map(|(id, t, _)| json!({"Identifier": id, "Type": t})).collect::<Vec<_>>(),
        });
        if with_instances {
            v["Instances"] = json!(self
                .instances
                .values()
                .map(|m| m.to_json(None))
                .collect::<Vec<_>>());
        }
        if let Some(lt) = &self.launch_template {
            v["LaunchTemplate"] = lt.to_json();
        }
        if let Some(lc) = &self.launch_configuration {
            v["LaunchConfigurationName"] = json!(lc);
        }
        if let Some(p) = &self.mixed_instances_policy {
            v["MixedInstancesPolicy"] = with_distribution_defaults(p);
        }
        if self.deleting {
            v["Status"] = json!("Delete in progress");
        }
        if let Some(w) = &self.warm_pool {
            v["WarmPoolConfiguration"] = w.clone();
            v["WarmPoolSize"] = json!(0);
        }
        for k in [
            "MaxInstanceLifetime",
            "Context",
            "DesiredCapacityType",
            "DefaultInstanceWarmup",
            "PlacementGroup",
            "InstanceMaintenancePolicy",
            "DeletionProtection",
            "AvailabilityZoneDistribution",
            "CapacityReservationSpecification",
        ] {
            if let Some(x) = self.extra.get(k) {
                v[k] = x.clone();
            }
        }
        v
    }

    /// Every traffic source: (identifier, type, kind) with kind "tg", "clb" or "other".
    pub fn traffic_sources_json(&self) -> Vec<(String, String, &'static str)> {
        let mut out: Vec<(String, String, &'static str)> = self
            .target_groups
            .iter()
            .map(|a| (a.clone(), "elbv2".to_string(), "tg"))
            .collect();
        out.extend(
            self.load_balancers
                .iter()
                .map(|n| (n.clone(), "elb".to_string(), "clb")),
        );
        out.extend(
            self.traffic_sources
                .iter()
                .map(|(i, t)| (i.clone(), t.clone(), "other")),
        );
        out
    }
}

/// A mixed instances policy as DescribeAutoScalingGroups shows it: AWS fills in the
/// distribution's defaults.
fn with_distribution_defaults(p: &Value) -> Value {
    let mut p = p.clone();
    let d = json!({
        "OnDemandAllocationStrategy": "prioritized",
        "OnDemandBaseCapacity": 0,
        "OnDemandPercentageAboveBaseCapacity": 100,
        "SpotAllocationStrategy": "lowest-price",
        "SpotInstancePools": 2,
    });
    let mut dist = p.get("InstancesDistribution").cloned().unwrap_or(json!({}));
    if let (Some(o), Some(defaults)) = (dist.as_object_mut(), d.as_object()) {
        for (k, v) in defaults {
            o.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    p["InstancesDistribution"] = dist;
    p
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Activity {
    pub id: String,
    pub group: String,
    pub group_arn: String,
    pub description: String,
    pub cause: String,
    pub start: f64,
    #[serde(default)]
    pub end: Option<f64>,
    pub status: String,
    #[serde(default)]
    pub message: Option<String>,
    pub progress: i64,
    pub details: String,
}

impl Activity {
    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "ActivityId": self.id,
            "AutoScalingGroupName": self.group,
            "AutoScalingGroupARN": self.group_arn,
            "Description": self.description,
            "Cause": self.cause,
            "StartTime": self.start,
            "StatusCode": self.status,
            "Progress": self.progress,
            "Details": self.details,
        });
        if let Some(e) = self.end {
            v["EndTime"] = json!(e);
        }
        if let Some(m) = &self.message {
            v["StatusMessage"] = json!(m);
        }
        v
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Policy {
    pub group: String,
    pub name: String,
    pub arn: String,
    pub policy_type: String,
    /// The PutScalingPolicy input as given (AdjustmentType, StepAdjustments, …).
    pub config: Value,
    /// Target tracking alarms: (name, ARN).
    #[serde(default)]
    pub alarms: Vec<(String, String)>,
    pub enabled: bool,
    #[serde(default)]
    pub last_run: f64,
    /// ECS managed scaling's (minimumScalingStepSize, maximumScalingStepSize) on the policy ECS
    /// put on the group: a scale-out adds at least the one and at most the other.
    #[serde(default)]
    pub managed_steps: Option<(i64, i64)>,
}

impl Policy {
    pub fn to_json(&self, alarms_of_others: &[(String, String)]) -> Value {
        let mut v = json!({
            "AutoScalingGroupName": self.group,
            "PolicyName": self.name,
            "PolicyARN": self.arn,
            "PolicyType": self.policy_type,
            "Enabled": self.enabled,
            "Alarms": self.alarms.iter().chain(alarms_of_others).map(|(n, a)| json!({"AlarmName": n, "AlarmARN": a})).collect::<Vec<_>>(),
        });
        for k in [
            "AdjustmentType",
            "MinAdjustmentStep",
            "MinAdjustmentMagnitude",
            "ScalingAdjustment",
            "Cooldown",
            "StepAdjustments",
            "MetricAggregationType",
            "EstimatedInstanceWarmup",
            "TargetTrackingConfiguration",
            "PredictiveScalingConfiguration",
        ] {
            if let Some(x) = self.config.get(k) {
                v[k] = x.clone();
            }
        }
        if self.policy_type == "StepScaling" && v.get("MetricAggregationType").is_none() {
            v["MetricAggregationType"] = json!("Average");
        }
        if self.policy_type == "TargetTrackingScaling" {
            if let Some(t) = v.get_mut("TargetTrackingConfiguration") {
                if t.get("DisableScaleIn").is_none() {
                    t["DisableScaleIn"] = json!(false);
                }
            }
        }
        v
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ScheduledAction {
    pub group: String,
    pub name: String,
    pub arn: String,
    #[serde(default)]
    pub time: Option<f64>,
    #[serde(default)]
    pub start: Option<f64>,
    #[serde(default)]
    pub end: Option<f64>,
    #[serde(default)]
    pub recurrence: Option<String>,
    #[serde(default)]
    pub time_zone: Option<String>,
    #[serde(default)]
    pub min: Option<i64>,
    #[serde(default)]
    pub max: Option<i64>,
    #[serde(default)]
    pub desired: Option<i64>,
    /// The next run (None: none left).
    #[serde(default)]
    pub next_run: Option<f64>,
}

impl ScheduledAction {
    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "AutoScalingGroupName": self.group,
            "ScheduledActionName": self.name,
            "ScheduledActionARN": self.arn,
        });
        let start = self.next_run.or(self.start).or(self.time);
        if let Some(t) = start {
            v["StartTime"] = json!(t);
            v["Time"] = json!(t);
        }
        if let Some(e) = self.end {
            v["EndTime"] = json!(e);
        }
        if let Some(r) = &self.recurrence {
            v["Recurrence"] = json!(r);
        }
        if let Some(z) = &self.time_zone {
            v["TimeZone"] = json!(z);
        }
        for (k, x) in [
            ("MinSize", self.min),
            ("MaxSize", self.max),
            ("DesiredCapacity", self.desired),
        ] {
            if let Some(x) = x {
                v[k] = json!(x);
            }
        }
        v
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LaunchConfiguration {
    pub name: String,
    pub arn: String,
    pub created: f64,
    /// The CreateLaunchConfiguration input (model shape).
    pub data: Value,
}

impl LaunchConfiguration {
    pub fn to_json(&self) -> Value {
        let mut v = self.data.clone();
        if let Some(o) = v.as_object_mut() {
            o.remove("InstanceId");
            o.insert("LaunchConfigurationName".into(), json!(self.name));
            o.insert("LaunchConfigurationARN".into(), json!(self.arn));
            o.insert("CreatedTime".into(), json!(self.created));
            o.entry("SecurityGroups").or_insert(json!([]));
            o.entry("UserData").or_insert(json!(""));
            o.entry("KernelId").or_insert(json!(""));
            o.entry("RamdiskId").or_insert(json!(""));
            o.entry("KeyName").or_insert(json!(""));
            o.entry("BlockDeviceMappings").or_insert(json!([]));
            o.entry("ClassicLinkVPCSecurityGroups").or_insert(json!([]));
            o.entry("InstanceMonitoring")
                .or_insert(json!({"Enabled": true}));
            o.entry("EbsOptimized").or_insert(json!(false));
        }
        v
    }
}

/// An account setting someone put (PutAccountSetting).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AccountSetting {
    pub name: String,
    pub value: String,
    pub updated: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct InstanceRefresh {
    pub id: String,
    pub group: String,
    pub status: String,
    pub start: f64,
    #[serde(default)]
    pub end: Option<f64>,
    pub preferences: Value,
    #[serde(default)]
    pub desired_configuration: Option<Value>,
    /// Instances (ids) still to replace.
    pub to_replace: Vec<String>,
    pub total: i64,
    #[serde(default)]
    pub status_reason: Option<String>,
}

impl InstanceRefresh {
    pub fn to_json(&self) -> Value {
        let done = self.total - self.to_replace.len() as i64;
        let pct = if self.total == 0 {
            100
        } else {
            done * 100 / self.total
        };
        let mut v = json!({
            "InstanceRefreshId": self.id,
            "AutoScalingGroupName": self.group,
            "Status": self.status,
            "StartTime": self.start,
            "PercentageComplete": pct,
            "InstancesToUpdate": self.to_replace.len(),
            "Preferences": self.preferences,
            "Strategy": "Rolling",
            "ProgressDetails": {"LivePoolProgress": {"PercentageComplete": pct, "InstancesToUpdate": self.to_replace.len()}},
        });
        if let Some(e) = self.end {
            v["EndTime"] = json!(e);
        }
        if let Some(d) = &self.desired_configuration {
            v["DesiredConfiguration"] = d.clone();
        }
        if let Some(r) = &self.status_reason {
            v["StatusReason"] = json!(r);
        }
        v
    }
}

/// "2026-01-01T00:00:00Z", the timestamps of activity causes.
pub fn iso(t: f64) -> String {
    chrono::DateTime::from_timestamp(t as i64, 0)
        .map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}
