//! HTTP: the main port routes /_emulator to the control API, /v2 to the registry, and everything
//! else through the protocol layer to the service handlers.

use crate::app::App;
use crate::control;
use crate::protocol::catalog::Protocol;
use crate::protocol::codes;
use crate::protocol::{self, sigv4, AwsError, HttpRequest, HttpResponse, Wire};
use crate::services::Ctx;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::Router;
use std::future::Future;
use std::io::Read;
use std::sync::Arc;
use tokio::net::TcpListener;

/// Largest request body accepted (ECR layer parts are the biggest AWS API bodies).
const MAX_BODY: usize = 64 * 1024 * 1024;

pub fn router(app: Arc<App>) -> Router {
    build(app, true)
}

/// The router of the listener on the Docker bridge gateway: what containers need (the AWS APIs
/// and the registry), without the control API and dashboard unless
/// --control-api-for-containers asks for them.
pub fn container_router(app: Arc<App>) -> Router {
    let control = app.config.control_api_for_containers;
    build(app, control)
}

fn build(app: Arc<App>, control: bool) -> Router {
    let base = if control {
        control_routes(&app)
    } else {
        Router::new()
            .route("/_emulator", any(control_not_here))
            .route("/_emulator/", any(control_not_here))
            .route("/_emulator/{*rest}", any(control_not_here))
    };
    base.merge(crate::faults::gate_registry(
        crate::registry::router(&app),
        &app,
    ))
    .fallback(aws)
    .layer(axum::middleware::map_response_with_state(
        app.clone(),
        emulator_date,
    ))
    .with_state(app)
}

/// /_emulator: health is open; the rest takes the admin token when there is one.
fn control_routes(app: &Arc<App>) -> Router<Arc<App>> {
    Router::new()
        .route("/_emulator/reset", post(control::reset))
        .route("/_emulator/state", get(control::state))
        .merge(crate::faults::router())
        .merge(crate::ui::router())
        .route_layer(axum::middleware::from_fn_with_state(
            app.clone(),
            control::require_admin,
        ))
        .route("/_emulator/health", get(control::health))
}

async fn control_not_here() -> Response {
    (
        http::StatusCode::NOT_FOUND,
        axum::Json(serde_json::json!({
            "error": "the control API is not served to containers (see --control-api-for-containers)"
        })),
    )
        .into_response()
}

/// Every answer carries the emulator clock's time in `Date`: the SDKs measure their clock skew
/// from it, so signing keeps working under --strict-auth when --time-scale runs the clock fast.
async fn emulator_date(State(app): State<Arc<App>>, mut response: Response) -> Response {
    if let Some(date) = chrono::DateTime::from_timestamp(app.clock.now().floor() as i64, 0)
        .and_then(|t| {
            http::HeaderValue::from_str(&t.format("%a, %d %b %Y %H:%M:%S GMT").to_string()).ok()
        })
    {
        response.headers_mut().insert(http::header::DATE, date);
    }
    response
}

