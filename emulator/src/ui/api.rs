//! The dashboard reads state the way a user does: through the emulated AWS APIs, called
//! in-process (no HTTP, no codec). What it shows is therefore exactly what `aws ecs describe-…`
//! answers, and it does not depend on how a service stores its rows.

use crate::app::App;
use crate::services::Ctx;
use serde_json::{json, Value};

pub struct Api<'a> {
    app: &'a App,
    ctx: Ctx,
}

impl<'a> Api<'a> {
    pub fn new(app: &'a App, region: Option<&str>) -> Api<'a> {
        let region = region
            .filter(|r| !r.is_empty())
            .unwrap_or(&app.config.region)
            .to_string();
        Api {
            app,
            ctx: Ctx {
                account: app.config.account_id.clone(),
                region,
                request_id: "dashboard".into(),
                now: app.clock.now(),
                access_key: None,
            },
        }
    }

    pub fn region(&self) -> &str {
        &self.ctx.region
    }

    pub fn account(&self) -> &str {
        &self.ctx.account
    }

    pub fn now(&self) -> f64 {
        self.ctx.now
    }

    /// The faults of this account and region.
    pub fn faults(&self) -> Vec<crate::faults::Fault> {
        self.app
            .faults
            .list()
            .into_iter()
            .filter(|f| f.account == self.ctx.account && f.region == self.ctx.region)
            .collect()
    }

    /// Whether the emulator implements an operation (pages for services not built yet are left
    /// out rather than shown empty).
    pub fn has(&self, service: &str, operation: &str) -> bool {
        self.app.registry.get(service, operation).is_some()
    }

    /// Calls an operation; an error (or an unimplemented operation) gives `None`.
    pub async fn call(&self, service: &str, operation: &str, input: Value) -> Option<Value> {
        let handler = self.app.registry.get(service, operation)?.clone();
        match handler.call(self.ctx.clone(), input).await {
            Ok(v) => Some(v),
            Err(e) => {
                tracing::debug!(service, operation, error = %e.message, "dashboard read failed");
                None
            }
        }
    }

    /// Every page of a List call: the items under `key`, following `nextToken`/`NextToken`.
    pub async fn list_all(
        &self,
        service: &str,
        operation: &str,
        input: Value,
        key: &str,
    ) -> Vec<Value> {
        let mut items = Vec::new();
        let mut input = input;
        for _ in 0..100 {
            let Some(out) = self.call(service, operation, input.clone()).await else {
                break;
            };
            if let Some(page) = out.get(key).and_then(Value::as_array) {
                items.extend(page.iter().cloned());
            }
            let next = ["nextToken", "NextToken", "NextMarker", "Marker"]
                .iter()
                .find_map(|k| out.get(*k).and_then(Value::as_str).map(|t| (*k, t)));
            match next {
                Some((k, token)) if !token.is_empty() => {
                    let k = match k {
                        "NextMarker" => "Marker",
                        other => other,
                    };
                    input[k] = json!(token);
                }
                _ => break,
            }
        }
        items
    }
}

/// A string member, or "".
pub fn s<'v>(v: &'v Value, key: &str) -> &'v str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// An integer member, or 0.
pub fn n(v: &Value, key: &str) -> i64 {
    v.get(key).and_then(Value::as_i64).unwrap_or(0)
}

/// The last segment of an ARN (`…/name`).
pub fn tail(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}
