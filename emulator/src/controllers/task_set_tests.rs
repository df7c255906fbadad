//! Task sets of EXTERNAL and CODE_DEPLOY services with the real scheduler and task agent on the
//! recording runtime: each task set runs its computedDesiredCount, the service counts sum the
//! task sets, scaling a set to 0 and deleting it stop its tasks, and ECS's errors.

use super::scheduler::Scheduler;
use super::testkit::{container, World, CLUSTER};
use serde_json::{json, Value};
use std::time::Duration;

fn settled(w: &World) -> bool {
    w.tasks()
        .iter()
        .all(|t| t.is_stopped() || (t.is_running() && t.wanted()))
}

async fn pass(w: &World, s: &Scheduler) {
    s.pass();
    w.until("the agent settles", settled).await;
}

/// Passes until `done` (at most 50).
async fn passes_until(w: &World, s: &Scheduler, what: &str, done: impl Fn(&World) -> bool) {
    for _ in 0..50 {
        pass(w, s).await;
        if done(w) {
            return;
        }
    }
    panic!(
        "not {what} after 50 passes: {:#?}",
        w.service("web").task_sets
    );
}

/// Running tasks started by `started_by`.
fn running(w: &World, started_by: &str) -> usize {
    w.tasks()
        .iter()
        .filter(|t| t.is_running() && t.wanted() && t.started_by.as_deref() == Some(started_by))
        .count()
}

async fn describe_set(w: &World, id: &str) -> Value {
    let out = w
        .call(
            "DescribeTaskSets",
            json!({"cluster": CLUSTER, "service": "web", "taskSets": [id], "include": ["TAGS"]}),
        )
        .await;
    out["taskSets"][0].clone()
}

/// The error `op` answers, as (code, message); every error these tests provoke is a client
/// error, so each is also checked to reach the client as HTTP 400 (the status the ECS model and
/// the wire encoder give it).
async fn error(w: &World, op: &str, input: Value) -> (String, String) {
    let (code, status, message) = w.error(op, input).await;
    assert_eq!(status, 400, "{op}: {code} {message}");
    (code, message)
}

