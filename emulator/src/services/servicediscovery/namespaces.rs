//! Namespaces: HTTP, private DNS (in a VPC) and public DNS; their operations.

use super::state::{
    id_of, invalid, namespace_not_found, new_operation_id, random_id, Namespace, DEFAULT_SOA_TTL,
    DNS_PRIVATE, DNS_PUBLIC, HTTP,
};
use super::tags::tags_of;
use super::CloudMap;
use crate::protocol::codes;
use crate::protocol::AwsError;
use crate::services::input::Input;
use crate::services::page::page;
use crate::services::{Ctx, HandlerResult};
use serde_json::{json, Value};

pub fn create_http_namespace(cm: &CloudMap, ctx: &Ctx, input: Value) -> HandlerResult {
    create(cm, ctx, &input, HTTP)
}

pub fn create_private_dns_namespace(cm: &CloudMap, ctx: &Ctx, input: Value) -> HandlerResult {
    create(cm, ctx, &input, DNS_PRIVATE)
}

pub fn create_public_dns_namespace(cm: &CloudMap, ctx: &Ctx, input: Value) -> HandlerResult {
    create(cm, ctx, &input, DNS_PUBLIC)
}

/// A DNS name Route 53 can host: labels of letters, digits, hyphens and underscores, 1–63
/// characters, not starting or ending with a hyphen, 253 characters at most.
pub fn is_dns_name(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
}

fn create(cm: &CloudMap, ctx: &Ctx, input: &Value, kind: &str) -> HandlerResult {
    let name = input.str("Name").unwrap_or_default().to_string();
    let creator = input.str("CreatorRequestId").map(str::to_string);
    let tags = tags_of(input)?;
    let name = if kind == HTTP {
        name
    } else {
        // Route 53 stores zone names without the trailing dot, lowercase.
        name.strip_suffix('.').unwrap_or(&name).to_ascii_lowercase()
    };
    if kind != HTTP && !is_dns_name(&name) {
        return Err(invalid(format!(
            "Namespace name {name} is not a valid DNS name."
        )));
    }
    let vpc = match kind {
        DNS_PRIVATE => {
            let vpc = input.str("Vpc").unwrap_or_default().to_string();
            check_vpc(cm, ctx, &vpc)?;
            Some(vpc)
        }
        _ => None,
    };
    let soa_ttl = if kind == HTTP {
        None
    } else {
        Some(
            input
                .pointer("/Properties/DnsProperties/SOA/TTL")
                .and_then(Value::as_i64)
                .unwrap_or(DEFAULT_SOA_TTL),
        )
    };
    let scope = ctx.scope();
    let id = format!("ns-{}", random_id(16));
    let operation_id = new_operation_id();
    let ns = Namespace {
        arn: ctx.arn("servicediscovery", &format!("namespace/{id}")),
        id: id.clone(),
        account: ctx.account.clone(),
        region: ctx.region.clone(),
        name: name.clone(),
        kind: kind.to_string(),
        description: input.str("Description").map(str::to_string),
        creator_request_id: creator.clone(),
        vpc,
        hosted_zone_id: (kind != HTTP).then(|| format!("Z{}", random_id(20).to_uppercase())),
        soa_ttl,
        create_date: ctx.now,
        tags,
        operation_id: operation_id.clone(),
    };
    let created = cm.state.namespaces.transact(|tx| {
        let mine = || {
            tx.rows()
                .range(scope.clone()..)
                .take_while(|(k, _)| k.starts_with(&scope))
                .map(|(_, n)| n)
        };
        if let Some(existing) = mine().find(|n| n.name.eq_ignore_ascii_case(&name)) {
            // A retry of the same request returns its operation again (CreatorRequestId makes
            // creates idempotent); anything else names the namespace that holds the name.
            if creator.is_some() && existing.creator_request_id == creator && existing.kind == kind
            {
                return Ok(Err(existing.operation_id.clone()));
            }
            return Err(already_exists(existing));
        }
        if let Some(c) = &creator {
            if let Some(n) = mine().find(|n| n.creator_request_id.as_ref() == Some(c)) {
                return Err(duplicate(n.operation_id.clone()));
            }
        }
        tx.put(&format!("{scope}{id}"), ns);
        Ok(Ok(()))
    })?;
    if let Err(earlier) = created {
        return Ok(json!({"OperationId": earlier}));
    }
    cm.state.record_operation(
        &ctx.account,
        &ctx.region,
        operation_id.clone(),
        "CREATE_NAMESPACE",
        ctx.now,
        &[("NAMESPACE", &id)],
    )?;
    cm.changed();
    Ok(json!({"OperationId": operation_id}))
}

