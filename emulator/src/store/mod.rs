//! Durable state. Services keep their state in memory, in [`Table`]s; every acknowledged change is
//! first committed to an embedded database (redb) in the data dir, so it survives `kill -9`.
//! With `--ephemeral` there is no database and tables live in memory only.

mod table;

pub use table::{Table, Txn};

use parking_lot::Mutex;
use redb::{Database, TableDefinition};
use std::path::Path;
use std::sync::{Arc, Weak};

/// One redb table holds everything: the key is "<table>\0<row key>", the value the row's JSON.
const ROWS: TableDefinition<&str, &[u8]> = TableDefinition::new("rows");

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("state store: {0}")]
    Db(String),
}

fn db_err(e: impl std::fmt::Display) -> StoreError {
    StoreError::Db(e.to_string())
}

/// Something holding in-memory state that a reset must clear.
pub trait Resettable: Send + Sync {
    fn clear_memory(&self);
    fn name(&self) -> &'static str;
    fn rows(&self) -> usize;
}

pub struct Store {
    db: Option<Database>,
    tables: Mutex<Vec<Weak<dyn Resettable>>>,
    /// Counts committed changes, so watchers (the dashboard's live updates) wake on any change
    /// without polling.
    changes: tokio::sync::watch::Sender<u64>,
}

/// A change to one row: `None` deletes it.
pub type Write = (String, Option<Vec<u8>>);

impl Store {
    /// Opens (or creates) the database in `dir`.
    pub fn open(dir: &Path) -> Result<Arc<Store>, StoreError> {
        std::fs::create_dir_all(dir).map_err(db_err)?;
        let db = Database::create(dir.join("state.redb")).map_err(db_err)?;
        let w = db.begin_write().map_err(db_err)?;
        w.open_table(ROWS).map_err(db_err)?;
        w.commit().map_err(db_err)?;
        Ok(Arc::new(Store {
            db: Some(db),
            tables: Mutex::new(Vec::new()),
            changes: tokio::sync::watch::Sender::new(0),
        }))
    }

    /// A store that keeps nothing on disk (`--ephemeral`).
    pub fn memory() -> Arc<Store> {
        Arc::new(Store {
            db: None,
            tables: Mutex::new(Vec::new()),
            changes: tokio::sync::watch::Sender::new(0),
        })
    }

    pub fn is_durable(&self) -> bool {
        self.db.is_some()
    }

    fn full_key(table: &str, key: &str) -> String {
        format!("{table}\0{key}")
    }

    /// Every row of a table, as stored.
    pub fn load(&self, table: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let Some(db) = &self.db else {
            return Ok(Vec::new());
        };
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
        let Some(db) = &self.db else { return Ok(()) };
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
        if let Some(db) = &self.db {
            let w = db.begin_write().map_err(db_err)?;
            w.delete_table(ROWS).map_err(db_err)?;
            w.open_table(ROWS).map_err(db_err)?;
            w.commit().map_err(db_err)?;
        }
        let mut tables = self.tables.lock();
        tables.retain(|t| t.strong_count() > 0);
        for t in tables.iter().filter_map(Weak::upgrade) {
            t.clear_memory();
        }
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
        Ok(())
    }
}
