//! Tasks: RunTask, StartTask, StopTask, DescribeTasks, ListTasks. These record desired state; the
//! task agent (controllers/agent.rs) drives Docker towards it and records what it observes.

use super::arns::ResourceArn;
use super::instances::ContainerInstance;
use super::placement::{self, Candidate, Constraint, Demand, Strategy};
use super::task::{Task, TaskContainer};
use super::task_definitions::{parse_cpu, parse_memory, TaskDef};
use super::Ecs;
use crate::protocol::AwsError;
use crate::services::input::Input;
use crate::services::page::{page, with_next};
use crate::services::{Ctx, HandlerResult, Registry};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

pub fn register(r: &mut Registry, ecs: &Arc<Ecs>) {
    r.sync("ecs", "RunTask", ecs, run_task);
    r.sync("ecs", "StartTask", ecs, start_task);
    r.sync("ecs", "StopTask", ecs, stop_task);
    r.sync("ecs", "DescribeTasks", ecs, describe_tasks);
    r.sync("ecs", "ListTasks", ecs, list_tasks);
}

fn invalid(msg: impl Into<String>) -> AwsError {
    AwsError::new("InvalidParameterException", msg)
}

/// One container as the task will run it, after overrides.
struct PlannedContainer {
    name: String,
    image: String,
    essential: bool,
    cpu: i64,
    memory: Option<i64>,
    memory_reservation: Option<i64>,
    tcp_ports: Vec<u16>,
    udp_ports: Vec<u16>,
}

/// What a task needs, computed once from its definition and overrides.
pub(crate) struct Plan {
    containers: Vec<PlannedContainer>,
    cpu: Option<String>,
    memory: Option<String>,
    reserved_cpu: i64,
    reserved_memory: i64,
    tcp_ports: Vec<u16>,
    udp_ports: Vec<u16>,
    network_mode: String,
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
}

fn plan(def: &TaskDef, overrides: &Value) -> Result<Plan, AwsError> {
    let body = &def.body;
    let network_mode = body.str("networkMode").unwrap_or("bridge").to_string();
    let cpu = overrides.str("cpu").or(body.str("cpu")).map(str::to_string);
    let memory = overrides
        .str("memory")
        .or(body.str("memory"))
        .map(str::to_string);
    let container_overrides = overrides
        .get("containerOverrides")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for o in &container_overrides {
        let name = o.str("name").unwrap_or_default();
        if !body
            .get("containerDefinitions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .any(|c| c.str("name") == Some(name))
        {
            return Err(invalid(format!(
                "Override for container named {name} is not a container in the TaskDefinition."
            )));
        }
    }
    let mut containers = Vec::new();
    for c in body
        .get("containerDefinitions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = c.str("name").unwrap_or_default().to_string();
        let o = container_overrides
            .iter()
            .find(|o| o.str("name") == Some(&name));
        let get = |k: &str| o.and_then(|o| o.i64(k)).or(c.i64(k));
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
        containers.push(PlannedContainer {
            name,
            image: c.str("image").unwrap_or_default().to_string(),
            essential: c.bool("essential").unwrap_or(true),
            cpu: get("cpu").unwrap_or(0),
            memory: get("memory"),
            memory_reservation: get("memoryReservation"),
            tcp_ports: tcp,
            udp_ports: udp,
        });
    }
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
        reserved_cpu,
        reserved_memory,
        tcp_ports,
        udp_ports,
        network_mode,
    })
}

/// Launch settings shared by RunTask and StartTask.
struct Launch<'a> {
    ctx: &'a Ctx,
    cluster: &'a super::Cluster,
    def: &'a TaskDef,
    plan: &'a Plan,
    input: &'a Value,
    launch_type: &'a str,
    capacity_provider: Option<String>,
    group: String,
}

