//! Elastic Load Balancing v2 through aws-sdk-elasticloadbalancingv2: the API's errors, and the
//! ALB data plane with real targets (busybox httpd containers published on 127.0.0.1) reached
//! through the main port by Host header and through the listeners' own sockets.

use aws_sdk_elasticloadbalancingv2::client::Waiters;
use aws_sdk_elasticloadbalancingv2::error::ProvideErrorMetadata;
use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, FixedResponseActionConfig, ForwardActionConfig, LoadBalancerStateEnum,
    ProtocolEnum, RedirectActionConfig, RedirectActionStatusCodeEnum, RuleCondition,
    TargetDescription, TargetGroupAttribute, TargetGroupStickinessConfig, TargetGroupTuple,
    TargetHealthStateEnum, TargetTypeEnum,
};
use aws_sdk_elasticloadbalancingv2::Client;
use sdk_tests::{eventually, Emulator};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

const IMAGE: &str = "ecs-emulator-test/busybox:latest";

/// The default subnets (one per AZ, in AZ order) and their VPC.
pub async fn subnets_and_vpc(emu: &Emulator) -> (Vec<String>, String) {
    let subnets = emu
        .ec2()
        .describe_subnets()
        .send()
        .await
        .expect("DescribeSubnets");
    let mut list: Vec<(String, String, String)> = subnets
        .subnets()
        .iter()
        .filter(|s| s.default_for_az() == Some(true))
        .map(|s| {
            (
                s.availability_zone().unwrap_or_default().to_string(),
                s.subnet_id().unwrap_or_default().to_string(),
                s.vpc_id().unwrap_or_default().to_string(),
            )
        })
        .collect();
    list.sort();
    let vpc = list[0].2.clone();
    (list.into_iter().map(|(_, s, _)| s).collect(), vpc)
}

#[tokio::test]
async fn api_errors_and_shapes() {
    api_errors_and_shapes_on(&Emulator::start()).await
}

