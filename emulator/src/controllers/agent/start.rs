//! Starting a task: provision its network, pull images, create and start its containers in
//! dependency order (dependsOn START, COMPLETE, SUCCESS, HEALTHY), then RUNNING with the
//! network bindings Docker chose.

use super::resources;
use super::spec::{self, SpecInput};
use super::Agent;
use crate::runtime::RegistryAuth;
use crate::services::ecs::model::{ContainerStatus, HealthStatus, TaskStatus};
use crate::services::ecs::tasks::mark_stopping;
use crate::services::ecs::{Task, TaskDef};
use crate::services::input::Input;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Agent default for how long a container may wait on its dependencies (ECS_CONTAINER_START_TIMEOUT).
const DEFAULT_START_TIMEOUT_S: u64 = 180;

fn container_defs(def: Option<&TaskDef>) -> Vec<Value> {
    def.and_then(|d| {
        d.body
            .get("containerDefinitions")
            .and_then(Value::as_array)
            .cloned()
    })
    .unwrap_or_default()
}

/// Container names in an order that respects dependsOn and links (dependencies first).
pub fn start_order(task: &Task, def: Option<&TaskDef>) -> Vec<String> {
    let defs = container_defs(def);
    let deps = |name: &str| -> Vec<String> {
        let Some(c) = defs.iter().find(|c| c.str("name") == Some(name)) else {
            return Vec::new();
        };
        let mut out: Vec<String> = c
            .get("dependsOn")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|d| d.str("containerName").map(str::to_string))
            .collect();
        for l in c.string_list("links") {
            out.push(l.split(':').next().unwrap_or_default().to_string());
        }
        out
    };
    let mut order: Vec<String> = Vec::new();
    let mut remaining: Vec<String> = task.containers.iter().map(|c| c.name.clone()).collect();
    while !remaining.is_empty() {
        let before = remaining.len();
        let mut i = 0;
        while i < remaining.len() {
            if deps(&remaining[i])
                .iter()
                .all(|d| order.contains(d) || !task.containers.iter().any(|c| &c.name == d))
            {
                order.push(remaining.remove(i));
            } else {
                i += 1;
            }
        }
        if remaining.len() == before {
            // A dependency cycle: start the rest in definition order.
            order.append(&mut remaining);
        }
    }
    order
}

/// Images written in real ECR form resolve to the emulated registry.
pub fn resolve_image(image: &str, registry_host: &str) -> String {
    if let Some((host, rest)) = image.split_once('/') {
        let ecr = host.contains(".dkr.ecr.")
            && (host.ends_with(".amazonaws.com") || host.ends_with(".amazonaws.com.cn"));
        if ecr {
            return format!("{registry_host}/{rest}");
        }
    }
    image.to_string()
}

enum Outcome {
    Running,
    Failed { container: String, reason: String },
    Cancelled,
}

pub async fn start_task(agent: &Arc<Agent>, key: &str) {
    let Some(task) = agent.ecs.tasks.get(key) else {
        return;
    };
    if !task.is_pending() || task.desired_status != "RUNNING" {
        return;
    }
    let def = agent.ecs.task_definition_by_arn(&task.task_definition_arn);
    let outcome = run(agent, key, &task, def.as_ref()).await;
    let now = agent.clock.now();
    match outcome {
        Outcome::Running => {}
        Outcome::Cancelled => {}
        Outcome::Failed { reason, .. } if agent.daemon_unreachable().await => {
            // Not the task's fault: it stays PENDING and starts once Docker answers again
            // (whatever this attempt created is removed first, as after a restart).
            tracing::debug!(task = %task.arn, %reason, "Docker unreachable: the task stays PENDING");
        }
        Outcome::Failed { container, reason } => {
            tracing::info!(task = %task.arn, %reason, "task failed to start");
            let _ = agent
                .ecs
                .tasks
                .record::<_, crate::store::StoreError, _>(|t| {
                    if let Some(task) = t.get_mut(key) {
                        if let Some(c) = task.containers.iter_mut().find(|c| c.name == container) {
                            c.reason = Some(reason.clone());
                        }
                        mark_stopping(task, now, "TaskFailedToStart", &reason);
                    }
                    Ok(())
                });
            agent.ecs.wake_agent();
        }
    }
}

