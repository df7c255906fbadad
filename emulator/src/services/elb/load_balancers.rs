//! CreateLoadBalancer, DescribeLoadBalancers, DeleteLoadBalancer, Create/DeleteLoadBalancerListeners,
//! DescribeAccountLimits.

use super::attributes::{check_tags, default_attributes};
use super::{
    get_lb, lb_key, validation, ClassicLb, ClassicListener, Elb, HealthCheckConfig, SERVICE,
};
use crate::protocol::codes;
use crate::protocol::AwsError;
use crate::services::elbv2::random_digits;
use crate::services::input::Input;
use crate::services::page::page;
use crate::services::{Ctx, HandlerResult, Registry};
use serde_json::{json, Value};
use std::sync::Arc;

/// Classic load balancers per region (the account limit AWS reports).
pub const MAX_LOAD_BALANCERS: usize = 20;
pub const MAX_LISTENERS: usize = 100;
pub const MAX_INSTANCES: usize = 1000;

pub fn register(r: &mut Registry, s: &Arc<Elb>) {
    r.sync(SERVICE, "CreateLoadBalancer", s, create);
    r.sync(SERVICE, "DescribeLoadBalancers", s, describe);
    r.sync(SERVICE, "DeleteLoadBalancer", s, delete);
    r.sync(SERVICE, "CreateLoadBalancerListeners", s, create_listeners);
    r.sync(SERVICE, "DeleteLoadBalancerListeners", s, delete_listeners);
    r.sync(SERVICE, "DescribeAccountLimits", s, account_limits);
}

/// Route 53 hosted zone of classic ELB endpoints per region.
fn hosted_zone(region: &str) -> &'static str {
    match region {
        "us-east-2" => "Z3AADJGX6KTTL2",
        "us-west-1" => "Z368ELLRRE2KJ0",
        "us-west-2" => "Z1H1FL5HABSF5",
        "eu-west-1" => "Z32O12XQLNTSW2",
        "eu-central-1" => "Z215JYRZR1TBD5",
        _ => "Z35SXDOTRQ7X7K",
    }
}

