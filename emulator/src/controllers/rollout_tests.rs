//! The service scheduler and the task agent together on the recording runtime: a rolling update
//! within minimumHealthyPercent and maximumPercent, the circuit breaker's trip and rollback, and
//! a DAEMON service placing a task on a new instance. The test calls the scheduler's passes
//! itself (its loop only adds waiting), and lets the agent settle between them.

use super::scheduler::Scheduler;
use super::testkit::{container, World, CLUSTER};
use crate::services::ecs::model::{DeploymentStatus, RolloutState};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

/// Every task is RUNNING and wanted, or STOPPED: the agent has nothing in flight.
fn settled(w: &World) -> bool {
    w.tasks()
        .iter()
        .all(|t| t.is_stopped() || (t.is_running() && t.wanted()))
}

/// The emulator clock runs this much faster than real time in these tests.
const TIME_SCALE: f64 = 1000.0;

/// Emulated time between two passes, as the scheduler's loop spaces them out (at most).
const BETWEEN_PASSES: Duration = Duration::from_secs(5);

async fn pass(w: &World, s: &Scheduler) {
    s.pass();
    w.until("the agent settles", settled).await;
}

fn service_tasks(w: &World, name: &str) -> Vec<crate::services::ecs::Task> {
    let group = format!("service:{name}");
    w.tasks().into_iter().filter(|t| t.group == group).collect()
}

fn completed(w: &World, name: &str) -> bool {
    let s = w.service(name);
    s.deployments.len() == 1 && s.deployments[0].rollout_state == RolloutState::Completed
}

async fn create_service(w: &World, input: Value) -> Arc<Scheduler> {
    w.call("CreateService", input).await;
    Scheduler::new(w.ecs.clone(), w.clock.clone())
}

/// Runs passes until `done`, checking `each` after every pass; panics after `max` passes.
async fn passes_until(
    w: &World,
    s: &Scheduler,
    max: usize,
    done: impl Fn(&World) -> bool,
    each: impl Fn(&World),
) {
    for _ in 0..max {
        pass(w, s).await;
        each(w);
        if done(w) {
            return;
        }
        // A task without health checks counts as healthy 40 s after RUNNING (emulator clock).
        w.clock.sleep(BETWEEN_PASSES).await;
    }
    panic!(
        "not done after {max} passes: {:#?}",
        w.service("web").deployments
    );
}

