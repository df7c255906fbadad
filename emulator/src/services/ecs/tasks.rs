//! Tasks: RunTask, StartTask, StopTask, DescribeTasks, ListTasks. These record desired state; the
//! task agent (controllers/agent.rs) drives Docker towards it and records what it observes.

use super::instances::{group_key, ContainerInstance};
use super::launch::{task_id, LaunchSpec, Launched, Target};
use super::model::DesiredStatus;
use super::placement::Candidate;
use super::task::Task;
use super::Ecs;
use crate::protocol::codes;
use crate::protocol::AwsError;
use crate::services::input::Input;
use crate::services::page::{decode_token, encode_token, with_next};
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
    AwsError::new(codes::ecs::InvalidParameterException, msg)
}

impl Ecs {
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
        let n = self.tasks.transact::<_, AwsError, _>(|t| {
            let mut n = 0;
            for key in t.keys(&prefix) {
                let Some(task) = t.get(&key) else { continue };
                if !task.wanted() || task.is_stopped() || !pred(task) {
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
        let key = format!("{scope}{cluster}/{}", task_id(reference));
        self.tasks.get(&key).map(|t| (key, t))
    }
}

pub fn mark_stopping(task: &mut Task, now: f64, stop_code: &str, reason: &str) {
    task.desired_status = DesiredStatus::Stopped;
    task.stopping_at.get_or_insert(now);
    task.stop_code.get_or_insert_with(|| stop_code.to_string());
    task.stopped_reason
        .get_or_insert_with(|| reason.to_string());
    task.version += 1;
}

pub(crate) fn candidate<'a, I>(i: &ContainerInstance, tasks: I) -> Candidate
where
    I: IntoIterator<Item = &'a Task> + Clone,
{
    let rem = i.remaining(tasks.clone());
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
            .into_iter()
            .filter(|t| t.container_instance_arn.as_deref() == Some(&i.arn) && t.holds_resources())
            .map(|t| t.group.clone())
            .collect(),
        eni_remaining: None,
    }
}

/// The launch RunTask and StartTask ask for, read from their input.
fn launch_spec(input: &Value, target: Target) -> Result<LaunchSpec, AwsError> {
    Ok(LaunchSpec {
        cluster: input.str("cluster").map(str::to_string),
        task_definition: input.str("taskDefinition").unwrap_or_default().to_string(),
        count: input.i64("count").unwrap_or(1).max(0) as usize,
        target,
        overrides: input.member("overrides")?.unwrap_or_default(),
        started_by: input.str("startedBy").map(str::to_string),
        group: input.str("group").map(str::to_string),
        launch_type: input.str("launchType").map(str::to_string),
        capacity_provider_strategy: input
            .member("capacityProviderStrategy")?
            .unwrap_or_default(),
        network_configuration: input.member("networkConfiguration")?,
        tags: input.member("tags")?.unwrap_or_default(),
        propagate_tags: input.member("propagateTags")?,
        enable_execute_command: input.bool("enableExecuteCommand").unwrap_or(false),
        platform_version: input.str("platformVersion").map(str::to_string),
    })
}

fn render_launched(launched: &Launched) -> Value {
    json!({
        "tasks": launched.tasks.iter().map(|t| t.describe(true)).collect::<Vec<_>>(),
        "failures": launched.failures.iter().map(|f| json!({"arn": f.arn, "reason": f.reason})).collect::<Vec<_>>(),
    })
}

fn run_task(ecs: &Ecs, ctx: &Ctx, input: Value) -> HandlerResult {
    // RunTask's own limit, checked where RunTask checked it (after the cluster and definition).
    ecs.active_cluster(ctx, input.str("cluster"))?;
    let def = ecs.task_definition(ctx, input.str("taskDefinition").unwrap_or_default())?;
    let count = input.i64("count").unwrap_or(1);
    if def.status == "ACTIVE" && !(1..=10).contains(&count) {
        return Err(invalid("Count must be between 1 and 10."));
    }
    let target = Target::Place {
        constraints: input.member("placementConstraints")?.unwrap_or_default(),
        strategy: input.member("placementStrategy")?.unwrap_or_default(),
    };
    let launched = ecs.launch(ctx, &launch_spec(&input, target)?)?;
    Ok(render_launched(&launched))
}

fn start_task(ecs: &Ecs, ctx: &Ctx, input: Value) -> HandlerResult {
    let target = Target::Instances(input.string_list("containerInstances"));
    let launched = ecs.launch(ctx, &launch_spec(&input, target)?)?;
    Ok(render_launched(&launched))
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
    let task = ecs.tasks.transact::<_, AwsError, _>(|t| {
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
    let references = input.string_list("tasks");
    if references.is_empty() {
        return Err(invalid("Tasks cannot be empty."));
    }
    let cluster = ecs.active_cluster(ctx, input.str("cluster"))?;
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
    let wanted = |t: &Task| {
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
    };
    let max = input.i64("maxResults").unwrap_or(100).clamp(1, 100) as usize;
    let after = match input.str("nextToken").filter(|t| !t.is_empty()) {
        None => None,
        Some(t) => Some(decode_token(t).ok_or_else(|| {
            AwsError::new(
                codes::ecs::InvalidParameterException,
                "The specified nextToken is invalid",
            )
        })?),
    };
    // A cluster's tasks are keyed "<scope><cluster>/<id>" and their ARNs end "<cluster>/<id>",
    // so key order is ARN order: the page is a range read from the token on (a serviceName
    // filter reads the group index instead), and only the page's ARNs are copied.
    let prefix = format!("{}{}/", ctx.scope(), cluster.name);
    let page_of = |rows: &mut dyn Iterator<Item = &Task>| -> Vec<String> {
        rows.filter(|t| after.as_ref().is_none_or(|a| &t.arn > a))
            .filter(|t| wanted(t))
            .take(max + 1)
            .map(|t| t.arn.clone())
            .collect()
    };
    let mut arns: Vec<String> = match &group {
        Some(g) => ecs.tasks.read_index(|index, rows| {
            let key = group_key(&ctx.scope(), &cluster.name, g);
            let mut matching = index
                .range((key.clone(), String::new())..)
                .take_while(|(i, _)| *i == key)
                .filter_map(|(_, k)| rows.get(k));
            page_of(&mut matching)
        }),
        None => ecs.tasks.read(|rows| {
            let from = match after.as_ref().and_then(|a| a.rsplit_once('/')) {
                Some((_, id)) => format!("{prefix}{id}"),
                None => prefix.clone(),
            };
            let mut matching = rows
                .range(from..)
                .take_while(|(k, _)| k.starts_with(&prefix))
                .map(|(_, t)| t);
            page_of(&mut matching)
        }),
    };
    let next = if arns.len() > max {
        arns.truncate(max);
        arns.last().map(|a| encode_token(a))
    } else {
        None
    };
    Ok(with_next(json!({ "taskArns": arns }), next))
}
