//! Group tags: CreateOrUpdateTags, DeleteTags, DescribeTags. Tags with PropagateAtLaunch are
//! copied to the instances the group launches afterwards.

use super::groups::{groups_in, max_records};
use super::model::GroupTag;
use super::{validation, AutoScaling, SVC};
use crate::protocol::codes;
use crate::protocol::AwsError;
use crate::services::input::Input;
use crate::services::{page, Ctx, HandlerResult, Registry};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

pub fn register(r: &mut Registry, s: &Arc<AutoScaling>) {
    r.sync(SVC, "CreateOrUpdateTags", s, create_or_update);
    r.sync(SVC, "DeleteTags", s, delete);
    r.sync(SVC, "DescribeTags", s, describe);
}

/// The tags of the request grouped by group name.
fn by_group(input: &Value) -> Result<BTreeMap<String, Vec<Value>>, AwsError> {
    let mut out: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for t in input
        .get("Tags")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(rt) = t.str("ResourceType") {
            if rt != "auto-scaling-group" {
                return Err(validation(format!(
                    "Invalid resource type: {rt}. Valid value is auto-scaling-group."
                )));
            }
        }
        let id = t.str("ResourceId").unwrap_or_default().to_string();
        if id.is_empty() {
            return Err(validation("ResourceId is required"));
        }
        out.entry(id).or_default().push(t.clone());
    }
    Ok(out)
}

pub fn create_or_update(s: &AutoScaling, ctx: &Ctx, input: Value) -> HandlerResult {
    for (group, tags) in by_group(&input)? {
        s.update_group(&ctx.scope(), &group, |g| {
            for t in &tags {
                let key = t.str("Key").unwrap_or_default().to_string();
                if key.to_ascii_lowercase().starts_with("aws:") {
                    return Err(validation(format!(
                        "Tag keys starting with 'aws:' are reserved for internal use: {key}"
                    )));
                }
                let tag = GroupTag {
                    key: key.clone(),
                    value: t.str("Value").unwrap_or_default().to_string(),
                    propagate: t.bool("PropagateAtLaunch").unwrap_or(false),
                };
                match g.tags.iter_mut().find(|x| x.key == key) {
                    Some(x) => *x = tag,
                    None => g.tags.push(tag),
                }
            }
            if g.tags.len() > 50 {
                return Err(AwsError::new(
                    codes::autoscaling::LimitExceededFault,
                    "The number of tags exceeds the limit of 50.",
                ));
            }
            Ok(())
        })?;
    }
    Ok(json!({}))
}

pub fn delete(s: &AutoScaling, ctx: &Ctx, input: Value) -> HandlerResult {
    for (group, tags) in by_group(&input)? {
        s.update_group(&ctx.scope(), &group, |g| {
            for t in &tags {
                let key = t.str("Key").unwrap_or_default();
                let value = t.str("Value");
                g.tags
                    .retain(|x| !(x.key == key && value.is_none_or(|v| v == x.value)));
            }
            Ok(())
        })?;
    }
    Ok(json!({}))
}

pub fn describe(s: &AutoScaling, ctx: &Ctx, input: Value) -> HandlerResult {
    let filters = super::groups::filters(&input)?;
    let mut rows: Vec<(String, Value)> = Vec::new();
    for g in groups_in(s, &ctx.scope()) {
        for (i, t) in g.tags.iter().enumerate() {
            let ok = filters.iter().all(|(name, values)| match name.as_str() {
                "auto-scaling-group" => values.contains(&g.name),
                "key" => values.contains(&t.key),
                "value" => values.contains(&t.value),
                "propagate-at-launch" => values.contains(&t.propagate.to_string()),
                _ => false,
            });
            if ok {
                rows.push((format!("{}\u{1}{i:04}", g.name), g.tags_json()[i].clone()));
            }
        }
    }
    for (name, _) in &filters {
        if !matches!(
            name.as_str(),
            "auto-scaling-group" | "key" | "value" | "propagate-at-launch"
        ) {
            return Err(validation(format!("Filter type {name} is not supported")));
        }
    }
    let (page, next) = page::page(
        rows,
        |(k, _)| k.clone(),
        input.str("NextToken"),
        max_records(&input, 50)?,
        codes::autoscaling::InvalidNextToken,
    )?;
    let mut out = json!({"Tags": page.into_iter().map(|(_, v)| v).collect::<Vec<_>>()});
    if let Some(n) = next {
        out["NextToken"] = json!(n);
    }
    Ok(out)
}
