//! Layers: blob uploads (shared by the API's layer calls and the registry's upload protocol),
//! a repository's blobs, cross-repository mounts, and the layer API calls.

use super::{account_of, check_registry, invalid, repo_prefix, Ecr, Layer, SERVICE};
use crate::blobs::{Digest, FinishError, Upload};
use crate::protocol::codes;
use crate::protocol::AwsError;
use crate::services::input::Input;
use crate::services::{Ctx, HandlerResult, Registry};
use base64::Engine;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;

/// The part size InitiateLayerUpload advertises.
const PART_SIZE: u64 = 10 * 1024 * 1024;
/// How long a GetDownloadUrlForLayer URL stays valid, in emulated seconds.
const DOWNLOAD_URL_LIFETIME: f64 = 3600.0;

pub(super) fn register(r: &mut Registry, s: &Arc<Ecr>) {
    r.sync(
        SERVICE,
        "BatchCheckLayerAvailability",
        s,
        batch_check_layer_availability,
    );
    r.asynchronous(SERVICE, "InitiateLayerUpload", s, initiate_layer_upload);
    r.asynchronous(SERVICE, "UploadLayerPart", s, upload_layer_part);
    r.asynchronous(SERVICE, "CompleteLayerUpload", s, complete_layer_upload);
    r.sync(
        SERVICE,
        "GetDownloadUrlForLayer",
        s,
        get_download_url_for_layer,
    );
}

/// An upload in progress. `None` once finished or failed.
pub type UploadSlot = Arc<tokio::sync::Mutex<Option<Upload>>>;

struct Session {
    scope: String,
    repo: String,
    slot: UploadSlot,
}

/// Uploads in progress, by id. They live in memory: an upload under way when the emulator
/// stops must be started again (its temporary file is collected later).
#[derive(Default)]
pub struct Uploads {
    sessions: parking_lot::Mutex<HashMap<String, Session>>,
}

impl Uploads {
    pub(super) fn forget_repo(&self, scope: &str, repo: &str) {
        self.sessions
            .lock()
            .retain(|_, s| !(s.scope == scope && s.repo == repo));
    }
}

fn upload_not_found(scope: &str, repo: &str, id: &str) -> AwsError {
    AwsError::new(codes::ecr::UploadNotFoundException,
        format!(
            "Upload with id '{id}' does not exist in the repository with name '{repo}' in the registry with id '{}'",
            account_of(scope)
        ),
    )
}

impl Ecr {
    /// Starts an upload into a repository; returns its id.
    pub async fn begin_upload(&self, scope: &str, repo: &str) -> Result<String, AwsError> {
        self.repo(scope, repo)?;
        let upload = self
            .blobs
            .begin()
            .await
            .map_err(|e| self.blob_write_error("start the upload", &e))?;
        let id = uuid::Uuid::new_v4().to_string();
        self.uploads.sessions.lock().insert(
            id.clone(),
            Session {
                scope: scope.to_string(),
                repo: repo.to_string(),
                slot: Arc::new(tokio::sync::Mutex::new(Some(upload))),
            },
        );
        Ok(id)
    }

    /// The upload `id` of this repository.
    pub fn upload(&self, scope: &str, repo: &str, id: &str) -> Result<UploadSlot, AwsError> {
        let sessions = self.uploads.sessions.lock();
        match sessions.get(id) {
            Some(s) if s.scope == scope && s.repo == repo => Ok(s.slot.clone()),
            _ => Err(upload_not_found(scope, repo, id)),
        }
    }

    pub fn cancel_upload(&self, id: &str) {
        self.uploads.sessions.lock().remove(id);
    }

