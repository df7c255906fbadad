//! The AMIs EC2 knows (DescribeImages): the ECS-optimized AMIs, the plain Amazon Linux 2023 and
//! Amazon Linux 2 AMIs, and the images an account registered (RegisterImage). The built-in
//! tables feed SSM's public parameters (/aws/service/ecs/optimized-ami/... and
//! /aws/service/ami-amazon-linux-latest/...), so ids agree across the two services. With
//! `--accept-any-ami` RunInstances launches any well-formed AMI id it does not know.

use super::filters::Tags;
use super::filters::{bool_str, dry_run, err, filter_all, paginate, parse_filters, Filterable};
use super::state::{scope, Row, State};
use crate::protocol::codes;
use crate::protocol::AwsError;
use crate::services::input::Input;
use crate::services::{Ctx, HandlerResult};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// The account that owns Amazon's public AMIs (alias "amazon").
pub const AMAZON_OWNER_ID: &str = "591542846629";

/// One built-in AMI (ECS-optimized or plain Amazon Linux), the same in every region except
/// for its id. The plain ones leave the ECS fields empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EcsAmi {
    /// "amazon-linux-2023" or "amazon-linux-2" (ECS-optimized), "al2023" or "amzn2" (plain).
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
    /// The public SSM parameter path of this AMI's "recommended" metadata (ECS-optimized AMIs;
    /// the plain ones are named by [`AMAZON_LINUX_PARAMETERS`]).
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

/// The plain Amazon Linux AMIs behind /aws/service/ami-amazon-linux-latest/ (the ECS-optimized
/// AMIs' source images among them).
pub const AMAZON_LINUX_AMIS: &[EcsAmi] = &[
    EcsAmi {
        family: "al2023",
        os: "Amazon Linux 2023",
        architecture: "x86_64",
        name: "al2023-ami-2023.9.20261117.0-kernel-6.1-x86_64",
        image_version: "2023.9.20261117.0",
        ecs_agent_version: "",
        ecs_runtime_version: "",
        source_image_name: "",
        description: "Amazon Linux 2023 AMI 2023.9.20261117.0 x86_64 HVM kernel-6.1",
        creation_date: "2026-11-17T21:04:10.000Z",
        deprecation_time: "2027-02-15T21:04:00.000Z",
        ssm_path: "",
    },
    EcsAmi {
        family: "al2023",
        os: "Amazon Linux 2023",
        architecture: "arm64",
        name: "al2023-ami-2023.9.20261117.0-kernel-6.1-arm64",
        image_version: "2023.9.20261117.0",
        ecs_agent_version: "",
        ecs_runtime_version: "",
        source_image_name: "",
        description: "Amazon Linux 2023 AMI 2023.9.20261117.0 arm64 HVM kernel-6.1",
        creation_date: "2026-11-17T21:04:12.000Z",
        deprecation_time: "2027-02-15T21:04:00.000Z",
        ssm_path: "",
    },
    EcsAmi {
        family: "al2023",
        os: "Amazon Linux 2023",
        architecture: "x86_64",
        name: "al2023-ami-minimal-2023.9.20261117.0-kernel-6.1-x86_64",
        image_version: "2023.9.20261117.0",
        ecs_agent_version: "",
        ecs_runtime_version: "",
        source_image_name: "",
        description: "Amazon Linux 2023 AMI 2023.9.20261117.0 x86_64 Minimal HVM kernel-6.1",
        creation_date: "2026-11-17T21:04:08.000Z",
        deprecation_time: "2027-02-15T21:04:00.000Z",
        ssm_path: "",
    },
    EcsAmi {
        family: "al2023",
        os: "Amazon Linux 2023",
        architecture: "arm64",
        name: "al2023-ami-minimal-2023.9.20261117.0-kernel-6.1-arm64",
        image_version: "2023.9.20261117.0",
        ecs_agent_version: "",
        ecs_runtime_version: "",
        source_image_name: "",
        description: "Amazon Linux 2023 AMI 2023.9.20261117.0 arm64 Minimal HVM kernel-6.1",
        creation_date: "2026-11-17T21:04:09.000Z",
        deprecation_time: "2027-02-15T21:04:00.000Z",
        ssm_path: "",
    },
    EcsAmi {
        family: "amzn2",
        os: "Amazon Linux 2",
        architecture: "x86_64",
        name: "amzn2-ami-kernel-5.10-hvm-2.0.20261114.0-x86_64-gp2",
        image_version: "2.0.20261114.0",
        ecs_agent_version: "",
        ecs_runtime_version: "",
        source_image_name: "",
        description: "Amazon Linux 2 Kernel 5.10 AMI 2.0.20261114.0 x86_64 HVM gp2",
        creation_date: "2026-11-14T06:12:31.000Z",
        deprecation_time: "2027-02-12T06:12:00.000Z",
        ssm_path: "",
    },
    EcsAmi {
        family: "amzn2",
        os: "Amazon Linux 2",
        architecture: "arm64",
        name: "amzn2-ami-kernel-5.10-hvm-2.0.20261114.0-arm64-gp2",
        image_version: "2.0.20261114.0",
        ecs_agent_version: "",
        ecs_runtime_version: "",
        source_image_name: "",
        description: "Amazon Linux 2 Kernel 5.10 AMI 2.0.20261114.0 arm64 HVM gp2",
        creation_date: "2026-11-14T06:12:44.000Z",
        deprecation_time: "2027-02-12T06:12:00.000Z",
        ssm_path: "",
    },
];

