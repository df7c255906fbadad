//! ECS deployment alarms (`deploymentConfiguration.alarms`): while a service's PRIMARY deployment
//! is IN_PROGRESS, an alarm named in alarmNames that goes to ALARM fails it, and with `rollback`
//! a new deployment of the last COMPLETED one replaces it. Like ECS, the deployment keeps being
//! watched for a bake time after it reaches its steady state (the scheduler records when), and
//! only then completes: `bakeTimeInMinutes` when given, else the longest Period ×
//! EvaluationPeriods of its alarms (ECS computes it from the alarms in a way it does not publish).
//!
//! Runs on the emulator clock, on every alarm change and every emulated second.

use super::scheduler;
use crate::clock::Clock;
use crate::services::cloudwatch::{AlarmState, CloudWatch};
use crate::services::ecs::model::{DeploymentStatus, RolloutState, ServiceStatus};
use crate::services::ecs::{Deployment, Ecs, EcsService};
use std::sync::Arc;
use std::time::Duration;

/// The bake time when none of the named alarms exists (ECS does not say; five minutes).
const DEFAULT_BAKE_S: f64 = 300.0;

pub struct DeploymentAlarmController {
    ecs: Arc<Ecs>,
    cw: Arc<CloudWatch>,
    clock: Clock,
}

/// What the alarms decided for one service's PRIMARY deployment.
#[derive(Debug, PartialEq)]
pub enum Verdict {
    /// Alarms that went to ALARM since the deployment started.
    Failed(Vec<String>),
    /// Steady for the whole bake time, no alarm: complete it.
    Complete,
    Wait,
}

/// Decides for a deployment given each alarm's (name, state, when it entered that state) and the
/// bake time. Pure, for tests.
pub fn verdict(
    d: &Deployment,
    alarms: &[(String, AlarmState, f64)],
    bake_s: f64,
    now: f64,
) -> Verdict {
    let fired: Vec<String> = alarms
        .iter()
        .filter(|(_, state, since)| *state == AlarmState::Alarm && *since >= d.created_at)
        .map(|(n, _, _)| n.clone())
        .collect();
    if !fired.is_empty() {
        return Verdict::Failed(fired);
    }
    match d.steady_at {
        Some(t) if now - t >= bake_s => Verdict::Complete,
        _ => Verdict::Wait,
    }
}

impl DeploymentAlarmController {
    pub fn new(ecs: Arc<Ecs>, cw: Arc<CloudWatch>, clock: Clock) -> DeploymentAlarmController {
        DeploymentAlarmController { ecs, cw, clock }
    }

    pub async fn run(self) {
        let mut changes = self.cw.alarm_changes();
        let pause = self
            .clock
            .real(Duration::from_secs(1))
            .clamp(Duration::from_millis(20), Duration::from_secs(1));
        loop {
            self.pass(self.clock.now());
            tokio::select! {
                _ = changes.changed() => {}
                _ = tokio::time::sleep(pause) => {}
            }
        }
    }

    /// One look at every service whose deployment alarms are enabled.
    pub fn pass(&self, now: f64) {
        let watched: Vec<(String, EcsService)> = self.ecs.services.read(|rows| {
            rows.iter()
                .filter(|(_, s)| {
                    s.status == ServiceStatus::Active
                        && s.deployment_alarms.as_ref().is_some_and(|a| a.enable)
                        && s.primary()
                            .is_some_and(|p| p.rollout_state == RolloutState::InProgress)
                })
                .map(|(k, s)| (k.clone(), s.clone()))
                .collect()
        });
        for (key, svc) in watched {
            self.check(&key, &svc, now);
        }
    }

