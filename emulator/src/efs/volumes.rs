//! ECS's `efsVolumeConfiguration`: what a task's EFS volume mounts, as whom and how, and why it
//! cannot (the stoppedReason in ECS's own wording).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use super::creds::Identity;
use super::fs::FsOptions;
use super::mounts::{MountKey, Mounts};
use super::policy::{self, MountContext};
use crate::services::efs::{AccessPointView, Efs};

/// `volumes[].efsVolumeConfiguration`, as ECS stores it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EfsVolumeConfiguration {
    pub file_system_id: String,
    #[serde(default)]
    pub root_directory: Option<String>,
    #[serde(default)]
    pub transit_encryption: Option<String>,
    #[serde(default)]
    pub transit_encryption_port: Option<i64>,
    #[serde(default)]
    pub authorization_config: Option<AuthorizationConfig>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizationConfig {
    #[serde(default)]
    pub access_point_id: Option<String>,
    #[serde(default)]
    pub iam: Option<String>,
}

/// One task's EFS volume to mount.
pub struct VolumeRequest<'a> {
    pub account: &'a str,
    pub region: &'a str,
    /// The virtual instance: a container instance id, or a Fargate task's id.
    pub instance: &'a str,
    pub availability_zone: Option<&'a str>,
    pub task_role_arn: Option<&'a str>,
    pub config: &'a EfsVolumeConfiguration,
}

/// A mounted volume: bind `path` into the containers; `read_only` when ClientWrite is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountedVolume {
    pub path: PathBuf,
    pub read_only: bool,
}

const PREFIX: &str =
    "ResourceInitializationError: failed to invoke EFS utils commands to set up EFS volumes:";

fn nfs_error(message: &str) -> String {
    format!("{PREFIX} stderr: b'mount.nfs4: {message}' : unsuccessful EFS utils command execution; code: 32")
}

fn resolve_error(fs_id: &str, region: &str) -> String {
    format!(
        "{PREFIX} stderr: Failed to resolve \"{fs_id}.efs.{region}.amazonaws.com\" - check that your file system ID is correct, and ensure that the VPC has an EFS mount target for this file system ID. See https://docs.aws.amazon.com/console/efs/mount-dns-name for more detail. : unsuccessful EFS utils command execution; code: 1"
    )
}

/// ECS's checks of an efsVolumeConfiguration at RegisterTaskDefinition (ClientException).
pub fn validate(config: &EfsVolumeConfiguration) -> Result<(), String> {
    let tls = config.transit_encryption.as_deref() == Some("ENABLED");
    let auth = config.authorization_config.clone().unwrap_or_default();
    if auth.access_point_id.is_some() {
        if !matches!(
            config.root_directory.as_deref(),
            None | Some("") | Some("/")
        ) {
            return Err("The specified root directory must be either omitted or set to \"/\" when using an access point.".into());
        }
        if !tls {
            return Err("Transit encryption must be enabled when using an access point.".into());
        }
    }
    if auth.iam.as_deref() == Some("ENABLED") && !tls {
        return Err("Transit encryption must be enabled when IAM authorization is enabled.".into());
    }
    if config.transit_encryption_port.is_some() && !tls {
        return Err(
            "Transit encryption port can only be specified when transit encryption is enabled."
                .into(),
        );
    }
    Ok(())
}

/// EFS volumes of tasks: the EFS handle and the mounts.
pub struct EfsVolumes {
    efs: Arc<Efs>,
    mounts: Arc<Mounts>,
    /// The pipe to `efs-reaper`, which unmounts everything when this process dies.
    _reaper: Option<std::process::ChildStdin>,
}

impl EfsVolumes {
    pub fn new(efs: Arc<Efs>) -> Arc<EfsVolumes> {
        let mounts = Mounts::new(efs.data_dir());
        let reaper = match mounts.fuse_available() {
            Ok(()) => super::mounts::spawn_reaper(mounts.base())
                .map_err(|e| tracing::warn!(error = %e, "no EFS mount reaper"))
                .ok(),
            Err(_) => None,
        };
        Arc::new(EfsVolumes {
            efs,
            mounts,
            _reaper: reaper,
        })
    }

