//! A container's CPU time and memory read straight from its cgroup's accounting files: a few
//! small reads per container instead of one Docker stats call (which samples for a second).
//!
//! Layouts found (the first whose directory exists wins, remembered per container):
//! - cgroup v1, Docker's cgroupfs driver: `<root>/cpuacct/docker/<id>/cpuacct.usage` (also
//!   mounted as `cpu,cpuacct` or `cpuacct,cpu`), `<root>/memory/docker/<id>/memory.usage_in_bytes`;
//! - cgroup v1, systemd driver: the same controllers with `system.slice/docker-<id>.scope`;
//! - cgroup v2 (unified), systemd driver: `<root>/system.slice/docker-<id>.scope/cpu.stat`
//!   (`usage_usec`), `memory.current`; cgroupfs driver: `<root>/docker/<id>/…`.
//!
//! Memory is what Docker's `stats` reports as usage: the charge less inactive page cache
//! (`total_inactive_file` in v1's memory.stat, `inactive_file` in v2's).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// One reading of a container.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Usage {
    /// CPU time used since the container started, in nanoseconds.
    pub cpu_ns: u64,
    /// Memory in use now, in bytes.
    pub memory_bytes: u64,
}

/// Where one container's accounting files are.
#[derive(Debug, Clone, PartialEq)]
enum Files {
    V1 { cpu: PathBuf, memory: PathBuf },
    V2 { dir: PathBuf },
}

/// Reads containers' cgroups under a root (`/sys/fs/cgroup` on a host).
#[derive(Debug)]
pub struct Cgroups {
    root: PathBuf,
    found: HashMap<String, Files>,
}

impl Default for Cgroups {
    fn default() -> Self {
        Cgroups::new("/sys/fs/cgroup")
    }
}

const V1_CPU: [&str; 3] = ["cpuacct", "cpu,cpuacct", "cpuacct,cpu"];

/// The directory names a container's cgroup has under a controller, by driver.
fn leaf_names(id: &str) -> [String; 2] {
    [
        format!("docker/{id}"),
        format!("system.slice/docker-{id}.scope"),
    ]
}

impl Cgroups {
    pub fn new(root: impl Into<PathBuf>) -> Cgroups {
        Cgroups {
            root: root.into(),
            found: HashMap::new(),
        }
    }

    /// Reads a container by its full Docker id; None when no layout has it (not running, or
    /// cgroups not visible here).
    pub fn read(&mut self, id: &str) -> Option<Usage> {
        if !is_container_id(id) {
            return None;
        }
        let files = match self.found.get(id) {
            Some(f) => f.clone(),
            None => {
                let f = self.locate(id)?;
                self.found.insert(id.to_string(), f.clone());
                f
            }
        };
        let usage = read_files(&files);
        if usage.is_none() {
            // Gone (the container stopped): look again next time.
            self.found.remove(id);
        }
        usage
    }

    /// Forgets containers not in `live` (their cgroups are gone).
    pub fn retain(&mut self, live: &std::collections::HashSet<&str>) {
        self.found.retain(|id, _| live.contains(id.as_str()));
    }

    fn locate(&self, id: &str) -> Option<Files> {
        let leaves = leaf_names(id);
        // cgroup v2: one hierarchy with cgroup.controllers at its root.
        if self.root.join("cgroup.controllers").is_file() {
            return leaves
                .iter()
                .map(|l| self.root.join(l))
                .find(|d| d.join("cpu.stat").is_file())
                .map(|dir| Files::V2 { dir });
        }
        for leaf in &leaves {
            let memory = self.root.join("memory").join(leaf);
            if !memory.join("memory.usage_in_bytes").is_file() {
                continue;
            }
            if let Some(cpu) = V1_CPU
                .iter()
                .map(|c| self.root.join(c).join(leaf))
                .find(|d| d.join("cpuacct.usage").is_file())
            {
                return Some(Files::V1 { cpu, memory });
            }
        }
        None
    }
}

