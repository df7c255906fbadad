//! ECS on real Docker through aws-sdk-ecs: tasks are containers, checked through the API and
//! through Docker's own view (`docker inspect`).

use aws_sdk_ecs::types::{
    Compatibility, ContainerCondition, ContainerDefinition, ContainerDependency, DesiredStatus,
    HealthCheck, KeyValuePair, LogConfiguration, LogDriver, NetworkMode, PlacementConstraint,
    PlacementConstraintType, PortMapping, Secret, Task,
};
use aws_sdk_ecs::Client;
use sdk_tests::Emulator;
use serde_json::Value;
use std::process::Command;
use std::time::{Duration, Instant};

const IMAGE: &str = "ecs-emulator-test/busybox:latest";

/// Builds the FROM-scratch busybox test image once per test binary.
pub fn ensure_image() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let script = sdk_tests::workspace_dir().join("fixtures/build-images.sh");
        let out = Command::new("bash")
            .arg(script)
            .output()
            .expect("run fixtures/build-images.sh");
        assert!(
            out.status.success(),
            "building the test image failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    });
}

/// `docker login` to the emulator's registry with GetAuthorizationToken's password; returns
/// the registry host.
pub async fn docker_login(emu: &Emulator) -> String {
    let token = emu
        .ecr()
        .get_authorization_token()
        .send()
        .await
        .expect("token");
    let data = &token.authorization_data()[0];
    let host = data
        .proxy_endpoint()
        .expect("proxy endpoint")
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .to_string();
    use base64::Engine;
    let decoded = String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(data.authorization_token().expect("token"))
            .expect("b64"),
    )
    .expect("utf8");
    let password = decoded.strip_prefix("AWS:").expect("AWS:");
    let mut login = Command::new("docker")
        .args(["login", "--username", "AWS", "--password-stdin", &host])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("docker login");
    use std::io::Write;
    login
        .stdin
        .take()
        .expect("stdin")
        .write_all(password.as_bytes())
        .expect("password");
    assert!(login.wait().expect("login").success());
    host
}

