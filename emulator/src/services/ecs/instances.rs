//! Container instances: virtual EC2 instances whose emulated agent registered with a cluster.
//! RegisterContainerInstance, DeregisterContainerInstance, DescribeContainerInstances,
//! ListContainerInstances, UpdateContainerInstancesState, PutAttributes, DeleteAttributes,
//! ListAttributes.

use super::arns::ResourceArn;
use super::task::Task;
use super::Ecs;
use crate::protocol::codes;
use crate::protocol::AwsError;
use crate::services::ec2::instance_types::{self, InstanceType};
use crate::services::ec2::machines::random_loopback;
use crate::services::ec2::AgentHost;
use crate::services::input::Input;
use crate::services::page::{page, with_next};
use crate::services::{random_hex, Ctx, HandlerResult, Registry};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

/// Ports every container instance reserves (SSH, Docker, the ECS agent).
pub const RESERVED_PORTS: [u16; 5] = [22, 2375, 2376, 51678, 51679];
pub const AGENT_VERSION: &str = "1.90.0";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerInstance {
    pub arn: String,
    pub id: String,
    pub cluster: String,
    pub ec2_instance_id: String,
    /// ACTIVE, DRAINING, INACTIVE (deregistered; describable for a while).
    pub status: String,
    pub agent_connected: bool,
    pub instance_type: String,
    pub registered_cpu: i64,
    pub registered_memory: i64,
    pub availability_zone: String,
    #[serde(default)]
    pub subnet_id: Option<String>,
    #[serde(default)]
    pub vpc_id: Option<String>,
    #[serde(default)]
    pub private_ip: Option<String>,
    /// The instance's own loopback address (127.16.0.0/12) where bridge-mode host ports bind,
    /// so two instances can both publish port 80 as two hosts would.
    pub host_ip: String,
    #[serde(default)]
    pub attributes: Vec<Value>,
    pub registered_at: f64,
    #[serde(default)]
    pub deregistered_at: Option<f64>,
    pub version: i64,
    #[serde(default)]
    pub tags: Vec<Value>,
    #[serde(default)]
    pub capacity_provider_name: Option<String>,
    /// The EC2 Auto Scaling group it was launched by (AWS/EC2 metrics per group).
    #[serde(default)]
    pub autoscaling_group: Option<String>,
    pub arch: String,
}

/// What a new virtual instance looks like.
#[derive(Debug, Clone)]
pub struct InstanceLaunch {
    pub cluster: String,
    pub ec2_instance_id: Option<String>,
    pub instance_type: String,
    pub availability_zone: String,
    pub subnet_id: Option<String>,
    pub vpc_id: Option<String>,
    pub private_ip: Option<String>,
    pub ami_id: Option<String>,
    pub attributes: Vec<Value>,
    pub tags: Vec<Value>,
    /// The EC2 Auto Scaling group of the instance (its `aws:autoscaling:groupName` tag): the
    /// instance belongs to that group's capacity provider when it is the cluster's.
    pub autoscaling_group: Option<String>,
}

pub fn register(r: &mut Registry, ecs: &Arc<Ecs>) {
    r.sync(
        "ecs",
        "RegisterContainerInstance",
        ecs,
        register_container_instance,
    );
    r.sync(
        "ecs",
        "DeregisterContainerInstance",
        ecs,
        deregister_container_instance,
    );
    r.sync(
        "ecs",
        "DescribeContainerInstances",
        ecs,
        describe_container_instances,
    );
    r.sync(
        "ecs",
        "ListContainerInstances",
        ecs,
        list_container_instances,
    );
    r.sync("ecs", "UpdateContainerInstancesState", ecs, update_state);
    r.sync("ecs", "PutAttributes", ecs, put_attributes);
    r.sync("ecs", "DeleteAttributes", ecs, delete_attributes);
    r.sync("ecs", "ListAttributes", ecs, list_attributes);
}

fn attr(name: &str, value: &str) -> Value {
    json!({"name": name, "value": value})
}

