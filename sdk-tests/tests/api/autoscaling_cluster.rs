//! EC2 Auto Scaling through aws-sdk-autoscaling against the running binary: groups launch real
//! virtual EC2 instances from launch templates, the instances join the ECS cluster their user
//! data names and run real containers (busybox from fixtures/build-images.sh); lifecycle hooks
//! hold instances in Pending:Wait; ELB health checks replace instances; boto3 and the AWS CLI.

use aws_sdk_autoscaling::types::{
    LaunchTemplateSpecification, LifecycleHookSpecification, LifecycleState,
};
use aws_sdk_ec2::types::{Filter, RequestLaunchTemplateData};
use aws_sdk_ecs::error::ProvideErrorMetadata;
use aws_sdk_ecs::types::ContainerDefinition;
use sdk_tests::Emulator;
use std::time::{Duration, Instant};

use crate::ec2_instances::{base64, ecs_ami};
use crate::ecs_docker::ensure_image;

const IMAGE: &str = "ecs-emulator-test/busybox:latest";

/// A launch template whose instances join `cluster`.
async fn template(ec2: &aws_sdk_ec2::Client, name: &str, cluster: &str) -> String {
    let ami = ecs_ami(ec2).await;
    let user_data = format!("#!/bin/bash\necho ECS_CLUSTER={cluster} >> /etc/ecs/ecs.config");
    ec2.create_launch_template()
        .launch_template_name(name)
        .launch_template_data(
            RequestLaunchTemplateData::builder()
                .image_id(ami)
                .instance_type(aws_sdk_ec2::types::InstanceType::M5Large)
                .user_data(base64(user_data.as_bytes()))
                .build(),
        )
        .send()
        .await
        .expect("CreateLaunchTemplate")
        .launch_template()
        .and_then(|t| t.launch_template_id())
        .expect("template id")
        .to_string()
}

async fn default_subnets(ec2: &aws_sdk_ec2::Client) -> Vec<String> {
    let mut subnets: Vec<(String, String)> = ec2
        .describe_subnets()
        .filters(
            Filter::builder()
                .name("default-for-az")
                .values("true")
                .build(),
        )
        .send()
        .await
        .expect("DescribeSubnets")
        .subnets()
        .iter()
        .map(|s| {
            (
                s.availability_zone().unwrap_or_default().to_string(),
                s.subnet_id().unwrap_or_default().to_string(),
            )
        })
        .collect();
    subnets.sort();
    subnets.into_iter().map(|(_, s)| s).collect()
}

async fn group(
    asg: &aws_sdk_autoscaling::Client,
    name: &str,
) -> Option<aws_sdk_autoscaling::types::AutoScalingGroup> {
    asg.describe_auto_scaling_groups()
        .auto_scaling_group_names(name)
        .send()
        .await
        .expect("DescribeAutoScalingGroups")
        .auto_scaling_groups()
        .first()
        .cloned()
}

async fn states(asg: &aws_sdk_autoscaling::Client, name: &str) -> Vec<LifecycleState> {
    group(asg, name)
        .await
        .map(|g| {
            g.instances()
                .iter()
                .filter_map(|i| i.lifecycle_state().cloned())
                .collect()
        })
        .unwrap_or_default()
}

