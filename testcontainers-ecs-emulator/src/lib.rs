//! [testcontainers-rs] support for ecs-emulator: [`EcsEmulator`] is the emulator's container
//! image as an [`Image`], so a test starts its own emulator with one call and drops it after.
//!
//! The image is built on your machine from the emulator binary, with nothing pulled (`FROM
//! scratch`: the binary and the libraries it links), by the repository's fixture script:
//!
//! ```sh
//! cargo build --release -p ecs-emulator
//! bash fixtures/build-emulator-image.sh        # tags it ecs-emulator:latest, EcsEmulator's default
//! ```
//!
//! Then, in a test (docs/testcontainers.md has the whole walk-through, and the sdk-test
//! `testcontainers_rs` runs this code):
//!
//! ```no_run
//! use testcontainers_ecs_emulator::testcontainers::runners::AsyncRunner;
//! use testcontainers_ecs_emulator::{EcsEmulator, EcsEmulatorContainer};
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! // Port 4566 published on a free port of 127.0.0.1; task containers run on your Docker
//! // through the mounted socket. Ready once the emulator prints "ecs-emulator ready on".
//! let emulator = EcsEmulator::default().on_loopback().start().await?;
//! let endpoint = emulator.endpoint().await?; // http://127.0.0.1:<mapped port>
//! // aws-sdk-ecs (or any AWS SDK, the AWS CLI): endpoint_url(endpoint), any credentials.
//! // ...
//! // Task containers are not the emulator container's children: remove them before it goes.
//! emulator.reset().await?;
//! # Ok(())
//! # }
//! ```
//!
//! # Two ways to run it
//!
//! - **Bridge networking** (the default, [`EcsEmulator::on_loopback`] or plain
//!   `EcsEmulator::default().start()`): the emulator listens on 0.0.0.0:4566 inside its own
//!   network namespace and testcontainers publishes that port on the host. Every AWS API, the
//!   control API and the registry answer there, and tasks run (their containers are created on
//!   the host's Docker through the mounted socket). What needs the host's network does not work
//!   from a container's own namespace: ALB listener ports are opened inside the container (not
//!   reachable from the host), task containers cannot reach the task metadata and credentials
//!   endpoints (169.254.170.2) or Cloud Map DNS, the emulator cannot reach the host ports of its
//!   tasks (so ALB target health checks fail), ECR image URIs name port 4566, not the mapped
//!   one, and EFS volumes need FUSE (not given). Use it for API-level tests and tasks that just
//!   run.
//! - **Host networking** ([`EcsEmulator::host_network`]): what `compose.yaml` does. The
//!   emulator shares the host's network and pid namespaces and listens on 127.0.0.1:`port`;
//!   it adds 169.254.170.2 and its DNS address to the Docker bridge (CAP_NET_ADMIN, over
//!   rtnetlink), opens ALB listener ports on the host, and shares the task endpoints with other
//!   emulators on the machine through the peers directory, bind-mounted at the same path.
//!   `/dev/fuse`, CAP_SYS_ADMIN and an unconfined AppArmor profile let it make EFS mounts (which
//!   reach task containers only when its data directory is a shared mount: README "Run it with
//!   compose").
//!
//! # Cleaning up
//!
//! Dropping the container removes it (testcontainers force-removes it, and the state inside with
//! it), but the task containers the emulator started on the host's Docker stay, as they stay
//! when the binary stops (its next start adopts them). [`EcsEmulatorContainer::reset`] (`POST
//! /_emulator/reset`) removes them, and every container, network and volume the emulator
//! created (they carry its `ecs-emulator.owner` label); call it before the container goes.
//!
//! [testcontainers-rs]: https://docs.rs/testcontainers

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::future::Future;
use std::os::unix::fs::DirBuilderExt;
use std::time::Duration;

