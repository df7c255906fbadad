//! CreateTargetGroup, DescribeTargetGroups, ModifyTargetGroup, DeleteTargetGroup.

use super::model::{HealthCheck, TargetGroup};
use super::{group_not_found, key, lb_not_found, tags, validation, Elbv2, SERVICE};
use crate::protocol::codes;
use crate::protocol::AwsError;
use crate::services::input::Input;
use crate::services::page::page;
use crate::services::{random_hex, Ctx, HandlerResult, Registry};
use serde_json::{json, Value};
use std::sync::Arc;

pub fn register(r: &mut Registry, s: &Arc<Elbv2>) {
    r.sync(SERVICE, "CreateTargetGroup", s, create);
    r.sync(SERVICE, "DescribeTargetGroups", s, describe);
    r.sync(SERVICE, "ModifyTargetGroup", s, modify);
    r.sync(SERVICE, "DeleteTargetGroup", s, delete);
}

impl TargetGroup {
    pub fn to_json(&self, load_balancers: &[String]) -> Value {
        let mut v = json!({
            "TargetGroupArn": self.arn,
            "TargetGroupName": self.name,
            "HealthCheckProtocol": self.health.protocol,
            "HealthCheckPort": self.health.port,
            "HealthCheckEnabled": self.health.enabled,
            "HealthCheckIntervalSeconds": self.health.interval,
            "HealthCheckTimeoutSeconds": self.health.timeout,
            "HealthyThresholdCount": self.health.healthy_threshold,
            "UnhealthyThresholdCount": self.health.unhealthy_threshold,
            "LoadBalancerArns": load_balancers,
            "TargetType": self.target_type,
            "IpAddressType": self.ip_address_type,
        });
        if let Some(p) = &self.protocol {
            v["Protocol"] = json!(p);
        }
        if let Some(p) = self.port {
            v["Port"] = json!(p);
        }
        if let Some(vpc) = &self.vpc_id {
            v["VpcId"] = json!(vpc);
        }
        if let Some(p) = &self.health.path {
            v["HealthCheckPath"] = json!(p);
        }
        if let Some(c) = &self.health.http_code {
            v["Matcher"] = json!({"HttpCode": c});
        } else if let Some(c) = &self.health.grpc_code {
            v["Matcher"] = json!({"GrpcCode": c});
        }
        if let Some(p) = &self.protocol_version {
            v["ProtocolVersion"] = json!(p);
        }
        v
    }

    pub fn is_http(&self) -> bool {
        matches!(self.protocol.as_deref(), Some("HTTP" | "HTTPS"))
    }
}

/// ELBv2's three checks of a target group name, in its order and words.
fn check_name(name: &str) -> Result<(), AwsError> {
    if name.chars().count() > 32 {
        return Err(validation(format!(
            "Target group name '{name}' cannot be longer than '32' characters"
        )));
    }
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Err(validation(format!(
            "Target group name '{name}' can only contain characters that are alphanumeric characters or hyphens(-)"
        )));
    }
    if name.starts_with('-') || name.ends_with('-') || name.contains("--") {
        return Err(validation(format!(
            "1 validation error detected: Value '{name}' at 'targetGroup.targetGroupArn.targetGroupName' failed to satisfy constraint: Member must satisfy regular expression pattern: (?!.*--)(?!^-)(?!.*-$)^[A-Za-z0-9-]+$"
        )));
    }
    Ok(())
}

/// Checks a Matcher HttpCode: "200", "200,202", "200-299", codes 200–499 (gRPC: 0–99).
pub fn check_matcher(code: &str, grpc: bool) -> Result<(), AwsError> {
    let (lo, hi) = if grpc { (0, 99) } else { (200, 499) };
    let ok = |c: &str| {
        c.trim()
            .parse::<u16>()
            .is_ok_and(|n| (lo..=hi).contains(&n))
    };
    for part in code.split(',') {
        let valid = match part.split_once('-') {
            Some((a, b)) => {
                ok(a) && ok(b) && a.trim().parse::<u16>().ok() <= b.trim().parse::<u16>().ok()
            }
            None => ok(part),
        };
        if !valid {
            return Err(validation(format!(
                "Health check matcher '{code}' is not valid: use codes from {lo} to {hi}, as a list (200,202) or a range (200-299)"
            )));
        }
    }
    Ok(())
}