/// Polls `check` every 50 ms until it holds, at most `limit`.
macro_rules! wait_until {
    ($limit:expr, $what:expr, $emu:expr, $check:expr) => {{
        let deadline = Instant::now() + $limit;
        loop {
            if $check {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{} within {:?}; log:\n{}",
                $what,
                $limit,
                $emu.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }};
}

#[tokio::test]
async fn group_instances_join_the_cluster_run_tasks_and_leave() {
    ensure_image();
    let emu = Emulator::start();
    let (ec2, ecs, asg) = (emu.ec2(), emu.ecs(), emu.autoscaling());
    ecs.create_cluster()
        .cluster_name("asg-demo")
        .send()
        .await
        .expect("CreateCluster");
    let lt = template(&ec2, "asg-demo", "asg-demo").await;
    let subnets = default_subnets(&ec2).await;
    asg.create_auto_scaling_group()
        .auto_scaling_group_name("asg-demo")
        .min_size(0)
        .max_size(4)
        .desired_capacity(2)
        .launch_template(
            LaunchTemplateSpecification::builder()
                .launch_template_id(&lt)
                .version("$Latest")
                .build(),
        )
        .vpc_zone_identifier(subnets[..2].join(","))
        .send()
        .await
        .expect("CreateAutoScalingGroup");

    // Two instances, one per zone, InService and registered with the cluster.
    wait_until!(
        Duration::from_secs(10),
        "two instances InService",
        emu,
        states(&asg, "asg-demo").await == vec![LifecycleState::InService; 2]
    );
    let g = group(&asg, "asg-demo").await.expect("group");
    let mut zones: Vec<String> = g
        .instances()
        .iter()
        .filter_map(|i| i.availability_zone().map(str::to_string))
        .collect();
    zones.sort();
    assert_eq!(zones, vec!["us-east-1a", "us-east-1b"]);
    let ids: Vec<String> = g
        .instances()
        .iter()
        .filter_map(|i| i.instance_id().map(str::to_string))
        .collect();
    wait_until!(
        Duration::from_secs(10),
        "two container instances",
        emu,
        ecs.list_container_instances()
            .cluster("asg-demo")
            .send()
            .await
            .expect("ListContainerInstances")
            .container_instance_arns()
            .len()
            == 2
    );
    let described = ec2
        .describe_instances()
        .set_instance_ids(Some(ids.clone()))
        .send()
        .await
        .expect("DescribeInstances");
    for i in described.reservations().iter().flat_map(|r| r.instances()) {
        let tag = |k: &str| {
            i.tags()
                .iter()
                .find(|t| t.key() == Some(k))
                .and_then(|t| t.value())
                .map(str::to_string)
        };
        assert_eq!(
            tag("aws:autoscaling:groupName").as_deref(),
            Some("asg-demo")
        );
        assert_eq!(tag("aws:ec2launchtemplate:id"), Some(lt.clone()));
    }

    // A real container runs on the group's instances.
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
    let run = ecs
        .run_task()
        .cluster("asg-demo")
        .task_definition("sleeper")
        .send()
        .await
        .expect("RunTask");
    assert!(run.failures().is_empty(), "{:?}", run.failures());
    let task = run.tasks()[0].task_arn().expect("task").to_string();
    let last_status = || async {
        ecs.describe_tasks()
            .cluster("asg-demo")
            .tasks(&task)
            .send()
            .await
            .expect("DescribeTasks")
            .tasks()
            .first()
            .and_then(|t| t.last_status().map(str::to_string))
            .unwrap_or_default()
    };
    wait_until!(
        Duration::from_secs(60),
        "the task RUNNING",
        emu,
        last_status().await == "RUNNING"
    );

    // Scale to zero: instances terminate, leave the cluster, the task stops.
    asg.set_desired_capacity()
        .auto_scaling_group_name("asg-demo")
        .desired_capacity(0)
        .send()
        .await
        .expect("SetDesiredCapacity");
    wait_until!(
        Duration::from_secs(30),
        "the group empty",
        emu,
        group(&asg, "asg-demo")
            .await
            .is_some_and(|g| g.instances().is_empty())
    );
    wait_until!(
        Duration::from_secs(30),
        "the task STOPPED",
        emu,
        last_status().await == "STOPPED"
    );
    let acts = asg
        .describe_scaling_activities()
        .auto_scaling_group_name("asg-demo")
        .send()
        .await
        .expect("DescribeScalingActivities");
    let descriptions: Vec<&str> = acts
        .activities()
        .iter()
        .filter_map(|a| a.description())
        .collect();
    assert_eq!(descriptions.len(), 4, "{descriptions:?}");
    assert!(descriptions[..2]
        .iter()
        .all(|d| d.starts_with("Terminating EC2 instance: i-")));
    let cause = acts.activities()[0].cause().unwrap_or_default();
    assert!(
        cause.contains("a user request explicitly set group desired capacity changing the desired capacity from 2 to 0.")
            && cause.contains("shrinking the capacity from 2 to 0."),
        "{cause}"
    );

    // Bad input: AWS's code, message and status, nothing created.
    let err = asg
        .create_auto_scaling_group()
        .auto_scaling_group_name("bad")
        .min_size(5)
        .max_size(2)
        .launch_template(
            LaunchTemplateSpecification::builder()
                .launch_template_id(&lt)
                .build(),
        )
        .availability_zones("us-east-1a")
        .send()
        .await
        .expect_err("min > max");
    assert_eq!(err.code(), Some("ValidationError"));
    assert_eq!(
        err.message(),
        Some("Max bound, 2, must be greater than or equal to min bound, 5")
    );
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(400));
    let err = asg
        .create_auto_scaling_group()
        .auto_scaling_group_name("bad")
        .min_size(0)
        .max_size(2)
        .launch_template(
            LaunchTemplateSpecification::builder()
                .launch_template_name("no-such-template")
                .build(),
        )
        .availability_zones("us-east-1a")
        .send()
        .await
        .expect_err("unknown template");
    assert_eq!(err.code(), Some("ValidationError"));
    assert!(group(&asg, "bad").await.is_none());
}

#[tokio::test]
async fn lifecycle_hook_holds_a_new_instance_until_completed() {
    let emu = Emulator::start();
    let (ec2, asg) = (emu.ec2(), emu.autoscaling());
    let lt = template(&ec2, "hooked", "nowhere").await;
    asg.create_auto_scaling_group()
        .auto_scaling_group_name("hooked")
        .min_size(0)
        .max_size(2)
        .desired_capacity(1)
        .launch_template(
            LaunchTemplateSpecification::builder()
                .launch_template_id(&lt)
                .build(),
        )
        .availability_zones("us-east-1a")
        .lifecycle_hook_specification_list(
            LifecycleHookSpecification::builder()
                .lifecycle_hook_name("warmup")
                .lifecycle_transition("autoscaling:EC2_INSTANCE_LAUNCHING")
                .heartbeat_timeout(3600)
                .default_result("ABANDON")
                .build(),
        )
        .send()
        .await
        .expect("CreateAutoScalingGroup");
    wait_until!(
        Duration::from_secs(10),
        "the instance in Pending:Wait",
        emu,
        states(&asg, "hooked").await == vec![LifecycleState::PendingWait]
    );
    // It stays there (the heartbeat is an hour).
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(
            states(&asg, "hooked").await,
            vec![LifecycleState::PendingWait]
        );
    }
    let id = group(&asg, "hooked").await.expect("group").instances()[0]
        .instance_id()
        .expect("id")
        .to_string();
    let acts = asg
        .describe_scaling_activities()
        .auto_scaling_group_name("hooked")
        .send()
        .await
        .expect("activities");
    assert_eq!(
        acts.activities()[0].status_code().map(|s| s.as_str()),
        Some("MidLifecycleAction")
    );
    asg.complete_lifecycle_action()
        .auto_scaling_group_name("hooked")
        .lifecycle_hook_name("warmup")
        .instance_id(&id)
        .lifecycle_action_result("CONTINUE")
        .send()
        .await
        .expect("CompleteLifecycleAction");
    wait_until!(
        Duration::from_secs(10),
        "the instance InService",
        emu,
        states(&asg, "hooked").await == vec![LifecycleState::InService]
    );
    let err = asg
        .complete_lifecycle_action()
        .auto_scaling_group_name("hooked")
        .lifecycle_hook_name("warmup")
        .instance_id(&id)
        .lifecycle_action_result("CONTINUE")
        .send()
        .await
        .expect_err("no action left");
    assert_eq!(err.code(), Some("ValidationError"));
    assert_eq!(
        err.message().map(str::to_string),
        Some(format!(
            "No active Lifecycle Action found with instance ID {id}"
        ))
    );
}

