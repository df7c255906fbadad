//! The instances of groups: DescribeAutoScalingInstances, TerminateInstanceInAutoScalingGroup,
//! SetInstanceHealth, SetInstanceProtection, Enter/ExitStandby, Attach/DetachInstances.

use super::activities::{new_activity, save_activities};
use super::groups::{groups_in, max_records};
use super::model::{iso, Activity, Group, Member};
use super::{validation, AutoScaling, SVC};
use crate::protocol::codes;
use crate::protocol::AwsError;
use crate::services::input::Input;
use crate::services::{page, Ctx, HandlerResult, Registry};
use serde_json::{json, Value};
use std::sync::Arc;

pub fn register(r: &mut Registry, s: &Arc<AutoScaling>) {
    r.sync(SVC, "DescribeAutoScalingInstances", s, describe_instances);
    r.sync(
        SVC,
        "TerminateInstanceInAutoScalingGroup",
        s,
        terminate_instance,
    );
    r.sync(SVC, "SetInstanceHealth", s, set_instance_health);
    r.sync(SVC, "SetInstanceProtection", s, set_instance_protection);
    r.sync(SVC, "EnterStandby", s, enter_standby);
    r.sync(SVC, "ExitStandby", s, exit_standby);
    r.sync(SVC, "AttachInstances", s, attach_instances);
    r.sync(SVC, "DetachInstances", s, detach_instances);
}

pub fn describe_instances(s: &AutoScaling, ctx: &Ctx, input: Value) -> HandlerResult {
    let ids = input.string_list("InstanceIds");
    let mut rows: Vec<(String, Member)> = groups_in(s, &ctx.scope())
        .into_iter()
        .flat_map(|g| {
            let name = g.name.clone();
            g.instances.into_values().map(move |m| (name.clone(), m))
        })
        .filter(|(_, m)| ids.is_empty() || ids.contains(&m.id))
        .collect();
    rows.sort_by(|a, b| a.1.id.cmp(&b.1.id));
    let (page, next) = page::page(
        rows,
        |(_, m)| m.id.clone(),
        input.str("NextToken"),
        max_records(&input, 50)?,
        codes::autoscaling::InvalidNextToken,
    )?;
    let mut out = json!({
        "AutoScalingInstances": page.iter().map(|(g, m)| {
            let mut v = m.to_json(Some(g));
            v["LifecycleState"] = json!(m.state);
            v
        }).collect::<Vec<_>>()
    });
    if let Some(n) = next {
        out["NextToken"] = json!(n);
    }
    Ok(out)
}

/// The group holding `id`, or AWS's error.
fn owning_group(s: &AutoScaling, ctx: &Ctx, id: &str) -> Result<Group, AwsError> {
    s.group_of_instance(&ctx.scope(), id).ok_or_else(|| {
        validation(format!(
            "Instance Id not found - No managed instance found for instance ID: {id}"
        ))
    })
}

/// Marks a member Terminating and returns its activity (the controller runs hooks and calls
/// EC2).
pub fn start_termination(
    g: &mut Group,
    id: &str,
    now: f64,
    cause: String,
    replace: bool,
) -> Option<Activity> {
    let m = g.instances.get_mut(id)?;
    if m.terminating() {
        return None;
    }
    let a = new_activity(
        &g.name,
        &g.arn,
        format!("Terminating EC2 instance: {id}"),
        cause,
        now,
        "InProgress",
        json!({"Subnet ID": super::groups::subnet_id(&m.subnet), "Availability Zone": m.az}),
    );
    m.state = "Terminating".into();
    m.since = now;
    m.wait = None;
    m.replace = replace;
    m.activity = Some(a.id.clone());
    Some(a)
}

