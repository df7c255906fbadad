//! Capacity providers backed by EC2 Auto Scaling groups: CreateCapacityProvider,
//! DescribeCapacityProviders, UpdateCapacityProvider, DeleteCapacityProvider; the managed
//! scaling policy ECS puts on the group when the provider joins a cluster
//! (PutClusterCapacityProviders), and the strategy split (base, then weight).

use super::Ecs;
use crate::protocol::codes;
use crate::protocol::AwsError;
use crate::services::autoscaling::policies::ECS_MANAGED_PREFIX;
use crate::services::input::Input;
use crate::services::{Ctx, HandlerResult, Registry};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::sync::Arc;

/// The lifecycle hook managed draining puts on the group.
pub const MANAGED_DRAINING_HOOK: &str = "ecs-managed-draining-termination-hook";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CapacityProvider {
    pub name: String,
    pub arn: String,
    /// ACTIVE or INACTIVE (deleted, still describable).
    pub status: String,
    pub asg_arn: String,
    /// The group's name (from its ARN).
    pub asg_name: String,
    /// managedScaling with ECS's defaults filled in.
    pub managed_scaling: Value,
    pub managed_termination_protection: String,
    pub managed_draining: String,
    pub update_status: String,
    #[serde(default)]
    pub tags: Vec<super::model::Tag>,
    /// The cluster it is associated with, and the scaling policy ECS put on the group for it.
    #[serde(default)]
    pub cluster: Option<String>,
    #[serde(default)]
    pub policy: Option<String>,
}

impl CapacityProvider {
    pub fn to_json(&self) -> Value {
        json!({
            "capacityProviderArn": self.arn,
            "name": self.name,
            "status": self.status,
            "autoScalingGroupProvider": {
                "autoScalingGroupArn": self.asg_arn,
                "managedScaling": self.managed_scaling,
                "managedTerminationProtection": self.managed_termination_protection,
                "managedDraining": self.managed_draining,
            },
            "updateStatus": self.update_status,
            "tags": self.tags,
            "type": "EC2_AUTOSCALING",
        })
    }

    pub fn managed_scaling_enabled(&self) -> bool {
        self.managed_scaling.str("status") == Some("ENABLED")
    }

    pub fn target_capacity(&self) -> f64 {
        self.managed_scaling
            .get("targetCapacity")
            .and_then(Value::as_f64)
            .unwrap_or(100.0)
    }
}

pub fn register(r: &mut Registry, ecs: &Arc<Ecs>) {
    r.sync("ecs", "CreateCapacityProvider", ecs, create);
    r.sync("ecs", "DescribeCapacityProviders", ecs, describe);
    r.sync("ecs", "UpdateCapacityProvider", ecs, update);
    r.sync("ecs", "DeleteCapacityProvider", ecs, delete);
}

fn client(msg: impl Into<String>) -> AwsError {
    AwsError::new(codes::ecs::ClientException, msg)
}

fn invalid(msg: impl Into<String>) -> AwsError {
    AwsError::new(codes::ecs::InvalidParameterException, msg)
}

fn key(scope: &str, name: &str) -> String {
    format!("{scope}{name}")
}

fn managed_scaling(given: Option<&Value>, base: Option<&Value>) -> Result<Value, AwsError> {
    let mut m = base.cloned().unwrap_or_else(|| {
        json!({
            "status": "DISABLED",
            "targetCapacity": 100,
            "minimumScalingStepSize": 1,
            "maximumScalingStepSize": 10000,
            "instanceWarmupPeriod": 300,
        })
    });
    if let (Some(o), Some(g)) = (m.as_object_mut(), given.and_then(Value::as_object)) {
        for (k, v) in g {
            o.insert(k.clone(), v.clone());
        }
    }
    let min = m.i64("minimumScalingStepSize").unwrap_or(1);
    let max = m.i64("maximumScalingStepSize").unwrap_or(10000);
    if min > max {
        return Err(invalid(
            "The minimumScalingStepSize must be less than or equal to the maximumScalingStepSize.",
        ));
    }
    Ok(m)
}

impl Ecs {
    fn asg(&self) -> Result<&Arc<crate::services::autoscaling::AutoScaling>, AwsError> {
        Ok(&self.autoscaling)
    }

