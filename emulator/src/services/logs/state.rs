//! Logs state: groups, streams and event batches, and the typed handle's API.

use crate::protocol::codes;
use crate::protocol::AwsError;
use crate::store::{Store, Table, Txn};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Per stream: at most this many events and bytes; the oldest batches go first.
pub const MAX_STREAM_EVENTS: u64 = 100_000;
pub const MAX_STREAM_BYTES: u64 = 32 * 1024 * 1024;
/// Per-event overhead AWS counts in batch sizes.
pub const EVENT_OVERHEAD: u64 = 26;
const DAY_MS: i64 = 86_400_000;

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Group {
    pub name: String,
    pub creation_time: i64,
    #[serde(default)]
    pub retention_in_days: Option<i64>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    pub class: String,
    #[serde(default)]
    pub kms_key_id: Option<String>,
    #[serde(default)]
    pub deletion_protection: bool,
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Stream {
    pub name: String,
    pub creation_time: i64,
    #[serde(default)]
    pub first_event: Option<i64>,
    #[serde(default)]
    pub last_event: Option<i64>,
    #[serde(default)]
    pub last_ingestion: Option<i64>,
    /// Sequence number of the next batch.
    pub next_seq: u64,
    pub events: u64,
    pub bytes: u64,
}

/// One PutLogEvents batch.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Batch {
    pub seq: u64,
    pub ingestion: i64,
    /// (timestamp ms, message), chronological.
    pub events: Vec<(i64, String)>,
}

/// An event as read back, with its stable position in the stream.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredEvent {
    pub timestamp: i64,
    pub message: String,
    pub ingestion_time: i64,
    /// Orders events in a stream: timestamp, then batch, then index in batch.
    pub pos: u128,
}

pub fn pos(ts: i64, seq: u64, idx: usize) -> u128 {
    (ts.max(0) as u128) * 10u128.pow(21) + (seq as u128 % 10u128.pow(16)) * 100_000 + idx as u128
}

pub struct Logs {
    pub(super) groups: Arc<Table<Group>>,
    pub(super) streams: Arc<Table<Stream>>,
    pub(super) batches: Arc<Table<Batch>>,
}

pub fn group_key(scope: &str, group: &str) -> String {
    format!("{scope}{group}")
}

/// Prefix of a group's stream rows (and of their batch rows).
pub fn streams_prefix(scope: &str, group: &str) -> String {
    format!("{scope}{group}\u{1}")
}

pub fn stream_key(scope: &str, group: &str, stream: &str) -> String {
    format!("{scope}{group}\u{1}{stream}")
}

pub fn batches_prefix(stream_key: &str) -> String {
    format!("{stream_key}\u{1}")
}

fn batch_key(stream_key: &str, seq: u64) -> String {
    format!("{stream_key}\u{1}{seq:016}")
}

pub fn group_not_found() -> AwsError {
    AwsError::new(
        codes::logs::ResourceNotFoundException,
        "The specified log group does not exist.",
    )
}

pub fn stream_not_found() -> AwsError {
    AwsError::new(
        codes::logs::ResourceNotFoundException,
        "The specified log stream does not exist.",
    )
}

/// What PutLogEvents kept and refused.
#[derive(Debug, Default, PartialEq)]
pub struct Appended {
    pub too_new_start: Option<usize>,
    pub too_old_end: Option<usize>,
    pub expired_end: Option<usize>,
    pub next_sequence_token: String,
}

impl Logs {
    pub fn open(store: &Arc<Store>) -> Logs {
        Logs {
            groups: Table::open(store, "logs_groups"),
            streams: Table::open(store, "logs_streams"),
            batches: Table::open(store, "logs_batches"),
        }
    }

    /// For the awslogs driver: makes sure the group (when `create_group`) and the stream exist.
    /// Errors with ResourceNotFoundException when the group is missing and not to be created.
    pub fn ensure_stream(
        &self,
        account: &str,
        region: &str,
        now_ms: i64,
        group: &str,
        stream: &str,
        create_group: bool,
    ) -> Result<(), AwsError> {
        let scope = format!("{account}/{region}/");
        let gk = group_key(&scope, group);
        if !self.groups.contains(&gk) {
            if !create_group {
                return Err(group_not_found());
            }
            self.groups.transact::<_, AwsError, _>(|tx| {
                if !tx.contains(&gk) {
                    tx.put(&gk, Group::new(group, now_ms, None, BTreeMap::new()));
                }
                Ok(())
            })?;
        }
        let sk = stream_key(&scope, group, stream);
        self.streams.transact::<_, AwsError, _>(|tx| {
            if !tx.contains(&sk) {
                tx.put(&sk, Stream::new(stream, now_ms));
            }
            Ok(())
        })
    }

    /// For the awslogs driver: appends events (timestamp ms, message) to an existing stream.
    /// Events are sorted by timestamp first; too old / too new events are dropped as AWS rejects
    /// them.
    pub fn append_events(
        &self,
        account: &str,
        region: &str,
        now_ms: i64,
        group: &str,
        stream: &str,
        mut events: Vec<(i64, String)>,
    ) -> Result<Appended, AwsError> {
        events.sort_by_key(|(t, _)| *t);
        let scope = format!("{account}/{region}/");
        self.append(&scope, now_ms, group, stream, events)
    }

