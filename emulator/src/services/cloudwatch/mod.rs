//! CloudWatch metrics (PutMetricData, ListMetrics, GetMetricStatistics, GetMetricData) and
//! alarms (alarms/: metric, metric math and composite alarms, history, tags, evaluation).
//!
//! Served over rpcv2-cbor, awsJson 1.0 and query by the protocol layer; the handlers see the same
//! model-shaped JSON (timestamps as epoch seconds). Other parts of the program publish and read
//! metrics through the typed handle [`CloudWatch`] (`registry.handle::<CloudWatch>()`).

pub mod actions;
pub mod alarms;
pub(crate) mod expr;
mod metrics;
pub mod series;
pub mod stats;

use super::{Deps, Registry};
use crate::protocol::AwsError;
use crate::store::Table;
pub use actions::{AlarmActionTarget, AlarmEvent, AlarmState};
use alarms::{Alarm, HistoryItem};
use parking_lot::{Mutex, RwLock};
use series::{Dimension, Point, Series, SeriesId};
pub use stats::Stat;
use std::collections::HashMap;
use std::sync::Arc;

const SVC: &str = "cloudwatch";

/// CloudWatch's state, and the handle internal publishers and readers use.
pub struct CloudWatch {
    pub(crate) series: Series,
    /// Keyed "<scope><alarm name>".
    pub(crate) alarms: Arc<Table<Alarm>>,
    /// Keyed "<scope><timestamp>\u{1}<alarm name>\u{1}<id>".
    pub(crate) history: Arc<Table<HistoryItem>>,
    /// Services whose ARNs alarms can invoke (scaling policies).
    targets: RwLock<Vec<Arc<dyn AlarmActionTarget>>>,
    /// When each alarm is next evaluated (emulator time); absent = at the next pass.
    pub(crate) next_evaluation: Mutex<HashMap<String, f64>>,
    /// Bumped whenever an alarm is created, changed, deleted or changes state.
    pub(crate) alarm_changes: tokio::sync::watch::Sender<u64>,
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

/// A statistic set published by the emulator itself: the samples of one metric in one period
/// (the AWS/ECS per-task utilizations of a minute). Stored with its values, so percentiles work.
#[derive(Clone, Debug)]
pub struct Samples {
    pub namespace: String,
    pub metric_name: String,
    pub dimensions: Vec<(String, String)>,
    pub values: Vec<f64>,
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
        CloudWatch::with_store(&deps.store)
    }

    pub fn with_store(store: &Arc<crate::store::Store>) -> CloudWatch {
        CloudWatch {
            series: Series::open(store),
            alarms: Table::open(store, "cloudwatch.alarms"),
            history: Table::open(store, "cloudwatch.alarm_history"),
            targets: RwLock::new(Vec::new()),
            next_evaluation: Mutex::new(HashMap::new()),
            alarm_changes: tokio::sync::watch::channel(0).0,
        }
    }

    /// Lets alarms invoke `target`'s ARNs (see [`AlarmActionTarget`]).
    pub fn add_action_target(&self, target: Arc<dyn AlarmActionTarget>) {
        self.targets.write().push(target);
    }

    pub(crate) fn target_for(&self, arn: &str) -> Option<Arc<dyn AlarmActionTarget>> {
        self.targets.read().iter().find(|t| t.owns(arn)).cloned()
    }

    /// An alarm's state and when it last changed, by name.
    pub fn alarm_state(
        &self,
        account: &str,
        region: &str,
        name: &str,
    ) -> Option<(AlarmState, f64)> {
        self.alarms
            .get(&format!("{}{name}", scope(account, region)))
            .map(|a| (a.state, a.state_transitioned))
    }

    /// An alarm by name (a copy of the stored row).
    pub fn alarm(&self, account: &str, region: &str, name: &str) -> Option<Alarm> {
        self.alarms
            .get(&format!("{}{name}", scope(account, region)))
    }

    /// Notified whenever an alarm changes (created, updated, deleted, new state).
    pub fn alarm_changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.alarm_changes.subscribe()
    }

    /// PutMetricAlarm for other services (target tracking creates its alarms through this).
    pub fn put_metric_alarm(
        &self,
        ctx: &crate::services::Ctx,
        input: serde_json::Value,
    ) -> Result<(), AwsError> {
        alarms::handlers::put_metric_alarm(self, ctx, input).map(|_| ())
    }

    /// Deletes alarms by name, ignoring those that do not exist (for services that own alarms).
    pub fn delete_alarms(
        &self,
        ctx: &crate::services::Ctx,
        names: &[String],
    ) -> Result<(), AwsError> {
        let scope = ctx.scope();
        self.alarms.transact::<_, AwsError, _>(|tx| {
            for n in names {
                tx.remove(&format!("{scope}{n}"));
            }
            Ok(())
        })?;
        self.alarm_changes.send_modify(|v| *v += 1);
        Ok(())
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

    /// Publishes statistic sets (SampleCount, Sum, Minimum, Maximum and the values) in (account,
    /// region); non-finite values are dropped, and a set left empty is not published.
    pub fn put_samples(
        &self,
        account: &str,
        region: &str,
        now: f64,
        data: &[Samples],
    ) -> Result<(), AwsError> {
        let batch = data
            .iter()
            .filter(|d| d.timestamp.is_finite())
            .filter_map(|d| {
                let point = Point::samples(d.timestamp, &d.values, d.unit.clone())?;
                Some((
                    SeriesId::new(&d.namespace, &d.metric_name, dims(&d.dimensions)),
                    point,
                ))
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

pub fn register(r: &mut Registry, deps: &Deps) -> Arc<CloudWatch> {
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
    use alarms::handlers as h;
    r.sync(SVC, "PutMetricAlarm", &cw, h::put_metric_alarm);
    r.sync(SVC, "PutCompositeAlarm", &cw, h::put_composite_alarm);
    r.sync(SVC, "DescribeAlarms", &cw, h::describe_alarms);
    r.sync(
        SVC,
        "DescribeAlarmsForMetric",
        &cw,
        h::describe_alarms_for_metric,
    );
    r.sync(SVC, "DeleteAlarms", &cw, h::delete_alarms);
    r.sync(SVC, "SetAlarmState", &cw, h::set_alarm_state);
    r.sync(SVC, "EnableAlarmActions", &cw, h::enable_alarm_actions);
    r.sync(SVC, "DisableAlarmActions", &cw, h::disable_alarm_actions);
    r.sync(SVC, "DescribeAlarmHistory", &cw, h::describe_alarm_history);
    r.sync(SVC, "TagResource", &cw, h::tag_resource);
    r.sync(SVC, "UntagResource", &cw, h::untag_resource);
    r.sync(SVC, "ListTagsForResource", &cw, h::list_tags_for_resource);
    r.provide(cw.clone());
    cw
}