fn update(agent: &Agent, key: &str, f: impl FnOnce(&mut Task)) {
    let _ = agent
        .ecs
        .tasks
        .record::<_, crate::store::StoreError, _>(|t| {
            if let Some(task) = t.get_mut(key) {
                f(task);
                task.version += 1;
            }
            Ok(())
        });
}

/// Containers of an earlier attempt that a restart interrupted are removed, and the task's
/// containers start again from nothing (ECS's agent, restarted, starts the task once more). Their
/// die and destroy events are the agent's own doing and change nothing (`Agent::remove_own`).
async fn remove_leftovers(agent: &Agent, key: &str) {
    let Ok(old) = agent.runtime.list(spec::TASK_KEY_LABEL, key).await else {
        return;
    };
    for c in &old {
        agent.remove_own(&c.id).await;
    }
    let stale = agent
        .ecs
        .tasks
        .get(key)
        .is_some_and(|t| t.containers.iter().any(|c| c.runtime_id.is_some()));
    if !stale {
        return;
    }
    update(agent, key, |t| {
        for c in t.containers.iter_mut().filter(|c| c.runtime_id.is_some()) {
            c.runtime_id = None;
            c.last_status = ContainerStatus::Pending;
            c.exit_code = None;
            c.reason = None;
            c.health_status = None;
            c.network_bindings.clear();
            c.created_at = None;
            c.started_at = None;
            c.finished_at = None;
        }
    });
}

fn still_wanted(agent: &Agent, key: &str) -> bool {
    agent
        .ecs
        .tasks
        .get(key)
        .is_some_and(|t| t.desired_status == "RUNNING")
}

