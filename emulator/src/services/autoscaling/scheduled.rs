//! Scheduled actions: PutScheduledUpdateGroupAction, BatchPutScheduledUpdateGroupAction,
//! DeleteScheduledAction, BatchDeleteScheduledAction, DescribeScheduledActions; the controller
//! runs the due ones (`run_due`). Recurrence is a five-field Unix cron expression read in
//! TimeZone (IANA, default UTC), evaluated by the `croner` crate.

use super::groups::max_records;
use super::model::{iso, ScheduledAction};
use super::{sub_key, validation, AutoScaling, SVC};
use crate::protocol::codes;
use crate::protocol::AwsError;
use crate::services::input::Input;
use crate::services::{page, Ctx, HandlerResult, Registry};
use chrono::{TimeZone, Utc};
use chrono_tz::Tz;
use serde_json::{json, Value};
use std::sync::Arc;

pub fn register(r: &mut Registry, s: &Arc<AutoScaling>) {
    r.sync(SVC, "PutScheduledUpdateGroupAction", s, put_action);
    r.sync(SVC, "BatchPutScheduledUpdateGroupAction", s, batch_put);
    r.sync(SVC, "DeleteScheduledAction", s, delete_action);
    r.sync(SVC, "BatchDeleteScheduledAction", s, batch_delete);
    r.sync(SVC, "DescribeScheduledActions", s, describe_actions);
}

fn cron(expr: &str) -> Result<croner::Cron, AwsError> {
    croner::Cron::new(expr)
        .parse()
        .map_err(|_| validation(format!("Given recurrence string: {expr} is invalid")))
}

fn tz(name: Option<&str>) -> Result<Tz, AwsError> {
    match name {
        None => Ok(Tz::UTC),
        Some(n) => n
            .parse::<Tz>()
            .map_err(|_| validation(format!("Invalid time zone: {n}"))),
    }
}

/// The first run at or after `after`.
fn next_run(a: &ScheduledAction, after: f64) -> Result<Option<f64>, AwsError> {
    let Some(expr) = &a.recurrence else {
        let t = a.start.or(a.time);
        return Ok(t.filter(|t| *t >= after - 1.0));
    };
    let c = cron(expr)?;
    let zone = tz(a.time_zone.as_deref())?;
    let from = a.start.map(|s| s.max(after)).unwrap_or(after);
    let Some(start) = Utc.timestamp_opt(from as i64, 0).single() else {
        return Ok(None);
    };
    let next = c
        .find_next_occurrence(&start.with_timezone(&zone), true)
        .ok()
        .map(|t| t.timestamp() as f64);
    Ok(next.filter(|n| a.end.is_none_or(|e| *n <= e)))
}

fn action_from(ctx: &Ctx, group: &str, v: &Value) -> Result<ScheduledAction, AwsError> {
    let name = v.str("ScheduledActionName").unwrap_or_default().to_string();
    let time = v.get("Time").and_then(Value::as_f64);
    let start = v.get("StartTime").and_then(Value::as_f64).or(time);
    let end = v.get("EndTime").and_then(Value::as_f64);
    let recurrence = v.str("Recurrence").map(str::to_string);
    let (min, max, desired) = (v.i64("MinSize"), v.i64("MaxSize"), v.i64("DesiredCapacity"));
    if min.is_none() && max.is_none() && desired.is_none() {
        return Err(validation(
            "At least one of MinSize, MaxSize or DesiredCapacity must be specified.",
        ));
    }
    if let (Some(a), Some(b)) = (min, max) {
        if a > b {
            return Err(validation(format!(
                "Max bound, {b}, must be greater than or equal to min bound, {a}"
            )));
        }
    }
    if let (Some(s), Some(e)) = (start, end) {
        if e <= s {
            return Err(validation("End time must be after start time."));
        }
    }
    if recurrence.is_none() && start.is_some_and(|s| s < ctx.now - 1.0) {
        return Err(validation(format!(
            "Given start time is in the past: {}",
            iso(start.unwrap_or_default())
        )));
    }
    if let Some(r) = &recurrence {
        cron(r)?;
    }
    tz(v.str("TimeZone"))?;
    let mut a = ScheduledAction {
        group: group.to_string(),
        arn: ctx.arn(
            "autoscaling",
            &format!(
                "scheduledUpdateGroupAction:{}:autoScalingGroupName/{group}:scheduledActionName/{name}",
                uuid::Uuid::new_v4()
            ),
        ),
        name,
        time,
        start,
        end,
        recurrence,
        time_zone: v.str("TimeZone").map(str::to_string),
        min,
        max,
        desired,
        next_run: None,
    };
    a.next_run = next_run(&a, ctx.now)?;
    Ok(a)
}

fn save(
    s: &AutoScaling,
    ctx: &Ctx,
    actions: Vec<ScheduledAction>,
    replace: bool,
) -> Result<Vec<String>, AwsError> {
    let scope = ctx.scope();
    s.scheduled.transact(|t| {
        let mut existing = Vec::new();
        for a in actions {
            let key = sub_key(&scope, &a.group, &a.name);
            if let Some(old) = t.get(&key) {
                if !replace {
                    existing.push(a.name.clone());
                    continue;
                }
                let mut a = a;
                a.arn = old.arn.clone();
                t.put(&key, a);
            } else {
                t.put(&key, a);
            }
        }
        Ok(existing)
    })
}

pub fn put_action(s: &AutoScaling, ctx: &Ctx, input: Value) -> HandlerResult {
    let group = input.str("AutoScalingGroupName").unwrap_or_default();
    s.group(&ctx.scope(), group)?;
    let a = action_from(ctx, group, &input)?;
    save(s, ctx, vec![a], true)?;
    s.wake.notify_one();
    Ok(json!({}))
}

