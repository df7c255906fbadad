//! ECS task placement for the EC2 launch type: pure logic, no I/O.
//!
//! RunTask, StartTask and the service scheduler build one [`Candidate`] per ACTIVE or DRAINING
//! container instance of the cluster and a [`Demand`] for the task definition, then call
//! [`place`]. It places `count` tasks one at a time, as ECS does:
//!
//! 1. only ACTIVE instances are considered (DRAINING ones get nothing and are not reported);
//! 2. the agent must be connected (else failure `AGENT`);
//! 3. the task definition's `requiresAttributes` must be present (else `ATTRIBUTE`);
//! 4. resources must fit: `RESOURCE:CPU`, `RESOURCE:MEMORY`, `RESOURCE:PORTS`,
//!    `RESOURCE:PORTS_UDP`, `RESOURCE:ENI` (every resource that does not fit is reported);
//! 5. constraints bind: `MemberOf placement constraint unsatisfied.`,
//!    `DistinctInstance placement constraint unsatisfied.`;
//! 6. strategies, in order, each narrow the ties of the previous one (best effort); the remaining
//!    ties are broken at random. No strategy means random (RunTask's default); the service
//!    scheduler passes its own (spread by `attribute:ecs.availability-zone`, then by `instanceId`).
//!
//! After each placed task the chosen instance's remaining CPU, memory, ports, ENIs, running count
//! and task groups are updated, so the next task of the same call sees them (binpack fills one
//! instance first, spread spreads, distinctInstance refuses a second task).
//!
//! When a task cannot be placed, placement stops: the tasks placed so far are in
//! [`Placement::chosen`] and [`Placement::failures`] holds the reasons of the failed attempt, one
//! per reason per instance, in candidate order (each instance is reported for the first stage it
//! fails, 2–5 above). When the cluster has no ACTIVE instance, nothing is placed, `failures` is
//! empty and [`Placement::no_instances`] is true: RunTask then answers
//! `InvalidParameterException` "No Container Instances were found in your cluster.".
//!
//! [`choose_to_stop`] is the reverse, for a service's scale-in.

pub(crate) mod query;

pub use query::{parse_time, Query, MAX_EXPRESSION_LENGTH};

use rand::Rng;
use std::collections::{BTreeMap, BTreeSet};

/// Ports every container instance reserves by default (SSH, Docker, the ECS agent).
pub const DEFAULT_RESERVED_PORTS: [u16; 5] = [22, 2375, 2376, 51678, 51679];
/// At most this many constraints per task (task definition's and the call's together).
pub const MAX_CONSTRAINTS: usize = 10;
/// At most this many strategy rules per task or service.
pub const MAX_STRATEGIES: usize = 5;

/// The failure reasons, as RunTask's `failures[].reason`.
pub const REASON_AGENT: &str = "AGENT";
pub const REASON_ATTRIBUTE: &str = "ATTRIBUTE";
pub const REASON_CPU: &str = "RESOURCE:CPU";
pub const REASON_MEMORY: &str = "RESOURCE:MEMORY";
pub const REASON_PORTS: &str = "RESOURCE:PORTS";
pub const REASON_PORTS_UDP: &str = "RESOURCE:PORTS_UDP";
pub const REASON_ENI: &str = "RESOURCE:ENI";
pub const REASON_MEMBER_OF: &str = "MemberOf placement constraint unsatisfied.";
pub const REASON_DISTINCT: &str = "DistinctInstance placement constraint unsatisfied.";

/// One ACTIVE or DRAINING container instance, as placement sees it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Candidate {
    /// Container instance ARN (reported in failures).
    pub arn: String,
    pub ec2_instance_id: String,
    /// `ACTIVE` or `DRAINING` (anything but `ACTIVE` is skipped).
    pub status: String,
    pub agent_connected: bool,
    /// e.g. `1.80.0` (`versionInfo.agentVersion`).
    pub agent_version: String,
    /// Registration time, epoch seconds.
    pub registered_at: f64,
    /// Built-in (`ecs.availability-zone`, `ecs.instance-type`, `ecs.os-type`,
    /// `ecs.cpu-architecture`, `ecs.ami-id`, `ecs.vpc-id`, `ecs.subnet-id`, `ecs.capability.*`…)
    /// and custom attributes; `None` for an attribute without a value.
    pub attributes: BTreeMap<String, Option<String>>,
    /// remainingResources CPU (units) and MEMORY (MiB).
    pub remaining_cpu: i64,
    pub remaining_memory: i64,
    /// Host ports in use, the reserved ones ([`DEFAULT_RESERVED_PORTS`]) included.
    pub used_tcp_ports: BTreeSet<u16>,
    pub used_udp_ports: BTreeSet<u16>,
    pub running_tasks_count: i64,
    /// The group of each task on the instance (`service:web`, `family:web`, …), one entry per
    /// task (a group with three tasks appears three times).
    pub task_groups: Vec<String>,
    /// ENI attachment points left for awsvpc tasks; `None` = unlimited.
    pub eni_remaining: Option<i64>,
}

