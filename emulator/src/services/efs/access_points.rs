//! Access points: a POSIX identity and a root directory (created from CreationInfo when missing)
//! applied to every request made through them; at most 10,000 per file system.

use super::state::{
    access_point_not_found, available, bad_request, new_id, validation, AccessPoint, PosixUser,
    RootDirectory, MAX_ACCESS_POINTS,
};
use super::tags::{parse_tags, tags_json};
use super::Efs;
use crate::protocol::codes;
use crate::protocol::AwsError;
use crate::services::input::Input;
use crate::services::page::page;
use crate::services::{Ctx, HandlerResult};
use serde_json::{json, Value};

const DEFAULT_MAX_RESULTS: usize = 100;
/// The model's Path pattern (the validator skips it: the regex crate has no look-ahead).
pub const PATH_PATTERN: &str = r"^(\/|(\/(?!\.)+[^$#<>;`|&?{}^*/\n]+){1,4})$";

/// Whether a RootDirectory path satisfies [`PATH_PATTERN`]: "/" or one to four components, none
/// empty, none starting with a dot, none with a character of `$#<>;`|&?{}^*` or a newline.
pub fn valid_path(path: &str) -> bool {
    if path == "/" {
        return true;
    }
    let Some(rest) = path.strip_prefix('/') else {
        return false;
    };
    let parts: Vec<&str> = rest.split('/').collect();
    (1..=4).contains(&parts.len())
        && parts.iter().all(|p| {
            !p.is_empty()
                && !p.starts_with('.')
                && !p.chars().any(|c| "$#<>;`|&?{}^*\n".contains(c))
        })
}

pub fn describe(ap: &AccessPoint, now: f64) -> Value {
    let mut root = json!({"Path": ap.root_path});
    if let Some(ci) = &ap.creation_info {
        root["CreationInfo"] = json!(ci);
    }
    let mut out = json!({
        "ClientToken": ap.client_token,
        "Tags": tags_json(&ap.tags),
        "AccessPointId": ap.id,
        "AccessPointArn": ap.arn,
        "FileSystemId": ap.file_system_id,
        "RootDirectory": root,
        "OwnerId": ap.account,
        "LifeCycleState": ap.state(now),
    });
    if let Some(name) = ap.name() {
        out["Name"] = json!(name);
    }
    if let Some(p) = &ap.posix_user {
        out["PosixUser"] = json!(p);
    }
    out
}

pub fn create_access_point(efs: &Efs, ctx: &Ctx, input: Value) -> HandlerResult {
    efs.purge(ctx.now);
    let scope = ctx.scope();
    let token = input.str("ClientToken").unwrap_or_default().to_string();
    let tags = parse_tags(&input, "tags")?;
    let posix: Option<PosixUser> = input.member("PosixUser")?;
    let root: RootDirectory = input.member("RootDirectory")?.unwrap_or_default();
    let path = root.path.clone().unwrap_or_else(|| "/".to_string());
    if !valid_path(&path) {
        return Err(validation(
            &path,
            "rootDirectory.path",
            &format!("Member must satisfy regular expression pattern: {PATH_PATTERN}"),
        ));
    }
    let fs = available(
        &efs.state,
        &scope,
        input.str("FileSystemId").unwrap_or_default(),
        ctx.now,
    )?;
    let id = new_id("fsap", "LONG_ID");
    let ap = AccessPoint {
        arn: ctx.arn("elasticfilesystem", &format!("access-point/{id}")),
        id,
        account: ctx.account.clone(),
        region: ctx.region.clone(),
        file_system_id: fs.id.clone(),
        client_token: token.clone(),
        tags,
        posix_user: posix,
        root_path: path,
        creation_info: root.creation_info,
        created: ctx.now,
        deleted: None,
    };
    let created = efs.state.access_points.transact(|t| {
        let mine = || {
            t.rows()
                .range(scope.clone()..)
                .take_while(|(k, _)| k.starts_with(&scope))
                .map(|(_, a)| a)
                .filter(|a| a.deleted.is_none())
        };
        // A retry with the same client token and the same request gets the same access point;
        // the token with another request is a conflict.
        if let Some(existing) = mine().find(|a| a.client_token == token) {
            let same = existing.file_system_id == ap.file_system_id
                && existing.posix_user == ap.posix_user
                && existing.root_path == ap.root_path
                && existing.creation_info == ap.creation_info
                && existing.tags == ap.tags;
            if same {
                return Ok(existing.clone());
            }
            let mut e = AwsError::new(codes::efs::AccessPointAlreadyExists,
                format!(
                    "Access point '{}' already exists with client token '{token}'",
                    existing.id
                ),
            );
            let mut fields = serde_json::Map::new();
            fields.insert("AccessPointId".into(), json!(existing.id));
            e.fields = Some(Box::new(fields));
            return Err(e);
        }
        if mine().filter(|a| a.file_system_id == fs.id).count() >= MAX_ACCESS_POINTS {
            return Err(AwsError::new(codes::efs::AccessPointLimitExceeded,
                format!(
                    "You have reached the maximum number of access points ({MAX_ACCESS_POINTS}) for file system {}.",
                    fs.id
                ),
            ));
        }
        t.put(&format!("{scope}{}", ap.id), ap.clone());
        Ok(ap.clone())
    })?;
    Ok(describe(&created, ctx.now))
}