fn already_exists(existing: &Namespace) -> AwsError {
    let mut e = AwsError::new(
        codes::servicediscovery::NamespaceAlreadyExists,
        format!("Namespace with name {} already exists.", existing.name),
    );
    let mut fields = serde_json::Map::new();
    fields.insert("NamespaceId".into(), json!(existing.id));
    if let Some(c) = &existing.creator_request_id {
        fields.insert("CreatorRequestId".into(), json!(c));
    }
    e.fields = Some(Box::new(fields));
    e
}

pub fn duplicate(operation_id: String) -> AwsError {
    let mut e = AwsError::new(codes::servicediscovery::DuplicateRequest,
        "The request has the same CreatorRequestId as an earlier request with different parameters.",
    );
    let mut fields = serde_json::Map::new();
    fields.insert("DuplicateOperationId".into(), json!(operation_id));
    e.fields = Some(Box::new(fields));
    e
}

fn check_vpc(cm: &CloudMap, ctx: &Ctx, vpc: &str) -> Result<(), AwsError> {
    let Some(ec2) = &cm.ec2 else {
        return Ok(());
    };
    match ec2.vpc(&ctx.account, &ctx.region, vpc)? {
        Some(_) => Ok(()),
        None => Err(invalid(format!("The VPC ID '{vpc}' does not exist."))),
    }
}

/// The model's Namespace (and NamespaceSummary) shape.
pub fn namespace_json(cm: &CloudMap, ns: &Namespace, summary: bool) -> Value {
    let mut props = json!({"HttpProperties": {"HttpName": ns.name}});
    if ns.is_dns() {
        props["DnsProperties"] = json!({
            "HostedZoneId": ns.hosted_zone_id,
            "SOA": {"TTL": ns.soa_ttl.unwrap_or(DEFAULT_SOA_TTL)},
        });
    }
    let scope = super::state::scope(&ns.account, &ns.region);
    let mut out = json!({
        "Id": ns.id,
        "Arn": ns.arn,
        "ResourceOwner": ns.account,
        "Name": ns.name,
        "Type": ns.kind,
        "ServiceCount": cm.state.services_of(&scope, &ns.id).len(),
        "Properties": props,
        "CreateDate": ns.create_date,
    });
    if let Some(d) = &ns.description {
        out["Description"] = json!(d);
    }
    if !summary {
        if let Some(c) = &ns.creator_request_id {
            out["CreatorRequestId"] = json!(c);
        }
    }
    out
}

pub fn get_namespace(cm: &CloudMap, ctx: &Ctx, input: Value) -> HandlerResult {
    let ns = cm
        .state
        .namespace(&ctx.scope(), input.str("Id").unwrap_or_default())?;
    Ok(json!({"Namespace": namespace_json(cm, &ns, false)}))
}

pub fn delete_namespace(cm: &CloudMap, ctx: &Ctx, input: Value) -> HandlerResult {
    let scope = ctx.scope();
    let id = id_of(input.str("Id").unwrap_or_default()).to_string();
    let key = format!("{scope}{id}");
    let services = cm.state.services.clone();
    cm.state.namespaces.transact(|tx| {
        if !tx.contains(&key) {
            return Err(namespace_not_found(&id));
        }
        // The services table is read under the namespace lock: CreateService takes the same
        // lock first, so no service can appear between this check and the removal.
        let in_use = services.read(|rows| {
            rows.range(scope.clone()..)
                .take_while(|(k, _)| k.starts_with(&scope))
                .any(|(_, s)| s.namespace_id == id)
        });
        if in_use {
            return Err(AwsError::new(codes::servicediscovery::ResourceInUse,
                format!("Namespace {id} has associated services. Delete the services before deleting the namespace."),
            ));
        }
        tx.remove(&key);
        Ok(())
    })?;
    let op = cm.state.record_operation(
        &ctx.account,
        &ctx.region,
        new_operation_id(),
        "DELETE_NAMESPACE",
        ctx.now,
        &[("NAMESPACE", &id)],
    )?;
    cm.changed();
    Ok(json!({"OperationId": op}))
}