pub fn docker_inspect(id: &str) -> Value {
    let out = Command::new("docker")
        .args(["inspect", id])
        .output()
        .expect("docker inspect");
    assert!(
        out.status.success(),
        "docker inspect {id}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("inspect JSON");
    v[0].clone()
}

pub fn docker(args: &[&str]) -> String {
    let out = Command::new("docker").args(args).output().expect("docker");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn container(
    name: &str,
    memory: i32,
    command: &[&str],
) -> aws_sdk_ecs::types::builders::ContainerDefinitionBuilder {
    ContainerDefinition::builder()
        .name(name)
        .image(IMAGE)
        .memory(memory)
        .set_command(Some(command.iter().map(|s| s.to_string()).collect()))
        // Shells and sleep as PID 1 ignore SIGTERM: keep the SIGKILL that follows it short.
        .stop_timeout(2)
}

/// A cluster with one registered container instance of this type; returns the instance ARN.
pub async fn cluster_with_instance(
    ecs: &Client,
    cluster: &str,
    instance_type: &str,
    az: &str,
) -> String {
    ecs.create_cluster()
        .cluster_name(cluster)
        .send()
        .await
        .expect("CreateCluster");
    register_instance(ecs, cluster, instance_type, az).await
}

pub async fn register_instance(
    ecs: &Client,
    cluster: &str,
    instance_type: &str,
    az: &str,
) -> String {
    let doc = format!(r#"{{"instanceType":"{instance_type}","availabilityZone":"{az}"}}"#);
    let out = ecs
        .register_container_instance()
        .cluster(cluster)
        .instance_identity_document(doc)
        .send()
        .await
        .expect("RegisterContainerInstance");
    out.container_instance()
        .and_then(|c| c.container_instance_arn())
        .expect("instance ARN")
        .to_string()
}

pub async fn describe(ecs: &Client, cluster: &str, task: &str) -> Task {
    let out = ecs
        .describe_tasks()
        .cluster(cluster)
        .tasks(task)
        .send()
        .await
        .expect("DescribeTasks");
    out.tasks().first().cloned().expect("the task")
}

/// Polls DescribeTasks until lastStatus is `status` (30 s at most).
pub async fn wait_status(ecs: &Client, cluster: &str, task: &str, status: &str) -> Task {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let t = describe(ecs, cluster, task).await;
        if t.last_status() == Some(status) {
            return t;
        }
        assert!(
            Instant::now() < deadline,
            "task never reached {status}: {t:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub async fn run_one(ecs: &Client, cluster: &str, family: &str) -> String {
    let out = ecs
        .run_task()
        .cluster(cluster)
        .task_definition(family)
        .send()
        .await
        .expect("RunTask");
    assert!(out.failures().is_empty(), "{:?}", out.failures());
    out.tasks()[0].task_arn().expect("task ARN").to_string()
}

fn env_of(inspect: &Value) -> Vec<String> {
    inspect["Config"]["Env"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect()
}

#[tokio::test]
async fn task_runs_as_a_container_with_ecs_limits_labels_and_ports() {
    ensure_image();
    let emu = Emulator::start();
    let ecs = emu.ecs();
    let instance = cluster_with_instance(&ecs, "web", "m5.large", "us-east-1b").await;
    ecs.register_task_definition()
        .family("web")
        .container_definitions(
            container(
                "web",
                64,
                &[
                    "sh",
                    "-c",
                    "echo hello > /index.html && exec httpd -f -p 8080 -h /",
                ],
            )
            .cpu(256)
            .memory_reservation(32)
            .stop_timeout(2)
            .environment(KeyValuePair::builder().name("GREETING").value("hi").build())
            .docker_labels("team", "payments")
            .port_mappings(PortMapping::builder().container_port(8080).build())
            .build(),
        )
        .send()
        .await
        .expect("RegisterTaskDefinition");
    let arn = run_one(&ecs, "web", "web").await;
    let task = wait_status(&ecs, "web", &arn, "RUNNING").await;
    assert_eq!(task.container_instance_arn(), Some(instance.as_str()));
    assert_eq!(task.availability_zone(), Some("us-east-1b"));
    let c = &task.containers()[0];
    let id = c.runtime_id().expect("runtimeId");
    let binding = &c.network_bindings()[0];
    let (bind_ip, host_port) = (
        binding.bind_ip().expect("bindIP"),
        binding.host_port().expect("hostPort"),
    );
    assert!(
        bind_ip.starts_with("127.") && bind_ip != "127.0.0.1",
        "the instance's own loopback address: {bind_ip}"
    );
    assert!(host_port >= 32768, "a dynamic host port: {host_port}");

    // Docker's view.
    let inspect = docker_inspect(id);
    let hc = &inspect["HostConfig"];
    assert_eq!(hc["CpuShares"], 256);
    assert_eq!(hc["Memory"], 64 * 1024 * 1024);
    assert_eq!(hc["MemoryReservation"], 32 * 1024 * 1024);
    let labels = &inspect["Config"]["Labels"];
    assert_eq!(labels["com.amazonaws.ecs.task-arn"], arn.as_str());
    assert_eq!(labels["com.amazonaws.ecs.cluster"], "web");
    assert_eq!(labels["com.amazonaws.ecs.task-definition-family"], "web");
    assert_eq!(labels["com.amazonaws.ecs.task-definition-version"], "1");
    assert_eq!(labels["com.amazonaws.ecs.container-name"], "web");
    assert_eq!(labels["team"], "payments");
    assert!(
        inspect["Name"]
            .as_str()
            .is_some_and(|n| n.starts_with("/ecs-web-1-web-")),
        "{}",
        inspect["Name"]
    );
    let env = env_of(&inspect);
    for e in [
        "GREETING=hi",
        "AWS_REGION=us-east-1",
        "AWS_DEFAULT_REGION=us-east-1",
        "AWS_EXECUTION_ENV=AWS_ECS_EC2",
    ] {
        assert!(env.iter().any(|x| x == e), "{e} in {env:?}");
    }
    let ports = &inspect["NetworkSettings"]["Ports"]["8080/tcp"][0];
    assert_eq!(ports["HostIp"], bind_ip);
    assert_eq!(ports["HostPort"], host_port.to_string());

    // The container really serves on the published address.
    let body = sdk_tests::http_to(bind_ip, host_port as u16, "GET", "/index.html");
    assert_eq!(body.trim(), "hello");

    // Accounting: the instance's remaining resources shrink by the task's reservation.
    let ci = ecs
        .describe_container_instances()
        .cluster("web")
        .container_instances(&instance)
        .send()
        .await
        .expect("describe");
    let ci = &ci.container_instances()[0];
    let remaining = |name: &str| {
        ci.remaining_resources()
            .iter()
            .find(|r| r.name() == Some(name))
            .map(|r| r.integer_value())
            .unwrap_or_default()
    };
    let registered = |name: &str| {
        ci.registered_resources()
            .iter()
            .find(|r| r.name() == Some(name))
            .map(|r| r.integer_value())
            .unwrap_or_default()
    };
    assert_eq!(registered("CPU"), 2048);
    assert_eq!(remaining("CPU"), 2048 - 256);
    assert_eq!(remaining("MEMORY"), registered("MEMORY") - 32);
    assert_eq!(ci.running_tasks_count(), 1);
    let cluster = ecs
        .describe_clusters()
        .clusters("web")
        .send()
        .await
        .expect("clusters");
    assert_eq!(cluster.clusters()[0].running_tasks_count(), 1);
    assert_eq!(
        cluster.clusters()[0].registered_container_instances_count(),
        1
    );

    // StopTask: SIGTERM, then SIGKILL after stopTimeout (httpd as PID 1 ignores SIGTERM).
    ecs.stop_task()
        .cluster("web")
        .task(&arn)
        .reason("done here")
        .send()
        .await
        .expect("StopTask");
    let stopped = wait_status(&ecs, "web", &arn, "STOPPED").await;
    assert_eq!(stopped.desired_status(), Some("STOPPED"));
    assert_eq!(
        stopped.stop_code().map(|c| c.as_str()),
        Some("UserInitiated")
    );
    assert_eq!(stopped.stopped_reason(), Some("done here"));
    assert_eq!(stopped.containers()[0].exit_code(), Some(137));
    assert!(stopped.stopped_at().is_some());
    // The stopped container stays in Docker for `docker logs`, as the ECS agent keeps it.
    let after = docker_inspect(id);
    assert_eq!(after["State"]["Status"], "exited");
    let listed = ecs
        .list_tasks()
        .cluster("web")
        .desired_status(DesiredStatus::Stopped)
        .send()
        .await
        .expect("ListTasks");
    assert_eq!(listed.task_arns(), std::slice::from_ref(&arn));
    let ci = ecs
        .describe_container_instances()
        .cluster("web")
        .container_instances(&instance)
        .send()
        .await
        .expect("describe");
    let cpu_left = ci.container_instances()[0]
        .remaining_resources()
        .iter()
        .find(|r| r.name() == Some("CPU"))
        .map(|r| r.integer_value());
    assert_eq!(cpu_left, Some(2048));
}

#[tokio::test]
async fn placement_reports_failures_and_honours_constraints() {
    ensure_image();
    let emu = Emulator::start();
    let ecs = emu.ecs();
    let a = cluster_with_instance(&ecs, "p", "t3.small", "us-east-1a").await;
    let b = register_instance(&ecs, "p", "t3.small", "us-east-1b").await;
    ecs.register_task_definition()
        .family("big")
        .container_definitions(container("app", 1200, &["sleep", "3600"]).build())
        .send()
        .await
        .expect("register");
    // distinctInstance: two tasks land on two instances.
    let two = ecs
        .run_task()
        .cluster("p")
        .task_definition("big")
        .count(2)
        .placement_constraints(
            PlacementConstraint::builder()
                .r#type(PlacementConstraintType::DistinctInstance)
                .build(),
        )
        .send()
        .await
        .expect("RunTask");
    let mut hosts: Vec<String> = two
        .tasks()
        .iter()
        .filter_map(|t| t.container_instance_arn().map(str::to_string))
        .collect();
    hosts.sort();
    let mut expected = vec![a.clone(), b.clone()];
    expected.sort();
    assert_eq!(hosts, expected);
    // A third does not fit anywhere: one RESOURCE:MEMORY failure per instance.
    let third = ecs
        .run_task()
        .cluster("p")
        .task_definition("big")
        .send()
        .await
        .expect("RunTask");
    assert!(third.tasks().is_empty());
    let mut failures: Vec<(String, String)> = third
        .failures()
        .iter()
        .map(|f| {
            (
                f.arn().unwrap_or_default().to_string(),
                f.reason().unwrap_or_default().to_string(),
            )
        })
        .collect();
    failures.sort();
    let mut want = vec![
        (a.clone(), "RESOURCE:MEMORY".to_string()),
        (b.clone(), "RESOURCE:MEMORY".to_string()),
    ];
    want.sort();
    assert_eq!(failures, want);
    // memberOf with the cluster query language.
    ecs.register_task_definition()
        .family("small")
        .container_definitions(container("app", 16, &["sleep", "3600"]).build())
        .send()
        .await
        .expect("register");
    let placed = ecs
        .run_task()
        .cluster("p")
        .task_definition("small")
        .placement_constraints(
            PlacementConstraint::builder()
                .r#type(PlacementConstraintType::MemberOf)
                .expression("attribute:ecs.availability-zone == us-east-1b")
                .build(),
        )
        .send()
        .await
        .expect("RunTask");
    assert_eq!(placed.tasks()[0].container_instance_arn(), Some(b.as_str()));
    let bad = ecs
        .run_task()
        .cluster("p")
        .task_definition("small")
        .placement_constraints(
            PlacementConstraint::builder()
                .r#type(PlacementConstraintType::MemberOf)
                .expression("attribute:ecs.instance-type ==")
                .build(),
        )
        .send()
        .await
        .expect_err("a broken expression");
    assert_eq!(
        aws_sdk_ecs::error::ProvideErrorMetadata::code(&bad),
        Some("InvalidParameterException")
    );
    // No instances at all.
    ecs.create_cluster()
        .cluster_name("empty")
        .send()
        .await
        .expect("create");
    let none = ecs
        .run_task()
        .cluster("empty")
        .task_definition("small")
        .send()
        .await
        .expect_err("no instances");
    assert_eq!(
        aws_sdk_ecs::error::ProvideErrorMetadata::message(&none),
        Some("No Container Instances were found in your cluster.")
    );
    // The query filter of ListContainerInstances.
    let listed = ecs
        .list_container_instances()
        .cluster("p")
        .filter("attribute:ecs.availability-zone == us-east-1a")
        .send()
        .await
        .expect("list");
    assert_eq!(listed.container_instance_arns(), [a]);
}

#[tokio::test]
async fn oom_essential_exit_and_non_essential_exit() {
    ensure_image();
    let emu = Emulator::start();
    let ecs = emu.ecs();
    cluster_with_instance(&ecs, "x", "m5.large", "us-east-1a").await;
    ecs.register_task_definition()
        .family("hog")
        .container_definitions(
            container(
                "hog",
                8,
                &["sh", "-c", "x=aaaaaaaa; while true; do x=$x$x; done"],
            )
            .build(),
        )
        .send()
        .await
        .expect("register");
    let hog = run_one(&ecs, "x", "hog").await;
    let t = wait_status(&ecs, "x", &hog, "STOPPED").await;
    assert_eq!(
        t.stop_code().map(|c| c.as_str()),
        Some("EssentialContainerExited")
    );
    assert_eq!(
        t.stopped_reason(),
        Some("Essential container in task exited")
    );
    assert_eq!(t.containers()[0].exit_code(), Some(137));
    assert_eq!(
        t.containers()[0].reason(),
        Some("OutOfMemoryError: Container killed due to memory usage")
    );
    assert_eq!(
        docker_inspect(t.containers()[0].runtime_id().expect("id"))["State"]["OOMKilled"],
        true
    );

    ecs.register_task_definition()
        .family("mixed")
        .container_definitions(container("main", 16, &["sleep", "3600"]).build())
        .container_definitions(
            container("side", 16, &["sh", "-c", "exit 3"])
                .essential(false)
                .build(),
        )
        .send()
        .await
        .expect("register");
    let mixed = run_one(&ecs, "x", "mixed").await;
    wait_status(&ecs, "x", &mixed, "RUNNING").await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let t = describe(&ecs, "x", &mixed).await;
        let side = t
            .containers()
            .iter()
            .find(|c| c.name() == Some("side"))
            .expect("side")
            .clone();
        if side.last_status() == Some("STOPPED") {
            assert_eq!(side.exit_code(), Some(3));
            assert_eq!(
                t.last_status(),
                Some("RUNNING"),
                "a non-essential exit leaves the task running"
            );
            break;
        }
        assert!(Instant::now() < deadline, "side never stopped: {t:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn failures_to_start_and_containers_removed_behind_its_back() {
    ensure_image();
    let emu = Emulator::start();
    let ecs = emu.ecs();
    cluster_with_instance(&ecs, "f", "m5.large", "us-east-1a").await;
    ecs.register_task_definition()
        .family("nope")
        .container_definitions(
            ContainerDefinition::builder()
                .name("app")
                .image("127.0.0.1:9/does-not-exist:1")
                .memory(16)
                .build(),
        )
        .send()
        .await
        .expect("register");
    let nope = run_one(&ecs, "f", "nope").await;
    let t = wait_status(&ecs, "f", &nope, "STOPPED").await;
    assert_eq!(t.stop_code().map(|c| c.as_str()), Some("TaskFailedToStart"));
    let reason = t.containers()[0].reason().unwrap_or_default().to_string();
    assert!(reason.starts_with("CannotPullContainerError: "), "{reason}");
    assert!(
        t.stopped_reason()
            .is_some_and(|r| r.starts_with("CannotPullContainerError")),
        "{t:?}"
    );

    ecs.register_task_definition()
        .family("sleeper")
        .container_definitions(container("app", 16, &["sleep", "3600"]).build())
        .send()
        .await
        .expect("register");
    let arn = run_one(&ecs, "f", "sleeper").await;
    let running = wait_status(&ecs, "f", &arn, "RUNNING").await;
    let id = running.containers()[0]
        .runtime_id()
        .expect("id")
        .to_string();
    docker(&["rm", "-f", &id]);
    let t = wait_status(&ecs, "f", &arn, "STOPPED").await;
    assert_eq!(
        t.stop_code().map(|c| c.as_str()),
        Some("EssentialContainerExited")
    );

    // SSM secrets that do not exist fail the task at start.
    ecs.register_task_definition()
        .family("secretive")
        .container_definitions(
            container("app", 16, &["sleep", "3600"])
                .secrets(
                    Secret::builder()
                        .name("TOKEN")
                        .value_from("/missing/param")
                        .build()
                        .expect("secret"),
                )
                .build(),
        )
        .send()
        .await
        .expect("register");
    let s = run_one(&ecs, "f", "secretive").await;
    let t = wait_status(&ecs, "f", &s, "STOPPED").await;
    assert!(
        t.stopped_reason().is_some_and(
            |r| r.starts_with("ResourceInitializationError") && r.contains("/missing/param")
        ),
        "{t:?}"
    );
}

#[tokio::test]
async fn depends_on_orders_containers_and_health_checks_report_healthy() {
    ensure_image();
    let emu = Emulator::start();
    let ecs = emu.ecs();
    cluster_with_instance(&ecs, "d", "m5.large", "us-east-1a").await;
    ecs.register_task_definition()
        .family("ordered")
        .container_definitions(
            container("init", 16, &["sh", "-c", "sleep 1; exit 0"])
                .essential(false)
                .build(),
        )
        .container_definitions(
            container("app", 16, &["sleep", "3600"])
                .depends_on(
                    ContainerDependency::builder()
                        .container_name("init")
                        .condition(ContainerCondition::Success)
                        .build()
                        .expect("dep"),
                )
                .health_check(
                    HealthCheck::builder()
                        .command("CMD-SHELL")
                        .command("true")
                        .interval(5)
                        .timeout(2)
                        .retries(2)
                        .build()
                        .expect("hc"),
                )
                .build(),
        )
        .send()
        .await
        .expect("register");
    let arn = run_one(&ecs, "d", "ordered").await;
    let t = wait_status(&ecs, "d", &arn, "RUNNING").await;
    let find = |t: &Task, n: &str| {
        t.containers()
            .iter()
            .find(|c| c.name() == Some(n))
            .cloned()
            .expect("container")
    };
    let init = docker_inspect(find(&t, "init").runtime_id().expect("init id"));
    let app = docker_inspect(find(&t, "app").runtime_id().expect("app id"));
    let finished = init["State"]["FinishedAt"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let started = app["State"]["StartedAt"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        started > finished,
        "app started ({started}) after init finished ({finished})"
    );
    assert_eq!(find(&t, "init").exit_code(), Some(0));
    assert_eq!(
        app["Config"]["Healthcheck"]["Test"],
        serde_json::json!(["CMD-SHELL", "true"])
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let t = describe(&ecs, "d", &arn).await;
        if t.health_status().map(|h| h.as_str()) == Some("HEALTHY") {
            assert_eq!(
                find(&t, "app").health_status().map(|h| h.as_str()),
                Some("HEALTHY")
            );
            break;
        }
        assert!(Instant::now() < deadline, "never healthy: {t:?}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test]
async fn fargate_task_with_awsvpc_secrets_and_awslogs() {
    ensure_image();
    let emu = Emulator::start();
    let ecs = emu.ecs();
    ecs.create_cluster()
        .cluster_name("fg")
        .send()
        .await
        .expect("create");
    let subnet = emu
        .ec2()
        .describe_subnets()
        .send()
        .await
        .expect("subnets")
        .subnets()[0]
        .clone();
    emu.ssm()
        .put_parameter()
        .name("/app/token")
        .value("s3cret")
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .send()
        .await
        .expect("put");
    ecs.register_task_definition()
        .family("fg")
        .requires_compatibilities(Compatibility::Fargate)
        .network_mode(NetworkMode::Awsvpc)
        .cpu("256")
        .memory("512")
        .container_definitions(
            ContainerDefinition::builder()
                .name("app")
                .image(IMAGE)
                .command("sh")
                .command("-c")
                .command("echo token=$TOKEN exec=$AWS_EXECUTION_ENV; exec httpd -f -p 8080 -h /")
                .secrets(
                    Secret::builder()
                        .name("TOKEN")
                        .value_from("/app/token")
                        .build()
                        .expect("secret"),
                )
                .port_mappings(PortMapping::builder().container_port(8080).build())
                .log_configuration(
                    LogConfiguration::builder()
                        .log_driver(LogDriver::Awslogs)
                        .options("awslogs-group", "/ecs/fg")
                        .options("awslogs-stream-prefix", "ecs")
                        .options("awslogs-create-group", "true")
                        .options("awslogs-region", "us-east-1")
                        .build()
                        .expect("log config"),
                )
                .build(),
        )
        .send()
        .await
        .expect("register");
    let out = ecs
        .run_task()
        .cluster("fg")
        .launch_type(aws_sdk_ecs::types::LaunchType::Fargate)
        .task_definition("fg")
        .network_configuration(
            aws_sdk_ecs::types::NetworkConfiguration::builder()
                .awsvpc_configuration(
                    aws_sdk_ecs::types::AwsVpcConfiguration::builder()
                        .subnets(subnet.subnet_id().expect("id"))
                        .build()
                        .expect("awsvpc"),
                )
                .build(),
        )
        .send()
        .await
        .expect("RunTask");
    let arn = out.tasks()[0].task_arn().expect("arn").to_string();
    let t = wait_status(&ecs, "fg", &arn, "RUNNING").await;
    assert_eq!(t.launch_type().map(|l| l.as_str()), Some("FARGATE"));
    assert_eq!(t.availability_zone(), subnet.availability_zone());
    let eni = &t.attachments()[0];
    assert_eq!(eni.r#type(), Some("ElasticNetworkInterface"));
    let ip = eni
        .details()
        .iter()
        .find(|d| d.name() == Some("privateIPv4Address"))
        .and_then(|d| d.value())
        .expect("ip")
        .to_string();
    assert!(
        ip.starts_with("172.31."),
        "an address of the subnet 172.31.0.0/20: {ip}"
    );
    let inspect = docker_inspect(t.containers()[0].runtime_id().expect("id"));
    assert_eq!(inspect["HostConfig"]["NanoCpus"], 250_000_000_i64);
    assert_eq!(inspect["HostConfig"]["Memory"], 512 * 1024 * 1024);
    let net = inspect["HostConfig"]["NetworkMode"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_eq!(
        inspect["NetworkSettings"]["Networks"][&net]["IPAddress"],
        ip.as_str()
    );
    // Logs reach CloudWatch Logs under prefix/container/task-id.
    let task_id = arn.rsplit('/').next().expect("id");
    let logs = emu.logs();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let events = logs
            .get_log_events()
            .log_group_name("/ecs/fg")
            .log_stream_name(format!("ecs/app/{task_id}"))
            .send()
            .await;
        if let Ok(e) = events {
            if e.events()
                .iter()
                .any(|e| e.message() == Some("token=s3cret exec=AWS_ECS_FARGATE"))
            {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the container's output never reached CloudWatch Logs"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test]
async fn running_tasks_are_adopted_after_kill_9_and_reset_removes_containers() {
    ensure_image();
    let mut emu = Emulator::start();
    let ecs = emu.ecs();
    cluster_with_instance(&ecs, "r", "m5.large", "us-east-1a").await;
    ecs.register_task_definition()
        .family("sleeper")
        .container_definitions(container("app", 16, &["sleep", "3600"]).build())
        .send()
        .await
        .expect("register");
    let arn = run_one(&ecs, "r", "sleeper").await;
    let t = wait_status(&ecs, "r", &arn, "RUNNING").await;
    let id = t.containers()[0].runtime_id().expect("id").to_string();
    emu.restart();
    let ecs = emu.ecs();
    // The agent adopts before it starts anything: once a task run after the restart is RUNNING,
    // adoption is over.
    let after = run_one(&ecs, "r", "sleeper").await;
    wait_status(&ecs, "r", &after, "RUNNING").await;
    let t = describe(&ecs, "r", &arn).await;
    assert_eq!(t.last_status(), Some("RUNNING"));
    assert_eq!(t.containers()[0].runtime_id(), Some(id.as_str()));
    let with_label = docker(&[
        "ps",
        "-aq",
        "--no-trunc",
        "--filter",
        &format!("label=com.amazonaws.ecs.task-arn={arn}"),
    ]);
    assert_eq!(
        with_label.lines().count(),
        1,
        "no duplicate container after restart: {with_label}"
    );
    assert_eq!(docker_inspect(&id)["State"]["Running"], true);
    // Reset drops state and removes every container this emulator started.
    let reset = emu.raw("POST", "/_emulator/reset", &[], b"");
    assert_eq!(reset.status, 200);
    let left = docker(&[
        "ps",
        "-aq",
        "--filter",
        &format!("label=com.amazonaws.ecs.task-arn={arn}"),
    ]);
    assert!(
        left.trim().is_empty(),
        "containers left after reset: {left}"
    );
    let clusters = ecs.list_clusters().send().await.expect("list");
    assert!(clusters.cluster_arns().is_empty());
}

/// Issue 15: kill -9 while RunTask tasks are still PENDING (some of their containers created),
/// then restart: every task reaches RUNNING, adopted or started again once. The die and destroy
/// events of the leftovers the agent removes must not stop any task.
#[tokio::test]
async fn tasks_pending_at_kill_9_run_after_the_restart() {
    ensure_image();
    let mut emu = Emulator::start();
    let ecs = emu.ecs();
    cluster_with_instance(&ecs, "k9", "m5.4xlarge", "us-east-1a").await;
    ecs.register_task_definition()
        .family("pair")
        .container_definitions(container("app", 16, &["sleep", "3600"]).build())
        .container_definitions(container("sidecar", 16, &["sleep", "3600"]).build())
        .send()
        .await
        .expect("register");
    let mut arns = Vec::new();
    for _ in 0..3 {
        let out = ecs
            .run_task()
            .cluster("k9")
            .task_definition("pair")
            .count(10)
            .send()
            .await
            .expect("RunTask");
        assert!(out.failures().is_empty(), "{:?}", out.failures());
        arns.extend(
            out.tasks()
                .iter()
                .filter_map(|t| t.task_arn().map(str::to_string)),
        );
    }
    // Kill as soon as a task that is still PENDING has a container.
    let deadline = Instant::now() + Duration::from_secs(60);
    let pending_at_kill = loop {
        let mut tasks = Vec::new();
        for chunk in arns.chunks(100) {
            let out = ecs
                .describe_tasks()
                .cluster("k9")
                .set_tasks(Some(chunk.to_vec()))
                .send()
                .await
                .expect("DescribeTasks");
            tasks.extend(out.tasks().to_vec());
        }
        let pending: Vec<&Task> = tasks
            .iter()
            .filter(|t| t.last_status() != Some("RUNNING"))
            .collect();
        let started = pending
            .iter()
            .any(|t| t.containers().iter().any(|c| c.runtime_id().is_some()));
        if started {
            break pending.len();
        }
        assert!(
            !pending.is_empty(),
            "every task ran before any kill could interrupt a start"
        );
        assert!(Instant::now() < deadline, "no container created: {tasks:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    emu.restart();
    let ecs = emu.ecs();
    for arn in &arns {
        let t = wait_status(&ecs, "k9", arn, "RUNNING").await;
        assert_eq!(t.desired_status(), Some("RUNNING"), "{t:?}");
    }
    // Stable: a task run after the restart is RUNNING, and every earlier one still is, each with
    // exactly its two containers in Docker, running.
    let after = run_one(&ecs, "k9", "pair").await;
    wait_status(&ecs, "k9", &after, "RUNNING").await;
    for arn in &arns {
        let t = describe(&ecs, "k9", arn).await;
        assert_eq!(
            t.last_status(),
            Some("RUNNING"),
            "{pending_at_kill} tasks were pending at the kill; this one stopped: {t:?}"
        );
        let ids = docker(&[
            "ps",
            "-q",
            "--no-trunc",
            "--filter",
            &format!("label=com.amazonaws.ecs.task-arn={arn}"),
        ]);
        let mut ids: Vec<&str> = ids.lines().collect();
        ids.sort_unstable();
        let mut want: Vec<&str> = t
            .containers()
            .iter()
            .filter_map(|c| c.runtime_id())
            .collect();
        want.sort_unstable();
        assert_eq!(
            ids, want,
            "the task's running containers are the ones it names"
        );
    }
}

#[tokio::test]
async fn container_settings_map_to_docker() {
    use aws_sdk_ecs::types::{
        DockerVolumeConfiguration, HostEntry, HostVolumeProperties, KernelCapabilities,
        LinuxParameters, MountPoint, Scope, Ulimit, UlimitName, Volume,
    };
    ensure_image();
    let emu = Emulator::start();
    let ecs = emu.ecs();
    cluster_with_instance(&ecs, "m", "m5.large", "us-east-1a").await;
    let host_dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(host_dir.path().join("hello.txt"), "from the host").expect("write");
    let shared = format!("shared-{}", std::process::id());
    ecs.register_task_definition()
        .family("settings")
        .volumes(
            Volume::builder()
                .name("hostdata")
                .host(
                    HostVolumeProperties::builder()
                        .source_path(host_dir.path().to_string_lossy())
                        .build(),
                )
                .build(),
        )
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
                .name("db")
                .image(IMAGE)
                .memory(16)
                .command("sleep")
                .command("3600")
                .stop_timeout(1)
                .build(),
        )
        .container_definitions(
            ContainerDefinition::builder()
                .name("app")
                .image(IMAGE)
                .memory(32)
                .entry_point("sh")
                .entry_point("-c")
                .command("sleep 3600")
                .working_directory("/tmp")
                .user("1000:1000")
                .links("db:database")
                .readonly_root_filesystem(true)
                .privileged(false)
                .extra_hosts(
                    HostEntry::builder()
                        .hostname("api.internal")
                        .ip_address("10.1.2.3")
                        .build()
                        .expect("host"),
                )
                .ulimits(
                    Ulimit::builder()
                        .name(UlimitName::Nofile)
                        .soft_limit(1024)
                        .hard_limit(2048)
                        .build()
                        .expect("ulimit"),
                )
                .linux_parameters(
                    LinuxParameters::builder()
                        .init_process_enabled(true)
                        .capabilities(
                            KernelCapabilities::builder()
                                .add("NET_ADMIN")
                                .drop("MKNOD")
                                .build(),
                        )
                        .build(),
                )
                .mount_points(
                    MountPoint::builder()
                        .source_volume("hostdata")
                        .container_path("/host")
                        .read_only(true)
                        .build(),
                )
                .mount_points(
                    MountPoint::builder()
                        .source_volume("scratch")
                        .container_path("/scratch")
                        .build(),
                )
                .mount_points(
                    MountPoint::builder()
                        .source_volume(&shared)
                        .container_path("/shared")
                        .build(),
                )
                .port_mappings(
                    PortMapping::builder()
                        .container_port(80)
                        .host_port(18080 + (std::process::id() % 1000) as i32)
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .expect("register");
    let arn = run_one(&ecs, "m", "settings").await;
    let t = wait_status(&ecs, "m", &arn, "RUNNING").await;
    let app = t
        .containers()
        .iter()
        .find(|c| c.name() == Some("app"))
        .expect("app")
        .clone();
    let inspect = docker_inspect(app.runtime_id().expect("id"));
    let cfg = &inspect["Config"];
    let hc = &inspect["HostConfig"];
    assert_eq!(cfg["Entrypoint"], serde_json::json!(["sh", "-c"]));
    assert_eq!(cfg["Cmd"], serde_json::json!(["sleep 3600"]));
    assert_eq!(cfg["WorkingDir"], "/tmp");
    assert_eq!(cfg["User"], "1000:1000");
    assert_eq!(hc["ReadonlyRootfs"], true);
    assert_eq!(hc["Init"], true);
    assert_eq!(hc["CapAdd"], serde_json::json!(["NET_ADMIN"]));
    assert_eq!(hc["CapDrop"], serde_json::json!(["MKNOD"]));
    assert_eq!(
        hc["ExtraHosts"],
        serde_json::json!(["api.internal:10.1.2.3"])
    );
    assert_eq!(hc["Ulimits"][0]["Name"], "nofile");
    assert_eq!(hc["Ulimits"][0]["Soft"], 1024);
    assert_eq!(hc["Ulimits"][0]["Hard"], 2048);
    let links = hc["Links"].to_string();
    assert!(
        links.contains("/database"),
        "the db container is linked as database: {links}"
    );
    // A static host port is reserved and published on the instance's address.
    let binding = &app.network_bindings()[0];
    assert_eq!(
        binding.host_port(),
        Some(18080 + (std::process::id() % 1000) as i32)
    );
    // Volumes: the host path bind-mounted read-only, a task volume, a shared autoprovisioned one.
    let mounts = inspect["Mounts"].as_array().cloned().unwrap_or_default();
    let mount = |dest: &str| {
        mounts
            .iter()
            .find(|m| m["Destination"] == dest)
            .cloned()
            .unwrap_or_default()
    };
    assert_eq!(mount("/host")["RW"], false);
    assert_eq!(
        mount("/host")["Source"],
        host_dir.path().to_string_lossy().as_ref()
    );
    let task_volume = mount("/scratch")["Name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        task_volume.starts_with("ecs-settings-1-scratch-"),
        "{task_volume}"
    );
    assert_eq!(mount("/shared")["Name"], shared.as_str());
    let out = docker(&[
        "exec",
        app.runtime_id().expect("id"),
        "cat",
        "/host/hello.txt",
    ]);
    assert_eq!(out, "from the host");
    docker(&["rm", "-f", app.runtime_id().expect("id")]);
    wait_status(&ecs, "m", &arn, "STOPPED").await;
    docker(&["volume", "rm", &shared]);

    // host and none network modes.
    for (mode, family) in [(NetworkMode::Host, "hostnet"), (NetworkMode::None, "nonet")] {
        ecs.register_task_definition()
            .family(family)
            .network_mode(mode.clone())
            .container_definitions(container("app", 16, &["sleep", "3600"]).build())
            .send()
            .await
            .expect("register");
        let arn = run_one(&ecs, "m", family).await;
        let t = wait_status(&ecs, "m", &arn, "RUNNING").await;
        let inspect = docker_inspect(t.containers()[0].runtime_id().expect("id"));
        assert_eq!(inspect["HostConfig"]["NetworkMode"], mode.as_str());
        ecs.stop_task()
            .cluster("m")
            .task(&arn)
            .send()
            .await
            .expect("stop");
    }
}

#[tokio::test]
async fn overrides_start_task_drain_attributes_and_forced_deregistration() {
    ensure_image();
    let emu = Emulator::start();
    let ecs = emu.ecs();
    let a = cluster_with_instance(&ecs, "o", "m5.large", "us-east-1a").await;
    let b = register_instance(&ecs, "o", "m5.large", "us-east-1b").await;
    ecs.register_task_definition()
        .family("worker")
        .container_definitions(
            container("app", 32, &["sleep", "3600"])
                .environment(
                    KeyValuePair::builder()
                        .name("MODE")
                        .value("default")
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .expect("register");
    // StartTask on a chosen instance, with overrides and startedBy/group.
    let started = ecs
        .start_task()
        .cluster("o")
        .task_definition("worker")
        .container_instances(&b)
        .started_by("batch-7")
        .group("nightly")
        .overrides(
            aws_sdk_ecs::types::TaskOverride::builder()
                .container_overrides(
                    aws_sdk_ecs::types::ContainerOverride::builder()
                        .name("app")
                        .command("sh")
                        .command("-c")
                        .command("echo $MODE; sleep 3600")
                        .environment(
                            KeyValuePair::builder()
                                .name("MODE")
                                .value("override")
                                .build(),
                        )
                        .memory(64)
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .expect("StartTask");
    let arn = started.tasks()[0].task_arn().expect("arn").to_string();
    assert_eq!(
        started.tasks()[0].container_instance_arn(),
        Some(b.as_str())
    );
    assert_eq!(started.tasks()[0].group(), Some("nightly"));
    let t = wait_status(&ecs, "o", &arn, "RUNNING").await;
    let inspect = docker_inspect(t.containers()[0].runtime_id().expect("id"));
    assert_eq!(inspect["HostConfig"]["Memory"], 64 * 1024 * 1024);
    assert!(env_of(&inspect).contains(&"MODE=override".to_string()));
    assert_eq!(
        inspect["Config"]["Cmd"],
        serde_json::json!(["sh", "-c", "echo $MODE; sleep 3600"])
    );
    let by = ecs
        .list_tasks()
        .cluster("o")
        .started_by("batch-7")
        .send()
        .await
        .expect("list");
    assert_eq!(by.task_arns(), std::slice::from_ref(&arn));
    let on_a = ecs
        .list_tasks()
        .cluster("o")
        .container_instance(&a)
        .send()
        .await
        .expect("list");
    assert!(on_a.task_arns().is_empty());
    let fam = ecs
        .list_tasks()
        .cluster("o")
        .family("worker")
        .send()
        .await
        .expect("list");
    assert_eq!(fam.task_arns(), std::slice::from_ref(&arn));

    // Custom attributes drive memberOf.
    ecs.put_attributes()
        .cluster("o")
        .attributes(
            aws_sdk_ecs::types::Attribute::builder()
                .name("stack")
                .value("blue")
                .target_id(&a)
                .build()
                .expect("attr"),
        )
        .send()
        .await
        .expect("PutAttributes");
    let listed = ecs
        .list_attributes()
        .cluster("o")
        .target_type(aws_sdk_ecs::types::TargetType::ContainerInstance)
        .attribute_name("stack")
        .send()
        .await
        .expect("ListAttributes");
    assert_eq!(listed.attributes()[0].target_id(), Some(a.as_str()));
    let placed = ecs
        .run_task()
        .cluster("o")
        .task_definition("worker")
        .placement_constraints(
            PlacementConstraint::builder()
                .r#type(PlacementConstraintType::MemberOf)
                .expression("attribute:stack == blue")
                .build(),
        )
        .send()
        .await
        .expect("RunTask");
    assert_eq!(placed.tasks()[0].container_instance_arn(), Some(a.as_str()));
    ecs.delete_attributes()
        .cluster("o")
        .attributes(
            aws_sdk_ecs::types::Attribute::builder()
                .name("stack")
                .target_id(&a)
                .build()
                .expect("attr"),
        )
        .send()
        .await
        .expect("DeleteAttributes");

    // A DRAINING instance gets no new tasks.
    ecs.update_container_instances_state()
        .cluster("o")
        .container_instances(&a)
        .status(aws_sdk_ecs::types::ContainerInstanceStatus::Draining)
        .send()
        .await
        .expect("drain");
    for _ in 0..3 {
        let out = ecs
            .run_task()
            .cluster("o")
            .task_definition("worker")
            .send()
            .await
            .expect("RunTask");
        assert_eq!(out.tasks()[0].container_instance_arn(), Some(b.as_str()));
    }

    // Deregistering an instance with tasks needs force, and stops its tasks.
    let err = ecs
        .deregister_container_instance()
        .cluster("o")
        .container_instance(&b)
        .send()
        .await
        .expect_err("tasks on it");
    assert_eq!(
        aws_sdk_ecs::error::ProvideErrorMetadata::code(&err),
        Some("InvalidParameterException")
    );
    ecs.deregister_container_instance()
        .cluster("o")
        .container_instance(&b)
        .force(true)
        .send()
        .await
        .expect("force");
    let t = wait_status(&ecs, "o", &arn, "STOPPED").await;
    assert_eq!(
        t.stopped_reason(),
        Some("Container instance deregistration forced by user")
    );
    let active = ecs
        .list_container_instances()
        .cluster("o")
        .send()
        .await
        .expect("list");
    assert_eq!(active.container_instance_arns(), [a]);
}

#[tokio::test]
async fn containers_call_the_emulated_apis_and_pull_from_the_emulated_ecr() {
    ensure_image();
    let emu = Emulator::start();
    let ecs = emu.ecs();
    cluster_with_instance(&ecs, "e", "m5.large", "us-east-1a").await;
    // Push the test image into the emulated ECR, then forget it locally.
    let repo = emu
        .ecr()
        .create_repository()
        .repository_name("tools")
        .send()
        .await
        .expect("CreateRepository");
    let uri = repo
        .repository()
        .and_then(|r| r.repository_uri())
        .expect("uri")
        .to_string();
    docker_login(&emu).await;
    let tag = format!("{uri}:v1");
    docker(&["tag", IMAGE, &tag]);
    let push = Command::new("docker")
        .args(["push", &tag])
        .output()
        .expect("push");
    assert!(
        push.status.success(),
        "{}",
        String::from_utf8_lossy(&push.stderr)
    );
    docker(&["rmi", &tag]);
    // The task names the image in real ECR form; the emulator pulls it from its own registry.
    let real_form = "000000000000.dkr.ecr.us-east-1.amazonaws.com/tools:v1";
    ecs.register_task_definition()
        .family("caller")
        .container_definitions(
            ContainerDefinition::builder()
                .name("app")
                .image(real_form)
                .memory(32)
                .command("sh")
                .command("-c")
                .command(
                    "wget -qO- --header 'X-Amz-Target: AmazonEC2ContainerServiceV20141113.ListClusters' \
                     --header 'Content-Type: application/x-amz-json-1.1' --post-data '{}' $AWS_ENDPOINT_URL; echo; sleep 3600",
                )
                .build(),
        )
        .send()
        .await
        .expect("register");
    let arn = run_one(&ecs, "e", "caller").await;
    let t = wait_status(&ecs, "e", &arn, "RUNNING").await;
    let c = &t.containers()[0];
    assert!(
        c.image_digest().is_some_and(|d| d.starts_with("sha256:")),
        "{c:?}"
    );
    let id = c.runtime_id().expect("id").to_string();
    let inspect = docker_inspect(&id);
    assert!(
        inspect["Config"]["Image"]
            .as_str()
            .is_some_and(|i| i.ends_with("/tools:v1")),
        "{}",
        inspect["Config"]["Image"]
    );
    // From inside the container, AWS_ENDPOINT_URL reaches the emulator.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let logs = Command::new("docker")
            .args(["logs", &id])
            .output()
            .expect("logs");
        let text = String::from_utf8_lossy(&logs.stdout).into_owned();
        if text.contains("clusterArns") {
            assert!(text.contains("cluster/e"), "{text}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no answer from the emulator inside the container: {text}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    docker(&["rmi", "-f", &tag]);
}
