//! The virtual machine behind a container instance. EC2 is the one owner of an instance's id,
//! type, Availability Zone, subnet, private IP and host loopback address: ECS asks here when an
//! agent registers (and records nothing of its own about the machine but copies), ELB and ELBv2
//! ask here where an instance target's ports are published.

use super::instance_types;
use super::instances::{instance_key, launch, Instance, PENDING_S};
use super::state::{Row, State};
use super::ECS_OPTIMIZED_AMIS;
use crate::protocol::codes;
use crate::protocol::AwsError;
use crate::services::Ctx;
use serde_json::json;

/// What an ECS agent says about the machine it runs on (RegisterContainerInstance: the instance
/// identity document, or the instance agent for instances RunInstances launched).
#[derive(Debug, Clone, Default)]
pub struct AgentHost {
    /// The EC2 instance id, when known (the instance agent, or the document's instanceId).
    pub instance_id: Option<String>,
    pub instance_type: String,
    pub availability_zone: String,
    pub private_ip: Option<String>,
    pub image_id: Option<String>,
    /// The loopback address a container instance of a data dir written before EC2 owned it
    /// already uses (kept on open so running containers keep their address).
    pub host_ip: Option<String>,
}

/// The EC2 side of a container instance.
#[derive(Debug, Clone, PartialEq)]
pub struct Machine {
    pub instance_id: String,
    pub instance_type: String,
    pub availability_zone: String,
    pub subnet_id: String,
    pub vpc_id: String,
    pub private_ip: String,
    pub host_ip: String,
}

impl Machine {
    fn of(i: &Instance) -> Machine {
        Machine {
            instance_id: i.instance_id.clone(),
            instance_type: i.instance_type.clone(),
            availability_zone: i.availability_zone.clone(),
            subnet_id: i.subnet_id.clone(),
            vpc_id: i.vpc_id.clone(),
            private_ip: i.private_ip.clone(),
            host_ip: i.host_ip.clone().unwrap_or_default(),
        }
    }
}

/// A fresh loopback address in 127.16.0.0/12 (never 127.0.0.1), so two instances can both publish
/// port 80 as two hosts would.
pub fn random_loopback() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    format!(
        "127.{}.{}.{}",
        rng.random_range(16..32),
        rng.random_range(0..256),
        rng.random_range(2..255)
    )
}

impl State {
    /// The machine an ECS agent registers from. An instance EC2 knows gets its host loopback
    /// address (once, kept for good); an unknown one (RegisterContainerInstance with only an
    /// identity document) is recorded as a running instance of the document's type in the default
    /// subnet of its zone, as if RunInstances had launched it.
    pub fn machine_for_agent(&self, ctx: &Ctx, host: AgentHost) -> Result<Machine, AwsError> {
        let (account, region) = (&ctx.account, &ctx.region);
        if let Some(id) = &host.instance_id {
            if let Some(m) = self.give_host_ip(account, region, id, host.host_ip.as_deref())? {
                return Ok(m);
            }
        }
        let launched = self.record(ctx, &host)?;
        let key = instance_key(account, region, &launched.instance_id);
        let wanted_id = host
            .instance_id
            .clone()
            .filter(|id| !self.rows.contains(&instance_key(account, region, id)));
        let host_ip = host.host_ip.clone().unwrap_or_else(random_loopback);
        let out = self.rows.transact(|t| {
            let Some(Row::Instance(stored)) = t.get(&key).cloned() else {
                return Err(AwsError::internal("the recorded instance vanished"));
            };
            let mut i = *stored;
            // Running from the start: the agent that registers is already up.
            i.state = "running".into();
            i.state_since = ctx.now - PENDING_S;
            i.host_ip = Some(host_ip.clone());
            i.recorded_from_agent = true;
            if let Some(id) = &wanted_id {
                t.remove(&key);
                i.instance_id = id.clone();
            }
            t.put(
                &instance_key(account, region, &i.instance_id),
                Row::Instance(Box::new(i.clone())),
            );
            Ok(Machine::of(&i))
        })?;
        Ok(out)
    }

    /// Gives a known instance its host address if it has none; None when EC2 does not know it.
    fn give_host_ip(
        &self,
        account: &str,
        region: &str,
        id: &str,
        keep: Option<&str>,
    ) -> Result<Option<Machine>, AwsError> {
        let key = instance_key(account, region, id);
        self.rows.transact(|t| {
            let Some(Row::Instance(stored)) = t.get(&key).cloned() else {
                return Ok(None);
            };
            let mut i = *stored;
            if i.host_ip.is_none() {
                i.host_ip = Some(keep.map(str::to_string).unwrap_or_else(random_loopback));
                t.put(&key, Row::Instance(Box::new(i.clone())));
            }
            Ok(Some(Machine::of(&i)))
        })
    }

