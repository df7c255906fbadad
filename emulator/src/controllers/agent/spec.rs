//! A task definition's container → the Docker container that runs it (aws-behaviour.md §2).

use crate::runtime::{ContainerSpec, HealthSpec, PortSpec, OWNER_LABEL};
use crate::services::ecs::task_definitions::{parse_cpu, parse_memory};
use crate::services::ecs::{Task, TaskContainer, TaskDef};
use crate::services::input::Input;
use serde_json::Value;
use std::collections::HashMap;

/// Labels the ECS agent sets, plus the emulator's ownership labels.
pub const TASK_KEY_LABEL: &str = "ecs-emulator.task-key";

/// Where the container can reach the emulator.
#[derive(Debug, Clone, Default)]
pub struct Endpoints {
    /// AWS_ENDPOINT_URL inside containers, e.g. http://172.17.0.1:4566.
    pub aws_endpoint: Option<String>,
    /// Base of the task metadata and credentials endpoints, e.g. http://169.254.170.2.
    pub task_endpoint: Option<String>,
    /// Cloud Map's DNS server for containers (their resolver unless dnsServers names others).
    pub dns: Option<std::net::Ipv4Addr>,
}

pub struct SpecInput<'a> {
    pub task_key: &'a str,
    pub task: &'a Task,
    pub def: &'a TaskDef,
    /// The container's definition.
    pub container: &'a Value,
    /// The container as planned at launch (overrides applied).
    pub planned: &'a TaskContainer,
    pub owner: &'a str,
    pub region: &'a str,
    pub image: String,
    pub endpoints: &'a Endpoints,
    /// Resolved secrets (name, value).
    pub secrets: Vec<(String, String)>,
    /// Docker network for awsvpc tasks, with the task's address.
    pub awsvpc: Option<(String, String)>,
}

fn strings(v: Option<&Value>) -> Option<Vec<String>> {
    v.and_then(Value::as_array).map(|a| {
        a.iter()
            .filter_map(|x| x.as_str().map(str::to_string))
            .collect()
    })
}

fn random_hex(n: usize) -> String {
    crate::services::random_hex(n)
}

/// The Docker volume of a task-scoped volume (dockerVolumeConfiguration scope "task", or a
/// volume with neither host nor configuration): created at start, removed with the task.
pub fn task_volume(task: &Task, volume: &str) -> String {
    format!(
        "ecs-{}-{}-{}-{}",
        task.family, task.revision, volume, task.id
    )
}

/// The Docker name the ECS agent uses: ecs-<family>-<revision>-<container>-<random hex>.
pub fn docker_name(task: &Task, container: &str) -> String {
    format!(
        "ecs-{}-{}-{}-{}",
        task.family,
        task.revision,
        container,
        random_hex(20)
    )
}

/// Environment: the planned one (definition, then overrides), the secrets, then what ECS injects.
fn environment(input: &SpecInput<'_>, name: &str) -> Vec<String> {
    let task = input.task;
    let mut env: Vec<(String, String)> = Vec::new();
    let mut set = |k: &str, v: String| {
        env.retain(|(x, _)| x != k);
        env.push((k.to_string(), v));
    };
    for e in &input.planned.environment {
        if let (Some(k), Some(v)) = (&e.name, &e.value) {
            set(k, v.clone());
        }
    }
    for (k, v) in &input.secrets {
        set(k, v.clone());
    }
    set("AWS_REGION", input.region.to_string());
    set("AWS_DEFAULT_REGION", input.region.to_string());
    let exec_env = if task.launch_type == "FARGATE" {
        "AWS_ECS_FARGATE"
    } else {
        "AWS_ECS_EC2"
    };
    set("AWS_EXECUTION_ENV", exec_env.to_string());
    if let Some(endpoint) = &input.endpoints.aws_endpoint {
        set("AWS_ENDPOINT_URL", endpoint.clone());
    }
    if let Some(base) = &input.endpoints.task_endpoint {
        let id = format!("{}-{}", task.endpoint_id, name);
        set("ECS_CONTAINER_METADATA_URI", format!("{base}/v3/{id}"));
        set("ECS_CONTAINER_METADATA_URI_V4", format!("{base}/v4/{id}"));
        set("ECS_AGENT_URI", format!("{base}/api/{id}"));
        if task.task_role_arn.is_some() {
            set(
                "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                format!("/v2/credentials/{}", task.endpoint_id),
            );
        }
    }
    env.into_iter().map(|(k, v)| format!("{k}={v}")).collect()
}

