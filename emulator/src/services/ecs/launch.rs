//! The one way tasks come into being. RunTask, StartTask, the service scheduler (and capacity
//! providers, Application Auto Scaling through the scheduler) all call [`Ecs::launch`] with a
//! typed [`LaunchSpec`]: the task definition is resolved, the per-container plan after overrides is
//! computed once and stored with each task, instances are chosen by placement, and the tasks are
//! written PENDING (PROVISIONING for awsvpc) for the task agent to start.

use super::arns::ResourceArn;
use super::instances::ContainerInstance;
use super::model::{
    AwsVpcConfiguration, CapacityProviderStrategyItem, ContainerStatus, DesiredStatus,
    KeyValuePair, NetworkConfiguration, PlacementConstraint, PlacementStrategy, PropagateTags, Tag,
    TaskOverride, TaskStatus,
};
use super::placement::{self, Candidate, Constraint, Demand, Failure, Strategy};
use super::task::{Task, TaskContainer};
use super::task_definitions::{parse_cpu, parse_memory, TaskDef};
use super::{Cluster, Ecs};
use crate::protocol::codes;
use crate::protocol::AwsError;
use crate::services::input::Input;
use crate::services::Ctx;
use serde_json::Value;
use std::collections::HashMap;

fn invalid(msg: impl Into<String>) -> AwsError {
    AwsError::new(codes::ecs::InvalidParameterException, msg)
}

/// Where the tasks go.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// Chosen by placement (RunTask, REPLICA services): the definition's constraints, then these.
    Place {
        constraints: Vec<PlacementConstraint>,
        strategy: Vec<PlacementStrategy>,
    },
    /// One task on each of these container instances (StartTask, DAEMON services): only the
    /// resource check applies.
    Instances(Vec<String>),
}

impl Default for Target {
    fn default() -> Self {
        Target::Place {
            constraints: Vec::new(),
            strategy: Vec::new(),
        }
    }
}

/// What to launch, in the model's terms (RunTask's and StartTask's members).
#[derive(Debug, Clone, Default)]
pub struct LaunchSpec {
    /// Name or ARN; `None` is the `default` cluster.
    pub cluster: Option<String>,
    /// "family", "family:revision" or an ARN.
    pub task_definition: String,
    /// Tasks to place (ignored for [`Target::Instances`]: one per instance).
    pub count: usize,
    pub target: Target,
    pub overrides: TaskOverride,
    pub started_by: Option<String>,
    /// Default `family:<family>`.
    pub group: Option<String>,
    pub launch_type: Option<String>,
    pub capacity_provider_strategy: Vec<CapacityProviderStrategyItem>,
    pub network_configuration: Option<NetworkConfiguration>,
    pub tags: Vec<Tag>,
    pub propagate_tags: Option<PropagateTags>,
    pub enable_execute_command: bool,
    pub platform_version: Option<String>,
}

/// The tasks written and, for those that could not be placed, why (RunTask's `failures[]`).
#[derive(Debug, Clone, Default)]
pub struct Launched {
    pub tasks: Vec<Task>,
    pub failures: Vec<Failure>,
}

/// One container as the task will run it: the definition with the task's overrides applied.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedContainer {
    pub name: String,
    pub image: String,
    pub essential: bool,
    pub cpu: i64,
    pub memory: Option<i64>,
    pub memory_reservation: Option<i64>,
    pub command: Option<Vec<String>>,
    /// The definition's environment, then the override's (a name set twice keeps the later value).
    pub environment: Vec<KeyValuePair>,
    pub tcp_ports: Vec<u16>,
    pub udp_ports: Vec<u16>,
}

/// What a task needs, computed once from its definition and overrides.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub containers: Vec<PlannedContainer>,
    pub cpu: Option<String>,
    pub memory: Option<String>,
    pub task_role_arn: Option<String>,
    pub reserved_cpu: i64,
    pub reserved_memory: i64,
    pub tcp_ports: Vec<u16>,
    pub udp_ports: Vec<u16>,
    pub network_mode: String,
}

impl Plan {
    /// What placing `count` tasks of this plan asks of the instances.
    fn demand(
        &self,
        group: String,
        constraints: Vec<Constraint>,
        strategies: Vec<Strategy>,
        count: usize,
    ) -> Demand {
        Demand {
            cpu: self.reserved_cpu,
            memory: self.reserved_memory,
            tcp_ports: self.tcp_ports.clone(),
            udp_ports: self.udp_ports.clone(),
            needs_eni: self.network_mode == "awsvpc",
            group,
            required_attributes: Vec::new(),
            constraints,
            strategies,
            count,
        }
    }

    /// The plan of one container, by name.
    pub fn container(&self, name: &str) -> Option<&PlannedContainer> {
        self.containers.iter().find(|c| c.name == name)
    }
}

