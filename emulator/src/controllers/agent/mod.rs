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
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

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
    /// Containers the agent removes itself (leftovers of a start a restart interrupted, those of
    /// forgotten or unknown tasks), with when: their die and destroy events change no task.
    removing: Mutex<HashMap<String, Instant>>,
}

/// How long the agent remembers the containers it removed: their events arrive well within it.
const REMOVED_MEMORY: Duration = Duration::from_secs(600);

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
            removing: Mutex::new(HashMap::new()),
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

    /// Removes a container the agent no longer wants; its events are then ignored.
    async fn remove_own(&self, id: &str) {
        {
            let mut removing = self.removing.lock();
            let now = Instant::now();
            removing.retain(|_, at| now.duration_since(*at) < REMOVED_MEMORY);
            removing.insert(id.to_string(), now);
        }
        if let Err(e) = self.runtime.remove(id).await {
            tracing::warn!(container = %id, error = %e, "could not remove a container");
        }
    }

    /// Whether Docker does not answer now: a start or stop that failed then is tried again once
    /// it does (the task stays PENDING, or keeps its status until its containers are stopped),
    /// as ECS's agent, cut off from its Docker daemon, leaves its tasks until it reconnects.
    async fn daemon_unreachable(&self) -> bool {
        self.runtime.ping().await.is_err()
    }

    /// Whether the agent removed this container itself.
    fn removed_by_agent(&self, id: &str) -> bool {
        self.removing.lock().contains_key(id)
    }

    fn reconcile(self: &Arc<Self>) {
        let now = self.clock.now();
        self.remove_orphans();
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
            // Inside the reset fence: a reset waits for the start or stop, and one that waited
            // for a reset finds its task gone.
            if task.desired_status == "STOPPED" {
                tokio::spawn(async move {
                    let inside = agent.ecs.fence.enter().await;
                    stop::stop_task(&agent, &key).await;
                    drop(inside);
                    agent.release(&key);
                });
            } else if task.is_pending() {
                tokio::spawn(async move {
                    let inside = agent.ecs.fence.enter().await;
                    start::start_task(&agent, &key).await;
                    drop(inside);
                    agent.release(&key);
                });
            } else {
                self.release(&key);
            }
        }
    }

    /// A stopped task's containers went with its EC2 instance: once its container instance is
    /// gone (deregistered, or its instance terminated) they are removed from Docker at once, not
    /// after the cleanup wait, and the instance's EFS mounts are unmounted; the task stays
    /// describable (without runtimeId) for its retention.
    fn remove_orphans(self: &Arc<Self>) {
        type Candidate = (String, String, String, Vec<String>);
        let candidates: Vec<Candidate> = self.ecs.tasks.read(|rows| {
            rows.iter()
                .filter(|(_, t)| t.is_stopped())
                .filter_map(|(k, t)| {
                    let ids: Vec<String> = t
                        .containers
                        .iter()
                        .filter_map(|c| c.runtime_id.clone())
                        .collect();
                    let instance = t.container_instance_arn.as_deref()?.rsplit('/').next()?;
                    // Task keys are `<scope><cluster>/<id>`, instance keys `<scope><cluster>/<id>`.
                    let instance_key = format!("{}{instance}", &k[..k.rfind('/')? + 1]);
                    (!ids.is_empty()).then(|| (k.clone(), instance.to_string(), instance_key, ids))
                })
                .collect()
        });
        for (key, instance, instance_key, ids) in candidates {
            let gone = self
                .ecs
                .instances
                .get(&instance_key)
                .is_none_or(|i| i.status == "INACTIVE");
            if !gone || !self.claim(&key) {
                continue;
            }
            let agent = self.clone();
            tokio::spawn(async move {
                for id in &ids {
                    agent.remove_own(id).await;
                }
                if let Some(efs) = agent.endpoints.efs.clone() {
                    let _ = tokio::task::spawn_blocking(move || {
                        efs.mounts().release_instance(&instance);
                    })
                    .await;
                }
                let cleared = agent
                    .ecs
                    .tasks
                    .record::<_, crate::store::StoreError, _>(|rows| {
                        if let Some(mut t) = rows.get(&key).cloned() {
                            for c in &mut t.containers {
                                if c.runtime_id.as_ref().is_some_and(|r| ids.contains(r)) {
                                    c.runtime_id = None;
                                }
                            }
                            rows.put(&key, t);
                        }
                        Ok(())
                    });
                if let Err(e) = cleared {
                    tracing::warn!(task = %key, error = %e, "could not record removed containers");
                }
                agent.release(&key);
            });
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
                agent.remove_own(&id).await;
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
                self.remove_own(&c.id).await;
            }
        }
        self.check_running().await;
    }

    /// Inspects the containers of RUNNING tasks: those that exited or vanished while nobody
    /// watched (the emulator down, or Docker's event stream cut) update their tasks as their
    /// events would have.
    pub(super) async fn check_running(self: &Arc<Self>) {
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

#[cfg(test)]
mod tests;
