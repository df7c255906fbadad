//! CreateAutoScalingGroup, UpdateAutoScalingGroup, DeleteAutoScalingGroup,
//! DescribeAutoScalingGroups, SetDesiredCapacity, Suspend/ResumeProcesses, load balancers,
//! target groups and traffic sources, metrics collection.

use super::model::{iso, Group, GroupTag, LtSpec, PROCESSES};
use super::{group_key, no_group, validation, AutoScaling, SVC};
use crate::protocol::codes;
use crate::protocol::AwsError;
use crate::services::ec2::regions::zones;
use crate::services::input::Input;
use crate::services::{page, Ctx, HandlerResult, Registry};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

pub fn register(r: &mut Registry, s: &Arc<AutoScaling>) {
    r.sync(SVC, "CreateAutoScalingGroup", s, create_group);
    r.sync(SVC, "UpdateAutoScalingGroup", s, update_group);
    r.sync(SVC, "DeleteAutoScalingGroup", s, delete_group);
    r.sync(SVC, "DescribeAutoScalingGroups", s, describe_groups);
    r.sync(SVC, "SetDesiredCapacity", s, set_desired_capacity);
    r.sync(SVC, "SuspendProcesses", s, suspend_processes);
    r.sync(SVC, "ResumeProcesses", s, resume_processes);
    r.sync(
        SVC,
        "AttachLoadBalancerTargetGroups",
        s,
        attach_target_groups,
    );
    r.sync(
        SVC,
        "DetachLoadBalancerTargetGroups",
        s,
        detach_target_groups,
    );
    r.sync(
        SVC,
        "DescribeLoadBalancerTargetGroups",
        s,
        describe_target_groups,
    );
    r.sync(SVC, "AttachLoadBalancers", s, attach_load_balancers);
    r.sync(SVC, "DetachLoadBalancers", s, detach_load_balancers);
    r.sync(SVC, "DescribeLoadBalancers", s, describe_load_balancers);
    r.sync(SVC, "AttachTrafficSources", s, attach_traffic_sources);
    r.sync(SVC, "DetachTrafficSources", s, detach_traffic_sources);
    r.sync(SVC, "DescribeTrafficSources", s, describe_traffic_sources);
    r.sync(SVC, "EnableMetricsCollection", s, enable_metrics);
    r.sync(SVC, "DisableMetricsCollection", s, disable_metrics);
}

pub const METRICS: [&str; 8] = [
    "GroupMinSize",
    "GroupMaxSize",
    "GroupDesiredCapacity",
    "GroupInServiceInstances",
    "GroupPendingInstances",
    "GroupStandbyInstances",
    "GroupTerminatingInstances",
    "GroupTotalInstances",
];

const TERMINATION_POLICIES: [&str; 7] = [
    "Default",
    "OldestInstance",
    "NewestInstance",
    "OldestLaunchConfiguration",
    "OldestLaunchTemplate",
    "ClosestToNextInstanceHour",
    "AllocationStrategy",
];

/// min ≤ desired ≤ max, with AWS's messages.
pub fn check_bounds(min: i64, max: i64, desired: i64) -> Result<(), AwsError> {
    if min > max {
        return Err(validation(format!(
            "Max bound, {max}, must be greater than or equal to min bound, {min}"
        )));
    }
    if desired < min || desired > max {
        return Err(validation(format!(
            "Desired capacity:{desired} must be between the specified min size:{min} and max size:{max}"
        )));
    }
    Ok(())
}

fn lt_spec(v: &Value) -> LtSpec {
    LtSpec {
        id: v.str("LaunchTemplateId").unwrap_or_default().to_string(),
        name: v.str("LaunchTemplateName").unwrap_or_default().to_string(),
        version: v.str("Version").unwrap_or("$Default").to_string(),
    }
}

/// Resolves a group's launch template (id or name) so the group records both, checking the
/// version exists; EC2's message after Auto Scaling's prefix.
fn resolve_template(s: &AutoScaling, ctx: &Ctx, v: &Value) -> Result<LtSpec, AwsError> {
    let mut spec = lt_spec(v);
    let prefix = "You must use a valid fully-formed launch template.";
    if spec.id.is_empty() == spec.name.is_empty() {
        return Err(validation(format!(
            "{prefix} You must specify either the launch template ID or launch template name in the request, but not both."
        )));
    }
    let t = s
        .ec2()?
        .launch_template(
            &ctx.account,
            &ctx.region,
            Some(spec.id.as_str()),
            Some(spec.name.as_str()),
        )
        .map_err(|e| validation(format!("{prefix} {}", e.message)))?;
    t.version(Some(&spec.version))
        .map_err(|e| validation(format!("{prefix} {}", e.message)))?;
    spec.id = t.id;
    spec.name = t.name;
    Ok(spec)
}

