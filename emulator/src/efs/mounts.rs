//! The mount manager: one FUSE mount per (virtual instance, file system, view), under
//! `<data dir>/efs-mounts/`. Mounts are idempotent (asking twice gives the same mount), released
//! on shutdown, cleaned at start after a crash (and, with fusermount3's auto_unmount, by
//! fusermount3 itself the moment the emulator dies), and remounted when killed from outside.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use fuser::{BackgroundSession, Config, MountOption, SessionACL};
use parking_lot::Mutex;

use super::fs::{EfsFs, FsOptions};
use super::peers::Peers;

/// What is served at one mount point.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MountKey {
    /// The virtual instance (container instance id, or a Fargate task's id).
    pub instance: String,
    pub file_system_id: String,
    /// "root", a root directory or an access point id, with its identity and mode (see
    /// `view_name`).
    pub view: String,
}

/// Why a mount could not be made.
#[derive(Debug, thiserror::Error)]
pub enum MountError {
    #[error("FUSE is unavailable on this host: {0}")]
    Unavailable(String),
    #[error("{0}")]
    Failed(String),
}

struct Active {
    opts: FsOptions,
    fs_name: String,
    file_system_id: String,
    id: u64,
    /// The FUSE connection's device ("major:minor"), to find this mount's users after a
    /// restart (`adopt.rs`).
    dev: String,
    session: Option<BackgroundSession>,
}

/// All of this emulator's EFS mounts.
pub struct Mounts {
    base: PathBuf,
    fuse: Result<(), String>,
    active: Mutex<HashMap<PathBuf, Active>>,
    /// Per file system, its mounts (cache coherence between them).
    peers: Mutex<HashMap<String, Arc<Peers>>>,
    next_id: std::sync::atomic::AtomicU64,
}

/// A path component from any id: keeps `[A-Za-z0-9._-]`, replaces the rest.
pub fn component(s: &str) -> String {
    let c: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if c.is_empty() || c == "." || c == ".." {
        format!("_{c}")
    } else {
        c
    }
}

/// Whether this host can make FUSE mounts: /dev/fuse must open read-write, and either we are
/// root or fusermount3 is installed.
pub fn probe_fuse() -> Result<(), String> {
    fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/fuse")
        .map_err(|e| format!("cannot open /dev/fuse: {e}"))?;
    if !rustix::process::geteuid().is_root() && fusermount().is_none() {
        return Err("not root and no fusermount3 in PATH".into());
    }
    Ok(())
}

/// Every inode the kernel remembers holds a descriptor: allow as many as the hard limit does.
fn raise_fd_limit() {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let lim = getrlimit(Resource::Nofile);
    if let Some(max) = lim.maximum {
        let _ = setrlimit(
            Resource::Nofile,
            Rlimit {
                current: Some(max),
                maximum: Some(max),
            },
        );
    }
}

fn fusermount() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("fusermount3"))
        .find(|p| p.is_file())
}

/// Mount points under `base` in /proc/self/mountinfo (field 5, octal escapes decoded).
pub fn mounts_under(base: &Path) -> Vec<PathBuf> {
    let Ok(info) = fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(unescape)
        .map(PathBuf::from)
        .filter(|p| p.starts_with(base))
        .collect();
    // Deepest first, so nested mounts go before their parents.
    out.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    out.dedup();
    out
}

