//! Running policies: what capacity a target tracking or step scaling policy asks for when its
//! alarm invokes it, cooldowns, several target tracking policies combined (out if any says out,
//! in only if all say in), min/max, and the resource's capacity itself (ECS desired count).

use super::targets::ecs_service;
use super::{
    target_key, Activity, AppAutoScaling, LastScaling, NotScaledReason, ScalableTarget,
    ScalingPolicy,
};
use crate::services::cloudwatch::{AlarmEvent, AlarmState};
use crate::services::input::Input;
use crate::services::Ctx;
use serde_json::Value;

/// ECS's default cooldowns for target tracking, in seconds.
const DEFAULT_COOLDOWN: f64 = 300.0;

/// What one policy wants.
#[derive(Debug, PartialEq)]
pub(crate) enum Want {
    /// A new capacity, before min/max.
    Capacity(i64),
    /// Nothing to do (cooldown, scale-in disabled or blocked by another policy).
    Nothing,
}

/// Step scaling: the adjustment whose interval contains `value - threshold` (lower bound
/// inclusive above the threshold, upper bound inclusive below it).
pub(crate) fn step_adjustment(conf: &Value, diff: f64) -> Option<i64> {
    let steps = conf.get("StepAdjustments")?.as_array()?;
    steps.iter().find_map(|s| {
        let lo = s
            .get("MetricIntervalLowerBound")
            .and_then(Value::as_f64)
            .unwrap_or(f64::NEG_INFINITY);
        let hi = s
            .get("MetricIntervalUpperBound")
            .and_then(Value::as_f64)
            .unwrap_or(f64::INFINITY);
        let inside = if diff >= 0.0 {
            lo <= diff && diff < hi
        } else {
            lo < diff && diff <= hi
        };
        inside.then(|| s.i64("ScalingAdjustment")).flatten()
    })
}

/// The capacity an adjustment gives from `current` (AWS's rounding for percentages: a change
/// between -1 and 1 becomes ±1, others round towards zero; MinAdjustmentMagnitude applies then).
pub(crate) fn adjust(conf: &Value, current: i64, adjustment: i64) -> i64 {
    match conf.str("AdjustmentType") {
        Some("ExactCapacity") => adjustment,
        Some("PercentChangeInCapacity") => {
            let raw = current as f64 * adjustment as f64 / 100.0;
            let mut change = if raw > 0.0 && raw < 1.0 {
                1
            } else if raw < 0.0 && raw > -1.0 {
                -1
            } else {
                raw.trunc() as i64
            };
            if let Some(min) = conf.i64("MinAdjustmentMagnitude") {
                if change != 0 && change.abs() < min {
                    change = min * change.signum();
                }
            }
            current + change
        }
        _ => current + adjustment,
    }
}

/// Target tracking: the capacity that brings the metric to the target, assuming it scales with
/// capacity.
pub(crate) fn tracking_capacity(current: i64, value: f64, target: f64, out: bool) -> i64 {
    let base = current.max(1) as f64;
    let wanted = (base * value / target).ceil() as i64;
    if out {
        wanted.max(current + 1)
    } else {
        wanted.min(current - 1).max(0)
    }
}

impl AppAutoScaling {
    /// Runs the policy `arn` because its alarm is in ALARM (CloudWatch calls this once a minute
    /// while it stays there).
    pub(crate) fn execute_policy(&self, arn: &str, event: &AlarmEvent) -> Result<(), String> {
        if event.state != AlarmState::Alarm {
            return Ok(());
        }
        let scope = format!("{}/{}/", event.account, event.region);
        let Some((_, policy)) = self
            .policies
            .scan(&scope)
            .into_iter()
            .find(|(_, p)| p.arn == arn)
        else {
            return Err(format!("No scaling policy found for {arn}"));
        };
        let tkey = target_key(
            &scope,
            &policy.namespace,
            &policy.resource_id,
            &policy.dimension,
        );
        let Some(target) = self.targets.get(&tkey) else {
            return Err(format!("No scalable target for {}", policy.resource_id));
        };
        let ctx = Ctx {
            account: event.account.clone(),
            region: event.region.clone(),
            request_id: "application-autoscaling".into(),
            now: event.now,
            access_key: None,
        };
        let Some(current) = self.capacity(&ctx, &target) else {
            self.unsupported_activity(&ctx, &target, &policy, event);
            return Ok(());
        };
        let cause = format!(
            "monitor alarm {} in state ALARM triggered policy {}",
            event.alarm_name, policy.name
        );
        let want = match policy.policy_type.as_str() {
            "TargetTrackingScaling" => self.tracking_want(&scope, &target, &policy, event, current),
            "StepScaling" => step_want(&target, &policy, event, current)?,
            _ => Want::Nothing,
        };
        let Want::Capacity(wanted) = want else {
            return Ok(());
        };
        let out = wanted > current;
        if (out && target.suspended.dynamic_out) || (!out && target.suspended.dynamic_in) {
            return Ok(());
        }
        let applied = self.scale(&ctx, &tkey, &target, current, wanted, &cause);
        if let Some(to) = applied {
            self.note_scaling(&tkey, &policy.name, out, current, to, event.now);
        }
        Ok(())
    }

