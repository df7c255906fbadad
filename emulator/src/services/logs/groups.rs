//! Log groups: create, delete, describe, retention, tags.

use super::state::{
    batches_prefix, group_key, group_not_found, now_ms, streams_prefix, Group, Logs,
};
use crate::protocol::codes;
use crate::protocol::AwsError;
use crate::services::input::Input;
use crate::services::{Ctx, HandlerResult};
use serde_json::{json, Value};
use std::collections::BTreeMap;

const RETENTION_DAYS: [i64; 22] = [
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
];
const MAX_TAGS: usize = 50;

pub fn invalid(msg: impl Into<String>) -> AwsError {
    AwsError::new(codes::logs::InvalidParameterException, msg)
}

pub fn group_arn(ctx: &Ctx, name: &str) -> String {
    ctx.arn("logs", &format!("log-group:{name}"))
}

fn tags_of(input: &Value, key: &str) -> BTreeMap<String, String> {
    input
        .get(key)
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

pub fn create_log_group(logs: &Logs, ctx: &Ctx, input: Value) -> HandlerResult {
    let name = input.str("logGroupName").unwrap_or_default();
    if name.starts_with("aws/") {
        return Err(invalid(
            "Log group names beginning with aws/ are reserved for AWS services.",
        ));
    }
    let tags = tags_of(&input, "tags");
    let mut group = Group::new(name, now_ms(ctx.now), input.str("logGroupClass"), tags);
    group.kms_key_id = input.str("kmsKeyId").map(str::to_string);
    group.deletion_protection = input.bool("deletionProtectionEnabled").unwrap_or(false);
    let key = group_key(&ctx.scope(), name);
    logs.groups.transact(|tx| {
        if tx.contains(&key) {
            return Err(AwsError::new(
                codes::logs::ResourceAlreadyExistsException,
                "The specified log group already exists",
            ));
        }
        tx.put(&key, group);
        Ok(())
    })?;
    Ok(json!({}))
}

pub fn delete_log_group(logs: &Logs, ctx: &Ctx, input: Value) -> HandlerResult {
    let name = input.str("logGroupName").unwrap_or_default();
    let scope = ctx.scope();
    let key = group_key(&scope, name);
    let prefix = streams_prefix(&scope, name);
    logs.batches.transact::<_, AwsError, _>(|btx| {
        logs.streams.transact::<_, AwsError, _>(|stx| {
            logs.groups.transact::<_, AwsError, _>(|gtx| {
                let g = gtx.get(&key).ok_or_else(group_not_found)?;
                if g.deletion_protection {
                    return Err(AwsError::new(
                        codes::logs::ValidationException,
                        "Cannot delete log group with deletion protection enabled",
                    ));
                }
                gtx.remove(&key);
                Ok(())
            })?;
            for sk in stx.keys(&prefix) {
                for bk in btx.keys(&batches_prefix(&sk)) {
                    btx.remove(&bk);
                }
                stx.remove(&sk);
            }
            Ok(())
        })
    })?;
    Ok(json!({}))
}

/// A group as DescribeLogGroups shows it.
fn describe(logs: &Logs, ctx: &Ctx, g: &Group) -> Value {
    let prefix = streams_prefix(&ctx.scope(), &g.name);
    let stored: u64 = logs
        .streams
        .scan(&prefix)
        .iter()
        .map(|(_, s)| s.bytes)
        .sum();
    let arn = group_arn(ctx, &g.name);
    let mut v = json!({
        "logGroupName": g.name,
        "creationTime": g.creation_time,
        "metricFilterCount": 0,
        "arn": format!("{arn}:*"),
        "storedBytes": stored,
        "logGroupClass": g.class,
        "logGroupArn": arn,
        "deletionProtectionEnabled": g.deletion_protection,
    });
    if let Some(d) = g.retention_in_days {
        v["retentionInDays"] = json!(d);
    }
    if let Some(k) = &g.kms_key_id {
        v["kmsKeyId"] = json!(k);
    }
    v
}

/// A page of keyed items and the token of the next one.
pub type Page<T> = (Vec<(String, T)>, Option<String>);

/// Pages `items` (sorted by key, descending when `descending`) after the key in `token` (hex of
/// the last key returned).
pub fn page<T>(
    items: Vec<(String, T)>,
    token: Option<&str>,
    limit: usize,
    descending: bool,
) -> Result<Page<T>, AwsError> {
    let after = match token {
        None => None,
        Some(t) => Some(
            hex::decode(t)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| invalid("The specified nextToken is invalid."))?,
        ),
    };
    let mut rest: Vec<(String, T)> = items
        .into_iter()
        .filter(|(k, _)| {
            after
                .as_ref()
                .is_none_or(|a| if descending { k < a } else { k > a })
        })
        .collect();
    if rest.len() > limit {
        rest.truncate(limit);
        let next = rest.last().map(|(k, _)| hex::encode(k));
        Ok((rest, next))
    } else {
        Ok((rest, None))
    }
}

