//! Task definitions: RegisterTaskDefinition (validated as ECS validates), DescribeTaskDefinition,
//! ListTaskDefinitions, ListTaskDefinitionFamilies, DeregisterTaskDefinition, DeleteTaskDefinitions.

use super::Ecs;
use crate::protocol::codes;
use crate::protocol::AwsError;
use crate::services::input::Input;
use crate::services::page::with_next;
use crate::services::{Ctx, HandlerResult, Registry};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::collections::BTreeSet;
use std::sync::Arc;

/// A registered revision. `body` is the TaskDefinition structure as DescribeTaskDefinition shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskDef {
    pub arn: String,
    pub family: String,
    pub revision: i64,
    /// ACTIVE, INACTIVE or DELETE_IN_PROGRESS.
    pub status: String,
    pub body: Value,
    #[serde(default)]
    pub tags: Vec<super::model::Tag>,
}

impl TaskDef {
    /// The body with the current status.
    pub fn describe(&self) -> Value {
        let mut b = self.body.clone();
        b["status"] = json!(self.status);
        b
    }
}

pub fn register(r: &mut Registry, ecs: &Arc<Ecs>) {
    r.sync(
        "ecs",
        "RegisterTaskDefinition",
        ecs,
        register_task_definition,
    );
    r.sync(
        "ecs",
        "DescribeTaskDefinition",
        ecs,
        describe_task_definition,
    );
    r.sync("ecs", "ListTaskDefinitions", ecs, list_task_definitions);
    r.sync("ecs", "ListTaskDefinitionFamilies", ecs, list_families);
    r.sync(
        "ecs",
        "DeregisterTaskDefinition",
        ecs,
        deregister_task_definition,
    );
    r.sync("ecs", "DeleteTaskDefinitions", ecs, delete_task_definitions);
}

fn client(msg: impl Into<String>) -> AwsError {
    AwsError::new(codes::ecs::ClientException, msg)
}

/// Row key: "<scope><family>:<revision, zero-padded so rows sort by revision>".
fn key(ctx_scope: &str, family: &str, revision: i64) -> String {
    format!("{ctx_scope}{family}:{revision:010}")
}

