//! Virtual EC2 instances: RunInstances, DescribeInstances, DescribeInstanceStatus,
//! StopInstances, StartInstances, TerminateInstances and DescribeInstanceTypes.
//!
//! An instance runs nothing itself: it is a row whose state advances with the emulator clock
//! (pending → running, stopping → stopped, shutting-down → terminated). The state is computed
//! from the stored state and when it was entered ([`Instance::at`]), so no timer is needed; a
//! controller (the instance agent) watches the rows and registers running instances with ECS.

use super::cidr::Cidr;
use super::filters::{
    dry_run, err, filter_all, invalid_value, not_found_ids, paginate, parse_filters, tags_json,
    validate_tag_key, Filterable, Tags,
};
use super::launch_templates::{merge_into_run_input, LaunchTemplateRef};
use super::regions::zones;
use super::state::{new_id, scope, subnet_key, Row, State, Subnet};
use crate::protocol::codes;
use crate::protocol::AwsError;
use crate::services::ec2::instance_types;
use crate::services::input::Input;
use crate::services::{Ctx, HandlerResult, Registry};
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::sync::Arc;

pub fn register(r: &mut Registry, s: &Arc<State>) {
    r.sync("ec2", "RunInstances", s, run_instances);
    r.sync("ec2", "DescribeInstances", s, describe_instances);
    r.sync("ec2", "DescribeInstanceStatus", s, describe_instance_status);
    r.sync("ec2", "StopInstances", s, stop_instances);
    r.sync("ec2", "StartInstances", s, start_instances);
    r.sync("ec2", "TerminateInstances", s, terminate_instances);
    r.sync("ec2", "DescribeInstanceTypes", s, describe_instance_types);
}

/// Emulated seconds an instance spends in each transitional state.
pub const PENDING_S: f64 = 0.3;
pub const STOPPING_S: f64 = 1.0;
pub const SHUTTING_DOWN_S: f64 = 1.0;
/// Terminated instances stay describable this long (emulated seconds).
pub const TERMINATED_RETENTION_S: f64 = 3600.0;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Instance {
    pub instance_id: String,
    pub reservation_id: String,
    pub owner_id: String,
    pub region: String,
    pub image_id: String,
    pub instance_type: String,
    pub architecture: String,
    pub availability_zone: String,
    pub subnet_id: String,
    pub vpc_id: String,
    pub private_ip: String,
    pub network_interface_id: String,
    /// (group id, group name)
    pub security_groups: Vec<(String, String)>,
    /// Decoded user data (lossy UTF-8).
    #[serde(default)]
    pub user_data: Option<String>,
    /// (ARN, id) of the instance profile.
    #[serde(default)]
    pub iam_instance_profile: Option<(String, String)>,
    #[serde(default)]
    pub key_name: Option<String>,
    #[serde(default)]
    pub client_token: Option<String>,
    pub ami_launch_index: i64,
    pub launch_time: f64,
    /// pending, running, stopping, stopped, shutting-down, terminated.
    pub state: String,
    /// When `state` was entered (emulated epoch seconds).
    pub state_since: f64,
    /// StateTransitionReason, e.g. "User initiated (2026-01-01 00:00:00 GMT)".
    #[serde(default)]
    pub transition_reason: String,
    #[serde(default)]
    pub tags: Tags,
    /// MetadataOptions as requested (RunInstances or the launch template); None: EC2's defaults.
    #[serde(default)]
    pub metadata_options: Option<Value>,
    /// "spot" for Spot instances (InstanceMarketOptions), None for On-Demand.
    #[serde(default)]
    pub instance_lifecycle: Option<String>,
    /// The launch template and version the instance was launched from.
    #[serde(default)]
    pub launch_template: Option<LaunchTemplateRef>,
    /// A Spot interruption notice was given: the instance is terminated at this emulator time
    /// (by the instance agent), two minutes after the notice.
    #[serde(default)]
    pub interruption_at: Option<f64>,
    /// The instance's own loopback address (127.16.0.0/12), where the ports of its containers
    /// are published: given when an ECS agent first registers from it (see `machines.rs`).
    #[serde(default)]
    pub host_ip: Option<String>,
    /// Recorded from an ECS agent's registration (RegisterContainerInstance with an identity
    /// document only), not launched by RunInstances: the instance agent leaves it alone.
    #[serde(default)]
    pub recorded_from_agent: bool,
}

pub fn state_code(name: &str) -> i64 {
    match name {
        "pending" => 0,
        "running" => 16,
        "shutting-down" => 32,
        "terminated" => 48,
        "stopping" => 64,
        "stopped" => 80,
        _ => 0,
    }
}

fn state_json(name: &str) -> Value {
    json!({"Code": state_code(name), "Name": name})
}

fn gmt(t: f64) -> String {
    chrono::DateTime::from_timestamp(t as i64, 0)
        .map(|d| d.format("%Y-%m-%d %H:%M:%S GMT").to_string())
        .unwrap_or_default()
}

pub fn instance_key(account: &str, region: &str, id: &str) -> String {
    format!("{account}/{region}/instance/{id}")
}

impl Instance {
    /// Advances transitional states whose time is up.
    pub fn advance(&mut self, now: f64) {
        loop {
            let (next, after) = match self.state.as_str() {
                "pending" => ("running", PENDING_S),
                "stopping" => ("stopped", STOPPING_S),
                "shutting-down" => ("terminated", SHUTTING_DOWN_S),
                _ => return,
            };
            if now < self.state_since + after {
                return;
            }
            self.state = next.into();
            self.state_since += after;
        }
    }

    /// This instance as it is at `now`.
    pub fn at(&self, now: f64) -> Instance {
        let mut i = self.clone();
        i.advance(now);
        i
    }

    /// Terminated longer than the retention: no longer describable.
    pub fn expired(&self, now: f64) -> bool {
        self.state == "terminated" && now - self.state_since > TERMINATED_RETENTION_S
    }

    /// MetadataOptions as DescribeInstances shows them: the requested members over EC2's
    /// defaults (IMDSv2 required, hop limit 2, as for AL2023 AMIs).
    pub fn metadata_options_json(&self) -> Value {
        let mut m = json!({
            "State": "applied",
            "HttpTokens": "required",
            "HttpPutResponseHopLimit": 2,
            "HttpEndpoint": "enabled",
            "HttpProtocolIpv6": "disabled",
            "InstanceMetadataTags": "disabled",
        });
        if let Some(req) = self.metadata_options.as_ref().and_then(Value::as_object) {
            for (k, v) in req {
                m[k.as_str()] = v.clone();
            }
        }
        m
    }

    fn private_dns(&self) -> String {
        let host = format!("ip-{}", self.private_ip.replace('.', "-"));
        if self.region == "us-east-1" {
            format!("{host}.ec2.internal")
        } else {
            format!("{host}.{}.compute.internal", self.region)
        }
    }

    fn groups_json(&self) -> Value {
        Value::Array(
            self.security_groups
                .iter()
                .map(|(id, name)| json!({"GroupId": id, "GroupName": name}))
                .collect(),
        )
    }

