//! The control API under /_emulator: health, reset, state.

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
    }))
    .into_response()
}
