//! Docker events → task state: a container that exits, is OOM-killed, turns (un)healthy or is
//! removed behind the emulator's back updates its task within a second.

use super::spec::TASK_KEY_LABEL;
use super::Agent;
use crate::runtime::RuntimeEvent;
use crate::services::ecs::model::{ContainerStatus, HealthStatus};
use crate::services::ecs::tasks::mark_stopping;
use futures::StreamExt;
use std::sync::Arc;
use std::time::Duration;

const OOM_REASON: &str = "OutOfMemoryError: Container killed due to memory usage";

pub async fn follow(agent: Arc<Agent>) {
    let mut cut = false;
    loop {
        let mut events = agent.runtime.events(&agent.owner);
        if cut && agent.runtime.ping().await.is_ok() {
            // Events of the time the stream was cut are lost: look at the containers instead.
            agent.check_running().await;
            cut = false;
        }
        while let Some(event) = events.next().await {
            match event {
                Ok(e) => handle(&agent, e).await,
                Err(e) => {
                    if !cut {
                        tracing::warn!(error = %e, "docker event stream failed");
                    }
                    break;
                }
            }
        }
        cut = true;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// The task key of a container: from its label, or by searching the tasks.
async fn task_key(agent: &Agent, id: &str) -> Option<String> {
    if let Ok(state) = agent.runtime.inspect(id).await {
        if let Some(k) = state.labels.get(TASK_KEY_LABEL) {
            return Some(k.clone());
        }
    }
    agent.ecs.tasks.read(|rows| {
        rows.iter()
            .find(|(_, t)| {
                t.containers
                    .iter()
                    .any(|c| c.runtime_id.as_deref() == Some(id))
            })
            .map(|(k, _)| k.clone())
    })
}

async fn handle(agent: &Arc<Agent>, event: RuntimeEvent) {
    // What happens to a container the agent removed itself is no news for any task.
    if agent.removed_by_agent(event.id()) {
        return;
    }
    match event {
        RuntimeEvent::Died { id, exit_code } => {
            let oom = agent
                .runtime
                .inspect(&id)
                .await
                .map(|s| s.oom_killed)
                .unwrap_or(false);
            if let Some(key) = task_key(agent, &id).await {
                container_exited(agent, &key, &id, exit_code, oom).await;
            }
        }
        RuntimeEvent::Oom { id } => {
            if let Some(key) = task_key(agent, &id).await {
                set_container(agent, &key, &id, |c| {
                    c.reason.get_or_insert_with(|| OOM_REASON.to_string());
                });
            }
        }
        RuntimeEvent::Health { id, status } => {
            if let Some(key) = task_key(agent, &id).await {
                let health = match status.as_str() {
                    "healthy" => HealthStatus::Healthy,
                    "unhealthy" => HealthStatus::Unhealthy,
                    _ => HealthStatus::Unknown,
                };
                set_container(agent, &key, &id, |c| c.health_status = Some(health));
            }
        }
        RuntimeEvent::Destroyed { id } => {
            let key = agent.ecs.tasks.read(|rows| {
                rows.iter()
                    .find(|(_, t)| {
                        !t.is_stopped()
                            && t.containers
                                .iter()
                                .any(|c| c.runtime_id.as_deref() == Some(&id))
                    })
                    .map(|(k, _)| k.clone())
            });
            if let Some(key) = key {
                container_removed(agent, &key, &id).await;
            }
        }
    }
}

fn set_container(
    agent: &Agent,
    key: &str,
    id: &str,
    f: impl FnOnce(&mut crate::services::ecs::TaskContainer),
) {
    let _ = agent
        .ecs
        .tasks
        .record::<_, crate::store::StoreError, _>(|t| {
            if let Some(task) = t.get_mut(key) {
                if let Some(c) = task
                    .containers
                    .iter_mut()
                    .find(|c| c.runtime_id.as_deref() == Some(id))
                {
                    f(c);
                    task.version += 1;
                }
            }
            Ok(())
        });
}

/// A container stopped: record how; an essential one stops its task.
pub async fn container_exited(
    agent: &Arc<Agent>,
    key: &str,
    id: &str,
    exit_code: Option<i64>,
    oom: bool,
) {
    let now = agent.clock.now();
    let mut wake = false;
    let _ = agent
        .ecs
        .tasks
        .record::<_, crate::store::StoreError, _>(|t| {
            let Some(task) = t.get_mut(key) else {
                return Ok(());
            };
            let Some(c) = task
                .containers
                .iter_mut()
                .find(|c| c.runtime_id.as_deref() == Some(id))
            else {
                return Ok(());
            };
            if c.last_status == "STOPPED" {
                return Ok(());
            }
            c.last_status = ContainerStatus::Stopped;
            c.exit_code = exit_code;
            c.finished_at = Some(now);
            if oom {
                c.reason.get_or_insert_with(|| OOM_REASON.to_string());
            }
            let essential = c.essential;
            task.version += 1;
            if essential && task.desired_status == "RUNNING" {
                mark_stopping(
                    task,
                    now,
                    "EssentialContainerExited",
                    "Essential container in task exited",
                );
                wake = true;
            }
            if task
                .containers
                .iter()
                .all(|c| c.last_status == "STOPPED" || c.runtime_id.is_none())
                && task.desired_status == "STOPPED"
            {
                wake = true;
            }
            Ok(())
        });
    if wake {
        agent.ecs.wake_agent();
    }
}

/// A container was removed behind the emulator's back.
pub async fn container_removed(agent: &Arc<Agent>, key: &str, id: &str) {
    let now = agent.clock.now();
    let _ = agent
        .ecs
        .tasks
        .record::<_, crate::store::StoreError, _>(|t| {
            let Some(task) = t.get_mut(key) else {
                return Ok(());
            };
            let Some(c) = task
                .containers
                .iter_mut()
                .find(|c| c.runtime_id.as_deref() == Some(id))
            else {
                return Ok(());
            };
            if c.last_status != "STOPPED" {
                c.last_status = ContainerStatus::Stopped;
                c.finished_at = Some(now);
                c.reason.get_or_insert_with(|| {
                    "DockerContainerRemoved: the container was removed outside of ECS".to_string()
                });
            }
            let essential = c.essential;
            if essential && task.desired_status == "RUNNING" {
                mark_stopping(
                    task,
                    now,
                    "EssentialContainerExited",
                    "Essential container in task exited",
                );
            }
            task.version += 1;
            Ok(())
        });
    agent.ecs.wake_agent();
}
