//! `--runtime simulated`: tasks go through ECS's states with no container at all; DescribeTasks
//! and the log say so, and commands that end become timers.

use crate::ecs_docker::{cluster_with_instance, container, describe, wait_status};
use sdk_tests::Emulator;
use std::process::Command;

#[tokio::test]
async fn simulated_tasks_run_as_timers_and_say_so() {
    let emu = Emulator::start_with(&["--runtime", "simulated"]);
    let ecs = emu.ecs();
    cluster_with_instance(&ecs, "sim", "m5.large", "us-east-1a").await;
    ecs.register_task_definition()
        .family("forever")
        .container_definitions(container("app", 16, &["sleep", "3600"]).build())
        .send()
        .await
        .expect("register");
    ecs.register_task_definition()
        .family("timer")
        .container_definitions(container("job", 16, &["sh", "-c", "sleep 1; exit 3"]).build())
        .send()
        .await
        .expect("register");
    let run = |family: &'static str| {
        let ecs = ecs.clone();
        async move {
            let out = ecs
                .run_task()
                .cluster("sim")
                .task_definition(family)
                .send()
                .await
                .expect("RunTask");
            out.tasks()[0].task_arn().expect("arn").to_string()
        }
    };
    let forever = run("forever").await;
    let timer = run("timer").await;
    let t = wait_status(&ecs, "sim", &forever, "RUNNING").await;
    assert!(
        t.attributes()
            .iter()
            .any(|a| a.name() == "ecs-emulator.runtime" && a.value() == Some("simulated")),
        "DescribeTasks marks a simulated task: {:?}",
        t.attributes()
    );
    assert!(t.containers()[0].runtime_id().is_some());
    // The timer's container exits by itself after a second, with its exit code.
    let stopped = wait_status(&ecs, "sim", &timer, "STOPPED").await;
    assert_eq!(stopped.containers()[0].exit_code(), Some(3));
    assert_eq!(
        stopped.stop_code().map(|c| c.as_str()),
        Some("EssentialContainerExited")
    );
    assert_eq!(
        describe(&ecs, "sim", &forever).await.last_status(),
        Some("RUNNING")
    );
    // Nothing is real: no Docker container carries the task's ARN, and the log says so.
    if let Ok(out) = Command::new("docker")
        .args([
            "ps",
            "-aq",
            "--filter",
            &format!("label=com.amazonaws.ecs.task-arn={forever}"),
        ])
        .output()
    {
        assert!(String::from_utf8_lossy(&out.stdout).trim().is_empty());
    }
    assert!(emu.log().contains("NOTHING RUNS"), "{}", emu.log());
}