/// The task definitions' listing index: "<scope><status>\0<family>\0<revision, 10 digits>"
/// (rows are keyed "<scope><family>:<revision>"), in ListTaskDefinitions' order.
pub fn listing_index(key: &str, d: &TaskDef) -> Option<String> {
    let scope = key.strip_suffix(&format!("{}:{:010}", d.family, d.revision))?;
    Some(format!(
        "{scope}{}\0{}\0{:010}",
        d.status, d.family, d.revision
    ))
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 255
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Fargate's valid (cpu, memory) pairs, in CPU units and MiB.
pub fn fargate_pair_valid(cpu: i64, memory: i64) -> bool {
    let gb = |g: i64| g * 1024;
    match cpu {
        256 => [512, 1024, 2048].contains(&memory),
        512 => (1..=4).map(gb).any(|m| m == memory),
        1024 => (2..=8).map(gb).any(|m| m == memory),
        2048 => (4..=16).map(gb).any(|m| m == memory),
        4096 => (8..=30).map(gb).any(|m| m == memory),
        8192 => (16..=60).step_by(4).map(gb).any(|m| m == memory),
        16384 => (32..=120).step_by(8).map(gb).any(|m| m == memory),
        _ => false,
    }
}

/// Task-level cpu: "1024" or "1 vCPU" → CPU units.
pub fn parse_cpu(s: &str) -> Option<i64> {
    let t = s.trim().to_ascii_lowercase();
    if let Some(v) = t.strip_suffix("vcpu") {
        return v
            .trim()
            .parse::<f64>()
            .ok()
            .map(|v| (v * 1024.0).round() as i64);
    }
    t.parse().ok()
}

/// Task-level memory: "2048" or "2 GB" → MiB.
pub fn parse_memory(s: &str) -> Option<i64> {
    let t = s.trim().to_ascii_lowercase();
    if let Some(v) = t.strip_suffix("gb") {
        return v
            .trim()
            .parse::<f64>()
            .ok()
            .map(|v| (v * 1024.0).round() as i64);
    }
    if let Some(v) = t.strip_suffix("mb") {
        return v.trim().parse().ok();
    }
    t.parse().ok()
}

/// Checks a container definition list the way ECS does and fills in ECS's defaults.
fn normalize_containers(
    input: &Value,
    network_mode: &str,
    task_memory: Option<i64>,
    fargate: bool,
) -> Result<Vec<Value>, AwsError> {
    let defs = input
        .get("containerDefinitions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if defs.is_empty() {
        return Err(client("Container list cannot be empty."));
    }
    let mut names = BTreeSet::new();
    let mut out = Vec::with_capacity(defs.len());
    let mut memory_sum = 0;
    for mut def in defs {
        let name = def.str("name").unwrap_or_default().to_string();
        if name.is_empty() {
            return Err(client("Container.name should not be null or empty."));
        }
        if !valid_name(&name) {
            return Err(client(format!("Container name '{name}' is invalid: up to 255 letters (uppercase and lowercase), numbers, hyphens, and underscores are allowed.")));
        }
        if !names.insert(name.clone()) {
            return Err(client(format!("Duplicate container name found: {name}.")));
        }
        if def.str("image").unwrap_or_default().is_empty() {
            return Err(client(format!(
                "Container.image should not be null or empty. (container {name})"
            )));
        }
        let memory = def.i64("memory");
        let reservation = def.i64("memoryReservation");
        if memory.is_none() && reservation.is_none() && task_memory.is_none() {
            return Err(client(format!(
                "Invalid setting for container '{name}'. At least one of 'memory' or 'memoryReservation' must be specified."
            )));
        }
        if let (Some(m), Some(r)) = (memory, reservation) {
            if m < r {
                return Err(client(format!(
                    "Invalid setting for container '{name}'. 'memory' must be greater than or equal to 'memoryReservation'."
                )));
            }
        }
        for v in [memory, reservation].into_iter().flatten() {
            if v < 6 {
                return Err(client(format!(
                    "Invalid setting for container '{name}'. The memory value must be at least 6 MiB."
                )));
            }
        }
        if let (Some(task), Some(m)) = (task_memory, memory.or(reservation)) {
            if m > task {
                return Err(client(format!(
                    "Invalid setting for container '{name}'. The container memory ({m} MiB) exceeds the task memory ({task} MiB)."
                )));
            }
        }
        memory_sum += reservation.or(memory).unwrap_or(0);
        let obj = def
            .as_object_mut()
            .ok_or_else(|| client("Container definition must be a structure"))?;
        obj.entry("cpu").or_insert(json!(0));
        obj.entry("essential").or_insert(json!(true));
        for list in ["portMappings", "environment", "mountPoints", "volumesFrom"] {
            obj.entry(list).or_insert(json!([]));
        }
        if let Some(Value::Array(ports)) = obj.get_mut("portMappings") {
            for p in ports.iter_mut() {
                let container_port = p.i64("containerPort");
                let host_port = p.i64("hostPort");
                if container_port.is_none() && p.str("containerPortRange").is_none() {
                    return Err(client(format!("Invalid setting for container '{name}': portMappings need a containerPort.")));
                }
                if matches!(network_mode, "awsvpc" | "host") {
                    if let (Some(c), Some(h)) = (container_port, host_port) {
                        if c != h {
                            return Err(client(format!(
                                "When networkMode={network_mode}, the host ports and container ports in port mappings must match."
                            )));
                        }
                    }
                    if let (Some(c), None) = (container_port, host_port) {
                        p["hostPort"] = json!(c);
                    }
                }
                if let Some(o) = p.as_object_mut() {
                    o.entry("protocol").or_insert(json!("tcp"));
                }
            }
        }
        if network_mode != "bridge"
            && obj
                .get("links")
                .and_then(Value::as_array)
                .is_some_and(|l| !l.is_empty())
        {
            return Err(client(
                "Links are only supported in the bridge network mode.",
            ));
        }
        if fargate && obj.get("privileged").and_then(Value::as_bool) == Some(true) {
            return Err(client(
                "Privileged containers are not supported on Fargate.",
            ));
        }
        out.push(def);
    }
    if !out.iter().any(|c| c.bool("essential") != Some(false)) {
        return Err(client(
            "Invalid request: at least one container in the task definition must be essential.",
        ));
    }
    // dependsOn must name containers of this task; COMPLETE and SUCCESS cannot target an essential one.
    for c in &out {
        for dep in c
            .get("dependsOn")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let target = dep.str("containerName").unwrap_or_default();
            let Some(t) = out.iter().find(|o| o.str("name") == Some(target)) else {
                return Err(client(format!(
                    "Container {target} named in dependsOn does not exist in the task definition."
                )));
            };
            let condition = dep.str("condition").unwrap_or_default();
            if matches!(condition, "COMPLETE" | "SUCCESS") && t.bool("essential") != Some(false) {
                return Err(client(format!(
                    "Dependency condition {condition} cannot be set on an essential container ({target})."
                )));
            }
        }
        for link in c
            .get("links")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let target = link.as_str().unwrap_or_default();
            let linked = target.split(':').next().unwrap_or_default();
            if !out.iter().any(|o| o.str("name") == Some(linked)) {
                return Err(client(format!(
                    "Linked container '{linked}' does not exist in the task definition."
                )));
            }
        }
    }
    let _ = memory_sum;
    Ok(out)
}

