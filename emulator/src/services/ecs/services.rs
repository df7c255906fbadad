//! Services: CreateService, DescribeServices, ListServices, UpdateService, DeleteService.
//! These record what the service wants; the service scheduler (controllers/scheduler.rs) keeps
//! the desired count running and rolls deployments out.

use super::model::{
    CapacityProviderStrategyItem, DeploymentAlarms, DeploymentCircuitBreaker,
    DeploymentControllerType, DeploymentStatus, LoadBalancer, NetworkConfiguration,
    PlacementConstraint, PlacementStrategy, PropagateTags, RolloutState, SchedulingStrategy,
    ServiceStatus, Tag,
};
use super::Ecs;
use crate::protocol::codes;
use crate::protocol::AwsError;
use crate::services::input::Input;
use crate::services::{Ctx, HandlerResult, Registry};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::sync::Arc;

/// How many events a service keeps (newest first), as ECS shows about 100.
pub const MAX_EVENTS: usize = 100;

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Deployment {
    /// ecs-svc/<19 digits>
    pub id: String,
    pub status: DeploymentStatus,
    pub task_definition: String,
    pub desired_count: i64,
    #[serde(default)]
    pub failed_tasks: i64,
    pub created_at: f64,
    pub updated_at: f64,
    pub rollout_state: RolloutState,
    pub rollout_state_reason: String,
    #[serde(default)]
    pub launch_type: Option<String>,
    #[serde(default)]
    pub network_configuration: Option<NetworkConfiguration>,
    /// When a deployment watched by alarms first reached its steady state; it completes after
    /// the bake time (controllers/deployment_alarms.rs).
    #[serde(default)]
    pub steady_at: Option<f64>,
    /// The service revision this deployment deploys (19 digits; empty in rows written before
    /// revisions existed: the deployment id's digits then). A rollback deploys the revision it
    /// returns to.
    #[serde(default)]
    pub revision: String,
    /// The revisions that were running when this deployment started.
    #[serde(default)]
    pub source_revisions: Vec<String>,
    /// The failed deployment this one rolls back (ListServiceDeployments shows the rollback
    /// as that deployment's ROLLBACK_* status, as ECS does).
    #[serde(default)]
    pub rollback_of: Option<String>,
    /// When the deployment left deployments[] (its last task gone).
    #[serde(default)]
    pub finished_at: Option<f64>,
}

impl Deployment {
    /// The id of the service revision this deployment deploys.
    pub fn revision_id(&self) -> &str {
        if self.revision.is_empty() {
            self.id.strip_prefix("ecs-svc/").unwrap_or(&self.id)
        } else {
            &self.revision
        }
    }
}

/// How many finished deployments a service remembers for ListServiceDeployments.
pub const MAX_HISTORY: usize = 50;

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct EcsService {
    pub name: String,
    pub arn: String,
    pub cluster: String,
    pub cluster_arn: String,
    pub status: ServiceStatus,
    pub desired_count: i64,
    pub task_definition: String,
    #[serde(default)]
    pub launch_type: Option<String>,
    #[serde(default)]
    pub capacity_provider_strategy: Vec<CapacityProviderStrategyItem>,
    pub scheduling_strategy: SchedulingStrategy,
    pub maximum_percent: i64,
    pub minimum_healthy_percent: i64,
    #[serde(default)]
    pub circuit_breaker: Option<DeploymentCircuitBreaker>,
    #[serde(default)]
    pub deployment_alarms: Option<DeploymentAlarms>,
    /// deploymentConfiguration.bakeTimeInMinutes, as given.
    #[serde(default)]
    pub bake_time_minutes: Option<i64>,
    #[serde(default)]
    pub deployments: Vec<Deployment>,
    /// Deployments that have left deployments[], newest first (at most MAX_HISTORY).
    #[serde(default)]
    pub history: Vec<Deployment>,
    #[serde(default)]
    pub events: Vec<Value>,
    #[serde(default)]
    pub placement_constraints: Vec<PlacementConstraint>,
    #[serde(default)]
    pub placement_strategy: Vec<PlacementStrategy>,
    #[serde(default)]
    pub network_configuration: Option<NetworkConfiguration>,
    #[serde(default)]
    pub load_balancers: Vec<LoadBalancer>,
    /// Cloud Map registries: {registryArn, port, containerName, containerPort}.
    #[serde(default)]
    pub service_registries: Vec<Value>,
    #[serde(default)]
    pub health_check_grace_period: Option<i64>,
    pub created_at: f64,
    #[serde(default)]
    pub tags: Vec<Tag>,
    #[serde(default)]
    pub propagate_tags: Option<PropagateTags>,
    #[serde(default)]
    pub enable_execute_command: bool,
    #[serde(default)]
    pub platform_version: Option<String>,
    #[serde(default)]
    pub role_arn: Option<String>,
    /// ECS (rolling updates by the scheduler), EXTERNAL or CODE_DEPLOY (task sets).
    #[serde(default)]
    pub deployment_controller: DeploymentControllerType,
    /// The task sets of an EXTERNAL or CODE_DEPLOY service (services/ecs/task_sets.rs).
    #[serde(default)]
    pub task_sets: Vec<super::task_sets::TaskSet>,
}