    pub fn to_json(&self) -> Value {
        let alive = !matches!(self.state.as_str(), "terminated");
        let mut v = json!({
            "InstanceId": self.instance_id,
            "ImageId": self.image_id,
            "State": state_json(&self.state),
            "PrivateDnsName": if alive { self.private_dns() } else { String::new() },
            "PublicDnsName": "",
            "StateTransitionReason": self.transition_reason,
            "AmiLaunchIndex": self.ami_launch_index,
            "ProductCodes": [],
            "InstanceType": self.instance_type,
            "LaunchTime": self.launch_time.floor(),
            "Placement": {
                "AvailabilityZone": self.availability_zone,
                "GroupName": "",
                "Tenancy": "default",
            },
            "Monitoring": {"State": "disabled"},
            "Architecture": self.architecture,
            "RootDeviceType": "ebs",
            "RootDeviceName": "/dev/xvda",
            "BlockDeviceMappings": [],
            "VirtualizationType": "hvm",
            "Hypervisor": "xen",
            "EbsOptimized": false,
            "EnaSupport": true,
            "SourceDestCheck": true,
            "ClientToken": self.client_token.clone().unwrap_or_default(),
            "Tags": tags_json(&self.tags),
            "SecurityGroups": self.groups_json(),
            "CpuOptions": {
                "CoreCount": instance_types::lookup(&self.instance_type).map(|t| t.cores).unwrap_or(1),
                "ThreadsPerCore": instance_types::lookup(&self.instance_type).map(|t| t.threads_per_core).unwrap_or(1),
            },
            "PlatformDetails": "Linux/UNIX",
            "UsageOperation": "RunInstances",
            "MetadataOptions": self.metadata_options_json(),
            "BootMode": "uefi-preferred",
            "CurrentInstanceBootMode": "legacy-bios",
        });
        if alive {
            v["SubnetId"] = json!(self.subnet_id);
            v["VpcId"] = json!(self.vpc_id);
            v["PrivateIpAddress"] = json!(self.private_ip);
            v["NetworkInterfaces"] = json!([{
                "Attachment": {
                    "AttachTime": self.launch_time.floor(),
                    "AttachmentId": format!("eni-attach-{}", self.network_interface_id.trim_start_matches("eni-")),
                    "DeleteOnTermination": true,
                    "DeviceIndex": 0,
                    "Status": "attached",
                    "NetworkCardIndex": 0,
                },
                "Description": "",
                "Groups": self.groups_json(),
                "Ipv6Addresses": [],
                "MacAddress": mac(&self.network_interface_id),
                "NetworkInterfaceId": self.network_interface_id,
                "OwnerId": self.owner_id,
                "PrivateDnsName": self.private_dns(),
                "PrivateIpAddress": self.private_ip,
                "PrivateIpAddresses": [{
                    "Primary": true,
                    "PrivateDnsName": self.private_dns(),
                    "PrivateIpAddress": self.private_ip,
                }],
                "SourceDestCheck": true,
                "Status": "in-use",
                "SubnetId": self.subnet_id,
                "VpcId": self.vpc_id,
                "InterfaceType": "interface",
            }]);
        } else {
            v["NetworkInterfaces"] = json!([]);
            v["SecurityGroups"] = json!([]);
        }
        if let Some((arn, id)) = &self.iam_instance_profile {
            v["IamInstanceProfile"] = json!({"Arn": arn, "Id": id});
        }
        if let Some(k) = &self.key_name {
            v["KeyName"] = json!(k);
        }
        if let Some(l) = &self.instance_lifecycle {
            v["InstanceLifecycle"] = json!(l);
        }
        if self.interruption_at.is_some()
            && matches!(self.state.as_str(), "shutting-down" | "terminated")
        {
            v["StateReason"] = json!({
                "Code": "Server.SpotInstanceTermination",
                "Message": "Server.SpotInstanceTermination: Spot instance termination",
            });
        } else if matches!(
            self.state.as_str(),
            "stopping" | "stopped" | "shutting-down" | "terminated"
        ) {
            v["StateReason"] = json!({
                "Code": "Client.UserInitiatedShutdown",
                "Message": "Client.UserInitiatedShutdown: User initiated shutdown",
            });
        }
        v
    }
}

fn mac(eni: &str) -> String {
    let hex: Vec<char> = eni.chars().rev().filter(char::is_ascii_hexdigit).collect();
    let pair = |i: usize| {
        let a = hex.get(2 * i).copied().unwrap_or('0');
        let b = hex.get(2 * i + 1).copied().unwrap_or('0');
        format!("{b}{a}")
    };
    format!(
        "0a:{}:{}:{}:{}:{}",
        pair(0),
        pair(1),
        pair(2),
        pair(3),
        pair(4)
    )
}

impl Filterable for Instance {
    fn filter_values(&self, name: &str) -> Option<Vec<String>> {
        let one = |s: &str| Some(vec![s.to_string()]);
        match name {
            "instance-id" => one(&self.instance_id),
            "instance-state-name" => one(&self.state),
            "instance-state-code" => one(&state_code(&self.state).to_string()),
            "instance-type" => one(&self.instance_type),
            "subnet-id" => one(&self.subnet_id),
            "vpc-id" => one(&self.vpc_id),
            "availability-zone" => one(&self.availability_zone),
            "private-ip-address" | "network-interface.addresses.private-ip-address" => {
                one(&self.private_ip)
            }
            "private-dns-name" => one(&self.private_dns()),
            "image-id" => one(&self.image_id),
            "reservation-id" => one(&self.reservation_id),
            "owner-id" => one(&self.owner_id),
            "architecture" => one(&self.architecture),
            "key-name" => Some(self.key_name.iter().cloned().collect()),
            "client-token" => Some(self.client_token.iter().cloned().collect()),
            "launch-time" => one(
                &chrono::DateTime::from_timestamp(self.launch_time as i64, 0)
                    .map(|d| d.format("%Y-%m-%dT%H:%M:%S.000Z").to_string())
                    .unwrap_or_default(),
            ),
            "ami-launch-index" => one(&self.ami_launch_index.to_string()),
            "iam-instance-profile.arn" => Some(
                self.iam_instance_profile
                    .iter()
                    .map(|(a, _)| a.clone())
                    .collect(),
            ),
            "instance.group-id" | "group-id" => Some(
                self.security_groups
                    .iter()
                    .map(|(id, _)| id.clone())
                    .collect(),
            ),
            "instance.group-name" | "group-name" => Some(
                self.security_groups
                    .iter()
                    .map(|(_, n)| n.clone())
                    .collect(),
            ),
            "network-interface.network-interface-id" => one(&self.network_interface_id),
            "root-device-type" => one("ebs"),
            "tenancy" => one("default"),
            "instance-lifecycle" => Some(self.instance_lifecycle.iter().cloned().collect()),
            "virtualization-type" => one("hvm"),
            "platform-details" => one("Linux/UNIX"),
            _ => None,
        }
    }
    fn tag_map(&self) -> Option<&Tags> {
        Some(&self.tags)
    }
}

impl State {
    /// Every instance of an (account, region) as it is at `now`, expired ones left out.
    pub fn instances(&self, account: &str, region: &str, now: f64) -> Vec<Instance> {
        let prefix = format!("{}instance/", scope(account, region));
        self.rows.read(|rows| {
            rows.range(prefix.clone()..)
                .take_while(|(k, _)| k.starts_with(&prefix))
                .filter_map(|(_, r)| match r {
                    Row::Instance(i) => Some(i.at(now)),
                    _ => None,
                })
                .filter(|i| !i.expired(now))
                .collect()
        })
    }

    /// Every instance of every account and region, as it is at `now` (for controllers).
    pub fn all_instances(&self, now: f64) -> Vec<Instance> {
        self.rows.read(|rows| {
            rows.values()
                .filter_map(|r| match r {
                    Row::Instance(i) => Some(i.at(now)),
                    _ => None,
                })
                .filter(|i| !i.expired(now))
                .collect()
        })
    }

    fn instances_changed(&self) {
        self.instance_events.notify_one();
    }
}

/// "i-" and 8 or 17 lowercase hex digits.
pub fn valid_instance_id(id: &str) -> bool {
    id.strip_prefix("i-").is_some_and(|h| {
        (h.len() == 8 || h.len() == 17) && h.chars().all(|c| c.is_ascii_hexdigit())
    })
}

fn malformed(id: &str) -> AwsError {
    err(
        codes::ec2::InvalidInstanceID_Malformed,
        format!("Invalid id: \"{id}\" (expecting \"i-...\")"),
    )
}

/// The instances named by `InstanceIds`, at `now`, in request order; errors as EC2.
fn named_instances(state: &State, ctx: &Ctx, ids: &[String]) -> Result<Vec<Instance>, AwsError> {
    if let Some(bad) = ids.iter().find(|id| !valid_instance_id(id)) {
        return Err(malformed(bad));
    }
    let all = state.instances(&ctx.account, &ctx.region, ctx.now);
    let missing: Vec<String> = ids
        .iter()
        .filter(|id| !all.iter().any(|i| &i.instance_id == *id))
        .cloned()
        .collect();
    if !missing.is_empty() {
        return Err(not_found_ids(
            codes::ec2::InvalidInstanceID_NotFound,
            "instance",
            &missing,
        ));
    }
    let mut seen = BTreeSet::new();
    Ok(ids
        .iter()
        .filter(|id| seen.insert((*id).clone()))
        .filter_map(|id| all.iter().find(|i| &i.instance_id == id).cloned())
        .collect())
}

/// Picks a free private address of the subnet: not one of the five AWS reserves, not one
/// another (unterminated) instance holds.
fn free_address(subnet: &Subnet, taken: &BTreeSet<String>) -> Option<String> {
    use rand::Rng;
    let cidr = Cidr::parse(&subnet.cidr_block)?;
    let first = cidr.network().checked_add(4)?;
    let last = cidr.last().checked_sub(1)?;
    if last < first {
        return None;
    }
    let span = u64::from(last - first) + 1;
    let start = rand::rng().random_range(0..span);
    (0..span)
        .map(|k| first + ((start + k) % span) as u32)
        .map(|a| Ipv4Addr::from(a).to_string())
        .find(|a| !taken.contains(a))
}

