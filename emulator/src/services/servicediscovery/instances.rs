//! Instances: registration, health, and discovery (DiscoverInstances, the data-plane call).

use super::namespaces::duplicate;
use super::state::{
    instance_key, instance_not_found, invalid, new_operation_id, scope, service_not_found,
    Instance, Namespace, Service,
};
use super::CloudMap;
use crate::protocol::codes;
use crate::protocol::AwsError;
use crate::services::input::Input;
use crate::services::page::page;
use crate::services::{Ctx, HandlerResult};
use serde_json::{json, Value};
use std::collections::BTreeMap;

pub const MAX_ATTRIBUTES: usize = 30;
pub const IPV4: &str = "AWS_INSTANCE_IPV4";
pub const IPV6: &str = "AWS_INSTANCE_IPV6";
pub const PORT: &str = "AWS_INSTANCE_PORT";
pub const CNAME: &str = "AWS_INSTANCE_CNAME";
pub const ALIAS: &str = "AWS_ALIAS_DNS_NAME";
pub const EC2_INSTANCE: &str = "AWS_EC2_INSTANCE_ID";
pub const INIT_HEALTH: &str = "AWS_INIT_HEALTH_STATUS";

/// Checks an instance's attributes against what its service's records need and allow.
pub fn check_attributes(
    ns: &Namespace,
    svc: &Service,
    attrs: &BTreeMap<String, String>,
) -> Result<(), AwsError> {
    if attrs.len() > MAX_ATTRIBUTES {
        return Err(invalid(format!(
            "An instance can have at most {MAX_ATTRIBUTES} attributes; {} were specified.",
            attrs.len()
        )));
    }
    let get = |k: &str| attrs.get(k).map(String::as_str);
    if let Some(v) = get(IPV4) {
        if v.parse::<std::net::Ipv4Addr>().is_err() {
            return Err(invalid(format!("{IPV4} {v} is not a valid IPv4 address.")));
        }
    }
    if let Some(v) = get(IPV6) {
        if v.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(invalid(format!("{IPV6} {v} is not a valid IPv6 address.")));
        }
    }
    if let Some(v) = get(PORT) {
        if !v.parse::<u16>().is_ok_and(|p| p > 0) {
            return Err(invalid(format!(
                "{PORT} {v} is not a valid port (1-65535)."
            )));
        }
    }
    if get(EC2_INSTANCE).is_some() && ns.is_dns() {
        return Err(invalid(format!(
            "{EC2_INSTANCE} can be specified only for instances in HTTP namespaces."
        )));
    }
    if let Some(v) = get(INIT_HEALTH) {
        if svc.custom_health.is_none() {
            return Err(invalid(format!(
                "{INIT_HEALTH} can be specified only for services with HealthCheckCustomConfig."
            )));
        }
        if v != "HEALTHY" && v != "UNHEALTHY" {
            return Err(invalid(format!(
                "{INIT_HEALTH} must be HEALTHY or UNHEALTHY, not {v}."
            )));
        }
    }
    let Some(dns) = &svc.dns else {
        return Ok(());
    };
    if get(ALIAS).is_some() {
        if !(dns.has("A") || dns.has("AAAA")) || dns.routing_policy != "WEIGHTED" {
            return Err(invalid(format!(
                "{ALIAS} requires a service with A or AAAA records and the WEIGHTED routing policy."
            )));
        }
        if svc.health_check.is_some() {
            return Err(invalid(format!(
                "{ALIAS} cannot be used with a service that has a health check."
            )));
        }
        if [IPV4, IPV6, PORT, CNAME]
            .iter()
            .any(|k| attrs.contains_key(*k))
        {
            return Err(invalid(format!(
                "{ALIAS} cannot be combined with other AWS_INSTANCE_* attributes."
            )));
        }
        return Ok(());
    }
    let need = |kind: &str, attr: &str| -> Result<(), AwsError> {
        if dns.has(kind) && get(attr).is_none() {
            return Err(invalid(format!(
                "The service has a DNS {kind} record, so the instance needs the {attr} attribute."
            )));
        }
        Ok(())
    };
    need("A", IPV4)?;
    need("AAAA", IPV6)?;
    need("CNAME", CNAME)?;
    if dns.has("SRV") {
        need("SRV", PORT)?;
        if get(IPV4).is_none() && get(IPV6).is_none() {
            return Err(invalid(format!(
                "The service has a DNS SRV record, so the instance needs {IPV4} or {IPV6} for the SRV target."
            )));
        }
    }
    Ok(())
}

