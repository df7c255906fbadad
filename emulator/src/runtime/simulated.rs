//! The simulated runtime (`--runtime simulated`): containers that exist only in memory. Nothing
//! runs: a container is a record that moves through created → running → exited as the task agent
//! asks, or when its timer fires (a command ending in `sleep N`, `exit N`, `true` or `false`).
//! Stats are synthetic, logs say so, and every event Docker would send (die, oom, health_status,
//! destroy) is sent the same way, so the agent, the scheduler and the APIs behave as with Docker.
//! For scale tests and machines without Docker; the recording runtime (`recording.rs`) builds on
//! it for unit tests.

use super::{
    ContainerRuntime, ContainerSpec, ContainerState, ImageInfo, PortSpec, RegistryAuth,
    RuntimeError, RuntimeEvent, OWNER_LABEL,
};
use crate::clock::Clock;
use async_trait::async_trait;
use futures::stream::BoxStream;
use futures::StreamExt;
use parking_lot::Mutex;
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};
use tokio::sync::broadcast;

/// What every simulated container's log says, so nobody mistakes it for a real one.
pub const NOTHING_RUNS: &str =
    "[ecs-emulator --runtime simulated] nothing runs: this container is a timer, not a process";

/// Exit code of a container killed after ignoring SIGTERM for its stop timeout.
pub const SIGKILL_EXIT: i64 = 137;

/// One simulated container.
#[derive(Debug, Clone)]
struct Sim {
    spec: ContainerSpec,
    state: ContainerState,
    /// When it started (real time), for synthetic CPU time.
    started: Option<Instant>,
    /// Bumped at every start, so a timer of an earlier run does nothing.
    generation: u64,
}

#[derive(Default)]
struct State {
    containers: HashMap<String, Sim>,
    networks: HashMap<String, (u32, u32)>,
    volumes: HashSet<String>,
    next_host_port: u16,
    next_id: u64,
    /// ECS container names whose process ignores SIGTERM (stop waits the timeout, then 137).
    ignores_sigterm: HashSet<String>,
}

pub struct SimulatedRuntime {
    clock: Clock,
    state: Mutex<State>,
    events: broadcast::Sender<(String, RuntimeEvent)>,
    /// Whether commands become timers and health checks pass (off for the recording runtime:
    /// tests script exits and health).
    timers: bool,
    /// Itself, for the timers it spawns.
    me: Weak<SimulatedRuntime>,
}

/// The ECS agent's label naming a container's ECS container name.
const CONTAINER_NAME_LABEL: &str = "com.amazonaws.ecs.container-name";

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// "a.b.c.d/n" → (network address, prefix length).
fn parse_cidr(cidr: &str) -> Option<(u32, u32)> {
    let (ip, len) = cidr.split_once('/')?;
    let ip: std::net::Ipv4Addr = ip.parse().ok()?;
    Some((u32::from(ip), len.parse().ok()?))
}

