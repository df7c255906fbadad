//! The EC2 Auto Scaling controller: keeps every group at its desired capacity on the emulator
//! clock. Each pass (on a change, and every emulated second) it moves each group's instances
//! through their lifecycle (Pending → Pending:Wait → InService → Terminating → Terminating:Wait →
//! Terminating:Proceed → gone), replaces unhealthy ones (EC2 state, ELB target health after the
//! grace period), launches and terminates instances through the typed EC2 handle with AZ
//! balancing and the termination policies, registers instances in the group's target groups,
//! runs scheduled actions and instance refreshes, and records activities.
//!
//! Decisions are made inside one transaction on the group row (pure: no I/O); EC2 and ELB calls
//! happen after it, and their results are written in a second transaction.

use crate::clock::Clock;
use crate::services::autoscaling::activities::{new_activity, save_in, update_activity};
use crate::services::autoscaling::groups::subnet_id;
use crate::services::autoscaling::hooks::{LAUNCHING, TERMINATING};
use crate::services::autoscaling::instances::start_termination;
use crate::services::autoscaling::model::{iso, Activity, Group, HookWait, LtSpec, Member};
use crate::services::autoscaling::{launch_configs, misc, scheduled, AutoScaling};
use crate::services::ec2::Instance;
use crate::services::elbv2::targets::TargetSpec;
use crate::services::input::Input;
use crate::services::Ctx;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

/// Emulated seconds before a failed launch is retried.
const LAUNCH_RETRY_S: f64 = 10.0;

pub struct AutoScalingController {
    asg: Arc<AutoScaling>,
    clock: Clock,
}

/// One instance to launch.
#[derive(Debug, Clone)]
struct LaunchReq {
    az: String,
    subnet: String,
    spot: bool,
    instance_type: Option<String>,
    weighted: Option<String>,
    template: Option<Value>,
}

/// What a pass decided for a group, carried out after the transaction.
#[derive(Default, Debug)]
struct Effects {
    launches: Vec<LaunchReq>,
    launch_cause: String,
    terminate: Vec<String>,
    register: Vec<String>,
    deregister: Vec<String>,
    new_activities: Vec<Activity>,
    /// (activity id, status, description suffix or message)
    finished: Vec<(String, &'static str, Option<String>)>,
    remove_group: bool,
}

fn scope_of(g: &Group) -> String {
    format!("{}/{}/", g.account, g.region)
}

impl AutoScalingController {
    pub fn new(asg: Arc<AutoScaling>, clock: Clock) -> AutoScalingController {
        AutoScalingController { asg, clock }
    }

    pub async fn run(self) {
        let pause = self
            .clock
            .real(Duration::from_secs(1))
            .clamp(Duration::from_millis(20), Duration::from_secs(1));
        loop {
            self.pass(self.clock.now());
            tokio::select! {
                _ = self.asg.wake.notified() => {}
                _ = tokio::time::sleep(pause) => {}
            }
        }
    }

    /// One reconciliation of every group (public for tests).
    pub fn pass(&self, now: f64) {
        scheduled::run_due(&self.asg, now);
        let ec2 = &self.asg.ec2;
        let mut by_scope: HashMap<String, HashMap<String, Instance>> = HashMap::new();
        for (_, g) in self.asg.all_groups() {
            let scope = scope_of(&g);
            let instances = by_scope.entry(scope.clone()).or_insert_with(|| {
                ec2.instances(&g.account, &g.region, now)
                    .into_iter()
                    .map(|i| (i.instance_id.clone(), i))
                    .collect()
            });
            self.reconcile(&scope, &g, instances, now);
        }
    }

    /// Instances failing ELB health checks in any of the group's target groups.
    fn elb_unhealthy(&self, g: &Group) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        let elb = &self.asg.elbv2;
        if g.health_check_type != "ELB" {
            return out;
        }
        for arn in &g.target_groups {
            if let Ok(hs) = elb.target_health(&g.account, &g.region, arn) {
                out.extend(
                    hs.into_iter()
                        .filter(|h| h.state == "unhealthy")
                        .map(|h| h.id),
                );
            }
        }
        out
    }

