//! The registry: the OCI distribution API (Docker Registry HTTP API v2) over ECR's state, so
//! `docker push`, `docker pull`, skopeo and friends work against the emulator.
//!
//! Blobs stream to and from the content-addressed blob store (never whole in memory);
//! manifests and tags are ECR images, so what is pushed here shows up in DescribeImages and
//! what PutImage stores can be pulled. Requests authenticate with Basic auth, user `AWS` and
//! the password from GetAuthorizationToken (which also names the account and region whose
//! repositories the request sees), or, for a blob download, a GetDownloadUrlForLayer URL.

use crate::app::App;
use crate::blobs::Digest;
use crate::protocol::AwsError;
use crate::services::ecr::{Ecr, ImageRef, PutMode, TokenScope};
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use base64::Engine;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;

/// The largest manifest accepted (ECR's limit).
const MAX_MANIFEST: usize = 4 * 1024 * 1024;

type Shared = Option<Arc<Ecr>>;

/// The /v2 routes. Bodies are streamed: no body limit applies to blob uploads.
pub fn router<S: Clone + Send + Sync + 'static>(app: &App) -> Router<S> {
    let ecr: Shared = app.registry.handle::<Ecr>();
    Router::new()
        .route("/v2", any(handle))
        .route("/v2/", any(handle))
        .route("/v2/{*rest}", any(handle))
        .layer(DefaultBodyLimit::disable())
        .with_state(ecr)
}

