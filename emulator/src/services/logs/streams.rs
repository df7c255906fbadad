//! Log streams: create, delete, describe.

use super::groups::{group_arn, invalid, page};
use super::state::{
    batches_prefix, group_key, group_not_found, now_ms, stream_key, stream_not_found,
    streams_prefix, Logs, Stream,
};
use crate::protocol::codes;
use crate::protocol::AwsError;
use crate::services::input::Input;
use crate::services::{Ctx, HandlerResult};
use serde_json::{json, Value};

/// The group named by logGroupName or logGroupIdentifier (a name or an ARN).
pub fn group_name(ctx: &Ctx, input: &Value) -> Result<String, AwsError> {
    match (input.str("logGroupName"), input.str("logGroupIdentifier")) {
        (Some(_), Some(_)) => Err(invalid(
            "LogGroup name and LogGroup ARN are mutually exclusive parameters.",
        )),
        (Some(n), None) => Ok(n.to_string()),
        (None, Some(id)) => {
            let prefix = ctx.arn("logs", "log-group:");
            Ok(id
                .strip_prefix(prefix.as_str())
                .map(|n| n.strip_suffix(":*").unwrap_or(n))
                .unwrap_or(id)
                .to_string())
        }
        (None, None) => Err(invalid(
            "Should provide either name or arn of the log group.",
        )),
    }
}

pub fn create_log_stream(logs: &Logs, ctx: &Ctx, input: Value) -> HandlerResult {
    let group = input.str("logGroupName").unwrap_or_default();
    let stream = input.str("logStreamName").unwrap_or_default();
    if stream.contains(':') || stream.contains('*') {
        return Err(invalid(format!(
            "1 validation error detected: Value '{stream}' at 'logStreamName' failed to satisfy constraint: Member must satisfy regular expression pattern: [^:*]*"
        )));
    }
    let scope = ctx.scope();
    let key = stream_key(&scope, group, stream);
    logs.streams.transact(|tx| {
        if !logs.groups.contains(&group_key(&scope, group)) {
            return Err(group_not_found());
        }
        if tx.contains(&key) {
            return Err(AwsError::new(
                codes::logs::ResourceAlreadyExistsException,
                "The specified log stream already exists",
            ));
        }
        tx.put(&key, Stream::new(stream, now_ms(ctx.now)));
        Ok(())
    })?;
    Ok(json!({}))
}

pub fn delete_log_stream(logs: &Logs, ctx: &Ctx, input: Value) -> HandlerResult {
    let group = input.str("logGroupName").unwrap_or_default();
    let stream = input.str("logStreamName").unwrap_or_default();
    let scope = ctx.scope();
    if !logs.groups.contains(&group_key(&scope, group)) {
        return Err(group_not_found());
    }
    let key = stream_key(&scope, group, stream);
    logs.batches.transact(|btx| {
        logs.streams.transact::<_, AwsError, _>(|stx| {
            stx.remove(&key).ok_or_else(stream_not_found)?;
            for bk in btx.keys(&batches_prefix(&key)) {
                btx.remove(&bk);
            }
            Ok(())
        })
    })?;
    Ok(json!({}))
}

fn describe(ctx: &Ctx, group: &str, s: &Stream) -> Value {
    let mut v = json!({
        "logStreamName": s.name,
        "creationTime": s.creation_time,
        "arn": format!("{}:log-stream:{}", group_arn(ctx, group), s.name),
        "storedBytes": 0,
    });
    if let Some(t) = s.first_event {
        v["firstEventTimestamp"] = json!(t);
    }
    if let Some(t) = s.last_event {
        v["lastEventTimestamp"] = json!(t);
    }
    if let Some(t) = s.last_ingestion {
        v["lastIngestionTime"] = json!(t);
        v["uploadSequenceToken"] = json!(format!("{:056}", s.next_seq));
    }
    v
}

pub fn describe_log_streams(logs: &Logs, ctx: &Ctx, input: Value) -> HandlerResult {
    let group = group_name(ctx, &input)?;
    let scope = ctx.scope();
    if !logs.groups.contains(&group_key(&scope, &group)) {
        return Err(group_not_found());
    }
    let by_time = input.str("orderBy") == Some("LastEventTime");
    let prefix = input.str("logStreamNamePrefix");
    if by_time && prefix.is_some() {
        return Err(invalid(
            "Cannot order by LastEventTime with a logStreamNamePrefix.",
        ));
    }
    let descending = input.bool("descending").unwrap_or(false);
    let mut streams: Vec<(String, Stream)> = logs
        .streams
        .scan(&streams_prefix(&scope, &group))
        .into_iter()
        .map(|(_, s)| s)
        .filter(|s| prefix.is_none_or(|p| s.name.starts_with(p)))
        .map(|s| {
            // The paging key sorts as the listing does.
            let key = if by_time {
                format!("{:020}\u{1}{}", s.last_event.unwrap_or(0).max(0), s.name)
            } else {
                s.name.clone()
            };
            (key, s)
        })
        .collect();
    streams.sort_by(|a, b| a.0.cmp(&b.0));
    if descending {
        streams.reverse();
    }
    let limit = input.i64("limit").unwrap_or(50).clamp(1, 50) as usize;
    let (page, next) = page(streams, input.str("nextToken"), limit, descending)?;
    let items: Vec<Value> = page.iter().map(|(_, s)| describe(ctx, &group, s)).collect();
    let mut out = json!({ "logStreams": items });
    if let Some(n) = next {
        out["nextToken"] = json!(n);
    }
    Ok(out)
}