    fn reconcile(&self, scope: &str, g: &Group, instances: &HashMap<String, Instance>, now: f64) {
        let unhealthy = self.elb_unhealthy(g);
        let refresh = misc::refresh_step(&self.asg, scope, g, now);
        let key = format!("{scope}{}", g.name);
        let decided = self
            .asg
            .groups
            .transact::<_, crate::store::StoreError, _>(|t| {
                let Some(stored) = t.get(&key).cloned() else {
                    return Ok(None);
                };
                let mut g = stored.clone();
                let fx = plan(&mut g, instances, &unhealthy, &refresh, now);
                if fx.remove_group {
                    t.remove(&key);
                } else if g != stored {
                    t.put(&key, g.clone());
                }
                Ok(Some((g, fx)))
            });
        let Ok(Some((g, fx))) = decided else {
            return;
        };
        self.carry_out(scope, &g, fx, now);
    }

    fn carry_out(&self, scope: &str, g: &Group, fx: Effects, now: f64) {
        let _ = save_in(&self.asg, scope, &fx.new_activities);
        for (id, status, message) in &fx.finished {
            update_activity(&self.asg, scope, &g.name, id, |a| {
                a.status = status.to_string();
                if matches!(*status, "Successful" | "Failed" | "Cancelled") {
                    a.end = Some(now);
                    a.progress = 100;
                } else {
                    a.progress = 50;
                }
                if let Some(m) = message {
                    a.message = Some(m.clone());
                }
            });
        }
        let ctx = Ctx {
            account: g.account.clone(),
            region: g.region.clone(),
            request_id: uuid::Uuid::new_v4().to_string(),
            now,
            access_key: None,
        };
        if !fx.terminate.is_empty() {
            if let Err(e) = self.asg.ec2.terminate(&ctx, &fx.terminate) {
                tracing::warn!(group = %g.name, error = %e.message, "terminating instances");
            }
        }
        self.targets(g, &fx.deregister, false);
        self.targets(g, &fx.register, true);
        if !fx.launches.is_empty() {
            self.launch(scope, g, &ctx, &fx.launches, &fx.launch_cause);
        }
    }

    /// Registers (or deregisters) instances in every target group of the group.
    fn targets(&self, g: &Group, ids: &[String], register: bool) {
        let elb = &self.asg.elbv2;
        if ids.is_empty() {
            return;
        }
        for arn in &g.target_groups {
            let Some(tg) = elb.group_by_arn(arn) else {
                continue;
            };
            let specs: Vec<TargetSpec> = ids
                .iter()
                .map(|id| TargetSpec {
                    id: id.clone(),
                    port: tg.port,
                    availability_zone: None,
                })
                .collect();
            let r = if register {
                elb.register_targets(&g.account, &g.region, arn, &specs)
            } else {
                elb.deregister_targets(&g.account, &g.region, arn, &specs)
            };
            if let Err(e) = r {
                tracing::warn!(group = %g.name, target_group = %arn, error = %e.message, "target registration");
            }
        }
    }

    fn launch(&self, scope: &str, g: &Group, ctx: &Ctx, reqs: &[LaunchReq], cause: &str) {
        let (members, acts, error) = launch_members(&self.asg, scope, g, ctx, reqs, cause);
        let _ = save_in(&self.asg, scope, &acts);
        let key = format!("{scope}{}", g.name);
        let _ = self
            .asg
            .groups
            .transact::<_, crate::store::StoreError, _>(|t| {
                let Some(mut stored) = t.get(&key).cloned() else {
                    return Ok(());
                };
                for m in &members {
                    stored.instances.insert(m.id.clone(), m.clone());
                }
                if error.is_some() {
                    stored.retry_after = ctx.now + LAUNCH_RETRY_S;
                }
                t.put(&key, stored);
                Ok(())
            });
    }
}