#[tokio::test]
async fn elb_health_checks_replace_an_instance() {
    let emu = Emulator::start_with(&["--time-scale", "20"]);
    let (ec2, asg, elb) = (emu.ec2(), emu.autoscaling(), emu.elbv2());
    let lt = template(&ec2, "lb", "nowhere").await;
    let vpc = ec2
        .describe_vpcs()
        .send()
        .await
        .expect("DescribeVpcs")
        .vpcs()[0]
        .vpc_id()
        .expect("vpc")
        .to_string();
    let tg = elb
        .create_target_group()
        .name("asg-tg")
        .protocol(aws_sdk_elasticloadbalancingv2::types::ProtocolEnum::Http)
        .port(8080)
        .vpc_id(vpc)
        .health_check_interval_seconds(6)
        .health_check_timeout_seconds(2)
        .healthy_threshold_count(2)
        .unhealthy_threshold_count(2)
        .send()
        .await
        .expect("CreateTargetGroup")
        .target_groups()[0]
        .target_group_arn()
        .expect("arn")
        .to_string();
    let subnets = default_subnets(&ec2).await;
    let lb = elb
        .create_load_balancer()
        .name("asg-lb")
        .set_subnets(Some(subnets[..2].to_vec()))
        .send()
        .await
        .expect("CreateLoadBalancer")
        .load_balancers()[0]
        .load_balancer_arn()
        .expect("lb")
        .to_string();
    elb.create_listener()
        .load_balancer_arn(&lb)
        .protocol(aws_sdk_elasticloadbalancingv2::types::ProtocolEnum::Http)
        .port(80)
        .default_actions(
            aws_sdk_elasticloadbalancingv2::types::Action::builder()
                .r#type(aws_sdk_elasticloadbalancingv2::types::ActionTypeEnum::Forward)
                .target_group_arn(&tg)
                .build(),
        )
        .send()
        .await
        .expect("CreateListener");
    asg.create_auto_scaling_group()
        .auto_scaling_group_name("lb")
        .min_size(1)
        .max_size(2)
        .desired_capacity(1)
        .launch_template(
            LaunchTemplateSpecification::builder()
                .launch_template_id(&lt)
                .build(),
        )
        .vpc_zone_identifier(subnets[0].clone())
        .target_group_arns(&tg)
        .health_check_type("ELB")
        .health_check_grace_period(0)
        .send()
        .await
        .expect("CreateAutoScalingGroup");
    wait_until!(
        Duration::from_secs(10),
        "the instance InService",
        emu,
        states(&asg, "lb").await == vec![LifecycleState::InService]
    );
    let first = group(&asg, "lb").await.expect("group").instances()[0]
        .instance_id()
        .expect("id")
        .to_string();
    // Registered in the target group by the group.
    wait_until!(
        Duration::from_secs(10),
        "the instance registered",
        emu,
        elb.describe_target_health()
            .target_group_arn(&tg)
            .send()
            .await
            .expect("DescribeTargetHealth")
            .target_health_descriptions()
            .iter()
            .any(|d| d.target().and_then(|t| t.id()) == Some(first.as_str()))
    );
    // Nothing listens on port 8080 of the instance: its target turns unhealthy and the group
    // replaces the instance.
    wait_until!(
        Duration::from_secs(30),
        "the instance replaced",
        emu,
        group(&asg, "lb").await.is_some_and(|g| g
            .instances()
            .iter()
            .any(|i| i.instance_id() != Some(first.as_str())))
    );
    let acts = asg
        .describe_scaling_activities()
        .auto_scaling_group_name("lb")
        .send()
        .await
        .expect("activities");
    assert!(
        acts.activities().iter().any(|a| a.description()
            == Some(&format!("Terminating EC2 instance: {first}"))
            && a.cause().is_some_and(|c| c.contains(
                "was taken out of service in response to an ELB system health check failure."
            ))),
        "{:?}",
        acts.activities()
    );
}

/// sdk-tests/python/autoscaling.py: boto3's paginators, `aws autoscaling
/// describe-auto-scaling-groups`, `describe-scaling-activities`, `wait group-in-service`.
#[test]
fn boto3_paginators_and_the_aws_cli() {
    let emu = Emulator::start();
    sdk_tests::run_python(&emu, "autoscaling.py", "AUTOSCALING OK");
}

