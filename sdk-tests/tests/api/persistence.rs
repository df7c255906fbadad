//! Durable state: what an acknowledged call wrote survives kill -9; --ephemeral keeps nothing.

use sdk_tests::{Emulator, ACCOUNT, REGION};

#[tokio::test]
async fn cluster_survives_kill_9_and_restart() {
    let mut emu = Emulator::start();
    emu.ecs()
        .create_cluster()
        .cluster_name("durable")
        .send()
        .await
        .expect("CreateCluster");
    let first_port = emu.port();
    emu.kill9();
    emu.restart();
    assert!(
        emu.data_dir().join("state.redb").is_file(),
        "state lives in <data dir>/state.redb"
    );
    let listed = emu
        .ecs()
        .list_clusters()
        .send()
        .await
        .expect("ListClusters");
    assert_eq!(
        listed.cluster_arns(),
        [format!("arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/durable")],
        "after kill -9 and restart on the same data dir (ports {first_port} then {})",
        emu.port()
    );
    let described = emu
        .ecs()
        .describe_clusters()
        .clusters("durable")
        .send()
        .await
        .expect("DescribeClusters");
    assert_eq!(described.clusters().len(), 1);
    assert_eq!(described.clusters()[0].status(), Some("ACTIVE"));

    // And a second crash right after more writes.
    emu.ecs()
        .delete_cluster()
        .cluster("durable")
        .send()
        .await
        .expect("DeleteCluster");
    emu.restart();
    let listed = emu
        .ecs()
        .list_clusters()
        .send()
        .await
        .expect("ListClusters");
    assert!(listed.cluster_arns().is_empty(), "{listed:?}");
}

#[tokio::test]
async fn ephemeral_state_is_gone_after_restart() {
    let mut emu = Emulator::start_with(&["--ephemeral"]);
    emu.ecs()
        .create_cluster()
        .cluster_name("fleeting")
        .send()
        .await
        .expect("CreateCluster");
    let listed = emu
        .ecs()
        .list_clusters()
        .send()
        .await
        .expect("ListClusters");
    assert_eq!(listed.cluster_arns().len(), 1, "listed before the restart");
    emu.restart();
    let listed = emu
        .ecs()
        .list_clusters()
        .send()
        .await
        .expect("ListClusters");
    assert!(listed.cluster_arns().is_empty(), "{listed:?}");
}

/// Every service keeps what it acknowledged: EC2, CloudWatch, Logs and IAM state after kill -9.
#[tokio::test]
async fn other_services_survive_kill_9() {
    let mut emu = Emulator::start();
    let vpc_id = emu
        .ec2()
        .create_vpc()
        .cidr_block("10.9.0.0/16")
        .send()
        .await
        .expect("CreateVpc")
        .vpc()
        .and_then(|v| v.vpc_id())
        .expect("vpc id")
        .to_string();
    emu.cloudwatch()
        .put_metric_data()
        .namespace("Durable/Test")
        .metric_data(
            aws_sdk_cloudwatch::types::MetricDatum::builder()
                .metric_name("Kept")
                .value(7.0)
                .build(),
        )
        .send()
        .await
        .expect("PutMetricData");
    let logs = emu.logs();
    logs.create_log_group()
        .log_group_name("durable")
        .send()
        .await
        .expect("CreateLogGroup");
    logs.create_log_stream()
        .log_group_name("durable")
        .log_stream_name("s")
        .send()
        .await
        .expect("CreateLogStream");
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as i64;
    logs.put_log_events()
        .log_group_name("durable")
        .log_stream_name("s")
        .log_events(
            aws_sdk_cloudwatchlogs::types::InputLogEvent::builder()
                .timestamp(now_ms)
                .message("kept line")
                .build()
                .expect("event"),
        )
        .send()
        .await
        .expect("PutLogEvents");
    emu.iam()
        .create_role()
        .role_name("durable-role")
        .assume_role_policy_document(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#,
        )
        .send()
        .await
        .expect("CreateRole");

    emu.restart(); // SIGKILL, then the same data dir

    let vpcs = emu
        .ec2()
        .describe_vpcs()
        .vpc_ids(&vpc_id)
        .send()
        .await
        .expect("DescribeVpcs after restart");
    assert_eq!(vpcs.vpcs().len(), 1);
    assert_eq!(vpcs.vpcs()[0].cidr_block(), Some("10.9.0.0/16"));
    let default_vpcs = emu
        .ec2()
        .describe_vpcs()
        .send()
        .await
        .expect("DescribeVpcs");
    assert_eq!(
        default_vpcs
            .vpcs()
            .iter()
            .filter(|v| v.is_default() == Some(true))
            .count(),
        1,
        "still exactly one default VPC after a restart"
    );

    let metrics = emu
        .cloudwatch()
        .list_metrics()
        .namespace("Durable/Test")
        .send()
        .await
        .expect("ListMetrics after restart");
    assert_eq!(metrics.metrics().len(), 1, "{metrics:?}");

    let events = emu
        .logs()
        .get_log_events()
        .log_group_name("durable")
        .log_stream_name("s")
        .start_from_head(true)
        .send()
        .await
        .expect("GetLogEvents after restart");
    let messages: Vec<_> = events.events().iter().filter_map(|e| e.message()).collect();
    assert_eq!(messages, vec!["kept line"]);

    let role = emu
        .iam()
        .get_role()
        .role_name("durable-role")
        .send()
        .await
        .expect("GetRole after restart");
    assert_eq!(
        role.role().map(|r| r.arn().to_string()),
        Some(format!("arn:aws:iam::{ACCOUNT}:role/durable-role"))
    );
}

