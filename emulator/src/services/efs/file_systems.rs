//! File systems: CreateFileSystem (CreationToken idempotency), DescribeFileSystems,
//! UpdateFileSystem, DeleteFileSystem, UpdateFileSystemProtection.

use super::state::{
    available, bad_request, file_system_not_found, new_id, FileSystem, MountTarget,
};
use super::tags::{parse_tags, tags_json};
use super::Efs;
use crate::protocol::codes;
use crate::protocol::AwsError;
use crate::services::input::Input;
use crate::services::page::page;
use crate::services::{Ctx, HandlerResult};
use serde_json::{json, Value};

/// File systems per account and region.
const MAX_FILE_SYSTEMS: usize = 1000;
/// The most provisioned throughput a file system may have (MiB/s).
const MAX_PROVISIONED_MIBPS: f64 = 3414.0;
const DEFAULT_MAX_ITEMS: usize = 100;

/// The description of a file system at `now` (the model's FileSystemDescription).
pub fn describe(efs: &Efs, fs: &FileSystem, now: f64) -> Value {
    let scope = super::state::scope(&fs.account, &fs.region);
    let mount_targets = efs
        .state
        .mount_targets_of(&scope, &fs.id)
        .iter()
        .filter(|m| m.deleted.is_none())
        .count();
    let size = efs.sizes.get(&fs.id, &efs.backing_dir_of(&fs.id), now);
    let mut out = json!({
        "OwnerId": fs.account,
        "CreationToken": fs.creation_token,
        "FileSystemId": fs.id,
        "FileSystemArn": fs.arn,
        "CreationTime": fs.created.floor(),
        "LifeCycleState": fs.state(now),
        "NumberOfMountTargets": mount_targets,
        "SizeInBytes": {
            "Value": size.value,
            "Timestamp": size.timestamp,
            "ValueInIA": 0,
            "ValueInStandard": size.value,
            "ValueInArchive": 0,
        },
        "PerformanceMode": fs.performance_mode,
        "Encrypted": fs.encrypted,
        "ThroughputMode": fs.throughput_mode,
        "Tags": tags_json(&fs.tags),
        "FileSystemProtection": {"ReplicationOverwriteProtection": fs.protection},
    });
    if let Some(name) = fs.name() {
        out["Name"] = json!(name);
    }
    if let Some(k) = &fs.kms_key_id {
        out["KmsKeyId"] = json!(k);
    }
    if let Some(p) = fs.provisioned_mibps {
        out["ProvisionedThroughputInMibps"] = json!(p);
    }
    if let (Some(name), Some(id)) = (&fs.az_name, &fs.az_id) {
        out["AvailabilityZoneName"] = json!(name);
        out["AvailabilityZoneId"] = json!(id);
    }
    out
}

/// The ARN of a KMS key as EFS reports it: key ids and aliases become ARNs; without a key, the
/// account's `aws/elasticfilesystem` managed key.
fn kms_key_arn(ctx: &Ctx, key: Option<&str>) -> String {
    let prefix = format!("arn:aws:kms:{}:{}:", ctx.region, ctx.account);
    match key {
        Some(k) if k.starts_with("arn:") => k.to_string(),
        Some(k) if k.starts_with("alias/") => format!("{prefix}{k}"),
        Some(k) => format!("{prefix}key/{k}"),
        None => {
            use sha2::Digest;
            let h = hex::encode(sha2::Sha256::digest(
                format!("{}aws/elasticfilesystem", ctx.scope()).as_bytes(),
            ));
            format!(
                "{prefix}key/{}-{}-{}-{}-{}",
                &h[0..8],
                &h[8..12],
                &h[12..16],
                &h[16..20],
                &h[20..32]
            )
        }
    }
}

