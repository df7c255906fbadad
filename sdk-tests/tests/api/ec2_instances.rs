//! Virtual EC2 instances through aws-sdk-ec2, and their ECS agent: an instance launched with
//! ECS_CLUSTER in its user data registers with that cluster, and its termination stops its
//! tasks and deregisters it.

use aws_sdk_ec2::types::{
    Filter, InstanceStateName, InstanceType, ResourceType, Tag, TagSpecification,
};
use aws_sdk_ecs::types::{ContainerDefinition, ContainerInstance};
use sdk_tests::Emulator;
use std::time::{Duration, Instant};

use crate::ecs_docker::ensure_image;

/// User data as RunInstances takes it.
pub fn base64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

const IMAGE: &str = "ecs-emulator-test/busybox:latest";

/// The ECS-optimized Amazon Linux 2023 x86_64 AMI of the region.
pub async fn ecs_ami(ec2: &aws_sdk_ec2::Client) -> String {
    let out = ec2
        .describe_images()
        .owners("amazon")
        .filters(
            Filter::builder()
                .name("name")
                .values("al2023-ami-ecs-hvm-*-x86_64")
                .build(),
        )
        .send()
        .await
        .expect("DescribeImages");
    out.images()
        .first()
        .and_then(|i| i.image_id())
        .expect("an ECS-optimized AMI")
        .to_string()
}

async fn instance_state(ec2: &aws_sdk_ec2::Client, id: &str) -> Option<InstanceStateName> {
    let out = ec2
        .describe_instances()
        .instance_ids(id)
        .send()
        .await
        .expect("DescribeInstances");
    out.reservations()
        .first()
        .and_then(|r| r.instances().first())
        .and_then(|i| i.state())
        .and_then(|s| s.name())
        .cloned()
}

async fn container_instance(
    ecs: &aws_sdk_ecs::Client,
    cluster: &str,
    arn: &str,
) -> ContainerInstance {
    ecs.describe_container_instances()
        .cluster(cluster)
        .container_instances(arn)
        .send()
        .await
        .expect("DescribeContainerInstances")
        .container_instances()
        .first()
        .cloned()
        .expect("the container instance")
}

