//! Real FUSE mounts (root and /dev/fuse required, as for the emulator itself).

use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::creds::Identity;
use super::fs::FsOptions;
use super::mounts::{mounts_under, MountKey, Mounts};

struct Fixture {
    _dir: tempfile::TempDir,
    data: PathBuf,
    backing: PathBuf,
    mounts: std::sync::Arc<Mounts>,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_path_buf();
    let backing = data.join("efs/fs-1/root");
    fs::create_dir_all(&backing).expect("backing");
    // Others must traverse the temp dir to reach the mounts (tests run some steps as uid 1000).
    fs::set_permissions(&data, fs::Permissions::from_mode(0o755)).expect("chmod");
    let mounts = Mounts::new(&data);
    mounts
        .fuse_available()
        .expect("FUSE must be available for these tests");
    Fixture {
        _dir: dir,
        data,
        backing,
        mounts,
    }
}

fn key(instance: &str, view: &str) -> MountKey {
    MountKey {
        instance: instance.into(),
        file_system_id: "fs-1".into(),
        view: view.into(),
    }
}

fn opts(root: &Path) -> FsOptions {
    FsOptions {
        root: root.to_path_buf(),
        identity: None,
        squash_root: false,
        read_only: false,
    }
}

fn errno_of(r: std::io::Result<impl Sized>) -> i32 {
    match r {
        Ok(_) => 0,
        Err(e) => e.raw_os_error().unwrap_or(-1),
    }
}

fn mounted(p: &Path) -> bool {
    fs::read_to_string("/proc/self/mountinfo")
        .expect("mountinfo")
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .any(|m| Path::new(m) == p)
}

