//! ECS capacity providers on EC2 Auto Scaling groups, on the emulator clock (every emulated
//! second):
//!
//! - tasks waiting in PROVISIONING for a provider's capacity are placed as soon as one of its
//!   instances has room, and stop after [`PROVISIONING_TIMEOUT_S`];
//! - managed scaling: once a minute the `AWS/ECS/ManagedScaling` `CapacityProviderReservation`
//!   metric (M / N × 100: M instances needed for the running and waiting tasks, N instances in the
//!   group) goes to CloudWatch, whose alarms run the target tracking policy ECS put on the group;
//! - managed termination protection: instances running non-daemon tasks are protected from
//!   scale-in, empty ones are not.

use crate::clock::Clock;
use crate::services::autoscaling::AutoScaling;
use crate::services::cloudwatch::{CloudWatch, Datum};
use crate::services::ecs::capacity_providers::CapacityProvider;
use crate::services::ecs::Ecs;
use crate::services::Ctx;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Emulated seconds a task may wait for capacity before ECS stops it.
pub const PROVISIONING_TIMEOUT_S: f64 = 1800.0;

pub struct CapacityController {
    ecs: Arc<Ecs>,
    asg: Arc<AutoScaling>,
    cw: Option<Arc<CloudWatch>>,
    clock: Clock,
    /// When each provider's metric was last published (emulator time).
    published: parking_lot::Mutex<HashMap<String, f64>>,
}

impl CapacityController {
    pub fn new(
        ecs: Arc<Ecs>,
        asg: Arc<AutoScaling>,
        cw: Option<Arc<CloudWatch>>,
        clock: Clock,
    ) -> CapacityController {
        CapacityController {
            ecs,
            asg,
            cw,
            clock,
            published: parking_lot::Mutex::new(HashMap::new()),
        }
    }

    pub async fn run(self) {
        let pause = self
            .clock
            .real(Duration::from_secs(1))
            .clamp(Duration::from_millis(20), Duration::from_secs(1));
        loop {
            self.pass(self.clock.now());
            tokio::time::sleep(pause).await;
        }
    }

    fn providers(&self) -> Vec<(String, CapacityProvider)> {
        self.ecs.capacity_providers.read(|rows| {
            rows.iter()
                .filter(|(_, p)| p.status == "ACTIVE" && p.cluster.is_some())
                .map(|(k, p)| {
                    let scope = k
                        .strip_suffix(p.name.as_str())
                        .unwrap_or_default()
                        .to_string();
                    (scope, p.clone())
                })
                .collect()
        })
    }

    /// One pass over every provider associated with a cluster (public for tests).
    pub fn pass(&self, now: f64) {
        for (scope, p) in self.providers() {
            let Some(cluster) = p.cluster.clone() else {
                continue;
            };
            self.ecs.place_waiting(&scope, &cluster, &p.name);
            self.expire_waiting(&scope, &cluster, &p, now);
            if p.managed_termination_protection == "ENABLED" {
                self.protect(&scope, &cluster, &p);
            }
            if p.managed_scaling_enabled() {
                self.publish(&scope, &cluster, &p, now);
            }
            if p.managed_draining == "ENABLED" {
                self.drain(&scope, &cluster, &p);
            }
        }
    }

    fn ctx(scope: &str, now: f64) -> Ctx {
        let mut parts = scope.trim_end_matches('/').splitn(2, '/');
        Ctx {
            account: parts.next().unwrap_or_default().to_string(),
            region: parts.next().unwrap_or_default().to_string(),
            request_id: uuid::Uuid::new_v4().to_string(),
            now,
            access_key: None,
        }
    }

    fn expire_waiting(&self, scope: &str, cluster: &str, p: &CapacityProvider, now: f64) {
        let expired = |t: &crate::services::ecs::Task| {
            t.awaiting_capacity
                && t.wanted()
                && t.capacity_provider_name.as_deref() == Some(p.name.as_str())
                && now - t.created_at > PROVISIONING_TIMEOUT_S
        };
        let any = self.ecs.live_tasks(scope, cluster).iter().any(expired);
        if any {
            let reason = format!(
                "Task did not start: capacity provider {} did not provide capacity within {} minutes.",
                p.name,
                PROVISIONING_TIMEOUT_S as i64 / 60
            );
            let _ = self.ecs.stop_tasks_where(
                &Self::ctx(scope, now),
                cluster,
                expired,
                "TaskFailedToStart",
                &reason,
            );
        }
    }

    /// Registered CPU and memory of one of the group's instances (its instances' type, else its
    /// launch template's).
    fn instance_size(
        &self,
        scope: &str,
        group: &crate::services::autoscaling::model::Group,
    ) -> (i64, i64) {
        let mut itype = group
            .instances
            .values()
            .next()
            .map(|m| m.instance_type.clone());
        if itype.is_none() {
            if let Some(lt) = &group.launch_template {
                let ec2 = &self.asg.ec2;
                let (account, region) = {
                    let c = Self::ctx(scope, 0.0);
                    (c.account, c.region)
                };
                itype = ec2
                    .launch_template(&account, &region, Some(&lt.id), None)
                    .ok()
                    .and_then(|t| {
                        t.version(Some(&lt.version)).ok().and_then(|v| {
                            v.data
                                .get("InstanceType")
                                .and_then(|x| x.as_str())
                                .map(str::to_string)
                        })
                    });
            }
        }
        let t = itype
            .as_deref()
            .and_then(crate::services::ec2::instance_types::lookup)
            .or_else(|| crate::services::ec2::instance_types::lookup("m5.large"));
        t.map(|t| (t.registered_cpu(), t.registered_memory()))
            .unwrap_or((2048, 7680))
    }