/// ECS's rules for `volumes[].efsVolumeConfiguration` (ClientException).
fn validate_efs_volumes(input: &Value) -> Result<(), AwsError> {
    for v in input
        .get("volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some(c) = v.get("efsVolumeConfiguration") else {
            continue;
        };
        let conf: crate::efs::volumes::EfsVolumeConfiguration =
            serde_json::from_value(c.clone())
                .map_err(|_| client("Invalid efsVolumeConfiguration: fileSystemId is required."))?;
        crate::efs::volumes::validate(&conf).map_err(client)?;
    }
    Ok(())
}

/// ECS's quota on a task definition: its containerDefinitions document may be 64 KiB.
const MAX_CONTAINER_DEFINITIONS_BYTES: usize = 64 * 1024;

const FARGATE_NETWORK_MODE: &str = "Fargate only supports network mode \u{2018}awsvpc\u{2019}.";
const FARGATE_PID_MODE: &str = "Tasks using the Fargate launch type do not support pidMode 'host'. The supported value for pidMode is 'task'.";

/// The volumes as ECS stores them: an EFS volume's rootDirectory defaults to "/".
fn volumes_with_defaults(input: &Value) -> Value {
    let mut volumes = input.get("volumes").cloned().unwrap_or(json!([]));
    for v in volumes.as_array_mut().into_iter().flatten() {
        if let Some(Value::Object(efs)) = v.get_mut("efsVolumeConfiguration") {
            efs.entry("rootDirectory").or_insert_with(|| json!("/"));
        }
    }
    volumes
}

fn register_task_definition(ecs: &Ecs, ctx: &Ctx, input: Value) -> HandlerResult {
    if let Some(defs) = input.get("containerDefinitions") {
        let size = serde_json::to_vec(defs).map(|v| v.len()).unwrap_or(0);
        if size > MAX_CONTAINER_DEFINITIONS_BYTES {
            return Err(client(format!(
                "Container definitions are {size} bytes; the maximum size of a task definition's container definitions is {MAX_CONTAINER_DEFINITIONS_BYTES} bytes (64 KiB)."
            )));
        }
    }
    let family = input.str("family").unwrap_or_default().to_string();
    if !valid_name(&family) {
        return Err(client(
            "Family contains invalid characters: up to 255 letters (uppercase and lowercase), numbers, hyphens, and underscores are allowed.",
        ));
    }
    let requires: Vec<String> = input.string_list("requiresCompatibilities");
    let fargate = requires.iter().any(|c| c == "FARGATE");
    // Without networkMode a definition is bridge, FARGATE or not: ECS refuses FARGATE then
    // (its message has typographic quotes).
    let network_mode = input.str("networkMode").unwrap_or("bridge").to_string();
    if fargate && network_mode != "awsvpc" {
        return Err(client(FARGATE_NETWORK_MODE));
    }
    if fargate && input.str("pidMode") == Some("host") {
        return Err(client(FARGATE_PID_MODE));
    }
    let cpu = match input.str("cpu") {
        Some(s) => Some(
            parse_cpu(s).ok_or_else(|| client(format!("Invalid 'cpu' setting for task: {s}")))?,
        ),
        None => None,
    };
    let memory = match input.str("memory") {
        Some(s) => Some(
            parse_memory(s)
                .ok_or_else(|| client(format!("Invalid 'memory' setting for task: {s}")))?,
        ),
        None => None,
    };
    if fargate {
        let (Some(c), Some(m)) = (cpu, memory) else {
            return Err(client(
                "Fargate requires that 'cpu' and 'memory' be defined at the task level.",
            ));
        };
        if !fargate_pair_valid(c, m) {
            return Err(client(format!(
                "No Fargate configuration exists for given values: {c} CPU, {m} memory. See the Amazon ECS documentation for the valid values."
            )));
        }
    } else if let Some(c) = cpu {
        if !(128..=196_608).contains(&c) {
            return Err(client(format!("Invalid 'cpu' setting for task. The value {c} is outside the valid range of 128 to 196608 CPU units.")));
        }
    }
    let containers = normalize_containers(&input, &network_mode, memory, fargate)?;
    validate_efs_volumes(&input)?;
    let scope = ctx.scope();
    let tags: Vec<super::model::Tag> = input.member("tags")?.unwrap_or_default();
    let def = ecs.task_definitions.transact::<_, AwsError, _>(|t| {
        let prefix = format!("{scope}{family}:");
        let revision = t
            .keys(&prefix)
            .last()
            .and_then(|k| t.get(k))
            .map(|d| d.revision)
            .unwrap_or(0)
            + 1;
        let arn = ctx.arn("ecs", &format!("task-definition/{family}:{revision}"));
        let mut body = Map::new();
        body.insert("taskDefinitionArn".into(), json!(arn));
        body.insert("containerDefinitions".into(), json!(containers));
        body.insert("family".into(), json!(family));
        for k in ["taskRoleArn", "executionRoleArn"] {
            if let Some(v) = input.get(k) {
                body.insert(k.into(), v.clone());
            }
        }
        body.insert("networkMode".into(), json!(network_mode));
        body.insert("revision".into(), json!(revision));
        body.insert("volumes".into(), volumes_with_defaults(&input));
        body.insert("status".into(), json!("ACTIVE"));
        body.insert("requiresAttributes".into(), json!([]));
        body.insert(
            "placementConstraints".into(),
            input
                .get("placementConstraints")
                .cloned()
                .unwrap_or(json!([])),
        );
        let mut compat = vec!["EC2"];
        if network_mode == "awsvpc"
            && cpu
                .zip(memory)
                .is_some_and(|(c, m)| fargate_pair_valid(c, m))
        {
            compat.push("FARGATE");
        }
        body.insert("compatibilities".into(), json!(compat));
        for k in [
            "runtimePlatform",
            "requiresCompatibilities",
            "cpu",
            "memory",
            "pidMode",
            "ipcMode",
            "proxyConfiguration",
            "inferenceAccelerators",
            "ephemeralStorage",
            "enableFaultInjection",
        ] {
            if let Some(v) = input.get(k) {
                body.insert(k.into(), v.clone());
            }
        }
        body.insert("registeredAt".into(), json!(ctx.now));
        body.insert(
            "registeredBy".into(),
            json!(format!("arn:aws:iam::{}:root", ctx.account)),
        );
        let def = TaskDef {
            arn,
            family: family.clone(),
            revision,
            status: "ACTIVE".into(),
            body: Value::Object(body),
            tags: tags.clone(),
        };
        t.put(&key(&scope, &family, revision), def.clone());
        Ok(def)
    })?;
    Ok(json!({"taskDefinition": def.describe(), "tags": def.tags}))
}

