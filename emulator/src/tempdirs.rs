//! Directories an `--ephemeral` emulator keeps under the system's temporary directory (ECR's
//! blobs, EFS's file system data and mounts). Each is named `<prefix><pid>-<uuid>`, so that a
//! later emulator can tell the directories of processes that are gone (killed with SIGKILL, so
//! they never removed their own) and remove them before it makes its own.

use std::path::{Path, PathBuf};

/// A fresh path `<temp dir>/<prefix><pid>-<uuid>` (not created), after removing the
/// directories with the same prefix whose process no longer runs.
pub fn fresh(prefix: &str) -> PathBuf {
    let tmp = std::env::temp_dir();
    sweep_dead(&tmp, prefix);
    tmp.join(format!(
        "{prefix}{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ))
}

/// Removes `<dir>/<prefix><pid>-<id>` of every pid that no longer runs.
pub fn sweep_dead(dir: &Path, prefix: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(prefix)
            .and_then(|rest| rest.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            remove(&e.path());
        }
    }
}

/// Removes a directory tree, saying why when it cannot (a missing one is fine).
pub fn remove(dir: &Path) {
    if let Err(e) = std::fs::remove_dir_all(dir) {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot remove a temporary directory");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_of_dead_processes_are_swept_and_others_kept() {
        let dir = tempfile::tempdir().expect("dir");
        let prefix = "ecs-emulator-test-";
        let dead = dir.path().join(format!("{prefix}4194399-abc"));
        let alive = dir.path().join(format!("{prefix}1-abc"));
        let mine = dir
            .path()
            .join(format!("{prefix}{}-abc", std::process::id()));
        let other_prefix = dir.path().join("ecs-emulator-other-4194399-abc");
        for d in [&dead, &alive, &mine, &other_prefix] {
            std::fs::create_dir_all(d.join("uploads")).expect("mkdir");
        }
        sweep_dead(dir.path(), prefix);
        assert!(!dead.exists());
        assert!(alive.exists());
        assert!(mine.exists());
        assert!(other_prefix.exists());
    }

    #[test]
    fn fresh_paths_name_this_process_and_differ() {
        let a = fresh("ecs-emulator-test-");
        let b = fresh("ecs-emulator-test-");
        assert_ne!(a, b);
        let name = a.file_name().expect("name").to_string_lossy().into_owned();
        assert!(
            name.starts_with(&format!("ecs-emulator-test-{}-", std::process::id())),
            "{name}"
        );
        assert!(!a.exists());
    }
}
