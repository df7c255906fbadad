//! The Docker Engine runtime, through bollard.

use super::{
    ContainerRuntime, ContainerSpec, ContainerState, ImageInfo, PortSpec, RegistryAuth,
    RuntimeError, RuntimeEvent, OWNER_LABEL,
};
use async_trait::async_trait;
use bollard::models::{
    ContainerCreateBody, EndpointIpamConfig, EndpointSettings, HealthConfig, HostConfig, Ipam,
    IpamConfig, NetworkCreateRequest, NetworkingConfig, PortBinding, ResourcesUlimits,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, CreateImageOptionsBuilder, EventsOptionsBuilder,
    KillContainerOptionsBuilder, ListContainersOptionsBuilder, LogsOptionsBuilder,
    RemoveContainerOptionsBuilder, StatsOptionsBuilder, StopContainerOptionsBuilder,
};
use bollard::Docker;
use futures::stream::{BoxStream, StreamExt};
use std::collections::HashMap;

pub struct DockerRuntime {
    docker: Docker,
}

fn err(e: bollard::errors::Error) -> RuntimeError {
    let not_found = matches!(
        e,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    );
    let message = match e {
        bollard::errors::Error::DockerResponseServerError { message, .. } => message,
        other => other.to_string(),
    };
    RuntimeError { message, not_found }
}

impl DockerRuntime {
    /// Connects to the local Docker Engine (DOCKER_HOST or the default socket) and negotiates the
    /// API version, so older engines work.
    pub async fn connect() -> Result<DockerRuntime, RuntimeError> {
        let docker = Docker::connect_with_local_defaults().map_err(err)?;
        let docker = docker.negotiate_version().await.map_err(err)?;
        docker.ping().await.map_err(err)?;
        Ok(DockerRuntime { docker })
    }
}

/// Where the Docker client looks for the daemon (DOCKER_HOST, else the local socket), for
/// messages that say what to do.
pub fn daemon_address() -> String {
    std::env::var("DOCKER_HOST")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unix:///var/run/docker.sock".into())
}

/// What to tell a user whose Docker daemon does not answer.
pub fn unreachable_hint() -> String {
    format!(
        "Docker is not reachable at {}: tasks will not start. Start it (`sudo systemctl start \
         docker`, or Docker Desktop) or point DOCKER_HOST at it, then restart the emulator",
        daemon_address()
    )
}

fn port_key(p: &PortSpec) -> String {
    format!("{}/{}", p.container_port, p.protocol)
}

fn to_state(c: bollard::models::ContainerInspectResponse) -> ContainerState {
    let state = c.state.unwrap_or_default();
    let config = c.config.unwrap_or_default();
    let network = c.network_settings.unwrap_or_default();
    let mut ports = Vec::new();
    for (key, bindings) in network.ports.unwrap_or_default() {
        let (port, proto) = key.split_once('/').unwrap_or((&key, "tcp"));
        let Ok(container_port) = port.parse::<u16>() else {
            continue;
        };
        for b in bindings.unwrap_or_default() {
            ports.push(PortSpec {
                container_port,
                protocol: proto.to_string(),
                host_ip: b.host_ip.unwrap_or_default(),
                host_port: b.host_port.and_then(|p| p.parse().ok()),
            });
        }
    }
    let ips = network
        .networks
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(name, ep)| {
            ep.ip_address
                .filter(|ip| !ip.is_empty())
                .map(|ip| (name, ip))
        })
        .collect();
    ContainerState {
        id: c.id.unwrap_or_default(),
        name: c
            .name
            .unwrap_or_default()
            .trim_start_matches('/')
            .to_string(),
        running: state.running.unwrap_or(false),
        status: state.status.map(|s| s.to_string()).unwrap_or_default(),
        exit_code: state.exit_code,
        oom_killed: state.oom_killed.unwrap_or(false),
        error: state.error.unwrap_or_default(),
        health: state
            .health
            .and_then(|h| h.status)
            .map(|s| s.to_string())
            .filter(|s| s != "none" && !s.is_empty()),
        ports,
        ips,
        started_at: state.started_at,
        finished_at: state.finished_at,
        image_id: c.image.unwrap_or_default(),
        labels: config.labels.unwrap_or_default(),
    }
}

