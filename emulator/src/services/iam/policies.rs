//! Managed policies (customer and AWS) and their attachment to roles.

use super::documents::{self, Kind};
use super::managed::{aws_policy, AWS_MANAGED_POLICIES};
use super::state::{
    merge_tags, no_such_entity, page, policy_key, role_key, role_not_found, tags_json, unique_id,
    with_page, ManagedPolicy, Row, State,
};
use crate::protocol::codes;
use crate::protocol::AwsError;
use crate::services::input::Input;
use crate::services::{Ctx, HandlerResult};
use serde_json::{json, Value};

pub const POLICIES_PER_ROLE: usize = 10;

impl ManagedPolicy {
    pub fn to_json(&self, attachments: usize, with_tags: bool) -> Value {
        let mut v = json!({
            "PolicyName": self.policy_name,
            "PolicyId": self.policy_id,
            "Arn": self.arn,
            "Path": self.path,
            "DefaultVersionId": self.default_version_id,
            "AttachmentCount": attachments,
            "PermissionsBoundaryUsageCount": 0,
            "IsAttachable": true,
            "CreateDate": self.create_date,
            "UpdateDate": self.update_date,
        });
        if let Some(d) = &self.description {
            v["Description"] = json!(d);
        }
        if with_tags && !self.tags.is_empty() {
            v["Tags"] = tags_json(&self.tags);
        }
        v
    }
}

fn invalid_arn(arn: &str) -> AwsError {
    AwsError::new(
        codes::iam::InvalidInputException,
        format!("ARN {arn} is not valid."),
    )
}

/// The policy an ARN names: AWS managed or this account's.
pub fn find_policy(
    state: &State,
    account: &str,
    arn: &str,
) -> Result<Option<ManagedPolicy>, AwsError> {
    let Some(rest) = arn.strip_prefix("arn:aws:iam::") else {
        return Err(invalid_arn(arn));
    };
    let Some((owner, resource)) = rest.split_once(':') else {
        return Err(invalid_arn(arn));
    };
    if !resource.starts_with("policy/") {
        return Err(invalid_arn(arn));
    }
    if owner == "aws" {
        return Ok(aws_policy(arn).map(|p| p.to_policy()));
    }
    if owner != account {
        return Ok(None);
    }
    let name = resource.rsplit('/').next().unwrap_or_default();
    Ok(match state.rows.get(&policy_key(account, name)) {
        Some(Row::Policy(p)) if p.arn == arn => Some(p),
        _ => None,
    })
}

fn attachment_count(state: &State, account: &str, arn: &str) -> usize {
    state
        .roles(account)
        .iter()
        .filter(|r| r.attached_policies.iter().any(|a| a == arn))
        .count()
}

fn policy_not_found(arn: &str) -> AwsError {
    no_such_entity(format!("Policy {arn} was not found."))
}

pub fn create_policy(state: &State, ctx: &Ctx, input: Value) -> HandlerResult {
    let name = input.str("PolicyName").unwrap_or_default().to_string();
    let path = input.str("Path").unwrap_or("/").to_string();
    let doc = documents::parse(
        input.str("PolicyDocument").unwrap_or_default(),
        Kind::Identity,
    )?;
    let mut policy = ManagedPolicy {
        policy_name: name.clone(),
        path: path.clone(),
        policy_id: unique_id("ANPA"),
        arn: format!("arn:aws:iam::{}:policy{path}{name}", ctx.account),
        document: doc,
        description: input.str("Description").map(str::to_string),
        create_date: ctx.now.floor(),
        update_date: ctx.now.floor(),
        default_version_id: "v1".into(),
        tags: vec![],
    };
    merge_tags(&mut policy.tags, &input, "Policy")?;
    let key = policy_key(&ctx.account, &name);
    state.rows.transact(|t| {
        if t.contains(&key) {
            return Err(AwsError::new(
                codes::iam::EntityAlreadyExistsException,
                format!("A policy called {name} already exists. Duplicate names are not allowed."),
            ));
        }
        t.put(&key, Row::Policy(policy.clone()));
        Ok(())
    })?;
    Ok(json!({ "Policy": policy.to_json(0, true) }))
}

pub fn get_policy(state: &State, ctx: &Ctx, input: Value) -> HandlerResult {
    let arn = input.str("PolicyArn").unwrap_or_default();
    let policy = find_policy(state, &ctx.account, arn)?.ok_or_else(|| policy_not_found(arn))?;
    let n = attachment_count(state, &ctx.account, arn);
    Ok(json!({ "Policy": policy.to_json(n, true) }))
}

pub fn get_policy_version(state: &State, ctx: &Ctx, input: Value) -> HandlerResult {
    let arn = input.str("PolicyArn").unwrap_or_default();
    let version = input.str("VersionId").unwrap_or_default();
    let policy = find_policy(state, &ctx.account, arn)?.ok_or_else(|| policy_not_found(arn))?;
    if policy.default_version_id != version {
        return Err(no_such_entity(format!(
            "Policy {arn} version {version} does not exist or is not attachable."
        )));
    }
    Ok(json!({
        "PolicyVersion": {
            "Document": documents::encode(&policy.document),
            "VersionId": policy.default_version_id,
            "IsDefaultVersion": true,
            "CreateDate": policy.update_date,
        }
    }))
}