/// What one task needs, and how to choose.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Demand {
    /// Task cpu, else Σ container cpu.
    pub cpu: i64,
    /// Task memory, else Σ (memoryReservation or memory).
    pub memory: i64,
    /// Static host ports only (dynamic and awsvpc ports are not counted).
    pub tcp_ports: Vec<u16>,
    pub udp_ports: Vec<u16>,
    /// awsvpc: each task takes one ENI.
    pub needs_eni: bool,
    /// The task's group: `service:<name>` for service tasks, else the RunTask `group` (default
    /// `family:<family>`). Spread and distinctInstance are relative to it.
    pub group: String,
    /// The task definition's `requiresAttributes` (name, value): an instance lacking one (or
    /// having another value when a value is given) fails with `ATTRIBUTE`.
    pub required_attributes: Vec<(String, Option<String>)>,
    /// The task definition's constraints followed by the call's.
    pub constraints: Vec<Constraint>,
    /// In order; empty = random.
    pub strategies: Vec<Strategy>,
    /// How many tasks to place.
    pub count: usize,
}

/// A placement constraint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Constraint {
    /// No two tasks of the group on one instance.
    DistinctInstance,
    /// A cluster query language expression the instance must satisfy.
    MemberOf(String),
}

/// A placement strategy rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Strategy {
    Random,
    /// Least remaining of that resource that still fits.
    Binpack(Resource),
    /// Fewest tasks of the group per value of the field.
    Spread(SpreadField),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    Cpu,
    Memory,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpreadField {
    /// `instanceId` or `host`.
    Instance,
    /// `attribute:<name>`, e.g. `ecs.availability-zone`.
    Attribute(String),
}

impl Constraint {
    /// From the API's `{type, expression}`; the error is an InvalidParameterException message.
    pub fn parse(kind: &str, expression: Option<&str>) -> Result<Constraint, String> {
        match kind {
            "distinctInstance" => Ok(Constraint::DistinctInstance),
            "memberOf" => match expression {
                Some(e) if !e.trim().is_empty() => {
                    check_expression(e)?;
                    Ok(Constraint::MemberOf(e.to_string()))
                }
                _ => Err("An expression must be specified for a memberOf placement constraint."
                    .to_string()),
            },
            other => Err(format!(
                "Invalid placement constraint type '{other}'. Valid types are distinctInstance and memberOf."
            )),
        }
    }
}

impl Strategy {
    /// From the API's `{type, field}`; the error is an InvalidParameterException message.
    pub fn parse(kind: &str, field: Option<&str>) -> Result<Strategy, String> {
        match kind {
            "random" => Ok(Strategy::Random),
            "binpack" => match field {
                Some(f) if f.eq_ignore_ascii_case("cpu") => Ok(Strategy::Binpack(Resource::Cpu)),
                Some(f) if f.eq_ignore_ascii_case("memory") => {
                    Ok(Strategy::Binpack(Resource::Memory))
                }
                Some(f) => Err(format!(
                    "Invalid field '{f}' for binpack placement strategy. Valid fields are cpu and memory."
                )),
                None => Err("A field must be specified for the binpack placement strategy (cpu or memory)."
                    .to_string()),
            },
            "spread" => match field {
                Some(f) if f.eq_ignore_ascii_case("instanceId") || f.eq_ignore_ascii_case("host") => {
                    Ok(Strategy::Spread(SpreadField::Instance))
                }
                Some(f) => match f.strip_prefix("attribute:") {
                    Some(name) if !name.is_empty() => {
                        Ok(Strategy::Spread(SpreadField::Attribute(name.to_string())))
                    }
                    _ => Err(format!(
                        "Invalid field '{f}' for spread placement strategy. Valid fields are instanceId, host and attribute:<name>."
                    )),
                },
                None => Err("A field must be specified for the spread placement strategy."
                    .to_string()),
            },
            other => Err(format!(
                "Invalid placement strategy type '{other}'. Valid types are random, spread and binpack."
            )),
        }
    }

