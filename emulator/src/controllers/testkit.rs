//! A small world for controller unit tests: every service in memory, ECS driven through its own
//! handlers, and the recording runtime instead of Docker. The agent and the scheduler run as in
//! the product (their own loops), so tests see the same interleavings; with a paused tokio
//! clock their timers cost nothing.

use super::agent::{Agent, AgentEndpoints};
use super::scheduler::Scheduler;
use crate::clock::Clock;
use crate::runtime::recording::RecordingRuntime;
use crate::services::ecs::{ContainerInstance, Ecs, EcsService, InstanceLaunch, Task};
use crate::services::{Ctx, Deps, Registry};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

pub const OWNER: &str = "unit-test-owner";
pub const CLUSTER: &str = "c";

pub struct World {
    pub registry: Registry,
    pub ecs: Arc<Ecs>,
    pub runtime: Arc<RecordingRuntime>,
    pub clock: Clock,
}

impl World {
    /// A world with cluster `c`, whose runtime calls take `latency`.
    pub async fn new(latency: Duration) -> World {
        World::with_time_scale(latency, 1.0).await
    }

    /// A world whose emulator clock runs `scale` times faster than real time (the scheduler's
    /// tests wait out ECS's 40 s before a task without health checks counts as healthy).
    pub async fn with_time_scale(latency: Duration, scale: f64) -> World {
        let mut deps = Deps::for_tests();
        deps.clock = Clock::new(scale);
        let clock = deps.clock.clone();
        let registry = crate::app::build(&deps);
        let ecs = registry.handle::<Ecs>().expect("ecs");
        let w = World {
            registry,
            ecs,
            runtime: RecordingRuntime::with_latency(latency),
            clock,
        };
        w.call("CreateCluster", json!({"clusterName": CLUSTER}))
            .await;
        w
    }

    pub fn ctx(&self) -> Ctx {
        Ctx {
            now: self.clock.now(),
            ..Ctx::for_tests()
        }
    }

    /// Calls an ECS operation; panics with the error when it fails.
    pub async fn call(&self, op: &str, input: Value) -> Value {
        self.try_call(op, input)
            .await
            .unwrap_or_else(|e| panic!("{op}: {} {}", e.code, e.message))
    }

    pub async fn try_call(
        &self,
        op: &str,
        input: Value,
    ) -> Result<Value, crate::protocol::AwsError> {
        let h = self.registry.get("ecs", op).expect(op).clone();
        h.call(self.ctx(), input).await
    }

    /// The error `op` answers: its code, the HTTP status a client gets (as the wire encoder
    /// resolves it from the ECS model) and its message. Panics when `op` succeeds.
    pub async fn error(&self, op: &str, input: Value) -> (String, u16, String) {
        let e = self.try_call(op, input).await.expect_err(op);
        let status = e.resolve(crate::protocol::model::model("ecs")).status;
        (e.code.to_string(), status, e.message)
    }

    /// A task definition of `family` with these container definitions; returns its ARN.
    pub async fn task_definition(&self, family: &str, containers: Value) -> String {
        let out = self
            .call(
                "RegisterTaskDefinition",
                json!({"family": family, "containerDefinitions": containers}),
            )
            .await;
        out["taskDefinition"]["taskDefinitionArn"]
            .as_str()
            .expect("arn")
            .to_string()
    }

    /// A virtual instance registered with the cluster, as its ECS agent would.
    pub fn instance(&self) -> ContainerInstance {
        self.ecs
            .register_instance(
                &self.ctx(),
                InstanceLaunch {
                    cluster: CLUSTER.into(),
                    ec2_instance_id: None,
                    instance_type: "m5.large".into(),
                    availability_zone: "us-east-1a".into(),
                    subnet_id: None,
                    vpc_id: None,
                    private_ip: None,
                    ami_id: None,
                    attributes: vec![],
                    tags: vec![],
                    autoscaling_group: None,
                },
            )
            .expect("register instance")
    }

    /// RunTask of `count` tasks; returns their ARNs.
    pub async fn run_task(&self, family: &str, count: usize) -> Vec<String> {
        let out = self
            .call(
                "RunTask",
                json!({"cluster": CLUSTER, "taskDefinition": family, "count": count}),
            )
            .await;
        let arns: Vec<String> = out["tasks"]
            .as_array()
            .expect("tasks")
            .iter()
            .map(|t| t["taskArn"].as_str().expect("arn").to_string())
            .collect();
        assert_eq!(arns.len(), count, "RunTask placed them all: {out}");
        arns
    }

    pub fn agent(&self) -> Arc<Agent> {
        Agent::new(
            self.ecs.clone(),
            self.runtime.clone(),
            OWNER.into(),
            self.clock.clone(),
            AgentEndpoints::default(),
        )
    }

    /// Starts the task agent's loop; abort the handle to "kill" it.
    pub fn spawn_agent(&self) -> tokio::task::JoinHandle<()> {
        tokio::spawn(self.agent().run())
    }

    pub fn spawn_scheduler(&self) -> tokio::task::JoinHandle<()> {
        tokio::spawn(Scheduler::new(self.ecs.clone(), self.clock.clone()).run())
    }

    pub fn task(&self, arn: &str) -> Task {
        let id = arn.rsplit('/').next().unwrap_or_default();
        self.ecs
            .tasks
            .read(|rows| rows.values().find(|t| t.id == id).cloned())
            .unwrap_or_else(|| panic!("no task {arn}"))
    }

    pub fn tasks(&self) -> Vec<Task> {
        self.ecs.tasks.read(|rows| rows.values().cloned().collect())
    }

    pub fn service(&self, name: &str) -> EcsService {
        self.ecs
            .services
            .read(|rows| rows.values().find(|s| s.name == name).cloned())
            .unwrap_or_else(|| panic!("no service {name}"))
    }

    /// Waits (tokio time, bounded) until `f` holds; panics with `what` and the tasks otherwise.
    pub async fn until(&self, what: &str, f: impl Fn(&World) -> bool) {
        for _ in 0..6000 {
            if f(self) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let tasks: Vec<String> = self
            .tasks()
            .iter()
            .map(|t| {
                format!(
                    "{} {} desired {} ({:?})",
                    t.id, t.last_status, t.desired_status, t.stopped_reason
                )
            })
            .collect();
        panic!("timed out waiting until {what}; tasks: {tasks:#?}");
    }
}

/// A container definition running `command` in the test image.
pub fn container(name: &str, command: &[&str]) -> Value {
    json!({"name": name, "image": "busybox", "memory": 64, "essential": true, "command": command})
}
