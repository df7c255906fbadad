//! Registry-wide settings of an (account, region): registry policy, replication, scanning,
//! pull-through cache rules, account settings and repository creation templates. They are
//! stored and returned; replication and scanning do nothing more, and pull-through cache rules
//! answer with a clear error when the upstream cannot be reached (this machine has no route to
//! public registries, and the emulator does not proxy them).

use super::{max_results, page, Ecr, SERVICE};
use crate::protocol::codes;
use crate::protocol::AwsError;
use crate::services::input::Input;
use crate::services::{Ctx, HandlerResult, Registry};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Settings {
    pub policy: Option<String>,
    pub replication: Option<Value>,
    pub scanning: Option<Value>,
    pub pull_through_rules: Vec<Value>,
    pub account_settings: BTreeMap<String, String>,
    pub templates: Vec<Value>,
}

pub(super) fn register(r: &mut Registry, s: &Arc<Ecr>) {
    r.sync(SERVICE, "PutRegistryPolicy", s, put_registry_policy);
    r.sync(SERVICE, "GetRegistryPolicy", s, get_registry_policy);
    r.sync(SERVICE, "DeleteRegistryPolicy", s, delete_registry_policy);
    r.sync(
        SERVICE,
        "PutReplicationConfiguration",
        s,
        put_replication_configuration,
    );
    r.sync(SERVICE, "DescribeRegistry", s, describe_registry);
    r.sync(
        SERVICE,
        "PutRegistryScanningConfiguration",
        s,
        put_registry_scanning_configuration,
    );
    r.sync(
        SERVICE,
        "GetRegistryScanningConfiguration",
        s,
        get_registry_scanning_configuration,
    );
    r.sync(
        SERVICE,
        "CreatePullThroughCacheRule",
        s,
        create_pull_through_cache_rule,
    );
    r.sync(
        SERVICE,
        "DescribePullThroughCacheRules",
        s,
        describe_pull_through_cache_rules,
    );
    r.sync(
        SERVICE,
        "UpdatePullThroughCacheRule",
        s,
        update_pull_through_cache_rule,
    );
    r.sync(
        SERVICE,
        "DeletePullThroughCacheRule",
        s,
        delete_pull_through_cache_rule,
    );
    r.asynchronous(
        SERVICE,
        "ValidatePullThroughCacheRule",
        s,
        validate_pull_through_cache_rule,
    );
    r.sync(SERVICE, "GetAccountSetting", s, get_account_setting);
    r.sync(SERVICE, "PutAccountSetting", s, put_account_setting);
    r.sync(
        SERVICE,
        "CreateRepositoryCreationTemplate",
        s,
        create_template,
    );
    r.sync(
        SERVICE,
        "DescribeRepositoryCreationTemplates",
        s,
        describe_templates,
    );
    r.sync(
        SERVICE,
        "UpdateRepositoryCreationTemplate",
        s,
        update_template,
    );
    r.sync(
        SERVICE,
        "DeleteRepositoryCreationTemplate",
        s,
        delete_template,
    );
}

impl Ecr {
    fn settings(&self, ctx: &Ctx) -> Settings {
        self.settings.get(&ctx.scope()).unwrap_or_default()
    }

    /// The registry's scanning configuration, if PutRegistryScanningConfiguration set one.
    pub(super) fn registry_scanning(&self, ctx: &Ctx) -> Option<Value> {
        self.settings(ctx).scanning
    }

    fn update_settings<R>(
        &self,
        ctx: &Ctx,
        f: impl FnOnce(&mut Settings) -> Result<R, AwsError>,
    ) -> Result<R, AwsError> {
        let key = ctx.scope();
        self.settings.transact(|t| {
            let mut s = t.get(&key).cloned().unwrap_or_default();
            let r = f(&mut s)?;
            t.put(&key, s);
            Ok(r)
        })
    }

    /// The pull-through cache rule whose prefix covers a repository name, if any.
    pub fn pull_through_rule(&self, scope: &str, repo: &str) -> Option<Value> {
        let s = self.settings.get(scope)?;
        s.pull_through_rules.into_iter().find(|r| {
            let p = r.str("ecrRepositoryPrefix").unwrap_or("");
            p == "ROOT" || repo.starts_with(&format!("{}/", p.trim_end_matches('/')))
        })
    }
}