/// Throughput settings as CreateFileSystem and UpdateFileSystem check them.
fn check_throughput(mode: &str, mibps: Option<f64>) -> Result<(), AwsError> {
    match (mode, mibps) {
        ("provisioned", None) => Err(bad_request(
            "ProvisionedThroughputInMibps is required when ThroughputMode is provisioned.",
        )),
        ("provisioned", Some(p)) if p > MAX_PROVISIONED_MIBPS => Err(AwsError::new(codes::efs::ThroughputLimitExceeded,
            format!("The provisioned throughput of {p} MiB/s exceeds the limit of {MAX_PROVISIONED_MIBPS} MiB/s."),
        )),
        (m, Some(_)) if m != "provisioned" => Err(bad_request(
            "ProvisionedThroughputInMibps can only be specified when ThroughputMode is provisioned.",
        )),
        _ => Ok(()),
    }
}

pub fn create_file_system(efs: &Efs, ctx: &Ctx, input: Value) -> HandlerResult {
    efs.purge(ctx.now);
    let scope = ctx.scope();
    let token = input.str("CreationToken").unwrap_or_default().to_string();
    let performance = input
        .str("PerformanceMode")
        .unwrap_or("generalPurpose")
        .to_string();
    let throughput = input
        .str("ThroughputMode")
        .unwrap_or("bursting")
        .to_string();
    let mibps = input
        .get("ProvisionedThroughputInMibps")
        .and_then(Value::as_f64);
    let encrypted = input.bool("Encrypted").unwrap_or(false);
    let kms = input.str("KmsKeyId");
    let tags = parse_tags(&input, "tags")?;
    check_throughput(&throughput, mibps)?;
    if kms.is_some() && !encrypted {
        return Err(bad_request(
            "A KmsKeyId can only be specified for an encrypted file system (Encrypted must be true).",
        ));
    }
    if performance == "maxIO" && throughput == "elastic" {
        return Err(bad_request(
            "Elastic throughput mode is not supported for file systems using the Max I/O performance mode.",
        ));
    }
    let zone = match input.str("AvailabilityZoneName") {
        None => None,
        Some(name) => {
            let zone = crate::services::ec2::regions::zones(&ctx.region)
                .into_iter()
                .find(|z| z.name == name)
                .ok_or_else(|| {
                    AwsError::new(
                        codes::efs::UnsupportedAvailabilityZone,
                        format!("The Availability Zone '{name}' is not supported in this region."),
                    )
                })?;
            if performance == "maxIO" {
                return Err(bad_request(
                    "One Zone file systems do not support the Max I/O performance mode.",
                ));
            }
            Some(zone)
        }
    };
    let backup = match (input.bool("Backup"), &zone) {
        (Some(true), _) | (None, Some(_)) => Some("ENABLED".to_string()),
        _ => None,
    };
    let id_type = efs.state.resource_id_type(&scope);
    let id = new_id("fs", &id_type);
    let fs = FileSystem {
        arn: ctx.arn("elasticfilesystem", &format!("file-system/{id}")),
        id: id.clone(),
        account: ctx.account.clone(),
        region: ctx.region.clone(),
        creation_token: token.clone(),
        created: ctx.now,
        performance_mode: performance,
        throughput_mode: throughput,
        provisioned_mibps: mibps,
        encrypted,
        kms_key_id: encrypted.then(|| kms_key_arn(ctx, kms)),
        az_name: zone.as_ref().map(|z| z.name.clone()),
        az_id: zone.as_ref().map(|z| z.id.clone()),
        tags,
        policy: None,
        backup,
        lifecycle: Vec::new(),
        protection: "ENABLED".to_string(),
        updated: None,
        deleted: None,
    };
    let dir = efs.backing_dir_of(&id);
    efs.state.file_systems.transact(|t| {
        let mine: Vec<&FileSystem> = t
            .rows()
            .range(scope.clone()..)
            .take_while(|(k, _)| k.starts_with(&scope))
            .map(|(_, f)| f)
            .filter(|f| f.deleted.is_none())
            .collect();
        // EFS's idempotency: a creation token names one file system; a second call with it
        // (whatever its parameters) learns the existing file system's id from the error.
        if let Some(existing) = mine.iter().find(|f| f.creation_token == token) {
            let mut e = AwsError::new(codes::efs::FileSystemAlreadyExists,
                format!(
                    "File system '{}' already exists with creation token '{token}'",
                    existing.id
                ),
            );
            let mut fields = serde_json::Map::new();
            fields.insert("FileSystemId".into(), json!(existing.id));
            e.fields = Some(Box::new(fields));
            return Err(e);
        }
        if mine.len() >= MAX_FILE_SYSTEMS {
            return Err(AwsError::new(codes::efs::FileSystemLimitExceeded,
                format!("You have reached the maximum number of file systems ({MAX_FILE_SYSTEMS}) in this Region."),
            ));
        }
        create_backing_dir(&dir)?;
        t.put(&format!("{scope}{id}"), fs.clone());
        Ok(())
    })
    .inspect_err(|e| {
        if e.code == "InternalServerError" || e.code == "InternalFailure" {
            let _ = std::fs::remove_dir_all(dir.parent().unwrap_or(&dir));
        }
    })?;
    Ok(describe(efs, &fs, ctx.now))
}

