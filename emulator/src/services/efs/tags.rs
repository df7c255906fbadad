//! Tags of file systems and access points: TagResource / UntagResource / ListTagsForResource
//! (by id or ARN), and the older CreateTags / DeleteTags / DescribeTags (file systems only).

use super::state::{bad_request, id_of, validation, Tag, MAX_TAGS};
use super::Efs;
use crate::protocol::codes;
use crate::protocol::AwsError;
use crate::services::input::Input;
use crate::services::page::page;
use crate::services::{Ctx, HandlerResult};
use serde_json::{json, Value};

const DEFAULT_MAX: usize = 100;
/// The model's TagKey pattern (look-ahead: the validator skips it).
const TAG_KEY_PATTERN: &str = r"^(?![aA]{1}[wW]{1}[sS]{1}:)([\p{L}\p{Z}\p{N}_.:/=+\-@]+)$";

/// The `Tags` member of a request, checked: keys do not start with `aws:`, at most 50 tags.
/// `path` is the member's name in validation messages ("tags").
pub fn parse_tags(input: &Value, path: &str) -> Result<Vec<Tag>, AwsError> {
    let tags: Vec<Tag> = input.member("Tags")?.unwrap_or_default();
    for (i, t) in tags.iter().enumerate() {
        check_key(&t.key, &format!("{path}.{}.member.key", i + 1))?;
    }
    let mut merged: Vec<Tag> = Vec::new();
    merge(&mut merged, tags);
    if merged.len() > MAX_TAGS {
        return Err(bad_request(format!(
            "A resource can have at most {MAX_TAGS} tags."
        )));
    }
    Ok(merged)
}

fn check_key(key: &str, path: &str) -> Result<(), AwsError> {
    let reserved = key.len() >= 4 && key[..4].eq_ignore_ascii_case("aws:");
    let chars_ok = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_alphanumeric() || c.is_whitespace() || "_.:/=+-@".contains(c));
    if reserved || !chars_ok {
        return Err(validation(
            key,
            path,
            &format!("Member must satisfy regular expression pattern: {TAG_KEY_PATTERN}"),
        ));
    }
    Ok(())
}

/// Adds or replaces tags by key, keeping the order of first appearance.
fn merge(into: &mut Vec<Tag>, tags: Vec<Tag>) {
    for t in tags {
        match into.iter_mut().find(|x| x.key == t.key) {
            Some(x) => x.value = t.value,
            None => into.push(t),
        }
    }
}

pub fn tags_json(tags: &[Tag]) -> Value {
    json!(tags)
}

/// Runs `f` on the tags of the file system or access point `id` (id or ARN), durably.
fn with_tags<R>(
    efs: &Efs,
    ctx: &Ctx,
    resource: &str,
    f: impl FnOnce(&mut Vec<Tag>) -> Result<R, AwsError>,
) -> Result<R, AwsError> {
    let scope = ctx.scope();
    let id = id_of(resource);
    if id.starts_with("fsap-") {
        let ap = efs.state.access_point(&scope, id, ctx.now)?;
        let key = format!("{scope}{}", ap.id);
        efs.state.access_points.transact(|t| {
            let row = t
                .get_mut(&key)
                .ok_or_else(|| super::state::access_point_not_found(id))?;
            f(&mut row.tags)
        })
    } else {
        let fs = efs.state.file_system(&scope, id, ctx.now)?;
        let key = format!("{scope}{}", fs.id);
        efs.state.file_systems.transact(|t| {
            let row = t
                .get_mut(&key)
                .ok_or_else(|| super::state::file_system_not_found(id))?;
            f(&mut row.tags)
        })
    }
}

fn add(efs: &Efs, ctx: &Ctx, resource: &str, input: &Value) -> Result<(), AwsError> {
    let tags = parse_tags(input, "tags")?;
    with_tags(efs, ctx, resource, |current| {
        merge(current, tags);
        if current.len() > MAX_TAGS {
            return Err(bad_request(format!(
                "A resource can have at most {MAX_TAGS} tags."
            )));
        }
        Ok(())
    })
}

fn remove(efs: &Efs, ctx: &Ctx, resource: &str, keys: &[String]) -> Result<(), AwsError> {
    with_tags(efs, ctx, resource, |current| {
        current.retain(|t| !keys.contains(&t.key));
        Ok(())
    })
}

