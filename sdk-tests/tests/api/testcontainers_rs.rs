//! testcontainers (issue 13 item 6): the emulator's image, built here from the binary under test
//! (fixtures/build-emulator-image.sh, FROM scratch), started through testcontainers-rs with
//! `testcontainers_ecs_emulator::EcsEmulator` as docs/testcontainers.md shows, driven with
//! aws-sdk-ecs on the mapped port (a cluster, a busybox task run on the host's Docker through the
//! mounted socket), then reset and removed, leaving no container, network or volume behind.
//! `EcsEmulator::host_network` is checked to serve a task its metadata at 169.254.170.2, and
//! the Python example of the same doc (testcontainers from PyPI) runs here too.

use aws_sdk_ecs::types::{ContainerDefinition, NetworkMode};
use sdk_tests::{EmulatorImage, OwnerCleanup};
use std::process::Command;
use std::time::{Duration, Instant};
use testcontainers_ecs_emulator::testcontainers::runners::AsyncRunner;
use testcontainers_ecs_emulator::testcontainers::ImageExt;
use testcontainers_ecs_emulator::{EcsEmulator, EcsEmulatorContainer};

fn ecs_client(endpoint: &str) -> aws_sdk_ecs::Client {
    let conf = aws_sdk_ecs::Config::builder()
        .http_client(sdk_tests::aws_smithy_http_client::Builder::new().build_http())
        .behavior_version(aws_sdk_ecs::config::BehaviorVersion::latest())
        .region(aws_sdk_ecs::config::Region::new(sdk_tests::REGION))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_ecs::config::Credentials::new(
            sdk_tests::ACCESS_KEY,
            sdk_tests::SECRET_KEY,
            None,
            None,
            "test",
        ))
        .build();
    aws_sdk_ecs::Client::from_conf(conf)
}

