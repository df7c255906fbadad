//! ECR: repositories, images, layers, policies, lifecycle, authorization.
//!
//! Image metadata (manifests, tags) lives in durable tables; layer content lives in the
//! content-addressed blob store (`crate::blobs`). The registry's HTTP layer (`crate::registry`)
//! reaches this state through the typed handle [`Ecr`], so `docker push` and the API see the
//! same images.
//!
//! Keys: repositories `"<account>/<region>/<name>"`; images and layers
//! `"<account>/<region>/<name>@<digest>"` (a repository name never contains '@').

mod auth;
mod images;
mod layers;
mod lifecycle;
pub(crate) mod manifest;
mod policy;
mod registry_settings;
mod repos;
#[cfg(test)]
mod tests;

pub use auth::TokenScope;
pub use images::{valid_tag, ImageRef, PutMode};
pub use lifecycle::run_lifecycle;
pub use manifest::{is_manifest_media_type, MANIFEST_MEDIA_TYPES};
pub use registry_settings::probe_upstream;

use super::{Deps, Registry};
use crate::blobs::BlobStore;
use crate::clock::Clock;
use crate::protocol::codes;
use crate::protocol::AwsError;
use crate::store::Table;
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::Arc;

const SERVICE: &str = "ecr";

/// A repository.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Repo {
    pub name: String,
    pub arn: String,
    pub created_at: f64,
    pub image_tag_mutability: String,
    #[serde(default)]
    pub exclusion_filters: Vec<Value>,
    #[serde(default)]
    pub scan_on_push: bool,
    pub encryption: Value,
    #[serde(default)]
    pub tags: Vec<Value>,
    #[serde(default)]
    pub policy: Option<String>,
    #[serde(default)]
    pub lifecycle: Option<lifecycle::StoredPolicy>,
    #[serde(default)]
    pub preview: Option<lifecycle::Preview>,
}

/// An image: one manifest, by digest, with the tags that point at it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Image {
    pub repository: String,
    pub digest: String,
    #[serde(default)]
    pub tags: Vec<String>,
    pub manifest: String,
    pub media_type: String,
    #[serde(default)]
    pub artifact_media_type: Option<String>,
    pub size: u64,
    pub pushed_at: f64,
    #[serde(default)]
    pub last_pull: Option<f64>,
    /// Blobs (config and layers) an image manifest references.
    #[serde(default)]
    pub blobs: Vec<String>,
    /// Manifests an index (manifest list) references.
    #[serde(default)]
    pub children: Vec<String>,
    #[serde(default)]
    pub subject: Option<String>,
    #[serde(default)]
    pub scanned_at: Option<f64>,
}

/// A blob that is part of a repository (uploaded to it or mounted into it).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Layer {
    pub digest: String,
    pub size: u64,
    pub added_at: f64,
}

/// The state of ECR, shared by the API handlers, the registry's HTTP layer and the lifecycle
/// loop.
pub struct Ecr {
    pub(crate) repos: Arc<Table<Repo>>,
    pub(crate) images: Arc<Table<Image>>,
    pub(crate) layers: Arc<Table<Layer>>,
    pub(crate) settings: Arc<Table<registry_settings::Settings>>,
    pub blobs: Arc<BlobStore>,
    pub clock: Clock,
    /// For reporting a full data dir (blob writes) to /_emulator/health.
    pub(crate) store: Arc<crate::store::Store>,
    host: String,
    port: AtomicU16,
    secret: Vec<u8>,
    uploads: layers::Uploads,
    lifecycle_running: AtomicBool,
    /// IAM, whose roles a repository or registry policy's principals must name.
    iam: Option<Arc<super::iam::Iam>>,
}

pub fn register(r: &mut Registry, deps: &Deps, iam: Arc<super::iam::Iam>) {
    let mut ecr = Ecr::new(deps);
    ecr.iam = Some(iam);
    let ecr = Arc::new(ecr);
    let s = &ecr;
    repos::register(r, s);
    images::register(r, s);
    layers::register(r, s);
    lifecycle::register(r, s);
    registry_settings::register(r, s);
    auth::register(r, s);
    r.provide(ecr.clone());
}

impl Ecr {
    pub fn new(deps: &Deps) -> Ecr {
        let store = &deps.store;
        let blobs = if deps.config.ephemeral {
            BlobStore::temporary()
        } else {
            BlobStore::open(deps.config.data_dir().join("blobs"))
        };
        let secrets: Arc<Table<String>> = Table::open(store, "ecr_secret");
        let secret = match secrets.get("token-key").and_then(|h| hex::decode(h).ok()) {
            Some(s) => s,
            None => {
                let s = super::random_hex(64);
                if let Err(e) = secrets.put("token-key", s.clone()) {
                    tracing::warn!(error = %e, "could not save the ECR token key; tokens will not survive a restart");
                }
                hex::decode(&s).unwrap_or_default()
            }
        };
        Ecr {
            repos: Table::open(store, "ecr_repositories"),
            images: Table::open(store, "ecr_images"),
            layers: Table::open(store, "ecr_layers"),
            settings: Table::open(store, "ecr_registry"),
            blobs: Arc::new(blobs),
            clock: deps.clock.clone(),
            store: store.clone(),
            host: deps.config.registry_host.clone(),
            port: AtomicU16::new(deps.config.listen.port()),
            secret,
            uploads: layers::Uploads::default(),
            lifecycle_running: AtomicBool::new(false),
            iam: None,
        }
    }

