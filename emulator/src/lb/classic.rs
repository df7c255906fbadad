//! Classic ELB as a source of routes: each classic listener becomes a listener of the routing
//! table whose default action forwards to a one-listener group of the load balancer's InService
//! instances at the listener's InstancePort (round robin; none InService: 503, or the TCP
//! connection is closed). The health checker probes every registered instance per the load
//! balancer's HealthCheck and records the results in the [`Elb`] handle.
//!
//! InstanceProtocol HTTPS and SSL are forwarded as plain HTTP and TCP (targets are local).

use super::health;
use super::routes::{GroupRoute, ListenerRoutes, RouteTarget, Routes};
use crate::clock::Clock;
use crate::services::elb::{Elb, HealthCheckConfig};
use crate::services::elbv2::model::{Action, ForwardConfig, HealthCheck, Listener, WeightedGroup};
use std::collections::{BTreeMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// The classic listeners shaped as ELBv2 listeners (for socket management), and (load balancer
/// ARN, DNS name) pairs.
pub fn listeners(elb: &Elb) -> (Vec<Listener>, Vec<(String, String)>) {
    let mut out = Vec::new();
    let mut names = Vec::new();
    for lb in elb.all_load_balancers() {
        for l in &lb.listeners {
            out.push(Listener {
                arn: lb.listener_key(l.load_balancer_port),
                lb_arn: lb.arn(),
                port: l.load_balancer_port,
                protocol: l.data_plane_protocol().to_string(),
                certificates: Vec::new(),
                ssl_policy: None,
                default_actions: Vec::new(),
                alpn_policy: Vec::new(),
                default_rule_arn: String::new(),
                attributes: BTreeMap::new(),
            });
        }
        names.push((lb.arn(), lb.dns_name.clone()));
    }
    (out, names)
}

fn forward(group: &str) -> Action {
    Action {
        kind: "forward".into(),
        target_group_arn: Some(group.to_string()),
        forward_config: Some(ForwardConfig {
            target_groups: vec![WeightedGroup {
                target_group_arn: group.to_string(),
                weight: None,
            }],
            target_group_stickiness_config: None,
        }),
        ..Action::default()
    }
}

/// Adds the classic load balancers' listeners to the routing table.
pub fn add_routes(routes: &mut Routes, elb: &Elb) {
    for lb in elb.all_load_balancers() {
        let in_service: Vec<(String, IpAddr)> = lb
            .instances
            .iter()
            .filter(|id| elb.instance_health(&lb, id).state == "InService")
            .filter_map(|id| {
                let ip = elb
                    .instance_address(&lb.account, &lb.region, id)
                    .parse()
                    .ok()?;
                Some((id.clone(), ip))
            })
            .collect();
        for l in &lb.listeners {
            let key = lb.listener_key(l.load_balancer_port);
            let counters = elb.group_counters(&key);
            let targets = in_service
                .iter()
                .map(|(id, ip)| {
                    let target = format!("{id}:{}", l.instance_port);
                    RouteTarget::new(
                        target.clone(),
                        SocketAddr::new(*ip, l.instance_port),
                        None,
                        counters.target(&target),
                    )
                })
                .collect();
            let group = Arc::new(GroupRoute {
                arn: key.clone(),
                id: lb.name.clone(),
                algorithm: "round_robin".into(),
                sticky: None,
                slow_start: 0.0,
                targets,
                counters,
            });
            routes
                .by_host
                .entry(lb.dns_name.to_ascii_lowercase())
                .or_default()
                .push((l.load_balancer_port, key.clone()));
            routes.listeners.insert(
                key.clone(),
                Arc::new(ListenerRoutes {
                    arn: key.clone(),
                    lb_arn: lb.arn(),
                    dns_name: lb.dns_name.clone(),
                    port: l.load_balancer_port,
                    protocol: l.data_plane_protocol().to_string(),
                    rules: Vec::new(),
                    default_actions: vec![forward(&key)],
                    groups: std::iter::once((key.clone(), group)).collect(),
                    counters: elb.counters(&lb.key()),
                    idle_timeout: lb.idle_timeout(),
                }),
            );
        }
    }
}

/// Starts the classic health checks that are due (emulator clock).
pub fn schedule_checks(elb: &Arc<Elb>, clock: &Clock, now: f64) {
    let mut seen: HashSet<String> = HashSet::new();
    for lb in elb.all_load_balancers() {
        let cfg = &lb.health_check;
        let Some((protocol, port, path)) = HealthCheckConfig::parse_target(&cfg.target) else {
            continue;
        };
        let hc = HealthCheck {
            enabled: true,
            protocol: if protocol == "HTTP" || protocol == "HTTPS" {
                protocol
            } else {
                "TCP".into()
            },
            port: port.to_string(),
            path,
            interval: cfg.interval,
            timeout: cfg.timeout,
            healthy_threshold: cfg.healthy_threshold,
            unhealthy_threshold: cfg.unhealthy_threshold,
            http_code: Some("200".into()),
            grpc_code: None,
        };
        for id in &lb.instances {
            let key = format!("{}/{id}", lb.key());
            seen.insert(key.clone());
            {
                let mut next = elb.next_check.lock();
                if next.get(&key).is_some_and(|due| *due > now) {
                    continue;
                }
                next.insert(key.clone(), now + cfg.interval as f64);
            }
            let Ok(ip) = elb
                .instance_address(&lb.account, &lb.region, id)
                .parse::<IpAddr>()
            else {
                continue;
            };
            let addr = SocketAddr::new(ip, port);
            let hc = hc.clone();
            let elb = elb.clone();
            let timeout = clock.real(Duration::from_secs(hc.timeout.max(1) as u64));
            tokio::spawn(async move {
                let ok = health::probe(&hc, addr, timeout).await.is_ok();
                elb.record_health(&key, ok, hc.healthy_threshold, hc.unhealthy_threshold);
            });
        }
    }
    elb.next_check.lock().retain(|k, _| seen.contains(k));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::build;
    use crate::services::{Ctx, Deps};
    use serde_json::json;

    #[tokio::test]
    async fn classic_listeners_route_to_in_service_instances() {
        let r = build(&Deps::for_tests());
        let call = |svc: &'static str, op: &'static str, input: serde_json::Value| {
            let h = r.get(svc, op).cloned();
            async move {
                match h {
                    Some(h) => h.call(Ctx::for_tests(), input).await.ok(),
                    None => None,
                }
            }
        };
        call("ecs", "CreateCluster", json!({"clusterName": "default"})).await;
        let doc = json!({"instanceType": "m5.large", "availabilityZone": "us-east-1a"}).to_string();
        let ci = call(
            "ecs",
            "RegisterContainerInstance",
            json!({"cluster": "default", "instanceIdentityDocument": doc}),
        )
        .await
        .expect("container instance");
        let id = ci["containerInstance"]["ec2InstanceId"]
            .as_str()
            .expect("id")
            .to_string();
        call(
            "elb",
            "CreateLoadBalancer",
            json!({"LoadBalancerName": "web", "AvailabilityZones": ["us-east-1a"],
                   "Listeners": [{"Protocol": "HTTP", "LoadBalancerPort": 80, "InstancePort": 8080},
                                 {"Protocol": "SSL", "LoadBalancerPort": 8443, "InstancePort": 9000, "SSLCertificateId": "x"}]}),
        )
        .await
        .expect("lb");
        call(
            "elb",
            "RegisterInstancesWithLoadBalancer",
            json!({"LoadBalancerName": "web", "Instances": [{"InstanceId": id}]}),
        )
        .await
        .expect("register");
        let elb = r.handle::<Elb>().expect("elb");
        let (ls, names) = listeners(&elb);
        assert_eq!(
            ls.iter()
                .map(|l| (l.port, l.protocol.as_str()))
                .collect::<Vec<_>>(),
            vec![(80, "HTTP"), (8443, "TLS")]
        );
        assert_eq!(names.len(), 1);
        // Registering: no targets yet.
        let mut routes = Routes::default();
        add_routes(&mut routes, &elb);
        let l80 = routes.listeners.get(&ls[0].arn).expect("listener").clone();
        assert!(l80.groups.values().all(|g| g.targets.is_empty()));
        // InService after HealthyThreshold (10) successes.
        let key = format!("000000000000/us-east-1/web/{id}");
        for _ in 0..10 {
            elb.record_health(&key, true, 10, 2);
        }
        let mut routes = Routes::default();
        add_routes(&mut routes, &elb);
        let l80 = routes.listeners.get(&ls[0].arn).expect("listener").clone();
        let group = l80.groups.values().next().expect("group");
        let host = elb.instance_address("000000000000", "us-east-1", &id);
        assert_ne!(host, "127.0.0.1");
        assert_eq!(
            group
                .targets
                .iter()
                .map(|t| t.addr.to_string())
                .collect::<Vec<_>>(),
            vec![format!("{host}:8080")]
        );
        let dns = elb.all_load_balancers()[0].dns_name.clone();
        assert_eq!(
            routes.by_host(&dns).map(|l| l.port),
            Some(80),
            "the main port reaches the HTTP listener by Host"
        );
    }
}
