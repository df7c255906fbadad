//! The file system policy (an IAM resource policy, validated), the backup policy and the
//! lifecycle configuration.

use super::state::{available, file_system_not_found, FileSystem, LifecyclePolicy};
use super::Efs;
use crate::protocol::codes;
use crate::protocol::AwsError;
use crate::services::input::Input;
use crate::services::{Ctx, HandlerResult};
use serde_json::{json, Value};

/// EFS's actions: the NFS client ones and the API's.
const ACTIONS: &[&str] = &[
    "ClientMount",
    "ClientWrite",
    "ClientRootAccess",
    "Backup",
    "CreateAccessPoint",
    "CreateFileSystem",
    "CreateMountTarget",
    "CreateReplicationConfiguration",
    "CreateTags",
    "DeleteAccessPoint",
    "DeleteFileSystem",
    "DeleteFileSystemPolicy",
    "DeleteMountTarget",
    "DeleteReplicationConfiguration",
    "DeleteTags",
    "DescribeAccessPoints",
    "DescribeAccountPreferences",
    "DescribeBackupPolicy",
    "DescribeFileSystemPolicy",
    "DescribeFileSystems",
    "DescribeLifecycleConfiguration",
    "DescribeMountTargetSecurityGroups",
    "DescribeMountTargets",
    "DescribeReplicationConfigurations",
    "DescribeTags",
    "ListTagsForResource",
    "ModifyMountTargetSecurityGroups",
    "PutAccountPreferences",
    "PutBackupPolicy",
    "PutFileSystemPolicy",
    "PutLifecycleConfiguration",
    "ReplicationRead",
    "Restore",
    "TagResource",
    "UntagResource",
    "UpdateFileSystem",
    "UpdateFileSystemProtection",
];

fn invalid(message: impl Into<String>) -> AwsError {
    AwsError::new(codes::efs::InvalidPolicyException, message)
}

/// Whether an IAM action pattern (`*` and `?` wildcards) matches a name, case-insensitively.
fn wildcard(pattern: &str, name: &str) -> bool {
    fn go(p: &[u8], n: &[u8]) -> bool {
        match (p.first(), n.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], n) || (!n.is_empty() && go(p, &n[1..])),
            (Some(b'?'), Some(_)) => go(&p[1..], &n[1..]),
            (Some(a), Some(b)) if a.eq_ignore_ascii_case(b) => go(&p[1..], &n[1..]),
            _ => false,
        }
    }
    go(pattern.as_bytes(), name.as_bytes())
}

fn check_action(action: &Value) -> Result<(), AwsError> {
    let Some(a) = action.as_str() else {
        return Err(invalid(
            "Policy document has an Action that is not a string.",
        ));
    };
    if a == "*" {
        return Ok(());
    }
    let Some((service, name)) = a.split_once(':') else {
        return Err(invalid(format!(
            "Policy document has an invalid action: '{a}'."
        )));
    };
    if !service.eq_ignore_ascii_case("elasticfilesystem") {
        return Err(invalid(format!(
            "Policy document has an action that does not apply to Amazon EFS: '{a}'. Actions must start with 'elasticfilesystem:'."
        )));
    }
    if !ACTIONS.iter().any(|known| wildcard(name, known)) {
        return Err(invalid(format!(
            "Policy document has an invalid action: '{a}'."
        )));
    }
    Ok(())
}

/// One value or a list of them (IAM's string-or-array members).
fn one_or_many(v: &Value) -> Vec<&Value> {
    match v {
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    }
}

fn check_principal(p: &Value) -> Result<(), AwsError> {
    match p {
        Value::String(s) if s == "*" => Ok(()),
        Value::Object(m) if !m.is_empty() => {
            for (kind, ids) in m {
                if !["AWS", "Service", "Federated", "CanonicalUser"].contains(&kind.as_str()) {
                    return Err(invalid(format!(
                        "Policy document has an invalid principal type: '{kind}'."
                    )));
                }
                let ids = one_or_many(ids);
                if ids.is_empty() || ids.iter().any(|i| i.as_str().is_none_or(str::is_empty)) {
                    return Err(invalid("Policy document has an invalid principal."));
                }
            }
            Ok(())
        }
        _ => Err(invalid("Policy document has an invalid principal.")),
    }
}