pub fn describe_log_groups(logs: &Logs, ctx: &Ctx, input: Value) -> HandlerResult {
    let prefix = input.str("logGroupNamePrefix");
    let pattern = input.str("logGroupNamePattern").map(str::to_lowercase);
    if prefix.is_some() && pattern.is_some() {
        return Err(invalid(
            "LogGroupNamePrefix and LogGroupNamePattern are mutually exclusive. Only one can be specified.",
        ));
    }
    let class = input.str("logGroupClass");
    let identifiers = input.string_list("logGroupIdentifiers");
    let scope = ctx.scope();
    let groups: Vec<(String, Group)> = logs
        .groups
        .scan(&scope)
        .into_iter()
        .filter(|(_, g)| prefix.is_none_or(|p| g.name.starts_with(p)))
        .filter(|(_, g)| {
            pattern
                .as_ref()
                .is_none_or(|p| g.name.to_lowercase().contains(p.as_str()))
        })
        .filter(|(_, g)| class.is_none_or(|c| g.class == c))
        .filter(|(_, g)| {
            identifiers.is_empty()
                || identifiers.iter().any(|i| {
                    let arn = group_arn(ctx, &g.name);
                    *i == g.name || *i == arn || *i == format!("{arn}:*")
                })
        })
        .map(|(_, g)| (g.name.clone(), g))
        .collect();
    let limit = input.i64("limit").unwrap_or(50).clamp(1, 50) as usize;
    let (page, next) = page(groups, input.str("nextToken"), limit, false)?;
    let items: Vec<Value> = page.iter().map(|(_, g)| describe(logs, ctx, g)).collect();
    let mut out = json!({ "logGroups": items });
    if let Some(n) = next {
        out["nextToken"] = json!(n);
    }
    Ok(out)
}

fn update_group(
    logs: &Logs,
    ctx: &Ctx,
    name: &str,
    f: impl FnOnce(&mut Group) -> Result<(), AwsError>,
) -> Result<(), AwsError> {
    let key = group_key(&ctx.scope(), name);
    logs.groups.transact(|tx| {
        let g = tx.get_mut(&key).ok_or_else(group_not_found)?;
        f(g)
    })
}

pub fn put_retention_policy(logs: &Logs, ctx: &Ctx, input: Value) -> HandlerResult {
    let name = input.str("logGroupName").unwrap_or_default();
    let days = input.i64("retentionInDays").unwrap_or(0);
    if !RETENTION_DAYS.contains(&days) {
        let allowed: Vec<String> = RETENTION_DAYS.iter().map(i64::to_string).collect();
        return Err(invalid(format!(
            "1 validation error detected: Value '{days}' at 'retentionInDays' failed to satisfy constraint: Member must satisfy enum value set: [{}]",
            allowed.join(", ")
        )));
    }
    update_group(logs, ctx, name, |g| {
        g.retention_in_days = Some(days);
        Ok(())
    })?;
    Ok(json!({}))
}

