//! Services: DNS configuration, health checks, service attributes.

use super::state::{
    id_of, invalid, namespace_not_found, new_operation_id, random_id, service_not_found, DnsConfig,
    DnsRecord, HealthCheckConfig, Namespace, Service, DNS_PUBLIC,
};
use super::tags::tags_of;
use super::CloudMap;
use crate::protocol::codes;
use crate::protocol::AwsError;
use crate::services::input::Input;
use crate::services::page::page;
use crate::services::{Ctx, HandlerResult};
use serde_json::{json, Value};

const MAX_SERVICE_ATTRIBUTES: usize = 30;

/// A DnsConfig as given (CreateService) checked as Cloud Map checks it.
fn dns_config(v: &Value, health_check: bool) -> Result<DnsConfig, AwsError> {
    let routing = v.str("RoutingPolicy").unwrap_or("MULTIVALUE").to_string();
    let records = dns_records(v)?;
    if records.is_empty() {
        return Err(invalid("DnsConfig must contain at least one DnsRecord."));
    }
    let has = |t: &str| records.iter().any(|r| r.kind == t);
    if has("CNAME") {
        if records.len() > 1 {
            return Err(invalid(
                "A service with a CNAME record cannot have records of other types.",
            ));
        }
        if routing != "WEIGHTED" {
            return Err(invalid(
                "CNAME records are supported only with the WEIGHTED routing policy.",
            ));
        }
        if health_check {
            return Err(invalid(
                "A service with a CNAME record cannot have a health check.",
            ));
        }
    }
    Ok(DnsConfig {
        routing_policy: routing,
        records,
    })
}

fn dns_records(v: &Value) -> Result<Vec<DnsRecord>, AwsError> {
    let mut records: Vec<DnsRecord> = Vec::new();
    for r in v
        .get("DnsRecords")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let kind = r.str("Type").unwrap_or_default().to_string();
        if records.iter().any(|x| x.kind == kind) {
            return Err(invalid(format!(
                "DnsRecords contains more than one record of type {kind}."
            )));
        }
        records.push(DnsRecord {
            kind,
            ttl: r.i64("TTL").unwrap_or(0),
        });
    }
    Ok(records)
}

fn health_check_config(input: &Value) -> Result<Option<HealthCheckConfig>, AwsError> {
    input.member::<HealthCheckConfig>("HealthCheckConfig")
}

pub fn create_service(cm: &CloudMap, ctx: &Ctx, input: Value) -> HandlerResult {
    let scope = ctx.scope();
    let name = input.str("Name").unwrap_or_default().to_string();
    let namespace_id = input
        .str("NamespaceId")
        .or_else(|| {
            input
                .pointer("/DnsConfig/NamespaceId")
                .and_then(Value::as_str)
        })
        .map(|s| id_of(s).to_string())
        .ok_or_else(|| invalid("NamespaceId is required."))?;
    let creator = input.str("CreatorRequestId").map(str::to_string);
    let tags = tags_of(&input)?;
    let health_check = health_check_config(&input)?;
    let custom_health = input
        .get("HealthCheckCustomConfig")
        .filter(|v| !v.is_null())
        .map(|v| v.i64("FailureThreshold"));
    if health_check.is_some() && custom_health.is_some() {
        return Err(invalid(
            "HealthCheckConfig and HealthCheckCustomConfig cannot both be specified.",
        ));
    }
    let http_only = input.str("Type") == Some("HTTP");
    let ns_key = format!("{scope}{namespace_id}");
    let services = cm.state.services.clone();
    let service = cm.state.namespaces.transact(|ntx| {
        let ns = ntx
            .get(&ns_key)
            .cloned()
            .ok_or_else(|| namespace_not_found(&namespace_id))?;
        let dns = service_dns(&ns, &input, http_only, health_check.is_some())?;
        if health_check.is_some() && ns.kind != DNS_PUBLIC {
            return Err(invalid(
                "HealthCheckConfig is supported only for services in public DNS namespaces.",
            ));
        }
        if ns.is_dns() && !super::namespaces::is_dns_name(&name) {
            return Err(invalid(format!(
                "Service name {name} is not a valid DNS label."
            )));
        }
        services.transact(|tx| {
            let existing = tx
                .rows()
                .range(scope.clone()..)
                .take_while(|(k, _)| k.starts_with(&scope))
                .map(|(_, s)| s)
                .find(|s| s.namespace_id == ns.id && s.name.eq_ignore_ascii_case(&name))
                .cloned();
            if let Some(s) = existing {
                if creator.is_some() && s.creator_request_id == creator {
                    return Ok(s);
                }
                let mut e = AwsError::new(
                    codes::servicediscovery::ServiceAlreadyExists,
                    format!(
                        "Service with name {name} already exists in namespace {}.",
                        ns.id
                    ),
                );
                let mut fields = serde_json::Map::new();
                fields.insert("ServiceId".into(), json!(s.id));
                fields.insert("ServiceArn".into(), json!(s.arn));
                if let Some(c) = &s.creator_request_id {
                    fields.insert("CreatorRequestId".into(), json!(c));
                }
                e.fields = Some(Box::new(fields));
                return Err(e);
            }
            let id = format!("srv-{}", random_id(16));
            let s = Service {
                arn: ctx.arn("servicediscovery", &format!("service/{id}")),
                id: id.clone(),
                account: ctx.account.clone(),
                region: ctx.region.clone(),
                name: name.clone(),
                namespace_id: ns.id.clone(),
                description: input.str("Description").map(str::to_string),
                dns,
                health_check: health_check.clone(),
                custom_health,
                create_date: ctx.now,
                creator_request_id: creator.clone(),
                tags: tags.clone(),
                attributes: Default::default(),
                revision: 1,
            };
            tx.put(&format!("{scope}{id}"), s.clone());
            Ok(s)
        })
    })?;
    cm.changed();
    Ok(json!({"Service": service_json(cm, &service, false)}))
}

