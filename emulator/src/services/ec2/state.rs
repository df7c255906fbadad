//! EC2 state: one durable table whose rows are the resources of every (account, region), so a
//! change touching several resources (a VPC and its default security group) commits atomically.
//!
//! Row keys: "<account>/<region>/<kind>/<id>", kind = vpc | subnet | sg | instance | defaults.

use super::cidr::Cidr;
use super::filters::Tags;
use super::instances::Instance;
use super::regions::zones;
use super::security_groups::{SecurityGroup, SgRule};
use crate::protocol::AwsError;
use crate::services::random_hex;
use crate::store::{Store, Table};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

pub const DEFAULT_VPC_CIDR: &str = "172.31.0.0/16";
pub const DEFAULT_SUBNET_CIDRS: [&str; 3] = ["172.31.0.0/20", "172.31.16.0/20", "172.31.32.0/20"];

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Vpc {
    pub vpc_id: String,
    pub owner_id: String,
    pub region: String,
    pub cidr_block: String,
    pub cidr_association_id: String,
    pub dhcp_options_id: String,
    pub instance_tenancy: String,
    pub is_default: bool,
    #[serde(default)]
    pub tags: Tags,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Subnet {
    pub subnet_id: String,
    pub vpc_id: String,
    pub owner_id: String,
    pub region: String,
    pub cidr_block: String,
    pub availability_zone: String,
    pub availability_zone_id: String,
    pub default_for_az: bool,
    pub map_public_ip_on_launch: bool,
    /// Addresses taken by network interfaces (instances, awsvpc tasks) in this subnet.
    #[serde(default)]
    pub used_ips: u64,
    #[serde(default)]
    pub tags: Tags,
}

impl Subnet {
    /// AWS reserves five addresses of every subnet.
    pub fn available_ip_address_count(&self) -> u64 {
        Cidr::parse(&self.cidr_block)
            .map(|c| c.size().saturating_sub(5).saturating_sub(self.used_ips))
            .unwrap_or(0)
    }

    pub fn arn(&self) -> String {
        format!(
            "arn:aws:ec2:{}:{}:subnet/{}",
            self.region, self.owner_id, self.subnet_id
        )
    }
}

/// Marks that the default VPC of an (account, region) was created (it may since be deleted).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Defaults {
    pub default_vpc_id: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind")]
pub enum Row {
    Vpc(Vpc),
    Subnet(Subnet),
    SecurityGroup(SecurityGroup),
    Defaults(Defaults),
    Instance(Box<Instance>),
    LaunchTemplate(Box<super::launch_templates::LaunchTemplate>),
    Image(Box<super::images::RegisteredImage>),
}

pub fn scope(account: &str, region: &str) -> String {
    format!("{account}/{region}/")
}

pub fn vpc_key(account: &str, region: &str, id: &str) -> String {
    format!("{account}/{region}/vpc/{id}")
}
pub fn subnet_key(account: &str, region: &str, id: &str) -> String {
    format!("{account}/{region}/subnet/{id}")
}
pub fn sg_key(account: &str, region: &str, id: &str) -> String {
    format!("{account}/{region}/sg/{id}")
}
fn defaults_key(account: &str, region: &str) -> String {
    format!("{account}/{region}/defaults")
}

pub fn new_id(prefix: &str) -> String {
    format!("{prefix}-{}", random_hex(17))
}

pub struct State {
    pub rows: Arc<Table<Row>>,
    /// Notified when instances are launched, stopped, started or terminated.
    pub instance_events: tokio::sync::Notify,
    /// RunInstances launches AMI ids EC2 does not know (`--accept-any-ami`).
    pub accept_any_ami: bool,
}

impl State {
    pub fn new(store: &Arc<Store>) -> State {
        State {
            rows: Table::open(store, "ec2"),
            instance_events: tokio::sync::Notify::new(),
            accept_any_ami: false,
        }
    }

    /// Creates the default VPC, its subnets and security group the first time a (account,
    /// region) is used.
    pub fn ensure_defaults(&self, account: &str, region: &str) -> Result<(), AwsError> {
        let key = defaults_key(account, region);
        if self.rows.contains(&key) {
            return Ok(());
        }
        self.rows.transact(|t| {
            if t.contains(&key) {
                return Ok(());
            }
            let vpc = Vpc {
                vpc_id: new_id("vpc"),
                owner_id: account.into(),
                region: region.into(),
                cidr_block: DEFAULT_VPC_CIDR.into(),
                cidr_association_id: new_id("vpc-cidr-assoc"),
                dhcp_options_id: new_id("dopt"),
                instance_tenancy: "default".into(),
                is_default: true,
                tags: Tags::new(),
            };
            for (zone, cidr) in zones(region).iter().zip(DEFAULT_SUBNET_CIDRS) {
                let s = Subnet {
                    subnet_id: new_id("subnet"),
                    vpc_id: vpc.vpc_id.clone(),
                    owner_id: account.into(),
                    region: region.into(),
                    cidr_block: cidr.into(),
                    availability_zone: zone.name.clone(),
                    availability_zone_id: zone.id.clone(),
                    default_for_az: true,
                    map_public_ip_on_launch: true,
                    used_ips: 0,
                    tags: Tags::new(),
                };
                t.put(&subnet_key(account, region, &s.subnet_id), Row::Subnet(s));
            }
            let sg = SecurityGroup::default_for(&vpc);
            t.put(
                &sg_key(account, region, &sg.group_id),
                Row::SecurityGroup(sg),
            );
            t.put(
                &key,
                Row::Defaults(Defaults {
                    default_vpc_id: vpc.vpc_id.clone(),
                }),
            );
            t.put(&vpc_key(account, region, &vpc.vpc_id), Row::Vpc(vpc));
            Ok(())
        })
    }

    pub fn vpcs(&self, account: &str, region: &str) -> Vec<Vpc> {
        let prefix = format!("{}vpc/", scope(account, region));
        self.rows.read(|rows| {
            rows.range(prefix.clone()..)
                .take_while(|(k, _)| k.starts_with(&prefix))
                .filter_map(|(_, r)| match r {
                    Row::Vpc(v) => Some(v.clone()),
                    _ => None,
                })
                .collect()
        })
    }

    pub fn subnets(&self, account: &str, region: &str) -> Vec<Subnet> {
        let prefix = format!("{}subnet/", scope(account, region));
        self.rows.read(|rows| {
            rows.range(prefix.clone()..)
                .take_while(|(k, _)| k.starts_with(&prefix))
                .filter_map(|(_, r)| match r {
                    Row::Subnet(v) => Some(v.clone()),
                    _ => None,
                })
                .collect()
        })
    }

    pub fn security_groups(&self, account: &str, region: &str) -> Vec<SecurityGroup> {
        let prefix = format!("{}sg/", scope(account, region));
        self.rows.read(|rows| {
            rows.range(prefix.clone()..)
                .take_while(|(k, _)| k.starts_with(&prefix))
                .filter_map(|(_, r)| match r {
                    Row::SecurityGroup(v) => Some(v.clone()),
                    _ => None,
                })
                .collect()
        })
    }

    pub fn vpc(&self, account: &str, region: &str, id: &str) -> Option<Vpc> {
        match self.rows.get(&vpc_key(account, region, id)) {
            Some(Row::Vpc(v)) => Some(v),
            _ => None,
        }
    }

    pub fn subnet(&self, account: &str, region: &str, id: &str) -> Option<Subnet> {
        match self.rows.get(&subnet_key(account, region, id)) {
            Some(Row::Subnet(v)) => Some(v),
            _ => None,
        }
    }

    pub fn security_group(&self, account: &str, region: &str, id: &str) -> Option<SecurityGroup> {
        match self.rows.get(&sg_key(account, region, id)) {
            Some(Row::SecurityGroup(v)) => Some(v),
            _ => None,
        }
    }

    pub fn default_vpc(&self, account: &str, region: &str) -> Option<Vpc> {
        self.vpcs(account, region)
            .into_iter()
            .find(|v| v.is_default)
    }

    /// Every rule of every security group of the scope (for references between groups).
    pub fn all_rules(&self, account: &str, region: &str) -> Vec<(String, SgRule)> {
        self.security_groups(account, region)
            .into_iter()
            .flat_map(|g| {
                let id = g.group_id.clone();
                g.rules.into_iter().map(move |r| (id.clone(), r))
            })
            .collect()
    }
}