pub fn terminate_instance(s: &AutoScaling, ctx: &Ctx, input: Value) -> HandlerResult {
    let id = input.str("InstanceId").unwrap_or_default().to_string();
    let decrement = input
        .bool("ShouldDecrementDesiredCapacity")
        .unwrap_or(false);
    let g = owning_group(s, ctx, &id)?;
    let activity = s.update_group(&ctx.scope(), &g.name, |g| {
        let before = g.desired;
        let member = g.instances.get(&id).cloned().ok_or_else(|| {
            validation(format!(
                "Instance Id not found - No managed instance found for instance ID: {id}"
            ))
        })?;
        if decrement && member.counts() {
            if g.desired - 1 < g.min {
                return Err(validation(format!(
                    "Currently, desiredSize equals minSize ({}). Terminating instance without replacement will violate group's min size constraint. Either set shouldDecrementDesiredCapacity flag to false or lower group's min size.",
                    g.min
                )));
            }
            g.desired -= 1;
        }
        let t = iso(ctx.now);
        let cause = if decrement {
            format!("At {t} instance {id} was taken out of service in response to a user request, shrinking the capacity from {before} to {}.", g.desired)
        } else {
            format!("At {t} instance {id} was taken out of service in response to a user request.")
        };
        let a = start_termination(g, &id, ctx.now, cause, !decrement);
        Ok(a)
    })?;
    let a = match activity {
        Some(a) => {
            save_activities(s, ctx, std::slice::from_ref(&a))?;
            a
        }
        None => {
            // Already terminating: the activity in progress.
            let g = s.group(&ctx.scope(), &g.name)?;
            let aid = g
                .instances
                .get(&id)
                .and_then(|m| m.activity.clone())
                .unwrap_or_default();
            super::activities::find(s, ctx, &g.name, &aid)
                .ok_or_else(|| validation(format!("Instance {id} is already terminating")))?
        }
    };
    Ok(json!({"Activity": a.to_json()}))
}

pub fn set_instance_health(s: &AutoScaling, ctx: &Ctx, input: Value) -> HandlerResult {
    let id = input.str("InstanceId").unwrap_or_default().to_string();
    let status = input.str("HealthStatus").unwrap_or_default().to_string();
    if !matches!(status.as_str(), "Healthy" | "Unhealthy") {
        return Err(validation(format!(
            "Valid HealthStatus values are Healthy and Unhealthy, got {status}"
        )));
    }
    let respect = input.bool("ShouldRespectGracePeriod").unwrap_or(true);
    let g = owning_group(s, ctx, &id)?;
    s.update_group(&ctx.scope(), &g.name, |g| {
        let grace = g.health_check_grace_period as f64;
        let m = g
            .instances
            .get_mut(&id)
            .ok_or_else(|| validation(format!("Instance {id} is not in the group")))?;
        if respect && status == "Unhealthy" && ctx.now < m.launched + grace {
            // AWS ignores the call within the grace period when asked to respect it.
            return Ok(());
        }
        m.health = status.clone();
        m.unhealthy_reason = (status == "Unhealthy").then(|| "a user health-check".to_string());
        Ok(())
    })?;
    Ok(json!({}))
}

pub fn set_instance_protection(s: &AutoScaling, ctx: &Ctx, input: Value) -> HandlerResult {
    let ids = input.string_list("InstanceIds");
    let protect = input.bool("ProtectedFromScaleIn").unwrap_or(false);
    let name = input.str("AutoScalingGroupName").unwrap_or_default();
    if ids.len() > 50 {
        return Err(AwsError::new(
            codes::autoscaling::LimitExceededFault,
            "The number of instances exceeds the limit of 50.",
        ));
    }
    s.update_group(&ctx.scope(), name, |g| {
        for id in &ids {
            let m = g.instances.get_mut(id).ok_or_else(|| {
                validation(format!(
                    "The instance {id} is not part of Auto Scaling group {name}."
                ))
            })?;
            if m.terminating() {
                return Err(validation(format!(
                    "The instance {id} is terminating and cannot be protected."
                )));
            }
            m.protected = protect;
        }
        Ok(())
    })?;
    Ok(json!({}))
}

fn members<'a>(g: &'a Group, ids: &[String]) -> Result<Vec<&'a Member>, AwsError> {
    ids.iter()
        .map(|id| {
            g.instances.get(id).ok_or_else(|| {
                validation(format!(
                    "The instance {id} is not part of Auto Scaling group {}.",
                    g.name
                ))
            })
        })
        .collect()
}

