//! Replication configurations: stored and described as EFS does, with a destination file system
//! (new, or an existing one whose overwrite protection is disabled) marked REPLICATING. No data
//! is copied (docs/differences.md).

use super::file_systems::create_backing_dir;
use super::state::{available, new_id, scope, Destination, FileSystem, Replication, TRANSITION};
use super::Efs;
use crate::protocol::codes;
use crate::protocol::AwsError;
use crate::services::input::Input;
use crate::services::page::page;
use crate::services::{Ctx, HandlerResult};
use serde::Deserialize;
use serde_json::{json, Value};

const DEFAULT_MAX: usize = 100;

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct DestinationToCreate {
    region: Option<String>,
    availability_zone_name: Option<String>,
    kms_key_id: Option<String>,
    file_system_id: Option<String>,
    role_arn: Option<String>,
}

fn not_found(id: &str) -> AwsError {
    AwsError::new(
        codes::efs::ReplicationNotFound,
        format!("No replication configuration found for file system '{id}'."),
    )
}

/// Whether a file system is the source or a destination of a replication configuration.
pub fn part_of_replication(efs: &Efs, fs: &FileSystem) -> bool {
    efs.state
        .replications
        .read(|r| r.values().any(|rep| involves(rep, fs)))
}

fn involves(rep: &Replication, fs: &FileSystem) -> bool {
    rep.deleted.is_none()
        && rep.owner_id == fs.account
        && ((rep.source_file_system_id == fs.id && rep.source_region == fs.region)
            || rep
                .destinations
                .iter()
                .any(|d| d.file_system_id == fs.id && d.region == fs.region))
}

fn describe(rep: &Replication, now: f64) -> Value {
    let status = match rep.deleted {
        Some(_) => "DELETING",
        None if now - rep.created < TRANSITION => "ENABLING",
        None => "ENABLED",
    };
    json!({
        "SourceFileSystemId": rep.source_file_system_id,
        "SourceFileSystemRegion": rep.source_region,
        "SourceFileSystemArn": rep.source_arn,
        "OriginalSourceFileSystemArn": rep.original_source_arn,
        "SourceFileSystemOwnerId": rep.owner_id,
        "CreationTime": rep.created.floor(),
        "Destinations": rep.destinations.iter().map(|d| {
            let mut v = json!({
                "Status": status,
                "FileSystemId": d.file_system_id,
                "Region": d.region,
                "OwnerId": d.owner_id,
            });
            if let Some(r) = &d.role_arn {
                v["RoleArn"] = json!(r);
            }
            v
        }).collect::<Vec<_>>(),
    })
}

/// The destination file system: an existing one (protection must be DISABLED), or a new one
/// like the source in the destination region.
fn destination(
    efs: &Efs,
    ctx: &Ctx,
    source: &FileSystem,
    d: &DestinationToCreate,
) -> Result<Destination, AwsError> {
    let region = d.region.clone().unwrap_or_else(|| ctx.region.clone());
    let dscope = scope(&ctx.account, &region);
    if let Some(id) = &d.file_system_id {
        let fs = available(&efs.state, &dscope, id, ctx.now)?;
        if fs.id == source.id && region == source.region {
            return Err(AwsError::new(
                codes::efs::ValidationException,
                "The destination file system cannot be the source file system.",
            ));
        }
        if fs.protection != "DISABLED" {
            return Err(AwsError::new(codes::efs::ConflictException,
                format!(
                    "The destination file system '{}' must have its replication overwrite protection disabled.",
                    fs.id
                ),
            ));
        }
        let key = format!("{dscope}{}", fs.id);
        efs.state.file_systems.transact::<_, AwsError, _>(|t| {
            let row = t
                .get_mut(&key)
                .ok_or_else(|| super::state::file_system_not_found(&fs.id))?;
            row.protection = "REPLICATING".into();
            Ok(())
        })?;
        return Ok(Destination {
            file_system_id: fs.id,
            region,
            role_arn: d.role_arn.clone(),
            owner_id: ctx.account.clone(),
        });
    }
    let zone = match &d.availability_zone_name {
        None => None,
        Some(name) => Some(
            crate::services::ec2::regions::zones(&region)
                .into_iter()
                .find(|z| z.name == *name)
                .ok_or_else(|| {
                    AwsError::new(
                        codes::efs::UnsupportedAvailabilityZone,
                        format!("The Availability Zone '{name}' is not supported in {region}."),
                    )
                })?,
        ),
    };
    let id = new_id("fs", &efs.state.resource_id_type(&dscope));
    let fs = FileSystem {
        arn: format!(
            "arn:aws:elasticfilesystem:{region}:{}:file-system/{id}",
            ctx.account
        ),
        id: id.clone(),
        account: ctx.account.clone(),
        region: region.clone(),
        creation_token: uuid::Uuid::new_v4().to_string(),
        created: ctx.now,
        performance_mode: source.performance_mode.clone(),
        throughput_mode: source.throughput_mode.clone(),
        provisioned_mibps: source.provisioned_mibps,
        encrypted: true,
        kms_key_id: d.kms_key_id.clone().or_else(|| source.kms_key_id.clone()),
        az_name: zone.as_ref().map(|z| z.name.clone()),
        az_id: zone.as_ref().map(|z| z.id.clone()),
        tags: Vec::new(),
        policy: None,
        backup: zone.as_ref().map(|_| "ENABLED".to_string()),
        lifecycle: Vec::new(),
        protection: "REPLICATING".into(),
        updated: None,
        deleted: None,
    };
    create_backing_dir(&efs.backing_dir_of(&id))?;
    efs.state.file_systems.put(&format!("{dscope}{id}"), fs)?;
    Ok(Destination {
        file_system_id: id,
        region,
        role_arn: d.role_arn.clone(),
        owner_id: ctx.account.clone(),
    })
}