/// When a command ends on its own: `sleep N` (then `exit C`), `exit C`, `true`, `false`.
/// None: it runs until stopped.
pub fn timer_of(spec: &ContainerSpec) -> Option<(Duration, i64)> {
    let words: Vec<String> = spec
        .entrypoint
        .iter()
        .flatten()
        .chain(spec.command.iter().flatten())
        .flat_map(|w| {
            w.split([';', '&', '|', '\n'])
                .flat_map(str::split_whitespace)
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect();
    let last = |name: &str| words.iter().rposition(|w| w == name);
    let number = |i: Option<usize>| -> Option<f64> { words.get(i? + 1)?.parse().ok() };
    let code = match (last("exit"), words.last().map(String::as_str)) {
        (Some(i), _) => number(Some(i)).map(|c| c as i64).unwrap_or(0),
        (None, Some("false")) => 1,
        _ => 0,
    };
    // A loop never ends on its own.
    if words
        .iter()
        .any(|w| w == "while" || w == "httpd" || w == "nc")
    {
        return None;
    }
    if let Some(secs) = number(last("sleep")) {
        return Some((Duration::from_secs_f64(secs.max(0.0)), code));
    }
    let ends = last("exit").is_some()
        || matches!(words.last().map(String::as_str), Some("true" | "false"));
    ends.then_some((Duration::ZERO, code))
}

impl SimulatedRuntime {
    /// The product's simulated runtime: commands become timers.
    pub fn new(clock: Clock) -> Arc<SimulatedRuntime> {
        Self::build(clock, true)
    }

    /// Containers that run until a test says otherwise.
    pub fn scripted(clock: Clock) -> Arc<SimulatedRuntime> {
        Self::build(clock, false)
    }

    fn build(clock: Clock, timers: bool) -> Arc<SimulatedRuntime> {
        let (events, _) = broadcast::channel(16384);
        Arc::new_cyclic(|me| SimulatedRuntime {
            clock,
            state: Mutex::new(State {
                next_host_port: 32768,
                ..Default::default()
            }),
            events,
            timers,
            me: me.clone(),
        })
    }

    fn send(&self, owner: &str, event: RuntimeEvent) {
        let _ = self.events.send((owner.to_string(), event));
    }

    fn owner_of(sim: &Sim) -> String {
        sim.spec
            .labels
            .get(OWNER_LABEL)
            .cloned()
            .unwrap_or_default()
    }

    fn not_found(id: &str) -> RuntimeError {
        RuntimeError {
            message: format!("No such container: {id}"),
            not_found: true,
        }
    }

    /// The id of the container of a name (Docker's) or an ECS container name.
    pub fn find(&self, name: &str) -> Option<String> {
        let s = self.state.lock();
        let mut found: Vec<&Sim> = s
            .containers
            .values()
            .filter(|c| {
                c.spec.name == name
                    || c.spec.labels.get(CONTAINER_NAME_LABEL).map(String::as_str) == Some(name)
            })
            .collect();
        // The newest when a name was used by several attempts.
        found.sort_by_key(|c| c.state.id.clone());
        found.last().map(|c| c.state.id.clone())
    }

    /// Ids of every container, oldest first.
    pub fn ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.state.lock().containers.keys().cloned().collect();
        ids.sort();
        ids
    }

    /// The process of containers with this ECS container name ignores SIGTERM.
    pub fn ignore_sigterm(&self, container_name: &str) {
        self.state
            .lock()
            .ignores_sigterm
            .insert(container_name.to_string());
    }

    /// The container's process exits with `code` (Docker's die event).
    pub fn exit(&self, id: &str, code: i64) {
        self.exit_run(id, code, false, None);
    }

    /// The kernel kills the container for memory (oom, then die with 137).
    pub fn oom(&self, id: &str) {
        let owner = {
            let s = self.state.lock();
            s.containers.get(id).map(Self::owner_of)
        };
        if let Some(owner) = owner {
            self.send(&owner, RuntimeEvent::Oom { id: id.to_string() });
        }
        self.exit_run(id, SIGKILL_EXIT, true, None);
    }

    /// A health check result changes (health_status: healthy / unhealthy).
    pub fn set_health(&self, id: &str, status: &str) {
        let owner = {
            let mut s = self.state.lock();
            let Some(c) = s.containers.get_mut(id) else {
                return;
            };
            c.state.health = Some(status.to_string());
            Self::owner_of(c)
        };
        self.send(
            &owner,
            RuntimeEvent::Health {
                id: id.to_string(),
                status: status.to_string(),
            },
        );
    }

    /// Someone removes the container behind the emulator's back (`docker rm -f`).
    pub fn destroy(&self, id: &str) {
        self.exit_run(id, SIGKILL_EXIT, false, None);
        let removed = self.state.lock().containers.remove(id);
        if let Some(c) = removed {
            self.send(
                &Self::owner_of(&c),
                RuntimeEvent::Destroyed { id: id.to_string() },
            );
        }
    }

    /// Marks a running container exited and sends die; `generation` guards timers.
    fn exit_run(&self, id: &str, code: i64, oom: bool, generation: Option<u64>) {
        let owner = {
            let mut s = self.state.lock();
            let Some(c) = s.containers.get_mut(id) else {
                return;
            };
            if !c.state.running || generation.is_some_and(|g| g != c.generation) {
                return;
            }
            c.state.running = false;
            c.state.status = "exited".into();
            c.state.exit_code = Some(code);
            c.state.oom_killed |= oom;
            c.state.finished_at = Some(now_rfc3339());
            Self::owner_of(c)
        };
        self.send(
            &owner,
            RuntimeEvent::Died {
                id: id.to_string(),
                exit_code: Some(code),
            },
        );
    }

    fn arm_timer(self: &Arc<Self>, id: &str, spec: &ContainerSpec, generation: u64) {
        let Some((after, code)) = timer_of(spec) else {
            return;
        };
        let rt = self.clone();
        let id = id.to_string();
        let after = self.clock.real(after);
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            rt.exit_run(&id, code, false, Some(generation));
        });
    }

    /// Health checks pass after their start period (or first interval): nothing can fail them
    /// here but a test.
    fn arm_health(self: &Arc<Self>, id: &str, spec: &ContainerSpec, generation: u64) {
        let Some(h) = &spec.health else { return };
        let rt = self.clone();
        let id = id.to_string();
        // Docker runs the first check one interval after the start.
        let after = self
            .clock
            .real(Duration::from_secs(h.interval_s.max(1) as u64));
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            let current = rt
                .state
                .lock()
                .containers
                .get(&id)
                .is_some_and(|c| c.generation == generation && c.state.running);
            if current {
                rt.set_health(&id, "healthy");
            }
        });
    }

    /// Starts a created container; returns its generation.
    fn start_sim(&self, id: &str) -> Result<(u64, ContainerSpec), RuntimeError> {
        let mut s = self.state.lock();
        let State {
            containers,
            next_host_port,
            networks,
            ..
        } = &mut *s;
        let c = containers.get_mut(id).ok_or_else(|| Self::not_found(id))?;
        if c.state.running {
            return Ok((c.generation, c.spec.clone()));
        }
        c.generation += 1;
        c.state.running = true;
        c.state.status = "running".into();
        c.state.exit_code = None;
        c.state.started_at = Some(now_rfc3339());
        c.state.finished_at = None;
        c.state.health = c.spec.health.as_ref().map(|_| "starting".to_string());
        c.started = Some(Instant::now());
        c.state.ports = c
            .spec
            .ports
            .iter()
            .map(|p| {
                let host_port = p.host_port.or_else(|| {
                    *next_host_port = next_host_port.checked_add(1).unwrap_or(32768);
                    Some(*next_host_port)
                });
                PortSpec {
                    host_port,
                    ..p.clone()
                }
            })
            .collect();
        if let Some((base, counter)) = networks.get_mut(&c.spec.network_mode) {
            *counter += 1;
            let ip = std::net::Ipv4Addr::from(*base + 1 + *counter);
            c.state.ips = vec![(c.spec.network_mode.clone(), ip.to_string())];
        }
        Ok((c.generation, c.spec.clone()))
    }

    /// SIGTERM; SIGKILL after `timeout_s` seconds of `second` each for processes that ignore it.
    pub async fn stop_after(
        &self,
        id: &str,
        timeout_s: i64,
        second: Duration,
    ) -> Result<(), RuntimeError> {
        let ignores = {
            let s = self.state.lock();
            let c = s.containers.get(id).ok_or_else(|| Self::not_found(id))?;
            if !c.state.running {
                return Ok(());
            }
            c.spec
                .labels
                .get(CONTAINER_NAME_LABEL)
                .is_some_and(|n| s.ignores_sigterm.contains(n))
        };
        if ignores {
            tokio::time::sleep(second * timeout_s.max(0) as u32).await;
            self.exit_run(id, SIGKILL_EXIT, false, None);
        } else {
            // The process handles SIGTERM and exits cleanly.
            self.exit_run(id, 0, false, None);
        }
        Ok(())
    }

    fn synthetic_stats(&self, id: &str) -> Result<serde_json::Value, RuntimeError> {
        let s = self.state.lock();
        let c = s.containers.get(id).ok_or_else(|| Self::not_found(id))?;
        let ran = c
            .started
            .filter(|_| c.state.running)
            .map(|t| t.elapsed())
            .unwrap_or_default();
        // A steady 5 % of a core and a quarter of the memory limit (16 MiB without one).
        let cpu_ns = (ran.as_nanos() / 20) as u64;
        let limit = c.spec.memory_bytes.unwrap_or(0).max(0) as u64;
        let memory = if limit > 0 { limit / 4 } else { 16 << 20 };
        Ok(serde_json::json!({
            "read": now_rfc3339(),
            "name": format!("/{}", c.spec.name),
            "id": id,
            "simulated": true,
            "cpu_stats": {"cpu_usage": {"total_usage": cpu_ns}, "online_cpus": 2,
                          "system_cpu_usage": ran.as_nanos() as u64 * 2},
            "precpu_stats": {"cpu_usage": {"total_usage": 0}},
            "memory_stats": {"usage": memory, "limit": if limit > 0 { limit } else { 1 << 31 },
                             "stats": {"inactive_file": 0}},
            "networks": {"eth0": {"rx_bytes": 0, "tx_bytes": 0}},
        }))
    }
}