impl EcsService {
    pub fn primary(&self) -> Option<&Deployment> {
        self.deployments
            .iter()
            .find(|d| d.status == DeploymentStatus::Primary)
    }

    /// The desired count, which the PRIMARY deployment follows.
    pub fn set_desired_count(&mut self, desired: i64, now: f64) {
        self.desired_count = desired;
        if let Some(p) = self
            .deployments
            .iter_mut()
            .find(|d| d.status == DeploymentStatus::Primary)
        {
            p.desired_count = desired;
            p.updated_at = now;
        }
    }

    /// Adds an event (newest first).
    pub fn event(&mut self, now: f64, message: String) {
        crate::feedback!("{message}");
        self.events.insert(
            0,
            json!({"id": uuid::Uuid::new_v4().to_string(), "createdAt": now, "message": message}),
        );
        self.events.truncate(MAX_EVENTS);
    }
}

pub fn register(r: &mut Registry, ecs: &Arc<Ecs>) {
    r.sync("ecs", "CreateService", ecs, create_service);
    r.sync("ecs", "DescribeServices", ecs, describe_services);
    r.sync("ecs", "ListServices", ecs, list_services);
    r.sync("ecs", "UpdateService", ecs, update_service);
    r.sync("ecs", "DeleteService", ecs, delete_service);
}

fn invalid(msg: impl Into<String>) -> AwsError {
    AwsError::new(codes::ecs::InvalidParameterException, msg)
}

pub(crate) fn not_found() -> AwsError {
    AwsError::new(codes::ecs::ServiceNotFoundException, "Service not found.")
}

/// Failed tasks after which the deployment circuit breaker trips: half the desired count,
/// rounded up, at least 3 and at most 200 (ECS's documented rule).
pub fn circuit_breaker_threshold(desired_count: i64) -> i64 {
    ((desired_count + 1) / 2).clamp(3, 200)
}

impl EcsService {
    /// deploymentConfiguration as DescribeServices and DescribeServiceDeployments show it.
    pub fn deployment_configuration(&self) -> Value {
        let mut dc = json!({"maximumPercent": self.maximum_percent, "minimumHealthyPercent": self.minimum_healthy_percent});
        if let Some(cb) = &self.circuit_breaker {
            dc["deploymentCircuitBreaker"] = json!(cb);
        }
        if let Some(a) = &self.deployment_alarms {
            dc["alarms"] = json!(a);
        }
        if let Some(b) = self.bake_time_minutes {
            dc["bakeTimeInMinutes"] = json!(b);
        }
        dc
    }
}

/// A new deployment id: ecs-svc/ followed by 19 digits.
pub fn deployment_id() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    let mut digits = String::with_capacity(19);
    digits.push(char::from(b'1' + rng.random_range(0..9u8)));
    for _ in 0..18 {
        digits.push(char::from(b'0' + rng.random_range(0..10u8)));
    }
    format!("ecs-svc/{digits}")
}

fn new_deployment(svc: &EcsService, now: f64) -> Deployment {
    let id = deployment_id();
    Deployment {
        revision: id.trim_start_matches("ecs-svc/").to_string(),
        source_revisions: svc
            .deployments
            .iter()
            .map(|d| d.revision_id().to_string())
            .collect(),
        rollback_of: None,
        finished_at: None,
        rollout_state_reason: format!("ECS deployment {id} in progress."),
        id,
        status: DeploymentStatus::Primary,
        task_definition: svc.task_definition.clone(),
        desired_count: svc.desired_count,
        failed_tasks: 0,
        created_at: now,
        updated_at: now,
        rollout_state: RolloutState::InProgress,
        launch_type: svc.launch_type.clone(),
        network_configuration: svc.network_configuration.clone(),
        steady_at: None,
    }
}