pub fn delete_policy(state: &State, ctx: &Ctx, input: Value) -> HandlerResult {
    let arn = input.str("PolicyArn").unwrap_or_default().to_string();
    let policy = find_policy(state, &ctx.account, &arn)?.ok_or_else(|| policy_not_found(&arn))?;
    if arn.starts_with("arn:aws:iam::aws:") {
        return Err(AwsError::new(
            codes::iam::UnmodifiableEntityException,
            format!("Cannot delete an AWS managed policy: {arn}"),
        ));
    }
    let account = ctx.account.clone();
    state.rows.transact(|t| {
        let attached = t
            .rows()
            .range(format!("{account}/role/")..)
            .take_while(|(k, _)| k.starts_with(&format!("{account}/role/")))
            .any(|(_, r)| matches!(r, Row::Role(r) if r.attached_policies.contains(&arn)));
        if attached {
            return Err(AwsError::new(
                codes::iam::DeleteConflictException,
                "Cannot delete a policy attached to entities.",
            ));
        }
        t.remove(&policy_key(&account, &policy.policy_name));
        Ok(())
    })?;
    Ok(json!({}))
}

pub fn list_policies(state: &State, ctx: &Ctx, input: Value) -> HandlerResult {
    let scope = input.str("Scope").unwrap_or("All");
    let only_attached = input.bool("OnlyAttached") == Some(true);
    let prefix = input.str("PathPrefix").unwrap_or("/");
    let mut all: Vec<ManagedPolicy> = Vec::new();
    if scope != "Local" {
        all.extend(AWS_MANAGED_POLICIES.iter().map(|p| p.to_policy()));
    }
    if scope != "AWS" {
        all.extend(state.policies(&ctx.account));
    }
    let roles = state.roles(&ctx.account);
    let count = |arn: &str| {
        roles
            .iter()
            .filter(|r| r.attached_policies.iter().any(|a| a == arn))
            .count()
    };
    let mut rows: Vec<(ManagedPolicy, usize)> = all
        .into_iter()
        .filter(|p| p.path.starts_with(prefix))
        .map(|p| {
            let n = count(&p.arn);
            (p, n)
        })
        .filter(|(_, n)| !only_attached || *n > 0)
        .collect();
    rows.sort_by(|a, b| a.0.arn.cmp(&b.0.arn));
    let (rows, truncated, marker) = page(rows, |(p, _)| p.arn.clone(), &input)?;
    Ok(with_page(
        json!({"Policies": rows.iter().map(|(p, n)| p.to_json(*n, false)).collect::<Vec<_>>()}),
        truncated,
        marker,
    ))
}

pub fn attach_role_policy(state: &State, ctx: &Ctx, input: Value) -> HandlerResult {
    let name = input.str("RoleName").unwrap_or_default().to_string();
    let arn = input.str("PolicyArn").unwrap_or_default().to_string();
    if find_policy(state, &ctx.account, &arn)?.is_none() {
        return Err(no_such_entity(format!(
            "Policy {arn} does not exist or is not attachable."
        )));
    }
    let key = role_key(&ctx.account, &name);
    state.rows.transact(|t| {
        let Some(Row::Role(r)) = t.get_mut(&key) else {
            return Err(role_not_found(&name));
        };
        if r.attached_policies.contains(&arn) {
            return Ok(());
        }
        if r.attached_policies.len() >= POLICIES_PER_ROLE {
            return Err(AwsError::new(
                codes::iam::LimitExceededException,
                format!("Cannot exceed quota for PoliciesPerRole: {POLICIES_PER_ROLE}"),
            ));
        }
        r.attached_policies.push(arn.clone());
        Ok(())
    })?;
    Ok(json!({}))
}

pub fn detach_role_policy(state: &State, ctx: &Ctx, input: Value) -> HandlerResult {
    let name = input.str("RoleName").unwrap_or_default().to_string();
    let arn = input.str("PolicyArn").unwrap_or_default().to_string();
    if !arn.starts_with("arn:") {
        return Err(invalid_arn(&arn));
    }
    let key = role_key(&ctx.account, &name);
    state.rows.transact(|t| {
        let Some(Row::Role(r)) = t.get_mut(&key) else {
            return Err(role_not_found(&name));
        };
        let before = r.attached_policies.len();
        r.attached_policies.retain(|a| a != &arn);
        if r.attached_policies.len() == before {
            return Err(policy_not_found(&arn));
        }
        Ok(())
    })?;
    Ok(json!({}))
}

pub fn list_attached_role_policies(state: &State, ctx: &Ctx, input: Value) -> HandlerResult {
    let name = input.str("RoleName").unwrap_or_default();
    let role = state
        .role(&ctx.account, name)
        .ok_or_else(|| role_not_found(name))?;
    let prefix = input.str("PathPrefix").unwrap_or("/");
    let mut attached = Vec::new();
    for arn in &role.attached_policies {
        if let Some(p) = find_policy(state, &ctx.account, arn)? {
            if p.path.starts_with(prefix) {
                attached.push(p);
            }
        }
    }
    let (attached, truncated, marker) = page(attached, |p| p.arn.clone(), &input)?;
    Ok(with_page(
        json!({"AttachedPolicies": attached.iter().map(|p| json!({
            "PolicyName": p.policy_name,
            "PolicyArn": p.arn,
        })).collect::<Vec<_>>()}),
        truncated,
        marker,
    ))
}
