//! The metrics publisher: once a minute of emulator time, the metrics AWS's platform publishes,
//! written into the CloudWatch store PutMetricData uses (GetMetricStatistics, GetMetricData,
//! ListMetrics and alarms see them like any other data).
//!
//! - AWS/ECS (`ecs.rs`): each running task's containers are measured from their cgroups
//!   (`cgroup.rs`: a few small file reads per container; Docker's stats API only for a container
//!   whose cgroup cannot be found). CPU is the CPU time used since the previous minute's reading
//!   divided by the real time between the two readings, in CPU units (1024 per core).
//! - AWS/EC2 (`ec2.rs`): CPUUtilization of the container instances (what their tasks used), per
//!   instance and per EC2 Auto Scaling group.
//! - AWS/ApplicationELB (`alb.rs`): the data plane's request counters and target health.
//!
//! The datapoint of minute [t, t + 60) is written just after t + 60, before the alarm evaluator
//! looks at that minute (10 emulated seconds later).

pub mod alb;
pub mod cgroup;
pub mod ec2;
pub mod ecs;

use crate::clock::Clock;
use crate::runtime::ContainerRuntime;
use crate::services::cloudwatch::{CloudWatch, Samples};
use crate::services::ecs::{ContainerInstance, Ecs, Task};
use crate::services::elbv2::Elbv2;
use cgroup::{Cgroups, Usage};
use ecs::{Scoped, TaskUsage};
use futures::StreamExt;
use parking_lot::Mutex;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// At most this many Docker stats calls at once (the fallback when cgroups are not visible).
const STATS_CONCURRENCY: usize = 8;

/// What the publisher has cost so far (`GET /_emulator/state` → `metricsPublisher`).
#[derive(Debug, Default)]
pub struct Cost {
    passes: AtomicU64,
    /// Wall time of the passes' synchronous work (cgroup reads, computing, the store write), an
    /// upper bound of its CPU time.
    busy_ns: AtomicU64,
    cgroup_reads: AtomicU64,
    docker_stats_calls: AtomicU64,
}

#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CostReport {
    pub passes: u64,
    pub busy_seconds: f64,
    pub cgroup_reads: u64,
    pub docker_stats_calls: u64,
}

/// Mutable state between passes.
#[derive(Default)]
struct Readings {
    cgroups: Cgroups,
    /// Container id → (CPU ns, when read) of the previous pass.
    previous: HashMap<String, (u64, Instant)>,
    alb: alb::AlbMetrics,
}

pub struct Publisher {
    cw: Arc<CloudWatch>,
    ecs: Option<Arc<Ecs>>,
    elbv2: Option<Arc<Elbv2>>,
    clock: Clock,
    runtime: OnceLock<Arc<dyn ContainerRuntime>>,
    readings: Mutex<Readings>,
    cost: Cost,
}

/// Rows with the "<account>/<region>/" scope of their key.
type ScopedRows<T> = Vec<(String, T)>;

/// A running task's containers (Docker ids) to measure.
struct ToMeasure {
    task_arn: String,
    containers: Vec<String>,
}

impl Publisher {
    pub fn new(
        cw: Arc<CloudWatch>,
        ecs: Option<Arc<Ecs>>,
        elbv2: Option<Arc<Elbv2>>,
        clock: Clock,
    ) -> Arc<Publisher> {
        Publisher::with_cgroups(cw, ecs, elbv2, clock, Cgroups::default())
    }

    fn with_cgroups(
        cw: Arc<CloudWatch>,
        ecs: Option<Arc<Ecs>>,
        elbv2: Option<Arc<Elbv2>>,
        clock: Clock,
        cgroups: Cgroups,
    ) -> Arc<Publisher> {
        Arc::new(Publisher {
            cw,
            ecs,
            elbv2,
            clock,
            runtime: OnceLock::new(),
            readings: Mutex::new(Readings {
                cgroups,
                ..Default::default()
            }),
            cost: Cost::default(),
        })
    }

    /// Docker, once connected: the fallback for containers whose cgroup is not visible.
    pub fn set_runtime(&self, runtime: Arc<dyn ContainerRuntime>) {
        let _ = self.runtime.set(runtime);
    }

    /// Whether the runtime is the simulated one, whose containers only have synthetic stats.
    fn synthetic(&self) -> bool {
        self.runtime.get().is_some_and(|r| r.name() == "simulated")
    }