    /// Every capacity provider of a scope.
    pub fn capacity_providers_in(&self, scope: &str) -> Vec<CapacityProvider> {
        self.capacity_providers.read(|rows| {
            rows.range(scope.to_string()..)
                .take_while(|(k, _)| k.starts_with(scope))
                .map(|(_, p)| p.clone())
                .collect()
        })
    }

    /// An ACTIVE capacity provider by name or ARN.
    pub fn capacity_provider(&self, scope: &str, reference: &str) -> Option<CapacityProvider> {
        self.capacity_providers_in(scope)
            .into_iter()
            .find(|p| (p.name == reference || p.arn == reference) && p.status == "ACTIVE")
    }

    /// The provider whose Auto Scaling group is `group` (for instance registration).
    pub fn provider_of_group(&self, scope: &str, group: &str) -> Option<CapacityProvider> {
        self.capacity_providers_in(scope)
            .into_iter()
            .find(|p| p.asg_name == group && p.status == "ACTIVE")
    }

    /// Associates providers with a cluster: ECS puts its target tracking policy on each
    /// managed-scaling group (`ECSManagedAutoScalingPolicy-<uuid>` on CapacityProviderReservation
    /// at targetCapacity); providers leaving the cluster lose theirs.
    pub fn associate_providers(
        &self,
        ctx: &Ctx,
        cluster: &str,
        providers: &[String],
    ) -> Result<(), AwsError> {
        let scope = ctx.scope();
        for p in self.capacity_providers_in(&scope) {
            let wanted = providers.contains(&p.name) && p.status == "ACTIVE";
            let here = p.cluster.as_deref() == Some(cluster);
            if wanted && !here {
                if let Some(other) = &p.cluster {
                    return Err(client(format!(
                        "The capacity provider {} is already associated with the cluster {other}. A capacity provider can only be associated with one cluster.",
                        p.name
                    )));
                }
            }
        }
        for p in self.capacity_providers_in(&scope) {
            let wanted = providers.contains(&p.name) && p.status == "ACTIVE";
            let here = p.cluster.as_deref() == Some(cluster);
            if wanted && !here {
                let policy = if p.managed_scaling_enabled() {
                    Some(self.put_managed_policy(ctx, &p, cluster)?)
                } else {
                    None
                };
                self.capacity_providers.transact::<_, AwsError, _>(|t| {
                    if let Some(x) = t.get_mut(&key(&scope, &p.name)) {
                        x.cluster = Some(cluster.to_string());
                        x.policy = policy;
                    }
                    Ok(())
                })?;
            } else if !wanted && here {
                self.remove_managed_policy(ctx, &p);
                self.capacity_providers.transact::<_, AwsError, _>(|t| {
                    if let Some(x) = t.get_mut(&key(&scope, &p.name)) {
                        x.cluster = None;
                        x.policy = None;
                    }
                    Ok(())
                })?;
            }
        }
        Ok(())
    }

    fn put_managed_policy(
        &self,
        ctx: &Ctx,
        p: &CapacityProvider,
        cluster: &str,
    ) -> Result<String, AwsError> {
        let name = p
            .policy
            .clone()
            .unwrap_or_else(|| format!("{ECS_MANAGED_PREFIX}{}", uuid::Uuid::new_v4()));
        crate::services::autoscaling::policies::put_policy(
            self.asg()?,
            ctx,
            json!({
                "AutoScalingGroupName": p.asg_name,
                "PolicyName": name,
                "PolicyType": "TargetTrackingScaling",
                "TargetTrackingConfiguration": {
                    "CustomizedMetricSpecification": {
                        "MetricName": "CapacityProviderReservation",
                        "Namespace": "AWS/ECS/ManagedScaling",
                        "Dimensions": [
                            {"Name": "CapacityProviderName", "Value": p.name},
                            {"Name": "ClusterName", "Value": cluster},
                        ],
                        "Statistic": "Average",
                    },
                    "TargetValue": p.target_capacity(),
                    "DisableScaleIn": false,
                },
                "EstimatedInstanceWarmup": p.managed_scaling.i64("instanceWarmupPeriod").unwrap_or(300),
            }),
        )?;
        crate::services::autoscaling::policies::set_managed_steps(
            self.asg()?,
            ctx,
            &p.asg_name,
            &name,
            p.managed_scaling.i64("minimumScalingStepSize").unwrap_or(1),
            p.managed_scaling
                .i64("maximumScalingStepSize")
                .unwrap_or(10000),
        )?;
        Ok(name)
    }