pub use testcontainers;
use testcontainers::bollard::models::{DeviceMapping, HostConfig, PortBinding};
use testcontainers::core::error::Result;
use testcontainers::core::{ContainerPort, Mount, WaitFor};
use testcontainers::{ContainerAsync, ContainerRequest, Image, ImageExt, TestcontainersError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The image `bash fixtures/build-emulator-image.sh` builds when given no tag.
pub const IMAGE_NAME: &str = "ecs-emulator";
/// Its tag (the script's default tag `ecs-emulator` means `ecs-emulator:latest`).
pub const IMAGE_TAG: &str = "latest";
/// The emulator's main port inside the container: every AWS API, the registry, the control API.
pub const PORT: u16 = 4566;
/// What the emulator prints on stdout once it serves (followed by its address).
pub const READY_LINE: &str = "ecs-emulator ready on";
/// The data directory inside the container (the image's ECS_EMULATOR_DATA_DIR).
pub const DATA_DIR: &str = "/var/lib/ecs-emulator";
/// The Docker socket mounted into the container by default (same path inside and outside).
pub const DOCKER_SOCKET: &str = "/var/run/docker.sock";
/// The directory where emulators of one machine share the task endpoint address
/// (`--peers-dir`), bind-mounted at the same path in host-network mode.
pub const PEERS_DIR: &str = "/tmp/ecs-emulator-task-endpoints";

const EXPOSED: [ContainerPort; 1] = [ContainerPort::Tcp(PORT)];

/// The emulator's image, for testcontainers-rs. Every option is an environment variable of the
/// emulator (`ecs-emulator --help` lists them all; [`EcsEmulator::with_env`] sets any).
#[derive(Debug, Clone)]
pub struct EcsEmulator {
    name: String,
    tag: String,
    env: BTreeMap<String, String>,
    mounts: Vec<Mount>,
    /// Host networking on this port ([`EcsEmulator::host_network`]); None: bridge, 4566 published.
    host_port: Option<u16>,
}

impl Default for EcsEmulator {
    /// `ecs-emulator:latest` listening on 0.0.0.0:4566 in its own network namespace, its data in
    /// the container (gone with it), the Docker socket mounted so tasks run.
    fn default() -> Self {
        let mut env = BTreeMap::new();
        env.insert("ECS_EMULATOR_LISTEN".into(), format!("0.0.0.0:{PORT}"));
        env.insert("ECS_EMULATOR_DATA_DIR".into(), DATA_DIR.into());
        EcsEmulator {
            name: IMAGE_NAME.into(),
            tag: IMAGE_TAG.into(),
            env,
            mounts: vec![Mount::bind_mount(DOCKER_SOCKET, DOCKER_SOCKET)],
            host_port: None,
        }
    }
}

impl EcsEmulator {
    /// Another image than `ecs-emulator:latest`: the tag given to
    /// `bash fixtures/build-emulator-image.sh BINARY NAME:TAG`.
    pub fn with_image(mut self, name: impl Into<String>, tag: impl Into<String>) -> Self {
        self.name = name.into();
        self.tag = tag.into();
        self
    }

    /// Sets an environment variable of the emulator, e.g. `ECS_EMULATOR_STRICT_AUTH=true` or
    /// `ECS_EMULATOR_ACCOUNT_ID=123456789012` (every flag of `ecs-emulator --help` has one).
    pub fn with_env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.insert(name.into(), value.into());
        self
    }

    /// The region of unsigned requests (`--region`; signed requests carry their own).
    pub fn with_region(self, region: impl Into<String>) -> Self {
        self.with_env("ECS_EMULATOR_REGION", region)
    }

    /// The emulator clock's speed (`--time-scale`: 60 makes a minute pass in a second).
    pub fn with_time_scale(self, scale: f64) -> Self {
        self.with_env("ECS_EMULATOR_TIME_SCALE", scale.to_string())
    }

    /// The log filter (`--log-level`: info, debug, ecs_emulator=trace, …).
    pub fn with_log_level(self, filter: impl Into<String>) -> Self {
        self.with_env("ECS_EMULATOR_LOG_LEVEL", filter)
    }

    /// The token the control API requires (`--admin-token`); [`EcsEmulatorContainer::reset`]
    /// sends it.
    pub fn with_admin_token(self, token: impl Into<String>) -> Self {
        self.with_env("ECS_EMULATOR_ADMIN_TOKEN", token)
    }

    /// Keeps the state in memory (`--ephemeral`) instead of the data directory.
    pub fn ephemeral(self) -> Self {
        self.with_env("ECS_EMULATOR_EPHEMERAL", "true")
    }

    /// No Docker: tasks are simulated (`--runtime simulated`), nothing runs, and the Docker
    /// socket is not mounted.
    pub fn simulated(mut self) -> Self {
        self.mounts.retain(|m| m.target() != Some(DOCKER_SOCKET));
        self.with_env("ECS_EMULATOR_RUNTIME", "simulated")
    }

    /// The host's Docker socket at another path (rootless Docker:
    /// `/run/user/<uid>/docker.sock`); it is mounted at /var/run/docker.sock inside.
    pub fn with_docker_socket(mut self, host_path: impl Into<String>) -> Self {
        self.mounts.retain(|m| m.target() != Some(DOCKER_SOCKET));
        self.mounts
            .push(Mount::bind_mount(host_path.into(), DOCKER_SOCKET));
        self
    }

    /// Keeps the state in `host_dir`, an existing directory (bind-mounted at the same path, so paths the emulator
    /// hands to Docker are valid on the host too): it outlives the container, and a new one on
    /// the same directory starts where the last one stopped.
    pub fn with_data_dir(mut self, host_dir: impl Into<String>) -> Self {
        let dir = host_dir.into();
        self.mounts.retain(|m| !is_data_dir_mount(m, &self.env));
        self.mounts
            .push(Mount::bind_mount(dir.clone(), dir.clone()));
        self.with_env("ECS_EMULATOR_DATA_DIR", dir)
    }

    /// Bridge networking with port 4566 published on 127.0.0.1 only (a free port: read it with
    /// [`EcsEmulatorContainer::endpoint`]). Plain `start()` publishes it on every interface of
    /// the host, as testcontainers does for every image; the emulator can start containers on
    /// your Docker, so keep it off the network.
    pub fn on_loopback(self) -> ContainerRequest<Self> {
        ContainerRequest::from(self).with_host_config_modifier(|host: &mut HostConfig| {
            host.publish_all_ports = Some(false);
            host.port_bindings = Some(
                [(
                    format!("{PORT}/tcp"),
                    Some(vec![PortBinding {
                        host_ip: Some("127.0.0.1".into()),
                        host_port: Some(String::new()),
                    }]),
                )]
                .into_iter()
                .collect(),
            );
        })
    }

    /// Host networking, as `compose.yaml` runs the emulator: it listens on 127.0.0.1:`port` of
    /// the host (pick a free one), serves ALB listener ports, the task endpoints at
    /// 169.254.170.2 and Cloud Map DNS to task containers, and can make EFS mounts. Runs with
    /// the host's pid namespace, CAP_NET_ADMIN, CAP_SYS_ADMIN, `/dev/fuse` and AppArmor
    /// unconfined, and the peers directory ([`PEERS_DIR`]) bind-mounted at the same path.
    /// Give it a data directory on the host ([`EcsEmulator::with_data_dir`]) for EFS volumes.
    pub fn host_network(mut self, port: u16) -> ContainerRequest<Self> {
        self.host_port = Some(port);
        self.mounts.push(Mount::bind_mount(PEERS_DIR, PEERS_DIR));
        let image = self
            .with_env("ECS_EMULATOR_LISTEN", format!("127.0.0.1:{port}"))
            .with_env("ECS_EMULATOR_PEERS_DIR", PEERS_DIR);
        // A bind mount's source must exist; the emulator wants it 0700 and its own.
        let _ = std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(PEERS_DIR);
        ContainerRequest::from(image)
            .with_network("host")
            .with_cap_add("NET_ADMIN")
            .with_cap_add("SYS_ADMIN")
            .with_security_opt("apparmor:unconfined")
            .with_host_config_modifier(|host: &mut HostConfig| {
                host.publish_all_ports = Some(false);
                host.pid_mode = Some("host".into());
                host.devices = Some(vec![DeviceMapping {
                    path_on_host: Some("/dev/fuse".into()),
                    path_in_container: Some("/dev/fuse".into()),
                    cgroup_permissions: Some("rwm".into()),
                }]);
            })
    }

    /// The host port of host-network mode (None in bridge mode).
    pub fn host_port(&self) -> Option<u16> {
        self.host_port
    }

    fn admin_token(&self) -> Option<&str> {
        self.env.get("ECS_EMULATOR_ADMIN_TOKEN").map(String::as_str)
    }
}

