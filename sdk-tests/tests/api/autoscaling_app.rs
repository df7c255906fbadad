//! Service auto scaling end to end with real containers: the metrics publisher measures the
//! tasks' cgroups (AWS/ECS) and the ALB's counters (AWS/ApplicationELB), CloudWatch alarms
//! evaluate them on the emulator clock, Application Auto Scaling policies change the service's
//! desired count and the scheduler starts or stops real containers. `--time-scale 60` makes a
//! minute of emulator time one real second.

use crate::ecs_docker::{cluster_with_instance, container, ensure_image};
use aws_sdk_applicationautoscaling::types::{
    AdjustmentType, MetricAggregationType, MetricType, PolicyType, PredefinedMetricSpecification,
    ScalableDimension, ScalableTargetAction, ScalingActivity, ServiceNamespace, StepAdjustment,
    StepScalingPolicyConfiguration, TargetTrackingScalingPolicyConfiguration,
};
use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{
    ComparisonOperator, Dimension, MetricDatum, StateValue, Statistic,
};
use aws_sdk_ecs::types::Service;
use sdk_tests::Emulator;
use std::time::{Duration, Instant};

const SCALE: &str = "60";

/// Polls `$body` (an async block giving `Option<T>`) every 250 ms until it gives `Some`, for at
/// most `$secs` seconds of real time.
macro_rules! wait_until {
    ($secs:expr, $what:expr, $body:expr) => {{
        let deadline = Instant::now() + Duration::from_secs($secs);
        loop {
            if let Some(v) = $body.await {
                break v;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {}", $what);
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }};
}

/// The emulator's clock (epoch seconds), which runs `--time-scale` times faster than real time.
fn emulator_now(emu: &Emulator) -> f64 {
    emu.raw("GET", "/_emulator/state", &[], b"").json()["now"]
        .as_f64()
        .expect("now")
}

async fn service(emu: &Emulator, cluster: &str, name: &str) -> Service {
    let out = emu
        .ecs()
        .describe_services()
        .cluster(cluster)
        .services(name)
        .send()
        .await
        .expect("DescribeServices");
    out.services().first().cloned().expect("the service")
}

/// Waits until the service's desired count is `n` and `n` tasks run.
async fn wait_for_count(emu: &Emulator, cluster: &str, name: &str, n: i32, secs: u64) -> Service {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let s = service(emu, cluster, name).await;
        if s.desired_count() == n && s.running_count() == n && s.pending_count() == 0 {
            return s;
        }
        if Instant::now() >= deadline {
            let acts = activities(emu, cluster, name).await;
            panic!(
                "{name}: never {n} desired and running: desired {} running {} pending {}\n\
                 events {:?}\nactivities {acts:?}",
                s.desired_count(),
                s.running_count(),
                s.pending_count(),
                s.events()
                    .iter()
                    .take(5)
                    .filter_map(|e| e.message())
                    .collect::<Vec<_>>()
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn resource_id(cluster: &str, name: &str) -> String {
    format!("service/{cluster}/{name}")
}

async fn register_target(emu: &Emulator, cluster: &str, name: &str, min: i32, max: i32) {
    emu.appautoscaling()
        .register_scalable_target()
        .service_namespace(ServiceNamespace::Ecs)
        .resource_id(resource_id(cluster, name))
        .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
        .min_capacity(min)
        .max_capacity(max)
        .send()
        .await
        .expect("RegisterScalableTarget");
}

async fn activities(emu: &Emulator, cluster: &str, name: &str) -> Vec<ScalingActivity> {
    emu.appautoscaling()
        .describe_scaling_activities()
        .service_namespace(ServiceNamespace::Ecs)
        .resource_id(resource_id(cluster, name))
        .send()
        .await
        .expect("DescribeScalingActivities")
        .scaling_activities()
        .to_vec()
}

/// Successful "Setting desired count to N." activities, oldest first: (N, start, cause).
async fn desired_count_changes(
    emu: &Emulator,
    cluster: &str,
    name: &str,
) -> Vec<(i32, f64, String)> {
    let mut out: Vec<(i32, f64, String)> = activities(emu, cluster, name)
        .await
        .iter()
        .filter(|a| a.status_code().as_str() == "Successful")
        .filter_map(|a| {
            let n = a
                .description()
                .strip_prefix("Setting desired count to ")?
                .strip_suffix('.')?
                .parse()
                .ok()?;
            Some((n, a.start_time().as_secs_f64(), a.cause().to_string()))
        })
        .collect();
    out.sort_by(|a, b| a.1.total_cmp(&b.1));
    out
}

async fn alarm_state(emu: &Emulator, name: &str) -> Option<StateValue> {
    let out = emu
        .cloudwatch()
        .describe_alarms()
        .alarm_names(name)
        .send()
        .await
        .expect("DescribeAlarms");
    out.metric_alarms()
        .first()
        .and_then(|a| a.state_value().cloned())
}

/// Datapoints (timestamp, statistic) of a metric over the last hour of emulator time.
async fn datapoints(
    emu: &Emulator,
    namespace: &str,
    metric: &str,
    dims: &[(&str, &str)],
    stat: Statistic,
) -> Vec<(f64, f64)> {
    let now = emulator_now(emu);
    let mut q = emu
        .cloudwatch()
        .get_metric_statistics()
        .namespace(namespace)
        .metric_name(metric)
        .start_time(DateTime::from_secs(now as i64 - 3600))
        .end_time(DateTime::from_secs(now as i64 + 60))
        .period(60)
        .statistics(stat.clone());
    for (k, v) in dims {
        q = q.dimensions(Dimension::builder().name(*k).value(*v).build());
    }
    let out = q.send().await.expect("GetMetricStatistics");
    let mut points: Vec<(f64, f64)> = out
        .datapoints()
        .iter()
        .filter_map(|d| {
            let v = match stat {
                Statistic::Average => d.average(),
                Statistic::Maximum => d.maximum(),
                Statistic::Sum => d.sum(),
                Statistic::SampleCount => d.sample_count(),
                _ => d.minimum(),
            }?;
            Some((d.timestamp()?.as_secs_f64(), v))
        })
        .collect();
    points.sort_by(|a, b| a.0.total_cmp(&b.0));
    points
}

async fn task_definition(emu: &Emulator, family: &str, cpu: &str, command: &str) {
    emu.ecs()
        .register_task_definition()
        .family(family)
        .cpu(cpu)
        .container_definitions(container("app", 32, &["sh", "-c", command]).build())
        .send()
        .await
        .expect("RegisterTaskDefinition");
}

async fn create_service(emu: &Emulator, cluster: &str, name: &str, def: &str, count: i32) {
    emu.ecs()
        .create_service()
        .cluster(cluster)
        .service_name(name)
        .task_definition(def)
        .desired_count(count)
        .send()
        .await
        .expect("CreateService");
}

#[tokio::test]
async fn cpu_target_tracking_scales_out_on_burning_tasks_and_back_in() {
    ensure_image();
    let started = Instant::now();
    let emu = Emulator::start_with(&["--time-scale", SCALE]);
    let (c, s) = ("cpu", "burn");
    cluster_with_instance(&emu.ecs(), c, "m5.2xlarge", "us-east-1a").await;
    // Task-level cpu is a hard limit on EC2 (an eighth of a core here): a busy loop uses its
    // whole reservation, 100 %, and four of them take half a core.
    task_definition(&emu, "burn", "128", "while :; do :; done").await;
    task_definition(&emu, "burn", "128", "exec sleep 3600").await;
    create_service(&emu, c, s, "burn:1", 1).await;
    register_target(&emu, c, s, 1, 4).await;
    let policy = emu
        .appautoscaling()
        .put_scaling_policy()
        .policy_name("cpu50")
        .service_namespace(ServiceNamespace::Ecs)
        .resource_id(resource_id(c, s))
        .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
        .policy_type(PolicyType::TargetTrackingScaling)
        .target_tracking_scaling_policy_configuration(
            TargetTrackingScalingPolicyConfiguration::builder()
                .target_value(50.0)
                .predefined_metric_specification(
                    PredefinedMetricSpecification::builder()
                        .predefined_metric_type(MetricType::EcsServiceAverageCpuUtilization)
                        .build()
                        .expect("spec"),
                )
                .scale_out_cooldown(300)
                .scale_in_cooldown(300)
                .build()
                .expect("configuration"),
        )
        .send()
        .await
        .expect("PutScalingPolicy");
    let alarm = |kind: &str| {
        policy
            .alarms()
            .iter()
            .map(|a| a.alarm_name())
            .find(|n| n.contains(kind))
            .unwrap_or_else(|| panic!("the {kind} alarm: {policy:?}"))
            .to_string()
    };
    let (high, low) = (alarm("-AlarmHigh-"), alarm("-AlarmLow-"));

    // The publisher's measurement of the burning task appears as AWS/ECS CPUUtilization.
    let dims = [("ClusterName", c), ("ServiceName", s)];
    let busy = wait_until!(30, "a CPUUtilization datapoint above 50 %", async {
        let p = datapoints(&emu, "AWS/ECS", "CPUUtilization", &dims, Statistic::Average).await;
        p.last().filter(|(_, v)| *v > 50.0).copied()
    });
    assert!(
        busy.1 <= 130.0,
        "a task capped at its 128 units uses at most about 100 % of them: {busy:?}"
    );
    let units = datapoints(
        &emu,
        "AWS/ECS",
        "CPUUtilization",
        &dims,
        Statistic::SampleCount,
    )
    .await;
    assert!(units.iter().all(|(_, n)| *n >= 1.0), "{units:?}");
    let cluster = datapoints(
        &emu,
        "AWS/ECS",
        "CPUReservation",
        &[("ClusterName", c)],
        Statistic::Average,
    )
    .await;
    // One or more 128-unit tasks on an 8192-unit instance.
    assert!(
        cluster
            .last()
            .is_some_and(|(_, v)| *v >= 128.0 / 8192.0 * 100.0 - 1e-9),
        "{cluster:?}"
    );
    let listed = emu
        .cloudwatch()
        .list_metrics()
        .namespace("AWS/ECS")
        .send()
        .await
        .expect("ListMetrics");
    let names: Vec<&str> = listed
        .metrics()
        .iter()
        .filter_map(|m| m.metric_name())
        .collect();
    for n in [
        "CPUUtilization",
        "MemoryUtilization",
        "CPUReservation",
        "MemoryReservation",
    ] {
        assert!(names.contains(&n), "{n} in {names:?}");
    }

    wait_until!(30, "AlarmHigh in ALARM", async {
        (alarm_state(&emu, &high).await == Some(StateValue::Alarm)).then_some(())
    });
    // Out: 1 → 2, and once the scale-out cooldown is over (the new task burns too) → 4.
    let at_four = wait_for_count(&emu, c, s, 4, 60).await;
    assert_eq!(at_four.desired_count(), 4);
    let tasks = emu
        .ecs()
        .list_tasks()
        .cluster(c)
        .service_name(s)
        .send()
        .await
        .expect("ListTasks");
    assert_eq!(tasks.task_arns().len(), 4, "{tasks:?}");
    let outs = desired_count_changes(&emu, c, s).await;
    assert!(outs.len() >= 2, "{outs:?}");
    // From one task at about 100 % of its units and a target of 50 %: 2 (3 when the minute
    // measured a little over 100 %).
    assert!(matches!(outs[0].0, 2 | 3), "{outs:?}");
    assert_eq!(outs.last().map(|o| o.0), Some(4), "{outs:?}");
    // Within the scale-out cooldown the capacity the first scale-out added counts as there:
    // from 1 task at about 100 % (at most ~130 %) no more than 3 can be asked for; 4 needs a
    // decision made from 2 or more tasks, after the cooldown.
    let first = outs[0].1;
    for (n, at, _) in &outs {
        if *n == 4 {
            assert!(
                at - first >= 300.0 - 1.0,
                "the scale-out to 4 waits for the 300 s scale-out cooldown: {outs:?}"
            );
        }
    }
    for (_, _, cause) in &outs {
        assert_eq!(
            cause,
            &format!("monitor alarm {high} in state ALARM triggered policy cpu50")
        );
    }

    // Stop the load: a deployment to a task definition that sleeps; AlarmLow's 15 periods pass
    // and the service scales in to its minimum.
    emu.ecs()
        .update_service()
        .cluster(c)
        .service(s)
        .task_definition("burn:2")
        .send()
        .await
        .expect("UpdateService");
    wait_until!(60, "AlarmLow in ALARM", async {
        (alarm_state(&emu, &low).await == Some(StateValue::Alarm)).then_some(())
    });
    wait_for_count(&emu, c, s, 1, 60).await;
    let changes = desired_count_changes(&emu, c, s).await;
    let (n, at, cause) = changes.last().cloned().expect("a scale-in");
    assert_eq!(n, 1, "{changes:?}");
    assert_eq!(
        cause,
        format!("monitor alarm {low} in state ALARM triggered policy cpu50")
    );
    let last_out = outs.last().map(|o| o.1).unwrap_or_default();
    assert!(
        at - last_out >= 15.0 * 60.0,
        "AlarmLow needs 15 minutes: {changes:?}"
    );
    let after = datapoints(&emu, "AWS/ECS", "CPUUtilization", &dims, Statistic::Average).await;
    assert!(
        after.last().is_some_and(|(_, v)| *v < 45.0),
        "sleeping tasks are idle: {after:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(120),
        "under two minutes of wall time: {:?}",
        started.elapsed()
    );
}

async fn step_policy(
    emu: &Emulator,
    c: &str,
    s: &str,
    name: &str,
    kind: AdjustmentType,
    steps: Vec<StepAdjustment>,
) -> String {
    let out = emu
        .appautoscaling()
        .put_scaling_policy()
        .policy_name(name)
        .service_namespace(ServiceNamespace::Ecs)
        .resource_id(resource_id(c, s))
        .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
        .policy_type(PolicyType::StepScaling)
        .step_scaling_policy_configuration(
            StepScalingPolicyConfiguration::builder()
                .adjustment_type(kind)
                .metric_aggregation_type(MetricAggregationType::Maximum)
                .cooldown(3600)
                .set_step_adjustments(Some(steps))
                .build(),
        )
        .send()
        .await
        .expect("PutScalingPolicy");
    out.policy_arn().to_string()
}

fn step(lower: Option<f64>, upper: Option<f64>, adjustment: i32) -> StepAdjustment {
    StepAdjustment::builder()
        .set_metric_interval_lower_bound(lower)
        .set_metric_interval_upper_bound(upper)
        .scaling_adjustment(adjustment)
        .build()
        .expect("step")
}

async fn depth_alarm(
    emu: &Emulator,
    name: &str,
    op: ComparisonOperator,
    threshold: f64,
    arn: &str,
) {
    emu.cloudwatch()
        .put_metric_alarm()
        .alarm_name(name)
        .namespace("App/Queue")
        .metric_name("Depth")
        .statistic(Statistic::Maximum)
        .period(60)
        .evaluation_periods(1)
        .threshold(threshold)
        .comparison_operator(op)
        .alarm_actions(arn)
        .send()
        .await
        .expect("PutMetricAlarm");
}

async fn put_depth(emu: &Emulator, value: f64) {
    emu.cloudwatch()
        .put_metric_data()
        .namespace("App/Queue")
        .metric_data(
            MetricDatum::builder()
                .metric_name("Depth")
                .value(value)
                .build(),
        )
        .send()
        .await
        .expect("PutMetricData");
}

#[tokio::test]
async fn step_scaling_on_a_custom_metric_changes_capacity_by_its_steps() {
    ensure_image();
    let emu = Emulator::start_with(&["--time-scale", SCALE]);
    let (c, s) = ("steps", "worker");
    cluster_with_instance(&emu.ecs(), c, "m5.2xlarge", "us-east-1a").await;
    task_definition(&emu, "worker", "128", "exec sleep 3600").await;
    create_service(&emu, c, s, "worker:1", 1).await;
    wait_for_count(&emu, c, s, 1, 30).await;
    register_target(&emu, c, s, 1, 10).await;
    // Depth above 10: +1 up to 10 over the threshold, +3 beyond.
    let out = step_policy(
        &emu,
        c,
        s,
        "depth-out",
        AdjustmentType::ChangeInCapacity,
        vec![step(Some(0.0), Some(10.0), 1), step(Some(10.0), None, 3)],
    )
    .await;
    depth_alarm(
        &emu,
        "depth-high",
        ComparisonOperator::GreaterThanThreshold,
        10.0,
        &out,
    )
    .await;
    // 25 is 15 over the threshold: the second step, +3.
    wait_until!(30, "4 desired", async {
        put_depth(&emu, 25.0).await;
        (service(&emu, c, s).await.desired_count() == 4).then_some(())
    });
    wait_for_count(&emu, c, s, 4, 30).await;

    // Depth below 5: -50 % of 4.
    let in_arn = step_policy(
        &emu,
        c,
        s,
        "depth-in",
        AdjustmentType::PercentChangeInCapacity,
        vec![step(None, Some(0.0), -50)],
    )
    .await;
    depth_alarm(
        &emu,
        "depth-low",
        ComparisonOperator::LessThanThreshold,
        5.0,
        &in_arn,
    )
    .await;
    wait_until!(30, "2 desired", async {
        put_depth(&emu, 1.0).await;
        (service(&emu, c, s).await.desired_count() == 2).then_some(())
    });
    wait_for_count(&emu, c, s, 2, 30).await;
    let changes = desired_count_changes(&emu, c, s).await;
    let counts: Vec<i32> = changes.iter().map(|c| c.0).collect();
    assert_eq!(counts, vec![4, 2], "{changes:?}");
    assert_eq!(
        changes[0].2,
        "monitor alarm depth-high in state ALARM triggered policy depth-out"
    );
    assert_eq!(
        changes[1].2,
        "monitor alarm depth-low in state ALARM triggered policy depth-in"
    );
}

#[tokio::test]
async fn a_scheduled_action_raises_the_minimum_at_its_time() {
    ensure_image();
    let emu = Emulator::start_with(&["--time-scale", SCALE]);
    let (c, s) = ("sched", "web");
    cluster_with_instance(&emu.ecs(), c, "m5.2xlarge", "us-east-1a").await;
    task_definition(&emu, "web", "128", "exec sleep 3600").await;
    create_service(&emu, c, s, "web:1", 1).await;
    wait_for_count(&emu, c, s, 1, 30).await;
    register_target(&emu, c, s, 1, 5).await;
    // Five minutes of emulator time from now (five real seconds).
    let at = (emulator_now(&emu) as i64 / 60 + 5) * 60;
    let when = DateTime::from_secs(at)
        .fmt(aws_sdk_cloudwatch::primitives::DateTimeFormat::DateTime)
        .expect("format");
    let schedule = format!("at({})", when.trim_end_matches('Z'));
    emu.appautoscaling()
        .put_scheduled_action()
        .service_namespace(ServiceNamespace::Ecs)
        .resource_id(resource_id(c, s))
        .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
        .scheduled_action_name("morning")
        .schedule(&schedule)
        .scalable_target_action(
            ScalableTargetAction::builder()
                .min_capacity(3)
                .max_capacity(5)
                .build(),
        )
        .send()
        .await
        .expect("PutScheduledAction");
    let raised_at = wait_until!(30, "the minimum raised to 3", async {
        let before = emulator_now(&emu);
        let targets = emu
            .appautoscaling()
            .describe_scalable_targets()
            .service_namespace(ServiceNamespace::Ecs)
            .resource_ids(resource_id(c, s))
            .send()
            .await
            .expect("DescribeScalableTargets");
        let min = targets.scalable_targets()[0].min_capacity();
        if min != 3 {
            assert!(
                before < at as f64 + 60.0,
                "the action is late: min {min} at {before}, scheduled {at}"
            );
            assert_eq!(min, 1, "nothing else changes the minimum");
        }
        (min == 3).then_some(before)
    });
    assert!(
        raised_at + 5.0 >= at as f64,
        "not before its time: seen at {raised_at}, scheduled {at}"
    );
    // The desired count follows the new minimum, with real tasks.
    wait_for_count(&emu, c, s, 3, 30).await;
    let acts = activities(&emu, c, s).await;
    assert!(
        acts.iter().any(|a| {
            a.description() == "Setting min capacity to 3 and max capacity to 5"
                && a.cause() == "scheduled action name morning was triggered"
        }),
        "{acts:?}"
    );
    let actions = emu
        .appautoscaling()
        .describe_scheduled_actions()
        .service_namespace(ServiceNamespace::Ecs)
        .send()
        .await
        .expect("DescribeScheduledActions");
    assert_eq!(actions.scheduled_actions()[0].schedule(), schedule.as_str());
}

/// The default subnets of two AZs and their VPC.
async fn default_subnets(emu: &Emulator) -> (Vec<String>, String) {
    let (mut subnets, vpc) = crate::elbv2::subnets_and_vpc(emu).await;
    subnets.truncate(2);
    (subnets, vpc)
}

/// One HTTP/1.1 GET (new connection each time); the status code, 0 when it failed.
fn get_status(port: u16, host: &str) -> u16 {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return 0;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let req = format!("GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return 0;
    }
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    String::from_utf8_lossy(&raw)
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn alb_request_count_per_target_scales_out_a_service_behind_an_alb() {
    use aws_sdk_ecs::types::{LoadBalancer as EcsLoadBalancer, NetworkMode, PortMapping};
    use aws_sdk_elasticloadbalancingv2::types::{
        Action, ActionTypeEnum, ProtocolEnum, TargetTypeEnum,
    };
    ensure_image();
    let emu = Emulator::start_with(&["--time-scale", SCALE]);
    let (c, s) = ("albc", "web");
    cluster_with_instance(&emu.ecs(), c, "m5.2xlarge", "us-east-1a").await;
    let elb = emu.elbv2();
    let (subnets, vpc) = default_subnets(&emu).await;
    let lb = elb
        .create_load_balancer()
        .name("front")
        .set_subnets(Some(subnets))
        .send()
        .await
        .expect("CreateLoadBalancer");
    let lb = lb.load_balancers()[0].clone();
    let lb_arn = lb.load_balancer_arn().unwrap_or_default().to_string();
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
        .send()
        .await
        .expect("CreateTargetGroup");
    let tg_arn = tg.target_groups()[0]
        .target_group_arn()
        .unwrap_or_default()
        .to_string();
    // Deregistered tasks drain for 5 s, not 300.
    elb.modify_target_group_attributes()
        .target_group_arn(&tg_arn)
        .attributes(
            aws_sdk_elasticloadbalancingv2::types::TargetGroupAttribute::builder()
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
        .cpu("128")
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
        .cluster(c)
        .service_name(s)
        .task_definition("web:1")
        .desired_count(1)
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
    wait_for_count(&emu, c, s, 1, 30).await;
    register_target(&emu, c, s, 1, 3).await;
    // ResourceLabel: app/<lb name>/<lb id>/targetgroup/<tg name>/<tg id>.
    let lb_dim = lb_arn
        .split_once(":loadbalancer/")
        .map(|(_, d)| d.to_string())
        .expect("LB dimension");
    let tg_dim = tg_arn.rsplit(':').next().unwrap_or_default().to_string();
    let policy = emu
        .appautoscaling()
        .put_scaling_policy()
        .policy_name("requests")
        .service_namespace(ServiceNamespace::Ecs)
        .resource_id(resource_id(c, s))
        .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
        .policy_type(PolicyType::TargetTrackingScaling)
        .target_tracking_scaling_policy_configuration(
            TargetTrackingScalingPolicyConfiguration::builder()
                .target_value(20.0)
                .predefined_metric_specification(
                    PredefinedMetricSpecification::builder()
                        .predefined_metric_type(MetricType::AlbRequestCountPerTarget)
                        .resource_label(format!("{lb_dim}/{tg_dim}"))
                        .build()
                        .expect("spec"),
                )
                .disable_scale_in(true)
                .build()
                .expect("configuration"),
        )
        .send()
        .await
        .expect("PutScalingPolicy");
    let high = policy
        .alarms()
        .iter()
        .map(|a| a.alarm_name())
        .find(|n| n.contains("-AlarmHigh-"))
        .expect("AlarmHigh")
        .to_string();

    let port: u16 = wait_until!(30, "the listener bound", async {
        let state = emu.raw("GET", "/_emulator/state", &[], b"").json();
        state["loadBalancerListeners"][&listener_arn]
            .as_str()
            .and_then(|a| a.rsplit(':').next())
            .and_then(|p| p.parse().ok())
    });
    let dns = lb.dns_name().unwrap_or_default().to_string();
    wait_until!(30, "the first target answering through the ALB", async {
        (get_status(port, &dns) == 200).then_some(())
    });

    // A bounded load loop: about 50 requests a second (50 per emulated minute) on one target,
    // over the target of 20 per target, for at most 60 s.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = {
        let stop = stop.clone();
        let dns = dns.clone();
        std::thread::spawn(move || {
            let (mut ok, deadline) = (0u64, Instant::now() + Duration::from_secs(60));
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && Instant::now() < deadline {
                if get_status(port, &dns) == 200 {
                    ok += 1;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            ok
        })
    };
    wait_until!(40, "AlarmHigh in ALARM", async {
        (alarm_state(&emu, &high).await == Some(StateValue::Alarm)).then_some(())
    });
    let scaled = wait_until!(30, "more than one task", async {
        let sv = service(&emu, c, s).await;
        (sv.desired_count() > 1).then_some(sv)
    });
    let n = scaled.desired_count();
    wait_for_count(&emu, c, s, n, 30).await;
    // The new tasks are registered and take traffic.
    wait_until!(30, "every task a healthy target", async {
        let h = elb
            .describe_target_health()
            .target_group_arn(&tg_arn)
            .send()
            .await
            .expect("DescribeTargetHealth");
        let healthy = h
            .target_health_descriptions()
            .iter()
            .filter(|d| {
                d.target_health()
                    .and_then(|t| t.state())
                    .map(|s| s.as_str())
                    == Some("healthy")
            })
            .count();
        (healthy == n as usize).then_some(())
    });
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let ok = load.join().expect("load thread");
    assert!(ok > 50, "the load loop got answers: {ok}");

    let changes = desired_count_changes(&emu, c, s).await;
    assert!(
        changes.first().is_some_and(|(_, _, cause)| cause
            == &format!("monitor alarm {high} in state ALARM triggered policy requests")),
        "{changes:?}"
    );
    let per_target = datapoints(
        &emu,
        "AWS/ApplicationELB",
        "RequestCountPerTarget",
        &[("TargetGroup", &tg_dim)],
        Statistic::Sum,
    )
    .await;
    assert!(per_target.iter().any(|(_, v)| *v > 20.0), "{per_target:?}");
    let lb_dims = [("LoadBalancer", lb_dim.as_str())];
    let pair = [
        ("LoadBalancer", lb_dim.as_str()),
        ("TargetGroup", tg_dim.as_str()),
    ];
    // Every answered request is counted once its minute is published (a second later); the
    // ALB's own health checks are not requests.
    let sum = wait_until!(10, "RequestCount to count every answered request", async {
        let total = datapoints(
            &emu,
            "AWS/ApplicationELB",
            "RequestCount",
            &lb_dims,
            Statistic::Sum,
        )
        .await;
        let sum: f64 = total.iter().map(|(_, v)| v).sum();
        (sum >= ok as f64).then_some(sum)
    });
    assert!(
        sum <= ok as f64 + 30.0,
        "{sum} requests counted, {ok} sent and answered (and the probes before the load)"
    );
    let codes = datapoints(
        &emu,
        "AWS/ApplicationELB",
        "HTTPCode_Target_2XX_Count",
        &pair,
        Statistic::Sum,
    )
    .await;
    assert!(!codes.is_empty(), "2XX counts per target group");
    let healthy = datapoints(
        &emu,
        "AWS/ApplicationELB",
        "HealthyHostCount",
        &pair,
        Statistic::Maximum,
    )
    .await;
    assert!(healthy.iter().any(|(_, v)| *v >= 1.0), "{healthy:?}");
    let latency = datapoints(
        &emu,
        "AWS/ApplicationELB",
        "TargetResponseTime",
        &lb_dims,
        Statistic::Average,
    )
    .await;
    assert!(
        latency.iter().all(|(_, v)| *v > 0.0 && *v < 5.0),
        "{latency:?}"
    );
    let active = datapoints(
        &emu,
        "AWS/ApplicationELB",
        "ActiveConnectionCount",
        &lb_dims,
        Statistic::Sum,
    )
    .await;
    assert!(active.iter().any(|(_, v)| *v >= 1.0), "{active:?}");
}

/// sdk-tests/python/app_autoscaling.py: boto3's paginators over alarms, alarm history, scalable
/// targets, policies, activities and scheduled actions; `aws cloudwatch wait alarm-exists` on an
/// alarm created while it waits; `aws application-autoscaling describe-scaling-activities`.
#[test]
fn boto3_paginators_waiters_and_the_aws_cli() {
    let emu = Emulator::start();
    sdk_tests::run_python(&emu, "app_autoscaling.py", "APP AUTOSCALING OK");
}

/// The service's running tasks: (task definition ARN, Docker id of its container).
async fn running_tasks(emu: &Emulator, cluster: &str, name: &str) -> Vec<(String, String)> {
    let ecs = emu.ecs();
    let arns = ecs
        .list_tasks()
        .cluster(cluster)
        .service_name(name)
        .send()
        .await
        .expect("ListTasks")
        .task_arns()
        .to_vec();
    if arns.is_empty() {
        return Vec::new();
    }
    let out = ecs
        .describe_tasks()
        .cluster(cluster)
        .set_tasks(Some(arns))
        .send()
        .await
        .expect("DescribeTasks");
    out.tasks()
        .iter()
        .filter(|t| t.last_status() == Some("RUNNING") && t.desired_status() == Some("RUNNING"))
        .map(|t| {
            (
                t.task_definition_arn().unwrap_or_default().to_string(),
                t.containers()
                    .first()
                    .and_then(|c| c.runtime_id())
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect()
}

/// ECS deployment alarms: a deployment to CPU-burning tasks sends the service's AWS/ECS
/// CPUUtilization (measured from the real containers) over an alarm named in
/// deploymentConfiguration.alarms; the deployment fails while it bakes and is rolled back to
/// the previous task definition, whose tasks run again.
#[tokio::test]
async fn a_deployment_alarm_in_alarm_rolls_the_deployment_back() {
    use aws_sdk_ecs::types::{DeploymentAlarms, DeploymentConfiguration, DeploymentRolloutState};
    ensure_image();
    let started = Instant::now();
    let emu = Emulator::start_with(&["--time-scale", SCALE]);
    let (c, s) = ("dep", "web");
    cluster_with_instance(&emu.ecs(), c, "m5.2xlarge", "us-east-1a").await;
    task_definition(&emu, "web", "128", "exec sleep 3600").await;
    task_definition(&emu, "web", "128", "while :; do :; done").await;
    emu.cloudwatch()
        .put_metric_alarm()
        .alarm_name("web-cpu-high")
        .namespace("AWS/ECS")
        .metric_name("CPUUtilization")
        .dimensions(Dimension::builder().name("ClusterName").value(c).build())
        .dimensions(Dimension::builder().name("ServiceName").value(s).build())
        .statistic(Statistic::Average)
        .period(60)
        .evaluation_periods(1)
        .threshold(50.0)
        .comparison_operator(ComparisonOperator::GreaterThanThreshold)
        .send()
        .await
        .expect("PutMetricAlarm");
    let conf = |bake: i32| {
        DeploymentConfiguration::builder()
            .maximum_percent(200)
            .minimum_healthy_percent(100)
            .alarms(
                DeploymentAlarms::builder()
                    .alarm_names("web-cpu-high")
                    .enable(true)
                    .rollback(true)
                    .build()
                    .expect("alarms"),
            )
            .bake_time_in_minutes(bake)
            .build()
    };
    emu.ecs()
        .create_service()
        .cluster(c)
        .service_name(s)
        .task_definition("web:1")
        .desired_count(2)
        .deployment_configuration(conf(1))
        .send()
        .await
        .expect("CreateService");
    let first = wait_until!(
        30,
        "the first deployment to complete after its bake time",
        async {
            let svc = service(&emu, c, s).await;
            let d = svc.deployments().first().cloned()?;
            (d.rollout_state() == Some(&DeploymentRolloutState::Completed)).then_some(svc)
        }
    );
    let dc = first
        .deployment_configuration()
        .expect("deploymentConfiguration");
    let alarms = dc.alarms().expect("alarms");
    assert_eq!(alarms.alarm_names(), ["web-cpu-high"]);
    assert!(alarms.enable() && alarms.rollback());
    assert_eq!(dc.bake_time_in_minutes(), Some(1));
    let calm = first
        .task_definition()
        .expect("task definition")
        .to_string();
    assert_eq!(running_tasks(&emu, c, s).await.len(), 2);

    // Deploy the CPU burners, with a 10-minute bake: the alarm fires while it bakes.
    emu.ecs()
        .update_service()
        .cluster(c)
        .service(s)
        .task_definition("web:2")
        .deployment_configuration(conf(10))
        .send()
        .await
        .expect("UpdateService");
    let burning = wait_until!(30, "the burning tasks to run", async {
        let t = running_tasks(&emu, c, s).await;
        let n = t.iter().filter(|(d, _)| d.ends_with("web:2")).count();
        (n == 2).then_some(t)
    });
    let (_, burner) = burning
        .iter()
        .find(|(d, _)| d.ends_with("web:2"))
        .expect("a burner");
    assert!(!burner.is_empty(), "the burner has a Docker container");
    let failed = wait_until!(60, "the deployment to fail on the alarm", async {
        let svc = service(&emu, c, s).await;
        svc.deployments()
            .iter()
            .find(|d| {
                d.task_definition().is_some_and(|t| t.ends_with("web:2"))
                    && d.rollout_state() == Some(&DeploymentRolloutState::Failed)
            })
            .cloned()
    });
    assert_eq!(
        alarm_state(&emu, "web-cpu-high").await,
        Some(StateValue::Alarm)
    );
    let reason = failed.rollout_state_reason().unwrap_or_default();
    assert!(reason.contains("web-cpu-high"), "{reason}");
    let cpu = datapoints(
        &emu,
        "AWS/ECS",
        "CPUUtilization",
        &[("ClusterName", c), ("ServiceName", s)],
        Statistic::Maximum,
    )
    .await;
    assert!(cpu.iter().any(|(_, v)| *v > 50.0), "CPU over 50 %: {cpu:?}");

    // The rollback: a new PRIMARY deployment of the first task definition; the burners stop and
    // two calm tasks run again, and the rollback completes after its bake time.
    let back = wait_until!(60, "the rollback to complete with calm tasks", async {
        let svc = service(&emu, c, s).await;
        let p = svc
            .deployments()
            .iter()
            .find(|d| d.status() == Some("PRIMARY"))?
            .clone();
        let tasks = running_tasks(&emu, c, s).await;
        let calm_only = tasks.len() == 2 && tasks.iter().all(|(d, _)| *d == calm);
        (calm_only
            && p.task_definition() == Some(calm.as_str())
            && p.rollout_state() == Some(&DeploymentRolloutState::Completed)
            && svc.deployments().len() == 1)
            .then_some(svc)
    });
    assert_eq!(back.task_definition(), Some(calm.as_str()));
    let events: Vec<&str> = back.events().iter().filter_map(|e| e.message()).collect();
    assert!(
        events
            .iter()
            .any(|e| e.contains("deployment failed: alarm(s) web-cpu-high")),
        "{events:?}"
    );
    assert!(
        events
            .iter()
            .any(|e| e.contains("rolling back to deployment")),
        "{events:?}"
    );
    // The burner's container is gone (stopped by the rollback).
    let gone = wait_until!(30, "the burner's container to stop", async {
        let out = std::process::Command::new("docker")
            .args(["inspect", "-f", "{{.State.Running}}", burner.as_str()])
            .output()
            .expect("docker inspect");
        let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
        (text != "true").then_some(text)
    });
    assert_ne!(gone, "true");
    assert!(
        started.elapsed() < Duration::from_secs(120),
        "{:?}",
        started.elapsed()
    );
}

/// ECSServiceAverageMemoryUtilization target tracking on real containers: each task fills half
/// of its 64 MiB with a tmpfs file, the service's AWS/ECS MemoryUtilization (measured from the
/// containers' cgroups) goes over the 20 % target, AlarmHigh fires and the service scales out to
/// ⌈1 × 50 / 20⌉ = 3 tasks, which run.
#[tokio::test]
async fn memory_target_tracking_scales_out_on_memory_the_tasks_use() {
    ensure_image();
    let started = Instant::now();
    let emu = Emulator::start_with(&["--time-scale", SCALE]);
    let (c, s) = ("mem", "fill");
    cluster_with_instance(&emu.ecs(), c, "m5.2xlarge", "us-east-1a").await;
    emu.ecs()
        .register_task_definition()
        .family("fill")
        .container_definitions(
            container(
                "app",
                64,
                &[
                    "sh",
                    "-c",
                    "dd if=/dev/zero of=/dev/shm/fill bs=1048576 count=32 && exec sleep 3600",
                ],
            )
            .build(),
        )
        .send()
        .await
        .expect("RegisterTaskDefinition");
    create_service(&emu, c, s, "fill", 1).await;
    register_target(&emu, c, s, 1, 3).await;
    let policy = emu
        .appautoscaling()
        .put_scaling_policy()
        .policy_name("mem20")
        .service_namespace(ServiceNamespace::Ecs)
        .resource_id(resource_id(c, s))
        .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
        .policy_type(PolicyType::TargetTrackingScaling)
        .target_tracking_scaling_policy_configuration(
            TargetTrackingScalingPolicyConfiguration::builder()
                .target_value(20.0)
                .predefined_metric_specification(
                    PredefinedMetricSpecification::builder()
                        .predefined_metric_type(MetricType::EcsServiceAverageMemoryUtilization)
                        .build()
                        .expect("spec"),
                )
                .disable_scale_in(true)
                .build()
                .expect("configuration"),
        )
        .send()
        .await
        .expect("PutScalingPolicy");
    assert_eq!(
        policy.alarms().len(),
        1,
        "scale-in disabled: AlarmHigh only"
    );
    let high = policy.alarms()[0].alarm_name().to_string();
    let alarms = emu
        .cloudwatch()
        .describe_alarms()
        .alarm_names(&high)
        .send()
        .await
        .expect("DescribeAlarms");
    let a = &alarms.metric_alarms()[0];
    assert_eq!(a.namespace(), Some("AWS/ECS"));
    assert_eq!(a.metric_name(), Some("MemoryUtilization"));
    assert_eq!(a.threshold(), Some(20.0));
    let used = wait_until!(60, "MemoryUtilization of the service over 20 %", async {
        let points = datapoints(
            &emu,
            "AWS/ECS",
            "MemoryUtilization",
            &[("ClusterName", c), ("ServiceName", s)],
            Statistic::Average,
        )
        .await;
        points.iter().map(|(_, v)| *v).find(|v| *v > 20.0)
    });
    // 32 MiB of 64 (plus the shell's own pages).
    assert!((45.0..80.0).contains(&used), "{used}");
    let svc = wait_for_count(&emu, c, s, 3, 60).await;
    assert_eq!(svc.desired_count(), 3);
    let changes = desired_count_changes(&emu, c, s).await;
    assert!(
        changes
            .iter()
            .any(|(n, _, cause)| *n == 3 && cause.contains(&high) && cause.contains("mem20")),
        "{changes:?}"
    );
    assert_eq!(running_tasks(&emu, c, s).await.len(), 3);
    assert!(
        started.elapsed() < Duration::from_secs(120),
        "{:?}",
        started.elapsed()
    );
}