    fn remove_managed_policy(&self, ctx: &Ctx, p: &CapacityProvider) {
        if let (Some(name), Ok(asg)) = (&p.policy, self.asg()) {
            let _ = crate::services::autoscaling::policies::delete_policy(
                asg,
                ctx,
                json!({"AutoScalingGroupName": p.asg_name, "PolicyName": name}),
            );
        }
    }
}

fn create(ecs: &Ecs, ctx: &Ctx, input: Value) -> HandlerResult {
    let name = input.str("name").unwrap_or_default().to_string();
    let lower = name.to_ascii_lowercase();
    if ["aws", "ecs", "fargate"]
        .iter()
        .any(|p| lower.starts_with(p))
    {
        return Err(client(
            "The specified capacity provider name is invalid. Capacity provider names cannot be prefixed with \"aws\", \"ecs\", or \"fargate\". Specify a valid name and try again.",
        ));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        || name.is_empty()
        || name.len() > 255
    {
        return Err(client("The specified capacity provider name is invalid. Up to 255 characters are allowed, including letters (upper and lowercase), numbers, underscores, and hyphens."));
    }
    let Some(provider) = input.get("autoScalingGroupProvider") else {
        return Err(invalid(
            "An autoScalingGroupProvider must be specified for the capacity provider.",
        ));
    };
    let scope = ctx.scope();
    let asg_arn = provider
        .str("autoScalingGroupArn")
        .unwrap_or_default()
        .to_string();
    let asg_name = asg_arn
        .rsplit_once(":autoScalingGroupName/")
        .map(|(_, n)| n.to_string())
        .unwrap_or_else(|| asg_arn.clone());
    let group = ecs
        .asg()?
        .group(&scope, &asg_name)
        .ok()
        .filter(|g| g.arn == asg_arn || asg_arn == asg_name)
        .ok_or_else(|| {
            client(format!(
                "The specified Auto Scaling group ARN {asg_arn} is not valid. Specify a valid Auto Scaling group ARN and try again."
            ))
        })?;
    let mtp = provider
        .str("managedTerminationProtection")
        .unwrap_or("DISABLED")
        .to_string();
    if mtp == "ENABLED" && !group.protect_new {
        return Err(client(
            "The managed termination protection setting for the capacity provider is invalid. To enable managed termination protection for a capacity provider, the Auto Scaling group must have instance protection from scale in enabled.",
        ));
    }
    let managed = managed_scaling(provider.get("managedScaling"), None)?;
    if mtp == "ENABLED" && managed.str("status") != Some("ENABLED") {
        return Err(client(
            "The managed termination protection setting for the capacity provider is invalid. To enable managed termination protection for a capacity provider, managed scaling must be enabled.",
        ));
    }
    let cp = CapacityProvider {
        arn: ctx.arn("ecs", &format!("capacity-provider/{name}")),
        name: name.clone(),
        status: "ACTIVE".into(),
        asg_arn: group.arn.clone(),
        asg_name: group.name.clone(),
        managed_scaling: managed,
        managed_termination_protection: mtp,
        managed_draining: provider
            .str("managedDraining")
            .unwrap_or("ENABLED")
            .to_string(),
        update_status: "CREATE_COMPLETE".into(),
        tags: input.member("tags")?.unwrap_or_default(),
        cluster: None,
        policy: None,
    };
    let k = key(&scope, &name);
    if ecs.capacity_provider(&scope, &name).is_some() {
        return Err(client(format!(
            "The specified capacity provider {name} already exists. To change the configuration of an existing capacity provider, update the capacity provider."
        )));
    }
    ecs.capacity_providers.transact(|t| {
        if t.get(&k).is_some_and(|p| p.status == "ACTIVE") {
            return Err(client(format!(
                "The specified capacity provider {name} already exists. To change the configuration of an existing capacity provider, update the capacity provider."
            )));
        }
        let prefix = scope.clone();
        for other in t.keys(&prefix) {
            if let Some(o) = t.get(&other) {
                if o.status == "ACTIVE" && o.asg_arn == cp.asg_arn {
                    return Err(client(format!(
                        "The specified Auto Scaling group ARN is already being used by another capacity provider ({}). Specify a unique Auto Scaling group ARN and try again.",
                        o.name
                    )));
                }
            }
        }
        t.put(&k, cp.clone());
        Ok(())
    })?;
    if cp.managed_draining == "ENABLED" {
        // ECS drains instances before the group terminates them, through this hook.
        crate::services::autoscaling::hooks::put_hook(
            ecs.asg()?,
            ctx,
            json!({
                "AutoScalingGroupName": cp.asg_name,
                "LifecycleHookName": MANAGED_DRAINING_HOOK,
                "LifecycleTransition": "autoscaling:EC2_INSTANCE_TERMINATING",
                "HeartbeatTimeout": 3600,
                "DefaultResult": "CONTINUE",
            }),
        )?;
    }
    Ok(json!({"capacityProvider": cp.to_json()}))
}

/// FARGATE and FARGATE_SPOT as DescribeCapacityProviders lists them.
fn builtin(ctx: &Ctx, name: &str) -> Value {
    json!({
        "capacityProviderArn": ctx.arn("ecs", &format!("capacity-provider/{name}")),
        "name": name,
        "status": "ACTIVE",
        "tags": [],
    })
}

fn describe(ecs: &Ecs, ctx: &Ctx, input: Value) -> HandlerResult {
    let wanted = input.string_list("capacityProviders");
    let scope = ctx.scope();
    let mut out = Vec::new();
    let mut failures = Vec::new();
    let all = ecs.capacity_providers_in(&scope);
    if wanted.is_empty() {
        out.push(builtin(ctx, "FARGATE"));
        out.push(builtin(ctx, "FARGATE_SPOT"));
        out.extend(
            all.iter()
                .filter(|p| p.status == "ACTIVE")
                .map(CapacityProvider::to_json),
        );
    } else {
        for w in &wanted {
            let short = w.rsplit('/').next().unwrap_or(w);
            if short == "FARGATE" || short == "FARGATE_SPOT" {
                out.push(builtin(ctx, short));
            } else if let Some(p) = all.iter().find(|p| &p.name == w || &p.arn == w) {
                out.push(p.to_json());
            } else {
                failures.push(json!({"arn": w, "reason": "MISSING"}));
            }
        }
    }
    Ok(json!({"capacityProviders": out, "failures": failures}))
}

fn update(ecs: &Ecs, ctx: &Ctx, input: Value) -> HandlerResult {
    let name = input.str("name").unwrap_or_default().to_string();
    let scope = ctx.scope();
    let cp = ecs.capacity_provider(&scope, &name).ok_or_else(|| {
        client(format!(
            "The specified capacity provider {name} does not exist."
        ))
    })?;
    let given = input
        .get("autoScalingGroupProvider")
        .cloned()
        .unwrap_or(json!({}));
    let managed = managed_scaling(given.get("managedScaling"), Some(&cp.managed_scaling))?;
    let mtp = given
        .str("managedTerminationProtection")
        .unwrap_or(&cp.managed_termination_protection)
        .to_string();
    if mtp == "ENABLED" {
        let g = ecs.asg()?.group(&scope, &cp.asg_name)?;
        if !g.protect_new {
            return Err(client(
                "The managed termination protection setting for the capacity provider is invalid. To enable managed termination protection for a capacity provider, the Auto Scaling group must have instance protection from scale in enabled.",
            ));
        }
    }
    let mut next = cp.clone();
    next.managed_scaling = managed;
    next.managed_termination_protection = mtp;
    if let Some(d) = given.str("managedDraining") {
        next.managed_draining = d.to_string();
    }
    next.update_status = "UPDATE_COMPLETE".into();
    // The managed policy follows the new target (or goes when scaling is disabled).
    if let Some(cluster) = &cp.cluster {
        if next.managed_scaling_enabled() {
            next.policy = Some(ecs.put_managed_policy(ctx, &next, cluster)?);
        } else {
            ecs.remove_managed_policy(ctx, &cp);
            next.policy = None;
        }
    }
    ecs.capacity_providers.transact::<_, AwsError, _>(|t| {
        t.put(&key(&scope, &name), next.clone());
        Ok(())
    })?;
    Ok(json!({"capacityProvider": next.to_json()}))
}

fn delete(ecs: &Ecs, ctx: &Ctx, input: Value) -> HandlerResult {
    let reference = input
        .str("capacityProvider")
        .unwrap_or_default()
        .to_string();
    let scope = ctx.scope();
    let cp = ecs.capacity_provider(&scope, &reference).ok_or_else(|| {
        client(format!(
            "The specified capacity provider {reference} does not exist."
        ))
    })?;
    if let Some(cluster) = &cp.cluster {
        return Err(client(format!(
            "The specified capacity provider is in use and cannot be removed. Disassociate the capacity provider from the cluster {cluster} and try again."
        )));
    }
    let mut gone = cp.clone();
    gone.status = "INACTIVE".into();
    gone.update_status = "DELETE_COMPLETE".into();
    ecs.capacity_providers.transact::<_, AwsError, _>(|t| {
        t.put(&key(&scope, &cp.name), gone.clone());
        Ok(())
    })?;
    Ok(json!({"capacityProvider": gone.to_json()}))
}

/// How many of `count` tasks each provider of a strategy gets: `base` first to the provider
/// that has one, the rest in proportion to the weights (ECS fills the provider furthest below
/// its share first).
pub fn split(strategy: &[(String, i64, i64)], count: i64) -> Vec<(String, i64)> {
    let mut out: Vec<(String, i64)> = strategy.iter().map(|(n, _, _)| (n.clone(), 0)).collect();
    let mut left = count;
    for (i, (_, base, _)) in strategy.iter().enumerate() {
        let b = (*base).min(left).max(0);
        out[i].1 += b;
        left -= b;
    }
    let total_weight: i64 = strategy.iter().map(|(_, _, w)| *w).sum();
    if total_weight <= 0 {
        if let Some(first) = out.first_mut() {
            first.1 += left;
        }
        return out;
    }
    let mut placed_by_weight = vec![0i64; strategy.len()];
    for _ in 0..left {
        let total: i64 = placed_by_weight.iter().sum::<i64>() + 1;
        // The provider whose weighted share is furthest from what it has.
        let pick = strategy
            .iter()
            .enumerate()
            .filter(|(_, (_, _, w))| *w > 0)
            .max_by(|(i, (_, _, wa)), (j, (_, _, wb))| {
                let da =
                    *wa as f64 * total as f64 / total_weight as f64 - placed_by_weight[*i] as f64;
                let db =
                    *wb as f64 * total as f64 / total_weight as f64 - placed_by_weight[*j] as f64;
                da.total_cmp(&db).then(j.cmp(i))
            })
            .map(|(i, _)| i)
            .unwrap_or(0);
        placed_by_weight[pick] += 1;
        out[pick].1 += 1;
    }
    out
}

/// The split of `count` more tasks when `existing` (per provider) already run: as ECS does for a
/// service, the strategy applies to all of them, so the new tasks go where the whole falls short
/// (a replaced FARGATE_SPOT task comes back on FARGATE_SPOT, not on the base's provider).
pub fn split_with(
    strategy: &[(String, i64, i64)],
    existing: &[(String, i64)],
    count: i64,
) -> Vec<(String, i64)> {
    let have = |name: &str| {
        existing
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, c)| *c)
            .sum::<i64>()
    };
    let already: i64 = strategy.iter().map(|(n, _, _)| have(n)).sum();
    let want = split(strategy, already + count);
    let mut out: Vec<(String, i64)> = strategy.iter().map(|(n, _, _)| (n.clone(), 0)).collect();
    for _ in 0..count {
        // The provider furthest below its share of the whole (the first one on a tie).
        let pick = (0..out.len())
            .max_by(|&a, &b| {
                let da = want[a].1 - have(&out[a].0) - out[a].1;
                let db = want[b].1 - have(&out[b].0) - out[b].1;
                da.cmp(&db).then(b.cmp(&a))
            })
            .unwrap_or(0);
        if let Some(o) = out.get_mut(pick) {
            o.1 += 1;
        }
    }
    out
}