/// Serves until `shutdown` resolves, then finishes in-flight requests.
pub async fn run(
    listener: TcpListener,
    app: Arc<App>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    crate::serve::serve(listener, router(app), shutdown).await
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
        return Err(AwsError::new(
            codes::common::RequestEntityTooLarge,
            "The request body is too large",
        )
        .with_status(413));
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
    let read = tokio::time::timeout(
        crate::serve::BODY_READ_TIMEOUT,
        axum::body::to_bytes(body, MAX_BODY),
    )
    .await;
    let raw: Bytes = match read {
        Ok(Ok(b)) => b,
        Err(_) => {
            let wire = Wire {
                service: None,
                protocol: Protocol::Json,
                operation: None,
            };
            let err = AwsError::new(codes::common::RequestTimeout,
                "Your socket connection to the server was not read from or written to within the timeout period.",
            )
            .with_status(408);
            return to_response(protocol::render_error(&wire, &err, &request_id));
        }
        Ok(Err(_)) => {
            let wire = Wire {
                service: None,
                protocol: Protocol::Json,
                operation: None,
            };
            let err = AwsError::new(
                codes::common::RequestEntityTooLarge,
                "The request body is too large",
            )
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
        if let Err(e) = check_signature(&app, &call, signature.as_ref(), &parts, &raw) {
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

/// How far X-Amz-Date may be from the emulator clock (AWS allows 15 minutes either way).
const MAX_SKEW_S: f64 = 900.0;

/// --strict-auth: the request must be signed with a configured key, for the service it calls, in
/// a known region, within 15 minutes of the emulator clock, and the signature must match the
/// request as received, body included.
fn check_signature(
    app: &App,
    call: &protocol::Call,
    signature: Option<&sigv4::Signature>,
    parts: &http::request::Parts,
    raw: &[u8],
) -> Result<(), AwsError> {
    let Some(sig) = signature else {
        return Err(AwsError::new(
            codes::common::MissingAuthenticationToken,
            "Request is missing Authentication Token",
        )
        .with_status(403));
    };
    let secret = secret_of(app, call.protocol, sig)?;
    let secret = secret.as_str();
    check_scope(app, call, sig)?;
    check_time(call.protocol, sig, app.clock.now())?;
    check_payload_header(&parts.headers, raw)?;
    let signed = sigv4::SignedRequest {
        method: parts.method.as_str(),
        path_and_query: parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/"),
        headers: &parts.headers,
        authority: parts.uri.authority().map(|a| a.as_str()),
        body: raw,
    };
    let expected = sigv4::expected_signature(sig, secret, &signed)?;
    if sigv4::signatures_match(&expected, &sig.signature) {
        Ok(())
    } else {
        Err(signature_mismatch())
    }
}

/// The secret of the signing key: one of --auth-keys, or temporary credentials STS issued (then
/// the session token must be theirs and they must not have expired).
fn secret_of(app: &App, protocol: Protocol, sig: &sigv4::Signature) -> Result<String, AwsError> {
    let invalid = || {
        AwsError::new(
            codes::common::UnrecognizedClientException,
            "The security token included in the request is invalid.",
        )
        .with_status(403)
    };
    if let Some(secret) = app.config.secret_for(&sig.access_key) {
        return Ok(secret.to_string());
    }
    let issued = app
        .registry
        .handle::<crate::services::sts::Sts>()
        .and_then(|sts| sts.credentials(&sig.access_key))
        .ok_or_else(invalid)?;
    if sig.security_token.as_deref() != Some(issued.session_token.as_str()) {
        return Err(invalid());
    }
    if app.clock.now() >= issued.expiration {
        let code = match protocol {
            Protocol::Query | Protocol::Ec2 => codes::common::ExpiredToken,
            _ => codes::common::ExpiredTokenException,
        };
        return Err(AwsError::new(
            code,
            "The security token included in the request is expired",
        )
        .with_status(403));
    }
    Ok(issued.secret_access_key)
}

fn signature_mismatch() -> AwsError {
    AwsError::new(codes::common::SignatureDoesNotMatch,
        "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.",
    )
    .with_status(403)
}

/// A signature that is well-formed but wrong for this request: awsJson, rpcv2-cbor and rest-json
/// services call it InvalidSignatureException, query services SignatureDoesNotMatch.
fn invalid_signature(protocol: Protocol, message: String) -> AwsError {
    let code = match protocol {
        Protocol::Query | Protocol::Ec2 => codes::common::SignatureDoesNotMatch,
        Protocol::Json | Protocol::Cbor | Protocol::RestJson => {
            codes::common::InvalidSignatureException
        }
    };
    AwsError::new(code, message).with_status(403)
}

/// The credential scope: the date of X-Amz-Date, a known region, the routed service.
fn check_scope(app: &App, call: &protocol::Call, sig: &sigv4::Signature) -> Result<(), AwsError> {
    let day = sig.amz_date.get(..8).unwrap_or_default();
    if sig.date != day {
        return Err(invalid_signature(
            call.protocol,
            format!(
                "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{}' != '{day}', from '{}'.",
                sig.date, sig.amz_date
            ),
        ));
    }
    let known = sig.region == app.config.region
        || crate::services::ec2::regions::REGIONS
            .iter()
            .any(|(r, _)| *r == sig.region);
    if !known {
        return Err(invalid_signature(
            call.protocol,
            "Credential should be scoped to a valid region. ".to_string(),
        ));
    }
    if sig.service != call.service.signing_name {
        return Err(invalid_signature(
            call.protocol,
            format!(
                "Credential should be scoped to correct service: '{}'. ",
                call.service.signing_name
            ),
        ));
    }
    Ok(())
}

/// X-Amz-Date within 15 minutes of the emulator clock; a presigned URL within X-Amz-Expires.
fn check_time(protocol: Protocol, sig: &sigv4::Signature, now: f64) -> Result<(), AwsError> {
    let Some(signed_at) = sigv4::parse_amz_date(&sig.amz_date) else {
        return Err(AwsError::new(
            codes::common::IncompleteSignature,
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
        )
        .with_status(403));
    };
    let signed_at = signed_at as f64;
    let denied = |message: &str| {
        let code = match protocol {
            Protocol::Query | Protocol::Ec2 => codes::common::AccessDenied,
            _ => codes::common::AccessDeniedException,
        };
        AwsError::new(code, message.to_string()).with_status(403)
    };
    if sig.presigned {
        let expires = sigv4::expires_s(sig)? as f64;
        if signed_at > now + MAX_SKEW_S {
            return Err(denied("Request is not valid yet"));
        }
        if now > signed_at + expires {
            return Err(denied("Request has expired"));
        }
        return Ok(());
    }
    let fmt = sigv4::format_amz_date;
    if protocol == Protocol::Ec2 && (now - signed_at).abs() > MAX_SKEW_S {
        return Err(
            AwsError::new(codes::common::RequestExpired, "Request has expired.").with_status(400),
        );
    }
    if signed_at < now - MAX_SKEW_S {
        return Err(invalid_signature(
            protocol,
            format!(
                "Signature expired: {} is now earlier than {} ({} - 15 min.)",
                sig.amz_date,
                fmt(now - MAX_SKEW_S),
                fmt(now)
            ),
        ));
    }
    if signed_at > now + MAX_SKEW_S {
        return Err(invalid_signature(
            protocol,
            format!(
                "Signature not yet current: {} is still later than {} ({} + 15 min.)",
                sig.amz_date,
                fmt(now + MAX_SKEW_S),
                fmt(now)
            ),
        ));
    }
    Ok(())
}

/// `x-amz-content-sha256`, when sent, must be the SHA-256 of the body as received. The services
/// emulated here (unlike S3) always sign the body's hash: `UNSIGNED-PAYLOAD` and the streaming
/// variants cannot match a signature, as on AWS.
fn check_payload_header(headers: &http::HeaderMap, raw: &[u8]) -> Result<(), AwsError> {
    let Some(claimed) = headers.get("x-amz-content-sha256") else {
        return Ok(());
    };
    let claimed = claimed.to_str().unwrap_or_default();
    if claimed.eq_ignore_ascii_case(&sigv4::payload_hash(raw)) {
        return Ok(());
    }
    if claimed.len() == 64 && claimed.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(AwsError::new(
            codes::common::XAmzContentSHA256Mismatch,
            "The provided 'x-amz-content-sha256' header does not match what was computed.",
        )
        .with_status(400));
    }
    Err(signature_mismatch())
}