    fn tracking_want(
        &self,
        scope: &str,
        target: &ScalableTarget,
        policy: &ScalingPolicy,
        event: &AlarmEvent,
        current: i64,
    ) -> Want {
        let conf = &policy.configuration;
        let goal = conf
            .get("TargetValue")
            .and_then(Value::as_f64)
            .unwrap_or(0.0);
        let Some(value) = event.value else {
            return Want::Nothing;
        };
        if goal <= 0.0 {
            return Want::Nothing;
        }
        let out = policy
            .alarms
            .first()
            .is_some_and(|a| a.name == event.alarm_name);
        let cooldown = |k: &str| conf.i64(k).map(|c| c as f64).unwrap_or(DEFAULT_COOLDOWN);
        if out {
            // During the scale-out cooldown, the capacity the last scale-out added counts as
            // already there: compute from the capacity it started from.
            let base = match target.last_out.get(&policy.name) {
                Some(l) if event.now < l.at + cooldown("ScaleOutCooldown") => l.from,
                _ => current,
            };
            let wanted = tracking_capacity(base, value, goal, true);
            if wanted <= current {
                return Want::Nothing;
            }
            return Want::Capacity(wanted);
        }
        if conf.bool("DisableScaleIn") == Some(true) {
            return Want::Nothing;
        }
        if target
            .last_in
            .get(&policy.name)
            .is_some_and(|l| event.now < l.at + cooldown("ScaleInCooldown"))
        {
            return Want::Nothing;
        }
        // Scale in only when every other target tracking policy would too.
        if !self.all_policies_scale_in(scope, target, policy) {
            return Want::Nothing;
        }
        Want::Capacity(tracking_capacity(current, value, goal, false))
    }

    fn all_policies_scale_in(
        &self,
        scope: &str,
        target: &ScalableTarget,
        policy: &ScalingPolicy,
    ) -> bool {
        let tkey = target_key(
            scope,
            &target.namespace,
            &target.resource_id,
            &target.dimension,
        );
        let (account, region) = scope
            .trim_end_matches('/')
            .split_once('/')
            .unwrap_or_default();
        let cw = &self.cloudwatch;
        self.policies
            .scan(&format!("{tkey}|"))
            .into_iter()
            .map(|(_, p)| p)
            .filter(|p| p.policy_type == "TargetTrackingScaling" && p.name != policy.name)
            .filter(|p| p.configuration.bool("DisableScaleIn") != Some(true))
            .all(|p| {
                p.alarms.get(1).is_some_and(|low| {
                    cw.alarm_state(account, region, &low.name)
                        .is_some_and(|(s, _)| s == AlarmState::Alarm)
                })
            })
    }

    fn note_scaling(&self, tkey: &str, policy: &str, out: bool, from: i64, to: i64, now: f64) {
        let _ = self.targets.record::<_, crate::store::StoreError, _>(|tx| {
            if let Some(t) = tx.get_mut(tkey) {
                let rec = LastScaling { at: now, from, to };
                if out {
                    // Within the cooldown, keep the capacity the first scale-out started from.
                    let from = t
                        .last_out
                        .get(policy)
                        .filter(|l| l.to == from)
                        .map(|l| l.from)
                        .unwrap_or(from);
                    t.last_out
                        .insert(policy.into(), LastScaling { from, ..rec });
                } else {
                    t.last_in.insert(policy.into(), rec);
                }
            }
            Ok(())
        });
    }

