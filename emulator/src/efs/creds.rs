//! Per-thread file-system identity.
//!
//! An access point's PosixUser replaces the caller's identity on every operation, as EFS does:
//! the FUSE worker thread takes that identity (supplementary groups, effective gid, effective uid,
//! with raw per-thread syscalls: glibc's wrappers would change every thread of the process) for
//! the duration of one operation, so the backing file system itself checks permissions and owns
//! new files by it. The real and saved uid stay 0, so the thread can always switch back.

use std::io;

use rustix::process::{Gid, Uid};
use rustix::thread::{set_thread_groups, set_thread_res_gid, set_thread_res_uid};

/// A POSIX identity: uid, gid and supplementary groups.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Identity {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
}

impl Identity {
    pub fn new(uid: u32, gid: u32, groups: Vec<u32>) -> Self {
        Identity { uid, gid, groups }
    }

    /// nfsnobody, what a squashed root becomes.
    pub fn nobody() -> Self {
        Identity::new(65534, 65534, Vec::new())
    }

    pub fn is_root(&self) -> bool {
        self.uid == 0
    }
}

/// While alive, the current thread acts as `identity`; dropping it returns to root.
#[must_use]
pub struct AsIdentity {
    switched: bool,
}

impl AsIdentity {
    /// Root needs no switch (the daemon already is root).
    pub fn enter(identity: Option<&Identity>) -> io::Result<AsIdentity> {
        let Some(id) = identity else {
            return Ok(AsIdentity { switched: false });
        };
        if id.uid == 0 && id.gid == 0 && id.groups.is_empty() {
            return Ok(AsIdentity { switched: false });
        }
        let groups: Vec<Gid> = id.groups.iter().map(|g| Gid::from_raw(*g)).collect();
        let guard = AsIdentity { switched: true };
        // Order matters: groups and gid need CAP_SETGID, which goes with the euid change.
        set_thread_groups(&groups)?;
        set_thread_res_gid(None, Some(Gid::from_raw(id.gid)), None)?;
        set_thread_res_uid(None, Some(Uid::from_raw(id.uid)), None)?;
        Ok(guard)
    }
}

impl Drop for AsIdentity {
    fn drop(&mut self) {
        if !self.switched {
            return;
        }
        // The real and saved ids are 0, so these cannot fail for want of privilege; if they
        // failed anyway the thread must not go on serving requests with a wrong identity.
        let back = set_thread_res_uid(None, Some(Uid::ROOT), None)
            .and_then(|_| set_thread_res_gid(None, Some(Gid::ROOT), None))
            .and_then(|_| set_thread_groups(&[]));
        if let Err(e) = back {
            tracing::error!(error = %e, "cannot return a FUSE thread to root; aborting");
            std::process::abort();
        }
    }
}