fn container_exists(id: &str) -> bool {
    Command::new("docker")
        .args(["container", "inspect", id])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

fn owned(kind: &[&str], owner: &str) -> Vec<String> {
    let mut args: Vec<&str> = kind.to_vec();
    let filter = format!("label=ecs-emulator.owner={owner}");
    args.extend(["--filter", filter.as_str()]);
    let out = Command::new("docker").args(&args).output().expect("docker");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// A busybox task on `cluster`; returns its ARN and its container's Docker id once RUNNING.
async fn run_busybox_task(
    ecs: &aws_sdk_ecs::Client,
    cluster: &str,
    marker: &str,
) -> (String, String) {
    ecs.register_container_instance()
        .cluster(cluster)
        .instance_identity_document(
            r#"{"instanceType":"t3.medium","availabilityZone":"us-east-1a"}"#,
        )
        .send()
        .await
        .expect("register container instance");
    ecs.register_task_definition()
        .family("testcontainers-busybox")
        .network_mode(NetworkMode::Bridge)
        .container_definitions(
            ContainerDefinition::builder()
                .name("main")
                .image("ecs-emulator-test/busybox:latest")
                .memory(64)
                .essential(true)
                .command("sh")
                .command("-c")
                .command(format!("echo {marker}; sleep 300"))
                .build(),
        )
        .send()
        .await
        .expect("register task definition");
    let run = ecs
        .run_task()
        .cluster(cluster)
        .task_definition("testcontainers-busybox")
        .send()
        .await
        .expect("run task");
    assert!(run.failures().is_empty(), "{run:?}");
    let arn = run.tasks()[0].task_arn().expect("task arn").to_string();
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let d = ecs
            .describe_tasks()
            .cluster(cluster)
            .tasks(&arn)
            .send()
            .await
            .expect("describe tasks");
        let t = &d.tasks()[0];
        let id = t.containers().first().and_then(|c| c.runtime_id());
        if let (Some("RUNNING"), Some(id)) = (t.last_status(), id) {
            return (arn, id.to_string());
        }
        assert!(
            t.last_status() != Some("STOPPED") && Instant::now() < deadline,
            "the task did not reach RUNNING: {t:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn testcontainers_runs_the_emulator_image_and_its_tasks() {
    let image = EmulatorImage::build("testcontainers");
    // Declared before the container, so dropped after it: task containers go even on a panic.
    let mut cleanup = OwnerCleanup(None);
    let emulator = EcsEmulator::default()
        .with_image(&image.name, &image.tag)
        .on_loopback()
        .with_startup_timeout(Duration::from_secs(60))
        .start()
        .await
        .expect("the emulator container starts and prints its ready line");
    let logs = || sdk_tests::docker_logs(emulator.id());
    let endpoint = emulator.endpoint().await.expect("the endpoint");
    let port: u16 = endpoint
        .strip_prefix("http://127.0.0.1:")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("a loopback endpoint: {endpoint}"));
    // Published on loopback only, never on the host's other interfaces.
    let out = Command::new("docker")
        .args(["port", emulator.id(), "4566/tcp"])
        .output()
        .expect("docker port");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("127.0.0.1:{port}")
    );
    assert!(
        logs().contains("ecs-emulator ready on http://0.0.0.0:4566"),
        "{}",
        logs()
    );
    let state = sdk_tests::http(port, "GET", "/_emulator/state", &[], b"").json();
    let owner = state["owner"].as_str().expect("an owner id").to_string();
    cleanup.0 = Some(owner.clone());
    assert_eq!(state["dataDir"], "/var/lib/ecs-emulator", "{state}");
    assert_eq!(state["runtime"], "docker", "{state}");

    let ecs = ecs_client(&endpoint);
    let created = ecs
        .create_cluster()
        .cluster_name("testcontainers")
        .send()
        .await
        .expect("create cluster");
    let arn = "arn:aws:ecs:us-east-1:000000000000:cluster/testcontainers";
    assert_eq!(created.cluster().and_then(|c| c.cluster_arn()), Some(arn));
    let listed = ecs.list_clusters().send().await.expect("list clusters");
    assert_eq!(listed.cluster_arns(), [arn.to_string()]);

    // A task: its container runs on the host's Docker, created through the mounted socket.
    let marker = format!("hello-from-testcontainers-{}", std::process::id());
    let (task_arn, runtime_id) = run_busybox_task(&ecs, "testcontainers", &marker).await;
    let out = Command::new("docker")
        .args([
            "inspect",
            "--format",
            "{{index .Config.Labels \"ecs-emulator.owner\"}} {{index .Config.Labels \"com.amazonaws.ecs.task-arn\"}}",
            &runtime_id,
        ])
        .output()
        .expect("docker inspect");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("{owner} {task_arn}")
    );
    sdk_tests::eventually(30, "the task's output", || async {
        sdk_tests::docker_logs(&runtime_id)
            .contains(&marker)
            .then_some(())
    })
    .await;

    // reset() removes the task containers; rm() (or the drop) the emulator's own.
    emulator.reset().await.expect("reset");
    assert!(
        !container_exists(&runtime_id),
        "the task container is still there"
    );
    let id = emulator.id().to_string();
    emulator.rm().await.expect("remove the emulator container");
    assert!(
        !container_exists(&id),
        "the emulator container is still there"
    );
    for kind in [
        &["ps", "-aq"][..],
        &["network", "ls", "-q"][..],
        &["volume", "ls", "-q"][..],
    ] {
        let left = owned(kind, &owner);
        assert!(left.is_empty(), "left behind ({kind:?}): {left:?}");
    }
}

/// The ```python block of docs/testcontainers.md, as it stands.
fn doc_python_example() -> String {
    let doc = std::fs::read_to_string(sdk_tests::workspace_dir().join("docs/testcontainers.md"))
        .expect("docs/testcontainers.md");
    let start = doc.find("```python\n").expect("a python block") + "```python\n".len();
    let len = doc[start..].find("\n```").expect("the block's end");
    doc[start..start + len].to_string()
}