fn is_data_dir_mount(m: &Mount, env: &BTreeMap<String, String>) -> bool {
    env.get("ECS_EMULATOR_DATA_DIR")
        .is_some_and(|d| m.target() == Some(d.as_str()))
}

impl Image for EcsEmulator {
    fn name(&self) -> &str {
        &self.name
    }

    fn tag(&self) -> &str {
        &self.tag
    }

    fn ready_conditions(&self) -> Vec<WaitFor> {
        vec![WaitFor::message_on_stdout(READY_LINE)]
    }

    fn env_vars(
        &self,
    ) -> impl IntoIterator<Item = (impl Into<Cow<'_, str>>, impl Into<Cow<'_, str>>)> {
        self.env.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    fn mounts(&self) -> impl IntoIterator<Item = &Mount> {
        self.mounts.iter()
    }

    fn expose_ports(&self) -> &[ContainerPort] {
        if self.host_port.is_some() {
            &[]
        } else {
            &EXPOSED
        }
    }
}

/// What a running emulator container offers beyond testcontainers' own methods.
pub trait EcsEmulatorContainer {
    /// The URL to give the AWS SDKs and CLI as their endpoint: `http://127.0.0.1:<port>`, the
    /// published port of 4566 (bridge) or the host-network port.
    fn endpoint(&self) -> impl Future<Output = Result<String>> + Send;