    /// Appends chronological events; the caller has checked order and sizes.
    pub(super) fn append(
        &self,
        scope: &str,
        now_ms: i64,
        group: &str,
        stream: &str,
        events: Vec<(i64, String)>,
    ) -> Result<Appended, AwsError> {
        let g = self
            .groups
            .get(&group_key(scope, group))
            .ok_or_else(group_not_found)?;
        let sk = stream_key(scope, group, stream);
        let mut out = Appended::default();
        let too_old = now_ms - 14 * DAY_MS;
        let expired = g.retention_in_days.map(|d| now_ms - d * DAY_MS);
        let too_new = now_ms + 2 * 3_600_000;
        let mut kept = Vec::with_capacity(events.len());
        for (i, (t, m)) in events.into_iter().enumerate() {
            if expired.is_some_and(|e| t < e) {
                out.expired_end = Some(i + 1);
            } else if t < too_old {
                out.too_old_end = Some(i + 1);
            } else if t > too_new {
                out.too_new_start.get_or_insert(i);
            } else {
                kept.push((t, m));
            }
        }
        self.batches.transact(|btx| {
            self.streams.transact::<_, AwsError, _>(|stx| {
                let s = stx.get_mut(&sk).ok_or_else(stream_not_found)?;
                let seq = s.next_seq;
                s.next_seq += 1;
                out.next_sequence_token = format!("{:056}", seq + 1);
                if kept.is_empty() {
                    return Ok(());
                }
                let bytes: u64 = kept
                    .iter()
                    .map(|(_, m)| m.len() as u64 + EVENT_OVERHEAD)
                    .sum();
                s.events += kept.len() as u64;
                s.bytes += bytes;
                let (lo, hi) = (kept[0].0, kept[kept.len() - 1].0);
                s.first_event = Some(s.first_event.map_or(lo, |f| f.min(lo)));
                s.last_event = Some(s.last_event.map_or(hi, |l| l.max(hi)));
                s.last_ingestion = Some(now_ms);
                btx.put(
                    &batch_key(&sk, seq),
                    Batch {
                        seq,
                        ingestion: now_ms,
                        events: kept,
                    },
                );
                trim(btx, &sk, s, expired);
                Ok(())
            })
        })?;
        Ok(out)
    }

    /// A stream's events within [start, end) ms, sorted by position; retention applied.
    pub fn read_stream(
        &self,
        scope: &str,
        group: &Group,
        stream: &str,
        start: Option<i64>,
        end: Option<i64>,
        now_ms: i64,
    ) -> Vec<StoredEvent> {
        let sk = stream_key(scope, &group.name, stream);
        let prefix = batches_prefix(&sk);
        let expired = group.retention_in_days.map(|d| now_ms - d * DAY_MS);
        let lo = start.max(expired).unwrap_or(i64::MIN);
        let hi = end.unwrap_or(i64::MAX);
        let mut out = Vec::new();
        self.batches.read(|rows| {
            for (_, b) in rows
                .range(prefix.clone()..)
                .take_while(|(k, _)| k.starts_with(&prefix))
            {
                for (i, (t, m)) in b.events.iter().enumerate() {
                    if *t >= lo && *t < hi {
                        out.push(StoredEvent {
                            timestamp: *t,
                            message: m.clone(),
                            ingestion_time: b.ingestion,
                            pos: pos(*t, b.seq, i),
                        });
                    }
                }
            }
        });
        out.sort_by_key(|e| e.pos);
        out
    }
}

/// Drops expired batches (oldest first) and the oldest batches beyond the stream's bounds.
fn trim(btx: &mut Txn<'_, Batch>, sk: &str, s: &mut Stream, expired: Option<i64>) {
    let prefix = batches_prefix(sk);
    loop {
        // The oldest batch of the stream (keys sort by sequence).
        let oldest = btx
            .rows()
            .range(prefix.clone()..)
            .next()
            .filter(|(k, _)| k.starts_with(&prefix))
            .map(|(k, b)| {
                let newest = b.events.iter().map(|(t, _)| *t).max().unwrap_or(i64::MIN);
                let bytes: u64 = b
                    .events
                    .iter()
                    .map(|(_, m)| m.len() as u64 + EVENT_OVERHEAD)
                    .sum();
                (k.clone(), newest, b.events.len() as u64, bytes)
            });
        let Some((key, newest, n, bytes)) = oldest else {
            return;
        };
        let over = s.events > MAX_STREAM_EVENTS || s.bytes > MAX_STREAM_BYTES;
        let gone = expired.is_some_and(|e| newest < e);
        if !over && !gone {
            return;
        }
        btx.remove(&key);
        s.events = s.events.saturating_sub(n);
        s.bytes = s.bytes.saturating_sub(bytes);
    }
}

impl Group {
    pub fn new(
        name: &str,
        now_ms: i64,
        class: Option<&str>,
        tags: BTreeMap<String, String>,
    ) -> Group {
        Group {
            name: name.to_string(),
            creation_time: now_ms,
            retention_in_days: None,
            tags,
            class: class.unwrap_or("STANDARD").to_string(),
            kms_key_id: None,
            deletion_protection: false,
        }
    }
}

impl Stream {
    pub fn new(name: &str, now_ms: i64) -> Stream {
        Stream {
            name: name.to_string(),
            creation_time: now_ms,
            first_event: None,
            last_event: None,
            last_ingestion: None,
            next_seq: 1,
            events: 0,
            bytes: 0,
        }
    }
}

pub fn now_ms(now: f64) -> i64 {
    (now * 1000.0) as i64
}