/// Launches `reqs` through EC2 (stopping at the first failure); returns the new members, their
/// activities (not saved yet) and the failure. The caller adds the members to the group.
fn launch_members(
    asg: &AutoScaling,
    scope: &str,
    g: &Group,
    ctx: &Ctx,
    reqs: &[LaunchReq],
    cause: &str,
) -> (Vec<Member>, Vec<Activity>, Option<String>) {
    let ec2 = &asg.ec2;
    let system_tags = BTreeMap::from([("aws:autoscaling:groupName".to_string(), g.name.clone())]);
    let mut members = Vec::new();
    let mut acts = Vec::new();
    let mut failed = None;
    for req in reqs {
        let details = json!({"Subnet ID": subnet_id(&req.subnet), "Availability Zone": req.az});
        match ec2.launch(ctx, launch_input(asg, scope, g, req), &system_tags) {
            Ok(launched) => {
                for i in launched {
                    let a = new_activity(
                        &g.name,
                        &g.arn,
                        format!("Launching a new EC2 instance: {}", i.instance_id),
                        cause.to_string(),
                        ctx.now,
                        "PreInService",
                        details.clone(),
                    );
                    members.push(Member {
                        id: i.instance_id.clone(),
                        az: i.availability_zone.clone(),
                        subnet: req.subnet.clone(),
                        state: "Pending".into(),
                        health: "Healthy".into(),
                        protected: g.protect_new,
                        launch_template: i.launch_template.as_ref().map(|r| LtSpec {
                            id: r.id.clone(),
                            name: r.name.clone(),
                            version: r.version.to_string(),
                        }),
                        launch_configuration: g.launch_configuration.clone(),
                        instance_type: i.instance_type.clone(),
                        image_id: i.image_id.clone(),
                        launched: ctx.now,
                        since: ctx.now,
                        wait: None,
                        spot: i.instance_lifecycle.as_deref() == Some("spot"),
                        weighted_capacity: req.weighted.clone(),
                        activity: Some(a.id.clone()),
                        replace: false,
                        unhealthy_reason: None,
                        registered: false,
                    });
                    acts.push(a);
                }
            }
            Err(e) => {
                let mut a = new_activity(
                    &g.name,
                    &g.arn,
                    "Launching a new EC2 instance.  Status Reason: ".to_string() + &e.message,
                    cause.to_string(),
                    ctx.now,
                    "Failed",
                    details,
                );
                a.message = Some(e.message.clone());
                acts.push(a);
                failed = Some(e.message.clone());
                break;
            }
        }
    }
    (members, acts, failed)
}

/// What LaunchInstances launched: the members, and the failure (with where it was tried).
pub struct Launched {
    pub members: Vec<Member>,
    pub error: Option<LaunchError>,
}

pub struct LaunchError {
    pub subnet: String,
    pub az: String,
    pub spot: bool,
    pub message: String,
}

/// LaunchInstances: `n` instances launched now into the group (only in `zone` when given),
/// balanced and split On-Demand/Spot like the group's own launches. The desired capacity grows by
/// the number launched, or by `n` when `retry` (RetryStrategy retry-with-group-configuration:
/// the group launches the rest itself).
pub fn launch_now(
    asg: &AutoScaling,
    ctx: &Ctx,
    group: &str,
    n: usize,
    zone: Option<&str>,
    retry: bool,
) -> Result<Launched, crate::protocol::AwsError> {
    let scope = ctx.scope();
    let g = asg.group(&scope, group)?;
    let mut within = g.clone();
    if let Some(z) = zone {
        within.zones.retain(|x| x == z);
    }
    let reqs = launch_requests(&within, n);
    let cause = format!(
        "At {} an instance was started in response to a user request to launch instances.",
        iso(ctx.now)
    );
    let (members, acts, failed) = launch_members(asg, &scope, &g, ctx, &reqs, &cause);
    let _ = save_in(asg, &scope, &acts);
    let grow = if retry { n } else { members.len() } as i64;
    asg.update_group(&scope, group, |stored| {
        for m in &members {
            stored.instances.insert(m.id.clone(), m.clone());
        }
        stored.desired = (stored.desired + grow).min(stored.max);
        Ok(())
    })?;
    let error = failed.map(|message| {
        let req = reqs.get(members.len()).or(reqs.first());
        LaunchError {
            subnet: req
                .map(|r| subnet_id(&r.subnet).to_string())
                .unwrap_or_default(),
            az: req.map(|r| r.az.clone()).unwrap_or_default(),
            spot: req.is_some_and(|r| r.spot),
            message,
        }
    });
    Ok(Launched { members, error })
}

