//! The running emulator: configuration, state store, clock and every service.

use crate::clock::Clock;
use crate::config::Config;
use crate::controllers::agent::{self, Agent, AgentEndpoints};
use crate::controllers::instance_agent::InstanceAgent;
use crate::runtime::docker::DockerRuntime;
use crate::runtime::ContainerRuntime;
use crate::services::ec2::Ec2;
use crate::services::ecr::Ecr;
use crate::services::ecs::Ecs;
use crate::services::{self, Deps, Registry};
use crate::store::{Store, StoreError, Table};
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

pub struct App {
    pub config: Config,
    pub store: Arc<Store>,
    pub clock: Clock,
    pub registry: Registry,
    pub started: Instant,
    /// Labels the containers of this data dir (OWNER_LABEL), so emulators sharing one Docker
    /// daemon never touch each other's containers.
    pub owner: String,
    /// Docker, once connected (in the background after start-up).
    pub runtime: OnceLock<Arc<dyn ContainerRuntime>>,
    /// The load balancer data plane (listener sockets, proxy, health checks).
    pub lb: Option<Arc<crate::lb::Lb>>,
    /// Cloud Map's DNS server.
    pub dns: Option<Arc<crate::dns::DnsServer>>,
    /// The AWS/ECS and AWS/ApplicationELB metrics publisher.
    pub metrics: Option<Arc<crate::controllers::metrics::Publisher>>,
    /// EFS's data plane: the FUSE mounts tasks' EFS volumes bind.
    pub efs: Option<Arc<crate::efs::EfsVolumes>>,
}

impl App {
    pub fn new(config: Config) -> Result<Arc<App>, StoreError> {
        let store = if config.ephemeral {
            Store::memory()
        } else {
            Store::open(&config.data_dir())?
        };
        let clock = Clock::new(config.time_scale);
        let registry = services::build(&Deps {
            store: store.clone(),
            clock: clock.clone(),
            config: config.clone(),
        });
        let meta: Arc<Table<String>> = Table::open(&store, "emulator.meta");
        let owner = match meta.get("owner") {
            Some(o) => o,
            None => {
                let o = uuid::Uuid::new_v4().simple().to_string();
                meta.put("owner", o.clone())
                    .map_err(|e| StoreError::Db(e.message))?;
                o
            }
        };
        let metrics = registry
            .handle::<crate::services::cloudwatch::CloudWatch>()
            .map(|cw| {
                crate::controllers::metrics::Publisher::new(
                    cw,
                    registry.handle::<Ecs>(),
                    registry.handle::<crate::services::elbv2::Elbv2>(),
                    clock.clone(),
                )
            });
        Ok(Arc::new(App {
            owner,
            metrics,
            lb: crate::lb::Lb::new(&registry, clock.clone()),
            dns: registry
                .handle::<crate::services::servicediscovery::CloudMap>()
                .map(crate::dns::DnsServer::new),
            runtime: OnceLock::new(),
            efs: registry
                .handle::<crate::services::efs::Efs>()
                .map(crate::efs::EfsVolumes::new),
            config,
            store,
            clock,
            registry,
            started: Instant::now(),
        }))
    }
}

