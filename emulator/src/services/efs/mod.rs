//! Amazon EFS (rest-json): file systems, mount targets, access points, file system, backup and
//! lifecycle policies, protection, replication configurations, account preferences and tags.
//! State lives in `store::Table`s ([`state::State`]); each file system's data lives in a real
//! directory, [`handle::backing_dir`], whose size SizeInBytes reports.
//!
//! The typed handle [`Efs`] (`handle.rs`) is what the FUSE file system (`crate::efs`) and ECS's
//! efsVolumeConfiguration read.

pub mod access_points;
pub mod account;
pub mod file_systems;
pub mod handle;
pub mod mount_targets;
pub mod policies;
pub mod replication;
pub mod size;
pub mod state;
pub mod tags;

#[cfg(test)]
mod tests;

pub use handle::{
    backing_dir, AccessPointView, CreationInfo, FileSystemView, MountTargetView, PosixUser,
};

use super::ec2::Ec2;
use super::{Deps, Registry};
use crate::clock::Clock;
use parking_lot::Mutex;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const SVC: &str = "efs";

/// The `--ephemeral` data directories' prefix under the temporary directory (see
/// [`crate::tempdirs`]).
const TEMPORARY_PREFIX: &str = "ecs-emulator-efs-";

/// EFS's state and the typed handle other parts of the emulator use.
pub struct Efs {
    pub(crate) state: state::State,
    pub(crate) ec2: Option<Arc<Ec2>>,
    pub(crate) clock: Clock,
    /// `<data dir>` of backing directories: the emulator's data dir, or with `--ephemeral` a
    /// temporary directory removed when the emulator stops.
    data_dir: PathBuf,
    temporary: bool,
    /// The earliest emulated time at which a deleted row may be forgotten (∞: none pending).
    next_purge: Mutex<f64>,
    pub(crate) sizes: size::SizeCache,
}

impl Efs {
    pub fn new(deps: &Deps, ec2: Option<Arc<Ec2>>) -> Efs {
        let (data_dir, temporary) = if deps.config.ephemeral {
            (crate::tempdirs::fresh(TEMPORARY_PREFIX), true)
        } else {
            (deps.config.data_dir(), false)
        };
        let efs = Efs {
            state: state::State::open(&deps.store),
            ec2,
            clock: deps.clock.clone(),
            data_dir,
            temporary,
            next_purge: Mutex::new(f64::INFINITY),
            sizes: size::SizeCache::default(),
        };
        efs.schedule_purges();
        efs.remove_orphans();
        efs
    }

    /// The directory backing directories live under (`<this>/efs/<id>/root`).
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Where a file system's data lives.
    pub fn backing_dir_of(&self, file_system_id: &str) -> PathBuf {
        backing_dir(&self.data_dir, file_system_id)
    }

    /// Notes that a row was marked deleted at `at`: it is forgotten once `deleted` has shown.
    pub(crate) fn deleted_at(&self, at: f64) {
        let due = at + state::TRANSITION + state::DELETED_FOR;
        let mut next = self.next_purge.lock();
        if due < *next {
            *next = due;
        }
    }

    fn schedule_purges(&self) {
        let fs = self
            .state
            .file_systems
            .read(|r| r.values().filter_map(|f| f.deleted).collect::<Vec<_>>());
        let mt = self
            .state
            .mount_targets
            .read(|r| r.values().filter_map(|m| m.deleted).collect::<Vec<_>>());
        let ap = self
            .state
            .access_points
            .read(|r| r.values().filter_map(|a| a.deleted).collect::<Vec<_>>());
        let rep = self
            .state
            .replications
            .read(|r| r.values().filter_map(|a| a.deleted).collect::<Vec<_>>());
        for at in fs.into_iter().chain(mt).chain(ap).chain(rep) {
            self.deleted_at(at);
        }
    }

    /// Forgets resources whose deletion has finished and removes deleted file systems' backing
    /// directories. Called at the start of every operation (cheap when nothing is due).
    pub(crate) fn purge(&self, now: f64) {
        {
            let mut next = self.next_purge.lock();
            if now < *next {
                return;
            }
            *next = f64::INFINITY;
        }
        let mut gone = Vec::new();
        let result = self
            .state
            .file_systems
            .transact::<_, crate::store::StoreError, _>(|t| {
                let keys: Vec<String> = t
                    .rows()
                    .iter()
                    .filter(|(_, f)| state::expired(now, f.deleted))
                    .map(|(k, _)| k.clone())
                    .collect();
                for k in keys {
                    if let Some(f) = t.remove(&k) {
                        gone.push(f.id);
                    }
                }
                Ok(())
            });
        purge_table(&self.state.mount_targets, now, |m| m.deleted);
        purge_table(&self.state.access_points, now, |a| a.deleted);
        purge_table(&self.state.replications, now, |r| r.deleted);
        if result.is_ok() {
            for id in gone {
                self.remove_backing(&id);
            }
        }
        // Whatever is still pending (deleted but not yet due) is scheduled again.
        self.schedule_purges();
    }

