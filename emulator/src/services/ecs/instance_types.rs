//! EC2 instance types the emulator knows: vCPUs and memory, for registered resources.

/// (type, vCPU, memory MiB, architecture)
const TYPES: &[(&str, i64, i64, &str)] = &[
    ("t2.micro", 1, 1024, "x86_64"),
    ("t2.small", 1, 2048, "x86_64"),
    ("t2.medium", 2, 4096, "x86_64"),
    ("t2.large", 2, 8192, "x86_64"),
    ("t3.nano", 2, 512, "x86_64"),
    ("t3.micro", 2, 1024, "x86_64"),
    ("t3.small", 2, 2048, "x86_64"),
    ("t3.medium", 2, 4096, "x86_64"),
    ("t3.large", 2, 8192, "x86_64"),
    ("t3.xlarge", 4, 16384, "x86_64"),
    ("t3.2xlarge", 8, 32768, "x86_64"),
    ("t4g.micro", 2, 1024, "arm64"),
    ("t4g.small", 2, 2048, "arm64"),
    ("t4g.medium", 2, 4096, "arm64"),
    ("t4g.large", 2, 8192, "arm64"),
    ("t4g.xlarge", 4, 16384, "arm64"),
    ("m5.large", 2, 8192, "x86_64"),
    ("m5.xlarge", 4, 16384, "x86_64"),
    ("m5.2xlarge", 8, 32768, "x86_64"),
    ("m5.4xlarge", 16, 65536, "x86_64"),
    ("m6i.large", 2, 8192, "x86_64"),
    ("m6i.xlarge", 4, 16384, "x86_64"),
    ("m6i.2xlarge", 8, 32768, "x86_64"),
    ("m6g.large", 2, 8192, "arm64"),
    ("m6g.xlarge", 4, 16384, "arm64"),
    ("m7i.large", 2, 8192, "x86_64"),
    ("m7i.xlarge", 4, 16384, "x86_64"),
    ("m7g.large", 2, 8192, "arm64"),
    ("c5.large", 2, 4096, "x86_64"),
    ("c5.xlarge", 4, 8192, "x86_64"),
    ("c5.2xlarge", 8, 16384, "x86_64"),
    ("c6i.large", 2, 4096, "x86_64"),
    ("c6i.xlarge", 4, 8192, "x86_64"),
    ("c6g.large", 2, 4096, "arm64"),
    ("c7i.large", 2, 4096, "x86_64"),
    ("r5.large", 2, 16384, "x86_64"),
    ("r5.xlarge", 4, 32768, "x86_64"),
    ("r6i.large", 2, 16384, "x86_64"),
    ("r6i.xlarge", 4, 32768, "x86_64"),
    ("r6g.large", 2, 16384, "arm64"),
];

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InstanceType {
    pub name: &'static str,
    pub vcpus: i64,
    pub memory_mib: i64,
    pub arch: &'static str,
}

impl InstanceType {
    /// CPU units ECS registers: 1024 per vCPU.
    pub fn registered_cpu(&self) -> i64 {
        self.vcpus * 1024
    }

    /// Memory ECS registers: the instance's memory less what the OS, Docker and the agent take.
    /// Real instances register a little under their nominal memory (e.g. m5.large about 7.5 GiB);
    /// the emulator reserves 6 % (at least 128 MiB), which lands within a few percent of those figures.
    pub fn registered_memory(&self) -> i64 {
        self.memory_mib - (self.memory_mib * 6 / 100).max(128)
    }
}

pub fn lookup(name: &str) -> Option<InstanceType> {
    TYPES
        .iter()
        .find(|(n, ..)| *n == name)
        .map(|&(name, vcpus, memory_mib, arch)| InstanceType {
            name,
            vcpus,
            memory_mib,
            arch,
        })
}

pub fn names() -> impl Iterator<Item = &'static str> {
    TYPES.iter().map(|(n, ..)| *n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_resources() {
        let m5 = lookup("m5.large").expect("m5.large");
        assert_eq!(m5.registered_cpu(), 2048);
        assert_eq!(m5.registered_memory(), 8192 - 491);
        assert_eq!(lookup("t3.nano").expect("nano").registered_memory(), 384);
        assert!(lookup("x9.huge").is_none());
        assert!(names().count() > 30);
    }
}