fn merged_environment(def: &Value, over: Option<&Vec<KeyValuePair>>) -> Vec<KeyValuePair> {
    let mut env: Vec<KeyValuePair> = Vec::new();
    let defined: Vec<KeyValuePair> = def
        .get("environment")
        .cloned()
        .and_then(|e| serde_json::from_value(e).ok())
        .unwrap_or_default();
    for e in defined.into_iter().chain(over.cloned().unwrap_or_default()) {
        if e.name.is_none() || e.value.is_none() {
            continue;
        }
        env.retain(|x| x.name != e.name);
        env.push(e);
    }
    env
}

fn string_list(v: Option<&Value>) -> Option<Vec<String>> {
    v.and_then(Value::as_array).map(|a| {
        a.iter()
            .filter_map(|x| x.as_str().map(str::to_string))
            .collect()
    })
}

fn plan_container(c: &Value, overrides: &TaskOverride, network_mode: &str) -> PlannedContainer {
    let name = c.str("name").unwrap_or_default().to_string();
    let o = overrides.container(&name);
    let mut tcp = Vec::new();
    let mut udp = Vec::new();
    for p in c
        .get("portMappings")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        // Only static host ports count (dynamic and awsvpc ports are not reserved).
        let host = if network_mode == "awsvpc" {
            None
        } else {
            p.i64("hostPort").filter(|h| *h > 0)
        };
        if let Some(h) = host.and_then(|h| u16::try_from(h).ok()) {
            if p.str("protocol") == Some("udp") {
                udp.push(h);
            } else {
                tcp.push(h);
            }
        }
    }
    PlannedContainer {
        image: c.str("image").unwrap_or_default().to_string(),
        essential: c.bool("essential").unwrap_or(true),
        cpu: o.and_then(|o| o.cpu).or(c.i64("cpu")).unwrap_or(0),
        memory: o.and_then(|o| o.memory).or(c.i64("memory")),
        memory_reservation: o
            .and_then(|o| o.memory_reservation)
            .or(c.i64("memoryReservation")),
        command: o
            .and_then(|o| o.command.clone())
            .or_else(|| string_list(c.get("command"))),
        environment: merged_environment(c, o.and_then(|o| o.environment.as_ref())),
        tcp_ports: tcp,
        udp_ports: udp,
        name,
    }
}

/// The task's plan: its containers after overrides and what it reserves on an instance.
pub fn plan(def: &TaskDef, overrides: &TaskOverride) -> Result<Plan, AwsError> {
    let body = &def.body;
    let network_mode = body.str("networkMode").unwrap_or("bridge").to_string();
    let definitions: Vec<&Value> = body
        .get("containerDefinitions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .collect();
    for o in &overrides.container_overrides {
        let name = o.name.as_deref().unwrap_or_default();
        if !definitions.iter().any(|c| c.str("name") == Some(name)) {
            return Err(invalid(format!(
                "Override for container named {name} is not a container in the TaskDefinition."
            )));
        }
    }
    let containers: Vec<PlannedContainer> = definitions
        .iter()
        .map(|c| plan_container(c, overrides, &network_mode))
        .collect();
    let cpu = overrides
        .cpu
        .clone()
        .or(body.str("cpu").map(str::to_string));
    let memory = overrides
        .memory
        .clone()
        .or(body.str("memory").map(str::to_string));
    let task_cpu = match &cpu {
        Some(s) => Some(parse_cpu(s).ok_or_else(|| invalid(format!("Invalid cpu value: {s}")))?),
        None => None,
    };
    let task_memory = match &memory {
        Some(s) => {
            Some(parse_memory(s).ok_or_else(|| invalid(format!("Invalid memory value: {s}")))?)
        }
        None => None,
    };
    // Placement accounting: task cpu else the sum of container cpu; task memory else the sum of
    // each container's reservation (or hard limit).
    let reserved_cpu = task_cpu.unwrap_or_else(|| containers.iter().map(|c| c.cpu).sum());
    let reserved_memory = task_memory.unwrap_or_else(|| {
        containers
            .iter()
            .map(|c| c.memory_reservation.or(c.memory).unwrap_or(0))
            .sum()
    });
    let mut tcp_ports: Vec<u16> = containers
        .iter()
        .flat_map(|c| c.tcp_ports.clone())
        .collect();
    let mut udp_ports: Vec<u16> = containers
        .iter()
        .flat_map(|c| c.udp_ports.clone())
        .collect();
    tcp_ports.sort_unstable();
    udp_ports.sort_unstable();
    if tcp_ports.windows(2).any(|w| w[0] == w[1]) || udp_ports.windows(2).any(|w| w[0] == w[1]) {
        return Err(invalid(
            "Two containers of the task use the same host port.",
        ));
    }
    Ok(Plan {
        containers,
        cpu,
        memory,
        task_role_arn: overrides
            .task_role_arn
            .clone()
            .or(body.str("taskRoleArn").map(str::to_string)),
        reserved_cpu,
        reserved_memory,
        tcp_ports,
        udp_ports,
        network_mode,
    })
}

/// Everything [`Ecs::new_task`] needs besides the instance.
struct Prepared<'a> {
    ctx: &'a Ctx,
    cluster: &'a Cluster,
    def: &'a TaskDef,
    plan: &'a Plan,
    spec: &'a LaunchSpec,
    launch_type: &'a str,
    capacity_provider: Option<String>,
    group: String,
    tags: Vec<Tag>,
}

