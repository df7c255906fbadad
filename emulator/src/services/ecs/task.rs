//! The task record: what RunTask asked for and what the agent has observed.

use super::model::{
    null_as_default, ContainerStatus, DesiredStatus, HealthStatus, KeyValuePair, LbTarget,
    NetworkConfiguration, Tag, TaskOverride, TaskStatus,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct TaskContainer {
    pub name: String,
    pub arn: String,
    pub image: String,
    #[serde(default)]
    pub image_digest: Option<String>,
    /// The Docker container id.
    #[serde(default)]
    pub runtime_id: Option<String>,
    pub last_status: ContainerStatus,
    #[serde(default)]
    pub exit_code: Option<i64>,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub network_bindings: Vec<Value>,
    #[serde(default)]
    pub health_status: Option<HealthStatus>,
    pub essential: bool,
    pub cpu: i64,
    #[serde(default)]
    pub memory: Option<i64>,
    #[serde(default)]
    pub memory_reservation: Option<i64>,
    #[serde(default)]
    pub created_at: Option<f64>,
    #[serde(default)]
    pub started_at: Option<f64>,
    #[serde(default)]
    pub finished_at: Option<f64>,
    /// The command it runs: the override's, else the definition's (the plan, computed at launch).
    #[serde(default)]
    pub command: Option<Vec<String>>,
    /// Its environment: the definition's, then the override's (the plan, computed at launch).
    #[serde(default)]
    pub environment: Vec<KeyValuePair>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Task {
    pub arn: String,
    pub id: String,
    pub cluster: String,
    pub cluster_arn: String,
    pub task_definition_arn: String,
    pub family: String,
    pub revision: i64,
    #[serde(default)]
    pub container_instance_arn: Option<String>,
    #[serde(default)]
    pub ec2_instance_id: Option<String>,
    /// The instance's own loopback address, where bridge-mode ports are published.
    #[serde(default)]
    pub host_ip: Option<String>,
    pub launch_type: String,
    #[serde(default)]
    pub capacity_provider_name: Option<String>,
    pub last_status: TaskStatus,
    pub desired_status: DesiredStatus,
    pub created_at: f64,
    #[serde(default)]
    pub started_at: Option<f64>,
    #[serde(default)]
    pub stopping_at: Option<f64>,
    #[serde(default)]
    pub stopped_at: Option<f64>,
    #[serde(default)]
    pub execution_stopped_at: Option<f64>,
    #[serde(default)]
    pub pull_started_at: Option<f64>,
    #[serde(default)]
    pub pull_stopped_at: Option<f64>,
    #[serde(default)]
    pub connectivity_at: Option<f64>,
    #[serde(default)]
    pub started_by: Option<String>,
    pub group: String,
    #[serde(default)]
    pub stop_code: Option<String>,
    #[serde(default)]
    pub stopped_reason: Option<String>,
    /// Task-level cpu and memory as ECS reports them (strings).
    #[serde(default)]
    pub cpu: Option<String>,
    #[serde(default)]
    pub memory: Option<String>,
    /// Resources reserved on the instance (placement accounting).
    pub reserved_cpu: i64,
    pub reserved_memory: i64,
    #[serde(default)]
    pub reserved_tcp_ports: Vec<u16>,
    #[serde(default)]
    pub reserved_udp_ports: Vec<u16>,
    pub network_mode: String,
    /// RunTask's networkConfiguration (awsvpc).
    #[serde(default)]
    pub network_configuration: Option<NetworkConfiguration>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub overrides: TaskOverride,
    /// The task role: the override's, else the definition's (the plan, computed at launch).
    #[serde(default)]
    pub task_role_arn: Option<String>,
    /// Whether the per-container plan (command, environment) and the task role are stored;
    /// rows written before they were are completed at start (`Ecs::migrate_task_plans`).
    #[serde(default)]
    pub planned: bool,
    #[serde(default)]
    pub tags: Vec<Tag>,
    #[serde(default)]
    pub attachments: Vec<Value>,
    #[serde(default)]
    pub availability_zone: Option<String>,
    #[serde(default)]
    pub enable_execute_command: bool,
    #[serde(default)]
    pub platform_version: Option<String>,
    pub containers: Vec<TaskContainer>,
    pub version: i64,
    /// Secret of the task's credentials and metadata endpoints.
    #[serde(default)]
    pub endpoint_id: String,
    #[serde(default)]
    pub health_status: Option<HealthStatus>,
    /// Load balancer targets the service scheduler registered for this task.
    #[serde(default)]
    pub lb_targets: Vec<LbTarget>,
    /// PROVISIONING on a capacity provider that has no room yet: no instance is chosen until
    /// one with room registers (controllers/capacity.rs).
    #[serde(default)]
    pub awaiting_capacity: bool,
    /// Set when the agent started it on `--runtime simulated`: nothing runs.
    #[serde(default)]
    pub simulated: bool,
}

/// The attribute DescribeTasks shows on tasks of the simulated runtime.
pub const SIMULATED_ATTRIBUTE: &str = "ecs-emulator.runtime";

impl Task {
    pub fn is_stopped(&self) -> bool {
        self.last_status == TaskStatus::Stopped
    }

    /// Should run (desiredStatus RUNNING).
    pub fn wanted(&self) -> bool {
        self.desired_status == DesiredStatus::Running
    }

    /// Holds its reservation on the instance: anything not yet STOPPED.
    pub fn holds_resources(&self) -> bool {
        !self.is_stopped()
    }

    /// The task's attributes; on the simulated runtime, one saying that nothing runs.
    fn attributes(&self) -> Value {
        let mut attributes = vec![json!({"name": "ecs.cpu-architecture", "value": "x86_64"})];
        if self.simulated {
            attributes.push(json!({"name": SIMULATED_ATTRIBUTE, "value": "simulated"}));
        }
        Value::from(attributes)
    }

    pub fn is_running(&self) -> bool {
        self.last_status == TaskStatus::Running
    }

    pub fn is_pending(&self) -> bool {
        self.last_status.is_pending()
    }

    /// Task health: HEALTHY when every essential container with a health check is healthy,
    /// UNHEALTHY when any essential one is unhealthy, else UNKNOWN.
    pub fn computed_health(&self) -> HealthStatus {
        let essential: Vec<&TaskContainer> =
            self.containers.iter().filter(|c| c.essential).collect();
        if essential
            .iter()
            .any(|c| c.health_status == Some(HealthStatus::Unhealthy))
        {
            return HealthStatus::Unhealthy;
        }
        let checked: Vec<&&TaskContainer> = essential
            .iter()
            .filter(|c| c.health_status.is_some())
            .collect();
        if !checked.is_empty()
            && checked
                .iter()
                .all(|c| c.health_status == Some(HealthStatus::Healthy))
        {
            return HealthStatus::Healthy;
        }
        HealthStatus::Unknown
    }

    /// The Task structure as DescribeTasks shows it.
    pub fn describe(&self, include_tags: bool) -> Value {
        let mut v = json!({
            "taskArn": self.arn,
            "clusterArn": self.cluster_arn,
            "taskDefinitionArn": self.task_definition_arn,
            "lastStatus": self.last_status,
            "desiredStatus": self.desired_status,
            "launchType": self.launch_type,
            "createdAt": self.created_at,
            "group": self.group,
            "version": self.version,
            "overrides": self.overrides,
            "containers": self.containers.iter().map(|c| self.describe_container(c)).collect::<Vec<_>>(),
            "attachments": self.attachments,
            "attributes": self.attributes(),
            "healthStatus": self.health_status.unwrap_or_else(|| self.computed_health()),
            "enableExecuteCommand": self.enable_execute_command,
            "tags": if include_tags { json!(self.tags) } else { json!([]) },
        });
        let opt = |v: &mut Value, k: &str, x: Option<Value>| {
            if let Some(x) = x {
                v[k] = x;
            }
        };
        opt(
            &mut v,
            "containerInstanceArn",
            self.container_instance_arn.clone().map(Value::from),
        );
        opt(
            &mut v,
            "capacityProviderName",
            self.capacity_provider_name.clone().map(Value::from),
        );
        opt(
            &mut v,
            "availabilityZone",
            self.availability_zone.clone().map(Value::from),
        );
        opt(&mut v, "cpu", self.cpu.clone().map(Value::from));
        opt(&mut v, "memory", self.memory.clone().map(Value::from));
        opt(&mut v, "startedAt", self.started_at.map(Value::from));
        opt(&mut v, "stoppingAt", self.stopping_at.map(Value::from));
        opt(&mut v, "stoppedAt", self.stopped_at.map(Value::from));
        opt(
            &mut v,
            "executionStoppedAt",
            self.execution_stopped_at.map(Value::from),
        );
        opt(
            &mut v,
            "pullStartedAt",
            self.pull_started_at.map(Value::from),
        );
        opt(
            &mut v,
            "pullStoppedAt",
            self.pull_stopped_at.map(Value::from),
        );
        opt(
            &mut v,
            "startedBy",
            self.started_by.clone().map(Value::from),
        );
        opt(&mut v, "stopCode", self.stop_code.clone().map(Value::from));
        opt(
            &mut v,
            "stoppedReason",
            self.stopped_reason.clone().map(Value::from),
        );
        opt(
            &mut v,
            "platformVersion",
            self.platform_version.clone().map(Value::from),
        );
        if self.connectivity_at.is_some() {
            v["connectivity"] = json!("CONNECTED");
            opt(
                &mut v,
                "connectivityAt",
                self.connectivity_at.map(Value::from),
            );
        }
        if self.launch_type == "FARGATE" {
            v["platformFamily"] = json!("Linux");
        }
        v
    }

    fn describe_container(&self, c: &TaskContainer) -> Value {
        let mut v = json!({
            "containerArn": c.arn,
            "taskArn": self.arn,
            "name": c.name,
            "image": c.image,
            "lastStatus": c.last_status,
            "networkBindings": c.network_bindings,
            "networkInterfaces": self.network_interfaces(),
            "healthStatus": c.health_status.unwrap_or(HealthStatus::Unknown),
            "cpu": c.cpu.to_string(),
        });
        if let Some(d) = &c.image_digest {
            v["imageDigest"] = json!(d);
        }
        if let Some(id) = &c.runtime_id {
            v["runtimeId"] = json!(id);
        }
        if let Some(code) = c.exit_code {
            v["exitCode"] = json!(code);
        }
        if let Some(r) = &c.reason {
            v["reason"] = json!(r);
        }
        if let Some(m) = c.memory {
            v["memory"] = json!(m.to_string());
        }
        if let Some(m) = c.memory_reservation {
            v["memoryReservation"] = json!(m.to_string());
        }
        v
    }

    /// awsvpc tasks list their ENI's address on every container.
    fn network_interfaces(&self) -> Vec<Value> {
        self.attachments
            .iter()
            .filter(|a| a.get("type").and_then(Value::as_str) == Some("ElasticNetworkInterface"))
            .map(|a| {
                let detail = |name: &str| {
                    a.get("details")
                        .and_then(Value::as_array)
                        .and_then(|d| d.iter().find(|x| x.get("name").and_then(Value::as_str) == Some(name)))
                        .and_then(|x| x.get("value").cloned())
                        .unwrap_or(Value::Null)
                };
                json!({"attachmentId": a.get("id").cloned().unwrap_or(Value::Null), "privateIpv4Address": detail("privateIPv4Address")})
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_rolls_up_from_essential_containers() {
        let c = |essential: bool, h: Option<HealthStatus>| TaskContainer {
            essential,
            health_status: h,
            ..Default::default()
        };
        let mut t = Task {
            containers: vec![
                c(true, Some(HealthStatus::Healthy)),
                c(false, Some(HealthStatus::Unhealthy)),
            ],
            ..Default::default()
        };
        assert_eq!(t.computed_health(), HealthStatus::Healthy);
        t.containers.push(c(true, None));
        assert_eq!(t.computed_health(), HealthStatus::Healthy);
        t.containers.push(c(true, Some(HealthStatus::Unhealthy)));
        assert_eq!(t.computed_health(), HealthStatus::Unhealthy);
        let none = Task {
            containers: vec![c(true, None)],
            ..Default::default()
        };
        assert_eq!(none.computed_health(), HealthStatus::Unknown);
    }
}
