//! Helpers for the integration tests: spawn the real `ecs-emulator` binary.
//!
//! Every [`Emulator`] binds its own port (`--listen 127.0.0.1:0`) and owns its own data directory, so
//! tests run in parallel without sharing state. The binary is found through `ECS_EMULATOR_BIN`, else
//! `$CARGO_TARGET_DIR/debug/ecs-emulator`, else `<workspace>/target/debug/ecs-emulator`; build it first
//! (`cargo build -p ecs-emulator && cargo nextest run --workspace`).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub use aws_smithy_http_client;

/// How long the emulator may take to print its ready line.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// The access key and secret every client signs with unless a test says otherwise.
pub const ACCESS_KEY: &str = "test";
pub const SECRET_KEY: &str = "test";
pub const REGION: &str = "us-east-1";
pub const ACCOUNT: &str = "000000000000";

/// The emulator binary the tests run.
pub fn binary() -> PathBuf {
    if let Some(p) = std::env::var_os("ECS_EMULATOR_BIN").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let target = match std::env::var_os("CARGO_TARGET_DIR").filter(|p| !p.is_empty()) {
        Some(t) => {
            let t = PathBuf::from(t);
            if t.is_absolute() {
                t
            } else {
                workspace_dir().join(t)
            }
        }
        None => workspace_dir().join("target"),
    };
    target.join("debug").join("ecs-emulator")
}

/// The workspace root (the parent of this crate).
pub fn workspace_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