fn check_statement(s: &Value) -> Result<(), AwsError> {
    let Some(m) = s.as_object() else {
        return Err(invalid(
            "Policy document has a Statement that is not an object.",
        ));
    };
    for k in m.keys() {
        if ![
            "Sid",
            "Effect",
            "Principal",
            "NotPrincipal",
            "Action",
            "NotAction",
            "Resource",
            "NotResource",
            "Condition",
        ]
        .contains(&k.as_str())
        {
            return Err(invalid(format!(
                "Policy document has an unknown statement element: '{k}'."
            )));
        }
    }
    match m.get("Effect").and_then(Value::as_str) {
        Some("Allow") | Some("Deny") => {}
        Some(e) => {
            return Err(invalid(format!(
                "Policy document has an invalid Effect: '{e}'. It must be Allow or Deny."
            )))
        }
        None => return Err(invalid("Policy document is missing required field Effect.")),
    }
    let principal = match (m.get("Principal"), m.get("NotPrincipal")) {
        (Some(p), None) | (None, Some(p)) => p,
        (Some(_), Some(_)) => {
            return Err(invalid(
                "Policy document has both Principal and NotPrincipal in one statement.",
            ))
        }
        (None, None) => {
            return Err(invalid(
                "Policy document is missing required field Principal.",
            ))
        }
    };
    check_principal(principal)?;
    let actions = match (m.get("Action"), m.get("NotAction")) {
        (Some(a), None) | (None, Some(a)) => a,
        (Some(_), Some(_)) => {
            return Err(invalid(
                "Policy document has both Action and NotAction in one statement.",
            ))
        }
        (None, None) => return Err(invalid("Policy document is missing required field Action.")),
    };
    let actions = one_or_many(actions);
    if actions.is_empty() {
        return Err(invalid("Policy document has an empty Action."));
    }
    for a in actions {
        check_action(a)?;
    }
    for key in ["Resource", "NotResource"] {
        if let Some(r) = m.get(key) {
            if one_or_many(r).iter().any(|v| !v.is_string()) {
                return Err(invalid(format!("Policy document has an invalid {key}.")));
            }
        }
    }
    if let Some(c) = m.get("Condition") {
        let ok = c.as_object().is_some_and(|ops| {
            ops.values().all(|keys| {
                keys.as_object().is_some_and(|k| {
                    k.values().all(|v| {
                        one_or_many(v)
                            .iter()
                            .all(|x| x.is_string() || x.is_boolean() || x.is_number())
                    })
                })
            })
        });
        if !ok {
            return Err(invalid("Policy document has an invalid Condition."));
        }
    }
    Ok(())
}

/// Validates a file system policy as EFS does before storing it: JSON, a Version EFS knows, and
/// a Statement (one or a list) of Allow/Deny statements with a Principal and
/// `elasticfilesystem:` actions.
pub fn validate_policy(text: &str) -> Result<(), AwsError> {
    let doc: Value =
        serde_json::from_str(text).map_err(|_| invalid("Policy document is not valid JSON."))?;
    let Some(m) = doc.as_object() else {
        return Err(invalid("Policy document must be a JSON object."));
    };
    for k in m.keys() {
        if !["Version", "Id", "Statement"].contains(&k.as_str()) {
            return Err(invalid(format!(
                "Policy document has an unknown element: '{k}'."
            )));
        }
    }
    match m.get("Version") {
        None => {}
        Some(Value::String(v)) if v == "2012-10-17" || v == "2008-10-17" => {}
        Some(v) => {
            return Err(invalid(format!(
                "Policy document has an invalid Version: {v}. It must be 2012-10-17 or 2008-10-17."
            )))
        }
    }
    let statements = match m.get("Statement") {
        Some(s @ Value::Object(_)) => vec![s],
        Some(Value::Array(items)) if !items.is_empty() => items.iter().collect(),
        Some(_) => {
            return Err(invalid(
                "Policy document has an empty or invalid Statement.",
            ))
        }
        None => {
            return Err(invalid(
                "Policy document is missing required field Statement.",
            ))
        }
    };
    for s in statements {
        check_statement(s)?;
    }
    Ok(())
}

