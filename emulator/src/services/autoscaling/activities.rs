//! Scaling activities: recorded by handlers and the controller, described newest first.

use super::groups::max_records;
use super::model::Activity;
use super::{sub_key, AutoScaling, SVC};
use crate::protocol::codes;
use crate::protocol::AwsError;
use crate::services::input::Input;
use crate::services::{page, Ctx, HandlerResult, Registry};
use serde_json::{json, Value};
use std::sync::Arc;

pub fn register(r: &mut Registry, s: &Arc<AutoScaling>) {
    r.sync(SVC, "DescribeScalingActivities", s, describe_activities);
}

pub fn new_activity(
    group: &str,
    group_arn: &str,
    description: String,
    cause: String,
    now: f64,
    status: &str,
    details: Value,
) -> Activity {
    crate::feedback!("Auto Scaling group {group}: {description}");
    let done = matches!(status, "Successful" | "Failed" | "Cancelled");
    Activity {
        id: uuid::Uuid::new_v4().to_string(),
        group: group.to_string(),
        group_arn: group_arn.to_string(),
        description,
        cause,
        start: now,
        end: done.then_some(now),
        status: status.to_string(),
        message: None,
        progress: if done { 100 } else { 0 },
        details: details.to_string(),
    }
}

fn activity_key(scope: &str, a: &Activity) -> String {
    sub_key(scope, &a.group, &format!("{:020.3}\u{1}{}", a.start, a.id))
}

pub fn save_activities(s: &AutoScaling, ctx: &Ctx, acts: &[Activity]) -> Result<(), AwsError> {
    save_in(s, &ctx.scope(), acts)
}

pub fn save_in(s: &AutoScaling, scope: &str, acts: &[Activity]) -> Result<(), AwsError> {
    if acts.is_empty() {
        return Ok(());
    }
    s.activities.transact(|t| {
        for a in acts {
            t.put(&activity_key(scope, a), a.clone());
        }
        Ok(())
    })
}

/// Updates an activity in place (status, end, message).
pub fn update_activity(
    s: &AutoScaling,
    scope: &str,
    group: &str,
    id: &str,
    change: impl FnOnce(&mut Activity),
) {
    let prefix = sub_key(scope, group, "");
    let key = s.activities.read(|rows| {
        rows.range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .find(|(_, a)| a.id == id)
            .map(|(k, _)| k.clone())
    });
    let Some(key) = key else { return };
    let _ = s.activities.transact::<_, AwsError, _>(|t| {
        if let Some(a) = t.get_mut(&key) {
            change(a);
        }
        Ok(())
    });
}

pub fn find(s: &AutoScaling, ctx: &Ctx, group: &str, id: &str) -> Option<Activity> {
    let prefix = sub_key(&ctx.scope(), group, "");
    s.activities.read(|rows| {
        rows.range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .find(|(_, a)| a.id == id)
            .map(|(_, a)| a.clone())
    })
}

pub fn describe_activities(s: &AutoScaling, ctx: &Ctx, input: Value) -> HandlerResult {
    let scope = ctx.scope();
    let group = input.str("AutoScalingGroupName").filter(|g| !g.is_empty());
    let ids = input.string_list("ActivityIds");
    let include_deleted = input.bool("IncludeDeletedGroups").unwrap_or(false);
    if let Some(g) = group {
        if !include_deleted && s.groups.get(&super::group_key(&scope, g)).is_none() {
            return Ok(json!({"Activities": []}));
        }
    }
    let prefix = match group {
        Some(g) => sub_key(&scope, g, ""),
        None => scope.clone(),
    };
    let mut acts: Vec<Activity> = s.activities.read(|rows| {
        rows.range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .map(|(_, a)| a.clone())
            .collect()
    });
    acts.retain(|a| ids.is_empty() || ids.contains(&a.id));
    if !include_deleted && group.is_none() {
        acts.retain(|a| s.groups.get(&super::group_key(&scope, &a.group)).is_some());
    }
    // Newest first.
    acts.sort_by(|a, b| b.start.total_cmp(&a.start).then_with(|| a.id.cmp(&b.id)));
    let order: Vec<String> = acts
        .iter()
        .enumerate()
        .map(|(i, a)| format!("{i:010}{}", a.id))
        .collect();
    let indexed: Vec<(String, Activity)> = order.into_iter().zip(acts).collect();
    let (page, next) = page::page(
        indexed,
        |(k, _)| k.clone(),
        input.str("NextToken"),
        max_records(&input, 100)?,
        codes::autoscaling::InvalidNextToken,
    )?;
    let mut out = json!({
        "Activities": page.iter().map(|(_, a)| a.to_json()).collect::<Vec<_>>()
    });
    if let Some(n) = next {
        out["NextToken"] = json!(n);
    }
    Ok(out)
}
