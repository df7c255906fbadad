//! AWS/ApplicationELB metrics from the data plane's counters (services/elbv2/metrics.rs): each
//! minute, the difference of the monotonic counters since the previous minute, and target health
//! as the health checker sees it. As ELB does, request metrics are published only for minutes
//! with requests; host counts every minute for target groups a load balancer forwards to.
//!
//! Dimensions as AWS writes them: LoadBalancer `app/<name>/<id>`, TargetGroup
//! `targetgroup/<name>/<id>`.

use crate::services::cloudwatch::Samples;
use crate::services::elbv2::metrics::Snapshot;
use crate::services::elbv2::model::{LoadBalancer, TargetGroup};
use crate::services::elbv2::{scope_of, Elbv2};
use std::collections::{BTreeMap, HashMap};

pub const NAMESPACE: &str = "AWS/ApplicationELB";

/// The previous minute's counters, per load balancer and target group ARN.
#[derive(Default)]
pub struct AlbMetrics {
    previous: HashMap<String, Snapshot>,
}

/// One target group as one load balancer sees it this minute.
pub struct GroupMinute<'a> {
    pub lb: &'a LoadBalancer,
    pub group: &'a TargetGroup,
    pub delta: Snapshot,
    pub healthy: usize,
    pub unhealthy: usize,
    /// Registered and not draining (RequestCountPerTarget's divisor when none is healthy).
    pub in_service: usize,
}

pub fn lb_dimension(lb: &LoadBalancer) -> String {
    format!("{}/{}/{}", lb.short_kind(), lb.name, lb.id)
}

pub fn group_dimension(g: &TargetGroup) -> String {
    format!("targetgroup/{}/{}", g.name, g.id)
}

impl AlbMetrics {
    /// This minute's data of every application load balancer, by scope.
    pub fn collect(&mut self, elbv2: &Elbv2, timestamp: f64) -> BTreeMap<String, Vec<Samples>> {
        let mut out: BTreeMap<String, Vec<Samples>> = BTreeMap::new();
        let lbs: HashMap<String, LoadBalancer> = elbv2
            .all_load_balancers()
            .into_iter()
            .filter(LoadBalancer::is_application)
            .map(|lb| (lb.arn.clone(), lb))
            .collect();
        let mut seen: Vec<String> = Vec::new();
        for (arn, snap) in elbv2.metrics.load_balancer_snapshots() {
            let Some(lb) = lbs.get(&arn) else { continue };
            let delta = self.delta(&arn, snap);
            seen.push(arn.clone());
            out.entry(scope_of(&arn)).or_default().extend(lb_samples(
                lb,
                &delta,
                snap.open_connections,
                timestamp,
            ));
        }
        let groups: Vec<TargetGroup> = elbv2.target_groups.read(|m| m.values().cloned().collect());
        let snapshots: HashMap<String, Snapshot> =
            elbv2.metrics.group_snapshots().into_iter().collect();
        for group in &groups {
            let scope = scope_of(&group.arn);
            let forwarding =
                crate::services::elbv2::actions::group_load_balancers(elbv2, &scope, &group.arn);
            let delta = match snapshots.get(&group.arn) {
                Some(s) => {
                    seen.push(group.arn.clone());
                    self.delta(&group.arn, *s)
                }
                None => Snapshot::default(),
            };
            let health = elbv2.group_health(group);
            let count = |state: &str| health.iter().filter(|h| h.state == state).count();
            let in_service = health
                .iter()
                .filter(|h| h.state != "draining" && h.state != "unused")
                .count();
            for lb in forwarding.iter().filter_map(|a| lbs.get(a)) {
                let minute = GroupMinute {
                    lb,
                    group,
                    delta,
                    healthy: count("healthy"),
                    unhealthy: count("unhealthy"),
                    in_service,
                };
                out.entry(scope.clone())
                    .or_default()
                    .extend(group_samples(&minute, timestamp));
            }
        }
        self.previous.retain(|k, _| seen.contains(k));
        out
    }