/// Resources an instance has left: registered less what its unstopped tasks reserve.
#[derive(Debug, Clone, PartialEq)]
pub struct Remaining {
    pub cpu: i64,
    pub memory: i64,
    pub tcp_ports: BTreeSet<u16>,
    pub udp_ports: BTreeSet<u16>,
    pub running: i64,
    pub pending: i64,
}

impl ContainerInstance {
    /// What the instance has left once `tasks` (any of the cluster's; those on other instances
    /// or holding nothing are passed over) are counted.
    pub fn remaining<'a>(&self, tasks: impl IntoIterator<Item = &'a Task>) -> Remaining {
        let mut r = Remaining {
            cpu: self.registered_cpu,
            memory: self.registered_memory,
            tcp_ports: RESERVED_PORTS.into_iter().collect(),
            udp_ports: BTreeSet::new(),
            running: 0,
            pending: 0,
        };
        for t in tasks.into_iter().filter(|t| {
            t.container_instance_arn.as_deref() == Some(&self.arn) && t.holds_resources()
        }) {
            r.cpu -= t.reserved_cpu;
            r.memory -= t.reserved_memory;
            r.tcp_ports.extend(&t.reserved_tcp_ports);
            r.udp_ports.extend(&t.reserved_udp_ports);
            if t.is_running() {
                r.running += 1;
            } else {
                r.pending += 1;
            }
        }
        r
    }

    pub fn attribute(&self, name: &str) -> Option<String> {
        self.attributes
            .iter()
            .find(|a| a.str("name") == Some(name))
            .map(|a| a.str("value").unwrap_or_default().to_string())
    }

    pub fn describe(&self, tasks: &[Task], include_tags: bool) -> Value {
        let rem = self.remaining(tasks);
        let resources = |cpu: i64, memory: i64, tcp: Vec<String>, udp: Vec<String>| {
            json!([
                {"name": "CPU", "type": "INTEGER", "doubleValue": 0.0, "longValue": 0, "integerValue": cpu},
                {"name": "MEMORY", "type": "INTEGER", "doubleValue": 0.0, "longValue": 0, "integerValue": memory},
                {"name": "PORTS", "type": "STRINGSET", "doubleValue": 0.0, "longValue": 0, "integerValue": 0, "stringSetValue": tcp},
                {"name": "PORTS_UDP", "type": "STRINGSET", "doubleValue": 0.0, "longValue": 0, "integerValue": 0, "stringSetValue": udp},
            ])
        };
        let reserved: Vec<String> = RESERVED_PORTS.iter().map(u16::to_string).collect();
        let mut v = json!({
            "containerInstanceArn": self.arn,
            "ec2InstanceId": self.ec2_instance_id,
            "version": self.version,
            "versionInfo": {"agentVersion": AGENT_VERSION, "agentHash": "ecsemu", "dockerVersion": "DockerVersion: 20.10.24"},
            "remainingResources": resources(rem.cpu, rem.memory, rem.tcp_ports.iter().map(u16::to_string).collect(), rem.udp_ports.iter().map(u16::to_string).collect()),
            "registeredResources": resources(self.registered_cpu, self.registered_memory, reserved, vec![]),
            "status": self.status,
            "agentConnected": self.agent_connected,
            "runningTasksCount": rem.running,
            "pendingTasksCount": rem.pending,
            "attributes": self.attributes,
            "registeredAt": self.registered_at,
            "attachments": [],
            "tags": if include_tags { json!(self.tags) } else { json!([]) },
        });
        if let Some(cp) = &self.capacity_provider_name {
            v["capacityProviderName"] = json!(cp);
        }
        v
    }
}

impl Ecs {
    fn instance_key(scope: &str, cluster: &str, id: &str) -> String {
        format!("{scope}{cluster}/{id}")
    }

