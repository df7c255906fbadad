//! EFS's data plane: the FUSE file system (`fs.rs`), per-thread identities for access points
//! (`creds.rs`), the mount manager (`mounts.rs`) and the file system policy evaluator for
//! `iam: ENABLED` mounts (`policy.rs`). The API is services/efs/.

pub mod adopt;
pub mod creds;
pub mod fs;
pub mod locks;
pub mod mounts;
pub mod peers;
pub mod policy;
mod slow;
pub mod volumes;

#[cfg(test)]
mod tests;

pub use creds::Identity;
pub use fs::{EfsFs, FsOptions};
pub use mounts::{MountError, MountKey, Mounts};
pub use volumes::{EfsVolumes, MountedVolume};

/// `ecs-emulator efs-mount`: serves `backing` at `mountpoint` until SIGINT or SIGTERM.
pub fn mount_foreground(
    backing: &std::path::Path,
    mountpoint: &std::path::Path,
    posix_user: Option<&str>,
    read_only: bool,
) -> anyhow::Result<()> {
    use anyhow::Context;
    mounts::probe_fuse().map_err(anyhow::Error::msg)?;
    let identity = match posix_user {
        Some(u) => {
            let (uid, gid) = u.split_once(':').context("--posix-user is uid:gid")?;
            Some(Identity::new(uid.parse()?, gid.parse()?, Vec::new()))
        }
        None => None,
    };
    let opts = FsOptions {
        root: backing.to_path_buf(),
        identity,
        squash_root: false,
        read_only,
    };
    let session = mounts::mount(mountpoint, "efs:local", opts)?;
    eprintln!("serving {} at {}", backing.display(), mountpoint.display());
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(async {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {},
                _ = term.recv() => {},
            }
            anyhow::Ok(())
        })?;
    session.umount_and_join()?;
    Ok(())
}
