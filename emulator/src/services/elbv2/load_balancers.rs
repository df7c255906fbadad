//! CreateLoadBalancer, DescribeLoadBalancers, DeleteLoadBalancer, SetSecurityGroups.

use super::model::{LoadBalancer, Zone};
use super::{key, lb_not_found, tags, validation, Elbv2, SERVICE};
use crate::protocol::codes;
use crate::protocol::AwsError;
use crate::services::input::Input;
use crate::services::page::page;
use crate::services::{random_hex, Ctx, HandlerResult, Registry};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::sync::Arc;

/// How long (emulated seconds) a new load balancer stays "provisioning".
pub const PROVISIONING_SECONDS: f64 = 2.0;

pub fn register(r: &mut Registry, s: &Arc<Elbv2>) {
    r.sync(SERVICE, "CreateLoadBalancer", s, create);
    r.sync(SERVICE, "DescribeLoadBalancers", s, describe);
    r.sync(SERVICE, "DeleteLoadBalancer", s, delete);
    r.sync(SERVICE, "SetSecurityGroups", s, set_security_groups);
}

/// Route 53 hosted zones of ELB endpoints (ALB, NLB) per region; us-east-1's elsewhere.
fn hosted_zone(region: &str, network: bool) -> &'static str {
    match (region, network) {
        ("us-east-2", false) => "Z3AADJGX6KTTL2",
        ("us-east-2", true) => "ZLMOA37VPKANP",
        ("us-west-1", false) => "Z368ELLRRE2KJ0",
        ("us-west-1", true) => "Z24FKFUX50B4VW",
        ("us-west-2", false) => "Z1H1FL5HABSF5",
        ("us-west-2", true) => "Z18D5FSROUN65G",
        ("eu-west-1", false) => "Z32O12XQLNTSW2",
        ("eu-west-1", true) => "Z2IFOLAFXWLO4F",
        ("eu-central-1", false) => "Z215JYRZR1TBD5",
        ("eu-central-1", true) => "Z3F0SRJ5LGBH90",
        (_, true) => "Z26RNL4JYFTOTI",
        _ => "Z35SXDOTRQ7X7K",
    }
}

impl LoadBalancer {
    pub fn state(&self, now: f64) -> &'static str {
        if now - self.created < PROVISIONING_SECONDS {
            "provisioning"
        } else {
            "active"
        }
    }

    /// The model's LoadBalancer.
    pub fn to_json(&self, now: f64) -> Value {
        let region = super::scope_of(&self.arn)
            .split('/')
            .nth(1)
            .unwrap_or("us-east-1")
            .to_string();
        let mut v = json!({
            "LoadBalancerArn": self.arn,
            "DNSName": self.dns_name,
            "CanonicalHostedZoneId": hosted_zone(&region, !self.is_application()),
            "CreatedTime": self.created,
            "LoadBalancerName": self.name,
            "Scheme": self.scheme,
            "VpcId": self.vpc_id,
            "State": {"Code": self.state(now)},
            "Type": self.kind,
            "AvailabilityZones": self.zones.iter().map(|z| json!({
                "ZoneName": z.zone,
                "SubnetId": z.subnet_id,
                "LoadBalancerAddresses": [],
            })).collect::<Vec<_>>(),
            "IpAddressType": self.ip_address_type,
        });
        if !self.security_groups.is_empty() {
            v["SecurityGroups"] = json!(self.security_groups);
        }
        v
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 32
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-')
        && !name.starts_with("internal-")
}

/// Subnets → zones, checked against EC2: they exist, one per zone, one VPC.
fn zones(
    s: &Elbv2,
    ctx: &Ctx,
    subnets: &[String],
    application: bool,
) -> Result<(String, Vec<Zone>), AwsError> {
    if subnets.is_empty() {
        return Err(validation(
            "At least one subnet must be specified (Subnets or SubnetMappings)",
        ));
    }
    let mut zones: Vec<Zone> = Vec::new();
    let mut vpc: Option<String> = None;
    for id in subnets {
        let subnet = match &s.ec2 {
            Some(ec2) => ec2.subnet(&ctx.account, &ctx.region, id)?,
            None => None,
        };
        let Some(subnet) = subnet else {
            return Err(AwsError::new(
                codes::elbv2::SubnetNotFoundException,
                format!("The subnet ID '{id}' is not valid"),
            ));
        };
        if vpc.as_deref().is_some_and(|v| v != subnet.vpc_id) {
            return Err(AwsError::new(
                codes::elbv2::InvalidSubnetException,
                "The subnets must all belong to the same VPC",
            ));
        }
        vpc = Some(subnet.vpc_id.clone());
        if zones.iter().any(|z| z.zone == subnet.availability_zone) {
            return Err(AwsError::new(codes::elbv2::InvalidConfigurationRequestException,
                format!(
                    "A load balancer cannot be attached to multiple subnets in the same Availability Zone ({})",
                    subnet.availability_zone
                ),
            ));
        }
        zones.push(Zone {
            zone: subnet.availability_zone.clone(),
            subnet_id: subnet.subnet_id.clone(),
        });
    }
    if application && zones.len() < 2 {
        return Err(validation(
            "At least two subnets in two different Availability Zones must be specified",
        ));
    }
    zones.sort_by(|a, b| a.zone.cmp(&b.zone));
    Ok((vpc.unwrap_or_default(), zones))
}