    /// The service scheduler's default: spread by Availability Zone, then by instance.
    pub fn service_default() -> Vec<Strategy> {
        vec![
            Strategy::Spread(SpreadField::Attribute("ecs.availability-zone".to_string())),
            Strategy::Spread(SpreadField::Instance),
        ]
    }
}

/// Validates a memberOf expression (cluster query language) for RunTask, CreateService,
/// RegisterTaskDefinition…: `Err` carries a message for InvalidParameterException.
pub fn check_expression(expr: &str) -> Result<(), String> {
    Query::parse(expr).map(|_| ())
}

/// The outcome of [`place`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Placement {
    /// Index into the candidates of the instance chosen for each placed task, in order;
    /// `len() <= count` (an index may repeat).
    pub chosen: Vec<usize>,
    /// Why the first task that could not be placed was not: empty when all were placed.
    pub failures: Vec<Failure>,
    /// How many ACTIVE candidates there were.
    pub active_instances: usize,
}

impl Placement {
    /// True when there was no ACTIVE container instance at all: the caller answers
    /// "No Container Instances were found in your cluster." instead of failures.
    pub fn no_instances(&self) -> bool {
        self.active_instances == 0
    }
}

/// One entry of RunTask's `failures[]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub arn: String,
    pub reason: String,
}

/// Places `demand.count` tasks on `candidates` (see the module documentation).
pub fn place(candidates: &[Candidate], demand: &Demand, rng: &mut impl Rng) -> Placement {
    let mut work = candidates.to_vec();
    let active_instances = work.iter().filter(|c| is_active(c)).count();
    let mut out = Placement {
        active_instances,
        ..Placement::default()
    };
    if active_instances == 0 {
        return out;
    }
    // An expression that does not parse satisfies nothing (callers validate beforehand).
    let queries: Vec<Option<Query>> = demand
        .constraints
        .iter()
        .filter_map(|c| match c {
            Constraint::MemberOf(e) => Some(Query::parse(e).ok()),
            Constraint::DistinctInstance => None,
        })
        .collect();
    let distinct = demand.constraints.contains(&Constraint::DistinctInstance);
    for _ in 0..demand.count {
        let mut failures = Vec::new();
        let mut eligible = Vec::new();
        for (i, c) in work.iter().enumerate() {
            if !is_active(c) {
                continue;
            }
            let reasons = rejections(c, demand, &queries, distinct);
            if reasons.is_empty() {
                eligible.push(i);
            } else {
                failures.extend(reasons.into_iter().map(|r| Failure {
                    arn: c.arn.clone(),
                    reason: r.to_string(),
                }));
            }
        }
        if eligible.is_empty() {
            out.failures = failures;
            break;
        }
        let pick = choose(&work, eligible, demand, rng);
        if let Some(c) = work.get_mut(pick) {
            take(c, demand);
        }
        out.chosen.push(pick);
    }
    out
}

fn is_active(c: &Candidate) -> bool {
    c.status == "ACTIVE"
}

/// The reasons an instance cannot take the task, from the first stage that fails.
fn rejections(
    c: &Candidate,
    demand: &Demand,
    queries: &[Option<Query>],
    distinct: bool,
) -> Vec<&'static str> {
    if !c.agent_connected {
        return vec![REASON_AGENT];
    }
    let attrs_ok = demand.required_attributes.iter().all(|(name, value)| {
        match (c.attributes.get(name), value) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(have), Some(want)) => have.as_deref() == Some(want.as_str()),
        }
    });
    if !attrs_ok {
        return vec![REASON_ATTRIBUTE];
    }
    let mut out = Vec::new();
    if c.remaining_cpu < demand.cpu {
        out.push(REASON_CPU);
    }
    if c.remaining_memory < demand.memory {
        out.push(REASON_MEMORY);
    }
    if demand
        .tcp_ports
        .iter()
        .any(|p| c.used_tcp_ports.contains(p))
    {
        out.push(REASON_PORTS);
    }
    if demand
        .udp_ports
        .iter()
        .any(|p| c.used_udp_ports.contains(p))
    {
        out.push(REASON_PORTS_UDP);
    }
    if demand.needs_eni && c.eni_remaining.is_some_and(|n| n < 1) {
        out.push(REASON_ENI);
    }
    if !out.is_empty() {
        return out;
    }
    if queries
        .iter()
        .any(|q| !q.as_ref().is_some_and(|q| q.matches(c)))
    {
        out.push(REASON_MEMBER_OF);
    }
    if distinct && c.task_groups.contains(&demand.group) {
        out.push(REASON_DISTINCT);
    }
    out
}