/// Changes a file system (which must be `available`) durably; returns the changed row.
fn change(
    efs: &Efs,
    ctx: &Ctx,
    id: &str,
    f: impl FnOnce(&mut FileSystem) -> Result<(), AwsError>,
) -> Result<FileSystem, AwsError> {
    let scope = ctx.scope();
    let fs = available(&efs.state, &scope, id, ctx.now)?;
    let key = format!("{scope}{}", fs.id);
    efs.state.file_systems.transact(|t| {
        let row = t
            .get_mut(&key)
            .ok_or_else(|| file_system_not_found(&fs.id))?;
        f(row)?;
        Ok(row.clone())
    })
}

pub fn put_file_system_policy(efs: &Efs, ctx: &Ctx, input: Value) -> HandlerResult {
    efs.purge(ctx.now);
    let policy = input.str("Policy").unwrap_or_default().to_string();
    let id = input.str("FileSystemId").unwrap_or_default();
    // The file system is looked up first: an unknown one is FileSystemNotFound whatever the policy.
    efs.state.file_system(&ctx.scope(), id, ctx.now)?;
    validate_policy(&policy)?;
    let fs = change(efs, ctx, id, |f| {
        f.policy = Some(policy.clone());
        Ok(())
    })?;
    Ok(json!({"FileSystemId": fs.id, "Policy": policy}))
}

pub fn describe_file_system_policy(efs: &Efs, ctx: &Ctx, input: Value) -> HandlerResult {
    efs.purge(ctx.now);
    let fs = efs.state.file_system(
        &ctx.scope(),
        input.str("FileSystemId").unwrap_or_default(),
        ctx.now,
    )?;
    match &fs.policy {
        Some(p) => Ok(json!({"FileSystemId": fs.id, "Policy": p})),
        None => Err(AwsError::new(
            codes::efs::PolicyNotFound,
            format!(
                "The file system {} does not have a file system policy.",
                fs.id
            ),
        )),
    }
}

pub fn delete_file_system_policy(efs: &Efs, ctx: &Ctx, input: Value) -> HandlerResult {
    efs.purge(ctx.now);
    change(
        efs,
        ctx,
        input.str("FileSystemId").unwrap_or_default(),
        |f| {
            f.policy = None;
            Ok(())
        },
    )?;
    Ok(json!({}))
}

pub fn put_backup_policy(efs: &Efs, ctx: &Ctx, input: Value) -> HandlerResult {
    efs.purge(ctx.now);
    let status = input
        .pointer("/BackupPolicy/Status")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let id = input.str("FileSystemId").unwrap_or_default();
    efs.state.file_system(&ctx.scope(), id, ctx.now)?;
    if status != "ENABLED" && status != "DISABLED" {
        return Err(AwsError::new(codes::efs::ValidationException,
            format!("The backup policy status '{status}' cannot be set: it must be ENABLED or DISABLED."),
        ));
    }
    change(efs, ctx, id, |f| {
        f.backup = Some(status.clone());
        Ok(())
    })?;
    Ok(json!({"BackupPolicy": {"Status": status}}))
}

pub fn describe_backup_policy(efs: &Efs, ctx: &Ctx, input: Value) -> HandlerResult {
    efs.purge(ctx.now);
    let fs = efs.state.file_system(
        &ctx.scope(),
        input.str("FileSystemId").unwrap_or_default(),
        ctx.now,
    )?;
    match &fs.backup {
        Some(s) => Ok(json!({"BackupPolicy": {"Status": s}})),
        None => Err(AwsError::new(
            codes::efs::PolicyNotFound,
            format!("The file system {} does not have a backup policy.", fs.id),
        )),
    }
}