pub fn batch_put(s: &AutoScaling, ctx: &Ctx, input: Value) -> HandlerResult {
    let group = input.str("AutoScalingGroupName").unwrap_or_default();
    s.group(&ctx.scope(), group)?;
    let mut ok = Vec::new();
    let mut failed = Vec::new();
    for v in input
        .get("ScheduledUpdateGroupActions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        match action_from(ctx, group, v) {
            Ok(a) => ok.push(a),
            Err(e) => failed.push(json!({
                "ScheduledActionName": v.str("ScheduledActionName"),
                "ErrorCode": e.code,
                "ErrorMessage": e.message,
            })),
        }
    }
    save(s, ctx, ok, true)?;
    s.wake.notify_one();
    Ok(json!({"FailedScheduledUpdateGroupActions": failed}))
}

pub fn delete_action(s: &AutoScaling, ctx: &Ctx, input: Value) -> HandlerResult {
    let group = input.str("AutoScalingGroupName").unwrap_or_default();
    let name = input.str("ScheduledActionName").unwrap_or_default();
    s.group(&ctx.scope(), group)?;
    let key = sub_key(&ctx.scope(), group, name);
    s.scheduled.transact(|t| {
        if t.remove(&key).is_none() {
            return Err(validation(format!(
                "Scheduled action name not found - {name}"
            )));
        }
        Ok(())
    })?;
    Ok(json!({}))
}

pub fn batch_delete(s: &AutoScaling, ctx: &Ctx, input: Value) -> HandlerResult {
    let group = input.str("AutoScalingGroupName").unwrap_or_default();
    s.group(&ctx.scope(), group)?;
    let names = input.string_list("ScheduledActionNames");
    let scope = ctx.scope();
    let failed = s.scheduled.transact::<_, AwsError, _>(|t| {
        let mut failed = Vec::new();
        for n in &names {
            if t.remove(&sub_key(&scope, group, n)).is_none() {
                failed.push(json!({"ScheduledActionName": n, "ErrorCode": "ValidationError", "ErrorMessage": format!("Scheduled action name not found - {n}")}));
            }
        }
        Ok(failed)
    })?;
    Ok(json!({"FailedScheduledActions": failed}))
}

pub fn delete_group_actions(s: &AutoScaling, ctx: &Ctx, group: &str) -> Result<(), AwsError> {
    let prefix = sub_key(&ctx.scope(), group, "");
    s.scheduled.transact(|t| {
        for k in t.keys(&prefix) {
            t.remove(&k);
        }
        Ok(())
    })
}

pub fn describe_actions(s: &AutoScaling, ctx: &Ctx, input: Value) -> HandlerResult {
    let scope = ctx.scope();
    let group = input.str("AutoScalingGroupName").filter(|g| !g.is_empty());
    let names = input.string_list("ScheduledActionNames");
    let start = input.get("StartTime").and_then(Value::as_f64);
    let end = input.get("EndTime").and_then(Value::as_f64);
    let prefix = match group {
        Some(g) => {
            s.group(&scope, g)?;
            sub_key(&scope, g, "")
        }
        None => scope.clone(),
    };
    let rows: Vec<(String, ScheduledAction)> = s.scheduled.read(|rows| {
        rows.range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .map(|(k, a)| (k.clone(), a.clone()))
            .filter(|(_, a)| names.is_empty() || names.contains(&a.name))
            .filter(|(_, a)| {
                let t = a.next_run.or(a.start).unwrap_or(0.0);
                start.is_none_or(|s| t >= s) && end.is_none_or(|e| t <= e)
            })
            .collect()
    });
    let (page, next) = page::page(
        rows,
        |(k, _)| k.clone(),
        input.str("NextToken"),
        max_records(&input, 50)?,
        codes::autoscaling::InvalidNextToken,
    )?;
    let mut out = json!({
        "ScheduledUpdateGroupActions": page.iter().map(|(_, a)| a.to_json()).collect::<Vec<_>>()
    });
    if let Some(n) = next {
        out["NextToken"] = json!(n);
    }
    Ok(out)
}

/// Runs the scheduled actions due at `now` (called by the controller).
pub fn run_due(s: &AutoScaling, now: f64) {
    let due: Vec<(String, ScheduledAction)> = s.scheduled.read(|rows| {
        rows.iter()
            .filter(|(_, a)| a.next_run.is_some_and(|t| t <= now))
            .map(|(k, a)| (k.clone(), a.clone()))
            .collect()
    });
    for (key, a) in due {
        let scope = key
            .split('/')
            .take(2)
            .map(|p| format!("{p}/"))
            .collect::<String>();
        let _ = s.update_group(&scope, &a.group, |g| {
            if g.suspended("ScheduledActions") {
                return Ok(());
            }
            let min = a.min.unwrap_or(g.min);
            let max = a.max.unwrap_or(g.max);
            let desired = a.desired.unwrap_or(g.desired).clamp(min.min(max), max);
            let before = g.desired;
            g.min = min;
            g.max = max;
            g.desired = desired;
            if before != desired {
                g.cause = format!(
                    "At {} a scheduled action update of AutoScalingGroup constraints to min: {min}, max: {max}, desired: {desired} changing the desired capacity from {before} to {desired}.",
                    iso(now)
                );
            }
            Ok(())
        });
        let next = next_run(&a, now + 1.0).ok().flatten();
        let _ = s.scheduled.transact::<_, AwsError, _>(|t| {
            match (next, a.recurrence.is_some()) {
                (Some(n), true) => {
                    if let Some(x) = t.get_mut(&key) {
                        x.next_run = Some(n);
                    }
                }
                _ => {
                    // A one-time action is deleted once it ran, as in AWS.
                    t.remove(&key);
                }
            }
            Ok(())
        });
    }
}
