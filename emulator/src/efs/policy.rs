//! A small evaluator of EFS file system policies for the three client actions
//! (elasticfilesystem:ClientMount, ClientWrite, ClientRootAccess), as a mount with
//! `iam: ENABLED` (or an anonymous one) is authorized.
//!
//! Covered: Allow/Deny, Principal ("*", {"AWS": "*" | ARN | account id | [..]}), Action and
//! NotAction with wildcards, and Conditions Bool / StringEquals / StringNotEquals / StringLike /
//! StringNotLike / ArnEquals / ArnLike / ArnNotEquals / ArnNotLike on `aws:SecureTransport`,
//! `elasticfilesystem:AccessPointArn` and `aws:PrincipalArn`. An explicit Deny wins; without a
//! policy every client action is allowed (EFS's default policy); with one, an action needs an
//! Allow. A condition on any other key makes the statement not apply.

use serde_json::Value;

/// What a client may do on a file system.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grants {
    pub mount: bool,
    pub write: bool,
    pub root: bool,
}

impl Grants {
    pub const ALL: Grants = Grants {
        mount: true,
        write: true,
        root: true,
    };
}

/// Who mounts and how.
#[derive(Debug, Clone, Default)]
pub struct MountContext {
    /// The task role's ARN when the mount uses IAM; None for an anonymous mount.
    pub principal_arn: Option<String>,
    /// The access point's ARN, when mounting through one.
    pub access_point_arn: Option<String>,
    /// TLS (transitEncryption ENABLED).
    pub secure_transport: bool,
}

/// Evaluates `policy` (a JSON document) for the three client actions.
pub fn evaluate(policy: Option<&str>, ctx: &MountContext) -> Grants {
    let Some(policy) = policy else {
        return Grants::ALL;
    };
    let Ok(doc) = serde_json::from_str::<Value>(policy) else {
        // Stored policies were validated on PutFileSystemPolicy; an unreadable one grants nothing.
        return Grants {
            mount: false,
            write: false,
            root: false,
        };
    };
    let statements: Vec<&Value> = match doc.get("Statement") {
        Some(Value::Array(a)) => a.iter().collect(),
        Some(s @ Value::Object(_)) => vec![s],
        _ => Vec::new(),
    };
    let allowed = |action: &str| decide(&statements, action, ctx);
    Grants {
        mount: allowed("elasticfilesystem:ClientMount"),
        write: allowed("elasticfilesystem:ClientWrite"),
        root: allowed("elasticfilesystem:ClientRootAccess"),
    }
}

fn decide(statements: &[&Value], action: &str, ctx: &MountContext) -> bool {
    let mut allow = false;
    for s in statements {
        if !applies(s, action, ctx) {
            continue;
        }
        match s.get("Effect").and_then(Value::as_str) {
            Some("Deny") => return false,
            Some("Allow") => allow = true,
            _ => {}
        }
    }
    allow
}

fn applies(s: &Value, action: &str, ctx: &MountContext) -> bool {
    let action_ok = match (s.get("Action"), s.get("NotAction")) {
        (Some(a), _) => strings(a).iter().any(|p| glob(p, action, true)),
        (None, Some(na)) => !strings(na).iter().any(|p| glob(p, action, true)),
        (None, None) => false,
    };
    action_ok && principal_matches(s, ctx) && conditions_hold(s.get("Condition"), ctx)
}

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a
            .iter()
            .filter_map(|x| x.as_str().map(str::to_string))
            .collect(),
        Value::Bool(b) => vec![b.to_string()],
        _ => Vec::new(),
    }
}

fn principal_matches(s: &Value, ctx: &MountContext) -> bool {
    let Some(p) = s.get("Principal") else {
        // A resource policy statement without a Principal applies to no one.
        return false;
    };
    let names = match p {
        Value::String(x) => vec![x.clone()],
        Value::Object(o) => o.get("AWS").map(strings).unwrap_or_default(),
        _ => Vec::new(),
    };
    names.iter().any(|n| {
        if n == "*" {
            return true;
        }
        let Some(arn) = &ctx.principal_arn else {
            return false;
        };
        let account = arn.split(':').nth(4).unwrap_or("");
        n == arn
            || n == account
            || *n == format!("arn:aws:iam::{account}:root")
            || same_role(n, arn)
    })
}

/// `arn:aws:sts::A:assumed-role/R/session` names the same principal as `arn:aws:iam::A:role/R`.
fn same_role(a: &str, b: &str) -> bool {
    fn role(x: &str) -> Option<(String, String)> {
        let parts: Vec<&str> = x.splitn(6, ':').collect();
        let (acct, res) = (parts.get(4)?, parts.get(5)?);
        if let Some(r) = res.strip_prefix("role/") {
            return Some((acct.to_string(), r.rsplit('/').next()?.to_string()));
        }
        let r = res.strip_prefix("assumed-role/")?;
        Some((acct.to_string(), r.split('/').next()?.to_string()))
    }
    matches!((role(a), role(b)), (Some(x), Some(y)) if x == y)
}

fn conditions_hold(cond: Option<&Value>, ctx: &MountContext) -> bool {
    let Some(Value::Object(ops)) = cond else {
        return cond.is_none();
    };
    ops.iter().all(|(op, keys)| {
        let Value::Object(keys) = keys else {
            return false;
        };
        keys.iter()
            .all(|(key, want)| condition(op, key, &strings(want), ctx))
    })
}