/// Whether an upstream registry answers; the error when it does not.
pub async fn probe_upstream(url: &str) -> Result<(), String> {
    let host = url
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap_or("");
    if host.is_empty() {
        return Err(format!("the upstream registry URL '{url}' names no host"));
    }
    let addr = if host.contains(':') {
        host.to_string()
    } else {
        format!("{host}:443")
    };
    match tokio::time::timeout(
        Duration::from_secs(3),
        tokio::net::TcpStream::connect(&addr),
    )
    .await
    {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(format!(
            "the upstream registry {host} is unreachable from the emulator: {e}"
        )),
        Err(_) => Err(format!(
            "the upstream registry {host} is unreachable from the emulator: no answer within 3 s"
        )),
    }
}

fn put_registry_policy(ecr: &Ecr, ctx: &Ctx, input: Value) -> HandlerResult {
    let text = input.str("policyText").unwrap_or("").to_string();
    let v1 = ecr
        .settings(ctx)
        .account_settings
        .get("REGISTRY_POLICY_SCOPE")
        .is_some_and(|v| v == "V1");
    super::policy::check(&text, super::policy::Kind::Registry { v1 }, |p| {
        ecr.principal_exists(p)
    })?;
    ecr.update_settings(ctx, |s| {
        s.policy = Some(text.clone());
        Ok(())
    })?;
    Ok(json!({"registryId": ctx.account, "policyText": text}))
}

fn no_registry_policy(ctx: &Ctx) -> AwsError {
    AwsError::new(
        codes::ecr::RegistryPolicyNotFoundException,
        format!(
            "Registry policy does not exist in the registry with id '{}'",
            ctx.account
        ),
    )
}

fn get_registry_policy(ecr: &Ecr, ctx: &Ctx, _input: Value) -> HandlerResult {
    let text = ecr
        .settings(ctx)
        .policy
        .ok_or_else(|| no_registry_policy(ctx))?;
    Ok(json!({"registryId": ctx.account, "policyText": text}))
}

fn delete_registry_policy(ecr: &Ecr, ctx: &Ctx, _input: Value) -> HandlerResult {
    let text = ecr.update_settings(ctx, |s| {
        s.policy.take().ok_or_else(|| no_registry_policy(ctx))
    })?;
    Ok(json!({"registryId": ctx.account, "policyText": text}))
}

fn put_replication_configuration(ecr: &Ecr, ctx: &Ctx, input: Value) -> HandlerResult {
    let conf = input
        .get("replicationConfiguration")
        .cloned()
        .unwrap_or_else(|| json!({"rules": []}));
    let to_itself = conf
        .get("rules")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|r| r.get("destinations").and_then(Value::as_array))
        .flatten()
        .any(|d| {
            d.str("region") == Some(ctx.region.as_str())
                && d.str("registryId") == Some(ctx.account.as_str())
        });
    if to_itself {
        return Err(AwsError::new(codes::ecr::InvalidParameterException,
            "Invalid parameter at 'replicationConfiguration' failed to satisfy constraint: 'Replication destination cannot be the same as the source registry'",
        ));
    }
    ecr.update_settings(ctx, |s| {
        s.replication = Some(conf.clone());
        Ok(())
    })?;
    Ok(json!({"replicationConfiguration": conf}))
}

fn describe_registry(ecr: &Ecr, ctx: &Ctx, _input: Value) -> HandlerResult {
    let conf = ecr
        .settings(ctx)
        .replication
        .unwrap_or_else(|| json!({"rules": []}));
    Ok(json!({"registryId": ctx.account, "replicationConfiguration": conf}))
}

fn put_registry_scanning_configuration(ecr: &Ecr, ctx: &Ctx, input: Value) -> HandlerResult {
    let conf = json!({
        "scanType": input.str("scanType").unwrap_or("BASIC"),
        "rules": input.get("rules").cloned().unwrap_or_else(|| json!([])),
    });
    ecr.update_settings(ctx, |s| {
        s.scanning = Some(conf.clone());
        Ok(())
    })?;
    Ok(json!({"registryScanningConfiguration": conf}))
}

fn get_registry_scanning_configuration(ecr: &Ecr, ctx: &Ctx, _input: Value) -> HandlerResult {
    let conf = ecr
        .settings(ctx)
        .scanning
        .unwrap_or_else(|| json!({"scanType": "BASIC", "rules": []}));
    Ok(json!({"registryId": ctx.account, "scanningConfiguration": conf}))
}

