//! compose.yaml as a user runs it (issue 13 item 5): the emulator's image built here from the
//! binary the tests run (fixtures/build-emulator-image.sh: FROM scratch, nothing pulled),
//! `docker compose up -d` (or Debian's docker-compose v1), `aws ecs create-cluster` and
//! `aws ecs list-clusters` against it, a task reading its metadata at 169.254.170.2, an ALB
//! listener port (the container's, in the host's network) answering with a service task's page,
//! then a subset of the sdk-tests (ECS, ELBv2, Logs and EFS API tests) run against it, two
//! tasks share a file through an EFS volume (the data directory a shared mount, `rshared`), and
//! `down -v` leaves no container, network, volume or mount of it behind. Every step is
//! bounded (`timeout`), and a guard takes everything down and removes the image when the test
//! fails half-way.

use sdk_tests::workspace_dir;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// `docker compose` when the v2 plugin is there, else `docker-compose` (v1).
fn compose_command() -> Vec<String> {
    let v2 = Command::new("docker")
        .args(["compose", "version"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if v2 {
        vec!["docker".into(), "compose".into()]
    } else {
        vec!["docker-compose".into()]
    }
}

fn run(what: &str, cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("{what}: cannot run: {e} (run .ci/run to install the tools)"))
}

fn bounded(secs: u64, program: &str, args: &[&str]) -> Command {
    let mut c = Command::new("timeout");
    c.arg(format!("{secs}s")).arg(program).args(args);
    c
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

struct Project {
    compose: Vec<String>,
    name: String,
    image: String,
    env: Vec<(String, String)>,
    down: bool,
}

impl Project {
    fn command(&self, secs: u64, args: &[&str]) -> Command {
        let file = workspace_dir().join("compose.yaml");
        let mut all: Vec<String> = self.compose[1..].to_vec();
        all.extend([
            "-p".into(),
            self.name.clone(),
            "-f".into(),
            file.display().to_string(),
        ]);
        all.extend(args.iter().map(|s| s.to_string()));
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        let mut c = bounded(secs, &self.compose[0], &all);
        c.current_dir(workspace_dir());
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c
    }

    fn logs(&self) -> String {
        self.command(30, &["logs", "--no-color"])
            .output()
            .map(|o| text(&o))
            .unwrap_or_default()
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        if !self.down {
            let _ = self.command(60, &["down", "-v"]).output();
        }
        let _ = Command::new("docker")
            .args(["rmi", "-f", &self.image])
            .output();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn aws(port: u16, args: &[&str]) -> Output {
    let endpoint = format!("http://127.0.0.1:{port}");
    let mut all = vec!["--endpoint-url", endpoint.as_str(), "--output", "json"];
    all.extend_from_slice(args);
    let mut c = bounded(60, "aws", &all);
    c.env("AWS_ACCESS_KEY_ID", sdk_tests::ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", sdk_tests::SECRET_KEY)
        .env("AWS_DEFAULT_REGION", sdk_tests::REGION)
        .env_remove("AWS_PROFILE");
    run("aws", &mut c)
}

fn mounts_under(dir: &Path) -> Vec<String> {
    let d = dir.display().to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter(|l| {
            l.split_whitespace()
                .nth(4)
                .is_some_and(|m| m.starts_with(&d))
        })
        .map(str::to_string)
        .collect()
}

fn docker_ids(kind: &str, label: &str) -> Vec<String> {
    let filter = format!("label={label}");
    let args: Vec<&str> = match kind {
        "container" => vec!["ps", "-aq", "--filter", filter.as_str()],
        "network" => vec!["network", "ls", "-q", "--filter", filter.as_str()],
        _ => vec!["volume", "ls", "-q", "--filter", filter.as_str()],
    };
    let out = Command::new("docker").args(&args).output().expect("docker");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .filter(|l| !l.is_empty())
        .collect()
}

/// A task of the containerised emulator reads its metadata at 169.254.170.2 while an emulator
/// on the host runs too: whichever holds the address serves it (the container's, added over
/// rtnetlink) or forwards to the other through the shared peers directory. Returns the task
/// JSON the container printed.
async fn task_reads_its_metadata(
    emu: &sdk_tests::Emulator,
    project: &Project,
) -> serde_json::Value {
    let ecs = emu.ecs();
    let task_arn = sdk_tests::run_metadata_probe(&ecs, "compose", "compose-probe", 60).await;
    let deadline = Instant::now() + Duration::from_secs(90);
    let runtime_id = loop {
        let d = ecs
            .describe_tasks()
            .cluster("compose")
            .tasks(&task_arn)
            .send()
            .await
            .expect("describe tasks");
        let t = &d.tasks()[0];
        if let Some(id) = t.containers().first().and_then(|c| c.runtime_id()) {
            break id.to_string();
        }
        assert!(
            t.last_status() != Some("STOPPED") && Instant::now() < deadline,
            "task did not start: {t:?}\n{}",
            project.logs()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let logs = sdk_tests::docker_logs(&runtime_id);
        if let Some(doc) = logs
            .lines()
            .find_map(|l| serde_json::from_str::<serde_json::Value>(l.trim()).ok())
        {
            assert_eq!(doc["TaskARN"], task_arn.as_str(), "{doc}");
            return doc;
        }
        assert!(
            Instant::now() < deadline,
            "the task read no metadata; its output: {logs}\nemulator:\n{}",
            project.logs()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// An ALB of the containerised emulator in front of a service of busybox httpd tasks: its
/// listener port (opened by the emulator, in the host's network namespace) answers from the
/// host with the task's page, so the emulator reached the task's host port too. Bounded.
async fn alb_serves_a_service_task(emu: &sdk_tests::Emulator, project: &Project) {
    use aws_sdk_ecs::types::{ContainerDefinition, LoadBalancer, NetworkMode, PortMapping};
    use sdk_tests::aws_sdk_elasticloadbalancingv2::types::{
        Action, ActionTypeEnum, ProtocolEnum, TargetTypeEnum,
    };
    let port = emu.port();
    let elb = emu.elbv2();
    let ecs = emu.ecs();
    let (subnets, vpc) = crate::elbv2::subnets_and_vpc(emu).await;
    let lb = elb
        .create_load_balancer()
        .name("compose-front")
        .set_subnets(Some(subnets))
        .send()
        .await
        .expect("CreateLoadBalancer");
    let lb_arn = lb.load_balancers()[0]
        .load_balancer_arn()
        .unwrap_or_default();
    let tg = elb
        .create_target_group()
        .name("compose-web")
        .protocol(ProtocolEnum::Http)
        .port(8080)
        .vpc_id(&vpc)
        .target_type(TargetTypeEnum::Instance)
        .health_check_interval_seconds(5)
        .health_check_timeout_seconds(2)
        .healthy_threshold_count(2)
        .send()
        .await
        .expect("CreateTargetGroup");
    let tg_arn = tg.target_groups()[0]
        .target_group_arn()
        .unwrap_or_default()
        .to_string();
    let listener = elb
        .create_listener()
        .load_balancer_arn(lb_arn)
        .protocol(ProtocolEnum::Http)
        .port(80)
        .default_actions(
            Action::builder()
                .r#type(ActionTypeEnum::Forward)
                .target_group_arn(&tg_arn)
                .build(),
        )
        .send()
        .await
        .expect("CreateListener");
    let listener_arn = listener.listeners()[0]
        .listener_arn()
        .unwrap_or_default()
        .to_string();
    ecs.register_task_definition()
        .family("compose-web")
        .network_mode(NetworkMode::Bridge)
        .container_definitions(
            ContainerDefinition::builder()
                .name("web")
                .image("ecs-emulator-test/busybox:latest")
                .memory(32)
                .essential(true)
                .command("sh")
                .command("-c")
                .command("mkdir -p /www && echo compose-web-ok > /www/index.html && exec httpd -f -p 8080 -h /www")
                .port_mappings(PortMapping::builder().container_port(8080).host_port(0).build())
                .build(),
        )
        .send()
        .await
        .expect("RegisterTaskDefinition");
    ecs.create_service()
        .cluster("compose")
        .service_name("web")
        .task_definition("compose-web")
        .desired_count(1)
        .load_balancers(
            LoadBalancer::builder()
                .target_group_arn(&tg_arn)
                .container_name("web")
                .container_port(8080)
                .build(),
        )
        .send()
        .await
        .expect("CreateService");
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut last = String::new();
    loop {
        let state = sdk_tests::http(port, "GET", "/_emulator/state", &[], b"").json();
        let bound = state["loadBalancerListeners"][&listener_arn]
            .as_str()
            .and_then(|a| a.rsplit(':').next())
            .and_then(|p| p.parse::<u16>().ok());
        if let Some(l) = bound {
            if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", l)) {
                use std::io::{Read, Write};
                let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                let _ =
                    s.write_all(b"GET / HTTP/1.1\r\nHost: compose\r\nConnection: close\r\n\r\n");
                let mut out = String::new();
                let _ = s.read_to_string(&mut out);
                if out.starts_with("HTTP/1.1 200") && out.contains("compose-web-ok") {
                    return;
                }
                last = out;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the ALB listener never served the task's page (listener {bound:?}, last answer {last:?})\n{}",
            project.logs()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The data directory made a shared mount (`mount --bind D D && mount --make-shared D`, as the
/// README tells users), so that Docker accepts `rshared` propagation and the FUSE mounts the
/// containerised emulator makes reach the host's Docker daemon. Unmounted when dropped.
struct SharedMount {
    dir: PathBuf,
    mounted: bool,
}

impl SharedMount {
    fn new(dir: &Path) -> SharedMount {
        let d = dir.display().to_string();
        let mut m = SharedMount {
            dir: dir.to_path_buf(),
            mounted: false,
        };
        let out = run(
            "mount --bind",
            &mut bounded(10, "mount", &["--bind", &d, &d]),
        );
        assert!(out.status.success(), "{}", text(&out));
        m.mounted = true;
        let out = run(
            "mount --make-shared",
            &mut bounded(10, "mount", &["--make-shared", &d]),
        );
        assert!(out.status.success(), "{}", text(&out));
        m
    }

    fn unmount(&mut self) {
        if self.mounted {
            let d = self.dir.display().to_string();
            let out = run("umount", &mut bounded(10, "umount", &[&d]));
            assert!(out.status.success(), "{}", text(&out));
            self.mounted = false;
        }
    }
}

impl Drop for SharedMount {
    fn drop(&mut self) {
        if self.mounted {
            let d = self.dir.display().to_string();
            let _ = Command::new("umount").args(["-l", &d]).output();
        }
    }
}

/// EFS through the containerised emulator: a task on the instance in us-east-1a writes a file
/// into the shared file system, the host sees it on the backing store, and a task on the
/// instance in us-east-1b reads it (each instance its own FUSE mount, made inside the container
/// and propagated to the host, where Docker binds it into the task's container).
async fn efs_volume_shared_by_two_tasks(port: u16, data: &Path, project: &Project) {
    let emu = sdk_tests::Emulator::attach(port, data);
    let s = crate::efs_tasks::setup_on(emu, "compose-efs", &["us-east-1a", "us-east-1b"]).await;
    let writer = s
        .task_definition(
            "compose-efs-writer",
            "echo hello-from-compose > /mnt/efs/shared.txt",
            s.plain(),
            false,
        )
        .await;
    let reader = s
        .task_definition(
            "compose-efs-reader",
            "test \"$(cat /mnt/efs/shared.txt)\" = hello-from-compose",
            s.plain(),
            true,
        )
        .await;
    let t = s.run_on(&writer, &s.a).await;
    assert_eq!(
        crate::efs_tasks::exit_code(&t),
        Some(0),
        "writer: {t:?}\n{}",
        project.logs()
    );
    assert_eq!(
        std::fs::read_to_string(s.backing().join("shared.txt")).unwrap_or_default(),
        "hello-from-compose\n",
        "the file on the backing store"
    );
    let t = s.run_on(&reader, &s.b).await;
    assert_eq!(
        crate::efs_tasks::exit_code(&t),
        Some(0),
        "reader: {t:?}\n{}",
        project.logs()
    );
    let mounts = crate::efs_tasks::efs_mounts(data);
    assert_eq!(
        mounts.len(),
        2,
        "one mount per instance, seen on the host: {mounts:?}"
    );
}

/// POST /_emulator/reset on the containerised emulator; must answer 200.
fn reset(port: u16) {
    let reset = sdk_tests::http(port, "POST", "/_emulator/reset", &[], b"");
    assert_eq!(reset.status, 200, "{}", reset.text());
}

#[tokio::test(flavor = "multi_thread")]
async fn compose_up_serves_the_aws_apis_and_down_leaves_nothing() {
    let images = workspace_dir().join("fixtures/build-images.sh");
    let out = run("build the test images", Command::new("bash").arg(&images));
    assert!(out.status.success(), "{}", text(&out));
    // An emulator on the host too, alive for the whole test: the two share 169.254.170.2 through
    // the peers directory.
    let _host = sdk_tests::Emulator::start();
    let binary: PathBuf = sdk_tests::binary();
    assert!(
        binary.is_file(),
        "build the emulator first: {}",
        binary.display()
    );
    let id = std::process::id();
    let image = format!("ecs-emulator-test/emulator:compose-{id}");
    let context = tempfile::Builder::new()
        .prefix("ecs-emulator-image-")
        .tempdir()
        .expect("a context directory");
    let data = tempfile::Builder::new()
        .prefix("ecs-emulator-data-")
        .tempdir()
        .expect("a data directory");
    let port = free_port();
    // Dropped after the project (declared before it): unmounted once the emulator is down.
    let mut shared = SharedMount::new(data.path());
    let mut project = Project {
        compose: compose_command(),
        name: format!("ecs-emulator-compose-test-{id}"),
        image: image.clone(),
        env: vec![
            ("ECS_EMULATOR_IMAGE".into(), image.clone()),
            ("ECS_EMULATOR_PORT".into(), port.to_string()),
            (
                "ECS_EMULATOR_DATA_DIR".into(),
                data.path().display().to_string(),
            ),
            ("ECS_EMULATOR_DATA_PROPAGATION".into(), "rshared".into()),
        ],
        down: false,
    };

    // The image, from the binary under test, with nothing pulled.
    let script = workspace_dir().join("fixtures/build-emulator-image.sh");
    let bin = binary.display().to_string();
    let out = run(
        "build the image",
        bounded(180, "bash", &[&script.display().to_string(), &bin, &image])
            .env("EMULATOR_IMAGE_CONTEXT", context.path().join("ctx")),
    );
    assert!(out.status.success(), "image build failed:\n{}", text(&out));
    // FROM scratch: one layer, the binary and the libraries ldd lists.
    let out = Command::new("docker")
        .args([
            "image",
            "inspect",
            "--format",
            "{{len .RootFS.Layers}}",
            &image,
        ])
        .output()
        .expect("docker");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "1",
        "{}",
        text(&out)
    );

    let out = run("up", &mut project.command(120, &["up", "-d"]));
    assert!(out.status.success(), "compose up failed:\n{}", text(&out));

    // Ready: the AWS CLI gets an answer (bounded; the container prints its ready line at once).
    let started = Instant::now();
    let created = loop {
        let out = aws(
            port,
            &["ecs", "create-cluster", "--cluster-name", "compose"],
        );
        if out.status.success() {
            break out;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the emulator in the container never answered on port {port}:\n{}\n{}",
            text(&out),
            project.logs()
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    assert!(
        String::from_utf8_lossy(&created.stdout)
            .contains("arn:aws:ecs:us-east-1:000000000000:cluster/compose"),
        "{}",
        text(&created)
    );
    let out = aws(port, &["ecs", "list-clusters"]);
    assert!(out.status.success(), "{}", text(&out));
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(
        listed["clusterArns"],
        serde_json::json!(["arn:aws:ecs:us-east-1:000000000000:cluster/compose"]),
        "{listed}"
    );
    // The settings reached it: its state is in the data directory given through compose.yaml.
    let logs = project.logs();
    assert!(
        logs.contains(&format!("ready on http://127.0.0.1:{port}")),
        "{logs}"
    );
    assert!(
        std::fs::read_dir(data.path())
            .map(|d| d.count())
            .unwrap_or(0)
            > 0,
        "nothing written to {}; {logs}",
        data.path().display()
    );

    // The sdk-tests harness, attached to the containerised emulator (its clients, no process).
    let emu = sdk_tests::Emulator::attach(port, data.path());
    let task = task_reads_its_metadata(&emu, &project).await;
    assert_eq!(task["Family"], "compose-probe", "{task}");
    // An ALB listener port and a service task behind it, both the containerised emulator's.
    alb_serves_a_service_task(&emu, &project).await;
    // Its task containers go with a reset (as every test's emulator does on drop).
    reset(port);
    // A subset of the sdk-tests, each on a freshly reset emulator: the containerised emulator
    // answers them as the binary does.
    crate::ecs::create_list_describe_delete_cluster_on(&emu).await;
    reset(port);
    crate::ecs_api::cluster_settings_capacity_providers_and_tags_on(&emu).await;
    reset(port);
    crate::ecs_api::ecs_refuses_with_aws_messages_on(&emu).await;
    reset(port);
    crate::elbv2::api_errors_and_shapes_on(&emu).await;
    reset(port);
    crate::logs::log_group_stream_put_and_get_events_on(&emu).await;
    reset(port);
    crate::efs_api::efs_file_system_lifecycle_idempotency_and_size_on(&emu).await;
    reset(port);
    efs_volume_shared_by_two_tasks(port, data.path(), &project).await;
    reset(port);

    let out = run("down", &mut project.command(60, &["down", "-v"]));
    assert!(out.status.success(), "compose down failed:\n{}", text(&out));
    project.down = true;
    let label = format!("com.docker.compose.project={}", project.name);
    for kind in ["container", "network", "volume"] {
        let left = docker_ids(kind, &label);
        assert!(left.is_empty(), "{kind}s left after down -v: {left:?}");
    }
    shared.unmount();
    let left = mounts_under(data.path());
    assert!(
        left.is_empty(),
        "mounts left under the data directory: {left:?}"
    );
    // The port is free again.
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "something still listens on {port}"
    );
}
