//! The control API under /_emulator: health, reset, state, faults.

use crate::app::App;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use std::sync::Arc;

/// The cookie the dashboard keeps the admin token in once `?token=` gave it.
const TOKEN_COOKIE: &str = "ecs-emulator-admin-token";

/// The admin token a request presents: `Authorization: Bearer`, the cookie, or `?token=`.
fn presented_token(req: &axum::extract::Request) -> Option<(String, bool)> {
    let headers = req.headers();
    if let Some(t) = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    {
        return Some((t.trim().to_string(), false));
    }
    let from_cookie = headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == TOKEN_COOKIE)
        .map(|(_, v)| v.to_string());
    if let Some(t) = from_cookie {
        return Some((t, false));
    }
    form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
        .find(|(k, _)| k == "token")
        .map(|(_, v)| (v.into_owned(), true))
}

/// With an admin token, the control API and the dashboard answer only requests that present it.
pub async fn require_admin(
    State(app): State<Arc<App>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let Some(expected) = app.admin_token.as_deref() else {
        return next.run(req).await;
    };
    match presented_token(&req) {
        Some((t, from_query)) if crate::protocol::sigv4::signatures_match(&t, expected) => {
            let mut response = next.run(req).await;
            if from_query {
                // The dashboard's links and fetches carry no token: keep it in a cookie.
                if let Ok(v) = http::HeaderValue::from_str(&format!(
                    "{TOKEN_COOKIE}={t}; Path=/_emulator; HttpOnly; SameSite=Strict"
                )) {
                    response.headers_mut().append(http::header::SET_COOKIE, v);
                }
            }
            response
        }
        presented => (
            http::StatusCode::UNAUTHORIZED,
            [(http::header::WWW_AUTHENTICATE, "Bearer")],
            Json(json!({
                "error": if presented.is_some() {
                    "the admin token is wrong"
                } else {
                    "the control API requires the admin token (printed at start, or --admin-token): Authorization: Bearer TOKEN"
                }
            })),
        )
            .into_response(),
    }
}

/// `status` is `running`, or `degraded` while the data dir refuses writes (full, read-only):
/// reads keep working, writes answer 503 ServiceUnavailable, and `storage.error` says why. Each
/// call while degraded checks the disk again, so it turns `running` once space is freed. It is
/// `degraded` too while Docker does not answer (`docker.status` `unreachable`): tasks then wait
/// PENDING and stops are retried until it does.
pub async fn health(State(app): State<Arc<App>>) -> Response {
    let store = app.store.clone();
    let disk = tokio::task::spawn_blocking(move || store.disk_health())
        .await
        .unwrap_or_else(|e| crate::store::DiskHealth::Degraded(e.to_string()));
    let (mut status, storage) = match disk {
        crate::store::DiskHealth::Ok => ("running", json!({"status": "ok"})),
        crate::store::DiskHealth::Degraded(why) => (
            "degraded",
            json!({"status": "degraded", "error": why, "writes": "refused with 503 ServiceUnavailable"}),
        ),
    };
    let docker = match app.runtime.get() {
        None => json!({"status": "none"}),
        Some(runtime) => match runtime.ping().await {
            Ok(()) => json!({"status": "ok", "runtime": runtime.name()}),
            Err(e) => {
                status = "degraded";
                json!({
                    "status": "unreachable",
                    "error": e.message,
                    "address": crate::runtime::docker::daemon_address(),
                    "tasks": "PENDING tasks wait and stops are retried until Docker answers",
                })
            }
        },
    };
    Json(json!({
        "status": status,
        "storage": storage,
        "docker": docker,
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
        "schedulerPasses": app
            .registry
            .handle::<crate::services::ecs::Ecs>()
            .map(|e| e.scheduler_passes.lock().to_json()),
        "faults": app.faults.list().iter().map(|f| f.to_json()).collect::<Vec<_>>(),
    }))
    .into_response()
}
