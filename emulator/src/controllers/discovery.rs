//! Where an ECS task is found through Cloud Map: a service's `serviceRegistries` get one
//! instance per RUNNING task (instance id = task id), deregistered before the task stops, with
//! custom health following the task's container health checks (HealthCheckCustomConfig).
//! The service scheduler calls [`sync`] on every pass; the agent calls [`deregister_task`] first
//! thing when it stops a task.

use crate::services::ecs::{Ecs, EcsService, Task};
use crate::services::input::Input;
use crate::services::servicediscovery::{CloudMap, RegistryService};
use serde_json::Value;
use std::collections::BTreeMap;

/// Attributes ECS adds to every instance it registers.
const ECS_CLUSTER: &str = "ECS_CLUSTER_NAME";
const ECS_SERVICE: &str = "ECS_SERVICE_NAME";

fn scope(arn: &str) -> (String, String) {
    let mut parts = arn.split(':');
    let region = parts.nth(3).unwrap_or_default().to_string();
    let account = parts.next().unwrap_or_default().to_string();
    (account, region)
}

fn awsvpc_address(task: &Task) -> Option<String> {
    task.attachments
        .iter()
        .flat_map(|a| {
            a.get("details")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        })
        .find(|d| d.str("name") == Some("privateIPv4Address"))
        .and_then(|d| d.str("value").map(str::to_string))
}

/// The port an SRV record names for this task: the registry's `port` (awsvpc), else the host
/// port the container port is published on (bridge), else the container port (host, awsvpc).
fn srv_port(task: &Task, entry: &Value) -> Option<u16> {
    if let Some(p) = entry.i64("port") {
        return u16::try_from(p).ok();
    }
    let container = entry.str("containerName")?;
    let port = entry.i64("containerPort")?;
    if task.network_mode != "bridge" {
        return u16::try_from(port).ok();
    }
    task.containers
        .iter()
        .find(|c| c.name == container)?
        .network_bindings
        .iter()
        .find(|b| b.i64("containerPort") == Some(port))
        .and_then(|b| b.i64("hostPort"))
        .and_then(|p| u16::try_from(p).ok())
}

/// The health Cloud Map gets from ECS: UNHEALTHY when an essential container's health check
/// fails, else HEALTHY.
fn healthy(task: &Task) -> bool {
    task.computed_health() != "UNHEALTHY"
}

/// The instance attributes of a running task, or None while its address or port is unknown.
pub fn attributes(
    svc: &EcsService,
    task: &Task,
    entry: &Value,
    registry: &RegistryService,
) -> Option<BTreeMap<String, String>> {
    let (_, region) = scope(&task.arn);
    let ip = if task.network_mode == "awsvpc" {
        awsvpc_address(task)?
    } else {
        task.host_ip.clone().unwrap_or_else(|| "127.0.0.1".into())
    };
    let mut attrs = BTreeMap::new();
    attrs.insert("AWS_INSTANCE_IPV4".to_string(), ip);
    if registry.srv {
        attrs.insert(
            "AWS_INSTANCE_PORT".into(),
            srv_port(task, entry)?.to_string(),
        );
    }
    if registry.custom_health {
        let status = if healthy(task) {
            "HEALTHY"
        } else {
            "UNHEALTHY"
        };
        attrs.insert("AWS_INIT_HEALTH_STATUS".into(), status.into());
    }
    if let Some(az) = &task.availability_zone {
        attrs.insert("AVAILABILITY_ZONE".into(), az.clone());
    }
    attrs.insert("REGION".into(), region);
    attrs.insert(ECS_CLUSTER.into(), svc.cluster.clone());
    attrs.insert(ECS_SERVICE.into(), svc.name.clone());
    attrs.insert("ECS_TASK_DEFINITION_FAMILY".into(), task.family.clone());
    Some(attrs)
}

/// One scheduler pass: registers running tasks, deregisters tasks that no longer run (or are
/// gone), and keeps custom health in step with container health.
pub fn sync(ecs: &Ecs, svc: &EcsService, tasks: &[Task], now: f64) {
    let cm = &ecs.cloudmap;
    if svc.service_registries.is_empty() {
        return;
    }
    let (account, region) = scope(&svc.arn);
    for entry in &svc.service_registries {
        let Some(arn) = entry.str("registryArn") else {
            continue;
        };
        let Some(registry) = cm.registry_service(&account, &region, arn) else {
            continue;
        };
        let should_run = |t: &Task| t.is_running() && t.desired_status == "RUNNING";
        for t in tasks.iter().filter(|t| should_run(t)) {
            match cm.instance_health(&account, &region, &registry.id, &t.id) {
                None => register(cm, svc, t, entry, &registry, now),
                Some(current) if registry.custom_health => {
                    let want = healthy(t);
                    if (current == "HEALTHY") != want {
                        let _ = cm.set_health(&account, &region, &registry.id, &t.id, want);
                    }
                }
                Some(_) => {}
            }
        }
        // Instances this service registered whose task no longer runs.
        for (id, attrs) in cm.instances(&account, &region, &registry.id) {
            let ours = attrs.get(ECS_CLUSTER) == Some(&svc.cluster)
                && attrs.get(ECS_SERVICE) == Some(&svc.name);
            if ours && !tasks.iter().any(|t| t.id == id && should_run(t)) {
                let _ = cm.deregister_instance(&account, &region, now, &registry.id, &id);
            }
        }
    }
}

