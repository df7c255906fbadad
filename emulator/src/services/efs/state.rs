//! EFS state: file systems, mount targets, access points, replication configurations and account
//! preferences, one `store::Table` each, keyed `<account>/<region>/<id>` (replications by their
//! source file system's id, preferences by `<account>/<region>/`).
//!
//! Life cycle states are not stored: they are computed from the creation and deletion times on
//! the emulator clock ([`phase`]), as Cloud Map computes its operations' status from their age.

use crate::protocol::codes;
use crate::protocol::AwsError;
use crate::store::{Store, Table};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Emulated seconds a resource stays `creating` (and `updating`, `deleting`) before the next state.
pub const TRANSITION: f64 = 1.0;
/// Emulated seconds a deleted resource stays describable as `deleted` before it is forgotten.
pub const DELETED_FOR: f64 = 1.0;
/// Access points per file system.
pub const MAX_ACCESS_POINTS: usize = 10_000;
/// Security groups per mount target.
pub const MAX_SECURITY_GROUPS: usize = 5;
/// Tags per resource.
pub const MAX_TAGS: usize = 50;

/// A resource's life cycle state at `now`, from when it was created, last updated and deleted.
pub fn phase(now: f64, created: f64, updated: Option<f64>, deleted: Option<f64>) -> &'static str {
    if let Some(d) = deleted {
        return if now - d < TRANSITION {
            "deleting"
        } else {
            "deleted"
        };
    }
    if now - created < TRANSITION {
        return "creating";
    }
    if updated.is_some_and(|u| now - u < TRANSITION) {
        return "updating";
    }
    "available"
}

/// Whether a deleted resource has been gone long enough to be forgotten.
pub fn expired(now: f64, deleted: Option<f64>) -> bool {
    deleted.is_some_and(|d| now - d >= TRANSITION + DELETED_FOR)
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct Tag {
    pub key: String,
    pub value: String,
}

/// One lifecycle policy (the model's LifecyclePolicy: exactly one member set).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "PascalCase")]
pub struct LifecyclePolicy {
    #[serde(
        rename = "TransitionToIA",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub transition_to_ia: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transition_to_primary_storage_class: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transition_to_archive: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct FileSystem {
    pub id: String,
    pub arn: String,
    pub account: String,
    pub region: String,
    pub creation_token: String,
    pub created: f64,
    pub performance_mode: String,
    pub throughput_mode: String,
    #[serde(default)]
    pub provisioned_mibps: Option<f64>,
    pub encrypted: bool,
    #[serde(default)]
    pub kms_key_id: Option<String>,
    /// One Zone file systems: the Availability Zone (name and id).
    #[serde(default)]
    pub az_name: Option<String>,
    #[serde(default)]
    pub az_id: Option<String>,
    #[serde(default)]
    pub tags: Vec<Tag>,
    /// The file system policy, as given (JSON text).
    #[serde(default)]
    pub policy: Option<String>,
    /// The backup policy's status, once one exists (ENABLED or DISABLED).
    #[serde(default)]
    pub backup: Option<String>,
    #[serde(default)]
    pub lifecycle: Vec<LifecyclePolicy>,
    /// ReplicationOverwriteProtection: ENABLED, DISABLED or REPLICATING.
    pub protection: String,
    /// When UpdateFileSystem last changed the throughput (it is `updating` for a while).
    #[serde(default)]
    pub updated: Option<f64>,
    #[serde(default)]
    pub deleted: Option<f64>,
}

impl FileSystem {
    pub fn state(&self, now: f64) -> &'static str {
        phase(now, self.created, self.updated, self.deleted)
    }

    /// The value of the Name tag.
    pub fn name(&self) -> Option<&str> {
        self.tags
            .iter()
            .find(|t| t.key == "Name")
            .map(|t| t.value.as_str())
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct MountTarget {
    pub id: String,
    pub account: String,
    pub region: String,
    pub file_system_id: String,
    pub subnet_id: String,
    pub vpc_id: String,
    pub az_name: String,
    pub az_id: String,
    pub ip: String,
    pub eni_id: String,
    pub security_groups: Vec<String>,
    pub created: f64,
    #[serde(default)]
    pub deleted: Option<f64>,
}

impl MountTarget {
    pub fn state(&self, now: f64) -> &'static str {
        phase(now, self.created, None, self.deleted)
    }
}

/// The model's PosixUser.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct PosixUser {
    pub uid: u32,
    pub gid: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secondary_gids: Option<Vec<u32>>,
}

/// The model's CreationInfo (Permissions is the octal string as given).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct CreationInfo {
    pub owner_uid: u32,
    pub owner_gid: u32,
    pub permissions: String,
}