fn key(scope: &str, cluster: &str, name: &str) -> String {
    format!("{scope}{cluster}/{name}")
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 255
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn deployment_settings(input: &Value, svc: &mut EcsService) -> Result<(), AwsError> {
    let Some(conf) = input.get("deploymentConfiguration") else {
        return Ok(());
    };
    if let Some(max) = conf.i64("maximumPercent") {
        svc.maximum_percent = max;
    }
    if let Some(min) = conf.i64("minimumHealthyPercent") {
        svc.minimum_healthy_percent = min;
    }
    if let Some(cb) = conf.member("deploymentCircuitBreaker")? {
        // The circuit breaker belongs to the rolling update (ECS) controller; ECS takes it from
        // EXTERNAL and CODE_DEPLOY services without keeping it, and so does the emulator.
        if svc.deployment_controller == DeploymentControllerType::Ecs {
            svc.circuit_breaker = Some(cb);
        }
    }
    if let Some(alarms) = conf.member::<DeploymentAlarms>("alarms")? {
        svc.deployment_alarms = Some(alarms);
    }
    if let Some(bake) = conf.i64("bakeTimeInMinutes") {
        if !(0..=1440).contains(&bake) {
            return Err(invalid("bakeTimeInMinutes must be between 0 and 1440."));
        }
        svc.bake_time_minutes = Some(bake);
    }
    if svc.maximum_percent < 100 && svc.scheduling_strategy == SchedulingStrategy::Replica {
        return Err(invalid(
            "maximumPercent must be at least 100 for the REPLICA scheduling strategy.",
        ));
    }
    if svc.minimum_healthy_percent > 100 || svc.minimum_healthy_percent < 0 {
        return Err(invalid("minimumHealthyPercent must be between 0 and 100."));
    }
    if svc.minimum_healthy_percent >= svc.maximum_percent
        && svc.desired_count > 0
        && svc.scheduling_strategy == SchedulingStrategy::Replica
    {
        return Err(invalid(
            "The maximumPercent must be greater than the minimumHealthyPercent.",
        ));
    }
    Ok(())
}

/// Checks a service's loadBalancers against ELBv2 and the task definition.
pub(super) fn check_load_balancers(
    ecs: &Ecs,
    ctx: &Ctx,
    lbs: &[LoadBalancer],
    def: &super::TaskDef,
) -> Result<(), AwsError> {
    let network_mode = def.body.str("networkMode").unwrap_or("bridge");
    for lb in lbs {
        let Some(tg) = lb.target_group_arn.as_deref() else {
            return Err(invalid(
                "Classic load balancers are not supported for services yet; use a targetGroupArn.",
            ));
        };
        let container = lb.container_name.as_deref().unwrap_or_default();
        let port = lb.container_port;
        let c = def
            .body
            .get("containerDefinitions")
            .and_then(Value::as_array)
            .and_then(|cs| cs.iter().find(|c| c.str("name") == Some(container)))
            .ok_or_else(|| {
                invalid(format!(
                    "The container {container} does not exist in the task definition."
                ))
            })?;
        let mapped = c
            .get("portMappings")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .any(|p| p.i64("containerPort") == port);
        if !mapped {
            return Err(invalid(format!(
                "The container {container} did not have a container port {} defined.",
                port.unwrap_or_default()
            )));
        }
        let elbv2 = &ecs.elbv2;
        let group = elbv2
            .group_by_arn(tg)
            .filter(|g| g.arn.split(':').nth(3) == Some(ctx.region.as_str()))
            .ok_or_else(|| invalid(format!("Unable to find target group {tg}.")))?;
        match (group.target_type.as_str(), network_mode) {
            ("ip", "awsvpc") | ("instance", "bridge" | "host") => {}
            (t, m) => {
                return Err(invalid(format!(
                    "The provided target group {tg} has target type {t}, which is incompatible with the {m} network mode specified in the task definition."
                )))
            }
        }
    }
    Ok(())
}

/// A service's network configuration, checked as RunTask checks a task's.
pub(super) fn check_network(
    ecs: &Ecs,
    ctx: &Ctx,
    network_mode: &str,
    conf: Option<&NetworkConfiguration>,
) -> Result<(), AwsError> {
    match (
        network_mode == "awsvpc",
        conf.and_then(|n| n.awsvpc_configuration.as_ref()),
    ) {
        (true, Some(c)) => super::launch::check_awsvpc_configuration(ecs, ctx, c).map(|_| ()),
        (true, None) => Err(invalid(
            "Network Configuration must be provided when networkMode 'awsvpc' is specified.",
        )),
        (false, Some(_)) => Err(invalid(
            "Network Configuration is not valid for the given networkMode of this task definition.",
        )),
        (false, None) => Ok(()),
    }
}

fn create_service(ecs: &Ecs, ctx: &Ctx, input: Value) -> HandlerResult {
    let cluster = ecs.active_cluster(ctx, input.str("cluster"))?;
    let name = input.str("serviceName").unwrap_or_default().to_string();
    if !valid_name(&name) {
        return Err(invalid("Service name can only contain letters, numbers, hyphens and underscores, up to 255 characters."));
    }
    let controller: DeploymentControllerType = input
        .get("deploymentController")
        .map(|c| c.member("type"))
        .transpose()?
        .flatten()
        .unwrap_or_default();
    if controller == DeploymentControllerType::External {
        return create_external_service(ecs, ctx, &cluster, name, &input);
    }
    let def_ref = input
        .str("taskDefinition")
        .ok_or_else(|| invalid("TaskDefinition must be specified."))?;
    let def = ecs.task_definition(ctx, def_ref)?;
    if def.status != "ACTIVE" {
        return Err(AwsError::new(
            codes::ecs::ClientException,
            "TaskDefinition is inactive",
        ));
    }
    let scheduling: SchedulingStrategy = input.member("schedulingStrategy")?.unwrap_or_default();
    let desired = match scheduling {
        SchedulingStrategy::Daemon => {
            if input.i64("desiredCount").is_some() {
                return Err(invalid(
                    "The daemon scheduling strategy does not support a desired count for services.",
                ));
            }
            0
        }
        _ => input.i64("desiredCount").unwrap_or(0),
    };
    if desired < 0 {
        return Err(invalid("Desired count must be a positive number."));
    }
    let network_mode = def.body.str("networkMode").unwrap_or("bridge");
    let network_configuration: Option<NetworkConfiguration> =
        input.member("networkConfiguration")?;
    check_network(ecs, ctx, network_mode, network_configuration.as_ref())?;
    if input.str("launchType").is_some()
        && input
            .get("capacityProviderStrategy")
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty())
    {
        return Err(invalid(
            "Specifying both a launch type and capacity provider strategy is not supported.",
        ));
    }
    let placement_constraints: Vec<PlacementConstraint> =
        input.member("placementConstraints")?.unwrap_or_default();
    check_constraints(&placement_constraints)?;
    let placement_strategy: Vec<PlacementStrategy> =
        input.member("placementStrategy")?.unwrap_or_default();
    super::launch::parse_strategies(&placement_strategy)?;
    let load_balancers: Vec<LoadBalancer> = input.member("loadBalancers")?.unwrap_or_default();
    check_load_balancers(ecs, ctx, &load_balancers, &def)?;
    let registries = super::service_registries::normalized(
        input
            .get("serviceRegistries")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default(),
    );
    super::service_registries::check(ecs, ctx, &registries, &def)?;
    let scope = ctx.scope();
    let k = key(&scope, &cluster.name, &name);
    let mut svc = EcsService {
        arn: ctx.arn("ecs", &format!("service/{}/{}", cluster.name, name)),
        name: name.clone(),
        cluster: cluster.name.clone(),
        cluster_arn: cluster.arn.clone(),
        status: ServiceStatus::Active,
        desired_count: desired,
        task_definition: def.arn.clone(),
        // Neither a launch type nor a strategy: the cluster's default capacity provider
        // strategy when it has one, else EC2.
        launch_type: input.str("launchType").map(str::to_string).or_else(|| {
            (input.get("capacityProviderStrategy").is_none() && cluster.default_strategy.is_empty())
                .then(|| "EC2".to_string())
        }),
        capacity_provider_strategy: match input.member("capacityProviderStrategy")? {
            Some(s) => s,
            None if input.str("launchType").is_none() => {
                serde_json::from_value(Value::Array(cluster.default_strategy.clone()))
                    .unwrap_or_default()
            }
            None => Vec::new(),
        },
        scheduling_strategy: scheduling,
        maximum_percent: if scheduling == SchedulingStrategy::Daemon {
            100
        } else {
            200
        },
        minimum_healthy_percent: if scheduling == SchedulingStrategy::Daemon {
            0
        } else {
            100
        },
        circuit_breaker: None,
        deployment_alarms: None,
        bake_time_minutes: None,
        deployments: Vec::new(),
        history: Vec::new(),
        events: Vec::new(),
        placement_constraints,
        placement_strategy,
        network_configuration,
        load_balancers,
        service_registries: registries,
        health_check_grace_period: input.i64("healthCheckGracePeriodSeconds"),
        created_at: ctx.now,
        tags: input.member("tags")?.unwrap_or_default(),
        propagate_tags: input.member("propagateTags")?,
        enable_execute_command: input.bool("enableExecuteCommand").unwrap_or(false),
        platform_version: input.str("platformVersion").map(str::to_string),
        role_arn: input.str("role").map(str::to_string),
        deployment_controller: controller,
        task_sets: Vec::new(),
    };
    deployment_settings(&input, &mut svc)?;
    if controller == DeploymentControllerType::CodeDeploy {
        // ECS starts a CODE_DEPLOY service with one PRIMARY task set at 100 % from the
        // service's parameters; CodeDeploy would add the replacement sets.
        let mut first = super::task_sets::build(
            ecs,
            ctx,
            super::task_sets::NewTaskSet {
                svc: &svc,
                task_definition: &def.arn,
                input: &input,
                scale: Default::default(),
                started_by: None,
            },
        )?;
        first.status = super::model::TaskSetStatus::Primary;
        svc.task_sets.push(first);
    } else {
        let first = new_deployment(&svc, ctx.now);
        svc.deployments.push(first);
    }
    store_new_service(ecs, &k, svc)
}

