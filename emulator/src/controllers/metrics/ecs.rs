//! AWS/ECS metrics from measured task usage, with ECS's formulas (aws-behaviour.md §6):
//! - service (ClusterName, ServiceName): each task's used ÷ reserved × 100, one sample per
//!   measured task (so Average = Σ used ÷ (reservation × tasks), and it may exceed 100 when a
//!   container uses idle capacity);
//! - cluster (ClusterName): Σ used ÷ Σ registered over the ACTIVE and DRAINING instances (Fargate
//!   tasks, which have no instance, count their own reservation as registered capacity);
//! - CPUReservation, MemoryReservation (ClusterName): Σ reserved by the tasks on the ACTIVE and
//!   DRAINING instances ÷ Σ registered.
//!
//! Pure functions: the publisher measures, this computes.

use crate::services::cloudwatch::Samples;
use crate::services::ecs::{ContainerInstance, Task};
use std::collections::{BTreeMap, HashMap, HashSet};

pub const NAMESPACE: &str = "AWS/ECS";
const PERCENT: &str = "Percent";

/// What one task used over the last minute: CPU units (1024 = one core busy the whole minute)
/// and memory in MiB. None when it could not be measured (new container: no CPU baseline yet).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TaskUsage {
    pub cpu_units: Option<f64>,
    pub memory_mib: Option<f64>,
}

/// A row with the "<account>/<region>/" scope its key starts with.
pub struct Scoped<'a, T> {
    pub scope: &'a str,
    pub row: &'a T,
}

#[derive(Default)]
struct ClusterSums {
    registered_cpu: f64,
    registered_memory: f64,
    reserved_cpu: f64,
    reserved_memory: f64,
    used_cpu: f64,
    used_memory: f64,
    /// Capacity to divide utilization by (instances' registered plus Fargate reservations).
    capacity_cpu: f64,
    capacity_memory: f64,
    has_instances: bool,
}

#[derive(Default)]
struct ServiceSamples {
    cpu: Vec<f64>,
    memory: Vec<f64>,
}

