//! Instance profiles: a container for one role that EC2 instances assume.

use super::state::{
    merge_tags, no_such_entity, page, profile_key, role_key, role_not_found, tags_json, unique_id,
    with_page, InstanceProfile, Row, State,
};
use crate::protocol::codes;
use crate::protocol::AwsError;
use crate::services::input::Input;
use crate::services::{Ctx, HandlerResult};
use serde_json::{json, Value};

impl InstanceProfile {
    pub fn to_json(&self, state: &State, account: &str, with_tags: bool) -> Value {
        let roles: Vec<Value> = self
            .roles
            .iter()
            .filter_map(|n| state.role(account, n))
            .map(|r| r.to_json(false))
            .collect();
        let mut v = json!({
            "Path": self.path,
            "InstanceProfileName": self.instance_profile_name,
            "InstanceProfileId": self.instance_profile_id,
            "Arn": self.arn,
            "CreateDate": self.create_date,
            "Roles": roles,
        });
        if with_tags && !self.tags.is_empty() {
            v["Tags"] = tags_json(&self.tags);
        }
        v
    }
}

fn profile_not_found(name: &str) -> AwsError {
    no_such_entity(format!("Instance Profile {name} cannot be found."))
}

pub fn create_instance_profile(state: &State, ctx: &Ctx, input: Value) -> HandlerResult {
    let name = input
        .str("InstanceProfileName")
        .unwrap_or_default()
        .to_string();
    let path = input.str("Path").unwrap_or("/").to_string();
    let mut profile = InstanceProfile {
        instance_profile_name: name.clone(),
        path: path.clone(),
        instance_profile_id: unique_id("AIPA"),
        arn: format!("arn:aws:iam::{}:instance-profile{path}{name}", ctx.account),
        create_date: ctx.now.floor(),
        roles: vec![],
        tags: vec![],
    };
    merge_tags(&mut profile.tags, &input, "InstanceProfile")?;
    let key = profile_key(&ctx.account, &name);
    state.rows.transact(|t| {
        if t.contains(&key) {
            return Err(AwsError::new(
                codes::iam::EntityAlreadyExistsException,
                format!("Instance Profile {name} already exists."),
            ));
        }
        t.put(&key, Row::InstanceProfile(profile.clone()));
        Ok(())
    })?;
    Ok(json!({"InstanceProfile": profile.to_json(state, &ctx.account, true)}))
}

pub fn get_instance_profile(state: &State, ctx: &Ctx, input: Value) -> HandlerResult {
    let name = input.str("InstanceProfileName").unwrap_or_default();
    match state.rows.get(&profile_key(&ctx.account, name)) {
        Some(Row::InstanceProfile(p)) => {
            Ok(json!({"InstanceProfile": p.to_json(state, &ctx.account, true)}))
        }
        _ => Err(profile_not_found(name)),
    }
}

pub fn list_instance_profiles(state: &State, ctx: &Ctx, input: Value) -> HandlerResult {
    let prefix = input.str("PathPrefix").unwrap_or("/");
    let profiles: Vec<InstanceProfile> = state
        .profiles(&ctx.account)
        .into_iter()
        .filter(|p| p.path.starts_with(prefix))
        .collect();
    let (profiles, truncated, marker) = page(
        profiles,
        |p| p.instance_profile_name.to_ascii_lowercase(),
        &input,
    )?;
    Ok(with_page(
        json!({"InstanceProfiles": profiles.iter().map(|p| p.to_json(state, &ctx.account, false)).collect::<Vec<_>>()}),
        truncated,
        marker,
    ))
}

pub fn add_role_to_instance_profile(state: &State, ctx: &Ctx, input: Value) -> HandlerResult {
    let name = input
        .str("InstanceProfileName")
        .unwrap_or_default()
        .to_string();
    let role_name = input.str("RoleName").unwrap_or_default().to_string();
    let account = &ctx.account;
    state.rows.transact(|t| {
        let role = match t.get(&role_key(account, &role_name)) {
            Some(Row::Role(r)) => r.role_name.clone(),
            _ => return Err(role_not_found(&role_name)),
        };
        let Some(Row::InstanceProfile(p)) = t.get_mut(&profile_key(account, &name)) else {
            return Err(profile_not_found(&name));
        };
        if !p.roles.is_empty() {
            return Err(AwsError::new(
                codes::iam::LimitExceededException,
                "Cannot exceed quota for InstanceSessionsPerInstanceProfile: 1",
            ));
        }
        p.roles.push(role);
        Ok(())
    })?;
    Ok(json!({}))
}

pub fn remove_role_from_instance_profile(state: &State, ctx: &Ctx, input: Value) -> HandlerResult {
    let name = input
        .str("InstanceProfileName")
        .unwrap_or_default()
        .to_string();
    let role_name = input.str("RoleName").unwrap_or_default().to_string();
    let account = &ctx.account;
    state.rows.transact(|t| {
        if !t.contains(&role_key(account, &role_name)) {
            return Err(role_not_found(&role_name));
        }
        let Some(Row::InstanceProfile(p)) = t.get_mut(&profile_key(account, &name)) else {
            return Err(profile_not_found(&name));
        };
        let before = p.roles.len();
        p.roles.retain(|r| !r.eq_ignore_ascii_case(&role_name));
        if p.roles.len() == before {
            return Err(no_such_entity(format!(
                "The role with name {role_name} cannot be found in instance profile {name}."
            )));
        }
        Ok(())
    })?;
    Ok(json!({}))
}

pub fn delete_instance_profile(state: &State, ctx: &Ctx, input: Value) -> HandlerResult {
    let name = input
        .str("InstanceProfileName")
        .unwrap_or_default()
        .to_string();
    let key = profile_key(&ctx.account, &name);
    state.rows.transact(|t| {
        let Some(Row::InstanceProfile(p)) = t.get(&key) else {
            return Err(profile_not_found(&name));
        };
        if !p.roles.is_empty() {
            return Err(AwsError::new(
                codes::iam::DeleteConflictException,
                "Cannot delete entity, must remove roles from instance profile first.",
            ));
        }
        t.remove(&key);
        Ok(())
    })?;
    Ok(json!({}))
}
