//! The faults' control API: `GET /_emulator/faults`, `POST /_emulator/faults/<kind>` (a JSON
//! body, see `actions::KINDS`), `GET` and `DELETE /_emulator/faults/<id>`; and the gate that
//! makes the registry answer 503 while it is paused.

use super::actions::{self, Refusal};
use super::network::Network;
use crate::app::App;
use axum::extract::{Path, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use http::StatusCode;
use serde_json::{json, Value};
use std::sync::Arc;

pub fn router() -> Router<Arc<App>> {
    Router::new()
        .route("/_emulator/faults", get(list))
        .route("/_emulator/faults/", get(list))
        .route(
            "/_emulator/faults/{name}",
            get(show).post(create).delete(heal),
        )
}

fn refused(r: Refusal) -> Response {
    (r.status, Json(json!({"error": r.message}))).into_response()
}

async fn list(State(app): State<Arc<App>>) -> Response {
    let faults: Vec<Value> = app.faults.list().iter().map(|f| f.to_json()).collect();
    let kinds: serde_json::Map<String, Value> = actions::KINDS
        .iter()
        .map(|(k, body)| (k.to_string(), json!(body)))
        .collect();
    Json(json!({"faults": faults, "kinds": kinds})).into_response()
}

async fn show(State(app): State<Arc<App>>, Path(id): Path<String>) -> Response {
    match app.faults.get(&id) {
        Some(f) => Json(f.to_json()).into_response(),
        None => refused(Refusal {
            status: StatusCode::NOT_FOUND,
            message: format!("no fault {id}"),
        }),
    }
}

async fn create(
    State(app): State<Arc<App>>,
    Path(kind): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let input: Value = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        match serde_json::from_slice::<Value>(&body) {
            Ok(v @ Value::Object(_)) => v,
            _ => {
                let shape = actions::KINDS
                    .iter()
                    .find(|(k, _)| *k == kind)
                    .map(|(_, s)| *s)
                    .unwrap_or("a JSON object");
                return refused(Refusal {
                    status: StatusCode::BAD_REQUEST,
                    message: format!("the body must be JSON: {shape}"),
                });
            }
        }
    };
    match actions::create(&app, &kind, &input).await {
        Ok(v) => Json(v).into_response(),
        Err(r) => refused(r),
    }
}

async fn heal(State(app): State<Arc<App>>, Path(id): Path<String>) -> Response {
    match actions::heal(&app, &id).await {
        Ok(v) => Json(v).into_response(),
        Err(r) => refused(r),
    }
}

/// Wraps the registry's router: while a registry-pause fault exists every request is answered
/// `503 UNAVAILABLE` (the distribution API's error for a registry that is down).
pub fn gate_registry<S: Clone + Send + Sync + 'static>(
    registry: Router<S>,
    app: &App,
) -> Router<S> {
    registry.layer(axum::middleware::from_fn_with_state(
        app.faults.network(),
        gate,
    ))
}

async fn gate(State(network): State<Arc<Network>>, req: Request, next: Next) -> Response {
    let Some(id) = network.registry_paused() else {
        return next.run(req).await;
    };
    let body = json!({"errors": [{
        "code": "UNAVAILABLE",
        "message": format!("the registry is paused by fault {id} (ecs-emulator fault heal {id})"),
        "detail": null,
    }]});
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(http::header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}