/// The model's RootDirectory.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "PascalCase")]
pub struct RootDirectory {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_info: Option<CreationInfo>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct AccessPoint {
    pub id: String,
    pub arn: String,
    pub account: String,
    pub region: String,
    pub file_system_id: String,
    pub client_token: String,
    #[serde(default)]
    pub tags: Vec<Tag>,
    #[serde(default)]
    pub posix_user: Option<PosixUser>,
    /// "/" when none was given.
    pub root_path: String,
    #[serde(default)]
    pub creation_info: Option<CreationInfo>,
    pub created: f64,
    #[serde(default)]
    pub deleted: Option<f64>,
}

impl AccessPoint {
    pub fn state(&self, now: f64) -> &'static str {
        phase(now, self.created, None, self.deleted)
    }

    pub fn name(&self) -> Option<&str> {
        self.tags
            .iter()
            .find(|t| t.key == "Name")
            .map(|t| t.value.as_str())
    }
}

/// One destination of a replication configuration (the model's Destination).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Destination {
    pub file_system_id: String,
    pub region: String,
    #[serde(default)]
    pub role_arn: Option<String>,
    pub owner_id: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Replication {
    pub source_file_system_id: String,
    pub source_region: String,
    pub source_arn: String,
    pub original_source_arn: String,
    pub owner_id: String,
    pub created: f64,
    pub destinations: Vec<Destination>,
    #[serde(default)]
    pub deleted: Option<f64>,
}

/// DescribeAccountPreferences / PutAccountPreferences: LONG_ID or SHORT_ID.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Preferences {
    pub resource_id_type: String,
}

pub struct State {
    pub file_systems: Arc<Table<FileSystem>>,
    pub mount_targets: Arc<Table<MountTarget>>,
    pub access_points: Arc<Table<AccessPoint>>,
    pub replications: Arc<Table<Replication>>,
    pub preferences: Arc<Table<Preferences>>,
}

impl State {
    pub fn open(store: &Arc<Store>) -> State {
        State {
            file_systems: Table::open(store, "efs_file_systems"),
            mount_targets: Table::open(store, "efs_mount_targets"),
            access_points: Table::open(store, "efs_access_points"),
            replications: Table::open(store, "efs_replications"),
            preferences: Table::open(store, "efs_preferences"),
        }
    }

    /// A file system by id or ARN, unless it is `deleted` (a `deleting` one is still found, as
    /// DescribeFileSystems shows it), else FileSystemNotFound.
    pub fn file_system(
        &self,
        scope: &str,
        id_or_arn: &str,
        now: f64,
    ) -> Result<FileSystem, AwsError> {
        let id = id_of(id_or_arn);
        self.file_systems
            .get(&format!("{scope}{id}"))
            .filter(|f| f.state(now) != "deleted")
            .ok_or_else(|| file_system_not_found(id))
    }

    /// An access point by id or ARN, unless it is `deleted`, else AccessPointNotFound.
    pub fn access_point(
        &self,
        scope: &str,
        id_or_arn: &str,
        now: f64,
    ) -> Result<AccessPoint, AwsError> {
        let id = id_of(id_or_arn);
        self.access_points
            .get(&format!("{scope}{id}"))
            .filter(|a| a.state(now) != "deleted")
            .ok_or_else(|| access_point_not_found(id))
    }

    /// A mount target, unless it is `deleted`, else MountTargetNotFound.
    pub fn mount_target(&self, scope: &str, id: &str, now: f64) -> Result<MountTarget, AwsError> {
        self.mount_targets
            .get(&format!("{scope}{id}"))
            .filter(|m| m.state(now) != "deleted")
            .ok_or_else(|| mount_target_not_found(id))
    }

