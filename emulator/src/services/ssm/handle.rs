//! The typed handle: `registry.handle::<Ssm>()`. ECS resolves task secrets (valueFrom) with it.

use super::params::{lookup, parse_reference, select};
use super::state::State;
use crate::protocol::codes;
use crate::protocol::AwsError;
use std::sync::Arc;

pub struct Ssm {
    state: Arc<State>,
}

/// A resolved parameter: its name, type and plain (decrypted) value, and version.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedParameter {
    pub name: String,
    pub kind: String,
    pub value: String,
    pub version: i64,
}

impl Ssm {
    pub fn new(state: Arc<State>) -> Ssm {
        Ssm { state }
    }

    /// Resolves a parameter by name or ARN (optionally ":version"), decrypted, as seen from
    /// (account, region). An ARN names its own account and region. Errors: ParameterNotFound,
    /// ParameterVersionNotFound.
    pub fn resolve(
        &self,
        account: &str,
        region: &str,
        name_or_arn: &str,
    ) -> Result<ResolvedParameter, AwsError> {
        let r = parse_reference(account, region, name_or_arn);
        let p = lookup(&self.state, &r).ok_or_else(|| {
            AwsError::new(
                codes::ssm::ParameterNotFound,
                format!("Parameter {} not found.", r.name),
            )
        })?;
        let v = select(&p, &r)?;
        Ok(ResolvedParameter {
            name: p.name.clone(),
            kind: v.kind.clone(),
            value: v.value.clone(),
            version: v.version,
        })
    }

    /// Just the value (decrypted).
    pub fn value(
        &self,
        account: &str,
        region: &str,
        name_or_arn: &str,
    ) -> Result<String, AwsError> {
        self.resolve(account, region, name_or_arn).map(|p| p.value)
    }
}
