//! CreateTags, DeleteTags, DescribeTags over every taggable EC2 resource of the emulator.

use super::filters::{
    dry_run, err, filter_all, paginate, parse_filters, validate_tag_key, Filterable, Tags,
};
use super::state::{scope, Row, State};
use crate::protocol::codes;
use crate::protocol::AwsError;
use crate::services::input::Input;
use crate::services::{Ctx, HandlerResult};
use serde_json::{json, Value};

/// The row key and resource type of a resource id.
fn locate(account: &str, region: &str, id: &str) -> Result<(String, &'static str), AwsError> {
    let s = scope(account, region);
    let (kind, rtype) = if id.starts_with("vpc-") {
        ("vpc", "vpc")
    } else if id.starts_with("subnet-") {
        ("subnet", "subnet")
    } else if id.starts_with("sg-") {
        ("sg", "security-group")
    } else if id.starts_with("i-") {
        ("instance", "instance")
    } else if id.starts_with("lt-") {
        ("lt", "launch-template")
    } else if id.starts_with("ami-") {
        ("image", "image")
    } else {
        return Err(err(
            codes::ec2::InvalidID,
            format!("The ID '{id}' is not valid"),
        ));
    };
    Ok((format!("{s}{kind}/{id}"), rtype))
}

fn not_found(id: &str) -> AwsError {
    if id.starts_with("vpc-") {
        err(
            codes::ec2::InvalidVpcID_NotFound,
            format!("The vpc ID '{id}' does not exist"),
        )
    } else if id.starts_with("subnet-") {
        err(
            codes::ec2::InvalidSubnetID_NotFound,
            format!("The subnet ID '{id}' does not exist"),
        )
    } else if id.starts_with("i-") {
        err(
            codes::ec2::InvalidInstanceID_NotFound,
            format!("The instance ID '{id}' does not exist"),
        )
    } else if id.starts_with("ami-") {
        err(
            codes::ec2::InvalidAMIID_NotFound,
            format!("The image id '[{id}]' does not exist"),
        )
    } else if id.starts_with("lt-") {
        err(
            codes::ec2::InvalidLaunchTemplateId_NotFound,
            format!("The specified launch template, with template ID {id}, does not exist."),
        )
    } else {
        err(
            codes::ec2::InvalidGroup_NotFound,
            format!("The security group '{id}' does not exist"),
        )
    }
}

fn tags_mut(row: &mut Row) -> Option<&mut Tags> {
    match row {
        Row::Vpc(v) => Some(&mut v.tags),
        Row::Subnet(s) => Some(&mut s.tags),
        Row::SecurityGroup(g) => Some(&mut g.tags),
        Row::Instance(i) => Some(&mut i.tags),
        Row::LaunchTemplate(t) => Some(&mut t.tags),
        Row::Image(i) => Some(&mut i.tags),
        Row::Defaults(_) => None,
    }
}

pub fn create_tags(state: &State, ctx: &Ctx, input: Value) -> HandlerResult {
    dry_run(&input)?;
    state.ensure_defaults(&ctx.account, &ctx.region)?;
    let resources = input.string_list("Resources");
    let mut tags = Vec::new();
    for t in input
        .get("Tags")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let k = t.str("Key").unwrap_or_default().to_string();
        validate_tag_key(&k)?;
        tags.push((k, t.str("Value").unwrap_or_default().to_string()));
    }
    let mut keys = Vec::new();
    for id in &resources {
        keys.push((id.clone(), locate(&ctx.account, &ctx.region, id)?.0));
    }
    state.rows.transact(|t| {
        for (id, key) in &keys {
            let map = t.get_mut(key).and_then(tags_mut).ok_or_else(|| not_found(id))?;
            for (k, v) in &tags {
                map.insert(k.clone(), v.clone());
            }
            if map.len() > 50 {
                return Err(err(codes::ec2::TagLimitExceeded,
                    format!("The maximum number of Tags for a resource has been reached. (Service: AmazonEC2; Resource: {id})"),
                ));
            }
        }
        Ok(())
    })?;
    Ok(json!({}))
}