/// The group's subnets and zones from VPCZoneIdentifier, else the default subnets of
/// AvailabilityZones. Subnets must exist and share one VPC.
fn placement(
    s: &AutoScaling,
    ctx: &Ctx,
    vpc_zone_identifier: Option<&str>,
    azs: &[String],
) -> Result<Placement, AwsError> {
    let ec2 = s.ec2()?;
    let ids: Vec<String> = vpc_zone_identifier
        .unwrap_or_default()
        .split(',')
        .map(|x| x.trim().to_string())
        .filter(|x| !x.is_empty())
        .collect();
    if ids.is_empty() {
        if azs.is_empty() {
            return Err(validation(
                "At least one Availability Zone or VPC Subnet is required.",
            ));
        }
        let known = zones(&ctx.region);
        for z in azs {
            if !known.iter().any(|k| &k.name == z) {
                return Err(validation(format!(
                    "The availability zone '{z}' is not legal for this call."
                )));
            }
        }
        let defaults = ec2.default_subnets(&ctx.account, &ctx.region)?;
        let mut subnets = Vec::new();
        for z in azs {
            if let Some(sn) = defaults.iter().find(|d| &d.availability_zone == z) {
                // The group is in the default VPC: VPCZoneIdentifier stays empty, as in AWS.
                subnets.push((format!("default:{}", sn.subnet_id), z.clone()));
            }
        }
        let mut zs = azs.to_vec();
        zs.sort();
        zs.dedup();
        return Ok(Placement { zones: zs, subnets });
    }
    let mut vpc: Option<String> = None;
    let mut zs: Vec<String> = Vec::new();
    let mut subnets = Vec::new();
    for id in &ids {
        let sn = ec2
            .subnet(&ctx.account, &ctx.region, id)?
            .ok_or_else(|| validation(format!("The subnet ID '{id}' does not exist")))?;
        match &vpc {
            Some(v) if v != &sn.vpc_id => {
                return Err(validation(format!(
                    "The subnets '{}' belong to different VPCs. All subnets in an Auto Scaling group must be in the same VPC.",
                    ids.join(",")
                )))
            }
            _ => vpc = Some(sn.vpc_id.clone()),
        }
        if !zs.contains(&sn.availability_zone) {
            zs.push(sn.availability_zone.clone());
        }
        subnets.push((id.clone(), sn.availability_zone.clone()));
    }
    if !azs.is_empty() && azs.iter().any(|z| !zs.contains(z)) {
        return Err(validation(
            "The specified Availability Zones are not consistent with the subnets given in VPCZoneIdentifier.",
        ));
    }
    zs.sort();
    Ok(Placement { zones: zs, subnets })
}

/// Where a group launches: its zones and (subnet, zone) pairs. Default-VPC subnets chosen from
/// AvailabilityZones are stored as "default:<id>" so DescribeAutoScalingGroups shows
/// VPCZoneIdentifier as AWS does (empty).
struct Placement {
    zones: Vec<String>,
    subnets: Vec<(String, String)>,
}

impl Placement {
    fn apply(self, g: &mut Group) {
        g.zones = self.zones;
        g.subnets = self.subnets.iter().map(|(s, _)| s.clone()).collect();
        g.subnet_zones = self.subnets.into_iter().collect();
    }
}

pub fn subnet_id(stored: &str) -> &str {
    stored.strip_prefix("default:").unwrap_or(stored)
}

fn tags_of(input: &Value, group: &str) -> Result<Vec<GroupTag>, AwsError> {
    let mut out: Vec<GroupTag> = Vec::new();
    for t in input
        .get("Tags")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let key = t.str("Key").unwrap_or_default().to_string();
        if key.to_ascii_lowercase().starts_with("aws:") {
            return Err(validation(format!(
                "Tag keys starting with 'aws:' are reserved for internal use: {key}"
            )));
        }
        if let Some(rid) = t.str("ResourceId") {
            if rid != group {
                return Err(validation(format!(
                    "Tag ResourceId {rid} does not match the group {group}"
                )));
            }
        }
        out.retain(|x| x.key != key);
        out.push(GroupTag {
            key,
            value: t.str("Value").unwrap_or_default().to_string(),
            propagate: t.bool("PropagateAtLaunch").unwrap_or(false),
        });
    }
    if out.len() > 50 {
        return Err(AwsError::new(
            codes::autoscaling::LimitExceededFault,
            "The number of tags exceeds the limit of 50.",
        ));
    }
    Ok(out)
}

