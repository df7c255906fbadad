//! The EFS data plane: a passthrough FUSE file system over a backing directory.
//!
//! Every inode is an `O_PATH` descriptor of the backing object, and every operation is made
//! relative to such a descriptor (`openat`, `mkdirat`, `renameat2`, …), never by path. So the
//! served root really is `/`: the kernel resolves `..` and symbolic links in the client's own
//! namespace (as an NFS client does), and nothing below the root can name anything above it.
//!
//! Identity: without an access point identity the mount uses the kernel's `default_permissions`
//! (the caller's full credentials are checked against the backing attributes), operations run as
//! root and new objects are given to the caller. With an access point's PosixUser the worker
//! thread takes that identity for each operation (`creds.rs`) and the backing file system checks
//! and owns by it, whoever the caller is.
//!
//! Data: on kernels with FUSE passthrough (6.9+), opened files are handed to the kernel, which
//! reads and writes the backing file directly; elsewhere `read`/`write` are served here with
//! `pread`/`pwrite`. Inode numbers are the backing inode numbers (the root is 1), so two
//! instances' mounts of one file system agree on them, as EFS clients do.

use std::borrow::Cow;
use std::collections::HashMap;
use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fuser::{
    AccessFlags, BackingId, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags,
    Generation, INodeNo, InitFlags, KernelConfig, LockOwner, OpenFlags, RenameFlags, ReplyAttr,
    ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyLock, ReplyLseek,
    ReplyOpen, ReplyStatfs, ReplyWrite, ReplyXattr, Request, TimeOrNow, WriteFlags,
};
use parking_lot::Mutex;
use rustix::fs::{AtFlags, Mode, OFlags, Timespec, Timestamps, CWD};
use rustix::process::{Gid, Uid};

use super::creds::{AsIdentity, Identity};
use super::locks::{self, Lock, Locks, Owner};
use super::peers::{map_ino, Change, Peers};
use super::slow::Slow;

/// EFS limits (aws-behaviour.md §7).
pub const MAX_NAME: usize = 255;
pub const MAX_SYMLINK: usize = 4080;
pub const MAX_LINKS: u64 = 177;

/// How long the kernel may trust names and attributes. Changes made through another mount of
/// the same file system are pushed to this one's kernel at once (`peers.rs`), so this only
/// bounds what is changed behind the emulator's back, directly in the backing directory.
const TTL: Duration = Duration::from_secs(30);

/// What one mount serves and as whom.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FsOptions {
    /// The directory served as `/` (the file system's root, or an access point's root).
    pub root: PathBuf,
    /// An access point's PosixUser: every operation runs as it.
    pub identity: Option<Identity>,
    /// Without ClientRootAccess, uid 0 is squashed to nfsnobody.
    pub squash_root: bool,
    /// Without ClientWrite, the mount is read-only.
    pub read_only: bool,
}

struct Node {
    fd: Arc<OwnedFd>,
    nlookup: u64,
    /// Shared by every passthrough open of this inode (the kernel requires one backing file).
    backing: Weak<BackingId>,
}

struct Handle {
    file: OwnedFd,
    /// Backing inode number, and whether the handle could change the file's data.
    ino: u64,
    writable: bool,
    _backing: Option<Arc<BackingId>>,
    /// Opened without FLUSH on close (no lock on the file then): the kernel lock owners that
    /// locked through this handle, whose fcntl locks go when it is released.
    no_flush: bool,
    lockers: Mutex<Vec<u64>>,
}

/// A directory's entries: (backing inode, kind, name).
type Listing = Vec<(u64, FileType, Vec<u8>)>;

struct DirHandle {
    entries: Mutex<Option<Listing>>,
    fd: OwnedFd,
}

/// The FUSE file system of one mount.
pub struct EfsFs {
    opts: FsOptions,
    root_ino: u64,
    nodes: Mutex<HashMap<u64, Node>>,
    files: Mutex<HashMap<u64, Arc<Handle>>>,
    dirs: Mutex<HashMap<u64, Arc<DirHandle>>>,
    next_fh: AtomicU64,
    passthrough: AtomicBool,
    peers: Option<(Arc<Peers>, u64)>,
    /// Advisory locks: the file system's table (shared with its other mounts) and this mount's
    /// number in it.
    locks: Arc<Locks>,
    mount_id: u64,
    /// Where fsync, fallocate and served reads run (`slow.rs`).
    slow: Slow,
}

type Res<T> = Result<T, Errno>;

fn errno(e: rustix::io::Errno) -> Errno {
    Errno::from_i32(e.raw_os_error())
}

fn io_errno(e: io::Error) -> Errno {
    Errno::from_i32(e.raw_os_error().unwrap_or(libc_eio()))
}

const fn libc_eio() -> i32 {
    5
}

fn proc_path(fd: &impl AsRawFd) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