    fn delta(&mut self, arn: &str, now: Snapshot) -> Snapshot {
        let before = self
            .previous
            .insert(arn.to_string(), now)
            .unwrap_or_default();
        diff(&before, &now)
    }
}

/// Counter differences (a counter that went backwards, recreated, counts from zero).
pub fn diff(before: &Snapshot, now: &Snapshot) -> Snapshot {
    let d = |a: u64, b: u64| if b >= a { b - a } else { b };
    Snapshot {
        requests: d(before.requests, now.requests),
        target_2xx: d(before.target_2xx, now.target_2xx),
        target_3xx: d(before.target_3xx, now.target_3xx),
        target_4xx: d(before.target_4xx, now.target_4xx),
        target_5xx: d(before.target_5xx, now.target_5xx),
        elb_3xx: d(before.elb_3xx, now.elb_3xx),
        elb_4xx: d(before.elb_4xx, now.elb_4xx),
        elb_5xx: d(before.elb_5xx, now.elb_5xx),
        elb_502: d(before.elb_502, now.elb_502),
        elb_503: d(before.elb_503, now.elb_503),
        elb_504: d(before.elb_504, now.elb_504),
        connection_errors: d(before.connection_errors, now.connection_errors),
        response_time_us: d(before.response_time_us, now.response_time_us),
        responses: d(before.responses, now.responses),
        outstanding: now.outstanding,
        processed_bytes: d(before.processed_bytes, now.processed_bytes),
        new_connections: d(before.new_connections, now.new_connections),
        // ActiveConnectionCount: connections open at the start of the minute plus those opened
        // during it, i.e. every client connection that was active in the minute.
        open_connections: before.open_connections.max(0)
            + d(before.new_connections, now.new_connections) as i64,
    }
}

fn datum(name: &str, dims: &[(&str, String)], value: f64, unit: &str, t: f64) -> Samples {
    Samples {
        namespace: NAMESPACE.to_string(),
        metric_name: name.to_string(),
        dimensions: dims
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
        values: vec![value],
        unit: Some(unit.to_string()),
        timestamp: t,
    }
}

/// Counts published only when non-zero (ELB reports a metric only when there is data).
fn counts(out: &mut Vec<Samples>, dims: &[(&str, String)], items: &[(&str, u64)], t: f64) {
    for (name, n) in items {
        if *n > 0 {
            out.push(datum(name, dims, *n as f64, "Count", t));
        }
    }
}

