//! Images: putting, finding and deleting manifests and tags (for the API and the registry
//! alike), and the image API calls.

use super::manifest;
use super::{
    account_of, check_registry, invalid, max_results, page, put_opt, repo_prefix, wildcard, Ecr,
    Image, Repo, SERVICE,
};
use crate::blobs::Digest;
use crate::protocol::codes;
use crate::protocol::AwsError;
use crate::services::input::Input;
use crate::services::{Ctx, HandlerResult, Registry};
use serde_json::{json, Map, Value};
use std::sync::Arc;

pub(super) fn register(r: &mut Registry, s: &Arc<Ecr>) {
    r.sync(SERVICE, "PutImage", s, put_image);
    r.sync(SERVICE, "DescribeImages", s, describe_images);
    r.sync(SERVICE, "ListImages", s, list_images);
    r.sync(SERVICE, "BatchGetImage", s, batch_get_image);
    r.sync(SERVICE, "BatchDeleteImage", s, batch_delete_image);
    r.sync(SERVICE, "StartImageScan", s, start_image_scan);
    r.sync(
        SERVICE,
        "DescribeImageScanFindings",
        s,
        describe_image_scan_findings,
    );
    r.sync(SERVICE, "ListImageReferrers", s, list_image_referrers);
}

/// How a manifest is named: by tag or by digest.
#[derive(Debug, Clone, PartialEq)]
pub enum ImageRef {
    Tag(String),
    Digest(String),
}

impl ImageRef {
    /// A registry reference: a digest when it parses as one, else a tag.
    pub fn parse(reference: &str) -> ImageRef {
        if reference.contains(':') {
            ImageRef::Digest(reference.to_string())
        } else {
            ImageRef::Tag(reference.to_string())
        }
    }
}

/// Who is putting a manifest: the API refuses a put that changes nothing
/// (ImageAlreadyExistsException); the registry accepts it, as `docker push` of the same image
/// twice succeeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutMode {
    Api,
    Registry,
}

/// Docker's tag grammar.
pub fn valid_tag(tag: &str) -> bool {
    let mut chars = tag.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
    first_ok
        && tag.len() <= 128
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-')
}

/// Whether a tag may not be moved to another image in this repository.
pub(crate) fn tag_immutable(repo: &Repo, tag: &str) -> bool {
    let matches = || {
        repo.exclusion_filters.iter().any(|f| {
            f.get("filter")
                .and_then(Value::as_str)
                .is_some_and(|p| wildcard(p, tag))
        })
    };
    match repo.image_tag_mutability.as_str() {
        "IMMUTABLE" => true,
        "IMMUTABLE_WITH_EXCLUSION" => !matches(),
        "MUTABLE_WITH_EXCLUSION" => matches(),
        _ => false,
    }
}

fn image_id_json(digest: &str, tag: Option<&str>) -> Value {
    let mut id = Map::new();
    id.insert("imageDigest".into(), json!(digest));
    put_opt(&mut id, "imageTag", tag.map(|t| json!(t)));
    Value::Object(id)
}

fn image_not_found(scope: &str, repo: &str, digest: Option<&str>, tag: Option<&str>) -> AwsError {
    AwsError::new(codes::ecr::ImageNotFoundException,
        format!(
            "The image with imageId {{imageDigest:'{}', imageTag:'{}'}} does not exist within the repository with name '{repo}' in the registry with id '{}'",
            digest.unwrap_or("null"),
            tag.unwrap_or("null"),
            account_of(scope)
        ),
    )
}

