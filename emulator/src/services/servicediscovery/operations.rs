//! GetOperation and ListOperations: every change reports SUBMITTED → PENDING → SUCCESS on the
//! emulator clock (the change itself is visible at once).

use super::state::{scope, Operation};
use super::CloudMap;
use crate::protocol::codes;
use crate::protocol::AwsError;
use crate::services::input::Input;
use crate::services::page::page;
use crate::services::{Ctx, HandlerResult};
use serde_json::{json, Value};

fn operation_json(op: &Operation, now: f64) -> Value {
    let (status, updated) = op.status(now);
    json!({
        "Id": op.id,
        "OwnerAccount": op.account,
        "Type": op.kind,
        "Status": status,
        "CreateDate": op.create_date,
        "UpdateDate": updated,
        "Targets": op.targets,
    })
}

pub fn get_operation(cm: &CloudMap, ctx: &Ctx, input: Value) -> HandlerResult {
    let account = input.str("OwnerAccount").unwrap_or(&ctx.account);
    let id = input.str("OperationId").unwrap_or_default();
    let op = cm
        .state
        .operations
        .get(&format!("{}{id}", scope(account, &ctx.region)))
        .ok_or_else(|| {
            AwsError::new(
                codes::servicediscovery::OperationNotFound,
                format!("Operation not found: {id}"),
            )
        })?;
    Ok(json!({"Operation": operation_json(&op, ctx.now)}))
}

fn check_condition(name: &str, condition: &str, values: usize) -> Result<(), AwsError> {
    let allowed: &[&str] = match name {
        "UPDATE_DATE" => &["BETWEEN"],
        "STATUS" | "TYPE" => &["EQ", "IN"],
        _ => &["EQ"],
    };
    if !allowed.contains(&condition) {
        return Err(super::state::invalid(format!(
            "Condition {condition} is not supported for filter {name}."
        )));
    }
    let ok = match condition {
        "BETWEEN" => values == 2,
        "IN" => values >= 1,
        _ => values == 1,
    };
    if !ok {
        return Err(super::state::invalid(format!(
            "Filter {name} has the wrong number of values for condition {condition}."
        )));
    }
    Ok(())
}

pub fn list_operations(cm: &CloudMap, ctx: &Ctx, input: Value) -> HandlerResult {
    let now = ctx.now;
    let mut rows: Vec<Operation> = cm
        .state
        .operations
        .scan(&ctx.scope())
        .into_iter()
        .map(|(_, o)| o)
        .collect();
    for f in input
        .get("Filters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = f.str("Name").unwrap_or_default().to_string();
        let default = if name == "UPDATE_DATE" {
            "BETWEEN"
        } else {
            "EQ"
        };
        let condition = f.str("Condition").unwrap_or(default).to_string();
        let values = f.string_list("Values");
        check_condition(&name, &condition, values.len())?;
        if name == "UPDATE_DATE" {
            let bound = |v: &str| {
                v.parse::<f64>().map_err(|_| {
                    super::state::invalid(format!("UPDATE_DATE value {v} is not a timestamp."))
                })
            };
            let (from, to) = (bound(&values[0])?, bound(&values[1])?);
            rows.retain(|o| {
                let u = o.status(now).1;
                u >= from && u <= to
            });
            continue;
        }
        rows.retain(|o| {
            let field = match name.as_str() {
                "NAMESPACE_ID" => o.targets.get("NAMESPACE").map(String::as_str),
                "SERVICE_ID" => o.targets.get("SERVICE").map(String::as_str),
                "STATUS" => Some(o.status(now).0),
                _ => Some(o.kind.as_str()),
            };
            field.is_some_and(|f| values.iter().any(|v| v == f))
        });
    }
    // Newest first, as Cloud Map lists them; the id breaks ties for stable paging.
    rows.sort_by(|a, b| {
        b.create_date
            .total_cmp(&a.create_date)
            .then_with(|| a.id.cmp(&b.id))
    });
    let keyed: Vec<(String, Operation)> = rows
        .into_iter()
        .enumerate()
        .map(|(i, o)| (format!("{i:010}"), o))
        .collect();
    let max = input.i64("MaxResults").unwrap_or(100) as usize;
    let (items, next) = page(
        keyed,
        |(k, _)| k.clone(),
        input.str("NextToken"),
        max,
        codes::servicediscovery::InvalidInput,
    )?;
    let mut out = json!({
        "Operations": items.iter().map(|(_, o)| json!({"Id": o.id, "Status": o.status(now).0})).collect::<Vec<_>>(),
    });
    if let Some(n) = next {
        out["NextToken"] = json!(n);
    }
    Ok(out)
}