/// The public parameters under /aws/service/ami-amazon-linux-latest/ and the AMI (by name,
/// from [`AMAZON_LINUX_AMIS`]) each names; several parameters name one AMI, as in AWS
/// (kernel-default is kernel-6.1 today).
pub const AMAZON_LINUX_PARAMETERS: &[(&str, &str)] = &[
    (
        "al2023-ami-kernel-default-x86_64",
        "al2023-ami-2023.9.20261117.0-kernel-6.1-x86_64",
    ),
    (
        "al2023-ami-kernel-6.1-x86_64",
        "al2023-ami-2023.9.20261117.0-kernel-6.1-x86_64",
    ),
    (
        "al2023-ami-kernel-default-arm64",
        "al2023-ami-2023.9.20261117.0-kernel-6.1-arm64",
    ),
    (
        "al2023-ami-kernel-6.1-arm64",
        "al2023-ami-2023.9.20261117.0-kernel-6.1-arm64",
    ),
    (
        "al2023-ami-minimal-kernel-default-x86_64",
        "al2023-ami-minimal-2023.9.20261117.0-kernel-6.1-x86_64",
    ),
    (
        "al2023-ami-minimal-kernel-6.1-x86_64",
        "al2023-ami-minimal-2023.9.20261117.0-kernel-6.1-x86_64",
    ),
    (
        "al2023-ami-minimal-kernel-default-arm64",
        "al2023-ami-minimal-2023.9.20261117.0-kernel-6.1-arm64",
    ),
    (
        "al2023-ami-minimal-kernel-6.1-arm64",
        "al2023-ami-minimal-2023.9.20261117.0-kernel-6.1-arm64",
    ),
    (
        "amzn2-ami-hvm-x86_64-gp2",
        "amzn2-ami-kernel-5.10-hvm-2.0.20261114.0-x86_64-gp2",
    ),
    (
        "amzn2-ami-kernel-5.10-hvm-x86_64-gp2",
        "amzn2-ami-kernel-5.10-hvm-2.0.20261114.0-x86_64-gp2",
    ),
    (
        "amzn2-ami-hvm-arm64-gp2",
        "amzn2-ami-kernel-5.10-hvm-2.0.20261114.0-arm64-gp2",
    ),
    (
        "amzn2-ami-kernel-5.10-hvm-arm64-gp2",
        "amzn2-ami-kernel-5.10-hvm-2.0.20261114.0-arm64-gp2",
    ),
];

/// Where the Amazon Linux parameters live.
pub const AMAZON_LINUX_LATEST: &str = "/aws/service/ami-amazon-linux-latest/";

/// Every built-in AMI: the ECS-optimized ones first.
pub fn builtin_amis() -> impl Iterator<Item = &'static EcsAmi> {
    ECS_OPTIMIZED_AMIS.iter().chain(AMAZON_LINUX_AMIS.iter())
}

/// The built-in AMI a public SSM parameter names ("/aws/service/ecs/optimized-ami/.../
/// recommended[/image_id]" or "/aws/service/ami-amazon-linux-latest/<name>").
pub fn ami_for_parameter(path: &str) -> Option<&'static EcsAmi> {
    if let Some(name) = path.strip_prefix(AMAZON_LINUX_LATEST) {
        let (_, ami) = AMAZON_LINUX_PARAMETERS.iter().find(|(p, _)| *p == name)?;
        return AMAZON_LINUX_AMIS.iter().find(|a| a.name == *ami);
    }
    let path = path.trim_end_matches("/image_id");
    ECS_OPTIMIZED_AMIS.iter().find(|a| a.ssm_path == path)
}

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

/// The built-in AMI with this id in this region.
pub fn find_ami(region: &str, image_id: &str) -> Option<&'static EcsAmi> {
    builtin_amis().find(|a| a.image_id(region) == image_id)
}

/// An image an account registered with RegisterImage. The emulator has no EBS: the image is
/// its metadata, and instances launched from it run as any other emulated instance.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RegisteredImage {
    pub image_id: String,
    pub owner_id: String,
    pub region: String,
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    pub architecture: String,
    pub root_device_name: String,
    pub virtualization_type: String,
    #[serde(default)]
    pub block_device_mappings: Value,
    #[serde(default)]
    pub boot_mode: Option<String>,
    pub creation_date: String,
    #[serde(default)]
    pub tags: Tags,
}

