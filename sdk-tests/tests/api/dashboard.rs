//! The dashboard in headless Chromium (sdk-tests/python/dashboard.py, selenium with Debian's
//! chromium and chromium-driver): pages render, and a task started through the API appears on the
//! open page without a reload. Screenshots go to target/ui-artifacts on failure. When the tooling
//! is missing this test fails (`.ci/run` installs it); it never skips.

use crate::ecs_docker::{cluster_with_instance, container, ensure_image};
use sdk_tests::{crate_dir, workspace_dir, Emulator};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

#[tokio::test(flavor = "multi_thread")]
async fn a_task_started_through_the_api_appears_on_the_open_dashboard() {
    ensure_image();
    let emu = Emulator::start();
    let ecs = emu.ecs();
    cluster_with_instance(&ecs, "dash", "m5.large", "us-east-1a").await;
    ecs.register_task_definition()
        .family("dash")
        .container_definitions(container("main", 32, &["sleep", "600"]).build())
        .send()
        .await
        .expect("RegisterTaskDefinition");

    let artifacts = workspace_dir().join("target").join("ui-artifacts");
    let mut browser = Command::new("python3")
        .arg(crate_dir().join("python").join("dashboard.py"))
        .arg(emu.endpoint())
        .arg("dash")
        .arg(&artifacts)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 is required: run .ci/run to install the tooling");
    let stdout = browser.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in lines.by_ref().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let ready = rx
        .recv_timeout(std::time::Duration::from_secs(120))
        .unwrap_or_default();
    if ready != "READY" {
        let out = browser.wait_with_output().expect("wait");
        if out.status.code() == Some(3) {
            panic!(
                "chromium, chromium-driver or selenium is missing: run .ci/run\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        panic!(
            "the dashboard did not load ({ready:?}):\n{}\nemulator log:\n{}",
            String::from_utf8_lossy(&out.stderr),
            emu.log()
        );
    }

    let run = ecs
        .run_task()
        .cluster("dash")
        .task_definition("dash")
        .send()
        .await
        .expect("RunTask");
    let task_arn = run.tasks()[0].task_arn().unwrap_or_default().to_string();
    let task_id = task_arn.rsplit('/').next().unwrap_or_default().to_string();

    let out = browser.wait_with_output().expect("wait for the browser");
    let seen: Vec<String> = rx.try_iter().collect();
    assert!(
        out.status.success() && seen.iter().any(|l| l == "DASHBOARD OK"),
        "dashboard.py failed ({}): {seen:?}\n{}\nemulator log:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        emu.log()
    );
    assert!(
        seen.contains(&format!("TASK {task_id}")),
        "the task that appeared is the one started ({task_id}): {seen:?}"
    );
}
