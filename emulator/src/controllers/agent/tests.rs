//! The task agent on the recording runtime: start order, stop sequencing, events, adoption and
//! a restart in the middle of starting, in milliseconds and without Docker.

use super::start;
use crate::controllers::testkit::{container, World, CLUSTER, OWNER};
use crate::runtime::recording::{Call, STOP_SECOND};
use crate::runtime::{ContainerRuntime, ContainerSpec, OWNER_LABEL};
use serde_json::json;
use std::collections::HashMap;
use std::time::Duration;

fn running(w: &World, arn: &str) -> bool {
    w.task(arn).last_status == "RUNNING"
}

fn stopped(w: &World, arn: &str) -> bool {
    w.task(arn).last_status == "STOPPED"
}

/// Index of the first call equal to `c`.
fn at(calls: &[Call], c: &Call) -> usize {
    calls
        .iter()
        .position(|x| x == c)
        .unwrap_or_else(|| panic!("no {c:?} in {calls:#?}"))
}

fn create(name: &str) -> Call {
    Call::Create(name.into())
}

fn start_of(name: &str) -> Call {
    Call::Start(name.into())
}

#[tokio::test]
async fn containers_start_after_their_dependencies() {
    let w = World::new(Duration::ZERO).await;
    w.instance();
    let mut app = container("app", &["sleep", "3600"]);
    app["dependsOn"] = json!([
        {"containerName": "db", "condition": "START"},
        {"containerName": "init", "condition": "SUCCESS"}
    ]);
    let mut init = container("init", &["true"]);
    init["essential"] = json!(false);
    w.task_definition(
        "web",
        json!([app, container("db", &["sleep", "3600"]), init]),
    )
    .await;
    let _agent = w.spawn_agent();
    let arn = w.run_task("web", 1).await.remove(0);
    w.until("init started", |w| {
        w.runtime.calls().contains(&start_of("init"))
    })
    .await;
    assert!(
        !w.runtime.calls().contains(&create("app")),
        "app waits for init's SUCCESS: {:#?}",
        w.runtime.calls()
    );
    let init_id = w.runtime.find("init").expect("init container");
    w.runtime.exit(&init_id, 0);
    w.until("the task runs", |w| running(w, &arn)).await;
    let calls = w.runtime.calls();
    assert!(at(&calls, &start_of("db")) < at(&calls, &create("app")));
    assert!(at(&calls, &start_of("init")) < at(&calls, &create("app")));
    assert!(at(&calls, &create("app")) < at(&calls, &start_of("app")));
    let t = w.task(&arn);
    let init = t
        .containers
        .iter()
        .find(|c| c.name == "init")
        .expect("init");
    assert_eq!(
        (init.last_status.to_string(), init.exit_code),
        ("STOPPED".into(), Some(0))
    );
}

#[tokio::test]
async fn a_failed_success_dependency_fails_the_task() {
    let w = World::new(Duration::ZERO).await;
    w.instance();
    let mut app = container("app", &["sleep", "3600"]);
    app["dependsOn"] = json!([{"containerName": "init", "condition": "SUCCESS"}]);
    let mut init = container("init", &["false"]);
    init["essential"] = json!(false);
    w.task_definition("web", json!([app, init])).await;
    let _agent = w.spawn_agent();
    let arn = w.run_task("web", 1).await.remove(0);
    w.until("init started", |w| {
        w.runtime.calls().contains(&start_of("init"))
    })
    .await;
    w.runtime.exit(&w.runtime.find("init").expect("init"), 3);
    w.until("the task stops", |w| stopped(w, &arn)).await;
    let t = w.task(&arn);
    assert_eq!(t.stop_code.as_deref(), Some("TaskFailedToStart"));
    assert!(
        t.stopped_reason
            .as_deref()
            .is_some_and(|r| r.contains("DependencyFailed")),
        "{:?}",
        t.stopped_reason
    );
    assert!(!w.runtime.calls().contains(&create("app")));
}

