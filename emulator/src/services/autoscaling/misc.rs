//! The describe-the-service calls (limits, adjustment, process, termination policy, notification
//! and metric collection types), notification configurations, warm pools (stored) and instance
//! refreshes (replaced by the controller within MinHealthyPercentage).

use super::groups::{groups_in, max_records, METRICS};
use super::model::{InstanceRefresh, PROCESSES};
use super::{sub_key, validation, AutoScaling, SVC};
use crate::protocol::codes;
use crate::protocol::AwsError;
use crate::services::input::Input;
use crate::services::{page, Ctx, HandlerResult, Registry};
use serde_json::{json, Value};
use std::sync::Arc;

pub fn register(r: &mut Registry, s: &Arc<AutoScaling>) {
    r.sync(SVC, "DescribeAccountLimits", s, account_limits);
    r.sync(SVC, "DescribeAdjustmentTypes", s, adjustment_types);
    r.sync(SVC, "DescribeScalingProcessTypes", s, process_types);
    r.sync(
        SVC,
        "DescribeTerminationPolicyTypes",
        s,
        termination_policy_types,
    );
    r.sync(
        SVC,
        "DescribeAutoScalingNotificationTypes",
        s,
        notification_types,
    );
    r.sync(SVC, "DescribeMetricCollectionTypes", s, metric_types);
    r.sync(
        SVC,
        "PutNotificationConfiguration",
        s,
        put_notification_configuration,
    );
    r.sync(
        SVC,
        "DeleteNotificationConfiguration",
        s,
        delete_notification_configuration,
    );
    r.sync(
        SVC,
        "DescribeNotificationConfigurations",
        s,
        describe_notification_configurations,
    );
    r.sync(SVC, "PutWarmPool", s, put_warm_pool);
    r.sync(SVC, "DescribeWarmPool", s, describe_warm_pool);
    r.sync(SVC, "DeleteWarmPool", s, delete_warm_pool);
    r.sync(SVC, "StartInstanceRefresh", s, start_instance_refresh);
    r.sync(
        SVC,
        "DescribeInstanceRefreshes",
        s,
        describe_instance_refreshes,
    );
    r.sync(SVC, "CancelInstanceRefresh", s, cancel_instance_refresh);
    r.sync(SVC, "RollbackInstanceRefresh", s, rollback_instance_refresh);
}

fn account_limits(s: &AutoScaling, ctx: &Ctx, _: Value) -> HandlerResult {
    let scope = ctx.scope();
    let lcs = s
        .launch_configs
        .read(|rows| rows.keys().filter(|k| k.starts_with(&scope)).count());
    Ok(json!({
        "MaxNumberOfAutoScalingGroups": 500,
        "MaxNumberOfLaunchConfigurations": 200,
        "NumberOfAutoScalingGroups": groups_in(s, &scope).len(),
        "NumberOfLaunchConfigurations": lcs,
    }))
}

fn adjustment_types(_: &AutoScaling, _: &Ctx, _: Value) -> HandlerResult {
    Ok(json!({"AdjustmentTypes": [
        {"AdjustmentType": "ChangeInCapacity"},
        {"AdjustmentType": "ExactCapacity"},
        {"AdjustmentType": "PercentChangeInCapacity"},
    ]}))
}

fn process_types(_: &AutoScaling, _: &Ctx, _: Value) -> HandlerResult {
    Ok(
        json!({"Processes": PROCESSES.iter().map(|p| json!({"ProcessName": p})).collect::<Vec<_>>()}),
    )
}

fn termination_policy_types(_: &AutoScaling, _: &Ctx, _: Value) -> HandlerResult {
    Ok(json!({"TerminationPolicyTypes": [
        "AllocationStrategy", "ClosestToNextInstanceHour", "Default", "NewestInstance",
        "OldestInstance", "OldestLaunchConfiguration", "OldestLaunchTemplate",
    ]}))
}

const NOTIFICATION_TYPES: [&str; 5] = [
    "autoscaling:EC2_INSTANCE_LAUNCH",
    "autoscaling:EC2_INSTANCE_LAUNCH_ERROR",
    "autoscaling:EC2_INSTANCE_TERMINATE",
    "autoscaling:EC2_INSTANCE_TERMINATE_ERROR",
    "autoscaling:TEST_NOTIFICATION",
];

