//! Task sets: CreateTaskSet, DescribeTaskSets, UpdateTaskSet, UpdateServicePrimaryTaskSet,
//! DeleteTaskSet. A service with the EXTERNAL deployment controller runs its tasks in task sets
//! that a deployment tool manages through these calls; a CODE_DEPLOY service gets one task set
//! when it is created (CodeDeploy itself is not emulated). The service scheduler
//! (controllers/scheduler.rs) runs each task set's computedDesiredCount of tasks, started by the
//! task set's id, and removes DRAINING task sets once their tasks have stopped.

use super::model::{
    CapacityProviderStrategyItem, DeploymentControllerType, LoadBalancer, NetworkConfiguration,
    ServiceStatus, StabilityStatus, Tag, TaskSetStatus,
};
use super::services::{deployment_id, not_found, EcsService};
use super::{Ecs, Task};
use crate::protocol::codes;
use crate::protocol::AwsError;
use crate::services::input::Input;
use crate::services::{Ctx, HandlerResult, Registry};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::sync::Arc;

/// How many task sets (ECS calls them deployments here) a service may have at once.
pub const MAX_TASK_SETS: usize = 5;

/// `Scale`: a percentage of the service's desired count.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scale {
    pub value: f64,
    /// Always PERCENT (the only ScaleUnit).
    #[serde(default = "percent")]
    pub unit: String,
}

fn percent() -> String {
    "PERCENT".into()
}

