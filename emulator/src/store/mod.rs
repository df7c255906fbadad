//! Durable state. Services keep their state in memory, in [`Table`]s; every acknowledged change is
//! first committed to an embedded database (redb) in the data dir, so it survives `kill -9`.
//! With `--ephemeral` there is no database and tables live in memory only.

pub mod journal;
mod table;

pub use table::{Table, Txn};

use parking_lot::{Mutex, RwLock};
use redb::{Database, TableDefinition};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

/// One redb table holds everything: the key is "<table>\0<row key>", the value the row's JSON.
const ROWS: TableDefinition<&str, &[u8]> = TableDefinition::new("rows");

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("state store: {0}")]
    Db(String),
    /// The disk refused a write (full, read-only, failing): nothing of the change was kept.
    /// The database is reopened before the next write; until one succeeds the store is degraded.
    #[error("state store cannot write to the data dir: {0}")]
    Disk(String),
}

impl StoreError {
    /// Whether this is the disk's doing (full, read-only), not a bug: AWS-style, a 503.
    pub fn is_disk(&self) -> bool {
        matches!(self, StoreError::Disk(_))
    }

    /// The reason, without the prefix.
    pub fn reason(&self) -> &str {
        match self {
            StoreError::Db(why) | StoreError::Disk(why) => why,
        }
    }
}

fn db_err(e: impl Into<redb::Error>) -> StoreError {
    match e.into() {
        redb::Error::Io(io) => StoreError::Disk(describe_io(&io)),
        redb::Error::PreviousIo => {
            StoreError::Disk("an earlier write failed; the database is being reopened".into())
        }
        other => StoreError::Db(other.to_string()),
    }
}

fn io_err(e: std::io::Error) -> StoreError {
    StoreError::Disk(describe_io(&e))
}

/// "No space left on device (os error 28)" as "no space left on device".
pub fn describe_io(e: &std::io::Error) -> String {
    use rustix::io::Errno;
    let errno = e.raw_os_error();
    if errno == Some(Errno::NOSPC.raw_os_error()) {
        "no space left on device".into()
    } else if errno == Some(Errno::DQUOT.raw_os_error()) {
        "disk quota exceeded".into()
    } else if errno == Some(Errno::ROFS.raw_os_error()) {
        "read-only file system".into()
    } else {
        e.to_string()
    }
}

/// Whether an I/O error means the data dir cannot take writes now (full, over quota, read-only).
pub fn is_disk_full(e: &std::io::Error) -> bool {
    use rustix::io::Errno;
    [Errno::NOSPC, Errno::DQUOT, Errno::ROFS]
        .iter()
        .any(|n| e.raw_os_error() == Some(n.raw_os_error()))
}

/// At most one attempt to reopen a failed database per this interval: a controller writing in a
/// loop on a full disk must not repair the database over and over.
const REOPEN_INTERVAL: Duration = Duration::from_millis(250);

/// Something holding in-memory state that a reset must clear.
pub trait Resettable: Send + Sync {
    fn clear_memory(&self);
    fn name(&self) -> &'static str;
    fn rows(&self) -> usize;
}

pub struct Store {
    /// `None` with `--ephemeral`.
    disk: Option<Disk>,
    tables: Mutex<Vec<Weak<dyn Resettable>>>,
    /// Counts committed changes, so watchers (the dashboard's live updates) wake on any change
    /// without polling.
    changes: tokio::sync::watch::Sender<u64>,
}

/// The database file and its state after a failed write.
struct Disk {
    dir: PathBuf,
    /// `None` after a failed write closed it and reopening has not succeeded yet.
    db: RwLock<Option<Database>>,
    /// A write failed: redb refuses every later operation until the database is reopened.
    failed: AtomicBool,
    last_reopen: Mutex<Option<Instant>>,
    /// Why writes fail, while they do (for /_emulator/health).
    degraded: Mutex<Option<String>>,
}

/// What `/_emulator/health` says about the data dir.
#[derive(Debug, Clone, PartialEq)]
pub enum DiskHealth {
    Ok,
    /// Writes fail; the reason.
    Degraded(String),
}

/// A change to one row: `None` deletes it.
pub type Write = (String, Option<Vec<u8>>);

