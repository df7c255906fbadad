//! What a task needs besides its containers: its awsvpc network, its secrets, its log streams.

use super::Agent;
use crate::services::ecs::Task;
use crate::services::input::Input;
use futures::StreamExt;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// The Docker network that stands for a VPC subnet: one per CIDR, shared by every emulator on the
/// machine (Docker refuses overlapping pools), so tasks of a subnet get addresses from its range.
pub struct AwsvpcNetwork {
    pub docker_network: String,
    pub subnet_id: String,
}

fn first_host(cidr: &str) -> Option<String> {
    let (addr, _) = cidr.split_once('/')?;
    let ip: std::net::Ipv4Addr = addr.parse().ok()?;
    Some(std::net::Ipv4Addr::from(u32::from(ip) + 1).to_string())
}

pub async fn awsvpc_network(agent: &Agent, task: &Task) -> Result<AwsvpcNetwork, String> {
    let subnet_id = task
        .network_configuration
        .as_ref()
        .and_then(|n| n.awsvpc_configuration.as_ref())
        .and_then(|c| c.subnets.first().cloned())
        .ok_or("awsvpcConfiguration has no subnets")?;
    let (account, region) = scope_of(&task.arn);
    let ec2 = &agent.ecs.ec2;
    let subnet = ec2
        .subnet(&account, &region, &subnet_id)
        .map_err(|e| e.message)?
        .ok_or_else(|| format!("The subnet ID '{subnet_id}' does not exist"))?;
    let gateway = first_host(&subnet.cidr_block).ok_or("bad subnet CIDR")?;
    let docker_network = format!("ecs-emulator-{}", subnet.cidr_block.replace('/', "_"));
    let labels = HashMap::from([(
        "ecs-emulator.subnet-cidr".to_string(),
        subnet.cidr_block.clone(),
    )]);
    agent
        .runtime
        .ensure_network(&docker_network, &subnet.cidr_block, &gateway, labels)
        .await
        .map_err(|e| e.message)?;
    Ok(AwsvpcNetwork {
        docker_network,
        subnet_id,
    })
}

/// The ENI attachment DescribeTasks shows for an awsvpc task.
pub fn eni_attachment(subnet_id: &str, ip: &str, region: &str) -> Value {
    let eni = format!("eni-{}", crate::services::random_hex(17));
    let mac = {
        let h = crate::services::random_hex(10);
        format!(
            "0a:{}:{}:{}:{}:{}",
            &h[0..2],
            &h[2..4],
            &h[4..6],
            &h[6..8],
            &h[8..10]
        )
    };
    let dns = if region == "us-east-1" {
        format!("ip-{}.ec2.internal", ip.replace('.', "-"))
    } else {
        format!("ip-{}.{region}.compute.internal", ip.replace('.', "-"))
    };
    json!({
        "id": uuid::Uuid::new_v4().to_string(),
        "type": "ElasticNetworkInterface",
        "status": "ATTACHED",
        "details": [
            {"name": "subnetId", "value": subnet_id},
            {"name": "networkInterfaceId", "value": eni},
            {"name": "macAddress", "value": mac},
            {"name": "privateDnsName", "value": dns},
            {"name": "privateIPv4Address", "value": ip},
        ]
    })
}

/// Creates the Docker volumes a task needs: task-scoped ones always, shared ones when missing and
/// `autoprovision` is set; a missing shared volume without autoprovision fails the task, as in ECS.
pub async fn prepare_volumes(agent: &Agent, task: &Task, volumes: &[Value]) -> Result<(), String> {
    for v in volumes {
        let name = v.str("name").unwrap_or_default();
        if v.get("host").is_some() || v.get("efsVolumeConfiguration").is_some() {
            continue;
        }
        let conf = v
            .get("dockerVolumeConfiguration")
            .cloned()
            .unwrap_or(Value::Null);
        let strings = |k: &str| -> HashMap<String, String> {
            conf.get(k)
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                        .collect()
                })
                .unwrap_or_default()
        };
        let shared = conf.str("scope") == Some("shared");
        let docker_name = if shared {
            name.to_string()
        } else {
            super::spec::task_volume(task, name)
        };
        if shared {
            let exists = agent
                .runtime
                .volume_exists(&docker_name)
                .await
                .map_err(|e| e.message)?;
            if exists {
                continue;
            }
            if conf.bool("autoprovision") != Some(true) {
                return Err(format!(
                    "ResourceInitializationError: volume '{name}' with scope shared does not exist and autoprovision is not set"
                ));
            }
        }
        let mut labels = strings("labels");
        labels.insert(crate::runtime::OWNER_LABEL.to_string(), agent.owner.clone());
        agent
            .runtime
            .create_volume(
                &docker_name,
                conf.str("driver"),
                strings("driverOpts"),
                labels,
            )
            .await
            .map_err(|e| {
                format!(
                    "ResourceInitializationError: failed to create volume {name}: {}",
                    e.message
                )
            })?;
    }
    Ok(())
}

