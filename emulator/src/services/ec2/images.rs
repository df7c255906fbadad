//! The ECS-optimized AMIs EC2 knows (DescribeImages). The same table feeds SSM's public
//! parameters (/aws/service/ecs/optimized-ami/...), so ids agree across the two services.

use super::filters::{bool_str, dry_run, err, filter_all, paginate, parse_filters, Filterable};
use super::state::State;
use crate::protocol::AwsError;
use crate::services::input::Input;
use crate::services::{Ctx, HandlerResult};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// The account that owns Amazon's public AMIs (alias "amazon").
pub const AMAZON_OWNER_ID: &str = "591542846629";

/// One ECS-optimized AMI, the same in every region except for its id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EcsAmi {
    /// "amazon-linux-2023" or "amazon-linux-2".
    pub family: &'static str,
    /// "Amazon Linux 2023", "Amazon Linux 2".
    pub os: &'static str,
    /// "x86_64" or "arm64".
    pub architecture: &'static str,
    pub name: &'static str,
    pub image_version: &'static str,
    pub ecs_agent_version: &'static str,
    pub ecs_runtime_version: &'static str,
    pub source_image_name: &'static str,
    pub description: &'static str,
    /// ISO 8601, as DescribeImages reports it.
    pub creation_date: &'static str,
    pub deprecation_time: &'static str,
    /// The public SSM parameter path of this AMI's "recommended" metadata.
    pub ssm_path: &'static str,
}

pub const ECS_OPTIMIZED_AMIS: &[EcsAmi] = &[
    EcsAmi {
        family: "amazon-linux-2023",
        os: "Amazon Linux 2023",
        architecture: "x86_64",
        name: "al2023-ami-ecs-hvm-2023.0.20261120-kernel-6.1-x86_64",
        image_version: "2023.0.20261120",
        ecs_agent_version: "1.101.0",
        ecs_runtime_version: "Docker version 25.0.8",
        source_image_name: "al2023-ami-minimal-2023.9.20261117.0-kernel-6.1-x86_64",
        description: "Amazon Linux AMI 2023.0.20261120 x86_64 ECS HVM EBS",
        creation_date: "2026-11-20T18:32:41.000Z",
        deprecation_time: "2028-11-20T18:32:41.000Z",
        ssm_path: "/aws/service/ecs/optimized-ami/amazon-linux-2023/recommended",
    },
    EcsAmi {
        family: "amazon-linux-2023",
        os: "Amazon Linux 2023",
        architecture: "arm64",
        name: "al2023-ami-ecs-hvm-2023.0.20261120-kernel-6.1-arm64",
        image_version: "2023.0.20261120",
        ecs_agent_version: "1.101.0",
        ecs_runtime_version: "Docker version 25.0.8",
        source_image_name: "al2023-ami-minimal-2023.9.20261117.0-kernel-6.1-arm64",
        description: "Amazon Linux AMI 2023.0.20261120 arm64 ECS HVM EBS",
        creation_date: "2026-11-20T18:35:02.000Z",
        deprecation_time: "2028-11-20T18:35:02.000Z",
        ssm_path: "/aws/service/ecs/optimized-ami/amazon-linux-2023/arm64/recommended",
    },
    EcsAmi {
        family: "amazon-linux-2",
        os: "Amazon Linux 2",
        architecture: "x86_64",
        name: "amzn2-ami-ecs-hvm-2.0.20261120-x86_64-ebs",
        image_version: "2.0.20261120",
        ecs_agent_version: "1.101.0",
        ecs_runtime_version: "Docker version 25.0.8",
        source_image_name: "amzn2-ami-minimal-hvm-2.0.20261114.0-x86_64-ebs",
        description: "Amazon Linux AMI 2.0.20261120 x86_64 ECS HVM GP2",
        creation_date: "2026-11-20T18:29:13.000Z",
        deprecation_time: "2028-11-20T18:29:13.000Z",
        ssm_path: "/aws/service/ecs/optimized-ami/amazon-linux-2/recommended",
    },
    EcsAmi {
        family: "amazon-linux-2",
        os: "Amazon Linux 2",
        architecture: "arm64",
        name: "amzn2-ami-ecs-hvm-2.0.20261120-arm64-ebs",
        image_version: "2.0.20261120",
        ecs_agent_version: "1.101.0",
        ecs_runtime_version: "Docker version 25.0.8",
        source_image_name: "amzn2-ami-minimal-hvm-2.0.20261114.0-arm64-ebs",
        description: "Amazon Linux AMI 2.0.20261120 arm64 ECS HVM GP2",
        creation_date: "2026-11-20T18:30:55.000Z",
        deprecation_time: "2028-11-20T18:30:55.000Z",
        ssm_path: "/aws/service/ecs/optimized-ami/amazon-linux-2/arm64/recommended",
    },
];

fn short_hash(parts: &[&str], len: usize) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    hex::encode(h.finalize())[..len].to_string()
}

impl EcsAmi {
    /// The AMI's id in a region: stable, "ami-" + 17 hex digits.
    pub fn image_id(&self, region: &str) -> String {
        format!("ami-{}", short_hash(&[region, self.name], 17))
    }

    /// The snapshot of the root volume in a region.
    pub fn snapshot_id(&self, region: &str) -> String {
        format!("snap-{}", short_hash(&["snapshot", region, self.name], 17))
    }