fn store_new_service(ecs: &Ecs, k: &str, svc: EcsService) -> HandlerResult {
    let created = ecs.services.transact(|t| {
        if t.get(k)
            .is_some_and(|s| s.status != ServiceStatus::Inactive)
        {
            return Err(invalid("Creation of service was not idempotent."));
        }
        t.put(k, svc.clone());
        Ok(svc.clone())
    })?;
    ecs.wake_scheduler();
    Ok(json!({"service": ecs.describe_service(&created, false)}))
}

/// The parameters an EXTERNAL service leaves to its task sets, each with ECS's refusal when
/// CreateService is given it ("TaskDefinition must be blank.", "NetworkConfiguration must be
/// null." and "LoadBalancers must be empty or null." are ECS's words; the others follow them).
const TASK_SET_PARAMETERS: [(&str, &str); 7] = [
    ("taskDefinition", "TaskDefinition must be blank."),
    ("networkConfiguration", "NetworkConfiguration must be null."),
    ("loadBalancers", "LoadBalancers must be empty or null."),
    ("launchType", "LaunchType must be null."),
    (
        "capacityProviderStrategy",
        "CapacityProviderStrategy must be empty or null.",
    ),
    ("platformVersion", "PlatformVersion must be null."),
    (
        "serviceRegistries",
        "ServiceRegistries must be empty or null.",
    ),
];