fn check_termination_policies(list: &[String]) -> Result<(), AwsError> {
    for p in list {
        if !TERMINATION_POLICIES.contains(&p.as_str()) && !p.starts_with("arn:aws:lambda:") {
            return Err(validation(format!("Unsupported termination policy: {p}")));
        }
    }
    Ok(())
}

const STORED: [&str; 10] = [
    "ServiceLinkedRoleARN",
    "MaxInstanceLifetime",
    "CapacityRebalance",
    "Context",
    "DesiredCapacityType",
    "DefaultInstanceWarmup",
    "PlacementGroup",
    "InstanceMaintenancePolicy",
    "DeletionProtection",
    "AvailabilityZoneDistribution",
];

fn store_extra(g: &mut Group, input: &Value) {
    for k in STORED {
        if let Some(v) = input.get(k).filter(|v| !v.is_null()) {
            g.extra.insert(k.to_string(), v.clone());
        }
    }
}

/// A launch template, a launch configuration name or a mixed instances policy (at most one).
type LaunchSource = (Option<LtSpec>, Option<String>, Option<Value>);

/// The launch source of a create/update: a launch template, a launch configuration or a mixed
/// instances policy (whose launch template is checked).
fn launch_source(s: &AutoScaling, ctx: &Ctx, input: &Value) -> Result<LaunchSource, AwsError> {
    let lt = input.get("LaunchTemplate").filter(|v| v.is_object());
    let lc = input
        .str("LaunchConfigurationName")
        .filter(|s| !s.is_empty());
    let mixed = input.get("MixedInstancesPolicy").filter(|v| v.is_object());
    let count = [lt.is_some(), lc.is_some(), mixed.is_some()]
        .iter()
        .filter(|x| **x)
        .count();
    if count > 1 {
        return Err(validation(
            "Valid requests must contain either LaunchTemplate, LaunchConfigurationName, InstanceId or MixedInstancesPolicy parameter.",
        ));
    }
    if let Some(lt) = lt {
        return Ok((Some(resolve_template(s, ctx, lt)?), None, None));
    }
    if let Some(name) = lc {
        if s.launch_configs
            .get(&group_key(&ctx.scope(), name))
            .is_none()
        {
            return Err(validation(format!(
                "Launch configuration name not found - Launch configuration {name} not found"
            )));
        }
        return Ok((None, Some(name.to_string()), None));
    }
    if let Some(m) = mixed {
        let spec = m
            .get("LaunchTemplate")
            .and_then(|l| l.get("LaunchTemplateSpecification"))
            .ok_or_else(|| {
                validation("A launch template must be specified in the MixedInstancesPolicy.")
            })?;
        let resolved = resolve_template(s, ctx, spec)?;
        let mut m = m.clone();
        m["LaunchTemplate"]["LaunchTemplateSpecification"] = resolved.to_json();
        for o in m["LaunchTemplate"]
            .get("Overrides")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
        {
            if let Some(t) = o.str("InstanceType") {
                if crate::services::ec2::instance_types::lookup(t).is_none() {
                    return Err(validation(format!("Invalid instance type: {t}")));
                }
            }
        }
        if let Some(d) = m.get("InstancesDistribution") {
            let pct = d.i64("OnDemandPercentageAboveBaseCapacity").unwrap_or(100);
            if !(0..=100).contains(&pct) {
                return Err(validation(
                    "OnDemandPercentageAboveBaseCapacity must be between 0 and 100.",
                ));
            }
        }
        return Ok((None, None, Some(m)));
    }
    Ok((None, None, None))
}

