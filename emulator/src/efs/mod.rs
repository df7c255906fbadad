//! EFS's data plane: the FUSE file system (`fs.rs`), per-thread identities for access points
//! (`creds.rs`), the mount manager (`mounts.rs`) and the file system policy evaluator for
//! `iam: ENABLED` mounts (`policy.rs`). The API is services/efs/.

pub mod creds;
pub mod fs;
pub mod mounts;
pub mod policy;

#[cfg(test)]
mod tests;

pub use creds::Identity;
pub use fs::{EfsFs, FsOptions};
pub use mounts::{MountError, MountKey, Mounts};
