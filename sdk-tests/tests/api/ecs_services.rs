//! ECS services through aws-sdk-ecs: the scheduler keeps the desired count of real containers
//! running, rolls deployments out, replaces lost tasks and drains on delete.

use crate::ecs_docker::{cluster_with_instance, container, ensure_image, register_instance};
use aws_sdk_ecs::types::{
    DeploymentCircuitBreaker, DeploymentConfiguration, SchedulingStrategy, Service,
};
use aws_sdk_ecs::Client;
use sdk_tests::Emulator;
use std::process::Command;
use std::time::{Duration, Instant};

async fn describe(ecs: &Client, cluster: &str, name: &str) -> Service {
    let out = ecs
        .describe_services()
        .cluster(cluster)
        .services(name)
        .send()
        .await
        .expect("DescribeServices");
    out.services().first().cloned().expect("the service")
}

/// Polls DescribeServices until `done` holds (120 s at most: a rolling deployment of tasks without
/// health checks waits 40 s before the new tasks count toward minimumHealthyPercent).
async fn wait_for(
    ecs: &Client,
    cluster: &str,
    name: &str,
    what: &str,
    done: impl Fn(&Service) -> bool,
) -> Service {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let s = describe(ecs, cluster, name).await;
        if done(&s) {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "service never reached: {what}: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn messages(s: &Service) -> Vec<String> {
    s.events()
        .iter()
        .filter_map(|e| e.message().map(str::to_string))
        .collect()
}

async fn running_tasks(ecs: &Client, cluster: &str, service: &str) -> Vec<String> {
    ecs.list_tasks()
        .cluster(cluster)
        .service_name(service)
        .send()
        .await
        .expect("ListTasks")
        .task_arns()
        .to_vec()
}

#[tokio::test]
async fn service_keeps_its_count_rolls_out_and_drains() {
    ensure_image();
    let emu = Emulator::start();
    let ecs = emu.ecs();
    cluster_with_instance(&ecs, "svc", "m5.large", "us-east-1a").await;
    register_instance(&ecs, "svc", "m5.large", "us-east-1b").await;
    for cmd in ["sleep 3600", "sleep 3601"] {
        ecs.register_task_definition()
            .family("web")
            .container_definitions(container("web", 16, &["sh", "-c", cmd]).build())
            .send()
            .await
            .expect("register");
    }
    let created = ecs
        .create_service()
        .cluster("svc")
        .service_name("web")
        .task_definition("web:1")
        .desired_count(4)
        .send()
        .await
        .expect("CreateService");
    let svc = created.service().expect("service");
    assert_eq!(svc.status(), Some("ACTIVE"));
    assert!(
        svc.deployments()[0]
            .id()
            .is_some_and(|id| id.starts_with("ecs-svc/") && id.len() == 27),
        "{svc:?}"
    );
    let steady = wait_for(&ecs, "svc", "web", "4 running, completed", |s| {
        s.running_count() == 4
            && s.deployments().len() == 1
            && s.deployments()[0].rollout_state().map(|r| r.as_str()) == Some("COMPLETED")
    })
    .await;
    let events = messages(&steady);
    assert!(
        events
            .iter()
            .any(|m| m == "(service web) has reached a steady state."),
        "{events:?}"
    );
    assert!(
        events
            .iter()
            .any(|m| m.starts_with("(service web) has started 4 tasks: (task ")),
        "{events:?}"
    );
    // Spread across the two AZs, as the service scheduler's default strategy does.
    let arns = running_tasks(&ecs, "svc", "web").await;
    let tasks = ecs
        .describe_tasks()
        .cluster("svc")
        .set_tasks(Some(arns.clone()))
        .send()
        .await
        .expect("tasks");
    let in_a = tasks
        .tasks()
        .iter()
        .filter(|t| t.availability_zone() == Some("us-east-1a"))
        .count();
    assert_eq!(in_a, 2, "two tasks per AZ");
    assert!(tasks.tasks().iter().all(
        |t| t.group() == Some("service:web") && t.started_by() == steady.deployments()[0].id()
    ));
    let cluster = ecs
        .describe_clusters()
        .clusters("svc")
        .send()
        .await
        .expect("clusters");
    assert_eq!(cluster.clusters()[0].active_services_count(), 1);

    // A task lost behind the scheduler's back is replaced.
    let victim = tasks.tasks()[0].containers()[0]
        .runtime_id()
        .expect("id")
        .to_string();
    Command::new("docker")
        .args(["rm", "-f", &victim])
        .output()
        .expect("docker rm");
    wait_for(&ecs, "svc", "web", "a replacement", |s| {
        s.running_count() == 4
            && messages(s)
                .iter()
                .filter(|m| m.contains("has started 1 tasks"))
                .count()
                >= 1
    })
    .await;

    // A new task definition rolls out: within maximumPercent 200 / minimumHealthyPercent 100.
    ecs.update_service()
        .cluster("svc")
        .service("web")
        .task_definition("web:2")
        .send()
        .await
        .expect("UpdateService");
    let rolled = wait_for(&ecs, "svc", "web", "web:2 completed", |s| {
        s.deployments().len() == 1
            && s.deployments()[0]
                .task_definition()
                .is_some_and(|d| d.ends_with("web:2"))
            && s.deployments()[0].rollout_state().map(|r| r.as_str()) == Some("COMPLETED")
            && s.running_count() == 4
    })
    .await;
    assert!(
        messages(&rolled)
            .iter()
            .any(|m| m.starts_with("(service web) has stopped ")),
        "{:?}",
        messages(&rolled)
    );
    let arns = running_tasks(&ecs, "svc", "web").await;
    let tasks = ecs
        .describe_tasks()
        .cluster("svc")
        .set_tasks(Some(arns))
        .send()
        .await
        .expect("tasks");
    assert!(tasks.tasks().iter().all(|t| t
        .task_definition_arn()
        .is_some_and(|d| d.ends_with("web:2"))));
    let stopped = ecs
        .list_tasks()
        .cluster("svc")
        .service_name("web")
        .desired_status(aws_sdk_ecs::types::DesiredStatus::Stopped)
        .send()
        .await
        .expect("list");
    let old = ecs
        .describe_tasks()
        .cluster("svc")
        .set_tasks(Some(stopped.task_arns().to_vec()))
        .send()
        .await
        .expect("old");
    assert!(old.tasks().iter().any(|t| t
        .stopped_reason()
        .is_some_and(|r| r.starts_with("Scaling activity initiated by (deployment ecs-svc/"))));

    // Scale in, then delete: DRAINING, then INACTIVE once its tasks stopped.
    ecs.update_service()
        .cluster("svc")
        .service("web")
        .desired_count(1)
        .send()
        .await
        .expect("scale in");
    wait_for(&ecs, "svc", "web", "1 running", |s| {
        s.running_count() == 1 && s.pending_count() == 0
    })
    .await;
    let err = ecs
        .delete_service()
        .cluster("svc")
        .service("web")
        .send()
        .await
        .expect_err("scaled above 0");
    assert_eq!(
        aws_sdk_ecs::error::ProvideErrorMetadata::code(&err),
        Some("InvalidParameterException")
    );
    let deleted = ecs
        .delete_service()
        .cluster("svc")
        .service("web")
        .force(true)
        .send()
        .await
        .expect("DeleteService");
    assert_eq!(deleted.service().and_then(|s| s.status()), Some("DRAINING"));
    wait_for(&ecs, "svc", "web", "INACTIVE", |s| {
        s.status() == Some("INACTIVE")
    })
    .await;
    assert!(ecs
        .list_services()
        .cluster("svc")
        .send()
        .await
        .expect("list")
        .service_arns()
        .is_empty());
    let missing = ecs
        .update_service()
        .cluster("svc")
        .service("nope")
        .desired_count(1)
        .send()
        .await
        .expect_err("no such service");
    assert_eq!(
        aws_sdk_ecs::error::ProvideErrorMetadata::code(&missing),
        Some("ServiceNotFoundException")
    );
}

#[tokio::test]
async fn circuit_breaker_fails_a_deployment_and_rolls_back() {
    ensure_image();
    let emu = Emulator::start();
    let ecs = emu.ecs();
    cluster_with_instance(&ecs, "cb", "m5.large", "us-east-1a").await;
    ecs.register_task_definition()
        .family("app")
        .container_definitions(container("app", 16, &["sleep", "3600"]).build())
        .send()
        .await
        .expect("register");
    ecs.register_task_definition()
        .family("app")
        .container_definitions(
            aws_sdk_ecs::types::ContainerDefinition::builder()
                .name("app")
                .image("127.0.0.1:9/missing:1")
                .memory(16)
                .build(),
        )
        .send()
        .await
        .expect("register broken");
    ecs.create_service()
        .cluster("cb")
        .service_name("app")
        .task_definition("app:1")
        .desired_count(2)
        .deployment_configuration(
            DeploymentConfiguration::builder()
                .deployment_circuit_breaker(
                    DeploymentCircuitBreaker::builder()
                        .enable(true)
                        .rollback(true)
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .expect("CreateService");
    wait_for(&ecs, "cb", "app", "steady", |s| {
        s.running_count() == 2
            && s.deployments()
                .first()
                .and_then(|d| d.rollout_state())
                .map(|r| r.as_str())
                == Some("COMPLETED")
    })
    .await;
    ecs.update_service()
        .cluster("cb")
        .service("app")
        .task_definition("app:2")
        .send()
        .await
        .expect("bad rollout");
    let rolled_back = wait_for(&ecs, "cb", "app", "failed and rolled back", |s| {
        messages(s)
            .iter()
            .any(|m| m.contains("rolling back to deployment"))
            && s.deployments().iter().any(|d| {
                d.status() == Some("PRIMARY")
                    && d.task_definition().is_some_and(|t| t.ends_with("app:1"))
            })
    })
    .await;
    let events = messages(&rolled_back);
    assert!(
        events
            .iter()
            .any(|m| m.ends_with("deployment failed: tasks failed to start.")),
        "{events:?}"
    );
    // ECS keeps the failed deployment in deployments[] (ACTIVE, FAILED) while it rolls back.
    let failed = rolled_back
        .deployments()
        .iter()
        .find(|d| d.task_definition().is_some_and(|t| t.ends_with("app:2")))
        .unwrap_or_else(|| {
            panic!(
                "the failed deployment is shown during the rollback: {:#?}",
                rolled_back.deployments()
            )
        });
    assert_eq!(failed.status(), Some("ACTIVE"));
    assert_eq!(failed.rollout_state().map(|r| r.as_str()), Some("FAILED"));
    assert!(failed.failed_tasks() >= 3, "{failed:?}");
    assert_eq!(
        rolled_back.task_definition().map(|t| t.ends_with("app:1")),
        Some(true)
    );
}

#[tokio::test]
async fn daemon_service_runs_one_task_per_instance() {
    ensure_image();
    let emu = Emulator::start();
    let ecs = emu.ecs();
    cluster_with_instance(&ecs, "dm", "m5.large", "us-east-1a").await;
    ecs.register_task_definition()
        .family("agent")
        .container_definitions(container("agent", 16, &["sleep", "3600"]).build())
        .send()
        .await
        .expect("register");
    ecs.create_service()
        .cluster("dm")
        .service_name("agent")
        .task_definition("agent")
        .scheduling_strategy(SchedulingStrategy::Daemon)
        .send()
        .await
        .expect("CreateService");
    wait_for(&ecs, "dm", "agent", "one task", |s| s.running_count() == 1).await;
    let second = register_instance(&ecs, "dm", "m5.large", "us-east-1b").await;
    wait_for(&ecs, "dm", "agent", "two tasks", |s| s.running_count() == 2).await;
    let on_second = ecs
        .list_tasks()
        .cluster("dm")
        .container_instance(&second)
        .send()
        .await
        .expect("list");
    assert_eq!(on_second.task_arns().len(), 1);
}