/// This crate's directory (for sdk-tests/python/…).
pub fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A container's output as `docker logs` prints it: stdout, then stderr.
pub fn docker_logs(id: &str) -> String {
    let out = Command::new("docker")
        .args(["logs", id])
        .output()
        .expect("docker logs");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs `sdk-tests/python/<script> <endpoint>` (boto3 and the AWS CLI against `emu`) and fails
/// the test unless it exits 0 and prints `ok_line`. Exit code 3 means the Python tooling is
/// missing: the test fails (never skips) and says to run .ci/run.
pub fn run_python(emu: &Emulator, script: &str, ok_line: &str) {
    let out = Command::new("python3")
        .arg(crate_dir().join("python").join(script))
        .arg(emu.endpoint())
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ENDPOINT_URL")
        .output()
        .unwrap_or_else(|e| {
            panic!("python3 is not available ({e}): run .ci/run to install python3, boto3 and the AWS CLI")
        });
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.code() == Some(3) {
        panic!("the Python tooling is missing: run .ci/run to install it\n{stderr}");
    }
    assert!(
        out.status.success() && stdout.contains(ok_line),
        "{script} failed ({}):\n{stdout}\n{stderr}\nemulator log:\n{}",
        out.status,
        emu.log()
    );
}

/// A running emulator process. Killed (SIGKILL) when dropped.
pub struct Emulator {
    child: Option<Child>,
    port: u16,
    args: Vec<String>,
    data: tempfile::TempDir,
    logs: tempfile::TempDir,
    starts: u32,
    admin_token: Option<String>,
    /// Extra environment variables of the process (e.g. DOCKER_HOST).
    env: Vec<(String, String)>,
    /// The data directory of an emulator this harness did not start (`attach`).
    attached_data: Option<PathBuf>,
}

impl Emulator {
    /// Starts the emulator with the default flags (durable state in a fresh data directory).
    pub fn start() -> Emulator {
        Emulator::start_with(&[])
    }

    /// Starts the emulator on a copy of the data directory `data` (its files), with extra flags:
    /// for data dirs written by an earlier version.
    pub fn start_from(data: &Path, args: &[&str]) -> Emulator {
        let dir = tempfile::Builder::new()
            .prefix("ecs-emulator-data-")
            .tempdir()
            .expect("create a data directory");
        let entries = std::fs::read_dir(data)
            .unwrap_or_else(|e| panic!("read the data directory {}: {e}", data.display()));
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_file()) {
                std::fs::copy(entry.path(), dir.path().join(entry.file_name()))
                    .unwrap_or_else(|e| panic!("copy {}: {e}", entry.path().display()));
            }
        }
        Emulator::start_in(dir, args)
    }

    /// Starts the emulator with extra flags (`--strict-auth`, `--ephemeral`, …).
    pub fn start_with(args: &[&str]) -> Emulator {
        let data = tempfile::Builder::new()
            .prefix("ecs-emulator-data-")
            .tempdir()
            .expect("create a data directory");
        Emulator::start_in(data, args)
    }

    /// Starts the emulator on the data directory `data` (created by the test, e.g. on a small
    /// tmpfs), with extra flags.
    pub fn start_in(data: tempfile::TempDir, args: &[&str]) -> Emulator {
        Emulator::start_in_with_env(data, args, &[])
    }

    /// Starts the emulator with extra flags and environment variables (`DOCKER_HOST` pointing
    /// at a proxy the test controls, …).
    pub fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> Emulator {
        let data = tempfile::Builder::new()
            .prefix("ecs-emulator-data-")
            .tempdir()
            .expect("create a data directory");
        Emulator::start_in_with_env(data, args, env)
    }

    fn start_in_with_env(data: tempfile::TempDir, args: &[&str], env: &[(&str, &str)]) -> Emulator {
        let logs = tempfile::Builder::new()
            .prefix("ecs-emulator-logs-")
            .tempdir()
            .expect("create a log directory");
        let mut args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        // Under --strict-auth the control API takes a token: give one, so that raw() and the
        // reset on drop can use it.
        let given = args
            .iter()
            .position(|a| a == "--admin-token")
            .and_then(|i| args.get(i + 1).cloned());
        let admin_token = match given {
            Some(t) => Some(t),
            None if args.iter().any(|a| a == "--strict-auth") => {
                let t = format!("test-admin-{}", std::process::id());
                args.extend(["--admin-token".to_string(), t.clone()]);
                Some(t)
            }
            None => None,
        };
        let mut emulator = Emulator {
            child: None,
            port: 0,
            args,
            data,
            logs,
            starts: 0,
            admin_token,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            attached_data: None,
        };
        emulator.spawn();
        emulator
    }

    /// An emulator started elsewhere (a container of compose.yaml) on 127.0.0.1:`port`, with its
    /// data directory at `data_dir` on this machine: the same clients and helpers, but it is
    /// neither reset nor stopped when dropped, and cannot be restarted. Its log is empty.
    pub fn attach(port: u16, data_dir: &Path) -> Emulator {
        let temp = |prefix: &str| {
            tempfile::Builder::new()
                .prefix(prefix)
                .tempdir()
                .expect("create a directory")
        };
        Emulator {
            child: None,
            port,
            args: Vec::new(),
            data: temp("ecs-emulator-data-"),
            logs: temp("ecs-emulator-logs-"),
            starts: 0,
            admin_token: None,
            env: Vec::new(),
            attached_data: Some(data_dir.to_path_buf()),
        }
    }

    fn spawn(&mut self) {
        let bin = binary();
        assert!(
            bin.is_file(),
            "the emulator binary {} does not exist: run `cargo build -p ecs-emulator` first \
             (or set ECS_EMULATOR_BIN)",
            bin.display()
        );
        self.starts += 1;
        let log_path = self.log_path();
        let log = std::fs::File::create(&log_path).expect("create the log file");
        let mut child = Command::new(&bin)
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(self.data.path())
            .args(&self.args)
            .env_remove("ECS_EMULATOR_LISTEN")
            .env_remove("ECS_EMULATOR_DATA_DIR")
            .env_remove("ECS_EMULATOR_EPHEMERAL")
            .env_remove("ECS_EMULATOR_STRICT_AUTH")
            .env_remove("ECS_EMULATOR_AUTH_KEYS")
            .env_remove("ECS_EMULATOR_ADMIN_TOKEN")
            .env("ECS_EMULATOR_LOG_LEVEL", "info")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin.display()));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel::<String>();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(line)) = lines.next() {
                let _ = tx.send(line);
            }
            // Keep draining so the child never blocks on a full pipe.
            for _ in lines {}
        });
        let line = match rx.recv_timeout(READY_TIMEOUT) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "the emulator did not print its ready line within {READY_TIMEOUT:?}; log:\n{}",
                    read_log(&log_path)
                );
            }
        };
        let prefix = "ecs-emulator ready on http://127.0.0.1:";
        let port = line
            .strip_prefix(prefix)
            .and_then(|p| p.trim().parse::<u16>().ok())
            .unwrap_or_else(|| {
                let _ = child.kill();
                panic!(
                    "unexpected ready line {line:?}; log:\n{}",
                    read_log(&log_path)
                )
            });
        self.port = port;
        self.child = Some(child);
    }

    fn log_path(&self) -> PathBuf {
        self.logs
            .path()
            .join(format!("emulator-{}.log", self.starts))
    }

    /// The emulator's stderr so far (for assertion messages).
    pub fn log(&self) -> String {
        read_log(&self.log_path())
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn data_dir(&self) -> &Path {
        self.attached_data.as_deref().unwrap_or(self.data.path())
    }

    /// The process id of the running emulator.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGKILL, no graceful shutdown; waits for the process to be gone.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            // std's Child::kill sends SIGKILL on Unix.
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends SIGTERM and waits (at most `limit`) for the process to exit: its exit status and how
    /// long it took, or None when it was still running at `limit` (it is killed then).
    pub fn terminate(&mut self, limit: Duration) -> Option<(std::process::ExitStatus, Duration)> {
        let mut child = self.child.take()?;
        let started = std::time::Instant::now();
        let sent = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -TERM failed");
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Some((status, started.elapsed()));
            }
            if started.elapsed() > limit {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the process (SIGKILL) if it runs, then starts it again on the same data directory and
    /// flags (after [`Emulator::terminate`] too). The port changes.
    pub fn restart(&mut self) {
        assert!(
            self.attached_data.is_none(),
            "an attached emulator cannot be restarted"
        );
        self.kill9();
        self.spawn();
    }

    /// An HTTP client for the SDKs: plain HTTP, no TLS.
    pub fn http_client(&self) -> aws_sdk_ecs::config::SharedHttpClient {
        aws_smithy_http_client::Builder::new().build_http()
    }

    /// The admin token the control API takes (under --strict-auth, or --admin-token).
    pub fn admin_token(&self) -> Option<&str> {
        self.admin_token.as_deref()
    }

    /// A raw HTTP request to the emulator (see [`http`]). Requests to /_emulator/* carry the
    /// admin token, when there is one, unless `headers` has an Authorization of its own.
    pub fn raw(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> RawResponse {
        let bearer = self.admin_token.as_ref().map(|t| format!("Bearer {t}"));
        let mut all: Vec<(&str, &str)> = headers.to_vec();
        if let Some(b) = bearer.as_deref() {
            let has_auth = headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("authorization"));
            if path.starts_with("/_emulator") && !has_auth {
                all.push(("Authorization", b));
            }
        }
        http(self.port, method, path, &all, body)
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        // Remove the containers this emulator started (a reset does), so tests leave no
        // running containers behind; then stop it.
        if self.pid().is_some() {
            let port = self.port;
            let bearer = self.admin_token.as_ref().map(|t| format!("Bearer {t}"));
            let _ = std::panic::catch_unwind(move || {
                let headers: Vec<(&str, &str)> = bearer
                    .as_deref()
                    .map(|b| vec![("Authorization", b)])
                    .unwrap_or_default();
                http(port, "POST", "/_emulator/reset", &headers, b"")
            });
        }
        self.kill9();
    }
}

fn read_log(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let tail: Vec<&str> = text.lines().rev().take(40).collect();
    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
}

macro_rules! client_ctor {
    ($(#[$doc:meta])* $name:ident, $with:ident, $krate:ident) => {
        impl Emulator {
            $(#[$doc])*
            pub fn $name(&self) -> $krate::Client {
                self.$with(ACCESS_KEY, SECRET_KEY, |b| b)
            }

            /// The same client signing with other credentials, its config adjustable by `tweak`.
            pub fn $with(
                &self,
                access_key: &str,
                secret_key: &str,
                tweak: impl FnOnce($krate::config::Builder) -> $krate::config::Builder,
            ) -> $krate::Client {
                let builder = $krate::config::Builder::new()
                    .behavior_version($krate::config::BehaviorVersion::latest())
                    .http_client(self.http_client())
                    .endpoint_url(self.endpoint())
                    .region($krate::config::Region::new(REGION))
                    .credentials_provider($krate::config::Credentials::new(
                        access_key.to_string(),
                        secret_key.to_string(),
                        None,
                        None,
                        "test",
                    ));
                $krate::Client::from_conf(tweak(builder).build())
            }
        }
    };
}

pub use aws_sdk_applicationautoscaling;
pub use aws_sdk_autoscaling;
pub use aws_sdk_cloudwatch;
pub use aws_sdk_cloudwatchlogs;
pub use aws_sdk_ec2;
pub use aws_sdk_ecr;
pub use aws_sdk_ecs;
pub use aws_sdk_efs;
pub use aws_sdk_elasticloadbalancing;
pub use aws_sdk_elasticloadbalancingv2;
pub use aws_sdk_iam;
pub use aws_sdk_servicediscovery;
pub use aws_sdk_ssm;
pub use aws_sdk_sts;

client_ctor!(/// Amazon ECS (awsJson 1.1).
    ecs, ecs_with, aws_sdk_ecs);
client_ctor!(/// Amazon ECR (awsJson 1.1).
    ecr, ecr_with, aws_sdk_ecr);
client_ctor!(/// Classic Elastic Load Balancing (query).
    elb, elb_with, aws_sdk_elasticloadbalancing);
client_ctor!(/// ELBv2 (query).
    elbv2, elbv2_with, aws_sdk_elasticloadbalancingv2);
client_ctor!(/// EC2 Auto Scaling (query).
    autoscaling, autoscaling_with, aws_sdk_autoscaling);
client_ctor!(/// Application Auto Scaling (awsJson 1.1).
    appautoscaling, appautoscaling_with, aws_sdk_applicationautoscaling);
client_ctor!(/// CloudWatch (rpcv2-cbor in aws-sdk-rust).
    cloudwatch, cloudwatch_with, aws_sdk_cloudwatch);
client_ctor!(/// EFS (rest-json).
    efs, efs_with, aws_sdk_efs);
client_ctor!(/// CloudWatch Logs (awsJson 1.1).
    logs, logs_with, aws_sdk_cloudwatchlogs);
client_ctor!(/// Cloud Map.
    servicediscovery, servicediscovery_with, aws_sdk_servicediscovery);
client_ctor!(/// EC2 (ec2 query).
    ec2, ec2_with, aws_sdk_ec2);
client_ctor!(/// STS (query).
    sts, sts_with, aws_sdk_sts);
client_ctor!(/// IAM (query).
    iam, iam_with, aws_sdk_iam);
client_ctor!(/// SSM (awsJson 1.1).
    ssm, ssm_with, aws_sdk_ssm);

/// A response read by [`http`].
#[derive(Debug, Clone)]
pub struct RawResponse {
    pub status: u16,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("response body is not JSON ({e}): {}", self.text()))
    }
}

/// One HTTP/1.1 request over a fresh TCP connection (`Connection: close`), unsigned. Adds Host and
/// Content-Length. Handles Content-Length, chunked and read-to-close bodies.
pub fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> RawResponse {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to the emulator");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("set a read timeout");
    let mut req =
        format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    stream.write_all(req.as_bytes()).expect("send the request");
    stream.write_all(body).expect("send the body");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read the response");
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> RawResponse {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(raw)));
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut rest = raw[split + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.to_ascii_lowercase().contains("chunked"));
    if chunked {
        rest = dechunk(&rest);
    } else if let Some(len) = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
    {
        rest.truncate(len);
    }
    RawResponse {
        status,
        headers,
        body: rest,
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = data.windows(2).position(|w| w == b"\r\n") {
        let size_text = String::from_utf8_lossy(&data[..eol]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("0").trim(), 16)
            .unwrap_or(0);
        data = &data[eol + 2..];
        if size == 0 || data.len() < size {
            break;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[(size + 2).min(data.len())..];
    }
    out
}

/// Whether the emulator implements `service`'s `operation`, per its own operations list
/// (`ecs-emulator operations`, the generated docs/operations.md). Tests of operations other agents
/// are still building use it to check either the real behaviour or, until then, the protocol-correct
/// `NotImplemented` error.
pub fn implemented(service: &str, operation: &str) -> bool {
    static DOC: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let doc = DOC.get_or_init(|| {
        let out = Command::new(binary())
            .arg("operations")
            .arg("--ephemeral")
            .output()
            .unwrap_or_else(|e| panic!("cannot run {} operations: {e}", binary().display()));
        assert!(out.status.success(), "`ecs-emulator operations` failed");
        String::from_utf8_lossy(&out.stdout).into_owned()
    });
    let heading = format!("## {service} (");
    let Some(section) = doc
        .split("\n## ")
        .find(|s| format!("## {s}").starts_with(&heading))
    else {
        panic!("no section for {service} in `ecs-emulator operations`");
    };
    section
        .lines()
        .find(|l| l.starts_with("Implemented ("))
        .and_then(|l| l.split_once(": "))
        .is_some_and(|(_, ops)| ops.split(", ").any(|o| o.trim() == operation))
}

/// A plain HTTP/1.1 GET-style request to any local address (a task's published port); the body.
pub fn http_to(host: &str, port: u16, method: &str, path: &str) -> String {
    let mut stream = TcpStream::connect((host, port))
        .unwrap_or_else(|e| panic!("connect to {host}:{port}: {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("set a read timeout");
    let req =
        format!("{method} {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n");
    stream.write_all(req.as_bytes()).expect("send the request");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read the response");
    String::from_utf8_lossy(&parse_response(&raw).body).into_owned()
}

/// Polls `check` every 200 ms until it gives a value; panics after `secs` seconds naming `what`.
pub async fn eventually<T, F, Fut>(secs: u64, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out after {secs} s waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Runs the emulator binary as a client command against `emulator` (`--endpoint` set), e.g.
/// `cli(&emu, &["fault", "list"])`.
pub fn cli(emulator: &Emulator, args: &[&str]) -> std::process::Output {
    Command::new(binary())
        .args(args)
        .arg("--endpoint")
        .arg(emulator.endpoint())
        .env_remove("ECS_EMULATOR_ENDPOINT")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", binary().display()))
}

/// How [`sign`] and [`presign`] sign: the SDKs' own signer (aws-sigv4) with these inputs.
#[derive(Debug, Clone)]
pub struct Signing {
    pub service: String,
    pub region: String,
    pub time: std::time::SystemTime,
    pub access_key: String,
    pub secret_key: String,
}

impl Signing {
    /// test/test in us-east-1, now.
    pub fn new(service: &str) -> Signing {
        Signing {
            service: service.to_string(),
            region: REGION.to_string(),
            time: std::time::SystemTime::now(),
            access_key: ACCESS_KEY.to_string(),
            secret_key: SECRET_KEY.to_string(),
        }
    }

    fn settings_and_identity(
        &self,
    ) -> (
        aws_sigv4::http_request::SigningSettings,
        aws_smithy_runtime_api::client::identity::Identity,
    ) {
        let identity = aws_credential_types::Credentials::new(
            self.access_key.clone(),
            self.secret_key.clone(),
            None,
            None,
            "sdk-tests",
        )
        .into();
        (
            aws_sigv4::http_request::SigningSettings::default(),
            identity,
        )
    }
}

/// The headers (Authorization, X-Amz-Date) that sign a request to the emulator on `port` as an
/// SDK would: `headers` (the Host [`http`] sends is added) and `body` are covered.
pub fn sign(
    port: u16,
    method: &str,
    path_and_query: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    s: &Signing,
) -> Vec<(String, String)> {
    use aws_sigv4::http_request::{sign, SignableBody, SignableRequest};
    let (settings, identity) = s.settings_and_identity();
    let params: aws_sigv4::http_request::SigningParams =
        aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region(&s.region)
            .name(&s.service)
            .time(s.time)
            .settings(settings)
            .build()
            .expect("signing params")
            .into();
    let host = format!("127.0.0.1:{port}");
    let mut all: Vec<(&str, &str)> = vec![("host", host.as_str())];
    all.extend_from_slice(headers);
    let signable = SignableRequest::new(
        method,
        format!("http://{host}{path_and_query}"),
        all.into_iter(),
        SignableBody::Bytes(body),
    )
    .expect("signable request");
    let (instructions, _) = sign(signable, &params).expect("sign").into_parts();
    let (headers, _) = instructions.into_parts();
    headers
        .into_iter()
        .map(|h| (h.name().to_string(), h.value().to_string()))
        .collect()
}

/// A presigned `path_and_query` (GET, no body) valid for `expires` from `s.time`.
pub fn presign(port: u16, path_and_query: &str, expires: Duration, s: &Signing) -> String {
    use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SignatureLocation};
    let (mut settings, identity) = s.settings_and_identity();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(expires);
    let params: aws_sigv4::http_request::SigningParams =
        aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region(&s.region)
            .name(&s.service)
            .time(s.time)
            .settings(settings)
            .build()
            .expect("signing params")
            .into();
    let host = format!("127.0.0.1:{port}");
    let uri = format!("http://{host}{path_and_query}");
    let signable = SignableRequest::new(
        "GET",
        uri.clone(),
        [("host", host.as_str())].into_iter(),
        SignableBody::Bytes(b""),
    )
    .expect("signable request");
    let (instructions, _) = sign(signable, &params).expect("presign").into_parts();
    let (_, query) = instructions.into_parts();
    let mut out = path_and_query.to_string();
    for (k, v) in query {
        out.push(if out.contains('?') { '&' } else { '?' });
        out.push_str(&format!("{}={}", uri_encode(k), uri_encode(&v)));
    }
    out
}

/// Percent-encodes all but SigV4's unreserved characters.
fn uri_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The hex SHA-256 of a body (for x-amz-content-sha256).
pub fn sha256_hex(body: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(body))
}

/// The emulator's container image, built from [`binary`] by fixtures/build-emulator-image.sh
/// (FROM scratch, nothing pulled) under a tag of its own, and removed when dropped.
pub struct EmulatorImage {
    /// `ecs-emulator-test/emulator`
    pub name: String,
    /// Unique to this test process.
    pub tag: String,
    _context: tempfile::TempDir,
}

impl EmulatorImage {
    /// Builds `ecs-emulator-test/emulator:<what>-<pid>` (bounded: 180 s).
    pub fn build(what: &str) -> EmulatorImage {
        let bin = binary();
        assert!(bin.is_file(), "build the emulator first: {}", bin.display());
        let name = "ecs-emulator-test/emulator".to_string();
        let tag = format!("{what}-{}", std::process::id());
        let context = tempfile::Builder::new()
            .prefix("ecs-emulator-image-")
            .tempdir()
            .expect("a context directory");
        let out = Command::new("timeout")
            .arg("180s")
            .arg("bash")
            .arg(workspace_dir().join("fixtures/build-emulator-image.sh"))
            .arg(&bin)
            .arg(format!("{name}:{tag}"))
            .env("EMULATOR_IMAGE_CONTEXT", context.path().join("ctx"))
            .output()
            .expect("bash");
        let image = EmulatorImage {
            name,
            tag,
            _context: context,
        };
        assert!(
            out.status.success(),
            "image build failed ({}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        image
    }

    /// `name:tag`.
    pub fn reference(&self) -> String {
        format!("{}:{}", self.name, self.tag)
    }
}

impl Drop for EmulatorImage {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["rmi", "-f", &self.reference()])
            .output();
    }
}

/// Removes, when dropped, every container, network and volume carrying the emulator owner label
/// `ecs-emulator.owner=<owner>`: what a containerised emulator's tasks leave when a test fails
/// before its reset.
pub struct OwnerCleanup(pub Option<String>);

impl Drop for OwnerCleanup {
    fn drop(&mut self) {
        let Some(owner) = &self.0 else { return };
        let filter = format!("label=ecs-emulator.owner={owner}");
        let list = |args: &[&str]| -> Vec<String> {
            Command::new("docker")
                .args(args)
                .output()
                .map(|o| {
                    String::from_utf8_lossy(&o.stdout)
                        .lines()
                        .filter(|l| !l.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default()
        };
        for id in list(&["ps", "-aq", "--filter", &filter]) {
            let _ = Command::new("docker").args(["rm", "-f", &id]).output();
        }
        for id in list(&["network", "ls", "-q", "--filter", &filter]) {
            let _ = Command::new("docker").args(["network", "rm", &id]).output();
        }
        for id in list(&["volume", "ls", "-q", "--filter", &filter]) {
            let _ = Command::new("docker")
                .args(["volume", "rm", "-f", &id])
                .output();
        }
    }
}

/// Registers a t3.medium container instance (in us-east-1a) in `cluster` and runs one bridge task
/// of family `family` whose busybox container prints its task metadata (retrying for up to 10 s),
/// then sleeps `sleep_secs`; returns the task's ARN. The tests of the containerised emulator
/// (compose, testcontainers) use it to show that task endpoints work from there.
pub async fn run_metadata_probe(
    ecs: &aws_sdk_ecs::Client,
    cluster: &str,
    family: &str,
    sleep_secs: u32,
) -> String {
    use aws_sdk_ecs::types::{ContainerDefinition, NetworkMode};
    ecs.register_container_instance()
        .cluster(cluster)
        .instance_identity_document(
            r#"{"instanceType":"t3.medium","availabilityZone":"us-east-1a"}"#,
        )
        .send()
        .await
        .expect("register container instance");
    let script = format!(
        "for i in 1 2 3 4 5 6 7 8 9 10; do wget -qO- $ECS_CONTAINER_METADATA_URI_V4/task && break; sleep 1; done; echo; sleep {sleep_secs}"
    );
    ecs.register_task_definition()
        .family(family)
        .network_mode(NetworkMode::Bridge)
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
        .cluster(cluster)
        .task_definition(family)
        .send()
        .await
        .expect("run task");
    run.tasks()[0].task_arn().expect("task arn").to_string()
}
