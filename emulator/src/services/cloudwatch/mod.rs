//! CloudWatch metrics: PutMetricData, ListMetrics, GetMetricStatistics, GetMetricData.
//!
//! Served over rpcv2-cbor, awsJson 1.0 and query by the protocol layer; the handlers see the same
//! model-shaped JSON (timestamps as epoch seconds). Other parts of the program publish and read
//! metrics through the typed handle [`CloudWatch`] (`registry.handle::<CloudWatch>()`).

mod expr;
mod metrics;
pub mod series;
pub mod stats;

use super::{Deps, Registry};
use crate::protocol::AwsError;
use series::{Dimension, Point, Series, SeriesId};
pub use stats::Stat;
use std::sync::Arc;

const SVC: &str = "cloudwatch";

/// CloudWatch's state, and the handle internal publishers and readers use.
pub struct CloudWatch {
    pub(crate) series: Series,
}

/// A datum published by the emulator itself (ECS, ALB metrics). `namespace` may be "AWS/…".
#[derive(Clone, Debug)]
pub struct Datum {
    pub namespace: String,
    pub metric_name: String,
    pub dimensions: Vec<(String, String)>,
    pub value: f64,
    /// A StandardUnit name ("Percent", "Count"); None is stored as "None".
    pub unit: Option<String>,
    /// Epoch seconds (emulator time).
    pub timestamp: f64,
}

/// What to read: one metric, one statistic, buckets of `period` seconds in [start, end).
#[derive(Clone, Debug)]
pub struct StatQuery {
    pub namespace: String,
    pub metric_name: String,
    pub dimensions: Vec<(String, String)>,
    pub start: f64,
    pub end: f64,
    pub period: i64,
    pub stat: Stat,
}

impl CloudWatch {
    pub fn open(deps: &Deps) -> CloudWatch {
        CloudWatch {
            series: Series::open(&deps.store),
        }
    }

    /// Publishes data points in (account, region). For internal callers: no namespace check.
    pub fn put_data(
        &self,
        account: &str,
        region: &str,
        now: f64,
        data: &[Datum],
    ) -> Result<(), AwsError> {
        let batch = data
            .iter()
            .filter(|d| d.value.is_finite() && d.timestamp.is_finite())
            .map(|d| {
                (
                    SeriesId::new(&d.namespace, &d.metric_name, dims(&d.dimensions)),
                    Point::single(d.timestamp, d.value, d.unit.clone()),
                )
            })
            .collect();
        self.series.append(&scope(account, region), now, batch)
    }

    /// One statistic per bucket, ascending by bucket start: (bucket start epoch seconds, value).
    /// Buckets without data are absent. All units are merged.
    pub fn statistics(
        &self,
        account: &str,
        region: &str,
        now: f64,
        q: &StatQuery,
    ) -> Vec<(f64, f64)> {
        let id = SeriesId::new(&q.namespace, &q.metric_name, dims(&q.dimensions));
        let start = stats::align_start(q.start, q.period);
        let points = self
            .series
            .points(&scope(account, region), &id, start, q.end, now);
        stats::bucket(&points, start, q.period)
            .into_iter()
            .filter_map(|(t, ps)| {
                let agg = stats::Agg::of(ps)?;
                Some((t as f64, agg.get(q.stat)?))
            })
            .collect()
    }
}

fn scope(account: &str, region: &str) -> String {
    format!("{account}/{region}/")
}

fn dims(d: &[(String, String)]) -> Vec<Dimension> {
    d.iter()
        .map(|(name, value)| Dimension {
            name: name.clone(),
            value: value.clone(),
        })
        .collect()
}

pub fn register(r: &mut Registry, deps: &Deps) {
    let cw = Arc::new(CloudWatch::open(deps));
    r.sync(SVC, "PutMetricData", &cw, metrics::put_metric_data);
    r.sync(SVC, "ListMetrics", &cw, metrics::list_metrics);
    r.sync(
        SVC,
        "GetMetricStatistics",
        &cw,
        metrics::get_metric_statistics,
    );
    r.sync(SVC, "GetMetricData", &cw, metrics::get_metric_data);
    r.provide(cw);
}