#[tokio::test]
async fn a_rolling_update_stays_within_minimum_healthy_and_maximum_percent() {
    let w = World::with_time_scale(Duration::ZERO, TIME_SCALE).await;
    w.instance();
    w.instance();
    let v1 = w
        .task_definition("web", json!([container("app", &["sleep", "3600"])]))
        .await;
    let _agent = w.spawn_agent();
    let s = create_service(
        &w,
        json!({"cluster": CLUSTER, "serviceName": "web", "taskDefinition": v1, "desiredCount": 4,
               "deploymentConfiguration": {"minimumHealthyPercent": 50, "maximumPercent": 100}}),
    )
    .await;
    passes_until(&w, &s, 100, |w| completed(w, "web"), |_| {}).await;
    let v2 = w
        .task_definition("web", json!([container("app", &["sleep", "7200"])]))
        .await;
    w.call(
        "UpdateService",
        json!({"cluster": CLUSTER, "service": "web", "taskDefinition": v2}),
    )
    .await;
    let within_bounds = |w: &World| {
        let tasks = service_tasks(w, "web");
        let wanted = tasks
            .iter()
            .filter(|t| !t.is_stopped() && t.wanted())
            .count();
        let running = tasks
            .iter()
            .filter(|t| t.is_running() && t.wanted())
            .count();
        assert!(wanted <= 4, "maximumPercent 100 of 4: {wanted} tasks");
        assert!(
            running >= 2,
            "minimumHealthyPercent 50 of 4: {running} running"
        );
    };
    passes_until(
        &w,
        &s,
        200,
        |w| {
            completed(w, "web")
                && service_tasks(w, "web")
                    .iter()
                    .filter(|t| t.is_running() && t.wanted())
                    .all(|t| t.task_definition_arn == v2)
        },
        within_bounds,
    )
    .await;
    let svc = w.service("web");
    assert_eq!(svc.task_definition, v2);
    let running = service_tasks(&w, "web")
        .into_iter()
        .filter(|t| t.is_running() && t.wanted())
        .count();
    assert_eq!(running, 4);
    let events: Vec<&str> = svc
        .events
        .iter()
        .filter_map(|e| e.get("message").and_then(Value::as_str))
        .collect();
    assert!(
        events
            .iter()
            .any(|m| m.ends_with("has reached a steady state.")),
        "{events:?}"
    );
    // ListServiceDeployments: both deployments, newest first, SUCCESSFUL; the second deployed
    // a new revision over the first one's.
    let list = w
        .call(
            "ListServiceDeployments",
            json!({"cluster": CLUSTER, "service": "web"}),
        )
        .await;
    let briefs = list["serviceDeployments"].as_array().expect("list");
    assert_eq!(briefs.len(), 2, "{list:#}");
    assert!(briefs.iter().all(|b| b["status"] == "SUCCESSFUL"));
    assert!(briefs.iter().all(|b| b["finishedAt"].is_number()));
    let arn = briefs[0]["serviceDeploymentArn"].as_str().expect("arn");
    assert!(
        arn.starts_with(&format!(
            "arn:aws:ecs:us-east-1:000000000000:service-deployment/{CLUSTER}/web/"
        )),
        "{arn}"
    );
    let one = w
        .call(
            "ListServiceDeployments",
            json!({"cluster": CLUSTER, "service": "web", "maxResults": 1, "status": ["SUCCESSFUL"]}),
        )
        .await;
    assert_eq!(one["serviceDeployments"].as_array().map(Vec::len), Some(1));
    assert!(one["nextToken"].is_string());
    let d = w
        .call(
            "DescribeServiceDeployments",
            json!({"serviceDeploymentArns": [arn, format!("{arn}0")]}),
        )
        .await;
    let dep = &d["serviceDeployments"][0];
    assert_eq!(d["failures"][0]["reason"], "MISSING");
    assert_eq!(dep["status"], "SUCCESSFUL");
    assert_eq!(dep["targetServiceRevision"]["runningTaskCount"], 4);
    assert_eq!(dep["targetServiceRevision"]["requestedTaskCount"], 4);
    assert_eq!(
        dep["sourceServiceRevisions"][0]["arn"],
        briefs[1]["targetServiceRevisionArn"]
    );
    assert_eq!(dep["sourceServiceRevisions"][0]["runningTaskCount"], 0);
    assert_eq!(dep["deploymentConfiguration"]["minimumHealthyPercent"], 50);
    assert_eq!(dep["deploymentCircuitBreaker"]["status"], "DISABLED");
    let revs = w
        .call(
            "DescribeServiceRevisions",
            json!({"serviceRevisionArns": [briefs[0]["targetServiceRevisionArn"], briefs[1]["targetServiceRevisionArn"]]}),
        )
        .await;
    assert_eq!(revs["serviceRevisions"][0]["taskDefinition"], json!(v2));
    assert_eq!(revs["serviceRevisions"][1]["taskDefinition"], json!(v1));
    let rev_arn = revs["serviceRevisions"][0]["serviceRevisionArn"]
        .as_str()
        .expect("arn");
    assert!(
        rev_arn.starts_with(&format!(
            "arn:aws:ecs:us-east-1:000000000000:service-revision/{CLUSTER}/web/"
        )),
        "{rev_arn}"
    );
    for (op, input, message) in [
        (
            "ListServiceDeployments",
            json!({"cluster": CLUSTER, "service": "nope"}),
            "Service not found.",
        ),
        (
            "DescribeServiceDeployments",
            json!({"serviceDeploymentArns": []}),
            "Service deployment ARNs cannot be empty.",
        ),
        (
            "DescribeServiceRevisions",
            json!({"serviceRevisionArns": []}),
            "Service revision ARNs cannot be empty.",
        ),
    ] {
        let (code, status, got) = w.error(op, input).await;
        assert_eq!(got, message);
        assert_eq!(status, 400, "{op}");
        assert_eq!(
            code,
            if op == "ListServiceDeployments" {
                "ServiceNotFoundException"
            } else {
                "InvalidParameterException"
            }
        );
    }
}