pub fn enter_standby(s: &AutoScaling, ctx: &Ctx, input: Value) -> HandlerResult {
    let ids = input.string_list("InstanceIds");
    let decrement = input
        .bool("ShouldDecrementDesiredCapacity")
        .unwrap_or(false);
    let name = input.str("AutoScalingGroupName").unwrap_or_default();
    let acts = s.update_group(&ctx.scope(), name, |g| {
        for m in members(g, &ids)? {
            if m.state != "InService" {
                return Err(validation(format!(
                    "The instance {} is not in InService.",
                    m.id
                )));
            }
        }
        let before = g.desired;
        if decrement {
            let after = g.desired - ids.len() as i64;
            if after < g.min {
                return Err(validation(format!(
                    "AutoScalingGroup {name} has min-size={}, max-size={}, and desired-size={}. To place into standby {} instances, please update the AutoScalingGroup sizes appropriately.",
                    g.min, g.max, g.desired, ids.len()
                )));
            }
            g.desired = after;
        }
        let mut acts = Vec::new();
        for id in &ids {
            let t = iso(ctx.now);
            let cause = if decrement {
                format!("At {t} instance {id} was moved to standby in response to a user request, shrinking the capacity from {before} to {}.", g.desired)
            } else {
                format!("At {t} instance {id} was moved to standby in response to a user request.")
            };
            let a = new_activity(&g.name, &g.arn, format!("Moving EC2 instance to Standby: {id}"), cause, ctx.now, "Successful", json!({}));
            if let Some(m) = g.instances.get_mut(id) {
                m.state = "Standby".into();
                m.since = ctx.now;
            }
            acts.push(a);
        }
        Ok(acts)
    })?;
    save_activities(s, ctx, &acts)?;
    Ok(json!({"Activities": acts.iter().map(Activity::to_json).collect::<Vec<_>>()}))
}

pub fn exit_standby(s: &AutoScaling, ctx: &Ctx, input: Value) -> HandlerResult {
    let ids = input.string_list("InstanceIds");
    let name = input.str("AutoScalingGroupName").unwrap_or_default();
    let acts = s.update_group(&ctx.scope(), name, |g| {
        for m in members(g, &ids)? {
            if m.state != "Standby" {
                return Err(validation(format!(
                    "The instance {} is not in Standby.",
                    m.id
                )));
            }
        }
        let before = g.desired;
        let after = before + ids.len() as i64;
        if after > g.max {
            return Err(validation(format!(
                "AutoScalingGroup {name} has min-size={}, max-size={}, and desired-size={}. To remove from standby {} instances, please update the AutoScalingGroup sizes appropriately.",
                g.min, g.max, g.desired, ids.len()
            )));
        }
        g.desired = after;
        let mut acts = Vec::new();
        for id in &ids {
            let cause = format!("At {} instance {id} was moved out of standby in response to a user request, increasing the capacity from {before} to {after}.", iso(ctx.now));
            acts.push(new_activity(&g.name, &g.arn, format!("Moving EC2 instance out of Standby: {id}"), cause, ctx.now, "Successful", json!({})));
            if let Some(m) = g.instances.get_mut(id) {
                m.state = "InService".into();
                m.since = ctx.now;
            }
        }
        Ok(acts)
    })?;
    save_activities(s, ctx, &acts)?;
    Ok(json!({"Activities": acts.iter().map(Activity::to_json).collect::<Vec<_>>()}))
}