/// Applies the input's health-check members onto `h`, then checks the ranges.
fn apply_health(
    h: &mut HealthCheck,
    input: &Value,
    tg_protocol: Option<&str>,
) -> Result<(), AwsError> {
    if let Some(p) = input.str("HealthCheckProtocol") {
        h.protocol = p.to_string();
    }
    if let Some(p) = input.str("HealthCheckPort") {
        if p != "traffic-port" && !p.parse::<u16>().is_ok_and(|n| n > 0) {
            return Err(validation(format!("Health check port '{p}' is not valid")));
        }
        h.port = p.to_string();
    }
    if let Some(e) = input.bool("HealthCheckEnabled") {
        h.enabled = e;
    }
    if let Some(p) = input.str("HealthCheckPath") {
        if !p.starts_with('/') {
            return Err(validation("The health check path must begin with a '/'"));
        }
        h.path = Some(p.to_string());
    }
    if let Some(i) = input.i64("HealthCheckIntervalSeconds") {
        h.interval = i;
    }
    if let Some(t) = input.i64("HealthCheckTimeoutSeconds") {
        h.timeout = t;
    }
    if let Some(t) = input.i64("HealthyThresholdCount") {
        h.healthy_threshold = t;
    }
    if let Some(t) = input.i64("UnhealthyThresholdCount") {
        h.unhealthy_threshold = t;
    }
    if let Some(m) = input.get("Matcher") {
        if let Some(c) = m.str("HttpCode") {
            check_matcher(c, false)?;
            h.http_code = Some(c.to_string());
        }
        if let Some(c) = m.str("GrpcCode") {
            check_matcher(c, true)?;
            h.grpc_code = Some(c.to_string());
        }
    }
    let http_check = matches!(h.protocol.as_str(), "HTTP" | "HTTPS");
    if http_check {
        h.path.get_or_insert_with(|| "/".into());
        if h.grpc_code.is_none() {
            h.http_code.get_or_insert_with(|| {
                if matches!(tg_protocol, Some("HTTP" | "HTTPS")) {
                    "200"
                } else {
                    "200-399"
                }
                .into()
            });
        }
    } else {
        if input.str("HealthCheckPath").is_some() || input.get("Matcher").is_some() {
            return Err(validation(format!(
                "A path and a matcher cannot be used with health check protocol {}",
                h.protocol
            )));
        }
        h.path = None;
        h.http_code = None;
    }
    if !(5..=300).contains(&h.interval) {
        return Err(validation(
            "Health check interval must be between 5 and 300 seconds",
        ));
    }
    if !(2..=120).contains(&h.timeout) {
        return Err(validation(
            "Health check timeout must be between 2 and 120 seconds",
        ));
    }
    // HTTP(S) health checks need a timeout below the interval; the TCP family allows equal.
    let (t, i) = (h.timeout, h.interval);
    if http_check && t >= i {
        return Err(validation(format!(
            "Health check timeout '{t}' must be smaller than the interval '{i}'"
        )));
    }
    if t > i {
        return Err(validation(format!(
            "Health check timeout '{t}' must be smaller than or equal to the interval '{i}'"
        )));
    }
    for t in [h.healthy_threshold, h.unhealthy_threshold] {
        if !(2..=10).contains(&t) {
            return Err(validation(
                "Health check threshold counts must be between 2 and 10",
            ));
        }
    }
    Ok(())
}

