//! Account settings (DescribeAccountSettings, PutAccountSetting) and LaunchInstances.
//!
//! The emulator knows no setting AWS enforces: a setting someone puts is stored (per account and
//! region) and described with EnforcementType "none"; DescribeAccountSettings pages over them.

use super::groups::max_records;
use super::model::AccountSetting;
use super::{validation, AutoScaling, SVC};
use crate::controllers::autoscaling::launch_now;
use crate::protocol::codes;
use crate::services::input::Input;
use crate::services::{page, Ctx, HandlerResult, Registry};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

pub fn register(r: &mut Registry, s: &Arc<AutoScaling>) {
    r.sync(SVC, "DescribeAccountSettings", s, describe_account_settings);
    r.sync(SVC, "PutAccountSetting", s, put_account_setting);
    r.sync(SVC, "LaunchInstances", s, launch_instances);
}

fn put_account_setting(s: &AutoScaling, ctx: &Ctx, input: Value) -> HandlerResult {
    let name = input.str("Name").unwrap_or_default().to_string();
    let value = input.str("Value").unwrap_or_default().to_string();
    let key = format!("{}{name}", ctx.scope());
    s.account_settings
        .transact::<_, crate::store::StoreError, _>(|t| {
            t.put(
                &key,
                AccountSetting {
                    name,
                    value,
                    updated: ctx.now,
                },
            );
            Ok(())
        })?;
    Ok(json!({}))
}

fn describe_account_settings(s: &AutoScaling, ctx: &Ctx, input: Value) -> HandlerResult {
    let scope = ctx.scope();
    let wanted = input.str("Name");
    let rows: Vec<AccountSetting> = s.account_settings.read(|rows| {
        rows.range(scope.clone()..)
            .take_while(|(k, _)| k.starts_with(&scope))
            .map(|(_, v)| v.clone())
            .filter(|v| wanted.is_none_or(|n| n == v.name))
            .collect()
    });
    let (page, next) = page::page(
        rows,
        |a| a.name.clone(),
        input.str("NextToken"),
        max_records(&input, 50)?,
        codes::autoscaling::InvalidNextToken,
    )?;
    let settings: Vec<Value> = page
        .iter()
        .map(|a| json!({"Name": a.name, "Value": a.value, "EnforcementType": "none"}))
        .collect();
    let mut out = json!({ "Settings": settings });
    if let Some(n) = next {
        out["NextToken"] = json!(n);
    }
    Ok(out)
}

/// LaunchInstances: launches now (synchronously) and answers with the instances by type,
/// market, subnet and zone, or the error of the launch that failed.
fn launch_instances(s: &AutoScaling, ctx: &Ctx, input: Value) -> HandlerResult {
    let group = input
        .str("AutoScalingGroupName")
        .unwrap_or_default()
        .to_string();
    let g = s.group(&ctx.scope(), &group)?;
    let n = input.i64("RequestedCapacity").unwrap_or(0);
    if n < 1 {
        return Err(validation("RequestedCapacity must be at least 1."));
    }
    let n = n.min(100);
    if g.desired + n > g.max {
        return Err(validation(format!(
            "New SetDesiredCapacity value {} is above max value {} for the AutoScalingGroup.",
            g.desired + n,
            g.max
        )));
    }
    let zones = input.string_list("AvailabilityZones");
    let subnets = input.string_list("SubnetIds");
    let zone = match (zones.first(), subnets.first()) {
        (Some(z), _) => Some(z.clone()),
        (None, Some(sub)) => {
            let stored = g
                .subnets
                .iter()
                .find(|x| super::groups::subnet_id(x) == sub)
                .ok_or_else(|| {
                    validation(format!(
                        "The subnet {sub} is not in the Auto Scaling group's VPCZoneIdentifier."
                    ))
                })?;
            g.subnet_zones.get(stored).cloned()
        }
        (None, None) => None,
    };
    if let Some(z) = &zone {
        if !g.zones.contains(z) {
            return Err(validation(format!(
                "The Availability Zone {z} is not in the Auto Scaling group's Availability Zones."
            )));
        }
    }
    let retry = input.str("RetryStrategy") == Some("retry-with-group-configuration");
    let launched = launch_now(s, ctx, &group, n as usize, zone.as_deref(), retry)?;
    let mut collections: BTreeMap<(String, String, String, String), Vec<String>> = BTreeMap::new();
    for m in &launched.members {
        let market = if m.spot { "spot" } else { "on-demand" };
        collections
            .entry((
                m.instance_type.clone(),
                market.to_string(),
                super::groups::subnet_id(&m.subnet).to_string(),
                m.az.clone(),
            ))
            .or_default()
            .push(m.id.clone());
    }
    let instances: Vec<Value> = collections
        .into_iter()
        .map(|((itype, market, subnet, az), ids)| {
            json!({"InstanceType": itype, "MarketType": market, "SubnetId": subnet,
                   "AvailabilityZone": az, "InstanceIds": ids})
        })
        .collect();
    let errors: Vec<Value> = launched
        .error
        .iter()
        .map(|e| {
            json!({"MarketType": if e.spot { "spot" } else { "on-demand" }, "SubnetId": e.subnet,
                   "AvailabilityZone": e.az, "ErrorCode": "InstanceLaunchFailure", "ErrorMessage": e.message})
        })
        .collect();
    Ok(json!({
        "AutoScalingGroupName": group,
        "ClientToken": input.str("ClientToken"),
        "Instances": instances,
        "Errors": errors,
    }))
}
