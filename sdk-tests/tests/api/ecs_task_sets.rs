//! ECS task sets through aws-sdk-ecs: an EXTERNAL service whose task sets the scheduler runs as
//! real containers, scaled, promoted and deleted as a blue/green deployment tool does, and
//! ECS's errors for what it refuses.

use crate::ecs_docker::{cluster_with_instance, container, docker_inspect, ensure_image};
use crate::status;
use aws_sdk_ecs::error::ProvideErrorMetadata;
use aws_sdk_ecs::types::{
    DeploymentController, DeploymentControllerType, Scale, ScaleUnit, TaskSet,
};
use aws_sdk_ecs::Client;
use sdk_tests::Emulator;
use std::time::{Duration, Instant};

fn scale(value: f64) -> Scale {
    Scale::builder()
        .value(value)
        .unit(ScaleUnit::Percent)
        .build()
}

async fn task_set(ecs: &Client, id: &str) -> Option<TaskSet> {
    ecs.describe_task_sets()
        .cluster("ts")
        .service("web")
        .task_sets(id)
        .send()
        .await
        .expect("DescribeTaskSets")
        .task_sets()
        .first()
        .cloned()
}

/// Polls DescribeTaskSets until `done` holds for the task set (60 s at most).
async fn wait_for(ecs: &Client, id: &str, what: &str, done: impl Fn(Option<&TaskSet>) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ts = task_set(ecs, id).await;
        if done(ts.as_ref()) {
            return;
        }
        assert!(Instant::now() < deadline, "task set never {what}: {ts:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The RUNNING tasks a task set started, with their Docker containers' ids.
async fn running_containers(ecs: &Client, started_by: &str) -> Vec<String> {
    let arns = ecs
        .list_tasks()
        .cluster("ts")
        .started_by(started_by)
        .desired_status(aws_sdk_ecs::types::DesiredStatus::Running)
        .send()
        .await
        .expect("ListTasks")
        .task_arns()
        .to_vec();
    if arns.is_empty() {
        return Vec::new();
    }
    let tasks = ecs
        .describe_tasks()
        .cluster("ts")
        .set_tasks(Some(arns))
        .send()
        .await
        .expect("DescribeTasks");
    tasks
        .tasks()
        .iter()
        .filter(|t| t.last_status() == Some("RUNNING"))
        .inspect(|t| assert_eq!(t.group(), Some("service:web")))
        .filter_map(|t| t.containers().first()?.runtime_id().map(str::to_string))
        .collect()
}

#[tokio::test]
async fn external_service_task_sets_run_real_containers() {
    ensure_image();
    let emu = Emulator::start();
    let ecs = emu.ecs();
    cluster_with_instance(&ecs, "ts", "m5.large", "us-east-1a").await;
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
        .cluster("ts")
        .service_name("web")
        .desired_count(2)
        .deployment_controller(
            DeploymentController::builder()
                .r#type(DeploymentControllerType::External)
                .build()
                .expect("controller"),
        )
        .send()
        .await
        .expect("CreateService without a task definition");
    let svc = created.service().expect("service");
    assert_eq!(
        svc.deployment_controller().map(|d| d.r#type().as_str()),
        Some("EXTERNAL")
    );
    assert!(svc.deployments().is_empty() && svc.task_sets().is_empty());

    // Blue at 100 %: two real containers.
    let blue = ecs
        .create_task_set()
        .cluster("ts")
        .service("web")
        .task_definition("web:1")
        .external_id("blue")
        .scale(scale(100.0))
        .send()
        .await
        .expect("CreateTaskSet")
        .task_set()
        .cloned()
        .expect("task set");
    let blue_id = blue.id().expect("id").to_string();
    assert_eq!(
        blue.task_set_arn(),
        Some(format!("arn:aws:ecs:us-east-1:000000000000:task-set/ts/web/{blue_id}").as_str())
    );
    assert_eq!(blue.computed_desired_count(), 2);
    wait_for(&ecs, &blue_id, "steady with 2 running", |ts| {
        ts.is_some_and(|ts| {
            ts.running_count() == 2
                && ts.stability_status().map(|s| s.as_str()) == Some("STEADY_STATE")
        })
    })
    .await;
    let containers = running_containers(&ecs, &blue_id).await;
    assert_eq!(containers.len(), 2);
    for id in &containers {
        assert_eq!(docker_inspect(id)["State"]["Running"], true, "{id}");
    }

    // Green at 50 %: ceil(2 × 0.5) = 1; promoted; blue scaled to 0, then deleted.
    let green = ecs
        .create_task_set()
        .cluster("ts")
        .service("web")
        .task_definition("web:2")
        .external_id("green")
        .scale(scale(50.0))
        .send()
        .await
        .expect("CreateTaskSet green")
        .task_set()
        .cloned()
        .expect("task set");
    let green_id = green.id().expect("id").to_string();
    assert_eq!(green.computed_desired_count(), 1);
    wait_for(&ecs, &green_id, "1 running", |ts| {
        ts.is_some_and(|ts| ts.running_count() == 1)
    })
    .await;
    let shown = ecs
        .describe_services()
        .cluster("ts")
        .services("web")
        .send()
        .await
        .expect("DescribeServices");
    assert_eq!(
        shown.services()[0].running_count(),
        3,
        "both task sets count"
    );
    let primary = ecs
        .update_service_primary_task_set()
        .cluster("ts")
        .service("web")
        .primary_task_set(green.task_set_arn().expect("arn"))
        .send()
        .await
        .expect("UpdateServicePrimaryTaskSet");
    assert_eq!(primary.task_set().and_then(|t| t.status()), Some("PRIMARY"));

    let refused = ecs
        .delete_task_set()
        .cluster("ts")
        .service("web")
        .task_set(&blue_id)
        .send()
        .await
        .expect_err("a task set scaled above 0");
    assert_eq!(refused.code(), Some("InvalidParameterException"));
    assert_eq!(status(&refused), Some(400));
    assert_eq!(
        refused.message(),
        Some("The task set cannot be deleted while it is scaled above 0.")
    );
    ecs.update_task_set()
        .cluster("ts")
        .service("web")
        .task_set(&blue_id)
        .scale(scale(0.0))
        .send()
        .await
        .expect("UpdateTaskSet");
    wait_for(&ecs, &blue_id, "scaled to 0", |ts| {
        ts.is_some_and(|ts| ts.running_count() == 0 && ts.computed_desired_count() == 0)
    })
    .await;
    for id in &containers {
        let deadline = Instant::now() + Duration::from_secs(30);
        while docker_inspect(id)["State"]["Running"] == true {
            assert!(Instant::now() < deadline, "container {id} still runs");
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    let deleted = ecs
        .delete_task_set()
        .cluster("ts")
        .service("web")
        .task_set(&blue_id)
        .send()
        .await
        .expect("DeleteTaskSet");
    assert_eq!(
        deleted.task_set().and_then(|t| t.status()),
        Some("DRAINING")
    );
    wait_for(&ecs, &blue_id, "gone", |ts| ts.is_none()).await;
    let missing = ecs
        .update_task_set()
        .cluster("ts")
        .service("web")
        .task_set(&blue_id)
        .scale(scale(10.0))
        .send()
        .await
        .expect_err("deleted");
    assert_eq!(missing.code(), Some("TaskSetNotFoundException"));
    assert_eq!(status(&missing), Some(400));
    assert_eq!(
        missing.message(),
        Some("The specified task set does not exist.")
    );

    // A rolling-update service has no task sets.
    ecs.create_service()
        .cluster("ts")
        .service_name("rolling")
        .task_definition("web:1")
        .desired_count(0)
        .send()
        .await
        .expect("CreateService");
    let err = ecs
        .create_task_set()
        .cluster("ts")
        .service("rolling")
        .task_definition("web:1")
        .send()
        .await
        .expect_err("ECS deployment controller");
    assert_eq!(err.code(), Some("InvalidParameterException"));
    assert_eq!(status(&err), Some(400));
    assert_eq!(
        err.message(),
        Some("Amazon ECS only supports task set management on services configured to use external deployment controllers.")
    );
}