pub fn delete_retention_policy(logs: &Logs, ctx: &Ctx, input: Value) -> HandlerResult {
    let name = input.str("logGroupName").unwrap_or_default();
    update_group(logs, ctx, name, |g| {
        g.retention_in_days = None;
        Ok(())
    })?;
    Ok(json!({}))
}

fn add_tags(g: &mut Group, tags: BTreeMap<String, String>) -> Result<(), AwsError> {
    let mut merged = g.tags.clone();
    merged.extend(tags);
    if merged.len() > MAX_TAGS {
        return Err(AwsError::new(
            codes::logs::TooManyTagsException,
            format!("A resource can have no more than {MAX_TAGS} tags."),
        ));
    }
    g.tags = merged;
    Ok(())
}

/// The group an ARN names (log-group ARNs only, with or without ":*").
fn group_of_arn<'a>(ctx: &Ctx, arn: &'a str) -> Result<&'a str, AwsError> {
    let prefix = ctx.arn("logs", "log-group:");
    let name = arn
        .strip_prefix(prefix.as_str())
        .map(|n| n.strip_suffix(":*").unwrap_or(n))
        .filter(|n| !n.is_empty() && !n.contains(':'));
    match name {
        Some(n) => Ok(n),
        None if arn.starts_with("arn:") => Err(AwsError::new(
            codes::logs::ResourceNotFoundException,
            format!("The specified resource does not exist: {arn}"),
        )),
        None => Err(invalid(format!("Invalid resource ARN: {arn}"))),
    }
}

pub fn tag_resource(logs: &Logs, ctx: &Ctx, input: Value) -> HandlerResult {
    let arn = input.str("resourceArn").unwrap_or_default();
    let name = group_of_arn(ctx, arn)?;
    let tags = tags_of(&input, "tags");
    update_group(logs, ctx, name, |g| add_tags(g, tags))?;
    Ok(json!({}))
}

pub fn untag_resource(logs: &Logs, ctx: &Ctx, input: Value) -> HandlerResult {
    let arn = input.str("resourceArn").unwrap_or_default();
    let name = group_of_arn(ctx, arn)?;
    let keys = input.string_list("tagKeys");
    update_group(logs, ctx, name, |g| {
        g.tags.retain(|k, _| !keys.contains(k));
        Ok(())
    })?;
    Ok(json!({}))
}

pub fn list_tags_for_resource(logs: &Logs, ctx: &Ctx, input: Value) -> HandlerResult {
    let arn = input.str("resourceArn").unwrap_or_default();
    let name = group_of_arn(ctx, arn)?;
    let g = logs
        .groups
        .get(&group_key(&ctx.scope(), name))
        .ok_or_else(group_not_found)?;
    Ok(json!({ "tags": g.tags }))
}

pub fn tag_log_group(logs: &Logs, ctx: &Ctx, input: Value) -> HandlerResult {
    let name = input.str("logGroupName").unwrap_or_default();
    let tags = tags_of(&input, "tags");
    update_group(logs, ctx, name, |g| add_tags(g, tags))?;
    Ok(json!({}))
}

pub fn untag_log_group(logs: &Logs, ctx: &Ctx, input: Value) -> HandlerResult {
    let name = input.str("logGroupName").unwrap_or_default();
    let keys = input.string_list("tags");
    update_group(logs, ctx, name, |g| {
        g.tags.retain(|k, _| !keys.contains(k));
        Ok(())
    })?;
    Ok(json!({}))
}

pub fn list_tags_log_group(logs: &Logs, ctx: &Ctx, input: Value) -> HandlerResult {
    let name = input.str("logGroupName").unwrap_or_default();
    let g = logs
        .groups
        .get(&group_key(&ctx.scope(), name))
        .ok_or_else(group_not_found)?;
    Ok(json!({ "tags": g.tags }))
}