    /// Launches the instance an identity document describes (RunInstances' own path, so it gets
    /// a subnet, a private IP and the default security group). The zone and address are used when
    /// EC2 can honour them, else left to EC2, as the document is not checked by ECS either.
    fn record(&self, ctx: &Ctx, host: &AgentHost) -> Result<Instance, AwsError> {
        let itype = instance_types::lookup(&host.instance_type).ok_or_else(|| {
            AwsError::new(
                codes::common::InvalidParameterValue,
                format!("Invalid value '{}' for InstanceType.", host.instance_type),
            )
        })?;
        let image = host
            .image_id
            .clone()
            .filter(|id| {
                super::find_ami(&ctx.region, id).is_some_and(|a| itype.supports(a.architecture))
            })
            .or_else(|| {
                ECS_OPTIMIZED_AMIS
                    .iter()
                    .find(|a| itype.supports(a.architecture))
                    .map(|a| a.image_id(&ctx.region))
            })
            .unwrap_or_default();
        let base = json!({
            "ImageId": image,
            "InstanceType": itype.name,
            "MinCount": 1,
            "MaxCount": 1,
        });
        let mut attempts = Vec::new();
        let mut full = base.clone();
        full["Placement"] = json!({"AvailabilityZone": host.availability_zone});
        if let Some(ip) = &host.private_ip {
            let mut with_ip = full.clone();
            with_ip["PrivateIpAddress"] = json!(ip);
            attempts.push(with_ip);
        }
        attempts.push(full);
        attempts.push(base);
        let mut last = None;
        for input in attempts {
            match launch(self, ctx, input, &Default::default()) {
                Ok(mut v) if !v.is_empty() => return Ok(v.remove(0)),
                Ok(_) => {}
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| AwsError::internal("no instance recorded")))
    }

    /// Where an instance's container ports are published: its host loopback address, once an
    /// ECS agent registered from it.
    pub fn host_address(&self, account: &str, region: &str, id: &str) -> Option<String> {
        match self.rows.get(&instance_key(account, region, id)) {
            Some(Row::Instance(i)) => i.host_ip.clone(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::Deps;

    fn doc(id: Option<&str>) -> AgentHost {
        AgentHost {
            instance_id: id.map(str::to_string),
            instance_type: "m5.large".into(),
            availability_zone: "us-east-1b".into(),
            private_ip: None,
            image_id: None,
            host_ip: None,
        }
    }

    #[test]
    fn an_identity_document_records_a_running_instance() {
        let s = State::new(&Deps::for_tests().store);
        let ctx = Ctx::for_tests();
        let m = s
            .machine_for_agent(&ctx, doc(Some("i-0123456789abcdef0")))
            .expect("recorded");
        assert_eq!(m.instance_id, "i-0123456789abcdef0");
        assert_eq!(m.availability_zone, "us-east-1b");
        assert!(m.host_ip.starts_with("127.") && m.host_ip != "127.0.0.1");
        assert!(!m.subnet_id.is_empty() && !m.private_ip.is_empty());
        let listed = s.instances(&ctx.account, &ctx.region, ctx.now);
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].state, "running");
        assert_eq!(listed[0].instance_type, "m5.large");
        // The same machine registering again keeps its address.
        let again = s
            .machine_for_agent(&ctx, doc(Some("i-0123456789abcdef0")))
            .expect("known");
        assert_eq!(again, m);
        assert_eq!(
            s.host_address(&ctx.account, &ctx.region, &m.instance_id),
            Some(m.host_ip.clone())
        );
        // No id: EC2 picks one.
        let other = s.machine_for_agent(&ctx, doc(None)).expect("recorded");
        assert!(other.instance_id.starts_with("i-") && other.instance_id != m.instance_id);
        assert_eq!(s.instances(&ctx.account, &ctx.region, ctx.now).len(), 2);
    }

    #[test]
    fn an_old_loopback_address_is_kept() {
        let s = State::new(&Deps::for_tests().store);
        let ctx = Ctx::for_tests();
        let mut host = doc(Some("i-00000000000000001"));
        host.host_ip = Some("127.20.1.2".into());
        host.availability_zone = "nowhere-1z".into();
        let m = s.machine_for_agent(&ctx, host).expect("recorded");
        assert_eq!(m.host_ip, "127.20.1.2");
        assert_eq!(m.instance_id, "i-00000000000000001");
    }
}
