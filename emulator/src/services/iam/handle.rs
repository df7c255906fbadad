//! The typed handle other services (STS, ECS) use: `registry.handle::<Iam>()`.

use super::managed::aws_policy;
use super::state::{InstanceProfile, ManagedPolicy, Role, Row, State};
use super::{policies, state};
use std::sync::Arc;

pub struct Iam {
    state: Arc<State>,
}

/// The parts of a role ARN: (account, path, name). `arn:aws:iam::123:role/path/name`.
pub fn parse_role_arn(arn: &str) -> Option<(String, String, String)> {
    let rest = arn.strip_prefix("arn:aws:iam::")?;
    let (account, resource) = rest.split_once(':')?;
    let path_and_name = resource.strip_prefix("role")?;
    if !path_and_name.starts_with('/') {
        return None;
    }
    let idx = path_and_name.rfind('/')?;
    let (path, name) = (&path_and_name[..=idx], &path_and_name[idx + 1..]);
    if account.is_empty() || name.is_empty() {
        return None;
    }
    Some((account.to_string(), path.to_string(), name.to_string()))
}

impl Iam {
    pub fn new(state: Arc<State>) -> Iam {
        Iam { state }
    }

    /// A role of `account` by name or by ARN (an ARN must match the role's path and account).
    pub fn role(&self, account: &str, name_or_arn: &str) -> Option<Role> {
        if name_or_arn.starts_with("arn:") {
            return self.role_by_arn(name_or_arn).filter(|_| {
                parse_role_arn(name_or_arn).is_some_and(|(acct, _, _)| acct == account)
            });
        }
        self.state.role(account, name_or_arn)
    }

    /// A role by ARN, in the account the ARN names.
    pub fn role_by_arn(&self, arn: &str) -> Option<Role> {
        let (account, _, name) = parse_role_arn(arn)?;
        self.state.role(&account, &name).filter(|r| r.arn == arn)
    }

    /// An instance profile by name or ARN.
    pub fn instance_profile(&self, account: &str, name_or_arn: &str) -> Option<InstanceProfile> {
        let name = name_or_arn.rsplit('/').next().unwrap_or(name_or_arn);
        match self.state.rows.get(&state::profile_key(account, name)) {
            Some(Row::InstanceProfile(p))
                if !name_or_arn.starts_with("arn:") || p.arn == name_or_arn =>
            {
                Some(p)
            }
            _ => None,
        }
    }

    /// A managed policy (AWS or this account's) by ARN.
    pub fn policy(&self, account: &str, arn: &str) -> Option<ManagedPolicy> {
        if let Some(p) = aws_policy(arn) {
            return Some(p.to_policy());
        }
        policies::find_policy(&self.state, account, arn)
            .ok()
            .flatten()
    }
}