#[tokio::test]
async fn an_external_service_runs_its_task_sets() {
    let w = World::with_time_scale(Duration::ZERO, 1000.0).await;
    w.instance();
    w.instance();
    let v1 = w
        .task_definition("web", json!([container("app", &["sleep", "3600"])]))
        .await;
    let v2 = w
        .task_definition("web", json!([container("app", &["sleep", "7200"])]))
        .await;
    let _agent = w.spawn_agent();
    let created = w
        .call(
            "CreateService",
            json!({"cluster": CLUSTER, "serviceName": "web", "desiredCount": 2,
                   "deploymentController": {"type": "EXTERNAL"}}),
        )
        .await;
    let svc = &created["service"];
    assert_eq!(svc["deploymentController"], json!({"type": "EXTERNAL"}));
    assert_eq!(svc["deployments"], json!([]));
    assert_eq!(svc["taskSets"], json!([]));
    assert!(svc.get("taskDefinition").is_none(), "{svc}");
    let s = Scheduler::new(w.ecs.clone(), w.clock.clone());

    let blue = w
        .call(
            "CreateTaskSet",
            json!({"cluster": CLUSTER, "service": "web", "taskDefinition": v1, "externalId": "blue",
                   "scale": {"value": 100.0, "unit": "PERCENT"}, "clientToken": "t1",
                   "tags": [{"key": "k", "value": "v"}]}),
        )
        .await["taskSet"]
        .clone();
    let blue_id = blue["id"].as_str().expect("id").to_string();
    assert!(
        blue_id.starts_with("ecs-svc/") && blue_id.len() == 27,
        "{blue_id}"
    );
    assert_eq!(
        blue["taskSetArn"],
        json!(format!(
            "arn:aws:ecs:us-east-1:000000000000:task-set/{CLUSTER}/web/{blue_id}"
        ))
    );
    assert_eq!(blue["status"], "ACTIVE");
    assert_eq!(blue["computedDesiredCount"], 2);
    assert_eq!(blue["stabilityStatus"], "STABILIZING");
    assert_eq!(blue["launchType"], "EC2");
    // The same clientToken is the same task set.
    let again = w
        .call(
            "CreateTaskSet",
            json!({"cluster": CLUSTER, "service": "web", "taskDefinition": v1, "clientToken": "t1"}),
        )
        .await;
    assert_eq!(again["taskSet"]["id"], json!(blue_id));

    passes_until(&w, &s, "running blue", |w| running(w, &blue_id) == 2).await;
    // ECS names the task set in the events about its tasks.
    let started = format!("(service web, taskSet {blue_id}) has started ");
    assert!(
        w.service("web").events.iter().any(|e| e["message"]
            .as_str()
            .is_some_and(|m| m.starts_with(&started))),
        "{:#?}",
        w.service("web").events
    );
    let tasks = w.tasks();
    assert!(tasks
        .iter()
        .all(|t| t.group == "service:web" && t.task_definition_arn == v1));
    pass(&w, &s).await;
    let d = describe_set(&w, &blue_id).await;
    assert_eq!(
        (d["runningCount"].clone(), d["pendingCount"].clone()),
        (json!(2), json!(0))
    );
    assert_eq!(d["stabilityStatus"], "STEADY_STATE");
    assert_eq!(d["tags"], json!([{"key": "k", "value": "v"}]));

    // A second task set at 50 %: ceil(2 × 0.5) = 1 task; the service counts both sets.
    let green = w
        .call(
            "CreateTaskSet",
            json!({"cluster": CLUSTER, "service": "web", "taskDefinition": v2, "externalId": "green",
                   "scale": {"value": 50.0, "unit": "PERCENT"}}),
        )
        .await["taskSet"]
        .clone();
    let green_id = green["id"].as_str().expect("id").to_string();
    assert_eq!(green["computedDesiredCount"], 1);
    passes_until(&w, &s, "running green", |w| running(w, &green_id) == 1).await;
    let shown = w
        .call(
            "DescribeServices",
            json!({"cluster": CLUSTER, "services": ["web"]}),
        )
        .await["services"][0]
        .clone();
    assert_eq!(shown["runningCount"], 3);
    assert_eq!(shown["taskSets"].as_array().map(Vec::len), Some(2));

    let primary = w
        .call(
            "UpdateServicePrimaryTaskSet",
            json!({"cluster": CLUSTER, "service": "web", "primaryTaskSet": green["taskSetArn"]}),
        )
        .await;
    assert_eq!(primary["taskSet"]["status"], "PRIMARY");
    assert_eq!(
        w.service("web").task_definition,
        v2,
        "the primary's becomes the service's"
    );
    w.call(
        "UpdateTaskSet",
        json!({"cluster": CLUSTER, "service": "web", "taskSet": green_id, "scale": {"value": 100.0, "unit": "PERCENT"}}),
    )
    .await;
    let scaled = w
        .call(
            "UpdateTaskSet",
            json!({"cluster": CLUSTER, "service": "web", "taskSet": blue_id, "scale": {"value": 0.0, "unit": "PERCENT"}}),
        )
        .await;
    assert_eq!(scaled["taskSet"]["computedDesiredCount"], 0);
    passes_until(&w, &s, "blue scaled in", |w| {
        running(w, &blue_id) == 0 && running(w, &green_id) == 2
    })
    .await;

    // DeleteTaskSet: refused while scaled above 0 without force; a deleted set drains away.
    let (code, message) = error(
        &w,
        "DeleteTaskSet",
        json!({"cluster": CLUSTER, "service": "web", "taskSet": green_id}),
    )
    .await;
    assert_eq!(code, "InvalidParameterException");
    assert_eq!(
        message,
        "The task set cannot be deleted while it is scaled above 0."
    );
    let deleted = w
        .call(
            "DeleteTaskSet",
            json!({"cluster": CLUSTER, "service": "web", "taskSet": blue_id}),
        )
        .await;
    assert_eq!(deleted["taskSet"]["status"], "DRAINING");
    passes_until(&w, &s, "blue gone", |w| {
        w.service("web").task_sets.len() == 1
    })
    .await;
    let gone = w
        .call(
            "DescribeTaskSets",
            json!({"cluster": CLUSTER, "service": "web", "taskSets": [blue_id]}),
        )
        .await;
    assert_eq!(gone["failures"][0]["reason"], "MISSING");
    let (code, _) = error(
        &w,
        "UpdateTaskSet",
        json!({"cluster": CLUSTER, "service": "web", "taskSet": blue_id, "scale": {"value": 1.0, "unit": "PERCENT"}}),
    )
    .await;
    assert_eq!(code, "TaskSetNotFoundException");
    let (code, message) = error(
        &w,
        "DescribeTaskSets",
        json!({"cluster": CLUSTER, "service": "web", "taskSets": ["arn:aws:ecs:us-east-1:000000000000:task/c/abc"]}),
    )
    .await;
    assert_eq!(
        (code.as_str(), message.as_str()),
        (
            "InvalidParameterException",
            "Task Set Identifier is invalid"
        )
    );

    // UpdateService of an EXTERNAL service: desiredCount yes (the sets follow), a task
    // definition no.
    w.call(
        "UpdateService",
        json!({"cluster": CLUSTER, "service": "web", "desiredCount": 3}),
    )
    .await;
    passes_until(&w, &s, "green at 3", |w| running(w, &green_id) == 3).await;
    let (code, message) = error(
        &w,
        "UpdateService",
        json!({"cluster": CLUSTER, "service": "web", "taskDefinition": v1}),
    )
    .await;
    assert_eq!(code, "InvalidParameterException");
    assert!(
        message.starts_with(
            "Unable to update task definition on services with a EXTERNAL deployment controller."
        ),
        "{message}"
    );

    // DeleteService with force drains the task sets' tasks and the service.
    w.call(
        "DeleteService",
        json!({"cluster": CLUSTER, "service": "web", "force": true}),
    )
    .await;
    passes_until(&w, &s, "deleted", |w| {
        w.service("web").status == crate::services::ecs::model::ServiceStatus::Inactive
    })
    .await;
    assert!(w.tasks().iter().all(|t| t.is_stopped()));
    assert!(w.service("web").task_sets.is_empty());
}

