//! VPCs: DescribeVpcs, CreateVpc, DeleteVpc.

use super::cidr::Cidr;
use super::filters::{
    bool_str, check_ids_with_max, describe, dry_run, err, invalid_value, not_found_ids,
    tags_from_specs, tags_json, Filterable, Tags,
};
use super::security_groups::SecurityGroup;
use super::state::{new_id, scope, sg_key, vpc_key, Row, State, Vpc};
use crate::protocol::codes;
use crate::services::input::Input;
use crate::services::{Ctx, HandlerResult};
use serde_json::{json, Value};

impl Vpc {
    pub fn to_json(&self) -> Value {
        json!({
            "OwnerId": self.owner_id,
            "InstanceTenancy": self.instance_tenancy,
            "CidrBlockAssociationSet": [{
                "AssociationId": self.cidr_association_id,
                "CidrBlock": self.cidr_block,
                "CidrBlockState": {"State": "associated"},
            }],
            "IsDefault": self.is_default,
            "Tags": tags_json(&self.tags),
            "BlockPublicAccessStates": {"InternetGatewayBlockMode": "off"},
            "VpcId": self.vpc_id,
            "State": "available",
            "CidrBlock": self.cidr_block,
            "DhcpOptionsId": self.dhcp_options_id,
        })
    }
}

impl Filterable for Vpc {
    fn filter_values(&self, name: &str) -> Option<Vec<String>> {
        let v = match name {
            "vpc-id" => self.vpc_id.clone(),
            "cidr" | "cidr-block" | "cidr-block-association.cidr-block" => self.cidr_block.clone(),
            "cidr-block-association.association-id" => self.cidr_association_id.clone(),
            "cidr-block-association.state" => "associated".into(),
            "dhcp-options-id" => self.dhcp_options_id.clone(),
            "is-default" | "isDefault" => bool_str(self.is_default),
            "owner-id" => self.owner_id.clone(),
            "state" => "available".into(),
            "instance-tenancy" => self.instance_tenancy.clone(),
            _ => return None,
        };
        Some(vec![v])
    }
    fn tag_map(&self) -> Option<&Tags> {
        Some(&self.tags)
    }
}

pub fn describe_vpcs(state: &State, ctx: &Ctx, input: Value) -> HandlerResult {
    dry_run(&input)?;
    check_ids_with_max(&input, "VpcIds", "vpcIds")?;
    state.ensure_defaults(&ctx.account, &ctx.region)?;
    let vpcs = state.vpcs(&ctx.account, &ctx.region);
    describe(
        vpcs,
        &input,
        "VpcIds",
        (codes::ec2::InvalidVpcID_NotFound, "vpc"),
        "Vpcs",
        |x| x.vpc_id.clone(),
        Vpc::to_json,
    )
}

pub fn create_vpc(state: &State, ctx: &Ctx, input: Value) -> HandlerResult {
    dry_run(&input)?;
    state.ensure_defaults(&ctx.account, &ctx.region)?;
    let Some(cidr_text) = input.str("CidrBlock") else {
        return Err(err(
            codes::ec2::MissingParameter,
            "Either 'cidrBlock' or 'ipv4IpamPoolId' should be provided.",
        ));
    };
    let cidr = Cidr::parse(cidr_text).ok_or_else(|| {
        invalid_value(format!(
            "Value ({cidr_text}) for parameter cidrBlock is invalid. This is not a valid CIDR block."
        ))
    })?;
    if !(16..=28).contains(&cidr.len) || !cidr.is_aligned() {
        return Err(err(
            codes::ec2::InvalidVpc_Range,
            format!("The CIDR '{cidr_text}' is invalid."),
        ));
    }
    let tags = tags_from_specs(&input, "vpc")?;
    let vpc = Vpc {
        vpc_id: new_id("vpc"),
        owner_id: ctx.account.clone(),
        region: ctx.region.clone(),
        cidr_block: cidr.to_string(),
        cidr_association_id: new_id("vpc-cidr-assoc"),
        dhcp_options_id: state
            .default_vpc(&ctx.account, &ctx.region)
            .map(|v| v.dhcp_options_id)
            .unwrap_or_else(|| new_id("dopt")),
        instance_tenancy: input
            .str("InstanceTenancy")
            .unwrap_or("default")
            .to_string(),
        is_default: false,
        tags,
    };
    let limit = 5;
    let sg = SecurityGroup::default_for(&vpc);
    let (account, region) = (&ctx.account, &ctx.region);
    state.rows.transact(|t| {
        let prefix = format!("{}vpc/", scope(account, region));
        if t.keys(&prefix).len() >= limit {
            return Err(err(
                codes::ec2::VpcLimitExceeded,
                "The maximum number of VPCs has been reached.",
            ));
        }
        t.put(
            &vpc_key(account, region, &vpc.vpc_id),
            Row::Vpc(vpc.clone()),
        );
        t.put(
            &sg_key(account, region, &sg.group_id),
            Row::SecurityGroup(sg),
        );
        Ok(())
    })?;
    let mut v = vpc.to_json();
    v["State"] = json!("pending");
    Ok(json!({ "Vpc": v }))
}

pub fn delete_vpc(state: &State, ctx: &Ctx, input: Value) -> HandlerResult {
    dry_run(&input)?;
    state.ensure_defaults(&ctx.account, &ctx.region)?;
    let id = input.str("VpcId").unwrap_or_default().to_string();
    let (account, region) = (&ctx.account, &ctx.region);
    let subnets = state.subnets(account, region);
    let groups = state.security_groups(account, region);
    state.rows.transact(|t| {
        let key = vpc_key(account, region, &id);
        if !t.contains(&key) {
            return Err(not_found_ids(
                codes::ec2::InvalidVpcID_NotFound,
                "vpc",
                std::slice::from_ref(&id),
            ));
        }
        let dependent = subnets.iter().any(|s| s.vpc_id == id)
            || groups
                .iter()
                .any(|g| g.vpc_id == id && g.group_name != "default");
        if dependent {
            return Err(err(
                codes::ec2::DependencyViolation,
                format!("The vpc '{id}' has dependencies and cannot be deleted."),
            ));
        }
        for g in groups.iter().filter(|g| g.vpc_id == id) {
            t.remove(&sg_key(account, region, &g.group_id));
        }
        t.remove(&key);
        Ok(())
    })?;
    Ok(json!({}))
}