    fn remove_backing(&self, id: &str) {
        let dir = self.data_dir.join("efs").join(id);
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(dir = %dir.display(), error = %e, "could not remove a deleted file system's data");
            }
        }
        self.sizes.forget(id);
    }

    /// After a reset (no file system is left): every backing directory goes, and with
    /// `--ephemeral` the whole temporary directory, so a reset emulator leaves nothing behind.
    /// The caller has released every mount first.
    pub(crate) fn forget_all_data(&self) {
        *self.next_purge.lock() = f64::INFINITY;
        self.remove_orphans();
        self.remove_temporary();
    }

    /// With `--ephemeral`, removes the temporary directory (the emulator exits, or was reset).
    pub(crate) fn remove_temporary(&self) {
        if self.temporary {
            crate::tempdirs::remove(&self.data_dir);
        }
    }

    /// Backing directories whose file system no longer exists (deleted before a crash, or
    /// dropped by a reset) are removed at start-up.
    fn remove_orphans(&self) {
        let Ok(entries) = std::fs::read_dir(self.data_dir.join("efs")) else {
            return;
        };
        let known: std::collections::HashSet<String> = self
            .state
            .file_systems
            .read(|r| r.values().map(|f| f.id.clone()).collect());
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with("fs-") && !known.contains(&name) {
                self.remove_backing(&name);
            }
        }
    }
}

impl Drop for Efs {
    fn drop(&mut self) {
        self.remove_temporary();
    }
}

fn purge_table<T>(table: &crate::store::Table<T>, now: f64, deleted: impl Fn(&T) -> Option<f64>)
where
    T: serde::Serialize + serde::de::DeserializeOwned + Clone + Send + Sync + 'static,
{
    let result = table.transact::<_, crate::store::StoreError, _>(|t| {
        let keys: Vec<String> = t
            .rows()
            .iter()
            .filter(|(_, v)| state::expired(now, deleted(v)))
            .map(|(k, _)| k.clone())
            .collect();
        for k in keys {
            t.remove(&k);
        }
        Ok(())
    });
    if let Err(e) = result {
        tracing::warn!(error = %e, "could not forget deleted EFS resources");
    }
}

pub fn register(r: &mut Registry, deps: &Deps, ec2: Arc<Ec2>) -> Arc<Efs> {
    let efs = Arc::new(Efs::new(deps, Some(ec2)));
    let e = &efs;
    r.sync(SVC, "CreateFileSystem", e, file_systems::create_file_system);
    r.sync(
        SVC,
        "DescribeFileSystems",
        e,
        file_systems::describe_file_systems,
    );
    r.sync(SVC, "UpdateFileSystem", e, file_systems::update_file_system);
    r.sync(SVC, "DeleteFileSystem", e, file_systems::delete_file_system);
    r.sync(
        SVC,
        "UpdateFileSystemProtection",
        e,
        file_systems::update_file_system_protection,
    );
    r.sync(
        SVC,
        "CreateMountTarget",
        e,
        mount_targets::create_mount_target,
    );
    r.sync(
        SVC,
        "DescribeMountTargets",
        e,
        mount_targets::describe_mount_targets,
    );
    r.sync(
        SVC,
        "DeleteMountTarget",
        e,
        mount_targets::delete_mount_target,
    );
    r.sync(
        SVC,
        "DescribeMountTargetSecurityGroups",
        e,
        mount_targets::describe_mount_target_security_groups,
    );
    r.sync(
        SVC,
        "ModifyMountTargetSecurityGroups",
        e,
        mount_targets::modify_mount_target_security_groups,
    );
    r.sync(
        SVC,
        "CreateAccessPoint",
        e,
        access_points::create_access_point,
    );
    r.sync(
        SVC,
        "DescribeAccessPoints",
        e,
        access_points::describe_access_points,
    );
    r.sync(
        SVC,
        "DeleteAccessPoint",
        e,
        access_points::delete_access_point,
    );
    r.sync(
        SVC,
        "PutFileSystemPolicy",
        e,
        policies::put_file_system_policy,
    );
    r.sync(
        SVC,
        "DescribeFileSystemPolicy",
        e,
        policies::describe_file_system_policy,
    );
    r.sync(
        SVC,
        "DeleteFileSystemPolicy",
        e,
        policies::delete_file_system_policy,
    );
    r.sync(SVC, "PutBackupPolicy", e, policies::put_backup_policy);
    r.sync(
        SVC,
        "DescribeBackupPolicy",
        e,
        policies::describe_backup_policy,
    );
    r.sync(
        SVC,
        "PutLifecycleConfiguration",
        e,
        policies::put_lifecycle_configuration,
    );
    r.sync(
        SVC,
        "DescribeLifecycleConfiguration",
        e,
        policies::describe_lifecycle_configuration,
    );
    r.sync(
        SVC,
        "CreateReplicationConfiguration",
        e,
        replication::create_replication_configuration,
    );
    r.sync(
        SVC,
        "DescribeReplicationConfigurations",
        e,
        replication::describe_replication_configurations,
    );
    r.sync(
        SVC,
        "DeleteReplicationConfiguration",
        e,
        replication::delete_replication_configuration,
    );
    r.sync(
        SVC,
        "DescribeAccountPreferences",
        e,
        account::describe_account_preferences,
    );
    r.sync(
        SVC,
        "PutAccountPreferences",
        e,
        account::put_account_preferences,
    );
    r.sync(SVC, "TagResource", e, tags::tag_resource);
    r.sync(SVC, "UntagResource", e, tags::untag_resource);
    r.sync(SVC, "ListTagsForResource", e, tags::list_tags_for_resource);
    r.sync(SVC, "CreateTags", e, tags::create_tags);
    r.sync(SVC, "DeleteTags", e, tags::delete_tags);
    r.sync(SVC, "DescribeTags", e, tags::describe_tags);
    r.provide(efs.clone());
    efs
}