impl Store {
    /// Opens (or creates) the database in `dir`.
    pub fn open(dir: &Path) -> Result<Arc<Store>, StoreError> {
        std::fs::create_dir_all(dir).map_err(io_err)?;
        let db = open_db(dir)?;
        Ok(Arc::new(Store {
            disk: Some(Disk {
                dir: dir.to_path_buf(),
                db: RwLock::new(Some(db)),
                failed: AtomicBool::new(false),
                last_reopen: Mutex::new(None),
                degraded: Mutex::new(None),
            }),
            tables: Mutex::new(Vec::new()),
            changes: tokio::sync::watch::Sender::new(0),
        }))
    }

    /// A store that keeps nothing on disk (`--ephemeral`).
    pub fn memory() -> Arc<Store> {
        Arc::new(Store {
            disk: None,
            tables: Mutex::new(Vec::new()),
            changes: tokio::sync::watch::Sender::new(0),
        })
    }

    pub fn is_durable(&self) -> bool {
        self.disk.is_some()
    }

    /// Runs `f` on the open database, reopening it first when an earlier write failed (redb
    /// refuses everything after an I/O error until it is closed and opened again; opening
    /// recovers the last committed state). A disk error marks the store degraded.
    fn with_db<R>(
        &self,
        f: impl FnOnce(&Database) -> Result<R, StoreError>,
    ) -> Option<Result<R, StoreError>> {
        let disk = self.disk.as_ref()?;
        if disk.failed.load(Ordering::Acquire) {
            if let Err(e) = disk.reopen() {
                return Some(Err(e));
            }
        }
        let result = {
            let db = disk.db.read();
            match db.as_ref() {
                Some(db) => f(db),
                None => Err(StoreError::Disk(
                    "the database is closed after a failed write".into(),
                )),
            }
        };
        match &result {
            Err(StoreError::Disk(why)) => {
                disk.failed.store(true, Ordering::Release);
                let mut degraded = disk.degraded.lock();
                if degraded.is_none() {
                    tracing::error!(dir = %disk.dir.display(), error = %why, "the data dir refuses writes: writes answer ServiceUnavailable until it takes them again");
                }
                *degraded = Some(why.clone());
            }
            Ok(_) => disk.recovered(),
            Err(StoreError::Db(_)) => {}
        }
        Some(result)
    }

    /// Notes that writing to the data dir failed outside the database (a blob upload): health
    /// reports degraded until a write or a health check succeeds.
    pub fn note_disk_error(&self, what: &str, e: &std::io::Error) {
        if let Some(disk) = &self.disk {
            let why = format!("{what}: {}", describe_io(e));
            tracing::error!(dir = %disk.dir.display(), error = %why, "the data dir refuses writes");
            *disk.degraded.lock() = Some(why);
        }
    }

    /// Whether the data dir takes writes: while degraded, checks again (reopens the database,
    /// writes and syncs a small probe file), so health turns ok once space is freed.
    pub fn disk_health(&self) -> DiskHealth {
        let Some(disk) = &self.disk else {
            return DiskHealth::Ok;
        };
        if disk.degraded.lock().is_none() {
            return DiskHealth::Ok;
        }
        let probe = || -> Result<(), StoreError> {
            if disk.failed.load(Ordering::Acquire) {
                disk.reopen()?;
            }
            let path = disk.dir.join(".write-probe");
            let result = (|| {
                use std::io::Write;
                let mut f = std::fs::File::create(&path)?;
                f.write_all(&[0u8; 4096])?;
                f.sync_all()
            })();
            let _ = std::fs::remove_file(&path);
            result.map_err(io_err)
        };
        match probe() {
            Ok(()) => {
                disk.recovered();
                DiskHealth::Ok
            }
            Err(e) => {
                let why = match e {
                    StoreError::Disk(why) | StoreError::Db(why) => why,
                };
                *disk.degraded.lock() = Some(why.clone());
                DiskHealth::Degraded(why)
            }
        }
    }

    fn full_key(table: &str, key: &str) -> String {
        format!("{table}\0{key}")
    }

    /// Every row of a table, as stored.
    pub fn load(&self, table: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.with_db(|db| {
            let r = db.begin_read().map_err(db_err)?;
            let t = r.open_table(ROWS).map_err(db_err)?;
            let start = format!("{table}\0");
            let end = format!("{table}\u{1}");
            let mut rows = Vec::new();
            for item in t.range(start.as_str()..end.as_str()).map_err(db_err)? {
                let (k, v) = item.map_err(db_err)?;
                rows.push((k.value()[start.len()..].to_string(), v.value().to_vec()));
            }
            Ok(rows)
        })
        .unwrap_or_else(|| Ok(Vec::new()))
    }