/// StopTask: dependents get SIGTERM first; one that ignores it is killed after its
/// stopTimeout (137), and only then its dependency is stopped (with the default 30 s).
#[tokio::test]
async fn stop_sends_sigterm_dependents_first_and_sigkill_after_stop_timeout() {
    let w = World::new(Duration::ZERO).await;
    w.instance();
    let mut app = container("app", &["sleep", "3600"]);
    app["dependsOn"] = json!([{"containerName": "db", "condition": "START"}]);
    app["stopTimeout"] = json!(5);
    w.task_definition("web", json!([app, container("db", &["sleep", "3600"])]))
        .await;
    let _agent = w.spawn_agent();
    let arn = w.run_task("web", 1).await.remove(0);
    w.until("the task runs", |w| running(w, &arn)).await;
    w.runtime.ignore_sigterm("app");
    w.runtime.clear_calls();
    w.call(
        "StopTask",
        json!({"cluster": CLUSTER, "task": arn, "reason": "test"}),
    )
    .await;
    w.until("the task stops", |w| stopped(w, &arn)).await;
    let timed = w.runtime.timed_calls();
    let calls: Vec<Call> = timed.iter().map(|(_, c)| c.clone()).collect();
    let stop_app = Call::Stop {
        container: "app".into(),
        timeout_s: 5,
    };
    let killed_app = Call::Stopped {
        container: "app".into(),
        exit_code: Some(137),
    };
    let stop_db = Call::Stop {
        container: "db".into(),
        timeout_s: 30,
    };
    let (a, k, d) = (
        at(&calls, &stop_app),
        at(&calls, &killed_app),
        at(&calls, &stop_db),
    );
    assert!(a < k && k < d, "app, killed, then db: {calls:#?}");
    assert!(
        timed[k].0 - timed[a].0 >= STOP_SECOND * 5,
        "SIGKILL only after the stop timeout: {timed:?}"
    );
    let t = w.task(&arn);
    let code = |n: &str| {
        t.containers
            .iter()
            .find(|c| c.name == n)
            .and_then(|c| c.exit_code)
    };
    assert_eq!((code("app"), code("db")), (Some(137), Some(0)));
    assert_eq!(t.stopped_reason.as_deref(), Some("test"));
    assert!(
        !calls.iter().any(|c| matches!(c, Call::Remove(_))),
        "stopped containers stay until cleanup: {calls:#?}"
    );
}

#[tokio::test]
async fn exits_ooms_and_removals_behind_the_agents_back_stop_their_tasks() {
    let w = World::new(Duration::ZERO).await;
    w.instance();
    let mut sidecar = container("sidecar", &["sleep", "3600"]);
    sidecar["essential"] = json!(false);
    w.task_definition(
        "web",
        json!([container("app", &["sleep", "3600"]), sidecar]),
    )
    .await;
    let _agent = w.spawn_agent();
    let arns = w.run_task("web", 4).await;
    w.until("all run", |w| arns.iter().all(|a| running(w, a)))
        .await;
    let id_of = |arn: &str, name: &str| {
        w.task(arn)
            .containers
            .iter()
            .find(|c| c.name == name)
            .and_then(|c| c.runtime_id.clone())
            .expect("runtime id")
    };
    // A non-essential container exits: the task keeps running.
    w.runtime.exit(&id_of(&arns[0], "sidecar"), 1);
    w.runtime.exit(&id_of(&arns[1], "app"), 2);
    w.runtime.oom(&id_of(&arns[2], "app"));
    w.runtime.destroy(&id_of(&arns[3], "app"));
    for a in &arns[1..] {
        w.until("the task stops", |w| stopped(w, a)).await;
    }
    let t0 = w.task(&arns[0]);
    assert_eq!(t0.last_status, "RUNNING");
    let sidecar = t0
        .containers
        .iter()
        .find(|c| c.name == "sidecar")
        .expect("sidecar");
    assert_eq!(
        (sidecar.last_status.to_string(), sidecar.exit_code),
        ("STOPPED".into(), Some(1))
    );
    let app = |arn: &str| {
        w.task(arn)
            .containers
            .into_iter()
            .find(|c| c.name == "app")
            .expect("app")
    };
    assert_eq!(app(&arns[1]).exit_code, Some(2));
    assert_eq!(
        w.task(&arns[1]).stop_code.as_deref(),
        Some("EssentialContainerExited")
    );
    assert!(app(&arns[2])
        .reason
        .is_some_and(|r| r.starts_with("OutOfMemoryError")));
    // `docker rm -f`: killed (die 137), then destroyed.
    assert_eq!(app(&arns[3]).exit_code, Some(137));
    assert_eq!(
        w.task(&arns[3]).stop_code.as_deref(),
        Some("EssentialContainerExited")
    );
}

