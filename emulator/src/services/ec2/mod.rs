//! ec2: the default VPC, VPCs, subnets, security groups, tags, Availability Zones, regions,
//! the ECS-optimized AMIs and virtual instances.
//!
//! State lives in one table ([`state::State`]); each resource area has its own module. Other
//! services read networking through the [`Ec2`] handle.

pub mod cidr;
pub mod filters;
pub mod handle;
pub mod images;
pub mod instance_types;
pub mod instances;
pub mod launch_templates;
pub mod machines;
pub mod regions;
pub mod security_groups;
pub mod state;
pub mod subnets;
pub mod tags;
pub mod vpcs;

#[cfg(test)]
mod tests;

pub use handle::Ec2;
pub use images::{
    ami_for_parameter, find_ami, EcsAmi, AMAZON_LINUX_AMIS, AMAZON_LINUX_LATEST,
    AMAZON_LINUX_PARAMETERS, AMAZON_OWNER_ID, ECS_OPTIMIZED_AMIS,
};
pub use instances::Instance;
pub use machines::{AgentHost, Machine};
pub use security_groups::{SecurityGroup, SgRule};
pub use state::{Subnet, Vpc};

use super::{Deps, Registry};
use std::sync::Arc;

pub fn register(r: &mut Registry, deps: &Deps) -> Arc<Ec2> {
    let mut state = state::State::new(&deps.store);
    state.accept_any_ami = deps.config.accept_any_ami;
    let state = Arc::new(state);
    let ec2 = Arc::new(Ec2::new(state.clone()));
    r.provide(ec2.clone());
    let s = &state;
    r.sync("ec2", "DescribeVpcs", s, vpcs::describe_vpcs);
    r.sync("ec2", "CreateVpc", s, vpcs::create_vpc);
    r.sync("ec2", "DeleteVpc", s, vpcs::delete_vpc);
    r.sync("ec2", "DescribeSubnets", s, subnets::describe_subnets);
    r.sync("ec2", "CreateSubnet", s, subnets::create_subnet);
    r.sync("ec2", "DeleteSubnet", s, subnets::delete_subnet);
    r.sync(
        "ec2",
        "DescribeSecurityGroups",
        s,
        security_groups::describe_security_groups,
    );
    r.sync(
        "ec2",
        "CreateSecurityGroup",
        s,
        security_groups::create_security_group,
    );
    r.sync(
        "ec2",
        "DeleteSecurityGroup",
        s,
        security_groups::delete_security_group,
    );
    r.sync(
        "ec2",
        "AuthorizeSecurityGroupIngress",
        s,
        security_groups::authorize_ingress,
    );
    r.sync(
        "ec2",
        "AuthorizeSecurityGroupEgress",
        s,
        security_groups::authorize_egress,
    );
    r.sync(
        "ec2",
        "RevokeSecurityGroupIngress",
        s,
        security_groups::revoke_ingress,
    );
    r.sync(
        "ec2",
        "RevokeSecurityGroupEgress",
        s,
        security_groups::revoke_egress,
    );
    r.sync(
        "ec2",
        "DescribeSecurityGroupRules",
        s,
        security_groups::describe_security_group_rules,
    );
    r.sync(
        "ec2",
        "DescribeAvailabilityZones",
        s,
        regions::describe_availability_zones,
    );
    r.sync("ec2", "DescribeRegions", s, regions::describe_regions);
    r.sync(
        "ec2",
        "DescribeAccountAttributes",
        s,
        regions::describe_account_attributes,
    );
    r.sync("ec2", "DescribeImages", s, images::describe_images);
    r.sync("ec2", "RegisterImage", s, images::register_image);
    r.sync("ec2", "DeregisterImage", s, images::deregister_image);
    r.sync("ec2", "CreateTags", s, tags::create_tags);
    r.sync("ec2", "DeleteTags", s, tags::delete_tags);
    r.sync("ec2", "DescribeTags", s, tags::describe_tags);
    instances::register(r, s);
    launch_templates::register(r, s);
    ec2
}