fn reservation_json(ctx: &Ctx, instances: &[Instance]) -> Value {
    let first = instances.first();
    json!({
        "ReservationId": first.map(|i| i.reservation_id.clone()).unwrap_or_default(),
        "OwnerId": ctx.account,
        "Groups": [],
        "Instances": instances.iter().map(Instance::to_json).collect::<Vec<_>>(),
    })
}

/// Tags for the instance from TagSpecifications (volume and network-interface specs are
/// accepted and ignored: the emulator has no such resources).
fn instance_tags(input: &Value) -> Result<Tags, AwsError> {
    let mut tags = Tags::new();
    for spec in input
        .get("TagSpecifications")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let rt = spec.str("ResourceType").unwrap_or_default();
        match rt {
            "instance" => {}
            "volume" | "network-interface" | "spot-instances-request" | "elastic-gpu" => continue,
            _ => {
                return Err(invalid_value(format!(
                    "'{rt}' is not a valid taggable resource type for this operation."
                )))
            }
        }
        for t in spec
            .get("Tags")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let key = t.str("Key").unwrap_or_default().to_string();
            validate_tag_key(&key)?;
            tags.insert(key, t.str("Value").unwrap_or_default().to_string());
        }
    }
    Ok(tags)
}

fn random_profile_id() -> String {
    use rand::Rng;
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut rng = rand::rng();
    let tail: String = (0..17)
        .map(|_| char::from(CHARS[rng.random_range(0..CHARS.len())]))
        .collect();
    format!("AIPA{tail}")
}

pub fn run_instances(state: &State, ctx: &Ctx, input: Value) -> HandlerResult {
    dry_run(&input)?;
    let launched = launch(state, ctx, input, &Tags::new())?;
    Ok(reservation_json(ctx, &launched))
}

/// An AMI id from an image id or `resolve:ssm:<ECS-optimized AMI parameter>`.
fn resolve_image_id(region: &str, image_id: &str) -> String {
    let Some(path) = image_id.strip_prefix("resolve:ssm:") else {
        return image_id.to_string();
    };
    super::images::ami_for_parameter(path)
        .map(|a| a.image_id(region))
        .unwrap_or_else(|| image_id.to_string())
}

/// RunInstances without the reservation around it: the launched instances (for EC2 Auto
/// Scaling through the [`Ec2`](super::Ec2) handle too). `system_tags` are added to the
/// instances' tags unchecked (EC2 Auto Scaling's `aws:autoscaling:groupName`).
pub fn launch(
    state: &State,
    ctx: &Ctx,
    input: Value,
    system_tags: &Tags,
) -> Result<Vec<Instance>, AwsError> {
    let (account, region) = (&ctx.account, &ctx.region);
    state.ensure_defaults(account, region)?;
    let (input, template) = match input.get("LaunchTemplate").filter(|v| v.is_object()) {
        Some(spec) => {
            let (data, r) = state.resolve_launch_template(account, region, spec)?;
            (merge_into_run_input(&input, &data), Some(r))
        }
        None => (input, None),
    };
    // Idempotency: the same ClientToken returns the original reservation.
    let client_token = input
        .str("ClientToken")
        .filter(|t| !t.is_empty())
        .map(str::to_string);
    if let Some(token) = &client_token {
        let same: Vec<Instance> = state
            .instances(account, region, ctx.now)
            .into_iter()
            .filter(|i| i.client_token.as_ref() == Some(token))
            .collect();
        if !same.is_empty() {
            return Ok(same);
        }
    }
    let image_id = resolve_image_id(region, input.str("ImageId").unwrap_or_default());
    if image_id.is_empty() {
        return Err(err(
            codes::ec2::MissingParameter,
            "The request must contain the parameter ImageId",
        ));
    }
    if !image_id.starts_with("ami-") {
        return Err(err(
            codes::ec2::InvalidAMIID_Malformed,
            format!("Invalid id: \"{image_id}\" (expecting \"ami-...\")"),
        ));
    }
    let type_name = input
        .str("InstanceType")
        .unwrap_or(instance_types::DEFAULT)
        .to_string();
    let itype = instance_types::lookup(&type_name);
    let architecture = state.image_architecture(
        account,
        region,
        &image_id,
        itype.map(|t| t.arch()).unwrap_or("x86_64"),
    )?;
    let itype = itype
        .ok_or_else(|| invalid_value(format!("Invalid value '{type_name}' for InstanceType.")))?;
    if !itype.supports(&architecture) {
        return Err(invalid_value(format!(
            "The architecture '{}' of the specified instance type does not match the architecture '{}' of the specified AMI. Specify an instance type and an AMI that have matching architectures, and try again. You can use 'describe-instance-types' or 'describe-images' to discover the architecture of the instance type or AMI.",
            itype.arch(), architecture
        )));
    }
    let min = input.i64("MinCount").unwrap_or(1);
    let max = input.i64("MaxCount").unwrap_or(1);
    if min < 1 {
        return Err(invalid_value(format!(
            "Value ({min}) for parameter minCount is invalid. Expected a value greater than 0."
        )));
    }
    if max < min {
        return Err(invalid_value(format!(
            "Value ({max}) for parameter maxCount is invalid. Expected a value greater than or equal to minCount ({min})."
        )));
    }
    if min > 100 {
        return Err(err(codes::ec2::InstanceLimitExceeded,
            format!("You have requested more instances ({min}) than your current instance limit of 100 allows for the specified instance type."),
        ));
    }
    let max = max.min(100);

    // Subnet: SubnetId, else the default subnet of Placement.AvailabilityZone, else the first.
    let az = input
        .get("Placement")
        .and_then(|p| p.str("AvailabilityZone"))
        .filter(|z| !z.is_empty())
        .map(str::to_string);
    if let Some(z) = &az {
        if !zones(region).iter().any(|x| &x.name == z) {
            return Err(invalid_value(format!("Invalid availability zone: [{z}]")));
        }
    }
    let subnet = match input.str("SubnetId").filter(|s| !s.is_empty()) {
        Some(id) => {
            let s = state.subnet(account, region, id).ok_or_else(|| {
                not_found_ids(
                    codes::ec2::InvalidSubnetID_NotFound,
                    "subnet",
                    &[id.to_string()],
                )
            })?;
            if let Some(z) = &az {
                if z != &s.availability_zone {
                    return Err(invalid_value(format!(
                        "Value ({z}) for parameter availabilityZone is invalid. Subnet '{id}' is in the availability zone {}",
                        s.availability_zone
                    )));
                }
            }
            s
        }
        None => {
            let mut defaults: Vec<Subnet> = state
                .subnets(account, region)
                .into_iter()
                .filter(|s| s.default_for_az)
                .collect();
            defaults.sort_by(|a, b| a.availability_zone.cmp(&b.availability_zone));
            let pick = match &az {
                Some(z) => defaults.into_iter().find(|s| &s.availability_zone == z),
                None => defaults.into_iter().next(),
            };
            pick.ok_or_else(|| {
                err(
                    codes::ec2::VPCIdNotSpecified,
                    "No default VPC for this user",
                )
            })?
        }
    };

    // Security groups: ids, names (in the subnet's VPC), else the VPC's default group.
    let groups = state.security_groups(account, region);
    let mut sgs: Vec<(String, String)> = Vec::new();
    for id in input.string_list("SecurityGroupIds") {
        let g = groups.iter().find(|g| g.group_id == id).ok_or_else(|| {
            err(
                codes::ec2::InvalidGroup_NotFound,
                format!("The security group '{id}' does not exist"),
            )
        })?;
        if g.vpc_id != subnet.vpc_id {
            return Err(err(
                codes::ec2::InvalidParameter,
                format!(
                    "Security group {id} and subnet {} belong to different networks.",
                    subnet.subnet_id
                ),
            ));
        }
        sgs.push((g.group_id.clone(), g.group_name.clone()));
    }
    for name in input.string_list("SecurityGroups") {
        let g = groups
            .iter()
            .find(|g| g.group_name == name && g.vpc_id == subnet.vpc_id)
            .ok_or_else(|| {
                err(
                    codes::ec2::InvalidGroup_NotFound,
                    format!(
                        "The security group '{name}' does not exist in VPC '{}'",
                        subnet.vpc_id
                    ),
                )
            })?;
        sgs.push((g.group_id.clone(), g.group_name.clone()));
    }
    if sgs.is_empty() {
        if let Some(g) = groups
            .iter()
            .find(|g| g.vpc_id == subnet.vpc_id && g.group_name == "default")
        {
            sgs.push((g.group_id.clone(), g.group_name.clone()));
        }
    }
    sgs.dedup();

    let user_data = match input.str("UserData").filter(|u| !u.is_empty()) {
        Some(b64) => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .map_err(|_| invalid_value("Invalid BASE64 encoding of user data."))?;
            if bytes.len() > 16 * 1024 {
                return Err(invalid_value("User data is limited to 16384 bytes"));
            }
            Some(String::from_utf8_lossy(&bytes).into_owned())
        }
        None => None,
    };
    let profile = match input.get("IamInstanceProfile") {
        Some(p) => match (p.str("Arn"), p.str("Name")) {
            (Some(arn), _) if !arn.is_empty() => {
                if !arn.starts_with("arn:aws:iam::") || !arn.contains(":instance-profile/") {
                    return Err(invalid_value(format!(
                        "Value ({arn}) for parameter iamInstanceProfile.arn is invalid. Invalid IAM Instance Profile ARN"
                    )));
                }
                Some((arn.to_string(), random_profile_id()))
            }
            (_, Some(name)) if !name.is_empty() => Some((
                format!("arn:aws:iam::{account}:instance-profile/{name}"),
                random_profile_id(),
            )),
            _ => None,
        },
        None => None,
    };
    let mut tags = instance_tags(&input)?;
    tags.extend(system_tags.iter().map(|(k, v)| (k.clone(), v.clone())));
    if let Some(t) = &template {
        // EC2 tags instances launched from a template with the template's id and version.
        tags.insert("aws:ec2launchtemplate:id".into(), t.id.clone());
        tags.insert(
            "aws:ec2launchtemplate:version".into(),
            t.version.to_string(),
        );
    }
    let metadata_options = input
        .get("MetadataOptions")
        .filter(|m| m.as_object().is_some_and(|o| !o.is_empty()))
        .cloned();
    let instance_lifecycle = input
        .get("InstanceMarketOptions")
        .and_then(|m| m.str("MarketType"))
        .filter(|m| *m == "spot")
        .map(str::to_string);
    let key_name = input.str("KeyName").map(str::to_string);
    let requested_ip = input.str("PrivateIpAddress").map(str::to_string);
    if requested_ip.is_some() && max > 1 {
        return Err(err(
            codes::common::InvalidParameterCombination,
            "Cannot specify a private IP address when launching more than one instance.",
        ));
    }

    let reservation_id = new_id("r");
    let subnet_k = subnet_key(account, region, &subnet.subnet_id);
    let launched = state.rows.transact(|t| {
        // Forget instances terminated longer than the retention.
        let prefix = format!("{}instance/", scope(account, region));
        let mut taken = BTreeSet::new();
        for key in t.keys(&prefix) {
            if let Some(Row::Instance(i)) = t.get(&key) {
                let i = i.at(ctx.now);
                if i.expired(ctx.now) {
                    t.remove(&key);
                } else if i.state != "terminated" && i.subnet_id == subnet.subnet_id {
                    taken.insert(i.private_ip.clone());
                }
            }
        }
        let Some(Row::Subnet(mut s)) = t.get(&subnet_k).cloned() else {
            return Err(not_found_ids(codes::ec2::InvalidSubnetID_NotFound,
                "subnet",
                std::slice::from_ref(&subnet.subnet_id),
            ));
        };
        let available = s.available_ip_address_count() as i64;
        if available < min {
            return Err(err(codes::ec2::InsufficientFreeAddressesInSubnet,
                format!(
                    "There are not enough free addresses in subnet '{}' to satisfy the requested number of instances.",
                    s.subnet_id
                ),
            ));
        }
        let count = max.min(available);
        let mut out = Vec::new();
        for n in 0..count {
            let ip = match (&requested_ip, n) {
                (Some(ip), 0) => {
                    let inside = ip.parse::<Ipv4Addr>().ok().zip(Cidr::parse(&s.cidr_block)).is_some_and(
                        |(a, c)| {
                            let a = u32::from(a);
                            a >= c.network() + 4 && a < c.last()
                        },
                    );
                    if !inside {
                        return Err(invalid_value(format!(
                            "Address {ip} does not fall within the subnet's address range"
                        )));
                    }
                    if taken.contains(ip) {
                        return Err(err(codes::ec2::InvalidIPAddress_InUse,
                            format!("Address {ip} is in use."),
                        ));
                    }
                    ip.clone()
                }
                _ => free_address(&s, &taken).ok_or_else(|| {
                    err(codes::ec2::InsufficientFreeAddressesInSubnet,
                        format!("There are not enough free addresses in subnet '{}' to satisfy the requested number of instances.", s.subnet_id),
                    )
                })?,
            };
            taken.insert(ip.clone());
            let i = Instance {
                instance_id: new_id("i"),
                reservation_id: reservation_id.clone(),
                owner_id: account.clone(),
                region: region.clone(),
                image_id: image_id.clone(),
                instance_type: itype.name.to_string(),
                architecture: architecture.clone(),
                availability_zone: s.availability_zone.clone(),
                subnet_id: s.subnet_id.clone(),
                vpc_id: s.vpc_id.clone(),
                private_ip: ip,
                network_interface_id: new_id("eni"),
                security_groups: sgs.clone(),
                user_data: user_data.clone(),
                iam_instance_profile: profile.clone(),
                key_name: key_name.clone(),
                client_token: client_token.clone(),
                ami_launch_index: n,
                launch_time: ctx.now,
                state: "pending".into(),
                state_since: ctx.now,
                transition_reason: String::new(),
                tags: tags.clone(),
                metadata_options: metadata_options.clone(),
                instance_lifecycle: instance_lifecycle.clone(),
                launch_template: template.clone(),
                interruption_at: None,
                host_ip: None,
                recorded_from_agent: false,
            };
            t.put(
                &instance_key(account, region, &i.instance_id),
                Row::Instance(Box::new(i.clone())),
            );
            out.push(i);
        }
        s.used_ips += out.len() as u64;
        t.put(&subnet_k, Row::Subnet(s));
        Ok(out)
    })?;
    state.instances_changed();
    Ok(launched)
}