fn kind_of(mode: u32) -> FileType {
    match mode & 0o170000 {
        0o040000 => FileType::Directory,
        0o120000 => FileType::Symlink,
        0o010000 => FileType::NamedPipe,
        0o020000 => FileType::CharDevice,
        0o060000 => FileType::BlockDevice,
        0o140000 => FileType::Socket,
        _ => FileType::RegularFile,
    }
}

fn time(sec: i64, nsec: u64) -> SystemTime {
    if sec >= 0 {
        UNIX_EPOCH + Duration::new(sec as u64, nsec as u32)
    } else {
        UNIX_EPOCH - Duration::from_secs(sec.unsigned_abs()) + Duration::from_nanos(nsec)
    }
}

fn timespec(t: Option<TimeOrNow>) -> Timespec {
    match t {
        None => Timespec {
            tv_sec: 0,
            tv_nsec: rustix::fs::UTIME_OMIT,
        },
        Some(TimeOrNow::Now) => Timespec {
            tv_sec: 0,
            tv_nsec: rustix::fs::UTIME_NOW,
        },
        Some(TimeOrNow::SpecificTime(t)) => {
            let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
            Timespec {
                tv_sec: d.as_secs() as i64,
                tv_nsec: d.subsec_nanos() as _,
            }
        }
    }
}

fn check_name(name: &OsStr) -> Res<()> {
    let b = name.as_bytes();
    if b.len() > MAX_NAME {
        return Err(Errno::ENAMETOOLONG);
    }
    // The kernel never sends these; refusing them keeps lookups strictly one level down.
    if b.is_empty() || b == b"." || b == b".." || b.contains(&b'/') {
        return Err(Errno::EINVAL);
    }
    Ok(())
}

impl EfsFs {
    pub fn new(opts: FsOptions) -> io::Result<EfsFs> {
        let fd = rustix::fs::open(
            &opts.root,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let st = rustix::fs::fstat(&fd)?;
        let mut nodes = HashMap::new();
        nodes.insert(
            1,
            Node {
                fd: Arc::new(fd),
                nlookup: 1,
                backing: Weak::new(),
            },
        );
        Ok(EfsFs {
            opts,
            root_ino: st.st_ino as u64,
            nodes: Mutex::new(nodes),
            files: Mutex::new(HashMap::new()),
            dirs: Mutex::new(HashMap::new()),
            next_fh: AtomicU64::new(1),
            passthrough: AtomicBool::new(false),
            peers: None,
            locks: Locks::new(),
            mount_id: 0,
            slow: Slow::new(4),
        })
    }

    pub fn options(&self) -> &FsOptions {
        &self.opts
    }

    /// The backing inode number of the served root.
    pub fn root_backing_ino(&self) -> u64 {
        self.root_ino
    }

    /// Joins the other mounts of the file system (`id`: this mount's number among them).
    pub fn with_peers(mut self, peers: Arc<Peers>, id: u64) -> Self {
        self.locks = peers.locks();
        self.mount_id = id;
        self.peers = Some((peers, id));
        self
    }

    fn changed_entry(&self, parent: INodeNo, name: &OsStr) {
        if let Some((p, id)) = &self.peers {
            let parent = map_ino(self.root_ino, parent.0);
            p.publish(
                *id,
                Change::Entry {
                    parent,
                    name: name.to_os_string(),
                },
            );
            p.publish(*id, Change::Inode(parent));
        }
    }

    fn changed_inode(&self, backing_ino: u64) {
        if let Some((p, id)) = &self.peers {
            p.publish(*id, Change::Inode(backing_ino));
        }
    }

    /// Backing inode number → FUSE inode number: the root is 1 (FUSE's root id); a backing
    /// inode numbered 1 (none on ext4/xfs) takes the root's number instead.
    fn fuse_ino(&self, backing: u64) -> u64 {
        map_ino(self.root_ino, backing)
    }

    /// FUSE inode number → backing inode number (what the file system's lock table uses).
    fn backing_ino(&self, ino: INodeNo) -> u64 {
        map_ino(self.root_ino, ino.0)
    }

    fn lock_owner(&self, owner: LockOwner) -> Owner {
        Owner {
            mount: self.mount_id,
            owner: owner.0,
        }
    }

    /// The identity an operation runs as, or None for root (borrowed: no allocation per
    /// operation).
    fn identity(&self, req: &Request) -> Option<Cow<'_, Identity>> {
        if let Some(id) = &self.opts.identity {
            if id.is_root() && self.opts.squash_root {
                return Some(Cow::Owned(Identity::nobody()));
            }
            return Some(Cow::Borrowed(id));
        }
        if req.uid() == 0 && self.opts.squash_root {
            return Some(Cow::Owned(Identity::nobody()));
        }
        None
    }