impl Ecs {
    /// A revision by its ARN, in any account and region (the agent's view).
    pub fn task_definition_by_arn(&self, arn: &str) -> Option<TaskDef> {
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        let (region, account) = (parts.get(3)?, parts.get(4)?);
        let (family, rev) = parts
            .get(5)?
            .strip_prefix("task-definition/")?
            .split_once(':')?;
        let rev: i64 = rev.parse().ok()?;
        self.task_definitions
            .get(&key(&format!("{account}/{region}/"), family, rev))
    }

    /// Resolves "family", "family:revision" or an ARN. A bare family means its latest ACTIVE revision.
    pub fn task_definition(&self, ctx: &Ctx, reference: &str) -> Result<TaskDef, AwsError> {
        let not_found = || client("Unable to describe task definition.");
        let spec = match reference.strip_prefix("arn:") {
            Some(_) => reference
                .rsplit_once("task-definition/")
                .map(|(_, s)| s.to_string())
                .ok_or_else(not_found)?,
            None => reference.to_string(),
        };
        let scope = ctx.scope();
        match spec.split_once(':') {
            Some((family, rev)) => {
                let rev: i64 = rev
                    .parse()
                    .map_err(|_| client(format!("Invalid revision number. Number: {rev}")))?;
                self.task_definitions
                    .get(&key(&scope, family, rev))
                    .ok_or_else(not_found)
            }
            None => self
                .task_definitions
                .scan(&format!("{scope}{spec}:"))
                .into_iter()
                .rev()
                .map(|(_, d)| d)
                .find(|d| d.status == "ACTIVE")
                .ok_or_else(not_found),
        }
    }
}

fn describe_task_definition(ecs: &Ecs, ctx: &Ctx, input: Value) -> HandlerResult {
    let def = ecs.task_definition(ctx, input.str("taskDefinition").unwrap_or_default())?;
    let mut out = json!({"taskDefinition": def.describe()});
    if input.string_list("include").iter().any(|i| i == "TAGS") {
        out["tags"] = json!(def.tags);
    }
    Ok(out)
}

