//! The JSON the task metadata endpoint serves (v3 and v4), from the task record, its task
//! definition and what Docker says of each container (aws-behaviour.md §2). Pure functions.

use crate::runtime::ContainerState;
use crate::services::ecs::task_definitions::{parse_cpu, parse_memory};
use crate::services::ecs::{Task, TaskContainer, TaskDef};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Map, Value};
use std::collections::HashMap;

/// Which version's shapes to produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V3,
    V4,
}

/// Epoch seconds → RFC 3339 in UTC with fractional seconds, as the ECS agent prints Go times.
pub fn rfc3339(epoch: f64) -> Option<String> {
    if !epoch.is_finite() {
        return None;
    }
    let secs = epoch.floor();
    // f64 epoch seconds hold about microseconds: print no more than that.
    let micros = ((epoch - secs) * 1e6).round().clamp(0.0, 999_999.0) as u32;
    let nanos = micros * 1000;
    DateTime::<Utc>::from_timestamp(secs as i64, nanos)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
}

fn put(m: &mut Map<String, Value>, k: &str, v: Option<Value>) {
    if let Some(v) = v {
        m.insert(k.to_string(), v);
    }
}

fn time(epoch: Option<f64>) -> Option<Value> {
    epoch.and_then(rfc3339).map(Value::from)
}

/// The container definition named `name` in the task definition.
fn container_def<'a>(def: Option<&'a TaskDef>, name: &str) -> Option<&'a Value> {
    def?.body
        .get("containerDefinitions")?
        .as_array()?
        .iter()
        .find(|c| c.get("name").and_then(Value::as_str) == Some(name))
}

/// Everything needed to describe one task.
pub struct View<'a> {
    pub task: &'a Task,
    pub def: Option<&'a TaskDef>,
    /// Docker's view of each container, by container name (missing: not created, or Docker
    /// did not answer).
    pub docker: &'a HashMap<String, ContainerState>,
    /// The region the task runs in (from its ARN).
    pub region: &'a str,
}

