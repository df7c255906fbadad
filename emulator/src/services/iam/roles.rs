//! Roles, their tags and inline policies.

use super::documents::{self, Kind};
use super::state::{
    merge_tags, page, role_key, role_not_found, tags_json, unique_id, with_page, Role, Row, State,
};
use crate::protocol::codes;
use crate::protocol::AwsError;
use crate::services::input::Input;
use crate::services::{Ctx, HandlerResult};
use serde_json::{json, Value};

impl Role {
    /// The model's Role; `full` adds what only GetRole/CreateRole show (tags, last use).
    pub fn to_json(&self, full: bool) -> Value {
        let mut v = json!({
            "Path": self.path,
            "RoleName": self.role_name,
            "RoleId": self.role_id,
            "Arn": self.arn,
            "CreateDate": self.create_date,
            "AssumeRolePolicyDocument": documents::encode(&self.assume_role_policy_document),
            "MaxSessionDuration": self.max_session_duration,
        });
        if let Some(d) = &self.description {
            v["Description"] = json!(d);
        }
        if full {
            if let Some(b) = &self.permissions_boundary {
                v["PermissionsBoundary"] = json!({
                    "PermissionsBoundaryType": "Policy",
                    "PermissionsBoundaryArn": b,
                });
            }
            if !self.tags.is_empty() {
                v["Tags"] = tags_json(&self.tags);
            }
            v["RoleLastUsed"] = json!({});
        }
        v
    }
}

pub fn get_role_row(state: &State, ctx: &Ctx, name: &str) -> Result<Role, AwsError> {
    state
        .role(&ctx.account, name)
        .ok_or_else(|| role_not_found(name))
}

/// Changes one role inside a transaction.
fn update_role<R>(
    state: &State,
    ctx: &Ctx,
    name: &str,
    f: impl FnOnce(&mut Role) -> Result<R, AwsError>,
) -> Result<R, AwsError> {
    let key = role_key(&ctx.account, name);
    state.rows.transact(|t| match t.get_mut(&key) {
        Some(Row::Role(r)) => f(r),
        _ => Err(role_not_found(name)),
    })
}

pub fn create_role(state: &State, ctx: &Ctx, input: Value) -> HandlerResult {
    let name = input.str("RoleName").unwrap_or_default().to_string();
    let path = input.str("Path").unwrap_or("/").to_string();
    let doc = documents::parse(
        input.str("AssumeRolePolicyDocument").unwrap_or_default(),
        Kind::Trust,
    )?;
    let mut role = Role {
        role_name: name.clone(),
        path: path.clone(),
        role_id: unique_id("AROA"),
        arn: format!("arn:aws:iam::{}:role{path}{name}", ctx.account),
        create_date: ctx.now.floor(),
        assume_role_policy_document: doc,
        description: input.str("Description").map(str::to_string),
        max_session_duration: input.i64("MaxSessionDuration").unwrap_or(3600),
        permissions_boundary: input.str("PermissionsBoundary").map(str::to_string),
        tags: vec![],
        inline_policies: Default::default(),
        attached_policies: vec![],
    };
    merge_tags(&mut role.tags, &input, "Role")?;
    let key = role_key(&ctx.account, &name);
    let limit = 1000;
    let prefix = format!("{}/role/", ctx.account);
    state.rows.transact(|t| {
        if t.contains(&key) {
            return Err(AwsError::new(
                codes::iam::EntityAlreadyExistsException,
                format!("Role with name {name} already exists."),
            ));
        }
        if t.keys(&prefix).len() >= limit {
            return Err(AwsError::new(
                codes::iam::LimitExceededException,
                format!("Cannot exceed quota for RolesPerAccount: {limit}"),
            ));
        }
        t.put(&key, Row::Role(role.clone()));
        Ok(())
    })?;
    Ok(json!({ "Role": role.to_json(true) }))
}

pub fn get_role(state: &State, ctx: &Ctx, input: Value) -> HandlerResult {
    let role = get_role_row(state, ctx, input.str("RoleName").unwrap_or_default())?;
    Ok(json!({ "Role": role.to_json(true) }))
}

pub fn list_roles(state: &State, ctx: &Ctx, input: Value) -> HandlerResult {
    let prefix = input.str("PathPrefix").unwrap_or("/");
    let roles: Vec<Role> = state
        .roles(&ctx.account)
        .into_iter()
        .filter(|r| r.path.starts_with(prefix))
        .collect();
    let (roles, truncated, marker) = page(roles, |r| r.role_name.to_ascii_lowercase(), &input)?;
    Ok(with_page(
        json!({"Roles": roles.iter().map(|r| r.to_json(false)).collect::<Vec<_>>()}),
        truncated,
        marker,
    ))
}