pub fn create_group(s: &AutoScaling, ctx: &Ctx, input: Value) -> HandlerResult {
    let name = input
        .str("AutoScalingGroupName")
        .unwrap_or_default()
        .to_string();
    let scope = ctx.scope();
    if s.groups.get(&group_key(&scope, &name)).is_some() {
        return Err(AwsError::new(codes::autoscaling::AlreadyExistsFault,
            format!("AutoScalingGroup by this name already exists - A group with the name {name} already exists"),
        ));
    }
    let (lt, lc, mixed) = launch_source(s, ctx, &input)?;
    if lt.is_none() && lc.is_none() && mixed.is_none() {
        return Err(validation(
            "Valid requests must contain either LaunchTemplate, LaunchConfigurationName, InstanceId or MixedInstancesPolicy parameter.",
        ));
    }
    let min = input.i64("MinSize").unwrap_or(0);
    let max = input.i64("MaxSize").unwrap_or(0);
    let desired = input.i64("DesiredCapacity").unwrap_or(min);
    check_bounds(min, max, desired)?;
    let placed = placement(
        s,
        ctx,
        input.str("VPCZoneIdentifier"),
        &input.string_list("AvailabilityZones"),
    )?;
    let hct = input.str("HealthCheckType").unwrap_or("EC2").to_string();
    if !matches!(hct.as_str(), "EC2" | "ELB" | "VPC_LATTICE" | "EBS") {
        return Err(validation(format!(
            "Invalid health check type: {hct}. Valid values are EC2, ELB, VPC_LATTICE and EBS."
        )));
    }
    let termination_policies = input.string_list("TerminationPolicies");
    check_termination_policies(&termination_policies)?;
    let tags = tags_of(&input, &name)?;
    let mut hooks = BTreeMap::new();
    for h in input
        .get("LifecycleHookSpecificationList")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let hook = super::hooks::hook_from(h)?;
        hooks.insert(hook.name.clone(), hook);
    }
    let target_groups = input.string_list("TargetGroupARNs");
    check_target_groups(s, ctx, &target_groups)?;
    let mut traffic_sources = Vec::new();
    let mut tgs = target_groups;
    for t in input
        .get("TrafficSources")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        push_source(s, ctx, t, &mut tgs, &mut Vec::new(), &mut traffic_sources)?;
    }
    let mut g = Group {
        account: ctx.account.clone(),
        region: ctx.region.clone(),
        arn: ctx.arn(
            "autoscaling",
            &format!("autoScalingGroup:{}:autoScalingGroupName/{name}", uuid::Uuid::new_v4()),
        ),
        name: name.clone(),
        created: ctx.now,
        launch_template: lt,
        launch_configuration: lc,
        mixed_instances_policy: mixed,
        min,
        max,
        desired,
        default_cooldown: input.i64("DefaultCooldown").unwrap_or(300),
        health_check_type: hct,
        health_check_grace_period: input.i64("HealthCheckGracePeriod").unwrap_or(0),
        target_groups: tgs,
        load_balancers: input.string_list("LoadBalancerNames"),
        traffic_sources,
        termination_policies,
        protect_new: input.bool("NewInstancesProtectedFromScaleIn").unwrap_or(false),
        tags,
        hooks,
        cause: format!(
            "At {} a user request created an AutoScalingGroup changing the desired capacity from 0 to {desired}.",
            iso(ctx.now)
        ),
        ..Default::default()
    };
    placed.apply(&mut g);
    store_extra(&mut g, &input);
    let key = group_key(&scope, &name);
    s.groups.transact(|t| {
        if t.contains(&key) {
            return Err(AwsError::new(codes::autoscaling::AlreadyExistsFault,
                format!("AutoScalingGroup by this name already exists - A group with the name {name} already exists"),
            ));
        }
        t.put(&key, g.clone());
        Ok(())
    })?;
    s.wake.notify_one();
    Ok(json!({}))
}

fn check_target_groups(s: &AutoScaling, ctx: &Ctx, arns: &[String]) -> Result<(), AwsError> {
    let elb = &s.elbv2;
    for a in arns {
        let scope_ok = a.starts_with(&format!(
            "arn:aws:elasticloadbalancing:{}:{}:targetgroup/",
            ctx.region, ctx.account
        ));
        if !scope_ok || elb.group_by_arn(a).is_none() {
            return Err(validation(format!(
                "Provided Target Groups may not be valid. Please ensure they exist and try again. Target group not found: {a}"
            )));
        }
    }
    Ok(())
}

fn push_source(
    s: &AutoScaling,
    ctx: &Ctx,
    t: &Value,
    tgs: &mut Vec<String>,
    lbs: &mut Vec<String>,
    other: &mut Vec<(String, String)>,
) -> Result<(), AwsError> {
    let id = t.str("Identifier").unwrap_or_default().to_string();
    let kind = t.str("Type").map(str::to_string).unwrap_or_else(|| {
        if id.starts_with("arn:aws:elasticloadbalancing:") {
            "elbv2".into()
        } else {
            "elb".into()
        }
    });
    match kind.as_str() {
        "elbv2" => {
            check_target_groups(s, ctx, std::slice::from_ref(&id))?;
            if !tgs.contains(&id) {
                tgs.push(id);
            }
        }
        "elb" => {
            if !lbs.contains(&id) {
                lbs.push(id);
            }
        }
        "vpc-lattice" => {
            if !other.iter().any(|(i, _)| i == &id) {
                other.push((id, kind));
            }
        }
        _ => {
            return Err(validation(format!(
                "Invalid traffic source type: {kind}. Valid values are elb, elbv2 and vpc-lattice."
            )))
        }
    }
    Ok(())
}

