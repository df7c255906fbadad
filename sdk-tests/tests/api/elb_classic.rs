//! Classic Elastic Load Balancing through aws-sdk-elasticloadbalancing: the API's errors and
//! shapes, and the data plane with a real instance target: an ECS container instance running a
//! bridge-mode busybox httpd task on a static host port, registered by its EC2 instance id.

use aws_sdk_ecs::types::{NetworkMode, PortMapping};
use aws_sdk_elasticloadbalancing::error::ProvideErrorMetadata;
use aws_sdk_elasticloadbalancing::types::{HealthCheck, Instance, Listener};
use aws_sdk_elasticloadbalancing::Client;
use sdk_tests::Emulator;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

/// Task containers removed when dropped (StopTask removes them too; this covers failures).
struct Containers(Vec<String>);

impl Drop for Containers {
    fn drop(&mut self) {
        for c in &self.0 {
            let _ = Command::new("docker").args(["rm", "-f", c]).output();
        }
    }
}

/// (status, body) of one GET on a fresh connection to 127.0.0.1:port with this Host.
fn get(port: u16, host: &str) -> (u16, String) {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return (0, String::new());
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
    let req = format!("GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    let _ = s.write_all(req.as_bytes());
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, body.trim().to_string())
}

async fn health(elb: &Client, lb: &str) -> Vec<(String, String, String)> {
    let out = elb
        .describe_instance_health()
        .load_balancer_name(lb)
        .send()
        .await
        .expect("DescribeInstanceHealth");
    out.instance_states()
        .iter()
        .map(|s| {
            (
                s.state().unwrap_or_default().to_string(),
                s.reason_code().unwrap_or_default().to_string(),
                s.description().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

async fn wait_health(elb: &Client, lb: &str, state: &str) -> Vec<(String, String, String)> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let h = health(elb, lb).await;
        if !h.is_empty() && h.iter().all(|(s, _, _)| s == state) {
            return h;
        }
        assert!(Instant::now() < deadline, "never {state}: {h:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn listener(protocol: &str, lb_port: i32, instance_port: i32) -> Listener {
    Listener::builder()
        .protocol(protocol)
        .load_balancer_port(lb_port)
        .instance_port(instance_port)
        .build()
        .expect("listener")
}

#[tokio::test]
async fn classic_api_errors_and_shapes() {
    let emu = Emulator::start();
    let elb = emu.elb();
    let err = elb
        .create_load_balancer()
        .load_balancer_name("web")
        .listeners(listener("HTTP", 80, 8080))
        .send()
        .await
        .expect_err("no zones or subnets");
    assert_eq!(err.code(), Some("ValidationError"), "{err:?}");
    let out = elb
        .create_load_balancer()
        .load_balancer_name("web")
        .availability_zones("us-east-1a")
        .listeners(listener("HTTP", 80, 8080))
        .send()
        .await
        .expect("CreateLoadBalancer");
    let dns = out.dns_name().unwrap_or_default().to_string();
    assert!(
        dns.starts_with("web-") && dns.ends_with(".us-east-1.elb.localhost"),
        "{dns}"
    );
    let err = elb
        .create_load_balancer()
        .load_balancer_name("web")
        .availability_zones("us-east-1a")
        .listeners(listener("HTTP", 80, 8080))
        .send()
        .await
        .expect_err("duplicate");
    assert_eq!(err.code(), Some("DuplicateLoadBalancerName"), "{err:?}");
    let d = elb
        .describe_load_balancers()
        .load_balancer_names("web")
        .send()
        .await
        .expect("DescribeLoadBalancers");
    let lb = &d.load_balancer_descriptions()[0];
    assert_eq!(lb.dns_name(), Some(dns.as_str()));
    let hc = lb.health_check().expect("health check");
    assert_eq!(hc.target(), "TCP:8080");
    assert_eq!(
        (
            hc.interval(),
            hc.timeout(),
            hc.unhealthy_threshold(),
            hc.healthy_threshold()
        ),
        (30, 5, 2, 10)
    );
    assert!(lb.created_time().is_some());
    assert_eq!(lb.availability_zones(), ["us-east-1a"]);
    let err = elb
        .describe_load_balancers()
        .load_balancer_names("nope")
        .send()
        .await
        .expect_err("missing");
    assert_eq!(err.code(), Some("LoadBalancerNotFound"), "{err:?}");
    let err = elb
        .register_instances_with_load_balancer()
        .load_balancer_name("web")
        .instances(
            Instance::builder()
                .instance_id("i-0123456789abcdef0")
                .build(),
        )
        .send()
        .await
        .expect_err("unknown instance");
    assert_eq!(err.code(), Some("InvalidInstance"), "{err:?}");
    let attrs = elb
        .describe_load_balancer_attributes()
        .load_balancer_name("web")
        .send()
        .await
        .expect("DescribeLoadBalancerAttributes");
    let a = attrs.load_balancer_attributes().expect("attributes");
    assert_eq!(a.connection_settings().map(|c| c.idle_timeout()), Some(60));
    // Deleting twice succeeds, as in AWS.
    for _ in 0..2 {
        elb.delete_load_balancer()
            .load_balancer_name("web")
            .send()
            .await
            .expect("DeleteLoadBalancer");
    }
}

#[tokio::test]
async fn classic_elb_proxies_to_an_ecs_instance() {
    crate::ecs_docker::ensure_image();
    // 20× time: a 5 s health-check interval passes in a quarter of a second.
    let emu = Emulator::start_with(&["--time-scale", "20"]);
    let ecs = emu.ecs();
    let elb = emu.elb();
    let main = emu.port();
    ecs.create_cluster()
        .cluster_name("classic")
        .send()
        .await
        .expect("CreateCluster");
    let ci = ecs
        .register_container_instance()
        .cluster("classic")
        .instance_identity_document(
            r#"{"instanceType":"m5.large","availabilityZone":"us-east-1a"}"#,
        )
        .send()
        .await
        .expect("RegisterContainerInstance");
    let instance_id = ci
        .container_instance()
        .and_then(|c| c.ec2_instance_id())
        .expect("ec2InstanceId")
        .to_string();
    let host_port = 19000 + (std::process::id() % 1000) as i32;
    ecs.register_task_definition()
        .family("classic-web")
        .network_mode(NetworkMode::Bridge)
        .container_definitions(
            crate::ecs_docker::container(
                "web",
                64,
                &[
                    "sh",
                    "-c",
                    "echo classic > /index.html && exec httpd -f -p 8080 -h /",
                ],
            )
            .port_mappings(
                PortMapping::builder()
                    .container_port(8080)
                    .host_port(host_port)
                    .build(),
            )
            .build(),
        )
        .send()
        .await
        .expect("RegisterTaskDefinition");
    let run = ecs
        .run_task()
        .cluster("classic")
        .task_definition("classic-web")
        .send()
        .await
        .expect("RunTask");
    assert!(run.failures().is_empty(), "{:?}", run.failures());
    let task_arn = run.tasks()[0].task_arn().expect("task").to_string();
    let task = crate::ecs_docker::wait_status(&ecs, "classic", &task_arn, "RUNNING").await;
    let _containers = Containers(
        task.containers()
            .iter()
            .filter_map(|c| c.runtime_id().map(str::to_string))
            .collect(),
    );

    let dns = elb
        .create_load_balancer()
        .load_balancer_name("classic")
        .availability_zones("us-east-1a")
        .listeners(listener("HTTP", 80, host_port))
        .listeners(listener(
            "TCP",
            19900 + (std::process::id() % 90) as i32,
            host_port,
        ))
        .send()
        .await
        .expect("CreateLoadBalancer")
        .dns_name()
        .unwrap_or_default()
        .to_string();
    elb.configure_health_check()
        .load_balancer_name("classic")
        .health_check(
            HealthCheck::builder()
                .target(format!("HTTP:{host_port}/"))
                .interval(5)
                .timeout(2)
                .unhealthy_threshold(2)
                .healthy_threshold(2)
                .build()
                .expect("health check"),
        )
        .send()
        .await
        .expect("ConfigureHealthCheck");
    let reg = elb
        .register_instances_with_load_balancer()
        .load_balancer_name("classic")
        .instances(Instance::builder().instance_id(&instance_id).build())
        .send()
        .await
        .expect("RegisterInstancesWithLoadBalancer");
    assert_eq!(reg.instances().len(), 1);
    let first = health(&elb, "classic").await;
    assert!(
        first[0].0 == "InService" || first[0].2 == "Instance registration is still in progress.",
        "{first:?}"
    );
    let h = wait_health(&elb, "classic", "InService").await;
    assert_eq!(h[0].1, "N/A");

    // Through the main port by Host, and through the TCP listener's own socket.
    for _ in 0..3 {
        assert_eq!(get(main, &dns), (200, "classic".to_string()));
    }
    let state = sdk_tests::http(main, "GET", "/_emulator/state", &[], b"").json();
    let listeners = state["loadBalancerListeners"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let tcp_port: u16 = listeners
        .iter()
        .find(|(k, _)| k.contains("loadbalancer/classic/listener/") && !k.ends_with("/80"))
        .and_then(|(_, v)| v.as_str())
        .and_then(|a| a.rsplit(':').next())
        .and_then(|p| p.parse().ok())
        .expect("the TCP listener's address");
    assert_eq!(get(tcp_port, "anything"), (200, "classic".to_string()));

    // The task stops: the instance fails its checks, goes OutOfService; the ELB answers 503.
    ecs.stop_task()
        .cluster("classic")
        .task(&task_arn)
        .send()
        .await
        .expect("StopTask");
    crate::ecs_docker::wait_status(&ecs, "classic", &task_arn, "STOPPED").await;
    let h = wait_health(&elb, "classic", "OutOfService").await;
    assert_eq!(h[0].1, "Instance");
    assert_eq!(
        h[0].2,
        "Instance has failed at least the UnhealthyThreshold number of health checks consecutively."
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, _) = get(main, &dns);
        if status == 503 {
            break;
        }
        assert!(Instant::now() < deadline, "still {status}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Deregistration and deletion.
    let out = elb
        .deregister_instances_from_load_balancer()
        .load_balancer_name("classic")
        .instances(Instance::builder().instance_id(&instance_id).build())
        .send()
        .await
        .expect("Deregister");
    assert!(out.instances().is_empty());
    elb.delete_load_balancer()
        .load_balancer_name("classic")
        .send()
        .await
        .expect("DeleteLoadBalancer");
}