    /// Data dirs written before EC2 owned the machine: every registered container instance gets
    /// its EC2 instance (recorded when only an identity document named it) holding the loopback
    /// address the container instance already uses, so running containers keep their address.
    pub(crate) fn migrate_machines(&self) {
        let live: Vec<(String, ContainerInstance)> = self.instances.read(|rows| {
            rows.iter()
                .filter(|(_, c)| c.status != "INACTIVE")
                .map(|(k, c)| (k.clone(), c.clone()))
                .collect()
        });
        for (key, c) in live {
            let mut parts = key.splitn(3, '/');
            let (Some(account), Some(region)) = (parts.next(), parts.next()) else {
                continue;
            };
            let ctx = Ctx {
                account: account.to_string(),
                region: region.to_string(),
                request_id: String::new(),
                now: c.registered_at,
                access_key: None,
            };
            let host = AgentHost {
                instance_id: Some(c.ec2_instance_id.clone()),
                instance_type: c.instance_type.clone(),
                availability_zone: c.availability_zone.clone(),
                private_ip: c.private_ip.clone(),
                image_id: None,
                host_ip: Some(c.host_ip.clone()),
            };
            if let Err(e) = self.ec2.machine_for_agent(&ctx, host) {
                tracing::warn!(instance = %c.ec2_instance_id, error = %e.message, "cannot record the EC2 instance of a container instance");
            }
        }
    }

    /// Registers a virtual instance with a cluster, as the agent on a booting instance does.
    pub fn register_instance(
        &self,
        ctx: &Ctx,
        launch: InstanceLaunch,
    ) -> Result<ContainerInstance, AwsError> {
        self.active_cluster(ctx, Some(&launch.cluster))?;
        let itype: InstanceType =
            instance_types::lookup(&launch.instance_type).ok_or_else(|| {
                AwsError::new(
                    codes::ecs::InvalidParameterException,
                    format!("Unsupported instance type: {}", launch.instance_type),
                )
            })?;
        let id = uuid::Uuid::new_v4().simple().to_string();
        // EC2 owns the machine: the instance (recorded now when only an identity document names
        // it) and its host loopback address.
        let (ec2_id, host_ip) = match self.ec2.machine_for_agent(
            ctx,
            AgentHost {
                instance_id: launch.ec2_instance_id.clone(),
                instance_type: itype.name.into(),
                availability_zone: launch.availability_zone.clone(),
                private_ip: launch.private_ip.clone(),
                image_id: launch.ami_id.clone(),
                host_ip: None,
            },
        ) {
            Ok(m) => (m.instance_id, m.host_ip),
            Err(e) => {
                // E.g. the default VPC was deleted: the agent still registers, as ECS does not
                // check the identity document; EC2 has no record of the machine then.
                tracing::warn!(error = %e.message, "no EC2 instance recorded for a container instance");
                let id = launch
                    .ec2_instance_id
                    .clone()
                    .unwrap_or_else(|| format!("i-{}", random_hex(17)));
                (id, random_loopback())
            }
        };
        let mut attributes = vec![
            attr("ecs.availability-zone", &launch.availability_zone),
            attr("ecs.instance-type", itype.name),
            attr("ecs.os-type", "linux"),
            attr("ecs.os-family", "LINUX"),
            attr("ecs.cpu-architecture", itype.arch()),
            attr(
                "ecs.ami-id",
                launch.ami_id.as_deref().unwrap_or("ami-0ecs000000000000"),
            ),
            attr("ecs.capability.docker-remote-api.1.41", ""),
            attr("ecs.capability.task-eni", ""),
            attr("ecs.capability.container-health-check", ""),
            attr("ecs.capability.execution-role-awslogs", ""),
            attr("ecs.capability.secrets.ssm.environment-variables", ""),
            attr("ecs.capability.container-ordering", ""),
            attr("com.amazonaws.ecs.capability.logging-driver.awslogs", ""),
            attr("com.amazonaws.ecs.capability.task-iam-role", ""),
        ];
        if let Some(vpc) = &launch.vpc_id {
            attributes.push(attr("ecs.vpc-id", vpc));
        }
        if let Some(subnet) = &launch.subnet_id {
            attributes.push(attr("ecs.subnet-id", subnet));
        }
        for a in launch.attributes {
            let name = a.str("name").unwrap_or_default().to_string();
            attributes.retain(|x| x.str("name") != Some(&name));
            attributes.push(a);
        }
        let instance = ContainerInstance {
            arn: ctx.arn(
                "ecs",
                &format!("container-instance/{}/{}", launch.cluster, id),
            ),
            id: id.clone(),
            cluster: launch.cluster.clone(),
            ec2_instance_id: ec2_id,
            status: "ACTIVE".into(),
            agent_connected: true,
            instance_type: itype.name.into(),
            registered_cpu: itype.registered_cpu(),
            registered_memory: itype.registered_memory(),
            availability_zone: launch.availability_zone,
            subnet_id: launch.subnet_id,
            vpc_id: launch.vpc_id,
            private_ip: launch.private_ip,
            host_ip,
            attributes,
            registered_at: ctx.now,
            deregistered_at: None,
            version: 1,
            tags: launch.tags,
            autoscaling_group: launch.autoscaling_group.clone(),
            capacity_provider_name: launch
                .autoscaling_group
                .as_deref()
                .and_then(|g| self.provider_of_group(&ctx.scope(), g))
                .filter(|p| p.cluster.as_deref() == Some(launch.cluster.as_str()))
                .map(|p| p.name),
            arch: itype.arch().into(),
        };
        let key = Self::instance_key(&ctx.scope(), &launch.cluster, &id);
        self.instances.put(&key, instance.clone())?;
        self.wake_agent();
        Ok(instance)
    }