impl Ecs {
    fn new_task(
        &self,
        l: &Launch<'_>,
        instance: Option<&ContainerInstance>,
        az: Option<String>,
    ) -> Task {
        let ctx = l.ctx;
        let id = uuid::Uuid::new_v4().simple().to_string();
        let arn = ctx.arn("ecs", &format!("task/{}/{}", l.cluster.name, id));
        let containers = l
            .plan
            .containers
            .iter()
            .map(|c| TaskContainer {
                name: c.name.clone(),
                arn: ctx.arn(
                    "ecs",
                    &format!(
                        "container/{}/{}/{}",
                        l.cluster.name,
                        id,
                        uuid::Uuid::new_v4()
                    ),
                ),
                image: c.image.clone(),
                last_status: "PENDING".into(),
                essential: c.essential,
                cpu: c.cpu,
                memory: c.memory,
                memory_reservation: c.memory_reservation,
                ..Default::default()
            })
            .collect();
        let mut tags = l
            .input
            .get("tags")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if l.input.str("propagateTags") == Some("TASK_DEFINITION") {
            for t in &l.def.tags {
                if !tags.iter().any(|x| x.str("key") == t.str("key")) {
                    tags.push(t.clone());
                }
            }
        }
        let awsvpc = l.plan.network_mode == "awsvpc";
        Task {
            arn,
            id,
            cluster: l.cluster.name.clone(),
            cluster_arn: l.cluster.arn.clone(),
            task_definition_arn: l.def.arn.clone(),
            family: l.def.family.clone(),
            revision: l.def.revision,
            container_instance_arn: instance.map(|i| i.arn.clone()),
            ec2_instance_id: instance.map(|i| i.ec2_instance_id.clone()),
            host_ip: instance.map(|i| i.host_ip.clone()),
            launch_type: l.launch_type.to_string(),
            capacity_provider_name: l.capacity_provider.clone(),
            // awsvpc tasks provision their ENI first, as in ECS.
            last_status: if awsvpc {
                "PROVISIONING".into()
            } else {
                "PENDING".into()
            },
            desired_status: "RUNNING".into(),
            created_at: ctx.now,
            started_by: l.input.str("startedBy").map(str::to_string),
            group: l.group.clone(),
            cpu: l.plan.cpu.clone(),
            memory: l.plan.memory.clone(),
            reserved_cpu: l.plan.reserved_cpu,
            reserved_memory: l.plan.reserved_memory,
            reserved_tcp_ports: l.plan.tcp_ports.clone(),
            reserved_udp_ports: l.plan.udp_ports.clone(),
            network_mode: l.plan.network_mode.clone(),
            network_configuration: l
                .input
                .get("networkConfiguration")
                .cloned()
                .unwrap_or(Value::Null),
            overrides: l
                .input
                .get("overrides")
                .cloned()
                .unwrap_or_else(|| json!({"containerOverrides": []})),
            tags,
            attachments: Vec::new(),
            availability_zone: az.or_else(|| instance.map(|i| i.availability_zone.clone())),
            enable_execute_command: l.input.bool("enableExecuteCommand").unwrap_or(false),
            platform_version: (l.launch_type == "FARGATE").then(|| {
                l.input
                    .str("platformVersion")
                    .unwrap_or("1.4.0")
                    .to_string()
            }),
            containers,
            version: 1,
            endpoint_id: uuid::Uuid::new_v4().to_string(),
            health_status: None,
            ..Default::default()
        }
    }

