//! The control API under /_emulator.

use sdk_tests::Emulator;

#[test]
fn health_answers_running() {
    let emu = Emulator::start();
    let r = emu.raw("GET", "/_emulator/health", &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["status"], "running", "{v}");
    assert_eq!(v["durable"], true, "{v}");
    assert!(v["version"].is_string(), "{v}");

    let emu = Emulator::start_with(&["--ephemeral"]);
    let v = emu.raw("GET", "/_emulator/health", &[], b"").json();
    assert_eq!(v["durable"], false, "{v}");
}

#[tokio::test]
async fn state_summarises_and_reset_empties() {
    let emu = Emulator::start();
    let ecs = emu.ecs();
    ecs.create_cluster()
        .cluster_name("to-reset")
        .send()
        .await
        .expect("CreateCluster");

    let r = emu.raw("GET", "/_emulator/state", &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    let state = r.json();
    assert_eq!(state["durable"], true, "{state}");
    assert_eq!(state["accountId"], sdk_tests::ACCOUNT, "{state}");
    assert_eq!(state["region"], "us-east-1", "{state}");
    assert_eq!(
        state["dataDir"].as_str().map(std::path::PathBuf::from),
        Some(emu.data_dir().to_path_buf()),
        "{state}"
    );
    let rows: u64 = state["tables"]
        .as_object()
        .expect("tables")
        .values()
        .filter_map(|v| v.as_u64())
        .sum();
    assert!(rows >= 1, "the cluster is a row somewhere: {state}");

    let r = emu.raw("POST", "/_emulator/reset", &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["reset"], true);

    let listed = ecs.list_clusters().send().await.expect("ListClusters");
    assert!(listed.cluster_arns().is_empty(), "{listed:?}");
    let described = ecs
        .describe_clusters()
        .clusters("to-reset")
        .send()
        .await
        .expect("DescribeClusters");
    assert!(described.clusters().is_empty(), "{described:?}");
    assert_eq!(described.failures().len(), 1);
    assert_eq!(described.failures()[0].reason(), Some("MISSING"));

    // The reset is durable too: a restart does not bring the cluster back.
    let mut emu = emu;
    emu.restart();
    let listed = emu
        .ecs()
        .list_clusters()
        .send()
        .await
        .expect("ListClusters");
    assert!(listed.cluster_arns().is_empty(), "{listed:?}");
}

fn owned(kind: &str, owner: &str) -> Vec<String> {
    let filter = format!("label=ecs-emulator.owner={owner}");
    let args: Vec<&str> = match kind {
        "container" => vec!["ps", "-aq", "--filter", &filter],
        "volume" => vec!["volume", "ls", "-q", "--filter", &filter],
        _ => vec!["network", "ls", "-q", "--filter", &filter],
    };
    let out = std::process::Command::new("docker")
        .args(&args)
        .output()
        .expect("docker");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            } else {
                out.push(e.path());
            }
        }
    }
    out
}

/// A reset while a service's tasks are starting leaves nothing behind: the starts under way
/// finish inside the reset fence, then every container, volume and network of the emulator goes,
/// and nothing is started again from the dropped state. Blobs and upload files go too.
#[tokio::test(flavor = "multi_thread")]
async fn reset_during_starts_leaves_nothing_behind() {
    use aws_sdk_ecs::types::{ContainerDefinition, DockerVolumeConfiguration, Scope, Volume};
    use std::time::{Duration, Instant};
    crate::ecs_docker::ensure_image();
    let emu = Emulator::start();
    let owner = emu.raw("GET", "/_emulator/state", &[], b"").json()["owner"]
        .as_str()
        .expect("owner")
        .to_string();
    let ecs = emu.ecs();
    let shared = format!("reset-shared-{}", std::process::id());
    for round in 0..3 {
        crate::ecs_docker::cluster_with_instance(&ecs, "rs", "m5.4xlarge", "us-east-1a").await;
        ecs.register_task_definition()
            .family("rs")
            .volumes(
                Volume::builder()
                    .name("scratch")
                    .docker_volume_configuration(
                        DockerVolumeConfiguration::builder()
                            .scope(Scope::Task)
                            .build(),
                    )
                    .build(),
            )
            .volumes(
                Volume::builder()
                    .name(&shared)
                    .docker_volume_configuration(
                        DockerVolumeConfiguration::builder()
                            .scope(Scope::Shared)
                            .autoprovision(true)
                            .build(),
                    )
                    .build(),
            )
            .container_definitions(
                ContainerDefinition::builder()
                    .name("sleeper")
                    .image("ecs-emulator-test/busybox:latest")
                    .memory(8)
                    .command("sleep")
                    .command("3600")
                    .build(),
            )
            .send()
            .await
            .expect("register task definition");
        ecs.create_service()
            .cluster("rs")
            .service_name("rs")
            .task_definition("rs")
            .desired_count(8)
            .send()
            .await
            .expect("create service");
        // Starts are under way once the first container exists.
        let deadline = Instant::now() + Duration::from_secs(60);
        while owned("container", &owner).is_empty() {
            assert!(
                Instant::now() < deadline,
                "no container started; log:\n{}",
                emu.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let r = emu.raw("POST", "/_emulator/reset", &[], b"");
        assert_eq!(r.status, 200, "{}", r.text());
        // Nothing is left, and nothing comes back (watched for 3 s).
        let until = Instant::now() + Duration::from_secs(3);
        while Instant::now() < until {
            for kind in ["container", "volume", "network"] {
                let left = owned(kind, &owner);
                assert!(
                    left.is_empty(),
                    "round {round}: {kind}s left after reset: {left:?}"
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    // A stored blob and an upload under way are gone after a reset.
    let ecr = emu.ecr();
    ecr.create_repository()
        .repository_name("reset-blobs")
        .send()
        .await
        .expect("create repository");
    let token = ecr
        .get_authorization_token()
        .send()
        .await
        .expect("token")
        .authorization_data()[0]
        .authorization_token()
        .expect("token")
        .to_string();
    let basic = format!("Basic {token}");
    let auth = ("Authorization", basic.as_str());
    let blob = b"a blob nobody references after a reset";
    let digest = format!("sha256:{}", sdk_tests::sha256_hex(blob));
    let r = emu.raw(
        "POST",
        &format!("/v2/reset-blobs/blobs/uploads/?digest={digest}"),
        &[auth, ("Content-Type", "application/octet-stream")],
        blob,
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let r = emu.raw("POST", "/v2/reset-blobs/blobs/uploads/", &[auth], b"");
    assert_eq!(r.status, 202, "{}", r.text());
    let location = r.header("location").expect("location").to_string();
    let r = emu.raw(
        "PATCH",
        &location,
        &[auth, ("Content-Type", "application/octet-stream")],
        b"half of a layer",
    );
    assert_eq!(r.status, 202, "{}", r.text());
    let blobs = emu.data_dir().join("blobs");
    assert!(files_under(&blobs).len() >= 2, "{:?}", files_under(&blobs));
    let r = emu.raw("POST", "/_emulator/reset", &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(files_under(&blobs), Vec::<std::path::PathBuf>::new());
}