impl Default for Scale {
    fn default() -> Self {
        Scale {
            value: 100.0,
            unit: percent(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct TaskSet {
    /// ecs-svc/<19 digits>; the startedBy of its tasks.
    pub id: String,
    pub arn: String,
    pub status: TaskSetStatus,
    pub task_definition: String,
    #[serde(default)]
    pub external_id: Option<String>,
    /// CODE_DEPLOY for the task set a CODE_DEPLOY service starts with.
    #[serde(default)]
    pub started_by: Option<String>,
    #[serde(default)]
    pub launch_type: Option<String>,
    #[serde(default)]
    pub capacity_provider_strategy: Vec<CapacityProviderStrategyItem>,
    #[serde(default)]
    pub platform_version: Option<String>,
    #[serde(default)]
    pub network_configuration: Option<NetworkConfiguration>,
    #[serde(default)]
    pub load_balancers: Vec<LoadBalancer>,
    #[serde(default)]
    pub service_registries: Vec<Value>,
    pub scale: Scale,
    pub stability_status: StabilityStatus,
    pub stability_status_at: f64,
    pub created_at: f64,
    pub updated_at: f64,
    #[serde(default)]
    pub client_token: Option<String>,
    #[serde(default)]
    pub tags: Vec<Tag>,
}

/// The service's desired count times the scale, rounded up (the API reference: 1.2 → 2).
pub fn computed_desired_count(desired: i64, scale: &Scale) -> i64 {
    let exact = desired as f64 * scale.value / 100.0;
    // A hair below the next integer is float noise (3 × 33.333…%), not a further task.
    (exact - 1e-9).ceil().max(0.0) as i64
}

impl TaskSet {
    pub fn computed_desired_count(&self, service_desired: i64) -> i64 {
        if self.status == TaskSetStatus::Draining {
            0
        } else {
            computed_desired_count(service_desired, &self.scale)
        }
    }

    fn owns(&self, t: &Task) -> bool {
        t.started_by.as_deref() == Some(self.id.as_str())
    }

    /// (running, pending) of its tasks that should run, as DescribeServices counts them.
    pub fn counts(&self, tasks: &[Task]) -> (i64, i64) {
        let mine = || {
            tasks
                .iter()
                .filter(|t| self.owns(t) && t.holds_resources() && t.wanted())
        };
        (
            mine().filter(|t| t.is_running()).count() as i64,
            mine().filter(|t| t.is_pending()).count() as i64,
        )
    }

    /// The TaskSet structure.
    pub fn describe(&self, svc: &EcsService, tasks: &[Task], include_tags: bool) -> Value {
        let (running, pending) = self.counts(tasks);
        let mut v = json!({
            "id": self.id,
            "taskSetArn": self.arn,
            "serviceArn": svc.arn,
            "clusterArn": svc.cluster_arn,
            "status": self.status,
            "taskDefinition": self.task_definition,
            "computedDesiredCount": self.computed_desired_count(svc.desired_count),
            "runningCount": running,
            "pendingCount": pending,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
            "loadBalancers": self.load_balancers,
            "serviceRegistries": self.service_registries,
            "scale": self.scale,
            "stabilityStatus": self.stability_status,
            "stabilityStatusAt": self.stability_status_at,
        });
        if let Some(e) = &self.external_id {
            v["externalId"] = json!(e);
        }
        if let Some(s) = &self.started_by {
            v["startedBy"] = json!(s);
        }
        if let Some(l) = &self.launch_type {
            v["launchType"] = json!(l);
        }
        if !self.capacity_provider_strategy.is_empty() {
            v["capacityProviderStrategy"] = json!(self.capacity_provider_strategy);
        }
        if let Some(p) = &self.platform_version {
            v["platformVersion"] = json!(p);
        }
        if let Some(n) = &self.network_configuration {
            v["networkConfiguration"] = json!(n);
        }
        if include_tags {
            v["tags"] = json!(self.tags);
        }
        v
    }
}

impl EcsService {
    /// The task set that started this task, if any.
    pub fn task_set_of(&self, t: &Task) -> Option<&TaskSet> {
        self.task_sets.iter().find(|ts| ts.owns(t))
    }

    /// The load balancers a task of this service is registered in: its task set's, else the
    /// service's.
    pub fn load_balancers_for(&self, t: &Task) -> &[LoadBalancer] {
        match self.task_set_of(t) {
            Some(ts) => &ts.load_balancers,
            None if self.deployment_controller == DeploymentControllerType::Ecs => {
                &self.load_balancers
            }
            None => &[],
        }
    }

    /// Every target group the service's tasks may be registered in.
    pub fn target_group_arns(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        let lbs = self
            .load_balancers
            .iter()
            .filter(|_| self.deployment_controller == DeploymentControllerType::Ecs)
            .chain(
                self.task_sets
                    .iter()
                    .flat_map(|ts| ts.load_balancers.iter()),
            );
        for g in lbs.filter_map(|lb| lb.target_group_arn.as_deref()) {
            if !out.contains(&g) {
                out.push(g);
            }
        }
        out
    }

    /// Whether its tasks run in task sets (EXTERNAL and CODE_DEPLOY) rather than deployments.
    pub fn uses_task_sets(&self) -> bool {
        self.deployment_controller != DeploymentControllerType::Ecs
    }
}

pub fn register(r: &mut Registry, ecs: &Arc<Ecs>) {
    r.sync("ecs", "CreateTaskSet", ecs, create_task_set);
    r.sync("ecs", "DescribeTaskSets", ecs, describe_task_sets);
    r.sync("ecs", "UpdateTaskSet", ecs, update_task_set);
    r.sync("ecs", "UpdateServicePrimaryTaskSet", ecs, update_primary);
    r.sync("ecs", "DeleteTaskSet", ecs, delete_task_set);
}

fn invalid(msg: impl Into<String>) -> AwsError {
    AwsError::new(codes::ecs::InvalidParameterException, msg)
}

fn task_set_not_found() -> AwsError {
    AwsError::new(
        codes::ecs::TaskSetNotFoundException,
        "The specified task set does not exist.",
    )
}

const ONLY_EXTERNAL: &str =
    "Amazon ECS only supports task set management on services configured to use external deployment controllers.";

/// The ACTIVE service a task set call names, as (row key, service).
fn service_for(
    ecs: &Ecs,
    ctx: &Ctx,
    input: &Value,
    reading: bool,
) -> Result<(String, EcsService), AwsError> {
    let cluster = ecs.active_cluster(ctx, input.str("cluster"))?;
    let (k, svc) = ecs
        .service(ctx, &cluster.name, input.str("service").unwrap_or_default())
        .ok_or_else(not_found)?;
    if svc.status != ServiceStatus::Active {
        return Err(AwsError::new(
            codes::ecs::ServiceNotActiveException,
            "Service was not ACTIVE.",
        ));
    }
    // A CODE_DEPLOY service's task sets can be read, not managed.
    let allowed = match svc.deployment_controller {
        DeploymentControllerType::External => true,
        DeploymentControllerType::CodeDeploy => reading,
        DeploymentControllerType::Ecs => false,
    };
    if !allowed {
        return Err(invalid(ONLY_EXTERNAL));
    }
    Ok((k, svc))
}

/// A task set parameter: its id (ecs-svc/…) or ARN.
fn check_reference(r: &str) -> Result<(), AwsError> {
    let ok = r.starts_with("ecs-svc/") || (r.starts_with("arn:") && r.contains(":task-set/"));
    if ok {
        Ok(())
    } else {
        Err(invalid("Task Set Identifier is invalid"))
    }
}

fn find<'a>(svc: &'a mut EcsService, r: &str) -> Result<&'a mut TaskSet, AwsError> {
    check_reference(r)?;
    svc.task_sets
        .iter_mut()
        .find(|ts| ts.id == r || ts.arn == r)
        .ok_or_else(task_set_not_found)
}

fn scale_of(input: &Value) -> Result<Option<Scale>, AwsError> {
    let Some(scale) = input.member::<Scale>("scale")? else {
        return Ok(None);
    };
    if !(0.0..=100.0).contains(&scale.value) || !scale.value.is_finite() {
        return Err(invalid("Scale value must be between 0 and 100."));
    }
    Ok(Some(scale))
}

/// A new task set from CreateTaskSet's input or a CODE_DEPLOY service's own parameters,
/// checked as CreateService checks a service's.
pub(super) struct NewTaskSet<'a> {
    pub svc: &'a EcsService,
    pub task_definition: &'a str,
    pub input: &'a Value,
    pub scale: Scale,
    pub started_by: Option<String>,
}

pub(super) fn build(ecs: &Ecs, ctx: &Ctx, n: NewTaskSet<'_>) -> Result<TaskSet, AwsError> {
    let input = n.input;
    let def = ecs.task_definition(ctx, n.task_definition)?;
    if def.status != "ACTIVE" {
        return Err(AwsError::new(
            codes::ecs::ClientException,
            "TaskDefinition is inactive",
        ));
    }
    let strategy: Option<Vec<CapacityProviderStrategyItem>> =
        input.member("capacityProviderStrategy")?;
    if input.str("launchType").is_some() && strategy.as_ref().is_some_and(|s| !s.is_empty()) {
        return Err(invalid(
            "Specifying both a launch type and capacity provider strategy is not supported.",
        ));
    }
    let network: Option<NetworkConfiguration> = input.member("networkConfiguration")?;
    let mode = def.body.str("networkMode").unwrap_or("bridge");
    super::services::check_network(ecs, ctx, mode, network.as_ref())?;
    let load_balancers: Vec<LoadBalancer> = input.member("loadBalancers")?.unwrap_or_default();
    super::services::check_load_balancers(ecs, ctx, &load_balancers, &def)?;
    let registries = super::service_registries::normalized(
        input
            .get("serviceRegistries")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default(),
    );
    super::service_registries::check(ecs, ctx, &registries, &def)?;
    let cluster = ecs.active_cluster(ctx, Some(&n.svc.cluster))?;
    // Neither a launch type nor a strategy: the service's launch type, else the cluster's
    // default strategy, else EC2 (as CreateService resolves it).
    let (launch_type, strategy) = match (input.str("launchType"), strategy) {
        (Some(l), _) => (Some(l.to_string()), Vec::new()),
        (None, Some(s)) if !s.is_empty() => (None, s),
        _ => match &n.svc.launch_type {
            Some(l) => (Some(l.clone()), Vec::new()),
            None if !n.svc.capacity_provider_strategy.is_empty() => {
                (None, n.svc.capacity_provider_strategy.clone())
            }
            None if !cluster.default_strategy.is_empty() => (
                None,
                serde_json::from_value(Value::Array(cluster.default_strategy.clone()))
                    .unwrap_or_default(),
            ),
            None => (Some("EC2".to_string()), Vec::new()),
        },
    };
    let id = deployment_id();
    Ok(TaskSet {
        arn: ctx.arn(
            "ecs",
            &format!("task-set/{}/{}/{id}", n.svc.cluster, n.svc.name),
        ),
        id,
        status: TaskSetStatus::Active,
        task_definition: def.arn,
        external_id: input.str("externalId").map(str::to_string),
        started_by: n.started_by,
        launch_type,
        capacity_provider_strategy: strategy,
        platform_version: input.str("platformVersion").map(str::to_string),
        network_configuration: network,
        load_balancers,
        service_registries: registries,
        scale: n.scale,
        stability_status: StabilityStatus::Stabilizing,
        stability_status_at: ctx.now,
        created_at: ctx.now,
        updated_at: ctx.now,
        client_token: input.str("clientToken").map(str::to_string),
        tags: input.member("tags")?.unwrap_or_default(),
    })
}

fn create_task_set(ecs: &Ecs, ctx: &Ctx, input: Value) -> HandlerResult {
    let (k, svc) = service_for(ecs, ctx, &input, false)?;
    let token = input.str("clientToken");
    if let Some(existing) = token.and_then(|t| {
        svc.task_sets
            .iter()
            .find(|ts| ts.client_token.as_deref() == Some(t))
    }) {
        let tasks = ecs.service_tasks(&ctx.scope(), &svc.cluster, &svc.name);
        return Ok(json!({"taskSet": existing.describe(&svc, &tasks, false)}));
    }
    let scale = scale_of(&input)?.unwrap_or_default();
    let ts = build(
        ecs,
        ctx,
        NewTaskSet {
            svc: &svc,
            task_definition: input.str("taskDefinition").unwrap_or_default(),
            input: &input,
            scale,
            started_by: None,
        },
    )?;
    let updated = ecs.services.transact(|t| {
        let svc = t.get_mut(&k).ok_or_else(not_found)?;
        if svc.task_sets.len() >= MAX_TASK_SETS {
            return Err(invalid(format!(
                "{} deployments exist on the service. Unable to create new TaskSet since this exceeds the maximum limit.",
                svc.task_sets.len()
            )));
        }
        svc.task_sets.push(ts.clone());
        Ok(svc.clone())
    })?;
    ecs.wake_scheduler();
    Ok(json!({"taskSet": ts.describe(&updated, &[], false)}))
}

fn describe_task_sets(ecs: &Ecs, ctx: &Ctx, input: Value) -> HandlerResult {
    let (_, svc) = service_for(ecs, ctx, &input, true)?;
    let include_tags = input.string_list("include").iter().any(|i| i == "TAGS");
    let tasks = ecs.service_tasks(&ctx.scope(), &svc.cluster, &svc.name);
    let references = input.string_list("taskSets");
    if references.is_empty() {
        let all: Vec<Value> = svc
            .task_sets
            .iter()
            .map(|ts| ts.describe(&svc, &tasks, include_tags))
            .collect();
        return Ok(json!({"taskSets": all, "failures": []}));
    }
    let mut found = Vec::new();
    let mut failures = Vec::new();
    for r in references {
        check_reference(&r)?;
        match svc.task_sets.iter().find(|ts| ts.id == r || ts.arn == r) {
            Some(ts) => found.push(ts.describe(&svc, &tasks, include_tags)),
            None => failures.push(json!({"arn": r, "reason": "MISSING"})),
        }
    }
    Ok(json!({"taskSets": found, "failures": failures}))
}

/// Changes one task set of the service in a transaction; returns it described.
fn change(
    ecs: &Ecs,
    ctx: &Ctx,
    input: &Value,
    param: &str,
    f: impl Fn(&mut EcsService, &str) -> Result<(), AwsError>,
) -> HandlerResult {
    let (k, _) = service_for(ecs, ctx, input, false)?;
    let reference = input.str(param).unwrap_or_default().to_string();
    let (svc, id) = ecs.services.transact::<_, AwsError, _>(|t| {
        let svc = t.get_mut(&k).ok_or_else(not_found)?;
        let id = find(svc, &reference)?.id.clone();
        f(svc, &id)?;
        Ok((svc.clone(), id))
    })?;
    ecs.wake_scheduler();
    let tasks = ecs.service_tasks(&ctx.scope(), &svc.cluster, &svc.name);
    let ts = svc
        .task_sets
        .iter()
        .find(|ts| ts.id == id)
        .ok_or_else(task_set_not_found)?;
    Ok(json!({"taskSet": ts.describe(&svc, &tasks, false)}))
}

fn update_task_set(ecs: &Ecs, ctx: &Ctx, input: Value) -> HandlerResult {
    let scale = scale_of(&input)?.unwrap_or_default();
    change(ecs, ctx, &input, "taskSet", |svc, id| {
        let ts = find(svc, id)?;
        ts.scale = scale.clone();
        ts.updated_at = ctx.now;
        Ok(())
    })
}

fn update_primary(ecs: &Ecs, ctx: &Ctx, input: Value) -> HandlerResult {
    change(ecs, ctx, &input, "primaryTaskSet", |svc, id| {
        if find(svc, id)?.status == TaskSetStatus::Draining {
            return Err(invalid(
                "The specified task set is DRAINING and cannot become the primary task set.",
            ));
        }
        for ts in svc.task_sets.iter_mut() {
            let status = if ts.id == id {
                TaskSetStatus::Primary
            } else if ts.status == TaskSetStatus::Primary {
                TaskSetStatus::Active
            } else {
                continue;
            };
            if ts.status != status {
                ts.status = status;
                ts.updated_at = ctx.now;
            }
        }
        // The primary task set's parameters become the service's.
        if let Some(p) = svc.task_sets.iter().find(|ts| ts.id == id) {
            svc.task_definition = p.task_definition.clone();
        }
        Ok(())
    })
}

fn delete_task_set(ecs: &Ecs, ctx: &Ctx, input: Value) -> HandlerResult {
    let force = input.bool("force").unwrap_or(false);
    change(ecs, ctx, &input, "taskSet", |svc, id| {
        let desired = svc.desired_count;
        let ts = find(svc, id)?;
        if !force && ts.computed_desired_count(desired) > 0 {
            return Err(invalid(
                "The task set cannot be deleted while it is scaled above 0.",
            ));
        }
        ts.status = TaskSetStatus::Draining;
        ts.updated_at = ctx.now;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn computed_desired_count_rounds_up() {
        let s = |value| Scale {
            value,
            unit: percent(),
        };
        assert_eq!(computed_desired_count(4, &s(100.0)), 4);
        assert_eq!(computed_desired_count(4, &s(50.0)), 2);
        assert_eq!(computed_desired_count(3, &s(50.0)), 2, "1.5 rounds up");
        assert_eq!(computed_desired_count(6, &s(20.0)), 2, "1.2 rounds up");
        assert_eq!(computed_desired_count(3, &s(100.0 / 3.0)), 1, "float noise");
        assert_eq!(computed_desired_count(5, &s(0.0)), 0);
        assert_eq!(computed_desired_count(0, &s(100.0)), 0);
        assert_eq!(computed_desired_count(1, &s(0.1)), 1);
    }
}
