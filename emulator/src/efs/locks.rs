//! Advisory locks (fcntl byte ranges and flock) shared by every mount of one file system.
//!
//! EFS is NFSv4: its locks live on the server, so a lock taken on one instance is seen by every
//! other instance, and flock is a whole-file lock of the same kind (on NFS, flock and fcntl locks
//! conflict with each other). Here the server is this table: every mount of a file system holds
//! the same one (through `Peers`), the kernel hands all locking to the FUSE server
//! (FUSE_POSIX_LOCKS, FUSE_FLOCK_LOCKS), and owners are (mount, kernel lock owner), so two
//! instances' processes never share an owner.
//!
//! A blocking request (F_SETLKW, flock without LOCK_NB) is parked with its reply and answered
//! when the lock can be granted: no FUSE worker thread waits. fuser does not pass FUSE_INTERRUPT
//! on, and the kernel keeps a process in an uninterruptible wait until the reply comes, so a
//! watcher thread answers EINTR to a parked request as soon as its process has a signal pending
//! (SIGKILL included), as an interruptible F_SETLKW would return.
//!
//! EFS allows 512 locks per file across all instances and users; one more is ENOLCK.

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use fuser::{Errno, ReplyEmpty};
use parking_lot::Mutex;

/// EFS: "up to 512 locks per file across all instances connected and users accessing the file".
pub const MAX_LOCKS_PER_FILE: usize = 512;

/// Lock types as the kernel sends them (Linux's F_RDLCK, F_WRLCK, F_UNLCK).
pub const F_RDLCK: i32 = 0;
pub const F_WRLCK: i32 = 1;
pub const F_UNLCK: i32 = 2;

/// Who holds a lock: a mount and the kernel's lock owner on it (a process's file table for
/// fcntl locks, an open file for flock).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Owner {
    pub mount: u64,
    pub owner: u64,
}

/// A byte range [start, end] (inclusive, as FUSE sends it; end u64::MAX-ish means "to EOF").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lock {
    pub start: u64,
    pub end: u64,
    pub write: bool,
    pub pid: u32,
}

impl Lock {
    fn overlaps(&self, start: u64, end: u64) -> bool {
        self.start <= end && start <= self.end
    }

    pub fn typ(&self) -> i32 {
        if self.write {
            F_WRLCK
        } else {
            F_RDLCK
        }
    }
}

struct Held {
    owner: Owner,
    lock: Lock,
}

struct Waiter {
    owner: Owner,
    lock: Lock,
    reply: ReplyEmpty,
}

#[derive(Default)]
struct FileLocks {
    held: Vec<Held>,
    waiting: Vec<Waiter>,
}

impl FileLocks {
    /// The first lock of another owner that conflicts with `lock`.
    fn conflict(&self, owner: Owner, lock: &Lock) -> Option<&Lock> {
        self.held
            .iter()
            .filter(|h| h.owner != owner && h.lock.overlaps(lock.start, lock.end))
            .map(|h| &h.lock)
            .find(|l| l.write || lock.write)
    }