fn list_task_definitions(ecs: &Ecs, ctx: &Ctx, input: Value) -> HandlerResult {
    let status = input.str("status").unwrap_or("ACTIVE");
    let prefix = input.str("familyPrefix");
    let desc = input.str("sort") == Some("DESC");
    let max = input.i64("maxResults").unwrap_or(100).clamp(1, 100) as usize;
    // The token orders the same way the list does.
    let sort_key = |family: &str, revision: i64| {
        let rank = format!("{family}:{revision:010}");
        if desc {
            rank.bytes().map(|b| format!("{:02x}", 255 - b)).collect()
        } else {
            rank
        }
    };
    // The listing index holds "<scope><status>\0<family>\0<revision>", which sorts as the list
    // does (family, then revision): a page is a range read from the token on, so it costs the
    // same with 10,000 revisions as with ten.
    let scope = ctx.scope();
    let range = match prefix {
        Some(family) => format!("{scope}{status}\0{family}\0"),
        None => format!("{scope}{status}\0"),
    };
    let mut defs: Vec<(String, i64, String)> = ecs
        .task_definitions
        .read_index(|index, rows| {
            let after = match input.str("nextToken").filter(|t| !t.is_empty()) {
                None => None,
                Some(t) => Some(crate::services::page::decode_token(t)?),
            };
            let from = after
                .as_deref()
                .and_then(|a| parse_rank(a, desc))
                .map(|(family, revision)| format!("{scope}{status}\0{family}\0{revision:010}"));
            let in_range = |(i, _): &&(String, String)| i.starts_with(&range);
            let entries: Box<dyn Iterator<Item = &(String, String)>> = match (desc, from) {
                (false, None) => Box::new(
                    index
                        .range((range.clone(), String::new())..)
                        .take_while(in_range),
                ),
                // The smallest key after `f` is `f` followed by NUL.
                (false, Some(f)) => Box::new(
                    index
                        .range((format!("{f}\0"), String::new())..)
                        .take_while(in_range),
                ),
                (true, None) => Box::new(
                    index
                        .range(..(format!("{range}\u{10FFFF}"), String::new()))
                        .rev()
                        .take_while(in_range),
                ),
                (true, Some(f)) => {
                    Box::new(index.range(..(f, String::new())).rev().take_while(in_range))
                }
            };
            let rows = entries
                .filter_map(|(_, k)| rows.get(k))
                .map(|d| (d.family.as_str(), d.revision, d.arn.as_str()));
            // A token that is not a (family, revision) rank: resume after its key by comparison.
            let odd = after.filter(|a| parse_rank(a, desc).is_none());
            Some(
                rows.skip_while(|(f, r, _)| odd.as_ref().is_some_and(|a| sort_key(f, *r) <= *a))
                    .take(max + 1)
                    .map(|(f, r, a)| (f.to_string(), r, a.to_string()))
                    .collect(),
            )
        })
        .ok_or_else(|| {
            AwsError::new(
                codes::ecs::InvalidParameterException,
                "The specified nextToken is invalid",
            )
        })?;
    let next = if defs.len() > max {
        defs.truncate(max);
        defs.last()
            .map(|(f, r, _)| crate::services::page::encode_token(&sort_key(f, *r)))
    } else {
        None
    };
    Ok(with_next(
        json!({"taskDefinitionArns": defs.into_iter().map(|(_, _, a)| a).collect::<Vec<_>>()}),
        next,
    ))
}

/// (family, revision) from a ListTaskDefinitions token's key ("family:0000000003", its bytes
/// inverted and hex-encoded for DESC).
fn parse_rank(after: &str, desc: bool) -> Option<(String, i64)> {
    let rank = if desc {
        let bytes: Option<Vec<u8>> = (0..after.len())
            .step_by(2)
            .map(|i| {
                after
                    .get(i..i + 2)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .map(|b| 255 - b)
            })
            .collect();
        String::from_utf8(bytes?).ok()?
    } else {
        after.to_string()
    };
    let (family, revision) = rank.rsplit_once(':')?;
    Some((family.to_string(), revision.parse().ok()?))
}

fn list_families(ecs: &Ecs, ctx: &Ctx, input: Value) -> HandlerResult {
    let status = input.str("status").unwrap_or("ACTIVE");
    let prefix = input.str("familyPrefix").unwrap_or("");
    let scope = ctx.scope();
    let mut families: Vec<(String, bool)> = Vec::new();
    for (_, d) in ecs.task_definitions.scan(&format!("{scope}{prefix}")) {
        match families.last_mut() {
            Some((f, active)) if *f == d.family => *active |= d.status == "ACTIVE",
            _ => families.push((d.family.clone(), d.status == "ACTIVE")),
        }
    }
    let names: Vec<String> = families
        .into_iter()
        .filter(|(_, active)| match status {
            "ACTIVE" => *active,
            "INACTIVE" => !*active,
            _ => true,
        })
        .map(|(f, _)| f)
        .collect();
    super::list_page("families", names, &input, 100)
}

