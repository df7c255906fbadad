//! Elastic Load Balancing v2 (application and network load balancers): the API's state and
//! handlers. The data plane (listener sockets, proxy, health checker) is `crate::lb`, which reads
//! this state through the [`Elbv2`] handle and records what it observes (target health, counters,
//! bound addresses) back into it.

pub mod actions;
pub mod attributes;
pub mod health;
pub mod listeners;
pub mod load_balancers;
pub mod metrics;
pub mod misc;
pub mod model;
pub mod rules;
pub mod tags;
pub mod target_groups;
pub mod targets;

use super::ec2::Ec2;
use super::{Deps, Registry};
use crate::clock::Clock;
use crate::protocol::codes;
use crate::protocol::AwsError;
use crate::store::Table;
use model::{Listener, LoadBalancer, Registration, Rule, Tag, TargetGroup};
use parking_lot::RwLock;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use tokio::sync::watch;

pub const SERVICE: &str = "elbv2";

/// ELBv2's state: the handle other parts of the program get with `registry.handle::<Elbv2>()`.
pub struct Elbv2 {
    /// Rows keyed "<scope><arn>".
    pub load_balancers: Arc<Table<LoadBalancer>>,
    pub listeners: Arc<Table<Listener>>,
    pub rules: Arc<Table<Rule>>,
    pub target_groups: Arc<Table<TargetGroup>>,
    /// Keyed "<scope><target group id>/<target id>:<port>".
    pub targets: Arc<Table<Registration>>,
    /// Keyed "<scope><arn>".
    pub tags: Arc<Table<Vec<Tag>>>,
    pub clock: Clock,
    pub(crate) ec2: Option<Arc<Ec2>>,
    /// Bumped on every configuration change: the data plane reconciles its listeners.
    changed: watch::Sender<u64>,
    /// Observed target health (not durable: a restarted emulator checks again).
    pub(crate) health: health::HealthBook,
    /// Request counters per target group and target (for CloudWatch metrics).
    pub metrics: metrics::Metrics,
    /// Where each listener really accepts: listener ARN → "127.0.0.1:port" (set by the data plane).
    pub bound: RwLock<BTreeMap<String, String>>,
}

impl Elbv2 {
    pub fn new(deps: &Deps, ec2: Arc<Ec2>) -> Elbv2 {
        Elbv2 {
            load_balancers: Table::open(&deps.store, "elbv2.load_balancers"),
            listeners: Table::open(&deps.store, "elbv2.listeners"),
            rules: Table::open(&deps.store, "elbv2.rules"),
            target_groups: Table::open(&deps.store, "elbv2.target_groups"),
            targets: Table::open(&deps.store, "elbv2.targets"),
            tags: Table::open(&deps.store, "elbv2.tags"),
            clock: deps.clock.clone(),
            ec2: Some(ec2),
            changed: watch::channel(0).0,
            health: health::HealthBook::default(),
            metrics: metrics::Metrics::default(),
            bound: RwLock::new(BTreeMap::new()),
        }
    }

    /// Tells the data plane that load balancers, listeners, rules or targets changed.
    pub fn bump(&self) {
        self.changed.send_modify(|v| *v = v.wrapping_add(1));
    }

    /// Wakes on every configuration change.
    pub fn subscribe_changes(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// Every load balancer of every account and region.
    pub fn all_load_balancers(&self) -> Vec<LoadBalancer> {
        self.load_balancers.read(|m| m.values().cloned().collect())
    }

    pub fn all_listeners(&self) -> Vec<Listener> {
        self.listeners.read(|m| m.values().cloned().collect())
    }

    /// The rules of one listener (not the default rule), by priority.
    pub fn listener_rules(&self, listener: &Listener) -> Vec<Rule> {
        let scope = scope_of(&listener.arn);
        let mut rules: Vec<Rule> = self.rules.read(|m| {
            m.range(scope.clone()..)
                .take_while(|(k, _)| k.starts_with(&scope))
                .filter(|(_, r)| r.listener_arn == listener.arn)
                .map(|(_, r)| r.clone())
                .collect()
        });
        rules.sort_by_key(|r| r.priority);
        rules
    }

    /// A target group by ARN (any account and region).
    pub fn group_by_arn(&self, arn: &str) -> Option<TargetGroup> {
        self.target_groups.get(&format!("{}{arn}", scope_of(arn)))
    }

    pub fn load_balancer_by_arn(&self, arn: &str) -> Option<LoadBalancer> {
        self.load_balancers.get(&format!("{}{arn}", scope_of(arn)))
    }

    /// The registered targets of a group (draining ones too).
    pub fn registrations(&self, group: &TargetGroup) -> Vec<Registration> {
        let prefix = format!("{}{}/", scope_of(&group.arn), group.id);
        self.targets
            .scan(&prefix)
            .into_iter()
            .map(|(_, r)| r)
            .collect()
    }

    /// Where an instance target's ports are published: the EC2 instance's host loopback address
    /// (given when an ECS agent registered from it), else 127.0.0.1.
    pub fn instance_address(&self, account: &str, region: &str, instance_id: &str) -> String {
        match &self.ec2 {
            Some(ec2) => ec2.target_address(account, region, instance_id),
            None => "127.0.0.1".into(),
        }
    }
}

/// "<account>/<region>/" of an ARN (arn:aws:elasticloadbalancing:<region>:<account>:…).
pub fn scope_of(arn: &str) -> String {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    match parts.as_slice() {
        [_, _, _, region, account, _] => format!("{account}/{region}/"),
        _ => String::new(),
    }
}

/// The row key of a resource in the caller's scope.
pub fn key(ctx: &super::Ctx, arn: &str) -> String {
    format!("{}{arn}", ctx.scope())
}

pub fn validation(message: impl Into<String>) -> AwsError {
    AwsError::new(codes::common::ValidationError, message)
}

pub fn lb_not_found() -> AwsError {
    AwsError::new(
        codes::elbv2::LoadBalancerNotFoundException,
        "One or more load balancers not found",
    )
}

pub fn group_not_found() -> AwsError {
    AwsError::new(
        codes::elbv2::TargetGroupNotFoundException,
        "One or more target groups not found",
    )
}

pub fn listener_not_found() -> AwsError {
    AwsError::new(
        codes::elbv2::ListenerNotFoundException,
        "One or more listeners not found",
    )
}

pub fn rule_not_found() -> AwsError {
    AwsError::new(
        codes::elbv2::RuleNotFoundException,
        "One or more rules not found",
    )
}

/// Random decimal digits (DNS names use ten, as AWS does).
pub fn random_digits(len: usize) -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..len)
        .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
        .collect()
}

/// The first value that occurs twice.
pub fn duplicates<'a>(items: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let mut seen: HashSet<&str> = HashSet::new();
    items.into_iter().find(|i| !seen.insert(i))
}

pub fn register(r: &mut Registry, deps: &Deps, ec2: Arc<Ec2>) -> Arc<Elbv2> {
    let state = Arc::new(Elbv2::new(deps, ec2));
    load_balancers::register(r, &state);
    listeners::register(r, &state);
    rules::register(r, &state);
    target_groups::register(r, &state);
    targets::register(r, &state);
    attributes::register(r, &state);
    tags::register(r, &state);
    misc::register(r, &state);
    r.provide(state.clone());
    state
}

#[cfg(test)]
mod tests;