/// The health an instance starts with.
fn initial_health(svc: &Service, attrs: &BTreeMap<String, String>) -> String {
    if svc.custom_health.is_some() {
        attrs
            .get(INIT_HEALTH)
            .cloned()
            .unwrap_or_else(|| "HEALTHY".into())
    } else if svc.health_check.is_some() {
        "HEALTHY".into()
    } else {
        "UNKNOWN".into()
    }
}

/// What RegisterInstance (or ECS, through the handle) asks for.
pub struct Registration<'a> {
    pub service_id: &'a str,
    pub instance_id: &'a str,
    pub attributes: BTreeMap<String, String>,
    pub creator: Option<String>,
}

/// Registers (or re-registers) an instance; the typed handle and RegisterInstance share it.
pub fn register(
    cm: &CloudMap,
    account: &str,
    region: &str,
    now: f64,
    registration: Registration<'_>,
) -> Result<String, AwsError> {
    let Registration {
        service_id,
        instance_id,
        attributes: mut attrs,
        creator,
    } = registration;
    let scope = scope(account, region);
    let svc = cm.state.service(&scope, service_id)?;
    let ns = cm.state.namespace(&scope, &svc.namespace_id)?;
    check_attributes(&ns, &svc, &attrs)?;
    if let (Some(ec2_id), None) = (attrs.get(EC2_INSTANCE).cloned(), attrs.get(IPV4)) {
        // Cloud Map fills in the EC2 instance's private address.
        if let Some(ip) = cm.ec2.as_ref().and_then(|ec2| {
            ec2.all_instances(now)
                .into_iter()
                .find(|i| i.instance_id == ec2_id)
                .map(|i| i.private_ip)
        }) {
            attrs.insert(IPV4.into(), ip);
        }
    }
    let key = instance_key(&scope, &svc.id, instance_id);
    let operation_id = new_operation_id();
    let svc_key = format!("{scope}{}", svc.id);
    let instances = cm.state.instances.clone();
    let outcome = cm.state.services.transact::<_, AwsError, _>(|stx| {
        let s = stx
            .get_mut(&svc_key)
            .ok_or_else(|| service_not_found(&svc.id))?;
        let result = instances.transact::<_, AwsError, _>(|tx| {
            let health = match tx.get(&key) {
                Some(old) => {
                    if creator.is_some() && old.creator_request_id == creator {
                        if old.attributes == attrs {
                            return Ok(Err(old.operation_id.clone()));
                        }
                        return Err(duplicate(old.operation_id.clone()));
                    }
                    old.health.clone()
                }
                None => initial_health(&svc, &attrs),
            };
            tx.put(
                &key,
                Instance {
                    id: instance_id.to_string(),
                    service_id: svc.id.clone(),
                    attributes: attrs.clone(),
                    creator_request_id: creator.clone(),
                    health,
                    operation_id: operation_id.clone(),
                },
            );
            Ok(Ok(()))
        })?;
        if result.is_ok() {
            s.revision += 1;
        }
        Ok(result)
    })?;
    if let Err(earlier) = outcome {
        return Ok(earlier);
    }
    cm.state.record_operation(
        account,
        region,
        operation_id.clone(),
        "REGISTER_INSTANCE",
        now,
        &[
            ("NAMESPACE", &ns.id),
            ("SERVICE", &svc.id),
            ("INSTANCE", instance_id),
        ],
    )?;
    cm.changed();
    Ok(operation_id)
}

/// Deregisters an instance; returns the operation id.
pub fn deregister(
    cm: &CloudMap,
    account: &str,
    region: &str,
    now: f64,
    service_id: &str,
    instance_id: &str,
) -> Result<String, AwsError> {
    let scope = scope(account, region);
    let svc = cm.state.service(&scope, service_id)?;
    let key = instance_key(&scope, &svc.id, instance_id);
    let svc_key = format!("{scope}{}", svc.id);
    let instances = cm.state.instances.clone();
    cm.state.services.transact::<_, AwsError, _>(|stx| {
        let s = stx
            .get_mut(&svc_key)
            .ok_or_else(|| service_not_found(&svc.id))?;
        instances.transact::<_, AwsError, _>(|tx| {
            tx.remove(&key)
                .map(|_| ())
                .ok_or_else(|| instance_not_found(instance_id))
        })?;
        s.revision += 1;
        Ok(())
    })?;
    let op = cm.state.record_operation(
        account,
        region,
        new_operation_id(),
        "DEREGISTER_INSTANCE",
        now,
        &[
            ("NAMESPACE", &svc.namespace_id),
            ("SERVICE", &svc.id),
            ("INSTANCE", instance_id),
        ],
    )?;
    cm.changed();
    Ok(op)
}