/// CreateService with the EXTERNAL deployment controller: only the parameters that are not
/// the task sets' (ECS refuses the others, see TASK_SET_PARAMETERS).
fn create_external_service(
    ecs: &Ecs,
    ctx: &Ctx,
    cluster: &super::Cluster,
    name: String,
    input: &Value,
) -> HandlerResult {
    for (member, refusal) in TASK_SET_PARAMETERS {
        let given = match input.get(member) {
            None | Some(Value::Null) => false,
            Some(Value::Array(items)) => !items.is_empty(),
            Some(_) => true,
        };
        if given {
            return Err(invalid(refusal));
        }
    }
    let scheduling: SchedulingStrategy = input.member("schedulingStrategy")?.unwrap_or_default();
    if scheduling == SchedulingStrategy::Daemon {
        return Err(invalid(
            "The daemon scheduling strategy is not supported with the EXTERNAL deployment controller.",
        ));
    }
    let desired = input.i64("desiredCount").unwrap_or(0);
    if desired < 0 {
        return Err(invalid("Desired count must be a positive number."));
    }
    let placement_constraints: Vec<PlacementConstraint> =
        input.member("placementConstraints")?.unwrap_or_default();
    check_constraints(&placement_constraints)?;
    let placement_strategy: Vec<PlacementStrategy> =
        input.member("placementStrategy")?.unwrap_or_default();
    super::launch::parse_strategies(&placement_strategy)?;
    let k = key(&ctx.scope(), &cluster.name, &name);
    let mut svc = EcsService {
        arn: ctx.arn("ecs", &format!("service/{}/{}", cluster.name, name)),
        name,
        cluster: cluster.name.clone(),
        cluster_arn: cluster.arn.clone(),
        status: ServiceStatus::Active,
        desired_count: desired,
        scheduling_strategy: scheduling,
        maximum_percent: 200,
        minimum_healthy_percent: 100,
        placement_constraints,
        placement_strategy,
        health_check_grace_period: input.i64("healthCheckGracePeriodSeconds"),
        created_at: ctx.now,
        tags: input.member("tags")?.unwrap_or_default(),
        propagate_tags: input.member("propagateTags")?,
        enable_execute_command: input.bool("enableExecuteCommand").unwrap_or(false),
        role_arn: input.str("role").map(str::to_string),
        deployment_controller: DeploymentControllerType::External,
        ..Default::default()
    };
    deployment_settings(input, &mut svc)?;
    store_new_service(ecs, &k, svc)
}

impl Ecs {
    /// The service named by a parameter (name or ARN) in a cluster.
    pub fn service(
        &self,
        ctx: &Ctx,
        cluster: &str,
        reference: &str,
    ) -> Option<(String, EcsService)> {
        let name = reference.rsplit('/').next().unwrap_or(reference);
        let k = key(&ctx.scope(), cluster, name);
        self.services.get(&k).map(|s| (k, s))
    }

    /// An ACTIVE REPLICA service's desired count, for Application Auto Scaling.
    pub fn desired_count(&self, scope: &str, cluster: &str, service: &str) -> Option<i64> {
        self.services
            .get(&key(scope, cluster, service))
            .filter(|s| {
                s.status == ServiceStatus::Active
                    && s.scheduling_strategy == SchedulingStrategy::Replica
            })
            .map(|s| s.desired_count)
    }

