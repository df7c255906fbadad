//! The task agent: what the ECS container agent does on each instance, for every virtual
//! instance at once. It starts tasks whose desired status is RUNNING, stops those whose desired
//! status is STOPPED, and follows Docker's events so that a container that exits, is OOM-killed
//! or is removed behind the emulator's back updates its task.

mod events;
pub mod resources;
pub mod spec;
mod start;
mod stop;

use crate::clock::Clock;
use crate::runtime::{ContainerRuntime, OWNER_LABEL};
use crate::services::ecr::Ecr;
use crate::services::ecs::{Ecs, Task};
use crate::services::logs::Logs;
use crate::services::ssm::Ssm;
use parking_lot::Mutex;
use spec::Endpoints;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

/// How long stopped tasks stay describable, and their containers stay in Docker (emulated time).
pub const STOPPED_TASK_RETENTION_S: f64 = 3600.0;
pub const STOPPED_CONTAINER_CLEANUP_S: f64 = 3.0 * 3600.0;

/// Where things are, as the agent needs them.
#[derive(Clone, Default)]
pub struct AgentEndpoints {
    /// What containers are told (AWS_ENDPOINT_URL, metadata and credentials URIs).
    pub containers: Endpoints,
    /// host:port of the emulated ECR registry as Docker reaches it, e.g. localhost:4566.
    pub registry_host: String,
    /// The emulated ECR, which issues the registry password Docker presents when pulling.
    pub ecr: Option<Arc<Ecr>>,
    /// SSM Parameter Store, for container secrets.
    pub ssm: Option<Arc<Ssm>>,
    /// CloudWatch Logs, for the awslogs log driver.
    pub logs: Option<Arc<Logs>>,
    /// EFS volumes (efsVolumeConfiguration): the FUSE mounts of each instance.
    pub efs: Option<Arc<crate::efs::EfsVolumes>>,
}

pub struct Agent {
    pub ecs: Arc<Ecs>,
    pub runtime: Arc<dyn ContainerRuntime>,
    /// Value of OWNER_LABEL on every container this emulator (this data dir) creates.
    pub owner: String,
    pub clock: Clock,
    pub endpoints: AgentEndpoints,
    /// Task keys with a start or stop in progress.
    busy: Mutex<HashSet<String>>,
}

impl Agent {
    pub fn new(
        ecs: Arc<Ecs>,
        runtime: Arc<dyn ContainerRuntime>,
        owner: String,
        clock: Clock,
        endpoints: AgentEndpoints,
    ) -> Arc<Agent> {
        Arc::new(Agent {
            ecs,
            runtime,
            owner,
            clock,
            endpoints,
            busy: Mutex::new(HashSet::new()),
        })
    }

    /// Runs forever: reconciles on every wake-up and at least once a second.
    pub async fn run(self: Arc<Self>) {
        tokio::spawn(events::follow(self.clone()));
        self.adopt().await;
        loop {
            self.reconcile();
            tokio::select! {
                _ = self.ecs.agent_wakeup.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }

    /// Claims a task for one start or stop; false if one is in progress.
    fn claim(&self, key: &str) -> bool {
        self.busy.lock().insert(key.to_string())
    }

    fn release(&self, key: &str) {
        self.busy.lock().remove(key);
    }

    fn reconcile(self: &Arc<Self>) {
        let now = self.clock.now();
        let tasks: Vec<(String, Task)> = self.ecs.tasks.read(|rows| {
            rows.iter()
                .filter(|(_, t)| {
                    !t.is_stopped()
                        || t.stopped_at
                            .is_some_and(|s| now - s > STOPPED_TASK_RETENTION_S)
                })
                .map(|(k, t)| (k.clone(), t.clone()))
                .collect()
        });
        for (key, task) in tasks {
            if task.is_stopped() {
                // Past retention: the task disappears from DescribeTasks.
                self.forget(&key, &task, now);
                continue;
            }
            // Waiting for capacity: no instance runs it yet.
            if task.awaiting_capacity && task.desired_status != "STOPPED" {
                continue;
            }
            if !self.claim(&key) {
                continue;
            }
            let agent = self.clone();
            if task.desired_status == "STOPPED" {
                tokio::spawn(async move {
                    stop::stop_task(&agent, &key).await;
                    agent.release(&key);
                });
            } else if task.is_pending() {
                tokio::spawn(async move {
                    start::start_task(&agent, &key).await;
                    agent.release(&key);
                });
            } else {
                self.release(&key);
            }
        }
    }

    fn forget(self: &Arc<Self>, key: &str, task: &Task, now: f64) {
        let removable = task
            .stopped_at
            .is_some_and(|s| now - s > STOPPED_CONTAINER_CLEANUP_S);
        if !removable || !self.claim(key) {
            return;
        }
        let agent = self.clone();
        let key = key.to_string();
        let ids: Vec<String> = task
            .containers
            .iter()
            .filter_map(|c| c.runtime_id.clone())
            .collect();
        let volumes = self
            .ecs
            .task_definition_by_arn(&task.task_definition_arn)
            .and_then(|d| d.body.get("volumes").and_then(|v| v.as_array()).cloned())
            .map(|v| resources::task_scoped_volumes(task, &v))
            .unwrap_or_default();
        tokio::spawn(async move {
            for id in ids {
                let _ = agent.runtime.remove(&id).await;
            }
            for v in volumes {
                let _ = agent.runtime.remove_volume(&v).await;
            }
            if let Err(e) = agent.ecs.tasks.remove(&key) {
                tracing::warn!(task = %key, error = %e, "could not forget a stopped task");
            }
            agent.release(&key);
        });
    }

    /// After a restart: tasks whose containers vanished while the emulator was down are stopped;
    /// containers of tasks the emulator no longer knows are removed; the rest are adopted as is.
    async fn adopt(self: &Arc<Self>) {
        let containers = match self.runtime.list(OWNER_LABEL, &self.owner).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list containers to adopt");
                return;
            }
        };
        let known: HashSet<String> = self.ecs.tasks.read(|rows| rows.keys().cloned().collect());
        for c in &containers {
            let key = c
                .labels
                .get(spec::TASK_KEY_LABEL)
                .cloned()
                .unwrap_or_default();
            if !known.contains(&key) {
                tracing::info!(container = %c.name, "removing a container of an unknown task");
                let _ = self.runtime.remove(&c.id).await;
            }
        }
        let running: Vec<(String, Task)> = self.ecs.tasks.read(|rows| {
            rows.iter()
                .filter(|(_, t)| t.is_running())
                .map(|(k, t)| (k.clone(), t.clone()))
                .collect()
        });
        for (key, task) in running {
            for c in &task.containers {
                let Some(id) = &c.runtime_id else { continue };
                match self.runtime.inspect(id).await {
                    Ok(state) if state.running => {}
                    Ok(state) => {
                        events::container_exited(self, &key, id, state.exit_code, state.oom_killed)
                            .await
                    }
                    Err(e) if e.not_found => events::container_removed(self, &key, id).await,
                    Err(_) => {}
                }
            }
        }
    }
}

/// Removes every container this emulator owns (POST /_emulator/reset).
pub async fn remove_all(runtime: &dyn ContainerRuntime, owner: &str) -> usize {
    let Ok(containers) = runtime.list(OWNER_LABEL, owner).await else {
        return 0;
    };
    let mut n = 0;
    for c in containers {
        if runtime.remove(&c.id).await.is_ok() {
            n += 1;
        }
    }
    n
}
