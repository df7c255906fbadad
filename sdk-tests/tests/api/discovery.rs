//! Service discovery with real containers: ECS services registered in Cloud Map, a task of one
//! service finding another by name through the emulator's DNS server (busybox nslookup/wget
//! inside the container), A records following the service's task count, SRV records with
//! bridge-mode host ports, health from container health checks, and the AWS CLI's
//! discover-instances.

use crate::ecs_docker::{cluster_with_instance, container, ensure_image};
use aws_sdk_ecs::types::{
    AwsVpcConfiguration, HealthCheck, NetworkConfiguration, NetworkMode, PortMapping,
    ServiceRegistry,
};
use aws_sdk_servicediscovery::config::interceptors::BeforeTransmitInterceptorContextMut;
use aws_sdk_servicediscovery::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_servicediscovery::types::{
    DnsConfig, DnsRecord, HealthCheckCustomConfig, HealthStatusFilter, RecordType, RoutingPolicy,
};
use sdk_tests::Emulator;
use std::collections::BTreeSet;
use std::net::{Ipv4Addr, UdpSocket};
use std::process::Command;
use std::time::{Duration, Instant};

const NAMESPACE: &str = "prod.local";
/// The TTL of the test services' records: a stopped task must be gone from DNS within it.
const TTL: i64 = 10;

/// The SDKs send DiscoverInstances to `data-<endpoint host>` (the model's host prefix), which
/// does not resolve for `127.0.0.1`; this interceptor sends it to the endpoint as given. (The
/// AWS CLI and boto3 have a setting for it: AWS_DISABLE_HOST_PREFIX_INJECTION.)
#[derive(Debug)]
struct NoHostPrefix;

impl Intercept for NoHostPrefix {
    fn name(&self) -> &'static str {
        "NoHostPrefix"
    }

    fn modify_before_transmit(
        &self,
        ctx: &mut BeforeTransmitInterceptorContextMut<'_>,
        _rc: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), aws_sdk_servicediscovery::error::BoxError> {
        let uri = ctx.request().uri().to_string();
        if let Some(rest) = uri.strip_prefix("http://data-") {
            ctx.request_mut().set_uri(format!("http://{rest}"))?;
        }
        Ok(())
    }
}

fn cloudmap(emu: &Emulator) -> aws_sdk_servicediscovery::Client {
    emu.servicediscovery_with(sdk_tests::ACCESS_KEY, sdk_tests::SECRET_KEY, |b| {
        b.interceptor(NoHostPrefix)
    })
}

/// The emulator's loopback DNS server (from `GET /_emulator/state`).
fn dns_server(emu: &Emulator) -> String {
    let state = emu.raw("GET", "/_emulator/state", &[], b"").json();
    state["dnsServers"]
        .as_array()
        .and_then(|a| {
            a.iter()
                .filter_map(|v| v.as_str())
                .find(|s| s.starts_with("127."))
        })
        .unwrap_or_else(|| panic!("no loopback DNS server in {state}"))
        .to_string()
}

/// The addresses a container gets as its resolver (the non-loopback DNS listener).
fn container_dns(emu: &Emulator) -> String {
    let state = emu.raw("GET", "/_emulator/state", &[], b"").json();
    state["dnsServers"]
        .as_array()
        .and_then(|a| {
            a.iter()
                .filter_map(|v| v.as_str())
                .find(|s| s.starts_with("169.254.53."))
        })
        .unwrap_or_else(|| panic!("no container DNS server in {state}"))
        .to_string()
}

/// One DNS question over UDP; returns the answer section's records as (type, rdata bytes).
fn query(server: &str, name: &str, qtype: u16) -> (u8, Vec<(u16, Vec<u8>)>) {
    let mut packet = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in name.split('.') {
        packet.push(label.len() as u8);
        packet.extend_from_slice(label.as_bytes());
    }
    packet.extend_from_slice(&[0, (qtype >> 8) as u8, qtype as u8, 0, 1]);
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind a UDP socket");
    socket
        .set_read_timeout(Some(Duration::from_secs(2)))
        .expect("timeout");
    socket.send_to(&packet, server).expect("send the query");
    let mut buf = [0u8; 4096];
    let n = socket.recv(&mut buf).expect("a DNS answer");
    parse_answers(&buf[..n])
}

