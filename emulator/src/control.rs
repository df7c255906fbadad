//! The control API under /_emulator: health, reset, state, faults.

use crate::app::App;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use std::sync::Arc;

pub async fn health(State(app): State<Arc<App>>) -> Response {
    Json(json!({
        "status": "running",
        "version": env!("CARGO_PKG_VERSION"),
        "uptimeSeconds": app.started.elapsed().as_secs_f64(),
        "durable": app.store.is_durable(),
    }))
    .into_response()
}

/// Drops all state and every container the emulator owns.
pub async fn reset(State(app): State<Arc<App>>) -> Response {
    match app.reset().await {
        Ok(containers) => {
            Json(json!({"reset": true, "containersRemoved": containers})).into_response()
        }
        Err(e) => (
            http::StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"reset": false, "error": e.to_string()})),
        )
            .into_response(),
    }
}

/// A JSON summary: rows per table, where state lives, the clock.
pub async fn state(State(app): State<Arc<App>>) -> Response {
    let tables: serde_json::Map<String, serde_json::Value> = app
        .store
        .table_sizes()
        .into_iter()
        .map(|(name, n)| (name.to_string(), json!(n)))
        .collect();
    Json(json!({
        "durable": app.store.is_durable(),
        "owner": app.owner,
        "dataDir": if app.store.is_durable() { Some(app.config.data_dir()) } else { None },
        "accountId": app.config.account_id,
        "region": app.config.region,
        "timeScale": app.clock.scale(),
        "now": app.clock.now(),
        "tables": tables,
        "runtime": app.runtime.get().map(|r| r.name()),
        "loadBalancerListeners": app
            .registry
            .handle::<crate::services::elbv2::Elbv2>()
            .map(|e| e.bound.read().clone()),
        "dnsServers": app.dns.as_ref().map(|d| d.addresses()),
        "metricsPublisher": app.metrics.as_ref().map(|m| m.cost()),
    }))
    .into_response()
}

/// `POST /_emulator/faults/spot-interruption` with `{"instanceId": "i-…"}` (a running Spot
/// instance) or `{"taskArn": "arn:…:task/<cluster>/<id>"}` (a FARGATE_SPOT task): the
/// two-minute Spot interruption notice. The instance's container instances go DRAINING at once
/// (the agent's ECS_ENABLE_SPOT_INSTANCE_DRAINING behaviour), so services move their tasks, and
/// the instance is terminated two emulated minutes later; a FARGATE_SPOT task stops with
/// stopCode SpotInterruption. Optional `region` (default: the emulator's).
pub async fn spot_interruption(State(app): State<Arc<App>>, body: axum::body::Bytes) -> Response {
    let bad = |status: http::StatusCode, msg: String| {
        (status, Json(json!({"error": msg}))).into_response()
    };
    let Ok(input) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return bad(
            http::StatusCode::BAD_REQUEST,
            "the body must be JSON: {\"instanceId\": \"i-…\"} or {\"taskArn\": \"…\"}".into(),
        );
    };
    let account = app.config.account_id.clone();
    let region = input
        .get("region")
        .and_then(|r| r.as_str())
        .unwrap_or(&app.config.region)
        .to_string();
    let now = app.clock.now();
    let Some(ecs) = app.registry.handle::<crate::services::ecs::Ecs>() else {
        return bad(
            http::StatusCode::SERVICE_UNAVAILABLE,
            "ECS is not available".into(),
        );
    };
    if let Some(id) = input.get("instanceId").and_then(|v| v.as_str()) {
        let Some(ec2) = app.registry.handle::<crate::services::ec2::Ec2>() else {
            return bad(
                http::StatusCode::SERVICE_UNAVAILABLE,
                "EC2 is not available".into(),
            );
        };
        return match ec2.interrupt_spot(&account, &region, id, now) {
            Ok(i) => {
                let drained = ecs.drain_ec2_instance(&format!("{account}/{region}/"), id);
                Json(json!({
                    "instanceId": id,
                    "terminatesAt": i.interruption_at,
                    "containerInstancesDraining": drained,
                }))
                .into_response()
            }
            Err(e) if e.code == "InvalidInstanceID.NotFound" => {
                bad(http::StatusCode::NOT_FOUND, e.message)
            }
            Err(e) => bad(http::StatusCode::BAD_REQUEST, e.message),
        };
    }
    if let Some(arn) = input.get("taskArn").and_then(|v| v.as_str()) {
        let scope = format!("{account}/{region}/");
        let Some(task) = ecs
            .tasks
            .scan(&scope)
            .into_iter()
            .map(|(_, t)| t)
            .find(|t| t.arn == arn || t.id == arn)
        else {
            return bad(http::StatusCode::NOT_FOUND, format!("no task {arn}"));
        };
        if task.capacity_provider_name.as_deref() != Some("FARGATE_SPOT") || !task.wanted() {
            return bad(
                http::StatusCode::BAD_REQUEST,
                format!("the task {arn} is not a running FARGATE_SPOT task"),
            );
        }
        let ctx = crate::services::Ctx {
            account,
            region,
            request_id: uuid::Uuid::new_v4().to_string(),
            now,
            access_key: None,
        };
        let task_arn = task.arn.clone();
        return match ecs.stop_tasks_where(
            &ctx,
            &task.cluster,
            |t| t.arn == task_arn,
            "SpotInterruption",
            "Your Spot Task was interrupted.",
        ) {
            Ok(_) => {
                Json(json!({"taskArn": task.arn, "stopCode": "SpotInterruption"})).into_response()
            }
            Err(e) => bad(http::StatusCode::BAD_REQUEST, e.message),
        };
    }
    bad(
        http::StatusCode::BAD_REQUEST,
        "name an instanceId or a taskArn".into(),
    )
}