/// The body of `api_errors_and_shapes`, against any emulator (also the compose-started one).
pub async fn api_errors_and_shapes_on(emu: &Emulator) {
    let elb = emu.elbv2();
    let (subnets, vpc) = subnets_and_vpc(emu).await;
    let err = elb
        .create_load_balancer()
        .name("one-zone")
        .subnets(&subnets[0])
        .send()
        .await
        .expect_err("an ALB needs two zones");
    assert_eq!(err.code(), Some("ValidationError"), "{err:?}");
    let err = elb
        .create_load_balancer()
        .name("bad-subnet")
        .subnets("subnet-00000000")
        .subnets(&subnets[0])
        .send()
        .await
        .expect_err("unknown subnet");
    assert_eq!(err.code(), Some("SubnetNotFound"), "{err:?}");
    let lb = elb
        .create_load_balancer()
        .name("api")
        .subnets(&subnets[0])
        .subnets(&subnets[1])
        .send()
        .await
        .expect("CreateLoadBalancer");
    let lb = &lb.load_balancers()[0];
    let dns = lb.dns_name().unwrap_or_default();
    assert!(
        dns.starts_with("api-") && dns.ends_with(".us-east-1.elb.localhost"),
        "{dns}"
    );
    assert_eq!(lb.canonical_hosted_zone_id(), Some("Z35SXDOTRQ7X7K"));
    assert_eq!(lb.availability_zones().len(), 2);
    assert_eq!(lb.vpc_id(), Some(vpc.as_str()));
    let lb_arn = lb.load_balancer_arn().unwrap_or_default().to_string();
    let err = elb
        .create_load_balancer()
        .name("api")
        .subnets(&subnets[1])
        .subnets(&subnets[2])
        .send()
        .await
        .expect_err("same name, other subnets");
    assert_eq!(err.code(), Some("DuplicateLoadBalancerName"), "{err:?}");
    elb.wait_until_load_balancer_available()
        .load_balancer_arns(&lb_arn)
        .wait(Duration::from_secs(60))
        .await
        .expect("load_balancer_available");
    let d = elb
        .describe_load_balancers()
        .names("api")
        .send()
        .await
        .expect("DescribeLoadBalancers");
    assert_eq!(
        d.load_balancers()[0].state().and_then(|s| s.code()),
        Some(&LoadBalancerStateEnum::Active)
    );

    let err = elb
        .create_target_group()
        .name("tg")
        .protocol(ProtocolEnum::Http)
        .port(80)
        .vpc_id(&vpc)
        .health_check_interval_seconds(301)
        .send()
        .await
        .expect_err("interval out of range");
    assert_eq!(err.code(), Some("ValidationError"), "{err:?}");
    let tg = elb
        .create_target_group()
        .name("tg")
        .protocol(ProtocolEnum::Http)
        .port(80)
        .vpc_id(&vpc)
        .send()
        .await
        .expect("CreateTargetGroup");
    let tg = &tg.target_groups()[0];
    assert_eq!(tg.health_check_timeout_seconds(), Some(5));
    assert_eq!(tg.healthy_threshold_count(), Some(5));
    assert_eq!(tg.unhealthy_threshold_count(), Some(2));
    assert_eq!(tg.matcher().and_then(|m| m.http_code()), Some("200"));
    assert_eq!(tg.target_type(), Some(&TargetTypeEnum::Instance));
    let tg_arn = tg.target_group_arn().unwrap_or_default().to_string();
    let err = elb
        .create_target_group()
        .name("tg")
        .protocol(ProtocolEnum::Http)
        .port(81)
        .vpc_id(&vpc)
        .send()
        .await
        .expect_err("same name, other port");
    assert_eq!(err.code(), Some("DuplicateTargetGroupName"), "{err:?}");
    let err = elb
        .describe_target_groups()
        .target_group_arns(tg_arn.replace("targetgroup/tg/", "targetgroup/nope/"))
        .send()
        .await
        .expect_err("unknown target group");
    assert_eq!(err.code(), Some("TargetGroupNotFound"), "{err:?}");

    let listener = elb
        .create_listener()
        .load_balancer_arn(&lb_arn)
        .protocol(ProtocolEnum::Http)
        .port(80)
        .default_actions(forward(&tg_arn))
        .send()
        .await
        .expect("CreateListener");
    let listener_arn = listener.listeners()[0]
        .listener_arn()
        .unwrap_or_default()
        .to_string();
    let rule = |p: i32| {
        elb.create_rule()
            .listener_arn(&listener_arn)
            .priority(p)
            .conditions(path_condition("/a/*"))
            .actions(fixed(200, "a"))
    };
    rule(10).send().await.expect("CreateRule");
    let err = rule(10).send().await.expect_err("same priority");
    assert_eq!(err.code(), Some("PriorityInUse"), "{err:?}");
    let err = elb
        .describe_rules()
        .rule_arns(listener_arn.replace("listener/", "listener-rule/") + "/0000000000000000")
        .send()
        .await
        .expect_err("unknown rule");
    assert_eq!(err.code(), Some("RuleNotFound"), "{err:?}");
    let err = elb
        .describe_listeners()
        .listener_arns(format!("{listener_arn}0"))
        .send()
        .await
        .expect_err("unknown listener");
    assert_eq!(err.code(), Some("ListenerNotFound"), "{err:?}");
    let err = elb
        .register_targets()
        .target_group_arn(&tg_arn)
        .targets(TargetDescription::builder().id("10.0.0.1").build())
        .send()
        .await
        .expect_err("an IP in an instance group");
    assert_eq!(err.code(), Some("InvalidTarget"), "{err:?}");
    let h = elb
        .describe_target_health()
        .target_group_arn(&tg_arn)
        .targets(
            TargetDescription::builder()
                .id("i-0123456789abcdef0")
                .build(),
        )
        .send()
        .await
        .expect("DescribeTargetHealth");
    let th = h.target_health_descriptions()[0]
        .target_health()
        .expect("health");
    assert_eq!(th.state(), Some(&TargetHealthStateEnum::Unused));
    assert_eq!(
        th.reason().map(|r| r.as_str()),
        Some("Target.NotRegistered")
    );
    let err = elb
        .delete_target_group()
        .target_group_arn(&tg_arn)
        .send()
        .await
        .expect_err("in use");
    assert_eq!(err.code(), Some("ResourceInUse"), "{err:?}");
    let err = elb
        .modify_target_group_attributes()
        .target_group_arn(&tg_arn)
        .attributes(attr("deregistration_delay.timeout_seconds", "4000"))
        .send()
        .await
        .expect_err("delay out of range");
    assert_eq!(err.code(), Some("ValidationError"), "{err:?}");
    let limits = elb.describe_account_limits().send().await.expect("limits");
    assert!(!limits.limits().is_empty());
    let policies = elb.describe_ssl_policies().send().await.expect("policies");
    assert!(policies
        .ssl_policies()
        .iter()
        .any(|p| p.name() == Some("ELBSecurityPolicy-2016-08")));
    elb.add_tags()
        .resource_arns(&lb_arn)
        .tags(
            aws_sdk_elasticloadbalancingv2::types::Tag::builder()
                .key("team")
                .value("web")
                .build(),
        )
        .send()
        .await
        .expect("AddTags");
    let tags = elb
        .describe_tags()
        .resource_arns(&lb_arn)
        .send()
        .await
        .expect("DescribeTags");
    assert_eq!(tags.tag_descriptions()[0].tags()[0].value(), Some("web"));
    elb.delete_load_balancer()
        .load_balancer_arn(&lb_arn)
        .send()
        .await
        .expect("DeleteLoadBalancer");
    let err = elb
        .describe_load_balancers()
        .load_balancer_arns(&lb_arn)
        .send()
        .await
        .expect_err("deleted");
    assert_eq!(err.code(), Some("LoadBalancerNotFound"), "{err:?}");
    elb.delete_target_group()
        .target_group_arn(&tg_arn)
        .send()
        .await
        .expect("DeleteTargetGroup once unused");
}