fn infer_upstream(url: &str) -> &'static str {
    let u = url.to_ascii_lowercase();
    if u.contains("public.ecr.aws") {
        "ecr-public"
    } else if u.contains(".dkr.ecr.") {
        "ecr"
    } else if u.contains("quay.io") {
        "quay"
    } else if u.contains("registry.k8s.io") {
        "k8s"
    } else if u.contains("docker.io") {
        "docker-hub"
    } else if u.contains("ghcr.io") {
        "github-container-registry"
    } else if u.contains("azurecr.io") {
        "azure-container-registry"
    } else if u.contains("gitlab") {
        "gitlab-container-registry"
    } else if u.contains("cgr.dev") {
        "chainguard"
    } else {
        ""
    }
}

const RULE_FIELDS: [&str; 4] = [
    "credentialArn",
    "customRoleArn",
    "upstreamRepositoryPrefix",
    "upstreamRegistry",
];

fn rule_not_found(ctx: &Ctx, prefix: &str) -> AwsError {
    AwsError::new(codes::ecr::PullThroughCacheRuleNotFoundException,
        format!(
            "The pull through cache rule with prefix '{prefix}' does not exist in the registry with id '{}'",
            ctx.account
        ),
    )
}

fn create_pull_through_cache_rule(ecr: &Ecr, ctx: &Ctx, input: Value) -> HandlerResult {
    let prefix = input.str("ecrRepositoryPrefix").unwrap_or("").to_string();
    let url = input.str("upstreamRegistryUrl").unwrap_or("").to_string();
    let upstream = input
        .str("upstreamRegistry")
        .map(str::to_string)
        .unwrap_or_else(|| infer_upstream(&url).to_string());
    if upstream.is_empty() {
        return Err(AwsError::new(
            codes::ecr::UnsupportedUpstreamRegistryException,
            format!("The upstream registry URL '{url}' is not a supported upstream registry"),
        ));
    }
    let mut rule = Map::new();
    rule.insert("ecrRepositoryPrefix".into(), json!(prefix));
    rule.insert("upstreamRegistryUrl".into(), json!(url));
    rule.insert("createdAt".into(), json!(ctx.now));
    rule.insert("registryId".into(), json!(ctx.account));
    rule.insert("upstreamRegistry".into(), json!(upstream));
    for f in &RULE_FIELDS[..3] {
        if let Some(v) = input.str(f) {
            rule.insert((*f).into(), json!(v));
        }
    }
    let rule = Value::Object(rule);
    ecr.update_settings(ctx, |s| {
        if s.pull_through_rules
            .iter()
            .any(|r| r.str("ecrRepositoryPrefix") == Some(prefix.as_str()))
        {
            return Err(AwsError::new(codes::ecr::PullThroughCacheRuleAlreadyExistsException,
                format!("A pull through cache rule with prefix '{prefix}' already exists in the registry with id '{}'", ctx.account),
            ));
        }
        s.pull_through_rules.push(rule.clone());
        Ok(())
    })?;
    Ok(rule)
}

fn describe_pull_through_cache_rules(ecr: &Ecr, ctx: &Ctx, input: Value) -> HandlerResult {
    let wanted = input.string_list("ecrRepositoryPrefixes");
    let mut rules = ecr.settings(ctx).pull_through_rules;
    for w in &wanted {
        if !rules
            .iter()
            .any(|r| r.str("ecrRepositoryPrefix") == Some(w.as_str()))
        {
            return Err(rule_not_found(ctx, w));
        }
    }
    if !wanted.is_empty() {
        rules.retain(|r| {
            wanted
                .iter()
                .any(|w| r.str("ecrRepositoryPrefix") == Some(w.as_str()))
        });
    }
    let key = |r: &Value| r.str("ecrRepositoryPrefix").unwrap_or("").to_string();
    rules.sort_by_key(key);
    let (rules, next) = page(rules, key, input.str("nextToken"), max_results(&input, 100))?;
    let mut out = json!({"pullThroughCacheRules": rules});
    if let Some(n) = next {
        out["nextToken"] = json!(n);
    }
    Ok(out)
}

