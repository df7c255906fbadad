//! The dashboard: server-rendered pages under `/_emulator/` (and `/_emulator/ui/…`), updated live
//! through server-sent events, with everything embedded in the binary. `GET /_emulator/summary`
//! gives the same model as JSON for `ecs-emulator status`.

pub mod api;
mod pages;
pub mod view;

use crate::app::App;
use api::{s, Api};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use futures::{Stream, StreamExt};
use maud::Markup;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

pub fn router() -> Router<Arc<App>> {
    Router::new()
        .route("/_emulator", get(overview))
        .route("/_emulator/", get(overview))
        .route("/_emulator/ui", get(overview))
        .route("/_emulator/ui/", get(overview))
        .route("/_emulator/ui/clusters/{cluster}", get(cluster))
        .route("/_emulator/ui/services/{cluster}/{service}", get(service))
        .route("/_emulator/ui/tasks/{cluster}/{task}", get(task))
        .route("/_emulator/ui/load-balancers", get(load_balancers))
        .route("/_emulator/ui/repositories", get(repositories))
        .route("/_emulator/ui/events", get(events))
        .route("/_emulator/summary", get(summary))
        .route(
            "/_emulator/tasks/{cluster}/{task}/logs",
            get(task_logs_json),
        )
}

#[derive(Deserialize, Default)]
pub struct RegionQuery {
    region: Option<String>,
}

/// The whole page, or only its `<main>` when the live-update script asks for it.
fn page(headers: &HeaderMap, title: &str, region: &str, main: Markup) -> Response {
    if headers.contains_key("x-ui-fragment") {
        return Html(main.into_string()).into_response();
    }
    Html(pages::layout(title, region, main).into_string()).into_response()
}

fn listener_urls(app: &App) -> BTreeMap<String, String> {
    app.registry
        .handle::<crate::services::elbv2::Elbv2>()
        .map(|e| e.bound.read().clone())
        .unwrap_or_default()
}

async fn overview(
    State(app): State<Arc<App>>,
    Query(q): Query<RegionQuery>,
    headers: HeaderMap,
) -> Response {
    let api = Api::new(&app, q.region.as_deref());
    let summary = view::Summary::build(&api, &listener_urls(&app)).await;
    page(
        &headers,
        "Clusters",
        api.region(),
        pages::overview(&summary),
    )
}

async fn summary(State(app): State<Arc<App>>, Query(q): Query<RegionQuery>) -> Response {
    let api = Api::new(&app, q.region.as_deref());
    Json(view::Summary::build(&api, &listener_urls(&app)).await).into_response()
}

fn not_found(headers: &HeaderMap, region: &str, what: &str) -> Response {
    let mut r = page(headers, "Not found", region, pages::not_found(what));
    *r.status_mut() = StatusCode::NOT_FOUND;
    r
}

async fn describe_cluster(api: &Api<'_>, cluster: &str) -> Option<Value> {
    let out = api
        .call("ecs", "DescribeClusters", json!({ "clusters": [cluster] }))
        .await?;
    out["clusters"]
        .as_array()?
        .iter()
        .find(|c| s(c, "status") != "INACTIVE")
        .cloned()
}

async fn cluster(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
    Query(q): Query<RegionQuery>,
    headers: HeaderMap,
) -> Response {
    let api = Api::new(&app, q.region.as_deref());
    let Some(c) = describe_cluster(&api, &name).await else {
        return not_found(&headers, api.region(), &format!("No cluster {name}."));
    };
    let view = view::cluster(&api, &c).await;
    page(
        &headers,
        &name,
        api.region(),
        pages::cluster_page(&view, api.region()),
    )
}

