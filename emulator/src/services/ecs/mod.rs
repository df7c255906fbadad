//! Amazon ECS: clusters, task definitions, container instances, tasks, services.

mod arns;
pub mod capacity_providers;
mod clusters;
pub mod instance_types;
pub mod instances;
pub mod launch;
pub mod model;
pub mod placement;
pub mod service_registries;
pub mod services;
mod tags;
pub mod task;
pub mod task_definitions;
pub mod tasks;

pub use arns::ResourceArn;
pub use clusters::Cluster;
pub use instances::{ContainerInstance, InstanceLaunch};
pub use launch::{LaunchSpec, Launched, Target};
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
    /// Cloud Map, for services' serviceRegistries (wired after every service is built).
    pub cloudmap: OnceLock<Arc<super::servicediscovery::CloudMap>>,
    /// Keyed "<scope><name>".
    pub capacity_providers: Arc<Table<capacity_providers::CapacityProvider>>,
    /// EC2 Auto Scaling, whose groups capacity providers scale (wired after every service is built).
    pub autoscaling: OnceLock<Arc<super::autoscaling::AutoScaling>>,
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
        cloudmap: OnceLock::new(),
        capacity_providers: Table::open(&deps.store, "ecs.capacity_providers"),
        autoscaling: OnceLock::new(),
    });
    clusters::register(r, &ecs);
    task_definitions::register(r, &ecs);
    instances::register(r, &ecs);
    tasks::register(r, &ecs);
    services::register(r, &ecs);
    tags::register(r, &ecs);
    capacity_providers::register(r, &ecs);
    ecs.migrate_task_plans();
    r.provide(ecs);
}

#[cfg(test)]
pub(crate) fn for_tests() -> Arc<Ecs> {
    let deps = Deps::for_tests();
    let mut r = Registry::default();
    register(&mut r, &deps);
    r.handle::<Ecs>().expect("ecs handle")
}

#[cfg(test)]
mod migration_tests {
    use super::model::{DeploymentStatus, HealthStatus, RolloutState, TaskStatus};
    use super::*;
    use crate::clock::Clock;
    use crate::config::Config;
    use crate::store::Store;
    use serde_json::{json, Value};

    /// Rows as the version before typed shapes wrote them (dumped from a data dir it wrote:
    /// a cluster, a task definition, a container instance, a service with a load balancer and a
    /// circuit breaker, a RunTask task with overrides and a service task), plus a RUNNING task
    /// with the load balancer targets and health that version stored.
    fn old_rows() -> Value {
        let mut rows: Value =
            serde_json::from_str(include_str!("testdata/rows-v0.json")).expect("fixture");
        let tasks = rows["ecs.tasks"].as_object_mut().expect("tasks");
        let (_, service_task) = tasks
            .iter()
            .find(|(_, t)| t["group"] == "service:svc")
            .expect("a service task");
        let mut running = service_task.clone();
        running["id"] = json!("0000running");
        running["last_status"] = json!("RUNNING");
        running["desired_status"] = json!("RUNNING");
        running["health_status"] = json!("HEALTHY");
        running["containers"][0]["health_status"] = json!("HEALTHY");
        running["containers"][0]["last_status"] = json!("RUNNING");
        running["lb_targets"] = json!([{"targetGroupArn": "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/old-tg/0123456789abcdef", "id": "i-0123456789abcdef0", "port": 32768}]);
        running["network_configuration"] = Value::Null;
        running["overrides"] = Value::Null;
        tasks.insert("000000000000/us-east-1/old/0000running".into(), running);
        rows
    }

    #[test]
    fn a_data_dir_of_the_previous_version_loads_and_tasks_get_their_plan() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("store");
        for (table, rows) in old_rows().as_object().expect("tables") {
            let writes: Vec<(String, Option<Vec<u8>>)> = rows
                .as_object()
                .expect("rows")
                .iter()
                .map(|(k, v)| (k.clone(), Some(serde_json::to_vec(v).expect("json"))))
                .collect();
            store.commit(table, &writes).expect("commit");
        }
        let deps = Deps {
            store,
            clock: Clock::new(1.0),
            config: Config::for_tests(),
        };
        let mut r = Registry::default();
        register(&mut r, &deps);
        let ecs = r.handle::<Ecs>().expect("ecs");
        assert_eq!(ecs.clusters.len(), 1);
        assert_eq!(ecs.task_definitions.len(), 1);
        assert_eq!(ecs.instances.len(), 1);
        assert_eq!(ecs.services.len(), 1);
        assert_eq!(ecs.tasks.len(), 3, "every old task row loads");

        let tasks: Vec<Task> = ecs.tasks.scan("").into_iter().map(|(_, t)| t).collect();
        assert!(
            tasks.iter().all(|t| t.planned),
            "plans are filled in at start"
        );
        let run = tasks
            .iter()
            .find(|t| t.started_by.as_deref() == Some("me"))
            .expect("the RunTask task");
        assert_eq!(run.last_status, TaskStatus::Stopped);
        assert_eq!(
            run.task_role_arn.as_deref(),
            Some("arn:aws:iam::000000000000:role/over")
        );
        let app = &run.containers[0];
        assert_eq!(
            app.command,
            Some(vec!["sleep".to_string(), "2".to_string()])
        );
        let env: Vec<String> = app
            .environment
            .iter()
            .map(|e| {
                format!(
                    "{}={}",
                    e.name.as_deref().unwrap_or_default(),
                    e.value.as_deref().unwrap_or_default()
                )
            })
            .collect();
        assert_eq!(env, vec!["A=1", "B=2"]);
        assert_eq!(run.tags[0].key.as_deref(), Some("t"));
        let running = tasks
            .iter()
            .find(|t| t.id == "0000running")
            .expect("running");
        assert_eq!(running.health_status, Some(HealthStatus::Healthy));
        assert_eq!(running.lb_targets[0].port, Some(32768));
        assert!(running.overrides.container_overrides.is_empty());
        assert_eq!(
            running.describe(false)["overrides"],
            json!({"containerOverrides": []})
        );

        let (_, svc) = ecs.services.scan("").pop().expect("service");
        let cb = svc.circuit_breaker.as_ref().expect("circuit breaker");
        assert!(cb.enable && cb.rollback);
        assert_eq!(svc.load_balancers[0].container_port, Some(80));
        assert_eq!(svc.placement_strategy[0].field.as_deref(), Some("memory"));
        assert_eq!(svc.deployments[0].status, DeploymentStatus::Primary);
        assert_eq!(
            svc.deployments[0].rollout_state,
            RolloutState::Failed,
            "the breaker tripped in that run"
        );
        let shown = ecs.describe_service(&svc, true);
        assert_eq!(
            shown["deploymentConfiguration"],
            json!({"maximumPercent": 200, "minimumHealthyPercent": 50, "deploymentCircuitBreaker": {"enable": true, "rollback": true}})
        );
        assert_eq!(
            shown["placementConstraints"],
            json!([{"type": "distinctInstance"}])
        );
        assert_eq!(shown["tags"], json!([{"key": "s", "value": "1"}]));
    }
}
