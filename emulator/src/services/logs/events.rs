//! Log events: PutLogEvents, GetLogEvents, FilterLogEvents.

use super::filter;
use super::groups::invalid;
use super::state::{
    group_key, group_not_found, now_ms, stream_key, stream_not_found, streams_prefix, Group, Logs,
    StoredEvent, EVENT_OVERHEAD,
};
use super::streams::group_name;
use crate::protocol::AwsError;
use crate::services::input::Input;
use crate::services::{Ctx, HandlerResult};
use serde_json::{json, Value};

const MAX_BATCH_BYTES: u64 = 1_048_576;
const MAX_EVENT_BYTES: usize = 1_048_576 - 26;
const DAY_MS: i64 = 86_400_000;
const DEFAULT_LIMIT: usize = 10_000;

pub fn put_log_events(logs: &Logs, ctx: &Ctx, input: Value) -> HandlerResult {
    let group = input.str("logGroupName").unwrap_or_default();
    let stream = input.str("logStreamName").unwrap_or_default();
    let raw = input
        .get("logEvents")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut events = Vec::with_capacity(raw.len());
    let mut bytes = 0u64;
    for e in &raw {
        let t = e.i64("timestamp").unwrap_or(0);
        let m = e.str("message").unwrap_or_default().to_string();
        if m.len() > MAX_EVENT_BYTES {
            return Err(invalid(format!(
                "Log event too large: {} bytes exceeds limit of {MAX_EVENT_BYTES}",
                m.len()
            )));
        }
        bytes += m.len() as u64 + EVENT_OVERHEAD;
        events.push((t, m));
    }
    if bytes > MAX_BATCH_BYTES {
        return Err(invalid(format!(
            "Upload too large: {bytes} bytes exceeds limit of {MAX_BATCH_BYTES}"
        )));
    }
    if events.windows(2).any(|w| w[1].0 < w[0].0) {
        return Err(invalid(
            "Log events in a single PutLogEvents request must be in chronological order.",
        ));
    }
    if let (Some(first), Some(last)) = (events.first(), events.last()) {
        if last.0 - first.0 > DAY_MS {
            return Err(invalid(
                "The batch of log events in a single PutLogEvents request cannot span more than 24 hours.",
            ));
        }
    }
    // Sequence tokens are accepted and ignored, as AWS does now.
    let appended = logs.append(&ctx.scope(), now_ms(ctx.now), group, stream, events)?;
    let mut out = json!({ "nextSequenceToken": appended.next_sequence_token });
    let mut rejected = serde_json::Map::new();
    if let Some(i) = appended.too_new_start {
        rejected.insert("tooNewLogEventStartIndex".into(), json!(i));
    }
    if let Some(i) = appended.too_old_end {
        rejected.insert("tooOldLogEventEndIndex".into(), json!(i));
    }
    if let Some(i) = appended.expired_end {
        rejected.insert("expiredLogEventEndIndex".into(), json!(i));
    }
    if !rejected.is_empty() {
        out["rejectedLogEventsInfo"] = Value::Object(rejected);
    }
    Ok(out)
}

fn existing_group(logs: &Logs, ctx: &Ctx, input: &Value) -> Result<Group, AwsError> {
    let name = group_name(ctx, input)?;
    logs.groups
        .get(&group_key(&ctx.scope(), &name))
        .ok_or_else(group_not_found)
}

fn token(dir: char, pos: u128) -> String {
    format!("{dir}/{pos:040}")
}

fn parse_token(t: &str) -> Result<(char, u128), AwsError> {
    let bad = || invalid("The specified nextToken is invalid.");
    let (dir, n) = t.split_once('/').ok_or_else(bad)?;
    let dir = match dir {
        "f" => 'f',
        "b" => 'b',
        _ => return Err(bad()),
    };
    Ok((dir, n.parse::<u128>().map_err(|_| bad())?))
}

fn event_json(e: &StoredEvent) -> Value {
    json!({"timestamp": e.timestamp, "message": e.message, "ingestionTime": e.ingestion_time})
}

