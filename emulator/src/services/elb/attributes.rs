//! Describe/ModifyLoadBalancerAttributes, AddTags, RemoveTags, DescribeTags.

use super::{get_lb, lb_key, validation, Elb, SERVICE};
use crate::protocol::codes;
use crate::protocol::AwsError;
use crate::services::input::Input;
use crate::services::{Ctx, HandlerResult, Registry};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::sync::Arc;

pub const MAX_TAGS: usize = 50;

pub fn register(r: &mut Registry, s: &Arc<Elb>) {
    r.sync(SERVICE, "DescribeLoadBalancerAttributes", s, describe);
    r.sync(SERVICE, "ModifyLoadBalancerAttributes", s, modify);
    r.sync(SERVICE, "AddTags", s, add_tags);
    r.sync(SERVICE, "RemoveTags", s, remove_tags);
    r.sync(SERVICE, "DescribeTags", s, describe_tags);
}

/// What the API creates: cross-zone off, draining off (300 s), idle timeout 60 s, no access log.
pub fn default_attributes() -> Value {
    json!({
        "CrossZoneLoadBalancing": {"Enabled": false},
        "AccessLog": {"Enabled": false},
        "ConnectionDraining": {"Enabled": false, "Timeout": 300},
        "ConnectionSettings": {"IdleTimeout": 60},
        "AdditionalAttributes": [{"Key": "elb.http.desyncmitigationmode", "Value": "defensive"}],
    })
}

fn describe(s: &Elb, ctx: &Ctx, input: Value) -> HandlerResult {
    let lb = get_lb(s, ctx, input.str("LoadBalancerName").unwrap_or_default())?;
    Ok(json!({"LoadBalancerAttributes": lb.attributes}))
}

