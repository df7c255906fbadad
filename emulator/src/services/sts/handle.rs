//! The typed handle: `registry.handle::<Sts>()`. ECS issues task-role credentials through it and
//! the credential endpoint looks them up.

use super::state::{access_key_id, secret_access_key, session_token, IssuedCredentials, State};
use crate::protocol::codes;
use crate::protocol::AwsError;
use crate::services::iam::{parse_role_arn, Iam};
use sha2::{Digest, Sha256};
use std::sync::Arc;

pub struct Sts {
    pub(crate) state: Arc<State>,
    iam: Arc<Iam>,
}

fn validation(message: impl Into<String>) -> AwsError {
    AwsError::new(codes::common::ValidationError, message)
}

impl Sts {
    /// STS checks assumed roles against IAM, which is built first.
    pub fn new(state: Arc<State>, iam: Arc<Iam>) -> Sts {
        Sts { state, iam }
    }

    /// Credentials issued earlier, by access key id (expired ones included).
    pub fn credentials(&self, access_key_id: &str) -> Option<IssuedCredentials> {
        self.state.credentials.get(access_key_id)
    }

    /// Assumes a role for `account` (the caller): checks the role exists when it is in that
    /// account, and the duration against its MaxSessionDuration. `now` is epoch seconds.
    pub fn assume_role(
        &self,
        account: &str,
        caller_arn: &str,
        role_arn: &str,
        session_name: &str,
        duration_seconds: Option<i64>,
        now: f64,
    ) -> Result<IssuedCredentials, AwsError> {
        let duration = duration_seconds.unwrap_or(3600);
        if duration < 900 {
            return Err(validation(format!(
                "1 validation error detected: Value '{duration}' at 'durationSeconds' failed to satisfy constraint: Member must have value greater than or equal to 900"
            )));
        }
        if duration > 43200 {
            return Err(validation(format!(
                "1 validation error detected: Value '{duration}' at 'durationSeconds' failed to satisfy constraint: Member must have value less than or equal to 43200"
            )));
        }
        let Some((role_account, _path, role_name)) = parse_role_arn(role_arn) else {
            return Err(validation(format!("{role_arn} is invalid")));
        };
        let denied = || {
            AwsError::new(codes::sts::AccessDenied,
                format!(
                    "User: {caller_arn} is not authorized to perform: sts:AssumeRole on resource: {role_arn}"
                ),
            )
            .with_status(403)
        };
        let role_id = if role_account == account {
            let role = self.iam.role_by_arn(role_arn).ok_or_else(denied)?;
            if duration > role.max_session_duration {
                return Err(validation(
                    "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.",
                ));
            }
            role.role_id
        } else {
            // A role of another account: its id is stable per ARN.
            let h = hex::encode(Sha256::digest(role_arn.as_bytes())).to_ascii_uppercase();
            format!("AROA{}", &h[..17])
        };
        let creds = IssuedCredentials {
            access_key_id: access_key_id(),
            secret_access_key: secret_access_key(),
            session_token: session_token(),
            expiration: (now + duration as f64).floor(),
            account: role_account.clone(),
            arn: format!("arn:aws:sts::{role_account}:assumed-role/{role_name}/{session_name}"),
            user_id: format!("{role_id}:{session_name}"),
            role_arn: Some(role_arn.to_string()),
            session_name: Some(session_name.to_string()),
            issued: now,
        };
        self.state
            .credentials
            .put(&creds.access_key_id, creds.clone())?;
        Ok(creds)
    }

    /// Session credentials for the caller itself.
    pub fn session_token(
        &self,
        account: &str,
        caller_arn: &str,
        caller_user_id: &str,
        duration_seconds: Option<i64>,
        now: f64,
    ) -> Result<IssuedCredentials, AwsError> {
        let duration = duration_seconds.unwrap_or(43200);
        if !(900..=129_600).contains(&duration) {
            return Err(validation(format!(
                "1 validation error detected: Value '{duration}' at 'durationSeconds' failed to satisfy constraint: Member must have value between 900 and 129600"
            )));
        }
        let creds = IssuedCredentials {
            access_key_id: access_key_id(),
            secret_access_key: secret_access_key(),
            session_token: session_token(),
            expiration: (now + duration as f64).floor(),
            account: account.to_string(),
            arn: caller_arn.to_string(),
            user_id: caller_user_id.to_string(),
            role_arn: None,
            session_name: None,
            issued: now,
        };
        self.state
            .credentials
            .put(&creds.access_key_id, creds.clone())?;
        Ok(creds)
    }
}
