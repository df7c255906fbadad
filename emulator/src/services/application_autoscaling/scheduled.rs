//! Scheduled actions: PutScheduledAction, DescribeScheduledActions, DeleteScheduledAction, and
//! the loop that runs them on the emulator clock. Schedules are `at(yyyy-mm-ddThh:mm:ss)`,
//! `rate(N minute|minutes|hour|hours|day|days)` and `cron(minutes hours day-of-month month
//! day-of-week year)` (AWS's six fields: day-of-week 1–7 is SUN–SAT), read in `Timezone` (IANA,
//! default UTC); cron expressions are evaluated by the `croner` crate.

use super::targets::{check_dimension_has_resource, page_of};
use super::{no_target, target_key, validation, AppAutoScaling, ScheduledAction};
use crate::clock::Clock;
use crate::protocol::codes;
use crate::protocol::AwsError;
use crate::services::input::Input;
use crate::services::{Ctx, HandlerResult};
use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

/// A parsed schedule.
#[derive(Debug)]
pub(crate) enum Schedule {
    At(f64),
    Rate(f64),
    Cron {
        cron: Box<croner::Cron>,
        years: String,
    },
}

fn bad_schedule(s: &str) -> AwsError {
    validation(format!(
        "Schedule expression {s} is invalid: expected at(yyyy-mm-ddThh:mm:ss), rate(value unit) or cron(fields)"
    ))
}

pub(crate) fn timezone(name: Option<&str>) -> Result<Tz, AwsError> {
    match name {
        None => Ok(Tz::UTC),
        Some(n) => n
            .parse::<Tz>()
            .map_err(|_| validation(format!("Timezone {n} is not a valid IANA time zone name"))),
    }
}