pub fn delete_role(state: &State, ctx: &Ctx, input: Value) -> HandlerResult {
    let name = input.str("RoleName").unwrap_or_default().to_string();
    let key = role_key(&ctx.account, &name);
    let lower = name.to_ascii_lowercase();
    let in_profile = state
        .profiles(&ctx.account)
        .iter()
        .any(|p| p.roles.iter().any(|r| r.to_ascii_lowercase() == lower));
    state.rows.transact(|t| {
        let Some(Row::Role(role)) = t.get(&key) else {
            return Err(role_not_found(&name));
        };
        let conflict = |m: &str| AwsError::new(codes::iam::DeleteConflictException, m.to_string());
        if in_profile {
            return Err(conflict(
                "Cannot delete entity, must remove roles from instance profile first.",
            ));
        }
        if !role.attached_policies.is_empty() {
            return Err(conflict(
                "Cannot delete entity, must detach all policies first.",
            ));
        }
        if !role.inline_policies.is_empty() {
            return Err(conflict(
                "Cannot delete entity, must delete policies first.",
            ));
        }
        t.remove(&key);
        Ok(())
    })?;
    Ok(json!({}))
}

pub fn update_assume_role_policy(state: &State, ctx: &Ctx, input: Value) -> HandlerResult {
    let name = input.str("RoleName").unwrap_or_default();
    let doc = documents::parse(input.str("PolicyDocument").unwrap_or_default(), Kind::Trust)?;
    update_role(state, ctx, name, |r| {
        r.assume_role_policy_document = doc;
        Ok(())
    })?;
    Ok(json!({}))
}

pub fn tag_role(state: &State, ctx: &Ctx, input: Value) -> HandlerResult {
    let name = input.str("RoleName").unwrap_or_default();
    update_role(state, ctx, name, |r| {
        merge_tags(&mut r.tags, &input, "Role")
    })?;
    Ok(json!({}))
}

pub fn untag_role(state: &State, ctx: &Ctx, input: Value) -> HandlerResult {
    let name = input.str("RoleName").unwrap_or_default();
    let keys = input.string_list("TagKeys");
    update_role(state, ctx, name, |r| {
        r.tags.retain(|(k, _)| !keys.contains(k));
        Ok(())
    })?;
    Ok(json!({}))
}

pub fn list_role_tags(state: &State, ctx: &Ctx, input: Value) -> HandlerResult {
    let role = get_role_row(state, ctx, input.str("RoleName").unwrap_or_default())?;
    let (tags, truncated, marker) = page(role.tags, |(k, _)| k.clone(), &input)?;
    Ok(with_page(
        json!({"Tags": tags_json(&tags)}),
        truncated,
        marker,
    ))
}

pub fn put_role_policy(state: &State, ctx: &Ctx, input: Value) -> HandlerResult {
    let name = input.str("RoleName").unwrap_or_default();
    let policy_name = input.str("PolicyName").unwrap_or_default().to_string();
    let doc = documents::parse(
        input.str("PolicyDocument").unwrap_or_default(),
        Kind::Identity,
    )?;
    update_role(state, ctx, name, |r| {
        r.inline_policies.insert(policy_name, doc);
        let total: usize = r
            .inline_policies
            .values()
            .map(|d| d.chars().filter(|c| !c.is_whitespace()).count())
            .sum();
        if total > 10_240 {
            return Err(AwsError::new(
                codes::iam::LimitExceededException,
                "Maximum policy size of 10240 bytes exceeded for role ".to_string() + &r.role_name,
            ));
        }
        Ok(())
    })?;
    Ok(json!({}))
}

fn inline_not_found(policy: &str) -> AwsError {
    AwsError::new(
        codes::iam::NoSuchEntityException,
        format!("The role policy with name {policy} cannot be found."),
    )
}

pub fn get_role_policy(state: &State, ctx: &Ctx, input: Value) -> HandlerResult {
    let role = get_role_row(state, ctx, input.str("RoleName").unwrap_or_default())?;
    let policy_name = input.str("PolicyName").unwrap_or_default();
    let doc = role
        .inline_policies
        .get(policy_name)
        .ok_or_else(|| inline_not_found(policy_name))?;
    Ok(json!({
        "RoleName": role.role_name,
        "PolicyName": policy_name,
        "PolicyDocument": documents::encode(doc),
    }))
}

pub fn delete_role_policy(state: &State, ctx: &Ctx, input: Value) -> HandlerResult {
    let name = input.str("RoleName").unwrap_or_default();
    let policy_name = input.str("PolicyName").unwrap_or_default();
    update_role(state, ctx, name, |r| {
        r.inline_policies
            .remove(policy_name)
            .map(|_| ())
            .ok_or_else(|| inline_not_found(policy_name))
    })?;
    Ok(json!({}))
}

pub fn list_role_policies(state: &State, ctx: &Ctx, input: Value) -> HandlerResult {
    let role = get_role_row(state, ctx, input.str("RoleName").unwrap_or_default())?;
    let names: Vec<String> = role.inline_policies.keys().cloned().collect();
    let (names, truncated, marker) = page(names, |n| n.clone(), &input)?;
    Ok(with_page(json!({"PolicyNames": names}), truncated, marker))
}