pub fn update_group(s: &AutoScaling, ctx: &Ctx, input: Value) -> HandlerResult {
    let name = input
        .str("AutoScalingGroupName")
        .unwrap_or_default()
        .to_string();
    let scope = ctx.scope();
    let current = s.group(&scope, &name)?;
    let (lt, lc, mixed) = launch_source(s, ctx, &input)?;
    let placement =
        if input.str("VPCZoneIdentifier").is_some() || input.get("AvailabilityZones").is_some() {
            Some(placement(
                s,
                ctx,
                input.str("VPCZoneIdentifier"),
                &input.string_list("AvailabilityZones"),
            )?)
        } else {
            None
        };
    let termination_policies = input
        .get("TerminationPolicies")
        .map(|_| input.string_list("TerminationPolicies"));
    if let Some(t) = &termination_policies {
        check_termination_policies(t)?;
    }
    let min = input.i64("MinSize").unwrap_or(current.min);
    let max = input.i64("MaxSize").unwrap_or(current.max);
    // Without DesiredCapacity the desired capacity is moved into the new bounds.
    let desired = input
        .i64("DesiredCapacity")
        .unwrap_or(current.desired.clamp(min.min(max), max.max(min)));
    check_bounds(min, max, desired)?;
    s.update_group(&scope, &name, |g| {
        if lt.is_some() || lc.is_some() || mixed.is_some() {
            g.launch_template = lt;
            g.launch_configuration = lc;
            g.mixed_instances_policy = mixed;
        }
        if let Some(p) = placement {
            p.apply(g);
        }
        if let Some(t) = termination_policies {
            g.termination_policies = t;
        }
        if let Some(c) = input.i64("DefaultCooldown") {
            g.default_cooldown = c;
        }
        if let Some(h) = input.str("HealthCheckType") {
            g.health_check_type = h.to_string();
        }
        if let Some(p) = input.i64("HealthCheckGracePeriod") {
            g.health_check_grace_period = p;
        }
        if let Some(p) = input.bool("NewInstancesProtectedFromScaleIn") {
            g.protect_new = p;
        }
        store_extra(g, &input);
        let before = g.desired;
        g.min = min;
        g.max = max;
        g.desired = desired;
        if before != desired {
            g.cause = format!(
                "At {} a user request update of AutoScalingGroup constraints to min: {min}, max: {max}, desired: {desired} changing the desired capacity from {before} to {desired}.",
                iso(ctx.now)
            );
        }
        Ok(())
    })?;
    Ok(json!({}))
}

pub fn delete_group(s: &AutoScaling, ctx: &Ctx, input: Value) -> HandlerResult {
    let name = input
        .str("AutoScalingGroupName")
        .unwrap_or_default()
        .to_string();
    let scope = ctx.scope();
    let g = s.group(&scope, &name)?;
    if g.deleting {
        return Ok(json!({}));
    }
    let force = input.bool("ForceDelete").unwrap_or(false);
    if !force {
        if !g.instances.is_empty() || g.desired > 0 {
            return Err(AwsError::new(codes::autoscaling::ResourceInUseFault,
                "You cannot delete an AutoScalingGroup while there are instances or pending Spot instance request(s) still in the group.",
            ));
        }
        if g.extra.get("DeletionProtection").and_then(Value::as_str) == Some("prevent-all-deletion")
        {
            return Err(validation(format!(
                "You cannot delete the Auto Scaling group {name} because it has deletion protection enabled."
            )));
        }
    }
    // Policies, scheduled actions and the alarms of target tracking go with the group.
    super::policies::delete_group_policies(s, ctx, &name)?;
    super::scheduled::delete_group_actions(s, ctx, &name)?;
    let key = group_key(&scope, &name);
    s.groups.transact(|t| {
        let Some(mut g) = t.get(&key).cloned() else {
            return Err(no_group(&name));
        };
        if g.instances.is_empty() {
            t.remove(&key);
        } else {
            // The controller terminates the instances (hooks are skipped with ForceDelete),
            // then removes the group.
            g.deleting = true;
            g.min = 0;
            g.max = 0;
            g.desired = 0;
            g.hooks.clear();
            g.cause = format!(
                "At {} a user request deleted the AutoScalingGroup changing the desired capacity from {} to 0.",
                iso(ctx.now),
                g.capacity()
            );
            for m in g.instances.values_mut() {
                m.protected = false;
            }
            t.put(&key, g);
        }
        Ok(())
    })?;
    s.wake.notify_one();
    Ok(json!({}))
}

