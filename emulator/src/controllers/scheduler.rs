//! The service scheduler: keeps each service's desired count of tasks running, rolls new
//! deployments out within minimumHealthyPercent and maximumPercent, replaces tasks that fail their
//! container health checks, trips the deployment circuit breaker, and writes the service events
//! ECS writes. Like ECS, it starts tasks through the one launch path RunTask and StartTask use
//! (`Ecs::launch`) and stops them with the marking StopTask uses; the task agent does the rest.

use super::lb_targets::{self, TaskLbHealth};
use crate::clock::Clock;
use crate::services::ecs::model::{
    DeploymentStatus, HealthStatus, PlacementStrategy, PropagateTags, RolloutState,
    SchedulingStrategy, ServiceStatus,
};
use crate::services::ecs::placement::{self, Failure};
use crate::services::ecs::services::deployment_id;
use crate::services::ecs::tasks::mark_stopping;
use crate::services::ecs::{Deployment, Ecs, EcsService, LaunchSpec, Target, Task};
use crate::services::elbv2::Elbv2;
use crate::services::Ctx;
use serde_json::Value;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

pub struct Scheduler {
    ecs: Arc<Ecs>,
    clock: Clock,
}

/// ECS's stop code for everything the scheduler stops.
const STOP_CODE: &str = "ServiceSchedulerInitiated";

/// A task to stop, and why.
#[derive(Debug, Clone, PartialEq)]
struct Stop {
    arn: String,
    reason: String,
}

/// What one pass decided for one service.
#[derive(Default)]
struct Actions {
    /// Running tasks that count as healthy (container and load balancer health).
    healthy: HashSet<String>,
    events: Vec<String>,
    /// Tasks of the PRIMARY deployment to place.
    start: usize,
    /// Container instances that need a task of a DAEMON service.
    daemon_starts: Vec<String>,
    stop: Vec<Stop>,
    /// A DRAINING service whose tasks have all stopped.
    inactive: bool,
}

impl Actions {
    fn stop(&mut self, task: &Task, reason: impl Into<String>) {
        self.stop.push(Stop {
            arn: task.arn.clone(),
            reason: reason.into(),
        });
    }
}

impl Scheduler {
    pub fn new(ecs: Arc<Ecs>, clock: Clock) -> Arc<Scheduler> {
        Arc::new(Scheduler { ecs, clock })
    }

