//! Lifecycle hooks: PutLifecycleHook, DescribeLifecycleHooks, DeleteLifecycleHook,
//! DescribeLifecycleHookTypes, CompleteLifecycleAction, RecordLifecycleActionHeartbeat. The
//! controller puts instances in Pending:Wait / Terminating:Wait and applies the results.

use super::model::Hook;
use super::{validation, AutoScaling, SVC};
use crate::protocol::codes;
use crate::protocol::AwsError;
use crate::services::input::Input;
use crate::services::{Ctx, HandlerResult, Registry};
use serde_json::{json, Value};
use std::sync::Arc;

pub const LAUNCHING: &str = "autoscaling:EC2_INSTANCE_LAUNCHING";
pub const TERMINATING: &str = "autoscaling:EC2_INSTANCE_TERMINATING";

pub fn register(r: &mut Registry, s: &Arc<AutoScaling>) {
    r.sync(SVC, "PutLifecycleHook", s, put_hook);
    r.sync(SVC, "DescribeLifecycleHooks", s, describe_hooks);
    r.sync(SVC, "DeleteLifecycleHook", s, delete_hook);
    r.sync(SVC, "DescribeLifecycleHookTypes", s, describe_hook_types);
    r.sync(SVC, "CompleteLifecycleAction", s, complete_action);
    r.sync(SVC, "RecordLifecycleActionHeartbeat", s, record_heartbeat);
}

/// A hook from PutLifecycleHook's or LifecycleHookSpecification's members.
pub fn hook_from(v: &Value) -> Result<Hook, AwsError> {
    let transition = v.str("LifecycleTransition").unwrap_or_default().to_string();
    if transition != LAUNCHING && transition != TERMINATING {
        return Err(validation(format!(
            "Invalid value for LifecycleTransition: {transition}. Valid values are {LAUNCHING} and {TERMINATING}."
        )));
    }
    let heartbeat_timeout = v.i64("HeartbeatTimeout").unwrap_or(3600);
    if !(30..=7200).contains(&heartbeat_timeout) {
        return Err(validation(
            "Heartbeat timeout must be between 30 and 7200 seconds",
        ));
    }
    let default_result = v.str("DefaultResult").unwrap_or("ABANDON").to_string();
    if default_result != "CONTINUE" && default_result != "ABANDON" {
        return Err(validation(format!(
            "Invalid value for DefaultResult: {default_result}. Valid values are CONTINUE and ABANDON."
        )));
    }
    Ok(Hook {
        name: v.str("LifecycleHookName").unwrap_or_default().to_string(),
        transition,
        heartbeat_timeout,
        default_result,
        notification_target: v.str("NotificationTargetARN").map(str::to_string),
        role_arn: v.str("RoleARN").map(str::to_string),
        metadata: v.str("NotificationMetadata").map(str::to_string),
    })
}

fn group_name(input: &Value) -> &str {
    input.str("AutoScalingGroupName").unwrap_or_default()
}

pub fn put_hook(s: &AutoScaling, ctx: &Ctx, input: Value) -> HandlerResult {
    let name = input
        .str("LifecycleHookName")
        .unwrap_or_default()
        .to_string();
    s.update_group(&ctx.scope(), group_name(&input), |g| {
        // An update keeps what the call leaves out.
        let mut merged = match g.hooks.get(&name) {
            Some(h) => json!({
                "LifecycleHookName": h.name,
                "LifecycleTransition": h.transition,
                "HeartbeatTimeout": h.heartbeat_timeout,
                "DefaultResult": h.default_result,
                "NotificationTargetARN": h.notification_target,
                "RoleARN": h.role_arn,
                "NotificationMetadata": h.metadata,
            }),
            None => {
                if g.hooks.len() >= 50 {
                    return Err(AwsError::new(
                        codes::autoscaling::LimitExceededFault,
                        "Maximum number of lifecycle hooks for this group (50) has been reached.",
                    ));
                }
                if input.str("LifecycleTransition").is_none() {
                    return Err(validation(
                        "A lifecycle transition must be specified when creating a lifecycle hook.",
                    ));
                }
                json!({})
            }
        };
        if let (Some(m), Some(i)) = (merged.as_object_mut(), input.as_object()) {
            for (k, v) in i {
                m.insert(k.clone(), v.clone());
            }
            m.retain(|_, v| !v.is_null());
        }
        let hook = hook_from(&merged)?;
        g.hooks.insert(hook.name.clone(), hook);
        Ok(())
    })?;
    Ok(json!({}))
}