pub fn describe_instances(state: &State, ctx: &Ctx, input: Value) -> HandlerResult {
    dry_run(&input)?;
    let ids = input.string_list("InstanceIds");
    if let Some(m) = input.i64("MaxResults") {
        if !ids.is_empty() {
            return Err(err(
                codes::common::InvalidParameterCombination,
                "The parameter instancesSet cannot be used with the parameter maxResults",
            ));
        }
        if !(5..=1000).contains(&m) {
            return Err(invalid_value(format!(
                "Value ( {m} ) for parameter maxResults is invalid. Expecting a value between 5 and 1000."
            )));
        }
    }
    let instances = if ids.is_empty() {
        state.instances(&ctx.account, &ctx.region, ctx.now)
    } else {
        named_instances(state, ctx, &ids)?
    };
    let mut instances = filter_all(instances, &parse_filters(&input))?;
    instances.sort_by(|a, b| {
        (&a.reservation_id, a.ami_launch_index, &a.instance_id).cmp(&(
            &b.reservation_id,
            b.ami_launch_index,
            &b.instance_id,
        ))
    });
    let page_key = |i: &Instance| {
        format!(
            "{}/{:04}/{}",
            i.reservation_id, i.ami_launch_index, i.instance_id
        )
    };
    let (page, token) = paginate(instances, page_key, &input)?;
    let mut reservations: Vec<Vec<Instance>> = Vec::new();
    for i in page {
        match reservations.last_mut() {
            Some(r)
                if r.first()
                    .is_some_and(|f| f.reservation_id == i.reservation_id) =>
            {
                r.push(i)
            }
            _ => reservations.push(vec![i]),
        }
    }
    let mut out = json!({
        "Reservations": reservations.iter().map(|r| reservation_json(ctx, r)).collect::<Vec<_>>()
    });
    if let Some(t) = token {
        out["NextToken"] = json!(t);
    }
    Ok(out)
}

struct StatusRow(Instance);

impl StatusRow {
    fn status(&self) -> &'static str {
        match self.0.state.as_str() {
            "running" => "ok",
            _ => "not-applicable",
        }
    }
    fn to_json(&self) -> Value {
        let i = &self.0;
        let zone_id = zones(&i.region)
            .into_iter()
            .find(|z| z.name == i.availability_zone)
            .map(|z| z.id)
            .unwrap_or_default();
        let summary = |name: &str| {
            if self.status() == "ok" {
                json!({"Status": "ok", "Details": [{"Name": name, "Status": "passed"}]})
            } else {
                json!({"Status": "not-applicable"})
            }
        };
        json!({
            "AvailabilityZone": i.availability_zone,
            "AvailabilityZoneId": zone_id,
            "InstanceId": i.instance_id,
            "InstanceState": state_json(&i.state),
            "InstanceStatus": summary("reachability"),
            "SystemStatus": summary("reachability"),
            "AttachedEbsStatus": summary("reachability"),
            "Events": [],
        })
    }
}