/// AWS day-of-week numbers (1 = SUN … 7 = SAT) → cron's (0 = SUN … 6 = SAT); "#n" and names
/// are kept.
fn convert_dow(field: &str) -> String {
    let mut out = String::new();
    let chars: Vec<char> = field.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_ascii_digit() && (i == 0 || chars[i - 1] != '#') {
            let start = i;
            while i < chars.len() && chars[i].is_ascii_digit() {
                i += 1;
            }
            let n: i64 = chars[start..i]
                .iter()
                .collect::<String>()
                .parse()
                .unwrap_or(1);
            out.push_str(&(n - 1).to_string());
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out
}

/// Does `year` match an AWS cron year field (`*`, numbers, ranges, lists)?
fn year_matches(field: &str, year: i32) -> bool {
    field.split(',').any(|part| {
        if part == "*" || part == "?" {
            return true;
        }
        match part.split_once('-') {
            Some((a, b)) => match (a.parse::<i32>(), b.parse::<i32>()) {
                (Ok(a), Ok(b)) => (a..=b).contains(&year),
                _ => false,
            },
            None => part.parse::<i32>() == Ok(year),
        }
    })
}

impl Schedule {
    pub(crate) fn parse(s: &str, tz: Tz) -> Result<Schedule, AwsError> {
        let inner = |prefix: &str| {
            s.strip_prefix(prefix)
                .and_then(|r| r.strip_suffix(')'))
                .map(str::trim)
        };
        if let Some(at) = inner("at(") {
            let naive = NaiveDateTime::parse_from_str(at, "%Y-%m-%dT%H:%M:%S")
                .map_err(|_| bad_schedule(s))?;
            let t = tz
                .from_local_datetime(&naive)
                .earliest()
                .ok_or_else(|| bad_schedule(s))?;
            return Ok(Schedule::At(t.timestamp() as f64));
        }
        if let Some(rate) = inner("rate(") {
            let (n, unit) = rate.split_once(' ').ok_or_else(|| bad_schedule(s))?;
            let n: u64 = n.trim().parse().map_err(|_| bad_schedule(s))?;
            let unit_secs = match unit.trim() {
                "minute" | "minutes" => 60,
                "hour" | "hours" => 3_600,
                "day" | "days" => 86_400,
                _ => return Err(bad_schedule(s)),
            };
            if n == 0 {
                return Err(bad_schedule(s));
            }
            return Ok(Schedule::Rate((n * unit_secs) as f64));
        }
        if let Some(expr) = inner("cron(") {
            let fields: Vec<&str> = expr.split_whitespace().collect();
            if fields.len() != 6 {
                return Err(bad_schedule(s));
            }
            if fields[2] != "?" && fields[4] != "?" {
                return Err(validation(format!(
                    "Schedule expression {s} is invalid: one of day-of-month and day-of-week must be ?"
                )));
            }
            let star = |f: &str| {
                if f == "?" {
                    "*".to_string()
                } else {
                    f.to_string()
                }
            };
            let pattern = format!(
                "0 {} {} {} {} {}",
                fields[0],
                fields[1],
                star(fields[2]),
                fields[3],
                convert_dow(&star(fields[4]))
            );
            let cron = croner::Cron::new(&pattern)
                .with_seconds_required()
                .parse()
                .map_err(|_| bad_schedule(s))?;
            return Ok(Schedule::Cron {
                cron: Box::new(cron),
                years: fields[5].to_string(),
            });
        }
        Err(bad_schedule(s))
    }

    /// The first run at or after `after` (epoch seconds), in `tz`.
    pub(crate) fn next(&self, after: f64, tz: Tz, last: Option<f64>) -> Option<f64> {
        match self {
            Schedule::At(t) => (last.is_none()).then_some(*t),
            Schedule::Rate(every) => Some(match last {
                Some(l) => l + every,
                None => after + every,
            }),
            Schedule::Cron { cron, years } => {
                let mut from: DateTime<Tz> = Utc
                    .timestamp_opt(after as i64, 0)
                    .single()?
                    .with_timezone(&tz);
                for _ in 0..1000 {
                    let next = cron.find_next_occurrence(&from, true).ok()?;
                    if year_matches(years, chrono::Datelike::year(&next)) {
                        return Some(next.timestamp() as f64);
                    }
                    from = next + chrono::Duration::seconds(1);
                }
                None
            }
        }
    }
}

fn first_run(a: &ScheduledAction, now: f64) -> Result<Option<f64>, AwsError> {
    let tz = timezone(a.timezone.as_deref())?;
    let schedule = Schedule::parse(&a.schedule, tz)?;
    let from = a.start.map(|s| s.max(now)).unwrap_or(now);
    Ok(schedule
        .next(from, tz, None)
        .filter(|t| a.end.is_none_or(|e| *t <= e)))
}

pub fn put_scheduled_action(s: &AppAutoScaling, ctx: &Ctx, input: Value) -> HandlerResult {
    let name = input
        .str("ScheduledActionName")
        .unwrap_or_default()
        .to_string();
    let namespace = input
        .str("ServiceNamespace")
        .unwrap_or_default()
        .to_string();
    let resource_id = input.str("ResourceId").unwrap_or_default().to_string();
    let dim = input
        .str("ScalableDimension")
        .unwrap_or_default()
        .to_string();
    let tkey = target_key(&ctx.scope(), &namespace, &resource_id, &dim);
    if !s.targets.contains(&tkey) {
        return Err(no_target(&namespace, &resource_id, &dim));
    }
    let key = format!("{tkey}|{name}");
    let existing = s.scheduled.get(&key);
    let schedule = match (input.str("Schedule"), &existing) {
        (Some(sch), _) => sch.to_string(),
        (None, Some(e)) => e.schedule.clone(),
        (None, None) => {
            return Err(validation(
                "Schedule is required for a new scheduled action",
            ))
        }
    };
    let target_action = input.get("ScalableTargetAction");
    let min = target_action.and_then(|t| t.i64("MinCapacity"));
    let max = target_action.and_then(|t| t.i64("MaxCapacity"));
    if let (Some(a), Some(b)) = (min, max) {
        if a > b {
            return Err(validation(
                "Minimum capacity cannot be greater than maximum capacity",
            ));
        }
    }
    if min.is_some_and(|m| m < 0) || max.is_some_and(|m| m < 0) {
        return Err(validation("Capacity must be a non-negative number."));
    }
    let start = input.get("StartTime").and_then(Value::as_f64);
    let end = input.get("EndTime").and_then(Value::as_f64);
    if let (Some(a), Some(b)) = (start, end) {
        if a >= b {
            return Err(validation("EndTime must be after StartTime"));
        }
    }
    let mut action = ScheduledAction {
        arn: existing.as_ref().map(|e| e.arn.clone()).unwrap_or_else(|| {
            ctx.arn(
                "autoscaling",
                &format!(
                    "scheduledAction:{}:resource/{namespace}/{resource_id}:scheduledActionName/{name}",
                    uuid::Uuid::new_v4()
                ),
            )
        }),
        name,
        namespace,
        resource_id,
        dimension: dim,
        schedule,
        timezone: input
            .str("Timezone")
            .map(str::to_string)
            .or_else(|| existing.as_ref().and_then(|e| e.timezone.clone())),
        start: start.or_else(|| existing.as_ref().and_then(|e| e.start)),
        end: end.or_else(|| existing.as_ref().and_then(|e| e.end)),
        min: min.or_else(|| existing.as_ref().and_then(|e| e.min)),
        max: max.or_else(|| existing.as_ref().and_then(|e| e.max)),
        created: existing.as_ref().map(|e| e.created).unwrap_or(ctx.now),
        next_run: None,
    };
    if action.min.is_none() && action.max.is_none() {
        return Err(validation(
            "ScalableTargetAction must specify MinCapacity, MaxCapacity or both",
        ));
    }
    action.next_run = first_run(&action, ctx.now)?;
    s.scheduled.transact::<_, AwsError, _>(|tx| {
        tx.put(&key, action);
        Ok(())
    })?;
    Ok(json!({ "ScheduledActionARN": s.scheduled.get(&key).map(|a| a.arn) }))
}

impl ScheduledAction {
    pub fn describe(&self) -> Value {
        let mut out = json!({
            "ScheduledActionName": self.name,
            "ScheduledActionARN": self.arn,
            "ServiceNamespace": self.namespace,
            "Schedule": self.schedule,
            "ResourceId": self.resource_id,
            "ScalableDimension": self.dimension,
            "CreationTime": self.created,
        });
        if let Some(t) = &self.timezone {
            out["Timezone"] = json!(t);
        }
        if let Some(t) = self.start {
            out["StartTime"] = json!(t);
        }
        if let Some(t) = self.end {
            out["EndTime"] = json!(t);
        }
        let mut action = json!({});
        if let Some(m) = self.min {
            action["MinCapacity"] = json!(m);
        }
        if let Some(m) = self.max {
            action["MaxCapacity"] = json!(m);
        }
        out["ScalableTargetAction"] = action;
        out
    }
}

pub fn describe_scheduled_actions(s: &AppAutoScaling, ctx: &Ctx, input: Value) -> HandlerResult {
    let namespace = input.str("ServiceNamespace").unwrap_or_default();
    let names = input.string_list("ScheduledActionNames");
    let resource_id = input.str("ResourceId");
    let dim = input.str("ScalableDimension");
    check_dimension_has_resource(&input)?;
    let rows: Vec<(String, ScheduledAction)> = s
        .scheduled
        .scan(&format!("{}{namespace}|", ctx.scope()))
        .into_iter()
        .filter(|(_, a)| names.is_empty() || names.contains(&a.name))
        .filter(|(_, a)| resource_id.is_none_or(|r| a.resource_id == r))
        .filter(|(_, a)| dim.is_none_or(|d| a.dimension == d))
        .collect();
    page_of(&input, "ScheduledActions", rows, ScheduledAction::describe)
}

pub fn delete_scheduled_action(s: &AppAutoScaling, ctx: &Ctx, input: Value) -> HandlerResult {
    let name = input.str("ScheduledActionName").unwrap_or_default();
    let namespace = input.str("ServiceNamespace").unwrap_or_default();
    let resource_id = input.str("ResourceId").unwrap_or_default();
    let dim = input.str("ScalableDimension").unwrap_or_default();
    let key = format!(
        "{}|{name}",
        target_key(&ctx.scope(), namespace, resource_id, dim)
    );
    let removed = s
        .scheduled
        .transact::<_, AwsError, _>(|tx| Ok(tx.remove(&key)))?;
    if removed.is_none() {
        return Err(AwsError::new(codes::application_autoscaling::ObjectNotFoundException,
            format!("No scheduled action found for service namespace: {namespace}, resource ID: {resource_id}, scalable dimension: {dim}, scheduled action name: {name}"),
        ));
    }
    Ok(json!({}))
}

impl AppAutoScaling {
    /// Runs the scheduled actions due at `now`.
    pub(crate) fn run_due_actions(&self, now: f64) {
        let due: Vec<(String, ScheduledAction)> = self.scheduled.read(|rows| {
            rows.iter()
                .filter(|(_, a)| a.next_run.is_some_and(|t| t <= now))
                .map(|(k, a)| (k.clone(), a.clone()))
                .collect()
        });
        for (key, action) in due {
            self.run_action(&key, &action, now);
        }
    }

    fn run_action(&self, key: &str, action: &ScheduledAction, now: f64) {
        let Some(tkey) = key.rsplit_once('|').map(|(t, _)| t.to_string()) else {
            return;
        };
        let mut parts = action.arn.split(':');
        let region = parts.nth(3).unwrap_or_default().to_string();
        let account = parts.next().unwrap_or_default().to_string();
        let ctx = Ctx {
            account,
            region,
            request_id: "application-autoscaling-scheduler".into(),
            now,
            access_key: None,
        };
        // The next run first, so a failing action cannot run in a loop.
        let tz = timezone(action.timezone.as_deref()).unwrap_or(Tz::UTC);
        let next = Schedule::parse(&action.schedule, tz)
            .ok()
            .and_then(|s| s.next(now + 1.0, tz, action.next_run))
            .filter(|t| action.end.is_none_or(|e| *t <= e));
        let _ = self.scheduled.record::<_, AwsError, _>(|tx| {
            if let Some(a) = tx.get_mut(key) {
                a.next_run = next;
            }
            Ok(())
        });
        let Some(target) = self.targets.get(&tkey) else {
            return;
        };
        if target.suspended.scheduled {
            return;
        }
        let min = action.min.unwrap_or(target.min);
        let max = action.max.unwrap_or(target.max).max(min);
        let mut parts = Vec::new();
        if action.min.is_some() {
            parts.push(format!("min capacity to {min}"));
        }
        if action.max.is_some() {
            parts.push(format!("max capacity to {max}"));
        }
        let what = parts.join(" and ");
        let mut activity = self.activity(
            &ctx,
            &target,
            format!("Setting {what}"),
            format!("scheduled action name {} was triggered", action.name),
        );
        let updated = self.targets.transact::<_, AwsError, _>(|tx| {
            if let Some(t) = tx.get_mut(&tkey) {
                t.min = min;
                t.max = max;
            }
            Ok(())
        });
        activity.end = Some(now);
        match updated {
            Ok(()) => {
                activity.status = "Successful".into();
                activity.message = Some(format!("Successfully set {what}"));
            }
            Err(e) => {
                activity.status = "Failed".into();
                activity.message = Some(format!("Failed to set {what}: {}", e.message));
            }
        }
        self.save_activity(&ctx, activity);
        self.enforce_bounds(&ctx, &tkey, None, None);
    }
}

/// Runs scheduled actions and completes activities on the emulator clock.
pub async fn run_scheduler(s: Arc<AppAutoScaling>, clock: Clock) {
    let pause = clock
        .real(Duration::from_secs(2))
        .clamp(Duration::from_millis(20), Duration::from_secs(1));
    loop {
        let now = clock.now();
        s.finish_activities(now);
        s.run_due_actions(now);
        tokio::time::sleep(pause).await;
    }
}