#[tokio::test]
async fn health_events_reach_the_task() {
    let w = World::new(Duration::ZERO).await;
    w.instance();
    let mut app = container("app", &["sleep", "3600"]);
    app["healthCheck"] = json!({"command": ["CMD", "true"], "interval": 5});
    w.task_definition("web", json!([app])).await;
    let _agent = w.spawn_agent();
    let arn = w.run_task("web", 1).await.remove(0);
    w.until("the task runs", |w| running(w, &arn)).await;
    let id = w.runtime.find("app").expect("app");
    w.runtime.set_health(&id, "healthy");
    w.until("healthy", |w| w.task(&arn).computed_health() == "HEALTHY")
        .await;
    w.runtime.set_health(&id, "unhealthy");
    w.until("unhealthy", |w| {
        w.task(&arn).computed_health() == "UNHEALTHY"
    })
    .await;
}

/// A restart: running containers are adopted as they are (no create, start or remove); a task
/// whose container exited while the emulator was down stops; a container of a task the
/// emulator does not know is removed.
#[tokio::test]
async fn after_a_restart_running_containers_are_adopted() {
    let w = World::new(Duration::ZERO).await;
    w.instance();
    w.task_definition("web", json!([container("app", &["sleep", "3600"])]))
        .await;
    let first = w.spawn_agent();
    let arns = w.run_task("web", 2).await;
    w.until("both run", |w| arns.iter().all(|a| running(w, a)))
        .await;
    first.abort();
    let _ = first.await;
    // While the emulator is down: one container exits, and a stranger appears.
    let gone = w.task(&arns[1]).containers[0]
        .runtime_id
        .clone()
        .expect("id");
    w.runtime.exit(&gone, 9);
    let stranger = w
        .runtime
        .create(&ContainerSpec {
            name: "stranger".into(),
            labels: HashMap::from([
                (OWNER_LABEL.to_string(), OWNER.to_string()),
                (
                    super::spec::TASK_KEY_LABEL.to_string(),
                    "nobody".to_string(),
                ),
            ]),
            ..Default::default()
        })
        .await
        .expect("create");
    w.runtime.clear_calls();
    let _second = w.spawn_agent();
    w.until("the exited one stops", |w| stopped(w, &arns[1]))
        .await;
    assert_eq!(w.task(&arns[0]).last_status, "RUNNING");
    assert_eq!(w.task(&arns[1]).containers[0].exit_code, Some(9));
    w.until("the stranger is removed", |w| {
        w.runtime.calls().contains(&Call::Remove(stranger.clone()))
    })
    .await;
    let calls = w.runtime.calls();
    assert!(
        !calls
            .iter()
            .any(|c| matches!(c, Call::Create(_) | Call::Start(_))),
        "adopted, not started again: {calls:#?}"
    );
}