/// Sets a custom health status (HEALTHY / UNHEALTHY).
pub fn set_custom_health(
    cm: &CloudMap,
    account: &str,
    region: &str,
    service_id: &str,
    instance_id: &str,
    status: &str,
) -> Result<(), AwsError> {
    let scope = scope(account, region);
    let svc = cm.state.service(&scope, service_id)?;
    let key = instance_key(&scope, &svc.id, instance_id);
    if !cm.state.instances.contains(&key) {
        return Err(instance_not_found(instance_id));
    }
    if svc.custom_health.is_none() {
        return Err(AwsError::new(
            codes::servicediscovery::CustomHealthNotFound,
            format!(
                "Service {} does not have a custom health check configured.",
                svc.id
            ),
        ));
    }
    let changed = cm.state.instances.transact::<_, AwsError, _>(|tx| {
        let i = tx
            .get_mut(&key)
            .ok_or_else(|| instance_not_found(instance_id))?;
        let changed = i.health != status;
        i.health = status.to_string();
        Ok(changed)
    })?;
    if changed {
        let svc_key = format!("{scope}{}", svc.id);
        cm.state.services.transact::<_, AwsError, _>(|tx| {
            if let Some(s) = tx.get_mut(&svc_key) {
                s.revision += 1;
            }
            Ok(())
        })?;
        cm.changed();
    }
    Ok(())
}

pub fn register_instance(cm: &CloudMap, ctx: &Ctx, input: Value) -> HandlerResult {
    let attrs: BTreeMap<String, String> = input.member("Attributes")?.unwrap_or_default();
    let op = register(
        cm,
        &ctx.account,
        &ctx.region,
        ctx.now,
        Registration {
            service_id: input.str("ServiceId").unwrap_or_default(),
            instance_id: input.str("InstanceId").unwrap_or_default(),
            attributes: attrs,
            creator: input.str("CreatorRequestId").map(str::to_string),
        },
    )?;
    Ok(json!({"OperationId": op}))
}

pub fn deregister_instance(cm: &CloudMap, ctx: &Ctx, input: Value) -> HandlerResult {
    let op = deregister(
        cm,
        &ctx.account,
        &ctx.region,
        ctx.now,
        input.str("ServiceId").unwrap_or_default(),
        input.str("InstanceId").unwrap_or_default(),
    )?;
    Ok(json!({"OperationId": op}))
}

pub fn get_instance(cm: &CloudMap, ctx: &Ctx, input: Value) -> HandlerResult {
    let scope = ctx.scope();
    let svc = cm
        .state
        .service(&scope, input.str("ServiceId").unwrap_or_default())?;
    let id = input.str("InstanceId").unwrap_or_default();
    let i = cm
        .state
        .instances
        .get(&instance_key(&scope, &svc.id, id))
        .ok_or_else(|| instance_not_found(id))?;
    let mut inst = json!({
        "Id": i.id,
        "Attributes": i.attributes,
        "CreatedByAccount": svc.account,
    });
    if let Some(c) = &i.creator_request_id {
        inst["CreatorRequestId"] = json!(c);
    }
    Ok(json!({"ResourceOwner": svc.account, "Instance": inst}))
}

pub fn list_instances(cm: &CloudMap, ctx: &Ctx, input: Value) -> HandlerResult {
    let scope = ctx.scope();
    let svc = cm
        .state
        .service(&scope, input.str("ServiceId").unwrap_or_default())?;
    let rows = cm.state.instances_of(&scope, &svc.id);
    let max = input.i64("MaxResults").unwrap_or(100) as usize;
    let (items, next) = page(
        rows,
        |i| i.id.clone(),
        input.str("NextToken"),
        max,
        codes::servicediscovery::InvalidInput,
    )?;
    let mut out = json!({
        "ResourceOwner": svc.account,
        "Instances": items.iter().map(|i| json!({
            "Id": i.id,
            "Attributes": i.attributes,
            "CreatedByAccount": svc.account,
        })).collect::<Vec<_>>(),
    });
    if let Some(n) = next {
        out["NextToken"] = json!(n);
    }
    Ok(out)
}

