//! Repositories: create, describe, delete, settings, policies and tags.

use super::{
    account_of, check_registry, invalid, max_results, page, put_opt, repo_not_found, repo_prefix,
    Ecr, Repo, SERVICE,
};
use crate::protocol::codes;
use crate::protocol::AwsError;
use crate::services::input::Input;
use crate::services::{Ctx, HandlerResult, Registry};
use serde_json::{json, Map, Value};
use std::sync::Arc;

const MAX_TAGS: usize = 50;

pub(super) fn register(r: &mut Registry, s: &Arc<Ecr>) {
    r.sync(SERVICE, "CreateRepository", s, create_repository);
    r.sync(SERVICE, "DescribeRepositories", s, describe_repositories);
    r.sync(SERVICE, "DeleteRepository", s, delete_repository);
    r.sync(
        SERVICE,
        "PutImageTagMutability",
        s,
        put_image_tag_mutability,
    );
    r.sync(
        SERVICE,
        "PutImageScanningConfiguration",
        s,
        put_image_scanning_configuration,
    );
    r.sync(
        SERVICE,
        "BatchGetRepositoryScanningConfiguration",
        s,
        batch_get_repository_scanning_configuration,
    );
    r.sync(SERVICE, "SetRepositoryPolicy", s, set_repository_policy);
    r.sync(SERVICE, "GetRepositoryPolicy", s, get_repository_policy);
    r.sync(
        SERVICE,
        "DeleteRepositoryPolicy",
        s,
        delete_repository_policy,
    );
    r.sync(SERVICE, "TagResource", s, tag_resource);
    r.sync(SERVICE, "UntagResource", s, untag_resource);
    r.sync(SERVICE, "ListTagsForResource", s, list_tags_for_resource);
}

fn name(input: &Value) -> &str {
    input.str("repositoryName").unwrap_or("")
}

impl Ecr {
    pub(crate) fn repo_json(&self, scope: &str, r: &Repo) -> Value {
        let mut o = Map::new();
        o.insert("repositoryArn".into(), json!(r.arn));
        o.insert("registryId".into(), json!(account_of(scope)));
        o.insert("repositoryName".into(), json!(r.name));
        o.insert("repositoryUri".into(), json!(self.repository_uri(&r.name)));
        o.insert("createdAt".into(), json!(r.created_at));
        o.insert("imageTagMutability".into(), json!(r.image_tag_mutability));
        if !r.exclusion_filters.is_empty() {
            o.insert(
                "imageTagMutabilityExclusionFilters".into(),
                json!(r.exclusion_filters),
            );
        }
        o.insert(
            "imageScanningConfiguration".into(),
            json!({"scanOnPush": r.scan_on_push}),
        );
        o.insert("encryptionConfiguration".into(), r.encryption.clone());
        Value::Object(o)
    }

    /// Changes one repository durably.
    pub(crate) fn update_repo<R>(
        &self,
        scope: &str,
        repo: &str,
        f: impl FnOnce(&mut Repo) -> Result<R, AwsError>,
    ) -> Result<R, AwsError> {
        let key = format!("{scope}{repo}");
        self.repos.transact(|t| match t.get_mut(&key) {
            Some(r) => f(r),
            None => Err(repo_not_found(scope, repo)),
        })
    }
}

/// Checks a mutability setting with its exclusion filters (filters only with *_WITH_EXCLUSION).
fn mutability(input: &Value) -> Result<(String, Vec<Value>), AwsError> {
    let m = input
        .str("imageTagMutability")
        .unwrap_or("MUTABLE")
        .to_string();
    let filters: Vec<Value> = input
        .get("imageTagMutabilityExclusionFilters")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let with_exclusion = m.ends_with("_WITH_EXCLUSION");
    if with_exclusion && filters.is_empty() {
        return Err(invalid(format!("Invalid parameter at 'imageTagMutabilityExclusionFilters' failed to satisfy constraint: 'Exclusion filters are required when imageTagMutability is {m}'")));
    }
    if !with_exclusion && !filters.is_empty() {
        return Err(invalid(format!("Invalid parameter at 'imageTagMutabilityExclusionFilters' failed to satisfy constraint: 'Exclusion filters can only be used when imageTagMutability is IMMUTABLE_WITH_EXCLUSION or MUTABLE_WITH_EXCLUSION, not {m}'")));
    }
    Ok((m, filters))
}