fn revision_key(ecs: &Ecs, ctx: &Ctx, reference: &str) -> Result<String, AwsError> {
    let spec = reference
        .rsplit_once("task-definition/")
        .map(|(_, s)| s)
        .unwrap_or(reference);
    let Some((family, rev)) = spec.split_once(':') else {
        return Err(AwsError::new(codes::ecs::InvalidParameterException,
            "The specified task definition does not have a revision number. Specify a revision number and try again.",
        ));
    };
    let rev: i64 = rev
        .parse()
        .map_err(|_| client(format!("Invalid revision number. Number: {rev}")))?;
    let k = key(&ctx.scope(), family, rev);
    if !ecs.task_definitions.contains(&k) {
        return Err(client("The specified task definition does not exist. Specify a valid account, family, revision and try again."));
    }
    Ok(k)
}

fn deregister_task_definition(ecs: &Ecs, ctx: &Ctx, input: Value) -> HandlerResult {
    let k = revision_key(ecs, ctx, input.str("taskDefinition").unwrap_or_default())?;
    let def = ecs.task_definitions.transact::<_, AwsError, _>(|t| {
        let d = t
            .get_mut(&k)
            .ok_or_else(|| client("The specified task definition does not exist."))?;
        if d.status == "ACTIVE" {
            d.status = "INACTIVE".into();
            d.body["deregisteredAt"] = json!(ctx.now);
        }
        Ok(d.clone())
    })?;
    Ok(json!({"taskDefinition": def.describe()}))
}