fn parse_constraints(items: &[PlacementConstraint]) -> Result<Vec<Constraint>, AwsError> {
    if items.len() > placement::MAX_CONSTRAINTS {
        return Err(invalid(
            "You can specify a maximum of 10 constraints per task.",
        ));
    }
    items
        .iter()
        .map(|c| {
            Constraint::parse(
                c.kind.as_deref().unwrap_or_default(),
                c.expression.as_deref(),
            )
            .map_err(invalid)
        })
        .collect()
}

pub(crate) fn parse_strategies(items: &[PlacementStrategy]) -> Result<Vec<Strategy>, AwsError> {
    if items.len() > placement::MAX_STRATEGIES {
        return Err(invalid(
            "You can specify a maximum of 5 strategy rules per task.",
        ));
    }
    items
        .iter()
        .map(|s| {
            Strategy::parse(s.kind.as_deref().unwrap_or_default(), s.field.as_deref())
                .map_err(invalid)
        })
        .collect()
}

/// Constraints of a task definition, as stored in its body.
fn definition_constraints(def: &TaskDef) -> Vec<PlacementConstraint> {
    def.body
        .get("placementConstraints")
        .cloned()
        .and_then(|c| serde_json::from_value(c).ok())
        .unwrap_or_default()
}

/// The launch type (and capacity provider) a launch asks for.
fn launch_type(cluster: &Cluster, spec: &LaunchSpec) -> Result<(String, Option<String>), AwsError> {
    if spec.launch_type.is_some() && !spec.capacity_provider_strategy.is_empty() {
        return Err(invalid(
            "Specifying both a launch type and capacity provider strategy is not supported.",
        ));
    }
    if let Some(lt) = &spec.launch_type {
        return Ok((lt.clone(), None));
    }
    let provider = match spec.capacity_provider_strategy.first() {
        Some(item) => Some(item.capacity_provider.clone()),
        None => cluster
            .default_strategy
            .first()
            .and_then(|s| s.str("capacityProvider"))
            .map(str::to_string),
    };
    match provider {
        Some(p) if p == "FARGATE" || p == "FARGATE_SPOT" => Ok(("FARGATE".into(), Some(p))),
        Some(p) if cluster.capacity_providers.contains(&p) => Ok(("EC2".into(), Some(p))),
        Some(_) => Err(invalid(
            "The specified capacity provider strategy cannot contain a capacity provider that is not associated with the cluster. Associate the capacity provider with the cluster or specify a valid capacity provider and try again.",
        )),
        None => Ok(("EC2".into(), None)),
    }
}

/// The strategy of a launch: the call's, else the cluster's default, as (provider, base, weight).
fn strategy_of(cluster: &Cluster, spec: &LaunchSpec) -> Vec<(String, i64, i64)> {
    if !spec.capacity_provider_strategy.is_empty() {
        return spec
            .capacity_provider_strategy
            .iter()
            .map(|i| {
                (
                    i.capacity_provider.clone(),
                    i.base.unwrap_or(0),
                    i.weight.unwrap_or(0),
                )
            })
            .collect();
    }
    if spec.launch_type.is_some() {
        return Vec::new();
    }
    cluster
        .default_strategy
        .iter()
        .map(|s| {
            (
                s.str("capacityProvider").unwrap_or_default().to_string(),
                s.i64("base").unwrap_or(0),
                s.i64("weight").unwrap_or(0),
            )
        })
        .collect()
}

fn resolve_def(ecs: &Ecs, ctx: &Ctx, reference: &str) -> Result<TaskDef, AwsError> {
    let def = ecs.task_definition(ctx, reference)?;
    if def.status != "ACTIVE" {
        return Err(AwsError::new(
            codes::ecs::ClientException,
            "TaskDefinition is inactive",
        ));
    }
    Ok(def)
}

fn check_awsvpc(plan: &Plan, spec: &LaunchSpec) -> Result<(), AwsError> {
    let has_config = spec
        .network_configuration
        .as_ref()
        .is_some_and(|n| n.awsvpc_configuration.is_some());
    if plan.network_mode == "awsvpc" && !has_config {
        return Err(invalid(
            "Network Configuration must be provided when networkMode 'awsvpc' is specified.",
        ));
    }
    if plan.network_mode != "awsvpc" && has_config {
        return Err(invalid(
            "Network Configuration is not valid for the given networkMode of this task definition.",
        ));
    }
    Ok(())
}

/// The awsvpc subnets, checked against EC2; returns the first subnet's AZ.
fn awsvpc_zone(ecs: &Ecs, ctx: &Ctx, spec: &LaunchSpec) -> Result<Option<String>, AwsError> {
    match spec
        .network_configuration
        .as_ref()
        .and_then(|n| n.awsvpc_configuration.as_ref())
    {
        Some(conf) => check_awsvpc_configuration(ecs, ctx, conf),
        None => Ok(None),
    }
}