pub fn attach_instances(s: &AutoScaling, ctx: &Ctx, input: Value) -> HandlerResult {
    let ids = input.string_list("InstanceIds");
    let name = input.str("AutoScalingGroupName").unwrap_or_default();
    let ec2 = s.ec2()?;
    let all = ec2.instances(&ctx.account, &ctx.region, ctx.now);
    let g = s.group(&ctx.scope(), name)?;
    let mut found = Vec::new();
    for id in &ids {
        let i = all
            .iter()
            .find(|i| &i.instance_id == id && matches!(i.state.as_str(), "pending" | "running"))
            .ok_or_else(|| {
                validation(format!(
                    "Instance {id} is not in correct state for attaching to an AutoScalingGroup: it is not running or pending"
                ))
            })?;
        if !g.zones.contains(&i.availability_zone) {
            return Err(validation(format!(
                "Instance {id} is in {}, which is not one of the Availability Zones of the group.",
                i.availability_zone
            )));
        }
        if let Some(other) = s.group_of_instance(&ctx.scope(), id) {
            return Err(validation(format!(
                "The instance {id} is already part of the Auto Scaling group {}.",
                other.name
            )));
        }
        found.push(i.clone());
    }
    let acts = s.update_group(&ctx.scope(), name, |g| {
        let before = g.desired;
        let after = before + found.len() as i64;
        if after > g.max {
            return Err(validation(format!(
                "AutoScalingGroup {name} has min-size={}, max-size={}, and desired-size={}. To attach {} more instance(s), please update the AutoScalingGroup sizes appropriately.",
                g.min, g.max, g.desired, found.len()
            )));
        }
        g.desired = after;
        let mut acts = Vec::new();
        for i in &found {
            let cause = format!("At {} an instance was added in response to user request. Keeping the capacity at the new {after}.", iso(ctx.now));
            let a = new_activity(&g.name, &g.arn, format!("Attaching an existing EC2 instance: {}", i.instance_id), cause, ctx.now, "Successful", json!({}));
            g.instances.insert(
                i.instance_id.clone(),
                Member {
                    id: i.instance_id.clone(),
                    az: i.availability_zone.clone(),
                    subnet: i.subnet_id.clone(),
                    state: "InService".into(),
                    health: "Healthy".into(),
                    protected: g.protect_new,
                    launch_template: None,
                    launch_configuration: None,
                    instance_type: i.instance_type.clone(),
                    image_id: i.image_id.clone(),
                    launched: i.launch_time,
                    since: ctx.now,
                    wait: None,
                    spot: i.instance_lifecycle.as_deref() == Some("spot"),
                    weighted_capacity: None,
                    activity: None,
                    replace: false,
                    unhealthy_reason: None,
                    registered: false,
                },
            );
            acts.push(a);
        }
        Ok(acts)
    })?;
    save_activities(s, ctx, &acts)?;
    Ok(json!({}))
}

pub fn detach_instances(s: &AutoScaling, ctx: &Ctx, input: Value) -> HandlerResult {
    let ids = input.string_list("InstanceIds");
    let decrement = input
        .bool("ShouldDecrementDesiredCapacity")
        .unwrap_or(false);
    let name = input.str("AutoScalingGroupName").unwrap_or_default();
    let (acts, g) = s.update_group(&ctx.scope(), name, |g| {
        members(g, &ids)?;
        let before = g.desired;
        if decrement {
            let after = before - ids.len() as i64;
            if after < g.min {
                return Err(validation(format!(
                    "AutoScalingGroup {name} has min-size={}, max-size={}, and desired-size={}. To detach {} instance(s), please update the AutoScalingGroup sizes appropriately.",
                    g.min, g.max, g.desired, ids.len()
                )));
            }
            g.desired = after;
        }
        let mut acts = Vec::new();
        for id in &ids {
            let t = iso(ctx.now);
            let cause = if decrement {
                format!("At {t} instance {id} was detached in response to a user request, shrinking the capacity from {before} to {}.", g.desired)
            } else {
                format!("At {t} instance {id} was detached in response to a user request.")
            };
            acts.push(new_activity(&g.name, &g.arn, format!("Detaching EC2 instance: {id}"), cause, ctx.now, "Successful", json!({})));
        }
        let detached = g.clone();
        for id in &ids {
            g.instances.remove(id);
        }
        Ok((acts, detached))
    })?;
    save_activities(s, ctx, &acts)?;
    super::groups::deregister_members(s, ctx, &g, &ids);
    Ok(json!({"Activities": acts.iter().map(Activity::to_json).collect::<Vec<_>>()}))
}