/// Issue 15: the emulator dies (kill -9) while tasks are starting. After the restart every
/// task reaches RUNNING, started again once; the die and destroy events of the leftovers the
/// agent removes change no task.
#[tokio::test]
async fn tasks_interrupted_while_starting_run_after_a_restart() {
    // Calls take 5 ms, as Docker's take several: events interleave with the start.
    let w = World::new(Duration::from_millis(5)).await;
    w.instance();
    w.instance();
    let mut sidecar = container("sidecar", &["sleep", "3600"]);
    sidecar["essential"] = json!(true);
    w.task_definition(
        "web",
        json!([container("app", &["sleep", "3600"]), sidecar]),
    )
    .await;
    let arns = w.run_task("web", 8).await;
    // The first life: starts interrupted after some containers were created and started.
    let agent = w.agent();
    let keys: Vec<String> = w.ecs.tasks.read(|rows| rows.keys().cloned().collect());
    let starts: Vec<_> = keys
        .iter()
        .map(|k| {
            let (agent, k) = (agent.clone(), k.clone());
            tokio::spawn(async move { start::start_task(&agent, &k).await })
        })
        .collect();
    // Watched every millisecond (World::until polls every 10 ms, long enough for every start
    // to finish): the kill comes right after the fourth of sixteen container starts.
    let started = |w: &World| {
        w.runtime
            .calls()
            .iter()
            .filter(|c| matches!(c, Call::Start(_)))
            .count()
    };
    for _ in 0..10_000 {
        if started(&w) >= 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert!(started(&w) >= 4, "no container started");
    for s in &starts {
        s.abort();
    }
    for s in starts {
        let _ = s.await;
    }
    drop(agent);
    let pending = arns.iter().filter(|a| w.task(a).is_pending()).count();
    assert!(pending > 0, "the kill came while tasks were starting");
    let leftovers = w.runtime.ids();
    assert!(!leftovers.is_empty());
    // The second life.
    let _agent = w.spawn_agent();
    w.until("every task runs", |w| {
        arns.iter().all(|a| running(w, a) || stopped(w, a))
    })
    .await;
    for a in &arns {
        let t = w.task(a);
        assert_eq!(
            t.last_status, "RUNNING",
            "{a} stopped: {:?} {:?}",
            t.stop_code, t.stopped_reason
        );
        for c in &t.containers {
            let id = c.runtime_id.clone().expect("id");
            assert!(!leftovers.contains(&id) || c.last_status == "RUNNING");
            assert!(w.runtime.inspect(&id).await.expect("exists").running);
        }
    }
    // No leftover survives, and nothing is started twice in the second life.
    let live = w.runtime.ids();
    assert_eq!(live.len(), arns.len() * 2, "{live:?}");
}

/// A stopped task's containers stay for the cleanup wait while its instance lives, and go with
/// the instance: deregistering it removes them from Docker at once; the task stays describable.
#[tokio::test]
async fn stopped_containers_go_with_their_instance() {
    let w = World::new(Duration::ZERO).await;
    let instance = w.instance();
    w.task_definition("web", json!([container("app", &["sleep", "3600"])]))
        .await;
    let _agent = w.spawn_agent();
    let arn = w.run_task("web", 1).await.remove(0);
    w.until("the task runs", |w| running(w, &arn)).await;
    w.call(
        "StopTask",
        json!({"cluster": CLUSTER, "task": arn, "reason": "test"}),
    )
    .await;
    w.until("the task stops", |w| stopped(w, &arn)).await;
    // Two reconcile passes (one a second at least) with the instance still there.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(
        !w.runtime
            .calls()
            .iter()
            .any(|c| matches!(c, Call::Remove(_))),
        "kept while the instance lives: {:#?}",
        w.runtime.calls()
    );
    w.call(
        "DeregisterContainerInstance",
        json!({"cluster": CLUSTER, "containerInstance": instance.arn, "force": true}),
    )
    .await;
    w.until("the container removed", |w| {
        w.runtime.calls().contains(&Call::Remove("app".into()))
    })
    .await;
    w.until("the record without runtimeId", |w| {
        w.task(&arn)
            .containers
            .iter()
            .all(|c| c.runtime_id.is_none())
    })
    .await;
    assert_eq!(w.task(&arn).last_status, "STOPPED");
}
