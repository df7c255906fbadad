//! Classic Elastic Load Balancing (elb 2012-06-01): load balancers named per account and region,
//! their listeners (LoadBalancerPort → InstancePort), registered EC2 instances, the health check
//! and attributes. The data plane is `crate::lb` (`lb::classic`), which reads this state through
//! the [`Elb`] handle, probes instances and records their health back here.

pub mod attributes;
pub mod instances;
pub mod load_balancers;

use super::ec2::Ec2;
use super::elbv2::metrics::{Counters, GroupCounters};
use super::elbv2::Elbv2;
use super::{Deps, Registry};
use crate::clock::Clock;
use crate::protocol::codes;
use crate::protocol::AwsError;
use crate::store::Table;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;

pub const SERVICE: &str = "elb";

/// One listener: LoadBalancerPort (Protocol) → InstancePort (InstanceProtocol).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ClassicListener {
    pub protocol: String,
    pub load_balancer_port: u16,
    pub instance_protocol: String,
    pub instance_port: u16,
    #[serde(default)]
    pub ssl_certificate_id: Option<String>,
}

impl ClassicListener {
    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "Protocol": self.protocol,
            "LoadBalancerPort": self.load_balancer_port,
            "InstanceProtocol": self.instance_protocol,
            "InstancePort": self.instance_port,
        });
        if let Some(c) = &self.ssl_certificate_id {
            v["SSLCertificateId"] = json!(c);
        }
        v
    }

    /// How the data plane serves it: HTTP and HTTPS through the reverse proxy, TCP and SSL
    /// (as "TLS") as byte streams.
    pub fn data_plane_protocol(&self) -> &'static str {
        match self.protocol.as_str() {
            "HTTP" => "HTTP",
            "HTTPS" => "HTTPS",
            "SSL" => "TLS",
            _ => "TCP",
        }
    }
}

/// The model's HealthCheck.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct HealthCheckConfig {
    /// "HTTP:80/path", "HTTPS:443/path", "TCP:80", "SSL:443".
    pub target: String,
    pub interval: i64,
    pub timeout: i64,
    pub unhealthy_threshold: i64,
    pub healthy_threshold: i64,
}

impl HealthCheckConfig {
    /// AWS's default: a TCP check on the first listener's instance port.
    pub fn default_for(port: u16) -> HealthCheckConfig {
        HealthCheckConfig {
            target: format!("TCP:{port}"),
            interval: 30,
            timeout: 5,
            unhealthy_threshold: 2,
            healthy_threshold: 10,
        }
    }

    pub fn to_json(&self) -> Value {
        json!({
            "Target": self.target,
            "Interval": self.interval,
            "Timeout": self.timeout,
            "UnhealthyThreshold": self.unhealthy_threshold,
            "HealthyThreshold": self.healthy_threshold,
        })
    }

    /// (protocol, port, path) of the target; None when malformed.
    pub fn parse_target(target: &str) -> Option<(String, u16, Option<String>)> {
        let (protocol, rest) = target.split_once(':')?;
        let protocol = protocol.to_ascii_uppercase();
        let (port, path) = match rest.find('/') {
            Some(i) => (&rest[..i], Some(rest[i..].to_string())),
            None => (rest, None),
        };
        let port: u16 = port.parse().ok().filter(|p| *p > 0)?;
        match (protocol.as_str(), &path) {
            ("HTTP" | "HTTPS", Some(_)) | ("TCP" | "SSL", None) => Some((protocol, port, path)),
            _ => None,
        }
    }
}

/// A classic load balancer, keyed "<scope><name>".
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClassicLb {
    pub name: String,
    pub account: String,
    pub region: String,
    pub dns_name: String,
    pub created: f64,
    pub scheme: String,
    pub listeners: Vec<ClassicListener>,
    pub availability_zones: Vec<String>,
    pub subnets: Vec<String>,
    #[serde(default)]
    pub vpc_id: Option<String>,
    pub security_groups: Vec<String>,
    pub health_check: HealthCheckConfig,
    /// Registered instance ids, in registration order.
    pub instances: Vec<String>,
    /// The model's LoadBalancerAttributes.
    pub attributes: Value,
    /// [{"Key", "Value"}]
    pub tags: Vec<Value>,
}

