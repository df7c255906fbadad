//! The typed handle the FUSE file system and ECS read EFS through: `registry.handle::<Efs>()`.
//! Views are plain values computed at the call (life cycle on the emulator clock).

use super::state::{self, scope};
use super::Efs;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq)]
pub struct PosixUser {
    pub uid: u32,
    pub gid: u32,
    pub secondary_gids: Vec<u32>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CreationInfo {
    pub owner_uid: u32,
    pub owner_gid: u32,
    /// Parsed from the octal string (e.g. "0755" → 0o755).
    pub permissions: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FileSystemView {
    pub id: String,
    pub arn: String,
    /// `available` (or `updating`, which EFS serves through): clients may mount it.
    pub available: bool,
    /// The file system policy JSON text.
    pub policy: Option<String>,
    pub backing_dir: PathBuf,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AccessPointView {
    pub id: String,
    pub arn: String,
    pub file_system_id: String,
    pub posix_user: Option<PosixUser>,
    /// "/" when none was given.
    pub root_path: String,
    pub creation_info: Option<CreationInfo>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MountTargetView {
    pub id: String,
    pub file_system_id: String,
    pub availability_zone: String,
    pub subnet_id: String,
    pub ip_address: String,
}

/// Where a file system's data lives: `<data dir>/efs/<file system id>/root` (created by
/// CreateFileSystem, removed when the file system is deleted).
pub fn backing_dir(data_dir: &Path, file_system_id: &str) -> PathBuf {
    data_dir.join("efs").join(file_system_id).join("root")
}

impl Efs {
    /// A file system (id or ARN) that exists and is not `deleted`.
    pub fn file_system(&self, account: &str, region: &str, id: &str) -> Option<FileSystemView> {
        let now = self.clock.now();
        let fs = self
            .state
            .file_system(&scope(account, region), id, now)
            .ok()?;
        let st = fs.state(now);
        Some(FileSystemView {
            backing_dir: self.backing_dir_of(&fs.id),
            available: st == "available" || st == "updating",
            policy: fs.policy,
            id: fs.id,
            arn: fs.arn,
        })
    }

    /// An access point (id or ARN) that exists and is not being deleted.
    pub fn access_point(&self, account: &str, region: &str, id: &str) -> Option<AccessPointView> {
        let now = self.clock.now();
        let ap = self
            .state
            .access_point(&scope(account, region), id, now)
            .ok()
            .filter(|a| a.deleted.is_none())?;
        Some(AccessPointView {
            posix_user: ap.posix_user.map(|p| PosixUser {
                uid: p.uid,
                gid: p.gid,
                secondary_gids: p.secondary_gids.unwrap_or_default(),
            }),
            creation_info: ap.creation_info.map(|c| CreationInfo {
                owner_uid: c.owner_uid,
                owner_gid: c.owner_gid,
                permissions: u32::from_str_radix(&c.permissions, 8).unwrap_or(0o755),
            }),
            id: ap.id,
            arn: ap.arn,
            file_system_id: ap.file_system_id,
            root_path: ap.root_path,
        })
    }

    /// The file system's mount target in an Availability Zone (by name), unless it is being
    /// deleted.
    pub fn mount_target_in_az(
        &self,
        account: &str,
        region: &str,
        file_system_id: &str,
        az: &str,
    ) -> Option<MountTargetView> {
        let sc = scope(account, region);
        let fs_id = state::id_of(file_system_id);
        self.state
            .mount_targets_of(&sc, fs_id)
            .into_iter()
            .find(|m| m.deleted.is_none() && m.az_name == az)
            .map(|m| MountTargetView {
                id: m.id,
                file_system_id: m.file_system_id,
                availability_zone: m.az_name,
                subnet_id: m.subnet_id,
                ip_address: m.ip,
            })
    }
}