/// ECS's checks of an awsvpcConfiguration (RunTask, StartTask, CreateService, UpdateService):
/// 1 to 16 subnets and at most 5 security groups, each known to EC2. Returns the first
/// subnet's AZ.
pub fn check_awsvpc_configuration(
    ecs: &Ecs,
    ctx: &Ctx,
    conf: &AwsVpcConfiguration,
) -> Result<Option<String>, AwsError> {
    if conf.subnets.is_empty() {
        return Err(invalid("subnets can not be empty."));
    }
    if conf.subnets.len() > 16 {
        return Err(invalid("subnets can have at most 16 items."));
    }
    if conf.security_groups.as_ref().is_some_and(|g| g.len() > 5) {
        return Err(invalid("securityGroups can have at most 5 items."));
    }
    let ec2 = &ecs.ec2;
    let mut zone = None;
    for id in &conf.subnets {
        match ec2.subnet(&ctx.account, &ctx.region, id)? {
            Some(s) => {
                zone.get_or_insert(s.availability_zone);
            }
            None => {
                return Err(invalid(format!(
                    "Error retrieving subnet information for [{id}]: The subnet ID '{id}' does not exist (ErrorCode: InvalidSubnetID.NotFound)"
                )))
            }
        }
    }
    for sg in conf.security_groups.iter().flatten() {
        if ec2.security_group(&ctx.account, &ctx.region, sg)?.is_none() {
            return Err(invalid(format!(
                "Error retrieving security group information for [{sg}]: The security group '{sg}' does not exist (ErrorCode: InvalidGroup.NotFound)"
            )));
        }
    }
    Ok(zone)
}

/// The tags a new task carries: the call's, then (propagateTags TASK_DEFINITION) the definition's.
fn task_tags(spec: &LaunchSpec, def: &TaskDef) -> Vec<Tag> {
    let mut tags = spec.tags.clone();
    if spec.propagate_tags == Some(PropagateTags::TaskDefinition) {
        for t in def.tags.iter().cloned() {
            if !tags.iter().any(|x| x.key == t.key) {
                tags.push(t);
            }
        }
    }
    tags
}

impl Ecs {
    /// Launches tasks: the single entry point behind RunTask, StartTask and the scheduler.
    /// Fails as RunTask/StartTask fail (cluster, definition, overrides, network configuration);
    /// tasks that no instance can take are reported in `failures`, not as an error.
    pub fn launch(&self, ctx: &Ctx, spec: &LaunchSpec) -> Result<Launched, AwsError> {
        let cluster = self.active_cluster(ctx, spec.cluster.as_deref())?;
        let def = resolve_def(self, ctx, &spec.task_definition)?;
        let plan = plan(&def, &spec.overrides)?;
        check_awsvpc(&plan, spec)?;
        let zone = awsvpc_zone(self, ctx, spec)?;
        let group = spec
            .group
            .clone()
            .unwrap_or_else(|| format!("family:{}", def.family));
        let launched = match &spec.target {
            Target::Instances(references) => {
                if references.is_empty() || references.len() > 10 {
                    return Err(invalid(
                        "containerInstances must list between 1 and 10 container instances.",
                    ));
                }
                let prepared = Prepared {
                    ctx,
                    cluster: &cluster,
                    def: &def,
                    plan: &plan,
                    spec,
                    launch_type: "EC2",
                    capacity_provider: None,
                    group,
                    tags: task_tags(spec, &def),
                };
                self.launch_on_instances(&prepared, references)
            }
            Target::Place {
                constraints,
                strategy,
            } => {
                let (launch_type, capacity_provider) = launch_type(&cluster, spec)?;
                let prepared = Prepared {
                    ctx,
                    cluster: &cluster,
                    def: &def,
                    plan: &plan,
                    spec,
                    launch_type: &launch_type,
                    capacity_provider,
                    group,
                    tags: task_tags(spec, &def),
                };
                if launch_type == "FARGATE" && prepared.capacity_provider.is_some() {
                    self.launch_fargate_providers(&prepared, zone)?
                } else if launch_type == "FARGATE" {
                    self.launch_fargate(&prepared, zone)?
                } else if prepared.capacity_provider.is_some() {
                    self.launch_with_providers(&prepared, constraints, strategy)?
                } else {
                    self.launch_placed(&prepared, constraints, strategy, None)?
                }
            }
        };
        self.save_new_tasks(ctx, &launched.tasks)?;
        Ok(launched)
    }

    fn launch_fargate(&self, p: &Prepared<'_>, zone: Option<String>) -> Result<Launched, AwsError> {
        let supported = p
            .def
            .body
            .get("compatibilities")
            .and_then(Value::as_array)
            .is_some_and(|c| c.iter().any(|x| x == "FARGATE"));
        if !supported {
            return Err(invalid(
                "Task definition does not support launch_type FARGATE.",
            ));
        }
        Ok(Launched {
            tasks: (0..p.spec.count)
                .map(|_| self.new_task(p, None, zone.clone()))
                .collect(),
            failures: Vec::new(),
        })
    }