fn update_pull_through_cache_rule(ecr: &Ecr, ctx: &Ctx, input: Value) -> HandlerResult {
    let prefix = input.str("ecrRepositoryPrefix").unwrap_or("").to_string();
    let rule = ecr.update_settings(ctx, |s| {
        let rule = s
            .pull_through_rules
            .iter_mut()
            .find(|r| r.str("ecrRepositoryPrefix") == Some(prefix.as_str()))
            .ok_or_else(|| rule_not_found(ctx, &prefix))?;
        for f in ["credentialArn", "customRoleArn"] {
            if let Some(v) = input.get(f) {
                rule[f] = v.clone();
            }
        }
        rule["updatedAt"] = json!(ctx.now);
        Ok(rule.clone())
    })?;
    let mut out = Map::new();
    for f in [
        "ecrRepositoryPrefix",
        "registryId",
        "updatedAt",
        "credentialArn",
        "customRoleArn",
        "upstreamRepositoryPrefix",
    ] {
        if let Some(v) = rule.get(f) {
            out.insert(f.into(), v.clone());
        }
    }
    Ok(Value::Object(out))
}

fn delete_pull_through_cache_rule(ecr: &Ecr, ctx: &Ctx, input: Value) -> HandlerResult {
    let prefix = input.str("ecrRepositoryPrefix").unwrap_or("").to_string();
    let rule = ecr.update_settings(ctx, |s| {
        let i = s
            .pull_through_rules
            .iter()
            .position(|r| r.str("ecrRepositoryPrefix") == Some(prefix.as_str()))
            .ok_or_else(|| rule_not_found(ctx, &prefix))?;
        Ok(s.pull_through_rules.remove(i))
    })?;
    let mut out = rule;
    if let Some(o) = out.as_object_mut() {
        o.remove("upstreamRegistry");
        o.remove("updatedAt");
    }
    Ok(out)
}

async fn validate_pull_through_cache_rule(ecr: Arc<Ecr>, ctx: Ctx, input: Value) -> HandlerResult {
    let prefix = input.str("ecrRepositoryPrefix").unwrap_or("").to_string();
    let rule = ecr
        .settings(&ctx)
        .pull_through_rules
        .into_iter()
        .find(|r| r.str("ecrRepositoryPrefix") == Some(prefix.as_str()))
        .ok_or_else(|| rule_not_found(&ctx, &prefix))?;
    let url = rule.str("upstreamRegistryUrl").unwrap_or("").to_string();
    let mut out = Map::new();
    for f in [
        "ecrRepositoryPrefix",
        "registryId",
        "upstreamRegistryUrl",
        "credentialArn",
        "customRoleArn",
        "upstreamRepositoryPrefix",
    ] {
        if let Some(v) = rule.get(f) {
            out.insert(f.into(), v.clone());
        }
    }
    match probe_upstream(&url).await {
        Ok(()) => {
            out.insert("isValid".into(), json!(false));
            out.insert("failure".into(), json!(format!("The upstream registry {url} answers, but ecs-emulator does not pull through caches: push the image to the repository instead")));
        }
        Err(e) => {
            out.insert("isValid".into(), json!(false));
            out.insert("failure".into(), json!(e));
        }
    }
    Ok(Value::Object(out))
}

const ACCOUNT_SETTINGS: [(&str, &str, &[&str]); 2] = [
    (
        "BASIC_SCAN_TYPE_VERSION",
        "AWS_NATIVE",
        &["AWS_NATIVE", "CLAIR"],
    ),
    ("REGISTRY_POLICY_SCOPE", "V2", &["V1", "V2"]),
];

fn account_setting(name: &str) -> Result<(&'static str, &'static [&'static str]), AwsError> {
    ACCOUNT_SETTINGS
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, d, vs)| (*d, *vs))
        .ok_or_else(|| {
            AwsError::new(codes::ecr::ValidationException,
                format!("The account setting name '{name}' is not valid: use BASIC_SCAN_TYPE_VERSION or REGISTRY_POLICY_SCOPE"),
            )
        })
}

fn get_account_setting(ecr: &Ecr, ctx: &Ctx, input: Value) -> HandlerResult {
    let name = input.str("name").unwrap_or("");
    let (default, _) = account_setting(name)?;
    let value = ecr
        .settings(ctx)
        .account_settings
        .get(name)
        .cloned()
        .unwrap_or_else(|| default.to_string());
    Ok(json!({"name": name, "value": value}))
}