#[tokio::test]
async fn task_set_calls_are_refused_where_ecs_refuses_them() {
    let w = World::with_time_scale(Duration::ZERO, 1000.0).await;
    w.instance();
    let v1 = w
        .task_definition("web", json!([container("app", &["sleep", "3600"])]))
        .await;
    let _agent = w.spawn_agent();
    // A rolling-update (ECS) service has no task sets.
    w.call(
        "CreateService",
        json!({"cluster": CLUSTER, "serviceName": "rolling", "taskDefinition": v1, "desiredCount": 0}),
    )
    .await;
    let only = "Amazon ECS only supports task set management on services configured to use external deployment controllers.";
    let (code, message) = error(
        &w,
        "CreateTaskSet",
        json!({"cluster": CLUSTER, "service": "rolling", "taskDefinition": v1}),
    )
    .await;
    assert_eq!(
        (code.as_str(), message.as_str()),
        ("InvalidParameterException", only)
    );
    let (code, _) = error(
        &w,
        "CreateTaskSet",
        json!({"cluster": CLUSTER, "service": "nope", "taskDefinition": v1}),
    )
    .await;
    assert_eq!(code, "ServiceNotFoundException");
    let (code, _) = error(
        &w,
        "CreateTaskSet",
        json!({"cluster": "nope", "service": "rolling", "taskDefinition": v1}),
    )
    .await;
    assert_eq!(code, "ClusterNotFoundException");
    // EXTERNAL services take none of the parameters that belong to their task sets.
    let refused = [
        (
            json!({"taskDefinition": v1}),
            "TaskDefinition must be blank.",
        ),
        (
            json!({"networkConfiguration": {"awsvpcConfiguration": {"subnets": ["subnet-1"]}}}),
            "NetworkConfiguration must be null.",
        ),
        (
            json!({"loadBalancers": [{"targetGroupArn": "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/t/1", "containerName": "app", "containerPort": 80}]}),
            "LoadBalancers must be empty or null.",
        ),
        (json!({"launchType": "FARGATE"}), "LaunchType must be null."),
        (
            json!({"capacityProviderStrategy": [{"capacityProvider": "FARGATE"}]}),
            "CapacityProviderStrategy must be empty or null.",
        ),
        (
            json!({"platformVersion": "LATEST"}),
            "PlatformVersion must be null.",
        ),
        (
            json!({"serviceRegistries": [{"registryArn": "arn:aws:servicediscovery:us-east-1:000000000000:service/srv-1"}]}),
            "ServiceRegistries must be empty or null.",
        ),
    ];
    for (extra, expected) in refused {
        let mut input = json!({"cluster": CLUSTER, "serviceName": "ext", "deploymentController": {"type": "EXTERNAL"}});
        if let (Some(i), Some(e)) = (input.as_object_mut(), extra.as_object()) {
            i.extend(e.clone());
        }
        let (code, message) = error(&w, "CreateService", input).await;
        assert_eq!(
            (code.as_str(), message.as_str()),
            ("InvalidParameterException", expected),
            "{extra}"
        );
    }
    // Empty lists are "empty or null"; the circuit breaker, the rolling update's, is taken and
    // not kept.
    let ext = w
        .call(
            "CreateService",
            json!({"cluster": CLUSTER, "serviceName": "ext", "loadBalancers": [], "serviceRegistries": [],
                   "deploymentConfiguration": {"deploymentCircuitBreaker": {"enable": true, "rollback": true}},
                   "deploymentController": {"type": "EXTERNAL"}}),
        )
        .await;
    assert!(
        ext["service"]["deploymentConfiguration"]
            .get("deploymentCircuitBreaker")
            .is_none(),
        "{ext}"
    );

    // A CODE_DEPLOY service starts with one PRIMARY task set at 100 % that runs; its task sets
    // are read, not managed, through the task set calls.
    let created = w
        .call(
            "CreateService",
            json!({"cluster": CLUSTER, "serviceName": "web", "taskDefinition": v1, "desiredCount": 1,
                   "deploymentController": {"type": "CODE_DEPLOY"}}),
        )
        .await;
    let sets = created["service"]["taskSets"]
        .as_array()
        .expect("task sets")
        .clone();
    assert_eq!(sets.len(), 1);
    assert_eq!(sets[0]["status"], "PRIMARY");
    assert_eq!(sets[0]["scale"], json!({"value": 100.0, "unit": "PERCENT"}));
    assert_eq!(created["service"]["deployments"], json!([]));
    let id = sets[0]["id"].as_str().expect("id").to_string();
    let s = Scheduler::new(w.ecs.clone(), w.clock.clone());
    passes_until(&w, &s, "running", |w| running(w, &id) == 1).await;
    let (code, message) = error(
        &w,
        "CreateTaskSet",
        json!({"cluster": CLUSTER, "service": "web", "taskDefinition": v1}),
    )
    .await;
    assert_eq!(
        (code.as_str(), message.as_str()),
        ("InvalidParameterException", only)
    );
    let described = w
        .call(
            "DescribeTaskSets",
            json!({"cluster": CLUSTER, "service": "web"}),
        )
        .await;
    assert_eq!(described["taskSets"][0]["runningCount"], 1);
    let (code, message) = error(
        &w,
        "UpdateService",
        json!({"cluster": CLUSTER, "service": "web", "taskDefinition": v1}),
    )
    .await;
    assert_eq!(code, "InvalidParameterException");
    assert_eq!(message, "Unable to update task definition on services with a CODE_DEPLOY deployment controller. Use AWS CodeDeploy to trigger a new deployment.");
    w.call(
        "UpdateService",
        json!({"cluster": CLUSTER, "service": "web", "desiredCount": 2}),
    )
    .await;
    passes_until(&w, &s, "scaled out", |w| running(w, &id) == 2).await;
}