pub fn put_lifecycle_configuration(efs: &Efs, ctx: &Ctx, input: Value) -> HandlerResult {
    efs.purge(ctx.now);
    let id = input.str("FileSystemId").unwrap_or_default();
    let policies: Vec<LifecyclePolicy> = input.member("LifecyclePolicies")?.unwrap_or_default();
    let fs = efs.state.file_system(&ctx.scope(), id, ctx.now)?;
    let mut kinds = Vec::new();
    for p in &policies {
        let set: Vec<&str> = [
            p.transition_to_ia.as_ref().map(|_| "TransitionToIA"),
            p.transition_to_primary_storage_class
                .as_ref()
                .map(|_| "TransitionToPrimaryStorageClass"),
            p.transition_to_archive
                .as_ref()
                .map(|_| "TransitionToArchive"),
        ]
        .into_iter()
        .flatten()
        .collect();
        if set.len() != 1 {
            return Err(super::state::bad_request(
                "Each LifecyclePolicy object must have exactly one transition (TransitionToIA, TransitionToPrimaryStorageClass or TransitionToArchive).",
            ));
        }
        if kinds.contains(&set[0]) {
            return Err(super::state::bad_request(format!(
                "The LifecyclePolicies contain more than one {} policy.",
                set[0]
            )));
        }
        kinds.push(set[0]);
    }
    if kinds.contains(&"TransitionToArchive") && fs.throughput_mode != "elastic" {
        return Err(super::state::bad_request(
            "TransitionToArchive is only supported for file systems using Elastic throughput.",
        ));
    }
    change(efs, ctx, id, |f| {
        f.lifecycle = policies.clone();
        Ok(())
    })?;
    Ok(json!({"LifecyclePolicies": policies}))
}

pub fn describe_lifecycle_configuration(efs: &Efs, ctx: &Ctx, input: Value) -> HandlerResult {
    efs.purge(ctx.now);
    let fs = efs.state.file_system(
        &ctx.scope(),
        input.str("FileSystemId").unwrap_or_default(),
        ctx.now,
    )?;
    Ok(json!({"LifecyclePolicies": fs.lifecycle}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_are_validated_like_iam_resource_policies() {
        let ok = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},
            "Action":["elasticfilesystem:ClientMount","elasticfilesystem:Client*"],
            "Condition":{"Bool":{"aws:SecureTransport":"true"}}}]}"#;
        validate_policy(ok).expect("valid");
        validate_policy(
            r#"{"Statement":{"Effect":"Deny","Principal":"*","Action":"elasticfilesystem:*"}}"#,
        )
        .expect("one statement, no version");
        let cases = [
            ("not json", "Policy document is not valid JSON."),
            ("[]", "Policy document must be a JSON object."),
            (r#"{"Version":"2012-10-17"}"#, "Policy document is missing required field Statement."),
            (
                r#"{"Version":"2020-01-01","Statement":[]}"#,
                "Policy document has an invalid Version: \"2020-01-01\". It must be 2012-10-17 or 2008-10-17.",
            ),
            (
                r#"{"Statement":[{"Effect":"Maybe","Principal":"*","Action":"elasticfilesystem:ClientMount"}]}"#,
                "Policy document has an invalid Effect: 'Maybe'. It must be Allow or Deny.",
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject"}]}"#,
                "Policy document has an action that does not apply to Amazon EFS: 's3:GetObject'. Actions must start with 'elasticfilesystem:'.",
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"elasticfilesystem:Fly"}]}"#,
                "Policy document has an invalid action: 'elasticfilesystem:Fly'.",
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Action":"elasticfilesystem:ClientMount"}]}"#,
                "Policy document is missing required field Principal.",
            ),
        ];
        for (doc, message) in cases {
            let e = validate_policy(doc).expect_err(doc);
            assert_eq!(e.code, "InvalidPolicyException");
            assert_eq!(e.message, message, "{doc}");
        }
        assert!(wildcard("Client*", "clientwrite"));
        assert!(!wildcard("Client?", "ClientWrite"));
    }
}