/// The definition's dockerLabels, the ECS agent's labels and the emulator's ownership labels.
fn labels(input: &SpecInput<'_>, name: &str) -> HashMap<String, String> {
    let task = input.task;
    let mut labels: HashMap<String, String> = input
        .container
        .get("dockerLabels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                .collect()
        })
        .unwrap_or_default();
    labels.insert("com.amazonaws.ecs.task-arn".into(), task.arn.clone());
    labels.insert("com.amazonaws.ecs.container-name".into(), name.to_string());
    labels.insert(
        "com.amazonaws.ecs.task-definition-family".into(),
        task.family.clone(),
    );
    labels.insert(
        "com.amazonaws.ecs.task-definition-version".into(),
        task.revision.to_string(),
    );
    labels.insert("com.amazonaws.ecs.cluster".into(), task.cluster.clone());
    labels.insert(OWNER_LABEL.into(), input.owner.to_string());
    labels.insert(TASK_KEY_LABEL.into(), input.task_key.to_string());
    labels
}

/// Bridge-mode port mappings, published on the instance's own loopback address.
fn ports(c: &Value, task: &Task) -> Vec<PortSpec> {
    if task.network_mode != "bridge" {
        return Vec::new();
    }
    c.get("portMappings")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| {
            let container_port = p.i64("containerPort").and_then(|x| u16::try_from(x).ok())?;
            Some(PortSpec {
                container_port,
                protocol: p.str("protocol").unwrap_or("tcp").to_string(),
                host_ip: task.host_ip.clone().unwrap_or_else(|| "127.0.0.1".into()),
                host_port: p
                    .i64("hostPort")
                    .filter(|h| *h > 0)
                    .and_then(|h| u16::try_from(h).ok()),
            })
        })
        .collect()
}

/// Volumes: host.sourcePath → bind mount; others → a Docker volume named for the task (or the
/// shared name for dockerVolumeConfiguration scope "shared").
fn binds(c: &Value, def: &TaskDef, task: &Task) -> Vec<String> {
    let volumes = def
        .body
        .get("volumes")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut binds = Vec::new();
    for m in c
        .get("mountPoints")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let source = m.str("sourceVolume").unwrap_or_default();
        let path = m.str("containerPath").unwrap_or_default();
        let Some(vol) = volumes.iter().find(|v| v.str("name") == Some(source)) else {
            continue;
        };
        // EFS volumes are the instance's FUSE mount, bound by the agent (resources::efs_binds).
        if vol.get("efsVolumeConfiguration").is_some() {
            continue;
        }
        let ro = if m.bool("readOnly") == Some(true) {
            ":ro"
        } else {
            ""
        };
        let src = if let Some(host) = vol.get("host").and_then(|h| h.str("sourcePath")) {
            host.to_string()
        } else if vol
            .get("dockerVolumeConfiguration")
            .and_then(|d| d.str("scope"))
            == Some("shared")
        {
            source.to_string()
        } else {
            task_volume(task, source)
        };
        binds.push(format!("{src}:{path}{ro}"));
    }
    binds
}

/// "name:alias" names a container of this task; Docker needs its Docker name, which the agent
/// fills in (see start.rs) — here the alias defaults to the name.
fn links(c: &Value) -> Vec<String> {
    strings(c.get("links"))
        .unwrap_or_default()
        .into_iter()
        .map(|l| {
            let (n, alias) = l
                .split_once(':')
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .unwrap_or((l.clone(), l.clone()));
            format!("{n}:{alias}")
        })
        .collect()
}