fn check_tags(tags: &[Value]) -> Result<(), AwsError> {
    for t in tags {
        let key = t.str("Key").unwrap_or("");
        if key.is_empty() || key.to_ascii_lowercase().starts_with("aws:") {
            return Err(AwsError::new(
                codes::ecr::InvalidTagParameterException,
                format!(
                    "The tag key '{key}' is not valid: keys may not be empty or start with 'aws:'"
                ),
            ));
        }
    }
    Ok(())
}

fn merge_tags(existing: &mut Vec<Value>, new: &[Value]) -> Result<(), AwsError> {
    for t in new {
        let key = t.str("Key").unwrap_or("");
        existing.retain(|e| e.str("Key") != Some(key));
        existing.push(t.clone());
    }
    if existing.len() > MAX_TAGS {
        return Err(AwsError::new(
            codes::ecr::TooManyTagsException,
            format!("A repository can have at most {MAX_TAGS} tags"),
        ));
    }
    Ok(())
}

fn create_repository(ecr: &Ecr, ctx: &Ctx, input: Value) -> HandlerResult {
    check_registry(ctx, &input)?;
    let scope = ctx.scope();
    let name = name(&input).to_string();
    let (m, filters) = mutability(&input)?;
    let tags: Vec<Value> = input
        .get("tags")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    check_tags(&tags)?;
    let mut merged = Vec::new();
    merge_tags(&mut merged, &tags)?;
    let encryption = match input.get("encryptionConfiguration") {
        Some(e) if e.is_object() => {
            let t = e.str("encryptionType").unwrap_or("AES256");
            if t == "AES256" && e.get("kmsKey").is_some() {
                return Err(invalid("Invalid parameter at 'encryptionConfiguration' failed to satisfy constraint: 'kmsKey can only be specified when encryptionType is KMS or KMS_DSSE'"));
            }
            let mut out = json!({"encryptionType": t});
            if t != "AES256" {
                out["kmsKey"] = json!(e
                    .str("kmsKey")
                    .map(str::to_string)
                    .unwrap_or_else(|| aws_managed_key(ctx)));
            }
            out
        }
        _ => json!({"encryptionType": "AES256"}),
    };
    let repo = Repo {
        name: name.clone(),
        arn: ctx.arn("ecr", &format!("repository/{name}")),
        created_at: ctx.now,
        image_tag_mutability: m,
        exclusion_filters: filters,
        scan_on_push: input
            .get("imageScanningConfiguration")
            .and_then(|s| s.bool("scanOnPush"))
            .unwrap_or(false),
        encryption,
        tags: merged,
        policy: None,
        lifecycle: None,
        preview: None,
    };
    let key = format!("{scope}{name}");
    ecr.repos.transact(|t| {
        if t.contains(&key) {
            return Err(AwsError::new(
                codes::ecr::RepositoryAlreadyExistsException,
                format!(
                    "The repository with name '{name}' already exists in the registry with id '{}'",
                    ctx.account
                ),
            ));
        }
        t.put(&key, repo.clone());
        Ok(())
    })?;
    Ok(json!({"repository": ecr.repo_json(&scope, &repo)}))
}

fn describe_repositories(ecr: &Ecr, ctx: &Ctx, input: Value) -> HandlerResult {
    check_registry(ctx, &input)?;
    let scope = ctx.scope();
    let names = input.string_list("repositoryNames");
    if !names.is_empty() {
        if input.get("maxResults").is_some() || input.get("nextToken").is_some() {
            return Err(invalid("Invalid parameter: repositoryNames and maxResults or nextToken cannot be used together"));
        }
        let mut out = Vec::new();
        for n in &names {
            out.push(ecr.repo_json(&scope, &ecr.repo(&scope, n)?));
        }
        return Ok(json!({"repositories": out}));
    }
    let repos: Vec<Repo> = ecr.repos.scan(&scope).into_iter().map(|(_, r)| r).collect();
    let (repos, next) = page(
        repos,
        |r| r.name.clone(),
        input.str("nextToken"),
        max_results(&input, 100),
    )?;
    let list: Vec<Value> = repos.iter().map(|r| ecr.repo_json(&scope, r)).collect();
    let mut out = json!({"repositories": list});
    if let Some(n) = next {
        out["nextToken"] = json!(n);
    }
    Ok(out)
}