    /// The resource's current capacity; None when no resource stands behind the namespace.
    pub(crate) fn capacity(&self, ctx: &Ctx, target: &ScalableTarget) -> Option<i64> {
        if target.namespace != "ecs" {
            return None;
        }
        let (cluster, service) = ecs_service(&target.resource_id)?;
        self.ecs.desired_count(&ctx.scope(), cluster, service)
    }

    /// Moves capacity to `wanted` within [min, max], with an activity either way. Returns the
    /// capacity set, if it changed.
    pub(crate) fn scale(
        &self,
        ctx: &Ctx,
        tkey: &str,
        target: &ScalableTarget,
        current: i64,
        wanted: i64,
        cause: &str,
    ) -> Option<i64> {
        let to = wanted.clamp(target.min, target.max);
        if to == current {
            let code = if wanted > target.max && current == target.max {
                "AlreadyAtMaxCapacity"
            } else if wanted < target.min && current == target.min {
                "AlreadyAtMinCapacity"
            } else {
                "AlreadyAtDesiredCapacity"
            };
            self.not_scaled(ctx, target, wanted, cause, code, current);
            return None;
        }
        let _ = tkey;
        let (cluster, service) = ecs_service(&target.resource_id)?;
        let ecs = &self.ecs;
        let mut activity = self.activity(
            ctx,
            target,
            format!("Setting desired count to {to}."),
            cause.to_string(),
        );
        match ecs.set_desired_count(&ctx.scope(), cluster, service, to, ctx.now) {
            Ok(_) => {
                activity.status = "InProgress".into();
                self.save_activity(ctx, activity);
                Some(to)
            }
            Err(e) => {
                activity.status = "Failed".into();
                activity.end = Some(ctx.now);
                activity.message = Some(format!(
                    "Failed to set desired count to {to}. Reason: {}",
                    e.message
                ));
                self.save_activity(ctx, activity);
                None
            }
        }
    }

    /// After min or max changed: brings the capacity inside them.
    pub(crate) fn enforce_bounds(
        &self,
        ctx: &Ctx,
        tkey: &str,
        min_cause: Option<&str>,
        max_cause: Option<&str>,
    ) {
        let Some(target) = self.targets.get(tkey) else {
            return;
        };
        let Some(current) = self.capacity(ctx, &target) else {
            return;
        };
        if current < target.min {
            let cause = min_cause
                .map(str::to_string)
                .unwrap_or_else(|| format!("minimum capacity was set to {}", target.min));
            self.scale(ctx, tkey, &target, current, target.min, &cause);
        } else if current > target.max {
            let cause = max_cause
                .map(str::to_string)
                .unwrap_or_else(|| format!("maximum capacity was set to {}", target.max));
            self.scale(ctx, tkey, &target, current, target.max, &cause);
        }
    }

    pub(crate) fn activity(
        &self,
        ctx: &Ctx,
        target: &ScalableTarget,
        description: String,
        cause: String,
    ) -> Activity {
        crate::feedback!("scaling activity on {}: {description}", target.resource_id);
        Activity {
            id: uuid::Uuid::new_v4().to_string(),
            namespace: target.namespace.clone(),
            resource_id: target.resource_id.clone(),
            dimension: target.dimension.clone(),
            description,
            cause,
            start: ctx.now,
            end: None,
            status: "Pending".into(),
            message: None,
            not_scaled: Vec::new(),
        }
    }

