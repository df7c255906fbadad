//! TagResource, UntagResource, ListTagsForResource over every taggable ECS resource.

use super::arns::ResourceArn;
use super::model::Tag;
use super::Ecs;
use crate::protocol::codes;
use crate::protocol::AwsError;
use crate::services::input::Input;
use crate::services::{Ctx, HandlerResult, Registry};
use serde_json::{json, Value};
use std::sync::Arc;

pub fn register(r: &mut Registry, ecs: &Arc<Ecs>) {
    r.sync("ecs", "TagResource", ecs, tag_resource);
    r.sync("ecs", "UntagResource", ecs, untag_resource);
    r.sync("ecs", "ListTagsForResource", ecs, list_tags);
}

fn target(ctx: &Ctx, arn: &str) -> Result<ResourceArn, AwsError> {
    let parsed = ResourceArn::parse(arn).ok_or_else(|| {
        AwsError::new(
            codes::ecs::InvalidParameterException,
            format!("The ARN provided is invalid: {arn}"),
        )
    })?;
    if parsed.account != ctx.account || parsed.region != ctx.region {
        return Err(AwsError::new(
            codes::ecs::InvalidParameterException,
            "The specified resource is not in your account and region.",
        ));
    }
    Ok(parsed)
}

fn not_found(arn: &str) -> AwsError {
    AwsError::new(
        codes::ecs::ResourceNotFoundException,
        format!("The specified resource could not be found: {arn}"),
    )
}

/// Applies `f` to the tags of the resource the ARN names.
fn with_tags<R>(
    ecs: &Ecs,
    ctx: &Ctx,
    arn: &str,
    f: impl FnOnce(&mut Vec<Tag>) -> R,
) -> Result<R, AwsError> {
    let r = target(ctx, arn)?;
    match r.kind.as_str() {
        "cluster" => {
            let key = format!("{}{}", ctx.scope(), r.path);
            ecs.clusters.transact(|t| {
                let c = t
                    .get_mut(&key)
                    .filter(|c| c.status == "ACTIVE")
                    .ok_or_else(|| {
                        AwsError::new(codes::ecs::ClusterNotFoundException, "Cluster not found.")
                    })?;
                Ok(f(&mut c.tags))
            })
        }
        // service/<cluster>/<name>, task/<cluster>/<id>, container-instance/<cluster>/<id>
        "service" => {
            let key = format!("{}{}", ctx.scope(), r.path);
            ecs.services.transact(|t| {
                let s = t
                    .get_mut(&key)
                    .filter(|s| s.status != "INACTIVE")
                    .ok_or_else(|| not_found(arn))?;
                Ok(f(&mut s.tags))
            })
        }
        "task" => {
            let key = format!("{}{}", ctx.scope(), r.path);
            ecs.tasks.transact(|t| {
                let task = t.get_mut(&key).ok_or_else(|| not_found(arn))?;
                Ok(f(&mut task.tags))
            })
        }
        "container-instance" => {
            let key = format!("{}{}", ctx.scope(), r.path);
            ecs.instances.transact(|t| {
                let i = t
                    .get_mut(&key)
                    .filter(|i| i.status != "INACTIVE")
                    .ok_or_else(|| not_found(arn))?;
                // Container instances keep their tags untyped (their row belongs with EC2's).
                let mut tags: Vec<Tag> = i
                    .tags
                    .iter()
                    .filter_map(|t| serde_json::from_value(t.clone()).ok())
                    .collect();
                let r = f(&mut tags);
                i.tags = tags.iter().map(|t| json!(t)).collect();
                Ok(r)
            })
        }
        "task-definition" => {
            let (family, rev) = r.path.split_once(':').ok_or_else(|| not_found(arn))?;
            let rev: i64 = rev.parse().map_err(|_| not_found(arn))?;
            let key = format!("{}{family}:{rev:010}", ctx.scope());
            ecs.task_definitions.transact(|t| {
                let d = t.get_mut(&key).ok_or_else(|| not_found(arn))?;
                Ok(f(&mut d.tags))
            })
        }
        _ => Err(not_found(arn)),
    }
}

fn tag_resource(ecs: &Ecs, ctx: &Ctx, input: Value) -> HandlerResult {
    let arn = input.str("resourceArn").unwrap_or_default().to_string();
    let new_tags: Vec<Tag> = input.member("tags")?.unwrap_or_default();
    for t in &new_tags {
        if t.key
            .as_deref()
            .unwrap_or_default()
            .to_ascii_lowercase()
            .starts_with("aws:")
        {
            return Err(AwsError::new(
                codes::ecs::InvalidParameterException,
                "Tag keys with the aws: prefix are reserved.",
            ));
        }
    }
    let too_many = with_tags(ecs, ctx, &arn, |tags| {
        for t in new_tags {
            tags.retain(|x| x.key != t.key);
            tags.push(t);
        }
        tags.len() > 50
    })?;
    if too_many {
        return Err(AwsError::new(
            codes::ecs::InvalidParameterException,
            "A resource can have at most 50 tags.",
        ));
    }
    Ok(json!({}))
}

fn untag_resource(ecs: &Ecs, ctx: &Ctx, input: Value) -> HandlerResult {
    let arn = input.str("resourceArn").unwrap_or_default().to_string();
    let keys = input.string_list("tagKeys");
    with_tags(ecs, ctx, &arn, |tags| {
        tags.retain(|t| !keys.iter().any(|k| t.key.as_ref() == Some(k)))
    })?;
    Ok(json!({}))
}

fn list_tags(ecs: &Ecs, ctx: &Ctx, input: Value) -> HandlerResult {
    let arn = input.str("resourceArn").unwrap_or_default().to_string();
    let tags = with_tags(ecs, ctx, &arn, |tags| tags.clone())?;
    Ok(json!({"tags": tags}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_untag_list_a_cluster() {
        let ecs = super::super::for_tests();
        let ctx = Ctx::for_tests();
        let arn = "arn:aws:ecs:us-east-1:000000000000:cluster/c";
        assert_eq!(
            tag_resource(&ecs, &ctx, json!({"resourceArn": arn, "tags": []}))
                .unwrap_err()
                .code,
            "ClusterNotFoundException"
        );
        ecs.clusters
            .put(
                "000000000000/us-east-1/c",
                super::super::Cluster {
                    name: "c".into(),
                    arn: arn.into(),
                    status: "ACTIVE".into(),
                    tags: vec![],
                    settings: vec![],
                    configuration: None,
                    capacity_providers: vec![],
                    default_strategy: vec![],
                    service_connect_defaults: None,
                    created_at: 0.0,
                },
            )
            .expect("put");
        tag_resource(&ecs, &ctx, json!({"resourceArn": arn, "tags": [{"key": "a", "value": "1"}, {"key": "b", "value": "2"}]})).expect("tag");
        untag_resource(&ecs, &ctx, json!({"resourceArn": arn, "tagKeys": ["a"]})).expect("untag");
        let l = list_tags(&ecs, &ctx, json!({"resourceArn": arn})).expect("list");
        assert_eq!(l["tags"], json!([{"key": "b", "value": "2"}]));
        assert_eq!(
            list_tags(&ecs, &ctx, json!({"resourceArn": "nope"}))
                .unwrap_err()
                .code,
            "InvalidParameterException"
        );
    }
}