/// SIGTERM: the emulator stops accepting, exits 0 within 2 s, and leaves a running task's
/// container running; the next start adopts it (same container, no second one).
#[tokio::test]
async fn sigterm_exits_0_within_2_s_and_the_next_start_adopts_the_running_container() {
    use crate::ecs_docker::{
        cluster_with_instance, container, describe, docker, docker_inspect, ensure_image, run_one,
        wait_status,
    };
    use std::time::Duration;
    ensure_image();
    let mut emu = Emulator::start();
    let ecs = emu.ecs();
    cluster_with_instance(&ecs, "term", "m5.large", "us-east-1a").await;
    ecs.register_task_definition()
        .family("sleeper")
        .container_definitions(
            container("app", 16, &["sleep", "3600"])
                .stop_timeout(2)
                .build(),
        )
        .send()
        .await
        .expect("register");
    let arn = run_one(&ecs, "term", "sleeper").await;
    let task = wait_status(&ecs, "term", &arn, "RUNNING").await;
    let id = task.containers()[0]
        .runtime_id()
        .expect("runtime id")
        .to_string();
    let old_port = emu.port();

    let (status, took) = emu
        .terminate(Duration::from_secs(10))
        .expect("the emulator exits after SIGTERM");
    assert!(status.success(), "exit status after SIGTERM: {status:?}");
    assert!(
        took < Duration::from_secs(2),
        "exited {took:?} after SIGTERM"
    );
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", old_port)).is_err(),
        "nothing accepts on the old port"
    );
    assert_eq!(
        docker_inspect(&id)["State"]["Running"],
        true,
        "the task's container is left running"
    );

    emu.restart();
    let ecs = emu.ecs();
    let t = describe(&ecs, "term", &arn).await;
    assert_eq!(t.last_status(), Some("RUNNING"), "{t:?}");
    assert_eq!(t.containers()[0].runtime_id(), Some(id.as_str()));
    // The new process adopted the container: it stops it when told to, and never made another.
    ecs.stop_task()
        .cluster("term")
        .task(&arn)
        .send()
        .await
        .expect("StopTask");
    let t = wait_status(&ecs, "term", &arn, "STOPPED").await;
    assert_eq!(t.containers()[0].runtime_id(), Some(id.as_str()));
    assert_eq!(docker_inspect(&id)["State"]["Running"], false);
    let with_label = docker(&[
        "ps",
        "-aq",
        "--no-trunc",
        "--filter",
        &format!("label=com.amazonaws.ecs.task-arn={arn}"),
    ]);
    assert_eq!(with_label.lines().count(), 1, "one container: {with_label}");
}