    /// How many of the group's (a service's) tasks that should run each capacity provider has:
    /// a strategy applies to them all.
    fn running_by_provider(&self, p: &Prepared<'_>) -> Vec<(String, i64)> {
        if !p.group.starts_with("service:") {
            return Vec::new();
        }
        let mut out: Vec<(String, i64)> = Vec::new();
        let group = p.group.strip_prefix("service:").unwrap_or_default();
        for t in self.service_tasks(&p.ctx.scope(), &p.cluster.name, group) {
            let Some(name) = t.capacity_provider_name.as_ref() else {
                continue;
            };
            if !t.holds_resources() || !t.wanted() {
                continue;
            }
            match out.iter_mut().find(|(n, _)| n == name) {
                Some((_, c)) => *c += 1,
                None => out.push((name.clone(), 1)),
            }
        }
        out
    }

    /// Fargate tasks split over a FARGATE/FARGATE_SPOT strategy (base, then weight, over the
    /// service's tasks), each recording its provider.
    fn launch_fargate_providers(
        &self,
        p: &Prepared<'_>,
        zone: Option<String>,
    ) -> Result<Launched, AwsError> {
        let items = strategy_of(p.cluster, p.spec);
        if items
            .iter()
            .any(|(n, _, _)| n != "FARGATE" && n != "FARGATE_SPOT")
        {
            return Err(invalid(
                "The specified capacity provider strategy cannot contain a mix of capacity providers using Auto Scaling groups and Fargate providers. Specify one or the other and try again.",
            ));
        }
        let existing = self.running_by_provider(p);
        let mut out = Launched::default();
        for (name, count) in
            super::capacity_providers::split_with(&items, &existing, p.spec.count as i64)
        {
            if count == 0 {
                continue;
            }
            let mut spec = p.spec.clone();
            spec.count = count as usize;
            let part = Prepared {
                ctx: p.ctx,
                cluster: p.cluster,
                def: p.def,
                plan: p.plan,
                spec: &spec,
                launch_type: p.launch_type,
                capacity_provider: Some(name),
                group: p.group.clone(),
                tags: p.tags.clone(),
            };
            out.tasks
                .extend(self.launch_fargate(&part, zone.clone())?.tasks);
        }
        Ok(out)
    }

    /// Tasks split over the strategy's Auto Scaling group providers (base, then weight); on each
    /// provider's instances those that do not fit wait in PROVISIONING for capacity.
    fn launch_with_providers(
        &self,
        p: &Prepared<'_>,
        constraints: &[PlacementConstraint],
        strategy: &[PlacementStrategy],
    ) -> Result<Launched, AwsError> {
        let items = strategy_of(p.cluster, p.spec);
        for (name, _, _) in &items {
            if name == "FARGATE" || name == "FARGATE_SPOT" {
                return Err(invalid(
                    "The specified capacity provider strategy cannot contain a mix of capacity providers using Auto Scaling groups and Fargate providers. Specify one or the other and try again.",
                ));
            }
            if !p.cluster.capacity_providers.contains(name) {
                return Err(invalid(
                    "The specified capacity provider strategy cannot contain a capacity provider that is not associated with the cluster. Associate the capacity provider with the cluster or specify a valid capacity provider and try again.",
                ));
            }
        }
        let existing = self.running_by_provider(p);
        let mut out = Launched::default();
        for (name, count) in
            super::capacity_providers::split_with(&items, &existing, p.spec.count as i64)
        {
            if count == 0 {
                continue;
            }
            let mut spec = p.spec.clone();
            spec.count = count as usize;
            let part = Prepared {
                ctx: p.ctx,
                cluster: p.cluster,
                def: p.def,
                plan: p.plan,
                spec: &spec,
                launch_type: p.launch_type,
                capacity_provider: Some(name.clone()),
                group: p.group.clone(),
                tags: p.tags.clone(),
            };
            let launched = self.launch_placed(&part, constraints, strategy, Some(&name))?;
            out.tasks.extend(launched.tasks);
            out.failures.extend(launched.failures);
        }
        Ok(out)
    }

