//! The publisher end to end over a fake cgroup tree: ECS rows in, CloudWatch datapoints out.

use super::*;
use crate::services::cloudwatch::{Stat, StatQuery};
use crate::services::ecs::model::TaskStatus;
use crate::services::ecs::TaskContainer;
use crate::services::Deps;
use std::path::Path;

const SCOPE: &str = "000000000000/us-east-1/";
const A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, text).expect("write");
}

fn cgroup(root: &Path, id: &str, cpu_ns: u64, memory: u64) {
    write(
        &root.join(format!("cpuacct/docker/{id}/cpuacct.usage")),
        &cpu_ns.to_string(),
    );
    write(
        &root.join(format!("memory/docker/{id}/memory.usage_in_bytes")),
        &memory.to_string(),
    );
}

fn task(id: &str, container: &str) -> Task {
    Task {
        arn: format!("arn:aws:ecs:us-east-1:000000000000:task/c/{id}"),
        id: id.into(),
        cluster: "c".into(),
        group: "service:web".into(),
        launch_type: "FARGATE".into(),
        reserved_cpu: 256,
        reserved_memory: 512,
        last_status: TaskStatus::Running,
        containers: vec![TaskContainer {
            name: "app".into(),
            runtime_id: Some(container.into()),
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn stat(cw: &CloudWatch, dims: &[(&str, &str)], metric: &str, s: Stat, now: f64) -> Vec<f64> {
    let q = StatQuery {
        namespace: "AWS/ECS".into(),
        metric_name: metric.into(),
        dimensions: dims
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        start: now - 3600.0,
        end: now + 60.0,
        period: 60,
        stat: s,
    };
    cw.statistics("000000000000", "us-east-1", now, &q)
        .into_iter()
        .map(|(_, v)| v)
        .collect()
}

#[tokio::test]
async fn tasks_measured_from_cgroups_become_ecs_datapoints() {
    let root = tempfile::tempdir().expect("tmp");
    let r = root.path();
    let deps = Deps::for_tests();
    let cw = Arc::new(CloudWatch::with_store(&deps.store));
    let ecs = crate::services::ecs::for_tests();
    ecs.tasks
        .put(&format!("{SCOPE}c/t1"), task("t1", A))
        .expect("put");
    ecs.tasks
        .put(&format!("{SCOPE}c/t2"), task("t2", B))
        .expect("put");
    let clock = Clock::new(1.0);
    let p = Publisher::with_cgroups(cw.clone(), Some(ecs), None, clock.clone(), Cgroups::new(r));
    let minute = (clock.now() / 60.0).floor() * 60.0;

    // First pass: memory only (no CPU baseline yet).
    cgroup(r, A, 0, 256 * 1024 * 1024);
    cgroup(r, B, 0, 128 * 1024 * 1024);
    p.publish(minute - 120.0).await;
    let web = [("ClusterName", "c"), ("ServiceName", "web")];
    assert_eq!(
        stat(&cw, &web, "MemoryUtilization", Stat::Average, clock.now()),
        vec![37.5]
    );
    assert!(stat(&cw, &web, "CPUUtilization", Stat::Average, clock.now()).is_empty());

    // A burns a whole core for the real time between passes, B is idle: 400 % and 0 %.
    let before = Instant::now();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let elapsed = before.elapsed().as_nanos() as u64;
    cgroup(r, A, elapsed, 256 * 1024 * 1024);
    p.publish(minute - 60.0).await;
    let max = stat(&cw, &web, "CPUUtilization", Stat::Maximum, clock.now());
    assert_eq!(max.len(), 1, "{max:?}");
    assert!(
        (300.0..=400.0).contains(&max[0]),
        "a core on 256 units is about 400 %: {max:?}"
    );
    assert_eq!(
        stat(&cw, &web, "CPUUtilization", Stat::Minimum, clock.now()),
        vec![0.0]
    );
    assert_eq!(
        stat(&cw, &web, "CPUUtilization", Stat::SampleCount, clock.now()),
        vec![2.0],
        "one sample per task"
    );
    // Fargate-only cluster: utilization over the tasks' own reservation.
    let cluster = stat(
        &cw,
        &[("ClusterName", "c")],
        "CPUUtilization",
        Stat::Average,
        clock.now(),
    );
    // The first minute had no CPU baseline: 0 % then, the two tasks' mean now.
    assert_eq!(cluster.len(), 2, "{cluster:?}");
    assert_eq!(cluster[0], 0.0);
    assert!((max[0] / 2.0 - cluster[1]).abs() < 1e-9, "{cluster:?}");
    let report = p.cost();
    assert_eq!((report.passes, report.cgroup_reads), (2, 4));
    assert_eq!(report.docker_stats_calls, 0);
}

#[tokio::test]
async fn containers_without_a_cgroup_and_no_docker_are_skipped() {
    let root = tempfile::tempdir().expect("tmp");
    let deps = Deps::for_tests();
    let cw = Arc::new(CloudWatch::with_store(&deps.store));
    let ecs = crate::services::ecs::for_tests();
    ecs.tasks
        .put(&format!("{SCOPE}c/t1"), task("t1", A))
        .expect("put");
    let clock = Clock::new(1.0);
    let p = Publisher::with_cgroups(
        cw.clone(),
        Some(ecs),
        None,
        clock.clone(),
        Cgroups::new(root.path()),
    );
    p.publish(clock.now() - 60.0).await;
    let web = [("ClusterName", "c"), ("ServiceName", "web")];
    assert!(stat(&cw, &web, "MemoryUtilization", Stat::Average, clock.now()).is_empty());
}

#[test]
fn docker_stats_answers_and_scopes() {
    let v1 = serde_json::json!({
        "cpu_stats": {"cpu_usage": {"total_usage": 5000}},
        "memory_stats": {"usage": 10_000, "stats": {"total_inactive_file": 4000}},
    });
    assert_eq!(
        usage_from_docker(&v1),
        Some(Usage {
            cpu_ns: 5000,
            memory_bytes: 6000
        })
    );
    let v2 = serde_json::json!({
        "cpu_stats": {"cpu_usage": {"total_usage": 7}},
        "memory_stats": {"usage": 100, "stats": {"inactive_file": 40}},
    });
    assert_eq!(usage_from_docker(&v2).map(|u| u.memory_bytes), Some(60));
    assert_eq!(usage_from_docker(&serde_json::json!({})), None);
    assert_eq!(scope_of("000000000000/us-east-1/c/t1"), SCOPE);
    let t0 = Instant::now();
    let t1 = t0 + Duration::from_secs(2);
    assert_eq!(cpu_units((0, t0), (1_000_000_000, t1)), Some(512.0));
    assert_eq!(
        cpu_units((5, t0), (1, t1)),
        None,
        "a counter that went back"
    );
}