/// RunInstances input for one instance of the group.
fn launch_input(asg: &AutoScaling, scope: &str, g: &Group, req: &LaunchReq) -> Value {
    let mut input = match (&g.launch_template, &g.launch_configuration, &req.template) {
        (_, _, Some(t)) => json!({"LaunchTemplate": t}),
        (Some(lt), _, _) => {
            json!({"LaunchTemplate": {"LaunchTemplateId": lt.id, "Version": lt.version}})
        }
        (None, Some(lc), _) => asg
            .launch_configs
            .get(&format!("{scope}{lc}"))
            .map(|lc| launch_configs::run_input(&lc))
            .unwrap_or(json!({})),
        _ => json!({}),
    };
    input["MinCount"] = json!(1);
    input["MaxCount"] = json!(1);
    input["SubnetId"] = json!(subnet_id(&req.subnet));
    if let Some(t) = &req.instance_type {
        input["InstanceType"] = json!(t);
    }
    if req.spot {
        input["InstanceMarketOptions"] = json!({"MarketType": "spot"});
    }
    let tags: Vec<Value> = g
        .tags
        .iter()
        .filter(|t| t.propagate)
        .map(|t| json!({"Key": t.key, "Value": t.value}))
        .collect();
    if !tags.is_empty() {
        input["TagSpecifications"] = json!([{"ResourceType": "instance", "Tags": tags}]);
    }
    input
}

fn is_gone(i: Option<&Instance>) -> bool {
    i.is_none_or(|i| matches!(i.state.as_str(), "terminated" | "shutting-down"))
}

fn wait_for(g: &Group, transition: &str, now: f64) -> Option<HookWait> {
    let hook = g.hooks.values().find(|h| h.transition == transition)?;
    Some(HookWait {
        hook: hook.name.clone(),
        token: uuid::Uuid::new_v4().to_string(),
        deadline: now + hook.heartbeat_timeout as f64,
        global_deadline: now + hook.global_timeout() as f64,
        result: None,
    })
}

/// The lifecycle hook result that applies now: the one completed, else the default at the
/// heartbeat or global timeout.
fn hook_result(g: &Group, w: &HookWait, now: f64) -> Option<String> {
    if let Some(r) = &w.result {
        return Some(r.clone());
    }
    if now >= w.deadline || now >= w.global_deadline {
        return Some(
            g.hooks
                .get(&w.hook)
                .map(|h| h.default_result.clone())
                .unwrap_or_else(|| "ABANDON".into()),
        );
    }
    None
}