    fn launch_placed(
        &self,
        p: &Prepared<'_>,
        constraints: &[PlacementConstraint],
        strategy: &[PlacementStrategy],
        provider: Option<&str>,
    ) -> Result<Launched, AwsError> {
        let call_constraints = parse_constraints(constraints)?;
        let mut all_constraints = parse_constraints(&definition_constraints(p.def))?;
        all_constraints.extend(call_constraints);
        let strategies = parse_strategies(strategy)?;
        let (mut instances, mut candidates) = self.candidates(&p.ctx.scope(), &p.cluster.name);
        if let Some(name) = provider {
            // Only the provider's instances; what does not fit waits for the group to grow.
            let keep: Vec<bool> = instances
                .iter()
                .map(|i| i.capacity_provider_name.as_deref() == Some(name))
                .collect();
            let mut k = keep.iter();
            instances.retain(|_| *k.next().unwrap_or(&false));
            let mut k = keep.iter();
            candidates.retain(|_| *k.next().unwrap_or(&false));
            let demand = p
                .plan
                .demand(p.group.clone(), all_constraints, strategies, p.spec.count);
            let placed = placement::place(&candidates, &demand, &mut rand::rng());
            let mut tasks: Vec<Task> = placed
                .chosen
                .iter()
                .filter_map(|idx| instances.get(*idx))
                .map(|i| self.new_task(p, Some(i), None))
                .collect();
            while tasks.len() < p.spec.count {
                let mut t = self.new_task(p, None, None);
                t.last_status = TaskStatus::Provisioning;
                t.awaiting_capacity = true;
                tasks.push(t);
            }
            return Ok(Launched {
                tasks,
                failures: Vec::new(),
            });
        }
        if instances.is_empty() {
            return Err(invalid(
                "No Container Instances were found in your cluster.",
            ));
        }
        let demand = p
            .plan
            .demand(p.group.clone(), all_constraints, strategies, p.spec.count);
        let placed = placement::place(&candidates, &demand, &mut rand::rng());
        if placed.no_instances() {
            return Err(invalid(
                "No Container Instances were found in your cluster.",
            ));
        }
        Ok(Launched {
            tasks: placed
                .chosen
                .iter()
                .filter_map(|idx| instances.get(*idx))
                .map(|i| self.new_task(p, Some(i), None))
                .collect(),
            failures: placed.failures,
        })
    }

    fn launch_on_instances(&self, p: &Prepared<'_>, references: &[String]) -> Launched {
        let mut out = Launched::default();
        let scope = p.ctx.scope();
        for reference in references {
            let Some((_, instance)) = self.instance(p.ctx, &p.cluster.name, reference) else {
                out.failures.push(Failure {
                    arn: reference.clone(),
                    reason: "MISSING".into(),
                });
                continue;
            };
            if instance.status == "INACTIVE" {
                out.failures.push(Failure {
                    arn: instance.arn.clone(),
                    reason: "INACTIVE".into(),
                });
                continue;
            }
            // Tasks started earlier in this call count against the instance too.
            let mut live = self.instance_tasks(&scope, &p.cluster.name, &instance.arn);
            live.extend(out.tasks.iter().cloned());
            let mut c = super::tasks::candidate(&instance, &live);
            // Bypasses the scheduler's constraints and strategies, not the resource check.
            if c.status == "DRAINING" {
                c.status = "ACTIVE".into();
            }
            let demand = p.plan.demand(p.group.clone(), Vec::new(), Vec::new(), 1);
            let placed = placement::place(&[c], &demand, &mut rand::rng());
            if placed.chosen.is_empty() {
                out.failures.extend(placed.failures);
            } else {
                out.tasks.push(self.new_task(p, Some(&instance), None));
            }
        }
        out
    }

    fn new_task(
        &self,
        p: &Prepared<'_>,
        instance: Option<&ContainerInstance>,
        az: Option<String>,
    ) -> Task {
        let ctx = p.ctx;
        let id = uuid::Uuid::new_v4().simple().to_string();
        let arn = ctx.arn("ecs", &format!("task/{}/{}", p.cluster.name, id));
        let containers = p
            .plan
            .containers
            .iter()
            .map(|c| TaskContainer {
                name: c.name.clone(),
                arn: ctx.arn(
                    "ecs",
                    &format!(
                        "container/{}/{}/{}",
                        p.cluster.name,
                        id,
                        uuid::Uuid::new_v4()
                    ),
                ),
                image: c.image.clone(),
                last_status: ContainerStatus::Pending,
                essential: c.essential,
                cpu: c.cpu,
                memory: c.memory,
                memory_reservation: c.memory_reservation,
                command: c.command.clone(),
                environment: c.environment.clone(),
                ..Default::default()
            })
            .collect();
        let awsvpc = p.plan.network_mode == "awsvpc";
        Task {
            arn,
            id,
            cluster: p.cluster.name.clone(),
            cluster_arn: p.cluster.arn.clone(),
            task_definition_arn: p.def.arn.clone(),
            family: p.def.family.clone(),
            revision: p.def.revision,
            container_instance_arn: instance.map(|i| i.arn.clone()),
            ec2_instance_id: instance.map(|i| i.ec2_instance_id.clone()),
            host_ip: instance.map(|i| i.host_ip.clone()),
            launch_type: p.launch_type.to_string(),
            capacity_provider_name: p.capacity_provider.clone(),
            // awsvpc tasks provision their ENI first, as in ECS.
            last_status: if awsvpc {
                TaskStatus::Provisioning
            } else {
                TaskStatus::Pending
            },
            desired_status: DesiredStatus::Running,
            created_at: ctx.now,
            started_by: p.spec.started_by.clone(),
            group: p.group.clone(),
            cpu: p.plan.cpu.clone(),
            memory: p.plan.memory.clone(),
            reserved_cpu: p.plan.reserved_cpu,
            reserved_memory: p.plan.reserved_memory,
            reserved_tcp_ports: p.plan.tcp_ports.clone(),
            reserved_udp_ports: p.plan.udp_ports.clone(),
            network_mode: p.plan.network_mode.clone(),
            network_configuration: p.spec.network_configuration.clone(),
            overrides: p.spec.overrides.clone(),
            task_role_arn: p.plan.task_role_arn.clone(),
            planned: true,
            tags: p.tags.clone(),
            attachments: Vec::new(),
            availability_zone: az.or_else(|| instance.map(|i| i.availability_zone.clone())),
            enable_execute_command: p.spec.enable_execute_command,
            platform_version: (p.launch_type == "FARGATE").then(|| {
                p.spec
                    .platform_version
                    .clone()
                    .unwrap_or_else(|| "1.4.0".to_string())
            }),
            containers,
            version: 1,
            endpoint_id: uuid::Uuid::new_v4().to_string(),
            health_status: None,
            ..Default::default()
        }
    }