pub fn describe_access_points(efs: &Efs, ctx: &Ctx, input: Value) -> HandlerResult {
    efs.purge(ctx.now);
    let scope = ctx.scope();
    let ap_id = input.str("AccessPointId");
    let fs_id = input.str("FileSystemId");
    let items: Vec<AccessPoint> = match (ap_id, fs_id) {
        (Some(_), Some(_)) => {
            return Err(bad_request(
                "Request cannot contain both an access point ID and a file system ID.",
            ))
        }
        (Some(a), None) => vec![efs.state.access_point(&scope, a, ctx.now)?],
        (None, fs) => {
            let fs_id = match fs {
                Some(f) => Some(efs.state.file_system(&scope, f, ctx.now)?.id),
                None => None,
            };
            efs.state
                .access_points
                .scan(&scope)
                .into_iter()
                .map(|(_, a)| a)
                .filter(|a| a.state(ctx.now) != "deleted")
                .filter(|a| fs_id.as_ref().is_none_or(|f| a.file_system_id == *f))
                .collect()
        }
    };
    let max = input
        .i64("MaxResults")
        .map_or(DEFAULT_MAX_RESULTS, |m| m as usize);
    let (items, next) = page(
        items,
        |a| a.id.clone(),
        input.str("NextToken"),
        max,
        codes::efs::BadRequest,
    )?;
    let mut out = json!({
        "AccessPoints": items.iter().map(|a| describe(a, ctx.now)).collect::<Vec<_>>(),
    });
    if let Some(n) = next {
        out["NextToken"] = json!(n);
    }
    Ok(out)
}

pub fn delete_access_point(efs: &Efs, ctx: &Ctx, input: Value) -> HandlerResult {
    efs.purge(ctx.now);
    let scope = ctx.scope();
    let id = input.str("AccessPointId").unwrap_or_default();
    let ap = efs.state.access_point(&scope, id, ctx.now)?;
    if ap.deleted.is_some() {
        return Ok(json!({}));
    }
    let key = format!("{scope}{}", ap.id);
    efs.state.access_points.transact::<_, AwsError, _>(|t| {
        let a = t
            .get_mut(&key)
            .ok_or_else(|| access_point_not_found(&ap.id))?;
        a.deleted = Some(ctx.now);
        Ok(())
    })?;
    efs.deleted_at(ctx.now);
    Ok(json!({}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_directory_paths_follow_the_model_pattern() {
        for ok in ["/", "/a", "/a/b/c/d", "/data-1/x_y.z", "/a b"] {
            assert!(valid_path(ok), "{ok}");
        }
        for bad in [
            "",
            "a",
            "/a/",
            "//a",
            "/a/b/c/d/e",
            "/.hidden",
            "/a/..",
            "/a$",
            "/a*b",
            "/a\nb",
        ] {
            assert!(!valid_path(bad), "{bad:?}");
        }
    }
}