async fn service(
    State(app): State<Arc<App>>,
    Path((cluster, name)): Path<(String, String)>,
    Query(q): Query<RegionQuery>,
    headers: HeaderMap,
) -> Response {
    let api = Api::new(&app, q.region.as_deref());
    let described = api
        .call(
            "ecs",
            "DescribeServices",
            json!({"cluster": cluster, "services": [name]}),
        )
        .await;
    let Some(svc) = described
        .as_ref()
        .and_then(|d| d["services"].as_array())
        .and_then(|a| a.first())
    else {
        return not_found(
            &headers,
            api.region(),
            &format!("No service {name} in {cluster}."),
        );
    };
    let service = view::service(svc);
    let tasks = service_tasks(&api, &cluster, &name).await;
    let resource = format!("service/{cluster}/{name}");
    let activities = if api.has("application-autoscaling", "DescribeScalingActivities") {
        api.list_all(
            "application-autoscaling",
            "DescribeScalingActivities",
            json!({"ServiceNamespace": "ecs", "ResourceId": resource}),
            "ScalingActivities",
        )
        .await
    } else {
        Vec::new()
    };
    let alarms = service_alarms(&api, &cluster, &name).await;
    let p = pages::ServicePage {
        cluster: &cluster,
        region: api.region(),
        service: &service,
        tasks: &tasks,
        activities: &activities,
        alarms: &alarms,
    };
    page(&headers, &name, api.region(), pages::service_page(&p))
}