impl Ecr {
    /// Stores a manifest (and moves or adds its tag). Every blob an image manifest references,
    /// and every manifest an index references, must already be in the repository.
    #[allow(clippy::too_many_arguments)]
    pub fn put_manifest(
        &self,
        scope: &str,
        repo_name: &str,
        tag: Option<&str>,
        expected_digest: Option<&str>,
        body: &[u8],
        content_type: Option<&str>,
        mode: PutMode,
    ) -> Result<Image, AwsError> {
        let repo = self.repo(scope, repo_name)?;
        let account = account_of(scope).to_string();
        if let Some(t) = tag {
            if !valid_tag(t) {
                return Err(invalid(format!(
                    "Invalid parameter at 'imageTag' failed to satisfy constraint: 'The image tag '{t}' is not valid'"
                )));
            }
        }
        let digest = Digest::of(body).to_string();
        if let Some(expected) = expected_digest {
            if expected != digest {
                return Err(AwsError::new(codes::ecr::ImageDigestDoesNotMatchException,
                    format!("The specified image digest '{expected}' does not match the digest '{digest}' calculated from the image manifest"),
                ));
            }
        }
        let text = std::str::from_utf8(body)
            .map_err(|_| invalid("Invalid parameter at 'ImageManifest' failed to satisfy constraint: 'The manifest is not UTF-8'"))?
            .to_string();
        let parsed = manifest::parse(body, content_type).map_err(|m| {
            invalid(format!(
                "Invalid parameter at 'ImageManifest' failed to satisfy constraint: '{m}'"
            ))
        })?;
        let prefix = repo_prefix(scope, repo_name);
        let mut missing = Vec::new();
        let mut size = 0u64;
        for (d, declared) in &parsed.blobs {
            match self.layers.get(&format!("{prefix}{d}")) {
                // A descriptor must say the blob's real size (distribution refuses it otherwise;
                // a client trusting the size would read too little or wait for more).
                Some(l) if l.size != *declared => {
                    return Err(invalid(format!(
                        "Invalid parameter at 'ImageManifest' failed to satisfy constraint: 'the descriptor of blob {d} says {declared} bytes, the blob has {}'",
                        l.size
                    )));
                }
                Some(l) => size += l.size,
                None => {
                    missing.push(d.clone());
                    size += declared;
                }
            }
        }
        if !missing.is_empty() {
            return Err(AwsError::new(codes::ecr::LayersNotFoundException,
                format!(
                    "Layers with digests '{:?}' required for pushing image into repository with name '{repo_name}' in the registry with id '{account}' do not exist",
                    missing
                ),
            ));
        }
        let now = self.clock.now();
        let scan = repo.scan_on_push;
        self.images.transact(|t| {
            for c in &parsed.children {
                match t.get(&format!("{prefix}{c}")) {
                    Some(child) => size += child.size,
                    None => {
                        return Err(AwsError::new(codes::ecr::ReferencedImagesNotFoundException,
                            format!("The manifest '{c}' referenced by this index does not exist in the repository with name '{repo_name}' in the registry with id '{account}'"),
                        ))
                    }
                }
            }
            let key = format!("{prefix}{digest}");
            let exists = t.contains(&key);
            let already = || {
                AwsError::new(codes::ecr::ImageAlreadyExistsException,
                    format!(
                        "Image with digest '{digest}' and tag '{}' already exists in the repository with name '{repo_name}' in registry with id '{account}'",
                        tag.unwrap_or("null")
                    ),
                )
            };
            if let Some(tag) = tag {
                let holder = t
                    .keys(&prefix)
                    .into_iter()
                    .find(|k| t.get(k).is_some_and(|i| i.tags.iter().any(|x| x == tag)));
                match holder {
                    Some(h) if h == key => {
                        if mode == PutMode::Api {
                            return Err(already());
                        }
                        return t.get(&key).cloned().ok_or_else(|| AwsError::internal("image vanished"));
                    }
                    Some(h) => {
                        if tag_immutable(&repo, tag) {
                            let why = if repo.image_tag_mutability == "IMMUTABLE" {
                                "the repository is immutable"
                            } else {
                                "the tag is immutable"
                            };
                            return Err(AwsError::new(codes::ecr::ImageTagAlreadyExistsException,
                                format!("The image tag '{tag}' already exists in the '{repo_name}' repository and cannot be overwritten because {why}."),
                            ));
                        }
                        if let Some(old) = t.get_mut(&h) {
                            old.tags.retain(|x| x != tag);
                        }
                    }
                    None => {}
                }
            } else if exists {
                if mode == PutMode::Api {
                    return Err(already());
                }
                return t.get(&key).cloned().ok_or_else(|| AwsError::internal("image vanished"));
            }
            if let Some(img) = t.get_mut(&key) {
                if let Some(tag) = tag {
                    img.tags.push(tag.to_string());
                }
                return Ok(img.clone());
            }
            let img = Image {
                repository: repo_name.to_string(),
                digest: digest.clone(),
                tags: tag.map(|t| vec![t.to_string()]).unwrap_or_default(),
                manifest: text,
                media_type: parsed.media_type.clone(),
                artifact_media_type: parsed.artifact_media_type.clone(),
                size,
                pushed_at: now,
                last_pull: None,
                blobs: parsed.blobs.iter().map(|(d, _)| d.clone()).collect(),
                children: parsed.children.clone(),
                subject: parsed.subject.clone(),
                scanned_at: if scan { Some(now) } else { None },
            };
            t.put(&key, img.clone());
            Ok(img)
        })
    }