impl View<'_> {
    /// `${ECS_CONTAINER_METADATA_URI_V4}/task` (or v3).
    pub fn task(&self, version: Version) -> Value {
        let t = self.task;
        let mut m = Map::new();
        m.insert("Cluster".into(), json!(t.cluster_arn));
        if let Some(service) = t.group.strip_prefix("service:") {
            if version == Version::V4 {
                m.insert("ServiceName".into(), json!(service));
            }
        }
        m.insert("TaskARN".into(), json!(t.arn));
        m.insert("Family".into(), json!(t.family));
        m.insert("Revision".into(), json!(t.revision.to_string()));
        m.insert("DesiredStatus".into(), json!(t.desired_status));
        m.insert("KnownStatus".into(), json!(t.last_status));
        m.insert(
            "Containers".into(),
            Value::Array(
                t.containers
                    .iter()
                    .map(|c| self.container(c, version))
                    .collect(),
            ),
        );
        // Task-level limits only when the task definition sets them (the docs: "omitted if no
        // resource limits are defined"). CPU in vCPUs, memory in MiB.
        let cpu = t.cpu.as_deref().and_then(parse_cpu);
        let memory = t.memory.as_deref().and_then(parse_memory);
        if cpu.is_some() || memory.is_some() {
            let mut limits = Map::new();
            put(&mut limits, "CPU", cpu.map(|u| json!(u as f64 / 1024.0)));
            put(&mut limits, "Memory", memory.map(|m| json!(m)));
            m.insert("Limits".into(), Value::Object(limits));
        }
        put(&mut m, "PullStartedAt", time(t.pull_started_at));
        put(&mut m, "PullStoppedAt", time(t.pull_stopped_at));
        put(&mut m, "ExecutionStoppedAt", time(t.execution_stopped_at));
        put(
            &mut m,
            "AvailabilityZone",
            t.availability_zone.clone().map(Value::from),
        );
        if version == Version::V4 {
            m.insert("LaunchType".into(), json!(t.launch_type));
        }
        Value::Object(m)
    }

    /// `${ECS_CONTAINER_METADATA_URI_V4}` (or v3) for the container named `name`.
    pub fn container_named(&self, name: &str, version: Version) -> Option<Value> {
        self.task
            .containers
            .iter()
            .find(|c| c.name == name)
            .map(|c| self.container(c, version))
    }

    fn container(&self, c: &TaskContainer, version: Version) -> Value {
        let t = self.task;
        let docker = self.docker.get(&c.name);
        let def = container_def(self.def, &c.name);
        let mut m = Map::new();
        m.insert(
            "DockerId".into(),
            json!(c.runtime_id.clone().unwrap_or_default()),
        );
        m.insert("Name".into(), json!(c.name));
        m.insert(
            "DockerName".into(),
            json!(docker.map(|d| d.name.clone()).unwrap_or_default()),
        );
        m.insert("Image".into(), json!(c.image));
        m.insert(
            "ImageID".into(),
            json!(docker.map(|d| d.image_id.clone()).unwrap_or_default()),
        );
        let ports: Vec<Value> = c
            .network_bindings
            .iter()
            .map(|b| {
                json!({
                    "ContainerPort": b.get("containerPort").cloned().unwrap_or(Value::Null),
                    "Protocol": b.get("protocol").cloned().unwrap_or_else(|| json!("tcp")),
                    "HostPort": b.get("hostPort").cloned().unwrap_or(Value::Null),
                    "HostIp": b.get("bindIP").cloned().unwrap_or_else(|| json!("0.0.0.0")),
                })
            })
            .collect();
        if !ports.is_empty() {
            m.insert("Ports".into(), Value::Array(ports));
        }
        // Docker's labels, less the emulator's own bookkeeping.
        let labels: Map<String, Value> = docker
            .map(|d| {
                let mut l: Vec<(&String, &String)> = d
                    .labels
                    .iter()
                    .filter(|(k, _)| !k.starts_with("ecs-emulator."))
                    .collect();
                l.sort();
                l.into_iter().map(|(k, v)| (k.clone(), json!(v))).collect()
            })
            .unwrap_or_default();
        m.insert("Labels".into(), Value::Object(labels));
        m.insert("DesiredStatus".into(), json!(t.desired_status));
        m.insert("KnownStatus".into(), json!(c.last_status));
        put(&mut m, "ExitCode", c.exit_code.map(Value::from));
        let mut limits = Map::new();
        limits.insert("CPU".into(), json!(c.cpu));
        put(
            &mut limits,
            "Memory",
            c.memory.or(c.memory_reservation).map(Value::from),
        );
        m.insert("Limits".into(), Value::Object(limits));
        put(&mut m, "CreatedAt", time(c.created_at));
        put(&mut m, "StartedAt", time(c.started_at));
        put(&mut m, "FinishedAt", time(c.finished_at));
        m.insert("Type".into(), json!("NORMAL"));
        m.insert("Networks".into(), json!(self.networks(docker)));
        if let Some(h) = &c.health_status {
            m.insert("Health".into(), json!({ "status": h }));
        }
        if version == Version::V4 {
            if let Some(log) = def.and_then(|d| d.get("logConfiguration")) {
                let driver = log.get("logDriver").cloned().unwrap_or(Value::Null);
                let mut options = log
                    .get("options")
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default();
                if driver == "awslogs" {
                    if let Some(prefix) = options
                        .get("awslogs-stream-prefix")
                        .and_then(Value::as_str)
                        .map(str::to_string)
                    {
                        options.insert(
                            "awslogs-stream".into(),
                            json!(format!("{prefix}/{}/{}", c.name, t.id)),
                        );
                    }
                    options
                        .entry("awslogs-region")
                        .or_insert_with(|| json!(self.region));
                }
                m.insert("LogDriver".into(), driver);
                m.insert("LogOptions".into(), Value::Object(options));
            }
            m.insert("ContainerARN".into(), json!(c.arn));
        }
        Value::Object(m)
    }

    fn networks(&self, docker: Option<&ContainerState>) -> Vec<Value> {
        let mode = self.task.network_mode.as_str();
        if mode == "none" {
            return vec![json!({"NetworkMode": "none"})];
        }
        if mode == "host" {
            return vec![json!({"NetworkMode": "host"})];
        }
        let ips: Vec<String> = docker
            .map(|d| d.ips.iter().map(|(_, ip)| ip.clone()).collect())
            .unwrap_or_default();
        vec![json!({"NetworkMode": mode, "IPv4Addresses": ips})]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::ecs::model::{ContainerStatus, DesiredStatus, HealthStatus, TaskStatus};

    fn sample() -> (Task, TaskDef, HashMap<String, ContainerState>) {
        let task = Task {
            arn: "arn:aws:ecs:us-east-1:000000000000:task/c/abc".into(),
            id: "abc".into(),
            cluster: "c".into(),
            cluster_arn: "arn:aws:ecs:us-east-1:000000000000:cluster/c".into(),
            family: "web".into(),
            revision: 3,
            launch_type: "EC2".into(),
            last_status: TaskStatus::Running,
            desired_status: DesiredStatus::Running,
            network_mode: "bridge".into(),
            cpu: Some("512".into()),
            memory: Some("1024".into()),
            pull_started_at: Some(1_601_597_707.620_912),
            pull_stopped_at: Some(1_601_597_708.0),
            availability_zone: Some("us-east-1a".into()),
            group: "service:api".into(),
            containers: vec![TaskContainer {
                name: "app".into(),
                arn: "arn:aws:ecs:us-east-1:000000000000:container/c/abc/123".into(),
                image: "busybox".into(),
                runtime_id: Some("d0cker".into()),
                last_status: ContainerStatus::Running,
                network_bindings: vec![
                    json!({"bindIP": "127.20.0.5", "containerPort": 80, "hostPort": 32768, "protocol": "tcp"}),
                ],
                health_status: Some(HealthStatus::Healthy),
                cpu: 10,
                memory: Some(128),
                created_at: Some(1_601_597_707.0),
                started_at: Some(1_601_597_708.5),
                ..Default::default()
            }],
            ..Default::default()
        };
        let def = TaskDef {
            arn: "arn:aws:ecs:us-east-1:000000000000:task-definition/web:3".into(),
            family: "web".into(),
            revision: 3,
            status: "ACTIVE".into(),
            body: json!({"containerDefinitions": [{"name": "app", "logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": "/ecs/web", "awslogs-stream-prefix": "ecs"}}}]}),
            tags: vec![],
        };
        let docker = HashMap::from([(
            "app".to_string(),
            ContainerState {
                id: "d0cker".into(),
                name: "ecs-web-3-app-abcdef".into(),
                image_id: "sha256:1234".into(),
                ips: vec![("bridge".into(), "172.17.0.2".into())],
                labels: HashMap::from([
                    ("com.amazonaws.ecs.cluster".to_string(), "c".to_string()),
                    ("ecs-emulator.owner".to_string(), "x".to_string()),
                ]),
                ..Default::default()
            },
        )]);
        (task, def, docker)
    }

    #[test]
    fn v4_task_shape() {
        let (task, def, docker) = sample();
        let view = View {
            task: &task,
            def: Some(&def),
            docker: &docker,
            region: "us-east-1",
        };
        let v = view.task(Version::V4);
        assert_eq!(v["Cluster"], "arn:aws:ecs:us-east-1:000000000000:cluster/c");
        assert_eq!(v["TaskARN"], task.arn);
        assert_eq!(v["Family"], "web");
        assert_eq!(v["Revision"], "3");
        assert_eq!(v["DesiredStatus"], "RUNNING");
        assert_eq!(v["KnownStatus"], "RUNNING");
        assert_eq!(v["Limits"], json!({"CPU": 0.5, "Memory": 1024}));
        assert_eq!(v["PullStartedAt"], "2020-10-02T00:15:07.620912Z");
        assert_eq!(v["PullStoppedAt"], "2020-10-02T00:15:08Z");
        assert!(v.get("ExecutionStoppedAt").is_none());
        assert_eq!(v["AvailabilityZone"], "us-east-1a");
        assert_eq!(v["LaunchType"], "EC2");
        assert_eq!(v["ServiceName"], "api");
        let c = &v["Containers"][0];
        assert_eq!(c["DockerId"], "d0cker");
        assert_eq!(c["Name"], "app");
        assert_eq!(c["DockerName"], "ecs-web-3-app-abcdef");
        assert_eq!(c["Image"], "busybox");
        assert_eq!(c["ImageID"], "sha256:1234");
        assert_eq!(
            c["Ports"],
            json!([{"ContainerPort": 80, "Protocol": "tcp", "HostPort": 32768, "HostIp": "127.20.0.5"}])
        );
        assert_eq!(c["Labels"], json!({"com.amazonaws.ecs.cluster": "c"}));
        assert_eq!(c["DesiredStatus"], "RUNNING");
        assert_eq!(c["KnownStatus"], "RUNNING");
        assert!(c.get("ExitCode").is_none());
        assert_eq!(c["Limits"], json!({"CPU": 10, "Memory": 128}));
        assert_eq!(c["CreatedAt"], "2020-10-02T00:15:07Z");
        assert_eq!(c["StartedAt"], "2020-10-02T00:15:08.500Z");
        assert_eq!(c["Type"], "NORMAL");
        assert_eq!(
            c["Networks"],
            json!([{"NetworkMode": "bridge", "IPv4Addresses": ["172.17.0.2"]}])
        );
        assert_eq!(c["Health"], json!({"status": "HEALTHY"}));
        assert_eq!(c["LogDriver"], "awslogs");
        assert_eq!(
            c["LogOptions"],
            json!({"awslogs-group": "/ecs/web", "awslogs-stream-prefix": "ecs", "awslogs-stream": "ecs/app/abc", "awslogs-region": "us-east-1"})
        );
        assert_eq!(c["ContainerARN"], task.containers[0].arn);
        assert_eq!(view.container_named("app", Version::V4).as_ref(), Some(c));
        assert!(view.container_named("nope", Version::V4).is_none());
    }

    #[test]
    fn v3_leaves_out_v4_fields() {
        let (mut task, def, docker) = sample();
        task.cpu = None;
        task.memory = None;
        task.containers[0].exit_code = Some(0);
        task.containers[0].finished_at = Some(1_601_597_800.0);
        let view = View {
            task: &task,
            def: Some(&def),
            docker: &docker,
            region: "us-east-1",
        };
        let v = view.task(Version::V3);
        assert!(v.get("LaunchType").is_none());
        assert!(v.get("ServiceName").is_none());
        assert!(v.get("Limits").is_none());
        let c = &v["Containers"][0];
        assert!(c.get("ContainerARN").is_none());
        assert!(c.get("LogDriver").is_none());
        assert_eq!(c["ExitCode"], 0);
        assert_eq!(c["FinishedAt"], "2020-10-02T00:16:40Z");
        assert_eq!(c["Revision"], Value::Null);
        assert_eq!(v["Revision"], "3");
    }

    #[test]
    fn host_and_awsvpc_networks() {
        let (mut task, _, docker) = sample();
        task.network_mode = "host".into();
        let view = View {
            task: &task,
            def: None,
            docker: &docker,
            region: "us-east-1",
        };
        assert_eq!(
            view.task(Version::V4)["Containers"][0]["Networks"],
            json!([{"NetworkMode": "host"}])
        );
        task.network_mode = "awsvpc".into();
        let view = View {
            task: &task,
            def: None,
            docker: &docker,
            region: "us-east-1",
        };
        let c = view.task(Version::V4)["Containers"][0].clone();
        assert_eq!(
            c["Networks"],
            json!([{"NetworkMode": "awsvpc", "IPv4Addresses": ["172.17.0.2"]}])
        );
        assert!(c.get("LogDriver").is_none());
    }
}