fn health(c: &Value) -> Option<HealthSpec> {
    c.get("healthCheck").map(|h| HealthSpec {
        test: strings(h.get("command")).unwrap_or_default(),
        interval_s: h.i64("interval").unwrap_or(30),
        timeout_s: h.i64("timeout").unwrap_or(5),
        retries: h.i64("retries").unwrap_or(3),
        start_period_s: h.i64("startPeriod").unwrap_or(0),
    })
}

fn ulimits(c: &Value) -> Vec<(String, i64, i64)> {
    c.get("ulimits")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|u| {
            Some((
                u.str("name")?.to_string(),
                u.i64("softLimit")?,
                u.i64("hardLimit")?,
            ))
        })
        .collect()
}

fn extra_hosts(c: &Value) -> Vec<String> {
    c.get("extraHosts")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|h| Some(format!("{}:{}", h.str("hostname")?, h.str("ipAddress")?)))
        .collect()
}

fn sysctls(c: &Value) -> HashMap<String, String> {
    c.get("systemControls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|s| Some((s.str("namespace")?.to_string(), s.str("value")?.to_string())))
        .collect()
}

pub fn build(input: SpecInput<'_>) -> ContainerSpec {
    let c = input.container;
    let task = input.task;
    let planned = input.planned;
    let name = planned.name.clone();
    // Resources (the plan, after overrides): cpu → CpuShares (min 2); memory → hard limit;
    // memoryReservation → soft limit. Task-level cpu and memory cap every container of the task
    // (Docker has no task cgroup here).
    let task_cpu = task.cpu.as_deref().and_then(parse_cpu);
    let task_memory = task.memory.as_deref().and_then(parse_memory);
    let memory = planned.memory.or(task_memory);
    const MIB: i64 = 1024 * 1024;
    let (docker_network, ipv4) = match (task.network_mode.as_str(), &input.awsvpc) {
        ("awsvpc", Some((net, ip))) => (net.clone(), Some(ip.clone())),
        ("awsvpc", None) => ("none".to_string(), None),
        (mode, _) => (mode.to_string(), None),
    };
    let linux = c.get("linuxParameters").cloned().unwrap_or(Value::Null);
    let caps = linux.get("capabilities").cloned().unwrap_or(Value::Null);
    ContainerSpec {
        name: docker_name(task, &name),
        image: input.image.clone(),
        entrypoint: strings(c.get("entryPoint")),
        command: planned.command.clone(),
        env: environment(&input, &name),
        labels: labels(&input, &name),
        working_dir: c.str("workingDirectory").map(str::to_string),
        user: c.str("user").map(str::to_string),
        hostname: c.str("hostname").map(str::to_string),
        cpu_shares: Some(planned.cpu.clamp(2, 262_144)),
        nano_cpus: task_cpu.map(|units| units * 1_000_000_000 / 1024),
        memory_bytes: memory.map(|m| m * MIB),
        memory_reservation_bytes: planned.memory_reservation.map(|m| m * MIB),
        network_mode: docker_network,
        ipv4_address: ipv4,
        ports: ports(c, task),
        links: links(c),
        binds: binds(c, input.def, task),
        ulimits: ulimits(c),
        health: health(c),
        readonly_rootfs: c.bool("readonlyRootFilesystem").unwrap_or(false),
        privileged: c.bool("privileged").unwrap_or(false),
        init: linux.bool("initProcessEnabled").unwrap_or(false),
        cap_add: strings(caps.get("add")).unwrap_or_default(),
        cap_drop: strings(caps.get("drop")).unwrap_or_default(),
        extra_hosts: extra_hosts(c),
        dns: strings(c.get("dnsServers"))
            .filter(|d| !d.is_empty())
            .or_else(|| input.endpoints.dns.map(|ip| vec![ip.to_string()]))
            .unwrap_or_default(),
        dns_search: strings(c.get("dnsSearchDomains")).unwrap_or_default(),
        stop_timeout_s: c.i64("stopTimeout"),
        sysctls: sysctls(c),
        security_opt: strings(c.get("dockerSecurityOptions")).unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::ecs::model::KeyValuePair;
    use serde_json::json;

    #[test]
    fn maps_limits_ports_env_and_labels() {
        let def = TaskDef {
            arn: "arn:aws:ecs:us-east-1:0:task-definition/web:3".into(),
            family: "web".into(),
            revision: 3,
            status: "ACTIVE".into(),
            body: json!({"taskRoleArn": "arn:aws:iam::0:role/r", "volumes": [{"name": "data", "host": {"sourcePath": "/tmp/d"}}]}),
            tags: vec![],
        };
        let task = Task {
            arn: "arn:aws:ecs:us-east-1:0:task/c/abc".into(),
            id: "abc".into(),
            cluster: "c".into(),
            family: "web".into(),
            revision: 3,
            network_mode: "bridge".into(),
            host_ip: Some("127.20.0.5".into()),
            launch_type: "EC2".into(),
            endpoint_id: "eid".into(),
            task_role_arn: Some("arn:aws:iam::0:role/r".into()),
            ..Default::default()
        };
        let container = json!({
            "name": "app", "image": "busybox", "cpu": 0, "memory": 128, "memoryReservation": 64,
            "environment": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
            "portMappings": [{"containerPort": 80, "hostPort": 8080, "protocol": "tcp"}, {"containerPort": 81}],
            "mountPoints": [{"sourceVolume": "data", "containerPath": "/data", "readOnly": true}],
            "healthCheck": {"command": ["CMD-SHELL", "true"]},
            "dockerLabels": {"team": "x"},
            "linuxParameters": {"initProcessEnabled": true, "capabilities": {"add": ["NET_ADMIN"]}}
        });
        // The plan computed at launch: the definition's environment, then the override's.
        let planned = TaskContainer {
            name: "app".into(),
            cpu: 0,
            memory: Some(128),
            memory_reservation: Some(64),
            environment: [("A", "1"), ("B", "over")]
                .iter()
                .map(|(k, v)| KeyValuePair {
                    name: Some(k.to_string()),
                    value: Some(v.to_string()),
                })
                .collect(),
            ..Default::default()
        };
        let endpoints = Endpoints {
            aws_endpoint: Some("http://172.17.0.1:4566".into()),
            task_endpoint: Some("http://169.254.170.2".into()),
            dns: Some(std::net::Ipv4Addr::new(169, 254, 53, 1)),
        };
        let spec = build(SpecInput {
            task_key: "k",
            task: &task,
            def: &def,
            container: &container,
            planned: &planned,
            owner: "o",
            region: "us-east-1",
            image: "busybox".into(),
            endpoints: &endpoints,
            secrets: vec![("S".into(), "secret".into())],
            awsvpc: None,
        });
        assert!(spec.name.starts_with("ecs-web-3-app-"));
        assert_eq!(spec.cpu_shares, Some(2));
        assert_eq!(spec.memory_bytes, Some(128 * 1024 * 1024));
        assert_eq!(spec.memory_reservation_bytes, Some(64 * 1024 * 1024));
        assert_eq!(
            spec.ports[0],
            PortSpec {
                container_port: 80,
                protocol: "tcp".into(),
                host_ip: "127.20.0.5".into(),
                host_port: Some(8080)
            }
        );
        assert_eq!(spec.ports[1].host_port, None);
        for e in [
            "A=1",
            "B=over",
            "S=secret",
            "AWS_REGION=us-east-1",
            "AWS_EXECUTION_ENV=AWS_ECS_EC2",
            "AWS_ENDPOINT_URL=http://172.17.0.1:4566",
            "ECS_CONTAINER_METADATA_URI_V4=http://169.254.170.2/v4/eid-app",
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI=/v2/credentials/eid",
        ] {
            assert!(
                spec.env.iter().any(|x| x == e),
                "{e} missing in {:?}",
                spec.env
            );
        }
        assert_eq!(
            spec.labels["com.amazonaws.ecs.task-definition-version"],
            "3"
        );
        assert_eq!(spec.labels["team"], "x");
        assert_eq!(spec.binds, vec!["/tmp/d:/data:ro"]);
        assert!(spec.init);
        assert_eq!(spec.cap_add, vec!["NET_ADMIN"]);
        assert_eq!(spec.health.as_ref().map(|h| h.interval_s), Some(30));
    }
}