impl Filterable for StatusRow {
    fn filter_values(&self, name: &str) -> Option<Vec<String>> {
        let v = match name {
            "availability-zone" => self.0.availability_zone.clone(),
            "instance-state-name" => self.0.state.clone(),
            "instance-state-code" => state_code(&self.0.state).to_string(),
            "instance-status.status" | "system-status.status" => self.status().into(),
            "instance-status.reachability" | "system-status.reachability" => {
                if self.status() == "ok" {
                    "passed"
                } else {
                    "not-applicable"
                }
                .into()
            }
            _ => return None,
        };
        Some(vec![v])
    }
}

pub fn describe_instance_status(state: &State, ctx: &Ctx, input: Value) -> HandlerResult {
    dry_run(&input)?;
    let ids = input.string_list("InstanceIds");
    if let Some(m) = input.i64("MaxResults") {
        if !ids.is_empty() {
            return Err(err(
                codes::common::InvalidParameterCombination,
                "The parameter instancesSet cannot be used with the parameter maxResults",
            ));
        }
        if !(5..=1000).contains(&m) {
            return Err(invalid_value(format!(
                "Value ( {m} ) for parameter maxResults is invalid. Expecting a value between 5 and 1000."
            )));
        }
    }
    let mut instances = if ids.is_empty() {
        state.instances(&ctx.account, &ctx.region, ctx.now)
    } else {
        named_instances(state, ctx, &ids)?
    };
    if input.bool("IncludeAllInstances") != Some(true) {
        instances.retain(|i| i.state == "running");
    }
    instances.sort_by(|a, b| a.instance_id.cmp(&b.instance_id));
    let rows = filter_all(
        instances.into_iter().map(StatusRow).collect(),
        &parse_filters(&input),
    )?;
    let (page, token) = paginate(rows, |r| r.0.instance_id.clone(), &input)?;
    let mut out =
        json!({"InstanceStatuses": page.iter().map(StatusRow::to_json).collect::<Vec<_>>()});
    if let Some(t) = token {
        out["NextToken"] = json!(t);
    }
    Ok(out)
}

/// Applies a state change to each named instance in one transaction. `change` gets the
/// instance at `now` and returns the new state (or an error); None leaves it as it is.
fn change_states(
    state: &State,
    ctx: &Ctx,
    input: &Value,
    change: impl Fn(&Instance) -> Result<Option<&'static str>, AwsError>,
) -> Result<Vec<Value>, AwsError> {
    dry_run(input)?;
    let ids = input.string_list("InstanceIds");
    let targets = named_instances(state, ctx, &ids)?;
    let (account, region) = (&ctx.account, &ctx.region);
    let changes = state.rows.transact(|t| {
        let mut out = Vec::new();
        for target in &targets {
            let key = instance_key(account, region, &target.instance_id);
            let Some(Row::Instance(stored)) = t.get(&key).cloned() else {
                return Err(not_found_ids(
                    codes::ec2::InvalidInstanceID_NotFound,
                    "instance",
                    std::slice::from_ref(&target.instance_id),
                ));
            };
            let mut i = stored.at(ctx.now);
            let previous = i.state.clone();
            if let Some(next) = change(&i)? {
                if next != i.state {
                    i.state = next.into();
                    i.state_since = ctx.now;
                    if matches!(next, "stopping" | "shutting-down") {
                        i.transition_reason = format!("User initiated ({})", gmt(ctx.now));
                    } else if next == "pending" {
                        i.transition_reason = String::new();
                    }
                    if next == "shutting-down" {
                        // The address goes back to the subnet.
                        let sk = subnet_key(account, region, &i.subnet_id);
                        if let Some(Row::Subnet(s)) = t.get_mut(&sk) {
                            s.used_ips = s.used_ips.saturating_sub(1);
                        }
                    }
                }
            }
            let current = i.state.clone();
            if i != *stored {
                t.put(&key, Row::Instance(Box::new(i)));
            }
            out.push(json!({
                "InstanceId": target.instance_id,
                "CurrentState": state_json(&current),
                "PreviousState": state_json(&previous),
            }));
        }
        Ok(out)
    })?;
    state.instances_changed();
    Ok(changes)
}

fn incorrect_state(message: String) -> AwsError {
    err(codes::ec2::IncorrectInstanceState, message)
}

pub fn stop_instances(state: &State, ctx: &Ctx, input: Value) -> HandlerResult {
    let out = change_states(state, ctx, &input, |i| match i.state.as_str() {
        "running" => Ok(Some("stopping")),
        "stopping" | "stopped" => Ok(None),
        _ => Err(incorrect_state(format!(
            "This instance '{}' is not in a state from which it can be stopped.",
            i.instance_id
        ))),
    })?;
    Ok(json!({"StoppingInstances": out}))
}

pub fn start_instances(state: &State, ctx: &Ctx, input: Value) -> HandlerResult {
    let out = change_states(state, ctx, &input, |i| match i.state.as_str() {
        "stopped" => Ok(Some("pending")),
        "pending" | "running" => Ok(None),
        _ => Err(incorrect_state(format!(
            "The instance '{}' is not in a state from which it can be started.",
            i.instance_id
        ))),
    })?;
    Ok(json!({"StartingInstances": out}))
}

pub fn terminate_instances(state: &State, ctx: &Ctx, input: Value) -> HandlerResult {
    let out = change_states(state, ctx, &input, |i| match i.state.as_str() {
        "shutting-down" | "terminated" => Ok(None),
        _ => Ok(Some("shutting-down")),
    })?;
    Ok(json!({"TerminatingInstances": out}))
}

struct TypeRow(instance_types::InstanceType);

impl TypeRow {
    fn to_json(&self) -> Value {
        let t = &self.0;
        let mut out = json!({
            "InstanceType": t.name,
            "CurrentGeneration": t.current_generation,
            "FreeTierEligible": t.free_tier,
            "SupportedUsageClasses": ["on-demand", "spot"],
            "SupportedRootDeviceTypes": ["ebs"],
            "SupportedVirtualizationTypes": ["hvm"],
            "BareMetal": t.bare_metal,
            "ProcessorInfo": {
                "SupportedArchitectures": t.architectures,
                "Manufacturer": t.manufacturer,
            },
            "VCpuInfo": {
                "DefaultVCpus": t.vcpus,
                "DefaultCores": t.cores,
                "DefaultThreadsPerCore": t.threads_per_core,
            },
            "MemoryInfo": {"SizeInMiB": t.memory_mib},
            "InstanceStorageSupported": t.instance_storage_gb > 0,
            "EbsInfo": {"EbsOptimizedSupport": "default", "EncryptionSupport": "supported", "NvmeSupport": "required"},
            "NetworkInfo": {
                "NetworkPerformance": t.network_performance,
                "MaximumNetworkInterfaces": t.max_enis,
                "Ipv4AddressesPerInterface": t.ipv4_per_eni,
                "Ipv6AddressesPerInterface": t.ipv6_per_eni,
                "Ipv6Supported": t.ipv6,
                "EnaSupport": t.ena,
            },
            "PlacementGroupInfo": {"SupportedStrategies": ["partition", "spread"]},
            "HibernationSupported": false,
            "BurstablePerformanceSupported": t.burstable,
            "DedicatedHostsSupported": !t.burstable,
            "AutoRecoverySupported": true,
            "SupportedBootModes": ["legacy-bios", "uefi"],
        });
        if !t.hypervisor.is_empty() {
            out["Hypervisor"] = json!(t.hypervisor);
        }
        if t.instance_storage_gb > 0 {
            out["InstanceStorageInfo"] = json!({"TotalSizeInGB": t.instance_storage_gb});
        }
        out
    }
}

