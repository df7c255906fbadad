//! Subnets: DescribeSubnets, CreateSubnet, DeleteSubnet.

use super::cidr::Cidr;
use super::filters::{
    bool_str, check_ids_with_max, describe, dry_run, err, invalid_value, not_found_ids,
    tags_from_specs, tags_json, Filterable, Tags,
};
use super::regions::zones;
use super::state::{new_id, subnet_key, vpc_key, Row, State, Subnet};
use crate::protocol::codes;
use crate::services::input::Input;
use crate::services::{Ctx, HandlerResult};
use serde_json::{json, Value};

impl Subnet {
    pub fn to_json(&self) -> Value {
        json!({
            "AvailabilityZoneId": self.availability_zone_id,
            "MapCustomerOwnedIpOnLaunch": false,
            "OwnerId": self.owner_id,
            "AssignIpv6AddressOnCreation": false,
            "Ipv6CidrBlockAssociationSet": [],
            "Tags": tags_json(&self.tags),
            "SubnetArn": self.arn(),
            "EnableDns64": false,
            "Ipv6Native": false,
            "PrivateDnsNameOptionsOnLaunch": {
                "HostnameType": "ip-name",
                "EnableResourceNameDnsARecord": false,
                "EnableResourceNameDnsAAAARecord": false,
            },
            "BlockPublicAccessStates": {"InternetGatewayBlockMode": "off"},
            "SubnetId": self.subnet_id,
            "State": "available",
            "VpcId": self.vpc_id,
            "CidrBlock": self.cidr_block,
            "AvailableIpAddressCount": self.available_ip_address_count(),
            "AvailabilityZone": self.availability_zone,
            "DefaultForAz": self.default_for_az,
            "MapPublicIpOnLaunch": self.map_public_ip_on_launch,
        })
    }
}

impl Filterable for Subnet {
    fn filter_values(&self, name: &str) -> Option<Vec<String>> {
        let v = match name {
            "subnet-id" => self.subnet_id.clone(),
            "vpc-id" => self.vpc_id.clone(),
            "availability-zone" | "availabilityZone" => self.availability_zone.clone(),
            "availability-zone-id" | "availabilityZoneId" => self.availability_zone_id.clone(),
            "cidr" | "cidr-block" | "cidrBlock" => self.cidr_block.clone(),
            "default-for-az" | "defaultForAz" => bool_str(self.default_for_az),
            "map-public-ip-on-launch" => bool_str(self.map_public_ip_on_launch),
            "available-ip-address-count" => self.available_ip_address_count().to_string(),
            "owner-id" => self.owner_id.clone(),
            "state" => "available".into(),
            "subnet-arn" => self.arn(),
            "ipv6-native" => "false".into(),
            _ => return None,
        };
        Some(vec![v])
    }
    fn tag_map(&self) -> Option<&Tags> {
        Some(&self.tags)
    }
}

pub fn describe_subnets(state: &State, ctx: &Ctx, input: Value) -> HandlerResult {
    dry_run(&input)?;
    check_ids_with_max(&input, "SubnetIds", "subnetIds")?;
    state.ensure_defaults(&ctx.account, &ctx.region)?;
    let subnets = state.subnets(&ctx.account, &ctx.region);
    describe(
        subnets,
        &input,
        "SubnetIds",
        (codes::ec2::InvalidSubnetID_NotFound, "subnet"),
        "Subnets",
        |x| x.subnet_id.clone(),
        Subnet::to_json,
    )
}