#[test]
fn posix_semantics_through_the_mount() {
    let f = fixture();
    let m = f
        .mounts
        .ensure(&key("i-a", "root"), opts(&f.backing))
        .expect("mount");
    assert!(mounted(&m));
    // Idempotent: the same key gives the same mount.
    assert_eq!(
        f.mounts
            .ensure(&key("i-a", "root"), opts(&f.backing))
            .expect("again"),
        m
    );
    assert_eq!(f.mounts.active().len(), 1);

    // Write, read back, and the bytes are in the backing store.
    fs::write(m.join("a.txt"), b"hello").expect("write");
    assert_eq!(fs::read(m.join("a.txt")).expect("read"), b"hello");
    assert_eq!(
        fs::read(f.backing.join("a.txt")).expect("backing"),
        b"hello"
    );

    // Rename across directories and over an existing file.
    fs::create_dir_all(m.join("d1/d2")).expect("mkdir");
    fs::write(m.join("d1/d2/b.txt"), b"old").expect("write b");
    fs::rename(m.join("a.txt"), m.join("d1/d2/b.txt")).expect("rename over");
    assert_eq!(fs::read(m.join("d1/d2/b.txt")).expect("read b"), b"hello");
    assert!(!m.join("a.txt").exists());

    // O_APPEND, truncate, fsync.
    let mut a = fs::OpenOptions::new()
        .append(true)
        .open(m.join("d1/d2/b.txt"))
        .expect("append");
    a.write_all(b" world").expect("append write");
    a.sync_all().expect("fsync");
    drop(a);
    assert_eq!(
        fs::read(m.join("d1/d2/b.txt")).expect("read"),
        b"hello world"
    );
    let t = fs::OpenOptions::new()
        .write(true)
        .open(m.join("d1/d2/b.txt"))
        .expect("open");
    t.set_len(5).expect("truncate");
    drop(t);
    assert_eq!(fs::read(m.join("d1/d2/b.txt")).expect("read"), b"hello");

    // Sparse: a byte at 1 GiB allocates almost nothing.
    let mut s = fs::File::create(m.join("sparse")).expect("create");
    s.seek(SeekFrom::Start(1 << 30)).expect("seek");
    s.write_all(b"x").expect("write");
    drop(s);
    let md = fs::metadata(m.join("sparse")).expect("stat");
    assert_eq!(md.len(), (1 << 30) + 1);
    assert!(
        md.blocks() < 1024,
        "sparse file allocated {} blocks",
        md.blocks()
    );

    // Hard links: 177 per file, then EMLINK.
    fs::write(m.join("h"), b"h").expect("h");
    for i in 1..177 {
        fs::hard_link(m.join("h"), m.join(format!("h{i}"))).expect("link");
    }
    assert_eq!(fs::metadata(m.join("h")).expect("stat").nlink(), 177);
    assert_eq!(
        errno_of(fs::hard_link(m.join("h"), m.join("h177"))),
        31,
        "EMLINK"
    );
    assert_eq!(
        fs::metadata(m.join("h5")).expect("stat").ino(),
        fs::metadata(m.join("h")).expect("stat").ino()
    );

    // Symlinks up to 4080 bytes; names up to 255 bytes.
    let long = "x".repeat(4080);
    std::os::unix::fs::symlink(&long, m.join("l1")).expect("symlink 4080");
    assert_eq!(
        fs::read_link(m.join("l1"))
            .expect("readlink")
            .as_os_str()
            .len(),
        4080
    );
    assert_eq!(
        errno_of(std::os::unix::fs::symlink("y".repeat(4081), m.join("l2"))),
        36,
        "ENAMETOOLONG"
    );
    fs::write(m.join("n".repeat(255)), b"").expect("255-byte name");
    assert_eq!(errno_of(fs::write(m.join("n".repeat(256)), b"")), 36);

    // Permissions and ownership as root.
    fs::set_permissions(m.join("h"), fs::Permissions::from_mode(0o640)).expect("chmod");
    assert_eq!(
        fs::metadata(f.backing.join("h")).expect("stat").mode() & 0o7777,
        0o640
    );
    std::os::unix::fs::chown(m.join("h"), Some(1234), Some(4321)).expect("chown");
    let md = fs::metadata(f.backing.join("h")).expect("stat");
    assert_eq!((md.uid(), md.gid()), (1234, 4321));

    // Advisory locks: an exclusive flock excludes a second open file.
    let l1 = fs::File::open(m.join("h")).expect("open");
    let l2 = fs::File::open(m.join("h")).expect("open");
    rustix::fs::flock(&l1, rustix::fs::FlockOperation::NonBlockingLockExclusive).expect("flock");
    assert!(rustix::fs::flock(&l2, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_err());
    rustix::fs::flock(&l1, rustix::fs::FlockOperation::Unlock).expect("unlock");
    rustix::fs::flock(&l2, rustix::fs::FlockOperation::NonBlockingLockExclusive).expect("flock 2");

    // statfs reports a very large file system (EFS: 8 EiB).
    let st = rustix::fs::statvfs(&m).expect("statvfs");
    assert!(st.f_blocks as u128 * st.f_frsize as u128 >= 1u128 << 62);
    assert_eq!(st.f_namemax, 255);

    // Directory listing and removal.
    let names: Vec<String> = fs::read_dir(m.join("d1"))
        .expect("readdir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["d2".to_string()]);
    fs::remove_file(m.join("d1/d2/b.txt")).expect("unlink");
    fs::remove_dir(m.join("d1/d2")).expect("rmdir");
    assert!(!f.backing.join("d1/d2").exists());

    f.mounts.release_all();
    assert!(!mounted(&m), "released on shutdown");
}

#[test]
fn two_instances_share_one_file_system() {
    let f = fixture();
    let a = f
        .mounts
        .ensure(&key("i-a", "root"), opts(&f.backing))
        .expect("mount a");
    let b = f
        .mounts
        .ensure(&key("i-b", "root"), opts(&f.backing))
        .expect("mount b");
    assert_ne!(a, b);
    let mut w = fs::File::create(a.join("shared")).expect("create");
    w.write_all(b"from a").expect("write");
    drop(w);
    // Close-to-open: the other instance's next open sees the data.
    let mut s = String::new();
    fs::File::open(b.join("shared"))
        .expect("open on b")
        .read_to_string(&mut s)
        .expect("read");
    assert_eq!(s, "from a");
    // Both kernels now cache the name and attributes; b's change reaches a's cache.
    assert_eq!(fs::metadata(a.join("shared")).expect("a").len(), 6);
    fs::write(b.join("shared"), b"from b, longer").expect("rewrite on b");
    let mut seen = 0;
    for _ in 0..50 {
        seen = fs::metadata(a.join("shared")).expect("a").len();
        if seen == 14 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(
        seen, 14,
        "the size written on b is seen on a within a second"
    );
    fs::remove_file(b.join("shared")).expect("unlink on b");
    let mut gone = false;
    for _ in 0..50 {
        gone = !a.join("shared").exists();
        if gone {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(gone, "the unlink on b is seen on a");
    fs::write(b.join("shared"), b"from b, longer").expect("rewrite on b");
    assert_eq!(
        fs::read(a.join("shared")).expect("read on a"),
        b"from b, longer"
    );
    assert_eq!(
        fs::metadata(a.join("shared")).expect("a").ino(),
        fs::metadata(b.join("shared")).expect("b").ino()
    );
}

#[test]
fn caller_identity_owns_new_files_and_permissions_hold() {
    let f = fixture();
    let m = f
        .mounts
        .ensure(&key("i-a", "root"), opts(&f.backing))
        .expect("mount");
    fs::create_dir(m.join("pub")).expect("mkdir");
    fs::set_permissions(m.join("pub"), fs::Permissions::from_mode(0o777)).expect("chmod");
    fs::write(m.join("secret"), b"s").expect("secret");
    fs::set_permissions(m.join("secret"), fs::Permissions::from_mode(0o600)).expect("chmod");
    let run = |script: &str| {
        Command::new("/bin/sh")
            .arg("-c")
            .arg(script)
            .current_dir(&m)
            .uid(1000)
            .gid(1000)
            .status()
            .expect("sh")
            .success()
    };
    assert!(run("echo hi > pub/mine"));
    let md = fs::metadata(f.backing.join("pub/mine")).expect("stat");
    assert_eq!((md.uid(), md.gid()), (1000, 1000));
    assert!(
        !run("cat secret"),
        "a root-only file is unreadable to uid 1000"
    );
    assert!(
        !run("echo x > not-writable-dir-entry"),
        "root's 755 root dir refuses uid 1000"
    );
    // A directory uid 1000 may not search keeps its files from it, even names the kernel has
    // cached from root's lookups.
    fs::create_dir(m.join("closed")).expect("mkdir");
    fs::write(m.join("closed/open-file"), b"o").expect("write");
    fs::set_permissions(m.join("closed"), fs::Permissions::from_mode(0o700)).expect("chmod");
    assert_eq!(
        fs::read(m.join("closed/open-file")).expect("root reads"),
        b"o"
    );
    assert!(
        !run("cat closed/open-file"),
        "no search permission on closed/"
    );
    assert!(!run("ls closed"), "no read permission on closed/");
    assert!(!run("echo x > closed/new"), "no create in closed/");
    // Supplementary groups count, as the caller's (read from /proc).
    fs::create_dir(m.join("group")).expect("mkdir");
    std::os::unix::fs::chown(m.join("group"), Some(0), Some(4242)).expect("chown");
    fs::set_permissions(m.join("group"), fs::Permissions::from_mode(0o770)).expect("chmod");
    // setpriv (util-linux) sets the groups between fork and exec.
    let with_group = Command::new("setpriv")
        .args([
            "--reuid=1000",
            "--regid=1000",
            "--groups=4242",
            "/bin/sh",
            "-c",
        ])
        .arg("echo g > group/by-group")
        .current_dir(&m)
        .status()
        .expect("setpriv")
        .success();
    assert!(with_group, "a member of group 4242 writes in group/");
    assert!(!run("echo g > group/no"), "uid 1000 alone cannot");
}

#[test]
fn access_point_confines_and_impersonates() {
    let f = fixture();
    fs::write(f.backing.join("outside"), b"secret").expect("outside");
    let root = f.backing.join("ap");
    fs::create_dir(&root).expect("ap root");
    std::os::unix::fs::chown(&root, Some(1000), Some(1000)).expect("chown");
    fs::write(root.join("root-only"), b"r").expect("root-only");
    fs::set_permissions(root.join("root-only"), fs::Permissions::from_mode(0o600)).expect("chmod");
    let o = FsOptions {
        identity: Some(Identity::new(1000, 1000, vec![2000])),
        ..opts(&root)
    };
    let m = f.mounts.ensure(&key("i-a", "fsap-1"), o).expect("mount");

    // Root's writes become 1000:1000 on the backing store.
    fs::write(m.join("new"), b"n").expect("write as root → 1000");
    fs::create_dir(m.join("dir")).expect("mkdir");
    for p in ["new", "dir"] {
        let md = fs::metadata(root.join(p)).expect("stat");
        assert_eq!((md.uid(), md.gid()), (1000, 1000), "{p}");
    }
    // Permission checks use the PosixUser, not the caller (root here).
    assert_eq!(errno_of(fs::read(m.join("root-only"))), 13, "EACCES");
    assert_eq!(
        errno_of(std::os::unix::fs::chown(
            m.join("root-only"),
            Some(1000),
            None
        )),
        1,
        "EPERM"
    );

    // Escapes: `..` above the root is the mount's parent, not the backing store.
    assert!(fs::read(m.join("../outside")).is_err());
    assert_eq!(
        fs::canonicalize(m.join("..")).expect("parent"),
        m.parent().expect("parent").to_path_buf()
    );
    std::os::unix::fs::symlink("../outside", m.join("rel")).expect("symlink");
    std::os::unix::fs::symlink("../../../../../../outside", m.join("rel2")).expect("symlink");
    assert!(fs::read(m.join("rel")).is_err());
    assert!(fs::read(m.join("rel2")).is_err());
    // A hard link from outside the mount is another file system to the kernel.
    assert_eq!(
        errno_of(fs::hard_link(f.backing.join("outside"), m.join("hl"))),
        18,
        "EXDEV"
    );
    // Nothing reachable from inside names the backing store's other files.
    let walk = Command::new("find")
        .arg(&m)
        .arg("-name")
        .arg("outside")
        .output()
        .expect("find");
    assert!(walk.stdout.is_empty());
}

#[test]
fn read_only_mount_refuses_writes() {
    let f = fixture();
    fs::write(f.backing.join("r"), b"r").expect("r");
    let o = FsOptions {
        read_only: true,
        ..opts(&f.backing)
    };
    let m = f.mounts.ensure(&key("i-a", "ro"), o).expect("mount");
    assert_eq!(fs::read(m.join("r")).expect("read"), b"r");
    assert_eq!(errno_of(fs::write(m.join("w"), b"w")), 30, "EROFS");
    assert_eq!(
        errno_of(fs::OpenOptions::new().write(true).open(m.join("r"))),
        30
    );
}

#[test]
fn squashed_root_is_nobody() {
    let f = fixture();
    fs::set_permissions(&f.backing, fs::Permissions::from_mode(0o777)).expect("chmod");
    let o = FsOptions {
        squash_root: true,
        ..opts(&f.backing)
    };
    let m = f.mounts.ensure(&key("i-a", "squash"), o).expect("mount");
    fs::write(m.join("by-root"), b"x").expect("write");
    assert_eq!(
        fs::metadata(f.backing.join("by-root")).expect("stat").uid(),
        65534
    );
}

#[test]
fn dead_mounts_are_remounted_and_stale_ones_cleaned() {
    let f = fixture();
    fs::write(f.backing.join("keep"), b"k").expect("keep");
    let m = f
        .mounts
        .ensure(&key("i-a", "root"), opts(&f.backing))
        .expect("mount");
    // Kill it from outside: someone unmounts it under us.
    rustix::mount::unmount(&m, rustix::mount::UnmountFlags::DETACH).expect("umount -l");
    assert!(!mounted(&m));
    let mut remade = Vec::new();
    for _ in 0..50 {
        remade = f.mounts.check();
        if !remade.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(remade, vec![m.clone()]);
    assert_eq!(fs::read(m.join("keep")).expect("read after remount"), b"k");

    // A second manager on the same data dir (a restart after kill -9) finds the first one's
    // mount stale and removes it.
    let again = Mounts::new(&f.data);
    assert!(
        mounts_under(again.base()).is_empty(),
        "no stale mount remains"
    );
    assert!(!mounted(&m));
}

fn flock(f: &fs::File, op: rustix::fs::FlockOperation) -> i32 {
    errno_of(rustix::fs::flock(f, op).map_err(std::io::Error::from))
}

fn fcntl(f: &fs::File, op: rustix::fs::FlockOperation) -> i32 {
    errno_of(rustix::fs::fcntl_lock(f, op).map_err(std::io::Error::from))
}

const EAGAIN: i32 = 11;

#[test]
fn advisory_locks_are_the_file_systems_not_the_mounts() {
    use rustix::fs::FlockOperation::*;
    let f = fixture();
    let a = f
        .mounts
        .ensure(&key("i-a", "root"), opts(&f.backing))
        .expect("mount a");
    let b = f
        .mounts
        .ensure(&key("i-b", "root"), opts(&f.backing))
        .expect("mount b");
    fs::write(a.join("lockme"), b"x").expect("file");
    let open = |m: &Path| fs::File::open(m.join("lockme")).expect("open");

    // flock on instance A excludes instance B (one NFS server holds the locks).
    let fa = open(&a);
    let fb = open(&b);
    assert_eq!(flock(&fa, NonBlockingLockExclusive), 0);
    assert_eq!(
        flock(&fb, NonBlockingLockExclusive),
        EAGAIN,
        "B sees A's flock"
    );
    assert_eq!(flock(&fb, NonBlockingLockShared), EAGAIN);
    // As on NFS, flock is a whole-file lock: an fcntl lock on B conflicts with it too.
    assert_eq!(fcntl(&fb, NonBlockingLockShared), EAGAIN);
    // A blocking flock on B waits for A's unlock, without holding a FUSE thread.
    let fb2 = open(&b);
    let (tx, rx) = std::sync::mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let r = flock(&fb2, LockExclusive);
        tx.send(r).expect("send");
        fb2
    });
    assert!(
        rx.recv_timeout(std::time::Duration::from_millis(300))
            .is_err(),
        "B waits while A holds the lock"
    );
    // Meanwhile the mounts still serve other requests.
    assert_eq!(fs::read(b.join("lockme")).expect("read on b"), b"x");
    assert_eq!(flock(&fa, Unlock), 0);
    assert_eq!(
        rx.recv_timeout(std::time::Duration::from_secs(5)),
        Ok(0),
        "B got the lock once A let go"
    );
    let fb2 = waiter.join().expect("waiter");
    assert_eq!(
        flock(&fa, NonBlockingLockShared),
        EAGAIN,
        "A sees B's flock"
    );
    // The last close of B's open file releases its flock. The kernel sends RELEASE after
    // close(2) has returned, so poll (bounded) for it to arrive.
    drop(fb2);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while flock(&fa, NonBlockingLockShared) != 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "B's flock was not released within 5 s of its last close"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(flock(&fa, Unlock), 0);

    // fcntl locks belong to a process on a host: this process's two descriptors on A share
    // them, B is another host.
    let fa2 = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(a.join("lockme"))
        .expect("open rw");
    let fb3 = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(b.join("lockme"))
        .expect("open rw");
    let fa3 = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(a.join("lockme"))
        .expect("open rw");
    assert_eq!(fcntl(&fa2, NonBlockingLockExclusive), 0);
    assert_eq!(
        fcntl(&fa3, NonBlockingLockExclusive),
        0,
        "same process, same host"
    );
    assert_eq!(fcntl(&fb3, NonBlockingLockShared), EAGAIN, "another host");
    assert_eq!(
        flock(&fb, NonBlockingLockShared),
        EAGAIN,
        "flock meets fcntl"
    );
    // Closing any descriptor of the file drops the process's fcntl locks (POSIX).
    drop(fa);
    assert_eq!(fcntl(&fb3, NonBlockingLockExclusive), 0);
    assert_eq!(fcntl(&fa2, NonBlockingLockShared), EAGAIN);
    drop(fb3);
    assert_eq!(fcntl(&fa2, NonBlockingLockExclusive), 0);
    drop(fa2);
    drop(fa3);
    drop(fb);
}

#[test]
fn at_most_512_locks_per_file_across_instances() {
    use rustix::fs::FlockOperation::*;
    let f = fixture();
    let a = f
        .mounts
        .ensure(&key("i-a", "root"), opts(&f.backing))
        .expect("mount a");
    let b = f
        .mounts
        .ensure(&key("i-b", "root"), opts(&f.backing))
        .expect("mount b");
    fs::write(a.join("many"), b"x").expect("file");
    // Shared flocks of 512 open files (each its own owner), half on each instance.
    let files: Vec<fs::File> = (0..512)
        .map(|i| {
            let m = if i % 2 == 0 { &a } else { &b };
            let file = fs::File::open(m.join("many")).expect("open");
            assert_eq!(flock(&file, NonBlockingLockShared), 0, "lock {i}");
            file
        })
        .collect();
    let one_more = fs::File::open(b.join("many")).expect("open");
    assert_eq!(
        flock(&one_more, NonBlockingLockShared),
        37,
        "ENOLCK past 512"
    );
    drop(files);
    assert_eq!(flock(&one_more, NonBlockingLockShared), 0, "room again");
}

#[test]
fn a_signal_ends_a_blocked_lock_wait() {
    use rustix::fs::FlockOperation::*;
    let f = fixture();
    let a = f
        .mounts
        .ensure(&key("i-a", "root"), opts(&f.backing))
        .expect("mount a");
    let b = f
        .mounts
        .ensure(&key("i-b", "root"), opts(&f.backing))
        .expect("mount b");
    fs::write(a.join("held"), b"x").expect("file");
    let fa = fs::File::open(a.join("held")).expect("open");
    assert_eq!(flock(&fa, NonBlockingLockExclusive), 0);
    // flock(1) -w uses an alarm: the wait must end with EINTR, not hang in the kernel.
    let start = std::time::Instant::now();
    let st = Command::new("flock")
        .args(["-w", "1"])
        .arg(b.join("held"))
        .arg("true")
        .status()
        .expect("flock(1)");
    assert_eq!(st.code(), Some(1), "timed out");
    assert!(start.elapsed() < std::time::Duration::from_secs(5));
    // A waiter killed with SIGKILL goes (no unkillable process left behind).
    let mut child = Command::new("flock")
        .arg(b.join("held"))
        .arg("true")
        .spawn()
        .expect("flock(1)");
    std::thread::sleep(std::time::Duration::from_millis(200));
    child.kill().expect("kill -9");
    let start = std::time::Instant::now();
    loop {
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(5),
            "the killed waiter is stuck"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(flock(&fa, Unlock), 0);
}

#[test]
fn directories_1000_deep() {
    let f = fixture();
    let m = f
        .mounts
        .ensure(&key("i-a", "root"), opts(&f.backing))
        .expect("mount");
    let mut deep = m.clone();
    for _ in 0..1000 {
        deep.push("d");
    }
    fs::create_dir_all(&deep).expect("1000 levels");
    fs::write(deep.join("leaf"), b"deep").expect("a file at depth 1000");
    assert_eq!(fs::read(deep.join("leaf")).expect("read"), b"deep");
    let mut backing = f.backing.clone();
    for _ in 0..1000 {
        backing.push("d");
    }
    assert_eq!(fs::read(backing.join("leaf")).expect("backing"), b"deep");
}