impl Filterable for TypeRow {
    fn filter_values(&self, name: &str) -> Option<Vec<String>> {
        let t = &self.0;
        let v = match name {
            "instance-type" => t.name.to_string(),
            "vcpu-info.default-vcpus" => t.vcpus.to_string(),
            "vcpu-info.default-cores" => t.cores.to_string(),
            "vcpu-info.default-threads-per-core" => t.threads_per_core.to_string(),
            "memory-info.size-in-mib" => t.memory_mib.to_string(),
            "processor-info.supported-architecture" => {
                return Some(t.architectures.iter().map(|a| a.to_string()).collect())
            }
            "network-info.maximum-network-interfaces" => t.max_enis.to_string(),
            "network-info.ipv4-addresses-per-interface" => t.ipv4_per_eni.to_string(),
            "network-info.ipv6-supported" => t.ipv6.to_string(),
            "network-info.ena-support" => t.ena.to_string(),
            "current-generation" => t.current_generation.to_string(),
            "free-tier-eligible" => t.free_tier.to_string(),
            "burstable-performance-supported" => t.burstable.to_string(),
            "bare-metal" => t.bare_metal.to_string(),
            "hypervisor" => t.hypervisor.to_string(),
            "instance-storage-supported" => (t.instance_storage_gb > 0).to_string(),
            "supported-virtualization-type" => "hvm".into(),
            "supported-root-device-type" => "ebs".into(),
            "supported-usage-class" => return Some(vec!["on-demand".into(), "spot".into()]),
            _ => return None,
        };
        Some(vec![v])
    }
}