    /// Finds a container instance by ARN or id in a cluster.
    pub fn instance(
        &self,
        ctx: &Ctx,
        cluster: &str,
        reference: &str,
    ) -> Option<(String, ContainerInstance)> {
        let id = match ResourceArn::parse(reference) {
            Some(a) => a.path.rsplit('/').next().unwrap_or_default().to_string(),
            None => reference.to_string(),
        };
        let key = Self::instance_key(&ctx.scope(), cluster, &id);
        self.instances.get(&key).map(|i| (key, i))
    }

    /// The cluster's instances (every status).
    pub fn cluster_instances(&self, scope: &str, cluster: &str) -> Vec<ContainerInstance> {
        self.instances
            .scan(&format!("{scope}{cluster}/"))
            .into_iter()
            .map(|(_, i)| i)
            .collect()
    }

    /// The tasks of a service (group `service:<name>`), stopped ones included; read through the
    /// tasks' group index, so it costs the service's tasks, not the cluster's.
    pub fn service_tasks(&self, scope: &str, cluster: &str, service: &str) -> Vec<Task> {
        self.tasks
            .by_index(&group_key(scope, cluster, &format!("service:{service}")))
            .into_iter()
            .map(|(_, t)| t)
            .collect()
    }

    /// The ARNs of a cluster's DRAINING container instances.
    pub fn draining_instances(&self, scope: &str, cluster: &str) -> HashSet<String> {
        let prefix = format!("{scope}{cluster}/");
        self.instances.read(|rows| {
            rows.range(prefix.clone()..)
                .take_while(|(k, _)| k.starts_with(&prefix))
                .filter(|(_, i)| i.status == "DRAINING")
                .map(|(_, i)| i.arn.clone())
                .collect()
        })
    }

    /// Unstopped tasks of a cluster (what instance accounting needs).
    pub fn live_tasks(&self, scope: &str, cluster: &str) -> Vec<Task> {
        self.tasks
            .scan(&format!("{scope}{cluster}/"))
            .into_iter()
            .map(|(_, t)| t)
            .filter(Task::holds_resources)
            .collect()
    }
}