pub fn get_log_events(logs: &Logs, ctx: &Ctx, input: Value) -> HandlerResult {
    let group = existing_group(logs, ctx, &input)?;
    let stream = input.str("logStreamName").unwrap_or_default();
    let scope = ctx.scope();
    if !logs
        .streams
        .contains(&stream_key(&scope, &group.name, stream))
    {
        return Err(stream_not_found());
    }
    let limit = input
        .i64("limit")
        .map(|l| l.clamp(1, 10_000) as usize)
        .unwrap_or(DEFAULT_LIMIT);
    let events = logs.read_stream(
        &scope,
        &group,
        stream,
        input.i64("startTime"),
        input.i64("endTime"),
        now_ms(ctx.now),
    );
    // A forward read returns events at positions >= p; a backward read the last ones < p.
    let (dir, p) = match input.str("nextToken") {
        Some(t) => parse_token(t)?,
        None if input.bool("startFromHead") == Some(true) => ('f', 0),
        None => ('b', u128::MAX),
    };
    let page: &[StoredEvent] = if dir == 'f' {
        let from = events.partition_point(|e| e.pos < p);
        &events[from..(from + limit).min(events.len())]
    } else {
        let to = events.partition_point(|e| e.pos < p);
        &events[to.saturating_sub(limit)..to]
    };
    let (forward, backward) = match (page.first(), page.last()) {
        (Some(first), Some(last)) => (token('f', last.pos + 1), token('b', first.pos)),
        _ => {
            // Nothing here: the same token again (the reader has reached the end).
            let p = if p == u128::MAX { 0 } else { p };
            (token('f', p), token('b', p))
        }
    };
    Ok(json!({
        "events": page.iter().map(event_json).collect::<Vec<_>>(),
        "nextForwardToken": forward,
        "nextBackwardToken": backward,
    }))
}

/// FilterLogEvents' nextToken: hex of "<timestamp>/<pos>/<stream>" of the last event returned.
fn filter_token(e: &StoredEvent, stream: &str) -> String {
    hex::encode(format!("{}/{}/{stream}", e.timestamp, e.pos))
}

fn parse_filter_token(t: &str) -> Result<(i64, u128, String), AwsError> {
    let bad = || invalid("The specified nextToken is invalid.");
    let text = hex::decode(t)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(bad)?;
    let mut parts = text.splitn(3, '/');
    let ts = parts.next().and_then(|x| x.parse().ok()).ok_or_else(bad)?;
    let pos = parts.next().and_then(|x| x.parse().ok()).ok_or_else(bad)?;
    let stream = parts.next().ok_or_else(bad)?.to_string();
    Ok((ts, pos, stream))
}

/// A stable id for an event across the group (`aws logs tail --follow` dedupes on it).
fn event_id(pos: u128, stream: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in stream.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{pos:040}{:016}", h % 10u64.pow(16))
}

pub fn filter_log_events(logs: &Logs, ctx: &Ctx, input: Value) -> HandlerResult {
    let group = existing_group(logs, ctx, &input)?;
    let names = input.string_list("logStreamNames");
    let prefix = input.str("logStreamNamePrefix");
    if !names.is_empty() && prefix.is_some() {
        return Err(invalid(
            "You cannot specify both LogStreamNames and LogStreamNamePrefix.",
        ));
    }
    let pattern = filter::parse(input.str("filterPattern").unwrap_or_default())?;
    let limit = input
        .i64("limit")
        .map(|l| l.clamp(1, 10_000) as usize)
        .unwrap_or(DEFAULT_LIMIT);
    let after = input.str("nextToken").map(parse_filter_token).transpose()?;
    let scope = ctx.scope();
    let streams: Vec<String> = logs
        .streams
        .scan(&streams_prefix(&scope, &group.name))
        .into_iter()
        .map(|(_, s)| s.name)
        .filter(|n| names.is_empty() || names.contains(n))
        .filter(|n| prefix.is_none_or(|p| n.starts_with(p)))
        .collect();
    let now = now_ms(ctx.now);
    let mut matched: Vec<(i64, String, u128, StoredEvent)> = Vec::new();
    for s in &streams {
        for e in logs.read_stream(
            &scope,
            &group,
            s,
            input.i64("startTime"),
            input.i64("endTime").map(|t| t.saturating_add(1)),
            now,
        ) {
            if pattern.matches(&e.message) {
                matched.push((e.timestamp, s.clone(), e.pos, e));
            }
        }
    }
    matched.sort_by(|a, b| (a.0, &a.1, a.2).cmp(&(b.0, &b.1, b.2)));
    if let Some((ts, pos, stream)) = &after {
        matched.retain(|(t, s, p, _)| (*t, s, *p) > (*ts, stream, *pos));
    }
    let more = matched.len() > limit;
    matched.truncate(limit);
    let events: Vec<Value> = matched
        .iter()
        .map(|(_, s, p, e)| {
            json!({
                "logStreamName": s,
                "timestamp": e.timestamp,
                "message": e.message,
                "ingestionTime": e.ingestion_time,
                "eventId": event_id(*p, s),
            })
        })
        .collect();
    let mut out = json!({
        "events": events,
        "searchedLogStreams": streams.iter().map(|s| json!({"logStreamName": s, "searchedCompletely": !more})).collect::<Vec<_>>(),
    });
    if more {
        if let Some((_, s, _, e)) = matched.last() {
            out["nextToken"] = json!(filter_token(e, s));
        }
    }
    Ok(out)
}
