//! The service scheduler: keeps each service's desired count of tasks running, rolls new
//! deployments out within minimumHealthyPercent and maximumPercent, replaces tasks that fail their
//! container health checks, trips the deployment circuit breaker, and writes the service events
//! ECS writes. Like ECS, it starts tasks through the one launch path RunTask and StartTask use
//! (`Ecs::launch`) and stops them with the marking StopTask uses; the task agent does the rest.

use super::lb_targets::{self, TaskLbHealth};
use crate::clock::Clock;
use crate::services::ecs::instances::group_key;
use crate::services::ecs::model::{
    DeploymentStatus, HealthStatus, PlacementStrategy, PropagateTags, RolloutState,
    SchedulingStrategy, ServiceStatus,
};
use crate::services::ecs::model::{StabilityStatus, TaskSetStatus};
use crate::services::ecs::placement::{self, Failure};
use crate::services::ecs::services::deployment_id;
use crate::services::ecs::task_sets::TaskSet;
use crate::services::ecs::tasks::mark_stopping;
use crate::services::ecs::{Deployment, Ecs, EcsService, LaunchSpec, Target, Task};
use crate::services::elbv2::Elbv2;
use crate::services::Ctx;
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

pub struct Scheduler {
    ecs: Arc<Ecs>,
    clock: Clock,
    /// What the last pass started from and which services it found at rest.
    last: parking_lot::Mutex<LastPass>,
}

/// The write generations of everything a pass reads that can change a resting service's plan:
/// its row, its tasks, the container instances, and the load balancers' view of target health.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Generations {
    services: u64,
    tasks: u64,
    instances: u64,
    target_health: u64,
}

#[derive(Default)]
struct LastPass {
    /// Read at the start of the last pass.
    generations: Option<Generations>,
    /// Services (by key) that the last pass found at rest (see `at_rest`).
    at_rest: HashMap<String, Resting>,
}

/// What a service at rest reads, so that a write to it (and only to it) wakes the service.
struct Resting {
    /// The service's tasks' index key (`instances::group_key`).
    tasks: String,
    /// `<scope><cluster>`: any of the cluster's container instances.
    cluster: String,
    target_groups: Vec<String>,
}

/// What was written since some generations: changed service keys, task index keys, the
/// clusters of changed container instances, target groups whose health changed.
struct Changed {
    services: HashSet<String>,
    tasks: HashSet<String>,
    instance_clusters: HashSet<String>,
    target_groups: HashSet<String>,
}