    pub fn mounts(&self) -> &Arc<Mounts> {
        &self.mounts
    }

    /// Remounts killed mounts once a second, until the process ends.
    pub async fn watch(self: Arc<Self>) {
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let me = self.clone();
            let _ = tokio::task::spawn_blocking(move || me.mounts.check()).await;
        }
    }

    /// Mounts a task's volume (blocking: call from spawn_blocking).
    pub fn mount(&self, req: &VolumeRequest<'_>) -> Result<MountedVolume, String> {
        let c = req.config;
        self.mounts
            .fuse_available()
            .map_err(|why| format!("{PREFIX} FUSE is unavailable on this host ({why}); the emulator serves EFS volumes over FUSE"))?;
        let fs = self
            .efs
            .file_system(req.account, req.region, &c.file_system_id)
            .filter(|f| f.available)
            .ok_or_else(|| resolve_error(&c.file_system_id, req.region))?;
        let az = req.availability_zone.unwrap_or_default();
        if self
            .efs
            .mount_target_in_az(req.account, req.region, &fs.id, az)
            .is_none()
        {
            return Err(resolve_error(&fs.id, req.region));
        }
        let auth = c.authorization_config.clone().unwrap_or_default();
        let ap = match &auth.access_point_id {
            Some(id) => Some(
                self.efs
                    .access_point(req.account, req.region, id)
                    .filter(|a| a.file_system_id == fs.id)
                    .ok_or_else(|| {
                        nfs_error("access denied by server while mounting 127.0.0.1:/")
                    })?,
            ),
            None => None,
        };
        let iam = auth.iam.as_deref() == Some("ENABLED");
        let grants = policy::evaluate(
            fs.policy.as_deref(),
            &MountContext {
                principal_arn: if iam {
                    req.task_role_arn.map(str::to_string)
                } else {
                    None
                },
                access_point_arn: ap.as_ref().map(|a| a.arn.clone()),
                secure_transport: c.transit_encryption.as_deref() == Some("ENABLED"),
            },
        );
        if !grants.mount {
            return Err(nfs_error(
                "access denied by server while mounting 127.0.0.1:/",
            ));
        }
        let (root, view) = match &ap {
            Some(ap) => (access_point_root(&fs.backing_dir, ap)?, ap.id.clone()),
            None => {
                let dir = c.root_directory.as_deref().unwrap_or("/");
                let root = under(&fs.backing_dir, dir).ok_or_else(|| {
                    nfs_error(&format!("mounting 127.0.0.1:{dir} failed, reason given by server: No such file or directory"))
                })?;
                if !root.is_dir() {
                    return Err(nfs_error(&format!(
                        "mounting 127.0.0.1:{dir} failed, reason given by server: No such file or directory"
                    )));
                }
                (root, format!("dir{}", dir.replace('/', "_")))
            }
        };
        let identity = ap
            .as_ref()
            .and_then(|a| a.posix_user.as_ref())
            .map(|p| Identity::new(p.uid, p.gid, p.secondary_gids.clone()));
        let opts = FsOptions {
            root,
            identity,
            squash_root: !grants.root,
            read_only: !grants.write,
        };
        // One mount per (instance, file system, view); the identity and mode are part of the view.
        let view = format!(
            "{view}{}{}",
            if opts.read_only { "-ro" } else { "" },
            if opts.squash_root { "-squash" } else { "" }
        );
        let key = MountKey {
            instance: req.instance.to_string(),
            file_system_id: fs.id.clone(),
            view,
        };
        let path = self
            .mounts
            .ensure(&key, opts.clone())
            .map_err(|e| format!("{PREFIX} {e}"))?;
        Ok(MountedVolume {
            path,
            read_only: opts.read_only,
        })
    }

    /// A Fargate task is a host of its own (its id is the instance): its mounts go with it.
    pub fn release_task(&self, task_id: &str) {
        self.mounts.release_instance(task_id);
    }

    /// Unmounts every mount (a reset removed their containers).
    pub fn release_all(&self) {
        self.mounts.release_all();
    }

    /// After a reset dropped every file system: their data goes too, and with `--ephemeral`
    /// the whole temporary directory — unless a mount could not be released (a removal would
    /// walk into it).
    pub fn forget_all_data(&self) {
        let left = self.mounts.active();
        if !left.is_empty() {
            tracing::warn!(
                mounts = left.len(),
                "reset: EFS mounts still active; their data stays"
            );
            return;
        }
        self.efs.forget_all_data();
    }

    /// The process exits: every mount is released (running containers are left to Docker and
    /// adopted by the next start on the same data dir), and an `--ephemeral` emulator's
    /// temporary directory is removed, as no later start can adopt it.
    pub fn exit(&self) {
        self.mounts.release_all();
        if self.mounts.active().is_empty() {
            self.efs.remove_temporary();
        }
    }
}

