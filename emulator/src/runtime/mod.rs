//! The container runtime seam. `docker.rs` (Docker Engine through bollard) is the product;
//! `simulated.rs` (`--runtime simulated`) keeps containers in memory, for scale tests and machines
//! without Docker; `recording.rs` records the calls for unit tests. The trait keeps the task agent
//! independent of them.

pub mod docker;
#[cfg(test)]
pub mod recording;
pub mod simulated;

use async_trait::async_trait;
use futures::stream::BoxStream;
use std::collections::HashMap;

/// Labels every container the emulator creates carries, besides the ECS agent's own.
pub const OWNER_LABEL: &str = "ecs-emulator.owner";

#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct RuntimeError {
    pub message: String,
    /// The container or image does not exist.
    pub not_found: bool,
}

impl RuntimeError {
    pub fn new(message: impl Into<String>) -> Self {
        RuntimeError {
            message: message.into(),
            not_found: false,
        }
    }
}

/// A port published on the host.
#[derive(Debug, Clone, PartialEq)]
pub struct PortSpec {
    pub container_port: u16,
    pub protocol: String,
    pub host_ip: String,
    /// None: Docker picks a free port (ECS's dynamic host port).
    pub host_port: Option<u16>,
}

#[derive(Debug, Clone, Default)]
pub struct HealthSpec {
    pub test: Vec<String>,
    pub interval_s: i64,
    pub timeout_s: i64,
    pub retries: i64,
    pub start_period_s: i64,
}

/// Everything needed to create one container.
#[derive(Debug, Clone, Default)]
pub struct ContainerSpec {
    pub name: String,
    pub image: String,
    pub entrypoint: Option<Vec<String>>,
    pub command: Option<Vec<String>>,
    pub env: Vec<String>,
    pub labels: HashMap<String, String>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
    pub hostname: Option<String>,
    pub cpu_shares: Option<i64>,
    pub nano_cpus: Option<i64>,
    pub memory_bytes: Option<i64>,
    pub memory_reservation_bytes: Option<i64>,
    /// "bridge", "host", "none", or a network name.
    pub network_mode: String,
    /// A fixed IP on `network_mode` (awsvpc).
    pub ipv4_address: Option<String>,
    pub ports: Vec<PortSpec>,
    pub links: Vec<String>,
    pub binds: Vec<String>,
    pub ulimits: Vec<(String, i64, i64)>,
    pub health: Option<HealthSpec>,
    pub readonly_rootfs: bool,
    pub privileged: bool,
    pub init: bool,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub extra_hosts: Vec<String>,
    pub dns: Vec<String>,
    pub dns_search: Vec<String>,
    pub stop_timeout_s: Option<i64>,
    pub sysctls: HashMap<String, String>,
    pub security_opt: Vec<String>,
}

/// What the runtime knows of a container.
#[derive(Debug, Clone, Default)]
pub struct ContainerState {
    pub id: String,
    pub name: String,
    pub running: bool,
    pub status: String,
    pub exit_code: Option<i64>,
    pub oom_killed: bool,
    pub error: String,
    /// "healthy", "unhealthy", "starting", or None without a health check.
    pub health: Option<String>,
    pub ports: Vec<PortSpec>,
    /// IP address per attached network.
    pub ips: Vec<(String, String)>,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub image_id: String,
    pub labels: HashMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct ImageInfo {
    pub id: String,
    /// The registry digest (sha256:…) when the image came from a registry.
    pub digest: Option<String>,
}

/// Credentials for a private registry (ECR).
#[derive(Debug, Clone)]
pub struct RegistryAuth {
    pub username: String,
    pub password: String,
    pub server: String,
}

/// A container event the task agent reacts to.
#[derive(Debug, Clone, PartialEq)]
pub enum RuntimeEvent {
    Died { id: String, exit_code: Option<i64> },
    Oom { id: String },
    Health { id: String, status: String },
    Destroyed { id: String },
}

impl RuntimeEvent {
    /// The container it is about.
    pub fn id(&self) -> &str {
        match self {
            RuntimeEvent::Died { id, .. }
            | RuntimeEvent::Oom { id }
            | RuntimeEvent::Health { id, .. }
            | RuntimeEvent::Destroyed { id } => id,
        }
    }
}

#[async_trait]
pub trait ContainerRuntime: Send + Sync {
    /// A name for logs and DescribeTasks ("docker").
    fn name(&self) -> &'static str;
    /// The image if it is present locally.
    async fn local_image(&self, image: &str) -> Result<Option<ImageInfo>, RuntimeError>;
    async fn pull(
        &self,
        image: &str,
        auth: Option<RegistryAuth>,
    ) -> Result<ImageInfo, RuntimeError>;
    async fn create(&self, spec: &ContainerSpec) -> Result<String, RuntimeError>;
    async fn start(&self, id: &str) -> Result<(), RuntimeError>;
    /// SIGTERM, then SIGKILL after `timeout_s`.
    async fn stop(&self, id: &str, timeout_s: i64) -> Result<(), RuntimeError>;
    /// SIGKILL at once, as a crash or the OOM killer would (the task-kill fault).
    async fn kill(&self, id: &str) -> Result<(), RuntimeError> {
        self.stop(id, 0).await
    }
    async fn remove(&self, id: &str) -> Result<(), RuntimeError>;
    async fn inspect(&self, id: &str) -> Result<ContainerState, RuntimeError>;
    /// Containers carrying `label=value`, running or not.
    async fn list(&self, label: &str, value: &str) -> Result<Vec<ContainerState>, RuntimeError>;
    /// A bridge network with this subnet (created when missing).
    async fn ensure_network(
        &self,
        name: &str,
        subnet: &str,
        gateway: &str,
        labels: HashMap<String, String>,
    ) -> Result<(), RuntimeError>;
    async fn remove_network(&self, name: &str) -> Result<(), RuntimeError>;
    /// One stats sample, in Docker's JSON shape (as the v4 metadata endpoint serves it).
    async fn stats(&self, id: &str) -> Result<serde_json::Value, RuntimeError>;
    /// Whether a named volume exists.
    async fn volume_exists(&self, name: &str) -> Result<bool, RuntimeError>;
    /// Creates a named volume (no-op when it exists).
    async fn create_volume(
        &self,
        name: &str,
        driver: Option<&str>,
        opts: HashMap<String, String>,
        labels: HashMap<String, String>,
    ) -> Result<(), RuntimeError>;
    async fn remove_volume(&self, name: &str) -> Result<(), RuntimeError>;
    /// Removes the volumes and networks carrying `label=value` (a reset, after the containers
    /// are gone); how many. Runtimes without either keep this default.
    async fn remove_labelled_volumes_and_networks(
        &self,
        _label: &str,
        _value: &str,
    ) -> Result<usize, RuntimeError> {
        Ok(0)
    }
    /// The Docker bridge network's gateway address, where containers reach the host.
    async fn bridge_gateway(&self) -> Option<String>;
    /// Whether the daemon answers (Docker's `/_ping`); a failure names why.
    async fn ping(&self) -> Result<(), RuntimeError> {
        Ok(())
    }
    /// Container events, for containers carrying `OWNER_LABEL=owner`.
    fn events(&self, owner: &str) -> BoxStream<'static, Result<RuntimeEvent, RuntimeError>>;
    /// Log lines (stdout and stderr, with timestamps) since a Unix time.
    fn logs(
        &self,
        id: &str,
        since: i64,
        follow: bool,
    ) -> BoxStream<'static, Result<(i64, String), RuntimeError>>;
}