fn security_groups(
    s: &Elbv2,
    ctx: &Ctx,
    ids: &[String],
    vpc: &str,
) -> Result<Vec<String>, AwsError> {
    let Some(ec2) = &s.ec2 else {
        return Ok(ids.to_vec());
    };
    for id in ids {
        match ec2.security_group(&ctx.account, &ctx.region, id)? {
            Some(g) if g.vpc_id == vpc => {}
            // ELBv2 answers a group of another VPC as a configuration error (HTTP 400).
            Some(_) => {
                return Err(AwsError::new(
                    codes::elbv2::InvalidConfigurationRequestException,
                    format!("Security group '{id}' does not belong to VPC '{vpc}'"),
                ))
            }
            None => {
                return Err(AwsError::new(
                    codes::elbv2::InvalidSecurityGroupException,
                    format!("The security group '{id}' does not exist"),
                ))
            }
        }
    }
    Ok(ids.to_vec())
}

fn create(s: &Elbv2, ctx: &Ctx, input: Value) -> HandlerResult {
    let name = input.str("Name").unwrap_or_default().to_string();
    if !valid_name(&name) {
        return Err(validation(format!(
            "The load balancer name '{name}' is not valid: up to 32 alphanumeric characters or hyphens, not beginning or ending with a hyphen, not beginning with 'internal-'"
        )));
    }
    let kind = input.str("Type").unwrap_or("application").to_string();
    if kind == "gateway" {
        return Err(AwsError::new(
            codes::elbv2::UnsupportedProtocolException,
            "Gateway Load Balancers are not supported by ecs-emulator",
        ));
    }
    let application = kind == "application";
    let scheme = input.str("Scheme").unwrap_or("internet-facing").to_string();
    let ip_address_type = input.str("IpAddressType").unwrap_or("ipv4").to_string();
    let mut subnet_ids = input.string_list("Subnets");
    if let Some(Value::Array(maps)) = input.get("SubnetMappings") {
        if !subnet_ids.is_empty() && !maps.is_empty() {
            return Err(validation(
                "You can specify subnets or subnet mappings, not both",
            ));
        }
        subnet_ids.extend(
            maps.iter()
                .filter_map(|m| m.str("SubnetId").map(str::to_string)),
        );
    }
    let (vpc_id, zones) = zones(s, ctx, &subnet_ids, application)?;
    let mut groups = input.string_list("SecurityGroups");
    if application && groups.is_empty() {
        if let Some(ec2) = &s.ec2 {
            if let Some(g) = ec2.default_security_group(&ctx.account, &ctx.region, &vpc_id)? {
                groups.push(g.group_id);
            }
        }
    }
    let groups = security_groups(s, ctx, &groups, &vpc_id)?;
    let new_tags = tags::parse(&input)?;
    let id = random_hex(16);
    let arn = ctx.arn(
        "elasticloadbalancing",
        &format!(
            "loadbalancer/{}/{name}/{id}",
            if application { "app" } else { "net" }
        ),
    );
    let prefix = if scheme == "internal" {
        "internal-"
    } else {
        ""
    };
    let dns_name = format!(
        "{prefix}{}-{}.{}.elb.localhost",
        name.to_ascii_lowercase(),
        super::random_digits(10),
        ctx.region
    );
    let attributes = super::attributes::lb_defaults(application);
    let lb = LoadBalancer {
        arn: arn.clone(),
        name: name.clone(),
        id,
        dns_name,
        kind: kind.clone(),
        scheme: scheme.clone(),
        vpc_id,
        ip_address_type,
        zones,
        security_groups: groups,
        created: ctx.now,
        attributes,
    };
    let scope = ctx.scope();
    let created = s.load_balancers.transact(|t| {
        let existing = t
            .keys(&scope)
            .into_iter()
            .filter_map(|k| t.get(&k).cloned())
            .find(|l| l.name == name);
        if let Some(e) = existing {
            // Idempotent for the same settings, as AWS is.
            let same = e.kind == lb.kind
                && e.scheme == lb.scheme
                && e.zones
                    .iter()
                    .map(|z| &z.subnet_id)
                    .collect::<BTreeSet<_>>()
                    == lb
                        .zones
                        .iter()
                        .map(|z| &z.subnet_id)
                        .collect::<BTreeSet<_>>();
            if same {
                return Ok(e);
            }
            return Err(AwsError::new(
                codes::elbv2::DuplicateLoadBalancerNameException,
                format!("A load balancer with the name '{name}' already exists"),
            ));
        }
        t.put(&key(ctx, &arn), lb.clone());
        Ok(lb)
    })?;
    if created.arn == arn {
        tags::set(s, ctx, &arn, &new_tags)?;
        s.bump();
    }
    Ok(json!({"LoadBalancers": [created.to_json(ctx.now)]}))
}