/// Creates a new file system's root: root-owned (when the emulator can), mode 755.
pub fn create_backing_dir(dir: &std::path::Path) -> Result<(), AwsError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)))
        .map_err(|e| {
            tracing::error!(dir = %dir.display(), error = %e, "cannot create a file system's backing directory");
            AwsError::new(codes::efs::InternalServerError,
                "The file system's storage could not be created.",
            )
        })
}

pub fn describe_file_systems(efs: &Efs, ctx: &Ctx, input: Value) -> HandlerResult {
    efs.purge(ctx.now);
    let scope = ctx.scope();
    let id = input.str("FileSystemId");
    let token = input.str("CreationToken");
    if id.is_some() && token.is_some() {
        return Err(bad_request(
            "Request cannot contain both a file system ID and a creation token.",
        ));
    }
    let items: Vec<FileSystem> = match id {
        Some(id) => vec![efs.state.file_system(&scope, id, ctx.now)?],
        None => efs
            .state
            .file_systems
            .scan(&scope)
            .into_iter()
            .map(|(_, f)| f)
            .filter(|f| token.is_none_or(|t| f.creation_token == t))
            .collect(),
    };
    let max = input
        .i64("MaxItems")
        .map_or(DEFAULT_MAX_ITEMS, |m| m as usize);
    let marker = input.str("Marker");
    let (items, next) = page(items, |f| f.id.clone(), marker, max, codes::efs::BadRequest)?;
    let mut out = json!({
        "FileSystems": items.iter().map(|f| describe(efs, f, ctx.now)).collect::<Vec<_>>(),
    });
    if let Some(m) = marker {
        out["Marker"] = json!(m);
    }
    if let Some(n) = next {
        out["NextMarker"] = json!(n);
    }
    Ok(out)
}

pub fn update_file_system(efs: &Efs, ctx: &Ctx, input: Value) -> HandlerResult {
    efs.purge(ctx.now);
    let scope = ctx.scope();
    let id = input.str("FileSystemId").unwrap_or_default();
    let fs = available(&efs.state, &scope, id, ctx.now)?;
    let mode = input
        .str("ThroughputMode")
        .unwrap_or(&fs.throughput_mode)
        .to_string();
    let mibps = input
        .get("ProvisionedThroughputInMibps")
        .and_then(Value::as_f64)
        .or(if mode == "provisioned" {
            fs.provisioned_mibps
        } else {
            None
        });
    check_throughput(&mode, mibps)?;
    if fs.performance_mode == "maxIO" && mode == "elastic" {
        return Err(bad_request(
            "Elastic throughput mode is not supported for file systems using the Max I/O performance mode.",
        ));
    }
    let key = format!("{scope}{}", fs.id);
    let updated = efs.state.file_systems.transact::<_, AwsError, _>(|t| {
        let f = t
            .get_mut(&key)
            .ok_or_else(|| file_system_not_found(&fs.id))?;
        f.throughput_mode = mode;
        f.provisioned_mibps = mibps;
        f.updated = Some(ctx.now);
        Ok(f.clone())
    })?;
    Ok(describe(efs, &updated, ctx.now))
}