    fn save_new_tasks(&self, ctx: &Ctx, tasks: &[Task]) -> Result<(), AwsError> {
        let scope = ctx.scope();
        self.tasks.transact(|t| {
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

    /// Placement candidates: the cluster's registered instances with what they have left.
    pub(crate) fn candidates(
        &self,
        scope: &str,
        cluster: &str,
    ) -> (Vec<ContainerInstance>, Vec<Candidate>) {
        let tasks = self.live_tasks(scope, cluster);
        let instances: Vec<ContainerInstance> = self
            .cluster_instances(scope, cluster)
            .into_iter()
            .filter(|i| i.status != "INACTIVE")
            .collect();
        let candidates = instances.iter().map(|i| candidate(i, &tasks)).collect();
        (instances, candidates)
    }

    /// Marks matching unstopped tasks of a cluster for stopping.
    pub fn stop_tasks_where(
        &self,
        ctx: &Ctx,
        cluster: &str,
        pred: impl Fn(&Task) -> bool,
        stop_code: &str,
        reason: &str,
    ) -> Result<usize, AwsError> {
        let prefix = format!("{}{}/", ctx.scope(), cluster);
        let n = self.tasks.transact(|t| {
            let mut n = 0;
            for key in t.keys(&prefix) {
                let Some(task) = t.get(&key) else { continue };
                if task.desired_status == "STOPPED" || task.is_stopped() || !pred(task) {
                    continue;
                }
                if let Some(task) = t.get_mut(&key) {
                    mark_stopping(task, ctx.now, stop_code, reason);
                    n += 1;
                }
            }
            Ok(n)
        })?;
        if n > 0 {
            self.wake_agent();
        }
        Ok(n)
    }

    /// A task by ARN or id in a cluster.
    pub fn task(&self, scope: &str, cluster: &str, reference: &str) -> Option<(String, Task)> {
        let id = match ResourceArn::parse(reference) {
            Some(a) => a.path.rsplit('/').next().unwrap_or_default().to_string(),
            None => reference.to_string(),
        };
        let key = format!("{scope}{cluster}/{id}");
        self.tasks.get(&key).map(|t| (key, t))
    }
}

pub fn mark_stopping(task: &mut Task, now: f64, stop_code: &str, reason: &str) {
    task.desired_status = "STOPPED".into();
    task.stopping_at.get_or_insert(now);
    task.stop_code.get_or_insert_with(|| stop_code.to_string());
    task.stopped_reason
        .get_or_insert_with(|| reason.to_string());
    task.version += 1;
}

pub(crate) fn candidate(i: &ContainerInstance, tasks: &[Task]) -> Candidate {
    let rem = i.remaining(tasks);
    let attributes: BTreeMap<String, Option<String>> = i
        .attributes
        .iter()
        .filter_map(|a| {
            a.str("name")
                .map(|n| (n.to_string(), a.str("value").map(str::to_string)))
        })
        .collect();
    Candidate {
        arn: i.arn.clone(),
        ec2_instance_id: i.ec2_instance_id.clone(),
        status: i.status.clone(),
        agent_connected: i.agent_connected,
        agent_version: super::instances::AGENT_VERSION.to_string(),
        registered_at: i.registered_at,
        attributes,
        remaining_cpu: rem.cpu,
        remaining_memory: rem.memory,
        used_tcp_ports: rem.tcp_ports,
        used_udp_ports: rem.udp_ports,
        running_tasks_count: rem.running,
        task_groups: tasks
            .iter()
            .filter(|t| t.container_instance_arn.as_deref() == Some(&i.arn))
            .map(|t| t.group.clone())
            .collect(),
        eni_remaining: None,
    }
}

fn parse_constraints(v: Option<&Value>) -> Result<Vec<Constraint>, AwsError> {
    let items: Vec<&Value> = v.and_then(Value::as_array).into_iter().flatten().collect();
    if items.len() > placement::MAX_CONSTRAINTS {
        return Err(invalid(
            "You can specify a maximum of 10 constraints per task.",
        ));
    }
    items
        .into_iter()
        .map(|c| {
            Constraint::parse(c.str("type").unwrap_or_default(), c.str("expression"))
                .map_err(invalid)
        })
        .collect()
}

pub(crate) fn parse_strategies(v: Option<&Value>) -> Result<Vec<Strategy>, AwsError> {
    let items: Vec<&Value> = v.and_then(Value::as_array).into_iter().flatten().collect();
    if items.len() > placement::MAX_STRATEGIES {
        return Err(invalid(
            "You can specify a maximum of 5 strategy rules per task.",
        ));
    }
    items
        .into_iter()
        .map(|s| {
            Strategy::parse(s.str("type").unwrap_or_default(), s.str("field")).map_err(invalid)
        })
        .collect()
}

/// The launch type (and capacity provider) a RunTask asks for.
fn launch_type(
    cluster: &super::Cluster,
    input: &Value,
) -> Result<(String, Option<String>), AwsError> {
    let strategy = input
        .get("capacityProviderStrategy")
        .and_then(Value::as_array)
        .cloned();
    if input.str("launchType").is_some() && strategy.as_ref().is_some_and(|s| !s.is_empty()) {
        return Err(invalid(
            "Specifying both a launch type and capacity provider strategy is not supported.",
        ));
    }
    if let Some(lt) = input.str("launchType") {
        return Ok((lt.to_string(), None));
    }
    let strategy = strategy
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| cluster.default_strategy.clone());
    match strategy.first().and_then(|s| s.str("capacityProvider")) {
        Some(p) if p == "FARGATE" || p == "FARGATE_SPOT" => {
            Ok(("FARGATE".into(), Some(p.to_string())))
        }
        Some(p) => Err(invalid(format!(
            "The specified capacity provider {p} was not found."
        ))),
        None => Ok(("EC2".into(), None)),
    }
}

fn resolve_def(ecs: &Ecs, ctx: &Ctx, input: &Value) -> Result<TaskDef, AwsError> {
    let def = ecs.task_definition(ctx, input.str("taskDefinition").unwrap_or_default())?;
    if def.status != "ACTIVE" {
        return Err(AwsError::new(
            "ClientException",
            "TaskDefinition is inactive",
        ));
    }
    Ok(def)
}

/// The awsvpc subnets of a RunTask, checked against EC2; returns the first subnet's AZ.
fn awsvpc_zone(ecs: &Ecs, ctx: &Ctx, input: &Value) -> Result<Option<String>, AwsError> {
    let Some(conf) = input
        .get("networkConfiguration")
        .and_then(|n| n.get("awsvpcConfiguration"))
    else {
        return Ok(None);
    };
    let subnets = conf.string_list("subnets");
    if subnets.is_empty() {
        return Err(invalid("subnets can not be empty."));
    }
    let Some(ec2) = ecs.ec2.get() else {
        return Ok(None);
    };
    let mut zone = None;
    for id in &subnets {
        match ec2.subnet(&ctx.account, &ctx.region, id)? {
            Some(s) => {
                zone.get_or_insert(s.availability_zone);
            }
            None => {
                return Err(invalid(format!(
                    "Error retrieving subnet information for [{id}]: The subnet ID '{id}' does not exist (Service: AmazonEC2; Status Code: 400; Error Code: InvalidSubnetID.NotFound)"
                )))
            }
        }
    }
    for sg in conf.string_list("securityGroups") {
        if ec2
            .security_group(&ctx.account, &ctx.region, &sg)?
            .is_none()
        {
            return Err(invalid(format!(
                "Error retrieving security group information for [{sg}]: The security group '{sg}' does not exist (Service: AmazonEC2; Status Code: 400; Error Code: InvalidGroup.NotFound)"
            )));
        }
    }
    Ok(zone)
}

fn check_awsvpc(plan: &Plan, input: &Value) -> Result<(), AwsError> {
    let has_config = input
        .get("networkConfiguration")
        .and_then(|n| n.get("awsvpcConfiguration"))
        .is_some();
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

pub(crate) fn run_task(ecs: &Ecs, ctx: &Ctx, input: Value) -> HandlerResult {
    let cluster = ecs.active_cluster(ctx, input.str("cluster"))?;
    let def = resolve_def(ecs, ctx, &input)?;
    let count = input.i64("count").unwrap_or(1);
    if !(1..=10).contains(&count) {
        return Err(invalid("Count must be between 1 and 10."));
    }
    let overrides = input.get("overrides").cloned().unwrap_or(Value::Null);
    let plan = plan(&def, &overrides)?;
    check_awsvpc(&plan, &input)?;
    let zone = awsvpc_zone(ecs, ctx, &input)?;
    let (launch_type, capacity_provider) = launch_type(&cluster, &input)?;
    let group = input
        .str("group")
        .map(str::to_string)
        .unwrap_or_else(|| format!("family:{}", def.family));
    let launch = Launch {
        ctx,
        cluster: &cluster,
        def: &def,
        plan: &plan,
        input: &input,
        launch_type: &launch_type,
        capacity_provider,
        group: group.clone(),
    };
    let mut tasks = Vec::new();
    let mut failures = Vec::new();
    if launch_type == "FARGATE" {
        let requires = def
            .body
            .get("compatibilities")
            .and_then(Value::as_array)
            .is_some_and(|c| c.iter().any(|x| x == "FARGATE"));
        if !requires {
            return Err(invalid(
                "Task definition does not support launch_type FARGATE.",
            ));
        }
        for _ in 0..count {
            tasks.push(ecs.new_task(&launch, None, zone.clone()));
        }
    } else {
        let constraints = parse_constraints(input.get("placementConstraints"))?;
        let mut all_constraints = parse_constraints(def.body.get("placementConstraints"))?;
        all_constraints.extend(constraints);
        let strategies = parse_strategies(input.get("placementStrategy"))?;
        let (instances, candidates) = ecs.candidates(&ctx.scope(), &cluster.name);
        if instances.is_empty() {
            return Err(invalid(
                "No Container Instances were found in your cluster.",
            ));
        }
        let demand = plan.demand(group, all_constraints, strategies, count as usize);
        let placed = placement::place(&candidates, &demand, &mut rand::rng());
        if placed.no_instances() {
            return Err(invalid(
                "No Container Instances were found in your cluster.",
            ));
        }
        for idx in placed.chosen {
            if let Some(i) = instances.get(idx) {
                tasks.push(ecs.new_task(&launch, Some(i), None));
            }
        }
        failures = placed
            .failures
            .into_iter()
            .map(|f| json!({"arn": f.arn, "reason": f.reason}))
            .collect();
    }
    ecs.save_new_tasks(ctx, &tasks)?;
    Ok(
        json!({"tasks": tasks.iter().map(|t| t.describe(true)).collect::<Vec<_>>(), "failures": failures}),
    )
}

pub(crate) fn start_task(ecs: &Ecs, ctx: &Ctx, input: Value) -> HandlerResult {
    let cluster = ecs.active_cluster(ctx, input.str("cluster"))?;
    let def = resolve_def(ecs, ctx, &input)?;
    let overrides = input.get("overrides").cloned().unwrap_or(Value::Null);
    let plan = plan(&def, &overrides)?;
    check_awsvpc(&plan, &input)?;
    awsvpc_zone(ecs, ctx, &input)?;
    let references = input.string_list("containerInstances");
    if references.is_empty() || references.len() > 10 {
        return Err(invalid(
            "containerInstances must list between 1 and 10 container instances.",
        ));
    }
    let group = input
        .str("group")
        .map(str::to_string)
        .unwrap_or_else(|| format!("family:{}", def.family));
    let launch = Launch {
        ctx,
        cluster: &cluster,
        def: &def,
        plan: &plan,
        input: &input,
        launch_type: "EC2",
        capacity_provider: None,
        group: group.clone(),
    };
    let mut tasks = Vec::new();
    let mut failures = Vec::new();
    let scope = ctx.scope();
    for reference in references {
        let Some((_, instance)) = ecs.instance(ctx, &cluster.name, &reference) else {
            failures.push(json!({"arn": reference, "reason": "MISSING"}));
            continue;
        };
        if instance.status == "INACTIVE" {
            failures.push(json!({"arn": instance.arn, "reason": "INACTIVE"}));
            continue;
        }
        // Tasks started earlier in this call count against the instance too.
        let mut live = ecs.live_tasks(&scope, &cluster.name);
        live.extend(tasks.iter().cloned());
        let c = candidate(&instance, &live);
        let demand = plan.demand(group.clone(), Vec::new(), Vec::new(), 1);
        // StartTask bypasses the scheduler's constraints and strategies, not the resource check.
        let mut c = c;
        if c.status == "DRAINING" {
            c.status = "ACTIVE".into();
        }
        let placed = placement::place(&[c], &demand, &mut rand::rng());
        if placed.chosen.is_empty() {
            failures.extend(
                placed
                    .failures
                    .into_iter()
                    .map(|f| json!({"arn": f.arn, "reason": f.reason})),
            );
        } else {
            tasks.push(ecs.new_task(&launch, Some(&instance), None));
        }
    }
    ecs.save_new_tasks(ctx, &tasks)?;
    Ok(
        json!({"tasks": tasks.iter().map(|t| t.describe(true)).collect::<Vec<_>>(), "failures": failures}),
    )
}

fn stop_task(ecs: &Ecs, ctx: &Ctx, input: Value) -> HandlerResult {
    let cluster = ecs.active_cluster(ctx, input.str("cluster"))?;
    let reference = input.str("task").unwrap_or_default();
    let (key, _) = ecs
        .task(&ctx.scope(), &cluster.name, reference)
        .ok_or_else(|| invalid("The referenced task was not found."))?;
    let reason = input
        .str("reason")
        .filter(|r| !r.is_empty())
        .unwrap_or("Task stopped by user")
        .to_string();
    let task = ecs.tasks.transact(|t| {
        let task = t
            .get_mut(&key)
            .ok_or_else(|| invalid("The referenced task was not found."))?;
        if task.desired_status != "STOPPED" {
            mark_stopping(task, ctx.now, "UserInitiated", &reason);
        }
        Ok(task.clone())
    })?;
    ecs.wake_agent();
    Ok(json!({"task": task.describe(true)}))
}

fn describe_tasks(ecs: &Ecs, ctx: &Ctx, input: Value) -> HandlerResult {
    let cluster = ecs.active_cluster(ctx, input.str("cluster"))?;
    let references = input.string_list("tasks");
    if references.len() > 100 {
        return Err(invalid("Tasks cannot have more than 100 elements"));
    }
    let include_tags = input.string_list("include").iter().any(|i| i == "TAGS");
    let mut tasks = Vec::new();
    let mut failures = Vec::new();
    for reference in references {
        match ecs.task(&ctx.scope(), &cluster.name, &reference) {
            Some((_, t)) => tasks.push(t.describe(include_tags)),
            None => {
                let arn = if reference.starts_with("arn:") {
                    reference.clone()
                } else {
                    ctx.arn("ecs", &format!("task/{}/{}", cluster.name, reference))
                };
                failures.push(json!({"arn": arn, "reason": "MISSING"}));
            }
        }
    }
    Ok(json!({"tasks": tasks, "failures": failures}))
}

fn list_tasks(ecs: &Ecs, ctx: &Ctx, input: Value) -> HandlerResult {
    let cluster = ecs.active_cluster(ctx, input.str("cluster"))?;
    if input.str("family").is_some() && input.str("serviceName").is_some() {
        return Err(invalid(
            "Family and serviceName filters cannot both be specified.",
        ));
    }
    let desired = input.str("desiredStatus").unwrap_or("RUNNING");
    let instance_arn = match input.str("containerInstance") {
        Some(r) => Some(
            ecs.instance(ctx, &cluster.name, r)
                .map(|(_, i)| i.arn)
                .ok_or_else(|| invalid("The referenced container instance was not found."))?,
        ),
        None => None,
    };
    let group = input.str("serviceName").map(|s| format!("service:{s}"));
    let mut tasks: Vec<Task> = ecs
        .tasks
        .scan(&format!("{}{}/", ctx.scope(), cluster.name))
        .into_iter()
        .map(|(_, t)| t)
        .filter(|t| {
            let desired_ok = match desired {
                // PENDING lists tasks the agent has not yet started.
                "PENDING" => t.desired_status == "RUNNING" && t.is_pending(),
                d => t.desired_status == d,
            };
            desired_ok
                && instance_arn
                    .as_ref()
                    .is_none_or(|a| t.container_instance_arn.as_ref() == Some(a))
                && input.str("family").is_none_or(|f| t.family == f)
                && input
                    .str("startedBy")
                    .is_none_or(|s| t.started_by.as_deref() == Some(s))
                && input.str("launchType").is_none_or(|l| t.launch_type == l)
                && group.as_ref().is_none_or(|g| &t.group == g)
        })
        .collect();
    tasks.sort_by(|a, b| a.arn.cmp(&b.arn));
    let max = input.i64("maxResults").unwrap_or(100).clamp(1, 100) as usize;
    let (tasks, next) = page(
        tasks,
        |t| t.arn.clone(),
        input.str("nextToken"),
        max,
        "InvalidParameterException",
    )?;
    Ok(with_next(
        json!({"taskArns": tasks.iter().map(|t| t.arn.clone()).collect::<Vec<_>>()}),
        next,
    ))
}
