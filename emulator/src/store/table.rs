//! A typed, durable, in-memory table of rows keyed by string.

use super::{Resettable, Store, Write};
use crate::protocol::AwsError;
use parking_lot::RwLock;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;

pub struct Table<T> {
    name: &'static str,
    store: Arc<Store>,
    rows: RwLock<BTreeMap<String, T>>,
}

impl<T> Resettable for Table<T>
where
    T: Send + Sync,
{
    fn clear_memory(&self) {
        self.rows.write().clear();
    }

    fn name(&self) -> &'static str {
        self.name
    }

    fn rows(&self) -> usize {
        self.rows.read().len()
    }
}

impl<T> Table<T>
where
    T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
{
    /// Opens a table and loads its rows from the store. A row that no longer deserializes
    /// (after an incompatible change of its type) is skipped with a warning.
    pub fn open(store: &Arc<Store>, name: &'static str) -> Arc<Table<T>> {
        let mut rows = BTreeMap::new();
        match store.load(name) {
            Ok(loaded) => {
                for (k, v) in loaded {
                    match serde_json::from_slice::<T>(&v) {
                        Ok(row) => {
                            rows.insert(k, row);
                        }
                        Err(e) => {
                            tracing::warn!(table = name, key = %k, error = %e, "skipping unreadable row")
                        }
                    }
                }
            }
            Err(e) => tracing::error!(table = name, error = %e, "could not load table"),
        }
        let table = Arc::new(Table {
            name,
            store: store.clone(),
            rows: RwLock::new(rows),
        });
        let weak: std::sync::Weak<dyn Resettable> =
            Arc::downgrade(&(table.clone() as Arc<dyn Resettable>));
        store.register(weak);
        table
    }

    pub fn get(&self, key: &str) -> Option<T> {
        self.rows.read().get(key).cloned()
    }

    pub fn contains(&self, key: &str) -> bool {
        self.rows.read().contains_key(key)
    }

    /// Rows whose key starts with `prefix`, in key order.
    pub fn scan(&self, prefix: &str) -> Vec<(String, T)> {
        self.rows
            .read()
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Reads under the lock without cloning every row.
    pub fn read<R>(&self, f: impl FnOnce(&BTreeMap<String, T>) -> R) -> R {
        f(&self.rows.read())
    }

    pub fn len(&self) -> usize {
        self.rows.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.read().is_empty()
    }

    /// Runs `f` with exclusive access; the rows it changed are committed durably before this
    /// returns. If `f` fails, or the commit does, memory is rolled back and nothing is kept.
    pub fn transact<R>(
        &self,
        f: impl FnOnce(&mut Txn<'_, T>) -> Result<R, AwsError>,
    ) -> Result<R, AwsError> {
        self.transact_with(true, f)
    }

    /// Like [`Table::transact`], but the commit does not wait for the disk: for state that
    /// controllers observe (and would observe again after a crash), not for acknowledged API calls.
    pub fn record<R>(
        &self,
        f: impl FnOnce(&mut Txn<'_, T>) -> Result<R, AwsError>,
    ) -> Result<R, AwsError> {
        self.transact_with(false, f)
    }

    fn transact_with<R>(
        &self,
        durable: bool,
        f: impl FnOnce(&mut Txn<'_, T>) -> Result<R, AwsError>,
    ) -> Result<R, AwsError> {
        let mut rows = self.rows.write();
        let mut txn = Txn {
            rows: &mut rows,
            undo: BTreeMap::new(),
        };
        let result = f(&mut txn);
        let undo = std::mem::take(&mut txn.undo);
        let rollback = |rows: &mut BTreeMap<String, T>, undo: BTreeMap<String, Option<T>>| {
            for (k, old) in undo {
                match old {
                    Some(v) => rows.insert(k, v),
                    None => rows.remove(&k),
                };
            }
        };
        match result {
            Ok(r) => {
                let mut writes: Vec<Write> = Vec::with_capacity(undo.len());
                for k in undo.keys() {
                    let value = match rows.get(k) {
                        Some(v) => Some(
                            serde_json::to_vec(v).map_err(|e| AwsError::internal(e.to_string()))?,
                        ),
                        None => None,
                    };
                    writes.push((k.clone(), value));
                }
                if let Err(e) = self.store.commit_with(self.name, &writes, durable) {
                    tracing::error!(table = self.name, error = %e, "commit failed; change rolled back");
                    rollback(&mut rows, undo);
                    return Err(AwsError::internal("The change could not be saved durably"));
                }
                Ok(r)
            }
            Err(e) => {
                rollback(&mut rows, undo);
                Err(e)
            }
        }
    }

    /// Inserts or replaces one row.
    pub fn put(&self, key: &str, value: T) -> Result<(), AwsError> {
        self.transact(|t| {
            t.put(key, value);
            Ok(())
        })
    }

    /// Removes one row; returns it.
    pub fn remove(&self, key: &str) -> Result<Option<T>, AwsError> {
        self.transact(|t| Ok(t.remove(key)))
    }
}

/// Exclusive access to a table inside [`Table::transact`]; records what changed.
pub struct Txn<'a, T> {
    rows: &'a mut BTreeMap<String, T>,
    /// The value before the first change of each touched key (None: it did not exist).
    undo: BTreeMap<String, Option<T>>,
}

impl<T: Clone> Txn<'_, T> {
    fn touch(&mut self, key: &str) {
        if !self.undo.contains_key(key) {
            self.undo
                .insert(key.to_string(), self.rows.get(key).cloned());
        }
    }

    pub fn get(&self, key: &str) -> Option<&T> {
        self.rows.get(key)
    }

    pub fn contains(&self, key: &str) -> bool {
        self.rows.contains_key(key)
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut T> {
        if self.rows.contains_key(key) {
            self.touch(key);
        }
        self.rows.get_mut(key)
    }

    pub fn put(&mut self, key: &str, value: T) {
        self.touch(key);
        self.rows.insert(key.to_string(), value);
    }

    pub fn remove(&mut self, key: &str) -> Option<T> {
        if self.rows.contains_key(key) {
            self.touch(key);
        }
        self.rows.remove(key)
    }

    /// Keys with this prefix.
    pub fn keys(&self, prefix: &str) -> Vec<String> {
        self.rows
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, _)| k.clone())
            .collect()
    }

    pub fn rows(&self) -> &BTreeMap<String, T> {
        self.rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_survive_reopening_and_failed_transactions_leave_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let store = Store::open(dir.path()).expect("open");
            let t: Arc<Table<u32>> = Table::open(&store, "nums");
            t.put("a/1", 1).expect("put");
            t.put("a/2", 2).expect("put");
            t.put("b/1", 3).expect("put");
            t.remove("a/2").expect("remove");
            let failed: Result<(), AwsError> = t.transact(|tx| {
                tx.put("a/3", 9);
                tx.remove("a/1");
                Err(AwsError::new("Nope", "no"))
            });
            assert!(failed.is_err());
            assert_eq!(t.get("a/1"), Some(1));
            assert_eq!(t.get("a/3"), None);
        }
        let store = Store::open(dir.path()).expect("reopen");
        let t: Arc<Table<u32>> = Table::open(&store, "nums");
        assert_eq!(t.scan("a/"), vec![("a/1".to_string(), 1)]);
        assert_eq!(t.get("b/1"), Some(3));
        store.reset().expect("reset");
        assert!(t.is_empty());
        let store2 = Store::open(&dir.path().join("other")).expect("other");
        assert!(Table::<u32>::open(&store2, "nums").is_empty());
    }
}