#[tokio::test]
async fn the_circuit_breaker_trips_on_tasks_that_fail_to_start_and_rolls_back() {
    let w = World::with_time_scale(Duration::ZERO, TIME_SCALE).await;
    w.instance();
    let v1 = w
        .task_definition("web", json!([container("app", &["sleep", "3600"])]))
        .await;
    let v2 = w
        .task_definition("web", json!([container("broken", &["sleep", "3600"])]))
        .await;
    w.runtime.fail_create("broken", "invalid reference format");
    let _agent = w.spawn_agent();
    let s = create_service(
        &w,
        json!({"cluster": CLUSTER, "serviceName": "web", "taskDefinition": v1, "desiredCount": 2,
               "deploymentConfiguration": {"deploymentCircuitBreaker": {"enable": true, "rollback": true}}}),
    )
    .await;
    passes_until(&w, &s, 100, |w| completed(w, "web"), |_| {}).await;
    let first = w.service("web").deployments[0].id.clone();
    w.call(
        "UpdateService",
        json!({"cluster": CLUSTER, "service": "web", "taskDefinition": v2}),
    )
    .await;
    let rolled_back = |w: &World| w.service("web").task_definition == v1;
    passes_until(&w, &s, 200, rolled_back, |_| {}).await;
    let svc = w.service("web");
    // PRIMARY: the rollback, to the last completed deployment's definition.
    let primary = svc.primary().expect("primary").clone();
    assert_eq!(primary.task_definition, v1);
    assert_ne!(primary.id, first);
    // The failed deployment is still shown, FAILED, while the rollback is in progress.
    let failed = svc
        .deployments
        .iter()
        .find(|d| d.task_definition == v2)
        .unwrap_or_else(|| panic!("failed deployment kept: {:#?}", svc.deployments));
    assert_eq!(failed.status, DeploymentStatus::Active);
    assert_eq!(failed.rollout_state, RolloutState::Failed);
    assert!(
        failed.failed_tasks >= 3,
        "threshold 3: {}",
        failed.failed_tasks
    );
    let events: Vec<&str> = svc
        .events
        .iter()
        .filter_map(|e| e.get("message").and_then(Value::as_str))
        .collect();
    assert!(events
        .iter()
        .any(|m| m.ends_with("deployment failed: tasks failed to start.")));
    assert!(events
        .iter()
        .any(|m| m.contains("rolling back to deployment")));
    // The rollback completes; then only it is left.
    passes_until(&w, &s, 200, |w| completed(w, "web"), |_| {}).await;
    let running: Vec<_> = service_tasks(&w, "web")
        .into_iter()
        .filter(|t| t.is_running() && t.wanted())
        .collect();
    assert_eq!(running.len(), 2);
    assert!(running.iter().all(|t| t.task_definition_arn == v1));
    // As service deployments: the failed one ROLLBACK_SUCCESSFUL, back to the first revision.
    let list = w
        .call(
            "ListServiceDeployments",
            json!({"cluster": CLUSTER, "service": "web"}),
        )
        .await;
    let briefs = list["serviceDeployments"].as_array().expect("list");
    assert_eq!(briefs.len(), 2, "{list:#}");
    assert_eq!(briefs[0]["status"], "ROLLBACK_SUCCESSFUL");
    assert_eq!(briefs[1]["status"], "SUCCESSFUL");
    let d = w
        .call(
            "DescribeServiceDeployments",
            json!({"serviceDeploymentArns": [briefs[0]["serviceDeploymentArn"]]}),
        )
        .await;
    let dep = &d["serviceDeployments"][0];
    assert_eq!(
        dep["rollback"]["serviceRevisionArn"],
        briefs[1]["targetServiceRevisionArn"]
    );
    assert_eq!(
        dep["rollback"]["reason"],
        "ECS deployment circuit breaker: tasks failed to start."
    );
    assert_eq!(dep["deploymentCircuitBreaker"]["status"], "TRIGGERED");
    assert_eq!(dep["deploymentCircuitBreaker"]["threshold"], 3);
    assert!(dep["deploymentCircuitBreaker"]["failureCount"].as_i64() >= Some(3));
}

#[tokio::test]
async fn a_daemon_service_places_a_task_on_a_new_instance() {
    let w = World::with_time_scale(Duration::ZERO, TIME_SCALE).await;
    let first = w.instance();
    let def = w
        .task_definition("agent", json!([container("agent", &["sleep", "3600"])]))
        .await;
    let _agent = w.spawn_agent();
    let s = create_service(
        &w,
        json!({"cluster": CLUSTER, "serviceName": "web", "taskDefinition": def,
               "schedulingStrategy": "DAEMON"}),
    )
    .await;
    let on = |w: &World, arn: &str| {
        service_tasks(w, "web")
            .iter()
            .filter(|t| t.is_running() && t.container_instance_arn.as_deref() == Some(arn))
            .count()
    };
    passes_until(&w, &s, 50, |w| on(w, &first.arn) == 1, |_| {}).await;
    let second = w.instance();
    passes_until(&w, &s, 50, |w| on(w, &second.arn) == 1, |_| {}).await;
    assert_eq!(on(&w, &first.arn), 1);
    // Another pass changes nothing.
    pass(&w, &s).await;
    assert_eq!(
        service_tasks(&w, "web")
            .iter()
            .filter(|t| t.wanted())
            .count(),
        2
    );
}