    /// Sets an ACTIVE REPLICA service's desired count, as UpdateService's desiredCount does (the
    /// PRIMARY deployment follows), and wakes the scheduler. Returns the previous count.
    pub fn set_desired_count(
        &self,
        scope: &str,
        cluster: &str,
        service: &str,
        count: i64,
        now: f64,
    ) -> Result<i64, AwsError> {
        let k = key(scope, cluster, service);
        let previous = self.services.transact(|t| {
            let svc = t.get_mut(&k).ok_or_else(not_found)?;
            if svc.status != "ACTIVE" {
                return Err(AwsError::new(
                    codes::ecs::ServiceNotActiveException,
                    "Service was not ACTIVE.",
                ));
            }
            let previous = svc.desired_count;
            svc.set_desired_count(count.max(0), now);
            Ok(previous)
        })?;
        self.wake_scheduler();
        Ok(previous)
    }

    /// The Service structure, with live counts from its tasks.
    pub fn describe_service(&self, svc: &EcsService, include_tags: bool) -> Value {
        let scope = format!(
            "{}/{}/",
            svc.arn.split(':').nth(4).unwrap_or_default(),
            svc.arn.split(':').nth(3).unwrap_or_default()
        );
        let tasks: Vec<super::Task> = self
            .service_tasks(&scope, &svc.cluster, &svc.name)
            .into_iter()
            .filter(|t| t.holds_resources() && t.wanted())
            .collect();
        let count = |dep: Option<&str>, running: bool| {
            tasks
                .iter()
                .filter(|t| dep.is_none_or(|d| t.started_by.as_deref() == Some(d)))
                .filter(|t| {
                    if running {
                        t.is_running()
                    } else {
                        t.is_pending()
                    }
                })
                .count() as i64
        };
        let deployments: Vec<Value> = svc
            .deployments
            .iter()
            .map(|d| {
                let mut v = json!({
                    "id": d.id,
                    "status": d.status,
                    "taskDefinition": d.task_definition,
                    "desiredCount": d.desired_count,
                    "pendingCount": count(Some(&d.id), false),
                    "runningCount": count(Some(&d.id), true),
                    "failedTasks": d.failed_tasks,
                    "createdAt": d.created_at,
                    "updatedAt": d.updated_at,
                    "rolloutState": d.rollout_state,
                    "rolloutStateReason": d.rollout_state_reason,
                });
                if let Some(lt) = &d.launch_type {
                    v["launchType"] = json!(lt);
                }
                if let Some(n) = &d.network_configuration {
                    v["networkConfiguration"] = json!(n);
                }
                v
            })
            .collect();
        let dc = svc.deployment_configuration();
        let mut v = json!({
            "serviceArn": svc.arn,
            "serviceName": svc.name,
            "clusterArn": svc.cluster_arn,
            "loadBalancers": svc.load_balancers,
            "serviceRegistries": svc.service_registries,
            "status": svc.status,
            "desiredCount": svc.desired_count,
            "runningCount": count(None, true),
            "pendingCount": count(None, false),
            "taskDefinition": svc.task_definition,
            "deploymentConfiguration": dc,
            "deployments": deployments,
            "events": svc.events,
            "createdAt": svc.created_at,
            "placementConstraints": svc.placement_constraints,
            "placementStrategy": svc.placement_strategy,
            "schedulingStrategy": svc.scheduling_strategy,
            "deploymentController": {"type": svc.deployment_controller},
            "createdBy": format!("arn:aws:iam::{}:root", svc.arn.split(':').nth(4).unwrap_or_default()),
            "enableECSManagedTags": false,
            "enableExecuteCommand": svc.enable_execute_command,
            "tags": if include_tags { json!(svc.tags) } else { json!([]) },
        });
        if svc.uses_task_sets() {
            v["taskSets"] = svc
                .task_sets
                .iter()
                .map(|ts| ts.describe(svc, &tasks, false))
                .collect();
            // The service shows the PRIMARY task set's task definition, none before one is.
            if svc.task_definition.is_empty() {
                if let Some(o) = v.as_object_mut() {
                    o.remove("taskDefinition");
                }
            }
        }
        if let Some(lt) = &svc.launch_type {
            v["launchType"] = json!(lt);
        }
        if !svc.capacity_provider_strategy.is_empty() {
            v["capacityProviderStrategy"] = json!(svc.capacity_provider_strategy);
        }
        if let Some(n) = &svc.network_configuration {
            v["networkConfiguration"] = json!(n);
        }
        if let Some(g) = svc.health_check_grace_period {
            v["healthCheckGracePeriodSeconds"] = json!(g);
        }
        if let Some(p) = &svc.propagate_tags {
            v["propagateTags"] = json!(p);
        }
        if let Some(p) = &svc.platform_version {
            v["platformVersion"] = json!(p);
        }
        if let Some(r) = &svc.role_arn {
            v["roleArn"] = json!(r);
        }
        v
    }
}

