//! Tags on namespaces and services (by ARN).

use super::CloudMap;
use crate::protocol::codes;
use crate::protocol::AwsError;
use crate::services::input::Input;
use crate::services::{Ctx, HandlerResult};
use serde_json::{json, Value};
use std::collections::BTreeMap;

const MAX_TAGS: usize = 50;

/// The `Tags` member of a create call as a map.
pub fn tags_of(input: &Value) -> Result<BTreeMap<String, String>, AwsError> {
    let mut tags = BTreeMap::new();
    for t in input
        .get("Tags")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        tags.insert(
            t.str("Key").unwrap_or_default().to_string(),
            t.str("Value").unwrap_or_default().to_string(),
        );
    }
    if tags.len() > MAX_TAGS {
        return Err(too_many(""));
    }
    Ok(tags)
}

fn too_many(arn: &str) -> AwsError {
    let mut e = AwsError::new(
        codes::servicediscovery::TooManyTagsException,
        format!("A resource can have at most {MAX_TAGS} tags."),
    );
    let mut fields = serde_json::Map::new();
    fields.insert("ResourceName".into(), json!(arn));
    e.fields = Some(Box::new(fields));
    e
}

pub fn tag_list(tags: &BTreeMap<String, String>) -> Value {
    json!(tags
        .iter()
        .map(|(k, v)| json!({"Key": k, "Value": v}))
        .collect::<Vec<_>>())
}

fn not_found(arn: &str) -> AwsError {
    AwsError::new(
        codes::servicediscovery::ResourceNotFoundException,
        format!("Resource not found: {arn}"),
    )
}

/// Runs `f` on the tags of the namespace or service the ARN names, durably.
fn with_tags<R>(
    cm: &CloudMap,
    ctx: &Ctx,
    arn: &str,
    f: impl FnOnce(&mut BTreeMap<String, String>) -> Result<R, AwsError>,
) -> Result<R, AwsError> {
    let scope = ctx.scope();
    let (kind, id) = arn
        .rsplit_once(':')
        .and_then(|(_, res)| res.split_once('/'))
        .ok_or_else(|| not_found(arn))?;
    let key = format!("{scope}{id}");
    match kind {
        "namespace" => cm.state.namespaces.transact(|tx| match tx.get_mut(&key) {
            Some(ns) if ns.arn == arn => f(&mut ns.tags),
            _ => Err(not_found(arn)),
        }),
        "service" => cm.state.services.transact(|tx| match tx.get_mut(&key) {
            Some(s) if s.arn == arn => f(&mut s.tags),
            _ => Err(not_found(arn)),
        }),
        _ => Err(not_found(arn)),
    }
}

pub fn tag_resource(cm: &CloudMap, ctx: &Ctx, input: Value) -> HandlerResult {
    let arn = input.str("ResourceARN").unwrap_or_default().to_string();
    let new = tags_of(&input)?;
    with_tags(cm, ctx, &arn, |tags| {
        tags.extend(new);
        if tags.len() > MAX_TAGS {
            return Err(too_many(&arn));
        }
        Ok(())
    })?;
    Ok(json!({}))
}

pub fn untag_resource(cm: &CloudMap, ctx: &Ctx, input: Value) -> HandlerResult {
    let arn = input.str("ResourceARN").unwrap_or_default().to_string();
    let keys = input.string_list("TagKeys");
    with_tags(cm, ctx, &arn, |tags| {
        for k in &keys {
            tags.remove(k);
        }
        Ok(())
    })?;
    Ok(json!({}))
}

pub fn list_tags_for_resource(cm: &CloudMap, ctx: &Ctx, input: Value) -> HandlerResult {
    let arn = input.str("ResourceARN").unwrap_or_default().to_string();
    // A read through the same lookup; nothing changes, so nothing is written.
    let scope = ctx.scope();
    let id = arn.rsplit('/').next().unwrap_or_default();
    let key = format!("{scope}{id}");
    if let Some(ns) = cm.state.namespaces.get(&key).filter(|n| n.arn == arn) {
        return Ok(json!({"Tags": tag_list(&ns.tags)}));
    }
    if let Some(s) = cm.state.services.get(&key).filter(|s| s.arn == arn) {
        return Ok(json!({"Tags": tag_list(&s.tags)}));
    }
    Err(not_found(&arn))
}
