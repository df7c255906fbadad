//! Stopping a task: SIGTERM each running container (dependents first), SIGKILL after its
//! stopTimeout, record exit codes, then STOPPED.

use super::Agent;
use crate::controllers::lb_targets;
use crate::services::ecs::model::{ContainerStatus, TaskStatus};
use crate::services::ecs::Task;
use std::sync::Arc;
use std::time::Duration;

/// A task behind a load balancer is DEACTIVATING while its targets drain: deregistered, no new
/// requests, in-flight ones finishing, for the target group's deregistration delay. Then it stops.
async fn drain_targets(agent: &Arc<Agent>, key: &str, task: &Task) {
    let elbv2 = &agent.ecs.elbv2;
    if task.lb_targets.is_empty() || !task.is_running() {
        return;
    }
    let _ = agent
        .ecs
        .tasks
        .record::<_, crate::store::StoreError, _>(|t| {
            if let Some(task) = t.get_mut(key) {
                task.last_status = TaskStatus::Deactivating;
                task.version += 1;
            }
            Ok(())
        });
    lb_targets::deregister(elbv2, task);
    // The longest deregistration delay (300 s by default) plus a margin, on the emulator clock.
    let deadline = tokio::time::Instant::now() + agent.clock.real(Duration::from_secs(3600 + 10));
    while lb_targets::still_draining(elbv2, task) && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        // Time-based expiry is idempotent; doing it here keeps draining exact even when no
        // load balancer listener is running.
        elbv2.expire_draining(agent.clock.now());
    }
}

/// Agent default stop timeout (ECS_CONTAINER_STOP_TIMEOUT).
const DEFAULT_STOP_TIMEOUT_S: i64 = 30;

pub async fn stop_task(agent: &Arc<Agent>, key: &str) {
    let Some(task) = agent.ecs.tasks.get(key) else {
        return;
    };
    if task.is_stopped() {
        return;
    }
    crate::controllers::discovery::deregister_task(&agent.ecs, &task, agent.clock.now());
    drain_targets(agent, key, &task).await;
    let now = agent.clock.now();
    let _ = agent
        .ecs
        .tasks
        .record::<_, crate::store::StoreError, _>(|t| {
            if let Some(task) = t.get_mut(key) {
                if task.last_status == "RUNNING"
                    || task.last_status == "DEACTIVATING"
                    || task.is_pending()
                {
                    task.last_status = TaskStatus::Stopping;
                    task.stopping_at.get_or_insert(now);
                    task.version += 1;
                }
            }
            Ok(())
        });
    let def = agent.ecs.task_definition_by_arn(&task.task_definition_arn);
    let timeout_of = |name: &str| {
        def.as_ref()
            .and_then(|d| {
                d.body
                    .get("containerDefinitions")
                    .and_then(|c| c.as_array())
                    .cloned()
            })
            .and_then(|cs| {
                cs.into_iter()
                    .find(|c| c.get("name").and_then(|n| n.as_str()) == Some(name))
            })
            .and_then(|c| c.get("stopTimeout").and_then(|v| v.as_i64()))
            .unwrap_or(DEFAULT_STOP_TIMEOUT_S)
    };
    // Reverse of start order: containers that others depend on stop last.
    let order = super::start::start_order(&task, def.as_ref());
    let mut results = Vec::new();
    for name in order.iter().rev() {
        let Some(c) = task.containers.iter().find(|c| &c.name == name) else {
            continue;
        };
        let Some(id) = &c.runtime_id else { continue };
        let timeout = agent
            .clock
            .real(std::time::Duration::from_secs(
                timeout_of(name).max(0) as u64
            ))
            .as_secs()
            .max(1) as i64;
        if let Err(e) = agent.runtime.stop(id, timeout).await {
            if !e.not_found && agent.daemon_unreachable().await {
                // The container may still run: the task is not STOPPED until it is stopped.
                tracing::debug!(container = %id, error = %e, "Docker unreachable: stop again later");
                return;
            }
            if !e.not_found {
                tracing::warn!(container = %id, error = %e, "stop failed");
            }
        }
        let state = agent.runtime.inspect(id).await.ok();
        results.push((name.clone(), state));
    }
    let now = agent.clock.now();
    let _ = agent
        .ecs
        .tasks
        .record::<_, crate::store::StoreError, _>(|t| {
            let Some(task) = t.get_mut(key) else {
                return Ok(());
            };
            for c in task.containers.iter_mut() {
                if let Some((_, state)) = results.iter().find(|(n, _)| n == &c.name) {
                    if c.last_status != "STOPPED" {
                        c.last_status = ContainerStatus::Stopped;
                        if let Some(s) = state {
                            c.exit_code = c.exit_code.or(s.exit_code);
                            if s.oom_killed && c.reason.is_none() {
                                c.reason = Some(
                                    "OutOfMemoryError: Container killed due to memory usage".into(),
                                );
                            }
                        }
                    }
                } else if c.last_status != "STOPPED" {
                    c.last_status = ContainerStatus::Stopped;
                }
            }
            task.last_status = TaskStatus::Stopped;
            crate::feedback!(
                "task {} ({}:{}) in cluster {} STOPPED: {}{}",
                task.id,
                task.family,
                task.revision,
                task.cluster,
                task.stopped_reason.as_deref().unwrap_or("no reason given"),
                exit_codes(task)
            );
            task.stopped_at = Some(now);
            task.execution_stopped_at.get_or_insert(now);
            task.version += 1;
            Ok(())
        });
    // A task without a container instance (Fargate) was the only user of its EFS mounts.
    if let (Some(efs), None) = (&agent.endpoints.efs, &task.container_instance_arn) {
        let (efs, id) = (efs.clone(), task.id.clone());
        tokio::task::spawn_blocking(move || efs.release_task(&id));
    }
}

/// ", exit codes app 0, sidecar 137" for the containers that reported one.
fn exit_codes(task: &crate::services::ecs::Task) -> String {
    let codes: Vec<String> = task
        .containers
        .iter()
        .filter_map(|c| c.exit_code.map(|e| format!("{} {e}", c.name)))
        .collect();
    if codes.is_empty() {
        String::new()
    } else {
        format!(", exit codes {}", codes.join(", "))
    }
}
