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

/// A running emulator process. Killed (SIGKILL) when dropped.
pub struct Emulator {
    child: Option<Child>,
    port: u16,
    args: Vec<String>,
    data: tempfile::TempDir,
    logs: tempfile::TempDir,
    starts: u32,
}

impl Emulator {
    /// Starts the emulator with the default flags (durable state in a fresh data directory).
    pub fn start() -> Emulator {
        Emulator::start_with(&[])
    }

    /// Starts the emulator with extra flags (`--strict-auth`, `--ephemeral`, …).
    pub fn start_with(args: &[&str]) -> Emulator {
        let data = tempfile::Builder::new()
            .prefix("ecs-emulator-data-")
            .tempdir()
            .expect("create a data directory");
        let logs = tempfile::Builder::new()
            .prefix("ecs-emulator-logs-")
            .tempdir()
            .expect("create a log directory");
        let mut emulator = Emulator {
            child: None,
            port: 0,
            args: args.iter().map(|s| s.to_string()).collect(),
            data,
            logs,
            starts: 0,
        };
        emulator.spawn();
        emulator
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
            .env("ECS_EMULATOR_LOG_LEVEL", "info")
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
        self.data.path()
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

    /// Kills the process (SIGKILL) if it runs, then starts it again on the same data directory and
    /// flags. The port changes.
    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }

    /// An HTTP client for the SDKs: plain HTTP, no TLS.
    pub fn http_client(&self) -> aws_sdk_ecs::config::SharedHttpClient {
        aws_smithy_http_client::Builder::new().build_http()
    }

    /// A raw HTTP request to the emulator (see [`http`]).
    pub fn raw(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> RawResponse {
        http(self.port, method, path, headers, body)
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        // Remove the containers this emulator started (a reset does), so tests leave no
        // running containers behind; then stop it.
        if self.pid().is_some() {
            let port = self.port;
            let _ =
                std::panic::catch_unwind(move || http(port, "POST", "/_emulator/reset", &[], b""));
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
