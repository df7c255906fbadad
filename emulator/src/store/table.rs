//! A typed, durable, in-memory table of rows keyed by string.

use super::journal::ChangeJournal;
use super::{Resettable, Store, StoreError, Write};
use parking_lot::RwLock;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// A secondary index's key for a row (given the row's key), or None to leave the row out.
pub type IndexFn<T> = fn(&str, &T) -> Option<String>;

/// The entries of a table's secondary index: (index key, row key), in that order.
pub type Index = BTreeSet<(String, String)>;

pub struct Table<T> {
    name: &'static str,
    store: Arc<Store>,
    rows: RwLock<Rows<T>>,
    index_fn: Option<IndexFn<T>>,
    /// Moves on with every committed change of a row (and every reset): equal generations mean
    /// no row changed in between.
    generation: std::sync::atomic::AtomicU64,
}

/// The rows, the secondary index and the change journal, under one lock so they never
/// disagree.
struct Rows<T> {
    map: BTreeMap<String, T>,
    index: Index,
    /// The keys of changed rows, and the index keys they had before and after the change.
    journal: ChangeJournal,
}

impl<T> std::ops::Deref for Rows<T> {
    type Target = BTreeMap<String, T>;
    fn deref(&self) -> &BTreeMap<String, T> {
        &self.map
    }
}

