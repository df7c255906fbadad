//! Mount targets: one per Availability Zone per file system, in one VPC, in a subnet of EC2 with
//! an address of that subnet; their security groups.

use super::state::{
    available, bad_request, file_system_not_found, mount_target_not_found, new_id, MountTarget,
    MAX_SECURITY_GROUPS,
};
use super::Efs;
use crate::protocol::codes;
use crate::protocol::AwsError;
use crate::services::ec2::cidr::Cidr;
use crate::services::ec2::{Ec2, Subnet};
use crate::services::input::Input;
use crate::services::page::page;
use crate::services::{Ctx, HandlerResult};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::net::Ipv4Addr;

const DEFAULT_MAX_ITEMS: usize = 10;

pub fn describe(m: &MountTarget, now: f64) -> Value {
    json!({
        "OwnerId": m.account,
        "MountTargetId": m.id,
        "FileSystemId": m.file_system_id,
        "SubnetId": m.subnet_id,
        "LifeCycleState": m.state(now),
        "IpAddress": m.ip,
        "NetworkInterfaceId": m.eni_id,
        "AvailabilityZoneId": m.az_id,
        "AvailabilityZoneName": m.az_name,
        "VpcId": m.vpc_id,
    })
}

fn ec2(efs: &Efs) -> Result<&Ec2, AwsError> {
    efs.ec2
        .as_deref()
        .ok_or_else(|| AwsError::internal("EC2 is not available"))
}

/// The security groups of a mount target: each must exist in the subnet's VPC; none given
/// means the VPC's default group.
fn security_groups(
    efs: &Efs,
    ctx: &Ctx,
    vpc_id: &str,
    given: Option<Vec<String>>,
) -> Result<Vec<String>, AwsError> {
    let ec2 = ec2(efs)?;
    let groups = match given {
        Some(g) => g,
        None => {
            let default = ec2
                .default_security_group(&ctx.account, &ctx.region, vpc_id)?
                .ok_or_else(|| {
                    AwsError::new(
                        codes::efs::SecurityGroupNotFound,
                        format!("The VPC '{vpc_id}' has no default security group."),
                    )
                })?;
            vec![default.group_id]
        }
    };
    if groups.len() > MAX_SECURITY_GROUPS {
        return Err(AwsError::new(codes::efs::SecurityGroupLimitExceeded,
            format!(
                "The maximum number of security groups per mount target ({MAX_SECURITY_GROUPS}) has been reached."
            ),
        ));
    }
    let mut out: Vec<String> = Vec::new();
    for g in groups {
        let found = ec2.security_group(&ctx.account, &ctx.region, &g)?;
        match found {
            Some(sg) if sg.vpc_id == vpc_id => {
                if !out.contains(&g) {
                    out.push(g);
                }
            }
            _ => {
                return Err(AwsError::new(
                    codes::efs::SecurityGroupNotFound,
                    format!("The security group '{g}' does not exist in VPC '{vpc_id}'."),
                ))
            }
        }
    }
    Ok(out)
}

/// Addresses in use in a subnet: EC2 instances' and other mount targets'.
fn taken_addresses(efs: &Efs, ctx: &Ctx, subnet: &Subnet) -> BTreeSet<String> {
    let mut taken: BTreeSet<String> = efs.state.mount_targets.read(|r| {
        r.values()
            .filter(|m| m.subnet_id == subnet.subnet_id)
            .map(|m| m.ip.clone())
            .collect()
    });
    if let Some(ec2) = &efs.ec2 {
        for i in ec2.all_instances(ctx.now) {
            if i.subnet_id == subnet.subnet_id && i.state != "terminated" {
                taken.insert(i.private_ip);
            }
        }
    }
    taken
}

/// The usable addresses of a subnet: AWS reserves the first four and the last.
fn usable(subnet: &Subnet) -> Option<(u32, u32)> {
    let c = Cidr::parse(&subnet.cidr_block)?;
    let first = c.network().checked_add(4)?;
    let last = c.last().checked_sub(1)?;
    (first <= last).then_some((first, last))
}

