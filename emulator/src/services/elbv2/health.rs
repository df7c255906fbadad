//! Target health: what the health checker observed (kept in memory; a restarted emulator
//! checks again from `initial`), the state machine those observations drive, and the health a
//! Describe call or the proxy sees.

use crate::store::journal::ChangeJournal;
use parking_lot::RwLock;
use std::collections::HashMap;
use tokio::sync::watch;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observed {
    Initial,
    Healthy,
    Unhealthy,
}

/// One target's observed health.
#[derive(Debug, Clone)]
pub struct Record {
    pub state: Observed,
    pub reason: Option<&'static str>,
    pub description: Option<String>,
    /// Consecutive results of the current kind.
    pub successes: i64,
    pub failures: i64,
    /// Checks run so far.
    pub checks: u64,
    /// When the target last became healthy (slow start counts from here).
    pub healthy_since: Option<f64>,
}

impl Default for Record {
    fn default() -> Record {
        Record {
            state: Observed::Initial,
            reason: Some("Elb.RegistrationInProgress"),
            description: Some("Target registration is in progress".into()),
            successes: 0,
            failures: 0,
            checks: 0,
            healthy_since: None,
        }
    }
}

/// Why a health check failed.
#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    /// The target answered with a status the matcher does not accept.
    Code(u16),
    /// No answer within the timeout.
    Timeout,
    /// Refused, reset, or not HTTP.
    Failed,
}

impl Record {
    /// Applies one check result; returns whether the visible state or reason changed.
    pub fn step(
        &mut self,
        result: Result<(), Failure>,
        healthy: i64,
        unhealthy: i64,
        now: f64,
    ) -> bool {
        let before = (self.state, self.reason, self.description.clone());
        self.checks += 1;
        match result {
            Ok(()) => {
                self.failures = 0;
                self.successes += 1;
                if self.state != Observed::Healthy && self.successes >= healthy {
                    self.state = Observed::Healthy;
                    self.reason = None;
                    self.description = None;
                    self.healthy_since = Some(now);
                } else if self.state == Observed::Initial {
                    self.reason = Some("Elb.InitialHealthChecking");
                    self.description = Some("Initial health checks in progress".into());
                }
            }
            Err(f) => {
                self.successes = 0;
                self.failures += 1;
                let (reason, description) = match f {
                    Failure::Code(c) => (
                        "Target.ResponseCodeMismatch",
                        format!("Health checks failed with these codes: [{c}]"),
                    ),
                    Failure::Timeout => ("Target.Timeout", "Request timed out".to_string()),
                    Failure::Failed => (
                        "Target.FailedHealthChecks",
                        "Health checks failed".to_string(),
                    ),
                };
                if self.failures >= unhealthy || self.state == Observed::Unhealthy {
                    self.state = Observed::Unhealthy;
                    self.reason = Some(reason);
                    self.description = Some(description);
                    self.healthy_since = None;
                } else if self.state == Observed::Initial {
                    self.reason = Some("Elb.InitialHealthChecking");
                    self.description = Some("Initial health checks in progress".into());
                }
            }
        }
        before != (self.state, self.reason, self.description.clone())
    }
}

/// Observations by target group ARN, then "<id>:<port>".
pub struct HealthBook {
    records: RwLock<HashMap<String, HashMap<String, Record>>>,
    changed: watch::Sender<u64>,
    /// The target groups each change concerned, by generation (the `changed` count).
    journal: parking_lot::Mutex<ChangeJournal>,
}

impl Default for HealthBook {
    fn default() -> HealthBook {
        HealthBook {
            records: RwLock::new(HashMap::new()),
            changed: watch::channel(0).0,
            journal: Default::default(),
        }
    }
}

impl HealthBook {
    pub fn get(&self, group: &str, target: &str) -> Option<Record> {
        self.records.read().get(group)?.get(target).cloned()
    }

    /// Records one check result.
    pub fn record(
        &self,
        group: &str,
        target: &str,
        result: Result<(), Failure>,
        healthy: i64,
        unhealthy: i64,
        now: f64,
    ) {
        let changed = {
            let mut m = self.records.write();
            m.entry(group.to_string())
                .or_default()
                .entry(target.to_string())
                .or_default()
                .step(result, healthy, unhealthy, now)
        };
        if changed {
            if let Some(r) = self.get(group, target) {
                let reason = r.reason.map(|x| format!(" ({x:?})")).unwrap_or_default();
                crate::feedback!(
                    "target {target} of {} is {:?}{reason}",
                    group.rsplit(':').next().unwrap_or(group),
                    r.state
                );
            }
            self.notify(group);
        }
    }

    /// Starts a target over from `initial` (a new registration).
    pub fn reset(&self, group: &str, target: &str) {
        if let Some(g) = self.records.write().get_mut(group) {
            g.remove(target);
        }
        self.notify(group);
    }

    pub fn forget_group(&self, group: &str) {
        self.records.write().remove(group);
        self.notify(group);
    }

    /// Tells the watchers that the health of `group`'s targets (or the set of them) changed.
    pub fn notify(&self, group: &str) {
        let mut journal = self.journal.lock();
        self.changed.send_modify(|v| {
            *v += 1;
            journal.push(*v, group.to_string());
        });
    }

    /// The target groups whose health changed after generation `generation`, or None when
    /// that is no longer known.
    pub fn changes_since(&self, generation: u64) -> Option<std::collections::HashSet<String>> {
        self.journal.lock().since(generation)
    }

    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// Moves on with every visible change of a target's health.
    pub fn generation(&self) -> u64 {
        *self.changed.borrow()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initial_to_healthy_to_unhealthy_and_back() {
        let mut r = Record::default();
        assert_eq!(r.reason, Some("Elb.RegistrationInProgress"));
        assert!(r.step(Ok(()), 3, 2, 1.0));
        assert_eq!(
            (r.state, r.reason),
            (Observed::Initial, Some("Elb.InitialHealthChecking"))
        );
        r.step(Ok(()), 3, 2, 2.0);
        assert!(r.step(Ok(()), 3, 2, 3.0));
        assert_eq!(r.state, Observed::Healthy);
        assert_eq!(r.healthy_since, Some(3.0));
        // One failure below the threshold keeps it healthy.
        assert!(!r.step(Err(Failure::Code(404)), 3, 2, 4.0));
        assert_eq!(r.state, Observed::Healthy);
        assert!(r.step(Err(Failure::Code(404)), 3, 2, 5.0));
        assert_eq!(r.state, Observed::Unhealthy);
        assert_eq!(r.reason, Some("Target.ResponseCodeMismatch"));
        assert_eq!(
            r.description.as_deref(),
            Some("Health checks failed with these codes: [404]")
        );
        assert!(r.step(Err(Failure::Timeout), 3, 2, 6.0));
        assert_eq!(r.reason, Some("Target.Timeout"));
        r.step(Ok(()), 3, 2, 7.0);
        r.step(Ok(()), 3, 2, 8.0);
        assert_eq!(r.state, Observed::Unhealthy);
        r.step(Ok(()), 3, 2, 9.0);
        assert_eq!(r.state, Observed::Healthy);
    }

    #[test]
    fn initial_failures_make_it_unhealthy() {
        let mut r = Record::default();
        r.step(Err(Failure::Failed), 5, 2, 1.0);
        assert_eq!(r.state, Observed::Initial);
        r.step(Err(Failure::Failed), 5, 2, 2.0);
        assert_eq!(
            (r.state, r.reason),
            (Observed::Unhealthy, Some("Target.FailedHealthChecks"))
        );
    }
}