/// Decides one pass for a group (pure): lifecycle transitions, health replacements, the
/// capacity difference. Mutates the group; returns what to carry out.
fn plan(
    g: &mut Group,
    instances: &HashMap<String, Instance>,
    elb_unhealthy: &BTreeSet<String>,
    refresh: &[String],
    now: f64,
) -> Effects {
    let mut fx = Effects::default();
    let ids: Vec<String> = g.instances.keys().cloned().collect();
    let t = iso(now);
    for id in &ids {
        let ec2 = instances.get(id);
        let Some(mut m) = g.instances.get(id).cloned() else {
            continue;
        };
        match m.state.as_str() {
            "Pending" => {
                if is_gone(ec2) {
                    m.health = "Unhealthy".into();
                    m.unhealthy_reason = Some(
                        "an EC2 health check indicating it has been terminated or stopped".into(),
                    );
                } else if ec2.is_some_and(|i| i.state == "running") {
                    if let Some(w) = (!g.deleting).then(|| wait_for(g, LAUNCHING, now)).flatten() {
                        m.state = "Pending:Wait".into();
                        m.wait = Some(w);
                        if let Some(a) = &m.activity {
                            fx.finished.push((a.clone(), "MidLifecycleAction", None));
                        }
                    } else {
                        m.state = "InService".into();
                        if let Some(a) = m.activity.take() {
                            fx.finished.push((a, "Successful", None));
                        }
                    }
                    m.since = now;
                }
            }
            "Pending:Wait" => {
                let result = m.wait.as_ref().and_then(|w| hook_result(g, w, now));
                match result.as_deref() {
                    Some("CONTINUE") => {
                        m.state = "InService".into();
                        m.since = now;
                        m.wait = None;
                        if let Some(a) = m.activity.take() {
                            fx.finished.push((a, "Successful", None));
                        }
                    }
                    Some(_) => {
                        let token = m.wait.as_ref().map(|w| w.token.clone()).unwrap_or_default();
                        if let Some(a) = m.activity.take() {
                            fx.finished.push((a, "Cancelled", Some(format!("Instance failed to complete user's Lifecycle Action: Lifecycle Action with token {token} was abandoned: Lifecycle Action Completed with ABANDON Result"))));
                        }
                        m.health = "Unhealthy".into();
                        m.unhealthy_reason = Some("a lifecycle action that was abandoned".into());
                    }
                    None => {}
                }
            }
            "InService" => {
                if is_gone(ec2) || ec2.is_some_and(|i| i.state != "running") {
                    if m.health == "Healthy" {
                        m.health = "Unhealthy".into();
                        m.unhealthy_reason = Some(
                            "an EC2 health check indicating it has been terminated or stopped"
                                .into(),
                        );
                    }
                } else if elb_unhealthy.contains(id)
                    && now >= m.launched + g.health_check_grace_period as f64
                    && m.health == "Healthy"
                {
                    m.health = "Unhealthy".into();
                    m.unhealthy_reason = Some("an ELB system health check failure".into());
                }
                if !m.registered
                    && !g.target_groups.is_empty()
                    && !g.suspended("AddToLoadBalancer")
                    && m.health == "Healthy"
                {
                    m.registered = true;
                    fx.register.push(id.clone());
                }
            }
            "Terminating" => {
                if m.registered {
                    fx.deregister.push(id.clone());
                    m.registered = false;
                }
                if let Some(w) = (!g.deleting)
                    .then(|| wait_for(g, TERMINATING, now))
                    .flatten()
                {
                    m.state = "Terminating:Wait".into();
                    m.wait = Some(w);
                    if let Some(a) = &m.activity {
                        fx.finished.push((a.clone(), "MidLifecycleAction", None));
                    }
                } else {
                    m.state = "Terminating:Proceed".into();
                    if ec2.is_some_and(|i| !is_gone(Some(i))) {
                        fx.terminate.push(id.clone());
                    }
                }
                m.since = now;
            }
            "Terminating:Wait" => {
                let done = g.deleting
                    || m.wait
                        .as_ref()
                        .and_then(|w| hook_result(g, w, now))
                        .is_some();
                if done {
                    m.state = "Terminating:Proceed".into();
                    m.since = now;
                    m.wait = None;
                    if ec2.is_some_and(|i| !is_gone(Some(i))) {
                        fx.terminate.push(id.clone());
                    }
                    if let Some(a) = &m.activity {
                        fx.finished.push((a.clone(), "InProgress", None));
                    }
                }
            }
            "Terminating:Proceed" => {
                if ec2.is_none_or(|i| i.state == "terminated") {
                    if let Some(a) = m.activity.take() {
                        fx.finished.push((a, "Successful", None));
                    }
                    g.instances.remove(id);
                    continue;
                }
                if ec2.is_some_and(|i| i.state != "shutting-down") {
                    fx.terminate.push(id.clone());
                }
            }
            "Standby" | "Detaching" if is_gone(ec2) => {
                g.instances.remove(id);
                continue;
            }
            _ => {}
        }
        // Unhealthy instances are replaced (unless ReplaceUnhealthy is suspended).
        let replace_ok = !g.suspended("ReplaceUnhealthy") && !g.suspended("HealthCheck");
        if m.health == "Unhealthy" && m.counts() && replace_ok {
            let reason = m
                .unhealthy_reason
                .clone()
                .unwrap_or_else(|| "a health check".into());
            g.instances.insert(id.clone(), m);
            let cause =
                format!("At {t} an instance was taken out of service in response to {reason}.");
            if let Some(a) = start_termination(g, id, now, cause, true) {
                fx.new_activities.push(a);
            }
            if let Some(mm) = g.instances.get(id) {
                if mm.registered {
                    fx.deregister.push(id.clone());
                }
            }
            if let Some(mm) = g.instances.get_mut(id) {
                mm.registered = false;
            }
            continue;
        }
        g.instances.insert(id.clone(), m);
    }
    for id in refresh {
        let cause = format!(
            "At {t} an instance was taken out of service in response to an instance refresh."
        );
        if let Some(a) = start_termination(g, id, now, cause, true) {
            fx.new_activities.push(a);
        }
    }
    if g.deleting && g.instances.is_empty() {
        fx.remove_group = true;
        return fx;
    }
    let active = g.capacity();
    if active < g.desired && !g.suspended("Launch") && now >= g.retry_after {
        fx.launches = launch_requests(g, (g.desired - active) as usize);
        fx.launch_cause = format!(
            "{}  At {t} an instance was started in response to a difference between desired and actual capacity, increasing the capacity from {active} to {}.",
            g.cause, g.desired
        )
        .trim_start()
        .to_string();
    } else if active > g.desired && !g.suspended("Terminate") {
        if g.rebalancing && launching(g) {
            // The rebalancing launch first goes in service.
            return fx;
        }
        let victims = choose_victims(g, (active - g.desired) as usize);
        let cause = if std::mem::take(&mut g.rebalancing) {
            format!("At {t} an instance was taken out of service to aid in balancing the group's zones.")
        } else {
            format!(
                "{}  At {t} an instance was taken out of service in response to a difference between desired and actual capacity, shrinking the capacity from {active} to {}.",
                g.cause, g.desired
            )
            .trim_start()
            .to_string()
        };
        for id in victims {
            if let Some(a) = start_termination(g, &id, now, cause.clone(), false) {
                fx.new_activities.push(a);
            }
        }
    } else if active == g.desired && rebalance_due(g, now) {
        fx.launches = launch_requests(g, 1);
        fx.launch_cause =
            format!("At {t} an instance was launched to aid in balancing the group's zones.");
        g.rebalancing = !fx.launches.is_empty();
    }
    fx
}