fn forward(tg: &str) -> Action {
    Action::builder()
        .r#type(ActionTypeEnum::Forward)
        .target_group_arn(tg)
        .build()
}

fn fixed(status: u16, body: &str) -> Action {
    Action::builder()
        .r#type(ActionTypeEnum::FixedResponse)
        .fixed_response_config(
            FixedResponseActionConfig::builder()
                .status_code(status.to_string())
                .message_body(body)
                .content_type("text/plain")
                .build(),
        )
        .build()
}

fn path_condition(p: &str) -> RuleCondition {
    RuleCondition::builder()
        .field("path-pattern")
        .values(p)
        .build()
}

fn attr(k: &str, v: &str) -> TargetGroupAttribute {
    TargetGroupAttribute::builder().key(k).value(v).build()
}

/// Busybox httpd containers; removed when dropped.
struct Containers(Vec<String>);

impl Drop for Containers {
    fn drop(&mut self) {
        for c in &self.0 {
            let _ = Command::new("docker").args(["rm", "-f", c]).output();
        }
    }
}

/// Starts an httpd serving `name` at /, "api-<name>" at /api/ and a CGI script echoing the
/// forwarded headers at /cgi-bin/h; returns (container, published port).
fn httpd(name: &str) -> (String, u16) {
    let script = format!(
        "mkdir -p /www/api /www/cgi-bin && echo {name} > /www/index.html && echo api-{name} > /www/api/index.html && \
         printf '#!/bin/sh\\necho Content-Type: text/plain\\necho\\necho xff=$HTTP_X_FORWARDED_FOR proto=$HTTP_X_FORWARDED_PROTO port=$HTTP_X_FORWARDED_PORT trace=$HTTP_X_AMZN_TRACE_ID host=$HTTP_HOST\\n' > /www/cgi-bin/h && \
         chmod +x /www/cgi-bin/h && exec httpd -f -p 8080 -h /www"
    );
    let out = Command::new("docker")
        .args([
            "run",
            "-d",
            "--rm",
            "-p",
            "127.0.0.1::8080",
            IMAGE,
            "sh",
            "-c",
            &script,
        ])
        .output()
        .expect("docker run");
    assert!(
        out.status.success(),
        "docker run: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let port = Command::new("docker")
        .args(["port", &id, "8080/tcp"])
        .output()
        .expect("docker port");
    let port: u16 = String::from_utf8_lossy(&port.stdout)
        .lines()
        .next()
        .and_then(|l| l.rsplit(':').next())
        .and_then(|p| p.trim().parse().ok())
        .expect("published port");
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    (id, port)
}

struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn set_cookies(&self) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k == "set-cookie")
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// One request on a fresh connection to 127.0.0.1:port with this Host.
fn get(port: u16, host: &str, path: &str, extra: &[(&str, &str)]) -> Answer {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (k, v) in extra {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).expect("send");
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Answer {
        status,
        headers,
        body: body.trim().to_string(),
    }
}