#[tokio::test]
async fn a_service_has_at_most_five_task_sets() {
    let w = World::with_time_scale(Duration::ZERO, 1000.0).await;
    let v1 = w
        .task_definition("web", json!([container("app", &["sleep", "3600"])]))
        .await;
    w.call(
        "CreateService",
        json!({"cluster": CLUSTER, "serviceName": "web", "deploymentController": {"type": "EXTERNAL"}}),
    )
    .await;
    let create = json!({"cluster": CLUSTER, "service": "web", "taskDefinition": v1, "scale": {"value": 0.0, "unit": "PERCENT"}});
    for _ in 0..5 {
        w.call("CreateTaskSet", create.clone()).await;
    }
    let (code, message) = error(&w, "CreateTaskSet", create).await;
    assert_eq!(code, "InvalidParameterException");
    assert_eq!(message, "5 deployments exist on the service. Unable to create new TaskSet since this exceeds the maximum limit.");
    let (code, message) = error(
        &w,
        "CreateTaskSet",
        json!({"cluster": CLUSTER, "service": "web", "taskDefinition": v1, "scale": {"value": 101.0, "unit": "PERCENT"}}),
    )
    .await;
    assert_eq!(code, "InvalidParameterException");
    assert_eq!(message, "Scale value must be between 0 and 100.");
}