/// Narrows `ties` with each strategy in turn, then picks one at random.
fn choose(work: &[Candidate], mut ties: Vec<usize>, demand: &Demand, rng: &mut impl Rng) -> usize {
    for strategy in &demand.strategies {
        if ties.len() <= 1 {
            break;
        }
        ties = match strategy {
            Strategy::Random => vec![ties[rng.random_range(0..ties.len())]],
            Strategy::Binpack(resource) => keep_min(ties, |i| remaining(&work[i], *resource)),
            Strategy::Spread(field) => {
                let counts = spread_counts(work, field, &demand.group);
                keep_min(ties, |i| {
                    counts
                        .get(&spread_key(&work[i], field))
                        .copied()
                        .unwrap_or(0)
                })
            }
        };
    }
    match ties.len() {
        0 => 0,
        1 => ties[0],
        n => ties[rng.random_range(0..n)],
    }
}

fn keep_min(ties: Vec<usize>, key: impl Fn(usize) -> i64) -> Vec<usize> {
    let Some(min) = ties.iter().map(|&i| key(i)).min() else {
        return ties;
    };
    ties.into_iter().filter(|&i| key(i) == min).collect()
}

fn keep_max(ties: Vec<usize>, key: impl Fn(usize) -> i64) -> Vec<usize> {
    let Some(max) = ties.iter().map(|&i| key(i)).max() else {
        return ties;
    };
    ties.into_iter().filter(|&i| key(i) == max).collect()
}

fn remaining(c: &Candidate, resource: Resource) -> i64 {
    match resource {
        Resource::Cpu => c.remaining_cpu,
        Resource::Memory => c.remaining_memory,
    }
}

/// The bucket an instance falls in for a spread field: its ARN, or its attribute value (an
/// instance without the attribute forms its own bucket, `None`).
fn spread_key(c: &Candidate, field: &SpreadField) -> Option<String> {
    match field {
        SpreadField::Instance => Some(c.arn.clone()),
        SpreadField::Attribute(name) => c
            .attributes
            .get(name)
            .map(|v| v.clone().unwrap_or_default()),
    }
}

fn group_count(c: &Candidate, group: &str) -> i64 {
    c.task_groups.iter().filter(|g| *g == group).count() as i64
}

/// Tasks of `group` per spread bucket, over every ACTIVE instance (eligible or not).
fn spread_counts(
    work: &[Candidate],
    field: &SpreadField,
    group: &str,
) -> BTreeMap<Option<String>, i64> {
    let mut counts = BTreeMap::new();
    for c in work.iter().filter(|c| is_active(c)) {
        *counts.entry(spread_key(c, field)).or_insert(0) += group_count(c, group);
    }
    counts
}

/// Books one task on an instance.
fn take(c: &mut Candidate, demand: &Demand) {
    c.remaining_cpu -= demand.cpu;
    c.remaining_memory -= demand.memory;
    c.used_tcp_ports.extend(demand.tcp_ports.iter().copied());
    c.used_udp_ports.extend(demand.udp_ports.iter().copied());
    if demand.needs_eni {
        if let Some(n) = c.eni_remaining.as_mut() {
            *n -= 1;
        }
    }
    c.running_tasks_count += 1;
    c.task_groups.push(demand.group.clone());
}