fn condition(op: &str, key: &str, want: &[String], ctx: &MountContext) -> bool {
    let (op, if_exists) = match op.strip_suffix("IfExists") {
        Some(o) => (o, true),
        None => (op, false),
    };
    let actual: Option<String> = match key.to_ascii_lowercase().as_str() {
        "aws:securetransport" => Some(ctx.secure_transport.to_string()),
        "elasticfilesystem:accesspointarn" => ctx.access_point_arn.clone(),
        "aws:principalarn" => ctx.principal_arn.clone(),
        _ => return false,
    };
    let Some(actual) = actual else {
        // A missing key satisfies the negated operators and the IfExists forms only.
        return if_exists || op.contains("Not");
    };
    let any = |f: &dyn Fn(&str) -> bool| want.iter().any(|w| f(w));
    match op {
        "Bool" => any(&|w| w.eq_ignore_ascii_case(&actual)),
        "StringEquals" | "ArnEquals" => any(&|w| w == actual),
        "StringNotEquals" | "ArnNotEquals" => !any(&|w| w == actual),
        "StringEqualsIgnoreCase" => any(&|w| w.eq_ignore_ascii_case(&actual)),
        "StringLike" | "ArnLike" => any(&|w| glob(w, &actual, false)),
        "StringNotLike" | "ArnNotLike" => !any(&|w| glob(w, &actual, false)),
        _ => false,
    }
}

/// IAM wildcard match: `*` any run, `?` one character.
fn glob(pattern: &str, s: &str, ignore_case: bool) -> bool {
    let (p, s): (Vec<char>, Vec<char>) = if ignore_case {
        (
            pattern.to_ascii_lowercase().chars().collect(),
            s.to_ascii_lowercase().chars().collect(),
        )
    } else {
        (pattern.chars().collect(), s.chars().collect())
    };
    let (mut pi, mut si, mut star, mut mark) = (0, 0, None, 0);
    while si < s.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = si;
            pi += 1;
        } else if let Some(st) = star {
            pi = st + 1;
            mark += 1;
            si = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(role: Option<&str>, ap: Option<&str>, tls: bool) -> MountContext {
        MountContext {
            principal_arn: role.map(str::to_string),
            access_point_arn: ap.map(str::to_string),
            secure_transport: tls,
        }
    }

    const ROLE: &str = "arn:aws:iam::000000000000:role/app";

    #[test]
    fn no_policy_allows_everything() {
        assert_eq!(evaluate(None, &ctx(None, None, false)), Grants::ALL);
    }

    #[test]
    fn deny_client_write_makes_read_only() {
        let p = r#"{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Principal":{"AWS":"*"},"Action":["elasticfilesystem:ClientMount","elasticfilesystem:ClientWrite"]},
            {"Effect":"Deny","Principal":{"AWS":"arn:aws:iam::000000000000:role/app"},"Action":"elasticfilesystem:ClientWrite"}]}"#;
        let g = evaluate(Some(p), &ctx(Some(ROLE), None, true));
        assert_eq!(
            g,
            Grants {
                mount: true,
                write: false,
                root: false
            }
        );
        // Another role keeps write.
        let other = evaluate(
            Some(p),
            &ctx(Some("arn:aws:iam::000000000000:role/x"), None, true),
        );
        assert!(other.write);
    }

    #[test]
    fn secure_transport_and_access_point_conditions() {
        let p = r#"{"Statement":[
            {"Effect":"Allow","Principal":"*","Action":"elasticfilesystem:Client*",
             "Condition":{"Bool":{"aws:SecureTransport":"true"},
                          "StringEquals":{"elasticfilesystem:AccessPointArn":"arn:aws:elasticfilesystem:us-east-1:000000000000:access-point/fsap-1"}}}]}"#;
        let ap = "arn:aws:elasticfilesystem:us-east-1:000000000000:access-point/fsap-1";
        assert_eq!(evaluate(Some(p), &ctx(None, Some(ap), true)), Grants::ALL);
        assert!(!evaluate(Some(p), &ctx(None, Some(ap), false)).mount);
        assert!(!evaluate(Some(p), &ctx(None, None, true)).mount);
        assert!(!evaluate(Some(p), &ctx(None, Some("arn:x:fsap-2"), true)).write);
    }

    #[test]
    fn principals_by_account_and_assumed_role() {
        let p = r#"{"Statement":[{"Effect":"Allow","Principal":{"AWS":["arn:aws:iam::000000000000:root"]},"Action":"elasticfilesystem:ClientMount"}]}"#;
        assert!(evaluate(Some(p), &ctx(Some(ROLE), None, false)).mount);
        assert!(
            !evaluate(Some(p), &ctx(None, None, false)).mount,
            "anonymous"
        );
        assert!(!evaluate(Some(p), &ctx(Some(ROLE), None, false)).write);
        assert!(same_role(
            "arn:aws:sts::000000000000:assumed-role/app/task-1",
            ROLE
        ));
    }

    #[test]
    fn unknown_condition_key_does_not_apply_and_globs_match() {
        let p = r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"*","Condition":{"StringEquals":{"aws:SourceVpc":"vpc-1"}}}]}"#;
        assert!(!evaluate(Some(p), &ctx(None, None, true)).mount);
        assert!(glob(
            "elasticfilesystem:client*",
            "elasticfilesystem:ClientWrite",
            true
        ));
        assert!(glob("a?c*", "abcdef", false));
        assert!(!glob("a?c", "abcd", false));
    }
}
