//! Clusters: CreateCluster, DescribeClusters, ListClusters, DeleteCluster, UpdateCluster,
//! UpdateClusterSettings, PutClusterCapacityProviders.

use super::arns::{cluster_arn, cluster_name};
use super::Ecs;
use crate::protocol::codes;
use crate::protocol::AwsError;
use crate::services::input::Input;
use crate::services::{Ctx, HandlerResult, Registry};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::sync::Arc;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Cluster {
    pub name: String,
    pub arn: String,
    /// ACTIVE, or INACTIVE once deleted (still describable, as in ECS).
    pub status: String,
    #[serde(default)]
    pub tags: Vec<super::model::Tag>,
    #[serde(default)]
    pub settings: Vec<Value>,
    #[serde(default)]
    pub configuration: Option<Value>,
    #[serde(default)]
    pub capacity_providers: Vec<String>,
    #[serde(default)]
    pub default_strategy: Vec<Value>,
    #[serde(default)]
    pub service_connect_defaults: Option<Value>,
    pub created_at: f64,
}

pub fn register(r: &mut Registry, ecs: &Arc<Ecs>) {
    r.sync("ecs", "CreateCluster", ecs, create_cluster);
    r.sync("ecs", "DescribeClusters", ecs, describe_clusters);
    r.sync("ecs", "ListClusters", ecs, list_clusters);
    r.sync("ecs", "DeleteCluster", ecs, delete_cluster);
    r.sync("ecs", "UpdateCluster", ecs, update_cluster);
    r.sync("ecs", "UpdateClusterSettings", ecs, update_cluster_settings);
    r.sync(
        "ecs",
        "PutClusterCapacityProviders",
        ecs,
        put_cluster_capacity_providers,
    );
}

pub fn not_found() -> AwsError {
    AwsError::new(codes::ecs::ClusterNotFoundException, "Cluster not found.")
}