fn describe(s: &Elbv2, ctx: &Ctx, input: Value) -> HandlerResult {
    let arns = input.string_list("LoadBalancerArns");
    let names = input.string_list("Names");
    if !arns.is_empty() && !names.is_empty() {
        return Err(validation(
            "Load balancer names and load balancer ARNs cannot be specified at the same time",
        ));
    }
    let all: Vec<LoadBalancer> = s
        .load_balancers
        .scan(&ctx.scope())
        .into_iter()
        .map(|(_, l)| l)
        .collect();
    let mut found: Vec<LoadBalancer> = Vec::new();
    if !arns.is_empty() {
        for a in &arns {
            match all.iter().find(|l| &l.arn == a) {
                Some(l) => found.push(l.clone()),
                None => {
                    return Err(AwsError::new(
                        codes::elbv2::LoadBalancerNotFoundException,
                        format!("Load balancers '[{a}]' not found"),
                    ))
                }
            }
        }
    } else if !names.is_empty() {
        let missing: Vec<&String> = names
            .iter()
            .filter(|n| !all.iter().any(|l| &&l.name == n))
            .collect();
        if !missing.is_empty() {
            return Err(AwsError::new(
                codes::elbv2::LoadBalancerNotFoundException,
                format!(
                    "Load balancers '[{}]' not found",
                    missing
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        found = all
            .into_iter()
            .filter(|l| names.contains(&l.name))
            .collect();
    } else {
        found = all;
    }
    found.sort_by(|a, b| a.name.cmp(&b.name).then(a.arn.cmp(&b.arn)));
    let size = input.i64("PageSize").unwrap_or(400).clamp(1, 400) as usize;
    let (items, next) = page(
        found,
        |l| format!("{}\0{}", l.name, l.arn),
        input.str("Marker"),
        size,
        codes::common::ValidationError,
    )?;
    let mut out = json!({
        "LoadBalancers": items.iter().map(|l| l.to_json(ctx.now)).collect::<Vec<_>>(),
    });
    if let Some(n) = next {
        out["NextMarker"] = json!(n);
    }
    Ok(out)
}

fn delete(s: &Elbv2, ctx: &Ctx, input: Value) -> HandlerResult {
    let arn = input.str("LoadBalancerArn").unwrap_or_default().to_string();
    let Some(lb) = s.load_balancers.get(&key(ctx, &arn)) else {
        // Deleting a load balancer that does not exist succeeds, as in AWS.
        return Ok(json!({}));
    };
    if lb
        .attributes
        .get("deletion_protection.enabled")
        .map(String::as_str)
        == Some("true")
    {
        return Err(AwsError::new(
            codes::elbv2::OperationNotPermittedException,
            format!(
                "Load balancer '{arn}' cannot be deleted because deletion protection is enabled"
            ),
        ));
    }
    let listeners: Vec<String> = s
        .listeners
        .scan(&ctx.scope())
        .into_iter()
        .filter(|(_, l)| l.lb_arn == arn)
        .map(|(_, l)| l.arn)
        .collect();
    for l in &listeners {
        super::listeners::remove_listener(s, ctx, l)?;
    }
    s.load_balancers.remove(&key(ctx, &arn))?;
    tags::remove_all(s, ctx, &arn)?;
    s.bump();
    Ok(json!({}))
}

fn set_security_groups(s: &Elbv2, ctx: &Ctx, input: Value) -> HandlerResult {
    let arn = input.str("LoadBalancerArn").unwrap_or_default().to_string();
    let lb = s
        .load_balancers
        .get(&key(ctx, &arn))
        .ok_or_else(lb_not_found)?;
    let groups = security_groups(s, ctx, &input.string_list("SecurityGroups"), &lb.vpc_id)?;
    s.load_balancers
        .transact(|t| match t.get_mut(&key(ctx, &arn)) {
            Some(l) => {
                l.security_groups = groups.clone();
                Ok(())
            }
            None => Err(lb_not_found()),
        })?;
    Ok(json!({"SecurityGroupIds": groups}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(valid_name("my-alb-1"));
        assert!(!valid_name("-x"));
        assert!(!valid_name("x-"));
        assert!(!valid_name("internal-x"));
        assert!(!valid_name("a_b"));
        assert!(!valid_name(&"a".repeat(33)));
    }
}