    /// The mount targets of a file system (deleting ones included), in key order.
    pub fn mount_targets_of(&self, scope: &str, fs_id: &str) -> Vec<MountTarget> {
        self.mount_targets.read(|rows| {
            rows.range(scope.to_string()..)
                .take_while(|(k, _)| k.starts_with(scope))
                .map(|(_, m)| m)
                .filter(|m| m.file_system_id == fs_id)
                .cloned()
                .collect()
        })
    }

    /// How many access points a file system has (deleting ones included).
    pub fn access_point_count(&self, scope: &str, fs_id: &str) -> usize {
        self.access_points.read(|rows| {
            rows.range(scope.to_string()..)
                .take_while(|(k, _)| k.starts_with(scope))
                .filter(|(_, a)| a.file_system_id == fs_id && a.deleted.is_none())
                .count()
        })
    }

    /// The resource id type ids are made with in this account and region.
    pub fn resource_id_type(&self, scope: &str) -> String {
        self.preferences
            .get(scope)
            .map(|p| p.resource_id_type)
            .unwrap_or_else(|| "LONG_ID".to_string())
    }
}

pub fn scope(account: &str, region: &str) -> String {
    format!("{account}/{region}/")
}

/// The id part of an id-or-ARN (`arn:aws:elasticfilesystem:…:file-system/fs-…` → `fs-…`).
pub fn id_of(id_or_arn: &str) -> &str {
    if id_or_arn.starts_with("arn:") {
        id_or_arn.rsplit('/').next().unwrap_or(id_or_arn)
    } else {
        id_or_arn
    }
}

/// A new resource id: `<prefix>-` and 17 hex digits (LONG_ID) or 8 (SHORT_ID).
pub fn new_id(prefix: &str, id_type: &str) -> String {
    let len = if id_type == "SHORT_ID" { 8 } else { 17 };
    format!("{prefix}-{}", crate::services::random_hex(len))
}

pub fn file_system_not_found(id: &str) -> AwsError {
    AwsError::new(
        codes::efs::FileSystemNotFound,
        format!("File system '{id}' does not exist."),
    )
}

pub fn access_point_not_found(id: &str) -> AwsError {
    AwsError::new(
        codes::efs::AccessPointNotFound,
        format!("Access point '{id}' does not exist."),
    )
}

pub fn mount_target_not_found(id: &str) -> AwsError {
    AwsError::new(
        codes::efs::MountTargetNotFound,
        format!("Mount target '{id}' does not exist."),
    )
}

pub fn bad_request(message: impl Into<String>) -> AwsError {
    AwsError::new(codes::efs::BadRequest, message)
}

/// IncorrectFileSystemLifeCycleState for a file system that is not `available`.
pub fn not_available(fs: &FileSystem, now: f64) -> AwsError {
    AwsError::new(
        codes::efs::IncorrectFileSystemLifeCycleState,
        format!(
            "File system '{}' is in the '{}' state; it must be 'available'.",
            fs.id,
            fs.state(now)
        ),
    )
}

/// The file system, which must be `available`.
pub fn available(state: &State, scope: &str, id: &str, now: f64) -> Result<FileSystem, AwsError> {
    let fs = state.file_system(scope, id, now)?;
    if fs.state(now) != "available" {
        return Err(not_available(&fs, now));
    }
    Ok(fs)
}

/// A validation error in the format the model validator uses (EFS answers BadRequest with it).
pub fn validation(value: &str, path: &str, constraint: &str) -> AwsError {
    bad_request(format!(
        "1 validation error detected: Value '{value}' at '{path}' failed to satisfy constraint: {constraint}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_follow_the_clock() {
        assert_eq!(phase(10.0, 10.0, None, None), "creating");
        assert_eq!(phase(11.0, 10.0, None, None), "available");
        assert_eq!(phase(20.5, 10.0, Some(20.0), None), "updating");
        assert_eq!(phase(30.5, 10.0, None, Some(30.0)), "deleting");
        assert_eq!(phase(31.5, 10.0, None, Some(30.0)), "deleted");
        assert!(!expired(31.5, Some(30.0)));
        assert!(expired(32.0, Some(30.0)));
        assert!(!expired(99.0, None));
        assert_eq!(new_id("fs", "LONG_ID").len(), 20);
        assert_eq!(new_id("fs", "SHORT_ID").len(), 11);
        assert_eq!(
            id_of("arn:aws:elasticfilesystem:us-east-1:000000000000:file-system/fs-1"),
            "fs-1"
        );
    }
}
