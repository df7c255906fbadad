//! Checking and normalizing rule actions and conditions as ELBv2 does: defaults filled in,
//! `TargetGroupArn` and `ForwardConfig` kept in step, target groups checked.

use super::model::{
    Action, Condition, ForwardConfig, GroupStickiness, LoadBalancer, ValuesConfig, WeightedGroup,
};
use super::{group_not_found, key, validation, Elbv2};
use crate::protocol::codes;
use crate::protocol::AwsError;
use crate::services::Ctx;
use std::collections::BTreeSet;

const TERMINAL: [&str; 3] = ["forward", "redirect", "fixed-response"];

fn invalid_action(message: impl Into<String>) -> AwsError {
    AwsError::new(codes::elbv2::InvalidLoadBalancerActionException, message)
}

/// The target groups an action list forwards to.
pub fn forwarded_groups(actions: &[Action]) -> Vec<String> {
    let mut out = Vec::new();
    for a in actions {
        if let Some(arn) = &a.target_group_arn {
            out.push(arn.clone());
        }
        if let Some(f) = &a.forward_config {
            out.extend(f.target_groups.iter().map(|g| g.target_group_arn.clone()));
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The load balancers whose listeners or rules forward to a target group.
pub fn group_load_balancers(s: &Elbv2, scope: &str, group_arn: &str) -> Vec<String> {
    let mut lbs: BTreeSet<String> = BTreeSet::new();
    let listeners = s.listeners.scan(scope);
    for (_, l) in &listeners {
        if forwarded_groups(&l.default_actions)
            .iter()
            .any(|g| g == group_arn)
        {
            lbs.insert(l.lb_arn.clone());
        }
    }
    for (_, r) in s.rules.scan(scope) {
        if forwarded_groups(&r.actions).iter().any(|g| g == group_arn) {
            if let Some((_, l)) = listeners.iter().find(|(_, l)| l.arn == r.listener_arn) {
                lbs.insert(l.lb_arn.clone());
            }
        }
    }
    lbs.into_iter().collect()
}

/// Checks and normalizes the actions of a listener or rule of `lb`.
pub fn normalize(
    s: &Elbv2,
    ctx: &Ctx,
    lb: &LoadBalancer,
    protocol: &str,
    mut actions: Vec<Action>,
) -> Result<Vec<Action>, AwsError> {
    if actions.is_empty() {
        return Err(validation("At least one action must be specified"));
    }
    if actions.len() > 1 && actions.iter().any(|a| a.order.is_none()) {
        return Err(invalid_action(
            "An order must be specified for every action when more than one action is specified",
        ));
    }
    actions.sort_by_key(|a| a.order.unwrap_or(0));
    let terminals = actions
        .iter()
        .filter(|a| TERMINAL.contains(&a.kind.as_str()))
        .count();
    if terminals != 1
        || !actions
            .last()
            .is_some_and(|a| TERMINAL.contains(&a.kind.as_str()))
    {
        return Err(invalid_action(
            "Exactly one terminal action (forward, redirect or fixed-response) must be specified, and it must be last",
        ));
    }
    let mut out = Vec::with_capacity(actions.len());
    for mut a in actions {
        match a.kind.as_str() {
            "forward" => forward(s, ctx, lb, &mut a)?,
            "redirect" => {
                if !lb.is_application() {
                    return Err(invalid_action(
                        "Redirect actions are only supported by Application Load Balancers",
                    ));
                }
                let r = a
                    .redirect_config
                    .as_mut()
                    .ok_or_else(|| validation("A redirect action requires RedirectConfig"))?;
                r.protocol.get_or_insert_with(|| "#{protocol}".into());
                r.port.get_or_insert_with(|| "#{port}".into());
                r.host.get_or_insert_with(|| "#{host}".into());
                r.path.get_or_insert_with(|| "/#{path}".into());
                r.query.get_or_insert_with(|| "#{query}".into());
                if let Some(p) = &r.path {
                    if !p.starts_with('/') {
                        return Err(validation("The redirect path must start with a '/'"));
                    }
                }
                a.target_group_arn = None;
                a.forward_config = None;
                a.fixed_response_config = None;
            }
            "fixed-response" => {
                if !lb.is_application() {
                    return Err(invalid_action(
                        "Fixed-response actions are only supported by Application Load Balancers",
                    ));
                }
                let f = a.fixed_response_config.as_ref().ok_or_else(|| {
                    validation("A fixed-response action requires FixedResponseConfig")
                })?;
                let code = f.status_code.as_bytes();
                if code.len() != 3
                    || !matches!(code[0], b'2' | b'4' | b'5')
                    || !code.iter().all(u8::is_ascii_digit)
                {
                    return Err(validation(
                        "The fixed-response status code must be 2XX, 4XX or 5XX",
                    ));
                }
                if let Some(t) = f.content_type.as_deref() {
                    if !FIXED_RESPONSE_CONTENT_TYPES.contains(&t) {
                        return Err(validation(format!(
                            "The content type '{t}' is not valid; valid content types are: {}",
                            FIXED_RESPONSE_CONTENT_TYPES.join(", ")
                        )));
                    }
                }
                if f.message_body.as_ref().is_some_and(|b| b.len() > 1024) {
                    return Err(validation(
                        "The fixed-response message body can be at most 1024 characters",
                    ));
                }
                a.target_group_arn = None;
                a.forward_config = None;
            }
            "authenticate-oidc" | "authenticate-cognito" => {
                if protocol != "HTTPS" {
                    return Err(invalid_action(
                        "Authenticate actions are only supported on HTTPS listeners",
                    ));
                }
            }
            other => {
                return Err(invalid_action(format!(
                    "The action type '{other}' is not supported"
                )))
            }
        }
        out.push(a);
    }
    Ok(out)
}

fn forward(s: &Elbv2, ctx: &Ctx, lb: &LoadBalancer, a: &mut Action) -> Result<(), AwsError> {
    let mut config = a.forward_config.take().unwrap_or_default();
    match (&a.target_group_arn, config.target_groups.is_empty()) {
        (Some(arn), true) => config.target_groups.push(WeightedGroup {
            target_group_arn: arn.clone(),
            weight: Some(1),
        }),
        (Some(arn), false) => {
            if config.target_groups.len() != 1 || &config.target_groups[0].target_group_arn != arn {
                return Err(invalid_action(
                    "TargetGroupArn and ForwardConfig must name the same single target group",
                ));
            }
        }
        (None, true) => {
            return Err(validation(
                "A forward action requires TargetGroupArn or ForwardConfig",
            ))
        }
        (None, false) => {}
    }
    if config.target_groups.len() > 5 {
        return Err(invalid_action(
            "A forward action can name at most 5 target groups",
        ));
    }
    if let Some(d) = super::duplicates(
        config
            .target_groups
            .iter()
            .map(|g| g.target_group_arn.as_str()),
    ) {
        return Err(invalid_action(format!(
            "Target group '{d}' is named more than once"
        )));
    }
    if !lb.is_application() && config.target_groups.len() > 1 {
        return Err(invalid_action(
            "Network Load Balancers forward to one target group",
        ));
    }
    for g in &mut config.target_groups {
        let w = *g.weight.get_or_insert(1);
        if !(0..=999).contains(&w) {
            return Err(validation(format!(
                "Weight {w} is not valid: it must be between 0 and 999"
            )));
        }
        let group = s
            .target_groups
            .get(&key(ctx, &g.target_group_arn))
            .ok_or_else(group_not_found)?;
        let http = matches!(group.protocol.as_deref(), Some("HTTP" | "HTTPS"));
        if lb.is_application() && !http && group.target_type != "lambda" {
            return Err(AwsError::new(codes::elbv2::IncompatibleProtocolsException,
                format!("The target group '{}' has protocol {}; an Application Load Balancer needs HTTP or HTTPS", group.name, group.protocol.as_deref().unwrap_or("none")),
            ));
        }
        if !lb.is_application() && http {
            return Err(AwsError::new(codes::elbv2::IncompatibleProtocolsException,
                format!("The target group '{}' has protocol HTTP; a Network Load Balancer needs TCP, UDP, TCP_UDP or TLS", group.name),
            ));
        }
        if group.vpc_id.as_deref().is_some_and(|v| v != lb.vpc_id) {
            return Err(validation(format!(
                "The target group '{}' is in VPC {} but the load balancer is in VPC {}",
                group.name,
                group.vpc_id.as_deref().unwrap_or_default(),
                lb.vpc_id
            )));
        }
        let users = group_load_balancers(s, &ctx.scope(), &g.target_group_arn);
        if users.iter().any(|u| u != &lb.arn) {
            return Err(AwsError::new(codes::elbv2::TargetGroupAssociationLimitException,
                format!(
                    "The following target groups cannot be associated with more than one load balancer: {}",
                    g.target_group_arn
                ),
            ));
        }
    }
    let stick = config
        .target_group_stickiness_config
        .get_or_insert(GroupStickiness {
            enabled: Some(false),
            duration_seconds: None,
        });
    stick.enabled.get_or_insert(false);
    if stick.enabled == Some(true) {
        let d = stick.duration_seconds.unwrap_or(3600);
        if !(1..=604_800).contains(&d) {
            return Err(validation(
                "The stickiness duration must be between 1 and 604800 seconds",
            ));
        }
        stick.duration_seconds = Some(d);
    }
    a.target_group_arn = match config.target_groups.as_slice() {
        [one] => Some(one.target_group_arn.clone()),
        _ => None,
    };
    a.forward_config = Some(ForwardConfig { ..config });
    a.redirect_config = None;
    a.fixed_response_config = None;
    Ok(())
}

/// Checks and normalizes rule conditions: every field once (http-header and query-string may
/// repeat), values present, `Values` and the field's config in step.
/// The content types a fixed-response action may name (FixedResponseActionConfig, API reference).
pub const FIXED_RESPONSE_CONTENT_TYPES: [&str; 5] = [
    "text/plain",
    "text/css",
    "text/html",
    "application/javascript",
    "application/json",
];

/// The longest value a condition may carry (host names, path patterns, header values, query
/// string keys and values: "The maximum size of each string is 128 characters").
pub const MAX_CONDITION_VALUE: usize = 128;
/// The longest HTTP header name and request method ("The maximum size is 40 characters").
pub const MAX_HEADER_NAME: usize = 40;

fn too_long(field: &str, v: &str, max: usize) -> AwsError {
    validation(format!(
        "The value '{v}' of the '{field}' condition is longer than {max} characters"
    ))
}

/// The config member that carries a field's values.
fn config_name(field: &str) -> &'static str {
    match field {
        "host-header" => "HostHeaderConfig",
        "path-pattern" => "PathPatternConfig",
        "http-header" => "HttpHeaderConfig",
        "query-string" => "QueryStringConfig",
        "http-request-method" => "HttpRequestMethodConfig",
        _ => "SourceIpConfig",
    }
}

pub fn normalize_conditions(conditions: Vec<Condition>) -> Result<Vec<Condition>, AwsError> {
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut out = Vec::with_capacity(conditions.len());
    for mut c in conditions {
        let Some(field) = c.field.clone() else {
            return Err(validation("A condition field must be specified"));
        };
        let repeatable = field == "http-header" || field == "query-string";
        if !repeatable && !seen.insert(field.clone()) {
            return Err(validation(format!(
                "A rule can have only one '{field}' condition"
            )));
        }
        let legacy = c.values.take().unwrap_or_default();
        // The legacy Values member: host-header and path-pattern only, a single value
        // (RuleCondition.Values in the API reference); more values go in the config.
        if !legacy.is_empty() {
            if field != "host-header" && field != "path-pattern" {
                return Err(validation(format!(
                    "Values can only be specified for 'host-header' and 'path-pattern' conditions; use '{}' for a condition of type '{field}'",
                    config_name(&field)
                )));
            }
            if legacy.len() > 1 {
                return Err(validation(format!(
                    "Only one value can be specified in Values for a condition of type '{field}'; use '{}' for more",
                    config_name(&field)
                )));
            }
        }
        let merge =
            |cfg: &mut Option<ValuesConfig>, legacy: &[String]| -> Result<Vec<String>, AwsError> {
                let mut values = cfg.take().map(|v| v.values).unwrap_or_default();
                if !legacy.is_empty() && !values.is_empty() {
                    return Err(validation(format!(
                        "You cannot provide both Values and '{}' for a condition of type '{field}'",
                        config_name(&field)
                    )));
                }
                values.extend(legacy.iter().cloned());
                if values.is_empty() {
                    return Err(validation(format!(
                        "The '{field}' condition needs at least one value"
                    )));
                }
                if let Some(v) = values
                    .iter()
                    .find(|v| v.chars().count() > MAX_CONDITION_VALUE)
                {
                    return Err(too_long(&field, v, MAX_CONDITION_VALUE));
                }
                *cfg = Some(ValuesConfig {
                    values: values.clone(),
                });
                Ok(values)
            };
        match field.as_str() {
            "host-header" => {
                let v = merge(&mut c.host_header_config, &legacy)?;
                c.values = Some(v);
            }
            "path-pattern" => {
                let v = merge(&mut c.path_pattern_config, &legacy)?;
                c.values = Some(v);
            }
            "http-request-method" => {
                let v = merge(&mut c.http_request_method_config, &legacy)?;
                if let Some(m) = v.iter().find(|m| m.len() > MAX_HEADER_NAME) {
                    return Err(too_long(&field, m, MAX_HEADER_NAME));
                }
                if v.iter().any(|m| {
                    m.is_empty()
                        || !m
                            .chars()
                            .all(|ch| ch.is_ascii_uppercase() || ch == '_' || ch == '-')
                }) {
                    return Err(validation(
                        "HTTP request methods are upper-case letters, '_' and '-'",
                    ));
                }
            }
            "source-ip" => {
                let v = merge(&mut c.source_ip_config, &legacy)?;
                if let Some(bad) = v.iter().find(|ip| super::model::parse_cidr(ip).is_none()) {
                    return Err(validation(format!("'{bad}' is not a valid CIDR block")));
                }
            }
            "http-header" => {
                let h = c.http_header_config.as_ref().ok_or_else(|| {
                    validation("An http-header condition requires HttpHeaderConfig")
                })?;
                if h.http_header_name.is_empty() || h.values.is_empty() {
                    return Err(validation(
                        "An http-header condition needs a header name and values",
                    ));
                }
                let name = &h.http_header_name;
                if name.len() > MAX_HEADER_NAME {
                    return Err(too_long(&field, name, MAX_HEADER_NAME));
                }
                // An RFC 7230 token: letters, digits and !#$%&'*+-.^_`|~.
                if !name
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(ch))
                {
                    return Err(validation(format!(
                        "The HTTP header name '{name}' contains characters that are not valid"
                    )));
                }
                if name.eq_ignore_ascii_case("host") {
                    return Err(validation(
                        "Use a 'host-header' condition to match the Host header",
                    ));
                }
                if let Some(v) = h
                    .values
                    .iter()
                    .find(|v| v.chars().count() > MAX_CONDITION_VALUE)
                {
                    return Err(too_long(&field, v, MAX_CONDITION_VALUE));
                }
            }
            "query-string" => {
                let q = c.query_string_config.as_ref().ok_or_else(|| {
                    validation("A query-string condition requires QueryStringConfig")
                })?;
                if q.values.is_empty() {
                    return Err(validation(
                        "A query-string condition needs at least one key/value pair",
                    ));
                }
                for kv in &q.values {
                    if kv.value.is_empty() {
                        return Err(validation(
                            "A query-string condition's key/value pair must have a Value",
                        ));
                    }
                    for part in kv.key.iter().chain(std::iter::once(&kv.value)) {
                        if part.chars().count() > MAX_CONDITION_VALUE {
                            return Err(too_long(&field, part, MAX_CONDITION_VALUE));
                        }
                    }
                }
            }
            other => {
                return Err(validation(format!(
                    "The condition field '{other}' is not valid"
                )))
            }
        }
        out.push(c);
    }
    Ok(out)
}