/// Where a row of DescribeImages comes from.
enum Source {
    Builtin(&'static EcsAmi),
    Registered(Box<RegisteredImage>),
}

struct ImageRow {
    source: Source,
    id: String,
}

impl Filterable for ImageRow {
    fn filter_values(&self, name: &str) -> Option<Vec<String>> {
        let a = match &self.source {
            Source::Builtin(a) => *a,
            Source::Registered(r) => {
                let v = match name {
                    "image-id" => self.id.clone(),
                    "name" => r.name.clone(),
                    "description" => r.description.clone().unwrap_or_default(),
                    "architecture" => r.architecture.clone(),
                    "owner-id" => r.owner_id.clone(),
                    "state" => "available".into(),
                    "is-public" => bool_str(false),
                    "image-type" => "machine".into(),
                    "root-device-type" => "ebs".into(),
                    "root-device-name" => r.root_device_name.clone(),
                    "virtualization-type" => r.virtualization_type.clone(),
                    "creation-date" => r.creation_date.clone(),
                    _ => return None,
                };
                return Some(vec![v]);
            }
        };
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
            codes::ec2::InvalidAMIID_Malformed,
            format!("Invalid id: \"{id}\" (expecting \"ami-...\")"),
        ))
    }
}

fn registered_json(r: &RegisteredImage) -> Value {
    let mut v = json!({
        "PlatformDetails": "Linux/UNIX",
        "UsageOperation": "RunInstances",
        "BlockDeviceMappings": if r.block_device_mappings.is_array() { r.block_device_mappings.clone() } else { json!([]) },
        "EnaSupport": true,
        "Hypervisor": "xen",
        "Name": r.name,
        "RootDeviceName": r.root_device_name,
        "RootDeviceType": "ebs",
        "VirtualizationType": r.virtualization_type,
        "ImageId": r.image_id,
        "ImageLocation": format!("{}/{}", r.owner_id, r.name),
        "State": "available",
        "OwnerId": r.owner_id,
        "CreationDate": r.creation_date,
        "Public": false,
        "Architecture": r.architecture,
        "ImageType": "machine",
    });
    if let Some(d) = &r.description {
        v["Description"] = json!(d);
    }
    if let Some(b) = &r.boot_mode {
        v["BootMode"] = json!(b);
    }
    if !r.tags.is_empty() {
        v["Tags"] = super::filters::tags_json(&r.tags);
    }
    v
}

fn image_key(account: &str, region: &str, id: &str) -> String {
    format!("{}image/{id}", scope(account, region))
}

impl State {
    /// The images an account registered in a region.
    pub fn registered_images(&self, account: &str, region: &str) -> Vec<RegisteredImage> {
        let prefix = format!("{}image/", scope(account, region));
        self.rows.read(|rows| {
            rows.range(prefix.clone()..)
                .take_while(|(k, _)| k.starts_with(&prefix))
                .filter_map(|(_, r)| match r {
                    Row::Image(i) => Some((**i).clone()),
                    _ => None,
                })
                .collect()
        })
    }

    /// The architecture of the AMI RunInstances launches: a built-in AMI's, a registered
    /// image's, or with `--accept-any-ami` the instance type's for an id EC2 does not know.
    pub fn image_architecture(
        &self,
        account: &str,
        region: &str,
        image_id: &str,
        type_arch: &str,
    ) -> Result<String, AwsError> {
        if let Some(a) = find_ami(region, image_id) {
            return Ok(a.architecture.to_string());
        }
        if let Some(Row::Image(i)) = self.rows.get(&image_key(account, region, image_id)) {
            return Ok(i.architecture);
        }
        if self.accept_any_ami {
            return Ok(type_arch.to_string());
        }
        Err(err(
            codes::ec2::InvalidAMIID_NotFound,
            format!("The image id '[{image_id}]' does not exist"),
        ))
    }
}

const ARCHITECTURES: [&str; 5] = ["i386", "x86_64", "arm64", "x86_64_mac", "arm64_mac"];

