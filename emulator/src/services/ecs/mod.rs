//! Amazon ECS: clusters, task definitions, container instances, tasks, services.

mod arns;
mod clusters;
pub mod instance_types;
pub mod instances;
pub mod placement;
pub mod services;
mod tags;
pub mod task;
pub mod task_definitions;
pub mod tasks;

pub use arns::ResourceArn;
pub use clusters::Cluster;
pub use instances::{ContainerInstance, InstanceLaunch};
pub use services::{Deployment, EcsService};
pub use task::{Task, TaskContainer};
pub use task_definitions::TaskDef;

use super::ec2::Ec2;
use super::elbv2::Elbv2;
use super::{Deps, Registry};
use crate::protocol::AwsError;
use crate::store::Table;
use std::sync::{Arc, OnceLock};
use tokio::sync::Notify;

/// ECS's state. Other parts of the program reach it with `registry.handle::<Ecs>()`.
pub struct Ecs {
    pub clusters: Arc<Table<Cluster>>,
    pub task_definitions: Arc<Table<TaskDef>>,
    /// Keyed "<scope><cluster>/<instance id>".
    pub instances: Arc<Table<ContainerInstance>>,
    /// Keyed "<scope><cluster>/<task id>".
    pub tasks: Arc<Table<Task>>,
    /// Keyed "<scope><cluster>/<service name>".
    pub services: Arc<Table<EcsService>>,
    /// Wakes the task agent when desired state changed.
    pub agent_wakeup: Notify,
    /// Wakes the service scheduler when a service or one of its tasks changed.
    pub scheduler_wakeup: Notify,
    /// EC2, for awsvpc subnets and security groups (wired after every service is built).
    pub ec2: OnceLock<Arc<Ec2>>,
    /// ELBv2, for services' load balancer targets (wired after every service is built).
    pub elbv2: OnceLock<Arc<Elbv2>>,
}

impl Ecs {
    pub fn wake_agent(&self) {
        self.agent_wakeup.notify_one();
        self.scheduler_wakeup.notify_one();
    }

    pub fn wake_scheduler(&self) {
        self.scheduler_wakeup.notify_one();
    }
}

/// One page of a List call over names or ARNs already in order: `{<key>: [...], "nextToken"}`, with
/// ECS's maxResults (1–100, `default` when absent) and opaque tokens.
pub(crate) fn list_page(
    key: &str,
    items: Vec<String>,
    input: &serde_json::Value,
    default: i64,
) -> crate::services::HandlerResult {
    use crate::services::input::Input;
    let max = input.i64("maxResults").unwrap_or(default).clamp(1, 100) as usize;
    let (items, next) = crate::services::page::page(
        items,
        |a| a.clone(),
        input.str("nextToken"),
        max,
        "InvalidParameterException",
    )?;
    let mut out = serde_json::Map::new();
    out.insert(key.to_string(), serde_json::Value::from(items));
    Ok(crate::services::page::with_next(
        serde_json::Value::Object(out),
        next,
    ))
}

/// ListContainerInstances' `filter`: a cluster query language expression over the instance.
pub(crate) fn matches_filter(
    i: &ContainerInstance,
    tasks: &[Task],
    expr: &str,
) -> Result<bool, AwsError> {
    let query =
        placement::Query::parse(expr).map_err(|e| AwsError::new("InvalidParameterException", e))?;
    Ok(query.matches(&tasks::candidate(i, tasks)))
}

pub fn register(r: &mut Registry, deps: &Deps) {
    let ecs = Arc::new(Ecs {
        clusters: Table::open(&deps.store, "ecs.clusters"),
        task_definitions: Table::open(&deps.store, "ecs.task_definitions"),
        instances: Table::open(&deps.store, "ecs.container_instances"),
        tasks: Table::open(&deps.store, "ecs.tasks"),
        services: Table::open(&deps.store, "ecs.services"),
        agent_wakeup: Notify::new(),
        scheduler_wakeup: Notify::new(),
        ec2: OnceLock::new(),
        elbv2: OnceLock::new(),
    });
    clusters::register(r, &ecs);
    task_definitions::register(r, &ecs);
    instances::register(r, &ecs);
    tasks::register(r, &ecs);
    services::register(r, &ecs);
    tags::register(r, &ecs);
    r.provide(ecs);
}

#[cfg(test)]
pub(crate) fn for_tests() -> Arc<Ecs> {
    let deps = Deps::for_tests();
    let mut r = Registry::default();
    register(&mut r, &deps);
    r.handle::<Ecs>().expect("ecs handle")
}