/// Mounts a task's EFS volumes (the instance's FUSE mount of each file system, or an access
/// point's view of it): volume name → what to bind. A volume that cannot be mounted stops the
/// task with ECS's reason; there is no fallback to a plain directory.
pub async fn prepare_efs(
    agent: &Agent,
    task: &Task,
    volumes: &[Value],
) -> Result<HashMap<String, crate::efs::MountedVolume>, String> {
    use crate::efs::volumes::{EfsVolumeConfiguration, VolumeRequest};
    let mut out = HashMap::new();
    for v in volumes {
        let Some(conf) = v.get("efsVolumeConfiguration") else {
            continue;
        };
        let name = v.str("name").unwrap_or_default().to_string();
        let conf: EfsVolumeConfiguration = serde_json::from_value(conf.clone()).map_err(|_| {
            format!("ResourceInitializationError: invalid efsVolumeConfiguration of volume {name}")
        })?;
        let efs = agent.endpoints.efs.clone().ok_or(
            "ResourceInitializationError: failed to invoke EFS utils commands to set up EFS volumes: EFS is not available",
        )?;
        let (account, region) = scope_of(&task.arn);
        // Each container instance is one NFS client; a Fargate task is a host of its own.
        let instance = task
            .container_instance_arn
            .as_deref()
            .and_then(|a| a.rsplit('/').next())
            .unwrap_or(&task.id)
            .to_string();
        let az = task.availability_zone.clone();
        let role = task.task_role_arn.clone();
        let mounted = tokio::task::spawn_blocking(move || {
            efs.mount(&VolumeRequest {
                account: &account,
                region: &region,
                instance: &instance,
                availability_zone: az.as_deref(),
                task_role_arn: role.as_deref(),
                config: &conf,
            })
        })
        .await
        .map_err(|e| format!("ResourceInitializationError: {e}"))??;
        out.insert(name, mounted);
    }
    Ok(out)
}

/// Bind mounts of a container's mountPoints on EFS volumes (readOnly honoured; a mount made
/// read-only by the file system policy stays read-only whatever the container asks).
pub fn efs_binds(cdef: &Value, efs: &HashMap<String, crate::efs::MountedVolume>) -> Vec<String> {
    cdef.get("mountPoints")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|m| {
            let vol = efs.get(m.str("sourceVolume")?)?;
            let ro = m.bool("readOnly") == Some(true) || vol.read_only;
            Some(format!(
                "{}:{}{}",
                vol.path.display(),
                m.str("containerPath")?,
                if ro { ":ro" } else { "" }
            ))
        })
        .collect()
}

/// Names of a task's task-scoped Docker volumes (removed with the task).
pub fn task_scoped_volumes(task: &Task, volumes: &[Value]) -> Vec<String> {
    volumes
        .iter()
        .filter(|v| v.get("host").is_none() && v.get("efsVolumeConfiguration").is_none())
        .filter(|v| {
            v.get("dockerVolumeConfiguration")
                .and_then(|c| c.str("scope"))
                != Some("shared")
        })
        .filter_map(|v| v.str("name").map(|n| super::spec::task_volume(task, n)))
        .collect()
}

/// (account, region) of a task ARN.
pub fn scope_of(arn: &str) -> (String, String) {
    let parts: Vec<&str> = arn.split(':').collect();
    (
        parts.get(4).unwrap_or(&"").to_string(),
        parts.get(3).unwrap_or(&"").to_string(),
    )
}

/// A container's secrets, resolved from SSM Parameter Store (by name or ARN) at start.
pub fn resolve_secrets(
    agent: &Agent,
    task: &Task,
    cdef: &Value,
) -> Result<Vec<(String, String)>, String> {
    let secrets = cdef
        .get("secrets")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if secrets.is_empty() {
        return Ok(Vec::new());
    }
    let (account, region) = scope_of(&task.arn);
    let ssm = agent.endpoints.ssm.as_ref().ok_or("SSM is not available")?;
    let mut out = Vec::new();
    let mut missing = Vec::new();
    for s in secrets {
        let name = s.str("name").unwrap_or_default().to_string();
        let from = s.str("valueFrom").unwrap_or_default().to_string();
        if from.starts_with("arn:aws:secretsmanager:") {
            return Err(format!(
                "ResourceInitializationError: unable to pull secrets or registry auth: Secrets Manager is not emulated (secret {from})"
            ));
        }
        match ssm.value(&account, &region, &from) {
            Ok(v) => out.push((name, v)),
            Err(_) => missing.push(from),
        }
    }
    if !missing.is_empty() {
        return Err(format!(
            "ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed: unable to retrieve secrets from ssm: InvalidParameters: [{}]",
            missing.join(", ")
        ));
    }
    Ok(out)
}