/// The Python example of docs/testcontainers.md (testcontainers from PyPI, boto3) against the
/// image built from the binary under test: it creates and lists a cluster, runs a busybox
/// task, resets; after it, neither the emulator's container nor anything it started is left.
#[test]
fn python_testcontainers_example_runs() {
    let image = EmulatorImage::build("testcontainers-py");
    let mut cleanup = OwnerCleanup(None);
    let out = Command::new("timeout")
        .args(["180s", "python3", "-c", &doc_python_example()])
        .env("ECS_EMULATOR_IMAGE", image.reference())
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ENDPOINT_URL")
        .output()
        .expect("python3 (run .ci/run to install it, boto3 and testcontainers)");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = |prefix: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(prefix))
            .map(str::to_string)
    };
    cleanup.0 = line("owner: ");
    assert!(
        out.status.success(),
        "the example failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    for expected in [
        "['arn:aws:ecs:us-east-1:000000000000:cluster/demo']",
        "task RUNNING in container ",
        "{'containersRemoved': 1, 'reset': True}",
    ] {
        assert!(stdout.contains(expected), "{expected:?} in:\n{stdout}");
    }
    let owner = cleanup.0.clone().expect("the owner line");
    let emulator = line("emulator container: ").expect("the container line");
    assert!(
        !container_exists(&emulator),
        "the emulator container is still there"
    );
    for kind in [
        &["ps", "-aq"][..],
        &["network", "ls", "-q"][..],
        &["volume", "ls", "-q"][..],
    ] {
        let left = owned(kind, &owner);
        assert!(left.is_empty(), "left behind ({kind:?}): {left:?}");
    }
}

/// `EcsEmulator::host_network(port)` runs the image as compose.yaml does: it listens on the
/// host's 127.0.0.1:`port`, and a task it starts reads its own metadata at 169.254.170.2 (served
/// by this emulator or forwarded to it by another on the machine through the peers directory).
#[tokio::test(flavor = "multi_thread")]
async fn testcontainers_host_network_serves_the_task_metadata_endpoint() {
    let image = EmulatorImage::build("testcontainers-host");
    let mut cleanup = OwnerCleanup(None);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let emulator = EcsEmulator::default()
        .with_image(&image.name, &image.tag)
        .host_network(port)
        .with_startup_timeout(Duration::from_secs(60))
        .start()
        .await
        .expect("the emulator container starts on the host's network");
    let endpoint = emulator.endpoint().await.expect("the endpoint");
    assert_eq!(endpoint, format!("http://127.0.0.1:{port}"));
    let state = sdk_tests::http(port, "GET", "/_emulator/state", &[], b"").json();
    cleanup.0 = state["owner"].as_str().map(str::to_string);
    let ecs = ecs_client(&endpoint);
    ecs.create_cluster()
        .cluster_name("host")
        .send()
        .await
        .expect("create cluster");
    let arn = sdk_tests::run_metadata_probe(&ecs, "host", "host-probe", 300).await;
    let runtime_id = sdk_tests::eventually(90, "the task's container", || async {
        let d = ecs
            .describe_tasks()
            .cluster("host")
            .tasks(&arn)
            .send()
            .await
            .expect("describe tasks");
        let t = &d.tasks()[0];
        assert_ne!(t.last_status(), Some("STOPPED"), "{t:?}");
        t.containers()
            .first()
            .and_then(|c| c.runtime_id())
            .map(str::to_string)
    })
    .await;
    let doc = sdk_tests::eventually(30, "the task's metadata", || async {
        sdk_tests::docker_logs(&runtime_id)
            .lines()
            .find_map(|l| serde_json::from_str::<serde_json::Value>(l.trim()).ok())
    })
    .await;
    assert_eq!(doc["TaskARN"], arn.as_str(), "{doc}");
    assert_eq!(doc["Family"], "host-probe", "{doc}");

    emulator.reset().await.expect("reset");
    assert!(
        !container_exists(&runtime_id),
        "the task container is still there"
    );
    let id = emulator.id().to_string();
    emulator.rm().await.expect("remove the emulator container");
    assert!(
        !container_exists(&id),
        "the emulator container is still there"
    );
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "something still listens on {port}"
    );
}
