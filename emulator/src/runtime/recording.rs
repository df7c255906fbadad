//! The recording runtime, for unit tests of the task agent and the service scheduler: a scripted
//! simulated runtime (containers run until the test says otherwise) that records every create,
//! start, stop and remove in order, with the (tokio) time it happened, and lets the test script
//! exits, OOM kills, health changes, removals behind the emulator's back and SIGTERM-deaf
//! processes. With `latency`, each call takes that long, as Docker's do, so that events
//! interleave with the agent's work as they do for real (use a paused tokio clock to keep tests
//! in milliseconds).

use super::simulated::SimulatedRuntime;
use super::{
    ContainerRuntime, ContainerSpec, ContainerState, ImageInfo, RegistryAuth, RuntimeError,
    RuntimeEvent,
};
use crate::clock::Clock;
use async_trait::async_trait;
use futures::stream::BoxStream;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// One call the agent made, naming containers by their ECS container name.
#[derive(Debug, Clone, PartialEq)]
pub enum Call {
    Pull(String),
    Create(String),
    Start(String),
    /// SIGTERM with this timeout (seconds) before SIGKILL.
    Stop {
        container: String,
        timeout_s: i64,
    },
    /// The stop returned: the container exited with this code.
    Stopped {
        container: String,
        exit_code: Option<i64>,
    },
    Remove(String),
}

pub struct RecordingRuntime {
    sim: Arc<SimulatedRuntime>,
    calls: Mutex<Vec<(Instant, Call)>>,
    latency: Duration,
    /// ECS container name → the error its create returns.
    create_errors: Mutex<HashMap<String, String>>,
    epoch: Instant,
}

/// How long a second of a stop timeout lasts here: tests check the timeout asked for and the
/// order, not the wait, so a SIGTERM-deaf process is killed after its timeout in milliseconds.
pub const STOP_SECOND: Duration = Duration::from_millis(2);

impl Deref for RecordingRuntime {
    type Target = SimulatedRuntime;
    fn deref(&self) -> &SimulatedRuntime {
        &self.sim
    }
}

impl RecordingRuntime {
    pub fn new() -> Arc<RecordingRuntime> {
        Self::with_latency(Duration::ZERO)
    }

    /// Every runtime call takes `latency` (tokio time).
    pub fn with_latency(latency: Duration) -> Arc<RecordingRuntime> {
        Arc::new(RecordingRuntime {
            sim: SimulatedRuntime::scripted(Clock::new(1.0)),
            calls: Mutex::new(Vec::new()),
            latency,
            create_errors: Mutex::new(HashMap::new()),
            epoch: Instant::now(),
        })
    }

    /// The calls so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().iter().map(|(_, c)| c.clone()).collect()
    }

    /// The calls with when they happened, since the runtime was made.
    pub fn timed_calls(&self) -> Vec<(Duration, Call)> {
        self.calls
            .lock()
            .iter()
            .map(|(t, c)| (*t - self.epoch, c.clone()))
            .collect()
    }

    pub fn clear_calls(&self) {
        self.calls.lock().clear();
    }

    /// Creating the container of this ECS container name fails with `message`.
    pub fn fail_create(&self, container: &str, message: &str) {
        self.create_errors
            .lock()
            .insert(container.to_string(), message.to_string());
    }

    fn record(&self, call: Call) {
        self.calls.lock().push((Instant::now(), call));
    }

    async fn delay(&self) {
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
    }

    /// The ECS container name of a container id (its Docker name when unlabelled or gone).
    fn name_of(&self, id: &str, state: Option<&ContainerState>) -> String {
        state
            .and_then(|s| s.labels.get("com.amazonaws.ecs.container-name").cloned())
            .unwrap_or_else(|| id.to_string())
    }

    async fn state(&self, id: &str) -> Option<ContainerState> {
        self.sim.inspect(id).await.ok()
    }
}