/// The acceptance scenario of cluster auto scaling: a cluster whose default capacity provider
/// wraps a group (min 0, max 4, m5.large); a service of 6 tasks needing 3 instances makes the
/// group grow from 0, the tasks go PROVISIONING → RUNNING as instances join; setting the
/// service to 0 shrinks the group back to 0 after the scale-in alarm's 15 minutes.
#[tokio::test]
async fn capacity_provider_grows_and_shrinks_the_group_with_a_service() {
    use aws_sdk_ecs::types::{
        AutoScalingGroupProvider, CapacityProviderStrategyItem, ManagedScaling,
        ManagedScalingStatus, ManagedTerminationProtection,
    };
    ensure_image();
    let emu = Emulator::start_with(&["--time-scale", "60"]);
    let (ec2, ecs, asg, cw) = (emu.ec2(), emu.ecs(), emu.autoscaling(), emu.cloudwatch());
    let lt = template(&ec2, "cp", "cp-demo").await;
    asg.create_auto_scaling_group()
        .auto_scaling_group_name("cp-asg")
        .min_size(0)
        .max_size(4)
        .desired_capacity(0)
        .launch_template(
            LaunchTemplateSpecification::builder()
                .launch_template_id(&lt)
                .build(),
        )
        .availability_zones("us-east-1a")
        .availability_zones("us-east-1b")
        .new_instances_protected_from_scale_in(true)
        .send()
        .await
        .expect("CreateAutoScalingGroup");
    let group_arn = group(&asg, "cp-asg")
        .await
        .and_then(|g| g.auto_scaling_group_arn().map(str::to_string))
        .expect("group ARN");

    // Bad input first: ECS's errors, nothing created.
    let err = ecs
        .create_capacity_provider()
        .name("ecs-cp")
        .auto_scaling_group_provider(
            AutoScalingGroupProvider::builder()
                .auto_scaling_group_arn(&group_arn)
                .build()
                .expect("provider"),
        )
        .send()
        .await
        .expect_err("reserved prefix");
    assert_eq!(err.code(), Some("ClientException"));

    ecs.create_capacity_provider()
        .name("cp")
        .auto_scaling_group_provider(
            AutoScalingGroupProvider::builder()
                .auto_scaling_group_arn(&group_arn)
                .managed_scaling(
                    ManagedScaling::builder()
                        .status(ManagedScalingStatus::Enabled)
                        .target_capacity(100)
                        .build(),
                )
                .managed_termination_protection(ManagedTerminationProtection::Enabled)
                .build()
                .expect("provider"),
        )
        .send()
        .await
        .expect("CreateCapacityProvider");
    ecs.create_cluster()
        .cluster_name("cp-demo")
        .capacity_providers("cp")
        .default_capacity_provider_strategy(
            CapacityProviderStrategyItem::builder()
                .capacity_provider("cp")
                .weight(1)
                .build()
                .expect("strategy"),
        )
        .send()
        .await
        .expect("CreateCluster");
    // ECS put its target tracking policy on the group.
    let policies = asg
        .describe_policies()
        .auto_scaling_group_name("cp-asg")
        .send()
        .await
        .expect("DescribePolicies");
    let policy = &policies.scaling_policies()[0];
    assert!(policy
        .policy_name()
        .is_some_and(|n| n.starts_with("ECSManagedAutoScalingPolicy-")));
    assert_eq!(policy.alarms().len(), 2);

    ecs.register_task_definition()
        .family("web")
        .container_definitions(
            ContainerDefinition::builder()
                .name("main")
                .image(IMAGE)
                .cpu(1024)
                .memory(256)
                .stop_timeout(2)
                .set_command(Some(vec!["sleep".into(), "3600".into()]))
                .build(),
        )
        .send()
        .await
        .expect("RegisterTaskDefinition");
    ecs.create_service()
        .cluster("cp-demo")
        .service_name("web")
        .task_definition("web")
        .desired_count(6)
        .send()
        .await
        .expect("CreateService");
    let tasks = || async {
        let arns = ecs
            .list_tasks()
            .cluster("cp-demo")
            .send()
            .await
            .expect("ListTasks")
            .task_arns()
            .to_vec();
        if arns.is_empty() {
            return Vec::new();
        }
        ecs.describe_tasks()
            .cluster("cp-demo")
            .set_tasks(Some(arns))
            .send()
            .await
            .expect("DescribeTasks")
            .tasks()
            .to_vec()
    };
    // The tasks wait in PROVISIONING: the group has no instance.
    wait_until!(Duration::from_secs(10), "six PROVISIONING tasks", emu, {
        let t = tasks().await;
        t.len() == 6 && t.iter().all(|t| t.last_status() == Some("PROVISIONING"))
    });
    assert!(tasks()
        .await
        .iter()
        .all(|t| t.capacity_provider_name() == Some("cp")));
    // The reservation metric drives the group to 3 instances and the tasks run on them.
    wait_until!(Duration::from_secs(120), "six RUNNING tasks", emu, {
        let t = tasks().await;
        t.len() == 6 && t.iter().all(|t| t.last_status() == Some("RUNNING"))
    });
    let g = group(&asg, "cp-asg").await.expect("group");
    assert_eq!(g.desired_capacity(), Some(3), "{g:?}");
    assert!(g
        .instances()
        .iter()
        .all(|i| i.protected_from_scale_in() == Some(true)));
    let stats = cw
        .list_metrics()
        .namespace("AWS/ECS/ManagedScaling")
        .send()
        .await
        .expect("ListMetrics");
    assert!(stats
        .metrics()
        .iter()
        .any(|m| m.metric_name() == Some("CapacityProviderReservation")));
    let acts = asg
        .describe_scaling_activities()
        .auto_scaling_group_name("cp-asg")
        .send()
        .await
        .expect("activities");
    assert!(acts.activities().iter().any(|a| a.cause().is_some_and(|c| c
        .contains("a monitor alarm TargetTracking-cp-asg-AlarmHigh-")
        && c.contains("in state ALARM triggered policy ECSManagedAutoScalingPolicy-"))));
    // Managed scaling sized the step from the waiting tasks: 0 → 3 at once (ECS's estimate of
    // the instances they need), not 0 → 2 → 3 as the 200 % metric alone would.
    assert!(
        acts.activities().iter().any(|a| a
            .cause()
            .is_some_and(|c| c.contains("changing the desired capacity from 0 to 3."))),
        "{:?}",
        acts.activities()
    );
    // instanceWarmupPeriod (default 300) is the policy's EstimatedInstanceWarmup.
    assert_eq!(policy.estimated_instance_warmup(), Some(300));

    // Service to 0: the tasks stop, protection goes, and after the low alarm the group shrinks
    // to 0.
    ecs.update_service()
        .cluster("cp-demo")
        .service("web")
        .desired_count(0)
        .send()
        .await
        .expect("UpdateService");
    wait_until!(
        Duration::from_secs(180),
        "the group back to 0 instances",
        emu,
        group(&asg, "cp-asg")
            .await
            .is_some_and(|g| g.desired_capacity() == Some(0) && g.instances().is_empty())
    );
}