async fn run(agent: &Arc<Agent>, key: &str, task: &Task, def: Option<&TaskDef>) -> Outcome {
    let Some(def) = def else {
        return Outcome::Failed {
            container: String::new(),
            reason: "TaskDefinition not found".into(),
        };
    };
    remove_leftovers(agent, key).await;
    if task.last_status == "PROVISIONING" {
        update(agent, key, |t| t.last_status = TaskStatus::Pending);
    }
    if agent.runtime.name() == "simulated" {
        update(agent, key, |t| t.simulated = true);
    }
    let region = task
        .arn
        .split(':')
        .nth(3)
        .unwrap_or("us-east-1")
        .to_string();
    let defs = container_defs(Some(def));
    let order = start_order(task, Some(def));
    let mut started: HashMap<String, String> = HashMap::new();
    // awsvpc: the task's "ENI" is an address on the Docker network of its subnet. The first
    // container joins that network; the others share its network namespace.
    let awsvpc = if task.network_mode == "awsvpc" {
        match resources::awsvpc_network(agent, task).await {
            Ok(n) => Some(n),
            Err(e) => {
                return Outcome::Failed {
                    container: String::new(),
                    reason: format!("ResourceInitializationError: failed to configure ENI: {e}"),
                }
            }
        }
    } else {
        None
    };
    let mut netns_owner: Option<String> = None;
    let volumes = def
        .body
        .get("volumes")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if let Err(reason) = resources::prepare_volumes(agent, task, &volumes).await {
        return Outcome::Failed {
            container: String::new(),
            reason,
        };
    }
    let efs = match resources::prepare_efs(agent, task, &volumes).await {
        Ok(m) => m,
        Err(reason) => {
            return Outcome::Failed {
                container: String::new(),
                reason,
            }
        }
    };
    let pull_started = agent.clock.now();
    update(agent, key, |t| t.pull_started_at = Some(pull_started));
    let mut images: HashMap<String, (String, Option<String>)> = HashMap::new();
    for c in &task.containers {
        let image = resolve_image(&c.image, &agent.endpoints.registry_host);
        match ensure_image(agent, &task.arn, &image).await {
            Ok(digest) => {
                images.insert(c.name.clone(), (image, digest));
            }
            Err(message) => {
                return Outcome::Failed {
                    container: c.name.clone(),
                    reason: format!("CannotPullContainerError: {message}"),
                }
            }
        }
    }
    let pull_stopped = agent.clock.now();
    update(agent, key, |t| {
        t.pull_stopped_at = Some(pull_stopped);
        for c in t.containers.iter_mut() {
            if let Some((_, digest)) = images.get(&c.name) {
                c.image_digest = digest.clone();
            }
        }
    });
    for name in &order {
        if !still_wanted(agent, key) {
            return Outcome::Cancelled;
        }
        let Some(cdef) = defs.iter().find(|c| c.str("name") == Some(name)) else {
            continue;
        };
        if let Err(reason) = wait_for_dependencies(agent, key, cdef, &started).await {
            return Outcome::Failed {
                container: name.clone(),
                reason,
            };
        }
        let Some(current) = agent.ecs.tasks.get(key) else {
            return Outcome::Cancelled;
        };
        let (image, _) = images.get(name).cloned().unwrap_or_default();
        let secrets = match resources::resolve_secrets(agent, &current, cdef) {
            Ok(s) => s,
            Err(reason) => {
                return Outcome::Failed {
                    container: name.clone(),
                    reason,
                }
            }
        };
        let Some(planned) = current.containers.iter().find(|c| &c.name == name) else {
            continue;
        };
        let mut container_spec = spec::build(SpecInput {
            task_key: key,
            task: &current,
            def,
            container: cdef,
            planned,
            owner: &agent.owner,
            region: &region,
            image,
            endpoints: &agent.endpoints.containers,
            secrets,
            awsvpc: None,
        });
        container_spec
            .binds
            .extend(resources::efs_binds(cdef, &efs));
        if let Some(net) = &awsvpc {
            container_spec.network_mode = match &netns_owner {
                Some(owner) => format!("container:{owner}"),
                None => net.docker_network.clone(),
            };
        }
        // Links name containers of this task: point them at their Docker names.
        container_spec.links = container_spec
            .links
            .iter()
            .filter_map(|l| {
                let (target, alias) = l.split_once(':')?;
                let docker = started.get(target)?;
                Some(format!("{docker}:{alias}"))
            })
            .collect();
        let docker_name = container_spec.name.clone();
        let id = match agent.runtime.create(&container_spec).await {
            Ok(id) => id,
            Err(e) => {
                return Outcome::Failed {
                    container: name.clone(),
                    reason: format!("CannotCreateContainerError: {}", e.message),
                }
            }
        };
        let created = agent.clock.now();
        update(agent, key, |t| {
            if let Some(c) = t.containers.iter_mut().find(|c| &c.name == name) {
                c.runtime_id = Some(id.clone());
                c.created_at = Some(created);
            }
        });
        let log_stream = match resources::awslogs(cdef) {
            Some(opts) => {
                let stream = resources::stream_name(&opts, name, &current.id, &id);
                if let Err(reason) = resources::prepare_log_stream(agent, &current, &opts, &stream)
                {
                    return Outcome::Failed {
                        container: name.clone(),
                        reason,
                    };
                }
                Some((opts, stream))
            }
            None => None,
        };
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64 - 1)
            .unwrap_or(0);
        if let Err(e) = agent.runtime.start(&id).await {
            return Outcome::Failed {
                container: name.clone(),
                reason: format!("CannotStartContainerError: {}", e.message),
            };
        }
        if let Some((opts, stream)) = log_stream {
            resources::forward_logs(agent, &current, opts, stream, id.clone(), since);
        }
        let state = agent.runtime.inspect(&id).await.ok();
        if let (Some(net), None) = (&awsvpc, &netns_owner) {
            let ip = state
                .as_ref()
                .and_then(|s| {
                    s.ips
                        .iter()
                        .find(|(n, _)| n == &net.docker_network)
                        .map(|(_, ip)| ip.clone())
                })
                .unwrap_or_default();
            let attachment = resources::eni_attachment(&net.subnet_id, &ip, &region);
            update(agent, key, |t| t.attachments = vec![attachment]);
            netns_owner = Some(id.clone());
        }
        let started_at = agent.clock.now();
        let host_ip = current.host_ip.clone();
        update(agent, key, |t| {
            if let Some(c) = t.containers.iter_mut().find(|c| &c.name == name) {
                c.started_at = Some(started_at);
                // A container that already exited keeps the status the events loop gave it.
                if c.last_status == "PENDING" {
                    c.last_status = ContainerStatus::Running;
                }
                if let Some(s) = &state {
                    c.network_bindings = s
                        .ports
                        .iter()
                        .filter(|p| p.host_port.is_some())
                        .map(|p| {
                            json!({
                                "bindIP": host_ip.clone().unwrap_or_else(|| p.host_ip.clone()),
                                "containerPort": p.container_port,
                                "hostPort": p.host_port,
                                "protocol": p.protocol,
                            })
                        })
                        .collect();
                }
            }
        });
        started.insert(name.clone(), docker_name);
    }
    let now = agent.clock.now();
    let mut became_running = false;
    let _ = agent
        .ecs
        .tasks
        .record::<_, crate::store::StoreError, _>(|t| {
            if let Some(task) = t.get_mut(key) {
                if task.desired_status == "RUNNING" && task.is_pending() {
                    task.last_status = TaskStatus::Running;
                    task.started_at = Some(now);
                    task.connectivity_at = Some(now);
                    task.version += 1;
                    became_running = true;
                    crate::feedback!("{}", running_line(task));
                }
            }
            Ok(())
        });
    if became_running {
        Outcome::Running
    } else {
        Outcome::Cancelled
    }
}

