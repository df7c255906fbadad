//! SizeInBytes: metered from the backing directory, as EFS meters its storage.
//!
//! EFS meters a regular file by its size rounded up to 4 KiB, or by the space it really uses when
//! it is sparse and that is less; a directory, a symbolic link or another special file takes
//! 4 KiB; a file with several hard links is counted once. A measurement walks the directory, so
//! it is cached for a moment (EFS itself reports a measurement with its Timestamp, not a live
//! figure).

use parking_lot::Mutex;
use std::collections::{HashMap, HashSet};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

const BLOCK: u64 = 4096;
/// How long a measurement is reused (real time).
const FRESH_FOR: Duration = Duration::from_secs(1);
/// Entries walked at most per measurement (a bound on the time a Describe call may take).
const MAX_ENTRIES: usize = 2_000_000;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Size {
    pub value: u64,
    /// Emulated epoch seconds of the measurement.
    pub timestamp: f64,
}

#[derive(Default)]
pub struct SizeCache {
    measured: Mutex<HashMap<String, (Instant, Size)>>,
}

impl SizeCache {
    /// The file system's metered size, measured at most once per [`FRESH_FOR`].
    pub fn get(&self, id: &str, dir: &Path, now: f64) -> Size {
        if let Some((at, size)) = self.measured.lock().get(id) {
            if at.elapsed() < FRESH_FOR {
                return *size;
            }
        }
        let size = Size {
            value: metered(dir),
            timestamp: now.floor(),
        };
        self.measured
            .lock()
            .insert(id.to_string(), (Instant::now(), size));
        size
    }

    pub fn forget(&self, id: &str) {
        self.measured.lock().remove(id);
    }
}

fn round_up(n: u64) -> u64 {
    n.div_ceil(BLOCK) * BLOCK
}

/// The metered size of a directory tree (without following symbolic links).
pub fn metered(root: &Path) -> u64 {
    let mut total = 0u64;
    let mut seen: HashSet<(u64, u64)> = HashSet::new();
    let mut stack = vec![root.to_path_buf()];
    let mut entries = 0usize;
    while let Some(dir) = stack.pop() {
        let Ok(meta) = std::fs::symlink_metadata(&dir) else {
            continue;
        };
        total += entry_size(&meta);
        let Ok(read) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in read.flatten() {
            entries += 1;
            if entries > MAX_ENTRIES {
                return total;
            }
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                stack.push(entry.path());
                continue;
            }
            if meta.nlink() > 1 && !seen.insert((meta.dev(), meta.ino())) {
                continue;
            }
            total += entry_size(&meta);
        }
    }
    total
}

fn entry_size(meta: &std::fs::Metadata) -> u64 {
    if meta.is_file() {
        let logical = round_up(meta.len());
        let used = round_up(meta.blocks() * 512);
        logical.min(used)
    } else {
        BLOCK
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meters_files_directories_links_and_sparse_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        assert_eq!(metered(root), 4096, "an empty directory");
        std::fs::write(root.join("a"), vec![1u8; 10_000]).expect("write");
        std::fs::create_dir(root.join("d")).expect("mkdir");
        std::fs::write(root.join("d/b"), b"x").expect("write");
        std::os::unix::fs::symlink("a", root.join("l")).expect("symlink");
        std::fs::hard_link(root.join("a"), root.join("d/a2")).expect("link");
        // root 4096 + a 12288 + d 4096 + b 4096 + l 4096 (a2 is a's second name)
        assert_eq!(metered(root), 4096 + 12288 + 4096 + 4096 + 4096);
        // A 1 GiB sparse file uses almost nothing.
        let f = std::fs::File::create(root.join("sparse")).expect("create");
        f.set_len(1 << 30).expect("set_len");
        assert!(metered(root) < 1 << 20, "sparse files are metered by use");
        assert_eq!(metered(&root.join("missing")), 0);

        let cache = SizeCache::default();
        let s1 = cache.get("fs-1", root, 100.4);
        assert_eq!(s1.timestamp, 100.0);
        std::fs::write(root.join("c"), vec![1u8; 5000]).expect("write");
        assert_eq!(cache.get("fs-1", root, 100.5), s1, "cached for a moment");
        cache.forget("fs-1");
        assert_eq!(cache.get("fs-1", root, 101.0).value, s1.value + 8192);
    }
}
