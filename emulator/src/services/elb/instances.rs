//! RegisterInstancesWithLoadBalancer, DeregisterInstancesFromLoadBalancer, ConfigureHealthCheck,
//! DescribeInstanceHealth.

use super::load_balancers::MAX_INSTANCES;
use super::{get_lb, lb_key, validation, Elb, HealthCheckConfig, SERVICE};
use crate::protocol::codes;
use crate::protocol::AwsError;
use crate::services::input::Input;
use crate::services::{Ctx, HandlerResult, Registry};
use serde_json::{json, Value};
use std::sync::Arc;

pub fn register(r: &mut Registry, s: &Arc<Elb>) {
    r.sync(
        SERVICE,
        "RegisterInstancesWithLoadBalancer",
        s,
        register_instances,
    );
    r.sync(
        SERVICE,
        "DeregisterInstancesFromLoadBalancer",
        s,
        deregister_instances,
    );
    r.sync(SERVICE, "ConfigureHealthCheck", s, configure_health_check);
    r.sync(
        SERVICE,
        "DescribeInstanceHealth",
        s,
        describe_instance_health,
    );
}

/// The InstanceId of each member of the Instances list.
fn instance_ids(input: &Value) -> Vec<String> {
    input
        .get("Instances")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|i| i.str("InstanceId").map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn invalid_instances(ids: &[String]) -> AwsError {
    AwsError::new(
        codes::elb::InvalidEndPointException,
        format!(
            "The following instances are not valid: [{}]",
            ids.join(", ")
        ),
    )
}

fn instances_json(ids: &[String]) -> Value {
    json!(ids
        .iter()
        .map(|i| json!({"InstanceId": i}))
        .collect::<Vec<_>>())
}

fn register_instances(s: &Elb, ctx: &Ctx, input: Value) -> HandlerResult {
    let name = input.str("LoadBalancerName").unwrap_or_default();
    get_lb(s, ctx, name)?;
    let ids = instance_ids(&input);
    let bad: Vec<String> = ids
        .iter()
        .filter(|i| !s.instance_exists(&ctx.account, &ctx.region, i))
        .cloned()
        .collect();
    if !bad.is_empty() {
        return Err(invalid_instances(&bad));
    }
    let key = lb_key(ctx, name);
    let now_registered = s.load_balancers.transact(|t| {
        let lb = t.get_mut(&key).ok_or_else(|| super::not_found(name))?;
        for id in ids {
            if !lb.instances.contains(&id) {
                lb.instances.push(id);
            }
        }
        if lb.instances.len() > MAX_INSTANCES {
            return Err(AwsError::new(
                codes::elb::InvalidEndPointException,
                format!("Exceeded the limit of {MAX_INSTANCES} registered instances"),
            ));
        }
        Ok(lb.instances.clone())
    })?;
    s.bump();
    Ok(json!({"Instances": instances_json(&now_registered)}))
}

fn deregister_instances(s: &Elb, ctx: &Ctx, input: Value) -> HandlerResult {
    let name = input.str("LoadBalancerName").unwrap_or_default();
    let lb = get_lb(s, ctx, name)?;
    let ids = instance_ids(&input);
    let bad: Vec<String> = ids
        .iter()
        .filter(|i| !lb.instances.contains(i))
        .cloned()
        .collect();
    if !bad.is_empty() {
        return Err(invalid_instances(&bad));
    }
    let key = lb_key(ctx, name);
    let remaining = s.load_balancers.transact::<_, AwsError, _>(|t| {
        let lb = t.get_mut(&key).ok_or_else(|| super::not_found(name))?;
        lb.instances.retain(|i| !ids.contains(i));
        Ok(lb.instances.clone())
    })?;
    s.forget_health(&key, &remaining);
    s.bump();
    Ok(json!({"Instances": instances_json(&remaining)}))
}

/// The HealthCheck member, validated against the model's bounds and AWS's rules.
pub fn parse_health_check(v: &Value) -> Result<HealthCheckConfig, AwsError> {
    let target = v.str("Target").unwrap_or_default();
    let Some((protocol, port, path)) = HealthCheckConfig::parse_target(target) else {
        return Err(validation(format!(
            "Invalid health check target '{target}': PROTOCOL:PORT for TCP and SSL, PROTOCOL:PORT/PATH for HTTP and HTTPS"
        )));
    };
    let bounded = |k: &str, lo: i64, hi: i64| -> Result<i64, AwsError> {
        match v.i64(k) {
            Some(n) if (lo..=hi).contains(&n) => Ok(n),
            _ => Err(validation(format!(
                "HealthCheck.{k} must be between {lo} and {hi}"
            ))),
        }
    };
    let hc = HealthCheckConfig {
        target: format!("{protocol}:{port}{}", path.unwrap_or_default()),
        interval: bounded("Interval", 5, 300)?,
        timeout: bounded("Timeout", 2, 60)?,
        unhealthy_threshold: bounded("UnhealthyThreshold", 2, 10)?,
        healthy_threshold: bounded("HealthyThreshold", 2, 10)?,
    };
    if hc.timeout >= hc.interval {
        return Err(validation("HealthCheck Timeout must be less than Interval"));
    }
    Ok(hc)
}

fn configure_health_check(s: &Elb, ctx: &Ctx, input: Value) -> HandlerResult {
    let name = input.str("LoadBalancerName").unwrap_or_default();
    get_lb(s, ctx, name)?;
    let hc = parse_health_check(input.get("HealthCheck").unwrap_or(&Value::Null))?;
    let key = lb_key(ctx, name);
    s.load_balancers.transact::<_, AwsError, _>(|t| {
        let lb = t.get_mut(&key).ok_or_else(|| super::not_found(name))?;
        lb.health_check = hc.clone();
        Ok(())
    })?;
    // The next checks use the new settings at once.
    let prefix = format!("{key}/");
    s.next_check.lock().retain(|k, _| !k.starts_with(&prefix));
    s.bump();
    Ok(json!({"HealthCheck": hc.to_json()}))
}

fn describe_instance_health(s: &Elb, ctx: &Ctx, input: Value) -> HandlerResult {
    let name = input.str("LoadBalancerName").unwrap_or_default();
    let lb = get_lb(s, ctx, name)?;
    let asked = instance_ids(&input);
    let ids = if asked.is_empty() {
        lb.instances.clone()
    } else {
        let bad: Vec<String> = asked
            .iter()
            .filter(|i| !lb.instances.contains(i))
            .cloned()
            .collect();
        if !bad.is_empty() {
            return Err(invalid_instances(&bad));
        }
        asked
    };
    let states: Vec<Value> = ids
        .iter()
        .map(|id| {
            let h = s.instance_health(&lb, id);
            json!({
                "InstanceId": id,
                "State": h.state,
                "ReasonCode": h.reason_code,
                "Description": h.description,
            })
        })
        .collect();
    Ok(json!({"InstanceStates": states}))
}