    /// POSIX semantics for one owner: the new range replaces whatever of the owner's ranges it
    /// covers (splitting them), then same-type neighbours of that owner are merged.
    /// `lock: None` unlocks the range. Past the per-file limit it fails with ENOLCK, leaving
    /// the new set in place: `try_set` restores the old one.
    fn apply(
        &mut self,
        owner: Owner,
        start: u64,
        end: u64,
        lock: Option<Lock>,
    ) -> Result<(), Errno> {
        let mut next: Vec<Held> = Vec::with_capacity(self.held.len() + 2);
        let mut mine: Vec<Lock> = Vec::new();
        for h in self.held.drain(..) {
            if h.owner != owner {
                next.push(h);
                continue;
            }
            if !h.lock.overlaps(start, end) {
                mine.push(h.lock);
                continue;
            }
            // The parts outside [start, end] stay.
            if h.lock.start < start {
                mine.push(Lock {
                    end: start - 1,
                    ..h.lock
                });
            }
            if h.lock.end > end {
                mine.push(Lock {
                    start: end + 1,
                    ..h.lock
                });
            }
        }
        if let Some(l) = lock {
            mine.push(l);
        }
        mine.sort_by_key(|l| l.start);
        let mut merged: Vec<Lock> = Vec::with_capacity(mine.len());
        for l in mine {
            match merged.last_mut() {
                Some(m) if m.write == l.write && m.end != u64::MAX && m.end + 1 >= l.start => {
                    m.end = m.end.max(l.end);
                }
                _ => merged.push(l),
            }
        }
        let over = lock.is_some() && next.len() + merged.len() > MAX_LOCKS_PER_FILE;
        next.extend(merged.into_iter().map(|lock| Held { owner, lock }));
        self.held = next;
        // An unlock may split a range past the limit; refusing it would keep more locked.
        if over {
            return Err(Errno::ENOLCK);
        }
        Ok(())
    }

    fn snapshot(&self) -> Vec<(Owner, Lock)> {
        self.held.iter().map(|h| (h.owner, h.lock)).collect()
    }

    fn restore(&mut self, saved: Vec<(Owner, Lock)>) {
        self.held = saved
            .into_iter()
            .map(|(owner, lock)| Held { owner, lock })
            .collect();
    }

    /// Tries one lock or unlock, changing nothing on failure.
    fn try_set(
        &mut self,
        owner: Owner,
        start: u64,
        end: u64,
        lock: Option<Lock>,
    ) -> Result<(), Errno> {
        if let Some(l) = &lock {
            if self.conflict(owner, l).is_some() {
                return Err(Errno::EAGAIN);
            }
        }
        let saved = self.snapshot();
        let r = self.apply(owner, start, end, lock);
        if r.is_err() {
            self.restore(saved);
        }
        r
    }

    /// Grants what parked requests can now have, in arrival order; returns their replies.
    fn wake(&mut self) -> Vec<(ReplyEmpty, Result<(), Errno>)> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < self.waiting.len() {
            let w = &self.waiting[i];
            if self.conflict(w.owner, &w.lock).is_some() {
                i += 1;
                continue;
            }
            let w = self.waiting.remove(i);
            let r = self.try_set(w.owner, w.lock.start, w.lock.end, Some(w.lock));
            out.push((w.reply, r));
        }
        out
    }

    fn is_empty(&self) -> bool {
        self.held.is_empty() && self.waiting.is_empty()
    }
}

/// The lock table of one file system, by backing inode number.
#[derive(Default)]
pub struct Locks {
    files: Mutex<HashMap<u64, FileLocks>>,
    /// Runs while requests are parked, cancelling those whose process is signalled.
    watcher: Mutex<Option<std::thread::JoinHandle<()>>>,
    me: Mutex<Weak<Locks>>,
}