fn address(
    efs: &Efs,
    ctx: &Ctx,
    subnet: &Subnet,
    wanted: Option<&str>,
) -> Result<String, AwsError> {
    let taken = taken_addresses(efs, ctx, subnet);
    let range = usable(subnet);
    if let Some(ip) = wanted {
        let inside = ip
            .parse::<Ipv4Addr>()
            .ok()
            .zip(range)
            .is_some_and(|(a, (first, last))| (first..=last).contains(&u32::from(a)));
        if !inside {
            return Err(bad_request(format!(
                "IP address '{ip}' is not within the address range of subnet '{}' ({}).",
                subnet.subnet_id, subnet.cidr_block
            )));
        }
        if taken.contains(ip) {
            return Err(AwsError::new(
                codes::efs::IpAddressInUse,
                format!(
                    "The IP address '{ip}' is already in use in subnet '{}'.",
                    subnet.subnet_id
                ),
            ));
        }
        return Ok(ip.to_string());
    }
    let no_free = || {
        AwsError::new(
            codes::efs::NoFreeAddressesInSubnet,
            format!("The subnet '{}' has no free addresses.", subnet.subnet_id),
        )
    };
    let (first, last) = range.ok_or_else(no_free)?;
    // A random start, as EC2 picks instance addresses, so the two rarely meet.
    use rand::Rng;
    let span = u64::from(last - first) + 1;
    let start = rand::rng().random_range(0..span);
    (0..span)
        .map(|k| first + ((start + k) % span) as u32)
        .map(|a| Ipv4Addr::from(a).to_string())
        .find(|a| !taken.contains(a))
        .ok_or_else(no_free)
}

pub fn create_mount_target(efs: &Efs, ctx: &Ctx, input: Value) -> HandlerResult {
    efs.purge(ctx.now);
    let scope = ctx.scope();
    let fs = available(
        &efs.state,
        &scope,
        input.str("FileSystemId").unwrap_or_default(),
        ctx.now,
    )?;
    let subnet_id = input.str("SubnetId").unwrap_or_default();
    let subnet = ec2(efs)?
        .subnet(&ctx.account, &ctx.region, subnet_id)?
        .ok_or_else(|| {
            AwsError::new(
                codes::efs::SubnetNotFound,
                format!("The subnet ID '{subnet_id}' does not exist"),
            )
        })?;
    match input.str("IpAddressType") {
        Some("IPV6_ONLY") | Some("DUAL_STACK") => {
            return Err(bad_request(format!(
                "The subnet '{subnet_id}' has no IPv6 CIDR block; only IPV4_ONLY mount targets can be created in it."
            )))
        }
        _ => {}
    }
    if input.str("Ipv6Address").is_some() {
        return Err(bad_request(format!(
            "The subnet '{subnet_id}' has no IPv6 CIDR block."
        )));
    }
    if let Some(az) = &fs.az_name {
        if *az != subnet.availability_zone {
            return Err(AwsError::new(
                codes::efs::AvailabilityZonesMismatch,
                format!(
                    "The One Zone file system '{}' is in {az}; the subnet '{subnet_id}' is in {}.",
                    fs.id, subnet.availability_zone
                ),
            ));
        }
    }
    let groups = security_groups(
        efs,
        ctx,
        &subnet.vpc_id,
        input.member::<Vec<String>>("SecurityGroups")?,
    )?;
    let ip = address(efs, ctx, &subnet, input.str("IpAddress"))?;
    let id_type = efs.state.resource_id_type(&scope);
    let mt = MountTarget {
        id: new_id("fsmt", &id_type),
        account: ctx.account.clone(),
        region: ctx.region.clone(),
        file_system_id: fs.id.clone(),
        subnet_id: subnet.subnet_id.clone(),
        vpc_id: subnet.vpc_id.clone(),
        az_name: subnet.availability_zone.clone(),
        az_id: subnet.availability_zone_id.clone(),
        ip,
        eni_id: new_id("eni", "LONG_ID"),
        security_groups: groups,
        created: ctx.now,
        deleted: None,
    };
    efs.state.mount_targets.transact(|t| {
        let others: Vec<&MountTarget> = t
            .rows()
            .range(scope.clone()..)
            .take_while(|(k, _)| k.starts_with(&scope))
            .map(|(_, m)| m)
            .filter(|m| m.file_system_id == fs.id)
            .collect();
        if others.iter().any(|m| m.vpc_id != mt.vpc_id) {
            return Err(AwsError::new(codes::efs::MountTargetConflict,
                "requested subnet for new mount target is not in the same VPC as existing mount targets",
            ));
        }
        if others.iter().any(|m| m.az_name == mt.az_name) {
            return Err(AwsError::new(codes::efs::MountTargetConflict,
                "mount target already exists in this AZ",
            ));
        }
        if t.rows().values().any(|m| m.subnet_id == mt.subnet_id && m.ip == mt.ip) {
            return Err(AwsError::new(codes::efs::IpAddressInUse,
                format!("The IP address '{}' is already in use in subnet '{}'.", mt.ip, mt.subnet_id),
            ));
        }
        t.put(&format!("{scope}{}", mt.id), mt.clone());
        Ok(())
    })?;
    Ok(describe(&mt, ctx.now))
}