    /// Finishes an upload: verifies the digest, stores the blob and makes it part of the
    /// repository. The session ends whatever the outcome.
    pub async fn finish_upload(
        &self,
        scope: &str,
        repo: &str,
        id: &str,
        expected: &Digest,
        allow_empty: bool,
    ) -> Result<Layer, AwsError> {
        let slot = self.upload(scope, repo, id)?;
        let upload = slot.lock().await.take();
        self.cancel_upload(id);
        let upload = upload.ok_or_else(|| upload_not_found(scope, repo, id))?;
        if upload.size() == 0 && !allow_empty {
            return Err(AwsError::new(
                codes::ecr::EmptyUploadException,
                format!("The upload with id '{id}' contains no data"),
            ));
        }
        let (digest, size) = upload.finish(Some(expected)).await.map_err(|e| match e {
            FinishError::DigestMismatch { expected, actual } => AwsError::new(codes::ecr::InvalidLayerException,
                format!("The layer digest '{expected}' does not match the digest '{actual}' of the uploaded content"),
            ),
            FinishError::Io(e) => self.blob_write_error("store the blob", &e),
        })?;
        self.add_layer(scope, repo, &digest.to_string(), size)
    }

    /// Makes a stored blob part of a repository.
    pub fn add_layer(
        &self,
        scope: &str,
        repo: &str,
        digest: &str,
        size: u64,
    ) -> Result<Layer, AwsError> {
        let key = format!("{}{digest}", repo_prefix(scope, repo));
        let layer = Layer {
            digest: digest.to_string(),
            size,
            added_at: self.clock.now(),
        };
        self.layers.transact(|t| {
            if let Some(existing) = t.get(&key) {
                return Ok(existing.clone());
            }
            t.put(&key, layer.clone());
            Ok(layer.clone())
        })
    }

    /// A blob of a repository, when it is one and its content is on disk.
    pub async fn layer(&self, scope: &str, repo: &str, digest: &Digest) -> Option<Layer> {
        let l = self
            .layers
            .get(&format!("{}{digest}", repo_prefix(scope, repo)))?;
        self.blobs.contains(digest).await.then_some(l)
    }

    /// Mounts a blob of repository `from` into `to` (same account and region). None when `from`
    /// does not have it.
    pub async fn mount(
        &self,
        scope: &str,
        from: &str,
        to: &str,
        digest: &Digest,
    ) -> Result<Option<Layer>, AwsError> {
        self.repo(scope, to)?;
        match self.layer(scope, from, digest).await {
            Some(l) => self.add_layer(scope, to, &l.digest, l.size).map(Some),
            None => Ok(None),
        }
    }
}

fn repo_name(input: &Value) -> String {
    input.str("repositoryName").unwrap_or("").to_string()
}

fn batch_check_layer_availability(ecr: &Ecr, ctx: &Ctx, input: Value) -> HandlerResult {
    check_registry(ctx, &input)?;
    let scope = ctx.scope();
    let repo = repo_name(&input);
    ecr.repo(&scope, &repo)?;
    let mut layers = Vec::new();
    let mut failures = Vec::new();
    for d in input.string_list("layerDigests") {
        if Digest::parse(&d).is_err() {
            failures.push(json!({"layerDigest": d, "failureCode": "InvalidLayerDigest", "failureReason": "Invalid layer digest"}));
            continue;
        }
        match ecr.layers.get(&format!("{}{d}", repo_prefix(&scope, &repo))) {
            Some(l) => layers.push(json!({
                "layerDigest": d,
                "layerAvailability": "AVAILABLE",
                "layerSize": l.size,
            })),
            None => failures.push(json!({"layerDigest": d, "failureCode": "MissingLayerDigest", "failureReason": "Could not find image layer"})),
        }
    }
    Ok(json!({"layers": layers, "failures": failures}))
}

async fn initiate_layer_upload(ecr: Arc<Ecr>, ctx: Ctx, input: Value) -> HandlerResult {
    check_registry(&ctx, &input)?;
    let id = ecr.begin_upload(&ctx.scope(), &repo_name(&input)).await?;
    Ok(json!({"uploadId": id, "partSize": PART_SIZE}))
}

