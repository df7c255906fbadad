//! Cache coherence between the mounts of one file system (two instances, an access point view).
//!
//! The kernel may keep names and attributes for a long time (`fs.rs`'s TTL), which makes stat
//! and path walks cheap. What one mount changes is told to the others, whose kernel caches then
//! drop the entry or inode at once: as every mount is served by this process, a write on one
//! instance is visible on the other by the next open (close-to-open), usually sooner. The
//! notifications go through one thread per file system, never from a FUSE worker thread, so a
//! mount waiting on another cannot deadlock.

use std::ffi::OsString;
use std::sync::mpsc;
use std::sync::Arc;

use fuser::{INodeNo, Notifier};
use parking_lot::Mutex;

use super::locks::Locks;

/// A change, in backing inode numbers (each mount maps them to its own).
#[derive(Debug, Clone)]
pub enum Change {
    /// A name in a directory appeared, went or changed.
    Entry { parent: u64, name: OsString },
    /// An inode's attributes or data changed.
    Inode(u64),
}

struct Member {
    id: u64,
    root_ino: u64,
    notifier: Notifier,
}

/// The mounts of one file system.
pub struct Peers {
    members: Arc<Mutex<Vec<Member>>>,
    /// The file system's advisory locks, one table for all its mounts (NFS server locks).
    locks: Arc<Locks>,
    tx: Mutex<mpsc::Sender<(u64, Change)>>,
}

/// Backing ↔ FUSE inode numbers of a mount whose root is `root_ino` (an involution).
pub fn map_ino(root_ino: u64, ino: u64) -> u64 {
    if ino == root_ino {
        1
    } else if ino == 1 {
        root_ino
    } else {
        ino
    }
}

impl Peers {
    pub fn new() -> Arc<Peers> {
        let members: Arc<Mutex<Vec<Member>>> = Arc::default();
        let (tx, rx) = mpsc::channel::<(u64, Change)>();
        let m = members.clone();
        let spawned = std::thread::Builder::new()
            .name("efs-peers".into())
            .spawn(move || {
                // Ends when the Peers (the only sender) is dropped.
                while let Ok((from, change)) = rx.recv() {
                    let targets: Vec<(u64, Notifier)> = m
                        .lock()
                        .iter()
                        .filter(|x| x.id != from)
                        .map(|x| (x.root_ino, x.notifier.clone()))
                        .collect();
                    for (root, n) in targets {
                        // ENOENT: that mount does not know the inode; nothing to drop.
                        let _ = match &change {
                            Change::Entry { parent, name } => {
                                n.inval_entry(INodeNo(map_ino(root, *parent)), name)
                            }
                            Change::Inode(ino) => n.inval_inode(INodeNo(map_ino(root, *ino)), 0, 0),
                        };
                    }
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "no EFS cache coherence thread");
        }
        Arc::new(Peers {
            members,
            locks: Locks::new(),
            tx: Mutex::new(tx),
        })
    }

    pub fn join(&self, id: u64, root_ino: u64, notifier: Notifier) {
        self.members.lock().push(Member {
            id,
            root_ino,
            notifier,
        });
    }

    /// A mount went away (unmounted, or dead and about to be made again): its locks go too.
    pub fn leave(&self, id: u64) {
        self.members.lock().retain(|m| m.id != id);
        self.locks.release_mount(id);
    }

    pub fn locks(&self) -> Arc<Locks> {
        self.locks.clone()
    }

    /// Tells the other mounts; nothing to do while there is only one.
    pub fn publish(&self, from: u64, change: Change) {
        if self.members.lock().len() < 2 {
            return;
        }
        let _ = self.tx.lock().send((from, change));
    }
}