pub fn describe_mount_targets(efs: &Efs, ctx: &Ctx, input: Value) -> HandlerResult {
    efs.purge(ctx.now);
    let scope = ctx.scope();
    let fs_id = input.str("FileSystemId");
    let mt_id = input.str("MountTargetId");
    let ap_id = input.str("AccessPointId");
    let given = [fs_id, mt_id, ap_id].iter().filter(|x| x.is_some()).count();
    if given != 1 {
        return Err(bad_request(
            "Must specify exactly one mutually exclusive parameter.",
        ));
    }
    let items: Vec<MountTarget> = if let Some(id) = mt_id {
        vec![efs.state.mount_target(&scope, id, ctx.now)?]
    } else {
        let fs_id = match (fs_id, ap_id) {
            (Some(f), _) => efs.state.file_system(&scope, f, ctx.now)?.id,
            (None, Some(a)) => efs.state.access_point(&scope, a, ctx.now)?.file_system_id,
            (None, None) => return Err(file_system_not_found("")),
        };
        efs.state
            .mount_targets_of(&scope, &fs_id)
            .into_iter()
            .filter(|m| m.state(ctx.now) != "deleted")
            .collect()
    };
    let max = input
        .i64("MaxItems")
        .map_or(DEFAULT_MAX_ITEMS, |m| m as usize);
    let marker = input.str("Marker");
    let (items, next) = page(items, |m| m.id.clone(), marker, max, codes::efs::BadRequest)?;
    let mut out = json!({
        "MountTargets": items.iter().map(|m| describe(m, ctx.now)).collect::<Vec<_>>(),
    });
    if let Some(m) = marker {
        out["Marker"] = json!(m);
    }
    if let Some(n) = next {
        out["NextMarker"] = json!(n);
    }
    Ok(out)
}

pub fn delete_mount_target(efs: &Efs, ctx: &Ctx, input: Value) -> HandlerResult {
    efs.purge(ctx.now);
    let scope = ctx.scope();
    let id = input.str("MountTargetId").unwrap_or_default();
    let mt = efs.state.mount_target(&scope, id, ctx.now)?;
    if mt.deleted.is_some() {
        return Ok(json!({}));
    }
    let key = format!("{scope}{}", mt.id);
    efs.state.mount_targets.transact::<_, AwsError, _>(|t| {
        let m = t.get_mut(&key).ok_or_else(|| mount_target_not_found(id))?;
        m.deleted = Some(ctx.now);
        Ok(())
    })?;
    efs.deleted_at(ctx.now);
    Ok(json!({}))
}

/// A mount target whose network interface exists (not being deleted).
fn live(efs: &Efs, ctx: &Ctx, id: &str) -> Result<MountTarget, AwsError> {
    let mt = efs.state.mount_target(&ctx.scope(), id, ctx.now)?;
    if mt.deleted.is_some() {
        return Err(AwsError::new(
            codes::efs::IncorrectMountTargetState,
            format!("Mount target does not have a network interface: {id}"),
        ));
    }
    Ok(mt)
}

pub fn describe_mount_target_security_groups(efs: &Efs, ctx: &Ctx, input: Value) -> HandlerResult {
    efs.purge(ctx.now);
    let mt = live(efs, ctx, input.str("MountTargetId").unwrap_or_default())?;
    Ok(json!({"SecurityGroups": mt.security_groups}))
}

pub fn modify_mount_target_security_groups(efs: &Efs, ctx: &Ctx, input: Value) -> HandlerResult {
    efs.purge(ctx.now);
    let scope = ctx.scope();
    let id = input.str("MountTargetId").unwrap_or_default();
    let mt = live(efs, ctx, id)?;
    if mt.state(ctx.now) != "available" {
        return Err(AwsError::new(
            codes::efs::IncorrectMountTargetState,
            format!(
                "Mount target '{id}' is in the '{}' state; it must be 'available'.",
                mt.state(ctx.now)
            ),
        ));
    }
    let groups = security_groups(
        efs,
        ctx,
        &mt.vpc_id,
        Some(
            input
                .member::<Vec<String>>("SecurityGroups")?
                .unwrap_or_default(),
        ),
    )?;
    if groups.is_empty() {
        return Err(bad_request(
            "A mount target must have at least one security group.",
        ));
    }
    let key = format!("{scope}{}", mt.id);
    efs.state.mount_targets.transact::<_, AwsError, _>(|t| {
        let m = t.get_mut(&key).ok_or_else(|| mount_target_not_found(id))?;
        m.security_groups = groups.clone();
        Ok(())
    })?;
    Ok(json!({}))
}