pub fn create_subnet(state: &State, ctx: &Ctx, input: Value) -> HandlerResult {
    dry_run(&input)?;
    let (account, region) = (&ctx.account, &ctx.region);
    state.ensure_defaults(account, region)?;
    let vpc_id = input.str("VpcId").unwrap_or_default().to_string();
    let Some(vpc) = state.vpc(account, region, &vpc_id) else {
        return Err(not_found_ids(
            codes::ec2::InvalidVpcID_NotFound,
            "vpc",
            std::slice::from_ref(&vpc_id),
        ));
    };
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
    let vpc_cidr = Cidr::parse(&vpc.cidr_block);
    let inside = vpc_cidr.is_some_and(|v| v.contains(&cidr));
    if !(16..=28).contains(&cidr.len) || !cidr.is_aligned() || !inside {
        return Err(err(
            codes::ec2::InvalidSubnet_Range,
            format!("The CIDR '{cidr_text}' is invalid."),
        ));
    }
    let all_zones = zones(region);
    let zone = match (input.str("AvailabilityZone"), input.str("AvailabilityZoneId")) {
        (Some(name), _) => all_zones.iter().find(|z| z.name == name).ok_or_else(|| {
            invalid_value(format!(
                "Value ({name}) for parameter availabilityZone is invalid. Subnets can currently only be created in the following availability zones: {}.",
                all_zones.iter().map(|z| z.name.as_str()).collect::<Vec<_>>().join(", ")
            ))
        })?,
        (None, Some(id)) => all_zones.iter().find(|z| z.id == id).ok_or_else(|| {
            invalid_value(format!(
                "Value ({id}) for parameter availabilityZoneId is invalid. Subnets can currently only be created in the following availability zone ids: {}.",
                all_zones.iter().map(|z| z.id.as_str()).collect::<Vec<_>>().join(", ")
            ))
        })?,
        (None, None) => {
            // AWS picks a zone; spread over the zones by how many subnets the VPC has.
            let n = state
                .subnets(account, region)
                .iter()
                .filter(|s| s.vpc_id == vpc_id)
                .count();
            all_zones
                .get(n % all_zones.len().max(1))
                .ok_or_else(|| invalid_value("No availability zone available"))?
        }
    };
    let tags = tags_from_specs(&input, "subnet")?;
    let subnet = Subnet {
        subnet_id: new_id("subnet"),
        vpc_id: vpc_id.clone(),
        owner_id: account.clone(),
        region: region.clone(),
        cidr_block: cidr.to_string(),
        availability_zone: zone.name.clone(),
        availability_zone_id: zone.id.clone(),
        default_for_az: false,
        map_public_ip_on_launch: false,
        used_ips: 0,
        tags,
    };
    let existing = state.subnets(account, region);
    state.rows.transact(|t| {
        if !t.contains(&vpc_key(account, region, &vpc_id)) {
            return Err(not_found_ids(
                codes::ec2::InvalidVpcID_NotFound,
                "vpc",
                std::slice::from_ref(&vpc_id),
            ));
        }
        let conflict = existing.iter().any(|s| {
            s.vpc_id == vpc_id
                && t.contains(&subnet_key(account, region, &s.subnet_id))
                && Cidr::parse(&s.cidr_block).is_some_and(|c| c.overlaps(&cidr))
        });
        if conflict {
            return Err(err(
                codes::ec2::InvalidSubnet_Conflict,
                format!("The CIDR '{cidr_text}' conflicts with another subnet"),
            ));
        }
        t.put(
            &subnet_key(account, region, &subnet.subnet_id),
            Row::Subnet(subnet.clone()),
        );
        Ok(())
    })?;
    Ok(json!({ "Subnet": subnet.to_json() }))
}

pub fn delete_subnet(state: &State, ctx: &Ctx, input: Value) -> HandlerResult {
    dry_run(&input)?;
    let (account, region) = (&ctx.account, &ctx.region);
    state.ensure_defaults(account, region)?;
    let id = input.str("SubnetId").unwrap_or_default().to_string();
    state.rows.transact(|t| {
        let key = subnet_key(account, region, &id);
        let Some(Row::Subnet(s)) = t.get(&key) else {
            return Err(not_found_ids(
                codes::ec2::InvalidSubnetID_NotFound,
                "subnet",
                std::slice::from_ref(&id),
            ));
        };
        if s.used_ips > 0 {
            return Err(err(
                codes::ec2::DependencyViolation,
                format!("The subnet '{id}' has dependencies and cannot be deleted."),
            ));
        }
        t.remove(&key);
        Ok(())
    })?;
    Ok(json!({}))
}
