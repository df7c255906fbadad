//! The routing table the proxy reads: rebuilt from ELBv2's state whenever configuration or
//! target health changes, so a request only takes a read lock and walks plain data.

use crate::services::elbv2::metrics::{Counters, GroupCounters};
use crate::services::elbv2::model::{Action, Listener, Rule, TargetGroup};
use crate::services::elbv2::Elbv2;
use base64::Engine;
use rand::Rng;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

#[derive(Default)]
pub struct Routes {
    pub listeners: HashMap<String, Arc<ListenerRoutes>>,
    /// Lower-case DNS name → its listeners (port, ARN).
    pub by_host: HashMap<String, Vec<(u16, String)>>,
}

/// A listener's target groups by ARN, looked up on every request it forwards (hence FxHash:
/// the keys are the emulator's own ARNs, nothing a client chooses).
pub type GroupsByArn = rustc_hash::FxHashMap<String, Arc<GroupRoute>>;

pub struct ListenerRoutes {
    pub arn: String,
    pub lb_arn: String,
    pub dns_name: String,
    pub port: u16,
    pub protocol: String,
    pub rules: Vec<Rule>,
    pub default_actions: Vec<Action>,
    pub groups: GroupsByArn,
    pub counters: Arc<Counters>,
    pub idle_timeout: f64,
}

pub struct GroupRoute {
    pub arn: String,
    pub id: String,
    pub algorithm: String,
    /// lb_cookie stickiness duration, when enabled.
    pub sticky: Option<i64>,
    pub slow_start: f64,
    /// Targets that may get new requests (healthy; or all registered when none is: fail open).
    pub targets: Vec<RouteTarget>,
    pub counters: Arc<GroupCounters>,
}

#[derive(Clone)]
pub struct RouteTarget {
    pub key: String,
    pub addr: SocketAddr,
    /// `addr` as a URI authority, made once here rather than on every forwarded request.
    pub authority: http::uri::Authority,
    pub healthy_since: Option<f64>,
    pub counters: Arc<Counters>,
}

impl RouteTarget {
    pub fn new(
        key: String,
        addr: SocketAddr,
        healthy_since: Option<f64>,
        counters: Arc<Counters>,
    ) -> RouteTarget {
        // A socket address always renders as a valid authority ("1.2.3.4:80", "[::1]:80").
        let authority = http::uri::Authority::try_from(addr.to_string())
            .unwrap_or_else(|_| http::uri::Authority::from_static("0.0.0.0"));
        RouteTarget {
            key,
            addr,
            authority,
            healthy_since,
            counters,
        }
    }
}

impl Routes {
    pub fn build(elbv2: &Elbv2) -> Routes {
        let mut routes = Routes::default();
        let lbs: HashMap<String, _> = elbv2
            .all_load_balancers()
            .into_iter()
            .map(|l| (l.arn.clone(), l))
            .collect();
        let mut groups: HashMap<String, Arc<GroupRoute>> = HashMap::new();
        for l in elbv2.all_listeners() {
            let Some(lb) = lbs.get(&l.lb_arn) else {
                continue;
            };
            let rules = elbv2.listener_rules(&l);
            let mut mine = GroupsByArn::default();
            let arns = rules
                .iter()
                .flat_map(|r| crate::services::elbv2::actions::forwarded_groups(&r.actions))
                .chain(crate::services::elbv2::actions::forwarded_groups(
                    &l.default_actions,
                ));
            for arn in arns {
                if let Some(g) = groups.get(&arn) {
                    mine.insert(arn, g.clone());
                } else if let Some(tg) = elbv2.group_by_arn(&arn) {
                    let g = Arc::new(group_route(elbv2, &tg));
                    groups.insert(arn.clone(), g.clone());
                    mine.insert(arn, g);
                }
            }
            let idle_timeout = lb
                .attributes
                .get("idle_timeout.timeout_seconds")
                .and_then(|v| v.parse().ok())
                .unwrap_or(60.0);
            routes
                .by_host
                .entry(lb.dns_name.to_ascii_lowercase())
                .or_default()
                .push((l.port, l.arn.clone()));
            routes.listeners.insert(
                l.arn.clone(),
                Arc::new(listener_routes(elbv2, &l, lb, rules, mine, idle_timeout)),
            );
        }
        routes
    }