/// Skips a (possibly compressed) name; returns the offset after it.
fn skip_name(msg: &[u8], mut at: usize) -> usize {
    loop {
        let len = msg[at];
        if len & 0xC0 == 0xC0 {
            return at + 2;
        }
        if len == 0 {
            return at + 1;
        }
        at += 1 + len as usize;
    }
}

/// (RCODE, answers).
fn parse_answers(msg: &[u8]) -> (u8, Vec<(u16, Vec<u8>)>) {
    let rcode = msg[3] & 0x0F;
    let qd = u16::from_be_bytes([msg[4], msg[5]]);
    let an = u16::from_be_bytes([msg[6], msg[7]]);
    let mut at = 12;
    for _ in 0..qd {
        at = skip_name(msg, at) + 4;
    }
    let mut out = Vec::new();
    for _ in 0..an {
        at = skip_name(msg, at);
        let kind = u16::from_be_bytes([msg[at], msg[at + 1]]);
        let len = u16::from_be_bytes([msg[at + 8], msg[at + 9]]) as usize;
        at += 10;
        out.push((kind, msg[at..at + len].to_vec()));
        at += len;
    }
    (rcode, out)
}

fn a_records(server: &str, name: &str) -> BTreeSet<Ipv4Addr> {
    let (_, answers) = query(server, name, 1);
    answers
        .into_iter()
        .filter(|(k, d)| *k == 1 && d.len() == 4)
        .map(|(_, d)| Ipv4Addr::new(d[0], d[1], d[2], d[3]))
        .collect()
}

/// SRV answers as (port, target bytes).
fn srv_ports(server: &str, name: &str) -> BTreeSet<u16> {
    let (_, answers) = query(server, name, 33);
    answers
        .into_iter()
        .filter(|(k, d)| *k == 33 && d.len() > 6)
        .map(|(_, d)| u16::from_be_bytes([d[4], d[5]]))
        .collect()
}