/// The image is used if present locally (images cannot always be pulled here), else pulled.
/// Returns its registry digest when it has one.
async fn ensure_image(
    agent: &Agent,
    task_arn: &str,
    image: &str,
) -> Result<Option<String>, String> {
    match agent.runtime.local_image(image).await {
        Ok(Some(info)) => return Ok(info.digest.or(Some(info.id))),
        Ok(None) => {}
        Err(e) => return Err(e.message),
    }
    // Images of the emulated ECR are pulled with a registry password for the task's account
    // and region, as the agent does with the execution role's ECR token.
    let auth = match &agent.endpoints.ecr {
        Some(ecr) if image.starts_with(&format!("{}/", agent.endpoints.registry_host)) => {
            let mut arn = task_arn.split(':');
            let (region, account) = (
                arn.nth(3).unwrap_or_default(),
                arn.next().unwrap_or_default(),
            );
            let (password, _) = ecr.issue_password(account, region, agent.clock.now());
            Some(RegistryAuth {
                username: "AWS".into(),
                password,
                server: agent.endpoints.registry_host.clone(),
            })
        }
        _ => None,
    };
    agent
        .runtime
        .pull(image, auth)
        .await
        .map(|info| info.digest.or(Some(info.id)))
        .map_err(|e| e.message)
}