fn delete_repository(ecr: &Ecr, ctx: &Ctx, input: Value) -> HandlerResult {
    check_registry(ctx, &input)?;
    let scope = ctx.scope();
    let name = name(&input);
    let repo = ecr.repo(&scope, name)?;
    let prefix = repo_prefix(&scope, name);
    let images = ecr.images.scan(&prefix);
    if !images.is_empty() && !input.bool("force").unwrap_or(false) {
        return Err(AwsError::new(codes::ecr::RepositoryNotEmptyException,
            format!(
                "The repository with name '{name}' in registry with id '{}' cannot be deleted because it still contains images",
                ctx.account
            ),
        ));
    }
    // Images and layers first: a crash between the two leaves an empty repository, never
    // images without one.
    ecr.images.transact::<_, AwsError, _>(|t| {
        for k in t.keys(&prefix) {
            t.remove(&k);
        }
        Ok(())
    })?;
    ecr.layers.transact::<_, AwsError, _>(|t| {
        for k in t.keys(&prefix) {
            t.remove(&k);
        }
        Ok(())
    })?;
    ecr.uploads.forget_repo(&scope, name);
    ecr.repos.remove(&format!("{scope}{name}"))?;
    Ok(json!({"repository": ecr.repo_json(&scope, &repo)}))
}

fn put_image_tag_mutability(ecr: &Ecr, ctx: &Ctx, input: Value) -> HandlerResult {
    check_registry(ctx, &input)?;
    let scope = ctx.scope();
    let name = name(&input);
    let (m, filters) = mutability(&input)?;
    ecr.update_repo(&scope, name, |r| {
        r.image_tag_mutability = m.clone();
        r.exclusion_filters = filters.clone();
        Ok(())
    })?;
    let mut out = Map::new();
    out.insert("registryId".into(), json!(ctx.account));
    out.insert("repositoryName".into(), json!(name));
    out.insert("imageTagMutability".into(), json!(m));
    if !filters.is_empty() {
        out.insert("imageTagMutabilityExclusionFilters".into(), json!(filters));
    }
    Ok(Value::Object(out))
}

fn put_image_scanning_configuration(ecr: &Ecr, ctx: &Ctx, input: Value) -> HandlerResult {
    check_registry(ctx, &input)?;
    let scope = ctx.scope();
    let name = name(&input);
    let scan = input
        .get("imageScanningConfiguration")
        .and_then(|s| s.bool("scanOnPush"))
        .unwrap_or(false);
    ecr.update_repo(&scope, name, |r| {
        r.scan_on_push = scan;
        Ok(())
    })?;
    Ok(json!({
        "registryId": ctx.account,
        "repositoryName": name,
        "imageScanningConfiguration": {"scanOnPush": scan},
    }))
}

/// The ARN of the AWS managed key `aws/ecr` of an account and Region, as ECR reports it for a
/// KMS repository created without a key: `key/<uuid>`, never the alias. The id is derived from
/// the account and Region, so every repository of a registry names the same key.
pub(crate) fn aws_managed_key(ctx: &Ctx) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("aws/ecr {} {}", ctx.account, ctx.region));
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    let id = uuid::Builder::from_random_bytes(bytes).into_uuid();
    ctx.arn("kms", &format!("key/{id}"))
}

/// How the registry's scanning configuration applies to a repository: with registry rules set
/// (PutRegistryScanningConfiguration), the rules whose filters match the name decide
/// (CONTINUOUS_SCAN before SCAN_ON_PUSH), and no match is MANUAL; without a registry
/// configuration the repository's own scanOnPush does. Returns (scanFrequency, appliedScanFilters).
pub(crate) fn applied_scanning(
    registry: Option<&Value>,
    repo: &Repo,
) -> (&'static str, Vec<Value>) {
    let Some(rules) = registry
        .and_then(|c| c.get("rules"))
        .and_then(Value::as_array)
    else {
        return if repo.scan_on_push {
            (
                "SCAN_ON_PUSH",
                vec![json!({"filter": "*", "filterType": "WILDCARD"})],
            )
        } else {
            ("MANUAL", Vec::new())
        };
    };
    let mut best: Option<(u8, &'static str, Vec<Value>)> = None;
    for rule in rules {
        let (rank, freq) = match rule.str("scanFrequency") {
            Some("CONTINUOUS_SCAN") => (2, "CONTINUOUS_SCAN"),
            Some("SCAN_ON_PUSH") => (1, "SCAN_ON_PUSH"),
            _ => continue,
        };
        let matching: Vec<Value> = rule
            .get("repositoryFilters")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|f| {
                f.str("filter")
                    .is_some_and(|p| super::wildcard(p, &repo.name))
            })
            .cloned()
            .collect();
        if !matching.is_empty() && best.as_ref().is_none_or(|b| rank > b.0) {
            best = Some((rank, freq, matching));
        }
    }
    match best {
        Some((_, freq, filters)) => (freq, filters),
        None => ("MANUAL", Vec::new()),
    }
}