fn put_account_setting(ecr: &Ecr, ctx: &Ctx, input: Value) -> HandlerResult {
    let name = input.str("name").unwrap_or("").to_string();
    let value = input.str("value").unwrap_or("").to_string();
    let (_, allowed) = account_setting(&name)?;
    if !allowed.contains(&value.as_str()) {
        return Err(AwsError::new(
            codes::ecr::ValidationException,
            format!("The value '{value}' is not valid for {name}: use one of {allowed:?}"),
        ));
    }
    ecr.update_settings(ctx, |s| {
        s.account_settings.insert(name.clone(), value.clone());
        Ok(())
    })?;
    Ok(json!({"name": name, "value": value}))
}

const TEMPLATE_FIELDS: [&str; 9] = [
    "description",
    "encryptionConfiguration",
    "resourceTags",
    "imageTagMutability",
    "imageTagMutabilityExclusionFilters",
    "repositoryPolicy",
    "lifecyclePolicy",
    "appliedFor",
    "customRoleArn",
];

fn template_not_found(prefix: &str) -> AwsError {
    AwsError::new(
        codes::ecr::TemplateNotFoundException,
        format!("The repository creation template with prefix '{prefix}' does not exist"),
    )
}

fn create_template(ecr: &Ecr, ctx: &Ctx, input: Value) -> HandlerResult {
    let prefix = input.str("prefix").unwrap_or("").to_string();
    let mut t = Map::new();
    t.insert("prefix".into(), json!(prefix));
    for f in TEMPLATE_FIELDS {
        if let Some(v) = input.get(f) {
            t.insert(f.into(), v.clone());
        }
    }
    t.entry("imageTagMutability").or_insert(json!("MUTABLE"));
    t.entry("encryptionConfiguration")
        .or_insert(json!({"encryptionType": "AES256"}));
    t.insert("createdAt".into(), json!(ctx.now));
    t.insert("updatedAt".into(), json!(ctx.now));
    let t = Value::Object(t);
    ecr.update_settings(ctx, |s| {
        if s.templates
            .iter()
            .any(|x| x.str("prefix") == Some(prefix.as_str()))
        {
            return Err(AwsError::new(
                codes::ecr::TemplateAlreadyExistsException,
                format!("A repository creation template with prefix '{prefix}' already exists"),
            ));
        }
        s.templates.push(t.clone());
        Ok(())
    })?;
    Ok(json!({"registryId": ctx.account, "repositoryCreationTemplate": t}))
}

fn describe_templates(ecr: &Ecr, ctx: &Ctx, input: Value) -> HandlerResult {
    let wanted = input.string_list("prefixes");
    let mut ts: Vec<Value> = ecr
        .settings(ctx)
        .templates
        .into_iter()
        .filter(|t| wanted.is_empty() || wanted.iter().any(|w| t.str("prefix") == Some(w.as_str())))
        .collect();
    let key = |t: &Value| t.str("prefix").unwrap_or("").to_string();
    ts.sort_by_key(key);
    let (ts, next) = page(ts, key, input.str("nextToken"), max_results(&input, 100))?;
    let mut out = json!({"registryId": ctx.account, "repositoryCreationTemplates": ts});
    if let Some(n) = next {
        out["nextToken"] = json!(n);
    }
    Ok(out)
}

fn update_template(ecr: &Ecr, ctx: &Ctx, input: Value) -> HandlerResult {
    let prefix = input.str("prefix").unwrap_or("").to_string();
    let t = ecr.update_settings(ctx, |s| {
        let t = s
            .templates
            .iter_mut()
            .find(|x| x.str("prefix") == Some(prefix.as_str()))
            .ok_or_else(|| template_not_found(&prefix))?;
        for f in TEMPLATE_FIELDS {
            if let Some(v) = input.get(f) {
                t[f] = v.clone();
            }
        }
        t["updatedAt"] = json!(ctx.now);
        Ok(t.clone())
    })?;
    Ok(json!({"registryId": ctx.account, "repositoryCreationTemplate": t}))
}

fn delete_template(ecr: &Ecr, ctx: &Ctx, input: Value) -> HandlerResult {
    let prefix = input.str("prefix").unwrap_or("").to_string();
    let t = ecr.update_settings(ctx, |s| {
        let i = s
            .templates
            .iter()
            .position(|x| x.str("prefix") == Some(prefix.as_str()))
            .ok_or_else(|| template_not_found(&prefix))?;
        Ok(s.templates.remove(i))
    })?;
    Ok(json!({"registryId": ctx.account, "repositoryCreationTemplate": t}))
}
