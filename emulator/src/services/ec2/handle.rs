//! The typed handle other services use to read EC2 networking: `registry.handle::<Ec2>()`.

use super::instances::Instance;
use super::security_groups::SecurityGroup;
use super::state::{State, Subnet, Vpc};
use crate::protocol::codes;
use crate::protocol::AwsError;
use std::sync::Arc;

/// Read access to VPCs, subnets and security groups of an (account, region). Every call first
/// makes sure the default VPC exists, as the EC2 API does.
pub struct Ec2 {
    state: Arc<State>,
}

impl Ec2 {
    pub fn new(state: Arc<State>) -> Ec2 {
        Ec2 { state }
    }

    /// A subnet by id (its VPC, Availability Zone and CIDR are fields).
    pub fn subnet(
        &self,
        account: &str,
        region: &str,
        subnet_id: &str,
    ) -> Result<Option<Subnet>, AwsError> {
        self.state.ensure_defaults(account, region)?;
        Ok(self.state.subnet(account, region, subnet_id))
    }

    /// A security group by id.
    pub fn security_group(
        &self,
        account: &str,
        region: &str,
        group_id: &str,
    ) -> Result<Option<SecurityGroup>, AwsError> {
        self.state.ensure_defaults(account, region)?;
        Ok(self.state.security_group(account, region, group_id))
    }

    /// A VPC by id.
    pub fn vpc(&self, account: &str, region: &str, vpc_id: &str) -> Result<Option<Vpc>, AwsError> {
        self.state.ensure_defaults(account, region)?;
        Ok(self.state.vpc(account, region, vpc_id))
    }

    /// The default VPC, unless it was deleted.
    pub fn default_vpc(&self, account: &str, region: &str) -> Result<Option<Vpc>, AwsError> {
        self.state.ensure_defaults(account, region)?;
        Ok(self.state.default_vpc(account, region))
    }

    /// The default subnets (one per Availability Zone), in zone order.
    pub fn default_subnets(&self, account: &str, region: &str) -> Result<Vec<Subnet>, AwsError> {
        self.state.ensure_defaults(account, region)?;
        let mut subnets: Vec<Subnet> = self
            .state
            .subnets(account, region)
            .into_iter()
            .filter(|s| s.default_for_az)
            .collect();
        subnets.sort_by(|a, b| a.availability_zone.cmp(&b.availability_zone));
        Ok(subnets)
    }

    /// The "default" security group of a VPC.
    pub fn default_security_group(
        &self,
        account: &str,
        region: &str,
        vpc_id: &str,
    ) -> Result<Option<SecurityGroup>, AwsError> {
        self.state.ensure_defaults(account, region)?;
        Ok(self
            .state
            .security_groups(account, region)
            .into_iter()
            .find(|g| g.vpc_id == vpc_id && g.group_name == "default"))
    }

    /// Every EC2 instance of every account and region as it is at `now` (terminated ones
    /// while they stay describable).
    /// Whether RunInstances would launch this AMI id (a built-in AMI, an image the account
    /// registered, or any id under `--accept-any-ami`).
    pub fn image_known(&self, account: &str, region: &str, image_id: &str) -> bool {
        self.state
            .image_architecture(account, region, image_id, "x86_64")
            .is_ok()
    }

    pub fn all_instances(&self, now: f64) -> Vec<Instance> {
        self.state.all_instances(now)
    }

    /// Launches instances as RunInstances does (LaunchTemplate, SubnetId, TagSpecifications,
    /// InstanceMarketOptions …), for EC2 Auto Scaling. Errors are EC2's.
    pub fn launch(
        &self,
        ctx: &crate::services::Ctx,
        input: serde_json::Value,
        system_tags: &super::filters::Tags,
    ) -> Result<Vec<Instance>, AwsError> {
        super::instances::launch(&self.state, ctx, input, system_tags)
    }

    /// Terminates instances (already terminating or terminated ones are left as they are).
    pub fn terminate(&self, ctx: &crate::services::Ctx, ids: &[String]) -> Result<(), AwsError> {
        if ids.is_empty() {
            return Ok(());
        }
        super::instances::terminate_instances(
            &self.state,
            ctx,
            serde_json::json!({ "InstanceIds": ids }),
        )
        .map(|_| ())
    }

    /// The instances of an (account, region) at `now`.
    pub fn instances(&self, account: &str, region: &str, now: f64) -> Vec<Instance> {
        self.state.instances(account, region, now)
    }

    /// A launch template by id or name, with EC2's errors.
    pub fn launch_template(
        &self,
        account: &str,
        region: &str,
        id: Option<&str>,
        name: Option<&str>,
    ) -> Result<super::launch_templates::LaunchTemplate, AwsError> {
        self.state.find_launch_template(account, region, id, name)
    }

    /// A Spot interruption notice for a running Spot instance: it is terminated two emulated
    /// minutes later. Returns the instance with `interruption_at` set.
    pub fn interrupt_spot(
        &self,
        account: &str,
        region: &str,
        instance_id: &str,
        now: f64,
    ) -> Result<Instance, AwsError> {
        let key = super::instances::instance_key(account, region, instance_id);
        let out = self.state.rows.transact(|t| {
            let Some(super::state::Row::Instance(stored)) = t.get(&key).cloned() else {
                return Err(AwsError::new(
                    codes::ec2::InvalidInstanceID_NotFound,
                    format!("The instance ID '{instance_id}' does not exist"),
                ));
            };
            let mut i = stored.at(now);
            if i.instance_lifecycle.as_deref() != Some("spot") {
                return Err(AwsError::new(
                    codes::common::InvalidParameterValue,
                    format!("The instance {instance_id} is not a Spot instance"),
                ));
            }
            if i.state != "running" {
                return Err(AwsError::new(
                    codes::ec2::IncorrectInstanceState,
                    format!("The instance {instance_id} is not running"),
                ));
            }
            i.interruption_at.get_or_insert(now + 120.0);
            t.put(&key, super::state::Row::Instance(Box::new(i.clone())));
            Ok(i)
        })?;
        self.state.instance_events.notify_one();
        Ok(out)
    }

    /// The machine an ECS agent registers from: a known instance gets its host loopback
    /// address, an unknown one (an identity document only) is recorded as a running instance.
    pub fn machine_for_agent(
        &self,
        ctx: &crate::services::Ctx,
        host: super::AgentHost,
    ) -> Result<super::Machine, AwsError> {
        self.state.machine_for_agent(ctx, host)
    }

    /// Where an instance target's ports are published: the instance's host loopback address
    /// once an ECS agent registered from it, else 127.0.0.1.
    pub fn target_address(&self, account: &str, region: &str, instance_id: &str) -> String {
        self.state
            .host_address(account, region, instance_id)
            .unwrap_or_else(|| "127.0.0.1".into())
    }

    /// Whether an instance exists and is neither terminated nor terminating.
    pub fn instance_alive(&self, account: &str, region: &str, instance_id: &str, now: f64) -> bool {
        self.state.instances(account, region, now).iter().any(|i| {
            i.instance_id == instance_id && i.state != "terminated" && i.state != "shutting-down"
        })
    }

    /// Wakes a waiter when instances are launched, stopped, started or terminated.
    pub fn instance_events(&self) -> &tokio::sync::Notify {
        &self.state.instance_events
    }
}
