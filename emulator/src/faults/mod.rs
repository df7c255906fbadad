//! Faults for teaching and testing: an instance stopped or terminated, an Availability Zone
//! down, a Spot interruption, a task's container killed, a load balancer target blackholed or
//! slowed, the registry paused.
//!
//! Each fault is a row of `emulator.faults` (so `POST /_emulator/reset` drops it with the rest
//! of the state, and the dashboard sees it change) and acts in one of two ways:
//! - once, through the same code paths as the AWS APIs (StopInstances, the task agent seeing a
//!   container die, ECS stopping tasks with its own reasons);
//! - for as long as it exists, through [`network::Network`], the snapshot the load balancer data
//!   plane, the instance agent and the registry consult (`Faults::refresh` rebuilds it on
//!   every change and every second, and keeps the agents of a downed AZ disconnected).
//!
//! Healing (`DELETE /_emulator/faults/<id>`, `ecs-emulator fault heal <id>`) removes the row and
//! undoes what can be undone: a stopped instance starts again, disconnected agents reconnect,
//! targets answer again, the registry serves again. Terminations, kills and interruptions are
//! events: healing only forgets them.

pub mod actions;
pub mod api;
pub mod cli;
pub mod network;

use crate::services::ecs::{ContainerInstance, Ecs};
use crate::store::{Store, Table};
use network::{Effect, Network, Rule};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

pub use api::{gate_registry, router};

/// What a fault does, with what it was given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Kind {
    #[serde(rename_all = "camelCase")]
    InstanceStop {
        instance_id: String,
        /// Whether an EC2 instance row exists (StopInstances/StartInstances act on it); else
        /// the container instance was registered through the API and the fault acts on ECS.
        ec2_backed: bool,
    },
    #[serde(rename_all = "camelCase")]
    InstanceTerminate {
        instance_id: String,
        ec2_backed: bool,
    },
    #[serde(rename_all = "camelCase")]
    AzDown {
        availability_zone: String,
    },
    #[serde(rename_all = "camelCase")]
    SpotInterruption {
        #[serde(default)]
        instance_id: Option<String>,
        #[serde(default)]
        task_arn: Option<String>,
    },
    #[serde(rename_all = "camelCase")]
    TaskKill {
        task_arn: String,
        containers: Vec<String>,
    },
    #[serde(rename_all = "camelCase")]
    TargetBlackhole {
        target: String,
    },
    #[serde(rename_all = "camelCase")]
    TargetSlow {
        target: String,
        delay_ms: u64,
    },
    RegistryPause,
}