    /// The image a tag or digest names.
    pub fn find_image(
        &self,
        scope: &str,
        repo_name: &str,
        r: &ImageRef,
    ) -> Result<Image, AwsError> {
        self.repo(scope, repo_name)?;
        let prefix = repo_prefix(scope, repo_name);
        let found = match r {
            ImageRef::Digest(d) => self.images.get(&format!("{prefix}{d}")),
            ImageRef::Tag(tag) => self.images.read(|rows| {
                rows.range(prefix.clone()..)
                    .take_while(|(k, _)| k.starts_with(&prefix))
                    .find(|(_, i)| i.tags.iter().any(|x| x == tag))
                    .map(|(_, i)| i.clone())
            }),
        };
        found.ok_or_else(|| match r {
            ImageRef::Digest(d) => image_not_found(scope, repo_name, Some(d), None),
            ImageRef::Tag(t) => image_not_found(scope, repo_name, None, Some(t)),
        })
    }

    /// Every image of a repository, in key (digest) order.
    pub fn images_of(&self, scope: &str, repo_name: &str) -> Vec<Image> {
        self.images
            .scan(&repo_prefix(scope, repo_name))
            .into_iter()
            .map(|(_, i)| i)
            .collect()
    }

    /// Notes a pull (DescribeImages' lastRecordedPullTime).
    pub fn record_pull(&self, scope: &str, repo_name: &str, digest: &str) {
        let key = format!("{}{digest}", repo_prefix(scope, repo_name));
        let now = self.clock.now();
        let _ = self.images.transact::<_, AwsError, _>(|t| {
            if let Some(i) = t.get_mut(&key) {
                i.last_pull = Some(now);
            }
            Ok(())
        });
    }

    /// Deletes an image with all its tags. Refused while an index in the repository references
    /// it (failure code ImageReferencedByManifestList).
    pub fn delete_image(
        &self,
        scope: &str,
        repo_name: &str,
        digest: &str,
    ) -> Result<Image, AwsError> {
        self.repo(scope, repo_name)?;
        let prefix = repo_prefix(scope, repo_name);
        let key = format!("{prefix}{digest}");
        self.images.transact(|t| {
            if !t.contains(&key) {
                return Err(image_not_found(scope, repo_name, Some(digest), None));
            }
            let parent = t
                .keys(&prefix)
                .into_iter()
                .filter_map(|k| t.get(&k))
                .find(|i| i.children.iter().any(|c| c == digest))
                .map(|i| i.digest.clone());
            if let Some(parent) = parent {
                return Err(AwsError::new(
                    codes::ecr::ImageReferencedByManifestList,
                    format!("Requested image {digest} is referenced by the manifest list {parent}"),
                ));
            }
            t.remove(&key)
                .ok_or_else(|| image_not_found(scope, repo_name, Some(digest), None))
        })
    }

    /// Removes a tag; the image goes too when that was its last tag (as BatchDeleteImage by tag
    /// does). Returns the image as it was.
    pub fn delete_tag(&self, scope: &str, repo_name: &str, tag: &str) -> Result<Image, AwsError> {
        let img = self.find_image(scope, repo_name, &ImageRef::Tag(tag.to_string()))?;
        if img.tags.len() <= 1 {
            return self.delete_image(scope, repo_name, &img.digest);
        }
        let key = format!("{}{}", repo_prefix(scope, repo_name), img.digest);
        self.images.transact::<_, AwsError, _>(|t| {
            if let Some(i) = t.get_mut(&key) {
                i.tags.retain(|x| x != tag);
            }
            Ok(())
        })?;
        Ok(img)
    }