fn target_codes(d: &Snapshot) -> [(&'static str, u64); 4] {
    [
        ("HTTPCode_Target_2XX_Count", d.target_2xx),
        ("HTTPCode_Target_3XX_Count", d.target_3xx),
        ("HTTPCode_Target_4XX_Count", d.target_4xx),
        ("HTTPCode_Target_5XX_Count", d.target_5xx),
    ]
}

fn lb_samples(lb: &LoadBalancer, d: &Snapshot, open_now: i64, t: f64) -> Vec<Samples> {
    let dims = [("LoadBalancer", lb_dimension(lb))];
    let mut out = Vec::new();
    counts(
        &mut out,
        &dims,
        &[
            ("RequestCount", d.requests),
            ("HTTPCode_ELB_3XX_Count", d.elb_3xx),
            ("HTTPCode_ELB_4XX_Count", d.elb_4xx),
            ("HTTPCode_ELB_5XX_Count", d.elb_5xx),
            ("HTTPCode_ELB_502_Count", d.elb_502),
            ("HTTPCode_ELB_503_Count", d.elb_503),
            ("HTTPCode_ELB_504_Count", d.elb_504),
            ("TargetConnectionErrorCount", d.connection_errors),
            ("NewConnectionCount", d.new_connections),
        ],
        t,
    );
    counts(&mut out, &dims, &target_codes(d), t);
    let active = d.open_connections.max(open_now).max(0) as u64;
    counts(&mut out, &dims, &[("ActiveConnectionCount", active)], t);
    if d.processed_bytes > 0 {
        out.push(datum(
            "ProcessedBytes",
            &dims,
            d.processed_bytes as f64,
            "Bytes",
            t,
        ));
    }
    if let Some(mean) = d.mean_response_time() {
        out.push(datum("TargetResponseTime", &dims, mean, "Seconds", t));
    }
    out
}

/// A target group's data with (LoadBalancer, TargetGroup), and RequestCountPerTarget also with
/// TargetGroup alone (what ALBRequestCountPerTarget target tracking reads).
pub fn group_samples(m: &GroupMinute<'_>, t: f64) -> Vec<Samples> {
    let group = group_dimension(m.group);
    let dims = [
        ("LoadBalancer", lb_dimension(m.lb)),
        ("TargetGroup", group.clone()),
    ];
    let d = &m.delta;
    let mut out = vec![
        datum("HealthyHostCount", &dims, m.healthy as f64, "Count", t),
        datum("UnHealthyHostCount", &dims, m.unhealthy as f64, "Count", t),
    ];
    counts(&mut out, &dims, &[("RequestCount", d.requests)], t);
    counts(&mut out, &dims, &target_codes(d), t);
    if let Some(mean) = d.mean_response_time() {
        out.push(datum("TargetResponseTime", &dims, mean, "Seconds", t));
    }
    // ELB: RequestCount ÷ healthy targets (all in-service targets when none is healthy).
    let divisor = if m.healthy > 0 {
        m.healthy
    } else {
        m.in_service
    };
    if d.requests > 0 && divisor > 0 {
        let per_target = d.requests as f64 / divisor as f64;
        out.push(datum(
            "RequestCountPerTarget",
            &dims,
            per_target,
            "Count",
            t,
        ));
        out.push(datum(
            "RequestCountPerTarget",
            &[("TargetGroup", group)],
            per_target,
            "Count",
            t,
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lb() -> LoadBalancer {
        serde_json::from_value(serde_json::json!({
            "arn": "arn:aws:elasticloadbalancing:us-east-1:000000000000:loadbalancer/app/web/50dc6c495c0c9188",
            "name": "web", "id": "50dc6c495c0c9188", "dns_name": "web-1.us-east-1.elb.localhost",
            "kind": "application", "scheme": "internet-facing", "vpc_id": "vpc-1",
            "ip_address_type": "ipv4", "zones": [], "created": 0.0,
        }))
        .expect("lb")
    }

    fn group() -> TargetGroup {
        serde_json::from_value(serde_json::json!({
            "arn": "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/tg/943f017f100becff",
            "name": "tg", "id": "943f017f100becff", "target_type": "ip",
            "ip_address_type": "ipv4",
            "health": {"enabled": true, "protocol": "HTTP", "port": "traffic-port", "path": "/",
                "interval": 30, "timeout": 5, "healthy_threshold": 5, "unhealthy_threshold": 2,
                "matcher": "200"},
        }))
        .expect("group")
    }

    fn value(out: &[Samples], name: &str, dims: usize) -> Option<f64> {
        out.iter()
            .find(|s| s.metric_name == name && s.dimensions.len() == dims)
            .map(|s| s.values[0])
    }

    #[test]
    fn differences_of_monotonic_counters() {
        let before = Snapshot {
            requests: 10,
            target_2xx: 8,
            new_connections: 3,
            open_connections: 2,
            response_time_us: 1000,
            responses: 8,
            ..Default::default()
        };
        let now = Snapshot {
            requests: 25,
            target_2xx: 20,
            target_5xx: 3,
            new_connections: 5,
            open_connections: 1,
            response_time_us: 4000,
            responses: 23,
            ..Default::default()
        };
        let d = diff(&before, &now);
        assert_eq!((d.requests, d.target_2xx, d.target_5xx), (15, 12, 3));
        assert_eq!(d.open_connections, 4, "2 open at the start + 2 new");
        assert_eq!(d.mean_response_time(), Some(0.0002));
        // A counter that restarted (target group recreated) counts from zero.
        let reset = diff(
            &now,
            &Snapshot {
                requests: 4,
                ..Default::default()
            },
        );
        assert_eq!(reset.requests, 4);
    }

    #[test]
    fn dimensions_and_per_target_counts() {
        let (lb, g) = (lb(), group());
        assert_eq!(lb_dimension(&lb), "app/web/50dc6c495c0c9188");
        assert_eq!(group_dimension(&g), "targetgroup/tg/943f017f100becff");
        let m = GroupMinute {
            lb: &lb,
            group: &g,
            delta: Snapshot {
                requests: 90,
                target_2xx: 80,
                target_4xx: 10,
                response_time_us: 9_000,
                responses: 90,
                ..Default::default()
            },
            healthy: 3,
            unhealthy: 1,
            in_service: 4,
        };
        let out = group_samples(&m, 60.0);
        assert_eq!(value(&out, "RequestCountPerTarget", 1), Some(30.0));
        assert_eq!(value(&out, "RequestCountPerTarget", 2), Some(30.0));
        assert_eq!(value(&out, "RequestCount", 2), Some(90.0));
        assert_eq!(value(&out, "HTTPCode_Target_2XX_Count", 2), Some(80.0));
        assert_eq!(value(&out, "HTTPCode_Target_4XX_Count", 2), Some(10.0));
        assert_eq!(value(&out, "HTTPCode_Target_5XX_Count", 2), None);
        assert_eq!(value(&out, "HealthyHostCount", 2), Some(3.0));
        assert_eq!(value(&out, "UnHealthyHostCount", 2), Some(1.0));
        assert_eq!(value(&out, "TargetResponseTime", 2), Some(0.0001));
        let tg_only = out
            .iter()
            .find(|s| s.dimensions.len() == 1)
            .expect("per target, by target group");
        assert_eq!(
            tg_only.dimensions,
            vec![(
                "TargetGroup".into(),
                "targetgroup/tg/943f017f100becff".into()
            )]
        );

        // No healthy target: divided by the in-service ones; a quiet minute has host counts only.
        let quiet = GroupMinute {
            healthy: 0,
            delta: Snapshot::default(),
            ..m
        };
        let out = group_samples(&quiet, 60.0);
        let names: Vec<&str> = out.iter().map(|s| s.metric_name.as_str()).collect();
        assert_eq!(names, vec!["HealthyHostCount", "UnHealthyHostCount"]);
        let busy_unhealthy = GroupMinute {
            healthy: 0,
            delta: Snapshot {
                requests: 8,
                ..Default::default()
            },
            ..quiet
        };
        assert_eq!(
            value(
                &group_samples(&busy_unhealthy, 60.0),
                "RequestCountPerTarget",
                1
            ),
            Some(2.0)
        );
    }

    #[test]
    fn load_balancer_level_codes_and_connections() {
        let lb = lb();
        let d = Snapshot {
            requests: 5,
            elb_5xx: 2,
            elb_503: 2,
            new_connections: 3,
            open_connections: 4,
            ..Default::default()
        };
        let out = lb_samples(&lb, &d, 1, 0.0);
        assert_eq!(value(&out, "RequestCount", 1), Some(5.0));
        assert_eq!(value(&out, "HTTPCode_ELB_5XX_Count", 1), Some(2.0));
        assert_eq!(value(&out, "HTTPCode_ELB_503_Count", 1), Some(2.0));
        assert_eq!(value(&out, "ActiveConnectionCount", 1), Some(4.0));
        assert_eq!(value(&out, "NewConnectionCount", 1), Some(3.0));
        assert_eq!(value(&out, "HTTPCode_ELB_4XX_Count", 1), None);
        assert!(out
            .iter()
            .all(|s| s.dimensions
                == vec![("LoadBalancer".into(), "app/web/50dc6c495c0c9188".into())]));
    }
}