async fn health_of(elb: &Client, tg: &str) -> Vec<(String, String, String)> {
    let h = elb
        .describe_target_health()
        .target_group_arn(tg)
        .send()
        .await
        .expect("DescribeTargetHealth");
    h.target_health_descriptions()
        .iter()
        .map(|d| {
            let th = d.target_health();
            (
                th.and_then(|t| t.state())
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_default(),
                th.and_then(|t| t.reason())
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_default(),
                th.and_then(|t| t.description())
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect()
}

async fn wait_for_state(elb: &Client, tg: &str, state: &str) -> Vec<(String, String, String)> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let h = health_of(elb, tg).await;
        if !h.is_empty() && h.iter().all(|(s, _, _)| s == state) {
            return h;
        }
        assert!(
            Instant::now() < deadline,
            "targets never became {state}: {h:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn alb_proxies_to_real_targets() {
    crate::ecs_docker::ensure_image();
    let (a_id, a_port) = httpd("A");
    let (b_id, b_port) = httpd("B");
    let _containers = Containers(vec![a_id, b_id]);
    // 20× time: a 5 s health-check interval passes in a quarter of a second.
    let emu = Emulator::start_with(&["--time-scale", "20"]);
    let elb = emu.elbv2();
    let main = emu.port();
    let (subnets, vpc) = subnets_and_vpc(&emu).await;
    let lb = elb
        .create_load_balancer()
        .name("web")
        .subnets(&subnets[0])
        .subnets(&subnets[1])
        .send()
        .await
        .expect("CreateLoadBalancer");
    let lb_arn = lb.load_balancers()[0]
        .load_balancer_arn()
        .unwrap_or_default()
        .to_string();
    let dns = lb.load_balancers()[0]
        .dns_name()
        .unwrap_or_default()
        .to_string();
    let group = |name: &'static str| {
        elb.create_target_group()
            .name(name)
            .protocol(ProtocolEnum::Http)
            .port(8080)
            .vpc_id(&vpc)
            .target_type(TargetTypeEnum::Ip)
            .health_check_interval_seconds(5)
            .health_check_timeout_seconds(2)
            .healthy_threshold_count(2)
            .unhealthy_threshold_count(2)
    };
    let mut tgs = HashMap::new();
    for name in ["ga", "gb", "gempty", "gbad"] {
        let mut g = group(name);
        if name == "gbad" {
            g = g.health_check_path("/missing");
        }
        let out = g.send().await.expect("CreateTargetGroup");
        tgs.insert(
            name,
            out.target_groups()[0]
                .target_group_arn()
                .unwrap_or_default()
                .to_string(),
        );
    }
    let target = |port: u16| {
        TargetDescription::builder()
            .id("127.0.0.1")
            .port(port as i32)
            .build()
    };
    let register = |tg: &str, port: u16| {
        elb.register_targets()
            .target_group_arn(tg)
            .targets(target(port))
            .send()
    };
    register(&tgs["ga"], a_port).await.expect("register A");
    register(&tgs["gb"], b_port).await.expect("register B");
    register(&tgs["gbad"], a_port)
        .await
        .expect("register A in gbad");
    // A group no listener uses: its targets are unused.
    let h = health_of(&elb, &tgs["ga"]).await;
    assert_eq!(h[0].0, "unused");
    assert_eq!(h[0].1, "Target.NotInUse");

    let listener = elb
        .create_listener()
        .load_balancer_arn(&lb_arn)
        .protocol(ProtocolEnum::Http)
        .port(80)
        .default_actions(forward(&tgs["ga"]))
        .send()
        .await
        .expect("CreateListener");
    let listener_arn = listener.listeners()[0]
        .listener_arn()
        .unwrap_or_default()
        .to_string();
    let rules: Vec<(i32, RuleCondition, Action)> = vec![
        (10, path_condition("/api/*"), forward(&tgs["gb"])),
        (
            20,
            RuleCondition::builder()
                .field("host-header")
                .values("B.Example.com")
                .build(),
            forward(&tgs["gb"]),
        ),
        (30, path_condition("/fixed"), fixed(418, "teapot")),
        (
            40,
            path_condition("/old/*"),
            Action::builder()
                .r#type(ActionTypeEnum::Redirect)
                .redirect_config(
                    RedirectActionConfig::builder()
                        .path("/new/#{path}")
                        .status_code(RedirectActionStatusCodeEnum::Http301)
                        .build(),
                )
                .build(),
        ),
        (50, path_condition("/empty*"), forward(&tgs["gempty"])),
        (60, path_condition("/bad*"), forward(&tgs["gbad"])),
    ];
    for (p, c, a) in rules {
        elb.create_rule()
            .listener_arn(&listener_arn)
            .priority(p)
            .conditions(c)
            .actions(a)
            .send()
            .await
            .expect("CreateRule");
    }
    elb.wait_until_target_in_service()
        .target_group_arn(&tgs["ga"])
        .wait(Duration::from_secs(60))
        .await
        .expect("target_in_service A");
    wait_for_state(&elb, &tgs["gb"], "healthy").await;

    // Rules: default, path, host (case-insensitive), fixed response, redirect, no targets.
    let host = dns.as_str();
    assert_eq!(get(main, host, "/", &[]).body, "A");
    assert_eq!(get(main, host, "/api/", &[]).body, "api-B");
    let l_port: u16 = {
        let state = sdk_tests::http(main, "GET", "/_emulator/state", &[], b"").json();
        let addr = state["loadBalancerListeners"][&listener_arn]
            .as_str()
            .expect("listener address")
            .to_string();
        addr.rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("port")
    };
    assert_eq!(
        get(l_port, "b.example.COM", "/", &[]).body,
        "B",
        "host-header on the listener's own port"
    );
    let f = get(main, host, "/fixed", &[]);
    assert_eq!((f.status, f.body.as_str()), (418, "teapot"));
    let r = get(main, &format!("{host}:80"), "/old/x?q=1", &[]);
    assert_eq!(r.status, 301);
    assert_eq!(
        r.header("location"),
        Some(format!("http://{host}/new/old/x?q=1").as_str())
    );
    let e = get(main, host, "/empty", &[]);
    assert_eq!(e.status, 503);
    assert_eq!(e.header("server"), Some("awselb/2.0"));
    assert!(
        e.body.contains("503 Service Temporarily Unavailable") || e.body.contains("503"),
        "{}",
        e.body
    );

    // Forwarded headers.
    let h = get(
        main,
        host,
        "/cgi-bin/h",
        &[("X-Forwarded-For", "203.0.113.9")],
    );
    assert!(h.body.contains("xff=203.0.113.9, 127.0.0.1"), "{}", h.body);
    assert!(h.body.contains("proto=http port=80"), "{}", h.body);
    assert!(h.body.contains("trace=Root=1-"), "{}", h.body);
    assert!(h.body.contains(&format!("host={host}")), "{}", h.body);

    // Health: a target answering 404 on the health path.
    let bad = wait_for_state(&elb, &tgs["gbad"], "unhealthy").await;
    assert_eq!(bad[0].1, "Target.ResponseCodeMismatch");
    assert_eq!(bad[0].2, "Health checks failed with these codes: [404]");
    // All targets unhealthy: ALB fails open.
    assert_eq!(get(main, host, "/bad", &[]).status, 404);

    // Weights: everything to B, then everything to A, then both.
    let weighted = |wa: i32, wb: i32| {
        Action::builder()
            .r#type(ActionTypeEnum::Forward)
            .forward_config(
                ForwardActionConfig::builder()
                    .target_groups(
                        TargetGroupTuple::builder()
                            .target_group_arn(&tgs["ga"])
                            .weight(wa)
                            .build(),
                    )
                    .target_groups(
                        TargetGroupTuple::builder()
                            .target_group_arn(&tgs["gb"])
                            .weight(wb)
                            .build(),
                    )
                    .build(),
            )
            .build()
    };
    let modify = |a: Action| {
        elb.modify_listener()
            .listener_arn(&listener_arn)
            .default_actions(a)
            .send()
    };
    // The proxy's routing table is rebuilt after each change: poll until it shows.
    let all_answer = |body: &'static str| {
        move || async move {
            (0..10)
                .all(|_| get(main, host, "/", &[]).body == body)
                .then_some(())
        }
    };
    modify(weighted(0, 1)).await.expect("ModifyListener");
    eventually(10, "weight 0/1 sending everything to B", all_answer("B")).await;
    modify(weighted(1, 0)).await.expect("ModifyListener");
    eventually(10, "weight 1/0 sending everything to A", all_answer("A")).await;
    modify(weighted(1, 1)).await.expect("ModifyListener");
    eventually(10, "weight 1/1 reaching both groups", || async {
        let bodies: Vec<String> = (0..40).map(|_| get(main, host, "/", &[]).body).collect();
        (bodies.iter().any(|b| b == "A") && bodies.iter().any(|b| b == "B")).then_some(())
    })
    .await;
    // Group stickiness: AWSALBTG keeps a client on one group.
    let sticky_groups = Action::builder()
        .r#type(ActionTypeEnum::Forward)
        .forward_config(
            ForwardActionConfig::builder()
                .target_groups(
                    TargetGroupTuple::builder()
                        .target_group_arn(&tgs["ga"])
                        .weight(1)
                        .build(),
                )
                .target_groups(
                    TargetGroupTuple::builder()
                        .target_group_arn(&tgs["gb"])
                        .weight(1)
                        .build(),
                )
                .target_group_stickiness_config(
                    TargetGroupStickinessConfig::builder()
                        .enabled(true)
                        .duration_seconds(600)
                        .build(),
                )
                .build(),
        )
        .build();
    modify(sticky_groups).await.expect("ModifyListener");
    let (first, tg_cookie) = eventually(10, "an AWSALBTG cookie", || async {
        let first = get(main, host, "/", &[]);
        let cookie = first
            .set_cookies()
            .iter()
            .find(|c| c.starts_with("AWSALBTG="))
            .map(|c| c.split(';').next().unwrap_or_default().to_string())?;
        Some((first, cookie))
    })
    .await;
    assert!((0..10).all(|_| get(main, host, "/", &[("Cookie", &tg_cookie)]).body == first.body));
    modify(forward(&tgs["ga"])).await.expect("ModifyListener");

    // Target stickiness: A and B both in group ga, lb_cookie on.
    register(&tgs["ga"], b_port)
        .await
        .expect("register B in ga");
    wait_for_state(&elb, &tgs["ga"], "healthy").await;
    elb.modify_target_group_attributes()
        .target_group_arn(&tgs["ga"])
        .attributes(attr("stickiness.enabled", "true"))
        .attributes(attr("stickiness.type", "lb_cookie"))
        .send()
        .await
        .expect("stickiness");
    let first = eventually(10, "an AWSALB cookie", || async {
        let first = get(main, host, "/", &[]);
        let sticky = first.set_cookies().iter().any(|c| c.starts_with("AWSALB="));
        sticky.then_some(first)
    })
    .await;
    let cookies = first.set_cookies();
    assert!(
        cookies
            .iter()
            .any(|c| c.starts_with("AWSALBCORS=") && c.contains("SameSite=None")),
        "{cookies:?}"
    );
    let cookie = cookies
        .iter()
        .find(|c| c.starts_with("AWSALB="))
        .map(|c| c.split(';').next().unwrap_or_default().to_string())
        .expect("AWSALB cookie");
    assert!((0..10).all(|_| get(main, host, "/", &[("Cookie", &cookie)]).body == first.body));
    elb.modify_target_group_attributes()
        .target_group_arn(&tgs["ga"])
        .attributes(attr("stickiness.enabled", "false"))
        .attributes(attr("deregistration_delay.timeout_seconds", "20"))
        .send()
        .await
        .expect("attributes");
    eventually(10, "stickiness off (no AWSALB cookie)", || async {
        let answer = get(main, host, "/", &[]);
        let sticky = answer
            .set_cookies()
            .iter()
            .any(|c| c.starts_with("AWSALB="));
        (!sticky).then_some(())
    })
    .await;

    // Draining: deregister A while requests flow; none fails, then A is gone.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = {
        let stop = stop.clone();
        let host = host.to_string();
        std::thread::spawn(move || {
            let mut answers = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                answers.push(get(main, &host, "/", &[]));
            }
            answers
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    elb.deregister_targets()
        .target_group_arn(&tgs["ga"])
        .targets(target(a_port))
        .send()
        .await
        .expect("DeregisterTargets");
    let h = health_of(&elb, &tgs["ga"]).await;
    assert!(
        h.iter()
            .any(|(s, r, _)| s == "draining" && r == "Target.DeregistrationInProgress"),
        "{h:?}"
    );
    elb.wait_until_target_deregistered()
        .target_group_arn(&tgs["ga"])
        .targets(target(a_port))
        .wait(Duration::from_secs(60))
        .await
        .expect("target_deregistered");
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let answers = load.join().expect("load thread");
    assert!(answers.len() > 10, "only {} requests", answers.len());
    assert!(
        answers.iter().all(|a| a.status == 200),
        "a request failed while draining"
    );
    assert_eq!(
        answers.last().map(|a| a.body.as_str()),
        Some("B"),
        "A no longer gets requests"
    );
    assert_eq!(health_of(&elb, &tgs["ga"]).await.len(), 1);

    // Counters for metrics are exposed through the handle; here only their effect is visible.
    // Deleting the load balancer stops its listener socket.
    elb.delete_load_balancer()
        .load_balancer_arn(&lb_arn)
        .send()
        .await
        .expect("DeleteLoadBalancer");
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", l_port)).is_ok() {
        assert!(
            Instant::now() < deadline,
            "the listener still accepts after deletion"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn https_and_tcp_listeners_come_back_after_restart() {
    crate::ecs_docker::ensure_image();
    let (a_id, a_port) = httpd("A");
    let _containers = Containers(vec![a_id]);
    let mut emu = Emulator::start_with(&["--time-scale", "20"]);
    let (subnets, vpc) = subnets_and_vpc(&emu).await;
    let (https_port, tcp_port) = {
        let elb = emu.elbv2();
        let alb = elb
            .create_load_balancer()
            .name("secure")
            .subnets(&subnets[0])
            .subnets(&subnets[1])
            .send()
            .await
            .expect("ALB");
        let nlb = elb
            .create_load_balancer()
            .name("tcp")
            .r#type(aws_sdk_elasticloadbalancingv2::types::LoadBalancerTypeEnum::Network)
            .subnets(&subnets[0])
            .send()
            .await
            .expect("NLB");
        let http_tg = elb
            .create_target_group()
            .name("web")
            .protocol(ProtocolEnum::Http)
            .port(8080)
            .vpc_id(&vpc)
            .target_type(TargetTypeEnum::Ip)
            .send()
            .await
            .expect("TG");
        let tcp_tg = elb
            .create_target_group()
            .name("tcp")
            .protocol(ProtocolEnum::Tcp)
            .port(8080)
            .vpc_id(&vpc)
            .target_type(TargetTypeEnum::Ip)
            .send()
            .await
            .expect("TCP TG");
        for tg in [&http_tg, &tcp_tg] {
            elb.register_targets()
                .target_group_arn(tg.target_groups()[0].target_group_arn().unwrap_or_default())
                .targets(
                    TargetDescription::builder()
                        .id("127.0.0.1")
                        .port(a_port as i32)
                        .build(),
                )
                .send()
                .await
                .expect("register");
        }
        let err = elb
            .create_listener()
            .load_balancer_arn(
                alb.load_balancers()[0]
                    .load_balancer_arn()
                    .unwrap_or_default(),
            )
            .protocol(ProtocolEnum::Https)
            .port(8443)
            .default_actions(forward(
                http_tg.target_groups()[0]
                    .target_group_arn()
                    .unwrap_or_default(),
            ))
            .send()
            .await
            .expect_err("HTTPS needs a certificate");
        assert_eq!(err.code(), Some("CertificateNotFound"), "{err:?}");
        let https = elb
            .create_listener()
            .load_balancer_arn(
                alb.load_balancers()[0]
                    .load_balancer_arn()
                    .unwrap_or_default(),
            )
            .protocol(ProtocolEnum::Https)
            .port(8443)
            .certificates(
                aws_sdk_elasticloadbalancingv2::types::Certificate::builder()
                    .certificate_arn("arn:aws:acm:us-east-1:000000000000:certificate/any")
                    .build(),
            )
            .default_actions(forward(
                http_tg.target_groups()[0]
                    .target_group_arn()
                    .unwrap_or_default(),
            ))
            .send()
            .await
            .expect("HTTPS listener");
        let tcp = elb
            .create_listener()
            .load_balancer_arn(
                nlb.load_balancers()[0]
                    .load_balancer_arn()
                    .unwrap_or_default(),
            )
            .protocol(ProtocolEnum::Tcp)
            .port(8081)
            .default_actions(forward(
                tcp_tg.target_groups()[0]
                    .target_group_arn()
                    .unwrap_or_default(),
            ))
            .send()
            .await
            .expect("TCP listener");
        (
            https.listeners()[0]
                .listener_arn()
                .unwrap_or_default()
                .to_string(),
            tcp.listeners()[0]
                .listener_arn()
                .unwrap_or_default()
                .to_string(),
        )
    };
    for round in 0..2 {
        if round == 1 {
            emu.restart();
        }
        let addr_of = |arn: &str| -> u16 {
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let state = sdk_tests::http(emu.port(), "GET", "/_emulator/state", &[], b"").json();
                if let Some(a) = state["loadBalancerListeners"][arn].as_str() {
                    return a
                        .rsplit(':')
                        .next()
                        .and_then(|p| p.parse().ok())
                        .expect("port");
                }
                assert!(
                    Instant::now() < deadline,
                    "listener {arn} not bound: {state}"
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        };
        let hp = addr_of(&https_port);
        let tp = addr_of(&tcp_port);
        let out = Command::new("curl")
            .args([
                "-sk",
                "--max-time",
                "10",
                &format!("https://127.0.0.1:{hp}/"),
            ])
            .output()
            .expect("curl");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "A",
            "HTTPS round {round}"
        );
        assert_eq!(
            sdk_tests::http_to("127.0.0.1", tp, "GET", "/").trim(),
            "A",
            "TCP round {round}"
        );
    }
}

/// The code, HTTP status and message of a failed ELBv2 call.
fn failure<E: ProvideErrorMetadata>(
    err: &aws_sdk_elasticloadbalancingv2::error::SdkError<
        E,
        aws_smithy_runtime_api::client::orchestrator::HttpResponse,
    >,
) -> (String, Option<u16>, String) {
    (
        err.code().unwrap_or_default().to_string(),
        crate::status(err),
        err.message().unwrap_or_default().to_string(),
    )
}

/// Target group names, health-check timeouts, stickiness and attributes, and security groups of
/// another VPC, refused in ELBv2's words (issue 14).
#[tokio::test]
async fn target_groups_and_load_balancers_are_refused_as_aws_words_it() {
    let emu = Emulator::start();
    let elb = emu.elbv2();
    let (subnets, vpc) = subnets_and_vpc(&emu).await;
    let validation = |m: String| ("ValidationError".to_string(), Some(400), m);
    let create = |name: &str, protocol: ProtocolEnum| {
        elb.create_target_group()
            .name(name)
            .protocol(protocol)
            .port(80)
            .vpc_id(&vpc)
    };
    let long = "a".repeat(33);
    let names = [
        (
            long.as_str(),
            format!("Target group name '{long}' cannot be longer than '32' characters"),
        ),
        (
            "web_tg",
            "Target group name 'web_tg' can only contain characters that are alphanumeric characters or hyphens(-)".to_string(),
        ),
    ];
    for (name, message) in names {
        let err = create(name, ProtocolEnum::Http)
            .send()
            .await
            .expect_err(name);
        assert_eq!(failure(&err), validation(message));
    }
    for name in ["-web", "web-", "we--b"] {
        let err = create(name, ProtocolEnum::Http)
            .send()
            .await
            .expect_err(name);
        assert_eq!(failure(&err), validation(format!("1 validation error detected: Value '{name}' at 'targetGroup.targetGroupArn.targetGroupName' failed to satisfy constraint: Member must satisfy regular expression pattern: (?!.*--)(?!^-)(?!.*-$)^[A-Za-z0-9-]+$")));
    }
    let err = create("http", ProtocolEnum::Http)
        .health_check_interval_seconds(5)
        .health_check_timeout_seconds(5)
        .send()
        .await
        .expect_err("timeout = interval");
    assert_eq!(
        failure(&err),
        validation("Health check timeout '5' must be smaller than the interval '5'".into())
    );
    // The TCP family allows a timeout equal to the interval, not above it.
    create("tcp-equal", ProtocolEnum::Tcp)
        .health_check_interval_seconds(10)
        .health_check_timeout_seconds(10)
        .send()
        .await
        .expect("timeout = interval for TCP");
    let err = create("tcp", ProtocolEnum::Tcp)
        .health_check_interval_seconds(10)
        .health_check_timeout_seconds(11)
        .send()
        .await
        .expect_err("timeout > interval");
    assert_eq!(
        failure(&err),
        validation(
            "Health check timeout '11' must be smaller than or equal to the interval '10'".into()
        )
    );
    let lambda = elb
        .create_target_group()
        .name("fn")
        .target_type(TargetTypeEnum::Lambda)
        .send()
        .await
        .expect("lambda");
    let tg = &lambda.target_groups()[0];
    assert_eq!(
        (
            tg.health_check_timeout_seconds(),
            tg.health_check_interval_seconds(),
            tg.unhealthy_threshold_count(),
            tg.health_check_enabled()
        ),
        (Some(30), Some(35), Some(5), Some(false))
    );

    // Stickiness types fit the load balancer type; attributes of another type are unknown.
    let arn = |out: aws_sdk_elasticloadbalancingv2::operation::create_target_group::CreateTargetGroupOutput| {
        out.target_groups()[0]
            .target_group_arn()
            .expect("arn")
            .to_string()
    };
    let alb_tg = arn(create("alb-tg", ProtocolEnum::Http)
        .send()
        .await
        .expect("http"));
    let nlb_tg = arn(create("nlb-tg", ProtocolEnum::Tcp)
        .send()
        .await
        .expect("tcp"));
    let set = |tg: &str, pairs: &[(&str, &str)]| {
        let mut call = elb.modify_target_group_attributes().target_group_arn(tg);
        for (k, v) in pairs {
            call = call.attributes(TargetGroupAttribute::builder().key(*k).value(*v).build());
        }
        call.send()
    };
    let configuration = |m: &str| {
        (
            "InvalidConfigurationRequest".to_string(),
            Some(400),
            m.to_string(),
        )
    };
    let err = set(
        &alb_tg,
        &[
            ("stickiness.enabled", "true"),
            ("stickiness.type", "source_ip"),
        ],
    )
    .await
    .expect_err("source_ip on an ALB group");
    assert_eq!(
        failure(&err),
        configuration(
            "Stickiness type 'source_ip' is not supported for target groups with the HTTP protocol"
        )
    );
    let err = set(
        &nlb_tg,
        &[
            ("stickiness.enabled", "true"),
            ("stickiness.type", "lb_cookie"),
        ],
    )
    .await
    .expect_err("lb_cookie on an NLB group");
    assert_eq!(
        failure(&err),
        configuration(
            "Stickiness type 'lb_cookie' is not supported for target groups with the TCP protocol"
        )
    );
    set(
        &nlb_tg,
        &[
            ("stickiness.enabled", "true"),
            ("stickiness.type", "source_ip"),
            ("proxy_protocol_v2.enabled", "true"),
        ],
    )
    .await
    .expect("source_ip and proxy protocol on an NLB group");
    let err = set(&alb_tg, &[("proxy_protocol_v2.enabled", "true")])
        .await
        .expect_err("an NLB attribute on an ALB group");
    assert_eq!(
        failure(&err),
        validation(
            "Target group attribute key 'proxy_protocol_v2.enabled' is not recognized".into()
        )
    );

    // NLB load balancer attributes AWS documents.
    let nlb = elb
        .create_load_balancer()
        .name("net")
        .r#type(aws_sdk_elasticloadbalancingv2::types::LoadBalancerTypeEnum::Network)
        .subnets(&subnets[0])
        .send()
        .await
        .expect("NLB");
    let nlb_arn = nlb.load_balancers()[0].load_balancer_arn().expect("arn");
    elb.modify_load_balancer_attributes()
        .load_balancer_arn(nlb_arn)
        .attributes(
            aws_sdk_elasticloadbalancingv2::types::LoadBalancerAttribute::builder()
                .key("secondary_ips.auto_assigned.per_subnet")
                .value("2")
                .build(),
        )
        .send()
        .await
        .expect("secondary_ips.auto_assigned.per_subnet");

    // A security group of another VPC.
    let ec2 = emu.ec2();
    let other = ec2
        .create_vpc()
        .cidr_block("10.9.0.0/16")
        .send()
        .await
        .expect("vpc");
    let other_vpc = other.vpc().and_then(|v| v.vpc_id()).expect("vpc id");
    let sg = ec2
        .create_security_group()
        .group_name("elsewhere")
        .description("another VPC")
        .vpc_id(other_vpc)
        .send()
        .await
        .expect("group");
    let sg = sg.group_id().expect("group id");
    let err = elb
        .create_load_balancer()
        .name("cross")
        .subnets(&subnets[0])
        .subnets(&subnets[1])
        .security_groups(sg)
        .send()
        .await
        .expect_err("a group of another VPC");
    assert_eq!(
        failure(&err),
        configuration(&format!(
            "Security group '{sg}' does not belong to VPC '{vpc}'"
        ))
    );
}