fn notification_types(_: &AutoScaling, _: &Ctx, _: Value) -> HandlerResult {
    Ok(json!({"AutoScalingNotificationTypes": NOTIFICATION_TYPES}))
}

fn metric_types(_: &AutoScaling, _: &Ctx, _: Value) -> HandlerResult {
    Ok(json!({
        "Metrics": METRICS.iter().map(|m| json!({"Metric": m})).collect::<Vec<_>>(),
        "Granularities": [{"Granularity": "1Minute"}],
    }))
}

fn group_name(input: &Value) -> &str {
    input.str("AutoScalingGroupName").unwrap_or_default()
}

fn put_notification_configuration(s: &AutoScaling, ctx: &Ctx, input: Value) -> HandlerResult {
    let topic = input.str("TopicARN").unwrap_or_default().to_string();
    let types = input.string_list("NotificationTypes");
    for t in &types {
        if !NOTIFICATION_TYPES.contains(&t.as_str()) {
            return Err(validation(format!("Notification type {t} is not valid")));
        }
    }
    s.update_group(&ctx.scope(), group_name(&input), |g| {
        g.notifications.retain(|(tp, _)| tp != &topic);
        for t in types {
            g.notifications.push((topic.clone(), t));
        }
        Ok(())
    })?;
    Ok(json!({}))
}

fn delete_notification_configuration(s: &AutoScaling, ctx: &Ctx, input: Value) -> HandlerResult {
    let topic = input.str("TopicARN").unwrap_or_default().to_string();
    s.update_group(&ctx.scope(), group_name(&input), |g| {
        g.notifications.retain(|(tp, _)| tp != &topic);
        Ok(())
    })?;
    Ok(json!({}))
}

fn describe_notification_configurations(s: &AutoScaling, ctx: &Ctx, input: Value) -> HandlerResult {
    let names = input.string_list("AutoScalingGroupNames");
    let mut rows = Vec::new();
    for g in groups_in(s, &ctx.scope()) {
        if !names.is_empty() && !names.contains(&g.name) {
            continue;
        }
        for (topic, t) in &g.notifications {
            rows.push((
                format!("{}\u{1}{topic}\u{1}{t}", g.name),
                json!({"AutoScalingGroupName": g.name, "TopicARN": topic, "NotificationType": t}),
            ));
        }
    }
    let (page, next) = page::page(
        rows,
        |(k, _)| k.clone(),
        input.str("NextToken"),
        max_records(&input, 50)?,
        codes::autoscaling::InvalidNextToken,
    )?;
    let mut out =
        json!({"NotificationConfigurations": page.into_iter().map(|(_, v)| v).collect::<Vec<_>>()});
    if let Some(n) = next {
        out["NextToken"] = json!(n);
    }
    Ok(out)
}

fn put_warm_pool(s: &AutoScaling, ctx: &Ctx, input: Value) -> HandlerResult {
    let mut conf = json!({
        "MinSize": input.i64("MinSize").unwrap_or(0),
        "PoolState": input.str("PoolState").unwrap_or("Stopped"),
    });
    if let Some(m) = input.i64("MaxGroupPreparedCapacity") {
        conf["MaxGroupPreparedCapacity"] = json!(m);
    }
    if let Some(r) = input.get("InstanceReusePolicy") {
        conf["InstanceReusePolicy"] = r.clone();
    }
    s.update_group(&ctx.scope(), group_name(&input), |g| {
        if g.mixed_instances_policy.is_some() {
            return Err(validation(
                "You can't add a warm pool to an Auto Scaling group that has a mixed instances policy.",
            ));
        }
        g.warm_pool = Some(conf);
        Ok(())
    })?;
    Ok(json!({}))
}

fn describe_warm_pool(s: &AutoScaling, ctx: &Ctx, input: Value) -> HandlerResult {
    let g = s.group(&ctx.scope(), group_name(&input))?;
    let mut out = json!({"Instances": []});
    if let Some(w) = g.warm_pool {
        out["WarmPoolConfiguration"] = w;
    }
    Ok(out)
}

fn delete_warm_pool(s: &AutoScaling, ctx: &Ctx, input: Value) -> HandlerResult {
    s.update_group(&ctx.scope(), group_name(&input), |g| {
        if g.warm_pool.take().is_none() {
            return Err(validation(format!(
                "No warm pool found for Auto Scaling group {}.",
                g.name
            )));
        }
        Ok(())
    })?;
    Ok(json!({}))
}