pub fn describe_hooks(s: &AutoScaling, ctx: &Ctx, input: Value) -> HandlerResult {
    let g = s.group(&ctx.scope(), group_name(&input))?;
    let names = input.string_list("LifecycleHookNames");
    let hooks: Vec<Value> = g
        .hooks
        .values()
        .filter(|h| names.is_empty() || names.contains(&h.name))
        .map(|h| h.to_json(&g.name))
        .collect();
    Ok(json!({"LifecycleHooks": hooks}))
}

fn no_hook(name: &str, group: &str) -> AwsError {
    validation(format!(
        "No Lifecycle Hook found with name {name} for AutoScalingGroup {group}"
    ))
}

pub fn delete_hook(s: &AutoScaling, ctx: &Ctx, input: Value) -> HandlerResult {
    let name = input
        .str("LifecycleHookName")
        .unwrap_or_default()
        .to_string();
    s.update_group(&ctx.scope(), group_name(&input), |g| {
        if g.hooks.remove(&name).is_none() {
            return Err(no_hook(&name, &g.name));
        }
        Ok(())
    })?;
    Ok(json!({}))
}

pub fn describe_hook_types(_: &AutoScaling, _: &Ctx, _: Value) -> HandlerResult {
    Ok(json!({"LifecycleHookTypes": [LAUNCHING, TERMINATING]}))
}

/// The member waiting on hook `name`, by instance id or action token.
fn waiting<'a>(
    g: &'a mut super::model::Group,
    hook: &str,
    input: &Value,
) -> Result<&'a mut super::model::Member, AwsError> {
    let group = g.name.clone();
    if !g.hooks.contains_key(hook) {
        return Err(no_hook(hook, &group));
    }
    let id = input.str("InstanceId").filter(|s| !s.is_empty());
    let token = input.str("LifecycleActionToken").filter(|s| !s.is_empty());
    if id.is_none() && token.is_none() {
        return Err(validation(
            "You must specify either an instance ID or a lifecycle action token.",
        ));
    }
    g.instances
        .values_mut()
        .find(|m| {
            m.wait.as_ref().is_some_and(|w| {
                w.hook == hook
                    && w.result.is_none()
                    && id.is_none_or(|i| i == m.id)
                    && token.is_none_or(|t| t == w.token)
            })
        })
        .ok_or_else(|| match (id, token) {
            (Some(i), _) => validation(format!(
                "No active Lifecycle Action found with instance ID {i}"
            )),
            (None, Some(t)) => {
                validation(format!("No active Lifecycle Action found with token {t}"))
            }
            _ => validation("No active Lifecycle Action found"),
        })
}

pub fn complete_action(s: &AutoScaling, ctx: &Ctx, input: Value) -> HandlerResult {
    let hook = input
        .str("LifecycleHookName")
        .unwrap_or_default()
        .to_string();
    let result = input
        .str("LifecycleActionResult")
        .unwrap_or_default()
        .to_string();
    if result != "CONTINUE" && result != "ABANDON" {
        return Err(validation(format!(
            "Invalid value for LifecycleActionResult: {result}. Valid values are CONTINUE and ABANDON."
        )));
    }
    s.update_group(&ctx.scope(), group_name(&input), |g| {
        let m = waiting(g, &hook, &input)?;
        if let Some(w) = m.wait.as_mut() {
            w.result = Some(result);
        }
        Ok(())
    })?;
    Ok(json!({}))
}

pub fn record_heartbeat(s: &AutoScaling, ctx: &Ctx, input: Value) -> HandlerResult {
    let hook = input
        .str("LifecycleHookName")
        .unwrap_or_default()
        .to_string();
    s.update_group(&ctx.scope(), group_name(&input), |g| {
        let timeout = g
            .hooks
            .get(&hook)
            .map(|h| h.heartbeat_timeout)
            .unwrap_or(3600) as f64;
        let m = waiting(g, &hook, &input)?;
        if let Some(w) = m.wait.as_mut() {
            w.deadline = (ctx.now + timeout).min(w.global_deadline);
        }
        Ok(())
    })?;
    Ok(json!({}))
}