fn check_desired_count(svc: &EcsService, desired: i64) -> Result<(), AwsError> {
    if svc.scheduling_strategy == SchedulingStrategy::Daemon {
        return Err(invalid(
            "The daemon scheduling strategy does not support a desired count for services.",
        ));
    }
    if desired < 0 {
        return Err(invalid("Desired count must be a positive number."));
    }
    Ok(())
}

/// Placement constraints as CreateService and UpdateService check them.
fn check_constraints(constraints: &[PlacementConstraint]) -> Result<(), AwsError> {
    for c in constraints {
        super::placement::Constraint::parse(
            c.kind.as_deref().unwrap_or_default(),
            c.expression.as_deref(),
        )
        .map_err(invalid)?;
    }
    Ok(())
}

fn describe_services(ecs: &Ecs, ctx: &Ctx, input: Value) -> HandlerResult {
    let cluster = ecs.active_cluster(ctx, input.str("cluster"))?;
    let references = input.string_list("services");
    if references.len() > 10 {
        return Err(invalid("Services cannot have more than 10 elements"));
    }
    let include_tags = input.string_list("include").iter().any(|i| i == "TAGS");
    let mut services = Vec::new();
    let mut failures = Vec::new();
    for r in references {
        match ecs.service(ctx, &cluster.name, &r) {
            Some((_, s)) => services.push(ecs.describe_service(&s, include_tags)),
            None => {
                // ECS names an unknown service without its cluster.
                let arn = if r.starts_with("arn:") {
                    r.clone()
                } else {
                    ctx.arn("ecs", &format!("service/{r}"))
                };
                failures.push(json!({"arn": arn, "reason": "MISSING"}));
            }
        }
    }
    Ok(json!({"services": services, "failures": failures}))
}

fn list_services(ecs: &Ecs, ctx: &Ctx, input: Value) -> HandlerResult {
    let cluster = ecs.active_cluster(ctx, input.str("cluster"))?;
    let arns: Vec<String> = ecs
        .services
        .scan(&format!("{}{}/", ctx.scope(), cluster.name))
        .into_iter()
        .map(|(_, s)| s)
        .filter(|s| s.status == ServiceStatus::Active || s.status == ServiceStatus::Draining)
        .filter(|s| {
            input
                .str("launchType")
                .is_none_or(|l| s.launch_type.as_deref() == Some(l))
        })
        .filter(|s| {
            input
                .str("schedulingStrategy")
                .is_none_or(|l| s.scheduling_strategy == l)
        })
        .map(|s| s.arn)
        .collect();
    super::list_page("serviceArns", arns, &input, 10)
}

fn update_service(ecs: &Ecs, ctx: &Ctx, input: Value) -> HandlerResult {
    let cluster = ecs.active_cluster(ctx, input.str("cluster"))?;
    let reference = input.str("service").unwrap_or_default();
    let (k, current) = ecs
        .service(ctx, &cluster.name, reference)
        .ok_or_else(not_found)?;
    if current.status != "ACTIVE" {
        return Err(AwsError::new(
            codes::ecs::ServiceNotActiveException,
            "Service was not ACTIVE.",
        ));
    }
    check_task_set_service_update(&current, &input)?;
    let new_def = match input.str("taskDefinition") {
        Some(r) => {
            let def = ecs.task_definition(ctx, r)?;
            if def.status != "ACTIVE" {
                return Err(AwsError::new(
                    codes::ecs::ClientException,
                    "TaskDefinition is inactive",
                ));
            }
            Some(def.arn)
        }
        None => None,
    };
    if let Some(d) = input.i64("desiredCount") {
        check_desired_count(&current, d)?;
    }
    let placement_constraints: Option<Vec<PlacementConstraint>> =
        input.member("placementConstraints")?;
    check_constraints(placement_constraints.as_deref().unwrap_or_default())?;
    let placement_strategy: Option<Vec<PlacementStrategy>> = input.member("placementStrategy")?;
    super::launch::parse_strategies(placement_strategy.as_deref().unwrap_or_default())?;
    let network_configuration: Option<NetworkConfiguration> =
        input.member("networkConfiguration")?;
    if network_configuration.is_some() {
        let def =
            ecs.task_definition(ctx, new_def.as_deref().unwrap_or(&current.task_definition))?;
        let mode = def.body.str("networkMode").unwrap_or("bridge");
        check_network(ecs, ctx, mode, network_configuration.as_ref())?;
    }
    let load_balancers: Option<Vec<LoadBalancer>> = input.member("loadBalancers")?;
    let registries = match input.get("serviceRegistries").and_then(Value::as_array) {
        Some(entries) => {
            let registries = super::service_registries::normalized(entries);
            let def =
                ecs.task_definition(ctx, new_def.as_deref().unwrap_or(&current.task_definition))?;
            super::service_registries::check(ecs, ctx, &registries, &def)?;
            Some(registries)
        }
        None => None,
    };
    let updated = ecs.services.transact::<_, AwsError, _>(|t| {
        let svc = t.get_mut(&k).ok_or_else(not_found)?;
        let mut new_deployment_needed = input.bool("forceNewDeployment").unwrap_or(false);
        if let Some(d) = input.i64("desiredCount") {
            svc.set_desired_count(d, ctx.now);
        }
        if let Some(arn) = &new_def {
            if *arn != svc.task_definition {
                svc.task_definition = arn.clone();
                new_deployment_needed = true;
            }
        }
        if let Some(n) = &network_configuration {
            svc.network_configuration = Some(n.clone());
            new_deployment_needed = true;
        }
        if let Some(p) = &placement_constraints {
            svc.placement_constraints = p.clone();
        }
        if let Some(p) = &placement_strategy {
            svc.placement_strategy = p.clone();
        }
        if let Some(g) = input.i64("healthCheckGracePeriodSeconds") {
            svc.health_check_grace_period = Some(g);
        }
        if let Some(lbs) = &load_balancers {
            svc.load_balancers = lbs.clone();
            new_deployment_needed = true;
        }
        if let Some(r) = &registries {
            svc.service_registries = r.clone();
            new_deployment_needed = true;
        }
        if let Some(e) = input.bool("enableExecuteCommand") {
            svc.enable_execute_command = e;
        }
        deployment_settings(&input, svc)?;
        if new_deployment_needed && !svc.uses_task_sets() {
            for d in svc
                .deployments
                .iter_mut()
                .filter(|d| d.status == DeploymentStatus::Primary)
            {
                d.status = DeploymentStatus::Active;
                d.updated_at = ctx.now;
            }
            let dep = new_deployment(svc, ctx.now);
            svc.deployments.insert(0, dep);
        }
        Ok(svc.clone())
    })?;
    ecs.wake_scheduler();
    Ok(json!({"service": ecs.describe_service(&updated, false)}))
}

