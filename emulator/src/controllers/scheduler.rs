//! The service scheduler: keeps each service's desired count of tasks running, rolls new
//! deployments out within minimumHealthyPercent and maximumPercent, replaces tasks that fail their
//! container health checks, trips the deployment circuit breaker, and writes the service events
//! ECS writes. Like ECS, it only starts and stops tasks through the same paths RunTask, StartTask
//! and StopTask use; the task agent does the rest.

use super::lb_targets::{self, TaskLbHealth};
use crate::clock::Clock;
use crate::services::ecs::services::deployment_id;
use crate::services::ecs::tasks::{mark_stopping, run_task, start_task};
use crate::services::ecs::{Deployment, Ecs, EcsService, Task};
use crate::services::elbv2::Elbv2;
use crate::services::Ctx;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

pub struct Scheduler {
    ecs: Arc<Ecs>,
    clock: Clock,
}

/// Tasks of a service started at most per tick (ECS starts them in batches too).
const MAX_STARTS_PER_TICK: i64 = 10;

impl Scheduler {
    pub fn new(ecs: Arc<Ecs>, clock: Clock) -> Arc<Scheduler> {
        Arc::new(Scheduler { ecs, clock })
    }

    pub async fn run(self: Arc<Self>) {
        loop {
            let services: Vec<(String, EcsService)> = self.ecs.services.read(|rows| {
                rows.iter()
                    .filter(|(_, s)| s.status != "INACTIVE")
                    .map(|(k, s)| (k.clone(), s.clone()))
                    .collect()
            });
            for (key, svc) in services {
                self.reconcile(&key, svc);
            }
            tokio::select! {
                _ = self.ecs.scheduler_wakeup.notified() => {
                    // Let a burst of changes settle into one pass.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }

    fn ctx(&self, svc: &EcsService) -> Ctx {
        let mut parts = svc.arn.split(':');
        let region = parts.nth(3).unwrap_or_default().to_string();
        let account = parts.next().unwrap_or_default().to_string();
        Ctx {
            account,
            region,
            request_id: "ecs-service-scheduler".into(),
            now: self.clock.now(),
            access_key: None,
        }
    }

    fn reconcile(&self, key: &str, svc: EcsService) {
        let ctx = self.ctx(&svc);
        let group = format!("service:{}", svc.name);
        let tasks: Vec<Task> = self
            .ecs
            .tasks
            .scan(&format!("{}{}/", ctx.scope(), svc.cluster))
            .into_iter()
            .map(|(_, t)| t)
            .filter(|t| t.group == group)
            .collect();
        let mut actions = Actions::default();
        let lb = if svc.load_balancers.is_empty() {
            None
        } else {
            self.ecs.elbv2.get().cloned()
        };
        let mut tasks = tasks;
        if let Some(elbv2) = &lb {
            self.register_targets(&ctx, &svc, &mut tasks, elbv2, &mut actions);
        }
        let lb_health = lb
            .as_ref()
            .map(|e| lb_targets::service_health(e, &svc))
            .unwrap_or_default();
        let grace = svc.health_check_grace_period.unwrap_or(0) as f64;
        for t in &tasks {
            let healthy = match lb_targets::task_health(&lb_health, t) {
                Some(TaskLbHealth::Unhealthy { group, reason }) => {
                    // ELB results are ignored for healthCheckGracePeriodSeconds after RUNNING.
                    if t.desired_status == "RUNNING"
                        && t.started_at.is_some_and(|s| ctx.now - s >= grace)
                    {
                        actions.stop.push((
                            t.arn.clone(),
                            "ServiceSchedulerInitiated",
                            format!("Task failed ELB health checks in (target-group {group})"),
                        ));
                        let port = t
                            .lb_targets
                            .iter()
                            .find(|x| {
                                x.get("targetGroupArn").and_then(Value::as_str)
                                    == Some(group.as_str())
                            })
                            .and_then(|x| x.get("port").cloned())
                            .unwrap_or(Value::Null);
                        actions.events.push(format!(
                            "(service {}) (task {}) (port {port}) is unhealthy in (target-group {group}) due to (reason {reason}).",
                            svc.name, t.id
                        ));
                    }
                    false
                }
                Some(TaskLbHealth::Pending) => false,
                Some(TaskLbHealth::Healthy) => true,
                None => lb.is_none(),
            };
            if healthy
                && t.is_running()
                && t.desired_status == "RUNNING"
                && t.computed_health() != "UNHEALTHY"
            {
                actions.healthy.insert(t.arn.clone());
            }
        }
        if svc.status == "DRAINING" {
            let wanted: Vec<&Task> = tasks
                .iter()
                .filter(|t| t.desired_status == "RUNNING")
                .collect();
            for t in wanted {
                actions.stop.push((
                    t.arn.clone(),
                    "ServiceSchedulerInitiated",
                    "Service deleted".to_string(),
                ));
            }
            if tasks.iter().all(Task::is_stopped) {
                actions.inactive = true;
            }
        } else if svc.scheduling_strategy == "DAEMON" {
            self.plan_daemon(&ctx, &svc, &tasks, &mut actions);
        } else {
            self.plan_replica(&svc, &tasks, &mut actions);
        }
        self.apply(&ctx, key, &svc, &tasks, actions);
    }

    fn plan_replica(&self, svc: &EcsService, tasks: &[Task], actions: &mut Actions) {
        let Some(primary) = svc.primary() else { return };
        let desired = svc.desired_count;
        let live: Vec<&Task> = tasks.iter().filter(|t| !t.is_stopped()).collect();
        let wanted: Vec<&Task> = live
            .iter()
            .copied()
            .filter(|t| t.desired_status == "RUNNING")
            .collect();
        let primary_wanted: Vec<&Task> = wanted
            .iter()
            .copied()
            .filter(|t| t.started_by.as_deref() == Some(primary.id.as_str()))
            .collect();
        let others: Vec<&Task> = wanted
            .iter()
            .copied()
            .filter(|t| t.started_by.as_deref() != Some(&primary.id))
            .collect();
        let max_total = desired * svc.maximum_percent / 100;
        let min_healthy = (desired * svc.minimum_healthy_percent + 99) / 100;

        // Tasks whose container health checks failed are replaced.
        for t in &wanted {
            if t.is_running() && t.computed_health() == "UNHEALTHY" {
                actions.stop.push((
                    t.arn.clone(),
                    "ServiceSchedulerInitiated",
                    "Task failed container health checks".into(),
                ));
            }
        }
        let healthy = wanted
            .iter()
            .filter(|t| actions.healthy.contains(&t.arn))
            .count() as i64;

        // Start the primary's missing tasks, within maximumPercent (a failed rollout stops starting).
        if primary.rollout_state != "FAILED" {
            let need = desired - primary_wanted.len() as i64;
            let room = if desired == 0 {
                0
            } else {
                max_total.max(desired) - live.len() as i64
            };
            let n = need.min(room).min(MAX_STARTS_PER_TICK);
            if n > 0 {
                actions.start = n;
            } else if need > 0 && room <= 0 && !others.is_empty() && healthy <= min_healthy {
                actions.events.push(format!(
                    "(service {}) was unable to stop or start tasks during a deployment because of the service deployment configuration. Update the minimumHealthyPercent or maximumPercent value and try again.",
                    svc.name
                ));
            }
        }
        // Scale in: the primary has more than desired (pending ones first).
        let mut extra = primary_wanted.len() as i64 - desired;
        let mut by_pending: Vec<&Task> = primary_wanted.clone();
        by_pending.sort_by_key(|t| t.is_running());
        for t in by_pending {
            if extra <= 0 {
                break;
            }
            actions.stop.push((
                t.arn.clone(),
                "ServiceSchedulerInitiated",
                scaling_reason(primary),
            ));
            extra -= 1;
        }
        // Old deployments drain while minimumHealthyPercent allows.
        let mut can_stop = if desired == 0 {
            i64::MAX
        } else {
            healthy - min_healthy
        };
        let mut old: Vec<&Task> = others.clone();
        old.sort_by_key(|t| t.is_running());
        for t in old {
            if can_stop <= 0 && t.is_running() {
                break;
            }
            let dep = svc
                .deployments
                .iter()
                .find(|d| Some(d.id.as_str()) == t.started_by.as_deref());
            let reason = dep
                .map(scaling_reason)
                .unwrap_or_else(|| scaling_reason(primary));
            actions
                .stop
                .push((t.arn.clone(), "ServiceSchedulerInitiated", reason));
            if t.is_running() {
                can_stop -= 1;
            }
        }
    }

    fn plan_daemon(&self, ctx: &Ctx, svc: &EcsService, tasks: &[Task], actions: &mut Actions) {
        let instances = self.ecs.cluster_instances(&ctx.scope(), &svc.cluster);
        for i in instances {
            let on: Vec<&Task> = tasks
                .iter()
                .filter(|t| {
                    t.desired_status == "RUNNING"
                        && t.container_instance_arn.as_deref() == Some(&i.arn)
                })
                .collect();
            match i.status.as_str() {
                "ACTIVE" if on.is_empty() && i.agent_connected => {
                    actions.daemon_starts.push(i.arn.clone())
                }
                "DRAINING" | "INACTIVE" => {
                    for t in on {
                        actions.stop.push((
                            t.arn.clone(),
                            "ServiceSchedulerInitiated",
                            "Container instance is draining".into(),
                        ));
                    }
                }
                _ => {}
            }
        }
    }

    fn apply(&self, ctx: &Ctx, key: &str, svc: &EcsService, tasks: &[Task], actions: Actions) {
        let mut events: Vec<String> = actions.events.clone();
        let Some(primary) = svc.primary().cloned() else {
            return;
        };
        // Stops.
        let mut stopped = Vec::new();
        for (arn, code, reason) in &actions.stop {
            if stopped.contains(arn) {
                continue;
            }
            let id = arn.rsplit('/').next().unwrap_or_default();
            let k = format!("{}{}/{}", ctx.scope(), svc.cluster, id);
            let done = self.ecs.tasks.transact(|t| {
                Ok(match t.get_mut(&k) {
                    Some(task) if task.desired_status == "RUNNING" => {
                        mark_stopping(task, ctx.now, code, reason);
                        true
                    }
                    _ => false,
                })
            });
            if done.unwrap_or(false) {
                stopped.push(arn.clone());
            }
        }
        let deregistered = tasks
            .iter()
            .filter(|t| stopped.contains(&t.arn) && !t.lb_targets.is_empty())
            .count();
        if deregistered > 0 {
            for lb in &svc.load_balancers {
                let group = lb
                    .get("targetGroupArn")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                events.push(format!(
                    "(service {}) deregistered {deregistered} targets in (target-group {group})",
                    svc.name
                ));
            }
        }
        if !stopped.is_empty() {
            self.ecs.wake_agent();
            let list: String = stopped
                .iter()
                .map(|a| format!("(task {})", a.rsplit('/').next().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(" ");
            events.push(format!(
                "(service {}) has stopped {} running tasks: {list}.",
                svc.name,
                stopped.len()
            ));
        }
        // Starts.
        let mut started: Vec<String> = Vec::new();
        let mut placement_failure = None;
        if actions.start > 0 {
            let input = self.run_input(svc, &primary, actions.start);
            match run_task(&self.ecs, ctx, input) {
                Ok(out) => {
                    started.extend(arns(&out["tasks"]));
                    if started.is_empty() {
                        placement_failure = Some(unplaceable(svc, &out["failures"]));
                    }
                }
                Err(e) => {
                    placement_failure = Some(format!(
                        "(service {}) was unable to place a task. Reason: {}.",
                        svc.name, e.message
                    ))
                }
            }
        }
        for instance in &actions.daemon_starts {
            let mut input = self.run_input(svc, &primary, 1);
            input["containerInstances"] = json!([instance]);
            if let Ok(out) = start_task(&self.ecs, ctx, input) {
                started.extend(arns(&out["tasks"]));
            }
        }
        if !started.is_empty() {
            let list: String = started
                .iter()
                .map(|a| format!("(task {})", a.rsplit('/').next().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(" ");
            events.push(format!(
                "(service {}) has started {} tasks: {list}.",
                svc.name,
                started.len()
            ));
        }
        if let Some(e) = placement_failure {
            events.push(e);
        }

        // Deployment bookkeeping from the tasks as they are now.
        let now = ctx.now;
        let failed_of = |d: &Deployment| {
            tasks
                .iter()
                .filter(|t| t.started_by.as_deref() == Some(&d.id) && t.is_stopped())
                .filter(|t| {
                    t.started_at.is_none()
                        || t.stopped_reason.as_deref()
                            == Some("Task failed container health checks")
                })
                .count() as i64
        };
        let live_of = |d: &str| {
            tasks
                .iter()
                .filter(|t| t.started_by.as_deref() == Some(d) && !t.is_stopped())
                .count()
        };
        let running_of = |d: &str| {
            tasks
                .iter()
                .filter(|t| t.started_by.as_deref() == Some(d) && actions.healthy.contains(&t.arn))
                .count() as i64
        };
        let _ = self.ecs.services.record(|t| {
            let Some(s) = t.get_mut(key) else {
                return Ok(());
            };
            if actions.inactive {
                s.status = "INACTIVE".into();
                s.deployments
                    .iter_mut()
                    .for_each(|d| d.status = "INACTIVE".into());
            }
            let threshold = ((s.desired_count + 1) / 2).clamp(3, 200);
            let breaker = s
                .circuit_breaker
                .as_ref()
                .is_some_and(|c| c.get("enable").and_then(Value::as_bool) == Some(true));
            let rollback = s
                .circuit_breaker
                .as_ref()
                .is_some_and(|c| c.get("rollback").and_then(Value::as_bool) == Some(true));
            let mut rollback_to: Option<Deployment> = None;
            for d in s.deployments.iter_mut() {
                let failed = failed_of(d);
                if failed != d.failed_tasks {
                    d.failed_tasks = failed;
                    d.updated_at = now;
                }
                if d.status == "PRIMARY"
                    && d.rollout_state == "IN_PROGRESS"
                    && breaker
                    && failed >= threshold
                {
                    d.rollout_state = "FAILED".into();
                    d.rollout_state_reason =
                        "ECS deployment circuit breaker: tasks failed to start.".into();
                    d.updated_at = now;
                    events.push(format!(
                        "(service {}) (deployment {}) deployment failed: tasks failed to start.",
                        s.name, d.id
                    ));
                    if rollback {
                        rollback_to = Some(d.clone());
                    }
                }
            }
            // Rollback: a new PRIMARY from the last completed deployment.
            if let Some(failed) = rollback_to {
                let previous = s
                    .deployments
                    .iter()
                    .find(|d| d.status == "ACTIVE" && d.rollout_state == "COMPLETED")
                    .cloned();
                if let Some(prev) = previous {
                    for d in s.deployments.iter_mut().filter(|d| d.id == failed.id) {
                        d.status = "ACTIVE".into();
                    }
                    let mut dep = prev.clone();
                    dep.id = deployment_id();
                    dep.status = "PRIMARY".into();
                    dep.rollout_state = "IN_PROGRESS".into();
                    dep.rollout_state_reason = format!("ECS deployment {} in progress.", dep.id);
                    dep.failed_tasks = 0;
                    dep.desired_count = s.desired_count;
                    dep.created_at = now;
                    dep.updated_at = now;
                    s.task_definition = dep.task_definition.clone();
                    events.push(format!(
                        "(service {}) rolling back to deployment {}.",
                        s.name, prev.id
                    ));
                    s.deployments.insert(0, dep);
                }
            }
            // Old deployments without tasks are done.
            s.deployments
                .retain(|d| d.status == "PRIMARY" || live_of(&d.id) > 0);
            let only_primary = s.deployments.len() == 1;
            if let Some(p) = s.deployments.iter_mut().find(|d| d.status == "PRIMARY") {
                let steady = only_primary
                    && running_of(&p.id) == s.desired_count
                    && live_of(&p.id) as i64 == s.desired_count;
                if steady && p.rollout_state == "IN_PROGRESS" {
                    p.rollout_state = "COMPLETED".into();
                    p.rollout_state_reason = format!("ECS deployment {} completed.", p.id);
                    p.updated_at = now;
                    events.push(format!(
                        "(service {}) (deployment {}) deployment completed.",
                        s.name, p.id
                    ));
                    events.push(format!("(service {}) has reached a steady state.", s.name));
                }
            }
            for e in events.drain(..) {
                // The same message within a minute is said once (ECS throttles repeats too).
                let repeat = s.events.first().is_some_and(|last| {
                    last.get("message").and_then(Value::as_str) == Some(e.as_str())
                        && last
                            .get("createdAt")
                            .and_then(Value::as_f64)
                            .is_some_and(|t| now - t < 60.0)
                });
                if !repeat {
                    s.event(now, e);
                }
            }
            Ok(())
        });
    }

    /// Registers the targets of running tasks that have none yet (ECS registers after RUNNING).
    fn register_targets(
        &self,
        ctx: &Ctx,
        svc: &EcsService,
        tasks: &mut [Task],
        elbv2: &Elbv2,
        actions: &mut Actions,
    ) {
        let mut count = 0;
        for t in tasks
            .iter_mut()
            .filter(|t| t.is_running() && t.desired_status == "RUNNING" && t.lb_targets.is_empty())
        {
            let registered = lb_targets::register(elbv2, svc, t);
            if registered.is_empty() {
                continue;
            }
            let k = format!("{}{}/{}", ctx.scope(), svc.cluster, t.id);
            let saved = registered.clone();
            let _ = self.ecs.tasks.record(|tx| {
                if let Some(task) = tx.get_mut(&k) {
                    task.lb_targets = saved;
                }
                Ok(())
            });
            t.lb_targets = registered;
            count += 1;
        }
        if count > 0 {
            for lb in &svc.load_balancers {
                let group = lb
                    .get("targetGroupArn")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                actions.events.push(format!(
                    "(service {}) registered {count} targets in (target-group {group})",
                    svc.name
                ));
            }
        }
    }

    /// A RunTask input for `n` tasks of a deployment.
    fn run_input(&self, svc: &EcsService, dep: &Deployment, n: i64) -> Value {
        let mut input = json!({
            "cluster": svc.cluster,
            "taskDefinition": dep.task_definition,
            "count": n,
            "startedBy": dep.id,
            "group": format!("service:{}", svc.name),
            "enableExecuteCommand": svc.enable_execute_command,
            "placementConstraints": svc.placement_constraints,
            "placementStrategy": if svc.placement_strategy.is_empty() {
                json!([{"type": "spread", "field": "attribute:ecs.availability-zone"}, {"type": "spread", "field": "instanceId"}])
            } else {
                json!(svc.placement_strategy)
            },
        });
        if let Some(lt) = &svc.launch_type {
            input["launchType"] = json!(lt);
        } else if !svc.capacity_provider_strategy.is_empty() {
            input["capacityProviderStrategy"] = json!(svc.capacity_provider_strategy);
        }
        if let Some(n) = dep
            .network_configuration
            .as_ref()
            .or(svc.network_configuration.as_ref())
        {
            input["networkConfiguration"] = n.clone();
        }
        match svc.propagate_tags.as_deref() {
            Some("SERVICE") => input["tags"] = json!(svc.tags),
            Some("TASK_DEFINITION") => input["propagateTags"] = json!("TASK_DEFINITION"),
            _ => {}
        }
        if let Some(p) = &svc.platform_version {
            input["platformVersion"] = json!(p);
        }
        input
    }
}

#[derive(Default)]
struct Actions {
    /// Running tasks that count as healthy (container and load balancer health).
    healthy: std::collections::HashSet<String>,
    events: Vec<String>,
    start: i64,
    daemon_starts: Vec<String>,
    stop: Vec<(String, &'static str, String)>,
    inactive: bool,
}

fn scaling_reason(d: &Deployment) -> String {
    format!("Scaling activity initiated by (deployment {})", d.id)
}

fn arns(tasks: &Value) -> Vec<String> {
    tasks
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t.get("taskArn").and_then(Value::as_str).map(str::to_string))
        .collect()
}

/// The event ECS writes when no instance can take a task, naming the closest instance's shortfall.
fn unplaceable(svc: &EcsService, failures: &Value) -> String {
    let first = failures
        .as_array()
        .and_then(|f| f.first())
        .cloned()
        .unwrap_or(Value::Null);
    let instance = first
        .get("arn")
        .and_then(Value::as_str)
        .and_then(|a| a.rsplit('/').next())
        .unwrap_or_default()
        .to_string();
    let what = match first
        .get("reason")
        .and_then(Value::as_str)
        .unwrap_or_default()
    {
        "RESOURCE:MEMORY" => "has insufficient memory available".to_string(),
        "RESOURCE:CPU" => "has insufficient CPU units available".to_string(),
        "RESOURCE:PORTS" | "RESOURCE:PORTS_UDP" => {
            "is already using a port required by your task".to_string()
        }
        other => format!("encountered error \"{other}\""),
    };
    format!(
        "(service {}) was unable to place a task because no container instance met all of its requirements. The closest matching (container-instance {instance}) {what}. For more information, see the Troubleshooting section of the Amazon ECS Developer Guide.",
        svc.name
    )
}