/// Members still on their way in service.
fn launching(g: &Group) -> bool {
    g.instances.values().any(|m| m.state.starts_with("Pending"))
}

/// AZRebalance: the group's zones hold a different number of instances by more than one, and
/// nothing is launching or terminating. AWS launches in the zone with the fewest before it
/// terminates in the zone with the most, so capacity never drops.
fn rebalance_due(g: &Group, now: f64) -> bool {
    if g.suspended("AZRebalance") || g.suspended("Launch") || g.suspended("Terminate") {
        return false;
    }
    if g.deleting
        || now < g.retry_after
        || launching(g)
        || g.instances.values().any(|m| m.terminating())
    {
        return false;
    }
    let counts = per_zone(g);
    let (Some(most), Some(fewest)) = (counts.values().max(), counts.values().min()) else {
        return false;
    };
    // Only instances that may be terminated can be moved.
    most - fewest > 1 && g.instances.values().any(|m| m.counts() && !m.protected)
}

/// Members counting towards capacity per zone of the group.
fn per_zone(g: &Group) -> BTreeMap<String, usize> {
    let mut counts: BTreeMap<String, usize> = g.zones.iter().map(|z| (z.clone(), 0)).collect();
    for m in g.instances.values().filter(|m| m.counts()) {
        *counts.entry(m.az.clone()).or_default() += 1;
    }
    counts
}

