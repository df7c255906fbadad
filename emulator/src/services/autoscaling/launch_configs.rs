//! Launch configurations: CreateLaunchConfiguration, DescribeLaunchConfigurations,
//! DeleteLaunchConfiguration, and the RunInstances input one gives.

use super::groups::{groups_in, max_records};
use super::model::LaunchConfiguration;
use super::{group_key, validation, AutoScaling, SVC};
use crate::protocol::codes;
use crate::protocol::AwsError;
use crate::services::input::Input;
use crate::services::{page, Ctx, HandlerResult, Registry};
use serde_json::{json, Value};
use std::sync::Arc;

pub fn register(r: &mut Registry, s: &Arc<AutoScaling>) {
    r.sync(SVC, "CreateLaunchConfiguration", s, create);
    r.sync(SVC, "DescribeLaunchConfigurations", s, describe);
    r.sync(SVC, "DeleteLaunchConfiguration", s, delete);
}

pub fn create(s: &AutoScaling, ctx: &Ctx, input: Value) -> HandlerResult {
    let name = input
        .str("LaunchConfigurationName")
        .unwrap_or_default()
        .to_string();
    let mut data = input.clone();
    if let Some(id) = input.str("InstanceId").filter(|i| !i.is_empty()) {
        // From an instance: its image, type, groups and key, as AWS copies them.
        let ec2 = s.ec2()?;
        let i = ec2
            .instances(&ctx.account, &ctx.region, ctx.now)
            .into_iter()
            .find(|i| i.instance_id == id)
            .ok_or_else(|| validation(format!("Invalid instance id: {id}")))?;
        let o = data
            .as_object_mut()
            .ok_or_else(|| validation("bad input"))?;
        o.entry("ImageId").or_insert(json!(i.image_id));
        o.entry("InstanceType").or_insert(json!(i.instance_type));
        o.entry("SecurityGroups").or_insert(json!(i
            .security_groups
            .iter()
            .map(|(g, _)| g.clone())
            .collect::<Vec<_>>()));
        if let Some(k) = &i.key_name {
            o.entry("KeyName").or_insert(json!(k));
        }
    }
    for k in ["ImageId", "InstanceType"] {
        if data.str(k).is_none_or(str::is_empty) {
            return Err(validation(format!(
                "{k} is required when not specifying an InstanceId"
            )));
        }
    }
    let t = data.str("InstanceType").unwrap_or_default();
    if crate::services::ec2::instance_types::lookup(t).is_none() {
        return Err(validation(format!("Invalid instance type: {t}")));
    }
    let image = data.str("ImageId").unwrap_or_default();
    if !s.ec2()?.image_known(&ctx.account, &ctx.region, image) {
        return Err(validation(format!(
            "AMI {image} is invalid: The image id '[{image}]' does not exist"
        )));
    }
    let key = group_key(&ctx.scope(), &name);
    let lc = LaunchConfiguration {
        arn: ctx.arn(
            "autoscaling",
            &format!(
                "launchConfiguration:{}:launchConfigurationName/{name}",
                uuid::Uuid::new_v4()
            ),
        ),
        name: name.clone(),
        created: ctx.now,
        data,
    };
    s.launch_configs.transact(|t| {
        if t.contains(&key) {
            return Err(AwsError::new(codes::autoscaling::AlreadyExistsFault,
                format!("Launch Configuration by this name already exists - A launch configuration already exists with the name {name}"),
            ));
        }
        t.put(&key, lc);
        Ok(())
    })?;
    Ok(json!({}))
}

pub fn describe(s: &AutoScaling, ctx: &Ctx, input: Value) -> HandlerResult {
    let names = input.string_list("LaunchConfigurationNames");
    let scope = ctx.scope();
    let all: Vec<LaunchConfiguration> = s.launch_configs.read(|rows| {
        rows.range(scope.clone()..)
            .take_while(|(k, _)| k.starts_with(&scope))
            .map(|(_, v)| v.clone())
            .filter(|l| names.is_empty() || names.contains(&l.name))
            .collect()
    });
    let (page, next) = page::page(
        all,
        |l| l.name.clone(),
        input.str("NextToken"),
        max_records(&input, 50)?,
        codes::autoscaling::InvalidNextToken,
    )?;
    let mut out = json!({
        "LaunchConfigurations": page.iter().map(LaunchConfiguration::to_json).collect::<Vec<_>>()
    });
    if let Some(n) = next {
        out["NextToken"] = json!(n);
    }
    Ok(out)
}

pub fn delete(s: &AutoScaling, ctx: &Ctx, input: Value) -> HandlerResult {
    let name = input
        .str("LaunchConfigurationName")
        .unwrap_or_default()
        .to_string();
    let scope = ctx.scope();
    if let Some(g) = groups_in(s, &scope)
        .into_iter()
        .find(|g| g.launch_configuration.as_deref() == Some(name.as_str()))
    {
        return Err(AwsError::new(codes::autoscaling::ResourceInUseFault,
            format!(
                "Cannot delete launch configuration {name} because it is attached to AutoScalingGroup {}",
                g.name
            ),
        ));
    }
    let key = group_key(&scope, &name);
    s.launch_configs.transact(|t| {
        if t.remove(&key).is_none() {
            return Err(validation(format!(
                "Launch configuration name not found - Launch configuration {name} not found"
            )));
        }
        Ok(())
    })?;
    Ok(json!({}))
}

/// RunInstances members from a launch configuration.
pub fn run_input(lc: &LaunchConfiguration) -> Value {
    let d = &lc.data;
    let mut out = json!({
        "ImageId": d.str("ImageId"),
        "InstanceType": d.str("InstanceType"),
    });
    if let Some(k) = d.str("KeyName").filter(|k| !k.is_empty()) {
        out["KeyName"] = json!(k);
    }
    if let Some(u) = d.str("UserData").filter(|u| !u.is_empty()) {
        out["UserData"] = json!(u);
    }
    let groups = d.string_list("SecurityGroups");
    let (ids, names): (Vec<String>, Vec<String>) =
        groups.into_iter().partition(|g| g.starts_with("sg-"));
    if !ids.is_empty() {
        out["SecurityGroupIds"] = json!(ids);
    }
    if !names.is_empty() {
        out["SecurityGroups"] = json!(names);
    }
    if let Some(p) = d.str("IamInstanceProfile").filter(|p| !p.is_empty()) {
        out["IamInstanceProfile"] = if p.starts_with("arn:") {
            json!({"Arn": p})
        } else {
            json!({"Name": p})
        };
    }
    if let Some(m) = d.get("MetadataOptions") {
        out["MetadataOptions"] = m.clone();
    }
    if d.str("SpotPrice").is_some() {
        out["InstanceMarketOptions"] = json!({"MarketType": "spot"});
    }
    out
}