/// The awslogs options of a container definition.
#[derive(Debug, Clone, PartialEq)]
pub struct AwsLogs {
    pub group: String,
    pub region: Option<String>,
    pub prefix: Option<String>,
    pub create_group: bool,
}

pub fn awslogs(cdef: &Value) -> Option<AwsLogs> {
    let conf = cdef.get("logConfiguration")?;
    if conf.str("logDriver") != Some("awslogs") {
        return None;
    }
    let options = conf.get("options").cloned().unwrap_or(Value::Null);
    Some(AwsLogs {
        group: options.str("awslogs-group").unwrap_or_default().to_string(),
        region: options.str("awslogs-region").map(str::to_string),
        prefix: options.str("awslogs-stream-prefix").map(str::to_string),
        create_group: options.str("awslogs-create-group") == Some("true"),
    })
}

/// The stream a container logs to: prefix/container-name/task-id, or the Docker id without a prefix.
pub fn stream_name(opts: &AwsLogs, container: &str, task_id: &str, docker_id: &str) -> String {
    match &opts.prefix {
        Some(p) if !p.is_empty() => format!("{p}/{container}/{task_id}"),
        _ => docker_id.to_string(),
    }
}

/// Creates the group (when asked) and the stream before the container starts, as the log driver does.
pub fn prepare_log_stream(
    agent: &Agent,
    task: &Task,
    opts: &AwsLogs,
    stream: &str,
) -> Result<(), String> {
    let logs = agent
        .endpoints
        .logs
        .as_ref()
        .ok_or("CloudWatch Logs is not available")?;
    let (account, task_region) = scope_of(&task.arn);
    let region = opts.region.clone().unwrap_or(task_region);
    let now_ms = (agent.clock.now() * 1000.0) as i64;
    logs.ensure_stream(&account, &region, now_ms, &opts.group, stream, opts.create_group).map_err(|e| {
        format!(
            "CannotStartContainerError: Error response from daemon: failed to initialize logging driver: failed to create Cloudwatch log stream: {}: {}",
            e.code, e.message
        )
    })
}

/// Forwards a container's stdout and stderr into its log stream until the container stops.
pub fn forward_logs(
    agent: &Arc<Agent>,
    task: &Task,
    opts: AwsLogs,
    stream: String,
    docker_id: String,
    since_s: i64,
) {
    let Some(logs) = agent.endpoints.logs.clone() else {
        return;
    };
    let (account, task_region) = scope_of(&task.arn);
    let region = opts.region.clone().unwrap_or(task_region);
    let runtime = agent.runtime.clone();
    let clock = agent.clock.clone();
    tokio::spawn(async move {
        let mut lines = runtime.logs(&docker_id, since_s, true);
        let mut batch: Vec<(i64, String)> = Vec::new();
        let flush = |batch: &mut Vec<(i64, String)>| {
            if batch.is_empty() {
                return;
            }
            let now_ms = (clock.now() * 1000.0) as i64;
            if let Err(e) = logs.append_events(
                &account,
                &region,
                now_ms,
                &opts.group,
                &stream,
                std::mem::take(batch),
            ) {
                tracing::warn!(group = %opts.group, %stream, error = %e, "could not forward container logs");
            }
        };
        loop {
            match tokio::time::timeout(Duration::from_millis(200), lines.next()).await {
                Ok(Some(Ok((ts, line)))) => {
                    // Docker's timestamps are real time; the log stream lives on the emulator clock.
                    let _ = ts;
                    batch.push(((clock.now() * 1000.0) as i64, line));
                    if batch.len() >= 500 {
                        flush(&mut batch);
                    }
                }
                Ok(Some(Err(_))) | Ok(None) => break,
                Err(_) => flush(&mut batch),
            }
        }
        flush(&mut batch);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn awslogs_options_and_stream_names() {
        let c = json!({"logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": "/ecs/web", "awslogs-stream-prefix": "ecs", "awslogs-create-group": "true"}}});
        let o = awslogs(&c).expect("awslogs");
        assert_eq!(
            o,
            AwsLogs {
                group: "/ecs/web".into(),
                region: None,
                prefix: Some("ecs".into()),
                create_group: true
            }
        );
        assert_eq!(stream_name(&o, "web", "abc", "d0ck3r"), "ecs/web/abc");
        let no_prefix = AwsLogs { prefix: None, ..o };
        assert_eq!(stream_name(&no_prefix, "web", "abc", "d0ck3r"), "d0ck3r");
        assert!(awslogs(&json!({"logConfiguration": {"logDriver": "json-file"}})).is_none());
        assert_eq!(first_host("172.31.16.0/20").as_deref(), Some("172.31.16.1"));
        let a = eni_attachment("subnet-1", "172.31.0.5", "us-east-1");
        assert_eq!(a["details"][4]["value"], "172.31.0.5");
        assert_eq!(a["details"][3]["value"], "ip-172-31-0-5.ec2.internal");
    }
}