    /// The "recommended" JSON value of the public SSM parameter, as AWS publishes it.
    pub fn recommended_json(&self, region: &str) -> String {
        json!({
            "ecs_agent_version": self.ecs_agent_version,
            "ecs_runtime_version": self.ecs_runtime_version,
            "image_id": self.image_id(region),
            "image_name": self.name,
            "image_version": self.image_version,
            "os": self.os,
            "schema_version": 1,
            "source_image_name": self.source_image_name,
        })
        .to_string()
    }
}

/// The AMI with this id in this region.
pub fn find_ami(region: &str, image_id: &str) -> Option<&'static EcsAmi> {
    ECS_OPTIMIZED_AMIS
        .iter()
        .find(|a| a.image_id(region) == image_id)
}

struct ImageRow {
    ami: &'static EcsAmi,
    id: String,
}

impl Filterable for ImageRow {
    fn filter_values(&self, name: &str) -> Option<Vec<String>> {
        let a = self.ami;
        let v = match name {
            "image-id" => self.id.clone(),
            "name" => a.name.into(),
            "description" => a.description.into(),
            "architecture" => a.architecture.into(),
            "owner-alias" => "amazon".into(),
            "owner-id" => AMAZON_OWNER_ID.into(),
            "state" => "available".into(),
            "is-public" => bool_str(true),
            "image-type" => "machine".into(),
            "root-device-type" => "ebs".into(),
            "root-device-name" => "/dev/xvda".into(),
            "virtualization-type" => "hvm".into(),
            "hypervisor" => "xen".into(),
            "platform-details" => "Linux/UNIX".into(),
            "ena-support" => bool_str(true),
            "creation-date" => a.creation_date.into(),
            "block-device-mapping.volume-type" => "gp3".into(),
            "block-device-mapping.device-name" => "/dev/xvda".into(),
            "block-device-mapping.snapshot-id" => a.snapshot_id(""),
            _ => return None,
        };
        Some(vec![v])
    }
}

fn image_json(a: &EcsAmi, region: &str) -> Value {
    let al2023 = a.family == "amazon-linux-2023";
    let mut v = json!({
        "PlatformDetails": "Linux/UNIX",
        "UsageOperation": "RunInstances",
        "BlockDeviceMappings": [{
            "Ebs": {
                "DeleteOnTermination": true,
                "Iops": 3000,
                "SnapshotId": a.snapshot_id(region),
                "VolumeSize": 30,
                "VolumeType": "gp3",
                "Throughput": 125,
                "Encrypted": false,
            },
            "DeviceName": "/dev/xvda",
        }],
        "Description": a.description,
        "EnaSupport": true,
        "Hypervisor": "xen",
        "ImageOwnerAlias": "amazon",
        "Name": a.name,
        "RootDeviceName": "/dev/xvda",
        "RootDeviceType": "ebs",
        "SriovNetSupport": "simple",
        "VirtualizationType": "hvm",
        "DeprecationTime": a.deprecation_time,
        "ImageId": a.image_id(region),
        "ImageLocation": format!("amazon/{}", a.name),
        "State": "available",
        "OwnerId": AMAZON_OWNER_ID,
        "CreationDate": a.creation_date,
        "Public": true,
        "Architecture": a.architecture,
        "ImageType": "machine",
    });
    if al2023 {
        v["BootMode"] = json!("uefi-preferred");
        v["ImdsSupport"] = json!("v2.0");
    }
    v
}

fn check_image_id(id: &str) -> Result<(), AwsError> {
    let ok = id
        .strip_prefix("ami-")
        .is_some_and(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_hexdigit()));
    if ok {
        Ok(())
    } else {
        Err(err(
            "InvalidAMIID.Malformed",
            format!("Invalid id: \"{id}\" (expecting \"ami-...\")"),
        ))
    }
}

pub fn describe_images(_: &State, ctx: &Ctx, input: Value) -> HandlerResult {
    dry_run(&input)?;
    let region = &ctx.region;
    let mut rows: Vec<ImageRow> = ECS_OPTIMIZED_AMIS
        .iter()
        .map(|ami| ImageRow {
            ami,
            id: ami.image_id(region),
        })
        .collect();
    rows.sort_by(|a, b| a.id.cmp(&b.id));
    let ids = input.string_list("ImageIds");
    if !ids.is_empty() {
        let mut missing = Vec::new();
        for id in &ids {
            check_image_id(id)?;
            if !rows.iter().any(|r| &r.id == id) {
                missing.push(id.clone());
            }
        }
        if !missing.is_empty() {
            return Err(err(
                "InvalidAMIID.NotFound",
                format!("The image id '[{}]' does not exist", missing.join(", ")),
            ));
        }
        rows.retain(|r| ids.contains(&r.id));
    }
    let owners = input.string_list("Owners");
    if !owners.is_empty() {
        let amazon = owners.iter().any(|o| o == "amazon" || o == AMAZON_OWNER_ID);
        if !amazon {
            rows.clear();
        }
    }
    let executable = input.string_list("ExecutableUsers");
    if !executable.is_empty() && !executable.iter().any(|u| u == "all") {
        rows.clear();
    }
    let rows = filter_all(rows, &parse_filters(&input))?;
    let (page, token) = paginate(rows, |r| r.id.clone(), &input)?;
    let mut out = json!({
        "Images": page.iter().map(|r| image_json(r.ami, region)).collect::<Vec<_>>()
    });
    if let Some(t) = token {
        out["NextToken"] = json!(t);
    }
    Ok(out)
}