    /// The listener a request on the main port reaches by Host: the one on the Host's port,
    /// else port 80, else the lowest port.
    pub fn by_host(&self, host: &str) -> Option<Arc<ListenerRoutes>> {
        let (name, port) = match host.rsplit_once(':') {
            Some((n, p)) => (n, p.parse::<u16>().ok()),
            None => (host, None),
        };
        let list = self.by_host.get(&name.to_ascii_lowercase())?;
        let http = |arn: &String| {
            self.listeners
                .get(arn)
                .filter(|l| l.protocol == "HTTP" || l.protocol == "HTTPS")
        };
        let pick = list
            .iter()
            .filter(|(p, _)| Some(*p) == port)
            .find_map(|(_, a)| http(a))
            .or_else(|| {
                list.iter()
                    .filter(|(p, _)| *p == 80)
                    .find_map(|(_, a)| http(a))
            })
            .or_else(|| {
                let mut l: Vec<&(u16, String)> = list.iter().collect();
                l.sort();
                l.into_iter().find_map(|(_, a)| http(a))
            })?;
        Some(pick.clone())
    }
}

fn listener_routes(
    elbv2: &Elbv2,
    l: &Listener,
    lb: &crate::services::elbv2::model::LoadBalancer,
    rules: Vec<Rule>,
    groups: GroupsByArn,
    idle_timeout: f64,
) -> ListenerRoutes {
    ListenerRoutes {
        arn: l.arn.clone(),
        lb_arn: l.lb_arn.clone(),
        dns_name: lb.dns_name.clone(),
        port: l.port,
        protocol: l.protocol.clone(),
        rules,
        default_actions: l.default_actions.clone(),
        groups,
        counters: elbv2.metrics.load_balancer(&lb.arn),
        idle_timeout,
    }
}

fn group_route(elbv2: &Elbv2, tg: &TargetGroup) -> GroupRoute {
    let attr = |k: &str| tg.attributes.get(k).cloned().unwrap_or_default();
    let counters = elbv2.metrics.group(&tg.arn);
    let health = elbv2.group_health(tg);
    let live: Vec<_> = health.iter().filter(|h| h.state != "draining").collect();
    let healthy: Vec<_> = live
        .iter()
        .filter(|h| h.state == "healthy" || h.state == "unavailable")
        .copied()
        .collect();
    // All unhealthy (or still initial): fail open to every registered target.
    let chosen = if healthy.is_empty() { live } else { healthy };
    let targets = chosen
        .into_iter()
        .filter_map(|h| {
            let addr: SocketAddr = format!("{}:{}", h.address, h.port)
                .parse()
                .or_else(|_| format!("[{}]:{}", h.address, h.port).parse())
                .ok()?;
            let key = format!("{}:{}", h.id, h.port);
            Some(RouteTarget::new(
                key.clone(),
                addr,
                h.healthy_since,
                counters.target(&key),
            ))
        })
        .collect();
    GroupRoute {
        arn: tg.arn.clone(),
        id: tg.id.clone(),
        algorithm: attr("load_balancing.algorithm.type"),
        sticky: (attr("stickiness.enabled") == "true" && attr("stickiness.type") != "app_cookie")
            .then(|| {
                attr("stickiness.lb_cookie.duration_seconds")
                    .parse()
                    .unwrap_or(86400)
            }),
        slow_start: attr("slow_start.duration_seconds").parse().unwrap_or(0.0),
        targets,
        counters,
    }
}

/// The AWSALB cookie value naming a target of a group until `expires`.
pub fn stick_cookie(group_id: &str, target: &str, expires: f64) -> String {
    B64.encode(format!("{group_id}|{target}|{}", expires as i64))
}

/// The target a stickiness cookie names, if it is for this group and not expired.
pub fn read_stick_cookie(value: &str, group_id: &str, now: f64) -> Option<String> {
    let raw = String::from_utf8(B64.decode(value).ok()?).ok()?;
    let mut parts = raw.splitn(3, '|');
    let (g, t, exp) = (parts.next()?, parts.next()?, parts.next()?);
    (g == group_id && exp.parse::<f64>().ok()? > now).then(|| t.to_string())
}