impl ClassicLb {
    /// The model's LoadBalancerDescription.
    pub fn to_json(&self, source_group: Option<&str>) -> Value {
        let mut v = json!({
            "LoadBalancerName": self.name,
            "DNSName": self.dns_name,
            "CanonicalHostedZoneName": self.dns_name,
            "CanonicalHostedZoneNameID": hosted_zone(&self.region),
            "ListenerDescriptions": self.listeners.iter().map(|l| json!({
                "Listener": l.to_json(),
                "PolicyNames": [],
            })).collect::<Vec<_>>(),
            "Policies": {
                "AppCookieStickinessPolicies": [],
                "LBCookieStickinessPolicies": [],
                "OtherPolicies": [],
            },
            "BackendServerDescriptions": [],
            "AvailabilityZones": self.availability_zones,
            "Subnets": self.subnets,
            "Instances": self.instances.iter().map(|i| json!({"InstanceId": i})).collect::<Vec<_>>(),
            "HealthCheck": self.health_check.to_json(),
            "SecurityGroups": self.security_groups,
            "CreatedTime": self.created,
            "Scheme": self.scheme,
        });
        if let Some(vpc) = &self.vpc_id {
            v["VPCId"] = json!(vpc);
        }
        if let Some(g) = source_group {
            v["SourceSecurityGroup"] = json!({"OwnerAlias": self.account, "GroupName": g});
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
}

/// The Listeners member, validated and normalized (protocols upper-case, InstanceProtocol
/// defaulted from Protocol).
pub fn parse_listeners(input: &Value) -> Result<Vec<ClassicListener>, AwsError> {
    let items = input
        .get("Listeners")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if items.is_empty() {
        return Err(validation("At least one listener must be specified"));
    }
    let mut out: Vec<ClassicListener> = Vec::new();
    for l in &items {
        let protocol = l.str("Protocol").unwrap_or_default().to_ascii_uppercase();
        if !matches!(protocol.as_str(), "HTTP" | "HTTPS" | "TCP" | "SSL") {
            return Err(validation(format!(
                "Invalid protocol '{}': one of HTTP, HTTPS, TCP, SSL",
                l.str("Protocol").unwrap_or_default()
            )));
        }
        let http = matches!(protocol.as_str(), "HTTP" | "HTTPS");
        let instance_protocol = match l.str("InstanceProtocol") {
            Some(p) => p.to_ascii_uppercase(),
            None if http => "HTTP".to_string(),
            None => "TCP".to_string(),
        };
        let compatible = match instance_protocol.as_str() {
            "HTTP" | "HTTPS" => http,
            "TCP" | "SSL" => !http,
            _ => false,
        };
        if !compatible {
            return Err(validation(format!(
                "Listener protocol '{protocol}' is not compatible with instance protocol '{instance_protocol}'"
            )));
        }
        let lb_port = l.i64("LoadBalancerPort").unwrap_or(0);
        let instance_port = l.i64("InstancePort").unwrap_or(0);
        let (Ok(lb_port), Ok(instance_port)) =
            (u16::try_from(lb_port), u16::try_from(instance_port))
        else {
            return Err(validation("Ports must be between 1 and 65535"));
        };
        if lb_port == 0 || instance_port == 0 {
            return Err(validation("Ports must be between 1 and 65535"));
        }
        let cert = l.str("SSLCertificateId").map(str::to_string);
        if matches!(protocol.as_str(), "HTTPS" | "SSL") && cert.is_none() {
            return Err(AwsError::new(codes::elb::CertificateNotFoundException,
                "A listener with protocol HTTPS or SSL requires an SSLCertificateId (any ARN: ecs-emulator serves a self-signed certificate)",
            ));
        }
        let listener = ClassicListener {
            protocol,
            load_balancer_port: lb_port,
            instance_protocol,
            instance_port,
            ssl_certificate_id: cert,
        };
        match out
            .iter()
            .find(|o| o.load_balancer_port == listener.load_balancer_port)
        {
            Some(o) if *o == listener => {}
            Some(_) => return Err(duplicate_listener(lb_port)),
            None => out.push(listener),
        }
    }
    Ok(out)
}

fn duplicate_listener(port: u16) -> AwsError {
    AwsError::new(codes::elb::DuplicateListenerException,
        format!("A listener already exists with LoadBalancerPort {port}, but with a different InstancePort, Protocol, or SSLCertificateId"),
    )
}

/// (availability zones, subnets, VPC id).
type Placement = (Vec<String>, Vec<String>, Option<String>);

/// (availability zones, subnets, VPC id) from AvailabilityZones or Subnets, checked against EC2.
fn placement(
    s: &Elb,
    ctx: &Ctx,
    zones: Vec<String>,
    subnets: Vec<String>,
) -> Result<Placement, AwsError> {
    match (zones.is_empty(), subnets.is_empty()) {
        (true, true) => {
            return Err(validation(
                "Either AvailabilityZones or SubnetIds must be specified",
            ))
        }
        (false, false) => {
            return Err(validation(
                "Only one of SubnetIds or AvailabilityZones may be specified",
            ))
        }
        _ => {}
    }
    let known: Vec<String> = crate::services::ec2::regions::zones(&ctx.region)
        .into_iter()
        .map(|z| z.name)
        .collect();
    let Some(ec2) = &s.ec2 else {
        return Ok((zones, subnets, None));
    };
    if !zones.is_empty() {
        // Availability Zones: the default VPC's default subnets of those zones.
        let mut out_zones: Vec<String> = Vec::new();
        for z in &zones {
            if !known.contains(z) {
                return Err(validation(format!("Invalid Availability Zone: {z}")));
            }
            if !out_zones.contains(z) {
                out_zones.push(z.clone());
            }
        }
        out_zones.sort();
        let defaults = ec2.default_subnets(&ctx.account, &ctx.region)?;
        let subnets: Vec<String> = defaults
            .iter()
            .filter(|s| out_zones.contains(&s.availability_zone))
            .map(|s| s.subnet_id.clone())
            .collect();
        let vpc = defaults.first().map(|s| s.vpc_id.clone());
        return Ok((out_zones, subnets, vpc));
    }
    let mut out_zones: Vec<String> = Vec::new();
    let mut out_subnets: Vec<String> = Vec::new();
    let mut vpc: Option<String> = None;
    for id in &subnets {
        let Some(subnet) = ec2.subnet(&ctx.account, &ctx.region, id)? else {
            return Err(AwsError::new(
                codes::elb::SubnetNotFoundException,
                format!("The subnet ID '{id}' is not valid"),
            ));
        };
        if vpc.as_deref().is_some_and(|v| v != subnet.vpc_id) {
            return Err(AwsError::new(
                codes::elb::InvalidSubnetException,
                "The subnets must all belong to the same VPC",
            ));
        }
        vpc = Some(subnet.vpc_id.clone());
        if out_zones.contains(&subnet.availability_zone) {
            return Err(AwsError::new(codes::elb::InvalidConfigurationRequestException,
                format!(
                    "A load balancer cannot be attached to multiple subnets in the same Availability Zone ({})",
                    subnet.availability_zone
                ),
            ));
        }
        out_zones.push(subnet.availability_zone.clone());
        out_subnets.push(subnet.subnet_id.clone());
    }
    out_zones.sort();
    Ok((out_zones, out_subnets, vpc))
}

/// Security groups checked against EC2 (in the load balancer's VPC); the VPC's default group
/// when none is given, as AWS does.
fn security_groups(
    s: &Elb,
    ctx: &Ctx,
    ids: Vec<String>,
    vpc: Option<&str>,
) -> Result<Vec<String>, AwsError> {
    let (Some(ec2), Some(vpc)) = (&s.ec2, vpc) else {
        return Ok(ids);
    };
    if ids.is_empty() {
        return Ok(ec2
            .default_security_group(&ctx.account, &ctx.region, vpc)?
            .map(|g| vec![g.group_id])
            .unwrap_or_default());
    }
    for id in &ids {
        match ec2.security_group(&ctx.account, &ctx.region, id)? {
            Some(g) if g.vpc_id == vpc => {}
            Some(_) => {
                return Err(AwsError::new(
                    codes::elb::InvalidSecurityGroupException,
                    format!("Security group '{id}' does not belong to VPC '{vpc}'"),
                ))
            }
            None => {
                return Err(AwsError::new(
                    codes::elb::InvalidSecurityGroupException,
                    format!("The security group '{id}' does not exist"),
                ))
            }
        }
    }
    Ok(ids)
}

/// The name of the load balancer's first security group (SourceSecurityGroup).
fn source_group(s: &Elb, lb: &ClassicLb) -> Option<String> {
    let id = lb.security_groups.first()?;
    let ec2 = s.ec2.as_ref()?;
    ec2.security_group(&lb.account, &lb.region, id)
        .ok()
        .flatten()
        .map(|g| g.group_name)
}

fn create(s: &Elb, ctx: &Ctx, input: Value) -> HandlerResult {
    let name = input
        .str("LoadBalancerName")
        .unwrap_or_default()
        .to_string();
    if !valid_name(&name) {
        return Err(validation(format!(
            "LoadBalancerName '{name}' is not valid: up to 32 alphanumeric characters or hyphens, not beginning or ending with a hyphen"
        )));
    }
    let listeners = parse_listeners(&input)?;
    let scheme = input.str("Scheme").unwrap_or("internet-facing").to_string();
    if scheme != "internet-facing" && scheme != "internal" {
        return Err(AwsError::new(
            codes::elb::InvalidSchemeException,
            format!("Invalid scheme '{scheme}': internet-facing or internal"),
        ));
    }
    let tags = input
        .get("Tags")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    check_tags(&tags, 0)?;
    let key = lb_key(ctx, &name);
    if s.load_balancers.contains(&key) {
        return Err(AwsError::new(
            codes::elb::DuplicateAccessPointNameException,
            format!("Load Balancer named '{name}' already exists"),
        ));
    }
    let (zones, subnets, vpc) = placement(
        s,
        ctx,
        input.string_list("AvailabilityZones"),
        input.string_list("Subnets"),
    )?;
    let groups = security_groups(s, ctx, input.string_list("SecurityGroups"), vpc.as_deref())?;
    let prefix = if scheme == "internal" {
        "internal-"
    } else {
        ""
    };
    let dns_name = format!(
        "{prefix}{name}-{}.{}.elb.localhost",
        random_digits(10),
        ctx.region
    )
    .to_ascii_lowercase();
    let first_port = listeners.first().map(|l| l.instance_port).unwrap_or(80);
    let lb = ClassicLb {
        name: name.clone(),
        account: ctx.account.clone(),
        region: ctx.region.clone(),
        dns_name: dns_name.clone(),
        created: ctx.now,
        scheme,
        listeners,
        availability_zones: zones,
        subnets,
        vpc_id: vpc,
        security_groups: groups,
        health_check: HealthCheckConfig::default_for(first_port),
        instances: Vec::new(),
        attributes: default_attributes(),
        tags,
    };
    s.load_balancers.transact(|t| {
        let scope = ctx.scope();
        if t.keys(&scope).len() >= MAX_LOAD_BALANCERS {
            return Err(AwsError::new(
                codes::elb::TooManyAccessPointsException,
                format!("Exceeded the limit of {MAX_LOAD_BALANCERS} classic load balancers"),
            ));
        }
        if t.contains(&key) {
            return Err(AwsError::new(
                codes::elb::DuplicateAccessPointNameException,
                format!("Load Balancer named '{name}' already exists"),
            ));
        }
        t.put(&key, lb);
        Ok(())
    })?;
    s.bump();
    Ok(json!({"DNSName": dns_name}))
}

fn describe(s: &Elb, ctx: &Ctx, input: Value) -> HandlerResult {
    let names = input.string_list("LoadBalancerNames");
    let all: Vec<ClassicLb> = s
        .load_balancers
        .scan(&ctx.scope())
        .into_iter()
        .map(|(_, l)| l)
        .collect();
    let mut chosen: Vec<ClassicLb> = Vec::new();
    if names.is_empty() {
        chosen = all;
    } else {
        for n in &names {
            match all.iter().find(|l| &l.name == n) {
                Some(l) => {
                    if !chosen.iter().any(|c| c.name == l.name) {
                        chosen.push(l.clone());
                    }
                }
                None => return Err(super::not_found(n)),
            }
        }
        chosen.sort_by(|a, b| a.name.cmp(&b.name));
    }
    let size = input.i64("PageSize").unwrap_or(400).clamp(1, 400) as usize;
    let (items, next) = page(
        chosen,
        |l| l.name.clone(),
        input.str("Marker"),
        size,
        codes::common::ValidationError,
    )?;
    let mut out = json!({
        "LoadBalancerDescriptions": items
            .iter()
            .map(|l| l.to_json(source_group(s, l).as_deref()))
            .collect::<Vec<_>>(),
    });
    if let Some(n) = next {
        out["NextMarker"] = json!(n);
    }
    Ok(out)
}

fn delete(s: &Elb, ctx: &Ctx, input: Value) -> HandlerResult {
    let name = input.str("LoadBalancerName").unwrap_or_default();
    let key = lb_key(ctx, name);
    // Deleting a load balancer that does not exist succeeds, as in AWS.
    if s.load_balancers.remove(&key)?.is_some() {
        s.forget_health(&key, &[]);
        s.bump();
    }
    Ok(json!({}))
}

fn create_listeners(s: &Elb, ctx: &Ctx, input: Value) -> HandlerResult {
    let name = input.str("LoadBalancerName").unwrap_or_default();
    let new = parse_listeners(&input)?;
    let key = lb_key(ctx, name);
    s.load_balancers.transact(|t| {
        let lb = t.get_mut(&key).ok_or_else(|| super::not_found(name))?;
        for l in new {
            match lb
                .listeners
                .iter()
                .find(|o| o.load_balancer_port == l.load_balancer_port)
            {
                Some(o) if *o == l => {}
                Some(_) => return Err(duplicate_listener(l.load_balancer_port)),
                None => lb.listeners.push(l),
            }
        }
        if lb.listeners.len() > MAX_LISTENERS {
            return Err(AwsError::new(
                codes::elb::InvalidConfigurationRequestException,
                format!("Exceeded the limit of {MAX_LISTENERS} listeners"),
            ));
        }
        Ok(())
    })?;
    s.bump();
    Ok(json!({}))
}

fn delete_listeners(s: &Elb, ctx: &Ctx, input: Value) -> HandlerResult {
    let name = input.str("LoadBalancerName").unwrap_or_default();
    get_lb(s, ctx, name)?;
    let ports: Vec<i64> = input
        .get("LoadBalancerPorts")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_i64).collect())
        .unwrap_or_default();
    let key = lb_key(ctx, name);
    s.load_balancers.transact::<_, AwsError, _>(|t| {
        let lb = t.get_mut(&key).ok_or_else(|| super::not_found(name))?;
        lb.listeners
            .retain(|l| !ports.contains(&i64::from(l.load_balancer_port)));
        Ok(())
    })?;
    s.bump();
    Ok(json!({}))
}

fn account_limits(_: &Elb, _: &Ctx, _: Value) -> HandlerResult {
    Ok(json!({"Limits": [
        {"Name": "classic-load-balancers", "Max": MAX_LOAD_BALANCERS.to_string()},
        {"Name": "classic-listeners", "Max": MAX_LISTENERS.to_string()},
        {"Name": "classic-registered-instances", "Max": MAX_INSTANCES.to_string()},
    ]}))
}
