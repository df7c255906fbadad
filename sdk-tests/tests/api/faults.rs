//! Faults through the control API and `ecs-emulator fault …`, with real containers: ECS's own
//! stop codes and reasons, agents disconnecting, services moving out of a downed zone, ALB
//! targets timing out (504), the registry refusing docker push, and `heal`/`reset` undoing them.

use crate::ecs_docker::{
    cluster_with_instance, container, describe, docker, docker_inspect, docker_login, ensure_image,
    register_instance, wait_status,
};
use crate::elbv2::subnets_and_vpc;
use aws_sdk_ecs::types::{LoadBalancer as EcsLoadBalancer, NetworkMode, PortMapping};
use aws_sdk_ecs::Client;
use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, LoadBalancerAttribute, ProtocolEnum, TargetGroupAttribute,
    TargetTypeEnum,
};
use sdk_tests::{cli, eventually, Emulator};
use serde_json::Value;
use std::process::Command;
use std::time::{Duration, Instant};

/// `POST /_emulator/faults/<kind>`; the status and the JSON answer.
fn fault(emu: &Emulator, kind: &str, body: &str) -> (u16, Value) {
    let r = emu.raw(
        "POST",
        &format!("/_emulator/faults/{kind}"),
        &[("content-type", "application/json")],
        body.as_bytes(),
    );
    (r.status, r.json())
}