impl Ecs {
    /// Sets the ACTIVE container instances of an EC2 instance DRAINING (a Spot interruption
    /// notice); returns their ARNs.
    pub fn drain_ec2_instance(&self, scope: &str, ec2_instance_id: &str) -> Vec<String> {
        let drained = self.instances.transact::<_, AwsError, _>(|t| {
            let mut out = Vec::new();
            for k in t.keys(scope) {
                let hit = t
                    .get(&k)
                    .is_some_and(|c| c.ec2_instance_id == ec2_instance_id && c.status == "ACTIVE");
                if let Some(c) = t.get_mut(&k).filter(|_| hit) {
                    c.status = "DRAINING".into();
                    c.version += 1;
                    out.push(c.arn.clone());
                }
            }
            Ok(out)
        });
        self.wake_scheduler();
        drained.unwrap_or_default()
    }

    /// ECS's M for CapacityProviderReservation: the provider's instances that run non-daemon
    /// tasks, plus the instances (of `cpu`, `memory` registered resources) the tasks waiting
    /// for capacity need, packed by CPU and by memory.
    pub fn instances_needed(
        &self,
        scope: &str,
        cluster: &str,
        provider: &str,
        cpu: i64,
        memory: i64,
    ) -> i64 {
        let daemons: Vec<String> = self
            .services
            .scan(&format!("{scope}{cluster}/"))
            .into_iter()
            .filter(|(_, s)| s.scheduling_strategy == super::model::SchedulingStrategy::Daemon)
            .map(|(_, s)| format!("service:{}", s.name))
            .collect();
        let arns: Vec<String> = self
            .cluster_instances(scope, cluster)
            .into_iter()
            .filter(|i| i.status != "INACTIVE")
            .filter(|i| i.capacity_provider_name.as_deref() == Some(provider))
            .map(|i| i.arn)
            .collect();
        let tasks = self.live_tasks(scope, cluster);
        let occupied = arns
            .iter()
            .filter(|a| {
                tasks.iter().any(|t| {
                    t.container_instance_arn.as_deref() == Some(a.as_str())
                        && !daemons.contains(&t.group)
                })
            })
            .count() as i64;
        let waiting: Vec<&super::Task> = tasks
            .iter()
            .filter(|t| {
                t.awaiting_capacity
                    && t.wanted()
                    && t.capacity_provider_name.as_deref() == Some(provider)
            })
            .collect();
        if waiting.is_empty() {
            return occupied;
        }
        let div = |sum: i64, per: i64| if per > 0 { (sum + per - 1) / per } else { 1 };
        let by_cpu = div(waiting.iter().map(|t| t.reserved_cpu).sum(), cpu);
        let by_memory = div(waiting.iter().map(|t| t.reserved_memory).sum(), memory);
        occupied + by_cpu.max(by_memory).max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::{split, split_with};

    #[test]
    fn the_strategy_applies_to_a_services_running_tasks_too() {
        let s = vec![
            ("FARGATE".to_string(), 1, 0),
            ("FARGATE_SPOT".to_string(), 0, 1),
        ];
        let none: Vec<(String, i64)> = Vec::new();
        assert_eq!(
            split_with(&s, &none, 3),
            vec![("FARGATE".to_string(), 1), ("FARGATE_SPOT".to_string(), 2)]
        );
        // A FARGATE_SPOT task replaced: the base is already met.
        let running = vec![("FARGATE".to_string(), 1), ("FARGATE_SPOT".to_string(), 1)];
        assert_eq!(
            split_with(&s, &running, 1),
            vec![("FARGATE".to_string(), 0), ("FARGATE_SPOT".to_string(), 1)]
        );
        // The base task replaced goes back to the base's provider.
        let running = vec![("FARGATE_SPOT".to_string(), 2)];
        assert_eq!(
            split_with(&s, &running, 1),
            vec![("FARGATE".to_string(), 1), ("FARGATE_SPOT".to_string(), 0)]
        );
        // Scaling out 2 → 6 with weights 1:1 fills the provider below its share first.
        let s = vec![("a".to_string(), 0, 1), ("b".to_string(), 0, 1)];
        let running = vec![("a".to_string(), 2)];
        assert_eq!(
            split_with(&s, &running, 4),
            vec![("a".to_string(), 1), ("b".to_string(), 3)]
        );
    }

    #[test]
    fn base_then_weights() {
        let s = vec![("a".to_string(), 2, 1), ("b".to_string(), 0, 3)];
        assert_eq!(
            split(&s, 10),
            vec![("a".to_string(), 4), ("b".to_string(), 6)]
        );
        assert_eq!(
            split(&s, 1),
            vec![("a".to_string(), 1), ("b".to_string(), 0)]
        );
        let s = vec![("a".to_string(), 0, 1), ("b".to_string(), 0, 1)];
        assert_eq!(
            split(&s, 3),
            vec![("a".to_string(), 2), ("b".to_string(), 1)]
        );
    }
}
