//! Describe/ModifyLoadBalancerAttributes and Describe/ModifyTargetGroupAttributes.

use super::{group_not_found, key, lb_not_found, validation, Elbv2, SERVICE};
use crate::protocol::codes;
use crate::protocol::AwsError;
use crate::services::input::Input;
use crate::services::{Ctx, HandlerResult, Registry};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

pub fn register(r: &mut Registry, s: &Arc<Elbv2>) {
    r.sync(SERVICE, "DescribeLoadBalancerAttributes", s, describe_lb);
    r.sync(SERVICE, "ModifyLoadBalancerAttributes", s, modify_lb);
    r.sync(SERVICE, "DescribeTargetGroupAttributes", s, describe_group);
    r.sync(SERVICE, "ModifyTargetGroupAttributes", s, modify_group);
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A new load balancer's attributes, as AWS lists them.
pub fn lb_defaults(application: bool) -> BTreeMap<String, String> {
    let mut m = map(&[
        ("access_logs.s3.enabled", "false"),
        ("access_logs.s3.bucket", ""),
        ("access_logs.s3.prefix", ""),
        ("deletion_protection.enabled", "false"),
    ]);
    if application {
        m.extend(map(&[
            ("idle_timeout.timeout_seconds", "60"),
            ("client_keep_alive.seconds", "3600"),
            ("connection_logs.s3.enabled", "false"),
            ("connection_logs.s3.bucket", ""),
            ("connection_logs.s3.prefix", ""),
            ("routing.http.desync_mitigation_mode", "defensive"),
            ("routing.http.drop_invalid_header_fields.enabled", "false"),
            ("routing.http.preserve_host_header.enabled", "false"),
            (
                "routing.http.x_amzn_tls_version_and_cipher_suite.enabled",
                "false",
            ),
            ("routing.http.xff_client_port.enabled", "false"),
            ("routing.http.xff_header_processing.mode", "append"),
            ("routing.http2.enabled", "true"),
            ("waf.fail_open.enabled", "false"),
            ("load_balancing.cross_zone.enabled", "true"),
            ("health_check_logs.s3.enabled", "false"),
            ("health_check_logs.s3.bucket", ""),
            ("health_check_logs.s3.prefix", ""),
            ("zonal_shift.config.enabled", "false"),
        ]));
    } else {
        m.extend(map(&[
            ("load_balancing.cross_zone.enabled", "false"),
            ("dns_record.client_routing_policy", "any_availability_zone"),
            ("secondary_ips.auto_assigned.per_subnet", "0"),
            ("zonal_shift.config.enabled", "false"),
        ]));
    }
    m
}

/// The target group protocols a Network Load Balancer uses.
fn is_network(protocol: Option<&str>) -> bool {
    matches!(protocol, Some("TCP" | "TLS" | "UDP" | "TCP_UDP"))
}

/// A new target group's attributes: the ones the API reference documents for its kind (ALB,
/// NLB, GWLB or Lambda targets), with their defaults.
pub fn group_defaults(protocol: Option<&str>, target_type: &str) -> BTreeMap<String, String> {
    if target_type == "lambda" {
        return map(&[("lambda.multi_value_headers.enabled", "false")]);
    }
    let mut m = map(&[
        ("deregistration_delay.timeout_seconds", "300"),
        ("stickiness.enabled", "false"),
    ]);
    if protocol == Some("GENEVE") {
        m.extend(map(&[
            ("stickiness.type", "source_ip_dest_ip_proto"),
            ("target_failover.on_deregistration", "no_rebalance"),
            ("target_failover.on_unhealthy", "no_rebalance"),
        ]));
        return m;
    }
    m.extend(health_defaults());
    if is_network(protocol) {
        // Client IPs are preserved by default for instance targets and for UDP ones.
        let preserve = target_type == "instance" || matches!(protocol, Some("UDP" | "TCP_UDP"));
        m.extend(map(&[
            ("stickiness.type", "source_ip"),
            (
                "deregistration_delay.connection_termination.enabled",
                "false",
            ),
            (
                "preserve_client_ip.enabled",
                if preserve { "true" } else { "false" },
            ),
            ("proxy_protocol_v2.enabled", "false"),
            (
                "target_health_state.unhealthy.connection_termination.enabled",
                "true",
            ),
            (
                "target_health_state.unhealthy.draining_interval_seconds",
                "0",
            ),
        ]));
    } else {
        m.extend(map(&[
            ("stickiness.type", "lb_cookie"),
            ("stickiness.lb_cookie.duration_seconds", "86400"),
            ("stickiness.app_cookie.cookie_name", ""),
            ("stickiness.app_cookie.duration_seconds", "86400"),
            ("slow_start.duration_seconds", "0"),
            ("load_balancing.algorithm.type", "round_robin"),
            ("load_balancing.algorithm.anomaly_mitigation", "off"),
        ]));
    }
    m
}

/// Cross-zone and target group health: ALB and NLB target groups.
fn health_defaults() -> BTreeMap<String, String> {
    map(&[
        (
            "load_balancing.cross_zone.enabled",
            "use_load_balancer_configuration",
        ),
        (
            "target_group_health.dns_failover.minimum_healthy_targets.count",
            "1",
        ),
        (
            "target_group_health.dns_failover.minimum_healthy_targets.percentage",
            "off",
        ),
        (
            "target_group_health.unhealthy_state_routing.minimum_healthy_targets.count",
            "1",
        ),
        (
            "target_group_health.unhealthy_state_routing.minimum_healthy_targets.percentage",
            "off",
        ),
    ])
}

pub fn to_list(m: &BTreeMap<String, String>) -> Value {
    json!(m
        .iter()
        .map(|(k, v)| json!({"Key": k, "Value": v}))
        .collect::<Vec<_>>())
}

/// The input's Attributes as a map.
pub fn from_list(input: &Value) -> Result<BTreeMap<String, String>, AwsError> {
    let mut out = BTreeMap::new();
    if let Some(Value::Array(items)) = input.get("Attributes") {
        for i in items {
            let k = i.str("Key").unwrap_or_default().to_string();
            let v = i.str("Value").unwrap_or_default().to_string();
            out.insert(k, v);
        }
    }
    Ok(out)
}

fn int_in(k: &str, v: &str, lo: i64, hi: i64) -> Result<(), AwsError> {
    match v.parse::<i64>() {
        Ok(n) if (lo..=hi).contains(&n) => Ok(()),
        _ => Err(validation(format!(
            "'{v}' is not a valid value for {k}: it must be an integer from {lo} to {hi}"
        ))),
    }
}

fn boolean(k: &str, v: &str) -> Result<(), AwsError> {
    if v == "true" || v == "false" {
        Ok(())
    } else {
        Err(validation(format!(
            "'{v}' is not a valid value for {k}: it must be true or false"
        )))
    }
}

fn one_of(k: &str, v: &str, allowed: &[&str]) -> Result<(), AwsError> {
    if allowed.contains(&v) {
        Ok(())
    } else {
        Err(validation(format!(
            "'{v}' is not a valid value for {k}: it must be one of {}",
            allowed.join(", ")
        )))
    }
}

fn check_lb(k: &str, v: &str) -> Result<(), AwsError> {
    match k {
        "secondary_ips.auto_assigned.per_subnet" => int_in(k, v, 0, 7),
        "idle_timeout.timeout_seconds" => int_in(k, v, 1, 4000),
        "client_keep_alive.seconds" => int_in(k, v, 60, 604_800),
        "routing.http.desync_mitigation_mode" => {
            one_of(k, v, &["monitor", "defensive", "strictest"])
        }
        "routing.http.xff_header_processing.mode" => {
            one_of(k, v, &["append", "preserve", "remove"])
        }
        "dns_record.client_routing_policy" => one_of(
            k,
            v,
            &[
                "availability_zone_affinity",
                "partial_availability_zone_affinity",
                "any_availability_zone",
            ],
        ),
        _ if k.ends_with(".enabled") => boolean(k, v),
        _ => Ok(()),
    }
}

fn check_group(k: &str, v: &str) -> Result<(), AwsError> {
    match k {
        "deregistration_delay.timeout_seconds" => int_in(k, v, 0, 3600),
        "slow_start.duration_seconds" => {
            int_in(k, v, 0, 900)?;
            if v != "0" {
                int_in(k, v, 30, 900)?;
            }
            Ok(())
        }
        "load_balancing.algorithm.type" => one_of(
            k,
            v,
            &[
                "round_robin",
                "least_outstanding_requests",
                "weighted_random",
            ],
        ),
        "load_balancing.algorithm.anomaly_mitigation" => one_of(k, v, &["on", "off"]),
        "stickiness.type" => one_of(
            k,
            v,
            &[
                "lb_cookie",
                "app_cookie",
                "source_ip",
                "source_ip_dest_ip",
                "source_ip_dest_ip_proto",
            ],
        ),
        "stickiness.lb_cookie.duration_seconds" | "stickiness.app_cookie.duration_seconds" => {
            int_in(k, v, 1, 604_800)
        }
        "stickiness.app_cookie.cookie_name" => {
            if v.starts_with("AWSALB") || v.starts_with("AWSALBAPP") || v.starts_with("AWSALBTG") {
                Err(validation(
                    "The cookie name cannot begin with AWSALB, AWSALBAPP or AWSALBTG",
                ))
            } else {
                Ok(())
            }
        }
        _ if k.ends_with(".enabled") => boolean(k, v),
        _ => Ok(()),
    }
}

/// stickiness.type must fit the load balancer the target group serves: lb_cookie or app_cookie
/// (ALB: HTTP, HTTPS), source_ip (NLB: TCP, UDP, TCP_UDP; not TLS), source_ip_dest_ip[_proto]
/// (GWLB: GENEVE).
fn check_stickiness(
    protocol: Option<&str>,
    attrs: &BTreeMap<String, String>,
) -> Result<(), AwsError> {
    let kind = attrs
        .get("stickiness.type")
        .map(String::as_str)
        .unwrap_or("");
    let enabled = attrs.get("stickiness.enabled").map(String::as_str) == Some("true");
    let proto = protocol.unwrap_or_default();
    let unsupported = || {
        AwsError::new(codes::elbv2::InvalidConfigurationRequestException,
            format!("Stickiness type '{kind}' is not supported for target groups with the {proto} protocol"),
        )
    };
    match kind {
        "source_ip_dest_ip" | "source_ip_dest_ip_proto" if proto != "GENEVE" => Err(validation(
            "'Stickiness type' must be one of [app_cookie, lb_cookie, source_ip]",
        )),
        _ if proto == "GENEVE" && !kind.starts_with("source_ip_dest_ip") => Err(validation(
            format!("'{kind}' must be one of [source_ip_dest_ip_proto, source_ip_dest_ip]"),
        )),
        "source_ip" if proto == "TLS" && enabled => Err(AwsError::new(
            codes::elbv2::InvalidConfigurationRequestException,
            "You cannot enable stickiness on target groups with the TLS protocol",
        )),
        "source_ip" if matches!(proto, "HTTP" | "HTTPS") => Err(unsupported()),
        "lb_cookie" | "app_cookie" if is_network(protocol) => Err(unsupported()),
        "app_cookie"
            if enabled
                && attrs
                    .get("stickiness.app_cookie.cookie_name")
                    .is_none_or(String::is_empty) =>
        {
            Err(AwsError::new(
                codes::elbv2::InvalidConfigurationRequestException,
                "You must set an application cookie name to enable stickiness of type 'app_cookie'",
            ))
        }
        _ => Ok(()),
    }
}

fn describe_lb(s: &Elbv2, ctx: &Ctx, input: Value) -> HandlerResult {
    let arn = input.str("LoadBalancerArn").unwrap_or_default();
    let lb = s
        .load_balancers
        .get(&key(ctx, arn))
        .ok_or_else(lb_not_found)?;
    Ok(json!({"Attributes": to_list(&lb.attributes)}))
}

fn modify_lb(s: &Elbv2, ctx: &Ctx, input: Value) -> HandlerResult {
    let arn = input.str("LoadBalancerArn").unwrap_or_default().to_string();
    let changes = from_list(&input)?;
    let lb = s.load_balancers.transact(|t| {
        let lb = t.get_mut(&key(ctx, &arn)).ok_or_else(lb_not_found)?;
        let known = lb_defaults(lb.is_application());
        for (k, v) in &changes {
            if !known.contains_key(k) {
                return Err(validation(format!(
                    "Load balancer attribute key '{k}' is not recognized"
                )));
            }
            check_lb(k, v)?;
            lb.attributes.insert(k.clone(), v.clone());
        }
        Ok(lb.clone())
    })?;
    s.bump();
    Ok(json!({"Attributes": to_list(&lb.attributes)}))
}

fn describe_group(s: &Elbv2, ctx: &Ctx, input: Value) -> HandlerResult {
    let arn = input.str("TargetGroupArn").unwrap_or_default();
    let g = s
        .target_groups
        .get(&key(ctx, arn))
        .ok_or_else(group_not_found)?;
    Ok(json!({"Attributes": to_list(&g.attributes)}))
}

fn modify_group(s: &Elbv2, ctx: &Ctx, input: Value) -> HandlerResult {
    let arn = input.str("TargetGroupArn").unwrap_or_default().to_string();
    let changes = from_list(&input)?;
    let g = s.target_groups.transact(|t| {
        let g = t.get_mut(&key(ctx, &arn)).ok_or_else(group_not_found)?;
        let known = group_defaults(g.protocol.as_deref(), &g.target_type);
        for (k, v) in &changes {
            if !known.contains_key(k) {
                return Err(validation(format!(
                    "Target group attribute key '{k}' is not recognized"
                )));
            }
            check_group(k, v)?;
            g.attributes.insert(k.clone(), v.clone());
        }
        if changes.contains_key("stickiness.type") || changes.contains_key("stickiness.enabled") {
            check_stickiness(g.protocol.as_deref(), &g.attributes)?;
        }
        let slow = g
            .attributes
            .get("slow_start.duration_seconds")
            .map(String::as_str)
            .unwrap_or("0");
        let algo = g
            .attributes
            .get("load_balancing.algorithm.type")
            .map(String::as_str);
        if slow != "0" && algo == Some("least_outstanding_requests") {
            return Err(AwsError::new(
                codes::elbv2::InvalidConfigurationRequestException,
                "Slow start cannot be combined with the least outstanding requests algorithm",
            ));
        }
        Ok(g.clone())
    })?;
    s.bump();
    Ok(json!({"Attributes": to_list(&g.attributes)}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_attribute_ranges() {
        assert!(check_group("deregistration_delay.timeout_seconds", "0").is_ok());
        assert!(check_group("deregistration_delay.timeout_seconds", "3601").is_err());
        assert!(check_group("slow_start.duration_seconds", "10").is_err());
        assert!(check_group("slow_start.duration_seconds", "30").is_ok());
        assert!(check_group("load_balancing.algorithm.type", "random").is_err());
        assert!(check_group("stickiness.enabled", "yes").is_err());
    }
}
