//! ListServiceDeployments, DescribeServiceDeployments and DescribeServiceRevisions, answered
//! from the deployments the service scheduler keeps (deployments[] and the finished ones in
//! the service's history). One service deployment per deployment the scheduler starts; a
//! rollback is shown, as ECS shows it, as the ROLLBACK_* status of the deployment it rolls back.
//! Each deployment deploys one service revision (a rollback the revision it returns to).

use super::model::{DeploymentStatus, RolloutState};
use super::services::{circuit_breaker_threshold, Deployment, EcsService};
use super::Ecs;
use crate::protocol::{codes, AwsError};
use crate::services::input::Input;
use crate::services::{Ctx, HandlerResult, Registry};
use serde_json::{json, Value};
use std::sync::Arc;

pub fn register(r: &mut Registry, ecs: &Arc<Ecs>) {
    r.sync(
        "ecs",
        "ListServiceDeployments",
        ecs,
        list_service_deployments,
    );
    r.sync(
        "ecs",
        "DescribeServiceDeployments",
        ecs,
        describe_service_deployments,
    );
    r.sync(
        "ecs",
        "DescribeServiceRevisions",
        ecs,
        describe_service_revisions,
    );
}

fn invalid(msg: impl Into<String>) -> AwsError {
    AwsError::new(codes::ecs::InvalidParameterException, msg)
}

/// The part of a service ARN after "service/": "<cluster>/<name>".
fn service_path(svc: &EcsService) -> String {
    format!("{}/{}", svc.cluster, svc.name)
}

fn arn_prefix(svc: &EcsService) -> &str {
    svc.arn.split(":service/").next().unwrap_or_default()
}

pub fn deployment_arn(svc: &EcsService, d: &Deployment) -> String {
    format!(
        "{}:service-deployment/{}/{}",
        arn_prefix(svc),
        service_path(svc),
        d.id.trim_start_matches("ecs-svc/")
    )
}

pub fn revision_arn(svc: &EcsService, revision: &str) -> String {
    format!(
        "{}:service-revision/{}/{revision}",
        arn_prefix(svc),
        service_path(svc)
    )
}

/// Every deployment the service knows, newest first.
fn all_deployments(svc: &EcsService) -> Vec<&Deployment> {
    let mut all: Vec<&Deployment> = svc.deployments.iter().chain(svc.history.iter()).collect();
    all.sort_by(|a, b| b.created_at.total_cmp(&a.created_at));
    all
}

/// A service deployment's status and reason, from the scheduler's deployment (and its
/// rollback, if one was started).
fn status(svc: &EcsService, d: &Deployment) -> (&'static str, String) {
    let rollback = all_deployments(svc)
        .into_iter()
        .find(|r| r.rollback_of.as_deref() == Some(d.id.as_str()));
    if let Some(r) = rollback {
        return match r.rollout_state {
            RolloutState::InProgress => ("ROLLBACK_IN_PROGRESS", d.rollout_state_reason.clone()),
            RolloutState::Completed => ("ROLLBACK_SUCCESSFUL", d.rollout_state_reason.clone()),
            RolloutState::Failed => ("ROLLBACK_FAILED", r.rollout_state_reason.clone()),
        };
    }
    match d.rollout_state {
        RolloutState::Completed => ("SUCCESSFUL", d.rollout_state_reason.clone()),
        RolloutState::Failed => ("STOPPED", d.rollout_state_reason.clone()),
        RolloutState::InProgress if d.status == DeploymentStatus::Primary => {
            ("IN_PROGRESS", d.rollout_state_reason.clone())
        }
        RolloutState::InProgress => (
            "STOPPED",
            "The service deployment was stopped because a newer service deployment started.".into(),
        ),
    }
}

/// When a deployment stopped being worked on: its completion, failure or replacement.
fn finished_at(svc: &EcsService, d: &Deployment) -> Option<f64> {
    let (status, _) = status(svc, d);
    match status {
        "IN_PROGRESS" | "ROLLBACK_IN_PROGRESS" => None,
        "ROLLBACK_SUCCESSFUL" | "ROLLBACK_FAILED" => all_deployments(svc)
            .into_iter()
            .find(|r| r.rollback_of.as_deref() == Some(d.id.as_str()))
            .map(|r| r.updated_at),
        _ => Some(d.updated_at),
    }
}

/// The scheduler's deployments shown as service deployments (rollbacks folded in).
fn service_deployments(svc: &EcsService) -> Vec<&Deployment> {
    all_deployments(svc)
        .into_iter()
        .filter(|d| d.rollback_of.is_none())
        .collect()
}

