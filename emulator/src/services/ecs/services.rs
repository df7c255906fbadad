//! Services: CreateService, DescribeServices, ListServices, UpdateService, DeleteService.
//! These record what the service wants; the service scheduler (controllers/scheduler.rs) keeps
//! the desired count running and rolls deployments out.

use super::model::{
    CapacityProviderStrategyItem, DeploymentCircuitBreaker, DeploymentStatus, LoadBalancer,
    NetworkConfiguration, PlacementConstraint, PlacementStrategy, PropagateTags, RolloutState,
    SchedulingStrategy, ServiceStatus, Tag,
};
use super::Ecs;
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
}

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
    pub deployments: Vec<Deployment>,
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
    AwsError::new("InvalidParameterException", msg)
}

fn not_found() -> AwsError {
    AwsError::new("ServiceNotFoundException", "Service not found.")
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
        svc.circuit_breaker = Some(cb);
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
fn check_load_balancers(
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
        let Some(elbv2) = ecs.elbv2.get() else {
            continue;
        };
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

fn create_service(ecs: &Ecs, ctx: &Ctx, input: Value) -> HandlerResult {
    let cluster = ecs.active_cluster(ctx, input.str("cluster"))?;
    let name = input.str("serviceName").unwrap_or_default().to_string();
    if !valid_name(&name) {
        return Err(invalid("Service name can only contain letters, numbers, hyphens and underscores, up to 255 characters."));
    }
    let def_ref = input
        .str("taskDefinition")
        .ok_or_else(|| invalid("TaskDefinition must be specified."))?;
    let def = ecs.task_definition(ctx, def_ref)?;
    if def.status != "ACTIVE" {
        return Err(AwsError::new(
            "ClientException",
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
    if network_mode == "awsvpc" && network_configuration.is_none() {
        return Err(invalid(
            "Network Configuration must be provided when networkMode 'awsvpc' is specified.",
        ));
    }
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
        deployments: Vec::new(),
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
    };
    deployment_settings(&input, &mut svc)?;
    let first = new_deployment(&svc, ctx.now);
    svc.deployments.push(first);
    let created = ecs.services.transact(|t| {
        if t.get(&k)
            .is_some_and(|s| s.status != ServiceStatus::Inactive)
        {
            return Err(invalid("Creation of service was not idempotent."));
        }
        t.put(&k, svc.clone());
        Ok(svc.clone())
    })?;
    ecs.wake_scheduler();
    Ok(json!({"service": ecs.describe_service(&created, false)}))
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
                    "ServiceNotActiveException",
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
        let group = format!("service:{}", svc.name);
        let tasks: Vec<super::Task> = self
            .live_tasks(&scope, &svc.cluster)
            .into_iter()
            .filter(|t| t.group == group && t.wanted())
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
        let mut dc = json!({"maximumPercent": svc.maximum_percent, "minimumHealthyPercent": svc.minimum_healthy_percent});
        if let Some(cb) = &svc.circuit_breaker {
            dc["deploymentCircuitBreaker"] = json!(cb);
        }
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
            "deploymentController": {"type": "ECS"},
            "createdBy": format!("arn:aws:iam::{}:root", svc.arn.split(':').nth(4).unwrap_or_default()),
            "enableECSManagedTags": false,
            "enableExecuteCommand": svc.enable_execute_command,
            "tags": if include_tags { json!(svc.tags) } else { json!([]) },
        });
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
                let arn = if r.starts_with("arn:") {
                    r.clone()
                } else {
                    ctx.arn("ecs", &format!("service/{}/{}", cluster.name, r))
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
            "ServiceNotActiveException",
            "Service was not ACTIVE.",
        ));
    }
    let new_def = match input.str("taskDefinition") {
        Some(r) => {
            let def = ecs.task_definition(ctx, r)?;
            if def.status != "ACTIVE" {
                return Err(AwsError::new(
                    "ClientException",
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
    let updated = ecs.services.transact(|t| {
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
        if new_deployment_needed {
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

fn delete_service(ecs: &Ecs, ctx: &Ctx, input: Value) -> HandlerResult {
    let cluster = ecs.active_cluster(ctx, input.str("cluster"))?;
    let reference = input.str("service").unwrap_or_default();
    let (k, current) = ecs
        .service(ctx, &cluster.name, reference)
        .ok_or_else(not_found)?;
    if current.status == ServiceStatus::Inactive {
        return Err(AwsError::new(
            "ServiceNotActiveException",
            "Service was not ACTIVE.",
        ));
    }
    let force = input.bool("force").unwrap_or(false);
    if current.desired_count > 0
        && current.scheduling_strategy == SchedulingStrategy::Replica
        && !force
    {
        return Err(invalid(
            "The service cannot be stopped while it is scaled above 0. Set desiredCount to 0 or use force.",
        ));
    }
    let updated = ecs.services.transact(|t| {
        let svc = t.get_mut(&k).ok_or_else(not_found)?;
        svc.status = ServiceStatus::Draining;
        svc.desired_count = 0;
        for d in svc.deployments.iter_mut() {
            d.desired_count = 0;
        }
        Ok(svc.clone())
    })?;
    ecs.wake_scheduler();
    Ok(json!({"service": ecs.describe_service(&updated, false)}))
}