    fn save_new_tasks(&self, ctx: &Ctx, tasks: &[Task]) -> Result<(), AwsError> {
        if tasks.is_empty() {
            return Ok(());
        }
        let scope = ctx.scope();
        self.tasks.transact::<_, AwsError, _>(|t| {
            for task in tasks {
                t.put(
                    &format!("{scope}{}/{}", task.cluster, task.id),
                    task.clone(),
                );
            }
            Ok(())
        })?;
        self.wake_agent();
        Ok(())
    }

    /// Placement candidates: the cluster's registered instances with what they have left. The
    /// cluster's tasks are read in place (not copied): RunTask's cost must not grow with the
    /// size of every task row the cluster holds.
    pub(crate) fn candidates(
        &self,
        scope: &str,
        cluster: &str,
    ) -> (Vec<ContainerInstance>, Vec<Candidate>) {
        let instances: Vec<ContainerInstance> = self
            .cluster_instances(scope, cluster)
            .into_iter()
            .filter(|i| i.status != "INACTIVE")
            .collect();
        let prefix = format!("{scope}{cluster}/");
        let candidates = self.tasks.read(|rows| {
            let mut by_instance: HashMap<&str, Vec<&Task>> = HashMap::new();
            for t in rows
                .range(prefix.clone()..)
                .take_while(|(k, _)| k.starts_with(&prefix))
                .map(|(_, t)| t)
                .filter(|t| t.holds_resources())
            {
                if let Some(arn) = t.container_instance_arn.as_deref() {
                    by_instance.entry(arn).or_default().push(t);
                }
            }
            instances
                .iter()
                .map(|i| {
                    let on = by_instance.get(i.arn.as_str()).map(Vec::as_slice);
                    super::tasks::candidate(i, on.unwrap_or_default().iter().copied())
                })
                .collect()
        });
        (instances, candidates)
    }

    /// Places the tasks waiting for `provider`'s capacity on its instances in `cluster`, oldest
    /// first, with the definition's constraints (the call's strategy is not kept). Returns how
    /// many were placed; they go PENDING (awsvpc: stay PROVISIONING) for the task agent.
    pub fn place_waiting(&self, scope: &str, cluster: &str, provider: &str) -> usize {
        let prefix = format!("{scope}{cluster}/");
        let mut waiting: Vec<(String, Task)> = self.tasks.read(|rows| {
            rows.range(prefix.clone()..)
                .take_while(|(k, _)| k.starts_with(&prefix))
                .filter(|(_, t)| {
                    t.awaiting_capacity
                        && t.wanted()
                        && t.capacity_provider_name.as_deref() == Some(provider)
                })
                .map(|(k, t)| (k.clone(), t.clone()))
                .collect()
        });
        waiting.sort_by(|a, b| a.1.created_at.total_cmp(&b.1.created_at));
        let mut placed = 0;
        for (key, task) in waiting {
            let (instances, candidates) = self.candidates(scope, cluster);
            let (instances, candidates): (Vec<_>, Vec<_>) = instances
                .into_iter()
                .zip(candidates)
                .filter(|(i, _)| i.capacity_provider_name.as_deref() == Some(provider))
                .unzip();
            if instances.is_empty() {
                break;
            }
            let Some(def) = self.task_definition_by_arn(&task.task_definition_arn) else {
                continue;
            };
            let Ok(plan) = plan(&def, &task.overrides) else {
                continue;
            };
            let constraints = parse_constraints(&definition_constraints(&def)).unwrap_or_default();
            let demand = plan.demand(task.group.clone(), constraints, Vec::new(), 1);
            let chosen = placement::place(&candidates, &demand, &mut rand::rng());
            let Some(instance) = chosen.chosen.first().and_then(|i| instances.get(*i)) else {
                continue;
            };
            let done = self.tasks.transact::<_, AwsError, _>(|t| {
                if let Some(x) = t.get_mut(&key) {
                    if x.awaiting_capacity && x.wanted() {
                        x.awaiting_capacity = false;
                        x.container_instance_arn = Some(instance.arn.clone());
                        x.ec2_instance_id = Some(instance.ec2_instance_id.clone());
                        x.host_ip = Some(instance.host_ip.clone());
                        x.availability_zone = Some(instance.availability_zone.clone());
                        if x.network_mode != "awsvpc" {
                            x.last_status = TaskStatus::Pending;
                        }
                        x.version += 1;
                        return Ok(true);
                    }
                }
                Ok(false)
            });
            if done.unwrap_or(false) {
                placed += 1;
            }
        }
        if placed > 0 {
            self.wake_agent();
        }
        placed
    }