fn batch_get_repository_scanning_configuration(
    ecr: &Ecr,
    ctx: &Ctx,
    input: Value,
) -> HandlerResult {
    let scope = ctx.scope();
    let mut configs = Vec::new();
    let mut failures = Vec::new();
    let registry = ecr.registry_scanning(ctx);
    for n in input.string_list("repositoryNames") {
        match ecr.repo(&scope, &n) {
            Ok(r) => {
                let (freq, filters) = applied_scanning(registry.as_ref(), &r);
                configs.push(json!({
                    "repositoryArn": r.arn,
                    "repositoryName": r.name,
                    "scanOnPush": freq != "MANUAL",
                    "scanFrequency": freq,
                    "appliedScanFilters": filters,
                }))
            }
            Err(e) => failures.push(json!({
                "repositoryName": n,
                "failureCode": "REPOSITORY_NOT_FOUND",
                "failureReason": e.message,
            })),
        }
    }
    Ok(json!({"scanningConfigurations": configs, "failures": failures}))
}

fn set_repository_policy(ecr: &Ecr, ctx: &Ctx, input: Value) -> HandlerResult {
    check_registry(ctx, &input)?;
    let scope = ctx.scope();
    let name = name(&input);
    let text = input.str("policyText").unwrap_or("").to_string();
    super::policy::check(&text, super::policy::Kind::Repository, |p| {
        ecr.principal_exists(p)
    })?;
    ecr.update_repo(&scope, name, |r| {
        r.policy = Some(text.clone());
        Ok(())
    })?;
    Ok(json!({"registryId": ctx.account, "repositoryName": name, "policyText": text}))
}

fn policy_not_found(ctx: &Ctx, name: &str) -> AwsError {
    AwsError::new(codes::ecr::RepositoryPolicyNotFoundException,
        format!(
            "Repository policy does not exist for the repository with name '{name}' in the registry with id '{}'",
            ctx.account
        ),
    )
}

fn get_repository_policy(ecr: &Ecr, ctx: &Ctx, input: Value) -> HandlerResult {
    check_registry(ctx, &input)?;
    let name = name(&input);
    let repo = ecr.repo(&ctx.scope(), name)?;
    let text = repo.policy.ok_or_else(|| policy_not_found(ctx, name))?;
    Ok(json!({"registryId": ctx.account, "repositoryName": name, "policyText": text}))
}

fn delete_repository_policy(ecr: &Ecr, ctx: &Ctx, input: Value) -> HandlerResult {
    check_registry(ctx, &input)?;
    let name = name(&input);
    let text = ecr.update_repo(&ctx.scope(), name, |r| {
        r.policy.take().ok_or_else(|| policy_not_found(ctx, name))
    })?;
    Ok(json!({"registryId": ctx.account, "repositoryName": name, "policyText": text}))
}

/// The repository an ARN names, in the caller's scope.
fn repo_of_arn(ctx: &Ctx, arn: &str) -> Result<String, AwsError> {
    let prefix = ctx.arn("ecr", "repository/");
    arn.strip_prefix(&prefix)
        .filter(|n| !n.is_empty())
        .map(str::to_string)
        .ok_or_else(|| {
            invalid(format!(
                "Invalid parameter at 'resourceArn' failed to satisfy constraint: 'Invalid ARN {arn}'"
            ))
        })
}

fn tag_resource(ecr: &Ecr, ctx: &Ctx, input: Value) -> HandlerResult {
    let name = repo_of_arn(ctx, input.str("resourceArn").unwrap_or(""))?;
    let tags: Vec<Value> = input
        .get("tags")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    check_tags(&tags)?;
    ecr.update_repo(&ctx.scope(), &name, |r| merge_tags(&mut r.tags, &tags))?;
    Ok(json!({}))
}

fn untag_resource(ecr: &Ecr, ctx: &Ctx, input: Value) -> HandlerResult {
    let name = repo_of_arn(ctx, input.str("resourceArn").unwrap_or(""))?;
    let keys = input.string_list("tagKeys");
    ecr.update_repo(&ctx.scope(), &name, |r| {
        r.tags
            .retain(|t| !keys.iter().any(|k| t.str("Key") == Some(k.as_str())));
        Ok(())
    })?;
    Ok(json!({}))
}

fn list_tags_for_resource(ecr: &Ecr, ctx: &Ctx, input: Value) -> HandlerResult {
    let name = repo_of_arn(ctx, input.str("resourceArn").unwrap_or(""))?;
    let repo = ecr.repo(&ctx.scope(), &name)?;
    let mut out = Map::new();
    put_opt(&mut out, "tags", Some(json!(repo.tags)));
    Ok(Value::Object(out))
}