impl App {
    /// Connects to Docker and starts the controllers. Runs after the main port is serving, so
    /// start-up does not wait on Docker. `addr` is where the main port listens.
    pub async fn start_controllers(self: &Arc<Self>, addr: SocketAddr) {
        // Load balancer listeners serve whether or not Docker is reachable.
        if let Some(lb) = &self.lb {
            tokio::spawn(lb.clone().run());
        }
        // The DNS server answers people and tests on loopback whether or not Docker is reachable.
        if let Some(dns) = &self.dns {
            match dns.listen(self.config.dns_listen).await {
                Ok(addr) => eprintln!("ecs-emulator DNS server on {addr} (udp, tcp)"),
                Err(e) => tracing::warn!(error = %e, "the DNS server cannot listen"),
            }
            tokio::spawn(dns.clone().refresh());
        }
        if let Some(efs) = &self.efs {
            tokio::spawn(efs.clone().watch());
        }
        // EC2 instances register with ECS whether or not Docker is reachable.
        if let (Some(ec2), Some(ecs)) =
            (self.registry.handle::<Ec2>(), self.registry.handle::<Ecs>())
        {
            tokio::spawn(InstanceAgent::new(ec2, ecs, self.clock.clone()).run());
        }
        if let Some(cw) = self
            .registry
            .handle::<crate::services::cloudwatch::CloudWatch>()
        {
            tokio::spawn(
                crate::controllers::alarms::AlarmController::new(cw, self.clock.clone()).run(),
            );
        }
        if let Some(metrics) = &self.metrics {
            tokio::spawn(metrics.clone().run());
        }
        if let Some(aas) = self
            .registry
            .handle::<crate::services::application_autoscaling::AppAutoScaling>()
        {
            tokio::spawn(crate::services::application_autoscaling::run_scheduler(
                aas,
                self.clock.clone(),
            ));
        }
        if let Some(asg) = self
            .registry
            .handle::<crate::services::autoscaling::AutoScaling>()
        {
            tokio::spawn(
                crate::controllers::autoscaling::AutoScalingController::new(
                    asg,
                    self.clock.clone(),
                )
                .run(),
            );
        }
        if let (Some(ecs), Some(asg)) = (
            self.registry.handle::<Ecs>(),
            self.registry
                .handle::<crate::services::autoscaling::AutoScaling>(),
        ) {
            tokio::spawn(
                crate::controllers::capacity::CapacityController::new(
                    ecs,
                    asg,
                    self.registry
                        .handle::<crate::services::cloudwatch::CloudWatch>(),
                    self.clock.clone(),
                )
                .run(),
            );
        }
        if let Some(ecr) = self.registry.handle::<Ecr>() {
            tokio::spawn(crate::services::ecr::run_lifecycle(ecr, self.clock.clone()));
        }
        if let Some(ecs) = self.registry.handle::<Ecs>() {
            tokio::spawn(
                crate::controllers::scheduler::Scheduler::new(ecs, self.clock.clone()).run(),
            );
        }
        let runtime: Arc<dyn ContainerRuntime> =
            match tokio::time::timeout(Duration::from_secs(10), DockerRuntime::connect()).await {
                Ok(Ok(d)) => Arc::new(d),
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "Docker is not reachable: tasks will not start");
                    return;
                }
                Err(_) => {
                    tracing::warn!("Docker did not answer within 10 s: tasks will not start");
                    return;
                }
            };
        let _ = self.runtime.set(runtime.clone());
        if let Some(metrics) = &self.metrics {
            metrics.set_runtime(runtime.clone());
        }
        let ecr = self.registry.handle::<Ecr>();
        let registry_host = ecr
            .as_ref()
            .map(|e| e.registry_host())
            .unwrap_or_else(|| format!("localhost:{}", addr.port()));
        let mut endpoints = AgentEndpoints {
            registry_host,
            ecr,
            ssm: self.registry.handle::<crate::services::ssm::Ssm>(),
            logs: self.registry.handle::<crate::services::logs::Logs>(),
            efs: self.efs.clone(),
            ..Default::default()
        };
        // Containers reach the emulator through the Docker bridge's gateway address.
        if let Some(gateway) = runtime.bridge_gateway().await {
            match self.listen_for_containers(&gateway, addr).await {
                Ok(url) => endpoints.containers.aws_endpoint = Some(url),
                Err(e) => {
                    tracing::warn!(error = %e, %gateway, "containers cannot reach the emulator")
                }
            }
        }
        if let (Some(dns), Some(gateway)) = (&self.dns, runtime.bridge_gateway().await) {
            endpoints.containers.dns = dns
                .listen_for_containers(&gateway, self.config.dns_container_ip)
                .await;
        }
        let Some(ecs) = self.registry.handle::<Ecs>() else {
            return;
        };
        if let Some(sts) = self.registry.handle::<crate::services::sts::Sts>() {
            let task_endpoints = crate::task_endpoints::TaskEndpoints::new(
                ecs.clone(),
                sts,
                runtime.clone(),
                self.clock.clone(),
            );
            let gateway = runtime.bridge_gateway().await;
            endpoints.containers.task_endpoint = crate::task_endpoints::listen::start(
                task_endpoints,
                self.config.task_endpoint_ip,
                gateway,
            )
            .await;
        }
        let agent = Agent::new(
            ecs,
            runtime,
            self.owner.clone(),
            self.clock.clone(),
            endpoints,
        );
        tokio::spawn(agent.run());
    }

    /// Serves the main router on the Docker bridge gateway too (same port when free).
    async fn listen_for_containers(
        self: &Arc<Self>,
        gateway: &str,
        main: SocketAddr,
    ) -> std::io::Result<String> {
        if main.ip().is_unspecified() {
            return Ok(format!("http://{gateway}:{}", main.port()));
        }
        let listener = match tokio::net::TcpListener::bind((gateway, main.port())).await {
            Ok(l) => l,
            Err(_) => tokio::net::TcpListener::bind((gateway, 0)).await?,
        };
        let url = format!("http://{}", listener.local_addr()?);
        let app = self.clone();
        tokio::spawn(async move {
            let _ = crate::server::run(listener, app, std::future::pending()).await;
        });
        Ok(url)
    }

    /// Drops all state and every container this emulator owns.
    pub async fn reset(&self) -> Result<usize, StoreError> {
        // State first: while containers are being removed, the service scheduler would otherwise
        // see its tasks gone and start replacements that outlive the reset.
        self.store.reset()?;
        let removed = match self.runtime.get() {
            Some(rt) => agent::remove_all(rt.as_ref(), &self.owner).await,
            None => 0,
        };
        // The FUSE mounts last: no container binds them any more.
        if let Some(efs) = &self.efs {
            efs.release_all();
        }
        // The owner id lives in the store too: keep it, so later containers stay recognisable.
        let meta: Arc<Table<String>> = Table::open(&self.store, "emulator.meta");
        meta.put("owner", self.owner.clone())
            .map_err(|e| StoreError::Db(e.message))?;
        Ok(removed)
    }
}