#[async_trait]
impl ContainerRuntime for RecordingRuntime {
    fn name(&self) -> &'static str {
        "recording"
    }

    async fn local_image(&self, image: &str) -> Result<Option<ImageInfo>, RuntimeError> {
        self.delay().await;
        self.sim.local_image(image).await
    }

    async fn pull(
        &self,
        image: &str,
        auth: Option<RegistryAuth>,
    ) -> Result<ImageInfo, RuntimeError> {
        self.delay().await;
        self.record(Call::Pull(image.to_string()));
        self.sim.pull(image, auth).await
    }

    async fn create(&self, spec: &ContainerSpec) -> Result<String, RuntimeError> {
        self.delay().await;
        let name = spec
            .labels
            .get("com.amazonaws.ecs.container-name")
            .cloned()
            .unwrap_or_else(|| spec.name.clone());
        self.record(Call::Create(name.clone()));
        if let Some(message) = self.create_errors.lock().get(&name) {
            return Err(RuntimeError::new(message.clone()));
        }
        self.sim.create(spec).await
    }

    async fn start(&self, id: &str) -> Result<(), RuntimeError> {
        self.delay().await;
        let name = self.name_of(id, self.state(id).await.as_ref());
        self.record(Call::Start(name));
        self.sim.start(id).await
    }

    async fn stop(&self, id: &str, timeout_s: i64) -> Result<(), RuntimeError> {
        self.delay().await;
        let container = self.name_of(id, self.state(id).await.as_ref());
        self.record(Call::Stop {
            container: container.clone(),
            timeout_s,
        });
        let result = self.sim.stop_after(id, timeout_s, STOP_SECOND).await;
        let exit_code = self.state(id).await.and_then(|s| s.exit_code);
        self.record(Call::Stopped {
            container,
            exit_code,
        });
        result
    }

    async fn remove(&self, id: &str) -> Result<(), RuntimeError> {
        self.delay().await;
        let name = self.name_of(id, self.state(id).await.as_ref());
        self.record(Call::Remove(name));
        self.sim.remove(id).await
    }

    async fn inspect(&self, id: &str) -> Result<ContainerState, RuntimeError> {
        self.delay().await;
        self.sim.inspect(id).await
    }

    async fn list(&self, label: &str, value: &str) -> Result<Vec<ContainerState>, RuntimeError> {
        self.delay().await;
        self.sim.list(label, value).await
    }

    async fn ensure_network(
        &self,
        name: &str,
        subnet: &str,
        gateway: &str,
        labels: HashMap<String, String>,
    ) -> Result<(), RuntimeError> {
        self.sim.ensure_network(name, subnet, gateway, labels).await
    }

    async fn remove_network(&self, name: &str) -> Result<(), RuntimeError> {
        self.sim.remove_network(name).await
    }

    async fn stats(&self, id: &str) -> Result<serde_json::Value, RuntimeError> {
        self.sim.stats(id).await
    }

    async fn volume_exists(&self, name: &str) -> Result<bool, RuntimeError> {
        self.sim.volume_exists(name).await
    }

    async fn create_volume(
        &self,
        name: &str,
        driver: Option<&str>,
        opts: HashMap<String, String>,
        labels: HashMap<String, String>,
    ) -> Result<(), RuntimeError> {
        self.sim.create_volume(name, driver, opts, labels).await
    }

    async fn remove_volume(&self, name: &str) -> Result<(), RuntimeError> {
        self.sim.remove_volume(name).await
    }

    async fn bridge_gateway(&self) -> Option<String> {
        None
    }

    fn events(&self, owner: &str) -> BoxStream<'static, Result<RuntimeEvent, RuntimeError>> {
        self.sim.events(owner)
    }

    fn logs(
        &self,
        id: &str,
        since: i64,
        follow: bool,
    ) -> BoxStream<'static, Result<(i64, String), RuntimeError>> {
        self.sim.logs(id, since, follow)
    }
}