/// "<account>/<region>/" from a cluster ARN.
fn cluster_scope(arn: &str) -> String {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    match (parts.get(3), parts.get(4)) {
        (Some(region), Some(account)) => format!("{account}/{region}/"),
        _ => String::new(),
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

const BUILTIN_PROVIDERS: &[&str] = &["FARGATE", "FARGATE_SPOT"];

fn check_providers(
    ecs: &Ecs,
    ctx: &Ctx,
    providers: &[String],
    strategy: &[Value],
) -> Result<(), AwsError> {
    for p in providers {
        if !BUILTIN_PROVIDERS.contains(&p.as_str())
            && ecs.capacity_provider(&ctx.scope(), p).is_none()
        {
            return Err(AwsError::new(codes::ecs::InvalidParameterException,
                format!("The specified capacity provider '{p}' is not in an ACTIVE state. Specify a valid capacity provider and try again."),
            ));
        }
    }
    for item in strategy {
        let name = item.str("capacityProvider").unwrap_or_default();
        if !providers.iter().any(|p| p == name) {
            return Err(AwsError::new(codes::ecs::InvalidParameterException,
                format!("The specified capacity provider strategy cannot contain a capacity provider that is not associated with the cluster. Associate the capacity provider with the cluster or specify a valid capacity provider and try again. ({name})"),
            ));
        }
    }
    let with_base = strategy
        .iter()
        .filter(|s| s.i64("base").unwrap_or(0) > 0)
        .count();
    if with_base > 1 {
        return Err(AwsError::new(codes::ecs::InvalidParameterException,
            "You can only specify a base value for one capacity provider in a capacity provider strategy.",
        ));
    }
    Ok(())
}

fn default_settings() -> Vec<Value> {
    vec![json!({"name": "containerInsights", "value": "disabled"})]
}

fn create_cluster(ecs: &Ecs, ctx: &Ctx, input: Value) -> HandlerResult {
    let name = input.str("clusterName").unwrap_or("default").to_string();
    if !valid_name(&name) {
        return Err(AwsError::new(codes::ecs::InvalidParameterException,
            "Cluster name can only contain alphanumeric characters, hyphens and underscores, up to 255 characters.",
        ));
    }
    let providers = input.string_list("capacityProviders");
    let strategy = input
        .get("defaultCapacityProviderStrategy")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    check_providers(ecs, ctx, &providers, &strategy)?;
    let key = format!("{}{}", ctx.scope(), name);
    let mut created = false;
    let cluster = ecs.clusters.transact::<_, AwsError, _>(|t| {
        // Creating an ACTIVE cluster again returns it unchanged, as ECS does.
        if let Some(existing) = t.get(&key).filter(|c| c.status == "ACTIVE") {
            return Ok(existing.clone());
        }
        created = true;
        let mut settings = default_settings();
        if let Some(given) = input.get("settings").and_then(Value::as_array) {
            merge_settings(&mut settings, given);
        }
        let cluster = Cluster {
            arn: cluster_arn(ctx, &name),
            name: name.clone(),
            status: "ACTIVE".into(),
            tags: input.member("tags")?.unwrap_or_default(),
            settings,
            configuration: input.get("configuration").cloned(),
            capacity_providers: providers.clone(),
            default_strategy: strategy.clone(),
            service_connect_defaults: input.get("serviceConnectDefaults").cloned(),
            created_at: ctx.now,
        };
        t.put(&key, cluster.clone());
        Ok(cluster)
    })?;
    ecs.associate_providers(ctx, &cluster.name, &cluster.capacity_providers)?;
    if created {
        crate::feedback!("cluster {} created ({})", cluster.name, ctx.region);
    }
    Ok(json!({"cluster": render(ecs, &cluster, &all_fields())}))
}

fn merge_settings(settings: &mut Vec<Value>, given: &[Value]) {
    for s in given {
        let name = s.str("name").unwrap_or_default();
        settings.retain(|x| x.str("name") != Some(name));
        settings.push(s.clone());
    }
}

fn all_fields() -> Vec<String> {
    ["SETTINGS", "CONFIGURATIONS", "TAGS"]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

/// The cluster as DescribeClusters shows it, with live counts.
fn render(ecs: &Ecs, c: &Cluster, include: &[String]) -> Value {
    let counts = ecs.cluster_counts(c);
    let mut v = json!({
        "clusterArn": c.arn,
        "clusterName": c.name,
        "status": c.status,
        "registeredContainerInstancesCount": counts.instances,
        "runningTasksCount": counts.running_tasks,
        "pendingTasksCount": counts.pending_tasks,
        "activeServicesCount": counts.active_services,
        "statistics": [],
        "tags": [],
        "settings": [],
        "capacityProviders": c.capacity_providers,
        "defaultCapacityProviderStrategy": c.default_strategy,
    });
    let has = |f: &str| include.iter().any(|i| i == f);
    if has("TAGS") {
        v["tags"] = json!(c.tags);
    }
    if has("SETTINGS") {
        v["settings"] = json!(c.settings);
    }
    if has("CONFIGURATIONS") {
        if let Some(conf) = &c.configuration {
            v["configuration"] = conf.clone();
        }
    }
    if has("STATISTICS") {
        v["statistics"] = json!([
            {"name": "runningEC2TasksCount", "value": counts.running_ec2.to_string()},
            {"name": "runningFargateTasksCount", "value": counts.running_fargate.to_string()},
            {"name": "pendingEC2TasksCount", "value": counts.pending_ec2.to_string()},
            {"name": "pendingFargateTasksCount", "value": counts.pending_fargate.to_string()},
            {"name": "activeEC2ServiceCount", "value": counts.active_services.to_string()},
            {"name": "activeFargateServiceCount", "value": "0"},
            {"name": "drainingEC2ServiceCount", "value": "0"},
            {"name": "drainingFargateServiceCount", "value": "0"},
        ]);
    }
    if has("ATTACHMENTS") {
        v["attachments"] = json!([]);
    }
    if let Some(sc) = &c.service_connect_defaults {
        v["serviceConnectDefaults"] = sc.clone();
    }
    v
}

/// Live counts shown on a cluster.
#[derive(Debug, Default, PartialEq)]
pub struct ClusterCounts {
    pub instances: i64,
    pub running_tasks: i64,
    pub pending_tasks: i64,
    pub active_services: i64,
    pub running_ec2: i64,
    pub running_fargate: i64,
    pub pending_ec2: i64,
    pub pending_fargate: i64,
}

impl Ecs {
    /// Live counts of the cluster's container instances and tasks (services: once they land).
    pub fn cluster_counts(&self, cluster: &Cluster) -> ClusterCounts {
        let scope = cluster_scope(&cluster.arn);
        let prefix = format!("{scope}{}/", cluster.name);
        // Counted under the read locks, without cloning rows.
        let mut c = ClusterCounts {
            instances: self.instances.read(|rows| {
                rows.range(prefix.clone()..)
                    .take_while(|(k, _)| k.starts_with(&prefix))
                    .filter(|(_, i)| i.status == "ACTIVE" || i.status == "DRAINING")
                    .count() as i64
            }),
            active_services: self.services.read(|rows| {
                rows.range(prefix.clone()..)
                    .take_while(|(k, _)| k.starts_with(&prefix))
                    .filter(|(_, s)| s.status == "ACTIVE")
                    .count() as i64
            }),
            ..Default::default()
        };
        self.tasks.read(|rows| {
            for (_, t) in rows
                .range(prefix.clone()..)
                .take_while(|(k, _)| k.starts_with(&prefix))
            {
                let fargate = t.launch_type == "FARGATE";
                if t.is_running() {
                    c.running_tasks += 1;
                    if fargate {
                        c.running_fargate += 1
                    } else {
                        c.running_ec2 += 1
                    }
                } else if t.holds_resources() && t.desired_status == "RUNNING" {
                    c.pending_tasks += 1;
                    if fargate {
                        c.pending_fargate += 1
                    } else {
                        c.pending_ec2 += 1
                    }
                }
            }
        });
        c
    }

    /// The ACTIVE cluster named by a request parameter (name or ARN, "default" when absent).
    pub fn active_cluster(&self, ctx: &Ctx, param: Option<&str>) -> Result<Cluster, AwsError> {
        let name = cluster_name(param)?;
        self.clusters
            .get(&format!("{}{}", ctx.scope(), name))
            .filter(|c| c.status == "ACTIVE")
            .ok_or_else(not_found)
    }
}

fn describe_clusters(ecs: &Ecs, ctx: &Ctx, input: Value) -> HandlerResult {
    let mut names = input.string_list("clusters");
    if names.is_empty() {
        names.push("default".into());
    }
    let include = input.string_list("include");
    let mut clusters = Vec::new();
    let mut failures = Vec::new();
    for param in names {
        let name = match cluster_name(Some(&param)) {
            Ok(n) => n,
            Err(_) => {
                failures.push(json!({"arn": param, "reason": "MISSING"}));
                continue;
            }
        };
        match ecs.clusters.get(&format!("{}{}", ctx.scope(), name)) {
            Some(c) => clusters.push(render(ecs, &c, &include)),
            None => failures.push(json!({"arn": cluster_arn(ctx, &name), "reason": "MISSING"})),
        }
    }
    Ok(json!({"clusters": clusters, "failures": failures}))
}

fn list_clusters(ecs: &Ecs, ctx: &Ctx, input: Value) -> HandlerResult {
    let scope = ctx.scope();
    let arns: Vec<String> = ecs.clusters.read(|rows| {
        rows.range(scope.clone()..)
            .take_while(|(k, _)| k.starts_with(&scope))
            .filter(|(_, c)| c.status == "ACTIVE")
            .map(|(_, c)| c.arn.clone())
            .collect()
    });
    super::list_page("clusterArns", arns, &input, 100)
}

fn delete_cluster(ecs: &Ecs, ctx: &Ctx, input: Value) -> HandlerResult {
    let cluster = ecs.active_cluster(ctx, input.str("cluster"))?;
    let counts = ecs.cluster_counts(&cluster);
    if counts.instances > 0 {
        return Err(AwsError::new(
            codes::ecs::ClusterContainsContainerInstancesException,
            "The Cluster cannot be deleted while Container Instances are active or draining.",
        ));
    }
    if counts.active_services > 0 {
        return Err(AwsError::new(
            codes::ecs::ClusterContainsServicesException,
            "The Cluster cannot be deleted while Services are active.",
        ));
    }
    if counts.running_tasks + counts.pending_tasks > 0 {
        return Err(AwsError::new(
            codes::ecs::ClusterContainsTasksException,
            "The Cluster cannot be deleted while Tasks are active.",
        ));
    }
    let key = format!("{}{}", ctx.scope(), cluster.name);
    let deleted = ecs.clusters.transact::<_, AwsError, _>(|t| {
        let c = t.get_mut(&key).ok_or_else(not_found)?;
        c.status = "INACTIVE".into();
        Ok(c.clone())
    })?;
    Ok(json!({"cluster": render(ecs, &deleted, &all_fields())}))
}

fn modify(
    ecs: &Ecs,
    ctx: &Ctx,
    param: Option<&str>,
    f: impl FnOnce(&mut Cluster) -> Result<(), AwsError>,
) -> HandlerResult {
    let cluster = ecs.active_cluster(ctx, param)?;
    let key = format!("{}{}", ctx.scope(), cluster.name);
    let updated = ecs.clusters.transact::<_, AwsError, _>(|t| {
        let c = t.get_mut(&key).ok_or_else(not_found)?;
        f(c)?;
        Ok(c.clone())
    })?;
    Ok(json!({"cluster": render(ecs, &updated, &all_fields())}))
}

fn update_cluster(ecs: &Ecs, ctx: &Ctx, input: Value) -> HandlerResult {
    modify(ecs, ctx, input.str("cluster"), |c| {
        if let Some(s) = input.get("settings").and_then(Value::as_array) {
            merge_settings(&mut c.settings, s);
        }
        if let Some(conf) = input.get("configuration") {
            c.configuration = Some(conf.clone());
        }
        if let Some(sc) = input.get("serviceConnectDefaults") {
            c.service_connect_defaults = Some(sc.clone());
        }
        Ok(())
    })
}

fn update_cluster_settings(ecs: &Ecs, ctx: &Ctx, input: Value) -> HandlerResult {
    modify(ecs, ctx, input.str("cluster"), |c| {
        if let Some(s) = input.get("settings").and_then(Value::as_array) {
            merge_settings(&mut c.settings, s);
        }
        Ok(())
    })
}

fn put_cluster_capacity_providers(ecs: &Ecs, ctx: &Ctx, input: Value) -> HandlerResult {
    let providers = input.string_list("capacityProviders");
    let strategy = input
        .get("defaultCapacityProviderStrategy")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    check_providers(ecs, ctx, &providers, &strategy)?;
    // The cluster must exist before its providers' scaling policies are put in place.
    let cluster = ecs.active_cluster(ctx, input.str("cluster"))?;
    ecs.associate_providers(ctx, &cluster.name, &providers)?;
    modify(ecs, ctx, input.str("cluster"), |c| {
        c.capacity_providers = providers.clone();
        c.default_strategy = strategy;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(f: fn(&Ecs, &Ctx, Value) -> HandlerResult, ecs: &Ecs, input: Value) -> HandlerResult {
        f(ecs, &Ctx::for_tests(), input)
    }

    #[test]
    fn create_list_describe_delete() {
        let ecs = super::super::for_tests();
        let out = call(
            create_cluster,
            &ecs,
            json!({"clusterName": "web", "tags": [{"key": "team", "value": "a"}]}),
        )
        .expect("create");
        assert_eq!(
            out["cluster"]["clusterArn"],
            "arn:aws:ecs:us-east-1:000000000000:cluster/web"
        );
        assert_eq!(out["cluster"]["status"], "ACTIVE");
        // Creating it again is idempotent.
        call(create_cluster, &ecs, json!({"clusterName": "web"})).expect("again");
        call(create_cluster, &ecs, json!({})).expect("default");

        let list = call(list_clusters, &ecs, json!({})).expect("list");
        assert_eq!(list["clusterArns"].as_array().map(Vec::len), Some(2));
        let paged = call(list_clusters, &ecs, json!({"maxResults": 1})).expect("page");
        assert_eq!(paged["clusterArns"].as_array().map(Vec::len), Some(1));
        assert!(paged["nextToken"].is_string());

        let d = call(
            describe_clusters,
            &ecs,
            json!({"clusters": ["web", "nope"], "include": ["TAGS"]}),
        )
        .expect("describe");
        assert_eq!(d["clusters"][0]["tags"][0]["value"], "a");
        assert_eq!(d["failures"][0]["reason"], "MISSING");
        assert_eq!(
            d["failures"][0]["arn"],
            "arn:aws:ecs:us-east-1:000000000000:cluster/nope"
        );

        let del = call(
            delete_cluster,
            &ecs,
            json!({"cluster": "arn:aws:ecs:us-east-1:000000000000:cluster/web"}),
        )
        .expect("delete");
        assert_eq!(del["cluster"]["status"], "INACTIVE");
        let d = call(describe_clusters, &ecs, json!({"clusters": ["web"]})).expect("describe");
        assert_eq!(d["clusters"][0]["status"], "INACTIVE");
        let list = call(list_clusters, &ecs, json!({})).expect("list");
        assert_eq!(list["clusterArns"].as_array().map(Vec::len), Some(1));
        assert_eq!(
            call(delete_cluster, &ecs, json!({"cluster": "web"}))
                .unwrap_err()
                .code,
            "ClusterNotFoundException"
        );
    }

    #[test]
    fn invalid_names_and_providers_are_rejected() {
        let ecs = super::super::for_tests();
        assert_eq!(
            call(create_cluster, &ecs, json!({"clusterName": "a b"}))
                .unwrap_err()
                .code,
            "InvalidParameterException"
        );
        assert_eq!(
            call(
                create_cluster,
                &ecs,
                json!({"clusterName": "c", "capacityProviders": ["nope"]})
            )
            .unwrap_err()
            .code,
            "InvalidParameterException"
        );
        let ok = call(
            create_cluster,
            &ecs,
            json!({"clusterName": "f", "capacityProviders": ["FARGATE"], "defaultCapacityProviderStrategy": [{"capacityProvider": "FARGATE", "weight": 1}]}),
        )
        .expect("fargate");
        assert_eq!(ok["cluster"]["capacityProviders"][0], "FARGATE");
        let s = call(update_cluster_settings, &ecs, json!({"cluster": "f", "settings": [{"name": "containerInsights", "value": "enabled"}]})).expect("settings");
        assert_eq!(
            s["cluster"]["settings"],
            json!([{"name": "containerInsights", "value": "enabled"}])
        );
    }
}
