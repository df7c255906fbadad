//! The running emulator: configuration, state store, clock and every service.

use crate::clock::Clock;
use crate::config::{Config, RuntimeKind};
use crate::controllers::agent::{self, Agent, AgentEndpoints};
use crate::controllers::instance_agent::InstanceAgent;
use crate::runtime::docker::DockerRuntime;
use crate::runtime::simulated::SimulatedRuntime;
use crate::runtime::ContainerRuntime;
use crate::services::ec2::Ec2;
use crate::services::ecr::Ecr;
use crate::services::ecs::Ecs;
use crate::services::{
    application_autoscaling, autoscaling, cloudwatch, ec2, ecr, ecs, efs, elb, elbv2, iam, logs,
    servicediscovery, ssm, sts, Deps, Registry,
};
use crate::shutdown::Shutdown;
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
    /// Faults made through /_emulator/faults (their rows, and the data planes' view of them).
    pub faults: Arc<crate::faults::Faults>,
    /// What the control API requires (--admin-token, or made up under --strict-auth).
    pub admin_token: Option<String>,
    /// The one shutdown signal every listener and controller loop gets.
    shutdown: crate::shutdown::Trigger,
}

impl App {
    pub fn new(config: Config) -> Result<Arc<App>, StoreError> {
        let store = if config.ephemeral {
            Store::memory()
        } else {
            Store::open(&config.data_dir())?
        };
        let clock = Clock::new(config.time_scale);
        let mut registry = build(&Deps {
            store: store.clone(),
            clock: clock.clone(),
            config: config.clone(),
        });
        // The load balancer data plane and the instance agent find the faults' view by type.
        let faults = crate::faults::Faults::new(&store);
        registry.provide(faults.network());
        let meta: Arc<Table<String>> = Table::open(&store, "emulator.meta");
        let owner = match meta.get("owner") {
            Some(o) => o,
            None => {
                let o = uuid::Uuid::new_v4().simple().to_string();
                meta.put("owner", o.clone())?;
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
        let admin_token = config
            .admin_token
            .clone()
            .filter(|t| !t.is_empty())
            .or_else(|| {
                config
                    .strict_auth
                    .then(|| uuid::Uuid::new_v4().simple().to_string())
            });
        Ok(Arc::new(App {
            admin_token,
            owner,
            faults,
            metrics,
            lb: crate::lb::Lb::new(&registry, clock.clone(), config.lb_threads.map(usize::from)),
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
            shutdown: crate::shutdown::channel().0,
        }))
    }
}

/// Builds every service and registers its operations, each after the services it calls, so
/// every handle is passed to a constructor and no link is made late. The order is the
/// dependency order (arrows point at what a service calls):
///
/// IAM ← STS; EC2 ← Cloud Map, EFS, ELBv2 ← ELB; EC2, ELBv2, CloudWatch ← EC2 Auto Scaling;
/// EC2, ELBv2, Cloud Map, EC2 Auto Scaling ← ECS; CloudWatch, ECS ← Application Auto Scaling.
///
/// The one way back, a CloudWatch alarm running an Auto Scaling policy, goes through the narrow
/// `AlarmActionTarget` trait that the scaling services register with CloudWatch.
pub fn build(deps: &Deps) -> Registry {
    let mut r = Registry::default();
    let iam = iam::register(&mut r, deps);
    sts::register(&mut r, deps, iam.clone());
    let ec2 = ec2::register(&mut r, deps);
    let cloudwatch = cloudwatch::register(&mut r, deps);
    logs::register(&mut r, deps);
    ssm::register(&mut r, deps);
    ecr::register(&mut r, deps, iam);
    efs::register(&mut r, deps, ec2.clone());
    let cloudmap = servicediscovery::register(&mut r, deps, ec2.clone());
    let elbv2 = elbv2::register(&mut r, deps, ec2.clone());
    elb::register(&mut r, deps, ec2.clone(), elbv2.clone());
    let autoscaling =
        autoscaling::register(&mut r, deps, ec2.clone(), elbv2.clone(), cloudwatch.clone());
    let ecs = ecs::register(
        &mut r,
        deps,
        ecs::EcsDeps {
            ec2,
            elbv2,
            cloudmap,
            autoscaling,
        },
    );
    application_autoscaling::register(&mut r, deps, cloudwatch, ecs);
    r
}

impl App {
    /// Tells the services the address really listened on (`--listen` may say port 0): ECR's
    /// repository URIs and the registry host the task agents pull from name that port. Called
    /// before the controllers start, which read it once.
    pub fn listening_on(&self, addr: std::net::SocketAddr) {
        if let Some(ecr) = self.registry.handle::<Ecr>() {
            ecr.set_port(addr.port());
        }
    }

    /// The shutdown signal, for a listener or a loop.
    pub fn shutdown(&self) -> Shutdown {
        self.shutdown.subscribe()
    }

    /// Fires the shutdown signal: listeners stop accepting, loops stop.
    pub fn begin_shutdown(&self) {
        self.shutdown.fire();
    }

    /// Spawns a controller loop that stops when the shutdown signal fires.
    fn spawn(&self, work: impl std::future::Future<Output = ()> + Send + 'static) {
        tokio::spawn(self.shutdown().run_until(work));
    }

    /// Connects to Docker and starts the controllers. Runs after the main port is serving, so
    /// start-up does not wait on Docker. `addr` is where the main port listens.
    pub async fn start_controllers(self: &Arc<Self>, addr: SocketAddr) {
        // Load balancer listeners serve whether or not Docker is reachable.
        if let Some(lb) = &self.lb {
            self.spawn(lb.clone().run(self.shutdown()));
        }
        // The DNS server answers people and tests on loopback whether or not Docker is reachable.
        if let Some(dns) = &self.dns {
            match dns.listen(self.config.dns_listen).await {
                Ok(addr) => eprintln!("ecs-emulator DNS server on {addr} (udp, tcp)"),
                Err(e) => tracing::warn!(error = %e, "the DNS server cannot listen"),
            }
            self.spawn(dns.clone().refresh());
        }
        if let Some(efs) = &self.efs {
            self.spawn(efs.clone().watch());
        }
        tokio::spawn(
            self.faults
                .clone()
                .run(self.registry.handle::<Ecs>(), self.store.watch_changes()),
        );
        // EC2 instances register with ECS whether or not Docker is reachable.
        if let (Some(ec2), Some(ecs)) =
            (self.registry.handle::<Ec2>(), self.registry.handle::<Ecs>())
        {
            let network = self.registry.handle::<crate::faults::network::Network>();
            self.spawn(InstanceAgent::new(ec2, ecs, self.clock.clone(), network).run());
        }
        if let Some(cw) = self
            .registry
            .handle::<crate::services::cloudwatch::CloudWatch>()
        {
            self.spawn(
                crate::controllers::alarms::AlarmController::new(cw, self.clock.clone()).run(),
            );
        }
        if let Some(metrics) = &self.metrics {
            self.spawn(metrics.clone().run());
        }
        if let Some(aas) = self
            .registry
            .handle::<crate::services::application_autoscaling::AppAutoScaling>()
        {
            self.spawn(crate::services::application_autoscaling::run_scheduler(
                aas,
                self.clock.clone(),
            ));
        }
        if let Some(asg) = self
            .registry
            .handle::<crate::services::autoscaling::AutoScaling>()
        {
            self.spawn(
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
            self.spawn(
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
            self.spawn(crate::services::ecr::run_lifecycle(ecr, self.clock.clone()));
        }
        if let Some(ecs) = self.registry.handle::<Ecs>() {
            self.spawn(
                crate::controllers::scheduler::Scheduler::new(ecs, self.clock.clone()).run(),
            );
        }
        if let (Some(ecs), Some(cw)) = (
            self.registry.handle::<Ecs>(),
            self.registry
                .handle::<crate::services::cloudwatch::CloudWatch>(),
        ) {
            tokio::spawn(
                crate::controllers::deployment_alarms::DeploymentAlarmController::new(
                    ecs,
                    cw,
                    self.clock.clone(),
                )
                .run(),
            );
        }
        let Some(runtime) = self.connect_runtime().await else {
            return;
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
                self.config.peers_dir.clone(),
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
        self.spawn(agent.run());
    }

    /// Docker, or the simulated runtime with `--runtime simulated`; None when Docker is not
    /// reachable.
    async fn connect_runtime(&self) -> Option<Arc<dyn ContainerRuntime>> {
        if self.config.runtime == RuntimeKind::Simulated {
            let warning = "--runtime simulated: NOTHING RUNS. Tasks go through their states, but \
                           no container is created: containers are timers, stats are synthetic \
                           and DescribeTasks marks every task (attribute ecs-emulator.runtime)";
            eprintln!("ecs-emulator: {warning}");
            tracing::warn!("{warning}");
            return Some(SimulatedRuntime::new(self.clock.clone()));
        }
        match tokio::time::timeout(Duration::from_secs(10), DockerRuntime::connect()).await {
            Ok(Ok(d)) => Some(Arc::new(d)),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "{}", crate::runtime::docker::unreachable_hint());
                None
            }
            Err(_) => {
                tracing::warn!(
                    "{} (no answer within 10 s)",
                    crate::runtime::docker::unreachable_hint()
                );
                None
            }
        }
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
        let shutdown = self.shutdown().wait();
        tokio::spawn(async move {
            let router = crate::server::container_router(app);
            let _ = crate::serve::serve(listener, router, shutdown).await;
        });
        Ok(url)
    }

    /// Drops all state and every container, volume and network this emulator owns, atomically:
    /// the reset fence closes first (container starts and stops and scheduler passes under way
    /// finish, no new ones begin), then the containers go, then the state, then the fence
    /// opens. Blobs nothing references any more and leftover uploads go too.
    pub async fn reset(&self) -> Result<usize, StoreError> {
        let ecs = self.registry.handle::<Ecs>();
        let _closed = match &ecs {
            Some(ecs) => {
                let closed = ecs.fence.close(RESET_FENCE_WAIT).await;
                if closed.is_none() {
                    tracing::warn!(
                        "reset: container starts still under way after {RESET_FENCE_WAIT:?}; resetting anyway"
                    );
                }
                closed
            }
            None => None,
        };
        let removed = match self.runtime.get() {
            Some(rt) => {
                let n = agent::remove_all(rt.as_ref(), &self.owner).await;
                if let Err(e) = rt
                    .remove_labelled_volumes_and_networks(crate::runtime::OWNER_LABEL, &self.owner)
                    .await
                {
                    tracing::warn!(error = %e, "reset: cannot remove the emulator's volumes and networks");
                }
                n
            }
            None => 0,
        };
        // The FUSE mounts after the containers: no container binds them any more.
        if let Some(efs) = &self.efs {
            efs.release_all();
        }
        self.store.reset()?;
        if let Some(efs) = &self.efs {
            efs.forget_all_data();
        }
        // The owner id lives in the store too: keep it, so later containers stay recognisable.
        let meta: Arc<Table<String>> = Table::open(&self.store, "emulator.meta");
        meta.put("owner", self.owner.clone())?;
        // No image is left, so no blob is referenced; uploads under way go too.
        if let Some(ecr) = self.registry.handle::<Ecr>() {
            let blobs = ecr.blobs.clone();
            match tokio::task::spawn_blocking(move || blobs.remove_all()).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "reset: cannot remove blobs"),
                Err(e) => tracing::warn!(error = %e, "reset: blob removal failed"),
            }
        }
        Ok(removed)
    }
}

/// How long a reset waits for container starts and stops under way (image pulls included).
const RESET_FENCE_WAIT: Duration = Duration::from_secs(120);