/// The crash suite (issue 15, build 1): a scripted workload — clusters, task definitions, a
/// service with deployments, RunTask bursts and StopTask, ECR pushes through the registry, ELBv2
/// target registrations — runs from several writers at once while the emulator is killed
/// (SIGKILL) at a random moment; after each restart on the same data dir:
///
/// - no acknowledged change is lost (every acknowledged cluster, revision, target, image tag,
///   task and stop is there);
/// - no PENDING task is lost: every acknowledged task not stopped reaches RUNNING;
/// - the service converges to its acknowledged desired count and task definition, one deployment;
/// - no container is duplicated or orphaned: each running owner-labelled container belongs to a
///   RUNNING task that names it, one per task and container name.
///
/// `CRASH_CYCLES` cycles (3 by default, CI); `CRASH_CYCLES=100` for the long run, `CRASH_SEED`
/// to replay the kill moments of an earlier run (the seed is printed).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn crash_suite_kill_9_at_random_moments_loses_nothing() {
    crash::run().await;
}

mod crash {
    use crate::ecs_docker::{cluster_with_instance, container, docker, ensure_image};
    use aws_sdk_ecs::types::{DeploymentConfiguration, DesiredStatus};
    use aws_sdk_elasticloadbalancingv2::types::{ProtocolEnum, TargetDescription, TargetTypeEnum};
    use sdk_tests::{eventually, Emulator, ACCESS_KEY, SECRET_KEY};
    use std::collections::{BTreeMap, BTreeSet};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::sync::Mutex;
    use std::time::{Duration, Instant};

    const CLUSTER: &str = "crash";
    const SERVICE: &str = "svc";

    /// What the emulator acknowledged (a 2xx answer reached the client).
    #[derive(Default)]
    struct Acked {
        clusters: BTreeSet<String>,
        revisions: BTreeSet<String>,
        target_ports: BTreeSet<i32>,
        image_tags: BTreeSet<String>,
        /// Tasks RunTask returned.
        tasks: BTreeSet<String>,
        /// Tasks StopTask acknowledged.
        stopped: BTreeSet<String>,
        /// The last acknowledged UpdateService: (task definition, desired count).
        service: (String, i32),
        /// An UpdateService sent but not acknowledged when the emulator was killed: it may
        /// have been committed (the answer lost) or not, so after the restart the service is
        /// at either.
        service_in_flight: Option<(String, i32)>,
    }

