//! AddTags, RemoveTags, DescribeTags for load balancers, target groups, listeners and rules.

use super::model::Tag;
use super::{
    group_not_found, key, lb_not_found, listener_not_found, rule_not_found, Elbv2, SERVICE,
};
use crate::protocol::codes;
use crate::protocol::AwsError;
use crate::services::input::Input;
use crate::services::{Ctx, HandlerResult, Registry};
use serde_json::{json, Value};
use std::sync::Arc;

const MAX_TAGS: usize = 50;

pub fn register(r: &mut Registry, s: &Arc<Elbv2>) {
    r.sync(SERVICE, "AddTags", s, add_tags);
    r.sync(SERVICE, "RemoveTags", s, remove_tags);
    r.sync(SERVICE, "DescribeTags", s, describe_tags);
}

/// The input's Tags member, checked for duplicate keys.
pub fn parse(input: &Value) -> Result<Vec<Tag>, AwsError> {
    let tags: Vec<Tag> = input.member("Tags")?.unwrap_or_default();
    if let Some(k) = super::duplicates(tags.iter().map(|t| t.key.as_str())) {
        return Err(AwsError::new(
            codes::elbv2::DuplicateTagKeysException,
            format!("Tag key '{k}' is duplicated"),
        ));
    }
    if tags.len() > MAX_TAGS {
        return Err(AwsError::new(
            codes::elbv2::TooManyTagsException,
            "Too many tags",
        ));
    }
    Ok(tags)
}

/// Merges tags into a resource's set (replacing values of existing keys).
pub fn set(s: &Elbv2, ctx: &Ctx, arn: &str, tags: &[Tag]) -> Result<(), AwsError> {
    if tags.is_empty() {
        return Ok(());
    }
    s.tags.transact(|t| {
        let k = key(ctx, arn);
        let mut current = t.get(&k).cloned().unwrap_or_default();
        for tag in tags {
            match current.iter_mut().find(|c| c.key == tag.key) {
                Some(c) => c.value = tag.value.clone(),
                None => current.push(tag.clone()),
            }
        }
        if current.len() > MAX_TAGS {
            return Err(AwsError::new(codes::elbv2::TooManyTagsException,
                format!("The quota for the number of tags that can be assigned to '{arn}' has been reached"),
            ));
        }
        t.put(&k, current);
        Ok(())
    })
}

pub fn remove_all(s: &Elbv2, ctx: &Ctx, arn: &str) -> Result<(), AwsError> {
    s.tags.remove(&key(ctx, arn))?;
    Ok(())
}

pub fn get(s: &Elbv2, ctx: &Ctx, arn: &str) -> Vec<Tag> {
    s.tags.get(&key(ctx, arn)).unwrap_or_default()
}

/// The resource exists in the caller's scope; else the error of its kind.
fn check_exists(s: &Elbv2, ctx: &Ctx, arn: &str) -> Result<(), AwsError> {
    let k = key(ctx, arn);
    let resource = arn.splitn(6, ':').nth(5).unwrap_or_default();
    let (exists, err) = if resource.starts_with("loadbalancer/") {
        (s.load_balancers.contains(&k), lb_not_found())
    } else if resource.starts_with("targetgroup/") {
        (s.target_groups.contains(&k), group_not_found())
    } else if resource.starts_with("listener/") {
        (s.listeners.contains(&k), listener_not_found())
    } else if resource.starts_with("listener-rule/") {
        let default_rule = s
            .listeners
            .read(|m| m.values().any(|l| l.default_rule_arn == arn));
        (s.rules.contains(&k) || default_rule, rule_not_found())
    } else {
        (
            false,
            super::validation(format!("'{arn}' is not a valid ARN")),
        )
    };
    if exists {
        Ok(())
    } else {
        Err(err)
    }
}

fn add_tags(s: &Elbv2, ctx: &Ctx, input: Value) -> HandlerResult {
    let arns = input.string_list("ResourceArns");
    let tags = parse(&input)?;
    for a in &arns {
        check_exists(s, ctx, a)?;
    }
    for a in &arns {
        set(s, ctx, a, &tags)?;
    }
    Ok(json!({}))
}

fn remove_tags(s: &Elbv2, ctx: &Ctx, input: Value) -> HandlerResult {
    let arns = input.string_list("ResourceArns");
    let keys = input.string_list("TagKeys");
    for a in &arns {
        check_exists(s, ctx, a)?;
    }
    s.tags.transact::<_, AwsError, _>(|t| {
        for a in &arns {
            let k = key(ctx, a);
            if let Some(current) = t.get_mut(&k) {
                current.retain(|tag| !keys.contains(&tag.key));
            }
        }
        Ok(())
    })?;
    Ok(json!({}))
}

fn describe_tags(s: &Elbv2, ctx: &Ctx, input: Value) -> HandlerResult {
    let arns = input.string_list("ResourceArns");
    let mut out = Vec::new();
    for a in &arns {
        check_exists(s, ctx, a)?;
        out.push(json!({"ResourceArn": a, "Tags": get(s, ctx, a)}));
    }
    Ok(json!({"TagDescriptions": out}))
}