async fn upload_layer_part(ecr: Arc<Ecr>, ctx: Ctx, input: Value) -> HandlerResult {
    check_registry(&ctx, &input)?;
    let scope = ctx.scope();
    let repo = repo_name(&input);
    ecr.repo(&scope, &repo)?;
    let id = input.str("uploadId").unwrap_or("").to_string();
    let data = base64::engine::general_purpose::STANDARD
        .decode(input.str("layerPartBlob").unwrap_or(""))
        .map_err(|_| invalid("Invalid parameter at 'layerPartBlob' failed to satisfy constraint: 'The layer part is not valid base64'"))?;
    let first = input.i64("partFirstByte").unwrap_or(0);
    let last = input.i64("partLastByte").unwrap_or(-1);
    let slot = ecr.upload(&scope, &repo, &id)?;
    let mut guard = slot.lock().await;
    let upload = guard
        .as_mut()
        .ok_or_else(|| upload_not_found(&scope, &repo, &id))?;
    let received = upload.size() as i64;
    if first != received || last != first + data.len() as i64 - 1 || data.is_empty() {
        return Err(AwsError::new(codes::ecr::InvalidLayerPartException,
            format!(
                "The layer part with bytes {first}-{last} (of {} bytes) is not valid: the upload has received bytes 0-{} so far; the next part must start at byte {received}",
                data.len(),
                received - 1
            ),
        ));
    }
    upload.write(&data).await.map_err(|e| {
        AwsError::new(
            codes::ecr::ServerException,
            format!("cannot write the layer part: {e}"),
        )
        .with_status(500)
    })?;
    let last_byte = upload.size() as i64 - 1;
    Ok(json!({
        "registryId": ctx.account,
        "repositoryName": repo,
        "uploadId": id,
        "lastByteReceived": last_byte,
    }))
}

async fn complete_layer_upload(ecr: Arc<Ecr>, ctx: Ctx, input: Value) -> HandlerResult {
    check_registry(&ctx, &input)?;
    let scope = ctx.scope();
    let repo = repo_name(&input);
    ecr.repo(&scope, &repo)?;
    let id = input.str("uploadId").unwrap_or("").to_string();
    let digests = input.string_list("layerDigests");
    let [digest] = digests.as_slice() else {
        return Err(invalid("Invalid parameter at 'layerDigests' failed to satisfy constraint: 'exactly one layer digest is required'"));
    };
    let expected = Digest::parse(digest).map_err(|e| {
        AwsError::new(
            codes::ecr::InvalidLayerException,
            format!("The layer digest '{digest}' is not valid: {e}"),
        )
    })?;
    ecr.upload(&scope, &repo, &id)?;
    if ecr.layer(&scope, &repo, &expected).await.is_some() {
        ecr.cancel_upload(&id);
        return Err(AwsError::new(codes::ecr::LayerAlreadyExistsException,
            format!(
                "The layer '{digest}' already exists in the repository with name '{repo}' in the registry with id '{}'",
                ctx.account
            ),
        ));
    }
    let layer = ecr
        .finish_upload(&scope, &repo, &id, &expected, false)
        .await?;
    Ok(json!({
        "registryId": ctx.account,
        "repositoryName": repo,
        "uploadId": id,
        "layerDigest": layer.digest,
    }))
}

fn get_download_url_for_layer(ecr: &Ecr, ctx: &Ctx, input: Value) -> HandlerResult {
    check_registry(ctx, &input)?;
    let scope = ctx.scope();
    let repo = repo_name(&input);
    ecr.repo(&scope, &repo)?;
    let digest = input.str("layerDigest").unwrap_or("");
    if !ecr
        .layers
        .contains(&format!("{}{digest}", repo_prefix(&scope, &repo)))
    {
        return Err(AwsError::new(codes::ecr::LayersNotFoundException,
            format!(
                "The image layer '{digest}' does not exist in the repository with name '{repo}' in the registry with id '{}'",
                ctx.account
            ),
        ));
    }
    let expires = (ctx.now + DOWNLOAD_URL_LIFETIME).floor();
    let sig = ecr.download_signature(&scope, &repo, digest, expires);
    let q = |s: &str| {
        percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
    };
    Ok(json!({
        "downloadUrl": format!(
            "{}/v2/{repo}/blobs/{digest}?X-Ecr-Scope={}&X-Ecr-Expires={expires}&X-Ecr-Signature={sig}",
            ecr.proxy_endpoint(),
            q(&scope)
        ),
        "layerDigest": digest,
    }))
}