    fn lock(m: &Mutex<Acked>) -> std::sync::MutexGuard<'_, Acked> {
        m.lock().unwrap_or_else(|e| e.into_inner())
    }

    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            // xorshift64*
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    struct Clients {
        port: u16,
        ecs: aws_sdk_ecs::Client,
        elb: aws_sdk_elasticloadbalancingv2::Client,
    }

    fn clients(emu: &Emulator) -> Clients {
        Clients {
            port: emu.port(),
            ecs: emu.ecs_with(ACCESS_KEY, SECRET_KEY, |b| {
                b.retry_config(aws_sdk_ecs::config::retry::RetryConfig::disabled())
            }),
            elb: emu.elbv2_with(ACCESS_KEY, SECRET_KEY, |b| {
                b.retry_config(
                    aws_sdk_elasticloadbalancingv2::config::retry::RetryConfig::disabled(),
                )
            }),
        }
    }

    /// A raw registry request that never panics (the emulator may be gone): the status.
    fn registry(port: u16, method: &str, path: &str, auth: &str, ct: &str, body: &[u8]) -> u16 {
        let (method, path, auth, ct, body) = (
            method.to_string(),
            path.to_string(),
            auth.to_string(),
            ct.to_string(),
            body.to_vec(),
        );
        std::thread::spawn(move || {
            sdk_tests::http(
                port,
                &method,
                &path,
                &[
                    ("Authorization", auth.as_str()),
                    ("Content-Type", ct.as_str()),
                ],
                &body,
            )
            .status
        })
        .join()
        .unwrap_or(0)
    }

    pub async fn run() {
        ensure_image();
        let cycles: u32 = std::env::var("CRASH_CYCLES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(3);
        let seed: u64 = std::env::var("CRASH_SEED")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(1)
                    | 1
            });
        eprintln!("crash suite: {cycles} cycles, CRASH_SEED={seed}");
        let mut rng = Rng(seed);
        let started = Instant::now();

        let mut emu = Emulator::start();
        let c = clients(&emu);
        cluster_with_instance(&emu.ecs(), CLUSTER, "m5.4xlarge", "us-east-1a").await;
        for command in [["sleep", "3600"], ["sleep", "3601"]] {
            emu.ecs()
                .register_task_definition()
                .family("sleeper")
                .container_definitions(container("app", 16, &command).build())
                .send()
                .await
                .expect("register sleeper");
        }
        emu.ecs()
            .create_service()
            .cluster(CLUSTER)
            .service_name(SERVICE)
            .task_definition("sleeper:1")
            .desired_count(1)
            .deployment_configuration(
                DeploymentConfiguration::builder()
                    .minimum_healthy_percent(0)
                    .maximum_percent(200)
                    .build(),
            )
            .send()
            .await
            .expect("CreateService");
        let (_, vpc) = crate::elbv2::subnets_and_vpc(&emu).await;
        let tg = c
            .elb
            .create_target_group()
            .name("crash")
            .protocol(ProtocolEnum::Http)
            .port(8080)
            .vpc_id(vpc)
            .target_type(TargetTypeEnum::Ip)
            .send()
            .await
            .expect("CreateTargetGroup")
            .target_groups()[0]
            .target_group_arn()
            .expect("arn")
            .to_string();
        emu.ecr()
            .create_repository()
            .repository_name("crash")
            .send()
            .await
            .expect("CreateRepository");
        let owner = emu.raw("GET", "/_emulator/state", &[], b"").json()["owner"]
            .as_str()
            .expect("owner")
            .to_string();

        let acked = Arc::new(Mutex::new(Acked {
            service: ("sleeper:1".into(), 1),
            ..Acked::default()
        }));
        let mut kill_after_ms = Vec::new();
        for cycle in 0..cycles {
            let c = Arc::new(clients(&emu));
            let token = emu
                .ecr()
                .get_authorization_token()
                .send()
                .await
                .expect("token")
                .authorization_data()[0]
                .authorization_token()
                .expect("token")
                .to_string();
            let stop = Arc::new(AtomicBool::new(false));
            let mut writers = tokio::task::JoinSet::new();
            // Clusters.
            {
                let (c, acked, stop) = (c.clone(), acked.clone(), stop.clone());
                writers.spawn(async move {
                    let mut n = 0;
                    while !stop.load(Ordering::Relaxed) {
                        n += 1;
                        let name = format!("w{cycle}-{n}");
                        if c.ecs
                            .create_cluster()
                            .cluster_name(&name)
                            .send()
                            .await
                            .is_ok()
                        {
                            lock(&acked).clusters.insert(name);
                        }
                    }
                });
            }
            // Task definition revisions.
            {
                let (c, acked, stop) = (c.clone(), acked.clone(), stop.clone());
                writers.spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        let r = c
                            .ecs
                            .register_task_definition()
                            .family("crash-td")
                            .container_definitions(container("app", 16, &["true"]).build())
                            .send()
                            .await;
                        if let Some(arn) = r.ok().and_then(|r| {
                            r.task_definition()
                                .and_then(|t| t.task_definition_arn().map(str::to_string))
                        }) {
                            lock(&acked).revisions.insert(arn);
                        }
                    }
                });
            }
            // ELBv2 registrations.
            {
                let (c, acked, stop, tg) = (c.clone(), acked.clone(), stop.clone(), tg.clone());
                writers.spawn(async move {
                    let mut port = 20_000 + cycle as i32 * 1000;
                    while !stop.load(Ordering::Relaxed) {
                        port += 1;
                        let r = c
                            .elb
                            .register_targets()
                            .target_group_arn(&tg)
                            .targets(
                                TargetDescription::builder()
                                    .id("127.0.0.1")
                                    .port(port)
                                    .build(),
                            )
                            .send()
                            .await;
                        if r.is_ok() {
                            lock(&acked).target_ports.insert(port);
                        }
                    }
                });
            }
            // ECR pushes through the registry: two blobs and a tagged manifest.
            {
                let (c, acked, stop) = (c.clone(), acked.clone(), stop.clone());
                let auth = format!("Basic {token}");
                writers.spawn(async move {
                    let mut n = 0;
                    while !stop.load(Ordering::Relaxed) {
                        n += 1;
                        let tag = format!("c{cycle}-{n}");
                        let config = format!(
                            r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":[]}},"tag":"{tag}"}}"#
                        );
                        let layer = format!("layer of {tag}").repeat(200);
                        let mut ok = true;
                        let mut digests = Vec::new();
                        for blob in [config.as_bytes(), layer.as_bytes()] {
                            let d = format!("sha256:{}", sdk_tests::sha256_hex(blob));
                            let path = format!("/v2/crash/blobs/uploads/?digest={d}");
                            let port = c.port;
                            let len = blob.len();
                            let (auth, blob) = (auth.clone(), blob.to_vec());
                            let status = tokio::task::spawn_blocking(move || {
                                registry(port, "POST", &path, &auth, "application/octet-stream", &blob)
                            })
                            .await
                            .unwrap_or(0);
                            ok &= status == 201;
                            digests.push((d, len));
                        }
                        if !ok {
                            continue;
                        }
                        let manifest = serde_json::json!({
                            "schemaVersion": 2,
                            "mediaType": "application/vnd.oci.image.manifest.v1+json",
                            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digests[0].0, "size": digests[0].1},
                            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digests[1].0, "size": digests[1].1}]
                        })
                        .to_string();
                        let (port, auth2, path) =
                            (c.port, auth.clone(), format!("/v2/crash/manifests/{tag}"));
                        let status = tokio::task::spawn_blocking(move || {
                            registry(
                                port,
                                "PUT",
                                &path,
                                &auth2,
                                "application/vnd.oci.image.manifest.v1+json",
                                manifest.as_bytes(),
                            )
                        })
                        .await
                        .unwrap_or(0);
                        if status == 201 {
                            lock(&acked).image_tags.insert(tag);
                        }
                    }
                });
            }
            // ECS: stop the tasks of earlier bursts, a RunTask burst, a deployment.
            {
                let (c, acked, stop) = (c.clone(), acked.clone(), stop.clone());
                writers.spawn(async move {
                    let running = c
                        .ecs
                        .list_tasks()
                        .cluster(CLUSTER)
                        .desired_status(DesiredStatus::Running)
                        .send()
                        .await;
                    let arns: Vec<String> =
                        running.map(|r| r.task_arns().to_vec()).unwrap_or_default();
                    if !arns.is_empty() {
                        if let Ok(d) = c
                            .ecs
                            .describe_tasks()
                            .cluster(CLUSTER)
                            .set_tasks(Some(arns))
                            .send()
                            .await
                        {
                            for t in d.tasks() {
                                if stop.load(Ordering::Relaxed) {
                                    return;
                                }
                                let burst = t.group().is_some_and(|g| g.starts_with("family:"));
                                let Some(arn) = t.task_arn().filter(|_| burst) else {
                                    continue;
                                };
                                if c.ecs
                                    .stop_task()
                                    .cluster(CLUSTER)
                                    .task(arn)
                                    .send()
                                    .await
                                    .is_ok()
                                {
                                    lock(&acked).stopped.insert(arn.to_string());
                                }
                            }
                        }
                    }
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    if let Ok(r) = c
                        .ecs
                        .run_task()
                        .cluster(CLUSTER)
                        .task_definition("sleeper:1")
                        .count(3)
                        .send()
                        .await
                    {
                        let mut a = lock(&acked);
                        for t in r.tasks() {
                            if let Some(arn) = t.task_arn() {
                                a.tasks.insert(arn.to_string());
                            }
                        }
                    }
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    let td = format!("sleeper:{}", 1 + (cycle + 1) % 2);
                    let desired = 1 + ((cycle + 1) % 2) as i32;
                    lock(&acked).service_in_flight = Some((td.clone(), desired));
                    if c.ecs
                        .update_service()
                        .cluster(CLUSTER)
                        .service(SERVICE)
                        .task_definition(&td)
                        .desired_count(desired)
                        .send()
                        .await
                        .is_ok()
                    {
                        let mut a = lock(&acked);
                        a.service = (td, desired);
                        a.service_in_flight = None;
                    }
                });
            }

            // Kill at a random moment while they write.
            let after = 150 + rng.below(1500);
            kill_after_ms.push(after);
            tokio::time::sleep(Duration::from_millis(after)).await;
            emu.kill9();
            stop.store(true, Ordering::Relaxed);
            while writers.join_next().await.is_some() {}
            emu.restart();
            check(&emu, &acked, &tg, &owner, cycle).await;
        }
        let a = lock(&acked);
        eprintln!(
            "crash suite: {cycles} kill -9 cycles in {:.1} s (kills after {kill_after_ms:?} ms), \
             all kept: {} clusters, {} revisions, {} targets, {} image tags, {} RunTask tasks, {} stops",
            started.elapsed().as_secs_f64(),
            a.clusters.len(),
            a.revisions.len(),
            a.target_ports.len(),
            a.image_tags.len(),
            a.tasks.len(),
            a.stopped.len(),
        );
    }

    async fn check(emu: &Emulator, acked: &Mutex<Acked>, tg: &str, owner: &str, cycle: u32) {
        let ecs = emu.ecs();
        let (clusters, revisions, ports, tags, tasks, stopped, service, in_flight) = {
            let a = lock(acked);
            (
                a.clusters.clone(),
                a.revisions.clone(),
                a.target_ports.clone(),
                a.image_tags.clone(),
                a.tasks.clone(),
                a.stopped.clone(),
                a.service.clone(),
                a.service_in_flight.clone(),
            )
        };
        let log = || emu.log();
        // Clusters.
        let names: Vec<String> = clusters.iter().cloned().collect();
        for chunk in names.chunks(100) {
            let d = ecs
                .describe_clusters()
                .set_clusters(Some(chunk.to_vec()))
                .send()
                .await
                .expect("DescribeClusters");
            assert!(
                d.failures().is_empty(),
                "cycle {cycle}: acknowledged clusters lost: {:?}",
                d.failures()
            );
            assert!(d.clusters().iter().all(|c| c.status() == Some("ACTIVE")));
        }
        // Revisions.
        let mut listed = BTreeSet::new();
        let mut pages = ecs
            .list_task_definitions()
            .family_prefix("crash-td")
            .into_paginator()
            .send();
        while let Some(p) = pages.next().await {
            listed.extend(
                p.expect("ListTaskDefinitions")
                    .task_definition_arns()
                    .iter()
                    .cloned(),
            );
        }
        let lost: Vec<_> = revisions.difference(&listed).collect();
        assert!(lost.is_empty(), "cycle {cycle}: revisions lost: {lost:?}");
        // Targets.
        let health = emu
            .elbv2()
            .describe_target_health()
            .target_group_arn(tg)
            .send()
            .await
            .expect("DescribeTargetHealth");
        let registered: BTreeSet<i32> = health
            .target_health_descriptions()
            .iter()
            .filter_map(|d| d.target().and_then(|t| t.port()))
            .collect();
        let lost: Vec<_> = ports.difference(&registered).collect();
        assert!(lost.is_empty(), "cycle {cycle}: targets lost: {lost:?}");
        // Image tags, and their blobs.
        let mut images = BTreeSet::new();
        let mut pages = emu
            .ecr()
            .describe_images()
            .repository_name("crash")
            .into_paginator()
            .send();
        while let Some(p) = pages.next().await {
            for d in p.expect("DescribeImages").image_details() {
                images.extend(d.image_tags().iter().cloned());
            }
        }
        let lost: Vec<_> = tags.difference(&images).collect();
        assert!(lost.is_empty(), "cycle {cycle}: image tags lost: {lost:?}");

        // Tasks: each acknowledged one is known; stopped ones stop, the others run (no PENDING
        // task lost); the service converges; containers are neither duplicated nor orphaned.
        // The service is at the acknowledged update, or at the one in flight at the kill.
        let allowed: Vec<(String, i32)> = std::iter::once(service).chain(in_flight).collect();
        let at = eventually(90, &format!("cycle {cycle}: tasks and the service converge"), || async {
            let mut all = Vec::new();
            let arns: Vec<String> = tasks.iter().cloned().collect();
            for chunk in arns.chunks(100) {
                let d = ecs
                    .describe_tasks()
                    .cluster(CLUSTER)
                    .set_tasks(Some(chunk.to_vec()))
                    .send()
                    .await
                    .expect("DescribeTasks");
                assert!(
                    d.failures().is_empty(),
                    "cycle {cycle}: acknowledged tasks lost: {:?}",
                    d.failures()
                );
                all.extend(d.tasks().to_vec());
            }
            for t in &all {
                let arn = t.task_arn().unwrap_or_default();
                if stopped.contains(arn) {
                    assert_eq!(
                        t.desired_status(),
                        Some("STOPPED"),
                        "cycle {cycle}: an acknowledged StopTask was lost: {t:?}"
                    );
                    if t.last_status() != Some("STOPPED") {
                        return None;
                    }
                } else {
                    assert_eq!(
                        t.desired_status(),
                        Some("RUNNING"),
                        "cycle {cycle}: a task nobody stopped is stopping: {t:?}\n{}",
                        log()
                    );
                    if t.last_status() != Some("RUNNING") {
                        return None;
                    }
                }
            }
            let s = ecs
                .describe_services()
                .cluster(CLUSTER)
                .services(SERVICE)
                .send()
                .await
                .expect("DescribeServices");
            let s = s.services().first()?;
            let primary_td = s
                .deployments()
                .iter()
                .find(|d| d.status() == Some("PRIMARY"))
                .and_then(|d| d.task_definition())
                .unwrap_or_default();
            let desired = s.desired_count();
            let at = allowed
                .iter()
                .find(|(td, count)| {
                    *count == desired && primary_td.ends_with(&format!("task-definition/{td}"))
                })
                .unwrap_or_else(|| {
                    panic!(
                        "cycle {cycle}: the acknowledged UpdateService lost: the service is at \
                         {primary_td} × {desired}, acknowledged (or in flight): {allowed:?}"
                    )
                })
                .clone();
            if s.running_count() != desired || s.pending_count() != 0 || s.deployments().len() != 1 {
                return None;
            }
            // Docker's view: every running owner-labelled container belongs to a RUNNING task
            // that names it, and no task has two of one container.
            let ps = docker(&[
                "ps",
                "--no-trunc",
                "--filter",
                &format!("label=ecs-emulator.owner={owner}"),
                "--format",
                "{{.ID}} {{.Label \"com.amazonaws.ecs.task-arn\"}} {{.Label \"com.amazonaws.ecs.container-name\"}}",
            ]);
            let mut by_task: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
            for line in ps.lines() {
                let mut f = line.split_whitespace();
                let (Some(id), Some(task), Some(name)) = (f.next(), f.next(), f.next()) else {
                    continue;
                };
                by_task
                    .entry((task.to_string(), name.to_string()))
                    .or_default()
                    .push(id.to_string());
            }
            let running = ecs
                .list_tasks()
                .cluster(CLUSTER)
                .desired_status(DesiredStatus::Running)
                .send()
                .await
                .expect("ListTasks");
            let running: Vec<String> = running.task_arns().to_vec();
            let mut named: BTreeMap<(String, String), String> = BTreeMap::new();
            if !running.is_empty() {
                let d = ecs
                    .describe_tasks()
                    .cluster(CLUSTER)
                    .set_tasks(Some(running))
                    .send()
                    .await
                    .expect("DescribeTasks");
                for t in d.tasks() {
                    if t.last_status() != Some("RUNNING") {
                        return None;
                    }
                    for ctr in t.containers() {
                        named.insert(
                            (
                                t.task_arn().unwrap_or_default().to_string(),
                                ctr.name().unwrap_or_default().to_string(),
                            ),
                            ctr.runtime_id().unwrap_or_default().to_string(),
                        );
                    }
                }
            }
            for (key, ids) in &by_task {
                assert!(ids.len() == 1, "cycle {cycle}: duplicated container {key:?}: {ids:?}");
                if named.get(key) != Some(&ids[0]) {
                    // An orphan, unless it is still being stopped: wait, then fail at the bound.
                    return None;
                }
            }
            for (key, id) in &named {
                if by_task.get(key).map(|v| &v[0]) != Some(id) {
                    return None;
                }
            }
            Some(at)
        })
        .await;
        // What the service is at is what later cycles build on.
        let mut a = lock(acked);
        a.service = at;
        a.service_in_flight = None;
    }
}
