//! A bounded record of what changed, by generation: lets a controller that last looked at
//! generation G ask which keys changed since, instead of reading everything again.

use std::collections::{HashSet, VecDeque};

/// How many changes a journal keeps; older ones are forgotten, and a reader that last looked
/// before them is told to read everything (`since` gives None).
pub const JOURNAL_CAPACITY: usize = 8192;

/// Changed keys, tagged with the generation of the change that wrote them, oldest first.
#[derive(Debug, Default)]
pub struct ChangeJournal {
    entries: VecDeque<(u64, String)>,
    /// Changes at or before this generation may be missing (forgotten, or a reset).
    complete_after: u64,
}

impl ChangeJournal {
    /// Records that `key` changed in the change of generation `generation`; generations only
    /// grow.
    pub fn push(&mut self, generation: u64, key: String) {
        if self.entries.len() == JOURNAL_CAPACITY {
            if let Some((g, _)) = self.entries.pop_front() {
                self.complete_after = self.complete_after.max(g);
            }
        }
        self.entries.push_back((generation, key));
    }

    /// Records `key`, when there is one.
    pub fn extend(&mut self, generation: u64, key: Option<String>) {
        if let Some(key) = key {
            self.push(generation, key);
        }
    }

    /// Everything up to `generation` is unknown from now on (a reset, or a change whose keys
    /// are not named).
    pub fn forget(&mut self, generation: u64) {
        self.entries.clear();
        self.complete_after = self.complete_after.max(generation);
    }

    /// The keys changed after `generation`, or None when the journal no longer reaches back
    /// that far (the reader must then assume that anything changed).
    pub fn since(&self, generation: u64) -> Option<HashSet<String>> {
        if generation < self.complete_after {
            return None;
        }
        // Entries are in generation order: walk back from the newest.
        Some(
            self.entries
                .iter()
                .rev()
                .take_while(|(g, _)| *g > generation)
                .map(|(_, k)| k.clone())
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(j: &ChangeJournal, since: u64) -> Option<Vec<String>> {
        j.since(since).map(|s| {
            let mut v: Vec<String> = s.into_iter().collect();
            v.sort();
            v
        })
    }

    #[test]
    fn names_what_changed_after_a_generation_until_it_is_forgotten() {
        let mut j = ChangeJournal::default();
        assert_eq!(keys(&j, 0), Some(vec![]));
        j.push(1, "a".into());
        j.push(2, "b".into());
        j.push(2, "c".into());
        assert_eq!(keys(&j, 0), Some(vec!["a".into(), "b".into(), "c".into()]));
        assert_eq!(keys(&j, 1), Some(vec!["b".into(), "c".into()]));
        assert_eq!(keys(&j, 2), Some(vec![]));
        j.forget(3);
        assert_eq!(keys(&j, 2), None, "a reset hides what came before");
        assert_eq!(keys(&j, 3), Some(vec![]));
    }

    #[test]
    fn a_reader_older_than_the_oldest_kept_change_reads_everything() {
        let mut j = ChangeJournal::default();
        for g in 1..=(JOURNAL_CAPACITY as u64 + 10) {
            j.push(g, format!("k{g}"));
        }
        // Generations 1..=10 were forgotten.
        assert_eq!(j.since(9), None);
        assert_eq!(j.since(10).map(|s| s.len()), Some(JOURNAL_CAPACITY));
        let last = JOURNAL_CAPACITY as u64 + 10;
        assert_eq!(keys(&j, last - 1), Some(vec![format!("k{last}")]));
    }
}
