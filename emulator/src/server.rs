//! HTTP: the main port routes /_emulator to the control API, /v2 to the registry, and everything
//! else through the protocol layer to the service handlers.

use crate::app::App;
use crate::control;
use crate::protocol::catalog::Protocol;
use crate::protocol::{self, sigv4, AwsError, HttpRequest, HttpResponse, Wire};
use crate::services::Ctx;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use std::future::Future;
use std::io::Read;
use std::sync::Arc;
use tokio::net::TcpListener;

/// Largest request body accepted (ECR layer parts are the biggest AWS API bodies).
const MAX_BODY: usize = 64 * 1024 * 1024;

pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/_emulator/health", get(control::health))
        .route("/_emulator/reset", post(control::reset))
        .route("/_emulator/state", get(control::state))
        .route(
            "/_emulator/faults/spot-interruption",
            post(control::spot_interruption),
        )
        .merge(crate::ui::router())
        .merge(crate::registry::router(&app))
        .fallback(aws)
        .with_state(app)
}

/// Serves until `shutdown` resolves, then finishes in-flight requests.
pub async fn run(
    listener: TcpListener,
    app: Arc<App>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    if let (Ok(addr), Some(ecr)) = (
        listener.local_addr(),
        app.registry.handle::<crate::services::ecr::Ecr>(),
    ) {
        // ECR's repository URIs name the port really listened on (--listen may say 0).
        ecr.set_port(addr.port());
    }
    axum::serve(listener, router(app))
        .with_graceful_shutdown(shutdown)
        .await
}

fn to_response(r: HttpResponse) -> Response {
    let mut builder = Response::builder().status(r.status);
    for (k, v) in r.headers {
        builder = builder.header(k, v);
    }
    builder
        .body(Body::from(r.body))
        .unwrap_or_else(|_| http::StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// `GET /` with no query and no signature: a person with a browser, not an AWS client.
fn is_browser_visit(req: &Request) -> bool {
    req.method() == http::Method::GET
        && req.uri().path() == "/"
        && req.uri().query().is_none_or(str::is_empty)
        && !req.headers().contains_key(http::header::AUTHORIZATION)
        && !req.headers().contains_key("x-amz-target")
}

fn browser_pointer() -> Response {
    let body = "<!doctype html><meta charset=utf-8><title>ecs-emulator</title>\
        <p>This is ecs-emulator: point the AWS CLI or an SDK at this address \
        (<code>AWS_ENDPOINT_URL</code>). The dashboard is at \
        <a href=\"/_emulator/\">/_emulator/</a>.</p>\n";
    (
        [(http::header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response()
}

fn gunzip(raw: &[u8]) -> Result<Vec<u8>, AwsError> {
    let mut out = Vec::with_capacity(raw.len() * 4);
    flate2::read::GzDecoder::new(raw)
        .take(MAX_BODY as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| AwsError::serialization(format!("Content-Encoding gzip: {e}")))?;
    if out.len() > MAX_BODY {
        return Err(
            AwsError::new("RequestEntityTooLarge", "The request body is too large")
                .with_status(413),
        );
    }
    Ok(out)
}

async fn aws(State(app): State<Arc<App>>, req: Request) -> Response {
    // A load balancer's DNS name in Host: the request is for that load balancer.
    if let Some(lb) = &app.lb {
        if let Some(routes) = lb.route_host(req.headers()) {
            return lb.serve_main_port(routes, req).await.map(Body::new);
        }
    }
    if is_browser_visit(&req) {
        return browser_pointer();
    }
    let (parts, body) = req.into_parts();
    let request_id = uuid::Uuid::new_v4().to_string();
    let raw: Bytes = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(_) => {
            let wire = Wire {
                service: None,
                protocol: Protocol::Json,
                operation: None,
            };
            let err = AwsError::new("RequestEntityTooLarge", "The request body is too large")
                .with_status(413);
            return to_response(protocol::render_error(&wire, &err, &request_id));
        }
    };
    let gzipped = parts
        .headers
        .get(http::header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|e| e.trim().eq_ignore_ascii_case("gzip")));
    let (body, body_err) = if gzipped {
        match gunzip(&raw) {
            Ok(b) => (Bytes::from(b), None),
            Err(e) => (Bytes::new(), Some(e)),
        }
    } else {
        (raw.clone(), None)
    };
    let query_pairs: Vec<(String, String)> =
        form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    let signature = sigv4::parse(&parts.headers, &query_pairs);
    let signing_name = signature
        .as_ref()
        .ok()
        .and_then(|s| s.as_ref())
        .map(|s| s.service.clone());
    let request = HttpRequest {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query(),
        headers: &parts.headers,
        body: &body,
        signing_name: signing_name.as_deref(),
    };
    let call = match protocol::parse(&request) {
        Ok(call) => call,
        Err(failure) => {
            let (wire, err) = *failure;
            return to_response(protocol::render_error(&wire, &err, &request_id));
        }
    };
    let fail = |err: AwsError| to_response(protocol::render_error(&call.wire, &err, &request_id));
    if let Some(e) = body_err {
        return fail(e);
    }
    let signature = match signature {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    if app.config.strict_auth {
        if let Err(e) = check_signature(&app, signature.as_ref(), &parts, &raw) {
            return fail(e);
        }
    }
    if let Err(e) = protocol::validate(&call) {
        return fail(e);
    }
    let Some(handler) = app.registry.get(call.service.name, &call.operation.name) else {
        return fail(AwsError::not_implemented(
            call.service.name,
            &call.operation.name,
        ));
    };
    let ctx = Ctx {
        account: app.config.account_id.clone(),
        region: signature
            .as_ref()
            .map(|s| s.region.clone())
            .unwrap_or_else(|| app.config.region.clone()),
        request_id: request_id.clone(),
        now: app.clock.now(),
        access_key: signature.as_ref().map(|s| s.access_key.clone()),
    };
    let service = call.service.name;
    let operation = call.operation.name.as_str();
    match handler.call(ctx, call.input).await {
        Ok(output) => to_response(protocol::render_output(&call.wire, &output, &request_id)),
        Err(e) => {
            if e.status.unwrap_or(400) >= 500 {
                tracing::warn!(service, operation, error = %e, "request failed");
            }
            fail(e)
        }
    }
}

/// --strict-auth: the request must be signed with a configured key, and the signature must match.
fn check_signature(
    app: &App,
    signature: Option<&sigv4::Signature>,
    parts: &http::request::Parts,
    raw: &[u8],
) -> Result<(), AwsError> {
    let Some(sig) = signature else {
        return Err(AwsError::new(
            "MissingAuthenticationToken",
            "Request is missing Authentication Token",
        )
        .with_status(403));
    };
    let Some(secret) = app.config.secret_for(&sig.access_key) else {
        return Err(AwsError::new(
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        )
        .with_status(403));
    };
    let signed = sigv4::SignedRequest {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query(),
        headers: &parts.headers,
        authority: parts.uri.authority().map(|a| a.as_str()),
        body: raw,
    };
    let expected = sigv4::expected_signature(sig, secret, &signed);
    if sigv4::signatures_match(&expected, &sig.signature) {
        Ok(())
    } else {
        Err(AwsError::new(
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.",
        )
        .with_status(403))
    }
}