    fn check(&self, key: &str, svc: &EcsService, now: f64) {
        let (Some(primary), Some(conf)) = (svc.primary(), &svc.deployment_alarms) else {
            return;
        };
        let mut parts = svc.arn.split(':').skip(3);
        let (region, account) = (
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
        );
        let mut states = Vec::new();
        let mut window: Option<f64> = None;
        for name in &conf.alarm_names {
            if let Some(a) = self.cw.alarm(account, region, name) {
                let w = (a.evaluation_period() * a.evaluation_periods.max(1)) as f64;
                window = Some(window.map_or(w, |x: f64| x.max(w)));
                states.push((name.clone(), a.state, a.state_transitioned));
            }
        }
        let bake = svc
            .bake_time_minutes
            .map(|m| m as f64 * 60.0)
            .or(window)
            .unwrap_or(DEFAULT_BAKE_S);
        let v = verdict(primary, &states, bake, now);
        if v == Verdict::Wait {
            return;
        }
        let id = primary.id.clone();
        let _ = self
            .ecs
            .services
            .record::<_, crate::store::StoreError, _>(|t| {
                let Some(s) = t.get_mut(key) else {
                    return Ok(());
                };
                let mut events = Vec::new();
                let name = s.name.clone();
                let rollback = s.deployment_alarms.as_ref().is_some_and(|a| a.rollback);
                let Some(p) = s.deployments.iter_mut().find(|d| {
                    d.id == id
                        && d.status == DeploymentStatus::Primary
                        && d.rollout_state == RolloutState::InProgress
                }) else {
                    return Ok(());
                };
                match &v {
                    Verdict::Failed(alarms) => {
                        fail(&name, p, alarms, now, &mut events);
                        let failed = p.clone();
                        if rollback {
                            scheduler::roll_back(s, &failed, now, &mut events);
                        }
                    }
                    Verdict::Complete => events.extend(scheduler::complete(&name, p, now)),
                    Verdict::Wait => {}
                }
                for e in events {
                    s.event(now, e);
                }
                Ok(())
            });
        self.ecs.scheduler_wakeup.notify_one();
    }
}

/// Marks a deployment FAILED because of alarms.
fn fail(service: &str, p: &mut Deployment, alarms: &[String], now: f64, events: &mut Vec<String>) {
    p.rollout_state = RolloutState::Failed;
    p.rollout_state_reason = format!(
        "ECS deployment {} failed: alarm(s) {} in ALARM state.",
        p.id,
        alarms.join(", ")
    );
    p.updated_at = now;
    events.push(format!(
        "(service {service}) (deployment {}) deployment failed: alarm(s) {} in ALARM state.",
        p.id,
        alarms.join(", ")
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(created: f64, steady: Option<f64>) -> Deployment {
        Deployment {
            id: "ecs-svc/1".into(),
            created_at: created,
            steady_at: steady,
            ..Default::default()
        }
    }

    #[test]
    fn an_alarm_entering_alarm_during_the_deployment_fails_it() {
        let d = deployment(100.0, None);
        let alarms = vec![
            ("ok".to_string(), AlarmState::Ok, 50.0),
            ("high".to_string(), AlarmState::Alarm, 130.0),
        ];
        assert_eq!(
            verdict(&d, &alarms, 300.0, 140.0),
            Verdict::Failed(vec!["high".into()])
        );
        // Even when steady and baked: an alarm fails it first.
        let d = deployment(100.0, Some(110.0));
        assert_eq!(
            verdict(&d, &alarms, 10.0, 500.0),
            Verdict::Failed(vec!["high".into()])
        );
    }

    #[test]
    fn an_alarm_already_in_alarm_before_the_deployment_does_not_fail_it() {
        // (So the rollback deployment that follows a failure is not failed by the same alarm.)
        let d = deployment(100.0, Some(120.0));
        let alarms = vec![("high".to_string(), AlarmState::Alarm, 90.0)];
        assert_eq!(verdict(&d, &alarms, 60.0, 150.0), Verdict::Wait);
        assert_eq!(verdict(&d, &alarms, 60.0, 180.0), Verdict::Complete);
    }

    #[test]
    fn completes_only_after_the_bake_time_of_steady_state() {
        let alarms = vec![("a".to_string(), AlarmState::InsufficientData, 0.0)];
        assert_eq!(
            verdict(&deployment(0.0, None), &alarms, 60.0, 1000.0),
            Verdict::Wait
        );
        assert_eq!(
            verdict(&deployment(0.0, Some(10.0)), &alarms, 60.0, 69.0),
            Verdict::Wait
        );
        assert_eq!(
            verdict(&deployment(0.0, Some(10.0)), &alarms, 60.0, 70.0),
            Verdict::Complete
        );
    }
}