    pub async fn run(self: Arc<Self>) {
        loop {
            self.pass();
            tokio::select! {
                _ = self.ecs.scheduler_wakeup.notified() => {
                    // Let a burst of changes settle into one pass.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }

    /// One reconciliation of every service that is not INACTIVE.
    pub fn pass(&self) {
        let services: Vec<(String, EcsService)> = self.ecs.services.read(|rows| {
            rows.iter()
                .filter(|(_, s)| s.status != ServiceStatus::Inactive)
                .map(|(k, s)| (k.clone(), s.clone()))
                .collect()
        });
        for (key, svc) in services {
            self.reconcile(&key, svc);
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
        let mut tasks = self
            .ecs
            .service_tasks(&ctx.scope(), &svc.cluster, &svc.name);
        let mut actions = Actions::default();
        let lb = if svc.load_balancers.is_empty() {
            None
        } else {
            self.ecs.elbv2.get().cloned()
        };
        if let Some(elbv2) = &lb {
            self.register_targets(&ctx, &svc, &mut tasks, elbv2, &mut actions);
        }
        super::discovery::sync(&self.ecs, &svc, &tasks, ctx.now);
        observe_health(&ctx, &svc, &tasks, lb.as_deref(), &mut actions);
        if svc.status == ServiceStatus::Draining {
            plan_draining(&tasks, &mut actions);
        } else if svc.scheduling_strategy == SchedulingStrategy::Daemon {
            let instances = self.ecs.cluster_instances(&ctx.scope(), &svc.cluster);
            plan_daemon(&instances, &tasks, &mut actions);
        } else {
            let draining: HashSet<String> = self
                .ecs
                .cluster_instances(&ctx.scope(), &svc.cluster)
                .into_iter()
                .filter(|i| i.status == "DRAINING")
                .map(|i| i.arn)
                .collect();
            plan_replica(&ctx, &svc, &tasks, &draining, &mut actions);
        }
        self.apply(&ctx, key, &svc, &tasks, actions);
    }

    fn apply(&self, ctx: &Ctx, key: &str, svc: &EcsService, tasks: &[Task], actions: Actions) {
        let Some(primary) = svc.primary().cloned() else {
            return;
        };
        let mut events = actions.events.clone();
        events.extend(self.apply_stops(ctx, svc, tasks, &actions.stop));
        events.extend(self.apply_starts(ctx, svc, &primary, &actions));
        let outcome = Outcome::of(tasks, &actions.healthy);
        let _ = self.ecs.services.record(|t| {
            if let Some(s) = t.get_mut(key) {
                if actions.inactive {
                    retire(s);
                }
                record_deployments(s, &outcome, ctx.now, &mut events);
                add_events(s, ctx.now, events);
            }
            Ok(())
        });
    }

    /// Marks tasks for stopping; returns the events to write.
    fn apply_stops(
        &self,
        ctx: &Ctx,
        svc: &EcsService,
        tasks: &[Task],
        stops: &[Stop],
    ) -> Vec<String> {
        let mut events = Vec::new();
        let mut stopped: Vec<&str> = Vec::new();
        for stop in stops {
            if stopped.contains(&stop.arn.as_str()) {
                continue;
            }
            let id = stop.arn.rsplit('/').next().unwrap_or_default();
            let k = format!("{}{}/{}", ctx.scope(), svc.cluster, id);
            let done = self.ecs.tasks.transact(|t| {
                Ok(match t.get_mut(&k) {
                    Some(task) if task.wanted() => {
                        mark_stopping(task, ctx.now, STOP_CODE, &stop.reason);
                        true
                    }
                    _ => false,
                })
            });
            if done.unwrap_or(false) {
                stopped.push(&stop.arn);
            }
        }
        let deregistered = tasks
            .iter()
            .filter(|t| stopped.contains(&t.arn.as_str()) && !t.lb_targets.is_empty())
            .count();
        if deregistered > 0 {
            for group in target_groups(svc) {
                events.push(format!(
                    "(service {}) deregistered {deregistered} targets in (target-group {group})",
                    svc.name
                ));
            }
        }
        if !stopped.is_empty() {
            self.ecs.wake_agent();
            events.push(format!(
                "(service {}) has stopped {} running tasks: {}.",
                svc.name,
                stopped.len(),
                task_list(stopped.iter().copied())
            ));
        }
        events
    }

    /// Launches the PRIMARY deployment's missing tasks and DAEMON tasks; returns the events.
    fn apply_starts(
        &self,
        ctx: &Ctx,
        svc: &EcsService,
        primary: &Deployment,
        actions: &Actions,
    ) -> Vec<String> {
        let mut events = Vec::new();
        let mut started: Vec<String> = Vec::new();
        let mut placement_failure = None;
        if actions.start > 0 {
            let spec = launch_spec(svc, primary, actions.start, placement_target(svc));
            match self.ecs.launch(ctx, &spec) {
                Ok(launched) => {
                    started.extend(launched.tasks.iter().map(|t| t.arn.clone()));
                    if started.is_empty() {
                        placement_failure = Some(unplaceable(svc, launched.failures.first()));
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
            let target = Target::Instances(vec![instance.clone()]);
            if let Ok(launched) = self.ecs.launch(ctx, &launch_spec(svc, primary, 1, target)) {
                started.extend(launched.tasks.iter().map(|t| t.arn.clone()));
            }
        }
        if !started.is_empty() {
            events.push(format!(
                "(service {}) has started {} tasks: {}.",
                svc.name,
                started.len(),
                task_list(started.iter().map(String::as_str))
            ));
        }
        events.extend(placement_failure);
        events
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
            .filter(|t| t.is_running() && t.wanted() && t.lb_targets.is_empty())
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
            for group in target_groups(svc) {
                actions.events.push(format!(
                    "(service {}) registered {count} targets in (target-group {group})",
                    svc.name
                ));
            }
        }
    }
}

fn target_groups(svc: &EcsService) -> impl Iterator<Item = &str> {
    svc.load_balancers
        .iter()
        .map(|lb| lb.target_group_arn.as_deref().unwrap_or_default())
}

/// "(task a) (task b)" from task ARNs.
fn task_list<'a>(arns: impl Iterator<Item = &'a str>) -> String {
    arns.map(|a| format!("(task {})", a.rsplit('/').next().unwrap_or_default()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Which running tasks are healthy; tasks failing their ELB health checks (after the grace
/// period) are stopped with ECS's event.
fn observe_health(
    ctx: &Ctx,
    svc: &EcsService,
    tasks: &[Task],
    lb: Option<&Elbv2>,
    actions: &mut Actions,
) {
    let lb_health = lb
        .map(|e| lb_targets::service_health(e, svc))
        .unwrap_or_default();
    let grace = svc.health_check_grace_period.unwrap_or(0) as f64;
    for t in tasks {
        let healthy = match lb_targets::task_health(&lb_health, t) {
            Some(TaskLbHealth::Unhealthy { group, reason }) => {
                // ELB results are ignored for healthCheckGracePeriodSeconds after RUNNING.
                if t.wanted() && t.started_at.is_some_and(|s| ctx.now - s >= grace) {
                    let port = t
                        .lb_targets
                        .iter()
                        .find(|x| x.target_group_arn == group)
                        .and_then(|x| x.port)
                        .map(Value::from)
                        .unwrap_or(Value::Null);
                    actions.events.push(format!(
                        "(service {}) (task {}) (port {port}) is unhealthy in (target-group {group}) due to (reason {reason}).",
                        svc.name, t.id
                    ));
                    actions.stop(
                        t,
                        format!("Task failed ELB health checks in (target-group {group})"),
                    );
                }
                false
            }
            Some(TaskLbHealth::Pending) => false,
            Some(TaskLbHealth::Healthy) => true,
            None => lb.is_none(),
        };
        if healthy && t.is_running() && t.wanted() && t.computed_health() != HealthStatus::Unhealthy
        {
            actions.healthy.insert(t.arn.clone());
        }
    }
}

/// A DRAINING service stops every task; once all are stopped it becomes INACTIVE.
fn plan_draining(tasks: &[Task], actions: &mut Actions) {
    for t in tasks.iter().filter(|t| t.wanted()) {
        actions.stop(t, "Service deleted");
    }
    if tasks.iter().all(Task::is_stopped) {
        actions.inactive = true;
    }
}

fn scaling_reason(d: &Deployment) -> String {
    format!("Scaling activity initiated by (deployment {})", d.id)
}

/// REPLICA: the primary deployment's missing tasks start within maximumPercent, extra ones
/// stop, older deployments drain within minimumHealthyPercent. Tasks on DRAINING container
/// instances are replaced the same way: their replacements start elsewhere first, then they
/// stop as minimumHealthyPercent allows.
fn plan_replica(
    ctx: &Ctx,
    svc: &EcsService,
    tasks: &[Task],
    draining: &HashSet<String>,
    actions: &mut Actions,
) {
    let Some(primary) = svc.primary() else { return };
    let desired = svc.desired_count;
    let live: Vec<&Task> = tasks.iter().filter(|t| !t.is_stopped()).collect();
    let wanted: Vec<&Task> = live.iter().copied().filter(|t| t.wanted()).collect();
    let of_primary = |t: &&Task| t.started_by.as_deref() == Some(primary.id.as_str());
    let on_draining = |t: &&Task| {
        t.container_instance_arn
            .as_ref()
            .is_some_and(|a| draining.contains(a))
    };
    let to_move: Vec<&Task> = wanted.iter().copied().filter(on_draining).collect();
    let wanted: Vec<&Task> = wanted.into_iter().filter(|t| !on_draining(t)).collect();
    let primary_wanted: Vec<&Task> = wanted.iter().copied().filter(of_primary).collect();
    let others: Vec<&Task> = wanted.iter().copied().filter(|t| !of_primary(t)).collect();
    let max_total = desired * svc.maximum_percent / 100;
    let min_healthy = (desired * svc.minimum_healthy_percent + 99) / 100;

    // Tasks whose container health checks failed are replaced, once healthCheckGracePeriodSeconds
    // have passed since they started (the grace period covers container health checks too).
    let grace = svc.health_check_grace_period.unwrap_or(0) as f64;
    for t in &wanted {
        let past_grace = t.started_at.is_some_and(|s| ctx.now - s >= grace);
        if t.is_running() && past_grace && t.computed_health() == HealthStatus::Unhealthy {
            actions.stop(t, "Task failed container health checks");
        }
    }
    let healthy = wanted
        .iter()
        .chain(to_move.iter())
        .filter(|t| actions.healthy.contains(&t.arn))
        .count() as i64;
    // Tasks on draining instances stop once enough healthy ones run elsewhere (pending ones at
    // once).
    let mut can_move = healthy - min_healthy;
    for t in &to_move {
        if t.is_running() && actions.healthy.contains(&t.arn) {
            if can_move <= 0 {
                continue;
            }
            can_move -= 1;
        }
        actions.stop(t, "Container instance is draining");
    }

    // Start the primary's missing tasks, within maximumPercent (a failed rollout stops starting).
    if primary.rollout_state != RolloutState::Failed {
        let need = desired - primary_wanted.len() as i64;
        // maximumPercent bounds the tasks in RUNNING or PENDING state that should run: a task
        // already told to stop (STOPPING, draining, waiting for stopTimeout) does not count.
        let counted = live.iter().filter(|t| t.wanted()).count() as i64;
        let room = if desired == 0 {
            0
        } else {
            max_total.max(desired) - counted
        };
        let n = need.min(room);
        if n > 0 {
            actions.start = n as usize;
        } else if need > 0 && room <= 0 && !others.is_empty() && healthy <= min_healthy {
            actions.events.push(format!(
                "(service {}) was unable to stop or start tasks during a deployment because of the service deployment configuration. Update the minimumHealthyPercent or maximumPercent value and try again.",
                svc.name
            ));
        }
    }
    // Scale in: the primary has more than desired (pending ones first).
    let mut extra = primary_wanted.len() as i64 - desired;
    let mut by_pending = primary_wanted.clone();
    by_pending.sort_by_key(|t| t.is_running());
    for t in by_pending {
        if extra <= 0 {
            break;
        }
        actions.stop(t, scaling_reason(primary));
        extra -= 1;
    }
    // Old deployments drain while minimumHealthyPercent allows.
    let mut can_stop = if desired == 0 {
        i64::MAX
    } else {
        healthy - min_healthy
    };
    let mut old = others;
    old.sort_by_key(|t| t.is_running());
    for t in old {
        if can_stop <= 0 && t.is_running() {
            break;
        }
        let dep = svc
            .deployments
            .iter()
            .find(|d| Some(d.id.as_str()) == t.started_by.as_deref());
        actions.stop(t, scaling_reason(dep.unwrap_or(primary)));
        if t.is_running() {
            can_stop -= 1;
        }
    }
}

/// DAEMON: one task per ACTIVE instance with a connected agent; tasks on draining or
/// deregistered instances stop.
fn plan_daemon(
    instances: &[crate::services::ecs::ContainerInstance],
    tasks: &[Task],
    actions: &mut Actions,
) {
    for i in instances {
        let on: Vec<&Task> = tasks
            .iter()
            .filter(|t| t.wanted() && t.container_instance_arn.as_deref() == Some(&i.arn))
            .collect();
        match i.status.as_str() {
            "ACTIVE" if on.is_empty() && i.agent_connected => {
                actions.daemon_starts.push(i.arn.clone())
            }
            "DRAINING" | "INACTIVE" => {
                for t in on {
                    actions.stop(t, "Container instance is draining");
                }
            }
            _ => {}
        }
    }
}

/// What the deployments' bookkeeping needs from the service's tasks.
struct Outcome<'a> {
    tasks: &'a [Task],
    healthy: &'a HashSet<String>,
}

impl<'a> Outcome<'a> {
    fn of(tasks: &'a [Task], healthy: &'a HashSet<String>) -> Outcome<'a> {
        Outcome { tasks, healthy }
    }

    fn of_deployment(&self, id: &'a str) -> impl Iterator<Item = &'a Task> + 'a {
        self.tasks
            .iter()
            .filter(move |t| t.started_by.as_deref() == Some(id))
    }

    /// Tasks that stopped before RUNNING or failed their container health checks.
    fn failed(&self, id: &str) -> i64 {
        self.of_deployment(id)
            .filter(|t| t.is_stopped())
            .filter(|t| {
                t.started_at.is_none()
                    || t.stopped_reason.as_deref() == Some("Task failed container health checks")
            })
            .count() as i64
    }

    fn live(&self, id: &str) -> i64 {
        self.of_deployment(id).filter(|t| !t.is_stopped()).count() as i64
    }

    fn healthy(&self, id: &str) -> i64 {
        let healthy = self.healthy;
        self.of_deployment(id)
            .filter(|t| healthy.contains(&t.arn))
            .count() as i64
    }
}

/// A DRAINING service whose tasks have stopped is INACTIVE.
fn retire(s: &mut EcsService) {
    s.status = ServiceStatus::Inactive;
    for d in s.deployments.iter_mut() {
        d.status = DeploymentStatus::Inactive;
    }
}

/// Failed-task counts, the circuit breaker, rollback, finished deployments and completion.
fn record_deployments(s: &mut EcsService, o: &Outcome<'_>, now: f64, events: &mut Vec<String>) {
    if let Some(failed) = trip_breaker(s, o, now, events) {
        if s.circuit_breaker.as_ref().is_some_and(|c| c.rollback) {
            roll_back(s, &failed, now, events);
        }
    }
    // Old deployments without tasks are done.
    s.deployments
        .retain(|d| d.status == DeploymentStatus::Primary || o.live(&d.id) > 0);
    complete_rollout(s, o, now, events);
}

/// Updates failedTasks; returns the PRIMARY deployment when the breaker trips on it.
fn trip_breaker(
    s: &mut EcsService,
    o: &Outcome<'_>,
    now: f64,
    events: &mut Vec<String>,
) -> Option<Deployment> {
    let threshold = ((s.desired_count + 1) / 2).clamp(3, 200);
    let enabled = s.circuit_breaker.as_ref().is_some_and(|c| c.enable);
    let mut tripped = None;
    for d in s.deployments.iter_mut() {
        let failed = o.failed(&d.id);
        if failed != d.failed_tasks {
            d.failed_tasks = failed;
            d.updated_at = now;
        }
        if d.status == DeploymentStatus::Primary
            && d.rollout_state == RolloutState::InProgress
            && enabled
            && failed >= threshold
        {
            d.rollout_state = RolloutState::Failed;
            d.rollout_state_reason =
                "ECS deployment circuit breaker: tasks failed to start.".into();
            d.updated_at = now;
            events.push(format!(
                "(service {}) (deployment {}) deployment failed: tasks failed to start.",
                s.name, d.id
            ));
            tripped = Some(d.clone());
        }
    }
    tripped
}

/// A new PRIMARY deployment from the last completed one; the failed one stays ACTIVE while its
/// tasks drain (ECS keeps it in deployments[]).
fn roll_back(s: &mut EcsService, failed: &Deployment, now: f64, events: &mut Vec<String>) {
    let Some(prev) = s
        .deployments
        .iter()
        .find(|d| {
            d.status == DeploymentStatus::Active && d.rollout_state == RolloutState::Completed
        })
        .cloned()
    else {
        return;
    };
    for d in s.deployments.iter_mut().filter(|d| d.id == failed.id) {
        d.status = DeploymentStatus::Active;
    }
    let mut dep = prev.clone();
    dep.id = deployment_id();
    dep.status = DeploymentStatus::Primary;
    dep.rollout_state = RolloutState::InProgress;
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

/// The PRIMARY deployment completes once it alone runs the desired count, all healthy.
fn complete_rollout(s: &mut EcsService, o: &Outcome<'_>, now: f64, events: &mut Vec<String>) {
    let only_primary = s.deployments.len() == 1;
    let desired = s.desired_count;
    let name = s.name.clone();
    let Some(p) = s
        .deployments
        .iter_mut()
        .find(|d| d.status == DeploymentStatus::Primary)
    else {
        return;
    };
    let steady = only_primary && o.healthy(&p.id) == desired && o.live(&p.id) == desired;
    if steady && p.rollout_state == RolloutState::InProgress {
        p.rollout_state = RolloutState::Completed;
        p.rollout_state_reason = format!("ECS deployment {} completed.", p.id);
        p.updated_at = now;
        events.push(format!(
            "(service {name}) (deployment {}) deployment completed.",
            p.id
        ));
        events.push(format!("(service {name}) has reached a steady state."));
    }
}

/// Writes events, newest first; the same message within a minute is said once (ECS throttles
/// repeats too).
fn add_events(s: &mut EcsService, now: f64, events: Vec<String>) {
    for e in events {
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
}

/// Where a REPLICA service's tasks go: its constraints, and its strategy (ECS's default: spread
/// by AZ, then by instance).
fn placement_target(svc: &EcsService) -> Target {
    let strategy = if svc.placement_strategy.is_empty() {
        vec![
            PlacementStrategy::new("spread", "attribute:ecs.availability-zone"),
            PlacementStrategy::new("spread", "instanceId"),
        ]
    } else {
        svc.placement_strategy.clone()
    };
    Target::Place {
        constraints: svc.placement_constraints.clone(),
        strategy,
    }
}

/// The launch of `count` tasks of a deployment.
fn launch_spec(svc: &EcsService, dep: &Deployment, count: usize, target: Target) -> LaunchSpec {
    let (launch_type, capacity_provider_strategy) = match &svc.launch_type {
        Some(lt) => (Some(lt.clone()), Vec::new()),
        None => (None, svc.capacity_provider_strategy.clone()),
    };
    LaunchSpec {
        cluster: Some(svc.cluster.clone()),
        task_definition: dep.task_definition.clone(),
        count,
        target,
        started_by: Some(dep.id.clone()),
        group: Some(format!("service:{}", svc.name)),
        launch_type,
        capacity_provider_strategy,
        network_configuration: dep
            .network_configuration
            .clone()
            .or_else(|| svc.network_configuration.clone()),
        tags: if svc.propagate_tags == Some(PropagateTags::Service) {
            svc.tags.clone()
        } else {
            Vec::new()
        },
        propagate_tags: svc
            .propagate_tags
            .filter(|p| *p == PropagateTags::TaskDefinition),
        enable_execute_command: svc.enable_execute_command,
        platform_version: svc.platform_version.clone(),
        ..Default::default()
    }
}

/// The event ECS writes when no instance can take a task, naming the closest instance's shortfall.
fn unplaceable(svc: &EcsService, first: Option<&Failure>) -> String {
    let instance = first
        .and_then(|f| f.arn.rsplit('/').next())
        .unwrap_or_default();
    let what = match first.map(|f| f.reason.as_str()).unwrap_or_default() {
        placement::REASON_MEMORY => "has insufficient memory available".to_string(),
        placement::REASON_CPU => "has insufficient CPU units available".to_string(),
        placement::REASON_PORTS | placement::REASON_PORTS_UDP => {
            "is already using a port required by your task".to_string()
        }
        other => format!("encountered error \"{other}\""),
    };
    format!(
        "(service {}) was unable to place a task because no container instance met all of its requirements. The closest matching (container-instance {instance}) {what}. For more information, see the Troubleshooting section of the Amazon ECS Developer Guide.",
        svc.name
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::ecs::model::{DeploymentStatus, DesiredStatus, TaskStatus};

    const NEW: &str = "ecs-svc/new";
    const OLD: &str = "ecs-svc/old";

    fn service(desired: i64, min: i64, max: i64) -> EcsService {
        let deployment = |id: &str, status| Deployment {
            id: id.into(),
            status,
            ..Default::default()
        };
        EcsService {
            name: "web".into(),
            desired_count: desired,
            minimum_healthy_percent: min,
            maximum_percent: max,
            deployments: vec![
                deployment(NEW, DeploymentStatus::Primary),
                deployment(OLD, DeploymentStatus::Active),
            ],
            ..Default::default()
        }
    }

    fn task(id: &str, deployment: &str, last: TaskStatus, desired: DesiredStatus) -> Task {
        Task {
            arn: format!("arn:aws:ecs:us-east-1:000000000000:task/c/{id}"),
            id: id.into(),
            started_by: Some(deployment.into()),
            last_status: last,
            desired_status: desired,
            started_at: Some(0.0),
            ..Default::default()
        }
    }

    /// One pass over `tasks` (every RUNNING task that should run counts as healthy).
    fn plan(svc: &EcsService, tasks: &[Task]) -> Actions {
        let ctx = Ctx {
            account: "000000000000".into(),
            region: "us-east-1".into(),
            request_id: "test".into(),
            now: 1000.0,
            access_key: None,
        };
        let mut actions = Actions::default();
        for t in tasks.iter().filter(|t| t.is_running() && t.wanted()) {
            actions.healthy.insert(t.arn.clone());
        }
        plan_replica(&ctx, svc, tasks, &HashSet::new(), &mut actions);
        actions
    }

    fn old_running(n: i64) -> Vec<Task> {
        (0..n)
            .map(|i| {
                task(
                    &format!("old{i}"),
                    OLD,
                    TaskStatus::Running,
                    DesiredStatus::Running,
                )
            })
            .collect()
    }

    fn unable(a: &Actions) -> bool {
        a.events
            .iter()
            .any(|e| e.contains("was unable to stop or start tasks"))
    }

    /// (tasks started, tasks stopped, whether the "unable to stop or start" event was written).
    type Pass = (usize, usize, bool);

    /// A new deployment replacing `desired` healthy old tasks: how many new tasks start and how
    /// many old ones stop in the first pass, for ECS's common min/max pairs.
    #[test]
    fn deployment_arithmetic_for_common_min_max_pairs() {
        // (min, max) → for desired 1..=4: (starts, old stops, "unable" event)
        let cases: [((i64, i64), [Pass; 4]); 4] = [
            (
                (0, 100),
                [(0, 1, false), (0, 2, false), (0, 3, false), (0, 4, false)],
            ),
            // minimumHealthyPercent rounds up: 50 % of 1 is 1, so the one old task stays.
            (
                (50, 200),
                [(1, 0, false), (2, 1, false), (3, 1, false), (4, 2, false)],
            ),
            (
                (100, 200),
                [(1, 0, false), (2, 0, false), (3, 0, false), (4, 0, false)],
            ),
            (
                (100, 100),
                [(0, 0, true), (0, 0, true), (0, 0, true), (0, 0, true)],
            ),
        ];
        for ((min, max), by_desired) in cases {
            for (i, want) in by_desired.iter().enumerate() {
                let desired = i as i64 + 1;
                let a = plan(&service(desired, min, max), &old_running(desired));
                let got = (a.start, a.stop.len(), unable(&a));
                assert_eq!(got, *want, "desired {desired}, min {min}, max {max}");
            }
        }
    }

    /// ecs-deploy's case: right after a scale-in, the task being stopped (desired STOPPED, still
    /// RUNNING until its stopTimeout) does not count toward maximumPercent.
    #[test]
    fn a_stopping_task_does_not_count_toward_maximum_percent() {
        let svc = service(1, 100, 200);
        let mut tasks = old_running(1);
        tasks.push(task(
            "going",
            OLD,
            TaskStatus::Running,
            DesiredStatus::Stopped,
        ));
        let a = plan(&svc, &tasks);
        assert_eq!(a.start, 1, "room for the new task: {:?}", a.events);
        assert!(!unable(&a), "{:?}", a.events);
    }

    /// Scale-in of the primary: extra tasks stop, pending ones first, and nothing starts.
    #[test]
    fn scale_in_stops_the_extra_tasks_pending_first() {
        let svc = service(2, 100, 200);
        let tasks = vec![
            task("a", NEW, TaskStatus::Running, DesiredStatus::Running),
            task("b", NEW, TaskStatus::Running, DesiredStatus::Running),
            task("c", NEW, TaskStatus::Pending, DesiredStatus::Running),
        ];
        let a = plan(&svc, &tasks);
        assert_eq!(a.start, 0);
        let stopped: Vec<&str> = a
            .stop
            .iter()
            .map(|s| s.arn.rsplit('/').next().unwrap_or_default())
            .collect();
        assert_eq!(stopped, vec!["c"]);
    }
}