/// `dir` ("/a/b") inside `base`, refusing `..` and symbolic links on the way.
fn under(base: &Path, dir: &str) -> Option<PathBuf> {
    let mut p = base.to_path_buf();
    for c in Path::new(dir).components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(n) => {
                p.push(n);
                if fs::symlink_metadata(&p).is_ok_and(|m| m.file_type().is_symlink()) {
                    return None;
                }
            }
            _ => return None,
        }
    }
    Some(p)
}

/// The access point's root directory, created from CreationInfo when missing (each missing
/// level with its owner and permissions), as EFS does; missing without CreationInfo, the mount
/// fails.
fn access_point_root(backing: &Path, ap: &AccessPointView) -> Result<PathBuf, String> {
    let denied = || {
        nfs_error(&format!(
            "mounting 127.0.0.1:/ failed, reason given by server: No such file or directory (access point {} root {})",
            ap.id, ap.root_path
        ))
    };
    let root = under(backing, &ap.root_path).ok_or_else(denied)?;
    if root.is_dir() {
        return Ok(root);
    }
    let Some(info) = &ap.creation_info else {
        return Err(denied());
    };
    let mut p = backing.to_path_buf();
    for c in Path::new(&ap.root_path).components() {
        let Component::Normal(n) = c else { continue };
        p.push(n);
        if p.is_dir() {
            continue;
        }
        fs::create_dir(&p).map_err(|e| nfs_error(&format!("creating {}: {e}", ap.root_path)))?;
        fs::set_permissions(&p, fs::Permissions::from_mode(info.permissions & 0o7777))
            .map_err(|e| nfs_error(&e.to_string()))?;
        std::os::unix::fs::chown(&p, Some(info.owner_uid), Some(info.owner_gid))
            .map_err(|e| nfs_error(&e.to_string()))?;
    }
    Ok(root)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_definition_rules() {
        let mut c = EfsVolumeConfiguration {
            file_system_id: "fs-1".into(),
            ..Default::default()
        };
        assert!(validate(&c).is_ok());
        c.authorization_config = Some(AuthorizationConfig {
            access_point_id: Some("fsap-1".into()),
            iam: None,
        });
        assert!(validate(&c)
            .expect_err("refused")
            .contains("Transit encryption"));
        c.transit_encryption = Some("ENABLED".into());
        assert!(validate(&c).is_ok());
        c.root_directory = Some("/data".into());
        assert!(validate(&c)
            .expect_err("refused")
            .contains("root directory"));
        c.root_directory = None;
        c.authorization_config = Some(AuthorizationConfig {
            access_point_id: None,
            iam: Some("ENABLED".into()),
        });
        c.transit_encryption = Some("DISABLED".into());
        assert!(validate(&c).expect_err("refused").contains("IAM"));
    }

    #[test]
    fn root_directories_stay_inside() {
        let d = tempfile::tempdir().expect("tmp");
        fs::create_dir(d.path().join("a")).expect("a");
        std::os::unix::fs::symlink("/etc", d.path().join("l")).expect("l");
        assert_eq!(under(d.path(), "/a"), Some(d.path().join("a")));
        assert_eq!(under(d.path(), "/a/../.."), None);
        assert_eq!(under(d.path(), "/l"), None);
    }
}
