//! What the dashboard and `ecs-emulator status` show, built from the emulated APIs' answers.
//! Serializable, so the status command reads the same model as JSON (`GET /_emulator/summary`).

use super::api::{n, s, tail, Api};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub account: String,
    pub region: String,
    pub now: f64,
    pub clusters: Vec<ClusterView>,
    pub load_balancers: Vec<LoadBalancerView>,
    pub repositories: Vec<RepositoryView>,
    /// Other services' resources, by kind ("File systems", "Cloud Map namespaces", "Alarms", …),
    /// one line each; present only for services the emulator implements.
    pub others: BTreeMap<String, Vec<String>>,
    /// Faults made through /_emulator/faults, oldest first.
    #[serde(default)]
    pub faults: Vec<FaultView>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FaultView {
    pub id: String,
    pub kind: String,
    pub summary: String,
    /// Whether it lasts until healed (else it happened once).
    pub lasting: bool,
    pub created_at: f64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterView {
    pub name: String,
    pub status: String,
    pub running_tasks: i64,
    pub pending_tasks: i64,
    pub instances: Vec<InstanceView>,
    /// Tasks with no container instance (Fargate, or not placed).
    pub unplaced: Vec<TaskBox>,
    /// The newest stopped tasks (ECS keeps them describable for a while).
    pub recently_stopped: Vec<TaskBox>,
    pub services: Vec<ServiceView>,
    /// AWS/ECS CPUUtilization and MemoryUtilization of the cluster, latest minute, when published.
    pub cpu_used_percent: Option<f64>,
    pub memory_used_percent: Option<f64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceView {
    pub arn: String,
    pub ec2_instance_id: String,
    pub instance_type: String,
    pub availability_zone: String,
    pub status: String,
    /// "spot" or "on-demand".
    pub lifecycle: String,
    pub cpu_registered: i64,
    pub cpu_remaining: i64,
    pub memory_registered: i64,
    pub memory_remaining: i64,
    pub tasks: Vec<TaskBox>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskBox {
    pub id: String,
    pub task_definition: String,
    pub last_status: String,
    pub desired_status: String,
    pub group: String,
    pub cpu: i64,
    pub memory: i64,
    pub launch_type: String,
    pub stopped_reason: String,
    pub stopped_at: f64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceView {
    pub name: String,
    pub status: String,
    pub desired: i64,
    pub running: i64,
    pub pending: i64,
    pub deployments: Vec<DeploymentView>,
    pub events: Vec<(f64, String)>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentView {
    pub id: String,
    pub status: String,
    pub task_definition: String,
    pub desired: i64,
    pub running: i64,
    pub pending: i64,
    pub failed: i64,
    pub rollout_state: String,
    pub rollout_state_reason: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadBalancerView {
    pub name: String,
    pub arn: String,
    pub kind: String,
    pub dns_name: String,
    pub state: String,
    pub listeners: Vec<ListenerView>,
    pub target_groups: Vec<TargetGroupView>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListenerView {
    pub protocol: String,
    pub port: i64,
    /// Where the listener really listens on this machine.
    pub local_url: Option<String>,
    pub rules: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetGroupView {
    pub name: String,
    pub arn: String,
    pub targets: Vec<TargetView>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetView {
    pub id: String,
    pub port: i64,
    pub state: String,
    pub reason: String,
    pub description: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RepositoryView {
    pub name: String,
    pub uri: String,
    pub tag_mutability: String,
    pub images: Vec<ImageView>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageView {
    pub tags: Vec<String>,
    pub digest: String,
    pub size_bytes: i64,
    pub pushed_at: f64,
}

impl Summary {
    pub async fn build(api: &Api<'_>, listener_urls: &BTreeMap<String, String>) -> Summary {
        Summary {
            account: api.account().to_string(),
            region: api.region().to_string(),
            now: api.now(),
            clusters: clusters(api).await,
            load_balancers: load_balancers(api, listener_urls).await,
            repositories: repositories(api).await,
            others: others(api).await,
            faults: api
                .faults()
                .into_iter()
                .map(|f| FaultView {
                    summary: f.kind.describe(),
                    kind: f.kind.name().to_string(),
                    lasting: f.kind.lasting(),
                    created_at: f.created_at,
                    id: f.id,
                })
                .collect(),
        }
    }
}

pub async fn clusters(api: &Api<'_>) -> Vec<ClusterView> {
    let arns = api
        .list_all("ecs", "ListClusters", json!({}), "clusterArns")
        .await;
    let mut out = Vec::new();
    for chunk in arns.chunks(100) {
        let Some(described) = api
            .call("ecs", "DescribeClusters", json!({ "clusters": chunk }))
            .await
        else {
            continue;
        };
        for c in described["clusters"].as_array().into_iter().flatten() {
            out.push(cluster(api, c).await);
        }
    }
    out
}

/// How many stopped tasks a cluster shows.
const RECENTLY_STOPPED: usize = 10;

pub async fn cluster(api: &Api<'_>, c: &Value) -> ClusterView {
    let name = s(c, "clusterName").to_string();
    let tasks = tasks(api, &name).await;
    let mut instances = instances(api, &name).await;
    let mut unplaced = Vec::new();
    let mut recently_stopped = Vec::new();
    for (instance_arn, task) in tasks {
        if task.last_status == "STOPPED" {
            recently_stopped.push(task);
            continue;
        }
        match instances.iter_mut().find(|i| i.arn == instance_arn) {
            Some(i) => i.tasks.push(task),
            None => unplaced.push(task),
        }
    }
    recently_stopped.sort_by(|a, b| b.stopped_at.total_cmp(&a.stopped_at));
    recently_stopped.truncate(RECENTLY_STOPPED);
    ClusterView {
        recently_stopped,
        status: s(c, "status").to_string(),
        running_tasks: n(c, "runningTasksCount"),
        pending_tasks: n(c, "pendingTasksCount"),
        instances,
        unplaced,
        services: services(api, &name).await,
        cpu_used_percent: latest_metric(api, "CPUUtilization", &name).await,
        memory_used_percent: latest_metric(api, "MemoryUtilization", &name).await,
        name,
    }
}

/// The cluster's tasks (running and recently stopped), each with its container instance ARN.
async fn tasks(api: &Api<'_>, cluster: &str) -> Vec<(String, TaskBox)> {
    let mut arns = Vec::new();
    for status in ["RUNNING", "STOPPED"] {
        arns.extend(
            api.list_all(
                "ecs",
                "ListTasks",
                json!({"cluster": cluster, "desiredStatus": status}),
                "taskArns",
            )
            .await,
        );
    }
    let mut out = Vec::new();
    for chunk in arns.chunks(100) {
        let Some(described) = api
            .call(
                "ecs",
                "DescribeTasks",
                json!({"cluster": cluster, "tasks": chunk}),
            )
            .await
        else {
            continue;
        };
        for t in described["tasks"].as_array().into_iter().flatten() {
            out.push((s(t, "containerInstanceArn").to_string(), task_box(t)));
        }
    }
    out
}

pub fn task_box(t: &Value) -> TaskBox {
    let int = |k: &str| s(t, k).parse::<i64>().unwrap_or(0);
    TaskBox {
        id: tail(s(t, "taskArn")).to_string(),
        task_definition: tail(s(t, "taskDefinitionArn")).to_string(),
        last_status: s(t, "lastStatus").to_string(),
        desired_status: s(t, "desiredStatus").to_string(),
        group: s(t, "group").to_string(),
        cpu: int("cpu"),
        memory: int("memory"),
        launch_type: s(t, "launchType").to_string(),
        stopped_reason: s(t, "stoppedReason").to_string(),
        stopped_at: t["stoppedAt"].as_f64().unwrap_or(0.0),
    }
}

async fn instances(api: &Api<'_>, cluster: &str) -> Vec<InstanceView> {
    let arns = api
        .list_all(
            "ecs",
            "ListContainerInstances",
            json!({"cluster": cluster}),
            "containerInstanceArns",
        )
        .await;
    let mut out = Vec::new();
    for chunk in arns.chunks(100) {
        let Some(described) = api
            .call(
                "ecs",
                "DescribeContainerInstances",
                json!({"cluster": cluster, "containerInstances": chunk}),
            )
            .await
        else {
            continue;
        };
        for i in described["containerInstances"]
            .as_array()
            .into_iter()
            .flatten()
        {
            out.push(instance(i));
        }
    }
    let spot = spot_instances(api, &out).await;
    for i in &mut out {
        i.lifecycle = if spot.contains(&i.ec2_instance_id) {
            "spot".into()
        } else {
            "on-demand".into()
        };
    }
    out
}

fn instance(i: &Value) -> InstanceView {
    let resource = |list: &str, name: &str| {
        i[list]
            .as_array()
            .into_iter()
            .flatten()
            .find(|r| s(r, "name") == name)
            .map(|r| n(r, "integerValue"))
            .unwrap_or(0)
    };
    let attribute = |name: &str| {
        i["attributes"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|a| s(a, "name") == name)
            .map(|a| s(a, "value").to_string())
            .unwrap_or_default()
    };
    InstanceView {
        arn: s(i, "containerInstanceArn").to_string(),
        ec2_instance_id: s(i, "ec2InstanceId").to_string(),
        instance_type: attribute("ecs.instance-type"),
        availability_zone: attribute("ecs.availability-zone"),
        status: s(i, "status").to_string(),
        lifecycle: String::new(),
        cpu_registered: resource("registeredResources", "CPU"),
        cpu_remaining: resource("remainingResources", "CPU"),
        memory_registered: resource("registeredResources", "MEMORY"),
        memory_remaining: resource("remainingResources", "MEMORY"),
        tasks: Vec::new(),
    }
}

/// Which of these instances EC2 says are Spot instances.
async fn spot_instances(api: &Api<'_>, instances: &[InstanceView]) -> Vec<String> {
    let ids: Vec<&str> = instances
        .iter()
        .map(|i| i.ec2_instance_id.as_str())
        .filter(|id| !id.is_empty())
        .collect();
    if ids.is_empty() {
        return Vec::new();
    }
    let Some(out) = api
        .call("ec2", "DescribeInstances", json!({ "InstanceIds": ids }))
        .await
    else {
        return Vec::new();
    };
    out["Reservations"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|r| r["Instances"].as_array().into_iter().flatten())
        .filter(|i| s(i, "InstanceLifecycle") == "spot")
        .map(|i| s(i, "InstanceId").to_string())
        .collect()
}

async fn services(api: &Api<'_>, cluster: &str) -> Vec<ServiceView> {
    let arns = api
        .list_all(
            "ecs",
            "ListServices",
            json!({"cluster": cluster}),
            "serviceArns",
        )
        .await;
    let mut out = Vec::new();
    for chunk in arns.chunks(10) {
        let Some(described) = api
            .call(
                "ecs",
                "DescribeServices",
                json!({"cluster": cluster, "services": chunk}),
            )
            .await
        else {
            continue;
        };
        for v in described["services"].as_array().into_iter().flatten() {
            out.push(service(v));
        }
    }
    out
}

pub fn service(v: &Value) -> ServiceView {
    ServiceView {
        name: s(v, "serviceName").to_string(),
        status: s(v, "status").to_string(),
        desired: n(v, "desiredCount"),
        running: n(v, "runningCount"),
        pending: n(v, "pendingCount"),
        deployments: v["deployments"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|d| DeploymentView {
                id: s(d, "id").to_string(),
                status: s(d, "status").to_string(),
                task_definition: tail(s(d, "taskDefinition")).to_string(),
                desired: n(d, "desiredCount"),
                running: n(d, "runningCount"),
                pending: n(d, "pendingCount"),
                failed: n(d, "failedTasks"),
                rollout_state: s(d, "rolloutState").to_string(),
                rollout_state_reason: s(d, "rolloutStateReason").to_string(),
            })
            .collect(),
        events: v["events"]
            .as_array()
            .into_iter()
            .flatten()
            .take(20)
            .map(|e| {
                (
                    e["createdAt"].as_f64().unwrap_or(0.0),
                    s(e, "message").to_string(),
                )
            })
            .collect(),
    }
}

/// The newest datapoint of an AWS/ECS cluster metric in the last 10 minutes, if published.
async fn latest_metric(api: &Api<'_>, metric: &str, cluster: &str) -> Option<f64> {
    let now = api.now();
    let out = api
        .call(
            "cloudwatch",
            "GetMetricStatistics",
            json!({
                "Namespace": "AWS/ECS",
                "MetricName": metric,
                "Dimensions": [{"Name": "ClusterName", "Value": cluster}],
                "StartTime": now - 600.0,
                "EndTime": now,
                "Period": 60,
                "Statistics": ["Average"],
            }),
        )
        .await?;
    out["Datapoints"]
        .as_array()?
        .iter()
        .max_by(|a, b| {
            let t = |d: &Value| d["Timestamp"].as_f64().unwrap_or(0.0);
            t(a).total_cmp(&t(b))
        })
        .and_then(|d| d["Average"].as_f64())
}

pub async fn load_balancers(
    api: &Api<'_>,
    listener_urls: &BTreeMap<String, String>,
) -> Vec<LoadBalancerView> {
    let lbs = api
        .list_all("elbv2", "DescribeLoadBalancers", json!({}), "LoadBalancers")
        .await;
    let mut out = Vec::new();
    for lb in lbs {
        let arn = s(&lb, "LoadBalancerArn").to_string();
        let mut view = LoadBalancerView {
            name: s(&lb, "LoadBalancerName").to_string(),
            kind: s(&lb, "Type").to_string(),
            dns_name: s(&lb, "DNSName").to_string(),
            state: lb["State"]["Code"].as_str().unwrap_or("").to_string(),
            arn: arn.clone(),
            ..Default::default()
        };
        let listeners = api
            .list_all(
                "elbv2",
                "DescribeListeners",
                json!({"LoadBalancerArn": arn}),
                "Listeners",
            )
            .await;
        for l in listeners {
            let larn = s(&l, "ListenerArn").to_string();
            let scheme = if s(&l, "Protocol") == "HTTPS" {
                "https"
            } else {
                "http"
            };
            let rules = api
                .list_all(
                    "elbv2",
                    "DescribeRules",
                    json!({"ListenerArn": larn}),
                    "Rules",
                )
                .await;
            view.listeners.push(ListenerView {
                protocol: s(&l, "Protocol").to_string(),
                port: n(&l, "Port"),
                local_url: listener_urls
                    .get(&larn)
                    .map(|addr| format!("{scheme}://{addr}/")),
                rules: rules.iter().map(rule_line).collect(),
            });
        }
        let groups = api
            .list_all(
                "elbv2",
                "DescribeTargetGroups",
                json!({"LoadBalancerArn": arn}),
                "TargetGroups",
            )
            .await;
        for g in groups {
            let garn = s(&g, "TargetGroupArn").to_string();
            let health = api
                .call(
                    "elbv2",
                    "DescribeTargetHealth",
                    json!({"TargetGroupArn": garn}),
                )
                .await
                .unwrap_or(Value::Null);
            view.target_groups.push(TargetGroupView {
                name: s(&g, "TargetGroupName").to_string(),
                arn: garn,
                targets: health["TargetHealthDescriptions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|d| TargetView {
                        id: d["Target"]["Id"].as_str().unwrap_or("").to_string(),
                        port: d["Target"]["Port"].as_i64().unwrap_or(0),
                        state: d["TargetHealth"]["State"]
                            .as_str()
                            .unwrap_or("")
                            .to_string(),
                        reason: d["TargetHealth"]["Reason"]
                            .as_str()
                            .unwrap_or("")
                            .to_string(),
                        description: d["TargetHealth"]["Description"]
                            .as_str()
                            .unwrap_or("")
                            .to_string(),
                    })
                    .collect(),
            });
        }
        out.push(view);
    }
    out
}

/// A rule in one line: "10: path-pattern /api/* → forward".
fn rule_line(r: &Value) -> String {
    let conditions: Vec<String> = r["Conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            let values: Vec<&str> = c["Values"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            format!("{} {}", s(c, "Field"), values.join(","))
        })
        .collect();
    let actions: Vec<&str> = r["Actions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| s(a, "Type"))
        .collect();
    let when = if conditions.is_empty() {
        "any request".to_string()
    } else {
        conditions.join(" and ")
    };
    format!("{}: {} → {}", s(r, "Priority"), when, actions.join(", "))
}

pub async fn repositories(api: &Api<'_>) -> Vec<RepositoryView> {
    let repos = api
        .list_all("ecr", "DescribeRepositories", json!({}), "repositories")
        .await;
    let mut out = Vec::new();
    for r in repos {
        let name = s(&r, "repositoryName").to_string();
        let images = api
            .list_all(
                "ecr",
                "DescribeImages",
                json!({"repositoryName": name}),
                "imageDetails",
            )
            .await;
        let mut images: Vec<ImageView> = images
            .iter()
            .map(|i| ImageView {
                tags: i["imageTags"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .map(String::from)
                    .collect(),
                digest: s(i, "imageDigest").to_string(),
                size_bytes: n(i, "imageSizeInBytes"),
                pushed_at: i["imagePushedAt"].as_f64().unwrap_or(0.0),
            })
            .collect();
        images.sort_by(|a, b| b.pushed_at.total_cmp(&a.pushed_at));
        out.push(RepositoryView {
            uri: s(&r, "repositoryUri").to_string(),
            tag_mutability: s(&r, "imageTagMutability").to_string(),
            images,
            name,
        });
    }
    out
}

/// One line per resource of the services that have no page of their own yet.
async fn others(api: &Api<'_>) -> BTreeMap<String, Vec<String>> {
    // (heading, service, operation, list key, line from an item)
    type Line = fn(&Value) -> String;
    let sources: [(&str, &str, &str, &str, Line); 5] = [
        (
            "File systems (EFS)",
            "efs",
            "DescribeFileSystems",
            "FileSystems",
            |v| {
                format!(
                    "{} {} {}",
                    s(v, "FileSystemId"),
                    s(v, "Name"),
                    s(v, "LifeCycleState")
                )
            },
        ),
        (
            "Cloud Map namespaces",
            "servicediscovery",
            "ListNamespaces",
            "Namespaces",
            |v| format!("{} {} {}", s(v, "Id"), s(v, "Name"), s(v, "Type")),
        ),
        (
            "Alarms",
            "cloudwatch",
            "DescribeAlarms",
            "MetricAlarms",
            |v| format!("{} {}", s(v, "AlarmName"), s(v, "StateValue")),
        ),
        (
            "Auto Scaling groups",
            "autoscaling",
            "DescribeAutoScalingGroups",
            "AutoScalingGroups",
            |v| {
                format!(
                    "{} min {} desired {} max {}",
                    s(v, "AutoScalingGroupName"),
                    n(v, "MinSize"),
                    n(v, "DesiredCapacity"),
                    n(v, "MaxSize")
                )
            },
        ),
        (
            "Scaling activities (ECS services)",
            "application-autoscaling",
            "DescribeScalingActivities",
            "ScalingActivities",
            |v| format!("{} {}", s(v, "StatusCode"), s(v, "Description")),
        ),
    ];
    let mut out = BTreeMap::new();
    for (heading, service, operation, key, line) in sources {
        if !api.has(service, operation) {
            continue;
        }
        let input = if service == "application-autoscaling" {
            json!({"ServiceNamespace": "ecs"})
        } else {
            json!({})
        };
        let items = api.list_all(service, operation, input, key).await;
        out.insert(heading.to_string(), items.iter().map(line).collect());
    }
    out
}