fn create(s: &Elbv2, ctx: &Ctx, input: Value) -> HandlerResult {
    let name = input.str("Name").unwrap_or_default().to_string();
    check_name(&name)?;
    let target_type = input.str("TargetType").unwrap_or("instance").to_string();
    let protocol = input.str("Protocol").map(str::to_string);
    let port = input.i64("Port");
    let vpc_id = input.str("VpcId").map(str::to_string);
    if target_type != "lambda" {
        if protocol.is_none() {
            return Err(validation("A protocol must be specified"));
        }
        if port.is_none() {
            return Err(validation("A port must be specified"));
        }
        let Some(vpc) = &vpc_id else {
            return Err(validation("A VPC ID must be specified"));
        };
        if let Some(ec2) = &s.ec2 {
            if ec2.vpc(&ctx.account, &ctx.region, vpc)?.is_none() {
                return Err(validation(format!("The VPC ID '{vpc}' is not found")));
            }
        }
    } else if protocol.is_some() || port.is_some() || vpc_id.is_some() {
        return Err(validation(
            "Protocol, port and VPC cannot be specified for target groups of type lambda",
        ));
    }
    let port = match port {
        Some(p) => Some(
            u16::try_from(p)
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| validation("The port must be between 1 and 65535"))?,
        ),
        None => None,
    };
    let http = matches!(protocol.as_deref(), Some("HTTP" | "HTTPS"));
    let mut health = HealthCheck {
        enabled: target_type != "lambda",
        protocol: if http || protocol.is_none() {
            protocol.clone().unwrap_or_else(|| "HTTP".into())
        } else if protocol.as_deref() == Some("UDP") {
            "TCP".into()
        } else {
            protocol.clone().unwrap_or_else(|| "TCP".into())
        },
        port: "traffic-port".into(),
        path: None,
        interval: if target_type == "lambda" { 35 } else { 30 },
        // Lambda: 30 s and 5 failures (API reference, CreateTargetGroup).
        timeout: if target_type == "lambda" {
            30
        } else if http {
            5
        } else {
            10
        },
        healthy_threshold: 5,
        unhealthy_threshold: if target_type == "lambda" { 5 } else { 2 },
        http_code: None,
        grpc_code: None,
    };
    apply_health(&mut health, &input, protocol.as_deref())?;
    let protocol_version = if http {
        Some(input.str("ProtocolVersion").unwrap_or("HTTP1").to_string())
    } else {
        None
    };
    let new_tags = tags::parse(&input)?;
    let id = random_hex(16);
    let attributes = super::attributes::group_defaults(protocol.as_deref(), &target_type);
    let arn = ctx.arn("elasticloadbalancing", &format!("targetgroup/{name}/{id}"));
    let group = TargetGroup {
        arn: arn.clone(),
        name: name.clone(),
        id,
        target_type,
        protocol,
        protocol_version,
        port,
        vpc_id,
        ip_address_type: input.str("IpAddressType").unwrap_or("ipv4").to_string(),
        health,
        attributes,
    };
    let scope = ctx.scope();
    let result = s.target_groups.transact(|t| {
        let existing = t
            .keys(&scope)
            .into_iter()
            .filter_map(|k| t.get(&k).cloned())
            .find(|g| g.name == name);
        if let Some(e) = existing {
            let same = e.protocol == group.protocol
                && e.port == group.port
                && e.vpc_id == group.vpc_id
                && e.target_type == group.target_type;
            if same {
                return Ok(e);
            }
            return Err(AwsError::new(codes::elbv2::DuplicateTargetGroupNameException,
                format!("A target group with the same name '{name}' exists, but with different settings"),
            ));
        }
        t.put(&key(ctx, &arn), group.clone());
        Ok(group)
    })?;
    if result.arn == arn {
        tags::set(s, ctx, &arn, &new_tags)?;
    }
    let lbs = super::actions::group_load_balancers(s, &scope, &result.arn);
    Ok(json!({"TargetGroups": [result.to_json(&lbs)]}))
}