impl<T> Resettable for Table<T>
where
    T: Send + Sync,
{
    fn clear_memory(&self) {
        let mut rows = self.rows.write();
        rows.map.clear();
        rows.index.clear();
        let generation = self
            .generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            + 1;
        rows.journal.forget(generation);
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
        Self::open_with(store, name, None)
    }

    /// Opens a table that keeps a secondary index: `index` names each row's index key, and
    /// [`Table::by_index`] / [`Table::read_index`] find rows by it without a scan.
    pub fn open_indexed(
        store: &Arc<Store>,
        name: &'static str,
        index: IndexFn<T>,
    ) -> Arc<Table<T>> {
        Self::open_with(store, name, Some(index))
    }

    fn open_with(
        store: &Arc<Store>,
        name: &'static str,
        index_fn: Option<IndexFn<T>>,
    ) -> Arc<Table<T>> {
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
        let index = match index_fn {
            Some(f) => rows
                .iter()
                .filter_map(|(k, v)| f(k, v).map(|i| (i, k.clone())))
                .collect(),
            None => Index::new(),
        };
        let table = Arc::new(Table {
            name,
            store: store.clone(),
            rows: RwLock::new(Rows {
                map: rows,
                index,
                journal: ChangeJournal::default(),
            }),
            index_fn,
            generation: std::sync::atomic::AtomicU64::new(0),
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
        f(&self.rows.read().map)
    }

    /// The rows whose index key is `index_key`, in row key order (a table opened without an
    /// index has none).
    pub fn by_index(&self, index_key: &str) -> Vec<(String, T)> {
        let rows = self.rows.read();
        rows.index
            .range((index_key.to_string(), String::new())..)
            .take_while(|(i, _)| i == index_key)
            .filter_map(|(_, k)| rows.map.get(k).map(|v| (k.clone(), v.clone())))
            .collect()
    }

    /// Reads the secondary index and the rows together, under the lock.
    pub fn read_index<R>(&self, f: impl FnOnce(&Index, &BTreeMap<String, T>) -> R) -> R {
        let rows = self.rows.read();
        f(&rows.index, &rows.map)
    }

    pub fn len(&self) -> usize {
        self.rows.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.read().is_empty()
    }

    /// Runs `f` with exclusive access; the rows it changed are committed durably before this
    /// returns. If `f` fails, or the commit does, memory is rolled back and nothing is kept.
    /// `f`'s error type is the caller's (an API handler's `AwsError`); the store's own failure
    /// reaches it through `From<StoreError>`, so the store names no protocol type.
    pub fn transact<R, E, F>(&self, f: F) -> Result<R, E>
    where
        E: From<StoreError>,
        F: FnOnce(&mut Txn<'_, T>) -> Result<R, E>,
    {
        self.transact_with(true, f)
    }

    /// Like [`Table::transact`], but the commit does not wait for the disk: for state that
    /// controllers observe (and would observe again after a crash), not for acknowledged API calls.
    pub fn record<R, E, F>(&self, f: F) -> Result<R, E>
    where
        E: From<StoreError>,
        F: FnOnce(&mut Txn<'_, T>) -> Result<R, E>,
    {
        self.transact_with(false, f)
    }

    fn transact_with<R, E: From<StoreError>>(
        &self,
        durable: bool,
        f: impl FnOnce(&mut Txn<'_, T>) -> Result<R, E>,
    ) -> Result<R, E> {
        let mut guard = self.rows.write();
        let Rows {
            map: rows,
            index,
            journal,
        } = &mut *guard;
        let mut txn = Txn {
            rows: &mut *rows,
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
                let encoded = changed_rows(rows, &undo);
                let writes = match encoded {
                    Ok(writes) => writes,
                    Err(e) => {
                        tracing::error!(table = self.name, error = %e, "a row cannot be encoded; change rolled back");
                        rollback(rows, undo);
                        return Err(StoreError::Db(format!("cannot encode a row: {e}")).into());
                    }
                };
                if let Err(e) = self.store.commit_with(self.name, &writes, durable) {
                    tracing::error!(table = self.name, error = %e, "commit failed; change rolled back");
                    rollback(rows, undo);
                    return Err(e.into());
                }
                if !writes.is_empty() {
                    let generation = self
                        .generation
                        .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
                        + 1;
                    for (k, _) in &writes {
                        journal.push(generation, k.clone());
                        let Some(f) = self.index_fn else { continue };
                        let before = undo.get(k).and_then(Option::as_ref).and_then(|v| f(k, v));
                        let after = rows.get(k).and_then(|v| f(k, v));
                        if before != after {
                            journal.extend(generation, before);
                        }
                        journal.extend(generation, after);
                    }
                }
                if let Some(f) = self.index_fn {
                    for (k, old) in &undo {
                        let before = old.as_ref().and_then(|v| f(k, v));
                        let after = rows.get(k).and_then(|v| f(k, v));
                        if before != after {
                            if let Some(i) = before {
                                index.remove(&(i, k.clone()));
                            }
                            if let Some(i) = after {
                                index.insert((i, k.clone()));
                            }
                        }
                    }
                }
                Ok(r)
            }
            Err(e) => {
                rollback(rows, undo);
                Err(e)
            }
        }
    }

    /// The table's write generation: it moves on with every committed change of a row, so two
    /// equal readings mean nothing was written in between (a transaction that left its rows as
    /// they were does not count).
    pub fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The keys of the rows changed after generation `generation` (see [`Table::generation`]),
    /// with the index keys those rows had before and after each change; None when the table's
    /// journal no longer reaches back that far (or a reset came in between): then anything may
    /// have changed.
    pub fn changes_since(&self, generation: u64) -> Option<std::collections::HashSet<String>> {
        self.rows.read().journal.since(generation)
    }

    /// Inserts or replaces one row.
    pub fn put(&self, key: &str, value: T) -> Result<(), StoreError> {
        self.transact(|t| {
            t.put(key, value);
            Ok(())
        })
    }

    /// Removes one row; returns it.
    pub fn remove(&self, key: &str) -> Result<Option<T>, StoreError> {
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

/// The writes of a committed transaction: each row it touched, encoded, except the rows that
/// encode exactly as before (a row read for writing and left as it was, as the service scheduler
/// does with every steady service on every pass, writes nothing and wakes no watcher).
fn changed_rows<T: Serialize>(
    rows: &BTreeMap<String, T>,
    undo: &BTreeMap<String, Option<T>>,
) -> Result<Vec<Write>, serde_json::Error> {
    let mut writes = Vec::new();
    for (k, old) in undo {
        let new = rows.get(k).map(serde_json::to_vec).transpose()?;
        let before = old.as_ref().map(serde_json::to_vec).transpose()?;
        if new != before {
            writes.push((k.clone(), new));
        }
    }
    Ok(writes)
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
            let failed: Result<(), crate::protocol::AwsError> = t.transact(|tx| {
                tx.put("a/3", 9);
                tx.remove("a/1");
                Err(crate::protocol::AwsError::new(
                    crate::protocol::codes::common::ValidationException,
                    "no",
                ))
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

    #[test]
    fn a_transaction_that_changes_nothing_writes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        let t: Arc<Table<u32>> = Table::open(&store, "nums");
        t.put("a/1", 1).expect("put");
        let changes = store.watch_changes();
        let before = *changes.borrow();
        t.record::<_, StoreError, _>(|tx| {
            if let Some(v) = tx.get_mut("a/1") {
                *v = 1;
            }
            tx.put("a/1", 1);
            Ok(())
        })
        .expect("no-op");
        assert_eq!(*changes.borrow(), before, "an unchanged row is not written");
        let generation = t.generation();
        t.record::<_, StoreError, _>(|tx| {
            if let Some(v) = tx.get_mut("a/1") {
                *v = 2;
            }
            Ok(())
        })
        .expect("change");
        assert_eq!(*changes.borrow(), before.wrapping_add(1));
        assert_eq!(t.generation(), generation + 1);
        drop((changes, t, store));
        let store = Store::open(dir.path()).expect("reopen");
        let reopened: Arc<Table<u32>> = Table::open(&store, "nums");
        assert_eq!(reopened.get("a/1"), Some(2));
    }

    #[test]
    fn changes_since_names_changed_rows_and_their_index_keys_before_and_after() {
        let store = Store::memory();
        let t: Arc<Table<u32>> = Table::open_indexed(&store, "nums", parity);
        t.put("a/1", 1).expect("put");
        let g = t.generation();
        t.put("a/1", 1).expect("unchanged");
        assert_eq!(
            t.changes_since(g),
            Some(Default::default()),
            "nothing written"
        );
        t.put("a/1", 2).expect("odd to even");
        t.put("b/7", 7).expect("new");
        let mut changed: Vec<String> = t.changes_since(g).expect("kept").into_iter().collect();
        changed.sort();
        assert_eq!(changed, ["a/1", "a/even", "a/odd", "b/7", "b/odd"]);
        let g = t.generation();
        t.remove("b/7").expect("remove");
        let mut changed: Vec<String> = t.changes_since(g).expect("kept").into_iter().collect();
        changed.sort();
        assert_eq!(changed, ["b/7", "b/odd"]);
        let g = t.generation();
        store.reset().expect("reset");
        assert_eq!(
            t.changes_since(g),
            None,
            "a reset may have changed anything"
        );
        assert_eq!(t.changes_since(t.generation()), Some(Default::default()));
    }

    /// Index key: the row key's first segment and the value's parity.
    fn parity(key: &str, v: &u32) -> Option<String> {
        let (group, _) = key.split_once('/')?;
        (*v != 0).then(|| {
            format!(
                "{group}/{}",
                if v.is_multiple_of(2) { "even" } else { "odd" }
            )
        })
    }

    fn indexed(t: &Table<u32>, index_key: &str) -> Vec<(String, u32)> {
        t.by_index(index_key)
    }

    #[test]
    fn the_secondary_index_follows_puts_updates_removes_rollbacks_reopens_and_resets() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        let t: Arc<Table<u32>> = Table::open_indexed(&store, "nums", parity);
        t.put("a/1", 1).expect("put");
        t.put("a/2", 2).expect("put");
        t.put("a/3", 3).expect("put");
        t.put("b/1", 5).expect("put");
        t.put("a/0", 0).expect("put"); // no index key: left out
        let odd = |t: &Table<u32>| indexed(t, "a/odd");
        assert_eq!(odd(&t), vec![("a/1".into(), 1), ("a/3".into(), 3)]);
        assert_eq!(indexed(&t, "a/even"), vec![("a/2".into(), 2)]);
        assert_eq!(indexed(&t, "b/odd"), vec![("b/1".into(), 5)]);
        // An update that changes the index key moves the row; one that does not keeps it.
        t.transact::<_, StoreError, _>(|tx| {
            if let Some(v) = tx.get_mut("a/1") {
                *v = 4;
            }
            if let Some(v) = tx.get_mut("a/3") {
                *v = 7;
            }
            Ok(())
        })
        .expect("update");
        assert_eq!(odd(&t), vec![("a/3".into(), 7)]);
        assert_eq!(
            indexed(&t, "a/even"),
            vec![("a/1".into(), 4), ("a/2".into(), 2)]
        );
        t.remove("a/2").expect("remove");
        assert_eq!(indexed(&t, "a/even"), vec![("a/1".into(), 4)]);
        // A failed transaction changes neither rows nor index.
        let failed: Result<(), crate::protocol::AwsError> = t.transact(|tx| {
            tx.put("a/9", 9);
            tx.remove("a/3");
            Err(crate::protocol::AwsError::new(
                crate::protocol::codes::common::ValidationException,
                "no",
            ))
        });
        assert!(failed.is_err());
        assert_eq!(odd(&t), vec![("a/3".into(), 7)]);
        // read_index sees entries in (index key, row key) order.
        let all = t.read_index(|index, rows| {
            index
                .iter()
                .map(|(i, k)| format!("{i}={}", rows[k]))
                .collect::<Vec<_>>()
        });
        assert_eq!(all, vec!["a/even=4", "a/odd=7", "b/odd=5"]);
        drop(t);
        // Reopening rebuilds the index from the stored rows; a reset empties it.
        let t: Arc<Table<u32>> = Table::open_indexed(&store, "nums", parity);
        assert_eq!(odd(&t), vec![("a/3".into(), 7)]);
        assert_eq!(indexed(&t, "a/even"), vec![("a/1".into(), 4)]);
        store.reset().expect("reset");
        assert!(indexed(&t, "b/odd").is_empty());
        t.put("b/3", 3).expect("put");
        assert_eq!(indexed(&t, "b/odd"), vec![("b/3".into(), 3)]);
    }
}