pub fn describe_instance_types(_: &State, _ctx: &Ctx, input: Value) -> HandlerResult {
    dry_run(&input)?;
    let wanted = input.string_list("InstanceTypes");
    let unknown: Vec<&String> = wanted
        .iter()
        .filter(|w| instance_types::lookup(w).is_none())
        .collect();
    if !unknown.is_empty() {
        return Err(err(
            codes::ec2::InvalidInstanceType,
            format!(
                "The following supplied instance types do not exist: [{}]",
                unknown
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    if let Some(m) = input.i64("MaxResults") {
        if !(5..=100).contains(&m) {
            return Err(invalid_value(format!(
                "Value ( {m} ) for parameter maxResults is invalid. Expecting a value between 5 and 100."
            )));
        }
    }
    // The table is sorted by name already.
    let types: Vec<TypeRow> = instance_types::all()
        .iter()
        .filter(|t| wanted.is_empty() || wanted.iter().any(|w| w == t.name))
        .map(|t| TypeRow(*t))
        .collect();
    let types = filter_all(types, &parse_filters(&input))?;
    let (page, token) = paginate(types, |t| t.0.name.to_string(), &input)?;
    let mut out = json!({"InstanceTypes": page.iter().map(TypeRow::to_json).collect::<Vec<_>>()});
    if let Some(t) = token {
        out["NextToken"] = json!(t);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::ec2::ECS_OPTIMIZED_AMIS;
    use crate::services::Deps;
    const AMAZON_OWNER: &str = crate::services::ec2::AMAZON_OWNER_ID;

    fn setup() -> (State, Ctx) {
        (State::new(&Deps::for_tests().store), Ctx::for_tests())
    }

    fn code(r: Result<Value, AwsError>) -> String {
        r.err().map(|e| e.code.to_string()).unwrap_or_default()
    }

    fn ami(ctx: &Ctx, arch: &str) -> String {
        ECS_OPTIMIZED_AMIS
            .iter()
            .find(|a| a.architecture == arch)
            .map(|a| a.image_id(&ctx.region))
            .unwrap_or_default()
    }

    fn run(s: &State, ctx: &Ctx, extra: Value) -> HandlerResult {
        let mut input = json!({"ImageId": ami(ctx, "x86_64"), "InstanceType": "m5.large", "MinCount": 1, "MaxCount": 1});
        if let (Some(i), Some(e)) = (input.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                i.insert(k.clone(), v.clone());
            }
        }
        run_instances(s, ctx, input)
    }

    fn later(ctx: &Ctx, dt: f64) -> Ctx {
        let mut c = ctx.clone();
        c.now += dt;
        c
    }

    #[test]
    fn run_describe_and_lifecycle() {
        let (s, ctx) = setup();
        let user_data = base64::engine::general_purpose::STANDARD
            .encode("#!/bin/bash\necho ECS_CLUSTER=demo >> /etc/ecs/ecs.config");
        let out = run(
            &s,
            &ctx,
            json!({
                "MinCount": 2, "MaxCount": 2, "UserData": user_data,
                "Placement": {"AvailabilityZone": "us-east-1b"},
                "IamInstanceProfile": {"Name": "ecsInstanceRole"},
                "TagSpecifications": [{"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": "web"}]}],
            }),
        )
        .expect("run");
        let rid = out["ReservationId"].as_str().unwrap_or_default();
        assert!(rid.starts_with("r-") && rid.len() == 19, "{rid}");
        let insts = out["Instances"].as_array().cloned().unwrap_or_default();
        assert_eq!(insts.len(), 2);
        let id = insts[0]["InstanceId"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(valid_instance_id(&id) && id.len() == 19, "{id}");
        assert_eq!(insts[0]["State"], json!({"Code": 0, "Name": "pending"}));
        assert_eq!(insts[0]["Placement"]["AvailabilityZone"], "us-east-1b");
        assert_eq!(insts[1]["AmiLaunchIndex"], 1);
        assert_eq!(
            insts[0]["IamInstanceProfile"]["Arn"],
            "arn:aws:iam::000000000000:instance-profile/ecsInstanceRole"
        );
        assert_eq!(insts[0]["SecurityGroups"][0]["GroupName"], "default");
        assert_ne!(insts[0]["PrivateIpAddress"], insts[1]["PrivateIpAddress"]);
        let ip = insts[0]["PrivateIpAddress"].as_str().unwrap_or_default();
        assert!(
            ip.starts_with("172.31.") && ip.parse::<Ipv4Addr>().is_ok(),
            "{ip}"
        );
        // Stored decoded; the subnet counts the addresses.
        let stored = s.instances(&ctx.account, &ctx.region, ctx.now);
        assert_eq!(
            stored[0].user_data.as_deref(),
            Some("#!/bin/bash\necho ECS_CLUSTER=demo >> /etc/ecs/ecs.config")
        );
        let subnet = s
            .subnets(&ctx.account, &ctx.region)
            .into_iter()
            .find(|x| x.availability_zone == "us-east-1b")
            .expect("subnet");
        assert_eq!(subnet.used_ips, 2);

        // Shortly after: running.
        let t1 = later(&ctx, 1.0);
        let d = describe_instances(&s, &t1, json!({"InstanceIds": [id]})).expect("describe");
        assert_eq!(
            d["Reservations"][0]["Instances"][0]["State"]["Name"],
            "running"
        );
        assert_eq!(d["Reservations"][0]["ReservationId"], rid);
        let st = describe_instance_status(&s, &t1, json!({})).expect("status");
        assert_eq!(st["InstanceStatuses"].as_array().map(Vec::len), Some(2));
        assert_eq!(st["InstanceStatuses"][0]["InstanceStatus"]["Status"], "ok");

        // Stop → stopping → stopped; start → pending → running.
        let o = stop_instances(&s, &t1, json!({"InstanceIds": [id]})).expect("stop");
        assert_eq!(
            o["StoppingInstances"][0]["PreviousState"]["Name"],
            "running"
        );
        assert_eq!(
            o["StoppingInstances"][0]["CurrentState"]["Name"],
            "stopping"
        );
        let t2 = later(&t1, 2.0);
        let d = describe_instances(
            &s,
            &t2,
            json!({"Filters": [{"Name": "instance-state-name", "Values": ["stopped"]}]}),
        )
        .expect("d");
        assert_eq!(
            d["Reservations"][0]["Instances"][0]["InstanceId"],
            id.as_str()
        );
        let st = describe_instance_status(&s, &t2, json!({"InstanceIds": [id]})).expect("status");
        assert_eq!(st["InstanceStatuses"].as_array().map(Vec::len), Some(0));
        let st = describe_instance_status(
            &s,
            &t2,
            json!({"InstanceIds": [id], "IncludeAllInstances": true}),
        )
        .expect("status");
        assert_eq!(st["InstanceStatuses"][0]["InstanceState"]["Code"], 80);
        let o = start_instances(&s, &t2, json!({"InstanceIds": [id]})).expect("start");
        assert_eq!(o["StartingInstances"][0]["CurrentState"]["Name"], "pending");
        let t3 = later(&t2, 1.0);
        let d = describe_instances(&s, &t3, json!({"InstanceIds": [id]})).expect("d");
        assert_eq!(
            d["Reservations"][0]["Instances"][0]["State"]["Name"],
            "running"
        );
        assert_eq!(d["Reservations"][0]["Instances"][0]["PrivateIpAddress"], ip);

        // Terminate: shutting-down → terminated, address released, describable for an hour.
        let o = terminate_instances(&s, &t3, json!({"InstanceIds": [id]})).expect("term");
        assert_eq!(
            o["TerminatingInstances"][0]["CurrentState"],
            json!({"Code": 32, "Name": "shutting-down"})
        );
        let t4 = later(&t3, 2.0);
        let d = describe_instances(&s, &t4, json!({"InstanceIds": [id]})).expect("d");
        assert_eq!(
            d["Reservations"][0]["Instances"][0]["State"]["Name"],
            "terminated"
        );
        assert_eq!(
            code(start_instances(&s, &t4, json!({"InstanceIds": [id]}))),
            "IncorrectInstanceState"
        );
        assert_eq!(
            code(stop_instances(&s, &t4, json!({"InstanceIds": [id]}))),
            "IncorrectInstanceState"
        );
        // Terminating again is a no-op.
        let o = terminate_instances(&s, &t4, json!({"InstanceIds": [id]})).expect("again");
        assert_eq!(
            o["TerminatingInstances"][0]["PreviousState"]["Name"],
            "terminated"
        );
        let subnet = s
            .subnet(&ctx.account, &ctx.region, &subnet.subnet_id)
            .expect("subnet");
        assert_eq!(subnet.used_ips, 1);
        let t5 = later(&t4, TERMINATED_RETENTION_S + 10.0);
        assert_eq!(
            code(describe_instances(&s, &t5, json!({"InstanceIds": [id]}))),
            "InvalidInstanceID.NotFound"
        );
        let d = describe_instances(&s, &t5, json!({})).expect("d");
        assert_eq!(
            d["Reservations"][0]["Instances"].as_array().map(Vec::len),
            Some(1)
        );
    }

    /// Unknown AMI ids are refused by default; RegisterImage makes one this account's (with the
    /// architecture it names, i386 by default as in AWS), DescribeImages lists it for
    /// Owners=self, and --accept-any-ami launches any well-formed id with the type's
    /// architecture. Public Amazon Linux parameters resolve (resolve:ssm:) to known AMIs.
    #[test]
    fn registered_images_any_ami_and_amazon_linux_parameters() {
        let (s, ctx) = setup();
        let prod = "ami-0abcdef1234567890";
        let e = run(&s, &ctx, json!({"ImageId": prod})).expect_err("unknown");
        assert_eq!(e.code, "InvalidAMIID.NotFound");
        assert_eq!(e.message, format!("The image id '[{prod}]' does not exist"));

        let reg = |input: Value| crate::services::ec2::images::register_image(&s, &ctx, input);
        let e = reg(json!({})).expect_err("no name");
        assert_eq!(e.code, "MissingParameter");
        let e = reg(json!({"Name": "a!"})).expect_err("malformed");
        assert_eq!(e.code, "InvalidAMIName.Malformed");
        let e = reg(json!({"Name": "app", "Architecture": "sparc"})).expect_err("arch");
        assert_eq!(e.code, "InvalidParameterValue");
        let id = reg(json!({"Name": "app-2026.11", "Architecture": "x86_64", "Description": "app image",
                            "TagSpecifications": [{"ResourceType": "image", "Tags": [{"Key": "team", "Value": "web"}]}]}))
            .expect("register")["ImageId"]
            .as_str()
            .expect("id")
            .to_string();
        assert!(id.starts_with("ami-") && id.len() == 21, "{id}");
        let e = reg(json!({"Name": "app-2026.11", "Architecture": "x86_64"})).expect_err("dup");
        assert_eq!(e.code, "InvalidAMIName.Duplicate");
        assert_eq!(
            e.message,
            format!("AMI name app-2026.11 is already in use by AMI {id}")
        );
        let i386 = reg(json!({"Name": "legacy"})).expect("default arch")["ImageId"]
            .as_str()
            .expect("id")
            .to_string();

        let mine =
            crate::services::ec2::images::describe_images(&s, &ctx, json!({"Owners": ["self"]}))
                .expect("describe");
        let images = mine["Images"].as_array().expect("images");
        assert_eq!(images.len(), 2);
        let app = images.iter().find(|i| i["ImageId"] == id).expect("app");
        assert_eq!(app["OwnerId"], "000000000000");
        assert_eq!(app["Public"], false);
        assert_eq!(app["Architecture"], "x86_64");
        assert_eq!(app["Tags"][0]["Key"], "team");
        let legacy = images
            .iter()
            .find(|i| i["ImageId"] == i386)
            .expect("legacy");
        assert_eq!(legacy["Architecture"], "i386");
        let amazon =
            crate::services::ec2::images::describe_images(&s, &ctx, json!({"Owners": ["amazon"]}))
                .expect("amazon");
        assert!(amazon["Images"]
            .as_array()
            .expect("images")
            .iter()
            .all(|i| i["OwnerId"] == AMAZON_OWNER));

        let out = run(&s, &ctx, json!({"ImageId": id})).expect("registered image launches");
        assert_eq!(out["Instances"][0]["ImageId"], id);
        assert_eq!(out["Instances"][0]["Architecture"], "x86_64");
        assert_eq!(
            code(run(&s, &ctx, json!({"ImageId": i386}))),
            "InvalidParameterValue",
            "an i386 image on m5.large"
        );
        let e = crate::services::ec2::images::deregister_image(
            &s,
            &ctx,
            json!({"ImageId": ami(&ctx, "x86_64")}),
        )
        .expect_err("amazon's");
        assert_eq!(e.code, "AuthFailure");
        crate::services::ec2::images::deregister_image(&s, &ctx, json!({"ImageId": i386}))
            .expect("deregister");
        assert_eq!(
            code(run(&s, &ctx, json!({"ImageId": i386}))),
            "InvalidAMIID.NotFound"
        );

        for (param, arch, itype) in [
            ("al2023-ami-kernel-default-x86_64", "x86_64", "m5.large"),
            ("al2023-ami-kernel-default-arm64", "arm64", "m6g.large"),
            ("amzn2-ami-hvm-x86_64-gp2", "x86_64", "t3.micro"),
        ] {
            let out = run(
                &s,
                &ctx,
                json!({"ImageId": format!("resolve:ssm:/aws/service/ami-amazon-linux-latest/{param}"), "InstanceType": itype}),
            )
            .expect(param);
            let image = out["Instances"][0]["ImageId"].as_str().expect("id");
            assert!(
                crate::services::ec2::find_ami("us-east-1", image).is_some(),
                "{param}"
            );
            assert_eq!(out["Instances"][0]["Architecture"], arch);
        }

        let mut any = State::new(&Deps::for_tests().store);
        any.accept_any_ami = true;
        let out = run(&any, &ctx, json!({"ImageId": prod})).expect("any AMI");
        assert_eq!(out["Instances"][0]["ImageId"], prod);
        let out = run(
            &any,
            &ctx,
            json!({"ImageId": prod, "InstanceType": "m6g.large"}),
        )
        .expect("any AMI on arm64");
        assert_eq!(out["Instances"][0]["Architecture"], "arm64");
        assert_eq!(
            code(run(&any, &ctx, json!({"ImageId": "foo"}))),
            "InvalidAMIID.Malformed"
        );
    }

    #[test]
    fn run_errors() {
        let (s, ctx) = setup();
        assert_eq!(
            code(run(&s, &ctx, json!({"ImageId": "ami-0123456789abcdef0"}))),
            "InvalidAMIID.NotFound"
        );
        assert_eq!(
            code(run(&s, &ctx, json!({"ImageId": "foo"}))),
            "InvalidAMIID.Malformed"
        );
        assert_eq!(
            code(run(&s, &ctx, json!({"InstanceType": "x9.huge"}))),
            "InvalidParameterValue"
        );
        assert_eq!(
            code(run(&s, &ctx, json!({"InstanceType": "m6g.large"}))),
            "InvalidParameterValue",
            "arm64 type with an x86_64 AMI"
        );
        assert_eq!(
            code(run(&s, &ctx, json!({"MinCount": 3, "MaxCount": 2}))),
            "InvalidParameterValue"
        );
        assert_eq!(
            code(run(
                &s,
                &ctx,
                json!({"SubnetId": "subnet-0123456789abcdef0"})
            )),
            "InvalidSubnetID.NotFound"
        );
        assert_eq!(
            code(run(
                &s,
                &ctx,
                json!({"SecurityGroupIds": ["sg-0123456789abcdef0"]})
            )),
            "InvalidGroup.NotFound"
        );
        assert_eq!(
            code(run(&s, &ctx, json!({"SecurityGroups": ["nope"]}))),
            "InvalidGroup.NotFound"
        );
        assert_eq!(
            code(run(&s, &ctx, json!({"UserData": "!!!"}))),
            "InvalidParameterValue"
        );
        assert_eq!(
            code(run(
                &s,
                &ctx,
                json!({"Placement": {"AvailabilityZone": "us-east-1z"}})
            )),
            "InvalidParameterValue"
        );
        assert_eq!(
            code(run(
                &s,
                &ctx,
                json!({"TagSpecifications": [{"ResourceType": "vpc", "Tags": []}]})
            )),
            "InvalidParameterValue"
        );
        assert_eq!(
            code(describe_instances(
                &s,
                &ctx,
                json!({"InstanceIds": ["i-zz"]})
            )),
            "InvalidInstanceID.Malformed"
        );
        assert_eq!(
            code(stop_instances(
                &s,
                &ctx,
                json!({"InstanceIds": ["i-0123456789abcdef0"]})
            )),
            "InvalidInstanceID.NotFound"
        );
        // Nothing was launched by the failures.
        assert!(s.instances(&ctx.account, &ctx.region, ctx.now).is_empty());
        // Arm AMI with an arm type works; a pending instance cannot be stopped.
        let out = run(
            &s,
            &ctx,
            json!({"ImageId": ami(&ctx, "arm64"), "InstanceType": "t4g.small"}),
        )
        .expect("arm");
        assert_eq!(out["Instances"][0]["Architecture"], "arm64");
        let id = out["Instances"][0]["InstanceId"].clone();
        assert_eq!(
            code(stop_instances(&s, &ctx, json!({"InstanceIds": [id]}))),
            "IncorrectInstanceState"
        );
    }

    #[test]
    fn subnet_groups_token_and_filters() {
        let (s, ctx) = setup();
        s.ensure_defaults(&ctx.account, &ctx.region)
            .expect("defaults");
        let subnet = s
            .subnets(&ctx.account, &ctx.region)
            .into_iter()
            .find(|x| x.availability_zone == "us-east-1c")
            .expect("subnet");
        let sg = s
            .security_groups(&ctx.account, &ctx.region)
            .into_iter()
            .next()
            .expect("sg");
        let out = run(
            &s,
            &ctx,
            json!({"SubnetId": subnet.subnet_id, "SecurityGroupIds": [sg.group_id], "ClientToken": "tok", "MaxCount": 3,
                   "TagSpecifications": [{"ResourceType": "instance", "Tags": [{"Key": "env", "Value": "prod"}]}]}),
        )
        .expect("run");
        assert_eq!(out["Instances"].as_array().map(Vec::len), Some(3));
        assert_eq!(out["Instances"][0]["SubnetId"], subnet.subnet_id.as_str());
        assert_eq!(out["Instances"][0]["VpcId"], subnet.vpc_id.as_str());
        // The same client token answers the same reservation.
        let again = run(&s, &ctx, json!({"ClientToken": "tok", "MaxCount": 3})).expect("again");
        assert_eq!(again["ReservationId"], out["ReservationId"]);
        run(&s, &ctx, json!({"InstanceType": "t3.micro"})).expect("other");
        let filter = |name: &str, v: &str| {
            let d = describe_instances(
                &s,
                &ctx,
                json!({"Filters": [{"Name": name, "Values": [v]}]}),
            )
            .expect("d");
            d["Reservations"]
                .as_array()
                .map(|r| {
                    r.iter()
                        .map(|r| r["Instances"].as_array().map(Vec::len).unwrap_or(0))
                        .sum::<usize>()
                })
                .unwrap_or(0)
        };
        assert_eq!(filter("tag:env", "prod"), 3);
        assert_eq!(filter("instance-type", "t3.micro"), 1);
        assert_eq!(filter("subnet-id", &subnet.subnet_id), 3);
        assert_eq!(filter("vpc-id", &subnet.vpc_id), 4);
        assert_eq!(filter("availability-zone", "us-east-1c"), 3);
        assert_eq!(filter("instance-state-name", "pending"), 4);
        let ip = out["Instances"][1]["PrivateIpAddress"]
            .as_str()
            .unwrap_or_default();
        assert_eq!(filter("private-ip-address", ip), 1);
        let id = out["Instances"][2]["InstanceId"]
            .as_str()
            .unwrap_or_default();
        assert_eq!(filter("instance-id", id), 1);
        assert_eq!(
            code(describe_instances(
                &s,
                &ctx,
                json!({"Filters": [{"Name": "bogus", "Values": ["x"]}]})
            )),
            "InvalidParameterValue"
        );
        // Paging: 4 instances, 5 per page max → one page; MaxResults under 5 is refused.
        assert_eq!(
            code(describe_instances(&s, &ctx, json!({"MaxResults": 2}))),
            "InvalidParameterValue"
        );
        let p = describe_instances(&s, &ctx, json!({"MaxResults": 5})).expect("page");
        assert!(p.get("NextToken").is_none());
        // Tags work through CreateTags / DescribeTags too.
        super::super::tags::create_tags(
            &s,
            &ctx,
            json!({"Resources": [id], "Tags": [{"Key": "k", "Value": "v"}]}),
        )
        .expect("tag");
        assert_eq!(filter("tag:k", "v"), 1);
    }

    #[test]
    fn paging_splits_reservations() {
        let (s, ctx) = setup();
        run(&s, &ctx, json!({"MaxCount": 7})).expect("run");
        let p1 = describe_instances(&s, &ctx, json!({"MaxResults": 5})).expect("p1");
        assert_eq!(
            p1["Reservations"][0]["Instances"].as_array().map(Vec::len),
            Some(5)
        );
        let tok = p1["NextToken"].as_str().expect("token").to_string();
        let p2 =
            describe_instances(&s, &ctx, json!({"MaxResults": 5, "NextToken": tok})).expect("p2");
        assert_eq!(
            p2["Reservations"][0]["Instances"].as_array().map(Vec::len),
            Some(2)
        );
        assert_eq!(p2["Reservations"][0]["Instances"][0]["AmiLaunchIndex"], 5);
        assert!(p2.get("NextToken").is_none());
    }

    /// AWS's default type when RunInstances names none, and any type the model lists launches.
    #[test]
    fn run_instances_defaults_to_m1_small() {
        let (s, ctx) = setup();
        let out = run_instances(
            &s,
            &ctx,
            json!({"ImageId": ami(&ctx, "x86_64"), "MinCount": 1, "MaxCount": 1}),
        )
        .expect("launch without InstanceType");
        assert_eq!(out["Instances"][0]["InstanceType"], "m1.small");
        assert_eq!(out["Instances"][0]["CpuOptions"]["CoreCount"], 1);
        for t in [
            "u-6tb1.metal",
            "x2iedn.32xlarge",
            "mac1.metal",
            "hs1.8xlarge",
        ] {
            let Some(it) = instance_types::lookup(t) else {
                panic!("{t} is in the model");
            };
            let arch = if it.supports("x86_64") {
                "x86_64"
            } else {
                "arm64"
            };
            if it.supports(arch) && !t.starts_with("mac") {
                run(
                    &s,
                    &ctx,
                    json!({"InstanceType": t, "ImageId": ami(&ctx, arch)}),
                )
                .unwrap_or_else(|e| panic!("{t}: {}", e.message));
            }
        }
    }

    #[test]
    fn instance_types() {
        let (s, ctx) = setup();
        let d = describe_instance_types(
            &s,
            &ctx,
            json!({"InstanceTypes": ["m5.large", "t4g.micro"]}),
        )
        .expect("types");
        let types = d["InstanceTypes"].as_array().cloned().unwrap_or_default();
        assert_eq!(types.len(), 2);
        assert_eq!(types[0]["InstanceType"], "m5.large");
        assert_eq!(types[0]["VCpuInfo"]["DefaultVCpus"], 2);
        assert_eq!(types[0]["MemoryInfo"]["SizeInMiB"], 8192);
        assert_eq!(
            types[1]["ProcessorInfo"]["SupportedArchitectures"],
            json!(["arm64"])
        );
        assert_eq!(
            code(describe_instance_types(
                &s,
                &ctx,
                json!({"InstanceTypes": ["x9.huge"]})
            )),
            "InvalidInstanceType"
        );
        let d = describe_instance_types(
            &s,
            &ctx,
            json!({"Filters": [{"Name": "processor-info.supported-architecture", "Values": ["arm64"]}, {"Name": "vcpu-info.default-vcpus", "Values": ["4"]}]}),
        )
        .expect("filtered");
        let names: Vec<&str> = d["InstanceTypes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t["InstanceType"].as_str())
            .collect();
        assert!(names.contains(&"m6g.xlarge") && names.contains(&"t4g.xlarge"));
        for n in &names {
            let t = instance_types::lookup(n).expect("known");
            assert!(t.supports("arm64") && t.vcpus == 4, "{n}");
        }
        let p = describe_instance_types(&s, &ctx, json!({"MaxResults": 5})).expect("page");
        assert_eq!(p["InstanceTypes"].as_array().map(Vec::len), Some(5));
        assert!(p["NextToken"].is_string());
    }
}