/// The DnsConfig a new service in `ns` gets: required in DNS namespaces (unless Type is HTTP),
/// refused in HTTP namespaces.
fn service_dns(
    ns: &Namespace,
    input: &Value,
    http_only: bool,
    health_check: bool,
) -> Result<Option<DnsConfig>, AwsError> {
    let given = input.get("DnsConfig").filter(|v| !v.is_null());
    match (ns.is_dns(), given, http_only) {
        (false, Some(_), _) => Err(invalid(
            "DnsConfig cannot be specified for a service in an HTTP namespace.",
        )),
        (_, Some(_), true) => Err(invalid(
            "DnsConfig cannot be specified for a service of type HTTP.",
        )),
        (true, None, false) => Err(invalid(
            "DnsConfig is required for a service in a DNS namespace.",
        )),
        (true, Some(v), false) => dns_config(v, health_check).map(Some),
        _ => Ok(None),
    }
}

/// The model's Service (or ServiceSummary) shape.
pub fn service_json(cm: &CloudMap, s: &Service, summary: bool) -> Value {
    let scope = super::state::scope(&s.account, &s.region);
    let mut out = json!({
        "Id": s.id,
        "Arn": s.arn,
        "ResourceOwner": s.account,
        "Name": s.name,
        "Type": s.service_type(),
        "InstanceCount": cm.state.instance_count(&scope, &s.id),
        "CreateDate": s.create_date,
        "CreatedByAccount": s.account,
    });
    if !summary {
        out["NamespaceId"] = json!(s.namespace_id);
        if let Some(c) = &s.creator_request_id {
            out["CreatorRequestId"] = json!(c);
        }
    }
    if let Some(d) = &s.description {
        out["Description"] = json!(d);
    }
    if let Some(dns) = &s.dns {
        let mut dc = json!({
            "RoutingPolicy": dns.routing_policy,
            "DnsRecords": dns.records,
        });
        if !summary {
            dc["NamespaceId"] = json!(s.namespace_id);
        }
        out["DnsConfig"] = dc;
    }
    if let Some(h) = &s.health_check {
        out["HealthCheckConfig"] = json!(h);
    }
    if let Some(c) = &s.custom_health {
        out["HealthCheckCustomConfig"] = match c {
            Some(t) => json!({"FailureThreshold": t}),
            None => json!({}),
        };
    }
    out
}

pub fn get_service(cm: &CloudMap, ctx: &Ctx, input: Value) -> HandlerResult {
    let s = cm
        .state
        .service(&ctx.scope(), input.str("Id").unwrap_or_default())?;
    Ok(json!({"Service": service_json(cm, &s, false)}))
}

pub fn delete_service(cm: &CloudMap, ctx: &Ctx, input: Value) -> HandlerResult {
    let scope = ctx.scope();
    let id = id_of(input.str("Id").unwrap_or_default()).to_string();
    let key = format!("{scope}{id}");
    let instances = cm.state.instances.clone();
    cm.state.services.transact(|tx| {
        if !tx.contains(&key) {
            return Err(service_not_found(&id));
        }
        let prefix = super::state::instance_prefix(&scope, &id);
        if instances.read(|rows| rows.range(prefix.clone()..).next().is_some_and(|(k, _)| k.starts_with(&prefix))) {
            return Err(AwsError::new(codes::servicediscovery::ResourceInUse,
                format!("Service {id} has registered instances. Deregister the instances before deleting the service."),
            ));
        }
        tx.remove(&key);
        Ok(())
    })?;
    cm.changed();
    Ok(json!({}))
}