fn delete_task_definitions(ecs: &Ecs, ctx: &Ctx, input: Value) -> HandlerResult {
    let mut deleted = Vec::new();
    let mut failures = Vec::new();
    for reference in input.string_list("taskDefinitions") {
        let arn_for_failure = if reference.starts_with("arn:") {
            reference.clone()
        } else {
            ctx.arn("ecs", &format!("task-definition/{reference}"))
        };
        let k = match revision_key(ecs, ctx, &reference) {
            Ok(k) => k,
            Err(e) => {
                failures.push(json!({"arn": arn_for_failure, "reason": "TASK_DEFINITION_NOT_FOUND", "detail": e.message}));
                continue;
            }
        };
        let result = ecs.task_definitions.transact(|t| {
            let d = t.get_mut(&k).ok_or_else(|| client("not found"))?;
            if d.status == "ACTIVE" {
                return Err(client("The specified task definition is still in ACTIVE status. Please deregister the target and try again."));
            }
            d.status = "DELETE_IN_PROGRESS".into();
            d.body["deleteRequestedAt"] = json!(ctx.now);
            Ok(d.clone())
        });
        match result {
            Ok(d) => deleted.push(d.describe()),
            Err(e) => failures.push(json!({"arn": arn_for_failure, "reason": "TASK_DEFINITION_IN_ACTIVE_STATE", "detail": e.message})),
        }
    }
    Ok(json!({"taskDefinitions": deleted, "failures": failures}))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn web(extra: Value) -> Value {
        let mut v = json!({
            "family": "web",
            "containerDefinitions": [{"name": "app", "image": "busybox", "memory": 128, "portMappings": [{"containerPort": 80}]}]
        });
        if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
            for (k, x) in e {
                o.insert(k.clone(), x.clone());
            }
        }
        v
    }

    #[test]
    fn revisions_describe_list_deregister_delete() {
        let ecs = super::super::for_tests();
        let ctx = Ctx::for_tests();
        let r1 = register_task_definition(&ecs, &ctx, web(json!({}))).expect("r1");
        assert_eq!(r1["taskDefinition"]["revision"], 1);
        let c = &r1["taskDefinition"]["containerDefinitions"][0];
        assert_eq!(
            (
                c["essential"].clone(),
                c["cpu"].clone(),
                c["portMappings"][0]["protocol"].clone()
            ),
            (json!(true), json!(0), json!("tcp"))
        );
        assert_eq!(r1["taskDefinition"]["networkMode"], "bridge");
        let r2 = register_task_definition(
            &ecs,
            &ctx,
            web(json!({"tags": [{"key": "k", "value": "v"}]})),
        )
        .expect("r2");
        assert_eq!(
            r2["taskDefinition"]["taskDefinitionArn"],
            "arn:aws:ecs:us-east-1:000000000000:task-definition/web:2"
        );

        let d = describe_task_definition(
            &ecs,
            &ctx,
            json!({"taskDefinition": "web", "include": ["TAGS"]}),
        )
        .expect("latest");
        assert_eq!(d["taskDefinition"]["revision"], 2);
        assert_eq!(d["tags"][0]["key"], "k");
        let d = describe_task_definition(
            &ecs,
            &ctx,
            json!({"taskDefinition": "arn:aws:ecs:us-east-1:000000000000:task-definition/web:1"}),
        )
        .expect("arn");
        assert_eq!(d["taskDefinition"]["revision"], 1);
        assert_eq!(
            describe_task_definition(&ecs, &ctx, json!({"taskDefinition": "nope"}))
                .unwrap_err()
                .code,
            "ClientException"
        );

        let l = list_task_definitions(&ecs, &ctx, json!({"sort": "DESC", "maxResults": 1}))
            .expect("list");
        assert_eq!(
            l["taskDefinitionArns"][0],
            "arn:aws:ecs:us-east-1:000000000000:task-definition/web:2"
        );
        let l2 = list_task_definitions(
            &ecs,
            &ctx,
            json!({"sort": "DESC", "maxResults": 1, "nextToken": l["nextToken"]}),
        )
        .expect("page 2");
        assert_eq!(
            l2["taskDefinitionArns"][0],
            "arn:aws:ecs:us-east-1:000000000000:task-definition/web:1"
        );

        let e = delete_task_definitions(&ecs, &ctx, json!({"taskDefinitions": ["web:1"]}))
            .expect("delete active");
        assert_eq!(
            e["failures"][0]["reason"],
            "TASK_DEFINITION_IN_ACTIVE_STATE"
        );
        deregister_task_definition(&ecs, &ctx, json!({"taskDefinition": "web:1"}))
            .expect("deregister");
        let fam = list_families(&ecs, &ctx, json!({})).expect("families");
        assert_eq!(fam["families"], json!(["web"]));
        let e = delete_task_definitions(&ecs, &ctx, json!({"taskDefinitions": ["web:1"]}))
            .expect("delete");
        assert_eq!(e["taskDefinitions"][0]["status"], "DELETE_IN_PROGRESS");
        let l = list_task_definitions(&ecs, &ctx, json!({})).expect("list");
        assert_eq!(l["taskDefinitionArns"].as_array().map(Vec::len), Some(1));
        deregister_task_definition(&ecs, &ctx, json!({"taskDefinition": "web:2"}))
            .expect("deregister 2");
        let fam = list_families(&ecs, &ctx, json!({"status": "INACTIVE"})).expect("families");
        assert_eq!(fam["families"], json!(["web"]));
    }

    /// Paging by ones gives the whole list, in (family, revision) order either way, also for
    /// families that are prefixes of others ("web" sorts before "web1", though "web:" > "web1:").
    #[test]
    fn pages_of_one_walk_the_whole_list_in_both_orders() {
        let ecs = super::super::for_tests();
        let ctx = Ctx::for_tests();
        for family in ["web1", "web", "web-a", "api", "web"] {
            let def = json!({"family": family, "containerDefinitions": [{"name": "x", "image": "i", "memory": 64}]});
            register_task_definition(&ecs, &ctx, def).expect("register");
        }
        let expected = ["api:1", "web:1", "web:2", "web-a:1", "web1:1"];
        for desc in [false, true] {
            let sort = if desc { "DESC" } else { "ASC" };
            let mut got = Vec::new();
            let mut token = Value::Null;
            for _ in 0..10 {
                let l = list_task_definitions(
                    &ecs,
                    &ctx,
                    json!({"sort": sort, "maxResults": 1, "nextToken": token}),
                )
                .expect("page");
                for a in l["taskDefinitionArns"].as_array().expect("arns") {
                    got.push(
                        a.as_str()
                            .expect("arn")
                            .rsplit('/')
                            .next()
                            .expect("name")
                            .to_string(),
                    );
                }
                token = l["nextToken"].clone();
                if token.is_null() {
                    break;
                }
            }
            let mut want: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
            if desc {
                want.reverse();
            }
            assert_eq!(got, want, "{sort}");
        }
    }

    #[test]
    fn ecs_validation_rules() {
        let ecs = super::super::for_tests();
        let ctx = Ctx::for_tests();
        let err = |v: Value| register_task_definition(&ecs, &ctx, v).unwrap_err().message;
        assert!(
            err(json!({"family": "a", "containerDefinitions": [{"name": "x", "image": "i"}]}))
                .contains("At least one of 'memory' or 'memoryReservation'")
        );
        assert!(err(json!({"family": "a", "containerDefinitions": [{"name": "x", "image": "i", "memory": 64, "memoryReservation": 128}]})).contains("greater than or equal to 'memoryReservation'"));
        assert!(err(json!({"family": "a", "containerDefinitions": [{"name": "x", "image": "i", "memory": 64, "essential": false}]})).contains("essential"));
        assert!(err(json!({"family": "a", "networkMode": "awsvpc", "containerDefinitions": [{"name": "x", "image": "i", "memory": 64, "portMappings": [{"containerPort": 80, "hostPort": 81}]}]})).contains("must match"));
        assert!(err(json!({"family": "a", "requiresCompatibilities": ["FARGATE"], "networkMode": "awsvpc", "cpu": "256", "memory": "4096", "containerDefinitions": [{"name": "x", "image": "i"}]})).contains("No Fargate configuration"));
        assert!(err(json!({"family": "a", "requiresCompatibilities": ["FARGATE"], "networkMode": "bridge", "cpu": "256", "memory": "512", "containerDefinitions": [{"name": "x", "image": "i"}]})).contains("awsvpc"));
        assert!(err(json!({"family": "bad name", "containerDefinitions": [{"name": "x", "image": "i", "memory": 6}]})).contains("Family"));
        assert!(err(json!({"family": "a", "containerDefinitions": [{"name": "x", "image": "i", "memory": 64}, {"name": "x", "image": "i", "memory": 64}]})).contains("Duplicate"));
        assert!(err(json!({"family": "a", "containerDefinitions": [{"name": "x", "image": "i", "memory": 64, "dependsOn": [{"containerName": "y", "condition": "SUCCESS"}]}, {"name": "y", "image": "i", "memory": 64}]})).contains("essential"));
        let fargate = |extra: Value| {
            let mut v = json!({"family": "a", "requiresCompatibilities": ["FARGATE"], "cpu": "256", "memory": "512", "containerDefinitions": [{"name": "x", "image": "i"}]});
            for (k, x) in extra.as_object().into_iter().flatten() {
                v[k] = x.clone();
            }
            register_task_definition(&ecs, &ctx, v).unwrap_err()
        };
        let e = fargate(json!({}));
        assert_eq!(
            (e.code.as_ref(), e.message.as_str()),
            ("ClientException", FARGATE_NETWORK_MODE)
        );
        assert_eq!(
            FARGATE_NETWORK_MODE,
            "Fargate only supports network mode ‘awsvpc’."
        );
        let e = fargate(json!({"networkMode": "awsvpc", "pidMode": "host"}));
        assert_eq!(
            (e.code.as_ref(), e.message.as_str()),
            ("ClientException", FARGATE_PID_MODE)
        );
        let ok = register_task_definition(&ecs, &ctx, json!({"family": "f", "requiresCompatibilities": ["FARGATE"], "networkMode": "awsvpc", "cpu": "1 vCPU", "memory": "2 GB", "containerDefinitions": [{"name": "x", "image": "i", "portMappings": [{"containerPort": 8080}]}]})).expect("fargate");
        assert_eq!(
            ok["taskDefinition"]["compatibilities"],
            json!(["EC2", "FARGATE"])
        );
        assert_eq!(
            ok["taskDefinition"]["containerDefinitions"][0]["portMappings"][0]["hostPort"],
            8080
        );
        let efs = register_task_definition(&ecs, &ctx, json!({"family": "e", "containerDefinitions": [{"name": "x", "image": "i", "memory": 64}], "volumes": [{"name": "v", "efsVolumeConfiguration": {"fileSystemId": "fs-12345678"}}, {"name": "w", "efsVolumeConfiguration": {"fileSystemId": "fs-12345678", "rootDirectory": "/data"}}]})).expect("efs");
        let volumes = &efs["taskDefinition"]["volumes"];
        assert_eq!(volumes[0]["efsVolumeConfiguration"]["rootDirectory"], "/");
        assert_eq!(
            volumes[1]["efsVolumeConfiguration"]["rootDirectory"],
            "/data"
        );
        assert_eq!(parse_cpu("0.5 vcpu"), Some(512));
        assert_eq!(parse_memory("0.5GB"), Some(512));
        assert!(
            fargate_pair_valid(256, 512)
                && fargate_pair_valid(4096, 30720)
                && !fargate_pair_valid(8192, 18432)
        );
    }
}