fn group_filter(g: &Group, filters: &[(String, Vec<String>)]) -> bool {
    filters.iter().all(|(name, values)| match name.as_str() {
        "tag-key" => g.tags.iter().any(|t| values.contains(&t.key)),
        "tag-value" => g.tags.iter().any(|t| values.contains(&t.value)),
        n => match n.strip_prefix("tag:") {
            Some(k) => g
                .tags
                .iter()
                .any(|t| t.key == k && values.contains(&t.value)),
            None => true,
        },
    })
}

pub fn filters(input: &Value) -> Result<Vec<(String, Vec<String>)>, AwsError> {
    Ok(input
        .get("Filters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|f| {
            (
                f.str("Name").unwrap_or_default().to_string(),
                f.string_list("Values"),
            )
        })
        .collect())
}

pub fn max_records(input: &Value, default: i64) -> Result<usize, AwsError> {
    let m = input.i64("MaxRecords").unwrap_or(default);
    if !(1..=100).contains(&m) {
        return Err(validation(format!(
            "MaxRecords must be between 1 and 100, got {m}"
        )));
    }
    Ok(m as usize)
}

pub fn groups_in(s: &AutoScaling, scope: &str) -> Vec<Group> {
    s.groups.read(|rows| {
        rows.range(scope.to_string()..)
            .take_while(|(k, _)| k.starts_with(scope))
            .map(|(_, g)| g.clone())
            .collect()
    })
}

pub fn describe_groups(s: &AutoScaling, ctx: &Ctx, input: Value) -> HandlerResult {
    let names = input.string_list("AutoScalingGroupNames");
    let fs = filters(&input)?;
    for (n, _) in &fs {
        if !matches!(n.as_str(), "tag-key" | "tag-value") && !n.starts_with("tag:") {
            return Err(validation(format!("Filter name {n} is not valid")));
        }
    }
    let mut groups: Vec<Group> = groups_in(s, &ctx.scope())
        .into_iter()
        .filter(|g| names.is_empty() || names.contains(&g.name))
        .filter(|g| group_filter(g, &fs))
        .collect();
    groups.sort_by(|a, b| a.name.cmp(&b.name));
    let (page, next) = page::page(
        groups,
        |g| g.name.clone(),
        input.str("NextToken"),
        max_records(&input, 50)?,
        codes::autoscaling::InvalidNextToken,
    )?;
    let with_instances = input.bool("IncludeInstances").unwrap_or(true);
    let mut out = json!({
        "AutoScalingGroups": page.iter().map(|g| g.to_json(with_instances)).collect::<Vec<_>>()
    });
    if let Some(n) = next {
        out["NextToken"] = json!(n);
    }
    Ok(out)
}

/// Sets a group's desired capacity with `cause` for the activity (HonorCooldown refuses during
/// the cooldown).
pub fn set_desired(
    s: &AutoScaling,
    ctx: &Ctx,
    name: &str,
    desired: i64,
    honor_cooldown: bool,
) -> Result<(), AwsError> {
    s.update_group(&ctx.scope(), name, |g| {
        if desired > g.max {
            return Err(validation(format!(
                "New SetDesiredCapacity value {desired} is above max value {} for the AutoScalingGroup.",
                g.max
            )));
        }
        if desired < g.min {
            return Err(validation(format!(
                "New SetDesiredCapacity value {desired} is below min value {} for the AutoScalingGroup.",
                g.min
            )));
        }
        if honor_cooldown && ctx.now < g.last_scaling + g.default_cooldown as f64 {
            return Err(AwsError::new(codes::autoscaling::ScalingActivityInProgressFault,
                "Scaling activity in progress",
            ));
        }
        if g.desired != desired {
            g.cause = format!(
                "At {} a user request explicitly set group desired capacity changing the desired capacity from {} to {desired}.",
                iso(ctx.now),
                g.desired
            );
            g.desired = desired;
            g.last_scaling = ctx.now;
        }
        Ok(())
    })
}