fn register_container_instance(ecs: &Ecs, ctx: &Ctx, input: Value) -> HandlerResult {
    let cluster = ecs.active_cluster(ctx, input.str("cluster"))?;
    // The real agent sends the instance identity document; the emulator reads the instance type
    // and AZ from it when present, else from the attributes, else defaults.
    let doc: Value = input
        .str("instanceIdentityDocument")
        .and_then(|d| serde_json::from_str(d).ok())
        .unwrap_or(Value::Null);
    let attrs = input
        .get("attributes")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let from_attrs = |n: &str| {
        attrs
            .iter()
            .find(|a| a.str("name") == Some(n))
            .and_then(|a| a.str("value"))
            .map(str::to_string)
    };
    let instance_type = doc
        .str("instanceType")
        .map(str::to_string)
        .or_else(|| from_attrs("ecs.instance-type"))
        .unwrap_or_else(|| "m5.large".into());
    let az = doc
        .str("availabilityZone")
        .map(str::to_string)
        .or_else(|| from_attrs("ecs.availability-zone"))
        .unwrap_or_else(|| format!("{}a", ctx.region));
    let instance = ecs.register_instance(
        ctx,
        InstanceLaunch {
            cluster: cluster.name,
            ec2_instance_id: doc.str("instanceId").map(str::to_string),
            instance_type,
            availability_zone: az,
            subnet_id: None,
            vpc_id: None,
            private_ip: doc.str("privateIp").map(str::to_string),
            ami_id: doc.str("imageId").map(str::to_string),
            attributes: attrs,
            tags: input
                .get("tags")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
            autoscaling_group: None,
        },
    )?;
    Ok(json!({"containerInstance": instance.describe(&[], true)}))
}

fn deregister_container_instance(ecs: &Ecs, ctx: &Ctx, input: Value) -> HandlerResult {
    let cluster = ecs.active_cluster(ctx, input.str("cluster"))?;
    let reference = input.str("containerInstance").unwrap_or_default();
    let (key, instance) = ecs
        .instance(ctx, &cluster.name, reference)
        .filter(|(_, i)| i.status != "INACTIVE")
        .ok_or_else(|| {
            AwsError::new(
                codes::ecs::InvalidParameterException,
                "The referenced container instance is not registered with this cluster.",
            )
        })?;
    let tasks: Vec<Task> = ecs
        .live_tasks(&ctx.scope(), &cluster.name)
        .into_iter()
        .filter(|t| t.container_instance_arn.as_deref() == Some(&instance.arn))
        .collect();
    let force = input.bool("force").unwrap_or(false);
    if !tasks.is_empty() && !force {
        return Err(AwsError::new(
            codes::ecs::InvalidParameterException,
            "Found running tasks on the instance. Use force=true to deregister the instance.",
        ));
    }
    ecs.stop_tasks_where(
        ctx,
        &cluster.name,
        |t| t.container_instance_arn.as_deref() == Some(&instance.arn),
        "InfrastructureHealth",
        "Container instance deregistration forced by user",
    )?;
    let updated = ecs.instances.transact::<_, AwsError, _>(|t| {
        let i = t.get_mut(&key).ok_or_else(|| {
            AwsError::new(codes::ecs::InvalidParameterException, "not registered")
        })?;
        i.status = "INACTIVE".into();
        i.agent_connected = false;
        i.deregistered_at = Some(ctx.now);
        i.version += 1;
        Ok(i.clone())
    })?;
    Ok(json!({"containerInstance": updated.describe(&[], true)}))
}