/// Merges the given attributes into `current`, validating them.
pub fn merge_attributes(current: &mut Value, given: &Value) -> Result<(), AwsError> {
    if let Some(c) = given.get("CrossZoneLoadBalancing") {
        current["CrossZoneLoadBalancing"] = json!({"Enabled": c.bool("Enabled").unwrap_or(false)});
    }
    if let Some(a) = given.get("AccessLog") {
        let enabled = a.bool("Enabled").unwrap_or(false);
        let mut log = json!({"Enabled": enabled});
        if enabled && a.str("S3BucketName").is_none_or(str::is_empty) {
            return Err(AwsError::new(
                codes::elb::InvalidConfigurationRequestException,
                "AccessLog.S3BucketName is required when access logs are enabled",
            ));
        }
        let interval = a.i64("EmitInterval").unwrap_or(60);
        if interval != 5 && interval != 60 {
            return Err(validation("AccessLog.EmitInterval must be 5 or 60"));
        }
        if enabled {
            log["EmitInterval"] = json!(interval);
        }
        for k in ["S3BucketName", "S3BucketPrefix"] {
            if let Some(v) = a.str(k) {
                log[k] = json!(v);
            }
        }
        current["AccessLog"] = log;
    }
    if let Some(d) = given.get("ConnectionDraining") {
        let timeout = d.i64("Timeout").unwrap_or(300);
        if !(1..=3600).contains(&timeout) {
            return Err(validation(
                "ConnectionDraining.Timeout must be between 1 and 3600",
            ));
        }
        current["ConnectionDraining"] =
            json!({"Enabled": d.bool("Enabled").unwrap_or(false), "Timeout": timeout});
    }
    if let Some(c) = given.get("ConnectionSettings") {
        let idle = c.i64("IdleTimeout").unwrap_or(60);
        if !(1..=3600).contains(&idle) {
            return Err(validation(
                "ConnectionSettings.IdleTimeout must be between 1 and 3600",
            ));
        }
        current["ConnectionSettings"] = json!({"IdleTimeout": idle});
    }
    if let Some(Value::Array(extra)) = given.get("AdditionalAttributes") {
        let mut list: Vec<Value> = current["AdditionalAttributes"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for a in extra {
            let k = a.str("Key").unwrap_or_default();
            let v = a.str("Value").unwrap_or_default();
            match k {
                "elb.http.desyncmitigationmode" => {
                    if !matches!(v, "monitor" | "defensive" | "strictest") {
                        return Err(validation(format!(
                            "Invalid value '{v}' for elb.http.desyncmitigationmode: monitor, defensive or strictest"
                        )));
                    }
                }
                _ => {
                    return Err(AwsError::new(
                        codes::elb::LoadBalancerAttributeNotFoundException,
                        format!("The attribute '{k}' does not exist"),
                    ))
                }
            }
            list.retain(|x| x.str("Key") != Some(k));
            list.push(json!({"Key": k, "Value": v}));
        }
        current["AdditionalAttributes"] = json!(list);
    }
    Ok(())
}

fn modify(s: &Elb, ctx: &Ctx, input: Value) -> HandlerResult {
    let name = input.str("LoadBalancerName").unwrap_or_default();
    get_lb(s, ctx, name)?;
    let given = input
        .get("LoadBalancerAttributes")
        .cloned()
        .unwrap_or_else(|| json!({}));
    let key = lb_key(ctx, name);
    let attributes = s.load_balancers.transact::<_, AwsError, _>(|t| {
        let lb = t.get_mut(&key).ok_or_else(|| super::not_found(name))?;
        let mut next = lb.attributes.clone();
        merge_attributes(&mut next, &given)?;
        lb.attributes = next.clone();
        Ok(next)
    })?;
    s.bump();
    Ok(json!({"LoadBalancerName": name, "LoadBalancerAttributes": attributes}))
}

/// Tags are unique by key and at most 50 (with `existing` ones that stay).
pub fn check_tags(tags: &[Value], existing: usize) -> Result<(), AwsError> {
    let mut seen: HashSet<&str> = HashSet::new();
    for t in tags {
        let k = t.str("Key").unwrap_or_default();
        if !seen.insert(k) {
            return Err(AwsError::new(
                codes::elb::DuplicateTagKeysException,
                format!("Tag key '{k}' is given more than once"),
            ));
        }
    }
    if existing + tags.len() > MAX_TAGS {
        return Err(AwsError::new(
            codes::elb::TooManyTagsException,
            format!("A load balancer can have at most {MAX_TAGS} tags"),
        ));
    }
    Ok(())
}

fn names(input: &Value) -> Vec<String> {
    input.string_list("LoadBalancerNames")
}

fn add_tags(s: &Elb, ctx: &Ctx, input: Value) -> HandlerResult {
    let tags = input
        .get("Tags")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    check_tags(&tags, 0)?;
    let names = names(&input);
    s.load_balancers.transact(|t| {
        for n in &names {
            let lb = t
                .get_mut(&lb_key(ctx, n))
                .ok_or_else(|| super::not_found(n))?;
            for tag in &tags {
                let k = tag.str("Key").unwrap_or_default();
                lb.tags.retain(|x| x.str("Key") != Some(k));
                lb.tags
                    .push(json!({"Key": k, "Value": tag.str("Value").unwrap_or_default()}));
            }
            if lb.tags.len() > MAX_TAGS {
                return Err(AwsError::new(
                    codes::elb::TooManyTagsException,
                    format!("A load balancer can have at most {MAX_TAGS} tags"),
                ));
            }
        }
        Ok(())
    })?;
    Ok(json!({}))
}

fn remove_tags(s: &Elb, ctx: &Ctx, input: Value) -> HandlerResult {
    let keys: Vec<String> = input
        .get("Tags")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|t| t.str("Key").map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let names = names(&input);
    s.load_balancers.transact::<_, AwsError, _>(|t| {
        for n in &names {
            let lb = t
                .get_mut(&lb_key(ctx, n))
                .ok_or_else(|| super::not_found(n))?;
            lb.tags
                .retain(|x| !keys.iter().any(|k| x.str("Key") == Some(k.as_str())));
        }
        Ok(())
    })?;
    Ok(json!({}))
}

fn describe_tags(s: &Elb, ctx: &Ctx, input: Value) -> HandlerResult {
    let names = names(&input);
    if names.len() > 20 {
        return Err(validation("At most 20 load balancer names may be given"));
    }
    let mut out: Vec<Value> = Vec::new();
    for n in &names {
        let lb = get_lb(s, ctx, n)?;
        out.push(json!({"LoadBalancerName": lb.name, "Tags": lb.tags}));
    }
    Ok(json!({"TagDescriptions": out}))
}
