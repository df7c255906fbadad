//! Mounts of running containers after an emulator restart.
//!
//! A task's container sees its EFS volume through a bind mount of the instance's FUSE mount,
//! made in the container's own mount namespace. When the emulator dies (kill -9, crash), the
//! FUSE server goes with it: the host side is detached (efs-reaper), but the container keeps
//! its copy, now answering "Transport endpoint is not connected". ECS's agent, restarted,
//! keeps its tasks running and their EFS mounts working (the NFS client reconnects to the
//! server); so does the emulator at its next start:
//!
//! 1. every mount is recorded in `<base>/mounts.json` (its options and its device number);
//! 2. at start, the mount namespaces still using a recorded device (containers of adopted
//!    tasks) are found in `/proc/*/mountinfo`;
//! 3. the mount is made again and grafted over the dead copy in each such namespace: an
//!    `ecs-emulator efs-graft` child (single-threaded, as `setns` into a mount namespace
//!    needs) clones the new mount (`open_tree`), enters the namespace, detaches the dead
//!    mount and moves the clone to its place (`move_mount`), read-only if the old one was.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::fs::FsOptions;

/// What `mounts.json` keeps of one mount.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Record {
    pub fs_name: String,
    pub file_system_id: String,
    pub opts: FsOptions,
    /// The FUSE connection's device, "major:minor" as mountinfo shows it.
    pub dev: String,
}

pub type Records = HashMap<PathBuf, Record>;

fn record_file(base: &Path) -> PathBuf {
    base.join("mounts.json")
}

pub fn load(base: &Path) -> Records {
    fs::read(record_file(base))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// Writes the records (to a temporary file renamed over the old one, so a crash mid-write
/// leaves the previous version).
pub fn save(base: &Path, records: &Records) {
    let write = || -> io::Result<()> {
        fs::create_dir_all(base)?;
        let tmp = base.join("mounts.json.tmp");
        fs::write(&tmp, serde_json::to_vec(records).map_err(io::Error::other)?)?;
        fs::rename(tmp, record_file(base))
    };
    if let Err(e) = write() {
        tracing::warn!(error = %e, "cannot record the EFS mounts");
    }
}

/// The device of the mount at `path`, as mountinfo writes it.
pub fn device_of(path: &Path) -> Option<String> {
    let md = fs::metadata(path).ok()?;
    let dev = md.dev();
    Some(format!(
        "{}:{}",
        rustix::fs::major(dev),
        rustix::fs::minor(dev)
    ))
}

/// One process's view of a mount: the process (to enter its namespace), where the mount is,
/// and whether it is read-only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub pid: u32,
    pub mount_point: PathBuf,
    pub read_only: bool,
}

/// The recorded mounts to look for: their device ("major:minor") and their source ("efs:<fs id>").
pub type Wanted = HashMap<String, String>;

/// Which mounts of a wanted device are ours to give back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Whose {
    /// Recorded by a previous run: only dead ones. A FUSE device number is freed with the last
    /// mount of its connection and given to the next FUSE mount anybody makes (another
    /// emulator's, say), so a mount with a recorded number and source whose server answers is
    /// somebody else's; ours died with the run that served them.
    DeadOnly,
    /// Ours a moment ago and still held by our containers (a device number is not freed while
    /// any mount of it remains): every mount of it.
    Any,
}

/// Mounts of the devices in `wanted` with the source recorded for them, one process per mount
/// namespace other than ours.
pub fn users(wanted: &Wanted, whose: Whose) -> HashMap<String, Vec<User>> {
    let mut out: HashMap<String, Vec<User>> = HashMap::new();
    if wanted.is_empty() {
        return out;
    }
    let ns_of = |pid: &str| {
        fs::metadata(format!("/proc/{pid}/ns/mnt"))
            .ok()
            .map(|m| m.ino())
    };
    let mut seen: HashSet<u64> = HashSet::new();
    if let Some(me) = ns_of("self") {
        seen.insert(me);
    }
    let Ok(procs) = fs::read_dir("/proc") else {
        return out;
    };
    for p in procs.flatten() {
        let name = p.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let Some(ns) = ns_of(&pid.to_string()) else {
            continue;
        };
        if !seen.insert(ns) {
            continue;
        }
        let Ok(info) = fs::read_to_string(format!("/proc/{pid}/mountinfo")) else {
            continue;
        };
        for m in parse_mountinfo(&info, pid) {
            if wanted.get(&m.dev) == Some(&m.source) && (whose == Whose::Any || is_dead(&m.user)) {
                out.entry(m.dev).or_default().push(m.user);
            }
        }
    }
    out
}

/// Whether the mount a user sees is dead: its FUSE connection has no server any more, so what
/// it is asked fails with ENOTCONN. Looked at through the user's own root, by reading the
/// directory (which goes to the server; a stat may be answered from the kernel's cache).
fn is_dead(user: &User) -> bool {
    let inside = user
        .mount_point
        .strip_prefix("/")
        .unwrap_or(&user.mount_point);
    let path = Path::new("/proc")
        .join(user.pid.to_string())
        .join("root")
        .join(inside);
    let read = fs::read_dir(path).and_then(|mut d| d.next().transpose().map(|_| ()));
    matches!(read, Err(e) if e.kind() == io::ErrorKind::NotConnected)
}