impl ClassicLb {
    pub fn key(&self) -> String {
        format!("{}/{}/{}", self.account, self.region, self.name)
    }

    /// The ARN classic load balancers have (tags, IAM): …:loadbalancer/<name>.
    pub fn arn(&self) -> String {
        format!(
            "arn:aws:elasticloadbalancing:{}:{}:loadbalancer/{}",
            self.region, self.account, self.name
        )
    }

    /// What the data plane calls a listener (and `GET /_emulator/state` lists).
    pub fn listener_key(&self, port: u16) -> String {
        format!("{}/listener/{port}", self.arn())
    }

    pub fn idle_timeout(&self) -> f64 {
        self.attributes["ConnectionSettings"]["IdleTimeout"]
            .as_f64()
            .unwrap_or(60.0)
    }
}

/// What the health checker last concluded about a registered instance.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceHealth {
    /// InService, OutOfService, Unknown.
    pub state: &'static str,
    /// ELB, Instance, N/A.
    pub reason_code: &'static str,
    pub description: &'static str,
    pub successes: i64,
    pub failures: i64,
}

pub const REGISTERING: &str = "Instance registration is still in progress.";
pub const FAILED: &str =
    "Instance has failed at least the UnhealthyThreshold number of health checks consecutively.";

impl Default for InstanceHealth {
    fn default() -> Self {
        InstanceHealth {
            state: "OutOfService",
            reason_code: "ELB",
            description: REGISTERING,
            successes: 0,
            failures: 0,
        }
    }
}

impl InstanceHealth {
    /// Applies one check result; returns whether the state changed.
    pub fn record(&mut self, ok: bool, healthy: i64, unhealthy: i64) -> bool {
        let before = self.state;
        if ok {
            self.successes += 1;
            self.failures = 0;
            if self.successes >= healthy {
                self.state = "InService";
                self.reason_code = "N/A";
                self.description = "N/A";
            }
        } else {
            self.failures += 1;
            self.successes = 0;
            if self.failures >= unhealthy {
                self.state = "OutOfService";
                self.reason_code = "Instance";
                self.description = FAILED;
            }
        }
        before != self.state
    }
}

/// Classic ELB's state: `registry.handle::<Elb>()`.
pub struct Elb {
    /// Keyed "<account>/<region>/<name>".
    pub load_balancers: Arc<Table<ClassicLb>>,
    pub clock: Clock,
    pub(crate) ec2: Option<Arc<Ec2>>,
    pub(crate) elbv2: Option<Arc<Elbv2>>,
    /// Observed health, keyed "<lb key>/<instance id>" (not durable: checked again on restart).
    pub health: Mutex<HashMap<String, InstanceHealth>>,
    /// Next health check per "<lb key>/<instance id>", emulated epoch seconds.
    pub next_check: Mutex<HashMap<String, f64>>,
    /// Request counters per load balancer key and per listener key (round-robin cursors).
    counters: Mutex<HashMap<String, Arc<Counters>>>,
    group_counters: Mutex<HashMap<String, Arc<GroupCounters>>>,
}

impl Elb {
    pub fn new(deps: &Deps, ec2: Arc<Ec2>, elbv2: Arc<Elbv2>) -> Elb {
        Elb {
            load_balancers: Table::open(&deps.store, "elb.load_balancers"),
            clock: deps.clock.clone(),
            ec2: Some(ec2),
            elbv2: Some(elbv2),
            health: Mutex::new(HashMap::new()),
            next_check: Mutex::new(HashMap::new()),
            counters: Mutex::new(HashMap::new()),
            group_counters: Mutex::new(HashMap::new()),
        }
    }

    /// Wakes the data plane (it reconciles ELBv2 and classic listeners together).
    pub fn bump(&self) {
        if let Some(e) = &self.elbv2 {
            e.bump();
        }
    }