fn brief(svc: &EcsService, d: &Deployment) -> Value {
    let (status, reason) = status(svc, d);
    let mut v = json!({
        "serviceDeploymentArn": deployment_arn(svc, d),
        "serviceArn": svc.arn,
        "clusterArn": svc.cluster_arn,
        "createdAt": d.created_at,
        "startedAt": d.created_at,
        "targetServiceRevisionArn": revision_arn(svc, d.revision_id()),
        "status": status,
        "statusReason": reason,
    });
    if let Some(f) = finished_at(svc, d) {
        v["finishedAt"] = json!(f);
    }
    v
}

fn list_service_deployments(ecs: &Ecs, ctx: &Ctx, input: Value) -> HandlerResult {
    let cluster = ecs.active_cluster(ctx, input.str("cluster"))?;
    let reference = input.str("service").unwrap_or_default();
    let (_, svc) = ecs
        .service(ctx, &cluster.name, reference)
        .ok_or_else(super::services::not_found)?;
    let statuses = input.string_list("status");
    let created = input.get("createdAt");
    let bound = |k: &str| created.and_then(|c| c.get(k)).and_then(Value::as_f64);
    let (before, after) = (bound("before"), bound("after"));
    let max = match input.i64("maxResults") {
        Some(n) if !(1..=100).contains(&n) => {
            return Err(invalid("maxResults must be between 1 and 100."))
        }
        Some(n) => n as usize,
        None => 20,
    };
    let rows: Vec<Value> = service_deployments(&svc)
        .into_iter()
        .map(|d| brief(&svc, d))
        .filter(|b| {
            statuses.is_empty()
                || b["status"]
                    .as_str()
                    .is_some_and(|s| statuses.iter().any(|x| x == s))
        })
        .filter(|b| {
            let at = b["createdAt"].as_f64().unwrap_or_default();
            before.is_none_or(|t| at < t) && after.is_none_or(|t| at > t)
        })
        .collect();
    let start = match input.str("nextToken") {
        Some(t) => t
            .parse::<usize>()
            .ok()
            .filter(|n| *n <= rows.len())
            .ok_or_else(|| invalid("Invalid nextToken."))?,
        None => 0,
    };
    let end = (start + max).min(rows.len());
    let mut out = json!({"serviceDeployments": rows[start..end].to_vec()});
    if end < rows.len() {
        out["nextToken"] = json!(end.to_string());
    }
    Ok(out)
}

/// Tasks of a revision: (requested, running, pending), over the deployments deploying it.
fn revision_summary(ecs: &Ecs, svc: &EcsService, revision: &str, requested: i64) -> Value {
    let scope = format!(
        "{}/{}/",
        svc.arn.split(':').nth(4).unwrap_or_default(),
        svc.arn.split(':').nth(3).unwrap_or_default()
    );
    let group = format!("service:{}", svc.name);
    let ids: Vec<&str> = svc
        .deployments
        .iter()
        .filter(|d| d.revision_id() == revision)
        .map(|d| d.id.as_str())
        .collect();
    let tasks: Vec<super::Task> = ecs
        .live_tasks(&scope, &svc.cluster)
        .into_iter()
        .filter(|t| t.group == group && t.wanted())
        .filter(|t| t.started_by.as_deref().is_some_and(|s| ids.contains(&s)))
        .collect();
    json!({
        "arn": revision_arn(svc, revision),
        "requestedTaskCount": requested,
        "runningTaskCount": tasks.iter().filter(|t| t.is_running()).count(),
        "pendingTaskCount": tasks.iter().filter(|t| t.is_pending()).count(),
    })
}

fn monitor_status(enabled: bool, triggered: bool, done: bool) -> &'static str {
    match (enabled, triggered, done) {
        (false, _, _) => "DISABLED",
        (true, true, _) => "TRIGGERED",
        (true, false, true) => "MONITORING_COMPLETE",
        (true, false, false) => "MONITORING",
    }
}