pub fn list_namespaces(cm: &CloudMap, ctx: &Ctx, input: Value) -> HandlerResult {
    let scope = ctx.scope();
    let filters = input
        .get("Filters")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut rows: Vec<Namespace> = cm
        .state
        .namespaces
        .scan(&scope)
        .into_iter()
        .map(|(_, n)| n)
        .collect();
    for f in &filters {
        let name = f.str("Name").unwrap_or_default();
        let condition = f.str("Condition").unwrap_or("EQ");
        let values = f.string_list("Values");
        let allowed: &[&str] = match name {
            "TYPE" => &["EQ", "IN"],
            "NAME" | "HTTP_NAME" => &["EQ", "BEGINS_WITH"],
            _ => &["EQ"],
        };
        if !allowed.contains(&condition) {
            return Err(invalid(format!(
                "Condition {condition} is not supported for filter {name}."
            )));
        }
        if condition != "IN" && values.len() != 1 {
            return Err(invalid(format!(
                "Filter {name} with condition {condition} takes exactly one value."
            )));
        }
        rows.retain(|n| {
            let field = match name {
                "TYPE" => n.kind.as_str(),
                "NAME" | "HTTP_NAME" => n.name.as_str(),
                _ => n.account.as_str(),
            };
            match condition {
                "BEGINS_WITH" => values.iter().any(|v| field.starts_with(v.as_str())),
                _ => values.iter().any(|v| v == field),
            }
        });
    }
    let max = input.i64("MaxResults").unwrap_or(100) as usize;
    let (items, next) = page(
        rows,
        |n| n.id.clone(),
        input.str("NextToken"),
        max,
        codes::servicediscovery::InvalidInput,
    )?;
    let mut out = json!({
        "Namespaces": items.iter().map(|n| namespace_json(cm, n, true)).collect::<Vec<_>>(),
    });
    if let Some(n) = next {
        out["NextToken"] = json!(n);
    }
    Ok(out)
}

pub fn update_http_namespace(cm: &CloudMap, ctx: &Ctx, input: Value) -> HandlerResult {
    update(cm, ctx, &input, HTTP)
}

pub fn update_private_dns_namespace(cm: &CloudMap, ctx: &Ctx, input: Value) -> HandlerResult {
    update(cm, ctx, &input, DNS_PRIVATE)
}

pub fn update_public_dns_namespace(cm: &CloudMap, ctx: &Ctx, input: Value) -> HandlerResult {
    update(cm, ctx, &input, DNS_PUBLIC)
}

fn update(cm: &CloudMap, ctx: &Ctx, input: &Value, kind: &str) -> HandlerResult {
    let scope = ctx.scope();
    let id = id_of(input.str("Id").unwrap_or_default()).to_string();
    let key = format!("{scope}{id}");
    let change = input.get("Namespace").cloned().unwrap_or(Value::Null);
    let description = change.str("Description").map(str::to_string);
    let soa_ttl = change
        .pointer("/Properties/DnsProperties/SOA/TTL")
        .and_then(Value::as_i64);
    if description.is_none() && soa_ttl.is_none() {
        return Err(invalid(
            "The namespace change must update Description or Properties.",
        ));
    }
    cm.state.namespaces.transact(|tx| {
        let ns = tx.get_mut(&key).ok_or_else(|| namespace_not_found(&id))?;
        if ns.kind != kind {
            return Err(invalid(format!(
                "Namespace {id} is of type {}, not {kind}.",
                ns.kind
            )));
        }
        if let Some(d) = description {
            ns.description = Some(d);
        }
        if let Some(t) = soa_ttl {
            ns.soa_ttl = Some(t);
        }
        Ok(())
    })?;
    let op = cm.state.record_operation(
        &ctx.account,
        &ctx.region,
        new_operation_id(),
        "UPDATE_NAMESPACE",
        ctx.now,
        &[("NAMESPACE", &id)],
    )?;
    cm.changed();
    Ok(json!({"OperationId": op}))
}