/// A Spot interruption (the control API's fault) drains the instance: the service's tasks come
/// back on another instance before the old ones stop, with no failed request through the ALB in
/// a bounded load loop; two minutes later the instance is terminated and the group replaces it.
#[tokio::test]
async fn spot_interruption_drains_and_the_group_replaces_the_instance() {
    use aws_sdk_autoscaling::types::{
        InstancesDistribution, LaunchTemplate, LaunchTemplateOverrides, MixedInstancesPolicy,
    };
    use aws_sdk_ecs::types::{LoadBalancer, PortMapping};
    use aws_sdk_elasticloadbalancingv2::types::{
        Action, ActionTypeEnum, ProtocolEnum, TargetGroupAttribute,
    };
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::Arc;
    ensure_image();
    let emu = Emulator::start_with(&["--time-scale", "30"]);
    let (ec2, ecs, asg, elb) = (emu.ec2(), emu.ecs(), emu.autoscaling(), emu.elbv2());
    ecs.create_cluster()
        .cluster_name("spot")
        .send()
        .await
        .expect("CreateCluster");
    let lt = template(&ec2, "spot", "spot").await;
    asg.create_auto_scaling_group()
        .auto_scaling_group_name("spot-asg")
        .min_size(2)
        .max_size(3)
        .desired_capacity(2)
        .mixed_instances_policy(
            MixedInstancesPolicy::builder()
                .launch_template(
                    LaunchTemplate::builder()
                        .launch_template_specification(
                            LaunchTemplateSpecification::builder()
                                .launch_template_id(&lt)
                                .build(),
                        )
                        .overrides(
                            LaunchTemplateOverrides::builder()
                                .instance_type("m5.large")
                                .build(),
                        )
                        .build(),
                )
                .instances_distribution(
                    InstancesDistribution::builder()
                        .on_demand_base_capacity(0)
                        .on_demand_percentage_above_base_capacity(0)
                        .build(),
                )
                .build(),
        )
        .availability_zones("us-east-1a")
        .availability_zones("us-east-1b")
        .send()
        .await
        .expect("CreateAutoScalingGroup");
    wait_until!(
        Duration::from_secs(10),
        "two container instances",
        emu,
        ecs.list_container_instances()
            .cluster("spot")
            .send()
            .await
            .expect("ListContainerInstances")
            .container_instance_arns()
            .len()
            == 2
    );
    let vpc = ec2.describe_vpcs().send().await.expect("vpcs").vpcs()[0]
        .vpc_id()
        .expect("vpc")
        .to_string();
    let tg = elb
        .create_target_group()
        .name("spot-tg")
        .protocol(ProtocolEnum::Http)
        .port(80)
        .vpc_id(vpc)
        .health_check_interval_seconds(6)
        .health_check_timeout_seconds(2)
        .healthy_threshold_count(2)
        .send()
        .await
        .expect("CreateTargetGroup")
        .target_groups()[0]
        .target_group_arn()
        .expect("arn")
        .to_string();
    elb.modify_target_group_attributes()
        .target_group_arn(&tg)
        .attributes(
            TargetGroupAttribute::builder()
                .key("deregistration_delay.timeout_seconds")
                .value("10")
                .build(),
        )
        .send()
        .await
        .expect("attributes");
    let subnets = default_subnets(&ec2).await;
    let lb = elb
        .create_load_balancer()
        .name("spot-lb")
        .set_subnets(Some(subnets[..2].to_vec()))
        .send()
        .await
        .expect("CreateLoadBalancer");
    let lb_arn = lb.load_balancers()[0]
        .load_balancer_arn()
        .expect("lb")
        .to_string();
    let dns = lb.load_balancers()[0].dns_name().expect("dns").to_string();
    elb.create_listener()
        .load_balancer_arn(&lb_arn)
        .protocol(ProtocolEnum::Http)
        .port(80)
        .default_actions(
            Action::builder()
                .r#type(ActionTypeEnum::Forward)
                .target_group_arn(&tg)
                .build(),
        )
        .send()
        .await
        .expect("CreateListener");
    ecs.register_task_definition()
        .family("web")
        .container_definitions(
            ContainerDefinition::builder()
                .name("web")
                .image(IMAGE)
                .memory(64)
                .port_mappings(
                    PortMapping::builder()
                        .container_port(8080)
                        .host_port(0)
                        .build(),
                )
                .set_entry_point(Some(vec!["sh".into(), "-c".into()]))
                .set_command(Some(vec![
                    "echo ok > /index.html && exec httpd -f -p 8080 -h /".into(),
                ]))
                .build(),
        )
        .send()
        .await
        .expect("RegisterTaskDefinition");
    ecs.create_service()
        .cluster("spot")
        .service_name("web")
        .task_definition("web")
        .desired_count(2)
        .load_balancers(
            LoadBalancer::builder()
                .target_group_arn(&tg)
                .container_name("web")
                .container_port(8080)
                .build(),
        )
        .send()
        .await
        .expect("CreateService");
    let healthy_targets = || async {
        elb.describe_target_health()
            .target_group_arn(&tg)
            .send()
            .await
            .expect("DescribeTargetHealth")
            .target_health_descriptions()
            .iter()
            .filter(|d| {
                d.target_health()
                    .and_then(|h| h.state())
                    .map(|s| s.as_str())
                    == Some("healthy")
            })
            .filter_map(|d| d.target().and_then(|t| t.id()).map(str::to_string))
            .collect::<Vec<String>>()
    };
    wait_until!(
        Duration::from_secs(90),
        "two healthy targets",
        emu,
        healthy_targets().await.len() == 2
    );

    // A bounded load loop through the ALB (the main port routes by Host).
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let port = emu.port();
    let load = {
        let (stop, ok, failed, dns) = (stop.clone(), ok.clone(), failed.clone(), dns.clone());
        std::thread::spawn(move || {
            let started = Instant::now();
            let mut failures = Vec::new();
            while !stop.load(Ordering::Relaxed) && started.elapsed() < Duration::from_secs(180) {
                let status = alb_get(port, &dns);
                if status == 200 {
                    ok.fetch_add(1, Ordering::Relaxed);
                } else {
                    failed.fetch_add(1, Ordering::Relaxed);
                    failures.push(status);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            failures
        })
    };

    // Interrupt the instance of one task.
    let tasks = ecs
        .list_tasks()
        .cluster("spot")
        .send()
        .await
        .expect("ListTasks")
        .task_arns()
        .to_vec();
    let described = ecs
        .describe_tasks()
        .cluster("spot")
        .set_tasks(Some(tasks.clone()))
        .send()
        .await
        .expect("DescribeTasks");
    let ci = described.tasks()[0]
        .container_instance_arn()
        .expect("instance")
        .to_string();
    let victim = ecs
        .describe_container_instances()
        .cluster("spot")
        .container_instances(&ci)
        .send()
        .await
        .expect("DescribeContainerInstances")
        .container_instances()[0]
        .ec2_instance_id()
        .expect("ec2 id")
        .to_string();
    let body = format!("{{\"instanceId\": \"{victim}\"}}");
    let r = sdk_tests::http(
        port,
        "POST",
        "/_emulator/faults/spot-interruption",
        &[("content-type", "application/json")],
        body.as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let status = ecs
        .describe_container_instances()
        .cluster("spot")
        .container_instances(&ci)
        .send()
        .await
        .expect("DescribeContainerInstances")
        .container_instances()[0]
        .status()
        .map(str::to_string);
    assert_eq!(status.as_deref(), Some("DRAINING"));
    // An On-Demand instance is refused.
    let other = ec2
        .run_instances()
        .image_id(ecs_ami(&ec2).await)
        .instance_type(aws_sdk_ec2::types::InstanceType::T3Micro)
        .min_count(1)
        .max_count(1)
        .send()
        .await
        .expect("RunInstances");
    let od = other.instances()[0].instance_id().expect("id");
    let r = sdk_tests::http(
        port,
        "POST",
        "/_emulator/faults/spot-interruption",
        &[],
        format!("{{\"instanceId\": \"{od}\"}}").as_bytes(),
    );
    assert_eq!(r.status, 400);

    // The tasks leave the draining instance; the instance is terminated after two minutes and
    // the group replaces it.
    let on_victim = || async {
        let arns = ecs
            .list_tasks()
            .cluster("spot")
            .send()
            .await
            .expect("ListTasks")
            .task_arns()
            .to_vec();
        let ts = ecs
            .describe_tasks()
            .cluster("spot")
            .set_tasks(Some(arns))
            .send()
            .await
            .expect("DescribeTasks");
        let running: Vec<_> = ts
            .tasks()
            .iter()
            .filter(|t| t.last_status() == Some("RUNNING"))
            .cloned()
            .collect();
        (
            running.len(),
            running
                .iter()
                .filter(|t| t.container_instance_arn() == Some(ci.as_str()))
                .count(),
        )
    };
    wait_until!(
        Duration::from_secs(90),
        "two running tasks off the interrupted instance",
        emu,
        on_victim().await == (2, 0)
    );
    wait_until!(
        Duration::from_secs(90),
        "the interrupted instance replaced",
        emu,
        group(&asg, "spot-asg").await.is_some_and(|g| {
            g.instances().len() == 2
                && g.instances().iter().all(|i| {
                    i.instance_id() != Some(victim.as_str())
                        && i.lifecycle_state() == Some(&LifecycleState::InService)
                })
        })
    );
    let state = ec2
        .describe_instances()
        .instance_ids(&victim)
        .send()
        .await
        .expect("DescribeInstances")
        .reservations()[0]
        .instances()[0]
        .state_reason()
        .and_then(|r| r.code())
        .map(str::to_string);
    assert_eq!(state.as_deref(), Some("Server.SpotInstanceTermination"));
    wait_until!(
        Duration::from_secs(60),
        "two healthy targets again",
        emu,
        healthy_targets().await.len() == 2
    );
    stop.store(true, Ordering::Relaxed);
    let failures = load.join().expect("load loop");
    let (ok, failed) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    assert!(ok > 50, "{ok} requests answered");
    assert_eq!(failed, 0, "failed requests through the ALB: {failures:?}");
}

/// GET /index.html through the load balancer whose DNS name is `host` (the main port routes by
/// Host); the HTTP status, 0 when no answer came within 10 s.
fn alb_get(port: u16, host: &str) -> u16 {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return 0;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let req = format!("GET /index.html HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return 0;
    }
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    String::from_utf8_lossy(&raw)
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// FARGATE_SPOT: a service whose strategy puts its base on FARGATE and the rest on FARGATE_SPOT
/// runs real containers on both; a Spot interruption (the control API's fault) stops a
/// FARGATE_SPOT task with stopCode SpotInterruption and ECS's reason, and the service replaces
/// it with a new FARGATE_SPOT task. An On-Demand Fargate task cannot be interrupted.
#[tokio::test]
async fn fargate_spot_tasks_are_interrupted_and_replaced() {
    use aws_sdk_ecs::types::{
        AwsVpcConfiguration, CapacityProviderStrategyItem, Compatibility, NetworkConfiguration,
        NetworkMode, TaskStopCode,
    };
    ensure_image();
    let emu = Emulator::start_with(&["--time-scale", "30"]);
    let ecs = emu.ecs();
    ecs.create_cluster()
        .cluster_name("fgs")
        .capacity_providers("FARGATE")
        .capacity_providers("FARGATE_SPOT")
        .send()
        .await
        .expect("CreateCluster");
    let subnets = default_subnets(&emu.ec2()).await;
    ecs.register_task_definition()
        .family("fgs")
        .requires_compatibilities(Compatibility::Fargate)
        .network_mode(NetworkMode::Awsvpc)
        .cpu("256")
        .memory("512")
        .container_definitions(
            ContainerDefinition::builder()
                .name("app")
                .image("ecs-emulator-test/busybox:latest")
                .command("sleep")
                .command("3600")
                .stop_timeout(2)
                .build(),
        )
        .send()
        .await
        .expect("RegisterTaskDefinition");
    let item = |name: &str, base: i32, weight: i32| {
        CapacityProviderStrategyItem::builder()
            .capacity_provider(name)
            .base(base)
            .weight(weight)
            .build()
            .expect("strategy item")
    };
    ecs.create_service()
        .cluster("fgs")
        .service_name("spot")
        .task_definition("fgs")
        .desired_count(3)
        .capacity_provider_strategy(item("FARGATE", 1, 0))
        .capacity_provider_strategy(item("FARGATE_SPOT", 0, 1))
        .network_configuration(
            NetworkConfiguration::builder()
                .awsvpc_configuration(
                    AwsVpcConfiguration::builder()
                        .set_subnets(Some(subnets.clone()))
                        .build()
                        .expect("awsvpc"),
                )
                .build(),
        )
        .send()
        .await
        .expect("CreateService");
    // (provider, task ARN, Docker id) of the service's running tasks.
    let running = || async {
        let arns = ecs
            .list_tasks()
            .cluster("fgs")
            .service_name("spot")
            .send()
            .await
            .expect("ListTasks")
            .task_arns()
            .to_vec();
        if arns.is_empty() {
            return Vec::new();
        }
        let ts = ecs
            .describe_tasks()
            .cluster("fgs")
            .set_tasks(Some(arns))
            .send()
            .await
            .expect("DescribeTasks");
        ts.tasks()
            .iter()
            .filter(|t| t.last_status() == Some("RUNNING") && t.desired_status() == Some("RUNNING"))
            .map(|t| {
                (
                    t.capacity_provider_name().unwrap_or_default().to_string(),
                    t.task_arn().unwrap_or_default().to_string(),
                    t.containers()
                        .first()
                        .and_then(|c| c.runtime_id())
                        .unwrap_or_default()
                        .to_string(),
                )
            })
            .collect::<Vec<_>>()
    };
    let spread = |tasks: &[(String, String, String)], p: &str| {
        tasks.iter().filter(|(name, _, _)| name == p).count()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let tasks = loop {
        let t = running().await;
        if t.len() == 3 {
            break t;
        }
        assert!(Instant::now() < deadline, "three running tasks: {t:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(
        spread(&tasks, "FARGATE"),
        1,
        "the base on FARGATE: {tasks:?}"
    );
    assert_eq!(
        spread(&tasks, "FARGATE_SPOT"),
        2,
        "the rest on FARGATE_SPOT: {tasks:?}"
    );
    assert!(
        tasks.iter().all(|(_, _, id)| !id.is_empty()),
        "real containers: {tasks:?}"
    );
    let port = emu.port();
    let fault = |arn: &str| {
        sdk_tests::http(
            port,
            "POST",
            "/_emulator/faults/spot-interruption",
            &[],
            format!("{{\"taskArn\": \"{arn}\"}}").as_bytes(),
        )
    };
    let (_, on_demand, _) = tasks
        .iter()
        .find(|(p, _, _)| p == "FARGATE")
        .expect("on-demand");
    assert_eq!(
        fault(on_demand).status,
        400,
        "an On-Demand Fargate task is not interruptible"
    );
    let (_, victim, container) = tasks
        .iter()
        .find(|(p, _, _)| p == "FARGATE_SPOT")
        .cloned()
        .expect("a spot task");
    let r = fault(&victim);
    assert_eq!(r.status, 200, "{}", r.text());
    let deadline = Instant::now() + Duration::from_secs(60);
    let stopped = loop {
        let t = ecs
            .describe_tasks()
            .cluster("fgs")
            .tasks(&victim)
            .send()
            .await
            .expect("DescribeTasks")
            .tasks()[0]
            .clone();
        if t.last_status() == Some("STOPPED") {
            break t;
        }
        assert!(
            Instant::now() < deadline,
            "the interrupted task to stop: {t:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(stopped.stop_code(), Some(&TaskStopCode::SpotInterruption));
    assert_eq!(
        stopped.stopped_reason(),
        Some("Your Spot Task was interrupted.")
    );
    let inspect = std::process::Command::new("docker")
        .args(["inspect", "-f", "{{.State.Running}}", &container])
        .output()
        .expect("docker inspect");
    assert_ne!(
        String::from_utf8_lossy(&inspect.stdout).trim(),
        "true",
        "the container stopped"
    );
    // The service replaces it on FARGATE_SPOT.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let t = running().await;
        if t.len() == 3 && !t.iter().any(|(_, a, _)| *a == victim) {
            assert_eq!(spread(&t, "FARGATE_SPOT"), 2, "{t:?}");
            break;
        }
        assert!(Instant::now() < deadline, "a replacement: {t:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Target tracking on ASGAverageCPUUtilization from the instances' containers: a CPU-burning
/// task (a quarter of a core, hard limit) on the group's one t2.micro (1024 CPU units) puts the
/// group's AWS/EC2 CPUUtilization at about 25 %, over the 10 % target; AlarmHigh fires after its
/// three minutes and the group grows to its maximum of 2, the new instance joining the cluster.
#[tokio::test]
async fn asg_average_cpu_target_tracking_scales_the_group_out() {
    use aws_sdk_autoscaling::types::{
        MetricType, PredefinedMetricSpecification, TargetTrackingConfiguration,
    };
    use aws_sdk_cloudwatch::types::{Dimension, Statistic};
    ensure_image();
    let started = Instant::now();
    let emu = Emulator::start_with(&["--time-scale", "60"]);
    let (ec2, ecs, asg, cw) = (emu.ec2(), emu.ecs(), emu.autoscaling(), emu.cloudwatch());
    ecs.create_cluster()
        .cluster_name("cpu-asg")
        .send()
        .await
        .expect("CreateCluster");
    let user_data = "#!/bin/bash\necho ECS_CLUSTER=cpu-asg >> /etc/ecs/ecs.config";
    let lt = ec2
        .create_launch_template()
        .launch_template_name("cpu-asg")
        .launch_template_data(
            RequestLaunchTemplateData::builder()
                .image_id(ecs_ami(&ec2).await)
                .instance_type(aws_sdk_ec2::types::InstanceType::T2Micro)
                .user_data(base64(user_data.as_bytes()))
                .build(),
        )
        .send()
        .await
        .expect("CreateLaunchTemplate")
        .launch_template()
        .and_then(|t| t.launch_template_id())
        .expect("id")
        .to_string();
    let subnets = default_subnets(&ec2).await;
    asg.create_auto_scaling_group()
        .auto_scaling_group_name("cpu-asg")
        .min_size(1)
        .max_size(2)
        .desired_capacity(1)
        .launch_template(
            LaunchTemplateSpecification::builder()
                .launch_template_id(&lt)
                .build(),
        )
        .vpc_zone_identifier(subnets[0].clone())
        .send()
        .await
        .expect("CreateAutoScalingGroup");
    let instances = || async {
        ecs.list_container_instances()
            .cluster("cpu-asg")
            .status(aws_sdk_ecs::types::ContainerInstanceStatus::Active)
            .send()
            .await
            .expect("ListContainerInstances")
            .container_instance_arns()
            .len()
    };
    wait_until!(
        Duration::from_secs(60),
        "the first instance to join",
        emu,
        instances().await == 1
    );
    ecs.register_task_definition()
        .family("burn")
        .cpu("256")
        .container_definitions(
            ContainerDefinition::builder()
                .name("app")
                .image(IMAGE)
                .memory(32)
                .command("sh")
                .command("-c")
                .command("while :; do :; done")
                .stop_timeout(2)
                .build(),
        )
        .send()
        .await
        .expect("RegisterTaskDefinition");
    let task = ecs
        .run_task()
        .cluster("cpu-asg")
        .task_definition("burn")
        .send()
        .await
        .expect("RunTask");
    assert_eq!(task.tasks().len(), 1, "{:?}", task.failures());
    let policy = asg
        .put_scaling_policy()
        .auto_scaling_group_name("cpu-asg")
        .policy_name("cpu10")
        .policy_type("TargetTrackingScaling")
        .target_tracking_configuration(
            TargetTrackingConfiguration::builder()
                .predefined_metric_specification(
                    PredefinedMetricSpecification::builder()
                        .predefined_metric_type(MetricType::AsgAverageCpuUtilization)
                        .build(),
                )
                .target_value(10.0)
                .disable_scale_in(true)
                .build(),
        )
        .send()
        .await
        .expect("PutScalingPolicy");
    let high = policy.alarms()[0]
        .alarm_name()
        .unwrap_or_default()
        .to_string();
    assert!(
        high.starts_with("TargetTracking-cpu-asg-AlarmHigh-"),
        "{high}"
    );
    wait_until!(
        Duration::from_secs(90),
        "the group to grow to 2 in service and both instances to join",
        emu,
        states(&asg, "cpu-asg").await == vec![LifecycleState::InService; 2]
            && instances().await == 2
    );
    let now = emu.raw("GET", "/_emulator/state", &[], b"").json()["now"]
        .as_f64()
        .expect("now");
    let stats = cw
        .get_metric_statistics()
        .namespace("AWS/EC2")
        .metric_name("CPUUtilization")
        .dimensions(
            Dimension::builder()
                .name("AutoScalingGroupName")
                .value("cpu-asg")
                .build(),
        )
        .start_time(aws_sdk_cloudwatch::primitives::DateTime::from_secs(
            now as i64 - 3600,
        ))
        .end_time(aws_sdk_cloudwatch::primitives::DateTime::from_secs(
            now as i64 + 60,
        ))
        .period(60)
        .statistics(Statistic::Maximum)
        .send()
        .await
        .expect("GetMetricStatistics");
    let peak = stats
        .datapoints()
        .iter()
        .filter_map(|d| d.maximum())
        .fold(0.0, f64::max);
    assert!(
        (15.0..40.0).contains(&peak),
        "about 25 %: {:?}",
        stats.datapoints()
    );
    let acts = asg
        .describe_scaling_activities()
        .auto_scaling_group_name("cpu-asg")
        .send()
        .await
        .expect("DescribeScalingActivities");
    assert!(
        acts.activities().iter().any(|a| a.cause().is_some_and(|c| c.contains(&format!(
            "a monitor alarm {high} in state ALARM triggered policy cpu10 changing the desired capacity from 1 to 2."
        )))),
        "{:?}",
        acts.activities()
    );
    assert!(
        started.elapsed() < Duration::from_secs(120),
        "{:?}",
        started.elapsed()
    );
}