    pub fn cost(&self) -> CostReport {
        CostReport {
            passes: self.cost.passes.load(Ordering::Relaxed),
            busy_seconds: self.cost.busy_ns.load(Ordering::Relaxed) as f64 / 1e9,
            cgroup_reads: self.cost.cgroup_reads.load(Ordering::Relaxed),
            docker_stats_calls: self.cost.docker_stats_calls.load(Ordering::Relaxed),
        }
    }

    pub async fn run(self: Arc<Self>) {
        loop {
            let now = self.clock.now();
            let next = (now / 60.0).floor() * 60.0 + 60.0;
            let wait = Duration::from_secs_f64((next - now).max(0.0));
            tokio::time::sleep(self.clock.real(wait) + Duration::from_millis(1)).await;
            self.publish(next - 60.0).await;
        }
    }

    /// Measures and publishes the minute starting at `minute` (epoch seconds).
    pub async fn publish(&self, minute: f64) {
        let started = Instant::now();
        let (tasks, instances) = self.ecs_rows();
        let to_measure = running_containers(&tasks);
        let (mut measured, missing) = if self.synthetic() {
            // Simulated containers have no cgroup: the runtime's synthetic stats stand in.
            let all = to_measure.iter().flat_map(|t| t.containers.clone());
            (HashMap::new(), all.collect())
        } else {
            self.read_cgroups(&to_measure)
        };
        let mut busy = started.elapsed();
        if !missing.is_empty() {
            measured.extend(self.docker_stats(missing).await);
        }
        let resumed = Instant::now();
        let usage = self.usage(&to_measure, &measured);
        let mut by_scope = {
            let i: Vec<Scoped<'_, ContainerInstance>> = instances
                .iter()
                .map(|(scope, row)| Scoped { scope, row })
                .collect();
            let t: Vec<Scoped<'_, Task>> = tasks
                .iter()
                .map(|(scope, row)| Scoped { scope, row })
                .collect();
            let mut out = ecs::samples(&i, &t, &usage, minute);
            for (scope, data) in ec2::samples(&i, &t, &usage, minute) {
                out.entry(scope).or_default().extend(data);
            }
            out
        };
        if let Some(elbv2) = &self.elbv2 {
            let alb = self.readings.lock().alb.collect(elbv2, minute);
            for (scope, data) in alb {
                by_scope.entry(scope).or_default().extend(data);
            }
        }
        self.write(by_scope);
        busy += resumed.elapsed();
        self.cost.passes.fetch_add(1, Ordering::Relaxed);
        self.cost
            .busy_ns
            .fetch_add(busy.as_nanos() as u64, Ordering::Relaxed);
    }

    /// Unstopped tasks and every container instance, with their scopes.
    fn ecs_rows(&self) -> (ScopedRows<Task>, ScopedRows<ContainerInstance>) {
        let Some(ecs) = &self.ecs else {
            return (Vec::new(), Vec::new());
        };
        let tasks = ecs.tasks.read(|rows| {
            rows.iter()
                .filter(|(_, t)| t.holds_resources())
                .map(|(k, t)| (scope_of(k), t.clone()))
                .collect()
        });
        let instances = ecs
            .instances
            .read(|rows| rows.iter().map(|(k, i)| (scope_of(k), i.clone())).collect());
        (tasks, instances)
    }

    /// Reads every container's cgroup; returns the readings and the ids it could not find.
    fn read_cgroups(
        &self,
        tasks: &[ToMeasure],
    ) -> (HashMap<String, (Usage, Instant)>, Vec<String>) {
        let mut r = self.readings.lock();
        let mut found = HashMap::new();
        let mut missing = Vec::new();
        for id in tasks.iter().flat_map(|t| t.containers.iter()) {
            self.cost.cgroup_reads.fetch_add(1, Ordering::Relaxed);
            match r.cgroups.read(id) {
                Some(u) => {
                    found.insert(id.clone(), (u, Instant::now()));
                }
                None => missing.push(id.clone()),
            }
        }
        let live: HashSet<&str> = tasks
            .iter()
            .flat_map(|t| t.containers.iter().map(String::as_str))
            .collect();
        r.cgroups.retain(&live);
        (found, missing)
    }