fn register(
    cm: &CloudMap,
    svc: &EcsService,
    task: &Task,
    entry: &Value,
    registry: &RegistryService,
    now: f64,
) {
    let Some(attrs) = attributes(svc, task, entry, registry) else {
        return;
    };
    let (account, region) = scope(&task.arn);
    if let Err(e) = cm.register_instance(&account, &region, now, &registry.id, &task.id, attrs) {
        tracing::warn!(task = %task.arn, registry = %registry.arn, error = %e, "could not register the task in Cloud Map");
    }
}

/// Before a task stops: removes it from its service's registries (DNS and DiscoverInstances).
pub fn deregister_task(ecs: &Ecs, task: &Task, now: f64) {
    let cm = &ecs.cloudmap;
    let Some(name) = task.group.strip_prefix("service:") else {
        return;
    };
    let (account, region) = scope(&task.arn);
    let key = format!("{account}/{region}/{}/{name}", task.cluster);
    let Some(svc) = ecs.services.get(&key) else {
        return;
    };
    for arn in svc
        .service_registries
        .iter()
        .filter_map(|e| e.str("registryArn"))
    {
        let _ = cm.deregister_instance(&account, &region, now, arn, &task.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::ecs::model::{DesiredStatus, HealthStatus, TaskStatus};
    use crate::services::ecs::task::TaskContainer;
    use crate::services::{Ctx, Deps};
    use serde_json::json;
    use std::sync::Arc;

    async fn call(r: &crate::services::Registry, op: &str, input: Value) -> Value {
        let h = r.get("servicediscovery", op).expect(op).clone();
        h.call(Ctx::for_tests(), input).await.expect(op)
    }

    fn task(id: &str, health: Option<HealthStatus>) -> Task {
        Task {
            arn: format!("arn:aws:ecs:us-east-1:000000000000:task/c/{id}"),
            id: id.into(),
            cluster: "c".into(),
            family: "web".into(),
            network_mode: "bridge".into(),
            host_ip: Some("127.16.0.9".into()),
            group: "service:web".into(),
            last_status: TaskStatus::Running,
            desired_status: DesiredStatus::Running,
            containers: vec![TaskContainer {
                name: "app".into(),
                essential: true,
                health_status: health,
                network_bindings: vec![json!({"containerPort": 8080, "hostPort": 32801})],
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn running_tasks_register_follow_container_health_and_leave_when_stopped() {
        let deps = Deps::for_tests();
        let r = crate::app::build(&deps);
        let ecs: Arc<Ecs> = r.handle().expect("ecs");
        let cm: Arc<CloudMap> = r.handle().expect("cloud map");
        let ctx = Ctx::for_tests();
        let vpc = r
            .handle::<crate::services::ec2::Ec2>()
            .expect("ec2")
            .default_vpc(&ctx.account, &ctx.region)
            .expect("vpc")
            .expect("default")
            .vpc_id;
        let op = call(
            &r,
            "CreatePrivateDnsNamespace",
            json!({"Name": "prod.local", "Vpc": vpc}),
        )
        .await;
        let op = call(
            &r,
            "GetOperation",
            json!({"OperationId": op["OperationId"]}),
        )
        .await;
        let svc = call(
            &r,
            "CreateService",
            json!({"Name": "web", "NamespaceId": op["Operation"]["Targets"]["NAMESPACE"],
                   "DnsConfig": {"DnsRecords": [{"Type": "SRV", "TTL": 10}]},
                   "HealthCheckCustomConfig": {}}),
        )
        .await;
        let registry = svc["Service"]["Arn"].as_str().expect("arn").to_string();
        let id = svc["Service"]["Id"].as_str().expect("id").to_string();
        let ecs_service = EcsService {
            name: "web".into(),
            arn: "arn:aws:ecs:us-east-1:000000000000:service/c/web".into(),
            cluster: "c".into(),
            service_registries: vec![
                json!({"registryArn": registry, "containerName": "app", "containerPort": 8080}),
            ],
            ..Default::default()
        };
        let (a, b) = (task("a", Some(HealthStatus::Healthy)), task("b", None));
        sync(&ecs, &ecs_service, &[a.clone(), b.clone()], ctx.now);
        let instances = cm.instances(&ctx.account, &ctx.region, &id);
        assert_eq!(instances.len(), 2);
        assert_eq!(instances[0].1["AWS_INSTANCE_IPV4"], "127.16.0.9");
        assert_eq!(instances[0].1["AWS_INSTANCE_PORT"], "32801");
        assert_eq!(instances[0].1["ECS_SERVICE_NAME"], "web");
        // a's container health check fails: UNHEALTHY, and hidden from HEALTHY discovery.
        let sick = task("a", Some(HealthStatus::Unhealthy));
        sync(&ecs, &ecs_service, &[sick, b.clone()], ctx.now);
        assert_eq!(
            cm.instance_health(&ctx.account, &ctx.region, &id, "a")
                .as_deref(),
            Some("UNHEALTHY")
        );
        let found = call(
            &r,
            "DiscoverInstances",
            json!({"NamespaceName": "prod.local", "ServiceName": "web"}),
        )
        .await;
        assert_eq!(found["Instances"].as_array().map(Vec::len), Some(1));
        assert_eq!(found["Instances"][0]["InstanceId"], "b");
        // a is gone from the scheduler's view: deregistered.
        sync(&ecs, &ecs_service, &[b], ctx.now);
        let left: Vec<String> = cm
            .instances(&ctx.account, &ctx.region, &id)
            .into_iter()
            .map(|(i, _)| i)
            .collect();
        assert_eq!(left, vec!["b"]);
    }
}