pub fn set_desired_capacity(s: &AutoScaling, ctx: &Ctx, input: Value) -> HandlerResult {
    set_desired(
        s,
        ctx,
        input.str("AutoScalingGroupName").unwrap_or_default(),
        input.i64("DesiredCapacity").unwrap_or(0),
        input.bool("HonorCooldown").unwrap_or(false),
    )?;
    Ok(json!({}))
}

fn processes(input: &Value) -> Result<Vec<String>, AwsError> {
    let list = input.string_list("ScalingProcesses");
    for p in &list {
        if !PROCESSES.contains(&p.as_str()) {
            return Err(validation(format!("Process {p} is not a valid process.")));
        }
    }
    Ok(if list.is_empty() {
        PROCESSES.iter().map(|p| p.to_string()).collect()
    } else {
        list
    })
}

pub fn suspend_processes(s: &AutoScaling, ctx: &Ctx, input: Value) -> HandlerResult {
    let list = processes(&input)?;
    s.update_group(
        &ctx.scope(),
        input.str("AutoScalingGroupName").unwrap_or_default(),
        |g| {
            for p in list {
                g.suspended
                    .insert(p, format!("User suspended at {}", iso(ctx.now)));
            }
            Ok(())
        },
    )?;
    Ok(json!({}))
}

pub fn resume_processes(s: &AutoScaling, ctx: &Ctx, input: Value) -> HandlerResult {
    let list = processes(&input)?;
    s.update_group(
        &ctx.scope(),
        input.str("AutoScalingGroupName").unwrap_or_default(),
        |g| {
            for p in list {
                g.suspended.remove(&p);
            }
            Ok(())
        },
    )?;
    Ok(json!({}))
}

fn group_name(input: &Value) -> &str {
    input.str("AutoScalingGroupName").unwrap_or_default()
}

pub fn attach_target_groups(s: &AutoScaling, ctx: &Ctx, input: Value) -> HandlerResult {
    let arns = input.string_list("TargetGroupARNs");
    check_target_groups(s, ctx, &arns)?;
    s.update_group(&ctx.scope(), group_name(&input), |g| {
        for a in arns {
            if !g.target_groups.contains(&a) {
                g.target_groups.push(a);
            }
        }
        for m in g.instances.values_mut() {
            m.registered = false;
        }
        Ok(())
    })?;
    Ok(json!({}))
}

pub fn detach_target_groups(s: &AutoScaling, ctx: &Ctx, input: Value) -> HandlerResult {
    let arns = input.string_list("TargetGroupARNs");
    let g = s.update_group(&ctx.scope(), group_name(&input), |g| {
        g.target_groups.retain(|a| !arns.contains(a));
        Ok(g.clone())
    })?;
    deregister_all(s, ctx, &g, &arns);
    Ok(json!({}))
}

/// Deregisters the group's instances from target groups it no longer uses.
fn deregister_all(s: &AutoScaling, ctx: &Ctx, g: &Group, arns: &[String]) {
    let ids: Vec<String> = g.instances.keys().cloned().collect();
    deregister(s, ctx, arns, &ids);
}

/// Deregisters instances from every target group of the group (DetachInstances).
pub fn deregister_members(s: &AutoScaling, ctx: &Ctx, g: &Group, ids: &[String]) {
    deregister(s, ctx, &g.target_groups, ids);
}

fn deregister(s: &AutoScaling, ctx: &Ctx, arns: &[String], ids: &[String]) {
    let elb = &s.elbv2;
    for arn in arns {
        let Some(tg) = elb.group_by_arn(arn) else {
            continue;
        };
        let targets: Vec<crate::services::elbv2::targets::TargetSpec> = ids
            .iter()
            .map(|id| crate::services::elbv2::targets::TargetSpec {
                id: id.clone(),
                port: tg.port,
                availability_zone: None,
            })
            .collect();
        let _ = elb.deregister_targets(&ctx.account, &ctx.region, arn, &targets);
    }
}

pub fn describe_target_groups(s: &AutoScaling, ctx: &Ctx, input: Value) -> HandlerResult {
    let g = s.group(&ctx.scope(), group_name(&input))?;
    let items: Vec<Value> = g
        .target_groups
        .iter()
        .map(|a| json!({"LoadBalancerTargetGroupARN": a, "State": source_state(&g)}))
        .collect();
    Ok(json!({"LoadBalancerTargetGroups": items}))
}

/// Added while instances are still being registered, InService once every member is.
fn source_state(g: &Group) -> &'static str {
    if g.instances
        .values()
        .filter(|m| m.state == "InService")
        .all(|m| m.registered)
    {
        "InService"
    } else {
        "Added"
    }
}

