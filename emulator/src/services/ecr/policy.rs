//! Repository and registry policies, checked as ECR checks them before storing: a JSON object
//! with a known Version and a Statement (one or a list), each with an Effect, a Principal and
//! Actions.
//! Repository policies name no Resource (the repository is the resource). With the registry
//! policy scope V1 a registry policy may grant only the replication and pull-through actions.

use super::invalid;
use crate::protocol::AwsError;
use serde_json::Value;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    Repository,
    /// `v1`: the account's REGISTRY_POLICY_SCOPE is V1.
    Registry {
        v1: bool,
    },
}

/// The actions a V1-scoped registry policy may grant.
const V1_ACTIONS: [&str; 3] = [
    "ecr:ReplicateImage",
    "ecr:BatchImportUpstreamImage",
    "ecr:CreateRepository",
];

/// Checks a policy; the error is ECR's InvalidParameterException. A well-formed policy whose
/// `AWS` principal names something that does not exist (`exists` says) is refused with
/// "Principal not found", as ECR refuses a role that IAM does not know (yet).
pub fn check(text: &str, kind: Kind, exists: impl Fn(&str) -> bool) -> Result<(), AwsError> {
    if !valid(text, kind) {
        let what = match kind {
            Kind::Repository => "repository",
            Kind::Registry { .. } => "registry",
        };
        return Err(invalid(format!(
            "Invalid parameter at 'PolicyText' failed to satisfy constraint: 'Invalid {what} policy provided'"
        )));
    }
    if aws_principals(text).iter().all(|p| exists(p)) {
        Ok(())
    } else {
        Err(invalid(
            "Invalid parameter at 'PolicyText' failed to satisfy constraint: 'Principal not found'",
        ))
    }
}

/// The `AWS` principals (and not-principals) of a well-formed policy's statements.
fn aws_principals(text: &str) -> Vec<String> {
    let Ok(policy) = serde_json::from_str::<Value>(text) else {
        return Vec::new();
    };
    let statements: Vec<&Value> = match policy.get("Statement") {
        Some(Value::Array(a)) => a.iter().collect(),
        Some(s) => vec![s],
        None => Vec::new(),
    };
    statements
        .into_iter()
        .flat_map(|s| [s.get("Principal"), s.get("NotPrincipal")])
        .flatten()
        .filter_map(|p| p.get("AWS"))
        .filter_map(strings)
        .flatten()
        .map(str::to_string)
        .collect()
}

fn valid(text: &str, kind: Kind) -> bool {
    let Ok(Value::Object(policy)) = serde_json::from_str::<Value>(text) else {
        return false;
    };
    if policy
        .get("Version")
        .is_some_and(|v| !matches!(v.as_str(), Some("2012-10-17" | "2008-10-17")))
    {
        return false;
    }
    let statements: Vec<&Value> = match policy.get("Statement") {
        Some(Value::Array(a)) => a.iter().collect(),
        Some(s @ Value::Object(_)) => vec![s],
        _ => return false,
    };
    statements.into_iter().all(|s| statement_valid(s, kind))
}

/// A string or a non-empty list of strings.
fn strings(v: &Value) -> Option<Vec<&str>> {
    match v {
        Value::String(s) => Some(vec![s.as_str()]),
        Value::Array(a) if !a.is_empty() => a.iter().map(Value::as_str).collect(),
        _ => None,
    }
}

fn statement_valid(s: &Value, kind: Kind) -> bool {
    let Value::Object(s) = s else { return false };
    if !matches!(
        s.get("Effect").and_then(Value::as_str),
        Some("Allow" | "Deny")
    ) {
        return false;
    }
    let principal = s.get("Principal").or_else(|| s.get("NotPrincipal"));
    let principal_ok = match principal {
        Some(Value::String(p)) => p == "*",
        Some(Value::Object(m)) => !m.is_empty() && m.values().all(|v| strings(v).is_some()),
        _ => false,
    };
    if !principal_ok {
        return false;
    }
    let Some(actions) = s
        .get("Action")
        .or_else(|| s.get("NotAction"))
        .and_then(strings)
    else {
        return false;
    };
    match kind {
        Kind::Repository => !s.contains_key("Resource") && !s.contains_key("NotResource"),
        Kind::Registry { v1: true } => {
            s.contains_key("Action")
                && actions
                    .iter()
                    .all(|a| V1_ACTIONS.iter().any(|x| x.eq_ignore_ascii_case(a)))
        }
        Kind::Registry { v1: false } => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn msg(text: &str, kind: Kind) -> Option<String> {
        check(text, kind, |_| true).err().map(|e| {
            assert_eq!(e.code, "InvalidParameterException");
            e.message
        })
    }

    #[test]
    fn policies_are_checked_as_ecr_checks_them() {
        let good = json!({"Version": "2012-10-17", "Statement": [{"Sid": "pull", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]}]});
        assert_eq!(msg(&good.to_string(), Kind::Repository), None);
        let repo = "Invalid parameter at 'PolicyText' failed to satisfy constraint: 'Invalid repository policy provided'";
        for bad in [
            "not json".to_string(),
            json!([]).to_string(),
            json!({"Version": "2020-01-01", "Statement": good["Statement"]}).to_string(),
            json!({"Version": "2012-10-17"}).to_string(),
            json!({"Statement": [{"Effect": "Maybe", "Principal": "*", "Action": "ecr:*"}]})
                .to_string(),
            json!({"Statement": [{"Effect": "Allow", "Action": "ecr:*"}]}).to_string(),
            json!({"Statement": [{"Effect": "Allow", "Principal": "*"}]}).to_string(),
            json!({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "ecr:*", "Resource": "*"}]}).to_string(),
        ] {
            assert_eq!(msg(&bad, Kind::Repository).as_deref(), Some(repo), "{bad}");
        }
        let replicate = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::210987654321:root"}, "Action": ["ecr:CreateRepository", "ecr:ReplicateImage"], "Resource": "arn:aws:ecr:us-east-1:123456789012:repository/*"}]}).to_string();
        assert_eq!(msg(&replicate, Kind::Registry { v1: true }), None);
        let pull = replicate.replace("ecr:ReplicateImage", "ecr:BatchGetImage");
        assert_eq!(msg(&pull, Kind::Registry { v1: false }), None);
        assert_eq!(
            msg(&pull, Kind::Registry { v1: true }).as_deref(),
            Some("Invalid parameter at 'PolicyText' failed to satisfy constraint: 'Invalid registry policy provided'")
        );
    }
}