async fn service_tasks(api: &Api<'_>, cluster: &str, service: &str) -> Vec<view::TaskBox> {
    let arns = api
        .list_all(
            "ecs",
            "ListTasks",
            json!({"cluster": cluster, "serviceName": service}),
            "taskArns",
        )
        .await;
    let mut out = Vec::new();
    for chunk in arns.chunks(100) {
        if let Some(d) = api
            .call(
                "ecs",
                "DescribeTasks",
                json!({"cluster": cluster, "tasks": chunk}),
            )
            .await
        {
            out.extend(
                d["tasks"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(view::task_box),
            );
        }
    }
    out
}

/// Alarms on the service's metrics (ClusterName and ServiceName dimensions, or a target tracking
/// alarm named after the service).
async fn service_alarms(api: &Api<'_>, cluster: &str, service: &str) -> Vec<Value> {
    if !api.has("cloudwatch", "DescribeAlarms") {
        return Vec::new();
    }
    let resource = format!("service/{cluster}/{service}");
    api.list_all("cloudwatch", "DescribeAlarms", json!({}), "MetricAlarms")
        .await
        .into_iter()
        .filter(|a| {
            let dims = a["Dimensions"].as_array().cloned().unwrap_or_default();
            let has =
                |n: &str, v: &str| dims.iter().any(|d| s(d, "Name") == n && s(d, "Value") == v);
            (has("ClusterName", cluster) && has("ServiceName", service))
                || s(a, "AlarmName").contains(&resource)
        })
        .collect()
}

/// One task as DescribeTasks answers it, or None when the cluster has no such task.
async fn describe_task(api: &Api<'_>, cluster: &str, id: &str) -> Option<Value> {
    let described = api
        .call(
            "ecs",
            "DescribeTasks",
            json!({"cluster": cluster, "tasks": [id]}),
        )
        .await?;
    described["tasks"].as_array()?.first().cloned()
}

async fn task(
    State(app): State<Arc<App>>,
    Path((cluster, id)): Path<(String, String)>,
    Query(q): Query<RegionQuery>,
    headers: HeaderMap,
) -> Response {
    let api = Api::new(&app, q.region.as_deref());
    let Some(t) = describe_task(&api, &cluster, &id).await else {
        return not_found(
            &headers,
            api.region(),
            &format!("No task {id} in {cluster}."),
        );
    };
    let logs = task_logs(&app, &api, &t).await;
    page(
        &headers,
        &id,
        api.region(),
        pages::task_page(&cluster, api.region(), &t, &logs),
    )
}

/// `{"lines": [{"container", "line"}]}` for `ecs-emulator logs`.
async fn task_logs_json(
    State(app): State<Arc<App>>,
    Path((cluster, id)): Path<(String, String)>,
    Query(q): Query<RegionQuery>,
) -> Response {
    let api = Api::new(&app, q.region.as_deref());
    let Some(t) = describe_task(&api, &cluster, &id).await else {
        let message = format!("No task {id} in cluster {cluster}.");
        return (StatusCode::NOT_FOUND, Json(json!({ "message": message }))).into_response();
    };
    let lines: Vec<Value> = task_logs(&app, &api, &t)
        .await
        .into_iter()
        .map(|(container, line)| json!({"container": container, "line": line}))
        .collect();
    Json(json!({ "lines": lines })).into_response()
}

/// The last lines of each container's log: from CloudWatch Logs when the container logs with
/// awslogs, else Docker's own log of the container.
async fn task_logs(app: &App, api: &Api<'_>, task: &Value) -> Vec<(String, String)> {
    const LINES: usize = 50;
    let definition = api
        .call(
            "ecs",
            "DescribeTaskDefinition",
            json!({"taskDefinition": s(task, "taskDefinitionArn")}),
        )
        .await
        .unwrap_or(Value::Null);
    let task_id = api::tail(s(task, "taskArn")).to_string();
    let mut out = Vec::new();
    for c in task["containers"].as_array().into_iter().flatten() {
        let name = s(c, "name");
        let log = definition["taskDefinition"]["containerDefinitions"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|d| s(d, "name") == name)
            .map(|d| d["logConfiguration"].clone())
            .unwrap_or(Value::Null);
        let lines = if s(&log, "logDriver") == "awslogs" {
            let group = s(&log["options"], "awslogs-group");
            let prefix = s(&log["options"], "awslogs-stream-prefix");
            let stream = format!("{prefix}/{name}/{task_id}");
            api.call(
                "logs",
                "GetLogEvents",
                json!({"logGroupName": group, "logStreamName": stream, "limit": LINES}),
            )
            .await
            .map(|o| {
                o["events"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|e| s(e, "message").to_string())
                    .collect()
            })
            .unwrap_or_default()
        } else {
            docker_logs(app, s(c, "runtimeId"), LINES).await
        };
        out.extend(lines.into_iter().map(|l| (name.to_string(), l)));
    }
    out
}

async fn docker_logs(app: &App, container: &str, lines: usize) -> Vec<String> {
    let (Some(runtime), false) = (app.runtime.get(), container.is_empty()) else {
        return Vec::new();
    };
    let stream = runtime.logs(container, 0, false);
    let collected = tokio::time::timeout(
        Duration::from_secs(2),
        stream
            .filter_map(|r| async move { r.ok().map(|(_, line)| line) })
            .collect::<Vec<String>>(),
    )
    .await
    .unwrap_or_default();
    let skip = collected.len().saturating_sub(lines);
    collected.into_iter().skip(skip).collect()
}

async fn load_balancers(
    State(app): State<Arc<App>>,
    Query(q): Query<RegionQuery>,
    headers: HeaderMap,
) -> Response {
    let api = Api::new(&app, q.region.as_deref());
    let lbs = view::load_balancers(&api, &listener_urls(&app)).await;
    page(
        &headers,
        "Load balancers",
        api.region(),
        pages::load_balancers_page(&lbs),
    )
}

async fn repositories(
    State(app): State<Arc<App>>,
    Query(q): Query<RegionQuery>,
    headers: HeaderMap,
) -> Response {
    let api = Api::new(&app, q.region.as_deref());
    let repos = view::repositories(&api).await;
    page(
        &headers,
        "Repositories",
        api.region(),
        pages::repositories_page(&repos),
    )
}

/// One `changed` event whenever state changes, at most four a second; nothing in between but
/// the keep-alive comment every 30 s, so an idle open page costs nothing.
async fn events(State(app): State<Arc<App>>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let changes = app.store.watch_changes();
    let stream = futures::stream::unfold(changes, |mut changes| async move {
        changes.changed().await.ok()?;
        tokio::time::sleep(Duration::from_millis(250)).await;
        changes.borrow_and_update();
        Some((Ok(Event::default().event("changed").data("state")), changes))
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(30)))
}