fn refreshes_of(s: &AutoScaling, scope: &str, group: &str) -> Vec<(String, InstanceRefresh)> {
    let prefix = sub_key(scope, group, "");
    s.refreshes.read(|rows| {
        rows.range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    })
}

fn active(r: &InstanceRefresh) -> bool {
    matches!(
        r.status.as_str(),
        "Pending" | "InProgress" | "Cancelling" | "RollbackInProgress"
    )
}

fn start_instance_refresh(s: &AutoScaling, ctx: &Ctx, input: Value) -> HandlerResult {
    let scope = ctx.scope();
    let g = s.group(&scope, group_name(&input))?;
    if refreshes_of(s, &scope, &g.name)
        .iter()
        .any(|(_, r)| active(r))
    {
        return Err(AwsError::new(codes::autoscaling::InstanceRefreshInProgressFault,
            "An Instance Refresh is already in progress and blocks the execution of this Instance Refresh.",
        ));
    }
    let mut prefs = input.get("Preferences").cloned().unwrap_or(json!({}));
    let min_healthy = prefs.i64("MinHealthyPercentage").unwrap_or(90);
    if !(0..=100).contains(&min_healthy) {
        return Err(validation("MinHealthyPercentage must be between 0 and 100"));
    }
    prefs["MinHealthyPercentage"] = json!(min_healthy);
    let to_replace: Vec<String> = g
        .instances
        .values()
        .filter(|m| m.counts())
        .map(|m| m.id.clone())
        .collect();
    let r = InstanceRefresh {
        id: uuid::Uuid::new_v4().to_string(),
        group: g.name.clone(),
        status: "Pending".into(),
        start: ctx.now,
        end: None,
        preferences: prefs,
        desired_configuration: input.get("DesiredConfiguration").cloned(),
        total: to_replace.len() as i64,
        to_replace,
        status_reason: None,
    };
    let key = sub_key(&scope, &g.name, &format!("{:020.3}\u{1}{}", ctx.now, r.id));
    s.refreshes.transact::<_, AwsError, _>(|t| {
        t.put(&key, r.clone());
        Ok(())
    })?;
    s.wake.notify_one();
    Ok(json!({"InstanceRefreshId": r.id}))
}

fn describe_instance_refreshes(s: &AutoScaling, ctx: &Ctx, input: Value) -> HandlerResult {
    let g = s.group(&ctx.scope(), group_name(&input))?;
    let ids = input.string_list("InstanceRefreshIds");
    let mut rows: Vec<(String, InstanceRefresh)> = refreshes_of(s, &ctx.scope(), &g.name)
        .into_iter()
        .filter(|(_, r)| ids.is_empty() || ids.contains(&r.id))
        .collect();
    rows.reverse();
    let indexed: Vec<(String, InstanceRefresh)> = rows
        .into_iter()
        .enumerate()
        .map(|(i, (_, r))| (format!("{i:08}"), r))
        .collect();
    let (page, next) = page::page(
        indexed,
        |(k, _)| k.clone(),
        input.str("NextToken"),
        max_records(&input, 50)?,
        codes::autoscaling::InvalidNextToken,
    )?;
    let mut out =
        json!({"InstanceRefreshes": page.iter().map(|(_, r)| r.to_json()).collect::<Vec<_>>()});
    if let Some(n) = next {
        out["NextToken"] = json!(n);
    }
    Ok(out)
}

fn cancel_instance_refresh(s: &AutoScaling, ctx: &Ctx, input: Value) -> HandlerResult {
    let g = s.group(&ctx.scope(), group_name(&input))?;
    let Some((key, r)) = refreshes_of(s, &ctx.scope(), &g.name)
        .into_iter()
        .find(|(_, r)| active(r))
    else {
        return Err(AwsError::new(
            codes::autoscaling::ActiveInstanceRefreshNotFoundFault,
            "No in progress or pending Instance Refresh found for Auto Scaling group",
        ));
    };
    s.refreshes.transact::<_, AwsError, _>(|t| {
        if let Some(x) = t.get_mut(&key) {
            x.status = "Cancelled".into();
            x.end = Some(ctx.now);
            x.status_reason = Some("Cancelled due to user request.".into());
        }
        Ok(())
    })?;
    Ok(json!({"InstanceRefreshId": r.id}))
}