    /// Tags of a repository, sorted.
    pub fn tags(&self, scope: &str, repo_name: &str) -> Result<Vec<String>, AwsError> {
        self.repo(scope, repo_name)?;
        let mut tags: Vec<String> = self
            .images_of(scope, repo_name)
            .into_iter()
            .flat_map(|i| i.tags)
            .collect();
        tags.sort();
        Ok(tags)
    }

    /// Images whose subject is `digest` (OCI referrers).
    pub fn referrers(
        &self,
        scope: &str,
        repo_name: &str,
        digest: &str,
    ) -> Result<Vec<Image>, AwsError> {
        self.repo(scope, repo_name)?;
        Ok(self
            .images_of(scope, repo_name)
            .into_iter()
            .filter(|i| i.subject.as_deref() == Some(digest))
            .collect())
    }

    pub(crate) fn detail(&self, scope: &str, img: &Image) -> Value {
        let mut d = Map::new();
        d.insert("registryId".into(), json!(account_of(scope)));
        d.insert("repositoryName".into(), json!(img.repository));
        d.insert("imageDigest".into(), json!(img.digest));
        if !img.tags.is_empty() {
            d.insert("imageTags".into(), json!(img.tags));
        }
        d.insert("imageSizeInBytes".into(), json!(img.size));
        d.insert("imagePushedAt".into(), json!(img.pushed_at));
        d.insert("imageManifestMediaType".into(), json!(img.media_type));
        put_opt(
            &mut d,
            "artifactMediaType",
            img.artifact_media_type.as_ref().map(|t| json!(t)),
        );
        put_opt(
            &mut d,
            "lastRecordedPullTime",
            img.last_pull.map(|t| json!(t)),
        );
        put_opt(
            &mut d,
            "subjectManifestDigest",
            img.subject.as_ref().map(|s| json!(s)),
        );
        if let Some(at) = img.scanned_at {
            d.insert("imageScanStatus".into(), scan_status());
            d.insert(
                "imageScanFindingsSummary".into(),
                json!({"imageScanCompletedAt": at, "findingSeverityCounts": {}}),
            );
        }
        d.insert("imageStatus".into(), json!("ACTIVE"));
        Value::Object(d)
    }
}

fn scan_status() -> Value {
    json!({
        "status": "COMPLETE",
        "description": "ecs-emulator does not scan images for vulnerabilities: no findings are ever reported."
    })
}

fn repo_name(input: &Value) -> &str {
    input.str("repositoryName").unwrap_or("")
}