/// A service whose tasks never start: after three failures its launches are throttled (ECS's
/// "unable to consistently start tasks successfully"), with growing waits between them; a new
/// task definition starts unthrottled.
#[tokio::test]
async fn launches_of_a_service_whose_tasks_fail_to_start_are_throttled() {
    let w = World::with_time_scale(Duration::ZERO, TIME_SCALE).await;
    w.instance();
    let broken = w
        .task_definition("web", json!([container("broken", &["sleep", "3600"])]))
        .await;
    w.runtime.fail_create("broken", "invalid reference format");
    let _agent = w.spawn_agent();
    let s = create_service(
        &w,
        json!({"cluster": CLUSTER, "serviceName": "web", "taskDefinition": broken, "desiredCount": 1}),
    )
    .await;
    let launched = |w: &World| service_tasks(w, "web").len();
    let throttled = |w: &World| {
        w.service("web").events.iter().any(|e| {
            e.get("message").and_then(Value::as_str)
                == Some("(service web) is unable to consistently start tasks successfully.")
        })
    };
    // Passes a second apart (emulator clock), as the scheduler's loop makes them.
    let mut passes = 0;
    while !throttled(&w) {
        pass(&w, &s).await;
        w.clock.sleep(Duration::from_secs(1)).await;
        passes += 1;
        assert!(passes < 100, "never throttled: {} launches", launched(&w));
    }
    // Two more launches, each after a wait that doubles (10 s, then 20 s, emulator clock),
    // counted from the stop of the failure before.
    let after = super::scheduler::THROTTLE_AFTER;
    let mut passes = 0;
    while launched(&w) < after + 2 {
        pass(&w, &s).await;
        w.clock.sleep(Duration::from_secs(1)).await;
        passes += 1;
        assert!(passes < 300, "{} launches", launched(&w));
    }
    let mut tasks = service_tasks(&w, "web");
    tasks.sort_by(|a, b| a.created_at.total_cmp(&b.created_at));
    for i in after..after + 2 {
        let wait = super::scheduler::THROTTLE_FIRST * 2f64.powi((i - after) as i32);
        let previous_stop = tasks[i - 1].stopped_at.expect("stopped");
        assert!(
            tasks[i].created_at >= previous_stop + wait,
            "launch {i} at {} after a stop at {previous_stop}: a wait of {wait} s",
            tasks[i].created_at
        );
    }
    // A new task definition: a new deployment, not throttled.
    let good = w
        .task_definition("web", json!([container("app", &["sleep", "3600"])]))
        .await;
    w.call(
        "UpdateService",
        json!({"cluster": CLUSTER, "service": "web", "taskDefinition": good}),
    )
    .await;
    pass(&w, &s).await;
    assert!(
        service_tasks(&w, "web")
            .iter()
            .any(|t| t.task_definition_arn == good),
        "the new deployment launches at once"
    );
}