/// UpdateService of an EXTERNAL or CODE_DEPLOY service changes only what is not a task set's
/// (desired count, deployment configuration, grace period, placement, tags propagation,
/// execute command); a new task definition, network configuration, load balancers, service
/// registries, platform version or capacity come with a new task set (or CodeDeploy
/// deployment), and ECS refuses them here.
fn check_task_set_service_update(svc: &EcsService, input: &Value) -> Result<(), AwsError> {
    let hint = match svc.deployment_controller {
        DeploymentControllerType::Ecs => return Ok(()),
        DeploymentControllerType::CodeDeploy => "Use AWS CodeDeploy to trigger a new deployment.",
        DeploymentControllerType::External => "Use a new task set to deploy it.",
    };
    let refused = [
        ("taskDefinition", "task definition"),
        ("networkConfiguration", "network parameters"),
        ("loadBalancers", "load balancers"),
        ("serviceRegistries", "service registries"),
        ("platformVersion", "platform version"),
        ("capacityProviderStrategy", "capacity provider strategy"),
    ];
    for (member, what) in refused {
        if input.get(member).is_some_and(|v| !v.is_null()) {
            return Err(invalid(format!(
                "Unable to update {what} on services with a {} deployment controller. {hint}",
                svc.deployment_controller
            )));
        }
    }
    if input.bool("forceNewDeployment") == Some(true) {
        return Err(invalid(format!(
            "Unable to force a new deployment on services with a {} deployment controller. {hint}",
            svc.deployment_controller
        )));
    }
    Ok(())
}

fn delete_service(ecs: &Ecs, ctx: &Ctx, input: Value) -> HandlerResult {
    let cluster = ecs.active_cluster(ctx, input.str("cluster"))?;
    let reference = input.str("service").unwrap_or_default();
    let (k, current) = ecs
        .service(ctx, &cluster.name, reference)
        .ok_or_else(not_found)?;
    if current.status == ServiceStatus::Inactive {
        return Err(AwsError::new(
            codes::ecs::ServiceNotActiveException,
            "Service was not ACTIVE.",
        ));
    }
    let force = input.bool("force").unwrap_or(false);
    if current.desired_count > 0
        && current.scheduling_strategy == SchedulingStrategy::Replica
        && !force
    {
        return Err(invalid(
            "The service cannot be stopped while it is scaled above 0.",
        ));
    }
    let updated = ecs.services.transact::<_, AwsError, _>(|t| {
        let svc = t.get_mut(&k).ok_or_else(not_found)?;
        svc.status = ServiceStatus::Draining;
        svc.desired_count = 0;
        for d in svc.deployments.iter_mut() {
            d.desired_count = 0;
        }
        // An EXTERNAL or CODE_DEPLOY service's task sets are deleted with it.
        for ts in svc.task_sets.iter_mut() {
            ts.status = super::model::TaskSetStatus::Draining;
            ts.updated_at = ctx.now;
        }
        Ok(svc.clone())
    })?;
    ecs.wake_scheduler();
    Ok(json!({"service": ecs.describe_service(&updated, false)}))
}