fn list(efs: &Efs, ctx: &Ctx, resource: &str) -> Result<Vec<Tag>, AwsError> {
    let scope = ctx.scope();
    let id = id_of(resource);
    if id.starts_with("fsap-") {
        Ok(efs.state.access_point(&scope, id, ctx.now)?.tags)
    } else {
        Ok(efs.state.file_system(&scope, id, ctx.now)?.tags)
    }
}

pub fn tag_resource(efs: &Efs, ctx: &Ctx, input: Value) -> HandlerResult {
    efs.purge(ctx.now);
    add(
        efs,
        ctx,
        input.str("ResourceId").unwrap_or_default(),
        &input,
    )?;
    Ok(json!({}))
}

pub fn untag_resource(efs: &Efs, ctx: &Ctx, input: Value) -> HandlerResult {
    efs.purge(ctx.now);
    let keys = input.string_list("TagKeys");
    remove(efs, ctx, input.str("ResourceId").unwrap_or_default(), &keys)?;
    Ok(json!({}))
}

pub fn list_tags_for_resource(efs: &Efs, ctx: &Ctx, input: Value) -> HandlerResult {
    efs.purge(ctx.now);
    let tags = list(efs, ctx, input.str("ResourceId").unwrap_or_default())?;
    let max = input.i64("MaxResults").map_or(DEFAULT_MAX, |m| m as usize);
    let (tags, next) = paged(tags, input.str("NextToken"), max)?;
    let mut out = json!({"Tags": tags});
    if let Some(n) = next {
        out["NextToken"] = json!(n);
    }
    Ok(out)
}

/// Tags in their order, paged by position (tokens name the last key returned).
fn paged(
    tags: Vec<Tag>,
    token: Option<&str>,
    max: usize,
) -> Result<(Vec<Tag>, Option<String>), AwsError> {
    let indexed: Vec<(usize, Tag)> = tags.into_iter().enumerate().collect();
    let (items, next) = page(
        indexed,
        |(i, _)| format!("{i:08}"),
        token,
        max,
        codes::efs::BadRequest,
    )?;
    Ok((items.into_iter().map(|(_, t)| t).collect(), next))
}

pub fn create_tags(efs: &Efs, ctx: &Ctx, input: Value) -> HandlerResult {
    efs.purge(ctx.now);
    let id = input.str("FileSystemId").unwrap_or_default().to_string();
    if id.starts_with("fsap-") {
        return Err(super::state::file_system_not_found(&id));
    }
    add(efs, ctx, &id, &input)?;
    Ok(json!({}))
}

pub fn delete_tags(efs: &Efs, ctx: &Ctx, input: Value) -> HandlerResult {
    efs.purge(ctx.now);
    let id = input.str("FileSystemId").unwrap_or_default().to_string();
    remove(efs, ctx, &id, &input.string_list("TagKeys"))?;
    Ok(json!({}))
}

pub fn describe_tags(efs: &Efs, ctx: &Ctx, input: Value) -> HandlerResult {
    efs.purge(ctx.now);
    let id = input.str("FileSystemId").unwrap_or_default();
    let tags = efs.state.file_system(&ctx.scope(), id, ctx.now)?.tags;
    let max = input.i64("MaxItems").map_or(DEFAULT_MAX, |m| m as usize);
    let marker = input.str("Marker");
    let (tags, next) = paged(tags, marker, max)?;
    let mut out = json!({"Tags": tags});
    if let Some(m) = marker {
        out["Marker"] = json!(m);
    }
    if let Some(n) = next {
        out["NextMarker"] = json!(n);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_keys_and_limits() {
        let ok = json!({"Tags": [{"Key": "Name", "Value": "a"}, {"Key": "Name", "Value": "b"}]});
        assert_eq!(
            parse_tags(&ok, "tags").expect("ok"),
            vec![Tag {
                key: "Name".into(),
                value: "b".into()
            }]
        );
        let e = parse_tags(&json!({"Tags": [{"Key": "AWS:x", "Value": ""}]}), "tags")
            .expect_err("reserved");
        assert_eq!(e.code, "BadRequest");
        assert!(
            e.message.starts_with(
                "1 validation error detected: Value 'AWS:x' at 'tags.1.member.key' failed to satisfy constraint"
            ),
            "{}",
            e.message
        );
        let many: Vec<Value> = (0..51)
            .map(|i| json!({"Key": format!("k{i}"), "Value": ""}))
            .collect();
        let e = parse_tags(&json!({ "Tags": many }), "tags").expect_err("51 tags");
        assert_eq!(e.message, "A resource can have at most 50 tags.");
    }
}