/// The imageIds of a call, each as (digest, tag).
fn image_ids(input: &Value) -> Vec<(Option<String>, Option<String>)> {
    input
        .get("imageIds")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|id| {
                    (
                        id.str("imageDigest").map(str::to_string),
                        id.str("imageTag").map(str::to_string),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn failure(digest: Option<&str>, tag: Option<&str>, code: &str, reason: &str) -> Value {
    let mut id = Map::new();
    put_opt(&mut id, "imageDigest", digest.map(|d| json!(d)));
    put_opt(&mut id, "imageTag", tag.map(|t| json!(t)));
    json!({"imageId": id, "failureCode": code, "failureReason": reason})
}

/// Resolves one (digest, tag) id to an image, or a failure entry.
fn resolve(
    ecr: &Ecr,
    scope: &str,
    repo: &str,
    digest: Option<&str>,
    tag: Option<&str>,
) -> Result<Image, Value> {
    if let Some(d) = digest {
        if Digest::parse(d).is_err() {
            return Err(failure(digest, tag, "InvalidImageDigest", "Invalid request parameters: image digest should satisfy the regex '[a-zA-Z0-9-_+.]+:[a-fA-F0-9]+'"));
        }
    }
    if let Some(t) = tag {
        if !valid_tag(t) {
            return Err(failure(
                digest,
                tag,
                "InvalidImageTag",
                "Invalid request parameters: image tag is not valid",
            ));
        }
    }
    let found = match (digest, tag) {
        (None, None) => {
            return Err(failure(
                None,
                None,
                "MissingDigestAndTag",
                "Invalid request parameters: both tag and digest cannot be null",
            ))
        }
        (Some(d), _) => ecr.find_image(scope, repo, &ImageRef::Digest(d.to_string())),
        (None, Some(t)) => ecr.find_image(scope, repo, &ImageRef::Tag(t.to_string())),
    };
    match found {
        Ok(img) => {
            if let Some(t) = tag {
                if !img.tags.iter().any(|x| x == t) {
                    let tagged = ecr.find_image(scope, repo, &ImageRef::Tag(t.to_string()));
                    return Err(match tagged {
                        Ok(_) => failure(digest, tag, "ImageTagDoesNotMatchDigest", "Invalid request parameters: given tag does not map to the given digest"),
                        Err(_) => failure(digest, tag, "ImageNotFound", "Requested image not found"),
                    });
                }
            }
            Ok(img)
        }
        Err(_) => Err(failure(
            digest,
            tag,
            "ImageNotFound",
            "Requested image not found",
        )),
    }
}

fn put_image(ecr: &Ecr, ctx: &Ctx, input: Value) -> HandlerResult {
    check_registry(ctx, &input)?;
    let scope = ctx.scope();
    let repo = repo_name(&input);
    let body = input.str("imageManifest").unwrap_or("");
    let img = ecr.put_manifest(
        &scope,
        repo,
        input.str("imageTag"),
        input.str("imageDigest"),
        body.as_bytes(),
        input.str("imageManifestMediaType"),
        PutMode::Api,
    )?;
    let mut id = image_id_json(&img.digest, input.str("imageTag"));
    if input.str("imageTag").is_none() {
        id = image_id_json(&img.digest, None);
    }
    Ok(json!({"image": {
        "registryId": ctx.account,
        "repositoryName": repo,
        "imageId": id,
        "imageManifest": img.manifest,
        "imageManifestMediaType": img.media_type,
    }}))
}

fn tag_status_matches(filter: Option<&str>, img: &Image) -> bool {
    match filter {
        Some("TAGGED") => !img.tags.is_empty(),
        Some("UNTAGGED") => img.tags.is_empty(),
        _ => true,
    }
}

fn describe_images(ecr: &Ecr, ctx: &Ctx, input: Value) -> HandlerResult {
    check_registry(ctx, &input)?;
    let scope = ctx.scope();
    let repo = repo_name(&input);
    ecr.repo(&scope, repo)?;
    let ids = image_ids(&input);
    if !ids.is_empty() {
        if input.get("maxResults").is_some() || input.get("nextToken").is_some() {
            return Err(invalid(
                "Invalid parameter: imageIds and maxResults or nextToken cannot be used together",
            ));
        }
        let mut out: Vec<Value> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (d, t) in &ids {
            let img = match resolve(ecr, &scope, repo, d.as_deref(), t.as_deref()) {
                Ok(i) => i,
                Err(_) => return Err(image_not_found(&scope, repo, d.as_deref(), t.as_deref())),
            };
            if seen.insert(img.digest.clone()) {
                out.push(ecr.detail(&scope, &img));
            }
        }
        return Ok(json!({"imageDetails": out}));
    }
    let filter = input
        .get("filter")
        .and_then(|f| f.get("tagStatus"))
        .and_then(Value::as_str);
    let mut imgs: Vec<Image> = ecr
        .images_of(&scope, repo)
        .into_iter()
        .filter(|i| tag_status_matches(filter, i))
        .collect();
    imgs.sort_by(|a, b| a.digest.cmp(&b.digest));
    let (imgs, next) = page(
        imgs,
        |i| i.digest.clone(),
        input.str("nextToken"),
        max_results(&input, 100),
    )?;
    let details: Vec<Value> = imgs.iter().map(|i| ecr.detail(&scope, i)).collect();
    let mut out = json!({"imageDetails": details});
    if let Some(n) = next {
        out["nextToken"] = json!(n);
    }
    Ok(out)
}

fn list_images(ecr: &Ecr, ctx: &Ctx, input: Value) -> HandlerResult {
    check_registry(ctx, &input)?;
    let scope = ctx.scope();
    let repo = repo_name(&input);
    ecr.repo(&scope, repo)?;
    let filter = input
        .get("filter")
        .and_then(|f| f.get("tagStatus"))
        .and_then(Value::as_str);
    let mut ids: Vec<(String, Option<String>)> = Vec::new();
    for img in ecr.images_of(&scope, repo) {
        if !tag_status_matches(filter, &img) {
            continue;
        }
        if img.tags.is_empty() {
            ids.push((img.digest.clone(), None));
        }
        for t in &img.tags {
            ids.push((img.digest.clone(), Some(t.clone())));
        }
    }
    let key = |(d, t): &(String, Option<String>)| format!("{d} {}", t.as_deref().unwrap_or(""));
    ids.sort_by_key(key);
    let (ids, next) = page(ids, key, input.str("nextToken"), max_results(&input, 100))?;
    let list: Vec<Value> = ids
        .iter()
        .map(|(d, t)| image_id_json(d, t.as_deref()))
        .collect();
    let mut out = json!({"imageIds": list});
    if let Some(n) = next {
        out["nextToken"] = json!(n);
    }
    Ok(out)
}

fn batch_get_image(ecr: &Ecr, ctx: &Ctx, input: Value) -> HandlerResult {
    check_registry(ctx, &input)?;
    let scope = ctx.scope();
    let repo = repo_name(&input);
    ecr.repo(&scope, repo)?;
    let accepted = input.string_list("acceptedMediaTypes");
    let mut images = Vec::new();
    let mut failures = Vec::new();
    for (d, t) in image_ids(&input) {
        match resolve(ecr, &scope, repo, d.as_deref(), t.as_deref()) {
            Ok(img) => {
                if !accepted.is_empty() && !accepted.contains(&img.media_type) {
                    failures.push(failure(d.as_deref(), t.as_deref(), "ImageNotFound", &format!("The image's manifest media type {} is not among the accepted media types", img.media_type)));
                    continue;
                }
                ecr.record_pull(&scope, repo, &img.digest);
                images.push(json!({
                    "registryId": ctx.account,
                    "repositoryName": repo,
                    "imageId": image_id_json(&img.digest, t.as_deref()),
                    "imageManifest": img.manifest,
                    "imageManifestMediaType": img.media_type,
                }));
            }
            Err(f) => failures.push(f),
        }
    }
    Ok(json!({"images": images, "failures": failures}))
}

fn batch_delete_image(ecr: &Ecr, ctx: &Ctx, input: Value) -> HandlerResult {
    check_registry(ctx, &input)?;
    let scope = ctx.scope();
    let repo = repo_name(&input);
    ecr.repo(&scope, repo)?;
    let mut deleted = Vec::new();
    let mut failures = Vec::new();
    for (d, t) in image_ids(&input) {
        let img = match resolve(ecr, &scope, repo, d.as_deref(), t.as_deref()) {
            Ok(i) => i,
            Err(f) => {
                failures.push(f);
                continue;
            }
        };
        let result = match (&d, &t) {
            (None, Some(tag)) => ecr
                .delete_tag(&scope, repo, tag)
                .map(|_| vec![Some(tag.clone())]),
            _ => ecr.delete_image(&scope, repo, &img.digest).map(|i| {
                if i.tags.is_empty() {
                    vec![None]
                } else {
                    i.tags.into_iter().map(Some).collect()
                }
            }),
        };
        match result {
            Ok(tags) => {
                for tag in tags {
                    deleted.push(image_id_json(&img.digest, tag.as_deref()));
                }
            }
            Err(e) if e.code == "ImageReferencedByManifestList" => failures.push(failure(
                d.as_deref(),
                t.as_deref(),
                "ImageReferencedByManifestList",
                &e.message,
            )),
            Err(_) => failures.push(failure(
                d.as_deref(),
                t.as_deref(),
                "ImageNotFound",
                "Requested image not found",
            )),
        }
    }
    Ok(json!({"imageIds": deleted, "failures": failures}))
}

fn single_image(ecr: &Ecr, ctx: &Ctx, input: &Value) -> Result<Image, AwsError> {
    check_registry(ctx, input)?;
    let scope = ctx.scope();
    let repo = repo_name(input);
    ecr.repo(&scope, repo)?;
    let id = input.get("imageId").cloned().unwrap_or(Value::Null);
    let (d, t) = (id.str("imageDigest"), id.str("imageTag"));
    resolve(ecr, &scope, repo, d, t).map_err(|_| image_not_found(&scope, repo, d, t))
}

fn start_image_scan(ecr: &Ecr, ctx: &Ctx, input: Value) -> HandlerResult {
    let img = single_image(ecr, ctx, &input)?;
    let key = format!(
        "{}{}",
        repo_prefix(&ctx.scope(), &img.repository),
        img.digest
    );
    let now = ctx.now;
    ecr.images.transact::<_, AwsError, _>(|t| {
        if let Some(i) = t.get_mut(&key) {
            i.scanned_at = Some(now);
        }
        Ok(())
    })?;
    Ok(json!({
        "registryId": ctx.account,
        "repositoryName": img.repository,
        "imageId": image_id_json(&img.digest, input.get("imageId").and_then(|i| i.str("imageTag"))),
        "imageScanStatus": {"status": "IN_PROGRESS"},
    }))
}

fn describe_image_scan_findings(ecr: &Ecr, ctx: &Ctx, input: Value) -> HandlerResult {
    let img = single_image(ecr, ctx, &input)?;
    let Some(at) = img.scanned_at else {
        return Err(AwsError::new(codes::ecr::ScanNotFoundException,
            format!(
                "Image scan does not exist for the image with '{{imageDigest:'{}', imageTag:'{}'}}' in the repository with name '{}' in the registry with id '{}' (ecs-emulator records scans on push or by StartImageScan, and never finds anything)",
                img.digest,
                img.tags.first().map(String::as_str).unwrap_or("null"),
                img.repository,
                ctx.account
            ),
        ));
    };
    Ok(json!({
        "registryId": ctx.account,
        "repositoryName": img.repository,
        "imageId": image_id_json(&img.digest, input.get("imageId").and_then(|i| i.str("imageTag"))),
        "imageScanStatus": scan_status(),
        "imageScanFindings": {
            "imageScanCompletedAt": at,
            "vulnerabilitySourceUpdatedAt": at,
            "findingSeverityCounts": {},
            "findings": [],
        },
    }))
}

fn list_image_referrers(ecr: &Ecr, ctx: &Ctx, input: Value) -> HandlerResult {
    check_registry(ctx, &input)?;
    let scope = ctx.scope();
    let repo = repo_name(&input);
    let subject = input
        .get("subjectId")
        .and_then(|s| s.str("imageDigest"))
        .unwrap_or("");
    let types = input
        .get("filter")
        .map(|f| f.string_list("artifactTypes"))
        .unwrap_or_default();
    let mut refs: Vec<Image> = ecr
        .referrers(&scope, repo, subject)?
        .into_iter()
        .filter(|i| {
            types.is_empty()
                || i.artifact_media_type
                    .as_ref()
                    .is_some_and(|t| types.contains(t))
        })
        .collect();
    refs.sort_by(|a, b| a.digest.cmp(&b.digest));
    let (refs, next) = page(
        refs,
        |i| i.digest.clone(),
        input.str("nextToken"),
        max_results(&input, 50),
    )?;
    let list: Vec<Value> = refs
        .iter()
        .map(|i| {
            let mut r = Map::new();
            r.insert("digest".into(), json!(i.digest));
            r.insert("mediaType".into(), json!(i.media_type));
            put_opt(
                &mut r,
                "artifactType",
                i.artifact_media_type.as_ref().map(|t| json!(t)),
            );
            r.insert("size".into(), json!(i.manifest.len()));
            r.insert("artifactStatus".into(), json!("ACTIVE"));
            Value::Object(r)
        })
        .collect();
    let mut out = json!({"referrers": list});
    if let Some(n) = next {
        out["nextToken"] = json!(n);
    }
    Ok(out)
}