/// `n` launches balanced over the group's zones (fewest instances first), with the mixed
/// instances policy's On-Demand/Spot split and instance type overrides.
fn launch_requests(g: &Group, n: usize) -> Vec<LaunchReq> {
    let mut counts = per_zone(g);
    let subnet_of = |az: &str| {
        g.subnets
            .iter()
            .find(|s| zone_of_subnet(g, s) == Some(az))
            .cloned()
    };
    let mixed = g.mixed_instances_policy.as_ref();
    let dist = mixed.and_then(|p| p.get("InstancesDistribution"));
    let base = dist
        .and_then(|d| d.i64("OnDemandBaseCapacity"))
        .unwrap_or(0);
    let pct = dist
        .and_then(|d| d.i64("OnDemandPercentageAboveBaseCapacity"))
        .unwrap_or(100);
    let overrides: Vec<Value> = mixed
        .and_then(|p| p.get("LaunchTemplate"))
        .and_then(|l| l.get("Overrides"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let template = mixed
        .and_then(|p| p.get("LaunchTemplate"))
        .and_then(|l| l.get("LaunchTemplateSpecification"))
        .cloned();
    let mut on_demand = g
        .instances
        .values()
        .filter(|m| m.counts() && !m.spot)
        .count() as i64;
    let mut spot_by_type: BTreeMap<String, usize> = BTreeMap::new();
    for m in g.instances.values().filter(|m| m.counts() && m.spot) {
        *spot_by_type.entry(m.instance_type.clone()).or_default() += 1;
    }
    let mut total = g.capacity();
    let mut out = Vec::new();
    for _ in 0..n {
        let Some(az) = counts
            .iter()
            .min_by_key(|(z, c)| (**c, (*z).clone()))
            .map(|(z, _)| z.clone())
        else {
            break;
        };
        *counts.entry(az.clone()).or_default() += 1;
        total += 1;
        let Some(subnet) = subnet_of(&az) else {
            continue;
        };
        let want_od =
            total.min(base) + (((total - base).max(0) * pct) as f64 / 100.0).ceil() as i64;
        let spot = mixed.is_some() && on_demand >= want_od;
        if !spot {
            on_demand += 1;
        }
        // On-Demand: the first override (prioritized); Spot: the least used type.
        let chosen = if spot {
            overrides
                .iter()
                .min_by_key(|o| {
                    spot_by_type
                        .get(o.str("InstanceType").unwrap_or_default())
                        .copied()
                        .unwrap_or(0)
                })
                .cloned()
        } else {
            overrides.first().cloned()
        };
        if spot {
            if let Some(t) = chosen.as_ref().and_then(|o| o.str("InstanceType")) {
                *spot_by_type.entry(t.to_string()).or_default() += 1;
            }
        }
        out.push(LaunchReq {
            az,
            subnet,
            spot,
            instance_type: chosen.as_ref().and_then(|o| o.str("InstanceType").map(str::to_string)),
            weighted: chosen.as_ref().and_then(|o| o.str("WeightedCapacity").map(str::to_string)),
            template: chosen
                .as_ref()
                .and_then(|o| o.get("LaunchTemplateSpecification").cloned())
                .or_else(|| template.clone())
                .map(|t| {
                    // EC2 takes the id or the name, not both.
                    let id = t.str("LaunchTemplateId").filter(|s| !s.is_empty());
                    let version = t.str("Version").unwrap_or("$Default");
                    match id {
                        Some(id) => json!({"LaunchTemplateId": id, "Version": version}),
                        None => json!({"LaunchTemplateName": t.str("LaunchTemplateName"), "Version": version}),
                    }
                }),
        });
    }
    out
}

/// A subnet's zone: the zone of the members launched in it, else the group's zone at the same
/// position (subnets and zones are recorded together at create time).
fn zone_of_subnet<'a>(g: &'a Group, subnet: &str) -> Option<&'a str> {
    g.subnet_zones.get(subnet).map(String::as_str)
}