/// Waits until every dependsOn condition of `cdef` holds.
async fn wait_for_dependencies(
    agent: &Agent,
    key: &str,
    cdef: &Value,
    started: &HashMap<String, String>,
) -> Result<(), String> {
    let deps: Vec<(String, String)> = cdef
        .get("dependsOn")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|d| {
            Some((
                d.str("containerName")?.to_string(),
                d.str("condition")?.to_string(),
            ))
        })
        .collect();
    if deps.is_empty() {
        return Ok(());
    }
    let timeout = cdef
        .i64("startTimeout")
        .map(|s| s.max(0) as u64)
        .unwrap_or(DEFAULT_START_TIMEOUT_S);
    let deadline = tokio::time::Instant::now() + agent.clock.real(Duration::from_secs(timeout));
    let name = cdef.str("name").unwrap_or_default();
    loop {
        let Some(task) = agent.ecs.tasks.get(key) else {
            return Err("task vanished".into());
        };
        if task.desired_status != "RUNNING" {
            return Err("task is stopping".into());
        }
        let mut all = true;
        for (dep, condition) in &deps {
            let Some(c) = task.containers.iter().find(|c| &c.name == dep) else {
                continue;
            };
            let ok = match condition.as_str() {
                "START" => started.contains_key(dep) || c.last_status == "STOPPED",
                "COMPLETE" => c.last_status == "STOPPED",
                "SUCCESS" => {
                    if c.last_status == "STOPPED" && c.exit_code != Some(0) {
                        return Err(format!(
                            "DependencyFailed: dependency {dep} of container {name} exited with {:?}, SUCCESS was required",
                            c.exit_code
                        ));
                    }
                    c.last_status == "STOPPED"
                }
                "HEALTHY" => c.health_status == Some(HealthStatus::Healthy),
                _ => true,
            };
            all &= ok;
        }
        if all {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            return Err(format!("DependencyTimeoutError: dependencies of container {name} were not met within {timeout}s"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// "task 1f2e… (web:3) in cluster demo RUNNING on i-0ab… (127.16.0.3), ports web 8080→32768".
fn running_line(task: &crate::services::ecs::Task) -> String {
    let place = match (&task.ec2_instance_id, &task.host_ip) {
        (Some(i), Some(ip)) => format!(" on {i} ({ip})"),
        (Some(i), None) => format!(" on {i}"),
        _ => format!(" ({})", task.launch_type),
    };
    let ports: Vec<String> = task
        .containers
        .iter()
        .flat_map(|c| {
            c.network_bindings.iter().filter_map(move |b| {
                let host = b.get("hostPort")?.as_i64()?;
                let port = b.get("containerPort")?.as_i64()?;
                Some(format!("{} {port}→{host}", c.name))
            })
        })
        .collect();
    let ports = if ports.is_empty() {
        String::new()
    } else {
        format!(", ports {}", ports.join(", "))
    };
    let simulated = if task.simulated {
        " [SIMULATED: nothing runs]"
    } else {
        ""
    };
    format!(
        "task {} ({}:{}) in cluster {} RUNNING{place}{ports}{simulated}",
        task.id, task.family, task.revision, task.cluster
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::ecs::TaskContainer;

    #[test]
    fn dependencies_and_links_start_first() {
        let def = TaskDef {
            arn: String::new(),
            family: "f".into(),
            revision: 1,
            status: "ACTIVE".into(),
            body: json!({"containerDefinitions": [
                {"name": "app", "dependsOn": [{"containerName": "init", "condition": "SUCCESS"}], "links": ["db:database"]},
                {"name": "db"},
                {"name": "init", "essential": false}
            ]}),
            tags: vec![],
        };
        let task = Task {
            containers: ["app", "db", "init"]
                .iter()
                .map(|n| TaskContainer {
                    name: n.to_string(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        let order = start_order(&task, Some(&def));
        assert_eq!(order, vec!["db", "init", "app"]);
    }

    #[test]
    fn ecr_images_resolve_to_the_emulated_registry() {
        assert_eq!(
            resolve_image(
                "000000000000.dkr.ecr.us-east-1.amazonaws.com/web:1",
                "localhost:4566"
            ),
            "localhost:4566/web:1"
        );
        assert_eq!(
            resolve_image("busybox:latest", "localhost:4566"),
            "busybox:latest"
        );
        assert_eq!(
            resolve_image("ghcr.io/a/b", "localhost:4566"),
            "ghcr.io/a/b"
        );
    }
}