    fn publish(&self, scope: &str, cluster: &str, p: &CapacityProvider, now: f64) {
        let Some(cw) = &self.cw else { return };
        let key = format!("{scope}{}", p.name);
        // Measured late in each minute, so the alarm evaluated just after it sees the state
        // after the scaling its previous evaluation caused (a datapoint from before it would
        // make target tracking scale out twice for the same need).
        let minute = (now / 60.0).floor() * 60.0;
        if now - minute < 50.0 {
            return;
        }
        {
            let mut published = self.published.lock();
            if published.get(&key).is_some_and(|t| *t >= minute) {
                return;
            }
            published.insert(key, minute);
        }
        let Ok(group) = self.asg.group(scope, &p.asg_name) else {
            return;
        };
        let (cpu, memory) = self.instance_size(scope, &group);
        let m = self
            .ecs
            .instances_needed(scope, cluster, &p.name, cpu, memory);
        let n = group.capacity();
        self.asg
            .managed_needed
            .lock()
            .insert(format!("{scope}{}", p.asg_name), m);
        let value = if n == 0 {
            if m > 0 {
                200.0
            } else {
                100.0
            }
        } else {
            m as f64 / n as f64 * 100.0
        };
        let c = Self::ctx(scope, now);
        let _ = cw.put_data(
            &c.account,
            &c.region,
            now,
            &[Datum {
                namespace: "AWS/ECS/ManagedScaling".into(),
                metric_name: "CapacityProviderReservation".into(),
                dimensions: vec![
                    ("CapacityProviderName".into(), p.name.clone()),
                    ("ClusterName".into(), cluster.to_string()),
                ],
                value,
                unit: Some("Percent".into()),
                timestamp: now,
            }],
        );
    }

    /// Managed termination protection: protected exactly while running non-daemon tasks.
    fn protect(&self, scope: &str, cluster: &str, p: &CapacityProvider) {
        let tasks = self.ecs.live_tasks(scope, cluster);
        let busy: Vec<String> = tasks
            .iter()
            .filter(|t| {
                !t.group.starts_with("service:") || !self.is_daemon(scope, cluster, &t.group)
            })
            .filter_map(|t| t.ec2_instance_id.clone())
            .collect();
        let Ok(group) = self.asg.group(scope, &p.asg_name) else {
            return;
        };
        let change: Vec<(String, bool)> = group
            .instances
            .values()
            .filter(|m| m.state == "InService")
            .filter_map(|m| {
                let want = busy.contains(&m.id);
                (m.protected != want).then(|| (m.id.clone(), want))
            })
            .collect();
        if change.is_empty() {
            return;
        }
        let _ = self.asg.update_group(scope, &p.asg_name, |g| {
            for (id, want) in &change {
                if let Some(m) = g.instances.get_mut(id) {
                    if m.state == "InService" {
                        m.protected = *want;
                    }
                }
            }
            Ok(())
        });
    }

    /// Managed draining: an instance the group holds in Terminating:Wait on ECS's hook is set
    /// DRAINING (services move their tasks); once no task runs on it the termination goes on.
    fn drain(&self, scope: &str, cluster: &str, p: &CapacityProvider) {
        use crate::services::ecs::capacity_providers::MANAGED_DRAINING_HOOK;
        let Ok(group) = self.asg.group(scope, &p.asg_name) else {
            return;
        };
        let waiting: Vec<String> = group
            .instances
            .values()
            .filter(|m| {
                m.state == "Terminating:Wait"
                    && m.wait
                        .as_ref()
                        .is_some_and(|w| w.hook == MANAGED_DRAINING_HOOK && w.result.is_none())
            })
            .map(|m| m.id.clone())
            .collect();
        if waiting.is_empty() {
            return;
        }
        let tasks = self.ecs.live_tasks(scope, cluster);
        let mut done = Vec::new();
        for id in &waiting {
            self.ecs.drain_ec2_instance(scope, id);
            let busy = tasks
                .iter()
                .any(|t| t.ec2_instance_id.as_deref() == Some(id.as_str()) && !t.is_stopped());
            if !busy {
                done.push(id.clone());
            }
        }
        if done.is_empty() {
            return;
        }
        let _ = self.asg.update_group(scope, &p.asg_name, |g| {
            for id in &done {
                if let Some(w) = g.instances.get_mut(id).and_then(|m| m.wait.as_mut()) {
                    if w.hook == MANAGED_DRAINING_HOOK {
                        w.result = Some("CONTINUE".into());
                    }
                }
            }
            Ok(())
        });
    }

    fn is_daemon(&self, scope: &str, cluster: &str, group: &str) -> bool {
        let name = group.strip_prefix("service:").unwrap_or(group);
        self.ecs
            .services
            .get(&format!("{scope}{cluster}/{name}"))
            .is_some_and(|s| {
                s.scheduling_strategy == crate::services::ecs::model::SchedulingStrategy::Daemon
            })
    }
}