#[async_trait]
impl ContainerRuntime for DockerRuntime {
    fn name(&self) -> &'static str {
        "docker"
    }

    async fn local_image(&self, image: &str) -> Result<Option<ImageInfo>, RuntimeError> {
        match self.docker.inspect_image(image).await {
            Ok(i) => {
                let digest = i
                    .repo_digests
                    .unwrap_or_default()
                    .into_iter()
                    .find_map(|d| d.split_once('@').map(|(_, d)| d.to_string()));
                Ok(Some(ImageInfo {
                    id: i.id.unwrap_or_default(),
                    digest,
                }))
            }
            Err(e) => {
                let e = err(e);
                if e.not_found {
                    Ok(None)
                } else {
                    Err(e)
                }
            }
        }
    }

    async fn pull(
        &self,
        image: &str,
        auth: Option<RegistryAuth>,
    ) -> Result<ImageInfo, RuntimeError> {
        let (name, tag) = split_image(image);
        let options = CreateImageOptionsBuilder::default()
            .from_image(&name)
            .tag(&tag)
            .build();
        let credentials = auth.map(|a| bollard::auth::DockerCredentials {
            username: Some(a.username),
            password: Some(a.password),
            serveraddress: Some(a.server),
            ..Default::default()
        });
        let mut stream = self.docker.create_image(Some(options), None, credentials);
        while let Some(item) = stream.next().await {
            let info = item.map_err(err)?;
            if let Some(e) = info.error_detail.and_then(|d| d.message) {
                return Err(RuntimeError::new(e));
            }
        }
        self.local_image(image).await?.ok_or_else(|| RuntimeError {
            message: format!("image {image} not found after pull"),
            not_found: true,
        })
    }

    async fn create(&self, spec: &ContainerSpec) -> Result<String, RuntimeError> {
        let mut port_bindings: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
        for p in &spec.ports {
            port_bindings
                .entry(port_key(p))
                .or_default()
                .get_or_insert_with(Vec::new)
                .push(PortBinding {
                    host_ip: Some(p.host_ip.clone()),
                    host_port: Some(p.host_port.map(|h| h.to_string()).unwrap_or_default()),
                });
        }
        let exposed: Vec<String> = spec.ports.iter().map(port_key).collect();
        let host_config = HostConfig {
            cpu_shares: spec.cpu_shares,
            nano_cpus: spec.nano_cpus,
            memory: spec.memory_bytes,
            memory_reservation: spec.memory_reservation_bytes,
            network_mode: Some(spec.network_mode.clone()),
            port_bindings: (!port_bindings.is_empty()).then_some(port_bindings),
            links: (!spec.links.is_empty()).then(|| spec.links.clone()),
            binds: (!spec.binds.is_empty()).then(|| spec.binds.clone()),
            ulimits: (!spec.ulimits.is_empty()).then(|| {
                spec.ulimits
                    .iter()
                    .map(|(name, soft, hard)| ResourcesUlimits {
                        name: Some(name.clone()),
                        soft: Some(*soft),
                        hard: Some(*hard),
                    })
                    .collect()
            }),
            readonly_rootfs: Some(spec.readonly_rootfs),
            privileged: Some(spec.privileged),
            init: spec.init.then_some(true),
            cap_add: (!spec.cap_add.is_empty()).then(|| spec.cap_add.clone()),
            cap_drop: (!spec.cap_drop.is_empty()).then(|| spec.cap_drop.clone()),
            extra_hosts: (!spec.extra_hosts.is_empty()).then(|| spec.extra_hosts.clone()),
            dns: (!spec.dns.is_empty()).then(|| spec.dns.clone()),
            dns_search: (!spec.dns_search.is_empty()).then(|| spec.dns_search.clone()),
            sysctls: (!spec.sysctls.is_empty()).then(|| spec.sysctls.clone()),
            security_opt: (!spec.security_opt.is_empty()).then(|| spec.security_opt.clone()),
            ..Default::default()
        };
        let networking_config = spec.ipv4_address.as_ref().map(|ip| NetworkingConfig {
            endpoints_config: Some(HashMap::from([(
                spec.network_mode.clone(),
                EndpointSettings {
                    ipam_config: Some(EndpointIpamConfig {
                        ipv4_address: Some(ip.clone()),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            )])),
        });
        let body = ContainerCreateBody {
            image: Some(spec.image.clone()),
            entrypoint: spec.entrypoint.clone(),
            cmd: spec.command.clone(),
            env: Some(spec.env.clone()),
            labels: Some(spec.labels.clone()),
            working_dir: spec.working_dir.clone(),
            user: spec.user.clone(),
            hostname: spec.hostname.clone(),
            exposed_ports: (!exposed.is_empty()).then_some(exposed),
            stop_timeout: spec.stop_timeout_s,
            healthcheck: spec.health.as_ref().map(|h| HealthConfig {
                test: Some(h.test.clone()),
                interval: Some(h.interval_s * 1_000_000_000),
                timeout: Some(h.timeout_s * 1_000_000_000),
                retries: Some(h.retries),
                start_period: Some(h.start_period_s * 1_000_000_000),
                ..Default::default()
            }),
            host_config: Some(host_config),
            networking_config,
            ..Default::default()
        };
        let options = CreateContainerOptionsBuilder::default()
            .name(&spec.name)
            .build();
        let created = self
            .docker
            .create_container(Some(options), body)
            .await
            .map_err(err)?;
        Ok(created.id)
    }

    async fn start(&self, id: &str) -> Result<(), RuntimeError> {
        self.docker.start_container(id, None).await.map_err(err)
    }

    async fn stop(&self, id: &str, timeout_s: i64) -> Result<(), RuntimeError> {
        let options = StopContainerOptionsBuilder::default()
            .t(timeout_s as i32)
            .build();
        match self.docker.stop_container(id, Some(options)).await {
            Ok(()) => Ok(()),
            // 304: already stopped.
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 304, ..
            }) => Ok(()),
            Err(e) => Err(err(e)),
        }
    }

    async fn kill(&self, id: &str) -> Result<(), RuntimeError> {
        let options = KillContainerOptionsBuilder::default()
            .signal("KILL")
            .build();
        self.docker
            .kill_container(id, Some(options))
            .await
            .map_err(err)
    }

    async fn remove(&self, id: &str) -> Result<(), RuntimeError> {
        let options = RemoveContainerOptionsBuilder::default()
            .force(true)
            .v(true)
            .build();
        match self.docker.remove_container(id, Some(options)).await {
            Ok(()) => Ok(()),
            Err(e) => {
                let e = err(e);
                if e.not_found {
                    Ok(())
                } else {
                    Err(e)
                }
            }
        }
    }

    async fn inspect(&self, id: &str) -> Result<ContainerState, RuntimeError> {
        self.docker
            .inspect_container(id, None)
            .await
            .map(to_state)
            .map_err(err)
    }

    async fn list(&self, label: &str, value: &str) -> Result<Vec<ContainerState>, RuntimeError> {
        let filters = HashMap::from([("label".to_string(), vec![format!("{label}={value}")])]);
        let options = ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&filters)
            .build();
        let summaries = self
            .docker
            .list_containers(Some(options))
            .await
            .map_err(err)?;
        let mut out = Vec::with_capacity(summaries.len());
        for s in summaries {
            if let Some(id) = s.id {
                match self.inspect(&id).await {
                    Ok(state) => out.push(state),
                    Err(e) if e.not_found => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(out)
    }

    async fn ensure_network(
        &self,
        name: &str,
        subnet: &str,
        gateway: &str,
        labels: HashMap<String, String>,
    ) -> Result<(), RuntimeError> {
        if self.docker.inspect_network(name, None).await.is_ok() {
            return Ok(());
        }
        let request = NetworkCreateRequest {
            name: name.to_string(),
            driver: Some("bridge".into()),
            ipam: Some(Ipam {
                config: Some(vec![IpamConfig {
                    subnet: Some(subnet.to_string()),
                    gateway: Some(gateway.to_string()),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            labels: Some(labels),
            ..Default::default()
        };
        match self.docker.create_network(request).await {
            Ok(_) => Ok(()),
            // Another task created it at the same moment.
            Err(_) if self.docker.inspect_network(name, None).await.is_ok() => Ok(()),
            Err(e) => Err(err(e)),
        }
    }

    async fn remove_network(&self, name: &str) -> Result<(), RuntimeError> {
        match self.docker.remove_network(name).await {
            Ok(()) => Ok(()),
            Err(e) => {
                let e = err(e);
                if e.not_found {
                    Ok(())
                } else {
                    Err(e)
                }
            }
        }
    }

    async fn stats(&self, id: &str) -> Result<serde_json::Value, RuntimeError> {
        let options = StatsOptionsBuilder::default()
            .stream(false)
            .one_shot(false)
            .build();
        let mut stream = self.docker.stats(id, Some(options));
        match stream.next().await {
            Some(Ok(s)) => serde_json::to_value(s).map_err(|e| RuntimeError::new(e.to_string())),
            Some(Err(e)) => Err(err(e)),
            None => Err(RuntimeError::new("no stats")),
        }
    }

    async fn volume_exists(&self, name: &str) -> Result<bool, RuntimeError> {
        match self.docker.inspect_volume(name).await {
            Ok(_) => Ok(true),
            Err(e) => {
                let e = err(e);
                if e.not_found {
                    Ok(false)
                } else {
                    Err(e)
                }
            }
        }
    }

    async fn create_volume(
        &self,
        name: &str,
        driver: Option<&str>,
        opts: HashMap<String, String>,
        labels: HashMap<String, String>,
    ) -> Result<(), RuntimeError> {
        let request = bollard::models::VolumeCreateRequest {
            name: Some(name.to_string()),
            driver: driver.map(str::to_string),
            driver_opts: (!opts.is_empty()).then_some(opts),
            labels: Some(labels),
            ..Default::default()
        };
        self.docker
            .create_volume(request)
            .await
            .map(|_| ())
            .map_err(err)
    }

    async fn remove_volume(&self, name: &str) -> Result<(), RuntimeError> {
        match self
            .docker
            .remove_volume(name, None::<bollard::query_parameters::RemoveVolumeOptions>)
            .await
        {
            Ok(()) => Ok(()),
            Err(e) => {
                let e = err(e);
                if e.not_found {
                    Ok(())
                } else {
                    Err(e)
                }
            }
        }
    }

    async fn remove_labelled_volumes_and_networks(
        &self,
        label: &str,
        value: &str,
    ) -> Result<usize, RuntimeError> {
        let filters = HashMap::from([("label".to_string(), vec![format!("{label}={value}")])]);
        let mut removed = 0;
        let volumes = self
            .docker
            .list_volumes(Some(bollard::query_parameters::ListVolumesOptions {
                filters: Some(filters.clone()),
            }))
            .await
            .map_err(err)?;
        for v in volumes.volumes.unwrap_or_default() {
            if self.remove_volume(&v.name).await.is_ok() {
                removed += 1;
            }
        }
        let networks = self
            .docker
            .list_networks(Some(bollard::query_parameters::ListNetworksOptions {
                filters: Some(filters),
            }))
            .await
            .map_err(err)?;
        for n in networks {
            if let Some(name) = n.name {
                if self.remove_network(&name).await.is_ok() {
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }

    async fn ping(&self) -> Result<(), RuntimeError> {
        match tokio::time::timeout(std::time::Duration::from_secs(5), self.docker.ping()).await {
            Ok(r) => r.map(|_| ()).map_err(err),
            Err(_) => Err(RuntimeError::new("Docker did not answer /_ping within 5 s")),
        }
    }

    async fn bridge_gateway(&self) -> Option<String> {
        let net = self.docker.inspect_network("bridge", None).await.ok()?;
        // Older engines leave Gateway out of the default bridge's IPAM config: it is then the
        // subnet's first address.
        net.ipam?.config?.into_iter().find_map(|c| {
            c.gateway.filter(|g| !g.is_empty()).or_else(|| {
                let subnet = c.subnet?;
                let ip: std::net::Ipv4Addr = subnet.split('/').next()?.parse().ok()?;
                Some(std::net::Ipv4Addr::from(u32::from(ip) + 1).to_string())
            })
        })
    }

    fn events(&self, owner: &str) -> BoxStream<'static, Result<RuntimeEvent, RuntimeError>> {
        let filters = HashMap::from([
            ("type".to_string(), vec!["container".to_string()]),
            ("label".to_string(), vec![format!("{OWNER_LABEL}={owner}")]),
        ]);
        let options = EventsOptionsBuilder::default().filters(&filters).build();
        self.docker
            .events(Some(options))
            .filter_map(|item| async move {
                let msg = match item {
                    Ok(m) => m,
                    Err(e) => return Some(Err(err(e))),
                };
                let actor = msg.actor.unwrap_or_default();
                let id = actor.id.unwrap_or_default();
                let attrs = actor.attributes.unwrap_or_default();
                let action = msg.action.unwrap_or_default();
                match action.as_str() {
                    "die" => Some(Ok(RuntimeEvent::Died {
                        id,
                        exit_code: attrs.get("exitCode").and_then(|c| c.parse().ok()),
                    })),
                    "oom" => Some(Ok(RuntimeEvent::Oom { id })),
                    "destroy" => Some(Ok(RuntimeEvent::Destroyed { id })),
                    a if a.starts_with("health_status") => Some(Ok(RuntimeEvent::Health {
                        id,
                        status: a.rsplit(": ").next().unwrap_or_default().trim().to_string(),
                    })),
                    _ => None,
                }
            })
            .boxed()
    }

    fn logs(
        &self,
        id: &str,
        since: i64,
        follow: bool,
    ) -> BoxStream<'static, Result<(i64, String), RuntimeError>> {
        let options = LogsOptionsBuilder::default()
            .stdout(true)
            .stderr(true)
            .timestamps(true)
            .follow(follow)
            .since(since as i32)
            .build();
        self.docker
            .logs(id, Some(options))
            .map(|item| {
                let out = item.map_err(err)?;
                let text = String::from_utf8_lossy(&out.into_bytes()).into_owned();
                // "2026-01-01T00:00:00.123456789Z message"
                let (ts, line) = text.split_once(' ').unwrap_or(("", &text));
                let millis = chrono::DateTime::parse_from_rfc3339(ts)
                    .map(|t| t.timestamp_millis())
                    .unwrap_or(0);
                Ok((millis, line.trim_end_matches('\n').to_string()))
            })
            .boxed()
    }
}

/// "repo/name:tag" or "repo/name@sha256:…" → (name, tag or digest).
pub fn split_image(image: &str) -> (String, String) {
    if let Some((name, digest)) = image.split_once('@') {
        return (name.to_string(), digest.to_string());
    }
    // A colon after the last slash separates the tag (a colon before it is a registry port).
    let slash = image.rfind('/').map(|i| i + 1).unwrap_or(0);
    match image[slash..].rfind(':') {
        Some(i) => (
            image[..slash + i].to_string(),
            image[slash + i + 1..].to_string(),
        ),
        None => (image.to_string(), "latest".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_names_split_into_name_and_tag() {
        assert_eq!(split_image("busybox"), ("busybox".into(), "latest".into()));
        assert_eq!(
            split_image("localhost:4566/app:v1"),
            ("localhost:4566/app".into(), "v1".into())
        );
        assert_eq!(
            split_image("localhost:4566/app"),
            ("localhost:4566/app".into(), "latest".into())
        );
        assert_eq!(
            split_image("app@sha256:ab"),
            ("app".into(), "sha256:ab".into())
        );
    }
}