    /// `POST /_emulator/reset`: drops every resource and removes every container, network and
    /// volume the emulator started on the host's Docker. Call it before dropping the container.
    fn reset(&self) -> impl Future<Output = Result<()>> + Send;
}

/// How long a reset may take (it stops and removes every task container).
const RESET_TIMEOUT: Duration = Duration::from_secs(120);

impl EcsEmulatorContainer for ContainerAsync<EcsEmulator> {
    async fn endpoint(&self) -> Result<String> {
        if let Some(port) = self.image().host_port() {
            return Ok(format!("http://127.0.0.1:{port}"));
        }
        let port = self.get_host_port_ipv4(PORT).await?;
        let host = self.get_host().await?.to_string();
        // "localhost" may resolve to ::1 first, where a 127.0.0.1 binding does not answer.
        let host = if host == "localhost" {
            "127.0.0.1".to_string()
        } else {
            host
        };
        Ok(format!("http://{host}:{port}"))
    }

    async fn reset(&self) -> Result<()> {
        let endpoint = self.endpoint().await?;
        let authority = endpoint.trim_start_matches("http://").to_string();
        let token = self.image().admin_token().map(str::to_string);
        tokio::time::timeout(RESET_TIMEOUT, post_reset(&authority, token.as_deref()))
            .await
            .map_err(|_| {
                TestcontainersError::other(format!(
                    "POST /_emulator/reset on {authority}: no answer in {RESET_TIMEOUT:?}"
                ))
            })?
    }
}

/// One HTTP/1.1 request on a new connection (the control API needs no more than this).
async fn post_reset(authority: &str, token: Option<&str>) -> Result<()> {
    let fail = |what: String| TestcontainersError::other(format!("POST /_emulator/reset: {what}"));
    let mut stream = tokio::net::TcpStream::connect(authority)
        .await
        .map_err(|e| fail(format!("cannot connect to {authority}: {e}")))?;
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "POST /_emulator/reset HTTP/1.1\r\nHost: {authority}\r\n{auth}Content-Length: 0\r\nConnection: close\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| fail(e.to_string()))?;
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .await
        .map_err(|e| fail(e.to_string()))?;
    let text = String::from_utf8_lossy(&response);
    let status = text.split_whitespace().nth(1).unwrap_or("");
    if status == "200" {
        Ok(())
    } else {
        Err(fail(format!("answered {text}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(image: &EcsEmulator) -> BTreeMap<String, String> {
        image
            .env_vars()
            .into_iter()
            .map(|(k, v)| (k.into().into_owned(), v.into().into_owned()))
            .collect()
    }

    fn targets(image: &EcsEmulator) -> Vec<(String, String)> {
        image
            .mounts()
            .into_iter()
            .map(|m| {
                (
                    m.source().unwrap_or_default().to_string(),
                    m.target().unwrap_or_default().to_string(),
                )
            })
            .collect()
    }

    #[test]
    fn the_default_is_the_fixture_image_on_4566_with_the_docker_socket() {
        let image = EcsEmulator::default();
        assert_eq!((image.name(), image.tag()), ("ecs-emulator", "latest"));
        assert_eq!(image.expose_ports(), &[ContainerPort::Tcp(4566)]);
        let env = env(&image);
        assert_eq!(env["ECS_EMULATOR_LISTEN"], "0.0.0.0:4566");
        assert_eq!(env["ECS_EMULATOR_DATA_DIR"], "/var/lib/ecs-emulator");
        assert_eq!(
            targets(&image),
            vec![(DOCKER_SOCKET.to_string(), DOCKER_SOCKET.to_string())]
        );
        match &image.ready_conditions()[..] {
            [WaitFor::Log(_)] => {}
            other => panic!("one log condition: {other:?}"),
        }
    }

    #[test]
    fn options_are_the_emulators_environment_variables() {
        let image = EcsEmulator::default()
            .with_image("ecs-emulator-test/emulator", "ci")
            .with_region("eu-west-1")
            .with_time_scale(60.0)
            .with_log_level("debug")
            .with_data_dir("/srv/ecs")
            .with_docker_socket("/run/user/1000/docker.sock")
            .with_env("ECS_EMULATOR_STRICT_AUTH", "true");
        assert_eq!(image.name(), "ecs-emulator-test/emulator");
        assert_eq!(image.tag(), "ci");
        let env = env(&image);
        assert_eq!(env["ECS_EMULATOR_REGION"], "eu-west-1");
        assert_eq!(env["ECS_EMULATOR_TIME_SCALE"], "60");
        assert_eq!(env["ECS_EMULATOR_LOG_LEVEL"], "debug");
        assert_eq!(env["ECS_EMULATOR_DATA_DIR"], "/srv/ecs");
        assert_eq!(env["ECS_EMULATOR_STRICT_AUTH"], "true");
        assert_eq!(
            targets(&image),
            vec![
                ("/srv/ecs".to_string(), "/srv/ecs".to_string()),
                (
                    "/run/user/1000/docker.sock".to_string(),
                    DOCKER_SOCKET.to_string()
                ),
            ]
        );
    }

    #[test]
    fn simulated_mounts_no_socket() {
        let image = EcsEmulator::default().simulated();
        assert!(targets(&image).is_empty());
        assert_eq!(env(&image)["ECS_EMULATOR_RUNTIME"], "simulated");
    }
}