/// `n` instances to terminate on scale-in: never protected ones; from the zone with the most
/// instances, then by the termination policies.
fn choose_victims(g: &Group, n: usize) -> Vec<String> {
    let mut counts = per_zone(g);
    let mut candidates: Vec<Member> = g
        .instances
        .values()
        .filter(|m| m.counts() && !m.protected)
        .cloned()
        .collect();
    let policies = if g.termination_policies.is_empty() {
        vec!["Default".to_string()]
    } else {
        g.termination_policies.clone()
    };
    let mut out = Vec::new();
    for _ in 0..n {
        // The zone with the most instances among those with a candidate.
        let Some(zone) = counts
            .iter()
            .filter(|(z, _)| candidates.iter().any(|m| &&m.az == z))
            .max_by_key(|(z, c)| (**c, std::cmp::Reverse((*z).clone())))
            .map(|(z, _)| z.clone())
        else {
            break;
        };
        let mut in_zone: Vec<&Member> = candidates.iter().filter(|m| m.az == zone).collect();
        in_zone.sort_by(|a, b| order(&policies, g, a, b));
        let Some(pick) = in_zone.first().map(|m| m.id.clone()) else {
            break;
        };
        if let Some(c) = counts.get_mut(&zone) {
            *c = c.saturating_sub(1);
        }
        candidates.retain(|m| m.id != pick);
        out.push(pick);
    }
    out
}

/// Orders two candidates by the termination policies: the first one that tells them apart.
fn order(policies: &[String], g: &Group, a: &Member, b: &Member) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let version = |m: &Member| -> i64 {
        m.launch_template
            .as_ref()
            .and_then(|l| l.version.parse().ok())
            .unwrap_or(i64::MAX)
    };
    // Time to the next instance hour (billing hour since launch).
    let to_hour = |m: &Member| 3600.0 - (g.created.max(m.launched) - m.launched).rem_euclid(3600.0);
    for p in policies {
        let o = match p.as_str() {
            "OldestInstance" => a.launched.total_cmp(&b.launched),
            "NewestInstance" => b.launched.total_cmp(&a.launched),
            "OldestLaunchTemplate" | "OldestLaunchConfiguration" => {
                // Instances of a template other than the group's current one go first, then
                // older versions.
                let current = |m: &Member| {
                    m.launch_template.as_ref().map(|l| l.id.as_str())
                        == g.launch_template.as_ref().map(|l| l.id.as_str())
                };
                current(a)
                    .cmp(&current(b))
                    .then(version(a).cmp(&version(b)))
            }
            "ClosestToNextInstanceHour" => to_hour(a).total_cmp(&to_hour(b)),
            "AllocationStrategy" => b.spot.cmp(&a.spot),
            // Default: oldest launch template/configuration, then closest to the next instance
            // hour, then at random (here: the lower id, for determinism).
            _ => {
                let current = |m: &Member| {
                    m.launch_template.as_ref().map(|l| l.id.as_str())
                        == g.launch_template.as_ref().map(|l| l.id.as_str())
                };
                current(a)
                    .cmp(&current(b))
                    .then(version(a).cmp(&version(b)))
                    .then(to_hour(a).total_cmp(&to_hour(b)))
            }
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    a.id.cmp(&b.id)
}