fn describe_container_instances(ecs: &Ecs, ctx: &Ctx, input: Value) -> HandlerResult {
    if input.string_list("containerInstances").is_empty() {
        return Err(AwsError::new(
            codes::ecs::InvalidParameterException,
            "Container instance cannot be empty.",
        ));
    }
    let cluster = ecs.active_cluster(ctx, input.str("cluster"))?;
    let include_tags = input.string_list("include").iter().any(|i| i == "TAGS");
    let tasks = ecs.live_tasks(&ctx.scope(), &cluster.name);
    let mut found = Vec::new();
    let mut failures = Vec::new();
    for reference in input.string_list("containerInstances") {
        match ecs.instance(ctx, &cluster.name, &reference) {
            Some((_, i)) => found.push(i.describe(&tasks, include_tags)),
            None => {
                let arn = if reference.starts_with("arn:") {
                    reference.clone()
                } else {
                    ctx.arn(
                        "ecs",
                        &format!("container-instance/{}/{}", cluster.name, reference),
                    )
                };
                failures.push(json!({"arn": arn, "reason": "MISSING"}));
            }
        }
    }
    Ok(json!({"containerInstances": found, "failures": failures}))
}

fn list_container_instances(ecs: &Ecs, ctx: &Ctx, input: Value) -> HandlerResult {
    let cluster = ecs.active_cluster(ctx, input.str("cluster"))?;
    let status = input.str("status");
    let tasks = ecs.live_tasks(&ctx.scope(), &cluster.name);
    let filter = input.str("filter").filter(|f| !f.trim().is_empty());
    let mut arns = Vec::new();
    for i in ecs.cluster_instances(&ctx.scope(), &cluster.name) {
        let visible = match status {
            Some(s) => i.status == s,
            None => i.status != "INACTIVE",
        };
        if !visible {
            continue;
        }
        if let Some(expr) = filter {
            if !super::matches_filter(&i, &tasks, expr)? {
                continue;
            }
        }
        arns.push(i.arn);
    }
    super::list_page("containerInstanceArns", arns, &input, 100)
}

fn update_state(ecs: &Ecs, ctx: &Ctx, input: Value) -> HandlerResult {
    let cluster = ecs.active_cluster(ctx, input.str("cluster"))?;
    let status = input.str("status").unwrap_or_default().to_string();
    if !matches!(status.as_str(), "ACTIVE" | "DRAINING") {
        return Err(AwsError::new(
            codes::ecs::InvalidParameterException,
            "Container instance status can only be updated to ACTIVE or DRAINING.",
        ));
    }
    let tasks = ecs.live_tasks(&ctx.scope(), &cluster.name);
    let mut updated = Vec::new();
    let mut failures = Vec::new();
    for reference in input.string_list("containerInstances") {
        let Some((key, _)) = ecs
            .instance(ctx, &cluster.name, &reference)
            .filter(|(_, i)| i.status != "INACTIVE")
        else {
            failures.push(json!({"arn": reference, "reason": "MISSING"}));
            continue;
        };
        let i = ecs.instances.transact::<_, AwsError, _>(|t| {
            let i = t
                .get_mut(&key)
                .ok_or_else(|| AwsError::new(codes::ecs::InvalidParameterException, "missing"))?;
            if i.status != status {
                i.status = status.clone();
                i.version += 1;
            }
            Ok(i.clone())
        })?;
        updated.push(i.describe(&tasks, false));
    }
    // Standalone tasks keep running on a DRAINING instance; services move theirs away.
    ecs.wake_agent();
    Ok(json!({"containerInstances": updated, "failures": failures}))
}

/// The instance an attribute targets (targetId: ARN or id; default: none → error).
fn attribute_target(ecs: &Ecs, ctx: &Ctx, cluster: &str, a: &Value) -> Result<String, AwsError> {
    let target_type = a.str("targetType").unwrap_or("container-instance");
    if target_type != "container-instance" {
        return Err(AwsError::new(
            codes::ecs::InvalidParameterException,
            "targetType must be container-instance.",
        ));
    }
    let target = a.str("targetId").ok_or_else(|| {
        AwsError::new(
            codes::ecs::InvalidParameterException,
            "targetId is required for attributes.",
        )
    })?;
    ecs.instance(ctx, cluster, target)
        .map(|(k, _)| k)
        .ok_or_else(|| {
            AwsError::new(
                codes::ecs::TargetNotFoundException,
                format!("Could not find {target}."),
            )
        })
}

