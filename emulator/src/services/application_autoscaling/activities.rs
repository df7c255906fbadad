//! DescribeScalingActivities: newest first, six weeks kept, not scaled activities on request.

use super::targets::page_of;
use super::{validation, Activity, AppAutoScaling};
use crate::services::input::Input;
use crate::services::{Ctx, HandlerResult};
use serde_json::{json, Value};

/// Activities are kept six weeks, as Application Auto Scaling keeps them.
const RETENTION: f64 = 42.0 * 86_400.0;

impl Activity {
    pub fn describe(&self, with_reasons: bool) -> Value {
        let mut out = json!({
            "ActivityId": self.id,
            "ServiceNamespace": self.namespace,
            "ResourceId": self.resource_id,
            "ScalableDimension": self.dimension,
            "Description": self.description,
            "Cause": self.cause,
            "StartTime": self.start,
            "StatusCode": self.status,
        });
        if let Some(e) = self.end {
            out["EndTime"] = json!(e);
        }
        if let Some(m) = &self.message {
            out["StatusMessage"] = json!(m);
        }
        if with_reasons && !self.not_scaled.is_empty() {
            out["NotScaledReasons"] = Value::Array(
                self.not_scaled
                    .iter()
                    .map(|r| {
                        let mut o = json!({"Code": r.code});
                        if let Some(v) = r.max {
                            o["MaxCapacity"] = json!(v);
                        }
                        if let Some(v) = r.min {
                            o["MinCapacity"] = json!(v);
                        }
                        if let Some(v) = r.current {
                            o["CurrentCapacity"] = json!(v);
                        }
                        o
                    })
                    .collect(),
            );
        }
        out
    }
}

pub fn describe_scaling_activities(s: &AppAutoScaling, ctx: &Ctx, input: Value) -> HandlerResult {
    let namespace = input.str("ServiceNamespace").unwrap_or_default();
    let resource_id = input.str("ResourceId");
    let dim = input.str("ScalableDimension");
    if dim.is_some() && resource_id.is_none() {
        return Err(validation(
            "If you specify a scalable dimension, you must also specify a resource ID",
        ));
    }
    let with_not_scaled = input.bool("IncludeNotScaledActivities") == Some(true);
    let cutoff = ctx.now - RETENTION;
    // Newest first; the page key inverts the start time so later activities do not shift pages.
    let mut rows: Vec<(String, Activity)> = s
        .activities
        .scan(&ctx.scope())
        .into_iter()
        .filter(|(_, a)| a.start >= cutoff && a.namespace == namespace)
        .filter(|(_, a)| resource_id.is_none_or(|r| a.resource_id == r))
        .filter(|(_, a)| dim.is_none_or(|d| a.dimension == d))
        .filter(|(_, a)| with_not_scaled || a.not_scaled.is_empty())
        .map(|(_, a)| (format!("{:020.3}|{}", 1e12 - a.start, a.id), a))
        .collect();
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    page_of(&input, "ScalingActivities", rows, |a| {
        a.describe(with_not_scaled)
    })
}