pub fn list_services(cm: &CloudMap, ctx: &Ctx, input: Value) -> HandlerResult {
    let scope = ctx.scope();
    let mut rows: Vec<Service> = cm
        .state
        .services
        .scan(&scope)
        .into_iter()
        .map(|(_, s)| s)
        .collect();
    for f in input
        .get("Filters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = f.str("Name").unwrap_or_default();
        let condition = f.str("Condition").unwrap_or("EQ");
        let values: Vec<String> = f.string_list("Values");
        let ok = match name {
            "NAMESPACE_ID" => ["EQ", "IN"].contains(&condition),
            _ => condition == "EQ",
        };
        if !ok {
            return Err(invalid(format!(
                "Condition {condition} is not supported for filter {name}."
            )));
        }
        if condition == "EQ" && values.len() != 1 {
            return Err(invalid(format!(
                "Filter {name} with condition EQ takes exactly one value."
            )));
        }
        rows.retain(|s| match name {
            "NAMESPACE_ID" => values.iter().any(|v| id_of(v) == s.namespace_id),
            _ => values.contains(&s.account),
        });
    }
    let max = input.i64("MaxResults").unwrap_or(100) as usize;
    let (items, next) = page(
        rows,
        |s| s.id.clone(),
        input.str("NextToken"),
        max,
        codes::servicediscovery::InvalidInput,
    )?;
    let mut out = json!({
        "Services": items.iter().map(|s| service_json(cm, s, true)).collect::<Vec<_>>(),
    });
    if let Some(n) = next {
        out["NextToken"] = json!(n);
    }
    Ok(out)
}

pub fn update_service(cm: &CloudMap, ctx: &Ctx, input: Value) -> HandlerResult {
    let scope = ctx.scope();
    let id = id_of(input.str("Id").unwrap_or_default()).to_string();
    let key = format!("{scope}{id}");
    let change = input.get("Service").cloned().unwrap_or(Value::Null);
    let health_check = health_check_config(&change)?;
    cm.state.services.transact(|tx| {
        let s = tx.get_mut(&key).ok_or_else(|| service_not_found(&id))?;
        if let Some(d) = change.str("Description") {
            s.description = Some(d.to_string());
        }
        if let Some(dc) = change.get("DnsConfig").filter(|v| !v.is_null()) {
            let Some(current) = s.dns.as_mut() else {
                return Err(invalid("The service has no DnsConfig to update."));
            };
            let records = dns_records(dc)?;
            let mut old: Vec<&str> = current.records.iter().map(|r| r.kind.as_str()).collect();
            let mut new: Vec<&str> = records.iter().map(|r| r.kind.as_str()).collect();
            old.sort_unstable();
            new.sort_unstable();
            if old != new {
                return Err(invalid(
                    "The record types of a service cannot be changed; only their TTLs.",
                ));
            }
            current.records = records;
        }
        if let Some(h) = health_check {
            if s.health_check.is_none() {
                return Err(invalid(
                    "HealthCheckConfig can be updated only for a service that has one.",
                ));
            }
            s.health_check = Some(h);
        }
        Ok(())
    })?;
    let op = cm.state.record_operation(
        &ctx.account,
        &ctx.region,
        new_operation_id(),
        "UPDATE_SERVICE",
        ctx.now,
        &[("SERVICE", &id)],
    )?;
    cm.changed();
    Ok(json!({"OperationId": op}))
}

pub fn get_service_attributes(cm: &CloudMap, ctx: &Ctx, input: Value) -> HandlerResult {
    let s = cm
        .state
        .service(&ctx.scope(), input.str("ServiceId").unwrap_or_default())?;
    Ok(json!({"ServiceAttributes": {
        "ServiceArn": s.arn,
        "ResourceOwner": s.account,
        "Attributes": s.attributes,
    }}))
}

pub fn update_service_attributes(cm: &CloudMap, ctx: &Ctx, input: Value) -> HandlerResult {
    let scope = ctx.scope();
    let id = id_of(input.str("ServiceId").unwrap_or_default()).to_string();
    let attrs: std::collections::BTreeMap<String, String> =
        input.member("Attributes")?.unwrap_or_default();
    cm.state.services.transact(|tx| {
        let s = tx
            .get_mut(&format!("{scope}{id}"))
            .ok_or_else(|| service_not_found(&id))?;
        s.attributes.extend(attrs);
        if s.attributes.len() > MAX_SERVICE_ATTRIBUTES {
            return Err(AwsError::new(
                codes::servicediscovery::ServiceAttributesLimitExceededException,
                format!("A service can have at most {MAX_SERVICE_ATTRIBUTES} attributes."),
            ));
        }
        Ok(())
    })?;
    Ok(json!({}))
}

pub fn delete_service_attributes(cm: &CloudMap, ctx: &Ctx, input: Value) -> HandlerResult {
    let scope = ctx.scope();
    let id = id_of(input.str("ServiceId").unwrap_or_default()).to_string();
    let keys = input.string_list("Attributes");
    cm.state.services.transact::<_, AwsError, _>(|tx| {
        let s = tx
            .get_mut(&format!("{scope}{id}"))
            .ok_or_else(|| service_not_found(&id))?;
        for k in &keys {
            s.attributes.remove(k);
        }
        Ok(())
    })?;
    Ok(json!({}))
}