pub(crate) fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() {
            if let Some(v) = std::str::from_utf8(&b[i + 1..i + 4])
                .ok()
                .and_then(|o| u8::from_str_radix(o, 8).ok())
            {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Detaches a mount (lazily: a process still inside keeps its view, the name is free at once).
fn detach(path: &Path) -> io::Result<()> {
    match rustix::mount::unmount(path, rustix::mount::UnmountFlags::DETACH) {
        Ok(()) => Ok(()),
        Err(e) => {
            let out = std::process::Command::new("fusermount3")
                .arg("-u")
                .arg("-z")
                .arg(path)
                .output();
            match out {
                Ok(o) if o.status.success() => Ok(()),
                _ => Err(e.into()),
            }
        }
    }
}

/// `ecs-emulator efs-reaper`: blocks until standard input closes, then detaches every mount
/// under `base`. The emulator starts one and keeps the pipe's other end, so when the emulator
/// dies, even by kill -9, its mounts go with it (no "Transport endpoint is not connected").
pub fn reap(base: &Path) {
    use std::io::Read;
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
    for p in mounts_under(base) {
        if let Err(e) = detach(&p) {
            eprintln!("efs-reaper: cannot unmount {}: {e}", p.display());
        }
    }
}

/// Starts `ecs-emulator efs-reaper <base>` (see [`reap`]); the returned pipe must stay open
/// as long as the mounts should.
pub fn spawn_reaper(base: &Path) -> io::Result<std::process::ChildStdin> {
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe()?;
    let mut child = std::process::Command::new(exe)
        .arg("efs-reaper")
        .arg(base)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        // Its own process group: a Ctrl-C meant for the emulator does not end it first.
        .process_group(0)
        .spawn()?;
    let stdin = child
        .stdin
        .take()
        .ok_or_else(|| io::Error::other("no pipe"))?;
    // Reap it when it exits, so it never lingers as a zombie.
    std::thread::spawn(move || {
        let _ = child.wait();
    });
    Ok(stdin)
}

/// Puts the (remade) mount at `path` in place of the dead copies its users hold.
fn give_back(path: &Path, users: &[super::adopt::User]) {
    let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("ecs-emulator"));
    for u in users {
        match super::adopt::graft_in(&exe, path, u) {
            Ok(()) => tracing::info!(
                mount = %path.display(), pid = u.pid, at = %u.mount_point.display(),
                "EFS mount given back to a running container"
            ),
            Err(e) => tracing::warn!(
                mount = %path.display(), pid = u.pid, error = %e,
                "cannot give an EFS mount back to a running container"
            ),
        }
    }
}

/// Whether `path` is a live mount: its session thread runs and the kernel answers on it
/// (a killed FUSE server leaves "Transport endpoint is not connected").
fn alive(path: &Path, session: &Option<BackgroundSession>) -> bool {
    let Some(s) = session else { return false };
    if s.guard.is_finished() {
        return false;
    }
    if !mounts_under(path).iter().any(|p| p == path) {
        return false;
    }
    fs::metadata(path).is_ok()
}

impl Mounts {
    /// Probes FUSE (warning once when it is missing), cleans mounts a previous run left, and
    /// gives back their mounts to the containers still running on them (`adopt.rs`).
    pub fn new(data_dir: &Path) -> Arc<Mounts> {
        let base = data_dir.join("efs-mounts");
        let fuse = probe_fuse();
        raise_fd_limit();
        if let Err(why) = &fuse {
            tracing::warn!(
                "{why}: EFS API calls work, but tasks with EFS volumes will stop (pass /dev/fuse \
                 and CAP_SYS_ADMIN to use them)"
            );
        }
        let mounts = Mounts {
            base,
            fuse,
            active: Mutex::new(HashMap::new()),
            peers: Mutex::new(HashMap::new()),
            next_id: std::sync::atomic::AtomicU64::new(1),
        };
        let previous = super::adopt::load(&mounts.base);
        mounts.clean_stale();
        if mounts.fuse.is_ok() {
            mounts.adopt(previous);
        }
        Arc::new(mounts)
    }

    /// Makes again the previous run's mounts that running containers still hold (dead), and
    /// puts them back in those containers.
    fn adopt(&self, previous: super::adopt::Records) {
        use super::adopt;
        let wanted = previous
            .values()
            .map(|r| (r.dev.clone(), r.fs_name.clone()))
            .collect();
        let users = adopt::users(&wanted, adopt::Whose::DeadOnly);
        let mut active = self.active.lock();
        for (path, rec) in previous {
            let Some(users) = users.get(&rec.dev) else {
                continue;
            };
            if !path.starts_with(&self.base) {
                continue;
            }
            if let Err(e) = self.mount_at(
                &mut active,
                &path,
                &rec.fs_name,
                &rec.file_system_id,
                rec.opts,
            ) {
                tracing::warn!(mount = %path.display(), error = %e, "cannot remake an EFS mount of running containers");
                continue;
            }
            give_back(&path, users);
        }
        self.save(&active);
    }

    /// Records the mounts (`adopt.rs`). Not on shutdown: containers outlive the emulator, and
    /// the next start gives them their mounts back.
    fn save(&self, active: &HashMap<PathBuf, Active>) {
        let records = active
            .iter()
            .map(|(p, a)| {
                (
                    p.clone(),
                    super::adopt::Record {
                        fs_name: a.fs_name.clone(),
                        file_system_id: a.file_system_id.clone(),
                        opts: a.opts.clone(),
                        dev: a.dev.clone(),
                    },
                )
            })
            .collect();
        super::adopt::save(&self.base, &records);
    }

    /// Mounts `opts` at `path` as a new member of its file system's mounts.
    fn mount_at(
        &self,
        active: &mut HashMap<PathBuf, Active>,
        path: &Path,
        fs_name: &str,
        file_system_id: &str,
        opts: FsOptions,
    ) -> Result<(), MountError> {
        let id = self
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let peers = self.peers_of(file_system_id);
        let session = mount_with(path, fs_name, opts.clone(), Some((peers, id)))?;
        active.insert(
            path.to_path_buf(),
            Active {
                opts,
                fs_name: fs_name.to_string(),
                file_system_id: file_system_id.to_string(),
                id,
                dev: super::adopt::device_of(path).unwrap_or_default(),
                session: Some(session),
            },
        );
        Ok(())
    }

    pub fn base(&self) -> &Path {
        &self.base
    }

    pub fn fuse_available(&self) -> Result<(), String> {
        self.fuse.clone()
    }

    /// Unmounts whatever is mounted under our base that we do not serve (after kill -9).
    pub fn clean_stale(&self) {
        let ours: Vec<PathBuf> = self.active.lock().keys().cloned().collect();
        for p in mounts_under(&self.base) {
            if ours.contains(&p) {
                continue;
            }
            match detach(&p) {
                Ok(()) => tracing::info!(mount = %p.display(), "removed a stale EFS mount"),
                Err(e) => {
                    tracing::warn!(mount = %p.display(), error = %e, "cannot remove a stale EFS mount")
                }
            }
        }
    }

    pub fn mount_point(&self, key: &MountKey) -> PathBuf {
        self.base
            .join(component(&key.instance))
            .join(component(&key.file_system_id))
            .join(component(&key.view))
    }

    /// The mount for `key`, made if needed. Asking again with the same key gives the same
    /// mount; a dead one is made again.
    pub fn ensure(&self, key: &MountKey, opts: FsOptions) -> Result<PathBuf, MountError> {
        self.fuse.clone().map_err(MountError::Unavailable)?;
        let path = self.mount_point(key);
        let mut active = self.active.lock();
        if let Some(a) = active.get(&path) {
            if alive(&path, &a.session) {
                return Ok(path);
            }
        }
        if let Some(mut old) = active.remove(&path) {
            self.leave(&old);
            drop(old.session.take());
            let _ = detach(&path);
        }
        let fs_name = format!("efs:{}", key.file_system_id);
        self.mount_at(&mut active, &path, &fs_name, &key.file_system_id, opts)?;
        self.save(&active);
        Ok(path)
    }

    fn peers_of(&self, file_system_id: &str) -> Arc<Peers> {
        self.peers
            .lock()
            .entry(file_system_id.to_string())
            .or_insert_with(Peers::new)
            .clone()
    }

    fn leave(&self, a: &Active) {
        if let Some(p) = self.peers.lock().get(&a.file_system_id) {
            p.leave(a.id);
        }
    }

    /// Remounts every mount that died (killed from outside, aborted connection). Called
    /// periodically; returns the mount points it remade.
    pub fn check(&self) -> Vec<PathBuf> {
        let mut remade = Vec::new();
        let mut active = self.active.lock();
        for (path, a) in active.iter_mut() {
            if alive(path, &a.session) {
                continue;
            }
            tracing::warn!(mount = %path.display(), "EFS mount died; remounting");
            let old_dev = std::mem::take(&mut a.dev);
            self.leave(a);
            drop(a.session.take());
            let _ = detach(path);
            let peers = self.peers_of(&a.file_system_id);
            match mount_with(path, &a.fs_name, a.opts.clone(), Some((peers, a.id))) {
                Ok(s) => {
                    a.session = Some(s);
                    a.dev = super::adopt::device_of(path).unwrap_or_default();
                    // Containers running on the dead mount get the new one.
                    let wanted = HashMap::from([(old_dev.clone(), a.fs_name.clone())]);
                    let users = super::adopt::users(&wanted, super::adopt::Whose::Any);
                    if let Some(users) = users.get(&old_dev) {
                        give_back(path, users);
                    }
                    remade.push(path.clone());
                }
                Err(e) => tracing::warn!(mount = %path.display(), error = %e, "remount failed"),
            }
        }
        if !remade.is_empty() {
            self.save(&active);
        }
        remade
    }

    /// Unmounts one instance's mounts (the instance went away).
    pub fn release_instance(&self, instance: &str) {
        let prefix = self.base.join(component(instance));
        let mut active = self.active.lock();
        let gone: Vec<PathBuf> = active
            .keys()
            .filter(|p| p.starts_with(&prefix))
            .cloned()
            .collect();
        for p in gone {
            if let Some(a) = active.remove(&p) {
                self.leave(&a);
                unmount(&p, a.session);
            }
        }
        self.save(&active);
    }

    /// Unmounts everything (shutdown).
    pub fn release_all(&self) {
        let all: Vec<(PathBuf, Active)> = self.active.lock().drain().collect();
        for (p, a) in all {
            self.leave(&a);
            unmount(&p, a.session);
        }
    }

    pub fn active(&self) -> Vec<PathBuf> {
        self.active.lock().keys().cloned().collect()
    }
}

impl Drop for Mounts {
    fn drop(&mut self) {
        self.release_all();
    }
}

fn unmount(path: &Path, session: Option<BackgroundSession>) {
    if let Some(s) = session {
        // umount_and_join waits for the session thread, which ends once the kernel lets go.
        if let Err(e) = s.umount_and_join() {
            tracing::debug!(mount = %path.display(), error = %e, "unmount");
        }
    }
    if mounts_under(path).iter().any(|p| p == path) {
        let _ = detach(path);
    }
}

/// FUSE threads per mount: ECS_EMULATOR_EFS_THREADS, default 1 (what may block runs on the
/// file system's own threads, `slow.rs`, which says why).
fn worker_threads() -> usize {
    std::env::var("ECS_EMULATOR_EFS_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| (1..=64).contains(n))
        .unwrap_or(1)
}

/// Mounts `opts` at `path` (created if missing) and serves it on background threads.
pub fn mount(path: &Path, fs_name: &str, opts: FsOptions) -> Result<BackgroundSession, MountError> {
    mount_with(path, fs_name, opts, None)
}

fn mount_with(
    path: &Path,
    fs_name: &str,
    opts: FsOptions,
    peers: Option<(Arc<Peers>, u64)>,
) -> Result<BackgroundSession, MountError> {
    fs::create_dir_all(path).map_err(|e| MountError::Failed(format!("{}: {e}", path.display())))?;
    let mut options = vec![
        MountOption::FSName(fs_name.to_string()),
        MountOption::Subtype("efs".into()),
        MountOption::NoAtime,
        MountOption::NoDev,
    ];
    // Identity from an access point replaces the caller's: permission checks happen in the
    // backing file system as that identity, not in the kernel against the caller's.
    if opts.identity.is_none() {
        options.push(MountOption::DefaultPermissions);
    }
    options.push(if opts.read_only {
        MountOption::RO
    } else {
        MountOption::RW
    });
    // No auto_unmount: fusermount3's watchdog exits at once when the mounter is root here, and
    // then every unmount hangs. Mounts left by kill -9 are cleaned at the next start instead.
    let mut config = Config::default();
    config.mount_options = options;
    config.acl = SessionACL::All;
    config.n_threads = Some(worker_threads());
    config.clone_fd = true;
    let fs = EfsFs::new(opts)
        .map_err(|e| MountError::Failed(format!("cannot open the file system root: {e}")))?;
    let root_ino = fs.root_backing_ino();
    let fs = match &peers {
        Some((p, id)) => fs.with_peers(p.clone(), *id),
        None => fs,
    };
    let session = fuser::Session::new(fs, path, &config)
        .map_err(|e| MountError::Failed(format!("mount {}: {e}", path.display())))?;
    let session = session
        .spawn()
        .map_err(|e| MountError::Failed(format!("mount {}: {e}", path.display())))?;
    if let Some((p, id)) = peers {
        p.join(id, root_ino, session.notifier());
    }
    Ok(session)
}
