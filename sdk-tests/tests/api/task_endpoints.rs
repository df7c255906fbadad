//! The task metadata (v4) and task-role credentials endpoints, read from inside a real task
//! container at http://169.254.170.2 as the AWS SDKs do, and the credentials used against STS.

use aws_sdk_ecs::types::{ContainerDefinition, NetworkMode};
use sdk_tests::Emulator;
use std::process::Command;
use std::time::{Duration, Instant};

/// Serializes the tests that read 169.254.170.2 across test processes (other emulators on the
/// machine answer there too and forward to their peers, so this is belt and braces): an
/// exclusively created marker file holding the owner's pid; a dead owner's marker is taken over.
struct FileLock(std::path::PathBuf);

impl FileLock {
    fn acquire() -> FileLock {
        let marker = std::env::temp_dir().join("ecs-emulator-task-endpoints-test.lock");
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let created = std::fs::OpenOptions::new()
                .create_new(true)
                .write(true)
                .open(&marker);
            if created.is_ok() {
                let _ = std::fs::write(&marker, std::process::id().to_string());
                return FileLock(marker);
            }
            let holder = std::fs::read_to_string(&marker).unwrap_or_default();
            let alive = holder
                .trim()
                .parse::<u32>()
                .is_ok_and(|pid| std::path::Path::new(&format!("/proc/{pid}")).exists());
            if (!alive && !holder.is_empty()) || Instant::now() > deadline {
                let _ = std::fs::remove_file(&marker);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn build_image() {
    let script = sdk_tests::workspace_dir().join("fixtures/build-images.sh");
    let out = Command::new("bash")
        .arg(&script)
        .output()
        .expect("run fixtures/build-images.sh");
    assert!(
        out.status.success(),
        "build-images.sh failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

use sdk_tests::docker_logs;

#[tokio::test(flavor = "multi_thread")]
async fn container_reads_metadata_and_task_role_credentials() {
    build_image();
    let _lock = FileLock::acquire();
    let emu = Emulator::start();
    let ecs = emu.ecs();
    let iam = emu.iam();

    ecs.create_cluster()
        .cluster_name("te")
        .send()
        .await
        .expect("create cluster");
    ecs.register_container_instance()
        .cluster("te")
        .instance_identity_document(
            r#"{"instanceType":"t3.medium","availabilityZone":"us-east-1a"}"#,
        )
        .send()
        .await
        .expect("register container instance");
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    let role = iam
        .create_role()
        .role_name("te-task-role")
        .assume_role_policy_document(trust)
        .send()
        .await
        .expect("create role")
        .role
        .expect("role");
    let role_arn = role.arn().to_string();

    let script = "for i in 1 2 3 4 5; do wget -qO- $ECS_CONTAINER_METADATA_URI_V4/task && break; sleep 1; done; echo; \
                  for i in 1 2 3 4 5; do wget -qO- http://169.254.170.2$AWS_CONTAINER_CREDENTIALS_RELATIVE_URI && break; sleep 1; done; echo; sleep 30";
    ecs.register_task_definition()
        .family("te-family")
        .network_mode(NetworkMode::Bridge)
        .task_role_arn(&role_arn)
        .container_definitions(
            ContainerDefinition::builder()
                .name("probe")
                .image("ecs-emulator-test/busybox:latest")
                .memory(64)
                .essential(true)
                .command("sh")
                .command("-c")
                .command(script)
                .build(),
        )
        .send()
        .await
        .expect("register task definition");
    let run = ecs
        .run_task()
        .cluster("te")
        .task_definition("te-family")
        .send()
        .await
        .expect("run task");
    let task_arn = run.tasks()[0].task_arn().expect("task arn").to_string();

    // RUNNING, with the container's Docker id.
    let deadline = Instant::now() + Duration::from_secs(60);
    let runtime_id = loop {
        let d = ecs
            .describe_tasks()
            .cluster("te")
            .tasks(&task_arn)
            .send()
            .await
            .expect("describe tasks");
        let t = &d.tasks()[0];
        if t.last_status() == Some("RUNNING") {
            if let Some(id) = t.containers()[0].runtime_id() {
                break id.to_string();
            }
        }
        assert!(
            t.last_status() != Some("STOPPED"),
            "task stopped: {:?}; log:\n{}",
            t.stopped_reason(),
            emu.log()
        );
        assert!(Instant::now() < deadline, "task not RUNNING: {t:?}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    };

    // The container prints the task JSON, then the credentials JSON.
    let deadline = Instant::now() + Duration::from_secs(30);
    let (task_json, creds) = loop {
        let logs = docker_logs(&runtime_id);
        let docs: Vec<serde_json::Value> = logs
            .lines()
            .filter_map(|l| serde_json::from_str(l.trim()).ok())
            .collect();
        if docs.len() >= 2 {
            break (docs[0].clone(), docs[1].clone());
        }
        assert!(
            Instant::now() < deadline,
            "container output: {logs}\nemulator log:\n{}",
            emu.log()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };

    assert_eq!(task_json["TaskARN"], task_arn.as_str(), "{task_json}");
    assert_eq!(task_json["Family"], "te-family");
    assert_eq!(task_json["Revision"], "1");
    // The container may read the task before the agent has recorded it RUNNING.
    assert!(
        matches!(
            task_json["KnownStatus"].as_str(),
            Some("PENDING" | "RUNNING")
        ),
        "{task_json}"
    );
    assert_eq!(task_json["LaunchType"], "EC2");
    let c = &task_json["Containers"][0];
    assert_eq!(c["Name"], "probe");
    assert_eq!(c["DockerId"], runtime_id.as_str());
    assert_eq!(c["Type"], "NORMAL");
    assert_eq!(c["Networks"][0]["NetworkMode"], "bridge");
    assert!(
        c["Networks"][0]["IPv4Addresses"][0].is_string(),
        "{task_json}"
    );

    assert_eq!(creds["RoleArn"], role_arn.as_str(), "{creds}");
    let key = creds["AccessKeyId"].as_str().expect("AccessKeyId");
    assert!(key.starts_with("ASIA"), "{creds}");
    let secret = creds["SecretAccessKey"].as_str().expect("SecretAccessKey");
    let token = creds["Token"].as_str().expect("Token");
    assert!(creds["Expiration"].is_string());

    // The credentials work against the emulated APIs, as the assumed role.
    let sts = emu.sts_with(key, secret, |b| {
        b.credentials_provider(aws_sdk_sts::config::Credentials::new(
            key,
            secret,
            Some(token.to_string()),
            None,
            "task-role",
        ))
    });
    let me = sts
        .get_caller_identity()
        .send()
        .await
        .expect("GetCallerIdentity with the task role's credentials");
    let task_id = task_arn.rsplit('/').next().unwrap_or_default();
    assert_eq!(
        me.arn(),
        Some(format!("arn:aws:sts::000000000000:assumed-role/te-task-role/{task_id}").as_str())
    );

    // A caller outside the task (this test, on the host) is refused the credentials; unknown ids
    // are not found. Through 169.254.170.2 whichever emulator holds it.
    let rel = format!("/v2/credentials/{}", {
        // The id is the last path segment of the RELATIVE_URI the container used; read it back
        // from the container's environment.
        let out = Command::new("docker")
            .args([
                "inspect",
                "--format",
                "{{range .Config.Env}}{{println .}}{{end}}",
                &runtime_id,
            ])
            .output()
            .expect("docker inspect");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find_map(|l| l.strip_prefix("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI=/v2/credentials/"))
            .map(str::to_string)
            .expect("RELATIVE_URI in the container's environment")
    });
    let denied = get_link_local(&rel);
    assert!(denied.starts_with("HTTP/1.1 403"), "{denied}");
    let unknown = get_link_local("/v2/credentials/no-such-task");
    assert!(unknown.starts_with("HTTP/1.1 400"), "{unknown}");

    let _ = ecs.stop_task().cluster("te").task(&task_arn).send().await;
}

/// GET http://169.254.170.2<path> from the host; the raw response. The emulators of concurrent
/// tests share the address: when the one holding it stops, another takes it within a second
/// (task_endpoints/listen.rs), so a refused connection is tried again for a while.
fn get_link_local(path: &str) -> String {
    use std::io::{Read, Write};
    let addr = "169.254.170.2:80".parse().expect("addr");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut s = loop {
        match std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5)) {
            Ok(s) => break s,
            Err(e)
                if e.kind() == std::io::ErrorKind::ConnectionRefused
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => panic!("connect to 169.254.170.2:80: {e:?}"),
        }
    };
    s.set_read_timeout(Some(Duration::from_secs(20))).ok();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 169.254.170.2\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

/// The loopback listener other emulators forward task-endpoint requests to gives nothing to a
/// host process that claims to speak for a task's container: it takes the per-boot secret in the
/// emulator's peer file, which is 0600 in a 0700 directory.
#[tokio::test(flavor = "multi_thread")]
async fn the_peer_listener_gives_task_credentials_only_to_peers() {
    use std::os::unix::fs::PermissionsExt;
    build_image();
    let emu = Emulator::start();
    let ecs = emu.ecs();
    ecs.create_cluster()
        .cluster_name("peer")
        .send()
        .await
        .expect("create cluster");
    ecs.register_container_instance()
        .cluster("peer")
        .instance_identity_document(
            r#"{"instanceType":"t3.medium","availabilityZone":"us-east-1a"}"#,
        )
        .send()
        .await
        .expect("register container instance");
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    let role_arn = emu
        .iam()
        .create_role()
        .role_name("peer-task-role")
        .assume_role_policy_document(trust)
        .send()
        .await
        .expect("create role")
        .role
        .expect("role")
        .arn()
        .to_string();
    ecs.register_task_definition()
        .family("peer-family")
        .network_mode(NetworkMode::Bridge)
        .task_role_arn(&role_arn)
        .container_definitions(
            ContainerDefinition::builder()
                .name("sleeper")
                .image("ecs-emulator-test/busybox:latest")
                .memory(32)
                .essential(true)
                .command("sleep")
                .command("60")
                .build(),
        )
        .send()
        .await
        .expect("register task definition");
    let run = ecs
        .run_task()
        .cluster("peer")
        .task_definition("peer-family")
        .send()
        .await
        .expect("run task");
    let task_arn = run.tasks()[0].task_arn().expect("task arn").to_string();
    let deadline = Instant::now() + Duration::from_secs(60);
    let runtime_id = loop {
        let d = ecs
            .describe_tasks()
            .cluster("peer")
            .tasks(&task_arn)
            .send()
            .await
            .expect("describe tasks");
        let t = &d.tasks()[0];
        if t.last_status() == Some("RUNNING") {
            if let Some(id) = t.containers()[0].runtime_id() {
                break id.to_string();
            }
        }
        assert!(t.last_status() != Some("STOPPED"), "task stopped: {t:?}");
        assert!(Instant::now() < deadline, "task not RUNNING: {t:?}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let inspect = |format: &str| {
        let out = Command::new("docker")
            .args(["inspect", "--format", format, &runtime_id])
            .output()
            .expect("docker inspect");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let endpoint_id = inspect("{{range .Config.Env}}{{println .}}{{end}}")
        .lines()
        .find_map(|l| l.strip_prefix("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI=/v2/credentials/"))
        .map(str::to_string)
        .expect("RELATIVE_URI in the container's environment");
    let container_ip = inspect("{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}")
        .split_whitespace()
        .next()
        .expect("the container's address")
        .to_string();

    // The emulator's peer file: its loopback listener (and secret), private to this user.
    let dir = std::env::temp_dir()
        .join("ecs-emulator-task-endpoints")
        .join("169.254.170.2");
    let file = dir.join(emu.pid().expect("pid").to_string());
    let text = std::fs::read_to_string(&file).expect("the emulator's peer file");
    let port: u16 = text
        .lines()
        .next()
        .and_then(|a| a.trim().parse::<std::net::SocketAddr>().ok())
        .map(|a| a.port())
        .expect("the loopback listener's address");
    let path = format!("/v2/credentials/{endpoint_id}");
    let source = ("x-ecs-emulator-source-ip", container_ip.as_str());

    // A local process claiming the container's address: refused, with or without a made-up token.
    let r = sdk_tests::http(port, "GET", &path, &[source], b"");
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(!r.text().contains("SecretAccessKey"), "{}", r.text());
    let forged = ("x-ecs-emulator-forward-token", "0123456789abcdef");
    let r = sdk_tests::http(port, "GET", &path, &[source, forged], b"");
    assert_eq!(r.status, 403, "{}", r.text());

    // A peer emulator (which can read the file) is answered.
    let secret = text.lines().nth(1).expect("the secret").trim().to_string();
    let token = ("x-ecs-emulator-forward-token", secret.as_str());
    let r = sdk_tests::http(port, "GET", &path, &[source, token], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["RoleArn"], role_arn.as_str());

    let mode =
        |p: &std::path::Path| std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777;
    assert_eq!(mode(&file), 0o600, "{}", file.display());
    assert_eq!(mode(&dir), 0o700, "{}", dir.display());
    assert_eq!(mode(dir.parent().expect("parent")), 0o700);

    let _ = ecs.stop_task().cluster("peer").task(&task_arn).send().await;
}
