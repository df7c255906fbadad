//! Lifecycle policies, evaluated on the emulator clock, and the loop that applies them (and
//! collects the garbage: layers no image needs, blobs no repository has).
//!
//! Evaluation follows ECR's documented rules: rules run in rulePriority order; an image that
//! matches the tag selection of a rule can only be expired by that rule or none (never by a
//! lower-priority rule); imageCountMoreThan keeps the newest N of the images a rule selects
//! (counting those that higher-priority rules selected too) and sinceImagePushed expires those
//! pushed more than countNumber days ago; images an index references are left to the index.

use super::{account_of, invalid, wildcard, Ecr, Image, SERVICE};
use crate::clock::Clock;
use crate::protocol::codes;
use crate::protocol::AwsError;
use crate::services::input::Input;
use crate::services::{Ctx, HandlerResult, Registry};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredPolicy {
    pub text: String,
    #[serde(default)]
    pub last_evaluated_at: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Preview {
    pub text: String,
    pub results: Vec<Value>,
}

pub(super) fn register(r: &mut Registry, s: &Arc<Ecr>) {
    r.asynchronous(SERVICE, "PutLifecyclePolicy", s, put_lifecycle_policy);
    r.sync(SERVICE, "GetLifecyclePolicy", s, get_lifecycle_policy);
    r.sync(SERVICE, "DeleteLifecyclePolicy", s, delete_lifecycle_policy);
    r.sync(SERVICE, "StartLifecyclePolicyPreview", s, start_preview);
    r.sync(SERVICE, "GetLifecyclePolicyPreview", s, get_preview);
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum TagStatus {
    Tagged,
    Untagged,
    Any,
}

#[derive(Debug, Clone, PartialEq)]
enum Count {
    MoreThan(usize),
    SinceDays(f64),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Rule {
    priority: i64,
    tag_status: TagStatus,
    prefixes: Vec<String>,
    patterns: Vec<String>,
    count: Count,
}

fn policy_error(why: impl std::fmt::Display) -> AwsError {
    invalid(format!(
        "Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: 'Lifecycle policy validation failure: {why}'"
    ))
}

/// Parses and checks a lifecycle policy document.
pub(crate) fn parse_policy(text: &str) -> Result<Vec<Rule>, AwsError> {
    let doc: Value =
        serde_json::from_str(text).map_err(|e| policy_error(format!("not valid JSON: {e}")))?;
    let rules = doc
        .get("rules")
        .and_then(Value::as_array)
        .filter(|r| !r.is_empty())
        .ok_or_else(|| policy_error("object has missing required properties ([\"rules\"])"))?;
    let mut out: Vec<Rule> = Vec::new();
    for r in rules {
        let priority = r
            .get("rulePriority")
            .and_then(Value::as_i64)
            .filter(|p| *p >= 1)
            .ok_or_else(|| policy_error("rulePriority must be an integer of at least 1"))?;
        if out.iter().any(|o| o.priority == priority) {
            return Err(policy_error(format!(
                "rulePriority {priority} is used by more than one rule"
            )));
        }
        let sel = r
            .get("selection")
            .ok_or_else(|| policy_error(format!("rule {priority} has no selection")))?;
        let tag_status = match sel.str("tagStatus") {
            Some("tagged") => TagStatus::Tagged,
            Some("untagged") => TagStatus::Untagged,
            Some("any") => TagStatus::Any,
            other => {
                return Err(policy_error(format!(
                    "instance value ({}) not found in enum (possible values: [\"tagged\",\"untagged\",\"any\"])",
                    other.unwrap_or("null")
                )))
            }
        };
        let prefixes = sel.string_list("tagPrefixList");
        let patterns = sel.string_list("tagPatternList");
        if tag_status == TagStatus::Tagged && prefixes.is_empty() && patterns.is_empty() {
            return Err(policy_error(format!("rule {priority}: tagPrefixList or tagPatternList is required when tagStatus is tagged")));
        }
        if !prefixes.is_empty() && !patterns.is_empty() {
            return Err(policy_error(format!(
                "rule {priority}: tagPrefixList and tagPatternList cannot both be given"
            )));
        }
        if tag_status != TagStatus::Tagged && (!prefixes.is_empty() || !patterns.is_empty()) {
            return Err(policy_error(format!(
                "rule {priority}: tag lists are only allowed when tagStatus is tagged"
            )));
        }
        if patterns.iter().any(|p| p.matches('*').count() > 4) {
            return Err(policy_error(format!(
                "rule {priority}: a tag pattern may contain at most 4 wildcards"
            )));
        }
        let number = sel
            .get("countNumber")
            .and_then(Value::as_u64)
            .filter(|n| *n >= 1);
        let number = number.ok_or_else(|| {
            policy_error(format!(
                "rule {priority}: countNumber must be an integer of at least 1"
            ))
        })?;
        let count = match sel.str("countType") {
            Some("imageCountMoreThan") => {
                if sel.get("countUnit").is_some() {
                    return Err(policy_error(format!(
                        "rule {priority}: countUnit is not allowed with imageCountMoreThan"
                    )));
                }
                Count::MoreThan(number as usize)
            }
            Some("sinceImagePushed") => {
                if sel.str("countUnit") != Some("days") {
                    return Err(policy_error(format!(
                        "rule {priority}: countUnit must be days with sinceImagePushed"
                    )));
                }
                Count::SinceDays(number as f64)
            }
            other => {
                return Err(policy_error(format!(
                "rule {priority}: countType ({}) must be imageCountMoreThan or sinceImagePushed",
                other.unwrap_or("null")
            )))
            }
        };
        match r.get("action").and_then(|a| a.str("type")) {
            Some("expire") => {}
            other => {
                return Err(policy_error(format!(
                    "rule {priority}: action type ({}) is not supported: ecs-emulator evaluates expire actions",
                    other.unwrap_or("null")
                )))
            }
        }
        out.push(Rule {
            priority,
            tag_status,
            prefixes,
            patterns,
            count,
        });
    }
    out.sort_by_key(|r| r.priority);
    if out
        .iter()
        .filter(|r| r.tag_status == TagStatus::Untagged)
        .count()
        > 1
    {
        return Err(policy_error("only one rule may select untagged images"));
    }
    if let Some(any) = out.iter().position(|r| r.tag_status == TagStatus::Any) {
        if any != out.len() - 1 {
            return Err(policy_error(
                "a rule with tagStatus any must have the highest rulePriority",
            ));
        }
    }
    Ok(out)
}

impl Rule {
    fn selects(&self, img: &Image) -> bool {
        match self.tag_status {
            TagStatus::Untagged => img.tags.is_empty(),
            TagStatus::Any => true,
            TagStatus::Tagged => {
                !img.tags.is_empty()
                    && self
                        .prefixes
                        .iter()
                        .all(|p| img.tags.iter().any(|t| t.starts_with(p.as_str())))
                    && self
                        .patterns
                        .iter()
                        .all(|p| img.tags.iter().any(|t| wildcard(p, t)))
            }
        }
    }
}

/// The images the rules expire at `now`, each with the priority of the rule that expires it, in
/// the order of the images given.
pub(crate) fn evaluate(rules: &[Rule], images: &[Image], now: f64) -> Vec<(Image, i64)> {
    let in_index: HashSet<&str> = images
        .iter()
        .flat_map(|i| i.children.iter().map(String::as_str))
        .collect();
    let eligible: Vec<&Image> = images
        .iter()
        .filter(|i| !in_index.contains(i.digest.as_str()))
        .collect();
    let mut claimed: HashSet<&str> = HashSet::new();
    let mut expired: HashMap<&str, i64> = HashMap::new();
    for rule in rules {
        let mut selected: Vec<&Image> = eligible
            .iter()
            .copied()
            .filter(|i| rule.selects(i))
            .collect();
        selected.sort_by(|a, b| {
            b.pushed_at
                .total_cmp(&a.pushed_at)
                .then_with(|| a.digest.cmp(&b.digest))
        });
        let candidates: Vec<&Image> = match rule.count {
            Count::MoreThan(n) => selected.iter().skip(n).copied().collect(),
            Count::SinceDays(days) => selected
                .iter()
                .copied()
                .filter(|i| i.pushed_at < now - days * 86_400.0)
                .collect(),
        };
        for c in candidates {
            if !claimed.contains(c.digest.as_str()) {
                expired.entry(c.digest.as_str()).or_insert(rule.priority);
            }
        }
        for s in selected {
            claimed.insert(s.digest.as_str());
        }
    }
    images
        .iter()
        .filter_map(|i| expired.get(i.digest.as_str()).map(|p| (i.clone(), *p)))
        .collect()
}

fn preview_results(rules: &[Rule], images: &[Image], now: f64) -> Vec<Value> {
    let mut v: Vec<(Image, i64)> = evaluate(rules, images, now);
    v.sort_by(|a, b| a.0.pushed_at.total_cmp(&b.0.pushed_at));
    v.into_iter()
        .map(|(i, p)| {
            let mut o = json!({
                "imageDigest": i.digest,
                "imagePushedAt": i.pushed_at,
                "action": {"type": "EXPIRE"},
                "appliedRulePriority": p,
                "storageClass": "STANDARD",
            });
            if !i.tags.is_empty() {
                o["imageTags"] = json!(i.tags);
            }
            o
        })
        .collect()
}

/// Layers no image references are dropped from their repository after this long (emulated),
/// and at least an hour of real time, so a push under way keeps its layers.
const LAYER_GRACE: f64 = 86_400.0;
const REAL_GRACE: Duration = Duration::from_secs(3600);
const GC_EVERY: Duration = Duration::from_secs(600);

impl Ecr {
    /// Applies every repository's lifecycle policy at `now`; returns how many images expired.
    pub fn apply_lifecycle(&self, now: f64) -> usize {
        let mut expired = 0;
        for (key, repo) in self.repos.scan("") {
            let Some(policy) = &repo.lifecycle else {
                continue;
            };
            let scope = key[..key.len() - repo.name.len()].to_string();
            let rules = match parse_policy(&policy.text) {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(repository = %repo.name, error = %e, "skipping an unreadable lifecycle policy");
                    continue;
                }
            };
            let images = self.images_of(&scope, &repo.name);
            for (img, priority) in evaluate(&rules, &images, now) {
                match self.delete_image(&scope, &repo.name, &img.digest) {
                    Ok(_) => {
                        expired += 1;
                        tracing::info!(repository = %repo.name, digest = %img.digest, tags = ?img.tags, rule = priority, "lifecycle policy expired an image");
                    }
                    Err(e) => {
                        tracing::debug!(repository = %repo.name, digest = %img.digest, error = %e, "lifecycle could not expire an image")
                    }
                }
            }
            let _ = self.update_repo(&scope, &repo.name, |r| {
                if let Some(l) = r.lifecycle.as_mut() {
                    l.last_evaluated_at = Some(now);
                }
                Ok(())
            });
        }
        expired
    }

    /// Drops layers no image of their repository references (after the grace period) and
    /// removes blobs no repository has.
    pub async fn collect_garbage(&self) -> std::io::Result<crate::blobs::GcReport> {
        let now = self.clock.now();
        let scale = self.clock.scale();
        let mut referenced: HashSet<String> = HashSet::new();
        self.images.read(|rows| {
            for (k, img) in rows {
                let prefix = &k[..k.len() - img.digest.len()];
                for b in &img.blobs {
                    referenced.insert(format!("{prefix}{b}"));
                }
            }
        });
        let stale: Vec<String> = self.layers.read(|rows| {
            rows.iter()
                .filter(|(k, l)| {
                    let age = now - l.added_at;
                    !referenced.contains(*k)
                        && age > LAYER_GRACE
                        && age / scale > REAL_GRACE.as_secs_f64()
                })
                .map(|(k, _)| k.clone())
                .collect()
        });
        if !stale.is_empty() {
            let _ = self.layers.transact::<_, AwsError, _>(|t| {
                for k in &stale {
                    t.remove(k);
                }
                Ok(())
            });
        }
        let mut keep: HashSet<crate::blobs::Digest> = HashSet::new();
        self.layers.read(|rows| {
            for l in rows.values() {
                if let Ok(d) = crate::blobs::Digest::parse(&l.digest) {
                    keep.insert(d);
                }
            }
        });
        let blobs = self.blobs.clone();
        tokio::task::spawn_blocking(move || blobs.gc(&keep, REAL_GRACE))
            .await
            .map_err(std::io::Error::other)?
    }
}

/// The lifecycle loop: applies lifecycle policies on the emulator clock (every ten emulated
/// minutes, at most every second and at least every 30 s of real time) and collects garbage
/// every ten real minutes. Spawn it once at start-up; a second call returns at once (the
/// first PutLifecyclePolicy also starts it, so a policy works even before it is spawned).
pub async fn run_lifecycle(handle: Arc<Ecr>, clock: Clock) {
    if handle.lifecycle_running.swap(true, Ordering::SeqCst) {
        return;
    }
    let interval = clock
        .real(Duration::from_secs(600))
        .clamp(Duration::from_secs(1), Duration::from_secs(30));
    let mut last_gc = Instant::now();
    loop {
        tokio::time::sleep(interval).await;
        handle.apply_lifecycle(clock.now());
        if last_gc.elapsed() >= GC_EVERY {
            last_gc = Instant::now();
            match handle.collect_garbage().await {
                Ok(r) if r.removed > 0 || r.stale_uploads_removed > 0 => {
                    tracing::info!(
                        removed = r.removed,
                        bytes = r.removed_bytes,
                        uploads = r.stale_uploads_removed,
                        "registry blobs collected"
                    )
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "registry garbage collection failed"),
            }
        }
    }
}

fn repo_name(input: &Value) -> String {
    input.str("repositoryName").unwrap_or("").to_string()
}

fn no_policy(ctx: &Ctx, repo: &str) -> AwsError {
    AwsError::new(codes::ecr::LifecyclePolicyNotFoundException,
        format!(
            "Lifecycle policy does not exist for the repository with name '{repo}' in the registry with id '{}'",
            ctx.account
        ),
    )
}

async fn put_lifecycle_policy(ecr: Arc<Ecr>, ctx: Ctx, input: Value) -> HandlerResult {
    super::check_registry(&ctx, &input)?;
    let repo = repo_name(&input);
    let text = input.str("lifecyclePolicyText").unwrap_or("").to_string();
    parse_policy(&text)?;
    ecr.update_repo(&ctx.scope(), &repo, |r| {
        r.lifecycle = Some(StoredPolicy {
            text: text.clone(),
            last_evaluated_at: None,
        });
        Ok(())
    })?;
    if !ecr.lifecycle_running.load(Ordering::SeqCst) {
        tokio::spawn(run_lifecycle(ecr.clone(), ecr.clock.clone()));
    }
    Ok(json!({"registryId": ctx.account, "repositoryName": repo, "lifecyclePolicyText": text}))
}

fn get_lifecycle_policy(ecr: &Ecr, ctx: &Ctx, input: Value) -> HandlerResult {
    super::check_registry(ctx, &input)?;
    let repo = repo_name(&input);
    let p = ecr
        .repo(&ctx.scope(), &repo)?
        .lifecycle
        .ok_or_else(|| no_policy(ctx, &repo))?;
    let mut out =
        json!({"registryId": ctx.account, "repositoryName": repo, "lifecyclePolicyText": p.text});
    if let Some(at) = p.last_evaluated_at {
        out["lastEvaluatedAt"] = json!(at);
    }
    Ok(out)
}

fn delete_lifecycle_policy(ecr: &Ecr, ctx: &Ctx, input: Value) -> HandlerResult {
    super::check_registry(ctx, &input)?;
    let repo = repo_name(&input);
    let p = ecr.update_repo(&ctx.scope(), &repo, |r| {
        r.lifecycle.take().ok_or_else(|| no_policy(ctx, &repo))
    })?;
    let mut out =
        json!({"registryId": ctx.account, "repositoryName": repo, "lifecyclePolicyText": p.text});
    if let Some(at) = p.last_evaluated_at {
        out["lastEvaluatedAt"] = json!(at);
    }
    Ok(out)
}

fn start_preview(ecr: &Ecr, ctx: &Ctx, input: Value) -> HandlerResult {
    super::check_registry(ctx, &input)?;
    let scope = ctx.scope();
    let repo = repo_name(&input);
    let stored = ecr.repo(&scope, &repo)?.lifecycle;
    let text = match input.str("lifecyclePolicyText") {
        Some(t) => t.to_string(),
        None => stored.ok_or_else(|| no_policy(ctx, &repo))?.text,
    };
    let rules = parse_policy(&text)?;
    let images = ecr.images_of(&scope, &repo);
    let results = preview_results(&rules, &images, ctx.now);
    ecr.update_repo(&scope, &repo, |r| {
        r.preview = Some(Preview {
            text: text.clone(),
            results,
        });
        Ok(())
    })?;
    Ok(json!({
        "registryId": ctx.account,
        "repositoryName": repo,
        "lifecyclePolicyText": text,
        "status": "IN_PROGRESS",
    }))
}

fn get_preview(ecr: &Ecr, ctx: &Ctx, input: Value) -> HandlerResult {
    super::check_registry(ctx, &input)?;
    let scope = ctx.scope();
    let repo = repo_name(&input);
    let preview = ecr.repo(&scope, &repo)?.preview.ok_or_else(|| {
        AwsError::new(codes::ecr::LifecyclePolicyPreviewNotFoundException,
            format!(
                "There is no dry run for the repository with name '{repo}' in the registry with id '{}'",
                account_of(&scope)
            ),
        )
    })?;
    let total = preview.results.len();
    let ids: Vec<(Option<String>, Option<String>)> = input
        .get("imageIds")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|i| {
                    (
                        i.str("imageDigest").map(str::to_string),
                        i.str("imageTag").map(str::to_string),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let tag_status = input.get("filter").and_then(|f| f.str("tagStatus"));
    let mut results: Vec<Value> = preview
        .results
        .into_iter()
        .filter(|r| {
            let tags = r.string_list("imageTags");
            let status_ok = match tag_status {
                Some("TAGGED") => !tags.is_empty(),
                Some("UNTAGGED") => tags.is_empty(),
                _ => true,
            };
            let id_ok = ids.is_empty()
                || ids.iter().any(|(d, t)| {
                    d.as_deref().is_none_or(|d| r.str("imageDigest") == Some(d))
                        && t.as_deref().is_none_or(|t| tags.iter().any(|x| x == t))
                });
            status_ok && id_ok
        })
        .collect();
    results.sort_by_key(|r| r.str("imageDigest").unwrap_or("").to_string());
    let (results, next) = super::page(
        results,
        |r| r.str("imageDigest").unwrap_or("").to_string(),
        input.str("nextToken"),
        super::max_results(&input, 100),
    )?;
    let mut out = json!({
        "registryId": ctx.account,
        "repositoryName": repo,
        "lifecyclePolicyText": preview.text,
        "status": "COMPLETE",
        "previewResults": results,
        "summary": {"expiringImageTotalCount": total},
    });
    if let Some(n) = next {
        out["nextToken"] = json!(n);
    }
    Ok(out)
}