/// Docker ids are 64 hex digits; anything else must not become a path.
fn is_container_id(id: &str) -> bool {
    id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

fn read_files(files: &Files) -> Option<Usage> {
    match files {
        Files::V1 { cpu, memory } => {
            let cpu_ns = read_u64(&cpu.join("cpuacct.usage"))?;
            let charged = read_u64(&memory.join("memory.usage_in_bytes"))?;
            let stat = std::fs::read_to_string(memory.join("memory.stat")).unwrap_or_default();
            let inactive = stat_field(&stat, "total_inactive_file").unwrap_or(0);
            Some(Usage {
                cpu_ns,
                memory_bytes: charged.saturating_sub(inactive),
            })
        }
        Files::V2 { dir } => {
            let cpu = std::fs::read_to_string(dir.join("cpu.stat")).ok()?;
            let cpu_ns = stat_field(&cpu, "usage_usec")?.saturating_mul(1000);
            let charged = read_u64(&dir.join("memory.current"))?;
            let stat = std::fs::read_to_string(dir.join("memory.stat")).unwrap_or_default();
            let inactive = stat_field(&stat, "inactive_file").unwrap_or(0);
            Some(Usage {
                cpu_ns,
                memory_bytes: charged.saturating_sub(inactive),
            })
        }
    }
}

fn read_u64(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// `<name> <value>` lines (memory.stat, cpu.stat).
fn stat_field(text: &str, name: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == name).then(|| v.trim().parse().ok()).flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn write(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    }

    #[test]
    fn v1_cgroupfs_with_separate_controllers() {
        let root = tempfile::tempdir().expect("tmp");
        let r = root.path();
        write(
            &r.join(format!("cpuacct/docker/{ID}/cpuacct.usage")),
            "1500\n",
        );
        write(
            &r.join(format!("memory/docker/{ID}/memory.usage_in_bytes")),
            "10000\n",
        );
        write(
            &r.join(format!("memory/docker/{ID}/memory.stat")),
            "cache 5000\ninactive_file 3000\ntotal_inactive_file 4000\n",
        );
        let mut c = Cgroups::new(r);
        assert_eq!(
            c.read(ID),
            Some(Usage {
                cpu_ns: 1500,
                memory_bytes: 6000
            })
        );
        // The file changes: the next read sees it (the path is cached, not the value).
        write(
            &r.join(format!("cpuacct/docker/{ID}/cpuacct.usage")),
            "2500\n",
        );
        assert_eq!(c.read(ID).map(|u| u.cpu_ns), Some(2500));
    }

    #[test]
    fn v1_systemd_with_the_combined_cpu_controller() {
        let root = tempfile::tempdir().expect("tmp");
        let r = root.path();
        let leaf = format!("system.slice/docker-{ID}.scope");
        write(&r.join(format!("cpu,cpuacct/{leaf}/cpuacct.usage")), "42");
        write(&r.join(format!("memory/{leaf}/memory.usage_in_bytes")), "7");
        let mut c = Cgroups::new(r);
        assert_eq!(
            c.read(ID),
            Some(Usage {
                cpu_ns: 42,
                memory_bytes: 7
            })
        );
    }

    #[test]
    fn v2_systemd_and_cgroupfs() {
        for leaf in [
            format!("system.slice/docker-{ID}.scope"),
            format!("docker/{ID}"),
        ] {
            let root = tempfile::tempdir().expect("tmp");
            let r = root.path();
            write(&r.join("cgroup.controllers"), "cpu memory io\n");
            write(
                &r.join(format!("{leaf}/cpu.stat")),
                "usage_usec 2000\nuser_usec 1500\nsystem_usec 500\n",
            );
            write(&r.join(format!("{leaf}/memory.current")), "9000\n");
            write(
                &r.join(format!("{leaf}/memory.stat")),
                "anon 4000\nfile 5000\nactive_file 1000\ninactive_file 4000\n",
            );
            let mut c = Cgroups::new(r);
            assert_eq!(
                c.read(ID),
                Some(Usage {
                    cpu_ns: 2_000_000,
                    memory_bytes: 5000
                }),
                "{leaf}"
            );
        }
    }

    #[test]
    fn unknown_or_odd_ids_read_nothing() {
        let root = tempfile::tempdir().expect("tmp");
        let mut c = Cgroups::new(root.path());
        assert_eq!(c.read(ID), None);
        assert_eq!(c.read("../../etc"), None);
        assert_eq!(c.read(""), None);
    }

    #[test]
    fn a_container_that_goes_away_is_forgotten() {
        let root = tempfile::tempdir().expect("tmp");
        let r = root.path();
        write(&r.join(format!("cpuacct/docker/{ID}/cpuacct.usage")), "1");
        write(
            &r.join(format!("memory/docker/{ID}/memory.usage_in_bytes")),
            "1",
        );
        let mut c = Cgroups::new(r);
        assert!(c.read(ID).is_some());
        std::fs::remove_dir_all(r.join("cpuacct/docker")).expect("rm");
        assert_eq!(c.read(ID), None);
        assert!(c.found.is_empty());
    }
}