pub fn delete_file_system(efs: &Efs, ctx: &Ctx, input: Value) -> HandlerResult {
    efs.purge(ctx.now);
    let scope = ctx.scope();
    let id = input.str("FileSystemId").unwrap_or_default();
    let fs = efs.state.file_system(&scope, id, ctx.now)?;
    if fs.deleted.is_some() {
        // Already deleting: EFS answers the retry as it answered the first call.
        return Ok(json!({}));
    }
    let targets: Vec<MountTarget> = efs.state.mount_targets_of(&scope, &fs.id);
    if !targets.is_empty() {
        return Err(AwsError::new(codes::efs::FileSystemInUse,
            format!(
                "The file system '{}' cannot be deleted because it has mount targets. You must delete the mount targets, and then try again.",
                fs.id
            ),
        ));
    }
    if super::replication::part_of_replication(efs, &fs) {
        return Err(AwsError::new(codes::efs::FileSystemInUse,
            format!(
                "The file system '{}' cannot be deleted because it is part of a replication configuration. You must delete the replication configuration, and then try again.",
                fs.id
            ),
        ));
    }
    mark_deleted(efs, &scope, &fs.id, ctx.now)?;
    Ok(json!({}))
}

/// Marks a file system and its access points deleted (they go `deleting` → `deleted`, then are
/// forgotten and the backing directory removed).
fn mark_deleted(efs: &Efs, scope: &str, id: &str, now: f64) -> Result<(), AwsError> {
    let key = format!("{scope}{id}");
    efs.state.file_systems.transact::<_, AwsError, _>(|t| {
        let f = t.get_mut(&key).ok_or_else(|| file_system_not_found(id))?;
        f.deleted = Some(now);
        Ok(())
    })?;
    efs.state.access_points.transact::<_, AwsError, _>(|t| {
        let keys = t.keys(scope);
        for k in keys {
            if let Some(a) = t.get(&k) {
                if a.file_system_id == id && a.deleted.is_none() {
                    if let Some(a) = t.get_mut(&k) {
                        a.deleted = Some(now);
                    }
                }
            }
        }
        Ok(())
    })?;
    efs.deleted_at(now);
    Ok(())
}

pub fn update_file_system_protection(efs: &Efs, ctx: &Ctx, input: Value) -> HandlerResult {
    efs.purge(ctx.now);
    let scope = ctx.scope();
    let id = input.str("FileSystemId").unwrap_or_default();
    let fs = available(&efs.state, &scope, id, ctx.now)?;
    let wanted = input
        .str("ReplicationOverwriteProtection")
        .unwrap_or(&fs.protection)
        .to_string();
    if fs.protection == "REPLICATING" {
        return Err(AwsError::new(codes::efs::ReplicationAlreadyExists,
            format!(
                "The file system '{}' is the destination of a replication configuration; its protection cannot be changed while it replicates.",
                fs.id
            ),
        ));
    }
    if wanted == "REPLICATING" {
        return Err(bad_request(
            "ReplicationOverwriteProtection can only be set to ENABLED or DISABLED.",
        ));
    }
    let key = format!("{scope}{}", fs.id);
    efs.state.file_systems.transact::<_, AwsError, _>(|t| {
        let f = t
            .get_mut(&key)
            .ok_or_else(|| file_system_not_found(&fs.id))?;
        f.protection = wanted.clone();
        Ok(())
    })?;
    Ok(json!({"ReplicationOverwriteProtection": wanted}))
}