/// RollbackInstanceRefresh: the refresh in progress stops and the instances it already
/// launched are replaced again (the group launches their replacements from its configuration).
/// Only a refresh with a DesiredConfiguration can be rolled back, as in AWS.
fn rollback_instance_refresh(s: &AutoScaling, ctx: &Ctx, input: Value) -> HandlerResult {
    let g = s.group(&ctx.scope(), group_name(&input))?;
    let Some((key, r)) = refreshes_of(s, &ctx.scope(), &g.name)
        .into_iter()
        .find(|(_, r)| matches!(r.status.as_str(), "Pending" | "InProgress"))
    else {
        return Err(AwsError::new(
            codes::autoscaling::ActiveInstanceRefreshNotFoundFault,
            "No in progress or pending Instance Refresh found for Auto Scaling group",
        ));
    };
    if r.desired_configuration.is_none() {
        return Err(AwsError::new(
            codes::autoscaling::IrreversibleInstanceRefreshFault,
            "The instance refresh cannot be rolled back because it has no desired configuration.",
        ));
    }
    // The instances launched since the refresh started are the ones it put in.
    let launched: Vec<String> = g
        .instances
        .values()
        .filter(|m| m.counts() && m.launched >= r.start)
        .map(|m| m.id.clone())
        .collect();
    s.refreshes.transact::<_, AwsError, _>(|t| {
        if let Some(x) = t.get_mut(&key) {
            x.status = "RollbackInProgress".into();
            x.status_reason = Some("Rollback initiated by user request.".into());
            x.total = launched.len() as i64;
            x.to_replace = launched.clone();
            x.start = ctx.now;
        }
        Ok(())
    })?;
    s.wake.notify_one();
    Ok(json!({"InstanceRefreshId": r.id}))
}

/// The controller's instance refresh step for one group: at most (100 - MinHealthyPercentage) %
/// of the capacity is replaced at a time; an instance is replaced by terminating it (the group
/// launches its replacement from the current launch template).
pub fn refresh_step(
    s: &AutoScaling,
    scope: &str,
    group: &super::model::Group,
    now: f64,
) -> Vec<String> {
    let Some((key, mut r)) = refreshes_of(s, scope, &group.name)
        .into_iter()
        .find(|(_, r)| active(r))
    else {
        return Vec::new();
    };
    if r.status == "Cancelling" {
        return Vec::new();
    }
    // Instances already gone count as replaced.
    r.to_replace.retain(|id| {
        group
            .instances
            .get(id)
            .is_some_and(|m| m.counts() || m.terminating())
    });
    let in_service = group
        .instances
        .values()
        .filter(|m| m.state == "InService")
        .count() as i64;
    let replacing = group
        .instances
        .values()
        .filter(|m| m.terminating() || m.state.starts_with("Pending"))
        .count() as i64;
    let min_healthy = r.preferences.i64("MinHealthyPercentage").unwrap_or(90);
    let allowed = ((group.desired as f64) * (100 - min_healthy) as f64 / 100.0)
        .floor()
        .max(1.0) as i64;
    let mut picked = Vec::new();
    if replacing < allowed && in_service >= group.desired.min(1) {
        for id in r.to_replace.clone() {
            if picked.len() as i64 >= allowed - replacing {
                break;
            }
            if group
                .instances
                .get(&id)
                .is_some_and(|m| m.state == "InService")
            {
                picked.push(id.clone());
                r.to_replace.retain(|x| x != &id);
            }
        }
    }
    let pending_left = r
        .to_replace
        .iter()
        .any(|id| group.instances.get(id).is_some_and(|m| m.counts()));
    let rolling_back = r.status == "RollbackInProgress";
    r.status = match (
        !pending_left && picked.is_empty() && replacing == 0,
        rolling_back,
    ) {
        (true, false) => "Successful".into(),
        (true, true) => "RollbackSuccessful".into(),
        (false, false) => "InProgress".into(),
        (false, true) => "RollbackInProgress".into(),
    };
    if r.status.ends_with("Successful") {
        r.end = Some(now);
        r.to_replace.clear();
    }
    let _ = s.refreshes.transact::<_, AwsError, _>(|t| {
        t.put(&key, r);
        Ok(())
    });
    picked
}