    /// Runs `f` as the request's identity.
    fn as_caller<T>(&self, req: &Request, f: impl FnOnce() -> Res<T>) -> Res<T> {
        let id = self.identity(req);
        let _guard = AsIdentity::enter(id.as_deref()).map_err(io_errno)?;
        f()
    }

    /// In caller mode (no access point identity) new objects are created by root and handed to
    /// the caller; a set-gid directory keeps its group, as the kernel would have chosen.
    fn give_to_caller(&self, req: &Request, parent: &OwnedFd, fd: &OwnedFd) -> Res<()> {
        if self.opts.identity.is_some() || self.identity(req).is_some() {
            return Ok(());
        }
        if req.uid() == 0 && req.gid() == 0 {
            return Ok(());
        }
        let pst = rustix::fs::fstat(parent).map_err(errno)?;
        let gid = if pst.st_mode & 0o2000 != 0 {
            None
        } else {
            Some(Gid::from_raw(req.gid()))
        };
        rustix::fs::chownat(
            fd,
            "",
            Some(Uid::from_raw(req.uid())),
            gid,
            AtFlags::EMPTY_PATH | AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(errno)
    }

    fn node(&self, ino: INodeNo) -> Res<Arc<OwnedFd>> {
        self.nodes
            .lock()
            .get(&ino.0)
            .map(|n| n.fd.clone())
            .ok_or(Errno::ESTALE)
    }

    fn attr_of(&self, fd: &impl AsFd) -> Res<FileAttr> {
        let st = rustix::fs::fstat(fd).map_err(errno)?;
        Ok(self.attr_from(&st))
    }

    // The stat field types differ between architectures: the casts are not all no-ops.
    #[allow(clippy::unnecessary_cast)]
    fn attr_from(&self, st: &rustix::fs::Stat) -> FileAttr {
        FileAttr {
            ino: INodeNo(self.fuse_ino(st.st_ino as u64)),
            size: st.st_size as u64,
            blocks: st.st_blocks as u64,
            atime: time(st.st_atime as i64, st.st_atime_nsec as u64),
            mtime: time(st.st_mtime as i64, st.st_mtime_nsec as u64),
            ctime: time(st.st_ctime as i64, st.st_ctime_nsec as u64),
            crtime: UNIX_EPOCH,
            kind: kind_of(st.st_mode as u32),
            perm: (st.st_mode & 0o7777) as u16,
            nlink: st.st_nlink as u32,
            uid: st.st_uid,
            gid: st.st_gid,
            rdev: st.st_rdev as u32,
            blksize: 4096,
            flags: 0,
        }
    }

    /// Registers (or re-finds) the inode behind `fd`, counting one lookup.
    fn remember(&self, fd: OwnedFd) -> Res<FileAttr> {
        let attr = self.attr_of(&fd)?;
        let mut nodes = self.nodes.lock();
        match nodes.get_mut(&attr.ino.0) {
            Some(node) => {
                node.nlookup += 1;
                // The fresh descriptor is certainly the object now at this name (an inode
                // number can be reused after the old one was deleted).
                if attr.ino.0 != 1 {
                    node.fd = Arc::new(fd);
                }
            }
            None => {
                nodes.insert(
                    attr.ino.0,
                    Node {
                        fd: Arc::new(fd),
                        nlookup: 1,
                        backing: Weak::new(),
                    },
                );
            }
        }
        Ok(attr)
    }

    fn open_child(parent: &OwnedFd, name: &OsStr) -> Res<OwnedFd> {
        rustix::fs::openat(
            parent,
            name,
            OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(errno)
    }

    fn writable(&self) -> Res<()> {
        if self.opts.read_only {
            Err(Errno::EROFS)
        } else {
            Ok(())
        }
    }

    fn do_lookup(&self, req: &Request, parent: INodeNo, name: &OsStr) -> Res<FileAttr> {
        check_name(name)?;
        let pfd = self.node(parent)?;
        self.as_caller(req, || {
            // An inode this mount already holds needs no new descriptor: while our descriptor
            // keeps it alive, no other inode can have its number, so one fstatat is enough.
            let st = rustix::fs::statat(&*pfd, name, AtFlags::SYMLINK_NOFOLLOW).map_err(errno)?;
            let attr = self.attr_from(&st);
            if attr.ino.0 != 1 {
                if let Some(node) = self.nodes.lock().get_mut(&attr.ino.0) {
                    node.nlookup += 1;
                    return Ok(attr);
                }
            }
            let fd = Self::open_child(&pfd, name)?;
            self.remember(fd)
        })
    }

    /// Shared tail of mknod/mkdir/symlink/link: find the new object and hand it to the caller.
    fn created(&self, req: &Request, pfd: &OwnedFd, name: &OsStr) -> Res<FileAttr> {
        let fd = self.as_caller(req, || Self::open_child(pfd, name))?;
        self.give_to_caller(req, pfd, &fd)?;
        self.remember(fd)
    }

    fn open_flags(flags: i32) -> OFlags {
        let keep = OFlags::ACCMODE
            | OFlags::APPEND
            | OFlags::DIRECT
            | OFlags::DSYNC
            | OFlags::SYNC
            | OFlags::NONBLOCK
            | OFlags::NOATIME
            | OFlags::TRUNC;
        (OFlags::from_bits_retain(flags as u32) & keep) | OFlags::CLOEXEC
    }

    fn new_fh(&self) -> u64 {
        self.next_fh.fetch_add(1, Ordering::Relaxed)
    }

    /// The backing id for a passthrough open of `ino`, shared with its other open handles.
    fn backing_for(
        &self,
        ino: u64,
        file: &OwnedFd,
        register: impl FnOnce(&OwnedFd) -> io::Result<BackingId>,
    ) -> Option<Arc<BackingId>> {
        if !self.passthrough.load(Ordering::Relaxed) {
            return None;
        }
        let mut nodes = self.nodes.lock();
        let node = nodes.get_mut(&ino)?;
        if let Some(b) = node.backing.upgrade() {
            return Some(b);
        }
        match register(file) {
            Ok(id) => {
                let id = Arc::new(id);
                node.backing = Arc::downgrade(&id);
                Some(id)
            }
            Err(e) => {
                tracing::debug!(error = %e, "FUSE passthrough refused; serving reads and writes");
                None
            }
        }
    }

    /// Every file is opened with FLUSH on close, even one nobody has locked yet: POSIX drops a
    /// process's fcntl locks on a file when it closes any of its descriptors of that file, and a
    /// lock may be taken through another descriptor after this one was opened. (FOPEN_NOFLUSH
    /// for unlocked files saved a round trip per close but kept such locks until the locking
    /// descriptor's last close; the unit test advisory_locks_are_the_file_systems_not_the_mounts
    /// checks the POSIX rule.)
    fn fopen_flags(&self, _backing_ino: u64) -> FopenFlags {
        FopenFlags::empty()
    }

    fn file(&self, fh: FileHandle) -> Res<Arc<Handle>> {
        self.files.lock().get(&fh.0).cloned().ok_or(Errno::EBADF)
    }

    fn read_dir(fd: &OwnedFd) -> Res<Listing> {
        let mut dir = rustix::fs::Dir::read_from(fd).map_err(errno)?;
        let mut out = Vec::new();
        while let Some(entry) = dir.read() {
            let entry = entry.map_err(errno)?;
            let kind = match entry.file_type() {
                rustix::fs::FileType::Directory => FileType::Directory,
                rustix::fs::FileType::Symlink => FileType::Symlink,
                rustix::fs::FileType::Fifo => FileType::NamedPipe,
                rustix::fs::FileType::Socket => FileType::Socket,
                rustix::fs::FileType::CharacterDevice => FileType::CharDevice,
                rustix::fs::FileType::BlockDevice => FileType::BlockDevice,
                _ => FileType::RegularFile,
            };
            out.push((entry.ino(), kind, entry.file_name().to_bytes().to_vec()));
        }
        Ok(out)
    }
}

/// Replies with `r`, or its error.
macro_rules! reply {
    ($reply:ident, $r:expr, |$v:ident| $ok:expr) => {
        match $r {
            Ok($v) => $ok,
            Err(e) => $reply.error(e),
        }
    };
}

impl Filesystem for EfsFs {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> io::Result<()> {
        let _ = config.set_max_write(1 << 20);
        let _ = config.set_max_readahead(1 << 20);
        let _ = config.set_max_background(64);
        let _ = config.add_capabilities(
            InitFlags::FUSE_PARALLEL_DIROPS
                | InitFlags::FUSE_ATOMIC_O_TRUNC
                | InitFlags::FUSE_MAX_PAGES,
        );
        // Locks are the server's (`locks.rs`), so every mount of the file system sees them.
        let _ = config.add_capabilities(InitFlags::FUSE_POSIX_LOCKS | InitFlags::FUSE_FLOCK_LOCKS);
        // Passthrough needs CAP_SYS_ADMIN and a stacking depth for the backing file system.
        if config.add_capabilities(InitFlags::FUSE_PASSTHROUGH).is_ok()
            && config.set_max_stack_depth(1).is_ok()
        {
            self.passthrough.store(true, Ordering::Relaxed);
        }
        Ok(())
    }

    fn lookup(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        reply!(reply, self.do_lookup(req, parent, name), |a| reply.entry(
            &TTL,
            &a,
            Generation(0)
        ));
    }

    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        if ino.0 == 1 {
            return;
        }
        let mut nodes = self.nodes.lock();
        if let Some(node) = nodes.get_mut(&ino.0) {
            node.nlookup = node.nlookup.saturating_sub(nlookup);
            if node.nlookup == 0 {
                nodes.remove(&ino.0);
            }
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, fh: Option<FileHandle>, reply: ReplyAttr) {
        let r = match fh.and_then(|fh| self.files.lock().get(&fh.0).cloned()) {
            Some(h) => self.attr_of(&h.file),
            None => self.node(ino).and_then(|fd| self.attr_of(&*fd)),
        };
        reply!(reply, r, |a| reply.attr(&TTL, &a));
    }

    fn setattr(
        &self,
        req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let r = (|| {
            self.writable()?;
            let fd = self.node(ino)?;
            let handle = fh.and_then(|fh| self.files.lock().get(&fh.0).cloned());
            let is_link = self.attr_of(&*fd)?.kind == FileType::Symlink;
            self.as_caller(req, || {
                if let Some(mode) = mode {
                    if !is_link {
                        rustix::fs::chmodat(
                            CWD,
                            proc_path(&*fd),
                            Mode::from_raw_mode(mode & 0o7777),
                            AtFlags::empty(),
                        )
                        .map_err(errno)?;
                    }
                }
                if uid.is_some() || gid.is_some() {
                    rustix::fs::chownat(
                        &*fd,
                        "",
                        uid.map(Uid::from_raw),
                        gid.map(Gid::from_raw),
                        AtFlags::EMPTY_PATH | AtFlags::SYMLINK_NOFOLLOW,
                    )
                    .map_err(errno)?;
                }
                if let Some(size) = size {
                    match &handle {
                        Some(h) => rustix::fs::ftruncate(&h.file, size).map_err(errno)?,
                        None => {
                            let f = rustix::fs::open(
                                proc_path(&*fd),
                                OFlags::WRONLY | OFlags::CLOEXEC,
                                Mode::empty(),
                            )
                            .map_err(errno)?;
                            rustix::fs::ftruncate(&f, size).map_err(errno)?;
                        }
                    }
                }
                if (atime.is_some() || mtime.is_some()) && !is_link {
                    let times = Timestamps {
                        last_access: timespec(atime),
                        last_modification: timespec(mtime),
                    };
                    rustix::fs::utimensat(CWD, proc_path(&*fd), &times, AtFlags::empty())
                        .map_err(errno)?;
                }
                Ok(())
            })?;
            self.changed_inode(map_ino(self.root_ino, ino.0));
            self.attr_of(&*fd)
        })();
        reply!(reply, r, |a| reply.attr(&TTL, &a));
    }

    fn readlink(&self, req: &Request, ino: INodeNo, reply: ReplyData) {
        let r = self.node(ino).and_then(|fd| {
            self.as_caller(req, || {
                rustix::fs::readlinkat(&*fd, "", Vec::new()).map_err(errno)
            })
        });
        reply!(reply, r, |t| reply.data(t.as_bytes()));
    }

    fn mknod(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        rdev: u32,
        reply: ReplyEntry,
    ) {
        let r = (|| {
            self.writable()?;
            check_name(name)?;
            let pfd = self.node(parent)?;
            let kind = rustix::fs::FileType::from_raw_mode(mode);
            let perm = Mode::from_raw_mode(mode & !umask & 0o7777);
            self.as_caller(req, || {
                rustix::fs::mknodat(&*pfd, name, kind, perm, rdev as u64).map_err(errno)
            })?;
            self.changed_entry(parent, name);
            self.created(req, &pfd, name)
        })();
        reply!(reply, r, |a| reply.entry(&TTL, &a, Generation(0)));
    }

    fn mkdir(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        let r = (|| {
            self.writable()?;
            check_name(name)?;
            let pfd = self.node(parent)?;
            let perm = Mode::from_raw_mode(mode & !umask & 0o7777);
            self.as_caller(req, || {
                rustix::fs::mkdirat(&*pfd, name, perm).map_err(errno)
            })?;
            self.changed_entry(parent, name);
            self.created(req, &pfd, name)
        })();
        reply!(reply, r, |a| reply.entry(&TTL, &a, Generation(0)));
    }

    fn unlink(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let r = (|| {
            self.writable()?;
            check_name(name)?;
            let pfd = self.node(parent)?;
            self.as_caller(req, || {
                rustix::fs::unlinkat(&*pfd, name, AtFlags::empty()).map_err(errno)
            })?;
            self.changed_entry(parent, name);
            Ok(())
        })();
        reply!(reply, r, |_v| reply.ok());
    }

    fn rmdir(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let r = (|| {
            self.writable()?;
            check_name(name)?;
            let pfd = self.node(parent)?;
            self.as_caller(req, || {
                rustix::fs::unlinkat(&*pfd, name, AtFlags::REMOVEDIR).map_err(errno)
            })?;
            self.changed_entry(parent, name);
            Ok(())
        })();
        reply!(reply, r, |_v| reply.ok());
    }

    fn symlink(
        &self,
        req: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &Path,
        reply: ReplyEntry,
    ) {
        let r = (|| {
            self.writable()?;
            check_name(link_name)?;
            if target.as_os_str().len() > MAX_SYMLINK {
                return Err(Errno::ENAMETOOLONG);
            }
            let pfd = self.node(parent)?;
            self.as_caller(req, || {
                rustix::fs::symlinkat(target, &*pfd, link_name).map_err(errno)
            })?;
            self.changed_entry(parent, link_name);
            self.created(req, &pfd, link_name)
        })();
        reply!(reply, r, |a| reply.entry(&TTL, &a, Generation(0)));
    }

    fn rename(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        let r = (|| {
            self.writable()?;
            check_name(name)?;
            check_name(newname)?;
            let from = self.node(parent)?;
            let to = self.node(newparent)?;
            let flags = rustix::fs::RenameFlags::from_bits_retain(flags.bits());
            self.as_caller(req, || {
                rustix::fs::renameat_with(&*from, name, &*to, newname, flags).map_err(errno)
            })?;
            self.changed_entry(parent, name);
            self.changed_entry(newparent, newname);
            Ok(())
        })();
        reply!(reply, r, |_v| reply.ok());
    }

    fn link(
        &self,
        req: &Request,
        ino: INodeNo,
        newparent: INodeNo,
        newname: &OsStr,
        reply: ReplyEntry,
    ) {
        let r = (|| {
            self.writable()?;
            check_name(newname)?;
            let fd = self.node(ino)?;
            if self.attr_of(&*fd)?.nlink as u64 >= MAX_LINKS {
                return Err(Errno::EMLINK);
            }
            let pfd = self.node(newparent)?;
            // Only an inode this mount has looked up (so one inside its root) can be linked.
            // Through /proc rather than AT_EMPTY_PATH, which needs CAP_DAC_READ_SEARCH.
            self.as_caller(req, || {
                rustix::fs::linkat(
                    CWD,
                    proc_path(&*fd),
                    &*pfd,
                    newname,
                    AtFlags::SYMLINK_FOLLOW,
                )
                .map_err(errno)
            })?;
            self.changed_entry(newparent, newname);
            self.changed_inode(map_ino(self.root_ino, ino.0));
            let fd2 = self.as_caller(req, || Self::open_child(&pfd, newname))?;
            self.remember(fd2)
        })();
        reply!(reply, r, |a| reply.entry(&TTL, &a, Generation(0)));
    }

    fn open(&self, req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let r = (|| {
            let oflags = Self::open_flags(flags.0);
            if self.opts.read_only
                && (oflags.intersects(OFlags::WRONLY | OFlags::RDWR | OFlags::TRUNC))
            {
                return Err(Errno::EROFS);
            }
            let fd = self.node(ino)?;
            let file = self.as_caller(req, || {
                rustix::fs::open(proc_path(&*fd), oflags, Mode::empty()).map_err(errno)
            })?;
            Ok(file)
        })();
        let file = match r {
            Ok(f) => f,
            Err(e) => return reply.error(e),
        };
        let backing = self.backing_for(ino.0, &file, |f| reply.open_backing(f));
        let fh = self.new_fh();
        let writable = Self::open_flags(flags.0).intersects(OFlags::WRONLY | OFlags::RDWR);
        let backing_ino = map_ino(self.root_ino, ino.0);
        let flags = self.fopen_flags(backing_ino);
        let handle = Arc::new(Handle {
            file,
            ino: backing_ino,
            writable,
            _backing: backing.clone(),
            no_flush: flags.contains(FopenFlags::FOPEN_NOFLUSH),
            lockers: Mutex::new(Vec::new()),
        });
        self.files.lock().insert(fh, handle);
        match backing {
            Some(b) => reply.opened_passthrough(FileHandle(fh), flags, &b),
            None => reply.opened(FileHandle(fh), flags),
        }
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let r = (|| {
            self.writable()?;
            check_name(name)?;
            let pfd = self.node(parent)?;
            let oflags = Self::open_flags(flags) | OFlags::CREATE | OFlags::EXCL;
            let perm = Mode::from_raw_mode(mode & !umask & 0o7777);
            let file = self.as_caller(req, || {
                rustix::fs::openat(&*pfd, name, oflags, perm).map_err(errno)
            })?;
            self.changed_entry(parent, name);
            let attr = self.created(req, &pfd, name)?;
            Ok((file, attr))
        })();
        let (file, attr) = match r {
            Ok(v) => v,
            Err(e) => return reply.error(e),
        };
        let backing = self.backing_for(attr.ino.0, &file, |f| reply.open_backing(f));
        let fh = self.new_fh();
        let backing_ino = map_ino(self.root_ino, attr.ino.0);
        let flags = self.fopen_flags(backing_ino);
        self.files.lock().insert(
            fh,
            Arc::new(Handle {
                file,
                ino: backing_ino,
                writable: true,
                _backing: backing.clone(),
                no_flush: flags.contains(FopenFlags::FOPEN_NOFLUSH),
                lockers: Mutex::new(Vec::new()),
            }),
        );
        match backing {
            Some(b) => {
                reply.created_passthrough(&TTL, &attr, Generation(0), FileHandle(fh), flags, &b)
            }
            None => reply.created(&TTL, &attr, Generation(0), FileHandle(fh), flags),
        }
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let h = match self.file(fh) {
            Ok(h) => h,
            Err(e) => return reply.error(e),
        };
        // A read may wait for the disk.
        self.slow.run(move || {
            let r = (|| {
                let mut buf = vec![0u8; size as usize];
                let mut done = 0;
                while done < buf.len() {
                    let n = rustix::io::pread(&h.file, &mut buf[done..], offset + done as u64)
                        .map_err(errno)?;
                    if n == 0 {
                        break;
                    }
                    done += n;
                }
                buf.truncate(done);
                Ok(buf)
            })();
            reply!(reply, r, |b| reply.data(&b));
        });
    }

    fn write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let r = self.writable().and_then(|_| self.file(fh)).and_then(|h| {
            let mut done = 0;
            while done < data.len() {
                let n = rustix::io::pwrite(&h.file, &data[done..], offset + done as u64)
                    .map_err(errno)?;
                done += n;
            }
            Ok(done as u32)
        });
        reply!(reply, r, |n| reply.written(n));
    }

    /// A close: POSIX drops every fcntl lock the closing process holds on the file.
    fn flush(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        self.locks
            .release_owner(self.backing_ino(ino), self.lock_owner(lock_owner));
        reply.ok();
    }

    fn release(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        // The last close of an open file releases its flock (the kernel passes its owner).
        if let Some(owner) = lock_owner {
            self.locks
                .release_owner(self.backing_ino(ino), self.lock_owner(owner));
        }
        // Close-to-open: what this handle wrote is news to the other mounts' caches.
        if let Some(h) = self.files.lock().remove(&fh.0) {
            if h.no_flush {
                for owner in h.lockers.lock().drain(..) {
                    self.locks
                        .release_owner(h.ino, self.lock_owner(LockOwner(owner)));
                }
            }
            if h.writable {
                self.changed_inode(h.ino);
            }
        }
        reply.ok();
    }

    fn getlk(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        lock_owner: LockOwner,
        start: u64,
        end: u64,
        typ: i32,
        pid: u32,
        reply: ReplyLock,
    ) {
        let probe = Lock {
            start,
            end,
            write: typ == locks::F_WRLCK,
            pid,
        };
        match self
            .locks
            .test(self.backing_ino(ino), self.lock_owner(lock_owner), probe)
        {
            Some(l) => reply.locked(l.start, l.end, l.typ(), l.pid),
            None => reply.locked(start, end, locks::F_UNLCK, 0),
        }
    }

    fn setlk(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        lock_owner: LockOwner,
        start: u64,
        end: u64,
        typ: i32,
        pid: u32,
        sleep: bool,
        reply: ReplyEmpty,
    ) {
        if let Ok(h) = self.file(fh) {
            let mut lockers = h.lockers.lock();
            if h.no_flush && typ != locks::F_UNLCK && !lockers.contains(&lock_owner.0) {
                lockers.push(lock_owner.0);
            }
        }
        self.locks.set(
            self.backing_ino(ino),
            self.lock_owner(lock_owner),
            start,
            end,
            typ,
            pid,
            sleep,
            reply,
        );
    }

    fn fsync(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        datasync: bool,
        reply: ReplyEmpty,
    ) {
        let h = match self.file(fh) {
            Ok(h) => h,
            Err(e) => return reply.error(e),
        };
        self.slow.run(move || {
            let r = if datasync {
                rustix::fs::fdatasync(&h.file).map_err(errno)
            } else {
                rustix::fs::fsync(&h.file).map_err(errno)
            };
            reply!(reply, r, |_v| reply.ok());
        });
    }

    fn opendir(&self, req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let r = self.node(ino).and_then(|fd| {
            self.as_caller(req, || {
                rustix::fs::open(
                    proc_path(&*fd),
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(errno)
            })
        });
        match r {
            Ok(fd) => {
                let fh = self.new_fh();
                self.dirs.lock().insert(
                    fh,
                    Arc::new(DirHandle {
                        entries: Mutex::new(None),
                        fd,
                    }),
                );
                reply.opened(FileHandle(fh), FopenFlags::empty());
            }
            Err(e) => reply.error(e),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let Some(dir) = self.dirs.lock().get(&fh.0).cloned() else {
            return reply.error(Errno::EBADF);
        };
        let mut entries = dir.entries.lock();
        // A snapshot taken at the first read (offset 0, or rewinddir) serves the later offsets.
        if offset == 0 || entries.is_none() {
            match Self::read_dir(&dir.fd) {
                Ok(list) => *entries = Some(list),
                Err(e) => return reply.error(e),
            }
        }
        let list = entries.as_deref().unwrap_or_default();
        for (i, (ino, kind, name)) in list.iter().enumerate().skip(offset as usize) {
            if reply.add(
                INodeNo(self.fuse_ino(*ino)),
                (i + 1) as u64,
                *kind,
                OsStr::from_bytes(name),
            ) {
                break;
            }
        }
        reply.ok();
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        self.dirs.lock().remove(&fh.0);
        reply.ok();
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        let Some(d) = self.dirs.lock().get(&fh.0).cloned() else {
            return reply.error(Errno::EBADF);
        };
        self.slow.run(move || {
            let r = rustix::fs::fsync(&d.fd).map_err(errno);
            reply!(reply, r, |_v| reply.ok());
        });
    }

    /// EFS reports a size of about 8 EiB, whatever is stored.
    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        const BSIZE: u64 = 4096;
        const TOTAL: u64 = (8 << 60) / BSIZE;
        let used = self
            .nodes
            .lock()
            .get(&1)
            .map(|n| n.fd.clone())
            .and_then(|fd| rustix::fs::fstatvfs(&*fd).ok())
            .map(|s| (s.f_blocks - s.f_bfree) * s.f_frsize / BSIZE)
            .unwrap_or(0);
        let free = TOTAL.saturating_sub(used);
        reply.statfs(
            TOTAL,
            free,
            free,
            u64::MAX >> 1,
            u64::MAX >> 1,
            1 << 20,
            MAX_NAME as u32,
            BSIZE as u32,
        );
    }

    fn access(&self, req: &Request, ino: INodeNo, mask: AccessFlags, reply: ReplyEmpty) {
        let r = self.node(ino).and_then(|fd| {
            let access = rustix::fs::Access::from_bits_truncate(mask.bits() as u32);
            if self.opts.read_only && access.contains(rustix::fs::Access::WRITE_OK) {
                return Err(Errno::EROFS);
            }
            self.as_caller(req, || {
                rustix::fs::accessat(CWD, proc_path(&*fd), access, AtFlags::EACCESS).map_err(errno)
            })
        });
        reply!(reply, r, |_v| reply.ok());
    }

    fn fallocate(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        let h = match self.writable().and_then(|_| self.file(fh)) {
            Ok(h) => h,
            Err(e) => return reply.error(e),
        };
        self.slow.run(move || {
            let flags = rustix::fs::FallocateFlags::from_bits_retain(mode as u32);
            let r = rustix::fs::fallocate(&h.file, flags, offset, length).map_err(errno);
            reply!(reply, r, |_v| reply.ok());
        });
    }

    /// SEEK_DATA / SEEK_HOLE, so sparse files keep their holes when copied.
    fn lseek(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: i64,
        whence: i32,
        reply: ReplyLseek,
    ) {
        let r = self.file(fh).and_then(|h| {
            let pos = match whence {
                3 => rustix::fs::SeekFrom::Data(offset as u64),
                4 => rustix::fs::SeekFrom::Hole(offset as u64),
                0 => rustix::fs::SeekFrom::Start(offset as u64),
                2 => rustix::fs::SeekFrom::End(offset),
                _ => return Err(Errno::EINVAL),
            };
            rustix::fs::seek(&h.file, pos).map_err(errno)
        });
        reply!(reply, r, |p| reply.offset(p as i64));
    }

    // EFS has no extended attributes. ENOSYS tells the kernel once and for all (it answers
    // EOPNOTSUPP itself from then on): otherwise every write asks for security.capability, a
    // round trip per small file.
    fn getxattr(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _name: &OsStr,
        _size: u32,
        reply: ReplyXattr,
    ) {
        reply.error(Errno::ENOSYS);
    }

    fn listxattr(&self, _req: &Request, _ino: INodeNo, size: u32, reply: ReplyXattr) {
        if size == 0 {
            reply.size(0);
        } else {
            reply.data(&[]);
        }
    }

    fn setxattr(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _name: &OsStr,
        _value: &[u8],
        _flags: i32,
        _position: u32,
        reply: ReplyEmpty,
    ) {
        reply.error(Errno::ENOTSUP);
    }

    fn removexattr(&self, _req: &Request, _ino: INodeNo, _name: &OsStr, reply: ReplyEmpty) {
        reply.error(Errno::ENOTSUP);
    }
}