    /// Commits changes to one table durably (fsync before returning), in one transaction.
    pub fn commit(&self, table: &str, writes: &[Write]) -> Result<(), StoreError> {
        self.commit_with(table, writes, true)
    }

    /// Commits changes to one table. `durable: false` queues the write for the disk without
    /// waiting for it: for what controllers observe (they observe it again after a crash), never
    /// for what an API call acknowledges.
    pub fn commit_with(
        &self,
        table: &str,
        writes: &[Write],
        durable: bool,
    ) -> Result<(), StoreError> {
        if writes.is_empty() {
            return Ok(());
        }
        // Counted before the write: a watcher that wakes early re-reads memory, which already
        // holds the change (tables update memory first and roll back on a failed commit).
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
        self.with_db(|db| {
            let mut w = db.begin_write().map_err(db_err)?;
            if !durable {
                w.set_durability(redb::Durability::Eventual);
            }
            {
                let mut t = w.open_table(ROWS).map_err(db_err)?;
                for (key, value) in writes {
                    let k = Self::full_key(table, key);
                    match value {
                        Some(v) => {
                            t.insert(k.as_str(), v.as_slice()).map_err(db_err)?;
                        }
                        None => {
                            t.remove(k.as_str()).map_err(db_err)?;
                        }
                    }
                }
            }
            w.commit().map_err(db_err)
        })
        .unwrap_or(Ok(()))
    }

    /// A receiver that sees the change counter move on every commit.
    pub fn watch_changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }

    pub(crate) fn register(&self, table: Weak<dyn Resettable>) {
        self.tables.lock().push(table);
    }

    /// Rows per table, for the control API.
    pub fn table_sizes(&self) -> Vec<(&'static str, usize)> {
        let tables = self.tables.lock();
        let mut sizes: Vec<(&'static str, usize)> = tables
            .iter()
            .filter_map(Weak::upgrade)
            .map(|t| (t.name(), t.rows()))
            .collect();
        sizes.sort_unstable();
        sizes
    }

    /// Drops all state, on disk and in every table.
    pub fn reset(&self) -> Result<(), StoreError> {
        self.with_db(|db| {
            let w = db.begin_write().map_err(db_err)?;
            w.delete_table(ROWS).map_err(db_err)?;
            w.open_table(ROWS).map_err(db_err)?;
            w.commit().map_err(db_err)
        })
        .unwrap_or(Ok(()))?;
        let mut tables = self.tables.lock();
        tables.retain(|t| t.strong_count() > 0);
        for t in tables.iter().filter_map(Weak::upgrade) {
            t.clear_memory();
        }
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
        Ok(())
    }
}

fn open_db(dir: &Path) -> Result<Database, StoreError> {
    let db = Database::create(dir.join("state.redb")).map_err(db_err)?;
    let w = db.begin_write().map_err(db_err)?;
    w.open_table(ROWS).map_err(db_err)?;
    w.commit().map_err(db_err)?;
    Ok(db)
}

impl Disk {
    /// Closes the failed database and opens it again (redb recovers the last commit), at most
    /// once per [`REOPEN_INTERVAL`].
    fn reopen(&self) -> Result<(), StoreError> {
        {
            let mut last = self.last_reopen.lock();
            if last.is_some_and(|t| t.elapsed() < REOPEN_INTERVAL) {
                let why = self
                    .degraded
                    .lock()
                    .clone()
                    .unwrap_or_else(|| "an earlier write failed".into());
                return Err(StoreError::Disk(why));
            }
            *last = Some(Instant::now());
        }
        let mut db = self.db.write();
        if !self.failed.load(Ordering::Acquire) {
            return Ok(()); // another writer reopened it meanwhile
        }
        // The old handle must be gone first: redb locks the file.
        drop(db.take());
        let opened = open_db(&self.dir)?;
        *db = Some(opened);
        self.failed.store(false, Ordering::Release);
        tracing::info!(dir = %self.dir.display(), "state database reopened after a failed write");
        Ok(())
    }

    fn recovered(&self) {
        let mut degraded = self.degraded.lock();
        if let Some(why) = degraded.take() {
            tracing::info!(dir = %self.dir.display(), was = %why, "the data dir takes writes again");
        }
    }
}