pub fn delete_tags(state: &State, ctx: &Ctx, input: Value) -> HandlerResult {
    dry_run(&input)?;
    state.ensure_defaults(&ctx.account, &ctx.region)?;
    let resources = input.string_list("Resources");
    // Absent Tags: delete all. A tag with a Value deletes only on a matching value.
    let tags: Option<Vec<(String, Option<String>)>> =
        input.get("Tags").and_then(Value::as_array).map(|a| {
            a.iter()
                .map(|t| {
                    (
                        t.str("Key").unwrap_or_default().to_string(),
                        t.str("Value").map(str::to_string),
                    )
                })
                .collect()
        });
    let mut keys = Vec::new();
    for id in &resources {
        keys.push((id.clone(), locate(&ctx.account, &ctx.region, id)?.0));
    }
    state.rows.transact::<_, AwsError, _>(|t| {
        for (id, key) in &keys {
            let map = t
                .get_mut(key)
                .and_then(tags_mut)
                .ok_or_else(|| not_found(id))?;
            match &tags {
                None => map.clear(),
                Some(list) if list.is_empty() => map.clear(),
                Some(list) => {
                    for (k, v) in list {
                        let remove = match v {
                            None => true,
                            Some(v) => map.get(k) == Some(v),
                        };
                        if remove {
                            map.remove(k);
                        }
                    }
                }
            }
        }
        Ok(())
    })?;
    Ok(json!({}))
}

struct TagRow {
    resource_id: String,
    resource_type: &'static str,
    key: String,
    value: String,
}

impl Filterable for TagRow {
    fn filter_values(&self, name: &str) -> Option<Vec<String>> {
        let v = match name {
            "resource-id" => self.resource_id.clone(),
            "resource-type" => self.resource_type.into(),
            "key" | "tag-key" => self.key.clone(),
            "value" | "tag-value" => self.value.clone(),
            _ => {
                if let Some(k) = name.strip_prefix("tag:") {
                    if k == self.key {
                        return Some(vec![self.value.clone()]);
                    }
                    return Some(vec![]);
                }
                return None;
            }
        };
        Some(vec![v])
    }
}

pub fn describe_tags(state: &State, ctx: &Ctx, input: Value) -> HandlerResult {
    dry_run(&input)?;
    state.ensure_defaults(&ctx.account, &ctx.region)?;
    let prefix = scope(&ctx.account, &ctx.region);
    let mut rows: Vec<TagRow> = Vec::new();
    for (_, row) in state.rows.scan(&prefix) {
        let (id, rtype, tags) = match row {
            Row::Vpc(v) => (v.vpc_id, "vpc", v.tags),
            Row::Subnet(s) => (s.subnet_id, "subnet", s.tags),
            Row::SecurityGroup(g) => (g.group_id, "security-group", g.tags),
            Row::Instance(i) => (i.instance_id, "instance", i.tags),
            Row::LaunchTemplate(t) => (t.id, "launch-template", t.tags),
            Row::Image(i) => (i.image_id, "image", i.tags),
            Row::Defaults(_) => continue,
        };
        for (key, value) in tags {
            rows.push(TagRow {
                resource_id: id.clone(),
                resource_type: rtype,
                key,
                value,
            });
        }
    }
    rows.sort_by(|a, b| (&a.resource_id, &a.key).cmp(&(&b.resource_id, &b.key)));
    let rows = filter_all(rows, &parse_filters(&input))?;
    let (page, token) = paginate(rows, |r| format!("{}\u{1}{}", r.resource_id, r.key), &input)?;
    let mut out = json!({
        "Tags": page.iter().map(|r| json!({
            "Key": r.key,
            "ResourceId": r.resource_id,
            "ResourceType": r.resource_type,
            "Value": r.value,
        })).collect::<Vec<_>>()
    });
    if let Some(t) = token {
        out["NextToken"] = json!(t);
    }
    Ok(out)
}
