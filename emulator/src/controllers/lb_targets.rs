//! Where an ECS task is reached by its service's target groups: registration, health and
//! deregistration of load balancer targets (aws-behaviour.md §4, "LB timing").

use crate::services::ecs::model::{LbTarget, LoadBalancer};
use crate::services::ecs::{EcsService, Task};
use crate::services::elbv2::targets::{TargetHealth, TargetSpec};
use crate::services::elbv2::Elbv2;
use crate::services::input::Input;
use serde_json::Value;

/// The target a task is for one `loadBalancers` entry of its service.
pub fn target_for(task: &Task, lb: &LoadBalancer) -> Option<(String, TargetSpec)> {
    let group = lb.target_group_arn.clone()?;
    let container = lb.container_name.as_deref()?;
    let port = u16::try_from(lb.container_port?).ok()?;
    let spec = if task.network_mode == "awsvpc" {
        let ip = task
            .attachments
            .iter()
            .flat_map(|a| {
                a.get("details")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default()
            })
            .find(|d| d.str("name") == Some("privateIPv4Address"))
            .and_then(|d| d.str("value").map(str::to_string))?;
        TargetSpec {
            id: ip,
            port: Some(port),
            availability_zone: None,
        }
    } else {
        let c = task.containers.iter().find(|c| c.name == container)?;
        let host_port = if task.network_mode == "host" {
            port
        } else {
            c.network_bindings
                .iter()
                .find(|b| b.i64("containerPort") == Some(i64::from(port)))
                .and_then(|b| b.i64("hostPort"))
                .and_then(|p| u16::try_from(p).ok())?
        };
        TargetSpec {
            id: task.ec2_instance_id.clone()?,
            port: Some(host_port),
            availability_zone: None,
        }
    };
    Some((group, spec))
}

fn scope(arn: &str) -> (String, String) {
    let mut parts = arn.split(':');
    let region = parts.nth(3).unwrap_or_default().to_string();
    let account = parts.next().unwrap_or_default().to_string();
    (account, region)
}

/// Registers a running task's targets; returns what was registered, for the task record.
pub fn register(elbv2: &Elbv2, svc: &EcsService, task: &Task) -> Vec<LbTarget> {
    let (account, region) = scope(&task.arn);
    let mut out = Vec::new();
    for lb in svc.load_balancers_for(task) {
        let Some((group, spec)) = target_for(task, lb) else {
            continue;
        };
        match elbv2.register_targets(&account, &region, &group, std::slice::from_ref(&spec)) {
            Ok(()) => out.push(LbTarget {
                target_group_arn: group,
                id: spec.id,
                port: spec.port,
            }),
            Err(e) => {
                tracing::warn!(task = %task.arn, %group, error = %e, "could not register the task's target")
            }
        }
    }
    out
}

/// Starts deregistering a task's targets (they drain for the group's deregistration delay).
pub fn deregister(elbv2: &Elbv2, task: &Task) {
    let (account, region) = scope(&task.arn);
    for t in &task.lb_targets {
        let spec = TargetSpec {
            id: t.id.clone(),
            port: t.port,
            availability_zone: None,
        };
        let _ = elbv2.deregister_targets(&account, &region, &t.target_group_arn, &[spec]);
    }
}

fn health_of<'a>(all: &'a [(String, Vec<TargetHealth>)], t: &LbTarget) -> Option<&'a TargetHealth> {
    all.iter()
        .find(|(g, _)| *g == t.target_group_arn)?
        .1
        .iter()
        .find(|h| h.id == t.id && t.port.is_none_or(|p| h.port == p))
}

/// The health of every target group a service (or one of its task sets) uses, read once per
/// pass.
pub fn service_health(elbv2: &Elbv2, svc: &EcsService) -> Vec<(String, Vec<TargetHealth>)> {
    let (account, region) = scope(&svc.arn);
    svc.target_group_arns()
        .into_iter()
        .filter_map(|g| {
            elbv2
                .target_health(&account, &region, g)
                .ok()
                .map(|h| (g.to_string(), h))
        })
        .collect()
}

/// How the task's targets look: None while it has none, else healthy / unhealthy (with the
/// target group that failed) / pending.
pub enum TaskLbHealth {
    Healthy,
    Pending,
    Unhealthy { group: String, reason: String },
}

pub fn task_health(all: &[(String, Vec<TargetHealth>)], task: &Task) -> Option<TaskLbHealth> {
    if task.lb_targets.is_empty() {
        return None;
    }
    let mut pending = false;
    for t in &task.lb_targets {
        match health_of(all, t) {
            Some(h) if h.state == "unhealthy" => {
                return Some(TaskLbHealth::Unhealthy {
                    group: t.target_group_arn.clone(),
                    reason: h
                        .description
                        .clone()
                        .unwrap_or_else(|| "Health checks failed".into()),
                })
            }
            // Not behind any listener, or checks disabled: ELB never judges it.
            Some(h) if matches!(h.state, "healthy" | "unused" | "unavailable") => {}
            _ => pending = true,
        }
    }
    Some(if pending {
        TaskLbHealth::Pending
    } else {
        TaskLbHealth::Healthy
    })
}

/// Whether any of the task's targets is still registered or draining.
pub fn still_draining(elbv2: &Elbv2, task: &Task) -> bool {
    let (account, region) = scope(&task.arn);
    task.lb_targets.iter().any(|t| {
        elbv2
            .target_health(&account, &region, &t.target_group_arn)
            .map(|hs| {
                hs.iter()
                    .any(|h| h.id == t.id && t.port.is_none_or(|p| h.port == p))
            })
            .unwrap_or(false)
    })
}
