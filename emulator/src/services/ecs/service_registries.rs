//! A service's `serviceRegistries` (Cloud Map), checked as ECS checks them against the
//! registry service's DNS records and the task definition.

use super::{Ecs, TaskDef};
use crate::protocol::codes;
use crate::protocol::AwsError;
use crate::services::input::Input;
use crate::services::Ctx;
use serde_json::Value;

fn invalid(msg: impl Into<String>) -> AwsError {
    AwsError::new(codes::ecs::InvalidParameterException, msg)
}

/// The members ECS keeps of one registry entry (registryArn, port, containerName, containerPort).
pub fn normalized(entries: &[Value]) -> Vec<Value> {
    entries
        .iter()
        .map(|e| {
            let mut out = serde_json::Map::new();
            for k in ["registryArn", "port", "containerName", "containerPort"] {
                if let Some(v) = e.get(k).filter(|v| !v.is_null()) {
                    out.insert(k.to_string(), v.clone());
                }
            }
            Value::Object(out)
        })
        .collect()
}

pub fn check(ecs: &Ecs, ctx: &Ctx, entries: &[Value], def: &TaskDef) -> Result<(), AwsError> {
    if entries.len() > 1 {
        return Err(invalid(
            "Only one service registry is supported per service.",
        ));
    }
    let network_mode = def.body.str("networkMode").unwrap_or("bridge");
    for e in entries {
        let arn = e.str("registryArn").unwrap_or_default();
        if arn.is_empty() {
            return Err(invalid("A service registry must specify a registryArn."));
        }
        let container = e.str("containerName");
        let container_port = e.i64("containerPort");
        if container.is_some() != container_port.is_some() {
            return Err(invalid(
                "containerName and containerPort must be specified together in a service registry.",
            ));
        }
        if e.i64("port").is_some() && container.is_some() {
            return Err(invalid(
                "A service registry can specify either port or containerName and containerPort, not both.",
            ));
        }
        if let (Some(name), Some(port)) = (container, container_port) {
            check_container_port(def, name, port)?;
        }
        let cloudmap = &ecs.cloudmap;
        let registry = cloudmap
            .registry_service(&ctx.account, &ctx.region, arn)
            .ok_or_else(|| invalid(format!("Service registry {arn} does not exist.")))?;
        if network_mode != "awsvpc" && !registry.srv {
            return Err(invalid(format!(
                "The service registry {arn} has no SRV record; services whose tasks use the {network_mode} network mode support only SRV records."
            )));
        }
        if registry.srv
            && container.is_none()
            && (network_mode != "awsvpc" || e.i64("port").is_none())
        {
            return Err(invalid(if network_mode == "awsvpc" {
                "The service registry has an SRV record: specify port, or containerName and containerPort."
            } else {
                "The service registry has an SRV record: specify containerName and containerPort."
            }));
        }
    }
    Ok(())
}

fn check_container_port(def: &TaskDef, name: &str, port: i64) -> Result<(), AwsError> {
    let c = def
        .body
        .get("containerDefinitions")
        .and_then(Value::as_array)
        .and_then(|cs| cs.iter().find(|c| c.str("name") == Some(name)))
        .ok_or_else(|| {
            invalid(format!(
                "The container {name} does not exist in the task definition."
            ))
        })?;
    let mapped = c
        .get("portMappings")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|p| p.i64("containerPort") == Some(port));
    if !mapped {
        return Err(invalid(format!(
            "The container {name} did not have a container port {port} defined."
        )));
    }
    Ok(())
}