#[async_trait]
impl ContainerRuntime for SimulatedRuntime {
    fn name(&self) -> &'static str {
        "simulated"
    }

    async fn local_image(&self, image: &str) -> Result<Option<ImageInfo>, RuntimeError> {
        Ok(Some(image_info(image)))
    }

    async fn pull(&self, image: &str, _: Option<RegistryAuth>) -> Result<ImageInfo, RuntimeError> {
        Ok(image_info(image))
    }

    async fn create(&self, spec: &ContainerSpec) -> Result<String, RuntimeError> {
        let mut s = self.state.lock();
        if s.containers.values().any(|c| c.spec.name == spec.name) {
            return Err(RuntimeError::new(format!(
                "Conflict. The container name \"/{}\" is already in use",
                spec.name
            )));
        }
        s.next_id += 1;
        // Docker-shaped ids (64 hex digits) that sort in creation order.
        let id = format!(
            "{:016x}{}",
            s.next_id,
            &hex::encode(Sha256::digest(&spec.name))[16..]
        );
        let state = ContainerState {
            id: id.clone(),
            name: spec.name.clone(),
            status: "created".into(),
            image_id: image_info(&spec.image).id,
            labels: spec.labels.clone(),
            ..Default::default()
        };
        s.containers.insert(
            id.clone(),
            Sim {
                spec: spec.clone(),
                state,
                started: None,
                generation: 0,
            },
        );
        Ok(id)
    }

    async fn start(&self, id: &str) -> Result<(), RuntimeError> {
        let (generation, spec) = self.start_sim(id)?;
        if let Some(me) = self.me.upgrade().filter(|_| self.timers) {
            me.arm_timer(id, &spec, generation);
            me.arm_health(id, &spec, generation);
        }
        Ok(())
    }

    async fn stop(&self, id: &str, timeout_s: i64) -> Result<(), RuntimeError> {
        self.stop_after(id, timeout_s, Duration::from_secs(1)).await
    }

    async fn kill(&self, id: &str) -> Result<(), RuntimeError> {
        if !self.state.lock().containers.contains_key(id) {
            return Err(Self::not_found(id));
        }
        self.exit_run(id, SIGKILL_EXIT, false, None);
        Ok(())
    }

    async fn remove(&self, id: &str) -> Result<(), RuntimeError> {
        // Docker's forced remove: kill (die) if running, then destroy.
        self.exit_run(id, SIGKILL_EXIT, false, None);
        let removed = self.state.lock().containers.remove(id);
        if let Some(c) = removed {
            self.send(
                &Self::owner_of(&c),
                RuntimeEvent::Destroyed { id: id.to_string() },
            );
        }
        Ok(())
    }

    async fn inspect(&self, id: &str) -> Result<ContainerState, RuntimeError> {
        let s = self.state.lock();
        s.containers
            .get(id)
            .map(|c| c.state.clone())
            .ok_or_else(|| Self::not_found(id))
    }

    async fn list(&self, label: &str, value: &str) -> Result<Vec<ContainerState>, RuntimeError> {
        let s = self.state.lock();
        let mut out: Vec<ContainerState> = s
            .containers
            .values()
            .filter(|c| c.spec.labels.get(label).map(String::as_str) == Some(value))
            .map(|c| c.state.clone())
            .collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    async fn ensure_network(
        &self,
        name: &str,
        subnet: &str,
        _gateway: &str,
        _labels: HashMap<String, String>,
    ) -> Result<(), RuntimeError> {
        let (base, _) = parse_cidr(subnet)
            .ok_or_else(|| RuntimeError::new(format!("invalid subnet {subnet}")))?;
        // Addresses from base+2 (base+1 is the gateway).
        self.state
            .lock()
            .networks
            .entry(name.to_string())
            .or_insert((base, 0));
        Ok(())
    }

    async fn remove_network(&self, name: &str) -> Result<(), RuntimeError> {
        self.state.lock().networks.remove(name);
        Ok(())
    }

    async fn stats(&self, id: &str) -> Result<serde_json::Value, RuntimeError> {
        self.synthetic_stats(id)
    }

    async fn volume_exists(&self, name: &str) -> Result<bool, RuntimeError> {
        Ok(self.state.lock().volumes.contains(name))
    }

    async fn create_volume(
        &self,
        name: &str,
        _driver: Option<&str>,
        _opts: HashMap<String, String>,
        _labels: HashMap<String, String>,
    ) -> Result<(), RuntimeError> {
        self.state.lock().volumes.insert(name.to_string());
        Ok(())
    }

    async fn remove_volume(&self, name: &str) -> Result<(), RuntimeError> {
        self.state.lock().volumes.remove(name);
        Ok(())
    }

    async fn bridge_gateway(&self) -> Option<String> {
        // No container can reach the host: there are none.
        None
    }

    fn events(&self, owner: &str) -> BoxStream<'static, Result<RuntimeEvent, RuntimeError>> {
        let owner = owner.to_string();
        let rx = self.events.subscribe();
        futures::stream::unfold(rx, move |mut rx| {
            let owner = owner.clone();
            async move {
                loop {
                    match rx.recv().await {
                        Ok((o, e)) if o == owner => return Some((Ok(e), rx)),
                        Ok(_) => continue,
                        Err(broadcast::error::RecvError::Lagged(n)) => {
                            tracing::warn!(missed = n, "simulated runtime: events dropped");
                            continue;
                        }
                        Err(broadcast::error::RecvError::Closed) => return None,
                    }
                }
            }
        })
        .boxed()
    }

    fn logs(
        &self,
        id: &str,
        since: i64,
        _follow: bool,
    ) -> BoxStream<'static, Result<(i64, String), RuntimeError>> {
        let line = {
            let s = self.state.lock();
            s.containers.get(id).map(|c| {
                format!(
                    "{NOTHING_RUNS} (container {}, image {})",
                    c.spec.name, c.spec.image
                )
            })
        };
        let at = since.max(0);
        futures::stream::iter(line.map(|l| Ok((at, l)))).boxed()
    }
}

fn image_info(image: &str) -> ImageInfo {
    ImageInfo {
        id: format!("sha256:{}", hex::encode(Sha256::digest(image.as_bytes()))),
        digest: None,
    }
}