pub fn attach_load_balancers(s: &AutoScaling, ctx: &Ctx, input: Value) -> HandlerResult {
    let names = input.string_list("LoadBalancerNames");
    s.update_group(&ctx.scope(), group_name(&input), |g| {
        for n in names {
            if !g.load_balancers.contains(&n) {
                g.load_balancers.push(n);
            }
        }
        Ok(())
    })?;
    Ok(json!({}))
}

pub fn detach_load_balancers(s: &AutoScaling, ctx: &Ctx, input: Value) -> HandlerResult {
    let names = input.string_list("LoadBalancerNames");
    s.update_group(&ctx.scope(), group_name(&input), |g| {
        g.load_balancers.retain(|n| !names.contains(n));
        Ok(())
    })?;
    Ok(json!({}))
}

pub fn describe_load_balancers(s: &AutoScaling, ctx: &Ctx, input: Value) -> HandlerResult {
    let g = s.group(&ctx.scope(), group_name(&input))?;
    let items: Vec<Value> = g
        .load_balancers
        .iter()
        .map(|n| json!({"LoadBalancerName": n, "State": source_state(&g)}))
        .collect();
    Ok(json!({"LoadBalancers": items}))
}

pub fn attach_traffic_sources(s: &AutoScaling, ctx: &Ctx, input: Value) -> HandlerResult {
    let sources: Vec<Value> = input
        .get("TrafficSources")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut g = s.group(&ctx.scope(), group_name(&input))?;
    for t in &sources {
        push_source(
            s,
            ctx,
            t,
            &mut g.target_groups,
            &mut g.load_balancers,
            &mut g.traffic_sources,
        )?;
    }
    s.update_group(&ctx.scope(), group_name(&input), |stored| {
        stored.target_groups = g.target_groups;
        stored.load_balancers = g.load_balancers;
        stored.traffic_sources = g.traffic_sources;
        for m in stored.instances.values_mut() {
            m.registered = false;
        }
        Ok(())
    })?;
    Ok(json!({}))
}

pub fn detach_traffic_sources(s: &AutoScaling, ctx: &Ctx, input: Value) -> HandlerResult {
    let ids: Vec<String> = input
        .get("TrafficSources")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| t.str("Identifier").map(str::to_string))
        .collect();
    let g = s.update_group(&ctx.scope(), group_name(&input), |g| {
        g.target_groups.retain(|a| !ids.contains(a));
        g.load_balancers.retain(|a| !ids.contains(a));
        g.traffic_sources.retain(|(a, _)| !ids.contains(a));
        Ok(g.clone())
    })?;
    deregister_all(s, ctx, &g, &ids);
    Ok(json!({}))
}

pub fn describe_traffic_sources(s: &AutoScaling, ctx: &Ctx, input: Value) -> HandlerResult {
    let g = s.group(&ctx.scope(), group_name(&input))?;
    let kind = input.str("TrafficSourceType");
    let state = source_state(&g);
    let items: Vec<Value> = g
        .traffic_sources_json()
        .into_iter()
        .filter(|(_, t, _)| kind.is_none_or(|k| k == t))
        .map(|(id, t, _)| json!({"TrafficSource": id, "Identifier": id, "Type": t, "State": state}))
        .collect();
    Ok(json!({"TrafficSources": items}))
}

pub fn enable_metrics(s: &AutoScaling, ctx: &Ctx, input: Value) -> HandlerResult {
    if input.str("Granularity") != Some("1Minute") {
        return Err(validation("Valid granularity is 1Minute"));
    }
    let mut list = input.string_list("Metrics");
    if list.is_empty() {
        list = METRICS.iter().map(|m| m.to_string()).collect();
    }
    s.update_group(&ctx.scope(), group_name(&input), |g| {
        for m in list {
            if !g.enabled_metrics.contains(&m) {
                g.enabled_metrics.push(m);
            }
        }
        Ok(())
    })?;
    Ok(json!({}))
}

pub fn disable_metrics(s: &AutoScaling, ctx: &Ctx, input: Value) -> HandlerResult {
    let list = input.string_list("Metrics");
    s.update_group(&ctx.scope(), group_name(&input), |g| {
        if list.is_empty() {
            g.enabled_metrics.clear();
        } else {
            g.enabled_metrics.retain(|m| !list.contains(m));
        }
        Ok(())
    })?;
    Ok(json!({}))
}
