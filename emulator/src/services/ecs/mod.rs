//! Amazon ECS: clusters, task definitions, container instances, tasks, services.

mod arns;
pub mod capacity_providers;
mod clusters;
pub mod instances;
pub mod launch;
pub mod model;
pub mod placement;
pub mod service_deployments;
pub mod service_registries;
pub mod services;
mod tags;
pub mod task;
pub mod task_definitions;
pub mod task_sets;
pub mod tasks;

pub use arns::ResourceArn;
pub use clusters::Cluster;
pub use instances::{ContainerInstance, InstanceLaunch};
pub use launch::{LaunchSpec, Launched, Target};
pub use services::{Deployment, EcsService};
pub use task::{Task, TaskContainer};
pub use task_definitions::TaskDef;

use super::autoscaling::AutoScaling;
use super::ec2::Ec2;
use super::elbv2::Elbv2;
use super::servicediscovery::CloudMap;
use super::{Deps, Registry};
use crate::protocol::codes;
use crate::protocol::AwsError;
use crate::store::Table;
use std::sync::Arc;
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
    /// How long the service scheduler's recent passes took (GET /_emulator/state, bench/scale.sh).
    pub scheduler_passes: parking_lot::Mutex<PassStats>,
    /// Container starts and stops and scheduler passes run inside it; a reset closes it.
    pub fence: crate::fence::Fence,
    /// EC2: the machines behind container instances, awsvpc subnets and security groups.
    pub ec2: Arc<Ec2>,
    /// ELBv2, for services' load balancer targets.
    pub elbv2: Arc<Elbv2>,
    /// Cloud Map, for services' serviceRegistries.
    pub cloudmap: Arc<CloudMap>,
    /// Keyed "<scope><name>".
    pub capacity_providers: Arc<Table<capacity_providers::CapacityProvider>>,
    /// EC2 Auto Scaling, whose groups capacity providers scale.
    pub autoscaling: Arc<AutoScaling>,
}

/// The services ECS calls, built before it (EC2 ← ELB/ELBv2, Cloud Map, Auto Scaling ← ECS).
pub struct EcsDeps {
    pub ec2: Arc<Ec2>,
    pub elbv2: Arc<Elbv2>,
    pub cloudmap: Arc<CloudMap>,
    pub autoscaling: Arc<AutoScaling>,
}

/// Durations of the service scheduler's passes: a count and the most recent ones.
#[derive(Debug, Default)]
pub struct PassStats {
    /// Passes since start.
    pub passes: u64,
    /// The last [`PassStats::KEPT`] passes, oldest first: (services reconciled, microseconds).
    pub recent: std::collections::VecDeque<(usize, u64)>,
}

impl PassStats {
    pub const KEPT: usize = 1000;

    pub fn record(&mut self, services: usize, took: std::time::Duration) {
        self.passes += 1;
        if self.recent.len() == Self::KEPT {
            self.recent.pop_front();
        }
        self.recent
            .push_back((services, took.as_micros().min(u64::MAX as u128) as u64));
    }

    /// `{"passes": n, "recent": [{"services": s, "micros": us}, …]}`, oldest first.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "passes": self.passes,
            "recent": self.recent.iter().map(|(s, us)| serde_json::json!({"services": s, "micros": us})).collect::<Vec<_>>(),
        })
    }
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
        codes::ecs::InvalidParameterException,
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
    let query = placement::Query::parse(expr)
        .map_err(|e| AwsError::new(codes::ecs::InvalidParameterException, e))?;
    Ok(query.matches(&tasks::candidate(i, tasks)))
}

pub fn register(r: &mut Registry, deps: &Deps, with: EcsDeps) -> Arc<Ecs> {
    let ecs = Arc::new(Ecs {
        clusters: Table::open(&deps.store, "ecs.clusters"),
        task_definitions: Table::open_indexed(
            &deps.store,
            "ecs.task_definitions",
            task_definitions::listing_index,
        ),
        instances: Table::open(&deps.store, "ecs.container_instances"),
        tasks: Table::open_indexed(&deps.store, "ecs.tasks", instances::task_group_index),
        services: Table::open(&deps.store, "ecs.services"),
        agent_wakeup: Notify::new(),
        fence: Default::default(),
        scheduler_wakeup: Notify::new(),
        scheduler_passes: Default::default(),
        ec2: with.ec2,
        elbv2: with.elbv2,
        cloudmap: with.cloudmap,
        capacity_providers: Table::open(&deps.store, "ecs.capacity_providers"),
        autoscaling: with.autoscaling,
    });
    clusters::register(r, &ecs);
    task_definitions::register(r, &ecs);
    instances::register(r, &ecs);
    tasks::register(r, &ecs);
    services::register(r, &ecs);
    task_sets::register(r, &ecs);
    service_deployments::register(r, &ecs);
    tags::register(r, &ecs);
    capacity_providers::register(r, &ecs);
    ecs.migrate_task_plans();
    ecs.migrate_machines();
    r.provide(ecs.clone());
    ecs
}

#[cfg(test)]
pub(crate) fn for_tests() -> Arc<Ecs> {
    let deps = Deps::for_tests();
    crate::app::build(&deps)
        .handle::<Ecs>()
        .expect("ecs handle")
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
        let r = crate::app::build(&deps);
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
