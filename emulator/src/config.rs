//! Command-line flags, each with an environment variable.

use clap::{Parser, Subcommand, ValueEnum};
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, Clone, Parser)]
#[command(
    name = "ecs-emulator",
    version,
    about = "A local emulator of Amazon ECS and the services around it"
)]
pub struct Config {
    /// Address of the main port (every AWS API, the registry and the control API).
    #[arg(
        long,
        env = "ECS_EMULATOR_LISTEN",
        default_value = "127.0.0.1:4566",
        global = true
    )]
    pub listen: SocketAddr,

    /// Where state is kept. Default: $XDG_DATA_HOME/ecs-emulator, else ./.ecs-emulator.
    #[arg(long, env = "ECS_EMULATOR_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,

    /// Keep all state in memory; nothing survives a restart.
    #[arg(long, env = "ECS_EMULATOR_EPHEMERAL", global = true)]
    pub ephemeral: bool,

    /// Region of unsigned requests (signed requests carry their own).
    #[arg(
        long,
        env = "ECS_EMULATOR_REGION",
        default_value = "us-east-1",
        global = true
    )]
    pub region: String,

    /// The account every request acts in.
    #[arg(
        long,
        env = "ECS_EMULATOR_ACCOUNT_ID",
        default_value = "000000000000",
        global = true
    )]
    pub account_id: String,

    /// Speed of the emulator clock relative to real time (60: a minute passes in a second).
    #[arg(
        long,
        env = "ECS_EMULATOR_TIME_SCALE",
        default_value_t = 1.0,
        global = true
    )]
    pub time_scale: f64,

    /// Dedicated threads that serve load balancer listeners (each connection, and the
    /// connections to targets it opens, stays on one). Default: none, listeners are served on
    /// the emulator's shared runtime (faster on an idle machine; docs/benchmarks.md).
    #[arg(long, env = "ECS_EMULATOR_LB_THREADS", global = true, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub lb_threads: Option<u16>,

    /// Log filter (tracing's EnvFilter syntax: info, debug, ecs_emulator=trace, …).
    #[arg(
        long,
        env = "ECS_EMULATOR_LOG_LEVEL",
        default_value = "info",
        global = true
    )]
    pub log_level: String,

    /// Log format.
    #[arg(long, env = "ECS_EMULATOR_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,

    /// Where task containers run: `docker` (the Docker Engine), or `simulated` (nothing runs:
    /// containers are timers in memory with synthetic stats, for scale tests and machines
    /// without Docker; DescribeTasks says so).
    #[arg(long, env = "ECS_EMULATOR_RUNTIME", value_enum, default_value_t = RuntimeKind::Docker, global = true)]
    pub runtime: RuntimeKind,

    /// RunInstances (and launch templates, Auto Scaling groups) launch any well-formed AMI id,
    /// so production AMI ids hard-coded in templates work locally; by default, as in AWS, an id
    /// EC2 does not know (built-in AMIs, RegisterImage) is InvalidAMIID.NotFound.
    #[arg(long, env = "ECS_EMULATOR_ACCEPT_ANY_AMI", global = true)]
    pub accept_any_ami: bool,

    /// Verify SigV4 signatures against --auth-keys and reject requests that fail.
    #[arg(long, env = "ECS_EMULATOR_STRICT_AUTH", global = true)]
    pub strict_auth: bool,

    /// Access keys accepted with --strict-auth: ACCESS_KEY:SECRET pairs, comma-separated.
    #[arg(
        long,
        env = "ECS_EMULATOR_AUTH_KEYS",
        default_value = "test:test",
        global = true
    )]
    pub auth_keys: String,

    /// Token the control API (/_emulator/*, the dashboard) requires, as `Authorization: Bearer
    /// TOKEN`, an `ecs-emulator-admin-token` cookie or `?token=TOKEN` (which sets the cookie).
    /// With --strict-auth and no token given, one is made up and printed at start.
    /// /_emulator/health stays open.
    #[arg(
        long,
        env = "ECS_EMULATOR_ADMIN_TOKEN",
        global = true,
        hide_env_values = true
    )]
    pub admin_token: Option<String>,

    /// Serve the control API and dashboard on the listener task containers reach (the Docker
    /// bridge gateway) too; by default containers get only the AWS APIs and the registry.
    #[arg(long, env = "ECS_EMULATOR_CONTROL_API_FOR_CONTAINERS", global = true)]
    pub control_api_for_containers: bool,

    /// Host name in ECR repository URIs and the registry's proxy endpoint (the port is the one
    /// the emulator listens on).
    #[arg(
        long,
        env = "ECS_EMULATOR_REGISTRY_HOST",
        default_value = "localhost",
        global = true
    )]
    pub registry_host: String,

    /// Link-local address where task containers reach the task metadata and credentials
    /// endpoints (port 80). The AWS SDKs look for task role credentials at 169.254.170.2.
    #[arg(
        long,
        env = "ECS_EMULATOR_TASK_ENDPOINT_IP",
        default_value = "169.254.170.2",
        global = true
    )]
    pub task_endpoint_ip: std::net::Ipv4Addr,

    /// Directory where the emulators of one machine register with each other to share the task
    /// endpoint address (a 0700 directory of this user). Default:
    /// <temp dir>/ecs-emulator-task-endpoints. An emulator in a container and one on the host
    /// share it through a bind mount at the same path (compose.yaml).
    #[arg(long, env = "ECS_EMULATOR_PEERS_DIR", global = true)]
    pub peers_dir: Option<PathBuf>,

    /// Loopback address of the DNS server that answers Cloud Map's DNS namespaces (UDP and TCP;
    /// a free port when this one is taken; the address is logged and in GET /_emulator/state).
    #[arg(
        long,
        env = "ECS_EMULATOR_DNS_LISTEN",
        default_value = "127.0.0.1:8053",
        global = true
    )]
    pub dns_listen: SocketAddr,

    /// Link-local address (port 53, on the Docker bridge) task containers use as their DNS
    /// server. Default: the first of 169.254.53.1, .2, … that no other emulator holds.
    #[arg(long, env = "ECS_EMULATOR_DNS_CONTAINER_IP", global = true)]
    pub dns_container_ip: Option<std::net::Ipv4Addr>,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Serve on --listen (the default when no command is given).
    Serve,
    /// Print the supported-operations document (docs/operations.md) generated from the code.
    Operations,
    /// Show a running emulator's clusters, instances, services, load balancers and repositories.
    Status {
        #[command(flatten)]
        target: Endpoint,
        /// Print the summary as JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Drop all state of a running emulator and remove every container it started.
    Reset {
        #[command(flatten)]
        target: Endpoint,
    },
    /// Print the last log lines of a task's containers (CloudWatch Logs for awslogs, else Docker's).
    Logs {
        /// The task's id or ARN.
        task: String,
        /// The task's cluster.
        #[arg(long, default_value = "default")]
        cluster: String,
        #[command(flatten)]
        target: Endpoint,
    },
    /// Wait until a service is stable (one deployment, running = desired), showing progress, as
    /// `aws ecs wait services-stable` does; fails after --timeout seconds.
    WaitStable {
        cluster: String,
        service: String,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 600)]
        timeout: u64,
        #[command(flatten)]
        target: Endpoint,
    },
    /// Make, list and heal faults of a running emulator (an instance stopped, an Availability
    /// Zone down, a container killed, a target blackholed, the registry paused, …).
    Fault {
        #[command(subcommand)]
        action: crate::faults::cli::FaultAction,
        #[command(flatten)]
        target: Endpoint,
    },
    /// Internal: waits for its standard input to close (the emulator exited, even by kill -9),
    /// then unmounts every EFS mount left under BASE.
    #[command(hide = true)]
    EfsReaper { base: PathBuf },
    /// Internal: puts a clone of the EFS mount at SOURCE over the dead mount at TARGET in the
    /// mount namespace of process PID (a running container, after an emulator restart).
    #[command(hide = true)]
    EfsGraft {
        source: PathBuf,
        pid: u32,
        target: PathBuf,
        #[arg(long)]
        read_only: bool,
    },
    /// Serve a directory through EFS's FUSE file system at a mount point until interrupted
    /// (what tasks get; for benchmarks and debugging).
    EfsMount {
        /// The directory served as the file system's root.
        backing: PathBuf,
        /// Where to mount it.
        mountpoint: PathBuf,
        /// Act as this uid:gid on every operation, as an access point's PosixUser does.
        #[arg(long)]
        posix_user: Option<String>,
        /// Mount read-only.
        #[arg(long)]
        read_only: bool,
    },
}

/// Which running emulator a command talks to.
#[derive(Debug, Clone, clap::Args)]
pub struct Endpoint {
    /// The emulator's URL. Default: http:// and the --listen address.
    #[arg(long, env = "ECS_EMULATOR_ENDPOINT", global = true)]
    pub endpoint: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RuntimeKind {
    Docker,
    Simulated,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

impl Config {
    pub fn data_dir(&self) -> PathBuf {
        if let Some(d) = &self.data_dir {
            return d.clone();
        }
        match std::env::var_os("XDG_DATA_HOME") {
            Some(x) if !x.is_empty() => PathBuf::from(x).join("ecs-emulator"),
            _ => PathBuf::from(".ecs-emulator"),
        }
    }

    /// The secret of an access key, when --auth-keys names it.
    pub fn secret_for(&self, access_key: &str) -> Option<&str> {
        self.auth_keys
            .split(',')
            .filter_map(|pair| pair.trim().split_once(':'))
            .find(|(k, _)| *k == access_key)
            .map(|(_, s)| s)
    }

    /// A configuration for tests: ephemeral, default account and region.
    pub fn for_tests() -> Config {
        Config::parse_from(["ecs-emulator", "--ephemeral"])
    }
}