    /// Docker's stats for containers without a visible cgroup (rootless Docker, a remote
    /// daemon, the emulator in a container without /sys/fs/cgroup).
    async fn docker_stats(&self, ids: Vec<String>) -> Vec<(String, (Usage, Instant))> {
        let Some(rt) = self.runtime.get().cloned() else {
            return Vec::new();
        };
        self.cost
            .docker_stats_calls
            .fetch_add(ids.len() as u64, Ordering::Relaxed);
        futures::stream::iter(ids)
            .map(|id| {
                let rt = rt.clone();
                async move {
                    let stats = rt.stats(&id).await.ok()?;
                    Some((id, (usage_from_docker(&stats)?, Instant::now())))
                }
            })
            .buffer_unordered(STATS_CONCURRENCY)
            .filter_map(|x| async move { x })
            .collect()
            .await
    }

    /// Per task: CPU units used since the previous reading, memory in MiB now.
    fn usage(
        &self,
        tasks: &[ToMeasure],
        measured: &HashMap<String, (Usage, Instant)>,
    ) -> HashMap<String, TaskUsage> {
        let mut r = self.readings.lock();
        let mut out = HashMap::new();
        for t in tasks {
            let mut u = TaskUsage::default();
            for id in &t.containers {
                let Some((now, at)) = measured.get(id) else {
                    continue;
                };
                *u.memory_mib.get_or_insert(0.0) += now.memory_bytes as f64 / (1024.0 * 1024.0);
                if let Some(units) = r
                    .previous
                    .get(id)
                    .and_then(|p| cpu_units(*p, (now.cpu_ns, *at)))
                {
                    *u.cpu_units.get_or_insert(0.0) += units;
                }
            }
            if u.memory_mib.is_some() || u.cpu_units.is_some() {
                out.insert(t.task_arn.clone(), u);
            }
        }
        r.previous = measured
            .iter()
            .map(|(id, (u, at))| (id.clone(), (u.cpu_ns, *at)))
            .collect();
        out
    }

    fn write(&self, by_scope: BTreeMap<String, Vec<Samples>>) {
        let now = self.clock.now();
        for (scope, data) in by_scope {
            let mut parts = scope.split('/');
            let (Some(account), Some(region)) = (parts.next(), parts.next()) else {
                continue;
            };
            if let Err(e) = self.cw.put_samples(account, region, now, &data) {
                tracing::warn!(error = %e.message, "publishing metrics failed");
            }
        }
    }
}

/// The running tasks' containers that have a Docker id.
fn running_containers(tasks: &[(String, Task)]) -> Vec<ToMeasure> {
    tasks
        .iter()
        .filter(|(_, t)| t.is_running())
        .map(|(_, t)| ToMeasure {
            task_arn: t.arn.clone(),
            containers: t
                .containers
                .iter()
                .filter_map(|c| c.runtime_id.clone())
                .collect(),
        })
        .filter(|t| !t.containers.is_empty())
        .collect()
}

/// CPU units (1024 per core) used between two readings; None when the clock did not move or
/// the counter went back (a restarted container).
fn cpu_units(before: (u64, Instant), now: (u64, Instant)) -> Option<f64> {
    let real = now.1.checked_duration_since(before.1)?.as_nanos() as f64;
    let used = now.0.checked_sub(before.0)? as f64;
    (real > 0.0).then(|| used / real * 1024.0)
}

/// CPU and memory from one Docker stats answer (memory less inactive page cache, as
/// `docker stats` shows it: `total_inactive_file` on cgroup v1, `inactive_file` on v2).
fn usage_from_docker(stats: &serde_json::Value) -> Option<Usage> {
    let cpu_ns = stats["cpu_stats"]["cpu_usage"]["total_usage"].as_u64()?;
    let mem = &stats["memory_stats"];
    let charged = mem["usage"].as_u64().unwrap_or(0);
    let inactive = mem["stats"]["total_inactive_file"]
        .as_u64()
        .or_else(|| mem["stats"]["inactive_file"].as_u64())
        .unwrap_or(0);
    Some(Usage {
        cpu_ns,
        memory_bytes: charged.saturating_sub(inactive),
    })
}

/// "<account>/<region>/" of a row key.
fn scope_of(key: &str) -> String {
    let mut parts = key.splitn(3, '/');
    match (parts.next(), parts.next()) {
        (Some(a), Some(r)) => format!("{a}/{r}/"),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests;