impl GroupRoute {
    /// Picks a target for a new request (None: no targets, the caller answers 503).
    pub fn pick(&self, sticky_to: Option<&str>, now: f64) -> Option<&RouteTarget> {
        if self.targets.is_empty() {
            return None;
        }
        if let Some(key) = sticky_to {
            if let Some(t) = self.targets.iter().find(|t| t.key == key) {
                return Some(t);
            }
        }
        if self.targets.len() == 1 {
            return self.targets.first();
        }
        if self.algorithm == "least_outstanding_requests" {
            let start = self.counters.turn();
            let n = self.targets.len();
            return (0..n)
                .map(|i| &self.targets[(start + i) % n])
                .min_by_key(|t| t.counters.outstanding());
        }
        // Slow start: a target that turned healthy recently gets a share growing linearly.
        if self.slow_start > 0.0 {
            let weights: Vec<f64> = self
                .targets
                .iter()
                .map(|t| match t.healthy_since {
                    Some(since) if now - since < self.slow_start => {
                        ((now - since) / self.slow_start).max(0.05)
                    }
                    _ => 1.0,
                })
                .collect();
            if weights.iter().any(|w| *w < 1.0) {
                return weighted(&self.targets, &weights);
            }
        }
        if self.algorithm == "weighted_random" {
            let i = rand::rng().random_range(0..self.targets.len());
            return self.targets.get(i);
        }
        let i = self.counters.turn();
        self.targets.get(i % self.targets.len())
    }
}

/// A weighted random choice.
pub fn weighted<'a, T>(items: &'a [T], weights: &[f64]) -> Option<&'a T> {
    let total: f64 = weights.iter().sum();
    if total <= 0.0 {
        return None;
    }
    let mut x = rand::rng().random_range(0.0..total);
    for (item, w) in items.iter().zip(weights) {
        if x < *w {
            return Some(item);
        }
        x -= w;
    }
    items.last()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(key: &str, since: Option<f64>) -> RouteTarget {
        RouteTarget::new(
            key.into(),
            "127.0.0.1:1".parse().expect("addr"),
            since,
            Arc::new(Counters::default()),
        )
    }

    fn group(algorithm: &str, targets: Vec<RouteTarget>) -> GroupRoute {
        GroupRoute {
            arn: "tg".into(),
            id: "abc".into(),
            algorithm: algorithm.into(),
            sticky: None,
            slow_start: 0.0,
            targets,
            counters: Arc::new(GroupCounters::default()),
        }
    }

    #[test]
    fn round_robin_and_stickiness() {
        let g = group(
            "round_robin",
            vec![target("a:1", None), target("b:1", None)],
        );
        let picks: Vec<&str> = (0..4)
            .map(|_| g.pick(None, 0.0).map(|t| t.key.as_str()).unwrap_or(""))
            .collect();
        assert_eq!(picks, ["a:1", "b:1", "a:1", "b:1"]);
        assert_eq!(
            g.pick(Some("b:1"), 0.0).map(|t| t.key.as_str()),
            Some("b:1")
        );
        // A cookie naming a target that is gone picks a new one.
        assert!(g.pick(Some("gone:1"), 0.0).is_some());
        assert!(group("round_robin", vec![]).pick(None, 0.0).is_none());
    }

    #[test]
    fn least_outstanding() {
        let g = group(
            "least_outstanding_requests",
            vec![target("a:1", None), target("b:1", None)],
        );
        g.targets[0]
            .counters
            .here()
            .outstanding
            .store(5, std::sync::atomic::Ordering::Relaxed);
        for _ in 0..4 {
            assert_eq!(g.pick(None, 0.0).map(|t| t.key.as_str()), Some("b:1"));
        }
    }

    #[test]
    fn slow_start_ramps() {
        let mut g = group(
            "round_robin",
            vec![target("old:1", Some(0.0)), target("new:1", Some(1000.0))],
        );
        g.slow_start = 100.0;
        let new = (0..2000)
            .filter(|_| g.pick(None, 1005.0).map(|t| t.key.as_str()) == Some("new:1"))
            .count();
        assert!(new < 300, "a target 5% into slow start got {new} of 2000");
    }

    #[test]
    fn cookies() {
        let c = stick_cookie("abc", "10.0.0.1:80", 200.0);
        assert_eq!(
            read_stick_cookie(&c, "abc", 100.0).as_deref(),
            Some("10.0.0.1:80")
        );
        assert_eq!(read_stick_cookie(&c, "other", 100.0), None);
        assert_eq!(read_stick_cookie(&c, "abc", 300.0), None);
        assert_eq!(read_stick_cookie("garbage", "abc", 0.0), None);
    }

    #[test]
    fn weights() {
        let items = ["a", "b"];
        let n = (0..1000)
            .filter(|_| weighted(&items, &[0.0, 1.0]) == Some(&"b"))
            .count();
        assert_eq!(n, 1000);
        assert_eq!(weighted(&items, &[0.0, 0.0]), None);
    }
}
