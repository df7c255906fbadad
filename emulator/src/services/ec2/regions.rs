//! Regions and Availability Zones (DescribeRegions, DescribeAvailabilityZones) and
//! DescribeAccountAttributes.

use super::filters::{dry_run, filter_all, invalid_value, parse_filters, Filterable};
use super::state::State;
use crate::services::input::Input;
use crate::services::{Ctx, HandlerResult};
use serde_json::{json, Value};

/// Commercial regions enabled by default, and the opt-in ones.
pub const REGIONS: &[(&str, bool)] = &[
    ("ap-south-1", false),
    ("eu-north-1", false),
    ("eu-west-3", false),
    ("eu-west-2", false),
    ("eu-west-1", false),
    ("ap-northeast-3", false),
    ("ap-northeast-2", false),
    ("ap-northeast-1", false),
    ("ca-central-1", false),
    ("sa-east-1", false),
    ("ap-southeast-1", false),
    ("ap-southeast-2", false),
    ("eu-central-1", false),
    ("us-east-1", false),
    ("us-east-2", false),
    ("us-west-1", false),
    ("us-west-2", false),
    ("af-south-1", true),
    ("ap-east-1", true),
    ("ap-south-2", true),
    ("ap-southeast-3", true),
    ("ap-southeast-4", true),
    ("ca-west-1", true),
    ("eu-central-2", true),
    ("eu-south-1", true),
    ("eu-south-2", true),
    ("il-central-1", true),
    ("me-central-1", true),
    ("me-south-1", true),
];

/// The zone-id prefix of a region: us-east-1 → use1, ap-southeast-2 → apse2, eu-central-1 → euc1.
pub fn region_code(region: &str) -> String {
    let parts: Vec<&str> = region.split('-').collect();
    if parts.len() < 3 {
        return region.replace('-', "");
    }
    let mid = parts[1];
    let mut code = String::from(parts[0]);
    for dir in ["north", "south", "east", "west", "central"] {
        if let Some(rest) = mid.strip_prefix(dir) {
            code.push_str(&dir[..1]);
            if let Some(c) = rest.chars().next() {
                code.push(c);
            }
            break;
        }
    }
    code.push_str(parts[2]);
    code
}

#[derive(Debug, Clone)]
pub struct Zone {
    pub name: String,
    pub id: String,
    pub region: String,
}

/// The region's three Availability Zones: <region>a, b, c.
pub fn zones(region: &str) -> Vec<Zone> {
    let code = region_code(region);
    ["a", "b", "c"]
        .iter()
        .enumerate()
        .map(|(i, l)| Zone {
            name: format!("{region}{l}"),
            id: format!("{code}-az{}", i + 1),
            region: region.to_string(),
        })
        .collect()
}

impl Filterable for Zone {
    fn filter_values(&self, name: &str) -> Option<Vec<String>> {
        let v = match name {
            "zone-name" => self.name.clone(),
            "zone-id" => self.id.clone(),
            "region-name" => self.region.clone(),
            "state" => "available".into(),
            "zone-type" => "availability-zone".into(),
            "group-name" | "network-border-group" => self.region.clone(),
            "opt-in-status" => "opt-in-not-required".into(),
            "message" => return Some(vec![]),
            _ => return None,
        };
        Some(vec![v])
    }
}

pub fn describe_availability_zones(_: &State, ctx: &Ctx, input: Value) -> HandlerResult {
    dry_run(&input)?;
    let mut all = zones(&ctx.region);
    let names = input.string_list("ZoneNames");
    let ids = input.string_list("ZoneIds");
    for n in &names {
        if !all.iter().any(|z| &z.name == n) {
            return Err(invalid_value(format!("The zone '{n}' does not exist.")));
        }
    }
    for n in &ids {
        if !all.iter().any(|z| &z.id == n) {
            return Err(invalid_value(format!("The zone ID '{n}' does not exist.")));
        }
    }
    if !names.is_empty() || !ids.is_empty() {
        all.retain(|z| names.contains(&z.name) || ids.contains(&z.id));
    }
    let zones = filter_all(all, &parse_filters(&input))?;
    Ok(json!({
        "AvailabilityZones": zones.iter().map(|z| json!({
            "State": "available",
            "OptInStatus": "opt-in-not-required",
            "Messages": [],
            "RegionName": z.region,
            "ZoneName": z.name,
            "ZoneId": z.id,
            "GroupName": z.region,
            "NetworkBorderGroup": z.region,
            "ZoneType": "availability-zone",
            "GroupLongName": z.region,
        })).collect::<Vec<_>>()
    }))
}

struct RegionRow {
    name: &'static str,
    opt_in: bool,
}

impl RegionRow {
    fn status(&self) -> &'static str {
        if self.opt_in {
            "not-opted-in"
        } else {
            "opt-in-not-required"
        }
    }
}

impl Filterable for RegionRow {
    fn filter_values(&self, name: &str) -> Option<Vec<String>> {
        let v = match name {
            "region-name" => self.name.to_string(),
            "endpoint" => format!("ec2.{}.amazonaws.com", self.name),
            "opt-in-status" => self.status().to_string(),
            _ => return None,
        };
        Some(vec![v])
    }
}

pub fn describe_regions(_: &State, _ctx: &Ctx, input: Value) -> HandlerResult {
    dry_run(&input)?;
    let all_regions = input.bool("AllRegions") == Some(true);
    let names = input.string_list("RegionNames");
    for n in &names {
        if !REGIONS.iter().any(|(r, _)| r == n) {
            return Err(invalid_value(format!("Invalid region: {n}")));
        }
    }
    let rows: Vec<RegionRow> = REGIONS
        .iter()
        .filter(|(name, opt_in)| {
            if !names.is_empty() {
                names.iter().any(|n| n == name)
            } else {
                all_regions || !opt_in
            }
        })
        .map(|(name, opt_in)| RegionRow {
            name,
            opt_in: *opt_in,
        })
        .collect();
    let rows = filter_all(rows, &parse_filters(&input))?;
    Ok(json!({
        "Regions": rows.iter().map(|r| json!({
            "Endpoint": format!("ec2.{}.amazonaws.com", r.name),
            "RegionName": r.name,
            "OptInStatus": r.status(),
        })).collect::<Vec<_>>()
    }))
}

pub fn describe_account_attributes(state: &State, ctx: &Ctx, input: Value) -> HandlerResult {
    dry_run(&input)?;
    state.ensure_defaults(&ctx.account, &ctx.region)?;
    let default_vpc = state
        .default_vpc(&ctx.account, &ctx.region)
        .map(|v| v.vpc_id)
        .unwrap_or_else(|| "none".into());
    let all: Vec<(&str, Vec<String>)> = vec![
        ("supported-platforms", vec!["VPC".into()]),
        ("vpc-max-security-groups-per-interface", vec!["5".into()]),
        ("max-elastic-ips", vec!["5".into()]),
        ("max-instances", vec!["20".into()]),
        ("vpc-max-elastic-ips", vec!["5".into()]),
        ("default-vpc", vec![default_vpc]),
    ];
    let names = input.string_list("AttributeNames");
    let out: Vec<Value> = all
        .into_iter()
        .filter(|(n, _)| names.is_empty() || names.iter().any(|x| x == n))
        .map(|(n, vals)| {
            json!({
                "AttributeName": n,
                "AttributeValues": vals.iter().map(|v| json!({"AttributeValue": v})).collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok(json!({ "AccountAttributes": out }))
}