impl Kind {
    pub fn name(&self) -> &'static str {
        match self {
            Kind::InstanceStop { .. } => "instance-stop",
            Kind::InstanceTerminate { .. } => "instance-terminate",
            Kind::AzDown { .. } => "az-down",
            Kind::SpotInterruption { .. } => "spot-interruption",
            Kind::TaskKill { .. } => "task-kill",
            Kind::TargetBlackhole { .. } => "target-blackhole",
            Kind::TargetSlow { .. } => "target-slow",
            Kind::RegistryPause => "registry-pause",
        }
    }

    /// Whether it lasts until healed (the others happened once).
    pub fn lasting(&self) -> bool {
        matches!(
            self,
            Kind::InstanceStop { .. }
                | Kind::AzDown { .. }
                | Kind::TargetBlackhole { .. }
                | Kind::TargetSlow { .. }
                | Kind::RegistryPause
        )
    }

    /// One line for people: the dashboard, `ecs-emulator status`, the CLI.
    pub fn describe(&self) -> String {
        match self {
            Kind::InstanceStop { instance_id, .. } => format!("instance {instance_id} stopped"),
            Kind::InstanceTerminate { instance_id, .. } => {
                format!("instance {instance_id} terminated")
            }
            Kind::AzDown { availability_zone } => {
                format!("Availability Zone {availability_zone} down")
            }
            Kind::SpotInterruption {
                instance_id,
                task_arn,
            } => format!(
                "Spot interruption of {}",
                instance_id
                    .as_deref()
                    .or(task_arn.as_deref())
                    .unwrap_or("?")
            ),
            Kind::TaskKill {
                task_arn,
                containers,
            } => format!(
                "container {} of task {} killed",
                containers.join(", "),
                task_arn.rsplit('/').next().unwrap_or(task_arn)
            ),
            Kind::TargetBlackhole { target } => format!("target {target} blackholed"),
            Kind::TargetSlow { target, delay_ms } => {
                format!("target {target} slowed by {delay_ms} ms")
            }
            Kind::RegistryPause => "registry paused".into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Fault {
    pub id: String,
    #[serde(flatten)]
    pub kind: Kind,
    pub account: String,
    pub region: String,
    /// Emulator time (epoch seconds).
    pub created_at: f64,
    /// What it did, a sentence each.
    pub effects: Vec<String>,
    /// Container instance rows (store keys) this fault disconnected; reconnected on heal.
    #[serde(default)]
    pub disconnected: Vec<String>,
}

impl Fault {
    pub fn scope(&self) -> String {
        format!("{}/{}/", self.account, self.region)
    }

    /// The JSON `GET /_emulator/faults` and `GET /_emulator/state` show.
    pub fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        if let Some(o) = v.as_object_mut() {
            o.remove("disconnected");
            o.insert("summary".into(), self.kind.describe().into());
            o.insert("lasting".into(), self.kind.lasting().into());
        }
        v
    }
}

pub struct Faults {
    table: Arc<Table<Fault>>,
    network: Arc<Network>,
    /// Serialises refreshes (they write container instance rows).
    refreshing: parking_lot::Mutex<()>,
}

impl Faults {
    pub fn new(store: &Arc<Store>) -> Arc<Faults> {
        Arc::new(Faults {
            table: Table::open(store, "emulator.faults"),
            network: Arc::new(Network::default()),
            refreshing: parking_lot::Mutex::new(()),
        })
    }

    /// The data planes' view (provided to the service registry as a typed handle).
    pub fn network(&self) -> Arc<Network> {
        self.network.clone()
    }

    /// Every fault, oldest first.
    pub fn list(&self) -> Vec<Fault> {
        let mut all: Vec<Fault> = self.table.scan("").into_iter().map(|(_, f)| f).collect();
        all.sort_by(|a, b| a.created_at.total_cmp(&b.created_at).then(a.id.cmp(&b.id)));
        all
    }

    pub fn get(&self, id: &str) -> Option<Fault> {
        self.table.get(id)
    }

    pub(crate) fn insert(&self, fault: &Fault) -> Result<(), crate::protocol::AwsError> {
        Ok(self.table.put(&fault.id, fault.clone())?)
    }

    pub(crate) fn remove(&self, id: &str) -> Result<Option<Fault>, crate::protocol::AwsError> {
        Ok(self.table.remove(id)?)
    }

    /// Rebuilds the data planes' view from the faults and ECS's rows, and keeps the agents of
    /// downed zones and stopped API-registered instances disconnected.
    pub fn refresh(&self, ecs: Option<&Ecs>) {
        let _guard = self.refreshing.lock();
        let faults = self.list();
        let mut rules = Vec::new();
        let mut held = HashSet::new();
        let mut paused = None;
        let mut disconnect: Vec<(String, String)> = Vec::new();
        for f in &faults {
            let scope = f.scope();
            let instances = || -> Vec<(String, ContainerInstance)> {
                ecs.map(|e| e.instances.scan(&scope))
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|(_, c)| c.status != "INACTIVE")
                    .collect()
            };
            match &f.kind {
                Kind::AzDown { availability_zone } => {
                    let down: Vec<(String, ContainerInstance)> = instances()
                        .into_iter()
                        .filter(|(_, c)| &c.availability_zone == availability_zone)
                        .collect();
                    let arns: HashSet<&str> = down.iter().map(|(_, c)| c.arn.as_str()).collect();
                    for (key, c) in &down {
                        held.insert(c.ec2_instance_id.clone());
                        if let Ok(ip) = c.host_ip.parse::<IpAddr>() {
                            rules.push(Rule {
                                ip,
                                port: None,
                                effect: Effect::Blackhole,
                            });
                        }
                        if c.agent_connected {
                            disconnect.push((f.id.clone(), key.clone()));
                        }
                    }
                    // awsvpc tasks there have addresses of their own.
                    for (_, t) in ecs.map(|e| e.tasks.scan(&scope)).unwrap_or_default() {
                        let here = t
                            .container_instance_arn
                            .as_deref()
                            .is_some_and(|a| arns.contains(a));
                        if !here || t.is_stopped() {
                            continue;
                        }
                        for ip in task_ips(&t.attachments) {
                            rules.push(Rule {
                                ip,
                                port: None,
                                effect: Effect::Blackhole,
                            });
                        }
                    }
                }
                Kind::InstanceStop {
                    instance_id,
                    ec2_backed,
                } => {
                    held.insert(instance_id.clone());
                    if !ec2_backed {
                        for (key, c) in instances() {
                            if &c.ec2_instance_id == instance_id && c.agent_connected {
                                disconnect.push((f.id.clone(), key));
                            }
                        }
                    }
                }
                Kind::TargetBlackhole { target } => {
                    rules.extend(target_rules(target, &instances(), Effect::Blackhole));
                }
                Kind::TargetSlow { target, delay_ms } => rules.extend(target_rules(
                    target,
                    &instances(),
                    Effect::Delay(Duration::from_millis(*delay_ms)),
                )),
                Kind::RegistryPause => paused = Some(f.id.clone()),
                _ => {}
            }
        }
        self.network.set(rules, held, paused);
        let Some(ecs) = ecs else { return };
        if disconnect.is_empty() {
            return;
        }
        for (fault, key) in &disconnect {
            let _ = ecs
                .instances
                .transact::<_, crate::store::StoreError, _>(|t| {
                    if let Some(c) = t.get_mut(key) {
                        c.agent_connected = false;
                        c.version += 1;
                    }
                    Ok(())
                });
            let _ = self.table.transact::<_, crate::store::StoreError, _>(|t| {
                if let Some(f) = t.get_mut(fault) {
                    if !f.disconnected.contains(key) {
                        f.disconnected.push(key.clone());
                    }
                }
                Ok(())
            });
            crate::feedback!(
                "fault {fault}: container instance {} disconnected",
                key.rsplit('/').next().unwrap_or(key)
            );
        }
        ecs.wake_agent();
        ecs.wake_scheduler();
    }

    /// Keeps the view fresh: on every committed change and every second (instances and tasks
    /// come and go in a downed zone).
    pub async fn run(
        self: Arc<Self>,
        ecs: Option<Arc<Ecs>>,
        mut changes: tokio::sync::watch::Receiver<u64>,
    ) {
        loop {
            self.refresh(ecs.as_deref());
            tokio::select! {
                r = changes.changed() => if r.is_err() { return },
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }
}

/// The IPv4 addresses of an awsvpc task's ENI attachments.
fn task_ips(attachments: &[serde_json::Value]) -> Vec<IpAddr> {
    attachments
        .iter()
        .flat_map(|a| a["details"].as_array().cloned().unwrap_or_default())
        .filter(|d| d["name"] == "privateIPv4Address")
        .filter_map(|d| d["value"].as_str().and_then(|v| v.parse().ok()))
        .collect()
}

/// The addresses a target names: an IP, or the loopback address of the container instance on
/// an EC2 instance id (where its bridge-mode host ports are published).
fn target_rules(
    target: &str,
    instances: &[(String, ContainerInstance)],
    effect: Effect,
) -> Vec<Rule> {
    let (id, port) = network::split_target(target);
    if let Ok(ip) = id.parse::<IpAddr>() {
        return vec![Rule { ip, port, effect }];
    }
    instances
        .iter()
        .filter(|(_, c)| c.ec2_instance_id == id)
        .filter_map(|(_, c)| c.host_ip.parse::<IpAddr>().ok())
        .map(|ip| Rule { ip, port, effect })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_round_trip_through_the_store_shape() {
        let f = Fault {
            id: "fault-1".into(),
            kind: Kind::TargetSlow {
                target: "i-1:80".into(),
                delay_ms: 500,
            },
            account: "000000000000".into(),
            region: "us-east-1".into(),
            created_at: 1.0,
            effects: vec![],
            disconnected: vec![],
        };
        let v = serde_json::to_value(&f).expect("json");
        assert_eq!(v["kind"], "target-slow");
        assert_eq!(v["delayMs"], 500);
        let back: Fault = serde_json::from_value(v).expect("back");
        assert_eq!(back.kind, f.kind);
        let shown = f.to_json();
        assert_eq!(shown["summary"], "target i-1:80 slowed by 500 ms");
        assert_eq!(shown["lasting"], true);
        let pause: Fault = serde_json::from_value(serde_json::json!({
            "id": "fault-2", "kind": "registry-pause", "account": "a", "region": "r",
            "createdAt": 2.0, "effects": []
        }))
        .expect("registry-pause");
        assert_eq!(pause.kind, Kind::RegistryPause);
    }

    #[test]
    fn awsvpc_addresses_come_from_the_eni_details() {
        let a = serde_json::json!([{"type": "ElasticNetworkInterface", "details": [
            {"name": "subnetId", "value": "subnet-1"},
            {"name": "privateIPv4Address", "value": "10.0.1.7"}]}]);
        let ips = task_ips(a.as_array().expect("array"));
        assert_eq!(ips, vec!["10.0.1.7".parse::<IpAddr>().expect("ip")]);
    }
}
