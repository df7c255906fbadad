//! Durable metric series: one meta row per series (for ListMetrics) and its data points in rows of
//! one hour each, so a put rewrites one small row, not the whole history. Bounded: points older than
//! 15 days of emulator time are dropped, and a series keeps at most [`MAX_POINTS`] points.

use crate::protocol::AwsError;
use crate::store::{Store, Table, Txn};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Retention of data points (emulator time).
pub const RETENTION_SECS: f64 = 15.0 * 86_400.0;
/// At most this many points per series; the oldest go first.
pub const MAX_POINTS: usize = 10_000;
/// Seconds of data (by point timestamp) per row.
const CHUNK_SECS: f64 = 3_600.0;

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Dimension {
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "Value")]
    pub value: String,
}

/// One stored datum: a value, a set of values with counts, or a statistic set.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Point {
    /// Epoch seconds.
    pub t: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    pub n: f64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
    /// (value, count) pairs, for percentiles; empty for a statistic set.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<(f64, f64)>,
}

impl Point {
    pub fn single(t: f64, value: f64, unit: Option<String>) -> Point {
        Point {
            t,
            unit,
            n: 1.0,
            sum: value,
            min: value,
            max: value,
            values: vec![(value, 1.0)],
        }
    }

    /// A statistic set of samples (each counted once); None when no sample is finite.
    pub fn samples(t: f64, samples: &[f64], unit: Option<String>) -> Option<Point> {
        let values: Vec<(f64, f64)> = samples
            .iter()
            .filter(|v| v.is_finite())
            .map(|v| (*v, 1.0))
            .collect();
        if values.is_empty() {
            return None;
        }
        Some(Point {
            t,
            unit,
            n: values.len() as f64,
            sum: values.iter().map(|(v, _)| v).sum(),
            min: values.iter().map(|(v, _)| *v).fold(f64::INFINITY, f64::min),
            max: values
                .iter()
                .map(|(v, _)| *v)
                .fold(f64::NEG_INFINITY, f64::max),
            values,
        })
    }
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct SeriesMeta {
    pub namespace: String,
    pub metric_name: String,
    /// Sorted by name.
    pub dimensions: Vec<Dimension>,
    /// Emulator time of the last put.
    pub last_put: f64,
    /// Row (hour index) → points in it.
    pub chunks: BTreeMap<i64, usize>,
}

/// Identifies a series.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeriesId {
    pub namespace: String,
    pub metric_name: String,
    pub dimensions: Vec<Dimension>,
}

impl SeriesId {
    pub fn new(namespace: &str, metric_name: &str, mut dimensions: Vec<Dimension>) -> SeriesId {
        dimensions.sort();
        SeriesId {
            namespace: namespace.to_string(),
            metric_name: metric_name.to_string(),
            dimensions,
        }
    }

    /// Row key below the scope: unambiguous (JSON), and the prefix of the series' point rows.
    fn key(&self, scope: &str) -> String {
        let dims: Vec<[&str; 2]> = self
            .dimensions
            .iter()
            .map(|d| [d.name.as_str(), d.value.as_str()])
            .collect();
        let id = serde_json::json!([self.namespace, self.metric_name, dims]);
        format!("{scope}{id}")
    }
}

fn chunk_key(series_key: &str, chunk: i64) -> String {
    format!("{series_key}\u{1}{chunk:012}")
}

pub struct Series {
    pub meta: Arc<Table<SeriesMeta>>,
    pub points: Arc<Table<Vec<Point>>>,
}

impl Series {
    pub fn open(store: &Arc<Store>) -> Series {
        Series {
            meta: Table::open(store, "cloudwatch_series"),
            points: Table::open(store, "cloudwatch_points"),
        }
    }