/// ListTasks pages by a range read from the token (and through the group index with
/// serviceName): pages of three walk every task once, in ARN order, and the index follows a
/// task's group.
#[tokio::test]
async fn list_tasks_pages_in_arn_order_and_by_service_group() {
    let w = World::new(Duration::ZERO).await;
    w.instance();
    w.task_definition("job", json!([container("app", &["sleep", "3600"])]))
        .await;
    let mut all = w.run_task("job", 7).await;
    let grouped = w
        .call(
            "RunTask",
            json!({"cluster": CLUSTER, "taskDefinition": "job", "count": 4, "group": "service:web"}),
        )
        .await;
    let mut web: Vec<String> = grouped["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .map(|t| t["taskArn"].as_str().expect("arn").to_string())
        .collect();
    all.extend(web.iter().cloned());
    all.sort();
    web.sort();
    let walk = |filter: Value| {
        let w = &w;
        async move {
            let mut got = Vec::new();
            let mut token = Value::Null;
            for _ in 0..10 {
                let mut input = json!({"cluster": CLUSTER, "maxResults": 3, "nextToken": token});
                if let (Some(o), Some(f)) = (input.as_object_mut(), filter.as_object()) {
                    o.extend(f.clone());
                }
                let page = w.call("ListTasks", input).await;
                for a in page["taskArns"].as_array().expect("arns") {
                    got.push(a.as_str().expect("arn").to_string());
                }
                token = page["nextToken"].clone();
                if token.is_null() {
                    break;
                }
            }
            got
        }
    };
    assert_eq!(walk(json!({})).await, all);
    assert_eq!(walk(json!({"serviceName": "web"})).await, web);
    assert!(walk(json!({"serviceName": "other"})).await.is_empty());
    assert_eq!(
        w.ecs.service_tasks(&w.ctx().scope(), CLUSTER, "web").len(),
        4
    );
    let (code, status, _) = w
        .error("ListTasks", json!({"cluster": CLUSTER, "nextToken": "!!"}))
        .await;
    assert_eq!((code.as_str(), status), ("InvalidParameterException", 400));
}

/// Lets the tasks settle (40 s after RUNNING they count toward minimumHealthyPercent), then
/// runs passes until one reconciles no service: the pass after the last write still reconciles
/// the services it touched; the ones after it, none.
async fn until_quiet(w: &World, s: &Arc<Scheduler>) {
    w.clock.sleep(Duration::from_secs(60)).await;
    for _ in 0..5 {
        pass(w, s).await;
        if last_reconciled(w) == Some(0) {
            return;
        }
    }
    panic!("never quiet: {:?}", w.ecs.scheduler_passes.lock().recent);
}

/// Services reconciled by the scheduler's last pass.
fn last_reconciled(w: &World) -> Option<usize> {
    w.ecs.scheduler_passes.lock().recent.back().map(|(n, _)| *n)
}

/// A pass over a steady world leaves out the services at rest (nothing they read was written
/// since the last pass started), and a write brings back only the services that read it: a new
/// desired count is acted on at the next pass, a task the agent reports stopped is replaced, a
/// new container instance wakes its cluster's services, and a task of no service wakes none.
#[tokio::test]
async fn services_at_rest_are_left_out_until_something_is_written() {
    let w = World::with_time_scale(Duration::ZERO, TIME_SCALE).await;
    w.instance();
    let v1 = w
        .task_definition("web", json!([container("app", &["sleep", "3600"])]))
        .await;
    let _agent = w.spawn_agent();
    let s = create_service(
        &w,
        json!({"cluster": CLUSTER, "serviceName": "web", "taskDefinition": v1, "desiredCount": 2}),
    )
    .await;
    w.call(
        "CreateService",
        json!({"cluster": CLUSTER, "serviceName": "api", "taskDefinition": v1, "desiredCount": 1}),
    )
    .await;
    passes_until(
        &w,
        &s,
        100,
        |w| completed(w, "web") && completed(w, "api"),
        |_| {},
    )
    .await;
    until_quiet(&w, &s).await;
    w.clock.sleep(Duration::from_secs(300)).await;
    pass(&w, &s).await;
    assert_eq!(last_reconciled(&w), Some(0), "time alone changes nothing");

    // A standalone task in the same cluster (RunTask) is written again and again by the agent
    // and concerns no service.
    w.call("RunTask", json!({"cluster": CLUSTER, "taskDefinition": v1}))
        .await;
    for _ in 0..3 {
        pass(&w, &s).await;
        assert_eq!(
            last_reconciled(&w),
            Some(0),
            "a task of no service wakes none"
        );
    }

    w.call(
        "UpdateService",
        json!({"cluster": CLUSTER, "service": "web", "desiredCount": 3}),
    )
    .await;
    pass(&w, &s).await;
    assert_eq!(
        last_reconciled(&w),
        Some(1),
        "the service written, not the other"
    );
    let running = |w: &World, name: &str| {
        service_tasks(w, name)
            .iter()
            .filter(|t| t.is_running() && t.wanted())
            .count()
    };
    assert_eq!(running(&w, "web"), 3, "the new desired count at once");

    // A container instance registered in the cluster wakes both services.
    passes_until(&w, &s, 100, |w| completed(w, "web"), |_| {}).await;
    until_quiet(&w, &s).await;
    w.instance();
    pass(&w, &s).await;
    assert_eq!(
        last_reconciled(&w),
        Some(2),
        "a new instance: its cluster's services"
    );

    // A task stopped behind the scheduler's back (StopTask) is replaced at the next pass.
    passes_until(&w, &s, 100, |w| completed(w, "web"), |_| {}).await;
    let victim = service_tasks(&w, "api")
        .into_iter()
        .find(|t| t.is_running())
        .expect("an api task");
    w.call(
        "StopTask",
        json!({"cluster": CLUSTER, "task": victim.arn, "reason": "test"}),
    )
    .await;
    pass(&w, &s).await;
    pass(&w, &s).await;
    assert_eq!(
        running(&w, "api"),
        1,
        "replaced: {:?}",
        service_tasks(&w, "api")
    );
}