fn full(ecs: &Ecs, svc: &EcsService, d: &Deployment) -> Value {
    let mut v = brief(svc, d);
    let (status, _) = status(svc, d);
    let done = !matches!(status, "IN_PROGRESS" | "ROLLBACK_IN_PROGRESS");
    v["updatedAt"] = json!(d.updated_at);
    if status == "STOPPED" {
        v["stoppedAt"] = json!(d.updated_at);
    }
    let live = d.finished_at.is_none();
    let target_requested = if live && d.status == DeploymentStatus::Primary {
        d.desired_count
    } else {
        0
    };
    v["targetServiceRevision"] = revision_summary(ecs, svc, d.revision_id(), target_requested);
    v["sourceServiceRevisions"] = json!(d
        .source_revisions
        .iter()
        .map(|r| revision_summary(ecs, svc, r, 0))
        .collect::<Vec<_>>());
    v["deploymentConfiguration"] = svc.deployment_configuration();
    let breaker_on = svc.circuit_breaker.as_ref().is_some_and(|c| c.enable);
    let tripped = d.rollout_state == RolloutState::Failed
        && d.rollout_state_reason.contains("circuit breaker");
    v["deploymentCircuitBreaker"] = json!({
        "status": monitor_status(breaker_on, tripped, done),
        "failureCount": d.failed_tasks,
        "threshold": circuit_breaker_threshold(d.desired_count),
    });
    if let Some(a) = &svc.deployment_alarms {
        let alarm_tripped = d.rollout_state == RolloutState::Failed && !tripped;
        v["alarms"] = json!({
            "status": monitor_status(a.enable, alarm_tripped, done),
            "alarmNames": a.alarm_names,
            "triggeredAlarmNames": [],
        });
    }
    if let Some(r) = all_deployments(svc)
        .into_iter()
        .find(|r| r.rollback_of.as_deref() == Some(d.id.as_str()))
    {
        v["rollback"] = json!({
            "reason": d.rollout_state_reason,
            "startedAt": r.created_at,
            "serviceRevisionArn": revision_arn(svc, r.revision_id()),
        });
    }
    v
}

/// The service an ARN of `kind` ("service-deployment", "service-revision") names, and the id
/// after it; None when the ARN has not that form or the service is unknown.
fn resolve(ecs: &Ecs, ctx: &Ctx, arn: &str, kind: &str) -> Option<(EcsService, String)> {
    let rest = arn.split_once(&format!(":{kind}/"))?.1;
    let mut parts = rest.splitn(3, '/');
    let (cluster, service, id) = (parts.next()?, parts.next()?, parts.next()?);
    let (_, svc) = ecs.service(ctx, cluster, service)?;
    Some((svc, id.to_string()))
}

fn describe_service_deployments(ecs: &Ecs, ctx: &Ctx, input: Value) -> HandlerResult {
    let arns = input.string_list("serviceDeploymentArns");
    if arns.is_empty() {
        return Err(invalid("Service deployment ARNs cannot be empty."));
    }
    if arns.len() > 20 {
        return Err(invalid(
            "Service deployment ARNs can have at most 20 elements.",
        ));
    }
    let mut found = Vec::new();
    let mut failures = Vec::new();
    for arn in arns {
        let hit = resolve(ecs, ctx, &arn, "service-deployment").and_then(|(svc, id)| {
            let d = service_deployments(&svc)
                .into_iter()
                .find(|d| d.id.trim_start_matches("ecs-svc/") == id)
                .cloned()?;
            Some(full(ecs, &svc, &d))
        });
        match hit {
            Some(v) => found.push(v),
            None => failures.push(json!({"arn": arn, "reason": "MISSING"})),
        }
    }
    Ok(json!({"serviceDeployments": found, "failures": failures}))
}

fn describe_service_revisions(ecs: &Ecs, ctx: &Ctx, input: Value) -> HandlerResult {
    let arns = input.string_list("serviceRevisionArns");
    if arns.is_empty() {
        return Err(invalid("Service revision ARNs cannot be empty."));
    }
    if arns.len() > 20 {
        return Err(invalid(
            "Service revision ARNs can have at most 20 elements.",
        ));
    }
    let mut found = Vec::new();
    let mut failures = Vec::new();
    for arn in arns {
        let hit = resolve(ecs, ctx, &arn, "service-revision").and_then(|(svc, id)| {
            // The first deployment of the revision made it: a rollback reuses an older one.
            let d = all_deployments(&svc)
                .into_iter()
                .rev()
                .find(|d| d.revision_id() == id)
                .cloned()?;
            let mut v = json!({
                "serviceRevisionArn": revision_arn(&svc, &id),
                "serviceArn": svc.arn,
                "clusterArn": svc.cluster_arn,
                "taskDefinition": d.task_definition,
                "loadBalancers": svc.load_balancers,
                "serviceRegistries": svc.service_registries,
                "createdAt": d.created_at,
                "guardDutyEnabled": false,
            });
            if let Some(lt) = &d.launch_type {
                v["launchType"] = json!(lt);
            }
            if !svc.capacity_provider_strategy.is_empty() {
                v["capacityProviderStrategy"] = json!(svc.capacity_provider_strategy);
            }
            if let Some(n) = &d.network_configuration {
                v["networkConfiguration"] = json!(n);
            }
            if let Some(p) = &svc.platform_version {
                v["platformVersion"] = json!(p);
            }
            Some(v)
        });
        match hit {
            Some(v) => found.push(v),
            None => failures.push(json!({"arn": arn, "reason": "MISSING"})),
        }
    }
    Ok(json!({"serviceRevisions": found, "failures": failures}))
}