impl Changed {
    /// Whether the service at `key`, at rest as `r` says, read something that changed.
    fn wakes(&self, key: &str, r: &Resting) -> bool {
        self.services.contains(key)
            || self.tasks.contains(&r.tasks)
            || self.instance_clusters.contains(&r.cluster)
            || r.target_groups
                .iter()
                .any(|g| self.target_groups.contains(g))
    }
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
    /// Tasks whose definition gives an essential container a health check.
    health_checked: HashSet<String>,
    events: Vec<String>,
    /// Tasks of the PRIMARY deployment to place.
    start: usize,
    /// Container instances that need a task of a DAEMON service.
    daemon_starts: Vec<String>,
    /// Tasks to place per task set (id, count) of an EXTERNAL or CODE_DEPLOY service.
    task_set_starts: Vec<(String, usize)>,
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
        Arc::new(Scheduler {
            ecs,
            clock,
            last: Default::default(),
        })
    }

    pub async fn run(self: Arc<Self>) {
        loop {
            {
                let _inside = self.ecs.fence.enter().await;
                self.pass();
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

    fn generations(&self) -> Generations {
        Generations {
            services: self.ecs.services.generation(),
            tasks: self.ecs.tasks.generation(),
            instances: self.ecs.instances.generation(),
            target_health: self.ecs.elbv2.health.generation(),
        }
    }

    /// What was written since `g`, or None when a table's journal no longer reaches back
    /// that far (then anything may have changed).
    fn changed_since(&self, g: Generations) -> Option<Changed> {
        let instance_clusters = self
            .ecs
            .instances
            .changes_since(g.instances)?
            .iter()
            .filter_map(|k| k.rsplit_once('/').map(|(cluster, _)| cluster.to_string()))
            .collect();
        Some(Changed {
            services: self.ecs.services.changes_since(g.services)?,
            tasks: self.ecs.tasks.changes_since(g.tasks)?,
            instance_clusters,
            target_groups: self.ecs.elbv2.health.changes_since(g.target_health)?,
        })
    }

    /// One reconciliation of every service that is not INACTIVE, leaving out the services the
    /// last pass found at rest while nothing they read was written since it started (their row,
    /// their tasks, their cluster's container instances, their target groups' health): their
    /// plan cannot have changed, so a pass costs what changed, not how many services, tasks or
    /// instances there are.
    pub fn pass(&self) {
        let started = std::time::Instant::now();
        let generations = self.generations();
        let resting: HashMap<String, Resting> = {
            let mut last = self.last.lock();
            let at_rest = std::mem::take(&mut last.at_rest);
            match last.generations.and_then(|g| self.changed_since(g)) {
                Some(changed) => at_rest
                    .into_iter()
                    .filter(|(key, r)| !changed.wakes(key, r))
                    .collect(),
                None => HashMap::new(),
            }
        };
        let services: Vec<(String, EcsService)> = self.ecs.services.read(|rows| {
            rows.iter()
                .filter(|(k, s)| s.status != ServiceStatus::Inactive && !resting.contains_key(*k))
                .map(|(k, s)| (k.clone(), s.clone()))
                .collect()
        });
        let reconciled = services.len();
        let mut at_rest = resting;
        for (key, svc) in services {
            if let Some(r) = self.reconcile(&key, svc) {
                at_rest.insert(key, r);
            }
        }
        *self.last.lock() = LastPass {
            generations: Some(generations),
            at_rest,
        };
        let took = started.elapsed();
        tracing::trace!(
            services = reconciled,
            micros = took.as_micros() as u64,
            "scheduler pass"
        );
        self.ecs.scheduler_passes.lock().record(reconciled, took);
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

    /// Reconciles one service; returns what it reads when it is at rest (`at_rest`).
    fn reconcile(&self, key: &str, svc: EcsService) -> Option<Resting> {
        let ctx = self.ctx(&svc);
        let mut tasks = self
            .ecs
            .service_tasks(&ctx.scope(), &svc.cluster, &svc.name);
        let mut actions = Actions::default();
        let lb = if svc.target_group_arns().is_empty() {
            None
        } else {
            Some(self.ecs.elbv2.clone())
        };
        if let Some(elbv2) = &lb {
            self.register_targets(&ctx, &svc, &mut tasks, elbv2, &mut actions);
        }
        // Task sets' serviceRegistries are stored, not registered (docs/differences.md).
        if !svc.uses_task_sets() {
            super::discovery::sync(&self.ecs, &svc, &tasks, ctx.now);
        }
        actions.health_checked = self.health_checked(&tasks);
        observe_health(&ctx, &svc, &tasks, lb.as_deref(), &mut actions);
        if svc.status == ServiceStatus::Draining {
            plan_draining(&tasks, &mut actions);
        } else if svc.uses_task_sets() {
            let draining = self.ecs.draining_instances(&ctx.scope(), &svc.cluster);
            plan_task_sets(&ctx, &svc, &tasks, &draining, &mut actions);
        } else if svc.scheduling_strategy == SchedulingStrategy::Daemon {
            let instances = self.ecs.cluster_instances(&ctx.scope(), &svc.cluster);
            plan_daemon(&instances, &tasks, &mut actions);
        } else {
            let draining = self.ecs.draining_instances(&ctx.scope(), &svc.cluster);
            plan_replica(&ctx, &svc, &tasks, &draining, &mut actions);
        }
        let rest = at_rest(&ctx, &svc, &tasks, &actions).then(|| Resting {
            tasks: group_key(&ctx.scope(), &svc.cluster, &format!("service:{}", svc.name)),
            cluster: format!("{}{}", ctx.scope(), svc.cluster),
            target_groups: svc
                .target_group_arns()
                .into_iter()
                .map(str::to_string)
                .collect(),
        });
        self.apply(&ctx, key, &svc, &tasks, actions);
        rest
    }

    /// The tasks whose definition has an essential container with a health check.
    fn health_checked(&self, tasks: &[Task]) -> HashSet<String> {
        let mut by_definition: HashMap<&str, bool> = HashMap::new();
        tasks
            .iter()
            .filter(|t| {
                *by_definition
                    .entry(t.task_definition_arn.as_str())
                    .or_insert_with(|| {
                        self.ecs
                            .task_definition_by_arn(&t.task_definition_arn)
                            .is_some_and(|d| has_health_check(&d.body))
                    })
            })
            .map(|t| t.arn.clone())
            .collect()
    }

    fn apply(&self, ctx: &Ctx, key: &str, svc: &EcsService, tasks: &[Task], actions: Actions) {
        let mut events = actions.events.clone();
        events.extend(self.apply_stops(ctx, svc, tasks, &actions.stop));
        if let Some(primary) = svc.primary() {
            events.extend(self.apply_starts(ctx, svc, primary, tasks, &actions));
        } else if svc.deployments.is_empty() {
            events.extend(self.apply_task_set_starts(ctx, svc, tasks, &actions));
        }
        let outcome = Outcome::of(tasks, &actions.healthy);
        let draining = if svc.uses_task_sets() {
            self.ecs.draining_instances(&ctx.scope(), &svc.cluster)
        } else {
            HashSet::new()
        };
        let _ = self
            .ecs
            .services
            .record::<_, crate::store::StoreError, _>(|t| {
                if let Some(s) = t.get_mut(key) {
                    if actions.inactive {
                        retire(s);
                    }
                    record_task_sets(s, &outcome, &draining, &actions.stop, ctx.now);
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
            let done = self
                .ecs
                .tasks
                .transact::<_, crate::store::StoreError, _>(|t| {
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
            for (subject, arns) in by_subject(svc, tasks, &stopped) {
                events.push(format!(
                    "({subject}) has stopped {} running tasks: {}.",
                    arns.len(),
                    task_list(arns.iter().copied())
                ));
            }
        }
        events
    }

    /// Launches the PRIMARY deployment's missing tasks and DAEMON tasks; returns the events.
    fn apply_starts(
        &self,
        ctx: &Ctx,
        svc: &EcsService,
        primary: &Deployment,
        tasks: &[Task],
        actions: &Actions,
    ) -> Vec<String> {
        let mut events = Vec::new();
        let mut started: Vec<String> = Vec::new();
        let mut placement_failure = None;
        let throttle = start_throttle(primary, tasks);
        if throttle.is_some() && actions.start > 0 {
            events.push(format!(
                "(service {}) is unable to consistently start tasks successfully.",
                svc.name
            ));
        }
        let throttled = throttle.is_some_and(|t| ctx.now < t.until);
        if actions.start > 0 && !throttled {
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

    /// Launches each task set's missing tasks (started by the task set's id); returns the events.
    fn apply_task_set_starts(
        &self,
        ctx: &Ctx,
        svc: &EcsService,
        tasks: &[Task],
        actions: &Actions,
    ) -> Vec<String> {
        let mut events = Vec::new();
        let mut placement_failure = None;
        for (id, count) in &actions.task_set_starts {
            let Some(ts) = svc.task_sets.iter().find(|ts| &ts.id == id) else {
                continue;
            };
            let subject = task_set_subject(svc, &ts.id);
            // The throttle of repeated start failures applies per task set.
            let as_deployment = Deployment {
                id: ts.id.clone(),
                ..Default::default()
            };
            let throttle = start_throttle(&as_deployment, tasks);
            if throttle.is_some() {
                events.push(format!(
                    "({subject}) is unable to consistently start tasks successfully."
                ));
            }
            if throttle.is_some_and(|t| ctx.now < t.until) {
                continue;
            }
            let spec = task_set_launch_spec(svc, ts, *count, placement_target(svc));
            match self.ecs.launch(ctx, &spec) {
                Ok(launched) if launched.tasks.is_empty() => {
                    placement_failure = Some(unplaceable(svc, launched.failures.first()));
                }
                Ok(launched) => events.push(format!(
                    "({subject}) has started {} tasks: {}.",
                    launched.tasks.len(),
                    task_list(launched.tasks.iter().map(|t| t.arn.as_str()))
                )),
                Err(e) => {
                    placement_failure = Some(format!(
                        "(service {}) was unable to place a task. Reason: {}.",
                        svc.name, e.message
                    ))
                }
            }
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
            let _ = self
                .ecs
                .tasks
                .record::<_, crate::store::StoreError, _>(|tx| {
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
    svc.target_group_arns().into_iter()
}

/// "(task a) (task b)" from task ARNs.
/// The subject ECS names in an event about a task set's tasks: "service web, taskSet ecs-svc/…".
fn task_set_subject(svc: &EcsService, task_set: &str) -> String {
    format!("service {}, taskSet {task_set}", svc.name)
}

/// `arns` grouped by the subject of their events: the task set that started each task when the
/// service has task sets, else the service.
fn by_subject<'a>(
    svc: &EcsService,
    tasks: &[Task],
    arns: &[&'a str],
) -> Vec<(String, Vec<&'a str>)> {
    let mut groups: Vec<(String, Vec<&'a str>)> = Vec::new();
    for arn in arns {
        let task_set = tasks
            .iter()
            .find(|t| t.arn == *arn)
            .and_then(|t| t.started_by.as_deref())
            .filter(|by| svc.task_sets.iter().any(|ts| ts.id == *by));
        let subject = match task_set {
            Some(id) => task_set_subject(svc, id),
            None => format!("service {}", svc.name),
        };
        match groups.iter_mut().find(|(s, _)| *s == subject) {
            Some((_, list)) => list.push(arn),
            None => groups.push((subject, vec![arn])),
        }
    }
    groups
}

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
            None => lb.is_none() || svc.load_balancers_for(t).is_empty(),
        };
        if healthy && t.is_running() && t.wanted() && t.computed_health() != HealthStatus::Unhealthy
        {
            actions.healthy.insert(t.arn.clone());
        }
    }
}

/// A service the scheduler has nothing to do for until something it reads is written: ACTIVE,
/// its rollout finished (the PRIMARY deployment alone and COMPLETED, or every task set ACTIVE or
/// PRIMARY and STEADY_STATE), every task it holds RUNNING, wanted and counted healthy (container
/// health, target health and ECS's 40 s settling all behind it), and this pass planned nothing
/// and said nothing. Whatever the clock does, its plan stays empty: the time-driven steps (grace
/// periods, settling, bake time, back-off, draining) all belong to services not at rest.
fn at_rest(ctx: &Ctx, svc: &EcsService, tasks: &[Task], actions: &Actions) -> bool {
    let planned = !actions.events.is_empty()
        || actions.start > 0
        || !actions.daemon_starts.is_empty()
        || !actions.task_set_starts.is_empty()
        || !actions.stop.is_empty()
        || actions.inactive;
    let rolled_out = if svc.uses_task_sets() {
        svc.deployments.is_empty()
            && svc.task_sets.iter().all(|ts| {
                ts.status != TaskSetStatus::Draining
                    && ts.stability_status == StabilityStatus::SteadyState
            })
    } else {
        svc.deployments.len() == 1
            && svc
                .primary()
                .is_some_and(|p| p.rollout_state == RolloutState::Completed)
    };
    svc.status == ServiceStatus::Active
        && !planned
        && rolled_out
        && tasks
            .iter()
            .filter(|t| t.holds_resources())
            .all(|t| t.is_running() && t.wanted() && counts_toward_minimum(ctx, svc, t, actions))
}

/// How long ECS waits after RUNNING before a task with neither a container health check nor a
/// load balancer counts toward minimumHealthyPercent (API reference, DeploymentConfiguration).
const SETTLE_WITHOUT_HEALTH_CHECK: f64 = 40.0;

/// Whether a task given as healthy counts toward minimumHealthyPercent: with a container health
/// check once it is HEALTHY; with a load balancer once the targets are healthy (already in
/// `healthy`); with neither 40 s after it reached RUNNING.
fn counts_toward_minimum(ctx: &Ctx, svc: &EcsService, t: &Task, actions: &Actions) -> bool {
    if !actions.healthy.contains(&t.arn) {
        return false;
    }
    if actions.health_checked.contains(&t.arn) {
        return t.computed_health() == HealthStatus::Healthy;
    }
    !svc.load_balancers.is_empty()
        || t.started_at
            .is_some_and(|s| ctx.now - s >= SETTLE_WITHOUT_HEALTH_CHECK)
}

/// An essential container of the definition has a health check.
fn has_health_check(definition: &Value) -> bool {
    definition
        .get("containerDefinitions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|c| {
            c.get("essential").and_then(Value::as_bool) != Some(false)
                && c.get("healthCheck").is_some_and(|h| !h.is_null())
        })
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
        .filter(|t| counts_toward_minimum(ctx, svc, t, actions))
        .count() as i64;
    // Tasks on draining instances stop once enough healthy ones run elsewhere (pending ones at
    // once).
    let mut can_move = healthy - min_healthy;
    for t in &to_move {
        if t.is_running() && counts_toward_minimum(ctx, svc, t, actions) {
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

/// EXTERNAL and CODE_DEPLOY: each task set runs its computedDesiredCount (the service's desired
/// count × its scale, rounded up) of tasks, started by the task set's id. There is no rolling
/// update between task sets (the deployment tool moves traffic and scale itself): missing tasks
/// start, extra ones stop (pending first), tasks of DRAINING task sets and tasks of no task set
/// stop, tasks failing container health checks (after the grace period) and tasks on DRAINING
/// container instances are replaced.
fn plan_task_sets(
    ctx: &Ctx,
    svc: &EcsService,
    tasks: &[Task],
    draining: &HashSet<String>,
    actions: &mut Actions,
) {
    let grace = svc.health_check_grace_period.unwrap_or(0) as f64;
    for t in tasks.iter().filter(|t| t.wanted() && !t.is_stopped()) {
        if svc.task_set_of(t).is_none() {
            actions.stop(t, "Task set deleted");
        }
    }
    for ts in &svc.task_sets {
        let reason = scaling_reason(&Deployment {
            id: ts.id.clone(),
            ..Default::default()
        });
        let mut keep: Vec<&Task> = Vec::new();
        for t in tasks.iter().filter(|t| {
            t.wanted() && !t.is_stopped() && svc.task_set_of(t).is_some_and(|o| o.id == ts.id)
        }) {
            let past_grace = t.started_at.is_some_and(|s| ctx.now - s >= grace);
            if t.is_running() && past_grace && t.computed_health() == HealthStatus::Unhealthy {
                actions.stop(t, "Task failed container health checks");
            } else if t
                .container_instance_arn
                .as_ref()
                .is_some_and(|a| draining.contains(a))
            {
                actions.stop(t, "Container instance is draining");
            } else {
                keep.push(t);
            }
        }
        let want = ts.computed_desired_count(svc.desired_count).max(0) as usize;
        if keep.len() < want {
            actions
                .task_set_starts
                .push((ts.id.clone(), want - keep.len()));
        }
        keep.sort_by_key(|t| t.is_running());
        for t in keep.iter().take(keep.len().saturating_sub(want)) {
            actions.stop(t, reason.clone());
        }
    }
}

/// After a pass: each task set's stabilityStatus (STEADY_STATE once it runs its computed count,
/// none pending, none on a DRAINING instance, all healthy; the time it changed), and DRAINING
/// task sets whose tasks have all stopped are gone.
fn record_task_sets(
    s: &mut EcsService,
    o: &Outcome<'_>,
    draining_instances: &HashSet<String>,
    stopping: &[Stop],
    now: f64,
) {
    let desired = s.desired_count;
    s.task_sets.retain(|ts| {
        ts.status != crate::services::ecs::model::TaskSetStatus::Draining || o.live(&ts.id) > 0
    });
    for ts in s.task_sets.iter_mut() {
        let live: Vec<&Task> = o
            .of_deployment(&ts.id)
            .filter(|t| !t.is_stopped() && t.wanted())
            .filter(|t| !stopping.iter().any(|x| x.arn == t.arn))
            .collect();
        let steady = live.len() as i64 == ts.computed_desired_count(desired)
            && live.iter().all(|t| o.healthy.contains(&t.arn))
            && !live.iter().any(|t| {
                t.container_instance_arn
                    .as_ref()
                    .is_some_and(|a| draining_instances.contains(a))
            });
        let status = if steady {
            StabilityStatus::SteadyState
        } else {
            StabilityStatus::Stabilizing
        };
        if ts.stability_status != status {
            ts.stability_status = status;
            ts.stability_status_at = now;
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

/// Consecutive start failures after which the scheduler throttles a service's launches.
pub const THROTTLE_AFTER: usize = 3;
/// The first wait between launches once throttled; it doubles with each further failure.
pub const THROTTLE_FIRST: f64 = 10.0;
/// The longest wait between launches (ECS's documented maximum, 27 minutes).
pub const THROTTLE_MAX: f64 = 27.0 * 60.0;

/// ECS's service throttle logic: once a deployment's tasks keep going from PENDING to STOPPED
/// without reaching RUNNING, the time between launches grows (exponentially here, from
/// THROTTLE_FIRST up to THROTTLE_MAX). Only the PRIMARY deployment's tasks count, so a new
/// deployment (a new task definition) starts unthrottled, and a task that reaches RUNNING ends it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Throttle {
    /// Consecutive failures to start.
    pub failures: usize,
    /// No launch before this (emulator clock).
    pub until: f64,
}

pub fn start_throttle(primary: &Deployment, tasks: &[Task]) -> Option<Throttle> {
    let mine: Vec<&Task> = tasks
        .iter()
        .filter(|t| t.started_by.as_deref() == Some(primary.id.as_str()))
        .collect();
    let last_running = mine
        .iter()
        .filter_map(|t| t.started_at)
        .fold(f64::NEG_INFINITY, f64::max);
    let mut failed: Vec<f64> = mine
        .iter()
        .filter(|t| t.is_stopped() && t.started_at.is_none())
        .map(|t| t.stopped_at.unwrap_or(t.created_at))
        .filter(|at| *at > last_running)
        .collect();
    if failed.len() < THROTTLE_AFTER {
        return None;
    }
    failed.sort_by(f64::total_cmp);
    let n = failed.len();
    let exponent = i32::try_from(n - THROTTLE_AFTER)
        .unwrap_or(i32::MAX)
        .min(30);
    let wait = (THROTTLE_FIRST * 2f64.powi(exponent)).min(THROTTLE_MAX);
    Some(Throttle {
        failures: n,
        until: failed[n - 1] + wait,
    })
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
    s.task_sets.clear();
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
    // Old deployments without tasks are done; a failed one stays (ACTIVE, rolloutState FAILED)
    // while the PRIMARY that rolls it back is in progress, as ECS shows it.
    let rolling_back = s
        .primary()
        .is_some_and(|p| p.rollout_state == RolloutState::InProgress);
    let (kept, done): (Vec<Deployment>, Vec<Deployment>) = std::mem::take(&mut s.deployments)
        .into_iter()
        .partition(|d| {
            d.status == DeploymentStatus::Primary
                || o.live(&d.id) > 0
                || (rolling_back && d.rollout_state == RolloutState::Failed)
        });
    s.deployments = kept;
    for mut d in done {
        d.finished_at = Some(now);
        d.status = DeploymentStatus::Inactive;
        s.history.insert(0, d);
    }
    s.history
        .truncate(crate::services::ecs::services::MAX_HISTORY);
    complete_rollout(s, o, now, events);
}

/// Updates failedTasks; returns the PRIMARY deployment when the breaker trips on it.
fn trip_breaker(
    s: &mut EcsService,
    o: &Outcome<'_>,
    now: f64,
    events: &mut Vec<String>,
) -> Option<Deployment> {
    let threshold = crate::services::ecs::services::circuit_breaker_threshold(s.desired_count);
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
pub(crate) fn roll_back(
    s: &mut EcsService,
    failed: &Deployment,
    now: f64,
    events: &mut Vec<String>,
) {
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
    dep.steady_at = None;
    dep.desired_count = s.desired_count;
    dep.created_at = now;
    dep.updated_at = now;
    dep.revision = prev.revision_id().to_string();
    dep.source_revisions = vec![failed.revision_id().to_string()];
    dep.rollback_of = Some(failed.id.clone());
    dep.finished_at = None;
    s.task_definition = dep.task_definition.clone();
    events.push(format!(
        "(service {}) rolling back to deployment {}.",
        s.name, prev.id
    ));
    s.deployments.insert(0, dep);
}

/// The PRIMARY deployment completes once it alone runs the desired count, all healthy. A
/// deployment watched by CloudWatch alarms only records when it got there: the deployment
/// alarm controller completes it after the bake time.
fn complete_rollout(s: &mut EcsService, o: &Outcome<'_>, now: f64, events: &mut Vec<String>) {
    // Only the PRIMARY has tasks (a failed deployment kept for display has none).
    let only_primary = s
        .deployments
        .iter()
        .all(|d| d.status == DeploymentStatus::Primary || o.live(&d.id) == 0);
    let desired = s.desired_count;
    let name = s.name.clone();
    let watched = s.deployment_alarms.as_ref().is_some_and(|a| a.enable);
    let Some(p) = s
        .deployments
        .iter_mut()
        .find(|d| d.status == DeploymentStatus::Primary)
    else {
        return;
    };
    let steady = only_primary && o.healthy(&p.id) == desired && o.live(&p.id) == desired;
    if p.rollout_state != RolloutState::InProgress {
        return;
    }
    if watched {
        p.steady_at = steady.then(|| p.steady_at.unwrap_or(now));
    } else if steady {
        events.extend(complete(&name, p, now));
    }
}

/// Marks a deployment COMPLETED; returns ECS's events.
pub(crate) fn complete(service: &str, p: &mut Deployment, now: f64) -> Vec<String> {
    p.rollout_state = RolloutState::Completed;
    p.rollout_state_reason = format!("ECS deployment {} completed.", p.id);
    p.updated_at = now;
    vec![
        format!(
            "(service {service}) (deployment {}) deployment completed.",
            p.id
        ),
        format!("(service {service}) has reached a steady state."),
    ]
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

/// The launch of `count` tasks of a task set: its task definition, launch type or capacity
/// provider strategy and network configuration; the service's placement and tags.
fn task_set_launch_spec(
    svc: &EcsService,
    ts: &TaskSet,
    count: usize,
    target: Target,
) -> LaunchSpec {
    LaunchSpec {
        cluster: Some(svc.cluster.clone()),
        task_definition: ts.task_definition.clone(),
        count,
        target,
        started_by: Some(ts.id.clone()),
        group: Some(format!("service:{}", svc.name)),
        launch_type: ts.launch_type.clone(),
        capacity_provider_strategy: ts.capacity_provider_strategy.clone(),
        network_configuration: ts.network_configuration.clone(),
        tags: if svc.propagate_tags == Some(PropagateTags::Service) {
            svc.tags.clone()
        } else {
            Vec::new()
        },
        propagate_tags: svc
            .propagate_tags
            .filter(|p| *p == PropagateTags::TaskDefinition),
        enable_execute_command: svc.enable_execute_command,
        platform_version: ts
            .platform_version
            .clone()
            .or_else(|| svc.platform_version.clone()),
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
    use crate::services::ecs::model::{DeploymentStatus, DesiredStatus, LoadBalancer, TaskStatus};

    const NEW: &str = "ecs-svc/new";
    const OLD: &str = "ecs-svc/old";

    /// ECS's throttle: none for the first THROTTLE_AFTER-1 start failures, then waits of 10 s,
    /// 20 s, 40 s ... after the last failure, never longer than 27 minutes; a task of the
    /// deployment that reached RUNNING after them, or another deployment, starts afresh.
    #[test]
    fn launches_are_throttled_after_repeated_start_failures() {
        let dep = Deployment {
            id: NEW.into(),
            status: DeploymentStatus::Primary,
            ..Default::default()
        };
        let failed = |at: f64| Task {
            started_by: Some(NEW.into()),
            last_status: TaskStatus::Stopped,
            created_at: at - 1.0,
            stopped_at: Some(at),
            ..Default::default()
        };
        let mut tasks: Vec<Task> = vec![failed(100.0), failed(110.0)];
        assert_eq!(start_throttle(&dep, &tasks), None, "two failures");
        tasks.push(failed(120.0));
        assert_eq!(
            start_throttle(&dep, &tasks),
            Some(Throttle {
                failures: 3,
                until: 130.0
            })
        );
        tasks.push(failed(140.0));
        assert_eq!(start_throttle(&dep, &tasks).map(|t| t.until), Some(160.0));
        tasks.push(failed(170.0));
        assert_eq!(start_throttle(&dep, &tasks).map(|t| t.until), Some(210.0));
        for i in 0..20 {
            tasks.push(failed(300.0 + f64::from(i)));
        }
        assert_eq!(
            start_throttle(&dep, &tasks).map(|t| t.until),
            Some(319.0 + THROTTLE_MAX)
        );
        // Another deployment's failures do not count.
        let other = Deployment {
            id: OLD.into(),
            ..dep.clone()
        };
        assert_eq!(start_throttle(&other, &tasks), None);
        // A task that reached RUNNING after them ends the throttle.
        tasks.push(Task {
            started_by: Some(NEW.into()),
            last_status: TaskStatus::Running,
            started_at: Some(400.0),
            ..Default::default()
        });
        assert_eq!(start_throttle(&dep, &tasks), None);
    }

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
        plan_with(svc, tasks, Actions::default())
    }

    /// One pass at emulator time 1000, starting from `actions` (e.g. with health-checked tasks).
    fn plan_with(svc: &EcsService, tasks: &[Task], mut actions: Actions) -> Actions {
        let ctx = Ctx {
            account: "000000000000".into(),
            region: "us-east-1".into(),
            request_id: "test".into(),
            now: 1000.0,
            access_key: None,
        };
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

    /// A deployment started while a scale-in is still stopping tasks (desired STOPPED, RUNNING
    /// until their stopTimeout): for every common min/max pair and desired 1..=4 the first pass
    /// is the same as without the stopping tasks, and the "unable" event only comes at 100/100.
    #[test]
    fn deployment_during_a_scale_in_ignores_the_stopping_tasks() {
        for (min, max) in [(0, 100), (50, 200), (100, 200), (100, 100)] {
            for desired in 1..=4 {
                let svc = service(desired, min, max);
                let without = plan(&svc, &old_running(desired));
                let mut tasks = old_running(desired);
                for i in 0..3 {
                    tasks.push(task(
                        &format!("going{i}"),
                        OLD,
                        TaskStatus::Running,
                        DesiredStatus::Stopped,
                    ));
                }
                let with = plan(&svc, &tasks);
                let at = format!("desired {desired}, min {min}, max {max}");
                assert_eq!(with.start, without.start, "{at}");
                assert_eq!(with.stop, without.stop, "{at}");
                assert_eq!(unable(&with), (min, max) == (100, 100), "{at}");
            }
        }
    }

    /// PENDING tasks of the new deployment count toward maximumPercent: nothing more starts, and
    /// no "unable" event is written while they start.
    #[test]
    fn pending_tasks_count_toward_maximum_percent() {
        let svc = service(2, 100, 200);
        let mut tasks = old_running(2);
        for i in 0..2 {
            tasks.push(task(
                &format!("new{i}"),
                NEW,
                TaskStatus::Pending,
                DesiredStatus::Running,
            ));
        }
        let a = plan(&svc, &tasks);
        assert_eq!((a.start, a.stop.len(), unable(&a)), (0, 0, false));
    }

    /// desired 2 at 100/200 with two old tasks and two new RUNNING ones that started at
    /// `started` (the pass runs at 1000): how many old tasks stop.
    fn old_stops_after_new_tasks_started_at(started: f64, tweak: impl Fn(&mut Task)) -> usize {
        let svc = service(2, 100, 200);
        let mut tasks = old_running(2);
        for i in 0..2 {
            let mut t = task(
                &format!("new{i}"),
                NEW,
                TaskStatus::Running,
                DesiredStatus::Running,
            );
            t.started_at = Some(started);
            tweak(&mut t);
            tasks.push(t);
        }
        plan(&svc, &tasks).stop.len()
    }

    /// Without a container health check or a load balancer, a task counts toward
    /// minimumHealthyPercent 40 s (emulator clock) after RUNNING, not at once.
    #[test]
    fn a_task_without_health_checks_counts_toward_the_minimum_40_s_after_running() {
        assert_eq!(old_stops_after_new_tasks_started_at(1000.0, |_| {}), 0);
        assert_eq!(old_stops_after_new_tasks_started_at(961.0, |_| {}), 0);
        assert_eq!(old_stops_after_new_tasks_started_at(960.0, |_| {}), 2);
    }

    /// With a container health check a task counts once HEALTHY, however long that takes.
    #[test]
    fn a_health_checked_task_counts_toward_the_minimum_once_healthy() {
        let checked = |health: Option<HealthStatus>| {
            move |t: &mut Task| {
                t.containers = vec![crate::services::ecs::TaskContainer {
                    essential: true,
                    health_status: health,
                    ..Default::default()
                }];
            }
        };
        let svc = service(2, 100, 200);
        let run = |started: f64, health: Option<HealthStatus>| {
            let mut tasks = old_running(2);
            let mut actions = Actions::default();
            for i in 0..2 {
                let mut t = task(
                    &format!("new{i}"),
                    NEW,
                    TaskStatus::Running,
                    DesiredStatus::Running,
                );
                t.started_at = Some(started);
                checked(health)(&mut t);
                actions.health_checked.insert(t.arn.clone());
                tasks.push(t);
            }
            plan_with(&svc, &tasks, actions).stop.len()
        };
        assert_eq!(run(0.0, None), 0, "no result yet, long after RUNNING");
        assert_eq!(run(0.0, Some(HealthStatus::Unknown)), 0);
        assert_eq!(
            run(999.0, Some(HealthStatus::Healthy)),
            2,
            "healthy at once"
        );
    }

    /// Behind a load balancer the targets' health decides (the pass is given them as healthy).
    #[test]
    fn a_task_behind_a_load_balancer_counts_once_its_targets_are_healthy() {
        let mut svc = service(2, 100, 200);
        svc.load_balancers = vec![LoadBalancer::default()];
        let mut tasks = old_running(2);
        for i in 0..2 {
            let mut t = task(
                &format!("new{i}"),
                NEW,
                TaskStatus::Running,
                DesiredStatus::Running,
            );
            t.started_at = Some(999.0);
            tasks.push(t);
        }
        assert_eq!(plan(&svc, &tasks).stop.len(), 2);
    }

    fn task_set(
        id: &str,
        value: f64,
        status: crate::services::ecs::model::TaskSetStatus,
    ) -> TaskSet {
        TaskSet {
            id: id.into(),
            status,
            scale: crate::services::ecs::task_sets::Scale {
                value,
                unit: "PERCENT".into(),
            },
            ..Default::default()
        }
    }

    /// One task set pass: (starts per task set id, stopped task ids).
    fn plan_sets(svc: &EcsService, tasks: &[Task]) -> (Vec<(String, usize)>, Vec<String>) {
        let ctx = Ctx {
            now: 1000.0,
            ..Ctx::for_tests()
        };
        let mut a = Actions::default();
        plan_task_sets(&ctx, svc, tasks, &HashSet::new(), &mut a);
        let stopped = a
            .stop
            .iter()
            .map(|s| s.arn.rsplit('/').next().unwrap_or_default().to_string())
            .collect();
        (a.task_set_starts, stopped)
    }

    /// Each task set runs ceil(desired × scale %) tasks: for desired 1..=4 and scales 100, 50,
    /// 33.3, 0, the first pass starts exactly that many; extra tasks stop (pending first);
    /// a DRAINING task set's tasks and tasks of no task set stop.
    #[test]
    fn task_sets_run_their_computed_desired_count() {
        use crate::services::ecs::model::{DeploymentControllerType, TaskSetStatus};
        for desired in 1..=4i64 {
            for (scale, want) in [
                (100.0, desired),
                (50.0, (desired + 1) / 2),
                (33.3, 1 + (desired - 1) / 3),
                (0.0, 0),
            ] {
                let svc = EcsService {
                    desired_count: desired,
                    deployment_controller: DeploymentControllerType::External,
                    task_sets: vec![task_set("ecs-svc/a", scale, TaskSetStatus::Primary)],
                    ..Default::default()
                };
                let (starts, stops) = plan_sets(&svc, &[]);
                let started: usize = starts.iter().map(|(_, n)| n).sum();
                assert_eq!(started as i64, want, "desired {desired} scale {scale}");
                assert!(stops.is_empty());
            }
        }
        let svc = EcsService {
            desired_count: 2,
            deployment_controller: DeploymentControllerType::External,
            task_sets: vec![
                task_set("ecs-svc/a", 50.0, TaskSetStatus::Primary),
                task_set("ecs-svc/b", 100.0, TaskSetStatus::Active),
                task_set("ecs-svc/c", 100.0, TaskSetStatus::Draining),
            ],
            ..Default::default()
        };
        let tasks = vec![
            task(
                "a1",
                "ecs-svc/a",
                TaskStatus::Running,
                DesiredStatus::Running,
            ),
            task(
                "a2",
                "ecs-svc/a",
                TaskStatus::Pending,
                DesiredStatus::Running,
            ),
            task(
                "b1",
                "ecs-svc/b",
                TaskStatus::Running,
                DesiredStatus::Running,
            ),
            task(
                "c1",
                "ecs-svc/c",
                TaskStatus::Running,
                DesiredStatus::Running,
            ),
            task(
                "x1",
                "ecs-svc/gone",
                TaskStatus::Running,
                DesiredStatus::Running,
            ),
            task(
                "b0",
                "ecs-svc/b",
                TaskStatus::Stopped,
                DesiredStatus::Stopped,
            ),
        ];
        let (starts, mut stops) = plan_sets(&svc, &tasks);
        stops.sort();
        assert_eq!(starts, vec![("ecs-svc/b".to_string(), 1)]);
        assert_eq!(
            stops,
            vec!["a2", "c1", "x1"],
            "the pending extra, the draining set's, the orphan"
        );
    }

    /// stabilityStatus: STEADY_STATE once the set runs its computed count, all healthy, nothing
    /// pending; the time it changed is kept; a DRAINING set without tasks is removed.
    #[test]
    fn task_set_stability_and_removal() {
        use crate::services::ecs::model::{DeploymentControllerType, TaskSetStatus};
        let mut svc = EcsService {
            desired_count: 2,
            deployment_controller: DeploymentControllerType::External,
            task_sets: vec![
                task_set("ecs-svc/a", 100.0, TaskSetStatus::Primary),
                task_set("ecs-svc/c", 100.0, TaskSetStatus::Draining),
            ],
            ..Default::default()
        };
        let mut tasks = vec![
            task(
                "a1",
                "ecs-svc/a",
                TaskStatus::Running,
                DesiredStatus::Running,
            ),
            task(
                "a2",
                "ecs-svc/a",
                TaskStatus::Pending,
                DesiredStatus::Running,
            ),
        ];
        let mut healthy: HashSet<String> = tasks
            .iter()
            .filter(|t| t.is_running())
            .map(|t| t.arn.clone())
            .collect();
        record_task_sets(
            &mut svc,
            &Outcome::of(&tasks, &healthy),
            &HashSet::new(),
            &[],
            10.0,
        );
        assert_eq!(svc.task_sets.len(), 1, "the drained set is gone");
        assert_eq!(
            svc.task_sets[0].stability_status,
            StabilityStatus::Stabilizing
        );
        tasks[1].last_status = TaskStatus::Running;
        healthy.insert(tasks[1].arn.clone());
        record_task_sets(
            &mut svc,
            &Outcome::of(&tasks, &healthy),
            &HashSet::new(),
            &[],
            20.0,
        );
        assert_eq!(
            svc.task_sets[0].stability_status,
            StabilityStatus::SteadyState
        );
        assert_eq!(svc.task_sets[0].stability_status_at, 20.0);
        record_task_sets(
            &mut svc,
            &Outcome::of(&tasks, &healthy),
            &HashSet::new(),
            &[],
            30.0,
        );
        assert_eq!(
            svc.task_sets[0].stability_status_at, 20.0,
            "unchanged since"
        );
        svc.desired_count = 3;
        record_task_sets(
            &mut svc,
            &Outcome::of(&tasks, &healthy),
            &HashSet::new(),
            &[],
            40.0,
        );
        assert_eq!(
            svc.task_sets[0].stability_status,
            StabilityStatus::Stabilizing
        );
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