    fn not_scaled(
        &self,
        ctx: &Ctx,
        target: &ScalableTarget,
        wanted: i64,
        cause: &str,
        code: &str,
        current: i64,
    ) {
        // A policy whose alarm stays in ALARM is invoked each minute: record one such activity
        // per episode, not one a minute.
        let scope = ctx.scope();
        let latest = self
            .activities
            .scan(&scope)
            .into_iter()
            .rev()
            .map(|(_, a)| a)
            .find(|a| a.resource_id == target.resource_id && a.dimension == target.dimension);
        if latest.is_some_and(|a| {
            a.cause == cause && a.not_scaled.first().is_some_and(|r| r.code == code)
        }) {
            return;
        }
        let mut a = self.activity(
            ctx,
            target,
            format!("Attempting to set desired count to {wanted}."),
            cause.to_string(),
        );
        a.status = "Failed".into();
        a.end = Some(ctx.now);
        a.message = Some(format!(
            "Not scaled: {code} (current capacity {current}, minimum {}, maximum {}).",
            target.min, target.max
        ));
        a.not_scaled = vec![NotScaledReason {
            code: code.into(),
            max: Some(target.max),
            min: Some(target.min),
            current: Some(current),
        }];
        self.save_activity(ctx, a);
    }

    /// A policy of a namespace with no resource behind it ran: say so.
    fn unsupported_activity(
        &self,
        ctx: &Ctx,
        target: &ScalableTarget,
        policy: &ScalingPolicy,
        event: &AlarmEvent,
    ) {
        if !event.transition {
            return;
        }
        let mut a = self.activity(
            ctx,
            target,
            format!("Scaling {} of {}.", target.dimension, target.resource_id),
            format!(
                "monitor alarm {} in state ALARM triggered policy {}",
                event.alarm_name, policy.name
            ),
        );
        a.status = "Failed".into();
        a.end = Some(ctx.now);
        a.message = Some(format!(
            "ecs-emulator emulates no {} resources: nothing was scaled.",
            target.namespace
        ));
        self.save_activity(ctx, a);
    }

    pub(crate) fn save_activity(&self, ctx: &Ctx, a: Activity) {
        let key = format!("{}{:017.3}|{}", ctx.scope(), a.start, a.id);
        let _ = self
            .activities
            .record::<_, crate::store::StoreError, _>(|tx| {
                tx.put(&key, a);
                Ok(())
            });
    }

    /// Activities that were handed to the resource finish once it accepted them (ECS accepts a
    /// desired count at once; the tasks follow).
    pub(crate) fn finish_activities(&self, now: f64) {
        let _ = self.activities.record::<_, crate::store::StoreError, _>(|tx| {
            let keys: Vec<String> = tx
                .rows()
                .iter()
                .filter(|(_, a)| a.status == "InProgress")
                .map(|(k, _)| k.clone())
                .collect();
            for k in keys {
                if let Some(a) = tx.get_mut(&k) {
                    a.status = "Successful".into();
                    a.end = Some(now);
                    let to = a
                        .description
                        .trim_start_matches("Setting desired count to ")
                        .trim_end_matches('.')
                        .to_string();
                    a.message = Some(format!(
                        "Successfully set desired count to {to}. Change successfully fulfilled by ecs."
                    ));
                }
            }
            Ok(())
        });
    }
}

fn step_want(
    target: &ScalableTarget,
    policy: &ScalingPolicy,
    event: &AlarmEvent,
    current: i64,
) -> Result<Want, String> {
    let conf = &policy.configuration;
    let (Some(value), Some(threshold)) = (event.value, event.threshold) else {
        return Ok(Want::Nothing);
    };
    let Some(adjustment) = step_adjustment(conf, value - threshold) else {
        return Err(format!(
            "No step adjustment found for metric value [{value:?}] and breach threshold {threshold:?}"
        ));
    };
    let cooldown = conf.i64("Cooldown").map(|c| c as f64).unwrap_or(0.0);
    let in_cooldown = |l: Option<&LastScaling>| l.is_some_and(|l| event.now < l.at + cooldown);
    let out = adjust(conf, current, adjustment) > current
        || (conf.str("AdjustmentType") == Some("ExactCapacity") && adjustment > current);
    if out {
        // The capacity the last scale-out added (within its cooldown) counts as already there.
        let last = target.last_out.get(&policy.name);
        let base = if in_cooldown(last) {
            last.map(|l| l.from).unwrap_or(current)
        } else {
            current
        };
        let wanted = adjust(conf, base, adjustment);
        return Ok(if wanted > current {
            Want::Capacity(wanted)
        } else {
            Want::Nothing
        });
    }
    if in_cooldown(target.last_in.get(&policy.name)) {
        return Ok(Want::Nothing);
    }
    Ok(Want::Capacity(adjust(conf, current, adjustment)))
}