fn describe(s: &Elbv2, ctx: &Ctx, input: Value) -> HandlerResult {
    let scope = ctx.scope();
    let all: Vec<TargetGroup> = s
        .target_groups
        .scan(&scope)
        .into_iter()
        .map(|(_, g)| g)
        .collect();
    let arns = input.string_list("TargetGroupArns");
    let names = input.string_list("Names");
    let lb = input.str("LoadBalancerArn");
    let given =
        usize::from(!arns.is_empty()) + usize::from(!names.is_empty()) + usize::from(lb.is_some());
    if given > 1 {
        return Err(validation(
            "Specify at most one of LoadBalancerArn, TargetGroupArns and Names",
        ));
    }
    let mut found: Vec<TargetGroup> = if !arns.is_empty() {
        let mut out = Vec::new();
        for a in &arns {
            out.push(
                all.iter()
                    .find(|g| &g.arn == a)
                    .cloned()
                    .ok_or_else(group_not_found)?,
            );
        }
        out
    } else if !names.is_empty() {
        let mut out = Vec::new();
        for n in &names {
            out.push(all.iter().find(|g| &g.name == n).cloned().ok_or_else(|| {
                AwsError::new(
                    codes::elbv2::TargetGroupNotFoundException,
                    format!("Target groups '[{n}]' not found"),
                )
            })?);
        }
        out
    } else if let Some(lb) = lb {
        if !s.load_balancers.contains(&key(ctx, lb)) {
            return Err(lb_not_found());
        }
        all.into_iter()
            .filter(|g| {
                super::actions::group_load_balancers(s, &scope, &g.arn)
                    .iter()
                    .any(|l| l == lb)
            })
            .collect()
    } else {
        all
    };
    found.sort_by(|a, b| a.name.cmp(&b.name).then(a.arn.cmp(&b.arn)));
    let size = input.i64("PageSize").unwrap_or(400).clamp(1, 400) as usize;
    let (items, next) = page(
        found,
        |g| format!("{}\0{}", g.name, g.arn),
        input.str("Marker"),
        size,
        codes::common::ValidationError,
    )?;
    let mut out = json!({
        "TargetGroups": items
            .iter()
            .map(|g| g.to_json(&super::actions::group_load_balancers(s, &scope, &g.arn)))
            .collect::<Vec<_>>(),
    });
    if let Some(n) = next {
        out["NextMarker"] = json!(n);
    }
    Ok(out)
}

fn modify(s: &Elbv2, ctx: &Ctx, input: Value) -> HandlerResult {
    let arn = input.str("TargetGroupArn").unwrap_or_default().to_string();
    let group = s.target_groups.transact::<_, AwsError, _>(|t| {
        let g = t.get_mut(&key(ctx, &arn)).ok_or_else(group_not_found)?;
        let mut health = g.health.clone();
        let protocol = g.protocol.clone();
        apply_health(&mut health, &input, protocol.as_deref())?;
        g.health = health;
        Ok(g.clone())
    })?;
    s.bump();
    let lbs = super::actions::group_load_balancers(s, &ctx.scope(), &arn);
    Ok(json!({"TargetGroups": [group.to_json(&lbs)]}))
}

fn delete(s: &Elbv2, ctx: &Ctx, input: Value) -> HandlerResult {
    let arn = input.str("TargetGroupArn").unwrap_or_default().to_string();
    let Some(group) = s.target_groups.get(&key(ctx, &arn)) else {
        return Ok(json!({}));
    };
    if !super::actions::group_load_balancers(s, &ctx.scope(), &arn).is_empty() {
        return Err(AwsError::new(
            codes::elbv2::ResourceInUseException,
            format!("Target group '{arn}' is currently in use by a listener or a rule"),
        ));
    }
    let prefix = format!("{}{}/", ctx.scope(), group.id);
    s.targets.transact::<_, AwsError, _>(|t| {
        for k in t.keys(&prefix) {
            t.remove(&k);
        }
        Ok(())
    })?;
    s.target_groups.remove(&key(ctx, &arn))?;
    tags::remove_all(s, ctx, &arn)?;
    s.health.forget_group(&arn);
    s.metrics.forget_group(&arn);
    s.bump();
    Ok(json!({}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matchers() {
        for ok in ["200", "200,202", "200-299", "200-499,302"] {
            assert!(check_matcher(ok, false).is_ok(), "{ok}");
        }
        for bad in ["100", "600", "299-200", "abc", ""] {
            assert!(check_matcher(bad, false).is_err(), "{bad}");
        }
        assert!(check_matcher("0-99", true).is_ok());
    }
}