    /// Unstopped tasks on one container instance.
    fn instance_tasks(&self, scope: &str, cluster: &str, instance_arn: &str) -> Vec<Task> {
        let prefix = format!("{scope}{cluster}/");
        self.tasks.read(|rows| {
            rows.range(prefix.clone()..)
                .take_while(|(k, _)| k.starts_with(&prefix))
                .map(|(_, t)| t)
                .filter(|t| {
                    t.holds_resources() && t.container_instance_arn.as_deref() == Some(instance_arn)
                })
                .cloned()
                .collect()
        })
    }

    /// Stores the plan of tasks written before plans were stored with the task (a data dir of an
    /// older version): computed from their definition and overrides, as launch computes it.
    pub(crate) fn migrate_task_plans(&self) {
        let unplanned: Vec<(String, Task)> = self.tasks.read(|rows| {
            rows.iter()
                .filter(|(_, t)| !t.planned)
                .map(|(k, t)| (k.clone(), t.clone()))
                .collect()
        });
        for (key, task) in unplanned {
            let Some(def) = self.task_definition_by_arn(&task.task_definition_arn) else {
                continue;
            };
            let Ok(plan) = plan(&def, &task.overrides) else {
                continue;
            };
            let _ = self.tasks.record::<_, AwsError, _>(|t| {
                if let Some(task) = t.get_mut(&key) {
                    task.apply_plan(&plan);
                }
                Ok(())
            });
        }
    }
}

impl Task {
    /// Stores a plan's per-container command and environment and the task role.
    pub(crate) fn apply_plan(&mut self, plan: &Plan) {
        for c in self.containers.iter_mut() {
            if let Some(p) = plan.container(&c.name) {
                c.command = p.command.clone();
                c.environment = p.environment.clone();
            }
        }
        self.task_role_arn = plan.task_role_arn.clone();
        self.planned = true;
    }
}

/// The task id of a task ARN or id.
pub fn task_id(reference: &str) -> String {
    match ResourceArn::parse(reference) {
        Some(a) => a.path.rsplit('/').next().unwrap_or_default().to_string(),
        None => reference.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn def(body: Value) -> TaskDef {
        TaskDef {
            arn: "arn:aws:ecs:us-east-1:0:task-definition/web:1".into(),
            family: "web".into(),
            revision: 1,
            status: "ACTIVE".into(),
            body,
            tags: vec![],
        }
    }

    #[test]
    fn the_plan_applies_overrides_once() {
        let d = def(
            json!({"taskRoleArn": "arn:aws:iam::0:role/def", "containerDefinitions": [
                {"name": "app", "image": "busybox", "cpu": 10, "memory": 128, "command": ["a"],
                 "environment": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                 "portMappings": [{"containerPort": 80, "hostPort": 8080}]},
                {"name": "side", "image": "busybox", "memoryReservation": 32}
            ]}),
        );
        let overrides: TaskOverride = serde_json::from_value(json!({
            "taskRoleArn": "arn:aws:iam::0:role/over",
            "containerOverrides": [{"name": "app", "command": ["b"], "memory": 256,
                "environment": [{"name": "B", "value": "over"}]}]
        }))
        .expect("overrides");
        let p = plan(&d, &overrides).expect("plan");
        let app = p.container("app").expect("app");
        assert_eq!(app.command, Some(vec!["b".to_string()]));
        assert_eq!(app.memory, Some(256));
        let env: Vec<(String, String)> = app
            .environment
            .iter()
            .map(|e| {
                (
                    e.name.clone().unwrap_or_default(),
                    e.value.clone().unwrap_or_default(),
                )
            })
            .collect();
        assert_eq!(
            env,
            vec![("A".into(), "1".into()), ("B".into(), "over".into())]
        );
        assert_eq!(p.reserved_memory, 256 + 32);
        assert_eq!(p.reserved_cpu, 10);
        assert_eq!(p.tcp_ports, vec![8080]);
        assert_eq!(p.task_role_arn.as_deref(), Some("arn:aws:iam::0:role/over"));
        let bad: TaskOverride =
            serde_json::from_value(json!({"containerOverrides": [{"name": "nope"}]})).expect("o");
        assert_eq!(
            plan(&d, &bad).err().map(|e| e.message),
            Some(
                "Override for container named nope is not a container in the TaskDefinition."
                    .into()
            )
        );
    }
}