/// Scale-in: chooses the instances to stop `demand.count` tasks of `demand.group` from, one
/// index per task (an index may repeat), following `demand.strategies` in reverse as ECS
/// documents it: spread stops from the bucket (Availability Zone, instance…) with the most tasks
/// of the group; binpack stops on the instance that will have the most of the resource left
/// afterwards; random at random. Remaining ties are broken at random. Every candidate holding a
/// task of the group counts, whatever its status. Fewer indexes come back when the candidates
/// hold fewer tasks of the group. `demand.cpu`/`memory` are one task's reservation.
pub fn choose_to_stop(candidates: &[Candidate], demand: &Demand, rng: &mut impl Rng) -> Vec<usize> {
    let mut work = candidates.to_vec();
    let mut out = Vec::new();
    for _ in 0..demand.count {
        let mut ties: Vec<usize> = (0..work.len())
            .filter(|&i| group_count(&work[i], &demand.group) > 0)
            .collect();
        if ties.is_empty() {
            break;
        }
        for strategy in &demand.strategies {
            if ties.len() <= 1 {
                break;
            }
            ties = match strategy {
                Strategy::Random => vec![ties[rng.random_range(0..ties.len())]],
                Strategy::Binpack(resource) => keep_max(ties, |i| remaining(&work[i], *resource)),
                Strategy::Spread(field) => {
                    let mut counts: BTreeMap<Option<String>, i64> = BTreeMap::new();
                    for c in &work {
                        *counts.entry(spread_key(c, field)).or_insert(0) +=
                            group_count(c, &demand.group);
                    }
                    keep_max(ties, |i| {
                        counts
                            .get(&spread_key(&work[i], field))
                            .copied()
                            .unwrap_or(0)
                    })
                }
            };
        }
        let pick = match ties.len() {
            1 => ties[0],
            n => ties[rng.random_range(0..n)],
        };
        if let Some(c) = work.get_mut(pick) {
            c.remaining_cpu += demand.cpu;
            c.remaining_memory += demand.memory;
            c.running_tasks_count -= 1;
            if let Some(pos) = c.task_groups.iter().position(|g| *g == demand.group) {
                c.task_groups.remove(pos);
            }
        }
        out.push(pick);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn rng() -> StdRng {
        StdRng::seed_from_u64(7)
    }

    fn inst(n: usize, az: &str) -> Candidate {
        Candidate {
            arn: format!("arn:aws:ecs:us-east-1:000000000000:container-instance/c/{n}"),
            ec2_instance_id: format!("i-{n:017x}"),
            status: "ACTIVE".into(),
            agent_connected: true,
            agent_version: "1.80.0".into(),
            registered_at: 1_700_000_000.0,
            attributes: [
                ("ecs.availability-zone".to_string(), Some(az.to_string())),
                (
                    "ecs.instance-type".to_string(),
                    Some("t3.medium".to_string()),
                ),
            ]
            .into_iter()
            .collect(),
            remaining_cpu: 2048,
            remaining_memory: 3936,
            used_tcp_ports: DEFAULT_RESERVED_PORTS.into_iter().collect(),
            used_udp_ports: BTreeSet::new(),
            running_tasks_count: 0,
            task_groups: Vec::new(),
            eni_remaining: None,
        }
    }

    fn demand(count: usize) -> Demand {
        Demand {
            cpu: 256,
            memory: 512,
            group: "family:web".into(),
            count,
            ..Demand::default()
        }
    }

    fn reasons(p: &Placement) -> Vec<(String, String)> {
        p.failures
            .iter()
            .map(|f| {
                (
                    f.arn.rsplit('/').next().unwrap_or("").to_string(),
                    f.reason.clone(),
                )
            })
            .collect()
    }

    fn pair(i: &str, r: &str) -> (String, String) {
        (i.to_string(), r.to_string())
    }

    #[test]
    fn resource_fit_reports_each_missing_resource_per_instance() {
        let mut a = inst(0, "us-east-1a");
        a.remaining_cpu = 100;
        a.remaining_memory = 100;
        let mut b = inst(1, "us-east-1a");
        b.used_udp_ports.insert(53);
        let mut c = inst(2, "us-east-1a");
        c.eni_remaining = Some(0);
        let mut d = demand(1);
        d.tcp_ports = vec![22];
        d.udp_ports = vec![53];
        d.needs_eni = true;
        let p = place(&[a, b, c], &d, &mut rng());
        assert!(p.chosen.is_empty());
        assert_eq!(
            reasons(&p),
            vec![
                pair("0", REASON_CPU),
                pair("0", REASON_MEMORY),
                pair("0", REASON_PORTS),
                pair("1", REASON_PORTS),
                pair("1", REASON_PORTS_UDP),
                pair("2", REASON_PORTS),
                pair("2", REASON_ENI),
            ]
        );
    }

    #[test]
    fn exact_fit_is_accepted_and_partial_placement_reports_the_failed_attempt() {
        let mut a = inst(0, "us-east-1a");
        a.remaining_cpu = 512;
        let p = place(&[a], &demand(3), &mut rng());
        assert_eq!(p.chosen, vec![0, 0]);
        assert_eq!(reasons(&p), vec![pair("0", REASON_CPU)]);
    }

    #[test]
    fn agent_disconnected_and_missing_required_attribute() {
        let mut a = inst(0, "us-east-1a");
        a.agent_connected = false;
        a.remaining_cpu = 0; // AGENT is the only reason reported
        let b = inst(1, "us-east-1a");
        let mut d = demand(1);
        d.required_attributes = vec![("ecs.capability.task-eni".into(), None)];
        let p = place(&[a, b.clone()], &d, &mut rng());
        assert_eq!(
            reasons(&p),
            vec![pair("0", REASON_AGENT), pair("1", REASON_ATTRIBUTE)]
        );
        let mut b2 = b;
        b2.attributes.insert("ecs.capability.task-eni".into(), None);
        let p = place(&[b2], &d, &mut rng());
        assert_eq!(p.chosen, vec![0]);
        // a required value must match
        let mut d2 = demand(1);
        d2.required_attributes = vec![("ecs.os-type".into(), Some("linux".into()))];
        let mut c = inst(2, "us-east-1a");
        c.attributes
            .insert("ecs.os-type".into(), Some("windows".into()));
        assert_eq!(
            reasons(&place(&[c], &d2, &mut rng())),
            vec![pair("2", REASON_ATTRIBUTE)]
        );
    }

    #[test]
    fn draining_instances_get_nothing_and_no_active_instance_is_flagged() {
        let mut a = inst(0, "us-east-1a");
        a.status = "DRAINING".into();
        let b = inst(1, "us-east-1a");
        let p = place(&[a.clone(), b], &demand(3), &mut rng());
        assert_eq!(p.chosen, vec![1, 1, 1]);
        assert!(!p.no_instances());
        let p = place(&[a], &demand(1), &mut rng());
        assert!(p.chosen.is_empty() && p.failures.is_empty());
        assert!(p.no_instances());
        assert!(place(&[], &demand(1), &mut rng()).no_instances());
    }

    #[test]
    fn port_conflicts_with_reserved_ports_and_earlier_tasks_of_the_same_call() {
        let mut d = demand(3);
        d.tcp_ports = vec![80];
        let p = place(&[inst(0, "a"), inst(1, "a")], &d, &mut rng());
        let mut chosen = p.chosen.clone();
        chosen.sort();
        assert_eq!(chosen, vec![0, 1]);
        assert_eq!(
            reasons(&p),
            vec![pair("0", REASON_PORTS), pair("1", REASON_PORTS)]
        );
        d.tcp_ports = vec![51678];
        d.count = 1;
        let p = place(&[inst(0, "a")], &d, &mut rng());
        assert_eq!(reasons(&p), vec![pair("0", REASON_PORTS)]);
        // UDP and TCP are separate
        d.tcp_ports = vec![];
        d.udp_ports = vec![22];
        assert_eq!(place(&[inst(0, "a")], &d, &mut rng()).chosen, vec![0]);
    }

    #[test]
    fn eni_counts_down_within_a_call() {
        let mut a = inst(0, "a");
        a.eni_remaining = Some(2);
        let mut d = demand(3);
        d.needs_eni = true;
        let p = place(&[a], &d, &mut rng());
        assert_eq!(p.chosen, vec![0, 0]);
        assert_eq!(reasons(&p), vec![pair("0", REASON_ENI)]);
    }

    #[test]
    fn binpack_memory_fills_the_fullest_instance_first() {
        let mut a = inst(0, "a");
        a.remaining_memory = 3000;
        let mut b = inst(1, "a");
        b.remaining_memory = 1500; // fullest, room for 2 tasks of 512
        let mut c = inst(2, "a");
        c.remaining_memory = 400; // too small
        let mut d = demand(4);
        d.strategies = vec![Strategy::Binpack(Resource::Memory)];
        let p = place(&[a, b, c], &d, &mut rng());
        assert_eq!(p.chosen, vec![1, 1, 0, 0]);
        assert!(p.failures.is_empty());
    }

    #[test]
    fn binpack_cpu() {
        let mut a = inst(0, "a");
        a.remaining_cpu = 1024;
        let b = inst(1, "a");
        let mut d = demand(5);
        d.strategies = vec![Strategy::Binpack(Resource::Cpu)];
        let p = place(&[a, b], &d, &mut rng());
        assert_eq!(p.chosen, vec![0, 0, 0, 0, 1]);
    }

    #[test]
    fn spread_by_az_balances_six_tasks_two_per_zone() {
        let cands = vec![
            inst(0, "us-east-1a"),
            inst(1, "us-east-1a"),
            inst(2, "us-east-1b"),
            inst(3, "us-east-1c"),
            inst(4, "us-east-1c"),
        ];
        let mut d = demand(6);
        d.strategies = vec![Strategy::Spread(SpreadField::Attribute(
            "ecs.availability-zone".into(),
        ))];
        for seed in 0..20 {
            let p = place(&cands, &d, &mut StdRng::seed_from_u64(seed));
            let mut per_az = BTreeMap::new();
            for &i in &p.chosen {
                let az = cands[i].attributes["ecs.availability-zone"].clone();
                *per_az.entry(az).or_insert(0) += 1;
            }
            assert_eq!(per_az.values().copied().collect::<Vec<_>>(), vec![2, 2, 2]);
        }
    }

    #[test]
    fn spread_counts_existing_tasks_of_the_same_group_only() {
        let mut a = inst(0, "us-east-1a");
        a.task_groups = vec!["family:web".into(), "family:web".into()];
        let mut b = inst(1, "us-east-1b");
        b.task_groups = vec!["family:other".into(); 5];
        let mut d = demand(2);
        d.strategies = vec![Strategy::Spread(SpreadField::Attribute(
            "ecs.availability-zone".into(),
        ))];
        let p = place(&[a, b], &d, &mut rng());
        // b has 0 web tasks: first goes to b, then 1 < 2 still b
        assert_eq!(p.chosen, vec![1, 1]);
    }

    #[test]
    fn spread_by_instance_id_and_host_alias() {
        assert_eq!(
            Strategy::parse("spread", Some("host")),
            Ok(Strategy::Spread(SpreadField::Instance))
        );
        let mut d = demand(6);
        d.strategies =
            vec![Strategy::parse("spread", Some("instanceId")).unwrap_or(Strategy::Random)];
        let p = place(&[inst(0, "a"), inst(1, "a"), inst(2, "b")], &d, &mut rng());
        let mut counts = [0; 3];
        for i in p.chosen {
            counts[i] += 1;
        }
        assert_eq!(counts, [2, 2, 2]);
    }

    #[test]
    fn chained_spread_by_az_then_binpack_memory() {
        let mut a1 = inst(0, "us-east-1a");
        a1.remaining_memory = 3000;
        let mut a2 = inst(1, "us-east-1a");
        a2.remaining_memory = 1100; // fullest in 1a: takes two tasks
        let mut b1 = inst(2, "us-east-1b");
        b1.remaining_memory = 2000;
        let mut b2 = inst(3, "us-east-1b");
        b2.remaining_memory = 1600; // fullest in 1b: takes three tasks
        let mut d = demand(4);
        d.strategies = vec![
            Strategy::Spread(SpreadField::Attribute("ecs.availability-zone".into())),
            Strategy::Binpack(Resource::Memory),
        ];
        let p = place(&[a1, a2, b1, b2], &d, &mut rng());
        let mut chosen = p.chosen.clone();
        chosen.sort();
        assert_eq!(chosen, vec![1, 1, 3, 3]);
    }

    #[test]
    fn service_default_spreads_by_az_then_instance() {
        let cands = vec![inst(0, "a"), inst(1, "a"), inst(2, "b")];
        let mut d = demand(4);
        d.group = "service:web".into();
        d.strategies = Strategy::service_default();
        let p = place(&cands, &d, &mut rng());
        let mut chosen = p.chosen.clone();
        chosen.sort();
        assert_eq!(chosen, vec![0, 1, 2, 2]);
    }

    #[test]
    fn random_default_uses_every_instance_eventually() {
        let cands = vec![inst(0, "a"), inst(1, "a"), inst(2, "a")];
        let mut seen = BTreeSet::new();
        for seed in 0..30 {
            seen.extend(place(&cands, &demand(1), &mut StdRng::seed_from_u64(seed)).chosen);
        }
        assert_eq!(seen.len(), 3);
    }

    #[test]
    fn distinct_instance_counts_existing_and_just_placed_tasks() {
        let mut a = inst(0, "a");
        a.task_groups = vec!["family:web".into()];
        let b = inst(1, "a");
        let c = inst(2, "a");
        let mut d = demand(3);
        d.constraints = vec![Constraint::DistinctInstance];
        let p = place(&[a, b, c], &d, &mut rng());
        let mut chosen = p.chosen.clone();
        chosen.sort();
        assert_eq!(chosen, vec![1, 2]);
        assert_eq!(
            reasons(&p),
            vec![
                pair("0", REASON_DISTINCT),
                pair("1", REASON_DISTINCT),
                pair("2", REASON_DISTINCT),
            ]
        );
    }

    #[test]
    fn member_of_filters_and_reports() {
        let a = inst(0, "us-east-1a");
        let b = inst(1, "us-east-1b");
        let mut full = inst(2, "us-east-1b");
        full.remaining_memory = 0; // resources fail first: not reported as MemberOf
        let mut d = demand(2);
        d.constraints = vec![Constraint::MemberOf(
            "attribute:ecs.availability-zone == us-east-1b".into(),
        )];
        let p = place(&[a.clone(), b, full.clone()], &d, &mut rng());
        assert_eq!(p.chosen, vec![1, 1]);
        let p = place(&[a, full], &d, &mut rng());
        assert_eq!(
            reasons(&p),
            vec![pair("0", REASON_MEMBER_OF), pair("2", REASON_MEMORY)]
        );
    }

    #[test]
    fn member_of_sees_groups_placed_in_the_same_call() {
        let mut d = demand(2);
        d.constraints = vec![Constraint::MemberOf("not(task:group == family:web)".into())];
        let p = place(&[inst(0, "a")], &d, &mut rng());
        assert_eq!(p.chosen, vec![0]);
        assert_eq!(reasons(&p), vec![pair("0", REASON_MEMBER_OF)]);
    }

    #[test]
    fn constraint_and_strategy_parsing() {
        assert_eq!(
            Constraint::parse("distinctInstance", None),
            Ok(Constraint::DistinctInstance)
        );
        assert!(Constraint::parse("memberOf", None).is_err());
        assert!(Constraint::parse("memberOf", Some("attribute:x ==")).is_err());
        assert!(Constraint::parse("sameInstance", None).is_err());
        assert_eq!(
            Constraint::parse("memberOf", Some("runningTasksCount == 1")),
            Ok(Constraint::MemberOf("runningTasksCount == 1".into()))
        );
        assert_eq!(Strategy::parse("random", None), Ok(Strategy::Random));
        assert_eq!(
            Strategy::parse("binpack", Some("MEMORY")),
            Ok(Strategy::Binpack(Resource::Memory))
        );
        assert!(Strategy::parse("binpack", Some("disk")).is_err());
        assert!(Strategy::parse("binpack", None).is_err());
        assert!(Strategy::parse("spread", Some("ecs.availability-zone")).is_err());
        assert!(Strategy::parse("spread", Some("attribute:")).is_err());
        assert!(Strategy::parse("pack", None).is_err());
    }

    #[test]
    fn scale_in_reverses_spread_and_binpack() {
        let mut a1 = inst(0, "us-east-1a");
        a1.task_groups = vec!["service:web".into(); 2];
        let mut a2 = inst(1, "us-east-1a");
        a2.task_groups = vec!["service:web".into()];
        let mut b = inst(2, "us-east-1b");
        b.task_groups = vec!["service:web".into()];
        let mut d = demand(2);
        d.group = "service:web".into();
        d.strategies = Strategy::service_default();
        let stop = choose_to_stop(&[a1.clone(), a2.clone(), b.clone()], &d, &mut rng());
        // 1a has 3, 1b has 1: both stops come from 1a, first from its busiest instance
        assert_eq!(stop[0], 0);
        assert!(stop[1] == 0 || stop[1] == 1);
        d.strategies = vec![Strategy::Binpack(Resource::Memory)];
        a1.remaining_memory = 100;
        a2.remaining_memory = 3000;
        let stop = choose_to_stop(&[a1, a2, b], &d, &mut rng());
        assert_eq!(stop, vec![2, 1]);
        d.count = 10;
        let mut e = inst(3, "a");
        e.task_groups = vec!["service:web".into()];
        assert_eq!(choose_to_stop(&[e], &d, &mut rng()), vec![0]);
    }
}