fn send(replies: Vec<(ReplyEmpty, Result<(), Errno>)>) {
    for (reply, r) in replies {
        match r {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }
}

impl Locks {
    pub fn new() -> Arc<Locks> {
        let l = Arc::new(Locks::default());
        *l.me.lock() = Arc::downgrade(&l);
        l
    }

    /// F_GETLK: the lock that would block `lock`, if any.
    pub fn test(&self, ino: u64, owner: Owner, lock: Lock) -> Option<Lock> {
        self.files
            .lock()
            .get(&ino)
            .and_then(|f| f.conflict(owner, &lock).copied())
    }

    /// F_SETLK / F_SETLKW (and flock): `typ` F_RDLCK, F_WRLCK or F_UNLCK. A blocking request
    /// that conflicts is parked and answered later.
    #[allow(clippy::too_many_arguments)]
    pub fn set(
        &self,
        ino: u64,
        owner: Owner,
        start: u64,
        end: u64,
        typ: i32,
        pid: u32,
        sleep: bool,
        reply: ReplyEmpty,
    ) {
        let lock = match typ {
            F_UNLCK => None,
            F_RDLCK | F_WRLCK => Some(Lock {
                start,
                end,
                write: typ == F_WRLCK,
                pid,
            }),
            _ => return reply.error(Errno::EINVAL),
        };
        if start > end {
            return reply.error(Errno::EINVAL);
        }
        let mut files = self.files.lock();
        let f = files.entry(ino).or_default();
        match f.try_set(owner, start, end, lock) {
            Err(e) if e == Errno::EAGAIN && sleep => {
                if let Some(lock) = lock {
                    f.waiting.push(Waiter { owner, lock, reply });
                }
                drop(files);
                self.watch();
            }
            Err(e) => {
                drop(files);
                reply.error(e)
            }
            Ok(()) => {
                let woken = if lock.is_none() { f.wake() } else { Vec::new() };
                if f.is_empty() {
                    files.remove(&ino);
                }
                drop(files);
                reply.ok();
                send(woken);
            }
        }
    }

    /// Drops every lock (and parked request) of `owner` on `ino`: a close (flush) for fcntl
    /// locks, the last close of an open file for flock.
    pub fn release_owner(&self, ino: u64, owner: Owner) {
        let mut files = self.files.lock();
        let Some(f) = files.get_mut(&ino) else { return };
        let before = f.held.len();
        f.held.retain(|h| h.owner != owner);
        let mut cancelled = Vec::new();
        let mut i = 0;
        while i < f.waiting.len() {
            if f.waiting[i].owner == owner {
                cancelled.push((f.waiting.remove(i).reply, Err(Errno::EINTR)));
            } else {
                i += 1;
            }
        }
        let woken = if f.held.len() != before {
            f.wake()
        } else {
            Vec::new()
        };
        if f.is_empty() {
            files.remove(&ino);
        }
        drop(files);
        send(cancelled);
        send(woken);
    }

    /// Drops every lock of a mount that went away (unmounted, or died and was made again).
    pub fn release_mount(&self, mount: u64) {
        let mut replies = Vec::new();
        let mut files = self.files.lock();
        for f in files.values_mut() {
            let before = f.held.len();
            f.held.retain(|h| h.owner.mount != mount);
            // Parked requests of a dead mount cannot be answered anyway; drop them unanswered.
            f.waiting.retain(|w| w.owner.mount != mount);
            if f.held.len() != before {
                replies.extend(f.wake());
            }
        }
        files.retain(|_, f| !f.is_empty());
        drop(files);
        send(replies);
    }

    /// Whether anyone holds or waits for a lock on `ino`.
    pub fn has_locks(&self, ino: u64) -> bool {
        self.files.lock().contains_key(&ino)
    }

    /// How many locks `ino` has (tests, and the 512 limit).
    pub fn count(&self, ino: u64) -> usize {
        self.files.lock().get(&ino).map_or(0, |f| f.held.len())
    }

    /// Starts the watcher thread if it does not run.
    fn watch(&self) {
        let mut w = self.watcher.lock();
        if w.as_ref().is_some_and(|h| !h.is_finished()) {
            return;
        }
        let me = self.me.lock().clone();
        let spawned = std::thread::Builder::new()
            .name("efs-locks".into())
            .spawn(move || loop {
                std::thread::sleep(Duration::from_millis(50));
                let Some(locks) = me.upgrade() else { return };
                if !locks.cancel_signalled() {
                    return;
                }
            });
        match spawned {
            Ok(h) => *w = Some(h),
            Err(e) => tracing::warn!(error = %e, "no EFS lock watcher"),
        }
    }

    /// Answers EINTR to parked requests whose process has a signal to take; false once
    /// nothing is parked (the watcher then ends).
    fn cancel_signalled(&self) -> bool {
        let mut cancelled = Vec::new();
        let mut files = self.files.lock();
        let mut any = false;
        for f in files.values_mut() {
            let mut i = 0;
            while i < f.waiting.len() {
                if signalled(f.waiting[i].lock.pid) {
                    cancelled.push((f.waiting.remove(i).reply, Err(Errno::EINTR)));
                } else {
                    i += 1;
                }
            }
            any |= !f.waiting.is_empty();
        }
        files.retain(|_, f| !f.is_empty());
        drop(files);
        send(cancelled);
        any
    }
}

/// Whether process `pid` (as the kernel told FUSE, in our pid namespace) has an unblocked signal
/// pending, or is gone.
fn signalled(pid: u32) -> bool {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return true;
    };
    let mask = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
            .unwrap_or(0)
    };
    const SIGKILL: u64 = 1 << 8;
    let pending = mask("SigPnd:") | mask("ShdPnd:");
    pending & SIGKILL != 0 || pending & !mask("SigBlk:") != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn o(n: u64) -> Owner {
        Owner { mount: 1, owner: n }
    }

    fn file() -> FileLocks {
        FileLocks::default()
    }

    fn l(start: u64, end: u64, write: bool) -> Option<Lock> {
        Some(Lock {
            start,
            end,
            write,
            pid: 1,
        })
    }

    #[test]
    fn conflicts_follow_posix() {
        let mut f = file();
        f.try_set(o(1), 0, 9, l(0, 9, false)).expect("read lock");
        f.try_set(o(2), 5, 14, l(5, 14, false))
            .expect("readers share");
        assert_eq!(f.try_set(o(3), 8, 8, l(8, 8, true)), Err(Errno::EAGAIN));
        f.try_set(o(3), 15, 20, l(15, 20, true))
            .expect("no overlap");
        // An owner's own locks never conflict: upgrading its range is fine once alone.
        f.try_set(o(2), 5, 14, None).expect("unlock");
        f.try_set(o(1), 0, 9, l(0, 9, true)).expect("upgrade");
        assert_eq!(f.held.len(), 2);
    }

    #[test]
    fn unlock_splits_and_locks_merge() {
        let mut f = file();
        f.try_set(o(1), 0, 99, l(0, 99, true)).expect("lock");
        f.try_set(o(1), 40, 59, None).expect("unlock the middle");
        let mut ranges: Vec<(u64, u64)> =
            f.held.iter().map(|h| (h.lock.start, h.lock.end)).collect();
        ranges.sort();
        assert_eq!(ranges, vec![(0, 39), (60, 99)]);
        f.try_set(o(1), 40, 59, l(40, 59, true)).expect("relock");
        assert_eq!(f.held.len(), 1, "merged back into one range");
        assert_eq!((f.held[0].lock.start, f.held[0].lock.end), (0, 99));
    }

    #[test]
    fn at_most_512_locks_per_file() {
        let mut f = file();
        for i in 0..MAX_LOCKS_PER_FILE as u64 {
            // Every other byte, so nothing merges; owners alternate.
            f.try_set(o(i % 7), 2 * i, 2 * i, l(2 * i, 2 * i, false))
                .expect("under the limit");
        }
        assert_eq!(f.held.len(), MAX_LOCKS_PER_FILE);
        let n = MAX_LOCKS_PER_FILE as u64;
        assert_eq!(
            f.try_set(o(9), 2 * n, 2 * n, l(2 * n, 2 * n, false)),
            Err(Errno::ENOLCK)
        );
        assert_eq!(f.held.len(), MAX_LOCKS_PER_FILE, "nothing changed");
        // Extending an existing lock needs no new record.
        f.try_set(o(0), 0, 1, l(0, 1, false))
            .expect("merge into an existing lock");
    }

    #[test]
    fn a_signal_or_a_gone_process_cancels_a_wait() {
        assert!(signalled(u32::MAX - 1), "no such process");
        assert!(
            !signalled(std::process::id()),
            "this process has nothing pending"
        );
    }
}