/// Every AWS/ECS datum of one minute, grouped by scope. `usage` is keyed by task ARN; `tasks`
/// are the tasks that hold resources (PENDING to STOPPING), measured or not.
pub fn samples(
    instances: &[Scoped<'_, ContainerInstance>],
    tasks: &[Scoped<'_, Task>],
    usage: &HashMap<String, TaskUsage>,
    timestamp: f64,
) -> BTreeMap<String, Vec<Samples>> {
    let mut clusters: BTreeMap<(&str, &str), ClusterSums> = BTreeMap::new();
    let mut counted: HashSet<&str> = HashSet::new();
    for i in instances {
        let ci = i.row;
        if ci.status != "ACTIVE" && ci.status != "DRAINING" {
            continue;
        }
        counted.insert(ci.arn.as_str());
        let c = clusters.entry((i.scope, ci.cluster.as_str())).or_default();
        c.has_instances = true;
        c.registered_cpu += ci.registered_cpu as f64;
        c.registered_memory += ci.registered_memory as f64;
        c.capacity_cpu += ci.registered_cpu as f64;
        c.capacity_memory += ci.registered_memory as f64;
    }
    let mut services: BTreeMap<(&str, &str, &str), ServiceSamples> = BTreeMap::new();
    for t in tasks {
        let task = t.row;
        if !task.holds_resources() {
            continue;
        }
        let on_instance = task
            .container_instance_arn
            .as_deref()
            .is_some_and(|a| counted.contains(a));
        let fargate = task.container_instance_arn.is_none();
        if !on_instance && !fargate {
            continue;
        }
        let c = clusters
            .entry((t.scope, task.cluster.as_str()))
            .or_default();
        if on_instance {
            c.reserved_cpu += task.reserved_cpu as f64;
            c.reserved_memory += task.reserved_memory as f64;
        } else {
            c.capacity_cpu += task.reserved_cpu as f64;
            c.capacity_memory += task.reserved_memory as f64;
        }
        let Some(u) = usage.get(&task.arn).filter(|_| task.is_running()) else {
            continue;
        };
        c.used_cpu += u.cpu_units.unwrap_or(0.0);
        c.used_memory += u.memory_mib.unwrap_or(0.0);
        let Some(service) = task.group.strip_prefix("service:") else {
            continue;
        };
        let s = services
            .entry((t.scope, task.cluster.as_str(), service))
            .or_default();
        if let (Some(used), true) = (u.cpu_units, task.reserved_cpu > 0) {
            s.cpu.push(used / task.reserved_cpu as f64 * 100.0);
        }
        if let (Some(used), true) = (u.memory_mib, task.reserved_memory > 0) {
            s.memory.push(used / task.reserved_memory as f64 * 100.0);
        }
    }
    let mut out: BTreeMap<String, Vec<Samples>> = BTreeMap::new();
    for ((scope, cluster), c) in &clusters {
        let dims = vec![("ClusterName".to_string(), cluster.to_string())];
        let list = out.entry(scope.to_string()).or_default();
        let mut put = |name: &str, value: f64| {
            list.push(percent(name, dims.clone(), vec![value], timestamp));
        };
        if c.has_instances && c.registered_cpu > 0.0 {
            put("CPUReservation", c.reserved_cpu / c.registered_cpu * 100.0);
        }
        if c.has_instances && c.registered_memory > 0.0 {
            put(
                "MemoryReservation",
                c.reserved_memory / c.registered_memory * 100.0,
            );
        }
        if c.capacity_cpu > 0.0 {
            put("CPUUtilization", c.used_cpu / c.capacity_cpu * 100.0);
        }
        if c.capacity_memory > 0.0 {
            put(
                "MemoryUtilization",
                c.used_memory / c.capacity_memory * 100.0,
            );
        }
    }
    for ((scope, cluster, service), s) in services {
        let dims = vec![
            ("ClusterName".to_string(), cluster.to_string()),
            ("ServiceName".to_string(), service.to_string()),
        ];
        let list = out.entry(scope.to_string()).or_default();
        if !s.cpu.is_empty() {
            list.push(percent("CPUUtilization", dims.clone(), s.cpu, timestamp));
        }
        if !s.memory.is_empty() {
            list.push(percent("MemoryUtilization", dims, s.memory, timestamp));
        }
    }
    out
}

fn percent(name: &str, dimensions: Vec<(String, String)>, values: Vec<f64>, t: f64) -> Samples {
    Samples {
        namespace: NAMESPACE.to_string(),
        metric_name: name.to_string(),
        dimensions,
        values,
        unit: Some(PERCENT.to_string()),
        timestamp: t,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::ecs::model::TaskStatus;

    const SCOPE: &str = "000000000000/us-east-1/";

    fn instance(arn: &str, status: &str, cpu: i64, memory: i64) -> ContainerInstance {
        serde_json::from_value(serde_json::json!({
            "arn": arn, "id": arn, "cluster": "c", "ec2_instance_id": "i-1", "status": status,
            "agent_connected": true, "instance_type": "m5.large", "registered_cpu": cpu,
            "registered_memory": memory, "availability_zone": "us-east-1a",
            "host_ip": "127.16.0.2", "registered_at": 0.0, "version": 1, "arch": "x86_64",
        }))
        .expect("instance")
    }

    fn task(arn: &str, group: &str, instance: Option<&str>, cpu: i64, memory: i64) -> Task {
        Task {
            arn: arn.into(),
            cluster: "c".into(),
            group: group.into(),
            container_instance_arn: instance.map(str::to_string),
            reserved_cpu: cpu,
            reserved_memory: memory,
            last_status: TaskStatus::Running,
            ..Default::default()
        }
    }

    fn find<'a>(out: &'a [Samples], name: &str, service: Option<&str>) -> Option<&'a Samples> {
        out.iter().find(|s| {
            s.metric_name == name
                && s.dimensions.iter().any(|(k, _)| k == "ServiceName") == service.is_some()
                && service.is_none_or(|n| s.dimensions.iter().any(|(_, v)| v == n))
        })
    }

    #[test]
    fn service_and_cluster_formulas() {
        let instances = [
            instance("ci-1", "ACTIVE", 2048, 8000),
            instance("ci-2", "DRAINING", 2048, 8000),
            instance("ci-3", "INACTIVE", 2048, 8000),
        ];
        let tasks = [
            task("t1", "service:web", Some("ci-1"), 256, 512),
            task("t2", "service:web", Some("ci-2"), 256, 512),
            // A task that burns a whole core on 256 units: 400 %.
            task("t3", "service:burn", Some("ci-1"), 256, 1000),
            task("t4", "family:x", Some("ci-1"), 512, 488),
            // New: not measured yet, but reserves.
            task("t5", "service:web", Some("ci-2"), 256, 512),
        ];
        let usage: HashMap<String, TaskUsage> = [
            ("t1", 128.0, 256.0),
            ("t2", 64.0, 128.0),
            ("t3", 1024.0, 100.0),
            ("t4", 0.0, 0.0),
        ]
        .into_iter()
        .map(|(a, c, m)| {
            (
                a.to_string(),
                TaskUsage {
                    cpu_units: Some(c),
                    memory_mib: Some(m),
                },
            )
        })
        .collect();
        let scoped_i: Vec<Scoped<'_, ContainerInstance>> = instances
            .iter()
            .map(|row| Scoped { scope: SCOPE, row })
            .collect();
        let scoped_t: Vec<Scoped<'_, Task>> = tasks
            .iter()
            .map(|row| Scoped { scope: SCOPE, row })
            .collect();
        let out = samples(&scoped_i, &scoped_t, &usage, 120.0);
        let out = &out[SCOPE];
        let web = find(out, "CPUUtilization", Some("web")).expect("web cpu");
        assert_eq!(web.values, vec![50.0, 25.0]);
        assert_eq!(web.unit.as_deref(), Some("Percent"));
        assert_eq!(web.timestamp, 120.0);
        let burn = find(out, "CPUUtilization", Some("burn")).expect("burn cpu");
        assert_eq!(burn.values, vec![400.0]);
        let web_mem = find(out, "MemoryUtilization", Some("web")).expect("web memory");
        assert_eq!(web_mem.values, vec![50.0, 25.0]);
        // Cluster: over the ACTIVE and DRAINING instances only (4096 units, 16000 MiB).
        let cpu = find(out, "CPUUtilization", None).expect("cluster cpu");
        assert_eq!(cpu.values, vec![(128.0 + 64.0 + 1024.0) / 4096.0 * 100.0]);
        let mem = find(out, "MemoryUtilization", None).expect("cluster memory");
        assert_eq!(mem.values, vec![484.0 / 16000.0 * 100.0]);
        let reservation = find(out, "CPUReservation", None).expect("cpu reservation");
        assert_eq!(reservation.values, vec![1536.0 / 4096.0 * 100.0]);
        let mem_res = find(out, "MemoryReservation", None).expect("memory reservation");
        assert_eq!(mem_res.values, vec![3024.0 / 16000.0 * 100.0]);
        assert!(
            find(out, "CPUUtilization", Some("x")).is_none(),
            "standalone tasks have no service metric"
        );
    }

    #[test]
    fn fargate_tasks_and_empty_clusters() {
        let tasks = [task("f1", "service:api", None, 512, 1024)];
        let usage: HashMap<String, TaskUsage> = [(
            "f1".to_string(),
            TaskUsage {
                cpu_units: Some(256.0),
                memory_mib: None,
            },
        )]
        .into_iter()
        .collect();
        let scoped_t: Vec<Scoped<'_, Task>> = tasks
            .iter()
            .map(|row| Scoped { scope: SCOPE, row })
            .collect();
        let out = samples(&[], &scoped_t, &usage, 60.0);
        let out = &out[SCOPE];
        assert_eq!(
            find(out, "CPUUtilization", Some("api")).map(|s| s.values.clone()),
            Some(vec![50.0])
        );
        assert!(find(out, "MemoryUtilization", Some("api")).is_none());
        assert_eq!(
            find(out, "CPUUtilization", None).map(|s| s.values.clone()),
            Some(vec![50.0])
        );
        assert!(
            find(out, "CPUReservation", None).is_none(),
            "no instances, no reservation metric"
        );

        // An idle cluster with an instance publishes zeros.
        let instances = [instance("ci-1", "ACTIVE", 1024, 2000)];
        let scoped_i: Vec<Scoped<'_, ContainerInstance>> = instances
            .iter()
            .map(|row| Scoped { scope: SCOPE, row })
            .collect();
        let out = samples(&scoped_i, &[], &HashMap::new(), 60.0);
        let names: Vec<(&str, Vec<f64>)> = out[SCOPE]
            .iter()
            .map(|s| (s.metric_name.as_str(), s.values.clone()))
            .collect();
        assert_eq!(
            names,
            vec![
                ("CPUReservation", vec![0.0]),
                ("MemoryReservation", vec![0.0]),
                ("CPUUtilization", vec![0.0]),
                ("MemoryUtilization", vec![0.0]),
            ]
        );
    }
}