    pub fn all_load_balancers(&self) -> Vec<ClassicLb> {
        self.load_balancers.read(|m| m.values().cloned().collect())
    }

    /// The health of a registered instance (registering until checked).
    pub fn instance_health(&self, lb: &ClassicLb, instance: &str) -> InstanceHealth {
        self.health
            .lock()
            .get(&format!("{}/{instance}", lb.key()))
            .cloned()
            .unwrap_or_default()
    }

    /// Records a health check result (from the data plane).
    pub fn record_health(&self, key: &str, ok: bool, healthy: i64, unhealthy: i64) {
        // A check that finishes after its instance was deregistered is dropped.
        let registered = key.rsplit_once('/').is_some_and(|(lb, id)| {
            self.load_balancers
                .get(lb)
                .is_some_and(|l| l.instances.iter().any(|i| i == id))
        });
        if !registered {
            return;
        }
        let changed = self
            .health
            .lock()
            .entry(key.to_string())
            .or_default()
            .record(ok, healthy, unhealthy);
        if changed {
            tracing::info!(instance = %key, ok, "classic ELB instance health changed");
            self.bump();
        }
    }

    /// Forgets the health of instances of a load balancer (all, or those not in `keep`).
    pub(crate) fn forget_health(&self, lb_key: &str, keep: &[String]) {
        let prefix = format!("{lb_key}/");
        let keep = |k: &String| {
            k.strip_prefix(&prefix)
                .is_none_or(|id| keep.iter().any(|i| i == id))
        };
        self.health.lock().retain(|k, _| keep(k));
        self.next_check.lock().retain(|k, _| keep(k));
    }

    /// Where an instance's ports are published, as EC2 says (ELBv2's rule for instance targets).
    pub fn instance_address(&self, account: &str, region: &str, instance_id: &str) -> String {
        match &self.ec2 {
            Some(ec2) => ec2.target_address(account, region, instance_id),
            None => "127.0.0.1".into(),
        }
    }

    /// Whether EC2 knows the instance (not terminated). A container instance registered with only
    /// an identity document is an EC2 instance too.
    pub fn instance_exists(&self, account: &str, region: &str, instance_id: &str) -> bool {
        self.ec2
            .as_ref()
            .is_some_and(|ec2| ec2.instance_alive(account, region, instance_id, self.clock.now()))
    }

    pub fn counters(&self, key: &str) -> Arc<Counters> {
        self.counters
            .lock()
            .entry(key.to_string())
            .or_default()
            .clone()
    }

    pub fn group_counters(&self, key: &str) -> Arc<GroupCounters> {
        self.group_counters
            .lock()
            .entry(key.to_string())
            .or_default()
            .clone()
    }
}

pub fn validation(message: impl Into<String>) -> AwsError {
    AwsError::new(codes::common::ValidationError, message)
}

pub fn not_found(name: &str) -> AwsError {
    AwsError::new(
        codes::elb::AccessPointNotFoundException,
        format!("There is no ACTIVE Load Balancer named '{name}'"),
    )
}

/// The row key of a load balancer in the caller's scope.
pub fn lb_key(ctx: &super::Ctx, name: &str) -> String {
    format!("{}{name}", ctx.scope())
}

/// A load balancer of the caller's scope by name.
pub fn get_lb(s: &Elb, ctx: &super::Ctx, name: &str) -> Result<ClassicLb, AwsError> {
    s.load_balancers
        .get(&lb_key(ctx, name))
        .ok_or_else(|| not_found(name))
}

pub fn register(r: &mut Registry, deps: &Deps, ec2: Arc<Ec2>, elbv2: Arc<Elbv2>) -> Arc<Elb> {
    let state = Arc::new(Elb::new(deps, ec2, elbv2));
    load_balancers::register(r, &state);
    instances::register(r, &state);
    attributes::register(r, &state);
    r.provide(state.clone());
    state
}

#[cfg(test)]
mod tests;