#[tokio::test]
async fn instance_registers_with_its_cluster_and_leaves_on_termination() {
    ensure_image();
    let emu = Emulator::start();
    let (ec2, ecs) = (emu.ec2(), emu.ecs());
    ecs.create_cluster()
        .cluster_name("demo")
        .send()
        .await
        .expect("CreateCluster");
    let ami = ecs_ami(&ec2).await;
    let user_data = "#!/bin/bash\necho ECS_CLUSTER=demo >> /etc/ecs/ecs.config";
    let run = ec2
        .run_instances()
        .image_id(&ami)
        .instance_type(InstanceType::M5Large)
        .min_count(1)
        .max_count(1)
        .user_data(base64(user_data.as_bytes()))
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::Instance)
                .tags(Tag::builder().key("Name").value("ecs-host").build())
                .build(),
        )
        .send()
        .await
        .expect("RunInstances");
    let launched_at = Instant::now();
    let instance = run.instances().first().cloned().expect("one instance");
    let id = instance.instance_id().expect("instance id").to_string();
    assert!(id.starts_with("i-") && id.len() == 19, "{id}");
    assert!(run.reservation_id().is_some_and(|r| r.starts_with("r-")));
    assert_eq!(
        instance.state().and_then(|s| s.name()),
        Some(&InstanceStateName::Pending)
    );
    let az = instance
        .placement()
        .and_then(|p| p.availability_zone())
        .expect("AZ")
        .to_string();
    let ip = instance
        .private_ip_address()
        .expect("private IP")
        .to_string();
    let subnet = instance.subnet_id().expect("subnet").to_string();

    // The agent on the instance registers it with "demo" (within a second when idle; the bound
    // is generous so that a loaded CI machine stays green).
    let arn = loop {
        let out = ecs
            .list_container_instances()
            .cluster("demo")
            .send()
            .await
            .expect("ListContainerInstances");
        if let Some(arn) = out.container_instance_arns().first() {
            break arn.clone();
        }
        assert!(
            launched_at.elapsed() < Duration::from_secs(30),
            "no container instance within 30 s; log:\n{}",
            emu.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        instance_state(&ec2, &id).await,
        Some(InstanceStateName::Running)
    );
    let ci = container_instance(&ecs, "demo", &arn).await;
    assert_eq!(ci.ec2_instance_id(), Some(id.as_str()));
    assert_eq!(ci.status(), Some("ACTIVE"));
    assert!(ci.agent_connected());
    let cpu = ci
        .registered_resources()
        .iter()
        .find(|r| r.name() == Some("CPU"))
        .map(|r| r.integer_value());
    assert_eq!(cpu, Some(2 * 1024), "m5.large has 2 vCPUs");
    let attr = |name: &str| {
        ci.attributes()
            .iter()
            .find(|a| a.name() == name)
            .and_then(|a| a.value())
            .map(str::to_string)
    };
    assert_eq!(attr("ecs.availability-zone"), Some(az.clone()));
    assert_eq!(attr("ecs.instance-type").as_deref(), Some("m5.large"));
    assert_eq!(attr("ecs.ami-id"), Some(ami.clone()));
    assert_eq!(attr("ecs.subnet-id"), Some(subnet));
    let by_ip = ec2
        .describe_instances()
        .filters(
            Filter::builder()
                .name("private-ip-address")
                .values(&ip)
                .build(),
        )
        .send()
        .await
        .expect("DescribeInstances by IP");
    assert_eq!(
        by_ip.reservations()[0].instances()[0].instance_id(),
        Some(id.as_str())
    );

    // A task on the instance.
    ecs.register_task_definition()
        .family("sleeper")
        .container_definitions(
            ContainerDefinition::builder()
                .name("main")
                .image(IMAGE)
                .memory(32)
                .stop_timeout(2)
                .set_command(Some(vec!["sleep".into(), "3600".into()]))
                .build(),
        )
        .send()
        .await
        .expect("RegisterTaskDefinition");
    let out = ecs
        .run_task()
        .cluster("demo")
        .task_definition("sleeper")
        .send()
        .await
        .expect("RunTask");
    assert!(out.failures().is_empty(), "{:?}", out.failures());
    let task = out
        .tasks()
        .first()
        .and_then(|t| t.task_arn())
        .expect("task ARN")
        .to_string();
    assert_eq!(
        out.tasks().first().and_then(|t| t.container_instance_arn()),
        Some(arn.as_str())
    );
    let describe = || async {
        ecs.describe_tasks()
            .cluster("demo")
            .tasks(&task)
            .send()
            .await
            .expect("DescribeTasks")
            .tasks()
            .first()
            .cloned()
            .expect("the task")
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while describe().await.last_status() != Some("RUNNING") {
        assert!(
            Instant::now() < deadline,
            "task not RUNNING; log:\n{}",
            emu.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Terminate the host: the task stops with the host's reason, the instance goes INACTIVE.
    let out = ec2
        .terminate_instances()
        .instance_ids(&id)
        .send()
        .await
        .expect("TerminateInstances");
    let change = out.terminating_instances().first().expect("state change");
    assert_eq!(
        change.current_state().and_then(|s| s.name()),
        Some(&InstanceStateName::ShuttingDown)
    );
    assert_eq!(
        change.previous_state().and_then(|s| s.name()),
        Some(&InstanceStateName::Running)
    );
    let expected = format!("Host EC2 (instance {id}) terminated.");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let t = describe().await;
        if t.last_status() == Some("STOPPED") {
            assert_eq!(t.desired_status(), Some("STOPPED"));
            assert_eq!(t.stopped_reason(), Some(expected.as_str()));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "task not STOPPED: {t:?}; log:\n{}",
            emu.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let ci = container_instance(&ecs, "demo", &arn).await;
    assert_eq!(ci.status(), Some("INACTIVE"));
    assert!(!ci.agent_connected());
    let listed = ecs
        .list_container_instances()
        .cluster("demo")
        .send()
        .await
        .expect("ListContainerInstances");
    assert!(listed.container_instance_arns().is_empty());
    // The terminated instance stays describable.
    let deadline = Instant::now() + Duration::from_secs(5);
    while instance_state(&ec2, &id).await != Some(InstanceStateName::Terminated) {
        assert!(Instant::now() < deadline, "instance not terminated");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn stop_disconnects_start_reconnects_and_errors_are_ec2s() {
    let emu = Emulator::start();
    let (ec2, ecs) = (emu.ec2(), emu.ecs());
    ecs.create_cluster()
        .cluster_name("default")
        .send()
        .await
        .expect("CreateCluster");
    let ami = ecs_ami(&ec2).await;
    // No ECS_CLUSTER: the agent joins "default".
    let run = ec2
        .run_instances()
        .image_id(&ami)
        .instance_type(InstanceType::T3Small)
        .min_count(1)
        .max_count(1)
        .send()
        .await
        .expect("RunInstances");
    let id = run.instances()[0].instance_id().expect("id").to_string();
    let wait_ci = |want_connected: bool| {
        let ecs = ecs.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                let arns = ecs
                    .list_container_instances()
                    .send()
                    .await
                    .expect("List")
                    .container_instance_arns()
                    .to_vec();
                if let Some(arn) = arns.first() {
                    let ci = container_instance(&ecs, "default", arn).await;
                    if ci.agent_connected() == want_connected {
                        return ci;
                    }
                }
                assert!(
                    Instant::now() < deadline,
                    "agentConnected != {want_connected}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    let ci = wait_ci(true).await;
    assert_eq!(ci.ec2_instance_id(), Some(id.as_str()));

    let out = ec2
        .stop_instances()
        .instance_ids(&id)
        .send()
        .await
        .expect("StopInstances");
    assert_eq!(
        out.stopping_instances()[0]
            .current_state()
            .and_then(|s| s.name()),
        Some(&InstanceStateName::Stopping)
    );
    let ci = wait_ci(false).await;
    assert_eq!(ci.status(), Some("ACTIVE"));
    let deadline = Instant::now() + Duration::from_secs(5);
    while instance_state(&ec2, &id).await != Some(InstanceStateName::Stopped) {
        assert!(Instant::now() < deadline, "instance not stopped");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    ec2.start_instances()
        .instance_ids(&id)
        .send()
        .await
        .expect("StartInstances");
    let ci = wait_ci(true).await;
    assert_eq!(ci.ec2_instance_id(), Some(id.as_str()));

    // Filters and DescribeInstanceTypes.
    let out = ec2
        .describe_instances()
        .filters(
            Filter::builder()
                .name("instance-type")
                .values("t3.small")
                .build(),
        )
        .send()
        .await
        .expect("DescribeInstances");
    assert_eq!(out.reservations().len(), 1);
    let types = ec2
        .describe_instance_types()
        .instance_types(InstanceType::M5Large)
        .send()
        .await
        .expect("DescribeInstanceTypes");
    let t = &types.instance_types()[0];
    assert_eq!(t.v_cpu_info().and_then(|v| v.default_v_cpus()), Some(2));
    assert_eq!(t.memory_info().and_then(|m| m.size_in_mib()), Some(8192));

    // EC2's error codes.
    use aws_sdk_ec2::error::ProvideErrorMetadata;
    let e = ec2
        .run_instances()
        .image_id("ami-0123456789abcdef0")
        .instance_type(InstanceType::M5Large)
        .min_count(1)
        .max_count(1)
        .send()
        .await
        .expect_err("unknown AMI");
    assert_eq!(e.code(), Some("InvalidAMIID.NotFound"));
    let e = ec2
        .run_instances()
        .image_id(&ami)
        .instance_type(InstanceType::from("x9.huge"))
        .min_count(1)
        .max_count(1)
        .send()
        .await
        .expect_err("unknown type");
    assert_eq!(e.code(), Some("InvalidParameterValue"));
    let e = ec2
        .terminate_instances()
        .instance_ids("i-0123456789abcdef0")
        .send()
        .await
        .expect_err("unknown instance");
    assert_eq!(e.code(), Some("InvalidInstanceID.NotFound"));
    let e = ec2
        .describe_instances()
        .instance_ids("i-xyz")
        .send()
        .await
        .expect_err("malformed");
    assert_eq!(e.code(), Some("InvalidInstanceID.Malformed"));
}