/// RegisterImage: an image of this account, without a snapshot behind it (the emulator has no
/// EBS). Architecture defaults to i386 as the API reference says for EBS-backed AMIs.
pub fn register_image(state: &State, ctx: &Ctx, input: Value) -> HandlerResult {
    dry_run(&input)?;
    let (account, region) = (&ctx.account, &ctx.region);
    let name = input.str("Name").unwrap_or_default().to_string();
    if name.is_empty() {
        return Err(err(
            codes::ec2::MissingParameter,
            "The request must contain the parameter name",
        ));
    }
    let name_ok = (3..=128).contains(&name.chars().count())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "()[] ./-'@_".contains(c));
    if !name_ok {
        return Err(err(codes::ec2::InvalidAMIName_Malformed,
            format!("AMI names must be between 3 and 128 characters long, and may contain letters, numbers, '(', ')', '.', '-', '/' and '_' (name: {name})"),
        ));
    }
    let architecture = input.str("Architecture").unwrap_or("i386").to_string();
    if !ARCHITECTURES.contains(&architecture.as_str()) {
        return Err(err(codes::common::InvalidParameterValue,
            format!("Value ({architecture}) for parameter architecture is invalid. Valid values are: [{}]", ARCHITECTURES.join(", ")),
        ));
    }
    let image = RegisteredImage {
        image_id: format!("ami-{}", crate::services::random_hex(17)),
        owner_id: account.clone(),
        region: region.clone(),
        name: name.clone(),
        description: input.str("Description").map(str::to_string),
        architecture,
        root_device_name: input
            .str("RootDeviceName")
            .unwrap_or("/dev/xvda")
            .to_string(),
        virtualization_type: input.str("VirtualizationType").unwrap_or("hvm").to_string(),
        block_device_mappings: input
            .get("BlockDeviceMappings")
            .cloned()
            .unwrap_or_else(|| json!([])),
        boot_mode: input.str("BootMode").map(str::to_string),
        creation_date: super::launch_templates::iso(ctx.now),
        tags: super::filters::tags_from_specs(&input, "image")?,
    };
    let prefix = format!("{}image/", scope(account, region));
    state.rows.transact(|t| {
        let taken = t
            .rows()
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .find_map(|(_, r)| match r {
                Row::Image(i) if i.name == name => Some(i.image_id.clone()),
                _ => None,
            });
        if let Some(id) = taken {
            return Err(err(
                codes::ec2::InvalidAMIName_Duplicate,
                format!("AMI name {name} is already in use by AMI {id}"),
            ));
        }
        t.put(
            &image_key(account, region, &image.image_id),
            Row::Image(Box::new(image.clone())),
        );
        Ok(())
    })?;
    Ok(json!({"ImageId": image.image_id}))
}

/// DeregisterImage: a registered image goes; Amazon's are not this account's to remove.
pub fn deregister_image(state: &State, ctx: &Ctx, input: Value) -> HandlerResult {
    dry_run(&input)?;
    let id = input.str("ImageId").unwrap_or_default().to_string();
    check_image_id(&id)?;
    let key = image_key(&ctx.account, &ctx.region, &id);
    let removed = state.rows.remove(&key)?.is_some();
    if !removed {
        if find_ami(&ctx.region, &id).is_some() {
            return Err(err(
                codes::ec2::AuthFailure,
                format!("Not authorized for image:{id}"),
            ));
        }
        return Err(err(
            codes::ec2::InvalidAMIID_NotFound,
            format!("The image id '[{id}]' does not exist"),
        ));
    }
    Ok(json!({"Return": true}))
}

pub fn describe_images(state: &State, ctx: &Ctx, input: Value) -> HandlerResult {
    dry_run(&input)?;
    let region = &ctx.region;
    let mut rows: Vec<ImageRow> = builtin_amis()
        .map(|ami| ImageRow {
            source: Source::Builtin(ami),
            id: ami.image_id(region),
        })
        .collect();
    rows.extend(
        state
            .registered_images(&ctx.account, region)
            .into_iter()
            .map(|r| ImageRow {
                id: r.image_id.clone(),
                source: Source::Registered(Box::new(r)),
            }),
    );
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
                codes::ec2::InvalidAMIID_NotFound,
                format!("The image id '[{}]' does not exist", missing.join(", ")),
            ));
        }
        rows.retain(|r| ids.contains(&r.id));
    }
    let owners = input.string_list("Owners");
    if !owners.is_empty() {
        let amazon = owners.iter().any(|o| o == "amazon" || o == AMAZON_OWNER_ID);
        let own = owners.iter().any(|o| o == "self" || *o == ctx.account);
        rows.retain(|r| match r.source {
            Source::Builtin(_) => amazon,
            Source::Registered(_) => own,
        });
    }
    let executable = input.string_list("ExecutableUsers");
    if !executable.is_empty() && !executable.iter().any(|u| u == "all") {
        rows.clear();
    }
    let rows = filter_all(rows, &parse_filters(&input))?;
    let (page, token) = paginate(rows, |r| r.id.clone(), &input)?;
    let mut out = json!({
        "Images": page.iter().map(|r| match &r.source {
            Source::Builtin(a) => image_json(a, region),
            Source::Registered(i) => registered_json(i),
        }).collect::<Vec<_>>()
    });
    if let Some(t) = token {
        out["NextToken"] = json!(t);
    }
    Ok(out)
}