pub fn get_instances_health_status(cm: &CloudMap, ctx: &Ctx, input: Value) -> HandlerResult {
    let scope = ctx.scope();
    let svc = cm
        .state
        .service(&scope, input.str("ServiceId").unwrap_or_default())?;
    let all = cm.state.instances_of(&scope, &svc.id);
    let wanted = input.string_list("Instances");
    let rows: Vec<Instance> = if wanted.is_empty() {
        all
    } else {
        let mut rows = Vec::new();
        for id in &wanted {
            let i = all
                .iter()
                .find(|i| &i.id == id)
                .ok_or_else(|| instance_not_found(id))?;
            rows.push(i.clone());
        }
        rows.sort_by(|a, b| a.id.cmp(&b.id));
        rows
    };
    let max = input.i64("MaxResults").unwrap_or(100) as usize;
    let (items, next) = page(
        rows,
        |i| i.id.clone(),
        input.str("NextToken"),
        max,
        codes::servicediscovery::InvalidInput,
    )?;
    let status: serde_json::Map<String, Value> = items
        .iter()
        .map(|i| (i.id.clone(), json!(i.health)))
        .collect();
    let mut out = json!({ "Status": status });
    if let Some(n) = next {
        out["NextToken"] = json!(n);
    }
    Ok(out)
}

pub fn update_instance_custom_health_status(
    cm: &CloudMap,
    ctx: &Ctx,
    input: Value,
) -> HandlerResult {
    set_custom_health(
        cm,
        &ctx.account,
        &ctx.region,
        input.str("ServiceId").unwrap_or_default(),
        input.str("InstanceId").unwrap_or_default(),
        input.str("Status").unwrap_or_default(),
    )?;
    Ok(json!({}))
}

/// The namespace and service DiscoverInstances names (by HttpName and service name).
fn discovered(cm: &CloudMap, ctx: &Ctx, input: &Value) -> Result<(Namespace, Service), AwsError> {
    let account = input.str("OwnerAccount").unwrap_or(&ctx.account);
    let scope = scope(account, &ctx.region);
    let ns_name = input.str("NamespaceName").unwrap_or_default();
    let ns = cm.state.namespace_by_name(&scope, ns_name).ok_or_else(|| {
        AwsError::new(
            codes::servicediscovery::NamespaceNotFound,
            format!("Namespace not found: {ns_name}"),
        )
    })?;
    let name = input.str("ServiceName").unwrap_or_default();
    let svc = cm
        .state
        .services_of(&scope, &ns.id)
        .into_iter()
        .find(|s| s.name.eq_ignore_ascii_case(name))
        .ok_or_else(|| service_not_found(name))?;
    Ok((ns, svc))
}

fn matches(i: &Instance, params: &BTreeMap<String, String>) -> bool {
    params.iter().all(|(k, v)| i.attributes.get(k) == Some(v))
}

pub fn discover_instances(cm: &CloudMap, ctx: &Ctx, input: Value) -> HandlerResult {
    let (ns, svc) = discovered(cm, ctx, &input)?;
    let scope = scope(&svc.account, &svc.region);
    let query: BTreeMap<String, String> = input.member("QueryParameters")?.unwrap_or_default();
    let optional: BTreeMap<String, String> =
        input.member("OptionalParameters")?.unwrap_or_default();
    let mut rows: Vec<Instance> = cm
        .state
        .instances_of(&scope, &svc.id)
        .into_iter()
        .filter(|i| matches(i, &query))
        .collect();
    if !optional.is_empty() && rows.iter().any(|i| matches(i, &optional)) {
        rows.retain(|i| matches(i, &optional));
    }
    // The filter is ignored for services without health checks: every instance is returned.
    let has_health = svc.custom_health.is_some() || svc.health_check.is_some();
    if has_health {
        let healthy = |i: &Instance| i.health == "HEALTHY";
        match input.str("HealthStatus").unwrap_or("HEALTHY") {
            "HEALTHY" => rows.retain(healthy),
            "UNHEALTHY" => rows.retain(|i| !healthy(i)),
            "HEALTHY_OR_ELSE_ALL" if rows.iter().any(healthy) => rows.retain(healthy),
            _ => {}
        }
    }
    let max = input.i64("MaxResults").unwrap_or(100).max(1) as usize;
    {
        use rand::seq::SliceRandom;
        rows.shuffle(&mut rand::rng());
    }
    rows.truncate(max);
    let instances: Vec<Value> = rows
        .iter()
        .map(|i| {
            json!({
                "InstanceId": i.id,
                "NamespaceName": ns.name,
                "ServiceName": svc.name,
                "HealthStatus": i.health,
                "Attributes": i.attributes,
            })
        })
        .collect();
    Ok(json!({"Instances": instances, "InstancesRevision": svc.revision}))
}

pub fn discover_instances_revision(cm: &CloudMap, ctx: &Ctx, input: Value) -> HandlerResult {
    let (_, svc) = discovered(cm, ctx, &input)?;
    Ok(json!({"InstancesRevision": svc.revision}))
}
