//! EC2 instance types: every type the EC2 model's InstanceType enum lists, with the vCPUs, memory,
//! architectures and network interface limits DescribeInstanceTypes gives. The table is generated
//! (`python3 emulator/models/instance_types.py`); a test fails when it no longer matches the model.

#[rustfmt::skip]
mod table;

/// One instance type, as DescribeInstanceTypes describes it (the members the emulator uses).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InstanceType {
    pub name: &'static str,
    pub vcpus: i64,
    pub cores: i64,
    pub threads_per_core: i64,
    pub memory_mib: i64,
    /// ProcessorInfo.SupportedArchitectures (i386, x86_64, arm64, x86_64_mac, arm64_mac).
    pub architectures: &'static [&'static str],
    pub manufacturer: &'static str,
    /// NetworkInfo.MaximumNetworkInterfaces.
    pub max_enis: i64,
    pub ipv4_per_eni: i64,
    pub ipv6_per_eni: i64,
    pub ipv6: bool,
    pub network_performance: &'static str,
    /// NetworkInfo.EnaSupport: unsupported, supported or required.
    pub ena: &'static str,
    pub current_generation: bool,
    pub free_tier: bool,
    pub burstable: bool,
    pub bare_metal: bool,
    /// "xen" or "nitro"; empty for bare metal.
    pub hypervisor: &'static str,
    pub instance_storage_gb: i64,
}

impl InstanceType {
    /// The architecture an instance of this type runs: x86_64 where supported (m1.small also
    /// runs i386), else the first listed.
    pub fn arch(&self) -> &'static str {
        if self.architectures.contains(&"x86_64") {
            "x86_64"
        } else {
            self.architectures.first().copied().unwrap_or("x86_64")
        }
    }

    pub fn supports(&self, arch: &str) -> bool {
        self.architectures.contains(&arch)
    }

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

/// RunInstances' InstanceType when the call names none (AWS's documented default).
pub const DEFAULT: &str = "m1.small";

pub fn lookup(name: &str) -> Option<InstanceType> {
    table::TYPES
        .binary_search_by(|t| t.name.cmp(name))
        .ok()
        .map(|i| table::TYPES[i])
}

/// Every known type, sorted by name.
pub fn all() -> &'static [InstanceType] {
    table::TYPES
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn registered_resources() {
        let m5 = lookup("m5.large").expect("m5.large");
        assert_eq!(m5.registered_cpu(), 2048);
        assert_eq!(m5.registered_memory(), 8192 - 491);
        assert_eq!(m5.max_enis, 3);
        assert_eq!(lookup("t3.nano").expect("nano").registered_memory(), 384);
        assert!(lookup("x9.huge").is_none());
        let small = lookup(DEFAULT).expect("the default type");
        assert_eq!((small.vcpus, small.memory_mib), (1, 1740));
        assert_eq!(small.arch(), "x86_64");
        assert_eq!(lookup("m6g.large").expect("graviton").arch(), "arm64");
    }

    /// Fails when the vendored model lists a type the table lacks, or the table one the model
    /// does not: regenerate with `python3 emulator/models/instance_types.py`.
    #[test]
    fn the_table_covers_the_model() {
        let model = crate::protocol::model::model("ec2").expect("ec2 model");
        let shape = model
            .shapes
            .get("InstanceType")
            .expect("InstanceType shape");
        let listed: BTreeSet<&str> = shape
            .enum_values
            .iter()
            .flatten()
            .map(String::as_str)
            .collect();
        let known: BTreeSet<&str> = all().iter().map(|t| t.name).collect();
        let missing: Vec<_> = listed.difference(&known).collect();
        let stale: Vec<_> = known.difference(&listed).collect();
        assert!(
            missing.is_empty() && stale.is_empty(),
            "instance type table is stale (run python3 emulator/models/instance_types.py): \
             missing {missing:?}, not in the model {stale:?}"
        );
        assert!(
            all().windows(2).all(|w| w[0].name < w[1].name),
            "sorted for binary search"
        );
        assert!(all()
            .iter()
            .all(|t| t.vcpus > 0 && t.memory_mib > 0 && t.max_enis > 0));
    }
}