async fn wait_until<T>(what: &str, secs: u64, mut probe: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

use sdk_tests::docker_logs;

struct Setup {
    emu: Emulator,
    ecs: aws_sdk_ecs::Client,
    sd: aws_sdk_servicediscovery::Client,
    namespace_id: String,
    subnet: String,
}

/// An emulator, a cluster with one instance, and the private DNS namespace prod.local in the
/// default VPC.
async fn setup(cluster: &str) -> Setup {
    ensure_image();
    let emu = Emulator::start();
    let ecs = emu.ecs();
    let sd = cloudmap(&emu);
    let ec2 = emu.ec2();
    cluster_with_instance(&ecs, cluster, "m5.xlarge", "us-east-1a").await;
    let vpcs = ec2.describe_vpcs().send().await.expect("DescribeVpcs");
    let vpc = vpcs.vpcs()[0].vpc_id().expect("vpc id").to_string();
    let subnets = ec2
        .describe_subnets()
        .send()
        .await
        .expect("DescribeSubnets");
    let subnet = subnets
        .subnets()
        .iter()
        .find(|s| s.availability_zone() == Some("us-east-1a"))
        .and_then(|s| s.subnet_id())
        .expect("a default subnet in us-east-1a")
        .to_string();
    let op = sd
        .create_private_dns_namespace()
        .name(NAMESPACE)
        .vpc(&vpc)
        .send()
        .await
        .expect("CreatePrivateDnsNamespace");
    let op_id = op.operation_id().expect("operation id").to_string();
    let namespace_id = wait_until("the namespace operation to succeed", 30, || {
        let sd = sd.clone();
        let op_id = op_id.clone();
        async move {
            let out = sd.get_operation().operation_id(op_id).send().await.ok()?;
            let op = out.operation()?;
            (op.status().map(|s| s.as_str()) == Some("SUCCESS"))
                .then(|| op.targets()?.get(&"NAMESPACE".into()).cloned())
                .flatten()
        }
    })
    .await;
    Setup {
        emu,
        ecs,
        sd,
        namespace_id,
        subnet,
    }
}

impl Setup {
    /// A Cloud Map service in prod.local with these record types; returns its ARN.
    async fn registry(&self, name: &str, kinds: &[RecordType], custom_health: bool) -> String {
        let mut dns = DnsConfig::builder().routing_policy(RoutingPolicy::Multivalue);
        for k in kinds {
            dns = dns.dns_records(
                DnsRecord::builder()
                    .r#type(k.clone())
                    .ttl(TTL)
                    .build()
                    .expect("record"),
            );
        }
        let mut req = self
            .sd
            .create_service()
            .name(name)
            .namespace_id(&self.namespace_id)
            .dns_config(dns.build().expect("dns config"));
        if custom_health {
            req = req.health_check_custom_config(HealthCheckCustomConfig::builder().build());
        }
        let out = req.send().await.expect("CreateService (Cloud Map)");
        out.service()
            .and_then(|s| s.arn())
            .expect("service ARN")
            .to_string()
    }

    /// Polls the first container's Docker log of `task` until `done` holds; returns the log and
    /// the container id.
    async fn logs_until(
        &self,
        cluster: &str,
        task: &str,
        what: &str,
        done: impl Fn(&str) -> bool,
    ) -> (String, String) {
        wait_until(what, 60, || async {
            let out = self
                .ecs
                .describe_tasks()
                .cluster(cluster)
                .tasks(task)
                .send()
                .await
                .ok()?;
            let id = out
                .tasks()
                .first()?
                .containers()
                .first()?
                .runtime_id()?
                .to_string();
            let logs = docker_logs(&id);
            done(&logs).then_some((logs, id))
        })
        .await
    }

    fn awsvpc(&self) -> NetworkConfiguration {
        NetworkConfiguration::builder()
            .awsvpc_configuration(
                AwsVpcConfiguration::builder()
                    .subnets(&self.subnet)
                    .build()
                    .expect("awsvpc"),
            )
            .build()
    }

    async fn running_tasks(&self, cluster: &str, service: &str) -> Vec<aws_sdk_ecs::types::Task> {
        let arns = self
            .ecs
            .list_tasks()
            .cluster(cluster)
            .service_name(service)
            .send()
            .await
            .expect("ListTasks")
            .task_arns()
            .to_vec();
        if arns.is_empty() {
            return Vec::new();
        }
        let out = self
            .ecs
            .describe_tasks()
            .cluster(cluster)
            .set_tasks(Some(arns))
            .send()
            .await
            .expect("DescribeTasks");
        out.tasks()
            .iter()
            .filter(|t| t.last_status() == Some("RUNNING"))
            .cloned()
            .collect()
    }

    async fn discovered(&self, service: &str, filter: HealthStatusFilter) -> BTreeSet<String> {
        let out = self
            .sd
            .discover_instances()
            .namespace_name(NAMESPACE)
            .service_name(service)
            .health_status(filter)
            .send()
            .await
            .expect("DiscoverInstances");
        out.instances()
            .iter()
            .filter_map(|i| i.instance_id().map(str::to_string))
            .collect()
    }
}

fn task_id(t: &aws_sdk_ecs::types::Task) -> String {
    t.task_arn()
        .and_then(|a| a.rsplit('/').next())
        .unwrap_or_default()
        .to_string()
}

fn task_ip(t: &aws_sdk_ecs::types::Task) -> Ipv4Addr {
    t.containers()[0]
        .network_interfaces()
        .first()
        .and_then(|n| n.private_ipv4_address())
        .and_then(|ip| ip.parse().ok())
        .unwrap_or_else(|| panic!("no awsvpc address on {t:?}"))
}

#[tokio::test]
async fn a_task_finds_another_service_by_name_and_a_records_follow_the_task_count() {
    let s = setup("disc").await;
    let api_registry = s.registry("api", &[RecordType::A], false).await;
    let server = dns_server(&s.emu);
    s.ecs
        .register_task_definition()
        .family("api")
        .network_mode(NetworkMode::Awsvpc)
        .container_definitions(
            container(
                "api",
                32,
                &[
                    "sh",
                    "-c",
                    "mkdir -p /www && echo hello-from-api > /www/index.html && \
                     exec httpd -f -p 8080 -h /www",
                ],
            )
            .port_mappings(PortMapping::builder().container_port(8080).build())
            .build(),
        )
        .send()
        .await
        .expect("register api");
    s.ecs
        .create_service()
        .cluster("disc")
        .service_name("api")
        .task_definition("api")
        .desired_count(1)
        .network_configuration(s.awsvpc())
        .service_registries(
            ServiceRegistry::builder()
                .registry_arn(&api_registry)
                .build(),
        )
        .send()
        .await
        .expect("CreateService api");
    let first = wait_until("one api task in DNS", 60, || async {
        let tasks = s.running_tasks("disc", "api").await;
        let ips = a_records(&server, "api.prod.local");
        (tasks.len() == 1 && ips.len() == 1 && ips.contains(&task_ip(&tasks[0])))
            .then(|| tasks[0].clone())
    })
    .await;
    let found = s.discovered("api", HealthStatusFilter::All).await;
    assert_eq!(found, BTreeSet::from([task_id(&first)]));

    // A client task resolves the name through the DNS server Docker gave it, and gets the answer.
    s.ecs
        .register_task_definition()
        .family("client")
        .network_mode(NetworkMode::Awsvpc)
        .container_definitions(
            container(
                "client",
                16,
                &[
                    "sh",
                    "-c",
                    "cat /etc/resolv.conf; nslookup api.prod.local; \
                     wget -q -O- http://api.prod.local:8080/; sleep 3600",
                ],
            )
            .build(),
        )
        .send()
        .await
        .expect("register client");
    let run = s
        .ecs
        .run_task()
        .cluster("disc")
        .task_definition("client")
        .network_configuration(s.awsvpc())
        .send()
        .await
        .expect("RunTask client");
    let client_arn = run.tasks()[0].task_arn().expect("arn").to_string();
    let container_dns = container_dns(&s.emu);
    let (logs, client_container) = s
        .logs_until(
            "disc",
            &client_arn,
            "the client to print the api's answer",
            |logs| logs.contains("hello-from-api"),
        )
        .await;
    // On a user-defined network (awsvpc) Docker's embedded resolver (127.0.0.11) forwards to the
    // container's Dns setting: the emulator's DNS server.
    let dns_ip = container_dns.split(':').next().unwrap_or_default();
    let inspect = crate::ecs_docker::docker_inspect(&client_container);
    assert_eq!(
        inspect["HostConfig"]["Dns"],
        serde_json::json!([dns_ip]),
        "the container's DNS server is the emulator's"
    );
    assert!(
        logs.contains(&task_ip(&first).to_string()),
        "nslookup printed the api task's address:\n{logs}"
    );

    // Three tasks: three A records.
    s.ecs
        .update_service()
        .cluster("disc")
        .service("api")
        .desired_count(3)
        .send()
        .await
        .expect("UpdateService 3");
    let three = wait_until("three A records", 90, || async {
        let tasks = s.running_tasks("disc", "api").await;
        let want: BTreeSet<Ipv4Addr> = tasks.iter().map(task_ip).collect();
        let got = a_records(&server, "api.prod.local");
        (tasks.len() == 3 && got == want).then_some(tasks)
    })
    .await;
    assert_eq!(s.discovered("api", HealthStatusFilter::All).await.len(), 3);

    // A stopped task leaves DNS and DiscoverInstances within one TTL.
    let victim = &three[0];
    let stopped_at = Instant::now();
    s.ecs
        .stop_task()
        .cluster("disc")
        .task(victim.task_arn().expect("arn"))
        .send()
        .await
        .expect("StopTask");
    let gone_ip = task_ip(victim);
    let gone_id = task_id(victim);
    wait_until("the stopped task to leave DNS", TTL as u64 * 3, || async {
        let ips = a_records(&server, "api.prod.local");
        let ids = s.discovered("api", HealthStatusFilter::All).await;
        (!ips.contains(&gone_ip) && !ids.contains(&gone_id)).then_some(())
    })
    .await;
    let took = stopped_at.elapsed();
    assert!(
        took <= Duration::from_secs(TTL as u64),
        "the stopped task stayed in DNS for {took:?}, more than the TTL of {TTL} s"
    );
    // Names outside the namespace's records: NXDOMAIN from the zone.
    let (rcode, answers) = query(&server, "nothing.prod.local", 1);
    assert_eq!(
        (rcode, answers.len()),
        (3, 0),
        "NXDOMAIN for an unknown name"
    );
}

#[tokio::test]
async fn bridge_service_registers_srv_records_with_its_host_ports() {
    let s = setup("srv").await;
    let registry = s
        .registry("web", &[RecordType::Srv, RecordType::A], false)
        .await;
    let server = dns_server(&s.emu);
    s.ecs
        .register_task_definition()
        .family("web")
        .network_mode(NetworkMode::Bridge)
        .container_definitions(
            container(
                "web",
                16,
                &["sh", "-c", "mkdir -p /w && exec httpd -f -p 8080 -h /w"],
            )
            .port_mappings(
                PortMapping::builder()
                    .container_port(8080)
                    .host_port(0)
                    .build(),
            )
            .build(),
        )
        .send()
        .await
        .expect("register web");
    s.ecs
        .create_service()
        .cluster("srv")
        .service_name("web")
        .task_definition("web")
        .desired_count(2)
        .service_registries(
            ServiceRegistry::builder()
                .registry_arn(&registry)
                .container_name("web")
                .container_port(8080)
                .build(),
        )
        .send()
        .await
        .expect("CreateService web");
    let ports = wait_until("two SRV records with the host ports", 60, || async {
        let tasks = s.running_tasks("srv", "web").await;
        let want: BTreeSet<u16> = tasks
            .iter()
            .filter_map(|t| {
                t.containers()[0]
                    .network_bindings()
                    .first()
                    .and_then(|b| b.host_port())
                    .and_then(|p| u16::try_from(p).ok())
            })
            .collect();
        let got = srv_ports(&server, "web.prod.local");
        (tasks.len() == 2 && want.len() == 2 && got == want).then_some(want)
    })
    .await;
    assert!(ports.iter().all(|p| *p != 8080 && *p != 0), "{ports:?}");

    // A client container resolves the SRV records through its resolver.
    s.ecs
        .register_task_definition()
        .family("srv-client")
        .container_definitions(
            container(
                "c",
                16,
                &["sh", "-c", "nslookup -type=SRV web.prod.local; sleep 3600"],
            )
            .build(),
        )
        .send()
        .await
        .expect("register client");
    let run = s
        .ecs
        .run_task()
        .cluster("srv")
        .task_definition("srv-client")
        .send()
        .await
        .expect("RunTask");
    let arn = run.tasks()[0].task_arn().expect("arn").to_string();
    s.logs_until("srv", &arn, "the client to print both SRV ports", |logs| {
        ports.iter().all(|p| logs.contains(&format!(" {p} ")))
    })
    .await;
}

#[tokio::test]
async fn a_failing_container_health_check_hides_the_instance_from_healthy_discovery() {
    let s = setup("health").await;
    let registry = s.registry("db", &[RecordType::A], true).await;
    let server = dns_server(&s.emu);
    s.ecs
        .register_task_definition()
        .family("db")
        .network_mode(NetworkMode::Awsvpc)
        .container_definitions(
            container("db", 16, &["sleep", "3600"])
                .health_check(
                    HealthCheck::builder()
                        .set_command(Some(vec!["CMD-SHELL".into(), "test ! -f /sick".into()]))
                        .interval(5)
                        .timeout(2)
                        .retries(1)
                        .start_period(0)
                        .build()
                        .expect("health check"),
                )
                .build(),
        )
        .send()
        .await
        .expect("register db");
    s.ecs
        .create_service()
        .cluster("health")
        .service_name("db")
        .task_definition("db")
        .desired_count(2)
        // The scheduler leaves an unhealthy task alone this long, so its UNHEALTHY instance can
        // be seen before the task is replaced.
        .health_check_grace_period_seconds(600)
        .network_configuration(s.awsvpc())
        .service_registries(ServiceRegistry::builder().registry_arn(&registry).build())
        .send()
        .await
        .expect("CreateService db");
    let tasks = wait_until("two healthy instances", 90, || async {
        let tasks = s.running_tasks("health", "db").await;
        let healthy = s.discovered("db", HealthStatusFilter::Healthy).await;
        (tasks.len() == 2 && healthy.len() == 2).then_some(tasks)
    })
    .await;
    let sick = &tasks[0];
    let well = task_id(&tasks[1]);
    let sick_id = task_id(sick);
    let container = sick.containers()[0].runtime_id().expect("runtime id");
    let out = Command::new("docker")
        .args(["exec", container, "touch", "/sick"])
        .output()
        .expect("docker exec");
    assert!(out.status.success(), "{out:?}");
    // Seen while the sick task is still registered: HEALTHY hides it, ALL and UNHEALTHY show it,
    // and DNS leaves its address out.
    wait_until("the sick instance hidden from HEALTHY", 60, || async {
        let healthy = s.discovered("db", HealthStatusFilter::Healthy).await;
        let unhealthy = s.discovered("db", HealthStatusFilter::Unhealthy).await;
        let all = s.discovered("db", HealthStatusFilter::All).await;
        let ips = a_records(&server, "db.prod.local");
        (healthy.contains(&well)
            && !healthy.contains(&sick_id)
            && unhealthy == BTreeSet::from([sick_id.clone()])
            && all.contains(&sick_id)
            && !ips.contains(&task_ip(sick)))
        .then_some(())
    })
    .await;
}

#[tokio::test]
async fn aws_cli_discover_instances() {
    let s = setup("cli").await;
    let registry = s.registry("cli-api", &[RecordType::A], false).await;
    let id = registry.rsplit('/').next().expect("service id").to_string();
    s.sd.register_instance()
        .service_id(&id)
        .instance_id("i-manual")
        .attributes("AWS_INSTANCE_IPV4", "10.0.0.9")
        .attributes("color", "blue")
        .send()
        .await
        .expect("RegisterInstance");
    let out = Command::new("aws")
        .args([
            "servicediscovery",
            "discover-instances",
            "--namespace-name",
            NAMESPACE,
            "--service-name",
            "cli-api",
            "--query-parameters",
            "color=blue",
            "--endpoint-url",
            &s.emu.endpoint(),
            "--region",
            sdk_tests::REGION,
            "--output",
            "json",
        ])
        .env("AWS_ACCESS_KEY_ID", sdk_tests::ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", sdk_tests::SECRET_KEY)
        .env("AWS_DISABLE_HOST_PREFIX_INJECTION", "true")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ENDPOINT_URL")
        .output()
        .expect("the AWS CLI (run .ci/run to install it)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "aws servicediscovery discover-instances: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_str(&stdout).expect("JSON output");
    let instances = v["Instances"].as_array().expect("Instances");
    assert_eq!(instances.len(), 1, "{v}");
    assert_eq!(instances[0]["InstanceId"], "i-manual");
    assert_eq!(instances[0]["Attributes"]["AWS_INSTANCE_IPV4"], "10.0.0.9");
    assert_eq!(instances[0]["HealthStatus"], "UNKNOWN");
    assert!(v["InstancesRevision"].as_i64().is_some(), "{v}");
}