fn faults(emu: &Emulator) -> Vec<Value> {
    emu.raw("GET", "/_emulator/state", &[], b"").json()["faults"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Runs `ecs-emulator fault ARGS…`; asserts success; its standard output.
fn fault_cli(emu: &Emulator, args: &[&str]) -> String {
    let mut all = vec!["fault"];
    all.extend_from_slice(args);
    let out = cli(emu, &all);
    assert!(
        out.status.success(),
        "ecs-emulator {all:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The fault id a CLI answer starts with.
fn id_of(out: &str) -> String {
    out.split_whitespace()
        .next()
        .filter(|w| w.starts_with("fault-"))
        .unwrap_or_else(|| panic!("no fault id in {out:?}"))
        .to_string()
}

async fn container_instance(
    ecs: &Client,
    cluster: &str,
    arn: &str,
) -> aws_sdk_ecs::types::ContainerInstance {
    ecs.describe_container_instances()
        .cluster(cluster)
        .container_instances(arn)
        .send()
        .await
        .expect("DescribeContainerInstances")
        .container_instances()[0]
        .clone()
}

async fn start_on(ecs: &Client, cluster: &str, family: &str, instance: &str) -> String {
    let out = ecs
        .start_task()
        .cluster(cluster)
        .task_definition(family)
        .container_instances(instance)
        .send()
        .await
        .expect("StartTask");
    assert!(out.failures().is_empty(), "{:?}", out.failures());
    out.tasks()[0].task_arn().expect("task ARN").to_string()
}

async fn sleeper(ecs: &Client) {
    ecs.register_task_definition()
        .family("sleeper")
        .container_definitions(container("app", 16, &["sleep", "3600"]).build())
        .send()
        .await
        .expect("RegisterTaskDefinition");
}

#[tokio::test]
async fn instance_stop_and_terminate_stop_tasks_with_ecs_reasons_and_heal_reconnects() {
    ensure_image();
    let emu = Emulator::start();
    let ecs = emu.ecs();
    let a = cluster_with_instance(&ecs, "f", "m5.large", "us-east-1a").await;
    let b = register_instance(&ecs, "f", "m5.large", "us-east-1b").await;
    sleeper(&ecs).await;
    let on_a = start_on(&ecs, "f", "sleeper", &a).await;
    let on_b = start_on(&ecs, "f", "sleeper", &b).await;
    let running = wait_status(&ecs, "f", &on_a, "RUNNING").await;
    let docker_id = running.containers()[0]
        .runtime_id()
        .expect("id")
        .to_string();
    wait_status(&ecs, "f", &on_b, "RUNNING").await;
    let ec2_a = container_instance(&ecs, "f", &a)
        .await
        .ec2_instance_id()
        .expect("id")
        .to_string();
    let ec2_b = container_instance(&ecs, "f", &b)
        .await
        .ec2_instance_id()
        .expect("id")
        .to_string();

    // Stop: the task stops as ECS stops the tasks of a stopped host; the agent disconnects.
    let out = fault_cli(&emu, &["stop-instance", &ec2_a]);
    assert!(out.contains(&format!("instance {ec2_a} stopped")), "{out}");
    assert!(
        out.contains("heal: ecs-emulator fault heal fault-"),
        "{out}"
    );
    let stop_id = id_of(&out);
    let t = wait_status(&ecs, "f", &on_a, "STOPPED").await;
    assert_eq!(t.stop_code().map(|c| c.as_str()), Some("TerminationNotice"));
    assert_eq!(
        t.stopped_reason(),
        Some(format!("Host EC2 (instance {ec2_a}) stopped.").as_str())
    );
    assert_eq!(docker_inspect(&docker_id)["State"]["Running"], false);
    let ci = container_instance(&ecs, "f", &a).await;
    assert!(!ci.agent_connected(), "{ci:?}");
    assert_eq!(ci.status(), Some("ACTIVE"));
    // No task is placed on a disconnected instance.
    let refused = ecs
        .start_task()
        .cluster("f")
        .task_definition("sleeper")
        .container_instances(&a)
        .send()
        .await
        .expect("StartTask");
    assert_eq!(refused.failures()[0].reason(), Some("AGENT"), "{refused:?}");
    // Visible in GET /_emulator/state, the dashboard and `status`.
    let listed = faults(&emu);
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["kind"], "instance-stop");
    assert_eq!(listed[0]["instanceId"], ec2_a.as_str());
    assert_eq!(listed[0]["lasting"], true);
    let page = emu.raw("GET", "/_emulator/", &[], b"").text();
    assert!(
        page.contains(&format!("instance {ec2_a} stopped")),
        "{page}"
    );
    let status = String::from_utf8_lossy(&cli(&emu, &["status"]).stdout).into_owned();
    assert!(status.contains(&stop_id), "{status}");

    // Heal: the agent reconnects and tasks can be placed there again.
    let out = fault_cli(&emu, &["heal", &stop_id]);
    assert!(out.contains("1 container instances reconnected"), "{out}");
    assert!(container_instance(&ecs, "f", &a).await.agent_connected());
    assert!(faults(&emu).is_empty());
    let again = start_on(&ecs, "f", "sleeper", &a).await;
    wait_status(&ecs, "f", &again, "RUNNING").await;

    // Terminate (through the control API): the task stops, the instance goes INACTIVE.
    let (code, v) = fault(
        &emu,
        "instance-terminate",
        &format!("{{\"instanceId\": \"{ec2_b}\"}}"),
    );
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["kind"], "instance-terminate");
    assert_eq!(v["lasting"], false);
    let t = wait_status(&ecs, "f", &on_b, "STOPPED").await;
    assert_eq!(t.stop_code().map(|c| c.as_str()), Some("TerminationNotice"));
    assert_eq!(
        t.stopped_reason(),
        Some(format!("Host EC2 (instance {ec2_b}) terminated.").as_str())
    );
    let ci = container_instance(&ecs, "f", &b).await;
    assert_eq!(ci.status(), Some("INACTIVE"));
    assert!(!ci.agent_connected());
    // A terminated instance cannot be stopped; unknown instances are named in the error.
    let (code, v) = fault(
        &emu,
        "instance-stop",
        &format!("{{\"instanceId\": \"{ec2_b}\"}}"),
    );
    assert_eq!(code, 404, "{v}");
    let out = cli(&emu, &["fault", "stop-instance", "i-0000000000000dead"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no instance i-0000000000000dead"), "{err}");

    // Reset drops faults with the rest of the state.
    fault_cli(&emu, &["stop-instance", &ec2_a]);
    assert_eq!(faults(&emu).len(), 2);
    let r = emu.raw("POST", "/_emulator/reset", &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(faults(&emu).is_empty());
}

#[tokio::test]
async fn fault_api_errors_are_readable() {
    let emu = Emulator::start_with(&["--ephemeral"]);
    let (code, v) = fault(&emu, "meteor", "{}");
    assert_eq!(code, 404);
    assert!(
        v["error"]
            .as_str()
            .is_some_and(|e| e.contains("the kinds are instance-stop")),
        "{v}"
    );
    let (code, v) = fault(&emu, "az-down", "{}");
    assert_eq!(code, 400);
    assert_eq!(
        v["error"],
        "az-down needs \"availabilityZone\": the body is {\"availabilityZone\": \"us-east-1a\"}"
    );
    let (code, v) = fault(&emu, "az-down", "{\"availabilityZone\": \"eu-west-1a\"}");
    assert_eq!(code, 400, "{v}");
    let (code, v) = fault(&emu, "target-slow", "{\"target\": \"10.0.0.1:80\"}");
    assert_eq!(code, 400, "{v}");
    let (code, _) = fault(&emu, "az-down", "not json");
    assert_eq!(code, 400);
    let r = emu.raw("DELETE", "/_emulator/faults/fault-nope", &[], b"");
    assert_eq!(r.status, 404);
    let out = cli(&emu, &["fault", "heal", "fault-nope"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no fault fault-nope"));
    let out = cli(
        &emu,
        &[
            "fault",
            "spot-interruption",
            "--instance",
            "i-0123456789abcdef0",
        ],
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("does not exist"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Reaching no emulator says what to do.
    let out = Command::new(sdk_tests::binary())
        .args(["fault", "list", "--endpoint", "http://127.0.0.1:9"])
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Is it running?"));
    // An AZ can go down and up with nothing in it.
    let id = id_of(&fault_cli(&emu, &["az-down", "us-east-1c"]));
    let (code, _) = fault(&emu, "az-down", "{\"availabilityZone\": \"us-east-1c\"}");
    assert_eq!(code, 409);
    let out = fault_cli(&emu, &["az-up", "us-east-1c"]);
    assert!(out.contains(&format!("{id} healed")), "{out}");
    let listed = fault_cli(&emu, &["list"]);
    assert!(listed.contains("No faults."), "{listed}");
}

/// An ALB in front of a bridge-mode httpd service; returns (target group ARN, listener port).
async fn alb_service(emu: &Emulator, cluster: &str, desired: i32, grace: i32) -> (String, u16) {
    let elb = emu.elbv2();
    let (subnets, vpc) = subnets_and_vpc(emu).await;
    let lb = elb
        .create_load_balancer()
        .name("front")
        .set_subnets(Some(subnets))
        .send()
        .await
        .expect("CreateLoadBalancer");
    let lb_arn = lb.load_balancers()[0]
        .load_balancer_arn()
        .unwrap_or_default()
        .to_string();
    // The ALB gives up on a silent target after 2 s instead of 60.
    elb.modify_load_balancer_attributes()
        .load_balancer_arn(&lb_arn)
        .attributes(
            LoadBalancerAttribute::builder()
                .key("idle_timeout.timeout_seconds")
                .value("2")
                .build(),
        )
        .send()
        .await
        .expect("ModifyLoadBalancerAttributes");
    let tg = elb
        .create_target_group()
        .name("web")
        .protocol(ProtocolEnum::Http)
        .port(8080)
        .vpc_id(&vpc)
        .target_type(TargetTypeEnum::Instance)
        .health_check_interval_seconds(5)
        .health_check_timeout_seconds(2)
        .healthy_threshold_count(2)
        .unhealthy_threshold_count(2)
        .send()
        .await
        .expect("CreateTargetGroup");
    let tg_arn = tg.target_groups()[0]
        .target_group_arn()
        .unwrap_or_default()
        .to_string();
    elb.modify_target_group_attributes()
        .target_group_arn(&tg_arn)
        .attributes(
            TargetGroupAttribute::builder()
                .key("deregistration_delay.timeout_seconds")
                .value("5")
                .build(),
        )
        .send()
        .await
        .expect("ModifyTargetGroupAttributes");
    let listener = elb
        .create_listener()
        .load_balancer_arn(&lb_arn)
        .protocol(ProtocolEnum::Http)
        .port(80)
        .default_actions(
            Action::builder()
                .r#type(ActionTypeEnum::Forward)
                .target_group_arn(&tg_arn)
                .build(),
        )
        .send()
        .await
        .expect("CreateListener");
    let listener_arn = listener.listeners()[0]
        .listener_arn()
        .unwrap_or_default()
        .to_string();
    emu.ecs()
        .register_task_definition()
        .family("web")
        .network_mode(NetworkMode::Bridge)
        .container_definitions(
            container(
                "app",
                32,
                &[
                    "sh",
                    "-c",
                    "mkdir -p /www && echo ok > /www/index.html && exec httpd -f -p 8080 -h /www",
                ],
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
        .expect("RegisterTaskDefinition");
    emu.ecs()
        .create_service()
        .cluster(cluster)
        .service_name("web")
        .task_definition("web")
        .desired_count(desired)
        .health_check_grace_period_seconds(grace)
        .load_balancers(
            EcsLoadBalancer::builder()
                .target_group_arn(&tg_arn)
                .container_name("app")
                .container_port(8080)
                .build(),
        )
        .send()
        .await
        .expect("CreateService");
    let port = eventually(30, "the listener bound", || async {
        let state = emu.raw("GET", "/_emulator/state", &[], b"").json();
        state["loadBalancerListeners"][&listener_arn]
            .as_str()
            .and_then(|a| a.rsplit(':').next())
            .and_then(|p| p.parse::<u16>().ok())
    })
    .await;
    (tg_arn, port)
}

/// (target id:port, state, reason) per registered target.
async fn target_health(emu: &Emulator, tg: &str) -> Vec<(String, String, String)> {
    emu.elbv2()
        .describe_target_health()
        .target_group_arn(tg)
        .send()
        .await
        .expect("DescribeTargetHealth")
        .target_health_descriptions()
        .iter()
        .map(|d| {
            let t = d.target().expect("target");
            let h = d.target_health().expect("health");
            (
                format!(
                    "{}:{}",
                    t.id().unwrap_or_default(),
                    t.port().unwrap_or_default()
                ),
                h.state()
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_default(),
                h.reason()
                    .map(|r| r.as_str().to_string())
                    .unwrap_or_default(),
            )
        })
        .collect()
}

/// GET / through the listener: the status and how long it took.
fn through_alb(port: u16) -> (u16, Duration) {
    let started = Instant::now();
    let r = sdk_tests::http(port, "GET", "/", &[], b"");
    (r.status, started.elapsed())
}

async fn service_tasks(ecs: &Client, cluster: &str) -> Vec<aws_sdk_ecs::types::Task> {
    let arns = ecs
        .list_tasks()
        .cluster(cluster)
        .service_name("web")
        .send()
        .await
        .expect("ListTasks")
        .task_arns()
        .to_vec();
    if arns.is_empty() {
        return Vec::new();
    }
    ecs.describe_tasks()
        .cluster(cluster)
        .set_tasks(Some(arns))
        .send()
        .await
        .expect("DescribeTasks")
        .tasks()
        .to_vec()
}

#[tokio::test]
async fn az_down_disconnects_its_agents_and_moves_the_service_out_until_az_up() {
    ensure_image();
    let emu = Emulator::start_with(&["--time-scale", "10"]);
    let ecs = emu.ecs();
    let a = cluster_with_instance(&ecs, "az", "m5.large", "us-east-1a").await;
    let b = register_instance(&ecs, "az", "m5.large", "us-east-1b").await;
    let (tg, port) = alb_service(&emu, "az", 2, 0).await;
    // One task per zone (ECS's default spread), both healthy behind the ALB.
    let tasks = eventually(60, "two tasks RUNNING and healthy", || async {
        let healthy = target_health(&emu, &tg).await;
        let tasks = service_tasks(&ecs, "az").await;
        (healthy.len() == 2 && healthy.iter().all(|(_, s, _)| s == "healthy") && tasks.len() == 2)
            .then_some(tasks)
    })
    .await;
    let in_a: Vec<_> = tasks
        .iter()
        .filter(|t| t.container_instance_arn() == Some(a.as_str()))
        .collect();
    assert_eq!(in_a.len(), 1, "spread over the zones: {tasks:?}");
    let victim = in_a[0].task_arn().expect("arn").to_string();
    assert_eq!(through_alb(port).0, 200);

    let out = fault_cli(&emu, &["az-down", "us-east-1a"]);
    assert!(out.contains("Availability Zone us-east-1a down"), "{out}");
    assert!(
        out.contains("1 container instances in us-east-1a disconnected"),
        "{out}"
    );
    assert!(!container_instance(&ecs, "az", &a).await.agent_connected());
    // The target there times out; ECS stops its task with its ELB reason and starts a
    // replacement in the zone that is up.
    let stopped = eventually(60, "the task in us-east-1a stopped", || async {
        let t = describe(&ecs, "az", &victim).await;
        (t.last_status() == Some("STOPPED")).then_some(t)
    })
    .await;
    assert_eq!(
        stopped.stopped_reason(),
        Some(format!("Task failed ELB health checks in (target-group {tg})").as_str())
    );
    assert_eq!(
        stopped.stop_code().map(|c| c.as_str()),
        Some("ServiceSchedulerInitiated")
    );
    let svc = ecs
        .describe_services()
        .cluster("az")
        .services("web")
        .send()
        .await
        .expect("DescribeServices");
    let events: Vec<&str> = svc.services()[0]
        .events()
        .iter()
        .filter_map(|e| e.message())
        .collect();
    assert!(
        events.iter().any(|m| m.contains("is unhealthy in (target-group") && m.contains("Request timed out")),
        "{events:?}"
    );
    eventually(60, "two tasks RUNNING in us-east-1b", || async {
        let tasks = service_tasks(&ecs, "az").await;
        let running: Vec<_> = tasks
            .iter()
            .filter(|t| t.last_status() == Some("RUNNING"))
            .collect();
        (running.len() == 2
            && running
                .iter()
                .all(|t| t.container_instance_arn() == Some(b.as_str())))
        .then_some(())
    })
    .await;
    assert_eq!(through_alb(port).0, 200);
    assert!(
        !container_instance(&ecs, "az", &a).await.agent_connected(),
        "still down"
    );

    // Back up: the agent reconnects.
    let out = fault_cli(&emu, &["az-up", "us-east-1a"]);
    assert!(out.contains("container instances reconnected"), "{out}");
    assert!(container_instance(&ecs, "az", &a).await.agent_connected());
    assert!(faults(&emu).is_empty());
}

#[tokio::test]
async fn killed_containers_blackholed_and_slow_targets() {
    ensure_image();
    let emu = Emulator::start_with(&["--time-scale", "10"]);
    let ecs = emu.ecs();
    let a = cluster_with_instance(&ecs, "t", "m5.large", "us-east-1a").await;
    // A long grace period: ECS leaves the unhealthy task alone, so the target stays observable.
    let (tg, port) = alb_service(&emu, "t", 1, 36000).await;
    let target = eventually(60, "the target healthy", || async {
        let h = target_health(&emu, &tg).await;
        (h.len() == 1 && h[0].1 == "healthy").then(|| h[0].0.clone())
    })
    .await;
    let ec2 = container_instance(&ecs, "t", &a)
        .await
        .ec2_instance_id()
        .expect("id")
        .to_string();
    assert!(target.starts_with(&format!("{ec2}:")), "{target}");
    assert_eq!(through_alb(port).0, 200);

    // Blackhole: ALB answers 504 once its idle timeout (2 s) passes; the health check times out.
    let (code, v) = fault(
        &emu,
        "target-blackhole",
        &format!("{{\"target\": \"{target}\"}}"),
    );
    assert_eq!(code, 200, "{v}");
    let id = v["id"].as_str().expect("id").to_string();
    let (status, took) = through_alb(port);
    assert_eq!(status, 504);
    assert!(took >= Duration::from_secs(2), "{took:?}");
    eventually(60, "the target unhealthy (Target.Timeout)", || async {
        let h = target_health(&emu, &tg).await;
        (h[0].1 == "unhealthy" && h[0].2 == "Target.Timeout").then_some(())
    })
    .await;
    let r = emu.raw("DELETE", &format!("/_emulator/faults/{id}"), &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    eventually(60, "the target healthy again", || async {
        let h = target_health(&emu, &tg).await;
        (h[0].1 == "healthy").then_some(())
    })
    .await;
    assert_eq!(through_alb(port).0, 200);

    // Slow: later than the idle timeout is a 504; a little late is an answer, late.
    let id = id_of(&fault_cli(&emu, &["slow", &target, "--delay-ms", "3000"]));
    assert_eq!(through_alb(port).0, 504);
    fault_cli(&emu, &["heal", &id]);
    let id = id_of(&fault_cli(&emu, &["slow", &target, "--delay-ms", "400"]));
    let (status, took) = through_alb(port);
    assert_eq!(status, 200);
    assert!(took >= Duration::from_millis(400), "{took:?}");
    fault_cli(&emu, &["heal", &id]);

    // Kill the service's container: the agent sees it die (137), ECS stops the task and the
    // service replaces it.
    let task = service_tasks(&ecs, "t").await.remove(0);
    let arn = task.task_arn().expect("arn").to_string();
    let out = fault_cli(&emu, &["kill-task", &arn, "--cluster", "t"]);
    assert!(out.contains("container app of task"), "{out}");
    let t = wait_status(&ecs, "t", &arn, "STOPPED").await;
    assert_eq!(
        t.stop_code().map(|c| c.as_str()),
        Some("EssentialContainerExited")
    );
    assert_eq!(
        t.stopped_reason(),
        Some("Essential container in task exited")
    );
    assert_eq!(t.containers()[0].exit_code(), Some(137));
    eventually(60, "a replacement RUNNING", || async {
        let tasks = service_tasks(&ecs, "t").await;
        tasks
            .iter()
            .any(|t| t.task_arn() != Some(arn.as_str()) && t.last_status() == Some("RUNNING"))
            .then_some(())
    })
    .await;
    let kinds: Vec<String> = faults(&emu)
        .iter()
        .map(|f| f["kind"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(kinds, vec!["task-kill"]);
}

#[tokio::test]
async fn a_paused_registry_refuses_docker_push_until_resumed() {
    ensure_image();
    let emu = Emulator::start();
    let repo = emu
        .ecr()
        .create_repository()
        .repository_name("paused")
        .send()
        .await
        .expect("CreateRepository");
    let uri = repo
        .repository()
        .and_then(|r| r.repository_uri())
        .expect("uri")
        .to_string();
    docker_login(&emu).await;
    let tag = format!("{uri}:v1");
    docker(&["tag", "ecs-emulator-test/busybox:latest", &tag]);
    let out = fault_cli(&emu, &["pause-registry"]);
    assert!(out.contains("registry paused"), "{out}");
    let r = emu.raw("GET", "/v2/", &[], b"");
    assert_eq!(r.status, 503);
    assert_eq!(r.json()["errors"][0]["code"], "UNAVAILABLE");
    let started = Instant::now();
    let push = Command::new("timeout")
        .args(["120", "docker", "push", &tag])
        .output()
        .expect("docker push");
    assert!(
        !push.status.success(),
        "the push went through a paused registry"
    );
    let err = String::from_utf8_lossy(&push.stderr).into_owned();
    assert!(
        err.contains("503") || err.contains("Service Unavailable"),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(120),
        "docker push kept retrying"
    );
    let out = fault_cli(&emu, &["resume-registry"]);
    assert!(out.contains("healed"), "{out}");
    let push = Command::new("docker")
        .args(["push", &tag])
        .output()
        .expect("docker push");
    assert!(
        push.status.success(),
        "{}",
        String::from_utf8_lossy(&push.stderr)
    );
    docker(&["rmi", &tag]);
    // A reset lifts a pause with the rest of the state.
    fault_cli(&emu, &["pause-registry"]);
    assert_eq!(emu.raw("GET", "/v2/", &[], b"").status, 503);
    assert_eq!(emu.raw("POST", "/_emulator/reset", &[], b"").status, 200);
    eventually(10, "the registry serving after the reset", || async {
        (emu.raw("GET", "/v2/", &[], b"").status != 503).then_some(())
    })
    .await;
}

/// A Unix-socket proxy in front of the machine's Docker daemon (/var/run/docker.sock) that the
/// test cuts and restores: while cut, live connections (kept-alive API connections, the event
/// stream) are dropped and new ones closed at once, so the emulator finds Docker unreachable.
/// The daemon itself is never touched. Runs on its own thread and runtime.
struct DockerProxy {
    socket: std::path::PathBuf,
    cut: tokio::sync::watch::Sender<bool>,
    _dir: tempfile::TempDir,
}

impl DockerProxy {
    fn start() -> DockerProxy {
        let dir = tempfile::Builder::new()
            .prefix("docker-proxy-")
            .tempdir()
            .expect("a directory for the socket");
        let socket = dir.path().join("docker.sock");
        let std_listener =
            std::os::unix::net::UnixListener::bind(&socket).expect("bind the proxy socket");
        std_listener.set_nonblocking(true).expect("nonblocking");
        let (cut, watch) = tokio::sync::watch::channel(false);
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("proxy runtime");
            rt.block_on(async move {
                let listener =
                    tokio::net::UnixListener::from_std(std_listener).expect("proxy listener");
                loop {
                    let Ok((mut client, _)) = listener.accept().await else {
                        continue;
                    };
                    if *watch.borrow() {
                        continue; // dropped: the connection closes at once
                    }
                    let mut watch = watch.clone();
                    tokio::spawn(async move {
                        let Ok(mut daemon) =
                            tokio::net::UnixStream::connect("/var/run/docker.sock").await
                        else {
                            return;
                        };
                        tokio::select! {
                            _ = tokio::io::copy_bidirectional(&mut client, &mut daemon) => {}
                            _ = watch.wait_for(|cut| *cut) => {}
                        }
                    });
                }
            });
        });
        DockerProxy {
            socket,
            cut,
            _dir: dir,
        }
    }

    fn docker_host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    fn set_cut(&self, cut: bool) {
        self.cut.send_replace(cut);
    }
}

/// GET /_emulator/health.
fn health(emu: &Emulator) -> Value {
    emu.raw("GET", "/_emulator/health", &[], b"").json()
}

/// Docker's running containers of this emulator: (task ARN, container name) → container ids.
fn running_containers(owner: &str) -> std::collections::BTreeMap<(String, String), Vec<String>> {
    let ps = docker(&[
        "ps",
        "--no-trunc",
        "--filter",
        &format!("label=ecs-emulator.owner={owner}"),
        "--format",
        "{{.ID}} {{.Label \"com.amazonaws.ecs.task-arn\"}} {{.Label \"com.amazonaws.ecs.container-name\"}}",
    ]);
    let mut out: std::collections::BTreeMap<(String, String), Vec<String>> = Default::default();
    for line in ps.lines() {
        let mut f = line.split_whitespace();
        if let (Some(id), Some(task), Some(name)) = (f.next(), f.next(), f.next()) {
            out.entry((task.to_string(), name.to_string()))
                .or_default()
                .push(id.to_string());
        }
    }
    out
}

async fn tasks_of(ecs: &Client, cluster: &str, arns: &[String]) -> Vec<aws_sdk_ecs::types::Task> {
    if arns.is_empty() {
        return Vec::new();
    }
    ecs.describe_tasks()
        .cluster(cluster)
        .set_tasks(Some(arns.to_vec()))
        .send()
        .await
        .expect("DescribeTasks")
        .tasks()
        .to_vec()
}

#[tokio::test]
async fn docker_unreachable_for_a_while_tasks_wait_pending_and_everything_converges() {
    ensure_image();
    // Declared first, dropped last: the emulator's reset on drop needs Docker.
    let proxy = DockerProxy::start();
    let emu = Emulator::start_with_env(&[], &[("DOCKER_HOST", &proxy.docker_host())]);
    let ecs = emu.ecs();
    let owner = emu.raw("GET", "/_emulator/state", &[], b"").json()["owner"]
        .as_str()
        .expect("owner")
        .to_string();
    // Docker is connected just after the ready line.
    eventually(20, "health: Docker ok", || async {
        (health(&emu)["docker"]["status"] == "ok").then_some(())
    })
    .await;
    let instance = cluster_with_instance(&ecs, "dk", "m5.large", "us-east-1a").await;
    sleeper(&ecs).await;
    let before = start_on(&ecs, "dk", "sleeper", &instance).await;
    ecs.create_service()
        .cluster("dk")
        .service_name("web")
        .task_definition("sleeper")
        .desired_count(2)
        .send()
        .await
        .expect("CreateService");
    let service_running = |n: usize| {
        let ecs = ecs.clone();
        async move {
            let arns = ecs
                .list_tasks()
                .cluster("dk")
                .service_name("web")
                .send()
                .await
                .expect("ListTasks")
                .task_arns()
                .to_vec();
            let tasks = tasks_of(&ecs, "dk", &arns).await;
            let running: Vec<_> = tasks
                .into_iter()
                .filter(|t| t.last_status() == Some("RUNNING"))
                .collect();
            (running.len() == n).then_some(running)
        }
    };
    let web = eventually(60, "the service's 2 tasks RUNNING", || service_running(2)).await;
    wait_status(&ecs, "dk", &before, "RUNNING").await;
    let victim = web[0].containers()[0]
        .runtime_id()
        .expect("runtime id")
        .to_string();

    // Docker unreachable.
    proxy.set_cut(true);
    let h = eventually(20, "health degraded: Docker unreachable", || async {
        let h = health(&emu);
        (h["status"] == "degraded" && h["docker"]["status"] == "unreachable").then_some(h)
    })
    .await;
    assert!(
        h["docker"]["address"]
            .as_str()
            .is_some_and(|a| a.contains("docker.sock")),
        "{h}"
    );
    assert_eq!(h["storage"]["status"], "ok", "{h}");
    // The API keeps answering: RunTask places tasks, StopTask and UpdateService are taken.
    let run = ecs
        .run_task()
        .cluster("dk")
        .task_definition("sleeper")
        .count(2)
        .send()
        .await
        .expect("RunTask while Docker is unreachable");
    assert!(run.failures().is_empty(), "{:?}", run.failures());
    let during: Vec<String> = run
        .tasks()
        .iter()
        .filter_map(|t| t.task_arn().map(str::to_string))
        .collect();
    ecs.stop_task()
        .cluster("dk")
        .task(&before)
        .send()
        .await
        .expect("StopTask");
    ecs.update_service()
        .cluster("dk")
        .service("web")
        .desired_count(3)
        .send()
        .await
        .expect("UpdateService");
    // A container dies behind the emulator's back while it cannot see Docker's events.
    let killed = Command::new("docker")
        .args(["kill", &victim])
        .output()
        .expect("docker kill");
    assert!(killed.status.success(), "{killed:?}");
    // The agent tries to start the new tasks (pullStartedAt is set on each attempt) and they stay
    // PENDING instead of failing; the stopped task keeps its container until it can be stopped.
    eventually(30, "the new tasks tried and still PENDING", || async {
        let tasks = tasks_of(&ecs, "dk", &during).await;
        for t in &tasks {
            assert_eq!(
                t.last_status(),
                Some("PENDING"),
                "a task must wait for Docker, not fail: {t:?}"
            );
        }
        (tasks.len() == 2 && tasks.iter().all(|t| t.pull_started_at().is_some())).then_some(())
    })
    .await;
    let stopping = describe(&ecs, "dk", &before).await;
    assert_ne!(stopping.last_status(), Some("STOPPED"), "{stopping:?}");
    assert_eq!(stopping.desired_status(), Some("STOPPED"));
    let before_container = stopping.containers()[0]
        .runtime_id()
        .expect("runtime id")
        .to_string();
    assert_eq!(
        docker_inspect(&before_container)["State"]["Running"],
        true,
        "not stopped while Docker was unreachable"
    );
    assert!(!emu.log().contains("panicked"), "no panic: {}", emu.log());

    // Docker answers again: everything converges.
    proxy.set_cut(false);
    eventually(20, "health running again", || async {
        (health(&emu)["status"] == "running").then_some(())
    })
    .await;
    for t in &during {
        wait_status(&ecs, "dk", t, "RUNNING").await;
    }
    let stopped = wait_status(&ecs, "dk", &before, "STOPPED").await;
    assert_eq!(
        stopped.stop_code().map(|c| c.as_str()),
        Some("UserInitiated")
    );
    assert_eq!(
        docker_inspect(&before_container)["State"]["Running"],
        false,
        "stopped once Docker answered"
    );
    // The killed container's task is seen to have stopped (its event was lost) and replaced:
    // three RUNNING tasks, none of them the victim's.
    let web = eventually(60, "the service at its desired 3 RUNNING tasks", || async {
        let web = service_running(3).await?;
        web.iter()
            .all(|t| t.containers()[0].runtime_id() != Some(victim.as_str()))
            .then_some(web)
    })
    .await;
    let victim_task = web_victim_task(&ecs, &victim).await;
    assert_eq!(
        victim_task.last_status(),
        Some("STOPPED"),
        "{victim_task:?}"
    );
    assert_eq!(
        victim_task.containers()[0].exit_code(),
        Some(137),
        "{victim_task:?}"
    );
    // Docker's view: exactly one running container per RUNNING task, no duplicate, no orphan.
    let mut expected: Vec<String> = web
        .iter()
        .filter_map(|t| t.task_arn().map(str::to_string))
        .chain(during.iter().cloned())
        .collect();
    expected.sort();
    let running = eventually(
        20,
        "Docker runs exactly the RUNNING tasks' containers",
        || async {
            let running = running_containers(&owner);
            let mut tasks: Vec<String> = running.keys().map(|(t, _)| t.clone()).collect();
            tasks.sort();
            (tasks == expected).then_some(running)
        },
    )
    .await;
    for ((task, name), ids) in &running {
        assert_eq!(ids.len(), 1, "{task} {name}: {ids:?}");
    }
}

/// The service task whose container was `container`, among every task of cluster dk.
async fn web_victim_task(ecs: &Client, container: &str) -> aws_sdk_ecs::types::Task {
    let mut arns = Vec::new();
    for status in [
        aws_sdk_ecs::types::DesiredStatus::Running,
        aws_sdk_ecs::types::DesiredStatus::Stopped,
    ] {
        let out = ecs
            .list_tasks()
            .cluster("dk")
            .desired_status(status)
            .send()
            .await
            .expect("ListTasks");
        arns.extend(out.task_arns().iter().cloned());
    }
    tasks_of(ecs, "dk", &arns)
        .await
        .into_iter()
        .find(|t| {
            t.containers()
                .iter()
                .any(|c| c.runtime_id() == Some(container))
        })
        .expect("the victim's task is still describable")
}