    /// Whether a policy principal exists: IAM role ARNs must name a role of the emulator's IAM
    /// (in the account the ARN names); accounts, `*`, services and other principals are taken
    /// as they are (the emulator's IAM has no users to check).
    pub(crate) fn principal_exists(&self, principal: &str) -> bool {
        match (&self.iam, super::iam::parse_role_arn(principal)) {
            (Some(iam), Some(_)) => iam.role_by_arn(principal).is_some(),
            _ => true,
        }
    }

    /// The error for a blob write that failed: a full (or read-only) data dir is the server's
    /// capacity problem, 503 ServiceUnavailable, and reported to /_emulator/health; anything
    /// else is a ServerException.
    pub(crate) fn blob_write_error(&self, what: &str, e: &std::io::Error) -> AwsError {
        if crate::store::is_disk_full(e) {
            self.store.note_disk_error("blobs", e);
            AwsError::service_unavailable(format!(
                "cannot {what}: the emulator's data dir refuses writes ({}). Free space there; \
                 pushes resume without a restart.",
                crate::store::describe_io(e)
            ))
        } else {
            tracing::error!(error = %e, "cannot {what}");
            AwsError::new(
                crate::protocol::codes::ecr::ServerException,
                format!("cannot {what}: {e}"),
            )
            .with_status(500)
        }
    }

    /// The port the emulator really listens on (the configured one may be 0).
    pub fn set_port(&self, port: u16) {
        self.port.store(port, Ordering::Relaxed);
    }

    /// `host:port` of the registry, as image references name it.
    pub fn registry_host(&self) -> String {
        format!("{}:{}", self.host, self.port.load(Ordering::Relaxed))
    }

    pub fn repository_uri(&self, name: &str) -> String {
        format!("{}/{name}", self.registry_host())
    }

    pub fn proxy_endpoint(&self) -> String {
        format!("http://{}", self.registry_host())
    }

    pub fn repo(&self, scope: &str, name: &str) -> Result<Repo, AwsError> {
        self.repos
            .get(&format!("{scope}{name}"))
            .ok_or_else(|| repo_not_found(scope, name))
    }
}

/// The account of a scope "<account>/<region>/".
pub(crate) fn account_of(scope: &str) -> &str {
    scope.split('/').next().unwrap_or("")
}

pub(crate) fn repo_not_found(scope: &str, name: &str) -> AwsError {
    AwsError::new(
        codes::ecr::RepositoryNotFoundException,
        format!(
            "The repository with name '{name}' does not exist in the registry with id '{}'",
            account_of(scope)
        ),
    )
}

pub(crate) fn invalid(message: impl Into<String>) -> AwsError {
    AwsError::new(codes::ecr::InvalidParameterException, message)
}

/// The key prefix of a repository's images and layers.
pub(crate) fn repo_prefix(scope: &str, name: &str) -> String {
    format!("{scope}{name}@")
}

/// A call naming another account's registry finds nothing there.
pub(crate) fn check_registry(ctx: &super::Ctx, input: &Value) -> Result<(), AwsError> {
    match input.get("registryId").and_then(Value::as_str) {
        Some(id) if id != ctx.account => Err(AwsError::new(
            codes::ecr::RepositoryNotFoundException,
            format!("The registry with id '{id}' does not exist or is not accessible"),
        )),
        _ => Ok(()),
    }
}

/// `*` matches any run of characters; everything else matches itself.
pub(crate) fn wildcard(pattern: &str, s: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = s.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && p[pi] != '*' && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(sp) = star {
            pi = sp + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

const TOKEN_B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// One page of `items` (already ordered by `key`), resuming after the key the token names.
pub(crate) fn page<T>(
    items: Vec<T>,
    key: impl Fn(&T) -> String,
    token: Option<&str>,
    max: usize,
) -> Result<(Vec<T>, Option<String>), AwsError> {
    let start = match token.filter(|t| !t.is_empty()) {
        None => 0,
        Some(t) => {
            let after = TOKEN_B64
                .decode(t)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| invalid("Invalid parameter at 'nextToken' failed to satisfy constraint: 'The nextToken is not valid'"))?;
            items
                .iter()
                .position(|i| key(i) > after)
                .unwrap_or(items.len())
        }
    };
    let max = max.max(1);
    let mut rest: Vec<T> = items.into_iter().skip(start).collect();
    if rest.len() > max {
        rest.truncate(max);
        let next = rest.last().map(|i| TOKEN_B64.encode(key(i)));
        Ok((rest, next))
    } else {
        Ok((rest, None))
    }
}

/// maxResults of a call, within the model's bounds.
pub(crate) fn max_results(input: &Value, default: usize) -> usize {
    input
        .get("maxResults")
        .and_then(Value::as_u64)
        .map(|n| n as usize)
        .unwrap_or(default)
}

/// Adds `key: value` when the value is present.
pub(crate) fn put_opt(out: &mut serde_json::Map<String, Value>, key: &str, value: Option<Value>) {
    if let Some(v) = value {
        out.insert(key.to_string(), v);
    }
}