/// An OCI error response.
fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    let body = json!({"errors": [{"code": code, "message": message.into(), "detail": null}]});
    (
        status,
        [(http::header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// An ECR error as the registry reports it.
fn from_aws(e: AwsError) -> Response {
    let (status, code) = match e.code.as_ref() {
        "RepositoryNotFoundException" => (StatusCode::NOT_FOUND, "NAME_UNKNOWN"),
        "ImageNotFoundException" => (StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN"),
        "LayersNotFoundException" | "ReferencedImagesNotFoundException" => {
            (StatusCode::BAD_REQUEST, "MANIFEST_BLOB_UNKNOWN")
        }
        "ImageTagAlreadyExistsException" => (StatusCode::BAD_REQUEST, "TAG_INVALID"),
        "ImageDigestDoesNotMatchException" | "InvalidLayerException" => {
            (StatusCode::BAD_REQUEST, "DIGEST_INVALID")
        }
        "UploadNotFoundException" => (StatusCode::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN"),
        "InvalidParameterException" => (StatusCode::BAD_REQUEST, "MANIFEST_INVALID"),
        "ImageReferencedByManifestList" => (StatusCode::CONFLICT, "DENIED"),
        // distribution's code for 503
        "ServiceUnavailable" => (StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE"),
        _ => {
            tracing::warn!(error = %e, "registry request failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "UNKNOWN")
        }
    };
    error(status, code, e.message)
}

fn with_api_version(mut r: Response) -> Response {
    r.headers_mut().insert(
        "Docker-Distribution-API-Version",
        HeaderValue::from_static("registry/2.0"),
    );
    r
}

fn unauthorized(ecr: &Ecr, message: &str) -> Response {
    let mut r = error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", message);
    let challenge = format!(
        "Basic realm=\"{}/\",service=\"ecr.amazonaws.com\"",
        ecr.proxy_endpoint()
    );
    if let Ok(v) = HeaderValue::from_str(&challenge) {
        r.headers_mut().insert(http::header::WWW_AUTHENTICATE, v);
    }
    r
}

/// The scope a Basic `AWS:<password>` header opens.
fn basic_auth(ecr: &Ecr, headers: &HeaderMap) -> Option<TokenScope> {
    let h = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = h.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, password) = decoded.split_once(':')?;
    if user != "AWS" {
        return None;
    }
    ecr.check_password(password, ecr.clock.now())
}

/// What a /v2 path asks for.
#[derive(Debug, PartialEq)]
enum Route {
    Base,
    Tags(String),
    Manifest(String, String),
    Blob(String, String),
    Upload(String, Option<String>),
    Referrers(String, String),
}

fn route(path: &str) -> Option<Route> {
    let rest = path.strip_prefix("/v2")?.trim_start_matches('/');
    if rest.is_empty() {
        return Some(Route::Base);
    }
    let named = |n: &str| (!n.is_empty()).then(|| n.to_string());
    if let Some(name) = rest.strip_suffix("/tags/list") {
        return Some(Route::Tags(named(name)?));
    }
    if let Some(name) = rest
        .strip_suffix("/blobs/uploads/")
        .or_else(|| rest.strip_suffix("/blobs/uploads"))
    {
        return Some(Route::Upload(named(name)?, None));
    }
    if let Some((name, id)) = rest.rsplit_once("/blobs/uploads/") {
        if !id.contains('/') {
            return Some(Route::Upload(named(name)?, Some(id.to_string())));
        }
    }
    for (sep, kind) in [("/manifests/", 0), ("/blobs/", 1), ("/referrers/", 2)] {
        if let Some((name, reference)) = rest.rsplit_once(sep) {
            if reference.is_empty() || reference.contains('/') {
                continue;
            }
            let (name, reference) = (named(name)?, reference.to_string());
            return Some(match kind {
                0 => Route::Manifest(name, reference),
                1 => Route::Blob(name, reference),
                _ => Route::Referrers(name, reference),
            });
        }
    }
    None
}

async fn handle(State(ecr): State<Shared>, req: Request) -> Response {
    let Some(ecr) = ecr else {
        return with_api_version(error(
            StatusCode::SERVICE_UNAVAILABLE,
            "UNAVAILABLE",
            "ECR is not running in this emulator",
        ));
    };
    with_api_version(serve(&ecr, req).await)
}

fn query_map(req: &Request) -> HashMap<String, String> {
    form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

async fn serve(ecr: &Arc<Ecr>, req: Request) -> Response {
    let path = percent_encoding::percent_decode_str(req.uri().path())
        .decode_utf8_lossy()
        .to_string();
    let Some(route) = route(&path) else {
        return error(
            StatusCode::NOT_FOUND,
            "NAME_UNKNOWN",
            format!("no registry endpoint at {path}"),
        );
    };
    let query = query_map(&req);
    let auth = match basic_auth(ecr, req.headers()) {
        Some(a) => Some(a.scope()),
        // A GetDownloadUrlForLayer URL opens one blob without credentials.
        None => match (&route, query.get("X-Ecr-Signature")) {
            (Route::Blob(name, digest), Some(sig)) => {
                let scope = query.get("X-Ecr-Scope").cloned().unwrap_or_default();
                let expires: f64 = query
                    .get("X-Ecr-Expires")
                    .and_then(|e| e.parse().ok())
                    .unwrap_or(0.0);
                ecr.check_download(&scope, name, digest, expires, sig)
                    .then_some(scope)
            }
            _ => None,
        },
    };
    let Some(scope) = auth else {
        let message = if req.headers().contains_key(http::header::AUTHORIZATION) {
            "Your authorization token is invalid or has expired: get a new one with GetAuthorizationToken (aws ecr get-login-password)"
        } else {
            "Not Authorized"
        };
        let r = unauthorized(ecr, message);
        drain(req.into_body()).await;
        return r;
    };
    let method = req.method().clone();
    match route {
        Route::Base => (
            StatusCode::OK,
            [(http::header::CONTENT_TYPE, "application/json")],
            "{}",
        )
            .into_response(),
        Route::Tags(name) => tags_list(ecr, &scope, &name, &query),
        Route::Manifest(name, reference) => match method {
            Method::GET | Method::HEAD => {
                get_manifest(ecr, &scope, &name, &reference, method == Method::HEAD).await
            }
            Method::PUT => put_manifest(ecr, &scope, &name, &reference, req).await,
            Method::DELETE => delete_manifest(ecr, &scope, &name, &reference),
            _ => unsupported(),
        },
        Route::Blob(name, digest) => match method {
            Method::GET | Method::HEAD => {
                get_blob(
                    ecr,
                    &scope,
                    &name,
                    &digest,
                    method == Method::HEAD,
                    req.headers(),
                )
                .await
            }
            Method::DELETE => error(
                StatusCode::METHOD_NOT_ALLOWED,
                "UNSUPPORTED",
                "ECR does not delete blobs: delete the images that use them",
            ),
            _ => unsupported(),
        },
        Route::Upload(name, None) => match method {
            Method::POST => start_upload(ecr, &scope, &name, &query, req).await,
            _ => unsupported(),
        },
        Route::Upload(name, Some(id)) => match method {
            Method::PATCH => patch_upload(ecr, &scope, &name, &id, req).await,
            Method::PUT => put_upload(ecr, &scope, &name, &id, &query, req).await,
            Method::GET => upload_status(ecr, &scope, &name, &id).await,
            Method::DELETE => {
                if let Err(e) = ecr.upload(&scope, &name, &id) {
                    return from_aws(e);
                }
                ecr.cancel_upload(&id);
                StatusCode::NO_CONTENT.into_response()
            }
            _ => unsupported(),
        },
        Route::Referrers(name, digest) => referrers(ecr, &scope, &name, &digest, &query),
    }
}

/// Reads and drops what is left of a refused request's body (up to 64 MiB), so the client
/// sees the answer instead of a reset connection.
async fn drain(body: Body) {
    use futures::StreamExt;
    let mut stream = body.into_data_stream();
    let mut seen = 0usize;
    while let Some(Ok(chunk)) = stream.next().await {
        seen += chunk.len();
        if seen > 64 * 1024 * 1024 {
            break;
        }
    }
}

fn unsupported() -> Response {
    error(
        StatusCode::METHOD_NOT_ALLOWED,
        "UNSUPPORTED",
        "The operation is unsupported.",
    )
}

fn respond(status: StatusCode, headers: Vec<(&'static str, String)>, body: Body) -> Response {
    let mut b = Response::builder().status(status);
    for (k, v) in headers {
        b = b.header(k, v);
    }
    b.body(body)
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// NAME_UNKNOWN, explaining a pull-through cache prefix that cannot be served.
async fn name_unknown(ecr: &Ecr, scope: &str, name: &str, e: AwsError) -> Response {
    if e.code != "RepositoryNotFoundException" {
        return from_aws(e);
    }
    if let Some(rule) = ecr.pull_through_rule(scope, name) {
        let url = rule
            .get("upstreamRegistryUrl")
            .and_then(|u| u.as_str())
            .unwrap_or("")
            .to_string();
        let why = match crate::services::ecr::probe_upstream(&url).await {
            Err(e) => e,
            Ok(()) => {
                format!("the upstream {url} answers, but ecs-emulator does not pull through caches")
            }
        };
        return error(
            StatusCode::NOT_FOUND,
            "NAME_UNKNOWN",
            format!("{}; the pull through cache rule for '{name}' cannot fetch it: {why}. Push the image to the repository instead.", e.message),
        );
    }
    from_aws(e)
}

async fn get_manifest(ecr: &Ecr, scope: &str, name: &str, reference: &str, head: bool) -> Response {
    if let Err(e) = ecr.repo(scope, name) {
        return name_unknown(ecr, scope, name, e).await;
    }
    let r = ImageRef::parse(reference);
    if let ImageRef::Digest(d) = &r {
        if Digest::parse(d).is_err() {
            return error(
                StatusCode::BAD_REQUEST,
                "DIGEST_INVALID",
                format!("invalid digest {d}"),
            );
        }
    }
    let img = match ecr.find_image(scope, name, &r) {
        Ok(i) => i,
        Err(e) => return from_aws(e),
    };
    let headers = vec![
        ("Content-Type", img.media_type.clone()),
        ("Content-Length", img.manifest.len().to_string()),
        ("Docker-Content-Digest", img.digest.clone()),
        ("ETag", format!("\"{}\"", img.digest)),
    ];
    if head {
        return respond(StatusCode::OK, headers, Body::empty());
    }
    ecr.record_pull(scope, name, &img.digest);
    respond(StatusCode::OK, headers, Body::from(img.manifest))
}

async fn put_manifest(
    ecr: &Ecr,
    scope: &str,
    name: &str,
    reference: &str,
    req: Request,
) -> Response {
    if let Err(e) = ecr.repo(scope, name) {
        drain(req.into_body()).await;
        return from_aws(e);
    }
    let content_type = req
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let (tag, expected) = match ImageRef::parse(reference) {
        ImageRef::Digest(d) => {
            if Digest::parse(&d).is_err() {
                drain(req.into_body()).await;
                return error(
                    StatusCode::BAD_REQUEST,
                    "DIGEST_INVALID",
                    format!("invalid digest {d}"),
                );
            }
            (None, Some(d))
        }
        ImageRef::Tag(t) => {
            if !crate::services::ecr::valid_tag(&t) {
                drain(req.into_body()).await;
                return error(
                    StatusCode::BAD_REQUEST,
                    "TAG_INVALID",
                    format!("The image tag '{t}' is not valid"),
                );
            }
            (Some(t), None)
        }
    };
    let body = match axum::body::to_bytes(req.into_body(), MAX_MANIFEST).await {
        Ok(b) => b,
        Err(_) => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "MANIFEST_INVALID",
                format!("the manifest is larger than {MAX_MANIFEST} bytes"),
            )
        }
    };
    match ecr.put_manifest(
        scope,
        name,
        tag.as_deref(),
        expected.as_deref(),
        &body,
        content_type.as_deref(),
        PutMode::Registry,
    ) {
        Ok(img) => {
            crate::feedback!(
                "image pushed: {name}:{} ({})",
                tag.as_deref().unwrap_or("<untagged>"),
                img.digest
            );
            let mut headers = vec![
                ("Location", format!("/v2/{name}/manifests/{}", img.digest)),
                ("Docker-Content-Digest", img.digest.clone()),
                ("Content-Length", "0".to_string()),
            ];
            if let Some(s) = &img.subject {
                headers.push(("OCI-Subject", s.clone()));
            }
            respond(StatusCode::CREATED, headers, Body::empty())
        }
        Err(e) => from_aws(e),
    }
}

fn delete_manifest(ecr: &Ecr, scope: &str, name: &str, reference: &str) -> Response {
    let result = match ImageRef::parse(reference) {
        ImageRef::Digest(d) => ecr.delete_image(scope, name, &d),
        ImageRef::Tag(t) => ecr.delete_tag(scope, name, &t),
    };
    match result {
        Ok(_) => respond(
            StatusCode::ACCEPTED,
            vec![("Content-Length", "0".into())],
            Body::empty(),
        ),
        Err(e) => from_aws(e),
    }
}

fn tags_list(ecr: &Ecr, scope: &str, name: &str, query: &HashMap<String, String>) -> Response {
    let tags = match ecr.tags(scope, name) {
        Ok(t) => t,
        Err(e) => return from_aws(e),
    };
    let mut rest: Vec<String> = match query.get("last") {
        Some(last) => tags.into_iter().filter(|t| t > last).collect(),
        None => tags,
    };
    let mut headers = vec![("Content-Type", "application/json".to_string())];
    if let Some(n) = query.get("n").and_then(|n| n.parse::<usize>().ok()) {
        if rest.len() > n {
            rest.truncate(n);
            if let Some(last) = rest.last() {
                headers.push((
                    "Link",
                    format!("</v2/{name}/tags/list?n={n}&last={last}>; rel=\"next\""),
                ));
            }
        }
    }
    let body = json!({"name": name, "tags": rest}).to_string();
    respond(StatusCode::OK, headers, Body::from(body))
}

fn referrers(
    ecr: &Ecr,
    scope: &str,
    name: &str,
    digest: &str,
    query: &HashMap<String, String>,
) -> Response {
    if Digest::parse(digest).is_err() {
        return error(
            StatusCode::BAD_REQUEST,
            "DIGEST_INVALID",
            format!("invalid digest {digest}"),
        );
    }
    let images = match ecr.referrers(scope, name, digest) {
        Ok(i) => i,
        Err(e) => return from_aws(e),
    };
    let filter = query.get("artifactType");
    let manifests: Vec<serde_json::Value> = images
        .iter()
        .filter(|i| filter.is_none_or(|f| i.artifact_media_type.as_ref() == Some(f)))
        .map(|i| {
            let mut d =
                json!({"mediaType": i.media_type, "digest": i.digest, "size": i.manifest.len()});
            if let Some(t) = &i.artifact_media_type {
                d["artifactType"] = json!(t);
            }
            if let Ok(m) = serde_json::from_str::<serde_json::Value>(&i.manifest) {
                if let Some(a) = m.get("annotations") {
                    d["annotations"] = a.clone();
                }
            }
            d
        })
        .collect();
    let mut headers = vec![(
        "Content-Type",
        "application/vnd.oci.image.index.v1+json".to_string(),
    )];
    if filter.is_some() {
        headers.push(("OCI-Filters-Applied", "artifactType".into()));
    }
    let body = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": manifests});
    respond(StatusCode::OK, headers, Body::from(body.to_string()))
}

/// A `Range: bytes=a-b` request header, resolved against a blob's size.
fn byte_range(headers: &HeaderMap, size: u64) -> Option<Result<(u64, u64), ()>> {
    let h = headers.get(http::header::RANGE)?.to_str().ok()?;
    let spec = h.strip_prefix("bytes=")?;
    if spec.contains(',') {
        return Some(Err(()));
    }
    let (a, b) = spec.split_once('-')?;
    let r = match (a.trim(), b.trim()) {
        ("", suffix) => suffix
            .parse::<u64>()
            .ok()
            .filter(|n| *n > 0 && size > 0)
            .map(|n| (size.saturating_sub(n), size - 1)),
        (start, "") => start
            .parse::<u64>()
            .ok()
            .filter(|s| *s < size)
            .map(|s| (s, size - 1)),
        (start, end) => match (start.parse::<u64>(), end.parse::<u64>()) {
            (Ok(s), Ok(e)) if s <= e && s < size => Some((s, e.min(size - 1))),
            _ => None,
        },
    };
    Some(r.ok_or(()))
}

async fn get_blob(
    ecr: &Ecr,
    scope: &str,
    name: &str,
    digest: &str,
    head: bool,
    headers: &HeaderMap,
) -> Response {
    let d = match Digest::parse(digest) {
        Ok(d) => d,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                "DIGEST_INVALID",
                format!("invalid digest {digest}: {e}"),
            )
        }
    };
    if let Err(e) = ecr.repo(scope, name) {
        return name_unknown(ecr, scope, name, e).await;
    }
    let Some(layer) = ecr.layer(scope, name, &d).await else {
        return error(
            StatusCode::NOT_FOUND,
            "BLOB_UNKNOWN",
            format!("blob {digest} is unknown to the repository with name '{name}'"),
        );
    };
    let size = ecr.blobs.size(&d).await.unwrap_or(layer.size);
    let mut out = vec![
        ("Content-Type", "application/octet-stream".to_string()),
        ("Docker-Content-Digest", digest.to_string()),
        ("Accept-Ranges", "bytes".to_string()),
        ("ETag", format!("\"{digest}\"")),
    ];
    let (status, start, len) = match byte_range(headers, size) {
        None => (StatusCode::OK, 0, size),
        Some(Ok((s, e))) => {
            out.push(("Content-Range", format!("bytes {s}-{e}/{size}")));
            (StatusCode::PARTIAL_CONTENT, s, e - s + 1)
        }
        Some(Err(())) => {
            out.push(("Content-Range", format!("bytes */{size}")));
            return respond(StatusCode::RANGE_NOT_SATISFIABLE, out, Body::empty());
        }
    };
    out.push(("Content-Length", len.to_string()));
    if head {
        return respond(status, out, Body::empty());
    }
    match ecr.blobs.read(&d, start, len).await {
        Ok(stream) => respond(status, out, Body::from_stream(stream)),
        Err(e) => {
            tracing::error!(digest, error = %e, "cannot read a blob");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "UNKNOWN",
                format!("cannot read blob {digest}"),
            )
        }
    }
}

fn upload_headers(name: &str, id: &str, size: u64) -> Vec<(&'static str, String)> {
    vec![
        ("Location", format!("/v2/{name}/blobs/uploads/{id}")),
        ("Range", format!("0-{}", size.saturating_sub(1))),
        ("Docker-Upload-UUID", id.to_string()),
        ("Content-Length", "0".to_string()),
    ]
}

fn blob_created(name: &str, digest: &str) -> Response {
    respond(
        StatusCode::CREATED,
        vec![
            ("Location", format!("/v2/{name}/blobs/{digest}")),
            ("Docker-Content-Digest", digest.to_string()),
            ("Content-Length", "0".to_string()),
        ],
        Body::empty(),
    )
}

/// Appends a request body to an upload; returns the upload's size after it.
async fn append(
    ecr: &Ecr,
    scope: &str,
    name: &str,
    id: &str,
    req: Request,
    check_range: bool,
) -> Result<u64, Response> {
    let (parts, body) = req.into_parts();
    let mut body = Some(body);
    let result = append_body(ecr, scope, name, id, &parts.headers, &mut body, check_range).await;
    if result.is_err() {
        if let Some(b) = body.take() {
            drain(b).await;
        }
    }
    result
}

async fn append_body(
    ecr: &Ecr,
    scope: &str,
    name: &str,
    id: &str,
    headers: &HeaderMap,
    body: &mut Option<Body>,
    check_range: bool,
) -> Result<u64, Response> {
    let slot = ecr.upload(scope, name, id).map_err(from_aws)?;
    let mut guard = slot.lock().await;
    let Some(upload) = guard.as_mut() else {
        return Err(error(
            StatusCode::NOT_FOUND,
            "BLOB_UPLOAD_UNKNOWN",
            format!("upload {id} is finished"),
        ));
    };
    if check_range {
        let range = headers
            .get(http::header::CONTENT_RANGE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.trim_start_matches("bytes ").to_string());
        if let Some(range) = range {
            let start = range
                .split('-')
                .next()
                .and_then(|s| s.trim().parse::<u64>().ok());
            if start != Some(upload.size()) {
                let mut r = error(
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    "BLOB_UPLOAD_INVALID",
                    format!(
                        "the chunk starts at {range} but the upload has {} bytes",
                        upload.size()
                    ),
                );
                for (k, v) in upload_headers(name, id, upload.size()) {
                    if k == "Content-Length" {
                        continue;
                    }
                    if let Ok(v) = HeaderValue::from_str(&v) {
                        r.headers_mut().insert(k, v);
                    }
                }
                return Err(r);
            }
        }
    }
    let Some(b) = body.take() else {
        return Ok(upload.size());
    };
    if let Err(e) = upload.write_stream(b.into_data_stream()).await {
        if crate::store::is_disk_full(&e) {
            // The partial upload goes (its file is removed) so that it holds no space.
            ecr.cancel_upload(id);
            return Err(from_aws(ecr.blob_write_error("write the upload", &e)));
        }
        tracing::warn!(upload = id, error = %e, "blob upload interrupted");
        return Err(error(
            StatusCode::BAD_REQUEST,
            "BLOB_UPLOAD_INVALID",
            format!("the upload failed: {e}"),
        ));
    }
    Ok(upload.size())
}

async fn start_upload(
    ecr: &Ecr,
    scope: &str,
    name: &str,
    query: &HashMap<String, String>,
    req: Request,
) -> Response {
    if let Err(e) = ecr.repo(scope, name) {
        drain(req.into_body()).await;
        return from_aws(e);
    }
    if let (Some(mount), Some(from)) = (query.get("mount"), query.get("from")) {
        if let Ok(d) = Digest::parse(mount) {
            match ecr.mount(scope, from, name, &d).await {
                Ok(Some(_)) => return blob_created(name, mount),
                Ok(None) => {}
                Err(e) => return from_aws(e),
            }
        }
    }
    let id = match ecr.begin_upload(scope, name).await {
        Ok(id) => id,
        Err(e) => return from_aws(e),
    };
    if let Some(digest) = query.get("digest") {
        // A monolithic upload in one POST.
        return finish(ecr, scope, name, &id, digest, req).await;
    }
    respond(
        StatusCode::ACCEPTED,
        upload_headers(name, &id, 0),
        Body::empty(),
    )
}

async fn patch_upload(ecr: &Ecr, scope: &str, name: &str, id: &str, req: Request) -> Response {
    match append(ecr, scope, name, id, req, true).await {
        Ok(size) => respond(
            StatusCode::ACCEPTED,
            upload_headers(name, id, size),
            Body::empty(),
        ),
        Err(r) => r,
    }
}

async fn put_upload(
    ecr: &Ecr,
    scope: &str,
    name: &str,
    id: &str,
    query: &HashMap<String, String>,
    req: Request,
) -> Response {
    let Some(digest) = query.get("digest") else {
        drain(req.into_body()).await;
        return error(
            StatusCode::BAD_REQUEST,
            "DIGEST_INVALID",
            "the digest query parameter is required to finish an upload",
        );
    };
    finish(ecr, scope, name, id, digest, req).await
}

async fn finish(
    ecr: &Ecr,
    scope: &str,
    name: &str,
    id: &str,
    digest: &str,
    req: Request,
) -> Response {
    let expected = match Digest::parse(digest) {
        Ok(d) => d,
        Err(e) => {
            ecr.cancel_upload(id);
            drain(req.into_body()).await;
            return error(
                StatusCode::BAD_REQUEST,
                "DIGEST_INVALID",
                format!("invalid digest {digest}: {e}"),
            );
        }
    };
    if let Err(r) = append(ecr, scope, name, id, req, false).await {
        return r;
    }
    match ecr.finish_upload(scope, name, id, &expected, true).await {
        Ok(layer) => blob_created(name, &layer.digest),
        Err(e) => from_aws(e),
    }
}

async fn upload_status(ecr: &Ecr, scope: &str, name: &str, id: &str) -> Response {
    let slot = match ecr.upload(scope, name, id) {
        Ok(s) => s,
        Err(e) => return from_aws(e),
    };
    let size = slot.lock().await.as_ref().map(|u| u.size()).unwrap_or(0);
    respond(
        StatusCode::NO_CONTENT,
        upload_headers(name, id, size),
        Body::empty(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_route_from_the_right() {
        assert_eq!(route("/v2/"), Some(Route::Base));
        assert_eq!(route("/v2"), Some(Route::Base));
        assert_eq!(route("/v2/a/b/tags/list"), Some(Route::Tags("a/b".into())));
        assert_eq!(
            route("/v2/a/manifests/latest"),
            Some(Route::Manifest("a".into(), "latest".into()))
        );
        assert_eq!(
            route("/v2/a/b/blobs/uploads/"),
            Some(Route::Upload("a/b".into(), None))
        );
        assert_eq!(
            route("/v2/a/blobs/uploads/123"),
            Some(Route::Upload("a".into(), Some("123".into())))
        );
        assert_eq!(
            route("/v2/a/blobs/sha256:00"),
            Some(Route::Blob("a".into(), "sha256:00".into()))
        );
        assert_eq!(
            route("/v2/x/manifests/y/blobs/sha256:1"),
            Some(Route::Blob("x/manifests/y".into(), "sha256:1".into()))
        );
        assert_eq!(
            route("/v2/a/referrers/sha256:1"),
            Some(Route::Referrers("a".into(), "sha256:1".into()))
        );
        assert_eq!(route("/v2/a/unknown"), None);
        assert_eq!(route("/v2//manifests/x"), None);
    }

    #[test]
    fn ranges() {
        let h = |v: &str| {
            let mut m = HeaderMap::new();
            m.insert(http::header::RANGE, HeaderValue::from_str(v).expect("hv"));
            m
        };
        assert_eq!(byte_range(&HeaderMap::new(), 10), None);
        assert_eq!(byte_range(&h("bytes=2-4"), 10), Some(Ok((2, 4))));
        assert_eq!(byte_range(&h("bytes=5-"), 10), Some(Ok((5, 9))));
        assert_eq!(byte_range(&h("bytes=-3"), 10), Some(Ok((7, 9))));
        assert_eq!(byte_range(&h("bytes=8-100"), 10), Some(Ok((8, 9))));
        assert_eq!(byte_range(&h("bytes=10-"), 10), Some(Err(())));
    }
}