fn put_attributes(ecs: &Ecs, ctx: &Ctx, input: Value) -> HandlerResult {
    let cluster = ecs.active_cluster(ctx, input.str("cluster"))?;
    let attrs = input
        .get("attributes")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for a in &attrs {
        let name = a.str("name").unwrap_or_default();
        let valid = !name.is_empty()
            && name.len() <= 128
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./@".contains(c));
        if !valid {
            return Err(AwsError::new(
                codes::ecs::InvalidParameterException,
                format!("Attribute name '{name}' is invalid."),
            ));
        }
        let key = attribute_target(ecs, ctx, &cluster.name, a)?;
        ecs.instances.transact::<_, AwsError, _>(|t| {
            let i = t
                .get_mut(&key)
                .ok_or_else(|| AwsError::new(codes::ecs::TargetNotFoundException, "missing"))?;
            i.attributes.retain(|x| x.str("name") != Some(name));
            let mut stored = json!({"name": name});
            if let Some(v) = a.str("value") {
                stored["value"] = json!(v);
            }
            i.attributes.push(stored);
            Ok(())
        })?;
    }
    Ok(json!({"attributes": attrs}))
}

fn delete_attributes(ecs: &Ecs, ctx: &Ctx, input: Value) -> HandlerResult {
    let cluster = ecs.active_cluster(ctx, input.str("cluster"))?;
    let attrs = input
        .get("attributes")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for a in &attrs {
        let name = a.str("name").unwrap_or_default();
        let key = attribute_target(ecs, ctx, &cluster.name, a)?;
        ecs.instances.transact::<_, AwsError, _>(|t| {
            let i = t
                .get_mut(&key)
                .ok_or_else(|| AwsError::new(codes::ecs::TargetNotFoundException, "missing"))?;
            i.attributes.retain(|x| x.str("name") != Some(name));
            Ok(())
        })?;
    }
    Ok(json!({"attributes": attrs}))
}

fn list_attributes(ecs: &Ecs, ctx: &Ctx, input: Value) -> HandlerResult {
    let cluster = ecs.active_cluster(ctx, input.str("cluster"))?;
    let name = input.str("attributeName");
    let value = input.str("attributeValue");
    if value.is_some() && name.is_none() {
        return Err(AwsError::new(
            codes::ecs::InvalidParameterException,
            "attributeValue requires attributeName.",
        ));
    }
    let mut out = Vec::new();
    for i in ecs
        .cluster_instances(&ctx.scope(), &cluster.name)
        .into_iter()
        .filter(|i| i.status != "INACTIVE")
    {
        for a in &i.attributes {
            if name.is_some_and(|n| a.str("name") != Some(n))
                || value.is_some_and(|v| a.str("value") != Some(v))
            {
                continue;
            }
            let mut a = a.clone();
            a["targetType"] = json!("container-instance");
            a["targetId"] = json!(i.arn);
            out.push(a);
        }
    }
    let max = input.i64("maxResults").unwrap_or(100).clamp(1, 1000) as usize;
    let key = |a: &Value| {
        format!(
            "{}\u{0}{}",
            a.str("targetId").unwrap_or_default(),
            a.str("name").unwrap_or_default()
        )
    };
    out.sort_by_key(key);
    let (out, next) = page(
        out,
        key,
        input.str("nextToken"),
        max,
        codes::ecs::InvalidParameterException,
    )?;
    Ok(with_next(json!({"attributes": out}), next))
}

/// The tasks table's index key: "<scope><cluster>/<group>" (tasks are keyed
/// "<scope><cluster>/<task id>").
pub fn task_group_index(key: &str, task: &Task) -> Option<String> {
    let (cluster, _) = key.rsplit_once('/')?;
    Some(format!("{cluster}/{}", task.group))
}

/// The index key of a group's tasks in a cluster.
pub fn group_key(scope: &str, cluster: &str, group: &str) -> String {
    format!("{scope}{cluster}/{group}")
}