pub fn create_replication_configuration(efs: &Efs, ctx: &Ctx, input: Value) -> HandlerResult {
    efs.purge(ctx.now);
    let sc = ctx.scope();
    let source = available(
        &efs.state,
        &sc,
        input.str("SourceFileSystemId").unwrap_or_default(),
        ctx.now,
    )?;
    let dests: Vec<DestinationToCreate> = input.member("Destinations")?.unwrap_or_default();
    let [d] = dests.as_slice() else {
        return Err(AwsError::new(
            codes::efs::ValidationException,
            "A replication configuration must have exactly one destination.",
        ));
    };
    if part_of_replication(efs, &source) {
        return Err(AwsError::new(
            codes::efs::ConflictException,
            format!(
                "The file system '{}' is already part of a replication configuration.",
                source.id
            ),
        ));
    }
    let dest = destination(efs, ctx, &source, d)?;
    let rep = Replication {
        source_file_system_id: source.id.clone(),
        source_region: source.region.clone(),
        source_arn: source.arn.clone(),
        original_source_arn: source.arn.clone(),
        owner_id: ctx.account.clone(),
        created: ctx.now,
        destinations: vec![dest],
        deleted: None,
    };
    efs.state
        .replications
        .put(&format!("{sc}{}", source.id), rep.clone())?;
    Ok(describe(&rep, ctx.now))
}

/// Replication configurations of this account that involve `fs` (or all the account's whose
/// source is in this region, without one).
fn matching(efs: &Efs, ctx: &Ctx, fs: Option<&FileSystem>) -> Vec<(String, Replication)> {
    efs.state.replications.read(|r| {
        r.iter()
            .filter(|(_, rep)| rep.owner_id == ctx.account)
            .filter(|(_, rep)| match fs {
                Some(fs) => rep.deleted.is_none() && involves(rep, fs),
                None => rep.source_region == ctx.region,
            })
            .map(|(k, rep)| (k.clone(), rep.clone()))
            .collect()
    })
}

pub fn describe_replication_configurations(efs: &Efs, ctx: &Ctx, input: Value) -> HandlerResult {
    efs.purge(ctx.now);
    let fs = match input.str("FileSystemId") {
        Some(id) => Some(efs.state.file_system(&ctx.scope(), id, ctx.now)?),
        None => None,
    };
    let items = matching(efs, ctx, fs.as_ref());
    if let (Some(fs), true) = (&fs, items.is_empty()) {
        return Err(not_found(&fs.id));
    }
    let max = input.i64("MaxResults").map_or(DEFAULT_MAX, |m| m as usize);
    let (items, next) = page(
        items,
        |(k, _)| k.clone(),
        input.str("NextToken"),
        max,
        codes::efs::BadRequest,
    )?;
    let mut out = json!({
        "Replications": items.iter().map(|(_, r)| describe(r, ctx.now)).collect::<Vec<_>>(),
    });
    if let Some(n) = next {
        out["NextToken"] = json!(n);
    }
    Ok(out)
}

pub fn delete_replication_configuration(efs: &Efs, ctx: &Ctx, input: Value) -> HandlerResult {
    efs.purge(ctx.now);
    let fs = efs.state.file_system(
        &ctx.scope(),
        input.str("SourceFileSystemId").unwrap_or_default(),
        ctx.now,
    )?;
    let Some((key, rep)) = matching(efs, ctx, Some(&fs)).into_iter().next() else {
        return Err(not_found(&fs.id));
    };
    efs.state.replications.transact::<_, AwsError, _>(|t| {
        if let Some(r) = t.get_mut(&key) {
            r.deleted = Some(ctx.now);
        }
        Ok(())
    })?;
    // The destination becomes a writable file system again, protected from being overwritten.
    for d in &rep.destinations {
        let key = format!("{}{}", scope(&ctx.account, &d.region), d.file_system_id);
        efs.state.file_systems.transact::<_, AwsError, _>(|t| {
            if let Some(f) = t.get_mut(&key) {
                if f.protection == "REPLICATING" {
                    f.protection = "ENABLED".into();
                }
            }
            Ok(())
        })?;
    }
    efs.deleted_at(ctx.now);
    Ok(json!({}))
}