    /// Appends points to their series (created on first use), then applies retention and the cap.
    pub fn append(
        &self,
        scope: &str,
        now: f64,
        batch: Vec<(SeriesId, Point)>,
    ) -> Result<(), AwsError> {
        let mut by_series: BTreeMap<SeriesId, Vec<Point>> = BTreeMap::new();
        for (id, p) in batch {
            by_series.entry(id).or_default().push(p);
        }
        // Meta rows and point rows live in two tables: the meta commit runs inside the points
        // transaction (lock order points → meta), so concurrent puts never lose counts, and a
        // failed meta commit rolls the points back.
        self.points.transact(|tx| {
            let mut metas: Vec<(String, SeriesMeta)> = Vec::new();
            for (id, points) in by_series {
                let key = id.key(scope);
                let mut meta = self.meta.get(&key).unwrap_or(SeriesMeta {
                    namespace: id.namespace.clone(),
                    metric_name: id.metric_name.clone(),
                    dimensions: id.dimensions.clone(),
                    last_put: now,
                    chunks: BTreeMap::new(),
                });
                meta.last_put = now;
                for p in points {
                    let chunk = (p.t / CHUNK_SECS).floor() as i64;
                    let ck = chunk_key(&key, chunk);
                    match tx.get_mut(&ck) {
                        Some(rows) => rows.push(p),
                        None => tx.put(&ck, vec![p]),
                    }
                    *meta.chunks.entry(chunk).or_default() += 1;
                }
                trim(tx, &key, &mut meta, now);
                metas.push((key, meta));
            }
            self.meta.transact(|mtx| {
                for (key, meta) in metas {
                    mtx.put(&key, meta);
                }
                Ok(())
            })
        })
    }

    /// Every series of a scope (retained ones only).
    pub fn list(&self, scope: &str, now: f64) -> Vec<SeriesMeta> {
        self.meta
            .scan(scope)
            .into_iter()
            .map(|(_, m)| m)
            .filter(|m| m.last_put >= now - RETENTION_SECS && !m.chunks.is_empty())
            .collect()
    }

    /// Points of one series with start <= t < end, within retention.
    pub fn points(&self, scope: &str, id: &SeriesId, start: f64, end: f64, now: f64) -> Vec<Point> {
        let key = id.key(scope);
        let Some(meta) = self.meta.get(&key) else {
            return Vec::new();
        };
        let start = start.max(now - RETENTION_SECS);
        let first = (start / CHUNK_SECS).floor() as i64;
        let last = (end / CHUNK_SECS).floor() as i64;
        let mut out = Vec::new();
        self.points.read(|rows| {
            for chunk in meta.chunks.range(first..=last).map(|(c, _)| *c) {
                if let Some(points) = rows.get(&chunk_key(&key, chunk)) {
                    out.extend(points.iter().filter(|p| p.t >= start && p.t < end).cloned());
                }
            }
        });
        out
    }
}

/// Drops rows past retention and the oldest points beyond the cap.
fn trim(tx: &mut Txn<'_, Vec<Point>>, key: &str, meta: &mut SeriesMeta, now: f64) {
    let oldest_kept = ((now - RETENTION_SECS) / CHUNK_SECS).floor() as i64;
    let expired: Vec<i64> = meta.chunks.range(..oldest_kept).map(|(c, _)| *c).collect();
    for c in expired {
        tx.remove(&chunk_key(key, c));
        meta.chunks.remove(&c);
    }
    let mut total: usize = meta.chunks.values().sum();
    while total > MAX_POINTS {
        let Some((&chunk, &count)) = meta.chunks.iter().next() else {
            break;
        };
        let excess = total - MAX_POINTS;
        let ck = chunk_key(key, chunk);
        if count <= excess {
            tx.remove(&ck);
            meta.chunks.remove(&chunk);
            total -= count;
        } else {
            if let Some(rows) = tx.get_mut(&ck) {
                rows.sort_by(|a, b| a.t.total_cmp(&b.t));
                rows.drain(..excess);
            }
            meta.chunks.insert(chunk, count - excess);
            total -= excess;
        }
    }
}