/// One FUSE mount of a mountinfo.
#[derive(Debug, PartialEq)]
struct FuseMount {
    /// "major:minor".
    dev: String,
    /// The mount source ("efs:<fs id>" for the emulator's).
    source: String,
    user: User,
}

/// The FUSE mounts of one mountinfo.
fn parse_mountinfo(info: &str, pid: u32) -> Vec<FuseMount> {
    info.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            // Optional fields end at "-"; the file system type and the source follow.
            let dash = f.iter().position(|x| *x == "-")?;
            if !f.get(dash + 1)?.starts_with("fuse") {
                return None;
            }
            Some(FuseMount {
                dev: f.get(2)?.to_string(),
                source: super::mounts::unescape(f.get(dash + 2)?),
                user: User {
                    pid,
                    mount_point: PathBuf::from(super::mounts::unescape(f.get(4)?)),
                    read_only: f.get(5)?.split(',').any(|o| o == "ro"),
                },
            })
        })
        .collect()
}

/// Runs `ecs-emulator efs-graft` for one user of a remade mount.
pub fn graft_in(exe: &Path, source: &Path, user: &User) -> Result<(), String> {
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("efs-graft")
        .arg(source)
        .arg(user.pid.to_string())
        .arg(&user.mount_point);
    if user.read_only {
        cmd.arg("--read-only");
    }
    let out = cmd
        .output()
        .map_err(|e| format!("{}: {e}", exe.display()))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

/// `ecs-emulator efs-graft SOURCE PID TARGET`: puts a clone of the mount at SOURCE (in our mount
/// namespace) at TARGET in PID's mount namespace, over whatever dead mount is there. Must run
/// single-threaded (setns into a mount namespace refuses a process whose threads share it).
pub fn graft(source: &Path, pid: u32, target: &Path, read_only: bool) -> io::Result<()> {
    use rustix::mount::{
        move_mount, open_tree, unmount, MountFlags, MoveMountFlags, OpenTreeFlags, UnmountFlags,
    };
    let tree = open_tree(
        rustix::fs::CWD,
        source,
        OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC,
    )?;
    let ns = fs::File::open(format!("/proc/{pid}/ns/mnt"))?;
    rustix::thread::move_into_link_name_space(
        ns.as_fd(),
        Some(rustix::thread::LinkNameSpaceType::Mount),
    )?;
    // Now in the container: its root is our root, TARGET is its path. The dead mount goes
    // (lazily: a process inside keeps its stale view), the new one takes its place.
    let _ = unmount(target, UnmountFlags::DETACH);
    move_mount(
        tree.as_fd(),
        "",
        rustix::fs::CWD,
        target,
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
    )?;
    if read_only {
        rustix::mount::mount_remount(target, MountFlags::BIND | MountFlags::RDONLY, "")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_lines_give_device_mount_point_and_mode() {
        let info = "\
36 35 98:0 / /mnt1 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
612 580 0:75 / /mnt/efs ro,nosuid,nodev,relatime - fuse.efs efs:fs-1 rw,user_id=0
613 580 0:76 / /mnt/with\\040space rw,relatime shared:9 - fuse.efs efs:fs-2 rw
";
        let got = parse_mountinfo(info, 42);
        assert_eq!(
            got,
            vec![
                FuseMount {
                    dev: "0:75".to_string(),
                    source: "efs:fs-1".to_string(),
                    user: User {
                        pid: 42,
                        mount_point: PathBuf::from("/mnt/efs"),
                        read_only: true
                    }
                },
                FuseMount {
                    dev: "0:76".to_string(),
                    source: "efs:fs-2".to_string(),
                    user: User {
                        pid: 42,
                        mount_point: PathBuf::from("/mnt/with space"),
                        read_only: false
                    }
                },
            ]
        );
    }

    #[test]
    fn only_a_mount_that_fails_with_enotconn_is_dead() {
        // Our own root answers: a live mount, never taken for a dead one of ours; nor is a
        // path that is not there (that is no dead FUSE mount either).
        let me = User {
            pid: std::process::id(),
            mount_point: PathBuf::from("/"),
            read_only: false,
        };
        assert!(!is_dead(&me));
        let gone = User {
            mount_point: PathBuf::from("/no/such/mount"),
            ..me
        };
        assert!(!is_dead(&gone));
        // Nothing wanted, nothing scanned.
        assert!(users(&Wanted::new(), Whose::DeadOnly).is_empty());
    }

    #[test]
    fn records_round_trip() {
        let d = tempfile::tempdir().expect("tmp");
        assert!(load(d.path()).is_empty());
        let mut r = Records::new();
        r.insert(
            d.path().join("i-1/fs-1/root"),
            Record {
                fs_name: "efs:fs-1".into(),
                file_system_id: "fs-1".into(),
                opts: FsOptions {
                    root: d.path().join("root"),
                    identity: Some(super::super::Identity::new(1000, 1000, vec![5])),
                    squash_root: true,
                    read_only: false,
                },
                dev: "0:99".into(),
            },
        );
        save(d.path(), &r);
        assert_eq!(load(d.path()), r);
    }
}
